//! Starts, restarts and stops the local Kubernetes control plane (`nodewright-testenv`: a real
//! kube-apiserver and etcd in one process, built from Go modules by `testenv/build.sh`), and hands out
//! clients, `kubectl` commands and fresh namespaces for tests and the demo.
//!
//! This crate touches processes, files and the API server; it holds no Nodewright logic. Test
//! binaries share one control plane through [`shared`]; each test takes a fresh namespace from
//! [`TestContext::new`].
//!
//! No process is left behind: the control plane exits when its standard input closes (which the
//! kernel does when this process ends, however it ends), when its parent process changes, and on
//! SIGINT/SIGTERM — so a panicking test, a killed test binary or an interrupted run all take it down.

pub mod kubelet;
pub mod measure;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::{Client, Config};
use serde::Deserialize;

/// Errors of the control-plane harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Go binaries are missing and could not be built.
    #[error("building the control plane with {script}: {detail}")]
    Build {
        /// The build script that was run.
        script: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The control plane process could not be started or did not become ready.
    #[error("starting the control plane in {dir}: {detail}")]
    Start {
        /// Its state directory.
        dir: PathBuf,
        /// What went wrong, with the end of its log.
        detail: String,
    },
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The kubeconfig could not be turned into a client.
    #[error("client from {path}: {detail}")]
    Client {
        /// The kubeconfig.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// An API call failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// A YAML manifest could not be applied.
    #[error("manifest document {document}: {detail}")]
    Manifest {
        /// Which document of the stream, counted from 1.
        document: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
}

/// How to start a control plane.
#[derive(Clone, Debug)]
pub struct Options {
    /// State directory. `None` makes a fresh temporary one, removed when the control plane is dropped
    /// or its owning process ends.
    pub dir: Option<PathBuf>,
    /// Secure port for kube-apiserver; `None` picks a free one (remembered in the state directory).
    pub port: Option<u16>,
    /// Where `nodewright-testenv` and `kubectl` are; `None` means [`default_bin_dir`], built on demand.
    pub bin_dir: Option<PathBuf>,
    /// How long to wait for `/readyz`.
    pub ready_timeout: Duration,
    /// Extra kube-apiserver flags, passed through as `--apiserver-arg`.
    pub apiserver_args: Vec<String>,
    /// Send the API server's audit events to a webhook (the audit trail's writer).
    pub audit_webhook: Option<AuditWebhook>,
}

/// Where and what the API server's audit webhook backend sends.
#[derive(Clone, Debug)]
pub struct AuditWebhook {
    /// The writer's URL, for example `https://127.0.0.1:8443/audit`.
    pub url: String,
    /// The PEM certificate of the CA that signed the writer's certificate (or the writer's own,
    /// self-signed). `None` only for an `http://` URL.
    pub ca_pem: Option<String>,
    /// The audit policy (`audit.k8s.io/v1` `Policy`, YAML).
    pub policy: String,
    /// `blocking`: each request waits until its event was sent (in order, as the trail's links
    /// need; see docs/audit.md), or `batch`.
    pub mode: String,
}

impl AuditWebhook {
    /// Writes the policy and the webhook's kubeconfig into `dir` and returns the kube-apiserver
    /// flags that use them.
    pub fn write_files(&self, dir: &Path) -> Result<Vec<String>, Error> {
        let audit_dir = dir.join("audit");
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).map_err(|source| Error::Io {
                what: "writing",
                path: path.to_path_buf(),
                source,
            })
        };
        std::fs::create_dir_all(&audit_dir).map_err(|source| Error::Io {
            what: "creating",
            path: audit_dir.clone(),
            source,
        })?;
        let policy = audit_dir.join("policy.yaml");
        write(&policy, &self.policy)?;
        let ca = match &self.ca_pem {
            Some(pem) => {
                let path = audit_dir.join("webhook-ca.pem");
                write(&path, pem)?;
                format!("\n    certificate-authority: {}", path.display())
            }
            None => String::new(),
        };
        let kubeconfig = audit_dir.join("webhook.kubeconfig");
        write(
            &kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: audit\n  cluster:\n    server: {}{ca}\nusers:\n- name: apiserver\n  user: {{}}\ncontexts:\n- name: audit\n  context:\n    cluster: audit\n    user: apiserver\ncurrent-context: audit\n",
                self.url
            ),
        )?;
        Ok(vec![
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-webhook-config-file={}", kubeconfig.display()),
            format!("--audit-webhook-mode={}", self.mode),
            "--audit-webhook-initial-backoff=1s".into(),
            "--audit-webhook-batch-max-wait=1s".into(),
        ])
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dir: None,
            port: None,
            bin_dir: None,
            ready_timeout: Duration::from_secs(120),
            apiserver_args: Vec::new(),
            audit_webhook: None,
        }
    }
}

