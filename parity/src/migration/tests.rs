//! The migration decision replayed from fixtures: each phase, the rollback and the legacy key.
#![allow(clippy::unwrap_used, clippy::panic)]
use super::*;
use nodewright_api::common::{ClusterRef, PhaseTransition, WorkflowOwner};
use nodewright_parsers::{parse_cluster_blob, parse_members, parse_network_plan};

const UID: &str = "0a1b2c3d-0000-4000-8000-000000000000";

fn spec() -> MigrationSpec {
    MigrationSpec {
        owner: WorkflowOwner::Operator,
        cluster_ref: ClusterRef { name: "site".into() },
        source_node: "edge-1".into(),
        joining_nodes: vec!["edge-2".into(), "edge-3".into()],
        replicas: Some(3),
        rollback: false,
    }
}

fn at(unix: i64) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    nodewright_kit::clock::time(unix)
}

fn in_phase(history: &[(Phase, i64)]) -> MigrationStatus {
    MigrationStatus {
        phase: history.last().map(|(p, _)| *p),
        history: history
            .iter()
            .map(|(p, t)| PhaseTransition {
                phase: *p,
                at: at(*t),
                message: None,
            })
            .collect(),
        ..MigrationStatus::default()
    }
}

fn node(reported_at: i64) -> NodeFacts {
    NodeFacts {
        exists: true,
        role_label: None,
        reported_at: Some(reported_at),
        net_ok: true,
        storage_vlan: Some("bond0.100:up".into()),
        local_uptodate: true,
        syncing: false,
        peers: BTreeMap::new(),
    }
}

fn facts(now: i64) -> Facts {
    Facts {
            now,
            stale_after: 300,
            timeout: DEFAULT_TIMEOUT,
            cluster: Some(
                parse_cluster_blob("primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=100;schema=4")
                    .unwrap(),
            ),
            members: parse_members(
                "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,100\nedge-2,10.100.0.12/24,joining,200\nedge-3,10.100.0.13/24,joining,200",
            )
            .unwrap(),
            plan: Some(
                parse_network_plan(r#"{"version":1,"bond":{"name":"bond0","mode":"active-backup","miimon":100,"slaves":["eno1","eno2"]},"storageVlan":{"id":100,"prefixLength":24},"mgmtVlan":{"id":200},"nodes":[]}"#)
                    .unwrap(),
            ),
            linstor_nodes: BTreeMap::new(),
            nodes: ["edge-1", "edge-2", "edge-3"]
                .iter()
                .map(|n| ((*n).to_owned(), node(now - 10)))
                .collect(),
        }
}

fn done(request: &TaskRequest, output: &str) -> TaskResult {
    TaskResult {
        request: request.clone(),
        phase: Some(NodeTaskPhase::Succeeded),
        output: Some(output.into()),
        message: None,
    }
}

fn tasks_of(d: &Decision) -> Vec<TaskRequest> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Task(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn preflight_waits_for_a_joining_node_without_a_fresh_report_then_passes() {
    let mut f = facts(10_000);
    f.nodes.get_mut("edge-3").unwrap().reported_at = Some(10_000 - 400);
    let status = in_phase(&[(Phase::Preflight, 9_990)]);
    let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
    assert_eq!(
        d.outcome,
        Outcome::Wait("preflight waiting: edge-3(no-heartbeat)".into())
    );
    f.nodes.get_mut("edge-3").unwrap().reported_at = Some(9_995);
    let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
    assert_eq!(d.outcome, Outcome::Enter(Phase::PreparingNetwork, None));
}

#[test]
fn joining_labels_the_nodes_and_registering_asks_the_source_agent_once_per_node() {
    let f = facts(10_000);
    let d = decide(
        &spec(),
        UID,
        &in_phase(&[(Phase::JoiningNodes, 9_990)]),
        &f,
        &BTreeMap::new(),
    );
    assert_eq!(d.actions.len(), 2);
    assert_eq!(d.outcome, Outcome::Enter(Phase::RegisteringSatellites, None));

    let status = in_phase(&[(Phase::RegisteringSatellites, 9_990)]);
    let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
    let asked = tasks_of(&d);
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0].node, "edge-1");
    assert_eq!(asked[0].step, StepName::LinstorNodeCreate);
    assert_eq!(asked[0].args, vec!["edge-2".to_owned(), "10.100.0.12".to_owned()]);
    assert_eq!(asked[0].key, "mig-0a1b2c3d-register-edge-2");
    // Deciding again while the tasks exist creates nothing new.
    let running: BTreeMap<String, TaskResult> = asked
        .iter()
        .map(|t| {
            (
                t.key.clone(),
                TaskResult {
                    request: t.clone(),
                    phase: Some(NodeTaskPhase::Running),
                    output: None,
                    message: None,
                },
            )
        })
        .collect();
    let again = decide(&spec(), UID, &status, &f, &running);
    assert!(again.actions.is_empty());
    assert!(matches!(again.outcome, Outcome::Wait(_)));
    // Done, but the satellites are not Online yet in the primary's linstor-nodes report.
    let finished: BTreeMap<String, TaskResult> = asked.iter().map(|t| (t.key.clone(), done(t, ""))).collect();
    let d = decide(&spec(), UID, &status, &f, &finished);
    assert_eq!(
        d.outcome,
        Outcome::Wait("waiting for satellites to come online: edge-2(not listed) edge-3(not listed)".into())
    );
    let mut f = f;
    f.linstor_nodes = [("edge-2", "Online"), ("edge-3", "Online")]
        .map(|(n, s)| (n.to_owned(), s.to_owned()))
        .into();
    let d = decide(&spec(), UID, &status, &f, &finished);
    assert_eq!(d.outcome, Outcome::Enter(Phase::CreatingStoragePools, None));
}

