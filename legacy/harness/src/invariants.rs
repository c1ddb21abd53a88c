//! What must never happen at a site, stated as invariants and checked over a whole run.
//!
//! A run is a sequence of [`Step`]s: who did what (a node's script, Nodewright, a node agent
//! running Nodewright's task, a person, or the world itself: a fault, the clock) and the world
//! right after it ([`Facts`]: every diskful DRBD replica's disk state, every Node's taints and
//! labels, every ConfigMap's data). Each invariant is a pure function of the steps that names the
//! tick, the node, the resource or the workflow instance of every violation.
//!
//! Which workflow a step acts for: Nodewright's steps say it (the harness knows which controller
//! made them); a script's step is classified by what it changed. A Kubernetes write that changes a
//! node's storage taint or storage-ready label acts for `taints` on that node; one that changes the
//! cluster state's `migration` or `upgrade` key acts for `migration` or `storage-upgrade` of the
//! site. A host command that changes LINSTOR's placement (a node, storage pool, resource or
//! resource definition created or deleted) while a migration is in flight acts for `migration`.
//! Everything else a script does (its network, its steady-state storage, its reports) is no
//! workflow Nodewright can own, and no decision of one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use nodewright_api::WorkflowMode;
use nodewright_legacy_sim::observe::Facts;
use nodewright_legacy_sim::run::{self, Scenario, Trace};
use nodewright_parity::Workflow;
use nodewright_parity::takeover::Takeover;
use nodewright_parsers::contract::{self, cluster_key, label, node_key, taint};

/// Who made a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// Nobody: the world as built, a fault, the clock.
    World,
    /// A person, with `kubectl` (the scenario's requests).
    Person,
    /// A node's legacy script.
    Script(String),
    /// Nodewright's operator.
    Nodewright,
    /// A node's agent, running a task of Nodewright's.
    Agent(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::World => f.write_str("the world"),
            Actor::Person => f.write_str("a person"),
            Actor::Script(node) => write!(f, "{node}'s script"),
            Actor::Nodewright => f.write_str("Nodewright"),
            Actor::Agent(node) => write!(f, "{node}'s agent"),
        }
    }
}

/// What a step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The world as the scenario builds it.
    Start,
    /// The clock moved on to the next tick.
    Clock,
    /// A fault, as the scenario writes it.
    Fault(String),
    /// A command: a host tool on the actor's node, or `kubectl`.
    Command {
        /// The command line.
        argv: Vec<String>,
        /// Its exit code.
        code: i32,
    },
}

/// One step of a run and the world after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The tick it belongs to.
    pub tick: u32,
    /// Who made it.
    pub actor: Actor,
    /// What it did.
    pub action: Action,
    /// The workflow it acts for, when its maker says so (Nodewright's steps); a script's steps are
    /// classified by what they change.
    pub workflow: Option<Workflow>,
    /// The world right after it.
    pub facts: Arc<Facts>,
}

impl Step {
    /// The command line, if the step is a command.
    fn argv(&self) -> Option<&[String]> {
        match &self.action {
            Action::Command { argv, .. } => Some(argv),
            _ => None,
        }
    }

    /// Whether the step is a host command (not `kubectl`).
    fn is_host_command(&self) -> bool {
        self.argv()
            .and_then(|a| a.first())
            .is_some_and(|tool| tool != "kubectl")
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Start => f.write_str("the start"),
            Action::Clock => f.write_str("the clock moving on"),
            Action::Fault(fault) => write!(f, "the fault {fault}"),
            Action::Command { argv, code } => {
                const LONGEST: usize = 120;
                let mut line = run::shell_words(argv);
                if line.chars().count() > LONGEST {
                    line = line.chars().take(LONGEST).collect::<String>() + "…";
                }
                write!(f, "{} `{line}` (exit {code})", self.actor)
            }
        }
    }
}

/// One violation of one invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: &'static str,
    /// The tick it happened in.
    pub tick: u32,
    /// What happened: the node, resource or workflow instance, and the step that did it.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "violated {}: tick {}: {}",
            self.invariant, self.tick, self.message
        )
    }
}

/// An invariant: what must never happen, and its check.
pub struct Invariant {
    /// Its name, as violations and incident scenarios name it.
    pub name: &'static str,
    /// What it states.
    pub rule: &'static str,
    /// The check: every violation in a run.
    pub check: fn(&[Step]) -> Vec<Violation>,
}

