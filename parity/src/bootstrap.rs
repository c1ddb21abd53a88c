//! Bootstrap as a pure decision: the site state (the legacy cluster-state ConfigMap's `cluster`,
//! `members` and `network-plan` keys) created from the `EdgeCluster`'s spec and the nodes' host
//! configuration, the member list kept in step with the nodes present, and each node's role label.
//!
//! What the legacy script does instead (`legacy/lib/bootstrap.sh`): the first node to find no
//! cluster state creates it from its own `node.conf` and is the primary; every later node rewrites
//! the whole member list from its own snapshot, so two nodes joining in one iteration drop each
//! other's row (VXR-141). Here:
//!
//! - **The primary is deterministic**: the node `spec.primaryNode` names, else the first by name
//!   of the nodes present (a Node object and a known host configuration) when the site state is
//!   created. It is decided once: the site state names it from then on, and a node that appears
//!   later, whatever its name, joins as a member (or `joining`, on a single-node site, until a
//!   migration takes it in). With `spec.primaryNode` set, nothing is created until that node is
//!   present.
//! - **Member rows are never lost**: every row to add or re-address is computed from the member
//!   list as the decision read it, and all of a decision's changes go into one patch whose
//!   precondition is the ConfigMap's `resourceVersion` ([`Decision::state_version`]). A second
//!   decision made from the same copy is refused by the API server; the next decision reads the
//!   list with the first one's rows in it.
//! - **Host facts come from the API**: a node's storage address, the storage pool and the network
//!   plan's bond and VLANs are its [`HostConfig`] (`EdgeNode.spec.host`, else the `node.conf` its
//!   agent reported), never the script's ConfigMaps.
//!
//! No I/O: the controller (`controllers::bootstrap`) gathers [`Facts`] from the snapshot and turns
//! the [`Decision`] into guarded writes.

use std::collections::BTreeMap;

use nodewright_api::edgecluster::Topology;
use nodewright_api::hostconfig::HostConfig;
use nodewright_parsers::contract::cluster_key;
use nodewright_parsers::{ClusterBlob, Member, NetworkPlan, NodeRole};
use serde::Serialize;

/// What a [`Action::PatchSiteState`] says when it rewrites the network plan.
pub const PLAN_UPDATED: &str = "network plan updated";

/// The header of the legacy member list.
pub const MEMBERS_HEADER: &str = "node,storage_ip,role,joined";

/// A node present at the site: it has a Node object, and its host configuration is known.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteNode {
    /// The Node's name.
    pub name: String,
    /// What its host is meant to look like.
    pub host: HostConfig,
    /// Its `vx-rail.io/role` label, when it has one.
    pub role_label: Option<String>,
}

/// The site state as the decision read it: the cluster-state ConfigMap's keys, each parsed, or
/// why it could not be.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteState {
    /// The `cluster` key.
    pub cluster: Result<ClusterBlob, String>,
    /// The `members` key (an absent key is an empty list).
    pub members: Result<Vec<Member>, String>,
    /// The `network-plan` key as written (compared as text: the plan is rendered exactly as the
    /// script renders it).
    pub network_plan: Option<String>,
    /// The ConfigMap's `resourceVersion`: the precondition of every patch decided from this copy.
    pub resource_version: Option<String>,
}

/// Everything one bootstrap decision reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    /// Now, in Unix seconds (the `created` and `joined` times of what is written).
    pub now: i64,
    /// The site's topology (`EdgeCluster.spec.profile.topology`).
    pub topology: Topology,
    /// The primary the `EdgeCluster` names (`spec.primaryNode`), if it names one.
    pub primary_node: Option<String>,
    /// The nodes present, by name.
    pub nodes: Vec<SiteNode>,
    /// Nodes that have a Node object but no known host configuration yet (no `spec.host`, no
    /// fresh agent facts with a `node.conf`): they wait.
    pub without_host: Vec<String>,
    /// The site state, `None` when the cluster-state ConfigMap does not exist.
    pub state: Option<SiteState>,
}

