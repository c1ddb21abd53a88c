//! `NodeTask`: one host mutation for one node — the node agent's only input. Its spec is immutable
//! and carries an idempotency key, so a retried or replayed task is recognised, never run twice.
//! [`StepName`] is the step catalogue: the one list of step names the CRD accepts, the operator
//! asks for and the agent runs.

use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The annotation naming who created a `NodeTask`: the creator's user name as the API server
/// authenticated it (`system:serviceaccount:<namespace>:<name>` for the operator). The chart's
/// admission policy refuses a create whose annotation is not the requester's own name and any
/// change to it afterwards, so the value is the API server's word; the agent runs only tasks
/// whose annotation names the operator it was told of.
pub const CREATED_BY_ANNOTATION: &str = "nodewright.io/created-by";

/// The steps that remove storage the whole site shares (a node's LINSTOR registration, a replica).
/// A node agent runs them only for a task owned by a `Migration` that is rolling back and only on
/// one of that migration's joining nodes: see the agent's `decide::authorize`.
pub const SITE_STORAGE_DELETES: [StepName; 2] = [StepName::LinstorNodeDelete, StepName::ResourceDelete];

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
    /// The node whose agent runs the step: a Node name (DNS-1123 subdomain).
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::common::NODE_NAME_PATTERN))]
    pub node_name: String,
    /// The host step, one of the agent's step catalogue, for example `bond-set-active`.
    // The CRD accepts only the names of [`StepName`], so no task with another name can be created.
    // The field stays a string in Rust all the same: an object created before an upgrade that
    // dropped or renamed a step still holds the old name, and a typed field would make the whole
    // list or watch that carries it fail to decode, starving every other task of the node. As a
    // string it decodes, and the agent fails that one task with "unknown step" instead.
    #[schemars(with = "StepName")]
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

impl NodeTaskSpec {
    /// The step, if the catalogue of this version has it (see the comment on `step`).
    pub fn step_name(&self) -> Result<StepName, UnknownStep> {
        self.step.parse()
    }
}

/// The step catalogue: every host step a node agent runs, by the name a `NodeTask` gives it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum StepName {
    /// Register a LINSTOR satellite: `<node> <ip>`.
    LinstorNodeCreate,
    /// Remove a LINSTOR node: `<node>`.
    LinstorNodeDelete,
    /// Register an LVM-thin storage pool on a node: `<node> <pool> <vg/thinpool>`.
    StoragePoolCreate,
    /// Place a replica of a resource on a node: `<node> <resource> <pool>`.
    ResourceCreate,
    /// Remove a node's replica of a resource: `<node> <resource>`.
    ResourceDelete,
    /// Make a slave the active slave of its bond: `<bond> <slave>`.
    BondSetActive,
    /// Read `drbdadm status all`.
    DrbdStatus,
    /// Read `linstor node list`.
    LinstorNodeList,
    /// Read `linstor storage-pool list`.
    LinstorStoragePoolList,
    /// Read `linstor resource list`.
    LinstorResourceList,
    /// Install a package at one version through the host's package manager (apt or dnf):
    /// `<package> <version>`.
    PackageInstall,
    /// Start a systemd unit: `<unit>`.
    ServiceStart,
    /// Stop a systemd unit: `<unit>`.
    ServiceStop,
    /// Load a kernel module: `<module>`.
    ModuleLoad,
    /// Unload a kernel module: `<module>`.
    ModuleUnload,
    /// Demote this node's replica of a DRBD resource to Secondary (`drbdadm secondary`):
    /// `<resource>`. Fails with DRBD's message while something holds the device open.
    DrbdDemote,
    /// Take every DRBD resource on the node down (`drbdadm down all`).
    DrbdDown,
    /// Bring every DRBD resource on the node in line with its configuration
    /// (`drbdadm adjust all`): up, attached and connected.
    DrbdAdjust,
    /// Read the running DRBD kernel module's version (`/proc/drbd`) and the installed module
    /// package's: output lines `kernel=<version or none>` and `package=<version or none>`.
    DrbdVersion,
    /// Refresh the package manager's metadata (apt-get update, or dnf makecache).
    PackageRefresh,
    /// Read a systemd unit's state (`systemctl is-active`): `<unit>`; output `active`,
    /// `inactive`, `failed`, ….
    ServiceStatus,
    /// Save the DRBD state (`drbdsetup status --verbose --statistics`, `drbdadm status all`)
    /// under the agent's state directory, in `backup/<label>/`: `<label>`; output is the directory.
    StorageBackup,
    /// Change a bond's mode and/or active slave, probe the storage network after the change and
    /// revert on the node, without the API, when the probe fails or the flip is not confirmed in
    /// time: `<bond> <from> <to> <storage-interface> <peers>` (see `nodewright_api::bondflip`).
    BondFlip,
}

