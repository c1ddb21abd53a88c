//! `nodewright-dev`: the demonstration (`scripts/demo` builds and runs it). A local control plane
//! (real kube-apiserver + etcd from `testenv/`) with the Nodewright CRDs; a simulated fleet — the
//! legacy script itself on N simulated edge nodes, writing to the API server with the real
//! `kubectl`, its output served as the legacy DaemonSet's pod logs by a stand-in kubelet; the
//! observation bridge watching it all, with its admin server; and the operator with the site's
//! taints, storage upgrade and migration in shadow, recording where it would have decided
//! otherwise. Runs until interrupted.
//!
//! This program is wiring: the fleet comes from `nodewright-legacy-sim`, the bridge from
//! `nodewright-bridge`, the operator from `nodewright-parity`, the control plane and kubelet from
//! `nodewright-testenv`. It is a package of its own so that the product binary, `nodewright`, links
//! neither the test control plane nor the simulator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use nodewright_api::WorkflowMode;
use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec, SiteProfile, Topology, WorkflowModes};
use nodewright_bridge::logs::{LogSource, LogSourceConfig};
use nodewright_bridge::run::{BridgeOptions, log_changes};
use nodewright_legacy_sim::run::{
    Action, Cluster, Event, Host, HostSpec, RealCluster, ResourceSpec, RunConfig, Scenario, ScenarioNode,
    TickOutput, run_observed, world_for_at,
};
use nodewright_legacy_sim::sched::Reply;
use nodewright_parity::run::OperatorOptions;
use nodewright_testenv::kubelet::StandInKubelet;
use nodewright_testenv::{ControlPlane, Options};

/// Namespace of Nodewright's objects in the demonstration.
const NAMESPACE: &str = "nodewright-system";
/// The legacy DaemonSet, as `legacy/daemonset.yaml` defines it.
const LEGACY_NAMESPACE: &str = "kube-system";
const DAEMONSET: &str = "vx-rail-node-init";
const CONTAINER: &str = "node-init";

/// Arguments of `nodewright-dev`.
#[derive(clap::Parser)]
#[command(
    name = "nodewright-dev",
    version,
    about = "Run a local control plane with the Nodewright CRDs, a simulated fleet running the legacy script, the bridge and the operator in shadow, until interrupted"
)]
struct Args {
    /// State directory of the control plane (certificates, etcd data, kubeconfig). Emptied at start.
    #[arg(long, default_value = "target/nodewright-dev")]
    state_dir: PathBuf,
    /// Port for the API server on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Simulated edge nodes in the fleet (one site).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    nodes: u32,
    /// Seconds between two loops of the legacy script on every node (real time, and the
    /// simulated hosts' clocks move by as much).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    tick_seconds: u64,
    /// The fleet's tick at which an operator asks for DRBD 9.2.14 and the storage upgrade starts
    /// (a test that needs the upgrade sooner sets it lower).
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(2..))]
    upgrade_at_tick: u32,
    /// Address of the bridge's admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:8080")]
    admin_addr: SocketAddr,
    /// Address of the operator's admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:8081")]
    operator_admin_addr: SocketAddr,
    /// Address of the audit writer's admin server (/metrics).
    #[arg(long, default_value = "127.0.0.1:8082")]
    audit_admin_addr: SocketAddr,
    /// Address of the web UI.
    #[arg(long, default_value = "127.0.0.1:8090")]
    ui_addr: SocketAddr,
    /// The legacy script.
    #[arg(long, default_value = "legacy/vx-rail-node-init.sh")]
    script: PathBuf,
    /// The legacy DaemonSet manifest, applied so the bridge finds the DaemonSet and its RBAC.
    #[arg(long, default_value = "legacy/daemonset.yaml")]
    daemonset: PathBuf,
    /// The simulator binary (`vxr-sim`); default: next to this program.
    #[arg(long)]
    sim_binary: Option<PathBuf>,
    /// YAML files of further objects to apply once the CRDs are installed.
    #[arg(long = "apply")]
    apply: Vec<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = <Args as clap::Parser>::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nodewright-dev: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(args))
}