#[test]
fn replicas_are_placed_from_the_sources_resource_list_up_to_the_wanted_count() {
    let f = facts(10_000);
    let status = in_phase(&[(Phase::PlacingReplicas, 9_990)]);
    let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
    let list = tasks_of(&d);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].step, StepName::LinstorResourceList);
    let table = "\
+-------------------------------------------------------------------+
| ResourceName | Node   | Port | Usage  | Conns | State    | CreatedOn |
|===================================================================|
| pvc-1        | edge-1 | 7000 | InUse  | Ok    | UpToDate |           |
| pvc-2        | edge-1 | 7001 | Unused | Ok    | UpToDate |           |
| pvc-2        | edge-3 | 7001 | Unused | Ok    | UpToDate |           |
+-------------------------------------------------------------------+
";
    let tasks = BTreeMap::from([(list[0].key.clone(), done(&list[0], table))]);
    let d = decide(&spec(), UID, &status, &f, &tasks);
    let creates: Vec<(String, String)> = tasks_of(&d)
        .into_iter()
        .map(|t| (t.args[0].clone(), t.args[1].clone()))
        .collect();
    assert_eq!(
        creates,
        vec![
            ("edge-2".into(), "pvc-1".into()),
            ("edge-3".into(), "pvc-1".into()),
            ("edge-2".into(), "pvc-2".into())
        ]
    );
}

