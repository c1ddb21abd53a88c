#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;

const NOW: i64 = 1_767_225_600;

fn host(ip: &str) -> HostConfig {
    serde_json::from_value(serde_json::json!({
        "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1", "eno2"]},
        "storageVlan": {"id": 100, "address": ip},
        "mgmtVlan": {"id": 200, "address": ip.replace("10.100", "10.200")},
        "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
    }))
    .unwrap()
}

fn node(name: &str, ip: &str) -> SiteNode {
    SiteNode {
        name: name.into(),
        host: host(ip),
        role_label: None,
    }
}

fn facts(topology: Topology, nodes: Vec<SiteNode>) -> Facts {
    Facts {
        now: NOW,
        topology,
        primary_node: None,
        nodes,
        without_host: Vec::new(),
        state: None,
    }
}

/// The site state as the API server holds it: the keys and a resourceVersion that moves with
/// every write, and the guard the real API server applies.
#[derive(Clone, Debug, Default)]
struct ConfigMapStore {
    data: Option<BTreeMap<String, String>>,
    version: u64,
}

impl ConfigMapStore {
    fn state(&self) -> Option<SiteState> {
        let data = self.data.as_ref()?;
        Some(SiteState {
            cluster: nodewright_parsers::parse_cluster_blob(&data["cluster"]).map_err(|e| e.to_string()),
            members: data.get("members").map_or(Ok(Vec::new()), |m| {
                nodewright_parsers::parse_members(m).map_err(|e| e.to_string())
            }),
            network_plan: data.get("network-plan").cloned(),
            resource_version: Some(self.version.to_string()),
        })
    }

    /// Applies a decision's site-state action as the API server would: a create that finds the
    /// ConfigMap refused, a patch whose precondition is not the current version refused (409).
    fn apply(&mut self, d: &Decision) -> Result<(), String> {
        for a in &d.actions {
            match a {
                Action::CreateSiteState { data, .. } => {
                    if self.data.is_some() {
                        return Err("AlreadyExists".into());
                    }
                    self.data = Some(data.clone());
                    self.version += 1;
                }
                Action::PatchSiteState { data, .. } => {
                    if d.state_version != Some(self.version.to_string()) {
                        return Err(format!(
                            "409 Conflict: precondition {:?}, current {}",
                            d.state_version, self.version
                        ));
                    }
                    let current = self.data.as_mut().ok_or("NotFound")?;
                    current.extend(data.clone());
                    self.version += 1;
                }
                Action::RoleLabel { .. } => {}
            }
        }
        Ok(())
    }

    fn member_names(&self) -> Vec<String> {
        nodewright_parsers::parse_members(&self.data.as_ref().unwrap()["members"])
            .unwrap()
            .into_iter()
            .map(|m| m.node)
            .collect()
    }
}

#[test]
fn a_new_multi_node_site_is_created_with_the_first_node_by_name_as_primary() {
    let f = facts(
        Topology::MultiNode,
        vec![node("edge-2", "10.100.0.12/24"), node("edge-1", "10.100.0.11/24")],
    );
    let d = decide(&f);
    let Action::CreateSiteState { primary, data } = &d.actions[0] else {
        panic!("{d:?}");
    };
    assert_eq!(primary, "edge-1");
    assert_eq!(
        data["cluster"],
        format!("primary=edge-1;topology=multi;replicas=2;storage_pool=pool0;created={NOW};schema=4")
    );
    assert_eq!(
        data["members"],
        format!(
            "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,{NOW}\nedge-2,10.100.0.12/24,member,{NOW}"
        )
    );
    assert_eq!(
        d.actions[1..],
        [
            Action::RoleLabel {
                node: "edge-1".into(),
                role: "primary".into()
            },
            Action::RoleLabel {
                node: "edge-2".into(),
                role: "member".into()
            },
        ]
    );
    assert!(d.waiting.is_empty());
}

#[test]
fn a_single_node_site_has_one_replica_and_a_second_node_waits_as_joining() {
    let f = facts(
        Topology::SingleNode,
        vec![node("edge-1", "10.100.0.11/24"), node("edge-2", "10.100.0.12/24")],
    );
    let d = decide(&f);
    let Action::CreateSiteState { data, .. } = &d.actions[0] else {
        panic!("{d:?}");
    };
    assert!(
        data["cluster"].contains("topology=single;replicas=1;"),
        "{}",
        data["cluster"]
    );
    assert!(data["members"].ends_with(&format!("edge-2,10.100.0.12/24,joining,{NOW}")));
}