/// The folder the build script writes the binaries to, unless `NODEWRIGHT_TESTENV_BIN_DIR` says otherwise.
pub fn default_bin_dir() -> PathBuf {
    match std::env::var_os("NODEWRIGHT_TESTENV_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("bin"),
    }
}

/// Makes sure `nodewright-testenv` and `kubectl` exist in `bin_dir`, running `testenv/build.sh` when
/// they do not. The script is a no-op when its inputs have not changed and is safe to run in parallel.
pub fn ensure_built(bin_dir: &Path) -> Result<(), Error> {
    if std::env::var_os("NODEWRIGHT_TESTENV_BIN_DIR").is_some() {
        // Prebuilt binaries were named explicitly: use them as they are.
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Build {
            script: script.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Build {
            script,
            detail: tail(&String::from_utf8_lossy(&out.stderr), 20),
        });
    }
    for name in ["nodewright-testenv", "kubectl", "helm"] {
        if !bin_dir.join(name).is_file() {
            return Err(Error::Build {
                script,
                detail: format!("{name} missing from {}", bin_dir.display()),
            });
        }
    }
    Ok(())
}

/// A running control plane.
pub struct ControlPlane {
    dir: PathBuf,
    temporary: bool,
    bin_dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    options: Options,
    process: Mutex<Option<Process>>,
}

struct Process {
    child: Child,
    // Held open: the control plane exits when this end closes.
    stdin: Option<ChildStdin>,
}

impl ControlPlane {
    /// Starts a control plane and waits until it is ready. A start that fails because a free port was
    /// taken in the meantime is retried with fresh ports.
    pub fn start(options: Options) -> Result<ControlPlane, Error> {
        let bin_dir = options.bin_dir.clone().unwrap_or_else(default_bin_dir);
        if options.bin_dir.is_none() {
            ensure_built(&bin_dir)?;
        }
        let attempts = if options.dir.is_none() && options.port.is_none() {
            3
        } else {
            1
        };
        let mut last = None;
        for _ in 0..attempts {
            let (dir, temporary) = match &options.dir {
                Some(dir) => (dir.clone(), false),
                None => (fresh_temp_dir()?, true),
            };
            match spawn(&bin_dir, &dir, temporary, &options) {
                Ok((process, kubeconfig, server)) => {
                    return Ok(ControlPlane {
                        dir,
                        temporary,
                        bin_dir,
                        kubeconfig,
                        server,
                        options,
                        process: Mutex::new(Some(process)),
                    });
                }
                Err(e) => {
                    if temporary {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Start {
            dir: PathBuf::new(),
            detail: "no attempt made".into(),
        }))
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id of the running control plane, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|p| p.child.id())
    }

    /// The log of the control plane process.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("testenv.log")
    }

    /// A client with admin rights. Make one per async runtime: a client is bound to the runtime
    /// it was created on.
    pub async fn client(&self) -> Result<Client, Error> {
        client_from(&self.kubeconfig).await
    }