/// At most one node in a per-node storage-upgrade state.
pub const ONE_NODE_UPGRADING: &str = "one-node-upgrading";
/// No resource left without an UpToDate replica by anyone's action while the site had one.
pub const UPTODATE_REPLICA_KEPT: &str = "uptodate-replica-kept";
/// A storage taint removed only after the node's resources are UpToDate.
pub const STORAGE_TAINT_AFTER_UPTODATE: &str = "storage-taint-after-uptodate";
/// One decider per workflow instance.
pub const ONE_DECIDER: &str = "one-decider";
/// No host mutation of an operator-owned workflow by the script.
pub const SCRIPT_KEEPS_OFF_OWNED: &str = "script-keeps-off-owned-workflows";

/// Every invariant, in the order they are reported.
pub const INVARIANTS: [Invariant; 5] = [
    Invariant {
        name: ONE_NODE_UPGRADING,
        rule: "at most one node is in a per-node storage-upgrade state (PREFLIGHT … UNCORDON) at any time",
        check: one_node_upgrading,
    },
    Invariant {
        name: UPTODATE_REPLICA_KEPT,
        rule: "no action leaves a resource without an UpToDate replica while the site had one",
        check: uptodate_replica_kept,
    },
    Invariant {
        name: STORAGE_TAINT_AFTER_UPTODATE,
        rule: "a node's storage taint is removed only once all its replicas are UpToDate",
        check: storage_taint_after_uptodate,
    },
    Invariant {
        name: ONE_DECIDER,
        rule: "the script and Nodewright never both decide one workflow instance",
        check: one_decider,
    },
    Invariant {
        name: SCRIPT_KEEPS_OFF_OWNED,
        rule: "no script runs a host mutation for a workflow Nodewright owns",
        check: script_keeps_off_owned,
    },
];

/// The names of every invariant.
pub fn names() -> impl Iterator<Item = &'static str> {
    INVARIANTS.iter().map(|i| i.name)
}

/// What a check of a run found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// How many invariants were checked.
    pub checked: usize,
    /// Every violation, invariant by invariant, in the order of the run.
    pub violations: Vec<Violation>,
}

impl Report {
    /// The names of the invariants violated, in [`INVARIANTS`] order.
    pub fn violated(&self) -> Vec<&'static str> {
        names()
            .filter(|n| self.violations.iter().any(|v| v.invariant == *n))
            .collect()
    }

    /// The one summary line: `invariants: N checked, M violated` (M counts invariants, each
    /// violation is named on a line of its own).
    pub fn summary(&self) -> String {
        format!(
            "invariants: {} checked, {} violated",
            self.checked,
            self.violated().len()
        )
    }
}

impl fmt::Display for Report {
    /// One line per violation, then the summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for v in &self.violations {
            writeln!(f, "{v}")?;
        }
        writeln!(f, "{}", self.summary())
    }
}

/// Checks every invariant over a run.
pub fn check(steps: &[Step]) -> Report {
    Report {
        checked: INVARIANTS.len(),
        violations: INVARIANTS.iter().flat_map(|i| (i.check)(steps)).collect(),
    }
}

/// The invariants a run of `scenario` with `modes` (the workflows not in `legacy` mode) must
/// violate: those its `incident` names while the script decides every workflow the incident names
/// (none of them in `operator` mode); none otherwise.
pub fn expected(scenario: &Scenario, modes: &[(Workflow, WorkflowMode)]) -> BTreeSet<String> {
    let Some(incident) = &scenario.incident else {
        return BTreeSet::new();
    };
    let taken_over = incident.script_decides.iter().any(|key| {
        modes
            .iter()
            .any(|(w, m)| w.key() == key && *m == WorkflowMode::Operator)
    });
    if taken_over {
        BTreeSet::new()
    } else {
        incident.violates.iter().cloned().collect()
    }
}

/// Whether a report is what a run of `scenario` with `modes` must give; if not, why.
pub fn as_expected(
    report: &Report,
    scenario: &Scenario,
    modes: &[(Workflow, WorkflowMode)],
) -> Result<(), String> {
    let want = expected(scenario, modes);
    let found: BTreeSet<String> = report.violated().into_iter().map(String::from).collect();
    if found == want {
        return Ok(());
    }
    let want = if want.is_empty() {
        "none".to_owned()
    } else {
        want.into_iter().collect::<Vec<_>>().join(", ")
    };
    Err(format!("expected {want} violated, found:\n{report}"))
}

