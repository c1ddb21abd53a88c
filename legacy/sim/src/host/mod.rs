//! The host side of the simulated edge world: N edge nodes whose host tools (`ip`, `modprobe`,
//! `drbdadm`, `drbdsetup`, `linstor`, `systemctl`, `dpkg-query` and `apt-get` (or `rpm` and `dnf`
//! on an RPM-based node), `date`, `sleep`,
//! `hostname`, and `cat` of the `/proc` files for the node agent, which reads them through
//! commands) answer in the real tools' formats, the `/proc` and `/sys` files they expose, and
//! the faults a scenario injects.
//!
//! Boundaries: this module owns only host state. It never touches the cluster (`kubectl` lives in
//! the cluster simulator) and, when rendering files, never touches a node's `etc` or `var`.

mod drbd;
mod faults;
mod linstor;
mod model;
mod net;
mod render;
mod rpm;
mod spec;
mod sys;
mod util;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use faults::Fault;
pub use model::*;
pub use spec::{BondSpec, NicSpec, NodeSpec, PoolSpec, UnitSpec, VlanSpec};
pub use util::SplitMix64;

/// What a simulated command returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Bytes written to standard output.
    pub stdout: Vec<u8>,
    /// Bytes written to standard error.
    pub stderr: Vec<u8>,
    /// Exit status.
    pub code: i32,
}

impl Output {
    /// Success with `stdout`.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            stdout: stdout.into(),
            stderr: Vec::new(),
            code: 0,
        }
    }

    /// Failure with `stderr` and exit `code`.
    pub fn err(code: i32, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: stderr.into(),
            code,
        }
    }

    /// Standard output as text (lossy), for tests and logs.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Errors from building a world or injecting a fault (command failures are [`Output`]s).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// No node has that name.
    #[error("no simulated node named {0:?}")]
    UnknownNode(String),
    /// A node by that name exists already.
    #[error("a simulated node named {0:?} exists already")]
    DuplicateNode(String),
    /// The node has no such interface.
    #[error("node {node:?} has no interface {iface:?}")]
    UnknownInterface {
        /// Node.
        node: String,
        /// Interface.
        iface: String,
    },
    /// The resource is not placed on that node (or not at all).
    #[error("resource {resource:?} is not placed on node {node:?}")]
    UnknownResource {
        /// Node.
        node: String,
        /// Resource.
        resource: String,
    },
    /// The description is inconsistent.
    #[error("invalid world description: {0}")]
    Invalid(String),
}

impl Error {
    /// A short stable label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::UnknownNode(_) => "unknown_node",
            Self::DuplicateNode(_) => "duplicate_node",
            Self::UnknownInterface { .. } => "unknown_interface",
            Self::UnknownResource { .. } => "unknown_resource",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// The whole simulated host world. Serializable so a scenario can save and restore it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct World {
    /// Simulated clock, epoch seconds (UTC).
    pub clock: u64,
    /// The seed the world was built from.
    pub seed: u64,
    rng: SplitMix64,
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// The LINSTOR controller's database.
    pub linstor: Linstor,
    /// DRBD connection state per resource, per node pair (`a b` with `a < b`).
    pub pairs: BTreeMap<String, BTreeMap<String, Pair>>,
    /// Resync speed overrides per resource: permille of the total per simulated second.
    pub slow_resync: BTreeMap<String, u64>,
    /// Resync durations per resource, in simulated seconds (overrides the speed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resync_seconds: BTreeMap<String, u64>,
    /// Versions the apt repository offers, per package.
    pub repo: BTreeMap<String, Vec<String>>,
    /// Plain files of each node that its tools read (`cat`), by node and absolute path: the
    /// node's `/etc/vx-rail/node.conf`, as the runner writes it into the node's root. Not saved
    /// with the world: the runner writes them again.
    #[serde(skip)]
    pub files: BTreeMap<String, BTreeMap<String, String>>,
}

/// `2026-01-01T00:00:00Z`, a fixed default start so runs never depend on the wall clock.
pub const DEFAULT_EPOCH: u64 = 1_767_225_600;

/// Resync speed when no slow-resync fault applies, in KiB per simulated second.
pub const FAST_RESYNC_KIB_PER_SEC: u64 = 100 * 1024;

impl World {
    /// An empty world at `epoch` whose randomness derives only from `seed`.
    pub fn new(seed: u64, epoch: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let linstor = Linstor {
            controller_host: None,
            version: "1.29.2".to_string(),
            nodes: BTreeMap::new(),
            pools: BTreeMap::new(),
            defs: BTreeMap::new(),
            resources: BTreeMap::new(),
        };
        let _ = rng.next_u64();
        let mut repo = BTreeMap::new();
        repo.insert(
            "drbd-dkms".to_string(),
            vec![
                "9.2.9-1".to_string(),
                "9.2.12-1".to_string(),
                "9.2.14-1".to_string(),
            ],
        );
        repo.insert(
            "drbd-utils".to_string(),
            vec![
                "9.27.0-1".to_string(),
                "9.29.0-1".to_string(),
                "9.31.0-1".to_string(),
            ],
        );
        repo.insert(
            "linstor-satellite".to_string(),
            vec![
                "1.27.1-1".to_string(),
                "1.29.2-1".to_string(),
                "1.31.0-1".to_string(),
            ],
        );
        repo.insert(
            "linstor-controller".to_string(),
            vec![
                "1.27.1-1".to_string(),
                "1.29.2-1".to_string(),
                "1.31.0-1".to_string(),
            ],
        );
        repo.insert(
            "drbd-reactor".to_string(),
            vec!["1.4.0-1".to_string(), "1.6.0-1".to_string()],
        );
        Self {
            clock: epoch,
            seed,
            rng,
            nodes: BTreeMap::new(),
            linstor,
            pairs: BTreeMap::new(),
            slow_resync: BTreeMap::new(),
            resync_seconds: BTreeMap::new(),
            repo,
            files: BTreeMap::new(),
        }
    }

