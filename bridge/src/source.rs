//! Sources of legacy state: watches of the legacy ConfigMaps and of the Nodes through the API
//! server, and an offline bundle read from a directory. Both produce [`Change`]s that
//! [`apply`] feeds into the [`Index`]; nothing here decides anything.
//!
//! The watches relist on their own when the API server restarts or answers `410 Gone` (a too-old
//! resourceVersion): kube-runtime's watcher starts over with a list, which arrives here as one
//! [`Change::Reset`] holding every object, so objects deleted while the bridge was not watching
//! disappear from the index too.
//!
//! [`start_sources`] merges the watches and the legacy pods' log lines into the one stream of
//! changes that the bridge's and the operator's loops read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use nodewright_api::nodefacts::NodeFacts;
use tokio::sync::mpsc;

use crate::index::Index;

/// One change to the legacy state, from any source.
#[derive(Clone, Debug)]
pub enum Change {
    /// A ConfigMap was added or modified.
    ConfigMap(ConfigMap),
    /// A ConfigMap was deleted.
    ConfigMapDeleted(ConfigMap),
    /// Every ConfigMap of the legacy namespace, after a (re)list.
    ConfigMapsReset(Vec<ConfigMap>),
    /// A Node was added or modified.
    Node(Box<Node>),
    /// A Node was deleted.
    NodeDeleted(Box<Node>),
    /// Every Node, after a (re)list.
    NodesReset(Vec<Node>),
    /// One step of a streamed (re)list of the legacy ConfigMaps, as a watch delivers it.
    ConfigMapsRelist(Relist<ConfigMap>),
    /// One step of a streamed (re)list of Nodes.
    NodesRelist(Relist<Box<Node>>),
    /// Bytes of a node's legacy log.
    Log {
        /// The node.
        node: String,
        /// The bytes, cut anywhere.
        bytes: Vec<u8>,
    },
    /// A node's log starts over (a new pod): any partial line is dropped.
    LogRestarted {
        /// The node.
        node: String,
    },
    /// A node agent published its host's facts (`NodeFacts`).
    NodeFacts(Box<NodeFacts>),
    /// A `NodeFacts` was deleted.
    NodeFactsDeleted(Box<NodeFacts>),
    /// One step of a streamed (re)list of `NodeFacts`.
    NodeFactsRelist(Relist<Box<NodeFacts>>),
}

/// A watch's (re)list, streamed: [`Relist::Start`], each object, then [`Relist::Done`], after
/// which what was not listed is gone. Taken in one object at a time, a list of thousands of
/// objects is never held whole.
#[derive(Clone, Debug)]
pub enum Relist<K> {
    /// The list begins.
    Start,
    /// One object of it.
    Object(K),
    /// The list is complete.
    Done,
}

impl<K> Relist<K> {
    /// The same step with the object mapped.
    pub fn map<T>(self, f: impl FnOnce(K) -> T) -> Relist<T> {
        match self {
            Relist::Start => Relist::Start,
            Relist::Object(k) => Relist::Object(f(k)),
            Relist::Done => Relist::Done,
        }
    }

    fn event(&self) -> &'static str {
        match self {
            Relist::Start => "relist_start",
            Relist::Object(_) => "relist",
            Relist::Done => "reset",
        }
    }
}

impl Change {
    /// Whether this change completes a full list of its source (a reset, or the end of a
    /// streamed relist): the first one makes the source ready.
    pub fn completes_list(&self) -> bool {
        matches!(
            self,
            Change::ConfigMapsReset(_)
                | Change::NodesReset(_)
                | Change::ConfigMapsRelist(Relist::Done)
                | Change::NodesRelist(Relist::Done)
        )
    }

