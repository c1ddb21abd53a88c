//! The agent's loop, the only part that talks to the API server: a watch on this node's
//! `NodeTask`s (server-side field selector `spec.nodeName=<node>`) feeds a queue; each task is read
//! fresh, [`decide`]d (pure), claimed with a `resourceVersion`-guarded status replace, run through
//! the catalogue with the journal around it, and reported with a guarded status replace.
//!
//! One task runs at a time: a node's host steps never overlap. A step that ran out of time with its
//! outcome unknown is settled by the host's check before any other task of the node is looked at.
//! Errors of one task are logged and never stop the loop; only an unusable state directory does.

use nodewright_kit::backoff::Backoff;
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use nodewright_api::migration::Migration;
use nodewright_api::nodefacts::{FACTS_FIELD_MANAGER, NodeFacts, NodeFactsSpec};
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase, NodeTaskStatus, SITE_STORAGE_DELETES};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::Error;
use crate::catalogue::{self, Plan, Recheck, StepOutcome};
use crate::decide::{Decision, EarlierResult, Identity, LeaveReason, RunReason, decide};
use crate::facts::{self, PublishPolicy};
use crate::host::{EXIT_TIMED_OUT, HostOps};
use crate::journal::{Finished, Journal, JournalLimits, Record, Started, TimedOut};
use crate::metrics::{AgentMetrics, StepResult};
use crate::status::{self, Completion, reason};
use crate::{os, storage};
use nodewright_kit::admin::Health;

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The node this agent runs on (from the pod's `spec.nodeName`, via the downward API).
    pub node: String,
    /// The namespace of its `NodeTask`s.
    pub namespace: String,
    /// Its pod name (from `metadata.name`, via the downward API): `status.claimedBy`.
    pub pod_name: String,
    /// Where the journal lives: a hostPath directory, so it survives the pod and a reboot.
    pub state_dir: PathBuf,
    /// Bounds of the journal.
    pub journal: JournalLimits,
    /// How often every known task is looked at again without a watch event (a claim left to
    /// another agent may have gone stale meanwhile).
    pub resync: Duration,
    /// How long past its timeout another agent's claim is respected before it is taken over.
    pub takeover_grace: Duration,
    /// First delay between retries of an API call that failed for a transient reason.
    pub retry_initial: Duration,
    /// Longest delay between those retries (before jitter, which adds up to as much again).
    pub retry_max: Duration,
    /// The host's OS family: how its packages are queried and installed (`--host-os`).
    pub host_os: nodewright_api::OsFamily,
    /// The user name the API server knows the operator by (`--operator-identity`): a task whose
    /// `nodewright.io/created-by` names anyone else is refused ([`crate::decide::authorize`]).
    /// `None` checks no attribution (the chart always sets it).
    pub operator: Option<String>,
    /// How long the check that settles a timed-out step may run (see [`crate::journal`]).
    pub settle_timeout: Duration,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` ([`crate::metrics`]), if anywhere.
    pub admin_addr: Option<std::net::SocketAddr>,
    /// Whether and how often the host's facts are read and published as the node's
    /// `NodeFacts` ([`crate::facts`]); `None` publishes none.
    pub facts: Option<FactsOptions>,
}

/// How the agent reads and publishes its host's facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FactsOptions {
    /// How often the host is read.
    pub poll: Duration,
    /// The rate limit of publication: at most one per `min_interval`, at least one per `refresh`.
    pub policy: PublishPolicy,
}

impl Default for FactsOptions {
    /// A read every 10 s; a change is published at most every 5 s; an unchanged host every 60 s.
    fn default() -> Self {
        FactsOptions {
            poll: Duration::from_secs(10),
            policy: PublishPolicy {
                min_interval: Duration::from_secs(5),
                refresh: Duration::from_secs(60),
            },
        }
    }
}

impl AgentOptions {
    /// Defaults for the agent of `node`, pod `pod_name`, tasks in `namespace`, journal in `state_dir`.
    pub fn new(
        node: impl Into<String>,
        namespace: impl Into<String>,
        pod_name: impl Into<String>,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        AgentOptions {
            node: node.into(),
            namespace: namespace.into(),
            pod_name: pod_name.into(),
            state_dir: state_dir.into(),
            journal: JournalLimits::default(),
            resync: Duration::from_secs(30),
            takeover_grace: Duration::from_secs(60),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
            host_os: nodewright_api::OsFamily::Debian,
            operator: None,
            settle_timeout: Duration::from_secs(60),
            admin_addr: None,
            facts: None,
        }
    }
}

/// How long past a step's deadline the host is given to kill its command and hand the step back.
const HOST_KILL_GRACE: Duration = Duration::from_secs(2);

/// The start record of a timed-out key whose start was lost (a journal edited by hand): the
/// step cannot be known, so the settling fails it.
fn orphan_start(timed_out: &TimedOut) -> Started {
    Started {
        key: timed_out.key.clone(),
        task_uid: String::new(),
        task_name: String::new(),
        step: String::new(),
        args: Vec::new(),
        attempt: 0,
        at: timed_out.at.clone(),
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// Now, in Unix seconds.
fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn parse_time(s: &str) -> Option<Time> {
    s.parse::<Timestamp>().ok().map(Time)
}

/// Why an API write did not happen.
#[derive(Debug)]
enum WriteError {
    /// 409: the object changed since it was read.
    Conflict,
    /// 404: the task is gone.
    Gone,
    /// The agent is stopping; the write was abandoned (the journal has the result).
    Stopping,
    /// Refused for good (422 and the like): retrying the same write would not help.
    Refused(kube::Error),
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Errors worth retrying: the server or the connection failed (an API server restart), or asked
/// us to slow down. A 4xx other than 408/429 is an answer, not a failure.
fn transient(e: &kube::Error) -> bool {
    match api_code(e) {
        Some(code) => code == 408 || code == 429 || code >= 500,
        None => true,
    }
}

/// The result of one claim attempt.
#[derive(Debug)]
pub enum Claim {
    /// The status now says `Running`, claimed by this agent: run the step.
    Claimed(Box<NodeTask>),
    /// The task changed since it was read (409): someone else may hold it. Do not run; read it
    /// again and decide again.
    Lost,
}

/// One claim attempt: replaces `task`'s status with a claim by `pod` (`Running`, `claimedBy`,
/// one more attempt, `startedAt`), guarded by the `resourceVersion` `task` was read with — the
/// optimistic concurrency that makes two agents racing for a task run it once.
pub async fn claim(
    api: &Api<NodeTask>,
    task: &NodeTask,
    pod: &str,
    message: &str,
    now: &Time,
) -> Result<Claim, kube::Error> {
    let mut object = task.clone();
    object.status = Some(status::claimed(task.status.as_ref(), pod, message, now));
    match api
        .replace_status(&task.name_any(), &PostParams::default(), &object)
        .await
    {
        Ok(claimed) => Ok(Claim::Claimed(Box::new(claimed))),
        Err(e) if api_code(&e) == Some(409) => Ok(Claim::Lost),
        Err(e) => Err(e),
    }
}

struct Agent<H> {
    api: Api<NodeTask>,
    /// For the Migration behind a site-storage delete ([`crate::decide::authorize`]).
    migrations: Api<Migration>,
    /// Warning Events about refused tasks.
    recorder: Recorder,
    options: AgentOptions,
    me: Identity,
    journal: Journal,
    host: Arc<Mutex<H>>,
    stop: watch::Receiver<bool>,
    metrics: AgentMetrics,
    /// This node's `NodeFacts`.
    facts_api: Api<NodeFacts>,
    /// The facts last published, and when.
    published: Option<(NodeFactsSpec, Instant)>,
}

/// Runs the agent until `shutdown` completes. Returns an error only when the state directory
/// cannot be used; every error of a single task is logged and the loop goes on.
///
/// Shutdown is clean: a step in progress is finished and journalled, its status write is tried
/// until it succeeds or shutdown is requested, and an unreported result is reported from the
/// journal by the next start.
pub async fn run<H: HostOps>(
    client: Client,
    options: AgentOptions,
    host: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (stop_tx, stop) = watch::channel(false);
    let shutdown_task = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let result = run_until(client, options, host, stop).await;
    shutdown_task.abort();
    result
}

async fn run_until<H: HostOps>(
    client: Client,
    options: AgentOptions,
    host: H,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    // One agent per state directory: a second one (a DaemonSet rolling update overlapping the
    // old pod) waits for the lock instead of reading a journal the other is writing.
    let journal = loop {
        match Journal::open(&options.state_dir, options.journal) {
            Ok((journal, corrupt)) => {
                for c in &corrupt {
                    warn!(journal = %journal.path().display(), line = c.line, error = %c.error, "corrupt journal line skipped");
                }
                break journal;
            }
            Err(Error::StateDirInUse { path }) => {
                info!(state_dir = %path.display(), "state directory in use by another agent, waiting");
                tokio::select! {
                    _ = stop.changed() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(e) => return Err(e),
        }
    };
    for s in journal.state().interrupted() {
        info!(key = %s.key, task = %s.task_name, attempt = s.attempt, "journal shows an interrupted step; it resumes when its task is seen");
    }
    // A bond flip left unconfirmed by the agent before this one is undone first, before the API
    // is asked anything: the link to it may run over that bond.
    let mut host = host;
    for line in catalogue::flip::recover(&mut host, &options.state_dir) {
        warn!(state_dir = %options.state_dir.display(), "{line}");
    }
    let metrics = AgentMetrics::new().map_err(|e| Error::Metrics(e.to_string()))?;
    // Live while the loop turns (it beats on every resync), ready once the NodeTasks are listed.
    let health = Health::new(["nodetasks"], options.resync * 4);
    if let Some(addr) = options.admin_addr {
        let mut stopped = stop.clone();
        nodewright_kit::admin::start_admin(
            addr,
            Arc::new(metrics.registry().clone()),
            health.clone(),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        )
        .await
        .map_err(|source| Error::Admin { addr, source })?;
    }
    let api: Api<NodeTask> = Api::namespaced(client.clone(), &options.namespace);
    let selector = format!("spec.nodeName={}", options.node);
    let mut agent = Agent {
        api: api.clone(),
        migrations: Api::namespaced(client.clone(), &options.namespace),
        facts_api: Api::namespaced(client.clone(), &options.namespace),
        published: None,
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "nodewright-agent".to_owned(),
                instance: Some(options.pod_name.clone()),
            },
        ),
        me: Identity {
            node: options.node.clone(),
            pod: options.pod_name.clone(),
        },
        options,
        journal,
        host: Arc::new(Mutex::new(host)),
        stop: stop.clone(),
        metrics,
    };
    agent.observe_journal();
    info!(node = %agent.me.node, pod = %agent.me.pod, namespace = %agent.options.namespace, host_os = %agent.options.host_os, operator = ?agent.options.operator, "node agent started");
    if agent.options.operator.is_none() {
        warn!("no operator identity (--operator-identity): tasks are run whoever created them");
    }

    let mut events = watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut resync = tokio::time::interval(agent.options.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The host's facts: read at once, then every poll interval (a far-off tick when disabled,
    // and the branch is off anyway).
    let facts_enabled = agent.options.facts.is_some();
    let mut facts_tick = tokio::time::interval(agent.options.facts.map_or(Duration::from_secs(3600), |f| {
        f.poll.max(Duration::from_millis(100))
    }));
    facts_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set while a timed-out step could not be settled (its check gave no answer): nothing runs
    // until the next resync tries the check again.
    let mut blocked = false;
    let enqueue = |queue: &mut VecDeque<String>, name: String| {
        if !queue.contains(&name) {
            queue.push_back(name);
        }
    };
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(task) | watcher::Event::InitApply(task))) => {
                    if task.spec.node_name != agent.me.node {
                        warn!(task = %task.name_any(), node = %task.spec.node_name, "task for another node delivered by the watch; ignored");
                        continue;
                    }
                    let name = task.name_any();
                    let finished = task.status.as_ref().and_then(|s| s.phase).is_some_and(|p| {
                        matches!(p, NodeTaskPhase::Succeeded | NodeTaskPhase::Failed)
                    });
                    if finished {
                        // Nothing will ever be done with it: keep it out of the resyncs.
                        known.remove(&name);
                        continue;
                    }
                    known.insert(name.clone());
                    enqueue(&mut queue, name);
                }
                Some(Ok(watcher::Event::Delete(task))) => {
                    let name = task.name_any();
                    known.remove(&name);
                    queue.retain(|n| *n != name);
                }
                Some(Ok(watcher::Event::Init)) => known.clear(),
                Some(Ok(watcher::Event::InitDone)) => {
                    health.synced("nodetasks");
                    debug!(tasks = known.len(), "NodeTasks listed");
                }
                Some(Err(e)) => warn!(error = %e, "watching NodeTasks failed; retrying"),
                None => {
                    warn!("the NodeTask watch ended; restarting it");
                    events = watcher(agent.api.clone(), watcher::Config::default().fields(&selector))
                        .default_backoff()
                        .boxed();
                }
            },
            _ = facts_tick.tick(), if facts_enabled => agent.publish_facts().await,
            _ = resync.tick() => {
                health.beat();
                agent.observe_journal();
                blocked = false;
                for name in &known {
                    enqueue(&mut queue, name.clone());
                }
            }
            () = std::future::ready(()), if !blocked && (!queue.is_empty() || agent.unsettled()) => {
                if agent.unsettled() {
                    // Nothing else runs on this node until every timed-out step is settled.
                    match agent.settle().await {
                        Some(settled) => {
                            for name in settled {
                                known.insert(name.clone());
                                queue.retain(|n| *n != name);
                                queue.push_front(name);
                            }
                        }
                        None => blocked = true,
                    }
                } else if let Some(name) = queue.pop_front() {
                    agent.process(&name).await;
                }
                agent.observe_journal();
            }
        }
    }
    info!(node = %agent.me.node, "node agent stopped");
    Ok(())
}

impl<H: HostOps> Agent<H> {
    /// Sets the journal's metrics from the journal as it is now.
    fn observe_journal(&self) {
        let bytes = std::fs::metadata(self.journal.path()).map_or(0, |m| m.len());
        self.metrics.journal(self.journal.lines(), bytes);
    }

    /// Reads the host's facts and, when [`facts::should_publish`] says so, applies them to this
    /// node's `NodeFacts` (server-side apply under the agent's own field manager, never forced).
    /// The host is read under its mutex, so a read never overlaps a step. A failed apply is
    /// logged and tried again at the next read.
    async fn publish_facts(&mut self) {
        let Some(options) = self.options.facts else { return };
        let host = Arc::clone(&self.host);
        let node = self.me.node.clone();
        let family = self.options.host_os;
        let read = tokio::task::spawn_blocking(move || {
            let mut host = host.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            facts::read_host(
                &mut *host,
                &node,
                now(),
                os::for_family(family),
                storage::for_backend(storage::BackendKind::default()),
            )
        })
        .await;
        let fresh = match read {
            Ok(fresh) => fresh,
            Err(e) => {
                warn!(error = %e, "reading the host's facts did not complete");
                return;
            }
        };
        let last = self.published.as_ref().map(|(f, at)| (f, at.elapsed()));
        let Some(reason) = facts::should_publish(last, &fresh, options.policy) else {
            return;
        };
        let changed = last
            .map(|(f, _)| facts::changed_groups(f, &fresh))
            .unwrap_or_default();
        let object = serde_json::json!({
            "apiVersion": NodeFacts::api_version(&()),
            "kind": NodeFacts::kind(&()),
            "metadata": { "name": self.me.node },
            "spec": fresh,
        });
        match self
            .facts_api
            .patch(
                &self.me.node,
                &PatchParams::apply(FACTS_FIELD_MANAGER),
                &Patch::Apply(&object),
            )
            .await
        {
            Ok(_) => {
                info!(node = %self.me.node, reason = ?reason, changed = ?changed, unreadable = fresh.unreadable.len(), "host facts published");
                self.published = Some((fresh, Instant::now()));
            }
            Err(e) => {
                warn!(node = %self.me.node, error = %e, "publishing the host's facts failed; tried again at the next read")
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Retry delays for one call: exponential from `retry_initial` to `retry_max`, with jitter, so
    /// that the agents of many nodes that lost the API server together do not retry together.
    fn retries(&self) -> Backoff {
        Backoff::new(self.options.retry_initial, self.options.retry_max)
    }

    /// Sleeps for the next retry delay; false when the agent is stopping.
    async fn backoff(&self, delays: &mut Backoff) -> bool {
        let mut stop = self.stop.clone();
        let wait = delays.next_delay();
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            _ = stop.changed() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// The task as the API server has it now; `None` when it is gone or the agent is stopping.
    async fn fetch(&self, name: &str) -> Option<NodeTask> {
        let mut delays = self.retries();
        loop {
            match self.api.get_opt(name).await {
                Ok(task) => return task,
                Err(e) if transient(&e) => {
                    warn!(task = name, error = %e, "reading the task failed; retrying");
                    if !self.backoff(&mut delays).await {
                        return None;
                    }
                }
                Err(e) => {
                    warn!(task = name, error = %e, "reading the task failed");
                    return None;
                }
            }
        }
    }

    /// Replaces the task's status, guarded by the `resourceVersion` in `task` (optimistic
    /// concurrency): a 409 means someone else wrote first. Transient failures are retried.
    async fn write_status(&self, task: &NodeTask, status: NodeTaskStatus) -> Result<NodeTask, WriteError> {
        let name = task.name_any();
        let mut object = task.clone();
        object.status = Some(status);
        let mut delays = self.retries();
        loop {
            match self
                .api
                .replace_status(&name, &PostParams::default(), &object)
                .await
            {
                Ok(written) => return Ok(written),
                Err(e) if api_code(&e) == Some(409) => return Err(WriteError::Conflict),
                Err(e) if api_code(&e) == Some(404) => return Err(WriteError::Gone),
                Err(e) if transient(&e) => {
                    warn!(task = %name, error = %e, "writing the task status failed; retrying");
                    if !self.backoff(&mut delays).await {
                        return Err(WriteError::Stopping);
                    }
                }
                Err(e) => return Err(WriteError::Refused(e)),
            }
        }
    }

    /// Looks at one task and does what [`decide`] says. Never fails: problems are logged.
    async fn process(&mut self, name: &str) {
        // A conflict means the task changed between the read and the write: read it again and
        // decide again. A handful of rounds is plenty; the next event or resync comes back to it.
        for _ in 0..8 {
            if self.stopping() {
                return;
            }
            let Some(task) = self.fetch(name).await else {
                return;
            };
            let decision = decide(
                &task,
                &self.me,
                self.journal.state(),
                &now(),
                self.options.takeover_grace,
            );
            if matches!(decision, Decision::Run(_) | Decision::Report(_)) {
                match self.refusal(&task).await {
                    Ok(None) => {}
                    Ok(Some(message)) => match self.refuse(&task, message).await {
                        Err(WriteError::Conflict) => continue,
                        _ => return,
                    },
                    // The Migration could not be read now: the next event or resync decides again.
                    Err(()) => return,
                }
            }
            let result = match decision {
                Decision::IgnoreOtherNode { node } => {
                    warn!(task = name, node = %node, "task is for another node; ignored");
                    return;
                }
                Decision::LeaveAlone(LeaveReason::Finished) => return,
                Decision::LeaveAlone(LeaveReason::ClaimedByOther { pod }) => {
                    debug!(task = name, claimed_by = %pod, "task is claimed by another agent; left to it");
                    return;
                }
                Decision::LeaveAlone(LeaveReason::Unsettled) => {
                    debug!(
                        task = name,
                        "task timed out with its outcome unknown; left to the settling"
                    );
                    return;
                }
                Decision::RefuseReusedKey { message } => {
                    warn!(task = name, %message, "idempotency key reused; task failed without running");
                    self.fail_without_running(&task, reason::KEY_REUSED, message)
                        .await
                }
                Decision::Report(earlier) => self.report_from_journal(&task, *earlier).await,
                Decision::Run(why) => self.claim_and_run(&task, why).await,
            };
            match result {
                Ok(()) | Err(WriteError::Gone | WriteError::Stopping) => return,
                Err(WriteError::Conflict) => {
                    debug!(task = name, "the task changed meanwhile (409); reading it again");
                }
                Err(WriteError::Refused(e)) => {
                    warn!(task = name, error = %e, "the API server refused the status");
                    return;
                }
            }
        }
    }

    /// Why the agent may not act on `task` ([`crate::decide::authorize`]), reading the Migration
    /// behind a site-storage delete first; `Err` when that read failed for a transient reason and
    /// the task waits for the next event or resync.
    async fn refusal(&self, task: &NodeTask) -> Result<Option<String>, ()> {
        let steps = task.spec.step_name().ok();
        let migration = match crate::decide::migration_owner(task) {
            Some(owner) if steps.is_some_and(|s| SITE_STORAGE_DELETES.contains(&s)) => {
                match self.migrations.get_opt(&owner.name).await {
                    Ok(m) => m,
                    Err(e) if transient(&e) => {
                        warn!(task = %task.name_any(), migration = %owner.name, error = %e, "reading the task's Migration failed; the task waits");
                        return Err(());
                    }
                    // An answer (403: the chart's RBAC grants `get` on Migrations): without the
                    // Migration the delete cannot be shown to be asked for, so it is refused.
                    Err(e) => {
                        return Ok(Some(format!(
                            "refused: {} removes storage the whole site shares and runs only for a Migration that is rolling back, and this agent could not read Migration {}: {e}; nothing was run",
                            task.spec.step, owner.name
                        )));
                    }
                }
            }
            _ => None,
        };
        Ok(crate::decide::authorize(task, self.options.operator.as_deref(), migration.as_ref()).err())
    }

    /// Fails `task` without running anything, with `message`, and says so in a Warning Event.
    async fn refuse(&self, task: &NodeTask, message: String) -> Result<(), WriteError> {
        warn!(task = %task.name_any(), %message, "task refused");
        let written = self
            .fail_without_running(task, reason::REFUSED, message.clone())
            .await;
        if written.is_ok() {
            let event = Event {
                type_: EventType::Warning,
                reason: reason::REFUSED.to_owned(),
                note: Some(message.chars().take(1024).collect()),
                action: "RefuseTask".to_owned(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &task.object_ref(&())).await {
                warn!(task = %task.name_any(), error = %e, "publishing the refusal Event failed");
            }
        }
        written
    }

    async fn fail_without_running(
        &self,
        task: &NodeTask,
        why: &'static str,
        message: String,
    ) -> Result<(), WriteError> {
        let done = Completion {
            succeeded: false,
            exit_code: None,
            output: String::new(),
            message,
            reason: why,
            started_at: None,
            finished_at: now(),
        };
        let status = status::completed(task.status.as_ref(), &self.me.pod, &done);
        self.write_status(task, status).await.map(|_| ())
    }

    async fn report_from_journal(&self, task: &NodeTask, earlier: EarlierResult) -> Result<(), WriteError> {
        let EarlierResult {
            started,
            finished,
            same_task,
        } = earlier;
        let key = &task.spec.idempotency_key;
        let message = if same_task {
            format!(
                "reported from the journal after an agent restart (the step finished at {} and is not run again): {}",
                finished.at, finished.message
            )
        } else {
            let by = started.as_ref().map_or_else(
                || "an earlier task".to_owned(),
                |s| format!("task {} (uid {})", s.task_name, s.task_uid),
            );
            format!(
                "idempotency key {key} already ran on this node ({by}, finished at {}); its result is reported and the step is not run again: {}",
                finished.at, finished.message
            )
        };
        let done = Completion {
            succeeded: finished.code == 0,
            exit_code: Some(finished.code),
            output: finished.output_tail.clone(),
            message,
            reason: reason::FROM_JOURNAL,
            started_at: started.as_ref().and_then(|s| parse_time(&s.at)),
            finished_at: parse_time(&finished.at).unwrap_or_else(now),
        };
        let status = status::completed(task.status.as_ref(), &self.me.pod, &done);
        self.write_status(task, status).await?;
        info!(task = %task.name_any(), key = %key, code = finished.code, "reported from the journal without running");
        Ok(())
    }

    async fn claim_and_run(&mut self, task: &NodeTask, why: RunReason) -> Result<(), WriteError> {
        let name = task.name_any();
        let plan = match catalogue::plan_on(self.options.host_os, &task.spec.step, &task.spec.args) {
            Ok(plan) => plan,
            Err(e) => {
                warn!(task = %name, error = %e, "invalid step; task failed without running");
                return self
                    .fail_without_running(task, reason::INVALID_STEP, format!("{e}; nothing was run"))
                    .await;
            }
        };
        let prefix = match &why {
            RunReason::Fresh => String::new(),
            RunReason::ResumeInterrupted { attempt, at } => format!(
                "resumed after an interruption (attempt {attempt}, started {at}, never finished; the step is idempotent and checks first): "
            ),
            RunReason::RerunOwnClaim => {
                "run again: this agent had claimed the task but its journal has no record of it: ".to_owned()
            }
            RunReason::TakeOver { from } => {
                format!("taken over from {from}, whose claim outlived the task's timeout: ")
            }
        };
        let message = format!("{prefix}running {}", task.spec.step);
        let mut delays = self.retries();
        let claimed = loop {
            match claim(&self.api, task, &self.me.pod, &message, &now()).await {
                Ok(Claim::Claimed(claimed)) => break *claimed,
                Ok(Claim::Lost) => {
                    info!(task = %name, "claim lost: the task changed since it was read (409); not running it");
                    return Err(WriteError::Conflict);
                }
                Err(e) if api_code(&e) == Some(404) => return Err(WriteError::Gone),
                Err(e) if transient(&e) => {
                    warn!(task = %name, error = %e, "claiming the task failed; retrying");
                    if !self.backoff(&mut delays).await {
                        return Err(WriteError::Stopping);
                    }
                }
                Err(e) => return Err(WriteError::Refused(e)),
            }
        };
        let attempt = claimed.status.as_ref().map_or(1, |s| s.attempts);
        info!(task = %name, step = %task.spec.step, attempt, reason = ?why, "claimed");

        let started = Started {
            key: task.spec.idempotency_key.clone(),
            task_uid: task.metadata.uid.clone().unwrap_or_default(),
            task_name: name.clone(),
            step: task.spec.step.clone(),
            args: task.spec.args.clone(),
            attempt,
            at: now().0.to_string(),
        };
        if let Err(e) = self.journal.append(Record::Started(started)) {
            self.metrics
                .step(&task.spec.step, StepResult::JournalFailed, None);
            warn!(task = %name, error = %e, "cannot journal the step; not running it");
            let done = Completion {
                succeeded: false,
                exit_code: None,
                output: String::new(),
                message: format!("the agent could not write its journal, so it did not run the step: {e}"),
                reason: reason::JOURNAL_FAILED,
                started_at: None,
                finished_at: now(),
            };
            let pod = self.me.pod.clone();
            return self
                .report_until_written(claimed, |t| status::completed(t.status.as_ref(), &pod, &done))
                .await;
        }

        let began = Instant::now();
        let outcome = self.execute(&plan, task.spec.timeout_seconds).await;
        let result = if outcome.code == EXIT_TIMED_OUT {
            StepResult::TimedOut
        } else if outcome.unknown {
            StepResult::Unknown
        } else if outcome.succeeded() {
            StepResult::Succeeded
        } else {
            StepResult::Failed
        };
        self.metrics.step(&task.spec.step, result, Some(began.elapsed()));
        if outcome.unknown {
            return self.record_unknown(claimed, &prefix, outcome).await;
        }
        let message = format!("{prefix}{}", outcome.message);
        let finished = Finished {
            key: task.spec.idempotency_key.clone(),
            code: outcome.code,
            output_tail: status::tail_chars(&outcome.output, self.journal.limits().output_tail_chars)
                .to_owned(),
            message: message.clone(),
            at: now().0.to_string(),
        };
        if let Err(e) = self.journal.append(Record::Finished(finished.clone())) {
            // The result is still reported; a restart before the write would re-run the step,
            // which its check makes harmless.
            warn!(task = %name, error = %e, "cannot journal the result");
        }
        info!(task = %name, code = outcome.code, "step finished");
        let succeeded = outcome.succeeded();
        let done = Completion {
            succeeded,
            exit_code: Some(outcome.code),
            output: outcome.output,
            message,
            reason: if succeeded {
                reason::SUCCEEDED
            } else if outcome.code == EXIT_TIMED_OUT {
                reason::TIMED_OUT
            } else {
                reason::STEP_FAILED
            },
            started_at: None,
            finished_at: parse_time(&finished.at).unwrap_or_else(now),
        };
        let pod = self.me.pod.clone();
        let report =
            self.report_until_written(claimed, |t| status::completed(t.status.as_ref(), &pod, &done));
        match &plan.step {
            catalogue::Step::BondFlip(f) if succeeded => self.confirm_flip(&f.bond, report).await,
            _ => report.await,
        }
    }

    /// A bond flip whose probe passed is confirmed only once its result reached the API server:
    /// then its mode is persisted and its journal entry removed. A report that does not land by
    /// the flip's deadline (the node cannot reach the API over the new bond) reverts it on the
    /// node.
    async fn confirm_flip(
        &self,
        bond: &str,
        report: impl Future<Output = Result<(), WriteError>>,
    ) -> Result<(), WriteError> {
        let state_dir = self.options.state_dir.clone();
        let left = catalogue::flip::pending(&state_dir)
            .0
            .iter()
            .find(|p| p.bond == bond)
            .map_or(0, |p| p.deadline.saturating_sub(unix_seconds()));
        let reported = tokio::time::timeout(Duration::from_secs(left.max(1)), report).await;
        let confirmed = matches!(reported, Ok(Ok(())));
        let host = Arc::clone(&self.host);
        let bond_name = bond.to_owned();
        let dir = state_dir.clone();
        let settled = tokio::task::spawn_blocking(move || {
            let mut host = host.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if confirmed {
                catalogue::flip::confirm(&mut *host, &dir, &bond_name).map(|_| "confirmed and persisted")
            } else {
                catalogue::flip::revert_pending(&mut *host, &dir, &bond_name)
                    .map(|_| "not confirmed in time: reverted on the node")
            }
        })
        .await;
        match settled {
            Ok(Ok(what)) => info!(bond, "bond flip {what}"),
            Ok(Err(e)) => {
                warn!(bond, error = %e, "settling the bond flip failed; the journal entry stays and is reverted at the next start")
            }
            Err(e) => warn!(bond, error = %e, "settling the bond flip did not complete"),
        }
        match reported {
            Ok(r) => r,
            Err(_) => Err(WriteError::Stopping),
        }
    }

    /// A step that ran out of time after it may have changed the host: journalled as timed out
    /// (not finished), the task set `Unknown`. The settling (next turn of the loop, before any
    /// other task) checks the host and writes the result.
    async fn record_unknown(
        &mut self,
        claimed: NodeTask,
        prefix: &str,
        outcome: StepOutcome,
    ) -> Result<(), WriteError> {
        let name = claimed.name_any();
        let message = format!(
            "{prefix}{}; the step's outcome is unknown until its check runs on the host, before anything else runs on this node",
            outcome.message
        );
        let record = TimedOut {
            key: claimed.spec.idempotency_key.clone(),
            output_tail: status::tail_chars(&outcome.output, self.journal.limits().output_tail_chars)
                .to_owned(),
            message: message.clone(),
            at: now().0.to_string(),
        };
        if let Err(e) = self.journal.append(Record::TimedOut(record)) {
            // Without the record the key reads as interrupted: it is re-run, check first, which
            // is the older and still safe behaviour.
            warn!(task = %name, error = %e, "cannot journal the time-out");
        }
        warn!(task = %name, step = %claimed.spec.step, "step timed out with its outcome unknown");
        let pod = self.me.pod.clone();
        let at = now();
        self.report_until_written(claimed, |t| {
            status::unknown(t.status.as_ref(), &pod, &outcome.output, &message, &at)
        })
        .await
    }

    /// Whether a timed-out step waits for its check.
    fn unsettled(&self) -> bool {
        !self.journal.state().unsettled().is_empty()
    }

    /// Settles every step that timed out with its outcome unknown, oldest first: its check runs
    /// on the host; done is journalled as a success, not done as a failure. Returns the tasks
    /// settled (to report now), or `None` when a check gave no answer: that step stays unknown,
    /// and nothing else runs until it is settled.
    async fn settle(&mut self) -> Option<Vec<String>> {
        let open: Vec<(Started, TimedOut)> = self
            .journal
            .state()
            .unsettled()
            .into_iter()
            .map(|(s, t)| (s.cloned().unwrap_or_else(|| orphan_start(t)), t.clone()))
            .collect();
        let mut settled = Vec::new();
        for (started, timed_out) in open {
            let verdict = match catalogue::plan_on(self.options.host_os, &started.step, &started.args) {
                Ok(plan) => self.recheck(&plan).await,
                Err(e) => Recheck::NotDone(format!("{e}; it cannot be checked")),
            };
            let (code, what, why) = match verdict {
                Recheck::Done(what) => (
                    0,
                    format!("found done on the host by its check: {what}"),
                    reason::FOUND_DONE,
                ),
                Recheck::NotDone(why) => (
                    EXIT_TIMED_OUT,
                    format!("not done on the host: {why}; failed"),
                    reason::FOUND_NOT_DONE,
                ),
                Recheck::NoAnswer(why) => {
                    warn!(key = %started.key, task = %started.task_name, %why, "the check of a timed-out step gave no answer; nothing runs on this node until it does");
                    return None;
                }
            };
            let finished = Finished {
                key: started.key.clone(),
                code,
                output_tail: timed_out.output_tail.clone(),
                message: format!("{} — then {what}", timed_out.message),
                at: now().0.to_string(),
            };
            if let Err(e) = self.journal.append(Record::Finished(finished.clone())) {
                warn!(key = %started.key, error = %e, "cannot journal the settling of a timed-out step");
                return None;
            }
            info!(key = %started.key, task = %started.task_name, code, "timed-out step settled by its check");
            self.report_settled(&started, &finished, why).await;
            if !started.task_name.is_empty() {
                settled.push(started.task_name);
            }
        }
        Some(settled)
    }

    /// Reports a settled step in its task's status, when the task is still the one that timed
    /// out and not finished. Any failure here is left to the journal: the next look at the task
    /// reports the result from it.
    async fn report_settled(&self, started: &Started, finished: &Finished, why: &'static str) {
        if started.task_name.is_empty() {
            return;
        }
        let Some(task) = self.fetch(&started.task_name).await else {
            return;
        };
        let open = task
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .is_none_or(|p| !matches!(p, NodeTaskPhase::Succeeded | NodeTaskPhase::Failed));
        if task.metadata.uid.as_deref() != Some(started.task_uid.as_str()) || !open {
            return;
        }
        let done = Completion {
            succeeded: finished.code == 0,
            exit_code: Some(finished.code),
            output: finished.output_tail.clone(),
            message: finished.message.clone(),
            reason: why,
            started_at: None,
            finished_at: parse_time(&finished.at).unwrap_or_else(now),
        };
        let pod = self.me.pod.clone();
        if let Err(e) = self
            .report_until_written(task, |t| status::completed(t.status.as_ref(), &pod, &done))
            .await
        {
            debug!(task = %started.task_name, error = ?e, "settled result not written; the journal reports it later");
        }
    }

    /// Runs a plan's check alone on the host, bounded by `settle_timeout`.
    async fn recheck(&self, plan: &Plan) -> Recheck {
        let timeout = self.options.settle_timeout;
        let deadline = Instant::now() + timeout;
        let host = Arc::clone(&self.host);
        let job = plan.clone();
        let state_dir = self.options.state_dir.clone();
        let blocking = tokio::task::spawn_blocking(move || {
            let mut host = host.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            job.recheck_in(&mut *host, Some(deadline), Some(&state_dir))
        });
        match tokio::time::timeout(timeout, blocking).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(e)) => Recheck::NoAnswer(format!("the check did not complete: {e}")),
            Err(_) => Recheck::NoAnswer(format!(
                "the host was still busy after {}s (a killed step's command has not ended)",
                timeout.as_secs()
            )),
        }
    }

    /// Writes the final status of a task this agent claimed. On a conflict it reads the task
    /// again and writes again as long as the claim is still this agent's; a task someone else
    /// changed meanwhile keeps their change (the journal keeps the result).
    async fn report_until_written(
        &self,
        mut claimed: NodeTask,
        build: impl Fn(&NodeTask) -> NodeTaskStatus,
    ) -> Result<(), WriteError> {
        for _ in 0..8 {
            match self.write_status(&claimed, build(&claimed)).await {
                Ok(_) => return Ok(()),
                Err(WriteError::Conflict) => {
                    let name = claimed.name_any();
                    let Some(fresh) = self.fetch(&name).await else {
                        return Err(WriteError::Gone);
                    };
                    let still_ours = fresh.status.as_ref().is_some_and(|s| {
                        s.phase == Some(NodeTaskPhase::Running)
                            && s.claimed_by.as_deref() == Some(self.me.pod.as_str())
                    });
                    if !still_ours {
                        warn!(task = %name, "the task was changed by someone else while the step ran; result kept in the journal only");
                        return Ok(());
                    }
                    claimed = fresh;
                }
                Err(e) => return Err(e),
            }
        }
        // Still conflicting after several fresh reads: leave it to the next event or resync,
        // which reports the result from the journal.
        Err(WriteError::Conflict)
    }

    /// Runs a plan on the host. The host is behind a mutex and called from `spawn_blocking`:
    /// host commands are blocking processes that must not stall the runtime (the watch and the
    /// status writes go on), and the mutex serialises them. The host is given the step's
    /// deadline and kills a command (with its process group) that reaches it; a host that still
    /// holds on past it keeps the mutex, so the settling and the next step wait instead of
    /// overlapping it.
    async fn execute(&self, plan: &Plan, timeout_seconds: i32) -> StepOutcome {
        let timeout = Duration::from_secs(u64::try_from(timeout_seconds.max(1)).unwrap_or(1));
        let deadline = Instant::now() + timeout;
        let host = Arc::clone(&self.host);
        let job = plan.clone();
        let state_dir = self.options.state_dir.clone();
        let blocking = tokio::task::spawn_blocking(move || {
            let mut host = host.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            job.execute_in(&mut *host, Some(deadline), Some(&state_dir))
        });
        // The host kills at the deadline; a little longer here lets its answer (and the output
        // so far) come back before the step is given up on without it.
        match tokio::time::timeout(timeout + HOST_KILL_GRACE, blocking).await {
            Ok(Ok(outcome)) if outcome.unknown && outcome.code == EXIT_TIMED_OUT => StepOutcome {
                message: format!(
                    "timed out after {timeout_seconds}s; its command was killed with every process it started"
                ),
                ..outcome
            },
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => StepOutcome {
                code: 1,
                output: String::new(),
                message: format!("the step did not complete: {e}"),
                // A panic mid-step leaves the host as unknown as a time-out does.
                unknown: true,
            },
            // The host did not hand the step back by its deadline (a host that does not kill at
            // the deadline): whatever it does later is not counted, and the settling waits for
            // the host before it checks.
            Err(_) => StepOutcome {
                code: EXIT_TIMED_OUT,
                output: String::new(),
                message: format!("timed out after {timeout_seconds}s"),
                unknown: true,
            },
        }
    }
}
