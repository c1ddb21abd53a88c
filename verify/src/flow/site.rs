//! The hosts' storage, abstracted: per node the DRBD package and module versions, the LINSTOR
//! satellite, whether its resources are up and which it holds Primary; per resource and node a
//! replica that is UpToDate, Inconsistent (attached again, waiting for its resync) or Down.
//!
//! Both workflow models act on it — the legacy script through its host commands, the node agents
//! through the NodeTask steps — and answer reads (`drbdadm status all`, the versions) from it in
//! the text the product's parsers read. Only what the upgrade's checks and the properties need is
//! kept: no data, no network, no activity log, one volume per resource.

use std::fmt;

/// The version the site runs before the upgrade.
pub const FROM: &str = "9.2.12";
/// The version the upgrade installs.
pub const TO: &str = "9.2.14";

/// A replica's disk state, as `drbdadm status` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Disk {
    /// Current data.
    UpToDate,
    /// Attached again after the node's resources were down: current only once resynced from an
    /// UpToDate peer.
    Inconsistent,
    /// The node's resources are down (or its module unloaded): no replica here.
    Down,
}

impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disk::UpToDate => "UpToDate",
            Disk::Inconsistent => "Inconsistent",
            Disk::Down => "Down",
        })
    }
}

/// One node's storage software.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Host {
    /// The installed package is the target version.
    pub package_new: bool,
    /// The loaded DRBD module: `None` unloaded, `Some(true)` the target version.
    pub kernel: Option<bool>,
    /// The LINSTOR satellite runs.
    pub satellite: bool,
    /// The node's DRBD resources are up.
    pub up: bool,
    /// Per resource: Primary here.
    pub primary: Vec<bool>,
}

/// Every node's storage and every replica.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Site {
    /// Per node, by index (`edge-1` is 0).
    pub hosts: Vec<Host>,
    /// `disks[resource][node]`.
    pub disks: Vec<Vec<Disk>>,
}

/// The name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("edge-{}", i + 1)
}

/// The index of a node name, if it names one of `n` nodes.
pub fn node_index(name: &str, n: usize) -> Option<usize> {
    let i: usize = name.strip_prefix("edge-")?.parse().ok()?;
    (1..=n).contains(&i).then(|| i - 1)
}

/// The name of resource `r`.
pub fn resource_name(r: usize) -> String {
    format!("pvc-{}", r + 1)
}

fn version(new: bool) -> &'static str {
    if new { TO } else { FROM }
}

/// What a host command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// It succeeded, with this output.
    Ok(String),
    /// It failed, for this reason (as the command would).
    Failed(String),
}

impl Site {
    /// `nodes` nodes on the old version, `resources` resources each with a replica UpToDate on
    /// every node; resource `r` is Primary on node `r % nodes`.
    pub fn new(nodes: usize, resources: usize) -> Site {
        Site {
            hosts: (0..nodes)
                .map(|n| Host {
                    package_new: false,
                    kernel: Some(false),
                    satellite: true,
                    up: true,
                    primary: (0..resources).map(|r| r % nodes == n).collect(),
                })
                .collect(),
            disks: vec![vec![Disk::UpToDate; nodes]; resources],
        }
    }

