//! Each invariant fails on a run made to break it and passes on one that keeps it. The runs are
//! built step by step: who did what, and how the world changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use nodewright_legacy_sim::run::{Observation, TraceEntry};

const CLUSTER_STATE: &str = "kube-system/vx-rail-cluster-state";

/// A run under construction.
struct Run {
    steps: Vec<Step>,
    facts: Facts,
    tick: u32,
}

fn script(node: &str) -> Actor {
    Actor::Script(node.into())
}

impl Run {
    /// Two nodes, each with a replica of `pvc-1`, UpToDate.
    fn new() -> Run {
        let mut facts = Facts::default();
        for n in ["edge-1", "edge-2"] {
            facts
                .disks
                .entry("pvc-1".into())
                .or_default()
                .insert(n.into(), "UpToDate".into());
            facts.taints.insert(n.into(), Vec::new());
            facts.labels.insert(n.into(), BTreeMap::new());
        }
        let mut run = Run {
            steps: Vec::new(),
            facts,
            tick: 0,
        };
        run.push(Actor::World, Action::Start, None);
        run
    }

    fn push(&mut self, actor: Actor, action: Action, workflow: Option<Workflow>) {
        self.steps.push(Step {
            tick: self.tick,
            actor,
            action,
            workflow,
            facts: Arc::new(self.facts.clone()),
        });
    }

    fn at(mut self, tick: u32) -> Run {
        self.tick = tick;
        self
    }

    /// `actor` runs `command`, which changes the world as `change` does.
    fn does(mut self, actor: Actor, command: &str, change: impl FnOnce(&mut Facts)) -> Run {
        change(&mut self.facts);
        let argv = command.split_whitespace().map(String::from).collect();
        self.push(actor, Action::Command { argv, code: 0 }, None);
        self
    }

    /// Nodewright (or its agent) runs `command` for `workflow`.
    fn nodewright(
        mut self,
        actor: Actor,
        workflow: Workflow,
        command: &str,
        change: impl FnOnce(&mut Facts),
    ) -> Run {
        change(&mut self.facts);
        let argv = command.split_whitespace().map(String::from).collect();
        self.push(actor, Action::Command { argv, code: 0 }, Some(workflow));
        self
    }

    fn fault(mut self, fault: &str, change: impl FnOnce(&mut Facts)) -> Run {
        change(&mut self.facts);
        self.push(Actor::World, Action::Fault(fault.into()), None);
        self
    }

    fn check(&self, invariant: &str) -> Vec<Violation> {
        let found = INVARIANTS.iter().find(|i| i.name == invariant).unwrap();
        (found.check)(&self.steps)
    }
}

fn disk(f: &mut Facts, node: &str, state: &str) {
    f.disks
        .get_mut("pvc-1")
        .unwrap()
        .insert(node.into(), state.into());
}

fn config(f: &mut Facts, map: &str, key: &str, value: &str) {
    f.config_maps
        .entry(map.into())
        .or_default()
        .insert(key.into(), value.into());
}

fn upgrade(f: &mut Facts, blob: &str) {
    config(f, CLUSTER_STATE, "upgrade", blob);
}

fn storage_taint(f: &mut Facts, node: &str, on: bool) {
    let taints = f.taints.get_mut(node).unwrap();
    taints.retain(|t| !t.starts_with(taint::STORAGE_NOT_READY));
    if on {
        taints.push(format!("{}=resync:NoSchedule", taint::STORAGE_NOT_READY));
    }
}

fn takeover_taints(f: &mut Facts, generation: u64, mode: &str) {
    config(
        f,
        "kube-system/nodewright-takeover",
        "generation",
        &generation.to_string(),
    );
    config(f, "kube-system/nodewright-takeover", "taints", mode);
}

fn ack(f: &mut Facts, node: &str, generation: u64) {
    config(
        f,
        &format!("kube-system/vx-rail-node-{node}"),
        "takeover-generation",
        &generation.to_string(),
    );
}

