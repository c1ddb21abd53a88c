//! The `HostOps` seam: the one way the agent touches its host. A step is a list of argument
//! vectors; each runs through [`HostOps::run`] and comes back as a [`HostOutput`].
//!
//! [`ProcessHost`] runs real commands, each in its own process group, with a per-command timeout
//! and the step's deadline; when either passes, the whole group is killed. In a pod, it runs them
//! with the host's own tools: [`ProcessHost::in_host_root`] starts each one through
//! `nodewright host-exec`, which changes its root to the host's root file system (mounted into
//! the pod) and executes the command there ([`exec_in_root`]), so that `ip`, `drbdadm`,
//! `linstor`, `systemctl`, `modprobe` and the package manager are the host's, at the host's
//! versions, with the host's configuration. Tests put the simulated edge
//! world (`legacy/sim`) behind the same trait, so the library never depends on the simulator.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
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

    /// Runs one command that must end by `deadline` (the step's): a host that runs real
    /// processes kills the command, and everything it started, when the deadline comes, and
    /// reports exit code 124. A host whose commands take no time (the simulator) ignores it.
    fn run_until(&mut self, argv: &[String], deadline: Option<Instant>) -> HostOutput {
        let _ = deadline;
        self.run(argv)
    }
}

/// How long the pipes of a command that has ended are still read: a process that left the
/// command's process group (a daemon that called `setsid`) may hold them open for ever, and the
/// next step must not wait on it.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Runs real commands with [`std::process::Command`], each in a process group of its own, and
/// ends the whole group — the command and every process it started — when the command outlives
/// its timeout or the step's deadline, or when the command has exited and left processes behind.
#[derive(Clone, Debug)]
pub struct ProcessHost {
    /// How long one command may run before it is killed.
    pub command_timeout: Duration,
    /// Where commands run: the agent's own file system, or the host's root through a launcher.
    pub root: CommandRoot,
}

/// Which file system a [`ProcessHost`]'s commands find their tools and files in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CommandRoot {
    /// The agent's own: `argv[0]` is looked up in the agent's `PATH` (the agent runs on the host
    /// itself, or in an image that has the tools).
    #[default]
    Own,
    /// The host's root file system, mounted at `root`: each command is started as `launcher
    /// host-exec --root <root> -- argv…`, which changes its root there and runs the host's tool.
    HostRoot {
        /// The program that changes root and executes the command (the `nodewright` binary).
        launcher: PathBuf,
        /// Where the host's root file system is mounted.
        root: PathBuf,
    },
}

