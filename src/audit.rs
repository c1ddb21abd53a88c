//! `nodewright audit`: the audit trail's writer (`serve`), its readers (`log`, `verify`) and key
//! generation (`keygen`). The work is done in `nodewright-audit-trail` (what is recorded, the
//! webhook, publishing) and `nodewright-audit` (the log); this module wires the arguments.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use nodewright_audit::{Log, Signer, Verifier, VerifyOptions};
use nodewright_audit_trail::events::Scope;
use nodewright_audit_trail::query::{self, Filter};
use nodewright_audit_trail::serve::{self, Metrics, Shared, Writer};
use nodewright_audit_trail::trail::Trail;

use crate::out;

/// Arguments of `nodewright audit`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Receive the API server's audit webhook and append what the trail keeps to the log.
    Serve(Box<ServeArgs>),
    /// Print the log's entries, optionally selected.
    Log(LogArgs),
    /// Verify a log directory (a copy works: nothing but the directory is read, unless --from-cluster).
    Verify(VerifyArgs),
    /// Generate a signing key: the signer key goes to --out, the verifier key to standard output.
    Keygen(KeygenArgs),
}

/// Arguments of `nodewright audit serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The log directory (a persistent volume).
    #[arg(long)]
    dir: PathBuf,
    /// The signer key file (`PRIVATE+KEY+<origin>+…`, from a Secret); its name is the log's origin.
    #[arg(long)]
    key: PathBuf,
    /// Where the webhook listens.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// The TLS certificate chain (PEM). Without --tls-cert and --tls-key the webhook is plain HTTP,
    /// which only a loopback listener should use.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Namespace of the published checkpoint ConfigMap.
    #[arg(long, default_value = "nodewright-system")]
    namespace: String,
    /// Kubeconfig for publishing the checkpoint (default: in-cluster configuration, then $KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Do not publish the checkpoint to the cluster.
    #[arg(long)]
    no_publish: bool,
    /// Namespace of the legacy ConfigMaps.
    #[arg(long, default_value = nodewright_parsers::contract::NAMESPACE)]
    legacy_namespace: String,
    /// Where `/metrics` and the probes are served.
    #[arg(long, default_value = "127.0.0.1:8082")]
    admin_addr: SocketAddr,
}

/// Arguments of `nodewright audit log`.
#[derive(clap::Args)]
pub struct LogArgs {
    /// The log directory.
    dir: PathBuf,
    /// Only entries about this object, or decisions and steps of this workflow: KIND/NAME.
    #[arg(long)]
    object: Option<String>,
    /// Only entries by this user (or requests this user made while impersonating someone).
    #[arg(long)]
    user: Option<String>,
    /// Only entries at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only the entry with this id and everything that follows from it (caused_by), for example
    /// from a person's request to the host steps that carried it out.
    #[arg(long)]
    from: Option<String>,
    /// Output format: text, or json (one entry per line, with its index).
    #[arg(short = 'o', long, default_value = "text")]
    output: String,
}

/// Arguments of `nodewright audit verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The log directory.
    dir: PathBuf,
    /// A checkpoint known to be genuine (an earlier copy of the log's `checkpoint` file, or the
    /// published one): the log must extend it.
    #[arg(long, conflicts_with = "from_cluster")]
    checkpoint: Option<PathBuf>,
    /// Read the checkpoint the writer published to the cluster and require the log to extend it.
    #[arg(long)]
    from_cluster: bool,
    /// The verifier key file(s) (`<origin>+<id>+<key>`); repeat during a key rotation. Without it,
    /// --from-cluster trusts the verifier key published next to the checkpoint.
    #[arg(long)]
    key: Vec<PathBuf>,
    /// Namespace of the published checkpoint (--from-cluster).
    #[arg(long, default_value = "nodewright-system")]
    namespace: String,
    /// Kubeconfig (--from-cluster; default: in-cluster configuration, then $KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

/// Arguments of `nodewright audit keygen`.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// The key's name, which is the log's origin, for example `audit.example.org/site-a`.
    #[arg(long)]
    origin: String,
    /// Where to write the signer key (created, readable by the owner only; never overwritten).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `nodewright audit`.