    /// The source this change came from, as a metric label.
    pub fn source(&self) -> &'static str {
        match self {
            Change::ConfigMap(_)
            | Change::ConfigMapDeleted(_)
            | Change::ConfigMapsReset(_)
            | Change::ConfigMapsRelist(_) => "configmaps",
            Change::Node(_) | Change::NodeDeleted(_) | Change::NodesReset(_) | Change::NodesRelist(_) => {
                "nodes"
            }
            Change::Log { .. } | Change::LogRestarted { .. } => "logs",
            Change::NodeFacts(_) | Change::NodeFactsDeleted(_) | Change::NodeFactsRelist(_) => "nodefacts",
        }
    }

    /// The kind of event, as a metric label.
    pub fn event(&self) -> &'static str {
        match self {
            Change::ConfigMap(_) | Change::Node(_) | Change::NodeFacts(_) => "apply",
            Change::ConfigMapDeleted(_) | Change::NodeDeleted(_) | Change::NodeFactsDeleted(_) => "delete",
            Change::ConfigMapsReset(_) | Change::NodesReset(_) => "reset",
            Change::ConfigMapsRelist(r) => r.event(),
            Change::NodesRelist(r) => r.event(),
            Change::NodeFactsRelist(r) => r.event(),
            Change::Log { .. } => "log",
            Change::LogRestarted { .. } => "log_restart",
        }
    }

    /// Unix seconds of the newest write to the object this change carries, from its managed
    /// fields (or creation time), to measure how late the bridge sees a change.
    pub fn written_at(&self) -> Option<i64> {
        let meta = match self {
            Change::ConfigMap(c) | Change::ConfigMapDeleted(c) => c.meta(),
            Change::Node(n) | Change::NodeDeleted(n) => n.meta(),
            Change::NodeFacts(f) | Change::NodeFactsDeleted(f) => f.meta(),
            _ => return None,
        };
        let managed = meta
            .managed_fields
            .iter()
            .flatten()
            .filter_map(|m| m.time.as_ref())
            .map(|t| t.0.as_second())
            .max();
        managed.or_else(|| meta.creation_timestamp.as_ref().map(|t| t.0.as_second()))
    }
}

/// Feeds one change into the index at `now` (Unix seconds).
pub fn apply(index: &mut Index, change: Change, now: i64) {
    match change {
        Change::ConfigMap(cm) => {
            index.apply_config_map(&cm, now);
        }
        Change::ConfigMapDeleted(cm) => {
            let ns = cm.metadata.namespace.as_deref().unwrap_or_default();
            let name = cm.metadata.name.as_deref().unwrap_or_default();
            index.delete_config_map(ns, name);
        }
        Change::ConfigMapsReset(cms) => index.reset_config_maps(&cms, now),
        Change::Node(node) => index.apply_node(&node, now),
        Change::NodeDeleted(node) => {
            if let Some(name) = &node.metadata.name {
                index.delete_node(name);
            }
        }
        Change::NodesReset(nodes) => index.reset_nodes(&nodes, now),
        Change::ConfigMapsRelist(Relist::Start) => index.relist_config_maps_start(),
        Change::ConfigMapsRelist(Relist::Object(cm)) => index.relist_config_map(&cm, now),
        Change::ConfigMapsRelist(Relist::Done) => index.relist_config_maps_done(),
        Change::NodesRelist(Relist::Start) => index.relist_nodes_start(),
        Change::NodesRelist(Relist::Object(node)) => index.relist_node(&node, now),
        Change::NodesRelist(Relist::Done) => index.relist_nodes_done(),
        Change::Log { node, bytes } => {
            index.feed_log(&node, &bytes, now);
        }
        Change::LogRestarted { node } => index.reset_log(&node),
        Change::NodeFacts(facts) => index.apply_node_facts(&facts),
        Change::NodeFactsDeleted(facts) => index.delete_node_facts(&facts),
        Change::NodeFactsRelist(Relist::Start) => index.relist_node_facts_start(),
        Change::NodeFactsRelist(Relist::Object(facts)) => index.apply_node_facts(&facts),
        Change::NodeFactsRelist(Relist::Done) => index.relist_node_facts_done(),
    }
}

/// Turns a kube-runtime watcher stream into changes: `Init`, `InitApply` and `InitDone` become
/// the steps of a streamed relist.
fn changes<K, S>(
    stream: S,
    apply: fn(K) -> Change,
    delete: fn(K) -> Change,
    relist: fn(Relist<K>) -> Change,
) -> impl Stream<Item = Result<Change, watcher::Error>>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    stream.map(move |event| {
        Ok(match event? {
            watcher::Event::Init => relist(Relist::Start),
            watcher::Event::InitApply(obj) => relist(Relist::Object(obj)),
            watcher::Event::InitDone => relist(Relist::Done),
            watcher::Event::Apply(obj) => apply(obj),
            watcher::Event::Delete(obj) => delete(obj),
        })
    })
}

/// Watches the ConfigMaps of the legacy namespace. Errors are yielded (for logging and metrics)
/// and the watch carries on with backoff.
pub fn watch_config_maps(
    client: Client,
    namespace: &str,
) -> impl Stream<Item = Result<Change, watcher::Error>> + Send + use<> {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    changes(
        watcher(api, list_config()).default_backoff(),
        Change::ConfigMap,
        Change::ConfigMapDeleted,
        Change::ConfigMapsRelist,
    )
}

