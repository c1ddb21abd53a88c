//! A migration's status as the decision reads and writes it: the phase it is in and since when,
//! and entering a phase (history, start and end times, the `Complete`/`Failed` conditions).

use nodewright_api::migration::{MigrationPhase as Phase, MigrationStatus};

use super::legacy::legacy_phase;

/// The phase the migration is in (`Pending` before its first status) and when it entered it.
pub fn current(status: &MigrationStatus) -> (Phase, Option<i64>) {
    let phase = status.phase.unwrap_or(Phase::Pending);
    let since = status.history.last().map(|t| t.at.0.as_second());
    (phase, since)
}

pub(super) fn is_terminal(p: Phase) -> bool {
    matches!(p, Phase::Completed | Phase::RolledBack | Phase::Failed)
}

/// Records that the migration entered `phase` at `now`: its phase, history, start and end times,
/// and the `Complete`/`Failed` conditions once it ends.
pub fn enter(
    status: &mut MigrationStatus,
    phase: Phase,
    message: Option<String>,
    now: i64,
    generation: Option<i64>,
) {
    let at = nodewright_kit::clock::time(now);
    if status.started_at.is_none() && phase != Phase::Pending {
        status.started_at = Some(at.clone());
    }
    if is_terminal(phase) {
        status.finished_at = Some(at.clone());
    }
    let outcome = nodewright_bridge::observe::workflow_conditions(
        Some(&status.conditions),
        is_terminal(phase).then(|| legacy_phase(phase)),
        message.as_deref(),
        now,
    );
    status
        .conditions
        .retain(|c| !outcome.iter().any(|o| o.type_ == c.type_));
    status.conditions.extend(outcome);
    status.phase = Some(phase);
    status.observed_generation = generation;
    status
        .history
        .push(nodewright_api::common::PhaseTransition { phase, at, message });
}

/// Whether the migration is over.
pub fn is_over(status: &MigrationStatus) -> bool {
    status.phase.is_some_and(is_terminal)
}

/// Whether the migration reached `phase` at some point.
pub fn reached(status: &MigrationStatus, phase: Phase) -> bool {
    status.history.iter().any(|t| t.phase == phase)
}
