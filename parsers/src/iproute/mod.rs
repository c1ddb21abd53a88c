//! iproute2: `ip link show` / `ip addr show`, with or without `-d` (details: `bond`,
//! `bond_slave`, `vlan`, `bridge` lines) and `-o` (one line per object, `\` between parts),
//! and the same commands with `-j` (JSON), read with serde_json.
//!
//! Both give [`IpLinks`]: one entry per interface with flags, operational state, master/slave
//! and VLAN parent relations, and addresses. Detail lines this parser does not type are kept in
//! `unknown` as printed; from JSON, the members it does not type are kept there too, written as
//! the text output's detail lines would be (see [`parse_ip_json`]). Address details it does not
//! type are kept in the address's `extra` the same way, so nothing is dropped.
//!
//! The types are here; `text` reads the text output and `json` the JSON output, each parser with
//! its helpers in one module.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::BondMode;

mod json;
mod text;

pub use json::parse_ip_json;
pub use text::parse_ip_text;

/// All interfaces of one `ip link` / `ip addr` capture.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct IpLinks {
    /// Interfaces in output order.
    pub links: Vec<IpLink>,
}

/// One interface.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct IpLink {
    /// Interface index.
    pub index: u64,
    /// Interface name, without the `@parent` suffix.
    pub name: String,
    /// The lower device after `@` (VLAN parent, or `ifN`/`NONE` for veth peers).
    pub parent: Option<String>,
    /// Interface flags (`BROADCAST`, `MASTER`, `SLAVE`, `UP`, `LOWER_UP`, `NO-CARRIER`, …).
    pub flags: Vec<String>,
    /// MTU.
    pub mtu: Option<u64>,
    /// Queueing discipline.
    pub qdisc: Option<String>,
    /// The bond or bridge this interface is enslaved to.
    pub master: Option<String>,
    /// Operational state (`UP`, `DOWN`, `UNKNOWN`, `LOWERLAYERDOWN`).
    pub operstate: Option<String>,
    /// Link type (`ether`, `loopback`, `none`, …).
    pub link_type: Option<String>,
    /// Link-layer address.
    pub address: Option<String>,
    /// Permanent address (`permaddr`, printed for bond slaves since iproute2 5.x).
    pub permanent_address: Option<String>,
    /// Kind from details (`bond`, `vlan`, `bridge`, `veth`, …).
    pub kind: Option<String>,
    /// `bond …` details of a bond master.
    pub bond: Option<IpBondInfo>,
    /// `bond_slave …` details of a bond member.
    pub bond_slave: Option<IpBondSlaveInfo>,
    /// `vlan …` details.
    pub vlan: Option<IpVlanInfo>,
    /// Alternative names.
    pub altnames: Vec<String>,
    /// Addresses (`ip addr`).
    pub addresses: Vec<IpAddress>,
    /// Detail lines this parser does not type, as printed. From `ip -j`: the untyped
    /// `linkinfo` data as `kind key value …` / `slave-kind_slave key value …` lines, then every
    /// other untyped member of the link as `key value`.
    pub unknown: Vec<String>,
}

/// One address.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct IpAddress {
    /// `inet` or `inet6`.
    pub family: String,
    /// The address.
    pub local: String,
    /// Prefix length.
    pub prefixlen: Option<u64>,
    /// Broadcast address.
    pub broadcast: Option<String>,
    /// Scope (`global`, `link`, `host`).
    pub scope: Option<String>,
    /// Label (IPv4), usually the interface name.
    pub label: Option<String>,
    /// Flags (`dynamic`, `noprefixroute`, `secondary`, …).
    pub flags: Vec<String>,
    /// `valid_lft` as printed (`forever`, `86313sec`).
    pub valid_lft: Option<String>,
    /// `preferred_lft` as printed.
    pub preferred_lft: Option<String>,
    /// Address details this parser does not type, as `key value` in the order printed (text:
    /// as printed, `metric 100`, `proto kernel_ll`, `peer 10.0.0.2/32`; JSON: `metric 100`,
    /// `protocol kernel_ll`, values written as in [`IpLink::unknown`]). Words of the text output
    /// that are not one of these keys are flags, and so is every JSON member that is `true`,
    /// known flag or not (a flag a newer iproute2 added): both go to `flags`, as before, so the
    /// two formats agree. A JSON member with another value, a known flag name included
    /// (`"dynamic": false`), comes here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

/// `bond …` details.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct IpBondInfo {
    /// The mode, when known.
    pub mode: Option<BondMode>,
    /// The mode as printed.
    pub mode_name: Option<String>,
    /// `miimon` in ms.
    pub miimon: Option<u64>,
    /// All other options as printed.
    pub options: BTreeMap<String, String>,
}

/// `bond_slave …` details.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct IpBondSlaveInfo {
    /// `state` (`ACTIVE`, `BACKUP`).
    pub state: Option<String>,
    /// `mii_status` (`UP`, `DOWN`, `GOING_DOWN`, `GOING_BACK`).
    pub mii_status: Option<String>,
    /// `link_failure_count`.
    pub link_failure_count: Option<u64>,
    /// `perm_hwaddr`.
    pub perm_hwaddr: Option<String>,
    /// `ad_aggregator_id`, in 802.3ad mode.
    pub ad_aggregator_id: Option<u64>,
    /// All other options as printed.
    pub options: BTreeMap<String, String>,
}

/// `vlan …` details.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct IpVlanInfo {
    /// `protocol` (`802.1Q`, `802.1ad`).
    pub protocol: Option<String>,
    /// VLAN ID.
    pub id: u64,
    /// Flags (`REORDER_HDR`, `GVRP`, …).
    pub flags: Vec<String>,
}

impl IpLink {
    /// Whether the link has carrier (`LOWER_UP`).
    pub fn has_carrier(&self) -> bool {
        self.flags.iter().any(|f| f == "LOWER_UP")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_without_untyped_details_serialises_without_extra() {
        let links = parse_ip_text("1: lo: <UP> mtu 65536\n    inet 127.0.0.1/8 scope host lo\n").unwrap();
        let value = serde_json::to_value(&links.links[0].addresses[0]).unwrap();
        assert!(value.get("extra").is_none(), "{value}");
        let links =
            parse_ip_text("1: lo: <UP> mtu 65536\n    inet 127.0.0.1/8 metric 5 scope host lo\n").unwrap();
        let value = serde_json::to_value(&links.links[0].addresses[0]).unwrap();
        assert_eq!(value["extra"], serde_json::json!(["metric 5"]));
    }
}
