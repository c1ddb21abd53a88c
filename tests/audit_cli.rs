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

/// Events the test API server wrote, one JSON event per line (trail/testdata), lines `range`.
fn events(range: std::ops::Range<usize>) -> String {
    let lines = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("trail/testdata/captured-events.jsonl"),
    )
    .unwrap();
    let items: Vec<&str> = lines.lines().collect();
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        items[range].join(",")
    )
}

fn event_list() -> String {
    events(0..17)
}

/// Starts `nodewright audit serve` with `extra` arguments; returns it and its webhook's port.
fn start_writer(log: &Path, key: &Path, extra: &[&std::ffi::OsStr]) -> (std::process::Child, u16) {
    let mut writer = nodewright()
        .args([
            "audit",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--dir",
        ])
        .arg(log)
        .arg("--key")
        .arg(key)
        .args(extra)
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
    // Keep draining its log so that it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (writer, port)
}

fn keygen(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("signer.key");
    let out = nodewright()
        .args(["audit", "keygen", "--origin", "audit.test/site", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verifier = dir.join("verifier.key");
    std::fs::write(&verifier, &out.stdout).unwrap();
    (key, verifier)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn verify_from_the_cluster_accepts_the_log_and_refuses_a_copy_cut_short_before_the_published_checkpoint() {
    let control_plane = nodewright_testenv::shared().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ns = nodewright_testenv::unique_name("audit");
    rt.block_on(async {
        let client = control_plane.client().await.unwrap();
        nodewright_testenv::create_namespace(&client, &ns, &[])
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let (key, verifier) = keygen(dir.path());
    let log = dir.path().join("log");
    let kubeconfig = control_plane.kubeconfig().as_os_str();
    let (mut writer, port) = start_writer(
        &log,
        &key,
        &[
            "--namespace".as_ref(),
            ns.as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig,
        ],
    );
    assert_eq!(post(port, &events(0..10)), "HTTP/1.1 200 OK");
    let early = dir.path().join("early");
    copy_dir(&log, &early);
    assert_eq!(post(port, &events(10..17)), "HTTP/1.1 200 OK");
    let published_size = || {
        let out = control_plane
            .kubectl()
            .args(["get", "configmap", "nodewright-audit-checkpoint", "-n", &ns])
            .args(["-o", "jsonpath={.data.size}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while published_size() != "14" {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpoint of 14 entries was not published"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    let verify = |dir: &Path, key: Option<&Path>| {
        let mut cmd = nodewright();
        cmd.args([
            "audit",
            "verify",
            "--from-cluster",
            "--namespace",
            &ns,
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .arg(dir);
        if let Some(key) = key {
            cmd.arg("--key").arg(key);
        }
        cmd.output().unwrap()
    };
    let out = verify(&log, Some(&verifier));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("consistent with the trusted checkpoint of 14"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Without --key, the verifier key published next to the checkpoint is used.
    let out = verify(&log, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A copy of the log from before the second batch is shorter than what the cluster saw.
    let out = verify(&early, Some(&verifier));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not verify: entry 5: missing"), "{err}");
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
    let (key, verifier) = keygen(dir.path());
    let log = dir.path().join("log");
    let (mut writer, port) = start_writer(&log, &key, &["--no-publish".as_ref()]);
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
