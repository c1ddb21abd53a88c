//! The single-to-multi-node migration, decided: given an operator-owned `Migration`, the observed
//! site and the node tasks created so far, what to do next. The same phases and checks as the
//! script's phase machine (`legacy/lib/migration.sh`), as a pure function that can be replayed.
//!
//! Every effect is an [`Action`] the caller applies: a NodeTask (a host step for the node agent,
//! named by an idempotency key derived from the migration, so a repeated decision creates nothing
//! twice), a role label, or a write of the site's cluster-state keys. The caller persists the
//! [`Outcome`] in the Migration's status only after every action of the decision succeeded; a
//! caller killed in between decides again and gets the same actions. Host facts the operator
//! cannot observe from the legacy ConfigMaps (LINSTOR's storage pools and resources) are read
//! through read-only node tasks, whose output is part of the decision's input.
//!
//! [`decide`] checks what every phase shares (finished, rollback requested, timed out) and hands
//! the current phase to its function: the forward phases in `phases`, the undo in `rollback`.
//! `tasks` keys and tracks the node tasks, `status` records phases, `legacy` spells the
//! cluster-state keys the script reads.

use std::collections::BTreeMap;

use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};
use nodewright_api::nodetask::{NodeTaskPhase, StepName};
use nodewright_parsers::{ClusterBlob, Member, NetworkPlan};

use crate::topology::{SiteTopology, SmallSite};

mod legacy;
mod phases;
mod rollback;
mod status;
mod tasks;
#[cfg(test)]
mod tests;

pub use legacy::{UnsafeLegacyValue, cluster_blob, legacy_blob, legacy_phase, members_csv, validate_spec};
pub use status::{current, enter, is_over, reached};
pub use tasks::{key_prefix, task_key};

pub use rollback::ROLLBACK_INCOMPLETE;
use rollback::rollback;
use status::is_terminal;

/// A migration phase that waits longer than this fails and rolls back (the script's
/// `VXR_MIGRATION_TIMEOUT` default).
pub const DEFAULT_TIMEOUT: i64 = 1800;

/// One node's facts, as its script and its Node object report them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    /// A Node object exists.
    pub exists: bool,
    /// The `vx-rail.io/role` label.
    pub role_label: Option<String>,
    /// `at` of the node's last status report.
    pub reported_at: Option<i64>,
    /// `net=ok` in that report.
    pub net_ok: bool,
    /// `storage_vlan` in that report, as `<interface>:<operstate>`.
    pub storage_vlan: Option<String>,
    /// Every local DRBD disk UpToDate (or Diskless) and the status readable.
    pub local_uptodate: bool,
    /// A resync runs.
    pub syncing: bool,
    /// From the reported `drbdadm status`: per resource, each peer and its disk state.
    pub peers: BTreeMap<String, BTreeMap<String, String>>,
}

/// The site as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// Now, in Unix seconds.
    pub now: i64,
    /// A node whose report is older than this is not alive for preflight (seconds).
    pub stale_after: i64,
    /// A phase that waits longer than this fails (seconds).
    pub timeout: i64,
    /// The `cluster` key.
    pub cluster: Option<ClusterBlob>,
    /// The `members` key.
    pub members: Vec<Member>,
    /// The `network-plan` key.
    pub plan: Option<NetworkPlan>,
    /// The `linstor-nodes` key: node and state.
    pub linstor_nodes: BTreeMap<String, String>,
    /// Facts per node.
    pub nodes: BTreeMap<String, NodeFacts>,
}

/// A node task this migration created, as far as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    /// What it asks for (its spec).
    pub request: TaskRequest,
    /// Its phase (`None` while no agent looked at it).
    pub phase: Option<NodeTaskPhase>,
    /// Its output (the step's standard output for read-only steps).
    pub output: Option<String>,
    /// Why it is in its phase.
    pub message: Option<String>,
}

