//! The status computation end to end: an index built from legacy objects, observed at a time.

use super::*;
use crate::convert::{migration_phase, upgrade_state};
use crate::index::LegacyNames;
use crate::index::tests::{STATUS, config_map, node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use nodewright_api::bondflip::BondFlipPhase;
use nodewright_api::common::find_condition;
use nodewright_api::common::{WorkflowOwner, condition_type as ct};
use nodewright_api::edgecluster::Topology;
use nodewright_api::edgenode::{BondMode, TaintEffect};
use nodewright_api::migration::MigrationPhase;
use nodewright_api::storageupgrade::UpgradeState;
use nodewright_parsers as p;

const NOW: i64 = 1_714_557_900;

fn site() -> Index {
    let mut index = Index::new(LegacyNames::default());
    index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[
                    ("cluster", "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=1714557600;schema=4"),
                    ("members", "node,storage_ip,role,joined\nedge-1,10.10.100.11/24,primary,1714557600"),
                ],
            ),
            NOW,
        );
    index.apply_config_map(
        &config_map(
            "vx-rail-node-edge-1",
            &[
                ("status", STATUS),
                ("heartbeat", "2024-05-01T10:04:52Z"),
                ("script-version", "4.12.3"),
            ],
        ),
        NOW,
    );
    index.apply_node(
        &node(
            "edge-1",
            &[
                ("vx-rail.io/state", "ready"),
                (
                    "vx-rail.io/last-run",
                    "ts=2024-05-01T10:04:52Z;version=4.12.3;outcome=ok;step=finished;rc=0;duration=5",
                ),
            ],
            &[("vx-rail.io/role", "primary")],
        ),
        NOW,
    );
    index
}

