//! The operator's one writer against the real API server: a replica that does not lead sends
//! nothing, a patch decided from a copy that changed since is refused as a conflict and changes
//! nothing, and a task created twice under its idempotency key exists once. The storage upgrade's
//! writes: an eviction a PodDisruptionBudget forbids is refused and stops the sequence, one
//! without a budget removes the pod; the storage gate has one holder and is released only from
//! the version decided on; cordon and status writes are guarded like the other patches.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use nodewright_api::nodetask::{NodeTask, NodeTaskSpec};
use nodewright_api::storageupgrade::{StorageUpgrade, StorageUpgradeStatus, UpgradeState};
use nodewright_bridge::index::LegacyNames;
use nodewright_parity::controllers::{GATE_LEASE, Sequence, Write};
use nodewright_parity::writer::{WriteError, Writer};
use nodewright_testenv::{TestContext, create_namespace, install_crds, unique_name};
use prometheus::{IntCounterVec, Opts};
use serde_json::json;
use tokio::sync::watch;

struct Fixture {
    ctx: TestContext,
    legacy: LegacyNames,
    leader: watch::Sender<bool>,
    writer: Writer,
    actions: IntCounterVec,
}

async fn fixture(prefix: &str) -> Fixture {
    let ctx = TestContext::new(prefix).await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    let legacy_ns = unique_name(&format!("{prefix}-legacy"));
    create_namespace(&ctx.client, &legacy_ns, &[]).await.unwrap();
    let legacy = LegacyNames {
        namespace: legacy_ns,
        ..LegacyNames::default()
    };
    let (leader, rx) = watch::channel(true);
    let actions = IntCounterVec::new(Opts::new("actions", "test"), &["workflow", "kind", "result"]).unwrap();
    // As the operator's: a client that does not retry a 429 (an eviction's refusal).
    let kubeconfig = kube::config::Kubeconfig::read_from(ctx.control_plane.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    let writer = Writer::new(
        kube::Client::try_from(config).unwrap(),
        ctx.namespace.clone(),
        legacy.clone(),
        rx,
        actions.clone(),
        "test-operator",
    );
    Fixture {
        ctx,
        legacy,
        leader,
        writer,
        actions,
    }
}

fn task(namespace: &str, name: &str) -> NodeTask {
    let mut t = NodeTask::new(
        name,
        NodeTaskSpec {
            node_name: "edge-1".into(),
            step: serde_json::from_value(serde_json::json!("drbd-status")).unwrap(),
            args: vec![],
            idempotency_key: name.into(),
            workflow_ref: None,
            timeout_seconds: 60,
        },
    );
    t.metadata.namespace = Some(namespace.into());
    t
}

fn regarding(f: &Fixture) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some("anything".into()),
        namespace: Some(f.ctx.namespace.clone()),
        ..ObjectReference::default()
    }
}

#[tokio::test]
async fn a_replica_that_does_not_lead_sends_nothing() {
    let f = fixture("writer-follower").await;
    f.leader.send_replace(false);
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![Write::CreateTask(Box::new(task(
            &f.ctx.namespace,
            "mig-x-preflight",
        )))],
    };
    let (done, error) = f.writer.sequence("migration", &sequence).await;
    assert_eq!(done, 0);
    assert!(matches!(error, Some(WriteError::NotLeader)), "{error:?}");
    let tasks = Api::<NodeTask>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(tasks.items.is_empty(), "a follower created {:?}", tasks.items);
    assert_eq!(
        f.actions
            .with_label_values(&["migration", "task", "not-leader"])
            .get(),
        1
    );
}

