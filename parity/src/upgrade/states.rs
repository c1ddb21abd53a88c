//! The forward per-node states: each one's host steps (as node tasks, one after the other), Node
//! changes and checks, and when it is done. A state decides only from the tasks it created since
//! it was entered, so one entered again (after a reboot) reads the host afresh.

use std::collections::BTreeMap;

use nodewright_api::storageupgrade::{StorageUpgradeSpec, UpgradeBackup, UpgradeState as State};

use super::quorum;
use super::tasks::{Progress, ordered, output, request};
use super::{
    Action, Facts, MODULES, NodeFacts, PACKAGE, PACKAGE_REVISION, RESYNC_POLL, SATELLITE, TaskRequest,
    TaskResult,
};
use crate::controllers::PodMeta;

/// What a state's function reads.
pub(super) struct Ctx<'a> {
    pub spec: &'a StorageUpgradeSpec,
    pub uid: &'a str,
    pub node: &'a str,
    /// When the node entered the state.
    pub since: i64,
    /// The state and how many times the node entered it, for the task keys (`preflight1`).
    pub tag: String,
    pub facts: &'a Facts,
    pub node_facts: &'a NodeFacts,
    pub backup: Option<&'a UpgradeBackup>,
    pub tasks: &'a BTreeMap<String, TaskResult>,
    pub pods: &'a [PodMeta],
}

/// How a state stands.
pub(super) enum Step {
    /// Done: on to the next state.
    Done,
    /// The node already runs the target version: it is skipped.
    Skip,
    /// Waiting, for the reason.
    Wait(String),
    /// Failed, for the reason: the rollback starts.
    Fail(String),
}

pub(super) struct StepDecision {
    pub actions: Vec<Action>,
    pub step: Step,
    pub backup: Option<UpgradeBackup>,
    pub watching: Option<String>,
}

impl StepDecision {
    fn of(step: Step) -> Self {
        StepDecision {
            actions: Vec::new(),
            step,
            backup: None,
            watching: None,
        }
    }
}

impl Ctx<'_> {
    fn req(&self, step: &str, args: &[&str]) -> TaskRequest {
        request(self.uid, &self.tag, self.node, step, args)
    }

    /// Runs `wanted` one after the other; `then` decides from their outputs once all succeeded.
    fn run(&self, wanted: &[TaskRequest], then: impl FnOnce() -> StepDecision) -> StepDecision {
        match ordered(self.tasks, wanted, |_| false) {
            Progress::Done => {
                let mut d = then();
                d.watching = d.watching.or_else(|| wanted.last().map(|w| w.key.clone()));
                d
            }
            Progress::Failed(key, why) => StepDecision {
                watching: Some(key),
                ..StepDecision::of(Step::Fail(why))
            },
            Progress::Pending(create, key) => StepDecision {
                actions: create.into_iter().collect(),
                step: Step::Wait(format!("waiting for node task {key}")),
                backup: None,
                watching: Some(key),
            },
        }
    }

    fn out(&self, want: &TaskRequest) -> &str {
        output(self.tasks, want)
    }

    fn to(&self) -> &str {
        &self.spec.to_version
    }
}

fn done() -> StepDecision {
    StepDecision::of(Step::Done)
}

fn failed(why: impl Into<String>) -> StepDecision {
    StepDecision::of(Step::Fail(why.into()))
}

