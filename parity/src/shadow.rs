//! Shadow mode: for a workflow in `shadow`, what the operator would have done from the observed
//! state, compared with what the script did. Every difference is a [`Divergence`], carrying both
//! sides and the facts behind them, for status, a metric and an Event.
//!
//! Pure functions of the bridge's index. They compare at one point in time: the state after the
//! scripts' loops have reported, which is what the operator would act on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use nodewright_api::storageupgrade::UpgradeState;
use nodewright_bridge::index::{Index, UpgradeEvent};

use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};

use crate::migration::{self, Outcome};
use crate::observed::{node_taints, storage_facts, upgrade_state};
use crate::taints::{self, NodeTaints, StorageFacts};
use crate::takeover::Workflow;
use crate::upgrade;

/// What the script did against what the operator would have done.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Divergence {
    /// The workflow.
    pub workflow: Workflow,
    /// The node it concerns, if one.
    pub node: Option<String>,
    /// What the script did.
    pub script: String,
    /// What the operator would have done.
    pub operator: String,
    /// The observed state both decided from.
    pub observed: String,
}

impl Divergence {
    /// A key that identifies the same divergence seen again, so that it is recorded once while it
    /// lasts rather than at every look.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.workflow,
            self.node.as_deref().unwrap_or("-"),
            self.script,
            self.operator
        )
    }
}

fn describe_taints(t: &NodeTaints) -> String {
    let storage = match &t.storage {
        Some(reason) => format!("{}={reason}", taints::STORAGE_TAINT),
        None => format!("no {}", taints::STORAGE_TAINT),
    };
    let label = match &t.ready_label {
        Some(v) => format!("{}={v}", taints::READY_LABEL),
        None => format!("no {} label", taints::READY_LABEL),
    };
    let upgrade = if t.upgrade {
        format!(", {}", taints::UPGRADE_TAINT)
    } else {
        String::new()
    };
    format!("{storage}, {label}{upgrade}")
}

fn describe_facts(f: &StorageFacts) -> String {
    format!(
        "recovering={} satellite={} drbd={} resources={} uptodate={} syncing={}",
        f.recovering,
        f.satellite,
        if f.drbd_readable { "ok" } else { "unknown" },
        f.resources,
        f.uptodate,
        f.syncing
    )
}

/// Taint management: for every node with a report and a Node object, the Node as the script left
/// it against what the operator would make of it.
pub fn taints(index: &Index) -> Vec<Divergence> {
    let upgrade = upgrade_state(index);
    let mut out = Vec::new();
    for (name, entry) in &index.nodes {
        let (Some(facts), Some(current)) = (storage_facts(entry), node_taints(entry)) else {
            continue;
        };
        let actions = taints::decide(&facts, &current, upgrade.clone());
        if actions.is_empty() {
            continue;
        }
        let would: Vec<String> = actions.iter().map(ToString::to_string).collect();
        let mut observed = describe_facts(&facts);
        if let Some(u) = &upgrade {
            let _ = write!(observed, " upgrade={}", u.as_str());
        }
        out.push(Divergence {
            workflow: Workflow::Taints,
            node: Some(name.clone()),
            script: format!("left the node with {}", describe_taints(&current)),
            operator: format!("would {}", would.join("; ")),
            observed,
        });
    }
    out
}

