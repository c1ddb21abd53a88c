//! The in-memory cluster that answers the legacy script's `kubectl` calls in simulation: Nodes
//! and ConfigMaps with a monotonically increasing resourceVersion, and [`Cluster::kubectl`], which
//! emulates kubectl 1.37 for exactly the invocations listed in `legacy/HOST-INTERFACE.md` —
//! the same stdout, stderr and exit code, errors included.
//!
//! The emulation follows kubectl's own code paths (argument classification, validation order,
//! messages) and the API server's validation messages; `tests/cluster_differential.rs` runs every
//! supported form against a real API server with the real kubectl and asserts identical output.
//! This module touches no filesystem, clock or network: files come through a callback and time is
//! passed in.

mod args;
mod golang;
mod jsonpath;
mod kubectl;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What one command printed and how it exited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Bytes written to standard output.
    pub stdout: Vec<u8>,
    /// Bytes written to standard error.
    pub stderr: Vec<u8>,
    /// The exit status.
    pub code: i32,
}

/// Errors of the cluster's own (non-kubectl) API, used to set up a world.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// An object with that name exists already.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// `Node` or `ConfigMap`.
        kind: &'static str,
        /// The object's name (`namespace/name` for ConfigMaps).
        name: String,
    },
    /// The ConfigMap's namespace does not exist.
    #[error("namespace {0:?} not found")]
    NamespaceNotFound(String),
}

/// A taint's effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    /// `NoSchedule`.
    NoSchedule,
    /// `PreferNoSchedule`.
    PreferNoSchedule,
    /// `NoExecute`.
    NoExecute,
}

impl TaintEffect {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<TaintEffect> {
        match s {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }
}

impl fmt::Display for TaintEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Node taint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taint {
    /// The taint key.
    pub key: String,
    /// The taint value; empty when absent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// The effect.
    pub effect: TaintEffect,
    /// When the taint was added (seconds since the epoch), if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<i64>,
}

impl Taint {
    /// A taint without a recorded time.
    pub fn new(key: impl Into<String>, value: impl Into<String>, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
            time_added: None,
        }
    }

    /// The same taint with `timeAdded` set.
    pub fn added_at(mut self, unix: i64) -> Taint {
        self.time_added = Some(unix);
        self
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("effect".into(), json!(self.effect.as_str()));
        m.insert("key".into(), json!(self.key));
        if let Some(t) = self.time_added {
            m.insert("timeAdded".into(), json!(golang::rfc3339(t)));
        }
        if !self.value.is_empty() {
            m.insert("value".into(), json!(self.value));
        }
        Value::Object(m)
    }
}

/// A Node, as far as the legacy script can see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The Node name.
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Taints, in API order (kubectl taint reorders them, and the order is visible).
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    #[serde(default)]
    pub unschedulable: bool,
    /// Creation time, seconds since the epoch.
    #[serde(default)]
    pub created: i64,
    /// Set by the cluster on every change.
    #[serde(default)]
    pub resource_version: u64,
}

