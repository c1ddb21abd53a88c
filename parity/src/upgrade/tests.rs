//! Unit tests of the upgrade decision: a small world (three nodes, a host model per node that
//! answers the agent's steps as the real ones would) driven turn by turn through `decide` and
//! `status::after`, as the controller and the agents would.

use std::collections::BTreeMap;

use nodewright_api::nodetask::NodeTaskPhase;
use nodewright_api::storageupgrade::{StorageUpgradeSpec, StorageUpgradeStatus, UpgradeState as S};

use super::*;
use crate::controllers::PodMeta;

const FROM: &str = "9.2.12";
const TO: &str = "9.2.14";

#[derive(Clone, Debug)]
struct Host {
    package: String,
    kernel: Option<String>,
    satellite: bool,
    up: bool,
    primaries: Vec<String>,
    /// A peer's disk as this node sees it (for the quorum and health checks).
    peer_disk: &'static str,
}

type Fault = Box<dyn Fn(&TaskRequest, &World) -> Option<Reply>>;

enum Reply {
    Fail(&'static str),
    Hang,
}

struct World {
    spec: StorageUpgradeSpec,
    status: StorageUpgradeStatus,
    facts: Facts,
    hosts: BTreeMap<String, Host>,
    tasks: BTreeMap<String, TaskResult>,
    pods: Vec<PodMeta>,
    fault: Option<Fault>,
    /// Every task created, in order.
    log: Vec<TaskRequest>,
}

fn spec() -> StorageUpgradeSpec {
    serde_json::from_value(serde_json::json!({
        "owner": "operator",
        "clusterRef": {"name": "site"},
        "fromVersion": FROM,
        "toVersion": TO,
    }))
    .unwrap()
}

impl World {
    fn new() -> Self {
        let names = ["edge-1", "edge-2", "edge-3"];
        let nodes = names
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    NodeFacts {
                        exists: true,
                        ready: true,
                        boot_id: Some(format!("{n}-boot-1")),
                        installed: Some(FROM.into()),
                        ..NodeFacts::default()
                    },
                )
            })
            .collect();
        let hosts = names
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    Host {
                        package: format!("{FROM}-1"),
                        kernel: Some(FROM.into()),
                        satellite: true,
                        up: true,
                        primaries: if *n == "edge-1" {
                            vec!["r0".into()]
                        } else {
                            Vec::new()
                        },
                        peer_disk: "UpToDate",
                    },
                )
            })
            .collect();
        World {
            spec: spec(),
            status: StorageUpgradeStatus::default(),
            facts: Facts {
                now: 1_000,
                state_timeout: 1800,
                rollback_timeout: 1800,
                nodes,
                members: names.iter().map(|n| (*n).to_owned()).collect(),
                ..Facts::default()
            },
            hosts,
            tasks: BTreeMap::new(),
            pods: Vec::new(),
            fault: None,
            log: Vec::new(),
        }
    }

    fn state(&self) -> S {
        self.status.state.unwrap_or(S::Pending)
    }

    fn node_state(&self, n: &str) -> S {
        status::node(&self.status, n).map_or(S::Pending, |s| s.state)
    }

    fn decide(&self) -> Decision {
        decide(
            "up",
            &self.spec,
            "uid12345",
            &self.status,
            &self.facts,
            &self.tasks,
            &self.pods,
        )
    }

    /// The host's answer to a step.
    fn run(&mut self, t: &TaskRequest) -> (NodeTaskPhase, String, String) {
        if let Some(f) = &self.fault {
            match f(t, self) {
                Some(Reply::Fail(why)) => return (NodeTaskPhase::Failed, String::new(), why.into()),
                Some(Reply::Hang) => return (NodeTaskPhase::Running, String::new(), String::new()),
                None => {}
            }
        }
        let peers: Vec<String> = self.hosts.keys().filter(|n| **n != t.node).cloned().collect();
        let h = self.hosts.get_mut(&t.node).unwrap();
        let arg = t.args.first().cloned().unwrap_or_default();
        let out = match t.step.as_str() {
            "drbd-version" => format!(
                "kernel={}\npackage={}\n",
                h.kernel.as_deref().unwrap_or("none"),
                h.package
            ),
            "service-status" => (if h.satellite { "active" } else { "inactive" }).to_owned(),
            "drbd-status" if h.up => {
                let role = if h.primaries.contains(&"r0".to_owned()) {
                    "Primary"
                } else {
                    "Secondary"
                };
                let mut s = format!("r0 role:{role}\n  disk:UpToDate\n");
                for p in peers {
                    s.push_str(&format!("  {p} role:Secondary\n    peer-disk:{}\n", h.peer_disk));
                }
                s
            }
            "drbd-status" => String::new(),
            "storage-backup" => format!("/var/lib/nodewright/backup/{arg}"),
            "service-stop" => {
                h.satellite = false;
                String::new()
            }
            "service-start" => {
                h.satellite = true;
                String::new()
            }
            "drbd-down" => {
                h.up = false;
                String::new()
            }
            "drbd-adjust" => {
                h.up = true;
                String::new()
            }
            "module-unload" if arg == "drbd" => {
                h.kernel = None;
                String::new()
            }
            "module-load" if arg == "drbd" => {
                h.kernel = Some(upstream(&h.package).to_owned());
                String::new()
            }
            "package-install" => {
                h.package = t.args.get(1).cloned().unwrap_or_default();
                String::new()
            }
            "drbd-demote" => {
                h.primaries.retain(|r| *r != arg);
                String::new()
            }
            _ => String::new(),
        };
        (NodeTaskPhase::Succeeded, out, "done".into())
    }

    /// One turn: decide, carry the actions out (tasks run at once), write the status.
    fn turn(&mut self) -> Decision {
        let d = self.decide();
        let mine = gate_holder("up");
        for a in &d.actions {
            match a {
                Action::Task(t) => {
                    if self.tasks.contains_key(&t.key) {
                        continue;
                    }
                    self.log.push(t.clone());
                    let (phase, output, message) = self.run(t);
                    self.tasks.insert(
                        t.key.clone(),
                        TaskResult {
                            request: t.clone(),
                            phase: Some(phase),
                            output: Some(output),
                            message: Some(message),
                        },
                    );
                }
                Action::Node { node, cordon, taint } => {
                    let f = self.facts.nodes.get_mut(node).unwrap();
                    if let Some(c) = cordon {
                        f.cordoned = *c;
                    }
                    if let Some(t) = taint {
                        f.upgrade_taint = *t;
                    }
                }
                Action::Evict { name, .. } => self.pods.retain(|p| p.name != *name),
                Action::AcquireGate => {
                    if self.facts.gate.is_some() {
                        return d;
                    }
                    self.facts.gate = Some(mine.clone());
                }
                Action::ReleaseGate => self.facts.gate = None,
            }
        }
        let order = order(&self.spec, &self.facts);
        self.status = status::after(&self.status, &d, &order, &self.facts, &self.tasks, Some(1));
        self.facts.now += 1;
        d
    }

    /// Turns until `until` holds or the upgrade ends; panics past a bound.
    fn run_until(&mut self, until: impl Fn(&World) -> bool) {
        for _ in 0..400 {
            if until(self) || (self.state().is_terminal() && self.facts.gate.is_none()) {
                return;
            }
            self.turn();
        }
        panic!("no end after 400 turns: {:?}", self.status);
    }

    fn run_to_end(&mut self) {
        self.run_until(|_| false);
    }

    fn history(&self, n: &str) -> Vec<S> {
        status::node(&self.status, n)
            .map(|s| s.history.iter().map(|t| t.phase).collect())
            .unwrap_or_default()
    }

    fn created(&self, node: &str, step: &str) -> Vec<Vec<String>> {
        self.log
            .iter()
            .filter(|t| t.node == node && t.step == step)
            .map(|t| t.args.clone())
            .collect()
    }
}

