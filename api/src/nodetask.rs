//! `NodeTask`: one host mutation for one node — the node agent's only input. Its spec is immutable
//! and carries an idempotency key, so a retried or replayed task is recognised, never run twice.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// One host step for one node.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "nodewright.io",
    version = "v1alpha1",
    kind = "NodeTask",
    namespaced,
    status = "NodeTaskStatus",
    shortname = "nt",
    category = "nodewright",
    selectable = ".spec.nodeName",
    doc = "One host mutation for one node, run by that node's agent; the agent's only input.",
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".spec.nodeName",
        description = "Node that runs the step"
    ),
    printcolumn(
        name = "Step",
        type_ = "string",
        json_path = ".spec.step",
        description = "Host step"
    ),
    printcolumn(
        name = "Workflow",
        type_ = "string",
        json_path = ".spec.workflowRef.name",
        description = "Workflow the task belongs to"
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
#[x_kube(validation = Rule::new("self == oldSelf").message("NodeTask spec is immutable; create a new NodeTask"))]
pub struct NodeTaskSpec {
    /// The node whose agent runs the step.
    #[schemars(length(min = 1, max = 253))]
    pub node_name: String,
    /// The host step, for example `bond-set-active` or `drbd-up`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), length(min = 1, max = 63))]
    pub step: String,
    /// Arguments to the step, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub args: Vec<String>,
    /// Identifies the intended effect. The agent runs a key at most once per node and reports the
    /// earlier result for a repeat.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"), length(min = 1, max = 128))]
    pub idempotency_key: String,
    /// The workflow the task belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_ref: Option<WorkflowRef>,
    /// The agent gives up on the step after this many seconds.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: i32,
}

fn default_timeout() -> i32 {
    600
}

/// The kinds of workflow that create node tasks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum WorkflowKind {
    /// A `Migration`.
    Migration,
    /// A `StorageUpgrade`.
    StorageUpgrade,
    /// A `BondFlip`.
    BondFlip,
    /// Taint management of an `EdgeCluster`.
    Taints,
    /// Boot recovery of an `EdgeNode`.
    BootRecovery,
    /// Bootstrap of an `EdgeCluster`.
    Bootstrap,
}

/// A workflow object in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRef {
    /// The workflow's kind.
    pub kind: WorkflowKind,
    /// The workflow object's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Node task phases.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum NodeTaskPhase {
    /// Waiting for the node's agent.
    Pending,
    /// The agent has claimed the task and runs the step.
    Running,
    /// The step finished successfully.
    Succeeded,
    /// The step failed or timed out; the message says why.
    Failed,
}

/// What the agent did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeTaskStatus {
    /// Current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<NodeTaskPhase>,
    /// The agent (pod name) that claimed the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// How many times the agent started the step.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub attempts: i32,
    /// When the step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The step's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The end of the step's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384))]
    pub output: Option<String>,
    /// Why the task is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
