//! Runs a scenario with workflows in `shadow` or `operator` mode: the legacy script on every
//! simulated node under the scenario's runner, and between the scripts' loops the parity layer
//! looking at the cluster the way the operator does (through the bridge's index). In `shadow` it
//! records every divergence from what the scripts did; in `operator` it acts itself, once every
//! live script acknowledged the takeover, through the controllers' pure plans, and the node agents
//! carry out its tasks on the simulated hosts; the scripts skip the workflow.
//!
//! Everything Nodewright does here is recorded as [`invariants::Step`]s with the world after each,
//! so that the invariants are checked over the scripts' and Nodewright's actions together.
//!
//! The in-memory cluster only: a parity run against the real API server, with the operator's and
//! the agents' real loops, is a test of its own (`tests/parity_real.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::ControlFlow;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use nodewright_api::WorkflowMode;
use nodewright_api::migration::{Migration, MigrationSpec, MigrationStatus};
use nodewright_bridge::index::{Index, LegacyNames};
use nodewright_legacy_sim::cluster::Cluster as MemCluster;
use nodewright_legacy_sim::host::OsFlavour;
use nodewright_legacy_sim::run::{self, Action, Event, Host, RunConfig, Scenario, Trace};
use nodewright_parity::controllers::{self, Settings};
use nodewright_parity::migration;
use nodewright_parity::taints;
use nodewright_parity::{Workflow, observed, shadow, takeover};

use crate::drive::{self, AgentFacts, Nodewright, Objects, agent_os};
use crate::invariants::{self, Step};
use crate::world::{self, Rule, SharedCluster, SharedWorld, host_state};

/// How many of the scripts' loops longer a run whose bootstrap the operator owns is made (see
/// [`run_with_rule`]).
pub const BOOTSTRAP_HANDSHAKE_LOOPS: u32 = 2;

/// The Migration's uid in these runs (fixed, so task names are stable in the snapshots).
const MIGRATION_UID: &str = "6f1d7c2a-golden";

/// What can go wrong in a parity run: always the scenario or the harness, never a finding (those
/// are divergences and violations).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario's runner failed.
    #[error(transparent)]
    Run(#[from] run::Error),
    /// The scenario or the cluster holds something the harness cannot use.
    #[error("{0}")]
    Harness(String),
}

pub(crate) fn harness(what: impl std::fmt::Display) -> Error {
    Error::Harness(what.to_string())
}

/// What a parity run did.
#[derive(Clone, Debug)]
pub struct ParityRun {
    /// The report pinned in the golden snapshots: divergences and Nodewright's actions tick by
    /// tick, the Nodes' taints and storage-ready labels at the end, and the hosts' storage.
    pub report: String,
    /// What LINSTOR and DRBD say on every node at the end.
    pub host_state: String,
    /// The site's topology, members and role labels at the end.
    pub site_state: String,
    /// Every Node's taints and storage-ready label at the end.
    pub end_taints: BTreeMap<String, String>,
    /// Every node's storage stack at the end: the storage package's version, whether its DRBD
    /// module is loaded, whether the Node is cordoned.
    pub storage: BTreeMap<String, String>,
    /// Divergences first seen, over the whole run, with their tick.
    pub divergences: Vec<(u32, shadow::Divergence)>,
    /// The kubectl writes the scripts made (from the trace).
    pub script_writes: String,
    /// The runner's trace: the scripts' commands, their logs, and the world after every step.
    pub trace: Trace,
    /// Every step of the run, the scripts' and Nodewright's, with the world after each: what
    /// the invariants are checked over.
    pub steps: Vec<Step>,
}

impl ParityRun {
    /// The invariants checked over the run.
    pub fn invariants(&self) -> invariants::Report {
        invariants::check(&self.steps)
    }
}

/// Brings the index up to the cluster, as the bridge's watches would after a relist.
pub(crate) fn refresh(index: &mut Index, cluster: &MemCluster, now: i64) -> Result<(), Error> {
    let nodes: Vec<Node> = cluster
        .nodes()
        .map(|n| serde_json::from_value(n.to_json()))
        .collect::<Result<_, _>>()
        .map_err(harness)?;
    let cms: Vec<ConfigMap> = cluster
        .config_maps()
        .map(|c| serde_json::from_value(c.to_json()))
        .collect::<Result<_, _>>()
        .map_err(harness)?;
    index.reset_nodes(&nodes, now);
    index.reset_config_maps(&cms, now);
    Ok(())
}

