//! Faults a scenario injects: cable pulls and flaps, failed disks, DRBD network cuts and split
//! brain, reboots, failing package installs, slow resync (by speed or by duration). Each is
//! deterministic.

use serde::{Deserialize, Serialize};

use super::model::*;
use super::{Error, World, drbd, net, pair_key};

/// One injectable fault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Fault {
    /// The NIC loses carrier (cable pulled, switch port down).
    LinkDown {
        /// Node.
        node: String,
        /// NIC.
        nic: String,
    },
    /// The NIC regains carrier.
    LinkUp {
        /// Node.
        node: String,
        /// NIC.
        nic: String,
    },
    /// The NIC loses and regains carrier `flaps` times, ending up.
    LinkFlap {
        /// Node.
        node: String,
        /// NIC.
        nic: String,
        /// Number of down/up cycles.
        flaps: u32,
    },
    /// The backing disk of `resource` on `node` fails; DRBD detaches it (Diskless).
    DiskFailure {
        /// Node.
        node: String,
        /// Resource.
        resource: String,
    },
    /// The replication network between two nodes is cut for every resource they share.
    DrbdDisconnect {
        /// One node.
        a: String,
        /// The other.
        b: String,
    },
    /// The cut between two nodes heals.
    DrbdReconnect {
        /// One node.
        a: String,
        /// The other.
        b: String,
    },
    /// Both sides write while apart: the next handshake detects split brain and both sides go
    /// StandAlone. Cuts the pair if it is connected; heal it with `DrbdReconnect`.
    SplitBrain {
        /// Resource.
        resource: String,
        /// One node.
        a: String,
        /// The other.
        b: String,
    },
    /// The node reboots.
    Reboot {
        /// Node.
        node: String,
    },
    /// The node loses power: every service stops and its DRBD resources vanish from its peers'
    /// view. Pair it with the scenario's `lose` (its script stops too); `Reboot` powers it on.
    PowerOff {
        /// Node.
        node: String,
    },
    /// The next `apt-get install` of `package` fails in its post-installation script.
    FailedPackageInstall {
        /// Node.
        node: String,
        /// Package.
        package: String,
    },
    /// Every `apt-get install` of `package` fails in its post-installation script, whatever the
    /// version: a DKMS package that cannot build its module for the running kernel (missing
    /// headers), so reinstalling the previous version fails too.
    BrokenPackageBuild {
        /// Node.
        node: String,
        /// Package.
        package: String,
    },
    /// The node reboots in the middle of the next `apt-get install` of `package`: dpkg has
    /// unpacked the new version but not configured it (`half-configured`), the command dies with
    /// the node (exit 143, as a process killed by the shutdown), and the node boots again as the
    /// `Reboot` fault boots it.
    RebootDuringInstall {
        /// Node.
        node: String,
        /// Package.
        package: String,
    },
    /// The node's wall clock is set `seconds` away from the simulated time (negative: behind),
    /// from now on: `date` there, and every timestamp its script writes, are off by that much.
    ClockSkew {
        /// Node.
        node: String,
        /// Offset in seconds.
        seconds: i64,
    },
    /// Resync of `resource` advances by `permille` of the total per simulated second.
    SlowResync {
        /// Resource.
        resource: String,
        /// Per-mille per second (1 = 0.1 %/s).
        permille: u64,
    },
    /// Every resync of `resource` from now on (and one running now) takes `seconds` simulated
    /// seconds in all, however much is out of sync: a resync slower than a deadline, to the
    /// second (`SlowResync` at its slowest still ends within 1000 s).
    ResyncTakes {
        /// Resource.
        resource: String,
        /// Seconds from the handshake (or from now, for a running resync) to UpToDate.
        seconds: u64,
    },
}

fn set_cable(world: &mut World, node: &str, nic: &str, up: bool) -> Result<(), Error> {
    let n = world.node_mut(node)?;
    match n.link_mut(nic).map(|l| &mut l.kind) {
        Some(LinkKind::Ether(x)) => x.cable = up,
        _ => {
            return Err(Error::UnknownInterface {
                node: node.to_string(),
                iface: nic.to_string(),
            });
        }
    }
    net::reconcile(n);
    Ok(())
}

fn shared_resources(world: &World, a: &str, b: &str) -> Vec<String> {
    world
        .linstor
        .resources
        .iter()
        .filter(|(_, m)| m.contains_key(a) && m.contains_key(b))
        .map(|(r, _)| r.clone())
        .collect()
}

