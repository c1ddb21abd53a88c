//! The storage upgrade, decided: given an operator-owned `StorageUpgrade`, the observed site, the
//! node tasks it created, the pods on the node being drained and the site-wide storage gate, what
//! to do next. The same 21 states as the script's state machine (`legacy/lib/upgrade.sh`), one
//! node at a time, as a pure function that can be replayed.
//!
//! Every effect is an [`Action`] the caller applies: a NodeTask (a host step for the node agent,
//! named by an idempotency key derived from the upgrade, the node, the time the state was entered
//! and the step, so a repeated decision creates nothing twice and a state re-entered after a
//! reboot runs its step again), a cordon or taint of a Node, an eviction, or the gate. The caller
//! persists the [`Outcome`] in the StorageUpgrade's status only after every action succeeded.
//!
//! [`decide`] checks what every state shares (finished, rollback requested, the node away or
//! rebooted, the deadline) and hands the current state to its function: the forward states in
//! `states`, the undo in `rollback`. `tasks` keys and tracks the node tasks, `legacy` spells the
//! cluster-state `upgrade` key and the node annotation the scripts read, `quorum` reads DRBD.

use std::collections::BTreeMap;

use nodewright_api::nodetask::NodeTaskPhase;
use nodewright_api::storageupgrade::{
    NodeUpgradeStatus, StorageUpgradeSpec, StorageUpgradeStatus, UpgradeBackup, UpgradeState as State,
};

use crate::controllers::PodMeta;

pub mod legacy;
pub mod quorum;
mod rollback;
mod states;
pub mod status;
mod tasks;
#[cfg(test)]
mod tests;

pub use tasks::{key_prefix, task_key};

/// The Debian revision of the storage package the site's mirror builds for every release (the
/// script's `UP_PKG_REVISION`): the version installed is `<version>-1`.
pub const PACKAGE_REVISION: &str = "1";
/// The storage package the upgrade installs.
pub const PACKAGE: &str = "drbd-dkms";
/// The LINSTOR satellite's unit.
pub const SATELLITE: &str = "linstor-satellite";
/// The DRBD kernel modules, in load order (unloaded in the reverse order).
pub const MODULES: [&str; 2] = ["drbd", "drbd_transport_tcp"];
/// How often `WaitResync` reads DRBD's status again while it waits (seconds).
pub const RESYNC_POLL: i64 = 30;

/// One node's facts, as its Node object and its reports show them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    /// A Node object exists.
    pub exists: bool,
    /// The kubelet reports the node Ready.
    pub ready: bool,
    /// `spec.unschedulable`.
    pub cordoned: bool,
    /// The upgrade taint is on the Node.
    pub upgrade_taint: bool,
    /// The node's boot id, when known.
    pub boot_id: Option<String>,
    /// The storage version the node's script last reported (`drbd_version`).
    pub installed: Option<String>,
}

/// The site as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// Now, in Unix seconds.
    pub now: i64,
    /// A per-node state that waits longer than this fails (seconds).
    pub state_timeout: i64,
    /// One node's rollback that takes longer than this fails the upgrade (seconds).
    pub rollback_timeout: i64,
    /// Facts per node.
    pub nodes: BTreeMap<String, NodeFacts>,
    /// The site's members that are upgraded (primary and members), by name: the order when the
    /// spec gives none.
    pub members: Vec<String>,
    /// A legacy migration is in progress (the `migration` key, not terminal).
    pub legacy_migration: bool,
    /// A legacy storage upgrade is in progress that the operator did not write (the `upgrade` key,
    /// not terminal, without `owner=operator`).
    pub legacy_upgrade: Option<String>,
    /// Who holds the site-wide storage gate, if anyone.
    pub gate: Option<String>,
}

