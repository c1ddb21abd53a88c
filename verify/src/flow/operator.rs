//! The operator-driven storage upgrade and migration: the operator decides each turn with the
//! product's own functions — [`nodewright_parity::upgrade::decide`] and
//! [`nodewright_parity::upgrade::status::after`] for the StorageUpgrade,
//! [`nodewright_parity::migration::decide`], [`nodewright_parity::migration::enter`] and the
//! controller's [`gate_step`] for the Migration — from what its informers show, and applies the
//! writes in the controllers' order, each as the writer makes it: NodeTasks created under their
//! idempotency keys, the storage gate taken by the create of its Lease and given back by a delete
//! guarded by the resourceVersion it read, Nodes, the cluster-state ConfigMap and the statuses
//! replaced with resourceVersion preconditions. A write that fails stops the rest of its turn.
//!
//! The node agents run the NodeTasks against the shared [`Site`], at any later point (delayed
//! completion), and may fail a bounded number of them. The operator may crash between two writes
//! of a turn (a bounded number of times) and restarts with fresh informers; with stale reads on,
//! each informer kind lags the API server independently until it syncs.
//!
//! Time stands still except while the upgrade waits in WAIT_RESYNC with its last DRBD read done
//! and saying "not yet": then, once DRBD has nothing left to resync, the clock advances by one
//! poll interval ([`nodewright_parity::upgrade::RESYNC_POLL`]) and the decision asks for the next
//! read. A resync thus ends within one poll interval; longer ones only repeat the same "not yet"
//! read. No deadline is reached within the bounds (they are 60 polls away): the model checks the
//! protocol, not its timeouts.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use nodewright_api::WorkflowOwner;
use nodewright_api::common::ClusterRef;
use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};
use nodewright_api::nodetask::{NodeTaskPhase, StepName};
use nodewright_api::storageupgrade::{StorageUpgradeSpec, StorageUpgradeStatus, UpgradeState as State};
use nodewright_parity::controllers::migration::{GateStep, gate_step};
use nodewright_parity::controllers::{GATE_LEASE, Gate};
use nodewright_parity::migration as mig;
use nodewright_parity::upgrade as up;
use serde::Serialize;
use stateright::{Model, Property};

use super::site::{Effect, FROM, Site, TO, node_index, node_name, resource_name};
use crate::store::{Key, Rv, Snapshot, Store, StoreError};
use crate::trace::Explain;

/// Frozen time: every decision's `now`.
pub const NOW: i64 = 1_790_000_000;
/// The StorageUpgrade's name and uid.
pub const UPGRADE: &str = "up";
const UPGRADE_UID: &str = "5a7e0000-0000-4000-8000-000000000000";
/// The Migration's name and uid.
pub const MIGRATION: &str = "mig";
const MIGRATION_UID: &str = "0a1b2c3d-0000-4000-8000-000000000000";
const GENERATION: Option<i64> = Some(1);

/// The kinds the operator's informers watch, each of which may lag on its own.
pub const KINDS: [&str; 6] = [
    "StorageUpgrade",
    "Migration",
    "Lease",
    "NodeTask",
    "Node",
    "ConfigMap",
];

/// A value hashed through its JSON form: the API types derive neither `Eq` nor `Hash`.
#[derive(Clone, Debug, PartialEq)]
pub struct Json<T>(pub T);

impl<T: PartialEq> Eq for Json<T> {}

impl<T: Serialize> Hash for Json<T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        serde_json::to_string(&self.0).unwrap_or_default().hash(h);
    }
}

/// Which workflow a turn or a task belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wf {
    /// The StorageUpgrade.
    Upgrade,
    /// The Migration.
    Migration,
}

impl fmt::Display for Wf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wf::Upgrade => "StorageUpgrade/up",
            Wf::Migration => "Migration/mig",
        })
    }
}

/// A NodeTask: its spec and what its agent reported.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Task {
    /// The workflow that created it (its label).
    pub wf: Wf,
    /// `spec.nodeName`.
    pub node: String,
    /// `spec.step`.
    pub step: String,
    /// `spec.args`.
    pub args: Vec<String>,
    /// `status.phase`.
    pub phase: Option<NodeTaskPhase>,
    /// `status.output`.
    pub output: String,
    /// `status.message`.
    pub message: String,
}

/// The objects of the model's API server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Obj {
    /// The StorageUpgrade (its status; the spec is fixed).
    Upgrade(Json<StorageUpgradeStatus>),
    /// The Migration (its status; the spec is fixed).
    Migration(Json<MigrationStatus>),
    /// The storage gate Lease: its holder.
    Gate(String),
    /// A NodeTask.
    Task(Task),
    /// A Node: cordon, the upgrade taint, the role label.
    Node {
        /// `spec.unschedulable`.
        cordoned: bool,
        /// The upgrade taint.
        taint: bool,
        /// `vx-rail.io/role`.
        role: Option<String>,
    },
    /// The cluster-state ConfigMap: the legacy mirrors of both workflows.
    ClusterState {
        /// The `upgrade` key's state.
        upgrade: Option<State>,
        /// The `migration` key's phase.
        migration: Option<Phase>,
    },
}

