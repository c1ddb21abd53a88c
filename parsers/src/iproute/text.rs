//! `ip link show` / `ip addr show` text output, with or without `-d` and `-o`, read into
//! [`IpLinks`]: the head line of each link, its detail lines (`link/…`, `bond`, `bond_slave`,
//! `vlan`, addresses and their lifetimes), and the generic link attributes that follow a kind's
//! details. The whole text path is in this module.

use nom::{
    Parser,
    bytes::complete::{take_till1, take_while},
    character::complete::char,
    combinator::{cut, opt, rest},
    error::context,
    sequence::{preceded, terminated},
};

use super::{IpAddress, IpBondInfo, IpBondSlaveInfo, IpLink, IpLinks, IpVlanInfo};
use crate::{
    BondMode, ParseError,
    text::{Line, PResult, blanks, lines, run},
};

const TEXT: &str = "ip-text";

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

/// A `key value` pair as printed, or the key alone.
fn pair_text(k: &str, v: Option<&str>) -> String {
    v.map_or_else(|| k.to_owned(), |v| format!("{k} {v}"))
}

/// Keeps text this parser does not type on the link, as printed.
fn keep(link: &mut IpLink, text: String) {
    if !text.is_empty() {
        link.unknown.push(text);
    }
}

/// The link attributes `ip -d` prints after the last kind-specific detail line, on that same
/// line (`addrgenmode eui64 numtxqueues 1 gso_max_size 65536 …`), as iproute2 6.x names them.
const GENERIC_DETAILS: &[&str] = &[
    "addrgenmode",
    "numtxqueues",
    "numrxqueues",
    "gso_max_size",
    "gso_max_segs",
    "tso_max_size",
    "tso_max_segs",
    "gro_max_size",
    "gso_ipv4_max_size",
    "gro_ipv4_max_size",
    "parentbus",
    "parentdev",
];

/// Splits a kind's detail text (`mode 802.3ad miimon 100 … addrgenmode eui64 …`) into its own
/// part and the generic link attributes that follow it, if any.
fn split_generic(text: &str) -> (&str, &str) {
    let mut start = 0;
    for word in text.split(' ') {
        if GENERIC_DETAILS.contains(&word) {
            return (
                text.get(..start).unwrap_or("").trim_end(),
                text.get(start..).unwrap_or(""),
            );
        }
        start += word.len() + 1;
    }
    (text, "")
}

