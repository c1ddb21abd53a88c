//! The state of the simulated edge world: nodes with their links, bonds, modules, DRBD devices,
//! services and packages, plus the LINSTOR controller's view. Pure data; behaviour lives in the
//! tool modules.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One IPv4 address on an interface.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Addr {
    /// The address.
    pub ip: [u8; 4],
    /// The prefix length.
    pub prefix: u8,
}

impl Addr {
    /// Parses `a.b.c.d/len`.
    pub fn parse_cidr(s: &str) -> Option<Self> {
        let (ip, prefix) = s.split_once('/').unwrap_or((s, "32"));
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        let mut octets = [0u8; 4];
        let mut parts = ip.split('.');
        for o in &mut octets {
            *o = parts.next()?.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(Self { ip: octets, prefix })
    }

    /// The dotted-quad address.
    pub fn ip_str(&self) -> String {
        let [a, b, c, d] = self.ip;
        format!("{a}.{b}.{c}.{d}")
    }

    /// The broadcast address of the prefix, as the kernel derives it for `ip addr add`
    /// without `brd` only when asked; iproute2 prints it because `ip addr add` in current
    /// versions sets it for prefixes shorter than /31.
    pub fn broadcast(&self) -> Option<String> {
        if self.prefix >= 31 {
            return None;
        }
        let v = u32::from_be_bytes(self.ip) | (u32::MAX >> self.prefix);
        let [a, b, c, d] = v.to_be_bytes();
        Some(format!("{a}.{b}.{c}.{d}"))
    }

    /// Whether the address is in 127.0.0.0/8.
    pub fn is_loopback(&self) -> bool {
        self.ip[0] == 127
    }
}

/// Bonding modes the kernel driver knows, with their `/proc` and `ip` names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum BondMode {
    /// `balance-rr` (0).
    BalanceRr,
    /// `active-backup` (1).
    ActiveBackup,
    /// `balance-xor` (2).
    BalanceXor,
    /// `broadcast` (3).
    Broadcast,
    /// `802.3ad` (4).
    Lacp,
    /// `balance-tlb` (5).
    BalanceTlb,
    /// `balance-alb` (6).
    BalanceAlb,
}

impl BondMode {
    /// Parses the names and numbers `ip link add ... type bond mode` accepts.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "balance-rr" | "0" => Self::BalanceRr,
            "active-backup" | "1" => Self::ActiveBackup,
            "balance-xor" | "2" => Self::BalanceXor,
            "broadcast" | "3" => Self::Broadcast,
            "802.3ad" | "4" => Self::Lacp,
            "balance-tlb" | "5" => Self::BalanceTlb,
            "balance-alb" | "6" => Self::BalanceAlb,
            _ => return None,
        })
    }

    /// The short name `ip -d link` prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::BalanceRr => "balance-rr",
            Self::ActiveBackup => "active-backup",
            Self::BalanceXor => "balance-xor",
            Self::Broadcast => "broadcast",
            Self::Lacp => "802.3ad",
            Self::BalanceTlb => "balance-tlb",
            Self::BalanceAlb => "balance-alb",
        }
    }

    /// The long name `/proc/net/bonding` prints (`bond_mode_name` in the driver).
    pub fn proc_name(self) -> &'static str {
        match self {
            Self::BalanceRr => "load balancing (round-robin)",
            Self::ActiveBackup => "fault-tolerance (active-backup)",
            Self::BalanceXor => "load balancing (xor)",
            Self::Broadcast => "fault-tolerance (broadcast)",
            Self::Lacp => "IEEE 802.3ad Dynamic link aggregation",
            Self::BalanceTlb => "transmit load balancing",
            Self::BalanceAlb => "adaptive load balancing",
        }
    }

    /// Modes with a single active slave (`bond_uses_primary`).
    pub fn uses_primary(self) -> bool {
        matches!(self, Self::ActiveBackup | Self::BalanceTlb | Self::BalanceAlb)
    }

    /// Modes that print a transmit hash policy.
    pub fn uses_xmit_hash(self) -> bool {
        matches!(self, Self::BalanceXor | Self::Lacp)
    }
}

