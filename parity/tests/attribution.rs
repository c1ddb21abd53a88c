//! The operator attributes every NodeTask it creates to itself, against a real API server: the
//! writer asks the API server who it is (a SelfSubjectReview) and puts that user name in the
//! task's `nodewright.io/created-by`, the name the chart's admission policy compares with the
//! requester and the agents compare with `--operator-identity`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use nodewright_api::nodetask::{CREATED_BY_ANNOTATION, NodeTask, NodeTaskSpec};
use nodewright_bridge::index::LegacyNames;
use nodewright_parity::controllers::{Sequence, Write};
use nodewright_parity::writer::Writer;
use nodewright_testenv::{TestContext, install_crds};
use prometheus::{IntCounterVec, Opts};
use tokio::sync::watch;

#[tokio::test]
async fn a_created_task_names_its_creator_as_the_api_server_knows_it() {
    let ctx = TestContext::new("writer-attribution").await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    let (_leader, rx) = watch::channel(true);
    let actions = IntCounterVec::new(Opts::new("actions", "test"), &["workflow", "kind", "result"]).unwrap();
    let writer = Writer::new(
        ctx.client.clone(),
        ctx.namespace.clone(),
        LegacyNames::default(),
        rx,
        actions,
        "test-operator",
    );
    let mut task = NodeTask::new(
        "mig-x-list",
        NodeTaskSpec {
            node_name: "edge-1".into(),
            step: "drbd-status".into(),
            args: vec![],
            idempotency_key: "mig-x-list".into(),
            workflow_ref: None,
            timeout_seconds: 60,
        },
    );
    task.metadata.namespace = Some(ctx.namespace.clone());
    // Even a task planned with another creator in it is written under the operator's own name.
    task.metadata.annotations = Some([(CREATED_BY_ANNOTATION.to_owned(), "jane".to_owned())].into());
    let sequence = Sequence {
        regarding: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            name: Some("anything".into()),
            namespace: Some(ctx.namespace.clone()),
            ..ObjectReference::default()
        },
        writes: vec![Write::CreateTask(Box::new(task))],
    };
    let (done, error) = writer.sequence("migration", &sequence).await;
    assert_eq!((done, error.map(|e| e.to_string())), (1, None));

    let me = Api::<SelfSubjectReview>::all(ctx.client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap()
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap();
    assert_eq!(writer.creator().await.unwrap(), me);
    let created = ctx.api::<NodeTask>().get("mig-x-list").await.unwrap();
    assert_eq!(
        created.annotations().get(CREATED_BY_ANNOTATION),
        Some(&me),
        "{created:?}"
    );
}