/// A node task this upgrade created, as far as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    /// What it asks for.
    pub request: TaskRequest,
    /// Its phase (`None` while no agent looked at it).
    pub phase: Option<NodeTaskPhase>,
    /// Its output.
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
    /// The step, as the NodeTask spells it (`drbd-demote`, `package-install`, …).
    pub step: String,
    /// Its arguments.
    pub args: Vec<String>,
}

/// One effect of a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the node task, unless one with its key exists.
    Task(TaskRequest),
    /// Cordon or uncordon a Node, and put on or take off the upgrade taint.
    Node {
        /// The Node.
        node: String,
        /// `Some(true)` cordons, `Some(false)` uncordons.
        cordon: Option<bool>,
        /// `Some(true)` puts the upgrade taint on, `Some(false)` takes it off.
        taint: Option<bool>,
    },
    /// Evict a pod through the Eviction API.
    Evict {
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        name: String,
        /// Its node.
        node: String,
    },
    /// Take the site-wide storage gate for this upgrade.
    AcquireGate,
    /// Give the site-wide storage gate back.
    ReleaseGate,
}

/// One state change: a node's state (and with it the upgrade's), or the upgrade's alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The node whose state changes; `None` for the upgrade's own (`Completed`, `RolledBack`,
    /// `Failed` at the end).
    pub node: Option<String>,
    /// The state entered.
    pub state: State,
    /// Why, for the history.
    pub message: Option<String>,
}

/// Where the upgrade goes after the decision's actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It stays in its state; the reason says for what.
    Wait(String),
    /// It moves: each change in order; the upgrade is then in the last change's state, on its
    /// node.
    Move(Vec<Change>),
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Effects, in order.
    pub actions: Vec<Action>,
    /// Then.
    pub outcome: Outcome,
    /// What `BackupConfig` recorded for a node, to keep in its status.
    pub backup: Option<(String, UpgradeBackup)>,
    /// The task of the current step the decision looked at, for the status.
    pub watching: Option<String>,
}

impl Decision {
    fn wait(reason: impl Into<String>) -> Self {
        Decision {
            actions: Vec::new(),
            outcome: Outcome::Wait(reason.into()),
            backup: None,
            watching: None,
        }
    }

    fn moving(changes: Vec<Change>) -> Self {
        Decision {
            actions: Vec::new(),
            outcome: Outcome::Move(changes),
            backup: None,
            watching: None,
        }
    }

    fn enter(node: Option<&str>, state: State, message: Option<String>) -> Self {
        Decision::moving(vec![Change {
            node: node.map(str::to_owned),
            state,
            message,
        }])
    }

    fn with(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }
}

/// The gate holder's name of the upgrade `name`.
pub fn gate_holder(name: &str) -> String {
    format!("StorageUpgrade/{name}")
}

/// The nodes to upgrade: the spec's order, or the site's members by name.
pub fn order(spec: &StorageUpgradeSpec, facts: &Facts) -> Vec<String> {
    if spec.node_order.is_empty() {
        let mut members = facts.members.clone();
        members.sort();
        members.dedup();
        members
    } else {
        spec.node_order.clone()
    }
}

/// The upstream version of a package version: `9.2.12-1` → `9.2.12` (a trailing all-digit
/// revision dropped).
pub fn upstream(version: &str) -> &str {
    match version.rsplit_once('-') {
        Some((up, rev)) if !rev.is_empty() && rev.chars().all(|c| c.is_ascii_digit()) => up,
        _ => version,
    }
}