    /// The resources with no UpToDate replica anywhere.
    pub fn lost(&self) -> Vec<String> {
        self.disks
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.contains(&Disk::UpToDate))
            .map(|(r, _)| resource_name(r))
            .collect()
    }

    /// The replicas that can resync now: Inconsistent on a node whose resources are up, with an
    /// UpToDate peer that is up.
    pub fn resyncable(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (r, disks) in self.disks.iter().enumerate() {
            for (n, d) in disks.iter().enumerate() {
                let peer = disks
                    .iter()
                    .enumerate()
                    .any(|(m, pd)| m != n && *pd == Disk::UpToDate && self.hosts[m].up);
                if *d == Disk::Inconsistent && self.hosts[n].up && peer {
                    out.push((r, n));
                }
            }
        }
        out
    }

    /// DRBD resyncs replica (`r`, `n`) from an UpToDate peer.
    pub fn resync(&mut self, r: usize, n: usize) {
        self.disks[r][n] = Disk::UpToDate;
    }

    /// `drbdadm status all` on node `n`, in DRBD 9's format: nothing when its resources are down
    /// (DRBD prints only a comment then); each resource with its role and disk, and each peer
    /// Connected with its disk (a resyncing one as SyncTarget), or Connecting when the peer's
    /// resources are down.
    pub fn drbd_status(&self, n: usize) -> String {
        let h = &self.hosts[n];
        if !h.up || h.kernel.is_none() {
            return "# No currently configured DRBD found.\n".to_owned();
        }
        let mut s = String::new();
        for (r, disks) in self.disks.iter().enumerate() {
            let role = if h.primary[r] { "Primary" } else { "Secondary" };
            s.push_str(&format!(
                "{} role:{role}\n  disk:{}\n",
                resource_name(r),
                disks[n]
            ));
            for (m, d) in disks.iter().enumerate() {
                if m == n {
                    continue;
                }
                if !self.hosts[m].up {
                    s.push_str(&format!("  {} connection:Connecting\n", node_name(m)));
                    continue;
                }
                let peer_role = if self.hosts[m].primary[r] {
                    "Primary"
                } else {
                    "Secondary"
                };
                s.push_str(&format!("  {} role:{peer_role}\n", node_name(m)));
                if *d == Disk::Inconsistent || disks[n] == Disk::Inconsistent {
                    let repl = if *d == Disk::Inconsistent {
                        "SyncSource"
                    } else {
                        "SyncTarget"
                    };
                    s.push_str(&format!("    replication:{repl} peer-disk:{d}\n"));
                } else {
                    s.push_str(&format!("    peer-disk:{d}\n"));
                }
            }
        }
        s
    }

    /// The agent's `drbd-version` output on node `n`.
    pub fn versions(&self, n: usize) -> String {
        let h = &self.hosts[n];
        format!(
            "kernel={}\npackage={}-1\n",
            h.kernel.map_or("none", version),
            version(h.package_new)
        )
    }

    /// `drbdadm secondary <r>` on node `n`.
    pub fn demote(&mut self, n: usize, r: usize) {
        if let Some(p) = self.hosts[n].primary.get_mut(r) {
            *p = false;
        }
    }

    /// `drbdadm down all` on node `n`: refused while a resource is Primary here (a device in
    /// use), as DRBD refuses it.
    pub fn down(&mut self, n: usize) -> Effect {
        if self.hosts[n].primary.iter().any(|p| *p) {
            return Effect::Failed("a resource is Primary here (device in use)".into());
        }
        self.hosts[n].up = false;
        for disks in &mut self.disks {
            disks[n] = Disk::Down;
        }
        Effect::Ok(String::new())
    }

    /// `drbdadm adjust all` on node `n`: needs the module; replicas that were down come back
    /// Inconsistent and wait for their resync.
    pub fn adjust(&mut self, n: usize) -> Effect {
        if self.hosts[n].kernel.is_none() {
            return Effect::Failed("the drbd module is not loaded".into());
        }
        self.hosts[n].up = true;
        for disks in &mut self.disks {
            if disks[n] == Disk::Down {
                disks[n] = Disk::Inconsistent;
            }
        }
        Effect::Ok(String::new())
    }

    /// `modprobe -r drbd` on node `n`: refused while its resources are up.
    pub fn unload(&mut self, n: usize) -> Effect {
        if self.hosts[n].up {
            return Effect::Failed("module drbd is in use".into());
        }
        self.hosts[n].kernel = None;
        Effect::Ok(String::new())
    }

    /// `modprobe drbd` on node `n`: the installed package's module.
    pub fn load(&mut self, n: usize) {
        let h = &mut self.hosts[n];
        if h.kernel.is_none() {
            h.kernel = Some(h.package_new);
        }
    }

    /// Installs the package of `version` (upstream, or with its Debian revision) on node `n`.
    pub fn install(&mut self, n: usize, version: &str) -> Effect {
        let up = version.split('-').next().unwrap_or_default();
        match up {
            TO => self.hosts[n].package_new = true,
            FROM => self.hosts[n].package_new = false,
            other => return Effect::Failed(format!("no package version {other} in the mirror")),
        }
        Effect::Ok(String::new())
    }

    /// One node's view for a trace line: `edge-1 new-pkg mod:new sat:off down pvc-1:Down`.
    pub fn describe_node(&self, n: usize) -> String {
        let h = &self.hosts[n];
        let disks: Vec<String> = self
            .disks
            .iter()
            .enumerate()
            .map(|(r, d)| format!("{}:{}", resource_name(r), d[n]))
            .collect();
        format!(
            "{} package {}, module {}, satellite {}, resources {}, {}",
            node_name(n),
            version(h.package_new),
            h.kernel.map_or("unloaded", version),
            if h.satellite { "on" } else { "off" },
            if h.up { "up" } else { "down" },
            disks.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nodewright_parity::upgrade::quorum;

    #[test]
    fn a_healthy_site_parses_healthy_and_keeps_quorum_without_any_one_node() {
        let site = Site::new(3, 2);
        for n in 0..3 {
            let s = quorum::drbd(&site.drbd_status(n)).unwrap();
            assert!(s.unhealthy().is_empty(), "{:?}", s.unhealthy());
            assert!(s.without_this_node().is_empty());
            assert_eq!(s.resources(), 2);
        }
    }

    #[test]
    fn a_peer_down_is_unhealthy_and_loses_quorum_on_a_two_node_site() {
        let mut site = Site::new(2, 1);
        site.demote(0, 0);
        assert_eq!(site.down(0), Effect::Ok(String::new()));
        let s = quorum::drbd(&site.drbd_status(1)).unwrap();
        assert!(!s.unhealthy().is_empty());
        assert!(!s.without_this_node().is_empty());
        assert!(site.lost().is_empty());
        site.down(1);
        assert_eq!(site.lost(), ["pvc-1"]);
    }

    #[test]
    fn a_replica_comes_back_inconsistent_and_resyncs_from_an_uptodate_peer() {
        let mut site = Site::new(2, 1);
        site.hosts[1].primary[0] = false;
        site.down(1);
        assert!(matches!(site.unload(1), Effect::Ok(_)));
        assert!(matches!(site.adjust(1), Effect::Failed(_)));
        site.install(1, "9.2.14-1");
        site.load(1);
        site.adjust(1);
        assert_eq!(site.resyncable(), [(0, 1)]);
        let s = quorum::drbd(&site.drbd_status(0)).unwrap();
        assert!(!s.unhealthy().is_empty());
        site.resync(0, 1);
        let v = quorum::versions(&site.versions(1)).unwrap();
        assert_eq!((v.kernel.as_deref(), v.package.as_deref()), (Some(TO), Some(TO)));
    }
}
