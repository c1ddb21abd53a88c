//! The chart's own-node enforcement for the node agent, against a real API server: the agent's
//! RBAC and ValidatingAdmissionPolicy, rendered by helm and applied, with the agent's
//! ServiceAccount impersonated the way a pod's bound token authenticates it (its node's name in
//! the user's extra `authentication.kubernetes.io/node-name`). RBAC lets the agent write the status
//! of every NodeTask in the namespace; the policy narrows that to its own node's.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use nodewright_agent_shim::Claim;
use nodewright_api::nodefacts::{FACTS_FIELD_MANAGER, NodeFacts};
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase, NodeTaskSpec};
use nodewright_testenv::TestContext;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/nodewright");
const RELEASE: &str = "nw";
const NODE_NAME_EXTRA: &str = "authentication.kubernetes.io/node-name";
const POLICY_MESSAGE: &str = "a node agent may update the status of its own node's NodeTasks only";

/// `helm template` with the agent enabled, by the helm testenv/build.sh builds beside kubectl.
fn render(namespace: &str) -> String {
    let helm = nodewright_testenv::default_bin_dir().join("helm");
    let out = Command::new(&helm)
        .args(["template", RELEASE, CHART, "--namespace", namespace])
        .args(["--set", "agent.enabled=true"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run testenv/build.sh)", helm.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The documents of the agent's RBAC and admission policy: everything the chart renders for the
/// agent but its DaemonSet, which needs no kubelet to be checked (tests/chart_rbac.rs applies it).
fn agent_objects(manifest: &str) -> String {
    manifest
        .split("\n---")
        .filter(|doc| doc.contains("app.kubernetes.io/component: agent"))
        .filter(|doc| !doc.contains("kind: DaemonSet"))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// A client acting as the agent's ServiceAccount, with the groups its token carries and, when
/// `node` is given, the node name a token bound to a pod on that node carries.
async fn as_agent(ctx: &TestContext, node: Option<&str>) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(ctx.control_plane.kubeconfig()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    let ns = &ctx.namespace;
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:{RELEASE}-agent"));
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".to_owned(),
    ]);
    if let Some(node) = node {
        config.auth_info.impersonate_user_extra = Some(HashMap::from([
            (NODE_NAME_EXTRA.to_owned(), vec![node.to_owned()]),
            (
                "authentication.kubernetes.io/pod-name".to_owned(),
                vec![format!("{RELEASE}-agent-{node}")],
            ),
        ]));
    }
    kube::Client::try_from(config).unwrap()
}

fn task(node: &str) -> NodeTask {
    NodeTask::new(
        &format!("task-{node}"),
        NodeTaskSpec {
            node_name: node.to_owned(),
            step: "bond-set-active".to_owned(),
            args: vec!["bond0".to_owned(), "eth1".to_owned()],
            idempotency_key: format!("admission-{node}"),
            workflow_ref: None,
            timeout_seconds: 60,
        },
    )
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

/// The agent's own claim (a resourceVersion-guarded status replace), on the task as it is now.
async fn claim(api: &Api<NodeTask>, admin: &Api<NodeTask>, name: &str) -> Result<Claim, kube::Error> {
    let current = admin.get(name).await.unwrap();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    nodewright_agent_shim::claim(api, &current, "nw-agent-test", "claimed by the test", &now).await
}

/// A status replace sent as a dry run: admitted (or refused) exactly as the agent's own, and
/// changes nothing.
async fn replace_status_dry(
    api: &Api<NodeTask>,
    admin: &Api<NodeTask>,
    name: &str,
) -> Result<NodeTask, kube::Error> {
    let mut current = admin.get(name).await.unwrap();
    current.status.get_or_insert_with(Default::default).message = Some("probed by the test".to_owned());
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.replace_status(name, &dry, &current).await
}

/// A merge patch of the status, the other way an UPDATE of nodetasks/status reaches the server
/// (RBAC grants the agent no patch; the policy would refuse it for another node's task too).
async fn patch_status(api: &Api<NodeTask>, name: &str) -> Result<NodeTask, kube::Error> {
    let patch = serde_json::json!({"status": {"message": "patched by the test"}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

struct Site {
    ctx: TestContext,
    admin: Api<NodeTask>,
}

/// The CRDs, the agent's RBAC and policy, and two NodeTasks, for nodes a and b; returns once the
/// policy is enforced (the API server loads policies asynchronously).
async fn site(prefix: &str) -> Site {
    let ctx = TestContext::new(prefix).await.unwrap();
    nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
        .await
        .unwrap();
    let objects = agent_objects(&render(&ctx.namespace));
    for kind in [
        "kind: ServiceAccount",
        "kind: Role",
        "kind: RoleBinding",
        "kind: ValidatingAdmissionPolicy\n",
        "kind: ValidatingAdmissionPolicyBinding",
        "-nw-agent-own-facts\n",
    ] {
        assert!(objects.contains(kind), "{kind} missing from:\n{objects}");
    }
    let applied = nodewright_testenv::apply_yaml(&ctx.client, &objects, None)
        .await
        .unwrap();
    // The two policies (tasks' status, facts) and their bindings.
    assert_eq!(applied, 7, "{objects}");
    let admin: Api<NodeTask> = ctx.api();
    for node in ["a", "b"] {
        admin.create(&PostParams::default(), &task(node)).await.unwrap();
    }
    // Enforced once the agent on node a is refused task b's status; until then the update goes
    // through, which does no harm to what follows.
    let agent_a: Api<NodeTask> = Api::namespaced(as_agent(&ctx, Some("a")).await, &ctx.namespace);
    nodewright_testenv::eventually(
        "the own-node policy to be enforced",
        Duration::from_secs(30),
        || {
            let (agent_a, admin) = (agent_a.clone(), admin.clone());
            async move {
                match replace_status_dry(&agent_a, &admin, "task-b").await {
                    Err(e) if code(&e) == Some(403) && message(&e).contains(POLICY_MESSAGE) => Some(()),
                    Err(e) if code(&e) == Some(403) => panic!("refused, but not by the policy: {e}"),
                    Err(e) => panic!("{e}"),
                    Ok(_) => None,
                }
            }
        },
    )
    .await;
    // Its status.typeChecking is written by kube-controller-manager, which the test control plane
    // does not run; every branch of the expressions is exercised by the tests instead.
    Site { ctx, admin }
}

#[tokio::test]
async fn the_agent_claims_its_own_nodes_task_and_is_refused_another_nodes() {
    let site = site("agent-own-node").await;
    let agent_a: Api<NodeTask> = Api::namespaced(as_agent(&site.ctx, Some("a")).await, &site.ctx.namespace);

    match claim(&agent_a, &site.admin, "task-a").await.unwrap() {
        Claim::Claimed(task) => {
            let status = task.status.unwrap();
            assert_eq!(status.phase, Some(NodeTaskPhase::Running));
            assert_eq!(status.claimed_by.as_deref(), Some("nw-agent-test"));
        }
        Claim::Lost => panic!("nobody else writes task-a"),
    }
    // A patch is not granted, even of its own node's task: the agent replaces.
    let refused = patch_status(&agent_a, "task-a").await.unwrap_err();
    assert_eq!(code(&refused), Some(403), "{refused}");
    assert!(
        !message(&refused).contains(POLICY_MESSAGE),
        "RBAC refuses it: {refused}"
    );

    let refused = claim(&agent_a, &site.admin, "task-b").await.unwrap_err();
    assert_eq!(code(&refused), Some(403), "{refused}");
    let text = message(&refused);
    assert!(text.contains(POLICY_MESSAGE), "{text}");
    assert!(
        text.contains("task-b is for node b") && text.contains("runs on node a"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}-{RELEASE}-agent-own-node", site.ctx.namespace)),
        "{text}"
    );
    let refused = replace_status_dry(&agent_a, &site.admin, "task-b")
        .await
        .unwrap_err();
    assert_eq!(code(&refused), Some(403), "{refused}");
    assert!(message(&refused).contains(POLICY_MESSAGE), "{refused}");

    // The agent on node b is the one that may.
    let agent_b: Api<NodeTask> = Api::namespaced(as_agent(&site.ctx, Some("b")).await, &site.ctx.namespace);
    assert!(matches!(
        claim(&agent_b, &site.admin, "task-b").await.unwrap(),
        Claim::Claimed(_)
    ));
}

#[tokio::test]
async fn an_agent_token_bound_to_no_node_may_update_no_status() {
    let site = site("agent-no-node").await;
    let unbound: Api<NodeTask> = Api::namespaced(as_agent(&site.ctx, None).await, &site.ctx.namespace);
    // It can still read (RBAC), but not write any status.
    assert_eq!(unbound.list(&ListParams::default()).await.unwrap().items.len(), 2);
    for name in ["task-a", "task-b"] {
        let refused = claim(&unbound, &site.admin, name).await.unwrap_err();
        assert_eq!(code(&refused), Some(403), "{refused}");
        assert!(message(&refused).contains("no node"), "{}", message(&refused));
    }
}

#[tokio::test]
async fn the_policy_binds_the_agent_only() {
    let site = site("agent-only").await;
    // The admin (and so the operator, or a person) is bound to no node and not refused.
    patch_status(&site.admin, "task-b").await.unwrap();
    claim(&site.admin, &site.admin, "task-a").await.unwrap();
}

#[tokio::test]
async fn the_agent_can_neither_create_delete_nor_change_tasks_nor_touch_anything_else() {
    let site = site("agent-nothing-else").await;
    let client = as_agent(&site.ctx, Some("a")).await;
    let ns = site.ctx.namespace.as_str();
    let agent: Api<NodeTask> = Api::namespaced(client.clone(), ns);
    let forbidden = |what: &str, result: Result<(), kube::Error>| match result {
        Err(e) if code(&e) == Some(403) => {}
        other => panic!("{what}: expected 403, got {other:?}"),
    };

    // Reading its tasks is what RBAC grants.
    let tasks = agent
        .list(&ListParams::default().fields("spec.nodeName=a"))
        .await
        .unwrap();
    assert_eq!(tasks.items.len(), 1);

    let mut own = task("a");
    own.metadata.name = Some("task-a-2".to_owned());
    forbidden(
        "create a NodeTask, even for its own node",
        agent.create(&PostParams::default(), &own).await.map(|_| ()),
    );
    forbidden(
        "delete its own node's NodeTask",
        agent.delete("task-a", &DeleteParams::default()).await.map(|_| ()),
    );
    forbidden(
        "delete every NodeTask",
        agent
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .map(|_| ()),
    );
    let mut changed = site.admin.get("task-a").await.unwrap();
    changed.spec.args = vec!["bond0".to_owned(), "eth0".to_owned()];
    forbidden(
        "replace a NodeTask (its spec)",
        agent
            .replace("task-a", &PostParams::default(), &changed)
            .await
            .map(|_| ()),
    );
    let patch = serde_json::json!({"metadata": {"labels": {"x": "y"}}});
    forbidden(
        "patch a NodeTask",
        agent
            .patch("task-a", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ()),
    );

    // Nothing else, here or elsewhere.
    let elsewhere = TestContext::new("agent-elsewhere").await.unwrap().namespace;
    forbidden(
        "list NodeTasks in another namespace",
        Api::<NodeTask>::namespaced(client.clone(), &elsewhere)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
    );
    forbidden(
        "list NodeTasks in every namespace",
        Api::<NodeTask>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|_| ()),
    );
    forbidden(
        "read ConfigMaps",
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
    );
    forbidden(
        "read EdgeNodes",
        Api::<nodewright_api::edgenode::EdgeNode>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
    );
    forbidden(
        "read Nodes",
        Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|_| ()),
    );
}

/// Applies node `node`'s facts under the name `name` as the agent does (server-side apply).
async fn apply_facts(
    client: &kube::Client,
    ns: &str,
    name: &str,
    node: &str,
) -> Result<NodeFacts, kube::Error> {
    let api: Api<NodeFacts> = Api::namespaced(client.clone(), ns);
    let object = serde_json::json!({
        "apiVersion": "nodewright.io/v1alpha1",
        "kind": "NodeFacts",
        "metadata": { "name": name },
        "spec": { "nodeName": node, "observedAt": "2026-01-01T00:00:00Z", "bootId": "b0" },
    });
    api.patch(
        name,
        &PatchParams::apply(FACTS_FIELD_MANAGER),
        &Patch::Apply(&object),
    )
    .await
}

#[tokio::test]
async fn the_agent_publishes_its_own_nodes_facts_and_is_refused_another_nodes_or_a_misnamed_one() {
    let site = site("agent-own-facts").await;
    let ns = site.ctx.namespace.clone();
    let agent_a = as_agent(&site.ctx, Some("a")).await;
    // The facts policy is loaded beside the tasks' one, but asynchronously too: wait until it
    // refuses node b's facts to node a's agent.
    let refused = nodewright_testenv::eventually(
        "the own-facts policy to be enforced",
        Duration::from_secs(30),
        || {
            let (agent_a, ns) = (agent_a.clone(), ns.clone());
            async move {
                match apply_facts(&agent_a, &ns, "b", "b").await {
                    Err(e) if code(&e) == Some(403) => Some(e),
                    Err(e) => panic!("{e}"),
                    // Written before the policy was loaded; the next try is an update, checked the same.
                    Ok(_) => None,
                }
            }
        },
    )
    .await;
    let text = message(&refused);
    assert!(
        text.contains("a node agent may write its own node's NodeFacts only"),
        "{text}"
    );
    assert!(
        text.contains("b is for node b") && text.contains("runs on node a"),
        "{text}"
    );

    // Its own node's, named after it: created, then updated.
    let created = apply_facts(&agent_a, &ns, "a", "a").await.unwrap();
    assert_eq!(created.spec.node_name, "a");
    apply_facts(&agent_a, &ns, "a", "a").await.unwrap();
    // Its own node's facts under another name are refused too.
    let misnamed = apply_facts(&agent_a, &ns, "not-a", "a").await.unwrap_err();
    assert_eq!(code(&misnamed), Some(403), "{misnamed}");
    // A token bound to no node writes no facts.
    let unbound = as_agent(&site.ctx, None).await;
    let refused = apply_facts(&unbound, &ns, "a", "a").await.unwrap_err();
    assert!(message(&refused).contains("no node"), "{}", message(&refused));
    // RBAC: no delete.
    let agent_facts: Api<NodeFacts> = Api::namespaced(agent_a, &ns);
    let refused = agent_facts
        .delete("a", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(code(&refused), Some(403), "{refused}");
}
