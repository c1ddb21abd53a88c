//! The `BondFlip`s requested of the legacy script (`owner: legacy`), one per `bond-flip-<node>`
//! key: the bond's state when the flip was first seen (kept, as the spec is immutable), the
//! target, and the phase history.

use nodewright_api::bondflip::{BondFlipPhase, BondFlipSpec, BondFlipStatus, BondState, BondTarget};
use nodewright_api::common::{PhaseTransition, WorkflowOwner};
use nodewright_kit::clock::time;
use nodewright_parsers as p;

use super::workflow::workflow_conditions;
use super::{Observation, Observed, i64_of};
use crate::convert::bond_mode_named;
use crate::index::Index;

/// The `BondFlip`s requested of the legacy script, one per node that has a `bond-flip-<node>` key.
pub(super) fn bond_flips(
    index: &Index,
    now: i64,
    previous: Option<&Observation>,
    unrepresentable: &mut Vec<String>,
) -> Vec<Observed<BondFlipSpec, BondFlipStatus>> {
    let Some(state) = &index.cluster else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (node, field) in &state.bond_flips {
        let Some(flip) = &field.value else { continue };
        out.extend(bond_flip(index, now, previous, node, flip, unrepresentable));
    }
    out
}

/// The flip `flip` of `node`'s bond; `None` when the node's status is unknown or its bond mode not
/// one the API knows, or, with a sentence in `unrepresentable`, when the flip cannot be a valid
/// object.
fn bond_flip(
    index: &Index,
    now: i64,
    previous: Option<&Observation>,
    node: &str,
    flip: &p::BondFlip,
    unrepresentable: &mut Vec<String>,
) -> Option<Observed<BondFlipSpec, BondFlipStatus>> {
    let name = flip_name(node, flip);
    let status = index
        .nodes
        .get(node)
        .and_then(|e| e.config_map.as_ref())
        .and_then(|c| c.status.value.as_ref())?;
    let current = BondState {
        mode: bond_mode_named(&status.bond_mode)?,
        active_slave: status.bond_active.clone(),
    };
    // The state the flip started from: kept from the first observation of the request (the
    // spec is immutable); a flip first seen already handled has no known starting point.
    let prev = previous.and_then(|p| p.bond_flips.iter().find(|o| o.name == name));
    let from = match (prev, &flip.state, logged_start(index, node, status, flip)) {
        (Some(prev), _, _) => prev.spec.from.clone(),
        (None, p::BondFlipState::Requested, _) => current.clone(),
        (None, _, Some(logged)) => logged,
        (None, _, None) => {
            unrepresentable.push(format!(
                "{name}: first seen {}, the bond's state before the flip is unknown",
                flip.state
            ));
            return None;
        }
    };
    let to = match target(&name, flip) {
        Ok(to) => to,
        Err(why) => {
            unrepresentable.push(why);
            return None;
        }
    };
    let differs = to.mode.is_some_and(|m| m != from.mode)
        || to
            .active_slave
            .as_ref()
            .is_some_and(|s| from.active_slave.as_ref() != Some(s));
    if !differs {
        unrepresentable.push(format!("{name}: the bond is already in the requested state"));
        return None;
    }
    let phase = phase_of(&flip.state);
    let hist = phase_history(prev, flip, phase, now);
    let terminal = match phase {
        BondFlipPhase::Completed => Some("COMPLETED"),
        // A bond flip has no rollback: it failed, the script says why.
        BondFlipPhase::Failed => Some("FLIP_FAILED"),
        _ => None,
    };
    Some(Observed {
        spec: BondFlipSpec {
            owner: WorkflowOwner::Legacy,
            node_name: node.to_owned(),
            bond: status.bond.clone(),
            from,
            to,
        },
        status: BondFlipStatus {
            observed_generation: None,
            phase: Some(phase),
            history: hist,
            observed: Some(current),
            finished_at: flip.done.filter(|_| terminal.is_some()).map(|t| time(i64_of(t))),
            conditions: workflow_conditions(
                prev.map(|p| p.status.conditions.as_slice()),
                terminal,
                flip.msg.as_deref(),
                now,
            ),
        },
        name,
    })
}

/// For a mode flip handled before the bridge saw the request, the script's log names the mode it
/// changed from.
fn logged_start(index: &Index, node: &str, status: &p::NodeStatus, flip: &p::BondFlip) -> Option<BondState> {
    index
        .nodes
        .get(node)
        .and_then(|e| e.log.as_ref())
        .and_then(|l| l.last_mode_change.as_ref())
        .filter(|(bond, _, to)| {
            *bond == status.bond && flip.action == p::BondFlipAction::Mode && *to == flip.value
        })
        .and_then(|(_, from, _)| bond_mode_named(from))
        .map(|mode| BondState {
            mode,
            active_slave: None,
        })
}

/// What the flip `name` asks of the bond, or the sentence saying why it cannot be represented.
fn target(name: &str, flip: &p::BondFlip) -> Result<BondTarget, String> {
    match flip.action {
        p::BondFlipAction::Mode => match bond_mode_named(&flip.value) {
            Some(m) => Ok(BondTarget {
                mode: Some(m),
                active_slave: None,
            }),
            None => Err(format!("{name}: unknown bond mode {}", flip.value)),
        },
        p::BondFlipAction::Active => Ok(BondTarget {
            mode: None,
            active_slave: Some(flip.value.clone()),
        }),
        p::BondFlipAction::Unknown(ref a) => Err(format!("{name}: unknown bond flip action {a}")),
    }
}

/// The flip's object name: the node and the flip's id (or its request time), as a name allows.
fn flip_name(node: &str, flip: &p::BondFlip) -> String {
    let id = flip
        .id
        .clone()
        .or_else(|| flip.requested.map(|r| r.to_string()))
        .unwrap_or_else(|| "0".to_owned());
    let id: String = id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("legacy-bondflip-{node}-{id}")
}

/// The flip's phase from the script's state for it.
fn phase_of(state: &p::BondFlipState) -> BondFlipPhase {
    match state {
        p::BondFlipState::Requested => BondFlipPhase::Pending,
        p::BondFlipState::Applied => BondFlipPhase::Completed,
        p::BondFlipState::Failed | p::BondFlipState::Unknown(_) => BondFlipPhase::Failed,
    }
}

/// The history kept from the previous observation `prev`, with `phase` added when it is new: at
/// the request's time for `Pending`, else when the script handled the flip (or `now`).
fn phase_history(
    prev: Option<&Observed<BondFlipSpec, BondFlipStatus>>,
    flip: &p::BondFlip,
    phase: BondFlipPhase,
    now: i64,
) -> Vec<PhaseTransition<BondFlipPhase>> {
    let mut hist = prev.map(|p| p.status.history.clone()).unwrap_or_default();
    if hist.last().map(|h| h.phase) != Some(phase) {
        let at = match phase {
            BondFlipPhase::Pending => flip.requested.map(i64_of),
            _ => flip.done.map(i64_of),
        };
        hist.push(PhaseTransition {
            phase,
            at: time(at.unwrap_or(now)),
            message: flip.msg.clone(),
        });
    }
    hist
}