/// A site setting in seconds from the scenario's DaemonSet environment, or `default`.
fn env_seconds(scenario: &Scenario, key: &str, default: i64) -> Result<i64, Error> {
    match scenario.env.get(key) {
        None => Ok(default),
        Some(t) => t
            .parse()
            .map_err(|_| harness(format!("env: {key} is `{t}`, not a number of seconds"))),
    }
}

/// The cluster-state keys a migration changes, and the role labels, at the end.
fn site_state(cluster: &MemCluster) -> String {
    let mut out = String::new();
    if let Some(cm) = cluster.config_map("kube-system", "vx-rail-cluster-state") {
        let json = cm.to_json();
        for key in ["cluster", "members"] {
            let _ = writeln!(out, "{key}: {}", json["data"][key].as_str().unwrap_or_default());
        }
    }
    for n in cluster.nodes() {
        let json = n.to_json();
        let _ = writeln!(
            out,
            "{} role={}",
            n.name, json["metadata"]["labels"]["vx-rail.io/role"]
        );
    }
    out
}

/// Every node's storage stack: `drbd-dkms=<version>` (`half-configured` when its install failed),
/// `drbd=loaded|unloaded`, and `cordoned` when the Node is.
fn storage_state(world: &SharedWorld, cluster: &MemCluster) -> BTreeMap<String, String> {
    let hosts = world.lock();
    hosts
        .nodes
        .iter()
        .map(|(name, n)| {
            let package =
                n.packages
                    .get(nodewright_parity::upgrade::PACKAGE)
                    .map_or("none".to_owned(), |p| {
                        if p.configured {
                            p.version.clone()
                        } else {
                            format!("{} (half-configured)", p.version)
                        }
                    });
            let module = if n.has_module("drbd") {
                "loaded"
            } else {
                "unloaded"
            };
            let cordoned = cluster
                .nodes()
                .find(|c| c.name == *name)
                .is_some_and(|c| c.to_json()["spec"]["unschedulable"] == serde_json::json!(true));
            let mut line = format!("{}={package} drbd={module}", nodewright_parity::upgrade::PACKAGE);
            if cordoned {
                line.push_str(" cordoned");
            }
            (name.clone(), line)
        })
        .collect()
}

fn end_taints(cluster: &MemCluster) -> BTreeMap<String, String> {
    cluster
        .nodes()
        .map(|n| {
            let json = n.to_json();
            let taints = json["spec"]["taints"].to_string();
            let label = json["metadata"]["labels"][taints::READY_LABEL].to_string();
            (n.name.clone(), format!("taints={taints} storage-ready={label}"))
        })
        .collect()
}

