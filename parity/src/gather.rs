//! Gather: what the operator keeps from the watches besides the bridge's index — each Node's
//! `resourceVersion`, taints and labels, and the `resourceVersion`s of the legacy cluster-state
//! and takeover ConfigMaps, so that a plan can guard its writes with the versions it decided
//! from; each Node's Ready condition, and which legacy script pods run where ([`script_pods`]),
//! the facts the takeover's fence decides from. Fed by the same [`Change`]s as the index (the
//! pods by the operator's own watch); no I/O.
//!
//! For the storage upgrade: which nodes an active upgrade drains ([`draining_nodes`]), what a
//! pod bound to one of them is as far as a drain cares ([`pod_meta`]), and the storage gate as
//! its Lease says ([`gate`]). The loop lists those nodes' pods and reflects the Lease; these
//! functions only read what it got.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use nodewright_api::WorkflowOwner;
use nodewright_api::storageupgrade::StorageUpgrade;
use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::source::{Change, Relist};

use crate::controllers::{Gate, NodeMeta, PodMeta};
use crate::takeover::{NodeReady, ScriptPod};

/// Node metadata and the cluster-state version, as the watches last delivered them.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Every Node by name.
    pub nodes: BTreeMap<String, NodeMeta>,
    /// The cluster-state ConfigMap's `resourceVersion`.
    pub cluster_state_version: Option<String>,
    /// The takeover ConfigMap's `resourceVersion`, while it exists.
    pub takeover_version: Option<String>,
    /// Every Node's Ready condition, by name.
    pub ready: BTreeMap<String, NodeReady>,
    relisting_nodes: Option<BTreeSet<String>>,
    /// While the ConfigMaps are relisted: whether the cluster-state and the takeover ConfigMap
    /// were listed.
    relisting_config_maps: Option<(bool, bool)>,
}

impl Gathered {
    /// Takes in one change (before the index takes it).
    pub fn observe(&mut self, change: &Change, names: &LegacyNames) {
        match change {
            Change::Node(node) => self.put(node),
            Change::NodeDeleted(node) => {
                if let Some(name) = &node.metadata.name {
                    self.nodes.remove(name);
                    self.ready.remove(name);
                }
            }
            Change::NodesReset(nodes) => {
                self.nodes.clear();
                self.ready.clear();
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
                        self.ready.retain(|name, _| listed.contains(name));
                    }
                }
            },
            Change::ConfigMap(cm) if is_cluster_state(cm, names) => {
                self.cluster_state_version = cm.metadata.resource_version.clone();
            }
            Change::ConfigMap(cm) if is_takeover(cm) => {
                self.takeover_version = cm.metadata.resource_version.clone();
            }
            Change::ConfigMapDeleted(cm) if is_cluster_state(cm, names) => self.cluster_state_version = None,
            Change::ConfigMapDeleted(cm) if is_takeover(cm) => self.takeover_version = None,
            Change::ConfigMapsReset(cms) => {
                self.cluster_state_version = cms
                    .iter()
                    .find(|cm| is_cluster_state(cm, names))
                    .and_then(|cm| cm.metadata.resource_version.clone());
                self.takeover_version = cms
                    .iter()
                    .find(|cm| is_takeover(cm))
                    .and_then(|cm| cm.metadata.resource_version.clone());
            }
            Change::ConfigMapsRelist(step) => match step {
                Relist::Start => self.relisting_config_maps = Some((false, false)),
                Relist::Object(cm) if is_cluster_state(cm, names) => {
                    self.cluster_state_version = cm.metadata.resource_version.clone();
                    if let Some((seen, _)) = &mut self.relisting_config_maps {
                        *seen = true;
                    }
                }
                Relist::Object(cm) if is_takeover(cm) => {
                    self.takeover_version = cm.metadata.resource_version.clone();
                    if let Some((_, seen)) = &mut self.relisting_config_maps {
                        *seen = true;
                    }
                }
                Relist::Object(_) => {}
                Relist::Done => {
                    if let Some((cluster_state, takeover)) = self.relisting_config_maps.take() {
                        if !cluster_state {
                            self.cluster_state_version = None;
                        }
                        if !takeover {
                            self.takeover_version = None;
                        }
                    }
                }
            },
            Change::ConfigMap(_)
            | Change::ConfigMapDeleted(_)
            | Change::Log { .. }
            | Change::LogRestarted { .. }
            | Change::NodeFacts(_)
            | Change::NodeFactsDeleted(_)
            | Change::NodeFactsRelist(_) => {}
        }
    }

    fn put(&mut self, node: &Node) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        self.ready.insert(name.clone(), node_ready(node));
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

