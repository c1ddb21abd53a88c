//! The legacy script's storage upgrade, as every node's `vx-rail-node-init.sh` runs it: each loop
//! reads the cluster state once (`snapshot_read`), decides by `upgrade_run`'s rules from what it
//! read, and writes the `upgrade` key back whole, without a precondition (`cm_patch`), state by
//! state, acting on its own host in between; the primary's status report (`report_run`) comes last
//! in its loop.
//!
//! The script is bash, so its rules are written here in Rust, each citing the function of
//! `legacy/lib/upgrade.sh` it mirrors. What the script does to its host goes through the shared
//! [`Site`]; Node cordons and taints, the backup files, timeouts and the log are left out (no
//! property reads them).
//!
//! Nondeterminism: any interleaving of the scripts' reads and steps (a script whose loop stalls is
//! one that is not scheduled), DRBD's resyncs, and — the incident's precondition — whether the
//! primary's last status report is stale when the run starts (its pod was down for two loops; it
//! reports again at the end of its first loop back).

use std::collections::BTreeSet;

use nodewright_api::storageupgrade::UpgradeState as State;
use nodewright_parity::upgrade::legacy::state_text;
use stateright::{Model, Property};

use super::site::{Disk, Effect, Site, TO, node_name, resource_name};
use crate::trace::Explain;

/// The legacy model's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegacyFlow {
    /// Nodes (2 or 3); `edge-1` is the primary.
    pub nodes: usize,
    /// Resources, each replicated on every node.
    pub resources: usize,
}

/// The cluster-state `upgrade` key (the fields the rules read).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Blob {
    /// `state=`.
    pub state: State,
    /// `order=`.
    pub order: Vec<usize>,
    /// `node=`: the node the per-node states apply to.
    pub node: Option<usize>,
    /// `done=`.
    pub done: Vec<usize>,
    /// `rolled=`.
    pub rolled: Vec<usize>,
    /// `failed_node=`.
    pub failed_node: Option<usize>,
}

impl Blob {
    fn text(&self) -> String {
        let list = |v: &[usize]| v.iter().map(|n| node_name(*n)).collect::<Vec<_>>().join(",");
        let mut s = format!(
            "state={};to={TO};order={};node={}",
            state_text(self.state),
            list(&self.order),
            self.node.map(node_name).unwrap_or_default()
        );
        if !self.done.is_empty() {
            s.push_str(&format!(";done={}", list(&self.done)));
        }
        if !self.rolled.is_empty() {
            s.push_str(&format!(";rolled={}", list(&self.rolled)));
        }
        if let Some(f) = self.failed_node {
            s.push_str(&format!(";failed_node={}", node_name(f)));
        }
        s
    }
}

/// Where a script is in its loop.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Script {
    /// Between loops.
    Idle,
    /// In a loop, acting on what it read at its start.
    Running {
        /// `UP`: the `upgrade` key as read, then as this script last wrote it.
        up: Option<Blob>,
        /// `upgrade_primary_alive` as read: the primary's status is fresh.
        primary_alive: bool,
        /// What it does next.
        at: At,
    },
}

/// The next piece of `upgrade_run` a running script executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum At {
    /// `upgrade_run`'s start rule and its `case $state`.
    Decide,
    /// `PENDING)`: the first node of the order takes it.
    Pending,
    /// `upgrade_advance` at this state.
    Advance(State),
    /// `upgrade_rollback_node`.
    Rollback,
    /// The loop's last steps (`report_run`), then idle.
    Finish,
}

/// The legacy model's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LegacyState {
    /// The hosts' storage.
    pub site: Site,
    /// The `upgrade` key in the API server.
    pub upgrade: Option<Blob>,
    /// The primary's last status report is fresh (`at` within VXR_HEARTBEAT_STALE).
    pub primary_fresh: bool,
    /// Each node's `vx-rail.io/upgrade-state` annotation.
    pub annotation: Vec<Option<State>>,
    /// Each node's journal (`/var/lib/vx-rail/upgrade.journal`): the states it entered.
    pub journal: Vec<BTreeSet<State>>,
    /// Each node's script.
    pub scripts: Vec<Script>,
    /// The nodes in a per-node state as the writes of the `upgrade` key said (a node enters when a
    /// write names it in a per-node state, leaves when a write lists it done or the upgrade
    /// rolls back or ends), as the simulator's `one-node-upgrading` invariant tracks it.
    pub upgrading: BTreeSet<usize>,
}

