//! The bridge is read-only, proven against the real API server: the legacy script runs a whole
//! scenario (three nodes bootstrapping a site, with the real kubectl) while the bridge observes it
//! under exactly the RBAC the Helm chart grants its ServiceAccount (impersonated). At the end the
//! bridge has written its own status, no legacy object carries a field the bridge manages, and
//! while the bridge keeps running no legacy object's resourceVersion moves.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use nodewright_api::edgecluster::EdgeCluster;
use nodewright_api::edgenode::EdgeNode;
use nodewright_bridge::run::{BridgeOptions, run as run_bridge};
use nodewright_legacy_sim::run::{RealCluster, RunConfig, Scenario, run, world_for};
use nodewright_testenv::{ControlPlane, Options, install_crds};

const NAMESPACE: &str = "nodewright-system";
const RELEASE: &str = "nw";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The chart rendered by helm (built by testenv/build.sh beside kubectl).
fn rendered_chart() -> String {
    let helm = nodewright_testenv::default_bin_dir().join("helm");
    let out = Command::new(&helm)
        .args(["template", RELEASE])
        .arg(repo().join("charts/nodewright"))
        .args(["--namespace", NAMESPACE])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run testenv/build.sh)", helm.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A client that acts as the chart's ServiceAccount, with the groups a token of it would carry.
async fn as_bridge(cp: &ControlPlane) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{NAMESPACE}:{RELEASE}-bridge"));
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{NAMESPACE}"),
        "system:authenticated".to_owned(),
    ]);
    kube::Client::try_from(config).unwrap()
}

/// kind/namespace/name → (resourceVersion, managers) of every object the legacy script owns.
async fn legacy_objects(client: &kube::Client) -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    let managers = |meta: &ObjectMeta| -> Vec<String> {
        meta.managed_fields
            .iter()
            .flatten()
            .filter_map(|m| m.manager.clone())
            .collect()
    };
    for cm in Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        let key = format!("configmap/kube-system/{}", cm.metadata.name.clone().unwrap());
        out.insert(
            key,
            (
                cm.metadata.resource_version.clone().unwrap(),
                managers(&cm.metadata),
            ),
        );
    }
    for node in Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        let key = format!("node/{}", node.metadata.name.clone().unwrap());
        out.insert(
            key,
            (
                node.metadata.resource_version.clone().unwrap(),
                managers(&node.metadata),
            ),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_under_the_charts_rbac_observes_a_whole_scenario_and_changes_no_legacy_object() {
    // The bridge's own log, on failure: what it could not read or write.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("nodewright_bridge=info"))
        .with_test_writer()
        .try_init();
    let cp = tokio::task::block_in_place(|| ControlPlane::start(Options::default())).unwrap();
    let admin = cp.client().await.unwrap();
    install_crds(&admin, &nodewright_api::crds()).await.unwrap();
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    nodewright_testenv::apply_yaml(&admin, &rendered_chart(), None)
        .await
        .unwrap();

    let mut options = BridgeOptions::new(NAMESPACE, "bridge-0");
    options.resync = Duration::from_secs(1);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    options.admin_addr = Some(([127, 0, 0, 1], port).into());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bridge = tokio::spawn(run_bridge(as_bridge(&cp).await, options, None, async {
        let _ = stopped.await;
    }));

    let scenario_file = repo().join("golden/scenarios/bootstrap-three-nodes.yaml");
    let scenario = Scenario::from_yaml(&std::fs::read_to_string(&scenario_file).unwrap()).unwrap();
    let mut cluster = RealCluster {
        kubectl: cp.kubectl().get_program().into(),
        kubeconfig: cp.kubeconfig().to_path_buf(),
    };
    let config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!("vxr-bridge-ro-{}", std::process::id())),
        stuck_after: Duration::from_secs(60),
    };
    let trace = tokio::task::block_in_place(|| {
        run(
            &scenario,
            &mut world_for(&scenario).unwrap(),
            &mut cluster,
            &config,
        )
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    assert!(
        trace.kube_writes().lines().count() > 10,
        "the scenario wrote legacy state"
    );

    // The bridge saw the whole site.
    let edge_nodes: Api<EdgeNode> = Api::namespaced(admin.clone(), NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let observed: Vec<String> = edge_nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|n| n.status.as_ref().is_some_and(|s| !s.bonds.is_empty()))
            .filter_map(|n| n.metadata.name)
            .collect();
        if observed == ["edge-1", "edge-2", "edge-3"] {
            break;
        }
        assert!(Instant::now() < deadline, "EdgeNodes with status: {observed:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let site = Api::<EdgeCluster>::namespaced(admin.clone(), NAMESPACE)
        .get("site")
        .await
        .unwrap();
    assert_eq!(site.status.unwrap().nodes.unwrap().total, 3);

    // No legacy object carries a field the bridge manages, and the bridge, still running and
    // resyncing every second, moves no resourceVersion through three more reconciles.
    let before = legacy_objects(&admin).await;
    assert!(before.len() >= 7, "{before:?}");
    for (key, (_, managers)) in &before {
        assert!(
            !managers.iter().any(|m| m.starts_with("nodewright-bridge")),
            "{key} is managed by {managers:?}"
        );
    }
    // The marker that several resyncs went by: the bridge's count of reconciles.
    let reconciles = || async {
        nodewright_testenv::http_get(port, "/metrics")
            .await
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("nodewright_bridge_reconcile_duration_seconds_count "))?
            .trim()
            .parse::<u64>()
            .ok()
    };
    let counted = reconciles().await.unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while reconciles().await.unwrap_or(0) < counted + 3 {
        assert!(Instant::now() < deadline, "the bridge stopped reconciling");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = legacy_objects(&admin).await;
    let before_versions: BTreeMap<_, _> = before.iter().map(|(k, v)| (k, &v.0)).collect();
    let after_versions: BTreeMap<_, _> = after.iter().map(|(k, v)| (k, &v.0)).collect();
    assert_eq!(before_versions, after_versions);

    stop.send(()).unwrap();
    bridge.await.unwrap().unwrap();
    tokio::task::block_in_place(|| cp.stop()).unwrap();
}
