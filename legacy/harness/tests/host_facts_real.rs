//! The agent reports the host, end to end against the real API server: an agent on a simulated
//! node publishes its `NodeFacts`, the bridge merges them into the node's `EdgeNode` over the
//! script's reports and says so per fact group, and a cable pulled in the simulated world shows
//! up in the `EdgeNode` while the script's last report still says both links are up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ObjectMeta, PostParams};
use nodewright_agent_shim::facts::PublishPolicy;
use nodewright_agent_shim::{AgentOptions, FactsOptions};
use nodewright_api::edgenode::{EdgeNode, FactGroup, FactOrigin, LinkState, VlanPurpose};
use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::run::{BridgeOptions, run as run_bridge};
use nodewright_legacy_sim::host::{DEFAULT_EPOCH, Fault, NodeSpec, VlanSpec, World};
use nodewright_sim_harness::world::{AgentHost, SharedWorld};
use nodewright_testenv::{TestContext, install_crds, unique_name};
use tokio::sync::oneshot;

/// What the script reported in its last loop: the bond with both links up.
const STATUS: &str = "at={at};state=ready;role=primary;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;drbd=ok;resources=0;uptodate=0;syncing=0;taint=none;boot=COMPLETED;upgrade=;drbd_version=9.2.5";

fn rfc3339(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .unwrap()
        .to_string()
}

