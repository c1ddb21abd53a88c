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
}

impl StepOutcome {
    /// Whether the step succeeded.
    pub fn succeeded(&self) -> bool {
        self.code == 0
    }
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
        let timed_out = |output: String| StepOutcome {
            code: EXIT_TIMED_OUT,
            output,
            message: "timed out before the step finished".to_owned(),
        };
        if let Some(check) = &self.check {
            let result = host.run(check);
            // A check that could not run or ran out of time answers nothing, whatever the step.
            let no_answer = matches!(result.code, EXIT_NOT_RUN | EXIT_TIMED_OUT);
            if !result.success() && (no_answer || !self.step.check_answers_by_exit_code()) {
                let mut output = String::new();
                transcript(&mut output, check, &result);
                return StepOutcome {
                    code: result.code,
                    output,
                    message: format!(
                        "the check `{}` failed with exit code {}; nothing was changed",
                        check.join(" "),
                        result.code
                    ),
                };
            }
            match self.step.judge_with(self.os, self.storage, &result) {
                Ok(Verdict::AlreadyDone(what)) => {
                    return StepOutcome {
                        code: 0,
                        output: result.stdout,
                        message: format!("already done: {what}; nothing was changed"),
                    };
                }
                Ok(Verdict::Refused(why)) => {
                    return StepOutcome {
                        code: 1,
                        output: result.stdout,
                        message: format!("refused: {why}; nothing was changed"),
                    };
                }
                Err(e) => {
                    return StepOutcome {
                        code: 1,
                        output: result.stdout,
                        message: format!(
                            "could not read the output of `{}`: {e}; nothing was changed",
                            check.join(" ")
                        ),
                    };
                }
                Ok(Verdict::ToDo) => {}
            }
            if out_of_time() {
                return timed_out(String::new());
            }
            let mut output = String::new();
            for argv in &self.commands {
                let result = host.run(argv);
                transcript(&mut output, argv, &result);
                if !result.success() {
                    return StepOutcome {
                        code: result.code,
                        output,
                        message: format!("`{}` failed with exit code {}", argv.join(" "), result.code),
                    };
                }
                if out_of_time() {
                    return timed_out(output);
                }
            }
            StepOutcome {
                code: 0,
                output,
                message: "done".to_owned(),
            }
        } else {
            // A read-only step: its standard output is the task's output.
            let mut output = String::new();
            for argv in &self.commands {
                let result = host.run(argv);
                if !result.success() {
                    transcript(&mut output, argv, &result);
                    return StepOutcome {
                        code: result.code,
                        output,
                        message: format!("`{}` failed with exit code {}", argv.join(" "), result.code),
                    };
                }
                output.push_str(&result.stdout);
            }
            StepOutcome {
                code: 0,
                output,
                message: "done".to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use nodewright_api::OsFamily;

    use super::*;
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
    fn a_deadline_already_past_stops_before_the_mutation() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        let out = p.execute(&mut host, Some(Instant::now()));
        assert_eq!(host.ran.len(), 1);
        assert_eq!(out.code, EXIT_TIMED_OUT);
    }
}
