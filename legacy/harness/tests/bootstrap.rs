//! Bootstrap in its three modes, over the scenarios that bootstrap a site (`bootstrap-single-node`,
//! `bootstrap-three-nodes`: the site built from nothing, one node or three joining one by one) and
//! the one in which two nodes join in the same loop (`migration-single-to-multi`, VXR-141). The
//! invariants matrix (`invariants.rs`) leaves bootstrap's modes out: in the other scenarios the
//! site exists before the run and bootstrap has only its steady part to do, which these runs
//! cover too. Legacy mode is `golden.rs`'s. Seven runs (two of them legacy, to compare the end
//! with), 35–60 s on two cores shared with other builds (22 s of CPU).
//!
//! - shadow: 0 violated, no divergence on the bootstrap scenarios; the lost member row of two
//!   nodes joining in one loop is one divergence naming the row;
//! - operator: 0 violated, the scripts make no bootstrap write (no cluster state created, no member
//!   row or network plan written, no role label), and the site ends as the legacy run ends: the
//!   same members with the same roles and labels, every node's satellite online and its storage
//!   pool created, every node's last loop ending ready.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodewright_api::WorkflowMode;
use nodewright_legacy_sim::run::{RunConfig, Scenario};
use nodewright_parity::Workflow;
use nodewright_sim_harness::parity::{self, ParityRun};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(name: &str) -> Scenario {
    let text = std::fs::read_to_string(repo().join(format!("golden/scenarios/{name}.yaml"))).unwrap();
    Scenario::from_yaml(&text).unwrap()
}

fn run(name: &str, mode: WorkflowMode) -> ParityRun {
    let config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!(
            "vxr-bootstrap-{}-{name}-{}",
            std::process::id(),
            mode.as_str()
        )),
        stuck_after: Duration::from_secs(30),
    };
    let run = parity::run(load(name), &[(Workflow::Bootstrap, mode)], 0, &config)
        .unwrap_or_else(|e| panic!("{name} bootstrap={}: {e}", mode.as_str()));
    let report = run.invariants();
    assert_eq!(
        report.violations,
        [],
        "{name} bootstrap={}: {report}\n{}",
        mode.as_str(),
        run.report
    );
    run
}

/// The members (node, address, role: not the join times, which differ by the handshake's loops)
/// and the role labels, as the site ends.
fn members_and_labels(run: &ParityRun) -> Vec<String> {
    run.site_state
        .lines()
        .map(|l| {
            if l.starts_with("cluster: ") {
                // Without `created`, which differs by the same loops.
                l.split(";created=").next().unwrap().to_owned()
            } else if l.matches(',').count() == 3 {
                // A member row: without `joined`.
                l.rsplit_once(',').unwrap().0.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect()
}

fn assert_healthy(name: &str, run: &ParityRun, nodes: &[&str]) {
    for node in nodes {
        let log = &run.trace.logs[*node];
        let last = log.rsplit("### tick ").next().unwrap();
        assert!(
            last.contains("msg=\"iteration finished\" outcome=ok"),
            "{name}: {node}'s last loop did not end ok:\n{last}"
        );
        assert!(
            last.contains("component=report") || !last.contains("state=degraded"),
            "{name}: {node} ends degraded"
        );
        assert!(
            run.host_state.contains(&format!("┊ {node} ┊ SATELLITE ┊")),
            "{name}: {node}'s satellite is not registered:\n{}",
            run.host_state
        );
    }
    let primary = &run.trace.logs[nodes[0]];
    for node in nodes {
        assert!(
            primary.contains(&format!("msg=\"creating storage pool\" node={node} ")),
            "{name}: no storage pool was created for {node}"
        );
    }
}

#[test]
fn the_bootstrap_scenarios_shadowed_keep_every_invariant_and_diverge_nowhere() {
    for name in ["bootstrap-single-node", "bootstrap-three-nodes"] {
        let shadow = run(name, WorkflowMode::Shadow);
        assert_eq!(shadow.divergences, [], "{name}: {}", shadow.report);
    }
}

#[test]
fn two_nodes_joining_in_one_loop_lose_a_member_row_which_the_shadow_reports() {
    let shadow = run("migration-single-to-multi", WorkflowMode::Shadow);
    assert_eq!(shadow.divergences.len(), 1, "{}", shadow.report);
    let (tick, d) = &shadow.divergences[0];
    assert_eq!(*tick, 3, "the loop in which edge-2 and edge-3 both joined");
    assert_eq!(
        d.script,
        "left the member list as edge-1(primary),edge-3(joining)"
    );
    assert_eq!(
        d.operator,
        "would write: edge-2 joins as joining (10.100.0.12/24)"
    );
}

#[test]
fn the_bootstrap_scenarios_owned_by_the_operator_end_as_the_legacy_runs_with_no_bootstrap_write_by_a_script()
{
    for (name, nodes) in [
        ("bootstrap-single-node", &["edge-1"][..]),
        ("bootstrap-three-nodes", &["edge-1", "edge-2", "edge-3"][..]),
    ] {
        let legacy = parity::run(
            load(name),
            &[],
            0,
            &RunConfig {
                script: repo().join("legacy/vx-rail-node-init.sh"),
                sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
                work_dir: std::env::temp_dir()
                    .join(format!("vxr-bootstrap-{}-{name}-legacy", std::process::id())),
                stuck_after: Duration::from_secs(30),
            },
        )
        .unwrap();
        let owned = run(name, WorkflowMode::Operator);
        assert_eq!(
            members_and_labels(&owned),
            members_and_labels(&legacy),
            "{name}: {}",
            owned.report
        );
        assert_healthy(name, &owned, nodes);
        let writes = owned.script_writes;
        for bootstrap_write in [
            "create configmap vx-rail-cluster-state",
            "\"members\"",
            "network-plan",
            "vx-rail.io/role=",
            "create configmap vx-rail-node-",
        ] {
            assert!(
                !writes.contains(bootstrap_write),
                "{name}: a script wrote `{bootstrap_write}`:\n{writes}"
            );
        }
        assert!(
            owned
                .report
                .contains("operator: site state created with edge-1 as primary -> 0"),
            "{}",
            owned.report
        );
    }
}
