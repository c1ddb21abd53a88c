//! The steady-state network's decisions: what one node's bond and VLANs need, from what its host
//! is meant to look like ([`HostConfig`]: `EdgeNode.spec.host`, else the reported `node.conf`) and
//! what its agent last reported ([`NodeFactsSpec`]). The same checks the script's network step
//! makes every loop (`legacy/lib/network.sh`: `bond_ensure`, `bond_ensure_slaves`,
//! `bond_ensure_active_has_carrier`, `vlan_ensure`, `bond_watch_failover`), decided once from
//! facts instead of from the script's own reads.
//!
//! Pure: no clock, no API. The caller finds the intent and fresh facts in the turn's snapshot
//! ([`crate::controllers::Snapshot::host_config`], [`crate::controllers::Snapshot::fresh_facts`])
//! and says whether a bond flip holds the node ([`Hold::Flipping`]): a bond being flipped is never
//! "repaired" back.

use nodewright_api::edgenode::{BondMode, BondStatus, LinkState};
use nodewright_api::hostconfig::{HostConfig, VlanConfig};
use nodewright_api::nodefacts::NodeFactsSpec;

/// One change the node's network needs, in the order the script would make it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// The bond does not exist: create it in the intended mode and `miimon`, enslave every
    /// configured slave, bring it up (`bond_ensure`).
    AssembleBond {
        /// The bond.
        bond: String,
        /// Its intended mode.
        mode: BondMode,
        /// Its intended MII monitoring interval (ms).
        miimon: i32,
        /// Its slaves, in the configuration's order.
        slaves: Vec<String>,
    },
    /// The bond exists in another mode than intended, and no flip is under way: set the intended
    /// mode back (the bond is taken apart and assembled again, as a mode flip does).
    SetMode {
        /// The bond.
        bond: String,
        /// The mode it runs in.
        from: BondMode,
        /// The intended mode.
        to: BondMode,
    },
    /// The bond exists but is down: bring it up.
    BondUp {
        /// The bond.
        bond: String,
    },
    /// A configured slave is not in the bond (a NIC swap, a udev rename): enslave it again
    /// (`bond_ensure_slaves`).
    Enslave {
        /// The bond.
        bond: String,
        /// The slave.
        slave: String,
    },
    /// In `active-backup`, the active slave has no carrier while another slave has: make that one
    /// active (`bond_ensure_active_has_carrier`; step `bond-set-active`).
    FailOver {
        /// The bond.
        bond: String,
        /// The active slave without carrier, or `None` when none is active.
        from: Option<String>,
        /// The first slave, in the bond's order, with carrier.
        to: String,
    },
    /// A configured VLAN interface does not exist: create it on the bond.
    CreateVlan {
        /// The bond it sits on.
        bond: String,
        /// `<bond>.<id>`.
        name: String,
        /// The VLAN id.
        id: i32,
    },
    /// A configured VLAN interface is down: bring it up.
    VlanUp {
        /// `<bond>.<id>`.
        name: String,
    },
    /// A configured VLAN interface lacks the node's address on it.
    AddAddress {
        /// `<bond>.<id>`.
        name: String,
        /// The address, CIDR.
        address: String,
    },
}

impl Repair {
    /// What the repair does, as one short sentence for Events and divergences.
    pub fn describe(&self) -> String {
        match self {
            Repair::AssembleBond {
                bond,
                mode,
                miimon,
                slaves,
            } => format!(
                "assemble {bond} (mode {}, miimon {miimon}, slaves {})",
                mode_name(*mode),
                slaves.join(",")
            ),
            Repair::SetMode { bond, from, to } => format!(
                "set {bond} back from mode {} to {}",
                mode_name(*from),
                mode_name(*to)
            ),
            Repair::BondUp { bond } => format!("bring {bond} up"),
            Repair::Enslave { bond, slave } => format!("enslave {slave} to {bond}"),
            Repair::FailOver { bond, from, to } => format!(
                "fail {bond} over from {} to {to}",
                from.as_deref().unwrap_or("none")
            ),
            Repair::CreateVlan { name, id, .. } => format!("create VLAN {name} (id {id})"),
            Repair::VlanUp { name } => format!("bring {name} up"),
            Repair::AddAddress { name, address } => format!("add {address} to {name}"),
        }
    }
}

/// The bonding mode as the kernel and `node.conf` spell it.
pub fn mode_name(mode: BondMode) -> &'static str {
    match mode {
        BondMode::BalanceRr => "balance-rr",
        BondMode::ActiveBackup => "active-backup",
        BondMode::BalanceXor => "balance-xor",
        BondMode::Broadcast => "broadcast",
        BondMode::Lacp => "802.3ad",
        BondMode::BalanceTlb => "balance-tlb",
        BondMode::BalanceAlb => "balance-alb",
    }
}

