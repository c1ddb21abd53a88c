//! The bridge's in-memory index of legacy state: what the watches (or an offline bundle) delivered,
//! parsed once per change and kept per node, with the last good value of every field and the
//! history of workflow transitions seen so far.
//!
//! The index is synchronous and performs no I/O: sources call [`Index::apply_config_map`],
//! [`Index::apply_node`], [`Index::feed_log`] and their `delete_*` / `reset_*` counterparts, and the
//! pure status computation in [`crate::observe`] reads it. Times are passed in by the caller.
//!
//! Bad input never removes what was known: a value that does not parse keeps the previous good
//! value, which is then marked stale, and records a [`Diagnostic`] saying where and what.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Node, Taint};
use nodewright_parsers as p;
use nodewright_parsers::contract::{self, Message, annotation, cluster_key, label, node_key};

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
    fn update(
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
    reader: p::LogReader,
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
}

/// Upgrade starts kept per node.
const KEEP_UPGRADE_STARTS: usize = 8;

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

/// The index. See the module documentation.
#[derive(Debug, Default)]
pub struct Index {
    names: LegacyNames,
    /// The site-wide ConfigMap, when it exists.
    pub cluster: Option<ClusterState>,
    /// Nodes by name: every node seen in a Node object, a node ConfigMap or a log.
    pub nodes: BTreeMap<String, NodeEntry>,
    /// Storage-upgrade transitions seen, keyed by the upgrade's `started` epoch.
    pub upgrade_history: BTreeMap<u64, BTreeSet<Transition>>,
    /// Migration transitions seen, keyed by [`migration_key`].
    pub migration_history: BTreeMap<u64, BTreeSet<Transition>>,
    /// The data of Nodewright's takeover ConfigMap in the legacy namespace, when it exists.
    pub takeover: Option<BTreeMap<String, String>>,
    /// Parse errors that appeared since the last [`Index::take_new_errors`].
    new_errors: Vec<Diagnostic>,
    /// What changed since the last [`Index::take_dirty`].
    dirty: Dirty,
    /// What a ConfigMap relist in progress has listed so far.
    relisting_config_maps: Option<ListedConfigMaps>,
    /// The Nodes a Node relist in progress has listed so far.
    relisting_nodes: Option<BTreeSet<String>>,
    /// What has been taken in.
    pub stats: IndexStats,
}

/// The ConfigMaps a relist has listed so far, by what they are to the index.
#[derive(Debug, Default)]
struct ListedConfigMaps {
    cluster: bool,
    takeover: bool,
    nodes: BTreeSet<String>,
}

/// Nodewright's takeover ConfigMap, in the legacy namespace (see the legacy contract's shim mode).
pub const TAKEOVER_CONFIGMAP: &str = contract::TAKEOVER;

/// The keys of one ConfigMap, parsed into fields, collecting the errors that appear.
struct Keys<'a> {
    data: &'a BTreeMap<String, String>,
    object: String,
    now: i64,
    errors: Vec<Diagnostic>,
}

impl<'a> Keys<'a> {
    fn raw(&self, key: &str) -> Option<&'a str> {
        self.data.get(key).map(String::as_str)
    }

    fn parse<T>(
        &mut self,
        field: &mut Field<T>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, p::ParseError>,
    ) {
        let source = || format!("{}:{key}", self.object);
        self.errors
            .extend(field.update(self.raw(key), source, parse, self.now));
    }
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

/// Upgrade and migration history kept per workflow instance; older instances are dropped beyond
/// this many, so an index running for months stays bounded.
const KEEP_INSTANCES: usize = 8;
/// Transitions kept per workflow instance.
const KEEP_TRANSITIONS: usize = 512;

fn rfc3339_unix(text: &str) -> Result<i64, p::ParseError> {
    // A heartbeat is always UTC (`...Z`), so it always has Unix seconds.
    p::parse_heartbeat(text).map(|t| t.unix_seconds().unwrap_or_default())
}

