//! `key=value;key=value` blobs: the `cluster`, `migration`, `upgrade` and `bond-flip.<node>`
//! keys of the cluster-state ConfigMap, `status` and `boot-recovery` of a node ConfigMap, and the
//! `vx-rail.io/last-run` and `vx-rail.io/upgrade-state` annotations.
//!
//! A blob parses in two steps: [`parse_blob`] checks the shared grammar (lower-case unique keys,
//! values without `;` or newline) and keeps every pair with its offset; a typed view then reads
//! the keys it knows, fails at the value's position when one is malformed, and keeps the keys it
//! does not know in `unknown`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Timestamp, known_enum, time::parse_rfc3339, trim_final_newline};
use crate::ParseError;

/// One `key=value` pair of a blob, borrowed from the input, with byte offsets.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct BlobPair<'a> {
    /// The key.
    pub key: &'a str,
    /// The value as written; empty means "none".
    pub value: &'a str,
    /// Byte offset of the key.
    #[serde(skip)]
    pub key_offset: usize,
    /// Byte offset of the value.
    #[serde(skip)]
    pub value_offset: usize,
}

/// A blob's pairs in the order written.
#[derive(Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Blob<'a> {
    /// The pairs, in order; keys are unique.
    pub pairs: Vec<BlobPair<'a>>,
}

impl<'a> Blob<'a> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs.iter().find(|p| p.key == key).map(|p| p.value)
    }
}

const BLOB: &str = "legacy-blob";

/// Parses the shared blob grammar: `[ key=value { ";" key=value } ]`, keys `[a-z][a-z_]*` and
/// unique, values free of `;` and newline. One trailing line ending is allowed.
pub fn parse_blob(input: &str) -> Result<Blob<'_>, ParseError> {
    parse_blob_as(BLOB, input)
}

fn parse_blob_as<'a>(format: &'static str, input: &'a str) -> Result<Blob<'a>, ParseError> {
    let body = trim_final_newline(input);
    let mut blob = Blob::default();
    if body.is_empty() {
        return Ok(blob);
    }
    let mut at = 0;
    loop {
        let rest = body.get(at..).unwrap_or("");
        let key_len = rest
            .bytes()
            .position(|c| !(c.is_ascii_lowercase() || c == b'_' || c.is_ascii_digit()))
            .unwrap_or(rest.len());
        let key = rest.get(..key_len).unwrap_or("");
        if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(ParseError::at(format, input, at, "a lower-case key"));
        }
        if blob.pairs.iter().any(|p| p.key == key) {
            return Err(ParseError::at(format, input, at, "a key not already in the blob"));
        }
        if rest.as_bytes().get(key_len) != Some(&b'=') {
            return Err(ParseError::at(format, input, at + key_len, "`=` after the key"));
        }
        let value_at = at + key_len + 1;
        let tail = body.get(value_at..).unwrap_or("");
        let value_len = tail.find([';', '\n', '\r']).unwrap_or(tail.len());
        blob.pairs.push(BlobPair {
            key,
            value: tail.get(..value_len).unwrap_or(""),
            key_offset: at,
            value_offset: value_at,
        });
        let end = value_at + value_len;
        match body.as_bytes().get(end) {
            None => return Ok(blob),
            Some(b';') => at = end + 1,
            Some(_) => return Err(ParseError::at(format, input, end, "`;` or the end of the blob")),
        }
    }
}

/// Reads the keys of a typed blob, remembering which ones were used so the rest can be kept.
struct Fields<'a> {
    format: &'static str,
    input: &'a str,
    blob: Blob<'a>,
    used: Vec<bool>,
}

impl<'a> Fields<'a> {
    fn new(format: &'static str, input: &'a str) -> Result<Self, ParseError> {
        let blob = parse_blob_as(format, input)?;
        let used = vec![false; blob.pairs.len()];
        Ok(Self {
            format,
            input,
            blob,
            used,
        })
    }