/// Why a node's network is not decided this turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Neither an `EdgeNode.spec.host` nor a fresh reported `node.conf`: nothing says what the
    /// host should look like.
    NoIntent,
    /// No fresh facts from the node's agent: what the host looks like is not known.
    NoFacts,
    /// A bond flip of this node is under way (a `BondFlip` the operator owns that has not ended,
    /// or a legacy `bond-flip.<node>` request): its mode and active slave are the flip's.
    Flipping(String),
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::NoIntent => f.write_str("no EdgeNode spec.host and no fresh node.conf from the agent"),
            Hold::NoFacts => f.write_str("no fresh facts from the node's agent"),
            Hold::Flipping(what) => write!(f, "{what} is under way"),
        }
    }
}

/// What one node's network needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The changes, in order. Empty when the host is as intended.
    pub repairs: Vec<Repair>,
    /// The value `vx-rail.io/bond-active` must be set to (the active slave the facts show, or
    /// `none`), when the Node says something else (`bond_watch_failover`). A failover decided in
    /// the same turn is not anticipated: the annotation follows the facts that report it.
    pub bond_active: Option<String>,
    /// What is wrong that no repair can change (no slave has carrier), for status and Events.
    pub degraded: Vec<String>,
}

/// Decides one node's network. `annotated` is the Node's `vx-rail.io/bond-active` (absent when
/// the Node has none); `flipping` names the bond flip under way on the node, if any.
pub fn decide(
    intent: Option<&HostConfig>,
    facts: Option<&NodeFactsSpec>,
    annotated: Option<&str>,
    flipping: Option<&str>,
) -> Result<Decision, Hold> {
    let intent = intent.ok_or(Hold::NoIntent)?;
    let facts = facts.ok_or(Hold::NoFacts)?;
    if let Some(what) = flipping {
        return Err(Hold::Flipping(what.to_owned()));
    }
    let mut d = Decision::default();
    let want = &intent.bond;
    match facts.bonds.iter().find(|b| b.name == want.name) {
        None => {
            d.repairs.push(Repair::AssembleBond {
                bond: want.name.clone(),
                mode: want.mode,
                miimon: want.miimon,
                slaves: want.slaves.clone(),
            });
            // The VLANs of a bond that does not exist cannot exist either.
            for v in vlans(intent) {
                d.repairs.push(Repair::CreateVlan {
                    bond: want.name.clone(),
                    name: format!("{}.{}", want.name, v.id),
                    id: v.id,
                });
                if let Some(a) = &v.address {
                    d.repairs.push(Repair::AddAddress {
                        name: format!("{}.{}", want.name, v.id),
                        address: a.clone(),
                    });
                }
            }
            return Ok(d);
        }
        Some(bond) => {
            if bond.mode != want.mode {
                d.repairs.push(Repair::SetMode {
                    bond: want.name.clone(),
                    from: bond.mode,
                    to: want.mode,
                });
            }
            if bond.link_state == LinkState::Down && bond.slaves.iter().any(|s| s.link_state == LinkState::Up)
            {
                d.repairs.push(Repair::BondUp {
                    bond: want.name.clone(),
                });
            }
            for slave in &want.slaves {
                if !bond.slaves.iter().any(|s| &s.name == slave) {
                    d.repairs.push(Repair::Enslave {
                        bond: want.name.clone(),
                        slave: slave.clone(),
                    });
                }
            }
            failover(bond, &mut d);
            let now = bond.active_slave.as_deref().unwrap_or("none");
            if annotated != Some(now) {
                d.bond_active = Some(now.to_owned());
            }
        }
    }
    for v in vlans(intent) {
        let name = format!("{}.{}", want.name, v.id);
        match facts.vlans.iter().find(|f| f.name == name) {
            None => {
                d.repairs.push(Repair::CreateVlan {
                    bond: want.name.clone(),
                    name: name.clone(),
                    id: v.id,
                });
                if let Some(a) = &v.address {
                    d.repairs.push(Repair::AddAddress {
                        name,
                        address: a.clone(),
                    });
                }
            }
            Some(f) => {
                if f.link_state == LinkState::Down {
                    d.repairs.push(Repair::VlanUp { name: name.clone() });
                }
                if let Some(a) = &v.address
                    && !f.addresses.iter().any(|x| x == a)
                {
                    d.repairs.push(Repair::AddAddress {
                        name,
                        address: a.clone(),
                    });
                }
            }
        }
    }
    Ok(d)
}

/// The VLANs the configuration asks for, storage first.
fn vlans(intent: &HostConfig) -> impl Iterator<Item = &VlanConfig> {
    std::iter::once(&intent.storage_vlan).chain(intent.mgmt_vlan.as_ref())
}

