//! The node agent: *the operator owns intent; the agent owns host-level mutation.* It runs as a
//! DaemonSet pod on every node, claims the `NodeTask`s of its own node, runs each host step through
//! the [`HostOps`] seam, and reports the output and result in the task's status.
//!
//! Shape, decisions pure and I/O at the edges:
//! - [`catalogue`] (pure): step name + arguments → the legacy script's own commands for it, with a
//!   read-only "already done" check before any mutation, so a repeat never mutates twice;
//! - [`journal`]: a local JSON-lines file, fsync'd per record, that makes a step interrupted by a
//!   reboot resume, and a repeated idempotency key report its earlier result without running;
//! - [`decide`] (pure): what to do with a task — ignore, leave alone, claim and run, resume,
//!   report from the journal;
//! - [`status`] (pure): the claim and the final status;
//! - [`os`] (pure): the host OS seam — how packages, services and modules are queried and changed
//!   on a Debian or an RPM-based host, and the family read from `/etc/os-release`;
//! - [`storage`] (pure): the storage-backend seam — how nodes, pools and replicas are listed,
//!   created and removed, and the lists read; LINSTOR/DRBD today, chosen by the profile;
//! - [`host`]: the [`HostOps`] trait and [`ProcessHost`], which runs real commands;
//! - [`metrics`]: steps by result, step durations and the journal's size, served on
//!   `AgentOptions::admin_addr`;
//! - [`facts`] (pure but for one function that runs read-only commands through [`HostOps`]):
//!   the host's facts as the node's `NodeFacts`, and the rate limit of their publication;
//! - [`runtime`]: the loop — watch, claim (optimistic concurrency on `resourceVersion`), run,
//!   report — the only module that talks to the API server.
//!
//! # Permissions the agent needs
//! RBAC is written in the Helm chart; what the agent uses is, in its own namespace only (a `Role`,
//! not a `ClusterRole`):
//! - `nodetasks.nodewright.io`: `get`, `list`, `watch` (the watch uses the field selector
//!   `spec.nodeName=<node>`, which the CRD declares selectable);
//! - `nodetasks.nodewright.io/status`: `update` — claims and results are status replaces (PUT)
//!   guarded by `resourceVersion`. The agent sends no `patch`, and the chart grants none;
//! - `migrations.nodewright.io`: `get` — the one `Migration` that controls a site-storage delete,
//!   read just before [`decide::authorize`] lets it run;
//! - `events.events.k8s.io`: `create`, `patch` — a Warning Event for each refused task;
//! - `nodefacts.nodewright.io`: `get`, `create`, `patch` — its node's host facts, by server-side
//!   apply of the object named after the node (an admission policy refuses any other node's).
//!
//! It never creates, deletes or changes the spec of a `NodeTask`, and reads nothing else from the
//! API server. It refuses a task its `nodewright.io/created-by` does not attribute to the operator
//! named by `AgentOptions::operator` ([`decide::authorize`]). Its pod needs the host's tools, the
//! capabilities and read-only host mounts the chart's DaemonSet justifies one by one (it is not
//! privileged), and a hostPath state directory for the journal (`AgentOptions::state_dir`), so
//! the journal survives the pod and a reboot; node and pod names come from the downward API
//! (`spec.nodeName`, `metadata.name`).

pub mod catalogue;
pub mod decide;
pub mod facts;
pub mod host;
pub mod journal;
pub mod metrics;
pub mod os;
pub mod runtime;
pub mod status;
pub mod storage;

use std::path::PathBuf;

pub use catalogue::{BACKUP_DIR, Backup, Plan, Step, StepError, StepOutcome, plan, plan_on, plan_with};
pub use host::{CommandRoot, HostOps, HostOutput, ProcessHost};
pub use journal::{Journal, JournalLimits};
pub use runtime::{AgentOptions, Claim, FactsOptions, claim, run};

/// Errors that stop the agent. Everything that concerns one task is reported in that task's
/// status or logged, and never stops the loop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The journal file could not be read or written.
    #[error("journal {path}: {what}: {source}")]
    Journal {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another agent holds the state directory's lock.
    #[error("state directory {path} is in use by another agent")]
    StateDirInUse {
        /// The state directory.
        path: PathBuf,
    },
    /// The metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(String),
    /// The admin server could not listen on its address.
    #[error("admin server on {addr}: {source}")]
    Admin {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// A short stable label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Journal { .. } => "journal",
            Error::StateDirInUse { .. } => "state_dir_in_use",
            Error::Metrics(_) => "metrics",
            Error::Admin { .. } => "admin",
        }
    }
}