fn head_tail(link: &mut IpLink, line: &Line<'_>, tail: &str, input: &str) -> Result<(), ParseError> {
    let mut other = Vec::new();
    for (k, v) in pairs(tail) {
        match k {
            "mtu" => link.mtu = num_at(line, input, v)?,
            "qdisc" => link.qdisc = v.map(str::to_owned),
            "master" => link.master = v.map(str::to_owned),
            "state" => link.operstate = v.map(str::to_owned),
            // `mode DEFAULT group default qlen 1000`, `link-netnsid 0`, …
            _ => other.push(pair_text(k, v)),
        }
    }
    keep(link, other.join(" "));
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
        // `brd …`, and with `-d` `promiscuity 0 allmulti 0 minmtu 68 maxmtu 65535` (and the
        // generic attributes when the link has no kind line).
        let mut other = Vec::new();
        while let Some(w) = it.next() {
            if w == "permaddr" {
                link.permanent_address = it.next().map(str::to_owned);
            } else {
                other.push(w);
            }
        }
        keep(link, other.join(" "));
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
                    // Keyed details this parser does not type; their value is not a flag.
                    "peer" | "metric" | "proto" => addr.extra.push(match it.next() {
                        Some(v) => format!("{w} {v}"),
                        None => w.to_owned(),
                    }),
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
            let Some(addr) = link.addresses.last_mut() else {
                // A lifetime line with no address to belong to stays on the link, as printed.
                link.unknown.push(body.to_owned());
                return Ok(());
            };
            let mut it = body.split_whitespace();
            let mut other = Vec::new();
            while let Some(w) = it.next() {
                match w {
                    "valid_lft" => addr.valid_lft = it.next().map(str::to_owned),
                    "preferred_lft" => addr.preferred_lft = it.next().map(str::to_owned),
                    w => other.push(w),
                }
            }
            if !other.is_empty() {
                addr.extra.push(other.join(" "));
            }
        }
        "altname" => link
            .altnames
            .extend(rest_text.split_whitespace().map(str::to_owned)),
        "bond" if rest_text.starts_with("mode") => {
            let (own, generic) = split_generic(rest_text);
            let mut info = IpBondInfo::default();
            for (k, v) in pairs(own) {
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
            keep(link, generic.to_owned());
        }
        "bond_slave" => {
            let (own, generic) = split_generic(rest_text);
            let mut info = IpBondSlaveInfo::default();
            for (k, v) in pairs(own) {
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
            keep(link, generic.to_owned());
        }
        "vlan" if rest_text.starts_with("protocol") || rest_text.starts_with("id") => {
            let (own, generic) = split_generic(rest_text);
            let mut info = IpVlanInfo::default();
            let mut it = own.split_whitespace();
            let mut id = None;
            let mut untyped = false;
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
                    // `ingress-qos-map { 0:1 }`, `bridge_binding on`, …
                    _ => untyped = true,
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
            if untyped {
                // What the vlan line says beyond protocol, id and flags, kept whole.
                keep(link, format!("vlan {own}"));
            }
            keep(link, generic.to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_address_metric_proto_and_peer_are_kept_in_extra_as_printed() {
        let input = "\
2: eth0: <BROADCAST,UP,LOWER_UP> mtu 1500 state UP
    inet 10.0.0.5/24 metric 100 brd 10.0.0.255 scope global dynamic eth0
       valid_lft 86313sec preferred_lft 86313sec
    inet 192.0.2.1 peer 192.0.2.2/32 scope global eth0
    inet6 fe80::1/64 scope link proto kernel_ll
       valid_lft forever preferred_lft forever
";
        let links = parse_ip_text(input).unwrap().links;
        assert_eq!(links[0].addresses.len(), 3);
        let (v4, ptp, v6) = (
            &links[0].addresses[0],
            &links[0].addresses[1],
            &links[0].addresses[2],
        );
        assert_eq!(v4.extra, ["metric 100"]);
        assert_eq!(v4.flags, ["dynamic"]);
        assert_eq!(
            (v4.broadcast.as_deref(), v4.scope.as_deref(), v4.label.as_deref()),
            (Some("10.0.0.255"), Some("global"), Some("eth0"))
        );
        assert_eq!(v4.valid_lft.as_deref(), Some("86313sec"));
        assert_eq!(ptp.extra, ["peer 192.0.2.2/32"]);
        assert_eq!(ptp.label.as_deref(), Some("eth0"));
        assert_eq!(v6.extra, ["proto kernel_ll"]);
        assert!(v6.flags.is_empty());
        assert_eq!(v6.preferred_lft.as_deref(), Some("forever"));
        assert!(links[0].unknown.is_empty());
    }

    #[test]
    fn text_lifetime_line_words_it_does_not_type_are_kept_in_extra() {
        let input = "2: eth0: <UP> mtu 1500\n    inet 10.0.0.5/24 scope global eth0 metric\n       valid_lft forever preferred_lft forever tstamp 5\n";
        let addr = &parse_ip_text(input).unwrap().links[0].addresses[0];
        assert_eq!(addr.extra, ["metric", "tstamp 5"]);
        assert_eq!(addr.valid_lft.as_deref(), Some("forever"));
    }

    #[test]
    fn text_lifetime_line_before_any_address_is_kept_in_unknown() {
        let input = "2: eth0: <UP> mtu 1500\n       valid_lft forever preferred_lft forever\n";
        let link = &parse_ip_text(input).unwrap().links[0];
        assert!(link.addresses.is_empty());
        assert_eq!(link.unknown, ["valid_lft forever preferred_lft forever"]);
    }

    #[test]
    fn text_generic_link_attributes_after_a_kind_line_are_kept_on_the_link_not_as_its_options() {
        let input = "\
4: bond0: <BROADCAST,MULTICAST,MASTER,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000
    link/ether 72:70:5e:5a:8a:d5 brd ff:ff:ff:ff:ff:ff promiscuity 0  allmulti 0 minmtu 68 maxmtu 65535
    bond mode 802.3ad miimon 100 lacp_rate fast addrgenmode eui64 numtxqueues 16 gso_max_size 65536
5: eth1: <BROADCAST,NOARP,SLAVE,UP,LOWER_UP> mtu 1500 qdisc noqueue master bond0 state UNKNOWN mode DEFAULT group default qlen 1000
    link/ether 72:70:5e:5a:8a:d5 brd ff:ff:ff:ff:ff:ff
    dummy
    bond_slave state ACTIVE mii_status UP queue_id 0 prio 0 addrgenmode eui64 numtxqueues 1
9: bond0.100@bond0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000
    link/ether 72:70:5e:5a:8a:d5 brd ff:ff:ff:ff:ff:ff
    vlan protocol 802.1Q id 100 <REORDER_HDR> ingress-qos-map { 0:1 } addrgenmode eui64 gro_max_size 65536
";
        let links = parse_ip_text(input).unwrap().links;
        let bond = links[0].bond.as_ref().unwrap();
        assert_eq!(bond.options.keys().collect::<Vec<_>>(), ["lacp_rate"]);
        assert_eq!(
            links[0].unknown,
            [
                "mode DEFAULT group default qlen 1000",
                "brd ff:ff:ff:ff:ff:ff promiscuity 0 allmulti 0 minmtu 68 maxmtu 65535",
                "addrgenmode eui64 numtxqueues 16 gso_max_size 65536",
            ]
        );
        let slave = links[1].bond_slave.as_ref().unwrap();
        assert_eq!(slave.options.keys().collect::<Vec<_>>(), ["prio", "queue_id"]);
        assert!(
            links[1]
                .unknown
                .contains(&"addrgenmode eui64 numtxqueues 1".to_owned())
        );
        let vlan = links[2].vlan.as_ref().unwrap();
        assert_eq!(
            (vlan.id, vlan.flags.clone()),
            (100, vec!["REORDER_HDR".to_owned()])
        );
        assert_eq!(
            links[2].unknown[2..],
            [
                "vlan protocol 802.1Q id 100 <REORDER_HDR> ingress-qos-map { 0:1 }",
                "addrgenmode eui64 gro_max_size 65536",
            ]
        );
    }
}
