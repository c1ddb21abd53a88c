//! `nodewright check`, the command the chart's `helm test` pod runs: the binary against a small
//! local HTTP server that answers each path as a component's admin server would (ready, not
//! ready, metrics), and against a port nothing listens on.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves on 127.0.0.1: `/readyz` 200 "ok"; `/metrics` 200 with a bridge gauge; `/notready` 503
/// with a reason; `/late` 503 for its first two requests, then 200. Returns the port.
async fn admin_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let late = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let late = late.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match path {
                    "/readyz" => ("200 OK", "ok".to_owned()),
                    "/metrics" => (
                        "200 OK",
                        "# TYPE nodewright_bridge_leader gauge\nnodewright_bridge_leader 1\n".to_owned(),
                    ),
                    "/notready" => (
                        "503 Service Unavailable",
                        "waiting for the first full list of: nodes".to_owned(),
                    ),
                    "/late" if late.fetch_add(1, Ordering::SeqCst) < 2 => {
                        ("503 Service Unavailable", "not yet".to_owned())
                    }
                    "/late" => ("200 OK", "ok".to_owned()),
                    _ => ("404 Not Found", String::new()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

/// Runs `nodewright check ARGS` off the test's runtime (the server keeps answering meanwhile).
async fn check(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nodewright"))
            .arg("check")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn check_passes_and_says_so_when_every_url_answers_2xx_with_the_expected_text() {
    let port = admin_server().await;
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let out = check(args(&["--url", &metrics, "--expect", "nodewright_bridge_leader"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("ok: GET {metrics}: 200 OK\n"));
    let out = check(args(&["--url", &ready, "--url", &metrics])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
}

#[tokio::test]
async fn check_fails_naming_the_url_its_status_and_the_reason_the_body_gives() {
    let port = admin_server().await;
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let not_ready = format!("http://127.0.0.1:{port}/notready");
    let out = check(args(&["--url", &ready, "--url", &not_ready])).await;
    assert_eq!(out.status.code(), Some(1));
    // The URL that passed is still reported; the one that failed is named with why.
    assert_eq!(text(&out.stdout), format!("ok: GET {ready}: 200 OK\n"));
    assert_eq!(
        text(&out.stderr),
        format!(
            "nodewright: check failed: GET {not_ready}: answered 503 Service Unavailable: waiting for the first full list of: nodes\n"
        )
    );
}

#[tokio::test]
async fn check_fails_when_a_2xx_body_lacks_the_expected_text() {
    let port = admin_server().await;
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let out = check(args(&["--url", &ready, "--expect", "nodewright_bridge_leader"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("answered 200 OK, but the body does not contain \"nodewright_bridge_leader\""),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn check_fails_with_no_answer_when_nothing_listens() {
    // Bind and drop: a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let out = check(args(&["--url", &url])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("nodewright: check failed: GET {url}: no answer: ")),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn check_with_wait_keeps_trying_until_the_url_turns_ready() {
    let port = admin_server().await;
    let late = format!("http://127.0.0.1:{port}/late");
    let out = check(args(&["--url", &late, "--wait", "20"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("ok: GET {late}: 200 OK\n"));
}

#[tokio::test]
async fn check_refuses_an_https_url_before_sending_anything() {
    let out = check(args(&["--url", "https://example.invalid/readyz"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "nodewright: https://example.invalid/readyz: only http:// is supported (the admin ports serve plain HTTP)\n"
    );
}