/// The demonstration fleet: one site built multi-node, `nodes` nodes, edge-1 running the LINSTOR
/// controller and the others joining one loop later; a volume replicated on up to three nodes; a
/// bond failover on edge-2 (a cable pulled and plugged back); then an operator asks for a newer
/// DRBD and the script upgrades the nodes one by one. After that the loops go on, with nothing to
/// do.
fn fleet(nodes: u32, tick_seconds: u64, upgrade_at_tick: u32) -> Scenario {
    let names: Vec<String> = (1..=nodes).map(|i| format!("edge-{i}")).collect();
    let scenario_nodes = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let octet = 11 + i;
            let config: BTreeMap<String, String> = [
                ("BOND_NAME", "bond0".to_owned()),
                ("BOND_MODE", "active-backup".to_owned()),
                ("BOND_SLAVES", "eno1 eno2".to_owned()),
                ("BOND_MIIMON", "100".to_owned()),
                ("STORAGE_VLAN_ID", "100".to_owned()),
                ("STORAGE_IP", format!("10.100.0.{octet}/24")),
                ("MGMT_VLAN_ID", "200".to_owned()),
                ("MGMT_IP", format!("10.200.0.{octet}/24")),
                ("STORAGE_POOL", "pool0".to_owned()),
                ("STORAGE_VG", "vg0/thinpool".to_owned()),
                ("SITE_TOPOLOGY", "multi".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            ScenarioNode {
                name: name.clone(),
                log_format: "kv".to_owned(),
                config,
                // As the site was installed: the bond and the storage pool's volume group exist.
                host: HostSpec {
                    address: format!("10.200.0.{octet}"),
                    controller: i == 0,
                    bond: Some(("bond0".to_owned(), "active-backup".to_owned())),
                    pool: Some(("pool0".to_owned(), "vg0/thinpool".to_owned())),
                    ..HostSpec::default()
                },
                joins_at: u32::from(i > 0),
            }
        })
        .collect();
    let mut events = Vec::new();
    if nodes > 1 {
        events.push(Event {
            tick: 8,
            action: Action::Fault(serde_json::json!({"LinkDown": {"node": "edge-2", "nic": "eno1"}})),
        });
        events.push(Event {
            tick: 11,
            action: Action::Fault(serde_json::json!({"LinkUp": {"node": "edge-2", "nic": "eno1"}})),
        });
    }
    events.push(Event {
        tick: upgrade_at_tick,
        action: Action::Kubectl(
            [
                "-n",
                LEGACY_NAMESPACE,
                "patch",
                "configmap",
                "vx-rail-cluster-state",
                "--type",
                "merge",
                "-p",
                r#"{"data":{"desired-storage-version":"9.2.14"}}"#,
            ]
            .map(String::from)
            .into(),
        ),
    });
    Scenario {
        description: "The nodewright-dev fleet".to_owned(),
        seed: 1,
        ticks: u32::MAX,
        interval: tick_seconds,
        nodes: scenario_nodes,
        resources: vec![ResourceSpec {
            name: "pvc-1".to_owned(),
            size_mib: 1024,
            nodes: names.iter().take(3).cloned().collect(),
            primary: Some("edge-1".to_owned()),
            open_by: Vec::new(),
        }],
        events,
        env: BTreeMap::new(),
        incident: None,
    }
}

/// The real API server through the real kubectl, plus what a kubelet would do for a new node:
/// point the Node at the stand-in kubelet and run the DaemonSet's pod on it.
struct FleetCluster {
    real: RealCluster,
    kubelet: Arc<StandInKubelet>,
    client: kube::Client,
    runtime: tokio::runtime::Handle,
    pod_labels: BTreeMap<String, String>,
}

impl Cluster for FleetCluster {
    fn kubectl(&mut self, argv: &[String], cwd: &str, now: i64) -> Reply {
        self.real.kubectl(argv, cwd, now)
    }

