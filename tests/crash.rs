//! Crash tests: the real `nodewright` binary runs as separate OS processes against the real test
//! API server and is killed with SIGKILL at chosen points — failpoints (`nodewright_kit::failpoint`,
//! compiled in by this test target's `failpoints` feature) that pause the process and say so, so the
//! test kills it exactly there, or that make it kill itself.
//!
//! The agent's host is real processes: a `systemctl` on `PATH` that keeps its units in a file and
//! logs every start, so a test can count how often a step acted on the host.
//!
//! Run with `cargo test -p nodewright --features failpoints --test crash`.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use nodewright_agent_shim::journal::{JOURNAL_FILE, KeyState, replay};
use nodewright_api::common::condition_type;
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase, NodeTaskSpec};
use nodewright_testenv::{TestContext, eventually, install_crds};

const WAIT: Duration = Duration::from_secs(60);

/// A `nodewright` process whose standard error is read line by line: kept for the failure
/// message, and handed to the test to wait for a failpoint's announcement.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn spawn(mut cmd: Command) -> Process {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("nodewright starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Process { child, lines, log }
    }

    /// Waits for a line of standard error that contains `needle`.
    fn wait_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no line with {needle:?} from nodewright; its log:\n{}",
                    self.log.lock().unwrap().join("\n")
                ),
            }
        }
    }

    /// SIGKILL, and the process reaped.
    fn sigkill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }

    /// Waits for the process to end by itself (a failpoint that killed it) and returns the
    /// signal that ended it.
    fn wait_killed(mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.signal();
            }
            assert!(Instant::now() < deadline, "nodewright did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One node's host, faked with real processes: `bin/systemctl`, whose units are the lines of
/// `active` and which appends `start UNIT` to `mutations` for every start. A unit named `hang*`
/// starts a background grandchild (its pid in `grandchild.pid`) and never returns.
struct Host {
    dir: tempfile::TempDir,
}

const SYSTEMCTL: &str = r#"#!/bin/sh
set -u
case "$1" in
is-active)
  if grep -qx "$2" "$FAKE_HOST/active" 2>/dev/null; then echo active; exit 0; fi
  echo inactive
  exit 3 ;;
start)
  echo "start $2" >>"$FAKE_HOST/mutations"
  case "$2" in
  hang*)
    sleep 300 &
    echo $! >"$FAKE_HOST/grandchild.pid"
    sleep 300 ;;
  esac
  echo "$2" >>"$FAKE_HOST/active" ;;
*)
  echo "systemctl: $1 is not faked" >&2
  exit 1 ;;
esac
"#;

