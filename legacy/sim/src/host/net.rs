//! Networking: links, the bonding driver's behaviour (MII monitor, failover, link-failure
//! counting, 802.3ad aggregation), `ip` in text and JSON, and `/proc/net/bonding/<bond>`.

use super::model::*;
use super::util::{JsonObj, json_arr, json_str};
use super::{Output, World};

/// Adds `lo` with 127.0.0.1/8, up.
pub fn add_loopback(node: &mut Node) {
    let ifindex = next_index(node);
    node.links.push(Link {
        name: "lo".to_string(),
        ifindex,
        kind: LinkKind::Loopback,
        mac: "00:00:00:00:00:00".to_string(),
        admin_up: true,
        master: None,
        mtu: 65536,
        addrs: vec![Addr {
            ip: [127, 0, 0, 1],
            prefix: 8,
        }],
    });
}

fn next_index(node: &mut Node) -> u32 {
    let i = node.next_ifindex;
    node.next_ifindex += 1;
    i
}

/// Adds a physical NIC, administratively down, cable plugged.
pub fn add_nic(node: &mut Node, name: &str, mac: &str, speed_mbps: u32, pci_slot: u32) {
    let ifindex = next_index(node);
    node.links.push(Link {
        name: name.to_string(),
        ifindex,
        kind: LinkKind::Ether(Nic {
            perm_mac: mac.to_string(),
            speed_mbps,
            cable: true,
            pci_slot,
        }),
        mac: mac.to_string(),
        admin_up: false,
        master: None,
        mtu: 1500,
        addrs: Vec::new(),
    });
}

/// Creates a bond master (down, no slaves).
pub fn create_bond(node: &mut Node, name: &str, mode: BondMode, miimon: u32, mac: &str, partner: &str) {
    super::sys::load_module(node, "bonding");
    let ifindex = next_index(node);
    node.links.push(Link {
        name: name.to_string(),
        ifindex,
        kind: LinkKind::Bond(Bond {
            mode,
            miimon,
            arp_missed_max: 2,
            lacp_fast: false,
            xmit_hash_policy: "layer2".to_string(),
            slaves: Vec::new(),
            active_slave: None,
            partner_mac: partner.to_string(),
        }),
        mac: mac.to_string(),
        admin_up: false,
        master: None,
        mtu: 1500,
        addrs: Vec::new(),
    });
}

/// Creates an 802.1Q sub-interface (down).
pub fn create_vlan(node: &mut Node, name: &str, parent: &str, id: u16) {
    super::sys::load_module(node, "8021q");
    let ifindex = next_index(node);
    let mac = node.link(parent).map(|l| l.mac.clone()).unwrap_or_default();
    node.links.push(Link {
        name: name.to_string(),
        ifindex,
        kind: LinkKind::Vlan {
            parent: parent.to_string(),
            id,
        },
        mac,
        admin_up: false,
        master: None,
        mtu: 1500,
        addrs: Vec::new(),
    });
}

/// Whether a link has carrier right now, before bonding logic.
fn raw_carrier(node: &Node, link: &Link) -> bool {
    if !link.admin_up {
        return false;
    }
    match &link.kind {
        LinkKind::Loopback => true,
        LinkKind::Ether(nic) => nic.cable,
        LinkKind::Bond(b) => b.slaves.iter().any(|s| s.mii_up),
        LinkKind::Vlan { parent, .. } => node.link(parent).is_some_and(|p| raw_carrier(node, p)),
    }
}

/// The `operstate` sysfs value.
pub fn operstate(node: &Node, link: &Link) -> &'static str {
    match &link.kind {
        LinkKind::Loopback => "unknown",
        LinkKind::Vlan { parent, .. } if link.admin_up => {
            if node.link(parent).is_some_and(|p| raw_carrier(node, p)) {
                "up"
            } else {
                "lowerlayerdown"
            }
        }
        _ if raw_carrier(node, link) => "up",
        _ => "down",
    }
}

/// Whether the link has carrier (what `/sys/class/net/<if>/carrier` reports while it is up).
pub fn carrier(node: &Node, link: &Link) -> bool {
    raw_carrier(node, link)
}

/// Enslaves `slave` to `bond`, as `ip link set dev SLAVE master BOND` does.
pub fn enslave(node: &mut Node, slave: &str, bond: &str, clock: u64) -> Result<(), &'static str> {
    let (perm, slave_up) = match node.link(slave) {
        Some(l) => match &l.kind {
            LinkKind::Ether(nic) => (nic.perm_mac.clone(), l.admin_up && nic.cable),
            _ => return Err("Operation not supported"),
        },
        None => return Err("No such device"),
    };
    if let Some(m) = node.link(slave).and_then(|l| l.master.clone()) {
        if m == bond {
            return Ok(());
        }
        return Err("Device or resource busy");
    }
    let bond_mac = {
        let Some(b) = node.link_mut(bond) else {
            return Err("No such device");
        };
        let LinkKind::Bond(bd) = &mut b.kind else {
            return Err("Operation not supported");
        };
        if bd.slaves.is_empty() {
            b.mac = perm.clone();
        }
        let LinkKind::Bond(bd) = &mut b.kind else {
            return Err("Operation not supported");
        };
        bd.slaves.push(Slave {
            name: slave.to_string(),
            mii_up: slave_up,
            link_failure_count: 0,
            perm_hwaddr: perm,
            enslaved_at: clock,
        });
        b.mac.clone()
    };
    if let Some(l) = node.link_mut(slave) {
        l.master = Some(bond.to_string());
        l.mac = bond_mac;
        // The driver opens every slave it takes.
        l.admin_up = true;
    }
    refresh_vlan_macs(node);
    reconcile(node);
    Ok(())
}

