//! What each page shows, computed from the [`Store`] alone: the sites with their roll-up and a
//! filtered, sorted page of their nodes; one node; the workflows; the takeover. Pure: the server
//! serialises these, the benchmark times them, the tests check them without an API server.

use std::cmp::Ordering;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use nodewright_api::common::condition_type;
use nodewright_api::storageupgrade::UpgradeState;
use nodewright_api::{EdgeCluster, EdgeNode, Migration, StorageUpgrade, WorkflowMode};
use nodewright_parsers::contract::takeover_key;
use serde::{Deserialize, Serialize};

use crate::store::{Key, Store};

/// The one word a node's conditions come down to, for counting, filtering and sorting.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    /// Network degraded (a bond or VLAN down).
    NetworkDegraded,
    /// Storage degraded (DRBD or LINSTOR).
    StorageDegraded,
    /// Not ready for another reason.
    NotReady,
    /// The legacy script has not reported for too long.
    Stale,
    /// A storage upgrade is running on it.
    Upgrading,
    /// Healthy.
    Ready,
    /// No status yet.
    Unknown,
}

impl NodeState {
    /// Every state, worst first.
    pub const ALL: [NodeState; 7] = [
        NodeState::NetworkDegraded,
        NodeState::StorageDegraded,
        NodeState::NotReady,
        NodeState::Stale,
        NodeState::Upgrading,
        NodeState::Ready,
        NodeState::Unknown,
    ];

    /// Its name, as in JSON and in the URL.
    pub fn name(self) -> &'static str {
        match self {
            NodeState::NetworkDegraded => "NetworkDegraded",
            NodeState::StorageDegraded => "StorageDegraded",
            NodeState::NotReady => "NotReady",
            NodeState::Stale => "Stale",
            NodeState::Upgrading => "Upgrading",
            NodeState::Ready => "Ready",
            NodeState::Unknown => "Unknown",
        }
    }

    /// The state named `name`.
    pub fn from_name(name: &str) -> Option<NodeState> {
        NodeState::ALL.into_iter().find(|s| s.name() == name)
    }
}

fn is_true(conditions: &[Condition], kind: &str) -> Option<bool> {
    conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status == "True")
}

fn reason(conditions: &[Condition], kind: &str) -> Option<String> {
    conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.reason.clone())
}

/// The state of `node`: a degradation first, then staleness and upgrades, then readiness.
pub fn node_state(node: &EdgeNode) -> NodeState {
    let Some(status) = &node.status else {
        return NodeState::Unknown;
    };
    let c = &status.conditions;
    if is_true(c, condition_type::NETWORK_DEGRADED) == Some(true) {
        NodeState::NetworkDegraded
    } else if is_true(c, condition_type::STORAGE_DEGRADED) == Some(true) {
        NodeState::StorageDegraded
    } else if is_true(c, condition_type::LEGACY_STALE) == Some(true) {
        NodeState::Stale
    } else if is_true(c, condition_type::UPGRADE_IN_PROGRESS) == Some(true) {
        NodeState::Upgrading
    } else {
        match is_true(c, condition_type::READY) {
            Some(true) => NodeState::Ready,
            Some(false) => NodeState::NotReady,
            None => NodeState::Unknown,
        }
    }
}

/// One site in the Sites view.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SiteRow {
    /// Namespace of the EdgeCluster.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Topology of its profile.
    pub topology: String,
    /// Its health conditions.
    pub conditions: Vec<Condition>,
    /// Legacy script version seen.
    pub legacy_version: Option<String>,
    /// Last legacy heartbeat.
    pub last_legacy_heartbeat: Option<Time>,
    /// Its EdgeNodes, counted by state (every state, zeros included, worst first).
    pub states: Vec<(NodeState, usize)>,
    /// How many EdgeNodes it has.
    pub nodes: usize,
}

/// A page request of the node list.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct NodeQuery {
    /// Only this site (`namespace/name`).
    pub site: Option<String>,
    /// Only nodes in this state.
    pub state: Option<String>,
    /// Only nodes whose name contains this.
    pub q: Option<String>,
    /// Sort by `name` (default), `state`, `site` or `lastRun`.
    pub sort: Option<String>,
    /// `desc` for descending.
    pub dir: Option<String>,
    /// 1-based page.
    pub page: Option<usize>,
    /// Rows per page (default 50, at most 500).
    pub per: Option<usize>,
}

