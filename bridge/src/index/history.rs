//! The history of workflow transitions (storage upgrades and migrations), merged from the three
//! places the legacy script shows them: the site-wide blobs, a node's upgrade-state annotation and
//! its log. Bounded per workflow instance and per index, so an index running for months stays
//! small.

use std::collections::{BTreeMap, BTreeSet};

use nodewright_parsers as p;

use super::{Index, Transition};

/// Upgrade and migration history kept per workflow instance; older instances are dropped beyond
/// this many, so an index running for months stays bounded.
const KEEP_INSTANCES: usize = 8;
/// Transitions kept per workflow instance.
const KEEP_TRANSITIONS: usize = 512;

impl Index {
    /// Records the transitions the current upgrade and migration blobs show.
    pub(super) fn record_workflow_transitions(&mut self) {
        let Some(state) = &self.cluster else {
            return;
        };
        if let Some(u) = &state.upgrade.value
            && let (Some(started), Some(since)) = (u.started, u.since)
        {
            let node = u
                .node
                .clone()
                .filter(|_| !matches!(u.state, p::UpgradeState::Pending));
            let t = Transition {
                at: i64::try_from(since).unwrap_or(i64::MAX),
                state: u.state.as_str().to_owned(),
                node,
                message: u.msg.clone(),
            };
            insert_bounded(&mut self.upgrade_history, started, t);
        }
        if let Some(m) = &state.migration.value
            && let Some(since) = m.since
        {
            let key = migration_key(m, state.cluster.value.as_ref()).0;
            let t = Transition {
                at: i64::try_from(since).unwrap_or(i64::MAX),
                state: m.phase.as_str().to_owned(),
                node: None,
                message: m.msg.clone(),
            };
            insert_bounded(&mut self.migration_history, key, t);
        }
    }

    pub(super) fn record_node_upgrade_state(&mut self, node: &str, a: &p::UpgradeStateAnnotation) {
        // The annotation carries no `started`: it belongs to the current upgrade when the versions
        // match, which is the only upgrade whose history is shown.
        let Some(started) = self
            .cluster
            .as_ref()
            .and_then(|c| c.upgrade.value.as_ref())
            .filter(|u| u.to.as_deref() == Some(a.to.as_str()))
            .and_then(|u| u.started)
        else {
            return;
        };
        let t = Transition {
            at: i64::try_from(a.since).unwrap_or(i64::MAX),
            state: a.state.as_str().to_owned(),
            node: Some(node.to_owned()),
            message: None,
        };
        insert_bounded(&mut self.upgrade_history, started, t);
    }

    pub(super) fn record_logged_transition(&mut self, workflow: Workflow, t: Transition) {
        let cluster = self.cluster.as_ref();
        match workflow {
            Workflow::Upgrade => {
                if let Some(started) = cluster
                    .and_then(|c| c.upgrade.value.as_ref())
                    .and_then(|u| u.started)
                {
                    insert_bounded(&mut self.upgrade_history, started, t);
                }
            }
            Workflow::Migration => {
                if let Some(key) = cluster.and_then(|c| {
                    let m = c.migration.value.as_ref()?;
                    Some(migration_key(m, c.cluster.value.as_ref()).0)
                }) {
                    insert_bounded(&mut self.migration_history, key, t);
                }
            }
        }
    }
}

/// What identifies one legacy migration in every phase: its source (the primary when the request
/// names none) and its joining nodes. The blob has no id, and its times change as it runs (`since`
/// at `PENDING` is the request, `started` appears when it starts). Returns a key for the history
/// and the source.
pub fn migration_key(m: &p::Migration, cluster: Option<&p::ClusterBlob>) -> (u64, Option<String>) {
    let source = m.source.clone().or_else(|| cluster.map(|c| c.primary.clone()));
    let text = format!(
        "{}|{}",
        source.as_deref().unwrap_or_default(),
        m.joining.join(",")
    );
    let hash = crate::fingerprint::of_bytes(text.as_bytes());
    (hash, source)
}

#[derive(Clone, Copy)]
pub(super) enum Workflow {
    Upgrade,
    Migration,
}

/// Adds a transition; the same state entered at the same time on the same node from two sources
/// (the blob, an annotation, a log line) is one transition, the message kept when one has it.
fn insert_bounded(history: &mut BTreeMap<u64, BTreeSet<Transition>>, key: u64, t: Transition) {
    let set = history.entry(key).or_default();
    let duplicate = set
        .iter()
        .find(|o| o.at == t.at && o.state == t.state && o.node == t.node)
        .cloned();
    match duplicate {
        Some(old) if old.message.is_none() && t.message.is_some() => {
            set.remove(&old);
            set.insert(t);
        }
        Some(_) => {}
        None => {
            set.insert(t);
            while set.len() > KEEP_TRANSITIONS {
                set.pop_first();
            }
        }
    }
    while history.len() > KEEP_INSTANCES {
        history.pop_first();
    }
}