/// Releases `slave` from its bond (`nomaster`).
pub fn release(node: &mut Node, slave: &str) {
    let Some(bond) = node.link(slave).and_then(|l| l.master.clone()) else {
        return;
    };
    let mut perm = None;
    if let Some(b) = node.link_mut(&bond)
        && let LinkKind::Bond(bd) = &mut b.kind
    {
        if let Some(pos) = bd.slaves.iter().position(|s| s.name == slave) {
            perm = Some(bd.slaves.remove(pos).perm_hwaddr);
        }
        if bd.active_slave.as_deref() == Some(slave) {
            bd.active_slave = None;
        }
    }
    if let Some(l) = node.link_mut(slave) {
        l.master = None;
        if let Some(p) = perm {
            l.mac = p;
        }
    }
    reconcile(node);
}

fn refresh_vlan_macs(node: &mut Node) {
    let macs: Vec<(String, String)> = node
        .links
        .iter()
        .map(|l| (l.name.clone(), l.mac.clone()))
        .collect();
    for l in &mut node.links {
        if let LinkKind::Vlan { parent, .. } = &l.kind
            && let Some((_, m)) = macs.iter().find(|(n, _)| n == parent)
        {
            l.mac = m.clone();
        }
    }
}

/// The bonding driver's MII monitor: commits slave link changes, counts failures while the
/// bond is up and monitoring, and reselects the active slave like `bond_select_active_slave`.
pub fn reconcile(node: &mut Node) {
    let states: Vec<(String, bool)> = node
        .links
        .iter()
        .map(|l| {
            let up = match &l.kind {
                LinkKind::Ether(nic) => l.admin_up && nic.cable,
                _ => false,
            };
            (l.name.clone(), up)
        })
        .collect();
    for link in &mut node.links {
        let bond_up = link.admin_up;
        let LinkKind::Bond(b) = &mut link.kind else {
            continue;
        };
        for s in &mut b.slaves {
            let now = states.iter().find(|(n, _)| *n == s.name).is_some_and(|(_, u)| *u);
            if s.mii_up && !now && bond_up && b.miimon > 0 {
                s.link_failure_count = s.link_failure_count.saturating_add(1);
            }
            if b.miimon > 0 || !bond_up {
                s.mii_up = now;
            }
        }
        if b.mode.uses_primary() {
            let current_ok = b
                .active_slave
                .as_ref()
                .is_some_and(|a| b.slaves.iter().any(|s| &s.name == a && s.mii_up));
            if !current_ok || !bond_up {
                b.active_slave = if bond_up {
                    b.slaves.iter().find(|s| s.mii_up).map(|s| s.name.clone())
                } else {
                    b.active_slave
                        .clone()
                        .filter(|a| b.slaves.iter().any(|s| &s.name == a))
                };
            }
        } else {
            b.active_slave = None;
        }
    }
}

/// Link flags as `ip` prints them.
fn flags(node: &Node, link: &Link) -> Vec<&'static str> {
    let mut f = Vec::new();
    let carrier = raw_carrier(node, link);
    if link.admin_up && !carrier && !matches!(link.kind, LinkKind::Loopback) {
        f.push("NO-CARRIER");
    }
    if matches!(link.kind, LinkKind::Loopback) {
        f.push("LOOPBACK");
    } else {
        f.push("BROADCAST");
        f.push("MULTICAST");
    }
    if matches!(link.kind, LinkKind::Bond(_)) {
        f.push("MASTER");
    }
    if link.master.is_some() {
        f.push("SLAVE");
    }
    if link.admin_up {
        f.push("UP");
        if carrier {
            f.push("LOWER_UP");
        }
    }
    f
}

fn qdisc(link: &Link) -> &'static str {
    if !link.admin_up {
        return "noop";
    }
    match link.kind {
        LinkKind::Ether(_) => "mq",
        _ => "noqueue",
    }
}

fn state_word(node: &Node, link: &Link) -> String {
    operstate(node, link).to_uppercase()
}

fn display_name(link: &Link) -> String {
    match &link.kind {
        LinkKind::Vlan { parent, .. } => format!("{}@{}", link.name, parent),
        _ => link.name.clone(),
    }
}