#[test]
fn the_resync_wait_needs_a_report_made_after_the_replicas_were_placed() {
    let mut f = facts(10_000);
    let status = in_phase(&[(Phase::WaitingForResync, 9_995)]);
    let create = TaskRequest {
        key: task_key(UID, Phase::PlacingReplicas, "edge-2-pvc-1"),
        node: "edge-1".into(),
        step: StepName::ResourceCreate,
        args: vec!["edge-2".into(), "pvc-1".into(), "pool0".into()],
    };
    let tasks = BTreeMap::from([(create.key.clone(), done(&create, ""))]);
    // edge-1 reported before the phase started, without the new peer: wait.
    let d = decide(&spec(), UID, &status, &f, &tasks);
    assert!(
        matches!(&d.outcome, Outcome::Wait(w) if w.contains("after the replicas were placed")),
        "{d:?}"
    );
    let source = f.nodes.get_mut("edge-1").unwrap();
    source.reported_at = Some(9_999);
    source.peers = BTreeMap::from([(
        "pvc-1".to_owned(),
        BTreeMap::from([("edge-2".to_owned(), "Inconsistent".to_owned())]),
    )]);
    let d = decide(&spec(), UID, &status, &f, &tasks);
    assert_eq!(
        d.outcome,
        Outcome::Wait("waiting for the new replicas to be UpToDate: pvc-1@edge-2(Inconsistent)".into())
    );
    f.nodes
        .get_mut("edge-1")
        .unwrap()
        .peers
        .get_mut("pvc-1")
        .unwrap()
        .insert("edge-2".into(), "UpToDate".into());
    let d = decide(&spec(), UID, &status, &f, &tasks);
    assert_eq!(d.outcome, Outcome::Enter(Phase::Finalizing, None));
}

#[test]
fn finalizing_makes_the_site_multi_node_with_the_joined_nodes_as_members() {
    let f = facts(10_000);
    let d = decide(
        &spec(),
        UID,
        &in_phase(&[(Phase::Finalizing, 9_990)]),
        &f,
        &BTreeMap::new(),
    );
    assert_eq!(
            d.actions[0],
            Action::ClusterState {
                cluster: "primary=edge-1;topology=multi;replicas=3;storage_pool=pool0;created=100;schema=4".into(),
                members: "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,100\nedge-2,10.100.0.12/24,member,200\nedge-3,10.100.0.13/24,member,200".into(),
            }
        );
    assert_eq!(d.outcome, Outcome::Enter(Phase::Completed, None));
}

#[test]
fn a_failed_step_rolls_back_and_the_rollback_undoes_replicas_before_satellites() {
    let f = facts(10_000);
    let reg = TaskRequest {
        key: task_key(UID, Phase::RegisteringSatellites, "edge-2"),
        node: "edge-1".into(),
        step: StepName::LinstorNodeCreate,
        args: vec!["edge-2".into(), "10.100.0.12".into()],
    };
    let place = TaskRequest {
        key: task_key(UID, Phase::PlacingReplicas, "edge-2-pvc-1"),
        node: "edge-1".into(),
        step: StepName::ResourceCreate,
        args: vec!["edge-2".into(), "pvc-1".into(), "pool0".into()],
    };
    let mut failed = done(&place, "");
    failed.phase = Some(NodeTaskPhase::Failed);
    failed.message = Some("resource create exited 1".into());
    let list = TaskRequest {
        key: task_key(UID, Phase::PlacingReplicas, "list-edge-1"),
        node: "edge-1".into(),
        step: StepName::LinstorResourceList,
        args: vec![],
    };
    let table = "| ResourceName | Node   | Port | Usage | Conns | State    |\n|==========|\n| pvc-1 | edge-1 | 7000 | InUse | Ok | UpToDate |\n";
    let tasks = BTreeMap::from([
        (reg.key.clone(), done(&reg, "")),
        (list.key.clone(), done(&list, table)),
        (place.key.clone(), failed),
    ]);
    let d = decide(
        &spec(),
        UID,
        &in_phase(&[(Phase::PlacingReplicas, 9_990)]),
        &f,
        &tasks,
    );
    let Outcome::Enter(Phase::RollingBack, Some(why)) = &d.outcome else {
        panic!("{d:?}");
    };
    assert!(why.contains("resource-create edge-2 pvc-1 pool0 on edge-1 failed: resource create exited 1"));

    // The failed create may have placed its replica all the same: the rollback deletes it (the
    // delete checks first), then the satellite.
    let status = in_phase(&[(Phase::PlacingReplicas, 9_990), (Phase::RollingBack, 9_995)]);
    let d = decide(&spec(), UID, &status, &f, &tasks);
    let undo = tasks_of(&d);
    assert_eq!(undo.len(), 1);
    assert_eq!(undo[0].step, StepName::ResourceDelete);
    assert_eq!(undo[0].args, vec!["edge-2".to_owned(), "pvc-1".to_owned()]);
    let mut tasks = tasks;
    tasks.insert(undo[0].key.clone(), done(&undo[0], ""));
    let d = decide(&spec(), UID, &status, &f, &tasks);
    let undo = tasks_of(&d);
    assert_eq!(undo.len(), 1);
    assert_eq!(undo[0].step, StepName::LinstorNodeDelete);
    assert_eq!(undo[0].args, vec!["edge-2".to_owned()]);
    tasks.insert(undo[0].key.clone(), done(&undo[0], ""));
    let d = decide(&spec(), UID, &status, &f, &tasks);
    assert_eq!(d.outcome, Outcome::Enter(Phase::RolledBack, None));
}

