//! iproute2: `ip link show` / `ip addr show`, with or without `-d` (details: `bond`,
//! `bond_slave`, `vlan`, `bridge` lines) and `-o` (one line per object, `\` between parts),
//! and the same commands with `-j` (JSON), read with serde_json.
//!
//! Both give [`IpLinks`]: one entry per interface with flags, operational state, master/slave
//! and VLAN parent relations, and addresses. Detail lines this parser does not type are kept in
//! `unknown` as printed.

use std::collections::BTreeMap;

use nom::{
    Parser,
    bytes::complete::{take_till1, take_while},
    character::complete::char,
    combinator::{cut, opt, rest},
    error::context,
    sequence::{preceded, terminated},
};
use serde::{Deserialize, Serialize};

use crate::{
    BondMode, ParseError,
    text::{Line, PResult, blanks, lines, run},
};

const TEXT: &str = "ip-text";
const JSON: &str = "ip-json";

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
    /// Detail lines this parser does not type, as printed.
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

type Head<'a> = (u64, &'a str, Option<&'a str>, Option<Vec<&'a str>>, &'a str);

/// `N: name[@parent]: <FLAGS> rest` (link form) or `N: name    inet …` (`ip -o addr`).
fn head(i: &str) -> PResult<'_, Head<'_>> {
    let (i, index) = terminated(crate::text::number, char(':')).parse(i)?;
    let (i, _) = blanks(i)?;
    let (i, full) = context(
        "an interface name",
        take_till1(|c: char| c == ':' || c.is_whitespace()),
    )
    .parse(i)?;
    let (name, parent) = match full.split_once('@') {
        Some((n, p)) => (n, Some(p)),
        None => (full, None),
    };
    let (i, _) = opt(char(':')).parse(i)?;
    let (i, _) = blanks(i)?;
    // Once `<` opened the flag list, a missing `>` is an error, not a different line shape.
    let (i, flags) = opt(preceded(
        char('<'),
        cut(terminated(
            take_while(|c: char| c != '>' && c != '\\')
                .map(|f: &str| f.split(',').filter(|f| !f.is_empty()).collect::<Vec<_>>()),
            context("`>` closing the flags", char('>')),
        )),
    ))
    .parse(i)?;
    let (i, tail) = preceded(blanks, rest).parse(i)?;
    Ok((i, (index, name, parent, flags, tail)))
}

fn pairs(text: &str) -> Vec<(&str, Option<&str>)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let next = words.get(i + 1).copied();
        out.push((*w, next));
        i += 2;
    }
    out
}

/// Splits a physical line into the parts `ip -o` joins with `\`.
fn segments<'a>(line: &Line<'a>) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    for part in line.text.split('\\') {
        out.push(Line {
            offset: line.offset_of(part),
            text: part,
        });
    }
    out
}

/// Parses `ip link show` / `ip addr show` text output, with or without `-d` and `-o`.
pub fn parse_ip_text(input: &str) -> Result<IpLinks, ParseError> {
    let mut out = IpLinks::default();
    for physical in lines(input) {
        if physical.is_blank() {
            continue;
        }
        for (n, seg) in segments(&physical).into_iter().enumerate() {
            if seg.is_blank() {
                continue;
            }
            let is_head = n == 0 && seg.indent() == 0;
            if is_head {
                let (index, name, parent, flags, tail) = run(
                    TEXT,
                    input,
                    &seg,
                    seg.text.trim_end(),
                    "`N: name: <FLAGS> …`",
                    head,
                )?;
                // `ip -o addr` repeats the head for every address of a link.
                let existing = out.links.iter().position(|l| l.index == index && l.name == name);
                let idx = match existing {
                    Some(idx) => idx,
                    None => {
                        out.links.push(IpLink {
                            index,
                            name: name.to_owned(),
                            parent: parent.map(str::to_owned),
                            ..IpLink::default()
                        });
                        out.links.len() - 1
                    }
                };
                let Some(link) = out.links.get_mut(idx) else {
                    continue;
                };
                match flags {
                    Some(f) => {
                        link.flags = f.into_iter().map(str::to_owned).collect();
                        head_tail(link, &seg, tail, input)?;
                    }
                    None => detail(link, &seg, tail.trim(), input)?,
                }
                continue;
            }
            let Some(link) = out.links.last_mut() else {
                return Err(ParseError::at(
                    TEXT,
                    input,
                    seg.offset_of(seg.text.trim_start()),
                    "`N: name: <FLAGS> …` before detail lines",
                ));
            };
            detail(link, &seg, seg.trimmed(), input)?;
        }
    }
    Ok(out)
}

