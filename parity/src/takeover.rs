//! The takeover: which workflows the operator decides, as projected into the ConfigMap the legacy
//! script reads (its shim mode, `docs/legacy-contract.md`), and the rules for changing it.
//!
//! Pure: the caller reads the EdgeCluster, the takeover ConfigMap and the observed state, and writes
//! what [`plan`] returns. The one invariant this module keeps is that the script and the operator
//! never both decide one workflow:
//! - a change of decider (to or from `operator`) is refused while an instance of the workflow is in
//!   flight, unless forced;
//! - the operator acts on a workflow in `operator` mode only once every node's script has
//!   acknowledged the generation that put it there, or is proven unable to act ([`holding`],
//!   [`may_act`]); a script that read its snapshot before the change still acts in that one loop,
//!   however long it takes, and the acknowledgement is how the operator knows that loop is over.
//!   Proof is a fact the cluster holds (the script's pod is gone; its Node has been NotReady past
//!   a grace period and the pod is not running), never the script's silence or its clock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use nodewright_api::WorkflowMode;
use nodewright_parsers::contract::{self, node_key, takeover_key};

/// Name of the takeover ConfigMap, in the legacy namespace.
pub const CONFIGMAP: &str = contract::TAKEOVER;
/// Key of the generation in the takeover ConfigMap.
pub const GENERATION_KEY: &str = takeover_key::GENERATION;
/// Key of the node ConfigMap where a script acknowledges the generation it read.
pub const ACK_KEY: &str = node_key::TAKEOVER_GENERATION;
/// Annotation on the EdgeCluster that forces mode changes of the listed workflows (comma list of
/// takeover keys) even while an instance is in flight.
pub const FORCE_ANNOTATION: &str = "nodewright.io/force-takeover";

/// The workflows Nodewright can take over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workflow {
    /// First-node initialisation and joins.
    Bootstrap,
    /// Single-to-multi-node migration.
    Migration,
    /// The 21-state storage upgrade.
    StorageUpgrade,
    /// Requested bond flips.
    BondFlip,
    /// The storage-not-ready taint and storage-ready label.
    Taints,
    /// Recovery after a reboot.
    BootRecovery,
    /// The steady-state network: bond and VLAN assembly, carrier failover.
    Network,
    /// The steady-state storage: modules, services, satellite and pool registration, replica
    /// placement.
    Storage,
}

impl Workflow {
    /// Every workflow, in the takeover ConfigMap's order.
    pub const ALL: [Workflow; 8] = [
        Workflow::Bootstrap,
        Workflow::Migration,
        Workflow::StorageUpgrade,
        Workflow::BondFlip,
        Workflow::Taints,
        Workflow::BootRecovery,
        Workflow::Network,
        Workflow::Storage,
    ];

    /// The key in the takeover ConfigMap (and in status).
    pub fn key(self) -> &'static str {
        match self {
            Workflow::Bootstrap => takeover_key::BOOTSTRAP,
            Workflow::Migration => takeover_key::MIGRATION,
            Workflow::StorageUpgrade => takeover_key::STORAGE_UPGRADE,
            Workflow::BondFlip => takeover_key::BOND_FLIP,
            Workflow::Taints => takeover_key::TAINTS,
            Workflow::BootRecovery => takeover_key::BOOT_RECOVERY,
            Workflow::Network => takeover_key::NETWORK,
            Workflow::Storage => takeover_key::STORAGE,
        }
    }

    /// The workflow a takeover key names.
    pub fn from_key(key: &str) -> Option<Workflow> {
        Workflow::ALL.into_iter().find(|w| w.key() == key)
    }

    /// The mode the EdgeCluster spec asks for.
    pub fn requested(self, modes: &nodewright_api::edgecluster::WorkflowModes) -> WorkflowMode {
        match self {
            Workflow::Bootstrap => modes.bootstrap,
            Workflow::Migration => modes.migration,
            Workflow::StorageUpgrade => modes.storage_upgrade,
            Workflow::BondFlip => modes.bond_flip,
            Workflow::Taints => modes.taints,
            Workflow::BootRecovery => modes.boot_recovery,
            Workflow::Network => modes.network,
            Workflow::Storage => modes.storage,
        }
    }

    /// Whether this version has decision functions to compare with the script in `shadow`.
    pub fn has_shadow(self) -> bool {
        matches!(
            self,
            Workflow::Migration
                | Workflow::Taints
                | Workflow::StorageUpgrade
                | Workflow::Bootstrap
                | Workflow::BondFlip
        )
    }

    /// Whether this version has a controller that carries the workflow out in `operator` mode.
    pub fn has_operator(self) -> bool {
        matches!(
            self,
            Workflow::Migration | Workflow::Taints | Workflow::StorageUpgrade | Workflow::Bootstrap
        )
    }
}

