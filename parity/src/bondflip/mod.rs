//! Bond flips the operator owns: one decision per `BondFlip` per turn, pure.
//!
//! `Pending` → `Preflight` → `Flipping` → `Verifying` → `Completed`, or `RollingBack` →
//! `RolledBack` when the node undid the flip itself (its storage-network probe failed, or it could
//! not confirm the flip in time), or `Failed`. Decided from the node agent's fresh facts
//! ([`crate::controllers::Snapshot::fresh_facts`]), never from the script's reports:
//! - `Pending` waits while the site's storage gate is held (a storage upgrade or a migration is
//!   changing storage: a flip that stalls replication must not overlap it) and while another flip
//!   of the same node is in flight (one flip per node at a time);
//! - `Preflight` checks that the bond is still in the flip's `from` state and that the target slave
//!   has carrier (for a mode change: some slave has), else the flip fails without a task, so the
//!   host is not touched;
//! - `Flipping` is one `bond-flip` NodeTask: the agent journals `from`, flips, probes every DRBD
//!   peer over the storage VLAN and reverts on the node when the probe fails or the flip is not
//!   confirmed in time ([`nodewright_api::bondflip::REVERTED`] in its output);
//! - `Verifying` waits for facts read after the task finished that show the bond in its target
//!   state.

use nodewright_api::bondflip::{BondFlipPhase as Phase, BondFlipSpec, BondFlipStatus, BondState, REVERTED};
use nodewright_api::common::{ConditionStatus, PhaseTransition, set_condition};
use nodewright_api::edgenode::{BondMode, LinkState};
use nodewright_api::nodefacts::NodeFactsSpec;
use nodewright_api::nodetask::NodeTaskPhase;
use nodewright_api::{StepName, bondflip::mode_name};

/// The `bond-flip` task's timeout: the agent's deadline to flip, probe and be confirmed, after
/// which it reverts on its own (seconds).
pub const TASK_TIMEOUT_SECONDS: i32 = 120;

/// How long a flip waits in `Flipping` past its task's timeout before it counts the flip as not
/// confirmed (the agent has reverted by then) and waits for the rollback to be seen (seconds).
pub const FLIPPING_GRACE_SECONDS: i64 = 120;

/// How long `Preflight`, `Verifying` and `RollingBack` wait for the facts they need before the
/// flip fails (seconds).
pub const WAIT_TIMEOUT_SECONDS: i64 = 600;

/// A node's bond as its agent reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostBond {
    /// Bonding mode.
    pub mode: BondMode,
    /// The active slave, in modes that have one.
    pub active_slave: Option<String>,
    /// Each slave and whether it has carrier.
    pub slaves: Vec<(String, bool)>,
}

impl HostBond {
    /// The bond's state, as a flip's `from` spells it.
    pub fn state(&self) -> BondState {
        BondState {
            mode: self.mode,
            active_slave: self.active_slave.clone(),
        }
    }

    fn describe(&self) -> String {
        match &self.active_slave {
            Some(s) => format!("{} with active slave {s}", mode_name(self.mode)),
            None => format!("{} without an active slave", mode_name(self.mode)),
        }
    }
}

/// The node's agent facts a decision reads: when they were read and the flip's bond (`None`
/// when the host has no bond by that name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// `spec.observedAt`, Unix seconds.
    pub observed_at: i64,
    /// The bond, when the host has it.
    pub bond: Option<HostBond>,
}

impl Host {
    /// The facts of `bond` in an agent's report.
    pub fn from_facts(facts: &NodeFactsSpec, bond: &str) -> Host {
        Host {
            observed_at: facts.observed_at.0.as_second(),
            bond: facts.bonds.iter().find(|b| b.name == bond).map(|b| HostBond {
                mode: b.mode,
                active_slave: b.active_slave.clone(),
                slaves: b
                    .slaves
                    .iter()
                    .map(|s| (s.name.clone(), s.link_state == LinkState::Up))
                    .collect(),
            }),
        }
    }
}

