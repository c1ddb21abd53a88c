//! The UI's index of what it watches: EdgeClusters, EdgeNodes, StorageUpgrades, Migrations and the
//! legacy ConfigMaps that carry the takeover and each script's acknowledgement. Fed by watches
//! through `apply` / `delete` / `reset`; no I/O, tested without an API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use nodewright_api::{EdgeCluster, EdgeNode, Migration, StorageUpgrade};

/// `(namespace, name)`: how every object is keyed.
pub type Key = (String, String);

/// The key of `obj`.
pub fn key_of<K: ResourceExt>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// One kind's objects, by key.
#[derive(Clone, Debug)]
pub struct Objects<K> {
    /// The objects, ordered by namespace then name.
    pub items: BTreeMap<Key, K>,
}

impl<K> Default for Objects<K> {
    fn default() -> Self {
        Objects {
            items: BTreeMap::new(),
        }
    }
}

impl<K: ResourceExt> Objects<K> {
    /// Adds or replaces `obj`.
    pub fn apply(&mut self, obj: K) {
        self.items.insert(key_of(&obj), obj);
    }

    /// Removes `obj`.
    pub fn delete(&mut self, obj: &K) {
        self.items.remove(&key_of(obj));
    }

    /// Replaces everything with `objs` (a watch's relist).
    pub fn reset(&mut self, objs: Vec<K>) {
        self.items = objs.into_iter().map(|o| (key_of(&o), o)).collect();
    }

    /// The object at `namespace`/`name`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<&K> {
        self.items.get(&(namespace.to_owned(), name.to_owned()))
    }
}

/// Everything the UI shows.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// The sites.
    pub clusters: Objects<EdgeCluster>,
    /// Their nodes.
    pub nodes: Objects<EdgeNode>,
    /// Storage upgrades.
    pub upgrades: Objects<StorageUpgrade>,
    /// Migrations.
    pub migrations: Objects<Migration>,
    /// The legacy namespaces' takeover and node ConfigMaps (others are not kept).
    pub config_maps: Objects<ConfigMap>,
    /// Each node's DRBD resync progress as the watch saw it change, oldest first (at most
    /// [`RESYNC_SAMPLES`] a node): the EdgeNode carries only the current percentage.
    pub resync: BTreeMap<Key, Vec<ResyncSample>>,
}

/// The most resync samples kept for one node.
pub const RESYNC_SAMPLES: usize = 600;

/// One resync percentage seen on a node.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ResyncSample {
    /// When the watch saw it, Unix milliseconds.
    pub at: i64,
    /// The DRBD resource.
    pub resource: String,
    /// The peer it resyncs with.
    pub peer: String,
    /// Percent done.
    pub percent: i32,
}

/// Whether the UI keeps `cm`: the takeover ConfigMap and the node ConfigMaps, where each script
/// acknowledges the takeover generation it read. Other ConfigMaps of the legacy namespace are not
/// the UI's business.
pub fn keeps_config_map(cm: &ConfigMap) -> bool {
    let name = cm.name_any();
    name == nodewright_parsers::contract::TAKEOVER
        || name.starts_with(nodewright_parsers::contract::NODE_CONFIG_MAP_PREFIX)
}

impl Store {
    /// Records the resync percentages of `node` seen at `at` (Unix milliseconds): one sample per
    /// resource and peer whose percentage changed since the last one kept; the oldest go first
    /// beyond [`RESYNC_SAMPLES`].
    pub fn record_resync(&mut self, node: &EdgeNode, at: i64) {
        let Some(status) = &node.status else {
            return;
        };
        let samples = self.resync.entry(key_of(node)).or_default();
        for r in &status.drbd_resources {
            for p in &r.peers {
                let Some(percent) = p.sync_percent else {
                    continue;
                };
                let last = samples
                    .iter()
                    .rev()
                    .find(|s| s.resource == r.name && s.peer == p.node);
                if last.is_some_and(|s| s.percent == percent) {
                    continue;
                }
                samples.push(ResyncSample {
                    at,
                    resource: r.name.clone(),
                    peer: p.node.clone(),
                    percent,
                });
            }
        }
        if samples.len() > RESYNC_SAMPLES {
            let extra = samples.len() - RESYNC_SAMPLES;
            samples.drain(..extra);
        }
        if samples.is_empty() {
            self.resync.remove(&key_of(node));
        }
    }

