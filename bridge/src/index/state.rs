//! What the index holds, typed: the legacy object names it recognises, each parsed field with its
//! last good value and its error, the site-wide ConfigMap, each node's Node object, ConfigMap and
//! log, the workflow transitions seen, and the change set. Data and small accessors only; the
//! index's methods that fill these are in the files named for their source.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Taint;
use nodewright_parsers as p;
use nodewright_parsers::contract;

/// Names of the legacy objects, as the script's contract fixes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyNames {
    /// Namespace of the legacy ConfigMaps and DaemonSet.
    pub namespace: String,
    /// The site-wide ConfigMap.
    pub cluster_state: String,
    /// Prefix of the per-node ConfigMaps (`vx-rail-node-<node>`).
    pub node_prefix: String,
}

impl Default for LegacyNames {
    fn default() -> Self {
        LegacyNames {
            namespace: contract::NAMESPACE.to_owned(),
            cluster_state: contract::CLUSTER_STATE.to_owned(),
            node_prefix: contract::NODE_CONFIG_MAP_PREFIX.to_owned(),
        }
    }
}

/// Something in the legacy state that could not be parsed: where, what, and since when.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The object and field, for example `configmap/kube-system/vx-rail-node-edge-1:status`.
    pub source: String,
    /// The parser's format name, a low-cardinality metric label.
    pub format: &'static str,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// Byte offset, from 0.
    pub offset: usize,
    /// What was expected and what was found.
    pub message: String,
    /// Unix seconds when this error was first seen.
    pub first_seen: i64,
}

impl Diagnostic {
    fn from_parse(source: String, error: &p::ParseError, now: i64) -> Self {
        Diagnostic {
            source,
            format: error.format,
            line: error.line,
            column: error.column,
            offset: error.offset,
            message: format!("expected {}, found {}", error.expected, error.found),
            first_seen: now,
        }
    }
}

/// One field of legacy state: its last good parsed value, and the error if the current raw text
/// does not parse (then `value` is the last good one, and stale).
#[derive(Clone, Debug)]
pub struct Field<T> {
    /// A fingerprint of the raw text last taken in, to tell unchanged text without keeping a
    /// copy of it (two different texts collide with a chance of about 2⁻⁶⁴).
    raw: Option<u64>,
    /// The last value that parsed.
    pub value: Option<T>,
    /// Why the current raw text does not parse, when it does not (boxed: a site has few errors and
    /// many fields).
    pub error: Option<Box<Diagnostic>>,
}

impl<T> Default for Field<T> {
    fn default() -> Self {
        Field {
            raw: None,
            value: None,
            error: None,
        }
    }
}

impl<T> Field<T> {
    /// Whether the value shown is older than the raw text (the raw text did not parse).
    pub fn is_stale(&self) -> bool {
        self.error.is_some()
    }

    /// Updates from the current raw text. Unchanged text is not parsed again, so an error keeps
    /// its first-seen time; absent text clears the value. Returns a new error, if one appeared.
    pub(super) fn update(
        &mut self,
        raw: Option<&str>,
        source: impl FnOnce() -> String,
        parse: impl FnOnce(&str) -> Result<T, p::ParseError>,
        now: i64,
    ) -> Option<Diagnostic> {
        let fingerprint = raw.map(|r| crate::fingerprint::of_bytes(r.as_bytes()));
        if self.raw == fingerprint {
            return None;
        }
        self.raw = fingerprint;
        let Some(raw) = raw else {
            self.value = None;
            self.error = None;
            return None;
        };
        match parse(raw) {
            Ok(value) => {
                self.value = Some(value);
                self.error = None;
                None
            }
            Err(e) => {
                let diagnostic = Diagnostic::from_parse(source(), &e, now);
                self.error = Some(Box::new(diagnostic.clone()));
                Some(diagnostic)
            }
        }
    }
}

/// The site-wide ConfigMap, field by field.
#[derive(Clone, Debug, Default)]
pub struct ClusterState {
    /// `cluster`.
    pub cluster: Field<p::ClusterBlob>,
    /// `members`.
    pub members: Field<Vec<p::Member>>,
    /// `network-plan`.
    pub network_plan: Field<p::NetworkPlan>,
    /// `linstor-nodes`.
    pub linstor_nodes: Field<Vec<p::LinstorNode>>,
    /// `migration`.
    pub migration: Field<p::Migration>,
    /// `upgrade`.
    pub upgrade: Field<p::Upgrade>,
    /// `desired-storage-version`, as written.
    pub desired_storage_version: Option<String>,
    /// `bond-flip.<node>` per node.
    pub bond_flips: BTreeMap<String, Field<p::BondFlip>>,
}

/// The Node object, as far as the legacy script uses it.
#[derive(Clone, Debug, Default)]
pub struct NodeObject {
    /// `vx-rail.io/state`.
    pub state: Option<p::AnnotatedState>,
    /// `vx-rail.io/last-run`.
    pub last_run: Field<p::LastRun>,
    /// `vx-rail.io/upgrade-state`.
    pub upgrade_state: Field<p::UpgradeStateAnnotation>,
    /// `vx-rail.io/bond-active` (`None` inside when the annotation says `none`).
    pub bond_active: Option<Option<String>>,
    /// `vx-rail.io/boot-id`.
    pub boot_id: Option<String>,
    /// `vx-rail.io/role` label.
    pub role: Option<p::NodeRole>,
    /// `vx-rail.io/storage-ready` label.
    pub storage_ready: Field<bool>,
    /// Every taint on the Node.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// The kubelet's `Ready` condition status (`True`, `False`, `Unknown`), when reported.
    pub kubelet_ready: Option<String>,
}