/// One write of a turn, as the controllers plan it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Write {
    /// Create the gate Lease for this holder.
    AcquireGate(String),
    /// Delete the gate Lease, guarded by the version read.
    ReleaseGate(String, Rv),
    /// Create a NodeTask under its key.
    CreateTask(String, Task),
    /// Patch a Node, guarded by the version read.
    PatchNode {
        /// The Node.
        node: String,
        /// Cordon.
        cordon: Option<bool>,
        /// The upgrade taint.
        taint: Option<bool>,
        /// The role label.
        role: Option<String>,
        /// The precondition.
        rv: Rv,
    },
    /// Patch the cluster-state ConfigMap, guarded by the version read.
    PatchClusterState {
        /// The upgrade mirror, when written.
        upgrade: Option<State>,
        /// The migration mirror, when written.
        migration: Option<Phase>,
        /// The precondition.
        rv: Rv,
    },
    /// Replace the StorageUpgrade's status, guarded.
    UpgradeStatus(Json<StorageUpgradeStatus>, Rv),
    /// Replace the Migration's status, guarded.
    MigrationStatus(Json<MigrationStatus>, Rv),
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::AcquireGate(h) => write!(f, "create Lease {GATE_LEASE} holder {h}"),
            Write::ReleaseGate(h, rv) => write!(f, "delete Lease {GATE_LEASE} of {h} if at rv {rv}"),
            Write::CreateTask(k, t) => write!(
                f,
                "create NodeTask {k} ({} {} on {})",
                t.step,
                t.args.join(" "),
                t.node
            ),
            Write::PatchNode {
                node,
                cordon,
                taint,
                role,
                rv,
            } => write!(
                f,
                "patch Node {node} cordon={cordon:?} taint={taint:?} role={role:?} if at rv {rv}"
            ),
            Write::PatchClusterState {
                upgrade,
                migration,
                rv,
            } => write!(
                f,
                "patch the cluster state upgrade={} migration={} if at rv {rv}",
                upgrade.map_or("-".into(), |s| format!("{s:?}")),
                migration.map_or("-".into(), |p| format!("{p:?}"))
            ),
            Write::UpgradeStatus(s, rv) => write!(
                f,
                "replace the StorageUpgrade status: {} if at rv {rv}",
                upgrade_summary(&s.0)
            ),
            Write::MigrationStatus(s, rv) => write!(
                f,
                "replace the Migration status: phase {:?} if at rv {rv}",
                s.0.phase.unwrap_or(Phase::Pending)
            ),
        }
    }
}

fn upgrade_summary(s: &StorageUpgradeStatus) -> String {
    let nodes: Vec<String> = s
        .nodes
        .iter()
        .filter(|n| n.state != State::Pending)
        .map(|n| format!("{} {:?}", n.node, n.state))
        .collect();
    format!(
        "{:?}{}{}",
        s.state.unwrap_or(State::Pending),
        s.current_node
            .as_ref()
            .map(|n| format!(" on {n}"))
            .unwrap_or_default(),
        if nodes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", nodes.join(", "))
        }
    )
}

/// The operator model's size and what it lets happen.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorFlow {
    /// Nodes (2 or 3).
    pub nodes: usize,
    /// Resources, each replicated on every node.
    pub resources: usize,
    /// A StorageUpgrade is requested.
    pub upgrade: bool,
    /// A Migration is requested too (the gate is then checked).
    pub migration: bool,
    /// The operator's informers lag, each kind on its own.
    pub stale_reads: bool,
    /// How many times the operator may crash (between two writes of a turn).
    pub crashes: u8,
    /// How many node tasks may fail.
    pub failures: u8,
    /// A turn's writes are separate steps (other actors, and a crash, may come between two);
    /// otherwise a turn's writes land together, in order, stopping at the first refused. Crashes
    /// need split turns.
    pub split_turns: bool,
    migration_facts: mig::Facts,
}

/// The operator model's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OperatorState {
    /// The hosts' storage.
    pub site: Site,
    /// The API server.
    pub store: Store<Obj>,
    /// What the operator's informers show (used with stale reads).
    pub cache: BTreeMap<Key, Snapshot<Obj>>,
    /// The rest of each workflow's turn: writes planned and not yet made.
    pub pending: Vec<(Wf, Vec<Write>)>,
    /// Crashes so far.
    pub crashes: u8,
    /// Task failures so far.
    pub failures: u8,
    /// Poll intervals elapsed: `now` is [`NOW`] plus this many [`up::RESYNC_POLL`].
    pub ticks: u16,
}

/// One step of the operator model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpAction {
    /// The operator decides a workflow's turn from what it reads.
    Decide(Wf),
    /// The operator makes the next write of a workflow's turn.
    Write(Wf),
    /// An informer of this kind catches up with the API server.
    Sync(&'static str),
    /// The operator crashes; it restarts with fresh informers and nothing planned.
    Crash,
    /// A node agent runs a task and reports its result.
    Run(String),
    /// A node agent reports a task failed (an injected failure; the host is unchanged).
    Fail(String),
    /// DRBD resyncs a replica (`resource`, `node`).
    Resync(usize, usize),
    /// The clock advances by one resync poll interval.
    Tick,
}

/// The property names.
pub const ONE_NODE: &str = "at most one node in a per-node upgrade state";
/// See [`ONE_NODE`].
pub const REPLICA_KEPT: &str = "every resource keeps an UpToDate replica";
/// See [`ONE_NODE`].
pub const GATE: &str = "never an upgrade and a migration both past their start";
/// See [`ONE_NODE`].
pub const ENDS: &str = "every requested workflow ends (completed, rolled back, or failed in its rollback)";
/// See [`ONE_NODE`].
pub const FAILED_ONLY_IN_ROLLBACK: &str = "an upgrade fails only when a rollback step failed";
/// See [`ONE_NODE`].
pub const REACHES_UPGRADE_COMPLETED: &str = "the upgrade can complete";
/// See [`ONE_NODE`].
pub const REACHES_UPGRADE_ROLLED_BACK: &str = "the upgrade can roll back";
/// See [`ONE_NODE`].
pub const REACHES_SECOND_NODE: &str = "the upgrade can reach the second node";
/// See [`ONE_NODE`].
pub const REACHES_MIGRATION_COMPLETED: &str = "the migration can complete";
/// See [`ONE_NODE`].
pub const REACHES_GATE_REFUSED: &str = "a gate create can be refused";

