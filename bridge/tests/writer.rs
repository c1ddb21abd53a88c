//! The status writer against a real kube-apiserver (from `testenv/`) with Nodewright's CRDs: it
//! creates objects with spec and status, writes nothing when nothing changed, writes only the status
//! when only the status changed, writes nothing while not leading, spaces writes by its rate limit,
//! and reports an object the server refuses without stopping the others.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use kube::api::{Api, ApiResource};
use nodewright_api::EdgeNode;
use nodewright_bridge::writer::{Desired, StatusWriter, WriteReport, WriterConfig};
use nodewright_testenv::TestContext;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

/// Installs the CRDs once per test binary (every test shares one control plane).
async fn context(prefix: &str) -> TestContext {
    static INSTALLED: OnceLock<Mutex<bool>> = OnceLock::new();
    let ctx = TestContext::new(prefix)
        .await
        .expect("control plane and namespace");
    let mut installed = INSTALLED.get_or_init(|| Mutex::new(false)).lock().await;
    if !*installed {
        nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
            .await
            .expect("CRDs install");
        *installed = true;
    }
    ctx
}

fn writer(ctx: &TestContext, leader: watch::Receiver<bool>) -> StatusWriter {
    let config = WriterConfig {
        field_manager: "nodewright-bridge".into(),
        max_writes_per_second: 1000.0,
        burst: 1000,
    };
    StatusWriter::new(ctx.client.clone(), config, leader)
}

/// An `EdgeNode` with a spec, a label and a status.
fn edge_node(ctx: &TestContext, name: &str, status: Value) -> Desired {
    Desired {
        resource: ApiResource::erase::<EdgeNode>(&()),
        namespace: ctx.namespace.clone(),
        name: name.into(),
        labels: BTreeMap::from([("nodewright.io/site".to_owned(), "site-a".to_owned())]),
        spec: Some(json!({"nodeName": name})),
        status,
        fingerprints: None,
    }
}

async fn resource_version(ctx: &TestContext, name: &str) -> String {
    let api: Api<EdgeNode> = ctx.api();
    api.get(name)
        .await
        .expect("object exists")
        .metadata
        .resource_version
        .expect("resourceVersion")
}

fn written(applied: usize, unchanged: usize) -> (usize, usize, usize, usize) {
    (applied, unchanged, 0, 0)
}

fn counts(report: &WriteReport) -> (usize, usize, usize, usize) {
    (
        report.applied,
        report.unchanged,
        report.skipped_not_leader,
        report.failed.len(),
    )
}

#[tokio::test]
async fn a_new_object_is_created_with_its_labels_spec_and_status() {
    let ctx = context("writer-create").await;
    let (_leader, leading) = watch::channel(true);
    let mut writer = writer(&ctx, leading);

    let report = writer
        .write(&[edge_node(&ctx, "node-1", json!({"observedGeneration": 1}))])
        .await
        .unwrap();
    assert_eq!(counts(&report), written(1, 0), "{report:?}");
    assert_eq!(
        report.durations.len(),
        2,
        "one apply of the object, one of its status"
    );
    assert!(report.durations.iter().all(|(kind, _)| kind == "EdgeNode"));

    let node = ctx.api::<EdgeNode>().get("node-1").await.unwrap();
    assert_eq!(node.spec.node_name, "node-1");
    assert_eq!(node.status.unwrap().observed_generation, Some(1));
    assert_eq!(
        node.metadata
            .labels
            .unwrap()
            .get("nodewright.io/site")
            .map(String::as_str),
        Some("site-a")
    );
}

#[tokio::test]
async fn a_second_identical_write_does_nothing() {
    let ctx = context("writer-same").await;
    let (_leader, leading) = watch::channel(true);
    let mut writer = writer(&ctx, leading);
    let desired = [edge_node(&ctx, "node-1", json!({"observedGeneration": 1}))];

    writer.write(&desired).await.unwrap();
    let before = resource_version(&ctx, "node-1").await;
    let report = writer.write(&desired).await.unwrap();
    assert_eq!(counts(&report), written(0, 1), "{report:?}");
    assert!(report.durations.is_empty(), "no API write at all");
    assert_eq!(resource_version(&ctx, "node-1").await, before);
}

