//! `vxr-sim run`, as a person runs it: the trace, each violation named, one summary line last,
//! and the exit status.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vxr_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vxr-sim"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_legacy_stale_state_race_names_its_violations_and_exits_one() {
    let out = vxr_sim(&["run", "golden/scenarios/stale-state-race.yaml"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("##### host commands\n"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"invariants: 5 checked, 2 violated"));
    let violations: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("violated "))
        .collect();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(
        violations[0]
            .starts_with("violated one-node-upgrading: tick 5: edge-1 (PREFLIGHT) and edge-2 (PREFLIGHT)")
    );
    assert!(
        violations[1].starts_with(
            "violated uptodate-replica-kept: tick 5: resource pvc-1 has no UpToDate replica left"
        )
    );
}

#[test]
fn a_run_with_a_workflow_taken_over_prints_nodewrights_report_and_exits_zero_when_all_hold() {
    let out = vxr_sim(&[
        "run",
        "golden/scenarios/taints-during-resync.yaml",
        "--mode",
        "taints=operator",
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("##### nodewright (taints=operator)\n"), "{text}");
    assert!(text.contains("operator edge-"), "Nodewright never acted:\n{text}");
    assert_eq!(text.lines().last(), Some("invariants: 5 checked, 0 violated"));
    assert!(!text.contains("violated "), "{text}");
}

#[test]
fn the_stale_state_race_with_the_storage_upgrade_on_the_operator_completes_node_by_node_with_nothing_violated()
 {
    let out = vxr_sim(&[
        "run",
        "golden/scenarios/stale-state-race.yaml",
        "--mode",
        "storage-upgrade=operator",
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nodewright = text
        .split("##### nodewright (storage-upgrade=operator)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no report:\n{text}"));
    // Node by node: the first state edge-2 enters is PREFLIGHT, once edge-1 handed over.
    let first = nodewright
        .lines()
        .find(|l| l.contains(" enters ") && l.contains(" on edge-2"))
        .unwrap_or_default();
    assert!(
        first.contains("enters PREFLIGHT on edge-2: edge-1 done; handing over"),
        "not node by node:\n{nodewright}"
    );
    assert!(
        nodewright.contains("enters COMPLETED: every node runs 9.2.14"),
        "{nodewright}"
    );
    assert_eq!(text.lines().last(), Some("invariants: 5 checked, 0 violated"));
}

#[test]
fn a_wrong_command_line_exits_two_with_the_usage() {
    let out = vxr_sim(&[
        "run",
        "golden/scenarios/stale-state-race.yaml",
        "--mode",
        "bond-flip=operator",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no operator controller"), "{err}");
    assert!(
        err.contains("Exit status: 0 when every invariant holds, 1 when one is violated"),
        "{err}"
    );
    let out = vxr_sim(&["run", "golden/scenarios/no-such-scenario.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-scenario.yaml"));
}
