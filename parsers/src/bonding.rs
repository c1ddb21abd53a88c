//! `/proc/net/bonding/<bond>`: the bonding driver's status file, from the 2.x drivers of
//! 2.4/2.6 kernels (`Ethernet Channel Bonding Driver: v2.6.0 (January 14, 2004)`) to current
//! kernels, which print the kernel release as the version (`v6.8.0-142-generic`).
//!
//! The file is a header section, an optional `802.3ad info` section and one section per slave.
//! Lines are `Key: value`; sub-blocks (`Active Aggregator Info:`, `details actor lacp pdu:`)
//! are indented. Fields the driver added or dropped across versions are optional, and lines this
//! parser does not know are kept raw in `unknown` of the section they appeared in.

use nom::{
    Parser,
    bytes::complete::take_while1,
    character::complete::char,
    combinator::rest,
    error::context,
    sequence::{preceded, separated_pair},
};
use serde::Serialize;

use crate::{
    ParseError,
    text::{Line, PResult, blanks, lines, numeric_field, run},
};

const FORMAT: &str = "proc-net-bonding";
const HEADER: &str = "Ethernet Channel Bonding Driver";

/// Bonding modes, named as `ip link` and the kernel's `mode=` option name them.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BondMode {
    /// Mode 0.
    #[serde(rename = "balance-rr")]
    BalanceRr,
    /// Mode 1.
    #[serde(rename = "active-backup")]
    ActiveBackup,
    /// Mode 2.
    #[serde(rename = "balance-xor")]
    BalanceXor,
    /// Mode 3.
    #[serde(rename = "broadcast")]
    Broadcast,
    /// Mode 4, LACP.
    #[serde(rename = "802.3ad")]
    Lacp,
    /// Mode 5.
    #[serde(rename = "balance-tlb")]
    BalanceTlb,
    /// Mode 6.
    #[serde(rename = "balance-alb")]
    BalanceAlb,
}

impl BondMode {
    /// Every mode, in the kernel's order (mode 0 to 6).
    pub const ALL: [BondMode; 7] = [
        BondMode::BalanceRr,
        BondMode::ActiveBackup,
        BondMode::BalanceXor,
        BondMode::Broadcast,
        BondMode::Lacp,
        BondMode::BalanceTlb,
        BondMode::BalanceAlb,
    ];

    /// The mode's name, as `ip -d link` prints it and the kernel's `mode=` option takes it (the
    /// same as its serde name).
    pub const fn name(self) -> &'static str {
        match self {
            BondMode::BalanceRr => "balance-rr",
            BondMode::ActiveBackup => "active-backup",
            BondMode::BalanceXor => "balance-xor",
            BondMode::Broadcast => "broadcast",
            BondMode::Lacp => "802.3ad",
            BondMode::BalanceTlb => "balance-tlb",
            BondMode::BalanceAlb => "balance-alb",
        }
    }

    /// The mode whose [`name`](BondMode::name) is exactly `text`; unlike
    /// [`from_description`](BondMode::from_description), nothing else matches.
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == text)
    }

    /// Maps the driver's description (`fault-tolerance (active-backup)`) or a mode name
    /// (`active-backup`, as `ip -d link` prints it) to a mode.
    pub fn from_description(text: &str) -> Option<Self> {
        let t = text.to_ascii_lowercase();
        let has = |s: &str| t.contains(s);
        if has("802.3ad") {
            Some(Self::Lacp)
        } else if has("round-robin") || has("balance-rr") {
            Some(Self::BalanceRr)
        } else if has("active-backup") {
            Some(Self::ActiveBackup)
        } else if has("(xor)") || has("balance-xor") {
            Some(Self::BalanceXor)
        } else if has("broadcast") {
            Some(Self::Broadcast)
        } else if has("transmit load balancing") || has("balance-tlb") {
            Some(Self::BalanceTlb)
        } else if has("adaptive load balancing") || has("balance-alb") {
            Some(Self::BalanceAlb)
        } else {
            None
        }
    }
}

/// Link state as the bonding driver reports it (`MII Status`).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// `up`.
    Up,
    /// `down`.
    Down,
    /// Anything else (`going down`, `going back`), or not reported.
    #[default]
    Unknown,
}

impl LinkState {
    fn from_text(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "up" => Self::Up,
            "down" => Self::Down,
            _ => Self::Unknown,
        }
    }
}