/// One node in the Sites view's list.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    /// Namespace of the EdgeNode.
    pub namespace: String,
    /// Name of the EdgeNode.
    pub name: String,
    /// The Kubernetes Node.
    pub node_name: String,
    /// `namespace/name` of its site, if known.
    pub site: Option<String>,
    /// Its state.
    pub state: NodeState,
    /// Reason of its NetworkDegraded condition.
    pub network: Option<String>,
    /// Reason of its StorageDegraded condition.
    pub storage: Option<String>,
    /// When the legacy script last ran on it.
    pub last_run: Option<Time>,
}

/// A page of nodes.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct NodePage {
    /// Nodes matching the filter.
    pub total: usize,
    /// This page (1-based, clamped to the pages there are).
    pub page: usize,
    /// Rows per page.
    pub per: usize,
    /// Number of pages (at least 1).
    pub pages: usize,
    /// The rows.
    pub items: Vec<NodeRow>,
}

/// The Sites view: every site and one page of nodes.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SitesView {
    /// The sites.
    pub sites: Vec<SiteRow>,
    /// The requested page of nodes.
    pub nodes: NodePage,
}

/// A query that cannot be answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    /// An unknown `state`.
    #[error(
        "state {0:?} is not one of NetworkDegraded, StorageDegraded, NotReady, Stale, Upgrading, Ready, Unknown"
    )]
    State(String),
    /// An unknown `sort`.
    #[error("sort {0:?} is not one of name, state, site, lastRun")]
    Sort(String),
    /// An unknown `dir`.
    #[error("dir {0:?} is not asc or desc")]
    Dir(String),
}

fn site_key(key: &Key) -> String {
    format!("{}/{}", key.0, key.1)
}

fn site_row(key: &Key, cluster: &EdgeCluster, counts: &[usize; 7]) -> SiteRow {
    let status = cluster.status.clone().unwrap_or_default();
    SiteRow {
        namespace: key.0.clone(),
        name: key.1.clone(),
        topology: format!("{:?}", cluster.spec.profile.topology),
        conditions: status.conditions,
        legacy_version: status.legacy_version,
        last_legacy_heartbeat: status.last_legacy_heartbeat,
        states: NodeState::ALL.into_iter().zip(counts.iter().copied()).collect(),
        nodes: counts.iter().sum(),
    }
}

fn node_row(store: &Store, node: &EdgeNode) -> NodeRow {
    let status = node.status.as_ref();
    let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
    NodeRow {
        namespace: node.namespace().unwrap_or_default(),
        name: node.name_any(),
        node_name: node.spec.node_name.clone(),
        site: store.cluster_of(node).map(|k| site_key(&k)),
        state: node_state(node),
        network: reason(conditions, condition_type::NETWORK_DEGRADED),
        storage: reason(conditions, condition_type::STORAGE_DEGRADED),
        last_run: status
            .and_then(|s| s.last_legacy_run.as_ref())
            .map(|r| r.time.clone()),
    }
}

