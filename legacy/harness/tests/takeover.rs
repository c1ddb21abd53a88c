//! The script's shim mode: the takeover ConfigMap `nodewright-takeover` that Nodewright writes
//! (per workflow `legacy`, `shadow` or `operator`, and a `generation`), the script's
//! acknowledgement in its node ConfigMap, and step mode (`vx-rail-node-init.sh step ...`), run
//! against the simulated world and the in-memory cluster. The contract is in
//! `docs/legacy-contract.md`, section "Shim mode (takeover)".

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodewright_legacy_sim::cluster::Cluster;
use nodewright_legacy_sim::host::World;
use nodewright_legacy_sim::run::{
    Action, Event, Host, RunConfig, Scenario, Trace, TraceEntry, run, run_step, world_for,
};
use nodewright_legacy_sim::sched::NodeOutcome;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(name: &str) -> Scenario {
    let path = repo().join(format!("golden/scenarios/{name}.yaml"));
    Scenario::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn config(tag: &str) -> RunConfig {
    RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!("vxr-takeover-{}-{tag}", std::process::id())),
        stuck_after: Duration::from_secs(30),
    }
}

/// An operator's `kubectl` before `tick`.
fn operator(tick: u32, args: &[&str]) -> Event {
    Event {
        tick,
        action: Action::Kubectl(args.iter().map(|a| (*a).to_owned()).collect()),
    }
}

/// Nodewright creating the takeover ConfigMap before `tick`, with `key=value` literals.
fn takeover(tick: u32, literals: &[&str]) -> Event {
    let mut args = vec!["-n", "kube-system", "create", "configmap", "nodewright-takeover"];
    let literals: Vec<String> = literals.iter().map(|l| format!("--from-literal={l}")).collect();
    args.extend(literals.iter().map(String::as_str));
    operator(tick, &args)
}

/// Runs a scenario with extra events first in their tick; returns its trace and end state.
fn run_with(name: &str, events: Vec<Event>, tag: &str) -> (Trace, Cluster) {
    let mut scenario = load(name);
    let mut all = events;
    all.append(&mut scenario.events);
    scenario.events = all;
    let config = config(tag);
    let mut world = world_for(&scenario).unwrap();
    let mut cluster = Cluster::new();
    let trace = run(&scenario, &mut world, &mut cluster, &config).unwrap_or_else(|e| panic!("{name}: {e}"));
    let _ = std::fs::remove_dir_all(&config.work_dir);
    (trace, cluster)
}

/// The commands the nodes ran (the scenario's operator left out).
fn by_nodes(trace: &Trace) -> impl Iterator<Item = &TraceEntry> {
    trace.commands.iter().filter(|e| e.node != "operator")
}

/// A trace entry's command line as one string.
fn line(e: &TraceEntry) -> String {
    e.argv.join(" ")
}

/// The kubectl verb of a node's write (`taint`, `label`, `patch`, ...), if it is one.
fn kubectl_args(e: &TraceEntry) -> Option<&[String]> {
    (e.argv.first().map(String::as_str) == Some("kubectl")).then(|| &e.argv[1..])
}

/// The `status` patches of a node's ConfigMap, per tick.
fn status_patches<'a>(trace: &'a Trace, node: &'a str) -> impl Iterator<Item = (u32, &'a str)> + 'a {
    let cm = format!("vx-rail-node-{node}");
    by_nodes(trace).filter_map(move |e| {
        let args = kubectl_args(e)?;
        let is_patch = args.first().map(String::as_str) == Some("patch") && args.get(2) == Some(&cm);
        let body = args.last()?;
        (e.node == node && is_patch && body.contains("\"status\":")).then_some((e.tick, body.as_str()))
    })
}

/// The golden kube-writes snapshot of a scenario, without its header.
fn golden_kube_writes(name: &str) -> String {
    let path = repo().join(format!("golden/snapshots/{name}@kube-writes.snap"));
    let text = std::fs::read_to_string(path).unwrap();
    let body = text.splitn(3, "---\n").nth(2).unwrap();
    body.trim_end().to_owned()
}

// --- the takeover ConfigMap ----------------------------------------------------------------------