#[tokio::test]
async fn a_patch_decided_from_an_older_copy_is_a_conflict_and_changes_nothing() {
    let f = fixture("writer-conflict").await;
    let api: Api<ConfigMap> = Api::namespaced(f.ctx.client.clone(), &f.legacy.namespace);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(f.legacy.cluster_state.clone());
    cm.data = Some(BTreeMap::from([(
        "members".to_owned(),
        "as the operator read it".to_owned(),
    )]));
    let read = api.create(&PostParams::default(), &cm).await.unwrap();
    let decided_on = read.metadata.resource_version.clone();
    // A script rewrites the key from its own snapshot after the operator read the ConfigMap.
    let mut rewritten = read.clone();
    rewritten.data = Some(BTreeMap::from([(
        "members".to_owned(),
        "the script's row".to_owned(),
    )]));
    api.replace(&f.legacy.cluster_state, &PostParams::default(), &rewritten)
        .await
        .unwrap();

    let stale = Write::PatchClusterState {
        resource_version: decided_on,
        data: BTreeMap::from([("members".to_owned(), "the operator's row".to_owned())]),
    };
    let error = f.writer.write(&stale).await.unwrap_err();
    assert!(matches!(error, WriteError::Conflict(_)), "{error:?}");
    let now = api.get(&f.legacy.cluster_state).await.unwrap();
    assert_eq!(
        now.data.unwrap()["members"],
        "the script's row",
        "the script's write survives"
    );
}

#[tokio::test]
async fn a_node_patch_guarded_by_the_current_version_lands_and_is_reported_in_an_event() {
    let f = fixture("writer-node").await;
    let nodes: Api<Node> = Api::all(f.ctx.client.clone());
    let name = unique_name("edge");
    let mut node = Node::default();
    node.metadata.name = Some(name.clone());
    let node = nodes.create(&PostParams::default(), &node).await.unwrap();
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![Write::PatchNode {
            name: name.clone(),
            resource_version: node.metadata.resource_version.clone().unwrap(),
            labels: BTreeMap::from([("vx-rail.io/storage-ready".to_owned(), "true".to_owned())]),
            annotations: BTreeMap::new(),
            taints: None,
            unschedulable: None,
            what: vec!["label vx-rail.io/storage-ready=true".into()],
        }],
    };
    let (done, error) = f.writer.sequence("taints", &sequence).await;
    assert_eq!((done, error.map(|e| e.to_string())), (1, None));
    let labels = nodes.get(&name).await.unwrap().metadata.labels.unwrap();
    assert_eq!(labels["vx-rail.io/storage-ready"], "true");
    let events = Api::<Event>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("NodeUpdated")
                && e.note.as_deref().is_some_and(|n| n.contains(&name))),
        "{:?}",
        events
            .items
            .iter()
            .map(|e| (&e.reason, &e.note))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_task_created_twice_under_its_key_exists_once() {
    let f = fixture("writer-task").await;
    let write = Write::CreateTask(Box::new(task(&f.ctx.namespace, "mig-y-register")));
    f.writer.write(&write).await.unwrap();
    f.writer.write(&write).await.unwrap();
    let tasks = Api::<NodeTask>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(tasks.items.len(), 1);
}

fn takeover_data(generation: &str, taints: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("generation".to_owned(), generation.to_owned()),
        ("taints".to_owned(), taints.to_owned()),
    ])
}

#[tokio::test]
async fn a_takeover_decided_from_an_older_copy_of_its_configmap_is_a_conflict_and_changes_nothing() {
    let f = fixture("writer-takeover").await;
    let api: Api<ConfigMap> = Api::namespaced(f.ctx.client.clone(), &f.legacy.namespace);
    // Written first while the ConfigMap does not exist: no version to guard with, the apply
    // creates it.
    f.writer
        .apply_takeover("nodewright-takeover", None, &takeover_data("1", "shadow"))
        .await
        .unwrap();
    let read = api.get("nodewright-takeover").await.unwrap();
    let decided_on = read.metadata.resource_version.clone().unwrap();
    // Another write lands after the decision read the ConfigMap (a previous leader's last one).
    f.writer
        .apply_takeover(
            "nodewright-takeover",
            Some(&decided_on),
            &takeover_data("2", "operator"),
        )
        .await
        .unwrap();
    let error = f
        .writer
        .apply_takeover(
            "nodewright-takeover",
            Some(&decided_on),
            &takeover_data("2", "shadow"),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Conflict(_)), "{error:?}");
    let now = api.get("nodewright-takeover").await.unwrap().data.unwrap();
    assert_eq!(
        (now["generation"].as_str(), now["taints"].as_str()),
        ("2", "operator"),
        "generation 2 keeps the modes the scripts may have acknowledged"
    );
}

