//! The index's unit tests, and the fixtures other modules' tests build their indexes from
//! (`config_map`, `node`, `STATUS`).

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use nodewright_parsers as p;

use super::*;

pub(crate) fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("kube-system".to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

pub(crate) fn node(name: &str, annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Node::default()
    }
}

pub(crate) const STATUS: &str = "at=1714557892;state=ready;role=primary;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;drbd=ok;resources=1;uptodate=1;syncing=0;taint=none;boot=COMPLETED;upgrade=;drbd_version=9.2.5";

#[test]
fn a_node_configmap_is_parsed_into_its_node_entry() {
    let mut index = Index::new(LegacyNames::default());
    let cm = config_map(
        "vx-rail-node-edge-1",
        &[("status", STATUS), ("heartbeat", "2024-05-01T10:05:02Z")],
    );
    assert!(index.apply_config_map(&cm, 100));
    let entry = &index.nodes["edge-1"];
    let cm = entry.config_map.as_ref().unwrap();
    assert_eq!(cm.status.value.as_ref().unwrap().bond, "bond0");
    assert_eq!(cm.heartbeat.value, Some(1_714_557_902));
    assert!(index.take_new_errors().is_empty());
}

#[test]
fn configmaps_the_contract_does_not_name_are_ignored() {
    let mut index = Index::new(LegacyNames::default());
    assert!(!index.apply_config_map(&config_map("coredns", &[("Corefile", ".:53")]), 0));
    assert!(index.nodes.is_empty() && index.cluster.is_none());
}

#[test]
fn a_malformed_blob_keeps_the_last_good_value_and_reports_where() {
    let mut index = Index::new(LegacyNames::default());
    index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", STATUS)]), 100);
    let bad = STATUS.replace("resources=1", "resources=lots");
    index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", &bad)]), 200);
    let status = &index.nodes["edge-1"].config_map.as_ref().unwrap().status;
    assert_eq!(
        status.value.as_ref().unwrap().resources,
        1,
        "last good value kept"
    );
    assert!(status.is_stale());
    let errors = index.take_new_errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].source,
        "configmap/kube-system/vx-rail-node-edge-1:status"
    );
    assert_eq!(errors[0].line, 1);
    assert_eq!(errors[0].column, bad.find("lots").unwrap() + 1);
    assert_eq!(errors[0].first_seen, 200);
}

#[test]
fn the_same_bad_value_seen_again_is_not_a_new_error() {
    let mut index = Index::new(LegacyNames::default());
    let cm = config_map("vx-rail-node-edge-1", &[("status", "garbage")]);
    index.apply_config_map(&cm, 100);
    assert_eq!(index.take_new_errors().len(), 1);
    index.apply_config_map(&cm, 300);
    assert!(index.take_new_errors().is_empty());
    let status = &index.nodes["edge-1"].config_map.as_ref().unwrap().status;
    assert_eq!(status.error.as_ref().unwrap().first_seen, 100);
}

#[test]
fn a_relist_removes_what_is_gone_and_keeps_what_is_there() {
    let mut index = Index::new(LegacyNames::default());
    index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", STATUS)]), 1);
    index.apply_config_map(&config_map("vx-rail-node-edge-2", &[("status", STATUS)]), 1);
    index.apply_config_map(&config_map("vx-rail-cluster-state", &[]), 1);
    let keep = config_map("vx-rail-node-edge-2", &[("status", STATUS)]);
    index.reset_config_maps([&keep], 2);
    assert_eq!(index.nodes.keys().collect::<Vec<_>>(), ["edge-2"]);
    assert!(index.cluster.is_none());
}

#[test]
fn a_deleted_node_keeps_its_entry_while_its_configmap_exists() {
    let mut index = Index::new(LegacyNames::default());
    index.apply_node(&node("edge-1", &[], &[]), 1);
    index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", STATUS)]), 1);
    index.delete_node("edge-1");
    assert!(index.nodes["edge-1"].object.is_none());
    index.delete_config_map("kube-system", "vx-rail-node-edge-1");
    assert!(!index.nodes.contains_key("edge-1"));
}

#[test]
fn node_annotations_and_labels_are_parsed() {
    let mut index = Index::new(LegacyNames::default());
    index.apply_node(
        &node(
            "edge-1",
            &[
                ("vx-rail.io/state", "ready"),
                (
                    "vx-rail.io/last-run",
                    "ts=2024-05-01T10:05:02Z;version=4.12.3;outcome=ok;step=finished;rc=0;duration=5",
                ),
                ("vx-rail.io/bond-active", "none"),
            ],
            &[
                ("vx-rail.io/role", "primary"),
                ("vx-rail.io/storage-ready", "true"),
            ],
        ),
        1,
    );
    let o = index.nodes["edge-1"].object.as_ref().unwrap();
    assert_eq!(o.state, Some(p::AnnotatedState::Ready));
    assert_eq!(o.last_run.value.as_ref().unwrap().version, "4.12.3");
    assert_eq!(o.bond_active, Some(None));
    assert_eq!(o.role, Some(p::NodeRole::Primary));
    assert_eq!(o.storage_ready.value, Some(true));
}

#[test]
fn a_malformed_annotation_is_reported_with_the_node_and_key() {
    let mut index = Index::new(LegacyNames::default());
    index.apply_node(
        &node("edge-1", &[("vx-rail.io/last-run", "ts=yesterday")], &[]),
        5,
    );
    let errors = index.take_new_errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].source, "node/edge-1:annotations/vx-rail.io/last-run");
}