impl fmt::Display for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The takeover as projected: a generation and a mode per workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Takeover {
    /// Grows with every change; scripts acknowledge the generation they read.
    pub generation: u64,
    /// The mode of every workflow.
    pub modes: BTreeMap<Workflow, WorkflowMode>,
}

impl Default for Takeover {
    /// What a site without a takeover ConfigMap runs: generation 0, everything `legacy`.
    fn default() -> Self {
        Takeover {
            generation: 0,
            modes: Workflow::ALL.iter().map(|w| (*w, WorkflowMode::Legacy)).collect(),
        }
    }
}

/// A takeover ConfigMap that cannot be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A key holds a value that is not a mode, or the generation is not a number.
    #[error("takeover ConfigMap {CONFIGMAP}: key `{key}` holds `{value}`, expected {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// What it holds.
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
}

fn parse_mode(value: &str) -> Option<WorkflowMode> {
    match value {
        "legacy" => Some(WorkflowMode::Legacy),
        "shadow" => Some(WorkflowMode::Shadow),
        "operator" => Some(WorkflowMode::Operator),
        _ => None,
    }
}

impl Takeover {
    /// The mode of a workflow.
    pub fn mode(&self, workflow: Workflow) -> WorkflowMode {
        self.modes.get(&workflow).copied().unwrap_or_default()
    }

    /// Reads a takeover ConfigMap's data. Keys it does not know are ignored (a newer operator may
    /// add workflows); a missing workflow key is `legacy`, as the script reads it.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Takeover, Error> {
        let mut takeover = Takeover::default();
        if let Some(g) = data.get(GENERATION_KEY) {
            takeover.generation = g.parse().map_err(|_| Error::BadValue {
                key: GENERATION_KEY.into(),
                value: g.clone(),
                expected: "a non-negative integer",
            })?;
        }
        for w in Workflow::ALL {
            if let Some(v) = data.get(w.key()) {
                let mode = parse_mode(v).ok_or_else(|| Error::BadValue {
                    key: w.key().into(),
                    value: v.clone(),
                    expected: "legacy, shadow or operator",
                })?;
                takeover.modes.insert(w, mode);
            }
        }
        Ok(takeover)
    }

    /// The ConfigMap data that projects this takeover.
    pub fn to_data(&self) -> BTreeMap<String, String> {
        let mut data: BTreeMap<String, String> = Workflow::ALL
            .iter()
            .map(|w| (w.key().to_owned(), self.mode(*w).as_str().to_owned()))
            .collect();
        data.insert(GENERATION_KEY.into(), self.generation.to_string());
        data
    }
}

/// A workflow instance that is running, so its decider must not change under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// The workflow.
    pub workflow: Workflow,
    /// What is running, for the status message (for example `migration in phase PLACING_REPLICAS`).
    pub what: String,
}

/// The outcome for one workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowPlan {
    /// The workflow.
    pub workflow: Workflow,
    /// What the spec asks for.
    pub requested: WorkflowMode,
    /// What is projected after this plan.
    pub effective: WorkflowMode,
    /// Why `requested` is not `effective`, if it is not; or a note on a forced change.
    pub message: Option<String>,
}