fn num_at(line: &Line<'_>, input: &str, v: Option<&str>) -> Result<Option<u64>, ParseError> {
    match v {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ParseError::at(TEXT, input, line.offset_of(v), "an unsigned number")),
    }
}

fn head_tail(link: &mut IpLink, line: &Line<'_>, tail: &str, input: &str) -> Result<(), ParseError> {
    for (k, v) in pairs(tail) {
        match k {
            "mtu" => link.mtu = num_at(line, input, v)?,
            "qdisc" => link.qdisc = v.map(str::to_owned),
            "master" => link.master = v.map(str::to_owned),
            "state" => link.operstate = v.map(str::to_owned),
            _ => {}
        }
    }
    Ok(())
}

fn detail(link: &mut IpLink, line: &Line<'_>, body: &str, input: &str) -> Result<(), ParseError> {
    let mut words = body.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(());
    };
    let rest_text = body.get(first.len()..).unwrap_or("").trim();
    if let Some(kind) = first.strip_prefix("link/") {
        link.link_type = Some(kind.to_owned());
        let mut it = rest_text.split_whitespace().peekable();
        if let Some(addr) = it.next_if(|w| w.contains(':')) {
            link.address = Some(addr.to_owned());
        }
        while let Some(w) = it.next() {
            if w == "permaddr" {
                link.permanent_address = it.next().map(str::to_owned);
            }
        }
        return Ok(());
    }
    match first {
        "inet" | "inet6" => {
            let mut it = rest_text.split_whitespace();
            let Some(cidr) = it.next() else {
                return Err(ParseError::at(
                    TEXT,
                    input,
                    line.offset_of(body) + body.len(),
                    "an address after `inet`",
                ));
            };
            let (local, prefix) = match cidr.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (cidr, None),
            };
            let mut addr = IpAddress {
                family: first.to_owned(),
                local: local.to_owned(),
                prefixlen: num_at(line, input, prefix)?,
                ..IpAddress::default()
            };
            let mut pending_label = false;
            while let Some(w) = it.next() {
                match w {
                    "brd" => addr.broadcast = it.next().map(str::to_owned),
                    "scope" => {
                        addr.scope = it.next().map(str::to_owned);
                        pending_label = first == "inet";
                    }
                    "peer" | "metric" | "proto" => {
                        it.next();
                    }
                    "valid_lft" => addr.valid_lft = it.next().map(str::to_owned),
                    "preferred_lft" => addr.preferred_lft = it.next().map(str::to_owned),
                    w if pending_label && (w == link.name || w.starts_with(&format!("{}:", link.name))) => {
                        addr.label = Some(w.to_owned());
                    }
                    w => addr.flags.push(w.to_owned()),
                }
            }
            link.addresses.push(addr);
        }
        "valid_lft" => {
            let mut it = body.split_whitespace();
            if let Some(addr) = link.addresses.last_mut() {
                while let Some(w) = it.next() {
                    match w {
                        "valid_lft" => addr.valid_lft = it.next().map(str::to_owned),
                        "preferred_lft" => addr.preferred_lft = it.next().map(str::to_owned),
                        _ => {}
                    }
                }
            }
        }
        "altname" => link
            .altnames
            .extend(rest_text.split_whitespace().map(str::to_owned)),
        "bond" if rest_text.starts_with("mode") => {
            let mut info = IpBondInfo::default();
            for (k, v) in pairs(rest_text) {
                match k {
                    "mode" => {
                        info.mode = v.and_then(BondMode::from_description);
                        info.mode_name = v.map(str::to_owned);
                    }
                    "miimon" => info.miimon = num_at(line, input, v)?,
                    _ => {
                        info.options.insert(k.to_owned(), v.unwrap_or("").to_owned());
                    }
                }
            }
            link.kind = Some("bond".to_owned());
            link.bond = Some(info);
        }
        "bond_slave" => {
            let mut info = IpBondSlaveInfo::default();
            for (k, v) in pairs(rest_text) {
                match k {
                    "state" => info.state = v.map(str::to_owned),
                    "mii_status" => info.mii_status = v.map(str::to_owned),
                    "link_failure_count" => info.link_failure_count = num_at(line, input, v)?,
                    "perm_hwaddr" => info.perm_hwaddr = v.map(str::to_owned),
                    "ad_aggregator_id" => info.ad_aggregator_id = num_at(line, input, v)?,
                    _ => {
                        info.options.insert(k.to_owned(), v.unwrap_or("").to_owned());
                    }
                }
            }
            link.bond_slave = Some(info);
        }
        "vlan" if rest_text.starts_with("protocol") || rest_text.starts_with("id") => {
            let mut info = IpVlanInfo::default();
            let mut it = rest_text.split_whitespace();
            let mut id = None;
            while let Some(w) = it.next() {
                match w {
                    "protocol" => info.protocol = it.next().map(str::to_owned),
                    "id" => id = num_at(line, input, it.next())?,
                    w if w.starts_with('<') => info.flags.extend(
                        w.trim_matches(['<', '>'])
                            .split(',')
                            .filter(|f| !f.is_empty())
                            .map(str::to_owned),
                    ),
                    _ => {}
                }
            }
            info.id = id.ok_or_else(|| {
                ParseError::at(
                    TEXT,
                    input,
                    line.offset_of(body) + body.len(),
                    "`id N` in the vlan details",
                )
            })?;
            link.kind = Some("vlan".to_owned());
            link.vlan = Some(info);
        }
        "bridge" | "veth" | "vxlan" | "macvlan" | "dummy" | "bridge_slave" | "tun" | "wireguard" => {
            if first != "bridge_slave" {
                link.kind = Some(first.to_owned());
            }
            link.unknown.push(body.to_owned());
        }
        _ => link.unknown.push(body.to_owned()),
    }
    Ok(())
}

