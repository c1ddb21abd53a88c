//! What the upgrade reads from the host steps' outputs: DRBD's status (health before the upgrade,
//! quorum without the node, the resources Primary on it, the resync) through the project's
//! `drbdadm status` parser, and the `drbd-version` step's `kernel=` / `package=` lines.

use nodewright_parsers::{DrbdResource, parse_drbd_status};

/// DRBD's status on a node, read from a `drbd-status` task's output.
#[derive(Clone, Debug, PartialEq)]
pub struct Drbd {
    resources: Vec<DrbdResource>,
}

/// Parses a `drbd-status` task's output (`drbdadm status all`).
pub fn drbd(output: &str) -> Result<Drbd, String> {
    parse_drbd_status(output)
        .map(|s| Drbd {
            resources: s.resources,
        })
        .map_err(|e| format!("the drbd-status output does not parse: {e}"))
}

fn diskless(disk: &str) -> bool {
    disk == "Diskless"
}

impl Drbd {
    /// The resources whose local role is Primary.
    pub fn primaries(&self) -> Vec<String> {
        self.resources
            .iter()
            .filter(|r| r.role == "Primary")
            .map(|r| r.name.clone())
            .collect()
    }

    /// What is not healthy: a local disk neither UpToDate nor Diskless, a peer not Connected, a
    /// diskful peer not UpToDate, a resync running. Empty when every resource is UpToDate with
    /// every peer.
    pub fn unhealthy(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.resources {
            for d in &r.devices {
                if d.disk != "UpToDate" && !diskless(&d.disk) {
                    out.push(format!("{} local disk {}", r.name, d.disk));
                }
            }
            for c in &r.connections {
                let connection = c.connection.as_deref().unwrap_or("Connected");
                if connection != "Connected" {
                    out.push(format!("{} peer {} {connection}", r.name, c.name));
                    continue;
                }
                for p in &c.peer_devices {
                    let disk = p.peer_disk.as_deref().unwrap_or("UpToDate");
                    if disk != "UpToDate" && !diskless(disk) {
                        out.push(format!("{} peer {} disk {disk}", r.name, c.name));
                    }
                    if let Some(repl) = p.replication.as_deref()
                        && repl.starts_with("Sync")
                    {
                        out.push(format!("{} peer {} {repl}", r.name, c.name));
                    }
                }
            }
        }
        out
    }

    /// The resources that would lose quorum with this node's replicas gone. A resource keeps
    /// quorum when its diskful peers that are Connected and UpToDate on every volume are at least
    /// one, and at least half of its diskful replicas, this node's counted (the majority DRBD
    /// needs, with the two-node site's one surviving peer allowed). One UpToDate peer of three
    /// replicas is not enough.
    pub fn without_this_node(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.resources {
            let local = usize::from(r.devices.iter().any(|d| !diskless(&d.disk)));
            let diskful_peers: Vec<_> = r
                .connections
                .iter()
                .filter(|c| {
                    !c.peer_devices.is_empty()
                        && c.peer_devices
                            .iter()
                            .any(|p| !diskless(p.peer_disk.as_deref().unwrap_or("")))
                })
                .collect();
            let good = diskful_peers
                .iter()
                .filter(|c| {
                    c.connection.as_deref().unwrap_or("Connected") == "Connected"
                        && c.peer_devices
                            .iter()
                            .all(|p| p.peer_disk.as_deref() == Some("UpToDate"))
                })
                .count();
            let total = local + diskful_peers.len();
            if good == 0 || 2 * good < total {
                out.push(format!(
                    "{} ({good} of {total} replicas UpToDate and Connected on peers)",
                    r.name
                ));
            }
        }
        out
    }

    /// How many resources.
    pub fn resources(&self) -> usize {
        self.resources.len()
    }
}

/// The `drbd-version` step's output: the loaded module's version and the installed package's,
/// each `None` for `none`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versions {
    /// `kernel=`: the loaded DRBD module's version.
    pub kernel: Option<String>,
    /// `package=`: the installed package's version (upstream, without the revision).
    pub package: Option<String>,
}

/// Parses a `drbd-version` task's output.
pub fn versions(output: &str) -> Result<Versions, String> {
    let mut v = Versions::default();
    let mut seen = (false, false);
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("drbd-version output line {line:?} is not key=value"))?;
        let value = (value != "none" && !value.is_empty()).then(|| super::upstream(value).to_owned());
        match key {
            "kernel" => (v.kernel, seen.0) = (value, true),
            "package" => (v.package, seen.1) = (value, true),
            _ => {}
        }
    }
    if seen != (true, true) {
        return Err(format!(
            "drbd-version output lacks kernel= or package=: {:?}",
            output.chars().take(200).collect::<String>()
        ));
    }
    Ok(v)
}
