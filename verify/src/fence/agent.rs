//! The node-agent model: one node, one NodeTask, two agent pods (the DaemonSet's pod and the one a
//! rollout starts next to it), the host with its journal, and the API server.
//!
//! An agent pod takes the journal's lock (one agent per state directory; the lock dies with the
//! process), reads the task, decides with `nodewright_agent_shim::decide::decide` from the journal
//! (`nodewright_agent_shim::journal::JournalState`, built by its own `apply`), claims the task with
//! the status `nodewright_agent_shim::status::claimed` builds, guarded by the resourceVersion it
//! read, journals `Started`, runs the host step, journals `Finished`, and reports. It may crash
//! between any two of these; a claim or report already sent may still land after the crash. Once a
//! task succeeded, the operator may create it again under the same idempotency key (a new uid), as
//! a later turn that did not see the first would.
//!
//! The host step checks before it changes anything (every step of the catalogue does), so running
//! it again after an interruption changes nothing; what must never happen is a step running again
//! once its result is journalled, or two runs of it at once.

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use nodewright_agent_shim::decide::{self, Decision, Identity, RunReason};
use nodewright_agent_shim::journal::{Finished, JournalState, Record, Started};
use nodewright_agent_shim::status;
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase, NodeTaskSpec, NodeTaskStatus};
use stateright::{Model, Property};

use crate::store::{Key, Rv, Snapshot, Store};
use crate::trace::Explain;

/// Seconds per tick.
pub const TICK: i64 = 5;
/// The task's timeout (seconds).
pub const TIMEOUT: i32 = 5;
/// The agent's grace period before it takes over another pod's claim (seconds).
pub const TAKEOVER_GRACE: u64 = 5;
/// Cluster time stops at this tick.
pub const MAX_TICK: u8 = 3;

const NODE: &str = "edge-1";
const KEY: &str = "mig-1-satellite-edge-1";
const STEP: &str = "satellite-start";
const PODS: [&str; 2] = ["agent-old", "agent-new"];
/// Seconds added to model time so that timestamps are plausible.
const EPOCH: i64 = 1_800_000_000;

/// The NodeTask as the API server holds it, reduced to what the agent reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Task {
    /// Which creation of the task (its uid): 1, then 2 once re-created under the same key.
    pub uid: u8,
    /// `status.phase` (`None`: no status yet).
    pub phase: Option<NodeTaskPhase>,
    /// `status.claimedBy` (pod index).
    pub claimed_by: Option<u8>,
    /// `status.attempts`.
    pub attempts: i32,
    /// `status.startedAt` (model seconds).
    pub started_at: Option<i64>,
}

/// A journal line on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Line {
    /// `Started` for task `uid`, attempt `attempt`.
    Started {
        /// The task's uid.
        uid: u8,
        /// The attempt.
        attempt: i32,
    },
    /// `Finished` (exit code 0).
    Finished,
}

/// Where an agent pod is in its loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Waiting for the journal lock (or not started).
    NoLock,
    /// Holds the lock; between tasks.
    Idle,
    /// Decided to run the task read at `rv`; the claim is to be sent.
    Claiming {
        /// The task's resourceVersion read.
        rv: Rv,
        /// Why it runs.
        why: Why,
    },
    /// Claimed (the claim landed, the task now at `rv`); `Started` not yet journalled.
    Claimed {
        /// The task's resourceVersion after the claim.
        rv: Rv,
    },
    /// `Started` journalled; the step not yet run.
    Journalled {
        /// As above.
        rv: Rv,
    },
    /// The step ran; its result not yet journalled.
    Ran {
        /// As above.
        rv: Rv,
    },
    /// The result is journalled (or was found in the journal); the report is to be written,
    /// guarded by `rv`.
    Reporting {
        /// As above.
        rv: Rv,
    },
}

/// Why the agent runs a task (`decide::RunReason`, reduced).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Why {
    /// A new task.
    Fresh,
    /// Resumed after an interruption the journal shows.
    Resume,
    /// Its own claim, no journal record.
    RerunOwn,
    /// Taken over from another pod's stale claim.
    TakeOver,
}