    /// A world holding `specs`, in order, with the LINSTOR controller on the first node.
    pub fn from_specs(seed: u64, epoch: u64, specs: &[NodeSpec]) -> Result<Self, Error> {
        let mut world = Self::new(seed, epoch);
        for spec in specs {
            world.add_node(spec)?;
        }
        if let Some(first) = specs.first() {
            world.linstor.controller_host = Some(first.name.clone());
        }
        Ok(world)
    }

    /// Runs one host command on `node` and returns what it printed and its exit status.
    /// Never panics: unknown commands and flags give a usage error like the real tool.
    pub fn exec(&mut self, node: &str, argv: &[String], stdin: &[u8]) -> Output {
        let _ = stdin;
        if !self.nodes.contains_key(node) {
            return Output::err(127, format!("simulator: no node named {node}\n"));
        }
        let Some((cmd, args)) = argv.split_first() else {
            return Output::err(127, "simulator: empty command line\n");
        };
        let name = cmd.rsplit('/').next().unwrap_or(cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Each flavour has its own package tools and not the other's.
        let os = self.nodes.get(node).map(|n| n.os).unwrap_or_default();
        let foreign = match os {
            OsFlavour::Debian => matches!(name, "rpm" | "dnf"),
            OsFlavour::Rpm => matches!(name, "dpkg-query" | "apt-get"),
        };
        if foreign {
            return Output::err(127, format!("bash: {name}: command not found\n"));
        }
        match name {
            "ip" => net::ip(self, node, &args),
            "modprobe" => sys::modprobe(self, node, &args),
            "lsmod" => sys::lsmod(self, node, &args),
            "drbdadm" => drbd::drbdadm(self, node, &args),
            "drbdsetup" => drbd::drbdsetup(self, node, &args),
            "linstor" => linstor::linstor(self, node, &args),
            "systemctl" => sys::systemctl(self, node, &args),
            "dpkg-query" => sys::dpkg_query(self, node, &args),
            "apt-get" => sys::apt_get(self, node, &args),
            "rpm" => rpm::rpm(self, node, &args),
            "dnf" => rpm::dnf(self, node, &args),
            "cat" => sys::cat(self, node, &args),
            "date" => sys::date(self, node, &args),
            "sleep" => sys::sleep(self, &args),
            "hostname" => sys::hostname(self, node, &args),
            other => Output::err(127, format!("bash: {other}: command not found\n")),
        }
    }

    /// Writes one of `node`'s plain files (see [`World::files`]).
    pub fn write_file(&mut self, node: &str, path: &str, text: &str) {
        self.files
            .entry(node.to_owned())
            .or_default()
            .insert(path.to_owned(), text.to_owned());
    }

    /// Advances the simulated clock by `secs`, letting time-driven state (resync) progress.
    pub fn advance(&mut self, secs: u64) {
        for _ in 0..secs {
            self.clock += 1;
            drbd::tick(self);
        }
    }

    /// Applies a fault. Every fault is deterministic given the world's seed.
    pub fn inject(&mut self, fault: Fault) -> Result<(), Error> {
        faults::inject(self, fault)
    }

    /// Marks `resource`'s device on `node` as held open by `holder` (a pod, `namespace/name`):
    /// while it is, `drbdadm secondary` and `drbdadm down` of it fail there, as DRBD's do. The
    /// resource must be up on the node.
    pub fn open_device(&mut self, node: &str, resource: &str, holder: &str) -> Result<(), Error> {
        let local = self
            .node_mut(node)?
            .drbd
            .get_mut(resource)
            .ok_or_else(|| Error::UnknownResource {
                node: node.to_string(),
                resource: resource.to_string(),
            })?;
        local.held_open_by.insert(holder.to_string());
        Ok(())
    }

    /// Everyone who holds a device open, on any node.
    pub fn device_holders(&self) -> std::collections::BTreeSet<String> {
        self.nodes
            .values()
            .flat_map(|n| n.drbd.values())
            .flat_map(|l| l.held_open_by.iter().cloned())
            .collect()
    }

    /// Closes every device held by a holder `alive` says is gone (its pod was deleted or evicted,
    /// so its containers stopped and its mounts went away).
    pub fn release_devices(&mut self, alive: &dyn Fn(&str) -> bool) {
        for n in self.nodes.values_mut() {
            for l in n.drbd.values_mut() {
                l.held_open_by.retain(|h| alive(h));
            }
        }
    }

    /// Writes every node's `/proc` and `/sys` files under `roots/<node>/`.
    pub fn render(&self, roots: &std::path::Path) -> std::io::Result<()> {
        render::render(self, roots)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&Node, Error> {
        self.nodes
            .get(name)
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// The node called `name`, mutably.
    pub fn node_mut(&mut self, name: &str) -> Result<&mut Node, Error> {
        self.nodes
            .get_mut(name)
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// Deterministic randomness for the tool modules.
    pub(crate) fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }
}

/// Key of the pair map for nodes `a` and `b`, order-independent.
pub(crate) fn pair_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a} {b}")
    } else {
        format!("{b} {a}")
    }
}

#[cfg(test)]
mod tests;
