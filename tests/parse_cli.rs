//! `nodewright parse` on good and bad input: typed JSON for what it recognises, a one-line error
//! naming line and column for what it does not, and never a panic.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn fixture(path: &str) -> String {
    format!("{}/parsers/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn nodewright(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nodewright"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn assert_one_line_error(out: &Output, expected: &str) {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line, no backtrace: {stderr}");
    assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn list_names_every_format_and_auto() {
    let out = nodewright(&["parse", "--list"], b"");
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "proc-net-bonding",
        "drbd-status",
        "drbd-events2",
        "proc-drbd",
        "linstor-node-list",
        "ip",
        "ip-json",
        "legacy-log",
        "legacy-upgrade",
        "legacy-members",
        "legacy-network-plan",
        "auto",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} listed:\n{text}"
        );
    }
}

#[test]
fn a_named_format_prints_typed_json() {
    let out = nodewright(
        &[
            "parse",
            "proc-net-bonding",
            &fixture("bonding/v3.7.1-802.3ad-lacp-details.txt"),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["mode"], "802.3ad", "{value}");
    assert_eq!(value["slaves"].as_array().unwrap().len(), 2);
}

#[test]
fn auto_detects_the_format_of_real_samples() {
    for (path, format) in [
        ("bonding/v5.15.0-active-backup.txt", "proc-net-bonding"),
        ("drbd_status/linstor-213-three-nodes.txt", "drbd-status"),
        ("ip/ifupdown2-10-ip-d-link-vlan.txt", "ip"),
    ] {
        let out = nodewright(&["parse", "auto", &fixture(path)], b"");
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(value["format"], format, "{path}");
    }
}

#[test]
fn standard_input_is_read_with_a_dash_or_no_file() {
    let sample = std::fs::read(fixture("drbd_status/crowbar-uptodate.txt")).unwrap();
    let with_dash = nodewright(&["parse", "drbd-status", "-"], &sample);
    let without = nodewright(&["parse", "drbd-status"], &sample);
    assert!(with_dash.status.success());
    assert_eq!(with_dash.stdout, without.stdout);
}

#[test]
fn malformed_input_fails_with_one_line_naming_line_and_column() {
    let input =
        b"r0 role:Primary\n  disk:UpToDate\n  peer role:Secondary\n    replication:Established peer-disk\n";
    let out = nodewright(&["parse", "drbd-status", "-"], input);
    assert_one_line_error(&out, "<stdin>:4:29: expected end of line, found \"peer-disk\"");
    let out = nodewright(
        &[
            "parse",
            "proc-net-bonding",
            &fixture("drbd_status/crowbar-uptodate.txt"),
        ],
        b"",
    );
    assert_one_line_error(&out, "crowbar-uptodate.txt:1:1: expected");
}

#[test]
fn unknown_formats_binary_input_and_missing_files_are_clear_errors() {
    assert_one_line_error(
        &nodewright(&["parse", "yaml-blob", "-"], b"x"),
        "unknown format \"yaml-blob\"",
    );
    assert_one_line_error(
        &nodewright(&["parse", "auto", "-"], b"\xff\xfe"),
        "not UTF-8 text",
    );
    assert_one_line_error(
        &nodewright(&["parse", "auto", "-"], b"hello\n"),
        "not a known format",
    );
    assert_one_line_error(
        &nodewright(&["parse", "ip", "/nonexistent/file"], b""),
        "reading /nonexistent/file",
    );
}

#[test]
fn a_legacy_log_prints_typed_events_and_counters() {
    let out = nodewright(
        &[
            "parse",
            "legacy-log",
            &fixture("legacy/log--kv-bond-failover-edge-1.log"),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["stats"]["unknown_lines"], 0, "{value}");
    let events = value["events"].as_array().unwrap();
    let block = events
        .iter()
        .find(|e| e["kind"] == "block" && e["command"] == "/proc/net/bonding/bond0")
        .unwrap();
    assert_eq!(block["node"], "edge-1");
    assert_eq!(block["complete"], true);
}

#[test]
fn auto_detects_a_3x_log_and_an_upgrade_blob() {
    for (path, format) in [
        ("legacy/log--legacy-bond-failover-edge-1.log", "legacy-log"),
        (
            "legacy/upgrade--synthetic-contract-rolled-back.txt",
            "legacy-upgrade",
        ),
        (
            "legacy/members--bootstrap-three-nodes-3-rows-member.txt",
            "legacy-members",
        ),
    ] {
        let out = nodewright(&["parse", "auto", &fixture(path)], b"");
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(value["format"], format, "{path}");
    }
}

#[test]
fn an_upgrade_blob_prints_its_typed_state_and_a_bad_one_names_the_column() {
    let out = nodewright(
        &["parse", "legacy-upgrade", "-"],
        b"state=WAIT_RESYNC;from=9.2.5;to=9.2.8;order=edge-1,edge-2;node=edge-2;done=edge-1;rolled=;by=edge-1;started=1714560000;since=1714560420",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["state"], "WAIT_RESYNC");
    assert_eq!(value["order"], serde_json::json!(["edge-1", "edge-2"]));
    assert_eq!(value["node"], "edge-2");
    let out = nodewright(&["parse", "legacy-upgrade", "-"], b"state=PREFLIGHT;since=later");
    assert_one_line_error(&out, "<stdin>:1:23: expected an unsigned number, found \"later\"");
}

#[test]
fn auto_tells_blobs_that_share_keys_apart_by_how_well_they_fit() {
    for (input, format) in [
        // Parses as an `upgrade` blob too (all three keys are upgrade keys): the smaller format wins.
        (
            "state=WAIT_RESYNC;to=9.2.8;since=1714560420",
            "legacy-upgrade-state",
        ),
        // Parses as a `migration` too (it needs only `phase`), with four keys it does not know.
        (
            "phase=WAITING_FOR_RESYNC;boot_id=3f1c8e0a-5b7d-4c2e-9a61-0d2f4b6c8e10;boot_time=1714557477;started=1714557597;since=1714557600",
            "legacy-boot-recovery",
        ),
        (
            "phase=PENDING;source=edge-1;joining=edge-2;replicas=2;since=1714557900",
            "legacy-migration",
        ),
        (
            "state=WAIT_RESYNC;from=9.2.5;to=9.2.8;order=edge-1,edge-2;node=edge-2;done=edge-1;rolled=;by=edge-1;started=1714560000;since=1714560420",
            "legacy-upgrade",
        ),
        (
            "action=mode;value=802.3ad;state=applied;id=7;requested=1714557000;done=1714557518",
            "legacy-bond-flip",
        ),
    ] {
        let out = nodewright(&["parse", "auto", "-"], input.as_bytes());
        assert!(
            out.status.success(),
            "{input}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(value["format"], format, "{input}");
    }
}

#[test]
fn auto_names_each_real_linstor_table_by_its_kind_with_its_typed_fields() {
    for (path, format, field) in [
        (
            "linstor/node-list-client-47-utf8.txt",
            "linstor-node-list",
            "node_type",
        ),
        (
            "linstor/storage-pool-list-server-240-diskless.txt",
            "linstor-storage-pool-list",
            "driver",
        ),
        (
            "linstor/resource-list-server-203-created-on-sync.txt",
            "linstor-resource-list",
            "port",
        ),
        (
            "linstor/volume-list-server-342.txt",
            "linstor-volume-list",
            "minor",
        ),
    ] {
        let out = nodewright(&["parse", "auto", &fixture(path)], b"");
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(value["format"], format, "{path}");
        let first = &value["value"][0];
        assert!(!first[field].is_null(), "{path}: {field} in {first}");
        assert_eq!(first["extra"], serde_json::json!({}), "{path}: {first}");
    }
}

#[test]
fn a_typed_linstor_view_refuses_another_kinds_table_naming_the_missing_columns() {
    let out = nodewright(
        &[
            "parse",
            "linstor-node-list",
            &fixture("linstor/volume-list-server-342.txt"),
        ],
        b"",
    );
    assert_one_line_error(
        &out,
        "volume-list-server-342.txt:2:1: expected the `NodeType` column of a `linstor node list` table",
    );
}