fn header(node: &Node, link: &Link, with_mode: bool) -> String {
    let mut s = format!(
        "{}: {}: <{}> mtu {} qdisc {}",
        link.ifindex,
        display_name(link),
        flags(node, link).join(","),
        link.mtu,
        qdisc(link)
    );
    if let Some(m) = &link.master {
        s.push_str(&format!(" master {m}"));
    }
    s.push_str(&format!(" state {}", state_word(node, link)));
    if with_mode {
        s.push_str(" mode DEFAULT");
    }
    s.push_str(" group default qlen 1000\n");
    s
}

fn link_line(link: &Link) -> String {
    match &link.kind {
        LinkKind::Loopback => "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00".to_string(),
        LinkKind::Ether(nic) if nic.perm_mac != link.mac => format!(
            "    link/ether {} brd ff:ff:ff:ff:ff:ff permaddr {}",
            link.mac, nic.perm_mac
        ),
        _ => format!("    link/ether {} brd ff:ff:ff:ff:ff:ff", link.mac),
    }
}

fn queues(link: &Link) -> (u32, u32, u32, u32) {
    // (numtxqueues, gso/gro size, tso_max_size, max mtu)
    match link.kind {
        LinkKind::Loopback => (1, 65536, 524_280, 0),
        LinkKind::Ether(_) => (8, 65536, 65536, 9216),
        LinkKind::Bond(_) => (16, 65536, 65536, 65535),
        LinkKind::Vlan { .. } => (1, 65536, 65536, 65535),
    }
}

fn bond_details(node: &Node, link: &Link, b: &Bond) -> String {
    let mut s = format!("bond mode {}", b.mode.name());
    if let Some(a) = &b.active_slave {
        s.push_str(&format!(" active_slave {a}"));
    }
    s.push_str(&format!(
        " miimon {} updelay 0 downdelay 0 peer_notify_delay 0 use_carrier 1 arp_interval 0 arp_missed_max {} arp_validate none arp_all_targets any primary_reselect always fail_over_mac none xmit_hash_policy {} resend_igmp 1 num_grat_arp 1 all_slaves_active 0 min_links 0 lp_interval 1 packets_per_slave 1 lacp_active on lacp_rate {} ad_select stable",
        b.miimon,
        b.arp_missed_max,
        b.xmit_hash_policy,
        if b.lacp_fast { "fast" } else { "slow" }
    ));
    if b.mode == BondMode::Lacp {
        if let Some(agg) = aggregator(node, link, b) {
            s.push_str(&format!(
                " ad_aggregator 1 ad_num_ports {} ad_actor_key {} ad_partner_key {} ad_partner_mac {}",
                agg.ports, agg.actor_key, agg.partner_key, b.partner_mac
            ));
        }
        s.push_str(" ad_actor_sys_prio 65535 ad_user_port_key 0 ad_actor_system 00:00:00:00:00:00");
    }
    s.push_str(" tlb_dynamic_lb 1");
    s
}

fn slave_state<'a>(node: &'a Node, slave: &str) -> Option<(String, &'a Slave, &'a Bond)> {
    let master = node.link(slave)?.master.as_ref()?;
    let bl = node.link(master)?;
    let LinkKind::Bond(b) = &bl.kind else { return None };
    let s = b.slaves.iter().find(|s| s.name == slave)?;
    let active = if b.mode.uses_primary() {
        b.active_slave.as_deref() == Some(slave)
    } else {
        s.mii_up
    };
    Some((if active { "ACTIVE" } else { "BACKUP" }.to_string(), s, b))
}

fn detail_link(node: &Node, link: &Link) -> String {
    let (txq, gso, tso, maxmtu) = queues(link);
    let minmtu = if matches!(link.kind, LinkKind::Loopback) {
        0
    } else {
        68
    };
    let mut s = header(node, link, true);
    s.push_str(&link_line(link));
    s.push_str(&format!(
        " promiscuity 0 allmulti 0 minmtu {minmtu} maxmtu {maxmtu}"
    ));
    let kind = match &link.kind {
        LinkKind::Bond(b) => Some(bond_details(node, link, b)),
        LinkKind::Vlan { id, .. } => Some(format!("vlan protocol 802.1Q id {id} <REORDER_HDR>")),
        _ => None,
    };
    let slave = slave_state(node, &link.name).map(|(st, s, _)| {
        format!(
            "bond_slave state {st} mii_status {} link_failure_count {} perm_hwaddr {} queue_id 0 prio 0",
            if s.mii_up { "UP" } else { "DOWN" },
            s.link_failure_count,
            s.perm_hwaddr
        )
    });
    for part in kind.into_iter().chain(slave) {
        s.push_str("\n    ");
        s.push_str(&part);
    }
    s.push_str(&format!(
        " numtxqueues {txq} numrxqueues {txq} gso_max_size {gso} gso_max_segs 65535 tso_max_size {tso} tso_max_segs 65535 gro_max_size {gso} gso_ipv4_max_size {gso} gro_ipv4_max_size {gso}"
    ));
    if let LinkKind::Ether(nic) = &link.kind {
        s.push_str(&format!(
            " parentbus pci parentdev 0000:{:02x}:00.0",
            nic.pci_slot
        ));
    }
    s.push('\n');
    s
}