/// One thing the decision asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the cluster-state ConfigMap with these keys (`cluster`, `members`,
    /// `network-plan`). Guarded by the create: one that finds it created meanwhile decides again.
    CreateSiteState {
        /// The primary it names.
        primary: String,
        /// The keys.
        data: BTreeMap<String, String>,
    },
    /// Merge-patch these keys of the cluster-state ConfigMap (`members`, `network-plan`), on
    /// the precondition of [`Decision::state_version`].
    PatchSiteState {
        /// The keys.
        data: BTreeMap<String, String>,
        /// What changes, one entry per row added or re-addressed, for Events.
        what: Vec<String>,
    },
    /// Set a node's `vx-rail.io/role` label to its member row's role.
    RoleLabel {
        /// The Node.
        node: String,
        /// The role.
        role: String,
    },
}

/// What one bootstrap decision concludes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The writes, in order: the site state first, then the labels that follow from it.
    pub actions: Vec<Action>,
    /// The `resourceVersion` a [`Action::PatchSiteState`] is guarded by.
    pub state_version: Option<String>,
    /// What the bootstrap still waits for, when it does (a node's host configuration, the named
    /// primary), for the `Bootstrapped` condition.
    pub waiting: Vec<String>,
}

impl Decision {
    /// Whether the site is bootstrapped as far as the nodes present go: nothing to write and
    /// nothing waited for.
    pub fn done(&self) -> bool {
        self.actions.is_empty() && self.waiting.is_empty()
    }
}

/// The legacy topology word and replica count of a site topology.
pub fn topology_words(t: Topology) -> (&'static str, u32) {
    match t {
        Topology::SingleNode => ("single", 1),
        Topology::MultiNode => ("multi", 2),
    }
}

/// The role a node joining an existing site gets: `primary` if the site state names it, else
/// `member` on a multi-node site, else `joining` (a single-node site takes a second node in only
/// through a migration). The script's rule, unchanged.
pub fn joining_role(node: &str, primary: &str, topology: &str) -> &'static str {
    if node == primary {
        "primary"
    } else if topology == "multi" {
        "member"
    } else {
        "joining"
    }
}

/// The primary a new site gets, or what it waits for: the node `spec.primaryNode` names once it
/// is present, else the first by name of the nodes present.
pub fn choose_primary(facts: &Facts) -> Result<&SiteNode, String> {
    match &facts.primary_node {
        Some(named) => facts.nodes.iter().find(|n| &n.name == named).ok_or_else(|| {
            format!(
                "the primary node {named} (spec.primaryNode) is not present yet (no Node object or no host configuration)"
            )
        }),
        None => facts
            .nodes
            .iter()
            .min_by(|a, b| a.name.cmp(&b.name))
            .ok_or_else(|| "no node with a known host configuration is present yet".to_owned()),
    }
}

/// A node's member row from its host configuration: its storage address with the prefix length,
/// as the script writes `STORAGE_IP`. `Err` when the host configuration has no storage address.
fn storage_address(n: &SiteNode) -> Result<&str, String> {
    n.host
        .storage_vlan
        .address
        .as_deref()
        .ok_or_else(|| format!("{}: its host configuration has no storage VLAN address", n.name))
}

/// The members CSV, in row order.
pub fn members_csv(rows: &[Member]) -> String {
    let mut out = String::from(MEMBERS_HEADER);
    for m in rows {
        out.push('\n');
        out.push_str(&format!(
            "{},{},{},{}",
            m.node,
            m.storage_ip,
            m.role.as_str(),
            m.joined
        ));
    }
    out
}

#[derive(Serialize)]
struct PlanJson<'a> {
    version: u32,
    bond: BondJson<'a>,
    #[serde(rename = "storageVlan")]
    storage_vlan: StorageVlanJson,
    #[serde(rename = "mgmtVlan")]
    mgmt_vlan: Option<MgmtVlanJson>,
    nodes: Vec<NodeJson<'a>>,
}