#[test]
fn taints_owned_by_nodewright_are_never_touched_but_the_reason_is_still_reported() {
    let (trace, cluster) = run_with(
        "taints-during-resync",
        vec![takeover(0, &["generation=1", "taints=operator"])],
        "taints-operator",
    );
    let writes: Vec<String> = by_nodes(&trace)
        .filter(|e| kubectl_args(e).is_some())
        .map(line)
        .collect();
    assert!(
        !writes.iter().any(|w| w.starts_with("kubectl taint ")),
        "a node tainted itself: {writes:#?}"
    );
    assert!(
        !writes.iter().any(|w| w.contains("vx-rail.io/storage-ready=")),
        "a node wrote its storage-ready label: {writes:#?}"
    );
    for node in ["edge-1", "edge-2"] {
        let log = &trace.logs[node];
        let ticks = log.matches("### tick ").count();
        let skips = log
            .matches(
                "component=taints msg=\"workflow owned by nodewright, skipping\" workflow=taints \
                 mode=operator generation=1\n",
            )
            .count();
        assert_eq!(skips, ticks, "{node} logs the skip once per iteration:\n{log}");
        assert!(!log.contains("tainting node"), "{log}");
        let taints = &cluster.node(node).unwrap().taints;
        assert!(
            taints.iter().all(|t| !t.key.starts_with("vx-rail.io/")),
            "{node}: {taints:?}"
        );
    }
    // During the resync edge-2 reports the reason it would have tainted itself with.
    let during: Vec<(u32, &str)> = status_patches(&trace, "edge-2")
        .filter(|(tick, _)| (4..=7).contains(tick))
        .collect();
    assert_eq!(during.len(), 4, "{during:#?}");
    for (tick, body) in &during {
        assert!(
            body.contains(";taint=resync;") && body.contains("state=degraded"),
            "tick {tick}: {body}"
        );
    }
    let (_, last) = status_patches(&trace, "edge-2").last().unwrap();
    assert!(last.contains(";taint=none;"), "{last}");
}

#[test]
fn a_migration_owned_by_nodewright_is_neither_started_nor_driven_by_the_primary() {
    let (trace, cluster) = run_with(
        "migration-single-to-multi",
        vec![takeover(0, &["generation=4", "migration=operator"])],
        "migration-operator",
    );
    let migration_writes: Vec<String> = by_nodes(&trace)
        .filter(|e| kubectl_args(e).is_some_and(|a| a.iter().any(|w| w.contains("\"migration\":"))))
        .map(line)
        .collect();
    assert!(migration_writes.is_empty(), "{migration_writes:#?}");
    let mutations: Vec<String> = by_nodes(&trace)
        .filter(|e| e.node == "edge-1" && e.argv.first().map(String::as_str) == Some("linstor"))
        .map(line)
        .filter(|l| l.contains(" create ") || l.contains(" delete "))
        .collect();
    assert!(
        mutations.is_empty(),
        "the primary changed LINSTOR: {mutations:#?}"
    );
    let log = &trace.logs["edge-1"];
    assert!(
        !log.contains("component=migration msg=\"migration phase changed\""),
        "{log}"
    );
    assert_eq!(
        log.matches(
            "component=migration msg=\"workflow owned by nodewright, skipping\" workflow=migration \
             mode=operator generation=4\n"
        )
        .count(),
        log.matches("### tick ").count(),
        "{log}"
    );
    // The operator's own request is left exactly as it was written.
    let state = cluster
        .config_map("kube-system", "vx-rail-cluster-state")
        .unwrap();
    assert_eq!(
        state.data["migration"],
        "phase=PENDING;joining=edge-2,edge-3;replicas=3"
    );
}