fn upgrade_key() -> Key {
    Key::new("StorageUpgrade", UPGRADE)
}
fn migration_key() -> Key {
    Key::new("Migration", MIGRATION)
}
fn gate_key() -> Key {
    Key::new("Lease", GATE_LEASE)
}
fn cluster_state_key() -> Key {
    Key::new("ConfigMap", "vx-rail-cluster-state")
}
fn node_key(n: &str) -> Key {
    Key::new("Node", n)
}

fn upgrade_spec() -> StorageUpgradeSpec {
    StorageUpgradeSpec {
        owner: WorkflowOwner::Operator,
        cluster_ref: ClusterRef { name: "site".into() },
        from_version: FROM.into(),
        to_version: TO.into(),
        node_order: Vec::new(),
        rollback: false,
    }
}

impl OperatorFlow {
    /// A model of `nodes` nodes and `resources` resources with a StorageUpgrade requested, fresh
    /// reads, no crash and no failure; the other settings are public fields.
    pub fn new(nodes: usize, resources: usize) -> OperatorFlow {
        OperatorFlow {
            nodes,
            resources,
            upgrade: true,
            migration: false,
            stale_reads: false,
            crashes: 0,
            failures: 0,
            split_turns: false,
            migration_facts: migration_facts(nodes, resources),
        }
    }

    fn migration_spec(&self) -> MigrationSpec {
        MigrationSpec {
            owner: WorkflowOwner::Operator,
            cluster_ref: ClusterRef { name: "site".into() },
            source_node: node_name(0),
            joining_nodes: (1..self.nodes).map(node_name).collect(),
            replicas: i32::try_from(self.nodes).ok(),
            rollback: false,
        }
    }

    /// What the operator reads of `key`: its informer's copy with stale reads, else the server's.
    fn read(&self, s: &OperatorState, key: &Key) -> Option<Snapshot<Obj>> {
        if self.stale_reads {
            s.cache.get(key).cloned()
        } else {
            s.store.get(key)
        }
    }

    fn list(&self, s: &OperatorState, kind: &str) -> Vec<(Key, Snapshot<Obj>)> {
        if self.stale_reads {
            s.cache
                .iter()
                .filter(|(k, _)| k.kind == kind)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            s.store.list(kind).map(|(k, v)| (k.clone(), v.clone())).collect()
        }
    }

    fn gate(&self, s: &OperatorState) -> Option<Gate> {
        self.read(s, &gate_key()).and_then(|g| match g.value {
            Obj::Gate(holder) => Some(Gate {
                holder,
                resource_version: g.rv.to_string(),
            }),
            _ => None,
        })
    }

    fn nodes_read(&self, s: &OperatorState) -> BTreeMap<String, (bool, bool, Option<String>, Rv)> {
        self.list(s, "Node")
            .into_iter()
            .filter_map(|(k, v)| match v.value {
                Obj::Node {
                    cordoned,
                    taint,
                    role,
                } => Some((k.name.to_string(), (cordoned, taint, role, v.rv))),
                _ => None,
            })
            .collect()
    }

    fn cluster_state(&self, s: &OperatorState) -> (Option<State>, Option<Phase>, Rv) {
        match self.read(s, &cluster_state_key()) {
            Some(Snapshot {
                value: Obj::ClusterState { upgrade, migration },
                rv,
            }) => (upgrade, migration, rv),
            _ => (None, None, 0),
        }
    }

    fn tasks(&self, s: &OperatorState, wf: Wf) -> Vec<(String, Task)> {
        self.list(s, "NodeTask")
            .into_iter()
            .filter_map(|(k, v)| match v.value {
                Obj::Task(t) if t.wf == wf => Some((k.name.to_string(), t)),
                _ => None,
            })
            .collect()
    }

