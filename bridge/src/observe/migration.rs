//! The `Migration` the legacy script runs (`owner: legacy`), from the cluster state's `migration`
//! key and the index's history, named by what it migrates so that it is one object from the
//! request to its end. Migrations the operator owns are its own objects and are skipped here.

use nodewright_api::common::{ClusterRef, WorkflowOwner};
use nodewright_api::migration::{MigrationSpec, MigrationStatus};
use nodewright_kit::clock::time;
use nodewright_parsers as p;

use super::workflow::{dedupe, history, workflow_conditions};
use super::{Observation, ObserveConfig, Observed, i64_of};
use crate::convert::migration_phase;
use crate::index::Index;

pub(super) fn migration(
    index: &Index,
    config: &ObserveConfig,
    now: i64,
    previous: Option<&Observation>,
    unrepresentable: &mut Vec<String>,
) -> Option<Observed<MigrationSpec, MigrationStatus>> {
    let state = index.cluster.as_ref()?;
    let m = state.migration.value.as_ref()?;
    // The operator mirrors the migrations it owns into the legacy key (so that the scripts hold
    // their upgrades); those have their own Migration object already.
    if m.unknown.get("owner").map(String::as_str) == Some("operator") {
        return None;
    }
    let (key, source) = crate::index::migration_key(m, state.cluster.value.as_ref());
    // Named by what it migrates, so that it is one object from the request to the end.
    let Some(source) = source else {
        unrepresentable.push("the legacy migration names no source node and no primary is known".to_owned());
        return None;
    };
    let short: String = source.chars().take(40).collect();
    let name = format!(
        "legacy-migration-{}-{:08x}",
        short.trim_end_matches(['-', '.']),
        key >> 32
    );
    let joining: Vec<String> = dedupe(&m.joining).into_iter().filter(|n| *n != source).collect();
    if joining.is_empty() {
        unrepresentable.push(format!("{name}: no joining node"));
        return None;
    }
    let Some(phase) = migration_phase(&m.phase) else {
        unrepresentable.push(format!("{name}: unknown migration phase {}", m.phase));
        return None;
    };
    let replicas = m
        .replicas
        .and_then(|r| i32::try_from(r).ok())
        .filter(|r| (2..=3).contains(r) && usize::try_from(*r).unwrap_or(usize::MAX) <= 1 + joining.len());
    let transitions = index.migration_history.get(&key).cloned().unwrap_or_default();
    let prev = previous
        .and_then(|p| p.migrations.iter().find(|o| o.name == name))
        .map(|o| o.status.conditions.as_slice());
    Some(Observed {
        name,
        spec: MigrationSpec {
            owner: WorkflowOwner::Legacy,
            cluster_ref: ClusterRef {
                name: config.cluster_name.clone(),
            },
            source_node: source,
            joining_nodes: joining,
            replicas,
            rollback: m.rollback.as_deref() == Some("requested"),
        },
        status: MigrationStatus {
            observed_generation: None,
            phase: Some(phase),
            history: history(transitions.into_iter(), p::MigrationPhase::KNOWN, |s| {
                migration_phase(&p::MigrationPhase::from_text(s))
            }),
            started_at: m.started.map(|t| time(i64_of(t))),
            finished_at: m.finished.map(|t| time(i64_of(t))),
            conditions: workflow_conditions(
                prev,
                m.phase.is_terminal().then(|| m.phase.as_str()),
                m.msg.as_deref(),
                now,
            ),
        },
    })
}