fn addr_block(node: &Node, link: &Link) -> String {
    let mut s = header(node, link, false);
    s.push_str(&link_line(link));
    s.push('\n');
    for a in &link.addrs {
        s.push_str(&format!("    inet {}/{}", a.ip_str(), a.prefix));
        if let Some(b) = a.broadcast().filter(|_| !a.is_loopback()) {
            s.push_str(&format!(" brd {b}"));
        }
        let scope = if a.is_loopback() { "host" } else { "global" };
        s.push_str(&format!(" scope {scope} {}\n", link.name));
        s.push_str("       valid_lft forever preferred_lft forever\n");
    }
    s
}

fn json_common(node: &Node, link: &Link, with_mode: bool) -> JsonObj {
    let fl: Vec<String> = flags(node, link).iter().map(|f| json_str(f)).collect();
    let mut o = JsonObj::new()
        .n("ifindex", i64::from(link.ifindex))
        .s("ifname", &link.name);
    if let LinkKind::Vlan { parent, .. } = &link.kind {
        o = o.s("link", parent);
    }
    o = o
        .raw("flags", json_arr(&fl))
        .n("mtu", i64::from(link.mtu))
        .s("qdisc", qdisc(link));
    if let Some(m) = &link.master {
        o = o.s("master", m);
    }
    o = o.s("operstate", &state_word(node, link));
    if with_mode {
        o = o.s("linkmode", "DEFAULT");
    }
    o = o.s("group", "default").n("txqlen", 1000);
    match &link.kind {
        LinkKind::Loopback => o
            .s("link_type", "loopback")
            .s("address", "00:00:00:00:00:00")
            .s("broadcast", "00:00:00:00:00:00"),
        LinkKind::Ether(nic) if nic.perm_mac != link.mac => o
            .s("link_type", "ether")
            .s("address", &link.mac)
            .s("broadcast", "ff:ff:ff:ff:ff:ff")
            .s("permaddr", &nic.perm_mac),
        _ => o
            .s("link_type", "ether")
            .s("address", &link.mac)
            .s("broadcast", "ff:ff:ff:ff:ff:ff"),
    }
}

fn json_link(node: &Node, link: &Link, details: bool) -> String {
    let mut o = json_common(node, link, true);
    if details {
        let (txq, gso, tso, maxmtu) = queues(link);
        let minmtu = if matches!(link.kind, LinkKind::Loopback) {
            0
        } else {
            68
        };
        o = o
            .n("promiscuity", 0)
            .n("allmulti", 0)
            .n("min_mtu", minmtu)
            .n("max_mtu", i64::from(maxmtu));
        let mut info = None;
        match &link.kind {
            LinkKind::Bond(b) => {
                let mut d = JsonObj::new().s("mode", b.mode.name());
                if let Some(a) = &b.active_slave {
                    d = d.s("active_slave", a);
                }
                d = d
                    .n("miimon", i64::from(b.miimon))
                    .n("updelay", 0)
                    .n("downdelay", 0)
                    .n("peer_notify_delay", 0)
                    .n("use_carrier", 1)
                    .n("arp_interval", 0)
                    .n("arp_missed_max", i64::from(b.arp_missed_max))
                    .s("arp_validate", "none")
                    .s("arp_all_targets", "any")
                    .s("primary_reselect", "always")
                    .s("fail_over_mac", "none")
                    .s("xmit_hash_policy", &b.xmit_hash_policy)
                    .n("resend_igmp", 1)
                    .n("num_peer_notif", 1)
                    .b("all_slaves_active", false)
                    .n("min_links", 0)
                    .n("lp_interval", 1)
                    .n("packets_per_slave", 1)
                    .b("ad_lacp_active", true)
                    .s("ad_lacp_rate", if b.lacp_fast { "fast" } else { "slow" })
                    .s("ad_select", "stable")
                    .n("tlb_dynamic_lb", 1);
                info = Some(JsonObj::new().s("info_kind", "bond").raw("info_data", d.build()));
            }
            LinkKind::Vlan { id, .. } => {
                let d = JsonObj::new()
                    .s("protocol", "802.1Q")
                    .n("id", i64::from(*id))
                    .raw("flags", json_arr(&[json_str("REORDER_HDR")]));
                info = Some(JsonObj::new().s("info_kind", "vlan").raw("info_data", d.build()));
            }
            _ => {}
        }
        if let Some((st, s, _)) = slave_state(node, &link.name) {
            let d = JsonObj::new()
                .s("state", &st)
                .s("mii_status", if s.mii_up { "UP" } else { "DOWN" })
                .n("link_failure_count", i64::from(s.link_failure_count))
                .s("perm_hwaddr", &s.perm_hwaddr)
                .n("queue_id", 0)
                .n("prio", 0);
            let base = info.unwrap_or_default();
            info = Some(
                base.s("info_slave_kind", "bond")
                    .raw("info_slave_data", d.build()),
            );
        }
        if let Some(i) = info {
            o = o.raw("linkinfo", i.build());
        }
        o = o
            .n("num_tx_queues", i64::from(txq))
            .n("num_rx_queues", i64::from(txq))
            .n("gso_max_size", i64::from(gso))
            .n("gso_max_segs", 65535)
            .n("tso_max_size", i64::from(tso))
            .n("tso_max_segs", 65535)
            .n("gro_max_size", i64::from(gso))
            .n("gso_ipv4_max_size", i64::from(gso))
            .n("gro_ipv4_max_size", i64::from(gso));
        if let LinkKind::Ether(nic) = &link.kind {
            o = o
                .s("parentbus", "pci")
                .s("parentdev", &format!("0000:{:02x}:00.0", nic.pci_slot));
        }
    }
    o.build()
}