    /// The StorageUpgrade controller's turn (`parity/src/controllers/upgrade.rs`, `plan_one`):
    /// `upgrade::decide`, its actions as writes, the legacy mirror, the status last.
    pub fn plan_upgrade(&self, s: &OperatorState) -> Vec<Write> {
        let Some(Snapshot {
            value: Obj::Upgrade(Json(before)),
            rv,
        }) = self.read(s, &upgrade_key())
        else {
            return Vec::new();
        };
        let nodes = self.nodes_read(s);
        let (_, mirrored_migration, cs_rv) = self.cluster_state(s);
        let gate = self.gate(s);
        let facts = up::Facts {
            now: now(s),
            state_timeout: 1800,
            rollback_timeout: 1800,
            nodes: nodes
                .iter()
                .map(|(n, (cordoned, taint, _, _))| {
                    (
                        n.clone(),
                        up::NodeFacts {
                            exists: true,
                            ready: true,
                            cordoned: *cordoned,
                            upgrade_taint: *taint,
                            boot_id: Some(format!("{n}-boot-1")),
                            installed: None,
                        },
                    )
                })
                .collect(),
            members: (0..self.nodes).map(node_name).collect(),
            // observed::upgrade_facts: the `migration` key not terminal, whoever wrote it.
            legacy_migration: mirrored_migration.is_some_and(|p| !phase_terminal(p)),
            legacy_upgrade: None,
            gate: gate.as_ref().map(|g| g.holder.clone()),
        };
        let tasks: BTreeMap<String, up::TaskResult> = self
            .tasks(s, Wf::Upgrade)
            .into_iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    up::TaskResult {
                        request: up::TaskRequest {
                            key: k,
                            node: t.node,
                            step: t.step,
                            args: t.args,
                        },
                        phase: t.phase,
                        output: Some(t.output),
                        message: Some(t.message),
                    },
                )
            })
            .collect();
        let spec = upgrade_spec();
        let d = up::decide(UPGRADE, &spec, UPGRADE_UID, &before, &facts, &tasks, &[]);
        let holder = up::gate_holder(UPGRADE);
        let mut writes = Vec::new();
        for action in &d.actions {
            match action {
                up::Action::Task(t) => writes.push(Write::CreateTask(
                    t.key.clone(),
                    Task {
                        wf: Wf::Upgrade,
                        node: t.node.clone(),
                        step: t.step.clone(),
                        args: t.args.clone(),
                        phase: None,
                        output: String::new(),
                        message: String::new(),
                    },
                )),
                up::Action::Node { node, cordon, taint } => {
                    // node_patch: nothing when it would change nothing.
                    if cordon.is_some() || taint.is_some() {
                        writes.push(Write::PatchNode {
                            node: node.clone(),
                            cordon: *cordon,
                            taint: *taint,
                            role: None,
                            rv: nodes.get(node).map_or(0, |n| n.3),
                        });
                    }
                }
                // No pods in the model: nothing to evict.
                up::Action::Evict { .. } => {}
                up::Action::AcquireGate => writes.push(Write::AcquireGate(holder.clone())),
                up::Action::ReleaseGate => {
                    if let Some(g) = gate.as_ref().filter(|g| g.holder == holder) {
                        writes.push(Write::ReleaseGate(
                            holder.clone(),
                            g.resource_version.parse().unwrap_or_default(),
                        ));
                    }
                }
            }
        }
        // plan_one's order: the status's, else the spec's once the upgrade moves.
        let order = if before.order.is_empty() {
            up::order(&spec, &facts)
        } else {
            before.order.clone()
        };
        let order = if matches!(d.outcome, up::Outcome::Move(_)) || !before.order.is_empty() {
            order
        } else {
            Vec::new()
        };
        let status = up::status::after(&before, &d, &order, &facts, &tasks, GENERATION);
        if matches!(d.outcome, up::Outcome::Move(_)) {
            writes.push(Write::PatchClusterState {
                upgrade: status.state,
                migration: None,
                rv: cs_rv,
            });
        }
        if status != before {
            writes.push(Write::UpgradeStatus(Json(status), rv));
        }
        writes
    }

    /// The Migration controller's turn (`parity/src/controllers/migration.rs`, `plan` and
    /// `plan_one`): a gate left behind by a migration that is over is given back; otherwise
    /// `migration::decide`, the gate taken first when the decision acts or enters a phase other
    /// than its end (`gate_step`), the actions, the legacy mirror, the status, and the gate given
    /// back once the end is written. The Progressing condition's waiting reason is not written
    /// (no decision reads it).
    pub fn plan_migration(&self, s: &OperatorState) -> Vec<Write> {
        let Some(Snapshot {
            value: Obj::Migration(Json(before)),
            rv,
        }) = self.read(s, &migration_key())
        else {
            return Vec::new();
        };
        let gate = self.gate(s);
        let holder = nodewright_parity::controllers::migration::gate_holder(MIGRATION);
        if mig::is_over(&before) {
            // release_left_behind.
            return gate
                .filter(|g| g.holder == holder)
                .map(|g| Write::ReleaseGate(holder.clone(), g.resource_version.parse().unwrap_or_default()))
                .into_iter()
                .collect();
        }
        let nodes = self.nodes_read(s);
        let (_, _, cs_rv) = self.cluster_state(s);
        let mut facts = self.migration_facts.clone();
        facts.now = now(s);
        for (n, f) in &mut facts.nodes {
            f.role_label = nodes.get(n).and_then(|x| x.2.clone());
            // The nodes keep reporting.
            f.reported_at = Some(facts.now);
        }
        let tasks: BTreeMap<String, mig::TaskResult> = self
            .tasks(s, Wf::Migration)
            .into_iter()
            .filter_map(|(k, t)| {
                let step: StepName = t.step.parse().ok()?;
                Some((
                    k.clone(),
                    mig::TaskResult {
                        request: mig::TaskRequest {
                            key: k,
                            node: t.node,
                            step,
                            args: t.args,
                        },
                        phase: t.phase,
                        output: Some(t.output),
                        message: Some(t.message),
                    },
                ))
            })
            .collect();
        let spec = self.migration_spec();
        let d = mig::decide(&spec, MIGRATION_UID, &before, &facts, &tasks);
        let held = gate.as_ref().filter(|g| g.holder == holder);
        let ends = matches!(
            d.outcome,
            mig::Outcome::Enter(Phase::Completed | Phase::RolledBack | Phase::Failed, _)
        );
        let acts = !d.actions.is_empty() || (matches!(d.outcome, mig::Outcome::Enter(..)) && !ends);
        let mut writes = Vec::new();
        if acts && held.is_none() {
            match gate_step(gate.as_ref(), None) {
                GateStep::Acquire => writes.push(Write::AcquireGate(holder.clone())),
                GateStep::Wait(_) => return Vec::new(),
            }
        }
        let mut site_at: Option<usize> = None;
        for action in &d.actions {
            match action {
                mig::Action::Task(t) => writes.push(Write::CreateTask(
                    t.key.clone(),
                    Task {
                        wf: Wf::Migration,
                        node: t.node.clone(),
                        step: t.step.as_str().to_owned(),
                        args: t.args.clone(),
                        phase: None,
                        output: String::new(),
                        message: String::new(),
                    },
                )),
                mig::Action::RoleLabel { node, role } => writes.push(Write::PatchNode {
                    node: node.clone(),
                    cordon: None,
                    taint: None,
                    role: Some(role.clone()),
                    rv: nodes.get(node).map_or(0, |n| n.3),
                }),
                mig::Action::ClusterState { .. } => {
                    site_at.get_or_insert(writes.len());
                }
            }
        }
        let mut status = before.clone();
        let mut mirror = None;
        if let mig::Outcome::Enter(phase, message) = &d.outcome {
            mig::enter(&mut status, *phase, message.clone(), now(s), GENERATION);
            if mig::legacy_blob(&spec, &status).is_ok() {
                mirror = Some(*phase);
                site_at.get_or_insert(writes.len());
            }
        }
        if let Some(at) = site_at {
            writes.insert(
                at.min(writes.len()),
                Write::PatchClusterState {
                    upgrade: None,
                    migration: mirror,
                    rv: cs_rv,
                },
            );
        }
        if status != before {
            writes.push(Write::MigrationStatus(Json(status), rv));
        }
        if ends && let Some(g) = held {
            writes.push(Write::ReleaseGate(
                holder,
                g.resource_version.parse().unwrap_or_default(),
            ));
        }
        writes
    }

    fn plan(&self, s: &OperatorState, wf: Wf) -> Vec<Write> {
        match wf {
            Wf::Upgrade => self.plan_upgrade(s),
            Wf::Migration => self.plan_migration(s),
        }
    }

    /// Makes one write as the writer does (`parity/src/writer.rs`): `Err` stops the turn.
    fn write(&self, s: &mut OperatorState, w: &Write) -> Result<&'static str, String> {
        let store = &mut s.store;
        match w {
            Write::AcquireGate(holder) => match store.create(gate_key(), Obj::Gate(holder.clone())) {
                Ok(_) => Ok("created"),
                Err(StoreError::AlreadyExists) => match store.value(&gate_key()) {
                    Some(Obj::Gate(h)) if h == holder => Ok("already held by it"),
                    Some(Obj::Gate(h)) => Err(format!("refused: the storage gate is held by {h}")),
                    _ => Err("refused".into()),
                },
                Err(e) => Err(e.to_string()),
            },
            Write::ReleaseGate(_, rv) => match store.delete(&gate_key(), Some(*rv)) {
                Ok(()) => Ok("deleted"),
                Err(StoreError::NotFound) => Ok("already gone"),
                Err(e) => Err(e.to_string()),
            },
            Write::CreateTask(key, t) => {
                match store.create(Key::new("NodeTask", key.clone()), Obj::Task(t.clone())) {
                    Ok(_) => Ok("created"),
                    Err(StoreError::AlreadyExists) => Ok("already exists"),
                    Err(e) => Err(e.to_string()),
                }
            }
            Write::PatchNode {
                node,
                cordon,
                taint,
                role,
                rv,
            } => {
                let key = node_key(node);
                let Some(Obj::Node {
                    cordoned: c,
                    taint: t,
                    role: r,
                }) = store.value(&key).cloned()
                else {
                    return Err("not found".into());
                };
                let value = Obj::Node {
                    cordoned: cordon.unwrap_or(c),
                    taint: taint.unwrap_or(t),
                    role: role.clone().or(r),
                };
                store
                    .update(&key, value, Some(*rv))
                    .map(|_| "patched")
                    .map_err(|e| e.to_string())
            }
            Write::PatchClusterState {
                upgrade,
                migration,
                rv,
            } => {
                let key = cluster_state_key();
                let Some(Obj::ClusterState {
                    upgrade: u,
                    migration: m,
                }) = store.value(&key).cloned()
                else {
                    return Err("not found".into());
                };
                let value = Obj::ClusterState {
                    upgrade: upgrade.or(u),
                    migration: migration.or(m),
                };
                store
                    .update(&key, value, Some(*rv))
                    .map(|_| "patched")
                    .map_err(|e| e.to_string())
            }
            Write::UpgradeStatus(status, rv) => store
                .update(&upgrade_key(), Obj::Upgrade(status.clone()), Some(*rv))
                .map(|_| "replaced")
                .map_err(|e| e.to_string()),
            Write::MigrationStatus(status, rv) => store
                .update(&migration_key(), Obj::Migration(status.clone()), Some(*rv))
                .map(|_| "replaced")
                .map_err(|e| e.to_string()),
        }
    }

    /// A node agent runs `t` on its host (the step catalogue's effects on the [`Site`]).
    fn execute(site: &mut Site, nodes: usize, t: &Task) -> Effect {
        let Some(n) = node_index(&t.node, nodes) else {
            return Effect::Failed(format!("no node {}", t.node));
        };
        let arg = t.args.first().map(String::as_str).unwrap_or_default();
        let ok = || Effect::Ok(String::new());
        match t.step.as_str() {
            "drbd-version" => Effect::Ok(site.versions(n)),
            "service-status" => Effect::Ok(
                if site.hosts[n].satellite {
                    "active"
                } else {
                    "inactive"
                }
                .into(),
            ),
            "drbd-status" => Effect::Ok(site.drbd_status(n)),
            "package-refresh" => ok(),
            "storage-backup" => Effect::Ok(format!("/var/lib/nodewright/backup/{arg}")),
            "service-stop" => {
                site.hosts[n].satellite = false;
                ok()
            }
            "service-start" => {
                site.hosts[n].satellite = true;
                ok()
            }
            "drbd-down" => site.down(n),
            "drbd-adjust" => site.adjust(n),
            "drbd-demote" => {
                if let Some(r) = (0..site.disks.len()).find(|r| resource_name(*r) == arg) {
                    site.demote(n, r);
                }
                ok()
            }
            "module-unload" => {
                if site.hosts[n].up {
                    Effect::Failed(format!("module {arg} is in use"))
                } else if arg == "drbd" {
                    site.unload(n)
                } else {
                    ok()
                }
            }
            "module-load" => {
                if arg == "drbd" {
                    site.load(n);
                    ok()
                } else if site.hosts[n].kernel.is_none() {
                    Effect::Failed(format!("{arg}: unknown symbols (drbd not loaded)"))
                } else {
                    ok()
                }
            }
            "package-install" => site.install(n, t.args.get(1).map(String::as_str).unwrap_or_default()),
            "linstor-storage-pool-list" => Effect::Ok(storage_pool_list()),
            "linstor-resource-list" => Effect::Ok(resource_list(site)),
            "linstor-node-create"
            | "storage-pool-create"
            | "resource-create"
            | "resource-delete"
            | "linstor-node-delete" => ok(),
            other => Effect::Failed(format!("step {other} is not modelled")),
        }
    }

    /// Applies `action`: the next state and what happened, for the trace.
    pub fn apply(&self, state: &OperatorState, action: &OpAction) -> Option<(OperatorState, String)> {
        let mut s = state.clone();
        match action {
            OpAction::Decide(wf) => {
                if s.pending.iter().any(|(w, _)| w == wf) {
                    return None;
                }
                let writes = self.plan(&s, *wf);
                if writes.is_empty() {
                    return None;
                }
                let what = format!(
                    "operator: decides {wf} from what it reads: {}",
                    writes
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                if self.split_turns || self.crashes > 0 {
                    s.pending.push((*wf, writes));
                    s.pending.sort_by_key(|(w, _)| *w);
                    return Some((s, what));
                }
                let mut lines = vec![what];
                for w in writes {
                    match self.write(&mut s, &w) {
                        Ok(how) => lines.push(format!("     {w}: {how}")),
                        Err(why) => {
                            lines.push(format!("     {w}: {why}; the rest of the turn is dropped"));
                            break;
                        }
                    }
                }
                Some((s, lines.join("\n")))
            }
            OpAction::Write(wf) => {
                let i = s.pending.iter().position(|(w, _)| w == wf)?;
                let w = s.pending[i].1.remove(0);
                let result = self.write(&mut s, &w);
                let what = match &result {
                    Ok(how) => format!("operator: {w}: {how}"),
                    Err(why) => format!("operator: {w}: {why}; the rest of the turn is dropped"),
                };
                if result.is_err() || s.pending[i].1.is_empty() {
                    s.pending.remove(i);
                }
                Some((s, what))
            }
            OpAction::Sync(kind) => {
                if !self.stale_reads || !self.stale(&s, kind) {
                    return None;
                }
                s.cache.retain(|k, _| k.kind != *kind);
                for (k, v) in s.store.list(kind) {
                    s.cache.insert(k.clone(), v.clone());
                }
                Some((s, format!("operator: its {kind} informer catches up")))
            }
            OpAction::Crash => {
                if s.crashes >= self.crashes || s.pending.is_empty() {
                    return None;
                }
                s.crashes += 1;
                s.pending.clear();
                s.cache = self.fresh_cache(&s.store);
                Some((
                    s,
                    "operator: crashes mid-turn and restarts (informers re-listed)".into(),
                ))
            }
            OpAction::Run(key) => {
                let k = Key::new("NodeTask", key.clone());
                let Some(Obj::Task(mut t)) = s.store.value(&k).cloned() else {
                    return None;
                };
                if t.phase.is_some() {
                    return None;
                }
                let what;
                match Self::execute(&mut s.site, self.nodes, &t) {
                    Effect::Ok(out) => {
                        t.phase = Some(NodeTaskPhase::Succeeded);
                        t.output = out;
                        t.message = "done".into();
                        what = format!(
                            "agent {}: runs {} {}: succeeded",
                            t.node,
                            t.step,
                            t.args.join(" ")
                        );
                    }
                    Effect::Failed(why) => {
                        what = format!(
                            "agent {}: runs {} {}: failed: {why}",
                            t.node,
                            t.step,
                            t.args.join(" ")
                        );
                        t.phase = Some(NodeTaskPhase::Failed);
                        t.message = why;
                    }
                }
                s.store.update(&k, Obj::Task(t), None).ok()?;
                Some((s, what))
            }
            OpAction::Fail(key) => {
                if s.failures >= self.failures {
                    return None;
                }
                let k = Key::new("NodeTask", key.clone());
                let Some(Obj::Task(mut t)) = s.store.value(&k).cloned() else {
                    return None;
                };
                if t.phase.is_some() {
                    return None;
                }
                s.failures += 1;
                let what = format!(
                    "agent {}: {} {} fails (injected; the host unchanged)",
                    t.node,
                    t.step,
                    t.args.join(" ")
                );
                t.phase = Some(NodeTaskPhase::Failed);
                t.message = "injected failure".into();
                s.store.update(&k, Obj::Task(t), None).ok()?;
                Some((s, what))
            }
            OpAction::Tick => {
                if !self.waits_for_time(&s) {
                    return None;
                }
                s.ticks += 1;
                Some((
                    s,
                    format!("clock: {}s pass; the next DRBD read is due", up::RESYNC_POLL),
                ))
            }
            OpAction::Resync(r, n) => {
                if !s.site.resyncable().contains(&(*r, *n)) {
                    return None;
                }
                s.site.resync(*r, *n);
                Some((
                    s,
                    format!(
                        "drbd: {} on {} resynced, UpToDate",
                        resource_name(*r),
                        node_name(*n)
                    ),
                ))
            }
        }
    }

    /// The upgrade waits for the clock in WAIT_RESYNC (or in a rollback, for a node's resync):
    /// nothing of its turn pending, every task done, nothing to decide but its status (the last
    /// DRBD read said "not yet").
    fn waits_for_time(&self, s: &OperatorState) -> bool {
        let Some(st) = Self::upgrade_status(s) else {
            return false;
        };
        let cap = u16::try_from(2 * self.nodes).unwrap_or(u16::MAX);
        matches!(st.state, Some(State::WaitResync | State::RollingBack))
            && s.ticks < cap
            && s.site.resyncable().is_empty()
            && !s.pending.iter().any(|(w, _)| *w == Wf::Upgrade)
            && s.store.list("NodeTask").all(|(_, v)| match &v.value {
                Obj::Task(t) => t.phase.is_some(),
                _ => true,
            })
            && self
                .plan_upgrade(s)
                .iter()
                .all(|w| matches!(w, Write::UpgradeStatus(..)))
    }

    fn stale(&self, s: &OperatorState, kind: &str) -> bool {
        let cached = s.cache.iter().filter(|(k, _)| k.kind == kind);
        !cached.eq(s.store.list(kind))
    }

    fn fresh_cache(&self, store: &Store<Obj>) -> BTreeMap<Key, Snapshot<Obj>> {
        if !self.stale_reads {
            return BTreeMap::new();
        }
        KINDS
            .iter()
            .flat_map(|kind| store.list(kind).map(|(k, v)| (k.clone(), v.clone())))
            .collect()
    }

    /// The StorageUpgrade's status in the API server.
    pub fn upgrade_status(s: &OperatorState) -> Option<&StorageUpgradeStatus> {
        match s.store.value(&upgrade_key()) {
            Some(Obj::Upgrade(Json(st))) => Some(st),
            _ => None,
        }
    }

    /// The Migration's status in the API server.
    pub fn migration_status(s: &OperatorState) -> Option<&MigrationStatus> {
        match s.store.value(&migration_key()) {
            Some(Obj::Migration(Json(st))) => Some(st),
            _ => None,
        }
    }

    /// The nodes the StorageUpgrade's status has in a per-node state or rolling back.
    pub fn upgrading(s: &OperatorState) -> Vec<String> {
        Self::upgrade_status(s).map_or_else(Vec::new, |st| {
            st.nodes
                .iter()
                .filter(|n| n.state.is_per_node() || n.state == State::RollingBack)
                .map(|n| n.node.clone())
                .collect()
        })
    }

    fn upgrade_under_way(s: &OperatorState) -> bool {
        Self::upgrade_status(s)
            .and_then(|st| st.state)
            .is_some_and(|st| st != State::Pending && !st.is_terminal())
    }

    fn migration_under_way(s: &OperatorState) -> bool {
        Self::migration_status(s)
            .and_then(|st| st.phase)
            .is_some_and(|p| p != Phase::Pending && !phase_terminal(p))
    }

    fn ended(&self, s: &OperatorState) -> bool {
        let up_done = !self.upgrade
            || Self::upgrade_status(s)
                .and_then(|st| st.state)
                .is_some_and(State::is_terminal);
        let mig_done = !self.migration
            || Self::migration_status(s)
                .and_then(|st| st.phase)
                .is_some_and(phase_terminal);
        up_done && mig_done
    }
}

