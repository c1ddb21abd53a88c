//! The shape every workflow controller has: **gather → plan → write**.
//!
//! - *Gather* is the operator loop's job: watches keep the bridge's index of the legacy state and
//!   stores of Nodewright's own objects, and at the start of a turn it lends them to the
//!   controllers as one read-only [`Snapshot`].
//! - *Plan* is the controller's: [`WorkflowController::plan`] is a pure function from the snapshot
//!   to the [`Write`]s it wants, in order. It reads no clock, calls no API and keeps no state
//!   between turns: everything it needs is in the snapshot, so every decision is tested with plain
//!   `#[test]`s and no API server.
//! - *Write* is the one writer's ([`crate::writer::Writer`]): it checks leadership before each
//!   write and sends each one guarded — a `resourceVersion` precondition, a create that a repeat
//!   cannot duplicate, or a server-side apply of the operator's own fields — so that a deposed
//!   leader or a decision made on stale state never lands.
//!
//! A controller plans one step at a time. What it wrote comes back through the watches and
//! triggers the next turn, which plans the next step from what the API server now holds; there is
//! no inner decide → act loop. A write that fails (a conflict, a lost leadership) leaves the rest
//! of its [`Sequence`] unsent, and the next turn decides again.
//!
//! Adding a workflow means adding one module here that implements [`WorkflowController`], with
//! unit tests of its `plan`, and naming it in [`all`].

pub mod bondflip;
pub mod bootstrap;
pub mod migration;
pub mod taints;
pub mod upgrade;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Taint};
use nodewright_api::bondflip::{BondFlip, BondFlipStatus};
use nodewright_api::edgecluster::EdgeCluster;
use nodewright_api::edgenode::EdgeNode;
use nodewright_api::hostconfig::HostConfig;
use nodewright_api::migration::{Migration, MigrationStatus};
use nodewright_api::nodefacts::NodeFacts;
use nodewright_api::nodetask::NodeTask;
use nodewright_api::storageupgrade::{StorageUpgrade, StorageUpgradeStatus};
use nodewright_bridge::index::Index;

use crate::takeover::Workflow;

/// What a Node looked like when last seen, as much as a guarded patch of it needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeMeta {
    /// `metadata.resourceVersion`: the precondition of every patch decided from this state.
    pub resource_version: String,
    /// `spec.taints`, whole (a merge patch replaces the list, so the others are written back).
    pub taints: Vec<Taint>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

/// A pod bound to a node, as much as draining the node needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodMeta {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.nodeName`.
    pub node: String,
    /// Controlled by a DaemonSet: not evicted (as `kubectl drain --ignore-daemonsets`).
    pub daemon_set: bool,
    /// A static (mirror) pod: the kubelet owns it, the Eviction API cannot remove it.
    pub mirror: bool,
    /// Phase `Succeeded` or `Failed`: holds nothing open, nothing to evict.
    pub finished: bool,
}

/// The site-wide storage gate, when held: the `coordination.k8s.io/v1` Lease
/// [`GATE_LEASE`] in the operator's site namespace, which exists only while one
/// storage-changing workflow (a StorageUpgrade or a Migration) holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// `spec.holderIdentity`: `StorageUpgrade/<name>` or `Migration/<name>`.
    pub holder: String,
    /// The Lease's `metadata.resourceVersion`: the precondition of its release.
    pub resource_version: String,
}

/// The name of the Lease that is the site-wide storage gate.
pub const GATE_LEASE: &str = "nodewright-storage-gate";