impl Node {
    /// A Node with nothing set.
    pub fn new(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
            created: 0,
            resource_version: 0,
        }
    }

    /// With a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Node {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// With an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Node {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// With a taint appended.
    pub fn taint(mut self, taint: Taint) -> Node {
        self.taints.push(taint);
        self
    }

    /// Cordoned or not.
    pub fn unschedulable(mut self, unschedulable: bool) -> Node {
        self.unschedulable = unschedulable;
        self
    }

    /// Created at the given time.
    pub fn created_at(mut self, unix: i64) -> Node {
        self.created = unix;
        self
    }

    /// The object as the API server returns it (the fields this model keeps).
    pub fn to_json(&self) -> Value {
        let meta = object_meta(
            &self.name,
            None,
            &self.labels,
            &self.annotations,
            self.created,
            self.resource_version,
        );
        let mut spec = Map::new();
        if !self.taints.is_empty() {
            spec.insert(
                "taints".into(),
                Value::Array(self.taints.iter().map(Taint::to_json).collect()),
            );
        }
        if self.unschedulable {
            spec.insert("unschedulable".into(), json!(true));
        }
        json!({"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec, "status": {}})
    }
}

/// `metadata` as the API server returns it, for the fields this model keeps; keys in the order
/// Go's JSON encoder writes them.
fn object_meta(
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    created: i64,
    resource_version: u64,
) -> Map<String, Value> {
    let mut meta = Map::new();
    if !annotations.is_empty() {
        meta.insert("annotations".into(), json!(annotations));
    }
    meta.insert("creationTimestamp".into(), json!(golang::rfc3339(created)));
    if !labels.is_empty() {
        meta.insert("labels".into(), json!(labels));
    }
    meta.insert("name".into(), json!(name));
    if let Some(namespace) = namespace {
        meta.insert("namespace".into(), json!(namespace));
    }
    meta.insert("resourceVersion".into(), json!(resource_version.to_string()));
    meta
}

/// A ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigMap {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// UTF-8 entries.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Non-UTF-8 entries (from `--from-file` of binary content).
    #[serde(default)]
    pub binary_data: BTreeMap<String, Vec<u8>>,
    /// Creation time, seconds since the epoch.
    #[serde(default)]
    pub created: i64,
    /// Set by the cluster on every change.
    #[serde(default)]
    pub resource_version: u64,
}

impl ConfigMap {
    /// An empty ConfigMap.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ConfigMap {
        ConfigMap {
            namespace: namespace.into(),
            name: name.into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            data: BTreeMap::new(),
            binary_data: BTreeMap::new(),
            created: 0,
            resource_version: 0,
        }
    }

    /// With a data entry.
    pub fn entry(mut self, key: impl Into<String>, value: impl Into<String>) -> ConfigMap {
        self.data.insert(key.into(), value.into());
        self
    }

    /// Created at the given time.
    pub fn created_at(mut self, unix: i64) -> ConfigMap {
        self.created = unix;
        self
    }

    /// The object as the API server returns it (the fields this model keeps).
    pub fn to_json(&self) -> Value {
        let meta = object_meta(
            &self.name,
            Some(&self.namespace),
            &self.labels,
            &self.annotations,
            self.created,
            self.resource_version,
        );
        let mut obj = Map::new();
        obj.insert("apiVersion".into(), json!("v1"));
        if !self.binary_data.is_empty() {
            let encoded: BTreeMap<&String, String> =
                self.binary_data.iter().map(|(k, v)| (k, base64(v))).collect();
            obj.insert("binaryData".into(), json!(encoded));
        }
        if !self.data.is_empty() {
            obj.insert("data".into(), json!(self.data));
        }
        obj.insert("kind".into(), json!("ConfigMap"));
        obj.insert("metadata".into(), Value::Object(meta));
        Value::Object(obj)
    }
}

/// Standard base64 with padding, as JSON carries `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::new();
    for chunk in s.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// The simulated cluster: the Nodes and ConfigMaps the legacy script reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    resource_version: u64,
    namespaces: BTreeSet<String>,
    nodes: BTreeMap<String, Node>,
    /// namespace → name → ConfigMap.
    config_maps: BTreeMap<String, BTreeMap<String, ConfigMap>>,
    /// The nodes on which the legacy DaemonSet's pod exists (the runner says which); not
    /// served by `kubectl`, which the script never asks for pods.
    #[serde(skip)]
    script_pods: BTreeSet<String>,
    /// Workload pods bound to nodes (a scenario's pods that hold DRBD devices open): namespace
    /// → name → node. `kubectl delete pod` removes them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pods: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new()
    }
}