impl StepName {
    /// Every step, in catalogue order.
    pub const ALL: [StepName; 23] = [
        StepName::LinstorNodeCreate,
        StepName::LinstorNodeDelete,
        StepName::StoragePoolCreate,
        StepName::ResourceCreate,
        StepName::ResourceDelete,
        StepName::BondSetActive,
        StepName::DrbdStatus,
        StepName::LinstorNodeList,
        StepName::LinstorStoragePoolList,
        StepName::LinstorResourceList,
        StepName::PackageInstall,
        StepName::ServiceStart,
        StepName::ServiceStop,
        StepName::ModuleLoad,
        StepName::ModuleUnload,
        StepName::DrbdDemote,
        StepName::DrbdDown,
        StepName::DrbdAdjust,
        StepName::DrbdVersion,
        StepName::PackageRefresh,
        StepName::ServiceStatus,
        StepName::StorageBackup,
        StepName::BondFlip,
    ];

    /// The name as a `NodeTask` spells it (the same as its serde name).
    pub const fn as_str(self) -> &'static str {
        match self {
            StepName::LinstorNodeCreate => "linstor-node-create",
            StepName::LinstorNodeDelete => "linstor-node-delete",
            StepName::StoragePoolCreate => "storage-pool-create",
            StepName::ResourceCreate => "resource-create",
            StepName::ResourceDelete => "resource-delete",
            StepName::BondSetActive => "bond-set-active",
            StepName::DrbdStatus => "drbd-status",
            StepName::LinstorNodeList => "linstor-node-list",
            StepName::LinstorStoragePoolList => "linstor-storage-pool-list",
            StepName::LinstorResourceList => "linstor-resource-list",
            StepName::PackageInstall => "package-install",
            StepName::ServiceStart => "service-start",
            StepName::ServiceStop => "service-stop",
            StepName::ModuleLoad => "module-load",
            StepName::ModuleUnload => "module-unload",
            StepName::DrbdDemote => "drbd-demote",
            StepName::DrbdDown => "drbd-down",
            StepName::DrbdAdjust => "drbd-adjust",
            StepName::DrbdVersion => "drbd-version",
            StepName::PackageRefresh => "package-refresh",
            StepName::ServiceStatus => "service-status",
            StepName::StorageBackup => "storage-backup",
            StepName::BondFlip => "bond-flip",
        }
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step name the catalogue does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown step {0:?}")]
pub struct UnknownStep(pub String);

impl FromStr for StepName {
    type Err = UnknownStep;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepName::ALL
            .into_iter()
            .find(|step| step.as_str() == s)
            .ok_or_else(|| UnknownStep(s.to_owned()))
    }
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
    /// The step failed, or timed out before it changed anything; the message says why.
    Failed,
    /// The step ran out of time after it may have changed the host: whether it took effect is
    /// not known yet. Not finished: the agent kills what the step started, checks the host before
    /// it runs anything else on the node, and then reports `Succeeded` (the check finds the step
    /// done) or `Failed` (it does not). Whoever waits on the task keeps waiting.
    Unknown,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_name_is_spelled_the_same_by_as_str_serde_and_from_str() {
        for step in StepName::ALL {
            assert_eq!(
                serde_json::to_value(step).ok(),
                Some(serde_json::Value::String(step.as_str().to_owned()))
            );
            assert_eq!(step.as_str().parse::<StepName>(), Ok(step));
            assert_eq!(step.to_string(), step.as_str());
        }
    }

    #[test]
    fn all_lists_every_step_once() {
        let mut sorted = StepName::ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), StepName::ALL.len());
        // The match is exhaustive: a new step fails to compile here until it gets the next
        // index, and `ALL`'s length is part of its type, so it has to be listed there as well.
        let index = |s: StepName| match s {
            StepName::LinstorNodeCreate => 0,
            StepName::LinstorNodeDelete => 1,
            StepName::StoragePoolCreate => 2,
            StepName::ResourceCreate => 3,
            StepName::ResourceDelete => 4,
            StepName::BondSetActive => 5,
            StepName::DrbdStatus => 6,
            StepName::LinstorNodeList => 7,
            StepName::LinstorStoragePoolList => 8,
            StepName::LinstorResourceList => 9,
            StepName::PackageInstall => 10,
            StepName::ServiceStart => 11,
            StepName::ServiceStop => 12,
            StepName::ModuleLoad => 13,
            StepName::ModuleUnload => 14,
            StepName::DrbdDemote => 15,
            StepName::DrbdDown => 16,
            StepName::DrbdAdjust => 17,
            StepName::DrbdVersion => 18,
            StepName::PackageRefresh => 19,
            StepName::ServiceStatus => 20,
            StepName::StorageBackup => 21,
            StepName::BondFlip => 22,
        };
        for (i, step) in StepName::ALL.into_iter().enumerate() {
            assert_eq!(index(step), i, "{step}");
        }
    }

    #[test]
    fn an_unknown_step_name_is_an_error_that_names_it() {
        let e = "format-disk".parse::<StepName>().unwrap_err();
        assert_eq!(e.to_string(), "unknown step \"format-disk\"");
    }

    #[test]
    fn the_crd_accepts_exactly_the_catalogue_step_names() {
        let crd = serde_json::to_value(<NodeTask as kube::CustomResourceExt>::crd()).unwrap();
        let step = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["step"];
        let names: Vec<&str> = step["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let expected: Vec<&str> = StepName::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, expected);
        assert_eq!(step["type"], "string");
    }
}
