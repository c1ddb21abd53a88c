//! The main job, end to end: `nodewright-dev` with a two-node fleet comes up, the bridge turns
//! the legacy script's writes into Ready EdgeNodes and a Ready EdgeCluster, the script's log is
//! served through the real pods/log API, the metrics are there, the operator runs the site's
//! shadow and tells the scripts, the audit writer records the site in a log that verifies against
//! the checkpoint it published, the web UI shows the site and the audit log verified, and Ctrl-C stops it all cleanly.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, ListParams};
use nodewright_api::edgecluster::EdgeCluster;
use nodewright_api::edgenode::EdgeNode;

fn ready(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_brings_up_a_fleet_the_bridge_observes_and_stops_cleanly_on_ctrl_c() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_nodewright-dev"));
    // The demo's defaults (the legacy script, its DaemonSet) are paths from the repository root.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(
        exe.with_file_name("vxr-sim").is_file(),
        "vxr-sim is missing next to {}: cargo build -p nodewright-sim-harness",
        exe.display()
    );
    let state = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (admin, operator_admin, audit_admin, ui) = (free(), free(), free(), free());
    let mut demo = Command::new(exe)
        .current_dir(root)
        .args([
            "--nodes",
            "2",
            "--tick-seconds",
            "2",
            "--admin-addr",
            &admin.to_string(),
            "--operator-admin-addr",
            &operator_admin.to_string(),
            "--audit-admin-addr",
            &audit_admin.to_string(),
            "--ui-addr",
            &ui.to_string(),
        ])
        .arg("--state-dir")
        .arg(state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(demo.stdout.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("Press Ctrl-C to stop.") {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            demo.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("the demo ended early:\n{banner}\n{err}");
        }
        banner.push_str(&line);
    }
    assert!(banner.contains("kubectl get nodewright -A"), "{banner}");
    assert!(banner.contains(&format!("Web UI: http://{ui}/")), "{banner}");

    let client = nodewright_testenv::client_from(&state.path().join("kubeconfig"))
        .await
        .unwrap();
    let edge_nodes: Api<EdgeNode> = Api::namespaced(client.clone(), "nodewright-system");
    let clusters: Api<EdgeCluster> = Api::namespaced(client.clone(), "nodewright-system");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let nodes = edge_nodes.list(&ListParams::default()).await.unwrap().items;
        let ready_nodes = nodes
            .iter()
            .filter(|n| n.status.as_ref().is_some_and(|s| ready(&s.conditions)))
            .count();
        let site_ready = clusters
            .get_opt("site")
            .await
            .unwrap()
            .and_then(|c| c.status)
            .is_some_and(|s| ready(&s.conditions));
        if ready_nodes == 2 && site_ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ready_nodes} Ready EdgeNodes, site ready: {site_ready}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let logs = Command::new(nodewright_testenv::default_bin_dir().join("kubectl"))
        .env("KUBECONFIG", state.path().join("kubeconfig"))
        .args(["logs", "-n", "kube-system", "vx-rail-node-init-edge-1"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.contains("msg=\"iteration finished\""), "{logs}");

    // The UI shows the same site, read through the API.
    let sites = nodewright_testenv::eventually("the UI's sites view", Duration::from_secs(30), || async {
        let r = nodewright_testenv::http_get(ui.port(), "/api/sites").await.ok()?;
        let body: serde_json::Value = serde_json::from_str(r.split("\r\n\r\n").nth(1)?).ok()?;
        (body["nodes"]["total"] == 2).then_some(body)
    })
    .await;
    assert_eq!(sites["sites"][0]["name"], "site", "{sites}");

    let metrics = http_get_metrics(admin).await;
    assert!(
        metrics.contains("nodewright_bridge_node_ready{node=\"edge-2\"} 1"),
        "{metrics}"
    );

    // The operator runs the site's shadow: it told the scripts, and says so in status and metrics.
    let takeover =
        nodewright_testenv::eventually("the takeover in status", Duration::from_secs(60), || async {
            let status = clusters.get("site").await.ok()?.status?;
            let t = status.takeover?;
            (t.generation >= 1).then_some(t)
        })
        .await;
    let taints = takeover
        .workflows
        .iter()
        .find(|w| w.workflow == "taints")
        .unwrap();
    assert_eq!(taints.effective, nodewright_api::WorkflowMode::Shadow);
    let cm = Command::new(nodewright_testenv::default_bin_dir().join("kubectl"))
        .env("KUBECONFIG", state.path().join("kubeconfig"))
        .args([
            "get",
            "configmap",
            "nodewright-takeover",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.data.taints}",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cm.stdout), "shadow");
    let operator_metrics = http_get_metrics(operator_admin).await;
    assert!(
        operator_metrics.contains("nodewright_workflow_mode{mode=\"shadow\",workflow=\"taints\"} 1"),
        "{operator_metrics}"
    );
    // The audit writer published a checkpoint of what the API server sent it.
    let audit_metrics = http_get_metrics(audit_admin).await;
    assert!(
        audit_metrics.contains("nodewright_audit_tree_size "),
        "{audit_metrics}"
    );
    let published = Command::new(nodewright_testenv::default_bin_dir().join("kubectl"))
        .env("KUBECONFIG", state.path().join("kubeconfig"))
        .args([
            "get",
            "configmap",
            "nodewright-audit-checkpoint",
            "-n",
            "nodewright-system",
        ])
        .args(["-o", "jsonpath={.data.checkpoint}"])
        .output()
        .unwrap();
    let checkpoint = String::from_utf8(published.stdout).unwrap();
    assert!(checkpoint.starts_with("nodewright-dev/site\n"), "{checkpoint}");
    // The UI's Audit view reads the demo's log and verifies it against that checkpoint.
    let audit = nodewright_testenv::eventually("the UI's audit view", Duration::from_secs(30), || async {
        let r = nodewright_testenv::http_get(ui.port(), "/api/audit").await.ok()?;
        let body: serde_json::Value = serde_json::from_str(r.split("\r\n\r\n").nth(1)?).ok()?;
        (body["total"].as_u64()? > 0 && body["verification"]["result"] == "verified").then_some(body)
    })
    .await;
    assert_eq!(audit["enabled"], true, "{audit}");
    Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop within 90 s of Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut err = String::new();
    demo.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    let verifier = nodewright_audit::Verifier::from_file(&state.path().join("audit/verifier.key")).unwrap();
    let report = nodewright_audit::verify(
        &state.path().join("audit-log"),
        &nodewright_audit::VerifyOptions {
            verifiers: vec![verifier],
            checkpoint: Some(checkpoint),
        },
    )
    .unwrap();
    assert!(report.entries > 0, "{report:?}");
}

/// `GET /metrics` over a plain HTTP/1.0 connection (so that the streamed body is not chunked).
async fn http_get_metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}