/// The whole status file of one bond.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct BondingStatus {
    /// What follows `Ethernet Channel Bonding Driver:`, for example `v3.7.1 (April 27, 2011)`.
    pub driver_version: String,
    /// The mode, when the description is one this parser knows.
    pub mode: Option<BondMode>,
    /// The `Bonding Mode:` line as printed.
    pub mode_description: Option<String>,
    /// `Transmit Hash Policy`, for example `layer3+4 (1)`.
    pub transmit_hash_policy: Option<String>,
    /// `Primary Slave`, without the `(primary_reselect …)` suffix; `None` when the driver says `None`.
    pub primary_slave: Option<String>,
    /// The `primary_reselect` policy printed after the primary slave.
    pub primary_reselect: Option<String>,
    /// `Currently Active Slave`; `None` when absent or `None`.
    pub active_slave: Option<String>,
    /// The bond's own `MII Status`.
    pub mii_status: LinkState,
    /// `MII Polling Interval (ms)`.
    pub mii_polling_interval_ms: Option<u64>,
    /// `Up Delay (ms)`.
    pub up_delay_ms: Option<u64>,
    /// `Down Delay (ms)`.
    pub down_delay_ms: Option<u64>,
    /// `Peer Notification Delay (ms)`, printed since kernel 5.3.
    pub peer_notification_delay_ms: Option<u64>,
    /// `ARP Polling Interval (ms)`, when ARP monitoring is used.
    pub arp_polling_interval_ms: Option<u64>,
    /// `ARP IP target/s (n.n.n.n form)`, as printed.
    pub arp_ip_targets: Option<String>,
    /// The `802.3ad info` section, in 802.3ad mode.
    pub lacp: Option<LacpInfo>,
    /// One entry per `Slave Interface:` section, in file order.
    pub slaves: Vec<BondSlave>,
    /// Header lines this parser does not know, as printed.
    pub unknown: Vec<String>,
}

/// The `802.3ad info` section.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct LacpInfo {
    /// `LACP active` (`on`/`off`), printed since kernel 5.18.
    pub lacp_active: Option<String>,
    /// `LACP rate` (`slow`/`fast`).
    pub lacp_rate: Option<String>,
    /// `Min links`.
    pub min_links: Option<u64>,
    /// `Aggregator selection policy (ad_select)`.
    pub aggregator_selection_policy: Option<String>,
    /// `System priority`, printed since 3.x kernels for privileged readers.
    pub system_priority: Option<u64>,
    /// `System MAC address`.
    pub system_mac_address: Option<String>,
    /// `Active Aggregator Info`.
    pub active_aggregator: Option<ActiveAggregator>,
    /// The driver printed `bond … has no active aggregator`.
    pub no_active_aggregator: bool,
    /// Lines of this section this parser does not know.
    pub unknown: Vec<String>,
}

/// `Active Aggregator Info`.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct ActiveAggregator {
    /// `Aggregator ID`.
    pub aggregator_id: Option<u64>,
    /// `Number of ports`.
    pub number_of_ports: Option<u64>,
    /// `Actor Key`.
    pub actor_key: Option<u64>,
    /// `Partner Key`.
    pub partner_key: Option<u64>,
    /// `Partner Mac Address`; all zeros when no LACP partner answered.
    pub partner_mac_address: Option<String>,
}

/// One `Slave Interface:` section.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct BondSlave {
    /// Interface name.
    pub name: String,
    /// `MII Status`.
    pub mii_status: LinkState,
    /// `Speed` in Mb/s; `None` when `Unknown` or not printed (2.x drivers).
    pub speed_mbps: Option<u64>,
    /// `Duplex`.
    pub duplex: Option<String>,
    /// `Link Failure Count`.
    pub link_failure_count: Option<u64>,
    /// `Permanent HW addr`; `None` when printed empty.
    pub permanent_hw_addr: Option<String>,
    /// `Slave queue ID`.
    pub queue_id: Option<u64>,
    /// `Aggregator ID`; `None` for `N/A`.
    pub aggregator_id: Option<u64>,
    /// `Actor Churn State`.
    pub actor_churn_state: Option<String>,
    /// `Partner Churn State`.
    pub partner_churn_state: Option<String>,
    /// `Actor Churned Count`.
    pub actor_churned_count: Option<u64>,
    /// `Partner Churned Count`.
    pub partner_churned_count: Option<u64>,
    /// `details actor lacp pdu`.
    pub actor_lacp_pdu: Option<LacpPdu>,
    /// `details partner lacp pdu`.
    pub partner_lacp_pdu: Option<LacpPdu>,
    /// Lines of this section this parser does not know.
    pub unknown: Vec<String>,
}

/// A `details actor/partner lacp pdu` block.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct LacpPdu {
    /// `system priority`.
    pub system_priority: Option<u64>,
    /// `system mac address`.
    pub system_mac_address: Option<String>,
    /// `port key` (actor) or `oper key` (partner).
    pub key: Option<u64>,
    /// `port priority`.
    pub port_priority: Option<u64>,
    /// `port number`.
    pub port_number: Option<u64>,
    /// `port state`, the LACP state bits.
    pub port_state: Option<u64>,
    /// Lines of this block this parser does not know.
    pub unknown: Vec<String>,
}

