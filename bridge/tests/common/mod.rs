//! Helpers shared by the bridge's integration tests: a legacy site written as the script writes
//! it, a bridge started in the background, and polling with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ObjectMeta, PostParams};
use nodewright_api::edgenode::EdgeNode;
use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::run::{BridgeOptions, run};
use nodewright_testenv::unique_name;
use tokio::sync::oneshot;

pub const STATUS: &str = "at={at};state=ready;role=primary;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;drbd=ok;resources=1;uptodate=1;syncing=0;taint=none;boot=COMPLETED;upgrade=;drbd_version=9.2.5";

pub fn rfc3339(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .unwrap()
        .to_string()
}

pub fn now() -> i64 {
    nodewright_kit::clock::unix_now()
}

/// A legacy site of `nodes` nodes in `legacy_ns`, as the script leaves it after a good iteration.
pub async fn legacy_site(client: &kube::Client, legacy_ns: &str, nodes: &[String]) {
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
pub fn start_bridge(
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub use nodewright_testenv::eventually;

pub fn condition<'a>(
    node: &'a EdgeNode,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    node.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

/// `GET /metrics` of the bridge's admin server.
pub async fn metrics_text(port: u16) -> String {
    try_metrics_text(port).await.unwrap()
}

/// `GET /metrics`, or the error when the admin server does not answer (yet).
pub async fn try_metrics_text(port: u16) -> std::io::Result<String> {
    nodewright_testenv::http_get(port, "/metrics").await
}
