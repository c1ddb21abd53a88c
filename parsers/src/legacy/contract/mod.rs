//! The legacy contract, as `docs/legacy-contract.md` writes it down: the names of the ConfigMaps
//! the script reads and writes and their keys, the Node annotations, labels and taints it owns,
//! and every message it logs, as a typed [`Message`]. These spellings live here and nowhere else
//! on Nodewright's side: the bridge, the operator and the tests name them through this module.
//!
//! Constants and lookups only, like the rest of the crate: no I/O.
//!
//! The object and key names are in this file; the messages are in `messages` (the [`Message`]
//! table: text, component, level) and `recognise` (which message a log record is).

mod messages;
mod recognise;

pub use messages::Message;

/// The namespace of the legacy ConfigMaps and DaemonSet (`$VXR_NAMESPACE`).
pub const NAMESPACE: &str = "kube-system";
/// The legacy DaemonSet, also its pods' `app` label.
pub const DAEMON_SET: &str = "vx-rail-node-init";
/// The site-wide ConfigMap; its keys are in [`cluster_key`].
pub const CLUSTER_STATE: &str = "vx-rail-cluster-state";
/// The prefix of each node's ConfigMap, `vx-rail-node-<node>`; its keys are in [`node_key`].
pub const NODE_CONFIG_MAP_PREFIX: &str = "vx-rail-node-";
/// The ConfigMap Nodewright writes and the script reads in shim mode; its keys are in
/// [`takeover_key`].
pub const TAKEOVER: &str = "nodewright-takeover";
/// The prefix of every annotation, label and taint the script owns.
pub const PREFIX: &str = "vx-rail.io/";

/// The name of `node`'s ConfigMap.
pub fn node_config_map(node: &str) -> String {
    format!("{NODE_CONFIG_MAP_PREFIX}{node}")
}

/// Keys of [`CLUSTER_STATE`].
pub mod cluster_key {
    /// The site blob.
    pub const CLUSTER: &str = "cluster";
    /// The member list (CSV).
    pub const MEMBERS: &str = "members";
    /// The network plan (one line of JSON).
    pub const NETWORK_PLAN: &str = "network-plan";
    /// The captured `linstor node list`.
    pub const LINSTOR_NODES: &str = "linstor-nodes";
    /// The migration blob.
    pub const MIGRATION: &str = "migration";
    /// The storage-upgrade blob.
    pub const UPGRADE: &str = "upgrade";
    /// The DRBD version the site should run; written by a person or tool, never the script.
    pub const DESIRED_STORAGE_VERSION: &str = "desired-storage-version";
    /// The prefix of the per-node bond-flip request keys, `bond-flip.<node>`.
    pub const BOND_FLIP_PREFIX: &str = "bond-flip.";
}

/// Keys of a node's ConfigMap (`vx-rail-node-<node>`).
pub mod node_key {
    /// The script version that wrote the ConfigMap last.
    pub const SCRIPT_VERSION: &str = "script-version";
    /// The end of the last successful iteration (RFC 3339).
    pub const HEARTBEAT: &str = "heartbeat";
    /// The status blob.
    pub const STATUS: &str = "status";
    /// The captured `drbdadm status all`.
    pub const DRBD_STATUS: &str = "drbd-status";
    /// The boot-recovery blob.
    pub const BOOT_RECOVERY: &str = "boot-recovery";
    /// The generation of [`TAKEOVER`](super::TAKEOVER) the script last read (shim mode).
    pub const TAKEOVER_GENERATION: &str = "takeover-generation";
}

/// Keys of [`TAKEOVER`]: its generation and one mode per workflow.
pub mod takeover_key {
    /// The generation, increased on every change.
    pub const GENERATION: &str = "generation";
    /// The bootstrap step's mode.
    pub const BOOTSTRAP: &str = "bootstrap";
    /// The migration's mode.
    pub const MIGRATION: &str = "migration";
    /// The storage upgrade's mode.
    pub const STORAGE_UPGRADE: &str = "storage-upgrade";
    /// Bond flips' mode.
    pub const BOND_FLIP: &str = "bond-flip";
    /// Taint management's mode.
    pub const TAINTS: &str = "taints";
    /// Boot recovery's mode.
    pub const BOOT_RECOVERY: &str = "boot-recovery";
    /// The steady-state network's mode: bond and VLAN assembly, carrier failover.
    pub const NETWORK: &str = "network";
    /// The steady-state storage's mode: modules, services, satellite and pool registration,
    /// replica placement.
    pub const STORAGE: &str = "storage";
}