/// Everything one flip's decision reads, gathered by the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Now, Unix seconds.
    pub now: i64,
    /// The node's fresh agent facts; `None` when it has none fresh.
    pub host: Option<Host>,
    /// The storage VLAN interface the probe goes out of (`bond0.100`), from the node's host
    /// configuration; `None` while it is not known.
    pub storage_interface: Option<String>,
    /// The storage addresses of the node's DRBD peers, which the probe must reach.
    pub peers: Vec<String>,
    /// DRBD peers of the node whose storage address is not known.
    pub unknown_peers: Vec<String>,
    /// Who holds the site's storage gate, when it is held.
    pub gate: Option<String>,
    /// Another flip of the same node that is in flight, when one is.
    pub busy: Option<String>,
}

/// A `bond-flip` task the flip wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRequest {
    /// Idempotency key and NodeTask name.
    pub key: String,
    /// The node.
    pub node: String,
    /// The step (`bond-flip`).
    pub step: String,
    /// `<bond> <from> <to> <storage-interface> <peers>`.
    pub args: Vec<String>,
}

/// The flip's task, as its status says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskResult {
    /// Its phase; `None` before an agent claimed it.
    pub phase: Option<NodeTaskPhase>,
    /// Its output.
    pub output: String,
    /// Its message.
    pub message: String,
    /// When it finished, Unix seconds.
    pub finished_at: Option<i64>,
}

/// What the flip does this turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stays in its phase: why (a CamelCase reason) and what it waits for.
    Wait {
        /// Reason of the `Progressing` condition.
        reason: &'static str,
        /// What it waits for.
        message: String,
    },
    /// Enters `phase`.
    Enter {
        /// The phase.
        phase: Phase,
        /// CamelCase reason (the condition's and the Event's).
        reason: &'static str,
        /// Why.
        message: String,
    },
    /// Over: nothing to decide.
    Over,
}

/// One decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The phase change, or the wait.
    pub outcome: Outcome,
    /// The task to create (a repeat of an existing one is refused by its name).
    pub task: Option<TaskRequest>,
    /// The bond as observed, when the flip ends having seen it.
    pub observed: Option<BondState>,
}

impl Decision {
    fn wait(reason: &'static str, message: impl Into<String>) -> Decision {
        Decision {
            outcome: Outcome::Wait {
                reason,
                message: message.into(),
            },
            task: None,
            observed: None,
        }
    }

    fn enter(phase: Phase, reason: &'static str, message: impl Into<String>) -> Decision {
        Decision {
            outcome: Outcome::Enter {
                phase,
                reason,
                message: message.into(),
            },
            task: None,
            observed: None,
        }
    }
}

/// Whether a phase ends the flip.
pub fn is_terminal(phase: Phase) -> bool {
    matches!(phase, Phase::Completed | Phase::RolledBack | Phase::Failed)
}

/// The idempotency key (and name) of a flip's one task: the flip's uid and node.
pub fn task_key(uid: &str, node: &str) -> String {
    let uid: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    crate::keys::idempotency_key(&format!("bf-{uid}-"), &format!("{node}-flip"))
}

/// The `bond-flip` step's arguments for a flip: bond, from, to, the storage interface and the
/// peers to probe (comma-separated, `-` for none).
pub fn step_args(spec: &BondFlipSpec, storage_interface: &str, peers: &[String]) -> Vec<String> {
    vec![
        spec.bond.clone(),
        spec.from.to_arg(),
        spec.target_state().to_arg(),
        storage_interface.to_owned(),
        if peers.is_empty() {
            "-".to_owned()
        } else {
            peers.join(",")
        },
    ]
}

/// When the flip entered its current phase.
fn since(status: &BondFlipStatus) -> Option<i64> {
    status.history.last().map(|t| t.at.0.as_second())
}

/// The decision for one flip, from its spec, its status, the facts and its task (when created).
pub fn decide(
    spec: &BondFlipSpec,
    uid: &str,
    status: &BondFlipStatus,
    facts: &Facts,
    task: Option<&TaskResult>,
) -> Decision {
    let phase = status.phase.unwrap_or(Phase::Pending);
    if is_terminal(phase) {
        return Decision {
            outcome: Outcome::Over,
            task: None,
            observed: None,
        };
    }
    let waited = since(status).map_or(0, |s| facts.now - s);
    match phase {
        Phase::Pending => pending(spec, facts),
        Phase::Preflight => preflight(spec, uid, facts, waited),
        Phase::Flipping => flipping(spec, uid, facts, task, waited),
        Phase::Verifying => verifying(spec, facts, task, waited),
        Phase::RollingBack => rolling_back(spec, facts, since(status).unwrap_or(facts.now), waited),
        Phase::Completed | Phase::RolledBack | Phase::Failed => Decision {
            outcome: Outcome::Over,
            task: None,
            observed: None,
        },
    }
}