/// The Sites view for `query`.
pub fn sites(store: &Store, query: &NodeQuery) -> Result<SitesView, QueryError> {
    let state = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(NodeState::from_name(s).ok_or_else(|| QueryError::State(s.to_owned()))?),
        None => None,
    };
    let sort = query.sort.as_deref().filter(|s| !s.is_empty()).unwrap_or("name");
    if !matches!(sort, "name" | "state" | "site" | "lastRun") {
        return Err(QueryError::Sort(sort.to_owned()));
    }
    let desc = match query.dir.as_deref().filter(|s| !s.is_empty()) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(QueryError::Dir(other.to_owned())),
    };
    let needle = query.q.as_deref().map(str::to_lowercase).unwrap_or_default();
    let site = query.site.as_deref().filter(|s| !s.is_empty());

    let mut counts: std::collections::BTreeMap<&Key, [usize; 7]> =
        store.clusters.items.keys().map(|k| (k, [0; 7])).collect();
    let mut rows = Vec::new();
    for node in store.nodes.items.values() {
        let row = node_row(store, node);
        if let Some(key) = store.cluster_of(node)
            && let Some(c) = counts.get_mut(&key)
            && let Some(i) = NodeState::ALL.iter().position(|s| *s == row.state)
        {
            c[i] += 1;
        }
        let keep = state.is_none_or(|s| s == row.state)
            && site.is_none_or(|s| row.site.as_deref() == Some(s))
            && (needle.is_empty()
                || row.name.to_lowercase().contains(&needle)
                || row.node_name.to_lowercase().contains(&needle));
        if keep {
            rows.push(row);
        }
    }
    let by_name = |a: &NodeRow, b: &NodeRow| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name));
    let order = |a: &NodeRow, b: &NodeRow| -> Ordering {
        let primary = match sort {
            "state" => a.state.cmp(&b.state),
            "site" => a.site.cmp(&b.site),
            "lastRun" => a
                .last_run
                .as_ref()
                .map(|t| t.0)
                .cmp(&b.last_run.as_ref().map(|t| t.0)),
            _ => Ordering::Equal,
        };
        let o = primary.then_with(|| by_name(a, b));
        if desc { o.reverse() } else { o }
    };
    rows.sort_by(order);
    let per = query.per.unwrap_or(50).clamp(1, 500);
    let total = rows.len();
    let pages = total.div_ceil(per).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let items: Vec<NodeRow> = rows.into_iter().skip((page - 1) * per).take(per).collect();
    let sites = store
        .clusters
        .items
        .iter()
        .map(|(k, c)| site_row(k, c, counts.get(k).unwrap_or(&[0; 7])))
        .collect();
    Ok(SitesView {
        sites,
        nodes: NodePage {
            total,
            page,
            per,
            pages,
            items,
        },
    })
}

/// One storage upgrade's step at one node, as the Node view shows it.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct NodeUpgrade {
    /// The StorageUpgrade.
    pub name: String,
    /// The node's state in it.
    pub state: UpgradeState,
    /// Since when.
    pub since: Option<Time>,
}

/// The Node view.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// The EdgeNode as the bridge wrote it.
    pub node: EdgeNode,
    /// Its state.
    pub state: NodeState,
    /// `namespace/name` of its site.
    pub site: Option<String>,
    /// The storage upgrades it takes part in.
    pub upgrades: Vec<NodeUpgrade>,
    /// Its DRBD resync progress over time, as the UI saw it change (oldest first).
    pub resync: Vec<crate::store::ResyncSample>,
}

/// The Node view of `namespace`/`name`, if it exists.
pub fn node(store: &Store, namespace: &str, name: &str) -> Option<NodeView> {
    let node = store.nodes.get(namespace, name)?;
    let upgrades = store
        .upgrades
        .items
        .iter()
        .filter(|((ns, _), _)| ns == namespace)
        .filter_map(|((_, n), u)| {
            let s = u.status.as_ref()?;
            let at = s.nodes.iter().find(|x| x.node == node.spec.node_name)?;
            Some(NodeUpgrade {
                name: n.clone(),
                state: at.state,
                since: at.since.clone(),
            })
        })
        .collect();
    Some(NodeView {
        node: node.clone(),
        state: node_state(node),
        site: store.cluster_of(node).map(|k| site_key(&k)),
        upgrades,
        resync: store
            .resync
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default(),
    })
}

/// The Workflows view.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowsView {
    /// The 21 states of a storage upgrade, in order: the grid's columns.
    pub states: Vec<UpgradeState>,
    /// Storage upgrades.
    pub upgrades: Vec<StorageUpgrade>,
    /// Migrations.
    pub migrations: Vec<Migration>,
}

/// The Workflows view.
pub fn workflows(store: &Store) -> WorkflowsView {
    WorkflowsView {
        states: UpgradeState::ALL.to_vec(),
        upgrades: store.upgrades.items.values().cloned().collect(),
        migrations: store.migrations.items.values().cloned().collect(),
    }
}

