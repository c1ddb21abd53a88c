//! The takeover and leadership model: each node's legacy script, two operator replicas competing for
//! the Lease, and the API server between them.
//!
//! One workflow (the migration) is handed from the scripts to the operator. The site starts with
//! the takeover at generation 1, the migration in `shadow` (every script acknowledged 1), and the
//! EdgeCluster asking for `operator`. The migration has [`STEPS`] steps; either decider takes one
//! by writing the legacy cluster-state ConfigMap (the script without a precondition, the operator
//! with the resourceVersion its decision read, as `parity::writer` patches it).
//!
//! Product functions called on every decision: `nodewright_kit::lease::decide` (and
//! `LeaseConfig::renew_deadline`) for the Lease, `nodewright_parity::takeover::plan` for the
//! projection, `nodewright_parity::takeover::may_act` for the fence — unless a seeded [`Bug`]
//! replaces the fence with one of the variants in [`super::bugs`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use nodewright_api::common::WorkflowMode;
use nodewright_api::edgecluster::WorkflowModes;
use nodewright_kit::lease::{self, LeaseConfig, Observed};
use nodewright_parity::run;
use nodewright_parity::takeover::{
    self, Holding, InFlight, NodeReady, ScriptFacts, ScriptPod, Takeover, Workflow,
};
use stateright::{Model, Property};
use tokio::time::Instant;

use super::Bug;
use super::bugs;
use crate::store::{Key, Rv, Snapshot, Store};
use crate::trace::Explain;

/// Seconds of cluster time per tick.
pub const TICK: i64 = 5;
/// The fence's NotReady grace period in the model (seconds): two ticks, where the product's default
/// is 300 s; only its comparison with the clocks matters, not its size.
pub const GRACE: i64 = 10;
/// The scripts' last reports before the model starts were this long ago (seconds): a loop period.
pub const LOOP: i64 = 5;
/// Steps of the migration instance; the takeover is refused while one is in flight.
pub const STEPS: u8 = 2;
/// The operator replicas' clock offsets from cluster time (seconds): `operator-a` runs 5 s ahead.
pub const REPLICA_SKEW: [i64; 2] = [5, 0];
/// The first node's clock is 10 s behind cluster time; the others' are right.
pub const SLOW_NODE_SKEW: i64 = -10;

const REPLICAS: [&str; 2] = ["operator-a", "operator-b"];
/// Seconds added to every clock reading before it becomes an `Instant`, so that negative skews
/// stay after the model's base instant.
const EPOCH: u64 = 1000;

/// The workflow the model hands over.
const WORKFLOW: Workflow = Workflow::Migration;

/// What the API server holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Obj {
    /// The takeover ConfigMap, reduced to the generation and the migration's mode.
    Takeover {
        /// `generation`.
        generation: u64,
        /// The migration's mode.
        mode: WorkflowMode,
    },
    /// A node ConfigMap's report: the acknowledged generation, and when (node clock).
    Report {
        /// `takeover-generation`.
        ack: Option<u64>,
        /// The report's time by the node's own clock (seconds).
        at: Option<i64>,
    },
    /// A Node's Ready condition.
    Node {
        /// NotReady since this cluster time (seconds), or Ready.
        not_ready_since: Option<i64>,
    },
    /// The node's legacy script pod (absent: gone).
    Pod {
        /// Whether it runs (else it is Pending: created, not started).
        running: bool,
    },
    /// The operator's leader Lease.
    Lease {
        /// The holder (replica index).
        holder: Option<u8>,
    },
    /// The legacy cluster-state ConfigMap, reduced to the migration's progress.
    ClusterState {
        /// Steps taken.
        progress: u8,
        /// Who took the last step.
        by: Decider,
    },
}

/// Who took a migration step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decider {
    /// Nobody yet.
    Nobody,
    /// The script on a node.
    Script(u8),
    /// An operator replica.
    Operator(u8),
}

/// A node's legacy script process (it exists while its pod runs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Script {
    /// The takeover it read this iteration (generation, migration mode), held until it reports.
    pub snapshot: Option<(u64, WorkflowMode)>,
    /// Whether it already took a step this iteration.
    pub acted: bool,
    /// Whether its pod was deleted once already (at most once per node: a bound).
    pub deleted: bool,
    /// Whether its node went NotReady once already (at most once per node: a bound).
    pub was_not_ready: bool,
}

/// A write of the operator's turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpWrite {
    /// Apply the takeover at `generation` (migration `operator`), guarded by `rv`.
    Takeover {
        /// The generation projected.
        generation: u64,
        /// The takeover ConfigMap's resourceVersion the decision read.
        rv: Rv,
    },
    /// Take migration step `progress + 1`, guarded by the cluster state's `rv`.
    Step {
        /// The progress the decision read.
        progress: u8,
        /// The cluster state's resourceVersion the decision read.
        rv: Rv,
    },
}