/// Bond flips the script handled (`bond-flip.<node>` answered `applied` or `failed`) since
/// `last_look`, against the operator's decision for the same request
/// ([`crate::bondflip::decide`]'s rules, from what the index shows):
/// - a flip applied while a storage upgrade or a migration is in flight: the operator's flip
///   waits in `Pending` while the storage gate is held (`DeferredToStorage`);
/// - a mode flip applied that left the node's storage network broken (the node reports its
///   network degraded or its storage VLAN not up, or a DRBD peer not `Connected`, after the flip):
///   the operator's agent probes every DRBD peer over the storage VLAN after the flip and reverts
///   on the node when one does not answer (`RevertedOnNode`).
///
/// The rest agrees by construction: the script refuses what the operator's preflight refuses (a
/// slave that is not the bond's, a mode without active slave, a slave without carrier, an unknown
/// mode), and answers a request for the current state `applied` as the operator does.
pub fn bond_flip(index: &Index, last_look: i64) -> Vec<Divergence> {
    use nodewright_parsers::{BondFlipAction, BondFlipState};
    let Some(cluster) = &index.cluster else {
        return Vec::new();
    };
    let storage = {
        let mut busy = Vec::new();
        if let Some(u) = &cluster.upgrade.value
            && !u.state.is_terminal()
        {
            busy.push(format!("the storage upgrade in state {}", u.state.as_str()));
        }
        if let Some(m) = &cluster.migration.value
            && !m.phase.is_terminal()
        {
            busy.push(format!("the migration in phase {}", m.phase.as_str()));
        }
        busy
    };
    let mut out = Vec::new();
    for (node, field) in &cluster.bond_flips {
        let Some(f) = &field.value else { continue };
        if f.unknown.get("owner").map(String::as_str) == Some("operator") {
            continue;
        }
        let Some(done) = f.done.and_then(|d| i64::try_from(d).ok()) else {
            continue;
        };
        if done < last_look || !matches!(f.state, BondFlipState::Applied | BondFlipState::Failed) {
            continue;
        }
        let applied = f.state == BondFlipState::Applied && f.msg.is_none();
        let action = match &f.action {
            BondFlipAction::Mode => "mode",
            BondFlipAction::Active => "active",
            BondFlipAction::Unknown(a) => a.as_str(),
        };
        let script = format!("applied the bond flip {action}={} on {node}", f.value);
        let entry = index.nodes.get(node);
        let status = entry
            .and_then(|e| e.config_map.as_ref())
            .and_then(|c| c.status.value.as_ref())
            .filter(|s| i64::try_from(s.at).is_ok_and(|at| at >= done));
        let mut observed = format!("request {action}={} answered {} at {done}", f.value, f.state);
        if !storage.is_empty() {
            let _ = write!(observed, "; {}", storage.join(", "));
        }
        if applied && !storage.is_empty() {
            out.push(Divergence {
                workflow: Workflow::BondFlip,
                node: Some(node.clone()),
                script: script.clone(),
                operator: format!(
                    "would wait in Pending: {} holds the storage gate (DeferredToStorage)",
                    storage.join(" and ")
                ),
                observed: observed.clone(),
            });
        }
        let Some(status) = status else { continue };
        if !(applied && f.action == BondFlipAction::Mode) {
            continue;
        }
        let mut broken = Vec::new();
        if status.net != nodewright_parsers::NetHealth::Ok {
            broken.push(format!("network {}", status.net.as_str()));
        }
        if let Some(v) = &status.storage_vlan
            && v.operstate != "up"
        {
            broken.push(format!("storage VLAN {} {}", v.interface, v.operstate));
        }
        let drbd = entry
            .and_then(|e| e.config_map.as_ref())
            .and_then(|c| c.drbd_status.value.as_ref());
        for r in drbd.map(|d| d.resources.as_slice()).unwrap_or_default() {
            for c in &r.connections {
                let state = c.connection.as_deref().unwrap_or("unknown");
                if state != "Connected" {
                    broken.push(format!("{} peer {} {state}", r.name, c.name));
                }
            }
        }
        if broken.is_empty() {
            continue;
        }
        let _ = write!(
            observed,
            "; after the flip the node reports bond_mode={} {}",
            status.bond_mode,
            broken.join(", ")
        );
        out.push(Divergence {
            workflow: Workflow::BondFlip,
            node: Some(node.clone()),
            script,
            operator:
                "would revert on the node: the storage-network probe after the flip fails (RevertedOnNode)"
                    .to_owned(),
            observed,
        });
    }
    out
}

/// The storage upgrade, state by state: every start and state change the scripts logged, merged
/// in time order (a node's records of one second in its log's order, nodes by name), replayed
/// against the rules the operator's decision follows: one upgrade at a time, one node at a time
/// in the upgrade's order, each per-node state followed by the next one ([`upgrade::next_state`])
/// or by `ROLLING_BACK`, a node done handing over to the next one in order or completing, a
/// rollback ending `ROLLED_BACK` or `FAILED`. A step the operator would not have made is a
/// divergence, with the state the operator's replay was in. Only steps logged at or after
/// `last_look` are reported (the earlier ones were compared then); the replay starts from the
/// oldest kept record.
///
/// A second node leaving `PENDING` while another runs its per-node states is the stale-state
/// race (VXR-402): reported at that step, and the rest of that node's parallel run is not
/// compared again (the operator would have kept it in `PENDING`).
pub fn storage_upgrade(index: &Index, last_look: i64) -> Vec<Divergence> {
    let mut events: Vec<(i64, &str, u64, &UpgradeEvent)> = Vec::new();
    for (name, entry) in &index.nodes {
        let Some(log) = &entry.log else { continue };
        for e in &log.upgrade_events {
            events.push((e.at, name.as_str(), e.seq, &e.event));
        }
    }
    events.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let mut replay = Replay::default();
    let mut out = Vec::new();
    for (at, by, _, event) in events {
        let found = replay.step(by, event);
        if let Some((node, script, operator)) = found
            && at >= last_look
        {
            out.push(Divergence {
                workflow: Workflow::StorageUpgrade,
                node,
                script,
                operator,
                observed: replay.describe(at),
            });
        }
    }
    out
}

