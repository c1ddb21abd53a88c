//! The host's facts: what the agent reads of its own node and publishes as the node's
//! `NodeFacts` (bonds and slaves, VLANs and addresses, DRBD resources and peers, the LINSTOR
//! satellite, storage package versions, loaded modules, the boot id, and the node's `node.conf`
//! typed as `HostConfig`).
//!
//! Pure but for [`read_host`], which runs the read-only commands of [`Read`] through the
//! [`HostOps`] seam and hands their outputs to [`facts_from`]. The commands are the host's own
//! tools, asked the way the OS and storage seams ask them, and their outputs are read with the
//! project's parsers (`ip -j`, `drbdadm status`, `linstor node list`, `lsmod`, the package
//! queries, `node.conf` as the script reads it): the same on a real host and on the simulated one. A read that fails leaves its fact
//! out and says so in `unreadable`; it never stops the others.
//!
//! [`should_publish`] is the rate limit: publish on a change, but not more often than a minimum
//! interval, and re-publish an unchanged host every refresh interval so that its `observedAt`
//! shows the agent is alive.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nodewright_api::edgenode::{BondSlaveStatus, BondStatus, LinkState, SatelliteState};
use nodewright_api::from_host::{bond_mode, drbd_resource};
use nodewright_api::nodefacts::{NodeFactsSpec, PackageFacts, SatelliteFacts, UnreadableFact, VlanFacts};
use nodewright_parsers as p;

use crate::host::{HostOps, HostOutput};
use crate::os::{HostOs, PackageState};
use crate::storage::StorageBackend;

/// The packages whose versions are reported: the DRBD kernel module's, the DRBD tools' and the
/// LINSTOR satellite's.
pub const PACKAGES: [&str; 3] = ["drbd-dkms", "drbd-utils", "linstor-satellite"];
/// The kernel modules whose presence is reported: bonding, VLANs and DRBD.
pub const MODULES: [&str; 4] = ["8021q", "bonding", "drbd", "drbd_transport_tcp"];
/// The LINSTOR satellite's service unit.
pub const SATELLITE_UNIT: &str = "linstor-satellite";
/// Where the kernel tells the boot id.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// The node's own configuration file, the legacy script's `node.conf`.
pub const NODE_CONF: &str = "/etc/vx-rail/node.conf";

/// One read-only question to the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// `cat /proc/sys/kernel/random/boot_id`.
    BootId,
    /// `ip -j -d link show`: bonds, slaves, VLANs, carrier.
    Links,
    /// `ip -j addr show`: addresses.
    Addresses,
    /// The storage backend's local status (`drbdadm status all`).
    Replicas,
    /// `systemctl is-active linstor-satellite`.
    SatelliteService,
    /// The storage backend's node list (`linstor node list`).
    StorageNodes,
    /// The package manager's query for one of [`PACKAGES`].
    Package(&'static str),
    /// `lsmod`.
    Modules,
    /// `cat /etc/vx-rail/node.conf`: the node's configuration as the script reads it.
    NodeConf,
}