/// Why a flip may not start now: the storage gate or another flip of the node.
fn held(spec: &BondFlipSpec, facts: &Facts) -> Option<Decision> {
    if let Some(holder) = &facts.gate {
        return Some(Decision::wait(
            "DeferredToStorage",
            format!(
                "{holder} holds the storage gate: a flip of {} on {} stalls replication and waits until it is released",
                spec.bond, spec.node_name
            ),
        ));
    }
    if let Some(other) = &facts.busy {
        return Some(Decision::wait(
            "OtherFlipInProgress",
            format!(
                "BondFlip {other} is flipping a bond of {}: one flip per node at a time",
                spec.node_name
            ),
        ));
    }
    None
}

fn pending(spec: &BondFlipSpec, facts: &Facts) -> Decision {
    if let Some(d) = held(spec, facts) {
        return d;
    }
    if facts.host.is_none() {
        return Decision::wait(
            "WaitingForFacts",
            format!("no fresh host facts from the agent of {}", spec.node_name),
        );
    }
    Decision::enter(
        Phase::Preflight,
        "PreflightStarted",
        format!("checking {} on {}", spec.bond, spec.node_name),
    )
}

fn preflight(spec: &BondFlipSpec, uid: &str, facts: &Facts, waited: i64) -> Decision {
    if let Some(d) = held(spec, facts) {
        return d;
    }
    let late = |reason: &'static str, message: String| {
        if waited > WAIT_TIMEOUT_SECONDS {
            Decision::enter(
                Phase::Failed,
                "PreflightTimedOut",
                format!("{message} for {waited}s; nothing was changed"),
            )
        } else {
            Decision::wait(reason, message)
        }
    };
    let Some(host) = &facts.host else {
        return late(
            "WaitingForFacts",
            format!("no fresh host facts from the agent of {}", spec.node_name),
        );
    };
    let Some(bond) = &host.bond else {
        return Decision::enter(
            Phase::Failed,
            "BondNotFound",
            format!(
                "{} has no bond {}; nothing was changed",
                spec.node_name, spec.bond
            ),
        );
    };
    if !spec.from.matches(bond.mode, bond.active_slave.as_deref()) {
        return Decision::enter(
            Phase::Failed,
            "BondNotInFromState",
            format!(
                "{} is in {}, not in {} as the flip expects; nothing was changed",
                spec.bond,
                bond.describe(),
                spec.from.to_arg()
            ),
        );
    }
    let carrier = |s: &str| bond.slaves.iter().find(|(n, _)| n == s).map(|(_, up)| *up);
    match &spec.to.active_slave {
        Some(target) => match carrier(target) {
            None => {
                return Decision::enter(
                    Phase::Failed,
                    "TargetSlaveNotInBond",
                    format!("{target} is not a slave of {}; nothing was changed", spec.bond),
                );
            }
            Some(false) => {
                return Decision::enter(
                    Phase::Failed,
                    "TargetSlaveNoCarrier",
                    format!("{target} has no carrier; nothing was changed"),
                );
            }
            Some(true) => {}
        },
        None => {
            if !bond.slaves.iter().any(|(_, up)| *up) {
                return Decision::enter(
                    Phase::Failed,
                    "NoSlaveHasCarrier",
                    format!("no slave of {} has carrier; nothing was changed", spec.bond),
                );
            }
        }
    }
    let Some(interface) = &facts.storage_interface else {
        return late(
            "WaitingForHostConfig",
            format!(
                "the storage VLAN of {} is not known (no EdgeNode spec.host, no node.conf in fresh facts)",
                spec.node_name
            ),
        );
    };
    if !facts.unknown_peers.is_empty() {
        return late(
            "WaitingForPeerAddresses",
            format!(
                "the storage address of DRBD peer(s) {} is not known: the probe could not check them",
                facts.unknown_peers.join(", ")
            ),
        );
    }
    let mut d = Decision::enter(
        Phase::Flipping,
        "FlipStarted",
        format!(
            "{} on {}: {} → {}, probing {} over {interface}",
            spec.bond,
            spec.node_name,
            spec.from.to_arg(),
            spec.target_state().to_arg(),
            if facts.peers.is_empty() {
                "no DRBD peer".to_owned()
            } else {
                facts.peers.join(", ")
            }
        ),
    );
    d.task = Some(request(spec, uid, interface, &facts.peers));
    d
}

