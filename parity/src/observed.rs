//! The facts the decision functions take, read from the bridge's index: the same observed state the
//! bridge reports, so that the operator decides from exactly what users see.
//!
//! Pure reads of an [`Index`]; nothing here talks to an API server.

use std::collections::{BTreeMap, BTreeSet};

use nodewright_api::edgecluster::TakeoverStatus;
use nodewright_bridge::index::{Index, NodeEntry};
use nodewright_parsers::{DrbdHealth, NodeState, UpgradeState};

use crate::taints::{NodeTaints, STORAGE_TAINT, StorageFacts, UPGRADE_TAINT};
use crate::takeover::{InFlight, NodeReady, ScriptFacts, ScriptPod, Takeover, Workflow};

/// A node's storage facts from its last report; `None` before its first report, or while the
/// report cannot be parsed (the last good one is used, marked stale by the bridge).
pub fn storage_facts(entry: &NodeEntry) -> Option<StorageFacts> {
    let status = entry.config_map.as_ref()?.status.value.as_ref()?;
    Some(StorageFacts {
        recovering: status.state == NodeState::Recovering,
        satellite: status.satellite.clone(),
        drbd_readable: status.drbd == DrbdHealth::Ok,
        resources: status.resources,
        uptodate: status.uptodate,
        syncing: status.syncing,
    })
}

/// The reason the node's script reported for the storage taint in its last loop (`taint=` of its
/// status): what the script decided, whether or not it acted on it.
pub fn reported_taint_reason(entry: &NodeEntry) -> Option<Option<String>> {
    let status = entry.config_map.as_ref()?.status.value.as_ref()?;
    Some(status.taint.as_ref().map(|t| t.as_str().to_owned()))
}

/// The Node's taints and label, as far as taint management is concerned.
pub fn node_taints(entry: &NodeEntry) -> Option<NodeTaints> {
    let object = entry.object.as_ref()?;
    let no_schedule = |key: &str| {
        object
            .taints
            .iter()
            .find(|t| t.key == key && t.effect == nodewright_parsers::contract::taint::EFFECT)
    };
    Some(NodeTaints {
        storage: no_schedule(STORAGE_TAINT).map(|t| t.value.clone().unwrap_or_default()),
        upgrade: no_schedule(UPGRADE_TAINT).is_some(),
        ready_label: object.storage_ready.value.map(|b| b.to_string()),
    })
}

/// The site's storage-upgrade state, if an upgrade was ever started.
pub fn upgrade_state(index: &Index) -> Option<UpgradeState> {
    index
        .cluster
        .as_ref()
        .and_then(|c| c.upgrade.value.as_ref())
        .map(|u| u.state.clone())
}

/// The takeover currently projected. A site without a takeover ConfigMap runs everything
/// `legacy`; its generation is the highest any script acknowledged, so that a ConfigMap deleted by
/// hand and written again gets a generation no script has acknowledged yet (otherwise an old,
/// higher acknowledgement would let the operator act before the scripts read the new one).
pub fn takeover(index: &Index) -> Result<Takeover, crate::takeover::Error> {
    match &index.takeover {
        None => Ok(Takeover {
            generation: index
                .nodes
                .values()
                .filter_map(|e| e.config_map.as_ref()?.takeover_generation.value)
                .max()
                .unwrap_or_default(),
            ..Takeover::default()
        }),
        Some(data) => Takeover::from_data(data),
    }
}

/// The takeover to write again after its ConfigMap was lost: the modes the operator last
/// projected (its EdgeCluster's `status.takeover`; `legacy` for what it does not name), at the
/// highest generation it projected or any script acknowledged (`acknowledged`, from
/// [`takeover`]). The caller writes it one generation higher, which no script has acknowledged.
pub fn lost_takeover(acknowledged: u64, last: Option<&TakeoverStatus>) -> Takeover {
    let mut t = Takeover {
        generation: acknowledged,
        ..Takeover::default()
    };
    if let Some(last) = last {
        t.generation = t
            .generation
            .max(u64::try_from(last.generation).unwrap_or_default());
        for w in &last.workflows {
            if let Some(workflow) = Workflow::from_key(&w.workflow) {
                t.modes.insert(workflow, w.effective);
            }
        }
    }
    t
}

