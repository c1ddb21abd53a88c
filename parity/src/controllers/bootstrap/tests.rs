#![allow(clippy::unwrap_used, clippy::panic)]

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nodewright_api::edgecluster::EdgeClusterSpec;
use nodewright_api::edgenode::{EdgeNode, EdgeNodeSpec};
use nodewright_api::hostconfig::HostConfig;
use nodewright_api::nodefacts::{NodeFacts, NodeFactsSpec};
use nodewright_bridge::index::{Index, LegacyNames};

use super::*;
use crate::controllers::{NodeMeta, Settings};

const NOW: i64 = 1_790_000_000;

fn host(ip: &str) -> HostConfig {
    serde_json::from_value(serde_json::json!({
        "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1", "eno2"]},
        "storageVlan": {"id": 100, "address": ip},
        "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
    }))
    .unwrap()
}

fn facts(node: &str, ip: &str) -> NodeFacts {
    NodeFacts::new(
        node,
        NodeFactsSpec {
            node_name: node.into(),
            observed_at: Time(k8s_openapi::jiff::Timestamp::from_second(NOW - 10).unwrap()),
            boot_id: None,
            bonds: vec![],
            vlans: vec![],
            drbd_resources: vec![],
            satellite: None,
            packages: vec![],
            modules: vec![],
            unreadable: vec![],
            node_config: Some(host(ip)),
        },
    )
}

fn edge_node(node: &str, host: Option<HostConfig>) -> EdgeNode {
    let mut n = EdgeNode::new(
        node,
        EdgeNodeSpec {
            node_name: node.into(),
            cluster_ref: None,
            host,
        },
    );
    n.metadata.namespace = Some("nodewright-system".into());
    n
}

fn cluster(spec: serde_json::Value) -> EdgeCluster {
    let mut c = EdgeCluster::new("site", serde_json::from_value::<EdgeClusterSpec>(spec).unwrap());
    c.metadata.namespace = Some("nodewright-system".into());
    c.metadata.generation = Some(4);
    c
}

fn multi() -> EdgeCluster {
    cluster(serde_json::json!({"profile": {"topology": "MultiNode"}}))
}

fn nodes(names: &[&str]) -> BTreeMap<String, NodeMeta> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                (*n).to_owned(),
                NodeMeta {
                    resource_version: format!("{}", 10 + i),
                    ..NodeMeta::default()
                },
            )
        })
        .collect()
}

fn settings() -> Settings {
    Settings {
        stale_after: 300,
        migration_timeout: 1800,
        upgrade_state_timeout: 1800,
        upgrade_rollback_timeout: 1800,
    }
}

struct World {
    cluster: EdgeCluster,
    index: Index,
    nodes: BTreeMap<String, NodeMeta>,
    facts: Vec<NodeFacts>,
    edge_nodes: Vec<EdgeNode>,
    settings: Settings,
    state_version: Option<String>,
}

impl World {
    fn new(names: &[&str]) -> World {
        World {
            cluster: multi(),
            index: Index::new(LegacyNames::default()),
            nodes: nodes(names),
            facts: names
                .iter()
                .enumerate()
                .map(|(i, n)| facts(n, &format!("10.100.0.{}/24", 11 + i)))
                .collect(),
            edge_nodes: names.iter().map(|n| edge_node(n, None)).collect(),
            settings: settings(),
            state_version: None,
        }
    }

    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            now: NOW,
            cluster: &self.cluster,
            index: &self.index,
            nodes: &self.nodes,
            cluster_state_version: self.state_version.as_deref(),
            migrations: &[],
            tasks: &[],
            upgrades: &[],
            pods: &[],
            gate: None,
            facts: &self.facts,
            edge_nodes: &self.edge_nodes,
            bond_flips: &[],
            settings: &self.settings,
        }
    }

    fn config_map(&mut self, name: &str, data: &[(&str, &str)]) {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self.index.apply_config_map(&cm, NOW);
    }
}

