//! `nodewright ui`: started against a real API server, it prints the address it serves on (the
//! loopback unless `--listen` says otherwise), lists what it reads, serves the views as JSON and
//! refuses every write.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use nodewright_testenv::{TestContext, eventually, http_get};

fn nodewright() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nodewright"))
}

#[test]
fn by_default_the_ui_listens_on_the_loopback_only() {
    let out = nodewright().args(["ui", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: 127.0.0.1:8090]"), "{help}");
}

#[test]
fn an_audit_dir_that_is_not_a_directory_is_refused_with_its_path() {
    let out = nodewright()
        .args([
            "ui",
            "--listen",
            "127.0.0.1:0",
            "--audit-dir",
            "/nonexistent/audit-log",
        ])
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--audit-dir /nonexistent/audit-log: not a directory"),
        "{err}"
    );
}

#[tokio::test]
async fn the_ui_prints_its_address_and_serves_the_site_it_reads_and_refuses_writes() {
    let ctx = TestContext::new("ui-cli").await.unwrap();
    nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
        .await
        .unwrap();
    let yaml = format!(
        "apiVersion: nodewright.io/v1alpha1\nkind: EdgeCluster\nmetadata: {{name: site, namespace: {ns}}}\nspec: {{profile: {{topology: SingleNode}}}}\n---\napiVersion: nodewright.io/v1alpha1\nkind: EdgeNode\nmetadata: {{name: edge-1, namespace: {ns}}}\nspec: {{nodeName: edge-1, clusterRef: {{name: site}}}}\n",
        ns = ctx.namespace
    );
    nodewright_testenv::apply_yaml(&ctx.client, &yaml, None)
        .await
        .unwrap();
    let mut ui = nodewright()
        .args([
            "ui",
            "--listen",
            "127.0.0.1:0",
            "--legacy-namespace",
            &ctx.namespace,
        ])
        .arg("--kubeconfig")
        .arg(ctx.control_plane.kubeconfig())
        .args(["--namespace", &ctx.namespace])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(ui.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("open http://") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "nodewright ui ended early"
        );
    }
    let addr = line
        .split("open http://")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('/');
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();

    let body = eventually(
        "the sites view with the site's node",
        Duration::from_secs(30),
        || async {
            let r = http_get(port, "/api/sites").await.ok()?;
            r.contains("\"nodes\":{\"total\":1").then_some(r)
        },
    )
    .await;
    assert!(body.contains("\"name\":\"site\""), "{body}");
    let page = http_get(port, "/nodes/x/edge-1").await.unwrap();
    assert!(
        page.starts_with("HTTP/1.0 200") && page.contains("content-security-policy"),
        "{page}"
    );
    let missing = http_get(port, "/api/nodes/x/edge-9").await.unwrap();
    assert!(
        missing.starts_with("HTTP/1.0 404") && missing.contains("no EdgeNode edge-9"),
        "{missing}"
    );
    // Without --audit-dir the Audit view says how to turn it on.
    let audit = http_get(port, "/api/audit").await.unwrap();
    assert!(
        audit.starts_with("HTTP/1.0 200")
            && audit.contains("\"enabled\":false")
            && audit.contains("--audit-dir"),
        "{audit}"
    );
    let bad = http_get(port, "/api/sites?sort=age").await.unwrap();
    assert!(
        bad.starts_with("HTTP/1.0 400") && bad.contains("sort \\\"age\\\""),
        "{bad}"
    );

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"POST /api/sites HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.0 405"), "{reply}");
    assert!(line.contains("actions off"), "{line}");
    let actions = http_get(port, "/api/actions").await.unwrap();
    assert!(actions.contains(r#"{"enabled":false}"#), "{actions}");

    ui.kill().unwrap();
    ui.wait().unwrap();
}

#[tokio::test]
async fn with_enable_actions_the_ui_says_so_and_refuses_an_action_without_a_token() {
    let ctx = TestContext::new("ui-cli-act").await.unwrap();
    let mut ui = nodewright()
        .args(["ui", "--enable-actions", "--listen", "127.0.0.1:0"])
        .args([
            "--legacy-namespace",
            &ctx.namespace,
            "--namespace",
            &ctx.namespace,
        ])
        .arg("--kubeconfig")
        .arg(ctx.control_plane.kubeconfig())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(ui.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("open http://") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "nodewright ui ended early"
        );
    }
    assert!(line.contains("actions on"), "{line}");
    let port: u16 = line
        .trim()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let actions = http_get(port, "/api/actions").await.unwrap();
    assert!(actions.contains(r#"{"enabled":true}"#), "{actions}");

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!(
        r#"{{"action":"rollback","namespace":"{}","name":"up-1"}}"#,
        ctx.namespace
    );
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        format!(
            "POST /api/actions HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 401") && reply.contains("no bearer token"),
        "{reply}"
    );

    ui.kill().unwrap();
    ui.wait().unwrap();
}
