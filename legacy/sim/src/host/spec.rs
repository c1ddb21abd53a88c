//! Simple descriptions a scenario uses to build a world: which NICs, bond, VLANs, storage pool,
//! packages and services each node starts with, and which replicated resources exist.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::model::*;
use super::{Error, World, net, pair_key};

/// One physical NIC.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NicSpec {
    /// Interface name.
    pub name: String,
    /// Burned-in MAC; derived from the seed when absent.
    pub mac: Option<String>,
    /// Link speed in Mbps.
    pub speed_mbps: u32,
}

/// A bond that already exists and is up when the scenario starts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BondSpec {
    /// Bond name.
    pub name: String,
    /// Mode name as `ip` accepts it.
    pub mode: String,
    /// MII polling interval (ms).
    pub miimon: u32,
    /// Slaves in enslavement order.
    pub slaves: Vec<String>,
}

/// A VLAN sub-interface that already exists, with an optional address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VlanSpec {
    /// Parent interface.
    pub parent: String,
    /// VLAN id.
    pub id: u16,
    /// Interface name (`bond0.100`).
    pub name: String,
    /// `a.b.c.d/len`.
    pub cidr: Option<String>,
}

/// A LINSTOR storage pool registered on the node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PoolSpec {
    /// Pool name.
    pub name: String,
    /// `vg/thinpool`.
    pub vg_thin: String,
    /// Capacity in GiB.
    pub size_gib: u64,
}

/// A systemd unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnitSpec {
    /// Unit name without `.service`.
    pub name: String,
    /// Enabled at boot.
    pub enabled: bool,
    /// Running now.
    pub active: bool,
}

/// Everything needed to create one node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeSpec {
    /// Node name (hostname and Kubernetes node name).
    pub name: String,
    /// Kernel release.
    pub kernel: String,
    /// Management address.
    pub address: String,
    /// Physical NICs.
    pub nics: Vec<NicSpec>,
    /// A pre-existing bond.
    pub bond: Option<BondSpec>,
    /// Pre-existing VLANs.
    pub vlans: Vec<VlanSpec>,
    /// Pre-registered storage pool (implies the node is registered in LINSTOR).
    pub storage_pool: Option<PoolSpec>,
    /// Whether the node is registered with the LINSTOR controller.
    pub linstor_registered: bool,
    /// Installed packages and versions.
    pub packages: BTreeMap<String, String>,
    /// systemd units.
    pub units: Vec<UnitSpec>,
    /// Modules loaded at boot (before the script runs).
    pub boot_modules: Vec<String>,
    /// Which package tools the node has.
    #[serde(default)]
    pub os: OsFlavour,
}

impl NodeSpec {
    /// A typical edge node: two 10G NICs `eno1`/`eno2`, DRBD and LINSTOR packages installed,
    /// the satellite enabled and running, nothing configured yet.
    pub fn edge(name: &str, address: &str) -> Self {
        let mut packages = BTreeMap::new();
        packages.insert("drbd-dkms".to_string(), "9.2.12-1".to_string());
        packages.insert("drbd-utils".to_string(), "9.29.0-1".to_string());
        packages.insert("linstor-satellite".to_string(), "1.29.2-1".to_string());
        Self {
            name: name.to_string(),
            kernel: "6.8.0-45-generic".to_string(),
            address: address.to_string(),
            nics: vec![
                NicSpec {
                    name: "eno1".to_string(),
                    mac: None,
                    speed_mbps: 10_000,
                },
                NicSpec {
                    name: "eno2".to_string(),
                    mac: None,
                    speed_mbps: 10_000,
                },
            ],
            bond: None,
            vlans: Vec::new(),
            storage_pool: None,
            linstor_registered: false,
            packages,
            units: vec![
                UnitSpec {
                    name: "linstor-satellite".to_string(),
                    enabled: true,
                    active: true,
                },
                UnitSpec {
                    name: "drbd-reactor".to_string(),
                    enabled: false,
                    active: false,
                },
            ],
            boot_modules: Vec::new(),
            os: OsFlavour::Debian,
        }
    }

    /// The same node on an RPM-based host: `rpm` and `dnf` instead of `dpkg-query` and
    /// `apt-get`, and an EL9 kernel.
    pub fn with_os(mut self, os: OsFlavour) -> Self {
        self.os = os;
        if os == OsFlavour::Rpm {
            self.kernel = "5.14.0-427.13.1.el9_4.x86_64".to_string();
        }
        self
    }