/// Every read, in the order they run.
pub fn reads() -> Vec<Read> {
    let mut out = vec![
        Read::BootId,
        Read::Links,
        Read::Addresses,
        Read::Replicas,
        Read::SatelliteService,
        Read::StorageNodes,
    ];
    out.extend(PACKAGES.iter().map(|p| Read::Package(p)));
    out.push(Read::Modules);
    out.push(Read::NodeConf);
    out
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

/// The command of one read.
pub fn argv(read: Read, os: &dyn HostOs, storage: &dyn StorageBackend) -> Vec<String> {
    match read {
        Read::BootId => words(&["cat", BOOT_ID]),
        Read::Links => words(&["ip", "-j", "-d", "link", "show"]),
        Read::Addresses => words(&["ip", "-j", "addr", "show"]),
        Read::Replicas => storage.local_status(),
        Read::SatelliteService => os.service_query(SATELLITE_UNIT),
        Read::StorageNodes => storage.node_list(),
        Read::Package(name) => os.package_query(name),
        Read::Modules => os.module_query(),
        Read::NodeConf => words(&["cat", NODE_CONF]),
    }
}

/// Runs every read on the host and builds the facts from the answers.
pub fn read_host<H: HostOps + ?Sized>(
    host: &mut H,
    node: &str,
    now: Time,
    os: &dyn HostOs,
    storage: &dyn StorageBackend,
) -> NodeFactsSpec {
    let answers: Vec<(Read, Vec<String>, HostOutput)> = reads()
        .into_iter()
        .map(|r| {
            let argv = argv(r, os, storage);
            let out = host.run(&argv);
            (r, argv, out)
        })
        .collect();
    facts_from(node, now, os, &answers)
}

/// A failed command as an unreadable fact.
fn command_failed(out: &HostOutput) -> String {
    let err = out.stderr.trim();
    if err.is_empty() {
        format!("exited {}", out.code)
    } else {
        format!("exited {}: {err}", out.code)
    }
}

/// The facts from each read's command line and output. Pure.
pub fn facts_from(
    node: &str,
    now: Time,
    os: &dyn HostOs,
    answers: &[(Read, Vec<String>, HostOutput)],
) -> NodeFactsSpec {
    let mut facts = NodeFactsSpec {
        node_name: node.to_owned(),
        observed_at: now,
        boot_id: None,
        bonds: Vec::new(),
        vlans: Vec::new(),
        drbd_resources: Vec::new(),
        satellite: None,
        packages: Vec::new(),
        modules: Vec::new(),
        unreadable: Vec::new(),
        node_config: None,
    };
    let mut links: Option<p::IpLinks> = None;
    let mut addresses: Option<p::IpLinks> = None;
    let mut service: Option<String> = None;
    let mut registration: Option<SatelliteState> = None;
    for (read, argv, out) in answers {
        let result: Result<(), String> = match read {
            Read::BootId if out.success() => {
                let id = out.stdout.trim();
                if id.is_empty() || id.len() > 64 || id.contains(char::is_whitespace) {
                    Err(format!("not a boot id: {id:?}"))
                } else {
                    facts.boot_id = Some(id.to_owned());
                    Ok(())
                }
            }
            Read::Links if out.success() => p::parse_ip_json(&out.stdout)
                .map(|l| links = Some(l))
                .map_err(|e| e.to_string()),
            Read::Addresses if out.success() => p::parse_ip_json(&out.stdout)
                .map(|l| addresses = Some(l))
                .map_err(|e| e.to_string()),
            // Without the kernel module there is no resource: that is an answer, not a failure
            // (the modules fact shows the module missing).
            Read::Replicas if !out.success() && out.stderr.contains("generic netlink family") => Ok(()),
            Read::Replicas if out.success() => p::parse_drbd_status(&out.stdout)
                .map(|s| facts.drbd_resources = s.resources.iter().map(drbd_resource).collect())
                .map_err(|e| e.to_string()),
            Read::SatelliteService => os.service_state(out).map(|s| service = Some(s)),
            Read::StorageNodes if out.success() => p::parse_linstor_node_list(&out.stdout)
                .map(|rows| {
                    registration = Some(match rows.iter().find(|r| r.name == node) {
                        Some(row) => SatelliteState::from_linstor(row.state.as_deref().unwrap_or("")),
                        None => SatelliteState::Unregistered,
                    });
                })
                .map_err(|e| e.to_string()),
            Read::Package(name) => os.package_state(name, out).map(|state| {
                facts.packages.push(match state {
                    PackageState::Installed(version) => PackageFacts {
                        name: (*name).to_owned(),
                        version: Some(version),
                        state: "installed".to_owned(),
                    },
                    PackageState::Broken { version, state } => PackageFacts {
                        name: (*name).to_owned(),
                        version: Some(version),
                        state,
                    },
                    PackageState::Absent => PackageFacts {
                        name: (*name).to_owned(),
                        version: None,
                        state: "absent".to_owned(),
                    },
                });
            }),
            Read::Modules if out.success() => p::parse_lsmod(&out.stdout)
                .map(|loaded| {
                    let loaded: BTreeSet<&str> = loaded.iter().map(|m| m.name.as_str()).collect();
                    facts.modules = MODULES
                        .iter()
                        .filter(|m| loaded.contains(**m))
                        .map(|m| (*m).to_owned())
                        .collect();
                })
                .map_err(|e| e.to_string()),
            // Read as the script reads it, then typed: a file the script refuses, or whose values
            // could not work on a host, is unreadable with the line and key at fault.
            Read::NodeConf if out.success() => nodewright_api::from_host::parse_host_config(&out.stdout)
                .map(|c| facts.node_config = Some(c))
                .map_err(|e| e.to_string()),
            _ => Err(command_failed(out)),
        };
        if let Err(message) = result {
            facts.unreadable.push(UnreadableFact {
                source: argv.join(" "),
                message,
            });
        }
    }
    if let Some(links) = &links {
        let (bonds, vlans) = network(links, addresses.as_ref());
        facts.bonds = bonds;
        facts.vlans = vlans;
    }
    if service.is_some() || registration.is_some() {
        facts.satellite = Some(SatelliteFacts {
            service: service.unwrap_or_else(|| "unknown".to_owned()),
            registration,
        });
    }
    facts
}

fn link_state(up: bool) -> LinkState {
    if up { LinkState::Up } else { LinkState::Down }
}

/// Bonds (with their slaves' carrier as the bonding driver reports it) and VLANs (with the
/// addresses of `addresses`, when that read succeeded), in name order.
fn network(links: &p::IpLinks, addresses: Option<&p::IpLinks>) -> (Vec<BondStatus>, Vec<VlanFacts>) {
    let mut bonds = Vec::new();
    let mut vlans = Vec::new();
    for link in &links.links {
        if let Some(info) = link
            .bond
            .as_ref()
            .filter(|_| link.kind.as_deref() == Some("bond"))
        {
            let Some(mode) = info.mode else { continue };
            let mut slaves: Vec<BondSlaveStatus> = links
                .links
                .iter()
                .filter(|s| s.master.as_deref() == Some(link.name.as_str()))
                .map(|s| {
                    let slave = s.bond_slave.as_ref();
                    BondSlaveStatus {
                        name: s.name.clone(),
                        link_state: match slave.and_then(|b| b.mii_status.as_deref()) {
                            Some("UP") => LinkState::Up,
                            Some("DOWN") => LinkState::Down,
                            Some(_) => LinkState::Unknown,
                            None => link_state(s.has_carrier()),
                        },
                        link_failures: slave
                            .and_then(|b| b.link_failure_count)
                            .and_then(|c| i64::try_from(c).ok())
                            .unwrap_or(0),
                        speed_mbps: None,
                    }
                })
                .collect();
            slaves.sort_by(|a, b| a.name.cmp(&b.name));
            let active_slave = info.options.get("active_slave").cloned().or_else(|| {
                links
                    .links
                    .iter()
                    .filter(|s| s.master.as_deref() == Some(link.name.as_str()))
                    .find(|s| s.bond_slave.as_ref().and_then(|b| b.state.as_deref()) == Some("ACTIVE"))
                    .filter(|_| {
                        matches!(
                            mode,
                            p::BondMode::ActiveBackup | p::BondMode::BalanceTlb | p::BondMode::BalanceAlb
                        )
                    })
                    .map(|s| s.name.clone())
            });
            bonds.push(BondStatus {
                name: link.name.clone(),
                mode: bond_mode(mode),
                active_slave,
                link_state: link_state(link.has_carrier()),
                slaves,
            });
        }
        if let Some(vlan) = link
            .vlan
            .as_ref()
            .filter(|_| link.kind.as_deref() == Some("vlan"))
        {
            let Ok(id) = i32::try_from(vlan.id) else { continue };
            let addrs = addresses
                .and_then(|a| a.links.iter().find(|l| l.name == link.name))
                .map(|l| {
                    l.addresses
                        .iter()
                        .map(|a| match a.prefixlen {
                            Some(len) => format!("{}/{len}", a.local),
                            None => a.local.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            vlans.push(VlanFacts {
                name: link.name.clone(),
                id,
                parent: link.parent.clone(),
                link_state: link_state(link.has_carrier() && link.flags.iter().any(|f| f == "UP")),
                addresses: addrs,
            });
        }
    }
    bonds.sort_by(|a, b| a.name.cmp(&b.name));
    vlans.sort_by(|a, b| a.name.cmp(&b.name));
    (bonds, vlans)
}

/// Why facts are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishReason {
    /// Nothing was published yet by this agent.
    First,
    /// A fact changed.
    Changed,
    /// Nothing changed for the refresh interval: the `observedAt` moves on.
    Refresh,
}

/// The rate limit of publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishPolicy {
    /// The least time between two publications: a flapping link is not published at every read.
    pub min_interval: Duration,
    /// The longest time an unchanged host goes without a publication.
    pub refresh: Duration,
}

/// Whether facts just read are published, given the last published ones and the time since.
/// A change held back by the minimum interval is published by the first read after it.
pub fn should_publish(
    last: Option<(&NodeFactsSpec, Duration)>,
    fresh: &NodeFactsSpec,
    policy: PublishPolicy,
) -> Option<PublishReason> {
    let Some((last, since)) = last else {
        return Some(PublishReason::First);
    };
    if since < policy.min_interval {
        return None;
    }
    if !last.same_facts(fresh) {
        Some(PublishReason::Changed)
    } else if since >= policy.refresh {
        Some(PublishReason::Refresh)
    } else {
        None
    }
}

/// The fact groups that differ between two reads, for the log.
pub fn changed_groups(a: &NodeFactsSpec, b: &NodeFactsSpec) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.boot_id != b.boot_id {
        out.push("bootId");
    }
    if a.bonds != b.bonds {
        out.push("bonds");
    }
    if a.vlans != b.vlans {
        out.push("vlans");
    }
    if a.drbd_resources != b.drbd_resources {
        out.push("drbdResources");
    }
    if a.satellite != b.satellite {
        out.push("satellite");
    }
    if a.packages != b.packages {
        out.push("packages");
    }
    if a.modules != b.modules {
        out.push("modules");
    }
    if a.node_config != b.node_config {
        out.push("nodeConfig");
    }
    if a.unreadable != b.unreadable {
        out.push("unreadable");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::os::Debian;
    use crate::storage::LinstorDrbd;
    use k8s_openapi::jiff::Timestamp;
    use nodewright_api::edgenode::BondMode;
    use nodewright_legacy_sim::host::{DEFAULT_EPOCH, Fault, NodeSpec, VlanSpec, World};

    /// `edge-1`'s `node.conf`, as a field technician wrote it.
    const EDGE_1_CONF: &str =
        "# edge-1\nBOND_SLAVES=eno1 eno2\nSTORAGE_VLAN_ID=100\nSTORAGE_IP=10.10.100.11/24 # storage\n";

    /// The host's answer to `argv`; the simulated host has no files of its own, so its
    /// `node.conf` is `conf` (`None`: no such file).
    fn answer(world: &mut World, node: &str, argv: &[String], conf: Option<&str>) -> HostOutput {
        if argv == ["cat", NODE_CONF] {
            return match conf {
                Some(text) => HostOutput {
                    code: 0,
                    stdout: text.to_owned(),
                    stderr: String::new(),
                },
                None => HostOutput::failed(1, format!("cat: {NODE_CONF}: No such file or directory\n")),
            };
        }
        let out = world.exec(node, argv, &[]);
        HostOutput {
            code: out.code,
            stdout: out.stdout_str(),
            stderr: out.stderr_str(),
        }
    }

    fn answers(world: &mut World, node: &str, conf: Option<&str>) -> Vec<(Read, Vec<String>, HostOutput)> {
        reads()
            .into_iter()
            .map(|r| {
                let argv = argv(r, &Debian, &LinstorDrbd);
                let out = answer(world, node, &argv, conf);
                (r, argv, out)
            })
            .collect()
    }

    fn run_on(world: &mut World, node: &str) -> NodeFactsSpec {
        let conf = (node == "edge-1").then_some(EDGE_1_CONF);
        facts_from(node, at(0), &Debian, &answers(world, node, conf))
    }

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(1_700_000_000 + secs).unwrap())
    }

    /// `edge-1` with an active-backup bond over eno1/eno2, a storage VLAN with an address, and
    /// the LINSTOR controller; `edge-2` bare.
    fn world() -> World {
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
        let two = NodeSpec::edge("edge-2", "10.10.100.12");
        World::from_specs(7, DEFAULT_EPOCH, &[one, two]).unwrap()
    }

    #[test]
    fn a_bonded_node_reports_its_bond_vlan_satellite_packages_and_boot_id() {
        let mut world = world();
        let facts = run_on(&mut world, "edge-1");
        assert!(facts.unreadable.is_empty(), "{:?}", facts.unreadable);
        let boot_id = world.node("edge-1").unwrap().boot_id.clone();
        assert_eq!(facts.boot_id.as_deref(), Some(boot_id.as_str()));
        let [bond] = facts.bonds.as_slice() else {
            panic!("{:?}", facts.bonds)
        };
        assert_eq!(bond.name, "bond0");
        assert_eq!(bond.mode, BondMode::ActiveBackup);
        assert!(bond.active_slave.is_some());
        assert_eq!(bond.link_state, LinkState::Up);
        let slaves: Vec<(&str, LinkState)> = bond
            .slaves
            .iter()
            .map(|s| (s.name.as_str(), s.link_state))
            .collect();
        assert_eq!(slaves, [("eno1", LinkState::Up), ("eno2", LinkState::Up)]);
        let [vlan] = facts.vlans.as_slice() else {
            panic!("{:?}", facts.vlans)
        };
        assert_eq!(
            (vlan.name.as_str(), vlan.id, vlan.parent.as_deref()),
            ("bond0.100", 100, Some("bond0"))
        );
        assert_eq!(vlan.addresses, ["10.10.100.11/24"]);
        let satellite = facts.satellite.as_ref().unwrap();
        assert_eq!(satellite.service, "active");
        assert_eq!(satellite.registration, Some(SatelliteState::Online));
        let packages: Vec<(&str, Option<&str>)> = facts
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_deref()))
            .collect();
        assert_eq!(
            packages,
            [
                ("drbd-dkms", Some("9.2.12-1")),
                ("drbd-utils", Some("9.29.0-1")),
                ("linstor-satellite", Some("1.29.2-1"))
            ]
        );
        let conf = facts.node_config.as_ref().unwrap();
        assert_eq!(conf.bond.name, "bond0", "the script's default");
        assert_eq!(conf.bond.slaves, ["eno1", "eno2"]);
        assert_eq!(conf.storage_vlan.address.as_deref(), Some("10.10.100.11/24"));
    }

    #[test]
    fn a_node_conf_the_script_would_refuse_is_unreadable_at_its_line_and_the_other_facts_stay() {
        let mut world = world();
        let conf = "BOND_SLAVES=eno1\nSTORAGE_VLAN_ID=1OO\nSTORAGE_IP=10.10.100.11/24\n";
        let facts = facts_from(
            "edge-1",
            at(0),
            &Debian,
            &answers(&mut world, "edge-1", Some(conf)),
        );
        assert_eq!(facts.node_config, None);
        let [u] = facts.unreadable.as_slice() else {
            panic!("{:?}", facts.unreadable)
        };
        assert_eq!(u.source, "cat /etc/vx-rail/node.conf");
        assert_eq!(
            u.message,
            "node.conf: line 2, STORAGE_VLAN_ID: not a VLAN id (digits): \"1OO\""
        );
        assert!(facts.boot_id.is_some() && !facts.bonds.is_empty() && facts.satellite.is_some());
    }

    #[test]
    fn a_node_without_a_node_conf_says_the_file_is_missing() {
        let mut world = world();
        let facts = run_on(&mut world, "edge-2");
        assert_eq!(facts.node_config, None);
        let sources: Vec<(&str, &str)> = facts
            .unreadable
            .iter()
            .map(|u| (u.source.as_str(), u.message.as_str()))
            .collect();
        assert_eq!(
            sources,
            [(
                "cat /etc/vx-rail/node.conf",
                "exited 1: cat: /etc/vx-rail/node.conf: No such file or directory"
            )]
        );
    }

    #[test]
    fn an_edited_node_conf_is_a_change_of_its_own() {
        let mut world = world();
        let before = run_on(&mut world, "edge-1");
        let edited = format!("{EDGE_1_CONF}BOND_MODE=802.3ad\n");
        let after = facts_from(
            "edge-1",
            at(0),
            &Debian,
            &answers(&mut world, "edge-1", Some(&edited)),
        );
        assert_eq!(after.node_config.as_ref().unwrap().bond.mode, BondMode::Lacp);
        assert_eq!(changed_groups(&before, &after), ["nodeConfig"]);
    }

    #[test]
    fn a_pulled_cable_shows_as_the_slave_losing_carrier_and_the_facts_change() {
        let mut world = world();
        let before = run_on(&mut world, "edge-1");
        world
            .inject(Fault::LinkDown {
                node: "edge-1".to_owned(),
                nic: "eno1".to_owned(),
            })
            .unwrap();
        world.advance(2);
        let after = run_on(&mut world, "edge-1");
        let eno1 = after.bonds[0].slaves.iter().find(|s| s.name == "eno1").unwrap();
        assert_eq!(eno1.link_state, LinkState::Down);
        assert!(eno1.link_failures >= 1, "{eno1:?}");
        assert_eq!(after.bonds[0].active_slave.as_deref(), Some("eno2"));
        assert!(!before.same_facts(&after));
        assert_eq!(changed_groups(&before, &after), ["bonds"]);
    }

    #[test]
    fn an_unregistered_bare_node_says_so_and_reports_no_bond() {
        let mut world = world();
        let facts = run_on(&mut world, "edge-2");
        assert!(facts.bonds.is_empty() && facts.vlans.is_empty());
        assert_eq!(
            facts.satellite.as_ref().and_then(|s| s.registration),
            Some(SatelliteState::Unregistered)
        );
    }

    #[test]
    fn a_read_that_fails_is_listed_as_unreadable_and_the_other_facts_stay() {
        let mut world = world();
        let mut answers = answers(&mut world, "edge-1", Some(EDGE_1_CONF));
        // The controller is unreachable, and `ip` printed something that is not JSON.
        for (read, _, out) in &mut answers {
            match read {
                Read::StorageNodes => *out = HostOutput::failed(20, "Error: Unable to connect\n"),
                Read::Links => out.stdout = "[{\"ifindex\": ".to_owned(),
                _ => {}
            }
        }
        let facts = facts_from("edge-1", at(0), &Debian, &answers);
        let sources: Vec<&str> = facts.unreadable.iter().map(|u| u.source.as_str()).collect();
        assert_eq!(sources, ["ip -j -d link show", "linstor --no-color node list"]);
        assert!(
            facts.unreadable[1]
                .message
                .contains("exited 20: Error: Unable to connect")
        );
        assert!(facts.bonds.is_empty(), "no bond fact without the links");
        assert_eq!(
            facts
                .satellite
                .as_ref()
                .map(|s| (s.service.as_str(), s.registration)),
            Some(("active", None))
        );
        assert!(facts.boot_id.is_some() && !facts.packages.is_empty());
    }

    fn policy() -> PublishPolicy {
        PublishPolicy {
            min_interval: Duration::from_secs(5),
            refresh: Duration::from_secs(60),
        }
    }

    fn facts(boot: &str, secs: i64) -> NodeFactsSpec {
        let mut world = world();
        let mut f = run_on(&mut world, "edge-1");
        f.boot_id = Some(boot.to_owned());
        f.observed_at = at(secs);
        f
    }

    #[test]
    fn the_first_read_is_published_at_once() {
        assert_eq!(
            should_publish(None, &facts("a", 0), policy()),
            Some(PublishReason::First)
        );
    }

    #[test]
    fn a_change_is_published_but_not_before_the_minimum_interval() {
        let last = facts("a", 0);
        let changed = facts("b", 3);
        assert_eq!(
            should_publish(Some((&last, Duration::from_secs(3))), &changed, policy()),
            None
        );
        assert_eq!(
            should_publish(Some((&last, Duration::from_secs(5))), &changed, policy()),
            Some(PublishReason::Changed)
        );
    }

    #[test]
    fn an_unchanged_host_is_published_again_only_at_the_refresh_interval() {
        let last = facts("a", 0);
        let same = facts("a", 30);
        assert!(last.same_facts(&same), "only the time differs");
        assert_eq!(
            should_publish(Some((&last, Duration::from_secs(30))), &same, policy()),
            None
        );
        assert_eq!(
            should_publish(Some((&last, Duration::from_secs(60))), &same, policy()),
            Some(PublishReason::Refresh)
        );
    }
}