/// The `PATH` a command run in the host's root finds its tool in: the directories a root shell
/// on Debian, Ubuntu, RHEL and SUSE searches, whatever the agent's own image sets.
pub const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Exit status when the root could not be changed (as `chroot(1)`'s).
pub const EXIT_CHROOT_FAILED: i32 = 125;
/// Exit status when the command exists but could not be executed (as the shell's).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;

impl Default for ProcessHost {
    fn default() -> Self {
        ProcessHost {
            command_timeout: Duration::from_secs(300),
            root: CommandRoot::Own,
        }
    }
}

impl ProcessHost {
    /// A host whose commands are killed after `command_timeout`.
    pub fn new(command_timeout: Duration) -> Self {
        ProcessHost {
            command_timeout,
            root: CommandRoot::Own,
        }
    }

    /// The same host, with every command run in the host's root file system mounted at `root`,
    /// started through `launcher host-exec` (see [`exec_in_root`]).
    pub fn in_host_root(self, launcher: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        ProcessHost {
            root: CommandRoot::HostRoot {
                launcher: launcher.into(),
                root: root.into(),
            },
            ..self
        }
    }

    /// The program and arguments that run `argv` where this host's commands run. Pure.
    pub fn command_line(&self, argv: &[String]) -> Vec<OsString> {
        match &self.root {
            CommandRoot::Own => argv.iter().map(OsString::from).collect(),
            CommandRoot::HostRoot { launcher, root } => {
                let mut line: Vec<OsString> = vec![
                    launcher.into(),
                    "host-exec".into(),
                    "--root".into(),
                    root.into(),
                    "--".into(),
                ];
                line.extend(argv.iter().map(OsString::from));
                line
            }
        }
    }
}

/// Changes this process's root to `root`, its working directory to the new `/`, and replaces it
/// with `argv` found in [`HOST_PATH`]. Returns only when that failed, with the exit status to
/// report (those of `chroot(1)`: 125 when the root could not be changed, 126 when the command
/// could not be executed, 127 when it was not found) and what went wrong. Needs `CAP_SYS_CHROOT`.
///
/// This is `nodewright host-exec`: the agent starts one such process per host command, so the
/// agent itself keeps its own root (its service account token, its journal) and only the tool
/// runs in the host's.
#[cfg(unix)]
pub fn exec_in_root(root: &Path, argv: &[OsString]) -> (i32, String) {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = argv.split_first() else {
        return (EXIT_NOT_RUN, "host-exec: no command given\n".to_owned());
    };
    if let Err(e) = std::os::unix::fs::chroot(root) {
        return (
            EXIT_CHROOT_FAILED,
            format!("host-exec: cannot change root to {}: {e}\n", root.display()),
        );
    }
    if let Err(e) = std::env::set_current_dir("/") {
        return (
            EXIT_CHROOT_FAILED,
            format!("host-exec: cannot enter / of {}: {e}\n", root.display()),
        );
    }
    // `Command` looks the program up in the PATH it is given, not the agent's.
    let e = Command::new(program).args(args).env("PATH", HOST_PATH).exec();
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_RUN
    } else {
        EXIT_NOT_EXECUTABLE
    };
    (
        code,
        format!(
            "host-exec: {} in the host root {}: {e}\n",
            program.to_string_lossy(),
            root.display()
        ),
    )
}

/// Not on this platform: there is no `chroot`.
#[cfg(not(unix))]
pub fn exec_in_root(root: &Path, _argv: &[OsString]) -> (i32, String) {
    (
        EXIT_CHROOT_FAILED,
        format!(
            "host-exec: cannot change root to {} on this platform\n",
            root.display()
        ),
    )
}

impl HostOps for ProcessHost {
    fn run(&mut self, argv: &[String]) -> HostOutput {
        self.run_until(argv, None)
    }

    fn run_until(&mut self, argv: &[String], deadline: Option<Instant>) -> HostOutput {
        let Some(program) = argv.first() else {
            return HostOutput::failed(EXIT_NOT_RUN, "empty command line\n");
        };
        let started = Instant::now();
        let own_deadline = started + self.command_timeout;
        let deadline = deadline.map_or(own_deadline, |d| d.min(own_deadline));
        let line = self.command_line(argv);
        let Some((launched, launched_args)) = line.split_first() else {
            return HostOutput::failed(EXIT_NOT_RUN, "empty command line\n");
        };
        let mut command = Command::new(launched);
        command
            .args(launched_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The tools must print what the catalogue parses, whatever the pod's locale says.
            .env("LC_ALL", "C.UTF-8");
        // Its own process group (pgid = its pid), so a timeout can end everything it started.
        new_process_group(&mut command);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return HostOutput::failed(EXIT_NOT_RUN, format!("{program}: {e}\n")),
        };
        let group = child.id();
        // Drain both pipes on their own threads so a chatty command cannot block on a full pipe
        // while we wait for it.
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    kill_group(group);
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "{program}: killed with its process group after {}s\n",
                        started.elapsed().as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    kill_group(group);
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("{program}: waiting for it: {e}\n"));
                }
            }
        };
        // Whatever the command left running in its group ends with it: a background process
        // would otherwise hold the output pipes, and the next step would wait on it.
        kill_group(group);
        let pipes_by = Instant::now() + PIPE_GRACE;
        let stdout = stdout.map(|rx| collect(&rx, pipes_by)).unwrap_or_default();
        let mut stderr = stderr.map(|rx| collect(&rx, pipes_by)).unwrap_or_default();
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