/// The model's clock.
pub fn now(s: &OperatorState) -> i64 {
    NOW + i64::from(s.ticks) * up::RESYNC_POLL
}

fn phase_terminal(p: Phase) -> bool {
    matches!(p, Phase::Completed | Phase::RolledBack | Phase::Failed)
}

/// The site facts a migration reads, as the nodes' reports would show them: every joining node
/// a member with a fresh report and its storage VLAN up, its satellite Online.
fn migration_facts(nodes: usize, resources: usize) -> mig::Facts {
    use nodewright_parsers::{parse_cluster_blob, parse_members, parse_network_plan};
    let mut members = String::from("node,storage_ip,role,joined");
    for n in 0..nodes {
        let role = if n == 0 { "primary" } else { "joining" };
        members.push_str(&format!("\n{},10.100.0.{}/24,{role},100", node_name(n), 11 + n));
    }
    let _ = resources;
    mig::Facts {
        now: NOW,
        stale_after: 300,
        timeout: mig::DEFAULT_TIMEOUT,
        cluster: parse_cluster_blob("primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=100;schema=4")
            .ok(),
        members: parse_members(&members).unwrap_or_default(),
        plan: parse_network_plan(
            r#"{"version":1,"bond":{"name":"bond0","mode":"active-backup","miimon":100,"slaves":["eno1","eno2"]},"storageVlan":{"id":100,"prefixLength":24},"mgmtVlan":{"id":200},"nodes":[]}"#,
        )
        .ok(),
        linstor_nodes: (1..nodes).map(|n| (node_name(n), "Online".to_owned())).collect(),
        nodes: (0..nodes)
            .map(|n| {
                (
                    node_name(n),
                    mig::NodeFacts {
                        exists: true,
                        role_label: None,
                        reported_at: Some(NOW),
                        net_ok: true,
                        storage_vlan: Some("bond0.100:up".into()),
                        local_uptodate: true,
                        syncing: false,
                        peers: BTreeMap::new(),
                    },
                )
            })
            .collect(),
    }
}

