//! The index fed from Node objects: the annotations, labels, taints and conditions the legacy
//! script reads or writes, applied, deleted and relisted. A node's upgrade-state annotation is
//! also a workflow transition, recorded by `history`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Node;
use nodewright_parsers as p;
use nodewright_parsers::contract::{annotation, label};

use super::Index;

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
}
