//! The bootstrap controller: the site state, the member rows and the role labels that
//! [`crate::bootstrap::decide`] asks for, the adoption of each node's `node.conf` into its
//! `EdgeNode.spec.host`, and each node's legacy ConfigMap.
//!
//! Which nodes belong to the site: those with an `EdgeNode` or agent `NodeFacts` and a Node
//! object. A node whose host configuration is known ([`Snapshot::host_config`]) is present; one
//! whose is not yet makes the bootstrap wait for it (its `Bootstrapped` condition says so).
//!
//! **The node.conf moves into the API once.** A node whose `EdgeNode` has no `spec.host`, and
//! whose agent reported its `node.conf` in fresh facts, gets it adopted as `spec.host` by a
//! server-side apply under the operator's field manager, never forced: a value a person set (or
//! sets between the decision and the write) is theirs, and the API server's conflict is reported
//! in a Warning Event (`HostConfigConflict`), not overwritten. From then on the decisions read
//! `spec.host`; a later change of the file does not change the API.
//!
//! **Each node's ConfigMap** (`vx-rail-node-<node>`) is created by [`admit`], which the turn runs
//! ahead of the takeover's fence: a script in a site whose bootstrap the operator owns does not
//! create it, and its report (which carries its acknowledgement of the takeover) patches it, so
//! without it the script could never acknowledge and the fence would wait for ever. The create is
//! safe ahead of the fence: it never overwrites (a script still bootstrapping creates the same
//! ConfigMap and takes "already exists" as done, and so does the writer).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Resource, ResourceExt};
use nodewright_api::common::{ConditionStatus, set_condition};
use nodewright_api::edgecluster::EdgeCluster;

use super::{LegacyConfigMap, Sequence, Snapshot, WorkflowController, Write};
use crate::bootstrap::{self as boot, Action, Decision, Facts, SiteNode, SiteState};
use crate::takeover::Workflow;

/// The legacy role label.
pub const ROLE_LABEL: &str = nodewright_parsers::contract::label::ROLE;

/// The `EdgeCluster` condition that says whether the site is bootstrapped.
pub const BOOTSTRAPPED: &str = "Bootstrapped";

/// The bootstrap controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bootstrap;

impl WorkflowController for Bootstrap {
    fn workflow(&self) -> Workflow {
        Workflow::Bootstrap
    }

    fn plan(&self, snapshot: &Snapshot<'_>) -> Vec<Sequence> {
        let mut sequences = Vec::new();
        let d = boot::decide(&facts(snapshot));
        let site = site_writes(snapshot, &d);
        if !site.is_empty() {
            sequences.push(Sequence {
                regarding: snapshot.cluster.object_ref(&()),
                writes: site,
            });
        }
        sequences.extend(adoptions(snapshot));
        sequences
    }
}

/// The nodes of the site: every Node that has an `EdgeNode` or agent facts, by name.
fn site_node_names(snapshot: &Snapshot<'_>) -> BTreeSet<String> {
    snapshot
        .edge_nodes
        .iter()
        .map(|n| n.spec.node_name.clone())
        .chain(snapshot.facts.iter().map(|f| f.spec.node_name.clone()))
        .filter(|n| snapshot.nodes.contains_key(n))
        .collect()
}

/// What the decision reads, gathered from the snapshot.
pub fn facts(snapshot: &Snapshot<'_>) -> Facts {
    let mut nodes = Vec::new();
    let mut without_host = Vec::new();
    for name in site_node_names(snapshot) {
        match snapshot.host_config(&name) {
            Some((host, _)) => nodes.push(SiteNode {
                role_label: snapshot
                    .nodes
                    .get(&name)
                    .and_then(|n| n.labels.get(ROLE_LABEL).cloned()),
                name,
                host: host.clone(),
            }),
            None => without_host.push(name),
        }
    }
    Facts {
        now: snapshot.now,
        topology: snapshot.cluster.spec.profile.topology,
        primary_node: snapshot.cluster.spec.primary_node.clone(),
        nodes,
        without_host,
        state: site_state(snapshot),
    }
}

/// The cluster-state ConfigMap as the index holds it; `None` when it does not exist.
pub fn site_state(snapshot: &Snapshot<'_>) -> Option<SiteState> {
    let c = snapshot.index.cluster.as_ref()?;
    let cluster = match (&c.cluster.error, &c.cluster.value) {
        (Some(e), _) => Err(e.message.clone()),
        (None, Some(v)) => Ok(v.clone()),
        (None, None) => Err("the key is absent".to_owned()),
    };
    let members = match (&c.members.error, &c.members.value) {
        (Some(e), _) => Err(e.message.clone()),
        (None, v) => Ok(v.clone().unwrap_or_default()),
    };
    let network_plan = c
        .network_plan
        .value
        .as_ref()
        .and_then(|p| serde_json::to_string(p).ok());
    Some(SiteState {
        cluster,
        members,
        network_plan,
        resource_version: snapshot.cluster_state_version.map(str::to_owned),
    })
}