/// One classified line.
enum Item<'a> {
    Field(&'a str, &'a str),
    LacpHeader,
    NoActiveAggregator,
}

/// A field name: what the driver prints before `:`.
fn field_name(i: &str) -> PResult<'_, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || " ()._/-+'".contains(c)).parse(i)
}

/// `Key: value`, value possibly empty.
fn parse_field(i: &str) -> PResult<'_, (&str, &str)> {
    context(
        "a `Key: value` line",
        separated_pair(field_name, char(':'), preceded(blanks, rest)),
    )
    .parse(i)
}

fn parse_item(i: &str) -> PResult<'_, Item<'_>> {
    if i == "802.3ad info" {
        return Ok(("", Item::LacpHeader));
    }
    if i.starts_with("bond ") && i.ends_with("has no active aggregator") {
        return Ok(("", Item::NoActiveAggregator));
    }
    parse_field
        .map(|(k, v)| Item::Field(k.trim_end(), v.trim_end()))
        .parse(i)
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Header,
    Lacp,
    Aggregator,
    Slave,
    ActorPdu,
    PartnerPdu,
}

fn opt_text(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// Parses one `/proc/net/bonding/<bond>` file.
pub fn parse_proc_net_bonding(input: &str) -> Result<BondingStatus, ParseError> {
    let all = lines(input);
    let mut it = all.iter().filter(|l| !l.is_blank());
    let first = it
        .next()
        .ok_or_else(|| ParseError::at(FORMAT, input, input.len(), format!("`{HEADER}:`")))?;
    let version = run(
        FORMAT,
        input,
        first,
        first.trimmed(),
        "the driver header",
        context(
            "`Ethernet Channel Bonding Driver:` header",
            preceded((nom::bytes::complete::tag(HEADER), char(':'), blanks), rest),
        ),
    )?;
    let mut status = BondingStatus {
        driver_version: version.trim().to_owned(),
        ..BondingStatus::default()
    };
    let mut section = Section::Header;
    for line in it {
        let item = run(
            FORMAT,
            input,
            line,
            line.trimmed(),
            "a `Key: value` line",
            parse_item,
        )?;
        let indented = line.indent() > 0;
        // Sub-blocks end at the first line that is not indented.
        if !indented {
            section = match section {
                Section::Aggregator => Section::Lacp,
                Section::ActorPdu | Section::PartnerPdu => Section::Slave,
                s => s,
            };
        }
        match item {
            Item::LacpHeader => {
                status.lacp.get_or_insert_with(LacpInfo::default);
                section = Section::Lacp;
            }
            Item::NoActiveAggregator => {
                status
                    .lacp
                    .get_or_insert_with(LacpInfo::default)
                    .no_active_aggregator = true;
            }
            Item::Field(key, value) => {
                section = apply_field(&mut status, section, line, key, value, input)?;
            }
        }
    }
    Ok(status)
}

fn apply_field(
    status: &mut BondingStatus,
    section: Section,
    line: &Line<'_>,
    key: &str,
    value: &str,
    input: &str,
) -> Result<Section, ParseError> {
    let num = |v: &str| numeric_field(FORMAT, input, line, v).map(Some);
    if key == "Slave Interface" {
        status.slaves.push(BondSlave {
            name: value.to_owned(),
            ..BondSlave::default()
        });
        return Ok(Section::Slave);
    }
    let raw = || line.trimmed().to_owned();
    match section {
        Section::Header => {
            match key {
                "Bonding Mode" => {
                    status.mode = BondMode::from_description(value);
                    status.mode_description = opt_text(value);
                }
                "Transmit Hash Policy" => status.transmit_hash_policy = opt_text(value),
                "Primary Slave" => {
                    let (name, reselect) = match value.split_once(" (primary_reselect ") {
                        Some((n, r)) => (n, Some(r.trim_end_matches(')').to_owned())),
                        None => (value, None),
                    };
                    status.primary_slave = opt_text(name).filter(|n| n != "None");
                    status.primary_reselect = reselect;
                }
                "Currently Active Slave" => {
                    status.active_slave = opt_text(value).filter(|n| n != "None");
                }
                "MII Status" => status.mii_status = LinkState::from_text(value),
                "MII Polling Interval (ms)" => status.mii_polling_interval_ms = num(value)?,
                "Up Delay (ms)" => status.up_delay_ms = num(value)?,
                "Down Delay (ms)" => status.down_delay_ms = num(value)?,
                "Peer Notification Delay (ms)" => {
                    status.peer_notification_delay_ms = num(value)?;
                }
                "ARP Polling Interval (ms)" => status.arp_polling_interval_ms = num(value)?,
                k if k.starts_with("ARP IP target") => status.arp_ip_targets = opt_text(value),
                _ => status.unknown.push(raw()),
            }
            Ok(Section::Header)
        }
        Section::Lacp | Section::Aggregator => {
            let lacp = status.lacp.get_or_insert_with(LacpInfo::default);
            if key == "Active Aggregator Info" {
                lacp.active_aggregator = Some(ActiveAggregator::default());
                return Ok(Section::Aggregator);
            }
            if section == Section::Aggregator {
                let agg = lacp
                    .active_aggregator
                    .get_or_insert_with(ActiveAggregator::default);
                match key {
                    "Aggregator ID" => agg.aggregator_id = num(value)?,
                    "Number of ports" => agg.number_of_ports = num(value)?,
                    "Actor Key" => agg.actor_key = num(value)?,
                    "Partner Key" => agg.partner_key = num(value)?,
                    "Partner Mac Address" => agg.partner_mac_address = opt_text(value),
                    _ => lacp.unknown.push(raw()),
                }
                return Ok(Section::Aggregator);
            }
            match key {
                "LACP active" => lacp.lacp_active = opt_text(value),
                "LACP rate" => lacp.lacp_rate = opt_text(value),
                "Min links" => lacp.min_links = num(value)?,
                "Aggregator selection policy (ad_select)" => {
                    lacp.aggregator_selection_policy = opt_text(value);
                }
                "System priority" => lacp.system_priority = num(value)?,
                "System MAC address" => lacp.system_mac_address = opt_text(value),
                _ => lacp.unknown.push(raw()),
            }
            Ok(Section::Lacp)
        }
        Section::Slave | Section::ActorPdu | Section::PartnerPdu => {
            let Some(slave) = status.slaves.last_mut() else {
                status.unknown.push(raw());
                return Ok(section);
            };
            match key {
                "details actor lacp pdu" => {
                    slave.actor_lacp_pdu = Some(LacpPdu::default());
                    return Ok(Section::ActorPdu);
                }
                "details partner lacp pdu" => {
                    slave.partner_lacp_pdu = Some(LacpPdu::default());
                    return Ok(Section::PartnerPdu);
                }
                _ => {}
            }
            if section != Section::Slave {
                let pdu = if section == Section::ActorPdu {
                    slave.actor_lacp_pdu.get_or_insert_with(LacpPdu::default)
                } else {
                    slave.partner_lacp_pdu.get_or_insert_with(LacpPdu::default)
                };
                match key {
                    "system priority" => pdu.system_priority = num(value)?,
                    "system mac address" => pdu.system_mac_address = opt_text(value),
                    "port key" | "oper key" => pdu.key = num(value)?,
                    "port priority" => pdu.port_priority = num(value)?,
                    "port number" => pdu.port_number = num(value)?,
                    "port state" => pdu.port_state = num(value)?,
                    _ => pdu.unknown.push(raw()),
                }
                return Ok(section);
            }
            match key {
                "MII Status" => slave.mii_status = LinkState::from_text(value),
                "Speed" => {
                    slave.speed_mbps = match value.strip_suffix(" Mbps") {
                        Some(n) => num(n)?,
                        None => None,
                    };
                }
                "Duplex" => slave.duplex = opt_text(value),
                "Link Failure Count" => slave.link_failure_count = num(value)?,
                "Permanent HW addr" => slave.permanent_hw_addr = opt_text(value),
                "Slave queue ID" => slave.queue_id = num(value)?,
                "Aggregator ID" => {
                    slave.aggregator_id = if value == "N/A" { None } else { num(value)? };
                }
                "Actor Churn State" => slave.actor_churn_state = opt_text(value),
                "Partner Churn State" => slave.partner_churn_state = opt_text(value),
                "Actor Churned Count" => slave.actor_churned_count = num(value)?,
                "Partner Churned Count" => slave.partner_churned_count = num(value)?,
                _ => slave.unknown.push(raw()),
            }
            Ok(Section::Slave)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bond_mode_name_is_its_serde_name_and_reads_back_exactly() {
        for mode in BondMode::ALL {
            assert_eq!(
                serde_json::to_value(mode).ok(),
                Some(serde_json::Value::String(mode.name().to_owned()))
            );
            assert_eq!(BondMode::from_name(mode.name()), Some(mode));
        }
        assert_eq!(BondMode::from_name("fault-tolerance (active-backup)"), None);
        assert_eq!(BondMode::from_name("Active-Backup"), None);
    }
}