/// One operator replica: its Lease elector and its turn.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Replica {
    /// Whether its process runs.
    pub up: bool,
    /// The Lease record last read (its resourceVersion and holder) and since when (own clock, s).
    pub seen: Option<(Rv, Option<u8>, i64)>,
    /// When its last successful acquire or renew was sent (own clock, s).
    pub renewed_at: Option<i64>,
    /// The turn's writes not yet sent, in order.
    pub turn: Vec<OpWrite>,
    /// Whether it crashed once already (each replica crashes at most once: a bound).
    pub crashed: bool,
    /// A write that passed the leadership check and is on its way to the API server.
    pub sent: Option<OpWrite>,
}

/// What happened that the properties judge (history variables, not part of any actor).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ghost {
    /// An operator step landed.
    pub operator_stepped: bool,
    /// A script step landed.
    pub script_stepped: bool,
    /// A script stepped after an operator step landed: (node, the generation its snapshot held).
    pub double: Option<(u8, u64)>,
    /// A write landed from a replica that was not the Lease's holder: (replica, the holder).
    pub deposed: Option<(u8, Option<u8>, OpWrite)>,
    /// An operator step landed while some node had not acknowledged the takeover's generation.
    pub stepped_unacknowledged: bool,
    /// The Lease changed hands.
    pub handed_over: bool,
}

/// The whole model state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Cluster time, in ticks.
    pub now: u8,
    /// The API server.
    pub store: Store<Obj>,
    /// One script per node.
    pub scripts: Vec<Script>,
    /// The two operator replicas.
    pub replicas: [Replica; 2],
    /// History variables.
    pub ghost: Ghost,
}

/// A step of one actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Cluster time advances one tick.
    Tick,
    /// A script reads the takeover ConfigMap (its snapshot).
    ScriptRead(u8),
    /// A script takes a migration step, as its snapshot allows.
    ScriptStep(u8),
    /// A script writes its report: the generation it read, and the time by its node's clock.
    ScriptReport(u8),
    /// A script pod is deleted (graceful: its process ends first).
    PodDelete(u8),
    /// The DaemonSet creates the node's pod again (Pending).
    PodCreate(u8),
    /// A Pending pod starts (its node is Ready): a fresh script.
    PodStart(u8),
    /// A node goes NotReady (its script may still run).
    NodeNotReady(u8),
    /// A node is Ready again.
    NodeReady(u8),
    /// A replica looks at the Lease: `lease::decide`, and the write it calls for.
    LeaseLook(u8),
    /// A replica decides a turn from what it reads now: `takeover::plan`, the fence.
    Decide(u8),
    /// A replica's writer checks leadership and sends the turn's next write.
    Send(u8),
    /// A sent write reaches the API server (lands or is refused).
    Land(u8),
    /// A replica's process crashes (a write already sent may still land).
    Crash(u8),
    /// A crashed replica starts again.
    Restart(u8),
}

/// The takeover and leadership model's configuration.
#[derive(Clone, Debug)]
pub struct TakeoverModel {
    /// Nodes (each with a script).
    pub nodes: usize,
    /// Cluster time stops at this tick.
    pub max_tick: u8,
    /// A seeded bug replacing the fence, or `None` for the product's.
    pub bug: Option<Bug>,
    /// Which initial states are explored.
    pub start: Start,
    lease: LeaseConfig,
    base: Instant,
}

/// The initial states explored ([`TakeoverModel::start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Both of the others.
    Both,
    /// Before the handover: generation 1, the migration in `shadow`, acknowledged everywhere.
    Before,
    /// The handover under way: generation 2 (`operator`) projected and acknowledged by every node
    /// but the first, whose script holds generation 1 and has not reported since.
    Midway,
}

/// One turn's decision, as the operator's loop makes it (`parity::run::plan_turn`).
#[derive(Clone, Debug)]
pub struct TurnDecision {
    /// The takeover read.
    pub current: Takeover,
    /// The plan's takeover.
    pub planned: Takeover,
    /// Whether the plan writes the takeover.
    pub changed: bool,
    /// The fence's answer for the migration.
    pub fence: Result<(), Vec<Holding>>,
    /// The writes, in order.
    pub writes: Vec<OpWrite>,
}

