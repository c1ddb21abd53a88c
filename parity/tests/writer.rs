//! The operator's one writer against the real API server: a replica that does not lead sends
//! nothing, a patch decided from a copy that changed since is refused as a conflict and changes
//! nothing, and a task created twice under its idempotency key exists once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Node, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use nodewright_api::nodetask::{NodeTask, NodeTaskSpec};
use nodewright_bridge::index::LegacyNames;
use nodewright_parity::controllers::{Sequence, Write};
use nodewright_parity::writer::{WriteError, Writer};
use nodewright_testenv::{TestContext, create_namespace, install_crds, unique_name};
use prometheus::{IntCounterVec, Opts};
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
    let writer = Writer::new(
        ctx.client.clone(),
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