fn json_addr(node: &Node, link: &Link) -> String {
    let infos: Vec<String> = link
        .addrs
        .iter()
        .map(|a| {
            let mut o = JsonObj::new()
                .s("family", "inet")
                .s("local", &a.ip_str())
                .n("prefixlen", i64::from(a.prefix));
            if let Some(b) = a.broadcast().filter(|_| !a.is_loopback()) {
                o = o.s("broadcast", &b);
            }
            o.s("scope", if a.is_loopback() { "host" } else { "global" })
                .s("label", &link.name)
                .n("valid_life_time", 4_294_967_295)
                .n("preferred_life_time", 4_294_967_295)
                .build()
        })
        .collect();
    json_common(node, link, false)
        .raw("addr_info", json_arr(&infos))
        .build()
}

/// The active aggregator of an 802.3ad bond.
pub struct Aggregator {
    /// Ports in it.
    pub ports: usize,
    /// Our key.
    pub actor_key: u32,
    /// The switch's key.
    pub partner_key: u32,
}

/// The 802.3ad operational key the driver derives from speed and duplex.
pub fn ad_key(speed_mbps: u32) -> u32 {
    let code = match speed_mbps {
        10 => 1,
        100 => 2,
        1000 => 4,
        2500 => 5,
        5000 => 6,
        10_000 => 7,
        14_000 => 8,
        20_000 => 9,
        25_000 => 10,
        40_000 => 11,
        50_000 => 12,
        56_000 => 13,
        100_000 => 14,
        _ => 0,
    };
    (code << 1) | 1
}

fn aggregator(node: &Node, link: &Link, b: &Bond) -> Option<Aggregator> {
    if !link.admin_up {
        return None;
    }
    let up: Vec<&Slave> = b.slaves.iter().filter(|s| s.mii_up).collect();
    let first = up.first()?;
    let speed = match node.link(&first.name).map(|l| &l.kind) {
        Some(LinkKind::Ether(n)) => n.speed_mbps,
        _ => 0,
    };
    Some(Aggregator {
        ports: up.len(),
        actor_key: ad_key(speed),
        partner_key: ad_key(speed),
    })
}

/// `/proc/net/bonding/<bond>` exactly as `bond_procfs.c` prints it (current kernels, root).
pub fn proc_bonding(node: &Node, link: &Link, clock: u64) -> Option<String> {
    let LinkKind::Bond(b) = &link.kind else {
        return None;
    };
    let mut s = format!("Ethernet Channel Bonding Driver: v{}\n\n", node.kernel);
    s.push_str(&format!("Bonding Mode: {}\n", b.mode.proc_name()));
    if b.mode.uses_xmit_hash() {
        let n = match b.xmit_hash_policy.as_str() {
            "layer3+4" => 1,
            "layer2+3" => 2,
            "encap2+3" => 3,
            "encap3+4" => 4,
            "vlan+srcmac" => 5,
            _ => 0,
        };
        s.push_str(&format!("Transmit Hash Policy: {} ({n})\n", b.xmit_hash_policy));
    }
    if b.mode.uses_primary() {
        s.push_str("Primary Slave: None\n");
        s.push_str(&format!(
            "Currently Active Slave: {}\n",
            b.active_slave.as_deref().unwrap_or("None")
        ));
    }
    let up = link.admin_up && b.slaves.iter().any(|s| s.mii_up);
    s.push_str(&format!("MII Status: {}\n", if up { "up" } else { "down" }));
    s.push_str(&format!("MII Polling Interval (ms): {}\n", b.miimon));
    s.push_str("Up Delay (ms): 0\nDown Delay (ms): 0\nPeer Notification Delay (ms): 0\n");
    let agg = aggregator(node, link, b);
    if b.mode == BondMode::Lacp {
        s.push_str("\n802.3ad info\nLACP active: on\n");
        s.push_str(&format!(
            "LACP rate: {}\n",
            if b.lacp_fast { "fast" } else { "slow" }
        ));
        s.push_str("Min links: 0\nAggregator selection policy (ad_select): stable\n");
        s.push_str(&format!(
            "System priority: 65535\nSystem MAC address: {}\n",
            link.mac
        ));
        match &agg {
            Some(a) => s.push_str(&format!(
                "Active Aggregator Info:\n\tAggregator ID: 1\n\tNumber of ports: {}\n\tActor Key: {}\n\tPartner Key: {}\n\tPartner Mac Address: {}\n",
                a.ports, a.actor_key, a.partner_key, b.partner_mac
            )),
            None => s.push_str(&format!("bond {} has no active aggregator\n", link.name)),
        }
    }
    for (idx, sl) in b.slaves.iter().enumerate() {
        let (speed, duplex) = match node.link(&sl.name).map(|l| (&l.kind, l.admin_up)) {
            Some((LinkKind::Ether(n), true)) if n.cable => (format!("{} Mbps", n.speed_mbps), "full"),
            _ => ("Unknown".to_string(), "Unknown"),
        };
        s.push_str(&format!("\nSlave Interface: {}\n", sl.name));
        s.push_str(&format!(
            "MII Status: {}\n",
            if sl.mii_up { "up" } else { "down" }
        ));
        s.push_str(&format!("Speed: {speed}\nDuplex: {duplex}\n"));
        s.push_str(&format!("Link Failure Count: {}\n", sl.link_failure_count));
        s.push_str(&format!(
            "Permanent HW addr: {}\nSlave queue ID: 0\n",
            sl.perm_hwaddr
        ));
        if b.mode == BondMode::Lacp {
            if sl.mii_up && agg.is_some() {
                let key = agg.as_ref().map_or(0, |a| a.actor_key);
                let churn = if clock.saturating_sub(sl.enslaved_at) < 60 {
                    "monitoring"
                } else {
                    "none"
                };
                let port = idx + 1;
                s.push_str(&format!(
                    "Aggregator ID: 1\nActor Churn State: {churn}\nPartner Churn State: {churn}\nActor Churned Count: 0\nPartner Churned Count: 0\n"
                ));
                s.push_str(&format!(
                    "details actor lacp pdu:\n    system priority: 65535\n    system mac address: {}\n    port key: {key}\n    port priority: 255\n    port number: {port}\n    port state: 63\n",
                    link.mac
                ));
                s.push_str(&format!(
                    "details partner lacp pdu:\n    system priority: 65535\n    system mac address: {}\n    oper key: {key}\n    port priority: 255\n    port number: {port}\n    port state: 63\n",
                    b.partner_mac
                ));
            } else {
                s.push_str("Aggregator ID: N/A\n");
            }
        }
    }
    Some(s)
}

