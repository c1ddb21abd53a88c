//! The operator attributes every NodeTask it creates to itself, against a real API server: the
//! writer asks the API server who it is (a SelfSubjectReview) and puts that user name in the
//! task's `nodewright.io/created-by`, the name the chart's admission policy compares with the
//! requester and the agents compare with `--operator-identity`. And the writes the operator
//! really makes, as its ServiceAccount, pass the chart's RBAC and admission policies: a migration's
//! rollback delete (attributed, controlled by its Migration) and a Node patch of its own taint and
//! labels beside taints it does not own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{Node, NodeSpec, ObjectReference, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use nodewright_api::migration::{Migration, MigrationSpec};
use nodewright_api::nodetask::StepName;
use nodewright_api::nodetask::{CREATED_BY_ANNOTATION, NodeTask, NodeTaskSpec};
use nodewright_bridge::index::LegacyNames;
use nodewright_parity::controllers::migration::node_task_for;
use nodewright_parity::controllers::{Sequence, Write};
use nodewright_parity::migration::TaskRequest;
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

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/nodewright");

/// The chart with the operator enabled, less its workloads: its RBAC and every admission policy.
fn chart(namespace: &str, legacy: &str) -> String {
    let helm = nodewright_testenv::default_bin_dir().join("helm");
    let out = Command::new(&helm)
        .args(["template", "nw", CHART, "--namespace", namespace])
        .args(["--set", "operator.enabled=true", "--set", "agent.enabled=true"])
        .args(["--set", &format!("legacy.namespace={legacy}")])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run testenv/build.sh)", helm.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .split("\n---")
        .filter(|d| {
            d.contains("kind: ")
                && !["kind: Deployment", "kind: DaemonSet", "kind: Service\n"]
                    .iter()
                    .any(|k| d.contains(k))
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// A client acting as the chart's operator ServiceAccount, with the groups its token carries.
async fn as_operator(ctx: &TestContext) -> kube::Client {
    let ns = &ctx.namespace;
    nodewright_testenv::client_as(
        ctx.control_plane.kubeconfig(),
        &format!("system:serviceaccount:{ns}:nw-operator"),
        nodewright_testenv::service_account_groups(ns),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_operators_own_writes_pass_the_charts_rbac_and_admission_policies() {
    let ctx = TestContext::new("writer-policies").await.unwrap();
    let legacy = TestContext::new("writer-policies-legacy")
        .await
        .unwrap()
        .namespace;
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    nodewright_testenv::apply_yaml(&ctx.client, &chart(&ctx.namespace, &legacy), Some(&ctx.namespace))
        .await
        .unwrap();
    let spec: MigrationSpec = serde_json::from_value(serde_json::json!({
        "owner": "operator", "clusterRef": {"name": "site"},
        "sourceNode": "edge-1", "joiningNodes": ["edge-2"],
    }))
    .unwrap();
    let mut m = ctx
        .api::<Migration>()
        .create(&PostParams::default(), &Migration::new("grow", spec))
        .await
        .unwrap();
    m.metadata.namespace = Some(ctx.namespace.clone());
    let node_name = format!("{}-edge-2", ctx.namespace);
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let node = nodes
        .create(
            &PostParams::default(),
            &Node {
                metadata: ObjectMeta {
                    name: Some(node_name.clone()),
                    labels: Some(BTreeMap::from([("team".to_owned(), "edge".to_owned())])),
                    ..ObjectMeta::default()
                },
                spec: Some(NodeSpec {
                    taints: Some(vec![Taint {
                        key: "dedicated".into(),
                        value: Some("storage".into()),
                        effect: "NoSchedule".into(),
                        time_added: None,
                    }]),
                    ..NodeSpec::default()
                }),
                status: None,
            },
        )
        .await
        .unwrap();
    let mut taints = node.spec.clone().unwrap().taints.unwrap();
    taints.push(Taint {
        key: "vx-rail.io/storage-not-ready".into(),
        value: Some("resync".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    });

    let (_leader, rx) = watch::channel(true);
    let actions = IntCounterVec::new(Opts::new("actions", "test"), &["workflow", "kind", "result"]).unwrap();
    let writer = Writer::new(
        as_operator(&ctx).await,
        ctx.namespace.clone(),
        LegacyNames::default(),
        rx,
        actions,
        "op-0",
    );
    let delete = node_task_for(
        &TaskRequest {
            key: "mig-x-rollback-node-delete-edge-2".into(),
            node: "edge-1".into(),
            step: StepName::LinstorNodeDelete,
            args: vec!["edge-2".into()],
        },
        &m,
    );
    let sequence = Sequence {
        regarding: m.object_ref(&()),
        writes: vec![
            Write::CreateTask(Box::new(delete)),
            Write::PatchNode {
                name: node_name.clone(),
                resource_version: node.resource_version().unwrap(),
                labels: BTreeMap::from([
                    ("vx-rail.io/storage-ready".to_owned(), "false".to_owned()),
                    ("vx-rail.io/role".to_owned(), "joining".to_owned()),
                ]),
                annotations: BTreeMap::new(),
                taints: Some(taints),
                unschedulable: None,
                what: vec!["taint vx-rail.io/storage-not-ready=resync:NoSchedule".into()],
            },
        ],
    };
    // The policies are loaded asynchronously: until they are, the writes also pass, so the
    // proof is that they pass once a foreign write by the same identity is refused.
    let operator_nodes: Api<Node> = Api::all(as_operator(&ctx).await);
    nodewright_testenv::eventually("the Node policy to be enforced", Duration::from_secs(30), || {
        let (operator_nodes, node_name) = (operator_nodes.clone(), node_name.clone());
        async move {
            let dry = kube::api::PatchParams {
                dry_run: true,
                ..Default::default()
            };
            let v = serde_json::json!({"metadata": {"labels": {"team": "x"}}});
            match operator_nodes
                .patch(&node_name, &dry, &kube::api::Patch::Merge(&v))
                .await
            {
                Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("only the labels") => {
                    Some(())
                }
                _ => None,
            }
        }
    })
    .await;
    let (done, error) = writer.sequence("migration", &sequence).await;
    assert_eq!((done, error.map(|e| e.to_string())), (2, None));
    let task = ctx
        .api::<NodeTask>()
        .get("mig-x-rollback-node-delete-edge-2")
        .await
        .unwrap();
    assert_eq!(
        task.annotations().get(CREATED_BY_ANNOTATION).map(String::as_str),
        Some(format!("system:serviceaccount:{}:nw-operator", ctx.namespace).as_str())
    );
    let after = nodes.get(&node_name).await.unwrap();
    assert_eq!(after.labels().get("team").map(String::as_str), Some("edge"));
    assert_eq!(
        after.labels().get("vx-rail.io/role").map(String::as_str),
        Some("joining")
    );
    nodes.delete(&node_name, &Default::default()).await.unwrap();
}