fn request(spec: &BondFlipSpec, uid: &str, interface: &str, peers: &[String]) -> TaskRequest {
    TaskRequest {
        key: task_key(uid, &spec.node_name),
        node: spec.node_name.clone(),
        step: StepName::BondFlip.as_str().to_owned(),
        args: step_args(spec, interface, peers),
    }
}

fn flipping(
    spec: &BondFlipSpec,
    uid: &str,
    facts: &Facts,
    task: Option<&TaskResult>,
    waited: i64,
) -> Decision {
    let Some(task) = task else {
        // Entered Flipping but the task's create did not land: create it again, from the same
        // facts the preflight passed on.
        let mut d = Decision::wait(
            "WaitingForAgent",
            format!("the bond-flip task for {} is being created", spec.node_name),
        );
        if let Some(interface) = &facts.storage_interface {
            d.task = Some(request(spec, uid, interface, &facts.peers));
        }
        return d;
    };
    match task.phase {
        Some(NodeTaskPhase::Succeeded) => Decision::enter(
            Phase::Verifying,
            "FlipApplied",
            format!(
                "the agent flipped {} and every probe passed: {}",
                spec.bond, task.message
            ),
        ),
        Some(NodeTaskPhase::Failed) if task.output.starts_with(REVERTED) => Decision::enter(
            Phase::RollingBack,
            "RevertedOnNode",
            format!("the agent reverted the flip on the node: {}", task.message),
        ),
        Some(NodeTaskPhase::Failed) => Decision::enter(
            Phase::Failed,
            "FlipFailed",
            format!("the bond-flip task failed: {}", task.message),
        ),
        _ if waited > i64::from(TASK_TIMEOUT_SECONDS) + FLIPPING_GRACE_SECONDS => Decision::enter(
            Phase::RollingBack,
            "NotConfirmed",
            format!(
                "the bond-flip task has not finished {waited}s after it was created; the agent reverts a flip it cannot confirm within {TASK_TIMEOUT_SECONDS}s"
            ),
        ),
        _ => Decision::wait(
            "WaitingForAgent",
            format!("the agent of {} runs the flip", spec.node_name),
        ),
    }
}

/// The bond in facts read after `after` (a task's end, a phase's start).
fn seen_after(facts: &Facts, after: Option<i64>) -> Option<&HostBond> {
    facts
        .host
        .as_ref()
        .filter(|h| after.is_none_or(|a| h.observed_at >= a))
        .and_then(|h| h.bond.as_ref())
}

fn verifying(spec: &BondFlipSpec, facts: &Facts, task: Option<&TaskResult>, waited: i64) -> Decision {
    let target = spec.target_state();
    let finished = task.and_then(|t| t.finished_at);
    let Some(bond) = seen_after(facts, finished) else {
        return if waited > WAIT_TIMEOUT_SECONDS {
            Decision::enter(
                Phase::Failed,
                "NotVerified",
                format!(
                    "no host facts read after the flip in {waited}s: whether {} is in {} is not known",
                    spec.bond,
                    target.to_arg()
                ),
            )
        } else {
            Decision::wait(
                "WaitingForFacts",
                format!("waiting for host facts read after the flip of {}", spec.bond),
            )
        };
    };
    let mut d = if target.matches(bond.mode, bond.active_slave.as_deref()) {
        Decision::enter(
            Phase::Completed,
            "FlipCompleted",
            format!("{} is in {}", spec.bond, bond.describe()),
        )
    } else if spec.from.matches(bond.mode, bond.active_slave.as_deref()) {
        Decision::enter(
            Phase::RolledBack,
            "RevertedOnNode",
            format!(
                "{} is back in {}: the agent reverted the flip it could not confirm",
                spec.bond,
                bond.describe()
            ),
        )
    } else {
        Decision::enter(
            Phase::Failed,
            "BondInUnexpectedState",
            format!(
                "{} is in {}, neither the flip's target {} nor its start {}",
                spec.bond,
                bond.describe(),
                target.to_arg(),
                spec.from.to_arg()
            ),
        )
    };
    d.observed = Some(bond.state());
    d
}

