//! The LINSTOR client (`linstor --no-color ...`): box-drawing tables as `linstor_client/table.py`
//! draws them in a UTF-8 locale, and the controller's success and error message blocks.

use super::model::*;
use super::util::{approx_size_kib, ymd_hms};
use super::{Output, World, drbd};

/// One table column: header and whether its text is right-aligned.
struct Col(&'static str, bool);

fn table(cols: &[Col], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = cols.iter().map(|c| c.0.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let inner = width.iter().sum::<usize>() + 3 * cols.len() - 1;
    let line = |cells: &[String]| {
        let mut s = String::from("┊");
        for (i, c) in cols.iter().enumerate() {
            let cell = cells.get(i).map_or("", String::as_str);
            let pad = width[i].saturating_sub(cell.chars().count());
            if c.1 {
                s.push_str(&format!(" {}{} ┊", " ".repeat(pad), cell));
            } else {
                s.push_str(&format!(" {}{} ┊", cell, " ".repeat(pad)));
            }
        }
        s.push('\n');
        s
    };
    let mut out = format!("╭{}╮\n", "─".repeat(inner));
    let hdr: Vec<String> = cols.iter().map(|c| c.0.to_string()).collect();
    out.push_str(&line(&hdr));
    out.push_str(&format!("╞{}╡\n", "═".repeat(inner)));
    for r in rows {
        out.push_str(&line(r));
    }
    out.push_str(&format!("╰{}╯\n", "─".repeat(inner)));
    out
}

fn online(world: &World, node: &str) -> bool {
    world
        .nodes
        .get(node)
        .is_some_and(|n| n.unit_active("linstor-satellite"))
}

fn node_list(world: &World) -> String {
    let rows: Vec<Vec<String>> = world
        .linstor
        .nodes
        .iter()
        .map(|(name, n)| {
            vec![
                name.clone(),
                n.node_type.clone(),
                format!("{}:{} ({})", n.address, n.port, n.encryption),
                if online(world, name) { "Online" } else { "OFFLINE" }.to_string(),
            ]
        })
        .collect();
    table(
        &[
            Col("Node", false),
            Col("NodeType", false),
            Col("Addresses", false),
            Col("State", false),
        ],
        &rows,
    )
}

fn sp_list(world: &World) -> String {
    let mut rows: Vec<(String, String, Vec<String>)> = Vec::new();
    for node in world.linstor.nodes.keys() {
        let state = if online(world, node) { "Ok" } else { "Warning" };
        rows.push((
            "DfltDisklessStorPool".to_string(),
            node.clone(),
            vec![
                "DfltDisklessStorPool".into(),
                node.clone(),
                "DISKLESS".into(),
                String::new(),
                String::new(),
                String::new(),
                "False".into(),
                state.into(),
                String::new(),
            ],
        ));
        for (pool, p) in world.linstor.pools.get(node).into_iter().flatten() {
            let (free, total) = if online(world, node) {
                (approx_size_kib(p.free_kib), approx_size_kib(p.total_kib))
            } else {
                (String::new(), String::new())
            };
            rows.push((
                pool.clone(),
                node.clone(),
                vec![
                    pool.clone(),
                    node.clone(),
                    p.driver.clone(),
                    p.pool_name.clone(),
                    free,
                    total,
                    "True".into(),
                    state.into(),
                    String::new(),
                ],
            ));
        }
    }
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.2).collect();
    table(
        &[
            Col("StoragePool", false),
            Col("Node", false),
            Col("Driver", false),
            Col("PoolName", false),
            Col("FreeCapacity", true),
            Col("TotalCapacity", true),
            Col("CanSnapshots", false),
            Col("State", false),
            Col("SharedName", false),
        ],
        &rows,
    )
}

/// The (usage, conns, state) LINSTOR reports for a resource on a node.
fn rsc_state(world: &World, res: &str, node: &str) -> (String, String, String) {
    if !online(world, node) {
        return (String::new(), String::new(), "Unknown".to_string());
    }
    let Some(local) = world.nodes.get(node).and_then(|n| n.drbd.get(res)) else {
        return ("Unused".into(), "Ok".into(), "Unknown".into());
    };
    let usage = if local.role == Role::Primary {
        "InUse"
    } else {
        "Unused"
    };
    let mut bad = Vec::new();
    let mut sync = None;
    for peer in world
        .linstor
        .resources
        .get(res)
        .into_iter()
        .flat_map(|m| m.keys())
    {
        if peer == node {
            continue;
        }
        let key = super::pair_key(node, peer);
        let p = world.pairs.get(res).and_then(|m| m.get(&key));
        if drbd::connected(world, res, node, peer) {
            if let Some(rs) = p.and_then(|p| p.resync.as_ref()).filter(|r| r.target == node) {
                sync = Some(100.0 * (rs.total_kib - rs.left_kib) as f64 / rs.total_kib.max(1) as f64);
            }
        } else if p.is_some_and(|p| p.standalone.contains(node)) {
            bad.push(format!("StandAlone({peer})"));
        } else {
            bad.push(format!("Connecting({peer})"));
        }
    }
    let conns = if bad.is_empty() {
        "Ok".to_string()
    } else {
        bad.join(",")
    };
    let state = match sync {
        Some(pct) => format!("SyncTarget({pct:.2}%)"),
        None => local.disk.name().to_string(),
    };
    (usage.to_string(), conns, state)
}

fn r_list(world: &World) -> String {
    let mut rows = Vec::new();
    for (res, placed) in &world.linstor.resources {
        let port = world.linstor.defs.get(res).map_or(0, |d| d.port);
        for (node, r) in placed {
            let (usage, conns, state) = rsc_state(world, res, node);
            rows.push(vec![
                res.clone(),
                node.clone(),
                port.to_string(),
                usage,
                conns,
                state,
                ymd_hms(r.created_at as i64),
            ]);
        }
    }
    table(
        &[
            Col("ResourceName", false),
            Col("Node", false),
            Col("Port", false),
            Col("Usage", false),
            Col("Conns", false),
            Col("State", true),
            Col("CreatedOn", false),
        ],
        &rows,
    )
}

fn v_list(world: &World) -> String {
    let mut rows = Vec::new();
    for (res, placed) in &world.linstor.resources {
        let minor = world.linstor.defs.get(res).map_or(0, |d| d.minor);
        for (node, r) in placed {
            let (usage, _, state) = rsc_state(world, res, node);
            let alloc = if r.allocated_kib == 0 {
                String::new()
            } else {
                approx_size_kib(r.allocated_kib)
            };
            rows.push((
                node.clone(),
                res.clone(),
                vec![
                    node.clone(),
                    res.clone(),
                    r.storage_pool.clone(),
                    "0".into(),
                    minor.to_string(),
                    format!("/dev/drbd{minor}"),
                    alloc,
                    usage,
                    state,
                ],
            ));
        }
    }
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.2).collect();
    table(
        &[
            Col("Node", false),
            Col("Resource", false),
            Col("StoragePool", false),
            Col("VolNr", true),
            Col("MinorNr", true),
            Col("DeviceName", false),
            Col("Allocated", true),
            Col("InUse", false),
            Col("State", true),
        ],
        &rows,
    )
}

