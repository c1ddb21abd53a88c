//! Helpers shared by the agent's integration tests: the simulated edge world behind `HostOps`
//! (`SimHost`), an agent started in the background, NodeTask fixtures, and polling with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use nodewright_agent_shim::{AgentOptions, HostOps, HostOutput, run};
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase, NodeTaskSpec};
use nodewright_legacy_sim::host::{DEFAULT_EPOCH, NodeSpec, World};
use nodewright_testenv::TestContext;
use tokio::sync::oneshot;

/// Agent logs in test output, filtered by `RUST_LOG`.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Installs the CRDs once per test binary (every test shares one control plane).
pub async fn context(prefix: &str) -> TestContext {
    static INSTALLED: OnceLock<tokio::sync::Mutex<bool>> = OnceLock::new();
    init_logging();
    let ctx = TestContext::new(prefix)
        .await
        .expect("control plane and namespace");
    let mut installed = INSTALLED
        .get_or_init(|| tokio::sync::Mutex::new(false))
        .lock()
        .await;
    if !*installed {
        nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
            .await
            .expect("CRDs install");
        *installed = true;
    }
    ctx
}

/// A site: `edge-1` runs the LINSTOR controller and is registered with pool `pool0`; `edge-2` and `edge-3` are edge nodes that are
/// not registered with LINSTOR yet.
pub fn world() -> Arc<Mutex<World>> {
    let specs = [
        NodeSpec::edge("edge-1", "10.10.100.11")
            .with_controller()
            .with_pool("pool0", "vg0/thinpool", 100),
        NodeSpec::edge("edge-2", "10.10.100.12"),
        NodeSpec::edge("edge-3", "10.10.100.13"),
    ];
    Arc::new(Mutex::new(World::from_specs(7, DEFAULT_EPOCH, &specs).unwrap()))
}

/// Called after every command, with its argv (a test uses it to stop an agent mid-step).
pub type Hook = Arc<dyn Fn(&[String]) + Send + Sync>;

/// The simulated edge world as one node's host: every command runs on `node` of `world`, and
/// is recorded in `log` (shared between clones, so tests can count what ran).
#[derive(Clone)]
pub struct SimHost {
    pub world: Arc<Mutex<World>>,
    pub node: String,
    pub log: Arc<Mutex<Vec<Vec<String>>>>,
    pub hook: Option<Hook>,
    /// While set, every `linstor` command fails as when the controller cannot be reached.
    pub linstor_down: Arc<std::sync::atomic::AtomicBool>,
}

impl SimHost {
    pub fn new(world: &Arc<Mutex<World>>, node: &str) -> Self {
        SimHost {
            world: Arc::clone(world),
            node: node.to_owned(),
            log: Arc::default(),
            hook: None,
            linstor_down: Arc::default(),
        }
    }

    /// The commands run so far.
    pub fn ran(&self) -> Vec<Vec<String>> {
        self.log.lock().unwrap().clone()
    }

    /// How many commands run so far contain `words` in order, contiguously.
    pub fn count(&self, words: &[&str]) -> usize {
        count(&self.ran(), words)
    }
}

pub fn count(ran: &[Vec<String>], words: &[&str]) -> usize {
    ran.iter()
        .filter(|argv| {
            argv.windows(words.len())
                .any(|w| w.iter().zip(words).all(|(a, b)| a == b))
        })
        .count()
}

impl HostOps for SimHost {
    fn run(&mut self, argv: &[String]) -> HostOutput {
        self.log.lock().unwrap().push(argv.to_vec());
        if argv.first().is_some_and(|a| a == "linstor")
            && self.linstor_down.load(std::sync::atomic::Ordering::SeqCst)
        {
            return HostOutput::failed(
                20,
                "Error: Unable to connect to linstor://localhost:3370: Connection refused\n",
            );
        }
        let out = self.world.lock().unwrap().exec(&self.node, argv, &[]);
        if let Some(hook) = &self.hook {
            hook(argv);
        }
        HostOutput {
            code: out.code,
            stdout: out.stdout_str(),
            stderr: out.stderr_str(),
        }
    }
}

/// What `linstor node list` prints in the world now.
pub fn linstor_nodes(world: &Arc<Mutex<World>>) -> String {
    let argv: Vec<String> = ["linstor", "--no-color", "node", "list"]
        .map(String::from)
        .to_vec();
    world.lock().unwrap().exec("edge-1", &argv, &[]).stdout_str()
}

/// A running agent; stop it with `stop`.
pub struct RunningAgent {
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), nodewright_agent_shim::Error>>,
}

impl RunningAgent {
    /// Stops the agent cleanly and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let joined = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
        joined.expect("agent stops in time").unwrap().unwrap();
    }
}

pub fn options(namespace: &str, node: &str, pod: &str, state_dir: &Path) -> AgentOptions {
    let mut options = AgentOptions::new(node, namespace, pod, state_dir);
    options.resync = Duration::from_secs(2);
    options.retry_initial = Duration::from_millis(100);
    options.retry_max = Duration::from_secs(1);
    options
}

/// A fresh site in a namespace of its own, seen from edge-1: its simulated hosts, edge-1's host
/// as its agent sees it, and a state directory for that agent's journal.
pub struct Edge1 {
    pub ctx: TestContext,
    pub world: Arc<Mutex<World>>,
    pub host: SimHost,
    pub state: tempfile::TempDir,
}

impl Edge1 {
    pub async fn new(prefix: &str) -> Self {
        let ctx = context(prefix).await;
        let world = world();
        let host = SimHost::new(&world, "edge-1");
        Edge1 {
            ctx,
            world,
            host,
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts edge-1's agent as pod `pod`.
    pub fn start(&self, pod: &str) -> RunningAgent {
        start_agent(
            self.ctx.client.clone(),
            options(&self.ctx.namespace, "edge-1", pod, self.state.path()),
            self.host.clone(),
        )
    }
}

/// Starts an agent in the background.
pub fn start_agent(client: kube::Client, options: AgentOptions, host: SimHost) -> RunningAgent {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(client, options, host, async {
        let _ = rx.await;
    }));
    RunningAgent { stop: Some(tx), task }
}

pub fn node_task(name: &str, node: &str, step: &str, args: &[&str], key: &str) -> NodeTask {
    NodeTask::new(
        name,
        NodeTaskSpec {
            node_name: node.into(),
            step: step.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            idempotency_key: key.into(),
            workflow_ref: None,
            timeout_seconds: 60,
        },
    )
}

pub async fn create(ctx: &TestContext, task: &NodeTask) -> NodeTask {
    ctx.api::<NodeTask>()
        .create(&PostParams::default(), task)
        .await
        .unwrap()
}

pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the task is `Succeeded` or `Failed` and returns it.
pub async fn finished(api: &Api<NodeTask>, name: &str) -> NodeTask {
    eventually(
        &format!("task {name} to finish"),
        Duration::from_secs(60),
        || async {
            let t = api.get(name).await.ok()?;
            let phase = t.status.as_ref()?.phase?;
            matches!(phase, NodeTaskPhase::Succeeded | NodeTaskPhase::Failed).then_some(t)
        },
    )
    .await
}

pub fn condition<'a>(
    task: &'a NodeTask,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    task.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}