/// What to project, and what to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The takeover to project.
    pub takeover: Takeover,
    /// Whether it differs from the current one (the ConfigMap must be written).
    pub changed: bool,
    /// One entry per workflow, in [`Workflow::ALL`] order.
    pub workflows: Vec<WorkflowPlan>,
}

/// Reads the force annotation's value: the workflows it names. Unknown names are returned apart,
/// for the status message.
pub fn forced(annotation: Option<&str>) -> (BTreeSet<Workflow>, Vec<String>) {
    let mut known = BTreeSet::new();
    let mut unknown = Vec::new();
    for name in annotation.unwrap_or_default().split(',').map(str::trim) {
        if name.is_empty() {
            continue;
        }
        match Workflow::from_key(name) {
            Some(w) => {
                known.insert(w);
            }
            None => unknown.push(name.to_owned()),
        }
    }
    (known, unknown)
}

/// Whether going from `from` to `to` hands the decision from one decider to the other.
fn changes_decider(from: WorkflowMode, to: WorkflowMode) -> bool {
    (from == WorkflowMode::Operator) != (to == WorkflowMode::Operator)
}

/// Decides the takeover to project from the modes the spec requests, the takeover projected now,
/// what is in flight and what is forced.
///
/// A requested mode is refused, and the workflow keeps its current mode, when:
/// - this version has no controller for it (`operator`) or no decisions to compare (`shadow`);
/// - it changes the decider while an instance is in flight, and the workflow is not forced.
///
/// `legacy` ↔ `shadow` never changes who acts, so it is never refused for being in flight.
pub fn plan(
    requested: &nodewright_api::edgecluster::WorkflowModes,
    current: &Takeover,
    in_flight: &[InFlight],
    forced: &BTreeSet<Workflow>,
) -> Plan {
    let mut takeover = current.clone();
    let mut workflows = Vec::new();
    for w in Workflow::ALL {
        let want = w.requested(requested);
        let now = current.mode(w);
        let mut message = None;
        let mut effective = now;
        let running: Vec<&str> = in_flight
            .iter()
            .filter(|f| f.workflow == w)
            .map(|f| f.what.as_str())
            .collect();
        if want == now && forced.contains(&w) && !running.is_empty() {
            message = Some(format!(
                "{w}: {FORCE_ANNOTATION} names it while {} is in flight; remove it once the takeover is \
                 done, so that the next change is checked again",
                running.join(", ")
            ));
        }
        if want != now {
            if want == WorkflowMode::Operator && !w.has_operator() {
                message = Some(format!(
                    "{w}: this version of Nodewright has no operator controller for it; it stays {}",
                    now.as_str()
                ));
            } else if now == WorkflowMode::Legacy && want == WorkflowMode::Operator {
                // The CRD refuses this change on update; an EdgeCluster created in operator mode,
                // or one whose shadow step was refused, gets here.
                message = Some(format!(
                    "{w}: refusing to move from legacy to operator directly: run it in shadow first, \
                     so that its divergences can be read before it is handed over"
                ));
            } else if want == WorkflowMode::Shadow && !w.has_shadow() {
                message = Some(format!(
                    "{w}: this version of Nodewright has no shadow decisions for it; it stays {}",
                    now.as_str()
                ));
            } else if changes_decider(now, want) && !running.is_empty() && !forced.contains(&w) {
                message = Some(format!(
                    "{w}: refusing to move from {} to {} while {} is in flight; wait for it to end, \
                     or force it with the annotation {FORCE_ANNOTATION}={w}",
                    now.as_str(),
                    want.as_str(),
                    running.join(", ")
                ));
            } else {
                effective = want;
                if changes_decider(now, want) && !running.is_empty() {
                    message = Some(format!(
                        "{w}: moved from {} to {} while {} was in flight, forced by {FORCE_ANNOTATION}; \
                         the running instance is not adopted and waits for a person",
                        now.as_str(),
                        want.as_str(),
                        running.join(", ")
                    ));
                }
            }
        }
        takeover.modes.insert(w, effective);
        workflows.push(WorkflowPlan {
            workflow: w,
            requested: want,
            effective,
            message,
        });
    }
    let changed = takeover.modes != current.modes;
    if changed {
        takeover.generation = current.generation + 1;
    }
    Plan {
        takeover,
        changed,
        workflows,
    }
}

