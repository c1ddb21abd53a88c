//! The `HostOps` seam: the one way the agent touches its host. A step is a list of argument
//! vectors; each runs through [`HostOps::run`] and comes back as a [`HostOutput`].
//!
//! [`ProcessHost`] runs real commands with a per-command timeout. Tests put the simulated edge
//! world (`legacy/sim`) behind the same trait, so the library never depends on the simulator.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one host command returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostOutput {
    /// Exit status; `127` when the command could not be started, `124` when it timed out (as
    /// `timeout(1)` reports it), `128 + signal` when a signal ended it.
    pub code: i32,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl HostOutput {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// A failed output with only a message on standard error.
    pub fn failed(code: i32, stderr: impl Into<String>) -> Self {
        HostOutput {
            code,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
}

/// Exit code of a command that could not be started (the shell's "command not found").
pub const EXIT_NOT_RUN: i32 = 127;
/// Exit code of a command or step that ran out of time (`timeout(1)`'s).
pub const EXIT_TIMED_OUT: i32 = 124;

/// Runs host commands. Synchronous on purpose: host tools are blocking processes, and the
/// runtime serialises every call (see `runtime`), so a node never runs two host commands at once
/// — the same rule the legacy script follows (`legacy/HOST-INTERFACE.md`).
pub trait HostOps: Send + 'static {
    /// Runs one command (`argv[0]` is found through `PATH`) and returns what it printed and its
    /// exit status. Never panics: a command that cannot run is an output with code 127.
    fn run(&mut self, argv: &[String]) -> HostOutput;
}

/// Runs real commands with [`std::process::Command`], killing any that outlives its timeout.
#[derive(Clone, Debug)]
pub struct ProcessHost {
    /// How long one command may run before it is killed.
    pub command_timeout: Duration,
}

impl Default for ProcessHost {
    fn default() -> Self {
        ProcessHost {
            command_timeout: Duration::from_secs(300),
        }
    }
}

impl ProcessHost {
    /// A host whose commands are killed after `command_timeout`.
    pub fn new(command_timeout: Duration) -> Self {
        ProcessHost { command_timeout }
    }
}

impl HostOps for ProcessHost {
    fn run(&mut self, argv: &[String]) -> HostOutput {
        let Some((program, args)) = argv.split_first() else {
            return HostOutput::failed(EXIT_NOT_RUN, "empty command line\n");
        };
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The tools must print what the catalogue parses, whatever the pod's locale says.
            .env("LC_ALL", "C.UTF-8")
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => return HostOutput::failed(EXIT_NOT_RUN, format!("{program}: {e}\n")),
        };
        // Drain both pipes on their own threads so a chatty command cannot block on a full pipe
        // while we wait for it.
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let deadline = Instant::now() + self.command_timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "{program}: killed after {}s\n",
                        self.command_timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("{program}: waiting for it: {e}\n"));
                }
            }
        };
        let stdout = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
        let mut stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        let code = match status {
            Ok(status) => status.code().unwrap_or_else(|| signal_code(&status)),
            Err(message) => {
                stderr.push_str(&message);
                EXIT_TIMED_OUT
            }
        };
        HostOutput { code, stdout, stderr }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

#[cfg(unix)]
fn signal_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.signal().map_or(-1, |s| 128 + s)
}

#[cfg(not(unix))]
fn signal_code(_: &std::process::ExitStatus) -> i32 {
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn a_real_command_reports_its_output_and_exit_code() {
        let mut host = ProcessHost::default();
        let out = host.run(&argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]));
        assert_eq!(out.code, 3);
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[test]
    fn a_missing_command_is_exit_127_not_a_panic() {
        let mut host = ProcessHost::default();
        let out = host.run(&argv(&["/nonexistent/nodewright-no-such-tool"]));
        assert_eq!(out.code, EXIT_NOT_RUN);
        assert!(host.run(&[]).code == EXIT_NOT_RUN);
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_exit_124() {
        let mut host = ProcessHost::new(Duration::from_millis(200));
        let started = Instant::now();
        let out = host.run(&argv(&["sleep", "30"]));
        assert_eq!(out.code, EXIT_TIMED_OUT);
        assert!(out.stderr.contains("killed after"));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