/// Annotations the script writes on its own Node.
pub mod annotation {
    /// The node's state (`ready`, `degraded`, …, `error`).
    pub const STATE: &str = "vx-rail.io/state";
    /// The last iteration's blob.
    pub const LAST_RUN: &str = "vx-rail.io/last-run";
    /// The upgrade state this node last entered.
    pub const UPGRADE_STATE: &str = "vx-rail.io/upgrade-state";
    /// The bond's active slave, or `none`.
    pub const BOND_ACTIVE: &str = "vx-rail.io/bond-active";
    /// The boot last recovered.
    pub const BOOT_ID: &str = "vx-rail.io/boot-id";
}

/// Labels the script writes on Nodes.
pub mod label {
    /// The node's role (`primary`, `member`, `joining`).
    pub const ROLE: &str = "vx-rail.io/role";
    /// `true` exactly when the storage-not-ready taint does not apply.
    pub const STORAGE_READY: &str = "vx-rail.io/storage-ready";
}

/// Taints the script puts on its own Node.
pub mod taint {
    /// Storage is not ready; the value is the reason.
    pub const STORAGE_NOT_READY: &str = "vx-rail.io/storage-not-ready";
    /// The node is in the storage upgrade; the value is the target version.
    pub const UPGRADE_IN_PROGRESS: &str = "vx-rail.io/upgrade-in-progress";
    /// The effect of both.
    pub const EFFECT: &str = "NoSchedule";
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;

    pub(super) fn repo_file(path: &str) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::read_to_string(root.join(path)).unwrap()
    }

    #[test]
    fn every_annotation_label_and_taint_is_the_scripts_and_named_in_the_contract_document() {
        let doc = repo_file("docs/legacy-contract.md");
        for key in [
            annotation::STATE,
            annotation::LAST_RUN,
            annotation::UPGRADE_STATE,
            annotation::BOND_ACTIVE,
            annotation::BOOT_ID,
            label::ROLE,
            label::STORAGE_READY,
            taint::STORAGE_NOT_READY,
            taint::UPGRADE_IN_PROGRESS,
        ] {
            assert!(key.starts_with(PREFIX), "{key}");
            assert!(doc.contains(&format!("| `{key}` |")), "{key}");
        }
        for name in [CLUSTER_STATE, TAKEOVER] {
            assert!(doc.contains(&format!("ConfigMap `{NAMESPACE}/{name}`")), "{name}");
        }
        assert!(doc.contains(&format!(
            "ConfigMap `{NAMESPACE}/{}<node-name>`",
            NODE_CONFIG_MAP_PREFIX
        )));
        assert_eq!(node_config_map("edge-1"), "vx-rail-node-edge-1");
    }

    #[test]
    fn every_configmap_key_is_named_in_the_contract_document() {
        let doc = repo_file("docs/legacy-contract.md");
        for key in [
            cluster_key::CLUSTER,
            cluster_key::MEMBERS,
            cluster_key::NETWORK_PLAN,
            cluster_key::LINSTOR_NODES,
            cluster_key::MIGRATION,
            cluster_key::UPGRADE,
            cluster_key::DESIRED_STORAGE_VERSION,
            node_key::SCRIPT_VERSION,
            node_key::HEARTBEAT,
            node_key::STATUS,
            node_key::DRBD_STATUS,
            node_key::BOOT_RECOVERY,
            node_key::TAKEOVER_GENERATION,
            takeover_key::GENERATION,
            takeover_key::BOOTSTRAP,
            takeover_key::MIGRATION,
            takeover_key::STORAGE_UPGRADE,
            takeover_key::BOND_FLIP,
            takeover_key::TAINTS,
            takeover_key::BOOT_RECOVERY,
            takeover_key::NETWORK,
            takeover_key::STORAGE,
        ] {
            assert!(doc.contains(&format!("| `{key}` |")), "{key}");
        }
        assert!(doc.contains(&format!("`{}<node-name>`", cluster_key::BOND_FLIP_PREFIX)));
    }
}