/// The driver's view of one enslaved interface.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Slave {
    /// Interface name.
    pub name: String,
    /// MII state the monitor last committed; transitions to down count a link failure.
    pub mii_up: bool,
    /// `Link Failure Count`.
    pub link_failure_count: u32,
    /// The slave's own MAC, kept while the bond rewrites its address.
    pub perm_hwaddr: String,
    /// Simulated clock when it was enslaved (802.3ad churn detection runs for 60 s).
    pub enslaved_at: u64,
}

/// A bonding master.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bond {
    /// Mode.
    pub mode: BondMode,
    /// MII polling interval in ms; 0 disables link monitoring (no failover, no counting).
    pub miimon: u32,
    /// `arp_missed_max` (kernel default 2).
    pub arp_missed_max: u32,
    /// `lacp_rate fast`.
    pub lacp_fast: bool,
    /// `xmit_hash_policy` name.
    pub xmit_hash_policy: String,
    /// Slaves in enslavement order, which is the order the driver lists them.
    pub slaves: Vec<Slave>,
    /// The currently active slave for modes that have one.
    pub active_slave: Option<String>,
    /// The switch's LACP system MAC as seen by this bond.
    pub partner_mac: String,
}

/// A physical NIC.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Nic {
    /// Burned-in MAC.
    pub perm_mac: String,
    /// Negotiated speed in Mbps.
    pub speed_mbps: u32,
    /// Whether the cable/switch port gives carrier (faults flip this).
    pub cable: bool,
    /// PCI slot number used for `parentdev`.
    pub pci_slot: u32,
}

/// What kind of interface a link is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum LinkKind {
    /// `lo`.
    Loopback,
    /// A physical Ethernet NIC.
    Ether(Nic),
    /// A bonding master.
    Bond(Bond),
    /// An 802.1Q sub-interface.
    Vlan {
        /// Parent interface name.
        parent: String,
        /// VLAN id.
        id: u16,
    },
}

/// One network interface.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// Kernel ifindex (never reused within a boot).
    pub ifindex: u32,
    /// Kind and kind-specific state.
    pub kind: LinkKind,
    /// Current MAC (a bond rewrites its slaves' addresses).
    pub mac: String,
    /// `IFF_UP`.
    pub admin_up: bool,
    /// Bond this link is enslaved to.
    pub master: Option<String>,
    /// MTU.
    pub mtu: u32,
    /// IPv4 addresses in the order they were added.
    pub addrs: Vec<Addr>,
}

/// DRBD disk states (`drbd_disk_str`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum DiskState {
    /// No backing disk.
    Diskless,
    /// Backing disk failed; DRBD detaches to Diskless right after.
    Failed,
    /// Being synced, not usable.
    Inconsistent,
    /// Consistent but known older than a peer.
    Outdated,
    /// Consistent, peer state unknown.
    Consistent,
    /// Current.
    UpToDate,
}

impl DiskState {
    /// The name DRBD prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Diskless => "Diskless",
            Self::Failed => "Failed",
            Self::Inconsistent => "Inconsistent",
            Self::Outdated => "Outdated",
            Self::Consistent => "Consistent",
            Self::UpToDate => "UpToDate",
        }
    }
}

/// DRBD resource roles.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Role {
    /// Primary (in use).
    Primary,
    /// Secondary.
    Secondary,
}

impl Role {
    /// The name DRBD prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Primary => "Primary",
            Self::Secondary => "Secondary",
        }
    }
}

/// I/O counters of one local DRBD volume, in KiB as `drbdsetup` prints them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolStats {
    /// `read:`.
    pub read: u64,
    /// `written:`.
    pub written: u64,
    /// `al-writes:`.
    pub al_writes: u64,
    /// `bm-writes:`.
    pub bm_writes: u64,
    /// `upper-pending:`.
    pub upper_pending: u64,
    /// `lower-pending:`.
    pub lower_pending: u64,
}

