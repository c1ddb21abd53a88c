//! The Nodewright API against a real kube-apiserver (from `testenv/`): the generated CRDs install,
//! valid objects of every kind are accepted, invalid ones are refused with the CEL messages, status
//! goes through the status subresource, and kubectl shows printer columns and field docs.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{CustomResourceExt, Resource};
use nodewright_api::bondflip::{BondState, BondTarget};
use nodewright_api::common::ClusterRef;
use nodewright_api::edgecluster::{SiteProfile, StorageBackend, Topology};
use nodewright_api::edgenode::BondMode;
use nodewright_api::nodetask::{NodeTaskPhase, WorkflowKind, WorkflowRef};
use nodewright_api::*;
use nodewright_testenv::TestContext;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Installs the CRDs once per test binary (every test shares one control plane).
async fn context(prefix: &str) -> TestContext {
    static INSTALLED: OnceLock<Mutex<bool>> = OnceLock::new();
    let ctx = TestContext::new(prefix)
        .await
        .expect("control plane and namespace");
    let mut installed = INSTALLED.get_or_init(|| Mutex::new(false)).lock().await;
    if !*installed {
        nodewright_testenv::install_crds(&ctx.client, &crds())
            .await
            .expect("CRDs install");
        *installed = true;
    }
    ctx
}

fn dynamic<K: Resource<DynamicType = ()>>(ctx: &TestContext) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &ApiResource::erase::<K>(&()))
}

async fn create_json<K: Resource<DynamicType = ()>>(
    ctx: &TestContext,
    body: Value,
) -> Result<DynamicObject, String> {
    let mut body = body;
    body["apiVersion"] = json!(K::api_version(&()));
    body["kind"] = json!(K::kind(&()));
    let object: DynamicObject = serde_json::from_value(body).expect("valid DynamicObject JSON");
    dynamic::<K>(ctx)
        .create(&PostParams::default(), &object)
        .await
        .map_err(api_message)
}

async fn merge_patch<K: Resource<DynamicType = ()>>(
    ctx: &TestContext,
    name: &str,
    patch: Value,
) -> Result<(), String> {
    dynamic::<K>(ctx)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(api_message)
}

fn api_message(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} {}", status.code, status.message),
        other => panic!("expected an API error, got {other}"),
    }
}

fn assert_refused(result: Result<impl std::fmt::Debug, String>, expected: &str) {
    match result {
        Ok(v) => panic!("expected refusal containing {expected:?}, but the server accepted {v:?}"),
        Err(message) => {
            assert!(message.starts_with("422 "), "expected 422 Invalid, got {message}");
            assert!(message.contains(expected), "expected {expected:?} in {message}");
        }
    }
}

fn cluster_spec(topology: &str, expected_nodes: i32) -> Value {
    json!({"profile": {"topology": topology}, "expectedNodes": expected_nodes})
}

fn bond_flip(from_mode: &str, from_slave: Option<&str>, to: Value) -> Value {
    let mut from = json!({"mode": from_mode});
    if let Some(slave) = from_slave {
        from["activeSlave"] = json!(slave);
    }
    json!({"metadata": {"generateName": "flip-"},
           "spec": {"owner": "operator", "nodeName": "edge-1", "bond": "bond0", "from": from, "to": to}})
}

fn node_task(name: &str, node: &str, step: &str) -> Value {
    json!({"metadata": {"name": name},
           "spec": {"nodeName": node, "step": step, "idempotencyKey": format!("{name}-1")}})
}