/// What to do next for the upgrade `spec` (named `name`, object uid `uid`) in `status`.
pub fn decide(
    name: &str,
    spec: &StorageUpgradeSpec,
    uid: &str,
    status: &StorageUpgradeStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
    pods: &[PodMeta],
) -> Decision {
    let state = status.state.unwrap_or(State::Pending);
    let mine = gate_holder(name);
    if state.is_terminal() {
        if facts.gate.as_deref() == Some(mine.as_str()) {
            return Decision::wait("finished; giving the storage gate back").with(Action::ReleaseGate);
        }
        return Decision::wait("finished");
    }
    if state == State::Pending {
        if spec.rollback {
            return Decision::enter(
                None,
                State::RolledBack,
                Some("rollback requested before the upgrade started; nothing was done".into()),
            );
        }
        return start(spec, facts, &mine);
    }
    if state == State::RollingBack {
        return rollback::rollback(spec, uid, status, facts, tasks);
    }
    let Some(node) = status.current_node.clone() else {
        return Decision::enter(
            None,
            State::Failed,
            Some(format!(
                "in {state:?} with no current node; the status was edited"
            )),
        );
    };
    if spec.rollback {
        return fail(&node, state, "rollback requested".into());
    }
    let ns = status::node(status, &node);
    let since = ns
        .and_then(status::node_since)
        .or_else(|| status.since.as_ref().map(status::seconds));
    let elapsed = since.map_or(0, |s| facts.now - s);
    let nf = facts.nodes.get(&node).cloned().unwrap_or_default();
    // A node that is away is waited for up to the state's deadline; one that rebooted in the
    // state comes back to it and runs its step again (every step checks the host first).
    if let Some(away) = away(&nf) {
        if elapsed > facts.state_timeout {
            return fail(
                &node,
                state,
                format!("{node} {away} for longer than {}s", facts.state_timeout),
            );
        }
        return Decision::wait(format!(
            "{node} {away}; waiting up to {}s for it to come back",
            facts.state_timeout
        ));
    }
    if let (Some(then), Some(now)) = (ns.and_then(|n| n.boot_id.as_deref()), nf.boot_id.as_deref())
        && then != now
    {
        return Decision::enter(
            Some(&node),
            state,
            Some(format!(
                "{node} rebooted in {} (boot id {then} → {now}); running the state's step again",
                legacy::state_text(state)
            )),
        );
    }
    if elapsed > facts.state_timeout {
        return fail(&node, state, format!("timed out after {}s", facts.state_timeout));
    }
    let ctx = states::Ctx {
        spec,
        uid,
        node: &node,
        since: since.unwrap_or(facts.now),
        tag: format!(
            "{}{}",
            legacy::state_text(state).to_ascii_lowercase().replace('_', "-"),
            ns.map_or(1, |n| status::entries(n, state))
        ),
        facts,
        node_facts: &nf,
        backup: ns.and_then(|n| n.backup.as_ref()),
        tasks,
        pods,
    };
    let d = states::step(&ctx, state);
    match d.step {
        states::Step::Wait(reason) => Decision {
            actions: d.actions,
            outcome: Outcome::Wait(reason),
            backup: d.backup.map(|b| (node.clone(), b)),
            watching: d.watching,
        },
        states::Step::Fail(reason) => {
            let mut f = fail(&node, state, reason);
            f.watching = d.watching;
            f
        }
        states::Step::Done | states::Step::Skip => {
            let skipped = matches!(d.step, states::Step::Skip);
            let mut out = match next_state(state).filter(|_| !skipped) {
                Some(next) => Decision::enter(Some(&node), next, None),
                None => node_done(spec, status, facts, &node, skipped),
            };
            out.actions = d.actions;
            out.backup = d.backup.map(|b| (node.clone(), b));
            out.watching = d.watching;
            out
        }
    }
}