#[tokio::test]
async fn a_lost_takeover_configmap_is_written_again_by_the_apply_without_a_version() {
    let f = fixture("writer-takeover-lost").await;
    let api: Api<ConfigMap> = Api::namespaced(f.ctx.client.clone(), &f.legacy.namespace);
    f.writer
        .apply_takeover("nodewright-takeover", None, &takeover_data("4", "operator"))
        .await
        .unwrap();
    api.delete("nodewright-takeover", &Default::default())
        .await
        .unwrap();
    f.writer
        .apply_takeover("nodewright-takeover", None, &takeover_data("5", "operator"))
        .await
        .unwrap();
    let cm = api.get("nodewright-takeover").await.unwrap();
    assert_eq!(cm.data.unwrap()["generation"], "5");
    assert_eq!(
        cm.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
        "nodewright-operator"
    );
}

#[tokio::test]
async fn a_patch_of_shared_legacy_state_without_a_version_to_guard_it_is_not_sent() {
    let f = fixture("writer-unguarded").await;
    let nodes: Api<Node> = Api::all(f.ctx.client.clone());
    let name = unique_name("edge");
    let mut node = Node::default();
    node.metadata.name = Some(name.clone());
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(f.ctx.client.clone(), &f.legacy.namespace);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(f.legacy.cluster_state.clone());
    cm.data = Some(BTreeMap::from([(
        "members".to_owned(),
        "the script's row".to_owned(),
    )]));
    api.create(&PostParams::default(), &cm).await.unwrap();

    let unseen_node = Write::PatchNode {
        name: name.clone(),
        resource_version: String::new(),
        labels: BTreeMap::from([("vx-rail.io/role".to_owned(), "member".to_owned())]),
        annotations: BTreeMap::new(),
        taints: None,
        unschedulable: None,
        what: vec!["label vx-rail.io/role=member".into()],
    };
    let error = f.writer.write(&unseen_node).await.unwrap_err();
    assert!(matches!(error, WriteError::Unguarded(_)), "{error:?}");
    let unseen_state = Write::PatchClusterState {
        resource_version: None,
        data: BTreeMap::from([("members".to_owned(), "the operator's row".to_owned())]),
    };
    let error = f.writer.write(&unseen_state).await.unwrap_err();
    assert!(matches!(error, WriteError::Unguarded(_)), "{error:?}");
    assert!(
        nodes
            .get(&name)
            .await
            .unwrap()
            .metadata
            .labels
            .unwrap_or_default()
            .is_empty(),
        "the Node was patched"
    );
    assert_eq!(
        api.get(&f.legacy.cluster_state).await.unwrap().data.unwrap()["members"],
        "the script's row"
    );
}

#[tokio::test]
async fn a_replica_that_lost_its_lease_writes_no_takeover() {
    let f = fixture("writer-takeover-follower").await;
    f.leader.send_replace(false);
    let error = f
        .writer
        .apply_takeover("nodewright-takeover", None, &takeover_data("1", "shadow"))
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::NotLeader), "{error:?}");
    let api: Api<ConfigMap> = Api::namespaced(f.ctx.client.clone(), &f.legacy.namespace);
    assert!(api.get_opt("nodewright-takeover").await.unwrap().is_none());
}

