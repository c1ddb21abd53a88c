//! The bond-flip controller: each operator-owned `BondFlip` of the site, one decision of
//! [`crate::bondflip::decide`] per turn — its `bond-flip` NodeTask, then its status — and, in
//! operator mode, the legacy request keys `bond-flip.<node>` translated into operator-owned flips
//! and answered in the script's spelling once those are over.
//!
//! It decides from the node agents' fresh facts and each node's host configuration
//! ([`Snapshot::fresh_facts`], [`Snapshot::host_config`]), never from the script's reports.

use std::collections::BTreeMap;

use kube::{Resource, ResourceExt};
use nodewright_api::WorkflowOwner;
use nodewright_api::bondflip::{BondFlip, BondFlipPhase, BondFlipStatus};
use nodewright_api::nodetask::{NodeTask, NodeTaskSpec, WorkflowKind, WorkflowRef};
use nodewright_parsers::BondFlipState;

use super::{Sequence, Snapshot, WorkflowController, Write};
use crate::bondflip::legacy::{self, REQUEST_ANNOTATION, Translation};
use crate::bondflip::{self as bf, Facts, Host, TaskRequest, TaskResult};
use crate::takeover::Workflow;

/// The label that ties a NodeTask to the BondFlip that created it.
pub const BOND_FLIP_LABEL: &str = "nodewright.io/bond-flip";

/// The bond-flip controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct BondFlips;

impl WorkflowController for BondFlips {
    fn workflow(&self) -> Workflow {
        Workflow::BondFlip
    }

    fn plan(&self, snapshot: &Snapshot<'_>) -> Vec<Sequence> {
        let mut out = translate(snapshot);
        let mut owned: Vec<&BondFlip> = snapshot
            .bond_flips
            .iter()
            .filter(|f| f.spec.owner == WorkflowOwner::Operator)
            .collect();
        owned.sort_by_key(|f| (f.metadata.creation_timestamp.clone(), f.name_any()));
        for f in &owned {
            let writes = plan_one(snapshot, f, holder(&owned, &f.spec.node_name));
            if !writes.is_empty() {
                out.push(Sequence {
                    regarding: f.object_ref(&()),
                    writes,
                });
            }
        }
        out
    }
}

fn phase(f: &BondFlip) -> BondFlipPhase {
    f.status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(BondFlipPhase::Pending)
}

/// The flip that may run on `node`: one that has left `Pending` and is not over, else the oldest
/// pending one (`owned` is in creation order).
fn holder<'a>(owned: &[&'a BondFlip], node: &str) -> Option<&'a BondFlip> {
    let live: Vec<&BondFlip> = owned
        .iter()
        .copied()
        .filter(|f| f.spec.node_name == node && !bf::is_terminal(phase(f)))
        .collect();
    live.iter()
        .copied()
        .find(|f| phase(f) != BondFlipPhase::Pending)
        .or_else(|| live.first().copied())
}

/// What one flip's decision reads.
fn facts_for(snapshot: &Snapshot<'_>, f: &BondFlip, holder: Option<&BondFlip>) -> Facts {
    let node = &f.spec.node_name;
    let fresh = snapshot.fresh_facts(node);
    let storage_interface = snapshot
        .host_config(node)
        .map(|(h, _)| format!("{}.{}", h.bond.name, h.storage_vlan.id));
    let mut peers = Vec::new();
    let mut unknown_peers = Vec::new();
    if let Some(facts) = fresh {
        let mut names: Vec<&str> = facts
            .drbd_resources
            .iter()
            .flat_map(|r| r.peers.iter().map(|p| p.node.as_str()))
            .filter(|p| *p != node)
            .collect();
        names.sort_unstable();
        names.dedup();
        for peer in names {
            match snapshot
                .host_config(peer)
                .and_then(|(h, _)| h.storage_ip().map(str::to_owned))
            {
                Some(ip) => peers.push(ip),
                None => unknown_peers.push(peer.to_owned()),
            }
        }
    }
    Facts {
        now: snapshot.now,
        host: fresh.map(|facts| Host::from_facts(facts, &f.spec.bond)),
        storage_interface,
        peers,
        unknown_peers,
        gate: snapshot.gate.map(|g| g.holder.clone()),
        busy: holder
            .filter(|h| h.name_any() != f.name_any())
            .map(ResourceExt::name_any),
    }
}

