//! Runs a scenario: the legacy script on every simulated node, tick by tick, under the
//! deterministic scheduler, with the scenario's faults and operator actions applied between
//! ticks — and records what happened as a trace: every host command per node in order, every
//! Kubernetes write, and each node's log.
//!
//! The host world and the cluster are behind two small traits, so the same runner drives the
//! in-memory cluster and the real API server (through the real `kubectl`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::observe::Facts;
use crate::sched::{self, Carried, Entry, Handler, NodeProcess, Reply, Request, Slot};

/// The simulated hosts, as the runner needs them.
pub trait Host {
    /// Runs one host command on a node.
    fn exec(&mut self, node: &str, argv: &[String]) -> Reply;
    /// Writes every node's `/proc` and `/sys` files under `roots/<node>/`.
    fn render(&self, roots: &Path) -> std::io::Result<()>;
    /// Applies a fault from a scenario.
    fn inject(&mut self, fault: &serde_json::Value) -> Result<(), String>;
    /// Moves the simulated clock forward.
    fn advance(&mut self, seconds: u64);
    /// The simulated time, in seconds since the epoch.
    fn now(&self) -> i64;
    /// Records what the invariants read of the hosts (see [`crate::observe`]); hosts that cannot
    /// say leave `facts` alone.
    fn observe(&self, _facts: &mut Facts) {}
    /// Marks a device held open by a pod (`namespace/name`) on `node`; see
    /// [`crate::host::World::open_device`]. Hosts that do not model open devices refuse.
    fn open_device(&mut self, node: &str, resource: &str, holder: &str) -> Result<(), String> {
        let _ = (node, resource, holder);
        Err("this host does not model open devices".into())
    }
    /// Everyone who holds a device open (pods, `namespace/name`).
    fn device_holders(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }
    /// Closes the devices held by the `gone` holders.
    fn release_devices(&mut self, gone: &BTreeSet<String>) {
        let _ = gone;
    }
    /// Tells the hosts a plain file the runner wrote into `node`'s root (its `node.conf`), so
    /// that the host's own tools (`cat`, as the node agent reads it) see what the script sees.
    /// Hosts that serve no files leave it.
    fn write_file(&mut self, node: &str, path: &str, text: &str) {
        let _ = (node, path, text);
    }
}

/// The cluster the script's `kubectl` talks to.
pub trait Cluster {
    /// Runs one `kubectl` command line (`argv[0]` is `kubectl`), with relative file arguments
    /// resolved against `cwd`, at simulated time `now`.
    fn kubectl(&mut self, argv: &[String], cwd: &str, now: i64) -> Reply;
    /// Registers a Node, as the kubelet of a node that joins the cluster does.
    fn add_node(&mut self, name: &str) -> Result<(), String>;

    /// Whether the legacy DaemonSet's pod on `node` exists, as the API server would show it: from
    /// the tick the node joins until it is lost (powered off, unreachable: its pod is taken to be
    /// deleted), and again once it is restored. The runner calls it before every tick; a cluster
    /// that does not model pods ignores it.
    fn script_pod(&mut self, node: &str, present: bool) {
        let _ = (node, present);
    }

    /// Records what the invariants read of the cluster (see [`crate::observe`]); a cluster that
    /// cannot say cheaply (the real API server) leaves `facts` alone.
    fn observe(&self, _facts: &mut Facts) {}

    /// Creates a workload pod bound to `node` (a scenario's pod that holds a device open).
    fn add_pod(&mut self, namespace: &str, name: &str, node: &str) -> Result<(), String> {
        let _ = (namespace, name, node);
        Err("this cluster does not model pods".into())
    }

    /// Which of `pods` (`namespace/name`) still exist and are not being deleted; `None` when the
    /// cluster cannot say (then no device is released).
    fn live_pods(&mut self, pods: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        let _ = pods;
        None
    }
}

/// Closes the devices whose holding pod is gone from the cluster (deleted, evicted): what the
/// kubelet's stopping the pod's containers and unmounting its volumes does on a real node. The
/// runner calls it before every host command and every tick; whoever changes the cluster or
/// runs host commands outside the runner (a node agent between ticks) calls it too.
pub fn release_closed_devices(host: &mut dyn Host, cluster: &mut dyn Cluster) {
    let holders = host.device_holders();
    if holders.is_empty() {
        return;
    }
    if let Some(live) = cluster.live_pods(&holders) {
        let gone: BTreeSet<String> = holders.difference(&live).cloned().collect();
        if !gone.is_empty() {
            host.release_devices(&gone);
        }
    }
}

impl Host for crate::host::World {
    fn exec(&mut self, node: &str, argv: &[String]) -> Reply {
        let out = crate::host::World::exec(self, node, argv, &[]);
        Reply {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.code,
        }
    }

    fn render(&self, roots: &Path) -> std::io::Result<()> {
        crate::host::World::render(self, roots)
    }

    fn inject(&mut self, fault: &serde_json::Value) -> Result<(), String> {
        let fault: crate::host::Fault = serde_json::from_value(fault.clone()).map_err(|e| e.to_string())?;
        crate::host::World::inject(self, fault).map_err(|e| e.to_string())
    }

    fn advance(&mut self, seconds: u64) {
        crate::host::World::advance(self, seconds);
    }

    fn now(&self) -> i64 {
        i64::try_from(self.clock).unwrap_or(i64::MAX)
    }

    fn observe(&self, facts: &mut Facts) {
        crate::observe::host_facts(self, facts);
    }