/// A run's steps: the legacy runner's trace (the scripts' and the person's commands, the faults
/// and the clock, each with the world after it) with `nodewright`'s steps, which Nodewright made
/// between the scripts' loops, put in after the clock step of their tick.
pub fn steps(trace: &Trace, nodewright: Vec<Step>) -> Vec<Step> {
    let mut ours = nodewright.into_iter().peekable();
    let mut out = Vec::with_capacity(trace.observations.len() + ours.size_hint().0);
    for o in &trace.observations {
        let (actor, action) = match &o.after {
            run::Step::Start => (Actor::World, Action::Start),
            run::Step::Clock => (Actor::World, Action::Clock),
            run::Step::Fault(fault) => (Actor::World, Action::Fault(fault.clone())),
            run::Step::Command(i) => {
                let Some(entry) = trace.commands.get(*i) else {
                    continue;
                };
                // The runner names the scenario's own `kubectl` requests `operator`: a person.
                let actor = if entry.node == "operator" {
                    Actor::Person
                } else {
                    Actor::Script(entry.node.clone())
                };
                (
                    actor,
                    Action::Command {
                        argv: entry.argv.clone(),
                        code: entry.code,
                    },
                )
            }
        };
        // Steps of Nodewright's from earlier ticks (the runner stopped early) come first.
        while ours.peek().is_some_and(|s| s.tick < o.tick) {
            out.extend(ours.next());
        }
        let clock = action == Action::Clock;
        out.push(Step {
            tick: o.tick,
            actor,
            action,
            workflow: None,
            facts: o.facts.clone(),
        });
        if clock {
            while ours.peek().is_some_and(|s| s.tick == o.tick) {
                out.extend(ours.next());
            }
        }
    }
    out.extend(ours);
    out
}

/// Every step with the world before it (the first step's own world for the first).
fn with_before(steps: &[Step]) -> impl Iterator<Item = (&Facts, &Step)> {
    steps.iter().enumerate().map(|(i, s)| {
        let before = if i == 0 { &s.facts } else { &steps[i - 1].facts };
        (&**before, s)
    })
}

const NS: &str = contract::NAMESPACE;

/// The per-node states of the storage upgrade, in order.
const PER_NODE_STATES: [&str; 16] = [
    "PREFLIGHT",
    "QUORUM_CHECK",
    "BACKUP_CONFIG",
    "CORDON_AND_TAINT",
    "DEMOTE_PRIMARIES",
    "STOP_SATELLITE",
    "DOWN_RESOURCES",
    "UNLOAD_MODULES",
    "INSTALL_PACKAGES",
    "LOAD_MODULES",
    "START_SATELLITE",
    "UP_RESOURCES",
    "WAIT_RESYNC",
    "VERIFY_VERSION",
    "REMOVE_TAINT",
    "UNCORDON",
];

/// One key of a `k=v;k=v` blob.
fn blob_get<'a>(blob: &'a str, key: &str) -> Option<&'a str> {
    nodewright_parsers::parse_blob(blob).ok().and_then(|b| b.get(key))
}