    fn add_node(&mut self, name: &str) -> Result<(), String> {
        self.real.add_node(name)?;
        let pod = format!("{DAEMONSET}-{name}");
        let (client, kubelet, labels) = (self.client.clone(), self.kubelet.clone(), self.pod_labels.clone());
        let name = name.to_owned();
        self.runtime.block_on(async move {
            kubelet
                .point_node(&client, &name)
                .await
                .map_err(|e| format!("pointing node {name} at the stand-in kubelet: {e}"))?;
            kubelet
                .create_running_pod(&client, LEGACY_NAMESPACE, &pod, &name, CONTAINER, labels)
                .await
                .map_err(|e| format!("starting the legacy pod on {name}: {e}"))?;
            Ok(())
        })
    }
}

/// The simulated hosts, their clocks kept at the wall clock: a loop with the real kubectl takes
/// longer than a tick, and the bridge judges heartbeats by the wall clock.
struct WallClockHosts(nodewright_legacy_sim::host::World);

impl Host for WallClockHosts {
    fn exec(&mut self, node: &str, argv: &[String]) -> Reply {
        Host::exec(&mut self.0, node, argv)
    }

    fn render(&self, roots: &Path) -> std::io::Result<()> {
        Host::render(&self.0, roots)
    }

    fn inject(&mut self, fault: &serde_json::Value) -> Result<(), String> {
        Host::inject(&mut self.0, fault)
    }

    fn advance(&mut self, seconds: u64) {
        let behind = nodewright_kit::clock::unix_now() - Host::now(&self.0);
        let seconds = seconds.max(u64::try_from(behind).unwrap_or(0));
        Host::advance(&mut self.0, seconds);
    }

    fn now(&self) -> i64 {
        Host::now(&self.0)
    }
}

