//! The chart's RBAC against a real API server: rendered by helm, applied, and asked with
//! `kubectl auth can-i --as` (and SelfSubjectRulesReviews) what each ServiceAccount may do. The
//! bridge is an observer: it reads what the legacy script owns and writes only Nodewright's own
//! resources, Events and its leader Lease, in its own namespace. The operator and the agent, off by
//! default, get exactly what their loops use when enabled.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use nodewright_testenv::TestContext;
use serde_json::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/nodewright");
const RELEASE: &str = "nw";
const DAEMONSET: &str = "vx-rail-node-init";
const ENABLE_ALL: &str = "operator.enabled=true,agent.enabled=true,ui.enabled=true";

/// The chart installed in a fresh namespace, observing a fresh legacy namespace.
struct Installed {
    ctx: TestContext,
    legacy: String,
    /// A namespace the chart has nothing to do with.
    other: String,
    sa: String,
}

fn output(mut cmd: Command, stdin: Option<&str>) -> (bool, String, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `helm template` with the helm that testenv/build.sh builds beside kubectl, with extra `--set`s.
fn render(namespace: &str, legacy: &str, set: &[&str]) -> String {
    let helm = nodewright_testenv::default_bin_dir().join("helm");
    assert!(
        helm.is_file(),
        "{} is missing: run testenv/build.sh",
        helm.display()
    );
    let mut helm = Command::new(helm);
    helm.args(["template", RELEASE, CHART, "--namespace", namespace])
        .args(["--set", &format!("legacy.namespace={legacy}")]);
    for value in set {
        helm.args(["--set", value]);
    }
    let (ok, stdout, stderr) = output(helm, None);
    assert!(ok, "helm template failed: {stderr}");
    stdout
}

async fn install(prefix: &str) -> Installed {
    install_with(prefix, &[]).await
}

/// [`install`] with extra `--set`s.
async fn install_with(prefix: &str, set: &[&str]) -> Installed {
    let ctx = TestContext::new(prefix).await.unwrap();
    let legacy = TestContext::new(&format!("{prefix}-legacy"))
        .await
        .unwrap()
        .namespace;
    let other = TestContext::new(&format!("{prefix}-other"))
        .await
        .unwrap()
        .namespace;
    // `can-i` resolves resource names through discovery, so the CRDs must be served.
    nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
        .await
        .unwrap();
    // Everything, with the operator and the agent enabled, the Deployments, DaemonSet, Service
    // and admission policy too: the server validates them, though with no scheduler or kubelet
    // here nothing runs.
    let manifest = render(&ctx.namespace, &legacy, &[&[ENABLE_ALL], set].concat());
    let mut apply = ctx.control_plane.kubectl();
    apply.args(["apply", "--server-side", "-f", "-"]);
    let (ok, stdout, stderr) = output(apply, Some(&manifest));
    assert!(ok, "applying the chart failed: {stdout}{stderr}");
    let sa = format!("system:serviceaccount:{}:{RELEASE}-bridge", ctx.namespace);
    Installed {
        ctx,
        legacy,
        other,
        sa,
    }
}

impl Installed {
    /// `kubectl auth can-i VERB TARGET -n NAMESPACE --as <bridge>`, where TARGET is a resource, a
    /// `resource/name`, or a `resource:subresource`.
    fn can(&self, verb: &str, target: &str, namespace: &str) -> bool {
        let mut cmd = self.ctx.control_plane.kubectl();
        cmd.args(["auth", "can-i", verb]);
        match target.split_once(':') {
            Some((resource, sub)) => cmd.args([resource, "--subresource", sub]),
            None => cmd.arg(target),
        };
        cmd.args(["-n", namespace, "--as", &self.sa]);
        // The answer is on stdout; stderr may carry a warning (nodes are not namespaced). Anything
        // but a yes or no, or a resource the server does not know, would make a "cannot" vacuous.
        let (_, stdout, stderr) = output(cmd, None);
        assert!(
            !stderr.contains("doesn't have a resource type"),
            "can-i {verb} {target}: {stderr}"
        );
        match stdout.trim() {
            "yes" => true,
            "no" => false,
            _ => panic!("can-i {verb} {target} in {namespace}: {stdout}{stderr}"),
        }
    }

    /// Every permission `user` has in `namespace` (cluster-wide ones included), as
    /// `verb group/resource[names]`: the SelfSubjectRulesReview that `kubectl auth can-i --list`
    /// prints as a table, read as JSON.
    fn rules(&self, user: &str, namespace: &str) -> BTreeSet<String> {
        let review = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        });
        let mut cmd = self.ctx.control_plane.kubectl();
        // --raw: client-side validation would first list CRDs, which the bridge may not.
        let path = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
        cmd.args(["create", "--raw", path, "-f", "-", "--as", user]);
        let (ok, stdout, stderr) = output(cmd, Some(&review.to_string()));
        assert!(ok, "SelfSubjectRulesReview failed: {stderr}");
        let review: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(review["status"]["incomplete"], Value::Bool(false), "{stdout}");
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default()
        };
        let mut rules = BTreeSet::new();
        for rule in review["status"]["resourceRules"].as_array().unwrap() {
            let names = strings(&rule["resourceNames"]).join(",");
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        rules.insert(format!("{verb} {group}/{resource}[{names}]"));
                    }
                }
            }
        }
        rules
    }

    /// What the chart grants the bridge in `namespace`.
    fn granted(&self, namespace: &str) -> BTreeSet<String> {
        self.granted_to("bridge", namespace)
    }

    /// What the chart grants the ServiceAccount of `component` (bridge, operator, agent) in
    /// `namespace`: its rules less those of a ServiceAccount nobody bound anything to, which every
    /// authenticated user has (self-reviews, and whatever else this Kubernetes version gives
    /// everyone, e.g. reading ClusterTrustBundles).
    fn granted_to(&self, component: &str, namespace: &str) -> BTreeSet<String> {
        let ns = &self.ctx.namespace;
        let nobody = format!("system:serviceaccount:{ns}:nobody");
        let sa = format!("system:serviceaccount:{ns}:{RELEASE}-{component}");
        let baseline = self.rules(&nobody, namespace);
        self.rules(&sa, namespace)
            .difference(&baseline)
            .cloned()
            .collect()
    }
}