/// A comma list of a blob (`done`, `order`).
fn blob_list(blob: &str, key: &str) -> Vec<String> {
    blob_get(blob, key)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn upgrade_blob(facts: &Facts) -> Option<&str> {
    facts.config(NS, contract::CLUSTER_STATE, cluster_key::UPGRADE)
}

fn migration_blob(facts: &Facts) -> Option<&str> {
    facts.config(NS, contract::CLUSTER_STATE, cluster_key::MIGRATION)
}

/// The migration in flight (its blob), if one is.
fn migration_in_flight(facts: &Facts) -> Option<&str> {
    migration_blob(facts).filter(|blob| {
        blob_get(blob, "phase").is_some_and(|p| !matches!(p, "" | "COMPLETED" | "ROLLED_BACK" | "FAILED"))
    })
}

/// Whether the migration in flight is Nodewright's (mirrored with `owner=operator`).
fn migration_owned_by_nodewright(facts: &Facts) -> bool {
    migration_in_flight(facts).is_some_and(|b| blob_get(b, "owner") == Some("operator"))
}

/// Whether a host command changes a node's storage stack: DRBD roles and resources, the LINSTOR
/// satellite, the DRBD modules, packages. Reads (`drbdadm status`, `systemctl is-active`, dry
/// runs, package queries) do not.
fn changes_storage_stack(argv: &[String]) -> bool {
    let words: Vec<&str> = argv
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if argv.iter().any(|a| a == "--dry-run") {
        return false;
    }
    matches!(
        words.as_slice(),
        ["drbdadm", "primary" | "secondary" | "down" | "up" | "adjust", ..]
            | ["systemctl", "start" | "stop" | "restart", ..]
            | ["modprobe", ..]
            | ["apt-get" | "dnf", "install" | "remove" | "downgrade", ..]
    )
}

/// Each node's progress through the upgrade, from two sources. As the nodes write it: a write
/// of the `upgrade` blob (the scripts', or Nodewright's mirror of its StorageUpgrade) says where
/// the node it names (`node=`) is, and that the nodes in `done` are done. As Nodewright's agents
/// act: an agent's host command that changes the storage stack for the storage upgrade, while
/// the upgrade is not rolling back, puts its node in the upgrade whatever the mirror says (a plan
/// that works on two nodes at once is caught even when it mirrors one). A node stays in the
/// upgrade until it hands over (it is then `done`), or the upgrade rolls back or ends. Two nodes
/// that each believe they upgrade both show.
fn one_node_upgrading(steps: &[Step]) -> Vec<Violation> {
    let mut upgrading: BTreeMap<String, String> = BTreeMap::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for (before, step) in with_before(steps) {
        let blob = upgrade_blob(&step.facts);
        let blob_changed = blob != upgrade_blob(before) || matches!(step.action, Action::Start);
        let agent_mutation = match (&step.actor, step.workflow, step.argv()) {
            (Actor::Agent(node), Some(Workflow::StorageUpgrade), Some(argv))
                if changes_storage_stack(argv) =>
            {
                Some((node.clone(), argv))
            }
            _ => None,
        };
        if !blob_changed && agent_mutation.is_none() {
            continue;
        }
        if blob_changed {
            let Some(blob) = blob else {
                upgrading.clear();
                reported.clear();
                continue;
            };
            let state = blob_get(blob, "state").unwrap_or_default();
            let node = blob_get(blob, "node").unwrap_or_default();
            for done in blob_list(blob, "done") {
                upgrading.remove(&done);
            }
            if matches!(state, "COMPLETED" | "ROLLED_BACK" | "FAILED" | "ROLLING_BACK") {
                upgrading.clear();
            } else if PER_NODE_STATES.contains(&state) && !node.is_empty() {
                upgrading.insert(node.to_owned(), state.to_owned());
            }
        }
        if let Some((node, argv)) = agent_mutation {
            let state = upgrade_blob(before).and_then(|b| blob_get(b, "state"));
            let rolling_back = matches!(state, Some("ROLLING_BACK" | "ROLLED_BACK" | "FAILED"));
            if !rolling_back {
                upgrading
                    .entry(node)
                    .or_insert_with(|| format!("its agent's `{}`", run::shell_words(argv)));
            }
        }
        if upgrading.len() < 2 {
            reported.clear();
            continue;
        }
        let nodes: BTreeSet<String> = upgrading.keys().cloned().collect();
        if !nodes.is_subset(&reported) {
            let who: Vec<String> = upgrading.iter().map(|(n, s)| format!("{n} ({s})")).collect();
            out.push(Violation {
                invariant: ONE_NODE_UPGRADING,
                tick: step.tick,
                message: format!(
                    "{} are in per-node upgrade states at once, after {step}",
                    who.join(" and ")
                ),
            });
            reported = nodes;
        }
    }
    out
}

/// A resource that had an UpToDate replica and has none after a step that someone took (faults
/// and the clock are not decisions: a node that loses power takes its replicas with it).
fn uptodate_replica_kept(steps: &[Step]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (before, step) in with_before(steps) {
        if step.actor == Actor::World {
            continue;
        }
        for (resource, replicas) in &step.facts.disks {
            if before.uptodate(resource) == 0 || step.facts.uptodate(resource) > 0 {
                continue;
            }
            let had: Vec<&str> = before.disks[resource]
                .iter()
                .filter(|(_, d)| *d == "UpToDate")
                .map(|(n, _)| n.as_str())
                .collect();
            let now: Vec<String> = replicas.iter().map(|(n, d)| format!("{n} {d}")).collect();
            out.push(Violation {
                invariant: UPTODATE_REPLICA_KEPT,
                tick: step.tick,
                message: format!(
                    "resource {resource} has no UpToDate replica left (it was UpToDate on {}; now {}), after {step}",
                    had.join(", "),
                    now.join(", ")
                ),
            });
        }
    }
    out
}

/// A node's storage taint gone while one of its replicas is not UpToDate.
fn storage_taint_after_uptodate(steps: &[Step]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (before, step) in with_before(steps) {
        for node in step.facts.taints.keys() {
            if !before.tainted(node, taint::STORAGE_NOT_READY)
                || step.facts.tainted(node, taint::STORAGE_NOT_READY)
            {
                continue;
            }
            let not_ready: Vec<String> = step
                .facts
                .disks
                .iter()
                .filter_map(|(r, m)| {
                    m.get(node)
                        .filter(|d| *d != "UpToDate")
                        .map(|d| format!("{r} {d}"))
                })
                .collect();
            if !not_ready.is_empty() {
                out.push(Violation {
                    invariant: STORAGE_TAINT_AFTER_UPTODATE,
                    tick: step.tick,
                    message: format!(
                        "{node}'s storage taint was removed while its replicas are not all UpToDate ({}), by {step}",
                        not_ready.join(", ")
                    ),
                });
            }
        }
    }
    out
}

/// The node a `kubectl … node NAME …` command names.
fn kubectl_node(argv: &[String]) -> Option<&str> {
    argv.iter()
        .position(|a| a == "node" || a == "nodes")
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

/// Whether a host command changes LINSTOR's placement: a node, storage pool, resource or resource
/// definition created or deleted.
fn changes_placement(argv: &[String]) -> bool {
    if argv.first().map(String::as_str) != Some("linstor") {
        return false;
    }
    let words: Vec<&str> = argv[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    matches!(
        words.as_slice(),
        [
            "node" | "n" | "storage-pool" | "sp" | "resource" | "r" | "resource-definition" | "rd",
            "create" | "c" | "delete" | "d",
            ..
        ]
    )
}

/// The workflow instances a step acts for: (workflow, scope), the scope being a node's name or
/// `site`.
fn claims(before: &Facts, step: &Step) -> Vec<(Workflow, String)> {
    let site = || "site".to_owned();
    if let Some(w) = step.workflow {
        let scope = match w {
            Workflow::Taints => step
                .argv()
                .and_then(kubectl_node)
                .map_or_else(site, str::to_owned),
            _ => site(),
        };
        return vec![(w, scope)];
    }
    let Actor::Script(_) = &step.actor else {
        return Vec::new();
    };
    let Some(argv) = step.argv() else {
        return Vec::new();
    };
    let after = &*step.facts;
    let mut out = Vec::new();
    if argv.first().map(String::as_str) == Some("kubectl") {
        for node in after.taints.keys() {
            let storage_taint = |f: &Facts| {
                f.taints.get(node).map(|ts| {
                    ts.iter()
                        .filter(|t| t.split([':', '=']).next() == Some(taint::STORAGE_NOT_READY))
                        .cloned()
                        .collect::<Vec<_>>()
                })
            };
            let ready = |f: &Facts| {
                f.labels
                    .get(node)
                    .and_then(|l| l.get(label::STORAGE_READY))
                    .cloned()
            };
            if before.taints.contains_key(node)
                && (storage_taint(before) != storage_taint(after) || ready(before) != ready(after))
            {
                out.push((Workflow::Taints, node.clone()));
            }
        }
        if migration_blob(before) != migration_blob(after) {
            out.push((Workflow::Migration, site()));
        }
        if upgrade_blob(before) != upgrade_blob(after) {
            out.push((Workflow::StorageUpgrade, site()));
        }
    } else if changes_placement(argv) && migration_in_flight(before).is_some() {
        out.push((Workflow::Migration, site()));
    }
    out
}

/// Who decides a workflow, era by era: an era starts when the takeover ConfigMap moves the workflow
/// into or out of `operator` mode, at that generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Era {
    generation: u64,
    operator: bool,
    mode: WorkflowMode,
}

/// The takeover as the cluster holds it (a missing or unreadable one: everything `legacy`, as the
/// script reads it).
fn takeover(facts: &Facts) -> Takeover {
    facts
        .config_map(NS, contract::TAKEOVER)
        .and_then(|data| Takeover::from_data(data).ok())
        .unwrap_or_default()
}

/// The takeover generation a node's script last acknowledged.
fn acknowledged(facts: &Facts, node: &str) -> Option<u64> {
    facts
        .config(
            NS,
            &format!("{}{node}", contract::NODE_CONFIG_MAP_PREFIX),
            node_key::TAKEOVER_GENERATION,
        )
        .and_then(|g| g.parse().ok())
}

/// Follows the eras of every workflow through a run.
#[derive(Default)]
struct Eras(BTreeMap<Workflow, Era>);

impl Eras {
    /// The era of `w` as `facts` show the takeover.
    fn of(&mut self, facts: &Facts, w: Workflow) -> Era {
        let t = takeover(facts);
        let mode = t.mode(w);
        let operator = mode == WorkflowMode::Operator;
        let era = self.0.entry(w).or_insert(Era {
            generation: t.generation,
            operator,
            mode,
        });
        if era.operator != operator {
            *era = Era {
                generation: t.generation,
                operator,
                mode,
            };
        }
        era.mode = mode;
        *era
    }
}

/// The script and Nodewright never both decide one workflow instance. An instance is a workflow
/// at a scope (a node's taints, the site's migration or upgrade) in one era of the takeover.
/// Within an era in `operator` mode a script may still finish the loop that read the takeover
/// before it changed: its decisions are allowed until Nodewright's first decision for that
/// instance, and until the script acknowledged the generation; any later one is a second decider.
/// Nodewright never decides a workflow outside `operator` mode, nor a script an instance whose
/// mirror says Nodewright owns it (`owner=operator`).
fn one_decider(steps: &[Step]) -> Vec<Violation> {
    let mut eras = Eras::default();
    let mut first_by_nodewright: BTreeMap<(Workflow, String, u64), String> = BTreeMap::new();
    let mut reported: BTreeSet<(Workflow, String, u64, String)> = BTreeSet::new();
    let mut out = Vec::new();
    for (before, step) in with_before(steps) {
        let by_nodewright = matches!(step.actor, Actor::Nodewright | Actor::Agent(_));
        for (w, scope) in claims(before, step) {
            let era = eras.of(before, w);
            let instance = format!("{w} of {scope} (takeover generation {})", era.generation);
            let mut problem = None;
            match &step.actor {
                Actor::Nodewright | Actor::Agent(_) if !era.operator => {
                    problem = Some(format!(
                        "Nodewright decided {instance} while it is in {} mode",
                        era.mode.as_str()
                    ));
                }
                Actor::Script(node) if era.operator => {
                    if let Some(first) = first_by_nodewright.get(&(w, scope.clone(), era.generation)) {
                        problem = Some(format!(
                            "{node}'s script decided {instance} after Nodewright did ({first})"
                        ));
                    } else if acknowledged(before, node).is_some_and(|g| g >= era.generation) {
                        problem = Some(format!(
                            "{node}'s script decided {instance} after acknowledging the generation that gives it to Nodewright"
                        ));
                    }
                }
                _ => {}
            }
            if let Actor::Script(node) = &step.actor
                && w == Workflow::Migration
                && migration_owned_by_nodewright(before)
                && problem.is_none()
            {
                problem = Some(format!(
                    "{node}'s script decided {instance}, which the cluster state marks as Nodewright's (owner=operator)"
                ));
            }
            if by_nodewright && era.operator {
                first_by_nodewright
                    .entry((w, scope.clone(), era.generation))
                    .or_insert_with(|| format!("tick {}: {step}", step.tick));
            }
            if let Some(problem) = problem
                && reported.insert((w, scope, era.generation, step.actor.to_string()))
            {
                out.push(Violation {
                    invariant: ONE_DECIDER,
                    tick: step.tick,
                    message: format!("{problem}: {step}"),
                });
            }
        }
    }
    out
}

/// No script runs a host mutation for a workflow Nodewright owns: one in `operator` mode at a
/// generation the script acknowledged (it has read that the workflow is no longer its own), or a
/// migration the cluster state marks as Nodewright's.
fn script_keeps_off_owned(steps: &[Step]) -> Vec<Violation> {
    let mut eras = Eras::default();
    let mut out = Vec::new();
    for (before, step) in with_before(steps) {
        let Actor::Script(node) = &step.actor else {
            continue;
        };
        if !step.is_host_command() {
            continue;
        }
        for (w, scope) in claims(before, step) {
            let era = eras.of(before, w);
            let why = if era.operator && acknowledged(before, node).is_some_and(|g| g >= era.generation) {
                format!(
                    "{w} is in operator mode since takeover generation {}, which {node} acknowledged",
                    era.generation
                )
            } else if w == Workflow::Migration && migration_owned_by_nodewright(before) {
                "the migration in flight is Nodewright's (owner=operator)".to_owned()
            } else {
                continue;
            };
            out.push(Violation {
                invariant: SCRIPT_KEEPS_OFF_OWNED,
                tick: step.tick,
                message: format!("{node}'s script mutated the host for {w} of {scope} ({why}): {step}"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