/// The operator's view of the upgrade while the logged steps are replayed.
#[derive(Default)]
struct Replay {
    /// The state the upgrade is in, as the operator would have it (`None` before any start).
    state: Option<UpgradeState>,
    /// The node of the per-node states.
    node: Option<String>,
    /// The version being installed.
    to: String,
    /// The upgrade's order, from its start.
    order: Vec<String>,
    /// Nodes done.
    done: Vec<String>,
    /// Nodes whose parallel run (the race) was reported: their steps are not compared.
    racing: Vec<String>,
}

impl Replay {
    fn running(&self) -> bool {
        self.state.is_some_and(|s| !s.is_terminal())
    }

    /// Takes one logged event; returns the divergence it is (node, script, operator), if any.
    fn step(&mut self, by: &str, event: &UpgradeEvent) -> Option<(Option<String>, String, String)> {
        match event {
            UpgradeEvent::Started { to, order, .. } => {
                if self.running() {
                    // A second start; it shows as a divergence when its node leaves PENDING.
                    return None;
                }
                *self = Replay {
                    state: Some(UpgradeState::Pending),
                    to: to.clone(),
                    order: order.clone(),
                    ..Replay::default()
                };
                None
            }
            UpgradeEvent::Changed { from, to, node, .. } => {
                let (Some(from), Some(to)) = (upgrade::legacy::state_of(from), upgrade::legacy::state_of(to))
                else {
                    return None;
                };
                let target = node.clone().filter(|_| to != UpgradeState::Pending);
                // The racing node's script runs its own upgrade: its steps are not compared, but
                // the end it logs ends the upgrade for the replay too.
                if self.racing.iter().any(|n| n == by || target.as_ref() == Some(n)) {
                    if to.is_terminal() {
                        self.apply(from, to, target);
                    }
                    return None;
                }
                let script = format!(
                    "{by} moved the upgrade from {} to {}{}",
                    upgrade::legacy::state_text(from),
                    upgrade::legacy::state_text(to),
                    target.as_deref().map(|n| format!(" on {n}")).unwrap_or_default()
                );
                let verdict = self.allowed(from, to, target.as_deref());
                match verdict {
                    Ok(()) => {
                        self.apply(from, to, target);
                        None
                    }
                    Err(operator) => {
                        if from == UpgradeState::Pending
                            && let Some(n) = &target
                        {
                            self.racing.push(n.clone());
                        }
                        Some((target, script, operator))
                    }
                }
            }
        }
    }

    /// Whether the operator would make this step; `Err` says what it would do instead.
    fn allowed(&self, from: UpgradeState, to: UpgradeState, node: Option<&str>) -> Result<(), String> {
        use UpgradeState as S;
        let here = || match (&self.state, &self.node) {
            (Some(s), Some(n)) if s.is_per_node() || *s == S::RollingBack => {
                format!("{} on {n}", upgrade::legacy::state_text(*s))
            }
            (Some(s), _) => upgrade::legacy::state_text(*s).to_owned(),
            (None, _) => "no upgrade".to_owned(),
        };
        match (from, to) {
            (S::Pending, S::Preflight) => {
                if self.state.is_some_and(|s| s.is_per_node() || s == S::RollingBack) {
                    return Err(format!(
                        "would keep {} in PENDING: the upgrade is in {} and runs one node at a time \
                         (a second node leaving PENDING is a second upgrade at once)",
                        node.unwrap_or("the node"),
                        here()
                    ));
                }
                match (self.order.first(), node) {
                    (Some(first), Some(n)) if first != n => Err(format!(
                        "would start with {first}, the first node of the upgrade's order {}",
                        self.order.join(",")
                    )),
                    _ => Ok(()),
                }
            }
            (s, S::RollingBack) if s.is_per_node() => self.same_node(node, &here),
            (S::RollingBack, S::RolledBack | S::Failed) => Ok(()),
            (s, next) if s.is_per_node() && upgrade::next_state(s) == Some(next) => {
                self.same_node(node, &here)
            }
            // A node done (after UNCORDON, or skipped at PREFLIGHT): the next one in order, or the
            // end.
            (S::Uncordon | S::Preflight, S::Preflight | S::Completed) => {
                let finished = self.node.clone();
                let next = self
                    .order
                    .iter()
                    .find(|n| !self.done.contains(n) && Some(*n) != finished.as_ref());
                match (to, next) {
                    (S::Completed, None) => Ok(()),
                    (S::Preflight, Some(next)) if node == Some(next.as_str()) => Ok(()),
                    (_, Some(next)) => Err(format!("would hand over to {next}, the next node in order")),
                    (_, None) => Err("would complete: every node of the order is done".to_owned()),
                }
            }
            _ => Err(format!(
                "would not move from {} to {}: the upgrade is in {}",
                upgrade::legacy::state_text(from),
                upgrade::legacy::state_text(to),
                here()
            )),
        }
    }

