//! Running a [`Plan`]: its check first, judged before any mutation, then its commands in order.
//! The one place in the catalogue that runs anything, and only through [`HostOps`].

use std::fmt::Write as _;
use std::time::Instant;

use super::{Plan, Verdict};
use crate::host::{EXIT_NOT_RUN, EXIT_TIMED_OUT, HostOps, HostOutput};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// `0` on success, otherwise the failing command's exit code (124 when out of time).
    pub code: i32,
    /// What the step printed: a read-only step's standard output; for a mutating step, the
    /// mutation's output, or the check's output when it was already done.
    pub output: String,
    /// One line on what happened.
    pub message: String,
    /// The step ran out of time after a mutation had started: whether it took effect is not
    /// known until the host is checked again ([`Plan::recheck`]). A time-out before any mutation
    /// (in the check, or between the check and the mutation) is a plain failure: nothing changed.
    pub unknown: bool,
}

impl StepOutcome {
    /// Whether the step succeeded.
    pub fn succeeded(&self) -> bool {
        self.code == 0
    }

    fn new(code: i32, output: String, message: impl Into<String>) -> Self {
        StepOutcome {
            code,
            output,
            message: message.into(),
            unknown: false,
        }
    }
}

/// What the host says, asked again, about a mutating step whose outcome was unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// The check finds the step's effect there: says what it found.
    Done(String),
    /// The check finds it not there (or the host is where the step would be refused).
    NotDone(String),
    /// The check gave no answer (it could not run, ran out of time, or printed what cannot be
    /// read): the outcome stays unknown and the check is tried again later.
    NoAnswer(String),
}