fn key_takeover() -> Key {
    Key::new("ConfigMap", takeover::CONFIGMAP)
}
fn key_state() -> Key {
    Key::new("ConfigMap", "cluster-state")
}
fn key_lease() -> Key {
    Key::new("Lease", "nodewright-operator")
}
fn key_report(i: usize) -> Key {
    Key::new("ConfigMap", format!("node-{}", node_name(i)))
}
fn key_node(i: usize) -> Key {
    Key::new("Node", node_name(i))
}
fn key_pod(i: usize) -> Key {
    Key::new("Pod", pod_name(i))
}

/// The name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("edge-{}", i + 1)
}
fn pod_name(i: usize) -> String {
    format!("node-init-{}", node_name(i))
}
fn replica_name(r: usize) -> &'static str {
    REPLICAS.get(r).copied().unwrap_or("operator-?")
}

fn node_skew(i: usize) -> i64 {
    if i == 0 { SLOW_NODE_SKEW } else { 0 }
}

impl TakeoverModel {
    /// The model for `nodes` nodes, time bounded at `max_tick`, with the product's fence or `bug`.
    pub fn new(nodes: usize, max_tick: u8, bug: Option<Bug>) -> TakeoverModel {
        TakeoverModel {
            nodes,
            max_tick,
            bug,
            start: Start::Both,
            lease: LeaseConfig::standard("nodewright", "nodewright-operator", ""),
            base: Instant::now(),
        }
    }

    /// The same model, exploring only the initial states `start`.
    pub fn starting(self, start: Start) -> TakeoverModel {
        TakeoverModel { start, ..self }
    }

    fn instant(&self, secs: i64) -> Instant {
        self.base + Duration::from_secs(EPOCH.saturating_add_signed(secs))
    }

    fn replica_now(&self, state: &State, r: usize) -> i64 {
        i64::from(state.now) * TICK + REPLICA_SKEW.get(r).copied().unwrap_or(0)
    }

    fn cluster_now(state: &State) -> i64 {
        i64::from(state.now) * TICK
    }

    /// Whether replica `r` calls itself leader now: its last renew was sent less than the renew
    /// deadline ago on its own clock (the elector's step-down timer).
    pub fn leading(&self, state: &State, r: usize) -> bool {
        let replica = &state.replicas[r];
        replica.up
            && replica.renewed_at.is_some_and(|sent| {
                self.instant(self.replica_now(state, r)) < self.instant(sent) + self.lease.renew_deadline()
            })
    }

    fn takeover_of(store: &Store<Obj>) -> Option<Snapshot<(u64, WorkflowMode)>> {
        match store.get(&key_takeover()) {
            Some(Snapshot {
                value: Obj::Takeover { generation, mode },
                rv,
            }) => Some(Snapshot {
                value: (generation, mode),
                rv,
            }),
            _ => None,
        }
    }

    fn progress_of(store: &Store<Obj>) -> (u8, Decider, Rv) {
        match store.get(&key_state()) {
            Some(Snapshot {
                value: Obj::ClusterState { progress, by },
                rv,
            }) => (progress, by, rv),
            _ => (0, Decider::Nobody, 0),
        }
    }

    fn report_of(store: &Store<Obj>, i: usize) -> (Option<u64>, Option<i64>) {
        match store.value(&key_report(i)) {
            Some(Obj::Report { ack, at }) => (*ack, *at),
            _ => (None, None),
        }
    }

    fn not_ready_since(store: &Store<Obj>, i: usize) -> Option<i64> {
        match store.value(&key_node(i)) {
            Some(Obj::Node { not_ready_since }) => *not_ready_since,
            _ => None,
        }
    }

    fn pod_of(store: &Store<Obj>, i: usize) -> Option<bool> {
        match store.value(&key_pod(i)) {
            Some(Obj::Pod { running }) => Some(*running),
            _ => None,
        }
    }

    /// What the fence decides from, built from the store as the operator's gather does
    /// (`parity::observed::script_facts`, `parity::gather::script_pods`).
    pub fn facts(&self, store: &Store<Obj>) -> Vec<ScriptFacts> {
        (0..self.nodes)
            .map(|i| {
                let (ack, at) = Self::report_of(store, i);
                ScriptFacts {
                    node: node_name(i),
                    acknowledged: ack,
                    last_report: at,
                    pod: match Self::pod_of(store, i) {
                        None => ScriptPod::Gone,
                        Some(true) => ScriptPod::Running { pod: pod_name(i) },
                        Some(false) => ScriptPod::NotRunning {
                            pod: pod_name(i),
                            phase: "Pending".into(),
                        },
                    },
                    ready: match Self::not_ready_since(store, i) {
                        None => NodeReady::Ready,
                        Some(since) => NodeReady::NotReady { since: Some(since) },
                    },
                }
            })
            .collect()
    }