    fn same_node(&self, node: Option<&str>, here: &dyn Fn() -> String) -> Result<(), String> {
        match (&self.node, node) {
            (Some(current), Some(n)) if current != n => Err(format!(
                "would leave {n} alone: the upgrade is in {} and runs one node at a time",
                here()
            )),
            _ => Ok(()),
        }
    }

    fn apply(&mut self, from: UpgradeState, to: UpgradeState, node: Option<String>) {
        if matches!(to, UpgradeState::Preflight | UpgradeState::Completed)
            && matches!(from, UpgradeState::Uncordon | UpgradeState::Preflight)
            && let Some(done) = self.node.take()
            && node.as_ref() != Some(&done)
        {
            self.done.push(done);
        }
        self.state = Some(to);
        if node.is_some() {
            self.node = node;
        }
        if to.is_terminal() {
            self.racing.clear();
        }
    }

    fn describe(&self, at: i64) -> String {
        format!(
            "at {at} the operator's replay: state={} node={} to={} order={} done={}",
            self.state.map_or("none", upgrade::legacy::state_text),
            self.node.as_deref().unwrap_or("-"),
            if self.to.is_empty() { "-" } else { &self.to },
            self.order.join(","),
            self.done.join(",")
        )
    }
}

/// The migration phases the script passes only when its checks hold, in the order it runs them.
const MIGRATION_ORDER: [Phase; 13] = [
    Phase::Pending,
    Phase::Preflight,
    Phase::PreparingNetwork,
    Phase::JoiningNodes,
    Phase::RegisteringSatellites,
    Phase::CreatingStoragePools,
    Phase::PlacingReplicas,
    Phase::WaitingForResync,
    Phase::Finalizing,
    Phase::Completed,
    Phase::RollingBack,
    Phase::RolledBack,
    Phase::Failed,
];

fn phase_of(state: &str) -> Option<Phase> {
    MIGRATION_ORDER
        .into_iter()
        .find(|p| migration::legacy_phase(*p) == state)
}

/// The migration: every gate the script passed since `last_look` (a phase whose checks read only
/// what the operator observes too: `PREFLIGHT`, `PREPARING_NETWORK`, `WAITING_FOR_RESYNC`),
/// checked against the operator's decision for that phase from the same facts. The script moving
/// on (or rolling back) where the operator would still wait, or the reverse, is a divergence. Phases that read
/// LINSTOR directly on the primary are not compared: the operator learns those facts only through
/// node tasks, which it does not run in shadow.
pub fn migration(index: &Index, facts: &migration::Facts, last_look: i64) -> Vec<Divergence> {
    let Some(cluster) = &index.cluster else {
        return Vec::new();
    };
    let Some(m) = &cluster.migration.value else {
        return Vec::new();
    };
    if m.unknown.get("owner").map(String::as_str) == Some("operator") {
        return Vec::new();
    }
    let (key, source) = nodewright_bridge::index::migration_key(m, cluster.cluster.value.as_ref());
    let Some(source) = source else {
        return Vec::new();
    };
    let Some(history) = index.migration_history.get(&key) else {
        return Vec::new();
    };
    // Transitions of one loop share a second: order them as the script runs its phases.
    let mut seen: Vec<(i64, usize, Phase, Option<String>)> = history
        .iter()
        .filter_map(|t| {
            let p = phase_of(&t.state)?;
            let pos = MIGRATION_ORDER.iter().position(|x| *x == p)?;
            Some((t.at, pos, p, t.message.clone()))
        })
        .collect();
    seen.sort_by_key(|(at, pos, _, _)| (*at, *pos));
    seen.dedup_by_key(|(at, pos, _, _)| (*at, *pos));
    let spec = MigrationSpec {
        owner: nodewright_api::WorkflowOwner::Legacy,
        cluster_ref: nodewright_api::common::ClusterRef { name: String::new() },
        source_node: source.clone(),
        joining_nodes: m.joining.clone(),
        replicas: m.replicas.and_then(|r| i32::try_from(r).ok()),
        rollback: false,
    };
    let mut out = Vec::new();
    for pair in seen.windows(2) {
        let (entered_a, _, a, _) = &pair[0];
        let (at_b, _, b, _) = &pair[1];
        if *at_b < last_look
            || !matches!(
                a,
                Phase::Preflight | Phase::PreparingNetwork | Phase::WaitingForResync
            )
        {
            continue;
        }
        let status = MigrationStatus {
            phase: Some(*a),
            history: vec![nodewright_api::common::PhaseTransition {
                phase: *a,
                at: nodewright_kit::clock::time(*entered_a),
                message: None,
            }],
            ..MigrationStatus::default()
        };
        // Decided as at the moment the script moved on: a timeout counts up to then, not to now.
        let at_decision = migration::Facts {
            now: *at_b,
            ..facts.clone()
        };
        let decision = migration::decide(&spec, "shadow", &status, &at_decision, &BTreeMap::new());
        let operator = match decision.outcome {
            Outcome::Enter(next, _) if next == *b => continue,
            Outcome::Enter(next, Some(why)) => {
                format!("would enter {} instead: {why}", migration::legacy_phase(next))
            }
            Outcome::Enter(next, None) => format!("would enter {} instead", migration::legacy_phase(next)),
            Outcome::Wait(reason) => format!("would stay in {}: {reason}", migration::legacy_phase(*a)),
        };
        out.push(Divergence {
            workflow: Workflow::Migration,
            node: None,
            script: format!(
                "moved the migration from {} to {}",
                migration::legacy_phase(*a),
                migration::legacy_phase(*b)
            ),
            operator,
            observed: describe_migration_facts(facts, &spec),
        });
    }
    out
}

