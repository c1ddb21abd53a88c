//! `HostConfig`: what a node's host is meant to look like — its bond, its storage and management
//! VLANs and addresses, and its storage pool — the facts the legacy script reads from the node's
//! local `/etc/vx-rail/node.conf`, typed and held in the API.
//!
//! Two places carry one:
//! - `NodeFacts.spec.nodeConfig`: the node's `node.conf` as its agent read and parsed it (what the
//!   script decides from, reported);
//! - `EdgeNode.spec.host`: the configuration Nodewright's workflows decide from (bootstrap, the
//!   steady-state network and storage, bond flips, boot recovery). A person sets it, or the
//!   bootstrap workflow adopts it once from the reported `node.conf`; afterwards the API, not the
//!   file, is where it changes.

use serde::{Deserialize, Serialize};

use crate::edgenode::BondMode;

/// A node's intended host configuration (the fields of `node.conf`, without the site-wide
/// `SITE_TOPOLOGY`, which is the `EdgeCluster`'s `profile.topology`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostConfig {
    /// The bond the VLANs sit on (`BOND_NAME`, `BOND_MODE`, `BOND_MIIMON`, `BOND_SLAVES`).
    pub bond: BondConfig,
    /// The storage VLAN, DRBD's replication network (`STORAGE_VLAN_ID`, `STORAGE_IP`).
    pub storage_vlan: VlanConfig,
    /// The management VLAN, when the site has one (`MGMT_VLAN_ID`, `MGMT_IP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mgmt_vlan: Option<VlanConfig>,
    /// The LINSTOR storage pool and the LVM thin pool behind it (`STORAGE_POOL`, `STORAGE_VG`).
    pub storage: StorageConfig,
}

/// A bond: its name, mode, link monitoring interval and slaves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BondConfig {
    /// Interface name, for example `bond0`.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
    /// Bonding mode.
    pub mode: BondMode,
    /// MII link monitoring interval in milliseconds (`miimon`).
    #[schemars(range(min = 0, max = 60000))]
    pub miimon: i32,
    /// The slave interfaces, in `node.conf`'s order (the first is the preferred active slave).
    #[schemars(length(min = 1, max = 8))]
    pub slaves: Vec<String>,
}

/// A VLAN on the bond and the node's address on it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VlanConfig {
    /// 802.1Q VLAN ID.
    #[schemars(range(min = 1, max = 4094))]
    pub id: i32,
    /// The node's address in CIDR notation, for example `10.100.0.11/24`; absent for a VLAN the
    /// node has no address on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 18))]
    pub address: Option<String>,
}

/// The node's storage pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageConfig {
    /// The LINSTOR storage pool, for example `pool0`.
    #[schemars(length(min = 1, max = 48))]
    pub pool: String,
    /// The LVM volume group and thin pool, `vg/thinpool`.
    #[schemars(length(min = 3, max = 128))]
    pub volume_group: String,
}

impl HostConfig {
    /// The VLAN interfaces the configuration asks for (`<bond>.<id>`), storage first.
    pub fn vlan_interfaces(&self) -> Vec<String> {
        std::iter::once(&self.storage_vlan)
            .chain(self.mgmt_vlan.as_ref())
            .map(|v| format!("{}.{}", self.bond.name, v.id))
            .collect()
    }

    /// The node's storage (replication) address without its prefix length.
    pub fn storage_ip(&self) -> Option<&str> {
        self.storage_vlan
            .address
            .as_deref()
            .and_then(|a| a.split('/').next())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config() -> HostConfig {
        serde_json::from_value(serde_json::json!({
            "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1", "eno2"]},
            "storageVlan": {"id": 100, "address": "10.100.0.11/24"},
            "mgmtVlan": {"id": 200, "address": "10.200.0.11/24"},
            "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
        }))
        .unwrap()
    }

    #[test]
    fn a_host_config_names_its_vlan_interfaces_storage_first_and_its_storage_ip_without_prefix() {
        let c = config();
        assert_eq!(c.vlan_interfaces(), vec!["bond0.100", "bond0.200"]);
        assert_eq!(c.storage_ip(), Some("10.100.0.11"));
    }
}