fn per_node() -> Vec<S> {
    S::ALL.into_iter().filter(|s| s.is_per_node()).collect()
}

#[test]
fn a_healthy_site_is_upgraded_one_node_at_a_time_through_every_state_and_the_gate_is_given_back() {
    let mut w = World::new();
    w.run_until(|w| {
        let busy = w.status.nodes.iter().filter(|n| n.state.is_per_node()).count();
        assert!(
            busy <= 1,
            "two nodes in per-node states at once: {:?}",
            w.status.nodes
        );
        false
    });
    assert_eq!(w.state(), S::Completed);
    for n in ["edge-1", "edge-2", "edge-3"] {
        let mut want = per_node();
        want.push(S::Completed);
        assert_eq!(w.history(n), want, "{n}");
        assert_eq!(w.hosts[n].package, format!("{TO}-1"));
        assert_eq!(w.hosts[n].kernel.as_deref(), Some(TO));
        assert!(w.hosts[n].satellite && w.hosts[n].up);
        assert!(!w.facts.nodes[n].cordoned && !w.facts.nodes[n].upgrade_taint);
        assert_eq!(
            w.created(n, "package-install"),
            vec![vec![PACKAGE.to_owned(), format!("{TO}-1")]]
        );
    }
    assert_eq!(w.facts.gate, None, "the gate is released at the end");
    assert_eq!(
        w.status.progress.as_ref().map(|p| (p.done, p.total)),
        Some((3, 3))
    );
    let complete = w
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete")
        .unwrap();
    assert_eq!(
        (complete.status.as_str(), complete.observed_generation),
        ("True", Some(1))
    );
}

