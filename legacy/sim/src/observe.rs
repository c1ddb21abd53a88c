//! What a run records of the world after each of its steps, so that what must never happen can be
//! checked over the whole run afterwards (`nodewright-sim-harness`'s invariants): every diskful
//! DRBD replica's disk state, every Node's taints and labels, and every ConfigMap's data.
//!
//! Read-only views of the simulated hosts and of the in-memory cluster; nothing here changes them.

use std::collections::BTreeMap;

/// The disk state of a replica that LINSTOR places on a node but that is not up there (the
/// resource is down, the node rebooted or lost power).
pub const DOWN: &str = "Down";

/// The LINSTOR storage pool of diskless clients: a resource placed there holds no replica.
const DISKLESS_POOL: &str = "DfltDisklessStorPool";

/// The world as the invariants read it at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Per DRBD resource, per node holding a diskful replica of it (placed by LINSTOR or up in
    /// DRBD): the local disk state as DRBD names it (`UpToDate`, `Inconsistent`, ...), or
    /// [`DOWN`].
    pub disks: BTreeMap<String, BTreeMap<String, String>>,
    /// Per Node: its taints, as `key=value:Effect` (`key:Effect` without a value).
    pub taints: BTreeMap<String, Vec<String>>,
    /// Per Node: its labels.
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Per ConfigMap (`namespace/name`): its data.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Facts {
    /// How many replicas of `resource` are UpToDate.
    pub fn uptodate(&self, resource: &str) -> usize {
        self.disks
            .get(resource)
            .map_or(0, |r| r.values().filter(|d| *d == "UpToDate").count())
    }

    /// Whether Node `node` has a taint with key `key`.
    pub fn tainted(&self, node: &str, key: &str) -> bool {
        self.taints
            .get(node)
            .is_some_and(|ts| ts.iter().any(|t| t.split([':', '=']).next() == Some(key)))
    }

    /// One key of one ConfigMap's data.
    pub fn config(&self, namespace: &str, name: &str, key: &str) -> Option<&str> {
        self.config_maps
            .get(&format!("{namespace}/{name}"))
            .and_then(|d| d.get(key))
            .map(String::as_str)
    }

    /// One ConfigMap's data, if it exists.
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<&BTreeMap<String, String>> {
        self.config_maps.get(&format!("{namespace}/{name}"))
    }
}

/// Records the simulated hosts' DRBD replicas into `facts.disks`.
pub fn host_facts(world: &crate::host::World, facts: &mut Facts) {
    facts.disks.clear();
    for (resource, placed) in &world.linstor.resources {
        for (node, r) in placed {
            if r.storage_pool != DISKLESS_POOL {
                facts
                    .disks
                    .entry(resource.clone())
                    .or_default()
                    .insert(node.clone(), DOWN.to_owned());
            }
        }
    }
    for (node, n) in &world.nodes {
        for (resource, local) in &n.drbd {
            if local.client {
                continue;
            }
            facts
                .disks
                .entry(resource.clone())
                .or_default()
                .insert(node.clone(), local.disk.name().to_owned());
        }
    }
}

/// Records the in-memory cluster's Nodes and ConfigMaps into `facts`.
pub fn cluster_facts(cluster: &crate::cluster::Cluster, facts: &mut Facts) {
    facts.taints.clear();
    facts.labels.clear();
    facts.config_maps.clear();
    for node in cluster.nodes() {
        let taints = node
            .taints
            .iter()
            .map(|t| {
                let effect = match t.effect {
                    crate::cluster::TaintEffect::NoSchedule => "NoSchedule",
                    crate::cluster::TaintEffect::PreferNoSchedule => "PreferNoSchedule",
                    crate::cluster::TaintEffect::NoExecute => "NoExecute",
                };
                if t.value.is_empty() {
                    format!("{}:{effect}", t.key)
                } else {
                    format!("{}={}:{effect}", t.key, t.value)
                }
            })
            .collect();
        facts.taints.insert(node.name.clone(), taints);
        facts.labels.insert(node.name.clone(), node.labels.clone());
    }
    for cm in cluster.config_maps() {
        facts
            .config_maps
            .insert(format!("{}/{}", cm.namespace, cm.name), cm.data.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_taint_is_found_by_its_key_with_or_without_a_value() {
        let facts = Facts {
            taints: BTreeMap::from([(
                "a".to_owned(),
                vec!["k1=v:NoSchedule".to_owned(), "k2:NoExecute".to_owned()],
            )]),
            ..Facts::default()
        };
        assert!(facts.tainted("a", "k1"));
        assert!(facts.tainted("a", "k2"));
        assert!(!facts.tainted("a", "k"));
        assert!(!facts.tainted("b", "k1"));
    }

    #[test]
    fn a_replica_that_linstor_places_but_drbd_has_not_up_is_down() {
        use crate::host::{DEFAULT_EPOCH, NodeSpec, World};
        let specs = [
            NodeSpec::edge("a", "10.0.0.1")
                .with_controller()
                .with_pool("pool0", "vg0/thin", 100),
            NodeSpec::edge("b", "10.0.0.2").with_pool("pool0", "vg0/thin", 100),
        ];
        let mut world = World::from_specs(1, DEFAULT_EPOCH, &specs).unwrap();
        world.add_resource("r", 64, &["a", "b"], Some("a")).unwrap();
        let mut facts = Facts::default();
        host_facts(&world, &mut facts);
        assert_eq!(facts.uptodate("r"), 2);
        world.nodes.get_mut("b").unwrap().drbd.clear();
        host_facts(&world, &mut facts);
        assert_eq!(facts.disks["r"]["b"], DOWN);
        assert_eq!(facts.uptodate("r"), 1);
    }
}