#[test]
fn upgrade_transitions_from_blob_annotation_and_log_are_merged() {
    let mut index = Index::new(LegacyNames::default());
    let blob = "state=WAIT_RESYNC;from=9.2.5;to=9.2.8;order=edge-1,edge-2;node=edge-2;done=edge-1;rolled=;by=edge-1;started=1714560000;since=1714560420";
    index.apply_config_map(&config_map("vx-rail-cluster-state", &[("upgrade", blob)]), 1);
    index.apply_node(
        &node(
            "edge-2",
            &[(
                "vx-rail.io/upgrade-state",
                "state=WAIT_RESYNC;to=9.2.8;since=1714560420",
            )],
            &[],
        ),
        1,
    );
    index.feed_log(
        "edge-2",
        b"ts=2024-05-01T10:47:00Z level=info node=edge-2 component=upgrade msg=\"upgrade state changed\" from=UP_RESOURCES to=WAIT_RESYNC node=edge-2 version=9.2.8\n",
        1,
    );
    let history = &index.upgrade_history[&1_714_560_000];
    assert_eq!(history.len(), 1, "{history:?}");
    let t = history.first().unwrap();
    assert_eq!(
        (t.state.as_str(), t.node.as_deref()),
        ("WAIT_RESYNC", Some("edge-2"))
    );
}

#[test]
fn log_lines_are_counted_and_an_unknown_line_becomes_a_diagnostic() {
    let mut index = Index::new(LegacyNames::default());
    let log = b"ts=2024-05-01T10:05:02Z level=info node=edge-1 component=main msg=\"iteration finished\" outcome=ok step=finished rc=0 duration=5\nthis is not a log line\n";
    let (records, blocks, unknown) = index.feed_log("edge-1", log, 9);
    assert_eq!((records, blocks, unknown), (1, 0, 1));
    let l = index.nodes["edge-1"].log.as_ref().unwrap();
    assert_eq!(l.last_iteration.as_ref().unwrap().1, "ok");
    assert_eq!(index.take_new_errors()[0].line, 2);
}

#[test]
fn the_index_says_which_nodes_changed_and_when_all_may_have() {
    let mut index = Index::new(LegacyNames::default());
    index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", STATUS)]), 1);
    index.apply_node(&node("edge-2", &[], &[]), 1);
    let dirty = index.take_dirty();
    assert!(!dirty.all);
    assert_eq!(dirty.nodes.iter().collect::<Vec<_>>(), ["edge-1", "edge-2"]);
    assert_eq!(index.take_dirty(), Dirty::default(), "taking clears");
    index.apply_config_map(&config_map("vx-rail-cluster-state", &[]), 2);
    assert!(
        index.take_dirty().all,
        "every node's status depends on the site-wide state"
    );
    index.delete_node("edge-2");
    assert!(index.take_dirty().touches("edge-2"));
}

#[test]
fn a_log_split_anywhere_gives_the_same_result() {
    let log: &[u8] = b"ts=2024-05-01T10:05:02Z level=info node=edge-1 component=main msg=\"iteration finished\" outcome=ok step=finished rc=0 duration=5\n";
    for cut in 0..log.len() {
        let mut index = Index::new(LegacyNames::default());
        let a = index.feed_log("edge-1", &log[..cut], 0);
        let b = index.feed_log("edge-1", &log[cut..], 0);
        assert_eq!(a.0 + b.0, 1, "cut at {cut}");
    }
}

#[test]
fn a_nodes_logged_upgrade_starts_and_state_changes_are_kept_in_order_and_bounded() {
    let mut index = Index::new(LegacyNames::default());
    let mut log = String::from(
        "ts=2026-01-01T00:10:00Z level=warn node=edge-1 component=upgrade msg=\"storage upgrade started\" from=9.2.12 to=9.2.14 order=edge-1,edge-2\n",
    );
    for (from, to) in [("PENDING", "PREFLIGHT"), ("PREFLIGHT", "QUORUM_CHECK")] {
        log.push_str(&format!(
            "ts=2026-01-01T00:10:00Z level=info node=edge-1 component=upgrade msg=\"upgrade state changed\" from={from} to={to} node=edge-1 version=9.2.14\n"
        ));
    }
    index.feed_log("edge-1", log.as_bytes(), 0);
    let events = &index.nodes["edge-1"].log.as_ref().unwrap().upgrade_events;
    assert_eq!(events.len(), 3);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "{events:?}");
    assert_eq!(
        events[0].event,
        UpgradeEvent::Started {
            from: Some("9.2.12".into()),
            to: "9.2.14".into(),
            order: vec!["edge-1".into(), "edge-2".into()],
        }
    );
    assert_eq!(
        events[2].event,
        UpgradeEvent::Changed {
            from: "PREFLIGHT".into(),
            to: "QUORUM_CHECK".into(),
            node: Some("edge-1".into()),
            message: None,
        }
    );
    // Bounded: a log that runs for months keeps only the newest.
    let line = "ts=2026-01-01T00:10:00Z level=info node=edge-1 component=upgrade msg=\"upgrade state changed\" from=WAIT_RESYNC to=VERIFY_VERSION node=edge-1 version=9.2.14\n";
    index.feed_log("edge-1", line.repeat(600).as_bytes(), 0);
    let events = &index.nodes["edge-1"].log.as_ref().unwrap().upgrade_events;
    assert_eq!(events.len(), 512);
}