    /// Replica `r`'s turn, decided from the store as it is now (the turn's snapshot; its writes
    /// land later, when it may be stale).
    pub fn decide_turn(&self, state: &State, r: usize) -> TurnDecision {
        let store = &state.store;
        let read = Self::takeover_of(store);
        let mut current = Takeover::default();
        let mut takeover_rv = 0;
        if let Some(s) = &read {
            current.generation = s.value.0;
            current.modes.insert(WORKFLOW, s.value.1);
            takeover_rv = s.rv;
        }
        let (progress, _, state_rv) = Self::progress_of(store);
        let in_flight: Vec<InFlight> = (progress > 0 && progress < STEPS)
            .then(|| InFlight {
                workflow: WORKFLOW,
                what: format!("migration at step {progress}"),
            })
            .into_iter()
            .collect();
        let requested = WorkflowModes {
            migration: WorkflowMode::Operator,
            ..WorkflowModes::default()
        };
        let plan = takeover::plan(&requested, &current, &in_flight, &BTreeSet::new());
        let facts = self.facts(store);
        let now = self.replica_now(state, r);
        let fence = match self.bug {
            None => takeover::may_act(&plan.takeover, WORKFLOW, &facts, now, GRACE),
            Some(Bug::ClockLiveness) => {
                bugs::may_act_clock_liveness(&plan.takeover, WORKFLOW, &facts, now, bugs::LIVENESS_THRESHOLD)
            }
            Some(Bug::SkipAck) => bugs::may_act_skip_ack(&plan.takeover, WORKFLOW),
        };
        let mut writes = Vec::new();
        if plan.changed {
            writes.push(OpWrite::Takeover {
                generation: plan.takeover.generation,
                rv: takeover_rv,
            });
        }
        // Whether the turn acts: the product's `run::may_act_this_turn` (the fence, and never in a
        // turn that writes the takeover); with a seeded bug, the same rule over the bug's fence.
        let acts = match self.bug {
            None => run::may_act_this_turn(
                &run::Fence {
                    scripts: facts,
                    now,
                    grace: GRACE,
                },
                &plan.takeover,
                WORKFLOW,
                plan.changed,
            ),
            Some(_) => !plan.changed && fence.is_ok(),
        };
        if acts && progress < STEPS {
            writes.push(OpWrite::Step {
                progress,
                rv: state_rv,
            });
        }
        TurnDecision {
            current,
            planned: plan.takeover,
            changed: plan.changed,
            fence,
            writes,
        }
    }

    fn lease_look(&self, state: &mut State, r: usize) -> lease::Decision {
        let now = self.replica_now(state, r);
        let (holder, rv) = match state.store.get(&key_lease()) {
            Some(Snapshot {
                value: Obj::Lease { holder },
                rv,
            }) => (holder, rv),
            _ => (None, 0),
        };
        let replica = &state.replicas[r];
        let since = match replica.seen {
            Some((seen_rv, _, since)) if seen_rv == rv => since,
            _ => now,
        };
        let observed = Observed {
            holder: holder.map(|h| replica_name(usize::from(h)).to_owned()),
            lease_duration: Some(self.lease.lease_duration),
            unchanged_since: self.instant(since),
        };
        let decision = lease::decide(
            Some(&observed),
            self.instant(now),
            replica_name(r),
            self.lease.lease_duration,
        );
        let replica = &mut state.replicas[r];
        replica.seen = Some((rv, holder, since));
        match decision {
            lease::Decision::Wait { .. } => replica.renewed_at = None,
            lease::Decision::Create | lease::Decision::Acquire | lease::Decision::Renew => {
                let me = u8::try_from(r).unwrap_or(u8::MAX);
                if state
                    .store
                    .update(&key_lease(), Obj::Lease { holder: Some(me) }, Some(rv))
                    .is_ok()
                {
                    replica.renewed_at = Some(now);
                    if holder.is_some_and(|h| h != me) {
                        state.ghost.handed_over = true;
                    }
                }
            }
        }
        decision
    }

    fn land(&self, state: &mut State, r: usize, write: OpWrite) -> bool {
        let me = u8::try_from(r).unwrap_or(u8::MAX);
        let holder = match state.store.value(&key_lease()) {
            Some(Obj::Lease { holder }) => *holder,
            _ => None,
        };
        let landed = match write {
            OpWrite::Takeover { generation, rv } => state
                .store
                .update(
                    &key_takeover(),
                    Obj::Takeover {
                        generation,
                        mode: WorkflowMode::Operator,
                    },
                    Some(rv),
                )
                .is_ok(),
            OpWrite::Step { progress, rv } => {
                let value = Obj::ClusterState {
                    progress: progress + 1,
                    by: Decider::Operator(me),
                };
                let ok = state.store.update(&key_state(), value, Some(rv)).is_ok();
                if ok {
                    state.ghost.operator_stepped = true;
                    let generation = Self::takeover_of(&state.store).map_or(0, |s| s.value.0);
                    if (0..self.nodes)
                        .any(|i| Self::report_of(&state.store, i).0.is_none_or(|a| a < generation))
                    {
                        state.ghost.stepped_unacknowledged = true;
                    }
                }
                ok
            }
        };
        if landed && holder != Some(me) && state.ghost.deposed.is_none() {
            state.ghost.deposed = Some((me, holder, write));
        }
        landed
    }
}

