//! The operator's reaction time: how long from a changed legacy fact to the operator's first write
//! about it, at a site of N nodes on a real API server. A measurement, not a test: it prints
//! Markdown and asserts nothing. Run it with `scripts/bench-operator` or
//! `cargo bench -p nodewright-parity --bench reaction -- [--nodes 500,5000] [--changes 200]`;
//! `--help` lists the options.
//!
//! Per node count it starts its own control plane, writes a legacy site whose taints workflow was
//! already handed to the operator (see [`legacy_site`]), runs the operator in this process
//! (`nodewright_parity::run::run`, no leader election) until it is steady, then flips one random
//! node's storage state at a time and times the operator's taint patch. The figures and how they
//! were taken are in docs/performance.md, "Operator reaction time".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use nodewright_api::WorkflowMode;
use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec, SiteProfile, Topology};
use nodewright_bridge::index::{Index, LegacyNames};
use nodewright_bridge::source::{self, Change};
use nodewright_parity::controllers::{self, Settings, Snapshot};
use nodewright_parity::gather::Gathered;
use nodewright_parity::run::{self, Memory, OperatorOptions};
use nodewright_parity::taints::{READY_LABEL, STORAGE_TAINT};
use nodewright_parity::takeover::{self, Takeover, Workflow};
use nodewright_testenv::measure::{Table, clock_ticks_per_second, cpu_ticks, machine};
use nodewright_testenv::{ControlPlane, Options};
use tokio::sync::{mpsc, oneshot};

const NAMESPACE: &str = "nodewright-system";
const LEGACY_NAMESPACE: &str = "vx-rail-legacy";
const CLUSTER: &str = "site";
const SCRIPT_VERSION: &str = "4.12.3";
/// The takeover generation the site is at: 1 put taints in shadow, 2 in operator.
const GENERATION: u64 = 2;
/// A change whose write has not shown up by then counts as missed.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "\
usage: cargo bench -p nodewright-parity --bench reaction -- [options]
  --nodes LIST         node counts, comma-separated (default 500,5000)
  --changes N          legacy changes timed per node count (default 200)
  --interval-ms MS     the operator's turn interval without changes (default 1000)
  --gap-ms A,B         pause after each change's write was seen, uniform in [A, B) ms (default 300,800)
  --background R       script loops per second across the site while the changes run, each a
                       heartbeat patch of a node's ConfigMap and a last-run patch of its Node
                       (default 0: a quiet site; 5,000 scripts looping every 30 s make 167)
  --concurrency C      object creations in flight while writing the legacy site (default 32)";

