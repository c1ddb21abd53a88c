//! The facts the decision functions take, read from the bridge's index: the same observed state the
//! bridge reports, so that the operator decides from exactly what users see.
//!
//! Pure reads of an [`Index`]; nothing here talks to an API server.

use std::collections::{BTreeMap, BTreeSet};

use nodewright_api::edgecluster::TakeoverStatus;
use nodewright_api::edgenode::{LinkState, SatelliteState};
use nodewright_api::nodefacts::{NodeFacts as AgentFacts, NodeFactsSpec};
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

/// `node`'s agent facts, when its agent published them within
/// [`crate::controllers::AGENT_FACTS_FRESH_SECONDS`] of `now` (the bridge's freshness window).
pub fn fresh_agent_facts<'a>(agents: &'a [AgentFacts], node: &str, now: i64) -> Option<&'a NodeFactsSpec> {
    agents
        .iter()
        .map(|f| &f.spec)
        .find(|f| f.node_name == node)
        .filter(|f| {
            (now - f.observed_at.0.as_second()).abs() <= crate::controllers::AGENT_FACTS_FRESH_SECONDS
        })
}

/// Whether the agent could read DRBD (`drbdadm status` answered, or said the module is not
/// loaded).
fn agent_read_drbd(a: &NodeFactsSpec) -> bool {
    !a.unreadable
        .iter()
        .any(|u| u.source.starts_with("drbdadm") || u.source.starts_with("drbdsetup"))
}

/// One node's migration facts with its agent's fresh facts put in place of the script's report,
/// fact by fact, where the agent has them:
/// - the node is live as of the agent's read (`reported_at`: the later of the two);
/// - with the node's `node.conf` read, its bond and storage VLAN (`<bond>.<id>:up|down|absent`),
///   and `net_ok` when the bond's link and the storage VLAN are up (the script's `net=ok`);
/// - with DRBD read, the local disks (UpToDate or Diskless, with the module loaded: the script's
///   `drbd_local_uptodate`), a resync running, and each peer's disk.
///
/// What the agent could not read stays as the script reported it.
pub fn merge_migration_node(f: &mut crate::migration::NodeFacts, a: &NodeFactsSpec) {
    let at = a.observed_at.0.as_second();
    f.reported_at = Some(f.reported_at.map_or(at, |s| s.max(at)));
    if let Some(conf) = &a.node_config {
        let name = format!("{}.{}", conf.bond.name, conf.storage_vlan.id);
        let state = match a.vlans.iter().find(|v| v.name == name) {
            Some(v) if v.link_state == LinkState::Up => "up",
            Some(_) => "down",
            None => "absent",
        };
        let bond_up = a
            .bonds
            .iter()
            .any(|b| b.name == conf.bond.name && b.link_state == LinkState::Up);
        f.net_ok = bond_up && state == "up";
        f.storage_vlan = Some(format!("{name}:{state}"));
    }
    if agent_read_drbd(a) {
        let module = a.modules.iter().any(|m| m == "drbd");
        f.local_uptodate = module
            && a.drbd_resources
                .iter()
                .all(|r| matches!(r.disk_state.as_str(), "UpToDate" | "Diskless"));
        f.syncing = a
            .drbd_resources
            .iter()
            .flat_map(|r| &r.peers)
            .any(|p| p.replication.starts_with("Sync"));
        f.peers = a
            .drbd_resources
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.peers
                        .iter()
                        .map(|p| (p.node.clone(), p.peer_disk.clone()))
                        .collect(),
                )
            })
            .collect();
    }
}

/// LINSTOR's word for a satellite's state, as `linstor node list` prints it (the `linstor-nodes`
/// key's); `None` for a node LINSTOR does not list or whose state is unknown.
fn linstor_state(s: SatelliteState) -> Option<&'static str> {
    match s {
        SatelliteState::Online => Some("Online"),
        SatelliteState::Offline => Some("OFFLINE"),
        SatelliteState::Connected => Some("Connected"),
        SatelliteState::VersionMismatch => Some("OFFLINE(VERSION MISMATCH)"),
        SatelliteState::Unregistered | SatelliteState::Unknown => None,
    }
}