/// One step of the legacy model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegacyAction {
    /// A node's script starts a loop: `snapshot_read`.
    Read(usize),
    /// A node's script executes its next piece.
    Step(usize),
    /// DRBD resyncs a replica (`resource`, `node`).
    Resync(usize, usize),
}

/// The property names.
pub const ONE_NODE: &str = "at most one node in a per-node upgrade state";
/// See [`ONE_NODE`].
pub const REPLICA_KEPT: &str = "every resource keeps an UpToDate replica";
/// See [`ONE_NODE`].
pub const REACHES_COMPLETED: &str = "the upgrade can complete";
/// See [`ONE_NODE`].
pub const REACHES_BOTH_START: &str = "two nodes can start the upgrade";

fn is_per_node(s: State) -> bool {
    s.is_per_node()
}

/// What a host check found.
enum Rc {
    Done,
    Wait,
    Skip,
    Fail(String),
}

impl LegacyFlow {
    /// Applies `action` to `state`: the next state and what happened, for the trace.
    pub fn apply(&self, state: &LegacyState, action: LegacyAction) -> Option<(LegacyState, String)> {
        let mut s = state.clone();
        match action {
            LegacyAction::Read(n) => {
                if s.scripts[n] != Script::Idle {
                    return None;
                }
                s.scripts[n] = Script::Running {
                    up: s.upgrade.clone(),
                    primary_alive: s.primary_fresh,
                    at: At::Decide,
                };
                let what = format!(
                    "script {}: reads the cluster state: upgrade={}; the primary's status is {}",
                    node_name(n),
                    s.upgrade.as_ref().map_or("(none)".into(), Blob::text),
                    if s.primary_fresh {
                        "fresh"
                    } else {
                        "stale (older than VXR_HEARTBEAT_STALE)"
                    }
                );
                Some((s, what))
            }
            LegacyAction::Step(n) => {
                let Script::Running {
                    up,
                    primary_alive,
                    at,
                } = s.scripts[n].clone()
                else {
                    return None;
                };
                let mut run = Run {
                    model: self,
                    s: &mut s,
                    n,
                    up,
                    notes: Vec::new(),
                };
                let next = run.step(at, primary_alive);
                let up = run.up.take();
                let notes = run.notes.join("; ");
                s.scripts[n] = match next {
                    Some(at) => Script::Running {
                        up,
                        primary_alive,
                        at,
                    },
                    None => Script::Idle,
                };
                Some((s, format!("script {}: {notes}", node_name(n))))
            }
            LegacyAction::Resync(r, n) => {
                if !s.site.resyncable().contains(&(r, n)) {
                    return None;
                }
                s.site.resync(r, n);
                Some((
                    s,
                    format!(
                        "drbd: {} on {} resynced, UpToDate",
                        resource_name(r),
                        node_name(n)
                    ),
                ))
            }
        }
    }
}

/// One script's piece of a loop.
struct Run<'a> {
    model: &'a LegacyFlow,
    s: &'a mut LegacyState,
    n: usize,
    up: Option<Blob>,
    notes: Vec<String>,
}