/// One decision for one flip, as writes: its task, its status, and the answer to the legacy
/// request it was translated from once it is over.
fn plan_one(snapshot: &Snapshot<'_>, f: &BondFlip, holder: Option<&BondFlip>) -> Vec<Write> {
    let name = f.name_any();
    let uid = f.metadata.uid.clone().unwrap_or_default();
    let before = f.status.clone().unwrap_or_default();
    let facts = facts_for(snapshot, f, holder);
    let task = snapshot
        .tasks
        .iter()
        .find(|t| t.labels().get(BOND_FLIP_LABEL) == Some(&name))
        .map(task_result);
    let d = bf::decide(&f.spec, &uid, &before, &facts, task.as_ref());
    let mut writes = Vec::new();
    if let Some(t) = &d.task {
        writes.push(Write::CreateTask(Box::new(node_task_for(t, f))));
    }
    let status = bf::status_after(&before, &d, snapshot.now, f.metadata.generation);
    if let Some(w) = answer(snapshot, f, &status) {
        writes.push(w);
    }
    if f.status.as_ref() != Some(&status) {
        writes.push(Write::BondFlipStatus {
            name,
            resource_version: f.resource_version().unwrap_or_default(),
            status: Box::new(status),
        });
    }
    writes
}

/// The legacy requests in `bond-flip.<node>` keys, as flips to create or answers to write.
fn translate(snapshot: &Snapshot<'_>) -> Vec<Sequence> {
    let Some(cluster) = &snapshot.index.cluster else {
        return Vec::new();
    };
    let exists = |name: &str| snapshot.bond_flips.iter().any(|f| f.name_any() == name);
    let mut out = Vec::new();
    for (node, field) in &cluster.bond_flips {
        let Some(request) = &field.value else { continue };
        let Some((config, _)) = snapshot.host_config(node) else {
            continue;
        };
        let bond = &config.bond.name;
        let host = snapshot
            .fresh_facts(node)
            .map(|facts| Host::from_facts(facts, bond));
        let write = match legacy::translate(node, request, bond, host.as_ref(), &exists) {
            None => continue,
            Some(Translation::Create { name, spec }) => {
                let mut f = BondFlip::new(&name, *spec);
                f.metadata.namespace = snapshot.cluster.namespace();
                f.metadata.annotations = Some(BTreeMap::from([(
                    REQUEST_ANNOTATION.to_owned(),
                    legacy::reference(node, request),
                )]));
                Write::CreateBondFlip(Box::new(f))
            }
            Some(Translation::Answer { applied, msg }) => Write::PatchClusterState {
                resource_version: snapshot.cluster_state_version.map(str::to_owned),
                data: BTreeMap::from([(
                    format!("bond-flip.{node}"),
                    legacy::answered(request, applied, snapshot.now, &msg),
                )]),
            },
        };
        out.push(Sequence {
            regarding: snapshot.cluster.object_ref(&()),
            writes: vec![write],
        });
    }
    out
}

/// The answer to the legacy request `f` was translated from, once `status` ends it and the key
/// still asks for that request.
fn answer(snapshot: &Snapshot<'_>, f: &BondFlip, status: &BondFlipStatus) -> Option<Write> {
    let reference = f.annotations().get(REQUEST_ANNOTATION)?;
    let node = &f.spec.node_name;
    let request = snapshot
        .index
        .cluster
        .as_ref()?
        .bond_flips
        .get(node)?
        .value
        .as_ref()?;
    if request.state != BondFlipState::Requested || legacy::reference(node, request) != *reference {
        return None;
    }
    let (applied, done, msg) = legacy::answer_of(status)?;
    Some(Write::PatchClusterState {
        resource_version: snapshot.cluster_state_version.map(str::to_owned),
        data: BTreeMap::from([(
            format!("bond-flip.{node}"),
            legacy::answered(request, applied, done, &msg),
        )]),
    })
}

