#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The admin server end to end: a real listener, plain HTTP/1.0 requests over a TCP stream (so that a
//! streamed body is not chunked), and the
//! `/metrics` body checked by Prometheus' own `promtool check metrics` (installed by
//! `scripts/install-tools`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nodewright_bridge::metrics::{BondMetrics, Metrics, NodeMetrics};
use nodewright_kit::admin::{CONTENT_TYPE, Health, serve_admin};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One parsed HTTP response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` over HTTP/1.0 and reads the whole response. Uses tokio's readiness
/// API rather than `AsyncReadExt`, which would need tokio's `io-util` feature for one test.
async fn get(addr: SocketAddr, path: &str) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut sent = 0;
    while sent < request.len() {
        stream.writable().await.unwrap();
        match stream.try_write(&request.as_bytes()[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("writing the request: {e}"),
        }
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream.readable().await.unwrap();
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading the response: {e}"),
        }
    }
    let raw = String::from_utf8(raw).expect("the response is UTF-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_owned(),
    };
    assert!(
        reply.header("transfer-encoding").is_none(),
        "this reader does not decode chunked bodies"
    );
    if let Some(len) = reply.header("content-length") {
        assert_eq!(
            len.parse::<usize>().unwrap(),
            reply.body.len(),
            "the whole body arrived"
        );
    }
    reply
}

struct Admin {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

async fn start(metrics: Arc<Metrics>, health: Health) -> Admin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_admin(listener, metrics, health, async {
        let _ = stopped.await;
    }));
    Admin { addr, stop, server }
}

impl Admin {
    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        result.expect("the server stops on shutdown").unwrap().unwrap();
    }
}

fn node(ready: bool, upgrade_state: Option<&str>, slaves: &[(&str, bool, i64)]) -> NodeMetrics {
    NodeMetrics {
        ready,
        conditions: vec![
            ("Ready".into(), if ready { "True" } else { "Unknown" }.into()),
            ("MemoryPressure".into(), "False".into()),
            ("DiskPressure".into(), "False".into()),
        ],
        bonds: vec![BondMetrics {
            name: "bond0".into(),
            up: slaves.iter().any(|(_, up, _)| *up),
            slaves: slaves
                .iter()
                .map(|(n, up, f)| ((*n).to_owned(), *up, *f))
                .collect(),
        }],
        drbd_resources: Some(6),
        drbd_uptodate: Some(if upgrade_state.is_some() { 4 } else { 6 }),
        drbd_syncing: Some(upgrade_state.is_some()),
        upgrade_state: upgrade_state.map(str::to_owned),
        heartbeat_unix: Some(1_795_000_000),
    }
}

/// What a three-node edge cluster in the middle of an upgrade looks like.
fn realistic_metrics() -> Metrics {
    let m = Metrics::new().unwrap();
    let mut nodes = BTreeMap::new();
    nodes.insert(
        "edge-a".to_owned(),
        node(true, None, &[("eno1", true, 0), ("eno2", true, 1)]),
    );
    nodes.insert(
        "edge-b".to_owned(),
        node(
            true,
            Some("WAIT_RESYNC"),
            &[("eno1", true, 0), ("eno2", false, 7)],
        ),
    );
    nodes.insert(
        "edge-c".to_owned(),
        NodeMetrics {
            drbd_resources: None,
            drbd_uptodate: None,
            drbd_syncing: None,
            ..node(false, None, &[])
        },
    );
    m.set_nodes(nodes);
    for format in ["drbd-status", "bonding"] {
        m.parse_error(format);
    }
    m.log_lines("edge-a", "record", 1200);
    m.log_lines("edge-a", "block", 40);
    m.log_lines("edge-b", "unknown", 3);
    for ms in [1, 2, 2, 5, 40] {
        m.observe_reconcile(Duration::from_millis(ms));
    }
    m.observe_write("StorageUpgrade", "applied", Some(Duration::from_millis(25)));
    m.observe_write("StorageUpgrade", "unchanged", None);
    m.observe_write("NodeStatus", "failed", Some(Duration::from_secs(2)));
    m.watch_event("nodes", "apply", Some(Duration::from_secs(1)));
    m.watch_event("configmaps", "apply", Some(Duration::from_secs(4)));
    m.watch_event("configmaps", "delete", None);
    m.watch_event("pods", "init_done", None);
    m.set_leader(true);
    m
}

/// Runs `promtool check metrics` on `body` and returns whether it passed with no lint problem, and
/// what it printed. A missing promtool fails the test, since a silent skip would let the exposition
/// drift from the conventions unnoticed.
fn promtool_check(body: &str) -> (bool, String) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "promtool is not installed: run scripts/install-tools (it installs Debian's prometheus package)"
            )
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && report.trim().is_empty(),
        format!("{}: {}", out.status, report.trim()),
    )
}

#[tokio::test]
async fn the_metrics_endpoint_serves_every_family_in_a_form_promtool_accepts() {
    let admin = start(
        Arc::new(realistic_metrics()),
        Health::new(Vec::<String>::new(), Duration::from_secs(60)),
    )
    .await;

    let reply = get(admin.addr, "/metrics").await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some(CONTENT_TYPE));
    for family in [
        "node_ready",
        "node_status_condition",
        "node_bond_up",
        "node_bond_slave_up",
        "node_bond_slave_link_failures",
        "node_drbd_resources",
        "node_drbd_resources_uptodate",
        "node_drbd_syncing",
        "node_upgrade_state",
        "node_legacy_heartbeat_timestamp_seconds",
        "parse_errors_total",
        "log_lines_total",
        "reconcile_duration_seconds",
        "status_write_duration_seconds",
        "status_writes_total",
        "watch_events_total",
        "watch_event_lag_seconds",
        "leader",
        "build_info",
    ] {
        let help = format!("# HELP nodewright_bridge_{family} ");
        assert!(reply.body.contains(&help), "no {help} in\n{}", reply.body);
    }
    assert!(
        reply
            .body
            .contains("nodewright_bridge_node_upgrade_state{node=\"edge-b\",state=\"WAIT_RESYNC\"} 1")
    );
    assert!(
        !reply
            .body
            .contains("nodewright_bridge_node_drbd_resources{node=\"edge-c\"}")
    );
    let (clean, report) = promtool_check(&reply.body);
    assert!(clean, "promtool check metrics: {report}\n{}", reply.body);

    admin.shut_down().await;
}

#[test]
fn promtool_flags_a_counter_without_total() {
    // The check above is only worth something if promtool really lints.
    let body = "# HELP bad_requests Requests.\n# TYPE bad_requests counter\nbad_requests 1\n";
    let (clean, report) = promtool_check(body);
    assert!(!clean);
    assert!(report.contains("_total"), "{report}");
}

#[tokio::test]
async fn readyz_turns_ready_once_every_source_has_listed() {
    let health = Health::new(["nodes", "configmaps"], Duration::from_secs(60));
    let admin = start(Arc::new(Metrics::new().unwrap()), health.clone()).await;

    let reply = get(admin.addr, "/readyz").await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        "waiting for the first full list of: configmaps, nodes\n"
    );

    health.synced("nodes");
    let reply = get(admin.addr, "/readyz").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "waiting for the first full list of: configmaps\n")
    );

    health.synced("configmaps");
    let reply = get(admin.addr, "/readyz").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"));

    admin.shut_down().await;
}

#[tokio::test]
async fn healthz_fails_when_the_loop_stops_beating_and_recovers_when_it_beats_again() {
    let stall_after = Duration::from_millis(1500);
    let health = Health::new(["nodes"], stall_after);
    let admin = start(Arc::new(Metrics::new().unwrap()), health.clone()).await;

    health.beat();
    let reply = get(admin.addr, "/healthz").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "ok\n"),
        "live while beating, even before ready"
    );

    // Wait for the stall to be reported (at the earliest `stall_after` after the beat).
    let beat_at = std::time::Instant::now();
    let reply = loop {
        let reply = get(admin.addr, "/healthz").await;
        if reply.status == 503 {
            break reply;
        }
        assert!(
            beat_at.elapsed() < stall_after + Duration::from_secs(10),
            "never reported the stall"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        beat_at.elapsed() >= stall_after - Duration::from_millis(100),
        "stalled too early"
    );
    assert!(
        reply.body.starts_with("process loop stalled: last beat "),
        "{}",
        reply.body
    );
    assert_eq!(reply.body.lines().count(), 1);

    health.beat();
    assert_eq!(get(admin.addr, "/healthz").await.status, 200);

    admin.shut_down().await;
}

#[tokio::test]
async fn other_paths_are_not_found() {
    let admin = start(
        Arc::new(Metrics::new().unwrap()),
        Health::new(["nodes"], Duration::from_secs(60)),
    )
    .await;
    assert_eq!(get(admin.addr, "/").await.status, 404);
    assert_eq!(get(admin.addr, "/metrics/extra").await.status, 404);
    admin.shut_down().await;
}
