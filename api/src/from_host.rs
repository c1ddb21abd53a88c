//! The API's view of what the host tools print, from the parsers' types: one conversion for the
//! agent (which reads its host, for `NodeFacts`) and the bridge (which reads the script's reports
//! of the same tools, for `EdgeNode`), so that a fact reads the same whichever of them saw it and
//! the bridge's merge of the two compares like with like.
//!
//! Behind the `host` feature, so that the API crate alone still knows no parser. Pure; no I/O.

use nodewright_parsers as p;

use crate::edgenode::{BondMode, DrbdPeerStatus, DrbdResourceStatus};
use crate::hostconfig::{BondConfig, HostConfig, StorageConfig, VlanConfig};

/// The API's bonding mode for the bonding driver's. A `match` without a wildcard arm: a mode added
/// on either side fails to compile here until it is mapped.
pub fn bond_mode(m: p::BondMode) -> BondMode {
    match m {
        p::BondMode::BalanceRr => BondMode::BalanceRr,
        p::BondMode::ActiveBackup => BondMode::ActiveBackup,
        p::BondMode::BalanceXor => BondMode::BalanceXor,
        p::BondMode::Broadcast => BondMode::Broadcast,
        p::BondMode::Lacp => BondMode::Lacp,
        p::BondMode::BalanceTlb => BondMode::BalanceTlb,
        p::BondMode::BalanceAlb => BondMode::BalanceAlb,
    }
}

/// One resource of `drbdadm status`, as the API shows it: its first volume's disk state (`Diskless`
/// when it has no volume), and per peer its first volume's replication and disk state. DRBD's short
/// form leaves out `Connected` and, on a connected peer, `Established`; they are filled in here. A
/// peer that is not connected has no peer-device line: its disk is `DUnknown` and its replication
/// `Off`, as DRBD itself says of such a peer.
pub fn drbd_resource(r: &p::DrbdResource) -> DrbdResourceStatus {
    let device = r.devices.first();
    DrbdResourceStatus {
        name: r.name.clone(),
        role: r.role.clone(),
        disk_state: device.map_or_else(|| "Diskless".to_owned(), |d| d.disk.clone()),
        quorum: device.and_then(|d| d.quorum),
        suspended: r.suspended.as_deref().is_some_and(|s| s != "no"),
        peers: r
            .connections
            .iter()
            .map(|c| {
                let pd = c.peer_devices.first();
                let connection = c.connection.clone().unwrap_or_else(|| "Connected".to_owned());
                let connected = connection == "Connected";
                DrbdPeerStatus {
                    node: c.name.clone(),
                    role: c.role.clone().unwrap_or_else(|| "Unknown".to_owned()),
                    peer_disk: pd
                        .and_then(|d| d.peer_disk.clone())
                        .unwrap_or_else(|| "DUnknown".to_owned()),
                    replication: pd
                        .and_then(|d| d.replication.clone())
                        .unwrap_or_else(|| if connected { "Established" } else { "Off" }.to_owned()),
                    sync_percent: pd
                        .and_then(|d| d.done_percent)
                        .map(|d| d.clamp(0.0, 100.0).floor() as i32),
                    connection,
                }
            })
            .collect(),
    }
}