/// `verbs group/resource[names]` for each verb.
fn expand(specs: &[(&str, &str)]) -> BTreeSet<String> {
    specs
        .iter()
        .flat_map(|(verbs, target)| verbs.split(',').map(move |verb| format!("{verb} {target}")))
        .collect()
}

const NODEWRIGHT_KINDS: [&str; 5] = [
    "edgeclusters",
    "edgenodes",
    "storageupgrades",
    "migrations",
    "bondflips",
];

#[tokio::test]
async fn the_bridge_can_read_the_legacy_objects_and_nodes() {
    let it = install("chart-read").await;
    let legacy = it.legacy.as_str();
    for (verb, target) in [
        ("get", "configmaps"),
        ("list", "configmaps"),
        ("watch", "configmaps"),
        ("get", "pods"),
        ("list", "pods"),
        ("watch", "pods"),
        ("get", "pods:log"),
        ("get", "nodes"),
        ("list", "nodes"),
        ("watch", "nodes"),
        ("get", &format!("daemonsets.apps/{DAEMONSET}")),
    ] {
        assert!(
            it.can(verb, target, legacy),
            "the bridge may {verb} {target} in {legacy}"
        );
    }
}

#[tokio::test]
async fn the_bridge_cannot_write_anything_the_legacy_script_owns() {
    let it = install("chart-nowrite").await;
    let legacy = it.legacy.as_str();
    for verb in ["create", "update", "patch", "delete", "deletecollection"] {
        for target in [
            "configmaps",
            "nodes",
            "nodes:status",
            "pods",
            "pods:status",
            "pods:eviction",
            "pods:exec",
            "daemonsets.apps",
        ] {
            assert!(
                !it.can(verb, target, legacy),
                "the bridge must not {verb} {target} in {legacy}"
            );
        }
    }
    // Reading is limited too: the one DaemonSet, and nothing secret.
    for (verb, target) in [
        ("get", "daemonsets.apps/some-other-daemonset"),
        ("list", "daemonsets.apps"),
        ("get", "secrets"),
        ("get", "pods:exec"),
        ("create", "pods:exec"),
    ] {
        assert!(
            !it.can(verb, target, legacy),
            "the bridge must not {verb} {target} in {legacy}"
        );
    }
}