#[derive(Serialize)]
struct BondJson<'a> {
    name: &'a str,
    mode: serde_json::Value,
    miimon: i32,
    slaves: &'a [String],
}

#[derive(Serialize)]
struct StorageVlanJson {
    id: i32,
    #[serde(rename = "prefixLength")]
    prefix_length: serde_json::Value,
}

#[derive(Serialize)]
struct MgmtVlanJson {
    id: i32,
}

#[derive(Serialize)]
struct NodeJson<'a> {
    name: &'a str,
    #[serde(rename = "storageIp")]
    storage_ip: &'a str,
    role: &'a str,
}

/// The site network plan, one line of JSON exactly as the script renders it
/// (`network_plan_json`): the bond and VLANs of the primary's host configuration, one entry per
/// member row in list order.
pub fn network_plan(primary: &HostConfig, rows: &[Member]) -> String {
    let prefix = primary
        .storage_vlan
        .address
        .as_deref()
        .and_then(|a| a.split_once('/'))
        .and_then(|(_, p)| p.parse::<u8>().ok())
        .map_or(serde_json::Value::Null, serde_json::Value::from);
    let plan = PlanJson {
        version: 1,
        bond: BondJson {
            name: &primary.bond.name,
            mode: serde_json::to_value(primary.bond.mode).unwrap_or(serde_json::Value::Null),
            miimon: primary.bond.miimon,
            slaves: &primary.bond.slaves,
        },
        storage_vlan: StorageVlanJson {
            id: primary.storage_vlan.id,
            prefix_length: prefix,
        },
        mgmt_vlan: primary.mgmt_vlan.as_ref().map(|v| MgmtVlanJson { id: v.id }),
        nodes: rows
            .iter()
            .map(|m| NodeJson {
                name: &m.node,
                storage_ip: &m.storage_ip,
                role: m.role.as_str(),
            })
            .collect(),
    };
    serde_json::to_string(&plan).unwrap_or_default()
}

/// Whether a network plan as written says the same as `want` (the plan's text, or, when it is
/// not byte-identical, the parsed plan: a plan written by another renderer with the same content
/// is not rewritten).
fn same_plan(written: Option<&str>, want: &str) -> bool {
    match written {
        None => false,
        Some(w) if w == want => true,
        Some(w) => {
            let parse = |s: &str| nodewright_parsers::parse_network_plan(s).ok();
            let (a, b): (Option<NetworkPlan>, Option<NetworkPlan>) = (parse(w), parse(want));
            a.is_some() && a == b
        }
    }
}

