//! The API's view of what the host tools print, from the parsers' types: one conversion for the
//! agent (which reads its host, for `NodeFacts`) and the bridge (which reads the script's reports
//! of the same tools, for `EdgeNode`), so that a fact reads the same whichever of them saw it and
//! the bridge's merge of the two compares like with like.
//!
//! Behind the `host` feature, so that the API crate alone still knows no parser. Pure; no I/O.

use nodewright_parsers as p;

use crate::edgenode::{BondMode, DrbdPeerStatus, DrbdResourceStatus};

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
}