    fn opt(&mut self, key: &str) -> Option<(&'a str, usize)> {
        let i = self.blob.pairs.iter().position(|p| p.key == key)?;
        if let Some(u) = self.used.get_mut(i) {
            *u = true;
        }
        self.blob.pairs.get(i).map(|p| (p.value, p.value_offset))
    }

    fn req(&mut self, key: &'static str) -> Result<(&'a str, usize), ParseError> {
        self.opt(key).ok_or_else(|| {
            ParseError::at(
                self.format,
                self.input,
                trim_final_newline(self.input).len(),
                format!("a `{key}=` field"),
            )
        })
    }

    fn error(&self, offset: usize, expected: &'static str) -> ParseError {
        ParseError::at(self.format, self.input, offset, expected)
    }

    fn number<T: std::str::FromStr>(&self, (v, at): (&str, usize)) -> Result<T, ParseError> {
        if !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(self.error(at, "an unsigned number"));
        }
        v.parse().map_err(|_| self.error(at, "an unsigned number"))
    }

    fn req_number<T: std::str::FromStr>(&mut self, key: &'static str) -> Result<T, ParseError> {
        let f = self.req(key)?;
        self.number(f)
    }

    /// An optional number; an empty value counts as absent, as the script writes `key=` for none.
    fn opt_number<T: std::str::FromStr>(&mut self, key: &'static str) -> Result<Option<T>, ParseError> {
        match self.opt(key) {
            None | Some(("", _)) => Ok(None),
            Some(f) => self.number(f).map(Some),
        }
    }

    fn opt_string(&mut self, key: &str) -> Option<String> {
        self.opt(key)
            .map(|(v, _)| v)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn list(&mut self, key: &str) -> Vec<String> {
        self.opt(key).map(|(v, _)| split_list(v)).unwrap_or_default()
    }

    fn unknown(self) -> BTreeMap<String, String> {
        self.blob
            .pairs
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(p, _)| (p.key.to_owned(), p.value.to_owned()))
            .collect()
    }
}

/// A comma list inside a value; empty means none.
fn split_list(v: &str) -> Vec<String> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(str::to_owned).collect()
}

known_enum! {
    /// `topology` of the `cluster` blob.
    Topology { Single = "single", Multi = "multi" }
}

known_enum! {
    /// A member's role (member list, `status`, the `vx-rail.io/role` label); `none` only in `status`.
    NodeRole { Primary = "primary", Member = "member", Joining = "joining", None = "none" }
}

known_enum! {
    /// The 21 states of the storage upgrade (`UpgradeState`).
    UpgradeState {
        Pending = "PENDING", Preflight = "PREFLIGHT", QuorumCheck = "QUORUM_CHECK",
        BackupConfig = "BACKUP_CONFIG", CordonAndTaint = "CORDON_AND_TAINT",
        DemotePrimaries = "DEMOTE_PRIMARIES", StopSatellite = "STOP_SATELLITE",
        DownResources = "DOWN_RESOURCES", UnloadModules = "UNLOAD_MODULES",
        InstallPackages = "INSTALL_PACKAGES", LoadModules = "LOAD_MODULES",
        StartSatellite = "START_SATELLITE", UpResources = "UP_RESOURCES", WaitResync = "WAIT_RESYNC",
        VerifyVersion = "VERIFY_VERSION", RemoveTaint = "REMOVE_TAINT", Uncordon = "UNCORDON",
        Completed = "COMPLETED", RollingBack = "ROLLING_BACK", RolledBack = "ROLLED_BACK",
        Failed = "FAILED",
    }
}

impl UpgradeState {
    /// `COMPLETED`, `ROLLED_BACK` or `FAILED`: the upgrade is over.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::RolledBack | Self::Failed)
    }
}

