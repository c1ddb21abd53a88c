//! Least privilege as the API server enforces it, against a real API server: the chart's
//! admission policies (`nodetask-admission-policy.yaml`, `operator-node-policy.yaml`) rendered by
//! helm and applied with the operator's and the agent's RBAC, and each refusal shown by acting as
//! the ServiceAccount it concerns (impersonated with the groups its token carries), as the cluster
//! admin, or as a person.
//!
//! - Only the operator's ServiceAccount creates NodeTasks, and each names its creator in
//!   `nodewright.io/created-by`, which must be the requester and never changes.
//! - A site-storage delete (`linstor-node-delete`, `resource-delete`) must be controlled by the
//!   Migration its `workflowRef` names.
//! - The operator's Node patches change only its own taints and labels, cordon (spec.unschedulable)
//!   and the legacy upgrade-state annotation it mirrors.
//! - Node-name fields carry the DNS-1123 pattern in the CRDs.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use nodewright_api::migration::{Migration, MigrationSpec};
use nodewright_api::nodetask::{CREATED_BY_ANNOTATION, NodeTask, NodeTaskSpec, WorkflowKind, WorkflowRef};
use nodewright_testenv::TestContext;
use serde_json::json;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/nodewright");
const RELEASE: &str = "nw";
const ONLY_OPERATOR: &str = "may create NodeTasks";
const FOREIGN_LABEL: &str = "the operator may change only the labels";

/// `helm template` with the operator and the agent enabled.
fn render(namespace: &str, legacy: &str) -> String {
    let helm = nodewright_testenv::default_bin_dir().join("helm");
    let out = Command::new(&helm)
        .args(["template", RELEASE, CHART, "--namespace", namespace])
        .args(["--set", "agent.enabled=true", "--set", "operator.enabled=true"])
        .args(["--set", &format!("legacy.namespace={legacy}")])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run testenv/build.sh)", helm.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Everything the chart renders but its workloads (no kubelet here runs them): RBAC, the