#[test]
fn a_migration_nodewright_mirrors_into_the_legacy_key_is_never_driven_by_the_script() {
    // No takeover at all (everything legacy, as after a forced hand-back): the key says the
    // migration is Nodewright's, so the primary leaves it alone.
    let mirrored = "phase=PLACING_REPLICAS;source=edge-1;joining=edge-2,edge-3;replicas=3;since=1767225780;owner=operator";
    let patch = format!("{{\"data\":{{\"migration\":\"{mirrored}\"}}}}");
    let mut scenario = load("migration-single-to-multi");
    for e in &mut scenario.events {
        if let Action::Kubectl(args) = &mut e.action
            && let Some(p) = args.iter_mut().find(|a| a.contains("\"migration\""))
        {
            *p = patch.clone();
        }
    }
    let config = config("mirrored-migration");
    let mut cluster = Cluster::new();
    let trace = run(
        &scenario,
        &mut world_for(&scenario).unwrap(),
        &mut cluster,
        &config,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    let writes: Vec<String> = by_nodes(&trace)
        .filter(|e| kubectl_args(e).is_some_and(|a| a.iter().any(|w| w.contains("\"migration\":"))))
        .map(line)
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    let log = &trace.logs["edge-1"];
    assert!(
        log.contains("component=migration msg=\"migration owned by nodewright, not touching it\" phase=PLACING_REPLICAS"),
        "{log}"
    );
    let state = cluster
        .config_map("kube-system", "vx-rail-cluster-state")
        .unwrap();
    assert_eq!(state.data["migration"], mirrored);
}

#[test]
fn a_storage_upgrade_nodewright_mirrors_is_never_driven_by_the_script_and_holds_its_storage_step() {
    // While the operator installs on edge-2, and while it rolls edge-2 back (a state the
    // script's own upgrade does not count as "in the upgrade" for the storage step).
    for state in ["INSTALL_PACKAGES", "ROLLING_BACK"] {
        mirrored_upgrade_holds_the_script(state);
    }
}

fn mirrored_upgrade_holds_the_script(state: &str) {
    // No takeover at all: the key alone says the upgrade is Nodewright's. Its agent has taken
    // edge-2's storage down (satellite stopped, modules out, resources down: the host as a
    // power cut leaves it), and the desired version asks for an upgrade.
    let mirrored = format!(
        "state={state};from=9.2.12;to=9.2.14;order=edge-1,edge-2,edge-3;node=edge-2;done=edge-1;rolled=;by=nodewright;started=1767225690;since=1767225690;owner=operator"
    );
    let patch = format!("{{\"data\":{{\"desired-storage-version\":\"9.2.14\",\"upgrade\":\"{mirrored}\"}}}}");
    let mut scenario = load("storage-upgrade");
    for e in &mut scenario.events {
        if let Action::Kubectl(args) = &mut e.action
            && let Some(p) = args.iter_mut().find(|a| a.contains("desired-storage-version"))
        {
            *p = patch.clone();
        }
    }
    scenario.events.push(Event {
        tick: 3,
        action: Action::Fault(serde_json::json!({"PowerOff": {"node": "edge-2"}})),
    });
    let config = config(&format!("mirrored-upgrade-{state}"));
    let mut cluster = Cluster::new();
    let trace = run(
        &scenario,
        &mut world_for(&scenario).unwrap(),
        &mut cluster,
        &config,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    let writes: Vec<String> = by_nodes(&trace)
        .filter(|e| {
            kubectl_args(e).is_some_and(|a| {
                a.iter()
                    .any(|w| w.contains("\"upgrade\":") || w.contains("upgrade-state="))
            })
        })
        .map(line)
        .collect();
    assert!(
        writes.is_empty(),
        "{state}: the script wrote the upgrade: {writes:#?}"
    );
    // edge-2's storage step leaves its modules and satellite to the upgrade.
    let restarted: Vec<String> = by_nodes(&trace)
        .filter(|e| e.tick >= 3 && e.node == "edge-2")
        .map(line)
        .filter(|l| l.starts_with("modprobe") || l.starts_with("systemctl start") || l.starts_with("drbdadm"))
        .filter(|l| !l.starts_with("drbdadm status"))
        .collect();
    assert!(
        restarted.is_empty(),
        "{state}: edge-2 touched its storage: {restarted:#?}"
    );
    for node in ["edge-1", "edge-2", "edge-3"] {
        let log = &trace.logs[node];
        assert!(
            log.contains(&format!(
                "component=upgrade msg=\"storage upgrade owned by nodewright, not touching it\" state={state} node=edge-2 to=9.2.14"
            )),
            "{node} ({state}): {log}"
        );
        assert!(!log.contains("msg=\"upgrade state changed\""), "{node}: {log}");
    }
    assert!(
        trace.logs["edge-2"]
            .contains("msg=\"node is in the storage upgrade, leaving services and modules alone\""),
        "{}",
        trace.logs["edge-2"]
    );
    // The other nodes' storage steps go on as usual.
    assert!(!trace.logs["edge-3"].contains("leaving services and modules alone"));
    let state = cluster
        .config_map("kube-system", "vx-rail-cluster-state")
        .unwrap();
    assert_eq!(state.data["upgrade"], mirrored);
}

#[test]
fn after_an_upgrade_nodewright_ran_has_ended_the_script_starts_the_next_version_itself() {
    // The workflow handed back to the script (no takeover at all): the key still holds
    // Nodewright's finished upgrade to 9.2.12, and a person asks for 9.2.14.
    let finished = "state=COMPLETED;from=9.2.10;to=9.2.12;order=edge-1,edge-2,edge-3;node=;done=edge-1,edge-2,edge-3;rolled=;by=nodewright;started=1767225690;since=1767225690;finished=1767225700;owner=operator";
    let patch = format!("{{\"data\":{{\"desired-storage-version\":\"9.2.14\",\"upgrade\":\"{finished}\"}}}}");
    let mut scenario = load("storage-upgrade");
    for e in &mut scenario.events {
        if let Action::Kubectl(args) = &mut e.action
            && let Some(p) = args.iter_mut().find(|a| a.contains("desired-storage-version"))
        {
            *p = patch.clone();
        }
    }
    let config = config("after-operator-upgrade");
    let mut cluster = Cluster::new();
    let trace = run(
        &scenario,
        &mut world_for(&scenario).unwrap(),
        &mut cluster,
        &config,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    let log = &trace.logs["edge-1"];
    assert!(
        log.contains("component=upgrade msg=\"storage upgrade started\" from=9.2.12 to=9.2.14"),
        "{log}"
    );
    assert!(!log.contains("not touching it"), "{log}");
    let state = cluster
        .config_map("kube-system", "vx-rail-cluster-state")
        .unwrap();
    let upgrade = &state.data["upgrade"];
    assert!(upgrade.starts_with("state=COMPLETED;"), "{upgrade}");
    assert!(upgrade.contains(";to=9.2.14;"), "{upgrade}");
    assert!(!upgrade.contains("owner=operator"), "{upgrade}");
}

#[test]
fn taints_in_shadow_mode_make_exactly_the_legacy_writes_besides_the_acknowledgement() {
    let (trace, _) = run_with(
        "taints-during-resync",
        vec![takeover(0, &["generation=2", "taints=shadow"])],
        "taints-shadow",
    );
    let mut writes = String::new();
    for l in trace.kube_writes().lines() {
        if l.contains(" operator $ ") {
            assert!(l.contains("nodewright-takeover"), "{l}");
            continue;
        }
        writes.push_str(&l.replace(",\"takeover-generation\":\"2\"", ""));
        writes.push('\n');
    }
    let golden = golden_kube_writes("taints-during-resync");
    assert_eq!(writes.trim_end(), golden);
    assert!(!trace.logs["edge-2"].contains("workflow owned by nodewright"));
}

#[test]
fn the_acknowledgement_carries_the_generation_read_and_follows_a_bump() {
    let (trace, cluster) = run_with(
        "bootstrap-single-node",
        vec![
            takeover(1, &["generation=1", "taints=shadow"]),
            operator(
                2,
                &[
                    "-n",
                    "kube-system",
                    "patch",
                    "configmap",
                    "nodewright-takeover",
                    "--type",
                    "merge",
                    "-p",
                    r#"{"data":{"generation":"7"}}"#,
                ],
            ),
        ],
        "ack",
    );
    let patches: Vec<(u32, &str)> = status_patches(&trace, "edge-1").collect();
    assert_eq!(patches.len(), 3, "{patches:#?}");
    assert!(
        !patches[0].1.contains("takeover-generation"),
        "no takeover ConfigMap, no acknowledgement: {}",
        patches[0].1
    );
    assert!(
        patches[1].1.ends_with(r#","takeover-generation":"1"}}"#),
        "{}",
        patches[1].1
    );
    assert!(
        patches[2].1.ends_with(r#","takeover-generation":"7"}}"#),
        "{}",
        patches[2].1
    );
    let cm = cluster.config_map("kube-system", "vx-rail-node-edge-1").unwrap();
    assert_eq!(cm.data["takeover-generation"], "7");
    assert!(
        trace.logs["edge-1"].contains(
            "component=snapshot msg=\"takeover modes read\" generation=7 bootstrap=legacy \
             migration=legacy storage_upgrade=legacy bond_flip=legacy taints=shadow \
             boot_recovery=legacy network=legacy storage=legacy\n"
        ),
        "{}",
        trace.logs["edge-1"]
    );
}

/// `kubectl delete configmap nodewright-takeover` before `tick`.
fn delete_takeover(tick: u32) -> Event {
    operator(
        tick,
        &["-n", "kube-system", "delete", "configmap", "nodewright-takeover"],
    )
}

/// The bootstrap of one node, run for `ticks` loops with `events`.
fn single_node(ticks: u32, events: Vec<Event>, tag: &str) -> (Trace, Cluster) {
    let mut scenario = load("bootstrap-single-node");
    scenario.ticks = ticks;
    let mut all = events;
    all.append(&mut scenario.events);
    all.sort_by_key(|e| e.tick);
    scenario.events = all;
    let config = config(tag);
    let mut world = world_for(&scenario).unwrap();
    let mut cluster = Cluster::new();
    let trace = run(&scenario, &mut world, &mut cluster, &config).unwrap();
    let _ = std::fs::remove_dir_all(&config.work_dir);
    (trace, cluster)
}

/// The `### tick N (exit C)` headers of a node's log: each loop's exit code.
fn exits(trace: &Trace, node: &str) -> Vec<i32> {
    trace.logs[node]
        .lines()
        .filter_map(|l| l.strip_prefix("### tick "))
        .map(|l| {
            let code = l.split("(exit ").nth(1).unwrap();
            code[..code.find([',', ')']).unwrap()].parse().unwrap()
        })
        .collect()
}

#[test]
fn a_takeover_configmap_lost_after_it_was_acknowledged_stops_the_script_until_it_is_back() {
    // Tick 1 reads taints=operator at generation 1 and acknowledges it; the ConfigMap is deleted
    // before tick 2; Nodewright writes it again (generation 2) before tick 4.
    let (trace, cluster) = single_node(
        5,
        vec![
            takeover(1, &["generation=1", "taints=operator"]),
            delete_takeover(2),
            takeover(4, &["generation=2", "taints=operator"]),
        ],
        "lost",
    );
    assert_eq!(
        exits(&trace, "edge-1"),
        [0, 0, 1, 1, 0],
        "{}",
        trace.logs["edge-1"]
    );
    let log = &trace.logs["edge-1"];
    assert!(
        log.contains(
            "component=snapshot msg=\"takeover ConfigMap is gone after this node acknowledged it, not \
             acting this iteration: nodewright may own a workflow; it writes the ConfigMap again, or \
             remove takeover-generation from the node ConfigMap to go back to pure legacy\" \
             configmap=nodewright-takeover acknowledged=1\n"
        ),
        "{log}"
    );
    // The failed loops stop at init: no host command, no write but the last-run annotation.
    let during: Vec<String> = by_nodes(&trace)
        .filter(|e| (2..4).contains(&e.tick))
        .filter(|e| e.argv[0] != "date" && e.argv[0] != "kubectl")
        .map(line)
        .collect();
    assert!(
        during.is_empty(),
        "host commands while the ConfigMap was lost: {during:#?}"
    );
    let writes: Vec<String> = by_nodes(&trace)
        .filter(|e| (2..4).contains(&e.tick))
        .filter(|e| kubectl_args(e).is_some_and(|a| a[0] != "get"))
        .map(line)
        .collect();
    assert!(
        writes
            .iter()
            .all(|w| w.contains("vx-rail.io/last-run=") && w.contains("step=init")),
        "{writes:#?}"
    );
    // Once it is back the script acknowledges the new generation and skips taints again.
    let cm = cluster.config_map("kube-system", "vx-rail-node-edge-1").unwrap();
    assert_eq!(cm.data["takeover-generation"], "2");
    assert!(!by_nodes(&trace).any(|e| line(e).starts_with("kubectl taint ")));
}

#[test]
fn a_site_that_never_acknowledged_a_takeover_runs_legacy_without_the_configmap() {
    // No takeover ConfigMap ever: every loop decides everything, as before shim mode existed.
    let (trace, _) = single_node(3, vec![], "never");
    assert_eq!(exits(&trace, "edge-1"), [0, 0, 0]);
    assert!(!trace.logs["edge-1"].contains("takeover ConfigMap is gone"));
}

#[test]
fn going_back_to_pure_legacy_removes_the_configmap_and_the_acknowledgement_and_the_script_decides_again() {
    let remove_ack = operator(
        2,
        &[
            "-n",
            "kube-system",
            "patch",
            "configmap",
            "vx-rail-node-edge-1",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"takeover-generation":null}}"#,
        ],
    );
    let (trace, cluster) = single_node(
        4,
        vec![
            takeover(1, &["generation=1", "taints=legacy"]),
            delete_takeover(2),
            remove_ack,
        ],
        "way-back",
    );
    assert_eq!(exits(&trace, "edge-1"), [0, 0, 0, 0], "{}", trace.logs["edge-1"]);
    let cm = cluster.config_map("kube-system", "vx-rail-node-edge-1").unwrap();
    assert!(!cm.data.contains_key("takeover-generation"), "{:?}", cm.data);
}

#[test]
fn an_unknown_mode_is_treated_as_legacy_and_logged_every_iteration() {
    let (trace, _) = run_with(
        "taints-during-resync",
        vec![takeover(0, &["generation=3", "taints=Operator"])],
        "unknown-mode",
    );
    let writes = trace.kube_writes();
    assert!(
        writes.contains(
            "edge-2 $ kubectl taint node edge-2 --overwrite vx-rail.io/storage-not-ready=resync:NoSchedule -> 0"
        ),
        "taints stay with the script: {writes}"
    );
    for node in ["edge-1", "edge-2"] {
        let log = &trace.logs[node];
        let warned = log
            .matches(
                "level=warn node=NODE component=snapshot msg=\"unknown takeover mode, treating the \
                 workflow as legacy\" configmap=nodewright-takeover key=taints value=Operator\n"
                    .replace("NODE", node)
                    .as_str(),
            )
            .count();
        assert_eq!(warned, log.matches("### tick ").count(), "{log}");
        assert!(!log.contains("workflow owned by nodewright"), "{log}");
        assert!(!log.contains("(exit 1)"), "{log}");
    }
}

#[test]
fn a_generation_that_is_not_a_positive_integer_is_logged_and_acknowledged_as_zero() {
    let (trace, cluster) = run_with(
        "bootstrap-single-node",
        vec![takeover(0, &["generation=seven", "bond-flip=operator"])],
        "bad-generation",
    );
    let log = &trace.logs["edge-1"];
    assert_eq!(
        log.matches(
            "component=snapshot msg=\"takeover generation is not a positive integer, acknowledging 0\" \
             configmap=nodewright-takeover key=generation value=seven\n"
        )
        .count(),
        3,
        "{log}"
    );
    assert!(
        log.contains(
            "component=network msg=\"workflow owned by nodewright, skipping\" workflow=bond-flip \
             mode=operator generation=0\n"
        ),
        "the modes still apply: {log}"
    );
    assert!(!log.contains("(exit 1)"), "{log}");
    let cm = cluster.config_map("kube-system", "vx-rail-node-edge-1").unwrap();
    assert_eq!(cm.data["takeover-generation"], "0");
}

#[test]
fn boot_recovery_owned_by_nodewright_is_skipped_until_the_node_carries_the_new_boot_id() {
    // The boot id edge-2 gets when it reboots before tick 3 (the world is seeded): the golden run
    // records it when its own recovery completes.
    let golden = golden_kube_writes("boot-recovery-after-reboot");
    let boot_id = golden
        .lines()
        .find_map(|l| {
            l.strip_prefix("  3 edge-2 $ kubectl annotate node edge-2 --overwrite vx-rail.io/boot-id=")
        })
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    let annotation = format!("vx-rail.io/boot-id={boot_id}");
    let (trace, _) = run_with(
        "boot-recovery-after-reboot",
        vec![
            takeover(0, &["generation=1", "boot-recovery=operator"]),
            // Nodewright's own recovery completes before tick 5.
            operator(5, &["annotate", "node", "edge-2", "--overwrite", &annotation]),
        ],
        "boot-operator",
    );
    let writes: Vec<String> = by_nodes(&trace)
        .filter(|e| kubectl_args(e).is_some())
        .map(line)
        .collect();
    assert!(
        !writes
            .iter()
            .any(|w| w.contains("\"boot-recovery\":") || w.contains("vx-rail.io/boot-id=")),
        "the script recorded a boot recovery: {writes:#?}"
    );
    let log = &trace.logs["edge-2"];
    assert!(
        !log.contains("component=boot msg=\"boot recovery phase\""),
        "{log}"
    );
    for (tick, body) in status_patches(&trace, "edge-2") {
        let recovering = body.contains("state=recovering;") && body.contains(";taint=boot-recovery;");
        assert_eq!(recovering, (3..5).contains(&tick), "tick {tick}: {body}");
    }
    assert!(
        log.contains(&format!(
            "component=snapshot msg=\"boot recovered by nodewright, recording the boot id on the host\" \
             boot_id={boot_id}\n"
        )),
        "{log}"
    );
    assert_eq!(
        log.matches("recording the boot id on the host").count(),
        1,
        "{log}"
    );
}

/// The host commands a node ran from `tick` on (its own loop's, not the scenario's faults).
fn host_commands_from(trace: &Trace, node: &str, tick: u32) -> Vec<String> {
    by_nodes(trace)
        .filter(|e| e.node == node && e.tick >= tick && kubectl_args(e).is_none())
        .map(line)
        .collect()
}

#[test]
fn network_owned_by_nodewright_assembles_nothing_fails_nothing_over_and_still_reports_the_bond() {
    // The site comes up under the script; Nodewright takes the network over before tick 2, and
    // eno1 loses its cable before tick 3 (the driver fails over to eno2 by itself).
    let (trace, _) = run_with(
        "bond-failover",
        vec![takeover(2, &["generation=1", "network=operator"])],
        "network-operator",
    );
    let mutations: Vec<String> = host_commands_from(&trace, "edge-1", 2)
        .into_iter()
        .filter(|c| {
            c.starts_with("ip link add") || c.starts_with("ip link set") || c.starts_with("ip addr add")
        })
        .collect();
    assert!(
        mutations.is_empty(),
        "the script changed the network: {mutations:#?}"
    );
    let annotations: Vec<String> = by_nodes(&trace)
        .filter(|e| e.tick >= 2 && kubectl_args(e).is_some())
        .map(line)
        .filter(|w| w.contains("vx-rail.io/bond-active="))
        .collect();
    assert!(
        annotations.is_empty(),
        "the script kept bond-active: {annotations:#?}"
    );
    let log = &trace.logs["edge-1"];
    assert!(!log.contains("bond failover detected"), "{log}");
    let skips = log
        .matches(
            "component=network msg=\"workflow owned by nodewright, skipping\" workflow=network \
             mode=operator generation=1\n",
        )
        .count();
    assert_eq!(skips, 5, "ticks 2 to 6 each log the skip once:\n{log}");
    // The bond as it is still reaches the status: eno2 active once eno1 lost its cable.
    for (tick, body) in status_patches(&trace, "edge-1").filter(|(t, _)| *t >= 3) {
        assert!(body.contains(";bond_active=eno2;"), "tick {tick}: {body}");
        assert!(
            body.contains(";storage_vlan=bond0.100:up;"),
            "tick {tick}: {body}"
        );
    }
}

#[test]
fn storage_owned_by_nodewright_starts_registers_and_places_nothing_and_still_reports_what_it_reads() {
    let (trace, cluster) = run_with(
        "bootstrap-single-node",
        vec![takeover(0, &["generation=1", "storage=operator"])],
        "storage-operator",
    );
    let commands = host_commands_from(&trace, "edge-1", 0);
    let mutations: Vec<&String> = commands
        .iter()
        .filter(|c| {
            c.starts_with("modprobe")
                || c.starts_with("systemctl start")
                || (c.starts_with("linstor") && c.contains(" create"))
        })
        .collect();
    assert!(mutations.is_empty(), "the script changed storage: {mutations:#?}");
    let log = &trace.logs["edge-1"];
    let ticks = log.matches("### tick ").count();
    let skips = log
        .matches(
            "component=storage msg=\"workflow owned by nodewright, skipping\" workflow=storage \
             mode=operator generation=1\n",
        )
        .count();
    assert_eq!(skips, ticks, "the skip once per iteration:\n{log}");
    // What it reads is still read and reported: the satellite's state, DRBD, and on the primary
    // the controller's node table.
    assert!(
        commands
            .iter()
            .any(|c| c == "systemctl is-active linstor-satellite"),
        "{commands:#?}"
    );
    assert!(
        commands.iter().any(|c| c == "drbdadm status all"),
        "{commands:#?}"
    );
    assert!(
        commands.iter().any(|c| c == "linstor --no-color node list"),
        "{commands:#?}"
    );
    for (tick, body) in status_patches(&trace, "edge-1") {
        assert!(body.contains(";satellite="), "tick {tick}: {body}");
    }
    let state = cluster
        .config_map("kube-system", "vx-rail-cluster-state")
        .unwrap();
    assert!(state.data.contains_key("linstor-nodes"), "{:?}", state.data);
}

// --- step mode ----------------------------------------------------------------------------------

const STEP_WORLD: &str = r#"
description: a primary with the LINSTOR controller and a bond, and a second node not yet registered
seed: 1
ticks: 0
nodes:
  - name: edge-1
    host: {address: 10.200.0.11, controller: true, bond: [bond0, active-backup], pool: [pool0, vg0/thinpool]}
  - name: edge-2
    host: {address: 10.200.0.12}
resources:
  - {name: pvc-1, size_mib: 1024, nodes: [edge-1], primary: edge-1}
"#;

fn step_world() -> World {
    world_for(&Scenario::from_yaml(STEP_WORLD).unwrap()).unwrap()
}

/// Runs one step on edge-1; panics when the simulation itself fails.
fn step(
    world: &mut World,
    cluster: &mut Cluster,
    config: &RunConfig,
    args: &[&str],
) -> (NodeOutcome, Vec<String>) {
    let (outcome, trace) = run_step(world, cluster, config, "edge-1", args).unwrap();
    let lines: Vec<String> = trace.iter().map(line).collect();
    assert!(
        lines.iter().all(|l| !l.starts_with("kubectl")),
        "step mode touched the cluster: {lines:#?}"
    );
    (outcome, lines)
}

fn non_date(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("date"))
        .collect()
}

#[test]
fn each_mutating_step_run_twice_makes_its_change_once() {
    let config = config("steps-twice");
    let mut world = step_world();
    let mut cluster = Cluster::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["linstor-node-create", "edge-2", "10.200.0.12"],
            "linstor --no-color node create edge-2 10.200.0.12 --node-type satellite",
        ),
        (
            &["storage-pool-create", "edge-2", "pool0", "vg0/thinpool"],
            "linstor --no-color storage-pool create lvmthin edge-2 pool0 vg0/thinpool",
        ),
        (
            &["resource-create", "edge-2", "pvc-1", "pool0"],
            "linstor --no-color resource create edge-2 pvc-1 --storage-pool pool0",
        ),
        (
            &["resource-delete", "edge-2", "pvc-1"],
            "linstor --no-color resource delete edge-2 pvc-1",
        ),
        (
            &["linstor-node-delete", "edge-2"],
            "linstor --no-color node delete edge-2",
        ),
        (
            &["bond-set-active", "bond0", "eno2"],
            "ip link set dev bond0 type bond active_slave eno2",
        ),
    ];
    for (args, mutation) in cases {
        let mut ran = 0;
        for attempt in 1..=2 {
            let (outcome, lines) = step(&mut world, &mut cluster, &config, args);
            assert_eq!(outcome.code, 0, "{args:?} attempt {attempt}: {outcome:#?}");
            assert_eq!(outcome.stdout, "", "{args:?}: a mutating step prints nothing");
            ran += lines.iter().filter(|l| l == mutation).count();
            let done = outcome.stderr.contains("msg=\"already done\"");
            assert_eq!(
                done,
                attempt == 2,
                "{args:?} attempt {attempt}:\n{}",
                outcome.stderr
            );
            assert!(
                outcome.stderr.contains(&format!(
                    "msg=\"step finished\" step={} outcome=ok rc=0\n",
                    args[0]
                )),
                "{}",
                outcome.stderr
            );
        }
        assert_eq!(ran, 1, "{args:?}: {mutation} ran {ran} times");
    }
    let _ = std::fs::remove_dir_all(&config.work_dir);
}