/// The NodeTask that carries out a flip's task request: named by its idempotency key, labelled
/// with the flip and owned by it, with the agent's deadline to flip, probe and be confirmed.
pub fn node_task_for(t: &TaskRequest, f: &BondFlip) -> NodeTask {
    let mut task = NodeTask::new(
        &t.key,
        NodeTaskSpec {
            node_name: t.node.clone(),
            step: t.step.clone(),
            args: t.args.clone(),
            idempotency_key: t.key.clone(),
            workflow_ref: Some(WorkflowRef {
                kind: WorkflowKind::BondFlip,
                name: f.name_any(),
            }),
            timeout_seconds: bf::TASK_TIMEOUT_SECONDS,
        },
    );
    task.metadata.namespace = f.namespace();
    task.metadata.labels = Some(BTreeMap::from([(BOND_FLIP_LABEL.to_owned(), f.name_any())]));
    task.metadata.owner_references = f.controller_owner_ref(&()).map(|o| vec![o]);
    task
}

fn task_result(t: &NodeTask) -> TaskResult {
    let status = t.status.clone().unwrap_or_default();
    TaskResult {
        phase: status.phase,
        output: status.output.unwrap_or_default(),
        message: status.message.unwrap_or_default(),
        finished_at: status.finished_at.map(|t| t.0.as_second()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::controllers::{Gate, NodeMeta, Settings};
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec};
    use nodewright_api::edgenode::{
        BondMode, BondSlaveStatus, BondStatus, DrbdPeerStatus, DrbdResourceStatus, LinkState,
    };
    use nodewright_api::nodefacts::{NodeFacts, NodeFactsSpec};
    use nodewright_api::nodetask::{NodeTaskPhase, NodeTaskStatus};
    use nodewright_bridge::index::{Index, LegacyNames};

    const NOW: i64 = 1_790_000_000;

    fn cluster() -> EdgeCluster {
        let spec: EdgeClusterSpec =
            serde_json::from_value(serde_json::json!({"profile": {"topology": "MultiNode"}})).unwrap();
        let mut c = EdgeCluster::new("site", spec);
        c.metadata.namespace = Some("nodewright-system".into());
        c
    }

    fn host_config(ip: &str) -> nodewright_api::hostconfig::HostConfig {
        serde_json::from_value(serde_json::json!({
            "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1", "eno2"]},
            "storageVlan": {"id": 100, "address": ip},
            "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
        }))
        .unwrap()
    }

    fn node_facts(node: &str, mode: BondMode, active: Option<&str>, peers: &[&str]) -> NodeFacts {
        let slave = |name: &str| BondSlaveStatus {
            name: name.into(),
            link_state: LinkState::Up,
            link_failures: 0,
            speed_mbps: None,
        };
        NodeFacts::new(
            node,
            NodeFactsSpec {
                node_name: node.into(),
                observed_at: Time(k8s_openapi::jiff::Timestamp::from_second(NOW).unwrap()),
                boot_id: None,
                bonds: vec![BondStatus {
                    name: "bond0".into(),
                    mode,
                    active_slave: active.map(str::to_owned),
                    link_state: LinkState::Up,
                    slaves: vec![slave("eno1"), slave("eno2")],
                }],
                vlans: vec![],
                drbd_resources: vec![DrbdResourceStatus {
                    name: "pvc-1".into(),
                    role: "Primary".into(),
                    disk_state: "UpToDate".into(),
                    quorum: None,
                    suspended: false,
                    peers: peers
                        .iter()
                        .map(|p| DrbdPeerStatus {
                            node: (*p).into(),
                            connection: "Connected".into(),
                            role: "Secondary".into(),
                            peer_disk: "UpToDate".into(),
                            replication: "Established".into(),
                            sync_percent: None,
                        })
                        .collect(),
                }],
                satellite: None,
                packages: vec![],
                modules: vec![],
                unreadable: vec![],
                node_config: Some(host_config(if node == "edge-1" {
                    "10.100.0.11/24"
                } else {
                    "10.100.0.12/24"
                })),
            },
        )
    }

    fn flip(name: &str, created: i64, phase: Option<BondFlipPhase>) -> BondFlip {
        let spec = serde_json::from_value(serde_json::json!({
            "owner": "operator", "nodeName": "edge-1", "bond": "bond0",
            "from": {"mode": "active-backup", "activeSlave": "eno1"},
            "to": {"mode": "802.3ad"},
        }))
        .unwrap();
        let mut f = BondFlip::new(name, spec);
        f.metadata.namespace = Some("nodewright-system".into());
        f.metadata.uid = Some(format!("{name}-uid"));
        f.metadata.resource_version = Some("9".into());
        f.metadata.generation = Some(1);
        f.metadata.creation_timestamp =
            Some(Time(k8s_openapi::jiff::Timestamp::from_second(created).unwrap()));
        f.status = phase.map(|p| BondFlipStatus {
            phase: Some(p),
            history: vec![nodewright_api::common::PhaseTransition {
                phase: p,
                at: nodewright_kit::clock::time(NOW - 1),
                message: None,
            }],
            ..BondFlipStatus::default()
        });
        f
    }

    fn index(flip_key: Option<&str>) -> Index {
        let mut index = Index::new(LegacyNames::default());
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("vx-rail-cluster-state".into());
        cm.metadata.namespace = Some("kube-system".into());
        let mut data = BTreeMap::from([(
            "cluster".to_owned(),
            "primary=edge-1;topology=multi;replicas=2;storage_pool=pool0;created=100;schema=4".to_owned(),
        )]);
        if let Some(v) = flip_key {
            data.insert("bond-flip.edge-1".into(), v.into());
        }
        cm.data = Some(data);
        index.apply_config_map(&cm, NOW);
        index
    }

    fn plan(
        index: &Index,
        flips: &[BondFlip],
        facts: &[NodeFacts],
        tasks: &[NodeTask],
        gate: Option<&Gate>,
    ) -> Vec<Sequence> {
        let nodes: BTreeMap<String, NodeMeta> = BTreeMap::new();
        let settings = Settings {
            stale_after: 300,
            migration_timeout: 1800,
            upgrade_state_timeout: 1800,
            upgrade_rollback_timeout: 1800,
        };
        let cluster = cluster();
        let snapshot = Snapshot {
            now: NOW,
            cluster: &cluster,
            index,
            nodes: &nodes,
            cluster_state_version: Some("5"),
            migrations: &[],
            tasks,
            upgrades: &[],
            pods: &[],
            gate,
            facts,
            edge_nodes: &[],
            bond_flips: flips,
            settings: &settings,
        };
        BondFlips.plan(&snapshot)
    }

    fn both() -> Vec<NodeFacts> {
        vec![
            node_facts("edge-1", BondMode::ActiveBackup, Some("eno1"), &["edge-2"]),
            node_facts("edge-2", BondMode::ActiveBackup, Some("eno1"), &["edge-1"]),
        ]
    }

    #[test]
    fn a_flip_the_script_owns_is_not_planned() {
        let mut f = flip("f", NOW - 10, None);
        f.spec.owner = WorkflowOwner::Legacy;
        assert!(plan(&index(None), &[f], &both(), &[], None).is_empty());
    }

    #[test]
    fn preflight_creates_the_task_with_the_peers_storage_address_then_writes_the_status() {
        let f = flip("f", NOW - 10, Some(BondFlipPhase::Preflight));
        let planned = plan(&index(None), &[f], &both(), &[], None);
        assert_eq!(planned.len(), 1, "{planned:#?}");
        let writes = &planned[0].writes;
        let Write::CreateTask(t) = &writes[0] else {
            panic!("{writes:#?}")
        };
        assert_eq!(t.spec.step, "bond-flip");
        assert_eq!(
            t.spec.args,
            [
                "bond0",
                "active-backup:eno1",
                "802.3ad",
                "bond0.100",
                "10.100.0.12"
            ]
        );
        assert_eq!(t.labels()[BOND_FLIP_LABEL], "f");
        assert_eq!(t.spec.timeout_seconds, bf::TASK_TIMEOUT_SECONDS);
        let Some(Write::BondFlipStatus {
            resource_version,
            status,
            ..
        }) = writes.last()
        else {
            panic!("{writes:#?}")
        };
        assert_eq!(resource_version, "9");
        assert_eq!(status.phase, Some(BondFlipPhase::Flipping));
        assert!(status.conditions.iter().all(|c| c.observed_generation == Some(1)));
    }

    #[test]
    fn the_storage_gate_holds_every_pending_flip() {
        let gate = Gate {
            holder: "Migration/grow".into(),
            resource_version: "3".into(),
        };
        let planned = plan(
            &index(None),
            &[flip("f", NOW - 10, None)],
            &both(),
            &[],
            Some(&gate),
        );
        let Write::BondFlipStatus { status, .. } = &planned[0].writes[0] else {
            panic!("{planned:#?}")
        };
        assert_eq!(status.phase, Some(BondFlipPhase::Pending));
        let progressing = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap();
        assert_eq!(progressing.reason, "DeferredToStorage");
    }

    #[test]
    fn of_two_flips_of_one_node_the_older_goes_first() {
        let older = flip("a", NOW - 20, None);
        let newer = flip("b", NOW - 10, None);
        let planned = plan(&index(None), &[newer, older], &both(), &[], None);
        let phase_of = |name: &str| {
            planned
                .iter()
                .find(|s| s.regarding.name.as_deref() == Some(name))
                .and_then(|s| match s.writes.last() {
                    Some(Write::BondFlipStatus { status, .. }) => Some(
                        status
                            .conditions
                            .iter()
                            .find(|c| c.type_ == "Progressing")
                            .unwrap()
                            .reason
                            .clone(),
                    ),
                    _ => None,
                })
        };
        assert_eq!(phase_of("a").as_deref(), Some("PreflightStarted"));
        assert_eq!(phase_of("b").as_deref(), Some("OtherFlipInProgress"));
    }

    #[test]
    fn a_task_reverted_on_the_node_moves_the_flip_to_rolling_back() {
        let f = flip("f", NOW - 10, Some(BondFlipPhase::Flipping));
        let mut t = node_task_for(
            &TaskRequest {
                key: "bf-k".into(),
                node: "edge-1".into(),
                step: "bond-flip".into(),
                args: vec![],
            },
            &f,
        );
        t.status = Some(NodeTaskStatus {
            phase: Some(NodeTaskPhase::Failed),
            output: Some("reverted: 10.100.0.12 unreachable over bond0.100\n".into()),
            message: Some("probe failed".into()),
            ..NodeTaskStatus::default()
        });
        let planned = plan(&index(None), &[f], &both(), &[t], None);
        let Some(Write::BondFlipStatus { status, .. }) = planned[0].writes.last() else {
            panic!("{planned:#?}")
        };
        assert_eq!(status.phase, Some(BondFlipPhase::RollingBack));
    }

    #[test]
    fn a_legacy_request_becomes_an_annotated_operator_flip_and_is_answered_when_it_ends() {
        let key = "action=mode;value=802.3ad;state=requested;id=flip-2;requested=1767225710";
        let planned = plan(&index(Some(key)), &[], &both(), &[], None);
        let Write::CreateBondFlip(created) = &planned[0].writes[0] else {
            panic!("{planned:#?}")
        };
        assert_eq!(created.name_any(), "bondflip-edge-1-flip-2");
        assert_eq!(created.annotations()[REQUEST_ANNOTATION], "edge-1/flip-2");
        assert_eq!(created.spec.from.to_arg(), "active-backup:eno1");

        let mut f = (**created).clone();
        f.metadata.uid = Some("u".into());
        f.metadata.resource_version = Some("4".into());
        f.status = Some(BondFlipStatus {
            phase: Some(BondFlipPhase::Verifying),
            history: vec![nodewright_api::common::PhaseTransition {
                phase: BondFlipPhase::Verifying,
                at: nodewright_kit::clock::time(NOW - 30),
                message: None,
            }],
            ..BondFlipStatus::default()
        });
        let mut t = node_task_for(
            &TaskRequest {
                key: "bf-u-edge-1-flip".into(),
                node: "edge-1".into(),
                step: "bond-flip".into(),
                args: vec![],
            },
            &f,
        );
        t.status = Some(NodeTaskStatus {
            phase: Some(NodeTaskPhase::Succeeded),
            finished_at: Some(nodewright_kit::clock::time(NOW - 20)),
            ..NodeTaskStatus::default()
        });
        let flipped = vec![
            node_facts("edge-1", BondMode::Lacp, None, &["edge-2"]),
            node_facts("edge-2", BondMode::ActiveBackup, Some("eno1"), &["edge-1"]),
        ];
        let planned = plan(&index(Some(key)), &[f], &flipped, &[t], None);
        let writes: Vec<&Write> = planned.iter().flat_map(|s| &s.writes).collect();
        assert!(
            writes.iter().all(|w| !matches!(w, Write::CreateBondFlip(_))),
            "created once: {writes:#?}"
        );
        let answer = writes
            .iter()
            .find_map(|w| match w {
                Write::PatchClusterState { data, .. } => data.get("bond-flip.edge-1"),
                _ => None,
            })
            .unwrap();
        assert!(answer.contains(";state=applied;"), "{answer}");
        assert!(answer.ends_with(";owner=operator"), "{answer}");
    }
}