known_enum! {
    /// The phases of the single-to-multi-node migration (`MigrationPhase`).
    MigrationPhase {
        Pending = "PENDING", Preflight = "PREFLIGHT", PreparingNetwork = "PREPARING_NETWORK",
        JoiningNodes = "JOINING_NODES", RegisteringSatellites = "REGISTERING_SATELLITES",
        CreatingStoragePools = "CREATING_STORAGE_POOLS", PlacingReplicas = "PLACING_REPLICAS",
        WaitingForResync = "WAITING_FOR_RESYNC", Finalizing = "FINALIZING", Completed = "COMPLETED",
        RollingBack = "ROLLING_BACK", RolledBack = "ROLLED_BACK", Failed = "FAILED",
    }
}

impl MigrationPhase {
    /// `COMPLETED`, `ROLLED_BACK` or `FAILED`: the migration is over and is never restarted.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::RolledBack | Self::Failed)
    }
}

known_enum! {
    /// The boot-recovery phases (`BootRecoveryPhase` without `Idle`).
    BootRecoveryPhase {
        AssemblingNetwork = "ASSEMBLING_NETWORK", LoadingModules = "LOADING_MODULES",
        StartingResources = "STARTING_RESOURCES", WaitingForResync = "WAITING_FOR_RESYNC",
        RemovingTaints = "REMOVING_TAINTS", Completed = "COMPLETED", Failed = "FAILED",
    }
}

known_enum! {
    /// `state` of the `status` blob (the `vx-rail.io/state` annotation without `error`).
    NodeState {
        Ready = "ready", Degraded = "degraded", Recovering = "recovering",
        Upgrading = "upgrading", Joining = "joining",
    }
}

known_enum! {
    /// `net` of the `status` blob.
    NetHealth { Ok = "ok", Degraded = "degraded" }
}

known_enum! {
    /// `drbd` of the `status` blob: whether `drbdadm status all` succeeded.
    DrbdHealth {
        Ok = "ok",
        /// `unknown`: the status could not be read.
        Unreadable = "unknown",
    }
}

known_enum! {
    /// A bond slave's MII status in the `status` blob.
    MiiState {
        Up = "up",
        Down = "down",
        /// `unknown`: the driver did not say.
        Indeterminate = "unknown",
    }
}

known_enum! {
    /// The reason (value) of the `vx-rail.io/storage-not-ready` taint.
    StorageTaintReason {
        BootRecovery = "boot-recovery", SatelliteDown = "satellite-down",
        DrbdUnknown = "drbd-unknown", Resync = "resync", NotUptodate = "not-uptodate",
    }
}

known_enum! {
    /// `action` of a `bond-flip.<node>` request.
    BondFlipAction { Mode = "mode", Active = "active" }
}

known_enum! {
    /// `state` of a `bond-flip.<node>` request.
    BondFlipState { Requested = "requested", Applied = "applied", Failed = "failed" }
}

known_enum! {
    /// `outcome` of the `vx-rail.io/last-run` annotation.
    Outcome { Ok = "ok", Error = "error" }
}

/// The `cluster` key of `vx-rail-cluster-state`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ClusterBlob {
    /// The node that created the site and runs the LINSTOR controller.
    pub primary: String,
    /// `single` or `multi`.
    pub topology: Topology,
    /// DRBD replicas per resource.
    pub replicas: u32,
    /// The first node's `STORAGE_POOL`.
    pub storage_pool: String,
    /// Epoch the site was initialised.
    pub created: u64,
    /// Always 4 for script 4.x.
    pub schema: u32,
    /// Keys the contract does not list.
    pub unknown: BTreeMap<String, String>,
}

/// Parses the `cluster` blob.
pub fn parse_cluster_blob(input: &str) -> Result<ClusterBlob, ParseError> {
    let mut f = Fields::new("legacy-cluster", input)?;
    Ok(ClusterBlob {
        primary: f.req("primary")?.0.to_owned(),
        topology: Topology::from_text(f.req("topology")?.0),
        replicas: f.req_number("replicas")?,
        storage_pool: f.req("storage_pool")?.0.to_owned(),
        created: f.req_number("created")?,
        schema: f.req_number("schema")?,
        unknown: f.unknown(),
    })
}