#[test]
fn modules_are_unloaded_transport_first_and_loaded_drbd_first() {
    let mut w = World::new();
    w.run_to_end();
    assert_eq!(
        w.created("edge-2", "module-unload"),
        vec![vec!["drbd_transport_tcp".to_owned()], vec!["drbd".to_owned()]]
    );
    assert_eq!(
        w.created("edge-2", "module-load"),
        vec![vec!["drbd".to_owned()], vec!["drbd_transport_tcp".to_owned()]]
    );
}

#[test]
fn a_node_already_on_the_target_version_is_skipped_as_the_script_does() {
    let mut w = World::new();
    let h = w.hosts.get_mut("edge-2").unwrap();
    h.package = format!("{TO}-1");
    h.kernel = Some(TO.into());
    w.run_to_end();
    assert_eq!(w.state(), S::Completed);
    assert_eq!(w.history("edge-2"), vec![S::Preflight, S::Completed]);
    assert!(w.created("edge-2", "package-install").is_empty());
}

#[test]
fn leaving_pending_takes_the_gate_and_waits_while_another_workflow_holds_it() {
    let mut w = World::new();
    w.facts.gate = Some("Migration/grow".into());
    let d = w.turn();
    assert_eq!(
        d.outcome,
        Outcome::Wait("the storage gate is held by Migration/grow".into())
    );
    assert_eq!(w.state(), S::Pending);
    w.facts.gate = None;
    let d = w.turn();
    assert!(d.actions.contains(&Action::AcquireGate));
    assert_eq!(
        (w.state(), w.status.current_node.as_deref()),
        (S::Preflight, Some("edge-1"))
    );
    assert_eq!(w.facts.gate.as_deref(), Some("StorageUpgrade/up"));
}

#[test]
fn a_legacy_migration_in_progress_holds_the_upgrade_in_pending() {
    let mut w = World::new();
    w.facts.legacy_migration = true;
    let d = w.turn();
    assert!(matches!(d.outcome, Outcome::Wait(ref r) if r.contains("legacy migration")));
    assert!(d.actions.is_empty());
}

#[test]
fn a_gate_taken_by_someone_else_between_decision_and_write_leaves_the_upgrade_pending() {
    let mut w = World::new();
    // The decision saw no gate; the create then finds it taken (the world's gate is set after
    // the decision): the sequence stops before the status.
    let d = w.decide();
    assert!(d.actions.contains(&Action::AcquireGate));
    w.facts.gate = Some("Migration/grow".into());
    w.turn();
    assert_eq!(w.state(), S::Pending);
}