/// A `node.conf` the script accepts, as the typed [`HostConfig`]; refused, with the line and the
/// key, where a value the script passes on unchecked could not work on a host or in the API: a
/// bond name that is empty or longer than an interface name (15), a bonding mode `ip link` does
/// not know, a `BOND_MIIMON` over 60000, no more than 8 slaves, a VLAN id outside 1–4094, an
/// address that is not an IPv4 address with a prefix length up to 32, an empty storage pool or a
/// volume group that is not `vg/thinpool`. `SITE_TOPOLOGY` is the `EdgeCluster`'s, not a node's:
/// it is not carried. A management VLAN is carried when `MGMT_VLAN_ID` is set, with `MGMT_IP` as
/// its address when that is set too (the script adds the VLAN only with both).
pub fn host_config(conf: &p::NodeConf) -> Result<HostConfig, p::NodeConfError> {
    let bad = |key: &str, v: &p::ConfValue, what: &str| {
        p::NodeConfError::at(key, v, format!("{what}: {:?}", v.value))
    };
    let name = &conf.bond_name;
    if name.value.is_empty() || name.value.len() > 15 || name.value.contains(['/', ' ', '\t']) {
        return Err(bad(
            "BOND_NAME",
            name,
            "not an interface name (1 to 15 characters, no blank or /)",
        ));
    }
    let Some(mode) = p::BondMode::from_name(&conf.bond_mode.value) else {
        return Err(bad(
            "BOND_MODE",
            &conf.bond_mode,
            "not a bonding mode ip link knows",
        ));
    };
    let miimon = match conf.bond_miimon.value.parse::<i32>() {
        Ok(m) if (0..=60_000).contains(&m) => m,
        _ => {
            return Err(bad(
                "BOND_MIIMON",
                &conf.bond_miimon,
                "not a number of milliseconds up to 60000",
            ));
        }
    };
    let slaves: Vec<String> = conf.slaves().into_iter().map(str::to_owned).collect();
    if slaves.is_empty() || slaves.len() > 8 || slaves.iter().any(|s| s.len() > 15) {
        return Err(bad(
            "BOND_SLAVES",
            &conf.bond_slaves,
            "not 1 to 8 interface names",
        ));
    }
    let vlan_id = |key: &str, v: &p::ConfValue| match v.value.parse::<i32>() {
        Ok(id) if (1..=4094).contains(&id) => Ok(id),
        _ => Err(bad(key, v, "not an 802.1Q VLAN id (1 to 4094)")),
    };
    let cidr = |key: &str, v: &p::ConfValue| {
        let ok = v.value.split_once('/').is_some_and(|(ip, len)| {
            ip.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32)
        });
        if ok {
            Ok(v.value.clone())
        } else {
            Err(bad(key, v, "not an IPv4 address with a prefix length"))
        }
    };
    let storage_vlan = VlanConfig {
        id: vlan_id("STORAGE_VLAN_ID", &conf.storage_vlan_id)?,
        address: Some(cidr("STORAGE_IP", &conf.storage_ip)?),
    };
    let mgmt_vlan = if conf.mgmt_vlan_id.value.is_empty() {
        None
    } else {
        Some(VlanConfig {
            id: vlan_id("MGMT_VLAN_ID", &conf.mgmt_vlan_id)?,
            address: if conf.mgmt_ip.value.is_empty() {
                None
            } else {
                Some(cidr("MGMT_IP", &conf.mgmt_ip)?)
            },
        })
    };
    let pool = &conf.storage_pool;
    if pool.value.is_empty() || pool.value.len() > 48 || pool.value.contains(char::is_whitespace) {
        return Err(bad(
            "STORAGE_POOL",
            pool,
            "not a LINSTOR storage pool name (1 to 48 characters, no blank)",
        ));
    }
    let vg = &conf.storage_vg;
    let vg_ok = vg.value.len() <= 128
        && !vg.value.contains(char::is_whitespace)
        && vg
            .value
            .split_once('/')
            .is_some_and(|(g, t)| !g.is_empty() && !t.is_empty() && !t.contains('/'));
    if !vg_ok {
        return Err(bad(
            "STORAGE_VG",
            vg,
            "not a volume group and thin pool, vg/thinpool",
        ));
    }
    Ok(HostConfig {
        bond: BondConfig {
            name: name.value.clone(),
            mode: bond_mode(mode),
            miimon,
            slaves,
        },
        storage_vlan,
        mgmt_vlan,
        storage: StorageConfig {
            pool: pool.value.clone(),
            volume_group: vg.value.clone(),
        },
    })
}

