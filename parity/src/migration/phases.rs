//! The forward phases of a migration, one function each, from `PREFLIGHT` to `FINALIZING`: what
//! each waits for and which actions take it to the next phase. [`super::decide`] picks the function
//! for the current phase after the checks every phase shares (finished, rollback requested, timed
//! out); the rollback is in [`super::rollback`].

use std::collections::{BTreeMap, BTreeSet};

use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec};
use nodewright_api::nodetask::StepName;

use super::legacy::{cluster_blob, members_csv};
use super::tasks::{Group, group, pending, placed_replicas, read, task_key};
use super::{Action, Decision, Facts, Outcome, TaskRequest, TaskResult};
use crate::topology::SiteTopology;

/// Every joining node is a member with a fresh report, and the source's storage is UpToDate.
pub(super) fn preflight(topology: &dyn SiteTopology, spec: &MigrationSpec, facts: &Facts) -> Decision {
    let source = spec.source_node.as_str();
    let joining = &spec.joining_nodes;
    let mut waiting = Vec::new();
    for n in joining {
        let alive = facts
            .nodes
            .get(n)
            .and_then(|f| f.reported_at)
            .is_some_and(|at| facts.now - at <= facts.stale_after);
        if topology.member(&facts.members, n).is_none() {
            waiting.push(format!("{n}(not-a-member)"));
        } else if !alive {
            waiting.push(format!("{n}(no-heartbeat)"));
        }
    }
    if !facts.nodes.get(source).is_some_and(|f| f.local_uptodate) {
        waiting.push(format!("{source}(storage-not-uptodate)"));
    }
    if waiting.is_empty() {
        Decision::enter(Phase::PreparingNetwork)
    } else {
        Decision::wait(format!("preflight waiting: {}", waiting.join(" ")))
    }
}

/// Every joining node reports its bond healthy and the planned storage VLAN up.
pub(super) fn prepare_network(spec: &MigrationSpec, facts: &Facts) -> Decision {
    let joining = &spec.joining_nodes;
    let Some(plan) = &facts.plan else {
        return Decision::wait("no network plan in the cluster state yet");
    };
    let want = format!("{}.{}:up", plan.bond.name, plan.storage_vlan.id);
    let waiting: Vec<String> = joining
        .iter()
        .filter(|n| {
            let f = facts.nodes.get(*n);
            !(f.is_some_and(|f| f.net_ok) && f.and_then(|f| f.storage_vlan.as_deref()) == Some(want.as_str()))
        })
        .map(|n| {
            let f = facts.nodes.get(n);
            format!(
                "{n}(net={},vlan={})",
                if f.is_some_and(|f| f.net_ok) {
                    "ok"
                } else {
                    "not-ok"
                },
                f.and_then(|f| f.storage_vlan.clone()).unwrap_or_default()
            )
        })
        .collect();
    if waiting.is_empty() {
        Decision::enter(Phase::JoiningNodes)
    } else {
        Decision::wait(format!(
            "waiting for joining nodes' bond and storage VLAN {want}: {}",
            waiting.join(" ")
        ))
    }
}

/// Every joining node has a Node object, labelled `joining`.
pub(super) fn join(spec: &MigrationSpec, facts: &Facts) -> Decision {
    let joining = &spec.joining_nodes;
    let missing: Vec<&str> = joining
        .iter()
        .filter(|n| !facts.nodes.get(*n).is_some_and(|f| f.exists))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Decision::wait(format!("waiting for Node objects: {}", missing.join(" ")));
    }
    let actions = joining
        .iter()
        .filter(|n| facts.nodes.get(*n).and_then(|f| f.role_label.as_deref()) != Some("joining"))
        .map(|n| Action::RoleLabel {
            node: n.clone(),
            role: "joining".into(),
        })
        .collect();
    Decision {
        actions,
        outcome: Outcome::Enter(Phase::RegisteringSatellites, None),
    }
}

/// The source's agent registers each joining node's satellite, then every satellite is online.
pub(super) fn register_satellites(
    topology: &dyn SiteTopology,
    spec: &MigrationSpec,
    uid: &str,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let phase = Phase::RegisteringSatellites;
    let source = spec.source_node.as_str();
    let joining = &spec.joining_nodes;
    let mut wanted = Vec::new();
    for n in joining {
        let Some(m) = topology.member(&facts.members, n) else {
            return Decision::fail(format!("{n} is no longer a member of the site"));
        };
        let ip = topology.storage_address(m);
        wanted.push(TaskRequest {
            key: task_key(uid, phase, n),
            node: source.to_owned(),
            step: StepName::LinstorNodeCreate,
            args: vec![n.clone(), ip],
        });
    }
    match group(tasks, wanted) {
        Group::Failed(why) => Decision::fail(why),
        Group::Pending(actions, running) => pending(actions, &running, "registering satellites"),
        Group::Done => {
            let waiting: Vec<String> = joining
                .iter()
                .filter(|n| facts.linstor_nodes.get(*n).map(String::as_str) != Some("Online"))
                .map(|n| {
                    format!(
                        "{n}({})",
                        facts.linstor_nodes.get(n).map_or("not listed", String::as_str)
                    )
                })
                .collect();
            if waiting.is_empty() {
                Decision::enter(Phase::CreatingStoragePools)
            } else {
                Decision::wait(format!(
                    "waiting for satellites to come online: {}",
                    waiting.join(" ")
                ))
            }
        }
    }
}