/// One agent pod.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Agent {
    /// Whether its process runs.
    pub up: bool,
    /// Where it is.
    pub stage: Stage,
    /// A claim or report its crashed process had sent (`Stage::Claiming` or `Stage::Reporting`):
    /// it may still land, and nobody acts on its answer.
    pub orphan: Option<Stage>,
}

/// History variables for the properties.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ghost {
    /// Runs of the step on the host.
    pub runs: u8,
    /// Changes the step made to the host (it checks first, so at most one is expected).
    pub changes: u8,
    /// A run started while the journal already held the key's result.
    pub ran_after_result: bool,
    /// A run was a resumption after an interruption.
    pub resumed: bool,
    /// A result was reported from the journal instead of running.
    pub reported_from_journal: bool,
    /// Another pod's stale claim was taken over.
    pub took_over: bool,
}

/// The agent model's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Cluster time in ticks.
    pub now: u8,
    /// The API server (the NodeTask).
    pub store: Store<Task>,
    /// The host's journal.
    pub journal: Vec<Line>,
    /// Whether the host holds the step's change.
    pub host_done: bool,
    /// The journal lock's holder.
    pub lock: Option<u8>,
    /// The two agent pods.
    pub agents: [Agent; 2],
    /// Whether the operator re-created the task once already.
    pub recreated: bool,
    /// History.
    pub ghost: Ghost,
}

/// An actor's step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Time advances a tick.
    Tick,
    /// Pod `p` takes the journal lock (and replays the journal).
    Lock(u8),
    /// Pod `p` reads the task and decides (`decide::decide`).
    Decide(u8),
    /// Pod `p`'s claim reaches the API server.
    Claim(u8),
    /// Pod `p` journals `Started`.
    JournalStart(u8),
    /// Pod `p` runs the host step (it checks first).
    Run(u8),
    /// Pod `p` journals `Finished`.
    JournalFinish(u8),
    /// Pod `p`'s report (`Succeeded`) reaches the API server.
    Report(u8),
    /// Pod `p` crashes (the lock is released).
    Crash(u8),
    /// The claim or report pod `p` sent before it crashed reaches the API server.
    Orphan(u8),
    /// Pod `p` starts again.
    Restart(u8),
    /// The operator creates the task again under the same key after it succeeded.
    Recreate,
}

/// The node-agent model (no configuration: one node, one key, two pods).
#[derive(Clone, Debug, Default)]
pub struct AgentModel;

fn key() -> Key {
    Key::new("NodeTask", KEY)
}

fn time(secs: i64) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::from_second(EPOCH + secs)
        .ok()
        .map(Time)
}

fn pod(p: usize) -> &'static str {
    PODS.get(p).copied().unwrap_or("agent-?")
}

impl AgentModel {
    /// The model.
    pub fn new() -> AgentModel {
        AgentModel
    }

    /// The journal as the agent replays it (`JournalState::apply` over the host's lines).
    pub fn journal_state(journal: &[Line]) -> JournalState {
        let mut state = JournalState::default();
        for line in journal {
            state.apply(match *line {
                Line::Started { uid, attempt } => Record::Started(Started {
                    key: KEY.into(),
                    task_uid: format!("uid-{uid}"),
                    task_name: KEY.into(),
                    step: STEP.into(),
                    args: Vec::new(),
                    attempt,
                    at: String::new(),
                }),
                Line::Finished => Record::Finished(Finished {
                    key: KEY.into(),
                    code: 0,
                    output_tail: String::new(),
                    message: String::new(),
                    at: String::new(),
                }),
            });
        }
        state
    }