    fn open_device(&mut self, node: &str, resource: &str, holder: &str) -> Result<(), String> {
        crate::host::World::open_device(self, node, resource, holder).map_err(|e| e.to_string())
    }

    fn device_holders(&self) -> BTreeSet<String> {
        crate::host::World::device_holders(self)
    }

    fn release_devices(&mut self, gone: &BTreeSet<String>) {
        crate::host::World::release_devices(self, &|h| !gone.contains(h));
    }

    fn write_file(&mut self, node: &str, path: &str, text: &str) {
        crate::host::World::write_file(self, node, path, text);
    }
}

/// The simulated hosts a scenario starts with, at [`crate::host::DEFAULT_EPOCH`].
pub fn world_for(scenario: &Scenario) -> Result<crate::host::World, Error> {
    world_for_at(scenario, crate::host::DEFAULT_EPOCH)
}

/// The simulated hosts a scenario starts with, their clocks at `epoch` (Unix seconds): a live
/// demonstration starts at the wall clock, so that what the script writes is current.
pub fn world_for_at(scenario: &Scenario, epoch: u64) -> Result<crate::host::World, Error> {
    let specs: Vec<crate::host::NodeSpec> = scenario
        .nodes
        .iter()
        .map(|n| {
            let h = &n.host;
            let mut spec = crate::host::NodeSpec::edge(&n.name, &h.address).with_os(h.os);
            if h.controller {
                spec = spec.with_controller();
            }
            if let Some((name, mode)) = &h.bond {
                spec = spec.with_bond(name, mode, 100);
            }
            if let Some((pool, vg)) = &h.pool {
                spec = spec.with_pool(pool, vg, 100);
            }
            spec.packages.extend(h.packages.clone());
            spec
        })
        .collect();
    let scenario_err = |e: crate::host::Error| Error::Scenario(e.to_string());
    let mut world = crate::host::World::from_specs(scenario.seed, epoch, &specs).map_err(scenario_err)?;
    for r in &scenario.resources {
        let nodes: Vec<&str> = r.nodes.iter().map(String::as_str).collect();
        world
            .add_resource(&r.name, r.size_mib, &nodes, r.primary.as_deref())
            .map_err(scenario_err)?;
        for pod in &r.open_by {
            if let Some(primary) = &r.primary {
                world
                    .open_device(primary, &r.name, &format!("{POD_NAMESPACE}/{pod}"))
                    .map_err(scenario_err)?;
            }
        }
    }
    Ok(world)
}

/// Creates the scenario's pods (every resource's `open_by`) in `cluster`, each bound to its
/// resource's primary node. [`run`] does it before the first tick; a caller that runs a scenario
/// its own way (the parity harness) does it too.
pub fn add_scenario_pods(scenario: &Scenario, cluster: &mut dyn Cluster) -> Result<(), Error> {
    for r in &scenario.resources {
        let Some(primary) = &r.primary else { continue };
        for pod in &r.open_by {
            cluster
                .add_pod(POD_NAMESPACE, pod, primary)
                .map_err(|detail| Error::Cluster { tick: 0, detail })?;
        }
    }
    Ok(())
}

impl Cluster for crate::cluster::Cluster {
    fn kubectl(&mut self, argv: &[String], cwd: &str, now: i64) -> Reply {
        let base = PathBuf::from(cwd);
        let files = |path: &str| std::fs::read(base.join(path));
        let out = crate::cluster::Cluster::kubectl(self, argv.get(1..).unwrap_or_default(), &[], &files, now);
        Reply {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.code,
        }
    }

    fn script_pod(&mut self, node: &str, present: bool) {
        crate::cluster::Cluster::set_script_pod(self, node, present);
    }

    fn add_node(&mut self, name: &str) -> Result<(), String> {
        // What the API server stores for a new Node: the kubelet's hostname label, and the
        // not-ready taint its admission adds until the node reports Ready.
        let node = crate::cluster::Node::new(name)
            .label("kubernetes.io/hostname", name)
            .taint(crate::cluster::Taint::new(
                "node.kubernetes.io/not-ready",
                "",
                crate::cluster::TaintEffect::NoSchedule,
            ));
        crate::cluster::Cluster::add_node(self, node).map_err(|e| e.to_string())
    }

    fn observe(&self, facts: &mut Facts) {
        crate::observe::cluster_facts(self, facts);
    }

    fn add_pod(&mut self, namespace: &str, name: &str, node: &str) -> Result<(), String> {
        crate::cluster::Cluster::add_pod(self, namespace, name, node).map_err(|e| e.to_string())
    }

    fn live_pods(&mut self, pods: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        let existing: BTreeSet<String> = crate::cluster::Cluster::pods(self)
            .map(|(ns, name, _)| format!("{ns}/{name}"))
            .collect();
        Some(pods.intersection(&existing).cloned().collect())
    }
}

/// The real API server, through the real `kubectl`: the deployment users run.
pub struct RealCluster {
    /// The `kubectl` binary.
    pub kubectl: PathBuf,
    /// The kubeconfig it uses.
    pub kubeconfig: PathBuf,
}

