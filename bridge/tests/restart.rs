//! The bridge survives its API server: killed in the middle of a run and started again on the
//! same state, the bridge reconnects, relists, and shows a change made after the restart within
//! 30 s, with nothing lost from before. This test owns its control plane, since it kills it.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{STATUS, condition, eventually, free_port, legacy_site, metrics_text, now, start_bridge};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use nodewright_api::edgenode::EdgeNode;
use nodewright_testenv::{ControlPlane, Options, install_crds, unique_name};

async fn namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// Full lists the bridge took in, over both watches, from its metrics.
fn relists(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("nodewright_bridge_watch_events_total{") && l.contains("event=\"reset\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_api_server_is_killed_and_restarted_the_bridge_converges_within_30_seconds() {
    let cp = tokio::task::block_in_place(|| ControlPlane::start(Options::default())).unwrap();
    let client = cp.client().await.unwrap();
    install_crds(&client, &nodewright_api::crds()).await.unwrap();
    let (ns, legacy_ns) = (unique_name("restart"), unique_name("restart-legacy"));
    namespace(&client, &ns).await;
    namespace(&client, &legacy_ns).await;
    let nodes = vec![unique_name("r-a"), unique_name("r-b")];
    legacy_site(&client, &legacy_ns, &nodes).await;

    let port = free_port();
    let (stop, task) = start_bridge(client.clone(), &ns, &legacy_ns, port);
    let edge_nodes: Api<EdgeNode> = Api::namespaced(client.clone(), &ns);
    for n in &nodes {
        eventually("a Ready EdgeNode", Duration::from_secs(30), || async {
            edge_nodes
                .get_opt(n)
                .await
                .unwrap()
                .filter(|en| condition(en, "Ready").is_some_and(|c| c.status == "True"))
        })
        .await;
    }

    let resets_before = relists(&metrics_text(port).await);
    tokio::task::block_in_place(|| cp.kill()).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| cp.start_again()).unwrap();
    let restarted = Instant::now();

    // Written right after the restart: the second node's bond loses a slave.
    let degraded = STATUS
        .replace("{at}", &now().to_string())
        .replace("net=ok", "net=degraded")
        .replace("eno2:up:0", "eno2:down:1");
    let fresh = cp.client().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(fresh.clone(), &legacy_ns);
    cms.patch(
        &format!("vx-rail-node-{}", nodes[1]),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"status": degraded}})),
    )
    .await
    .unwrap();

    let edge_nodes: Api<EdgeNode> = Api::namespaced(fresh, &ns);
    let en = eventually(
        "the change made after the restart",
        Duration::from_secs(30),
        || async {
            edge_nodes.get_opt(&nodes[1]).await.ok().flatten().filter(|en| {
                condition(en, "NetworkDegraded")
                    .is_some_and(|c| c.status == "True" && c.reason == "SlaveDown")
            })
        },
    )
    .await;
    eprintln!(
        "converged {:.1}s after the restart",
        restarted.elapsed().as_secs_f64()
    );
    assert_eq!(en.status.unwrap().bonds[0].slaves[1].link_failures, 1);
    // The restarted API server's watch cache starts at the current revision: resuming from the
    // old resourceVersion is refused (410 Gone), and the watches relist.
    // Each watch relists on its own schedule (with backoff): wait for both.
    eventually("both watches relisted", Duration::from_secs(30), || async {
        let after = relists(&metrics_text(port).await);
        (after >= resets_before + 2).then_some(())
    })
    .await;
    // Nothing lost: the first node is still observed and Ready.
    let first = edge_nodes.get(&nodes[0]).await.unwrap();
    assert_eq!(condition(&first, "Ready").unwrap().status, "True");

    stop.send(()).unwrap();
    task.await.unwrap();
    tokio::task::block_in_place(|| cp.stop()).unwrap();
}