#[derive(Clone, Debug)]
struct Args {
    nodes: Vec<usize>,
    changes: usize,
    interval: Duration,
    gap_ms: (u64, u64),
    background: f64,
    concurrency: usize,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = String>) -> anyhow::Result<Args> {
        let mut args = Args {
            nodes: vec![500, 5000],
            changes: 200,
            interval: Duration::from_secs(1),
            gap_ms: (300, 800),
            background: 0.0,
            concurrency: 32,
        };
        let list = |s: String| -> anyhow::Result<Vec<u64>> {
            s.split(',')
                .map(|n| {
                    n.trim()
                        .parse::<u64>()
                        .context("expected comma-separated numbers")
                })
                .collect()
        };
        while let Some(arg) = argv.next() {
            let mut value = || {
                argv.next()
                    .with_context(|| format!("{arg} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                // cargo bench passes --bench to every bench binary.
                "--bench" => {}
                "--nodes" => {
                    args.nodes = list(value()?)
                        .context("--nodes")?
                        .into_iter()
                        .map(usize::try_from)
                        .collect::<Result<_, _>>()?;
                }
                "--changes" => args.changes = value()?.parse().context("--changes")?,
                "--interval-ms" => {
                    args.interval = Duration::from_millis(value()?.parse().context("--interval-ms")?);
                }
                "--gap-ms" => match list(value()?).context("--gap-ms")?.as_slice() {
                    [a, b] if a < b => args.gap_ms = (*a, *b),
                    _ => bail!("--gap-ms: expected A,B with A < B"),
                },
                "--background" => args.background = value()?.parse().context("--background")?,
                "--concurrency" => args.concurrency = value()?.parse().context("--concurrency")?,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        if args.concurrency == 0 || args.changes == 0 || args.nodes.contains(&0) {
            bail!("--nodes, --changes and --concurrency must be positive");
        }
        if !(args.background.is_finite() && args.background >= 0.0) {
            bail!("--background must be a rate of zero or more");
        }
        Ok(args)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse(std::env::args().skip(1))?;
    let machine_before = machine();
    let mut results = Vec::new();
    for &n in &args.nodes {
        eprintln!("== N = {n}");
        match run_one(&args, n).await {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("N = {n} failed: {e:#}");
                results.push(RunResult {
                    nodes: n,
                    failed: Some(format!("{e:#}")),
                    ..RunResult::default()
                });
            }
        }
    }
    println!("{}", report(&args, &machine_before, &machine(), &results));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One node count.

#[derive(Clone, Debug, Default)]
struct RunResult {
    nodes: usize,
    failed: Option<String>,
    create_s: f64,
    steady_s: f64,
    /// Node events in the settle window before the changes (the operator's writes, if any).
    settle_node_events: usize,
    settle_s: f64,
    /// Latencies of taint changes (a node put out of service) and untaint changes.
    taint: Vec<Duration>,
    untaint: Vec<Duration>,
    missed: usize,
    changes_s: f64,
    /// Background script loops made during the changes, and their failed writes.
    background_loops: u64,
    background_errors: u64,
    /// CPU of this process (the operator, the driver and its Node watch) during the changes.
    cpu_s: f64,
    cp_cpu_s: f64,
    rss_kib: u64,
    hwm_kib: u64,
    /// One `plan_turn` of the site as it stands after the changes, timed in this process.
    plan: Vec<Duration>,
    plan_writes: usize,
}

async fn run_one(args: &Args, n: usize) -> anyhow::Result<RunResult> {
    let mut r = RunResult {
        nodes: n,
        ..RunResult::default()
    };
    let cp = tokio::task::spawn_blocking(|| ControlPlane::start(Options::default())).await??;
    let client = cp.client().await?;
    nodewright_testenv::install_crds(&client, &nodewright_api::crds()).await?;
    for ns in [NAMESPACE, LEGACY_NAMESPACE] {
        nodewright_testenv::create_namespace(&client, ns, &[]).await?;
    }

    let names: Vec<String> = (0..n).map(|i| format!("edge-{i:05}")).collect();
    let started = Instant::now();
    legacy_site(&client, &names, args.concurrency).await?;
    r.create_s = started.elapsed().as_secs_f64();
    eprintln!("   legacy site written in {:.1} s", r.create_s);

    // The driver's own view of the Nodes: when the operator's taint patch shows up.
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let watch = AbortOnDrop(tokio::spawn(watch_nodes(client.clone(), seen_tx)));
    loop {
        match seen.recv().await {
            Some(Seen::Listed) => break,
            Some(_) => {}
            None => bail!("the Node watch ended"),
        }
    }

    let started = Instant::now();
    let (stop, operator) = start_operator(&client, args.interval);
    let operator = AbortOnDrop(operator);
    wait_steady(&client, n).await?;
    r.steady_s = started.elapsed().as_secs_f64();
    eprintln!("   operator steady in {:.1} s", r.steady_s);
    // Quiet: nothing in the site calls for a write, so the operator makes none.
    drain(&mut seen);
    let settle = Duration::from_secs(3);
    tokio::time::sleep(settle).await;
    r.settle_s = settle.as_secs_f64();
    r.settle_node_events = drain(&mut seen);

    // The changes.
    let ticks = clock_ticks_per_second();
    let cp_pid = cp.pid().context("the control plane is not running")?;
    let (cpu_before, cp_before) = (cpu_ticks("self")?, cpu_ticks(&cp_pid.to_string())?);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), LEGACY_NAMESPACE);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let (background_stop, background_done) = oneshot::channel();
    let background = (args.background > 0.0).then(|| {
        tokio::spawn(script_loops(
            client.clone(),
            names.clone(),
            args.background,
            background_done,
        ))
    });
    let mut degraded = vec![false; n];
    let mut last = 0;
    let started = Instant::now();
    for k in 0..args.changes {
        // A random node's storage degrades; the next change brings it back. Taints and untaints
        // alternate, and the site stays healthy but for one node.
        let i = if k % 2 == 0 {
            rng.below(n as u64) as usize
        } else {
            last
        };
        last = i;
        degraded[i] = !degraded[i];
        let name = &names[i];
        let body = serde_json::json!({"data": {
            "heartbeat": rfc3339(now())?,
            "status": status_blob(now(), i == 0, degraded[i]),
        }});
        cms.patch(
            &format!("vx-rail-node-{name}"),
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await?;
        let acknowledged = Instant::now();
        match wait_for(&mut seen, name, degraded[i]).await {
            Some(at) => {
                let latency = at.saturating_duration_since(acknowledged);
                if degraded[i] {
                    r.taint.push(latency);
                } else {
                    r.untaint.push(latency);
                }
            }
            None => {
                r.missed += 1;
                eprintln!("   change {k} on {name}: no taint change within {CHANGE_TIMEOUT:?}");
            }
        }
        let gap = args.gap_ms.0 + rng.below(args.gap_ms.1 - args.gap_ms.0);
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    r.changes_s = started.elapsed().as_secs_f64();
    let _ = background_stop.send(());
    if let Some(task) = background {
        (r.background_loops, r.background_errors) = task.await?;
    }
    r.cpu_s = (cpu_ticks("self")? - cpu_before) as f64 / ticks;
    r.cp_cpu_s = (cpu_ticks(&cp_pid.to_string())? - cp_before) as f64 / ticks;
    (r.rss_kib, r.hwm_kib) = memory()?;
    eprintln!(
        "   {} changes in {:.1} s, {} missed",
        args.changes, r.changes_s, r.missed
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), operator.wait()).await;
    (r.plan, r.plan_writes) = time_plan(&client, 20).await?;
    drop(watch);
    drop(client);
    tokio::task::spawn_blocking(move || drop(cp)).await?;
    Ok(r)
}

fn start_operator(
    client: &kube::Client,
    interval: Duration,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let mut options = OperatorOptions::new(NAMESPACE, CLUSTER, "bench-operator");
    options.legacy = legacy_names();
    options.interval = interval;
    // The heartbeats are written once per change: a long run must not turn the scripts stale.
    options.stale_after = 86_400;
    let client = client.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = run::run(client, options, None, shutdown).await {
            eprintln!("   the operator stopped: {e}");
        }
    });
    (tx, task)
}

fn legacy_names() -> LegacyNames {
    LegacyNames {
        namespace: LEGACY_NAMESPACE.to_owned(),
        ..LegacyNames::default()
    }
}

/// Steady: the operator wrote its status, saying taints is in operator mode and acknowledged by
/// every script (so it acts), and no Node carries the storage taint.
async fn wait_steady(client: &kube::Client, n: usize) -> anyhow::Result<()> {
    let clusters: Api<EdgeCluster> = Api::namespaced(client.clone(), NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(60 + n as u64 / 50);
    loop {
        let acting = clusters
            .get(CLUSTER)
            .await?
            .status
            .and_then(|s| s.takeover)
            .is_some_and(|t| {
                t.workflows.iter().any(|w| {
                    w.workflow == Workflow::Taints.key()
                        && w.effective == WorkflowMode::Operator
                        && w.acknowledged
                })
            });
        if acting {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the operator did not report taints as acknowledged operator mode in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The legacy site.

fn now() -> i64 {
    nodewright_kit::clock::unix_now()
}

fn rfc3339(unix: i64) -> anyhow::Result<String> {
    Ok(k8s_openapi::jiff::Timestamp::from_second(unix)?.to_string())
}

/// A node's status blob as the script writes it: healthy, or resyncing (one DRBD resource of one
/// not UpToDate), which calls for the storage-not-ready taint with the reason `resync`.
fn status_blob(at: i64, primary: bool, resyncing: bool) -> String {
    let role = if primary { "primary" } else { "member" };
    let (uptodate, syncing, taint) = if resyncing {
        (0, 1, "resync")
    } else {
        (1, 0, "none")
    };
    format!(
        "at={at};state=ready;role={role};net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;\
         slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;\
         drbd=ok;resources=1;uptodate={uptodate};syncing={syncing};taint={taint};boot=COMPLETED;upgrade=;\
         drbd_version=9.2.5"
    )
}

/// A site whose taints workflow was handed to the operator: what the legacy scripts and the
/// operator leave behind once taints went legacy → shadow (generation 1) → operator (generation
/// 2) and every script read generation 2. Written directly rather than walked through, since
/// each step is exercised by `parity/tests/operator.rs` and walking it at 5,000 nodes only adds
/// N acknowledgement writes before the measurement:
///
/// - the takeover ConfigMap as the operator projects it (taints `operator`, generation 2);
/// - the cluster-state ConfigMap with every member;
/// - per node a ConfigMap with a healthy status and `takeover-generation: 2`, and a Node with the
///   script's annotations and the storage-ready label the script set in its last legacy loop;
/// - the EdgeCluster asking for taints in `operator` mode.
async fn legacy_site(client: &kube::Client, names: &[String], concurrency: usize) -> anyhow::Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), LEGACY_NAMESPACE);
    let nodes: Api<Node> = Api::all(client.clone());
    let config_map = |name: String, data: BTreeMap<String, String>| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    };

    let mut projected = Takeover {
        generation: GENERATION,
        ..Takeover::default()
    };
    projected.modes.insert(Workflow::Taints, WorkflowMode::Operator);
    cms.create(
        &PostParams::default(),
        &config_map(takeover::CONFIGMAP.to_owned(), projected.to_data()),
    )
    .await?;

    let primary = names.first().map_or("edge-00000", String::as_str);
    let members: Vec<String> = std::iter::once("node,storage_ip,role,joined".to_owned())
        .chain(names.iter().enumerate().map(|(i, n)| {
            let role = if i == 0 { "primary" } else { "member" };
            format!("{n},10.100.{}.{}/16,{role},1714557600", i / 250, i % 250 + 1)
        }))
        .collect();
    let cluster = BTreeMap::from([
        (
            "cluster".to_owned(),
            format!(
                "primary={primary};topology=multi;replicas=2;storage_pool=pool0;created=1714557600;schema=4"
            ),
        ),
        ("members".to_owned(), members.join("\n")),
    ]);
    cms.create(
        &PostParams::default(),
        &config_map(legacy_names().cluster_state, cluster),
    )
    .await?;

    let at = now();
    let heartbeat = rfc3339(at)?;
    stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let (cms, nodes, heartbeat) = (cms.clone(), nodes.clone(), heartbeat.clone());
            let cm = config_map(
                format!("vx-rail-node-{name}"),
                BTreeMap::from([
                    ("script-version".to_owned(), SCRIPT_VERSION.to_owned()),
                    ("heartbeat".to_owned(), heartbeat.clone()),
                    ("status".to_owned(), status_blob(at, i == 0, false)),
                    (takeover::ACK_KEY.to_owned(), GENERATION.to_string()),
                ]),
            );
            let node = Node {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(BTreeMap::from([(READY_LABEL.to_owned(), "true".to_owned())])),
                    annotations: Some(BTreeMap::from([
                        ("vx-rail.io/state".to_owned(), "ready".to_owned()),
                        (
                            "vx-rail.io/last-run".to_owned(),
                            format!(
                                "ts={heartbeat};version={SCRIPT_VERSION};outcome=ok;step=finished;rc=0;duration=5"
                            ),
                        ),
                    ])),
                    ..ObjectMeta::default()
                },
                ..Node::default()
            };
            async move {
                cms.create(&PostParams::default(), &cm).await?;
                nodes.create(&PostParams::default(), &node).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;

    let mut spec = EdgeClusterSpec {
        profile: SiteProfile {
            topology: Topology::MultiNode,
            storage_backend: Default::default(),
            operating_system: None,
        },
        expected_nodes: None,
        primary_node: None,
        workflows: Default::default(),
        legacy: Default::default(),
    };
    spec.workflows.taints = WorkflowMode::Operator;
    Api::<EdgeCluster>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &EdgeCluster::new(CLUSTER, spec))
        .await?;
    Ok(())
}