/// One node's whole per-node upgrade, written as the script writes it, ending with `then`.
fn node_upgrade(run: Run, node: &str, done: &str, then: &str) -> Run {
    let mut run = run;
    for state in PER_NODE_STATES {
        let blob = format!("state={state};to=9.2.14;order=edge-1,edge-2;node={node};done={done}");
        run = run.does(
            script(node),
            "kubectl patch configmap vx-rail-cluster-state",
            |f| upgrade(f, &blob),
        );
    }
    run.does(
        script(node),
        "kubectl patch configmap vx-rail-cluster-state",
        |f| upgrade(f, then),
    )
}

#[test]
fn nodes_upgrading_one_after_the_other_keep_one_node_upgrading() {
    let run = Run::new().at(3);
    let run = node_upgrade(run, "edge-1", "", "state=PREFLIGHT;node=edge-2;done=edge-1");
    let run = node_upgrade(
        run.at(4),
        "edge-2",
        "edge-1",
        "state=COMPLETED;node=;done=edge-1,edge-2",
    );
    assert_eq!(run.check(ONE_NODE_UPGRADING), vec![]);
}

#[test]
fn two_nodes_starting_the_upgrade_from_one_snapshot_break_one_node_upgrading() {
    let run = Run::new()
        .at(5)
        .does(
            script("edge-1"),
            "kubectl patch configmap vx-rail-cluster-state",
            |f| upgrade(f, "state=PREFLIGHT;order=edge-1,edge-2;node=edge-1;done="),
        )
        .does(
            script("edge-2"),
            "kubectl patch configmap vx-rail-cluster-state",
            |f| upgrade(f, "state=PREFLIGHT;order=edge-2,edge-1;node=edge-2;done="),
        )
        .does(
            script("edge-1"),
            "kubectl patch configmap vx-rail-cluster-state",
            |f| upgrade(f, "state=QUORUM_CHECK;order=edge-1,edge-2;node=edge-1;done="),
        );
    let found = run.check(ONE_NODE_UPGRADING);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].tick, 5);
    assert!(
        found[0]
            .message
            .starts_with("edge-1 (PREFLIGHT) and edge-2 (PREFLIGHT) are in per-node upgrade states at once, after edge-2's script"),
        "{}",
        found[0]
    );
}

#[test]
fn taking_replicas_down_one_node_at_a_time_keeps_an_uptodate_replica() {
    let run = Run::new()
        .does(script("edge-1"), "drbdadm down all", |f| {
            disk(f, "edge-1", "Down")
        })
        .does(script("edge-1"), "drbdadm adjust all", |f| {
            disk(f, "edge-1", "UpToDate")
        })
        .does(script("edge-2"), "drbdadm down all", |f| {
            disk(f, "edge-2", "Down")
        });
    assert_eq!(run.check(UPTODATE_REPLICA_KEPT), vec![]);
}

#[test]
fn the_second_node_taking_its_replica_down_breaks_uptodate_replica_kept() {
    let run = Run::new()
        .at(5)
        .does(script("edge-1"), "drbdadm down all", |f| {
            disk(f, "edge-1", "Down")
        })
        .does(script("edge-2"), "drbdadm down all", |f| {
            disk(f, "edge-2", "Down")
        });
    let found = run.check(UPTODATE_REPLICA_KEPT);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        "violated uptodate-replica-kept: tick 5: resource pvc-1 has no UpToDate replica left (it was \
         UpToDate on edge-2; now edge-1 Down, edge-2 Down), after edge-2's script `drbdadm down all` (exit 0)"
    );
}

#[test]
fn a_fault_that_takes_the_last_replica_is_nobodys_decision() {
    let run = Run::new()
        .does(script("edge-1"), "drbdadm down all", |f| {
            disk(f, "edge-1", "Down")
        })
        .fault("{\"PowerOff\":{\"node\":\"edge-2\"}}", |f| {
            disk(f, "edge-2", "Down")
        });
    assert_eq!(run.check(UPTODATE_REPLICA_KEPT), vec![]);
}

