//! Running a [`Plan`]: its check first, judged before any mutation, then its commands in order.
//! The one place in the catalogue that runs anything, and only through [`HostOps`].

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use super::{Backup, Plan, Verdict};
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
    /// Runs the plan without a state directory; [`Plan::execute_in`].
    pub fn execute<H: HostOps + ?Sized>(&self, host: &mut H, deadline: Option<Instant>) -> StepOutcome {
        self.execute_in(host, deadline, None)
    }

    /// Runs the plan: the check first (a mutating step), then the commands in order, stopping at
    /// the first failure or when `deadline` has passed between two commands. A backup step
    /// saves under `state_dir` (the agent's state directory) and fails without one.
    pub fn execute_in<H: HostOps + ?Sized>(
        &self,
        host: &mut H,
        deadline: Option<Instant>,
        state_dir: Option<&Path>,
    ) -> StepOutcome {
        if let Some(backup) = &self.backup {
            return self.execute_backup(host, deadline, backup, state_dir);
        }
        if let super::Step::BondFlip(f) = &self.step {
            let ran = super::flip::execute(host, f, deadline, state_dir);
            return StepOutcome::new(ran.code, ran.output, ran.message);
        }
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
        } else if self.step.reports() {
            // A read-only step whose commands' exit codes are answers: every one runs (unless
            // one could not run at all), and the step reads them together.
            let mut outputs = Vec::new();
            for argv in &self.commands {
                let result = host.run_until(argv, deadline);
                if matches!(result.code, EXIT_NOT_RUN | EXIT_TIMED_OUT) {
                    let mut output = String::new();
                    transcript(&mut output, argv, &result);
                    let message = format!("`{}` failed with exit code {}", argv.join(" "), result.code);
                    return StepOutcome::new(result.code, output, message);
                }
                outputs.push(result);
            }
            match self.step.report(self.os, self.storage, &outputs) {
                Ok(report) => StepOutcome::new(0, report, "done"),
                Err(e) => {
                    let mut output = String::new();
                    for (argv, result) in self.commands.iter().zip(&outputs) {
                        transcript(&mut output, argv, result);
                    }
                    StepOutcome::new(1, output, format!("could not read the host's answer: {e}"))
                }
            }
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

    /// `storage-backup`: already there (every file of a complete backup) → nothing runs;
    /// otherwise the reads run, their outputs go to a scratch directory beside the backup, and
    /// that is renamed into place, so a backup directory is either complete or absent.
    fn execute_backup<H: HostOps + ?Sized>(
        &self,
        host: &mut H,
        deadline: Option<Instant>,
        backup: &Backup,
        state_dir: Option<&Path>,
    ) -> StepOutcome {
        let Some(state_dir) = state_dir else {
            return StepOutcome::new(
                1,
                String::new(),
                "the agent has no state directory to save a backup in",
            );
        };
        let dir = state_dir.join(&backup.dir);
        let shown = format!("{}\n", dir.display());
        if backup_complete(&dir, backup) {
            return StepOutcome::new(
                0,
                shown,
                format!(
                    "already done: {} holds the backup; nothing was changed",
                    dir.display()
                ),
            );
        }
        let mut outputs = Vec::new();
        for argv in &self.commands {
            let result = host.run_until(argv, deadline);
            if !result.success() {
                let mut output = String::new();
                transcript(&mut output, argv, &result);
                let message = format!(
                    "`{}` failed with exit code {}; nothing was saved",
                    argv.join(" "),
                    result.code
                );
                return StepOutcome::new(result.code, output, message);
            }
            outputs.push(result.stdout);
        }
        match save_backup(&dir, backup, &outputs) {
            Ok(()) => StepOutcome::new(0, shown, "done"),
            Err(e) => StepOutcome::new(1, String::new(), format!("saving the backup failed: {e}")),
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

    /// [`Plan::recheck_in`] without a state directory.
    pub fn recheck<H: HostOps + ?Sized>(&self, host: &mut H, deadline: Option<Instant>) -> Recheck {
        self.recheck_in(host, deadline, None)
    }

    /// Asks the host again whether a mutating step that timed out took effect: its check, judged
    /// as before a run, and nothing else (for a backup, whether its directory is complete under
    /// `state_dir`). A read-only step has nothing to settle: it changed nothing, so it is "not
    /// done".
    pub fn recheck_in<H: HostOps + ?Sized>(
        &self,
        host: &mut H,
        deadline: Option<Instant>,
        state_dir: Option<&Path>,
    ) -> Recheck {
        if let Some(backup) = &self.backup {
            let Some(state_dir) = state_dir else {
                return Recheck::NoAnswer("the agent has no state directory to look in".to_owned());
            };
            let dir = state_dir.join(&backup.dir);
            return if backup_complete(&dir, backup) {
                Recheck::Done(format!("{} holds the backup", dir.display()))
            } else {
                Recheck::NotDone(format!("{} holds no complete backup", dir.display()))
            };
        }
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

/// Whether `dir` holds every file of `backup` (a directory only a completed save renames in).
fn backup_complete(dir: &Path, backup: &Backup) -> bool {
    backup.files.iter().all(|f| dir.join(f).is_file())
}

/// Writes the outputs into a scratch directory beside `dir`, then renames it to `dir`.
fn save_backup(dir: &Path, backup: &Backup, outputs: &[String]) -> std::io::Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scratch = parent.join(format!(".{name}.partial"));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    std::fs::create_dir_all(&scratch)?;
    for (file, text) in backup.files.iter().zip(outputs) {
        std::fs::write(scratch.join(file), text)?;
    }
    if dir.exists() {
        // An incomplete directory someone else left: replaced by the complete one.
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&scratch, dir)
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

    #[test]
    fn a_backup_saves_each_read_once_and_a_repeat_finds_it_there() {
        let dir = std::env::temp_dir().join(format!("nodewright-backup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = plan("storage-backup", &args(&["before-9.2.14"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok("verbose status\n"), ok("status all\n")],
            ran: vec![],
        };
        assert_eq!(
            p.execute(&mut host, None).code,
            1,
            "no state directory, nothing saved"
        );
        assert!(host.ran.is_empty());
        let out = p.execute_in(&mut host, None, Some(&dir));
        assert_eq!((out.code, out.message.as_str()), (0, "done"), "{out:?}");
        let saved = dir.join("backup/before-9.2.14");
        assert_eq!(out.output, format!("{}\n", saved.display()));
        assert_eq!(
            std::fs::read_to_string(saved.join("drbdsetup-status.txt")).unwrap(),
            "verbose status\n"
        );
        assert_eq!(
            std::fs::read_to_string(saved.join("drbdadm-status.txt")).unwrap(),
            "status all\n"
        );
        let again = p.execute_in(&mut host, None, Some(&dir));
        assert_eq!(again.code, 0);
        assert!(again.message.starts_with("already done"), "{}", again.message);
        assert_eq!(host.ran.len(), 2, "the repeat ran nothing");
        assert!(matches!(
            p.recheck_in(&mut host, None, Some(&dir)),
            Recheck::Done(_)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            p.recheck_in(&mut host, None, Some(&dir)),
            Recheck::NotDone(_)
        ));
    }

    #[test]
    fn a_backup_whose_read_fails_saves_nothing() {
        let dir = std::env::temp_dir().join(format!("nodewright-backup-fail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = plan("storage-backup", &args(&["b1"])).unwrap();
        let mut host = Scripted {
            replies: vec![
                ok("verbose\n"),
                HostOutput::failed(20, "Could not connect to 'drbd' generic netlink family\n"),
            ],
            ran: vec![],
        };
        let out = p.execute_in(&mut host, None, Some(&dir));
        assert_eq!(out.code, 20);
        assert!(out.message.ends_with("nothing was saved"), "{}", out.message);
        assert!(!dir.join("backup/b1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