#[test]
fn the_primary_the_edge_cluster_names_is_waited_for_and_then_chosen_over_the_first_by_name() {
    let mut f = facts(Topology::MultiNode, vec![node("edge-1", "10.100.0.11/24")]);
    f.primary_node = Some("edge-9".into());
    let d = decide(&f);
    assert!(
        d.actions.is_empty(),
        "nothing is created before the named primary is present"
    );
    assert!(
        d.waiting[0].contains("edge-9 (spec.primaryNode) is not present"),
        "{:?}",
        d.waiting
    );
    f.nodes.push(node("edge-9", "10.100.0.19/24"));
    let d = decide(&f);
    let Action::CreateSiteState { primary, data } = &d.actions[0] else {
        panic!("{d:?}");
    };
    assert_eq!(primary, "edge-9");
    assert!(
        data["members"].starts_with(&format!(
            "node,storage_ip,role,joined\nedge-9,10.100.0.19/24,primary,{NOW}\n"
        )),
        "the primary's row comes first, as the script writes it"
    );
}

#[test]
fn the_primary_is_decided_once_a_node_appearing_later_with_a_smaller_name_joins_as_a_member() {
    let mut store = ConfigMapStore::default();
    let mut f = facts(Topology::MultiNode, vec![node("edge-2", "10.100.0.12/24")]);
    store.apply(&decide(&f)).unwrap();
    f.state = store.state();
    f.nodes.push(node("edge-1", "10.100.0.11/24"));
    let d = decide(&f);
    store.apply(&d).unwrap();
    assert!(store.data.as_ref().unwrap()["cluster"].starts_with("primary=edge-2;"));
    assert!(
        store.data.as_ref().unwrap()["members"].ends_with(&format!("edge-1,10.100.0.11/24,member,{NOW}"))
    );
}

#[test]
fn nothing_is_created_while_no_node_has_a_known_host_configuration() {
    let mut f = facts(Topology::MultiNode, Vec::new());
    f.without_host = vec!["edge-1".into()];
    let d = decide(&f);
    assert!(d.actions.is_empty());
    assert_eq!(d.waiting.len(), 2, "{:?}", d.waiting);
    assert!(d.waiting[0].starts_with("edge-1: waiting for its host configuration"));
    assert!(!d.done());
}

#[test]
fn two_joins_decided_from_the_same_snapshot_lose_no_member_row() {
    // A site whose state exists with edge-1; edge-2 and edge-3 appear at once.
    let mut store = ConfigMapStore::default();
    let mut f = facts(Topology::MultiNode, vec![node("edge-1", "10.100.0.11/24")]);
    store.apply(&decide(&f)).unwrap();
    let snapshot = store.state();

    // The operator's decision from that snapshot adds both rows in one guarded patch.
    f.state = snapshot.clone();
    f.nodes.push(node("edge-2", "10.100.0.12/24"));
    f.nodes.push(node("edge-3", "10.100.0.13/24"));
    let both = decide(&f);
    let patches = both
        .actions
        .iter()
        .filter(|a| matches!(a, Action::PatchSiteState { .. }))
        .count();
    assert_eq!(patches, 1, "{both:?}");

    // Two decisions from the same snapshot, each seeing one newcomer (the legacy shape: each
    // node's script adds only itself). The second is refused by its precondition, and the next
    // decision, from what the API server now holds, adds the row the refused one carried.
    let only = |name: &str, ip: &str| Facts {
        nodes: vec![node("edge-1", "10.100.0.11/24"), node(name, ip)],
        state: snapshot.clone(),
        ..f.clone()
    };
    let first = decide(&only("edge-2", "10.100.0.12/24"));
    let second = decide(&only("edge-3", "10.100.0.13/24"));
    store.apply(&first).unwrap();
    let refused = store.apply(&second).unwrap_err();
    assert!(refused.starts_with("409 Conflict"), "{refused}");
    assert_eq!(store.member_names(), ["edge-1", "edge-2"]);
    let again = decide(&Facts {
        state: store.state(),
        ..only("edge-3", "10.100.0.13/24")
    });
    store.apply(&again).unwrap();
    assert_eq!(store.member_names(), ["edge-1", "edge-2", "edge-3"]);

    // What the script does instead: each rewrites the whole list from its snapshot, unguarded;
    // the last writer wins and edge-2's row is lost (VXR-141).
    let mut legacy = store.clone();
    legacy.data = snapshot.as_ref().map(|_| {
        let mut d = store.data.clone().unwrap();
        d.insert(
            "members".into(),
            format!("{MEMBERS_HEADER}\nedge-1,10.100.0.11/24,primary,{NOW}"),
        );
        d
    });
    for (name, ip) in [("edge-2", "10.100.0.12/24"), ("edge-3", "10.100.0.13/24")] {
        let rewritten =
            format!("{MEMBERS_HEADER}\nedge-1,10.100.0.11/24,primary,{NOW}\n{name},{ip},member,{NOW}");
        legacy.data.as_mut().unwrap().insert("members".into(), rewritten);
    }
    assert_eq!(
        legacy.member_names(),
        ["edge-1", "edge-3"],
        "the unguarded rewrite loses edge-2"
    );
}