#[test]
fn read_steps_print_the_tool_output_and_nothing_else() {
    let config = config("steps-read");
    let mut world = step_world();
    let mut cluster = Cluster::new();
    let cases: &[(&str, &[&str])] = &[
        ("drbd-status", &["drbdadm", "status", "all"]),
        ("linstor-node-list", &["linstor", "--no-color", "node", "list"]),
        (
            "linstor-storage-pool-list",
            &["linstor", "--no-color", "storage-pool", "list"],
        ),
        (
            "linstor-resource-list",
            &["linstor", "--no-color", "resource", "list"],
        ),
    ];
    for (name, command) in cases {
        let argv: Vec<String> = command.iter().map(|a| (*a).to_owned()).collect();
        let expected = Host::exec(&mut world, "edge-1", &argv);
        assert_eq!(expected.code, 0, "{expected:?}");
        let (outcome, lines) = step(&mut world, &mut cluster, &config, &[name]);
        assert_eq!(outcome.code, 0, "{name}: {outcome:#?}");
        assert_eq!(
            outcome.stdout,
            format!("{}\n", expected.stdout.trim_end_matches('\n')),
            "{name}"
        );
        assert_eq!(
            non_date(&lines),
            [command.join(" ")],
            "{name} runs its one command"
        );
    }
    let _ = std::fs::remove_dir_all(&config.work_dir);
}

