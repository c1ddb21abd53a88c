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
        if std::thread::panicking() {
            let status = self.child.try_wait();
            eprintln!(
                "log of nodewright ({status:?}):\n{}",
                self.log.lock().unwrap().join("\n")
            );
        }
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

/// A legacy site of two nodes for the operator: the cluster-state and node ConfigMaps as the
/// scripts write them (the first node healthy, the second resyncing, so the taints decision
/// patches both Nodes), the Nodes, and an `EdgeCluster` with the taints workflow in `shadow`.
struct TaintSite {
    ctx: TestContext,
    legacy_ns: String,
    nodes: [String; 2],
}

/// Now, as a script's heartbeat: RFC 3339 to the second.
fn heartbeat() -> String {
    k8s_openapi::jiff::Timestamp::from_second(nodewright_kit::clock::unix_now())
        .unwrap()
        .to_string()
}

fn script_status(role: &str, uptodate: u32, syncing: bool, taint: &str) -> String {
    format!(
        "at={};state=ready;role={role};net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;\
         slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;\
         drbd=ok;resources=1;uptodate={uptodate};syncing={};taint={taint};boot=COMPLETED;upgrade=;\
         drbd_version=9.2.5",
        nodewright_kit::clock::unix_now(),
        u8::from(syncing)
    )
}

