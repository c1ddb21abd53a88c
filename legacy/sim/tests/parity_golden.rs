//! Golden parity runs: legacy scenarios run again with a workflow in `shadow` and in `operator`
//! mode. Between the scripts' loops the parity layer looks at the cluster the way the operator
//! does (through the bridge's index) and, in `shadow`, records every divergence from what the
//! scripts did; in `operator`, it acts itself (once every live script acknowledged the takeover)
//! and the scripts skip the workflow.
//!
//! Each run pins `<scenario>@parity-<workflow>-<mode>.snap` in `golden/snapshots/`: the
//! divergences and the operator's actions tick by tick, and the Nodes' taints and labels at the
//! end. Operator mode must end where the legacy run ends.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use nodewright_api::WorkflowMode;
use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec};
use nodewright_api::migration::{Migration, MigrationSpec, MigrationStatus};
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase, NodeTaskStatus};
use nodewright_bridge::index::{Index, LegacyNames};
use nodewright_legacy_sim::cluster::Cluster as MemCluster;
use nodewright_legacy_sim::run::{self, Action, Cluster, Event, Host, RunConfig, Scenario};
use nodewright_legacy_sim::sched::Reply;
use nodewright_parity::controllers::{self, NodeMeta, Settings, Snapshot, WorkflowController, Write};
use nodewright_parity::migration::{self, TaskRequest, TaskResult};
use nodewright_parity::taints;
use nodewright_parity::{Workflow, observed, shadow, takeover};
use nodewright_parsers::contract::cluster_key;

mod parity_common;