/// Everything a controller may read in one turn, as the watches last delivered it.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// Now, in Unix seconds: read once per turn by the loop.
    pub now: i64,
    /// The site's `EdgeCluster`.
    pub cluster: &'a EdgeCluster,
    /// The legacy state (ConfigMaps, Nodes, logs), indexed by the bridge's index.
    pub index: &'a Index,
    /// Every Node by name.
    pub nodes: &'a BTreeMap<String, NodeMeta>,
    /// The `resourceVersion` of the legacy cluster-state ConfigMap, when it exists.
    pub cluster_state_version: Option<&'a str>,
    /// The Migrations of the site's namespace.
    pub migrations: &'a [Migration],
    /// The NodeTasks of the site's namespace.
    pub tasks: &'a [NodeTask],
    /// The StorageUpgrades of the site's namespace.
    pub upgrades: &'a [StorageUpgrade],
    /// The pods bound to the nodes that an active upgrade drains.
    pub pods: &'a [PodMeta],
    /// The site-wide storage gate, when held.
    pub gate: Option<&'a Gate>,
    /// The agents' `NodeFacts` of the site's namespace, one per node that has an agent, fresh or
    /// not: a decision checks `spec.observedAt` against [`Snapshot::now`] before it trusts one
    /// ([`Snapshot::fresh_facts`]).
    pub facts: &'a [NodeFacts],
    /// The site's `EdgeNode`s (their `spec.host`: what each host is meant to look like).
    pub edge_nodes: &'a [EdgeNode],
    /// The BondFlips of the site's namespace (the operator's and the bridge's `owner: legacy`
    /// ones).
    pub bond_flips: &'a [BondFlip],
    /// Settings that the decisions read.
    pub settings: &'a Settings,
}

impl Snapshot<'_> {
    /// The facts `node`'s agent published, when they were read at most
    /// [`AGENT_FACTS_FRESH_SECONDS`] before [`Snapshot::now`] (and not in the future by more
    /// than that: a clock that far ahead proves nothing either).
    pub fn fresh_facts(&self, node: &str) -> Option<&nodewright_api::nodefacts::NodeFactsSpec> {
        self.facts
            .iter()
            .map(|f| &f.spec)
            .find(|f| f.node_name == node)
            .filter(|f| (self.now - f.observed_at.0.as_second()).abs() <= AGENT_FACTS_FRESH_SECONDS)
    }

    /// What `node`'s host is meant to look like, and where that was read: the `EdgeNode`'s
    /// `spec.host` when set (the API is where it changes), else the `node.conf` its agent
    /// reported in fresh facts (the file the legacy script configures the host from). `None`
    /// when neither is known: a workflow that needs it waits.
    pub fn host_config(&self, node: &str) -> Option<(&HostConfig, HostConfigSource)> {
        self.edge_nodes
            .iter()
            .find(|n| n.spec.node_name == node)
            .and_then(|n| n.spec.host.as_ref())
            .map(|h| (h, HostConfigSource::EdgeNode))
            .or_else(|| {
                self.fresh_facts(node)
                    .and_then(|f| f.node_config.as_ref())
                    .map(|h| (h, HostConfigSource::NodeConf))
            })
    }
}

/// Where a node's [`HostConfig`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostConfigSource {
    /// `EdgeNode.spec.host`.
    EdgeNode,
    /// The node's `node.conf`, as its agent reported it in `NodeFacts.spec.nodeConfig`.
    NodeConf,
}

/// How old (seconds) an agent's facts may be and still be decided from: three of the agent's
/// default refresh intervals, as the bridge counts them.
pub const AGENT_FACTS_FRESH_SECONDS: i64 = nodewright_bridge::observe::AGENT_FACTS_FRESH_SECONDS;

/// The operator's settings that decisions read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A node whose script has not reported for this long is not live (seconds).
    pub stale_after: i64,
    /// A migration phase that waits longer than this fails and rolls back (seconds).
    pub migration_timeout: i64,
    /// A per-node upgrade state that waits longer than this fails, and the upgrade rolls back
    /// (seconds).
    pub upgrade_state_timeout: i64,
    /// The rollback of one node that takes longer than this fails the upgrade (seconds).
    pub upgrade_rollback_timeout: i64,
}

impl Settings {
    /// The default per-node upgrade state deadline (seconds).
    pub const DEFAULT_UPGRADE_STATE_TIMEOUT: i64 = 1800;
    /// The default deadline of one node's rollback (seconds).
    pub const DEFAULT_UPGRADE_ROLLBACK_TIMEOUT: i64 = 1800;
}