fn rd_list(world: &World) -> String {
    let rows: Vec<Vec<String>> = world
        .linstor
        .defs
        .keys()
        .map(|name| {
            vec![
                name.clone(),
                "DfltRscGrp".into(),
                "DRBD,STORAGE".into(),
                "ok".into(),
            ]
        })
        .collect();
    table(
        &[
            Col("ResourceName", false),
            Col("ResourceGroup", false),
            Col("Layers", false),
            Col("State", false),
        ],
        &rows,
    )
}

fn api_error(desc: &str) -> Output {
    Output {
        stdout: format!("ERROR:\nDescription:\n    {desc}\n").into_bytes(),
        stderr: Vec::new(),
        code: 10,
    }
}

/// The `linstor` command.
pub fn linstor(world: &mut World, node: &str, args: &[&str]) -> Output {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !matches!(*a, "--no-color" | "--no-utf8" | "-m" | "--machine-readable"))
        .collect();
    let reachable = world.linstor.controller_host.as_ref().is_some_and(|h| {
        world
            .nodes
            .get(h)
            .is_some_and(|n| n.unit_active("linstor-controller"))
    });
    let _ = node;
    let Some((obj, rest)) = args.split_first() else {
        return Output::err(
            2,
            "usage: linstor [-h] [--version] ...\nlinstor: error: the following arguments are required: command\n",
        );
    };
    if !reachable && *obj != "--version" {
        return Output::err(
            20,
            "Error: Unable to connect to linstor://localhost:3370: [Errno 111] Connection refused\n",
        );
    }
    let sub = rest.first().copied().unwrap_or("");
    let params = rest.get(1..).unwrap_or(&[]);
    match (*obj, sub) {
        ("node" | "n", "list" | "l") => Output::ok(node_list(world)),
        ("storage-pool" | "sp", "list" | "l") => Output::ok(sp_list(world)),
        ("resource" | "r", "list" | "l") => Output::ok(r_list(world)),
        ("volume" | "v", "list" | "l") => Output::ok(v_list(world)),
        ("resource-definition" | "rd", "list" | "l") => Output::ok(rd_list(world)),
        ("controller", "version") => Output::ok(format!(
            "linstor controller {}; GIT-hash: {}\n",
            world.linstor.version, "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
        )),
        ("node" | "n", "create" | "c") => node_create(world, params),
        ("node" | "n", "delete" | "d") => node_delete(world, params),
        ("storage-pool" | "sp", "create" | "c") => sp_create(world, params),
        ("resource" | "r", "create" | "c") => r_create(world, params),
        ("resource" | "r", "delete" | "d") => r_delete(world, params),
        _ => Output::err(
            2,
            format!("usage: linstor [-h] ...\nlinstor: error: invalid choice: '{obj} {sub}'\n"),
        ),
    }
}

