//! `nodewright bridge --bundle`: a support engineer's view of a site from what was captured there
//! with kubectl, printed as YAML or JSON; a bundle that cannot be read is a one-line error.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn nodewright() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nodewright"))
}

/// A bundle made of a pinned legacy end state (as `kubectl get -o yaml` prints it) and a log.
fn bundle(dir: &Path) {
    let snapshot = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/snapshots/storage-upgrade@end-state.snap"),
    )
    .unwrap();
    let body = snapshot.splitn(3, "---\n").nth(2).unwrap();
    std::fs::write(dir.join("objects.yaml"), body).unwrap();
    std::fs::write(
        dir.join("edge-1.log"),
        "ts=2026-01-01T00:10:00Z level=info node=edge-1 component=main msg=\"iteration finished\" outcome=ok step=finished rc=0 duration=1\n",
    )
    .unwrap();
}

#[test]
fn a_bundle_prints_the_observation_of_the_site_it_was_captured_from() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path());
    let out = nodewright()
        .args(["bridge", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml: serde_json::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    assert_eq!(yaml["cluster"]["status"]["nodes"]["total"], 3);
    assert_eq!(yaml["upgrades"][0]["status"]["state"], "Completed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 logs"), "{stderr}");
}

#[test]
fn a_bundle_can_be_observed_at_a_given_time_and_printed_as_json() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path());
    let out = nodewright()
        .args(["bridge", "--json", "--now", "2026-02-01T00:00:00Z", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stale = json["nodes"]["edge-1"]["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "LegacyStale")
        .unwrap()
        .clone();
    assert_eq!(stale["status"], "True", "a month later every heartbeat is stale");
}

#[test]
fn an_unreadable_bundle_is_a_one_line_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nodes.yaml"), "kind: Node\nmetadata: [unclosed\n").unwrap();
    let out = nodewright()
        .args(["bridge", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("nodes.yaml") && stderr.contains("line"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
