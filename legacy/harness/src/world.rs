//! The simulated world as several parties share it in one run: the hosts, shared between the
//! scripts' runner and the node agents that run Nodewright's tasks between ticks; the in-memory
//! cluster, shared between the scripts' `kubectl` and the parity layer; and the end state of the
//! hosts as the tools print it.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Pod};
use nodewright_agent_shim::{HostOps, HostOutput};
use nodewright_bridge::index::Index;
use nodewright_legacy_sim::cluster::Cluster as MemCluster;
use nodewright_legacy_sim::host::World;
use nodewright_legacy_sim::run::{Cluster, Facts, Host};
use nodewright_legacy_sim::sched::Reply;
use nodewright_parity::run::Fence;
use nodewright_parity::{Takeover, Workflow, gather, observed, takeover};

/// The simulated hosts, shared between the runner (the scripts' host commands) and the node agent
/// that runs the operator's tasks between ticks.
#[derive(Clone)]
pub struct SharedWorld(pub Arc<Mutex<World>>);

impl SharedWorld {
    /// The hosts of a scenario.
    pub fn new(world: World) -> Self {
        SharedWorld(Arc::new(Mutex::new(world)))
    }

    /// The hosts, locked. A holder that panicked left them as they were: the simulation goes on.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Host for SharedWorld {
    fn exec(&mut self, node: &str, argv: &[String]) -> Reply {
        Host::exec(&mut *self.lock(), node, argv)
    }
    fn render(&self, roots: &Path) -> std::io::Result<()> {
        Host::render(&*self.lock(), roots)
    }
    fn inject(&mut self, fault: &serde_json::Value) -> Result<(), String> {
        Host::inject(&mut *self.lock(), fault)
    }
    fn advance(&mut self, seconds: u64) {
        Host::advance(&mut *self.lock(), seconds);
    }
    fn now(&self) -> i64 {
        Host::now(&*self.lock())
    }
    fn observe(&self, facts: &mut Facts) {
        Host::observe(&*self.lock(), facts);
    }
    fn open_device(&mut self, node: &str, resource: &str, holder: &str) -> Result<(), String> {
        Host::open_device(&mut *self.lock(), node, resource, holder)
    }
    fn device_holders(&self) -> BTreeSet<String> {
        Host::device_holders(&*self.lock())
    }
    fn release_devices(&mut self, gone: &BTreeSet<String>) {
        Host::release_devices(&mut *self.lock(), gone);
    }
    fn write_file(&mut self, node: &str, path: &str, text: &str) {
        Host::write_file(&mut *self.lock(), node, path, text);
    }
}

/// The in-memory cluster, shared between the runner (the scripts' kubectl) and the parity layer
/// that looks at it, and writes to it, between ticks.
#[derive(Clone)]
pub struct SharedCluster(pub Rc<RefCell<MemCluster>>);

impl SharedCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        SharedCluster(Rc::new(RefCell::new(MemCluster::new())))
    }
}

impl Default for SharedCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl Cluster for SharedCluster {
    fn kubectl(&mut self, argv: &[String], cwd: &str, now: i64) -> Reply {
        Cluster::kubectl(&mut *self.0.borrow_mut(), argv, cwd, now)
    }
    fn add_node(&mut self, name: &str) -> Result<(), String> {
        Cluster::add_node(&mut *self.0.borrow_mut(), name)
    }
    fn observe(&self, facts: &mut Facts) {
        Cluster::observe(&*self.0.borrow(), facts);
    }
    fn script_pod(&mut self, node: &str, present: bool) {
        Cluster::script_pod(&mut *self.0.borrow_mut(), node, present);
    }
    fn add_pod(&mut self, namespace: &str, name: &str, node: &str) -> Result<(), String> {
        Cluster::add_pod(&mut *self.0.borrow_mut(), namespace, name, node)
    }
    fn live_pods(&mut self, pods: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        Cluster::live_pods(&mut *self.0.borrow_mut(), pods)
    }
}