#[tokio::test]
async fn the_bridge_writes_its_own_resources_events_and_lease_only_in_its_namespace() {
    let it = install("chart-own").await;
    let own = it.ctx.namespace.as_str();
    let mut allowed = vec![
        ("create", "events".to_owned()),
        ("patch", "events".to_owned()),
        ("create", "events.events.k8s.io".to_owned()),
        ("patch", "events.events.k8s.io".to_owned()),
        ("get", "leases.coordination.k8s.io".to_owned()),
        ("create", "leases.coordination.k8s.io".to_owned()),
        ("update", "leases.coordination.k8s.io".to_owned()),
        ("delete", "edgenodes.nodewright.io".to_owned()),
    ];
    for kind in NODEWRIGHT_KINDS {
        for verb in ["get", "list", "watch", "create", "patch", "update"] {
            allowed.push((verb, format!("{kind}.nodewright.io")));
        }
        for verb in ["get", "patch", "update"] {
            allowed.push((verb, format!("{kind}.nodewright.io:status")));
        }
    }
    for (verb, target) in &allowed {
        assert!(
            it.can(verb, target, own),
            "the bridge may {verb} {target} in {own}"
        );
        for elsewhere in [it.legacy.as_str(), it.other.as_str()] {
            assert!(
                !it.can(verb, target, elsewhere),
                "the bridge must not {verb} {target} in {elsewhere}"
            );
        }
    }
    for (verb, target) in [
        ("delete", "edgeclusters.nodewright.io"),
        ("delete", "storageupgrades.nodewright.io"),
        ("get", "nodetasks.nodewright.io"),
        ("create", "nodetasks.nodewright.io"),
        ("delete", "leases.coordination.k8s.io"),
        ("get", "configmaps"),
        ("create", "configmaps"),
        ("get", "secrets"),
        ("create", "pods"),
    ] {
        assert!(
            !it.can(verb, target, own),
            "the bridge must not {verb} {target} in {own}"
        );
    }
}

#[tokio::test]
async fn the_bridges_complete_permissions_are_exactly_the_read_only_set() {
    let it = install("chart-list").await;
    let nodes = [("get,list,watch", "/nodes[]")];
    let legacy = [
        ("get,list,watch", "/configmaps[]"),
        ("get,list,watch", "/pods[]"),
        ("get", "/pods/log[]"),
        ("get", "apps/daemonsets[vx-rail-node-init]"),
    ];
    let statuses: Vec<String> = NODEWRIGHT_KINDS
        .iter()
        .map(|kind| format!("nodewright.io/{kind}/status[]"))
        .collect();
    let kinds: Vec<String> = NODEWRIGHT_KINDS
        .iter()
        .map(|kind| format!("nodewright.io/{kind}[]"))
        .collect();
    let mut own: Vec<(&str, &str)> = vec![
        ("get,create,update", "coordination.k8s.io/leases[]"),
        ("create,patch", "/events[]"),
        ("create,patch", "events.k8s.io/events[]"),
        ("delete", "nodewright.io/edgenodes[]"),
        // The agents' host facts, merged into EdgeNode status.
        ("get,list,watch", "nodewright.io/nodefacts[]"),
    ];
    own.extend(
        kinds
            .iter()
            .map(|k| ("get,list,watch,create,patch,update", k.as_str())),
    );
    own.extend(statuses.iter().map(|s| ("get,patch,update", s.as_str())));

    let with_nodes = |specs: &[(&str, &str)]| {
        let mut all = expand(&nodes);
        all.extend(expand(specs));
        all
    };
    assert_eq!(
        it.granted(&it.legacy),
        with_nodes(&legacy),
        "in the legacy namespace"
    );
    assert_eq!(
        it.granted(&it.ctx.namespace),
        with_nodes(&own),
        "in its own namespace"
    );
    assert_eq!(it.granted(&it.other), with_nodes(&[]), "in any other namespace");

    // And, read the other way: no write verb on anything the legacy script owns, anywhere.
    let writes = ["create", "update", "patch", "delete", "deletecollection", "*"];
    for namespace in [&it.legacy, &it.ctx.namespace, &it.other] {
        for permission in it.rules(&it.sa, namespace) {
            let (verb, target) = permission.split_once(' ').unwrap();
            let legacy_owned = ["/configmaps", "/nodes", "/pods", "apps/daemonsets"]
                .iter()
                .any(|owned| target.starts_with(owned))
                || target.contains('*');
            assert!(
                !(legacy_owned && writes.contains(&verb)),
                "{permission} in {namespace}"
            );
        }
    }
}