fn rolling_back(spec: &BondFlipSpec, facts: &Facts, entered: i64, waited: i64) -> Decision {
    match seen_after(facts, Some(entered)) {
        Some(bond) if spec.from.matches(bond.mode, bond.active_slave.as_deref()) => {
            let mut d = Decision::enter(
                Phase::RolledBack,
                "RolledBack",
                format!("{} is back in {}", spec.bond, bond.describe()),
            );
            d.observed = Some(bond.state());
            d
        }
        seen if waited > WAIT_TIMEOUT_SECONDS => {
            let mut d = Decision::enter(
                Phase::Failed,
                "RollbackNotObserved",
                format!(
                    "{} was not seen back in {} {waited}s after the rollback began{}",
                    spec.bond,
                    spec.from.to_arg(),
                    seen.map(|b| format!(" (it is in {})", b.describe()))
                        .unwrap_or_default()
                ),
            );
            d.observed = seen.map(HostBond::state);
            d
        }
        _ => Decision::wait(
            "WaitingForRollback",
            format!(
                "waiting for host facts that show {} back in {}",
                spec.bond,
                spec.from.to_arg()
            ),
        ),
    }
}

/// The status after decision `d`, made at `now` for `generation`: the phase entered (with its
/// history), the bond observed, when it finished, and the conditions `Progressing`, `Complete`
/// and `Failed`, each with the generation.
pub fn status_after(
    before: &BondFlipStatus,
    d: &Decision,
    now: i64,
    generation: Option<i64>,
) -> BondFlipStatus {
    let at = nodewright_kit::clock::time(now);
    let mut s = before.clone();
    s.observed_generation = generation;
    if s.phase.is_none() {
        s.phase = Some(Phase::Pending);
        s.history.push(PhaseTransition {
            phase: Phase::Pending,
            at: at.clone(),
            message: None,
        });
    }
    let (reason, message) = match &d.outcome {
        Outcome::Over => return s,
        Outcome::Wait { reason, message } => (*reason, message.clone()),
        Outcome::Enter {
            phase,
            reason,
            message,
        } => {
            s.phase = Some(*phase);
            s.history.push(PhaseTransition {
                phase: *phase,
                at: at.clone(),
                message: Some(message.clone()),
            });
            if is_terminal(*phase) {
                s.finished_at = Some(at.clone());
            }
            (*reason, message.clone())
        }
    };
    if d.observed.is_some() {
        s.observed = d.observed.clone();
    }
    let phase = s.phase.unwrap_or(Phase::Pending);
    let c = &mut s.conditions;
    let (progressing, complete, failed) = match phase {
        Phase::Completed => (
            ConditionStatus::False,
            ConditionStatus::True,
            ConditionStatus::False,
        ),
        Phase::RolledBack | Phase::Failed => (
            ConditionStatus::False,
            ConditionStatus::False,
            ConditionStatus::True,
        ),
        _ => (
            ConditionStatus::True,
            ConditionStatus::False,
            ConditionStatus::False,
        ),
    };
    set_condition(c, "Progressing", progressing, reason, &message, generation, &at);
    let (complete_reason, complete_message) = if complete == ConditionStatus::True {
        (reason, message.as_str())
    } else {
        ("NotComplete", "")
    };
    set_condition(
        c,
        "Complete",
        complete,
        complete_reason,
        complete_message,
        generation,
        &at,
    );
    let (failed_reason, failed_message) = if failed == ConditionStatus::True {
        (reason, message.as_str())
    } else {
        ("NotFailed", "")
    };
    set_condition(
        c,
        "Failed",
        failed,
        failed_reason,
        failed_message,
        generation,
        &at,
    );
    s
}

pub mod legacy;

#[cfg(test)]
mod tests;