/// A write that gives up unless the object is still at the `resourceVersion` the decision was
/// made from.
pub type ResourceVersion = String;

/// One write a plan asks for. Every variant says how it is guarded.
#[derive(Clone, Debug)]
pub enum Write {
    /// Create a NodeTask named by its idempotency key. Guard: the name — a repeat is refused as
    /// already existing, and counts as done.
    CreateTask(Box<NodeTask>),
    /// Merge-patch a Node's labels, annotations, taints and `spec.unschedulable`. Guard:
    /// `resourceVersion`.
    PatchNode {
        /// The Node.
        name: String,
        /// The precondition.
        resource_version: ResourceVersion,
        /// Labels to set.
        labels: BTreeMap<String, String>,
        /// Annotations to set (the legacy `vx-rail.io/upgrade-state` mirror).
        annotations: BTreeMap<String, String>,
        /// The whole new taint list, when the taints change.
        taints: Option<Vec<Taint>>,
        /// `spec.unschedulable`, when it changes: `Some(true)` cordons, `Some(false)` uncordons.
        unschedulable: Option<bool>,
        /// What the patch does, one entry per action as `kubectl` would say it (`taint
        /// vx-rail.io/storage-not-ready=resync:NoSchedule`, `label vx-rail.io/role=member`), for
        /// logs and Events.
        what: Vec<String>,
    },
    /// Merge-patch keys of the legacy cluster-state ConfigMap. Guard: `resourceVersion` (the
    /// scripts rewrite its keys from their own snapshots; a patch decided on an older copy must
    /// not overwrite theirs).
    PatchClusterState {
        /// The precondition; `None` only when the ConfigMap was never seen (the patch then fails,
        /// as the ConfigMap does not exist).
        resource_version: Option<ResourceVersion>,
        /// Keys and values.
        data: BTreeMap<String, String>,
    },
    /// Replace a Migration's status. Guard: `resourceVersion`.
    MigrationStatus {
        /// The Migration.
        name: String,
        /// The precondition.
        resource_version: ResourceVersion,
        /// The new status.
        status: Box<MigrationStatus>,
    },
    /// Evict a pod through the Eviction API. Guard: the Eviction API itself (a
    /// PodDisruptionBudget that refuses, 429, stops the sequence; the next turn tries again).
    Evict {
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        name: String,
        /// The node it is bound to (for logs and Events).
        node: String,
    },
    /// Replace a StorageUpgrade's status. Guard: `resourceVersion`.
    StorageUpgradeStatus {
        /// The StorageUpgrade.
        name: String,
        /// The precondition.
        resource_version: ResourceVersion,
        /// The new status.
        status: Box<StorageUpgradeStatus>,
    },
    /// Create a StorageUpgrade (translated from the legacy request key). Guard: the name, derived
    /// from the version requested; AlreadyExists counts as done.
    CreateStorageUpgrade(Box<StorageUpgrade>),
    /// Take the site-wide storage gate. Guard: the create of its Lease ([`GATE_LEASE`]);
    /// AlreadyExists means not acquired, and the sequence stops.
    AcquireGate {
        /// `StorageUpgrade/<name>` or `Migration/<name>`.
        holder: String,
    },
    /// Create a legacy ConfigMap with these keys. Guard: the create (it never overwrites).
    CreateLegacyConfigMap {
        /// Which one.
        name: LegacyConfigMap,
        /// Its keys.
        data: BTreeMap<String, String>,
        /// What it does, for logs and Events.
        what: String,
    },
    /// Server-side apply an `EdgeNode`'s `spec.host` (the node's `node.conf`, adopted into the
    /// API) under the operator's field manager. Guard: never forced — a field another manager (a
    /// person) owns is a conflict, reported and not overwritten.
    ApplyHostConfig {
        /// The `EdgeNode`.
        edge_node: String,
        /// Its `spec.nodeName` (sent with the value, as the schema requires it).
        node_name: String,
        /// The host configuration.
        host: Box<HostConfig>,
    },
    /// Give the site-wide storage gate back. Guard: a delete of its Lease with a
    /// `resourceVersion` precondition; NotFound counts as released.
    ReleaseGate {
        /// Who held it.
        holder: String,
        /// The precondition.
        resource_version: ResourceVersion,
    },
    /// Create a BondFlip (translated from a legacy `bond-flip.<node>` request). Guard: the name,
    /// derived from the request's id; AlreadyExists counts as done.
    CreateBondFlip(Box<BondFlip>),
    /// Replace a BondFlip's status. Guard: `resourceVersion`.
    BondFlipStatus {
        /// The BondFlip.
        name: String,
        /// The precondition.
        resource_version: ResourceVersion,
        /// The new status.
        status: Box<BondFlipStatus>,
    },
}

