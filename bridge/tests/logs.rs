//! The pods/log source against the real API server and stand-in kubelets: the legacy DaemonSet's
//! pods are found by its selector, their lines arrive in order per node, a kubelet restart loses and
//! repeats nothing, and a deleted pod's follow ends.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ObjectMeta, PostParams};
use nodewright_bridge::logs::{LogEvent, LogSource, LogSourceConfig};
use nodewright_testenv::kubelet::StandInKubelet;
use nodewright_testenv::{TestContext, unique_name};
use tokio::sync::mpsc;

const DAEMON_SET: &str = "vx-rail-node-init";
const CONTAINER: &str = "node-init";

fn labels() -> BTreeMap<String, String> {
    [("app".to_owned(), DAEMON_SET.to_owned())].into()
}

/// The legacy DaemonSet object. No controller runs, so it makes no pods: the test makes them.
async fn create_daemon_set(ctx: &TestContext) {
    let ds = DaemonSet {
        metadata: ObjectMeta {
            name: Some(DAEMON_SET.into()),
            ..Default::default()
        },
        spec: DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: CONTAINER.into(),
                        image: Some("registry.invalid/vx-rail-node-init:1".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        ..Default::default()
    };
    ctx.api::<DaemonSet>()
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
}

/// A node served by its own stand-in kubelet, with one pod of the DaemonSet on it.
struct NodeWithPod {
    kubelet: StandInKubelet,
    node: String,
    pod: String,
}

impl NodeWithPod {
    async fn new(ctx: &TestContext, prefix: &str) -> NodeWithPod {
        let kubelet = StandInKubelet::start().await.unwrap();
        let node = unique_name(prefix);
        kubelet.register_node(&ctx.client, &node).await.unwrap();
        let pod = format!("{DAEMON_SET}-{prefix}");
        kubelet
            .create_running_pod(&ctx.client, &ctx.namespace, &pod, &node, CONTAINER, labels())
            .await
            .unwrap();
        NodeWithPod { kubelet, node, pod }
    }

    fn append(&self, ctx: &TestContext, text: &str) {
        self.kubelet.append(&ctx.namespace, &self.pod, CONTAINER, text);
    }

    fn append_at(&self, ctx: &TestContext, at: Timestamp, text: &str) {
        self.kubelet
            .append_at(&ctx.namespace, &self.pod, CONTAINER, at, text);
    }
}

/// What the consumer has seen: the events in order, and each node's output joined.
#[derive(Default)]
struct Seen {
    events: Vec<LogEvent>,
    output: HashMap<String, String>,
}

impl Seen {
    fn output(&self, node: &str) -> &str {
        self.output.get(node).map(String::as_str).unwrap_or("")
    }

    /// Receives events until `done` holds, failing after 60 s.
    async fn until(&mut self, rx: &mut mpsc::Receiver<LogEvent>, what: &str, done: impl Fn(&Seen) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(self) {
            let event = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; output so far: {:?}", self.output))
                .expect("the log source stopped");
            if let LogEvent::Chunk(chunk) = &event {
                self.output
                    .entry(chunk.node.clone())
                    .or_default()
                    .push_str(std::str::from_utf8(&chunk.bytes).unwrap());
            }
            self.events.push(event);
        }
    }
}

fn config(ctx: &TestContext) -> LogSourceConfig {
    LogSourceConfig {
        container: Some(CONTAINER.into()),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
        ..LogSourceConfig::daemon_set(&ctx.namespace, DAEMON_SET)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_sets_pods_are_followed_in_order_per_node_across_a_kubelet_restart() {
    let ctx = TestContext::new("bridge-logs").await.unwrap();
    create_daemon_set(&ctx).await;
    let a = NodeWithPod::new(&ctx, "node-a").await;
    let b = NodeWithPod::new(&ctx, "node-b").await;
    a.append(&ctx, "a: starting\n");

    let (_source, mut rx) = LogSource::start(ctx.client.clone(), config(&ctx)).await.unwrap();
    let mut seen = Seen::default();
    seen.until(&mut rx, "both pods started and a's first line", |s| {
        s.output(&a.node) == "a: starting\n"
            && s.events
                .iter()
                .filter(|e| matches!(e, LogEvent::Started { .. }))
                .count()
                == 2
    })
    .await;
    assert!(seen.events.contains(&LogEvent::Started {
        node: b.node.clone(),
        pod: b.pod.clone()
    }));

    // Lines appended over time, interleaved between the nodes, arrive in order per node.
    let mut expected_a = String::from("a: starting\n");
    let mut expected_b = String::new();
    for i in 0..5 {
        let (la, lb) = (format!("a: step {i}\n"), format!("b: step {i}\n"));
        a.append(&ctx, &la);
        b.append(&ctx, &lb);
        expected_a.push_str(&la);
        expected_b.push_str(&lb);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen.until(&mut rx, "the interleaved steps", |s| {
        s.output(&a.node) == expected_a && s.output(&b.node) == expected_b
    })
    .await;

    // Several lines with one timestamp, then the kubelet of node a goes down mid-second; more
    // lines with that very timestamp and later ones are written while it is down.
    let now = Timestamp::now();
    a.append_at(&ctx, now, "a: same instant 1\na: same instant 2\n");
    expected_a.push_str("a: same instant 1\na: same instant 2\n");
    seen.until(&mut rx, "the lines of one instant", |s| {
        s.output(&a.node) == expected_a
    })
    .await;
    a.kubelet.stop().await;
    a.append_at(&ctx, now, "a: same instant 3\n");
    a.append(&ctx, "a: while down\n");
    b.append(&ctx, "b: while a is down\n");
    expected_a.push_str("a: same instant 3\na: while down\n");
    expected_b.push_str("b: while a is down\n");
    // Long enough for a few failed reconnects.
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.kubelet.restart().await.unwrap();
    a.append(&ctx, "a: after restart\n");
    expected_a.push_str("a: after restart\n");
    seen.until(&mut rx, "the lines across the restart", |s| {
        s.output(&a.node) == expected_a && s.output(&b.node) == expected_b
    })
    .await;

    // A restart that cuts the stream with nothing new to read repeats nothing either.
    a.kubelet.restart().await.unwrap();
    a.append(&ctx, "a: after second restart\n");
    expected_a.push_str("a: after second restart\n");
    seen.until(&mut rx, "the line after the second restart", |s| {
        s.output(&a.node) == expected_a
    })
    .await;
    // No duplicate trails the last line: a later line arrives right after it, and nothing
    // between them.
    a.append(&ctx, "a: marker\n");
    expected_a.push_str("a: marker\n");
    seen.until(&mut rx, "the marker line", |s| {
        s.output(&a.node).ends_with("a: marker\n")
    })
    .await;
    assert_eq!(seen.output(&a.node), expected_a);
    assert_eq!(seen.output(&b.node), expected_b);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_pods_follow_ends_and_a_new_pod_is_picked_up() {
    let ctx = TestContext::new("bridge-logs-delete").await.unwrap();
    let a = NodeWithPod::new(&ctx, "node-a").await;
    a.append(&ctx, "a: hello\n");
    let selector = format!("app={DAEMON_SET}");
    let config = LogSourceConfig {
        container: Some(CONTAINER.into()),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
        // Quiet streams are reconnected often here, and each reconnect repeats the last second.
        idle_timeout: Some(Duration::from_millis(300)),
        ..LogSourceConfig::labels(&ctx.namespace, &selector)
    };
    let (_source, mut rx) = LogSource::start(ctx.client.clone(), config).await.unwrap();
    let mut seen = Seen::default();
    seen.until(&mut rx, "a's first line", |s| s.output(&a.node) == "a: hello\n")
        .await;
    // Several idle reconnects later, nothing was repeated.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.append(&ctx, "a: still here\n");
    seen.until(&mut rx, "a's second line", |s| s.output(&a.node) != "a: hello\n")
        .await;
    assert_eq!(seen.output(&a.node), "a: hello\na: still here\n");

    StandInKubelet::delete_pod_now(&ctx.client, &ctx.namespace, &a.pod)
        .await
        .unwrap();
    let ended = LogEvent::Ended {
        node: a.node.clone(),
        pod: a.pod.clone(),
    };
    seen.until(&mut rx, "a's follow to end", |s| s.events.contains(&ended))
        .await;
    // Its log still grows on the kubelet, but nobody follows it any more.
    a.append(&ctx, "a: after delete\n");

    // A pod that appears later is followed from its first line.
    let b = NodeWithPod::new(&ctx, "node-b").await;
    b.append(&ctx, "b: hello\n");
    seen.until(&mut rx, "b's first line", |s| s.output(&b.node) == "b: hello\n")
        .await;
    assert_eq!(seen.output(&a.node), "a: hello\na: still here\n");
    let after_end = seen.events.iter().skip_while(|e| **e != ended).skip(1);
    assert!(
        after_end
            .clone()
            .all(|e| !matches!(e, LogEvent::Chunk(c) if c.pod == a.pod)),
        "a chunk of a after its end: {:?}",
        seen.events
    );
}