#[test]
fn a_storage_taint_removed_after_the_resync_keeps_the_taint_invariant() {
    let run = Run::new()
        .does(
            script("edge-2"),
            "kubectl taint node edge-2 vx-rail.io/storage-not-ready=resync:NoSchedule",
            |f| {
                storage_taint(f, "edge-2", true);
                disk(f, "edge-2", "Inconsistent");
            },
        )
        .fault("clock", |f| disk(f, "edge-2", "UpToDate"))
        .does(
            script("edge-2"),
            "kubectl taint node edge-2 vx-rail.io/storage-not-ready:NoSchedule-",
            |f| storage_taint(f, "edge-2", false),
        );
    assert_eq!(run.check(STORAGE_TAINT_AFTER_UPTODATE), vec![]);
}

#[test]
fn a_storage_taint_removed_during_the_resync_breaks_the_taint_invariant() {
    let run = Run::new()
        .does(
            script("edge-2"),
            "kubectl taint node edge-2 vx-rail.io/storage-not-ready=resync:NoSchedule",
            |f| {
                storage_taint(f, "edge-2", true);
                disk(f, "edge-2", "Inconsistent");
            },
        )
        .at(7)
        .nodewright(
            Actor::Nodewright,
            Workflow::Taints,
            "kubectl taint node edge-2 vx-rail.io/storage-not-ready:NoSchedule-",
            |f| storage_taint(f, "edge-2", false),
        );
    let found = run.check(STORAGE_TAINT_AFTER_UPTODATE);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].tick, 7);
    assert!(
        found[0]
            .message
            .starts_with("edge-2's storage taint was removed while its replicas are not all UpToDate (pvc-1 Inconsistent), by Nodewright"),
        "{}",
        found[0]
    );
}

/// The script decides edge-1's taint in legacy mode; the takeover gives taints to Nodewright at
/// generation 1; edge-1's script finishes the loop that read the old takeover (it taints once
/// more), then acknowledges; Nodewright decides from then on.
fn a_clean_handover() -> Run {
    Run::new()
        .does(
            script("edge-1"),
            "kubectl taint node edge-1 vx-rail.io/storage-not-ready=resync:NoSchedule",
            |f| storage_taint(f, "edge-1", true),
        )
        .at(1)
        .does(
            Actor::Person,
            "kubectl create configmap nodewright-takeover",
            |f| takeover_taints(f, 1, "operator"),
        )
        .does(
            script("edge-1"),
            "kubectl label node edge-1 --overwrite vx-rail.io/storage-ready=false",
            |f| {
                f.labels
                    .get_mut("edge-1")
                    .unwrap()
                    .insert(label::STORAGE_READY.into(), "false".into());
            },
        )
        .does(
            script("edge-1"),
            "kubectl patch configmap vx-rail-node-edge-1",
            |f| ack(f, "edge-1", 1),
        )
        .at(2)
        .nodewright(
            Actor::Nodewright,
            Workflow::Taints,
            "kubectl taint node edge-1 vx-rail.io/storage-not-ready:NoSchedule-",
            |f| storage_taint(f, "edge-1", false),
        )
}

#[test]
fn a_takeover_after_the_scripts_last_loop_keeps_one_decider() {
    assert_eq!(a_clean_handover().check(ONE_DECIDER), vec![]);
}

#[test]
fn a_script_that_acts_after_nodewright_took_over_breaks_one_decider() {
    // A script whose loop hung (it never acknowledged) wakes up and acts on its old snapshot.
    let run = Run::new()
        .does(
            Actor::Person,
            "kubectl create configmap nodewright-takeover",
            |f| takeover_taints(f, 1, "operator"),
        )
        .at(3)
        .nodewright(
            Actor::Nodewright,
            Workflow::Taints,
            "kubectl taint node edge-2 vx-rail.io/storage-not-ready=resync:NoSchedule",
            |f| storage_taint(f, "edge-2", true),
        )
        .at(4)
        .does(
            script("edge-2"),
            "kubectl taint node edge-2 vx-rail.io/storage-not-ready:NoSchedule-",
            |f| storage_taint(f, "edge-2", false),
        );
    let found = run.check(ONE_DECIDER);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].tick, 4);
    assert!(
        found[0].message.starts_with(
            "edge-2's script decided taints of edge-2 (takeover generation 1) after Nodewright did (tick 3: Nodewright `kubectl taint node edge-2"
        ),
        "{}",
        found[0]
    );
}