/// The node's own ConfigMap `vx-rail-node-<node>`.
#[derive(Clone, Debug, Default)]
pub struct NodeConfigMap {
    /// `script-version`.
    pub script_version: Option<String>,
    /// `heartbeat`, as Unix seconds.
    pub heartbeat: Field<i64>,
    /// `status`.
    pub status: Field<p::NodeStatus>,
    /// `drbd-status`.
    pub drbd_status: Field<p::DrbdStatus>,
    /// `boot-recovery`.
    pub boot_recovery: Field<p::BootRecovery>,
    /// `takeover-generation`: the generation of the takeover ConfigMap the script last read (shim
    /// mode); absent while the site has no takeover ConfigMap.
    pub takeover_generation: Field<u64>,
}

/// What the node's legacy log said, read incrementally.
#[derive(Default)]
pub struct NodeLog {
    pub(super) reader: p::LogReader,
    /// The last `iteration finished` record: Unix seconds, outcome, step.
    pub last_iteration: Option<(i64, String, String)>,
    /// The version from the last `vx-rail-node-init starting` record.
    pub script_version: Option<String>,
    /// Lines the reader did not recognise (kept raw and counted, never fatal).
    pub unknown_lines: u64,
    /// Records, blocks and unknown lines seen so far.
    pub records: u64,
    /// Raw blocks seen so far.
    pub blocks: u64,
    /// The newest line that did not parse.
    pub last_unknown: Option<Diagnostic>,
    /// The last bond mode change the script logged: bond, from mode, to mode.
    pub last_mode_change: Option<(String, String, String)>,
    /// Storage upgrades this node's script started, as it logged them: Unix seconds and the
    /// target version, oldest first (the last few only). Two nodes starting the same upgrade is
    /// the stale-state race.
    pub upgrade_starts: Vec<(i64, String)>,
    /// The storage-upgrade events this node's script logged (starts and state changes), in log
    /// order (the last few hundred only): what shadow replays state by state.
    pub upgrade_events: Vec<UpgradeLogged>,
}

/// One storage-upgrade event a node's script logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeLogged {
    /// Unix seconds of the record.
    pub at: i64,
    /// The record's position in the node's log: orders the records of one second.
    pub seq: u64,
    /// What it said.
    pub event: UpgradeEvent,
}

/// What a storage-upgrade record said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpgradeEvent {
    /// `storage upgrade started`: the node wrote `PENDING` with this order.
    Started {
        /// The version left.
        from: Option<String>,
        /// The version wanted.
        to: String,
        /// The order it wrote, itself first.
        order: Vec<String>,
    },
    /// `upgrade state changed`.
    Changed {
        /// The state left (`none` when there was none).
        from: String,
        /// The state entered.
        to: String,
        /// The upgrade's node after the change, if any.
        node: Option<String>,
        /// The reason given, if any.
        message: Option<String>,
    },
}

impl std::fmt::Debug for NodeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLog")
            .field("last_iteration", &self.last_iteration)
            .field("script_version", &self.script_version)
            .field("records", &self.records)
            .field("blocks", &self.blocks)
            .field("unknown_lines", &self.unknown_lines)
            .finish_non_exhaustive()
    }
}

/// One transition of a workflow, as observed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Transition {
    /// Unix seconds it happened (from the legacy record, not from when the bridge saw it).
    pub at: i64,
    /// The state or phase entered, as the script writes it.
    pub state: String,
    /// The node it applies to (upgrade per-node states), if any.
    pub node: Option<String>,
    /// The reason the script gave, if any.
    pub message: Option<String>,
}

/// Everything known about one node.
#[derive(Debug, Default)]
pub struct NodeEntry {
    /// The Node object, when it exists. Each part is boxed, so that the index's map holds small
    /// entries and a part that is absent takes no room.
    pub object: Option<Box<NodeObject>>,
    /// The node ConfigMap, when it exists.
    pub config_map: Option<Box<NodeConfigMap>>,
    /// Its legacy log, when a log source feeds one.
    pub log: Option<Box<NodeLog>>,
}

impl NodeEntry {
    /// The newest legacy sign of life of the node, in Unix seconds: its ConfigMap's `heartbeat`,
    /// the time of its `vx-rail.io/last-run` annotation, or its log's last `iteration finished`.
    pub fn heartbeat(&self) -> Option<i64> {
        let cm = self.config_map.as_ref().and_then(|c| c.heartbeat.value);
        let run = self
            .object
            .as_ref()
            .and_then(|o| o.last_run.value.as_ref())
            .and_then(|r| r.ts.unix_seconds());
        let log = self
            .log
            .as_ref()
            .and_then(|l| l.last_iteration.as_ref())
            .map(|i| i.0);
        [cm, run, log].into_iter().flatten().max()
    }
}

/// Counts of what the index has taken in, for metrics and readiness.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Objects applied.
    pub applied: u64,
    /// Objects deleted.
    pub deleted: u64,
    /// Full relists.
    pub resets: u64,
}

/// What changed in the index since it was last asked: the nodes whose state changed, or `all`
/// when something every node's status depends on changed (the site-wide ConfigMap, a relist).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    /// Every node may have changed.
    pub all: bool,
    /// These nodes changed.
    pub nodes: BTreeSet<String>,
}

impl Dirty {
    /// Every node may have changed: what a full reconcile computes.
    pub fn everything() -> Self {
        Dirty {
            all: true,
            nodes: BTreeSet::new(),
        }
    }

    /// Whether the status of `node` may have changed.
    pub fn touches(&self, node: &str) -> bool {
        self.all || self.nodes.contains(node)
    }
}