/// The `migration` key of `vx-rail-cluster-state`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Migration {
    /// The current phase.
    pub phase: MigrationPhase,
    /// The primary the site ran on.
    pub source: Option<String>,
    /// The nodes being migrated in.
    pub joining: Vec<String>,
    /// The replica count wanted after the migration.
    pub replicas: Option<u32>,
    /// Epoch the phase was entered.
    pub since: Option<u64>,
    /// Epoch the migration left `PENDING`.
    pub started: Option<u64>,
    /// The phase that failed.
    pub failed_phase: Option<MigrationPhase>,
    /// Epoch it ended.
    pub finished: Option<u64>,
    /// Why it is rolling back, rolled back or failed.
    pub msg: Option<String>,
    /// `requested` when a person or tool asks for a rollback.
    pub rollback: Option<String>,
    /// Keys the contract does not list.
    pub unknown: BTreeMap<String, String>,
}

/// Parses the `migration` blob.
pub fn parse_migration(input: &str) -> Result<Migration, ParseError> {
    let mut f = Fields::new("legacy-migration", input)?;
    Ok(Migration {
        phase: MigrationPhase::from_text(f.req("phase")?.0),
        source: f.opt_string("source"),
        joining: f.list("joining"),
        replicas: f.opt_number("replicas")?,
        since: f.opt_number("since")?,
        started: f.opt_number("started")?,
        failed_phase: f
            .opt_string("failed_phase")
            .map(|p| MigrationPhase::from_text(&p)),
        finished: f.opt_number("finished")?,
        msg: f.opt_string("msg"),
        rollback: f.opt_string("rollback"),
        unknown: f.unknown(),
    })
}

/// The `upgrade` key of `vx-rail-cluster-state`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Upgrade {
    /// The current state.
    pub state: UpgradeState,
    /// The DRBD version being left.
    pub from: Option<String>,
    /// The DRBD version being installed.
    pub to: Option<String>,
    /// The nodes in upgrade order.
    pub order: Vec<String>,
    /// The node the per-node state applies to; none at `PENDING` and `COMPLETED`.
    pub node: Option<String>,
    /// Nodes that finished.
    pub done: Vec<String>,
    /// Nodes that finished their rollback.
    pub rolled: Vec<String>,
    /// The node that started the upgrade.
    pub by: Option<String>,
    /// Epoch the upgrade started.
    pub started: Option<u64>,
    /// Epoch the state was entered.
    pub since: Option<u64>,
    /// Where it failed: the state.
    pub failed_state: Option<UpgradeState>,
    /// Where it failed: the node.
    pub failed_node: Option<String>,
    /// Epoch it ended.
    pub finished: Option<u64>,
    /// `<STATE>: <reason>` or `rollback failed on <node> at <STATE>`.
    pub msg: Option<String>,
    /// Keys the contract does not list.
    pub unknown: BTreeMap<String, String>,
}

/// Parses the `upgrade` blob.
pub fn parse_upgrade(input: &str) -> Result<Upgrade, ParseError> {
    let mut f = Fields::new("legacy-upgrade", input)?;
    Ok(Upgrade {
        state: UpgradeState::from_text(f.req("state")?.0),
        from: f.opt_string("from"),
        to: f.opt_string("to"),
        order: f.list("order"),
        node: f.opt_string("node"),
        done: f.list("done"),
        rolled: f.list("rolled"),
        by: f.opt_string("by"),
        started: f.opt_number("started")?,
        since: f.opt_number("since")?,
        failed_state: f.opt_string("failed_state").map(|s| UpgradeState::from_text(&s)),
        failed_node: f.opt_string("failed_node"),
        finished: f.opt_number("finished")?,
        msg: f.opt_string("msg"),
        unknown: f.unknown(),
    })
}