#[test]
fn a_site_without_state_is_created_from_the_reported_node_conf_and_each_node_conf_is_adopted() {
    let w = World::new(&["edge-2", "edge-1"]);
    let plan = Bootstrap.plan(&w.snapshot());
    assert_eq!(plan.len(), 3, "{plan:#?}");
    assert_eq!(plan[0].regarding.kind.as_deref(), Some("EdgeCluster"));
    let Write::CreateLegacyConfigMap { name, data, what } = &plan[0].writes[0] else {
        panic!("{:?}", plan[0].writes[0]);
    };
    assert_eq!(name, &LegacyConfigMap::ClusterState);
    assert_eq!(what, "site state created with edge-1 as primary");
    assert!(
        data["members"].contains("edge-1,10.100.0.12/24,primary"),
        "{}",
        data["members"]
    );
    assert!(data["members"].contains("edge-2,10.100.0.11/24,member"));
    let labels: Vec<(String, String)> = plan[0].writes[1..]
        .iter()
        .map(|w| match w {
            Write::PatchNode {
                name,
                resource_version,
                labels,
                ..
            } => (format!("{name}@{resource_version}"), labels[ROLE_LABEL].clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("edge-1@11".to_owned(), "primary".to_owned()),
            ("edge-2@10".to_owned(), "member".to_owned())
        ]
    );
    for seq in &plan[1..] {
        assert_eq!(seq.regarding.kind.as_deref(), Some("EdgeNode"));
        let Write::ApplyHostConfig { node_name, host, .. } = &seq.writes[0] else {
            panic!("{:?}", seq.writes);
        };
        assert_eq!(
            Some(host.as_ref()),
            w.facts
                .iter()
                .find(|f| &f.spec.node_name == node_name)
                .and_then(|f| f.spec.node_config.as_ref())
        );
    }
}

#[test]
fn a_persons_spec_host_is_never_replaced_and_decides_over_the_node_conf() {
    let mut w = World::new(&["edge-1"]);
    w.edge_nodes = vec![edge_node("edge-1", Some(host("10.100.0.99/24")))];
    let plan = Bootstrap.plan(&w.snapshot());
    assert!(
        plan.iter()
            .flat_map(|s| &s.writes)
            .all(|w| !matches!(w, Write::ApplyHostConfig { .. })),
        "a set spec.host is not applied over: {plan:#?}"
    );
    let Write::CreateLegacyConfigMap { data, .. } = &plan[0].writes[0] else {
        panic!("{plan:#?}");
    };
    assert!(
        data["members"].contains("edge-1,10.100.0.99/24,primary"),
        "{}",
        data["members"]
    );
}

#[test]
fn a_join_is_one_patch_guarded_by_the_resource_version_the_decision_read() {
    let mut w = World::new(&["edge-1", "edge-2", "edge-3"]);
    w.config_map(
        "vx-rail-cluster-state",
        &[
            (
                "cluster",
                "primary=edge-1;topology=multi;replicas=2;storage_pool=pool0;created=1;schema=4",
            ),
            (
                "members",
                "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,1",
            ),
        ],
    );
    w.state_version = Some("42".into());
    let plan = Bootstrap.plan(&w.snapshot());
    let Write::PatchClusterState {
        resource_version,
        data,
    } = &plan[0].writes[0]
    else {
        panic!("{plan:#?}");
    };
    assert_eq!(resource_version.as_deref(), Some("42"));
    assert_eq!(
        data["members"],
        format!(
            "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,1\nedge-2,10.100.0.12/24,member,{NOW}\nedge-3,10.100.0.13/24,member,{NOW}"
        )
    );
    assert!(data["network-plan"].contains(r#""name":"edge-3""#));
}

#[test]
fn a_node_without_a_known_host_configuration_is_waited_for_in_the_bootstrapped_condition() {
    let mut w = World::new(&["edge-1", "edge-2"]);
    w.facts.retain(|f| f.spec.node_name == "edge-1");
    let c = condition(&w.snapshot());
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Waiting"));
    assert!(
        c.message
            .starts_with("edge-2: waiting for its host configuration"),
        "{}",
        c.message
    );
    assert_eq!(c.observed_generation, Some(4));
}

#[test]
fn the_bootstrapped_condition_is_true_once_every_node_present_is_a_labelled_member() {
    let mut w = World::new(&["edge-1"]);
    w.edge_nodes = vec![edge_node("edge-1", Some(host("10.100.0.11/24")))];
    assert_eq!(condition(&w.snapshot()).reason, "Bootstrapping");
    let plan = Bootstrap.plan(&w.snapshot());
    let Write::CreateLegacyConfigMap { data, .. } = &plan[0].writes[0] else {
        panic!("{plan:#?}");
    };
    let data: Vec<(&str, &str)> = data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    w.config_map("vx-rail-cluster-state", &data);
    w.state_version = Some("7".into());
    w.nodes
        .get_mut("edge-1")
        .unwrap()
        .labels
        .insert(ROLE_LABEL.into(), "primary".into());
    assert!(Bootstrap.plan(&w.snapshot()).is_empty());
    let c = condition(&w.snapshot());
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "SiteBootstrapped")
    );
    assert_eq!(c.observed_generation, Some(4));
}

#[test]
fn node_config_maps_are_created_for_the_sites_nodes_and_where_a_script_runs_and_only_once() {
    let mut w = World::new(&["edge-1", "edge-2"]);
    w.nodes.insert("edge-3".into(), NodeMeta::default());
    w.nodes.insert("control-1".into(), NodeMeta::default());
    w.config_map("vx-rail-node-edge-2", &[("script-version", "4.12.3")]);
    let made: Vec<String> = admit(&w.snapshot(), &["edge-3".into(), "gone".into()])
        .into_iter()
        .map(|s| match &s.writes[..] {
            [
                Write::CreateLegacyConfigMap {
                    name: LegacyConfigMap::Node(n),
                    data,
                    ..
                },
            ] => {
                assert!(data.is_empty(), "the script writes its own keys");
                n.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        made,
        ["edge-1", "edge-3"],
        "not edge-2 (has one), not control-1 (no script), not gone (no Node)"
    );
}