fn is_takeover(cm: &ConfigMap) -> bool {
    cm.metadata.name.as_deref() == Some(crate::takeover::CONFIGMAP)
}

/// A Node's Ready condition: `False` and `Unknown` are NotReady since the condition's
/// `lastTransitionTime`; no Ready condition yet counts as Ready (nothing proves it down).
pub fn node_ready(node: &Node) -> NodeReady {
    let condition = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    match condition {
        Some(c) if c.status != "True" => NodeReady::NotReady {
            since: c.last_transition_time.as_ref().map(|t| t.0.as_second()),
        },
        _ => NodeReady::Ready,
    }
}

/// Whether a pod belongs to the legacy DaemonSet `daemon_set`: its controller owner reference
/// names it.
pub fn is_script_pod(pod: &Pod, daemon_set: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet" && o.name == daemon_set && o.controller == Some(true))
}

/// Whether a pod's script may be running, as last reported: any phase but `Pending`, `Succeeded`
/// and `Failed` (a `Running` pod, and an `Unknown` one, may be); a `Pending` pod may be too, once
/// one of its containers is reported running.
fn may_run(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let container_running = status
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        });
    match phase {
        "Succeeded" | "Failed" => false,
        "Pending" => container_running,
        _ => true,
    }
}

/// Which legacy script pods are on which node: for each node with at least one pod of the
/// DaemonSet bound to it, one that may be running if there is one, else one that is not. A node
/// absent from the map has none ([`ScriptPod::Gone`]).
pub fn script_pods<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    daemon_set: &str,
) -> BTreeMap<String, ScriptPod> {
    let mut out: BTreeMap<String, ScriptPod> = BTreeMap::new();
    for pod in pods.into_iter().filter(|p| is_script_pod(p, daemon_set)) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            // Not bound yet: its script has not started, so it holds no snapshot.
            continue;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let this = if may_run(pod) {
            ScriptPod::Running { pod: name }
        } else {
            ScriptPod::NotRunning {
                pod: name,
                phase: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_else(|| "Pending".into()),
            }
        };
        match out.get(&node) {
            Some(ScriptPod::Running { .. }) => {}
            _ => {
                out.insert(node, this);
            }
        }
    }
    out
}

/// The annotation the kubelet puts on the API server's mirror of a static pod.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The nodes whose pods the storage upgrade's decisions read this turn: for every StorageUpgrade
/// of the site `cluster` that the operator owns and that has not ended, the node its per-node
/// states apply to now (`status.currentNode`). Empty when no upgrade is under way, so that the
/// loop lists no pod at all.
pub fn draining_nodes(upgrades: &[StorageUpgrade], cluster: &str) -> BTreeSet<String> {
    upgrades
        .iter()
        .filter(|u| u.spec.owner == WorkflowOwner::Operator && u.spec.cluster_ref.name == cluster)
        .filter_map(|u| u.status.as_ref())
        .filter(|s| !s.state.is_some_and(|state| state.is_terminal()))
        .filter_map(|s| s.current_node.clone())
        .collect()
}

/// A pod as a drain sees it, `None` for one not bound to a node. Controlled by a DaemonSet
/// (its controller owner reference), a mirror of a static pod (the kubelet's annotation), and
/// finished (phase `Succeeded` or `Failed`) are the pods `kubectl drain --ignore-daemonsets`
/// leaves alone.
pub fn pod_meta(pod: &Pod) -> Option<PodMeta> {
    let node = pod.spec.as_ref()?.node_name.clone()?;
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    Some(PodMeta {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        node,
        daemon_set: pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "DaemonSet" && o.controller == Some(true)),
        mirror: pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION)),
        finished: matches!(phase, Some("Succeeded" | "Failed")),
    })
}