#[test]
fn by_default_the_chart_renders_neither_the_operator_nor_the_agent() {
    let manifest = render("nodewright", "kube-system", &[]);
    for component in ["operator", "agent", "ui"] {
        assert!(
            !manifest.contains(&format!("app.kubernetes.io/component: {component}")),
            "{component} rendered by default:\n{manifest}"
        );
    }
    for kind in ["DaemonSet", "ValidatingAdmissionPolicy"] {
        assert!(
            !manifest.contains(&format!("kind: {kind}")),
            "{kind} rendered by default"
        );
    }
    // And with both enabled, each is there: a Deployment, a DaemonSet and the own-node policy.
    let manifest = render("nodewright", "kube-system", &[ENABLE_ALL]);
    for name in [
        "kind: Deployment\nmetadata:\n  name: nw-operator",
        "kind: DaemonSet\nmetadata:\n  name: nw-agent",
        "kind: Deployment\nmetadata:\n  name: nw-ui",
        "kind: ValidatingAdmissionPolicy\nmetadata:\n  name: nodewright-nw-agent-own-node",
        "kind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: nodewright-nw-agent-own-node",
        "kind: ValidatingAdmissionPolicy\nmetadata:\n  name: nodewright-nw-agent-own-facts",
        "kind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: nodewright-nw-agent-own-facts",
    ] {
        assert!(manifest.contains(name), "{name} missing:\n{manifest}");
    }
}