/// Reads a pipe to its end on a thread of its own; the text arrives on the channel.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// What a pipe held, or a note that it was still held open by `by`.
fn collect(rx: &mpsc::Receiver<String>, by: Instant) -> String {
    rx.recv_timeout(by.saturating_duration_since(Instant::now()))
        .unwrap_or_else(|_| {
            "(output not read: a process outside the command's group held it open)\n".to_owned()
        })
}

#[cfg(unix)]
fn new_process_group(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(not(unix))]
fn new_process_group(_: &mut Command) {}

/// Sends SIGKILL to the process group `pgid`; a group already gone is no error.
#[cfg(unix)]
fn kill_group(pgid: u32) {
    use rustix::process::{Pid, Signal, kill_process_group};
    if let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

#[cfg(not(unix))]
fn kill_group(_: u32) {}

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
        assert!(
            out.stderr.contains("killed with its process group"),
            "{}",
            out.stderr
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// Whether process `pid` is gone (reaped, or a zombie nobody waits for).
    fn gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    fn wait_gone(pid: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if gone(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn a_timeout_kills_the_background_grandchild_too_and_returns_without_waiting_on_its_pipes() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!(
            "sleep 60 & echo $! > {}; echo started; sleep 60",
            pidfile.display()
        );
        let mut host = ProcessHost::new(Duration::from_millis(300));
        let started = Instant::now();
        let out = host.run(&argv(&["sh", "-c", &script]));
        let took = started.elapsed();
        assert_eq!(out.code, EXIT_TIMED_OUT, "{out:?}");
        assert_eq!(out.stdout, "started\n", "the output so far is kept");
        assert!(
            took < PIPE_GRACE,
            "took {took:?}: the grandchild held the pipes open"
        );
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        assert!(wait_gone(pid.trim()), "grandchild {} survived", pid.trim());
        // The next command runs at once.
        let next = Instant::now();
        assert_eq!(host.run(&argv(&["true"])).code, 0);
        assert!(next.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_command_that_exits_leaving_a_background_process_returns_at_once_and_the_process_ends() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("left.pid");
        let script = format!("sleep 60 & echo $! > {}; echo done", pidfile.display());
        let mut host = ProcessHost::new(Duration::from_secs(30));
        let started = Instant::now();
        let out = host.run(&argv(&["sh", "-c", &script]));
        assert_eq!((out.code, out.stdout.as_str()), (0, "done\n"));
        assert!(started.elapsed() < PIPE_GRACE, "took {:?}", started.elapsed());
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        assert!(
            wait_gone(pid.trim()),
            "left-behind process {} survived",
            pid.trim()
        );
    }

    #[test]
    fn in_the_host_root_every_command_is_started_through_the_launcher_with_the_root_and_its_argv() {
        let host = ProcessHost::new(Duration::from_secs(5)).in_host_root("/nodewright", "/host");
        assert_eq!(
            host.command_line(&argv(&["ip", "-j", "-d", "link", "show"])),
            [
                "/nodewright",
                "host-exec",
                "--root",
                "/host",
                "--",
                "ip",
                "-j",
                "-d",
                "link",
                "show"
            ]
            .map(OsString::from)
            .to_vec()
        );
        assert_eq!(
            ProcessHost::default().command_line(&argv(&["lsmod"])),
            vec![OsString::from("lsmod")],
            "the agent's own root runs the command as it is"
        );
    }

    #[test]
    fn the_step_deadline_cuts_a_command_shorter_than_its_own_timeout() {
        let mut host = ProcessHost::new(Duration::from_secs(300));
        let started = Instant::now();
        let out = host.run_until(
            &argv(&["sleep", "30"]),
            Some(Instant::now() + Duration::from_millis(200)),
        );
        assert_eq!(out.code, EXIT_TIMED_OUT);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