#[test]
fn each_state_waits_for_its_running_task() {
    for state in per_node() {
        let mut w = World::new();
        w.run_until(|w| w.state() == state);
        if matches!(state, S::CordonAndTaint | S::RemoveTaint | S::Uncordon) {
            continue; // Node changes: no task to wait for.
        }
        let tag = legacy::state_text(state).to_ascii_lowercase().replace('_', "-");
        w.fault = Some(Box::new(move |t, _| t.key.contains(&tag).then_some(Reply::Hang)));
        let d = w.turn();
        assert!(matches!(d.outcome, Outcome::Wait(_)), "{state:?}: {d:?}");
        let d = w.turn();
        assert!(
            matches!(d.outcome, Outcome::Wait(ref r) if r.contains("waiting")),
            "{state:?}: {d:?}"
        );
        assert_eq!(w.state(), state);
    }
}

#[test]
fn each_state_that_outlasts_its_deadline_fails_and_the_upgrade_rolls_back() {
    for state in per_node() {
        let mut w = World::new();
        w.run_until(|w| w.state() == state && w.status.current_node.as_deref() == Some("edge-1"));
        let tag = legacy::state_text(state).to_ascii_lowercase().replace('_', "-");
        w.fault = Some(Box::new(move |t, _| t.key.contains(&tag).then_some(Reply::Hang)));
        if matches!(state, S::CordonAndTaint | S::RemoveTaint | S::Uncordon) {
            // The Node never shows the change: the world drops it.
            w.facts.now += 1801;
        } else {
            w.turn();
            w.facts.now += 1801;
        }
        let d = w.decide();
        assert!(
            matches!(d.outcome, Outcome::Move(ref c) if c[0].state == S::RollingBack
                && c[0].message.as_deref().unwrap().contains("timed out after 1800s")),
            "{state:?}: {d:?}"
        );
    }
}

#[test]
fn each_failing_step_starts_the_rollback_with_the_state_and_reason() {
    for state in per_node() {
        if matches!(state, S::CordonAndTaint | S::RemoveTaint | S::Uncordon) {
            continue; // Node changes do not fail; they time out (tested above).
        }
        let mut w = World::new();
        let tag = legacy::state_text(state).to_ascii_lowercase().replace('_', "-");
        w.fault = Some(Box::new(move |t, _| {
            (t.key.contains(&format!("-{tag}1-")) && !t.key.contains("undo")).then_some(Reply::Fail("boom"))
        }));
        w.run_until(|w| w.state() == S::RollingBack);
        let msg = w.status.message.clone().unwrap_or_default();
        assert!(
            msg.starts_with(&format!("{}: ", legacy::state_text(state))),
            "{state:?}: {msg}"
        );
        assert!(msg.contains("boom"), "{msg}");
        assert_eq!(w.status.failed_state, Some(state));
        assert_eq!(w.status.failed_node.as_deref(), Some("edge-1"));
        w.fault = None;
        w.run_to_end();
        assert_eq!(w.state(), S::RolledBack, "{state:?}");
    }
}

#[test]
fn a_rollback_from_every_per_node_state_undoes_only_what_was_entered_newest_node_first() {
    for state in per_node() {
        let mut w = World::new();
        w.run_until(|w| w.state() == state && w.status.current_node.as_deref() == Some("edge-2"));
        w.spec.rollback = true;
        w.run_to_end();
        assert_eq!(w.state(), S::RolledBack, "{state:?}");
        // edge-2 (the newest) rolled back before edge-1; edge-3 was never touched.
        let entered = |n: &str| {
            status::node(&w.status, n)
                .unwrap()
                .history
                .iter()
                .find(|t| t.phase == S::RollingBack)
                .map(|t| status::seconds(&t.at))
                .unwrap()
        };
        assert!(entered("edge-2") < entered("edge-1"), "{state:?}");
        assert_eq!(w.node_state("edge-3"), S::Pending);
        assert!(w.created("edge-3", "drbd-version").is_empty());
        for n in ["edge-1", "edge-2"] {
            let h = &w.hosts[n];
            assert_eq!(h.package, format!("{FROM}-1"), "{state:?} {n}");
            assert_eq!(h.kernel.as_deref(), Some(FROM), "{state:?} {n}");
            assert!(h.satellite && h.up, "{state:?} {n}");
            assert!(
                !w.facts.nodes[n].cordoned && !w.facts.nodes[n].upgrade_taint,
                "{state:?} {n}"
            );
        }
        // The old package is reinstalled only where the new one may have been.
        let reinstalled = w
            .created("edge-2", "package-install")
            .contains(&vec![PACKAGE.to_owned(), format!("{FROM}-1")]);
        assert_eq!(reinstalled, state >= S::InstallPackages, "{state:?}");
        assert_eq!(w.facts.gate, None);
    }
}

