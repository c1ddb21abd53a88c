//! Golden runs: every scenario in `golden/scenarios/` runs the legacy script on the simulated
//! world with the in-memory cluster, twice (at the same time), and must give byte-identical traces both times and
//! match the reviewed snapshots in `golden/snapshots/`: every host command per node in order,
//! every Kubernetes write, every node's log, and the cluster's end state (every Node and
//! ConfigMap, as a `kubectl get -o yaml` list — the bridge's golden observations start from it).
//!
//! The first run of each is also checked against the invariants: it keeps them all, or, for an
//! incident scenario, violates exactly those its `incident` names.
//!
//! Regenerating the snapshots is an explicit step: `scripts/regenerate` (then review the diff).

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodewright_legacy_sim::cluster::Cluster;
use nodewright_legacy_sim::run::{RunConfig, Scenario, Trace, run, world_for};
use nodewright_sim_harness::invariants;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenarios() -> Vec<(String, Scenario)> {
    let dir = repo().join("golden/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let scenario = Scenario::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, scenario)
        })
        .collect()
}

fn run_hermetic(name: &str, scenario: &Scenario, attempt: u32) -> (Trace, String) {
    let config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!("vxr-golden-{}-{name}-{attempt}", std::process::id())),
        stuck_after: Duration::from_secs(30),
    };
    let mut world = world_for(scenario).unwrap();
    let mut cluster = Cluster::new();
    let mut trace =
        run(scenario, &mut world, &mut cluster, &config).unwrap_or_else(|e| panic!("{name}: {e}"));
    let _ = std::fs::remove_dir_all(&config.work_dir);
    // The script logs its root directory, which lies in this run's scratch directory.
    let work = config.work_dir.display().to_string();
    for log in trace.logs.values_mut() {
        *log = log.replace(&work, "$WORK");
    }
    (trace, end_state(&cluster))
}

/// Every Node and ConfigMap at the end of the run, as `kubectl get nodes,configmaps -A -o yaml`
/// prints them (the fields the in-memory cluster keeps).
fn end_state(cluster: &Cluster) -> String {
    let mut items: Vec<serde_json::Value> = cluster.nodes().map(|n| n.to_json()).collect();
    items.extend(cluster.config_maps().map(|c| c.to_json()));
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    serde_yaml_ng::to_string(&list).unwrap()
}

/// The log part of a snapshot: every node's log, one after the other.
fn logs(trace: &Trace) -> String {
    trace
        .logs
        .iter()
        .map(|(node, log)| format!("===== {node} =====\n{log}"))
        .collect()
}

#[test]
fn the_scenarios_cover_every_workflow() {
    let scenarios = scenarios();
    assert!(
        scenarios.len() >= 12,
        "at least 12 scenarios, found {}",
        scenarios.len()
    );
}

#[test]
fn every_scenario_matches_its_golden_trace_and_is_deterministic() {
    let scenarios = selected(scenarios());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo().join("golden/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for (name, scenario) in &scenarios {
            // The two runs at once, one per core: they share nothing but the script.
            let ((first, end), (second, end_again)) = std::thread::scope(|s| {
                let again = s.spawn(|| run_hermetic(name, scenario, 2));
                (run_hermetic(name, scenario, 1), again.join().unwrap())
            });
            assert_eq!(first, second, "{name}: two runs of the same scenario differ");
            assert_eq!(end, end_again, "{name}: two runs end in different cluster states");
            // The legacy run keeps every invariant, or violates exactly its incident's
            // (`tests/invariants.rs` checks the runs in the other modes).
            let report = invariants::check(&invariants::steps(&first, Vec::new()));
            if let Err(e) = invariants::as_expected(&report, scenario, &[]) {
                panic!("{name} (legacy): {e}");
            }
            insta::with_settings!({ description => scenario.description.clone() }, {
                insta::assert_snapshot!(format!("{name}@host-commands"), first.host_commands());
                insta::assert_snapshot!(format!("{name}@kube-writes"), first.kube_writes());
                insta::assert_snapshot!(format!("{name}@logs"), logs(&first));
                insta::assert_snapshot!(format!("{name}@end-state"), end);
            });
        }
    });
}

/// The scenarios named in `VXR_GOLDEN_SCENARIOS` (comma-separated), or every one when it is unset:
/// regenerating or checking one scenario's runs without making every other's.
fn selected(all: Vec<(String, Scenario)>) -> Vec<(String, Scenario)> {
    let Ok(names) = std::env::var("VXR_GOLDEN_SCENARIOS") else {
        return all;
    };
    let wanted: Vec<&str> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    for w in &wanted {
        assert!(
            all.iter().any(|(n, _)| n == w),
            "VXR_GOLDEN_SCENARIOS names {w}, which is no scenario"
        );
    }
    all.into_iter()
        .filter(|(n, _)| wanted.contains(&n.as_str()))
        .collect()
}
