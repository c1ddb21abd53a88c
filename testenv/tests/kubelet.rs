//! The stand-in kubelet behind the real API server: `kubectl logs` (plain, `-f`, `--since-time`,
//! `--timestamps`, `--tail`) reads what a test appended, and a kubelet restart cuts open streams.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use nodewright_testenv::kubelet::{StandInKubelet, format_timestamp};
use nodewright_testenv::{TestContext, unique_name};
use tokio::io::AsyncBufReadExt as _;

const CONTAINER: &str = "node-init";

/// A test namespace, a stand-in kubelet with a Node pointing at it, and a running pod on that Node.
async fn pod_on_stand_in(prefix: &str) -> (TestContext, StandInKubelet, String) {
    let ctx = TestContext::new(prefix).await.unwrap();
    let kubelet = StandInKubelet::start().await.unwrap();
    let node = unique_name(&format!("{prefix}-node"));
    kubelet.register_node(&ctx.client, &node).await.unwrap();
    let pod = "legacy-0".to_owned();
    kubelet
        .create_running_pod(
            &ctx.client,
            &ctx.namespace,
            &pod,
            &node,
            CONTAINER,
            Default::default(),
        )
        .await
        .unwrap();
    (ctx, kubelet, pod)
}

async fn kubectl(ctx: &TestContext, args: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::from(ctx.kubectl());
    cmd.args(args).stdin(Stdio::null());
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("kubectl did not finish in 60 s")
        .unwrap()
}

async fn kubectl_ok(ctx: &TestContext, args: &[&str]) -> String {
    let out = kubectl(ctx, args).await;
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_logs_returns_what_was_appended() {
    let (ctx, kubelet, pod) = pod_on_stand_in("kubelet-logs").await;
    assert_eq!(kubectl_ok(&ctx, &["logs", &pod]).await, "");

    kubelet.append(
        &ctx.namespace,
        &pod,
        CONTAINER,
        "starting node init\nstep 1 of 3\n",
    );
    kubelet.append(&ctx.namespace, &pod, CONTAINER, "step 2 of 3");
    assert_eq!(
        kubectl_ok(&ctx, &["logs", &pod, "-c", CONTAINER]).await,
        "starting node init\nstep 1 of 3\nstep 2 of 3\n"
    );
    assert_eq!(
        kubectl_ok(&ctx, &["logs", &pod, "--tail=1"]).await,
        "step 2 of 3\n"
    );
    assert_eq!(
        kubectl_ok(&ctx, &["logs", &pod, "--limit-bytes=8"]).await,
        "starting"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_the_kubelet_does_not_run_is_not_found() {
    let (ctx, kubelet, pod) = pod_on_stand_in("kubelet-missing").await;
    kubelet.remove_container(&ctx.namespace, &pod, CONTAINER);
    let out = kubectl(&ctx, &["logs", &pod]).await;
    assert!(!out.status.success());
    // The API server turns the kubelet's 404 into a NotFound of pods/log.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NotFound") && stderr.contains("pods/log"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_logs_follow_receives_lines_appended_later() {
    let (ctx, kubelet, pod) = pod_on_stand_in("kubelet-follow").await;
    kubelet.append(&ctx.namespace, &pod, CONTAINER, "before\n");

    let mut cmd = tokio::process::Command::from(ctx.kubectl());
    cmd.args(["logs", "-f", &pod])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let next = async |lines: &mut tokio::io::Lines<_>| {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("no line within 30 s")
            .unwrap()
    };
    assert_eq!(next(&mut lines).await.as_deref(), Some("before"));

    kubelet.append(&ctx.namespace, &pod, CONTAINER, "after 1\n");
    assert_eq!(next(&mut lines).await.as_deref(), Some("after 1"));
    kubelet.append(&ctx.namespace, &pod, CONTAINER, "after 2\nafter 3\n");
    assert_eq!(next(&mut lines).await.as_deref(), Some("after 2"));
    assert_eq!(next(&mut lines).await.as_deref(), Some("after 3"));

    // The kubelet going away ends the stream, and `kubectl logs -f` with it.
    kubelet.stop().await;
    assert_eq!(next(&mut lines).await, None);
    child.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn since_time_and_timestamps_behave_as_on_a_kubelet() {
    let (ctx, kubelet, pod) = pod_on_stand_in("kubelet-since").await;
    // Whole seconds ten minutes ago, so that `--since-time` (second precision) can split them.
    let t0 = Timestamp::from_second(Timestamp::now().as_second() - 600).unwrap();
    let t1 = t0 + SignedDuration::from_millis(1_250);
    let t2 = t0 + SignedDuration::from_secs(2);
    kubelet.append_at(&ctx.namespace, &pod, CONTAINER, t0, "zero\n");
    kubelet.append_at(&ctx.namespace, &pod, CONTAINER, t1, "one\n");
    kubelet.append_at(&ctx.namespace, &pod, CONTAINER, t2, "two\n");

    let with_timestamps = kubectl_ok(&ctx, &["logs", &pod, "--timestamps"]).await;
    assert_eq!(
        with_timestamps,
        format!(
            "{} zero\n{} one\n{} two\n",
            format_timestamp(t0),
            format_timestamp(t1),
            format_timestamp(t2)
        )
    );
    assert!(with_timestamps.starts_with(&format!("{} zero", t0.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"))));

    // sinceTime is inclusive and has second precision: t0 + 1 s keeps "one" (t0 + 1.25 s).
    let since = (t0 + SignedDuration::from_secs(1)).to_string();
    assert_eq!(
        kubectl_ok(&ctx, &["logs", &pod, &format!("--since-time={since}")]).await,
        "one\ntwo\n"
    );
    let since = t2.to_string();
    assert_eq!(
        kubectl_ok(
            &ctx,
            &["logs", &pod, "--timestamps", &format!("--since-time={since}")]
        )
        .await,
        format!("{} two\n", format_timestamp(t2))
    );
    // sinceSeconds counts back from now: the lines ten minutes old are too old for the last minute.
    assert_eq!(kubectl_ok(&ctx, &["logs", &pod, "--since=1m"]).await, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_kubelet_cuts_open_streams_and_serves_again() {
    let (ctx, kubelet, pod) = pod_on_stand_in("kubelet-restart").await;
    kubelet.append(&ctx.namespace, &pod, CONTAINER, "one\n");
    let pods: Api<Pod> = ctx.api();
    let params = LogParams {
        follow: true,
        ..Default::default()
    };
    let mut lines = pods.log_stream(&pod, &params).await.unwrap().lines().boxed();
    let next = async |lines: &mut BoxStream<'static, std::io::Result<String>>| {
        tokio::time::timeout(Duration::from_secs(30), lines.try_next())
            .await
            .expect("nothing within 30 s")
    };
    assert_eq!(next(&mut lines).await.unwrap().as_deref(), Some("one"));

    kubelet.restart().await.unwrap();
    // The cut stream ends, cleanly or with an error, but ends.
    assert!(!matches!(next(&mut lines).await, Ok(Some(_))));

    kubelet.append(&ctx.namespace, &pod, CONTAINER, "two\n");
    let mut lines = pods.log_stream(&pod, &params).await.unwrap().lines().boxed();
    assert_eq!(next(&mut lines).await.unwrap().as_deref(), Some("one"));
    assert_eq!(next(&mut lines).await.unwrap().as_deref(), Some("two"));
}