/// A migration rolling back since `since`, whose satellite create timed out with its outcome
/// unknown, and whose undo of it is still `phase`.
fn rolling_back_with_an_unknown_create(
    undo_phase: Option<NodeTaskPhase>,
) -> (MigrationStatus, BTreeMap<String, TaskResult>, TaskRequest) {
    let reg = TaskRequest {
        key: task_key(UID, Phase::RegisteringSatellites, "edge-2"),
        node: "edge-1".into(),
        step: StepName::LinstorNodeCreate,
        args: vec!["edge-2".into(), "10.100.0.12".into()],
    };
    let mut unknown = done(&reg, "");
    unknown.phase = Some(NodeTaskPhase::Unknown);
    let undo = TaskRequest {
        key: task_key(UID, Phase::RollingBack, "node-delete-edge-2"),
        node: "edge-1".into(),
        step: StepName::LinstorNodeDelete,
        args: vec!["edge-2".into()],
    };
    let mut tasks = BTreeMap::from([(reg.key.clone(), unknown)]);
    if let Some(phase) = undo_phase {
        let mut t = done(&undo, "");
        t.phase = Some(phase);
        t.message = Some("linstor: connection refused".into());
        tasks.insert(undo.key.clone(), t);
    }
    let status = in_phase(&[(Phase::RegisteringSatellites, 1_000), (Phase::RollingBack, 2_000)]);
    (status, tasks, undo)
}

#[test]
fn a_rollback_undoes_a_create_whose_outcome_is_unknown() {
    let (status, tasks, undo) = rolling_back_with_an_unknown_create(None);
    let d = decide(&spec(), UID, &status, &facts(2_010), &tasks);
    assert_eq!(tasks_of(&d), vec![undo]);
    assert!(matches!(d.outcome, Outcome::Wait(_)), "{d:?}");
}

#[test]
fn a_rollback_still_waiting_at_its_deadline_fails_and_names_what_it_could_not_undo() {
    let (status, tasks, _) = rolling_back_with_an_unknown_create(Some(NodeTaskPhase::Running));
    // Within the deadline it waits.
    let d = decide(&spec(), UID, &status, &facts(2_000 + DEFAULT_TIMEOUT), &tasks);
    assert!(matches!(d.outcome, Outcome::Wait(_)), "{d:?}");
    // Past it, it gives up, naming the undo that did not happen.
    let d = decide(&spec(), UID, &status, &facts(2_001 + DEFAULT_TIMEOUT), &tasks);
    assert!(d.actions.is_empty(), "{d:?}");
    let Outcome::Enter(Phase::Failed, Some(why)) = &d.outcome else {
        panic!("{d:?}");
    };
    assert!(why.starts_with(ROLLBACK_INCOMPLETE), "{why}");
    assert!(
        why.contains("linstor-node-delete edge-2 (Running: linstor: connection refused)"),
        "{why}"
    );
}

#[test]
fn a_rollback_whose_undo_failed_fails_at_once_without_waiting_for_the_deadline() {
    let (status, tasks, _) = rolling_back_with_an_unknown_create(Some(NodeTaskPhase::Failed));
    let d = decide(&spec(), UID, &status, &facts(2_010), &tasks);
    let Outcome::Enter(Phase::Failed, Some(why)) = &d.outcome else {
        panic!("{d:?}");
    };
    assert!(why.contains("rollback failed") && why.contains("edge-2"), "{why}");
}