/// A ConfigMap of the legacy namespace the operator may create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegacyConfigMap {
    /// The cluster-state ConfigMap (`vx-rail-cluster-state`): one that exists already was
    /// created by someone else since the decision read it absent, a conflict (decide again).
    ClusterState,
    /// A node's ConfigMap (`vx-rail-node-<node>`): one that exists already counts as done.
    Node(String),
}

impl Write {
    /// The kind of write, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Write::CreateTask(_) => "task",
            Write::PatchNode { .. } => "node",
            Write::PatchClusterState { .. } => "cluster-state",
            Write::MigrationStatus { .. } => "status",
            Write::Evict { .. } => "eviction",
            Write::StorageUpgradeStatus { .. } => "status",
            Write::CreateStorageUpgrade(_) => "create",
            Write::AcquireGate { .. } | Write::ReleaseGate { .. } => "gate",
            Write::CreateLegacyConfigMap { .. } => "configmap",
            Write::ApplyHostConfig { .. } => "host-config",
            Write::CreateBondFlip(_) => "create",
            Write::BondFlipStatus { .. } => "status",
        }
    }
}

/// Writes that must be made in order: one that fails leaves the rest unsent (a Migration's
/// status is written only after its actions were). Sequences of one plan are independent of each
/// other (one node's conflict does not hold another node back).
#[derive(Clone, Debug)]
pub struct Sequence {
    /// The workflow object the writes act for: the Events that report them are about it (a
    /// Migration; the EdgeCluster for taints), in the namespace the operator owns.
    pub regarding: ObjectReference,
    /// The writes, in order.
    pub writes: Vec<Write>,
}

/// A workflow the operator can own: a pure plan from the snapshot.
pub trait WorkflowController: Send + Sync {
    /// The workflow, whose takeover mode decides whether the plan runs.
    fn workflow(&self) -> Workflow;