/// The state's step.
pub(super) fn step(c: &Ctx<'_>, state: State) -> StepDecision {
    match state {
        State::Preflight => preflight(c),
        State::QuorumCheck => quorum_check(c),
        State::BackupConfig => backup_config(c),
        State::CordonAndTaint => node_change(c, Some(true), Some(true)),
        State::DemotePrimaries => demote(c),
        State::StopSatellite => c.run(&[c.req("service-stop", &[SATELLITE])], done),
        State::DownResources => c.run(&[c.req("drbd-down", &[])], done),
        State::UnloadModules => c.run(
            &MODULES
                .iter()
                .rev()
                .map(|m| c.req("module-unload", &[m]))
                .collect::<Vec<_>>(),
            done,
        ),
        State::InstallPackages => {
            let version = format!("{}-{PACKAGE_REVISION}", c.to());
            c.run(&[c.req("package-install", &[PACKAGE, &version])], done)
        }
        State::LoadModules => c.run(
            &MODULES
                .iter()
                .map(|m| c.req("module-load", &[m]))
                .collect::<Vec<_>>(),
            done,
        ),
        State::StartSatellite => {
            let status = c.req("service-status", &[SATELLITE]);
            c.run(
                &[c.req("service-start", &[SATELLITE]), status.clone()],
                || match c.out(&status).trim() {
                    "active" => done(),
                    other => failed(format!("{SATELLITE} is {other} after start")),
                },
            )
        }
        State::UpResources => c.run(&[c.req("drbd-adjust", &[])], done),
        State::WaitResync => wait_resync(c),
        State::VerifyVersion => {
            let v = c.req("drbd-version", &[]);
            c.run(std::slice::from_ref(&v), || match quorum::versions(c.out(&v)) {
                Err(e) => failed(e),
                Ok(v) if v.kernel.as_deref() == Some(c.to()) && v.package.as_deref() == Some(c.to()) => {
                    done()
                }
                Ok(v) => failed(format!(
                    "running {}, package {}, wanted {}",
                    v.kernel.as_deref().unwrap_or("none"),
                    v.package.as_deref().unwrap_or("none"),
                    c.to()
                )),
            })
        }
        State::RemoveTaint => node_change(c, None, Some(false)),
        State::Uncordon => node_change(c, Some(false), None),
        State::Pending | State::Completed | State::RollingBack | State::RolledBack | State::Failed => {
            failed(format!("{state:?} is not a per-node state"))
        }
    }
}

/// PREFLIGHT: a node on the target version is skipped; otherwise the satellite runs, every
/// resource is UpToDate with every peer, and the package lists are refreshed.
fn preflight(c: &Ctx<'_>) -> StepDecision {
    let version = c.req("drbd-version", &[]);
    let satellite = c.req("service-status", &[SATELLITE]);
    let drbd = c.req("drbd-status", &[]);
    let reads = [version.clone(), satellite.clone(), drbd.clone()];
    c.run(&reads, || {
        let v = match quorum::versions(c.out(&version)) {
            Ok(v) => v,
            Err(e) => return failed(e),
        };
        // As the script: the installed package decides (a node whose package is new but whose
        // module is old loads the new one at its next boot).
        if v.package.as_deref() == Some(c.to()) {
            return StepDecision::of(Step::Skip);
        }
        match c.out(&satellite).trim() {
            "active" => {}
            other => return failed(format!("{SATELLITE} is {other}")),
        }
        let status = match quorum::drbd(c.out(&drbd)) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let bad = status.unhealthy();
        if !bad.is_empty() {
            return failed(format!("storage not healthy before upgrade: {}", bad.join(", ")));
        }
        c.run(&[c.req("package-refresh", &[])], done)
    })
}

/// QUORUM_CHECK: a fresh read of DRBD; every resource keeps quorum with this node gone.
fn quorum_check(c: &Ctx<'_>) -> StepDecision {
    let drbd = c.req("drbd-status", &[]);
    c.run(std::slice::from_ref(&drbd), || match quorum::drbd(c.out(&drbd)) {
        Err(e) => failed(e),
        Ok(s) => {
            let lost = s.without_this_node();
            if lost.is_empty() {
                done()
            } else {
                failed(format!(
                    "quorum would be lost without {}: {}",
                    c.node,
                    lost.join(", ")
                ))
            }
        }
    })
}

