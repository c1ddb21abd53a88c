//! The scenario runner drives a script on every node tick by tick, applies the scenario's events
//! between ticks, and records commands, Kubernetes writes and logs in a deterministic trace.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodewright_legacy_sim::run::{Cluster, Host, RunConfig, Scenario, run};
use nodewright_legacy_sim::sched::Reply;

#[derive(Default)]
struct FakeHost {
    now: i64,
    faults: Vec<String>,
}

impl Host for FakeHost {
    fn exec(&mut self, node: &str, argv: &[String]) -> Reply {
        match argv[0].as_str() {
            "date" => Reply {
                stdout: format!("T{}\n", self.now),
                ..Reply::default()
            },
            "ip" if self.faults.iter().any(|f| f.contains(node)) => Reply {
                stderr: "link down\n".into(),
                code: 1,
                ..Reply::default()
            },
            _ => Reply {
                stdout: format!("{} on {node}\n", argv.join(" ")),
                ..Reply::default()
            },
        }
    }
    fn render(&self, roots: &Path) -> std::io::Result<()> {
        for node in ["a", "b"] {
            let dir = roots.join(node).join("proc");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("uptime"), format!("{}.00 0.00\n", self.now))?;
        }
        Ok(())
    }
    fn inject(&mut self, fault: &serde_json::Value) -> Result<(), String> {
        self.faults.push(fault.to_string());
        Ok(())
    }
    fn advance(&mut self, seconds: u64) {
        self.now += seconds as i64;
    }
    fn now(&self) -> i64 {
        self.now
    }
}

#[derive(Default)]
struct FakeCluster {
    calls: Vec<String>,
}

impl Cluster for FakeCluster {
    fn kubectl(&mut self, argv: &[String], _cwd: &str, now: i64) -> Reply {
        self.calls.push(format!("{now} {}", argv.join(" ")));
        Reply {
            stdout: "node/x annotated\n".into(),
            ..Reply::default()
        }
    }
    fn add_node(&mut self, name: &str) -> Result<(), String> {
        self.calls.push(format!("add node {name}"));
        Ok(())
    }
}

const SCRIPT: &str = r#"#!/usr/bin/env bash
set -eu
[[ $1 == once ]]
echo "$NODE_NAME at $(date) format=$VXR_LOG_FORMAT uptime=$(cut -d' ' -f1 "$VXR_ROOT/proc/uptime")"
grep ROLE "$VXR_ROOT/etc/vx-rail/node.conf"
if ! out=$(ip -d link show 2>&1); then echo "ip failed: $out"; fi
kubectl -n kube-system annotate node "$NODE_NAME" --overwrite vx-rail.io/last-run="$(date)" >/dev/null
"#;

const SCENARIO: &str = r#"
description: two nodes, a fault on b before tick 1, b lost at tick 2, an operator action at tick 1
ticks: 3
interval: 30
nodes:
  - {name: a, host: {address: 10.0.0.1}, config: {ROLE: primary}}
  - {name: b, host: {address: 10.0.0.2}, log_format: legacy, config: {ROLE: secondary}}
events:
  - {tick: 1, fault: {link_down: {node: b, nic: eno1}}}
  - {tick: 1, kubectl: [-n, kube-system, patch, configmap, state, --type, merge, -p, '{"data":{"x":"1"}}']}
  - {tick: 2, lose: b}
"#;