    /// What to write this turn.
    fn plan(&self, snapshot: &Snapshot<'_>) -> Vec<Sequence>;
}

/// Every workflow controller the operator runs, in the order their plans are written.
pub fn all() -> Vec<Box<dyn WorkflowController>> {
    vec![
        Box::new(taints::Taints),
        Box::new(migration::Migrations),
        Box::new(upgrade::StorageUpgrades),
        Box::new(bootstrap::Bootstrap),
        Box::new(bondflip::BondFlips),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use nodewright_api::edgecluster::EdgeClusterSpec;
    use nodewright_api::nodefacts::NodeFactsSpec;

    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn facts(node: &str, observed_at: i64) -> NodeFacts {
        NodeFacts::new(
            node,
            NodeFactsSpec {
                node_name: node.into(),
                observed_at: Time(k8s_openapi::jiff::Timestamp::from_second(observed_at).unwrap()),
                boot_id: Some(format!("boot-{node}")),
                bonds: vec![],
                vlans: vec![],
                drbd_resources: vec![],
                satellite: None,
                packages: vec![],
                modules: vec![],
                unreadable: vec![],
                node_config: None,
            },
        )
    }

    #[test]
    fn an_agents_facts_are_decided_from_only_while_they_are_fresh() {
        let cluster = EdgeCluster::new(
            "site",
            serde_json::from_value::<EdgeClusterSpec>(
                serde_json::json!({"profile": {"topology": "SingleNode"}}),
            )
            .unwrap(),
        );
        let index = Index::new(nodewright_bridge::index::LegacyNames::default());
        let nodes = BTreeMap::new();
        let settings = Settings {
            stale_after: 300,
            migration_timeout: 1800,
            upgrade_state_timeout: 1800,
            upgrade_rollback_timeout: 1800,
        };
        let all = [
            facts("fresh", NOW - AGENT_FACTS_FRESH_SECONDS),
            facts("stale", NOW - AGENT_FACTS_FRESH_SECONDS - 1),
            facts("ahead", NOW + AGENT_FACTS_FRESH_SECONDS + 1),
        ];
        let snapshot = Snapshot {
            now: NOW,
            cluster: &cluster,
            index: &index,
            nodes: &nodes,
            cluster_state_version: None,
            migrations: &[],
            tasks: &[],
            upgrades: &[],
            pods: &[],
            gate: None,
            facts: &all,
            edge_nodes: &[],
            bond_flips: &[],
            settings: &settings,
        };
        assert_eq!(
            snapshot.fresh_facts("fresh").and_then(|f| f.boot_id.as_deref()),
            Some("boot-fresh")
        );
        assert!(snapshot.fresh_facts("stale").is_none(), "older than the window");
        assert!(
            snapshot.fresh_facts("ahead").is_none(),
            "a clock far ahead proves nothing"
        );
        assert!(snapshot.fresh_facts("absent").is_none(), "no agent, no facts");
    }

    fn host(storage_ip: &str) -> HostConfig {
        serde_json::from_value(serde_json::json!({
            "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1", "eno2"]},
            "storageVlan": {"id": 100, "address": storage_ip},
            "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
        }))
        .unwrap()
    }

    #[test]
    fn a_nodes_host_config_is_its_edge_nodes_spec_else_the_node_conf_its_agent_reported_fresh() {
        let cluster = EdgeCluster::new(
            "site",
            serde_json::from_value::<EdgeClusterSpec>(
                serde_json::json!({"profile": {"topology": "SingleNode"}}),
            )
            .unwrap(),
        );
        let index = Index::new(nodewright_bridge::index::LegacyNames::default());
        let nodes = BTreeMap::new();
        let settings = Settings {
            stale_after: 300,
            migration_timeout: 1800,
            upgrade_state_timeout: 1800,
            upgrade_rollback_timeout: 1800,
        };
        let reported = |node: &str, at: i64, ip: &str| {
            let mut f = facts(node, at);
            f.spec.node_config = Some(host(ip));
            f
        };
        let all = [
            reported("both", NOW, "10.100.0.1/24"),
            reported("file", NOW, "10.100.0.2/24"),
            reported("old", NOW - AGENT_FACTS_FRESH_SECONDS - 1, "10.100.0.3/24"),
        ];
        let mut spec = nodewright_api::EdgeNodeSpec {
            node_name: "both".into(),
            cluster_ref: None,
            host: Some(host("10.100.0.9/24")),
        };
        let edge_nodes = [EdgeNode::new("both", spec.clone()), {
            spec.node_name = "file".into();
            spec.host = None;
            EdgeNode::new("file", spec)
        }];
        let snapshot = Snapshot {
            now: NOW,
            cluster: &cluster,
            index: &index,
            nodes: &nodes,
            cluster_state_version: None,
            migrations: &[],
            tasks: &[],
            upgrades: &[],
            pods: &[],
            gate: None,
            facts: &all,
            edge_nodes: &edge_nodes,
            bond_flips: &[],
            settings: &settings,
        };
        let ip = |node: &str| {
            snapshot
                .host_config(node)
                .map(|(h, source)| (h.storage_ip().map(str::to_owned), source))
        };
        assert_eq!(
            ip("both"),
            Some((Some("10.100.0.9".into()), HostConfigSource::EdgeNode))
        );
        assert_eq!(
            ip("file"),
            Some((Some("10.100.0.2".into()), HostConfigSource::NodeConf))
        );
        assert_eq!(
            ip("old"),
            None,
            "a node.conf reported long ago is not decided from"
        );
        assert_eq!(ip("absent"), None);
    }
}
