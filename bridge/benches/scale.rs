//! The bridge at scale: legacy state for N simulated nodes on a real API server, the bridge as a
//! separate process, and what it costs (RSS, CPU, API requests) and how fast a legacy change shows
//! up in EdgeNode status under a steady load of legacy updates. A measurement, not a test: it prints
//! Markdown and asserts nothing. Run it through `scripts/bench-bridge`; `--help` lists the options.
//!
//! Per node count it starts its own control plane and one bridge process, and touches nothing else.
//! The figures and how they were taken are in docs/performance.md, "Bridge at scale".

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use nodewright_api::common::condition_type as ct;
use nodewright_api::edgenode::EdgeNode;
use nodewright_testenv::measure::{Table, clock_ticks_per_second, cpu_ticks, machine};
use nodewright_testenv::{ControlPlane, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAMESPACE: &str = "nodewright-system";
const LEGACY_NAMESPACE: &str = "vx-rail-legacy";
const SCRIPT_VERSION: &str = "4.12.3";
/// Markers of the load start here, far above the initial `resources=1`.
const MARKER_BASE: u64 = 1_000;
/// Legacy updates in flight at once during the load; if this is ever the limit, the achieved rate
/// falls below the offered one and the report says so.
const LOAD_IN_FLIGHT: usize = 64;

const USAGE: &str = "\
usage: cargo bench -p nodewright-bridge --bench scale -- --bridge PATH [options]
  --bridge PATH        the release `nodewright` binary to run as the bridge (required)
  --nodes LIST         node counts, comma-separated (default 500,2000,5000)
  --rate R             legacy updates per second during the load (default 200)
  --seconds S          length of the load (default 60)
  --idle S             quiet window after the load drained, for the no-write check (default 15)
  --concurrency C      object creations in flight while writing the legacy site (default 32)
  --max-writes R       the bridge's --max-writes-per-second (default: the bridge's own default)
  --log-dir DIR        where the bridge's logs go (default: a temporary directory, kept)";