/// The default grace period of the fence (seconds): how long a Node must have been NotReady, by
/// its Ready condition's `lastTransitionTime`, before a script pod that is not running on it
/// counts as unable to act.
pub const DEFAULT_NOT_READY_GRACE: i64 = 300;

/// A node's legacy script pods, as the operator last saw them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptPod {
    /// The legacy pods have not been listed yet: nothing is known, so nothing is proven.
    Unlisted,
    /// No pod of the legacy DaemonSet is on the node: no script there holds a snapshot.
    Gone,
    /// A pod of the legacy DaemonSet on the node is (or was last reported) running.
    Running {
        /// The pod.
        pod: String,
    },
    /// The node's legacy pods exist, and none of them is running as last reported (pending,
    /// finished or failed).
    NotRunning {
        /// The pod.
        pod: String,
        /// Its phase, for the status message.
        phase: String,
    },
}

/// A Node's Ready condition, as the operator last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeReady {
    /// Ready, or no Ready condition reported yet (a Node the kubelet just registered).
    Ready,
    /// Ready is `False` or `Unknown`, since `since` (Unix seconds, the condition's
    /// `lastTransitionTime`: cluster time, not the node's clock).
    NotReady {
        /// When the condition last changed; `None` when it carries no time.
        since: Option<i64>,
    },
    /// There is no Node object for it (only a pod names it).
    NoNode,
}

/// What the operator knows about one node's legacy script: the facts the fence decides from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptFacts {
    /// The node.
    pub node: String,
    /// The generation its script last acknowledged (`takeover-generation` of its node ConfigMap),
    /// if any.
    pub acknowledged: Option<u64>,
    /// When its script last reported, by the node's own clock (Unix seconds). Shown in the status
    /// message, never used as proof of anything.
    pub last_report: Option<i64>,
    /// Its legacy pods.
    pub pod: ScriptPod,
    /// Its Node's Ready condition.
    pub ready: NodeReady,
}

/// Why a node holds a takeover back: the script on it could still act on a snapshot read before
/// the current generation, and nothing proves it cannot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// The node.
    pub node: String,
    /// The generation it has not acknowledged.
    pub generation: u64,
    /// The generation it did acknowledge, if any.
    pub acknowledged: Option<u64>,
    /// What the operator saw of its pod.
    pub pod: ScriptPod,
    /// How long its Node has been NotReady (seconds), when it is, and the grace period.
    pub not_ready_for: Option<(Option<i64>, i64)>,
    /// How long ago its script last reported, by `now` against the node's own clock.
    pub last_report_ago: Option<i64>,
}

impl fmt::Display for Holding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the legacy script on {} to read takeover generation {} (",
            self.node, self.generation
        )?;
        match &self.pod {
            ScriptPod::Unlisted => f.write_str("the legacy pods are not listed yet")?,
            ScriptPod::Running { pod } => write!(f, "its pod {pod} is running")?,
            ScriptPod::NotRunning { pod, phase } => write!(f, "its pod {pod} is {phase}")?,
            ScriptPod::Gone => f.write_str("its pod is gone")?,
        }
        match self.not_ready_for {
            Some((Some(secs), grace)) if secs < grace => write!(
                f,
                "; its Node is NotReady for {secs} s, within the grace period of {grace} s"
            )?,
            Some((Some(secs), _)) => write!(f, "; its Node is NotReady for {secs} s")?,
            Some((None, _)) => f.write_str("; its Node is NotReady since an unknown time")?,
            None => {}
        }
        match self.last_report_ago {
            Some(ago) => write!(f, "; last report {ago} s ago")?,
            None => f.write_str("; no report yet")?,
        }
        if let Some(g) = self.acknowledged {
            write!(f, "; it acknowledged {g}")?;
        }
        f.write_str(")")
    }
}