/// What the fence decides from, one entry per node that could run a script: every Node (with or
/// without a node ConfigMap) and every node a legacy pod is bound to. `ready` is every Node's
/// Ready condition ([`crate::gather::Gathered::ready`]); `pods` the legacy script pods by node
/// ([`crate::gather::script_pods`]), `None` until they have been listed. A node ConfigMap whose
/// Node and pods are gone does not count: nothing can run there.
pub fn script_facts(
    index: &Index,
    ready: &BTreeMap<String, NodeReady>,
    pods: Option<&BTreeMap<String, ScriptPod>>,
) -> Vec<ScriptFacts> {
    let mut nodes: BTreeSet<&String> = ready.keys().collect();
    nodes.extend(pods.into_iter().flat_map(BTreeMap::keys));
    nodes
        .into_iter()
        .map(|node| {
            let entry = index.nodes.get(node);
            ScriptFacts {
                node: node.clone(),
                acknowledged: entry
                    .and_then(|e| e.config_map.as_ref())
                    .and_then(|c| c.takeover_generation.value),
                last_report: entry.and_then(NodeEntry::heartbeat),
                pod: match pods {
                    None => ScriptPod::Unlisted,
                    Some(pods) => pods.get(node).cloned().unwrap_or(ScriptPod::Gone),
                },
                ready: ready.get(node).cloned().unwrap_or(NodeReady::NoNode),
            }
        })
        .collect()
}

/// The workflow instances running now, as far as the legacy state shows them.
pub fn in_flight(index: &Index) -> Vec<InFlight> {
    let mut out = Vec::new();
    if let Some(cluster) = &index.cluster {
        if let Some(m) = &cluster.migration.value
            && !m.phase.is_terminal()
        {
            out.push(InFlight {
                workflow: Workflow::Migration,
                what: format!("the migration in phase {}", m.phase.as_str()),
            });
        }
        if let Some(u) = &cluster.upgrade.value
            && !u.state.is_terminal()
        {
            out.push(InFlight {
                workflow: Workflow::StorageUpgrade,
                what: format!("the storage upgrade in state {}", u.state.as_str()),
            });
        }
        for (node, flip) in &cluster.bond_flips {
            if flip
                .value
                .as_ref()
                .is_some_and(|f| f.state == nodewright_parsers::BondFlipState::Requested)
            {
                out.push(InFlight {
                    workflow: Workflow::BondFlip,
                    what: format!("the bond flip requested on {node}"),
                });
            }
        }
    }
    for (node, e) in &index.nodes {
        let recovering = e
            .config_map
            .as_ref()
            .and_then(|c| c.boot_recovery.value.as_ref())
            .is_some_and(|b| {
                !matches!(
                    b.phase,
                    nodewright_parsers::BootRecoveryPhase::Completed
                        | nodewright_parsers::BootRecoveryPhase::Failed
                )
            });
        if recovering {
            out.push(InFlight {
                workflow: Workflow::BootRecovery,
                what: format!("boot recovery on {node}"),
            });
        }
    }
    out
}