/// The script's state for one node, as it leaves it after a good loop.
async fn legacy_node(client: &kube::Client, legacy_ns: &str, node: &str) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), legacy_ns);
    let cluster = ConfigMap {
        metadata: ObjectMeta {
            name: Some("vx-rail-cluster-state".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (
                "cluster".to_owned(),
                format!(
                    "primary={node};topology=single;replicas=1;storage_pool=pool0;created=1714557600;schema=4"
                ),
            ),
            (
                "members".to_owned(),
                format!("node,storage_ip,role,joined\n{node},10.10.100.11/24,primary,1714557600"),
            ),
        ])),
        ..ConfigMap::default()
    };
    cms.create(&PostParams::default(), &cluster).await.unwrap();
    let t = nodewright_kit::clock::unix_now();
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("vx-rail-node-{node}")),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("script-version".to_owned(), "4.12.3".to_owned()),
            ("heartbeat".to_owned(), rfc3339(t)),
            ("status".to_owned(), STATUS.replace("{at}", &t.to_string())),
        ])),
        ..ConfigMap::default()
    };
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let object = Node {
        metadata: ObjectMeta {
            name: Some(node.to_owned()),
            annotations: Some(BTreeMap::from([(
                "vx-rail.io/state".to_owned(),
                "ready".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_agents_facts_reach_the_edge_node_over_the_scripts_and_a_pulled_cable_shows_up() {
    let ctx = TestContext::new("host-facts").await.unwrap();
    install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
    let legacy = TestContext::new("host-facts-legacy").await.unwrap();
    // A Node name of its own: Nodes are cluster-wide and the control plane is shared.
    let node = unique_name("facts");
    legacy_node(&ctx.client, &legacy.namespace, &node).await;

    // The simulated host: an active-backup bond over eno1/eno2 and the storage VLAN on it.
    let mut spec = NodeSpec::edge(&node, "10.10.100.11")
        .with_controller()
        .with_bond("bond0", "active-backup", 100)
        .with_pool("pool0", "vg0/thinpool", 100);
    spec.vlans.push(VlanSpec {
        parent: "bond0".to_owned(),
        id: 100,
        name: "bond0.100".to_owned(),
        cidr: Some("10.10.100.11/24".to_owned()),
    });
    let world = SharedWorld::new(World::from_specs(7, DEFAULT_EPOCH, &[spec]).unwrap());

    let mut bridge_options = BridgeOptions::new(&ctx.namespace, unique_name("bridge"));
    bridge_options.legacy = LegacyNames {
        namespace: legacy.namespace.clone(),
        ..LegacyNames::default()
    };
    bridge_options.observe.legacy_namespace = legacy.namespace.clone();
    bridge_options.resync = Duration::from_secs(1);
    let (stop_bridge, bridge) = oneshot::channel::<()>();
    let bridge_client = ctx.client.clone();
    let bridge = (
        stop_bridge,
        tokio::spawn(async move {
            run_bridge(bridge_client, bridge_options, None, async {
                let _ = bridge.await;
            })
            .await
            .unwrap();
        }),
    );

    let state = tempfile::tempdir().unwrap();
    let mut agent_options = AgentOptions::new(&node, &ctx.namespace, "agent-0", state.path());
    agent_options.facts = Some(FactsOptions {
        poll: Duration::from_millis(200),
        policy: PublishPolicy {
            min_interval: Duration::from_millis(500),
            refresh: Duration::from_secs(30),
        },
    });
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(nodewright_agent_shim::run(
        ctx.client.clone(),
        agent_options,
        AgentHost::new(&world, &node),
        async {
            let _ = agent_stopped.await;
        },
    ));

    let edge_nodes: Api<EdgeNode> = ctx.api();
    let sources = |en: &EdgeNode| -> Vec<(FactGroup, FactOrigin)> {
        en.status
            .as_ref()
            .map(|s| s.fact_sources.iter().map(|f| (f.group, f.source)).collect())
            .unwrap_or_default()
    };
    let merged = eventually(
        "the EdgeNode built from the agent's facts",
        Duration::from_secs(30),
        || {
            let edge_nodes = edge_nodes.clone();
            let node = node.clone();
            async move {
                let en = edge_nodes.get_opt(&node).await.unwrap()?;
                sources(&en)
                    .contains(&(FactGroup::Bonds, FactOrigin::Agent))
                    .then_some(en)
            }
        },
    )
    .await;
    assert_eq!(
        sources(&merged),
        [
            (FactGroup::Bonds, FactOrigin::Agent),
            (FactGroup::Vlans, FactOrigin::Agent),
            (FactGroup::LinstorSatellite, FactOrigin::Agent),
            (FactGroup::DrbdResources, FactOrigin::Agent),
        ]
    );
    let status = merged.status.as_ref().unwrap();
    assert!(status.fact_sources.iter().all(|s| s.agent_observed_at.is_some()));
    let storage_vlan = status.vlans.iter().find(|v| v.name == "bond0.100").unwrap();
    assert_eq!(
        storage_vlan.purpose,
        VlanPurpose::StorageReplication,
        "named by the script's plan"
    );
    assert_eq!(storage_vlan.addresses, ["10.10.100.11/24"]);
    assert_eq!(
        status
            .linstor_satellite
            .as_ref()
            .and_then(|s| s.version.as_deref()),
        Some("1.29.2-1"),
        "the installed satellite's version, which the script does not report"
    );

    // The cable of eno1 is pulled. The script's last report still says both links are up; the
    // EdgeNode shows what the agent read.
    world
        .0
        .lock()
        .unwrap()
        .inject(Fault::LinkDown {
            node: node.clone(),
            nic: "eno1".to_owned(),
        })
        .unwrap();
    let pulled_at = Instant::now();
    let pulled = eventually("eno1 down in the EdgeNode", Duration::from_secs(30), || {
        let edge_nodes = edge_nodes.clone();
        let node = node.clone();
        async move {
            let en = edge_nodes.get(&node).await.unwrap();
            let bond = en.status.as_ref()?.bonds.first()?.clone();
            let eno1 = bond.slaves.iter().find(|s| s.name == "eno1")?;
            (eno1.link_state == LinkState::Down).then_some(bond)
        }
    })
    .await;
    eprintln!(
        "the pulled cable reached the EdgeNode in {:?}",
        pulled_at.elapsed()
    );
    assert_eq!(pulled.active_slave.as_deref(), Some("eno2"));

    let _ = stop_agent.send(());
    agent.await.unwrap().unwrap();
    let _ = bridge.0.send(());
    bridge.1.await.unwrap();
}