    /// The NodeTask object the agent reads, built from the model's task.
    pub fn node_task(task: &Task) -> NodeTask {
        let mut t = NodeTask::new(
            KEY,
            NodeTaskSpec {
                node_name: NODE.into(),
                step: STEP.into(),
                args: Vec::new(),
                idempotency_key: KEY.into(),
                workflow_ref: None,
                timeout_seconds: TIMEOUT,
            },
        );
        t.metadata = ObjectMeta {
            name: Some(KEY.into()),
            uid: Some(format!("uid-{}", task.uid)),
            ..ObjectMeta::default()
        };
        t.status = task.phase.map(|phase| NodeTaskStatus {
            phase: Some(phase),
            claimed_by: task.claimed_by.map(|p| pod(usize::from(p)).to_owned()),
            attempts: task.attempts,
            started_at: task.started_at.and_then(time),
            ..NodeTaskStatus::default()
        });
        t
    }

    /// The task as pod `p`'s claim writes it (`status::claimed`), or `None` when the task is gone.
    /// Built from the task as it is when the claim lands: the claim is guarded by the version it
    /// read, so it lands only when that is still the task's version.
    fn claimed(state: &State, p: u8) -> Option<Task> {
        let current = state.store.get(&key())?.value;
        let built = Self::node_task(&current);
        let now = time(i64::from(state.now) * TICK)?;
        let claimed = status::claimed(built.status.as_ref(), pod(usize::from(p)), "running", &now);
        Some(Task {
            uid: current.uid,
            phase: claimed.phase,
            claimed_by: Some(p),
            attempts: claimed.attempts,
            started_at: claimed.started_at.map(|t| t.0.as_second() - EPOCH),
        })
    }

    /// A report of success, guarded by `rv` (refused when the task changed since).
    fn report(state: &mut State, rv: Rv) {
        if let Some(mut task) = state.store.get(&key()).map(|t| t.value) {
            task.phase = Some(NodeTaskPhase::Succeeded);
            let _refused_when_changed = state.store.update(&key(), task, Some(rv));
        }
    }

    /// What pod `p` decides about the task as it is now.
    pub fn decision(state: &State, p: usize) -> Option<(Decision, Rv)> {
        let Snapshot { value, rv } = state.store.get(&key())?;
        let me = Identity {
            node: NODE.into(),
            pod: pod(p).into(),
        };
        let now = time(i64::from(state.now) * TICK)?;
        let d = decide::decide(
            &Self::node_task(&value),
            &me,
            &Self::journal_state(&state.journal),
            &now,
            Duration::from_secs(TAKEOVER_GRACE),
        );
        Some((d, rv))
    }
}