/// The site's facts for the migration decision.
pub fn migration_facts(index: &Index, now: i64, stale_after: i64, timeout: i64) -> crate::migration::Facts {
    use crate::migration::{Facts, NodeFacts};
    let cluster = index.cluster.as_ref();
    let nodes = index
        .nodes
        .iter()
        .map(|(name, e)| {
            let status = e.config_map.as_ref().and_then(|c| c.status.value.as_ref());
            let drbd = e.config_map.as_ref().and_then(|c| c.drbd_status.value.as_ref());
            let peers = drbd
                .map(|d| {
                    d.resources
                        .iter()
                        .map(|r| {
                            let peers = r
                                .connections
                                .iter()
                                .map(|c| {
                                    let disk = c
                                        .peer_devices
                                        .first()
                                        .and_then(|p| p.peer_disk.clone())
                                        .unwrap_or_else(|| "unknown".into());
                                    (c.name.clone(), disk)
                                })
                                .collect();
                            (r.name.clone(), peers)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let facts = NodeFacts {
                exists: e.object.is_some(),
                role_label: e
                    .object
                    .as_ref()
                    .and_then(|o| o.role.as_ref())
                    .map(|r| r.as_str().to_owned()),
                reported_at: status.and_then(|s| i64::try_from(s.at).ok()),
                net_ok: status.is_some_and(|s| s.net == nodewright_parsers::NetHealth::Ok),
                storage_vlan: status
                    .and_then(|s| s.storage_vlan.as_ref())
                    .map(|v| format!("{}:{}", v.interface, v.operstate)),
                local_uptodate: status.is_some_and(|s| s.drbd == DrbdHealth::Ok && s.uptodate == s.resources),
                syncing: status.is_some_and(|s| s.syncing),
                peers,
            };
            (name.clone(), facts)
        })
        .collect();
    Facts {
        now,
        stale_after,
        timeout,
        cluster: cluster.and_then(|c| c.cluster.value.clone()),
        members: cluster.and_then(|c| c.members.value.clone()).unwrap_or_default(),
        plan: cluster.and_then(|c| c.network_plan.value.clone()),
        linstor_nodes: cluster
            .and_then(|c| c.linstor_nodes.value.as_ref())
            .map(|ns| {
                ns.iter()
                    .map(|n| (n.name.clone(), n.state.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
        nodes,
    }
}

/// The site's facts for the storage-upgrade decision. A Node whose kubelet has not reported a
/// Ready condition counts as Ready (a site without kubelet reports cannot tell); one that reports
/// `False` or `Unknown` is away.
pub fn upgrade_facts(
    index: &Index,
    now: i64,
    settings: &crate::controllers::Settings,
    gate: Option<&crate::controllers::Gate>,
) -> crate::upgrade::Facts {
    use crate::upgrade::{Facts, NodeFacts};
    use nodewright_parsers::NodeRole;
    let cluster = index.cluster.as_ref();
    let nodes = index
        .nodes
        .iter()
        .map(|(name, e)| {
            let object = e.object.as_deref();
            let status = e.config_map.as_ref().and_then(|c| c.status.value.as_ref());
            let taints = node_taints(e);
            (
                name.clone(),
                NodeFacts {
                    exists: object.is_some(),
                    ready: object
                        .is_some_and(|o| !matches!(o.kubelet_ready.as_deref(), Some("False" | "Unknown"))),
                    cordoned: object.is_some_and(|o| o.unschedulable),
                    upgrade_taint: taints.is_some_and(|t| t.upgrade),
                    boot_id: object.and_then(|o| o.boot_id.clone()),
                    installed: status.and_then(|s| s.drbd_version.clone()),
                },
            )
        })
        .collect();
    let members = cluster
        .and_then(|c| c.members.value.as_ref())
        .map(|ms| {
            ms.iter()
                .filter(|m| matches!(m.role, NodeRole::Primary | NodeRole::Member))
                .map(|m| m.node.clone())
                .collect()
        })
        .unwrap_or_default();
    let legacy_migration = cluster
        .and_then(|c| c.migration.value.as_ref())
        .is_some_and(|m| !m.phase.is_terminal());
    let legacy_upgrade = cluster
        .and_then(|c| c.upgrade.value.as_ref())
        .filter(|u| {
            !u.state.is_terminal()
                && u.unknown.get("owner").map(String::as_str) != Some(crate::upgrade::legacy::OWNER)
        })
        .map(|u| {
            format!(
                "state {} to {} on {}",
                u.state.as_str(),
                u.to.as_deref().unwrap_or("-"),
                u.node.as_deref().unwrap_or("-")
            )
        });
    Facts {
        now,
        state_timeout: settings.upgrade_state_timeout,
        rollback_timeout: settings.upgrade_rollback_timeout,
        nodes,
        members,
        legacy_migration,
        legacy_upgrade,
        gate: gate.map(|g| g.holder.clone()),
    }
}

/// The version the legacy request key asks for, and the version the site runs (the lowest any
/// member reported), when the request asks for a newer one than that.
pub fn upgrade_request(index: &Index) -> Option<(String, Option<String>)> {
    let cluster = index.cluster.as_ref()?;
    let desired = cluster
        .desired_storage_version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())?;
    let installed = index
        .nodes
        .values()
        .filter_map(|e| e.config_map.as_ref()?.status.value.as_ref()?.drbd_version.clone())
        .min_by(|a, b| crate::upgrade::compare_versions(a, b));
    Some((desired.to_owned(), installed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use nodewright_bridge::index::LegacyNames;

    fn node_cm(node: &str, ack: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(format!("vx-rail-node-{node}"));
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some([("takeover-generation".to_owned(), ack.to_owned())].into());
        cm
    }

    #[test]
    fn a_lost_takeover_configmap_restarts_above_every_acknowledged_generation() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&node_cm("a", "7"), 100);
        index.apply_config_map(&node_cm("b", "5"), 100);
        let t = takeover(&index).unwrap();
        assert_eq!(t.generation, 7);
        assert!(
            Workflow::ALL
                .iter()
                .all(|w| t.mode(*w) == nodewright_api::WorkflowMode::Legacy)
        );
        // The plan that writes it again bumps past 7: no script has acknowledged 8.
        let requested = nodewright_api::edgecluster::WorkflowModes {
            taints: nodewright_api::WorkflowMode::Shadow,
            ..Default::default()
        };
        let p = crate::takeover::plan(&requested, &t, &[], &Default::default());
        assert_eq!(p.takeover.generation, 8);
    }

    #[test]
    fn every_node_counts_with_or_without_a_node_configmap_and_a_configmap_alone_does_not() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&node_cm("edge-1", "3"), 100);
        // A node ConfigMap left from a node that is gone (no Node, no pod).
        index.apply_config_map(&node_cm("old", "1"), 100);
        let ready = BTreeMap::from([
            ("edge-1".to_owned(), NodeReady::Ready),
            ("edge-2".to_owned(), NodeReady::Ready),
        ]);
        let running = |p: &str| ScriptPod::Running { pod: p.into() };
        let pods = BTreeMap::from([
            ("edge-1".to_owned(), running("p1")),
            ("edge-2".to_owned(), running("p2")),
            ("ghost".to_owned(), running("p3")),
        ]);
        let facts = script_facts(&index, &ready, Some(&pods));
        let nodes: Vec<(&str, Option<u64>, &NodeReady)> = facts
            .iter()
            .map(|f| (f.node.as_str(), f.acknowledged, &f.ready))
            .collect();
        assert_eq!(
            nodes,
            [
                ("edge-1", Some(3), &NodeReady::Ready),
                ("edge-2", None, &NodeReady::Ready),
                ("ghost", None, &NodeReady::NoNode),
            ]
        );
        // Before the pods are listed, nothing is known about them.
        let unlisted = script_facts(&index, &ready, None);
        assert!(unlisted.iter().all(|f| f.pod == ScriptPod::Unlisted));
        // A Node without a pod: its pod is gone.
        let facts = script_facts(&index, &ready, Some(&BTreeMap::new()));
        assert!(facts.iter().all(|f| f.pod == ScriptPod::Gone));
    }
}
