//! The taints controller: in `operator` mode, each node's storage-not-ready taint, storage-ready
//! label and leftover upgrade taint, as [`crate::taints::decide`] wants them, written as one
//! patch per Node guarded by the `resourceVersion` the decision was made from.

use k8s_openapi::api::core::v1::Taint;
use kube::Resource;

use super::{NodeMeta, Sequence, Snapshot, WorkflowController, Write};
use crate::observed;
use crate::taints::{self, TaintAction};
use crate::takeover::Workflow;

/// The taints controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct Taints;

impl WorkflowController for Taints {
    fn workflow(&self) -> Workflow {
        Workflow::Taints
    }

    fn plan(&self, snapshot: &Snapshot<'_>) -> Vec<Sequence> {
        let upgrade = observed::upgrade_state(snapshot.index);
        let regarding = snapshot.cluster.object_ref(&());
        let mut plan = Vec::new();
        for (name, entry) in &snapshot.index.nodes {
            let (Some(facts), Some(have), Some(node)) = (
                observed::storage_facts(entry),
                observed::node_taints(entry),
                snapshot.nodes.get(name),
            ) else {
                continue;
            };
            let actions = taints::decide(&facts, &have, upgrade.clone());
            if let Some(write) = node_write(name, node, &actions) {
                plan.push(Sequence {
                    regarding: regarding.clone(),
                    writes: vec![write],
                });
            }
        }
        plan
    }
}

/// The taints a Node should carry after `action`, from the taints it carries now; `None` when the
/// action does not touch taints or changes nothing.
pub fn taints_after(current: &[Taint], action: &TaintAction) -> Option<Vec<Taint>> {
    let without = |key: &str| -> Vec<Taint> {
        current
            .iter()
            .filter(|t| !(t.key == key && t.effect == nodewright_parsers::contract::taint::EFFECT))
            .cloned()
            .collect()
    };
    let next = match action {
        TaintAction::Taint { reason } => {
            let mut next = without(taints::STORAGE_TAINT);
            next.push(Taint {
                key: taints::STORAGE_TAINT.to_owned(),
                value: Some(reason.clone()),
                effect: nodewright_parsers::contract::taint::EFFECT.to_owned(),
                time_added: None,
            });
            next
        }
        TaintAction::Untaint => without(taints::STORAGE_TAINT),
        TaintAction::RemoveUpgradeTaint => without(taints::UPGRADE_TAINT),
        TaintAction::Label { .. } => return None,
    };
    (next != current).then_some(next)
}

/// One patch that makes every action on the Node as it was seen: labels set, the taint list
/// rewritten whole (a merge patch replaces a list, so every other taint is written back as it
/// was), guarded by the Node's `resourceVersion`. `None` when nothing would change.
pub fn node_write(name: &str, node: &NodeMeta, actions: &[TaintAction]) -> Option<Write> {
    let mut labels = std::collections::BTreeMap::new();
    let mut taints = node.taints.clone();
    let mut what = Vec::new();
    for action in actions {
        match action {
            TaintAction::Label { ready } => {
                let value = ready.to_string();
                if node.labels.get(taints::READY_LABEL) != Some(&value) {
                    labels.insert(taints::READY_LABEL.to_owned(), value);
                    what.push(action.to_string());
                }
            }
            _ => {
                if let Some(next) = taints_after(&taints, action) {
                    taints = next;
                    what.push(action.to_string());
                }
            }
        }
    }
    let taints = (taints != node.taints).then_some(taints);
    if labels.is_empty() && taints.is_none() {
        return None;
    }
    Some(Write::PatchNode {
        name: name.to_owned(),
        resource_version: node.resource_version.clone(),
        labels,
        annotations: std::collections::BTreeMap::new(),
        taints,
        unschedulable: None,
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()),
            effect: "NoSchedule".into(),
            time_added: None,
        }
    }

    fn node(resource_version: &str, taints: Vec<Taint>) -> NodeMeta {
        NodeMeta {
            resource_version: resource_version.into(),
            taints,
            labels: Default::default(),
        }
    }

    #[test]
    fn tainting_replaces_the_storage_taint_and_keeps_every_other_taint() {
        let other = taint("node.kubernetes.io/not-ready", "");
        let current = vec![other.clone(), taint(taints::STORAGE_TAINT, "resync")];
        let next = taints_after(
            &current,
            &TaintAction::Taint {
                reason: "not-uptodate".into(),
            },
        )
        .unwrap();
        assert_eq!(
            next,
            vec![other.clone(), taint(taints::STORAGE_TAINT, "not-uptodate")]
        );
        assert_eq!(
            taints_after(&current, &TaintAction::Untaint).unwrap(),
            vec![other]
        );
        assert_eq!(
            taints_after(&[], &TaintAction::Untaint),
            None,
            "nothing to remove"
        );
    }

    #[test]
    fn a_node_patch_is_guarded_by_the_resource_version_it_was_decided_on() {
        let seen = node("42", vec![taint("node.kubernetes.io/not-ready", "")]);
        let write = node_write(
            "edge-1",
            &seen,
            &[TaintAction::Taint {
                reason: "resync".into(),
            }],
        )
        .unwrap();
        let Write::PatchNode {
            resource_version,
            taints: Some(written),
            labels,
            ..
        } = write
        else {
            panic!("a taint patch: {write:?}")
        };
        assert_eq!(resource_version, "42");
        assert_eq!(written.len(), 2, "the other taint is written back");
        assert_eq!(written[1].key, taints::STORAGE_TAINT);
        assert!(labels.is_empty());
    }

    #[test]
    fn every_action_on_one_node_goes_into_one_patch_so_they_cannot_conflict_with_each_other() {
        let seen = node(
            "7",
            vec![
                taint(taints::STORAGE_TAINT, "resync"),
                taint(taints::UPGRADE_TAINT, ""),
            ],
        );
        let write = node_write(
            "edge-2",
            &seen,
            &[
                TaintAction::Untaint,
                TaintAction::RemoveUpgradeTaint,
                TaintAction::Label { ready: true },
            ],
        )
        .unwrap();
        let Write::PatchNode {
            name,
            resource_version,
            labels,
            taints,
            what,
            ..
        } = write
        else {
            panic!("a node patch: {write:?}")
        };
        assert_eq!((name.as_str(), resource_version.as_str()), ("edge-2", "7"));
        assert_eq!(
            labels,
            [(taints::READY_LABEL.to_owned(), "true".to_owned())].into()
        );
        assert_eq!(taints, Some(vec![]));
        assert_eq!(
            what,
            [
                "untaint vx-rail.io/storage-not-ready",
                "untaint vx-rail.io/upgrade-in-progress",
                "label vx-rail.io/storage-ready=true"
            ]
        );
    }

    #[test]
    fn a_node_already_as_wanted_gets_no_write() {
        let mut seen = node("3", vec![]);
        seen.labels.insert(taints::READY_LABEL.into(), "true".into());
        let write = node_write(
            "edge-1",
            &seen,
            &[TaintAction::Untaint, TaintAction::Label { ready: true }],
        );
        assert!(write.is_none(), "{write:?}");
    }
}