impl RealCluster {
    /// `kubectl create -f` of a JSON manifest, through a scratch file named after `what`.
    fn create(&self, what: &str, manifest: &str) -> Result<(), String> {
        let path = std::env::temp_dir().join(format!("vxr-{}-{what}.json", std::process::id()));
        std::fs::write(&path, manifest).map_err(|e| e.to_string())?;
        let out = Command::new(&self.kubectl)
            .args(["create", "-f"])
            .arg(&path)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&path);
        let out = out?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Cluster for RealCluster {
    fn kubectl(&mut self, argv: &[String], cwd: &str, _now: i64) -> Reply {
        let output = Command::new(&self.kubectl)
            .args(argv.iter().skip(1))
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(cwd)
            .output();
        match output {
            Ok(out) => Reply {
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                code: out.status.code().unwrap_or(-1),
            },
            Err(e) => Reply {
                stderr: format!("kubectl: {e}\n"),
                code: 127,
                ..Reply::default()
            },
        }
    }

    fn add_pod(&mut self, namespace: &str, name: &str, node: &str) -> Result<(), String> {
        // Bound to its node at creation, as the scheduler would have bound it.
        let manifest = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":\"{name}\",\
             \"namespace\":\"{namespace}\"}},\"spec\":{{\"nodeName\":\"{node}\",\
             \"containers\":[{{\"name\":\"app\",\"image\":\"registry.k8s.io/pause:3.10\"}}]}}}}"
        );
        self.create(&format!("pod-{namespace}-{name}"), &manifest)
    }

    fn live_pods(&mut self, pods: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        // No kubelet runs here: a pod whose deletion has started counts as stopped, as it would
        // be once a kubelet had killed its containers.
        let out = Command::new(&self.kubectl)
            .args([
                "get",
                "pods",
                "--all-namespaces",
                "-o",
                r#"jsonpath={range .items[?(!@.metadata.deletionTimestamp)]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}"#,
            ])
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        Some(pods.intersection(&listed).cloned().collect())
    }

    fn add_node(&mut self, name: &str) -> Result<(), String> {
        let manifest = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{{\"name\":\"{name}\",\
             \"labels\":{{\"kubernetes.io/hostname\":\"{name}\"}}}}}}"
        );
        self.create(&format!("node-{name}"), &manifest)
    }
}

/// A scenario file (`golden/scenarios/<name>.yaml`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows.
    pub description: String,
    /// Seed of the simulated world.
    #[serde(default)]
    pub seed: u64,
    /// How many loop iterations every online node runs.
    pub ticks: u32,
    /// Simulated seconds between ticks.
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// The nodes, in the order the scheduler serves them.
    pub nodes: Vec<ScenarioNode>,
    /// DRBD resources that exist before the first tick.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    /// What happens between ticks.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Settings in every node's environment, as the DaemonSet's container `env` gives them to
    /// the script: `VXR_*` variables it reads (for example `VXR_MIGRATION_TIMEOUT`), except the
    /// ones the runner sets itself.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The incident this scenario reproduces, if it reproduces one: what must never happen and
    /// happened at a site, and still happens while the script decides the workflows it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
}

/// What an incident scenario's run violates (the invariants `vxr-sim run` checks over every
/// trace, named as it names them), and while the script decides which workflows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// The workflows (takeover keys: `storage-upgrade`, `migration`, ...) whose decisions by the
    /// script cause the incident: a run with all of them in `legacy` or `shadow` mode reproduces
    /// it; a run with any of them in `operator` mode must not.
    pub script_decides: Vec<String>,
    /// The invariants such a run violates, each at least once, and no others.
    pub violates: Vec<String>,
}

/// `VXR_*` variables the runner sets per node; a scenario cannot set them.
const RUNNER_ENV: &[&str] = &["VXR_ROOT", "VXR_LOG_FORMAT", "VXR_SIM_SOCKET"];

fn default_interval() -> u64 {
    30
}

/// One node of a scenario.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScenarioNode {
    /// Node name.
    pub name: String,
    /// `kv` (script 4.x) or `legacy` (script 3.x) log lines.
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// The node's `/etc/vx-rail/node.conf`, key by key.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The simulated host.
    pub host: HostSpec,
    /// The first tick at which the node runs its script (it is powered off before).
    #[serde(default)]
    pub joins_at: u32,
}

/// A simulated host: a typical edge node (two 10G NICs, DRBD and LINSTOR installed), with what
/// the scenario changes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Management address.
    pub address: String,
    /// Whether the LINSTOR controller runs on this node.
    #[serde(default)]
    pub controller: bool,
    /// A bond that exists before the script first runs: `[name, mode]`.
    #[serde(default)]
    pub bond: Option<(String, String)>,
    /// A storage pool registered before the script first runs: `[pool, vg/thinpool]`.
    #[serde(default)]
    pub pool: Option<(String, String)>,
    /// Installed package versions that differ from the defaults.
    #[serde(default)]
    pub packages: BTreeMap<String, String>,
    /// The host's package tools: `debian` (dpkg/apt, the default) or `rpm` (rpm/dnf).
    #[serde(default)]
    pub os: crate::host::OsFlavour,
}

/// A DRBD resource that exists before the first tick, up and UpToDate on its nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// Resource name.
    pub name: String,
    /// Size in MiB.
    pub size_mib: u64,
    /// Nodes with a replica.
    pub nodes: Vec<String>,
    /// The node where it is Primary, if any.
    #[serde(default)]
    pub primary: Option<String>,
    /// Pods that use it: each is a Pod in namespace `default`, bound to the `primary` node (not
    /// a DaemonSet's), that holds the device open there while it exists, so that DRBD refuses
    /// to demote it or take it down. Deleting the pod (`kubectl delete pod`, an eviction)
    /// closes the device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_by: Vec<String>,
}

/// The namespace of a scenario's pods.
pub const POD_NAMESPACE: &str = "default";

fn default_log_format() -> String {
    "kv".to_owned()
}

