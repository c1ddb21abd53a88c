//! The index fed from the agents' `NodeFacts`: each node's host facts as its agent last
//! published them, applied, deleted and relisted. They are kept apart from the node entries:
//! facts alone do not make a node observable (an `EdgeNode` follows the Node or the script's
//! ConfigMap), but a change of a node's facts makes its status be computed again.

use std::collections::BTreeSet;

use nodewright_api::nodefacts::{NodeFacts, NodeFactsSpec};

use super::Index;

/// The node a `NodeFacts` is of: its `spec.nodeName`, when its name agrees (the admission policy
/// makes agents name it after the node; an object that does not is ignored).
fn node_of(facts: &NodeFacts) -> Option<&str> {
    let name = facts.metadata.name.as_deref()?;
    (name == facts.spec.node_name).then_some(name)
}

impl Index {
    /// Takes in a `NodeFacts` from a watch event or a list.
    pub fn apply_node_facts(&mut self, facts: &NodeFacts) {
        let Some(node) = node_of(facts) else { return };
        if let Some(listed) = self.relisting_facts.as_mut() {
            listed.insert(node.to_owned());
        }
        if self.agent_facts.get(node) != Some(&facts.spec) {
            self.agent_facts.insert(node.to_owned(), facts.spec.clone());
            self.mark_dirty(node);
        }
    }

    /// Forgets a deleted `NodeFacts`.
    pub fn delete_node_facts(&mut self, facts: &NodeFacts) {
        let Some(node) = node_of(facts) else { return };
        if self.agent_facts.remove(node).is_some() {
            self.mark_dirty(node);
        }
    }

    /// A relist of `NodeFacts` begins.
    pub fn relist_node_facts_start(&mut self) {
        self.relisting_facts = Some(BTreeSet::new());
    }

    /// A relist of `NodeFacts` is complete: facts it did not list are gone.
    pub fn relist_node_facts_done(&mut self) {
        let Some(listed) = self.relisting_facts.take() else {
            return;
        };
        let gone: Vec<String> = self
            .agent_facts
            .keys()
            .filter(|n| !listed.contains(*n))
            .cloned()
            .collect();
        for node in gone {
            self.agent_facts.remove(&node);
            self.mark_dirty(&node);
        }
    }

    /// A node's facts as its agent last published them.
    pub fn node_facts(&self, node: &str) -> Option<&NodeFactsSpec> {
        self.agent_facts.get(node)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::index::LegacyNames;

    fn facts(name: &str, node: &str, boot: &str) -> NodeFacts {
        NodeFacts::new(
            name,
            NodeFactsSpec {
                node_name: node.to_owned(),
                observed_at: Time(Timestamp::UNIX_EPOCH),
                boot_id: Some(boot.to_owned()),
                bonds: Vec::new(),
                vlans: Vec::new(),
                drbd_resources: Vec::new(),
                satellite: None,
                packages: Vec::new(),
                modules: Vec::new(),
                unreadable: Vec::new(),
                node_config: None,
            },
        )
    }

    #[test]
    fn a_nodes_facts_are_kept_and_a_change_marks_only_that_node() {
        let mut index = Index::new(LegacyNames::default());
        index.take_dirty();
        index.apply_node_facts(&facts("edge-1", "edge-1", "a"));
        assert_eq!(index.take_dirty().nodes, BTreeSet::from(["edge-1".to_owned()]));
        index.apply_node_facts(&facts("edge-1", "edge-1", "a"));
        assert!(
            index.take_dirty().nodes.is_empty(),
            "the same facts change nothing"
        );
        index.apply_node_facts(&facts("edge-1", "edge-1", "b"));
        assert_eq!(index.node_facts("edge-1").unwrap().boot_id.as_deref(), Some("b"));
        index.delete_node_facts(&facts("edge-1", "edge-1", "b"));
        assert!(index.node_facts("edge-1").is_none());
        assert!(index.nodes.is_empty(), "facts alone make no node entry");
    }

    #[test]
    fn facts_not_named_after_their_node_are_ignored() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_node_facts(&facts("edge-2", "edge-1", "a"));
        assert!(index.node_facts("edge-1").is_none() && index.node_facts("edge-2").is_none());
    }

    #[test]
    fn a_relist_forgets_the_facts_it_did_not_list() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_node_facts(&facts("edge-1", "edge-1", "a"));
        index.apply_node_facts(&facts("edge-2", "edge-2", "a"));
        index.take_dirty();
        index.relist_node_facts_start();
        index.apply_node_facts(&facts("edge-2", "edge-2", "a"));
        index.relist_node_facts_done();
        assert!(index.node_facts("edge-1").is_none());
        assert!(index.node_facts("edge-2").is_some());
        assert_eq!(index.take_dirty().nodes, BTreeSet::from(["edge-1".to_owned()]));
    }
}