fn config(name: &str) -> RunConfig {
    let work = std::env::temp_dir().join(format!("vxr-run-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let script: PathBuf = work.with_extension("sh");
    std::fs::write(&script, SCRIPT).unwrap();
    RunConfig {
        script,
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: work,
        stuck_after: Duration::from_secs(20),
    }
}

fn run_once(name: &str) -> (nodewright_legacy_sim::run::Trace, FakeCluster) {
    let scenario = Scenario::from_yaml(SCENARIO).unwrap();
    let config = config(name);
    let mut host = FakeHost {
        now: 1_764_000_000,
        ..FakeHost::default()
    };
    let mut cluster = FakeCluster::default();
    let trace = run(&scenario, &mut host, &mut cluster, &config).unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    let _ = std::fs::remove_file(&config.script);
    (trace, cluster)
}

#[test]
fn every_node_runs_once_per_tick_with_its_own_root_and_log_format() {
    let (trace, _) = run_once("logs");
    let a = &trace.logs["a"];
    assert!(
        a.starts_with("### tick 0 (exit 0)\na at T1764000000 format=kv uptime=1764000000.00\nROLE=primary\n"),
        "{a}"
    );
    assert!(
        a.contains("### tick 2 (exit 0)\na at T1764000060"),
        "the clock advances by the interval: {a}"
    );
    let b = &trace.logs["b"];
    assert!(b.contains("format=legacy"), "{b}");
    assert!(
        b.contains("ip failed: link down"),
        "the fault reached b's host: {b}"
    );
    assert!(!b.contains("### tick 2"), "a lost node does not run: {b}");
}

#[test]
fn host_commands_and_kube_writes_are_traced_in_order() {
    let (trace, cluster) = run_once("trace");
    let hosts = trace.host_commands();
    let first: Vec<_> = hosts.lines().take(2).collect();
    assert_eq!(
        first,
        ["  0 a $ ip -d link show -> 0", "  0 b $ ip -d link show -> 0"],
        "date calls are left out"
    );
    assert!(hosts.contains("  1 b $ ip -d link show -> 1"), "{hosts}");
    let writes = trace.kube_writes();
    assert!(
        writes.starts_with("  0 a $ kubectl -n kube-system annotate node a --overwrite vx-rail.io/last-run=T1764000000 -> 0\n"),
        "{writes}"
    );
    assert!(writes.contains("  1 operator $ kubectl -n kube-system patch configmap state --type merge -p '{\"data\":{\"x\":\"1\"}}' -> 0"), "{writes}");
    assert_eq!(
        &cluster.calls[..2],
        ["add node a", "add node b"],
        "nodes register before their first tick"
    );
    assert_eq!(
        cluster.calls.len(),
        8,
        "two registrations; a and b at ticks 0 and 1, a at tick 2, and the operator: {:?}",
        cluster.calls
    );
}

#[test]
fn the_same_scenario_gives_the_same_trace_every_time() {
    let (first, _) = run_once("det1");
    let (second, _) = run_once("det2");
    assert_eq!(first.host_commands(), second.host_commands());
    assert_eq!(first.kube_writes(), second.kube_writes());
    assert_eq!(first.logs, second.logs);
}

/// A FakeCluster that records what the runner says about the legacy pods.
#[derive(Default)]
struct PodCluster {
    inner: FakeCluster,
    pods: Vec<String>,
}

impl Cluster for PodCluster {
    fn kubectl(&mut self, argv: &[String], cwd: &str, now: i64) -> Reply {
        self.inner.kubectl(argv, cwd, now)
    }
    fn add_node(&mut self, name: &str) -> Result<(), String> {
        self.inner.add_node(name)
    }
    fn script_pod(&mut self, node: &str, present: bool) {
        self.pods.push(format!("{node}={present}"));
    }
}

#[test]
fn a_hung_command_blocks_its_loop_across_ticks_and_the_loop_goes_on_from_its_old_state() {
    // a's `ip` hangs for 60 s from tick 1: no new loop on a in ticks 2 and 3; the loop of tick 1
    // ends in tick 3 with what it had read in tick 1 (its first `date`), and a loop starts on a
    // again in tick 4. b runs every tick meanwhile.
    let scenario = Scenario::from_yaml(
        r#"
description: a hang on a
ticks: 5
interval: 30
nodes:
  - {name: a, host: {address: 10.0.0.1}, config: {ROLE: primary}}
  - {name: b, host: {address: 10.0.0.2}, config: {ROLE: secondary}}
events:
  - {tick: 1, hang: {node: a, command: [ip, -d], seconds: 60}}
"#,
    )
    .unwrap();
    let config = config("hang");
    let mut host = FakeHost {
        now: 1_764_000_000,
        ..FakeHost::default()
    };
    let mut cluster = PodCluster::default();
    let trace = run(&scenario, &mut host, &mut cluster, &config).unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    let _ = std::fs::remove_file(&config.script);
    let a = &trace.logs["a"];
    let headers: Vec<&str> = a.lines().filter(|l| l.starts_with("### ")).collect();
    assert_eq!(
        headers,
        [
            "### tick 0 (exit 0)",
            "### tick 3 (exit 0, a loop started in tick 1)",
            "### tick 4 (exit 0)"
        ],
        "{a}"
    );
    assert!(
        a.contains("a at T1764000030"),
        "the blocked loop's own start: {a}"
    );
    let b = &trace.logs["b"];
    assert_eq!(b.matches("### tick ").count(), 5, "{b}");
    // The hung command took effect when it returned, in tick 3.
    assert!(
        trace.host_commands().contains("  3 a $ ip -d link show -> 0"),
        "{}",
        trace.host_commands()
    );
    // Both nodes' pods exist every tick (none is lost).
    assert_eq!(cluster.pods.len(), 10);
    assert!(cluster.pods.iter().all(|p| p.ends_with("=true")));
}

#[test]
fn a_lost_node_kills_its_blocked_loop_and_its_pod_is_gone() {
    let scenario = Scenario::from_yaml(
        r#"
description: a hang on a, then a lost
ticks: 4
interval: 30
nodes:
  - {name: a, host: {address: 10.0.0.1}, config: {ROLE: primary}}
  - {name: b, host: {address: 10.0.0.2}, config: {ROLE: secondary}}
events:
  - {tick: 1, hang: {node: a, command: [ip], seconds: 600}}
  - {tick: 2, lose: a}
"#,
    )
    .unwrap();
    let config = config("hang-lost");
    let mut host = FakeHost {
        now: 1_764_000_000,
        ..FakeHost::default()
    };
    let mut cluster = PodCluster::default();
    let trace = run(&scenario, &mut host, &mut cluster, &config).unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    let _ = std::fs::remove_file(&config.script);
    assert!(
        trace.logs["a"].contains("### tick 2 (lost while blocked)"),
        "{}",
        trace.logs["a"]
    );
    let a_ip: Vec<String> = trace
        .host_commands()
        .lines()
        .filter(|l| l.contains(" a $ ip"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        a_ip,
        ["  0 a $ ip -d link show -> 0"],
        "the hung command never ran"
    );
    assert_eq!(
        &cluster.pods[4..],
        ["a=false", "b=true", "a=false", "b=true"],
        "a's pod is gone from the tick it is lost"
    );
}
