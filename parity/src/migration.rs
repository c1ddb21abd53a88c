//! The single-to-multi-node migration, decided: given an operator-owned `Migration`, the observed
//! site and the node tasks created so far, what to do next. The same phases and checks as the
//! script's phase machine (`legacy/lib/migration.sh`), as a pure function that can be replayed.
//!
//! Every effect is an [`Action`] the caller applies: a NodeTask (a host step for the node agent,
//! named by an idempotency key derived from the migration, so a repeated decision creates nothing
//! twice), a role label, or a write of the site's cluster-state keys. The caller persists the
//! [`Outcome`] in the Migration's status only after every action of the decision succeeded; a
//! caller killed in between decides again and gets the same actions. Host facts the operator
//! cannot observe from the legacy ConfigMaps (LINSTOR's storage pools and resources) are read
//! through read-only node tasks, whose output is part of the decision's input.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::topology::{SiteTopology, SmallSite};
use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};
use nodewright_api::nodetask::{NodeTaskPhase, StepName};
use nodewright_parsers::{ClusterBlob, Member, NetworkPlan};

/// A migration phase that waits longer than this fails and rolls back (the script's
/// `VXR_MIGRATION_TIMEOUT` default).
pub const DEFAULT_TIMEOUT: i64 = 1800;

/// One node's facts, as its script and its Node object report them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    /// A Node object exists.
    pub exists: bool,
    /// The `vx-rail.io/role` label.
    pub role_label: Option<String>,
    /// `at` of the node's last status report.
    pub reported_at: Option<i64>,
    /// `net=ok` in that report.
    pub net_ok: bool,
    /// `storage_vlan` in that report, as `<interface>:<operstate>`.
    pub storage_vlan: Option<String>,
    /// Every local DRBD disk UpToDate (or Diskless) and the status readable.
    pub local_uptodate: bool,
    /// A resync runs.
    pub syncing: bool,
    /// From the reported `drbdadm status`: per resource, each peer and its disk state.
    pub peers: BTreeMap<String, BTreeMap<String, String>>,
}

/// The site as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// Now, in Unix seconds.
    pub now: i64,
    /// A node whose report is older than this is not alive for preflight (seconds).
    pub stale_after: i64,
    /// A phase that waits longer than this fails (seconds).
    pub timeout: i64,
    /// The `cluster` key.
    pub cluster: Option<ClusterBlob>,
    /// The `members` key.
    pub members: Vec<Member>,
    /// The `network-plan` key.
    pub plan: Option<NetworkPlan>,
    /// The `linstor-nodes` key: node and state.
    pub linstor_nodes: BTreeMap<String, String>,
    /// Facts per node.
    pub nodes: BTreeMap<String, NodeFacts>,
}

/// A node task this migration created, as far as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    /// What it asks for (its spec).
    pub request: TaskRequest,
    /// Its phase (`None` while no agent looked at it).
    pub phase: Option<NodeTaskPhase>,
    /// Its output (the step's standard output for read-only steps).
    pub output: Option<String>,
    /// Why it is in its phase.
    pub message: Option<String>,
}

/// A host step to be run by a node's agent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskRequest {
    /// The idempotency key, also the NodeTask's name.
    pub key: String,
    /// The node whose agent runs it.
    pub node: String,
    /// The step.
    pub step: StepName,
    /// Its arguments.
    pub args: Vec<String>,
}

/// One effect of a decision.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Create the node task, unless one with its key exists.
    Task(TaskRequest),
    /// Set a Node's `vx-rail.io/role` label.
    RoleLabel {
        /// The Node.
        node: String,
        /// `joining` or `member`.
        role: String,
    },
    /// Write the `cluster` and `members` keys of the cluster-state ConfigMap.
    ClusterState {
        /// The new `cluster` blob.
        cluster: String,
        /// The new `members` CSV.
        members: String,
    },
}

/// Where the migration goes after the decision's actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It stays in its phase; the reason says for what.
    Wait(String),
    /// It enters a phase (with a message for the history).
    Enter(Phase, Option<String>),
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Effects, in order.
    pub actions: Vec<Action>,
    /// Then.
    pub outcome: Outcome,
}