/// One workflow's mode at one site.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRow {
    /// Its takeover key.
    pub workflow: String,
    /// The mode the EdgeCluster asks for.
    pub requested: WorkflowMode,
    /// The mode in effect, as the operator reports it.
    pub effective: Option<WorkflowMode>,
    /// Whether every script acknowledged it.
    pub acknowledged: Option<bool>,
    /// Why it is not (yet) in effect.
    pub message: Option<String>,
    /// Divergences recorded in shadow mode.
    pub divergences: i64,
}

/// One node's acknowledgement of the takeover.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct AckRow {
    /// The Kubernetes Node.
    pub node: String,
    /// The generation its script acknowledged.
    pub acknowledged: Option<u64>,
    /// Whether that is the current generation (or later).
    pub current: bool,
}

/// One site in the Takeover view.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TakeoverSite {
    /// Namespace of the EdgeCluster.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The takeover generation the operator projected (from status, else the ConfigMap).
    pub generation: Option<i64>,
    /// Each workflow's mode.
    pub workflows: Vec<WorkflowRow>,
    /// Each node's acknowledgement.
    pub nodes: Vec<AckRow>,
    /// The shadow divergences, newest last, with the facts behind each.
    pub divergences: Vec<nodewright_api::edgecluster::Divergence>,
}

