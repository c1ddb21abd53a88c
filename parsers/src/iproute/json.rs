//! `ip -j link show` / `ip -j addr show` output (optionally `-d`, `-s`), read with serde_json into
//! [`IpLinks`]. Members the types do not model are kept, written as the text output's detail lines
//! would be (see [`parse_ip_json`]). The whole JSON path is in this module.

use serde::Deserialize;

use super::{IpAddress, IpBondInfo, IpBondSlaveInfo, IpLink, IpLinks, IpVlanInfo};
use crate::{BondMode, ParseError, text::lines};

const JSON: &str = "ip-json";

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
    /// Every other member (`txqlen`, `promiscuity`, `stats64`, …), kept in `unknown`.
    #[serde(flatten)]
    rest: Members,
}

#[derive(Deserialize)]
struct JsonLinkInfo {
    info_kind: Option<String>,
    info_data: Option<Members>,
    info_slave_kind: Option<String>,
    info_slave_data: Option<Members>,
    /// Every other member (`info_xstats`, …), kept in `unknown`.
    #[serde(flatten)]
    rest: Members,
}

/// The members of a JSON object in the order they were printed, duplicates included. iproute2
/// prints the JSON members in the order of the text output's words, so data kept from them reads
/// like the text detail lines.
#[derive(Default)]
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(member) = map.next_entry::<String, serde_json::Value>()? {
                    out.push(member);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

impl Members {
    fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
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
    /// Everything else, in print order; address flags are among these as `"name": true`.
    #[serde(flatten)]
    rest: Members,
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

/// Splits the untyped members of one `addr_info` entry into flags and the rest. Flags: the
/// known ones in iproute2's order, then any other `true` member (a flag a newer iproute2 added)
/// in print order, each once. Every other member, in print order, as `key value`.
fn json_addr_rest(rest: &Members) -> (Vec<String>, Vec<String>) {
    let is_flag = |v: &serde_json::Value| matches!(v, serde_json::Value::Bool(true));
    let mut flags: Vec<String> = JSON_ADDR_FLAGS
        .iter()
        .filter(|f| rest.0.iter().any(|(k, v)| k == *f && is_flag(v)))
        .map(|f| (*f).to_owned())
        .collect();
    let mut extra = Vec::new();
    for (k, v) in &rest.0 {
        if !is_flag(v) {
            extra.push(format!("{k} {}", json_word(v)));
        } else if !flags.contains(k) {
            flags.push(k.clone());
        }
    }
    (flags, extra)
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

/// A JSON value as one word of a text detail line: a string as printed when it is one non-empty
/// word, anything else (a string with blanks, a number, an array, an object) as compact JSON.
fn json_word(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s)
            if !s.is_empty() && !s.contains(char::is_whitespace) && !s.starts_with('"') =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

/// `head key value key value …`, the shape of the text output's detail line for the same data.
fn json_detail_line<'a>(
    head: &str,
    members: impl IntoIterator<Item = &'a (String, serde_json::Value)>,
) -> String {
    let mut line = head.to_owned();
    for (k, v) in members {
        line.push(' ');
        line.push_str(k);
        line.push(' ');
        line.push_str(&json_word(v));
    }
    line
}

/// A number member when it is one; `None` also when it has another type, so the caller keeps
/// the raw value instead.
fn json_num(data: &Members, key: &str) -> Option<u64> {
    data.get(key).and_then(serde_json::Value::as_u64)
}

/// `linkinfo`: bond, bond-slave and VLAN data are typed; members those types do not model, the
/// data of every other kind (`bridge`, `veth`, `vxlan`, …) and of every other slave kind
/// (`bridge_slave`, …) go to `unknown` as one line each, headed like the text output's detail
/// line (`bridge …`, `bridge_slave …`); other `linkinfo` members as `name value`.
fn json_linkinfo(link: &mut IpLink, info: JsonLinkInfo) {
    let kind_head = info.info_kind.clone().unwrap_or_else(|| "info_data".to_owned());
    match (info.info_kind.as_deref(), info.info_data) {
        (Some("bond"), data) => {
            let data = data.unwrap_or_default();
            let mode_name = data.get("mode").map(json_text);
            let miimon = json_num(&data, "miimon");
            link.bond = Some(IpBondInfo {
                mode: mode_name.as_deref().and_then(BondMode::from_description),
                mode_name,
                miimon,
                // A `miimon` that is not a number stays here, as printed.
                options: data
                    .0
                    .iter()
                    .filter(|(k, _)| k != "mode" && !(k == "miimon" && miimon.is_some()))
                    .map(|(k, v)| (k.clone(), json_text(v)))
                    .collect(),
            });
        }
        (Some("vlan"), Some(data)) => {
            let id = json_num(&data, "id");
            let flags = data.get("flags").and_then(serde_json::Value::as_array);
            // Without a numeric `id` there is no `IpVlanInfo`, and everything goes to `unknown`.
            let typed =
                |k: &str| id.is_some() && (k == "protocol" || k == "id" || (k == "flags" && flags.is_some()));
            if let Some(id) = id {
                link.vlan = Some(IpVlanInfo {
                    protocol: data.get("protocol").map(json_text),
                    id,
                    flags: flags
                        .map(|a| a.iter().map(json_text).collect())
                        .unwrap_or_default(),
                });
            }
            let untyped: Vec<_> = data.0.iter().filter(|(k, _)| !typed(k)).collect();
            if !untyped.is_empty() {
                link.unknown.push(json_detail_line(&kind_head, untyped));
            }
        }
        (_, Some(data)) => link.unknown.push(json_detail_line(&kind_head, &data.0)),
        (_, None) => {}
    }
    link.kind = info.info_kind;
    match (info.info_slave_kind.as_deref(), info.info_slave_data) {
        (Some("bond"), data) => {
            let sd = data.unwrap_or_default();
            let get = |k: &str| sd.get(k).map(json_text);
            let link_failure_count = json_num(&sd, "link_failure_count");
            let ad_aggregator_id = json_num(&sd, "ad_aggregator_id");
            link.bond_slave = Some(IpBondSlaveInfo {
                state: get("state"),
                mii_status: get("mii_status"),
                link_failure_count,
                perm_hwaddr: get("perm_hwaddr"),
                ad_aggregator_id,
                // Counters that are not numbers stay here, as printed.
                options: sd
                    .0
                    .iter()
                    .filter(|(k, _)| match k.as_str() {
                        "state" | "mii_status" | "perm_hwaddr" => false,
                        "link_failure_count" => link_failure_count.is_none(),
                        "ad_aggregator_id" => ad_aggregator_id.is_none(),
                        _ => true,
                    })
                    .map(|(k, v)| (k.clone(), json_text(v)))
                    .collect(),
            });
        }
        (Some(slave_kind), data) => {
            let data = data.unwrap_or_default();
            link.unknown
                .push(json_detail_line(&format!("{slave_kind}_slave"), &data.0));
        }
        (None, Some(data)) => link.unknown.push(json_detail_line("info_slave_data", &data.0)),
        (None, None) => {}
    }
    link.unknown
        .extend(info.rest.0.iter().map(|(k, v)| format!("{k} {}", json_word(v))));
}

/// Parses `ip -j link show` / `ip -j addr show` (optionally `-d`, `-s`) output.
///
/// Nothing of a link is dropped: what [`IpLink`] does not type goes to `unknown`, in the order
/// printed. `linkinfo` data of a kind other than bond and VLAN becomes one line headed by the
/// kind (`bridge forward_delay 1500 …`), bridge-port and other slave data one line headed by
/// `<slave kind>_slave` (`bridge_slave state forwarding …`), like the text output's detail
/// lines; VLAN members other than protocol, ID and flags go to a `vlan …` line, bond members
/// other than mode and `miimon` stay in the bond's `options`. Other members of the link
/// (`txqlen`, `promiscuity`, `stats64`, …) follow as `key value`. A value is written as printed
/// when it is a one-word string, else as compact JSON (numbers, `true`, `null`, quoted strings
/// with blanks, arrays, objects). Members of an `addr_info` entry other than the typed fields
/// and flags (`metric`, `protocol`, …) go to that address's `extra`, in the same form.
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
                json_linkinfo(&mut link, info);
            }
            link.unknown
                .extend(j.rest.0.iter().map(|(k, v)| format!("{k} {}", json_word(v))));
            link.addresses = j
                .addr_info
                .into_iter()
                .map(|a| {
                    let (flags, extra) = json_addr_rest(&a.rest);
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
                        extra,
                    }
                })
                .collect();
            link
        })
        .collect();
    Ok(IpLinks { links })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iproute::parse_ip_text;

    /// One `ip -j -d link` element with `extra` spliced in after the common members.
    fn one_link(extra: &str) -> IpLink {
        let input = format!(r#"[{{"ifindex":7,"ifname":"x0","flags":["UP"],"mtu":1500{extra}}}]"#);
        let mut links = parse_ip_json(&input).unwrap().links;
        assert_eq!(links.len(), 1);
        links.remove(0)
    }

    #[test]
    fn json_bridge_info_data_is_kept_in_unknown_as_a_line_headed_by_the_kind() {
        let link = one_link(
            r#","linkinfo":{"info_kind":"bridge","info_data":{"forward_delay":1500,"stp_state":0,"vlan_protocol":"802.1Q","group_addr":"01:80:c2:00:00:00"}}"#,
        );
        assert_eq!(link.kind.as_deref(), Some("bridge"));
        assert_eq!(
            link.unknown,
            ["bridge forward_delay 1500 stp_state 0 vlan_protocol 802.1Q group_addr 01:80:c2:00:00:00"]
        );
    }

    #[test]
    fn json_bridge_port_data_is_kept_in_unknown_as_a_bridge_slave_line() {
        let link = one_link(
            r#","master":"br0","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge","info_slave_data":{"state":"forwarding","priority":32,"hairpin":false}}"#,
        );
        assert_eq!(link.kind.as_deref(), Some("veth"));
        assert_eq!(link.master.as_deref(), Some("br0"));
        assert_eq!(
            link.unknown,
            ["bridge_slave state forwarding priority 32 hairpin false"]
        );
        assert_eq!(link.bond_slave, None);
    }

    #[test]
    fn json_slave_kind_without_data_is_still_recorded() {
        let link = one_link(r#","linkinfo":{"info_slave_kind":"team"}"#);
        assert_eq!(link.unknown, ["team_slave"]);
    }

    #[test]
    fn json_kind_without_info_data_adds_nothing_to_unknown() {
        let link = one_link(r#","linkinfo":{"info_kind":"veth"}"#);
        assert_eq!(link.kind.as_deref(), Some("veth"));
        assert!(link.unknown.is_empty());
    }

    #[test]
    fn json_macvlan_details_read_the_same_as_the_text_detail_line() {
        let text = parse_ip_text("7: x0@eth0: <UP> mtu 1500\n    macvlan mode bridge\n").unwrap();
        let json = one_link(r#","linkinfo":{"info_kind":"macvlan","info_data":{"mode":"bridge"}}"#);
        assert_eq!(json.kind, text.links[0].kind);
        assert_eq!(json.unknown, text.links[0].unknown);
    }

    #[test]
    fn json_unrecognised_link_members_are_kept_in_print_order_after_the_linkinfo_lines() {
        let link = one_link(
            r#","txqlen":1000,"linkinfo":{"info_kind":"dummy","info_data":{},"info_xstats":{"a":1}},"promiscuity":0,"ifalias":"to core switch""#,
        );
        assert_eq!(
            link.unknown,
            [
                "dummy",
                r#"info_xstats {"a":1}"#,
                "txqlen 1000",
                "promiscuity 0",
                r#"ifalias "to core switch""#,
            ]
        );
    }

    #[test]
    fn json_non_scalar_and_blank_values_are_kept_as_compact_json() {
        let link = one_link(
            r#","linkinfo":{"info_kind":"vxlan","info_data":{"id":42,"port_range":{"low":0,"high":0},"local":"","ttl":null,"flags":["a b"]}}"#,
        );
        assert_eq!(
            link.unknown,
            [r#"vxlan id 42 port_range {"high":0,"low":0} local "" ttl null flags ["a b"]"#]
        );
    }

    #[test]
    fn json_bond_and_vlan_typed_fields_are_unchanged_and_their_other_members_are_kept() {
        let input = r#"[
            {"ifindex":4,"ifname":"bond0","linkinfo":{"info_kind":"bond","info_data":{"mode":"active-backup","miimon":100,"ad_info":{"aggregator":1}}}},
            {"ifindex":5,"ifname":"bond0.9","link":"bond0","linkinfo":{"info_kind":"vlan","info_data":{"protocol":"802.1Q","id":9,"flags":["REORDER_HDR"],"ingress_qos":[{"from":0,"to":1}]}}},
            {"ifindex":2,"ifname":"eno1","master":"bond0","linkinfo":{"info_slave_kind":"bond","info_slave_data":{"state":"BACKUP","mii_status":"UP","link_failure_count":3,"queue_id":0}}}
        ]"#;
        let links = parse_ip_json(input).unwrap().links;
        let bond = links[0].bond.as_ref().unwrap();
        assert_eq!(bond.mode, Some(BondMode::ActiveBackup));
        assert_eq!(bond.mode_name.as_deref(), Some("active-backup"));
        assert_eq!(bond.miimon, Some(100));
        assert_eq!(
            bond.options.get("ad_info").map(String::as_str),
            Some(r#"{"aggregator":1}"#)
        );
        assert_eq!(bond.options.len(), 1);
        assert!(links[0].unknown.is_empty());

        let vlan = links[1].vlan.as_ref().unwrap();
        assert_eq!((vlan.protocol.as_deref(), vlan.id), (Some("802.1Q"), 9));
        assert_eq!(vlan.flags, ["REORDER_HDR"]);
        assert_eq!(links[1].unknown, [r#"vlan ingress_qos [{"from":0,"to":1}]"#]);

        let slave = links[2].bond_slave.as_ref().unwrap();
        assert_eq!(slave.state.as_deref(), Some("BACKUP"));
        assert_eq!(slave.link_failure_count, Some(3));
        assert_eq!(slave.options.get("queue_id").map(String::as_str), Some("0"));
        assert_eq!(slave.options.len(), 1);
    }

    #[test]
    fn json_typed_numbers_of_another_type_are_kept_raw_instead_of_dropped() {
        let input = r#"[
            {"ifindex":4,"ifname":"bond0","linkinfo":{"info_kind":"bond","info_data":{"mode":"balance-rr","miimon":"fast"}}},
            {"ifindex":2,"ifname":"eno1","linkinfo":{"info_slave_kind":"bond","info_slave_data":{"ad_aggregator_id":"N/A"}}},
            {"ifindex":5,"ifname":"v","linkinfo":{"info_kind":"vlan","info_data":{"protocol":"802.1Q","id":"x","flags":["GVRP"]}}},
            {"ifindex":6,"ifname":"w","linkinfo":{"info_kind":"vlan","info_data":{"id":6,"flags":"REORDER_HDR"}}}
        ]"#;
        let links = parse_ip_json(input).unwrap().links;
        let bond = links[0].bond.as_ref().unwrap();
        assert_eq!(bond.miimon, None);
        assert_eq!(bond.options.get("miimon").map(String::as_str), Some("fast"));
        let slave = links[1].bond_slave.as_ref().unwrap();
        assert_eq!(slave.ad_aggregator_id, None);
        assert_eq!(
            slave.options.get("ad_aggregator_id").map(String::as_str),
            Some("N/A")
        );
        assert_eq!(links[2].vlan, None);
        assert_eq!(links[2].kind.as_deref(), Some("vlan"));
        assert_eq!(links[2].unknown, [r#"vlan protocol 802.1Q id x flags ["GVRP"]"#]);
        assert_eq!(links[3].vlan.as_ref().map(|v| v.id), Some(6));
        assert_eq!(links[3].unknown, ["vlan flags REORDER_HDR"]);
    }

    #[test]
    fn json_address_metric_and_protocol_are_kept_in_extra() {
        let link = one_link(
            r#","addr_info":[{"family":"inet","local":"10.0.0.5","prefixlen":24,"metric":100,"broadcast":"10.0.0.255","scope":"global","dynamic":true,"label":"x0","valid_life_time":86313,"preferred_life_time":86313},{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link","protocol":"kernel_ll","valid_life_time":4294967295,"preferred_life_time":4294967295}]"#,
        );
        assert_eq!(link.addresses.len(), 2);
        let (v4, v6) = (&link.addresses[0], &link.addresses[1]);
        assert_eq!(v4.extra, ["metric 100"]);
        assert_eq!(v4.flags, ["dynamic"]);
        assert_eq!(
            (v4.prefixlen, v4.broadcast.as_deref(), v4.label.as_deref()),
            (Some(24), Some("10.0.0.255"), Some("x0"))
        );
        assert_eq!(v4.valid_lft.as_deref(), Some("86313sec"));
        assert_eq!(v6.extra, ["protocol kernel_ll"]);
        assert!(v6.flags.is_empty());
        assert_eq!(v6.valid_lft.as_deref(), Some("forever"));
        assert!(link.unknown.is_empty());
    }

    #[test]
    fn json_address_true_members_are_flags_and_other_untyped_members_are_kept_in_extra_in_print_order() {
        let link = one_link(
            r#","addr_info":[{"family":"inet6","local":"2001:db8::1","zeta":true,"noprefixroute":true,"note":"two words","dynamic":false,"alpha":true,"cacheinfo":{"b":1,"a":null},"metric":0,"dynamic":true,"zeta":true}]"#,
        );
        let addr = &link.addresses[0];
        assert_eq!(addr.flags, ["dynamic", "noprefixroute", "zeta", "alpha"]);
        assert_eq!(
            addr.extra,
            [
                r#"note "two words""#,
                "dynamic false",
                r#"cacheinfo {"a":null,"b":1}"#,
                "metric 0",
            ]
        );
    }

    #[test]
    fn json_address_member_of_a_typed_name_with_another_type_is_rejected_with_its_position() {
        let input = "[{\"ifindex\":1,\n\"addr_info\":[{\"local\":\"10.0.0.1\",\"prefixlen\":\"x\"}]}]";
        let e = parse_ip_json(input).unwrap_err();
        assert_eq!((e.line, e.format), (2, JSON));
    }

    #[test]
    fn json_info_data_that_is_not_an_object_is_rejected_where_it_stands() {
        let input = "[{\"ifindex\":1,\n\"linkinfo\":{\"info_kind\":\"bridge\",\"info_data\":[1]}}]";
        let e = parse_ip_json(input).unwrap_err();
        assert_eq!(e.format, JSON);
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("a JSON object"), "{}", e.expected);
    }

    #[test]
    fn json_link_that_is_not_an_object_is_rejected() {
        let e = parse_ip_json("[1]").unwrap_err();
        assert_eq!((e.line, e.format), (1, JSON));
        assert!(e.expected.starts_with("an array of interfaces"), "{}", e.expected);
    }
}
