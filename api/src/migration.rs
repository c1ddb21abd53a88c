//! `Migration`: turning a single-node site into a multi-node one — joining nodes, replicating
//! storage onto them — as a workflow with a phase, a history and a rollback.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{ClusterRef, PhaseTransition, WorkflowOwner};

/// Which nodes join the site and how storage is replicated onto them.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "nodewright.io",
    version = "v1alpha1",
    kind = "Migration",
    namespaced,
    status = "MigrationStatus",
    shortname = "mig",
    category = "nodewright",
    doc = "A single-node to multi-node migration of an edge site, with its phase, history and rollback.",
    printcolumn(
        name = "Owner",
        type_ = "string",
        json_path = ".spec.owner",
        description = "legacy (observed) or operator"
    ),
    printcolumn(
        name = "Source",
        type_ = "string",
        json_path = ".spec.sourceNode",
        description = "The node the site ran on"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Current phase"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.sourceNode in self.joiningNodes)").message("sourceNode must not be one of joiningNodes"))]
#[x_kube(validation = Rule::new("!has(self.replicas) || self.replicas <= 1 + size(self.joiningNodes)").message("replicas cannot exceed the number of nodes after the migration (1 + joiningNodes)"))]
pub struct MigrationSpec {
    /// `legacy`: observed from the legacy script; `operator`: carried out by Nodewright. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("owner is immutable"))]
    pub owner: WorkflowOwner,
    /// The site being migrated. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: ClusterRef,
    /// The node the site runs on today: a Node name (DNS-1123 subdomain). Immutable.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::common::NODE_NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("sourceNode is immutable"))]
    pub source_node: String,
    /// The nodes that join: Node names (DNS-1123 subdomains). Immutable.
    #[schemars(length(min = 1, max = 32), inner(length(min = 1, max = 253), regex(pattern = crate::common::NODE_NAME_PATTERN)))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("joiningNodes is immutable; create a new Migration"))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub joining_nodes: Vec<String>,
    /// DRBD replicas per resource after the migration: 2 or 3; unset means 2. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 3))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("replicas is immutable; create a new Migration"))]
    pub replicas: Option<i32>,
    /// Set to true to stop the migration and roll back what it did so far.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

/// Migration phases, in order; `RollingBack`, `RolledBack` and `Failed` can follow any of them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum MigrationPhase {
    /// Accepted, not started.
    Pending,
    /// Checking that every joining node is reachable and clean, and that storage is healthy.
    Preflight,
    /// Creating bonds and the replication VLAN on the joining nodes.
    PreparingNetwork,
    /// Joining the nodes to the Kubernetes cluster.
    JoiningNodes,
    /// Registering the joining nodes as LINSTOR satellites.
    RegisteringSatellites,
    /// Creating storage pools on the joining nodes.
    CreatingStoragePools,
    /// Adding DRBD replicas on the joining nodes.
    PlacingReplicas,
    /// Waiting for the new replicas to be UpToDate.
    WaitingForResync,
    /// Switching the site's labels and profile to multi-node.
    Finalizing,
    /// Finished.
    Completed,
    /// Undoing the steps done so far.
    RollingBack,
    /// Rollback finished; the site is single-node again.
    RolledBack,
    /// Stopped and could not roll back; the message says where.
    Failed,
}

/// Progress of the migration.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MigrationPhase>,
    /// Every phase entered, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PhaseTransition<MigrationPhase>>,
    /// When the migration started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it finished, rolled back or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// `Complete` and `Failed`, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