/// Lists in pages of 100 rather than kube-runtime's 500: a page of 500 Nodes decoded at once was
/// the largest allocation of a bridge relisting a site of thousands of nodes.
fn list_config() -> watcher::Config {
    watcher::Config::default().page_size(100)
}

/// Watches every Node.
pub fn watch_nodes(client: Client) -> impl Stream<Item = Result<Change, watcher::Error>> + Send + use<> {
    let api: Api<Node> = Api::all(client);
    changes(
        watcher(api, list_config()).default_backoff(),
        |n| Change::Node(Box::new(n)),
        |n| Change::NodeDeleted(Box::new(n)),
        |r| Change::NodesRelist(r.map(Box::new)),
    )
}

/// Watches the agents' `NodeFacts` in `namespace` (the release namespace).
pub fn watch_node_facts(
    client: Client,
    namespace: &str,
) -> impl Stream<Item = Result<Change, watcher::Error>> + Send + use<> {
    let api: Api<NodeFacts> = Api::namespaced(client, namespace);
    changes(
        watcher(api, list_config()).default_backoff(),
        |f| Change::NodeFacts(Box::new(f)),
        |f| Change::NodeFactsDeleted(Box::new(f)),
        |r| Change::NodeFactsRelist(r.map(Box::new)),
    )
}

/// How long a watch may stay silent before its connection is considered stuck; the watcher's
/// own timeout is shorter, so this is only a bound for documentation and tests.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(290);

/// Errors reading an offline bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file or directory could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A manifest is not YAML or JSON of Kubernetes objects.
    #[error("{path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the position the YAML parser gives.
        message: String,
    },
}

impl BundleError {
    /// A low-cardinality label for failure metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            BundleError::Io { .. } => "io",
            BundleError::Manifest { .. } => "manifest",
        }
    }
}

/// What a bundle held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleSummary {
    /// ConfigMaps read.
    pub config_maps: usize,
    /// Nodes read.
    pub nodes: usize,
    /// Log files read, by node.
    pub logs: Vec<String>,
    /// Objects of other kinds, skipped.
    pub skipped: usize,
    /// The newest legacy timestamp seen, a sensible "now" for a bundle captured in the past.
    pub newest: Option<i64>,
}