fn generation(text: &str) -> Result<u64, p::ParseError> {
    text.parse().map_err(|_| p::ParseError {
        format: "legacy-takeover-generation",
        line: 1,
        column: 1,
        offset: 0,
        expected: "a non-negative integer".to_owned(),
        found: format!("{text:?}"),
    })
}

fn bool_label(text: &str) -> Result<bool, p::ParseError> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(p::ParseError {
            format: "legacy-node-labels",
            line: 1,
            column: 1,
            offset: 0,
            expected: "`true` or `false`".to_owned(),
            found: format!("{other:?}"),
        }),
    }
}

impl Index {
    /// An empty index for the legacy objects named by `names`.
    pub fn new(names: LegacyNames) -> Self {
        Index {
            names,
            ..Index::default()
        }
    }

    /// The legacy object names this index recognises.
    pub fn names(&self) -> &LegacyNames {
        &self.names
    }

    /// Parse errors that appeared since the last call (each error once, when it first appears).
    pub fn take_new_errors(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.new_errors)
    }

    /// What changed since the last call.
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    fn node(&mut self, name: &str) -> &mut NodeEntry {
        if !self.dirty.all {
            self.dirty.nodes.insert(name.to_owned());
        }
        self.nodes.entry(name.to_owned()).or_default()
    }

    fn prune_node(&mut self, name: &str) {
        if let Some(e) = self.nodes.get(name)
            && e.object.is_none()
            && e.config_map.is_none()
            && e.log.is_none()
        {
            self.nodes.remove(name);
        }
    }

    /// Takes in a ConfigMap from a watch event or a list. ConfigMaps the contract does not name
    /// are ignored; the return value says whether this one was taken.
    pub fn apply_config_map(&mut self, cm: &ConfigMap, now: i64) -> bool {
        let namespace = cm.metadata.namespace.as_deref().unwrap_or_default();
        let Some(name) = cm.metadata.name.as_deref() else {
            return false;
        };
        if namespace != self.names.namespace {
            return false;
        }
        let empty = BTreeMap::new();
        let data = cm.data.as_ref().unwrap_or(&empty);
        let mut keys = Keys {
            data,
            object: format!("configmap/{namespace}/{name}"),
            now,
            errors: Vec::new(),
        };
        if name == self.names.cluster_state {
            self.dirty.all = true;
            let state = self.cluster.get_or_insert_with(ClusterState::default);
            keys.parse(&mut state.cluster, cluster_key::CLUSTER, p::parse_cluster_blob);
            keys.parse(&mut state.members, cluster_key::MEMBERS, p::parse_members);
            keys.parse(
                &mut state.network_plan,
                cluster_key::NETWORK_PLAN,
                p::parse_network_plan,
            );
            keys.parse(
                &mut state.linstor_nodes,
                cluster_key::LINSTOR_NODES,
                p::parse_linstor_nodes,
            );
            keys.parse(&mut state.migration, cluster_key::MIGRATION, p::parse_migration);
            keys.parse(&mut state.upgrade, cluster_key::UPGRADE, p::parse_upgrade);
            state.desired_storage_version = keys
                .raw(cluster_key::DESIRED_STORAGE_VERSION)
                .map(|v| v.trim().to_owned());
            let flips: BTreeSet<&str> = data
                .keys()
                .filter_map(|k| k.strip_prefix(cluster_key::BOND_FLIP_PREFIX))
                .collect();
            state.bond_flips.retain(|node, _| flips.contains(node.as_str()));
            for node in flips {
                let field = state.bond_flips.entry(node.to_owned()).or_default();
                keys.parse(
                    field,
                    &format!("{}{node}", cluster_key::BOND_FLIP_PREFIX),
                    p::parse_bond_flip,
                );
            }
            self.record_workflow_transitions();
        } else if let Some(node) = name.strip_prefix(self.names.node_prefix.as_str()) {
            let node = node.to_owned();
            let entry = self.node(&node);
            let cm_state = entry.config_map.get_or_insert_with(Box::default);
            cm_state.script_version = keys.raw(node_key::SCRIPT_VERSION).map(str::to_owned);
            keys.parse(&mut cm_state.heartbeat, node_key::HEARTBEAT, rfc3339_unix);
            keys.parse(&mut cm_state.status, node_key::STATUS, p::parse_node_status);
            keys.parse(
                &mut cm_state.drbd_status,
                node_key::DRBD_STATUS,
                p::parse_drbd_status,
            );
            keys.parse(
                &mut cm_state.boot_recovery,
                node_key::BOOT_RECOVERY,
                p::parse_boot_recovery,
            );
            keys.parse(
                &mut cm_state.takeover_generation,
                node_key::TAKEOVER_GENERATION,
                generation,
            );
        } else if name == TAKEOVER_CONFIGMAP {
            // Nodewright's own projection of who decides what; kept raw, read by the parity layer.
            self.dirty.all = true;
            self.takeover = Some(data.clone());
            return true;
        } else {
            return false;
        }
        let errors = keys.errors;
        self.new_errors.extend(errors);
        self.stats.applied += 1;
        true
    }

    /// A ConfigMap was deleted.
    pub fn delete_config_map(&mut self, namespace: &str, name: &str) {
        if namespace != self.names.namespace {
            return;
        }
        if name == self.names.cluster_state {
            self.cluster = None;
            self.dirty.all = true;
        } else if name == TAKEOVER_CONFIGMAP {
            self.takeover = None;
            self.dirty.all = true;
        } else if let Some(node) = name.strip_prefix(self.names.node_prefix.as_str()) {
            let node = node.to_owned();
            self.dirty.nodes.insert(node.clone());
            if let Some(e) = self.nodes.get_mut(&node) {
                e.config_map = None;
            }
            self.prune_node(&node);
        } else {
            return;
        }
        self.stats.deleted += 1;
    }

    /// A full list of ConfigMaps (after a relist): what is not in it is gone.
    pub fn reset_config_maps<'a>(&mut self, cms: impl IntoIterator<Item = &'a ConfigMap>, now: i64) {
        self.relist_config_maps_start();
        for cm in cms {
            self.relist_config_map(cm, now);
        }
        self.relist_config_maps_done();
    }

    /// A ConfigMap relist begins: the ConfigMaps that follow through
    /// [`relist_config_map`](Self::relist_config_map) are the whole list, taken in one at a time
    /// so that the list is never held whole. A relist that starts again before it is done starts
    /// over.
    pub fn relist_config_maps_start(&mut self) {
        self.relisting_config_maps = Some(ListedConfigMaps::default());
    }

    /// One ConfigMap of the relist in progress (or, without one, a plain apply).
    pub fn relist_config_map(&mut self, cm: &ConfigMap, now: i64) {
        if !self.apply_config_map(cm, now) {
            return;
        }
        let name = cm.metadata.name.as_deref().unwrap_or_default();
        let Some(listed) = &mut self.relisting_config_maps else {
            return;
        };
        if name == TAKEOVER_CONFIGMAP {
            listed.takeover = true;
        } else if name == self.names.cluster_state {
            listed.cluster = true;
        } else if let Some(node) = name.strip_prefix(self.names.node_prefix.as_str()) {
            listed.nodes.insert(node.to_owned());
        }
    }

    /// The ConfigMap relist is complete: what it did not list is gone.
    pub fn relist_config_maps_done(&mut self) {
        let listed = self.relisting_config_maps.take().unwrap_or_default();
        self.dirty.all = true;
        if !listed.takeover {
            self.takeover = None;
        }
        if !listed.cluster {
            self.cluster = None;
        }
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(n, e)| e.config_map.is_some() && !listed.nodes.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
        for node in gone {
            let name = format!("{}{node}", self.names.node_prefix);
            let namespace = self.names.namespace.clone();
            self.delete_config_map(&namespace, &name);
        }
        self.stats.resets += 1;
    }

    /// Takes in a Node from a watch event or a list.
    pub fn apply_node(&mut self, node: &Node, now: i64) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let empty = BTreeMap::new();
        let annotations = node.metadata.annotations.as_ref().unwrap_or(&empty);
        let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
        let source = |kind: &str, key: &str| format!("node/{name}:{kind}/{key}");
        let mut errors = Vec::new();
        let entry = self.node(&name);
        let object = entry.object.get_or_insert_with(Box::default);
        let ann = |k: &str| annotations.get(k).map(String::as_str);
        object.state = ann(annotation::STATE).map(p::AnnotatedState::from_text);
        errors.extend(object.last_run.update(
            ann(annotation::LAST_RUN),
            || source("annotations", annotation::LAST_RUN),
            p::parse_last_run,
            now,
        ));
        errors.extend(object.upgrade_state.update(
            ann(annotation::UPGRADE_STATE),
            || source("annotations", annotation::UPGRADE_STATE),
            p::parse_upgrade_state_annotation,
            now,
        ));
        object.bond_active = ann(annotation::BOND_ACTIVE).map(|v| {
            Some(v)
                .filter(|v| !v.is_empty() && *v != "none")
                .map(str::to_owned)
        });
        object.boot_id = ann(annotation::BOOT_ID).map(str::to_owned);
        object.role = labels.get(label::ROLE).map(|v| p::NodeRole::from_text(v));
        errors.extend(object.storage_ready.update(
            labels.get(label::STORAGE_READY).map(String::as_str),
            || source("labels", label::STORAGE_READY),
            bool_label,
            now,
        ));
        let spec = node.spec.as_ref();
        object.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        object.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        object.kubelet_ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone());
        let upgrade_annotation = object.upgrade_state.value.clone();
        if let Some(a) = upgrade_annotation {
            self.record_node_upgrade_state(&name, &a);
        }
        self.new_errors.extend(errors);
        self.stats.applied += 1;
    }

    /// A Node was deleted.
    pub fn delete_node(&mut self, name: &str) {
        self.dirty.nodes.insert(name.to_owned());
        if let Some(e) = self.nodes.get_mut(name) {
            e.object = None;
        }
        self.prune_node(name);
        self.stats.deleted += 1;
    }

    /// A full list of Nodes (after a relist): what is not in it is gone.
    pub fn reset_nodes<'a>(&mut self, nodes: impl IntoIterator<Item = &'a Node>, now: i64) {
        self.relist_nodes_start();
        for node in nodes {
            self.relist_node(node, now);
        }
        self.relist_nodes_done();
    }

    /// A Node relist begins; see [`relist_config_maps_start`](Self::relist_config_maps_start).
    pub fn relist_nodes_start(&mut self) {
        self.relisting_nodes = Some(BTreeSet::new());
    }

    /// One Node of the relist in progress (or, without one, a plain apply).
    pub fn relist_node(&mut self, node: &Node, now: i64) {
        if let (Some(listed), Some(name)) = (&mut self.relisting_nodes, &node.metadata.name) {
            listed.insert(name.clone());
        }
        self.apply_node(node, now);
    }

    /// The Node relist is complete: the Nodes it did not list are gone.
    pub fn relist_nodes_done(&mut self) {
        let listed = self.relisting_nodes.take().unwrap_or_default();
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(n, e)| e.object.is_some() && !listed.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
        for node in gone {
            self.delete_node(&node);
        }
        self.dirty.all = true;
        self.stats.resets += 1;
    }

    /// Feeds a chunk of the node's legacy log (any split, any size). Returns how many records,
    /// blocks and unknown lines it completed.
    pub fn feed_log(&mut self, node: &str, chunk: &[u8], now: i64) -> (u64, u64, u64) {
        let mut transitions = Vec::new();
        let entry = self.node(node);
        let log = entry.log.get_or_insert_with(Box::default);
        let mut counts = (0, 0, 0);
        let mut unknown = None;
        let mut last_iteration = None;
        let mut version = None;
        let mut mode_change = None;
        let mut starts = Vec::new();
        log.reader.feed(chunk, |event| match event {
            p::LogEvent::Record(r) => {
                counts.0 += 1;
                let at = r.time.unix_seconds().unwrap_or(now);
                let msg = r.message();
                let field = |k: &str| r.fields.get(k).map(|f| f.value().into_owned());
                match Message::of(&r.component, &msg) {
                    Some(Message::IterationFinished) => {
                        last_iteration = Some((
                            at,
                            field("outcome").unwrap_or_default(),
                            field("step").unwrap_or_default(),
                        ));
                    }
                    Some(Message::Starting) => version = field("version"),
                    Some(Message::ChangingBondMode) => {
                        if let (Some(bond), Some(from), Some(to)) =
                            (field("bond"), field("from"), field("to"))
                        {
                            mode_change = Some((bond, from, to));
                        }
                    }
                    Some(Message::StorageUpgradeStarted) => {
                        if let Some(to) = field("to") {
                            starts.push((at, to));
                        }
                    }
                    Some(Message::UpgradeStateChanged) => {
                        if let Some(to) = field("to") {
                            transitions.push((
                                Workflow::Upgrade,
                                Transition {
                                    at,
                                    state: to,
                                    node: field("node").filter(|n| !n.is_empty()),
                                    message: field("msg"),
                                },
                            ));
                        }
                    }
                    Some(Message::MigrationPhaseChanged) => {
                        if let Some(to) = field("to") {
                            transitions.push((
                                Workflow::Migration,
                                Transition {
                                    at,
                                    state: to,
                                    node: None,
                                    message: field("msg"),
                                },
                            ));
                        }
                    }
                    _ => {}
                }
            }
            p::LogEvent::Block(_) => counts.1 += 1,
            p::LogEvent::ToolError { .. } => counts.0 += 1,
            p::LogEvent::Unknown(u) => {
                counts.2 += 1;
                unknown = Some(Diagnostic {
                    source: format!("log/{node}"),
                    format: "legacy-log",
                    line: usize::try_from(u.line).unwrap_or(usize::MAX),
                    column: u.column,
                    offset: 0,
                    message: format!("expected {}, found {:?}", u.expected, truncate(u.text, 64)),
                    first_seen: now,
                });
            }
        });
        log.records += counts.0;
        log.blocks += counts.1;
        log.unknown_lines += counts.2;
        if let Some(it) = last_iteration {
            log.last_iteration = Some(it);
        }
        if version.is_some() {
            log.script_version = version;
        }
        if mode_change.is_some() {
            log.last_mode_change = mode_change;
        }
        log.upgrade_starts.extend(starts);
        let excess = log.upgrade_starts.len().saturating_sub(KEEP_UPGRADE_STARTS);
        log.upgrade_starts.drain(..excess);
        if let Some(d) = unknown {
            log.last_unknown = Some(d.clone());
            self.new_errors.push(d);
        }
        for (workflow, t) in transitions {
            self.record_logged_transition(workflow, t);
        }
        counts
    }

    /// The node's log source restarted from scratch (a new pod): forget the partial line.
    pub fn reset_log(&mut self, node: &str) {
        if let Some(e) = self.nodes.get_mut(node)
            && let Some(log) = &mut e.log
        {
            log.reader = p::LogReader::new();
        }
    }

    /// Records the transitions the current upgrade and migration blobs show.
    fn record_workflow_transitions(&mut self) {
        let Some(state) = &self.cluster else {
            return;
        };
        if let Some(u) = &state.upgrade.value
            && let (Some(started), Some(since)) = (u.started, u.since)
        {
            let node = u
                .node
                .clone()
                .filter(|_| !matches!(u.state, p::UpgradeState::Pending));
            let t = Transition {
                at: i64::try_from(since).unwrap_or(i64::MAX),
                state: u.state.as_str().to_owned(),
                node,
                message: u.msg.clone(),
            };
            insert_bounded(&mut self.upgrade_history, started, t);
        }
        if let Some(m) = &state.migration.value
            && let Some(since) = m.since
        {
            let key = migration_key(m, state.cluster.value.as_ref()).0;
            let t = Transition {
                at: i64::try_from(since).unwrap_or(i64::MAX),
                state: m.phase.as_str().to_owned(),
                node: None,
                message: m.msg.clone(),
            };
            insert_bounded(&mut self.migration_history, key, t);
        }
    }

    fn record_node_upgrade_state(&mut self, node: &str, a: &p::UpgradeStateAnnotation) {
        // The annotation carries no `started`: it belongs to the current upgrade when the versions
        // match, which is the only upgrade whose history is shown.
        let Some(started) = self
            .cluster
            .as_ref()
            .and_then(|c| c.upgrade.value.as_ref())
            .filter(|u| u.to.as_deref() == Some(a.to.as_str()))
            .and_then(|u| u.started)
        else {
            return;
        };
        let t = Transition {
            at: i64::try_from(a.since).unwrap_or(i64::MAX),
            state: a.state.as_str().to_owned(),
            node: Some(node.to_owned()),
            message: None,
        };
        insert_bounded(&mut self.upgrade_history, started, t);
    }

    fn record_logged_transition(&mut self, workflow: Workflow, t: Transition) {
        let cluster = self.cluster.as_ref();
        match workflow {
            Workflow::Upgrade => {
                if let Some(started) = cluster
                    .and_then(|c| c.upgrade.value.as_ref())
                    .and_then(|u| u.started)
                {
                    insert_bounded(&mut self.upgrade_history, started, t);
                }
            }
            Workflow::Migration => {
                if let Some(key) = cluster.and_then(|c| {
                    let m = c.migration.value.as_ref()?;
                    Some(migration_key(m, c.cluster.value.as_ref()).0)
                }) {
                    insert_bounded(&mut self.migration_history, key, t);
                }
            }
        }
    }
}