/// A pod bound to `node` (no scheduler here: bound by its spec) and reported Running and Ready,
/// as a kubelet would: the Eviction API lets a Pending pod go whatever its budget says, so only a
/// running one tests the budget. Its grace period is 0, so a delete removes it at once (there is
/// no kubelet here to finish a graceful one).
async fn running_pod(f: &Fixture, name: &str, node: &str, labels: &[(&str, &str)]) -> Pod {
    let pods: Api<Pod> = Api::namespaced(f.ctx.client.clone(), &f.ctx.namespace);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        },
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap()
}

fn events(list: &[Event]) -> Vec<(Option<&str>, Option<&str>, Option<&str>)> {
    list.iter()
        .map(|e| (e.type_.as_deref(), e.reason.as_deref(), e.note.as_deref()))
        .collect()
}

async fn events_in(f: &Fixture) -> Vec<Event> {
    Api::<Event>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn an_eviction_a_disruption_budget_forbids_is_refused_reported_and_the_pod_stays() {
    let f = fixture("writer-evict-pdb").await;
    let node = unique_name("edge");
    running_pod(&f, "db-0", &node, &[("app", "db")]).await;
    // The API server answers an eviction from a PodDisruptionBudget's status, which the
    // disruption controller of kube-controller-manager computes. There is none here, so the
    // budget's status is never computed and the API server refuses every eviction it covers
    // ("still being processed"): a budget that does not allow the eviction now, as a real one
    // with no disruption left does.
    let budget: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "db-budget"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
    }))
    .unwrap();
    Api::<PodDisruptionBudget>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
        .create(&PostParams::default(), &budget)
        .await
        .unwrap();

    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![
            Write::Evict {
                namespace: f.ctx.namespace.clone(),
                name: "db-0".into(),
                node: node.clone(),
            },
            // Not sent: a refusal stops the sequence.
            Write::CreateTask(Box::new(task(&f.ctx.namespace, "su-x-demote"))),
        ],
    };
    let (done, error) = f.writer.sequence("storage-upgrade", &sequence).await;
    assert_eq!(done, 0);
    let Some(WriteError::Refused { reason, message }) = &error else {
        panic!("expected a refusal, got {error:?}")
    };
    assert_eq!(*reason, "EvictionRefused");
    assert!(
        message.contains(&format!("pod {}/db-0 on node {node}", f.ctx.namespace))
            && message.contains("db-budget"),
        "{message}"
    );
    let pod = Api::<Pod>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
        .get("db-0")
        .await
        .unwrap();
    assert!(pod.metadata.deletion_timestamp.is_none(), "the pod stays");
    assert!(
        Api::<NodeTask>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
            .get_opt("su-x-demote")
            .await
            .unwrap()
            .is_none(),
        "nothing after the refused eviction was written"
    );
    // Counted as refused, not as an error; reported in a Warning naming the pod and the budget.
    assert_eq!(
        f.actions
            .with_label_values(&["storage-upgrade", "eviction", "refused"])
            .get(),
        1
    );
    assert_eq!(
        f.actions
            .with_label_values(&["storage-upgrade", "eviction", "error"])
            .get(),
        0
    );
    let listed = events_in(&f).await;
    assert!(
        listed.iter().any(|e| e.type_.as_deref() == Some("Warning")
            && e.reason.as_deref() == Some("EvictionRefused")
            && e.note
                .as_deref()
                .is_some_and(|n| n.contains("db-0") && n.contains("db-budget"))),
        "{:?}",
        events(&listed)
    );
}