    /// The generation the script on `node` acknowledged, from its node ConfigMap in `namespace`.
    pub fn acknowledged(&self, namespace: &str, node: &str) -> Option<u64> {
        use nodewright_parsers::contract::{node_config_map, node_key};
        self.config_maps
            .get(namespace, &node_config_map(node))
            .and_then(|cm| cm.data.as_ref())
            .and_then(|d| d.get(node_key::TAKEOVER_GENERATION))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The generation of the takeover ConfigMap in `namespace`.
    pub fn takeover_generation(&self, namespace: &str) -> Option<u64> {
        use nodewright_parsers::contract::{TAKEOVER, takeover_key};
        self.config_maps
            .get(namespace, TAKEOVER)
            .and_then(|cm| cm.data.as_ref())
            .and_then(|d| d.get(takeover_key::GENERATION))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The site `node` belongs to: its `clusterRef` in its namespace, or, without one, the only
    /// site of its namespace.
    pub fn cluster_of(&self, node: &EdgeNode) -> Option<Key> {
        let ns = node.namespace().unwrap_or_default();
        if let Some(r) = &node.spec.cluster_ref {
            return Some((ns, r.name.clone()));
        }
        let mut in_ns = self.clusters.items.keys().filter(|(n, _)| *n == ns);
        match (in_ns.next(), in_ns.next()) {
            (Some(k), None) => Some(k.clone()),
            _ => None,
        }
    }
}

/// Made-up sites for tests, benchmarks and screenshots: one EdgeCluster and `nodes` EdgeNodes in
/// varied states, deterministic.
pub mod fixture {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;
    use kube::api::ObjectMeta;
    use nodewright_api::common::{ClusterRef, condition_type};
    use nodewright_api::edgecluster::{EdgeClusterSpec, LegacySource, SiteProfile, Topology, WorkflowModes};
    use nodewright_api::edgenode::{EdgeNodeSpec, EdgeNodeStatus, LegacyRun};
    use nodewright_api::{EdgeCluster, EdgeNode};

    use super::Store;

    /// The namespace of the fixture's objects.
    pub const NAMESPACE: &str = "nodewright-system";

    fn time(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    fn condition(kind: &str, status: bool, reason: &str, at: i64) -> Condition {
        Condition {
            type_: kind.to_owned(),
            status: if status { "True" } else { "False" }.to_owned(),
            reason: reason.to_owned(),
            message: String::new(),
            last_transition_time: time(at),
            observed_generation: Some(1),
        }
    }

    /// An EdgeCluster named `name`.
    pub fn cluster(name: &str) -> EdgeCluster {
        let mut c = EdgeCluster::new(
            name,
            EdgeClusterSpec {
                profile: SiteProfile {
                    topology: Topology::MultiNode,
                    storage_backend: Default::default(),
                    operating_system: None,
                },
                expected_nodes: None,
                primary_node: None,
                workflows: WorkflowModes::default(),
                legacy: LegacySource::default(),
            },
        );
        c.metadata.namespace = Some(NAMESPACE.to_owned());
        c
    }

    /// EdgeNode `edge-<i>` of site `cluster`: every seventh has degraded storage, every eleventh
    /// a degraded network, the others are ready.
    pub fn node(cluster: &str, i: usize) -> EdgeNode {
        let name = format!("edge-{i}");
        let network = i.is_multiple_of(11);
        let storage = i.is_multiple_of(7);
        let at = 1_780_000_000 + i as i64;
        EdgeNode {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(NAMESPACE.to_owned()),
                ..Default::default()
            },
            spec: EdgeNodeSpec {
                node_name: name,
                cluster_ref: Some(ClusterRef {
                    name: cluster.to_owned(),
                }),
                host: None,
            },
            status: Some(EdgeNodeStatus {
                observed_generation: Some(1),
                conditions: vec![
                    condition(condition_type::READY, !(network || storage), "Observed", at),
                    condition(
                        condition_type::NETWORK_DEGRADED,
                        network,
                        if network { "BondDown" } else { "AllLinksUp" },
                        at,
                    ),
                    condition(
                        condition_type::STORAGE_DEGRADED,
                        storage,
                        if storage { "DiskFailed" } else { "AllUpToDate" },
                        at,
                    ),
                ],
                last_legacy_run: Some(LegacyRun {
                    time: time(at),
                    script_version: Some("2.4.1".to_owned()),
                    outcome: Some("ok".to_owned()),
                }),
                ..Default::default()
            }),
        }
    }

    /// One site of `nodes` nodes.
    pub fn site(nodes: usize) -> Store {
        let mut store = Store::default();
        store.clusters.apply(cluster("site-a"));
        for i in 0..nodes {
            store.nodes.apply(node("site-a", i));
        }
        store
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn syncing(percent: Option<i32>) -> EdgeNode {
        use nodewright_api::edgenode::{DrbdPeerStatus, DrbdResourceStatus};
        let mut node = fixture::node("site-a", 1);
        let status = node.status.get_or_insert_with(Default::default);
        status.drbd_resources = vec![DrbdResourceStatus {
            name: "r0".into(),
            role: "Primary".into(),
            disk_state: "UpToDate".into(),
            quorum: None,
            suspended: false,
            peers: vec![DrbdPeerStatus {
                node: "edge-2".into(),
                connection: "Connected".into(),
                role: "Secondary".into(),
                peer_disk: "Inconsistent".into(),
                replication: "SyncSource".into(),
                sync_percent: percent,
            }],
        }];
        node
    }

    #[test]
    fn resync_progress_is_kept_as_it_changes_bounded_and_only_while_a_resync_shows() {
        let mut store = Store::default();
        let key = key_of(&syncing(None));
        store.record_resync(&syncing(None), 0);
        assert!(!store.resync.contains_key(&key), "no resync, no samples");
        store.record_resync(&syncing(Some(10)), 1_000);
        store.record_resync(&syncing(Some(10)), 2_000);
        store.record_resync(&syncing(Some(40)), 3_000);
        let got: Vec<(i64, i32)> = store.resync[&key].iter().map(|s| (s.at, s.percent)).collect();
        assert_eq!(
            got,
            [(1_000, 10), (3_000, 40)],
            "an unchanged percentage adds nothing"
        );
        assert_eq!(store.resync[&key][0].peer, "edge-2");
        for i in 0..(RESYNC_SAMPLES as i64 + 5) {
            store.record_resync(&syncing(Some(i32::try_from(i % 2).unwrap())), 10_000 + i);
        }
        assert_eq!(store.resync[&key].len(), RESYNC_SAMPLES);
        assert_eq!(
            store.resync[&key].last().unwrap().at,
            10_000 + RESYNC_SAMPLES as i64 + 4
        );
    }

    #[test]
    fn apply_replaces_delete_removes_and_reset_starts_over() {
        let mut store = Store::default();
        store.nodes.apply(fixture::node("site-a", 1));
        store.nodes.apply(fixture::node("site-a", 1));
        store.nodes.apply(fixture::node("site-a", 2));
        assert_eq!(store.nodes.items.len(), 2);
        store.nodes.delete(&fixture::node("site-a", 1));
        assert!(store.nodes.get(fixture::NAMESPACE, "edge-1").is_none());
        store.nodes.reset(vec![fixture::node("site-a", 7)]);
        let names: Vec<_> = store.nodes.items.keys().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["edge-7"]);
    }

    #[test]
    fn only_the_takeover_and_node_config_maps_are_kept() {
        let cm = |name: &str| ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(keeps_config_map(&cm("nodewright-takeover")));
        assert!(keeps_config_map(&cm("vx-rail-node-edge-1")));
        assert!(!keeps_config_map(&cm("vx-rail-cluster-state")));
        assert!(!keeps_config_map(&cm("kube-root-ca.crt")));
    }
}
