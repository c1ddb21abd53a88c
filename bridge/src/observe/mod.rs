//! Pure status computation: from the [`Index`] and the time, the status of every Nodewright object
//! the bridge maintains — `EdgeCluster`, one `EdgeNode` per node, and the workflow objects the
//! legacy script is running (`StorageUpgrade`, `Migration`, `BondFlip`, with `owner: legacy`) —
//! and the health rollup, node up to cluster.
//!
//! No I/O and no clock: `now` is an argument, and the previous observation is passed in so that a
//! condition keeps its `lastTransitionTime` while its status does not change. Computing twice from
//! the same index and time gives the same result, so the writer can skip everything unchanged.
//!
//! One file per object: `node` (an `EdgeNode`'s status) and `node_health` (its conditions),
//! `cluster` (the `EdgeCluster` and the roll-up), `upgrade`, `migration` and `bond_flip` (the
//! legacy-owned workflow objects) with what they share in `workflow`; `conditions` keeps a
//! condition list's transition times.

use std::collections::BTreeMap;

use nodewright_api::bondflip::{BondFlipSpec, BondFlipStatus};
use nodewright_api::edgecluster::{EdgeClusterSpec, EdgeClusterStatus};
use nodewright_api::edgenode::{EdgeNodeSpec, EdgeNodeStatus};
use nodewright_api::migration::{MigrationSpec, MigrationStatus};
use nodewright_api::storageupgrade::{StorageUpgradeSpec, StorageUpgradeStatus};
use nodewright_kit::clock::time;
use nodewright_parsers::contract;
use serde::Serialize;

use crate::index::{Dirty, Index};

mod bond_flip;
mod cluster;
mod conditions;
mod facts;
mod migration;
mod node;
mod node_health;
#[cfg(test)]
mod tests;
mod upgrade;
mod workflow;

pub use facts::AGENT_FACTS_FRESH_SECONDS;
pub use workflow::workflow_conditions;

use bond_flip::bond_flips;
use cluster::cluster;
use migration::migration;
use node::{node_status, observable, observed_node};
use upgrade::upgrade;

/// What the status computation needs to know besides the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObserveConfig {
    /// Name of the `EdgeCluster` for this site.
    pub cluster_name: String,
    /// Namespace of the legacy objects (recorded in the `EdgeCluster` spec).
    pub legacy_namespace: String,
    /// Name of the legacy DaemonSet (recorded in the `EdgeCluster` spec).
    pub legacy_daemon_set: String,
    /// A node whose last legacy heartbeat is older than this many seconds is `LegacyStale`.
    pub stale_after_seconds: i64,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            cluster_name: "site".to_owned(),
            legacy_namespace: contract::NAMESPACE.to_owned(),
            legacy_daemon_set: contract::DAEMON_SET.to_owned(),
            stale_after_seconds: 300,
        }
    }
}

/// One object the bridge maintains: its spec (intent, or for `owner: legacy` workflows what the
/// script is doing) and its observed status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observed<S, T> {
    /// The object's name (in the bridge's namespace).
    pub name: String,
    /// Its spec.
    pub spec: S,
    /// Its status.
    pub status: T,
}

/// Everything the bridge computed from one state of the index.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Observation {
    /// The site, when the legacy cluster state exists or any node was seen.
    pub cluster: Option<Observed<EdgeClusterSpec, EdgeClusterStatus>>,
    /// One per node, by node name.
    pub nodes: BTreeMap<String, Observed<EdgeNodeSpec, EdgeNodeStatus>>,
    /// Storage upgrades the legacy script runs or ran.
    pub upgrades: Vec<Observed<StorageUpgradeSpec, StorageUpgradeStatus>>,
    /// Migrations the legacy script runs or ran.
    pub migrations: Vec<Observed<MigrationSpec, MigrationStatus>>,
    /// Bond flips requested of the legacy script.
    pub bond_flips: Vec<Observed<BondFlipSpec, BondFlipStatus>>,
    /// Legacy state the bridge saw but cannot represent as a valid object, one sentence each.
    pub unrepresentable: Vec<String>,
}

fn rfc3339(unix: i64) -> String {
    time(unix).0.to_string()
}

/// `WAIT_RESYNC` → `WaitResync`: the legacy spelling to the API's enum spelling.
fn pascal(screaming: &str) -> String {
    screaming
        .split(['_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect()
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Computes every status from the index at `now`. `previous` is the last observation, whose
/// condition transition times are kept where a condition's status did not change.
pub fn observe(
    index: &Index,
    config: &ObserveConfig,
    now: i64,
    previous: Option<&Observation>,
) -> Observation {
    let mut out = previous.cloned().unwrap_or_default();
    observe_changed(index, config, now, &mut out, &Dirty::everything());
    out
}

/// Brings `last` up to date at `now` where the index changed: the nodes `dirty` names (all of
/// them when `dirty.all`) are computed again, the others keep their status; the site and the
/// workflow objects are always computed again (they are few, and the site rolls up every node).
/// Equal to [`observe`] when every node that changed is named, which is what a large site needs:
/// one changed node costs one node's computation, not the whole site's.
pub fn observe_changed(
    index: &Index,
    config: &ObserveConfig,
    now: i64,
    last: &mut Observation,
    dirty: &Dirty,
) {
    if dirty.all {
        // Every node computed again, each from its previous status; a node the index no longer
        // shows goes with what is left of `before`.
        let mut before = std::mem::take(&mut last.nodes);
        for (name, entry) in index.nodes.iter().filter(|(_, e)| observable(e)) {
            let prev = before.remove(name);
            let status = node_status(index, name, entry, config, now, prev.as_ref().map(|o| &o.status));
            last.nodes
                .insert(name.clone(), observed_node(name, config, status));
        }
    } else {
        // Only the nodes named: the others stay where they are, untouched, so that a change to one
        // node of thousands costs that node (and the site's roll-up below). A node named that the
        // index no longer shows has left.
        for name in &dirty.nodes {
            match index.nodes.get(name).filter(|e| observable(e)) {
                Some(entry) => {
                    let prev = last.nodes.remove(name);
                    let status =
                        node_status(index, name, entry, config, now, prev.as_ref().map(|o| &o.status));
                    last.nodes
                        .insert(name.clone(), observed_node(name, config, status));
                }
                None => {
                    last.nodes.remove(name);
                }
            }
        }
    }
    let previous = Observation {
        cluster: last.cluster.take(),
        nodes: BTreeMap::new(),
        upgrades: std::mem::take(&mut last.upgrades),
        migrations: std::mem::take(&mut last.migrations),
        bond_flips: std::mem::take(&mut last.bond_flips),
        unrepresentable: Vec::new(),
    };
    let previous = Some(&previous);
    last.unrepresentable.clear();
    if let Some(u) = upgrade(index, config, now, previous, &mut last.unrepresentable) {
        last.upgrades.push(u);
    }
    if let Some(m) = migration(index, config, now, previous, &mut last.unrepresentable) {
        last.migrations.push(m);
    }
    last.bond_flips = bond_flips(index, now, previous, &mut last.unrepresentable);
    if index.cluster.is_some() || !last.nodes.is_empty() {
        let prev = previous.and_then(|p| p.cluster.as_ref()).map(|c| &c.status);
        last.cluster = Some(cluster(index, config, last, now, prev));
    }
}