#[tokio::test]
async fn an_eviction_without_a_budget_deletes_the_pod_and_is_reported() {
    let f = fixture("writer-evict").await;
    let node = unique_name("edge");
    running_pod(&f, "web-0", &node, &[("app", "web")]).await;
    let evict = Write::Evict {
        namespace: f.ctx.namespace.clone(),
        name: "web-0".into(),
        node: node.clone(),
    };
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![evict.clone()],
    };
    let (done, error) = f.writer.sequence("storage-upgrade", &sequence).await;
    assert_eq!((done, error.map(|e| e.to_string())), (1, None));
    let pods = Api::<Pod>::namespaced(f.ctx.client.clone(), &f.ctx.namespace);
    assert!(pods.get_opt("web-0").await.unwrap().is_none(), "evicted");
    let listed = events_in(&f).await;
    assert!(
        listed.iter().any(|e| e.reason.as_deref() == Some("Evicted")
            && e.note
                .as_deref()
                .is_some_and(|n| n.contains("web-0") && n.contains(&node))),
        "{:?}",
        events(&listed)
    );
    // Evicting it again (a turn that decided from a list taken before the eviction) is done.
    f.writer.write(&evict).await.unwrap();
}

#[tokio::test]
async fn a_pod_bound_to_another_node_than_the_decision_saw_is_not_evicted() {
    let f = fixture("writer-evict-moved").await;
    // A StatefulSet's pod recreated under its name on another node after the list was taken.
    running_pod(&f, "db-0", "edge-2", &[("app", "db")]).await;
    let error = f
        .writer
        .write(&Write::Evict {
            namespace: f.ctx.namespace.clone(),
            name: "db-0".into(),
            node: "edge-1".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Conflict(_)), "{error:?}");
    let pod = Api::<Pod>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
        .get("db-0")
        .await
        .unwrap();
    assert!(pod.metadata.deletion_timestamp.is_none());
}

fn gate_holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

#[tokio::test]
async fn the_storage_gate_has_one_holder_and_is_released_only_from_the_version_decided_on() {
    let f = fixture("writer-gate").await;
    let leases: Api<Lease> = Api::namespaced(f.ctx.client.clone(), &f.ctx.namespace);
    let upgrade = Write::AcquireGate {
        holder: "StorageUpgrade/to-9.2.14".into(),
    };
    f.writer.write(&upgrade).await.unwrap();
    let held = leases.get(GATE_LEASE).await.unwrap();
    assert_eq!(gate_holder(&held), Some("StorageUpgrade/to-9.2.14"));
    // Taking it again for the same holder (a turn that did not see its own write yet) is done.
    f.writer.write(&upgrade).await.unwrap();

    // Another workflow cannot take it: refused, and the sequence stops there.
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![
            Write::AcquireGate {
                holder: "Migration/grow".into(),
            },
            Write::CreateTask(Box::new(task(&f.ctx.namespace, "mig-grow-preflight"))),
        ],
    };
    let (done, error) = f.writer.sequence("migration", &sequence).await;
    assert_eq!(done, 0);
    let Some(WriteError::Refused { reason, message }) = &error else {
        panic!("expected a refusal, got {error:?}")
    };
    assert_eq!(*reason, "StorageGateBusy");
    assert!(message.contains("held by StorageUpgrade/to-9.2.14"), "{message}");
    assert_eq!(
        gate_holder(&leases.get(GATE_LEASE).await.unwrap()),
        Some("StorageUpgrade/to-9.2.14")
    );
    assert_eq!(
        f.actions
            .with_label_values(&["migration", "gate", "refused"])
            .get(),
        1
    );

    // A release decided from an older copy of the Lease is refused and releases nothing.
    let held_at = held.metadata.resource_version.clone().unwrap();
    leases
        .patch(
            GATE_LEASE,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    let stale = Write::ReleaseGate {
        holder: "StorageUpgrade/to-9.2.14".into(),
        resource_version: held_at,
    };
    let error = f.writer.write(&stale).await.unwrap_err();
    assert!(matches!(error, WriteError::Conflict(_)), "{error:?}");
    assert!(leases.get_opt(GATE_LEASE).await.unwrap().is_some(), "still held");

    // Released from the current version; releasing again is done; then the other takes it.
    let now = leases.get(GATE_LEASE).await.unwrap();
    let release = Write::ReleaseGate {
        holder: "StorageUpgrade/to-9.2.14".into(),
        resource_version: now.metadata.resource_version.clone().unwrap(),
    };
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![release.clone()],
    };
    assert_eq!(f.writer.sequence("storage-upgrade", &sequence).await.0, 1);
    assert!(leases.get_opt(GATE_LEASE).await.unwrap().is_none());
    f.writer.write(&release).await.unwrap();
    f.writer
        .write(&Write::AcquireGate {
            holder: "Migration/grow".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        gate_holder(&leases.get(GATE_LEASE).await.unwrap()),
        Some("Migration/grow")
    );
    let listed = events_in(&f).await;
    for reason in ["StorageGateBusy", "StorageGateReleased"] {
        assert!(
            listed.iter().any(|e| e.reason.as_deref() == Some(reason)),
            "{reason}: {:?}",
            events(&listed)
        );
    }
}