fn cond<'a>(conditions: &'a [Condition], t: &str) -> (&'a str, &'a str) {
    let c = find_condition(conditions, t).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn a_healthy_single_node_site_is_ready_at_node_and_cluster_level() {
    let obs = observe(&site(), &ObserveConfig::default(), NOW, None);
    let n = &obs.nodes["edge-1"].status;
    assert_eq!(cond(&n.conditions, ct::READY), ("True", "Ready"));
    assert_eq!(
        cond(&n.conditions, ct::NETWORK_DEGRADED),
        ("False", "NetworkHealthy")
    );
    assert_eq!(
        cond(&n.conditions, ct::LEGACY_STALE),
        ("False", "HeartbeatRecent")
    );
    assert_eq!(n.bonds[0].mode, BondMode::ActiveBackup);
    assert_eq!(n.vlans[0].addresses, ["10.10.100.11/24"]);
    let c = obs.cluster.unwrap();
    assert_eq!(c.spec.profile.topology, Topology::SingleNode);
    assert_eq!(cond(&c.status.conditions, ct::READY), ("True", "AllNodesReady"));
    assert_eq!(c.status.legacy_version.as_deref(), Some("4.12.3"));
    assert_eq!(c.status.nodes.unwrap().ready, 1);
}

#[test]
fn updating_only_what_changed_gives_the_full_observation() {
    let mut index = site();
    let mut n2 = node("edge-2", &[("vx-rail.io/state", "ready")], &[]);
    n2.metadata.labels = None;
    index.apply_node(&n2, NOW);
    index.apply_config_map(&config_map("vx-rail-node-edge-2", &[("status", STATUS)]), NOW);
    let mut last = observe(&index, &ObserveConfig::default(), NOW, None);
    index.take_dirty();
    let degraded = STATUS.replace("net=ok", "net=degraded");
    index.apply_config_map(&config_map("vx-rail-node-edge-2", &[("status", &degraded)]), NOW);
    let full = observe(&index, &ObserveConfig::default(), NOW + 5, Some(&last));
    let dirty = index.take_dirty();
    assert_eq!(dirty.nodes.iter().collect::<Vec<_>>(), ["edge-2"]);
    observe_changed(&index, &ObserveConfig::default(), NOW + 5, &mut last, &dirty);
    assert_eq!(last, full);
    let c = last.cluster.unwrap();
    assert_eq!(
        cond(&c.status.conditions, ct::NETWORK_DEGRADED),
        ("True", "NetworkDegraded")
    );
}

#[test]
fn a_node_that_leaves_is_dropped_by_an_update_of_only_what_changed() {
    let mut index = site();
    index.apply_node(&node("edge-2", &[("vx-rail.io/state", "ready")], &[]), NOW);
    index.apply_config_map(&config_map("vx-rail-node-edge-2", &[("status", STATUS)]), NOW);
    let mut last = observe(&index, &ObserveConfig::default(), NOW, None);
    index.take_dirty();
    index.delete_node("edge-2");
    index.delete_config_map("kube-system", "vx-rail-node-edge-2");
    let full = observe(&index, &ObserveConfig::default(), NOW + 5, Some(&last));
    let dirty = index.take_dirty();
    assert!(!dirty.all);
    observe_changed(&index, &ObserveConfig::default(), NOW + 5, &mut last, &dirty);
    assert_eq!(last.nodes.keys().collect::<Vec<_>>(), ["edge-1"]);
    assert_eq!(last, full);
}

#[test]
fn the_same_index_and_time_give_the_same_observation() {
    let index = site();
    let a = observe(&index, &ObserveConfig::default(), NOW, None);
    let b = observe(&index, &ObserveConfig::default(), NOW + 10, Some(&a));
    assert_eq!(
        a, b,
        "nothing changed, so nothing may differ, not even transition times"
    );
}

#[test]
fn a_node_without_a_heartbeat_inside_the_window_is_legacy_stale_and_not_ready() {
    let index = site();
    let first = observe(&index, &ObserveConfig::default(), NOW, None);
    let later = observe(&index, &ObserveConfig::default(), NOW + 301, Some(&first));
    let n = &later.nodes["edge-1"].status;
    assert_eq!(cond(&n.conditions, ct::LEGACY_STALE), ("True", "HeartbeatMissed"));
    assert_eq!(cond(&n.conditions, ct::READY), ("False", "LegacyStale"));
    let ready = find_condition(&n.conditions, ct::READY).unwrap();
    assert_eq!(ready.last_transition_time, time(NOW + 301));
    let c = later.cluster.unwrap();
    assert_eq!(
        cond(&c.status.conditions, ct::LEGACY_STALE),
        ("True", "HeartbeatMissed")
    );
}

#[test]
fn a_degraded_network_names_the_cause() {
    let mut index = site();
    let degraded = STATUS
        .replace("net=ok", "net=degraded")
        .replace("eno2:up:0", "eno2:down:3");
    index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", &degraded)]), NOW);
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    let n = &obs.nodes["edge-1"].status;
    assert_eq!(cond(&n.conditions, ct::NETWORK_DEGRADED), ("True", "SlaveDown"));
    assert_eq!(cond(&n.conditions, ct::READY), ("False", "NetworkDegraded"));
    assert_eq!(n.bonds[0].slaves[1].link_failures, 3);
}

#[test]
fn a_storage_taint_makes_storage_degraded_with_its_reason() {
    let mut index = site();
    let mut n = node("edge-1", &[("vx-rail.io/state", "degraded")], &[]);
    n.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
        taints: Some(vec![k8s_openapi::api::core::v1::Taint {
            key: "vx-rail.io/storage-not-ready".into(),
            value: Some("resync".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        }]),
        ..Default::default()
    });
    index.apply_node(&n, NOW);
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    let s = &obs.nodes["edge-1"].status;
    assert_eq!(cond(&s.conditions, ct::STORAGE_DEGRADED), ("True", "Resyncing"));
    assert_eq!(s.managed_taints[0].effect, TaintEffect::NoSchedule);
}

#[test]
fn a_malformed_blob_sets_parse_errors_and_keeps_the_last_good_observation() {
    let mut index = site();
    let bad = STATUS.replace("uptodate=1", "uptodate=x");
    index.apply_config_map(
        &config_map(
            "vx-rail-node-edge-1",
            &[("status", &bad), ("heartbeat", "2024-05-01T10:04:52Z")],
        ),
        NOW,
    );
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    let s = &obs.nodes["edge-1"].status;
    let pe = find_condition(&s.conditions, ct::PARSE_ERRORS).unwrap();
    assert_eq!(
        (pe.status.as_str(), pe.reason.as_str()),
        ("True", "MalformedLegacyState")
    );
    let column = bad.find("uptodate=x").unwrap() + "uptodate=".len() + 1;
    assert!(
        pe.message.contains(&format!(
            "configmap/kube-system/vx-rail-node-edge-1:status at 1:{column}"
        )),
        "{}",
        pe.message
    );
    assert_eq!(s.parse_diagnostics[0].column, column as i64);
    assert_eq!(s.bonds.len(), 1, "the last good status is still shown");
}