/// The fence: which nodes hold the takeover at `generation` back, at `now` (Unix seconds, the
/// operator's clock, compared with the cluster's `lastTransitionTime`s), with a NotReady grace
/// period of `grace` seconds.
///
/// A node does not hold it back when its script acknowledged `generation` (or later), or when it
/// is proven unable to act: no pod of the legacy DaemonSet is on it, or its Node has been NotReady
/// for at least `grace` and none of its pods is running. Silence is never proof: a script that
/// has not reported for an hour, whose pod runs, still holds the takeover back — its loop may be
/// blocked on a host command, halfway through acting on the snapshot it read before the change.
pub fn holding(generation: u64, facts: &[ScriptFacts], now: i64, grace: i64) -> Vec<Holding> {
    facts
        .iter()
        .filter(|f| f.acknowledged.is_none_or(|g| g < generation))
        .filter_map(|f| {
            let not_ready_for = match f.ready {
                NodeReady::NotReady { since } => Some(since.map(|s| (now - s).max(0))),
                NodeReady::Ready | NodeReady::NoNode => None,
            };
            let proven = match &f.pod {
                ScriptPod::Gone => true,
                ScriptPod::NotRunning { .. } => not_ready_for.flatten().is_some_and(|s| s >= grace),
                ScriptPod::Running { .. } | ScriptPod::Unlisted => false,
            };
            (!proven).then(|| Holding {
                node: f.node.clone(),
                generation,
                acknowledged: f.acknowledged,
                pod: f.pod.clone(),
                not_ready_for: not_ready_for.map(|s| (s, grace)),
                last_report_ago: f.last_report.map(|r| now - r),
            })
        })
        .collect()
}

