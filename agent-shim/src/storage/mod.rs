//! The storage-backend seam: how the agent asks the site's replicated storage stack to register
//! or remove a node, create a pool, place or remove a replica, and list each of them; how it
//! demotes, takes down and brings up the node's own replicas, reads the kernel module's version
//! and backs the node's storage state up; and how it reads a list or a state to tell whether a
//! change is already made. Each method builds an argv or judges a
//! command's output; nothing here runs a command (that is [`crate::catalogue`]'s, through
//! [`crate::HostOps`]).
//!
//! [`LinstorDrbd`] (the `linstor` client in front of DRBD 9) is the one implementation, with the
//! legacy script's own argv. [`for_backend`] picks one from the API's storage backend, the value
//! `profile.storageBackend` names; the catalogue's `linstor-*`, `storage-pool-*` and `resource-*`
//! steps go through it.
//!
//! To add a backend: a variant of `StorageBackend` in the API (`api/src/edgecluster.rs`), an
//! implementation of [`StorageBackend`] here (a module beside `linstor.rs`) and its arm in
//! [`for_backend`], nom parsers in `parsers` for its list output, and the simulator's answers to
//! its client (`legacy/sim`).

mod linstor;

pub use linstor::LinstorDrbd;
/// The API's name for a storage backend, as `profile.storageBackend` spells it.
pub use nodewright_api::edgecluster::StorageBackend as BackendKind;

use crate::catalogue::Verdict;
use crate::host::HostOutput;

/// What the agent needs from a site's storage backend. Implementations are stateless.
///
/// The read-only check of each change is one of the three list reads, which are also the
/// catalogue's read-only list steps. The judges read that list's standard output: the change
/// is already made ([`Verdict::AlreadyDone`]), conflicts with what is there
/// ([`Verdict::Refused`]), or is still to make ([`Verdict::ToDo`]); `Err` when the output cannot
/// be read, and then nothing is changed on the strength of it.
pub trait StorageBackend: Send + Sync {
    /// The backend this implements.
    fn kind(&self) -> BackendKind;

    /// The read-only command that lists the registered nodes.
    fn node_list(&self) -> Vec<String>;

    /// The read-only command that lists the storage pools of every node.
    fn pool_list(&self) -> Vec<String>;

    /// The read-only command that lists every replica and the node it is placed on.
    fn replica_list(&self) -> Vec<String>;

    /// The command that registers `node` at its storage address `ip` as a storage node.
    fn node_create(&self, node: &str, ip: &str) -> Vec<String>;

    /// Judges [`StorageBackend::node_list`] for [`StorageBackend::node_create`].
    fn judge_node_create(&self, node: &str, ip: &str, list: &str) -> Result<Verdict, String>;

    /// The command that removes `node` (its pools and replicas go with it).
    fn node_delete(&self, node: &str) -> Vec<String>;

    /// Judges [`StorageBackend::node_list`] for [`StorageBackend::node_delete`].
    fn judge_node_delete(&self, node: &str, list: &str) -> Result<Verdict, String>;

    /// The command that creates the thin-provisioned pool `pool` on `node` over `vg` (`vg/thinpool`).
    fn pool_create(&self, node: &str, pool: &str, vg: &str) -> Vec<String>;

    /// Judges [`StorageBackend::pool_list`] for [`StorageBackend::pool_create`].
    fn judge_pool_create(&self, node: &str, pool: &str, list: &str) -> Result<Verdict, String>;

    /// The command that places a replica of `resource` on `node`, in `pool`.
    fn replica_create(&self, node: &str, resource: &str, pool: &str) -> Vec<String>;

    /// Judges [`StorageBackend::replica_list`] for [`StorageBackend::replica_create`].
    fn judge_replica_create(&self, node: &str, resource: &str, list: &str) -> Result<Verdict, String>;

    /// The command that removes `node`'s replica of `resource`.
    fn replica_delete(&self, node: &str, resource: &str) -> Vec<String>;

    /// Judges [`StorageBackend::replica_list`] for [`StorageBackend::replica_delete`].
    fn judge_replica_delete(&self, node: &str, resource: &str, list: &str) -> Result<Verdict, String>;

    // The node's own replicas, as the storage upgrade changes them. Their checks are judged whole,
    // exit code included: "not up" is an answer, not a failure.

    /// The read-only command that tells the state of every replica up on this node.
    fn local_status(&self) -> Vec<String>;

    /// The read-only command that tells the state of this node's replica of `resource`.
    fn local_resource_status(&self, resource: &str) -> Vec<String>;

    /// The command that demotes this node's replica of `resource` (no longer in use here).
    fn demote(&self, resource: &str) -> Vec<String>;

    /// Judges [`StorageBackend::local_resource_status`] for [`StorageBackend::demote`].
    fn judge_demote(&self, resource: &str, check: &HostOutput) -> Result<Verdict, String>;

    /// The command that takes every replica on this node down.
    fn down_all(&self) -> Vec<String>;

    /// Judges [`StorageBackend::local_status`] for [`StorageBackend::down_all`].
    fn judge_down_all(&self, check: &HostOutput) -> Result<Verdict, String>;

    /// The command that brings every replica configured for this node up as configured.
    fn adjust_all(&self) -> Vec<String>;

    /// The read-only command that tells what [`StorageBackend::adjust_all`] would change.
    fn adjust_preview(&self) -> Vec<String>;

    /// Judges [`StorageBackend::adjust_preview`] for [`StorageBackend::adjust_all`].
    fn judge_adjust_all(&self, check: &HostOutput) -> Result<Verdict, String>;

    /// The read-only command that tells the running kernel module's version.
    fn kernel_version_query(&self) -> Vec<String>;

    /// Reads [`StorageBackend::kernel_version_query`]: the version, or `None` when no module
    /// is loaded.
    fn kernel_version(&self, out: &HostOutput) -> Result<Option<String>, String>;

    /// The package that carries the kernel module (its version is the one an upgrade installs).
    fn module_package(&self) -> &'static str;

    /// What a backup of the node's storage state saves: `(file name, read-only command)`.
    fn backup_reads(&self) -> Vec<(&'static str, Vec<String>)>;
}

/// The implementation for a backend.
pub fn for_backend(kind: BackendKind) -> &'static dyn StorageBackend {
    match kind {
        BackendKind::LinstorDrbd => &LinstorDrbd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_without_a_backend_gets_linstor_drbd_and_its_implementation() {
        let kind = BackendKind::default();
        assert_eq!(kind, BackendKind::LinstorDrbd);
        assert_eq!(for_backend(kind).kind(), kind);
    }
}