/// What identifies one legacy migration in every phase: its source (the primary when the request
/// names none) and its joining nodes. The blob has no id, and its times change as it runs (`since`
/// at `PENDING` is the request, `started` appears when it starts). Returns a key for the history
/// and the source.
pub fn migration_key(m: &p::Migration, cluster: Option<&p::ClusterBlob>) -> (u64, Option<String>) {
    let source = m.source.clone().or_else(|| cluster.map(|c| c.primary.clone()));
    let text = format!(
        "{}|{}",
        source.as_deref().unwrap_or_default(),
        m.joining.join(",")
    );
    let hash = crate::fingerprint::of_bytes(text.as_bytes());
    (hash, source)
}

#[derive(Clone, Copy)]
enum Workflow {
    Upgrade,
    Migration,
}

/// Adds a transition; the same state entered at the same time on the same node from two sources
/// (the blob, an annotation, a log line) is one transition, the message kept when one has it.
fn insert_bounded(history: &mut BTreeMap<u64, BTreeSet<Transition>>, key: u64, t: Transition) {
    let set = history.entry(key).or_default();
    let duplicate = set
        .iter()
        .find(|o| o.at == t.at && o.state == t.state && o.node == t.node)
        .cloned();
    match duplicate {
        Some(old) if old.message.is_none() && t.message.is_some() => {
            set.remove(&old);
            set.insert(t);
        }
        Some(_) => {}
        None => {
            set.insert(t);
            while set.len() > KEEP_TRANSITIONS {
                set.pop_first();
            }
        }
    }
    while history.len() > KEEP_INSTANCES {
        history.pop_first();
    }
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub(crate) fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("kube-system".to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ConfigMap::default()
        }
    }

    pub(crate) fn node(name: &str, annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    pub(crate) const STATUS: &str = "at=1714557892;state=ready;role=primary;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;drbd=ok;resources=1;uptodate=1;syncing=0;taint=none;boot=COMPLETED;upgrade=;drbd_version=9.2.5";

    #[test]
    fn a_node_configmap_is_parsed_into_its_node_entry() {
        let mut index = Index::new(LegacyNames::default());
        let cm = config_map(
            "vx-rail-node-edge-1",
            &[("status", STATUS), ("heartbeat", "2024-05-01T10:05:02Z")],
        );
        assert!(index.apply_config_map(&cm, 100));
        let entry = &index.nodes["edge-1"];
        let cm = entry.config_map.as_ref().unwrap();
        assert_eq!(cm.status.value.as_ref().unwrap().bond, "bond0");
        assert_eq!(cm.heartbeat.value, Some(1_714_557_902));
        assert!(index.take_new_errors().is_empty());
    }

    #[test]
    fn configmaps_the_contract_does_not_name_are_ignored() {
        let mut index = Index::new(LegacyNames::default());
        assert!(!index.apply_config_map(&config_map("coredns", &[("Corefile", ".:53")]), 0));
        assert!(index.nodes.is_empty() && index.cluster.is_none());
    }

    #[test]
    fn a_malformed_blob_keeps_the_last_good_value_and_reports_where() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", STATUS)]), 100);
        let bad = STATUS.replace("resources=1", "resources=lots");
        index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", &bad)]), 200);
        let status = &index.nodes["edge-1"].config_map.as_ref().unwrap().status;
        assert_eq!(
            status.value.as_ref().unwrap().resources,
            1,
            "last good value kept"
        );
        assert!(status.is_stale());
        let errors = index.take_new_errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].source,
            "configmap/kube-system/vx-rail-node-edge-1:status"
        );
        assert_eq!(errors[0].line, 1);
        assert_eq!(errors[0].column, bad.find("lots").unwrap() + 1);
        assert_eq!(errors[0].first_seen, 200);
    }

    #[test]
    fn the_same_bad_value_seen_again_is_not_a_new_error() {
        let mut index = Index::new(LegacyNames::default());
        let cm = config_map("vx-rail-node-edge-1", &[("status", "garbage")]);
        index.apply_config_map(&cm, 100);
        assert_eq!(index.take_new_errors().len(), 1);
        index.apply_config_map(&cm, 300);
        assert!(index.take_new_errors().is_empty());
        let status = &index.nodes["edge-1"].config_map.as_ref().unwrap().status;
        assert_eq!(status.error.as_ref().unwrap().first_seen, 100);
    }

    #[test]
    fn a_relist_removes_what_is_gone_and_keeps_what_is_there() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", STATUS)]), 1);
        index.apply_config_map(&config_map("vx-rail-node-edge-2", &[("status", STATUS)]), 1);
        index.apply_config_map(&config_map("vx-rail-cluster-state", &[]), 1);
        let keep = config_map("vx-rail-node-edge-2", &[("status", STATUS)]);
        index.reset_config_maps([&keep], 2);
        assert_eq!(index.nodes.keys().collect::<Vec<_>>(), ["edge-2"]);
        assert!(index.cluster.is_none());
    }

    #[test]
    fn a_deleted_node_keeps_its_entry_while_its_configmap_exists() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_node(&node("edge-1", &[], &[]), 1);
        index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", STATUS)]), 1);
        index.delete_node("edge-1");
        assert!(index.nodes["edge-1"].object.is_none());
        index.delete_config_map("kube-system", "vx-rail-node-edge-1");
        assert!(!index.nodes.contains_key("edge-1"));
    }

    #[test]
    fn node_annotations_and_labels_are_parsed() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_node(
            &node(
                "edge-1",
                &[
                    ("vx-rail.io/state", "ready"),
                    (
                        "vx-rail.io/last-run",
                        "ts=2024-05-01T10:05:02Z;version=4.12.3;outcome=ok;step=finished;rc=0;duration=5",
                    ),
                    ("vx-rail.io/bond-active", "none"),
                ],
                &[
                    ("vx-rail.io/role", "primary"),
                    ("vx-rail.io/storage-ready", "true"),
                ],
            ),
            1,
        );
        let o = index.nodes["edge-1"].object.as_ref().unwrap();
        assert_eq!(o.state, Some(p::AnnotatedState::Ready));
        assert_eq!(o.last_run.value.as_ref().unwrap().version, "4.12.3");
        assert_eq!(o.bond_active, Some(None));
        assert_eq!(o.role, Some(p::NodeRole::Primary));
        assert_eq!(o.storage_ready.value, Some(true));
    }

    #[test]
    fn a_malformed_annotation_is_reported_with_the_node_and_key() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_node(
            &node("edge-1", &[("vx-rail.io/last-run", "ts=yesterday")], &[]),
            5,
        );
        let errors = index.take_new_errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].source, "node/edge-1:annotations/vx-rail.io/last-run");
    }

    #[test]
    fn upgrade_transitions_from_blob_annotation_and_log_are_merged() {
        let mut index = Index::new(LegacyNames::default());
        let blob = "state=WAIT_RESYNC;from=9.2.5;to=9.2.8;order=edge-1,edge-2;node=edge-2;done=edge-1;rolled=;by=edge-1;started=1714560000;since=1714560420";
        index.apply_config_map(&config_map("vx-rail-cluster-state", &[("upgrade", blob)]), 1);
        index.apply_node(
            &node(
                "edge-2",
                &[(
                    "vx-rail.io/upgrade-state",
                    "state=WAIT_RESYNC;to=9.2.8;since=1714560420",
                )],
                &[],
            ),
            1,
        );
        index.feed_log(
            "edge-2",
            b"ts=2024-05-01T10:47:00Z level=info node=edge-2 component=upgrade msg=\"upgrade state changed\" from=UP_RESOURCES to=WAIT_RESYNC node=edge-2 version=9.2.8\n",
            1,
        );
        let history = &index.upgrade_history[&1_714_560_000];
        assert_eq!(history.len(), 1, "{history:?}");
        let t = history.first().unwrap();
        assert_eq!(
            (t.state.as_str(), t.node.as_deref()),
            ("WAIT_RESYNC", Some("edge-2"))
        );
    }

    #[test]
    fn log_lines_are_counted_and_an_unknown_line_becomes_a_diagnostic() {
        let mut index = Index::new(LegacyNames::default());
        let log = b"ts=2024-05-01T10:05:02Z level=info node=edge-1 component=main msg=\"iteration finished\" outcome=ok step=finished rc=0 duration=5\nthis is not a log line\n";
        let (records, blocks, unknown) = index.feed_log("edge-1", log, 9);
        assert_eq!((records, blocks, unknown), (1, 0, 1));
        let l = index.nodes["edge-1"].log.as_ref().unwrap();
        assert_eq!(l.last_iteration.as_ref().unwrap().1, "ok");
        assert_eq!(index.take_new_errors()[0].line, 2);
    }

    #[test]
    fn the_index_says_which_nodes_changed_and_when_all_may_have() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", STATUS)]), 1);
        index.apply_node(&node("edge-2", &[], &[]), 1);
        let dirty = index.take_dirty();
        assert!(!dirty.all);
        assert_eq!(dirty.nodes.iter().collect::<Vec<_>>(), ["edge-1", "edge-2"]);
        assert_eq!(index.take_dirty(), Dirty::default(), "taking clears");
        index.apply_config_map(&config_map("vx-rail-cluster-state", &[]), 2);
        assert!(
            index.take_dirty().all,
            "every node's status depends on the site-wide state"
        );
        index.delete_node("edge-2");
        assert!(index.take_dirty().touches("edge-2"));
    }

    #[test]
    fn a_log_split_anywhere_gives_the_same_result() {
        let log: &[u8] = b"ts=2024-05-01T10:05:02Z level=info node=edge-1 component=main msg=\"iteration finished\" outcome=ok step=finished rc=0 duration=5\n";
        for cut in 0..log.len() {
            let mut index = Index::new(LegacyNames::default());
            let a = index.feed_log("edge-1", &log[..cut], 0);
            let b = index.feed_log("edge-1", &log[cut..], 0);
            assert_eq!(a.0 + b.0, 1, "cut at {cut}");
        }
    }
}
