//! The agent publishes its host's facts as the node's `NodeFacts`, against the real test API
//! server, and a change on the host (a cable pulled in the simulated world) shows up in them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SimHost, context, eventually, options, start_agent};
use nodewright_agent_shim::FactsOptions;
use nodewright_agent_shim::facts::PublishPolicy;
use nodewright_api::edgenode::{BondMode, LinkState, SatelliteState};
use nodewright_api::nodefacts::NodeFacts;
use nodewright_legacy_sim::host::{DEFAULT_EPOCH, Fault, NodeSpec, VlanSpec, World};

/// `edge-1`: an active-backup bond over eno1/eno2, the storage VLAN on it, the LINSTOR
/// controller and a pool, and its `node.conf`.
fn bonded_world() -> Arc<Mutex<World>> {
    let mut one = NodeSpec::edge("edge-1", "10.10.100.11")
        .with_controller()
        .with_bond("bond0", "active-backup", 100)
        .with_pool("pool0", "vg0/thinpool", 100);
    one.vlans.push(VlanSpec {
        parent: "bond0".to_owned(),
        id: 100,
        name: "bond0.100".to_owned(),
        cidr: Some("10.10.100.11/24".to_owned()),
    });
    let mut world = World::from_specs(7, DEFAULT_EPOCH, &[one]).unwrap();
    world.write_file(
        "edge-1",
        "/etc/vx-rail/node.conf",
        "BOND_SLAVES=eno1 eno2\nSTORAGE_VLAN_ID=100\nSTORAGE_IP=10.10.100.11/24\n",
    );
    Arc::new(Mutex::new(world))
}

#[tokio::test]
async fn the_agent_publishes_its_host_facts_and_a_pulled_cable_shows_up_within_the_rate_limit() {
    let ctx = context("facts").await;
    let world = bonded_world();
    let host = SimHost::new(&world, "edge-1");
    let state = tempfile::tempdir().unwrap();
    let mut opts = options(&ctx.namespace, "edge-1", "agent-edge-1", state.path());
    opts.facts = Some(FactsOptions {
        poll: Duration::from_millis(200),
        policy: PublishPolicy {
            min_interval: Duration::from_secs(1),
            refresh: Duration::from_secs(3),
        },
    });
    let agent = start_agent(ctx.client.clone(), opts, host.clone());
    let api = ctx.api::<NodeFacts>();

    let first = eventually("edge-1's NodeFacts", Duration::from_secs(30), || {
        let api = api.clone();
        async move { api.get_opt("edge-1").await.unwrap() }
    })
    .await;
    let facts = &first.spec;
    assert_eq!(facts.node_name, "edge-1");
    assert!(facts.unreadable.is_empty(), "{:?}", facts.unreadable);
    let boot_id = world.lock().unwrap().node("edge-1").unwrap().boot_id.clone();
    assert_eq!(facts.boot_id.as_deref(), Some(boot_id.as_str()));
    assert_eq!(facts.bonds[0].mode, BondMode::ActiveBackup);
    assert!(
        facts.bonds[0]
            .slaves
            .iter()
            .all(|s| s.link_state == LinkState::Up)
    );
    assert_eq!(facts.vlans[0].addresses, ["10.10.100.11/24"]);
    let conf = facts.node_config.as_ref().expect("node.conf read");
    assert_eq!((conf.bond.name.as_str(), conf.storage_vlan.id), ("bond0", 100));
    assert_eq!(
        facts.satellite.as_ref().and_then(|s| s.registration),
        Some(SatelliteState::Online)
    );
    let managers: Vec<_> = first
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["nodewright-agent"], "one field manager, the agent's");

    world
        .lock()
        .unwrap()
        .inject(Fault::LinkDown {
            node: "edge-1".to_owned(),
            nic: "eno1".to_owned(),
        })
        .unwrap();
    let pulled = eventually("eno1 down in edge-1's NodeFacts", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            let f = api.get("edge-1").await.unwrap();
            let eno1 = f
                .spec
                .bonds
                .first()?
                .slaves
                .iter()
                .find(|s| s.name == "eno1")?
                .clone();
            (eno1.link_state == LinkState::Down).then_some(f)
        }
    })
    .await;
    assert_eq!(pulled.spec.bonds[0].active_slave.as_deref(), Some("eno2"));
    assert!(pulled.spec.observed_at.0 > first.spec.observed_at.0);

    // Nothing changes now: the facts are published again at the refresh interval, with a newer
    // observedAt and the same facts.
    let refreshed = eventually("a refresh of unchanged facts", Duration::from_secs(15), || {
        let api = api.clone();
        let at = pulled.spec.observed_at.0;
        async move {
            let f = api.get("edge-1").await.unwrap();
            (f.spec.observed_at.0 > at).then_some(f)
        }
    })
    .await;
    assert!(refreshed.spec.same_facts(&pulled.spec));
    // Reads are frequent (every 200 ms), publications are not: the refresh took its interval.
    let gap = refreshed
        .spec
        .observed_at
        .0
        .duration_since(pulled.spec.observed_at.0);
    assert!(gap.as_secs_f64() >= 2.5, "refreshed after {gap:?}");

    agent.stop().await;
}