use parity_common::{AgentHost, SharedWorld, host_state};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenario(name: &str) -> Scenario {
    let path = repo().join(format!("golden/scenarios/{name}.yaml"));
    Scenario::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The in-memory cluster, shared between the runner (the scripts' kubectl) and the parity layer
/// that looks at it between ticks.
#[derive(Clone)]
struct Shared(Rc<RefCell<MemCluster>>);

impl Cluster for Shared {
    fn kubectl(&mut self, argv: &[String], cwd: &str, now: i64) -> Reply {
        Cluster::kubectl(&mut *self.0.borrow_mut(), argv, cwd, now)
    }
    fn add_node(&mut self, name: &str) -> Result<(), String> {
        Cluster::add_node(&mut *self.0.borrow_mut(), name)
    }
    fn script_pod(&mut self, node: &str, present: bool) {
        Cluster::script_pod(&mut *self.0.borrow_mut(), node, present);
    }
}

/// Brings the index up to the cluster, as the bridge's watches would after a relist.
fn refresh(index: &mut Index, cluster: &MemCluster, now: i64) {
    let nodes: Vec<Node> = cluster
        .nodes()
        .map(|n| serde_json::from_value(n.to_json()).unwrap())
        .collect();
    let cms: Vec<ConfigMap> = cluster
        .config_maps()
        .map(|c| serde_json::from_value(c.to_json()).unwrap())
        .collect();
    index.reset_nodes(&nodes, now);
    index.reset_config_maps(&cms, now);
}

/// What a parity run did.
struct ParityRun {
    /// The report pinned in the snapshot.
    report: String,
    /// What LINSTOR and DRBD say on the controller node at the end.
    host_state: String,
    /// The site's topology, members and role labels at the end.
    site_state: String,
    /// Every Node's taints and storage-ready label at the end.
    end_taints: BTreeMap<String, String>,
    /// Divergences first seen, over the whole run.
    divergences: Vec<(u32, shadow::Divergence)>,
    /// The kubectl writes the scripts made (from the trace).
    script_writes: String,
}

/// An operator-owned migration, as the harness keeps it: the object's spec and status, and the
/// node tasks it created with their results.
struct OwnedMigration {
    spec: MigrationSpec,
    status: MigrationStatus,
    tasks: BTreeMap<String, TaskResult>,
    last_wait: Option<String>,
}

/// The namespace of the operator's objects in these runs.
const NAMESPACE: &str = "nodewright-system";

/// The Migration's uid in these runs (fixed, so task names are stable in the snapshots).
const MIGRATION_UID: &str = "6f1d7c2a-golden";

fn kubectl(c: &Shared, args: &[String], now: i64) -> i32 {
    let argv: Vec<String> = std::iter::once("kubectl".to_owned())
        .chain(args.iter().cloned())
        .collect();
    Cluster::kubectl(&mut *c.0.borrow_mut(), &argv, "/", now).code
}

/// The operator's merge patch of the cluster-state ConfigMap's `data`.
fn patch_cluster_state(c: &Shared, data: serde_json::Value, now: i64) -> i32 {
    let patch = serde_json::json!({ "data": data }).to_string();
    kubectl(
        c,
        &[
            "-n",
            "kube-system",
            "patch",
            "configmap",
            "vx-rail-cluster-state",
            "--type",
            "merge",
            "-p",
            &patch,
        ]
        .map(String::from),
        now,
    )
}

/// The OS family a node's agent runs with: `--host-os auto`, read from the simulated host's
/// os-release.
fn agent_os(w: &SharedWorld, node: &str) -> nodewright_api::OsFamily {
    let release = w.lock().nodes[node].os.os_release();
    let (id, like) = nodewright_api::hostos::os_release_ids(release);
    nodewright_api::OsFamily::from_os_release(&id.unwrap_or_default(), &like.unwrap_or_default()).unwrap()
}

/// The site's `EdgeCluster`, as the operator reads it in these runs.
fn edge_cluster() -> EdgeCluster {
    let spec: EdgeClusterSpec =
        serde_json::from_value(serde_json::json!({"profile": {"topology": "MultiNode"}})).unwrap();
    let mut cluster = EdgeCluster::new("site", spec);
    cluster.metadata.namespace = Some(NAMESPACE.into());
    cluster
}

/// Every Node of the in-memory cluster as the operator's watch delivers it.
fn node_metas(cluster: &MemCluster) -> BTreeMap<String, NodeMeta> {
    cluster
        .nodes()
        .map(|n| {
            let node: Node = serde_json::from_value(n.to_json()).unwrap();
            (
                n.name.clone(),
                NodeMeta {
                    resource_version: node.metadata.resource_version.unwrap_or_default(),
                    taints: node.spec.and_then(|s| s.taints).unwrap_or_default(),
                    labels: node.metadata.labels.unwrap_or_default(),
                },
            )
        })
        .collect()
}

/// One write of a plan, carried to the in-memory cluster as the writer's patch would change it:
/// a Node patch as the `kubectl label` and `kubectl taint` commands that make the same change (the
/// in-memory cluster patches ConfigMaps only), a cluster-state patch as the merge patch itself.
/// Returns the worst exit code.
fn write_to_cluster(c: &Shared, node_before: Option<&NodeMeta>, write: &Write, now: i64) -> i32 {
    match write {
        Write::PatchNode {
            name, labels, taints, ..
        } => {
            let mut code = 0;
            for (k, v) in labels {
                code = code.max(kubectl(
                    c,
                    &["label", "node", name, "--overwrite", &format!("{k}={v}")].map(String::from),
                    now,
                ));
            }
            if let Some(want) = taints {
                let had = node_before.map(|n| n.taints.clone()).unwrap_or_default();
                for t in had
                    .iter()
                    .filter(|t| !want.iter().any(|w| w.key == t.key && w.effect == t.effect))
                {
                    code = code.max(kubectl(
                        c,
                        &["taint", "node", name, &format!("{}:{}-", t.key, t.effect)].map(String::from),
                        now,
                    ));
                }
                for t in want.iter().filter(|w| !had.contains(w)) {
                    let value = t.value.as_deref().unwrap_or_default();
                    code = code.max(kubectl(
                        c,
                        &[
                            "taint",
                            "node",
                            name,
                            "--overwrite",
                            &format!("{}={value}:{}", t.key, t.effect),
                        ]
                        .map(String::from),
                        now,
                    ));
                }
            }
            code
        }
        Write::PatchClusterState { data, .. } => patch_cluster_state(c, serde_json::json!(data), now),
        Write::CreateTask(_) | Write::MigrationStatus { .. } => {
            unreachable!("the harness makes these writes itself")
        }
    }
}

/// The harness's Migration object for `m`: what the migration controller reads.
fn migration_object(m: &OwnedMigration) -> Migration {
    let mut object = Migration::new("site-migration", m.spec.clone());
    object.metadata.namespace = Some(NAMESPACE.into());
    object.metadata.uid = Some(MIGRATION_UID.into());
    object.metadata.resource_version = Some("1".into());
    object.status = Some(m.status.clone());
    object
}

/// The NodeTasks the migration created, with the results the agents reported.
fn node_tasks(m: &OwnedMigration, object: &Migration) -> Vec<NodeTask> {
    m.tasks
        .values()
        .map(|t| {
            let mut task = controllers::migration::node_task_for(&t.request, object);
            task.status = Some(NodeTaskStatus {
                phase: t.phase,
                output: t.output.clone(),
                message: t.message.clone(),
                ..NodeTaskStatus::default()
            });
            task
        })
        .collect()
}

/// One operator turn for the migration, through the migration controller's plan: plan, write,
/// and plan again from what the writes changed, until the migration waits. The node agent runs
/// each task at once against the simulated host (the agent's own timing, claims and journal are
/// covered by its integration tests).
fn drive_migration(
    m: &mut OwnedMigration,
    index: &mut Index,
    c: &Shared,
    w: &SharedWorld,
    now: i64,
    timeout: i64,
    lines: &mut Vec<String>,
) {
    let settings = Settings {
        stale_after: 300,
        migration_timeout: timeout,
    };
    let cluster = edge_cluster();
    for _ in 0..32 {
        if migration::is_over(&m.status) {
            return;
        }
        refresh(index, &c.0.borrow(), now);
        let object = migration_object(m);
        let tasks = node_tasks(m, &object);
        let nodes = node_metas(&c.0.borrow());
        let snapshot = Snapshot {
            now,
            cluster: &cluster,
            index,
            nodes: &nodes,
            cluster_state_version: None,
            migrations: std::slice::from_ref(&object),
            tasks: &tasks,
            settings: &settings,
        };
        let writes = controllers::migration::Migrations
            .plan(&snapshot)
            .into_iter()
            .flat_map(|sequence| sequence.writes)
            .collect::<Vec<_>>();
        let entered_before = m.status.history.len();
        let mut ok = true;
        let mut ran_tasks = false;
        let mut legacy_key = 0;
        for write in &writes {
            match write {
                Write::CreateTask(task) => {
                    ran_tasks = true;
                    let spec = &task.spec;
                    let mut host = AgentHost::new(w, &spec.node_name);
                    let os = agent_os(w, &spec.node_name);
                    let outcome = match nodewright_agent_shim::plan_on(os, &spec.step, &spec.args) {
                        Ok(plan) => plan.execute(&mut host, None),
                        Err(e) => nodewright_agent_shim::StepOutcome {
                            code: 2,
                            output: String::new(),
                            message: e.to_string(),
                            unknown: false,
                        },
                    };
                    lines.push(format!(
                        "agent {}: task {} `{} {}` -> {} ({})",
                        spec.node_name,
                        spec.idempotency_key,
                        spec.step,
                        spec.args.join(" "),
                        outcome.code,
                        outcome.message
                    ));
                    m.tasks.insert(
                        spec.idempotency_key.clone(),
                        TaskResult {
                            request: TaskRequest {
                                key: spec.idempotency_key.clone(),
                                node: spec.node_name.clone(),
                                step: spec.step_name().unwrap(),
                                args: spec.args.clone(),
                            },
                            phase: Some(if outcome.succeeded() {
                                NodeTaskPhase::Succeeded
                            } else {
                                NodeTaskPhase::Failed
                            }),
                            output: Some(outcome.output),
                            message: Some(outcome.message),
                        },
                    );
                }
                Write::PatchNode { name, labels, .. } => {
                    let code = write_to_cluster(c, nodes.get(name), write, now);
                    for (k, v) in labels {
                        lines.push(format!("operator: label {name} {k}={v} -> {code}"));
                    }
                    ok &= code == 0;
                }
                Write::PatchClusterState { data, .. } => {
                    let code = write_to_cluster(c, None, write, now);
                    if let Some(cluster) = data.get(cluster_key::CLUSTER) {
                        lines.push(format!("operator: cluster-state cluster={cluster} -> {code}"));
                    }
                    legacy_key = code;
                    ok &= code == 0;
                }
                Write::MigrationStatus { status, .. } => m.status = (**status).clone(),
            }
            if !ok {
                break;
            }
        }
        if !ok {
            lines.push("migration: an action failed; deciding again next turn".into());
            return;
        }
        if m.status.history.len() > entered_before {
            let entered = m.status.history.last().unwrap();
            m.last_wait = None;
            lines.push(format!(
                "migration enters {}{} (legacy key -> {legacy_key})",
                migration::legacy_phase(entered.phase),
                entered
                    .message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
            continue;
        }
        // The agent has just run the tasks the decision waited for: decide again at once.
        if ran_tasks {
            continue;
        }
        let reason = m
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing" && c.reason == "Waiting")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        if m.last_wait.as_deref() != Some(reason.as_str()) {
            lines.push(format!("migration waits: {reason}"));
            m.last_wait = Some(reason);
        }
        return;
    }
}

/// The cluster-state keys a migration changes, and the role labels, at the end.
fn site_state(cluster: &MemCluster) -> String {
    let mut out = String::new();
    if let Some(cm) = cluster.config_map("kube-system", "vx-rail-cluster-state") {
        let json = cm.to_json();
        for key in ["cluster", "members"] {
            let _ = writeln!(out, "{key}: {}", json["data"][key].as_str().unwrap_or_default());
        }
    }
    for n in cluster.nodes() {
        let json = n.to_json();
        let _ = writeln!(
            out,
            "{} role={}",
            n.name, json["metadata"]["labels"]["vx-rail.io/role"]
        );
    }
    out
}

fn end_taints(cluster: &MemCluster) -> BTreeMap<String, String> {
    cluster
        .nodes()
        .map(|n| {
            let json = n.to_json();
            let taints = json["spec"]["taints"].to_string();
            let label = json["metadata"]["labels"][taints::READY_LABEL].to_string();
            (n.name.clone(), format!("taints={taints} storage-ready={label}"))
        })
        .collect()
}

/// Runs in this process so far: tests run in parallel, and each run needs a scratch directory of
/// its own.
static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Runs `name` with `modes` projected from tick 0 (none: the legacy run).
fn run_parity(name: &str, modes: &[(Workflow, WorkflowMode)], label: &str) -> ParityRun {
    run_parity_from(name, modes, label, 0)
}

/// Like [`run_parity`], with the takeover projected before tick `from` instead of tick 0.
fn run_parity_from(name: &str, modes: &[(Workflow, WorkflowMode)], label: &str, from: u32) -> ParityRun {
    run_parity_of(name, scenario(name), modes, label, from)
}

/// Like [`run_parity_from`], on a scenario changed by the test.
fn run_parity_of(
    name: &str,
    mut scenario: Scenario,
    modes: &[(Workflow, WorkflowMode)],
    label: &str,
    from: u32,
) -> ParityRun {
    if from > 0 {
        // Something for the new owner of taints to do: a person removes every node's label.
        for n in scenario.nodes.iter().rev() {
            scenario.events.insert(
                0,
                Event {
                    tick: from,
                    action: Action::Kubectl(
                        ["label", "node", &n.name, &format!("{}-", taints::READY_LABEL)]
                            .map(String::from)
                            .into(),
                    ),
                },
            );
        }
        scenario.events.sort_by_key(|e| e.tick);
    }
    if !modes.is_empty() {
        let mut args: Vec<String> = ["-n", "kube-system", "create", "configmap", takeover::CONFIGMAP]
            .map(String::from)
            .into();
        args.push("--from-literal=generation=1".into());
        for (w, m) in modes {
            args.push(format!("--from-literal={}={}", w.key(), m.as_str()));
        }
        let at = scenario
            .events
            .iter()
            .position(|e| e.tick >= from)
            .unwrap_or(scenario.events.len());
        scenario.events.insert(
            at,
            Event {
                tick: from,
                action: Action::Kubectl(args),
            },
        );
    }
    // With the migration in operator mode, a person asks for it with a Migration object instead
    // of writing the legacy key: the request event becomes the object, created before its tick.
    let mut requested: Option<(u32, MigrationSpec)> = None;
    if modes.contains(&(Workflow::Migration, WorkflowMode::Operator)) {
        let source = scenario
            .nodes
            .iter()
            .find(|n| n.host.controller)
            .map(|n| n.name.clone())
            .unwrap();
        scenario.events.retain(|e| {
            let Action::Kubectl(args) = &e.action else {
                return true;
            };
            let Some(patch) = args.iter().find(|a| a.contains("\"migration\"")) else {
                return true;
            };
            let json: serde_json::Value = serde_json::from_str(patch).unwrap();
            let blob = json["data"]["migration"].as_str().unwrap();
            let field = |k: &str| {
                blob.split(';')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .map(str::to_owned)
            };
            requested = Some((
                e.tick,
                MigrationSpec {
                    owner: nodewright_api::WorkflowOwner::Operator,
                    cluster_ref: nodewright_api::common::ClusterRef { name: "site".into() },
                    source_node: source.clone(),
                    joining_nodes: field("joining").unwrap().split(',').map(str::to_owned).collect(),
                    replicas: field("replicas").map(|r| r.parse().unwrap()),
                    rollback: false,
                },
            ));
            false
        });
    }
    let config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-sim")),
        work_dir: std::env::temp_dir().join(format!(
            "vxr-parity-{}-{name}-{label}-{}",
            std::process::id(),
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )),
        stuck_after: Duration::from_secs(30),
    };
    let cluster = Shared(Rc::new(RefCell::new(MemCluster::new())));
    let world = SharedWorld(Arc::new(Mutex::new(run::world_for(&scenario).unwrap())));
    let shadowed: Vec<Workflow> = modes
        .iter()
        .filter(|(_, m)| *m == WorkflowMode::Shadow)
        .map(|(w, _)| *w)
        .collect();
    let operated: Vec<Workflow> = modes
        .iter()
        .filter(|(_, m)| *m == WorkflowMode::Operator)
        .map(|(w, _)| *w)
        .collect();

    let mut report = String::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut divergences = Vec::new();
    let (c, w) = (cluster.clone(), world.clone());
    let mut index = Index::new(LegacyNames::default());
    let mut mig: Option<OwnedMigration> = None;
    // The operator's migration timeout is the site's, as the DaemonSet's environment sets it.
    let timeout: i64 = scenario
        .env
        .get("VXR_MIGRATION_TIMEOUT")
        .map_or(migration::DEFAULT_TIMEOUT, |t| t.parse().unwrap());
    // Hosts that are not today's Debian shape say so, with the family their agents detect.
    let rpm_hosts: Vec<String> = scenario
        .nodes
        .iter()
        .filter(|n| n.host.os != nodewright_legacy_sim::host::OsFlavour::Debian)
        .map(|n| format!("{} {}", n.name, agent_os(&w, &n.name)))
        .collect();
    if !rpm_hosts.is_empty() {
        let _ = writeln!(report, "agents (--host-os auto): {}", rpm_hosts.join(", "));
    }
    let mut last_look = w.now();
    let mut after_tick = |tick: u32, outputs: &[run::TickOutput]| {
        // The scripts' loops of this tick are over; the clock has moved to the next tick. The
        // index sees the cluster as a relist would, and the loops' logs as the log follower would.
        let now = w.now();
        refresh(&mut index, &c.0.borrow(), now);
        for o in outputs {
            index.feed_log(&o.node, o.output.as_bytes(), now);
        }
        let mut lines = Vec::new();
        let mut current = BTreeSet::new();
        let facts = observed::migration_facts(&index, now, 300, timeout);
        let found = shadow::divergences(&index, &shadowed, now, last_look, &facts);
        last_look = now;
        for d in found {
            let key = d.key();
            current.insert(key.clone());
            if seen.insert(key) {
                lines.push(format!(
                    "divergence {} {}: script {}; operator {}; observed {}",
                    d.workflow,
                    d.node.as_deref().unwrap_or("site"),
                    d.script,
                    d.operator,
                    d.observed
                ));
                divergences.push((tick, d));
            }
        }
        // A divergence that ended may come back later; it is recorded again then.
        seen.retain(|k| current.contains(k));
        if let Some((at_tick, spec)) = &requested
            && tick + 1 == *at_tick
        {
            lines.push(format!(
                "a person creates Migration site-migration: {} -> {} (replicas {})",
                spec.source_node,
                spec.joining_nodes.join(","),
                spec.replicas.unwrap_or(2)
            ));
            mig = Some(OwnedMigration {
                spec: spec.clone(),
                status: MigrationStatus::default(),
                tasks: BTreeMap::new(),
                last_wait: None,
            });
        }
        let t = observed::takeover(&index).unwrap();
        let fence = parity_common::fence(&c.0.borrow(), &index, now);
        for wf in &operated {
            // What the operator waits for, as its status says it (the fence), or the nodes the old
            // clock rule waited for.
            let may_act = match parity_common::RULE.get() {
                parity_common::Rule::Fence => fence.may_act(&t, *wf).map_err(|waiting| {
                    waiting
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; and for ")
                }),
                parity_common::Rule::OldClock => {
                    parity_common::old_clock_rule(&index, &t, *wf, now).map_err(|nodes| {
                        if nodes.is_empty() {
                            String::new()
                        } else {
                            format!("acknowledgement from {}", nodes.join(","))
                        }
                    })
                }
            };
            match may_act {
                // Not in operator mode (yet): nothing to wait for.
                Err(waiting) if waiting.is_empty() => {}
                Err(waiting) => lines.push(format!("{wf}: waiting for {waiting}")),
                Ok(()) if *wf == Workflow::Taints => {
                    // The taints controller's plan, each Node patch carried to the in-memory
                    // cluster; one line per action it makes.
                    let nodes = node_metas(&c.0.borrow());
                    let cluster = edge_cluster();
                    let settings = Settings {
                        stale_after: 300,
                        migration_timeout: timeout,
                    };
                    let snapshot = Snapshot {
                        now,
                        cluster: &cluster,
                        index: &index,
                        nodes: &nodes,
                        cluster_state_version: None,
                        migrations: &[],
                        tasks: &[],
                        settings: &settings,
                    };
                    for sequence in controllers::taints::Taints.plan(&snapshot) {
                        for write in &sequence.writes {
                            let Write::PatchNode { name, what, .. } = write else {
                                unreachable!("the taints controller patches Nodes only")
                            };
                            let code = write_to_cluster(&c, nodes.get(name), write, now);
                            for action in what {
                                lines.push(format!("operator {name}: {action} -> {code}"));
                            }
                        }
                    }
                }
                Ok(()) if *wf == Workflow::Migration => {
                    if let Some(m) = mig.as_mut() {
                        drive_migration(m, &mut index, &c, &w, now, timeout, &mut lines);
                    }
                }
                Ok(()) => {}
            }
        }
        if !lines.is_empty() {
            let _ = writeln!(report, "tick {tick}:");
            for l in lines {
                let _ = writeln!(report, "  {l}");
            }
        }
        ControlFlow::Continue(())
    };
    let mut host = world.clone();
    let mut cl = cluster.clone();
    let trace = run::run_observed(&scenario, &mut host, &mut cl, &config, true, &mut after_tick)
        .unwrap_or_else(|e| panic!("{name} {label}: {e}"));
    let _ = std::fs::remove_dir_all(&config.work_dir);
    let end = end_taints(&cluster.0.borrow());
    let _ = writeln!(report, "end:");
    for (node, t) in &end {
        let _ = writeln!(report, "  {node}: {t}");
    }
    let names: Vec<String> = scenario.nodes.iter().map(|n| n.name.clone()).collect();
    let host_state = host_state(&world, &names);
    let _ = writeln!(report, "hosts:\n{host_state}");
    ParityRun {
        report,
        host_state,
        site_state: site_state(&cluster.0.borrow()),
        end_taints: end,
        divergences,
        script_writes: trace.kube_writes(),
    }
}

fn snapshot(name: &str, label: &str, run: &ParityRun) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo().join("golden/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(format!("{name}@parity-{label}"), run.report));
}

const SHADOW: WorkflowMode = WorkflowMode::Shadow;
const OPERATOR: WorkflowMode = WorkflowMode::Operator;

#[test]
fn taints_in_shadow_agree_with_the_script_through_a_resync_and_a_migration() {
    for name in [
        "taints-during-resync",
        "migration-single-to-multi",
        "bootstrap-three-nodes",
    ] {
        let run = run_parity(name, &[(Workflow::Taints, SHADOW)], "taints-shadow");
        assert!(
            run.divergences.is_empty(),
            "{name}: divergences on a happy path:\n{}",
            run.report
        );
        // In shadow the scripts still decide: they end where the legacy run ends.
        let legacy = run_parity(name, &[], "legacy");
        assert_eq!(
            run.end_taints, legacy.end_taints,
            "{name}: shadow changed the outcome"
        );
        if name == "taints-during-resync" {
            assert!(
                run.script_writes
                    .contains("vx-rail.io/storage-not-ready=resync:NoSchedule"),
                "{name}: in shadow the script no longer taints"
            );
        }
        snapshot(name, "taints-shadow", &run);
    }
}

#[test]
fn taints_in_operator_mode_end_where_the_legacy_run_ends_and_no_script_taints() {
    for name in ["taints-during-resync", "migration-single-to-multi"] {
        let legacy = run_parity(name, &[], "legacy");
        let owned = run_parity(name, &[(Workflow::Taints, OPERATOR)], "taints-operator");
        assert_eq!(
            owned.end_taints, legacy.end_taints,
            "{name}: operator mode ends elsewhere"
        );
        let script_taint_writes: Vec<&str> = owned
            .script_writes
            .lines()
            .filter(|l| l.contains("storage-not-ready") || l.contains("storage-ready="))
            .collect();
        assert!(
            script_taint_writes.is_empty(),
            "{name}: a script still manages taints:\n{}",
            script_taint_writes.join("\n")
        );
        assert!(
            owned.report.contains("operator "),
            "{name}: the operator never acted:\n{}",
            owned.report
        );
        snapshot(name, "taints-operator", &owned);
    }
}

#[test]
fn the_stale_state_race_in_shadow_shows_two_nodes_upgrading_against_the_operators_one() {
    let run = run_parity(
        "stale-state-race",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
    let race: Vec<&shadow::Divergence> = run
        .divergences
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d.workflow == Workflow::StorageUpgrade)
        .collect();
    assert_eq!(race.len(), 1, "{}", run.report);
    assert!(
        race[0]
            .script
            .starts_with("2 nodes started the upgrade to 9.2.14, each with itself first: edge-1"),
        "{}",
        race[0].script
    );
    assert!(
        race[0]
            .operator
            .contains("one node at a time in the order edge-1,edge-2"),
        "{}",
        race[0].operator
    );
    snapshot("stale-state-race", "storage-upgrade-shadow", &run);
}

#[test]
fn a_storage_upgrade_that_goes_node_by_node_shows_no_divergence() {
    let run = run_parity(
        "storage-upgrade",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
    assert!(run.divergences.is_empty(), "{}", run.report);
    snapshot("storage-upgrade", "storage-upgrade-shadow", &run);
}

#[test]
fn a_migration_in_operator_mode_ends_where_the_legacy_migration_ends_and_no_script_runs_it() {
    let name = "migration-single-to-multi";
    let legacy = run_parity(name, &[], "legacy");
    let owned = run_parity(name, &[(Workflow::Migration, OPERATOR)], "migration-operator");
    assert!(
        owned.report.contains("migration enters COMPLETED"),
        "the operator's migration did not complete:\n{}",
        owned.report
    );
    assert_eq!(owned.site_state, legacy.site_state, "the site ends elsewhere");
    assert_eq!(owned.host_state, legacy.host_state, "the hosts end elsewhere");
    assert_eq!(owned.end_taints, legacy.end_taints);
    // The scripts never wrote the migration key nor ran LINSTOR mutations for it.
    let script_migration_writes: Vec<&str> = owned
        .script_writes
        .lines()
        .filter(|l| l.contains("\"migration\""))
        .collect();
    assert!(script_migration_writes.is_empty(), "{script_migration_writes:?}");
    snapshot(name, "migration-operator", &owned);
}

#[test]
fn a_migration_in_operator_mode_on_rpm_hosts_ends_where_the_debian_migration_ends() {
    let name = "migration-single-to-multi";
    let mut on_rpm = scenario(name);
    for n in &mut on_rpm.nodes {
        n.host.os = nodewright_legacy_sim::host::OsFlavour::Rpm;
    }
    let debian = run_parity(name, &[(Workflow::Migration, OPERATOR)], "migration-operator");
    let rpm = run_parity_of(
        name,
        on_rpm,
        &[(Workflow::Migration, OPERATOR)],
        "migration-operator-rpm",
        0,
    );
    assert!(
        rpm.report.contains("migration enters COMPLETED"),
        "the operator's migration did not complete on RPM hosts:\n{}",
        rpm.report
    );
    assert!(
        rpm.report
            .contains("agents (--host-os auto): edge-1 rpm, edge-2 rpm, edge-3 rpm")
    );
    assert_eq!(rpm.site_state, debian.site_state, "the site ends elsewhere");
    assert_eq!(rpm.host_state, debian.host_state, "the hosts end elsewhere");
    assert_eq!(rpm.end_taints, debian.end_taints);
    // The same decisions and the same tasks: only the hosts' package tools differ.
    let body = |r: &str| {
        r.lines()
            .filter(|l| !l.starts_with("agents "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&rpm.report), body(&debian.report));
    snapshot(name, "migration-operator-rpm", &rpm);
}

#[test]
fn a_migration_in_operator_mode_that_loses_a_node_rolls_back_to_where_the_legacy_rollback_ends() {
    let name = "node-lost-during-migration";
    let legacy = run_parity(name, &[], "legacy");
    let owned = run_parity(name, &[(Workflow::Migration, OPERATOR)], "migration-operator");
    assert!(
        owned
            .report
            .contains("migration enters ROLLED_BACK: timed out after 60s in WAITING_FOR_RESYNC"),
        "the operator's migration did not roll back:\n{}",
        owned.report
    );
    assert_eq!(owned.site_state, legacy.site_state, "the site ends elsewhere");
    assert_eq!(owned.host_state, legacy.host_state, "the hosts end elsewhere");
    snapshot(name, "migration-operator", &owned);
}

#[test]
fn a_migration_in_shadow_agrees_with_the_script_at_every_gate_it_passes() {
    for name in ["migration-single-to-multi", "node-lost-during-migration"] {
        let run = run_parity(name, &[(Workflow::Migration, SHADOW)], "migration-shadow");
        assert!(
            run.divergences.is_empty(),
            "{name}: divergences on the script's own run:\n{}",
            run.report
        );
        // In shadow the scripts still decide: they end where the legacy run ends.
        let legacy = run_parity(name, &[], "legacy");
        assert_eq!(run.site_state, legacy.site_state, "{name}");
        assert_eq!(run.host_state, legacy.host_state, "{name}");
        snapshot(name, "migration-shadow", &run);
    }
}

/// The kubectl writes of the scripts that change a node's storage taint or label: (tick, node).
fn script_taint_writes(writes: &str) -> Vec<(u32, String)> {
    writes
        .lines()
        .filter(|l| l.contains("storage-not-ready") || l.contains("storage-ready="))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let tick = words.next()?.parse().ok()?;
            let _script_node = words.next()?;
            // `kubectl taint node <node> ...` / `kubectl label node <node> ...`
            let target = l.split(" node ").nth(1)?.split_whitespace().next()?.to_owned();
            Some((tick, target))
        })
        .collect()
}

/// The operator's taint actions in a report: (tick, node).
fn operator_taint_actions(report: &str) -> Vec<(u32, String)> {
    let mut tick = 0;
    let mut out = Vec::new();
    for line in report.lines() {
        if let Some(t) = line.strip_prefix("tick ").and_then(|t| t.strip_suffix(':')) {
            tick = t.parse().unwrap();
        } else if let Some(rest) = line.trim().strip_prefix("operator ")
            && let Some((node, _)) = rest.split_once(':')
        {
            out.push((tick, node.to_owned()));
        }
    }
    out
}

#[test]
fn through_the_stale_state_race_taints_have_one_decider_at_every_moment() {
    // The takeover is projected at tick 3, while edge-1's pod is down (ticks 3-4): edge-1's script
    // has not read it, but no script runs there to act on an old snapshot (its pod is gone), so
    // the operator does not wait for it; the pod that comes back at tick 5 reads the takeover
    // first. Then both nodes race into the upgrade from the same snapshot; the upgrade takes
    // resources down and the storage taints follow.
    // A person also removes both nodes' storage-ready labels then: whoever owns taints must put
    // them back, and only one may.
    let run = run_parity_from(
        "stale-state-race",
        &[(Workflow::Taints, OPERATOR)],
        "taints-operator",
        3,
    );
    assert!(
        !run.report.contains("taints: waiting for"),
        "the operator waited for a node whose script pod was gone:\n{}",
        run.report
    );
    let script = script_taint_writes(&run.script_writes);
    let operator = operator_taint_actions(&run.report);
    assert!(!operator.is_empty(), "the operator never acted:\n{}", run.report);
    let first_operator_tick = operator.iter().map(|(t, _)| *t).min().unwrap();
    // The scripts' taint writes all come before the takeover reached them; from the operator's
    // first action on, it is the only one that writes taints.
    let late: Vec<&(u32, String)> = script.iter().filter(|(t, _)| *t >= 3).collect();
    assert!(
        late.is_empty(),
        "a script wrote taints after the takeover: {late:?}"
    );
    assert!(
        first_operator_tick >= 3,
        "the operator acted at tick {first_operator_tick}, before the takeover"
    );
    snapshot("stale-state-race", "taints-operator-from-tick-3", &run);
}

#[test]
fn a_source_node_rebooting_mid_migration_leaves_the_operators_migration_whole() {
    // edge-1, the source and LINSTOR controller, reboots while the new replicas sync. Its script
    // recovers it (boot recovery stays legacy) and the resync resumes. The script's own migration
    // gives up at the first `drbdadm status` that fails during the reboot and rolls back; the
    // operator's waits the reboot out and completes, ending where an undisturbed migration ends.
    let name = "migration-single-to-multi";
    let rebooted = || {
        let mut s = scenario(name);
        s.ticks = 14;
        s.events.push(Event {
            tick: 6,
            action: Action::Fault(serde_json::json!({"Reboot": {"node": "edge-1"}})),
        });
        s.events.sort_by_key(|e| e.tick);
        s
    };
    let undisturbed = run_parity(name, &[], "legacy");
    let owned = run_parity_of(
        name,
        rebooted(),
        &[(Workflow::Migration, OPERATOR)],
        "migration-operator-reboot",
        0,
    );
    assert!(
        owned.report.contains("migration enters COMPLETED"),
        "the operator's migration did not complete:\n{}",
        owned.report
    );
    assert_eq!(owned.site_state, undisturbed.site_state);
    // The reboot demotes pvc-1's Primary (the simulated workload is not started again): DRBD
    // roles and LINSTOR's usage column are left out of the comparison, placement and disk states
    // are not.
    let placement = |hosts: &str| {
        hosts
            .replace("role:Primary", "role:Secondary")
            .replace("InUse ", "Unused")
    };
    assert_eq!(placement(&owned.host_state), placement(&undisturbed.host_state));
    snapshot(name, "migration-operator-source-reboot", &owned);

    // The same reboot under the script, in shadow: the script's rollback is the divergence (the
    // script gave up on a `drbdadm status` that failed during the reboot).
    let shadowed = run_parity_of(
        name,
        rebooted(),
        &[(Workflow::Migration, SHADOW)],
        "migration-shadow-reboot",
        0,
    );
    assert!(
        shadowed.site_state.contains("topology=single"),
        "{}",
        shadowed.site_state
    );
    let rollback: Vec<&shadow::Divergence> = shadowed
        .divergences
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d.script == "moved the migration from WAITING_FOR_RESYNC to ROLLING_BACK")
        .collect();
    assert_eq!(rollback.len(), 1, "{}", shadowed.report);
    // From the facts reported after the reboot the operator would not have rolled back.
    assert!(
        !rollback[0].operator.contains("ROLLING_BACK"),
        "{:?}",
        rollback[0]
    );
    snapshot(name, "migration-shadow-source-reboot", &shadowed);
}

// --- the takeover's fence: a script that is slow, silent or wrong about the time ----------------

/// The double actions of a run: each script write to the taints workflow (tick, node written)
/// that took effect after the operator had acted on taints, i.e. while both decided.
fn double_actions(run: &ParityRun) -> Vec<(u32, String)> {
    let Some(first) = operator_taint_actions(&run.report)
        .iter()
        .map(|(tick, _)| *tick)
        .min()
    else {
        return Vec::new();
    };
    script_taint_writes(&run.script_writes)
        .into_iter()
        .filter(|(tick, _)| *tick > first)
        .collect()
}

/// Runs `name` with taints handed to the operator at tick 3 under the old clock rule.
fn run_under_the_old_clock_rule(name: &str) -> ParityRun {
    parity_common::RULE.set(parity_common::Rule::OldClock);
    let run = run_parity_from(
        name,
        &[(Workflow::Taints, OPERATOR)],
        "taints-operator-old-clock-rule",
        3,
    );
    parity_common::RULE.set(parity_common::Rule::Fence);
    run
}

#[test]
fn a_script_loop_hung_ten_minutes_in_linstor_holds_the_takeover_back_and_nothing_acts_twice() {
    let name = "taints-linstor-hang";
    // Under the rule the fence replaced, edge-1's silence counts as death once its last report is
    // 300 s old: the operator takes taints over while edge-1's loop is still blocked, and when the
    // `linstor` call returns that loop labels edge-1 from its ten-minute-old snapshot.
    let old = run_under_the_old_clock_rule(name);
    let doubled = double_actions(&old);
    assert_eq!(
        doubled,
        [(22, "edge-1".to_owned())],
        "the old rule's double action:\n{}\n{}",
        old.report,
        old.script_writes
    );
    snapshot(name, "taints-operator-old-clock-rule", &old);

    // The fence: edge-1's pod runs, so the operator waits for its script to read the takeover,
    // however long it is silent; the stale loop's write is the script's last as taints' decider.
    let run = run_parity_from(name, &[(Workflow::Taints, OPERATOR)], "taints-operator", 3);
    assert_eq!(double_actions(&run), [], "{}\n{}", run.report, run.script_writes);
    assert!(
        run.report.contains(
            "taints: waiting for the legacy script on edge-1 to read takeover generation 1 (its pod \
             vx-rail-node-init-edge-1 is running; last report 600 s ago)"
        ),
        "the operator did not wait past the old staleness bound:\n{}",
        run.report
    );
    let first = operator_taint_actions(&run.report)
        .iter()
        .map(|(tick, _)| *tick)
        .min()
        .unwrap_or_else(|| panic!("the operator never acted:\n{}", run.report));
    assert_eq!(
        first, 23,
        "the operator acts once edge-1's next loop read the takeover"
    );
    let legacy = run_parity(name, &[], "legacy");
    assert_eq!(run.end_taints, legacy.end_taints);
    snapshot(name, "taints-operator", &run);
}

#[test]
fn a_node_whose_clock_is_an_hour_behind_is_waited_for_and_nothing_acts_twice() {
    let name = "taints-clock-behind";
    // Under the old rule edge-2's reports, stamped an hour behind, make it dead from the start:
    // the operator acts at once, while edge-2's slow loop still acts on its old snapshot.
    let old = run_under_the_old_clock_rule(name);
    assert_eq!(
        double_actions(&old),
        [(5, "edge-2".to_owned())],
        "the old rule's double action:\n{}\n{}",
        old.report,
        old.script_writes
    );

    let run = run_parity_from(name, &[(Workflow::Taints, OPERATOR)], "taints-operator", 3);
    assert_eq!(double_actions(&run), [], "{}\n{}", run.report, run.script_writes);
    assert!(
        run.report.contains(
            "taints: waiting for the legacy script on edge-2 to read takeover generation 1 (its pod \
             vx-rail-node-init-edge-2 is running; last report 3"
        ),
        "the operator did not wait for the node whose reports look an hour old:\n{}",
        run.report
    );
    let first = operator_taint_actions(&run.report)
        .iter()
        .map(|(tick, _)| *tick)
        .min()
        .unwrap_or_else(|| panic!("the operator never acted:\n{}", run.report));
    assert_eq!(
        first, 6,
        "the operator acts once edge-2's next loop read the takeover"
    );
    let legacy = run_parity(name, &[], "legacy");
    assert_eq!(run.end_taints, legacy.end_taints);
    snapshot(name, "taints-operator", &run);
}