/// Something that happens before the scripts of a tick run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The tick before which it happens.
    pub tick: u32,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

/// What can happen between ticks.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A fault in the host world (its form is the host world's).
    Fault(serde_json::Value),
    /// An operator's `kubectl` command, for example requesting an upgrade.
    Kubectl(Vec<String>),
    /// The node stops running its script (powered off, unreachable) from this tick on.
    Lose(String),
    /// A lost node runs its script again from this tick on.
    Restore(String),
    /// A field technician edits a node's `node.conf`: it is rewritten before the tick.
    Config(ConfigChange),
    /// The node's script blocks in its next host command that starts with `command` (a hung
    /// `linstor` call) for `seconds` of simulated time, across ticks: no new loop starts on the
    /// node meanwhile, and the command then runs against the world as it is, and the loop goes
    /// on from where it was, with the snapshot it read before.
    Hang(Hang),
}

/// A host command that hangs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hang {
    /// The node.
    pub node: String,
    /// The command line's first words (`[linstor]`, `[linstor, resource, list]`).
    pub command: Vec<String>,
    /// How long it blocks, in simulated seconds.
    pub seconds: u64,
}

/// An edit of one node's `node.conf`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    /// The node.
    pub node: String,
    /// Keys set (added or changed).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Keys removed.
    #[serde(default)]
    pub unset: Vec<String>,
}

impl ConfigChange {
    /// Applies the edit to a node's configuration.
    pub fn apply(&self, config: &mut BTreeMap<String, String>) {
        for key in &self.unset {
            config.remove(key);
        }
        config.extend(self.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Where a node's `node.conf` is, on the node.
pub const NODE_CONF: &str = "/etc/vx-rail/node.conf";

/// A `node.conf`'s text: `KEY=value` lines in key order.
pub fn node_conf_text(config: &BTreeMap<String, String>) -> String {
    config.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// Where a run puts its files and finds its programs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The legacy script.
    pub script: PathBuf,
    /// The binary linked under every simulated tool's name: `vxr-tool` (the harness's small
    /// forwarding binary, cheapest to start), or `vxr-sim`, which is every tool as well.
    pub sim_binary: PathBuf,
    /// A scratch directory for roots, tools and the socket (emptied first).
    pub work_dir: PathBuf,
    /// How long a node may run without calling a simulated tool.
    pub stuck_after: Duration,
}

/// The tools every node gets from the simulation instead of the machine.
pub const SIMULATED_TOOLS: &[&str] = &[
    "ip",
    "modprobe",
    "lsmod",
    "drbdadm",
    "drbdsetup",
    "linstor",
    "systemctl",
    "dpkg-query",
    "apt-get",
    "date",
    "sleep",
    "hostname",
    "kubectl",
];

/// One command as the scheduler served it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// The tick it ran in.
    pub tick: u32,
    /// The node that ran it (`operator` for scenario actions).
    pub node: String,
    /// Its command line.
    pub argv: Vec<String>,
    /// Its exit code.
    pub code: i32,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// Every command, in the order it took effect.
    pub commands: Vec<TraceEntry>,
    /// Each node's log (its standard output and error), tick by tick.
    pub logs: BTreeMap<String, String>,
    /// The world after every step of the run, in order: the start, every command, every fault
    /// and every move of the clock (what the hosts and the cluster let [`Host::observe`] and
    /// [`Cluster::observe`] see).
    pub observations: Vec<Observation>,
}

/// The world after one step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The tick the step belongs to.
    pub tick: u32,
    /// The step.
    pub after: Step,
    /// The world after it (shared with the previous observation when nothing changed).
    pub facts: std::sync::Arc<Facts>,
}

/// A step of a run, after which the world is observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The world as the scenario builds it, before the first tick.
    Start,
    /// A command: its index in [`Trace::commands`].
    Command(usize),
    /// A fault of the scenario, as written there.
    Fault(String),
    /// The clock moved on to the next tick.
    Clock,
}

/// Observes the hosts and the cluster; the previous facts are shared when nothing changed.
fn observe(host: &dyn Host, cluster: &dyn Cluster, previous: Option<&Observation>) -> std::sync::Arc<Facts> {
    let mut facts = Facts::default();
    host.observe(&mut facts);
    cluster.observe(&mut facts);
    match previous {
        Some(p) if *p.facts == facts => p.facts.clone(),
        _ => std::sync::Arc::new(facts),
    }
}

/// `kubectl` verbs that change the cluster.
const KUBE_WRITES: &[&str] = &[
    "create", "patch", "annotate", "label", "taint", "cordon", "uncordon", "apply", "delete",
];

impl Trace {
    /// Every host command, per node in order, as `tick node $ command → code` lines. `date` is
    /// left out: the script calls it for every log line, and the log shows what it returned.
    pub fn host_commands(&self) -> String {
        self.lines(|e| !matches!(e.argv.first().map(String::as_str), Some("kubectl" | "date")))
    }

    /// Every Kubernetes write, in order.
    pub fn kube_writes(&self) -> String {
        self.lines(|e| {
            e.argv.first().map(String::as_str) == Some("kubectl")
                && kubectl_verb(&e.argv[1..]).is_some_and(|v| KUBE_WRITES.contains(&v))
        })
    }

    /// The entries `keep` selects, one `tick node $ command -> code` line each.
    fn lines(&self, keep: impl Fn(&TraceEntry) -> bool) -> String {
        let mut out = String::new();
        for e in self.commands.iter().filter(|e| keep(e)) {
            let _ = writeln!(
                out,
                "{:>3} {} $ {} -> {}",
                e.tick,
                e.node,
                shell_words(&e.argv),
                e.code
            );
        }
        out
    }
}