/// Whether the operator may act on `workflow`: it is in `operator` mode and no node holds the
/// takeover's generation back ([`holding`]). On `Err`, the nodes that hold it back (empty when
/// the workflow is not in `operator` mode).
pub fn may_act(
    takeover: &Takeover,
    workflow: Workflow,
    facts: &[ScriptFacts],
    now: i64,
    grace: i64,
) -> Result<(), Vec<Holding>> {
    if takeover.mode(workflow) != WorkflowMode::Operator {
        return Err(Vec::new());
    }
    let waiting = holding(takeover.generation, facts, now, grace);
    if waiting.is_empty() { Ok(()) } else { Err(waiting) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nodewright_api::edgecluster::WorkflowModes;

    fn modes(f: impl FnOnce(&mut WorkflowModes)) -> WorkflowModes {
        let mut m = WorkflowModes::default();
        f(&mut m);
        m
    }

    fn with(current: &Takeover, w: Workflow, mode: WorkflowMode) -> Takeover {
        let mut t = current.clone();
        t.modes.insert(w, mode);
        t
    }

    #[test]
    fn a_site_without_a_takeover_configmap_runs_everything_legacy_at_generation_zero() {
        let t = Takeover::from_data(&BTreeMap::new()).unwrap();
        assert_eq!(t, Takeover::default());
        assert!(Workflow::ALL.iter().all(|w| t.mode(*w) == WorkflowMode::Legacy));
    }

    #[test]
    fn the_configmap_data_reads_back_as_the_takeover_it_projects() {
        let t = with(&Takeover::default(), Workflow::Taints, WorkflowMode::Operator);
        let t = Takeover { generation: 7, ..t };
        let data = t.to_data();
        assert_eq!(data.get("taints").map(String::as_str), Some("operator"));
        assert_eq!(data.get("storage-upgrade").map(String::as_str), Some("legacy"));
        assert_eq!(data.get("generation").map(String::as_str), Some("7"));
        assert_eq!(Takeover::from_data(&data).unwrap(), t);
    }

    #[test]
    fn a_configmap_value_that_is_not_a_mode_is_an_error_naming_the_key() {
        let data = BTreeMap::from([("migration".to_owned(), "operater".to_owned())]);
        let e = Takeover::from_data(&data).unwrap_err();
        assert!(e.to_string().contains("`migration` holds `operater`"), "{e}");
        let data = BTreeMap::from([("generation".to_owned(), "x".to_owned())]);
        assert!(Takeover::from_data(&data).is_err());
    }

    #[test]
    fn moving_taints_to_shadow_is_projected_with_a_new_generation() {
        let p = plan(
            &modes(|m| m.taints = WorkflowMode::Shadow),
            &Takeover::default(),
            &[],
            &BTreeSet::new(),
        );
        assert!(p.changed);
        assert_eq!(p.takeover.generation, 1);
        assert_eq!(p.takeover.mode(Workflow::Taints), WorkflowMode::Shadow);
        assert!(p.workflows.iter().all(|w| w.message.is_none()));
    }

    #[test]
    fn an_unchanged_request_projects_nothing_new() {
        let current = Takeover {
            generation: 4,
            ..with(&Takeover::default(), Workflow::Taints, WorkflowMode::Shadow)
        };
        let p = plan(
            &modes(|m| m.taints = WorkflowMode::Shadow),
            &current,
            &[],
            &BTreeSet::new(),
        );
        assert!(!p.changed);
        assert_eq!(p.takeover, current);
    }

    #[test]
    fn handing_migration_to_the_operator_while_one_is_in_flight_is_refused_with_a_message() {
        let current = Takeover {
            generation: 2,
            ..with(&Takeover::default(), Workflow::Migration, WorkflowMode::Shadow)
        };
        let in_flight = [InFlight {
            workflow: Workflow::Migration,
            what: "migration in phase PLACING_REPLICAS".into(),
        }];
        let p = plan(
            &modes(|m| m.migration = WorkflowMode::Operator),
            &current,
            &in_flight,
            &BTreeSet::new(),
        );
        assert!(!p.changed);
        assert_eq!(p.takeover.mode(Workflow::Migration), WorkflowMode::Shadow);
        let m = p.workflows[1].message.as_deref().unwrap();
        assert!(m.contains("refusing to move from shadow to operator"), "{m}");
        assert!(m.contains("PLACING_REPLICAS"), "{m}");
        assert!(m.contains(FORCE_ANNOTATION), "{m}");
    }

    #[test]
    fn a_forced_change_goes_through_in_flight_and_says_so() {
        let current = with(&Takeover::default(), Workflow::Migration, WorkflowMode::Shadow);
        let in_flight = [InFlight {
            workflow: Workflow::Migration,
            what: "migration in phase PREFLIGHT".into(),
        }];
        let (force, unknown) = forced(Some("migration, nope"));
        assert_eq!(unknown, vec!["nope".to_owned()]);
        let p = plan(
            &modes(|m| m.migration = WorkflowMode::Operator),
            &current,
            &in_flight,
            &force,
        );
        assert!(p.changed);
        assert_eq!(p.takeover.mode(Workflow::Migration), WorkflowMode::Operator);
        assert!(p.workflows[1].message.as_deref().unwrap().contains("forced"));
        // Once in effect, the annotation still set is pointed out while the instance runs.
        let p = plan(
            &modes(|m| m.migration = WorkflowMode::Operator),
            &p.takeover,
            &in_flight,
            &force,
        );
        assert!(!p.changed);
        assert!(
            p.workflows[1]
                .message
                .as_deref()
                .unwrap()
                .contains("remove it once")
        );
    }

    #[test]
    fn legacy_to_shadow_is_allowed_in_flight_because_the_script_still_decides() {
        let in_flight = [InFlight {
            workflow: Workflow::StorageUpgrade,
            what: "storage upgrade in state WAIT_RESYNC".into(),
        }];
        let p = plan(
            &modes(|m| m.storage_upgrade = WorkflowMode::Shadow),
            &Takeover::default(),
            &in_flight,
            &BTreeSet::new(),
        );
        assert_eq!(p.takeover.mode(Workflow::StorageUpgrade), WorkflowMode::Shadow);
    }

    #[test]
    fn going_from_legacy_straight_to_operator_is_refused_until_shadow_ran() {
        let p = plan(
            &modes(|m| m.taints = WorkflowMode::Operator),
            &Takeover::default(),
            &[],
            &BTreeSet::new(),
        );
        assert!(!p.changed);
        assert_eq!(p.takeover.mode(Workflow::Taints), WorkflowMode::Legacy);
        assert!(
            p.workflows[4]
                .message
                .as_deref()
                .unwrap()
                .contains("run it in shadow first")
        );
    }

    #[test]
    fn a_workflow_without_an_operator_controller_stays_where_it_is() {
        let p = plan(
            &modes(|m| m.bond_flip = WorkflowMode::Operator),
            &Takeover::default(),
            &[],
            &BTreeSet::new(),
        );
        assert_eq!(p.takeover.mode(Workflow::BondFlip), WorkflowMode::Legacy);
        assert!(
            p.workflows[3]
                .message
                .as_deref()
                .unwrap()
                .contains("no operator controller")
        );
        let p = plan(
            &modes(|m| m.boot_recovery = WorkflowMode::Shadow),
            &Takeover::default(),
            &[],
            &BTreeSet::new(),
        );
        assert_eq!(p.takeover.mode(Workflow::BootRecovery), WorkflowMode::Legacy);
        assert!(
            p.workflows[5]
                .message
                .as_deref()
                .unwrap()
                .contains("no shadow decisions")
        );
        // The bond flip has its shadow decisions.
        let p = plan(
            &modes(|m| m.bond_flip = WorkflowMode::Shadow),
            &Takeover::default(),
            &[],
            &BTreeSet::new(),
        );
        assert_eq!(p.takeover.mode(Workflow::BondFlip), WorkflowMode::Shadow);
    }

    #[test]
    fn the_storage_upgrade_moves_from_shadow_to_operator_now_that_it_has_a_controller() {
        let current = with(
            &Takeover::default(),
            Workflow::StorageUpgrade,
            WorkflowMode::Shadow,
        );
        let p = plan(
            &modes(|m| m.storage_upgrade = WorkflowMode::Operator),
            &current,
            &[],
            &BTreeSet::new(),
        );
        assert_eq!(p.takeover.mode(Workflow::StorageUpgrade), WorkflowMode::Operator);
    }

    fn operator_taints_at(generation: u64) -> Takeover {
        Takeover {
            generation,
            ..with(&Takeover::default(), Workflow::Taints, WorkflowMode::Operator)
        }
    }

    fn script(node: &str, acknowledged: Option<u64>, pod: ScriptPod, ready: NodeReady) -> ScriptFacts {
        ScriptFacts {
            node: node.into(),
            acknowledged,
            last_report: Some(1_000),
            pod,
            ready,
        }
    }

    fn running(pod: &str) -> ScriptPod {
        ScriptPod::Running { pod: pod.into() }
    }

    const NOW: i64 = 1_612;
    const GRACE: i64 = 300;

    #[test]
    fn the_operator_acts_once_every_node_acknowledged_the_generation() {
        let t = operator_taints_at(3);
        let facts = [
            script("a", Some(3), running("p-a"), NodeReady::Ready),
            script("b", Some(4), running("p-b"), NodeReady::Ready),
        ];
        assert_eq!(may_act(&t, Workflow::Taints, &facts, NOW, GRACE), Ok(()));
        assert_eq!(
            may_act(&t, Workflow::Migration, &facts, NOW, GRACE),
            Err(Vec::new()),
            "a workflow not in operator mode is never acted on"
        );
    }

    #[test]
    fn a_stale_script_whose_pod_runs_holds_the_takeover_back_and_the_message_says_so() {
        // Its last report is 612 s old by its own clock: under the old rule it was dead.
        let t = operator_taints_at(3);
        let facts = [
            script("edge-1", Some(3), running("p-1"), NodeReady::Ready),
            script(
                "edge-2",
                Some(2),
                running("vx-rail-node-init-x7"),
                NodeReady::Ready,
            ),
        ];
        let waiting = may_act(&t, Workflow::Taints, &facts, NOW, GRACE).unwrap_err();
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            waiting[0].to_string(),
            "the legacy script on edge-2 to read takeover generation 3 (its pod \
             vx-rail-node-init-x7 is running; last report 612 s ago; it acknowledged 2)"
        );
    }

    #[test]
    fn a_node_without_a_node_configmap_counts_while_its_pod_runs() {
        let t = operator_taints_at(1);
        let mut fresh = script("edge-3", None, running("p-3"), NodeReady::Ready);
        fresh.last_report = None;
        let waiting = may_act(&t, Workflow::Taints, &[fresh], NOW, GRACE).unwrap_err();
        assert_eq!(waiting[0].node, "edge-3");
        assert!(
            waiting[0]
                .to_string()
                .ends_with("(its pod p-3 is running; no report yet)")
        );
    }

    #[test]
    fn a_node_whose_script_pod_is_gone_is_proven_unable_to_act() {
        let t = operator_taints_at(3);
        let facts = [
            script("a", Some(3), running("p-a"), NodeReady::Ready),
            script("b", Some(1), ScriptPod::Gone, NodeReady::Ready),
            script(
                "c",
                None,
                ScriptPod::Gone,
                NodeReady::NotReady { since: Some(NOW) },
            ),
        ];
        assert_eq!(may_act(&t, Workflow::Taints, &facts, NOW, GRACE), Ok(()));
    }

    #[test]
    fn a_notready_node_whose_pod_still_runs_holds_the_takeover_back_however_long() {
        let t = operator_taints_at(3);
        let facts = [script(
            "edge-2",
            Some(2),
            running("p-2"),
            NodeReady::NotReady {
                since: Some(NOW - 3_600),
            },
        )];
        let waiting = may_act(&t, Workflow::Taints, &facts, NOW, GRACE).unwrap_err();
        assert!(
            waiting[0]
                .to_string()
                .contains("its pod p-2 is running; its Node is NotReady for 3600 s"),
            "{}",
            waiting[0]
        );
    }

    #[test]
    fn a_notready_node_without_a_running_pod_is_proven_only_after_the_grace_period() {
        let t = operator_taints_at(3);
        let stopped = ScriptPod::NotRunning {
            pod: "p-2".into(),
            phase: "Failed".into(),
        };
        let within = [script(
            "edge-2",
            Some(2),
            stopped.clone(),
            NodeReady::NotReady {
                since: Some(NOW - 60),
            },
        )];
        let waiting = may_act(&t, Workflow::Taints, &within, NOW, GRACE).unwrap_err();
        assert!(
            waiting[0].to_string().contains(
                "its pod p-2 is Failed; its Node is NotReady for 60 s, within the grace period of 300 s"
            ),
            "{}",
            waiting[0]
        );
        let past = [script(
            "edge-2",
            Some(2),
            stopped.clone(),
            NodeReady::NotReady {
                since: Some(NOW - GRACE),
            },
        )];
        assert_eq!(may_act(&t, Workflow::Taints, &past, NOW, GRACE), Ok(()));
        // A condition without a time proves nothing; a Ready node's stopped pod neither (it may
        // be restarting, and the kubelet would say so).
        let untimed = [script(
            "edge-2",
            Some(2),
            stopped.clone(),
            NodeReady::NotReady { since: None },
        )];
        assert!(may_act(&t, Workflow::Taints, &untimed, NOW, GRACE).is_err());
        let ready = [script("edge-2", Some(2), stopped, NodeReady::Ready)];
        assert!(may_act(&t, Workflow::Taints, &ready, NOW, GRACE).is_err());
    }

    #[test]
    fn before_the_legacy_pods_are_listed_nothing_is_proven() {
        let t = operator_taints_at(3);
        let facts = [script("a", None, ScriptPod::Unlisted, NodeReady::Ready)];
        let waiting = may_act(&t, Workflow::Taints, &facts, NOW, GRACE).unwrap_err();
        assert!(
            waiting[0]
                .to_string()
                .contains("the legacy pods are not listed yet")
        );
    }
}
