//! The migration in operator mode as it is deployed: the legacy script on every simulated node
//! with the real kubectl, `nodewright operator` and one `nodewright agent` per node (their
//! libraries, in this process), all against the real API server. A person creates the Migration;
//! midway the operator and the source node's agent are killed and started again. The migration
//! must complete once, with every host step run once, and end where the legacy run of the same
//! scenario ends.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use nodewright_agent_shim::AgentOptions;
use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec, SiteProfile, Topology, WorkflowModes};
use nodewright_api::migration::{Migration, MigrationPhase, MigrationSpec};
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase};
use nodewright_api::{WorkflowMode, WorkflowOwner};
use nodewright_legacy_sim::cluster::Cluster as MemCluster;
use nodewright_legacy_sim::run::{self, Action, RealCluster, RunConfig, Scenario};
use nodewright_parity::run::OperatorOptions;
use nodewright_sim_harness::world::{AgentHost, SharedWorld};
use nodewright_testenv::{ControlPlane, Options};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NS: &str = "nodewright-system";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenario(name: &str) -> Scenario {
    let path = repo().join(format!("golden/scenarios/{name}.yaml"));
    Scenario::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn config(label: &str) -> RunConfig {
    RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!("vxr-parity-real-{}-{label}", std::process::id())),
        stuck_after: Duration::from_secs(60),
    }
}