/// Applies `fault`.
pub fn inject(world: &mut World, fault: Fault) -> Result<(), Error> {
    match fault {
        Fault::LinkDown { node, nic } => set_cable(world, &node, &nic, false)?,
        Fault::ClockSkew { node, seconds } => world.node_mut(&node)?.clock_offset = seconds,
        Fault::LinkUp { node, nic } => set_cable(world, &node, &nic, true)?,
        Fault::LinkFlap { node, nic, flaps } => {
            for _ in 0..flaps {
                set_cable(world, &node, &nic, false)?;
                set_cable(world, &node, &nic, true)?;
            }
        }
        Fault::DiskFailure { node, resource } => {
            let placed = world
                .linstor
                .resources
                .get(&resource)
                .is_some_and(|m| m.contains_key(&node));
            if !placed {
                return Err(Error::UnknownResource { node, resource });
            }
            let n = world.node_mut(&node)?;
            n.failed_disks.insert(resource.clone());
            if let Some(l) = n.drbd.get_mut(&resource) {
                l.disk = DiskState::Diskless;
                l.client = false;
            }
        }
        Fault::DrbdDisconnect { a, b } => {
            world.node(&a)?;
            world.node(&b)?;
            for r in shared_resources(world, &a, &b) {
                if let Some(p) = world.pairs.get_mut(&r).and_then(|m| m.get_mut(&pair_key(&a, &b))) {
                    p.cut = true;
                }
            }
        }
        Fault::DrbdReconnect { a, b } => {
            for r in shared_resources(world, &a, &b) {
                if let Some(p) = world.pairs.get_mut(&r).and_then(|m| m.get_mut(&pair_key(&a, &b))) {
                    p.cut = false;
                }
            }
        }
        Fault::SplitBrain { resource, a, b } => {
            let Some(p) = world
                .pairs
                .get_mut(&resource)
                .and_then(|m| m.get_mut(&pair_key(&a, &b)))
            else {
                return Err(Error::UnknownResource {
                    node: format!("{a}+{b}"),
                    resource,
                });
            };
            p.cut = true;
            p.split_brain_pending = true;
            drbd::handshake_all(world);
            // Both sides were Primary at some point while apart, which is what makes it split.
            for n in [&a, &b] {
                if let Some(l) = world.nodes.get_mut(n).and_then(|x| x.drbd.get_mut(&resource)) {
                    l.stats.written += 4096;
                }
            }
        }
        Fault::Reboot { node } => reboot(world, &node)?,
        Fault::PowerOff { node } => {
            let n = world.node_mut(&node)?;
            n.drbd.clear();
            n.modules.clear();
            for u in n.units.values_mut() {
                u.active = false;
            }
            drbd::handshake_all(world);
        }
        Fault::FailedPackageInstall { node, package } => {
            world.node_mut(&node)?.failing_install = Some(package);
        }
        Fault::BrokenPackageBuild { node, package } => {
            world.node_mut(&node)?.broken_installs.insert(package);
        }
        Fault::RebootDuringInstall { node, package } => {
            world.node_mut(&node)?.reboot_during_install = Some(package);
        }
        Fault::ResyncTakes { resource, seconds } => resync_takes(world, resource, seconds)?,
        Fault::SlowResync { resource, permille } => {
            world.slow_resync.insert(resource.clone(), permille.max(1));
            if let Some(pairs) = world.pairs.get_mut(&resource) {
                for p in pairs.values_mut() {
                    if let Some(rs) = &mut p.resync {
                        rs.rate_kib = (rs.total_kib * permille.max(1) / 1000).max(1);
                    }
                }
            }
        }
    }
    drbd::handshake_all(world);
    Ok(())
}

fn resync_takes(world: &mut World, resource: String, seconds: u64) -> Result<(), Error> {
    if !world.linstor.defs.contains_key(&resource) {
        return Err(Error::Invalid(format!(
            "ResyncTakes: no resource named {resource:?}"
        )));
    }
    let seconds = seconds.max(1);
    world.resync_seconds.insert(resource.clone(), seconds);
    if let Some(pairs) = world.pairs.get_mut(&resource) {
        for p in pairs.values_mut() {
            if let Some(rs) = &mut p.resync {
                rs.seconds_left = Some(seconds);
            }
        }
    }
    Ok(())
}

pub(crate) fn reboot(world: &mut World, node: &str) -> Result<(), Error> {
    let boot_id = world.rng().uuid();
    let clock = world.clock;
    let n = world.node_mut(node)?;
    n.boot_id = boot_id;
    n.booted_at = clock;
    n.drbd.clear();
    n.modules.clear();
    for m in n.boot_modules.clone() {
        super::sys::load_module(n, &m);
    }
    // Bonds and VLANs are runtime objects: gone unless something re-creates them.
    n.links
        .retain(|l| matches!(l.kind, LinkKind::Loopback | LinkKind::Ether(_)));
    for l in &mut n.links {
        l.master = None;
        if let LinkKind::Ether(nic) = &l.kind {
            l.mac = nic.perm_mac.clone();
            l.admin_up = false;
            l.addrs.clear();
        }
    }
    for u in n.units.values_mut() {
        u.active = u.enabled;
    }
    Ok(())
}