fn node_create(world: &mut World, p: &[&str]) -> Output {
    let pos: Vec<&str> = strip_opts(p, &["--node-type", "--communication-type"]);
    let node_type = opt(p, "--node-type").unwrap_or("satellite").to_uppercase();
    let [name, ip] = pos.as_slice() else {
        return Output::err(
            2,
            "usage: linstor node create [-h] node_name ip\nlinstor node create: error: the following arguments are required: ip\n",
        );
    };
    if world.linstor.nodes.contains_key(*name) {
        return api_error(&format!("Node '{name}' already exists."));
    }
    let uuid = world.rng().uuid();
    world.linstor.nodes.insert(
        name.to_string(),
        LNode {
            node_type,
            address: ip.to_string(),
            port: 3366,
            encryption: "PLAIN".into(),
            uuid: uuid.clone(),
        },
    );
    Output::ok(format!(
        "SUCCESS:\nDescription:\n    New node '{name}' registered.\nDetails:\n    Node '{name}' UUID is: {uuid}\n"
    ))
}

fn node_delete(world: &mut World, p: &[&str]) -> Output {
    let Some(name) = p.first() else {
        return Output::err(
            2,
            "linstor node delete: error: the following arguments are required: node_name\n",
        );
    };
    let Some(n) = world.linstor.nodes.remove(*name) else {
        return api_error(&format!("Node '{name}' not found."));
    };
    world.linstor.pools.remove(*name);
    for m in world.linstor.resources.values_mut() {
        m.remove(*name);
    }
    Output::ok(format!(
        "SUCCESS:\nDescription:\n    Node '{name}' deleted.\nDetails:\n    Node '{name}' UUID was: {}\n",
        n.uuid
    ))
}

fn sp_create(world: &mut World, p: &[&str]) -> Output {
    let [driver, node, pool, vg] = p else {
        return Output::err(
            2,
            "usage: linstor storage-pool create lvmthin [-h] node_name name driver_pool_name\n",
        );
    };
    if *driver != "lvmthin" {
        return Output::err(
            2,
            format!("linstor storage-pool create: error: argument driver: invalid choice: '{driver}'\n"),
        );
    }
    if !world.linstor.nodes.contains_key(*node) {
        return api_error(&format!("Node '{node}' not found."));
    }
    if world
        .linstor
        .pools
        .get(*node)
        .is_some_and(|m| m.contains_key(*pool))
    {
        return api_error(&format!("Storage pool '{pool}' on node '{node}' already exists."));
    }
    let uuid = world.rng().uuid();
    let total = 100 * 1024 * 1024;
    world.linstor.pools.entry(node.to_string()).or_default().insert(
        pool.to_string(),
        LPool {
            driver: "LVM_THIN".into(),
            pool_name: vg.to_string(),
            total_kib: total,
            free_kib: total,
        },
    );
    Output::ok(format!(
        "SUCCESS:\n    Successfully set property key(s): StorDriver/StorPoolName\nSUCCESS:\nDescription:\n    New storage pool '{pool}' on node '{node}' registered.\nDetails:\n    Storage pool '{pool}' on node '{node}' UUID is: {uuid}\nSUCCESS:\n    ({node}) Changes applied to storage pool '{pool}'\n"
    ))
}