impl Cluster {
    /// An empty cluster with the namespaces every cluster has.
    pub fn new() -> Cluster {
        Cluster {
            resource_version: 0,
            namespaces: ["default", "kube-node-lease", "kube-public", "kube-system"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            nodes: BTreeMap::new(),
            config_maps: BTreeMap::new(),
            script_pods: BTreeSet::new(),
            pods: BTreeMap::new(),
        }
    }

    /// Records whether the legacy DaemonSet's pod exists on `node`.
    pub fn set_script_pod(&mut self, node: &str, present: bool) {
        if present {
            self.script_pods.insert(node.to_owned());
        } else {
            self.script_pods.remove(node);
        }
    }

    /// The legacy DaemonSet's pods, as the API server would list them in `kube-system`: one per
    /// node it exists on, named `vx-rail-node-init-<node>`, owned by the DaemonSet
    /// `vx-rail-node-init`, bound to its node and `Running`.
    pub fn script_pods(&self) -> Vec<serde_json::Value> {
        self.script_pods
            .iter()
            .map(|node| {
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": format!("vx-rail-node-init-{node}"),
                        "namespace": "kube-system",
                        "ownerReferences": [{
                            "apiVersion": "apps/v1",
                            "kind": "DaemonSet",
                            "name": "vx-rail-node-init",
                            "uid": "00000000-0000-0000-0000-00000000da17",
                            "controller": true,
                        }],
                    },
                    "spec": {"nodeName": node, "containers": [{"name": "vx-rail-node-init"}]},
                    "status": {"phase": "Running"},
                })
            })
            .collect()
    }

    /// Adds a workload pod bound to `node` (not owned by a DaemonSet, `Running`), in an existing
    /// namespace.
    pub fn add_pod(&mut self, namespace: &str, name: &str, node: &str) -> Result<(), ClusterError> {
        if !self.namespaces.contains(namespace) {
            return Err(ClusterError::NamespaceNotFound(namespace.to_owned()));
        }
        let pods = self.pods.entry(namespace.to_owned()).or_default();
        if pods.contains_key(name) {
            return Err(ClusterError::AlreadyExists {
                kind: "Pod",
                name: format!("{namespace}/{name}"),
            });
        }
        pods.insert(name.to_owned(), node.to_owned());
        self.next_version();
        Ok(())
    }

    /// Removes a workload pod (an eviction, or `kubectl delete pod`); whether it was there.
    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> bool {
        let removed = self
            .pods
            .get_mut(namespace)
            .and_then(|m| m.remove(name))
            .is_some();
        if removed {
            self.next_version();
        }
        removed
    }

    /// The workload pods, as `(namespace, name, node)`, by namespace then name.
    pub fn pods(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.pods.iter().flat_map(|(ns, m)| {
            m.iter()
                .map(move |(name, node)| (ns.as_str(), name.as_str(), node.as_str()))
        })
    }

    /// The workload pods as the API server would list them: bound to their node, `Running`, no
    /// owner (so not a DaemonSet's).
    pub fn pod_objects(&self) -> Vec<serde_json::Value> {
        self.pods()
            .map(|(namespace, name, node)| {
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"nodeName": node, "containers": [{"name": "app"}]},
                    "status": {"phase": "Running"},
                })
            })
            .collect()
    }

    /// The resourceVersion of the most recent change.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    fn next_version(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    /// Adds a namespace (a no-op when it exists).
    pub fn add_namespace(&mut self, name: impl Into<String>) {
        self.namespaces.insert(name.into());
    }

    /// Whether the namespace exists.
    pub fn has_namespace(&self, name: &str) -> bool {
        self.namespaces.contains(name)
    }

    /// Adds a Node; its resourceVersion is assigned here.
    pub fn add_node(&mut self, mut node: Node) -> Result<(), ClusterError> {
        if self.nodes.contains_key(&node.name) {
            return Err(ClusterError::AlreadyExists {
                kind: "Node",
                name: node.name,
            });
        }
        node.resource_version = self.next_version();
        self.nodes.insert(node.name.clone(), node);
        Ok(())
    }

    /// Adds a ConfigMap in an existing namespace; its resourceVersion is assigned here.
    pub fn add_config_map(&mut self, mut cm: ConfigMap) -> Result<(), ClusterError> {
        if !self.namespaces.contains(&cm.namespace) {
            return Err(ClusterError::NamespaceNotFound(cm.namespace));
        }
        if self.config_map(&cm.namespace, &cm.name).is_some() {
            return Err(ClusterError::AlreadyExists {
                kind: "ConfigMap",
                name: format!("{}/{}", cm.namespace, cm.name),
            });
        }
        cm.resource_version = self.next_version();
        self.config_maps
            .entry(cm.namespace.clone())
            .or_default()
            .insert(cm.name.clone(), cm);
        Ok(())
    }

    /// A Node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Every Node, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// A ConfigMap by namespace and name.
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<&ConfigMap> {
        self.config_maps.get(namespace).and_then(|m| m.get(name))
    }

    /// Every ConfigMap, by namespace then name.
    pub fn config_maps(&self) -> impl Iterator<Item = &ConfigMap> {
        self.config_maps.values().flat_map(BTreeMap::values)
    }

    /// Runs one `kubectl` invocation against this cluster, as kubectl 1.37 against a real API
    /// server would: same stdout, stderr and exit code.
    ///
    /// `argv` holds the arguments after the program name. `files` reads the paths given to
    /// `--from-file`, so the cluster needs no filesystem. `now` (seconds since the epoch) stamps
    /// objects the call creates. None of the supported invocations read standard input; `stdin`
    /// is accepted so a host can route every command through one signature.
    pub fn kubectl(
        &mut self,
        argv: &[String],
        stdin: &[u8],
        files: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
        now: i64,
    ) -> Output {
        let _ = stdin;
        kubectl::run(self, argv, files, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_added_object_gets_a_higher_resource_version() {
        let mut c = Cluster::new();
        c.add_node(Node::new("a")).unwrap();
        c.add_config_map(ConfigMap::new("kube-system", "x")).unwrap();
        assert_eq!(c.node("a").unwrap().resource_version, 1);
        assert_eq!(c.config_map("kube-system", "x").unwrap().resource_version, 2);
        assert_eq!(c.resource_version(), 2);
    }

    #[test]
    fn adding_a_node_twice_is_refused() {
        let mut c = Cluster::new();
        c.add_node(Node::new("a")).unwrap();
        assert!(matches!(
            c.add_node(Node::new("a")),
            Err(ClusterError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn a_config_map_needs_its_namespace() {
        let mut c = Cluster::new();
        assert_eq!(
            c.add_config_map(ConfigMap::new("nope", "x")),
            Err(ClusterError::NamespaceNotFound("nope".into()))
        );
    }

    #[test]
    fn the_cluster_round_trips_through_json() {
        let mut c = Cluster::new();
        c.add_node(
            Node::new("edge-1")
                .label("vx-rail.io/role", "storage")
                .taint(Taint::new("k", "", TaintEffect::NoExecute).added_at(10)),
        )
        .unwrap();
        let saved = serde_json::to_string(&c).unwrap();
        let back: Cluster = serde_json::from_str(&saved).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn base64_round_trips_every_padding_length() {
        for input in [&b""[..], b"a", b"ab", b"abc", b"\xff\x00\x80\x7f"] {
            assert_eq!(unbase64(&base64(input)).unwrap(), input);
        }
        assert_eq!(base64(b"hi"), "aGk=");
    }

    #[test]
    fn a_node_view_omits_empty_fields_like_the_api_server() {
        let v = Node::new("n").to_json();
        assert!(v["metadata"].get("labels").is_none());
        assert!(v["spec"].get("unschedulable").is_none());
        assert!(v["spec"].get("taints").is_none());
    }
}