/// A host step to be run by a node's agent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskRequest {
    /// The idempotency key, also the NodeTask's name.
    pub key: String,
    /// The node whose agent runs it.
    pub node: String,
    /// The step.
    pub step: StepName,
    /// Its arguments.
    pub args: Vec<String>,
}

/// One effect of a decision.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Create the node task, unless one with its key exists.
    Task(TaskRequest),
    /// Set a Node's `vx-rail.io/role` label.
    RoleLabel {
        /// The Node.
        node: String,
        /// `joining` or `member`.
        role: String,
    },
    /// Write the `cluster` and `members` keys of the cluster-state ConfigMap.
    ClusterState {
        /// The new `cluster` blob.
        cluster: String,
        /// The new `members` CSV.
        members: String,
    },
}

/// Where the migration goes after the decision's actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It stays in its phase; the reason says for what.
    Wait(String),
    /// It enters a phase (with a message for the history).
    Enter(Phase, Option<String>),
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Effects, in order.
    pub actions: Vec<Action>,
    /// Then.
    pub outcome: Outcome,
}

impl Decision {
    fn wait(reason: impl Into<String>) -> Self {
        Decision {
            actions: Vec::new(),
            outcome: Outcome::Wait(reason.into()),
        }
    }
    fn enter(phase: Phase) -> Self {
        Decision {
            actions: Vec::new(),
            outcome: Outcome::Enter(phase, None),
        }
    }
    fn fail(reason: impl Into<String>) -> Self {
        Decision {
            actions: Vec::new(),
            outcome: Outcome::Enter(Phase::RollingBack, Some(reason.into())),
        }
    }
}

fn replicas(spec: &MigrationSpec) -> u32 {
    SmallSite.replicas(spec.replicas)
}

/// What to do next for the migration `spec` (object uid `uid`) in `status`, on a site of
/// today's shape.
pub fn decide(
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    decide_in(&SmallSite, spec, uid, status, facts, tasks)
}

/// [`decide`] for a site of the given shape (the `EdgeCluster` profile's topology).
pub fn decide_in(
    topology: &dyn SiteTopology,
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let (phase, since) = current(status);
    if is_terminal(phase) {
        return Decision::wait("finished");
    }
    // A node name that is not one (a Migration stored before the CRD's pattern) goes into no
    // task and no legacy key: the migration fails at once, having done nothing.
    if let Err(e) = legacy::validate_spec(spec) {
        return Decision {
            actions: Vec::new(),
            outcome: Outcome::Enter(
                Phase::Failed,
                Some(format!("invalid spec, nothing was done: {e}")),
            ),
        };
    }
    if spec.rollback && phase != Phase::RollingBack {
        return Decision::fail("rollback requested");
    }
    if phase != Phase::Pending
        && phase != Phase::RollingBack
        && let Some(since) = since
        && facts.now - since > facts.timeout
    {
        return Decision::fail(format!(
            "timed out after {}s in {}",
            facts.timeout,
            legacy_phase(phase)
        ));
    }
    match phase {
        Phase::Pending => Decision::enter(Phase::Preflight),
        Phase::Preflight => phases::preflight(topology, spec, facts),
        Phase::PreparingNetwork => phases::prepare_network(spec, facts),
        Phase::JoiningNodes => phases::join(spec, facts),
        Phase::RegisteringSatellites => phases::register_satellites(topology, spec, uid, facts, tasks),
        Phase::CreatingStoragePools => phases::create_storage_pools(spec, uid, facts, tasks),
        Phase::PlacingReplicas => phases::place_replicas(topology, spec, uid, facts, tasks),
        Phase::WaitingForResync => phases::wait_for_resync(spec, uid, since, facts, tasks),
        Phase::Finalizing => phases::finalize(topology, spec, facts),
        Phase::RollingBack => rollback(spec, uid, status, since, facts, tasks),
        Phase::Completed | Phase::RolledBack | Phase::Failed => Decision::wait("finished"),
    }
}