/// `linstor storage-pool list` on the source: its pool `pool0` on `vg0/thinpool`.
fn storage_pool_list() -> String {
    "\
+--------------------------------------------------------------------------------------------------+
| StoragePool | Node   | Driver   | PoolName     | FreeCapacity | TotalCapacity | CanSnapshots | State |
|==================================================================================================|
| pool0       | edge-1 | LVM_THIN | vg0/thinpool | 10 GiB       | 20 GiB        | True         | Ok    |
+--------------------------------------------------------------------------------------------------+
"
    .to_owned()
}

/// `linstor resource list`: every resource's replica on every node.
fn resource_list(site: &Site) -> String {
    let mut s = String::from(
        "+-------------------------------------------------------------------+\n\
         | ResourceName | Node   | Port | Usage  | Conns | State    | CreatedOn |\n\
         |===================================================================|\n",
    );
    for r in 0..site.disks.len() {
        for n in 0..site.hosts.len() {
            s.push_str(&format!(
                "| {} | {} | {} | Unused | Ok | {} | |\n",
                resource_name(r),
                node_name(n),
                7000 + r,
                site.disks[r][n]
            ));
        }
    }
    s.push_str("+-------------------------------------------------------------------+\n");
    s
}

impl Model for OperatorFlow {
    type State = OperatorState;
    type Action = OpAction;