/// The verb of a kubectl command line (its first word that is neither a flag nor a flag's value).
fn kubectl_verb(args: &[String]) -> Option<&str> {
    const WITH_VALUE: &[&str] = &[
        "-n",
        "--namespace",
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "-s",
        "--server",
    ];
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

/// Quotes a command line the way a reader can paste it into a shell.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file is invalid.
    #[error("scenario: {0}")]
    Scenario(String),
    /// Preparing the run's files failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The scheduler failed.
    #[error(transparent)]
    Sched(#[from] sched::Error),
    /// The cluster refused a change of the scenario's environment (a joining node).
    #[error("tick {tick}: cluster: {detail}")]
    Cluster {
        /// The tick.
        tick: u32,
        /// Why.
        detail: String,
    },
    /// A fault could not be applied.
    #[error("tick {tick}: fault {fault}: {detail}")]
    Fault {
        /// The tick.
        tick: u32,
        /// The fault, as written in the scenario.
        fault: String,
        /// Why it failed.
        detail: String,
    },
}

impl Scenario {
    /// Parses a scenario from YAML.
    pub fn from_yaml(text: &str) -> Result<Scenario, Error> {
        let scenario: Scenario = serde_yaml_ng::from_str(text).map_err(|e| Error::Scenario(e.to_string()))?;
        let mut names: Vec<_> = scenario.nodes.iter().map(|n| n.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Scenario("two nodes have the same name".into()));
        }
        for key in scenario.env.keys() {
            if !key.starts_with("VXR_") || RUNNER_ENV.contains(&key.as_str()) {
                return Err(Error::Scenario(format!(
                    "env: {key} is not a setting of the script (VXR_*, but not {})",
                    RUNNER_ENV.join(", ")
                )));
            }
        }
        for r in &scenario.resources {
            if r.open_by.is_empty() {
                continue;
            }
            let Some(primary) = &r.primary else {
                return Err(Error::Scenario(format!(
                    "resource {}: open_by needs a primary, the node its pods run on",
                    r.name
                )));
            };
            if !r.nodes.contains(primary) {
                return Err(Error::Scenario(format!(
                    "resource {}: primary {primary} has no replica of it",
                    r.name
                )));
            }
            for pod in &r.open_by {
                let valid = !pod.is_empty()
                    && pod.len() <= 253
                    && pod
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                    && pod.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && pod.ends_with(|c: char| c.is_ascii_alphanumeric());
                if !valid {
                    return Err(Error::Scenario(format!(
                        "resource {}: open_by {pod:?} is not a pod name (DNS-1123 subdomain)",
                        r.name
                    )));
                }
            }
        }
        for event in &scenario.events {
            let node = match &event.action {
                Action::Lose(node)
                | Action::Restore(node)
                | Action::Config(ConfigChange { node, .. })
                | Action::Hang(Hang { node, .. }) => node,
                Action::Fault(_) | Action::Kubectl(_) => continue,
            };
            if !names.contains(&node.as_str()) {
                return Err(Error::Scenario(format!(
                    "tick {}: no node named {node}",
                    event.tick
                )));
            }
        }
        Ok(scenario)
    }
}

struct Runner<'a> {
    host: &'a mut dyn Host,
    cluster: &'a mut dyn Cluster,
    roots: PathBuf,
    tick: u32,
    trace: Vec<TraceEntry>,
    observations: Vec<Observation>,
    keep_trace: bool,
    /// Hangs armed by the scenario, with the simulated time each one ends once it has caught its
    /// command.
    hangs: Vec<(Hang, Option<i64>)>,
}

impl Runner<'_> {
    /// Records the world after `step`.
    fn observe(&mut self, step: Step) {
        if self.keep_trace {
            let facts = observe(&*self.host, &*self.cluster, self.observations.last());
            self.observations.push(Observation {
                tick: self.tick,
                after: step,
                facts,
            });
        }
    }
}

impl Handler for Runner<'_> {
    fn hold(&mut self, request: &Request) -> bool {
        let now = self.host.now();
        let Some(at) = self.hangs.iter().position(|(h, until)| {
            h.node == request.node && (until.is_some() || request.argv.starts_with(h.command.as_slice()))
        }) else {
            return false;
        };
        let (hang, until) = &mut self.hangs[at];
        let ends = *until.get_or_insert(now + i64::try_from(hang.seconds).unwrap_or(i64::MAX));
        if now < ends {
            return true;
        }
        self.hangs.remove(at);
        false
    }

    fn handle(&mut self, request: &Request) -> Reply {
        let reply = if request.argv.first().map(String::as_str) == Some("kubectl") {
            let now = self.host.now();
            self.cluster.kubectl(&request.argv, &request.cwd, now)
        } else {
            release_closed_devices(&mut *self.host, &mut *self.cluster);
            let reply = self.host.exec(&request.node, &request.argv);
            if let Err(e) = self.host.render(&self.roots) {
                return Reply {
                    stderr: format!("simulation: rendering host files: {e}\n"),
                    code: 70,
                    ..reply
                };
            }
            reply
        };
        if self.keep_trace {
            self.trace.push(TraceEntry {
                tick: self.tick,
                node: request.node.clone(),
                argv: request.argv.clone(),
                code: reply.code,
            });
            self.observe(Step::Command(self.trace.len() - 1));
        }
        reply
    }
}