#[tokio::test]
async fn the_operators_complete_permissions_are_exactly_what_its_loop_uses() {
    let it = install("chart-operator").await;
    // Cluster-wide: Nodes, and the drain of a node a storage upgrade upgrades (its pods, in any
    // namespace, listed and evicted).
    let nodes = [
        ("get,list,watch,patch", "/nodes[]"),
        ("get,list", "/pods[]"),
        ("create", "/pods/eviction[]"),
    ];
    let legacy = [
        ("get,list,watch", "/configmaps[]"),
        ("get,list,watch", "/pods[]"),
        ("get", "/pods/log[]"),
        ("get", "apps/daemonsets[vx-rail-node-init]"),
        // create too: the operator creates it by server-side apply, which is authorized by name.
        ("create,patch,update", "/configmaps[nodewright-takeover]"),
        // The migration controller's mirrored key and, in FINALIZING, the site's topology.
        ("patch", "/configmaps[vx-rail-cluster-state]"),
        // Bootstrap: the cluster state and the nodes' ConfigMaps (the names are the admission
        // policy's, operator-configmap-policy.yaml).
        ("create", "/configmaps[]"),
    ];
    let own = [
        ("get,list,watch", "nodewright.io/edgeclusters[]"),
        ("patch,update", "nodewright.io/edgeclusters/status[]"),
        ("get,list,watch", "nodewright.io/migrations[]"),
        ("patch", "nodewright.io/migrations/status[]"),
        ("get,list,watch,create", "nodewright.io/storageupgrades[]"),
        ("update", "nodewright.io/storageupgrades/status[]"),
        ("get,list,watch,create", "nodewright.io/bondflips[]"),
        ("update", "nodewright.io/bondflips/status[]"),
        ("get,list,watch,create", "nodewright.io/nodetasks[]"),
        ("get,list,watch", "nodewright.io/nodefacts[]"),
        // spec.host adopted from a node's node.conf, by a server-side apply.
        ("get,list,watch,patch", "nodewright.io/edgenodes[]"),
        ("get,create,update", "coordination.k8s.io/leases[]"),
        // The storage gate: watched by name, released by a delete.
        (
            "get,list,watch,delete",
            "coordination.k8s.io/leases[nodewright-storage-gate]",
        ),
        ("create,patch", "events.k8s.io/events[]"),
    ];
    let with_nodes = |specs: &[(&str, &str)]| {
        let mut all = expand(&nodes);
        all.extend(expand(specs));
        all
    };
    assert_eq!(
        it.granted_to("operator", &it.legacy),
        with_nodes(&legacy),
        "in the legacy namespace"
    );
    assert_eq!(
        it.granted_to("operator", &it.ctx.namespace),
        with_nodes(&own),
        "in its own namespace"
    );
    assert_eq!(
        it.granted_to("operator", &it.other),
        with_nodes(&[]),
        "in any other namespace"
    );
}

#[tokio::test]
async fn the_agents_complete_permissions_are_its_namespaces_nodetasks_their_status_and_its_facts() {
    let it = install("chart-agent").await;
    let own = [
        ("get,list,watch", "nodewright.io/nodetasks[]"),
        ("update", "nodewright.io/nodetasks/status[]"),
        // The Migration behind a site-storage delete, and Events about refused tasks.
        ("get", "nodewright.io/migrations[]"),
        ("create,patch", "events.k8s.io/events[]"),
        // Its host's facts, by server-side apply (the admission policy narrows it to its node's).
        ("get,create,patch", "nodewright.io/nodefacts[]"),
    ];
    assert_eq!(
        it.granted_to("agent", &it.ctx.namespace),
        expand(&own),
        "in its own namespace"
    );
    // Nothing cluster-wide, nothing in the legacy namespace or any other.
    assert_eq!(it.granted_to("agent", &it.legacy), BTreeSet::new());
    assert_eq!(it.granted_to("agent", &it.other), BTreeSet::new());
}