/// The site's facts for the migration decision: the legacy state (members, plan, cluster blob),
/// each node's facts from its script's last report, or from its agent's fresh facts (see
/// [`merge_migration_node`]) where the script has reported nothing; each satellite's
/// registration from the primary's `linstor-nodes` key, or as each node's agent reads it from
/// LINSTOR where there is no such key. So a site whose scripts report nothing is decided from
/// its agents alone.
pub fn migration_facts(
    index: &Index,
    agents: &[AgentFacts],
    now: i64,
    stale_after: i64,
    timeout: i64,
) -> crate::migration::Facts {
    let mut facts = script_migration_facts(index, now, stale_after, timeout);
    let key_reported = index
        .cluster
        .as_ref()
        .is_some_and(|c| c.linstor_nodes.value.is_some());
    let mut names: BTreeSet<String> = facts.nodes.keys().cloned().collect();
    names.extend(agents.iter().map(|a| a.spec.node_name.clone()));
    for name in names {
        let Some(a) = fresh_agent_facts(agents, &name, now) else {
            continue;
        };
        let node = facts.nodes.entry(name.clone()).or_default();
        // For now the script's report, where there is one, is what the decision reads (the
        // golden runs' timing depends on it); the agent's facts stand in where it has none.
        if node.reported_at.is_none() {
            merge_migration_node(node, a);
        }
        if key_reported {
            continue;
        }
        match a.satellite.as_ref().and_then(|s| s.registration) {
            None | Some(SatelliteState::Unknown) => {}
            Some(SatelliteState::Unregistered) => {
                facts.linstor_nodes.remove(&name);
            }
            Some(state) => {
                if let Some(word) = linstor_state(state) {
                    facts.linstor_nodes.insert(name, word.to_owned());
                }
            }
        }
    }
    facts
}

/// The storage package's upstream version as the agent reports it: without the epoch and the
/// Debian revision (the script's `upstream_version`); `None` when it reports none.
fn agent_installed(a: &NodeFactsSpec) -> Option<String> {
    let v = a
        .packages
        .iter()
        .find(|p| p.name == crate::upgrade::PACKAGE)?
        .version
        .as_deref()?;
    let v = v.split_once(':').map_or(v, |(_, rest)| rest);
    let v = v.rsplit_once('-').map_or(v, |(upstream, _)| upstream);
    Some(v.to_owned())
}