impl TaintSite {
    async fn new(prefix: &str) -> TaintSite {
        use k8s_openapi::api::core::v1::Node;
        use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec, SiteProfile, Topology};
        let ctx = context(prefix).await;
        let legacy_ns = nodewright_testenv::unique_name(&format!("{prefix}-legacy"));
        nodewright_testenv::create_namespace(&ctx.client, &legacy_ns, &[])
            .await
            .unwrap();
        let nodes = [
            nodewright_testenv::unique_name("crash-a"),
            nodewright_testenv::unique_name("crash-b"),
        ];
        let site = TaintSite {
            ctx,
            legacy_ns,
            nodes,
        };
        let members = format!(
            "node,storage_ip,role,joined\n{},10.10.100.11/24,primary,1714557600\n{},10.10.100.12/24,member,1714557600",
            site.nodes[0], site.nodes[1]
        );
        let cluster = format!(
            "primary={};topology=multi;replicas=2;storage_pool=pool0;created=1714557600;schema=4",
            site.nodes[0]
        );
        site.config_map(
            "vx-rail-cluster-state",
            &[("cluster", cluster), ("members", members)],
        )
        .await;
        for n in &site.nodes {
            let node = Node {
                metadata: kube::api::ObjectMeta {
                    name: Some(n.clone()),
                    ..Default::default()
                },
                ..Node::default()
            };
            Api::<Node>::all(site.ctx.client.clone())
                .create(&PostParams::default(), &node)
                .await
                .unwrap();
        }
        site.report(None).await;
        let spec = EdgeClusterSpec {
            profile: SiteProfile {
                topology: Topology::MultiNode,
                storage_backend: Default::default(),
                operating_system: None,
            },
            expected_nodes: None,
            primary_node: None,
            workflows: nodewright_api::edgecluster::WorkflowModes {
                taints: nodewright_api::WorkflowMode::Shadow,
                ..Default::default()
            },
            legacy: Default::default(),
        };
        site.ctx
            .api::<EdgeCluster>()
            .create(&PostParams::default(), &EdgeCluster::new("site", spec))
            .await
            .unwrap();
        site
    }

    async fn config_map(&self, name: &str, data: &[(&str, String)]) {
        use k8s_openapi::api::core::v1::ConfigMap;
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": data.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
        });
        Api::<ConfigMap>::namespaced(self.ctx.client.clone(), &self.legacy_ns)
            .patch(
                name,
                &kube::api::PatchParams::apply("legacy-script").force(),
                &kube::api::Patch::Apply(&cm),
            )
            .await
            .unwrap();
    }

    /// Both scripts report, acknowledging takeover `generation` when given.
    async fn report(&self, generation: Option<&str>) {
        let blobs = [
            script_status("primary", 1, false, "none"),
            script_status("member", 0, true, "resync"),
        ];
        for (n, blob) in self.nodes.iter().zip(blobs) {
            let mut data = vec![
                ("script-version", "4.12.3".to_owned()),
                ("heartbeat", heartbeat()),
                ("status", blob),
            ];
            if let Some(g) = generation {
                data.push(("takeover-generation", g.to_owned()));
            }
            self.config_map(&format!("vx-rail-node-{n}"), &data).await;
        }
    }

    async fn set_taints_mode(&self, mode: &str) {
        let patch = serde_json::json!({"spec": {"workflows": {"taints": mode}}});
        self.ctx
            .api::<nodewright_api::edgecluster::EdgeCluster>()
            .patch(
                "site",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }

    /// The takeover generation the operator projected.
    async fn generation(&self) -> Option<String> {
        use k8s_openapi::api::core::v1::ConfigMap;
        Api::<ConfigMap>::namespaced(self.ctx.client.clone(), &self.legacy_ns)
            .get_opt("nodewright-takeover")
            .await
            .ok()??
            .data?
            .get("generation")
            .cloned()
    }

    async fn node(&self, i: usize) -> k8s_openapi::api::core::v1::Node {
        Api::<k8s_openapi::api::core::v1::Node>::all(self.ctx.client.clone())
            .get(&self.nodes[i])
            .await
            .unwrap()
    }

    /// `nodewright operator` for this site, with `failpoints` armed.
    fn operator(&self, failpoints: &str) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodewright"));
        cmd.args(["operator", "--namespace", &self.ctx.namespace])
            .args(["--legacy-namespace", &self.legacy_ns, "--cluster-name", "site"])
            .args(["--interval", "1", "--no-leader-election", "--no-logs"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .arg("--kubeconfig")
            .arg(self.ctx.control_plane.kubeconfig())
            .env("RUST_LOG", "info")
            .env(nodewright_kit::failpoint::ENV, failpoints);
        Process::spawn(cmd)
    }
}

/// The operator's label on a Node, if it wrote one.
fn ready_label(node: &k8s_openapi::api::core::v1::Node) -> Option<String> {
    node.metadata
        .labels
        .as_ref()?
        .get("vx-rail.io/storage-ready")
        .cloned()
}

fn storage_taint(node: &k8s_openapi::api::core::v1::Node) -> Option<String> {
    node.spec
        .as_ref()?
        .taints
        .as_ref()?
        .iter()
        .find(|t| t.key == "vx-rail.io/storage-not-ready")
        .and_then(|t| t.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_right_after_a_node_patch_does_not_patch_it_again_after_restart() {
    let site = TaintSite::new("crash-operator-node").await;
    // Paused right after its first Node patch landed, before anything else of the turn.
    let operator = site.operator("writer.node.after=pause@1");
    // Shadow first, then operator, as a person moves a workflow over; both scripts acknowledge.
    let shadow = eventually("the takeover projected", WAIT, || site.generation()).await;
    site.report(Some(&shadow)).await;
    site.set_taints_mode("operator").await;
    let generation = eventually("the operator mode projected", WAIT, || async {
        site.generation().await.filter(|g| *g != shadow)
    })
    .await;
    site.report(Some(&generation)).await;
    operator.wait_line("failpoint writer.node.after paused");
    let (a, b) = (site.node(0).await, site.node(1).await);
    operator.sigkill();
    // Exactly one of the two Nodes was patched before the kill.
    let patched: Vec<usize> = [&a, &b]
        .iter()
        .enumerate()
        .filter(|(_, n)| ready_label(n).is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(patched.len(), 1, "{a:?}\n{b:?}");
    let first = patched[0];
    let version_at_kill = [a, b][first].metadata.resource_version.clone();

    let operator = site.operator("");
    let line = operator.wait_line("admin server listening");
    let port: u16 = line.rsplit(':').next().unwrap().trim().parse().unwrap();
    let (a, b) = eventually("both Nodes as the taints decision wants them", WAIT, || async {
        let (a, b) = (site.node(0).await, site.node(1).await);
        (ready_label(&a).as_deref() == Some("true")
            && storage_taint(&a).is_none()
            && ready_label(&b).as_deref() == Some("false")
            && storage_taint(&b).as_deref() == Some("resync"))
        .then_some((a, b))
    })
    .await;
    // The restarted operator finished the other Node's patch, so it decided past the first one:
    // the first, made before the kill, was not made again.
    assert_eq!(
        [a, b][first].metadata.resource_version,
        version_at_kill,
        "the Node patched before the kill was patched again"
    );
    // A patch with the same content would leave the resourceVersion alone: the restarted
    // operator's own count of the Node writes it made says it made one, the other Node's. (The
    // plan orders its Node patches, so a repeat of the first would have come, and been counted,
    // before the other Node's, whose count is waited for here.)
    let node_writes = eventually(
        "the restarted operator's count of its Node writes",
        WAIT,
        || async {
            let metrics = nodewright_testenv::http_get(port, "/metrics").await.ok()?;
            let lines: Vec<String> = metrics
                .lines()
                .filter(|l| {
                    l.starts_with("nodewright_operator_actions_total{") && l.contains("kind=\"node\"")
                })
                .map(str::to_owned)
                .collect();
            (!lines.is_empty()).then_some(lines)
        },
    )
    .await;
    assert_eq!(
        node_writes,
        ["nodewright_operator_actions_total{kind=\"node\",result=\"ok\",workflow=\"taints\"} 1"]
    );
    operator.sigkill();
}

/// `linstor`, faked for the source's agent: `node list` prints the satellites of
/// `$FAKE_HOST/nodes` (one `NAME IP` a line) in LINSTOR's table, and `node create` adds one and
/// appends `node create NAME` to `$FAKE_HOST/mutations`.
const LINSTOR: &str = r#"#!/bin/sh
set -u
touch "$FAKE_HOST/nodes"
case "$2 $3" in
"node list")
  printf '%s\n' '╭──────────────────────────────────────────────────────────╮'
  printf '%s\n' '┊ Node   ┊ NodeType  ┊ Addresses                 ┊ State  ┊'
  printf '%s\n' '╞══════════════════════════════════════════════════════════╡'
  while read -r name ip; do
    printf '┊ %s ┊ SATELLITE ┊ %s:3366 (PLAIN) ┊ Online ┊\n' "$name" "$ip"
  done <"$FAKE_HOST/nodes"
  printf '%s\n' '╰──────────────────────────────────────────────────────────╯' ;;
"node create")
  echo "node create $4" >>"$FAKE_HOST/mutations"
  echo "$4 $5" >>"$FAKE_HOST/nodes"
  echo "SUCCESS: node $4 created" ;;
*)
  echo "linstor: $* is not faked" >&2
  exit 1 ;;
esac
"#;

/// A single-node site about to grow by two nodes, for an operator-owned `Migration`: the
/// cluster state with its network plan, the Nodes, the scripts' reports (the joining nodes'
/// bonds and storage VLAN up, the source's storage UpToDate), and an `EdgeCluster`.
struct MigrationSite {
    ctx: TestContext,
    legacy_ns: String,
    source: String,
    joining: [String; 2],
    host: Host,
}

impl MigrationSite {
    async fn new(prefix: &str) -> MigrationSite {
        use k8s_openapi::api::core::v1::Node;
        use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec, SiteProfile, Topology};
        let ctx = context(prefix).await;
        let legacy_ns = nodewright_testenv::unique_name(&format!("{prefix}-legacy"));
        nodewright_testenv::create_namespace(&ctx.client, &legacy_ns, &[])
            .await
            .unwrap();
        let source = nodewright_testenv::unique_name("mig-src");
        let joining = [
            nodewright_testenv::unique_name("mig-j1"),
            nodewright_testenv::unique_name("mig-j2"),
        ];
        let host = Host::new();
        {
            use std::os::unix::fs::PermissionsExt;
            let linstor = host.dir.path().join("bin/linstor");
            std::fs::write(&linstor, LINSTOR).unwrap();
            std::fs::set_permissions(&linstor, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let site = MigrationSite {
            ctx,
            legacy_ns,
            source,
            joining,
            host,
        };
        let members = format!(
            "node,storage_ip,role,joined\n{},10.100.0.11/24,primary,100\n{},10.100.0.12/24,joining,200\n{},10.100.0.13/24,joining,200",
            site.source, site.joining[0], site.joining[1]
        );
        let cluster = format!(
            "primary={};topology=single;replicas=1;storage_pool=pool0;created=100;schema=4",
            site.source
        );
        let plan = r#"{"version":1,"bond":{"name":"bond0","mode":"active-backup","miimon":100,"slaves":["eno1","eno2"]},"storageVlan":{"id":100,"prefixLength":24},"mgmtVlan":{"id":200},"nodes":[]}"#;
        site.config_map(
            "vx-rail-cluster-state",
            &[
                ("cluster", cluster),
                ("members", members),
                ("network-plan", plan.to_owned()),
            ],
        )
        .await;
        for n in site.all() {
            let node = Node {
                metadata: kube::api::ObjectMeta {
                    name: Some(n.clone()),
                    ..Default::default()
                },
                ..Node::default()
            };
            Api::<Node>::all(site.ctx.client.clone())
                .create(&PostParams::default(), &node)
                .await
                .unwrap();
        }
        site.report(None).await;
        let spec = EdgeClusterSpec {
            profile: SiteProfile {
                topology: Topology::SingleNode,
                storage_backend: Default::default(),
                operating_system: None,
            },
            expected_nodes: None,
            primary_node: None,
            workflows: nodewright_api::edgecluster::WorkflowModes {
                migration: nodewright_api::WorkflowMode::Shadow,
                ..Default::default()
            },
            legacy: Default::default(),
        };
        site.ctx
            .api::<EdgeCluster>()
            .create(&PostParams::default(), &EdgeCluster::new("site", spec))
            .await
            .unwrap();
        site
    }

    fn all(&self) -> Vec<String> {
        std::iter::once(self.source.clone())
            .chain(self.joining.iter().cloned())
            .collect()
    }

    async fn config_map(&self, name: &str, data: &[(&str, String)]) {
        use k8s_openapi::api::core::v1::ConfigMap;
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": data.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
        });
        Api::<ConfigMap>::namespaced(self.ctx.client.clone(), &self.legacy_ns)
            .patch(
                name,
                &kube::api::PatchParams::apply("legacy-script").force(),
                &kube::api::Patch::Apply(&cm),
            )
            .await
            .unwrap();
    }

    /// Every script reports, acknowledging takeover `generation` when given.
    async fn report(&self, generation: Option<&str>) {
        for (i, n) in self.all().iter().enumerate() {
            let role = if i == 0 { "primary" } else { "joining" };
            let mut data = vec![
                ("script-version", "4.12.3".to_owned()),
                ("heartbeat", heartbeat()),
                ("status", script_status(role, 1, false, "none")),
            ];
            if let Some(g) = generation {
                data.push(("takeover-generation", g.to_owned()));
            }
            self.config_map(&format!("vx-rail-node-{n}"), &data).await;
        }
    }

    async fn generation(&self) -> Option<String> {
        use k8s_openapi::api::core::v1::ConfigMap;
        Api::<ConfigMap>::namespaced(self.ctx.client.clone(), &self.legacy_ns)
            .get_opt("nodewright-takeover")
            .await
            .ok()??
            .data?
            .get("generation")
            .cloned()
    }

    fn operator(&self, failpoints: &str) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodewright"));
        cmd.args(["operator", "--namespace", &self.ctx.namespace])
            .args(["--legacy-namespace", &self.legacy_ns, "--cluster-name", "site"])
            .args(["--interval", "1", "--no-leader-election", "--no-logs"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .arg("--kubeconfig")
            .arg(self.ctx.control_plane.kubeconfig())
            .env("RUST_LOG", "info")
            .env(nodewright_kit::failpoint::ENV, failpoints);
        Process::spawn(cmd)
    }

    /// The source node's agent, on the faked host.
    fn agent(&self) -> Process {
        let path = format!(
            "{}:{}",
            self.host.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodewright"));
        cmd.args([
            "agent",
            "--node",
            &self.source,
            "--pod-name",
            "agent-source",
            "--host-os",
            "debian",
        ])
        .args(["--namespace", &self.ctx.namespace])
        .arg("--state-dir")
        .arg(self.host.state_dir())
        .arg("--kubeconfig")
        .arg(self.ctx.control_plane.kubeconfig())
        .env_remove("NODE_NAME")
        .env_remove("POD_NAME")
        .env("PATH", path)
        .env("FAKE_HOST", self.host.dir.path())
        .env("RUST_LOG", "info");
        Process::spawn(cmd)
    }

    fn creates(&self, node: &str) -> usize {
        std::fs::read_to_string(self.host.dir.path().join("mutations"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == format!("node create {node}"))
            .count()
    }
}

/// Hands the migration workflow to the operator (shadow, then operator, both acknowledged) and
/// asks for an operator-owned `Migration` `grow` of the source by the two joining nodes. The
/// operator runs with `failpoints`; the source's agent runs alongside.
async fn start_migration(site: &MigrationSite, failpoints: &str) -> (Process, Process) {
    use nodewright_api::migration::{Migration, MigrationSpec};
    let operator = site.operator(failpoints);
    let agent = site.agent();
    let shadow = eventually("the takeover projected", WAIT, || site.generation()).await;
    site.report(Some(&shadow)).await;
    let patch = serde_json::json!({"spec": {"workflows": {"migration": "operator"}}});
    site.ctx
        .api::<nodewright_api::edgecluster::EdgeCluster>()
        .patch(
            "site",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let generation = eventually("the operator mode projected", WAIT, || async {
        site.generation().await.filter(|g| *g != shadow)
    })
    .await;
    site.report(Some(&generation)).await;
    let spec: MigrationSpec = serde_json::from_value(serde_json::json!({
        "clusterRef": {"name": "site"},
        "owner": "operator",
        "sourceNode": site.source,
        "joiningNodes": site.joining,
        "replicas": 3,
    }))
    .unwrap();
    site.ctx
        .api::<Migration>()
        .create(&PostParams::default(), &Migration::new("grow", spec))
        .await
        .unwrap();
    (operator, agent)
}

/// With a restarted operator: both satellites end registered, by one task each, each run once on
/// the host, and the migration waits in `RegisteringSatellites` having entered no phase twice.
/// Returns the tasks' keys.
async fn registered_once(site: &MigrationSite) -> Vec<String> {
    use nodewright_api::migration::{Migration, MigrationPhase};
    let tasks = site.ctx.api::<NodeTask>();
    let registered = eventually("both satellites registered", WAIT, || async {
        let list = tasks.list(&Default::default()).await.ok()?.items;
        let done = list
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.phase) == Some(NodeTaskPhase::Succeeded));
        (done.count() == 2).then_some(list)
    })
    .await;
    let mut keys: Vec<String> = registered
        .iter()
        .map(|t| t.spec.idempotency_key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 2, "one task per joining node, none twice: {keys:?}");
    for n in &site.joining {
        assert_eq!(site.creates(n), 1, "{n} registered once");
    }
    let migrations = site.ctx.api::<Migration>();
    let status = eventually("the migration in RegisteringSatellites", WAIT, || async {
        let s = migrations.get("grow").await.ok()?.status?;
        (s.phase == Some(MigrationPhase::RegisteringSatellites)).then_some(s)
    })
    .await;
    let entered: Vec<MigrationPhase> = status.history.iter().map(|t| t.phase).collect();
    let mut once = entered.clone();
    once.dedup();
    assert_eq!(entered, once, "no phase entered twice: {entered:?}");
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_mid_phase_of_a_migration_creates_no_task_twice_and_each_key_runs_once() {
    use nodewright_api::migration::{Migration, MigrationPhase};
    let site = MigrationSite::new("crash-operator-migration").await;
    // Paused right after the first NodeTask of a phase is created: mid-phase, its other task not
    // created and what the phase waits for not written.
    let (operator, agent) = start_migration(&site, "writer.task.after=pause@1").await;
    operator.wait_line("failpoint writer.task.after paused");
    let before: Vec<String> = site
        .ctx
        .api::<NodeTask>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.spec.idempotency_key)
        .collect();
    assert_eq!(before.len(), 1, "{before:?}");
    let phase_at_kill = site
        .ctx
        .api::<Migration>()
        .get("grow")
        .await
        .unwrap()
        .status
        .unwrap()
        .phase;
    assert_eq!(
        phase_at_kill,
        Some(MigrationPhase::RegisteringSatellites),
        "killed inside the phase whose tasks it was creating"
    );
    operator.sigkill();

    let operator = site.operator("");
    let keys = registered_once(&site).await;
    assert!(
        keys.contains(&before[0]),
        "the task created before the kill is kept: {keys:?}"
    );
    operator.sigkill();
    agent.sigkill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_right_after_taking_the_storage_gate_carries_on_under_the_same_gate() {
    use k8s_openapi::api::coordination::v1::Lease;
    use nodewright_api::migration::Migration;
    let site = MigrationSite::new("crash-operator-gate").await;
    // SIGKILL right after the Lease is created, before the migration's status says it started.
    let (operator, agent) = start_migration(&site, "writer.gate.after=kill@1").await;
    operator.wait_line("failpoint writer.gate.after kill");
    assert_eq!(operator.wait_killed(), Some(9));
    let leases = site.ctx.api::<Lease>();
    let taken = leases.get("nodewright-storage-gate").await.unwrap();
    assert_eq!(
        taken.spec.as_ref().and_then(|s| s.holder_identity.as_deref()),
        Some("Migration/grow")
    );
    let status = site.ctx.api::<Migration>().get("grow").await.unwrap().status;
    assert!(
        status.is_none_or(|s| s.history.is_empty()),
        "killed before the migration left Pending"
    );

    // The restarted operator finds the gate its predecessor took for the same migration, and goes
    // on under it: the Lease is neither taken again nor released mid-migration.
    let operator = site.operator("");
    registered_once(&site).await;
    let held = leases.get("nodewright-storage-gate").await.unwrap();
    assert_eq!(held.metadata.uid, taken.metadata.uid, "the same Lease");
    assert_eq!(
        held.spec.as_ref().and_then(|s| s.holder_identity.as_deref()),
        Some("Migration/grow")
    );
    operator.sigkill();
    agent.sigkill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_between_two_phases_of_a_migration_carries_on_from_the_phase_it_wrote() {
    use nodewright_api::migration::Migration;
    let site = MigrationSite::new("crash-operator-phases").await;
    // SIGKILL right after the second status write of the migration (a phase entered), before
    // the next turn acts on it.
    let (operator, agent) = start_migration(&site, "writer.status.after=kill@2").await;
    operator.wait_line("failpoint writer.status.after kill");
    assert_eq!(operator.wait_killed(), Some(9));
    let at_kill = site
        .ctx
        .api::<Migration>()
        .get("grow")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(at_kill.history.len(), 2, "{at_kill:?}");

    let operator = site.operator("");
    registered_once(&site).await;
    operator.sigkill();
    agent.sigkill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_between_an_objects_write_and_its_status_write_leaves_nothing_half_written_after_restart()
 {
    use nodewright_api::edgenode::EdgeNode;
    let site = TaintSite::new("crash-bridge").await;
    let bridge = |failpoints: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodewright"));
        cmd.args(["bridge", "--namespace", &site.ctx.namespace])
            .args(["--legacy-namespace", &site.legacy_ns, "--cluster-name", "site"])
            .args(["--no-leader-election", "--no-logs", "--admin-addr", "127.0.0.1:0"])
            .arg("--kubeconfig")
            .arg(site.ctx.control_plane.kubeconfig())
            .env("RUST_LOG", "info")
            .env(nodewright_kit::failpoint::ENV, failpoints);
        Process::spawn(cmd)
    };
    // Paused right after the first EdgeNode object is applied, before its status is (other
    // writes of the same batch may still land meanwhile).
    let first = bridge("bridge.write.main.after.EdgeNode=pause@1");
    first.wait_line("failpoint bridge.write.main.after.EdgeNode paused");
    let edge_nodes = site.ctx.api::<EdgeNode>();
    let half: Vec<EdgeNode> = edge_nodes.list(&Default::default()).await.unwrap().items;
    assert!(
        half.iter().any(|n| n.status.is_none()),
        "an EdgeNode written without its status: {half:?}"
    );
    let uids: std::collections::BTreeMap<String, Option<String>> = half
        .iter()
        .map(|n| (n.metadata.name.clone().unwrap(), n.metadata.uid.clone()))
        .collect();
    first.sigkill();

    let second = bridge("");
    let whole = eventually("an EdgeNode with its status for every node", WAIT, || async {
        let list = edge_nodes.list(&Default::default()).await.ok()?.items;
        (list.len() == 2
            && list
                .iter()
                .all(|n| n.status.as_ref().is_some_and(|s| !s.bonds.is_empty())))
        .then_some(list)
    })
    .await;
    let mut names: Vec<String> = whole.iter().map(|n| n.metadata.name.clone().unwrap()).collect();
    names.sort();
    let mut want = site.nodes.to_vec();
    want.sort();
    assert_eq!(names, want, "one EdgeNode per node");
    // The object written before the kill is the one completed, not deleted and made again.
    for n in &whole {
        if let Some(uid) = uids.get(n.metadata.name.as_ref().unwrap()) {
            assert_eq!(&n.metadata.uid, uid);
        }
    }
    second.sigkill();
}

/// Hands the storage upgrade to the operator (shadow, then operator, both acknowledged) and asks
/// for an operator-owned `StorageUpgrade` `up` of the source node alone. The operator runs with
/// `failpoints`; no agent runs: the test reports the tasks' results as the agent would.
async fn start_upgrade(site: &MigrationSite, failpoints: &str) -> Process {
    use nodewright_api::storageupgrade::StorageUpgrade;
    let operator = site.operator(failpoints);
    let first = eventually("the takeover projected", WAIT, || site.generation()).await;
    site.report(Some(&first)).await;
    for mode in ["shadow", "operator"] {
        let before = site.generation().await;
        let patch = serde_json::json!({"spec": {"workflows": {"storageUpgrade": mode}}});
        site.ctx
            .api::<nodewright_api::edgecluster::EdgeCluster>()
            .patch(
                "site",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
        let generation = eventually("the mode projected", WAIT, || async {
            site.generation().await.filter(|g| Some(g) != before.as_ref())
        })
        .await;
        site.report(Some(&generation)).await;
    }
    let upgrade: StorageUpgrade = serde_json::from_value(serde_json::json!({
        "apiVersion": "nodewright.io/v1alpha1", "kind": "StorageUpgrade",
        "metadata": {"name": "up"},
        "spec": {"owner": "operator", "clusterRef": {"name": "site"},
                 "fromVersion": "9.2.12", "toVersion": "9.2.14", "nodeOrder": [site.source]},
    }))
    .unwrap();
    site.ctx
        .api::<StorageUpgrade>()
        .create(&PostParams::default(), &upgrade)
        .await
        .unwrap();
    operator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_between_a_states_task_and_its_status_write_creates_no_task_twice_and_the_upgrade_goes_on()
 {
    use nodewright_api::storageupgrade::{StorageUpgrade, UpgradeState};
    let site = MigrationSite::new("crash-operator-upgrade").await;
    // Paused right after PREFLIGHT's first NodeTask is created, before the status that records
    // it is written; then SIGKILLed there.
    let operator = start_upgrade(&site, "writer.task.after=pause@1").await;
    operator.wait_line("failpoint writer.task.after paused");
    let tasks = site.ctx.api::<NodeTask>();
    let before = tasks.list(&Default::default()).await.unwrap().items;
    assert_eq!(before.len(), 1, "{before:?}");
    let first = before[0].clone();
    assert_eq!(first.spec.step, "drbd-version");
    assert_eq!(first.spec.node_name, site.source);
    let upgrades = site.ctx.api::<StorageUpgrade>();
    let at_kill = upgrades.get("up").await.unwrap().status.unwrap();
    assert_eq!(at_kill.state, Some(UpgradeState::Preflight));
    operator.sigkill();

    // Restarted: the task is not created again, and once its result is in (as the agent reports
    // it), the state goes on to its next step.
    let operator = site.operator("");
    let status = eventually(
        "the upgrade waiting for the task created before the kill",
        WAIT,
        || async {
            let s = upgrades.get("up").await.ok()?.status?;
            s.conditions
                .iter()
                .any(|c| c.message.contains(first.metadata.name.as_deref().unwrap_or("?")))
                .then_some(s)
        },
    )
    .await;
    assert_eq!(status.state, Some(UpgradeState::Preflight));
    let done = serde_json::json!({"status": {
        "phase": "Succeeded",
        "exitCode": 0,
        "output": "kernel=9.2.12\npackage=9.2.12\n",
    }});
    tasks
        .patch_status(
            first.metadata.name.as_deref().unwrap(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&done),
        )
        .await
        .unwrap();
    let after = eventually("PREFLIGHT's next task created", WAIT, || async {
        let list = tasks.list(&Default::default()).await.ok()?.items;
        list.iter()
            .any(|t| t.spec.step == "service-status")
            .then_some(list)
    })
    .await;
    let versions: Vec<&NodeTask> = after.iter().filter(|t| t.spec.step == "drbd-version").collect();
    assert_eq!(versions.len(), 1, "no task twice: {after:?}");
    assert_eq!(versions[0].metadata.uid, first.metadata.uid, "the same task");
    let mut keys: Vec<&str> = after.iter().map(|t| t.spec.idempotency_key.as_str()).collect();
    keys.sort_unstable();
    let all = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), all, "{keys:?}");
    let status = upgrades.get("up").await.unwrap().status.unwrap();
    assert_eq!(status.state, Some(UpgradeState::Preflight));
    let node = status.nodes.iter().find(|n| n.node == site.source).unwrap();
    let entered: Vec<UpgradeState> = node.history.iter().map(|t| t.phase).collect();
    assert_eq!(
        entered.iter().filter(|s| **s == UpgradeState::Preflight).count(),
        1,
        "PREFLIGHT entered once: {entered:?}"
    );
    operator.sigkill();
}