fn describe_migration_facts(facts: &migration::Facts, spec: &MigrationSpec) -> String {
    let mut out = String::new();
    for n in std::iter::once(&spec.source_node).chain(&spec.joining_nodes) {
        let Some(f) = facts.nodes.get(n) else {
            let _ = write!(out, "{n}: no report; ");
            continue;
        };
        let age = f
            .reported_at
            .map_or("never".to_owned(), |at| format!("{}s ago", facts.now - at));
        let member = facts
            .members
            .iter()
            .find(|m| &m.node == n)
            .map_or("not a member", |m| m.role.as_str());
        let _ = write!(
            out,
            "{n}: {member}, reported {age}, net={} vlan={} uptodate={} syncing={}; ",
            if f.net_ok { "ok" } else { "not-ok" },
            f.storage_vlan.as_deref().unwrap_or("-"),
            f.local_uptodate,
            f.syncing
        );
    }
    out.trim_end_matches("; ").to_owned()
}

/// Bootstrap: the site state as the scripts left it, against what the operator would write from
/// the same state ([`crate::bootstrap::decide`]): a cluster state missing, a member row missing or
/// with another storage address than the node's host configuration (the lost row of two nodes
/// joining in one iteration, VXR-141, shows here), a role label that is not the row's, a primary
/// other than the one the `EdgeCluster` names, a network plan whose bond or VLANs are not the
/// primary's host configuration. A node counts once its script has reported (its first loop is
/// where it joins), and only with a known host configuration. The plan's node list is not
/// compared: the script brings it in step on the primary's next loop, by design.
pub fn bootstrap(snapshot: &crate::controllers::Snapshot<'_>) -> Vec<Divergence> {
    use crate::bootstrap::{self as boot, Action};
    use crate::controllers::bootstrap::ROLE_LABEL;
    let mut facts = crate::controllers::bootstrap::facts(snapshot);
    let reported = |n: &str| {
        snapshot
            .index
            .nodes
            .get(n)
            .and_then(|e| e.config_map.as_ref())
            .is_some_and(|c| c.status.value.is_some())
    };
    facts.nodes.retain(|n| reported(&n.name));
    facts.without_host.clear();
    if facts.nodes.is_empty() {
        return Vec::new();
    }
    let members: Vec<String> = match facts.state.as_ref().map(|s| &s.members) {
        Some(Ok(rows)) => rows
            .iter()
            .map(|m| format!("{}({})", m.node, m.role.as_str()))
            .collect(),
        _ => Vec::new(),
    };
    let observed = format!(
        "members: {}; reported with a host configuration: {}",
        if members.is_empty() {
            "none".to_owned()
        } else {
            members.join(",")
        },
        facts
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut out = Vec::new();
    if let (Some(named), Some(Ok(cluster))) = (&facts.primary_node, facts.state.as_ref().map(|s| &s.cluster))
        && *named != cluster.primary
    {
        out.push(Divergence {
            workflow: Workflow::Bootstrap,
            node: Some(cluster.primary.clone()),
            script: format!("made {} the primary", cluster.primary),
            operator: format!("would have made {named} the primary (spec.primaryNode)"),
            observed: observed.clone(),
        });
    }
    // The plan's node list follows the member list on the primary's next loop: rendered with the
    // plan's own nodes, only its bond and VLANs can diverge.
    if let Some(state) = facts.state.as_mut() {
        let primary = state.cluster.as_ref().ok().map(|c| c.primary.clone());
        let host = primary.and_then(|p| facts.nodes.iter().find(|n| n.name == p));
        if let (Some(host), Some(written)) = (host, &state.network_plan)
            && let Ok(plan) = nodewright_parsers::parse_network_plan(written)
        {
            let planned: Vec<nodewright_parsers::Member> = plan
                .nodes
                .iter()
                .map(|p| nodewright_parsers::Member {
                    node: p.name.clone(),
                    storage_ip: p.storage_ip.clone(),
                    role: nodewright_parsers::NodeRole::from_text(&p.role),
                    joined: 0,
                })
                .collect();
            let want = boot::network_plan(&host.host, &planned);
            if nodewright_parsers::parse_network_plan(&want).ok() != Some(plan) {
                out.push(Divergence {
                    workflow: Workflow::Bootstrap,
                    node: Some(host.name.clone()),
                    script: format!("wrote the network plan {written}"),
                    operator: format!("would write {want} (the primary's host configuration)"),
                    observed: observed.clone(),
                });
            }
        }
        // Compared: from here on the plan counts as the operator's own rendering, and the rows
        // decide the rest.
        if let (Some(host), Ok(rows)) = (host, &state.members) {
            state.network_plan = Some(boot::network_plan(&host.host, rows));
        }
    }
    for action in boot::decide(&facts).actions {
        let d = match action {
            Action::CreateSiteState { primary, .. } => Divergence {
                workflow: Workflow::Bootstrap,
                node: None,
                script: "left the site without a cluster state after its nodes reported".to_owned(),
                operator: format!("would create it with {primary} as primary"),
                observed: observed.clone(),
            },
            Action::PatchSiteState { what, .. } => {
                let what: Vec<String> = what.into_iter().filter(|w| w != boot::PLAN_UPDATED).collect();
                if what.is_empty() {
                    continue;
                }
                Divergence {
                    workflow: Workflow::Bootstrap,
                    node: None,
                    script: format!(
                        "left the member list as {}",
                        if members.is_empty() {
                            "empty".to_owned()
                        } else {
                            members.join(",")
                        }
                    ),
                    operator: format!("would write: {}", what.join("; ")),
                    observed: observed.clone(),
                }
            }
            Action::RoleLabel { node, role } => {
                let had = facts
                    .nodes
                    .iter()
                    .find(|n| n.name == node)
                    .and_then(|n| n.role_label.clone());
                Divergence {
                    workflow: Workflow::Bootstrap,
                    script: match had {
                        Some(r) => format!("left {node} labelled {ROLE_LABEL}={r}"),
                        None => format!("left {node} without a {ROLE_LABEL} label"),
                    },
                    operator: format!("would label it {ROLE_LABEL}={role} (its member row)"),
                    node: Some(node),
                    observed: observed.clone(),
                }
            }
        };
        out.push(d);
    }
    out
}

/// Every divergence of the workflows `shadowed` names. `last_look` is when the caller last
/// looked: transitions before it were compared then. `_now` is not read by today's comparisons.
pub fn divergences(
    index: &Index,
    shadowed: &[Workflow],
    _now: i64,
    last_look: i64,
    migration_facts: &migration::Facts,
) -> Vec<Divergence> {
    let mut out = Vec::new();
    for w in shadowed {
        match w {
            Workflow::Taints => out.extend(taints(index)),
            Workflow::StorageUpgrade => out.extend(storage_upgrade(index, last_look)),
            Workflow::Migration => out.extend(migration(index, migration_facts, last_look)),
            Workflow::BondFlip => out.extend(bond_flip(index, last_look)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use nodewright_bridge::index::LegacyNames;

    const T0: i64 = 1_767_225_690; // 2026-01-01T00:01:30Z

    fn cm(name: &str, data: &[(&str, String)]) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some(data.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
        cm
    }

    fn status(at: i64) -> String {
        format!(
            "at={at};state=joining;role=joining;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;\
             slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=;satellite=active;drbd=ok;\
             resources=0;uptodate=0;syncing=0;taint=none;boot=;upgrade=;drbd_version=9.2.5"
        )
    }

    /// A site where edge-1 runs a migration of edge-2 in, and logged that it left PREFLIGHT at
    /// `T0 + 60`; edge-2 last reported at `edge2_at`.
    fn site(edge2_at: i64) -> Index {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(
            &cm(
                "vx-rail-cluster-state",
                &[
                    (
                        "cluster",
                        "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=100;schema=4".into(),
                    ),
                    (
                        "members",
                        "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,100\nedge-2,10.100.0.12/24,joining,200"
                            .into(),
                    ),
                    (
                        "migration",
                        format!("phase=PREPARING_NETWORK;source=edge-1;joining=edge-2;replicas=2;since={}", T0 + 60),
                    ),
                ],
            ),
            T0 + 90,
        );
        index.apply_config_map(
            &cm(
                "vx-rail-node-edge-1",
                &[(
                    "status",
                    status(T0 + 60)
                        .replace("state=joining;role=joining", "state=ready;role=primary")
                        .replace("resources=0;uptodate=0", "resources=1;uptodate=1"),
                )],
            ),
            T0 + 90,
        );
        index.apply_config_map(
            &cm("vx-rail-node-edge-2", &[("status", status(edge2_at))]),
            T0 + 90,
        );
        let log = "ts=2026-01-01T00:01:30Z level=info node=edge-1 component=migration msg=\"migration phase changed\" from=PENDING to=PREFLIGHT\n\
                   ts=2026-01-01T00:02:30Z level=info node=edge-1 component=migration msg=\"migration phase changed\" from=PREFLIGHT to=PREPARING_NETWORK\n";
        index.feed_log("edge-1", log.as_bytes(), T0 + 90);
        index
    }

    #[test]
    fn a_script_passing_preflight_with_a_joining_node_the_operator_thinks_dead_is_a_divergence() {
        let index = site(T0 - 1000);
        let facts = crate::observed::migration_facts(&index, &[], T0 + 90, 300, 1800);
        let found = migration(&index, &facts, T0 + 30);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].script,
            "moved the migration from PREFLIGHT to PREPARING_NETWORK"
        );
        assert_eq!(
            found[0].operator,
            "would stay in PREFLIGHT: preflight waiting: edge-2(no-heartbeat)"
        );
        assert!(
            found[0].observed.contains("edge-2: joining, reported 1090s ago"),
            "{}",
            found[0].observed
        );
        // Compared once: a later look does not report it again.
        assert!(migration(&index, &facts, T0 + 90).is_empty());
    }

    #[test]
    fn a_script_passing_preflight_with_every_node_alive_agrees_with_the_operator() {
        let index = site(T0 + 50);
        let facts = crate::observed::migration_facts(&index, &[], T0 + 90, 300, 1800);
        assert_eq!(migration(&index, &facts, T0 + 30), vec![]);
    }
}

#[cfg(test)]
mod upgrade_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nodewright_bridge::index::LegacyNames;

    /// An index fed the logs of a golden legacy run, node by node.
    fn replayed(logs: &str) -> Index {
        let mut index = Index::new(LegacyNames::default());
        let mut by_node: BTreeMap<&str, String> = BTreeMap::new();
        for line in logs.lines().filter(|l| l.starts_with("ts=")) {
            let Some(node) = line.split(" node=").nth(1).and_then(|r| r.split(' ').next()) else {
                continue;
            };
            let text = by_node.entry(node).or_default();
            text.push_str(line);
            text.push('\n');
        }
        for (node, text) in by_node {
            index.feed_log(node, text.as_bytes(), 0);
        }
        index
    }

    #[test]
    fn the_golden_upgrade_and_its_rollbacks_replay_without_divergence() {
        for (name, logs) in [
            (
                "storage-upgrade",
                include_str!("../../golden/snapshots/storage-upgrade@logs.snap"),
            ),
            (
                "storage-upgrade-rollback",
                include_str!("../../golden/snapshots/storage-upgrade-rollback@logs.snap"),
            ),
            (
                "storage-upgrade-rollback-fails",
                include_str!("../../golden/snapshots/storage-upgrade-rollback-fails@logs.snap"),
            ),
        ] {
            assert_eq!(storage_upgrade(&replayed(logs), 0), vec![], "{name}");
        }
    }

    #[test]
    fn the_stale_state_race_is_one_divergence_when_the_second_node_leaves_pending() {
        let index = replayed(include_str!("../../golden/snapshots/stale-state-race@logs.snap"));
        let found = storage_upgrade(&index, 0);
        assert_eq!(found.len(), 1, "{found:#?}");
        let d = &found[0];
        assert_eq!(d.node.as_deref(), Some("edge-2"));
        assert_eq!(
            d.script,
            "edge-2 moved the upgrade from PENDING to PREFLIGHT on edge-2"
        );
        assert!(
            d.operator.starts_with("would keep edge-2 in PENDING"),
            "{}",
            d.operator
        );
        assert!(d.observed.contains("node=edge-1"), "{}", d.observed);
        // Reported once: a later look does not report it again.
        assert!(storage_upgrade(&index, i64::MAX).is_empty());
    }

    #[test]
    fn a_step_that_skips_a_state_is_a_divergence() {
        let log = "ts=2026-01-01T00:10:00Z level=warn node=edge-1 component=upgrade msg=\"storage upgrade started\" from=9.2.12 to=9.2.14 order=edge-1,edge-2\n\
                   ts=2026-01-01T00:10:00Z level=info node=edge-1 component=upgrade msg=\"upgrade state changed\" from=PENDING to=PREFLIGHT node=edge-1 version=9.2.14\n\
                   ts=2026-01-01T00:10:01Z level=info node=edge-1 component=upgrade msg=\"upgrade state changed\" from=PREFLIGHT to=BACKUP_CONFIG node=edge-1 version=9.2.14\n";
        let mut index = Index::new(LegacyNames::default());
        index.feed_log("edge-1", log.as_bytes(), 0);
        let found = storage_upgrade(&index, 0);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0]
                .operator
                .starts_with("would not move from PREFLIGHT to BACKUP_CONFIG")
        );
    }
}