    fn init_states(&self) -> Vec<OperatorState> {
        let mut store = Store::new();
        let mut put = |k: Key, v: Obj| {
            let _ = store.create(k, v);
        };
        if self.upgrade {
            put(upgrade_key(), Obj::Upgrade(Json(StorageUpgradeStatus::default())));
        }
        if self.migration {
            put(migration_key(), Obj::Migration(Json(MigrationStatus::default())));
        }
        for n in 0..self.nodes {
            put(
                node_key(&node_name(n)),
                Obj::Node {
                    cordoned: false,
                    taint: false,
                    role: None,
                },
            );
        }
        put(
            cluster_state_key(),
            Obj::ClusterState {
                upgrade: None,
                migration: None,
            },
        );
        let cache = self.fresh_cache(&store);
        vec![OperatorState {
            site: Site::new(self.nodes, self.resources),
            store,
            cache,
            pending: Vec::new(),
            crashes: 0,
            failures: 0,
            ticks: 0,
        }]
    }

    fn actions(&self, s: &OperatorState, actions: &mut Vec<OpAction>) {
        for wf in [Wf::Upgrade, Wf::Migration] {
            let on = match wf {
                Wf::Upgrade => self.upgrade,
                Wf::Migration => self.migration,
            };
            if !on {
                continue;
            }
            if s.pending.iter().any(|(w, _)| *w == wf) {
                actions.push(OpAction::Write(wf));
            } else {
                actions.push(OpAction::Decide(wf));
            }
        }
        if self.stale_reads {
            for kind in KINDS {
                actions.push(OpAction::Sync(kind));
            }
        }
        actions.push(OpAction::Crash);
        for (k, v) in s.store.list("NodeTask") {
            if let Obj::Task(t) = &v.value
                && t.phase.is_none()
            {
                actions.push(OpAction::Run(k.name.to_string()));
                actions.push(OpAction::Fail(k.name.to_string()));
            }
        }
        for (r, n) in s.site.resyncable() {
            actions.push(OpAction::Resync(r, n));
        }
        actions.push(OpAction::Tick);
    }