/// The scripts' own writes, which a site makes all the time and which do not call for an
/// operator write: `rate` loops a second, round-robin over the nodes, each a heartbeat patch of the
/// node's ConfigMap and a `vx-rail.io/last-run` patch of its Node, until `stop`. Returns the
/// loops made and the writes that failed.
async fn script_loops(
    client: kube::Client,
    names: Vec<String>,
    rate: f64,
    mut stop: oneshot::Receiver<()>,
) -> (u64, u64) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), LEGACY_NAMESPACE);
    let nodes: Api<Node> = Api::all(client);
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let (mut loops, mut errors) = (0, 0);
    for name in names.iter().cycle() {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        // Reaped as they finish: a finished task is kept, with its future, until joined.
        while let Some(result) = tasks.try_join_next() {
            errors += result.unwrap_or(2);
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (cms, nodes, name) = (cms.clone(), nodes.clone(), name.clone());
        tasks.spawn(async move {
            let stamp = rfc3339(now()).unwrap_or_default();
            let cm = serde_json::json!({"data": {"heartbeat": stamp}});
            let node = serde_json::json!({"metadata": {"annotations": {"vx-rail.io/last-run": format!(
                "ts={stamp};version={SCRIPT_VERSION};outcome=ok;step=finished;rc=0;duration=5"
            )}}});
            let params = PatchParams::default();
            let a = cms
                .patch(&format!("vx-rail-node-{name}"), &params, &Patch::Merge(&cm))
                .await;
            let b = nodes.patch(&name, &params, &Patch::Merge(&node)).await;
            drop(slot);
            u64::from(a.is_err()) + u64::from(b.is_err())
        });
        loops += 1;
    }
    while let Some(result) = tasks.join_next().await {
        errors += result.unwrap_or(2);
    }
    (loops, errors)
}