/// Leaving `Pending`: only with the gate, and never while a migration (or a legacy upgrade) runs.
fn start(spec: &StorageUpgradeSpec, facts: &Facts, mine: &str) -> Decision {
    if let Some(holder) = facts.gate.as_deref().filter(|h| *h != mine) {
        return Decision::wait(format!("the storage gate is held by {holder}"));
    }
    if facts.legacy_migration {
        return Decision::wait("a legacy migration is in progress");
    }
    if let Some(what) = &facts.legacy_upgrade {
        return Decision::wait(format!("a legacy storage upgrade is in progress ({what})"));
    }
    let order = order(spec, facts);
    let Some(first) = order.first() else {
        return Decision::enter(
            None,
            State::Failed,
            Some("no node to upgrade: the spec names none and the site has no members".into()),
        );
    };
    if let Some(missing) = order
        .iter()
        .find(|n| !facts.nodes.get(*n).is_some_and(|f| f.exists))
    {
        return Decision::wait(format!("node {missing} of the order has no Node object"));
    }
    let d = Decision::enter(Some(first), State::Preflight, None);
    if facts.gate.as_deref() == Some(mine) {
        d
    } else {
        d.with(Action::AcquireGate)
    }
}

/// Why a node cannot run its step now, if it cannot.
fn away(nf: &NodeFacts) -> Option<&'static str> {
    if !nf.exists {
        Some("has no Node object")
    } else if !nf.ready {
        Some("is not Ready")
    } else {
        None
    }
}

/// The per-node state after `state`; `None` after `Uncordon`.
pub fn next_state(state: State) -> Option<State> {
    let i = State::ALL.iter().position(|s| *s == state)?;
    State::ALL.get(i + 1).copied().filter(|s| s.is_per_node())
}

/// A per-node state failed: the node starts its rollback.
fn fail(node: &str, state: State, reason: String) -> Decision {
    Decision::enter(
        Some(node),
        State::RollingBack,
        Some(format!("{}: {reason}", legacy::state_text(state))),
    )
}

/// `node` finished its per-node states (or had nothing to do): hand over to the next node in
/// order, or complete.
fn node_done(
    spec: &StorageUpgradeSpec,
    status: &StorageUpgradeStatus,
    facts: &Facts,
    node: &str,
    skipped: bool,
) -> Decision {
    let mut changes = vec![Change {
        node: Some(node.to_owned()),
        state: State::Completed,
        message: Some(if skipped {
            format!("already runs {}; nothing to do", spec.to_version)
        } else {
            format!("upgraded to {}", spec.to_version)
        }),
    }];
    let order = if status.order.is_empty() {
        order(spec, facts)
    } else {
        status.order.clone()
    };
    let next = order
        .iter()
        .find(|n| n.as_str() != node && status::node(status, n).is_none_or(|s| s.state != State::Completed));
    match next {
        Some(next) => {
            changes.push(Change {
                node: Some(next.clone()),
                state: State::Preflight,
                message: Some(format!("{node} done; handing over")),
            });
            Decision::moving(changes)
        }
        None => {
            changes.push(Change {
                node: None,
                state: State::Completed,
                message: Some(format!("every node runs {}", spec.to_version)),
            });
            // The gate is given back on the next turn, from the terminal state.
            Decision::moving(changes)
        }
    }
}

/// A node's status entry in `status`, if it has one.
pub fn node_status<'a>(status: &'a StorageUpgradeStatus, node: &str) -> Option<&'a NodeUpgradeStatus> {
    status::node(status, node)
}

/// Orders versions as the script's `version_gt` does: dot- and dash-separated numbers compared
/// as numbers, anything else as text.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<String> { v.split(['.', '-', '~', '+']).map(str::to_owned).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// The name of the StorageUpgrade translated from the legacy request for `version`.
pub fn request_name(version: &str) -> String {
    let v: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("storage-{}", v.trim_matches('-'))
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// Whether the legacy request for `desired` (the site running `installed`) is to be translated
/// into a StorageUpgrade, given the versions of the StorageUpgrades that exist: when it asks for
/// a newer version than the site runs and none targets it. Returns the version to upgrade from.
pub fn translate(desired: &str, installed: Option<&str>, existing: &[&str]) -> Option<String> {
    let from = installed?;
    if existing.contains(&desired) {
        return None;
    }
    (compare_versions(desired, upstream(from)) == std::cmp::Ordering::Greater)
        .then(|| upstream(from).to_owned())
}