impl Run<'_> {
    /// Executes the piece `at`; the next one, or `None` when the loop is over.
    fn step(&mut self, at: At, primary_alive: bool) -> Option<At> {
        match at {
            At::Decide => Some(self.decide(primary_alive)),
            At::Pending => Some(self.pending()),
            At::Advance(state) => Some(self.advance(state)),
            At::Rollback => {
                self.rollback_node();
                Some(At::Finish)
            }
            At::Finish => {
                // report_run: the loop's status report; the primary's is what members read as
                // its heartbeat.
                if self.n == 0 && !self.s.primary_fresh {
                    self.s.primary_fresh = true;
                    self.notes.push("reports its status (fresh again)".into());
                } else {
                    self.notes.push("ends its loop".into());
                }
                None
            }
        }
    }

    /// `upgrade_run` (legacy/lib/upgrade.sh lines 45-115): the start rule, then `case $state`.
    fn decide(&mut self, primary_alive: bool) -> At {
        let n = self.n;
        let installed_new = self.s.site.hosts[n].package_new;
        // `[[ -z $state ]] || upgrade_is_terminal` and `[[ $(blob_get "$UP" to) != "$desired" ]]`:
        // every blob here is for the one desired version, so only "no upgrade yet" starts one.
        // `version_gt "$desired" "$installed"`: this node still runs the old version.
        if self.up.is_none() && !installed_new {
            let primary = n == 0;
            // `[[ $S_PRIMARY != "$NODE_NAME" ]] && upgrade_primary_alive`: the primary starts it.
            if primary || !primary_alive {
                self.start();
            } else {
                self.notes
                    .push("sees the primary alive: it starts the upgrade".into());
            }
        }
        let Some(up) = &self.up else {
            self.notes.push("no upgrade to run".into());
            return At::Finish;
        };
        match up.state {
            s if s.is_terminal() => {
                self.notes.push(format!("upgrade is {}", state_text(s)));
                At::Finish
            }
            State::Pending => At::Pending,
            State::RollingBack => At::Rollback,
            s if up.node == Some(n) => {
                self.notes
                    .push(format!("resumes the storage upgrade at {}", state_text(s)));
                At::Advance(s)
            }
            s => {
                self.notes.push(format!(
                    "upgrade is at {} on {}, not this node",
                    state_text(s),
                    up.node.map(node_name).unwrap_or_default()
                ));
                At::Finish
            }
        }
    }

    /// `upgrade_start` (lines 125-142): this node first, then the other members by name; written
    /// over whatever the key holds.
    fn start(&mut self) {
        let n = self.n;
        let order: Vec<usize> = std::iter::once(n)
            .chain((0..self.model.nodes).filter(|m| *m != n))
            .collect();
        self.up = Some(Blob {
            state: State::Pending,
            order,
            node: None,
            done: Vec::new(),
            rolled: Vec::new(),
            failed_node: None,
        });
        self.write("starts the storage upgrade");
        self.s.annotation[n] = Some(State::Pending);
        self.s.journal[n].insert(State::Pending);
    }

    /// `PENDING)` in `upgrade_run` (lines 96-103): the first node of the order sets `node` to
    /// itself and enters PREFLIGHT.
    fn pending(&mut self) -> At {
        let first = self.up.as_ref().and_then(|u| u.order.first().copied());
        if first != Some(self.n) {
            self.notes.push(format!(
                "upgrade is PENDING for {}, not this node",
                first.map(node_name).unwrap_or_default()
            ));
            return At::Finish;
        }
        if let Some(up) = &mut self.up {
            up.node = Some(self.n);
        }
        self.enter(State::Preflight, true);
        At::Advance(State::Preflight)
    }

    /// `upgrade_advance` (lines 180-214) for one state: its `up_<STATE>` function, then on to the
    /// next state, the hand-over, a wait or the rollback.
    fn advance(&mut self, state: State) -> At {
        match self.host(state) {
            Rc::Done if state == State::Uncordon => {
                self.node_done();
                At::Finish
            }
            Rc::Done => match nodewright_parity::upgrade::next_state(state) {
                Some(next) => {
                    self.enter(next, true);
                    At::Advance(next)
                }
                None => At::Finish,
            },
            Rc::Wait => {
                self.notes.push(format!("waits in {}", state_text(state)));
                At::Finish
            }
            Rc::Skip => {
                self.notes
                    .push("already runs the target version, skipping it".into());
                self.node_done();
                At::Finish
            }
            Rc::Fail(why) => {
                // upgrade_fail (lines 239-246).
                self.notes.push(format!("{} failed: {why}", state_text(state)));
                if let Some(up) = &mut self.up {
                    up.failed_node = Some(self.n);
                }
                self.enter(State::RollingBack, true);
                At::Rollback
            }
        }
    }

    /// The `up_<STATE>` functions (lines 258-416), on this node's host.
    fn host(&mut self, state: State) -> Rc {
        let n = self.n;
        let site = &mut self.s.site;
        let peers_uptodate = |site: &Site| {
            site.disks.iter().all(|d| {
                d.iter()
                    .enumerate()
                    .all(|(m, pd)| m == n || (site.hosts[m].up && *pd == Disk::UpToDate))
            })
        };
        match state {
            // up_PREFLIGHT: a node on the target version is skipped; the satellite runs, the
            // local disks are UpToDate, every peer UpToDate, nothing syncing.
            State::Preflight => {
                if site.hosts[n].package_new {
                    return Rc::Skip;
                }
                if !site.hosts[n].satellite {
                    return Rc::Fail("linstor-satellite is inactive".into());
                }
                let local = site.hosts[n].up && site.disks.iter().all(|d| d[n] == Disk::UpToDate);
                if !local || !peers_uptodate(site) {
                    return Rc::Fail("storage not healthy before upgrade".into());
                }
                Rc::Done
            }
            // up_QUORUM_CHECK: every resource has a Connected UpToDate peer.
            State::QuorumCheck => {
                let bad: Vec<String> = site
                    .disks
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| {
                        !d.iter().enumerate().any(|(m, pd)| {
                            m != n && site.hosts[n].up && site.hosts[m].up && *pd == Disk::UpToDate
                        })
                    })
                    .map(|(r, _)| resource_name(r))
                    .collect();
                if bad.is_empty() {
                    self.notes.push("quorum holds without this node".into());
                    Rc::Done
                } else {
                    Rc::Fail(format!("no UpToDate peer for: {}", bad.join(" ")))
                }
            }
            State::BackupConfig | State::CordonAndTaint | State::RemoveTaint | State::Uncordon => Rc::Done,
            State::DemotePrimaries => {
                for r in 0..site.disks.len() {
                    site.demote(n, r);
                }
                Rc::Done
            }
            State::StopSatellite => {
                site.hosts[n].satellite = false;
                Rc::Done
            }
            State::DownResources => effect(site.down(n)),
            State::UnloadModules => effect(site.unload(n)),
            State::InstallPackages => effect(site.install(n, TO)),
            State::LoadModules => {
                site.load(n);
                Rc::Done
            }
            State::StartSatellite => {
                site.hosts[n].satellite = true;
                Rc::Done
            }
            State::UpResources => effect(site.adjust(n)),
            // up_WAIT_RESYNC: drbd_wait until this node and its peers are UpToDate, else wait
            // for the next loop.
            State::WaitResync => {
                let local = site.disks.iter().all(|d| d[n] == Disk::UpToDate);
                if local && peers_uptodate(site) {
                    Rc::Done
                } else {
                    Rc::Wait
                }
            }
            State::VerifyVersion => {
                let h = &site.hosts[n];
                if h.kernel == Some(true) && h.package_new {
                    Rc::Done
                } else {
                    Rc::Fail("running the old version".into())
                }
            }
            State::Pending | State::Completed | State::RollingBack | State::RolledBack | State::Failed => {
                Rc::Fail(format!("{} is not a per-node state", state_text(state)))
            }
        }
    }

    /// `upgrade_node_done` (lines 217-237): this node is done; the next node of the order, or
    /// COMPLETED.
    fn node_done(&mut self) {
        let n = self.n;
        let Some(up) = &mut self.up else { return };
        if !up.done.contains(&n) {
            up.done.push(n);
        }
        let next = up.order.iter().copied().find(|m| !up.done.contains(m));
        match next {
            None => {
                up.node = None;
                self.enter(State::Completed, true);
            }
            Some(next) => {
                up.node = Some(next);
                self.notes.push(format!("hands over to {}", node_name(next)));
                self.enter(State::Preflight, false);
            }
        }
    }

    /// `upgrade_rollback_node` (lines 427-484): undo on this node what its journal says it
    /// entered, best effort where the script says `|| true`.
    fn rollback_node(&mut self) {
        let n = self.n;
        let Some(up) = self.up.clone() else { return };
        let touched: Vec<usize> = up.done.iter().copied().chain(up.failed_node).collect();
        if !touched.contains(&n) || up.rolled.contains(&n) {
            self.notes.push("nothing to roll back here".into());
            return;
        }
        self.s.annotation[n] = Some(State::RollingBack);
        let entered = |s: State| self.s.journal[n].contains(&s);
        let (install, unload, stop, down) = (
            entered(State::InstallPackages),
            entered(State::UnloadModules),
            entered(State::StopSatellite),
            entered(State::DownResources),
        );
        let site = &mut self.s.site;
        let mut fail = None;
        if install {
            site.hosts[n].satellite = false;
            let _ = site.down(n);
            let _ = site.unload(n);
            if let Effect::Failed(_) = site.install(n, super::site::FROM) {
                fail = Some(State::InstallPackages);
            }
        }
        if fail.is_none() && unload {
            site.load(n);
        }
        if fail.is_none() && stop {
            site.hosts[n].satellite = true;
        }
        if fail.is_none() && down && matches!(site.adjust(n), Effect::Failed(_)) {
            fail = Some(State::UpResources);
        }
        if let Some(at) = fail {
            self.notes.push(format!("rollback failed at {}", state_text(at)));
            self.enter(State::Failed, true);
            return;
        }
        let Some(up) = &mut self.up else { return };
        up.rolled.push(n);
        let all = touched.iter().all(|t| up.rolled.contains(t));
        if all {
            self.enter(State::RolledBack, true);
        } else {
            self.write("rolled this node back");
            self.s.annotation[n] = Some(State::RolledBack);
        }
    }

    /// `upgrade_enter` (lines 144-171): the state into `UP`, written; the annotation and the
    /// journal unless `noannotate`.
    fn enter(&mut self, state: State, annotate: bool) {
        if let Some(up) = &mut self.up {
            up.state = state;
        }
        self.write(&format!("enters {}", state_text(state)));
        if annotate {
            self.s.annotation[self.n] = Some(state);
            self.s.journal[self.n].insert(state);
        }
    }

    /// `cm_patch "$CLUSTER_CM" upgrade "$UP"`: the whole key, over whatever is there.
    fn write(&mut self, why: &str) {
        let Some(up) = self.up.clone() else { return };
        for d in &up.done {
            self.s.upgrading.remove(d);
        }
        if up.state.is_terminal() || up.state == State::RollingBack {
            self.s.upgrading.clear();
        } else if let Some(node) = up.node.filter(|_| is_per_node(up.state)) {
            self.s.upgrading.insert(node);
        }
        self.notes
            .push(format!("{why}: writes upgrade={} (no precondition)", up.text()));
        self.s.upgrade = Some(up);
    }
}

