//! `nodewright dev`: a local control plane (real kube-apiserver + etcd from `testenv/`) with the
//! Nodewright CRDs and the example site installed, running until interrupted.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use nodewright_testenv::{ControlPlane, Options};

/// Arguments of `nodewright dev`.
#[derive(clap::Args)]
pub struct Args {
    /// State directory of the control plane (certificates, etcd data, kubeconfig). Emptied at start.
    #[arg(long, default_value = "target/nodewright-dev")]
    state_dir: PathBuf,
    /// Port for the API server on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// YAML files of objects to apply once the CRDs are installed.
    #[arg(long = "apply", default_values = ["examples/site.yaml"])]
    apply: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let state_dir = std::path::absolute(&args.state_dir)?;
    if state_dir.exists() {
        std::fs::remove_dir_all(&state_dir).with_context(|| format!("emptying {}", state_dir.display()))?;
    }
    eprintln!(
        "Starting the local control plane (kube-apiserver + etcd) in {} ...",
        state_dir.display()
    );
    let options = Options {
        dir: Some(state_dir.clone()),
        port: (args.port != 0).then_some(args.port),
        ..Options::default()
    };
    let control_plane = tokio::task::spawn_blocking(move || ControlPlane::start(options)).await??;
    let client = control_plane.client().await?;
    nodewright_testenv::install_crds(&client, &nodewright_api::crds()).await?;

    let mut applied = 0;
    for file in &args.apply {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        applied += nodewright_testenv::apply_yaml(&client, &text, None)
            .await
            .with_context(|| format!("applying {}", file.display()))?;
    }

    let kubectl = control_plane.kubectl().get_program().to_owned();
    let kubeconfig = control_plane.kubeconfig().display().to_string();
    println!(
        "\nNodewright local control plane is ready ({:.1}s): {}\n\
         CRDs installed: {}; example objects applied: {applied}\n\n\
         Use it from another shell:\n\
         \x20 export KUBECONFIG={kubeconfig}\n\
         \x20 alias kubectl={}\n\
         \x20 kubectl get nodewright -A            # every Nodewright object\n\
         \x20 kubectl get edgenodes -n nodewright-system\n\
         \x20 kubectl explain edgenode.status      # field documentation\n\
         \x20 kubectl describe edgecluster -n nodewright-system\n\n\
         Control-plane log: {}\n\
         Press Ctrl-C to stop.",
        started.elapsed().as_secs_f64(),
        control_plane.server(),
        nodewright_api::crds().len(),
        kubectl.to_string_lossy(),
        control_plane.log_path().display(),
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {},
    }
    eprintln!("\nStopping the control plane ...");
    drop(client);
    tokio::task::spawn_blocking(move || control_plane.stop()).await??;
    Ok(())
}