    /// A `kubectl` command (the one built with the control plane) pointed at this control plane.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST");
        cmd
    }

    /// Stops the API server and etcd gracefully (SIGKILL after 20 s). The state directory is kept
    /// for [`ControlPlane::start_again`].
    pub fn stop(&self) -> Result<(), Error> {
        self.halt(Halt::Terminate)
    }

    /// Kills the API server and etcd at once, as a crash would.
    pub fn kill(&self) -> Result<(), Error> {
        self.halt(Halt::Kill)
    }

    /// Starts the control plane again on the same state directory: same address, same
    /// credentials, same stored objects.
    pub fn start_again(&self) -> Result<(), Error> {
        let mut guard = self.process.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_some() {
            return Ok(());
        }
        let (process, _, _) = spawn(&self.bin_dir, &self.dir, self.temporary, &self.options)?;
        *guard = Some(process);
        Ok(())
    }

    fn halt(&self, how: Halt) -> Result<(), Error> {
        let mut guard = self.process.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut process) = guard.take() else {
            return Ok(());
        };
        match how {
            // SIGTERM: a graceful shutdown that keeps the state directory for `start_again`.
            Halt::Terminate => {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(process.child.id().to_string())
                    .stdin(Stdio::null())
                    .status();
            }
            Halt::Kill => {
                let _ = process.child.kill();
            }
            // Closing its standard input tells it that its owner is gone for good.
            Halt::Release => drop(process.stdin.take()),
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match process.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Ok(None) => {
                    let _ = process.child.kill();
                    let _ = process.child.wait();
                    return Ok(());
                }
                Err(source) => {
                    return Err(Error::Io {
                        what: "waiting for",
                        path: self.dir.clone(),
                        source,
                    });
                }
            }
        }
    }
}

enum Halt {
    Terminate,
    Kill,
    Release,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.halt(Halt::Release);
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn spawn(
    bin_dir: &Path,
    dir: &Path,
    temporary: bool,
    options: &Options,
) -> Result<(Process, PathBuf, String), Error> {
    let start_err = |detail: String| Error::Start {
        dir: dir.to_path_buf(),
        detail,
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        what: "creating",
        path: dir.to_path_buf(),
        source,
    })?;
    let log_path = dir.join("testenv.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| Error::Io {
            what: "opening",
            path: log_path.clone(),
            source,
        })?;
    let mut cmd = Command::new(bin_dir.join("nodewright-testenv"));
    cmd.arg(format!("--dir={}", dir.display()))
        .arg("--exit-on-stdin-close")
        .arg(format!("--ready-timeout={}s", options.ready_timeout.as_secs()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    if let Some(port) = options.port {
        cmd.arg(format!("--port={port}"));
    }
    if temporary {
        // When its owner goes away, so does its temporary directory.
        cmd.arg("--remove-dir-when-orphaned");
    }
    let mut apiserver_args = options.apiserver_args.clone();
    if let Some(webhook) = &options.audit_webhook {
        apiserver_args.extend(webhook.write_files(dir)?);
    }
    for arg in apiserver_args {
        cmd.arg(format!("--apiserver-arg={arg}"));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| start_err(format!("{}: {e}", bin_dir.join("nodewright-testenv").display())))?;
    let stdin = child.stdin.take();
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err(start_err("no stdout pipe".into()));
    };

    // The ready line is read on a thread so that the wait can time out.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let ready = match reader.read_line(&mut line) {
            Ok(n) if n > 0 => Some(line.trim().to_owned()),
            _ => None,
        };
        let _ = tx.send(ready);
        // Keep draining so the process never blocks on a full pipe.
        let _ = std::io::copy(&mut reader.take(u64::MAX), &mut std::io::sink());
    });

    let wait = options.ready_timeout + Duration::from_secs(10);
    let fail = |mut child: Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        start_err(format!(
            "{why}\n--- last lines of {} ---\n{}",
            log_path.display(),
            tail(&log, 30)
        ))
    };
    let line = match rx.recv_timeout(wait) {
        Ok(Some(line)) => line,
        Ok(None) => return Err(fail(child, "exited before it was ready".into())),
        Err(_) => return Err(fail(child, format!("not ready within {wait:?}"))),
    };
    let mut kubeconfig = None;
    let mut server = None;
    for field in line.split_whitespace().skip(1) {
        if let Some(v) = field.strip_prefix("kubeconfig=") {
            kubeconfig = Some(PathBuf::from(v));
        } else if let Some(v) = field.strip_prefix("server=") {
            server = Some(v.to_owned());
        }
    }
    match (line.starts_with("ready "), kubeconfig, server) {
        (true, Some(kubeconfig), Some(server)) => Ok((Process { child, stdin }, kubeconfig, server)),
        _ => Err(fail(child, format!("unexpected first line {line:?}"))),
    }
}