#[derive(Deserialize)]
struct JsonLink {
    ifindex: Option<u64>,
    ifname: Option<String>,
    link: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
    mtu: Option<u64>,
    qdisc: Option<String>,
    master: Option<String>,
    operstate: Option<String>,
    link_type: Option<String>,
    address: Option<String>,
    permaddr: Option<String>,
    #[serde(default)]
    altnames: Vec<String>,
    linkinfo: Option<JsonLinkInfo>,
    #[serde(default)]
    addr_info: Vec<JsonAddr>,
}

#[derive(Deserialize)]
struct JsonLinkInfo {
    info_kind: Option<String>,
    info_data: Option<BTreeMap<String, serde_json::Value>>,
    info_slave_kind: Option<String>,
    info_slave_data: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct JsonAddr {
    family: Option<String>,
    local: Option<String>,
    prefixlen: Option<u64>,
    broadcast: Option<String>,
    scope: Option<String>,
    label: Option<String>,
    valid_life_time: Option<u64>,
    preferred_life_time: Option<u64>,
    /// Everything else; address flags are among these as `"name": true`.
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

/// The address flags `ip -j` prints as `"name": true`, in the order iproute2 prints them (the
/// order of the text output's words). `dynamic` stands where `permanent` is in the kernel's bit
/// order: it is printed when that bit is clear; `temporary` is `secondary` on IPv6.
const JSON_ADDR_FLAGS: [&str; 13] = [
    "secondary",
    "temporary",
    "nodad",
    "optimistic",
    "dadfailed",
    "home",
    "deprecated",
    "tentative",
    "dynamic",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "stable-privacy",
];

/// The flags of one `addr_info` entry: the known ones in iproute2's order, then any other
/// `true` member (a flag a newer iproute2 added) by name.
fn json_addr_flags(rest: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    let set = |k: &str| matches!(rest.get(k), Some(serde_json::Value::Bool(true)));
    let mut flags: Vec<String> = JSON_ADDR_FLAGS
        .iter()
        .filter(|k| set(k))
        .map(|k| (*k).to_owned())
        .collect();
    flags.extend(
        rest.iter()
            .filter(|(k, v)| {
                matches!(v, serde_json::Value::Bool(true)) && !JSON_ADDR_FLAGS.contains(&k.as_str())
            })
            .map(|(k, _)| k.clone()),
    );
    flags
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lifetime(v: Option<u64>) -> Option<String> {
    // iproute2 prints the all-ones lifetime as `forever`.
    v.map(|s| {
        if s == u64::from(u32::MAX) {
            "forever".to_owned()
        } else {
            format!("{s}sec")
        }
    })
}

/// Parses `ip -j link show` / `ip -j addr show` (optionally `-d`) output.
pub fn parse_ip_json(input: &str) -> Result<IpLinks, ParseError> {
    let parsed: Vec<JsonLink> = serde_json::from_str(input).map_err(|e| {
        let offset = if e.is_eof() {
            input.len()
        } else {
            lines(input)
                .get(e.line().saturating_sub(1))
                .map_or(input.len(), |l| l.offset + e.column().saturating_sub(1))
        };
        let expected = match e.classify() {
            serde_json::error::Category::Eof => "more JSON (the input ends early)".to_owned(),
            serde_json::error::Category::Data => format!("an array of interfaces: {e}"),
            _ => format!("JSON: {e}"),
        };
        ParseError::at(JSON, input, offset, expected)
    })?;
    let links = parsed
        .into_iter()
        .map(|j| {
            let mut link = IpLink {
                index: j.ifindex.unwrap_or(0),
                name: j.ifname.unwrap_or_default(),
                parent: j.link,
                flags: j.flags,
                mtu: j.mtu,
                qdisc: j.qdisc,
                master: j.master,
                operstate: j.operstate,
                link_type: j.link_type,
                address: j.address,
                permanent_address: j.permaddr,
                altnames: j.altnames,
                ..IpLink::default()
            };
            if let Some(info) = j.linkinfo {
                let data = info.info_data.unwrap_or_default();
                let get = |k: &str| data.get(k).map(json_text);
                let num = |k: &str| data.get(k).and_then(serde_json::Value::as_u64);
                match info.info_kind.as_deref() {
                    Some("bond") => {
                        let mode_name = get("mode");
                        link.bond = Some(IpBondInfo {
                            mode: mode_name.as_deref().and_then(BondMode::from_description),
                            mode_name,
                            miimon: num("miimon"),
                            options: data
                                .iter()
                                .filter(|(k, _)| *k != "mode" && *k != "miimon")
                                .map(|(k, v)| (k.clone(), json_text(v)))
                                .collect(),
                        });
                    }
                    Some("vlan") => {
                        link.vlan = num("id").map(|id| IpVlanInfo {
                            protocol: get("protocol"),
                            id,
                            flags: data
                                .get("flags")
                                .and_then(serde_json::Value::as_array)
                                .map(|a| a.iter().map(json_text).collect())
                                .unwrap_or_default(),
                        });
                    }
                    _ => {}
                }
                link.kind = info.info_kind;
                if info.info_slave_kind.as_deref() == Some("bond") {
                    let sd = info.info_slave_data.unwrap_or_default();
                    let get = |k: &str| sd.get(k).map(json_text);
                    let num = |k: &str| sd.get(k).and_then(serde_json::Value::as_u64);
                    link.bond_slave = Some(IpBondSlaveInfo {
                        state: get("state"),
                        mii_status: get("mii_status"),
                        link_failure_count: num("link_failure_count"),
                        perm_hwaddr: get("perm_hwaddr"),
                        ad_aggregator_id: num("ad_aggregator_id"),
                        options: sd
                            .iter()
                            .filter(|(k, _)| {
                                !matches!(
                                    k.as_str(),
                                    "state"
                                        | "mii_status"
                                        | "link_failure_count"
                                        | "perm_hwaddr"
                                        | "ad_aggregator_id"
                                )
                            })
                            .map(|(k, v)| (k.clone(), json_text(v)))
                            .collect(),
                    });
                }
            }
            link.addresses = j
                .addr_info
                .into_iter()
                .map(|a| {
                    let flags = json_addr_flags(&a.rest);
                    IpAddress {
                        family: a.family.unwrap_or_default(),
                        local: a.local.unwrap_or_default(),
                        prefixlen: a.prefixlen,
                        broadcast: a.broadcast,
                        scope: a.scope,
                        label: a.label,
                        flags,
                        valid_lft: lifetime(a.valid_life_time),
                        preferred_lft: lifetime(a.preferred_life_time),
                    }
                })
                .collect();
            link
        })
        .collect();
    Ok(IpLinks { links })
}