/// One node's host, as its agent's `HostOps` sees it; every command it runs is recorded.
pub struct AgentHost {
    /// The hosts.
    pub world: SharedWorld,
    /// The node this agent runs on.
    pub node: String,
    /// Every command the agent ran, in order.
    pub ran: Arc<Mutex<Vec<Vec<String>>>>,
}

impl AgentHost {
    /// The agent's host on `node`.
    pub fn new(world: &SharedWorld, node: &str) -> Self {
        AgentHost {
            world: world.clone(),
            node: node.to_owned(),
            ran: Arc::default(),
        }
    }
}

impl HostOps for AgentHost {
    fn run(&mut self, argv: &[String]) -> HostOutput {
        self.ran
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(argv.to_vec());
        let reply = Host::exec(&mut self.world, &self.node, argv);
        HostOutput {
            code: reply.code,
            stdout: reply.stdout,
            stderr: reply.stderr,
        }
    }
}

/// LINSTOR's and DRBD's view on every node at the end, as the tools print it.
pub fn host_state(world: &SharedWorld, nodes: &[String]) -> String {
    let mut out = String::new();
    for node in nodes {
        for argv in [
            vec!["linstor", "--no-color", "node", "list"],
            vec!["linstor", "--no-color", "resource", "list"],
            vec!["drbdadm", "status"],
        ] {
            let argv: Vec<String> = argv.into_iter().map(String::from).collect();
            let reply = Host::exec(&mut world.clone(), node, &argv);
            if reply.code == 0 && !reply.stdout.trim().is_empty() {
                let _ = writeln!(out, "{node} $ {}\n{}", argv.join(" "), reply.stdout.trim_end());
            }
        }
    }
    out
}

/// Which rule lets the operator act on an owned workflow in a parity run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rule {
    /// The fence the operator runs: every node acknowledged, or is proven unable to act.
    #[default]
    Fence,
    /// The rule it replaced, kept to show what it would have done: every node with a node
    /// ConfigMap whose script reported within 300 s by its own clock acknowledged.
    OldClock,
}

/// The fence's facts as the operator's watches would show the in-memory cluster at `now`: every
/// Node's Ready condition and the legacy DaemonSet's pods, through the operator's own functions.
pub fn fence(cluster: &MemCluster, index: &Index, now: i64) -> Result<Fence, String> {
    let ready = cluster
        .nodes()
        .map(|n| {
            let node: Node =
                serde_json::from_value(n.to_json()).map_err(|e| format!("Node {}: {e}", n.name))?;
            Ok((n.name.clone(), gather::node_ready(&node)))
        })
        .collect::<Result<BTreeMap<String, takeover::NodeReady>, String>>()?;
    let pods = cluster
        .script_pods()
        .into_iter()
        .map(|p| serde_json::from_value(p).map_err(|e| format!("a legacy pod: {e}")))
        .collect::<Result<Vec<Pod>, String>>()?;
    let pods = gather::script_pods(&pods, nodewright_parsers::contract::DAEMON_SET);
    Ok(Fence {
        scripts: observed::script_facts(index, &ready, Some(&pods)),
        now,
        grace: takeover::DEFAULT_NOT_READY_GRACE,
    })
}

/// The rule the fence replaced: the operator acted once every node with a node ConfigMap whose
/// script had reported within 300 s (by the node's own clock) acknowledged the generation; a
/// silent script counted as dead. On `Err`, the nodes waited for.
pub fn old_clock_rule(index: &Index, t: &Takeover, workflow: Workflow, now: i64) -> Result<(), Vec<String>> {
    if t.mode(workflow) != nodewright_api::WorkflowMode::Operator {
        return Err(Vec::new());
    }
    let waiting: Vec<String> = index
        .nodes
        .iter()
        .filter_map(|(name, e)| {
            let cm = e.config_map.as_ref()?;
            let live = e.heartbeat().is_some_and(|h| now - h <= 300);
            let acked = cm.takeover_generation.value.is_some_and(|g| g >= t.generation);
            (live && !acked).then(|| name.clone())
        })
        .collect();
    if waiting.is_empty() { Ok(()) } else { Err(waiting) }
}