#[test]
fn a_rollback_after_finalizing_puts_the_site_back_to_single_node() {
    let f = facts(10_000);
    let place = TaskRequest {
        key: task_key(UID, Phase::PlacingReplicas, "edge-2-pvc-1"),
        node: "edge-1".into(),
        step: StepName::ResourceCreate,
        args: vec!["edge-2".into(), "pvc-1".into(), "pool0".into()],
    };
    let tasks = BTreeMap::from([(place.key.clone(), done(&place, ""))]);
    let status = in_phase(&[(Phase::Finalizing, 9_990), (Phase::RollingBack, 9_995)]);
    let d = decide(&spec(), UID, &status, &f, &tasks);
    let Action::ClusterState { cluster, members } = &d.actions[0] else {
        panic!("{d:?}");
    };
    assert!(cluster.contains("topology=single;replicas=1"));
    assert!(members.contains("edge-2,10.100.0.12/24,joining"));
    let undo = tasks_of(&d);
    assert_eq!(undo[0].step, StepName::ResourceDelete);
    assert_eq!(undo[0].args, vec!["edge-2".to_owned(), "pvc-1".to_owned()]);
}

#[test]
fn a_requested_rollback_or_a_phase_that_waits_too_long_rolls_back() {
    let f = facts(10_000);
    let mut s = spec();
    s.rollback = true;
    let d = decide(
        &s,
        UID,
        &in_phase(&[(Phase::Preflight, 9_990)]),
        &f,
        &BTreeMap::new(),
    );
    assert_eq!(
        d.outcome,
        Outcome::Enter(Phase::RollingBack, Some("rollback requested".into()))
    );
    let d = decide(
        &spec(),
        UID,
        &in_phase(&[(Phase::Preflight, 10_000 - 1801)]),
        &f,
        &BTreeMap::new(),
    );
    assert_eq!(
        d.outcome,
        Outcome::Enter(
            Phase::RollingBack,
            Some("timed out after 1800s in PREFLIGHT".into())
        )
    );
}

#[test]
fn the_legacy_key_mirrors_the_phase_and_says_the_operator_owns_it() {
    let mut status = in_phase(&[(Phase::Pending, 100), (Phase::Preflight, 110)]);
    status.started_at = Some(at(100));
    assert_eq!(
        legacy_blob(&spec(), &status).unwrap(),
        "phase=PREFLIGHT;source=edge-1;joining=edge-2,edge-3;replicas=3;since=110;started=100;owner=operator"
    );
}

#[test]
fn a_node_name_that_does_not_validate_is_never_written_into_the_legacy_key() {
    let status = in_phase(&[(Phase::Pending, 100), (Phase::Preflight, 110)]);
    let mut bad = spec();
    bad.joining_nodes[1] = "edge-3;since=a[$(reboot)]".into();
    let e = legacy_blob(&bad, &status).unwrap_err();
    assert_eq!((e.key, e.field.as_str()), ("migration", "spec.joiningNodes[1]"));
    assert!(e.to_string().contains("is not a node name"), "{e}");
    let mut bad = spec();
    bad.source_node = "Edge_1".into();
    assert_eq!(legacy_blob(&bad, &status).unwrap_err().field, "spec.sourceNode");
}

#[test]
fn a_message_cannot_end_a_field_or_a_line_of_the_legacy_key() {
    let mut status = in_phase(&[(Phase::Pending, 100), (Phase::RollingBack, 110)]);
    status.history[1].message = Some("a;since=x\nb\rc\td".into());
    let blob = legacy_blob(&spec(), &status).unwrap();
    assert!(blob.ends_with(";msg=a,since=x,b,c,d;owner=operator"), "{blob}");
}