impl TakeoverModel {
    /// An initial state. Before the handover (`mid` false): generation 1, the migration in `shadow`,
    /// acknowledged everywhere. In the middle of it (`mid` true): generation 2 (migration
    /// `operator`) projected and acknowledged by every node but the first, whose script read
    /// generation 1 and has not reported since (a stalled loop).
    fn start_state(&self, mid: bool) -> Option<State> {
        let mut store = Store::new();
        let generation = if mid { 2 } else { 1 };
        let mode = if mid {
            WorkflowMode::Operator
        } else {
            WorkflowMode::Shadow
        };
        store
            .create(
                key_takeover(),
                Obj::Takeover {
                    generation: 1,
                    mode: WorkflowMode::Shadow,
                },
            )
            .ok()?;
        if mid {
            store
                .update(&key_takeover(), Obj::Takeover { generation, mode }, None)
                .ok()?;
        }
        store
            .create(
                key_state(),
                Obj::ClusterState {
                    progress: 0,
                    by: Decider::Nobody,
                },
            )
            .ok()?;
        store.create(key_lease(), Obj::Lease { holder: Some(0) }).ok()?;
        for i in 0..self.nodes {
            let ack = if i == 0 { 1 } else { generation };
            store
                .create(
                    key_report(i),
                    Obj::Report {
                        ack: Some(ack),
                        at: Some(node_skew(i) - LOOP),
                    },
                )
                .ok()?;
            store
                .create(
                    key_node(i),
                    Obj::Node {
                        not_ready_since: None,
                    },
                )
                .ok()?;
            store.create(key_pod(i), Obj::Pod { running: true }).ok()?;
        }
        let lease_rv = store.rv(&key_lease())?;
        let leader = Replica {
            up: true,
            seen: Some((lease_rv, Some(0), 0)),
            renewed_at: Some(REPLICA_SKEW[0]),
            turn: Vec::new(),
            crashed: false,
            sent: None,
        };
        let follower = Replica {
            up: true,
            seen: None,
            renewed_at: None,
            turn: Vec::new(),
            crashed: false,
            sent: None,
        };
        let mut scripts = vec![Script::default(); self.nodes];
        if mid && let Some(first) = scripts.first_mut() {
            first.snapshot = Some((1, WorkflowMode::Shadow));
        }
        Some(State {
            now: 0,
            store,
            scripts,
            replicas: [leader, follower],
            ghost: Ghost::default(),
        })
    }
}