fn effect(e: Effect) -> Rc {
    match e {
        Effect::Ok(_) => Rc::Done,
        Effect::Failed(why) => Rc::Fail(why),
    }
}

impl Model for LegacyFlow {
    type State = LegacyState;
    type Action = LegacyAction;

    fn init_states(&self) -> Vec<LegacyState> {
        // The primary's status is stale or fresh when the upgrade is requested.
        [false, true]
            .into_iter()
            .map(|primary_fresh| LegacyState {
                site: Site::new(self.nodes, self.resources),
                upgrade: None,
                primary_fresh,
                annotation: vec![None; self.nodes],
                journal: vec![BTreeSet::new(); self.nodes],
                scripts: vec![Script::Idle; self.nodes],
                upgrading: BTreeSet::new(),
            })
            .collect()
    }

    fn actions(&self, state: &LegacyState, actions: &mut Vec<LegacyAction>) {
        for (n, script) in state.scripts.iter().enumerate() {
            match script {
                // A loop that changes nothing comes back to a state already seen: no new state.
                Script::Idle => actions.push(LegacyAction::Read(n)),
                Script::Running { .. } => actions.push(LegacyAction::Step(n)),
            }
        }
        for (r, n) in state.site.resyncable() {
            actions.push(LegacyAction::Resync(r, n));
        }
    }

