//! DRBD 9: per-node views derived from the world's per-pair connection state, `drbdadm`,
//! `drbdsetup status` / `events2`, `/proc/drbd`, handshakes (resync, split brain) and resync
//! progress over simulated time.
//!
//! Output follows `drbdsetup.c` of drbd-utils 9.2x (`resource_status`, `device_status`,
//! `connection_status`, `peer_device_status` and the `wrap_printf` indentation rules).

use super::model::*;
use super::{FAST_RESYNC_KIB_PER_SEC, Output, World, pair_key};

/// What one node sees of one peer.
struct PeerView {
    name: String,
    node_id: u32,
    conn: &'static str,
    role: &'static str,
    repl: &'static str,
    peer_disk: &'static str,
    peer_client: bool,
    done: Option<f64>,
    sent: u64,
    received: u64,
    out_of_sync: u64,
}

/// The `wrap_printf` of drbdsetup: at the start of a line, indent and drop one leading space.
#[derive(Default)]
struct Wrap {
    out: String,
    col0: bool,
}

impl Wrap {
    fn new() -> Self {
        Self {
            out: String::new(),
            col0: true,
        }
    }
    fn p(&mut self, indent: usize, text: &str) {
        if text == "\n" {
            self.out.push('\n');
            self.col0 = true;
            return;
        }
        if self.col0 {
            self.out.push_str(&" ".repeat(indent));
            self.out.push_str(text.strip_prefix(' ').unwrap_or(text));
            self.col0 = false;
        } else {
            self.out.push_str(text);
        }
    }
}