#[tokio::test]
async fn a_cordon_decided_from_an_older_copy_of_the_node_is_refused_and_changes_nothing() {
    let f = fixture("writer-cordon").await;
    let nodes: Api<Node> = Api::all(f.ctx.client.clone());
    let name = unique_name("edge");
    let mut node = Node::default();
    node.metadata.name = Some(name.clone());
    let read = nodes.create(&PostParams::default(), &node).await.unwrap();
    let decided_on = read.metadata.resource_version.clone().unwrap();
    // A script annotates the node after the operator read it.
    nodes
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"vx-rail.io/state": "ready"}}})),
        )
        .await
        .unwrap();
    let cordon = |resource_version: String| Write::PatchNode {
        name: name.clone(),
        resource_version,
        labels: BTreeMap::new(),
        annotations: BTreeMap::from([(
            "vx-rail.io/upgrade-state".to_owned(),
            "state=CORDON_AND_TAINT;to=9.2.14;since=1790000000;owner=operator".to_owned(),
        )]),
        taints: None,
        unschedulable: Some(true),
        what: vec!["cordon".into(), "annotate vx-rail.io/upgrade-state".into()],
    };
    let error = f.writer.write(&cordon(decided_on)).await.unwrap_err();
    assert!(matches!(error, WriteError::Conflict(_)), "{error:?}");
    let now = nodes.get(&name).await.unwrap();
    assert_ne!(now.spec.as_ref().and_then(|s| s.unschedulable), Some(true));
    assert!(
        !now.metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key("vx-rail.io/upgrade-state")
    );

    // From the current version: cordoned and annotated, the script's annotation kept; reported.
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![cordon(now.metadata.resource_version.clone().unwrap())],
    };
    assert_eq!(f.writer.sequence("storage-upgrade", &sequence).await.0, 1);
    let now = nodes.get(&name).await.unwrap();
    assert_eq!(now.spec.as_ref().and_then(|s| s.unschedulable), Some(true));
    let annotations = now.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["vx-rail.io/state"], "ready");
    assert!(annotations["vx-rail.io/upgrade-state"].starts_with("state=CORDON_AND_TAINT"));
    // And uncordoned.
    let uncordon = Write::PatchNode {
        name: name.clone(),
        resource_version: now.metadata.resource_version.clone().unwrap(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        taints: None,
        unschedulable: Some(false),
        what: vec!["uncordon".into()],
    };
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![uncordon],
    };
    assert_eq!(f.writer.sequence("storage-upgrade", &sequence).await.0, 1);
    let now = nodes.get(&name).await.unwrap();
    assert_ne!(now.spec.as_ref().and_then(|s| s.unschedulable), Some(true));
    let listed = events_in(&f).await;
    for reason in ["NodeCordoned", "NodeUncordoned"] {
        assert!(
            listed.iter().any(|e| e.reason.as_deref() == Some(reason)
                && e.note.as_deref().is_some_and(|n| n.contains(&name))),
            "{reason}: {:?}",
            events(&listed)
        );
    }
}