#[test]
fn a_script_that_acts_after_acknowledging_the_takeover_breaks_one_decider() {
    let run = a_clean_handover().at(3).does(
        script("edge-1"),
        "kubectl taint node edge-1 vx-rail.io/storage-not-ready=resync:NoSchedule",
        |f| storage_taint(f, "edge-1", true),
    );
    let found = run.check(ONE_DECIDER);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].tick, 3);
    // Nodewright decided edge-1's taint at tick 2: that is what the message names first.
    assert!(
        found[0]
            .message
            .contains("edge-1's script decided taints of edge-1"),
        "{}",
        found[0]
    );

    // Acknowledged, and Nodewright has not acted yet: still a second decider.
    let run = Run::new()
        .does(
            Actor::Person,
            "kubectl create configmap nodewright-takeover",
            |f| takeover_taints(f, 1, "operator"),
        )
        .does(
            script("edge-1"),
            "kubectl patch configmap vx-rail-node-edge-1",
            |f| ack(f, "edge-1", 1),
        )
        .does(
            script("edge-1"),
            "kubectl taint node edge-1 vx-rail.io/storage-not-ready=x:NoSchedule",
            |f| storage_taint(f, "edge-1", true),
        );
    let found = run.check(ONE_DECIDER);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].message.contains("after acknowledging the generation"),
        "{}",
        found[0]
    );
}

#[test]
fn nodewright_acting_on_a_workflow_it_does_not_own_breaks_one_decider() {
    let run = Run::new()
        .does(
            Actor::Person,
            "kubectl create configmap nodewright-takeover",
            |f| takeover_taints(f, 1, "shadow"),
        )
        .nodewright(
            Actor::Nodewright,
            Workflow::Taints,
            "kubectl taint node edge-2 vx-rail.io/storage-not-ready=resync:NoSchedule",
            |f| storage_taint(f, "edge-2", true),
        );
    let found = run.check(ONE_DECIDER);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].message.starts_with(
            "Nodewright decided taints of edge-2 (takeover generation 1) while it is in shadow mode"
        ),
        "{}",
        found[0]
    );
}

const PLACE: &str = "linstor --no-color resource create edge-2 pvc-1 --storage-pool pool0";

#[test]
fn a_script_placing_replicas_for_its_own_migration_keeps_off_owned_workflows() {
    let run = Run::new()
        .does(
            script("edge-1"),
            "kubectl patch configmap vx-rail-cluster-state",
            |f| {
                config(
                    f,
                    CLUSTER_STATE,
                    "migration",
                    "phase=PLACING_REPLICAS;joining=edge-2",
                )
            },
        )
        .does(script("edge-1"), PLACE, |_| {});
    assert_eq!(run.check(SCRIPT_KEEPS_OFF_OWNED), vec![]);
    assert_eq!(run.check(ONE_DECIDER), vec![]);
}

#[test]
fn a_script_placing_replicas_during_nodewrights_migration_breaks_both_decider_invariants() {
    let run = Run::new()
        .does(
            Actor::Person,
            "kubectl create configmap nodewright-takeover",
            |f| {
                config(f, "kube-system/nodewright-takeover", "generation", "1");
                config(f, "kube-system/nodewright-takeover", "migration", "operator");
            },
        )
        .at(5)
        .nodewright(
            Actor::Nodewright,
            Workflow::Migration,
            "kubectl patch configmap vx-rail-cluster-state",
            |f| {
                config(
                    f,
                    CLUSTER_STATE,
                    "migration",
                    "phase=PLACING_REPLICAS;owner=operator",
                )
            },
        )
        .does(script("edge-1"), PLACE, |_| {});
    let found = run.check(SCRIPT_KEEPS_OFF_OWNED);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        format!(
            "violated script-keeps-off-owned-workflows: tick 5: edge-1's script mutated the host for \
             migration of site (the migration in flight is Nodewright's (owner=operator)): edge-1's script `{PLACE}` (exit 0)"
        )
    );
    let found = run.check(ONE_DECIDER);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("after Nodewright did"), "{}", found[0]);
}