#[test]
fn a_running_upgrade_becomes_a_legacy_owned_storage_upgrade_with_per_node_history() {
    let mut index = site();
    index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[("upgrade", "state=WAIT_RESYNC;from=9.2.5;to=9.2.8;order=edge-1,edge-2;node=edge-2;done=edge-1;rolled=;by=edge-1;started=1714560000;since=1714560420")],
            ),
            NOW,
        );
    index.apply_node(
        &node(
            "edge-2",
            &[(
                "vx-rail.io/upgrade-state",
                "state=UP_RESOURCES;to=9.2.8;since=1714560400",
            )],
            &[],
        ),
        NOW,
    );
    index.apply_node(
        &node(
            "edge-2",
            &[(
                "vx-rail.io/upgrade-state",
                "state=WAIT_RESYNC;to=9.2.8;since=1714560420",
            )],
            &[],
        ),
        NOW,
    );
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    let u = &obs.upgrades[0];
    assert_eq!(u.name, "legacy-upgrade-1714560000");
    assert_eq!(u.spec.owner, WorkflowOwner::Legacy);
    assert_eq!(u.status.state, Some(UpgradeState::WaitResync));
    assert_eq!(u.status.current_node.as_deref(), Some("edge-2"));
    assert_eq!(u.status.nodes[0].state, UpgradeState::Completed);
    let states: Vec<_> = u.status.nodes[1].history.iter().map(|h| h.phase).collect();
    assert_eq!(states, [UpgradeState::UpResources, UpgradeState::WaitResync]);
    let c = obs.cluster.unwrap();
    assert_eq!(
        cond(&c.status.conditions, ct::UPGRADE_IN_PROGRESS),
        ("True", "WaitResync")
    );
}

#[test]
fn two_nodes_upgrading_at_once_are_reported_as_concurrent() {
    let mut index = site();
    index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[("upgrade", "state=PREFLIGHT;from=9.2.5;to=9.2.8;order=edge-2,edge-1;node=edge-2;done=;rolled=;by=edge-2;started=1714560000;since=1714560000")],
            ),
            NOW,
        );
    for n in ["edge-1", "edge-2"] {
        index.apply_node(
            &node(
                n,
                &[(
                    "vx-rail.io/upgrade-state",
                    "state=QUORUM_CHECK;to=9.2.8;since=1714560001",
                )],
                &[],
            ),
            NOW,
        );
    }
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    let c = &obs.upgrades[0].status.conditions;
    assert_eq!(cond(c, "ConcurrentNodes"), ("True", "MoreThanOneNodeUpgrading"));
}

#[test]
fn a_finished_migration_is_a_completed_legacy_migration() {
    let mut index = site();
    index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[("migration", "phase=COMPLETED;source=edge-1;joining=edge-2;replicas=2;since=1714558100;started=1714557990;finished=1714558100")],
            ),
            NOW,
        );
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    let m = &obs.migrations[0];
    assert!(m.name.starts_with("legacy-migration-edge-1-"), "{}", m.name);
    assert_eq!(m.spec.joining_nodes, ["edge-2"]);
    assert_eq!(m.spec.replicas, Some(2));
    assert_eq!(m.status.phase, Some(MigrationPhase::Completed));
    assert_eq!(cond(&m.status.conditions, ct::COMPLETE), ("True", "Completed"));
}

#[test]
fn a_migration_the_operator_mirrors_into_the_legacy_key_is_not_observed_as_a_legacy_one() {
    let mut index = site();
    index.apply_config_map(
        &config_map(
            "vx-rail-cluster-state",
            &[(
                "migration",
                "phase=PREFLIGHT;source=edge-1;joining=edge-2;replicas=2;since=1714558100;owner=operator",
            )],
        ),
        NOW,
    );
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    assert!(obs.migrations.is_empty(), "{:?}", obs.migrations);
}

#[test]
fn a_requested_bond_flip_keeps_its_starting_state_once_applied() {
    let mut index = site();
    let cluster = |flip: &str| config_map("vx-rail-cluster-state", &[("bond-flip.edge-1", flip)]);
    index.apply_config_map(
        &cluster("action=mode;value=802.3ad;state=requested;id=7;requested=1714557000"),
        NOW,
    );
    let first = observe(&index, &ObserveConfig::default(), NOW, None);
    assert_eq!(first.bond_flips[0].spec.from.mode, BondMode::ActiveBackup);
    index.apply_config_map(
        &cluster("action=mode;value=802.3ad;state=applied;id=7;requested=1714557000;done=1714557518"),
        NOW,
    );
    let applied = STATUS.replace("bond_mode=active-backup", "bond_mode=802.3ad");
    index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", &applied)]), NOW);
    let second = observe(&index, &ObserveConfig::default(), NOW, Some(&first));
    let f = &second.bond_flips[0];
    assert_eq!(f.name, "legacy-bondflip-edge-1-7");
    assert_eq!(f.spec.from.mode, BondMode::ActiveBackup);
    assert_eq!(f.status.phase, Some(BondFlipPhase::Completed));
    assert_eq!(f.status.history.len(), 2);
}