/// `bond_ensure_active_has_carrier`: in `active-backup` only (the driver of early images never
/// noticed a dead port with `miimon=0`), an active slave without carrier is replaced by the first
/// other slave, in the bond's order, that has carrier.
fn failover(bond: &BondStatus, d: &mut Decision) {
    if bond.mode != BondMode::ActiveBackup {
        return;
    }
    let carrier = |name: &str| {
        bond.slaves
            .iter()
            .any(|s| s.name == name && s.link_state == LinkState::Up)
    };
    if bond.active_slave.as_deref().is_some_and(carrier) {
        return;
    }
    let to = bond
        .slaves
        .iter()
        .find(|s| Some(s.name.as_str()) != bond.active_slave.as_deref() && s.link_state == LinkState::Up);
    match to {
        Some(s) => d.repairs.push(Repair::FailOver {
            bond: bond.name.clone(),
            from: bond.active_slave.clone(),
            to: s.name.clone(),
        }),
        None => d.degraded.push(format!(
            "no slave of {} has carrier ({})",
            bond.name,
            bond.slaves
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use nodewright_api::edgenode::BondSlaveStatus;
    use nodewright_api::nodefacts::VlanFacts;

    use super::*;

    fn intent() -> HostConfig {
        serde_json::from_value(serde_json::json!({
            "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1", "eno2"]},
            "storageVlan": {"id": 100, "address": "10.100.0.11/24"},
            "mgmtVlan": {"id": 200, "address": "10.200.0.11/24"},
            "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
        }))
        .unwrap()
    }

    fn slave(name: &str, up: bool) -> BondSlaveStatus {
        BondSlaveStatus {
            name: name.into(),
            link_state: if up { LinkState::Up } else { LinkState::Down },
            link_failures: 0,
            speed_mbps: None,
        }
    }

    fn vlan(id: i32, address: Option<&str>) -> VlanFacts {
        VlanFacts {
            name: format!("bond0.{id}"),
            id,
            parent: Some("bond0".into()),
            link_state: LinkState::Up,
            addresses: address.into_iter().map(str::to_owned).collect(),
        }
    }

    /// A host exactly as intended: bond0 in active-backup on eno1 and eno2, eno1 active, both
    /// VLANs up with their addresses.
    fn healthy() -> NodeFactsSpec {
        NodeFactsSpec {
            node_name: "edge-1".into(),
            observed_at: Time(k8s_openapi::jiff::Timestamp::from_second(1_790_000_000).unwrap()),
            boot_id: None,
            bonds: vec![BondStatus {
                name: "bond0".into(),
                mode: BondMode::ActiveBackup,
                active_slave: Some("eno1".into()),
                link_state: LinkState::Up,
                slaves: vec![slave("eno1", true), slave("eno2", true)],
            }],
            vlans: vec![
                vlan(100, Some("10.100.0.11/24")),
                vlan(200, Some("10.200.0.11/24")),
            ],
            drbd_resources: vec![],
            satellite: None,
            packages: vec![],
            modules: vec![],
            unreadable: vec![],
            node_config: None,
        }
    }

    fn decide_for(facts: &NodeFactsSpec, annotated: Option<&str>) -> Decision {
        decide(Some(&intent()), Some(facts), annotated, None).unwrap()
    }

    #[test]
    fn a_host_as_intended_with_its_annotation_needs_nothing() {
        assert_eq!(decide_for(&healthy(), Some("eno1")), Decision::default());
    }

    #[test]
    fn a_missing_bond_is_assembled_with_its_vlans_and_addresses_in_the_scripts_order() {
        let mut f = healthy();
        f.bonds.clear();
        f.vlans.clear();
        let d = decide_for(&f, Some("eno1"));
        let described: Vec<String> = d.repairs.iter().map(Repair::describe).collect();
        assert_eq!(
            described,
            [
                "assemble bond0 (mode active-backup, miimon 100, slaves eno1,eno2)",
                "create VLAN bond0.100 (id 100)",
                "add 10.100.0.11/24 to bond0.100",
                "create VLAN bond0.200 (id 200)",
                "add 10.200.0.11/24 to bond0.200",
            ]
        );
        assert_eq!(d.bond_active, None, "no bond, nothing to annotate yet");
    }

    #[test]
    fn a_bond_in_another_mode_is_set_back_to_the_intended_one() {
        let mut f = healthy();
        f.bonds[0].mode = BondMode::Lacp;
        f.bonds[0].active_slave = None;
        let d = decide_for(&f, Some("none"));
        assert_eq!(
            d.repairs,
            [Repair::SetMode {
                bond: "bond0".into(),
                from: BondMode::Lacp,
                to: BondMode::ActiveBackup
            }]
        );
    }

    #[test]
    fn a_slave_missing_from_the_bond_is_enslaved_again() {
        let mut f = healthy();
        f.bonds[0].slaves.retain(|s| s.name != "eno2");
        let d = decide_for(&f, Some("eno1"));
        assert_eq!(
            d.repairs,
            [Repair::Enslave {
                bond: "bond0".into(),
                slave: "eno2".into()
            }]
        );
    }

    #[test]
    fn a_bond_that_is_down_with_a_slave_up_is_brought_up() {
        let mut f = healthy();
        f.bonds[0].link_state = LinkState::Down;
        assert_eq!(
            decide_for(&f, Some("eno1")).repairs,
            [Repair::BondUp { bond: "bond0".into() }]
        );
    }

    #[test]
    fn a_missing_vlan_is_created_with_its_address_and_a_missing_address_is_added() {
        let mut f = healthy();
        f.vlans = vec![vlan(100, None)];
        let d = decide_for(&f, Some("eno1"));
        assert_eq!(
            d.repairs,
            [
                Repair::AddAddress {
                    name: "bond0.100".into(),
                    address: "10.100.0.11/24".into()
                },
                Repair::CreateVlan {
                    bond: "bond0".into(),
                    name: "bond0.200".into(),
                    id: 200
                },
                Repair::AddAddress {
                    name: "bond0.200".into(),
                    address: "10.200.0.11/24".into()
                },
            ]
        );
    }

    #[test]
    fn a_vlan_that_is_down_is_brought_up() {
        let mut f = healthy();
        f.vlans[1].link_state = LinkState::Down;
        assert_eq!(
            decide_for(&f, Some("eno1")).repairs,
            [Repair::VlanUp {
                name: "bond0.200".into()
            }]
        );
    }

    #[test]
    fn an_active_slave_without_carrier_fails_over_to_the_first_slave_with_carrier() {
        let mut f = healthy();
        f.bonds[0].slaves = vec![slave("eno1", false), slave("eno2", true)];
        let d = decide_for(&f, Some("eno1"));
        assert_eq!(
            d.repairs,
            [Repair::FailOver {
                bond: "bond0".into(),
                from: Some("eno1".into()),
                to: "eno2".into()
            }]
        );
        assert_eq!(
            d.bond_active, None,
            "the annotation follows the facts, not the plan"
        );
    }

    #[test]
    fn no_slave_with_carrier_is_degraded_and_nothing_is_failed_over() {
        let mut f = healthy();
        f.bonds[0].slaves = vec![slave("eno1", false), slave("eno2", false)];
        let d = decide_for(&f, Some("eno1"));
        assert!(d.repairs.is_empty(), "{d:?}");
        assert_eq!(d.degraded, ["no slave of bond0 has carrier (eno1,eno2)"]);
    }

    #[test]
    fn a_mode_without_an_active_slave_never_fails_over() {
        let mut intended = intent();
        intended.bond.mode = BondMode::Lacp;
        let mut f = healthy();
        f.bonds[0].mode = BondMode::Lacp;
        f.bonds[0].active_slave = None;
        f.bonds[0].slaves = vec![slave("eno1", false), slave("eno2", true)];
        let d = decide(Some(&intended), Some(&f), Some("none"), None).unwrap();
        assert_eq!(d, Decision::default());
    }

    #[test]
    fn the_bond_active_annotation_follows_the_active_slave_the_driver_chose() {
        let mut f = healthy();
        f.bonds[0].active_slave = Some("eno2".into());
        assert_eq!(decide_for(&f, Some("eno1")).bond_active.as_deref(), Some("eno2"));
        assert_eq!(decide_for(&f, None).bond_active.as_deref(), Some("eno2"));
        f.bonds[0].active_slave = None;
        f.bonds[0].mode = BondMode::Lacp;
        let mut intended = intent();
        intended.bond.mode = BondMode::Lacp;
        let d = decide(Some(&intended), Some(&f), Some("eno1"), None).unwrap();
        assert_eq!(d.bond_active.as_deref(), Some("none"), "as the script writes it");
    }

    #[test]
    fn a_node_whose_bond_is_being_flipped_is_left_alone() {
        let mut f = healthy();
        f.bonds[0].mode = BondMode::Lacp;
        assert_eq!(
            decide(
                Some(&intent()),
                Some(&f),
                Some("eno1"),
                Some("BondFlip edge-1-lacp")
            ),
            Err(Hold::Flipping("BondFlip edge-1-lacp".into()))
        );
    }

    #[test]
    fn without_intent_or_fresh_facts_nothing_is_decided() {
        assert_eq!(decide(None, Some(&healthy()), None, None), Err(Hold::NoIntent));
        assert_eq!(decide(Some(&intent()), None, None, None), Err(Hold::NoFacts));
    }
}