/// The source's storage pool is created on each joining node, backed by the same volume group.
pub(super) fn create_storage_pools(
    spec: &MigrationSpec,
    uid: &str,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let phase = Phase::CreatingStoragePools;
    let source = spec.source_node.as_str();
    let joining = &spec.joining_nodes;
    let Some(pool) = facts.cluster.as_ref().map(|c| c.storage_pool.clone()) else {
        return Decision::wait("no cluster blob in the cluster state");
    };
    let pools = match read(uid, phase, source, StepName::LinstorStoragePoolList, tasks) {
        Ok(output) => match nodewright_parsers::parse_linstor_storage_pool_list(&output) {
            Ok(p) => p,
            Err(e) => {
                return Decision::fail(format!("storage-pool list of {source} unreadable: {e}"));
            }
        },
        Err(d) => return d,
    };
    let Some(vg) = pools
        .iter()
        .find(|p| p.name == pool && p.node.as_deref() == Some(source))
        .and_then(|p| p.pool_name.clone())
    else {
        return Decision::fail(format!("{source} has no storage pool {pool} to copy"));
    };
    let wanted = joining
        .iter()
        .map(|n| TaskRequest {
            key: task_key(uid, phase, n),
            node: source.to_owned(),
            step: StepName::StoragePoolCreate,
            args: vec![n.clone(), pool.clone(), vg.clone()],
        })
        .collect();
    match group(tasks, wanted) {
        Group::Failed(why) => Decision::fail(why),
        Group::Pending(actions, running) => pending(actions, &running, "creating storage pools"),
        Group::Done => Decision::enter(Phase::PlacingReplicas),
    }
}

/// Each resource gets replicas on joining nodes up to the wanted count.
pub(super) fn place_replicas(
    topology: &dyn SiteTopology,
    spec: &MigrationSpec,
    uid: &str,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let phase = Phase::PlacingReplicas;
    let source = spec.source_node.as_str();
    let joining = &spec.joining_nodes;
    let Some(pool) = facts.cluster.as_ref().map(|c| c.storage_pool.clone()) else {
        return Decision::wait("no cluster blob in the cluster state");
    };
    let resources = match read(uid, phase, source, StepName::LinstorResourceList, tasks) {
        Ok(output) => match nodewright_parsers::parse_linstor_resource_list(&output) {
            Ok(r) => r,
            Err(e) => return Decision::fail(format!("resource list of {source} unreadable: {e}")),
        },
        Err(d) => return d,
    };
    let mut placed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &resources {
        placed
            .entry(r.name.as_str())
            .or_default()
            .extend(r.node.as_deref());
    }
    let want = topology.replicas(spec.replicas) as usize;
    let mut wanted = Vec::new();
    for (res, nodes) in &placed {
        let mut have = nodes.len();
        for n in joining {
            if have >= want {
                break;
            }
            if nodes.contains(n.as_str()) {
                continue;
            }
            wanted.push(TaskRequest {
                key: task_key(uid, phase, &format!("{n}-{res}")),
                node: source.to_owned(),
                step: StepName::ResourceCreate,
                args: vec![n.clone(), (*res).to_owned(), pool.clone()],
            });
            have += 1;
        }
    }
    match group(tasks, wanted) {
        Group::Failed(why) => Decision::fail(why),
        Group::Pending(actions, running) => pending(actions, &running, "placing replicas"),
        Group::Done => Decision::enter(Phase::WaitingForResync),
    }
}

/// The new replicas are UpToDate, as a report made after they were placed says.
pub(super) fn wait_for_resync(
    spec: &MigrationSpec,
    uid: &str,
    since: Option<i64>,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let source = spec.source_node.as_str();
    let Some(f) = facts.nodes.get(source) else {
        return Decision::wait(format!("no report from {source}"));
    };
    // A report from before the replicas were placed says nothing about them.
    if f.reported_at.is_none_or(|at| since.is_some_and(|s| at < s)) {
        return Decision::wait(format!(
            "waiting for a report from {source} after the replicas were placed"
        ));
    }
    let placed = placed_replicas(uid, tasks);
    let mut waiting = Vec::new();
    for (node, res) in &placed {
        match f.peers.get(res).and_then(|p| p.get(node)) {
            Some(disk) if disk == "UpToDate" => {}
            Some(disk) => waiting.push(format!("{res}@{node}({disk})")),
            None => waiting.push(format!("{res}@{node}(not-connected)")),
        }
    }
    if f.local_uptodate && !f.syncing && waiting.is_empty() {
        Decision::enter(Phase::Finalizing)
    } else {
        Decision::wait(format!(
            "waiting for the new replicas to be UpToDate: {}",
            if waiting.is_empty() {
                format!("{source} syncing or not UpToDate")
            } else {
                waiting.join(" ")
            }
        ))
    }
}

/// The site becomes multi-node and the joined nodes members.
pub(super) fn finalize(topology: &dyn SiteTopology, spec: &MigrationSpec, facts: &Facts) -> Decision {
    let joining = &spec.joining_nodes;
    let Some(c) = &facts.cluster else {
        return Decision::wait("no cluster blob in the cluster state");
    };
    // A value of the site's own keys that does not validate is not written back: the migration
    // rolls back instead of finalizing.
    let written = cluster_blob(c, "multi", topology.replicas(spec.replicas))
        .and_then(|cluster| Ok((cluster, members_csv(&facts.members, joining, "member")?)));
    let (cluster, members) = match written {
        Ok(keys) => keys,
        Err(e) => return Decision::fail(e.to_string()),
    };
    let mut actions = vec![Action::ClusterState { cluster, members }];
    actions.extend(joining.iter().map(|n| Action::RoleLabel {
        node: n.clone(),
        role: "member".into(),
    }));
    Decision {
        actions,
        outcome: Outcome::Enter(Phase::Completed, None),
    }
}