/// Runs a scenario to the end and returns its trace.
pub fn run(
    scenario: &Scenario,
    host: &mut dyn Host,
    cluster: &mut dyn Cluster,
    config: &RunConfig,
) -> Result<Trace, Error> {
    run_observed(scenario, host, cluster, config, true, &mut |_, _| {
        ControlFlow::Continue(())
    })
}

/// What one node's script printed in one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickOutput {
    /// The node.
    pub node: String,
    /// Standard output, then standard error.
    pub output: String,
    /// The script's exit code.
    pub code: i32,
}

/// Runs a scenario like [`run`], calling `after_tick` with each tick's output as soon as the tick
/// ends; it may pace the run or stop it (`ControlFlow::Break`). With `keep_trace` false nothing
/// is accumulated (a long-running demonstration), and the returned trace is empty.
pub fn run_observed(
    scenario: &Scenario,
    host: &mut dyn Host,
    cluster: &mut dyn Cluster,
    config: &RunConfig,
    keep_trace: bool,
    after_tick: &mut dyn FnMut(u32, &[TickOutput]) -> ControlFlow<()>,
) -> Result<Trace, Error> {
    let work = &config.work_dir;
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    if work.exists() {
        std::fs::remove_dir_all(work).map_err(io("emptying", work))?;
    }
    let tools = link_tools(config)?;
    let roots = work.join("roots");
    for node in &scenario.nodes {
        let root = roots.join(&node.name);
        let etc = root.join("etc/vx-rail");
        std::fs::create_dir_all(&etc).map_err(io("creating", &etc))?;
        std::fs::create_dir_all(root.join("var/lib/vx-rail")).map_err(io("creating", &root))?;
        let text = node_conf_text(&node.config);
        std::fs::write(etc.join("node.conf"), &text).map_err(io("writing", &etc))?;
        host.write_file(&node.name, NODE_CONF, &text);
    }
    let mut configs: BTreeMap<&str, BTreeMap<String, String>> = scenario
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.config.clone()))
        .collect();
    host.render(&roots).map_err(io("rendering", &roots))?;

    let socket = work.join("sched.sock");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let mut lost: Vec<String> = Vec::new();
    let mut runner = Runner {
        host,
        cluster,
        roots: roots.clone(),
        tick: 0,
        trace: Vec::new(),
        observations: Vec::new(),
        keep_trace,
        hangs: Vec::new(),
    };
    add_scenario_pods(scenario, &mut *runner.cluster)?;
    runner.observe(Step::Start);
    let mut logs: BTreeMap<String, String> = BTreeMap::new();
    // Scripts blocked in a hung command, carried from round to round, and the tick each loop
    // started in.
    let mut carried: BTreeMap<String, Carried> = BTreeMap::new();
    let mut started: BTreeMap<String, u32> = BTreeMap::new();

    for tick in 0..scenario.ticks {
        runner.tick = tick;
        for event in scenario.events.iter().filter(|e| e.tick == tick) {
            match &event.action {
                Action::Fault(fault) => {
                    runner.host.inject(fault).map_err(|detail| Error::Fault {
                        tick,
                        fault: fault.to_string(),
                        detail,
                    })?;
                    runner.host.render(&roots).map_err(io("rendering", &roots))?;
                    runner.observe(Step::Fault(fault.to_string()));
                }
                Action::Kubectl(args) => {
                    let argv: Vec<String> = std::iter::once("kubectl".to_owned())
                        .chain(args.iter().cloned())
                        .collect();
                    let request = Request {
                        node: "operator".into(),
                        argv,
                        cwd: work.display().to_string(),
                    };
                    runner.handle(&request);
                }
                Action::Lose(node) => {
                    lost.push(node.clone());
                    // Its power is gone: a script blocked there is gone with it, and so is the
                    // hang it was blocked in.
                    started.remove(node);
                    runner
                        .hangs
                        .retain(|(h, until)| h.node != *node || until.is_none());
                    if let Some(c) = carried.remove(node) {
                        let o = c.kill();
                        if !keep_trace {
                            continue;
                        }
                        let log = logs.entry(o.node.clone()).or_default();
                        let _ = writeln!(log, "### tick {tick} (lost while blocked)");
                        log.push_str(&o.stdout);
                        log.push_str(&o.stderr);
                    }
                }
                Action::Hang(hang) => runner.hangs.push((hang.clone(), None)),
                Action::Restore(node) => lost.retain(|n| n != node),
                Action::Config(change) => {
                    if let Some(config) = configs.get_mut(change.node.as_str()) {
                        change.apply(config);
                        let path = roots.join(&change.node).join("etc/vx-rail/node.conf");
                        let text = node_conf_text(config);
                        std::fs::write(&path, &text).map_err(io("writing", &path))?;
                        runner.host.write_file(&change.node, NODE_CONF, &text);
                    }
                }
            }
        }
        for node in scenario.nodes.iter().filter(|n| n.joins_at == tick) {
            runner
                .cluster
                .add_node(&node.name)
                .map_err(|detail| Error::Cluster { tick, detail })?;
        }
        for n in &scenario.nodes {
            runner
                .cluster
                .script_pod(&n.name, tick >= n.joins_at && !lost.contains(&n.name));
        }
        release_closed_devices(&mut *runner.host, &mut *runner.cluster);
        let entries = scenario
            .nodes
            .iter()
            .filter(|n| tick >= n.joins_at && !lost.contains(&n.name))
            .map(|n| {
                if let Some(c) = carried.remove(&n.name) {
                    return Entry::Carry(c);
                }
                let mut command = Command::new("bash");
                command
                    .arg(&config.script)
                    .arg("once")
                    .env_clear()
                    .envs(&scenario.env)
                    .env("PATH", &path)
                    .env("HOME", work)
                    .env("LC_ALL", "C")
                    .env("TZ", "UTC")
                    .env("NODE_NAME", &n.name)
                    .env("VXR_ROOT", roots.join(&n.name))
                    .env("VXR_LOG_FORMAT", &n.log_format)
                    .env("VXR_SIM_SOCKET", &socket)
                    .current_dir(roots.join(&n.name));
                Entry::Start(NodeProcess {
                    node: n.name.clone(),
                    command,
                })
            })
            .collect();
        let slots = sched::run_round_carrying(&socket, entries, &mut runner, config.stuck_after)?;
        let mut outputs: Vec<TickOutput> = Vec::new();
        for slot in slots {
            match slot {
                Slot::Finished(o) => outputs.push(TickOutput {
                    node: o.node,
                    output: o.stdout + &o.stderr,
                    code: o.code,
                }),
                Slot::Carried(c) => {
                    started.entry(c.node().to_owned()).or_insert(tick);
                    carried.insert(c.node().to_owned(), c);
                }
            }
        }
        for o in &outputs {
            let from = started.remove(&o.node);
            if !keep_trace {
                continue;
            }
            let log = logs.entry(o.node.clone()).or_default();
            match from {
                Some(from) => {
                    let _ = writeln!(
                        log,
                        "### tick {tick} (exit {}, a loop started in tick {from})",
                        o.code
                    );
                }
                None => {
                    let _ = writeln!(log, "### tick {tick} (exit {})", o.code);
                }
            }
            log.push_str(&o.output);
        }
        runner.host.advance(scenario.interval);
        runner.observe(Step::Clock);
        if after_tick(tick, &outputs).is_break() {
            break;
        }
    }
    // The run is over while a script is still blocked: it is stopped there.
    for (node, c) in std::mem::take(&mut carried) {
        let o = c.kill();
        if keep_trace {
            let log = logs.entry(node).or_default();
            let _ = writeln!(log, "### end of the run (still blocked)");
            log.push_str(&o.stdout);
            log.push_str(&o.stderr);
        }
    }
    Ok(Trace {
        commands: runner.trace,
        logs,
        observations: runner.observations,
    })
}

