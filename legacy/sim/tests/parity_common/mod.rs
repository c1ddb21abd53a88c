//! What the parity runs share: the simulated hosts shared between the scripts' runner and the
//! node agents, and the end state of the hosts as the tools print it.

#![allow(dead_code, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use nodewright_agent_shim::{HostOps, HostOutput};
use nodewright_legacy_sim::host::World;
use nodewright_legacy_sim::run::Host;
use nodewright_legacy_sim::sched::Reply;

/// The simulated hosts, shared between the runner (the scripts' host commands) and the node agent
/// that runs the operator's tasks between ticks.
#[derive(Clone)]
pub struct SharedWorld(pub Arc<Mutex<World>>);

impl SharedWorld {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
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
}

/// One node's host, as its agent's `HostOps` sees it; every command it runs is recorded.
pub struct AgentHost {
    pub world: SharedWorld,
    pub node: String,
    pub ran: Arc<Mutex<Vec<Vec<String>>>>,
}

impl AgentHost {
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
        self.ran.lock().unwrap().push(argv.to_vec());
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