#[test]
fn a_re_addressed_node_gets_its_row_updated_and_the_network_plan_follows() {
    let mut store = ConfigMapStore::default();
    let mut f = facts(
        Topology::MultiNode,
        vec![node("edge-1", "10.100.0.11/24"), node("edge-2", "10.100.0.12/24")],
    );
    store.apply(&decide(&f)).unwrap();
    f.state = store.state();
    f.nodes[1] = node("edge-2", "10.100.0.22/24");
    let d = decide(&f);
    let Action::PatchSiteState { data, what } = &d.actions[0] else {
        panic!("{d:?}");
    };
    assert_eq!(
        what,
        &[
            "edge-2: storage IP 10.100.0.12/24 -> 10.100.0.22/24",
            "network plan updated"
        ]
    );
    assert!(data["members"].contains("edge-2,10.100.0.22/24,member,"));
    assert!(
        data["network-plan"].contains(r#"{"name":"edge-2","storageIp":"10.100.0.22/24","role":"member"}"#)
    );
    assert_eq!(d.state_version.as_deref(), Some("1"));
}

#[test]
fn the_network_plan_is_rendered_exactly_as_the_script_renders_it() {
    let rows = nodewright_parsers::parse_members(
        "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,1\nedge-2,10.100.0.12/24,member,2",
    )
    .unwrap();
    // From golden/snapshots/bootstrap-three-nodes@kube-writes.snap, tick 3.
    assert_eq!(
        network_plan(&host("10.100.0.11/24"), &rows),
        r#"{"version":1,"bond":{"name":"bond0","mode":"active-backup","miimon":100,"slaves":["eno1","eno2"]},"storageVlan":{"id":100,"prefixLength":24},"mgmtVlan":{"id":200},"nodes":[{"name":"edge-1","storageIp":"10.100.0.11/24","role":"primary"},{"name":"edge-2","storageIp":"10.100.0.12/24","role":"member"}]}"#
    );
    let mut no_mgmt = host("10.100.0.11/24");
    no_mgmt.mgmt_vlan = None;
    assert!(network_plan(&no_mgmt, &rows).contains(r#""mgmtVlan":null,"#));
}

#[test]
fn a_bootstrapped_site_needs_nothing_and_labels_only_what_differs() {
    let mut store = ConfigMapStore::default();
    let mut f = facts(
        Topology::MultiNode,
        vec![node("edge-1", "10.100.0.11/24"), node("edge-2", "10.100.0.12/24")],
    );
    store.apply(&decide(&f)).unwrap();
    f.state = store.state();
    f.nodes[0].role_label = Some("primary".into());
    f.nodes[1].role_label = Some("joining".into());
    assert_eq!(
        decide(&f).actions,
        [Action::RoleLabel {
            node: "edge-2".into(),
            role: "member".into()
        }]
    );
    f.nodes[1].role_label = Some("member".into());
    let d = decide(&f);
    assert!(d.done(), "{d:?}");
}

#[test]
fn a_member_list_that_cannot_be_read_is_never_written() {
    let mut f = facts(Topology::MultiNode, vec![node("edge-1", "10.100.0.11/24")]);
    f.state = Some(SiteState {
        cluster: nodewright_parsers::parse_cluster_blob(
            "primary=edge-1;topology=multi;replicas=2;storage_pool=pool0;created=1;schema=4",
        )
        .map_err(|e| e.to_string()),
        members: Err("legacy-members: line 1: expected the header".into()),
        network_plan: None,
        resource_version: Some("5".into()),
    });
    let d = decide(&f);
    assert!(d.actions.is_empty(), "{d:?}");
    assert!(
        d.waiting[0].contains("`members` key cannot be read"),
        "{:?}",
        d.waiting
    );
}

#[test]
fn a_node_without_a_storage_address_waits_and_the_others_join() {
    let mut store = ConfigMapStore::default();
    let mut f = facts(Topology::MultiNode, vec![node("edge-1", "10.100.0.11/24")]);
    store.apply(&decide(&f)).unwrap();
    f.state = store.state();
    let mut bare = node("edge-2", "10.100.0.12/24");
    bare.host.storage_vlan.address = None;
    f.nodes.push(bare);
    f.nodes.push(node("edge-3", "10.100.0.13/24"));
    let d = decide(&f);
    assert_eq!(
        d.waiting,
        ["edge-2: its host configuration has no storage VLAN address"]
    );
    let Action::PatchSiteState { what, .. } = &d.actions[0] else {
        panic!("{d:?}");
    };
    assert_eq!(what[0], "edge-3 joins as member (10.100.0.13/24)");
}