fn usage_err(msg: &str) -> Output {
    Output::err(255, format!("{msg}\n"))
}

fn no_dev(name: &str) -> Output {
    Output::err(1, format!("Cannot find device \"{name}\"\n"))
}

fn rtnl(msg: &str) -> Output {
    Output::err(2, format!("RTNETLINK answers: {msg}\n"))
}

/// The `ip` command.
pub fn ip(world: &mut World, node: &str, args: &[&str]) -> Output {
    let mut json = false;
    let mut details = false;
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        match *first {
            "-j" | "-json" | "--json" => json = true,
            "-d" | "-details" | "--details" => details = true,
            "-p" | "-pretty" => {}
            "-jd" | "-dj" => {
                json = true;
                details = true;
            }
            f if f.starts_with('-') => {
                return usage_err(&format!("Option \"{f}\" is unknown, try \"ip -help\"."));
            }
            _ => break,
        }
        rest = tail;
    }
    let Some((object, rest)) = rest.split_first() else {
        return Output::err(255, "Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }\n");
    };
    let clock = world.clock;
    let partner = world.rng().mac();
    let fresh_mac = world.rng().mac();
    let Some(n) = world.nodes.get_mut(node) else {
        return no_dev(node);
    };
    match *object {
        "link" | "l" | "li" => ip_link(n, rest, json, details, clock, &partner, &fresh_mac),
        "addr" | "a" | "address" => ip_addr(n, rest, json),
        other => usage_err(&format!("Object \"{other}\" is unknown, try \"ip help\".")),
    }
}

fn select_dev<'a>(rest: &[&'a str]) -> Option<&'a str> {
    match rest {
        ["dev", d, ..] => Some(d),
        [d, ..] if *d != "dev" => Some(d),
        _ => None,
    }
}

fn show_links(n: &Node, rest: &[&str], json: bool, details: bool) -> Output {
    let dev = select_dev(rest);
    let links: Vec<&Link> = match dev {
        Some(d) => match n.link(d) {
            Some(l) => vec![l],
            None => return Output::err(1, format!("Device \"{d}\" does not exist.\n")),
        },
        None => n.links.iter().collect(),
    };
    if json {
        let items: Vec<String> = links.iter().map(|l| json_link(n, l, details)).collect();
        return Output::ok(format!("{}\n", json_arr(&items)));
    }
    let mut out = String::new();
    for l in links {
        if details {
            out.push_str(&detail_link(n, l));
        } else {
            out.push_str(&header(n, l, true));
            out.push_str(&link_line(l));
            out.push('\n');
        }
    }
    Output::ok(out)
}

