//! The simulated world as several parties share it in one run: the hosts, shared between the
//! scripts' runner and the node agents that run Nodewright's tasks between ticks; the in-memory
//! cluster, shared between the scripts' `kubectl` and the parity layer; and the end state of the
//! hosts as the tools print it.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

use nodewright_agent_shim::{HostOps, HostOutput};
use nodewright_legacy_sim::cluster::Cluster as MemCluster;
use nodewright_legacy_sim::host::World;
use nodewright_legacy_sim::run::{Cluster, Facts, Host};
use nodewright_legacy_sim::sched::Reply;

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
