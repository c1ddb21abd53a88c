//! The agents' host facts merged into an `EdgeNode`'s status: each group (bonds, VLANs, the
//! LINSTOR satellite, DRBD resources) is taken from the node's `NodeFacts` when they are fresh
//! and the agent could read that group, and from the script's reports otherwise; the status says
//! which in `factSources`. Pure.
//!
//! The health conditions are still computed from the script's reports (`node_health`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nodewright_api::edgenode::{
    EdgeNodeStatus, FactGroup, FactOrigin, FactSource, SatelliteState, SatelliteStatus, VlanPurpose,
    VlanStatus,
};
use nodewright_api::nodefacts::NodeFactsSpec;

/// Agent facts older than this many seconds are stale, and the script's reports are used: three
/// of the agent's default refresh intervals (60 s), so one lost publication does not flip a node
/// back to the script's view.
pub const AGENT_FACTS_FRESH_SECONDS: i64 = 180;

/// Whether a read of `source` (a command line) failed for the group.
fn unreadable(facts: &NodeFactsSpec, commands: &[&str]) -> Option<String> {
    facts
        .unreadable
        .iter()
        .find(|u| commands.iter().any(|c| u.source.starts_with(c)))
        .map(|u| format!("the agent could not read {}: {}", u.source, u.message))
}