impl Model for AgentModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let mut store = Store::new();
        let task = Task {
            uid: 1,
            phase: None,
            claimed_by: None,
            attempts: 0,
            started_at: None,
        };
        if store.create(key(), task).is_err() {
            return Vec::new();
        }
        let agent = Agent {
            up: true,
            stage: Stage::NoLock,
            orphan: None,
        };
        vec![State {
            now: 0,
            store,
            journal: Vec::new(),
            host_done: false,
            lock: None,
            agents: [agent.clone(), Agent { up: false, ..agent }],
            recreated: false,
            ghost: Ghost::default(),
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.now < MAX_TICK {
            actions.push(Action::Tick);
        }
        let succeeded = state
            .store
            .value(&key())
            .is_some_and(|t| t.phase == Some(NodeTaskPhase::Succeeded));
        if succeeded && !state.recreated {
            actions.push(Action::Recreate);
        }
        for (p, agent) in state.agents.iter().enumerate() {
            let p8 = u8::try_from(p).unwrap_or(u8::MAX);
            if agent.orphan.is_some() {
                actions.push(Action::Orphan(p8));
            }
            if !agent.up {
                actions.push(Action::Restart(p8));
                continue;
            }
            actions.push(Action::Crash(p8));
            match agent.stage {
                Stage::NoLock if state.lock.is_none() => actions.push(Action::Lock(p8)),
                Stage::Idle
                    if Self::decision(state, p)
                        .is_some_and(|(d, _)| matches!(d, Decision::Run(_) | Decision::Report(_))) =>
                {
                    actions.push(Action::Decide(p8));
                }
                Stage::Claiming { .. } => actions.push(Action::Claim(p8)),
                Stage::Reporting { .. } => actions.push(Action::Report(p8)),
                Stage::Claimed { .. } => actions.push(Action::JournalStart(p8)),
                Stage::Journalled { .. } => actions.push(Action::Run(p8)),
                Stage::Ran { .. } => actions.push(Action::JournalFinish(p8)),
                _ => {}
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Tick => s.now += 1,
            Action::Recreate => {
                s.store.delete(&key(), None).ok()?;
                let task = Task {
                    uid: 2,
                    phase: None,
                    claimed_by: None,
                    attempts: 0,
                    started_at: None,
                };
                s.store.create(key(), task).ok()?;
                s.recreated = true;
            }
            Action::Lock(p) => {
                s.lock = Some(p);
                s.agents[usize::from(p)].stage = Stage::Idle;
            }
            Action::Decide(p) => {
                let pu = usize::from(p);
                let (d, rv) = Self::decision(last, pu)?;
                s.agents[pu].stage = match d {
                    Decision::Run(why) => Stage::Claiming {
                        rv,
                        why: match why {
                            RunReason::Fresh => Why::Fresh,
                            RunReason::ResumeInterrupted { .. } => Why::Resume,
                            RunReason::RerunOwnClaim => Why::RerunOwn,
                            RunReason::TakeOver { .. } => Why::TakeOver,
                        },
                    },
                    Decision::Report(_) => {
                        s.ghost.reported_from_journal = true;
                        Stage::Reporting { rv }
                    }
                    _ => return None,
                };
            }
            Action::Claim(p) => {
                let pu = usize::from(p);
                let Stage::Claiming { rv, why } = last.agents[pu].stage else {
                    return None;
                };
                let task = Self::claimed(&s, p)?;
                s.agents[pu].stage = match s.store.update(&key(), task, Some(rv)) {
                    Ok(new_rv) => {
                        if why == Why::TakeOver {
                            s.ghost.took_over = true;
                        }
                        if why == Why::Resume {
                            s.ghost.resumed = true;
                        }
                        Stage::Claimed { rv: new_rv }
                    }
                    // `Claim::Lost`: the task changed since it was read; read it again.
                    Err(_) => Stage::Idle,
                };
            }
            Action::JournalStart(p) => {
                let pu = usize::from(p);
                let Stage::Claimed { rv } = last.agents[pu].stage else {
                    return None;
                };
                let task = s.store.get(&key())?.value;
                s.journal.push(Line::Started {
                    uid: task.uid,
                    attempt: task.attempts,
                });
                s.agents[pu].stage = Stage::Journalled { rv };
            }
            Action::Run(p) => {
                let pu = usize::from(p);
                let Stage::Journalled { rv } = last.agents[pu].stage else {
                    return None;
                };
                if matches!(
                    Self::journal_state(&s.journal).key_state(KEY),
                    nodewright_agent_shim::journal::KeyState::Finished { .. }
                ) {
                    s.ghost.ran_after_result = true;
                }
                s.ghost.runs = s.ghost.runs.saturating_add(1);
                // The step checks the host first: it changes it only when not done yet.
                if !s.host_done {
                    s.host_done = true;
                    s.ghost.changes = s.ghost.changes.saturating_add(1);
                }
                s.agents[pu].stage = Stage::Ran { rv };
            }
            Action::JournalFinish(p) => {
                let pu = usize::from(p);
                let Stage::Ran { rv } = last.agents[pu].stage else {
                    return None;
                };
                s.journal.push(Line::Finished);
                s.agents[pu].stage = Stage::Reporting { rv };
            }
            Action::Report(p) => {
                let pu = usize::from(p);
                let Stage::Reporting { rv } = last.agents[pu].stage else {
                    return None;
                };
                Self::report(&mut s, rv);
                s.agents[pu].stage = Stage::Idle;
            }
            Action::Orphan(p) => {
                let pu = usize::from(p);
                match s.agents[pu].orphan.take()? {
                    Stage::Claiming { rv, .. } => {
                        if let Some(task) = Self::claimed(&s, p) {
                            let _refused_when_changed = s.store.update(&key(), task, Some(rv));
                        }
                    }
                    Stage::Reporting { rv } => Self::report(&mut s, rv),
                    _ => return None,
                }
            }
            Action::Crash(p) => {
                let pu = usize::from(p);
                s.agents[pu].up = false;
                if s.lock == Some(p) {
                    s.lock = None;
                }
                // What was sent may still land; everything else the process held is gone.
                let stage = std::mem::replace(&mut s.agents[pu].stage, Stage::NoLock);
                if matches!(stage, Stage::Claiming { .. } | Stage::Reporting { .. }) {
                    s.agents[pu].orphan = Some(stage);
                }
            }
            Action::Restart(p) => s.agents[usize::from(p)].up = true,
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(KEY_ONCE, |_, s: &State| {
                !s.ghost.ran_after_result && s.ghost.changes <= 1
            }),
            Property::sometimes("the task succeeds", |_, s: &State| {
                s.store
                    .value(&key())
                    .is_some_and(|t| t.phase == Some(NodeTaskPhase::Succeeded))
            }),
            Property::sometimes("a step is resumed after a crash", |_, s: &State| s.ghost.resumed),
            Property::sometimes("a result is reported from the journal", |_, s: &State| {
                s.ghost.reported_from_journal
            }),
            Property::sometimes("a stale claim is taken over", |_, s: &State| s.ghost.took_over),
        ]
    }
}

/// The property: the step of an idempotency key changes the host at most once, and never runs
/// again once its result is journalled.
pub const KEY_ONCE: &str = "no NodeTask idempotency key executed twice on the host";

impl Explain for AgentModel {
    fn describe(&self, before: &State, action: &Action, after: &State) -> String {
        let name = |p: &u8| pod(usize::from(*p));
        match action {
            Action::Tick => format!("clock: {} s", i64::from(after.now) * TICK),
            Action::Recreate => format!("operator: creates the NodeTask again under key {KEY} (uid-2)"),
            Action::Lock(p) => format!(
                "{}: takes the journal lock, replays {} lines",
                name(p),
                after.journal.len()
            ),
            Action::Decide(p) => {
                let d = Self::decision(before, usize::from(*p)).map(|(d, rv)| (format!("{d:?}"), rv));
                let (d, rv) = d.unwrap_or_default();
                let d: String = d.chars().take(90).collect();
                format!("{}: reads the task (rv {rv}) and decides {d}", name(p))
            }
            Action::Claim(p) => match after.agents[usize::from(*p)].stage {
                Stage::Claimed { rv } => format!("{}: claims the task (now rv {rv})", name(p)),
                _ => format!("{}: its claim is refused or its pod is gone", name(p)),
            },
            Action::JournalStart(p) => format!("{}: journals Started", name(p)),
            Action::Run(p) => format!(
                "{}: runs {STEP} on the host ({})",
                name(p),
                if before.host_done {
                    "the check finds it done"
                } else {
                    "it changes the host"
                }
            ),
            Action::JournalFinish(p) => format!("{}: journals Finished", name(p)),
            Action::Report(p) => {
                let landed = after
                    .store
                    .value(&key())
                    .is_some_and(|t| t.phase == Some(NodeTaskPhase::Succeeded))
                    && before
                        .store
                        .value(&key())
                        .is_some_and(|t| t.phase != Some(NodeTaskPhase::Succeeded));
                format!(
                    "{}: reports Succeeded ({})",
                    name(p),
                    if landed { "lands" } else { "refused" }
                )
            }
            Action::Crash(p) => format!("{}: crashes", name(p)),
            Action::Orphan(p) => format!("API server: the write {} sent before it crashed arrives", name(p)),
            Action::Restart(p) => format!("{}: starts again", name(p)),
        }
    }

    fn focus(&self, _property: &str, state: &State) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "host: step runs {}, host changes {}",
            state.ghost.runs, state.ghost.changes
        );
        let _ = writeln!(out, "journal: {:?}", state.journal);
        if let Some(t) = state.store.get(&key()) {
            let _ = writeln!(out, "task (rv {}): {:?}", t.rv, t.value);
        }
        for (p, a) in state.agents.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}: {} {:?}",
                pod(p),
                if a.up { "up" } else { "down" },
                a.stage
            );
        }
        out
    }
}