/// The decision's writes, in order: the site state, then the role labels.
fn site_writes(snapshot: &Snapshot<'_>, d: &Decision) -> Vec<Write> {
    d.actions
        .iter()
        .map(|a| match a {
            Action::CreateSiteState { primary, data } => Write::CreateLegacyConfigMap {
                name: LegacyConfigMap::ClusterState,
                data: data.clone(),
                what: format!("site state created with {primary} as primary"),
            },
            Action::PatchSiteState { data, .. } => Write::PatchClusterState {
                resource_version: d.state_version.clone(),
                data: data.clone(),
            },
            Action::RoleLabel { node, role } => Write::PatchNode {
                name: node.clone(),
                resource_version: snapshot
                    .nodes
                    .get(node)
                    .map(|n| n.resource_version.clone())
                    .unwrap_or_default(),
                labels: [(ROLE_LABEL.to_owned(), role.clone())].into(),
                annotations: BTreeMap::new(),
                taints: None,
                unschedulable: None,
                what: vec![format!("label {ROLE_LABEL}={role}")],
            },
        })
        .collect()
}

/// One sequence per node whose `EdgeNode` has no `spec.host` and whose agent reported its
/// `node.conf` in fresh facts: the adoption, about the `EdgeNode`.
fn adoptions(snapshot: &Snapshot<'_>) -> Vec<Sequence> {
    snapshot
        .edge_nodes
        .iter()
        .filter(|n| n.spec.host.is_none())
        .filter_map(|n| {
            let conf = snapshot.fresh_facts(&n.spec.node_name)?.node_config.as_ref()?;
            Some(Sequence {
                regarding: n.object_ref(&()),
                writes: vec![Write::ApplyHostConfig {
                    edge_node: n.name_any(),
                    node_name: n.spec.node_name.clone(),
                    host: Box::new(conf.clone()),
                }],
            })
        })
        .collect()
}

/// The node ConfigMaps to create ahead of the fence: one for every node of the site, and every
/// node where a legacy script runs (`script_nodes`), that has a Node object and no ConfigMap yet.
/// About the `EdgeCluster`.
pub fn admit(snapshot: &Snapshot<'_>, script_nodes: &[String]) -> Vec<Sequence> {
    let mut names = site_node_names(snapshot);
    names.extend(
        script_nodes
            .iter()
            .filter(|n| snapshot.nodes.contains_key(*n))
            .cloned(),
    );
    let writes: Vec<Write> = names
        .into_iter()
        .filter(|n| snapshot.index.nodes.get(n).is_none_or(|e| e.config_map.is_none()))
        .map(|n| Write::CreateLegacyConfigMap {
            what: format!("node ConfigMap of {n} created (its script reports and acknowledges in it)"),
            name: LegacyConfigMap::Node(n),
            data: BTreeMap::new(),
        })
        .collect();
    // One sequence per ConfigMap: one that fails does not hold the others back.
    writes
        .into_iter()
        .map(|w| Sequence {
            regarding: snapshot.cluster.object_ref(&()),
            writes: vec![w],
        })
        .collect()
}

/// The `Bootstrapped` condition of the `EdgeCluster`, from the decision this turn makes: `True`
/// (reason `SiteBootstrapped`) when there is nothing to write and nothing to wait for, else
/// `False` with what is to be written (`Bootstrapping`) or waited for (`Waiting`). Carries the
/// EdgeCluster's generation; its transition time moves only when its status does.
pub fn condition(snapshot: &Snapshot<'_>) -> Condition {
    let d = boot::decide(&facts(snapshot));
    condition_of(snapshot.cluster, &d, snapshot.now)
}

fn condition_of(cluster: &EdgeCluster, d: &Decision, now: i64) -> Condition {
    let (status, reason, message) = if d.done() {
        (
            ConditionStatus::True,
            "SiteBootstrapped",
            "the site state exists and every node present is a member with its role label".to_owned(),
        )
    } else if d.waiting.is_empty() {
        let what: Vec<String> = d
            .actions
            .iter()
            .map(|a| match a {
                Action::CreateSiteState { primary, .. } => {
                    format!("creating the site state with {primary} as primary")
                }
                Action::PatchSiteState { what, .. } => what.join("; "),
                Action::RoleLabel { node, role } => format!("labelling {node} {ROLE_LABEL}={role}"),
            })
            .collect();
        (ConditionStatus::False, "Bootstrapping", what.join("; "))
    } else {
        (ConditionStatus::False, "Waiting", d.waiting.join("; "))
    };
    let before = cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == BOOTSTRAPPED));
    let mut conditions: Vec<Condition> = before.cloned().into_iter().collect();
    set_condition(
        &mut conditions,
        BOOTSTRAPPED,
        status,
        reason,
        &message,
        cluster.metadata.generation,
        &nodewright_kit::clock::time(now),
    );
    let at = conditions.iter().find(|c| c.type_ == BOOTSTRAPPED).map_or_else(
        || nodewright_kit::clock::time(now),
        |c| c.last_transition_time.clone(),
    );
    Condition {
        type_: BOOTSTRAPPED.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: cluster.metadata.generation,
        last_transition_time: at,
    }
}

#[cfg(test)]
mod tests;