fn r_create(world: &mut World, p: &[&str]) -> Output {
    let pos = strip_opts(p, &["--storage-pool", "-s"]);
    let pool = opt(p, "--storage-pool")
        .or_else(|| opt(p, "-s"))
        .unwrap_or("DfltDisklessStorPool")
        .to_string();
    let [node, res] = pos.as_slice() else {
        return Output::err(
            2,
            "usage: linstor resource create [-h] node_name resource_definition_name\n",
        );
    };
    if !world.linstor.nodes.contains_key(*node) {
        return api_error(&format!("Node '{node}' not found."));
    }
    if pool != "DfltDisklessStorPool"
        && !world
            .linstor
            .pools
            .get(*node)
            .is_some_and(|m| m.contains_key(&pool))
    {
        return api_error(&format!("Storage pool '{pool}' on node '{node}' not found."));
    }
    if !world.linstor.defs.contains_key(*res) {
        let n = world.linstor.defs.len() as u32;
        world.linstor.defs.insert(
            res.to_string(),
            LResDef {
                port: 7000 + n as u16,
                minor: 1000 + n,
                size_kib: 1024 * 1024,
            },
        );
    }
    if world
        .linstor
        .resources
        .get(*res)
        .is_some_and(|m| m.contains_key(*node))
    {
        return api_error(&format!(
            "A resource with the name '{res}' already exists on node '{node}'."
        ));
    }
    let used: Vec<u32> = world
        .linstor
        .resources
        .get(*res)
        .map(|m| m.values().map(|r| r.node_id).collect())
        .unwrap_or_default();
    let node_id = (0..).find(|i| !used.contains(i)).unwrap_or(0);
    let size = world.linstor.defs.get(*res).map_or(0, |d| d.size_kib);
    let alloc = if pool == "DfltDisklessStorPool" {
        0
    } else {
        size + 264
    };
    if let Some(pl) = world.linstor.pools.get_mut(*node).and_then(|m| m.get_mut(&pool)) {
        pl.free_kib = pl.free_kib.saturating_sub(alloc);
    }
    let existing: Vec<String> = world
        .linstor
        .resources
        .get(*res)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let clock = world.clock;
    let diskless = pool == "DfltDisklessStorPool";
    world
        .linstor
        .resources
        .entry(res.to_string())
        .or_default()
        .insert(
            node.to_string(),
            LRes {
                storage_pool: pool,
                node_id,
                created_at: clock,
                allocated_kib: alloc,
            },
        );
    let pairs = world.pairs.entry(res.to_string()).or_default();
    for other in existing {
        pairs
            .entry(super::pair_key(node, &other))
            .or_insert_with(|| Pair {
                diverged: true,
                ..Pair::default()
            });
    }
    // The node's satellite applies the new resource at once (LINSTOR's "ready"): the DRBD device
    // comes up without data (Inconsistent) and connects; the handshake starts its sync.
    let satellite_active = world
        .nodes
        .get(*node)
        .is_some_and(|n| n.units.get("linstor-satellite").is_some_and(|u| u.active));
    if satellite_active && super::drbd::up(world, node, res, false).code == 0 {
        if let Some(l) = world.nodes.get_mut(*node).and_then(|n| n.drbd.get_mut(*res))
            && !diskless
        {
            l.disk = super::model::DiskState::Inconsistent;
        }
        super::drbd::handshake_all(world);
    }
    let uuid = world.rng().uuid();
    Output::ok(format!(
        "SUCCESS:\nDescription:\n    New resource '{res}' on node '{node}' registered.\nDetails:\n    Resource '{res}' on node '{node}' UUID is: {uuid}\nSUCCESS:\n    Created resource '{res}' on '{node}'\nSUCCESS:\nDescription:\n    Resource '{res}' on '{node}' ready\nDetails:\n    Node(s): '{node}', Resource: '{res}'\n"
    ))
}

fn r_delete(world: &mut World, p: &[&str]) -> Output {
    let [node, res] = p else {
        return Output::err(
            2,
            "usage: linstor resource delete [-h] node_name [node_name ...] name\n",
        );
    };
    let Some(r) = world
        .linstor
        .resources
        .get_mut(*res)
        .and_then(|m| m.remove(*node))
    else {
        return api_error(&format!("Node: {node}, Resource: {res} not found."));
    };
    if let Some(pl) = world
        .linstor
        .pools
        .get_mut(*node)
        .and_then(|m| m.get_mut(&r.storage_pool))
    {
        pl.free_kib += r.allocated_kib;
    }
    if let Some(pairs) = world.pairs.get_mut(*res) {
        pairs.retain(|k, _| !k.split(' ').any(|x| x == *node));
    }
    if let Some(n) = world.nodes.get_mut(*node) {
        n.drbd.remove(*res);
    }
    let uuid = world.rng().uuid();
    Output::ok(format!(
        "SUCCESS:\nDescription:\n    Node: {node}, Resource: {res} preparing for deletion.\nDetails:\n    Node: {node}, Resource: {res} UUID is: {uuid}\nSUCCESS:\n    Preparing deletion of resource on '{node}'\nSUCCESS:\nDescription:\n    Node: {node}, Resource: {res} deletion complete.\nDetails:\n    Node: {node}, Resource: {res} UUID was: {uuid}\n"
    ))
}

fn opt<'a>(p: &[&'a str], name: &str) -> Option<&'a str> {
    p.iter()
        .position(|a| *a == name)
        .and_then(|i| p.get(i + 1).copied())
}

fn strip_opts<'a>(p: &[&'a str], with_value: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        if with_value.contains(&p[i]) {
            i += 2;
            continue;
        }
        if !p[i].starts_with('-') {
            out.push(p[i]);
        }
        i += 1;
    }
    out
}