/// Merges `facts` (the node's `NodeFacts`, if its agent published any) into `status`, computed
/// from the script's reports, at `now` (Unix seconds). Without facts the status is left as it is.
pub fn merge(status: &mut EdgeNodeStatus, facts: Option<&NodeFactsSpec>, now: i64) {
    let Some(facts) = facts else { return };
    let age = now - facts.observed_at.0.as_second();
    let stale = (age > AGENT_FACTS_FRESH_SECONDS)
        .then(|| format!("the agent's facts are {age}s old (fresh within {AGENT_FACTS_FRESH_SECONDS}s)"));
    let at = Some(Time(facts.observed_at.0));
    let mut sources = Vec::new();
    let mut record = |group: FactGroup, not_used: Option<String>| {
        sources.push(FactSource {
            group,
            source: if not_used.is_none() {
                FactOrigin::Agent
            } else {
                FactOrigin::Legacy
            },
            agent_observed_at: at.clone(),
            reason: not_used,
        });
        sources.last().is_some_and(|s| s.source == FactOrigin::Agent)
    };

    let links = stale.clone().or_else(|| unreadable(facts, &["ip -j -d link"]));
    if record(FactGroup::Bonds, links.clone()) {
        status.bonds = facts.bonds.clone();
    }
    let vlans = links.or_else(|| unreadable(facts, &["ip -j addr"]));
    if record(FactGroup::Vlans, vlans) {
        // What a VLAN carries is the site's plan, which the script's reports name; the host
        // does not say.
        let purpose: BTreeMap<&str, VlanPurpose> = status
            .vlans
            .iter()
            .map(|v| (v.name.as_str(), v.purpose))
            .collect();
        let merged = facts
            .vlans
            .iter()
            .map(|v| VlanStatus {
                name: v.name.clone(),
                id: v.id,
                parent: v.parent.clone().unwrap_or_default(),
                purpose: purpose
                    .get(v.name.as_str())
                    .copied()
                    .unwrap_or(VlanPurpose::Other),
                link_state: v.link_state,
                addresses: v.addresses.clone(),
            })
            .collect();
        status.vlans = merged;
    }
    let satellite = stale.clone().or_else(|| {
        facts
            .satellite
            .as_ref()
            .is_none_or(|s| s.registration.is_none())
            .then(|| {
                unreadable(facts, &["linstor"])
                    .unwrap_or_else(|| "the agent did not report the satellite's registration".to_owned())
            })
    });
    if record(FactGroup::LinstorSatellite, satellite)
        && let Some(reported) = &facts.satellite
    {
        let state = match reported.registration {
            // Registered but its service stopped: the controller will see it offline.
            Some(SatelliteState::Online) if reported.service != "active" => SatelliteState::Offline,
            Some(state) => state,
            None => SatelliteState::Unknown,
        };
        let version = facts
            .packages
            .iter()
            .find(|p| p.name == "linstor-satellite")
            .and_then(|p| p.version.clone());
        let storage_pools = status
            .linstor_satellite
            .as_ref()
            .map(|s| s.storage_pools.clone())
            .unwrap_or_default();
        status.linstor_satellite = Some(SatelliteStatus {
            state,
            version,
            storage_pools,
        });
    }
    let drbd = stale.or_else(|| unreadable(facts, &["drbdadm", "drbdsetup"]));
    if record(FactGroup::DrbdResources, drbd) {
        status.drbd_resources = facts.drbd_resources.clone();
    }
    status.fact_sources = sources;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::jiff::Timestamp;
    use nodewright_api::edgenode::{BondMode, BondSlaveStatus, BondStatus, LinkState};
    use nodewright_api::nodefacts::{SatelliteFacts, UnreadableFact, VlanFacts};

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn bond(eno1: LinkState, active: &str) -> BondStatus {
        BondStatus {
            name: "bond0".to_owned(),
            mode: BondMode::ActiveBackup,
            active_slave: Some(active.to_owned()),
            link_state: LinkState::Up,
            slaves: ["eno1", "eno2"]
                .iter()
                .map(|n| BondSlaveStatus {
                    name: (*n).to_owned(),
                    link_state: if *n == "eno1" { eno1 } else { LinkState::Up },
                    link_failures: 0,
                    speed_mbps: None,
                })
                .collect(),
        }
    }

    /// The script's view: both links up, the storage VLAN, the satellite online with a pool.
    fn legacy() -> EdgeNodeStatus {
        EdgeNodeStatus {
            bonds: vec![bond(LinkState::Up, "eno1")],
            vlans: vec![VlanStatus {
                name: "bond0.100".to_owned(),
                id: 100,
                parent: "bond0".to_owned(),
                purpose: VlanPurpose::StorageReplication,
                link_state: LinkState::Up,
                addresses: vec!["10.10.100.11/24".to_owned()],
            }],
            linstor_satellite: Some(SatelliteStatus {
                state: SatelliteState::Online,
                version: None,
                storage_pools: Vec::new(),
            }),
            ..EdgeNodeStatus::default()
        }
    }

    /// The agent's view `age` seconds ago: eno1 pulled.
    fn agent(age: i64) -> NodeFactsSpec {
        NodeFactsSpec {
            node_name: "edge-1".to_owned(),
            observed_at: Time(Timestamp::from_second(NOW - age).unwrap()),
            boot_id: Some("b".to_owned()),
            bonds: vec![bond(LinkState::Down, "eno2")],
            vlans: vec![VlanFacts {
                name: "bond0.100".to_owned(),
                id: 100,
                parent: Some("bond0".to_owned()),
                link_state: LinkState::Up,
                addresses: vec!["10.10.100.11/24".to_owned()],
            }],
            drbd_resources: Vec::new(),
            satellite: Some(SatelliteFacts {
                service: "active".to_owned(),
                registration: Some(SatelliteState::Online),
            }),
            packages: Vec::new(),
            modules: Vec::new(),
            unreadable: Vec::new(),
            node_config: None,
        }
    }

    fn sources(status: &EdgeNodeStatus) -> Vec<(FactGroup, FactOrigin)> {
        status.fact_sources.iter().map(|s| (s.group, s.source)).collect()
    }

    #[test]
    fn without_agent_facts_the_status_is_the_scripts_and_names_no_source() {
        let mut status = legacy();
        merge(&mut status, None, NOW);
        assert_eq!(status, legacy());
    }

    #[test]
    fn fresh_agent_facts_win_and_each_group_says_it_came_from_the_agent() {
        let mut status = legacy();
        merge(&mut status, Some(&agent(10)), NOW);
        assert_eq!(
            status.bonds[0].slaves[0].link_state,
            LinkState::Down,
            "the pulled cable"
        );
        assert_eq!(status.bonds[0].active_slave.as_deref(), Some("eno2"));
        assert_eq!(
            status.vlans[0].purpose,
            VlanPurpose::StorageReplication,
            "the purpose is the plan's"
        );
        assert_eq!(
            sources(&status),
            [
                (FactGroup::Bonds, FactOrigin::Agent),
                (FactGroup::Vlans, FactOrigin::Agent),
                (FactGroup::LinstorSatellite, FactOrigin::Agent),
                (FactGroup::DrbdResources, FactOrigin::Agent),
            ]
        );
        assert!(status.fact_sources.iter().all(|s| s.reason.is_none()));
    }

    #[test]
    fn stale_agent_facts_are_passed_over_for_the_scripts_and_the_age_is_said() {
        let mut status = legacy();
        merge(&mut status, Some(&agent(AGENT_FACTS_FRESH_SECONDS + 1)), NOW);
        assert_eq!(status.bonds, legacy().bonds);
        assert!(status.fact_sources.iter().all(|s| s.source == FactOrigin::Legacy));
        let reason = status.fact_sources[0].reason.as_deref().unwrap();
        assert!(reason.contains("181s old"), "{reason}");
        assert!(status.fact_sources[0].agent_observed_at.is_some());
    }

    #[test]
    fn a_group_the_agent_could_not_read_comes_from_the_script_and_the_others_from_the_agent() {
        let mut facts = agent(10);
        facts.unreadable.push(UnreadableFact {
            source: "linstor --no-color node list".to_owned(),
            message: "exited 20: Unable to connect".to_owned(),
        });
        facts.satellite = Some(SatelliteFacts {
            service: "active".to_owned(),
            registration: None,
        });
        let mut status = legacy();
        merge(&mut status, Some(&facts), NOW);
        assert_eq!(status.linstor_satellite, legacy().linstor_satellite);
        let satellite = status
            .fact_sources
            .iter()
            .find(|s| s.group == FactGroup::LinstorSatellite)
            .unwrap();
        assert_eq!(satellite.source, FactOrigin::Legacy);
        assert!(satellite.reason.as_deref().unwrap().contains("Unable to connect"));
        assert_eq!(sources(&status)[0], (FactGroup::Bonds, FactOrigin::Agent));
    }

    #[test]
    fn a_registered_satellite_whose_service_stopped_is_offline() {
        let mut facts = agent(10);
        facts.satellite = Some(SatelliteFacts {
            service: "failed".to_owned(),
            registration: Some(SatelliteState::Online),
        });
        let mut status = legacy();
        merge(&mut status, Some(&facts), NOW);
        assert_eq!(status.linstor_satellite.unwrap().state, SatelliteState::Offline);
    }
}