/// What LINSTOR and DRBD say at the end, without creation times (the two runs start their
/// clocks at different epochs): per node, its LINSTOR nodes and states, resources and states,
/// and `drbdadm status`.
fn hosts(world: &SharedWorld, nodes: &[String]) -> String {
    let raw = nodewright_sim_harness::world::host_state(world, nodes);
    raw.lines()
        .map(|l| {
            // Resource rows end with a CreatedOn column: drop it.
            match l.rfind('┊') {
                Some(end) if l.starts_with('┊') && l.matches('┊').count() == 8 => {
                    let cut = l[..end].trim_end_matches('┊');
                    let cut = &cut[..cut.rfind('┊').unwrap_or(cut.len())];
                    cut.to_owned()
                }
                _ => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The site's topology, replicas, members' roles and role labels, read through kubectl.
fn site(kubectl: &dyn Fn(&[&str]) -> String) -> String {
    let cluster = kubectl(&[
        "-n",
        "kube-system",
        "get",
        "configmap",
        "vx-rail-cluster-state",
        "-o",
        "jsonpath={.data.cluster}",
    ]);
    let members = kubectl(&[
        "-n",
        "kube-system",
        "get",
        "configmap",
        "vx-rail-cluster-state",
        "-o",
        "jsonpath={.data.members}",
    ]);
    site_of(&cluster, &members)
}

fn site_of(cluster: &str, members: &str) -> String {
    let keep: Vec<&str> = cluster
        .split(';')
        .filter(|kv| kv.starts_with("topology=") || kv.starts_with("replicas=") || kv.starts_with("primary="))
        .collect();
    let roles: Vec<String> = members
        .lines()
        .skip(1)
        .map(|row| {
            let f: Vec<&str> = row.split(',').collect();
            format!("{}={}", f[0], f.get(2).unwrap_or(&""))
        })
        .collect();
    format!("{} members {}", keep.join(";"), roles.join(","))
}

struct Parts {
    operator: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    agents: BTreeMap<String, JoinHandle<()>>,
}

fn start_operator(rt: &Runtime, client: kube::Client) -> (oneshot::Sender<()>, JoinHandle<()>) {
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

fn start_agent(rt: &Runtime, client: kube::Client, host: AgentHost, state: &Path) -> JoinHandle<()> {
    let node = host.node.clone();
    let mut options = AgentOptions::new(node.clone(), NS, format!("agent-{node}"), state.join(&node));
    options.resync = Duration::from_secs(2);
    rt.spawn(async move {
        // Runs until the test ends or aborts it (a kill: no clean shutdown).
        nodewright_agent_shim::run(client, options, host, std::future::pending())
            .await
            .unwrap();
    })
}

#[test]
fn a_migration_owned_by_the_operator_completes_once_through_a_kill_of_the_operator_and_an_agent() {
    let name = "migration-single-to-multi";
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
    let mut spec = EdgeClusterSpec {
        profile: SiteProfile {
            topology: Topology::SingleNode,
            storage_backend: Default::default(),
            operating_system: None,
        },
        expected_nodes: None,
        primary_node: None,
        workflows: WorkflowModes::default(),
        legacy: Default::default(),
    };
    // Shadow first: the operator refuses legacy -> operator in one step.
    spec.workflows.migration = WorkflowMode::Shadow;
    let clusters: Api<EdgeCluster> = Api::namespaced(client.clone(), NS);
    rt.block_on(clusters.create(&PostParams::default(), &EdgeCluster::new("site", spec)))
        .unwrap();

    // The legacy run of the same scenario, for the end state.
    let legacy_scenario = scenario(name);
    let legacy_world = SharedWorld(Arc::new(Mutex::new(run::world_for(&legacy_scenario).unwrap())));
    let mut legacy_cluster = MemCluster::new();
    let legacy_config = config("legacy");
    run::run(
        &legacy_scenario,
        &mut legacy_world.clone(),
        &mut legacy_cluster,
        &legacy_config,
    )
    .unwrap();
    let names: Vec<String> = legacy_scenario.nodes.iter().map(|n| n.name.clone()).collect();
    let legacy_hosts = hosts(&legacy_world, &names);
    let legacy_site = {
        let cm = legacy_cluster
            .config_map("kube-system", "vx-rail-cluster-state")
            .unwrap()
            .to_json();
        site_of(
            cm["data"]["cluster"].as_str().unwrap(),
            cm["data"]["members"].as_str().unwrap(),
        )
    };

    // The operator-mode run: the request becomes a Migration object; more loops, since the
    // operator and the agents work at their own pace between the scripts' loops.
    let mut scenario = scenario(name);
    let request_tick = scenario
        .events
        .iter()
        .find(|e| matches!(&e.action, Action::Kubectl(a) if a.iter().any(|x| x.contains("\"migration\""))))
        .map(|e| e.tick)
        .unwrap();
    scenario.events.retain(
        |e| !matches!(&e.action, Action::Kubectl(a) if a.iter().any(|x| x.contains("\"migration\""))),
    );
    scenario.ticks = 30;
    let epoch = u64::try_from(nodewright_kit::clock::unix_now()).unwrap();
    let world = SharedWorld(Arc::new(Mutex::new(run::world_for_at(&scenario, epoch).unwrap())));
    let state = tempfile::tempdir().unwrap();
    let hosts_of: BTreeMap<String, AgentHost> = names
        .iter()
        .map(|n| (n.clone(), AgentHost::new(&world, n)))
        .collect();
    let ran = hosts_of["edge-1"].ran.clone();
    let mut parts = Parts {
        operator: Some(start_operator(&rt, client.clone())),
        agents: BTreeMap::new(),
    };
    for (n, h) in hosts_of {
        let handle = start_agent(&rt, client.clone(), h, state.path());
        parts.agents.insert(n, handle);
    }
    let kubectl_bin: PathBuf = control_plane.kubectl().get_program().into();
    let kubeconfig = control_plane.kubeconfig().to_path_buf();
    let kubectl = |args: &[&str]| -> String {
        let out = std::process::Command::new(&kubectl_bin)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let migrations: Api<Migration> = Api::namespaced(client.clone(), NS);
    let mut killed = false;
    let mut completed_at = None;
    let mut cluster = RealCluster {
        kubectl: kubectl_bin.clone(),
        kubeconfig: kubeconfig.clone(),
    };
    let run_config = config("operator");
    let mut after_tick = |tick: u32, _: &[run::TickOutput]| {
        if tick == 0 {
            // The scripts have read the shadow takeover once: hand the migration over.
            let patch = serde_json::json!({"spec": {"workflows": {"migration": "operator"}}});
            rt.block_on(clusters.patch("site", &PatchParams::default(), &Patch::Merge(&patch)))
                .unwrap();
        }
        if tick + 1 == request_tick {
            let m = Migration::new(
                "grow-site",
                MigrationSpec {
                    owner: WorkflowOwner::Operator,
                    cluster_ref: nodewright_api::common::ClusterRef { name: "site".into() },
                    source_node: "edge-1".into(),
                    joining_nodes: vec!["edge-2".into(), "edge-3".into()],
                    replicas: Some(3),
                    rollback: false,
                },
            );
            rt.block_on(migrations.create(&PostParams::default(), &m))
                .unwrap();
        }
        // Let the operator and the agents take their turns between the scripts' loops.
        std::thread::sleep(Duration::from_millis(1500));
        let phase = rt
            .block_on(migrations.get_opt("grow-site"))
            .unwrap()
            .and_then(|m| m.status)
            .and_then(|s| s.phase);
        // Kill the operator and the source's agent as soon as replicas are being placed, and
        // start both again: nothing may run twice, nothing may be left half done.
        if !killed
            && matches!(
                phase,
                Some(
                    MigrationPhase::CreatingStoragePools
                        | MigrationPhase::PlacingReplicas
                        | MigrationPhase::WaitingForResync
                )
            )
        {
            killed = true;
            let (_stop, task) = parts.operator.take().unwrap();
            task.abort();
            parts.agents.remove("edge-1").unwrap().abort();
            let _ = rt.block_on(task);
            parts.operator = Some(start_operator(&rt, client.clone()));
            let again = AgentHost {
                world: world.clone(),
                node: "edge-1".into(),
                ran: ran.clone(),
            };
            parts.agents.insert(
                "edge-1".into(),
                start_agent(&rt, client.clone(), again, state.path()),
            );
        }
        if phase == Some(MigrationPhase::Completed) {
            // Two more loops: the scripts read the completed site once more.
            let at = *completed_at.get_or_insert(tick);
            if tick >= at + 2 {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    };
    run::run_observed(
        &scenario,
        &mut world.clone(),
        &mut cluster,
        &run_config,
        false,
        &mut after_tick,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&run_config.work_dir);
    let _ = std::fs::remove_dir_all(&legacy_config.work_dir);
    assert!(
        killed,
        "the migration never reached the phase where the operator is killed"
    );

    let m = rt.block_on(migrations.get("grow-site")).unwrap();
    let status = m.status.unwrap();
    assert_eq!(status.phase, Some(MigrationPhase::Completed), "{status:?}");
    // Every task the migration created succeeded, and every host mutation ran once.
    let tasks: Vec<NodeTask> = rt
        .block_on(Api::<NodeTask>::namespaced(client.clone(), NS).list(&Default::default()))
        .unwrap()
        .items;
    assert!(tasks.len() >= 6, "{} tasks", tasks.len());
    for t in &tasks {
        let s = t.status.as_ref().unwrap();
        assert_eq!(
            s.phase,
            Some(NodeTaskPhase::Succeeded),
            "{}: {s:?}",
            t.spec.idempotency_key
        );
    }
    let ran = ran.lock().unwrap().clone();
    for mutation in [
        ["node", "create", "edge-2"],
        ["node", "create", "edge-3"],
        ["resource", "create", "edge-2"],
        ["resource", "create", "edge-3"],
    ] {
        let n = ran
            .iter()
            .filter(|argv| argv.windows(3).any(|w| w == mutation))
            .count();
        assert_eq!(n, 1, "`{}` ran {n} times on edge-1", mutation.join(" "));
    }
    // The scripts saw the takeover and left the migration alone: the legacy key holds the
    // operator's mirror.
    let key = rt
        .block_on(Api::<ConfigMap>::namespaced(client.clone(), "kube-system").get("vx-rail-cluster-state"))
        .unwrap()
        .data
        .unwrap()
        .remove("migration")
        .unwrap();
    assert!(
        key.starts_with("phase=COMPLETED;") && key.ends_with(";owner=operator"),
        "{key}"
    );
    assert!(legacy_site.contains("topology=multi;replicas=3"), "{legacy_site}");
    assert_eq!(site(&kubectl), legacy_site);
    assert!(legacy_hosts.contains("edge-3 ┊ 7000"), "{legacy_hosts}");
    assert_eq!(hosts(&world, &names), legacy_hosts);
    if let Some((stop, task)) = parts.operator.take() {
        let _ = stop.send(());
        let _ = rt.block_on(task);
    }
    for (_, a) in parts.agents {
        a.abort();
    }
}