/// ServiceAccounts and every admission policy.
fn policies_and_rbac(manifest: &str) -> String {
    manifest
        .split("\n---")
        .filter(|doc| {
            !["kind: Deployment", "kind: DaemonSet", "kind: Service\n"]
                .iter()
                .any(|k| doc.contains(k))
        })
        .filter(|doc| doc.contains("kind: "))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn service_account(ns: &str, component: &str) -> String {
    format!("system:serviceaccount:{ns}:{RELEASE}-{component}")
}

/// A client acting as `user` (a ServiceAccount, with its token's groups, or a person).
async fn acting_as(ctx: &TestContext, user: &str) -> kube::Client {
    let groups = match user.strip_prefix("system:serviceaccount:") {
        Some(rest) => nodewright_testenv::service_account_groups(rest.split(':').next().unwrap_or_default()),
        // A person with every right: only the policies can stop them.
        None => vec!["system:masters".to_owned(), "system:authenticated".to_owned()],
    };
    nodewright_testenv::client_as(ctx.control_plane.kubeconfig(), user, groups)
        .await
        .unwrap()
}

fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The error of a request the API server must refuse with 403, and its message.
fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> String {
    match result {
        Err(e) if code(&e) == Some(403) => message(&e),
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn task(name: &str, step: &str, args: &[&str], created_by: Option<&str>) -> NodeTask {
    let mut t = NodeTask::new(
        name,
        NodeTaskSpec {
            node_name: "edge-1".to_owned(),
            step: step.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            idempotency_key: name.to_owned(),
            workflow_ref: None,
            timeout_seconds: 60,
        },
    );
    if let Some(by) = created_by {
        t.metadata.annotations = Some(BTreeMap::from([(
            CREATED_BY_ANNOTATION.to_owned(),
            by.to_owned(),
        )]));
    }
    t
}

struct Site {
    ctx: TestContext,
    operator: String,
    /// NodeTasks as the operator.
    as_operator: Api<NodeTask>,
    /// NodeTasks as a person with every right (system:masters).
    as_admin: Api<NodeTask>,
}

/// The CRDs, the chart's RBAC and policies; returns once the NodeTask policy is enforced (the
/// API server loads policies asynchronously).
async fn site(prefix: &str) -> Site {
    let ctx = TestContext::new(prefix).await.unwrap();
    let legacy = TestContext::new(&format!("{prefix}-legacy"))
        .await
        .unwrap()
        .namespace;
    nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
        .await
        .unwrap();
    let objects = policies_and_rbac(&render(&ctx.namespace, &legacy));
    for name in ["-nodetasks", "-operator-nodes", "-operator-configmaps"] {
        assert!(
            objects.contains(&format!("name: {}-{RELEASE}{name}", ctx.namespace)),
            "policy {name} missing from:\n{objects}"
        );
    }
    nodewright_testenv::apply_yaml(&ctx.client, &objects, Some(&ctx.namespace))
        .await
        .unwrap();
    let ns = ctx.namespace.clone();
    let operator = service_account(&ns, "operator");
    let as_operator = Api::namespaced(acting_as(&ctx, &operator).await, &ns);
    let as_admin: Api<NodeTask> = Api::namespaced(acting_as(&ctx, "jane").await, &ns);
    // Enforced once a person's create is refused; probed by dry runs, which admission sees too.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    nodewright_testenv::eventually(
        "the NodeTask policy to be enforced",
        Duration::from_secs(30),
        || {
            let (as_admin, dry) = (as_admin.clone(), dry.clone());
            async move {
                let probe = task("probe", "drbd-status", &[], Some("jane"));
                match as_admin.create(&dry, &probe).await {
                    Err(e) if code(&e) == Some(403) && message(&e).contains(ONLY_OPERATOR) => Some(()),
                    Err(e) => panic!("refused, but not by the policy: {e}"),
                    Ok(_) => None,
                }
            }
        },
    )
    .await;
    Site {
        ctx,
        operator,
        as_operator,
        as_admin,
    }
}

#[tokio::test]
async fn only_the_operator_creates_node_tasks_and_only_under_its_own_name() {
    let site = site("priv-create").await;
    let op = site.operator.as_str();

    // The operator, naming itself: created.
    let created = site
        .as_operator
        .create(&PostParams::default(), &task("t1", "drbd-status", &[], Some(op)))
        .await
        .unwrap();
    assert_eq!(
        created
            .annotations()
            .get(CREATED_BY_ANNOTATION)
            .map(String::as_str),
        Some(op)
    );

    // A person with every right, whatever the annotation says.
    for by in [Some("jane"), Some(op), None] {
        let text = refused(
            "a person creates a NodeTask",
            site.as_admin
                .create(&PostParams::default(), &task("t2", "drbd-status", &[], by))
                .await,
        );
        assert!(
            text.contains(&format!(
                "only the operator ({op}) may create NodeTasks; jane may not"
            )),
            "{text}"
        );
    }

    // The operator without the annotation, or naming someone else.
    let text = refused(
        "the operator creates an unattributed NodeTask",
        site.as_operator
            .create(&PostParams::default(), &task("t3", "drbd-status", &[], None))
            .await,
    );
    assert!(
        text.contains("must name its creator") && text.contains("it says nothing"),
        "{text}"
    );
    let text = refused(
        "the operator creates a NodeTask in another's name",
        site.as_operator
            .create(
                &PostParams::default(),
                &task("t4", "drbd-status", &[], Some("jane")),
            )
            .await,
    );
    assert!(
        text.contains("it says \"jane\"") && text.contains(&format!("the creator is {op}")),
        "{text}"
    );

    // The agent cannot create one at all (RBAC, before any policy).
    let agent: Api<NodeTask> = Api::namespaced(
        acting_as(&site.ctx, &service_account(&site.ctx.namespace, "agent")).await,
        &site.ctx.namespace,
    );
    refused(
        "the agent creates a NodeTask",
        agent
            .create(&PostParams::default(), &task("t5", "drbd-status", &[], Some(op)))
            .await,
    );
}

#[tokio::test]
async fn a_tasks_creator_never_changes_and_no_owner_is_ever_added() {
    let site = site("priv-update").await;
    let op = site.operator.as_str();
    site.as_operator
        .create(&PostParams::default(), &task("t1", "drbd-status", &[], Some(op)))
        .await
        .unwrap();
    let patch = |v: serde_json::Value| {
        let admin = site.as_admin.clone();
        async move {
            admin
                .patch("t1", &PatchParams::default(), &Patch::Merge(&v))
                .await
        }
    };

    let text = refused(
        "re-attribute a task",
        patch(json!({"metadata": {"annotations": {CREATED_BY_ANNOTATION: "jane"}}})).await,
    );
    assert!(text.contains("never changes") && text.contains(op), "{text}");
    refused(
        "remove the attribution",
        patch(json!({"metadata": {"annotations": {CREATED_BY_ANNOTATION: null}}})).await,
    );
    let owner = json!([{
        "apiVersion": "nodewright.io/v1alpha1", "kind": "Migration", "name": "grow",
        "uid": "00000000-0000-4000-8000-000000000001", "controller": true,
    }]);
    let text = refused(
        "add an owner",
        patch(json!({"metadata": {"ownerReferences": owner}})).await,
    );
    assert!(text.contains("never added or changed"), "{text}");

    // What the policy does not concern goes through: another label or annotation.
    patch(json!({"metadata": {"labels": {"team": "storage"}, "annotations": {"note": "x"}}}))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_site_storage_delete_must_be_controlled_by_the_migration_it_names() {
    let site = site("priv-delete").await;
    let op = site.operator.as_str();
    let ns = site.ctx.namespace.as_str();
    let spec: MigrationSpec = serde_json::from_value(json!({
        "owner": "operator", "clusterRef": {"name": "site"},
        "sourceNode": "edge-1", "joiningNodes": ["edge-2"],
    }))
    .unwrap();
    let migrations: Api<Migration> = Api::namespaced(site.ctx.client.clone(), ns);
    let m = migrations
        .create(&PostParams::default(), &Migration::new("grow", spec))
        .await
        .unwrap();
    let owned = |name: &str, step: &str, args: &[&str], workflow: &str| {
        let mut t = task(name, step, args, Some(op));
        t.spec.workflow_ref = Some(WorkflowRef {
            kind: WorkflowKind::Migration,
            name: workflow.to_owned(),
        });
        t.metadata.owner_references = m.controller_owner_ref(&()).map(|o| vec![o]);
        t
    };

    // As the migration's rollback creates them: allowed.
    site.as_operator
        .create(
            &PostParams::default(),
            &owned("undo-node", "linstor-node-delete", &["edge-2"], "grow"),
        )
        .await
        .unwrap();
    site.as_operator
        .create(
            &PostParams::default(),
            &owned("undo-replica", "resource-delete", &["edge-2", "pvc-1"], "grow"),
        )
        .await
        .unwrap();

    // Not owned, owned but naming another workflow, owned without being the controller.
    let bare = task("d1", "linstor-node-delete", &["edge-2"], Some(op));
    let text = refused(
        "an unowned linstor-node-delete",
        site.as_operator.create(&PostParams::default(), &bare).await,
    );
    assert!(
        text.contains("linstor-node-delete removes storage the whole site shares"),
        "{text}"
    );
    refused(
        "a resource-delete naming another Migration",
        site.as_operator
            .create(
                &PostParams::default(),
                &owned("d2", "resource-delete", &["edge-2", "pvc-1"], "other"),
            )
            .await,
    );
    let mut not_controller = owned("d3", "resource-delete", &["edge-2", "pvc-1"], "grow");
    let refs: Vec<OwnerReference> = not_controller
        .metadata
        .owner_references
        .take()
        .unwrap()
        .into_iter()
        .map(|o| OwnerReference {
            controller: None,
            ..o
        })
        .collect();
    not_controller.metadata.owner_references = Some(refs);
    refused(
        "a resource-delete its Migration does not control",
        site.as_operator
            .create(&PostParams::default(), &not_controller)
            .await,
    );
    // Other steps need no owner.
    site.as_operator
        .create(
            &PostParams::default(),
            &task("ok", "linstor-node-create", &["edge-2", "10.0.0.2"], Some(op)),
        )
        .await
        .unwrap();
}

fn node(name: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/hostname".to_owned(), name.to_owned()),
                ("vx-rail.io/role".to_owned(), "primary".to_owned()),
            ])),
            annotations: Some(BTreeMap::from([(
                "vx-rail.io/state".to_owned(),
                "ready".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "dedicated".to_owned(),
                value: Some("storage".to_owned()),
                effect: "NoSchedule".to_owned(),
                time_added: None,
            }]),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

#[tokio::test]
async fn the_operators_node_patches_change_only_its_own_taints_labels_cordon_and_upgrade_state() {
    let site = site("priv-nodes").await;
    let name = format!("{}-edge-1", site.ctx.namespace);
    let admin_nodes: Api<Node> = Api::all(site.ctx.client.clone());
    admin_nodes
        .create(&PostParams::default(), &node(&name))
        .await
        .unwrap();
    let operator: Api<Node> = Api::all(acting_as(&site.ctx, &site.operator).await);
    let patch = |v: serde_json::Value| {
        let (operator, name) = (operator.clone(), name.clone());
        async move {
            operator
                .patch(&name, &PatchParams::default(), &Patch::Merge(&v))
                .await
        }
    };
    // The Node policy is loaded apart from the NodeTask one: wait for it too (a dry run).
    let dry = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    nodewright_testenv::eventually("the Node policy to be enforced", Duration::from_secs(30), || {
        let (operator, name, dry) = (operator.clone(), name.clone(), dry.clone());
        async move {
            let v = json!({"metadata": {"labels": {"probe": "x"}}});
            match operator.patch(&name, &dry, &Patch::Merge(&v)).await {
                Err(e) if code(&e) == Some(403) && message(&e).contains(FOREIGN_LABEL) => Some(()),
                Err(e) => panic!("refused, but not by the policy: {e}"),
                Ok(_) => None,
            }
        }
    })
    .await;

    // The taints the Node has, as the operator reads them before it patches: the one the test
    // put on, and those the API server adds (node.kubernetes.io/not-ready on a new Node).
    let before: Vec<serde_json::Value> = admin_nodes
        .get(&name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .taints
        .unwrap()
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    let with = |extra: &[serde_json::Value]| {
        let mut all = before.clone();
        all.extend(extra.iter().cloned());
        serde_json::Value::from(all)
    };

    // Its own taint, on and off, kept beside those it does not own; its own labels.
    let not_ready = json!({"key": "vx-rail.io/storage-not-ready", "value": "resync", "effect": "NoSchedule"});
    patch(json!({"spec": {"taints": with(&[not_ready])}}))
        .await
        .unwrap();
    patch(
        json!({"metadata": {"labels": {"vx-rail.io/storage-ready": "false", "vx-rail.io/role": "joining"}}}),
    )
    .await
    .unwrap();
    patch(
        json!({"spec": {"taints": with(&[])}, "metadata": {"labels": {"vx-rail.io/storage-ready": "true"}}}),
    )
    .await
    .unwrap();
    let now = admin_nodes.get(&name).await.unwrap();
    assert_eq!(
        now.labels().get("vx-rail.io/role").map(String::as_str),
        Some("joining")
    );
    assert_eq!(now.spec.unwrap().taints.unwrap().len(), before.len());

    // The storage upgrade's cordon, its upgrade taint and the mirrored upgrade-state annotation,
    // as one patch; then the uncordon, the taint off and the annotation removed.
    let upgrade_taint =
        json!({"key": "vx-rail.io/upgrade-in-progress", "value": "true", "effect": "NoSchedule"});
    let state = "state=CORDON_AND_TAINT;to=9.2.14;since=1790000000;owner=operator";
    patch(json!({
        "spec": {"unschedulable": true, "taints": with(&[upgrade_taint])},
        "metadata": {"annotations": {"vx-rail.io/upgrade-state": state}},
    }))
    .await
    .unwrap();
    let cordoned = admin_nodes.get(&name).await.unwrap();
    assert_eq!(cordoned.spec.as_ref().unwrap().unschedulable, Some(true));
    assert_eq!(
        cordoned
            .annotations()
            .get("vx-rail.io/upgrade-state")
            .map(String::as_str),
        Some(state)
    );
    patch(json!({
        "spec": {"unschedulable": false, "taints": with(&[])},
        "metadata": {"annotations": {"vx-rail.io/upgrade-state": null}},
    }))
    .await
    .unwrap();
    let uncordoned = admin_nodes.get(&name).await.unwrap();
    assert_ne!(uncordoned.spec.as_ref().unwrap().unschedulable, Some(true));
    assert!(!uncordoned.annotations().contains_key("vx-rail.io/upgrade-state"));
    assert_eq!(
        uncordoned
            .annotations()
            .get("vx-rail.io/state")
            .map(String::as_str),
        Some("ready"),
        "the script's annotation is untouched"
    );

    // Another label: added, changed, removed.
    for (what, labels) in [
        ("add another label", json!({"team": "x"})),
        (
            "change another label",
            json!({"kubernetes.io/hostname": "elsewhere"}),
        ),
        ("remove another label", json!({"kubernetes.io/hostname": null})),
    ] {
        let text = refused(what, patch(json!({"metadata": {"labels": labels}})).await);
        assert!(text.contains(FOREIGN_LABEL), "{what}: {text}");
    }
    let text = refused(
        "change another label beside an own one",
        patch(json!({"metadata": {"labels": {"vx-rail.io/role": "member", "team": "x"}}})).await,
    );
    assert!(
        text.contains("this request changes team") && !text.contains("changes vx-rail.io/role"),
        "{text}"
    );
    // Another taint: removed, added.
    let without_dedicated: Vec<serde_json::Value> = before
        .iter()
        .filter(|t| t["key"] != "dedicated")
        .cloned()
        .collect();
    let text = refused(
        "remove another taint",
        patch(json!({"spec": {"taints": without_dedicated}})).await,
    );
    assert!(
        text.contains("the operator may change only the taints vx-rail.io/storage-not-ready, vx-rail.io/upgrade-in-progress")
            && text.contains("this request changes dedicated:NoSchedule"),
        "{text}"
    );
    let evict = json!({"key": "evict", "effect": "NoExecute"});
    let text = refused(
        "add another taint",
        patch(json!({"spec": {"taints": with(&[evict])}})).await,
    );
    assert!(text.contains("this request changes evict:NoExecute"), "{text}");
    // A spec field but cordon.
    let text = refused(
        "set the node's provider ID",
        patch(json!({"spec": {"providerID": "external://edge-1"}})).await,
    );
    assert!(
        text.contains("no field of a Node's spec but its own taints and spec.unschedulable")
            && text.contains("this request changes spec.providerID"),
        "{text}"
    );
    let text = refused(
        "cordon the node and set its pod CIDR",
        patch(json!({"spec": {"unschedulable": true, "podCIDR": "10.244.0.0/24"}})).await,
    );
    assert!(
        text.contains("this request changes spec.podCIDR") && !text.contains("changes spec.unschedulable"),
        "{text}"
    );
    // An annotation but the upgrade state, even the legacy script's.
    let text = refused(
        "change an annotation",
        patch(json!({"metadata": {"annotations": {"vx-rail.io/state": "error"}}})).await,
    );
    assert!(
        text.contains("the operator may change only the annotations vx-rail.io/upgrade-state of a Node")
            && text.contains("this request changes vx-rail.io/state"),
        "{text}"
    );
    let text = refused(
        "mirror the upgrade state and add another annotation",
        patch(json!({"metadata": {"annotations": {
            "vx-rail.io/upgrade-state": "state=PREFLIGHT;to=9.2.14;since=1;owner=operator",
            "note": "x",
        }}}))
        .await,
    );
    assert!(
        text.contains("this request changes note") && !text.contains("changes vx-rail.io/upgrade-state"),
        "{text}"
    );
    refused(
        "add a finalizer",
        patch(json!({"metadata": {"finalizers": ["example.com/keep"]}})).await,
    );

    // The policy binds the operator only: a person may still change what the operator may not.
    admin_nodes
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"note": "x"}}})),
        )
        .await
        .unwrap();
    admin_nodes.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn the_operator_creates_only_the_cluster_state_the_takeover_and_the_nodes_configmaps() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let site = site("priv-configmaps").await;
    // site() applies every namespaced object of the chart into the test's namespace, the legacy
    // namespace's Role (with its ConfigMap create) included; the policy is not namespaced.
    let operator: Api<ConfigMap> =
        Api::namespaced(acting_as(&site.ctx, &site.operator).await, &site.ctx.namespace);
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
    };
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    // The policy is loaded apart from the others, and the legacy namespace's Role may not be in
    // RBAC's cache yet: wait for both (a dry run).
    nodewright_testenv::eventually(
        "the ConfigMap policy to be enforced",
        Duration::from_secs(30),
        || {
            let (operator, dry) = (operator.clone(), dry.clone());
            async move {
                match operator.create(&dry, &cm("probe")).await {
                    Err(e) if code(&e) == Some(403) && message(&e).contains("may create only") => Some(()),
                    // The Role and its binding were just created: RBAC's cache may not have them.
                    Err(e) if code(&e) == Some(403) && message(&e).contains("cannot create resource") => None,
                    Err(e) => panic!("refused, but not by the policy: {e}"),
                    Ok(_) => None,
                }
            }
        },
    )
    .await;
    let refusal = refused(
        "a ConfigMap of another name",
        operator
            .create(&PostParams::default(), &cm("kube-root-ca-like"))
            .await,
    );
    assert!(
        refusal.contains("the operator may create only the ConfigMaps vx-rail-cluster-state, nodewright-takeover and vx-rail-node-<node>, not kube-root-ca-like"),
        "{refusal}"
    );
    for name in ["vx-rail-cluster-state", "vx-rail-node-edge-1"] {
        operator.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
}