/// One `<if>:<mii>:<link failure count>` entry of `slaves`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct SlaveStatus {
    /// Interface name.
    pub interface: String,
    /// MII status.
    pub mii: MiiState,
    /// Link failure count since the bond came up.
    pub link_failures: u64,
}

/// `<bond>.<id>:<operstate>` of `storage_vlan` / `mgmt_vlan`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct VlanStatus {
    /// The VLAN interface, `<bond>.<id>`.
    pub interface: String,
    /// `up`, `down`, `unknown`, `lowerlayerdown` or `absent`, as written.
    pub operstate: String,
}

/// The `status` key of a node ConfigMap.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct NodeStatus {
    /// Epoch of the report.
    pub at: u64,
    /// The node's state.
    pub state: NodeState,
    /// The node's role (`none` before it joined).
    pub role: NodeRole,
    /// Network health.
    pub net: NetHealth,
    /// Bond interface name.
    pub bond: String,
    /// The bond mode read from `/proc/net/bonding`, `unknown` when unreadable.
    pub bond_mode: String,
    /// The active slave; `None` for `none`.
    pub bond_active: Option<String>,
    /// Per-slave MII state and failure count.
    pub slaves: Vec<SlaveStatus>,
    /// The storage VLAN and its state.
    pub storage_vlan: Option<VlanStatus>,
    /// The management VLAN and its state; none without one.
    pub mgmt_vlan: Option<VlanStatus>,
    /// `systemctl is-active linstor-satellite` output, or `unknown`.
    pub satellite: String,
    /// Whether `drbdadm status all` succeeded.
    pub drbd: DrbdHealth,
    /// Resource count.
    pub resources: u64,
    /// Resources whose local disk is `UpToDate` or `Diskless`.
    pub uptodate: u64,
    /// Whether any peer is resyncing.
    pub syncing: bool,
    /// The storage-not-ready taint reason; `None` for `none`.
    pub taint: Option<StorageTaintReason>,
    /// The boot-recovery phase, if any.
    pub boot: Option<BootRecoveryPhase>,
    /// The upgrade state while this node is the upgrade's `node`.
    pub upgrade: Option<UpgradeState>,
    /// Upstream version of the installed `drbd-dkms`.
    pub drbd_version: Option<String>,
    /// Keys the contract does not list.
    pub unknown: BTreeMap<String, String>,
}

fn vlan(f: &Fields<'_>, (v, at): (&str, usize)) -> Result<Option<VlanStatus>, ParseError> {
    if v.is_empty() {
        return Ok(None);
    }
    let (interface, operstate) = v
        .rsplit_once(':')
        .ok_or_else(|| f.error(at, "`<bond>.<id>:<operstate>`"))?;
    Ok(Some(VlanStatus {
        interface: interface.to_owned(),
        operstate: operstate.to_owned(),
    }))
}

