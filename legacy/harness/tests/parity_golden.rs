//! Golden parity runs: legacy scenarios run again with a workflow in `shadow` and in `operator`
//! mode. Between the scripts' loops the parity layer looks at the cluster the way the operator
//! does (through the bridge's index) and, in `shadow`, records every divergence from what the
//! scripts did; in `operator`, it acts itself (once every live script acknowledged the takeover)
//! and the scripts skip the workflow.
//!
//! Each run pins `<scenario>@parity-<workflow>-<mode>.snap` in `golden/snapshots/`: the
//! divergences and the operator's actions tick by tick, and the Nodes' taints and labels at the
//! end. Operator mode must end where the legacy run ends.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodewright_api::WorkflowMode;
use nodewright_legacy_sim::run::{Action, Event, RunConfig, Scenario};
use nodewright_parity::{Workflow, shadow};
use nodewright_sim_harness::parity::{self, ParityRun};
use nodewright_sim_harness::world::Rule;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenario(name: &str) -> Scenario {
    let path = repo().join(format!("golden/scenarios/{name}.yaml"));
    Scenario::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Runs in this process so far: tests run in parallel, and each run needs a scratch directory of
/// its own.
static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Runs `name` with `modes` projected from tick 0 (none: the legacy run).
fn run_parity(name: &str, modes: &[(Workflow, WorkflowMode)], label: &str) -> ParityRun {
    run_parity_from(name, modes, label, 0)
}

/// Like [`run_parity`], with the takeover projected before tick `from` instead of tick 0.
fn run_parity_from(name: &str, modes: &[(Workflow, WorkflowMode)], label: &str, from: u32) -> ParityRun {
    run_parity_of(name, scenario(name), modes, label, from)
}

/// Like [`run_parity_from`], on a scenario changed by the test (the harness: `parity::run`).
fn run_parity_of(
    name: &str,
    scenario: Scenario,
    modes: &[(Workflow, WorkflowMode)],
    label: &str,
    from: u32,
) -> ParityRun {
    run_parity_under(name, scenario, modes, label, from, Rule::Fence)
}

/// Like [`run_parity_of`], with the operator acting under `rule`.
fn run_parity_under(
    name: &str,
    scenario: Scenario,
    modes: &[(Workflow, WorkflowMode)],
    label: &str,
    from: u32,
    rule: Rule,
) -> ParityRun {
    let config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!(
            "vxr-parity-{}-{name}-{label}-{}",
            std::process::id(),
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )),
        stuck_after: Duration::from_secs(30),
    };
    parity::run_with_rule(scenario, modes, from, &config, rule)
        .unwrap_or_else(|e| panic!("{name} {label}: {e}"))
}

fn snapshot(name: &str, label: &str, run: &ParityRun) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo().join("golden/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(format!("{name}@parity-{label}"), run.report));
}

const SHADOW: WorkflowMode = WorkflowMode::Shadow;
const OPERATOR: WorkflowMode = WorkflowMode::Operator;

#[test]
fn taints_in_shadow_agree_with_the_script_through_a_resync_and_a_migration() {
    for name in [
        "taints-during-resync",
        "migration-single-to-multi",
        "bootstrap-three-nodes",
    ] {
        let run = run_parity(name, &[(Workflow::Taints, SHADOW)], "taints-shadow");
        assert!(
            run.divergences.is_empty(),
            "{name}: divergences on a happy path:\n{}",
            run.report
        );
        // In shadow the scripts still decide: they end where the legacy run ends.
        let legacy = run_parity(name, &[], "legacy");
        assert_eq!(
            run.end_taints, legacy.end_taints,
            "{name}: shadow changed the outcome"
        );
        if name == "taints-during-resync" {
            assert!(
                run.script_writes
                    .contains("vx-rail.io/storage-not-ready=resync:NoSchedule"),
                "{name}: in shadow the script no longer taints"
            );
        }
        snapshot(name, "taints-shadow", &run);
    }
}