fn sim_binary(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.sim_binary {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("vxr-sim");
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p nodewright-sim-harness` or pass --sim-binary",
        path.display()
    );
    Ok(path)
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let script = std::path::absolute(&args.script)?;
    anyhow::ensure!(
        script.is_file(),
        "the legacy script {} is missing",
        script.display()
    );
    let sim = sim_binary(&args)?;
    let state_dir = std::path::absolute(&args.state_dir)?;
    if state_dir.exists() {
        std::fs::remove_dir_all(&state_dir).with_context(|| format!("emptying {}", state_dir.display()))?;
    }
    eprintln!(
        "Starting the local control plane (kube-apiserver + etcd) in {} ...",
        state_dir.display()
    );
    let audit = start_audit(&state_dir, args.audit_admin_addr).await?;
    let options = Options {
        dir: Some(state_dir.clone()),
        port: (args.port != 0).then_some(args.port),
        audit_webhook: Some(audit.webhook.clone()),
        ..Options::default()
    };
    let control_plane = tokio::task::spawn_blocking(move || ControlPlane::start(options)).await??;
    let client = control_plane.client().await?;
    tokio::spawn(nodewright_audit_trail::publish::run(
        client.clone(),
        NAMESPACE.to_owned(),
        audit.verifier_key.clone(),
        audit.updates.clone(),
    ));
    nodewright_testenv::install_crds(&client, &nodewright_api::crds()).await?;
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let daemonset = std::fs::read_to_string(&args.daemonset)
        .with_context(|| format!("reading {}", args.daemonset.display()))?;
    nodewright_testenv::apply_yaml(&client, &daemonset, None)
        .await
        .with_context(|| format!("applying {}", args.daemonset.display()))?;
    for file in &args.apply {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        nodewright_testenv::apply_yaml(&client, &text, None)
            .await
            .with_context(|| format!("applying {}", file.display()))?;
    }
    let kubelet = Arc::new(StandInKubelet::start().await?);

    // The bridge, as it runs in a cluster: watches, the legacy pods' logs, leader election.
    let (log_source, events) = LogSource::start(
        client.clone(),
        LogSourceConfig::daemon_set(LEGACY_NAMESPACE, DAEMONSET),
    )
    .await?;
    let mut options = BridgeOptions::new(NAMESPACE, "nodewright-dev");
    options.admin_addr = Some(args.admin_addr);
    let (stop_bridge, bridge_stopped) = tokio::sync::oneshot::channel::<()>();
    let bridge = tokio::spawn(nodewright_bridge::run::run(
        client.clone(),
        options,
        Some(log_changes(events)),
        async {
            let _ = bridge_stopped.await;
        },
    ));

    // The site's intent: three workflows in shadow, the rest legacy. The operator projects it
    // for the scripts and records every divergence; the scripts still decide everything.
    let site = EdgeCluster::new(
        "site",
        EdgeClusterSpec {
            profile: SiteProfile {
                topology: if args.nodes > 1 {
                    Topology::MultiNode
                } else {
                    Topology::SingleNode
                },
                storage_backend: Default::default(),
                operating_system: None,
            },
            expected_nodes: None,
            primary_node: None,
            workflows: WorkflowModes {
                taints: WorkflowMode::Shadow,
                storage_upgrade: WorkflowMode::Shadow,
                migration: WorkflowMode::Shadow,
                ..WorkflowModes::default()
            },
            legacy: Default::default(),
        },
    );
    Api::<EdgeCluster>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &site)
        .await
        .context("creating the EdgeCluster")?;
    let (operator_log_source, operator_events) = LogSource::start(
        client.clone(),
        LogSourceConfig::daemon_set(LEGACY_NAMESPACE, DAEMONSET),
    )
    .await?;
    let mut operator_options = OperatorOptions::new(NAMESPACE, "site", "nodewright-dev");
    operator_options.admin_addr = Some(args.operator_admin_addr);
    let (stop_operator, operator_stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(nodewright_parity::run::run(
        client.clone(),
        operator_options,
        Some(log_changes(operator_events)),
        async {
            let _ = operator_stopped.await;
        },
    ));

    // The web UI, read-only, as `nodewright ui` runs it.
    let ui_listener = tokio::net::TcpListener::bind(args.ui_addr)
        .await
        .with_context(|| format!("listening on {} for the UI", args.ui_addr))?;
    let ui_shared =
        nodewright_ui::Shared::new(nodewright_ui::watch::KINDS).with_audit(nodewright_ui::audit::Source {
            dir: state_dir.join("audit-log"),
            namespace: NAMESPACE.to_owned(),
            client: client.clone(),
        });
    let ui_watches = nodewright_ui::watch::spawn(
        &client,
        &nodewright_ui::watch::Namespaces {
            nodewright: NAMESPACE.to_owned(),
            legacy: LEGACY_NAMESPACE.to_owned(),
        },
        &ui_shared,
    );
    let (stop_ui, ui_stopped) = tokio::sync::oneshot::channel::<()>();
    let ui = tokio::spawn(nodewright_ui::serve(ui_listener, ui_shared, async {
        let _ = ui_stopped.await;
    }));

    // The fleet, in a thread of its own: the script runs as real processes, one loop per tick.
    let stop = Arc::new(AtomicBool::new(false));
    let scenario = fleet(args.nodes, args.tick_seconds, args.upgrade_at_tick);
    let epoch = u64::try_from(nodewright_kit::clock::unix_now()).unwrap_or(0);
    let mut world = WallClockHosts(world_for_at(&scenario, epoch)?);
    let work_dir = state_dir.join("fleet");
    let mut cluster = FleetCluster {
        real: RealCluster {
            kubectl: control_plane.kubectl().get_program().into(),
            kubeconfig: control_plane.kubeconfig().to_path_buf(),
        },
        kubelet: kubelet.clone(),
        client: client.clone(),
        runtime: tokio::runtime::Handle::current(),
        pod_labels: BTreeMap::from([("app.kubernetes.io/name".to_owned(), DAEMONSET.to_owned())]),
    };
    let fleet = {
        let (stop, kubelet, tick) = (
            stop.clone(),
            kubelet.clone(),
            Duration::from_secs(args.tick_seconds),
        );
        let config = RunConfig {
            script,
            sim_binary: sim,
            work_dir,
            stuck_after: Duration::from_secs(120),
        };
        tokio::task::spawn_blocking(move || {
            let mut next = Instant::now() + tick;
            let mut after_tick = |_: u32, outputs: &[TickOutput]| {
                for o in outputs {
                    let pod = format!("{DAEMONSET}-{}", o.node);
                    kubelet.append(LEGACY_NAMESPACE, &pod, CONTAINER, &o.output);
                }
                while Instant::now() < next {
                    if stop.load(Ordering::Relaxed) {
                        return ControlFlow::Break(());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                next += tick;
                if stop.load(Ordering::Relaxed) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            run_observed(
                &scenario,
                &mut world,
                &mut cluster,
                &config,
                false,
                &mut after_tick,
            )
        })
    };

    print_where_to_look(&control_plane, &args, started, &state_dir);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut fleet = fleet;
    let fleet_result = tokio::select! {
        r = tokio::signal::ctrl_c() => { r?; None }
        _ = term.recv() => None,
        r = &mut fleet => Some(r),
    };
    eprintln!("\nStopping the operator, the bridge, the fleet and the control plane ...");
    // These first: on Ctrl-C the control plane gets the signal too and is already going.
    let _ = stop_operator.send(());
    let _ = operator.await;
    drop(operator_log_source);
    let _ = stop_bridge.send(());
    let _ = bridge.await;
    let _ = stop_ui.send(());
    let _ = ui.await;
    drop(ui_watches);
    drop(log_source);
    stop.store(true, Ordering::Relaxed);
    let fleet_result = match fleet_result {
        Some(r) => r,
        None => fleet.await,
    };
    kubelet.stop().await;
    tokio::task::spawn_blocking(move || control_plane.stop()).await??;
    fleet_result?.context("the simulated fleet stopped")?;
    Ok(())
}

/// The audit trail's writer, serving the API server's webhook on loopback.
struct Audit {
    webhook: nodewright_testenv::AuditWebhook,
    verifier_key: String,
    updates: tokio::sync::watch::Receiver<Option<nodewright_audit_trail::serve::Published>>,
}

/// Starts the audit writer before the control plane (whose webhook posts to it): a fresh signing
/// key and self-signed certificate in `<state>/audit`, the log in `<state>/audit-log`.
async fn start_audit(state_dir: &Path, admin_addr: SocketAddr) -> anyhow::Result<Audit> {
    use nodewright_audit_trail::serve::{self, Metrics, Shared, Writer};
    let dir = state_dir.join("audit");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let cert_pem = certified.cert.pem();
    std::fs::write(dir.join("tls.crt"), &cert_pem)?;
    std::fs::write(dir.join("tls.key"), certified.signing_key.serialize_pem())?;
    let tls = serve::tls_acceptor(&dir.join("tls.crt"), &dir.join("tls.key"))?;
    let (signer, signer_text) = nodewright_audit::Signer::generate("nodewright-dev/site")?;
    std::fs::write(dir.join("signer.key"), format!("{signer_text}\n"))?;
    let verifier_key = signer.verifier_key().to_owned();
    std::fs::write(dir.join("verifier.key"), format!("{verifier_key}\n"))?;
    let log_dir = state_dir.join("audit-log");
    let origin = signer.name().to_owned();
    let log = nodewright_audit::Log::open(&log_dir, signer, &origin)?;
    let writer = Writer::new(
        log,
        nodewright_audit_trail::trail::Trail::new(Default::default()),
        &log_dir,
    )?;
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry)?;
    let (published, updates) = tokio::sync::watch::channel(None);
    let shared = Arc::new(Shared::new(writer, metrics, published));
    shared.publish_current()?;
    // Metrics only: the demonstration has no probe, so liveness never matters.
    let health = nodewright_kit::admin::Health::new(Vec::<String>::new(), Duration::from_secs(86_400 * 365));
    nodewright_kit::admin::start_admin(admin_addr, Arc::new(registry), health, std::future::pending())
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(serve::serve(listener, Some(tls), shared, std::future::pending()));
    Ok(Audit {
        webhook: nodewright_testenv::AuditWebhook {
            url: format!("https://127.0.0.1:{port}/audit"),
            ca_pem: Some(cert_pem),
            policy: nodewright_audit_trail::POLICY.to_owned(),
            mode: "blocking".into(),
        },
        verifier_key,
        updates,
    })
}

fn print_where_to_look(control_plane: &ControlPlane, args: &Args, started: Instant, state_dir: &Path) {
    let kubectl = control_plane
        .kubectl()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let kubeconfig = control_plane.kubeconfig().display().to_string();
    println!(
        "\nNodewright demo is running ({:.1}s): {}\n\
         Web UI: http://{}/   (sites, nodes, the storage upgrade node by node, the takeover, the audit trail; live)\n\
         A simulated site of {} edge nodes runs the legacy vx-rail-node-init script every {}s,\n\
         against this API server with the real kubectl; the read-only bridge observes it, and the\n\
         operator runs taints, the storage upgrade and the migration in shadow.\n\
         {}At tick {} an operator asks for DRBD 9.2.14 and the script upgrades the nodes one at\n\
         a time.\n\n\
         Use it from another shell:\n\
         \x20 export KUBECONFIG={kubeconfig}\n\
         \x20 alias kubectl={kubectl}\n\
         \x20 kubectl get nodewright -A                 # every Nodewright object the bridge maintains\n\
         \x20 kubectl get edgenodes -n {NAMESPACE} -w   # node health as it changes\n\
         \x20 kubectl get storageupgrades -n {NAMESPACE} -o yaml\n\
         \x20 kubectl describe edgecluster site -n {NAMESPACE}\n\
         \x20 kubectl get events -n {NAMESPACE}\n\
         \x20 kubectl get configmaps,pods -n {LEGACY_NAMESPACE}   # what the legacy script writes\n\
         \x20 kubectl logs -n {LEGACY_NAMESPACE} {DAEMONSET}-edge-1 -f   # its log, through pods/log\n\
         \x20 curl -s http://{}/metrics | grep nodewright_bridge_node\n\
         \x20 kubectl get configmap nodewright-takeover -n {LEGACY_NAMESPACE} -o yaml   # what the scripts are told\n\
         \x20 kubectl get edgecluster site -n {NAMESPACE} -o jsonpath='{{.status.takeover}}'\n\
         \x20 kubectl get edgecluster site -n {NAMESPACE} -o jsonpath='{{.status.divergences}}'\n\
         \x20 curl -s http://{}/metrics | grep nodewright_shadow\n\
         \x20 # Prometheus: scrape the two admin addresses above (/metrics), load the alert rules\n\
         \x20 # charts/nodewright/monitoring/alerts.yaml; the dashboards' queries (charts/nodewright/dashboards/*.json)\n\
         \x20 # run as they are in Prometheus' UI (docs/monitoring.md)\n\
         \x20 nodewright audit log {}   # who changed what, the operator's decisions, the host steps\n\
         \x20 nodewright audit verify {} --from-cluster --key {}\n\n\
         Control-plane log: {}; the fleet's hosts: {}\n\
         Press Ctrl-C to stop.",
        started.elapsed().as_secs_f64(),
        control_plane.server(),
        args.ui_addr,
        args.nodes,
        args.tick_seconds,
        if args.nodes > 1 {
            "Around tick 8 a cable is pulled on edge-2 (and plugged back at tick 11).\n"
        } else {
            ""
        },
        args.upgrade_at_tick,
        args.admin_addr,
        args.operator_admin_addr,
        state_dir.join("audit-log").display(),
        state_dir.join("audit-log").display(),
        state_dir.join("audit/verifier.key").display(),
        control_plane.log_path().display(),
        state_dir.join("fleet/roots").display(),
    );
}