#[test]
fn a_step_whose_host_command_fails_exits_one_and_logs_the_failure() {
    let config = config("steps-fail");
    let mut world = step_world();
    let mut cluster = Cluster::new();
    // edge-2 is not registered in LINSTOR: the controller refuses the pool.
    let (outcome, lines) = step(
        &mut world,
        &mut cluster,
        &config,
        &["storage-pool-create", "edge-2", "pool0", "vg0/thinpool"],
    );
    assert_eq!(outcome.code, 1, "{outcome:#?}");
    assert_eq!(outcome.stdout, "");
    assert!(
        outcome.stderr.contains("msg=\"host command failed\""),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("Node 'edge-2' not found."),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome
            .stderr
            .contains("msg=\"step finished\" step=storage-pool-create outcome=error rc=1\n"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        non_date(&lines),
        [
            "linstor --no-color storage-pool list",
            "linstor --no-color storage-pool create lvmthin edge-2 pool0 vg0/thinpool"
        ]
    );
    // A slave the bond does not have is refused before any command runs.
    let (outcome, lines) = step(
        &mut world,
        &mut cluster,
        &config,
        &["bond-set-active", "bond0", "eno9"],
    );
    assert_eq!(outcome.code, 1, "{outcome:#?}");
    assert!(
        outcome
            .stderr
            .contains("msg=\"step refused\" step=bond-set-active reason=\"not a slave of bond0\""),
        "{}",
        outcome.stderr
    );
    assert!(non_date(&lines).is_empty(), "{lines:#?}");
    let _ = std::fs::remove_dir_all(&config.work_dir);
}

#[test]
fn bad_usage_and_unknown_steps_exit_two_with_one_line_and_run_nothing() {
    let config = config("steps-usage");
    let mut world = step_world();
    let mut cluster = Cluster::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["linstor-node-create", "edge-2"],
            "usage: vx-rail-node-init.sh step linstor-node-create <node> <ip>\n",
        ),
        (
            &["resource-delete", "edge-2", "pvc-1", "extra"],
            "usage: vx-rail-node-init.sh step resource-delete <node> <resource>\n",
        ),
        (
            &["resource-create", "edge-2", "--all", "pool0"],
            "usage: vx-rail-node-init.sh step resource-create <node> <resource> <pool>\n",
        ),
        (
            &["drbd-status", "all"],
            "usage: vx-rail-node-init.sh step drbd-status\n",
        ),
    ];
    for (args, message) in cases {
        let (outcome, lines) = step(&mut world, &mut cluster, &config, args);
        assert_eq!(outcome.code, 2, "{args:?}: {outcome:#?}");
        assert_eq!(outcome.stdout, "", "{args:?}");
        assert_eq!(outcome.stderr, *message, "{args:?}");
        assert!(lines.is_empty(), "{args:?} ran {lines:#?}");
    }
    for args in [&["frobnicate", "x"][..], &[][..]] {
        let (outcome, lines) = step(&mut world, &mut cluster, &config, args);
        assert_eq!(outcome.code, 2, "{args:?}: {outcome:#?}");
        assert_eq!(outcome.stdout, "");
        assert_eq!(outcome.stderr.lines().count(), 1, "{}", outcome.stderr);
        assert!(
            outcome.stderr.contains("steps: linstor-node-create, "),
            "{}",
            outcome.stderr
        );
        if let Some(name) = args.first() {
            assert!(
                outcome
                    .stderr
                    .starts_with(&format!("vx-rail-node-init.sh: unknown step \"{name}\"")),
                "{}",
                outcome.stderr
            );
        }
        assert!(lines.is_empty(), "{lines:#?}");
    }
    let _ = std::fs::remove_dir_all(&config.work_dir);
}