#[test]
fn a_migration_is_one_object_from_its_request_to_its_end() {
    let mut index = site();
    let cluster = "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=1714557600;schema=4";
    let migration = |blob: &str| {
        config_map(
            "vx-rail-cluster-state",
            &[("cluster", cluster), ("migration", blob)],
        )
    };
    index.apply_config_map(
        &migration("phase=PENDING;joining=edge-2;replicas=2;since=1714557900"),
        NOW,
    );
    let pending = observe(&index, &ObserveConfig::default(), NOW, None);
    index.apply_config_map(
        &migration(
            "phase=PREFLIGHT;source=edge-1;joining=edge-2;replicas=2;since=1714557990;started=1714557990",
        ),
        NOW,
    );
    let started = observe(&index, &ObserveConfig::default(), NOW, Some(&pending));
    assert_eq!(pending.migrations[0].name, started.migrations[0].name);
    let phases: Vec<_> = started.migrations[0]
        .status
        .history
        .iter()
        .map(|h| h.phase)
        .collect();
    assert_eq!(phases, [MigrationPhase::Pending, MigrationPhase::Preflight]);
}

#[test]
fn a_lost_bond_slave_is_network_degraded_while_the_node_stays_ready() {
    let mut index = site();
    let one_down = STATUS.replace("eno2:up:0", "eno2:down:1");
    index.apply_config_map(
        &config_map(
            "vx-rail-node-edge-1",
            &[("status", &one_down), ("heartbeat", "2024-05-01T10:04:52Z")],
        ),
        NOW,
    );
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    let n = &obs.nodes["edge-1"].status;
    assert_eq!(cond(&n.conditions, ct::NETWORK_DEGRADED), ("True", "SlaveDown"));
    assert_eq!(cond(&n.conditions, ct::READY), ("True", "Ready"));
}

#[test]
fn a_site_without_nodes_is_not_ready() {
    let mut index = Index::new(LegacyNames::default());
    index.apply_config_map(&config_map("vx-rail-cluster-state", &[]), NOW);
    let obs = observe(&index, &ObserveConfig::default(), NOW, None);
    let c = obs.cluster.unwrap();
    assert_eq!(cond(&c.status.conditions, ct::READY), ("False", "NoNodes"));
}

#[test]
fn a_failed_bond_flip_failed_and_did_not_fail_a_rollback() {
    let mut index = site();
    let flip = |f: &str| config_map("vx-rail-cluster-state", &[("bond-flip.edge-1", f)]);
    index.apply_config_map(&flip("action=active;value=eno2;state=requested;id=3"), NOW);
    let first = observe(&index, &ObserveConfig::default(), NOW, None);
    index.apply_config_map(
        &flip("action=active;value=eno2;state=failed;id=3;done=1714557901;msg=eno2 has no carrier"),
        NOW,
    );
    let second = observe(&index, &ObserveConfig::default(), NOW, Some(&first));
    let f = &second.bond_flips[0].status;
    assert_eq!(f.phase, Some(BondFlipPhase::Failed));
    assert_eq!(cond(&f.conditions, ct::FAILED), ("True", "Failed"));
}

#[test]
fn legacy_spellings_map_onto_api_enums() {
    assert_eq!(pascal("WAIT_RESYNC"), "WaitResync");
    assert_eq!(
        upgrade_state(&p::UpgradeState::InstallPackages),
        Some(UpgradeState::InstallPackages)
    );
    assert_eq!(
        migration_phase(&p::MigrationPhase::RegisteringSatellites),
        Some(MigrationPhase::RegisteringSatellites)
    );
    for s in p::UpgradeState::KNOWN {
        assert!(upgrade_state(&p::UpgradeState::from_text(s)).is_some(), "{s}");
    }
    for s in p::MigrationPhase::KNOWN {
        assert!(migration_phase(&p::MigrationPhase::from_text(s)).is_some(), "{s}");
    }
}