/// A client for the given kubeconfig.
pub async fn client_from(kubeconfig: &Path) -> Result<Client, Error> {
    let client_err = |detail: String| Error::Client {
        path: kubeconfig.to_path_buf(),
        detail,
    };
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| client_err(e.to_string()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| client_err(e.to_string()))?;
    Client::try_from(config).map_err(|e| client_err(e.to_string()))
}

/// A client for the given kubeconfig that acts as `user` with `groups` (impersonation; the
/// kubeconfig's user must be allowed to impersonate, as the control plane's admin is).
pub async fn client_as(kubeconfig: &Path, user: &str, groups: Vec<String>) -> Result<Client, Error> {
    let client_err = |detail: String| Error::Client {
        path: kubeconfig.to_path_buf(),
        detail,
    };
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| client_err(e.to_string()))?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| client_err(e.to_string()))?;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(groups);
    Client::try_from(config).map_err(|e| client_err(e.to_string()))
}

/// The groups a ServiceAccount's token in `namespace` carries.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".to_owned(),
    ]
}

/// Applies the CRDs (server-side apply, so re-running updates them) and waits until the API server
/// serves every one of them.
pub async fn install_crds(client: &Client, crds: &[CustomResourceDefinition]) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("nodewright-testenv").force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(crd))
            .await
            .map_err(|source| Error::Api {
                what: format!("applying CRD {name}"),
                source,
            })?;
    }
    let timeout = Duration::from_secs(30);
    let deadline = Instant::now() + timeout;
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            let current = api.get(&name).await.map_err(|source| Error::Api {
                what: format!("reading CRD {name}"),
                source,
            })?;
            let established = current
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: format!("CRD {name} to be established"),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Established CRDs are served at once, but their schemas reach the OpenAPI document a moment
    // later; `kubectl explain` and client-side validation need them there.
    for crd in crds {
        for version in &crd.spec.versions {
            let path = format!("/openapi/v3/apis/{}/{}", crd.spec.group, version.name);
            let schema = format!("\"{}.{}\"", reverse_domain(&crd.spec.group), version.name);
            let schema = format!("{}.{}\"", schema.trim_end_matches('"'), crd.spec.names.kind);
            loop {
                let request = http::Request::get(&path)
                    .body(Vec::new())
                    .map_err(|e| Error::Timeout {
                        what: format!("building a request for {path}: {e}"),
                        after: Duration::ZERO,
                    })?;
                if let Ok(text) = client.request_text(request).await
                    && text.contains(&schema)
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Timeout {
                        what: format!("{schema} in {path}"),
                        after: timeout,
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(())
}

/// `nodewright.io` → `io.nodewright`, the prefix of the group's schema names in OpenAPI.
fn reverse_domain(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

/// Server-side applies every document of a YAML stream, resolving each kind through discovery. A
/// `status` in a document is written through the status subresource after the object. With
/// `namespace`, namespaced objects go there whatever their documents say. Returns how many objects
/// were applied.
pub async fn apply_yaml(client: &Client, yaml: &str, namespace: Option<&str>) -> Result<usize, Error> {
    let invalid = |index: usize, detail: String| Error::Manifest {
        document: index + 1,
        detail,
    };
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|source| Error::Api {
            what: "discovering API resources".into(),
            source,
        })?;
    let params = PatchParams::apply("nodewright").force();
    let mut count = 0;
    for (index, document) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let value = serde_json::Value::deserialize(document).map_err(|e| invalid(index, e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let mut object: DynamicObject =
            serde_json::from_value(value).map_err(|e| invalid(index, e.to_string()))?;
        let types = object
            .types
            .clone()
            .ok_or_else(|| invalid(index, "no apiVersion/kind".into()))?;
        let gvk = GroupVersionKind::try_from(&types).map_err(|e| invalid(index, e.to_string()))?;
        let (resource, caps) = discovery
            .resolve_gvk(&gvk)
            .ok_or_else(|| invalid(index, format!("unknown kind {}", types.kind)))?;
        let name = object
            .metadata
            .name
            .clone()
            .ok_or_else(|| invalid(index, "no metadata.name".into()))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => {
                let ns = namespace
                    .or(object.metadata.namespace.as_deref())
                    .unwrap_or("default")
                    .to_owned();
                object.metadata.namespace = Some(ns.clone());
                Api::namespaced_with(client.clone(), &ns, &resource)
            }
        };
        let status = object.data.as_object_mut().and_then(|o| o.remove("status"));
        let what = format!("applying {} {name}", resource.kind);
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|source| Error::Api { what, source })?;
        if let Some(status) = status {
            let patch = serde_json::json!({"apiVersion": resource.api_version, "kind": resource.kind, "status": status});
            let what = format!("applying the status of {} {name}", resource.kind);
            api.patch_status(&name, &params, &Patch::Apply(&patch))
                .await
                .map_err(|source| Error::Api { what, source })?;
        }
        count += 1;
    }
    Ok(count)
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane shared by every test of this test binary, started on first use.
pub fn shared() -> Result<&'static ControlPlane, Error> {
    SHARED
        .get_or_init(|| ControlPlane::start(Options::default()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|detail| Error::Start {
            dir: PathBuf::new(),
            detail: detail.clone(),
        })
}

/// One test's view of the shared control plane: an admin client and a namespace of its own.
pub struct TestContext {
    /// Admin client, bound to the test's runtime.
    pub client: Client,
    /// A namespace created for this test only.
    pub namespace: String,
    /// The shared control plane.
    pub control_plane: &'static ControlPlane,
}

/// Creates the namespace `name` with `labels`.
pub async fn create_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) -> Result<(), Error> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .map_err(|source| Error::Api {
            what: format!("creating namespace {name}"),
            source,
        })?;
    Ok(())
}

impl TestContext {
    /// Starts (or reuses) the shared control plane and creates a fresh namespace named after `prefix`.
    pub async fn new(prefix: &str) -> Result<TestContext, Error> {
        let control_plane = shared()?;
        let client = control_plane.client().await?;
        let namespace = unique_name(prefix);
        create_namespace(&client, &namespace, &[("nodewright.io/test", "true")]).await?;
        Ok(TestContext {
            client,
            namespace,
            control_plane,
        })
    }

    /// An API for a namespaced resource in this test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// A `kubectl` command against the shared control plane, in this test's namespace.
    pub fn kubectl(&self) -> Command {
        let mut cmd = self.control_plane.kubectl();
        cmd.arg("--namespace").arg(&self.namespace);
        cmd
    }
}

/// A DNS-1123 name that is unique in this process and across processes: prefix, process id, counter.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("{}-{}-{n}", prefix.trim_matches('-'), std::process::id())
}

fn fresh_temp_dir() -> Result<PathBuf, Error> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("nodewright-testenv-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        what: "creating",
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `probe` every 200 ms until it returns `Some`, and returns that value; panics with `what`
/// when `timeout` passes first. For tests: a condition that holds eventually, never a fixed sleep.
#[allow(clippy::panic)]
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if std::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `GET <path>` on 127.0.0.1:`port` over plain HTTP/1.0, the whole response (head and body), or
/// the error when nothing answers (yet). For tests of admin servers. HTTP/1.0, so that a streamed
/// body comes as it is rather than in chunked transfer encoding.
pub async fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_dns_labels_and_differ() {
        let a = unique_name("Api CRDs_test");
        let b = unique_name("Api CRDs_test");
        assert_ne!(a, b);
        assert!(a.starts_with("api-crds-test-"));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn schema_names_use_the_reversed_group() {
        assert_eq!(reverse_domain("nodewright.io"), "io.nodewright");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