#[test]
fn taints_in_operator_mode_end_where_the_legacy_run_ends_and_no_script_taints() {
    for name in ["taints-during-resync", "migration-single-to-multi"] {
        let legacy = run_parity(name, &[], "legacy");
        let owned = run_parity(name, &[(Workflow::Taints, OPERATOR)], "taints-operator");
        assert_eq!(
            owned.end_taints, legacy.end_taints,
            "{name}: operator mode ends elsewhere"
        );
        let script_taint_writes: Vec<&str> = owned
            .script_writes
            .lines()
            .filter(|l| l.contains("storage-not-ready") || l.contains("storage-ready="))
            .collect();
        assert!(
            script_taint_writes.is_empty(),
            "{name}: a script still manages taints:\n{}",
            script_taint_writes.join("\n")
        );
        assert!(
            owned.report.contains("operator "),
            "{name}: the operator never acted:\n{}",
            owned.report
        );
        snapshot(name, "taints-operator", &owned);
    }
}

#[test]
fn the_stale_state_race_in_shadow_shows_two_nodes_upgrading_against_the_operators_one() {
    let run = run_parity(
        "stale-state-race",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
    let race: Vec<&shadow::Divergence> = run
        .divergences
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d.workflow == Workflow::StorageUpgrade)
        .collect();
    assert_eq!(race.len(), 1, "{}", run.report);
    // The race shows when the second node leaves PENDING, not after both took their disks down.
    assert_eq!(
        race[0].script, "edge-2 moved the upgrade from PENDING to PREFLIGHT on edge-2",
        "{}",
        run.report
    );
    assert!(
        race[0]
            .operator
            .starts_with("would keep edge-2 in PENDING: the upgrade is in UP_RESOURCES on edge-1"),
        "{}",
        race[0].operator
    );
    snapshot("stale-state-race", "storage-upgrade-shadow", &run);
}