/// `$ argv` and what the command printed, for a step's output.
fn transcript(out: &mut String, argv: &[String], result: &HostOutput) {
    let _ = writeln!(out, "$ {}", argv.join(" "));
    out.push_str(&result.stdout);
    out.push_str(&result.stderr);
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

impl Plan {
    /// Runs the plan: the check first (a mutating step), then the commands in order, stopping at
    /// the first failure or when `deadline` has passed between two commands.
    pub fn execute<H: HostOps + ?Sized>(&self, host: &mut H, deadline: Option<Instant>) -> StepOutcome {
        let out_of_time = || deadline.is_some_and(|d| Instant::now() >= d);
        let timed_out = |output: String, unknown: bool| StepOutcome {
            unknown,
            ..StepOutcome::new(EXIT_TIMED_OUT, output, "timed out before the step finished")
        };
        if let Some(check) = &self.check {
            match self.run_check(host, check, deadline) {
                Ok(()) => {}
                Err(done) => return done,
            }
            if out_of_time() {
                return timed_out(String::new(), false);
            }
            let mut output = String::new();
            for argv in &self.commands {
                let result = host.run_until(argv, deadline);
                transcript(&mut output, argv, &result);
                if result.code == EXIT_TIMED_OUT {
                    // Killed mid-mutation: it may or may not have taken effect.
                    return timed_out(output, true);
                }
                if !result.success() {
                    let message = format!("`{}` failed with exit code {}", argv.join(" "), result.code);
                    return StepOutcome::new(result.code, output, message);
                }
                if out_of_time() {
                    return timed_out(output, true);
                }
            }
            StepOutcome::new(0, output, "done")
        } else {
            // A read-only step: its standard output is the task's output.
            let mut output = String::new();
            for argv in &self.commands {
                let result = host.run_until(argv, deadline);
                if !result.success() {
                    transcript(&mut output, argv, &result);
                    let message = format!("`{}` failed with exit code {}", argv.join(" "), result.code);
                    return StepOutcome::new(result.code, output, message);
                }
                output.push_str(&result.stdout);
            }
            StepOutcome::new(0, output, "done")
        }
    }

    /// Runs the check and judges it: `Ok` when the mutation is to do, otherwise the step's
    /// outcome (already done, refused, or the check failed), with nothing changed.
    fn run_check<H: HostOps + ?Sized>(
        &self,
        host: &mut H,
        check: &[String],
        deadline: Option<Instant>,
    ) -> Result<(), StepOutcome> {
        let result = host.run_until(check, deadline);
        // A check that could not run or ran out of time answers nothing, whatever the step.
        let no_answer = matches!(result.code, EXIT_NOT_RUN | EXIT_TIMED_OUT);
        if !result.success() && (no_answer || !self.step.check_answers_by_exit_code()) {
            let mut output = String::new();
            transcript(&mut output, check, &result);
            let message = format!(
                "the check `{}` failed with exit code {}; nothing was changed",
                check.join(" "),
                result.code
            );
            return Err(StepOutcome::new(result.code, output, message));
        }
        match self.step.judge_with(self.os, self.storage, &result) {
            Ok(Verdict::ToDo) => Ok(()),
            Ok(Verdict::AlreadyDone(what)) => Err(StepOutcome::new(
                0,
                result.stdout,
                format!("already done: {what}; nothing was changed"),
            )),
            Ok(Verdict::Refused(why)) => Err(StepOutcome::new(
                1,
                result.stdout,
                format!("refused: {why}; nothing was changed"),
            )),
            Err(e) => Err(StepOutcome::new(
                1,
                result.stdout,
                format!(
                    "could not read the output of `{}`: {e}; nothing was changed",
                    check.join(" ")
                ),
            )),
        }
    }

    /// Asks the host again whether a mutating step that timed out took effect: its check, judged
    /// as before a run, and nothing else. A read-only step has nothing to settle: it changed
    /// nothing, so it is "not done".
    pub fn recheck<H: HostOps + ?Sized>(&self, host: &mut H, deadline: Option<Instant>) -> Recheck {
        let Some(check) = &self.check else {
            return Recheck::NotDone("a read-only step; it changed nothing".to_owned());
        };
        let result = host.run_until(check, deadline);
        let no_answer = matches!(result.code, EXIT_NOT_RUN | EXIT_TIMED_OUT);
        if !result.success() && (no_answer || !self.step.check_answers_by_exit_code()) {
            return Recheck::NoAnswer(format!(
                "the check `{}` failed with exit code {}: {}",
                check.join(" "),
                result.code,
                result.stderr.trim()
            ));
        }
        match self.step.judge_with(self.os, self.storage, &result) {
            Ok(Verdict::AlreadyDone(what)) => Recheck::Done(what),
            Ok(Verdict::ToDo) => Recheck::NotDone("its check finds it not done".to_owned()),
            Ok(Verdict::Refused(why)) => Recheck::NotDone(format!("its check finds it not done ({why})")),
            Err(e) => Recheck::NoAnswer(format!("could not read the output of `{}`: {e}", check.join(" "))),
        }
    }
}

#[cfg(test)]
mod tests {
    use nodewright_api::OsFamily;

    use super::*;
    use crate::catalogue::Recheck;
    use crate::catalogue::tests::{NODES, args};
    use crate::catalogue::{plan, plan_on};

    #[test]
    fn a_package_check_that_cannot_run_changes_nothing() {
        let p = plan_on(
            OsFamily::Rpm,
            "package-install",
            &args(&["drbd-utils", "9.31.0-1"]),
        )
        .unwrap();
        let mut host = Scripted {
            replies: vec![HostOutput::failed(EXIT_NOT_RUN, "bash: rpm: command not found\n")],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(host.ran.len(), 1);
        assert_eq!(out.code, EXIT_NOT_RUN);
    }

    /// A host that answers from a script of outputs and records what it ran.
    struct Scripted {
        replies: Vec<HostOutput>,
        ran: Vec<Vec<String>>,
    }

    impl HostOps for Scripted {
        fn run(&mut self, argv: &[String]) -> HostOutput {
            self.ran.push(argv.to_vec());
            if self.replies.is_empty() {
                HostOutput::default()
            } else {
                self.replies.remove(0)
            }
        }
    }

    fn ok(stdout: &str) -> HostOutput {
        HostOutput {
            code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn a_step_already_done_runs_only_its_check() {
        let p = plan("linstor-node-create", &args(&["edge-2", "10.10.100.12"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(host.ran.len(), 1);
        assert_eq!(out.code, 0);
        assert!(out.message.starts_with("already done"), "{}", out.message);
    }

    #[test]
    fn a_failing_check_mutates_nothing() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![HostOutput::failed(20, "Connection refused\n")],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(host.ran.len(), 1);
        assert_eq!(out.code, 20);
        assert!(out.output.contains("Connection refused"));
    }

    #[test]
    fn a_step_to_do_runs_the_mutation_and_reports_its_output() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES), ok("SUCCESS:\n")],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(host.ran.len(), 2);
        assert_eq!(out.code, 0);
        assert!(out.output.contains("$ linstor --no-color node create edge-3"));
        assert!(out.output.contains("SUCCESS:"));
    }

    #[test]
    fn a_read_only_step_outputs_the_commands_stdout() {
        let p = plan("linstor-node-list", &[]).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(out.output, NODES);
        assert_eq!(out.code, 0);
    }

    #[test]
    fn a_mutation_killed_at_its_deadline_leaves_the_outcome_unknown() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES), HostOutput::failed(EXIT_TIMED_OUT, "killed\n")],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(out.code, EXIT_TIMED_OUT);
        assert!(out.unknown, "the mutation may have taken effect");
    }

    #[test]
    fn a_check_that_times_out_is_a_plain_failure_not_an_unknown() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![HostOutput::failed(EXIT_TIMED_OUT, "killed\n")],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!((out.code, out.unknown), (EXIT_TIMED_OUT, false));
        assert!(out.message.contains("nothing was changed"), "{}", out.message);
    }

    #[test]
    fn a_recheck_runs_only_the_check_and_says_done_not_done_or_no_answer() {
        let p = plan("linstor-node-create", &args(&["edge-2", "10.10.100.12"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        assert!(matches!(p.recheck(&mut host, None), Recheck::Done(_)));
        assert_eq!(host.ran.len(), 1);
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        assert!(matches!(p.recheck(&mut host, None), Recheck::NotDone(_)));
        let mut host = Scripted {
            replies: vec![HostOutput::failed(20, "Connection refused\n")],
            ran: vec![],
        };
        assert!(
            matches!(p.recheck(&mut host, None), Recheck::NoAnswer(why) if why.contains("Connection refused"))
        );
        let read_only = plan("linstor-node-list", &[]).unwrap();
        let mut host = Scripted {
            replies: vec![],
            ran: vec![],
        };
        assert!(matches!(read_only.recheck(&mut host, None), Recheck::NotDone(_)));
        assert!(host.ran.is_empty(), "a read-only step is not run again");
    }

    #[test]
    fn a_deadline_already_past_stops_before_the_mutation() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        let out = p.execute(&mut host, Some(Instant::now()));
        assert_eq!(host.ran.len(), 1);
        assert_eq!(out.code, EXIT_TIMED_OUT);
        assert!(!out.unknown, "nothing was changed");
    }
}