#[test]
fn a_migration_with_an_invalid_node_name_fails_at_once_and_does_nothing() {
    let mut bad = spec();
    bad.source_node = "edge-1 --all".into();
    for phase in [Phase::Pending, Phase::PlacingReplicas, Phase::RollingBack] {
        let d = decide(
            &bad,
            UID,
            &in_phase(&[(phase, 100)]),
            &facts(110),
            &BTreeMap::new(),
        );
        assert!(d.actions.is_empty(), "{phase:?}: {d:?}");
        let Outcome::Enter(Phase::Failed, Some(msg)) = &d.outcome else {
            panic!("{phase:?}: {d:?}")
        };
        assert!(
            msg.contains("spec.sourceNode") && msg.contains("\"edge-1 --all\""),
            "{msg}"
        );
    }
}

#[test]
fn the_site_keys_are_written_back_only_when_their_values_validate() {
    let c = parse_cluster_blob(
        "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=100;schema=4",
    )
    .unwrap();
    assert_eq!(
        cluster_blob(&c, "multi", 3).unwrap(),
        "primary=edge-1;topology=multi;replicas=3;storage_pool=pool0;created=100;schema=4"
    );
    let mut bad = c.clone();
    bad.primary = "edge-1$(reboot)".into();
    let e = cluster_blob(&bad, "multi", 3).unwrap_err();
    assert_eq!((e.key, e.field.as_str()), ("cluster", "primary"));
    let mut bad = c.clone();
    bad.storage_pool = "pool0 --all".into();
    let e = cluster_blob(&bad, "multi", 3).unwrap_err();
    assert!(e.to_string().contains("not a storage pool name"), "{e}");

    let members = parse_members(
        "node,storage_ip,role,joined\nedge-1,10.10.100.11/24,primary,100\nedge-2,10.10.100.12/24,joining,200",
    )
    .unwrap();
    assert_eq!(
        members_csv(&members, &["edge-2".to_owned()], "member").unwrap(),
        "node,storage_ip,role,joined\nedge-1,10.10.100.11/24,primary,100\nedge-2,10.10.100.12/24,member,200"
    );
    let mut bad = members.clone();
    bad[1].storage_ip = "10.10.100.12/99".into();
    let e = members_csv(&bad, &[], "member").unwrap_err();
    assert_eq!((e.key, e.field.as_str()), ("members", "row 2 storage_ip"));
    let mut bad = members.clone();
    bad[0].node = "EDGE_1".into();
    assert_eq!(members_csv(&bad, &[], "member").unwrap_err().field, "row 1 node");
}

#[test]
fn a_finalize_whose_site_keys_do_not_validate_rolls_back_instead_of_writing_them() {
    let mut f = facts(1000);
    if let Some(c) = f.cluster.as_mut() {
        c.storage_pool = "pool;0".into();
    }
    let d = decide(
        &spec(),
        UID,
        &in_phase(&[(Phase::Finalizing, 990)]),
        &f,
        &BTreeMap::new(),
    );
    assert!(d.actions.is_empty(), "{d:?}");
    assert!(
        matches!(&d.outcome, Outcome::Enter(Phase::RollingBack, Some(m)) if m.contains("legacy `cluster` key is not written")),
        "{d:?}"
    );
}

#[test]
fn a_rollback_whose_site_keys_do_not_validate_still_undoes_the_rest_and_ends_failed_saying_why() {
    let mut f = facts(1000);
    if let Some(c) = f.cluster.as_mut() {
        c.primary = "edge-1;topology=multi".into();
    }
    let status = in_phase(&[(Phase::Finalizing, 900), (Phase::RollingBack, 990)]);
    let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::ClusterState { .. })),
        "{d:?}"
    );
    assert!(
        d.actions.iter().any(|a| matches!(a, Action::RoleLabel { .. })),
        "the role labels are still undone: {d:?}"
    );
    assert!(
        matches!(&d.outcome, Outcome::Enter(Phase::Failed, Some(m)) if m.starts_with("rollback failed: the legacy `cluster` key is not written: primary")),
        "{d:?}"
    );
}