#[test]
fn a_storage_upgrade_that_goes_node_by_node_shows_no_divergence() {
    let run = run_parity(
        "storage-upgrade",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
    assert!(run.divergences.is_empty(), "{}", run.report);
    snapshot("storage-upgrade", "storage-upgrade-shadow", &run);
}

#[test]
fn a_migration_in_operator_mode_ends_where_the_legacy_migration_ends_and_no_script_runs_it() {
    let name = "migration-single-to-multi";
    let legacy = run_parity(name, &[], "legacy");
    let owned = run_parity(name, &[(Workflow::Migration, OPERATOR)], "migration-operator");
    assert!(
        owned.report.contains("migration enters COMPLETED"),
        "the operator's migration did not complete:\n{}",
        owned.report
    );
    assert_eq!(owned.site_state, legacy.site_state, "the site ends elsewhere");
    assert_eq!(owned.host_state, legacy.host_state, "the hosts end elsewhere");
    assert_eq!(owned.end_taints, legacy.end_taints);
    // The scripts never wrote the migration key nor ran LINSTOR mutations for it.
    let script_migration_writes: Vec<&str> = owned
        .script_writes
        .lines()
        .filter(|l| l.contains("\"migration\""))
        .collect();
    assert!(script_migration_writes.is_empty(), "{script_migration_writes:?}");
    snapshot(name, "migration-operator", &owned);
}

/// The operator's migration with the scripts' reports of the hosts silenced for its decisions
/// (no heartbeat blob, no `drbd-status`, no `linstor-nodes`): only the agents' facts tell it the
/// nodes are live, their network up, the satellites registered and the replicas UpToDate. One
/// run with the agents reading their hosts, one without; the migration scenario is the one whose
/// decisions read all of these.
#[test]
fn a_migration_in_operator_mode_completes_from_the_agents_facts_alone_and_not_without_them() {
    let name = "migration-single-to-multi";
    let run = |label: &str, agents: bool| {
        let config = RunConfig {
            script: repo().join("legacy/vx-rail-node-init.sh"),
            sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
            work_dir: std::env::temp_dir().join(format!(
                "vxr-parity-{}-{name}-{label}-{}",
                std::process::id(),
                RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )),
            stuck_after: Duration::from_secs(30),
        };
        let mut sensors = nodewright_sim_harness::drive::AgentFacts::new();
        sensors.scripts_silent = true;
        sensors.silent = !agents;
        parity::run_with_sensors(
            scenario(name),
            &[(Workflow::Migration, OPERATOR)],
            0,
            &config,
            Rule::Fence,
            sensors,
        )
        .unwrap_or_else(|e| panic!("{name} {label}: {e}"))
    };
    let with_agents = run("agents-only", true);
    assert!(
        with_agents.report.contains("migration enters COMPLETED"),
        "the migration did not complete from the agents' facts:\n{}",
        with_agents.report
    );
    let report = with_agents.invariants();
    assert!(report.violated().is_empty(), "violated: {:?}", report.violated());
    let deaf = run("no-sensors", false);
    assert!(
        !deaf.report.contains("migration enters COMPLETED") && deaf.report.contains("no-heartbeat"),
        "the migration progressed without any report of the hosts:\n{}",
        deaf.report
    );
}

#[test]
fn a_migration_in_operator_mode_on_rpm_hosts_ends_where_the_debian_migration_ends() {
    let name = "migration-single-to-multi";
    let mut on_rpm = scenario(name);
    for n in &mut on_rpm.nodes {
        n.host.os = nodewright_legacy_sim::host::OsFlavour::Rpm;
    }
    let debian = run_parity(name, &[(Workflow::Migration, OPERATOR)], "migration-operator");
    let rpm = run_parity_of(
        name,
        on_rpm,
        &[(Workflow::Migration, OPERATOR)],
        "migration-operator-rpm",
        0,
    );
    assert!(
        rpm.report.contains("migration enters COMPLETED"),
        "the operator's migration did not complete on RPM hosts:\n{}",
        rpm.report
    );
    assert!(
        rpm.report
            .contains("agents (--host-os auto): edge-1 rpm, edge-2 rpm, edge-3 rpm")
    );
    assert_eq!(rpm.site_state, debian.site_state, "the site ends elsewhere");
    assert_eq!(rpm.host_state, debian.host_state, "the hosts end elsewhere");
    assert_eq!(rpm.end_taints, debian.end_taints);
    // The same decisions and the same tasks: only the hosts' package tools differ.
    let body = |r: &str| {
        r.lines()
            .filter(|l| !l.starts_with("agents "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&rpm.report), body(&debian.report));
    snapshot(name, "migration-operator-rpm", &rpm);
}

#[test]
fn a_migration_in_operator_mode_that_loses_a_node_rolls_back_to_where_the_legacy_rollback_ends() {
    let name = "node-lost-during-migration";
    let legacy = run_parity(name, &[], "legacy");
    let owned = run_parity(name, &[(Workflow::Migration, OPERATOR)], "migration-operator");
    assert!(
        owned
            .report
            .contains("migration enters ROLLED_BACK: timed out after 60s in WAITING_FOR_RESYNC"),
        "the operator's migration did not roll back:\n{}",
        owned.report
    );
    assert_eq!(owned.site_state, legacy.site_state, "the site ends elsewhere");
    assert_eq!(owned.host_state, legacy.host_state, "the hosts end elsewhere");
    snapshot(name, "migration-operator", &owned);
}

#[test]
fn a_migration_in_shadow_agrees_with_the_script_at_every_gate_it_passes() {
    for name in ["migration-single-to-multi", "node-lost-during-migration"] {
        let run = run_parity(name, &[(Workflow::Migration, SHADOW)], "migration-shadow");
        assert!(
            run.divergences.is_empty(),
            "{name}: divergences on the script's own run:\n{}",
            run.report
        );
        // In shadow the scripts still decide: they end where the legacy run ends.
        let legacy = run_parity(name, &[], "legacy");
        assert_eq!(run.site_state, legacy.site_state, "{name}");
        assert_eq!(run.host_state, legacy.host_state, "{name}");
        snapshot(name, "migration-shadow", &run);
    }
}

/// The kubectl writes of the scripts that change a node's storage taint or label: (tick, node).
fn script_taint_writes(writes: &str) -> Vec<(u32, String)> {
    writes
        .lines()
        .filter(|l| l.contains("storage-not-ready") || l.contains("storage-ready="))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let tick = words.next()?.parse().ok()?;
            let _script_node = words.next()?;
            // `kubectl taint node <node> ...` / `kubectl label node <node> ...`
            let target = l.split(" node ").nth(1)?.split_whitespace().next()?.to_owned();
            Some((tick, target))
        })
        .collect()
}

/// The operator's taint actions in a report: (tick, node).
fn operator_taint_actions(report: &str) -> Vec<(u32, String)> {
    let mut tick = 0;
    let mut out = Vec::new();
    for line in report.lines() {
        if let Some(t) = line.strip_prefix("tick ").and_then(|t| t.strip_suffix(':')) {
            tick = t.parse().unwrap();
        } else if let Some(rest) = line.trim().strip_prefix("operator ")
            && let Some((node, _)) = rest.split_once(':')
        {
            out.push((tick, node.to_owned()));
        }
    }
    out
}