/// Parses the `status` blob.
pub fn parse_node_status(input: &str) -> Result<NodeStatus, ParseError> {
    let mut f = Fields::new("legacy-node-status", input)?;
    let at = f.req_number("at")?;
    let state = NodeState::from_text(f.req("state")?.0);
    let role = NodeRole::from_text(f.req("role")?.0);
    let net = NetHealth::from_text(f.req("net")?.0);
    let bond = f.req("bond")?.0.to_owned();
    let bond_mode = f.req("bond_mode")?.0.to_owned();
    let bond_active = Some(f.req("bond_active")?.0)
        .filter(|v| !v.is_empty() && *v != "none")
        .map(str::to_owned);
    let (slaves_text, slaves_at) = f.req("slaves")?;
    let mut slaves = Vec::new();
    let mut offset = slaves_at;
    for entry in slaves_text.split(',').filter(|_| !slaves_text.is_empty()) {
        let mut parts = entry.splitn(3, ':');
        let (Some(interface), Some(mii), Some(count)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(f.error(offset, "`<if>:<mii>:<link failures>`"));
        };
        let count_at = offset + interface.len() + mii.len() + 2;
        slaves.push(SlaveStatus {
            interface: interface.to_owned(),
            mii: MiiState::from_text(mii),
            link_failures: f.number((count, count_at))?,
        });
        offset += entry.len() + 1;
    }
    let storage = f.req("storage_vlan")?;
    let storage_vlan = vlan(&f, storage)?;
    let mgmt = f.req("mgmt_vlan")?;
    let mgmt_vlan = vlan(&f, mgmt)?;
    let satellite = f.req("satellite")?.0.to_owned();
    let drbd = DrbdHealth::from_text(f.req("drbd")?.0);
    let resources = f.req_number("resources")?;
    let uptodate = f.req_number("uptodate")?;
    let syncing = match f.req("syncing")? {
        ("0", _) => false,
        ("1", _) => true,
        (_, at) => return Err(f.error(at, "`0` or `1`")),
    };
    let taint = Some(f.req("taint")?.0)
        .filter(|v| !v.is_empty() && *v != "none")
        .map(StorageTaintReason::from_text);
    let boot = Some(f.req("boot")?.0)
        .filter(|v| !v.is_empty())
        .map(BootRecoveryPhase::from_text);
    let upgrade = Some(f.req("upgrade")?.0)
        .filter(|v| !v.is_empty())
        .map(UpgradeState::from_text);
    let drbd_version = f.opt_string("drbd_version");
    f.req("drbd_version")?;
    Ok(NodeStatus {
        at,
        state,
        role,
        net,
        bond,
        bond_mode,
        bond_active,
        slaves,
        storage_vlan,
        mgmt_vlan,
        satellite,
        drbd,
        resources,
        uptodate,
        syncing,
        taint,
        boot,
        upgrade,
        drbd_version,
        unknown: f.unknown(),
    })
}

/// The `boot-recovery` key of a node ConfigMap.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct BootRecovery {
    /// The current or last phase.
    pub phase: BootRecoveryPhase,
    /// The boot being recovered.
    pub boot_id: Option<String>,
    /// Epoch of the boot.
    pub boot_time: Option<u64>,
    /// Epoch recovery started.
    pub started: Option<u64>,
    /// Epoch the phase was entered.
    pub since: Option<u64>,
    /// The phase that failed, kept when a later recovery starts.
    pub failed_phase: Option<BootRecoveryPhase>,
    /// Why it failed.
    pub msg: Option<String>,
    /// Keys the contract does not list.
    pub unknown: BTreeMap<String, String>,
}

/// Parses the `boot-recovery` blob.
pub fn parse_boot_recovery(input: &str) -> Result<BootRecovery, ParseError> {
    let mut f = Fields::new("legacy-boot-recovery", input)?;
    Ok(BootRecovery {
        phase: BootRecoveryPhase::from_text(f.req("phase")?.0),
        boot_id: f.opt_string("boot_id"),
        boot_time: f.opt_number("boot_time")?,
        started: f.opt_number("started")?,
        since: f.opt_number("since")?,
        failed_phase: f
            .opt_string("failed_phase")
            .map(|p| BootRecoveryPhase::from_text(&p)),
        msg: f.opt_string("msg"),
        unknown: f.unknown(),
    })
}

/// A `bond-flip.<node>` key of `vx-rail-cluster-state`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct BondFlip {
    /// `mode` or `active`.
    pub action: BondFlipAction,
    /// A bonding mode or a slave interface name.
    pub value: String,
    /// `requested`, then `applied` or `failed`.
    pub state: BondFlipState,
    /// The requester's opaque id.
    pub id: Option<String>,
    /// Epoch of the request.
    pub requested: Option<u64>,
    /// Epoch the node handled it.
    pub done: Option<u64>,
    /// Why it failed, or `already in mode <mode>`.
    pub msg: Option<String>,
    /// Keys the contract does not list.
    pub unknown: BTreeMap<String, String>,
}