/// A DRBD resource as it is up on one node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DrbdLocal {
    /// Role.
    pub role: Role,
    /// Local disk state (one volume per resource in this simulation).
    pub disk: DiskState,
    /// Whether the node is an intentional diskless client.
    pub client: bool,
    /// Counters.
    pub stats: VolStats,
    /// Who holds the device open (a pod that mounted it, as `namespace/name`): DRBD refuses to
    /// demote or take down a device that is open. Released when the holder goes away.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub held_open_by: BTreeSet<String>,
}

/// Connection state between two nodes of one DRBD resource, held once per pair.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pair {
    /// Whether the pair was connected after the last state change (edges trigger handshakes).
    pub connected: bool,
    /// The network between the two nodes is cut (fault).
    pub cut: bool,
    /// The pair detected split brain at its last handshake: both sides went StandAlone.
    pub split_brain: bool,
    /// A split brain is armed: the next handshake after the cut heals ends in split brain.
    pub split_brain_pending: bool,
    /// Nodes that administratively disconnected (`drbdadm disconnect`, or split brain).
    pub standalone: BTreeSet<String>,
    /// Nodes that asked to discard their data at the next handshake.
    pub discard: BTreeSet<String>,
    /// Writes happened while apart: the next handshake resyncs.
    pub diverged: bool,
    /// A resync in progress.
    pub resync: Option<Resync>,
    /// Replication counters as seen from the lexically smaller node: KiB it sent.
    pub sent_lo: u64,
    /// KiB the lexically larger node sent.
    pub sent_hi: u64,
}

/// A running resync between two nodes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Resync {
    /// SyncSource node.
    pub source: String,
    /// SyncTarget node.
    pub target: String,
    /// KiB to sync in total.
    pub total_kib: u64,
    /// KiB still out of sync.
    pub left_kib: u64,
    /// KiB per simulated second.
    pub rate_kib: u64,
    /// Simulated seconds until it finishes, when a fault fixed its duration
    /// ([`crate::host::Fault::ResyncTakes`]); then it advances by what is left over the seconds
    /// left, whatever `rate_kib` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u64>,
}

/// A systemd unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Unit {
    /// Running.
    pub active: bool,
    /// Started at boot.
    pub enabled: bool,
}

/// One loaded kernel module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Module {
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// An installed package's dpkg status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Package {
    /// `${Version}`.
    pub version: String,
    /// `install ok installed` versus a failed configure (`half-configured`).
    pub configured: bool,
}

/// How a node's packages are managed: which package tools it has.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OsFlavour {
    /// Debian: `dpkg-query` and `apt-get` (the legacy script's only kind of host).
    #[default]
    Debian,
    /// RPM-based (Rocky/RHEL 9): `rpm` and `dnf`; `dpkg-query` and `apt-get` are not found.
    Rpm,
}

impl OsFlavour {
    /// Whether the flavour is the default one (nothing to write in a saved world).
    pub fn is_debian(&self) -> bool {
        *self == OsFlavour::Debian
    }

    /// What the flavour's `/etc/os-release` says (Debian 12, Rocky Linux 9.4).
    pub fn os_release(self) -> &'static str {
        match self {
            OsFlavour::Debian => {
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n"
            }
            OsFlavour::Rpm => {
                "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n"
            }
        }
    }
}

