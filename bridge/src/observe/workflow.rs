//! What the workflow objects (`StorageUpgrade`, `Migration`, `BondFlip`) share: their phase
//! history in the order it happened and their `Complete`/`Failed` conditions, the latter shared
//! with the operator's own workflows.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use nodewright_api::common::{ConditionStatus, PhaseTransition, condition_type as ct};
use nodewright_kit::clock::time;
use serde::de::DeserializeOwned;

use super::conditions::conditions;
use crate::index::Transition;

/// Transitions in the order they happened: by time, and within one second (the legacy clock's
/// resolution; the script often passes several phases in one iteration) by their place in the
/// state machine, `known` listing the states in order.
pub(super) fn history<P: DeserializeOwned>(
    transitions: impl Iterator<Item = Transition>,
    known: &[&str],
    convert: impl Fn(&str) -> Option<P>,
) -> Vec<PhaseTransition<P>> {
    let mut transitions: Vec<Transition> = transitions.collect();
    transitions.sort_by_key(|t| {
        (
            t.at,
            known.iter().position(|k| *k == t.state).unwrap_or(usize::MAX),
        )
    });
    transitions
        .into_iter()
        .filter_map(|t| {
            Some(PhaseTransition {
                phase: convert(&t.state)?,
                at: time(t.at),
                message: t.message,
            })
        })
        .collect()
}

/// The `Complete` and `Failed` conditions of a workflow (`terminal`: its final state as the
/// legacy script spells it, `None` while it runs). Shared by the bridge's observed workflows and
/// the operator's own, so that both mean the same.
pub fn workflow_conditions(
    previous: Option<&[Condition]>,
    terminal: Option<&str>,
    message: Option<&str>,
    now: i64,
) -> Vec<Condition> {
    let msg = message.unwrap_or_default().to_owned();
    let (complete, failed) = match terminal {
        Some("COMPLETED") => (
            (
                ConditionStatus::True,
                "Completed".to_owned(),
                "the workflow completed".to_owned(),
            ),
            (ConditionStatus::False, "Completed".to_owned(), String::new()),
        ),
        Some("ROLLED_BACK") => (
            (ConditionStatus::False, "RolledBack".to_owned(), msg.clone()),
            (ConditionStatus::True, "RolledBack".to_owned(), msg),
        ),
        // An upgrade or migration reaches FAILED only when its rollback failed.
        Some("FAILED") => (
            (ConditionStatus::False, "Failed".to_owned(), msg.clone()),
            (ConditionStatus::True, "RollbackFailed".to_owned(), msg),
        ),
        Some(_) => (
            (ConditionStatus::False, "Failed".to_owned(), msg.clone()),
            (ConditionStatus::True, "Failed".to_owned(), msg),
        ),
        None => (
            (ConditionStatus::False, "InProgress".to_owned(), String::new()),
            (ConditionStatus::False, "InProgress".to_owned(), String::new()),
        ),
    };
    conditions(
        previous,
        vec![
            (ct::COMPLETE, complete.0, complete.1, complete.2),
            (ct::FAILED, failed.0, failed.1, failed.2),
        ],
        now,
    )
}

pub(super) fn dedupe(names: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}