#[test]
fn reading_linstor_is_no_placement_change() {
    let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert!(changes_placement(&argv(PLACE)));
    assert!(changes_placement(&argv("linstor --no-color node delete edge-3")));
    assert!(!changes_placement(&argv("linstor --no-color resource list")));
    assert!(!changes_placement(&argv("drbdadm down all")));
}

#[test]
fn a_run_that_keeps_every_invariant_reports_zero_violated() {
    let report = check(&a_clean_handover().steps);
    assert_eq!(report.to_string(), "invariants: 5 checked, 0 violated\n");
}

#[test]
fn the_report_names_each_violation_above_its_summary_line() {
    let run = Run::new()
        .at(5)
        .does(script("edge-1"), "drbdadm down all", |f| {
            disk(f, "edge-1", "Down")
        })
        .does(script("edge-2"), "drbdadm down all", |f| {
            disk(f, "edge-2", "Down")
        });
    let report = check(&run.steps);
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("violated uptodate-replica-kept: tick 5: resource pvc-1"));
    assert_eq!(lines[1], "invariants: 5 checked, 1 violated");
    assert_eq!(report.violated(), vec![UPTODATE_REPLICA_KEPT]);
}

#[test]
fn nodewrights_steps_go_after_the_clock_of_their_tick() {
    let facts = Arc::new(Facts::default());
    let entry = |tick, node: &str| TraceEntry {
        tick,
        node: node.into(),
        argv: vec!["ip".into(), "link".into()],
        code: 0,
    };
    let obs = |tick, after| Observation {
        tick,
        after,
        facts: facts.clone(),
    };
    let trace = Trace {
        commands: vec![entry(0, "edge-1"), entry(1, "operator")],
        observations: vec![
            obs(0, run::Step::Start),
            obs(0, run::Step::Command(0)),
            obs(0, run::Step::Clock),
            obs(1, run::Step::Command(1)),
            obs(1, run::Step::Clock),
        ],
        ..Trace::default()
    };
    let ours = |tick| Step {
        tick,
        actor: Actor::Nodewright,
        action: Action::Command {
            argv: vec!["kubectl".into()],
            code: 0,
        },
        workflow: Some(Workflow::Taints),
        facts: facts.clone(),
    };
    let merged = steps(&trace, vec![ours(0), ours(1)]);
    let actors: Vec<String> = merged.iter().map(|s| format!("{} {}", s.tick, s.actor)).collect();
    assert_eq!(
        actors,
        [
            "0 the world",
            "0 edge-1's script",
            "0 the world",
            "0 Nodewright",
            "1 a person",
            "1 the world",
            "1 Nodewright"
        ]
    );
}

#[test]
fn an_incident_is_expected_only_while_the_script_decides_its_workflows() {
    let yaml = "description: x\nticks: 1\nnodes: [{name: a, host: {address: x}}]\n\
                incident: {script_decides: [taints], violates: [one-decider]}\n";
    let scenario = Scenario::from_yaml(yaml).unwrap();
    let want = BTreeSet::from(["one-decider".to_owned()]);
    assert_eq!(expected(&scenario, &[]), want);
    assert_eq!(
        expected(&scenario, &[(Workflow::Taints, WorkflowMode::Shadow)]),
        want
    );
    assert_eq!(
        expected(&scenario, &[(Workflow::Migration, WorkflowMode::Operator)]),
        want
    );
    assert_eq!(
        expected(&scenario, &[(Workflow::Taints, WorkflowMode::Operator)]),
        BTreeSet::new()
    );
    let clean = Report {
        checked: 5,
        violations: Vec::new(),
    };
    let e = as_expected(&clean, &scenario, &[]).unwrap_err();
    assert!(e.starts_with("expected one-decider violated, found:\n"), "{e}");
    assert!(as_expected(&clean, &scenario, &[(Workflow::Taints, WorkflowMode::Operator)]).is_ok());
}

/// Nodewright's mirror of its StorageUpgrade at `state` on `node`, with `done`.
fn mirror(run: Run, state: &str, node: &str, done: &str) -> Run {
    let blob = format!("state={state};to=9.2.14;order=edge-1,edge-2;node={node};done={done};owner=operator");
    run.nodewright(
        Actor::Nodewright,
        Workflow::StorageUpgrade,
        "kubectl patch configmap vx-rail-cluster-state",
        |f| upgrade(f, &blob),
    )
}