#[tokio::test]
async fn node_names_that_are_not_dns_1123_subdomains_are_refused_by_the_crds() {
    let ctx = TestContext::new("priv-names").await.unwrap();
    nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
        .await
        .unwrap();
    let migrations: Api<Migration> = ctx.api();
    let tasks: Api<NodeTask> = ctx.api();
    let migration = |source: &str, joining: &[&str]| {
        let spec: MigrationSpec = serde_json::from_value(json!({
            "owner": "operator", "clusterRef": {"name": "site"},
            "sourceNode": source, "joiningNodes": joining,
        }))
        .unwrap();
        Migration::new("grow", spec)
    };
    let invalid = |what: &str, e: kube::Error, field: &str| {
        assert_eq!(code(&e), Some(422), "{what}: {e}");
        let text = message(&e);
        assert!(
            text.contains(field) && text.contains("should match"),
            "{what}: {text}"
        );
    };
    for bad in ["edge-2;since=a[$(reboot)]", "Edge-2", "edge_2", "-edge", "edge 2"] {
        let e = migrations
            .create(&PostParams::default(), &migration("edge-1", &[bad]))
            .await
            .unwrap_err();
        invalid(bad, e, "spec.joiningNodes[0]");
        let e = migrations
            .create(&PostParams::default(), &migration(bad, &["edge-2"]))
            .await
            .unwrap_err();
        invalid(bad, e, "spec.sourceNode");
        let mut t = task("t", "drbd-status", &[], None);
        t.spec.node_name = bad.to_owned();
        let e = tasks.create(&PostParams::default(), &t).await.unwrap_err();
        invalid(bad, e, "spec.nodeName");
    }
    let bondflips: Api<nodewright_api::BondFlip> = ctx.api();
    let flip: nodewright_api::BondFlip = serde_json::from_value(json!({
        "apiVersion": "nodewright.io/v1alpha1", "kind": "BondFlip",
        "metadata": {"name": "flip"},
        "spec": {"owner": "operator", "nodeName": "edge_1", "bond": "bond0",
                 "from": {"mode": "active-backup", "activeSlave": "eno1"}, "to": {"activeSlave": "eno2"}},
    }))
    .unwrap();
    let e = bondflips.create(&PostParams::default(), &flip).await.unwrap_err();
    invalid("bondflip", e, "spec.nodeName");
    let upgrades: Api<nodewright_api::StorageUpgrade> = ctx.api();
    let upgrade: nodewright_api::StorageUpgrade = serde_json::from_value(json!({
        "apiVersion": "nodewright.io/v1alpha1", "kind": "StorageUpgrade",
        "metadata": {"name": "up"},
        "spec": {"owner": "operator", "clusterRef": {"name": "site"},
                 "fromVersion": "9.2.12", "toVersion": "9.2.14", "nodeOrder": ["edge-1", "EDGE-2"]},
    }))
    .unwrap();
    let e = upgrades
        .create(&PostParams::default(), &upgrade)
        .await
        .unwrap_err();
    invalid("storageupgrade", e, "spec.nodeOrder[1]");
    let edgenodes: Api<nodewright_api::EdgeNode> = ctx.api();
    let e = edgenodes
        .create(
            &PostParams::default(),
            &nodewright_api::EdgeNode::new(
                "edge-1",
                nodewright_api::EdgeNodeSpec {
                    node_name: "edge-1.".to_owned(),
                    cluster_ref: None,
                    host: None,
                },
            ),
        )
        .await
        .unwrap_err();
    invalid("edgenode", e, "spec.nodeName");
    // Good names go through.
    migrations
        .create(
            &PostParams::default(),
            &migration("edge-1", &["edge-2", "edge-3.site.example"]),
        )
        .await
        .unwrap();
}