impl Host {
    fn new() -> Host {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let systemctl = dir.path().join("bin/systemctl");
        std::fs::write(&systemctl, SYSTEMCTL).unwrap();
        std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        Host { dir }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// How many times `unit` was started on this host.
    fn starts(&self, unit: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("mutations"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == format!("start {unit}"))
            .count()
    }

    fn journal(&self) -> String {
        std::fs::read_to_string(self.state_dir().join(JOURNAL_FILE)).unwrap_or_default()
    }

    /// `nodewright agent` for node `edge-1` on this host, with `failpoints` armed.
    fn agent(&self, ctx: &TestContext, failpoints: &str) -> Process {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodewright"));
        cmd.args([
            "agent",
            "--node",
            "edge-1",
            "--pod-name",
            "agent-edge-1",
            "--host-os",
            "debian",
        ])
        .args(["--namespace", &ctx.namespace])
        .arg("--state-dir")
        .arg(self.state_dir())
        .arg("--kubeconfig")
        .arg(ctx.control_plane.kubeconfig())
        .args(["--command-timeout-seconds", "30"])
        .env_remove("NODE_NAME")
        .env_remove("POD_NAME")
        .env("PATH", path)
        .env("FAKE_HOST", self.dir.path())
        .env("RUST_LOG", "info")
        .env(nodewright_kit::failpoint::ENV, failpoints);
        Process::spawn(cmd)
    }
}

async fn context(prefix: &str) -> TestContext {
    let ctx = TestContext::new(prefix).await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    ctx
}

async fn start_unit(ctx: &TestContext, name: &str, unit: &str, key: &str, timeout_seconds: i32) {
    let task = NodeTask::new(
        name,
        NodeTaskSpec {
            node_name: "edge-1".into(),
            step: "service-start".into(),
            args: vec![unit.to_owned()],
            idempotency_key: key.into(),
            workflow_ref: None,
            timeout_seconds,
        },
    );
    ctx.api::<NodeTask>()
        .create(&PostParams::default(), &task)
        .await
        .unwrap();
}

async fn phase_is(api: &Api<NodeTask>, name: &str, wanted: &[NodeTaskPhase]) -> NodeTask {
    eventually(&format!("task {name} in {wanted:?}"), WAIT, || async {
        let t = api.get(name).await.ok()?;
        let phase = t.status.as_ref()?.phase?;
        wanted.contains(&phase).then_some(t)
    })
    .await
}

async fn finished(api: &Api<NodeTask>, name: &str) -> NodeTask {
    phase_is(api, name, &[NodeTaskPhase::Succeeded, NodeTaskPhase::Failed]).await
}

fn reason(task: &NodeTask) -> String {
    let status = task.status.as_ref().unwrap();
    status
        .conditions
        .iter()
        .find(|c| c.type_ == condition_type::COMPLETE)
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

fn message(task: &NodeTask) -> String {
    task.status.as_ref().unwrap().message.clone().unwrap_or_default()
}

fn is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn read_journal(dir: &Path) -> nodewright_agent_shim::journal::JournalState {
    let text = std::fs::read_to_string(dir.join(JOURNAL_FILE)).unwrap();
    let (state, corrupt) = replay(&text);
    assert!(
        corrupt.is_empty(),
        "the repaired journal reads whole: {corrupt:?}\n{text}"
    );
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_journal_append_keeps_every_acknowledged_record_discards_the_torn_one_and_acts_once()
 {
    let ctx = context("crash-journal-torn").await;
    let api = ctx.api::<NodeTask>();
    let host = Host::new();
    // The second `finished` record is torn: half of it is written, then the agent pauses there.
    let agent = host.agent(&ctx, "journal.append.finished=pause@2");

    start_unit(&ctx, "first", "nw-a.service", "key-a", 60).await;
    let first = finished(&api, "first").await;
    assert_eq!(
        first.status.as_ref().unwrap().phase,
        Some(NodeTaskPhase::Succeeded)
    );

    start_unit(&ctx, "second", "nw-b.service", "key-b", 60).await;
    agent.wait_line("failpoint journal.append.finished paused");
    let torn = host.journal();
    assert!(!torn.ends_with('\n'), "the last record is torn:\n{torn}");
    assert_eq!(host.starts("nw-b.service"), 1, "the step acted before the append");
    agent.sigkill();
    let second = api.get("second").await.unwrap();
    assert_eq!(
        second.status.as_ref().unwrap().phase,
        Some(NodeTaskPhase::Running),
        "killed before it reported"
    );

    let agent = host.agent(&ctx, "");
    let second = finished(&api, "second").await;
    assert_eq!(
        second.status.as_ref().unwrap().phase,
        Some(NodeTaskPhase::Succeeded),
        "{second:?}"
    );
    let said = message(&second);
    assert!(
        said.contains("resumed after an interruption") && said.contains("already done"),
        "{said}"
    );
    assert_eq!(host.starts("nw-b.service"), 1, "the host was not changed twice");
    // The torn record was detected (the file before repair is kept) and discarded; the
    // acknowledged one is still there.
    assert!(host.state_dir().join("journal.jsonl.bak").exists());
    let journal = read_journal(&host.state_dir());
    assert!(matches!(journal.key_state("key-a"), KeyState::Finished { finished, .. } if finished.code == 0));
    assert!(matches!(journal.key_state("key-b"), KeyState::Finished { finished, .. } if finished.code == 0));

    // The acknowledged key is never run again: a new task with it is answered from the journal.
    start_unit(&ctx, "first-again", "nw-a.service", "key-a", 60).await;
    let again = finished(&api, "first-again").await;
    assert_eq!(reason(&again), "ReportedFromJournal", "{again:?}");
    assert_eq!(host.starts("nw-a.service"), 1);
    agent.sigkill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_kills_itself_after_journalling_a_start_resumes_the_step_and_runs_it_once() {
    let ctx = context("crash-journal-started").await;
    let api = ctx.api::<NodeTask>();
    let host = Host::new();
    // SIGKILL right after the first record (the start) is on disk, before the step runs.
    let agent = host.agent(&ctx, "journal.append.synced=kill@1");
    start_unit(&ctx, "only", "nw-c.service", "key-c", 60).await;
    agent.wait_line("failpoint journal.append.synced kill");
    assert_eq!(agent.wait_killed(), Some(9));
    assert_eq!(host.starts("nw-c.service"), 0, "killed before the step");

    let agent = host.agent(&ctx, "");
    let only = finished(&api, "only").await;
    assert_eq!(
        only.status.as_ref().unwrap().phase,
        Some(NodeTaskPhase::Succeeded),
        "{only:?}"
    );
    assert!(
        message(&only).contains("resumed after an interruption"),
        "{}",
        message(&only)
    );
    assert_eq!(host.starts("nw-c.service"), 1);
    assert_eq!(only.status.as_ref().unwrap().attempts, 2);
    agent.sigkill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_leaves_a_grandchild_times_out_with_its_whole_group_killed_is_settled_and_the_next_step_runs_promptly()
 {
    let ctx = context("crash-timeout-group").await;
    let api = ctx.api::<NodeTask>();
    let host = Host::new();
    let agent = host.agent(&ctx, "");
    let started = Instant::now();
    start_unit(&ctx, "hang", "hang.service", "key-hang", 1).await;
    phase_is(
        &api,
        "hang",
        &[
            NodeTaskPhase::Running,
            NodeTaskPhase::Unknown,
            NodeTaskPhase::Failed,
        ],
    )
    .await;
    start_unit(&ctx, "next", "nw-next.service", "key-next", 60).await;

    let hang = finished(&api, "hang").await;
    let status = hang.status.clone().unwrap();
    assert_eq!(status.phase, Some(NodeTaskPhase::Failed), "{status:?}");
    assert_eq!(status.exit_code, Some(124));
    assert_eq!(reason(&hang), "TimedOutNotDone");
    let said = message(&hang);
    assert!(
        said.contains("timed out after 1s") && said.contains("not done on the host"),
        "{said}"
    );
    let next = finished(&api, "next").await;
    assert_eq!(
        next.status.as_ref().unwrap().phase,
        Some(NodeTaskPhase::Succeeded),
        "{next:?}"
    );
    let took = started.elapsed();
    // The grandchild sleeps for 300 s holding the output pipes; only killing the group makes
    // the next step run within seconds.
    assert!(took < Duration::from_secs(20), "the next step waited {took:?}");
    let pid = std::fs::read_to_string(host.dir.path().join("grandchild.pid")).unwrap();
    assert!(
        is_gone(&pid),
        "the grandchild {} survived the timeout",
        pid.trim()
    );
    assert_eq!(
        host.starts("hang.service"),
        1,
        "a timed-out step is not run again"
    );
    let journal = host.journal();
    assert!(
        journal.contains("\"record\":\"timedOut\",\"key\":\"key-hang\""),
        "{journal}"
    );
    agent.sigkill();
}
