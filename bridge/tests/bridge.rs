//! The bridge against the real API server: legacy objects written as the script writes them
//! become EdgeCluster and EdgeNode status, bad input sets ParseErrors with its position, emits an
//! Event and counts, and never stops the bridge; nothing is written when nothing changed.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{STATUS, condition, eventually, free_port, legacy_site, metrics_text, now, start_bridge};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use nodewright_api::edgecluster::EdgeCluster;
use nodewright_api::edgenode::EdgeNode;
use nodewright_testenv::{TestContext, install_crds, unique_name};

#[tokio::test]
async fn a_legacy_site_becomes_ready_edge_nodes_and_a_ready_edge_cluster() {
    let ctx = TestContext::new("bridge-site").await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    let legacy = TestContext::new("bridge-site-legacy").await.unwrap();
    let nodes = vec![unique_name("site-a"), unique_name("site-b")];
    legacy_site(&ctx.client, &legacy.namespace, &nodes).await;

    let (stop, task) = start_bridge(ctx.client.clone(), &ctx.namespace, &legacy.namespace, free_port());
    let edge_nodes: Api<EdgeNode> = ctx.api();
    for n in &nodes {
        let en = eventually("a Ready EdgeNode", Duration::from_secs(30), || async {
            edge_nodes
                .get_opt(n)
                .await
                .unwrap()
                .filter(|en| condition(en, "Ready").is_some_and(|c| c.status == "True"))
        })
        .await;
        let s = en.status.unwrap();
        assert_eq!(s.bonds[0].name, "bond0");
        assert_eq!(
            s.last_legacy_run.unwrap().script_version.as_deref(),
            Some("4.12.3")
        );
    }
    let clusters: Api<EdgeCluster> = ctx.api();
    let site = eventually("the EdgeCluster", Duration::from_secs(30), || async {
        clusters
            .get_opt("site")
            .await
            .unwrap()
            .filter(|c| c.status.is_some())
    })
    .await;
    assert_eq!(
        site.spec.profile.topology,
        nodewright_api::edgecluster::Topology::MultiNode
    );
    assert_eq!(site.status.unwrap().legacy_version.as_deref(), Some("4.12.3"));

    // A person moves migration to shadow. A bridge that starts afresh applies the profile it
    // observes again, and leaves the workflow modes alone.
    clusters
        .patch(
            "site",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"workflows": {"migration": "shadow"}}})),
        )
        .await
        .unwrap();
    stop.send(()).unwrap();
    task.await.unwrap();
    let port = free_port();
    let (stop, task) = start_bridge(ctx.client.clone(), &ctx.namespace, &legacy.namespace, port);
    let patch = STATUS
        .replace("{at}", &now().to_string())
        .replace("net=ok", "net=degraded");
    Api::<ConfigMap>::namespaced(ctx.client.clone(), &legacy.namespace)
        .patch(
            &format!("vx-rail-node-{}", nodes[0]),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"status": patch}})),
        )
        .await
        .unwrap();
    eventually("the degraded node observed", Duration::from_secs(30), || async {
        edge_nodes
            .get_opt(&nodes[0])
            .await
            .unwrap()
            .filter(|en| condition(en, "NetworkDegraded").is_some_and(|c| c.status == "True"))
    })
    .await;
    let site = clusters.get("site").await.unwrap();
    assert_eq!(
        site.spec.workflows.migration,
        nodewright_api::common::WorkflowMode::Shadow
    );

    // Nothing changes, so nothing is written: resourceVersions stay put across several resyncs.
    // (Only this site's EdgeNodes: the Nodes other tests create on the shared API server come and go,
    // and the EdgeCluster counts them.)
    let versions = || async {
        let mut v = Vec::new();
        for n in &nodes {
            v.push(
                edge_nodes
                    .get(n)
                    .await
                    .unwrap()
                    .metadata
                    .resource_version
                    .unwrap(),
            );
        }
        v
    };
    // Reconciles are counted by the bridge; a resync without a change is one.
    let reconciles = || async {
        metrics_text(port)
            .await
            .lines()
            .find_map(|l| l.strip_prefix("nodewright_bridge_reconcile_duration_seconds_count "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let two_more_reconciles = || async {
        let counted = reconciles().await;
        eventually("two more reconciles", Duration::from_secs(30), || async {
            (reconciles().await >= counted + 2).then_some(())
        })
        .await;
    };
    // The restarted bridge's first writes (a new writer remembers nothing) may still be in flight
    // for the node that did not change: start counting once two reconciles have gone by without
    // a write.
    let mut before = versions().await;
    let settle = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        two_more_reconciles().await;
        let now = versions().await;
        if now == before {
            break;
        }
        assert!(
            std::time::Instant::now() < settle,
            "the bridge kept writing: {before:?} -> {now:?}"
        );
        before = now;
    }
    // Nothing changes, so three more reconciles write nothing.
    let counted = reconciles().await;
    eventually("three more reconciles", Duration::from_secs(30), || async {
        (reconciles().await >= counted + 3).then_some(())
    })
    .await;
    let after = versions().await;
    assert_eq!(before, after, "a write happened without a change");
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_malformed_blob_sets_parse_errors_emits_an_event_counts_and_keeps_the_bridge_running() {
    let ctx = TestContext::new("bridge-bad").await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    let legacy = TestContext::new("bridge-bad-legacy").await.unwrap();
    let node = unique_name("bad");
    legacy_site(&ctx.client, &legacy.namespace, std::slice::from_ref(&node)).await;
    let port = free_port();
    let (stop, task) = start_bridge(ctx.client.clone(), &ctx.namespace, &legacy.namespace, port);
    let edge_nodes: Api<EdgeNode> = ctx.api();
    eventually("a Ready EdgeNode", Duration::from_secs(30), || async {
        edge_nodes
            .get_opt(&node)
            .await
            .unwrap()
            .filter(|en| condition(en, "Ready").is_some_and(|c| c.status == "True"))
    })
    .await;

    // The script (or a person) writes a status blob with a broken count.
    let bad = STATUS
        .replace("{at}", &now().to_string())
        .replace("uptodate=1", "uptodate=one");
    let column = bad.find("uptodate=one").unwrap() + "uptodate=".len() + 1;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &legacy.namespace);
    cms.patch(
        &format!("vx-rail-node-{node}"),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"status": bad}})),
    )
    .await
    .unwrap();

    let en = eventually("ParseErrors", Duration::from_secs(30), || async {
        edge_nodes
            .get_opt(&node)
            .await
            .unwrap()
            .filter(|en| condition(en, "ParseErrors").is_some_and(|c| c.status == "True"))
    })
    .await;
    let pe = condition(&en, "ParseErrors").unwrap();
    assert!(
        pe.message
            .contains(&format!("vx-rail-node-{node}:status at 1:{column}")),
        "{}",
        pe.message
    );
    let status = en.status.as_ref().unwrap();
    assert_eq!(status.parse_diagnostics[0].column, column as i64);
    assert_eq!(status.bonds[0].name, "bond0", "the last good observation is kept");

    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let event = eventually("a Warning Event", Duration::from_secs(30), || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("MalformedLegacyState"))
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.regarding.as_ref().unwrap().name.as_deref(),
        Some(node.as_str())
    );
    let metrics = metrics_text(port).await;
    assert!(
        metrics.contains("nodewright_bridge_parse_errors_total{format=\"legacy-node-status\"} 1"),
        "{metrics}"
    );

    // The bridge carries on: a fixed blob clears the condition.
    let good = STATUS.replace("{at}", &now().to_string());
    cms.patch(
        &format!("vx-rail-node-{node}"),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"status": good}})),
    )
    .await
    .unwrap();
    eventually("ParseErrors cleared", Duration::from_secs(30), || async {
        edge_nodes
            .get_opt(&node)
            .await
            .unwrap()
            .filter(|en| condition(en, "ParseErrors").is_some_and(|c| c.status == "False"))
    })
    .await;
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// Waits until every one of `nodes` has its EdgeNode.
async fn all_observed(edge_nodes: &Api<EdgeNode>, nodes: &[String]) {
    eventually("every EdgeNode", Duration::from_secs(30), || async {
        for n in nodes {
            edge_nodes.get_opt(n).await.unwrap()?;
        }
        Some(())
    })
    .await;
}

