//! The index fed from ConfigMaps: the site-wide `vx-rail-cluster-state`, each node's
//! `vx-rail-node-<node>` and Nodewright's takeover ConfigMap, applied, deleted and relisted. Each
//! key is parsed into its field here; the workflow transitions the site-wide blobs show are
//! recorded by `history`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use nodewright_parsers as p;
use nodewright_parsers::contract::{self, cluster_key, node_key};

use super::{ClusterState, Diagnostic, Field, Index};

/// The ConfigMaps a relist has listed so far, by what they are to the index.
#[derive(Debug, Default)]
pub(super) struct ListedConfigMaps {
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

impl Index {
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
}
