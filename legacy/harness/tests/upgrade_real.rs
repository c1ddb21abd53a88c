//! The storage upgrade handed from the legacy script to Nodewright as it is deployed: the legacy
//! script on every simulated node with the real kubectl, `nodewright operator` and one
//! `nodewright agent` per node (their libraries, in this process), all against the real API
//! server. The site runs the upgrade workflow `legacy`, then `shadow`, then `operator`; the
//! upgrade is then requested through the legacy key `desired-storage-version`. Midway through a
//! node's states the API server is stopped and started again on the same data, and the operator
//! is killed and started again; one agent is killed between running its host command and
//! reporting it, and a new one takes its place. The upgrade must complete node by node with
//! every host step run once.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use nodewright_agent_shim::AgentOptions;
use nodewright_agent_shim::host::{HostOps, HostOutput};
use nodewright_api::WorkflowMode;
use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec, SiteProfile, Topology, WorkflowModes};
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase};
use nodewright_api::storageupgrade::{StorageUpgrade, UpgradeState};
use nodewright_legacy_sim::run::{self, Host, RealCluster, RunConfig, Scenario};
use nodewright_parity::run::OperatorOptions;
use nodewright_sim_harness::world::{AgentHost, SharedWorld};
use nodewright_testenv::{ControlPlane, Options};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NS: &str = "nodewright-system";
const TO: &str = "9.2.14";
const UPGRADE: &str = "storage-9-2-14";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenario(name: &str) -> Scenario {
    let path = repo().join(format!("golden/scenarios/{name}.yaml"));
    Scenario::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn start_operator(rt: &Handle, client: kube::Client) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let mut options = OperatorOptions::new(NS, "site", "operator");
    options.interval = Duration::from_millis(300);
    let (tx, rx) = oneshot::channel::<()>();
    let task = rt.spawn(async move {
        nodewright_parity::run::run(client, options, None, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (tx, task)
}

/// An agent host that, once armed, runs the first `apt-get install` of the storage package and
/// then hangs before the agent can report it (a node losing its agent right after the
/// mutation): it says so on `reached` and waits on `release`.
#[derive(Clone)]
struct Interrupted {
    inner: Arc<Mutex<AgentHost>>,
    armed: Arc<AtomicBool>,
    reached: Arc<Mutex<mpsc::Sender<()>>>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl HostOps for Interrupted {
    fn run(&mut self, argv: &[String]) -> HostOutput {
        let out = self.inner.lock().unwrap().run(argv);
        let install = argv.first().is_some_and(|a| a == "apt-get" || a == "dnf")
            && argv.iter().any(|a| a == "install")
            && argv
                .iter()
                .any(|a| a.starts_with(nodewright_parity::upgrade::PACKAGE));
        if install && self.armed.swap(false, Ordering::SeqCst) {
            let _ = self.reached.lock().unwrap().send(());
            let _ = self.release.lock().unwrap().recv_timeout(Duration::from_secs(60));
        }
        out
    }
}

fn start_agent<H: HostOps>(
    rt: &Handle,
    client: kube::Client,
    node: &str,
    pod: &str,
    operator: &str,
    host: H,
    state: &Path,
) -> JoinHandle<()> {
    let mut options = AgentOptions::new(node.to_owned(), NS, pod.to_owned(), state.join(node));
    options.resync = Duration::from_secs(2);
    options.operator = Some(operator.to_owned());
    rt.spawn(async move {
        // Runs until the test ends or aborts it (a kill: no clean shutdown).
        nodewright_agent_shim::run(client, options, host, std::future::pending())
            .await
            .unwrap();
    })
}

/// Whether a host command changes the storage stack the upgrade works on.
fn upgrade_mutation(argv: &[String]) -> bool {
    let words: Vec<&str> = argv
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    matches!(
        words.as_slice(),
        ["drbdadm", "secondary" | "down", ..]
            | ["systemctl", "stop", ..]
            | ["modprobe", ..]
            | ["apt-get" | "dnf", "install", ..]
    ) && !argv.iter().any(|a| a == "--dry-run")
}

#[test]
fn the_storage_upgrade_handed_over_from_legacy_completes_node_by_node_through_an_api_server_restart_and_kills()
 {
    let rt = Runtime::new().unwrap();
    let control_plane = ControlPlane::start(Options::default()).unwrap();
    let client = rt.block_on(control_plane.client()).unwrap();
    rt.block_on(nodewright_testenv::install_crds(&client, &nodewright_api::crds()))
        .unwrap();
    rt.block_on(Api::<Namespace>::all(client.clone()).create(
        &PostParams::default(),
        &Namespace {
            metadata: ObjectMeta {
                name: Some(NS.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        },
    ))
    .unwrap();
    // The user the API server knows the operator by: the agents refuse tasks anyone else made.
    let operator_identity = rt
        .block_on(
            Api::<SelfSubjectReview>::all(client.clone())
                .create(&PostParams::default(), &SelfSubjectReview::default()),
        )
        .unwrap()
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap();
    let spec = EdgeClusterSpec {
        profile: SiteProfile {
            topology: Topology::MultiNode,
            storage_backend: Default::default(),
            operating_system: None,
        },
        expected_nodes: None,
        primary_node: None,
        // Every workflow legacy: the scripts decide the upgrade for the first ticks.
        workflows: WorkflowModes::default(),
        legacy: Default::default(),
    };
    assert_eq!(spec.workflows.storage_upgrade, WorkflowMode::Legacy);
    let clusters: Api<EdgeCluster> = Api::namespaced(client.clone(), NS);
    rt.block_on(clusters.create(&PostParams::default(), &EdgeCluster::new("site", spec)))
        .unwrap();

    let mut scenario = scenario("storage-upgrade");
    let request_tick = scenario.events.iter().map(|e| e.tick).min().unwrap();
    assert!(request_tick >= 3, "the request comes after the handover");
    scenario.ticks = 80;
    let names: Vec<String> = scenario.nodes.iter().map(|n| n.name.clone()).collect();
    let epoch = u64::try_from(nodewright_kit::clock::unix_now()).unwrap();
    let world = SharedWorld(Arc::new(Mutex::new(run::world_for_at(&scenario, epoch).unwrap())));
    let from = world.lock().nodes["edge-1"].packages[nodewright_parity::upgrade::PACKAGE]
        .version
        .clone();
    assert!(from.starts_with("9.2.12"), "{from}");
    let state = tempfile::tempdir().unwrap();

    // One agent per node; edge-3's hangs right after its install, once.
    let mut ran: BTreeMap<String, Arc<Mutex<Vec<Vec<String>>>>> = BTreeMap::new();
    let mut agents: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    let (reached_tx, reached_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let edge3 = Arc::new(Mutex::new(AgentHost::new(&world, "edge-3")));
    let interrupted = Interrupted {
        inner: edge3.clone(),
        armed: Arc::new(AtomicBool::new(true)),
        reached: Arc::new(Mutex::new(reached_tx)),
        release: Arc::new(Mutex::new(release_rx)),
    };
    for n in &names {
        let pod = format!("agent-{n}");
        let handle = if n == "edge-3" {
            ran.insert(n.clone(), edge3.lock().unwrap().ran.clone());
            start_agent(
                rt.handle(),
                client.clone(),
                n,
                &pod,
                &operator_identity,
                interrupted.clone(),
                state.path(),
            )
        } else {
            let host = AgentHost::new(&world, n);
            ran.insert(n.clone(), host.ran.clone());
            start_agent(
                rt.handle(),
                client.clone(),
                n,
                &pod,
                &operator_identity,
                host,
                state.path(),
            )
        };
        agents.insert(n.clone(), handle);
    }

    let kubectl_bin: PathBuf = control_plane.kubectl().get_program().into();
    let kubeconfig = control_plane.kubeconfig().to_path_buf();
    let mut cluster = RealCluster {
        kubectl: kubectl_bin,
        kubeconfig,
    };
    let config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!("vxr-upgrade-real-{}", std::process::id())),
        stuck_after: Duration::from_secs(60),
    };
    let upgrades: Api<StorageUpgrade> = Api::namespaced(client.clone(), NS);
    let kube_system: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let takeover_mode = || -> Option<String> {
        rt.block_on(kube_system.get_opt(nodewright_parity::takeover::CONFIGMAP))
            .ok()
            .flatten()
            .and_then(|cm| cm.data)
            .and_then(|mut d| d.remove("storage-upgrade"))
    };
    let set_mode = |mode: &str| {
        let patch = serde_json::json!({"spec": {"workflows": {"storageUpgrade": mode}}});
        rt.block_on(clusters.patch("site", &PatchParams::default(), &Patch::Merge(&patch)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while takeover_mode().as_deref() != Some(mode) {
            assert!(Instant::now() < deadline, "the takeover never showed {mode}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    // Alongside the scripts' loops, a watcher follows the upgrade: it notes any moment two
    // nodes are in per-node states, kills edge-3's agent once it ran its install without
    // reporting it, and restarts the API server and the operator midway through the second
    // node's states.
    let operator = Mutex::new(Some(start_operator(rt.handle(), client.clone())));
    let agents = Mutex::new(agents);
    let done = AtomicBool::new(false);
    let reached_rx = Mutex::new(reached_rx);
    let watch = || {
        let mut restarted_at: Option<(String, UpgradeState)> = None;
        let mut agent_killed = false;
        let mut busy_at_once = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(400);
        while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
            if !agent_killed && reached_rx.lock().unwrap().try_recv().is_ok() {
                // edge-3's agent ran the install and has not reported it: kill it, and start a
                // new pod on the same node (same state directory).
                agent_killed = true;
                let old = agents.lock().unwrap().remove("edge-3").unwrap();
                old.abort();
                let _ = rt.block_on(old);
                let _ = release_tx.send(());
                let host = AgentHost {
                    world: world.clone(),
                    node: "edge-3".into(),
                    ran: ran["edge-3"].clone(),
                };
                let again = start_agent(
                    rt.handle(),
                    client.clone(),
                    "edge-3",
                    "agent-edge-3-new",
                    &operator_identity,
                    host,
                    state.path(),
                );
                agents.lock().unwrap().insert("edge-3".into(), again);
            }
            let status = rt
                .block_on(upgrades.get_opt(UPGRADE))
                .ok()
                .flatten()
                .and_then(|u| u.status);
            if let Some(status) = status {
                let busy: Vec<&str> = status
                    .nodes
                    .iter()
                    .filter(|n| n.state.is_per_node())
                    .map(|n| n.node.as_str())
                    .collect();
                if busy.len() > 1 {
                    busy_at_once.push(format!("{busy:?}"));
                }
                let second = status.order.get(1);
                let in_middle = status.nodes.iter().find(|n| Some(&n.node) == second).filter(|n| {
                    n.state >= UpgradeState::StopSatellite && n.state <= UpgradeState::WaitResync
                });
                if restarted_at.is_none()
                    && let Some(n) = in_middle
                {
                    restarted_at = Some((n.node.clone(), n.state));
                    let (_stop, task) = operator.lock().unwrap().take().unwrap();
                    task.abort();
                    let _ = rt.block_on(task);
                    control_plane.stop().unwrap();
                    // The agents and the scripts go on without an API server for a while.
                    std::thread::sleep(Duration::from_secs(3));
                    control_plane.start_again().unwrap();
                    *operator.lock().unwrap() = Some(start_operator(rt.handle(), client.clone()));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (restarted_at, agent_killed, busy_at_once)
    };

    let mut completed_at = None;
    let mut after_tick = |tick: u32, _: &[run::TickOutput]| {
        match tick {
            // The scripts have run the site in legacy for a tick: the operator watches.
            0 => set_mode("shadow"),
            // The scripts have read the shadow takeover: hand the upgrade over, before the
            // request comes.
            1 => set_mode("operator"),
            _ => {}
        }
        // Let the operator and the agents work between the scripts' loops.
        std::thread::sleep(Duration::from_millis(1500));
        let completed = rt
            .block_on(upgrades.get_opt(UPGRADE))
            .ok()
            .flatten()
            .and_then(|u| u.status)
            .and_then(|s| s.state)
            == Some(UpgradeState::Completed);
        if completed {
            // Two more loops: the scripts read the completed upgrade once more.
            let at = *completed_at.get_or_insert(tick);
            if tick >= at + 2 {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    };
    let (trace, (restarted_at, agent_killed, busy_at_once)) = std::thread::scope(|scope| {
        let watcher = scope.spawn(watch);
        let trace = run::run_observed(
            &scenario,
            &mut world.clone(),
            &mut cluster,
            &config,
            true,
            &mut after_tick,
        );
        done.store(true, Ordering::SeqCst);
        (trace.unwrap(), watcher.join().unwrap())
    });
    let _ = std::fs::remove_dir_all(&config.work_dir);
    assert!(
        restarted_at.is_some(),
        "the API server was never restarted mid-node"
    );
    assert!(agent_killed, "edge-3's agent never reached its install");
    assert!(
        busy_at_once.is_empty(),
        "two nodes in per-node states at once: {busy_at_once:?}"
    );
    eprintln!("API server and operator restarted with {restarted_at:?}");

    // The upgrade the operator made from the legacy request completed, every node through every
    // per-node state in turn, one after the other.
    let upgrade = rt.block_on(upgrades.get(UPGRADE)).unwrap();
    assert_eq!(upgrade.spec.to_version, TO);
    assert!(from.starts_with(&upgrade.spec.from_version), "{:?}", upgrade.spec);
    let status = upgrade.status.clone().unwrap();
    assert_eq!(status.state, Some(UpgradeState::Completed), "{status:?}");
    assert_eq!(status.observed_generation, upgrade.metadata.generation);
    assert!(status.finished_at.is_some());
    let progress = status.progress.clone().unwrap();
    assert_eq!((progress.done, progress.total), (3, 3));
    let conditions: BTreeMap<&str, &str> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect();
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == upgrade.metadata.generation),
        "{:?}",
        status.conditions
    );
    assert_eq!(conditions.get("Complete"), Some(&"True"), "{conditions:?}");
    let per_node: Vec<UpgradeState> = UpgradeState::ALL
        .into_iter()
        .filter(|s| s.is_per_node())
        .chain([UpgradeState::Completed])
        .collect();
    assert_eq!(status.order, names);
    let mut previous_end = None;
    for n in &status.order {
        let node = status.nodes.iter().find(|s| &s.node == n).unwrap();
        let phases: Vec<UpgradeState> = node.history.iter().map(|t| t.phase).collect();
        assert_eq!(phases, per_node, "{n}");
        let start = node.history.first().unwrap().at.0;
        let end = node.history.last().unwrap().at.0;
        if let Some(previous) = previous_end {
            assert!(
                previous <= start,
                "{n} started before the node before it was done"
            );
        }
        previous_end = Some(end);
    }

    // Every node ends on the new version: the package installed and configured, the module
    // loaded from it.
    for n in &names {
        let package = world.lock().nodes[n].packages[nodewright_parity::upgrade::PACKAGE].clone();
        assert!(package.version.starts_with(&format!("{TO}-")), "{n}: {package:?}");
        assert!(package.configured, "{n}: {package:?}");
        let proc_drbd = Host::exec(&mut world.clone(), n, &["cat".into(), "/proc/drbd".into()]);
        assert!(
            proc_drbd.stdout.starts_with(&format!("version: {TO} ")),
            "{n}: {}",
            proc_drbd.stdout
        );
    }

    // The legacy key mirrors Nodewright's upgrade, and the gate is given back.
    let key = rt
        .block_on(kube_system.get("vx-rail-cluster-state"))
        .unwrap()
        .data
        .unwrap()
        .remove("upgrade")
        .unwrap();
    assert!(
        key.contains("state=COMPLETED") && key.contains("owner=operator"),
        "{key}"
    );
    let gate = rt
        .block_on(Api::<Lease>::namespaced(client.clone(), NS).get_opt("nodewright-storage-gate"))
        .unwrap();
    assert!(gate.is_none(), "the gate is still held: {gate:?}");

    // The scripts ran no upgrade command: every change to the storage stack after the request
    // was an agent's.
    let scripted: Vec<String> = trace
        .commands
        .iter()
        .filter(|e| e.tick >= request_tick && e.node != "operator" && upgrade_mutation(&e.argv))
        .map(|e| format!("{} {}", e.node, e.argv.join(" ")))
        .collect();
    assert!(
        scripted.is_empty(),
        "the scripts changed the storage stack: {scripted:?}"
    );
    let script_host_commands = trace
        .commands
        .iter()
        .filter(|e| {
            e.tick >= request_tick && e.node != "operator" && e.argv.first().is_some_and(|c| c != "kubectl")
        })
        .count();
    assert!(
        script_host_commands > 0,
        "the scripts ran no host command at all after the request"
    );

    // Every NodeTask ran once: one per idempotency key, succeeded, claimed once (edge-3's
    // interrupted install resumed by the new agent, which only checked).
    let tasks: Vec<NodeTask> = rt
        .block_on(Api::<NodeTask>::namespaced(client.clone(), NS).list(&Default::default()))
        .unwrap()
        .items;
    let mut keys = BTreeMap::new();
    for t in &tasks {
        *keys.entry(t.spec.idempotency_key.clone()).or_insert(0) += 1;
        let s = t.status.as_ref().unwrap();
        assert_eq!(
            s.phase,
            Some(NodeTaskPhase::Succeeded),
            "{}: {s:?}",
            t.spec.idempotency_key
        );
        let resumed = t.spec.node_name == "edge-3" && t.spec.idempotency_key.contains("install");
        let attempts = if resumed { 2 } else { 1 };
        assert_eq!(s.attempts, attempts, "{}: {s:?}", t.spec.idempotency_key);
        if resumed {
            // The new agent found the step started and not finished in the journal, and the
            // host already on the version: it settled the task without installing again.
            let message = s.message.as_deref().unwrap_or_default();
            assert!(message.starts_with("resumed after an interruption"), "{message}");
            assert!(message.contains("already"), "{message}");
            assert_eq!(s.claimed_by.as_deref(), Some("agent-edge-3-new"));
        }
    }
    assert!(keys.values().all(|&c| c == 1), "{keys:?}");
    assert!(tasks.len() >= 3 * 16, "{} tasks", tasks.len());
    // And every host mutation ran once on each node.
    for n in &names {
        let ran = ran[n].lock().unwrap().clone();
        let mutations: Vec<String> = ran
            .iter()
            .filter(|argv| upgrade_mutation(argv))
            .map(|argv| argv.join(" "))
            .collect();
        let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &mutations {
            *counted.entry(m.as_str()).or_insert(0) += 1;
        }
        assert!(
            counted.values().all(|&c| c == 1),
            "{n}: a host mutation ran twice: {counted:?}"
        );
        assert!(
            mutations.iter().any(|m| m.contains(&format!("{TO}-"))),
            "{n}: no install: {mutations:?}"
        );
    }

    if let Some((stop, task)) = operator.lock().unwrap().take() {
        let _ = stop.send(());
        let _ = rt.block_on(task);
    }
    for (_, a) in agents.into_inner().unwrap() {
        a.abort();
    }
}