fn agent(node: &str) -> Actor {
    Actor::Agent(node.into())
}

#[test]
fn agents_upgrading_one_node_after_the_other_keep_one_node_upgrading() {
    let run = Run::new().at(3);
    let run = mirror(run, "DOWN_RESOURCES", "edge-1", "").nodewright(
        agent("edge-1"),
        Workflow::StorageUpgrade,
        "drbdadm down all",
        |f| disk(f, "edge-1", "Down"),
    );
    let run = mirror(run, "UP_RESOURCES", "edge-1", "").nodewright(
        agent("edge-1"),
        Workflow::StorageUpgrade,
        "drbdadm adjust all",
        |f| disk(f, "edge-1", "UpToDate"),
    );
    let run = mirror(run, "PREFLIGHT", "edge-2", "edge-1");
    // A read on edge-2 is no upgrade step.
    let run = run.nodewright(
        agent("edge-2"),
        Workflow::StorageUpgrade,
        "drbdadm status all",
        |_| {},
    );
    let run = mirror(run, "DOWN_RESOURCES", "edge-2", "edge-1").nodewright(
        agent("edge-2"),
        Workflow::StorageUpgrade,
        "drbdadm down all",
        |f| disk(f, "edge-2", "Down"),
    );
    let run = mirror(run, "COMPLETED", "", "edge-1,edge-2");
    assert_eq!(run.check(ONE_NODE_UPGRADING), []);
    assert_eq!(run.check(UPTODATE_REPLICA_KEPT), []);
}

#[test]
fn a_plan_whose_agents_take_a_second_node_down_while_the_mirror_names_one_breaks_one_node_upgrading() {
    // The mirror only ever names edge-1; the agents work on edge-2 as well.
    let run = Run::new().at(4);
    let run = mirror(run, "DOWN_RESOURCES", "edge-1", "").nodewright(
        agent("edge-1"),
        Workflow::StorageUpgrade,
        "drbdadm down all",
        |f| disk(f, "edge-1", "Down"),
    );
    let run = run.nodewright(
        agent("edge-2"),
        Workflow::StorageUpgrade,
        "systemctl stop linstor-satellite",
        |_| {},
    );
    let found = run.check(ONE_NODE_UPGRADING);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].tick, 4);
    assert!(
        found[0]
            .message
            .contains("edge-1 (DOWN_RESOURCES) and edge-2 (its agent's `systemctl stop linstor-satellite`)")
            && found[0].message.contains("edge-2's agent"),
        "{}",
        found[0].message
    );
    // The second node's `drbdadm down` takes the last UpToDate replica: caught there too.
    let run = run.nodewright(
        agent("edge-2"),
        Workflow::StorageUpgrade,
        "drbdadm down all",
        |f| disk(f, "edge-2", "Down"),
    );
    let lost = run.check(UPTODATE_REPLICA_KEPT);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(
        lost[0].message.contains("edge-2's agent `drbdadm down all`"),
        "{}",
        lost[0].message
    );
}

#[test]
fn an_agents_rollback_on_two_nodes_in_turn_is_no_second_upgrade() {
    let run = Run::new().at(5);
    let run = mirror(run, "INSTALL_PACKAGES", "edge-2", "edge-1").nodewright(
        agent("edge-2"),
        Workflow::StorageUpgrade,
        "apt-get install -y drbd-dkms=9.2.14-1",
        |_| {},
    );
    let run = mirror(run, "ROLLING_BACK", "edge-2", "edge-1");
    let run = run
        .nodewright(
            agent("edge-2"),
            Workflow::StorageUpgrade,
            "apt-get install -y drbd-dkms=9.2.12-1",
            |_| {},
        )
        .nodewright(
            agent("edge-1"),
            Workflow::StorageUpgrade,
            "apt-get install -y drbd-dkms=9.2.12-1",
            |_| {},
        );
    let run = mirror(run, "ROLLED_BACK", "", "");
    assert_eq!(run.check(ONE_NODE_UPGRADING), []);
}