/// BACKUP_CONFIG: the agent saves DRBD's status and configuration; the decision records what the
/// rollback needs (the installed version, the satellite, the modules, the Primary resources).
fn backup_config(c: &Ctx<'_>) -> StepDecision {
    let label = format!("{}-{}", c.to(), c.since);
    let save = c.req("storage-backup", &[&label]);
    let version = c.req("drbd-version", &[]);
    let satellite = c.req("service-status", &[SATELLITE]);
    let drbd = c.req("drbd-status", &[]);
    c.run(
        &[save.clone(), version.clone(), satellite.clone(), drbd.clone()],
        || {
            let v = match quorum::versions(c.out(&version)) {
                Ok(v) => v,
                Err(e) => return failed(e),
            };
            let status = match quorum::drbd(c.out(&drbd)) {
                Ok(s) => s,
                Err(e) => return failed(e),
            };
            let dir = c.out(&save).trim();
            StepDecision {
                backup: Some(UpgradeBackup {
                    directory: (!dir.is_empty()).then(|| dir.to_owned()),
                    installed_version: v.package,
                    kernel_version: v.kernel,
                    satellite_active: c.out(&satellite).trim() == "active",
                    primaries: status.primaries(),
                }),
                ..done()
            }
        },
    )
}

/// A Node change (cordon, taint), done once the Node shows it.
fn node_change(c: &Ctx<'_>, cordon: Option<bool>, taint: Option<bool>) -> StepDecision {
    let nf = c.node_facts;
    let cordon = cordon.filter(|want| nf.cordoned != *want);
    let taint = taint.filter(|want| nf.upgrade_taint != *want);
    if cordon.is_none() && taint.is_none() {
        return done();
    }
    StepDecision {
        actions: vec![Action::Node {
            node: c.node.to_owned(),
            cordon,
            taint,
        }],
        step: Step::Wait(format!("waiting for Node {} to show the change", c.node)),
        backup: None,
        watching: None,
    }
}

/// DEMOTE_PRIMARIES: every pod that could hold a device open is evicted first (DaemonSet pods,
/// static pods and finished pods stay, as `kubectl drain --ignore-daemonsets` leaves them), then
/// each resource Primary here is made Secondary.
fn demote(c: &Ctx<'_>) -> StepDecision {
    let left: Vec<&PodMeta> = c
        .pods
        .iter()
        .filter(|p| p.node == c.node && !p.daemon_set && !p.mirror && !p.finished)
        .collect();
    if !left.is_empty() {
        return StepDecision {
            actions: left
                .iter()
                .map(|p| Action::Evict {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    node: p.node.clone(),
                })
                .collect(),
            step: Step::Wait(format!(
                "draining {}: waiting for {} to leave",
                c.node,
                left.iter()
                    .map(|p| format!("{}/{}", p.namespace, p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            backup: None,
            watching: None,
        };
    }
    let Some(backup) = c.backup else {
        return failed("no backup record of the resources Primary here (BACKUP_CONFIG did not record one)");
    };
    let demotes: Vec<TaskRequest> = backup
        .primaries
        .iter()
        .map(|r| c.req("drbd-demote", &[r]))
        .collect();
    c.run(&demotes, done)
}

/// WAIT_RESYNC: DRBD's status read every [`RESYNC_POLL`] seconds until every resource is
/// UpToDate with every peer; the state's deadline bounds the wait.
fn wait_resync(c: &Ctx<'_>) -> StepDecision {
    let poll = (c.facts.now - c.since).max(0) / RESYNC_POLL;
    // The agent's drbd-status takes no argument: the poll is in the key's tag.
    let read = |k: i64| request(c.uid, &format!("{}-poll{k}", c.tag), c.node, "drbd-status", &[]);
    // The newest read made so far.
    let newest = (0..=poll).rev().find(|k| c.tasks.contains_key(&read(*k).key));
    let Some(k) = newest else {
        return c.run(&[read(poll)], done);
    };
    let want = read(k);
    c.run(std::slice::from_ref(&want), || match quorum::drbd(c.out(&want)) {
        Err(e) => failed(e),
        Ok(s) => {
            let bad = s.unhealthy();
            if bad.is_empty() {
                return done();
            }
            let waiting = format!("resync not finished: {}", bad.join(", "));
            if k < poll {
                StepDecision {
                    actions: vec![Action::Task(read(poll))],
                    step: Step::Wait(waiting),
                    backup: None,
                    watching: Some(read(poll).key),
                }
            } else {
                StepDecision::of(Step::Wait(waiting))
            }
        }
    })
}