    /// The same node with an active-backup bond over its NICs already up.
    pub fn with_bond(mut self, name: &str, mode: &str, miimon: u32) -> Self {
        self.bond = Some(BondSpec {
            name: name.to_string(),
            mode: mode.to_string(),
            miimon,
            slaves: self.nics.iter().map(|n| n.name.clone()).collect(),
        });
        self
    }

    /// The same node registered in LINSTOR with an LVM-thin pool.
    pub fn with_pool(mut self, name: &str, vg_thin: &str, size_gib: u64) -> Self {
        self.storage_pool = Some(PoolSpec {
            name: name.to_string(),
            vg_thin: vg_thin.to_string(),
            size_gib,
        });
        self.linstor_registered = true;
        self
    }

    /// The same node also hosting the LINSTOR controller unit (running).
    pub fn with_controller(mut self) -> Self {
        self.units.push(UnitSpec {
            name: "linstor-controller".to_string(),
            enabled: true,
            active: true,
        });
        self.packages
            .insert("linstor-controller".to_string(), "1.29.2-1".to_string());
        self
    }
}

impl World {
    /// Adds a node built from `spec`, booted at the current clock.
    pub fn add_node(&mut self, spec: &NodeSpec) -> Result<(), Error> {
        if self.nodes.contains_key(&spec.name) {
            return Err(Error::DuplicateNode(spec.name.clone()));
        }
        let boot_id = self.rng().uuid();
        let mut node = Node {
            name: spec.name.clone(),
            os: spec.os,
            kernel: spec.kernel.clone(),
            address: spec.address.clone(),
            links: Vec::new(),
            next_ifindex: 1,
            modules: Vec::new(),
            boot_modules: spec.boot_modules.clone(),
            drbd: BTreeMap::new(),
            failed_disks: BTreeSet::new(),
            units: spec
                .units
                .iter()
                .map(|u| {
                    (
                        u.name.clone(),
                        Unit {
                            active: u.active,
                            enabled: u.enabled,
                        },
                    )
                })
                .collect(),
            packages: spec
                .packages
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Package {
                            version: v.clone(),
                            configured: true,
                        },
                    )
                })
                .collect(),
            failing_install: None,
            clock_offset: 0,
            broken_installs: BTreeSet::new(),
            reboot_during_install: None,
            boot_id,
            booted_at: self.clock.saturating_sub(3600),
            idle_centis_per_sec: 180,
        };
        net::add_loopback(&mut node);
        for (slot, nic) in spec.nics.iter().enumerate() {
            let mac = match &nic.mac {
                Some(m) => m.clone(),
                None => self.rng().mac(),
            };
            net::add_nic(&mut node, &nic.name, &mac, nic.speed_mbps, slot as u32 + 1);
        }
        for m in &spec.boot_modules {
            super::sys::load_module(&mut node, m);
        }
        let name = spec.name.clone();
        self.nodes.insert(name.clone(), node);
        if let Some(bond) = &spec.bond {
            self.build_bond(&name, bond)?;
        }
        for vlan in &spec.vlans {
            self.build_vlan(&name, vlan)?;
        }
        if spec.linstor_registered || spec.storage_pool.is_some() {
            let uuid = self.rng().uuid();
            self.linstor.nodes.insert(
                name.clone(),
                LNode {
                    node_type: "SATELLITE".to_string(),
                    address: spec.address.clone(),
                    port: 3366,
                    encryption: "PLAIN".to_string(),
                    uuid,
                },
            );
        }
        if let Some(pool) = &spec.storage_pool {
            let total = pool.size_gib * 1024 * 1024;
            self.linstor.pools.entry(name.clone()).or_default().insert(
                pool.name.clone(),
                LPool {
                    driver: "LVM_THIN".to_string(),
                    pool_name: pool.vg_thin.clone(),
                    total_kib: total,
                    free_kib: total,
                },
            );
        }
        Ok(())
    }

    fn build_bond(&mut self, node: &str, bond: &BondSpec) -> Result<(), Error> {
        let mode = BondMode::parse(&bond.mode)
            .ok_or_else(|| Error::Invalid(format!("unknown bond mode {:?}", bond.mode)))?;
        let partner = self.rng().mac();
        let mac = self.rng().mac();
        let clock = self.clock;
        let n = self.node_mut(node)?;
        net::create_bond(n, &bond.name, mode, bond.miimon, &mac, &partner);
        for slave in &bond.slaves {
            if n.link(slave).is_none() {
                return Err(Error::UnknownInterface {
                    node: node.to_string(),
                    iface: slave.clone(),
                });
            }
            net::enslave(n, slave, &bond.name, clock)
                .map_err(|e| Error::Invalid(format!("cannot enslave {slave}: {e}")))?;
            if let Some(l) = n.link_mut(slave) {
                l.admin_up = true;
            }
        }
        if let Some(l) = n.link_mut(&bond.name) {
            l.admin_up = true;
        }
        net::reconcile(n);
        // A pre-existing bond has been up for a while: its LACP churn detection has settled.
        if let Some(LinkKind::Bond(b)) = n.link_mut(&bond.name).map(|l| &mut l.kind) {
            for s in &mut b.slaves {
                s.enslaved_at = clock.saturating_sub(3600);
            }
        }
        Ok(())
    }

    fn build_vlan(&mut self, node: &str, vlan: &VlanSpec) -> Result<(), Error> {
        let n = self.node_mut(node)?;
        if n.link(&vlan.parent).is_none() {
            return Err(Error::UnknownInterface {
                node: node.to_string(),
                iface: vlan.parent.clone(),
            });
        }
        net::create_vlan(n, &vlan.name, &vlan.parent, vlan.id);
        if let Some(l) = n.link_mut(&vlan.name) {
            l.admin_up = true;
            if let Some(cidr) = &vlan.cidr {
                let addr =
                    Addr::parse_cidr(cidr).ok_or_else(|| Error::Invalid(format!("bad CIDR {cidr:?}")))?;
                l.addrs.push(addr);
            }
        }
        Ok(())
    }

    /// Creates a replicated resource of `size_mib` on `nodes` as if it had been running for a
    /// while: LINSTOR definition and placements, DRBD up, connected and UpToDate everywhere,
    /// Primary on `primary` if given.
    pub fn add_resource(
        &mut self,
        name: &str,
        size_mib: u64,
        nodes: &[&str],
        primary: Option<&str>,
    ) -> Result<(), Error> {
        for n in nodes {
            self.node(n)?;
        }
        let minor = 1000 + self.linstor.defs.len() as u32;
        let port = 7000 + self.linstor.defs.len() as u16;
        let size_kib = size_mib * 1024;
        self.linstor.defs.insert(
            name.to_string(),
            LResDef {
                port,
                minor,
                size_kib,
            },
        );
        let created = self.clock.saturating_sub(86_400);
        for (id, n) in nodes.iter().enumerate() {
            let pool = self
                .linstor
                .pools
                .get(*n)
                .and_then(|p| p.keys().next().cloned())
                .unwrap_or_else(|| "DfltDisklessStorPool".to_string());
            let diskless = pool == "DfltDisklessStorPool";
            let allocated = if diskless { 0 } else { size_kib + 264 };
            if let Some(p) = self
                .linstor
                .pools
                .get_mut(*n)
                .and_then(|pools| pools.get_mut(&pool))
            {
                p.free_kib = p.free_kib.saturating_sub(allocated);
            }
            self.linstor
                .resources
                .entry(name.to_string())
                .or_default()
                .insert(
                    n.to_string(),
                    LRes {
                        storage_pool: pool,
                        node_id: id as u32,
                        created_at: created,
                        allocated_kib: allocated,
                    },
                );
            let node = self.node_mut(n)?;
            super::sys::load_module(node, "drbd");
            super::sys::load_module(node, "drbd_transport_tcp");
            node.drbd.insert(
                name.to_string(),
                DrbdLocal {
                    role: if primary == Some(*n) {
                        Role::Primary
                    } else {
                        Role::Secondary
                    },
                    disk: if diskless {
                        DiskState::Diskless
                    } else {
                        DiskState::UpToDate
                    },
                    client: diskless,
                    stats: VolStats::default(),
                    held_open_by: BTreeSet::new(),
                },
            );
        }
        let pairs = self.pairs.entry(name.to_string()).or_default();
        for (i, a) in nodes.iter().enumerate() {
            for b in &nodes[i + 1..] {
                pairs.insert(
                    pair_key(a, b),
                    Pair {
                        connected: true,
                        ..Pair::default()
                    },
                );
            }
        }
        Ok(())
    }
}