impl Decision {
    fn wait(reason: impl Into<String>) -> Self {
        Decision {
            actions: Vec::new(),
            outcome: Outcome::Wait(reason.into()),
        }
    }
    fn enter(phase: Phase) -> Self {
        Decision {
            actions: Vec::new(),
            outcome: Outcome::Enter(phase, None),
        }
    }
    fn fail(reason: impl Into<String>) -> Self {
        Decision {
            actions: Vec::new(),
            outcome: Outcome::Enter(Phase::RollingBack, Some(reason.into())),
        }
    }
}

/// The phase name as the legacy `migration` key spells it.
pub fn legacy_phase(p: Phase) -> &'static str {
    match p {
        Phase::Pending => "PENDING",
        Phase::Preflight => "PREFLIGHT",
        Phase::PreparingNetwork => "PREPARING_NETWORK",
        Phase::JoiningNodes => "JOINING_NODES",
        Phase::RegisteringSatellites => "REGISTERING_SATELLITES",
        Phase::CreatingStoragePools => "CREATING_STORAGE_POOLS",
        Phase::PlacingReplicas => "PLACING_REPLICAS",
        Phase::WaitingForResync => "WAITING_FOR_RESYNC",
        Phase::Finalizing => "FINALIZING",
        Phase::Completed => "COMPLETED",
        Phase::RollingBack => "ROLLING_BACK",
        Phase::RolledBack => "ROLLED_BACK",
        Phase::Failed => "FAILED",
    }
}

fn short(p: Phase) -> &'static str {
    match p {
        Phase::RegisteringSatellites => "register",
        Phase::CreatingStoragePools => "pools",
        Phase::PlacingReplicas => "place",
        Phase::RollingBack => "rollback",
        _ => "step",
    }
}

/// The idempotency key (and NodeTask name) of one step of a migration: stable for the migration,
/// the phase and the step's target, so that deciding again finds the task already created.
pub fn task_key(uid: &str, phase: Phase, what: &str) -> String {
    let what: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let key = format!("{}{}-{what}", key_prefix(uid), short(phase));
    key.chars()
        .take(128)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_owned()
}

/// The start of every key of one migration's tasks.
pub fn key_prefix(uid: &str) -> String {
    let uid: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("mig-{uid}-")
}

/// The phase the migration is in (`Pending` before its first status) and when it entered it.
pub fn current(status: &MigrationStatus) -> (Phase, Option<i64>) {
    let phase = status.phase.unwrap_or(Phase::Pending);
    let since = status.history.last().map(|t| t.at.0.as_second());
    (phase, since)
}

fn is_terminal(p: Phase) -> bool {
    matches!(p, Phase::Completed | Phase::RolledBack | Phase::Failed)
}

fn replicas(spec: &MigrationSpec) -> u32 {
    SmallSite.replicas(spec.replicas)
}

/// The state of a group of tasks: each either not created, running, succeeded or failed.
enum Group {
    /// Every task succeeded.
    Done,
    /// Some task failed: its key and why.
    Failed(String),
    /// Some are missing (to create) or still running.
    Pending(Vec<Action>, Vec<String>),
}

fn group(tasks: &BTreeMap<String, TaskResult>, wanted: Vec<TaskRequest>) -> Group {
    let mut create = Vec::new();
    let mut running = Vec::new();
    for want in wanted {
        match tasks.get(&want.key).and_then(|t| t.phase.map(|p| (p, t))) {
            Some((NodeTaskPhase::Succeeded, _)) => {}
            Some((NodeTaskPhase::Failed, t)) => {
                return Group::Failed(format!(
                    "{} {} on {} failed: {}",
                    want.step,
                    want.args.join(" "),
                    want.node,
                    t.message.as_deref().unwrap_or("no message")
                ));
            }
            Some(_) => running.push(want.key.clone()),
            None if tasks.contains_key(&want.key) => running.push(want.key.clone()),
            None => {
                running.push(want.key.clone());
                create.push(Action::Task(want));
            }
        }
    }
    if create.is_empty() && running.is_empty() {
        Group::Done
    } else {
        Group::Pending(create, running)
    }
}

/// The output of the read-only `step` on `node` for this phase: asked for once (a task whose key
/// says phase and node), then read from the task's result. `Err` is the decision meanwhile: the
/// task to create or to wait for, or the failure.
fn read(
    uid: &str,
    phase: Phase,
    node: &str,
    step: StepName,
    tasks: &BTreeMap<String, TaskResult>,
) -> Result<String, Decision> {
    let list = TaskRequest {
        key: task_key(uid, phase, &format!("list-{node}")),
        node: node.to_owned(),
        step,
        args: Vec::new(),
    };
    match group(tasks, vec![list.clone()]) {
        Group::Failed(why) => Err(Decision::fail(why)),
        Group::Pending(actions, running) => {
            Err(pending(actions, &running, &format!("reading `{step}` on {node}")))
        }
        Group::Done => Ok(tasks
            .get(&list.key)
            .and_then(|t| t.output.clone())
            .unwrap_or_default()),
    }
}