    fn next_state(&self, state: &LegacyState, action: LegacyAction) -> Option<LegacyState> {
        self.apply(state, action).map(|(s, _)| s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ONE_NODE, |_, s: &LegacyState| s.upgrading.len() <= 1),
            Property::always(REPLICA_KEPT, |_, s: &LegacyState| s.site.lost().is_empty()),
            Property::sometimes(REACHES_COMPLETED, |_, s: &LegacyState| {
                s.upgrade.as_ref().is_some_and(|u| u.state == State::Completed)
            }),
            Property::sometimes(REACHES_BOTH_START, |_, s: &LegacyState| {
                s.journal.iter().filter(|j| j.contains(&State::Pending)).count() >= 2
            }),
        ]
    }
}

impl Explain for LegacyFlow {
    fn describe(&self, before: &LegacyState, action: &LegacyAction, _after: &LegacyState) -> String {
        self.apply(before, *action)
            .map_or_else(|| format!("{action:?} (not enabled)"), |(_, what)| what)
    }

    fn focus(&self, property: &str, state: &LegacyState) -> String {
        let mut out = Vec::new();
        out.push(format!(
            "upgrade key: {}",
            state.upgrade.as_ref().map_or("(none)".into(), Blob::text)
        ));
        if property == ONE_NODE || property == REACHES_BOTH_START {
            let names: Vec<String> = state.upgrading.iter().map(|n| node_name(*n)).collect();
            out.push(format!("nodes in a per-node state: {}", names.join(", ")));
        }
        for (n, a) in state.annotation.iter().enumerate() {
            out.push(format!(
                "{} upgrade-state annotation: {}",
                node_name(n),
                a.map_or("(none)", state_text)
            ));
        }
        for n in 0..self.nodes {
            out.push(state.site.describe_node(n));
        }
        let lost = state.site.lost();
        if !lost.is_empty() {
            out.push(format!("no UpToDate replica left: {}", lost.join(", ")));
        }
        out.join("\n")
    }
}