/// `node.conf`'s text, read as the script reads it, as the typed [`HostConfig`].
pub fn parse_host_config(text: &str) -> Result<HostConfig, p::NodeConfError> {
    host_config(&p::parse_node_conf(text)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_peer_that_is_not_connected_has_an_unknown_disk_and_no_replication() {
        let status = p::parse_drbd_status(
            "pvc-1 role:Secondary\n  disk:UpToDate\n  edge-2 connection:Connecting\n  edge-3 role:Secondary\n    peer-disk:UpToDate\n",
        )
        .unwrap();
        let r = drbd_resource(&status.resources[0]);
        assert_eq!(r.disk_state, "UpToDate");
        let down = &r.peers[0];
        assert_eq!(
            (
                down.connection.as_str(),
                down.peer_disk.as_str(),
                down.replication.as_str()
            ),
            ("Connecting", "DUnknown", "Off")
        );
        let up = &r.peers[1];
        assert_eq!(
            (
                up.connection.as_str(),
                up.peer_disk.as_str(),
                up.replication.as_str()
            ),
            ("Connected", "UpToDate", "Established")
        );
    }

    const CONF: &str = "BOND_SLAVES=eno1 eno2\nSTORAGE_VLAN_ID=100\nSTORAGE_IP=10.100.0.11/24\n";

    #[test]
    fn a_node_conf_the_script_accepts_becomes_the_typed_host_config() {
        let c = parse_host_config(&format!(
            "{CONF}MGMT_VLAN_ID=200\nMGMT_IP=10.200.0.11/24\nBOND_MODE=802.3ad\n"
        ))
        .unwrap();
        assert_eq!(c.bond.name, "bond0");
        assert_eq!(c.bond.mode, BondMode::Lacp);
        assert_eq!(c.bond.miimon, 100);
        assert_eq!(c.bond.slaves, ["eno1", "eno2"]);
        assert_eq!((c.storage_vlan.id, c.storage_ip()), (100, Some("10.100.0.11")));
        assert_eq!(
            c.mgmt_vlan,
            Some(VlanConfig {
                id: 200,
                address: Some("10.200.0.11/24".into())
            })
        );
        assert_eq!(
            (c.storage.pool.as_str(), c.storage.volume_group.as_str()),
            ("pool0", "vg0/thinpool")
        );
        let no_ip = parse_host_config(&format!("{CONF}MGMT_VLAN_ID=200\n")).unwrap();
        assert_eq!(no_ip.mgmt_vlan.unwrap().address, None);
        assert_eq!(parse_host_config(CONF).unwrap().mgmt_vlan, None);
    }

    #[test]
    fn what_the_script_passes_unchecked_but_cannot_work_is_refused_at_its_line() {
        for (extra, key) in [
            ("BOND_MODE=fast", "BOND_MODE"),
            ("BOND_MODE=802.3ad  ", "BOND_MODE"),
            ("BOND_NAME=", "BOND_NAME"),
            ("BOND_NAME=bond-with-a-long-name", "BOND_NAME"),
            ("BOND_MIIMON=99999999999", "BOND_MIIMON"),
            ("BOND_SLAVES=a b c d e f g h i", "BOND_SLAVES"),
            ("STORAGE_VLAN_ID=0", "STORAGE_VLAN_ID"),
            ("STORAGE_VLAN_ID=4095", "STORAGE_VLAN_ID"),
            ("STORAGE_IP=10.0.0.300/24", "STORAGE_IP"),
            ("STORAGE_IP=10.0.0.1/33", "STORAGE_IP"),
            ("MGMT_VLAN_ID=5000", "MGMT_VLAN_ID"),
            ("MGMT_VLAN_ID=20\nMGMT_IP=somewhere", "MGMT_IP"),
            ("STORAGE_POOL=", "STORAGE_POOL"),
            ("STORAGE_VG=vg0", "STORAGE_VG"),
        ] {
            let e = parse_host_config(&format!("{CONF}{extra}\n")).unwrap_err();
            assert_eq!(e.key, key, "{extra}: {e}");
            let line = 4 + extra.matches('\n').count();
            assert_eq!(e.line, Some(line), "{extra}: {e}");
        }
    }

    #[test]
    fn a_node_conf_the_script_refuses_is_refused_with_the_parsers_error() {
        let e = parse_host_config("STORAGE_VLAN_ID=100\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (None, "BOND_SLAVES"));
    }
}