fn pending(actions: Vec<Action>, running: &[String], what: &str) -> Decision {
    Decision {
        actions,
        outcome: Outcome::Wait(format!("{what}: waiting for node tasks {}", running.join(", "))),
    }
}

/// The cluster blob with `topology` and `replicas` set, in the contract's key order.
pub fn cluster_blob(c: &ClusterBlob, topology: &str, replicas: u32) -> String {
    format!(
        "primary={};topology={topology};replicas={replicas};storage_pool={};created={};schema=4",
        c.primary, c.storage_pool, c.created
    )
}

/// The members CSV with the roles of `nodes` set to `role`.
pub fn members_csv(members: &[Member], nodes: &[String], role: &str) -> String {
    let mut out = String::from("node,storage_ip,role,joined");
    for m in members {
        let r = if nodes.contains(&m.node) {
            role
        } else {
            m.role.as_str()
        };
        let _ = write!(out, "\n{},{},{r},{}", m.node, m.storage_ip, m.joined);
    }
    out
}

/// What to do next for the migration `spec` (object uid `uid`) in `status`.
pub fn decide(
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    decide_in(&SmallSite, spec, uid, status, facts, tasks)
}

/// [`decide`] for a site of the given shape (the `EdgeCluster` profile's topology).
pub fn decide_in(
    topology: &dyn SiteTopology,
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let (phase, since) = current(status);
    if is_terminal(phase) {
        return Decision::wait("finished");
    }
    if spec.rollback && phase != Phase::RollingBack {
        return Decision::fail("rollback requested");
    }
    if phase != Phase::Pending
        && phase != Phase::RollingBack
        && let Some(since) = since
        && facts.now - since > facts.timeout
    {
        return Decision::fail(format!(
            "timed out after {}s in {}",
            facts.timeout,
            legacy_phase(phase)
        ));
    }
    let source = spec.source_node.as_str();
    let joining = &spec.joining_nodes;
    match phase {
        Phase::Pending => Decision::enter(Phase::Preflight),
        Phase::Preflight => {
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
        Phase::PreparingNetwork => {
            let Some(plan) = &facts.plan else {
                return Decision::wait("no network plan in the cluster state yet");
            };
            let want = format!("{}.{}:up", plan.bond.name, plan.storage_vlan.id);
            let waiting: Vec<String> = joining
                .iter()
                .filter(|n| {
                    let f = facts.nodes.get(*n);
                    !(f.is_some_and(|f| f.net_ok)
                        && f.and_then(|f| f.storage_vlan.as_deref()) == Some(want.as_str()))
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
        Phase::JoiningNodes => {
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
        Phase::RegisteringSatellites => {
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
        Phase::CreatingStoragePools => {
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
        Phase::PlacingReplicas => {
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
        Phase::WaitingForResync => {
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
        Phase::Finalizing => {
            let Some(c) = &facts.cluster else {
                return Decision::wait("no cluster blob in the cluster state");
            };
            let mut actions = vec![Action::ClusterState {
                cluster: cluster_blob(c, "multi", topology.replicas(spec.replicas)),
                members: members_csv(&facts.members, joining, "member"),
            }];
            actions.extend(joining.iter().map(|n| Action::RoleLabel {
                node: n.clone(),
                role: "member".into(),
            }));
            Decision {
                actions,
                outcome: Outcome::Enter(Phase::Completed, None),
            }
        }
        Phase::RollingBack => rollback(spec, uid, status, facts, tasks),
        Phase::Completed | Phase::RolledBack | Phase::Failed => Decision::wait("finished"),
    }
}

/// Succeeded tasks of this migration with `step`, oldest key first.
fn succeeded<'a>(uid: &str, tasks: &'a BTreeMap<String, TaskResult>, step: StepName) -> Vec<&'a TaskRequest> {
    let prefix = key_prefix(uid);
    tasks
        .iter()
        .filter(|(k, t)| {
            k.starts_with(&prefix) && t.request.step == step && t.phase == Some(NodeTaskPhase::Succeeded)
        })
        .map(|(_, t)| &t.request)
        .collect()
}

/// The replicas this migration placed: (node, resource) of every resource-create that succeeded.
fn placed_replicas(uid: &str, tasks: &BTreeMap<String, TaskResult>) -> Vec<(String, String)> {
    succeeded(uid, tasks, StepName::ResourceCreate)
        .into_iter()
        .filter_map(|r| Some((r.args.first()?.clone(), r.args.get(1)?.clone())))
        .collect()
}

/// Undoes what the migration did, newest first, as the script's rollback undoes its journal: the
/// site's topology and roles (if it got to `FINALIZING`), then the replicas it placed, then the
/// satellites it registered. Storage pools go with their satellite. Every undo is a node task or
/// an idempotent write, so a rollback interrupted anywhere is decided again from the same facts.
fn rollback(
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let source = spec.source_node.as_str();
    let mut actions = Vec::new();
    if reached(status, Phase::Finalizing) {
        let Some(c) = &facts.cluster else {
            return Decision::wait("no cluster blob in the cluster state to roll back");
        };
        actions.push(Action::ClusterState {
            cluster: cluster_blob(c, "single", 1),
            members: members_csv(&facts.members, &spec.joining_nodes, "joining"),
        });
        actions.extend(spec.joining_nodes.iter().map(|n| Action::RoleLabel {
            node: n.clone(),
            role: "joining".into(),
        }));
    }
    let mut failed = Vec::new();
    let deletes: Vec<TaskRequest> = placed_replicas(uid, tasks)
        .into_iter()
        .rev()
        .map(|(node, res)| TaskRequest {
            key: task_key(uid, Phase::RollingBack, &format!("delete-{node}-{res}")),
            node: source.to_owned(),
            step: StepName::ResourceDelete,
            args: vec![node, res],
        })
        .collect();
    match group_all(tasks, deletes) {
        (Some((create, running)), _) => {
            actions.extend(create);
            return pending(actions, &running, "rolling back replicas");
        }
        (None, Some(why)) => failed.push(why),
        (None, None) => {}
    }
    let node_deletes: Vec<TaskRequest> = succeeded(uid, tasks, StepName::LinstorNodeCreate)
        .into_iter()
        .rev()
        .filter_map(|r| r.args.first().cloned())
        .map(|node| TaskRequest {
            key: task_key(uid, Phase::RollingBack, &format!("node-delete-{node}")),
            node: source.to_owned(),
            step: StepName::LinstorNodeDelete,
            args: vec![node],
        })
        .collect();
    match group_all(tasks, node_deletes) {
        (Some((create, running)), _) => {
            actions.extend(create);
            return pending(actions, &running, "rolling back satellites");
        }
        (None, Some(why)) => failed.push(why),
        (None, None) => {}
    }
    let reason = status
        .history
        .iter()
        .rev()
        .find(|t| t.phase == Phase::RollingBack)
        .and_then(|t| t.message.clone());
    Decision {
        actions,
        outcome: if failed.is_empty() {
            Outcome::Enter(Phase::RolledBack, reason)
        } else {
            Outcome::Enter(
                Phase::Failed,
                Some(format!("rollback failed: {}", failed.join("; "))),
            )
        },
    }
}

/// Like [`group`], but a failed task does not stop the others: a rollback undoes what it can.
/// Returns what is still to create or running, and the failures.
#[allow(clippy::type_complexity)]
fn group_all(
    tasks: &BTreeMap<String, TaskResult>,
    wanted: Vec<TaskRequest>,
) -> (Option<(Vec<Action>, Vec<String>)>, Option<String>) {
    let mut create = Vec::new();
    let mut running = Vec::new();
    let mut failed = Vec::new();
    for want in wanted {
        match tasks.get(&want.key).map(|t| (t.phase, t)) {
            Some((Some(NodeTaskPhase::Succeeded), _)) => {}
            Some((Some(NodeTaskPhase::Failed), t)) => failed.push(format!(
                "{} {}: {}",
                want.step,
                want.args.join(" "),
                t.message.as_deref().unwrap_or("no message")
            )),
            Some(_) => running.push(want.key.clone()),
            None => {
                running.push(want.key.clone());
                create.push(Action::Task(want));
            }
        }
    }
    let pending = (!running.is_empty()).then_some((create, running));
    let failed = (!failed.is_empty()).then(|| failed.join("; "));
    (pending, failed)
}

/// Records that the migration entered `phase` at `now`: its phase, history, start and end times,
/// and the `Complete`/`Failed` conditions once it ends.
pub fn enter(
    status: &mut MigrationStatus,
    phase: Phase,
    message: Option<String>,
    now: i64,
    generation: Option<i64>,
) {
    let at = nodewright_kit::clock::time(now);
    if status.started_at.is_none() && phase != Phase::Pending {
        status.started_at = Some(at.clone());
    }
    if is_terminal(phase) {
        status.finished_at = Some(at.clone());
    }
    let outcome = nodewright_bridge::observe::workflow_conditions(
        Some(&status.conditions),
        is_terminal(phase).then(|| legacy_phase(phase)),
        message.as_deref(),
        now,
    );
    status
        .conditions
        .retain(|c| !outcome.iter().any(|o| o.type_ == c.type_));
    status.conditions.extend(outcome);
    status.phase = Some(phase);
    status.observed_generation = generation;
    status
        .history
        .push(nodewright_api::common::PhaseTransition { phase, at, message });
}

/// Whether the migration is over.
pub fn is_over(status: &MigrationStatus) -> bool {
    status.phase.is_some_and(is_terminal)
}

/// Whether the migration reached `phase` at some point.
pub fn reached(status: &MigrationStatus, phase: Phase) -> bool {
    status.history.iter().any(|t| t.phase == phase)
}

/// The legacy `migration` key the operator keeps for the scripts (which hold storage upgrades
/// while a migration runs) and for every other reader of the contract; `owner=operator` marks
/// it as the operator's.
pub fn legacy_blob(spec: &MigrationSpec, status: &MigrationStatus) -> String {
    let (phase, since) = current(status);
    let mut blob = format!(
        "phase={};source={};joining={};replicas={}",
        legacy_phase(phase),
        spec.source_node,
        spec.joining_nodes.join(","),
        replicas(spec)
    );
    if let Some(s) = since {
        let _ = write!(blob, ";since={s}");
    }
    if let Some(started) = &status.started_at {
        let _ = write!(blob, ";started={}", started.0.as_second());
    }
    if let Some(finished) = &status.finished_at {
        let _ = write!(blob, ";finished={}", finished.0.as_second());
    }
    if let Some(msg) = status.history.last().and_then(|t| t.message.as_deref()) {
        let _ = write!(blob, ";msg={}", msg.replace([';', '\n'], ","));
    }
    blob.push_str(";owner=operator");
    blob
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use nodewright_api::common::{ClusterRef, PhaseTransition, WorkflowOwner};
    use nodewright_parsers::{parse_cluster_blob, parse_members, parse_network_plan};

    const UID: &str = "0a1b2c3d-0000-4000-8000-000000000000";

    fn spec() -> MigrationSpec {
        MigrationSpec {
            owner: WorkflowOwner::Operator,
            cluster_ref: ClusterRef { name: "site".into() },
            source_node: "edge-1".into(),
            joining_nodes: vec!["edge-2".into(), "edge-3".into()],
            replicas: Some(3),
            rollback: false,
        }
    }

    fn at(unix: i64) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
        nodewright_kit::clock::time(unix)
    }

    fn in_phase(history: &[(Phase, i64)]) -> MigrationStatus {
        MigrationStatus {
            phase: history.last().map(|(p, _)| *p),
            history: history
                .iter()
                .map(|(p, t)| PhaseTransition {
                    phase: *p,
                    at: at(*t),
                    message: None,
                })
                .collect(),
            ..MigrationStatus::default()
        }
    }

    fn node(reported_at: i64) -> NodeFacts {
        NodeFacts {
            exists: true,
            role_label: None,
            reported_at: Some(reported_at),
            net_ok: true,
            storage_vlan: Some("bond0.100:up".into()),
            local_uptodate: true,
            syncing: false,
            peers: BTreeMap::new(),
        }
    }

    fn facts(now: i64) -> Facts {
        Facts {
            now,
            stale_after: 300,
            timeout: DEFAULT_TIMEOUT,
            cluster: Some(
                parse_cluster_blob("primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=100;schema=4")
                    .unwrap(),
            ),
            members: parse_members(
                "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,100\nedge-2,10.100.0.12/24,joining,200\nedge-3,10.100.0.13/24,joining,200",
            )
            .unwrap(),
            plan: Some(
                parse_network_plan(r#"{"version":1,"bond":{"name":"bond0","mode":"active-backup","miimon":100,"slaves":["eno1","eno2"]},"storageVlan":{"id":100,"prefixLength":24},"mgmtVlan":{"id":200},"nodes":[]}"#)
                    .unwrap(),
            ),
            linstor_nodes: BTreeMap::new(),
            nodes: ["edge-1", "edge-2", "edge-3"]
                .iter()
                .map(|n| ((*n).to_owned(), node(now - 10)))
                .collect(),
        }
    }

    fn done(request: &TaskRequest, output: &str) -> TaskResult {
        TaskResult {
            request: request.clone(),
            phase: Some(NodeTaskPhase::Succeeded),
            output: Some(output.into()),
            message: None,
        }
    }

    fn tasks_of(d: &Decision) -> Vec<TaskRequest> {
        d.actions
            .iter()
            .filter_map(|a| match a {
                Action::Task(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn preflight_waits_for_a_joining_node_without_a_fresh_report_then_passes() {
        let mut f = facts(10_000);
        f.nodes.get_mut("edge-3").unwrap().reported_at = Some(10_000 - 400);
        let status = in_phase(&[(Phase::Preflight, 9_990)]);
        let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
        assert_eq!(
            d.outcome,
            Outcome::Wait("preflight waiting: edge-3(no-heartbeat)".into())
        );
        f.nodes.get_mut("edge-3").unwrap().reported_at = Some(9_995);
        let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
        assert_eq!(d.outcome, Outcome::Enter(Phase::PreparingNetwork, None));
    }

    #[test]
    fn joining_labels_the_nodes_and_registering_asks_the_source_agent_once_per_node() {
        let f = facts(10_000);
        let d = decide(
            &spec(),
            UID,
            &in_phase(&[(Phase::JoiningNodes, 9_990)]),
            &f,
            &BTreeMap::new(),
        );
        assert_eq!(d.actions.len(), 2);
        assert_eq!(d.outcome, Outcome::Enter(Phase::RegisteringSatellites, None));

        let status = in_phase(&[(Phase::RegisteringSatellites, 9_990)]);
        let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
        let asked = tasks_of(&d);
        assert_eq!(asked.len(), 2);
        assert_eq!(asked[0].node, "edge-1");
        assert_eq!(asked[0].step, StepName::LinstorNodeCreate);
        assert_eq!(asked[0].args, vec!["edge-2".to_owned(), "10.100.0.12".to_owned()]);
        assert_eq!(asked[0].key, "mig-0a1b2c3d-register-edge-2");
        // Deciding again while the tasks exist creates nothing new.
        let running: BTreeMap<String, TaskResult> = asked
            .iter()
            .map(|t| {
                (
                    t.key.clone(),
                    TaskResult {
                        request: t.clone(),
                        phase: Some(NodeTaskPhase::Running),
                        output: None,
                        message: None,
                    },
                )
            })
            .collect();
        let again = decide(&spec(), UID, &status, &f, &running);
        assert!(again.actions.is_empty());
        assert!(matches!(again.outcome, Outcome::Wait(_)));
        // Done, but the satellites are not Online yet in the primary's linstor-nodes report.
        let finished: BTreeMap<String, TaskResult> =
            asked.iter().map(|t| (t.key.clone(), done(t, ""))).collect();
        let d = decide(&spec(), UID, &status, &f, &finished);
        assert_eq!(
            d.outcome,
            Outcome::Wait(
                "waiting for satellites to come online: edge-2(not listed) edge-3(not listed)".into()
            )
        );
        let mut f = f;
        f.linstor_nodes = [("edge-2", "Online"), ("edge-3", "Online")]
            .map(|(n, s)| (n.to_owned(), s.to_owned()))
            .into();
        let d = decide(&spec(), UID, &status, &f, &finished);
        assert_eq!(d.outcome, Outcome::Enter(Phase::CreatingStoragePools, None));
    }

    #[test]
    fn replicas_are_placed_from_the_sources_resource_list_up_to_the_wanted_count() {
        let f = facts(10_000);
        let status = in_phase(&[(Phase::PlacingReplicas, 9_990)]);
        let d = decide(&spec(), UID, &status, &f, &BTreeMap::new());
        let list = tasks_of(&d);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].step, StepName::LinstorResourceList);
        let table = "\
+-------------------------------------------------------------------+
| ResourceName | Node   | Port | Usage  | Conns | State    | CreatedOn |
|===================================================================|
| pvc-1        | edge-1 | 7000 | InUse  | Ok    | UpToDate |           |
| pvc-2        | edge-1 | 7001 | Unused | Ok    | UpToDate |           |
| pvc-2        | edge-3 | 7001 | Unused | Ok    | UpToDate |           |
+-------------------------------------------------------------------+
";
        let tasks = BTreeMap::from([(list[0].key.clone(), done(&list[0], table))]);
        let d = decide(&spec(), UID, &status, &f, &tasks);
        let creates: Vec<(String, String)> = tasks_of(&d)
            .into_iter()
            .map(|t| (t.args[0].clone(), t.args[1].clone()))
            .collect();
        assert_eq!(
            creates,
            vec![
                ("edge-2".into(), "pvc-1".into()),
                ("edge-3".into(), "pvc-1".into()),
                ("edge-2".into(), "pvc-2".into())
            ]
        );
    }

    #[test]
    fn the_resync_wait_needs_a_report_made_after_the_replicas_were_placed() {
        let mut f = facts(10_000);
        let status = in_phase(&[(Phase::WaitingForResync, 9_995)]);
        let create = TaskRequest {
            key: task_key(UID, Phase::PlacingReplicas, "edge-2-pvc-1"),
            node: "edge-1".into(),
            step: StepName::ResourceCreate,
            args: vec!["edge-2".into(), "pvc-1".into(), "pool0".into()],
        };
        let tasks = BTreeMap::from([(create.key.clone(), done(&create, ""))]);
        // edge-1 reported before the phase started, without the new peer: wait.
        let d = decide(&spec(), UID, &status, &f, &tasks);
        assert!(
            matches!(&d.outcome, Outcome::Wait(w) if w.contains("after the replicas were placed")),
            "{d:?}"
        );
        let source = f.nodes.get_mut("edge-1").unwrap();
        source.reported_at = Some(9_999);
        source.peers = BTreeMap::from([(
            "pvc-1".to_owned(),
            BTreeMap::from([("edge-2".to_owned(), "Inconsistent".to_owned())]),
        )]);
        let d = decide(&spec(), UID, &status, &f, &tasks);
        assert_eq!(
            d.outcome,
            Outcome::Wait("waiting for the new replicas to be UpToDate: pvc-1@edge-2(Inconsistent)".into())
        );
        f.nodes
            .get_mut("edge-1")
            .unwrap()
            .peers
            .get_mut("pvc-1")
            .unwrap()
            .insert("edge-2".into(), "UpToDate".into());
        let d = decide(&spec(), UID, &status, &f, &tasks);
        assert_eq!(d.outcome, Outcome::Enter(Phase::Finalizing, None));
    }

    #[test]
    fn finalizing_makes_the_site_multi_node_with_the_joined_nodes_as_members() {
        let f = facts(10_000);
        let d = decide(
            &spec(),
            UID,
            &in_phase(&[(Phase::Finalizing, 9_990)]),
            &f,
            &BTreeMap::new(),
        );
        assert_eq!(
            d.actions[0],
            Action::ClusterState {
                cluster: "primary=edge-1;topology=multi;replicas=3;storage_pool=pool0;created=100;schema=4".into(),
                members: "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,100\nedge-2,10.100.0.12/24,member,200\nedge-3,10.100.0.13/24,member,200".into(),
            }
        );
        assert_eq!(d.outcome, Outcome::Enter(Phase::Completed, None));
    }

    #[test]
    fn a_failed_step_rolls_back_and_the_rollback_undoes_replicas_before_satellites() {
        let f = facts(10_000);
        let reg = TaskRequest {
            key: task_key(UID, Phase::RegisteringSatellites, "edge-2"),
            node: "edge-1".into(),
            step: StepName::LinstorNodeCreate,
            args: vec!["edge-2".into(), "10.100.0.12".into()],
        };
        let place = TaskRequest {
            key: task_key(UID, Phase::PlacingReplicas, "edge-2-pvc-1"),
            node: "edge-1".into(),
            step: StepName::ResourceCreate,
            args: vec!["edge-2".into(), "pvc-1".into(), "pool0".into()],
        };
        let mut failed = done(&place, "");
        failed.phase = Some(NodeTaskPhase::Failed);
        failed.message = Some("resource create exited 1".into());
        let list = TaskRequest {
            key: task_key(UID, Phase::PlacingReplicas, "list-edge-1"),
            node: "edge-1".into(),
            step: StepName::LinstorResourceList,
            args: vec![],
        };
        let table = "| ResourceName | Node   | Port | Usage | Conns | State    |\n|==========|\n| pvc-1 | edge-1 | 7000 | InUse | Ok | UpToDate |\n";
        let tasks = BTreeMap::from([
            (reg.key.clone(), done(&reg, "")),
            (list.key.clone(), done(&list, table)),
            (place.key.clone(), failed),
        ]);
        let d = decide(
            &spec(),
            UID,
            &in_phase(&[(Phase::PlacingReplicas, 9_990)]),
            &f,
            &tasks,
        );
        let Outcome::Enter(Phase::RollingBack, Some(why)) = &d.outcome else {
            panic!("{d:?}");
        };
        assert!(
            why.contains("resource-create edge-2 pvc-1 pool0 on edge-1 failed: resource create exited 1")
        );

        // The failed create placed nothing: the rollback deletes only the satellite.
        let status = in_phase(&[(Phase::PlacingReplicas, 9_990), (Phase::RollingBack, 9_995)]);
        let d = decide(&spec(), UID, &status, &f, &tasks);
        let undo = tasks_of(&d);
        assert_eq!(undo.len(), 1);
        assert_eq!(undo[0].step, StepName::LinstorNodeDelete);
        assert_eq!(undo[0].args, vec!["edge-2".to_owned()]);
        let mut tasks = tasks;
        tasks.insert(undo[0].key.clone(), done(&undo[0], ""));
        let d = decide(&spec(), UID, &status, &f, &tasks);
        assert_eq!(d.outcome, Outcome::Enter(Phase::RolledBack, None));
    }

    #[test]
    fn a_rollback_after_finalizing_puts_the_site_back_to_single_node() {
        let f = facts(10_000);
        let place = TaskRequest {
            key: task_key(UID, Phase::PlacingReplicas, "edge-2-pvc-1"),
            node: "edge-1".into(),
            step: StepName::ResourceCreate,
            args: vec!["edge-2".into(), "pvc-1".into(), "pool0".into()],
        };
        let tasks = BTreeMap::from([(place.key.clone(), done(&place, ""))]);
        let status = in_phase(&[(Phase::Finalizing, 9_990), (Phase::RollingBack, 9_995)]);
        let d = decide(&spec(), UID, &status, &f, &tasks);
        let Action::ClusterState { cluster, members } = &d.actions[0] else {
            panic!("{d:?}");
        };
        assert!(cluster.contains("topology=single;replicas=1"));
        assert!(members.contains("edge-2,10.100.0.12/24,joining"));
        let undo = tasks_of(&d);
        assert_eq!(undo[0].step, StepName::ResourceDelete);
        assert_eq!(undo[0].args, vec!["edge-2".to_owned(), "pvc-1".to_owned()]);
    }

    #[test]
    fn a_requested_rollback_or_a_phase_that_waits_too_long_rolls_back() {
        let f = facts(10_000);
        let mut s = spec();
        s.rollback = true;
        let d = decide(
            &s,
            UID,
            &in_phase(&[(Phase::Preflight, 9_990)]),
            &f,
            &BTreeMap::new(),
        );
        assert_eq!(
            d.outcome,
            Outcome::Enter(Phase::RollingBack, Some("rollback requested".into()))
        );
        let d = decide(
            &spec(),
            UID,
            &in_phase(&[(Phase::Preflight, 10_000 - 1801)]),
            &f,
            &BTreeMap::new(),
        );
        assert_eq!(
            d.outcome,
            Outcome::Enter(
                Phase::RollingBack,
                Some("timed out after 1800s in PREFLIGHT".into())
            )
        );
    }

    #[test]
    fn the_legacy_key_mirrors_the_phase_and_says_the_operator_owns_it() {
        let mut status = in_phase(&[(Phase::Pending, 100), (Phase::Preflight, 110)]);
        status.started_at = Some(at(100));
        assert_eq!(
            legacy_blob(&spec(), &status),
            "phase=PREFLIGHT;source=edge-1;joining=edge-2,edge-3;replicas=3;since=110;started=100;owner=operator"
        );
    }
}