#[test]
fn a_rollback_whose_reinstall_fails_ends_failed_naming_the_node_and_the_step() {
    let mut w = World::new();
    w.fault = Some(Box::new(|t, _| {
        if t.step == "drbd-adjust" && !t.key.contains("undo") {
            Some(Reply::Fail("adjust failed"))
        } else if t.step == "package-install" && t.args.get(1).map(String::as_str) == Some("9.2.12-1") {
            Some(Reply::Fail("E: Version '9.2.12-1' for 'drbd-dkms' was not found"))
        } else {
            None
        }
    }));
    w.run_to_end();
    assert_eq!(w.state(), S::Failed);
    let msg = w.status.message.clone().unwrap();
    assert!(
        msg.starts_with("rollback failed on edge-1 at INSTALL_PACKAGES"),
        "{msg}"
    );
    assert_eq!(w.node_state("edge-1"), S::Failed);
    let failed = w.status.conditions.iter().find(|c| c.type_ == "Failed").unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.reason.as_str()),
        ("True", "RollbackFailed")
    );
    assert_eq!(w.facts.gate, None, "a failed upgrade gives the gate back");
}

#[test]
fn a_rollback_that_outlasts_its_deadline_fails() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::LoadModules);
    w.spec.rollback = true;
    w.turn();
    assert_eq!(w.state(), S::RollingBack);
    w.fault = Some(Box::new(|t, _| t.key.contains("undo").then_some(Reply::Hang)));
    w.turn();
    w.facts.now += 1801;
    w.turn();
    assert_eq!(w.state(), S::Failed);
    assert!(
        w.status
            .message
            .as_deref()
            .unwrap()
            .contains("timed out after 1800s")
    );
}

#[test]
fn quorum_check_fails_when_one_uptodate_peer_of_three_replicas_is_all_that_is_left() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::QuorumCheck);
    // Both peers' disks are Outdated as edge-1 sees them.
    w.hosts.get_mut("edge-1").unwrap().peer_disk = "Outdated";
    // One peer's disk Outdated: the script's "one UpToDate peer" rule passes, DRBD's majority
    // (2 of 3) is not there without this node.
    let one = "r0 role:Primary\n  disk:UpToDate\n  edge-2 role:Secondary\n    peer-disk:UpToDate\n  edge-3 role:Secondary\n    peer-disk:Outdated\n";
    w.run_until(|w| w.state() == S::RollingBack);
    assert_eq!(w.status.failed_state, Some(S::QuorumCheck));
    let msg = w.status.message.clone().unwrap();
    assert!(
        msg.contains("quorum would be lost without edge-1: r0 (0 of 3"),
        "{msg}"
    );
    let q = quorum::drbd(one).unwrap();
    assert_eq!(
        q.without_this_node(),
        vec!["r0 (1 of 3 replicas UpToDate and Connected on peers)".to_owned()]
    );
}

#[test]
fn quorum_holds_with_a_majority_and_on_a_two_node_site_with_its_one_peer() {
    let three = "r0 role:Secondary\n  disk:UpToDate\n  a role:Secondary\n    peer-disk:UpToDate\n  b role:Secondary\n    peer-disk:UpToDate\n";
    assert!(quorum::drbd(three).unwrap().without_this_node().is_empty());
    let two = "r0 role:Primary\n  disk:UpToDate\n  a role:Secondary\n    peer-disk:UpToDate\n";
    assert!(quorum::drbd(two).unwrap().without_this_node().is_empty());
    let away = "r0 role:Primary\n  disk:UpToDate\n  a connection:Connecting\n";
    assert_eq!(quorum::drbd(away).unwrap().without_this_node().len(), 1);
}