/// A client acting as the chart's `component` ServiceAccount, with the groups its token carries.
async fn as_service_account(it: &Installed, component: &str) -> kube::Client {
    let path = it.ctx.control_plane.kubeconfig();
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    let ns = &it.ctx.namespace;
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:{RELEASE}-{component}"));
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".to_owned(),
    ]);
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn the_operator_applies_the_takeover_configmap_patches_the_cluster_state_and_writes_no_other() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams, PostParams};

    let it = install("chart-takeover").await;
    let admin: Api<ConfigMap> = Api::namespaced(it.ctx.client.clone(), &it.legacy);
    let state: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "vx-rail-cluster-state"},
        "data": {"phase": "multi-node"},
    }))
    .unwrap();
    admin.create(&PostParams::default(), &state).await.unwrap();

    let operator: Api<ConfigMap> = Api::namespaced(as_service_account(&it, "operator").await, &it.legacy);
    // What parity/src/run.rs sends: a forced server-side apply, which creates it the first time.
    let apply = |name: &str, value: &str| {
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": {"takeover-generation": value},
        });
        let operator = operator.clone();
        let name = name.to_owned();
        async move {
            operator
                .patch(
                    &name,
                    &PatchParams::apply("nodewright-operator").force(),
                    &Patch::Apply(&cm),
                )
                .await
        }
    };
    apply("nodewright-takeover", "1").await.unwrap();
    apply("nodewright-takeover", "2").await.unwrap();
    let takeover = admin.get("nodewright-takeover").await.unwrap();
    assert_eq!(takeover.data.unwrap()["takeover-generation"], "2");

    let forbidden = |result: Result<ConfigMap, kube::Error>| match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("expected 403, got {other:?}"),
    };
    forbidden(apply("vx-rail-node-edge-9", "1").await);
    let other: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "anything"}})).unwrap();
    // A create (bootstrap's, of a node's ConfigMap) is RBAC's to allow by verb only; which names
    // is the admission policy's (tests/privilege_admission.rs).
    let node_cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "vx-rail-node-edge-9"}})).unwrap();
    operator.create(&PostParams::default(), &node_cm).await.unwrap();
    // What the migration controller sends: a merge patch of keys of the cluster state.
    let mirror = serde_json::json!({"data": {"migration": "phase=PREFLIGHT;owner=operator"}});
    operator
        .patch(
            "vx-rail-cluster-state",
            &PatchParams::default(),
            &Patch::Merge(&mirror),
        )
        .await
        .unwrap();
    let state = admin.get("vx-rail-cluster-state").await.unwrap();
    let data = state.data.unwrap();
    assert_eq!(data["phase"], "multi-node");
    assert_eq!(data["migration"], "phase=PREFLIGHT;owner=operator");
    // ... and nothing else of it: it can neither replace nor delete it.
    forbidden(
        operator
            .replace("vx-rail-cluster-state", &PostParams::default(), &other)
            .await,
    );
    match operator
        .delete("vx-rail-cluster-state", &Default::default())
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn the_uis_complete_permissions_are_reading_nodewrights_resources_and_the_legacy_configmaps() {
    let it = install("chart-ui").await;
    let own = [
        ("get,list,watch", "nodewright.io/edgeclusters[]"),
        ("get,list,watch", "nodewright.io/edgenodes[]"),
        ("get,list,watch", "nodewright.io/storageupgrades[]"),
        ("get,list,watch", "nodewright.io/migrations[]"),
    ];
    assert_eq!(
        it.granted_to("ui", &it.ctx.namespace),
        expand(&own),
        "in its own namespace"
    );
    assert_eq!(
        it.granted_to("ui", &it.legacy),
        expand(&[("get,list,watch", "/configmaps[]")]),
        "in the legacy namespace"
    );
    assert_eq!(
        it.granted_to("ui", &it.other),
        BTreeSet::new(),
        "in any other namespace"
    );
}

#[tokio::test]
async fn with_actions_on_the_ui_may_also_review_tokens_and_impersonate_and_still_writes_nothing_itself() {
    let it = install_with("chart-ui-act", &["ui.actions.enabled=true"]).await;
    let acting = [
        ("create", "authentication.k8s.io/tokenreviews[]"),
        ("impersonate", "/users[]"),
        ("impersonate", "/groups[]"),
        ("impersonate", "/serviceaccounts[]"),
    ];
    let own = [
        ("get,list,watch", "nodewright.io/edgeclusters[]"),
        ("get,list,watch", "nodewright.io/edgenodes[]"),
        ("get,list,watch", "nodewright.io/storageupgrades[]"),
        ("get,list,watch", "nodewright.io/migrations[]"),
    ];
    assert_eq!(
        it.granted_to("ui", &it.ctx.namespace),
        expand(&[&own[..], &acting[..]].concat()),
        "in its own namespace"
    );
    assert_eq!(
        it.granted_to("ui", &it.other),
        expand(&acting),
        "in any other namespace: only reviewing tokens and impersonating"
    );
    let deployment = render(
        &it.ctx.namespace,
        &it.legacy,
        &[ENABLE_ALL, "ui.actions.enabled=true"],
    );
    assert!(deployment.contains("- --enable-actions"), "{deployment}");
    let off = render(&it.ctx.namespace, &it.legacy, &[ENABLE_ALL]);
    assert!(
        !off.contains("--enable-actions") && !off.contains("impersonate"),
        "{off}"
    );
}