impl Model for TakeoverModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let mids: &[bool] = match self.start {
            Start::Both => &[false, true],
            Start::Before => &[false],
            Start::Midway => &[true],
        };
        mids.iter().filter_map(|mid| self.start_state(*mid)).collect()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.now < self.max_tick {
            actions.push(Action::Tick);
        }
        let (progress, _, _) = Self::progress_of(&state.store);
        for i in 0..self.nodes {
            let n = u8::try_from(i).unwrap_or(u8::MAX);
            let pod = Self::pod_of(&state.store, i);
            let ready = Self::not_ready_since(&state.store, i).is_none();
            let script = &state.scripts[i];
            if pod == Some(true) {
                match script.snapshot {
                    None => actions.push(Action::ScriptRead(n)),
                    Some((_, mode)) => {
                        if mode != WorkflowMode::Operator && !script.acted && progress < STEPS {
                            actions.push(Action::ScriptStep(n));
                        }
                        actions.push(Action::ScriptReport(n));
                    }
                }
            }
            match pod {
                Some(_) if ready && !script.deleted => actions.push(Action::PodDelete(n)),
                None => actions.push(Action::PodCreate(n)),
                Some(false) if ready => actions.push(Action::PodStart(n)),
                Some(_) => {}
            }
            if !ready {
                actions.push(Action::NodeReady(n));
            } else if !script.was_not_ready {
                actions.push(Action::NodeNotReady(n));
            }
        }
        for (r, replica) in state.replicas.iter().enumerate() {
            let r8 = u8::try_from(r).unwrap_or(u8::MAX);
            if replica.up {
                actions.push(Action::LeaseLook(r8));
                if replica.turn.is_empty() && replica.sent.is_none() {
                    actions.push(Action::Decide(r8));
                }
                if !replica.turn.is_empty() && replica.sent.is_none() {
                    actions.push(Action::Send(r8));
                }
                if !replica.crashed {
                    actions.push(Action::Crash(r8));
                }
            } else {
                actions.push(Action::Restart(r8));
            }
            if replica.sent.is_some() {
                actions.push(Action::Land(r8));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Tick => s.now += 1,
            Action::ScriptRead(n) => {
                let i = usize::from(n);
                s.scripts[i].snapshot = Self::takeover_of(&s.store).map(|t| t.value);
            }
            Action::ScriptStep(n) => {
                let i = usize::from(n);
                let (progress, _, _) = Self::progress_of(&s.store);
                let value = Obj::ClusterState {
                    progress: progress + 1,
                    by: Decider::Script(n),
                };
                s.store.update(&key_state(), value, None).ok()?;
                s.scripts[i].acted = true;
                s.ghost.script_stepped = true;
                if s.ghost.operator_stepped && s.ghost.double.is_none() {
                    let generation = s.scripts[i].snapshot.map_or(0, |t| t.0);
                    s.ghost.double = Some((n, generation));
                }
            }
            Action::ScriptReport(n) => {
                let i = usize::from(n);
                let generation = s.scripts[i].snapshot.map(|t| t.0);
                let at = Self::cluster_now(&s) + node_skew(i);
                s.store
                    .update(
                        &key_report(i),
                        Obj::Report {
                            ack: generation,
                            at: Some(at),
                        },
                        None,
                    )
                    .ok()?;
                s.scripts[i].snapshot = None;
                s.scripts[i].acted = false;
            }
            Action::PodDelete(n) => {
                let i = usize::from(n);
                s.store.delete(&key_pod(i), None).ok()?;
                s.scripts[i] = Script {
                    deleted: true,
                    was_not_ready: s.scripts[i].was_not_ready,
                    ..Script::default()
                };
            }
            Action::PodCreate(n) => {
                s.store
                    .create(key_pod(usize::from(n)), Obj::Pod { running: false })
                    .ok()?;
            }
            Action::PodStart(n) => {
                let i = usize::from(n);
                s.store
                    .update(&key_pod(i), Obj::Pod { running: true }, None)
                    .ok()?;
                s.scripts[i] = Script {
                    deleted: s.scripts[i].deleted,
                    was_not_ready: s.scripts[i].was_not_ready,
                    ..Script::default()
                };
            }
            Action::NodeNotReady(n) => {
                let since = Some(Self::cluster_now(&s));
                s.store
                    .update(
                        &key_node(usize::from(n)),
                        Obj::Node {
                            not_ready_since: since,
                        },
                        None,
                    )
                    .ok()?;
                s.scripts[usize::from(n)].was_not_ready = true;
            }
            Action::NodeReady(n) => {
                s.store
                    .update(
                        &key_node(usize::from(n)),
                        Obj::Node {
                            not_ready_since: None,
                        },
                        None,
                    )
                    .ok()?;
            }
            Action::LeaseLook(r) => {
                self.lease_look(&mut s, usize::from(r));
            }
            Action::Decide(r) => {
                let r = usize::from(r);
                let writes = self.decide_turn(last, r).writes;
                if writes.is_empty() {
                    return None;
                }
                s.replicas[r].turn = writes;
            }
            Action::Send(r) => {
                let r = usize::from(r);
                if self.leading(&s, r) {
                    let replica = &mut s.replicas[r];
                    if replica.turn.is_empty() {
                        return None;
                    }
                    replica.sent = Some(replica.turn.remove(0));
                } else {
                    // `Writer::check_leading`: NotLeader, the rest of the turn is not written.
                    s.replicas[r].turn.clear();
                }
            }
            Action::Land(r) => {
                let r = usize::from(r);
                let write = s.replicas[r].sent.take()?;
                if !self.land(&mut s, r, write) {
                    // A conflict ends the turn: the next one decides again.
                    s.replicas[r].turn.clear();
                }
            }
            Action::Crash(r) => {
                let replica = &mut s.replicas[usize::from(r)];
                replica.up = false;
                replica.crashed = true;
                replica.seen = None;
                replica.renewed_at = None;
                replica.turn.clear();
            }
            Action::Restart(r) => s.replicas[usize::from(r)].up = true,
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(AT_MOST_ONE_DECIDER, |_, s: &State| s.ghost.double.is_none()),
            Property::always(DEPOSED_NEVER_WRITES, |_, s: &State| s.ghost.deposed.is_none()),
            Property::sometimes("the operator takes a migration step", |_, s: &State| {
                s.ghost.operator_stepped
            }),
            Property::sometimes("a script takes a migration step", |_, s: &State| {
                s.ghost.script_stepped
            }),
            Property::sometimes("the Lease changes hands", |_, s: &State| s.ghost.handed_over),
            Property::sometimes(
                "the operator steps while a node has not acknowledged (proven unable to act)",
                |_, s: &State| s.ghost.stepped_unacknowledged,
            ),
        ]
    }
}