/// Reads an offline bundle: a directory (searched recursively) of `*.yaml`, `*.yml` and `*.json`
/// files as `kubectl get … -o yaml|json` writes them (single objects or `List`s, several YAML
/// documents per file allowed), and `*.log` files holding one node's legacy log each, named
/// `<node>.log`. ConfigMaps and Nodes are taken; other kinds are counted and skipped.
pub fn read_bundle(dir: &Path) -> Result<(Vec<Change>, BundleSummary), BundleError> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut config_maps = Vec::new();
    let mut nodes = Vec::new();
    let mut logs = Vec::new();
    let mut summary = BundleSummary::default();
    for path in files {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        match ext {
            "yaml" | "yml" | "json" => {
                let text = std::fs::read_to_string(&path).map_err(|source| BundleError::Io {
                    path: path.clone(),
                    source,
                })?;
                for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                    let value =
                        serde_yaml_ng::Value::deserialize(doc).map_err(|e| BundleError::Manifest {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                    let value: serde_json::Value =
                        serde_json::to_value(&value).map_err(|e| BundleError::Manifest {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                    objects(&path, value, &mut config_maps, &mut nodes, &mut summary.skipped)?;
                }
            }
            "log" => {
                let node = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                let bytes = std::fs::read(&path).map_err(|source| BundleError::Io {
                    path: path.clone(),
                    source,
                })?;
                summary.logs.push(node.clone());
                logs.push(Change::Log { node, bytes });
            }
            _ => {}
        }
    }
    summary.config_maps = config_maps.len();
    summary.nodes = nodes.len();
    let mut changes = vec![Change::ConfigMapsReset(config_maps), Change::NodesReset(nodes)];
    changes.extend(logs);
    Ok((changes, summary))
}

use serde::Deserialize;

fn objects(
    path: &Path,
    value: serde_json::Value,
    config_maps: &mut Vec<ConfigMap>,
    nodes: &mut Vec<Node>,
    skipped: &mut usize,
) -> Result<(), BundleError> {
    if value.is_null() {
        return Ok(());
    }
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_owned();
    let bad = |e: serde_json::Error, what: &str| BundleError::Manifest {
        path: path.to_owned(),
        message: format!("{what}: {e}"),
    };
    match kind.as_str() {
        "ConfigMap" => config_maps.push(serde_json::from_value(value).map_err(|e| bad(e, "a ConfigMap"))?),
        "Node" => nodes.push(serde_json::from_value(value).map_err(|e| bad(e, "a Node"))?),
        k if k == "List" || k.ends_with("List") => {
            let items = match value.get("items") {
                Some(serde_json::Value::Array(items)) => items.clone(),
                Some(serde_json::Value::Null) | None => Vec::new(),
                Some(_) => {
                    return Err(BundleError::Manifest {
                        path: path.to_owned(),
                        message: format!("{kind}: `items` is not a list"),
                    });
                }
            };
            for item in items {
                objects(path, item, config_maps, nodes, skipped)?;
            }
        }
        "" => {
            return Err(BundleError::Manifest {
                path: path.to_owned(),
                message: "a document without `kind`".to_owned(),
            });
        }
        _ => *skipped += 1,
    }
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BundleError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BundleError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| BundleError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The newest legacy timestamp the index holds (heartbeats, last runs, log iterations).
pub fn newest_legacy_time(index: &Index) -> Option<i64> {
    index
        .nodes
        .values()
        .filter_map(crate::index::NodeEntry::heartbeat)
        .max()
}

/// Watches the legacy ConfigMaps of `legacy_namespace`, every Node and, given
/// `facts_namespace`, the agents' `NodeFacts` there, and forwards `logs`, into one channel. A watch error is passed to `on_error` (for logs and metrics); the watch carries
/// on with backoff.
pub fn start_sources(
    client: &Client,
    legacy_namespace: &str,
    facts_namespace: Option<&str>,
    logs: Option<mpsc::Receiver<Change>>,
    on_error: impl Fn(&kube::runtime::watcher::Error) + Clone + Send + Sync + 'static,
) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel::<Change>(1024);
    forward(
        watch_config_maps(client.clone(), legacy_namespace),
        tx.clone(),
        on_error.clone(),
    );
    if let Some(namespace) = facts_namespace {
        forward(
            watch_node_facts(client.clone(), namespace),
            tx.clone(),
            on_error.clone(),
        );
    }
    forward(watch_nodes(client.clone()), tx.clone(), on_error);
    if let Some(mut logs) = logs {
        tokio::spawn(async move {
            while let Some(c) = logs.recv().await {
                if tx.send(c).await.is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn forward(
    stream: impl futures::Stream<Item = Result<Change, kube::runtime::watcher::Error>> + Send + 'static,
    tx: mpsc::Sender<Change>,
    on_error: impl Fn(&kube::runtime::watcher::Error) + Send + Sync + 'static,
) {
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(change) => {
                    if tx.send(change).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    on_error(&e);
                    tracing::warn!(error = %e, "watch failed; retrying with backoff");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::LegacyNames;

    #[test]
    fn a_bundle_of_kubectl_lists_and_logs_fills_the_index() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("configmaps.yaml"),
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: vx-rail-node-edge-1\n    namespace: kube-system\n  data:\n    heartbeat: \"2024-05-01T10:05:02Z\"\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: coredns\n    namespace: kube-system\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(
            dir.path().join("nodes/edge-1.json"),
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"edge-1","labels":{"vx-rail.io/role":"primary"}}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("pods.yaml"), "kind: Pod\nmetadata:\n  name: x\n").unwrap();
        std::fs::write(
            dir.path().join("edge-1.log"),
            "ts=2024-05-01T10:06:02Z level=info node=edge-1 component=main msg=\"iteration finished\" outcome=ok step=finished rc=0 duration=5\n",
        )
        .unwrap();
        let (changes, summary) = read_bundle(dir.path()).unwrap();
        assert_eq!((summary.config_maps, summary.nodes, summary.skipped), (2, 1, 1));
        assert_eq!(summary.logs, ["edge-1"]);
        let mut index = Index::new(LegacyNames::default());
        for c in changes {
            apply(&mut index, c, 0);
        }
        let e = &index.nodes["edge-1"];
        assert!(e.object.is_some() && e.config_map.is_some() && e.log.is_some());
        assert_eq!(newest_legacy_time(&index), Some(1_714_557_962));
    }

    fn cm(name: &str) -> ConfigMap {
        crate::index::tests::config_map(name, &[("heartbeat", "2024-05-01T10:05:02Z")])
    }

    #[tokio::test]
    async fn a_relist_streams_object_by_object_and_forgets_what_was_deleted_unseen() {
        // What kube-runtime's watcher yields when a watch resumes from a too-old resourceVersion
        // (410 Gone) or after the API server restarts: the list again, framed by Init/InitDone.
        let events = vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(cm("vx-rail-node-a"))),
            Ok(watcher::Event::InitApply(cm("vx-rail-node-b"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(cm("vx-rail-node-c"))),
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(cm("vx-rail-node-a"))),
            Ok(watcher::Event::InitDone),
        ];
        let out: Vec<Change> = changes(
            futures::stream::iter(events),
            Change::ConfigMap,
            Change::ConfigMapDeleted,
            Change::ConfigMapsRelist,
        )
        .map(|c| c.unwrap())
        .collect()
        .await;
        let kinds: Vec<&str> = out.iter().map(Change::event).collect();
        assert_eq!(
            kinds,
            [
                "relist_start",
                "relist",
                "relist",
                "reset",
                "apply",
                "relist_start",
                "relist",
                "reset"
            ]
        );
        let complete: Vec<bool> = out.iter().map(Change::completes_list).collect();
        assert_eq!(complete, [false, false, false, true, false, false, false, true]);
        let mut index = Index::new(LegacyNames::default());
        for c in out {
            apply(&mut index, c, 0);
        }
        assert_eq!(
            index.nodes.keys().collect::<Vec<_>>(),
            ["a"],
            "b and c went while unseen"
        );
    }

    #[test]
    fn a_relist_that_starts_over_before_it_is_done_keeps_only_what_the_last_one_listed() {
        // A watch that fails in the middle of its list lists again from the start.
        let mut index = Index::new(LegacyNames::default());
        for change in [
            Change::ConfigMapsRelist(Relist::Start),
            Change::ConfigMapsRelist(Relist::Object(cm("vx-rail-node-a"))),
            Change::ConfigMapsRelist(Relist::Start),
            Change::ConfigMapsRelist(Relist::Object(cm("vx-rail-node-b"))),
            Change::ConfigMapsRelist(Relist::Done),
        ] {
            apply(&mut index, change, 0);
        }
        assert_eq!(index.nodes.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn a_streamed_relist_and_a_reset_of_the_same_list_leave_the_same_index() {
        let node = |name: &str| crate::index::tests::node(name, &[("vx-rail.io/state", "ready")], &[]);
        let start = |index: &mut Index| {
            apply(index, Change::Node(Box::new(node("gone"))), 0);
            apply(index, Change::ConfigMap(cm("vx-rail-node-gone")), 0);
        };
        let mut streamed = Index::new(LegacyNames::default());
        start(&mut streamed);
        let mut reset = Index::new(LegacyNames::default());
        start(&mut reset);
        for change in [
            Change::NodesRelist(Relist::Start),
            Change::NodesRelist(Relist::Object(Box::new(node("edge-1")))),
            Change::NodesRelist(Relist::Done),
            Change::ConfigMapsRelist(Relist::Start),
            Change::ConfigMapsRelist(Relist::Object(cm("vx-rail-node-edge-1"))),
            Change::ConfigMapsRelist(Relist::Done),
        ] {
            apply(&mut streamed, change, 0);
        }
        apply(&mut reset, Change::NodesReset(vec![node("edge-1")]), 0);
        apply(
            &mut reset,
            Change::ConfigMapsReset(vec![cm("vx-rail-node-edge-1")]),
            0,
        );
        assert_eq!(streamed.nodes.keys().collect::<Vec<_>>(), ["edge-1"]);
        assert_eq!(format!("{:?}", streamed.nodes), format!("{:?}", reset.nodes));
        assert_eq!(streamed.stats.resets, reset.stats.resets);
    }

    #[tokio::test]
    async fn a_watch_error_is_passed_on_and_the_stream_goes_on() {
        let events = vec![
            Err(watcher::Error::NoResourceVersion),
            Ok(watcher::Event::Apply(cm("vx-rail-node-a"))),
        ];
        let out: Vec<Result<Change, watcher::Error>> = changes(
            futures::stream::iter(events),
            Change::ConfigMap,
            Change::ConfigMapDeleted,
            Change::ConfigMapsRelist,
        )
        .collect()
        .await;
        assert!(out[0].is_err());
        assert!(matches!(out[1], Ok(Change::ConfigMap(_))));
    }

    #[test]
    fn a_malformed_manifest_names_the_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "kind: ConfigMap\nmetadata: [unclosed\n",
        )
        .unwrap();
        let err = read_bundle(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bad.yaml"), "{err}");
        assert!(err.contains("line"), "{err}");
    }
}