/// The Takeover view.
pub fn takeover(store: &Store) -> Vec<TakeoverSite> {
    store
        .clusters
        .items
        .iter()
        .map(|(key, cluster)| {
            let status = cluster.status.clone().unwrap_or_default();
            let legacy_ns = &cluster.spec.legacy.namespace;
            let generation = status
                .takeover
                .as_ref()
                .map(|t| t.generation)
                .or_else(|| store.takeover_generation(legacy_ns).map(|g| g as i64));
            let m = &cluster.spec.workflows;
            let requested = [
                (takeover_key::BOOTSTRAP, m.bootstrap),
                (takeover_key::MIGRATION, m.migration),
                (takeover_key::STORAGE_UPGRADE, m.storage_upgrade),
                (takeover_key::BOND_FLIP, m.bond_flip),
                (takeover_key::TAINTS, m.taints),
                (takeover_key::BOOT_RECOVERY, m.boot_recovery),
                (takeover_key::NETWORK, m.network),
                (takeover_key::STORAGE, m.storage),
            ];
            let workflows = requested
                .into_iter()
                .map(|(w, requested)| {
                    let t = status
                        .takeover
                        .as_ref()
                        .and_then(|t| t.workflows.iter().find(|x| x.workflow == w));
                    WorkflowRow {
                        workflow: w.to_owned(),
                        requested,
                        effective: t.map(|t| t.effective),
                        acknowledged: t.map(|t| t.acknowledged),
                        message: t.and_then(|t| t.message.clone()),
                        divergences: t.map(|t| t.divergences).unwrap_or(0),
                    }
                })
                .collect();
            let nodes = store
                .nodes
                .items
                .values()
                .filter(|n| store.cluster_of(n).as_ref() == Some(key))
                .map(|n| {
                    let acknowledged = store.acknowledged(legacy_ns, &n.spec.node_name);
                    AckRow {
                        node: n.spec.node_name.clone(),
                        acknowledged,
                        current: match (acknowledged, generation) {
                            (Some(a), Some(g)) => a as i64 >= g,
                            (_, None) | (_, Some(0)) => true,
                            (None, Some(_)) => false,
                        },
                    }
                })
                .collect();
            TakeoverSite {
                namespace: key.0.clone(),
                name: key.1.clone(),
                generation,
                workflows,
                nodes,
                divergences: status.divergences,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::fixture;

    fn query(f: impl FnOnce(&mut NodeQuery)) -> NodeQuery {
        let mut q = NodeQuery::default();
        f(&mut q);
        q
    }

    #[test]
    fn a_node_is_counted_in_its_worst_state() {
        let store = fixture::site(100);
        let view = sites(&store, &NodeQuery::default()).unwrap();
        let counts: std::collections::BTreeMap<_, _> = view.sites[0].states.iter().copied().collect();
        // Multiples of 11 (network) take precedence over multiples of 7 (storage): 0 and 77 are both.
        assert_eq!(counts[&NodeState::NetworkDegraded], 10);
        assert_eq!(counts[&NodeState::StorageDegraded], 15 - 2);
        assert_eq!(counts[&NodeState::Ready], 100 - 10 - 13);
        assert_eq!(view.sites[0].nodes, 100);
    }

    #[test]
    fn the_node_list_is_paged_and_the_page_is_clamped_to_the_last() {
        let store = fixture::site(120);
        let view = sites(&store, &query(|q| q.per = Some(50))).unwrap();
        assert_eq!(
            (view.nodes.total, view.nodes.pages, view.nodes.items.len()),
            (120, 3, 50)
        );
        let last = sites(&store, &query(|q| q.page = Some(9))).unwrap();
        assert_eq!((last.nodes.page, last.nodes.items.len()), (3, 20));
    }

    #[test]
    fn the_node_list_filters_by_state_and_name_and_sorts_either_way() {
        let store = fixture::site(100);
        let view = sites(
            &store,
            &query(|q| {
                q.state = Some("StorageDegraded".into());
                q.q = Some("EDGE-4".into());
            }),
        )
        .unwrap();
        let names: Vec<_> = view.nodes.items.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["edge-42", "edge-49"]);
        let view = sites(
            &store,
            &query(|q| {
                q.sort = Some("lastRun".into());
                q.dir = Some("desc".into());
            }),
        )
        .unwrap();
        assert_eq!(view.nodes.items[0].name, "edge-99", "the latest run first");
    }

    #[test]
    fn an_unknown_state_sort_or_direction_is_a_clear_error() {
        let store = fixture::site(1);
        assert_eq!(
            sites(&store, &query(|q| q.state = Some("Sad".into()))).unwrap_err(),
            QueryError::State("Sad".into())
        );
        assert_eq!(
            sites(&store, &query(|q| q.sort = Some("age".into()))).unwrap_err(),
            QueryError::Sort("age".into())
        );
        assert_eq!(
            sites(&store, &query(|q| q.dir = Some("up".into()))).unwrap_err(),
            QueryError::Dir("up".into())
        );
    }

    #[test]
    fn a_node_without_status_is_unknown_and_without_a_site_reference_joins_the_only_site_of_its_namespace() {
        let mut store = fixture::site(0);
        let mut node = fixture::node("site-a", 1);
        node.status = None;
        node.spec.cluster_ref = None;
        store.nodes.apply(node);
        let view = sites(&store, &NodeQuery::default()).unwrap();
        assert_eq!(view.nodes.items[0].state, NodeState::Unknown);
        assert_eq!(
            view.nodes.items[0].site.as_deref(),
            Some("nodewright-system/site-a")
        );
        store.clusters.apply(fixture::cluster("site-b"));
        let view = sites(&store, &NodeQuery::default()).unwrap();
        assert_eq!(
            view.nodes.items[0].site, None,
            "two sites: which one is not guessed"
        );
    }

    #[test]
    fn the_takeover_shows_each_nodes_acknowledgement_against_the_generation() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let mut store = fixture::site(2);
        let cm = |name: &str, key: &str, value: &str| ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("kube-system".into()),
                ..Default::default()
            },
            data: Some([(key.to_owned(), value.to_owned())].into()),
            ..Default::default()
        };
        store
            .config_maps
            .apply(cm("nodewright-takeover", "generation", "5"));
        store
            .config_maps
            .apply(cm("vx-rail-node-edge-0", "takeover-generation", "5"));
        store
            .config_maps
            .apply(cm("vx-rail-node-edge-1", "takeover-generation", "4"));
        let view = takeover(&store);
        assert_eq!(view[0].generation, Some(5));
        let acks: Vec<_> = view[0]
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.acknowledged, n.current))
            .collect();
        assert_eq!(acks, [("edge-0", Some(5), true), ("edge-1", Some(4), false)]);
        assert_eq!(view[0].workflows.len(), 8);
    }

    #[test]
    fn a_missing_node_is_none_and_a_present_one_carries_its_site() {
        let store = fixture::site(3);
        assert!(node(&store, "nodewright-system", "edge-9").is_none());
        let view = node(&store, "nodewright-system", "edge-2").unwrap();
        assert_eq!(view.site.as_deref(), Some("nodewright-system/site-a"));
    }
}