#[test]
fn the_node_is_drained_through_evictions_before_its_primaries_are_demoted() {
    let mut w = World::new();
    let pod = |name: &str, daemon_set: bool, mirror: bool, finished: bool| PodMeta {
        namespace: "apps".into(),
        name: name.into(),
        node: "edge-1".into(),
        daemon_set,
        mirror,
        finished,
    };
    w.pods = vec![
        pod("db-0", false, false, false),
        pod("agent-x", true, false, false),
        pod("static", false, true, false),
        pod("job-done", false, false, true),
    ];
    w.run_until(|w| w.state() == S::DemotePrimaries);
    let d = w.decide();
    assert_eq!(
        d.actions,
        vec![Action::Evict {
            namespace: "apps".into(),
            name: "db-0".into(),
            node: "edge-1".into()
        }]
    );
    assert!(matches!(d.outcome, Outcome::Wait(ref r) if r.contains("apps/db-0")));
    assert!(w.created("edge-1", "drbd-demote").is_empty());
    w.run_until(|w| w.state() == S::StopSatellite);
    assert_eq!(w.created("edge-1", "drbd-demote"), vec![vec!["r0".to_owned()]]);
    assert_eq!(w.pods.len(), 3, "DaemonSet, static and finished pods stay");
}

#[test]
fn backup_config_records_what_the_rollback_needs() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::CordonAndTaint);
    let b = status::node(&w.status, "edge-1").unwrap().backup.clone().unwrap();
    assert_eq!(b.installed_version.as_deref(), Some(FROM));
    assert_eq!(b.kernel_version.as_deref(), Some(FROM));
    assert!(b.satellite_active);
    assert_eq!(b.primaries, vec!["r0".to_owned()]);
    assert!(
        b.directory
            .unwrap()
            .starts_with("/var/lib/nodewright/backup/9.2.14-")
    );
}

#[test]
fn a_node_that_reboots_mid_install_runs_the_install_again_on_its_new_boot() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::InstallPackages);
    w.fault = Some(Box::new(|t, _| {
        (t.step == "package-install").then_some(Reply::Hang)
    }));
    w.turn();
    // The node goes away, then comes back on a new boot.
    w.facts.nodes.get_mut("edge-1").unwrap().ready = false;
    let d = w.turn();
    assert!(
        matches!(d.outcome, Outcome::Wait(ref r) if r.contains("edge-1 is not Ready")),
        "{d:?}"
    );
    let f = w.facts.nodes.get_mut("edge-1").unwrap();
    f.ready = true;
    f.boot_id = Some("edge-1-boot-2".into());
    w.fault = None;
    let d = w.turn();
    assert!(
        matches!(d.outcome, Outcome::Move(ref c) if c[0].state == S::InstallPackages
            && c[0].message.as_deref().unwrap().contains("rebooted")),
        "{d:?}"
    );
    w.run_until(|w| w.state() == S::LoadModules);
    assert_eq!(
        w.created("edge-1", "package-install").len(),
        2,
        "the install runs again"
    );
    w.run_to_end();
    assert_eq!(w.state(), S::Completed);
}

#[test]
fn a_node_lost_past_the_deadline_is_rolled_back_and_one_back_in_time_resumes() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::StopSatellite);
    w.facts.nodes.get_mut("edge-1").unwrap().exists = false;
    let d = w.turn();
    assert!(matches!(d.outcome, Outcome::Wait(ref r) if r.contains("has no Node object")));
    w.facts.now += 1801;
    w.turn();
    assert_eq!(w.state(), S::RollingBack);
    assert!(
        w.status
            .message
            .as_deref()
            .unwrap()
            .contains("edge-1 has no Node object for longer than 1800s")
    );

    let mut w = World::new();
    w.run_until(|w| w.state() == S::StopSatellite);
    w.facts.nodes.get_mut("edge-1").unwrap().ready = false;
    w.turn();
    w.facts.now += 600;
    w.facts.nodes.get_mut("edge-1").unwrap().ready = true;
    w.run_to_end();
    assert_eq!(w.state(), S::Completed);
}

#[test]
fn rollback_requested_before_the_start_ends_rolled_back_having_done_nothing() {
    let mut w = World::new();
    w.spec.rollback = true;
    w.run_to_end();
    assert_eq!(w.state(), S::RolledBack);
    assert!(w.log.is_empty());
}