#[derive(Clone, Debug)]
struct Args {
    bridge: PathBuf,
    nodes: Vec<usize>,
    rate: f64,
    seconds: u64,
    idle: u64,
    concurrency: usize,
    max_writes: Option<f64>,
    log_dir: Option<PathBuf>,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = String>) -> anyhow::Result<Args> {
        let mut args = Args {
            bridge: PathBuf::new(),
            nodes: vec![500, 2000, 5000],
            rate: 200.0,
            seconds: 60,
            idle: 15,
            concurrency: 32,
            max_writes: None,
            log_dir: None,
        };
        while let Some(arg) = argv.next() {
            let mut value = || {
                argv.next()
                    .with_context(|| format!("{arg} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                // cargo bench passes --bench to every bench binary.
                "--bench" => {}
                "--bridge" => args.bridge = PathBuf::from(value()?),
                "--nodes" => {
                    args.nodes = value()?
                        .split(',')
                        .map(|n| n.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .context("--nodes: expected comma-separated counts")?;
                }
                "--rate" => args.rate = value()?.parse().context("--rate")?,
                "--seconds" => args.seconds = value()?.parse().context("--seconds")?,
                "--idle" => args.idle = value()?.parse().context("--idle")?,
                "--concurrency" => args.concurrency = value()?.parse().context("--concurrency")?,
                "--max-writes" => args.max_writes = Some(value()?.parse().context("--max-writes")?),
                "--log-dir" => args.log_dir = Some(PathBuf::from(value()?)),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        if args.bridge.as_os_str().is_empty() {
            bail!("--bridge is required\n{USAGE}");
        }
        if !(args.rate.is_finite() && args.rate > 0.0) || args.concurrency == 0 {
            bail!("--rate and --concurrency must be positive");
        }
        Ok(args)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse(std::env::args().skip(1))?;
    if !args.bridge.is_file() {
        bail!(
            "{}: no such file (build it with `cargo build --release -p nodewright`)",
            args.bridge.display()
        );
    }
    let log_dir = match &args.log_dir {
        Some(dir) => dir.clone(),
        None => tempfile::Builder::new().prefix("bench-bridge-").tempdir()?.keep(),
    };
    std::fs::create_dir_all(&log_dir)?;
    let machine_before = machine();
    let mut results = Vec::new();
    for &n in &args.nodes {
        eprintln!("== N = {n}");
        match run_one(&args, n, &log_dir).await {
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
    println!(
        "{}",
        report(&args, &machine_before, &machine(), &results, &log_dir)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One node count.

#[derive(Clone, Debug, Default)]
struct RunResult {
    nodes: usize,
    failed: Option<String>,
    create_s: f64,
    sync_s: f64,
    sync_writes: f64,
    sync_cpu_s: f64,
    rss_base_kib: u64,
    rss_sync_kib: u64,
    rss_load_kib: u64,
    rss_idle_kib: u64,
    hwm_kib: u64,
    load_s: f64,
    offered: u64,
    sent: u64,
    patch_errors: u64,
    load_cpu_s: f64,
    cp_load_cpu_s: f64,
    latency: Option<Latency>,
    exact: usize,
    superseded: usize,
    never_seen: usize,
    drain_s: f64,
    drained: bool,
    load_writes: BTreeMap<String, f64>,
    load_watch_events: f64,
    /// API writes, their total time, reconciles and their total time during the load.
    load_write_count: f64,
    load_write_s: f64,
    load_reconciles: f64,
    load_reconcile_s: f64,
    load_resets: f64,
    apiserver_load: Vec<(String, f64)>,
    apiserver_load_total: f64,
    idle_s: f64,
    idle_writes_applied: f64,
    idle_writes_unchanged: f64,
    idle_rv_changes: usize,
    idle_edge_node_events: u64,
    apiserver_idle: Vec<(String, f64)>,
    bridge_warnings: usize,
    bridge_log: PathBuf,
}

#[derive(Clone, Debug)]
struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
    count: usize,
}

async fn run_one(args: &Args, n: usize, log_dir: &Path) -> anyhow::Result<RunResult> {
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
    let ticks = clock_ticks_per_second();

    // The fixed base: the same bridge on a site with no legacy state.
    {
        let log = log_dir.join(format!("bridge-{n}-base.log"));
        let bridge = BridgeProcess::start(args, cp.kubeconfig(), &log)?;
        bridge.wait_ready().await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        r.rss_base_kib = bridge.memory()?.0;
        bridge.stop()?;
    }

    // The legacy site, as the script leaves it after a good iteration on every node.
    let names: Vec<String> = (0..n).map(|i| format!("edge-{i:05}")).collect();
    let at = nodewright_kit::clock::unix_now();
    let started = Instant::now();
    legacy_site(&client, &names, at, args.concurrency).await?;
    r.create_s = started.elapsed().as_secs_f64();
    eprintln!("   legacy site written in {:.1} s", r.create_s);

    let tracker = Arc::new(Mutex::new(Tracker::default()));
    // Aborted however this function returns: a watch outliving its control plane would retry forever.
    let watch = AbortOnDrop(tokio::spawn(watch_edge_nodes(client.clone(), tracker.clone())));

    let log = log_dir.join(format!("bridge-{n}.log"));
    r.bridge_log = log.clone();
    let started = Instant::now();
    let bridge = BridgeProcess::start(args, cp.kubeconfig(), &log)?;
    bridge.wait_ready().await?;
    let sync_timeout = Duration::from_secs(120 + (n as u64) / 10);
    loop {
        if lock(&tracker).synced >= n {
            break;
        }
        if started.elapsed() > sync_timeout {
            bail!(
                "initial sync: {} of {n} EdgeNodes with status after {sync_timeout:?}",
                lock(&tracker).synced
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.sync_s = started.elapsed().as_secs_f64();
    r.sync_cpu_s = bridge.cpu_ticks()? as f64 / ticks;
    r.sync_writes = metric_sum(
        &bridge.metrics().await?,
        "nodewright_bridge_status_writes_total",
        &[("result", "applied")],
    );
    r.rss_sync_kib = bridge.memory()?.0;
    eprintln!("   initial sync in {:.1} s", r.sync_s);
    // Let the EdgeCluster and the last writes of the sync land before the load starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The load.
    let bridge_before = bridge.metrics().await?;
    let api_before = apiserver_metrics(&client).await?;
    let cpu_before = bridge.cpu_ticks()?;
    let cp_pid = cp.pid().context("the control plane is not running")?;
    let cp_cpu_before = cpu_ticks(&cp_pid.to_string())?;
    let load = run_load(&client, &names, &tracker, args.rate, args.seconds, at).await?;
    r.load_s = load.elapsed.as_secs_f64();
    r.offered = load.offered;
    r.sent = load.sent;
    r.patch_errors = load.errors;
    r.load_cpu_s = (bridge.cpu_ticks()? - cpu_before) as f64 / ticks;
    r.cp_load_cpu_s = (cpu_ticks(&cp_pid.to_string())? - cp_cpu_before) as f64 / ticks;
    let bridge_after = bridge.metrics().await?;
    let api_after = apiserver_metrics(&client).await?;
    r.rss_load_kib = bridge.memory()?.0;
    for result in ["applied", "unchanged", "failed"] {
        let f = [("result", result)];
        let d = metric_sum(&bridge_after, "nodewright_bridge_status_writes_total", &f)
            - metric_sum(&bridge_before, "nodewright_bridge_status_writes_total", &f);
        r.load_writes.insert(result.to_owned(), d);
    }
    r.load_watch_events = metric_sum(&bridge_after, "nodewright_bridge_watch_events_total", &[])
        - metric_sum(&bridge_before, "nodewright_bridge_watch_events_total", &[]);
    let delta = |name: &str| metric_sum(&bridge_after, name, &[]) - metric_sum(&bridge_before, name, &[]);
    r.load_write_count = delta("nodewright_bridge_status_write_duration_seconds_count");
    r.load_write_s = delta("nodewright_bridge_status_write_duration_seconds_sum");
    r.load_reconciles = delta("nodewright_bridge_reconcile_duration_seconds_count");
    r.load_reconcile_s = delta("nodewright_bridge_reconcile_duration_seconds_sum");
    let resets = [("event", "reset")];
    r.load_resets = metric_sum(&bridge_after, "nodewright_bridge_watch_events_total", &resets)
        - metric_sum(&bridge_before, "nodewright_bridge_watch_events_total", &resets);
    r.apiserver_load = request_deltas(&api_before, &api_after);
    r.apiserver_load_total = r.apiserver_load.iter().map(|(_, v)| v).sum();
    eprintln!("   load: {} updates in {:.1} s", r.sent, r.load_s);

    // Drain: every update sent is reflected (by itself or a later one) or the wait gives up.
    let started = Instant::now();
    let drain_timeout = Duration::from_secs(60 + (n as u64) / 25);
    loop {
        if lock(&tracker).pending() == 0 {
            r.drained = true;
            break;
        }
        if started.elapsed() > drain_timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.drain_s = started.elapsed().as_secs_f64();
    {
        let t = lock(&tracker);
        r.exact = t.exact;
        r.superseded = t.superseded;
        r.never_seen = t.pending();
        r.latency = percentiles(&t.latencies);
    }
    eprintln!("   drained in {:.1} s", r.drain_s);

    // No writes without a change: a quiet window longer than the bridge's resync (10 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let edge_nodes: Api<EdgeNode> = Api::namespaced(client.clone(), NAMESPACE);
    let rv_before = resource_versions(&edge_nodes).await?;
    let bridge_before = bridge.metrics().await?;
    let api_before = apiserver_metrics(&client).await?;
    let events_before = lock(&tracker).events;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle)).await;
    r.idle_s = started.elapsed().as_secs_f64();
    let rv_after = resource_versions(&edge_nodes).await?;
    let bridge_after = bridge.metrics().await?;
    let api_after = apiserver_metrics(&client).await?;
    r.idle_edge_node_events = lock(&tracker).events - events_before;
    r.idle_rv_changes = rv_before
        .iter()
        .filter(|(name, rv)| rv_after.get(*name) != Some(*rv))
        .count()
        + rv_after.keys().filter(|k| !rv_before.contains_key(*k)).count();
    for (result, slot) in [
        ("applied", &mut r.idle_writes_applied),
        ("unchanged", &mut r.idle_writes_unchanged),
    ] {
        let f = [("result", result)];
        *slot = metric_sum(&bridge_after, "nodewright_bridge_status_writes_total", &f)
            - metric_sum(&bridge_before, "nodewright_bridge_status_writes_total", &f);
    }
    r.apiserver_idle = request_deltas(&api_before, &api_after);
    let (rss, hwm) = bridge.memory()?;
    r.rss_idle_kib = rss;
    r.hwm_kib = hwm;

    bridge.stop()?;
    r.bridge_warnings = std::fs::read_to_string(&log)
        .map(|text| text.lines().filter(|l| l.contains("WARN")).count())
        .unwrap_or(0);
    drop(watch);
    drop(client);
    tokio::task::spawn_blocking(move || drop(cp)).await?;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// The legacy site and the load.

/// The node status blob the script writes after a good iteration, with `k` DRBD resources, all
/// UpToDate: the bridge's StorageDegraded message becomes "k of k DRBD resources UpToDate".
fn status_blob(at: i64, primary: bool, k: u64) -> String {
    let role = if primary { "primary" } else { "member" };
    format!(
        "at={at};state=ready;role={role};net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;\
         slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;\
         drbd=ok;resources={k};uptodate={k};syncing=0;taint=none;boot=COMPLETED;upgrade=;drbd_version=9.2.5"
    )
}

fn rfc3339(unix: i64) -> anyhow::Result<String> {
    Ok(k8s_openapi::jiff::Timestamp::from_second(unix)?.to_string())
}

/// Writes what the script leaves after a good iteration on every node: the cluster-state ConfigMap
/// with all members, and per node its ConfigMap and its Node with the two annotations.
async fn legacy_site(
    client: &kube::Client,
    names: &[String],
    at: i64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), LEGACY_NAMESPACE);
    let nodes: Api<Node> = Api::all(client.clone());
    let primary = names.first().map_or("edge-00000", String::as_str);
    let members: Vec<String> = std::iter::once("node,storage_ip,role,joined".to_owned())
        .chain(names.iter().enumerate().map(|(i, n)| {
            let role = if i == 0 { "primary" } else { "member" };
            format!("{n},10.100.{}.{}/16,{role},1714557600", i / 250, i % 250 + 1)
        }))
        .collect();
    let cluster = ConfigMap {
        metadata: ObjectMeta {
            name: Some("vx-rail-cluster-state".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (
                "cluster".to_owned(),
                format!(
                    "primary={primary};topology=multi;replicas=2;storage_pool=pool0;created=1714557600;schema=4"
                ),
            ),
            ("members".to_owned(), members.join("\n")),
        ])),
        ..ConfigMap::default()
    };
    cms.create(&PostParams::default(), &cluster).await?;
    let heartbeat = rfc3339(at)?;
    stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let (cms, nodes, heartbeat) = (cms.clone(), nodes.clone(), heartbeat.clone());
            async move {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("vx-rail-node-{name}")),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([
                        ("script-version".to_owned(), SCRIPT_VERSION.to_owned()),
                        ("heartbeat".to_owned(), heartbeat.clone()),
                        ("status".to_owned(), status_blob(at, i == 0, 1)),
                    ])),
                    ..ConfigMap::default()
                };
                cms.create(&PostParams::default(), &cm).await?;
                let node = Node {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
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
                nodes.create(&PostParams::default(), &node).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await
}

struct LoadStats {
    elapsed: Duration,
    offered: u64,
    sent: u64,
    errors: u64,
}

/// `rate` legacy updates a second for `seconds`, round-robin over the nodes: each a merge patch of
/// one node ConfigMap's `status` with the next marker.
async fn run_load(
    client: &kube::Client,
    names: &[String],
    tracker: &Arc<Mutex<Tracker>>,
    rate: f64,
    seconds: u64,
    at: i64,
) -> anyhow::Result<LoadStats> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), LEGACY_NAMESPACE);
    let offered = (rate * seconds as f64).round() as u64;
    let slots = Arc::new(tokio::sync::Semaphore::new(LOAD_IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // A late tick is made up for at once, so that the average rate is the one asked for.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut sent = 0u64;
    for (i, name) in names.iter().enumerate().cycle().take(offered as usize) {
        tick.tick().await;
        if Instant::now() > deadline {
            break;
        }
        let slot = slots.clone().acquire_owned().await?;
        let k = MARKER_BASE + sent;
        let body = serde_json::json!({"data": {"status": status_blob(at, i == 0, k)}});
        lock(tracker).sent(name, k, Instant::now());
        let (cms, cm) = (cms.clone(), format!("vx-rail-node-{name}"));
        tasks.spawn(async move {
            let result = cms
                .patch(&cm, &PatchParams::default(), &Patch::Merge(&body))
                .await;
            drop(slot);
            result.map(|_| ())
        });
        sent += 1;
    }
    let elapsed = started.elapsed();
    let mut errors = 0;
    while let Some(result) = tasks.join_next().await {
        if !matches!(result, Ok(Ok(()))) {
            errors += 1;
        }
    }
    Ok(LoadStats {
        elapsed,
        offered,
        sent,
        errors,
    })
}

// ---------------------------------------------------------------------------------------------
// Following EdgeNodes: when each marker shows up.

#[derive(Default)]
struct Track {
    has_status: bool,
    seen: u64,
    pending: VecDeque<(u64, Instant)>,
}

/// Per node, the markers sent and not yet reflected; overall, the latencies of those reflected.
#[derive(Default)]
struct Tracker {
    nodes: HashMap<String, Track>,
    /// EdgeNodes with a StorageDegraded condition (the bridge has written their status).
    synced: usize,
    /// EdgeNode watch events (added or modified) received.
    events: u64,
    latencies: Vec<Duration>,
    /// Updates whose own marker appeared.
    exact: usize,
    /// Updates first reflected by a later marker (the bridge coalesced them).
    superseded: usize,
}

impl Tracker {
    fn sent(&mut self, node: &str, k: u64, at: Instant) {
        self.nodes
            .entry(node.to_owned())
            .or_default()
            .pending
            .push_back((k, at));
    }

    fn observed(&mut self, node: &str, marker: Option<u64>, now: Instant) {
        self.events += 1;
        let track = self.nodes.entry(node.to_owned()).or_default();
        if marker.is_some() && !track.has_status {
            track.has_status = true;
            self.synced += 1;
        }
        let Some(m) = marker else { return };
        if m <= track.seen {
            return;
        }
        track.seen = m;
        // An update counts as reflected when its marker or a later one (the same node's later
        // update, which replaced it) is in the status: that is the state the status now shows.
        while let Some(&(k, sent)) = track.pending.front() {
            if k > m {
                break;
            }
            track.pending.pop_front();
            self.latencies.push(now.saturating_duration_since(sent));
            if k == m {
                self.exact += 1;
            } else {
                self.superseded += 1;
            }
        }
    }

    fn pending(&self) -> usize {
        self.nodes.values().map(|t| t.pending.len()).sum()
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock(tracker: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    tracker.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The marker in an EdgeNode: `K` of the StorageDegraded message "K of K DRBD resources UpToDate".
fn marker(node: &EdgeNode) -> Option<u64> {
    let status = node.status.as_ref()?;
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == ct::STORAGE_DEGRADED)?;
    c.message.split(' ').next()?.parse().ok()
}

async fn watch_edge_nodes(client: kube::Client, tracker: Arc<Mutex<Tracker>>) {
    let api: Api<EdgeNode> = Api::namespaced(client, NAMESPACE);
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(node) | watcher::Event::InitApply(node)) => {
                let now = Instant::now();
                let name = node.metadata.name.clone().unwrap_or_default();
                lock(&tracker).observed(&name, marker(&node), now);
            }
            Ok(_) => {}
            Err(e) => eprintln!("   EdgeNode watch: {e}"),
        }
    }
}

async fn resource_versions(api: &Api<EdgeNode>) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(api
        .list_metadata(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|o| {
            (
                o.metadata.name.unwrap_or_default(),
                o.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect())
}

fn percentiles(samples: &[Duration]) -> Option<Latency> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    // Nearest rank.
    let rank = |p: f64| {
        let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[i - 1]
    };
    Some(Latency {
        p50: rank(0.50),
        p99: rank(0.99),
        max: *sorted.last()?,
        count: sorted.len(),
    })
}

// ---------------------------------------------------------------------------------------------
// The bridge process and what the kernel and the metrics say about it.

struct BridgeProcess {
    child: Child,
    admin_port: u16,
}

impl BridgeProcess {
    fn start(args: &Args, kubeconfig: &Path, log: &Path) -> anyhow::Result<BridgeProcess> {
        let binary = &args.bridge;
        let admin_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(binary);
        command.arg("bridge");
        if let Some(rate) = args.max_writes {
            command.arg(format!("--max-writes-per-second={rate}"));
        }
        let child = command
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", NAMESPACE, "--legacy-namespace", LEGACY_NAMESPACE])
            // The heartbeats are written once, at the start: a run longer than the default 300 s
            // would otherwise turn every node LegacyStale, a legitimate change mid-measurement.
            .args(["--stale-after", "86400", "--no-logs", "--no-leader-election"])
            .arg("--admin-addr")
            .arg(format!("127.0.0.1:{admin_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(BridgeProcess { child, admin_port })
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.metrics().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the bridge's admin server did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// VmRSS and VmHWM in KiB.
    fn memory(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} missing from /proc/<pid>/status"))?;
            Ok(line[name.len()..].trim().trim_end_matches("kB").trim().parse()?)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    fn cpu_ticks(&self) -> anyhow::Result<u64> {
        Ok(cpu_ticks(&self.child.id().to_string())?)
    }

    /// The bridge's /metrics, over HTTP/1.0 so that the body is not chunked.
    async fn metrics(&self) -> anyhow::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.admin_port)).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        if !text.starts_with("HTTP/1.0 200") && !text.starts_with("HTTP/1.1 200") {
            bail!("/metrics: {}", text.lines().next().unwrap_or(""));
        }
        Ok(text)
    }

    /// SIGINT, as Ctrl-C: the bridge stops its loop and exits; SIGKILL after 10 s.
    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The sum of a metric's samples whose labels include every one of `filter` (`+ 0.0`: an empty
/// sum of floats is -0, which would print as "-0").
fn metric_sum(text: &str, name: &str, filter: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|line| sample(line, name))
        .filter(|(labels, _)| {
            filter
                .iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum::<f64>()
        + 0.0
}

/// One sample line of `name`: its labels and value.
fn sample(line: &str, name: &str) -> Option<(HashMap<String, String>, f64)> {
    let rest = line.strip_prefix(name)?;
    let (labels, value) = match rest.strip_prefix('{') {
        Some(rest) => rest.split_once('}')?,
        None if rest.starts_with(' ') => ("", rest),
        None => return None,
    };
    let labels = labels
        .split("\",")
        .filter_map(|pair| {
            let (k, v) = pair.split_once("=\"")?;
            Some((k.trim().to_owned(), v.trim_end_matches('"').to_owned()))
        })
        .collect();
    Some((labels, value.split_whitespace().next()?.parse().ok()?))
}

async fn apiserver_metrics(client: &kube::Client) -> anyhow::Result<String> {
    Ok(client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?)
}

/// `apiserver_request_total` between two scrapes, by verb, resource and subresource, largest first.
fn request_deltas(before: &str, after: &str) -> Vec<(String, f64)> {
    let by_key = |text: &str| {
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for (labels, v) in text.lines().filter_map(|l| sample(l, "apiserver_request_total")) {
            let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let mut key = format!("{} {}", get("verb"), get("resource"));
            if !get("subresource").is_empty() {
                key = format!("{key}/{}", get("subresource"));
            }
            *sums.entry(key).or_default() += v;
        }
        sums
    };
    let (b, a) = (by_key(before), by_key(after));
    let mut deltas: Vec<(String, f64)> = a
        .into_iter()
        .map(|(k, v)| {
            let d = v - b.get(&k).copied().unwrap_or(0.0);
            (k, d)
        })
        .filter(|(_, d)| *d > 0.0)
        .collect();
    deltas.sort_by(|x, y| y.1.total_cmp(&x.1));
    deltas
}

// ---------------------------------------------------------------------------------------------
// The report.

/// Server-side applies: only the bridge applies (the driver's legacy updates are merge patches).
fn applies(deltas: &[(String, f64)]) -> f64 {
    deltas
        .iter()
        .filter(|(k, _)| k.starts_with("APPLY "))
        .map(|(_, v)| v)
        .sum::<f64>()
        + 0.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report(args: &Args, before: &str, after: &str, results: &[RunResult], log_dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Bridge at scale: results\n");
    let _ = writeln!(out, "Machine at start: {before}  ");
    let _ = writeln!(out, "Machine at end: {after}  ");
    let _ = writeln!(
        out,
        "Load: {} legacy updates/s for {} s, round-robin; quiet window {} s; bridge write limit {}; \
         bridge logs in {}\n",
        args.rate,
        args.seconds,
        args.idle,
        args.max_writes
            .map_or("its default".to_owned(), |r| format!("{r}/s")),
        log_dir.display()
    );
    let mut table = Table::new(results, |r| format!("N = {}", r.nodes), |r| r.failed.is_some());
    let lat = |r: &RunResult, f: fn(&Latency) -> Duration| {
        r.latency
            .as_ref()
            .map_or("—".into(), |l| format!("{:.0}", f(l).as_secs_f64() * 1e3))
    };
    table.row("legacy objects created (2N+1), s", |r| {
        format!("{:.1}", r.create_s)
    });
    table.row(
        "initial sync (bridge start → N EdgeNodes with status), s",
        |r| format!("{:.1}", r.sync_s),
    );
    table.row("API writes in the initial sync", |r| {
        format!("{:.0}", r.sync_writes)
    });
    table.row("bridge CPU in the initial sync, s", |r| {
        format!("{:.1}", r.sync_cpu_s)
    });
    table.row("RSS base (no legacy state), MiB", |r| {
        format!("{:.1}", mib(r.rss_base_kib))
    });
    table.row("RSS after sync, MiB", |r| format!("{:.1}", mib(r.rss_sync_kib)));
    table.row("RSS after load, MiB", |r| format!("{:.1}", mib(r.rss_load_kib)));
    table.row("RSS after quiet window, MiB", |r| {
        format!("{:.1}", mib(r.rss_idle_kib))
    });
    table.row("peak RSS (VmHWM), MiB", |r| format!("{:.1}", mib(r.hwm_kib)));
    let per_k = |kib: u64, base: u64, n: usize| {
        if n == 0 {
            "—".to_owned()
        } else {
            format!("{:.1}", (mib(kib) - mib(base)) * 1000.0 / n as f64)
        }
    };
    table.row("RSS above base per 1,000 nodes, after sync, MiB", |r| {
        per_k(r.rss_sync_kib, r.rss_base_kib, r.nodes)
    });
    table.row("RSS above base per 1,000 nodes, after load, MiB", |r| {
        per_k(r.rss_load_kib, r.rss_base_kib, r.nodes)
    });
    table.row("peak RSS above base per 1,000 nodes, MiB", |r| {
        per_k(r.hwm_kib, r.rss_base_kib, r.nodes)
    });
    table.row("updates sent / offered (patch errors)", |r| {
        format!("{} / {} ({})", r.sent, r.offered, r.patch_errors)
    });
    table.row("achieved update rate, /s", |r| {
        format!("{:.1}", r.sent as f64 / r.load_s)
    });
    table.row("bridge CPU during load, s (% of one core)", |r| {
        format!("{:.1} ({:.0} %)", r.load_cpu_s, 100.0 * r.load_cpu_s / r.load_s)
    });
    table.row("control plane CPU during load, s (% of one core)", |r| {
        format!(
            "{:.1} ({:.0} %)",
            r.cp_load_cpu_s,
            100.0 * r.cp_load_cpu_s / r.load_s
        )
    });
    table.row("event → status latency p50, ms", |r| lat(r, |l| l.p50));
    table.row("event → status latency p99, ms", |r| lat(r, |l| l.p99));
    table.row("event → status latency max, ms", |r| lat(r, |l| l.max));
    table.row(
        "updates reflected: own marker / by a later one (coalesced)",
        |r| format!("{} / {}", r.exact, r.superseded),
    );
    table.row("updates never reflected", |r| format!("{}", r.never_seen));
    table.row("drain after load, s", |r| {
        format!("{:.1}{}", r.drain_s, if r.drained { "" } else { " (gave up)" })
    });
    let per_s = |v: f64, r: &RunResult| format!("{:.1}", v / r.load_s);
    // The API server counts each write when it is made; the bridge counts a reconcile's writes
    // when the whole reconcile is done, which can straddle the window's end.
    table.row(
        "bridge API writes/s during load: API server's APPLY count (bridge's counter)",
        |r| {
            format!(
                "{} ({})",
                per_s(applies(&r.apiserver_load), r),
                per_s(r.load_writes.get("applied").copied().unwrap_or(0.0), r)
            )
        },
    );
    table.row(
        "mean time of one bridge API write during load, ms (writes × mean, s)",
        |r| {
            let mean = r.load_write_s / r.load_write_count.max(1.0);
            format!("{:.1} ({:.1} s)", mean * 1e3, r.load_write_s)
        },
    );
    table.row("reconciles during load (mean compute time, ms)", |r| {
        let mean = r.load_reconcile_s / r.load_reconciles.max(1.0);
        format!("{:.0} ({:.1})", r.load_reconciles, mean * 1e3)
    });
    table.row("bridge objects unchanged/s, failed writes during load", |r| {
        format!(
            "{} / {:.0}",
            per_s(r.load_writes.get("unchanged").copied().unwrap_or(0.0), r),
            r.load_writes.get("failed").copied().unwrap_or(0.0)
        )
    });
    table.row("bridge watch events/s during load (resets)", |r| {
        format!("{} ({:.0})", per_s(r.load_watch_events, r), r.load_resets)
    });
    table.row("API server requests/s during load, all clients", |r| {
        per_s(r.apiserver_load_total, r)
    });
    table.row(
        "quiet window: bridge API writes, its counter / API server's APPLY count",
        |r| {
            format!(
                "{:.0} / {:.0} in {:.0} s",
                r.idle_writes_applied,
                applies(&r.apiserver_idle),
                r.idle_s
            )
        },
    );
    table.row("quiet window: objects the bridge found unchanged", |r| {
        format!("{:.0}", r.idle_writes_unchanged)
    });
    table.row(
        "quiet window: EdgeNode resourceVersions moved / watch events",
        |r| format!("{} / {}", r.idle_rv_changes, r.idle_edge_node_events),
    );
    table.row("WARN lines in the bridge's log", |r| {
        format!("{}", r.bridge_warnings)
    });
    out.push_str(&table.finish());
    for r in results {
        let _ = writeln!(out, "\n### N = {}\n", r.nodes);
        if let Some(e) = &r.failed {
            let _ = writeln!(out, "Failed: {e}");
            continue;
        }
        let _ = writeln!(
            out,
            "Latency samples: {}. Bridge log: {}\n",
            r.latency.as_ref().map_or(0, |l| l.count),
            r.bridge_log.display()
        );
        let _ = writeln!(
            out,
            "API server requests during the load ({:.1} s), by verb and resource:\n",
            r.load_s
        );
        let _ = writeln!(out, "| verb resource | requests | per s |\n|---|---|---|");
        for (k, v) in r.apiserver_load.iter().take(12) {
            let _ = writeln!(out, "| {k} | {v:.0} | {:.1} |", v / r.load_s);
        }
        let _ = writeln!(
            out,
            "\nAPI server requests during the quiet window ({:.1} s):\n",
            r.idle_s
        );
        let _ = writeln!(out, "| verb resource | requests |\n|---|---|");
        for (k, v) in r.apiserver_idle.iter().take(12) {
            let _ = writeln!(out, "| {k} | {v:.0} |");
        }
    }
    out
}