/// The site's facts for the migration decision from the scripts' reports alone.
fn script_migration_facts(
    index: &Index,
    now: i64,
    stale_after: i64,
    timeout: i64,
) -> crate::migration::Facts {
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
///
/// The installed storage version is the script's last report, else the node's agent's (the
/// `drbd-dkms` package's upstream version, as the script's `installed_version` reads it) where
/// its facts are fresh and name a version.
pub fn upgrade_facts(
    index: &Index,
    agents: &[AgentFacts],
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
                    installed: status
                        .and_then(|s| s.drbd_version.clone())
                        .or_else(|| fresh_agent_facts(agents, name, now).and_then(agent_installed)),
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

    const NOW: i64 = 1_767_225_600;

    /// A node ConfigMap with the script's status report at `at`: bond0 and its storage VLAN
    /// down, its one resource not UpToDate, drbd-dkms 9.2.9.
    fn reported(node: &str, at: i64) -> ConfigMap {
        let mut cm = node_cm(node, "1");
        cm.data.as_mut().unwrap().insert(
            "status".into(),
            format!(
                "at={at};state=ready;role=member;net=degraded;bond=bond0;bond_mode=active-backup;\
                 bond_active=eno1;slaves=eno1:up:0;storage_vlan=bond0.100:down;mgmt_vlan=;satellite=active;\
                 drbd=ok;resources=1;uptodate=0;syncing=0;taint=none;boot=;upgrade=;drbd_version=9.2.9"
            ),
        );
        cm
    }

    /// `node`'s agent facts read at `at`: bond0 up, bond0.100 up, node.conf read, one resource
    /// UpToDate with `peer` UpToDate, registered Online, drbd-dkms 9.2.12-1.
    fn agent(node: &str, peer: &str, at: i64) -> AgentFacts {
        let spec: NodeFactsSpec = serde_json::from_value(serde_json::json!({
            "nodeName": node,
            "observedAt": k8s_openapi::jiff::Timestamp::from_second(at).unwrap().to_string(),
            "bonds": [{"name": "bond0", "mode": "active-backup", "linkState": "up", "slaves": []}],
            "vlans": [{"name": "bond0.100", "id": 100, "parent": "bond0", "linkState": "up", "addresses": []}],
            "drbdResources": [{"name": "pvc-1", "role": "Secondary", "diskState": "UpToDate", "suspended": false,
                "peers": [{"node": peer, "role": "Primary", "connection": "Connected",
                    "replication": "Established", "peerDisk": "UpToDate"}]}],
            "satellite": {"service": "active", "registration": "Online"},
            "packages": [{"name": "drbd-dkms", "version": "9.2.12-1", "state": "installed"}],
            "modules": ["bonding", "drbd"],
            "nodeConfig": {
                "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1"]},
                "storageVlan": {"id": 100, "address": "10.100.0.12/24"},
                "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
            }
        }))
        .unwrap();
        AgentFacts::new(node, spec)
    }

    fn site() -> Index {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&reported("edge-2", NOW - 1000), NOW);
        index
    }

    /// A site whose script on edge-2 reports nothing of its host.
    fn silent_site() -> Index {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&node_cm("edge-2", "1"), NOW);
        index
    }

    #[test]
    fn a_scripts_report_is_read_first_while_there_is_one() {
        let facts = migration_facts(&site(), &[agent("edge-2", "edge-1", NOW - 10)], NOW, 300, 1800);
        let f = &facts.nodes["edge-2"];
        assert_eq!(f.reported_at, Some(NOW - 1000));
        assert_eq!(f.storage_vlan.as_deref(), Some("bond0.100:down"));
        assert!(!f.net_ok && !f.local_uptodate);
    }

    #[test]
    fn a_node_with_fresh_agent_facts_is_live_and_its_network_drbd_and_registration_come_from_them() {
        let facts = migration_facts(
            &silent_site(),
            &[agent("edge-2", "edge-1", NOW - 10)],
            NOW,
            300,
            1800,
        );
        let f = &facts.nodes["edge-2"];
        assert_eq!(f.reported_at, Some(NOW - 10));
        assert!(f.net_ok);
        assert_eq!(f.storage_vlan.as_deref(), Some("bond0.100:up"));
        assert!(f.local_uptodate && !f.syncing);
        assert_eq!(f.peers["pvc-1"]["edge-1"], "UpToDate");
        assert_eq!(
            facts.linstor_nodes.get("edge-2").map(String::as_str),
            Some("Online")
        );
    }

    #[test]
    fn a_node_whose_agent_facts_are_stale_or_absent_falls_back_to_its_scripts_report() {
        let stale = agent(
            "edge-2",
            "edge-1",
            NOW - crate::controllers::AGENT_FACTS_FRESH_SECONDS - 1,
        );
        for agents in [vec![], vec![stale]] {
            let facts = migration_facts(&site(), &agents, NOW, 300, 1800);
            let f = &facts.nodes["edge-2"];
            assert_eq!(f.reported_at, Some(NOW - 1000));
            assert!(!f.net_ok);
            assert_eq!(f.storage_vlan.as_deref(), Some("bond0.100:down"));
            assert!(!f.local_uptodate);
            assert!(facts.linstor_nodes.is_empty(), "no linstor-nodes key, no agent");
            let none = migration_facts(&silent_site(), &agents, NOW, 300, 1800);
            assert_eq!(none.nodes["edge-2"].reported_at, None, "nobody reports: not live");
        }
    }

    #[test]
    fn what_the_agent_could_not_read_stays_as_the_script_reported_it() {
        let mut a = agent("edge-2", "edge-1", NOW);
        a.spec.node_config = None;
        a.spec.drbd_resources.clear();
        a.spec.unreadable.push(nodewright_api::nodefacts::UnreadableFact {
            source: "drbdadm status all".into(),
            message: "exited 10".into(),
        });
        let mut f = migration_facts(&site(), &[], NOW, 300, 1800).nodes["edge-2"].clone();
        merge_migration_node(&mut f, &a.spec);
        assert_eq!(f.reported_at, Some(NOW), "the node is live");
        assert_eq!(
            f.storage_vlan.as_deref(),
            Some("bond0.100:down"),
            "no node.conf: the script's"
        );
        assert!(!f.local_uptodate, "no DRBD read: the script's");
    }

    #[test]
    fn without_the_drbd_module_the_local_disks_are_not_uptodate_as_the_script_says() {
        let mut a = agent("edge-2", "edge-1", NOW);
        a.spec.modules.retain(|m| m != "drbd");
        a.spec.drbd_resources.clear();
        let facts = migration_facts(&silent_site(), &[a], NOW, 300, 1800);
        assert!(!facts.nodes["edge-2"].local_uptodate);
    }

    #[test]
    fn an_unregistered_satellite_is_not_listed_and_a_resyncing_peer_is_syncing() {
        let mut a = agent("edge-2", "edge-1", NOW);
        a.spec.satellite.as_mut().unwrap().registration = Some(SatelliteState::Unregistered);
        a.spec.drbd_resources[0].peers[0].replication = "SyncSource".into();
        a.spec.drbd_resources[0].peers[0].peer_disk = "Inconsistent".into();
        let facts = migration_facts(&silent_site(), &[a], NOW, 300, 1800);
        assert!(!facts.linstor_nodes.contains_key("edge-2"));
        assert!(facts.nodes["edge-2"].syncing);
        assert_eq!(facts.nodes["edge-2"].peers["pvc-1"]["edge-1"], "Inconsistent");
    }

    #[test]
    fn the_installed_storage_version_is_the_scripts_else_the_agents_upstream_version() {
        let settings = crate::controllers::Settings {
            stale_after: 300,
            migration_timeout: 1800,
            upgrade_state_timeout: 1800,
            upgrade_rollback_timeout: 1800,
        };
        let agents = [agent("edge-2", "edge-1", NOW)];
        let agent_only = upgrade_facts(&silent_site(), &agents, NOW, &settings, None);
        assert_eq!(agent_only.nodes["edge-2"].installed.as_deref(), Some("9.2.12"));
        let both = upgrade_facts(&site(), &agents, NOW, &settings, None);
        assert_eq!(both.nodes["edge-2"].installed.as_deref(), Some("9.2.9"));
    }
}