fn members(world: &World, res: &str) -> Vec<String> {
    world
        .linstor
        .resources
        .get(res)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn node_id(world: &World, res: &str, node: &str) -> u32 {
    world
        .linstor
        .resources
        .get(res)
        .and_then(|m| m.get(node))
        .map_or(0, |r| r.node_id)
}

/// Whether `a` and `b` are connected for `res` right now.
pub fn connected(world: &World, res: &str, a: &str, b: &str) -> bool {
    let up = |n: &str| world.nodes.get(n).is_some_and(|x| x.drbd.contains_key(res));
    let Some(p) = world.pairs.get(res).and_then(|m| m.get(&pair_key(a, b))) else {
        return false;
    };
    up(a) && up(b) && !p.cut && !p.split_brain && p.standalone.is_empty()
}

fn peer_views(world: &World, res: &str, me: &str) -> Vec<PeerView> {
    let Some(local) = world.nodes.get(me).and_then(|n| n.drbd.get(res)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for peer in members(world, res).into_iter().filter(|p| p != me) {
        let key = pair_key(me, &peer);
        let pair = world
            .pairs
            .get(res)
            .and_then(|m| m.get(&key))
            .cloned()
            .unwrap_or_default();
        let (sent, received) = if me < peer.as_str() {
            (pair.sent_lo, pair.sent_hi)
        } else {
            (pair.sent_hi, pair.sent_lo)
        };
        let remote = world.nodes.get(&peer).and_then(|n| n.drbd.get(res));
        let conn = if pair.standalone.contains(me) || (pair.split_brain && pair.standalone.is_empty()) {
            "StandAlone"
        } else if connected(world, res, me, &peer) {
            "Connected"
        } else {
            "Connecting"
        };
        let mut v = PeerView {
            name: peer.clone(),
            node_id: node_id(world, res, &peer),
            conn,
            role: "Unknown",
            repl: "Off",
            peer_disk: "DUnknown",
            peer_client: false,
            done: None,
            sent,
            received,
            out_of_sync: 0,
        };
        if conn == "Connected" {
            if let Some(r) = remote {
                v.role = r.role.name();
                v.peer_disk = r.disk.name();
                v.peer_client = r.client;
                v.repl = "Established";
                if let Some(rs) = &pair.resync {
                    v.repl = if rs.source == me {
                        "SyncSource"
                    } else {
                        "SyncTarget"
                    };
                    v.out_of_sync = rs.left_kib;
                    v.done = Some(100.0 * (rs.total_kib - rs.left_kib) as f64 / rs.total_kib.max(1) as f64);
                }
            }
        } else if local.disk == DiskState::UpToDate && !local.client {
            v.out_of_sync = if pair.diverged { 4 } else { 0 };
        }
        out.push(v);
    }
    out
}

fn has_quorum(world: &World, res: &str, me: &str) -> bool {
    let all = members(world, res);
    let reachable = 1 + all
        .iter()
        .filter(|p| p.as_str() != me && connected(world, res, me, p))
        .count();
    all.len() <= 2 || reachable * 2 > all.len()
}

/// `drbdsetup status [RES]` text for one node; `verbose`/`stats` as the flags.
pub fn status_text(
    world: &World,
    node: &str,
    res_filter: Option<&str>,
    verbose: bool,
    stats: bool,
) -> Result<String, Output> {
    let Some(n) = world.nodes.get(node) else {
        return Err(Output::err(20, "no node\n"));
    };
    if !n.has_module("drbd") {
        return Err(Output::err(
            20,
            "Could not connect to 'drbd' generic netlink family\n",
        ));
    }
    let filter = res_filter.filter(|r| *r != "all");
    if let Some(r) = filter
        && !n.drbd.contains_key(r)
    {
        return Err(Output::err(10, format!("{r}: No such resource\n")));
    }
    if n.drbd.is_empty() {
        return Ok("# No currently configured DRBD found.\n".to_string());
    }
    let mut w = Wrap::new();
    for (name, local) in n
        .drbd
        .iter()
        .filter(|(k, _)| filter.is_none_or(|f| f == k.as_str()))
    {
        let def = world.linstor.defs.get(name).cloned().unwrap_or(LResDef {
            port: 7000,
            minor: 1000,
            size_kib: 0,
        });
        w.p(0, name);
        if verbose {
            w.p(4, &format!(" node-id:{}", node_id(world, name, node)));
        }
        w.p(4, &format!(" role:{}", local.role.name()));
        if verbose {
            w.p(4, " suspended:no");
        }
        if stats && verbose {
            w.p(4, "\n");
            w.p(4, " write-ordering:flush");
        }
        w.p(0, "\n");
        // device_status, one volume
        let mut indent = 2;
        if verbose {
            w.p(indent, "volume:0");
            indent = 6;
            w.p(indent, &format!(" minor:{}", def.minor));
        }
        w.p(indent, &format!(" disk:{}", local.disk.name()));
        if local.disk == DiskState::Diskless {
            w.p(
                indent,
                &format!(" client:{}", if local.client { "yes" } else { "no" }),
            );
        }
        let quorum = has_quorum(world, name, node);
        if verbose || !quorum {
            w.p(indent, &format!(" quorum:{}", if quorum { "yes" } else { "no" }));
        }
        if stats {
            let s = &local.stats;
            w.p(6, "\n");
            if verbose {
                w.p(6, &format!(" size:{}", def.size_kib));
            }
            w.p(6, &format!(" read:{} written:{}", s.read, s.written));
            if verbose {
                w.p(
                    6,
                    &format!(
                        " al-writes:{} bm-writes:{} upper-pending:{} lower-pending:{} al-suspended:no",
                        s.al_writes, s.bm_writes, s.upper_pending, s.lower_pending
                    ),
                );
            }
        }
        if verbose && stats {
            w.p(6, " blocked:no");
        }
        w.p(6, "\n");
        for v in peer_views(world, name, node) {
            w.p(2, &v.name);
            if verbose {
                w.p(6, &format!(" node-id:{}", v.node_id));
            }
            if verbose || v.conn != "Connected" {
                w.p(6, &format!(" connection:{}", v.conn));
            }
            if verbose || v.conn == "Connected" {
                w.p(6, &format!(" role:{}", v.role));
            }
            if verbose {
                w.p(6, " congested:no ap-in-flight:0 rs-in-flight:0");
            }
            w.p(0, "\n");
            if !(verbose || stats || v.conn == "Connected") {
                continue;
            }
            let mut ind = 4;
            if verbose {
                w.p(ind, "volume:0");
                ind = 8;
            }
            if verbose || !matches!(v.repl, "Off" | "Established") {
                w.p(ind, &format!(" replication:{}", v.repl));
                ind = 8;
            }
            if verbose || stats || v.repl != "Off" || v.peer_disk != "DUnknown" {
                w.p(ind, &format!(" peer-disk:{}", v.peer_disk));
                if v.peer_disk == "Diskless" {
                    w.p(
                        ind,
                        &format!(" peer-client:{}", if v.peer_client { "yes" } else { "no" }),
                    );
                }
                ind = 8;
                if let Some(d) = v.done {
                    w.p(ind, &format!(" done:{d:.2}"));
                }
                if verbose {
                    w.p(ind, " resync-suspended:no");
                }
                if stats {
                    w.p(ind, "\n");
                    w.p(ind, &format!(" received:{} sent:{}", v.received, v.sent));
                    if verbose || v.out_of_sync > 0 {
                        w.p(ind, &format!(" out-of-sync:{}", v.out_of_sync));
                    }
                    if verbose {
                        w.p(ind, " pending:0 unacked:0");
                        if v.done.is_some() {
                            let rate = rate_kib(world, name, v.out_of_sync + 1) as f64 / 1024.0;
                            let eta = v.out_of_sync as f64 / (rate * 1024.0).max(1.0);
                            w.p(ind, &format!(" dbdt1:{rate:.2} eta:{eta:.0}"));
                        }
                    }
                }
            }
            w.p(0, "\n");
        }
        w.p(0, "\n");
    }
    Ok(w.out)
}

fn events2(world: &World, node: &str, res_filter: Option<&str>, stats: bool) -> Output {
    let Some(n) = world.nodes.get(node) else {
        return Output::err(20, "");
    };
    if !n.has_module("drbd") {
        return Output::err(20, "Could not connect to 'drbd' generic netlink family\n");
    }
    let filter = res_filter.filter(|r| *r != "all");
    let mut out = String::new();
    for (name, local) in n
        .drbd
        .iter()
        .filter(|(k, _)| filter.is_none_or(|f| f == k.as_str()))
    {
        let def = world.linstor.defs.get(name).cloned().unwrap_or(LResDef {
            port: 7000,
            minor: 1000,
            size_kib: 0,
        });
        out.push_str(&format!(
            "exists resource name:{name} role:{} suspended:no",
            local.role.name()
        ));
        if stats {
            out.push_str(" write-ordering:flush");
        }
        out.push('\n');
        out.push_str(&format!(
            "exists device name:{name} volume:0 minor:{} disk:{} client:{} quorum:{}",
            def.minor,
            local.disk.name(),
            if local.client { "yes" } else { "no" },
            if has_quorum(world, name, node) {
                "yes"
            } else {
                "no"
            }
        ));
        if stats {
            let s = &local.stats;
            out.push_str(&format!(
                " size:{} read:{} written:{} al-writes:{} bm-writes:{} upper-pending:{} lower-pending:{} al-suspended:no blocked:no",
                def.size_kib, s.read, s.written, s.al_writes, s.bm_writes, s.upper_pending, s.lower_pending
            ));
        }
        out.push('\n');
        let views = peer_views(world, name, node);
        for v in &views {
            out.push_str(&format!(
                "exists connection name:{name} peer-node-id:{} conn-name:{} connection:{} role:{}",
                v.node_id, v.name, v.conn, v.role
            ));
            if stats {
                out.push_str(" congested:no ap-in-flight:0 rs-in-flight:0");
            }
            out.push('\n');
        }
        for v in &views {
            out.push_str(&format!(
                "exists peer-device name:{name} peer-node-id:{} conn-name:{} volume:0 replication:{} peer-disk:{} peer-client:{} resync-suspended:no",
                v.node_id, v.name, v.repl, v.peer_disk, if v.peer_client { "yes" } else { "no" }
            ));
            if let Some(d) = v.done {
                out.push_str(&format!(" done:{d:.2}"));
            }
            if stats {
                out.push_str(&format!(
                    " received:{} sent:{} out-of-sync:{} pending:0 unacked:0",
                    v.received, v.sent, v.out_of_sync
                ));
            }
            out.push('\n');
        }
    }
    out.push_str("exists -\n");
    Output::ok(out)
}

fn version_of(pkg: Option<&Package>, fallback: &str) -> String {
    let v = pkg.map_or(fallback, |p| p.version.as_str());
    v.split('-').next().unwrap_or(v).to_string()
}

fn fake_hash(seed: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = String::new();
    while out.len() < 40 {
        for b in seed.bytes().chain(out.clone().bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(40);
    out
}

/// `/proc/drbd` of a DRBD 9 module: only the version header and loaded transports.
pub fn proc_drbd(node: &Node) -> Option<String> {
    if !node.has_module("drbd") {
        return None;
    }
    let v = version_of(node.packages.get("drbd-dkms"), "9.2.12");
    let mut s = format!(
        "version: {v} (api:2/proto:86-122)\nGIT-hash: {} build by @buildsystem, 2024-11-05 12:34:56\nTransports (api:21):",
        fake_hash(&v)
    );
    if node.has_module("drbd_transport_tcp") {
        s.push_str(&format!(" tcp ({v})"));
    }
    s.push('\n');
    Some(s)
}

fn version_code(v: &str) -> String {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    format!("0x{a:02x}{b:02x}{c:02x}")
}

fn drbdadm_version(n: &Node) -> String {
    let utils = version_of(n.packages.get("drbd-utils"), "9.29.0");
    let mut s = format!(
        "DRBDADM_BUILDTAG=GIT-hash:\\ {}\\ build\\ by\\ @buildsystem\\,\\ 2024-11-05\\ 12:34:56\nDRBDADM_API_VERSION=2\n",
        fake_hash(&utils)
    );
    if n.has_module("drbd") {
        let k = version_of(n.packages.get("drbd-dkms"), "9.2.12");
        s.push_str(&format!(
            "DRBD_KERNEL_VERSION_CODE={}\nDRBD_KERNEL_VERSION={k}\n",
            version_code(&k)
        ));
    }
    s.push_str(&format!(
        "DRBDADM_VERSION_CODE={}\nDRBDADM_VERSION={utils}\n",
        version_code(&utils)
    ));
    s
}

fn configured(world: &World, node: &str) -> Vec<String> {
    world
        .linstor
        .resources
        .iter()
        .filter(|(_, m)| m.contains_key(node))
        .map(|(r, _)| r.clone())
        .collect()
}

fn targets(world: &World, node: &str, arg: Option<&str>) -> Result<Vec<String>, Output> {
    let conf = configured(world, node);
    match arg {
        None => Err(Output::err(
            1,
            "USAGE: drbdadm COMMAND [OPTION...] {all|RESOURCE...}\n",
        )),
        Some("all") => {
            if conf.is_empty() {
                Err(Output::err(1, "no resources defined!\n"))
            } else {
                Ok(conf)
            }
        }
        Some(r) => {
            let r = r.split(':').next().unwrap_or(r).split('/').next().unwrap_or(r);
            if conf.iter().any(|c| c == r) {
                Ok(vec![r.to_string()])
            } else {
                Err(Output::err(
                    10,
                    format!("'{r}' not defined in your config (for this host).\n"),
                ))
            }
        }
    }
}

/// The `drbdadm` command.
pub fn drbdadm(world: &mut World, node: &str, args: &[&str]) -> Output {
    let mut discard = false;
    let mut dry_run = false;
    let mut positional = Vec::new();
    for a in args {
        match *a {
            "--discard-my-data" => discard = true,
            "-d" | "--dry-run" => dry_run = true,
            "--version" | "-V" => {
                return world
                    .nodes
                    .get(node)
                    .map_or_else(Output::default, |n| Output::ok(drbdadm_version(n)));
            }
            "-v" | "--verbose" => {}
            f if f.starts_with('-') => {
                return Output::err(
                    1,
                    format!("drbdadm: unrecognized option '{f}'\ntry 'drbdadm help'\n"),
                );
            }
            p => positional.push(p),
        }
    }
    let Some((cmd, rest)) = positional.split_first() else {
        return Output::err(1, "USAGE: drbdadm COMMAND [OPTION...] {all|RESOURCE...}\n");
    };
    let arg = rest.first().copied();
    if *cmd == "status" {
        let res = arg.unwrap_or("all");
        if res != "all"
            && let Err(e) = targets(world, node, Some(res))
        {
            return e;
        }
        return match status_text(world, node, Some(res), false, false) {
            Ok(s) => Output::ok(s),
            Err(e) => e,
        };
    }
    if *cmd == "sh-resources" {
        // The resources this host's configuration defines (LINSTOR writes one `.res` file per
        // resource with a replica here), on one line; nothing when there are none.
        let conf = configured(world, node);
        return if conf.is_empty() {
            Output::ok("")
        } else {
            Output::ok(format!("{}\n", conf.join(" ")))
        };
    }
    if ![
        "up",
        "down",
        "adjust",
        "primary",
        "secondary",
        "connect",
        "disconnect",
    ]
    .contains(cmd)
    {
        return Output::err(1, format!("drbdadm: Unknown command '{cmd}'\n"));
    }
    let list = match targets(world, node, arg) {
        Ok(l) => l,
        Err(e) => return e,
    };
    if dry_run {
        // What drbdadm would run, without running it: one `drbdsetup` line per step.
        let text: String = list
            .iter()
            .map(|res| dry_run_lines(world, node, cmd, res))
            .collect();
        return Output::ok(text);
    }
    let mut out = Output::ok("");
    for res in list {
        let r = match *cmd {
            "up" => up(world, node, &res, true),
            "adjust" => up(world, node, &res, false),
            "down" => down(world, node, &res),
            "primary" => primary(world, node, &res),
            "secondary" => secondary(world, node, &res),
            "connect" => connect(world, node, &res, discard),
            _ => disconnect(world, node, &res),
        };
        if r.code != 0 {
            out = r;
        }
    }
    handshake_all(world);
    out
}

pub(super) fn up(world: &mut World, node: &str, res: &str, strict: bool) -> Output {
    let failed = world
        .nodes
        .get(node)
        .is_some_and(|n| n.failed_disks.contains(res));
    let diskless = world
        .linstor
        .resources
        .get(res)
        .and_then(|m| m.get(node))
        .is_some_and(|r| r.storage_pool == "DfltDisklessStorPool");
    let minor = world.linstor.defs.get(res).map_or(1000, |d| d.minor);
    let Some(n) = world.nodes.get_mut(node) else {
        return Output::err(20, "");
    };
    if !n.packages.get("drbd-dkms").is_some_and(|p| p.configured) {
        return Output::err(
            20,
            format!(
                "modprobe: FATAL: Module drbd not found in directory /lib/modules/{}\n",
                n.kernel
            ),
        );
    }
    super::sys::load_module(n, "drbd");
    super::sys::load_module(n, "drbd_transport_tcp");
    if n.drbd.contains_key(res) {
        if strict {
            return Output::err(
                10,
                format!(
                    "{res}: Failure: (161) Minor or volume exists already (delete it first)\nCommand 'drbdsetup new-minor {res} {minor} 0' terminated with exit code 10\n"
                ),
            );
        }
    } else {
        n.drbd.insert(
            res.to_string(),
            DrbdLocal {
                role: Role::Secondary,
                disk: if diskless || failed {
                    DiskState::Diskless
                } else {
                    DiskState::UpToDate
                },
                client: diskless,
                stats: VolStats::default(),
                held_open_by: std::collections::BTreeSet::new(),
            },
        );
    }
    if let Some(pairs) = world.pairs.get_mut(res) {
        for (k, p) in pairs.iter_mut() {
            if k.split(' ').any(|x| x == node) && !p.split_brain {
                p.standalone.remove(node);
            }
        }
    }
    Output::ok("")
}

/// DRBD's refusal to demote or take down a Primary that something holds open (a mounted file
/// system, a pod's volume), as `drbdsetup` words it and `drbdadm` passes it on.
fn held_open(res: &str, what: &str) -> Output {
    Output::err(
        11,
        format!(
            "{res}: State change failed: (-12) Device is held open by someone\nCommand 'drbdsetup {what} {res}' terminated with exit code 11\n"
        ),
    )
}

fn is_held_open(world: &World, node: &str, res: &str) -> bool {
    world
        .nodes
        .get(node)
        .and_then(|n| n.drbd.get(res))
        .is_some_and(|l| l.role == Role::Primary && !l.held_open_by.is_empty())
}

fn secondary(world: &mut World, node: &str, res: &str) -> Output {
    if is_held_open(world, node, res) {
        return held_open(res, "secondary");
    }
    if let Some(l) = world.nodes.get_mut(node).and_then(|n| n.drbd.get_mut(res)) {
        l.role = Role::Secondary;
    }
    Output::ok("")
}

fn down(world: &mut World, node: &str, res: &str) -> Output {
    if is_held_open(world, node, res) {
        return held_open(res, "down");
    }
    if let Some(n) = world.nodes.get_mut(node) {
        n.drbd.remove(res);
    }
    Output::ok("")
}

/// `drbdadm --dry-run CMD RES`: the `drbdsetup` calls it would make, one a line, and nothing for
/// what is already so (an `adjust` of a resource that is up and connected as configured prints
/// nothing, which is how a caller asks whether an adjust has anything to do).
fn dry_run_lines(world: &World, node: &str, cmd: &str, res: &str) -> String {
    let local = world.nodes.get(node).and_then(|n| n.drbd.get(res));
    let minor = world.linstor.defs.get(res).map_or(1000, |d| d.minor);
    let id = node_id(world, res, node);
    let peers: Vec<(String, u32)> = members(world, res)
        .into_iter()
        .filter(|p| p != node)
        .map(|p| {
            let pid = node_id(world, res, &p);
            (p, pid)
        })
        .collect();
    let bring_up = || {
        let mut s = format!("drbdsetup new-resource {res} {id}\ndrbdsetup new-minor {res} {minor} 0\n");
        for (p, pid) in &peers {
            s.push_str(&format!("drbdsetup new-peer {res} {pid} --_name={p}\n"));
        }
        s.push_str(&format!(
            "drbdsetup attach {minor} /dev/drbdpool/{res}_00000 /dev/drbdpool/{res}_00000 internal\n"
        ));
        for (_, pid) in &peers {
            s.push_str(&format!("drbdsetup connect {res} {pid}\n"));
        }
        s
    };
    match (cmd, local) {
        ("up", _) | ("adjust", None) => bring_up(),
        ("adjust", Some(_)) => {
            // Up already: only the connections an administrator cut are re-established.
            let standalone = |p: &str| {
                world
                    .pairs
                    .get(res)
                    .and_then(|m| m.get(&pair_key(node, p)))
                    .is_some_and(|pair| pair.standalone.contains(node))
            };
            peers
                .iter()
                .filter(|(p, _)| standalone(p))
                .map(|(_, pid)| format!("drbdsetup connect {res} {pid}\n"))
                .collect()
        }
        ("down", None) => String::new(),
        ("secondary", Some(l)) if l.role == Role::Secondary => String::new(),
        ("primary", Some(l)) if l.role == Role::Primary => String::new(),
        ("connect" | "disconnect", _) => peers
            .iter()
            .map(|(_, pid)| format!("drbdsetup {cmd} {res} {pid}\n"))
            .collect(),
        (other, _) => format!("drbdsetup {other} {res}\n"),
    }
}

fn primary(world: &mut World, node: &str, res: &str) -> Output {
    let Some(local) = world.nodes.get(node).and_then(|n| n.drbd.get(res)).cloned() else {
        return Output::err(
            10,
            format!(
                "{res}: No such resource\nCommand 'drbdsetup primary {res}' terminated with exit code 10\n"
            ),
        );
    };
    let peers: Vec<String> = members(world, res).into_iter().filter(|p| p != node).collect();
    for p in &peers {
        if connected(world, res, node, p)
            && world
                .nodes
                .get(p)
                .and_then(|n| n.drbd.get(res))
                .is_some_and(|l| l.role == Role::Primary)
        {
            return Output::err(
                11,
                format!(
                    "{res}: State change failed: (-1) Multiple primaries not allowed by config\nCommand 'drbdsetup primary {res}' terminated with exit code 11\n"
                ),
            );
        }
    }
    let peer_uptodate = peers.iter().any(|p| {
        connected(world, res, node, p)
            && world
                .nodes
                .get(p)
                .and_then(|n| n.drbd.get(res))
                .is_some_and(|l| l.disk == DiskState::UpToDate)
    });
    if local.disk != DiskState::UpToDate && !peer_uptodate {
        return Output::err(
            17,
            format!(
                "{res}: State change failed: (-2) Need access to UpToDate data\nCommand 'drbdsetup primary {res}' terminated with exit code 17\n"
            ),
        );
    }
    if let Some(l) = world.nodes.get_mut(node).and_then(|n| n.drbd.get_mut(res)) {
        l.role = Role::Primary;
    }
    Output::ok("")
}

fn connect(world: &mut World, node: &str, res: &str, discard: bool) -> Output {
    if !world.nodes.get(node).is_some_and(|n| n.drbd.contains_key(res)) {
        return Output::err(10, format!("{res}: No such resource\n"));
    }
    if let Some(pairs) = world.pairs.get_mut(res) {
        for (k, p) in pairs.iter_mut() {
            if !k.split(' ').any(|x| x == node) {
                continue;
            }
            p.standalone.remove(node);
            if discard {
                p.discard.insert(node.to_string());
            }
            if p.split_brain && p.standalone.is_empty() {
                // Both sides asked to connect again: the handshake decides once more.
                p.split_brain = false;
                p.split_brain_pending = p.discard.is_empty();
                p.diverged = true;
            } else if p.split_brain {
                p.split_brain = false;
                p.split_brain_pending = true;
                p.diverged = true;
            }
        }
    }
    Output::ok("")
}

fn disconnect(world: &mut World, node: &str, res: &str) -> Output {
    if !world.nodes.get(node).is_some_and(|n| n.drbd.contains_key(res)) {
        return Output::err(10, format!("{res}: No such resource\n"));
    }
    if let Some(pairs) = world.pairs.get_mut(res) {
        for (k, p) in pairs.iter_mut() {
            if k.split(' ').any(|x| x == node) {
                p.standalone.insert(node.to_string());
            }
        }
    }
    handshake_all(world);
    Output::ok("")
}

fn rate_kib(world: &World, res: &str, total: u64) -> u64 {
    match world.slow_resync.get(res) {
        Some(permille) => (total * permille / 1000).max(1),
        None => FAST_RESYNC_KIB_PER_SEC,
    }
}

/// Detects pairs whose connectivity changed and runs the DRBD handshake on new connections:
/// resync after divergence, split brain when armed, `--discard-my-data` resolution.
pub fn handshake_all(world: &mut World) {
    let resources: Vec<String> = world.pairs.keys().cloned().collect();
    for res in resources {
        let keys: Vec<String> = world
            .pairs
            .get(&res)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let any_primary = members(world, &res).iter().any(|m| {
            world
                .nodes
                .get(m)
                .and_then(|n| n.drbd.get(&res))
                .is_some_and(|l| l.role == Role::Primary)
        });
        for key in keys {
            let Some((a, b)) = key.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())) else {
                continue;
            };
            let now = connected(world, &res, &a, &b);
            let Some(p) = world.pairs.get(&res).and_then(|m| m.get(&key)).cloned() else {
                continue;
            };
            if p.connected && !now {
                if let Some(pm) = world.pairs.get_mut(&res).and_then(|m| m.get_mut(&key)) {
                    pm.connected = false;
                    if any_primary {
                        pm.diverged = true;
                    }
                    if let Some(rs) = pm.resync.take() {
                        // An interrupted resync resumes from where it stopped on reconnect.
                        pm.diverged = true;
                        let _ = rs;
                    }
                }
            } else if !p.connected && now {
                let oos = world.rng().range(4096, 65_536);
                handshake(world, &res, &key, &a, &b, oos);
            }
        }
    }
}

fn handshake(world: &mut World, res: &str, key: &str, a: &str, b: &str, oos: u64) {
    let disk = |w: &World, n: &str| {
        w.nodes
            .get(n)
            .and_then(|x| x.drbd.get(res))
            .map(|l| (l.disk, l.role, l.client))
    };
    let (Some(da), Some(db)) = (disk(world, a), disk(world, b)) else {
        return;
    };
    let Some(p) = world.pairs.get(res).and_then(|m| m.get(key)).cloned() else {
        return;
    };
    let mut p = p;
    p.connected = true;
    if p.split_brain_pending && p.discard.is_empty() {
        p.split_brain_pending = false;
        p.split_brain = true;
        p.connected = false;
        p.standalone.insert(a.to_string());
        p.standalone.insert(b.to_string());
        if let Some(m) = world.pairs.get_mut(res) {
            m.insert(key.to_string(), p);
        }
        return;
    }
    let victim = p.discard.iter().next().cloned();
    let needs_sync = p.diverged || p.split_brain_pending || victim.is_some();
    p.split_brain_pending = false;
    p.discard.clear();
    p.diverged = false;
    let a_has = !da.2 && da.0 != DiskState::Diskless;
    let b_has = !db.2 && db.0 != DiskState::Diskless;
    let (source, target) = match victim {
        Some(v) if v == a => (b, a),
        Some(_) => (a, b),
        None if da.0 == DiskState::UpToDate && db.0 != DiskState::UpToDate => (a, b),
        None if db.0 == DiskState::UpToDate && da.0 != DiskState::UpToDate => (b, a),
        None if db.1 == Role::Primary => (b, a),
        None => (a, b),
    };
    if (needs_sync || disk(world, target).is_some_and(|d| d.0 != DiskState::UpToDate)) && a_has && b_has {
        let total = world
            .linstor
            .defs
            .get(res)
            .map_or(oos, |d| oos.min(d.size_kib.max(1)));
        let rate = rate_kib(world, res, total);
        p.resync = Some(Resync {
            source: source.to_string(),
            target: target.to_string(),
            total_kib: total,
            left_kib: total,
            rate_kib: rate,
            seconds_left: world.resync_seconds.get(res).copied(),
        });
        if let Some(l) = world.nodes.get_mut(target).and_then(|n| n.drbd.get_mut(res)) {
            l.disk = DiskState::Inconsistent;
        }
    }
    if let Some(m) = world.pairs.get_mut(res) {
        m.insert(key.to_string(), p);
    }
}

/// One simulated second of resync progress.
pub fn tick(world: &mut World) {
    let mut finished = Vec::new();
    for (res, pairs) in world.pairs.iter_mut() {
        for p in pairs.values_mut() {
            if let Some(rs) = &mut p.resync {
                // A fixed duration ends exactly on its last second; otherwise the rate applies.
                let step = match &mut rs.seconds_left {
                    Some(secs) if *secs > 1 => {
                        let step = rs.left_kib / *secs;
                        *secs -= 1;
                        step
                    }
                    Some(_) => rs.left_kib,
                    None => rs.rate_kib.min(rs.left_kib),
                };
                rs.left_kib -= step;
                if rs.source.as_str() < rs.target.as_str() {
                    p.sent_lo += step;
                } else {
                    p.sent_hi += step;
                }
                if rs.left_kib == 0 {
                    finished.push((res.clone(), rs.target.clone()));
                    p.resync = None;
                }
            }
        }
    }
    for (res, target) in finished {
        let still = world.pairs.get(&res).is_some_and(|m| {
            m.values()
                .any(|p| p.resync.as_ref().is_some_and(|r| r.target == target))
        });
        if !still && let Some(l) = world.nodes.get_mut(&target).and_then(|n| n.drbd.get_mut(&res)) {
            l.disk = DiskState::UpToDate;
        }
    }
}

/// The `drbdsetup` command (the read-only subcommands the script uses).
pub fn drbdsetup(world: &mut World, node: &str, args: &[&str]) -> Output {
    let mut verbose = false;
    let mut stats = false;
    let mut now = false;
    let mut positional = Vec::new();
    for a in args {
        match *a {
            "--verbose" | "-v" => verbose = true,
            "--statistics" | "-s" => stats = true,
            "--now" | "-n" => now = true,
            "--color=never" | "--color=auto" | "--timestamps" => {}
            f if f.starts_with('-') => {
                return Output::err(20, format!("drbdsetup: unrecognized option '{f}'\n"));
            }
            p => positional.push(p),
        }
    }
    match positional.split_first() {
        Some((&"status", rest)) => match status_text(world, node, rest.first().copied(), verbose, stats) {
            Ok(s) => Output::ok(s),
            Err(e) => e,
        },
        Some((&"events2", rest)) => {
            if !now {
                return Output::err(
                    20,
                    "drbdsetup events2: only --now is supported in the simulation\n",
                );
            }
            events2(world, node, rest.first().copied(), stats)
        }
        Some((other, _)) => Output::err(20, format!("drbdsetup: unknown command '{other}'\n")),
        None => Output::err(20, "USAGE: drbdsetup command {arguments} [options]\n"),
    }
}