#[cfg(test)]
mod bond_flip_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use nodewright_bridge::index::LegacyNames;

    const T0: i64 = 1_767_225_690;

    fn cm(name: &str, data: &[(&str, String)]) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some(data.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
        cm
    }

    /// A site whose edge-1 answered `flip` and then reported `net` and its storage VLAN `vlan`,
    /// with the migration `migration` in the cluster state when given.
    fn site(flip: &str, net: &str, vlan: &str, migration: Option<&str>) -> Index {
        let mut index = Index::new(LegacyNames::default());
        let mut data = vec![
            (
                "cluster",
                "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=100;schema=4"
                    .to_owned(),
            ),
            ("bond-flip.edge-1", flip.to_owned()),
        ];
        if let Some(m) = migration {
            data.push(("migration", m.to_owned()));
        }
        index.apply_config_map(&cm("vx-rail-cluster-state", &data), T0 + 20);
        let status = format!(
            "at={};state=ready;role=primary;net={net};bond=bond0;bond_mode=802.3ad;bond_active=none;\
             slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:{vlan};mgmt_vlan=;satellite=active;drbd=ok;\
             resources=0;uptodate=0;syncing=0;taint=none;boot=;upgrade=;drbd_version=9.2.5",
            T0 + 10
        );
        index.apply_config_map(&cm("vx-rail-node-edge-1", &[("status", status)]), T0 + 20);
        index
    }

    const APPLIED: &str =
        "action=mode;value=802.3ad;state=applied;id=flip-2;requested=1767225690;done=1767225695";

    #[test]
    fn a_mode_flip_that_left_the_storage_network_working_agrees_with_the_operator() {
        assert_eq!(bond_flip(&site(APPLIED, "ok", "up", None), T0), vec![]);
    }

    #[test]
    fn a_mode_flip_that_broke_the_storage_vlan_is_one_the_operator_would_have_reverted() {
        let index = site(APPLIED, "degraded", "down", None);
        let found = bond_flip(&index, T0);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].script, "applied the bond flip mode=802.3ad on edge-1");
        assert!(
            found[0].operator.contains("RevertedOnNode"),
            "{}",
            found[0].operator
        );
        assert!(
            found[0].observed.contains("storage VLAN bond0.100 down"),
            "{}",
            found[0].observed
        );
        // Compared once: a later look does not report it again.
        assert!(bond_flip(&index, T0 + 60).is_empty());
    }

    #[test]
    fn a_flip_applied_during_a_migration_is_one_the_operator_would_have_deferred() {
        let migration =
            format!("phase=WAITING_FOR_RESYNC;source=edge-1;joining=edge-2;replicas=2;since={T0}");
        let found = bond_flip(&site(APPLIED, "ok", "up", Some(&migration)), T0);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].operator.contains("DeferredToStorage"),
            "{}",
            found[0].operator
        );
        assert!(
            found[0]
                .observed
                .contains("the migration in phase WAITING_FOR_RESYNC")
        );
    }

    #[test]
    fn refusals_and_answers_for_the_current_state_agree_and_the_operators_own_answers_are_not_compared() {
        let refused = "action=active;value=eno9;state=failed;id=a;done=1767225695;msg=not a slave of bond0";
        assert_eq!(bond_flip(&site(refused, "degraded", "down", None), T0), vec![]);
        let already =
            "action=mode;value=802.3ad;state=applied;id=b;done=1767225695;msg=already in mode 802.3ad";
        assert_eq!(bond_flip(&site(already, "degraded", "down", None), T0), vec![]);
        let ours = format!("{APPLIED};owner=operator");
        assert_eq!(bond_flip(&site(&ours, "degraded", "down", None), T0), vec![]);
    }
}