    fn next_state(&self, s: &OperatorState, action: OpAction) -> Option<OperatorState> {
        self.apply(s, &action).map(|(next, _)| next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut p = vec![
            Property::always(ONE_NODE, |_, s: &OperatorState| {
                OperatorFlow::upgrading(s).len() <= 1
            }),
            Property::always(REPLICA_KEPT, |_, s: &OperatorState| s.site.lost().is_empty()),
            Property::always(GATE, |_, s: &OperatorState| {
                !(OperatorFlow::upgrade_under_way(s) && OperatorFlow::migration_under_way(s))
            }),
            Property::always(FAILED_ONLY_IN_ROLLBACK, |_, s: &OperatorState| {
                OperatorFlow::upgrade_status(s).is_none_or(|st| {
                    st.state != Some(State::Failed)
                        || st
                            .message
                            .as_deref()
                            .is_some_and(|m| m.starts_with("rollback failed"))
                })
            }),
            Property::eventually(ENDS, |m: &OperatorFlow, s: &OperatorState| m.ended(s)),
        ];
        if self.upgrade {
            p.push(Property::sometimes(
                REACHES_UPGRADE_COMPLETED,
                |_, s: &OperatorState| {
                    OperatorFlow::upgrade_status(s).is_some_and(|st| st.state == Some(State::Completed))
                },
            ));
            p.push(Property::sometimes(
                REACHES_SECOND_NODE,
                |_, s: &OperatorState| {
                    OperatorFlow::upgrade_status(s).is_some_and(|st| {
                        st.state.is_some_and(State::is_per_node)
                            && st.current_node.as_deref() == Some("edge-2")
                    })
                },
            ));
            if self.failures > 0 {
                p.push(Property::sometimes(
                    REACHES_UPGRADE_ROLLED_BACK,
                    |_, s: &OperatorState| {
                        OperatorFlow::upgrade_status(s).is_some_and(|st| st.state == Some(State::RolledBack))
                    },
                ));
            }
        }
        if self.migration {
            p.push(Property::sometimes(
                REACHES_MIGRATION_COMPLETED,
                |_, s: &OperatorState| {
                    OperatorFlow::migration_status(s).is_some_and(|st| st.phase == Some(Phase::Completed))
                },
            ));
        }
        p
    }
}

impl Explain for OperatorFlow {
    fn describe(&self, before: &OperatorState, action: &OpAction, _after: &OperatorState) -> String {
        self.apply(before, action)
            .map_or_else(|| format!("{action:?} (not enabled)"), |(_, what)| what)
    }

    fn focus(&self, _property: &str, s: &OperatorState) -> String {
        let mut out = Vec::new();
        if let Some(st) = Self::upgrade_status(s) {
            out.push(format!("StorageUpgrade: {}", upgrade_summary(st)));
        }
        if let Some(st) = Self::migration_status(s) {
            out.push(format!("Migration: {:?}", st.phase.unwrap_or(Phase::Pending)));
        }
        out.push(format!(
            "storage gate: {}",
            match s.store.value(&gate_key()) {
                Some(Obj::Gate(h)) => h.clone(),
                _ => "free".into(),
            }
        ));
        for n in 0..self.nodes {
            out.push(s.site.describe_node(n));
        }
        let lost = s.site.lost();
        if !lost.is_empty() {
            out.push(format!("no UpToDate replica left: {}", lost.join(", ")));
        }
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_canned_linstor_lists_parse() {
        let pools = nodewright_parsers::parse_linstor_storage_pool_list(&storage_pool_list()).unwrap();
        assert_eq!(pools[0].pool_name.as_deref(), Some("vg0/thinpool"));
        let site = Site::new(2, 2);
        let res = nodewright_parsers::parse_linstor_resource_list(&resource_list(&site)).unwrap();
        assert_eq!(res.len(), 4);
    }

    #[test]
    fn the_first_upgrade_turn_takes_the_gate_and_enters_preflight_on_edge_1() {
        let m = OperatorFlow::new(2, 1);
        let s = &m.init_states()[0];
        let writes = m.plan_upgrade(s);
        assert_eq!(writes[0], Write::AcquireGate("StorageUpgrade/up".into()));
        let Some(Write::UpgradeStatus(st, _)) = writes.last() else {
            panic!("{writes:?}")
        };
        assert_eq!(st.0.state, Some(State::Preflight));
        assert_eq!(st.0.current_node.as_deref(), Some("edge-1"));
    }
}