#[test]
fn through_the_stale_state_race_taints_have_one_decider_at_every_moment() {
    // The takeover is projected at tick 3, while edge-1's pod is down (ticks 3-4): edge-1's script
    // has not read it, but no script runs there to act on an old snapshot (its pod is gone), so
    // the operator does not wait for it; the pod that comes back at tick 5 reads the takeover
    // first. Then both nodes race into the upgrade from the same snapshot; the upgrade takes
    // resources down and the storage taints follow.
    // A person also removes both nodes' storage-ready labels then: whoever owns taints must put
    // them back, and only one may.
    let run = run_parity_from(
        "stale-state-race",
        &[(Workflow::Taints, OPERATOR)],
        "taints-operator",
        3,
    );
    assert!(
        !run.report.contains("taints: waiting for"),
        "the operator waited for a node whose script pod was gone:\n{}",
        run.report
    );
    let script = script_taint_writes(&run.script_writes);
    let operator = operator_taint_actions(&run.report);
    assert!(!operator.is_empty(), "the operator never acted:\n{}", run.report);
    let first_operator_tick = operator.iter().map(|(t, _)| *t).min().unwrap();
    // The scripts' taint writes all come before the takeover reached them; from the operator's
    // first action on, it is the only one that writes taints.
    let late: Vec<&(u32, String)> = script.iter().filter(|(t, _)| *t >= 3).collect();
    assert!(
        late.is_empty(),
        "a script wrote taints after the takeover: {late:?}"
    );
    assert!(
        first_operator_tick >= 3,
        "the operator acted at tick {first_operator_tick}, before the takeover"
    );
    snapshot("stale-state-race", "taints-operator-from-tick-3", &run);
}

#[test]
fn a_source_node_rebooting_mid_migration_leaves_the_operators_migration_whole() {
    // edge-1, the source and LINSTOR controller, reboots while the new replicas sync. Its script
    // recovers it (boot recovery stays legacy) and the resync resumes. The script's own migration
    // gives up at the first `drbdadm status` that fails during the reboot and rolls back; the
    // operator's waits the reboot out and completes, ending where an undisturbed migration ends.
    let name = "migration-single-to-multi";
    let rebooted = || {
        let mut s = scenario(name);
        s.ticks = 14;
        s.events.push(Event {
            tick: 6,
            action: Action::Fault(serde_json::json!({"Reboot": {"node": "edge-1"}})),
        });
        s.events.sort_by_key(|e| e.tick);
        s
    };
    let undisturbed = run_parity(name, &[], "legacy");
    let owned = run_parity_of(
        name,
        rebooted(),
        &[(Workflow::Migration, OPERATOR)],
        "migration-operator-reboot",
        0,
    );
    assert!(
        owned.report.contains("migration enters COMPLETED"),
        "the operator's migration did not complete:\n{}",
        owned.report
    );
    assert_eq!(owned.site_state, undisturbed.site_state);
    // The reboot demotes pvc-1's Primary (the simulated workload is not started again): DRBD
    // roles and LINSTOR's usage column are left out of the comparison, placement and disk states
    // are not.
    let placement = |hosts: &str| {
        hosts
            .replace("role:Primary", "role:Secondary")
            .replace("InUse ", "Unused")
    };
    assert_eq!(placement(&owned.host_state), placement(&undisturbed.host_state));
    snapshot(name, "migration-operator-source-reboot", &owned);

    // The same reboot under the script, in shadow: the script's rollback is the divergence (the
    // script gave up on a `drbdadm status` that failed during the reboot).
    let shadowed = run_parity_of(
        name,
        rebooted(),
        &[(Workflow::Migration, SHADOW)],
        "migration-shadow-reboot",
        0,
    );
    assert!(
        shadowed.site_state.contains("topology=single"),
        "{}",
        shadowed.site_state
    );
    let rollback: Vec<&shadow::Divergence> = shadowed
        .divergences
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d.script == "moved the migration from WAITING_FOR_RESYNC to ROLLING_BACK")
        .collect();
    assert_eq!(rollback.len(), 1, "{}", shadowed.report);
    // From the facts reported after the reboot the operator would not have rolled back.
    assert!(
        !rollback[0].operator.contains("ROLLING_BACK"),
        "{:?}",
        rollback[0]
    );
    snapshot(name, "migration-shadow-source-reboot", &shadowed);
}