/// The storage gate as its Lease says: held while the Lease exists, by its `holderIdentity`
/// (empty when someone made the Lease without one: still held, by nobody the operator can
/// release it for).
pub fn gate(lease: Option<&Lease>) -> Option<Gate> {
    let lease = lease?;
    Some(Gate {
        holder: lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default(),
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
    })
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

    fn pod(name: &str, node: Option<&str>, owner: &str, phase: &str, running: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner,
                                     "uid": "u", "controller": true}],
            },
            "spec": {"nodeName": node, "containers": []},
            "status": {
                "phase": phase,
                "containerStatuses": [{
                    "name": "c", "image": "i", "imageID": "", "ready": running, "restartCount": 0,
                    "state": if running { serde_json::json!({"running": {}}) }
                             else { serde_json::json!({"waiting": {"reason": "ContainerCreating"}}) },
                }],
            },
        }))
        .unwrap()
    }

    #[test]
    fn only_the_legacy_daemonsets_bound_pods_count_and_a_running_one_wins_on_its_node() {
        let pods = [
            pod("init-a", Some("edge-1"), "vx-rail-node-init", "Running", true),
            // An old pod that finished and its replacement still starting, on one node.
            pod("init-b-old", Some("edge-2"), "vx-rail-node-init", "Failed", false),
            pod("init-b", Some("edge-2"), "vx-rail-node-init", "Pending", false),
            // Another DaemonSet's pod, and a pod not bound to a node yet.
            pod("other", Some("edge-3"), "kube-proxy", "Running", true),
            pod("init-c", None, "vx-rail-node-init", "Pending", false),
        ];
        let by_node = script_pods(&pods, "vx-rail-node-init");
        assert_eq!(
            by_node,
            BTreeMap::from([
                ("edge-1".to_owned(), ScriptPod::Running { pod: "init-a".into() }),
                (
                    "edge-2".to_owned(),
                    ScriptPod::NotRunning {
                        pod: "init-b".into(),
                        phase: "Pending".into()
                    }
                ),
            ])
        );
        // A pending pod whose container the kubelet reports running may run a script.
        let started = [pod(
            "init-b",
            Some("edge-2"),
            "vx-rail-node-init",
            "Pending",
            true,
        )];
        assert!(matches!(
            script_pods(&started, "vx-rail-node-init")["edge-2"],
            ScriptPod::Running { .. }
        ));
        // A pod in phase Unknown (its node stopped reporting) may still run.
        let unknown = [pod(
            "init-a",
            Some("edge-1"),
            "vx-rail-node-init",
            "Unknown",
            false,
        )];
        assert!(matches!(
            script_pods(&unknown, "vx-rail-node-init")["edge-1"],
            ScriptPod::Running { .. }
        ));
    }

    fn with_ready(name: &str, status: Option<(&str, &str)>) -> Node {
        let mut n = node(name, "1");
        if let Some((status, since)) = status {
            n.status = Some(
                serde_json::from_value(serde_json::json!({"conditions": [
                    {"type": "Ready", "status": status, "lastTransitionTime": since}
                ]}))
                .unwrap(),
            );
        }
        n
    }

    #[test]
    fn a_nodes_readiness_is_its_ready_condition_since_its_last_transition() {
        assert_eq!(node_ready(&with_ready("a", None)), NodeReady::Ready);
        assert_eq!(
            node_ready(&with_ready("a", Some(("True", "2024-05-01T10:00:00Z")))),
            NodeReady::Ready
        );
        for status in ["False", "Unknown"] {
            assert_eq!(
                node_ready(&with_ready("a", Some((status, "2024-05-01T10:00:00Z")))),
                NodeReady::NotReady {
                    since: Some(1_714_557_600)
                }
            );
        }
        let names = LegacyNames::default();
        let mut g = Gathered::default();
        g.observe(
            &Change::Node(Box::new(with_ready(
                "a",
                Some(("Unknown", "2024-05-01T10:00:00Z")),
            ))),
            &names,
        );
        assert!(matches!(g.ready["a"], NodeReady::NotReady { .. }));
        g.observe(&Change::NodeDeleted(Box::new(node("a", "2"))), &names);
        assert!(g.ready.is_empty());
    }

    #[test]
    fn the_takeover_configmaps_version_is_kept_and_forgotten_when_it_is_gone() {
        let names = LegacyNames::default();
        let mut g = Gathered::default();
        g.observe(&Change::ConfigMap(config_map("nodewright-takeover", "4")), &names);
        assert_eq!(g.takeover_version.as_deref(), Some("4"));
        g.observe(
            &Change::ConfigMapDeleted(config_map("nodewright-takeover", "5")),
            &names,
        );
        assert_eq!(g.takeover_version, None);
        g.observe(&Change::ConfigMapsRelist(Relist::Start), &names);
        g.observe(
            &Change::ConfigMapsRelist(Relist::Object(config_map("nodewright-takeover", "6"))),
            &names,
        );
        g.observe(&Change::ConfigMapsRelist(Relist::Done), &names);
        assert_eq!(g.takeover_version.as_deref(), Some("6"));
        assert_eq!(g.cluster_state_version, None);
    }

    fn upgrade(name: &str, owner: &str, cluster: &str, state: &str, node: Option<&str>) -> StorageUpgrade {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "nodewright.io/v1alpha1", "kind": "StorageUpgrade",
            "metadata": {"name": name},
            "spec": {"owner": owner, "clusterRef": {"name": cluster},
                     "fromVersion": "9.2.12", "toVersion": "9.2.14"},
            "status": {"state": state, "currentNode": node},
        }))
        .unwrap()
    }

    #[test]
    fn only_the_current_node_of_an_operator_owned_upgrade_under_way_of_this_site_is_drained() {
        let upgrades = [
            upgrade("a", "operator", "site", "DemotePrimaries", Some("edge-1")),
            upgrade("b", "operator", "site", "RollingBack", Some("edge-2")),
            // Ended, the script's, another site's, not started on a node.
            upgrade("c", "operator", "site", "Completed", Some("edge-3")),
            upgrade("d", "legacy", "site", "DemotePrimaries", Some("edge-4")),
            upgrade("e", "operator", "other", "DemotePrimaries", Some("edge-5")),
            upgrade("f", "operator", "site", "Pending", None),
        ];
        assert_eq!(
            draining_nodes(&upgrades, "site"),
            BTreeSet::from(["edge-1".to_owned(), "edge-2".to_owned()])
        );
        assert!(draining_nodes(&upgrades[2..], "site").is_empty());
    }

    fn bound_pod(owner: Option<&str>, annotations: serde_json::Value, phase: &str) -> Pod {
        let owners = owner.map_or(serde_json::json!([]), |kind| {
            serde_json::json!([{"apiVersion": "apps/v1", "kind": kind, "name": "x", "uid": "u",
                                "controller": true}])
        });
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "apps", "ownerReferences": owners,
                         "annotations": annotations},
            "spec": {"nodeName": "edge-1", "containers": []},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_is_seen_as_a_drain_sees_it() {
        let plain = pod_meta(&bound_pod(Some("ReplicaSet"), serde_json::json!({}), "Running")).unwrap();
        assert_eq!(
            plain,
            PodMeta {
                namespace: "apps".into(),
                name: "p".into(),
                node: "edge-1".into(),
                daemon_set: false,
                mirror: false,
                finished: false,
            }
        );
        assert!(
            pod_meta(&bound_pod(Some("DaemonSet"), serde_json::json!({}), "Running"))
                .unwrap()
                .daemon_set
        );
        let mirror = bound_pod(None, serde_json::json!({MIRROR_ANNOTATION: "abc"}), "Running");
        assert!(pod_meta(&mirror).unwrap().mirror);
        for phase in ["Succeeded", "Failed"] {
            assert!(
                pod_meta(&bound_pod(None, serde_json::json!({}), phase))
                    .unwrap()
                    .finished
            );
        }
        let mut unbound = bound_pod(None, serde_json::json!({}), "Pending");
        unbound.spec.as_mut().unwrap().node_name = None;
        assert_eq!(pod_meta(&unbound), None);
    }

    #[test]
    fn the_gate_is_held_while_its_lease_exists_by_its_holder() {
        assert_eq!(gate(None), None);
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "nodewright-storage-gate", "resourceVersion": "42"},
            "spec": {"holderIdentity": "Migration/grow"},
        }))
        .unwrap();
        assert_eq!(
            gate(Some(&lease)),
            Some(Gate {
                holder: "Migration/grow".into(),
                resource_version: "42".into()
            })
        );
    }
}