fn storage_upgrade(namespace: &str, name: &str) -> StorageUpgrade {
    let mut u: StorageUpgrade = serde_json::from_value(json!({
        "apiVersion": "nodewright.io/v1alpha1", "kind": "StorageUpgrade",
        "metadata": {"name": name},
        "spec": {"owner": "operator", "clusterRef": {"name": "site"},
                 "fromVersion": "9.2.12", "toVersion": "9.2.14"},
    }))
    .unwrap();
    u.metadata.namespace = Some(namespace.to_owned());
    u
}

#[tokio::test]
async fn a_storage_upgrade_created_twice_exists_once_and_the_creation_is_reported() {
    let f = fixture("writer-su-create").await;
    let create = Write::CreateStorageUpgrade(Box::new(storage_upgrade(&f.ctx.namespace, "to-9.2.14")));
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![create.clone()],
    };
    assert_eq!(f.writer.sequence("storage-upgrade", &sequence).await.0, 1);
    f.writer.write(&create).await.unwrap();
    let upgrades = Api::<StorageUpgrade>::namespaced(f.ctx.client.clone(), &f.ctx.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(upgrades.items.len(), 1);
    assert_eq!(upgrades.items[0].spec.to_version, "9.2.14");
    let listed = events_in(&f).await;
    assert!(
        listed
            .iter()
            .any(|e| e.reason.as_deref() == Some("StorageUpgradeCreated")
                && e.note.as_deref().is_some_and(|n| n.contains("to-9.2.14"))),
        "{:?}",
        events(&listed)
    );
}

#[tokio::test]
async fn a_storage_upgrade_status_decided_from_an_older_copy_is_refused_and_a_current_one_replaces_it_whole()
{
    let f = fixture("writer-su-status").await;
    let api = Api::<StorageUpgrade>::namespaced(f.ctx.client.clone(), &f.ctx.namespace);
    let created = api
        .create(&PostParams::default(), &storage_upgrade(&f.ctx.namespace, "up"))
        .await
        .unwrap();
    let status = |state: UpgradeState, node: Option<&str>| StorageUpgradeStatus {
        observed_generation: Some(1),
        state: Some(state),
        current_node: node.map(str::to_owned),
        ..StorageUpgradeStatus::default()
    };
    let write = |resource_version: &str, s: StorageUpgradeStatus| Write::StorageUpgradeStatus {
        name: "up".into(),
        resource_version: resource_version.to_owned(),
        status: Box::new(s),
    };
    let first = created.metadata.resource_version.clone().unwrap();
    f.writer
        .write(&write(&first, status(UpgradeState::Preflight, Some("edge-1"))))
        .await
        .unwrap();
    // Decided from the copy before that write: refused.
    let error = f
        .writer
        .write(&write(&first, status(UpgradeState::RollingBack, None)))
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Conflict(_)), "{error:?}");
    let now = api.get("up").await.unwrap();
    let s = now.status.clone().unwrap();
    assert_eq!(
        (s.state, s.current_node.as_deref()),
        (Some(UpgradeState::Preflight), Some("edge-1"))
    );
    // From the current copy: the status is replaced whole (the node it no longer names is gone),
    // the spec untouched.
    let sequence = Sequence {
        regarding: regarding(&f),
        writes: vec![write(
            &now.metadata.resource_version.clone().unwrap(),
            status(UpgradeState::Completed, None),
        )],
    };
    assert_eq!(f.writer.sequence("storage-upgrade", &sequence).await.0, 1);
    let now = api.get("up").await.unwrap();
    let s = now.status.unwrap();
    assert_eq!((s.state, s.current_node), (Some(UpgradeState::Completed), None));
    assert_eq!(now.spec.from_version, "9.2.12");
    let listed = events_in(&f).await;
    assert!(
        listed
            .iter()
            .any(|e| e.reason.as_deref() == Some("StorageUpgradeProgressed")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("StorageUpgrade up: Completed"))),
        "{:?}",
        events(&listed)
    );
}

