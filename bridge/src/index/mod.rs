//! The bridge's in-memory index of legacy state: what the watches (or an offline bundle) delivered,
//! parsed once per change and kept per node, with the last good value of every field and the
//! history of workflow transitions seen so far.
//!
//! The index is synchronous and performs no I/O: sources call [`Index::apply_config_map`],
//! [`Index::apply_node`], [`Index::feed_log`] and their `delete_*` / `reset_*` counterparts, and the
//! pure status computation in [`crate::observe`] reads it. Times are passed in by the caller.
//!
//! Bad input never removes what was known: a value that does not parse keeps the previous good
//! value, which is then marked stale, and records a [`Diagnostic`] saying where and what.
//!
//! This file holds the [`Index`] and its bookkeeping (new errors, the change set, node entries).
//! What it holds is typed in `state`; it is fed by source, one file each: `config_maps` (the
//! site-wide, node and takeover ConfigMaps), `nodes` (Node objects), `logs` (the node's legacy
//! log), `facts` (the agents' `NodeFacts`, which are not legacy state but are read beside it); `history` records the workflow transitions all three show.

use std::collections::{BTreeMap, BTreeSet};

mod config_maps;
mod facts;
mod history;
mod logs;
mod nodes;
mod state;
#[cfg(test)]
pub(crate) mod tests;

pub use config_maps::TAKEOVER_CONFIGMAP;
pub use history::migration_key;
pub use state::{
    ClusterState, Diagnostic, Dirty, Field, IndexStats, LegacyNames, NodeConfigMap, NodeEntry, NodeLog,
    NodeObject, Transition, UpgradeEvent, UpgradeLogged,
};

use config_maps::ListedConfigMaps;

/// The index. See the module documentation.
#[derive(Debug, Default)]
pub struct Index {
    names: LegacyNames,
    /// The site-wide ConfigMap, when it exists.
    pub cluster: Option<ClusterState>,
    /// Nodes by name: every node seen in a Node object, a node ConfigMap or a log.
    pub nodes: BTreeMap<String, NodeEntry>,
    /// Storage-upgrade transitions seen, keyed by the upgrade's `started` epoch.
    pub upgrade_history: BTreeMap<u64, BTreeSet<Transition>>,
    /// Migration transitions seen, keyed by [`migration_key`].
    pub migration_history: BTreeMap<u64, BTreeSet<Transition>>,
    /// The data of Nodewright's takeover ConfigMap in the legacy namespace, when it exists.
    pub takeover: Option<BTreeMap<String, String>>,
    /// Parse errors that appeared since the last [`Index::take_new_errors`].
    new_errors: Vec<Diagnostic>,
    /// What changed since the last [`Index::take_dirty`].
    dirty: Dirty,
    /// What a ConfigMap relist in progress has listed so far.
    relisting_config_maps: Option<ListedConfigMaps>,
    /// The Nodes a Node relist in progress has listed so far.
    relisting_nodes: Option<BTreeSet<String>>,
    /// The agents' host facts by node (`NodeFacts`), as last published.
    agent_facts: BTreeMap<String, nodewright_api::nodefacts::NodeFactsSpec>,
    /// The nodes a `NodeFacts` relist in progress has listed so far.
    relisting_facts: Option<BTreeSet<String>>,
    /// What has been taken in.
    pub stats: IndexStats,
}

impl Index {
    /// An empty index for the legacy objects named by `names`.
    pub fn new(names: LegacyNames) -> Self {
        Index {
            names,
            ..Index::default()
        }
    }

    /// The legacy object names this index recognises.
    pub fn names(&self) -> &LegacyNames {
        &self.names
    }

    /// Parse errors that appeared since the last call (each error once, when it first appears).
    pub fn take_new_errors(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.new_errors)
    }

    /// What changed since the last call.
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    fn node(&mut self, name: &str) -> &mut NodeEntry {
        self.mark_dirty(name);
        self.nodes.entry(name.to_owned()).or_default()
    }

    fn mark_dirty(&mut self, name: &str) {
        if !self.dirty.all {
            self.dirty.nodes.insert(name.to_owned());
        }
    }

    fn prune_node(&mut self, name: &str) {
        if let Some(e) = self.nodes.get(name)
            && e.object.is_none()
            && e.config_map.is_none()
            && e.log.is_none()
        {
            self.nodes.remove(name);
        }
    }
}