// ---------------------------------------------------------------------------------------------
// Watching the Nodes.

enum Seen {
    /// The first list is in.
    Listed,
    /// A Node changed after the list: whether it carries the storage taint, and when it was seen.
    Node(String, bool, Instant),
}

async fn watch_nodes(client: kube::Client, tx: mpsc::UnboundedSender<Seen>) {
    let api: Api<Node> = Api::all(client);
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    while let Some(event) = events.next().await {
        let seen = match event {
            Ok(watcher::Event::Apply(node)) => {
                let tainted = node
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|ts| ts.iter().any(|t| t.key == STORAGE_TAINT));
                Seen::Node(node.metadata.name.unwrap_or_default(), tainted, Instant::now())
            }
            Ok(watcher::Event::InitDone) => Seen::Listed,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("   Node watch: {e}");
                continue;
            }
        };
        if tx.send(seen).is_err() {
            break;
        }
    }
}

/// When the Node watch first sees `node` with the storage taint on (`tainted`) or off.
async fn wait_for(seen: &mut mpsc::UnboundedReceiver<Seen>, node: &str, tainted: bool) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, seen.recv()).await {
            Ok(Some(Seen::Node(name, t, at))) if name == node && t == tainted => return Some(at),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Node changes received and not yet read.
fn drain(seen: &mut mpsc::UnboundedReceiver<Seen>) -> usize {
    std::iter::from_fn(|| seen.try_recv().ok())
        .filter(|s| matches!(s, Seen::Node(..)))
        .count()
}

// ---------------------------------------------------------------------------------------------
// One turn's planning, timed.

/// Builds the operator's view of the site from a list of it, as its watches would, and times
/// `plan_turn` on it `rounds` times (the first with a fresh memory, the rest carrying it on as the
/// loop does). Also returns how many writes the plan asks for.
async fn time_plan(client: &kube::Client, rounds: usize) -> anyhow::Result<(Vec<Duration>, usize)> {
    let names = legacy_names();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), LEGACY_NAMESPACE)
        .list(&ListParams::default())
        .await?
        .items;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let cluster = Api::<EdgeCluster>::namespaced(client.clone(), NAMESPACE)
        .get(CLUSTER)
        .await?;
    let mut index = Index::new(names.clone());
    let mut gathered = Gathered::default();
    for change in [Change::ConfigMapsReset(cms), Change::NodesReset(nodes)] {
        gathered.observe(&change, &names);
        source::apply(&mut index, change, now());
    }
    let settings = Settings {
        stale_after: 86_400,
        migration_timeout: nodewright_parity::migration::DEFAULT_TIMEOUT,
        upgrade_state_timeout: 1800,
        upgrade_rollback_timeout: 1800,
    };
    let controllers = controllers::all();
    let mut memory = Memory::new(now());
    let mut times = Vec::with_capacity(rounds);
    let mut writes = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let snapshot = Snapshot {
            now: now(),
            cluster: &cluster,
            index: &index,
            nodes: &gathered.nodes,
            cluster_state_version: gathered.cluster_state_version.as_deref(),
            migrations: &[],
            tasks: &[],
            upgrades: &[],
            pods: &[],
            gate: None,
            facts: &[],
            edge_nodes: &[],
            bond_flips: &[],
            settings: &settings,
        };
        // The bench's site has no legacy pods: the fence reads every script acknowledgement, and
        // proves nothing by an absent pod that the acknowledgements do not already show.
        let fence = run::Fence {
            scripts: nodewright_parity::observed::script_facts(
                &index,
                &gathered.ready,
                Some(&BTreeMap::new()),
            ),
            now: now(),
            grace: nodewright_parity::takeover::DEFAULT_NOT_READY_GRACE,
        };
        let plan = run::plan_turn(&mut memory, &snapshot, &fence, &controllers);
        times.push(started.elapsed());
        writes = plan.owned.iter().map(|(_, s)| s.len()).sum();
    }
    Ok((times, writes))
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    async fn wait(&self) {
        while !self.0.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fixed-seed generator, so that every run flips the same nodes.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

/// VmRSS and VmHWM of this process, in KiB.
fn memory() -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} missing from /proc/self/status"))?;
        Ok(line[name.len()..].trim().trim_end_matches("kB").trim().parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Nearest-rank percentile of sorted samples.
fn rank(sorted: &[Duration], p: f64) -> Option<Duration> {
    let i = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(i.max(1) - 1).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("—".into(), |d| format!("{:.0}", d.as_secs_f64() * 1e3))
}

/// count, p50 / p90 / p99 / max in ms.
fn summary(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    format!(
        "{}: {} / {} / {} / {}",
        sorted.len(),
        ms(rank(&sorted, 0.50)),
        ms(rank(&sorted, 0.90)),
        ms(rank(&sorted, 0.99)),
        ms(sorted.last().copied())
    )
}

fn report(args: &Args, before: &str, after: &str, results: &[RunResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Operator reaction time: results\n");
    let _ = writeln!(out, "Machine at start: {before}  ");
    let _ = writeln!(out, "Machine at end: {after}  ");
    let _ = writeln!(
        out,
        "{} changes per node count, one at a time, {}–{} ms apart after each was seen; operator \
         interval {} ms, debounce {} ms\n",
        args.changes,
        args.gap_ms.0,
        args.gap_ms.1,
        args.interval.as_millis(),
        OperatorOptions::new("", "", "").debounce.as_millis()
    );
    let mut table = Table::new(results, |r| format!("N = {}", r.nodes), |r| r.failed.is_some());
    table.row("legacy objects created (2N + 3), s", |r| {
        format!("{:.1}", r.create_s)
    });
    table.row("operator start → acting, s", |r| format!("{:.1}", r.steady_s));
    table.row(
        "background script loops during the changes, /s (failed writes)",
        |r| {
            format!(
                "{:.1} ({})",
                r.background_loops as f64 / r.changes_s.max(1e-9),
                r.background_errors
            )
        },
    );
    table.row("Node changes in the settle window", |r| {
        format!("{} in {:.0} s", r.settle_node_events, r.settle_s)
    });
    table.row("change → write, all: count: p50 / p90 / p99 / max, ms", |r| {
        summary(&[r.taint.as_slice(), r.untaint.as_slice()].concat())
    });
    table.row(
        "… taint (node degraded): count: p50 / p90 / p99 / max, ms",
        |r| summary(&r.taint),
    );
    table.row(
        "… untaint (node healthy again): count: p50 / p90 / p99 / max, ms",
        |r| summary(&r.untaint),
    );
    table.row("changes missed (no write within 30 s)", |r| r.missed.to_string());
    table.row("this process's CPU during the changes, s (% of one core)", |r| {
        format!(
            "{:.1} ({:.0} %)",
            r.cpu_s,
            100.0 * r.cpu_s / r.changes_s.max(1e-9)
        )
    });
    table.row("control plane CPU during the changes, s (% of one core)", |r| {
        format!(
            "{:.1} ({:.0} %)",
            r.cp_cpu_s,
            100.0 * r.cp_cpu_s / r.changes_s.max(1e-9)
        )
    });
    table.row("this process's RSS after the changes / peak, MiB", |r| {
        format!(
            "{:.1} / {:.1}",
            r.rss_kib as f64 / 1024.0,
            r.hwm_kib as f64 / 1024.0
        )
    });
    table.row(
        "`plan_turn` of the site: first / median / max of the rest, ms",
        |r| {
            let mut rest = r.plan.get(1..).unwrap_or_default().to_vec();
            rest.sort_unstable();
            let f = |d: Option<Duration>| d.map_or("—".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3));
            format!(
                "{} / {} / {} (writes planned: {})",
                f(r.plan.first().copied()),
                f(rank(&rest, 0.5)),
                f(rest.last().copied()),
                r.plan_writes
            )
        },
    );
    out.push_str(&table.finish());
    for r in results {
        if let Some(e) = &r.failed {
            let _ = writeln!(out, "\nN = {}: failed: {e}", r.nodes);
        }
    }
    let _ = writeln!(
        out,
        "\nCPU and RSS are of the whole bench process: the operator, the driver and the driver's own \
         Node watch (read from /proc/self). Latency runs from the API server's answer to the \
         ConfigMap patch to the driver's Node watch delivering the operator's patch."
    );
    out
}