fn kubectl(ctx: &TestContext, args: &[&str]) -> String {
    let out = ctx.kubectl().args(args).output().expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `kubectl explain` output with kubectl's own line wrapping undone.
fn explain(ctx: &TestContext, args: &[&str]) -> String {
    kubectl(ctx, args)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn every_generated_crd_is_established_and_in_the_nodewright_category() {
    let ctx = context("crds").await;
    let api: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    for crd in crds() {
        let name = crd.metadata.name.clone().unwrap();
        let served = api.get(&name).await.expect("CRD exists");
        assert_eq!(served.spec.group, GROUP);
        assert_eq!(
            served.spec.names.categories.as_deref(),
            Some(&[CATEGORY.to_owned()][..]),
            "{name}"
        );
        assert!(
            !served.spec.names.short_names.unwrap_or_default().is_empty(),
            "{name} has a short name"
        );
        let version = &served.spec.versions[0];
        let has_status = version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some();
        // NodeFacts is a report, like a Lease: its facts are its spec, written by the node's agent
        // alone, and it has no status. Every other kind is desired state with a status.
        if name == "nodefacts.nodewright.io" {
            assert!(!has_status, "{name} is spec-only");
        } else {
            assert!(has_status, "{name} has /status");
        }
        assert!(
            !version
                .additional_printer_columns
                .clone()
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_valid_object_of_every_kind_is_accepted() {
    let ctx = context("valid").await;
    let pp = PostParams::default();
    let cluster_ref = ClusterRef {
        name: "site-a".into(),
    };

    let mut spec = EdgeClusterSpec {
        profile: SiteProfile {
            topology: Topology::MultiNode,
            storage_backend: StorageBackend::LinstorDrbd,
            operating_system: Some("debian".into()),
        },
        expected_nodes: Some(3),
        primary_node: None,
        workflows: Default::default(),
        legacy: Default::default(),
    };
    spec.workflows.migration = WorkflowMode::Shadow;
    let created = ctx
        .api::<EdgeCluster>()
        .create(&pp, &EdgeCluster::new("site-a", spec))
        .await
        .unwrap();
    // Defaults are filled in by the server from the schema.
    assert_eq!(created.spec.legacy.daemon_set, "vx-rail-node-init");
    assert_eq!(created.spec.workflows.bootstrap, WorkflowMode::Legacy);

    let node = EdgeNode::new(
        "edge-1",
        EdgeNodeSpec {
            node_name: "edge-1".into(),
            cluster_ref: Some(cluster_ref.clone()),
            host: Some(
                serde_json::from_value(serde_json::json!({
                    "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1", "eno2"]},
                    "storageVlan": {"id": 100, "address": "10.100.0.11/24"},
                    "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
                }))
                .unwrap(),
            ),
        },
    );
    ctx.api::<EdgeNode>().create(&pp, &node).await.unwrap();

    let migration = Migration::new(
        "to-three-nodes",
        MigrationSpec {
            owner: WorkflowOwner::Operator,
            cluster_ref: cluster_ref.clone(),
            source_node: "edge-1".into(),
            joining_nodes: vec!["edge-2".into(), "edge-3".into()],
            replicas: Some(3),
            rollback: false,
        },
    );
    ctx.api::<Migration>().create(&pp, &migration).await.unwrap();

    let upgrade = StorageUpgrade::new(
        "drbd-9-2-12",
        StorageUpgradeSpec {
            owner: WorkflowOwner::Legacy,
            cluster_ref,
            from_version: "9.2.8".into(),
            to_version: "9.2.12".into(),
            node_order: vec!["edge-1".into(), "edge-2".into()],
            rollback: false,
        },
    );
    ctx.api::<StorageUpgrade>().create(&pp, &upgrade).await.unwrap();

    let flip = BondFlip::new(
        "bond0-to-eno2",
        BondFlipSpec {
            owner: WorkflowOwner::Operator,
            node_name: "edge-1".into(),
            bond: "bond0".into(),
            from: BondState {
                mode: BondMode::ActiveBackup,
                active_slave: Some("eno1".into()),
            },
            to: BondTarget {
                mode: None,
                active_slave: Some("eno2".into()),
            },
        },
    );
    ctx.api::<BondFlip>().create(&pp, &flip).await.unwrap();

    let task = NodeTask::new(
        "edge-1-resource-create",
        NodeTaskSpec {
            node_name: "edge-1".into(),
            step: StepName::ResourceCreate.as_str().into(),
            args: vec!["edge-1".into(), "pvc-4b1c".into(), "pool0".into()],
            idempotency_key: "to-three-nodes:edge-1:resource-create".into(),
            workflow_ref: Some(WorkflowRef {
                kind: WorkflowKind::Migration,
                name: "to-three-nodes".into(),
            }),
            timeout_seconds: 300,
        },
    );
    ctx.api::<NodeTask>().create(&pp, &task).await.unwrap();

    let listed = kubectl(&ctx, &["get", "nodewright", "-o", "name"]);
    for expected in [
        "edgecluster.nodewright.io/site-a",
        "edgenode.nodewright.io/edge-1",
        "migration.nodewright.io/to-three-nodes",
        "storageupgrade.nodewright.io/drbd-9-2-12",
        "bondflip.nodewright.io/bond0-to-eno2",
        "nodetask.nodewright.io/edge-1-resource-create",
    ] {
        assert!(
            listed.contains(expected),
            "`kubectl get nodewright` lists {expected}:\n{listed}"
        );
    }
}

#[tokio::test]
async fn the_example_site_applies_cleanly_with_its_status() {
    let ctx = context("example").await;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/site.yaml")).unwrap();
    let applied = nodewright_testenv::apply_yaml(&ctx.client, &text, Some(&ctx.namespace))
        .await
        .unwrap();
    assert_eq!(applied, 6, "the namespace and five Nodewright objects");
    let node = ctx.api::<EdgeNode>().get("edge-1").await.unwrap();
    let status = node.status.unwrap();
    assert_eq!(status.bonds[0].active_slave.as_deref(), Some("eno1"));
    assert_eq!(status.drbd_resources[0].peers.len(), 2);
    let upgrade = ctx.api::<StorageUpgrade>().get("drbd-9-2-12").await.unwrap();
    assert_eq!(
        upgrade.status.unwrap().state,
        Some(nodewright_api::storageupgrade::UpgradeState::WaitResync)
    );
}

#[tokio::test]
async fn invalid_objects_are_refused_with_the_cel_message() {
    let ctx = context("invalid").await;

    // EdgeCluster: topology and node count must agree; modes are one of three values.
    assert_refused(
        create_json::<EdgeCluster>(
            &ctx,
            json!({"metadata": {"name": "c1"}, "spec": cluster_spec("SingleNode", 3)}),
        )
        .await,
        "a SingleNode site has exactly one node: expectedNodes must be 1",
    );
    assert_refused(
        create_json::<EdgeCluster>(
            &ctx,
            json!({"metadata": {"name": "c2"}, "spec": cluster_spec("MultiNode", 1)}),
        )
        .await,
        "a MultiNode site has at least two nodes",
    );
    let mut spec = cluster_spec("MultiNode", 3);
    spec["workflows"] = json!({"migration": "auto"});
    assert_refused(
        create_json::<EdgeCluster>(&ctx, json!({"metadata": {"name": "c3"}, "spec": spec})).await,
        "supported values: \"legacy\", \"shadow\", \"operator\"",
    );

    // BondFlip: the target must be set, must differ from the current state, and an active slave
    // needs a mode that has one.
    assert_refused(
        create_json::<BondFlip>(&ctx, bond_flip("active-backup", Some("eno1"), json!({}))).await,
        "to must set mode, activeSlave or both",
    );
    assert_refused(
        create_json::<BondFlip>(
            &ctx,
            bond_flip("active-backup", Some("eno1"), json!({"activeSlave": "eno1"})),
        )
        .await,
        "the target must differ from the current state",
    );
    assert_refused(
        create_json::<BondFlip>(&ctx, bond_flip("802.3ad", None, json!({"mode": "802.3ad"}))).await,
        "the target must differ from the current state",
    );
    assert_refused(
        create_json::<BondFlip>(
            &ctx,
            bond_flip(
                "active-backup",
                Some("eno1"),
                json!({"mode": "802.3ad", "activeSlave": "eno2"}),
            ),
        )
        .await,
        "an active slave exists only in active-backup, balance-tlb and balance-alb modes",
    );

    // Migration: the source cannot also join, and replicas cannot exceed the nodes.
    let migration = |source: &str, joining: Value, replicas: i32| {
        json!({"metadata": {"generateName": "mig-"}, "spec": {"owner": "operator", "clusterRef": {"name": "site-a"},
               "sourceNode": source, "joiningNodes": joining, "replicas": replicas}})
    };
    assert_refused(
        create_json::<Migration>(&ctx, migration("edge-1", json!(["edge-1", "edge-2"]), 2)).await,
        "sourceNode must not be one of joiningNodes",
    );
    assert_refused(
        create_json::<Migration>(&ctx, migration("edge-1", json!(["edge-2"]), 3)).await,
        "replicas cannot exceed the number of nodes after the migration",
    );

    // StorageUpgrade: an upgrade to the same version is not an upgrade.
    assert_refused(
        create_json::<StorageUpgrade>(
            &ctx,
            json!({"metadata": {"name": "same"}, "spec": {"owner": "operator", "clusterRef": {"name": "site-a"},
                   "fromVersion": "9.2.8", "toVersion": "9.2.8"}}),
        )
        .await,
        "toVersion must differ from fromVersion",
    );

    assert_refused(
        create_json::<StorageUpgrade>(
            &ctx,
            json!({"metadata": {"name": "twice"}, "spec": {"owner": "operator", "clusterRef": {"name": "site-a"},
                   "fromVersion": "9.2.8", "toVersion": "9.2.12", "nodeOrder": ["edge-1", "edge-2", "edge-1"]}}),
        )
        .await,
        "spec.nodeOrder[2]: Duplicate value: \"edge-1\"",
    );

    // NodeTask: a step is one of the catalogue's names, not merely a name of the right shape.
    assert_refused(
        create_json::<NodeTask>(&ctx, node_task("t1", "edge-1", "Drbd Up")).await,
        "spec.step",
    );
    assert_refused(
        create_json::<NodeTask>(&ctx, node_task("t1", "edge-1", "drbd-up")).await,
        "spec.step",
    );
}

#[tokio::test]
async fn changes_that_the_rules_forbid_on_update_are_refused() {
    let ctx = context("updates").await;

    // NodeTask spec is immutable.
    create_json::<NodeTask>(&ctx, node_task("t1", "edge-1", "drbd-status"))
        .await
        .unwrap();
    assert_refused(
        merge_patch::<NodeTask>(&ctx, "t1", json!({"spec": {"nodeName": "edge-2"}})).await,
        "NodeTask spec is immutable; create a new NodeTask",
    );

    // EdgeNode's nodeName is immutable.
    create_json::<EdgeNode>(
        &ctx,
        json!({"metadata": {"name": "n1"}, "spec": {"nodeName": "edge-1"}}),
    )
    .await
    .unwrap();
    assert_refused(
        merge_patch::<EdgeNode>(&ctx, "n1", json!({"spec": {"nodeName": "edge-9"}})).await,
        "nodeName is immutable",
    );

    // A workflow cannot skip shadow on its way to operator, but can go step by step, and back.
    create_json::<EdgeCluster>(
        &ctx,
        json!({"metadata": {"name": "site"}, "spec": cluster_spec("MultiNode", 3)}),
    )
    .await
    .unwrap();
    assert_refused(
        merge_patch::<EdgeCluster>(
            &ctx,
            "site",
            json!({"spec": {"workflows": {"migration": "operator"}}}),
        )
        .await,
        "migration cannot move from legacy to operator directly: run it in shadow first",
    );
    // The steady-state network and storage carry the same rule.
    for (key, message) in [
        (
            "network",
            "network cannot move from legacy to operator directly: run it in shadow first",
        ),
        (
            "storage",
            "storage cannot move from legacy to operator directly: run it in shadow first",
        ),
    ] {
        assert_refused(
            merge_patch::<EdgeCluster>(&ctx, "site", json!({"spec": {"workflows": {key: "operator"}}})).await,
            message,
        );
    }
    merge_patch::<EdgeCluster>(
        &ctx,
        "site",
        json!({"spec": {"workflows": {"migration": "shadow"}}}),
    )
    .await
    .unwrap();
    merge_patch::<EdgeCluster>(
        &ctx,
        "site",
        json!({"spec": {"workflows": {"migration": "operator"}}}),
    )
    .await
    .unwrap();
    merge_patch::<EdgeCluster>(
        &ctx,
        "site",
        json!({"spec": {"workflows": {"migration": "legacy"}}}),
    )
    .await
    .unwrap();

    // A StorageUpgrade may be asked to roll back, but its versions cannot change under it.
    create_json::<StorageUpgrade>(
        &ctx,
        json!({"metadata": {"name": "up"}, "spec": {"owner": "operator", "clusterRef": {"name": "site"},
               "fromVersion": "9.2.8", "toVersion": "9.2.12"}}),
    )
    .await
    .unwrap();
    assert_refused(
        merge_patch::<StorageUpgrade>(&ctx, "up", json!({"spec": {"toVersion": "9.2.13"}})).await,
        "owner, cluster, versions and node order are immutable",
    );
    merge_patch::<StorageUpgrade>(&ctx, "up", json!({"spec": {"rollback": true}}))
        .await
        .unwrap();

    // Migration targets are fixed once created.
    create_json::<Migration>(
        &ctx,
        json!({"metadata": {"name": "m"}, "spec": {"owner": "operator", "clusterRef": {"name": "site"},
               "sourceNode": "edge-1", "joiningNodes": ["edge-2"]}}),
    )
    .await
    .unwrap();
    assert_refused(
        merge_patch::<Migration>(&ctx, "m", json!({"spec": {"joiningNodes": ["edge-2", "edge-3"]}})).await,
        "joiningNodes is immutable; create a new Migration",
    );
    assert_refused(
        merge_patch::<Migration>(&ctx, "m", json!({"spec": {"clusterRef": {"name": "elsewhere"}}})).await,
        "clusterRef is immutable",
    );
    merge_patch::<Migration>(&ctx, "m", json!({"spec": {"rollback": true}}))
        .await
        .unwrap();
}

#[tokio::test]
async fn status_is_written_only_through_the_status_subresource() {
    let ctx = context("status").await;
    let api = ctx.api::<NodeTask>();
    create_json::<NodeTask>(&ctx, node_task("t1", "edge-1", "bond-set-active"))
        .await
        .unwrap();
    let before = api.get("t1").await.unwrap();

    // Status sent with the main resource is dropped by the server.
    let with_status = json!({"status": {"phase": "Running", "attempts": 1}});
    api.patch("t1", &PatchParams::default(), &Patch::Merge(&with_status))
        .await
        .unwrap();
    assert!(
        api.get("t1").await.unwrap().status.is_none(),
        "status must not be written through the main resource"
    );

    // Through /status it is stored, and the spec's generation does not move.
    let status = NodeTaskStatus {
        phase: Some(NodeTaskPhase::Succeeded),
        claimed_by: Some("nodewright-agent-x7k2p".into()),
        attempts: 1,
        exit_code: Some(0),
        output: Some("bond0: active slave eno2\n".into()),
        ..Default::default()
    };
    let patch =
        json!({"apiVersion": NodeTask::api_resource().api_version, "kind": "NodeTask", "status": status});
    api.patch_status(
        "t1",
        &PatchParams::apply("status-test").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
    let after = api.get("t1").await.unwrap();
    assert_eq!(
        after.status.as_ref().and_then(|s| s.phase),
        Some(NodeTaskPhase::Succeeded)
    );
    assert_eq!(after.status.as_ref().and_then(|s| s.exit_code), Some(0));
    assert_eq!(after.metadata.generation, before.metadata.generation);

    // Status is validated too.
    let bad = json!({"apiVersion": NodeTask::api_resource().api_version, "kind": "NodeTask",
                     "status": {"phase": "Exploded"}});
    let refused = api
        .patch_status(
            "t1",
            &PatchParams::apply("status-test").force(),
            &Patch::Apply(&bad),
        )
        .await;
    assert_refused(refused.map_err(api_message), "status.phase");
}

#[tokio::test]
async fn node_tasks_can_be_listed_for_one_node_by_field_selector() {
    let ctx = context("selector").await;
    for (name, node) in [("a", "edge-1"), ("b", "edge-2"), ("c", "edge-1")] {
        create_json::<NodeTask>(&ctx, node_task(name, node, "drbd-status"))
            .await
            .unwrap();
    }
    let listed = ctx
        .api::<NodeTask>()
        .list(&ListParams::default().fields("spec.nodeName=edge-1"))
        .await
        .unwrap();
    let mut names: Vec<_> = listed
        .items
        .iter()
        .map(|t| t.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "c"]);
}

#[tokio::test]
async fn kubectl_get_edgenodes_shows_the_printer_columns() {
    let ctx = context("columns").await;
    create_json::<EdgeNode>(
        &ctx,
        json!({"metadata": {"name": "edge-1"}, "spec": {"nodeName": "edge-1"}}),
    )
    .await
    .unwrap();
    let status = json!({"apiVersion": EdgeNode::api_resource().api_version, "kind": "EdgeNode", "status": {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "NetworkDegraded", "message": "bond0 slave eno2 down",
             "lastTransitionTime": "2026-11-20T10:00:00Z"},
            {"type": "NetworkDegraded", "status": "True", "reason": "BondSlaveDown", "message": "bond0 slave eno2 down",
             "lastTransitionTime": "2026-11-20T10:00:00Z"}],
        "bootRecovery": {"phase": "WaitingForResync"}}});
    ctx.api::<EdgeNode>()
        .patch_status(
            "edge-1",
            &PatchParams::apply("columns-test").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();

    let table = kubectl(&ctx, &["get", "edgenodes"]);
    let mut lines = table.lines();
    let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "NODE",
            "READY",
            "NETWORK",
            "STORAGE",
            "BOOT",
            "LEGACY-RUN",
            "AGE"
        ]
    );
    let row: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..5],
        ["edge-1", "edge-1", "False", "BondSlaveDown", "WaitingForResync"]
    );

    // The short name gives the same table (the AGE column may tick between the two calls).
    let short = kubectl(&ctx, &["get", "en"]);
    let without_age = |t: &str| {
        t.lines()
            .map(|l| l.rsplit_once(' ').map_or(l, |(rest, _)| rest).to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(without_age(&short), without_age(&table));
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_documentation() {
    let ctx = context("explain").await;
    let explained = explain(&ctx, &["explain", "edgenode.status"]);
    assert!(
        explained.contains("What Nodewright observes on the node."),
        "{explained}"
    );
    assert!(explained.contains("Bonded interfaces."), "{explained}");
    assert!(
        explained.contains("Legacy state that could not be parsed"),
        "{explained}"
    );

    let explained = explain(&ctx, &["explain", "bondflip.spec.from"]);
    assert!(
        explained.contains("The flip is refused if the bond is no"),
        "{explained}"
    );

    let explained = explain(&ctx, &["explain", "edgecluster.spec.workflows.storageUpgrade"]);
    assert!(explained.contains("The 21-state storage upgrade."), "{explained}");
}