/// Parses a `bond-flip.<node>` blob.
pub fn parse_bond_flip(input: &str) -> Result<BondFlip, ParseError> {
    let mut f = Fields::new("legacy-bond-flip", input)?;
    Ok(BondFlip {
        action: BondFlipAction::from_text(f.req("action")?.0),
        value: f.req("value")?.0.to_owned(),
        state: BondFlipState::from_text(f.req("state")?.0),
        id: f.opt_string("id"),
        requested: f.opt_number("requested")?,
        done: f.opt_number("done")?,
        msg: f.opt_string("msg"),
        unknown: f.unknown(),
    })
}

/// The `vx-rail.io/last-run` annotation.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct LastRun {
    /// End of the iteration.
    pub ts: Timestamp,
    /// The script version.
    pub version: String,
    /// `ok` or `error`.
    pub outcome: Outcome,
    /// Where the iteration ended (`init`, `bootstrap`, …, `finished`).
    pub step: String,
    /// The exit code.
    pub rc: i64,
    /// Seconds the iteration took.
    pub duration: u64,
    /// Keys the contract does not list.
    pub unknown: BTreeMap<String, String>,
}

/// Parses the `vx-rail.io/last-run` annotation.
pub fn parse_last_run(input: &str) -> Result<LastRun, ParseError> {
    let mut f = Fields::new("legacy-last-run", input)?;
    let (ts_text, ts_at) = f.req("ts")?;
    let ts = parse_rfc3339(ts_text).ok_or_else(|| f.error(ts_at, "an RFC 3339 UTC time"))?;
    let version = f.req("version")?.0.to_owned();
    let outcome = Outcome::from_text(f.req("outcome")?.0);
    let step = f.req("step")?.0.to_owned();
    let (rc_text, rc_at) = f.req("rc")?;
    let rc = rc_text
        .parse::<i64>()
        .map_err(|_| f.error(rc_at, "an exit code"))?;
    Ok(LastRun {
        ts,
        version,
        outcome,
        step,
        rc,
        duration: f.req_number("duration")?,
        unknown: f.unknown(),
    })
}

/// The `vx-rail.io/upgrade-state` annotation.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct UpgradeStateAnnotation {
    /// The upgrade state this node entered.
    pub state: UpgradeState,
    /// The target version.
    pub to: String,
    /// Epoch it was entered.
    pub since: u64,
    /// Keys the contract does not list.
    pub unknown: BTreeMap<String, String>,
}

/// Parses the `vx-rail.io/upgrade-state` annotation.
pub fn parse_upgrade_state_annotation(input: &str) -> Result<UpgradeStateAnnotation, ParseError> {
    let mut f = Fields::new("legacy-upgrade-state", input)?;
    Ok(UpgradeStateAnnotation {
        state: UpgradeState::from_text(f.req("state")?.0),
        to: f.req("to")?.0.to_owned(),
        since: f.req_number("since")?,
        unknown: f.unknown(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_counts_21_upgrade_states_and_13_migration_phases() {
        assert_eq!(UpgradeState::KNOWN.len(), 21);
        assert_eq!(MigrationPhase::KNOWN.len(), 13);
        assert_eq!(BootRecoveryPhase::KNOWN.len(), 7);
    }

    #[test]
    fn an_unknown_state_is_kept_not_dropped() {
        let u = parse_upgrade("state=REBOOTING;node=edge-2;done=;rolled=").unwrap();
        assert_eq!(u.state, UpgradeState::Unknown("REBOOTING".into()));
        assert_eq!(
            serde_json::to_value(&u.state).unwrap(),
            serde_json::json!({"unknown": "REBOOTING"})
        );
    }
}