/// Waits until the EdgeNode of `node` is gone.
async fn deleted(edge_nodes: &Api<EdgeNode>, node: &str) {
    eventually(
        "the EdgeNode of the node that left deleted",
        Duration::from_secs(30),
        || async { edge_nodes.get_opt(node).await.unwrap().is_none().then_some(()) },
    )
    .await;
}

/// A node leaves the site: its Node and its node ConfigMap are deleted.
async fn decommission(client: &kube::Client, legacy_ns: &str, node: &str) {
    Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .delete(node, &Default::default())
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), legacy_ns)
        .delete(&format!("vx-rail-node-{node}"), &Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_node_that_leaves_the_site_loses_its_edge_node() {
    let ctx = TestContext::new("bridge-leave").await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    let legacy = TestContext::new("bridge-leave-legacy").await.unwrap();
    let nodes = vec![unique_name("stay"), unique_name("leave")];
    legacy_site(&ctx.client, &legacy.namespace, &nodes).await;
    let (stop, task) = start_bridge(ctx.client.clone(), &ctx.namespace, &legacy.namespace, free_port());
    let edge_nodes: Api<EdgeNode> = ctx.api();
    all_observed(&edge_nodes, &nodes).await;

    decommission(&ctx.client, &legacy.namespace, &nodes[1]).await;
    deleted(&edge_nodes, &nodes[1]).await;
    assert!(edge_nodes.get_opt(&nodes[0]).await.unwrap().is_some());
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_bridge_that_starts_deletes_the_edge_node_of_a_node_that_left_while_none_ran() {
    let ctx = TestContext::new("bridge-left-unseen").await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    let legacy = TestContext::new("bridge-left-unseen-legacy").await.unwrap();
    let nodes = vec![unique_name("kept"), unique_name("gone")];
    legacy_site(&ctx.client, &legacy.namespace, &nodes).await;
    let edge_nodes: Api<EdgeNode> = ctx.api();
    let (stop, task) = start_bridge(ctx.client.clone(), &ctx.namespace, &legacy.namespace, free_port());
    all_observed(&edge_nodes, &nodes).await;
    stop.send(()).unwrap();
    task.await.unwrap();

    decommission(&ctx.client, &legacy.namespace, &nodes[1]).await;

    let (stop, task) = start_bridge(ctx.client.clone(), &ctx.namespace, &legacy.namespace, free_port());
    deleted(&edge_nodes, &nodes[1]).await;
    assert!(edge_nodes.get_opt(&nodes[0]).await.unwrap().is_some());
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_bridge_that_stops_hands_the_lease_over_at_once() {
    let ctx = TestContext::new("bridge-handover").await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    let legacy = TestContext::new("bridge-handover-legacy").await.unwrap();
    legacy_site(&ctx.client, &legacy.namespace, &[unique_name("h")]).await;
    let (first_port, second_port) = (free_port(), free_port());
    let (stop_first, first) = start_bridge(ctx.client.clone(), &ctx.namespace, &legacy.namespace, first_port);
    let leads = |port: u16| async move {
        common::try_metrics_text(port)
            .await
            .is_ok_and(|m| m.lines().any(|l| l == "nodewright_bridge_leader 1"))
    };
    eventually("the first bridge leads", Duration::from_secs(30), || async {
        leads(first_port).await.then_some(())
    })
    .await;
    let (stop_second, second) =
        start_bridge(ctx.client.clone(), &ctx.namespace, &legacy.namespace, second_port);
    eventually("the second bridge serving", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", second_port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    assert!(!leads(second_port).await, "two leaders");

    stop_first.send(()).unwrap();
    first.await.unwrap();
    // The lease lasts 15 s; released on stop, it is taken well before it would have expired.
    eventually("the second bridge leads", Duration::from_secs(10), || async {
        leads(second_port).await.then_some(())
    })
    .await;
    stop_second.send(()).unwrap();
    second.await.unwrap();
}