// --- the takeover's fence: a script that is slow, silent or wrong about the time ----------------

/// The double actions of a run: each script write to the taints workflow (tick, node written)
/// that took effect after the operator had acted on taints, i.e. while both decided.
fn double_actions(run: &ParityRun) -> Vec<(u32, String)> {
    let Some(first) = operator_taint_actions(&run.report)
        .iter()
        .map(|(tick, _)| *tick)
        .min()
    else {
        return Vec::new();
    };
    script_taint_writes(&run.script_writes)
        .into_iter()
        .filter(|(tick, _)| *tick > first)
        .collect()
}

/// Runs `name` with taints handed to the operator at tick 3 under the old clock rule.
fn run_under_the_old_clock_rule(name: &str) -> ParityRun {
    run_parity_under(
        name,
        scenario(name),
        &[(Workflow::Taints, OPERATOR)],
        "taints-operator-old-clock-rule",
        3,
        Rule::OldClock,
    )
}

#[test]
fn a_script_loop_hung_ten_minutes_in_linstor_holds_the_takeover_back_and_nothing_acts_twice() {
    let name = "taints-linstor-hang";
    // Under the rule the fence replaced, edge-1's silence counts as death once its last report is
    // 300 s old: the operator takes taints over while edge-1's loop is still blocked, and when the
    // `linstor` call returns that loop labels edge-1 from its ten-minute-old snapshot.
    let old = run_under_the_old_clock_rule(name);
    let doubled = double_actions(&old);
    assert_eq!(
        doubled,
        [(22, "edge-1".to_owned())],
        "the old rule's double action:\n{}\n{}",
        old.report,
        old.script_writes
    );
    snapshot(name, "taints-operator-old-clock-rule", &old);

    // The fence: edge-1's pod runs, so the operator waits for its script to read the takeover,
    // however long it is silent; the stale loop's write is the script's last as taints' decider.
    let run = run_parity_from(name, &[(Workflow::Taints, OPERATOR)], "taints-operator", 3);
    assert_eq!(double_actions(&run), [], "{}\n{}", run.report, run.script_writes);
    assert!(
        run.report.contains(
            "taints: waiting for the legacy script on edge-1 to read takeover generation 1 (its pod \
             vx-rail-node-init-edge-1 is running; last report 600 s ago)"
        ),
        "the operator did not wait past the old staleness bound:\n{}",
        run.report
    );
    let first = operator_taint_actions(&run.report)
        .iter()
        .map(|(tick, _)| *tick)
        .min()
        .unwrap_or_else(|| panic!("the operator never acted:\n{}", run.report));
    assert_eq!(
        first, 23,
        "the operator acts once edge-1's next loop read the takeover"
    );
    let legacy = run_parity(name, &[], "legacy");
    assert_eq!(run.end_taints, legacy.end_taints);
    snapshot(name, "taints-operator", &run);
}

#[test]
fn a_node_whose_clock_is_an_hour_behind_is_waited_for_and_nothing_acts_twice() {
    let name = "taints-clock-behind";
    // Under the old rule edge-2's reports, stamped an hour behind, make it dead from the start:
    // the operator acts at once, while edge-2's slow loop still acts on its old snapshot.
    let old = run_under_the_old_clock_rule(name);
    assert_eq!(
        double_actions(&old),
        [(5, "edge-2".to_owned())],
        "the old rule's double action:\n{}\n{}",
        old.report,
        old.script_writes
    );

    let run = run_parity_from(name, &[(Workflow::Taints, OPERATOR)], "taints-operator", 3);
    assert_eq!(double_actions(&run), [], "{}\n{}", run.report, run.script_writes);
    assert!(
        run.report.contains(
            "taints: waiting for the legacy script on edge-2 to read takeover generation 1 (its pod \
             vx-rail-node-init-edge-2 is running; last report 3"
        ),
        "the operator did not wait for the node whose reports look an hour old:\n{}",
        run.report
    );
    let first = operator_taint_actions(&run.report)
        .iter()
        .map(|(tick, _)| *tick)
        .min()
        .unwrap_or_else(|| panic!("the operator never acted:\n{}", run.report));
    assert_eq!(
        first, 6,
        "the operator acts once edge-2's next loop read the takeover"
    );
    let legacy = run_parity(name, &[], "legacy");
    assert_eq!(run.end_taints, legacy.end_taints);
    snapshot(name, "taints-operator", &run);
}