/// The property: never a script and the operator both deciding the migration once the operator
/// started (and, through the Lease and the guarded writes, never two replicas).
pub const AT_MOST_ONE_DECIDER: &str = "at most one decider per workflow";
/// The property: no write of a replica lands while another replica holds the Lease (or none does).
pub const DEPOSED_NEVER_WRITES: &str = "a deposed leader never lands a write";

fn mode_str(mode: WorkflowMode) -> &'static str {
    mode.as_str()
}

fn write_str(w: &OpWrite) -> String {
    match w {
        OpWrite::Takeover { generation, rv } => {
            format!("apply takeover generation {generation} (migration operator) if rv {rv}")
        }
        OpWrite::Step { progress, rv } => {
            format!("take migration step {} if cluster-state rv {rv}", progress + 1)
        }
    }
}

impl Explain for TakeoverModel {
    fn describe(&self, before: &State, action: &Action, after: &State) -> String {
        let script = |n: &u8| format!("script {}", node_name(usize::from(*n)));
        match action {
            Action::Tick => format!("clock: {} s", Self::cluster_now(after)),
            Action::ScriptRead(n) => match after.scripts[usize::from(*n)].snapshot {
                Some((g, m)) => {
                    let rv = Self::takeover_of(&after.store).map_or(0, |t| t.rv);
                    format!(
                        "{}: reads takeover (generation {g}, migration {}, rv {rv})",
                        script(n),
                        mode_str(m)
                    )
                }
                None => format!("{}: reads takeover (none)", script(n)),
            },
            Action::ScriptStep(n) => {
                let (p, _, _) = Self::progress_of(&after.store);
                let g = before.scripts[usize::from(*n)].snapshot.map_or(0, |t| t.0);
                format!(
                    "{}: takes migration step {p}, as its snapshot of generation {g} allows",
                    script(n)
                )
            }
            Action::ScriptReport(n) => {
                let (ack, at) = Self::report_of(&after.store, usize::from(*n));
                format!(
                    "{}: reports, acknowledging generation {} at {} s by its node's clock",
                    script(n),
                    ack.map_or("none".into(), |a| a.to_string()),
                    at.unwrap_or_default()
                )
            }
            Action::PodDelete(n) => format!("pod {}: deleted (its script ends)", pod_name(usize::from(*n))),
            Action::PodCreate(n) => format!("pod {}: created again (Pending)", pod_name(usize::from(*n))),
            Action::PodStart(n) => format!("pod {}: starts (a fresh script)", pod_name(usize::from(*n))),
            Action::NodeNotReady(n) => {
                format!(
                    "node {}: NotReady at {} s (its script may still run)",
                    node_name(usize::from(*n)),
                    Self::cluster_now(after)
                )
            }
            Action::NodeReady(n) => format!("node {}: Ready", node_name(usize::from(*n))),
            Action::LeaseLook(r) => {
                let r = usize::from(*r);
                let mut probe = before.clone();
                let decision = self.lease_look(&mut probe, r);
                let holder_now = match before.store.value(&key_lease()) {
                    Some(Obj::Lease { holder }) => holder.map_or("nobody", |h| replica_name(usize::from(h))),
                    _ => "nobody",
                };
                let what = match decision {
                    lease::Decision::Renew => "renews it".to_owned(),
                    lease::Decision::Acquire | lease::Decision::Create => "acquires it".to_owned(),
                    lease::Decision::Wait { .. } => "waits".to_owned(),
                };
                format!(
                    "{}: reads the Lease (held by {holder_now}) at {} s on its clock and {what}",
                    replica_name(r),
                    self.replica_now(before, r)
                )
            }
            Action::Decide(r) => {
                let r = usize::from(*r);
                let d = self.decide_turn(before, r);
                let mut out = format!(
                    "{}: reads takeover (generation {}, rv {}), decides",
                    replica_name(r),
                    d.current.generation,
                    Self::takeover_of(&before.store).map_or(0, |t| t.rv)
                );
                if d.changed {
                    let _ = write!(
                        out,
                        " to project generation {} (migration operator);",
                        d.planned.generation
                    );
                }
                match &d.fence {
                    Ok(()) if d.changed => {
                        let _ = write!(
                            out,
                            " the fence would let it act (at {} s on its clock), but not in the turn that projects",
                            self.replica_now(before, r)
                        );
                    }
                    Ok(()) => {
                        let _ = write!(
                            out,
                            " the fence lets it act (at {} s on its clock)",
                            self.replica_now(before, r)
                        );
                    }
                    Err(h) if h.is_empty() => out.push_str(" the migration is not in operator mode yet"),
                    Err(h) => {
                        let _ = write!(
                            out,
                            " the fence waits for {}",
                            h.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                        );
                    }
                }
                out
            }
            Action::Send(r) => {
                let ru = usize::from(*r);
                match &after.replicas[ru].sent {
                    Some(w) if before.replicas[ru].sent.is_none() => {
                        format!("{}: leads, sends: {}", replica_name(ru), write_str(w))
                    }
                    _ => format!(
                        "{}: no longer leads; the rest of its turn is dropped",
                        replica_name(ru)
                    ),
                }
            }
            Action::Land(r) => {
                let ru = usize::from(*r);
                let w = before.replicas[ru]
                    .sent
                    .map(|w| write_str(&w))
                    .unwrap_or_default();
                let landed = after.replicas[ru].turn.len() == before.replicas[ru].turn.len();
                let holder = match after.store.value(&key_lease()) {
                    Some(Obj::Lease { holder }) => holder.map_or("nobody", |h| replica_name(usize::from(h))),
                    _ => "nobody",
                };
                format!(
                    "API server: {}'s write {} ({w}; the Lease is held by {holder})",
                    replica_name(ru),
                    if landed { "lands" } else { "is refused (conflict)" }
                )
            }
            Action::Crash(r) => format!("{}: crashes", replica_name(usize::from(*r))),
            Action::Restart(r) => format!("{}: starts again", replica_name(usize::from(*r))),
        }
    }