/// One simulated edge node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Node {
    /// Hostname and Kubernetes node name.
    pub name: String,
    /// Which package tools the node has.
    #[serde(default, skip_serializing_if = "OsFlavour::is_debian")]
    pub os: OsFlavour,
    /// `uname -r`, also the bonding driver's version string.
    pub kernel: String,
    /// Management IPv4 address LINSTOR uses for this node.
    pub address: String,
    /// Interfaces, in ifindex order.
    pub links: Vec<Link>,
    /// Next ifindex to hand out.
    pub next_ifindex: u32,
    /// Loaded modules, oldest first (`lsmod` prints newest first).
    pub modules: Vec<Module>,
    /// Modules loaded at every boot.
    pub boot_modules: Vec<String>,
    /// DRBD resources that are up on this node.
    pub drbd: BTreeMap<String, DrbdLocal>,
    /// Resources whose backing disk failed (stays failed across reboots).
    pub failed_disks: BTreeSet<String>,
    /// systemd units.
    pub units: BTreeMap<String, Unit>,
    /// Installed packages.
    pub packages: BTreeMap<String, Package>,
    /// Package whose next `apt-get install` fails in its post-installation script.
    pub failing_install: Option<String>,
    /// Packages every `apt-get install` of which fails in its post-installation script.
    pub broken_installs: BTreeSet<String>,
    /// Package whose next `apt-get install` is cut short by a reboot of the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_during_install: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// Simulated clock at boot.
    pub booted_at: u64,
    /// Idle seconds accumulated per second of uptime, in hundredths (for `/proc/uptime`).
    pub idle_centis_per_sec: u64,
    /// How far the node's wall clock is from the simulated time (seconds; negative: behind):
    /// what `date` prints there, and so every timestamp the script writes. Kubernetes' own
    /// timestamps are the cluster's, unskewed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clock_offset: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl Node {
    /// The link called `name`.
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The link called `name`, mutably.
    pub fn link_mut(&mut self, name: &str) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.name == name)
    }

    /// Whether module `name` is loaded.
    pub fn has_module(&self, name: &str) -> bool {
        self.modules.iter().any(|m| m.name == name)
    }

    /// Whether unit `name` (with or without `.service`) is active.
    pub fn unit_active(&self, name: &str) -> bool {
        let key = name.strip_suffix(".service").unwrap_or(name);
        self.units.get(key).is_some_and(|u| u.active)
    }
}

/// A LINSTOR node registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LNode {
    /// `SATELLITE`, `COMBINED` or `CONTROLLER`.
    pub node_type: String,
    /// Satellite address.
    pub address: String,
    /// Satellite port.
    pub port: u16,
    /// `PLAIN` or `SSL`.
    pub encryption: String,
    /// UUID.
    pub uuid: String,
}

/// A LINSTOR storage pool on one node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LPool {
    /// `LVM_THIN`, `LVM`, `DISKLESS`, ...
    pub driver: String,
    /// `vg/thinpool`.
    pub pool_name: String,
    /// Capacity in KiB.
    pub total_kib: u64,
    /// Free KiB.
    pub free_kib: u64,
}

/// A LINSTOR resource definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LResDef {
    /// DRBD TCP port.
    pub port: u16,
    /// DRBD minor of volume 0.
    pub minor: u32,
    /// Size of volume 0 in KiB.
    pub size_kib: u64,
}

/// A LINSTOR resource: a resource definition placed on a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LRes {
    /// Storage pool backing it (`DfltDisklessStorPool` for clients).
    pub storage_pool: String,
    /// DRBD node id.
    pub node_id: u32,
    /// Creation time (epoch seconds).
    pub created_at: u64,
    /// Allocated KiB in the pool.
    pub allocated_kib: u64,
}

/// The LINSTOR controller's database.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Linstor {
    /// Node hosting the controller; the client reaches it only while its unit is active.
    pub controller_host: Option<String>,
    /// Controller version string.
    pub version: String,
    /// Registered nodes.
    pub nodes: BTreeMap<String, LNode>,
    /// Storage pools: node name, then pool name.
    pub pools: BTreeMap<String, BTreeMap<String, LPool>>,
    /// Resource definitions.
    pub defs: BTreeMap<String, LResDef>,
    /// Resources: resource name, then node name.
    pub resources: BTreeMap<String, BTreeMap<String, LRes>>,
}
