//! Every golden scenario in every mode keeps every invariant, except the runs of an incident
//! scenario in which the script still decides the workflows that caused the incident: those
//! violate exactly the invariants the scenario's `incident` names (the stale-state race breaks
//! `one-node-upgrading` and `uptodate-replica-kept` as it did at the site). The legacy runs are
//! checked in `golden.rs`, which runs every scenario in legacy mode for its snapshots: this file
//! runs the others, so that no run is made twice.
//!
//! The scenarios are read from `golden/scenarios/` (one added later is covered without a change
//! here), and the modes from what this version of Nodewright has: `shadow` for every workflow with
//! shadow decisions, `operator` for every workflow with a controller, one workflow at a time. A
//! combination that has nothing to do (migration in operator mode in a scenario without a
//! migration) still runs and must still hold. The runs are spread over the machine's cores.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nodewright_api::WorkflowMode;
use nodewright_legacy_sim::run::{RunConfig, Scenario};
use nodewright_parity::Workflow;
use nodewright_sim_harness::{invariants, parity};

/// The workflows not in `legacy` mode in one run, with their modes.
type Modes = Vec<(Workflow, WorkflowMode)>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenarios() -> Vec<(String, Scenario)> {
    let dir = repo().join("golden/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
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

/// Every mode this version supports, one workflow at a time. The legacy runs (no workflow taken
/// over) are checked by `golden.rs`, which makes them anyway.
fn every_mode() -> Vec<Modes> {
    let mut modes = Vec::new();
    // Bootstrap's modes run only over the scenarios that bootstrap a site (tests/bootstrap.rs),
    // and the bond flip's only over the scenarios that flip a bond
    // (`the_bond_scenarios_keep_the_invariants_with_the_bond_flip_in_shadow`), not over every
    // scenario.
    for w in Workflow::ALL
        .into_iter()
        .filter(|w| !matches!(w, Workflow::Bootstrap | Workflow::BondFlip))
    {
        if w.has_shadow() {
            modes.push(vec![(w, WorkflowMode::Shadow)]);
        }
        if w.has_operator() {
            modes.push(vec![(w, WorkflowMode::Operator)]);
        }
    }
    modes
}

fn label(modes: &[(Workflow, WorkflowMode)]) -> String {
    if modes.is_empty() {
        return "legacy".into();
    }
    modes
        .iter()
        .map(|(w, m)| format!("{w}={}", m.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn incident_scenarios_name_known_invariants_and_workflows() {
    let known: BTreeSet<&str> = invariants::names().collect();
    let mut incidents = 0;
    for (name, scenario) in scenarios() {
        let Some(incident) = &scenario.incident else {
            continue;
        };
        incidents += 1;
        assert!(
            !incident.violates.is_empty(),
            "{name}: an incident that violates nothing"
        );
        for v in &incident.violates {
            assert!(
                known.contains(v.as_str()),
                "{name}: no invariant named {v} ({known:?})"
            );
        }
        for w in &incident.script_decides {
            assert!(Workflow::from_key(w).is_some(), "{name}: no workflow named {w}");
        }
    }
    assert!(incidents >= 1, "the stale-state race is an incident scenario");
    let race = scenarios()
        .into_iter()
        .find(|(n, _)| n == "stale-state-race")
        .unwrap()
        .1
        .incident
        .unwrap();
    assert!(race.violates.contains(&invariants::ONE_NODE_UPGRADING.to_owned()));
}

#[test]
fn every_scenario_in_every_mode_keeps_the_invariants_or_names_its_incidents() {
    let jobs: Vec<(String, Scenario, Modes)> = selected(scenarios())
        .into_iter()
        .flat_map(|(name, scenario)| {
            every_mode()
                .into_iter()
                .map(move |modes| (name.clone(), scenario.clone(), modes))
        })
        .collect();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    let timings = Mutex::new(Vec::<(Duration, String)>::new());
    // One run per core: on two cores, 65 runs took 390 s two at a time on an otherwise quiet
    // machine; four at a time was not measured faster (408 s, with other tests sharing the cores).
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(jobs.len());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, scenario, modes)) = jobs.get(i) else {
                        return;
                    };
                    let label = label(modes);
                    let config = RunConfig {
                        script: repo().join("legacy/vx-rail-node-init.sh"),
                        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
                        work_dir: std::env::temp_dir()
                            .join(format!("vxr-invariants-{}-{i}", std::process::id())),
                        stuck_after: Duration::from_secs(60),
                    };
                    let t = Instant::now();
                    let outcome = parity::run(scenario.clone(), modes, 0, &config);
                    timings
                        .lock()
                        .unwrap()
                        .push((t.elapsed(), format!("{name} {label}")));
                    let problem = match outcome {
                        Err(e) => Some(format!("{name} {label}: the run failed: {e}")),
                        Ok(run) => invariants::as_expected(&run.invariants(), scenario, modes)
                            .err()
                            .map(|e| format!("{name} {label}: {e}")),
                    };
                    if let Some(p) = problem {
                        failures.lock().unwrap().push(p);
                    }
                }
            });
        }
    });
    let mut timings = timings.into_inner().unwrap();
    timings.sort();
    let slowest: Vec<String> = timings
        .iter()
        .rev()
        .take(5)
        .map(|(d, l)| format!("{l} {:.1}s", d.as_secs_f64()))
        .collect();
    eprintln!(
        "{} runs on {workers} threads in {:.1}s; slowest: {}",
        jobs.len(),
        started.elapsed().as_secs_f64(),
        slowest.join(", ")
    );
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The bond flip in `shadow`, over the scenarios that exercise it only (the others have no
/// `bond-flip.<node>` request, so a run of them would compare nothing and only add to the
/// matrix's time): `bond-mode-flip` (an active-slave and a mode flip requested of the script) and
/// `bond-failover` (carrier failover and a cable pull, which must not read as a flip). Every
/// invariant holds and the operator's decisions agree with the script's: no divergence.
#[test]
fn the_bond_scenarios_keep_the_invariants_with_the_bond_flip_in_shadow() {
    let modes = [(Workflow::BondFlip, WorkflowMode::Shadow)];
    for name in ["bond-mode-flip", "bond-failover"] {
        let (_, scenario) = scenarios().into_iter().find(|(n, _)| n == name).unwrap();
        let config = RunConfig {
            script: repo().join("legacy/vx-rail-node-init.sh"),
            sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
            work_dir: std::env::temp_dir().join(format!("vxr-invariants-bond-{name}-{}", std::process::id())),
            stuck_after: Duration::from_secs(60),
        };
        let run = parity::run(scenario.clone(), &modes, 0, &config).unwrap();
        invariants::as_expected(&run.invariants(), &scenario, &modes)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", run.report));
        assert_eq!(
            run.divergences
                .iter()
                .filter(|(_, d)| d.workflow == Workflow::BondFlip)
                .count(),
            0,
            "{name}: {:#?}",
            run.divergences
        );
        if name == "bond-mode-flip" {
            // In shadow the script still decides: it applied both requests and answered them.
            let applied = run
                .steps
                .iter()
                .filter(|s| {
                    matches!(&s.action, invariants::Action::Command { argv, .. }
                        if argv.iter().any(|a| a == "802.3ad") && argv.iter().any(|a| a == "mode"))
                })
                .count();
            assert_eq!(applied, 1, "the script's mode change ran once");
            assert!(
                run.script_writes.contains("state=applied;id=flip-2"),
                "{}",
                run.script_writes
            );
        }
    }
}

/// A real operator run of the stale-state race, replayed as if the plan had been wrong: the
/// agent's first storage-stack change on edge-2 put right after its first one on edge-1, while
/// edge-1 is still mid-upgrade (the world as it was then). The run as made keeps every
/// invariant; the replay breaks `one-node-upgrading`, naming both nodes.
#[test]
fn an_operator_plan_replayed_with_the_second_node_started_early_is_caught() {
    let (_, scenario) = scenarios()
        .into_iter()
        .find(|(n, _)| n == "stale-state-race")
        .unwrap();
    let config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!("vxr-invariants-replay-{}", std::process::id())),
        stuck_after: Duration::from_secs(60),
    };
    let modes = [(Workflow::StorageUpgrade, WorkflowMode::Operator)];
    let run = parity::run(scenario, &modes, 0, &config).unwrap();
    assert_eq!(run.invariants().violations, [], "{}", run.report);

    let stack_change = |node: &str| {
        run.steps.iter().position(|s| {
            s.actor == invariants::Actor::Agent(node.into())
                && matches!(&s.action, invariants::Action::Command { argv, .. }
                    if argv.first().map(String::as_str) == Some("systemctl")
                        && argv.get(1).map(String::as_str) == Some("stop"))
        })
    };
    let first_1 = stack_change("edge-1").expect("edge-1's agent stopped its satellite");
    let first_2 = stack_change("edge-2").expect("edge-2's agent stopped its satellite");
    assert!(first_1 < first_2, "edge-1 goes first");
    let mut early = run.steps[first_2].clone();
    early.tick = run.steps[first_1].tick;
    early.facts = run.steps[first_1].facts.clone();
    let mut replayed = run.steps.clone();
    replayed.insert(first_1 + 1, early);
    let report = invariants::check(&replayed);
    assert_eq!(report.violated(), [invariants::ONE_NODE_UPGRADING], "{report}");
    let v = &report.violations[0];
    assert!(
        v.message.contains("edge-1 (")
            && v.message.contains("edge-2 (")
            && v.message.contains("edge-2's agent"),
        "{v}"
    );
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