#[tokio::test]
async fn a_status_change_writes_only_the_status() {
    let ctx = context("writer-status").await;
    let (_leader, leading) = watch::channel(true);
    let mut writer = writer(&ctx, leading);
    writer
        .write(&[edge_node(&ctx, "node-1", json!({"observedGeneration": 1}))])
        .await
        .unwrap();
    let before = ctx.api::<EdgeNode>().get("node-1").await.unwrap();

    let report = writer
        .write(&[edge_node(&ctx, "node-1", json!({"observedGeneration": 2}))])
        .await
        .unwrap();
    assert_eq!(counts(&report), written(1, 0), "{report:?}");
    assert_eq!(
        report.durations.len(),
        1,
        "only the status subresource was written"
    );

    let after = ctx.api::<EdgeNode>().get("node-1").await.unwrap();
    assert_eq!(after.status.unwrap().observed_generation, Some(2));
    assert_eq!(
        after.metadata.generation, before.metadata.generation,
        "spec untouched"
    );
    assert_ne!(after.metadata.resource_version, before.metadata.resource_version);
}

#[tokio::test]
async fn a_replica_that_does_not_lead_writes_nothing() {
    let ctx = context("writer-follower").await;
    let (leader, leading) = watch::channel(false);
    let mut writer = writer(&ctx, leading);
    let desired = [edge_node(&ctx, "node-1", json!({"observedGeneration": 1}))];

    let report = writer.write(&desired).await.unwrap();
    assert_eq!((report.applied, report.skipped_not_leader), (0, 1), "{report:?}");
    assert!(report.durations.is_empty());
    assert!(ctx.api::<EdgeNode>().get_opt("node-1").await.unwrap().is_none());

    // On becoming leader it writes; after losing leadership again it writes no change.
    leader.send_replace(true);
    let report = writer.write(&desired).await.unwrap();
    assert_eq!(counts(&report), written(1, 0), "{report:?}");
    leader.send_replace(false);
    let changed = [edge_node(&ctx, "node-1", json!({"observedGeneration": 2}))];
    let report = writer.write(&changed).await.unwrap();
    assert_eq!(report.skipped_not_leader, 1, "{report:?}");
    let node = ctx.api::<EdgeNode>().get("node-1").await.unwrap();
    assert_eq!(node.status.unwrap().observed_generation, Some(1));
}

#[tokio::test]
async fn gaining_leadership_or_forgetting_applies_everything_again() {
    let ctx = context("writer-forget").await;
    let (leader, leading) = watch::channel(true);
    let mut writer = writer(&ctx, leading);
    let desired = [edge_node(&ctx, "node-1", json!({"observedGeneration": 1}))];
    writer.write(&desired).await.unwrap();

    writer.forget();
    let report = writer.write(&desired).await.unwrap();
    assert_eq!(counts(&report), written(1, 0), "{report:?}");
    assert_eq!(report.durations.len(), 2);

    // Another replica may have written while this one did not lead, even briefly between two calls.
    leader.send_replace(false);
    leader.send_replace(true);
    let report = writer.write(&desired).await.unwrap();
    assert_eq!(counts(&report), written(1, 0), "{report:?}");
    assert_eq!(report.durations.len(), 2);
    leader.send_replace(false);
    assert_eq!(writer.write(&desired).await.unwrap().skipped_not_leader, 1);
    leader.send_replace(true);
    let report = writer.write(&desired).await.unwrap();
    assert_eq!(counts(&report), written(1, 0), "{report:?}");
    assert_eq!(report.durations.len(), 2);
}

#[tokio::test]
async fn the_rate_limit_spaces_writes() {
    let ctx = context("writer-rate").await;
    let (_leader, leading) = watch::channel(true);
    let (rate, burst) = (4.0, 2);
    let config = WriterConfig {
        field_manager: "nodewright-bridge".into(),
        max_writes_per_second: rate,
        burst,
    };
    let mut writer = StatusWriter::new(ctx.client.clone(), config, leading);
    let desired: Vec<Desired> = (0..3)
        .map(|i| edge_node(&ctx, &format!("node-{i}"), json!({"observedGeneration": i})))
        .collect();

    let started = Instant::now();
    let report = writer.write(&desired).await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(counts(&report), written(3, 0), "{report:?}");
    let writes = report.durations.len();
    assert_eq!(writes, 6);
    // The burst went at once; the rest waited for tokens. (A slow server only lets tokens refill
    // meanwhile, so this is a lower bound of one, not an exact count.)
    assert!(report.throttled >= 1, "{report:?}");
    // However fast the server, no more writes than the bucket allows in the time taken.
    assert!(
        writes as f64 <= f64::from(burst) + rate * elapsed + 1e-6,
        "{writes} writes in {elapsed} s"
    );
}