#[test]
fn the_legacy_mirror_spells_the_scripts_blob_with_owner_operator() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::QuorumCheck);
    let b = legacy::blob(&w.spec, &w.status);
    let parsed = nodewright_parsers::parse_upgrade(&b).unwrap();
    assert_eq!(parsed.state, nodewright_parsers::UpgradeState::QuorumCheck);
    assert_eq!(parsed.node.as_deref(), Some("edge-1"));
    assert_eq!(parsed.order, vec!["edge-1", "edge-2", "edge-3"]);
    assert_eq!(
        (parsed.from.as_deref(), parsed.to.as_deref()),
        (Some(FROM), Some(TO))
    );
    assert_eq!(parsed.unknown.get("owner").map(String::as_str), Some("operator"));
    let a =
        nodewright_parsers::parse_upgrade_state_annotation(&legacy::annotation(&w.spec, S::QuorumCheck, 7))
            .unwrap();
    assert_eq!(
        (a.state, a.to.as_str(), a.since),
        (nodewright_parsers::UpgradeState::QuorumCheck, TO, 7)
    );
}

#[test]
fn the_legacy_request_is_translated_when_no_upgrade_targets_a_newer_version() {
    assert_eq!(request_name("9.2.14"), "storage-9-2-14");
    assert_eq!(translate("9.2.14", Some("9.2.12-1"), &[]), Some("9.2.12".into()));
    assert_eq!(
        translate("9.2.14", Some("9.2.12"), &["9.2.14"]),
        None,
        "one exists"
    );
    assert_eq!(translate("9.2.12", Some("9.2.12"), &[]), None, "not newer");
    assert_eq!(translate("9.2.10", Some("9.2.12"), &[]), None, "older");
    assert_eq!(
        translate("9.2.14", None, &[]),
        None,
        "the site's version is not known"
    );
    assert_eq!(compare_versions("9.10.0", "9.9.9"), std::cmp::Ordering::Greater);
}

#[test]
fn the_status_shows_the_step_its_result_and_the_progress() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::InstallPackages);
    w.fault = Some(Box::new(|t, _| {
        (t.step == "package-install").then_some(Reply::Hang)
    }));
    w.turn();
    let n = status::node(&w.status, "edge-1").unwrap();
    let step = n.step.clone().unwrap();
    assert_eq!(step.step, format!("package-install {PACKAGE} {TO}-1"));
    assert_eq!(step.result.as_deref(), Some("Running"));
    assert!(n.since.is_some());
    assert_eq!(
        w.status.progress.as_ref().map(|p| (p.done, p.total)),
        Some((0, 3))
    );
}

#[test]
fn a_gate_lost_mid_upgrade_is_taken_again_before_anything_else() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::StopSatellite);
    w.facts.gate = None;
    let d = w.decide();
    assert_eq!(d.actions.first(), Some(&Action::AcquireGate), "{d:?}");
    w.turn();
    assert_eq!(w.facts.gate.as_deref(), Some("StorageUpgrade/up"));
}

#[test]
fn a_rolled_back_node_waits_for_its_resync_before_the_next_node_is_undone() {
    let mut w = World::new();
    w.run_until(|w| w.state() == S::InstallPackages && w.status.current_node.as_deref() == Some("edge-2"));
    w.spec.rollback = true;
    // Once its resources are adjusted again, edge-2 sees its peers resyncing.
    w.hosts.get_mut("edge-2").unwrap().peer_disk = "Inconsistent";
    for _ in 0..100 {
        w.turn();
    }
    assert_eq!(w.node_state("edge-2"), S::RollingBack);
    assert_ne!(w.node_state("edge-1"), S::RollingBack);
    assert_eq!(
        w.created("edge-1", "drbd-down").len(),
        1,
        "edge-1's undo must not take its resources down while edge-2 resyncs"
    );
    let msg = w.status.message.clone().unwrap_or_default();
    assert!(msg.contains("resync not finished"), "{msg}");
    // Read again every RESYNC_POLL seconds (a turn is a second here).
    assert!(w.created("edge-2", "drbd-status").len() >= 3);
    w.hosts.get_mut("edge-2").unwrap().peer_disk = "UpToDate";
    w.run_to_end();
    assert_eq!(w.state(), S::RolledBack);
    assert_eq!(w.node_state("edge-1"), S::RolledBack);
}