pub fn run(args: Args, logging: &nodewright_kit::logging::LogArgs) -> anyhow::Result<()> {
    match args.command {
        Command::Serve(a) => {
            nodewright_kit::logging::init(logging)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(serve(*a))
        }
        Command::Log(a) => log(a),
        Command::Verify(a) => verify(a),
        Command::Keygen(a) => keygen(a),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let signer = Signer::from_file(&args.key)?;
    let verifier_key = signer.verifier_key().to_owned();
    let origin = signer.name().to_owned();
    let dir = args.dir.clone();
    let log = tokio::task::spawn_blocking(move || Log::open(&dir, signer, &origin)).await??;
    let scope = Scope {
        legacy_namespace: args.legacy_namespace.clone(),
        ..Scope::default()
    };
    let writer = {
        let dir = args.dir.clone();
        tokio::task::spawn_blocking(move || Writer::new(log, Trail::new(scope), &dir)).await??
    };
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry)?;
    let (published, updates) = tokio::sync::watch::channel(None);
    let shared = Arc::new(Shared::new(writer, metrics, published));
    shared.publish_current()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(serve::tls_acceptor(cert, key)?),
        _ => None,
    };
    let stop = nodewright_kit::process::stop_signal()?;
    let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
    let admin_stop = {
        let mut rx = stopped_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // Live while the runtime turns: a timer beats. The webhook answers on the same runtime.
    let health = nodewright_kit::admin::Health::new(Vec::<String>::new(), std::time::Duration::from_secs(60));
    {
        let health = health.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            loop {
                tick.tick().await;
                health.beat();
            }
        });
    }
    nodewright_kit::admin::start_admin(args.admin_addr, Arc::new(registry), health, admin_stop).await?;
    if !args.no_publish {
        let client = nodewright_kit::process::client(args.kubeconfig.as_deref()).await?;
        tokio::spawn(nodewright_audit_trail::publish::run(
            client,
            args.namespace.clone(),
            verifier_key,
            updates,
        ));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        "nodewright audit serve: log {}, webhook on {}://{}, checkpoint published to {}",
        args.dir.display(),
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr().unwrap_or(args.listen),
        if args.no_publish {
            "nowhere (--no-publish)".to_owned()
        } else {
            format!(
                "ConfigMap {}/{}",
                args.namespace,
                nodewright_audit_trail::publish::CONFIG_MAP
            )
        }
    );
    serve::serve(listener, tls, shared, stop).await;
    let _ = stopped_tx.send(true);
    Ok(())
}

fn entries(dir: &Path) -> anyhow::Result<Vec<(u64, nodewright_audit::Entry)>> {
    nodewright_audit::read(dir)
        .with_context(|| format!("reading the log in {}", dir.display()))?
        .map(|item| item.map_err(anyhow::Error::from))
        .collect()
}

fn log(args: LogArgs) -> anyhow::Result<()> {
    let filter = Filter {
        object: args
            .object
            .as_deref()
            .map(Filter::parse_object)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        user: args.user,
        since: args
            .since
            .as_deref()
            .map(Filter::parse_since)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        from: args.from,
    };
    let json = match args.output.as_str() {
        "json" => true,
        "text" => false,
        other => anyhow::bail!("-o {other:?}: expected json or text"),
    };
    let all = entries(&args.dir)?;
    let mut text = String::new();
    for (index, entry) in query::select(&all, &filter) {
        if json {
            let mut value = serde_json::to_value(entry)?;
            if let Some(map) = value.as_object_mut() {
                map.insert("index".into(), serde_json::json!(index));
            }
            text.push_str(&value.to_string());
            text.push('\n');
        } else {
            text.push_str(&query::text(*index, entry));
        }
    }
    out(&text);
    Ok(())
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let mut verifiers = args
        .key
        .iter()
        .map(|k| Verifier::from_file(k))
        .collect::<Result<Vec<_>, _>>()?;
    let checkpoint = match (&args.checkpoint, args.from_cluster) {
        (Some(file), _) => {
            Some(std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?)
        }
        (None, true) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (checkpoint, key) = runtime.block_on(async {
                let client = nodewright_kit::process::client(args.kubeconfig.as_deref()).await?;
                nodewright_audit_trail::publish::read(client, &args.namespace).await
            })?;
            if verifiers.is_empty() {
                let key =
                    key.context("no --key given and no verifier key published next to the checkpoint")?;
                verifiers.push(Verifier::from_text(&key, "the published verifier key")?);
            }
            Some(checkpoint)
        }
        (None, false) => None,
    };
    anyhow::ensure!(
        !verifiers.is_empty(),
        "no verifier key: pass --key FILE (the writer's verifier key), or --from-cluster"
    );
    match nodewright_audit::verify(
        &args.dir,
        &VerifyOptions {
            verifiers,
            checkpoint,
        },
    ) {
        Ok(report) => {
            out(&format!(
                "ok: {} entries, checkpoint of {} signed by {}{}{}\n",
                report.entries,
                report.checkpoint_size,
                report.signed_by.join(", "),
                report.trusted_size.map_or_else(String::new, |s| format!(
                    ", consistent with the trusted checkpoint of {s}"
                )),
                if report.unsigned_entries > 0 {
                    format!(
                        ", {} entries not yet covered by a signature",
                        report.unsigned_entries
                    )
                } else {
                    String::new()
                }
            ));
            Ok(())
        }
        Err(e) => anyhow::bail!("{} does not verify: {e}", args.dir.display()),
    }
}

fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (signer, text) = Signer::generate(&args.origin)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_all()?;
    out(&format!("{}\n", signer.verifier_key()));
    Ok(())
}