/// The bootstrap decision for the site: pure.
pub fn decide(facts: &Facts) -> Decision {
    let mut d = Decision::default();
    for n in &facts.without_host {
        d.waiting.push(format!(
            "{n}: waiting for its host configuration (EdgeNode spec.host, or the node.conf its agent reports)"
        ));
    }
    let mut rows: Vec<Member>;
    match &facts.state {
        None => {
            let primary = match choose_primary(facts) {
                Ok(p) => p,
                Err(why) => {
                    d.waiting.push(why);
                    return d;
                }
            };
            let (topology, replicas) = topology_words(facts.topology);
            let joined = u64::try_from(facts.now).unwrap_or_default();
            // The primary first (the script's row order), then the others present, by name.
            let mut order: Vec<&SiteNode> = facts.nodes.iter().filter(|n| n.name != primary.name).collect();
            order.sort_by(|a, b| a.name.cmp(&b.name));
            order.insert(0, primary);
            rows = Vec::new();
            for n in order {
                match storage_address(n) {
                    Ok(ip) => rows.push(Member {
                        node: n.name.clone(),
                        storage_ip: ip.to_owned(),
                        role: NodeRole::from_text(joining_role(&n.name, &primary.name, topology)),
                        joined,
                    }),
                    Err(why) if n.name == primary.name => {
                        d.waiting.push(why);
                        return d;
                    }
                    Err(why) => d.waiting.push(why),
                }
            }
            let cluster = format!(
                "primary={};topology={topology};replicas={replicas};storage_pool={};created={joined};schema=4",
                primary.name, primary.host.storage.pool
            );
            let data = BTreeMap::from([
                (cluster_key::CLUSTER.to_owned(), cluster),
                (cluster_key::MEMBERS.to_owned(), members_csv(&rows)),
                (
                    cluster_key::NETWORK_PLAN.to_owned(),
                    network_plan(&primary.host, &rows),
                ),
            ]);
            d.actions.push(Action::CreateSiteState {
                primary: primary.name.clone(),
                data,
            });
        }
        Some(state) => {
            let (cluster, members) = match (&state.cluster, &state.members) {
                (Ok(c), Ok(m)) => (c, m),
                (Err(e), _) => {
                    d.waiting.push(format!(
                        "the cluster-state `cluster` key cannot be read, so nothing is written to it: {e}"
                    ));
                    return d;
                }
                (_, Err(e)) => {
                    d.waiting.push(format!(
                        "the cluster-state `members` key cannot be read, so no row is added to it: {e}"
                    ));
                    return d;
                }
            };
            rows = members.clone();
            let mut what = Vec::new();
            let joined = u64::try_from(facts.now).unwrap_or_default();
            let topology = cluster.topology.as_str();
            let mut present: Vec<&SiteNode> = facts.nodes.iter().collect();
            present.sort_by(|a, b| a.name.cmp(&b.name));
            for n in present {
                let ip = match storage_address(n) {
                    Ok(ip) => ip,
                    Err(why) => {
                        d.waiting.push(why);
                        continue;
                    }
                };
                match rows.iter_mut().find(|m| m.node == n.name) {
                    Some(row) if row.storage_ip != ip => {
                        // A re-addressed node (VXR-212): its row follows its host configuration.
                        what.push(format!("{}: storage IP {} -> {ip}", n.name, row.storage_ip));
                        row.storage_ip = ip.to_owned();
                    }
                    Some(_) => {}
                    None => {
                        let role = joining_role(&n.name, &cluster.primary, topology);
                        what.push(format!("{} joins as {role} ({ip})", n.name));
                        rows.push(Member {
                            node: n.name.clone(),
                            storage_ip: ip.to_owned(),
                            role: NodeRole::from_text(role),
                            joined,
                        });
                    }
                }
            }
            let mut data = BTreeMap::new();
            if !what.is_empty() {
                data.insert(cluster_key::MEMBERS.to_owned(), members_csv(&rows));
            }
            // The network plan follows the member list and the primary's host configuration;
            // without the primary's, it is left as it is.
            if let Some(primary) = facts.nodes.iter().find(|n| n.name == cluster.primary) {
                let plan = network_plan(&primary.host, &rows);
                if !same_plan(state.network_plan.as_deref(), &plan) {
                    what.push(PLAN_UPDATED.to_owned());
                    data.insert(cluster_key::NETWORK_PLAN.to_owned(), plan);
                }
            }
            if !data.is_empty() {
                d.state_version = state.resource_version.clone();
                d.actions.push(Action::PatchSiteState { data, what });
            }
        }
    }
    // Role labels follow the member rows (the ones this decision writes included: the labels
    // stand after the site-state write in the sequence, so a refused write labels nothing).
    for row in &rows {
        if let Some(n) = facts.nodes.iter().find(|n| n.name == row.node)
            && n.role_label.as_deref() != Some(row.role.as_str())
        {
            d.actions.push(Action::RoleLabel {
                node: n.name.clone(),
                role: row.role.as_str().to_owned(),
            });
        }
    }
    d
}

#[cfg(test)]
mod tests;