// --- the storage upgrade in shadow: every upgrade scenario, the scripts still deciding ----------

/// The scripts' writes of the storage upgrade: the cluster state's `upgrade` key, the nodes'
/// upgrade-state annotations, cordons and upgrade taints.
fn upgrade_writes(writes: &str) -> Vec<&str> {
    writes
        .lines()
        .filter(|l| l.split_whitespace().nth(1) != Some("operator"))
        .filter(|l| {
            l.contains("\"upgrade\"")
                || l.contains("upgrade-state")
                || l.contains("cordon")
                || l.contains("upgrade-in-progress")
        })
        .collect()
}

/// Runs `name` in legacy mode and with `modes` (shadow only), checks that shadowing changed
/// nothing the scripts did, and pins the shadow run's report.
fn shadow_ends_where_legacy_ends(name: &str, modes: &[(Workflow, WorkflowMode)], label: &str) -> ParityRun {
    assert!(modes.iter().all(|(_, m)| *m == SHADOW));
    let legacy = run_parity(name, &[], "legacy");
    let run = run_parity(name, modes, label);
    assert_eq!(
        run.host_state, legacy.host_state,
        "{name}: shadow changed the hosts"
    );
    assert_eq!(
        run.site_state, legacy.site_state,
        "{name}: shadow changed the site"
    );
    assert_eq!(
        run.end_taints, legacy.end_taints,
        "{name}: shadow changed the taints"
    );
    assert_eq!(
        upgrade_writes(&run.script_writes),
        upgrade_writes(&legacy.script_writes),
        "{name}: in shadow the scripts upgraded differently"
    );
    snapshot(name, label, &run);
    run
}

