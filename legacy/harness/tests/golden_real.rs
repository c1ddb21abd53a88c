//! The side-by-side deployment users run: the legacy script's `kubectl` is the real kubectl
//! against the real API server (from `testenv/`). For these scenarios the run must be the same as
//! with the in-memory cluster — same host commands, same Kubernetes writes, same logs.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodewright_legacy_sim::cluster::Cluster;
use nodewright_legacy_sim::run::{RealCluster, RunConfig, Scenario, Trace, run, world_for};
use nodewright_testenv::{ControlPlane, Options};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(name: &str) -> Scenario {
    let path = repo().join(format!("golden/scenarios/{name}.yaml"));
    Scenario::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn config(name: &str, backend: &str) -> RunConfig {
    RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!("vxr-real-{}-{name}-{backend}", std::process::id())),
        stuck_after: Duration::from_secs(60),
    }
}

/// The script logs its root directory, which lies in the run's own scratch directory (one per
/// back end): the logs are compared with it replaced by `$WORK`, as the golden snapshots show it.
fn without_work_dir(mut trace: Trace, config: &RunConfig) -> Trace {
    let work = config.work_dir.display().to_string();
    for log in trace.logs.values_mut() {
        *log = log.replace(&work, "$WORK");
    }
    trace
}

fn hermetic(name: &str, scenario: &Scenario) -> Trace {
    let config = config(name, "memory");
    let trace = run(
        scenario,
        &mut world_for(scenario).unwrap(),
        &mut Cluster::new(),
        &config,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    without_work_dir(trace, &config)
}

fn real(name: &str, scenario: &Scenario) -> Trace {
    // Nodes are cluster-scoped: each scenario gets a control plane of its own.
    let control_plane = ControlPlane::start(Options::default()).unwrap();
    let mut cluster = RealCluster {
        kubectl: control_plane.kubectl().get_program().into(),
        kubeconfig: control_plane.kubeconfig().to_path_buf(),
    };
    let config = config(name, "real");
    let trace = run(scenario, &mut world_for(scenario).unwrap(), &mut cluster, &config).unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    without_work_dir(trace, &config)
}

fn assert_same_run(name: &str) {
    let scenario = load(name);
    let memory = hermetic(name, &scenario);
    let api_server = real(name, &scenario);
    assert_eq!(
        api_server.kube_writes(),
        memory.kube_writes(),
        "{name}: Kubernetes writes differ"
    );
    assert_eq!(
        api_server.host_commands(),
        memory.host_commands(),
        "{name}: host commands differ"
    );
    assert_eq!(api_server.logs, memory.logs, "{name}: logs differ");
}

#[test]
fn three_node_bootstrap_runs_the_same_against_the_real_api_server() {
    assert_same_run("bootstrap-three-nodes");
}

#[test]
fn the_stale_state_race_runs_the_same_against_the_real_api_server() {
    assert_same_run("stale-state-race");
}
