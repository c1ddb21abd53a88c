//! `nodewright audit`: the writer run as its own process receives webhook batches over HTTP,
//! acknowledges each once appended and never appends a batch sent again; killed with SIGKILL it
//! leaves a log that `audit log` reads and `audit verify` accepts; and `audit verify` names the
//! first entry someone changed on disk.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

fn nodewright() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nodewright"))
}

/// Events the test API server wrote, one JSON event per line (trail/testdata).
fn event_list() -> String {
    let lines = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("trail/testdata/captured-events.jsonl"),
    )
    .unwrap();
    let items: Vec<&str> = lines.lines().collect();
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        items.join(",")
    )
}

/// Posts `body` to the writer and returns the status line.
fn post(port: u16, body: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        tcp,
        "POST /audit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn the_writer_acknowledges_a_batch_once_appended_never_twice_and_its_log_reads_and_verifies_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signer.key");
    let out = nodewright()
        .args(["audit", "keygen", "--origin", "audit.test/site", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verifier = dir.path().join("verifier.key");
    std::fs::write(&verifier, &out.stdout).unwrap();
    let log = dir.path().join("log");

    let mut writer = nodewright()
        .args([
            "audit",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--no-publish",
            "--dir",
        ])
        .arg(&log)
        .arg("--key")
        .arg(&key)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(writer.stderr.take().unwrap());
    let mut line = String::new();
    let port = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the writer exited before it listened"
        );
        if let Some(rest) = line.split("webhook on http://127.0.0.1:").nth(1) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<u16>()
                .unwrap();
        }
    };
    let body = event_list();
    assert_eq!(post(port, &body), "HTTP/1.1 200 OK");
    // The API server sends a batch again when it did not see the answer: nothing is added.
    assert_eq!(post(port, &body), "HTTP/1.1 200 OK");
    assert_eq!(post(port, "{\"kind\":\"Status\"}"), "HTTP/1.1 400 Bad Request");
    writer.kill().unwrap();
    writer.wait().unwrap();

    let out = nodewright()
        .args(["audit", "log", "-o", "json"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(all.len(), 14, "the batch sent twice is in the log once");
    let out = nodewright()
        .args(["audit", "log", "--object", "Migration/grow-site"])
        .arg(&log)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(" request alice (as impersonated by nodewright-admin) create Migration/nodewright-system/grow-site"), "{text}");
    assert!(
        text.contains(" decision nodewright-admin Migration/grow-site entered Preflight"),
        "{text}"
    );
    assert!(
        text.contains(
            " step nodewright-admin on edge-1: linstor-node-create edge-2 10.0.0.2 → Succeeded (exit 0)"
        ),
        "{text}"
    );
    let out = nodewright()
        .args(["audit", "log", "--since", "last week"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--since \"last week\": expected an RFC 3339 time")
    );

    let out = nodewright()
        .args(["audit", "verify"])
        .arg(&log)
        .arg("--key")
        .arg(&verifier)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ok: 14 entries"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Someone rewrites who made the first of alice's requests.
    let first_alice = all.iter().find(|e| e["user"] == "alice").unwrap()["index"]
        .as_u64()
        .unwrap();
    let bundle = log.join("tile/entries/000.p/14");
    let bundle = if bundle.exists() {
        bundle
    } else {
        log.join("tile/entries/000")
    };
    let bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.windows(7).position(|w| w == b"\"alice\"").unwrap();
    let mut forged = bytes.clone();
    forged[at + 1..at + 6].copy_from_slice(b"mallo");
    std::fs::write(&bundle, forged).unwrap();
    let out = nodewright()
        .args(["audit", "verify"])
        .arg(&log)
        .arg("--key")
        .arg(&verifier)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("entry {first_alice}:")), "{err}");
}