fn ip_link(
    n: &mut Node,
    rest: &[&str],
    json: bool,
    details: bool,
    clock: u64,
    partner: &str,
    fresh_mac: &str,
) -> Output {
    let Some((cmd, rest)) = rest.split_first() else {
        return show_links(n, &[], json, details);
    };
    match *cmd {
        "show" | "list" | "ls" | "sh" => show_links(n, rest, json, details),
        "add" => link_add(n, rest, partner, fresh_mac),
        "del" | "delete" => {
            let Some(d) = select_dev(rest) else {
                return usage_err("Not enough information: \"dev\" argument is required.");
            };
            link_del(n, d)
        }
        "set" => link_set(n, rest, clock),
        other => usage_err(&format!("Command \"{other}\" is unknown, try \"ip link help\".")),
    }
}

fn link_add(n: &mut Node, rest: &[&str], partner: &str, fresh_mac: &str) -> Output {
    let mut name = None;
    let mut parent = None;
    let mut kind = None;
    let mut mode = BondMode::BalanceRr;
    let mut miimon = 0;
    let mut vlan_id = None;
    let mut i = 0;
    while i < rest.len() {
        let val = rest.get(i + 1).copied();
        match (rest[i], val) {
            ("name", Some(v)) => name = Some(v),
            ("link", Some(v)) => parent = Some(v),
            ("type", Some(v)) => kind = Some(v),
            ("mode", Some(v)) => match BondMode::parse(v) {
                Some(m) => mode = m,
                None => return Output::err(2, format!("Error: option \"mode\": invalid value \"{v}\".\n")),
            },
            ("miimon", Some(v)) => match v.parse() {
                Ok(m) => miimon = m,
                Err(_) => {
                    return Output::err(255, format!("Error: argument \"{v}\" is wrong: invalid miimon\n"));
                }
            },
            ("id", Some(v)) => match v.parse::<u16>() {
                Ok(id) if id < 4095 => vlan_id = Some(id),
                _ => return Output::err(255, format!("Error: argument \"{v}\" is wrong: id is invalid\n")),
            },
            (word, None) if name.is_none() && kind.is_none() => {
                name = Some(word);
                i += 1;
                continue;
            }
            (word, Some(_)) if name.is_none() && !["name", "link", "type"].contains(&word) => {
                name = Some(word);
                i += 1;
                continue;
            }
            (word, _) => {
                return usage_err(&format!(
                    "Error: either \"dev\" is duplicate, or \"{word}\" is a garbage."
                ));
            }
        }
        i += 2;
    }
    let Some(name) = name else {
        return usage_err("Not enough information: \"dev\" argument is required.");
    };
    if n.link(name).is_some() {
        return rtnl("File exists");
    }
    match kind {
        Some("bond") => {
            create_bond(n, name, mode, miimon, fresh_mac, partner);
            Output::ok("")
        }
        Some("vlan") => {
            let Some(p) = parent else {
                return usage_err("Not enough information: \"link\" argument is required.");
            };
            let Some(id) = vlan_id else {
                return usage_err("8021q: VLAN device needs id");
            };
            if n.link(p).is_none() {
                return no_dev(p);
            }
            create_vlan(n, name, p, id);
            Output::ok("")
        }
        Some(other) => Output::err(2, format!("Error: Unknown device type \"{other}\".\n")),
        None => usage_err("Not enough information: \"type\" argument is required."),
    }
}

fn link_del(n: &mut Node, dev: &str) -> Output {
    let Some(link) = n.link(dev).cloned() else {
        return no_dev(dev);
    };
    match &link.kind {
        LinkKind::Bond(b) => {
            for s in b.slaves.clone() {
                release(n, &s.name);
            }
        }
        LinkKind::Ether(_) | LinkKind::Loopback => return rtnl("Operation not supported"),
        LinkKind::Vlan { .. } => {}
    }
    if link.master.is_some() {
        release(n, dev);
    }
    n.links.retain(|l| l.name != dev);
    // Sub-interfaces die with their parent.
    n.links
        .retain(|l| !matches!(&l.kind, LinkKind::Vlan { parent, .. } if parent == dev));
    reconcile(n);
    Output::ok("")
}

fn link_set(n: &mut Node, rest: &[&str], clock: u64) -> Output {
    let (dev, mut rest) = match rest {
        ["dev", d, tail @ ..] => (*d, tail),
        [d, tail @ ..] => (*d, tail),
        [] => return usage_err("Not enough information: \"dev\" argument is required."),
    };
    if n.link(dev).is_none() {
        return no_dev(dev);
    }
    while let Some((word, tail)) = rest.split_first() {
        match (*word, tail) {
            ("up", _) => {
                if let Some(l) = n.link_mut(dev) {
                    l.admin_up = true;
                }
                reconcile(n);
                rest = tail;
            }
            ("down", _) => {
                if let Some(l) = n.link_mut(dev) {
                    l.admin_up = false;
                }
                reconcile(n);
                rest = tail;
            }
            ("master", [bond, t @ ..]) => {
                if n.link(bond).is_none() {
                    return no_dev(bond);
                }
                if let Err(e) = enslave(n, dev, bond, clock) {
                    return rtnl(e);
                }
                rest = t;
            }
            ("nomaster", t) => {
                release(n, dev);
                rest = t;
            }
            ("mtu", [v, t @ ..]) => {
                match v.parse() {
                    Ok(m) => {
                        if let Some(l) = n.link_mut(dev) {
                            l.mtu = m;
                        }
                    }
                    Err(_) => {
                        return Output::err(
                            255,
                            format!("Error: argument \"{v}\" is wrong: Invalid \"mtu\" value\n"),
                        );
                    }
                }
                rest = t;
            }
            ("type", ["bond", t @ ..]) => return bond_set(n, dev, t),
            (w, _) => {
                return usage_err(&format!(
                    "Error: either \"dev\" is duplicate, or \"{w}\" is a garbage."
                ));
            }
        }
    }
    Output::ok("")
}

