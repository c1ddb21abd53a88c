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
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use nodewright_api::WorkflowMode;
use nodewright_bridge::index::{Index, LegacyNames};
use nodewright_legacy_sim::cluster::Cluster as MemCluster;
use nodewright_legacy_sim::host::World;
use nodewright_legacy_sim::run::{self, Action, Cluster, Event, Host, RunConfig, Scenario};
use nodewright_legacy_sim::sched::Reply;
use nodewright_parity::taints::{self, TaintAction};
use nodewright_parity::{Workflow, observed, shadow, takeover};

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
}

#[derive(Clone)]
struct SharedWorld(Rc<RefCell<World>>);

impl Host for SharedWorld {
    fn exec(&mut self, node: &str, argv: &[String]) -> Reply {
        Host::exec(&mut *self.0.borrow_mut(), node, argv)
    }
    fn render(&self, roots: &Path) -> std::io::Result<()> {
        Host::render(&*self.0.borrow(), roots)
    }
    fn inject(&mut self, fault: &serde_json::Value) -> Result<(), String> {
        Host::inject(&mut *self.0.borrow_mut(), fault)
    }
    fn advance(&mut self, seconds: u64) {
        Host::advance(&mut *self.0.borrow_mut(), seconds);
    }
    fn now(&self) -> i64 {
        Host::now(&*self.0.borrow())
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

/// The kubectl command line that carries out one taint action, as the operator's writes reach the
/// in-memory cluster.
fn kubectl_for(node: &str, action: &TaintAction) -> Vec<String> {
    let args: Vec<String> = match action {
        TaintAction::Taint { reason } => vec![
            "taint".into(),
            "node".into(),
            node.into(),
            "--overwrite".into(),
            format!("{}={reason}:NoSchedule", taints::STORAGE_TAINT),
        ],
        TaintAction::Untaint => vec![
            "taint".into(),
            "node".into(),
            node.into(),
            format!("{}:NoSchedule-", taints::STORAGE_TAINT),
        ],
        TaintAction::Label { ready } => vec![
            "label".into(),
            "node".into(),
            node.into(),
            "--overwrite".into(),
            format!("{}={ready}", taints::READY_LABEL),
        ],
        TaintAction::RemoveUpgradeTaint => vec![
            "taint".into(),
            "node".into(),
            node.into(),
            format!("{}:NoSchedule-", taints::UPGRADE_TAINT),
        ],
    };
    std::iter::once("kubectl".to_owned()).chain(args).collect()
}

/// What a parity run did.
struct ParityRun {
    /// The report pinned in the snapshot.
    report: String,
    /// Every Node's taints and storage-ready label at the end.
    end_taints: BTreeMap<String, String>,
    /// Divergences first seen, over the whole run.
    divergences: Vec<(u32, shadow::Divergence)>,
    /// The kubectl writes the scripts made (from the trace).
    script_writes: String,
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

/// Runs `name` with `modes` projected from tick 0 (none: the legacy run).
fn run_parity(name: &str, modes: &[(Workflow, WorkflowMode)], label: &str) -> ParityRun {
    let mut scenario = scenario(name);
    if !modes.is_empty() {
        let mut args: Vec<String> = ["-n", "kube-system", "create", "configmap", takeover::CONFIGMAP]
            .map(String::from)
            .into();
        args.push("--from-literal=generation=1".into());
        for (w, m) in modes {
            args.push(format!("--from-literal={}={}", w.key(), m.as_str()));
        }
        scenario.events.insert(
            0,
            Event {
                tick: 0,
                action: Action::Kubectl(args),
            },
        );
    }
    let config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-sim")),
        work_dir: std::env::temp_dir().join(format!("vxr-parity-{}-{name}-{label}", std::process::id())),
        stuck_after: Duration::from_secs(30),
    };
    let cluster = Shared(Rc::new(RefCell::new(MemCluster::new())));
    let world = SharedWorld(Rc::new(RefCell::new(run::world_for(&scenario).unwrap())));
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
        for d in shadow::divergences(&index, &shadowed, now) {
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
        let t = observed::takeover(&index).unwrap();
        let acks = observed::acks(&index, now, 300);
        for wf in &operated {
            match takeover::may_act(&t, *wf, &acks) {
                Err(waiting) => lines.push(format!(
                    "{wf}: waiting for acknowledgement from {}",
                    waiting.join(",")
                )),
                Ok(()) if *wf == Workflow::Taints => {
                    let upgrade = observed::upgrade_state(&index);
                    for (node, entry) in &index.nodes {
                        let (Some(facts), Some(have)) =
                            (observed::storage_facts(entry), observed::node_taints(entry))
                        else {
                            continue;
                        };
                        for action in taints::decide(&facts, &have, upgrade.clone()) {
                            let argv = kubectl_for(node, &action);
                            let reply = Cluster::kubectl(&mut *c.0.borrow_mut(), &argv, "/", now);
                            lines.push(format!("operator {node}: {action} -> {}", reply.code));
                        }
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
    ParityRun {
        report,
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
        assert_eq!(run.end_taints, legacy.end_taints, "{name}: shadow changed the outcome");
        if name == "taints-during-resync" {
            assert!(
                run.script_writes.contains("vx-rail.io/storage-not-ready=resync:NoSchedule"),
                "{name}: in shadow the script no longer taints"
            );
        }
        snapshot(name, "taints-shadow", &run);
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