/// Bootstrap's creates: the cluster state once (a second create, from a decision that read it
/// absent, is a conflict and changes nothing), a node's ConfigMap once (a second counts as done).
#[tokio::test]
async fn bootstrap_creates_the_cluster_state_once_and_a_nodes_configmap_idempotently() {
    use nodewright_parity::controllers::LegacyConfigMap;
    let f = fixture("writer-bootstrap-cm").await;
    let create = |which: LegacyConfigMap, value: &str| Write::CreateLegacyConfigMap {
        name: which,
        data: BTreeMap::from([("cluster".to_owned(), value.to_owned())]),
        what: "test".into(),
    };
    f.writer
        .write(&create(LegacyConfigMap::ClusterState, "primary=edge-1"))
        .await
        .unwrap();
    let again = f
        .writer
        .write(&create(LegacyConfigMap::ClusterState, "primary=edge-2"))
        .await;
    assert!(matches!(again, Err(WriteError::Conflict(_))), "{again:?}");
    let cms: Api<ConfigMap> = Api::namespaced(f.ctx.client.clone(), &f.legacy.namespace);
    let state = cms.get(&f.legacy.cluster_state).await.unwrap();
    assert_eq!(state.data.unwrap()["cluster"], "primary=edge-1");
    let node = create(LegacyConfigMap::Node("edge-1".into()), "x");
    f.writer.write(&node).await.unwrap();
    f.writer.write(&node).await.unwrap();
    assert!(cms.get("vx-rail-node-edge-1").await.is_ok());
}

/// The adoption of a node.conf into EdgeNode.spec.host: applied when nobody set it; refused, and
/// the person's value kept, when a person did (a server-side apply never forced).
#[tokio::test]
async fn a_node_conf_is_adopted_into_spec_host_and_never_over_a_persons_value() {
    use nodewright_api::edgenode::{EdgeNode, EdgeNodeSpec};
    use nodewright_api::hostconfig::HostConfig;
    let f = fixture("writer-bootstrap-host").await;
    let host = |ip: &str| -> HostConfig {
        serde_json::from_value(json!({
            "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1", "eno2"]},
            "storageVlan": {"id": 100, "address": ip},
            "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
        }))
        .unwrap()
    };
    let nodes: Api<EdgeNode> = Api::namespaced(f.ctx.client.clone(), &f.ctx.namespace);
    for name in ["edge-1", "edge-2"] {
        let spec = EdgeNodeSpec {
            node_name: name.into(),
            cluster_ref: None,
            host: None,
        };
        nodes
            .create(&PostParams::default(), &EdgeNode::new(name, spec))
            .await
            .unwrap();
    }
    // A person sets edge-2's by their own apply.
    let person = json!({
        "apiVersion": "nodewright.io/v1alpha1", "kind": "EdgeNode",
        "metadata": {"name": "edge-2"},
        "spec": {"nodeName": "edge-2", "host": host("10.100.0.99/24")},
    });
    nodes
        .patch("edge-2", &PatchParams::apply("jane"), &Patch::Apply(&person))
        .await
        .unwrap();
    let adopt = |name: &str| Write::ApplyHostConfig {
        edge_node: name.into(),
        node_name: name.into(),
        host: Box::new(host("10.100.0.12/24")),
    };
    f.writer.write(&adopt("edge-1")).await.unwrap();
    assert_eq!(
        nodes.get("edge-1").await.unwrap().spec.host,
        Some(host("10.100.0.12/24"))
    );
    let refused = f.writer.write(&adopt("edge-2")).await;
    match refused {
        Err(WriteError::Refused { reason, message }) => {
            assert_eq!(reason, nodewright_parity::writer::HOST_CONFIG_CONFLICT_REASON);
            assert!(message.contains("owned by another field manager"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        nodes.get("edge-2").await.unwrap().spec.host,
        Some(host("10.100.0.99/24")),
        "the person's value stands"
    );
}