fn bond_set(n: &mut Node, dev: &str, opts: &[&str]) -> Output {
    let Some(link) = n.link(dev).cloned() else {
        return no_dev(dev);
    };
    let LinkKind::Bond(b) = &link.kind else {
        return rtnl("Operation not supported");
    };
    let mut i = 0;
    while i < opts.len() {
        let Some(val) = opts.get(i + 1).copied() else {
            return usage_err(&format!("Error: argument \"{}\" requires a value", opts[i]));
        };
        match opts[i] {
            "mode" => {
                let Some(mode) = BondMode::parse(val) else {
                    return Output::err(2, format!("Error: option \"mode\": invalid value \"{val}\".\n"));
                };
                if link.admin_up {
                    return rtnl("Device or resource busy");
                }
                if !b.slaves.is_empty() {
                    return rtnl("Directory not empty");
                }
                if let Some(LinkKind::Bond(bm)) = n.link_mut(dev).map(|l| &mut l.kind) {
                    bm.mode = mode;
                }
            }
            "active_slave" => {
                if !b.mode.uses_primary() {
                    return rtnl("Permission denied");
                }
                let ok = b.slaves.iter().any(|s| s.name == val && s.mii_up);
                if !ok {
                    return rtnl("Invalid argument");
                }
                if let Some(LinkKind::Bond(bm)) = n.link_mut(dev).map(|l| &mut l.kind) {
                    bm.active_slave = Some(val.to_string());
                }
            }
            "miimon" => match val.parse() {
                Ok(m) => {
                    if let Some(LinkKind::Bond(bm)) = n.link_mut(dev).map(|l| &mut l.kind) {
                        bm.miimon = m;
                    }
                }
                Err(_) => {
                    return Output::err(
                        255,
                        format!("Error: argument \"{val}\" is wrong: invalid miimon\n"),
                    );
                }
            },
            "lacp_rate" => {
                if let Some(LinkKind::Bond(bm)) = n.link_mut(dev).map(|l| &mut l.kind) {
                    bm.lacp_fast = val == "fast" || val == "1";
                }
            }
            "xmit_hash_policy" => {
                if let Some(LinkKind::Bond(bm)) = n.link_mut(dev).map(|l| &mut l.kind) {
                    bm.xmit_hash_policy = val.to_string();
                }
            }
            other => {
                return usage_err(&format!(
                    "Error: either \"dev\" is duplicate, or \"{other}\" is a garbage."
                ));
            }
        }
        i += 2;
    }
    reconcile(n);
    Output::ok("")
}

fn ip_addr(n: &mut Node, rest: &[&str], json: bool) -> Output {
    let Some((cmd, rest)) = rest.split_first() else {
        return show_addrs(n, &[], json);
    };
    match *cmd {
        "show" | "list" | "ls" | "sh" => show_addrs(n, rest, json),
        "add" | "del" | "delete" => {
            let (Some(cidr), ["dev", dev, ..]) = (rest.first(), rest.get(1..).unwrap_or(&[])) else {
                return usage_err("Not enough information: \"dev\" argument is required.");
            };
            let Some(addr) = Addr::parse_cidr(cidr) else {
                return Output::err(
                    1,
                    format!("Error: any valid prefix is expected rather than \"{cidr}\".\n"),
                );
            };
            let Some(l) = n.link_mut(dev) else {
                return no_dev(dev);
            };
            if *cmd == "add" {
                if l.addrs.iter().any(|a| a.ip == addr.ip) {
                    return rtnl("File exists");
                }
                l.addrs.push(addr);
            } else {
                let before = l.addrs.len();
                l.addrs.retain(|a| !(a.ip == addr.ip && a.prefix == addr.prefix));
                if l.addrs.len() == before {
                    return rtnl("Cannot assign requested address");
                }
            }
            Output::ok("")
        }
        other => usage_err(&format!(
            "Command \"{other}\" is unknown, try \"ip address help\"."
        )),
    }
}

fn show_addrs(n: &Node, rest: &[&str], json: bool) -> Output {
    let links: Vec<&Link> = match select_dev(rest) {
        Some(d) => match n.link(d) {
            Some(l) => vec![l],
            None => return Output::err(1, format!("Device \"{d}\" does not exist.\n")),
        },
        None => n.links.iter().collect(),
    };
    if json {
        let items: Vec<String> = links.iter().map(|l| json_addr(n, l)).collect();
        return Output::ok(format!("{}\n", json_arr(&items)));
    }
    Output::ok(links.iter().map(|l| addr_block(n, l)).collect::<String>())
}