#[tokio::test]
async fn a_refused_object_is_reported_and_the_others_are_written() {
    let ctx = context("writer-refused").await;
    let (_leader, leading) = watch::channel(true);
    let mut writer = writer(&ctx, leading);
    // `line` must be at least 1: the CRD schema refuses this status.
    let invalid_status = json!({"parseDiagnostics": [{
        "source": "configmap/kube-system/vx-rail-state:bonds",
        "line": 0,
        "column": 1,
        "message": "expected a bond",
        "firstSeen": "2026-01-01T00:00:00Z",
    }]});
    let mut status_only = edge_node(&ctx, "missing", json!({"observedGeneration": 1}));
    status_only.spec = None;
    status_only.labels.clear();
    let desired = [
        edge_node(&ctx, "node-1", json!({"observedGeneration": 1})),
        edge_node(&ctx, "node-bad", invalid_status),
        status_only,
        edge_node(&ctx, "node-2", json!({"observedGeneration": 1})),
    ];

    let report = writer.write(&desired).await.unwrap();
    assert_eq!((report.applied, report.unchanged), (2, 0), "{report:?}");
    let failed: Vec<&str> = report.failed.iter().map(|(key, _)| key.as_str()).collect();
    let bad = format!("EdgeNode/{}/node-bad", ctx.namespace);
    let missing = format!("EdgeNode/{}/missing", ctx.namespace);
    assert_eq!(failed, [bad.as_str(), missing.as_str()], "{report:?}");
    assert!(report.failed[0].1.contains("status"), "{report:?}");
    assert!(ctx.api::<EdgeNode>().get_opt("node-2").await.unwrap().is_some());

    // Failed writes are not remembered: the next call retries them (the object of the refused
    // status exists by now, so only its status is retried), and writes nothing else.
    let report = writer.write(&desired).await.unwrap();
    assert_eq!(
        (report.applied, report.unchanged, report.failed.len()),
        (0, 2, 2),
        "{report:?}"
    );
    assert!(
        report.durations.is_empty(),
        "failed writes are retried but not timed: {report:?}"
    );
}

#[tokio::test]
async fn an_unusable_rate_is_refused() {
    let ctx = context("writer-config").await;
    let (_leader, leading) = watch::channel(true);
    let config = WriterConfig {
        field_manager: "nodewright-bridge".into(),
        max_writes_per_second: 0.0,
        burst: 1,
    };
    let mut writer = StatusWriter::new(ctx.client.clone(), config, leading);
    let error = writer.write(&[]).await.unwrap_err();
    assert_eq!(error.metric_label(), "config");
}

#[tokio::test]
async fn an_object_deleted_by_someone_else_is_created_again_by_the_next_write() {
    let ctx = context("writer-recreate").await;
    let (_leader, leading) = watch::channel(true);
    let mut writer = writer(&ctx, leading);
    let first = edge_node(&ctx, "n1", json!({"conditions": []}));
    assert_eq!(
        counts(&writer.write(std::slice::from_ref(&first)).await.unwrap()),
        written(1, 0)
    );
    let api: Api<EdgeNode> = ctx.api();
    api.delete("n1", &Default::default()).await.unwrap();

    let changed = edge_node(&ctx, "n1", json!({"parseDiagnostics": []}));
    let report = writer.write(std::slice::from_ref(&changed)).await.unwrap();
    assert_eq!(
        report.failed.len(),
        1,
        "the status of a deleted object cannot be written"
    );
    let report = writer.write(std::slice::from_ref(&changed)).await.unwrap();
    assert_eq!(counts(&report), written(1, 0));
    let node = api.get("n1").await.unwrap();
    assert_eq!(node.spec.node_name, "n1");
}