/// Creates `<work_dir>/tools` with every simulated tool linked to the `vxr-sim` binary (links
/// already there are kept) and returns it.
fn link_tools(config: &RunConfig) -> Result<PathBuf, Error> {
    let tools = config.work_dir.join("tools");
    std::fs::create_dir_all(&tools).map_err(|source| Error::Io {
        what: "creating",
        path: tools.clone(),
        source,
    })?;
    for tool in SIMULATED_TOOLS {
        let link = tools.join(tool);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        std::os::unix::fs::symlink(&config.sim_binary, &link).map_err(|source| Error::Io {
            what: "linking",
            path: link.clone(),
            source,
        })?;
    }
    Ok(tools)
}

/// Runs the script once in step mode on one simulated node — `vx-rail-node-init.sh step ARGS...`
/// (`args` starts with the step's name) — through the scheduler, as Nodewright would run it on
/// the node, and returns what it printed (standard output and standard error apart) and exited
/// with, and every command it ran (tick 0), host and `kubectl` alike.
///
/// The environment is the one [`run`] gives a node (simulated tools first on `PATH`, `VXR_ROOT`,
/// `VXR_SIM_SOCKET`, `NODE_NAME`, `kv` log lines), without any scenario settings. The node's root
/// is `<work_dir>/roots/<node>`, rendered from `host` first; `config.work_dir` is reused (what
/// is missing is created, nothing is emptied), so that several steps can run one after another
/// against the same host world, or after a [`run`] with the same configuration.
pub fn run_step(
    host: &mut dyn Host,
    cluster: &mut dyn Cluster,
    config: &RunConfig,
    node: &str,
    args: &[&str],
) -> Result<(sched::NodeOutcome, Vec<TraceEntry>), Error> {
    let work = &config.work_dir;
    let tools = link_tools(config)?;
    let roots = work.join("roots");
    let root = roots.join(node);
    let state = root.join("var/lib/vx-rail");
    std::fs::create_dir_all(&state).map_err(|source| Error::Io {
        what: "creating",
        path: state.clone(),
        source,
    })?;
    host.render(&roots).map_err(|source| Error::Io {
        what: "rendering",
        path: roots.clone(),
        source,
    })?;
    let socket = work.join("sched.sock");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let mut command = Command::new("bash");
    command
        .arg(&config.script)
        .arg("step")
        .args(args)
        .env_clear()
        .env("PATH", &path)
        .env("HOME", work)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("NODE_NAME", node)
        .env("VXR_ROOT", &root)
        .env("VXR_LOG_FORMAT", "kv")
        .env("VXR_SIM_SOCKET", &socket)
        .current_dir(&root);
    let mut runner = Runner {
        host,
        cluster,
        roots,
        tick: 0,
        trace: Vec::new(),
        observations: Vec::new(),
        keep_trace: true,
        hangs: Vec::new(),
    };
    let process = NodeProcess {
        node: node.to_owned(),
        command,
    };
    let mut outcomes = sched::run_round(&socket, vec![process], &mut runner, config.stuck_after)?;
    let outcome = outcomes.pop().unwrap_or_default();
    Ok((outcome, runner.trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_words_stay_bare_and_others_are_quoted() {
        let argv: Vec<String> = ["kubectl", "patch", "-p", r#"{"data":{"a":"b c"}}"#, "it's"]
            .map(String::from)
            .into();
        assert_eq!(
            shell_words(&argv),
            r#"kubectl patch -p '{"data":{"a":"b c"}}' 'it'\''s'"#
        );
    }

    #[test]
    fn a_scenario_with_two_nodes_of_one_name_is_refused() {
        let yaml = "description: x\nticks: 1\nnodes: [{name: a, host: {address: x}}, {name: a, host: {address: y}}]\n";
        assert!(
            Scenario::from_yaml(yaml)
                .unwrap_err()
                .to_string()
                .contains("same name")
        );
    }

    #[test]
    fn an_event_for_an_unknown_node_is_refused() {
        let yaml = "description: x\nticks: 1\nnodes: [{name: a, host: {address: x}}]\nevents: [{tick: 0, lose: b}]\n";
        assert!(
            Scenario::from_yaml(yaml)
                .unwrap_err()
                .to_string()
                .contains("no node named b")
        );
    }

    #[test]
    fn a_config_event_edits_the_node_conf_it_names() {
        let yaml = "description: x\nticks: 2\nnodes: [{name: a, host: {address: x}, config: {A: '1', B: '2'}}]\n\
                    events: [{tick: 1, config: {node: a, set: {B: '3', C: '4'}, unset: [A]}}]\n";
        let scenario = Scenario::from_yaml(yaml).expect("scenario");
        let Action::Config(change) = &scenario.events[0].action else {
            panic!("not a config event: {:?}", scenario.events[0].action);
        };
        let mut config = scenario.nodes[0].config.clone();
        change.apply(&mut config);
        assert_eq!(node_conf_text(&config), "B=3\nC=4\n");
        let unknown = yaml.replace("node: a,", "node: b,");
        assert!(
            Scenario::from_yaml(&unknown)
                .unwrap_err()
                .to_string()
                .contains("no node named b")
        );
    }

    #[test]
    fn scenario_env_takes_script_settings_only() {
        let yaml = "description: x\nticks: 1\nnodes: [{name: a, host: {address: x}}]\nenv: {VXR_MIGRATION_TIMEOUT: '60'}\n";
        let scenario = Scenario::from_yaml(yaml).expect("scenario");
        assert_eq!(
            scenario.env.get("VXR_MIGRATION_TIMEOUT").map(String::as_str),
            Some("60")
        );
        for bad in ["PATH", "VXR_ROOT", "VXR_SIM_SOCKET", "VXR_LOG_FORMAT"] {
            let yaml = yaml.replace("VXR_MIGRATION_TIMEOUT", bad);
            assert!(
                Scenario::from_yaml(&yaml).unwrap_err().to_string().contains(bad),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn a_resource_opened_by_pods_needs_a_primary_with_a_replica_and_pod_names() {
        let base = "description: x\nticks: 1\nnodes: [{name: a, host: {address: x}}]\nresources: ";
        let ok = format!("{base}[{{name: r, size_mib: 8, nodes: [a], primary: a, open_by: [app-0]}}]\n");
        let scenario = Scenario::from_yaml(&ok).expect("scenario");
        assert_eq!(scenario.resources[0].open_by, ["app-0"]);
        let mut world = world_for(&scenario).expect("world");
        assert_eq!(
            Host::device_holders(&world).into_iter().collect::<Vec<_>>(),
            ["default/app-0"]
        );
        let mut cluster = crate::cluster::Cluster::new();
        add_scenario_pods(&scenario, &mut cluster).expect("pods");
        assert_eq!(cluster.pods().collect::<Vec<_>>(), [("default", "app-0", "a")]);
        // Deleted through kubectl: the device is closed before the next host command.
        let out = crate::cluster::Cluster::kubectl(
            &mut cluster,
            &["delete".into(), "pod".into(), "app-0".into()],
            &[],
            &|_| Err(std::io::Error::other("no files")),
            0,
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "pod \"app-0\" deleted from default namespace\n"
        );
        release_closed_devices(&mut world, &mut cluster);
        assert!(Host::device_holders(&world).is_empty());
        for (bad, why) in [
            (
                "[{name: r, size_mib: 8, nodes: [a], open_by: [app-0]}]",
                "needs a primary",
            ),
            (
                "[{name: r, size_mib: 8, nodes: [a], primary: b, open_by: [app-0]}]",
                "has no replica",
            ),
            (
                "[{name: r, size_mib: 8, nodes: [a], primary: a, open_by: [App_0]}]",
                "not a pod name",
            ),
        ] {
            let e = Scenario::from_yaml(&format!("{base}{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_scenario_fields_are_refused() {
        let yaml = "description: x\nticks: 1\nnodez: []\n";
        assert!(Scenario::from_yaml(yaml).is_err());
    }

    #[test]
    fn kube_writes_keep_only_mutating_kubectl_calls() {
        let entry = |argv: &[&str]| TraceEntry {
            tick: 0,
            node: "n".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            code: 0,
        };
        let trace = Trace {
            commands: vec![
                entry(&["kubectl", "get", "nodes", "-o", "name"]),
                entry(&["kubectl", "-n", "kube-system", "patch", "configmap", "x"]),
                entry(&["ip", "link", "show"]),
            ],
            ..Trace::default()
        };
        assert_eq!(
            trace.kube_writes(),
            "  0 n $ kubectl -n kube-system patch configmap x -> 0\n"
        );
        assert_eq!(trace.host_commands(), "  0 n $ ip link show -> 0\n");
    }
}
