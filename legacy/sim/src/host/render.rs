//! Writes each node's `/proc` and `/sys` files under `roots/<node>/`. It owns `proc/` and
//! `sys/` there and never touches the script's own `etc/` and `var/`.

use std::fs;
use std::path::Path;

use super::model::LinkKind;
use super::{World, drbd, net, sys};

/// Writes `content` to `path` unless it is there already. The world is rendered after every
/// command and most files stay the same: rewriting one in place (truncate, then write) makes
/// ext4 flush it to disk on close, which cost most of a simulated run's time.
fn write(path: &Path, content: &str) -> std::io::Result<()> {
    if fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, content)
}

fn remove_stale_dirs(dir: &Path, keep: &[String]) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name) {
            let p = entry.path();
            if p.is_dir() {
                fs::remove_dir_all(p)?
            } else {
                fs::remove_file(p)?
            }
        }
    }
    Ok(())
}

/// Renders every node.
pub fn render(world: &World, roots: &Path) -> std::io::Result<()> {
    for (name, node) in &world.nodes {
        let root = roots.join(name);
        let proc_ = root.join("proc");
        let bonding = proc_.join("net/bonding");
        let mut bonds = Vec::new();
        for link in &node.links {
            if let Some(text) = net::proc_bonding(node, link, world.clock) {
                write(&bonding.join(&link.name), &text)?;
                bonds.push(link.name.clone());
            }
        }
        fs::create_dir_all(&bonding)?;
        remove_stale_dirs(&bonding, &bonds)?;
        match drbd::proc_drbd(node) {
            Some(t) => write(&proc_.join("drbd"), &t)?,
            None => {
                let p = proc_.join("drbd");
                if p.exists() {
                    fs::remove_file(p)?;
                }
            }
        }
        write(&proc_.join("modules"), &sys::proc_modules(node))?;
        write(
            &proc_.join("sys/kernel/random/boot_id"),
            &format!("{}\n", node.boot_id),
        )?;
        let up = world.clock.saturating_sub(node.booted_at);
        let idle = up * node.idle_centis_per_sec;
        write(
            &proc_.join("uptime"),
            &format!("{up}.00 {}.{:02}\n", idle / 100, idle % 100),
        )?;
        let net_dir = root.join("sys/class/net");
        let mut names = Vec::new();
        for link in &node.links {
            let dir = net_dir.join(&link.name);
            write(
                &dir.join("operstate"),
                &format!("{}\n", net::operstate(node, link)),
            )?;
            let carrier = dir.join("carrier");
            if link.admin_up {
                let c = net::carrier(node, link) || matches!(link.kind, LinkKind::Loopback);
                write(&carrier, if c { "1\n" } else { "0\n" })?;
            } else if carrier.exists() {
                fs::remove_file(carrier)?;
            }
            names.push(link.name.clone());
        }
        fs::create_dir_all(&net_dir)?;
        remove_stale_dirs(&net_dir, &names)?;
    }
    Ok(())
}
