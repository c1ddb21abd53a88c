//! Gather: what the operator keeps from the watches besides the bridge's index — each Node's
//! `resourceVersion`, taints and labels, and the legacy cluster-state ConfigMap's
//! `resourceVersion` — so that a plan can guard its patches with the versions it decided from.
//! Fed by the same [`Change`]s as the index; no I/O.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::source::{Change, Relist};

use crate::controllers::NodeMeta;

/// Node metadata and the cluster-state version, as the watches last delivered them.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Every Node by name.
    pub nodes: BTreeMap<String, NodeMeta>,
    /// The cluster-state ConfigMap's `resourceVersion`.
    pub cluster_state_version: Option<String>,
    relisting_nodes: Option<BTreeSet<String>>,
    relisting_config_maps: Option<bool>,
}

impl Gathered {
    /// Takes in one change (before the index takes it).
    pub fn observe(&mut self, change: &Change, names: &LegacyNames) {
        match change {
            Change::Node(node) => self.put(node),
            Change::NodeDeleted(node) => {
                if let Some(name) = &node.metadata.name {
                    self.nodes.remove(name);
                }
            }
            Change::NodesReset(nodes) => {
                self.nodes.clear();
                nodes.iter().for_each(|n| self.put(n));
            }
            Change::NodesRelist(step) => match step {
                Relist::Start => self.relisting_nodes = Some(BTreeSet::new()),
                Relist::Object(node) => {
                    self.put(node);
                    if let (Some(listed), Some(name)) = (&mut self.relisting_nodes, &node.metadata.name) {
                        listed.insert(name.clone());
                    }
                }
                Relist::Done => {
                    if let Some(listed) = self.relisting_nodes.take() {
                        self.nodes.retain(|name, _| listed.contains(name));
                    }
                }
            },
            Change::ConfigMap(cm) if is_cluster_state(cm, names) => {
                self.cluster_state_version = cm.metadata.resource_version.clone();
            }
            Change::ConfigMapDeleted(cm) if is_cluster_state(cm, names) => self.cluster_state_version = None,
            Change::ConfigMapsReset(cms) => {
                self.cluster_state_version = cms
                    .iter()
                    .find(|cm| is_cluster_state(cm, names))
                    .and_then(|cm| cm.metadata.resource_version.clone());
            }
            Change::ConfigMapsRelist(step) => match step {
                Relist::Start => self.relisting_config_maps = Some(false),
                Relist::Object(cm) if is_cluster_state(cm, names) => {
                    self.cluster_state_version = cm.metadata.resource_version.clone();
                    self.relisting_config_maps = Some(true);
                }
                Relist::Object(_) => {}
                Relist::Done => {
                    if self.relisting_config_maps.take() == Some(false) {
                        self.cluster_state_version = None;
                    }
                }
            },
            Change::ConfigMap(_)
            | Change::ConfigMapDeleted(_)
            | Change::Log { .. }
            | Change::LogRestarted { .. } => {}
        }
    }

    fn put(&mut self, node: &Node) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        self.nodes.insert(
            name,
            NodeMeta {
                resource_version: node.metadata.resource_version.clone().unwrap_or_default(),
                taints: node
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.clone())
                    .unwrap_or_default(),
                labels: node.metadata.labels.clone().unwrap_or_default(),
            },
        );
    }
}

fn is_cluster_state(cm: &ConfigMap, names: &LegacyNames) -> bool {
    cm.metadata.name.as_deref() == Some(names.cluster_state.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, rv: &str) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.resource_version = Some(rv.into());
        n
    }

    fn config_map(name: &str, rv: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.resource_version = Some(rv.into());
        cm
    }

    #[test]
    fn a_node_is_kept_at_the_version_last_seen_and_forgotten_when_deleted() {
        let names = LegacyNames::default();
        let mut g = Gathered::default();
        g.observe(&Change::Node(Box::new(node("edge-1", "1"))), &names);
        g.observe(&Change::Node(Box::new(node("edge-1", "2"))), &names);
        assert_eq!(g.nodes["edge-1"].resource_version, "2");
        g.observe(&Change::NodeDeleted(Box::new(node("edge-1", "3"))), &names);
        assert!(g.nodes.is_empty());
    }

    #[test]
    fn a_relist_forgets_the_nodes_it_did_not_list() {
        let names = LegacyNames::default();
        let mut g = Gathered::default();
        g.observe(&Change::NodesReset(vec![node("a", "1"), node("b", "1")]), &names);
        g.observe(&Change::NodesRelist(Relist::Start), &names);
        g.observe(
            &Change::NodesRelist(Relist::Object(Box::new(node("b", "5")))),
            &names,
        );
        g.observe(&Change::NodesRelist(Relist::Done), &names);
        assert_eq!(g.nodes.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(g.nodes["b"].resource_version, "5");
    }

    #[test]
    fn only_the_cluster_state_config_map_sets_its_version() {
        let names = LegacyNames::default();
        let mut g = Gathered::default();
        g.observe(&Change::ConfigMap(config_map("vx-rail-node-edge-1", "9")), &names);
        assert_eq!(g.cluster_state_version, None);
        g.observe(&Change::ConfigMap(config_map(&names.cluster_state, "10")), &names);
        assert_eq!(g.cluster_state_version.as_deref(), Some("10"));
        g.observe(&Change::ConfigMapsRelist(Relist::Start), &names);
        g.observe(&Change::ConfigMapsRelist(Relist::Done), &names);
        assert_eq!(
            g.cluster_state_version, None,
            "a relist without it means it is gone"
        );
    }
}