#[test]
fn a_storage_upgrade_rolled_back_after_a_failed_install_in_shadow_leaves_the_scripts_run_whole() {
    shadow_ends_where_legacy_ends(
        "storage-upgrade-rollback",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
}

#[test]
fn a_storage_upgrade_whose_rollback_fails_in_shadow_leaves_the_scripts_run_whole() {
    shadow_ends_where_legacy_ends(
        "storage-upgrade-rollback-fails",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
}

#[test]
fn a_storage_upgrade_past_its_resync_deadline_in_shadow_leaves_the_scripts_run_whole() {
    let run = shadow_ends_where_legacy_ends(
        "storage-upgrade-slow-resync",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
    // The script's own run: the deadline passes in WAIT_RESYNC and edge-1 rolls back.
    assert!(
        run.trace
            .logs
            .get("edge-1")
            .is_some_and(|l| l.contains("reason=\"timed out after 120s\"")),
        "the script did not time out in WAIT_RESYNC"
    );
}

#[test]
fn a_migration_requested_during_a_storage_upgrade_in_shadow_leaves_the_scripts_run_whole() {
    shadow_ends_where_legacy_ends(
        "storage-upgrade-migration-requested",
        &[(Workflow::StorageUpgrade, SHADOW), (Workflow::Migration, SHADOW)],
        "both-shadow",
    );
}

// --- the storage upgrade in operator mode -------------------------------------------------------

/// Runs `name` with the storage upgrade in operator mode (and `more` other workflows), checks
/// that no script wrote the upgrade and that every invariant holds, and pins the report.
fn upgrade_in_operator_mode(name: &str, more: &[(Workflow, WorkflowMode)], label: &str) -> ParityRun {
    let mut modes = vec![(Workflow::StorageUpgrade, OPERATOR)];
    modes.extend_from_slice(more);
    let run = run_parity(name, &modes, label);
    let script_upgrades = upgrade_writes(&run.script_writes);
    assert!(
        script_upgrades.is_empty(),
        "{name}: a script still upgrades:\n{}",
        script_upgrades.join("\n")
    );
    let report = run.invariants();
    assert!(report.violations.is_empty(), "{name}:\n{report}\n{}", run.report);
    snapshot(name, label, &run);
    run
}

/// Every node's storage package, as `storage` lines give it.
fn packages(run: &ParityRun) -> Vec<(String, String)> {
    run.storage
        .iter()
        .map(|(n, s)| {
            let package = s.split_whitespace().next().unwrap_or_default().to_owned();
            (n.clone(), package)
        })
        .collect()
}

fn all_on(run: &ParityRun, version: &str) -> bool {
    packages(run)
        .iter()
        .all(|(_, p)| *p == format!("drbd-dkms={version}-1"))
}

#[test]
fn a_storage_upgrade_in_operator_mode_goes_node_by_node_and_ends_where_the_legacy_upgrade_ends() {
    let name = "storage-upgrade";
    let legacy = run_parity(name, &[], "legacy");
    let owned = upgrade_in_operator_mode(name, &[], "storage-upgrade-operator");
    assert!(
        owned.report.contains("enters COMPLETED: every node runs 9.2.14"),
        "{}",
        owned.report
    );
    assert!(all_on(&owned, "9.2.14"), "{:?}", owned.storage);
    assert_eq!(owned.storage, legacy.storage, "the nodes end elsewhere");
    assert_eq!(owned.end_taints, legacy.end_taints);
    assert_eq!(owned.site_state, legacy.site_state);
}

#[test]
fn a_storage_upgrade_in_operator_mode_with_a_failed_install_on_the_second_node_rolls_every_node_back() {
    let name = "storage-upgrade-rollback";
    let legacy = run_parity(name, &[], "legacy");
    let owned = upgrade_in_operator_mode(name, &[], "storage-upgrade-operator");
    assert!(owned.report.contains("enters ROLLED_BACK"), "{}", owned.report);
    assert!(all_on(&owned, "9.2.12"), "{:?}", owned.storage);
    assert_eq!(owned.storage, legacy.storage, "the nodes end elsewhere");
    assert_eq!(owned.end_taints, legacy.end_taints);
}

#[test]
fn a_storage_upgrade_in_operator_mode_whose_rollback_fails_stops_failed_with_the_broken_node_cordoned() {
    let name = "storage-upgrade-rollback-fails";
    let legacy = run_parity(name, &[], "legacy");
    let owned = upgrade_in_operator_mode(name, &[], "storage-upgrade-operator");
    assert!(owned.report.contains("enters FAILED"), "{}", owned.report);
    // As the script documents it: FAILED is terminal, edge-1 stays upgraded.
    assert_eq!(owned.storage, legacy.storage, "the nodes end elsewhere");
    // edge-2's package cannot be built whatever the version: it is left for hands-on repair,
    // cordoned; edge-3 was never touched.
    assert!(
        owned.storage["edge-2"].contains("cordoned"),
        "{:?}",
        owned.storage
    );
    assert_eq!(owned.storage["edge-3"], "drbd-dkms=9.2.12-1 drbd=loaded");
}

#[test]
fn a_storage_upgrade_in_operator_mode_past_its_resync_deadline_rolls_back_where_the_script_does() {
    let name = "storage-upgrade-slow-resync";
    let legacy = run_parity(name, &[], "legacy");
    let owned = upgrade_in_operator_mode(name, &[], "storage-upgrade-operator");
    assert!(owned.report.contains("enters ROLLED_BACK"), "{}", owned.report);
    assert!(all_on(&owned, "9.2.12"), "{:?}", owned.storage);
    assert_eq!(owned.storage, legacy.storage, "the nodes end elsewhere");
}

#[test]
fn the_stale_state_race_in_operator_mode_upgrades_one_node_at_a_time_and_loses_no_replica() {
    let name = "stale-state-race";
    let owned = upgrade_in_operator_mode(name, &[], "storage-upgrade-operator");
    assert!(
        owned.report.contains("enters COMPLETED: every node runs 9.2.14"),
        "{}",
        owned.report
    );
    assert!(all_on(&owned, "9.2.14"), "{:?}", owned.storage);
    // Node by node: the first state edge-2 enters is PREFLIGHT, once edge-1 handed over.
    let first = owned
        .report
        .lines()
        .find(|l| l.contains(" enters ") && l.contains(" on edge-2"))
        .unwrap_or_else(|| panic!("edge-2 never upgraded:\n{}", owned.report));
    assert!(
        first.contains("enters PREFLIGHT on edge-2: edge-1 done; handing over"),
        "{first}\n{}",
        owned.report
    );
}

#[test]
fn a_migration_requested_during_an_operator_upgrade_waits_for_the_storage_gate() {
    let name = "storage-upgrade-migration-requested";
    let owned = upgrade_in_operator_mode(name, &[(Workflow::Migration, OPERATOR)], "both-operator");
    assert!(
        owned.report.contains("enters COMPLETED: every node runs 9.2.14"),
        "{}",
        owned.report
    );
    assert!(
        owned.report.contains("migration enters COMPLETED"),
        "{}",
        owned.report
    );
    // The upgrade holds the gate from the request on; the migration, requested meanwhile, waits
    // for the gate before its first phase and changes nothing until the upgrade released it.
    let released = owned
        .report
        .find("storage gate released by StorageUpgrade/")
        .unwrap_or_else(|| panic!("the gate was never released:\n{}", owned.report));
    let past_preflight = owned
        .report
        .find("migration enters PREPARING_NETWORK")
        .unwrap_or_else(|| panic!("the migration never went on:\n{}", owned.report));
    assert!(
        released < past_preflight,
        "the migration did not wait:\n{}",
        owned.report
    );
    let first_migration_task = owned.report.find("task mig-").unwrap_or(usize::MAX);
    assert!(released < first_migration_task, "{}", owned.report);
    let at = |what: &str| {
        owned
            .report
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in the report:\n{}", owned.report))
    };
    assert!(
        at("a person creates Migration") < released,
        "the migration was not requested while the upgrade ran:\n{}",
        owned.report
    );
    assert!(
        at("migration waits: waiting for the storage gate, held by StorageUpgrade/") < released,
        "the migration did not say what it waits for:\n{}",
        owned.report
    );
    assert!(
        at("migration enters PREFLIGHT") > released,
        "the migration entered a phase while the upgrade held the gate:\n{}",
        owned.report
    );
}

#[test]
fn a_node_rebooting_mid_install_in_shadow_leaves_the_scripts_run_whole() {
    shadow_ends_where_legacy_ends(
        "storage-upgrade-reboot-mid-install",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
}

#[test]
fn a_node_rebooting_mid_install_in_operator_mode_ends_on_one_version() {
    let name = "storage-upgrade-reboot-mid-install";
    let legacy = run_parity(name, &[], "legacy");
    let owned = upgrade_in_operator_mode(name, &[], "storage-upgrade-operator");
    // The script rolls every node back (it takes the killed install for a failed state); the
    // operator decides by its rule, and ends where the script does.
    assert_eq!(owned.storage, legacy.storage, "the nodes end elsewhere");
    assert!(
        all_on(&owned, "9.2.14") || all_on(&owned, "9.2.12"),
        "half-upgraded: {:?}\n{}",
        owned.storage,
        owned.report
    );
    assert!(
        owned
            .storage
            .values()
            .all(|s| !s.contains("half-configured") && !s.contains("cordoned")),
        "{:?}",
        owned.storage
    );
}

#[test]
fn an_upgrade_of_a_device_held_open_in_shadow_leaves_the_scripts_failed_run_whole() {
    shadow_ends_where_legacy_ends(
        "storage-upgrade-open-device",
        &[(Workflow::StorageUpgrade, SHADOW)],
        "storage-upgrade-shadow",
    );
}

#[test]
fn an_upgrade_of_a_device_held_open_in_operator_mode_drains_through_eviction_and_completes() {
    let name = "storage-upgrade-open-device";
    let legacy = run_parity(name, &[], "legacy");
    assert!(
        all_on(&legacy, "9.2.12"),
        "the script's upgrade fails: {:?}",
        legacy.storage
    );
    let owned = upgrade_in_operator_mode(name, &[], "storage-upgrade-operator");
    let evicted = owned
        .report
        .find("operator: evict default/app-0 from edge-1 -> 0")
        .unwrap_or_else(|| panic!("no eviction:\n{}", owned.report));
    let demoted = owned
        .report
        .find("`drbd-demote pvc-1` -> 0")
        .unwrap_or_else(|| panic!("never demoted:\n{}", owned.report));
    assert!(evicted < demoted, "demoted before the drain:\n{}", owned.report);
    assert!(
        owned.report.contains("enters COMPLETED: every node runs 9.2.14"),
        "{}",
        owned.report
    );
    assert!(all_on(&owned, "9.2.14"), "{:?}", owned.storage);
}