/// Whether every mode can run: `shadow` only for a workflow with shadow decisions, `operator` only
/// for one with a controller (what [`takeover::plan`] lets a site project).
pub fn check_modes(modes: &[(Workflow, WorkflowMode)]) -> Result<(), String> {
    for (w, m) in modes {
        match m {
            WorkflowMode::Shadow if !w.has_shadow() => {
                return Err(format!(
                    "{w}: this version of Nodewright has no shadow decisions for it"
                ));
            }
            WorkflowMode::Operator if !w.has_operator() => {
                return Err(format!(
                    "{w}: this version of Nodewright has no operator controller for it"
                ));
            }
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    if let Some((w, _)) = modes.iter().find(|(w, _)| !seen.insert(*w)) {
        return Err(format!("{w}: given more than one mode"));
    }
    Ok(())
}

/// Runs `scenario` with `modes` projected into the takeover ConfigMap before tick `from` (none:
/// the legacy run). With `from > 0`, a person also removes every node's storage-ready label at
/// that tick, so that whoever owns taints has something to do.
pub fn run(
    scenario: Scenario,
    modes: &[(Workflow, WorkflowMode)],
    from: u32,
    config: &RunConfig,
) -> Result<ParityRun, Error> {
    run_with_rule(scenario, modes, from, config, Rule::Fence)
}

/// Like [`run`], with the operator acting on its owned workflows under `rule`: the fence it runs,
/// or the clock rule the fence replaced (to show what that rule would have done).
pub fn run_with_rule(
    scenario: Scenario,
    modes: &[(Workflow, WorkflowMode)],
    from: u32,
    config: &RunConfig,
    rule: Rule,
) -> Result<ParityRun, Error> {
    run_with_sensors(scenario, modes, from, config, rule, AgentFacts::new())
}

/// Like [`run_with_rule`], with what the operator hears of the hosts set by `sensors` (agents
/// silent, or the scripts' reports silenced for its decisions).
pub fn run_with_sensors(
    mut scenario: Scenario,
    modes: &[(Workflow, WorkflowMode)],
    from: u32,
    config: &RunConfig,
    rule: Rule,
    sensors: AgentFacts,
) -> Result<ParityRun, Error> {
    check_modes(modes).map_err(Error::Harness)?;
    if from > 0 {
        // Something for the new owner of taints to do: a person removes every node's label.
        for n in scenario.nodes.iter().rev() {
            scenario.events.insert(
                0,
                Event {
                    tick: from,
                    action: Action::Kubectl(
                        ["label", "node", &n.name, &format!("{}-", taints::READY_LABEL)]
                            .map(String::from)
                            .into(),
                    ),
                },
            );
        }
        scenario.events.sort_by_key(|e| e.tick);
    }
    if !modes.is_empty() {
        let mut args: Vec<String> = ["-n", "kube-system", "create", "configmap", takeover::CONFIGMAP]
            .map(String::from)
            .into();
        args.push("--from-literal=generation=1".into());
        for (w, m) in modes {
            args.push(format!("--from-literal={}={}", w.key(), m.as_str()));
        }
        let at = scenario
            .events
            .iter()
            .position(|e| e.tick >= from)
            .unwrap_or(scenario.events.len());
        scenario.events.insert(
            at,
            Event {
                tick: from,
                action: Action::Kubectl(args),
            },
        );
    }
    // With the migration in operator mode, a person asks for it with a Migration object instead
    // of writing the legacy key: the request event becomes the object, created before its tick.
    let mut requested: Option<(u32, MigrationSpec)> = None;
    if modes.contains(&(Workflow::Migration, WorkflowMode::Operator)) {
        let mut kept = Vec::with_capacity(scenario.events.len());
        for e in std::mem::take(&mut scenario.events) {
            match migration_request(&scenario, &e)? {
                Some(spec) => requested = Some((e.tick, spec)),
                None => kept.push(e),
            }
        }
        scenario.events = kept;
    }
    // A new site whose bootstrap the operator owns takes two of the scripts' loops longer: each
    // node's first loop finds no node ConfigMap to report and acknowledge in (the operator creates
    // it after that loop), and the operator acts once the second loop acknowledged. The run is
    // longer by those two loops, so that it ends where the legacy run does.
    let mut extended = 0;
    if modes.contains(&(Workflow::Bootstrap, WorkflowMode::Operator)) {
        extended = BOOTSTRAP_HANDSHAKE_LOOPS;
        scenario.ticks += extended;
    }
    let cluster = SharedCluster::new();
    let world = SharedWorld::new(run::world_for(&scenario)?);
    let shadowed: Vec<Workflow> = modes
        .iter()
        .filter(|(_, m)| *m == WorkflowMode::Shadow)
        .map(|(w, _)| *w)
        .collect();
    let operated: Vec<Workflow> = modes
        .iter()
        .filter(|(_, m)| *m == WorkflowMode::Operator)
        .map(|(w, _)| *w)
        .collect();

    let mut report = String::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut divergences = Vec::new();
    let mut ours: Vec<Step> = Vec::new();
    let mut failure: Option<Error> = None;
    let mut index = Index::new(LegacyNames::default());
    let mut objects = Objects::default();
    // The operator's migration timeout is the site's, as the DaemonSet's environment sets it.
    let timeout: i64 = match scenario.env.get("VXR_MIGRATION_TIMEOUT") {
        None => migration::DEFAULT_TIMEOUT,
        Some(t) => t.parse().map_err(|_| {
            harness(format!(
                "env: VXR_MIGRATION_TIMEOUT is `{t}`, not a number of seconds"
            ))
        })?,
    };
    let settings = Settings {
        stale_after: 300,
        migration_timeout: timeout,
        upgrade_state_timeout: env_seconds(
            &scenario,
            "VXR_UPGRADE_TIMEOUT",
            Settings::DEFAULT_UPGRADE_STATE_TIMEOUT,
        )?,
        upgrade_rollback_timeout: Settings::DEFAULT_UPGRADE_ROLLBACK_TIMEOUT,
    };
    // Hosts that are not today's Debian shape say so, with the family their agents detect.
    let mut rpm_hosts = Vec::new();
    for n in scenario.nodes.iter().filter(|n| n.host.os != OsFlavour::Debian) {
        rpm_hosts.push(format!("{} {}", n.name, agent_os(&world, &n.name)?));
    }
    if !rpm_hosts.is_empty() {
        let _ = writeln!(report, "agents (--host-os auto): {}", rpm_hosts.join(", "));
    }
    // Bootstrap, shadowed or owned, reads the site's EdgeCluster (its topology and primary) and
    // each node's EdgeNode with its node.conf as spec.host.
    let bootstrap_modes = modes.iter().any(|(w, _)| *w == Workflow::Bootstrap);
    let site = if bootstrap_modes {
        objects.edge_nodes = drive::edge_nodes_of(&scenario)?;
        Some(drive::bootstrap_cluster(&scenario)?)
    } else {
        None
    };
    if extended > 0 {
        let _ = writeln!(
            report,
            "ticks: {} (+{extended}: the takeover handshake of a new site whose bootstrap the operator owns)",
            scenario.ticks
        );
    }
    let agents = config.work_dir.join("agents");
    let mut hosts = sensors;
    let mut last_look = world.now();
    let mut after_tick = |tick: u32, outputs: &[run::TickOutput]| {
        let mut lines = Vec::new();
        let turn = (|| -> Result<(), Error> {
            // The scripts' loops of this tick are over; the clock has moved to the next tick. The
            // index sees the cluster as a relist would, and the loops' logs as the log follower
            // would.
            let now = world.now();
            refresh(&mut index, &cluster.0.borrow(), now)?;
            for o in outputs {
                index.feed_log(&o.node, o.output.as_bytes(), now);
            }
            let mut current = BTreeSet::new();
            let facts = observed::migration_facts(&index, &[], now, 300, timeout);
            let mut found = shadow::divergences(&index, &shadowed, now, last_look, &facts);
            if let (true, Some(site)) = (shadowed.contains(&Workflow::Bootstrap), &site) {
                found.extend(drive::bootstrap_divergences(
                    &index,
                    &cluster.0.borrow(),
                    &objects,
                    site,
                    &settings,
                    now,
                )?);
            }
            last_look = now;
            for d in found {
                let key = d.key();
                current.insert(key.clone());
                if seen.insert(key) {
                    lines.push(format!(
                        "divergence {} {}: script {}; operator {}; observed {}",
                        d.workflow,
                        d.node.as_deref().unwrap_or("site"),
                        d.script,
                        d.operator,
                        d.observed
                    ));
                    divergences.push((tick, d));
                }
            }
            // A divergence that ended may come back later; it is recorded again then.
            seen.retain(|k| current.contains(k));
            if let Some((at_tick, spec)) = &requested
                && tick + 1 == *at_tick
            {
                lines.push(format!(
                    "a person creates Migration site-migration: {} -> {} (replicas {})",
                    spec.source_node,
                    spec.joining_nodes.join(","),
                    spec.replicas.unwrap_or(2)
                ));
                let mut m = Migration::new("site-migration", spec.clone());
                m.metadata.uid = Some(MIGRATION_UID.into());
                m.status = Some(MigrationStatus::default());
                objects.create_migration(m);
            }
            let t = observed::takeover(&index).map_err(harness)?;
            let fence = world::fence(&cluster.0.borrow(), &index, now).map_err(harness)?;
            let mut nw = Nodewright {
                cluster: &cluster,
                world: &world,
                steps: &mut ours,
                tick,
                now,
                agents: &agents,
                hosts: &mut hosts,
            };
            for wf in &operated {
                if let (Workflow::Bootstrap, Some(site)) = (*wf, &site) {
                    // The nodes' ConfigMaps go ahead of the fence (a script acknowledges in its
                    // own); the rest waits for it.
                    let acts = match rule {
                        Rule::Fence => fence.may_act(&t, *wf).map_err(|waiting| {
                            waiting
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; and for ")
                        }),
                        Rule::OldClock => world::old_clock_rule(&index, &t, *wf, now)
                            .map_err(|nodes| format!("acknowledgement from {}", nodes.join(","))),
                    };
                    if let Err(waiting) = &acts {
                        lines.push(format!("{wf}: waiting for {waiting}"));
                    }
                    if t.mode(Workflow::Bootstrap) == WorkflowMode::Operator {
                        drive::bootstrap_turn(
                            &mut objects,
                            &mut index,
                            &mut nw,
                            &settings,
                            site,
                            acts.is_ok(),
                            &mut lines,
                        )?;
                    }
                    continue;
                }
                // What the operator waits for, as its status says it (the fence), or the nodes the
                // old clock rule waited for.
                let may_act = match rule {
                    Rule::Fence => fence.may_act(&t, *wf).map_err(|waiting| {
                        waiting
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; and for ")
                    }),
                    Rule::OldClock => world::old_clock_rule(&index, &t, *wf, now).map_err(|nodes| {
                        if nodes.is_empty() {
                            String::new()
                        } else {
                            format!("acknowledgement from {}", nodes.join(","))
                        }
                    }),
                };
                match may_act {
                    // Not in operator mode (yet): nothing to wait for.
                    Err(waiting) if waiting.is_empty() => {}
                    Err(waiting) => lines.push(format!("{wf}: waiting for {waiting}")),
                    Ok(()) if *wf == Workflow::Taints => {
                        drive::taints_turn(&index, &mut nw, &settings, &mut lines)?;
                    }
                    Ok(()) if *wf == Workflow::Migration => {
                        if !objects.migrations.is_empty() {
                            drive::turn(
                                *wf,
                                &controllers::migration::Migrations,
                                &mut objects,
                                &mut index,
                                &mut nw,
                                &settings,
                                &mut lines,
                            )?;
                        }
                    }
                    Ok(()) if *wf == Workflow::StorageUpgrade => {
                        // Every turn: the controller also translates the scenario's request of
                        // the legacy key (`desired-storage-version`) into a StorageUpgrade.
                        drive::turn(
                            *wf,
                            &controllers::upgrade::StorageUpgrades,
                            &mut objects,
                            &mut index,
                            &mut nw,
                            &settings,
                            &mut lines,
                        )?;
                    }
                    Ok(()) => {}
                }
            }
            Ok(())
        })();
        if !lines.is_empty() {
            let _ = writeln!(report, "tick {tick}:");
            for l in lines {
                let _ = writeln!(report, "  {l}");
            }
        }
        match turn {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failure = Some(Error::Harness(format!("tick {tick}: {e}")));
                ControlFlow::Break(())
            }
        }
    };
    let mut host = world.clone();
    let mut cl = cluster.clone();
    let trace = run::run_observed(&scenario, &mut host, &mut cl, config, true, &mut after_tick);
    let _ = std::fs::remove_dir_all(&config.work_dir);
    let trace = trace?;
    if let Some(e) = failure {
        return Err(e);
    }
    let end = end_taints(&cluster.0.borrow());
    let _ = writeln!(report, "end:");
    for (node, t) in &end {
        let _ = writeln!(report, "  {node}: {t}");
    }
    let storage = storage_state(&world, &cluster.0.borrow());
    if shadowed.contains(&Workflow::StorageUpgrade) || operated.contains(&Workflow::StorageUpgrade) {
        let _ = writeln!(report, "storage:");
        for (node, s) in &storage {
            let _ = writeln!(report, "  {node}: {s}");
        }
    }
    let names: Vec<String> = scenario.nodes.iter().map(|n| n.name.clone()).collect();
    let host_state = host_state(&world, &names);
    let _ = writeln!(report, "hosts:\n{host_state}");
    let steps = invariants::steps(&trace, ours);
    Ok(ParityRun {
        report,
        host_state,
        site_state: site_state(&cluster.0.borrow()),
        end_taints: end,
        storage,
        divergences,
        script_writes: trace.kube_writes(),
        trace,
        steps,
    })
}

/// The Migration object a person creates instead of a scenario's request of a migration through
/// the legacy key (`kubectl patch … {"data":{"migration":"…;joining=…;replicas=…"}}`), if `event`
/// is such a request.
fn migration_request(scenario: &Scenario, event: &Event) -> Result<Option<MigrationSpec>, Error> {
    let Action::Kubectl(args) = &event.action else {
        return Ok(None);
    };
    let Some(patch) = args.iter().find(|a| a.contains("\"migration\"")) else {
        return Ok(None);
    };
    let at = |what: &str| harness(format!("tick {}: the migration request {what}", event.tick));
    let json: serde_json::Value =
        serde_json::from_str(patch).map_err(|e| at(&format!("is not JSON: {e}")))?;
    let blob = json["data"]["migration"]
        .as_str()
        .ok_or_else(|| at("has no data.migration string"))?;
    let field = |k: &str| {
        blob.split(';')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .map(str::to_owned)
    };
    let source = scenario
        .nodes
        .iter()
        .find(|n| n.host.controller)
        .map(|n| n.name.clone())
        .ok_or_else(|| at("is for a site without a LINSTOR controller node"))?;
    let replicas = match field("replicas") {
        None => None,
        Some(r) => Some(r.parse().map_err(|_| at(&format!("has replicas=`{r}`")))?),
    };
    Ok(Some(MigrationSpec {
        owner: nodewright_api::WorkflowOwner::Operator,
        cluster_ref: nodewright_api::common::ClusterRef { name: "site".into() },
        source_node: source,
        joining_nodes: field("joining")
            .ok_or_else(|| at("names no joining nodes"))?
            .split(',')
            .map(str::to_owned)
            .collect(),
        replicas,
        rollback: false,
    }))
}