    fn start(&self, state: &State) -> Option<String> {
        let generation = Self::takeover_of(&state.store).map_or(0, |t| t.value.0);
        Some(if generation >= 2 {
            format!(
                "the handover under way: takeover generation 2 (migration operator) acknowledged by every node but {}, whose script holds generation 1 (shadow)",
                node_name(0)
            )
        } else {
            "before the handover: takeover generation 1 (migration shadow), acknowledged by every node"
                .to_owned()
        })
    }

    fn focus(&self, property: &str, state: &State) -> String {
        let mut out = String::new();
        if let Some(t) = Self::takeover_of(&state.store) {
            let _ = writeln!(
                out,
                "takeover: generation {}, migration {} (rv {})",
                t.value.0,
                mode_str(t.value.1),
                t.rv
            );
        }
        let (progress, by, _) = Self::progress_of(&state.store);
        let _ = writeln!(
            out,
            "migration: {progress} of {STEPS} steps, last by {}",
            decider_str(by)
        );
        if property == AT_MOST_ONE_DECIDER
            && let Some((n, g)) = state.ghost.double
        {
            let _ = writeln!(
                out,
                "double decider: script {} stepped from its snapshot of generation {g} after the operator had stepped",
                node_name(usize::from(n))
            );
        }
        if property == DEPOSED_NEVER_WRITES
            && let Some((r, holder, w)) = state.ghost.deposed
        {
            let _ = writeln!(
                out,
                "deposed write: {} landed `{}` while the Lease was held by {}",
                replica_name(usize::from(r)),
                write_str(&w),
                holder.map_or("nobody", |h| replica_name(usize::from(h)))
            );
        }
        for i in 0..self.nodes {
            let (ack, at) = Self::report_of(&state.store, i);
            let pod = match Self::pod_of(&state.store, i) {
                None => "gone",
                Some(true) => "running",
                Some(false) => "pending",
            };
            let snap = state.scripts[i]
                .snapshot
                .map_or("no snapshot".to_owned(), |(g, m)| {
                    format!("holds generation {g} ({})", mode_str(m))
                });
            let _ = writeln!(
                out,
                "node {}: acknowledged {}, last report {} s (node clock), pod {pod}, script {snap}",
                node_name(i),
                ack.map_or("none".into(), |a| a.to_string()),
                at.unwrap_or_default(),
            );
        }
        for r in 0..2 {
            let _ = writeln!(
                out,
                "{}: {}, {}",
                replica_name(r),
                if state.replicas[r].up { "up" } else { "down" },
                if self.leading(state, r) {
                    "leading"
                } else {
                    "not leading"
                }
            );
        }
        out
    }
}

fn decider_str(d: Decider) -> String {
    match d {
        Decider::Nobody => "nobody".into(),
        Decider::Script(n) => format!("script {}", node_name(usize::from(n))),
        Decider::Operator(r) => replica_name(usize::from(r)).into(),
    }
}
