//! The bridge against the real API server: legacy objects written as the script writes them
//! become EdgeCluster and EdgeNode status, bad input sets ParseErrors with its position, emits an
//! Event and counts, and never stops the bridge; nothing is written when nothing changed.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use nodewright_api::edgecluster::EdgeCluster;
use nodewright_api::edgenode::EdgeNode;
use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::run::{BridgeOptions, run};
use nodewright_testenv::{TestContext, install_crds, unique_name};
use tokio::sync::oneshot;

const STATUS: &str = "at={at};state=ready;role=primary;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;drbd=ok;resources=1;uptodate=1;syncing=0;taint=none;boot=COMPLETED;upgrade=;drbd_version=9.2.5";

fn rfc3339(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .unwrap()
        .to_string()
}

fn now() -> i64 {
    nodewright_bridge::run::unix_now()
}

/// A legacy site of `nodes` nodes in `legacy_ns`, as the script leaves it after a good iteration.
async fn legacy_site(client: &kube::Client, legacy_ns: &str, nodes: &[String]) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), legacy_ns);
    let members: String = std::iter::once("node,storage_ip,role,joined".to_owned())
        .chain(nodes.iter().enumerate().map(|(i, n)| {
            format!(
                "{n},10.10.100.{}/24,{},1714557600",
                11 + i,
                if i == 0 { "primary" } else { "member" }
            )
        }))
        .collect::<Vec<_>>()
        .join("\n");
    let cluster = ConfigMap {
        metadata: ObjectMeta {
            name: Some("vx-rail-cluster-state".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (
                "cluster".to_owned(),
                format!(
                    "primary={};topology=multi;replicas=2;storage_pool=pool0;created=1714557600;schema=4",
                    nodes[0]
                ),
            ),
            ("members".to_owned(), members),
        ])),
        ..ConfigMap::default()
    };
    cms.create(&PostParams::default(), &cluster).await.unwrap();
    for n in nodes {
        let t = now();
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("vx-rail-node-{n}")),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                ("script-version".to_owned(), "4.12.3".to_owned()),
                ("heartbeat".to_owned(), rfc3339(t)),
                ("status".to_owned(), STATUS.replace("{at}", &t.to_string())),
            ])),
            ..ConfigMap::default()
        };
        cms.create(&PostParams::default(), &cm).await.unwrap();
        let node = Node {
            metadata: ObjectMeta {
                name: Some(n.clone()),
                annotations: Some(BTreeMap::from([
                    ("vx-rail.io/state".to_owned(), "ready".to_owned()),
                    (
                        "vx-rail.io/last-run".to_owned(),
                        format!(
                            "ts={};version=4.12.3;outcome=ok;step=finished;rc=0;duration=5",
                            rfc3339(t)
                        ),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
    }
}

/// Runs the bridge until the returned sender is used or dropped.
fn start_bridge(
    client: kube::Client,
    namespace: &str,
    legacy_ns: &str,
    admin_port: u16,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let mut options = BridgeOptions::new(namespace, unique_name("bridge"));
    options.legacy = LegacyNames {
        namespace: legacy_ns.to_owned(),
        ..LegacyNames::default()
    };
    options.observe.legacy_namespace = legacy_ns.to_owned();
    options.admin_addr = Some(([127, 0, 0, 1], admin_port).into());
    options.resync = Duration::from_secs(1);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run(client, options, None, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (tx, task)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn condition<'a>(
    node: &'a EdgeNode,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    node.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

async fn metrics_text(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

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

    // Nothing changes, so nothing is written: resourceVersions stay put across several resyncs.
    let before: Vec<String> = edge_nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.metadata.resource_version.clone().unwrap())
        .collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after: Vec<String> = edge_nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.metadata.resource_version.clone().unwrap())
        .collect();
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
