//! A stand-in kubelet: just enough of the kubelet's HTTPS API for the API server's `pods/log`
//! subresource to work in tests, where no real kubelet runs.
//!
//! The API server proxies `GET /api/v1/namespaces/{ns}/pods/{pod}/log` to the kubelet at the pod's
//! Node — the Node's `InternalIP` and `status.daemonEndpoints.kubeletEndpoint.Port` — as
//! `GET /containerLogs/{ns}/{pod}/{container}`. [`StandInKubelet`] serves that path from in-memory
//! log buffers that a test fills with [`StandInKubelet::append`], honouring `follow`, `timestamps`,
//! `sinceTime`, `sinceSeconds`, `tailLines` and `limitBytes` the way the kubelet's CRI log reader
//! does. [`StandInKubelet::register_node`] and [`StandInKubelet::create_running_pod`] create the
//! Node and Pod objects that point the API server at it; [`StandInKubelet::stop`] and
//! [`StandInKubelet::restart`] cut every open stream, as a kubelet restart does.
//!
//! It serves TLS with a self-signed certificate: the control plane sets no
//! `--kubelet-certificate-authority`, so the API server does not verify kubelet serving certificates
//! (kubeadm's default too). It does not check the API server's client certificate either. It touches
//! only its own listener and, through the helpers, Node and Pod objects a test asks for.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec};
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// Errors of the stand-in kubelet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The self-signed certificate or the TLS configuration could not be made.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An API call of a helper failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The API error.
        source: kube::Error,
    },
}

/// One line of a container's log: when the container wrote it, and the line with its newline.
#[derive(Clone, Debug)]
struct LogLine {
    at: Timestamp,
    text: Bytes,
}

/// The log of one container. Followers hold it and wait on `version` for new lines.
struct ContainerLog {
    lines: Mutex<Vec<LogLine>>,
    version: watch::Sender<u64>,
    removed: AtomicBool,
}

impl ContainerLog {
    fn new() -> ContainerLog {
        ContainerLog {
            lines: Mutex::new(Vec::new()),
            version: watch::Sender::new(0),
            removed: AtomicBool::new(false),
        }
    }

    fn lines(&self) -> MutexGuard<'_, Vec<LogLine>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

/// namespace, pod, container.
type Key = (String, String, String);

#[derive(Default)]
struct Logs {
    containers: Mutex<HashMap<Key, Arc<ContainerLog>>>,
}

impl Logs {
    fn map(&self) -> MutexGuard<'_, HashMap<Key, Arc<ContainerLog>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_or_add(&self, key: Key) -> Arc<ContainerLog> {
        self.map()
            .entry(key)
            .or_insert_with(|| Arc::new(ContainerLog::new()))
            .clone()
    }
}

/// An HTTPS server on 127.0.0.1 that answers `/containerLogs/...` like a kubelet. Dropping it stops
/// the server. It must be started and used within a Tokio runtime.
pub struct StandInKubelet {
    logs: Arc<Logs>,
    port: u16,
    tls: TlsAcceptor,
    server: Mutex<Option<Server>>,
}

/// The running accept loop, and the signal that makes it close every connection and return.
struct Server {
    task: JoinHandle<()>,
    shutdown: oneshot::Sender<()>,
}

impl StandInKubelet {
    /// Starts serving on a free port of 127.0.0.1 with a fresh self-signed certificate.
    pub async fn start() -> Result<StandInKubelet, Error> {
        let tls = tls_acceptor()?;
        let listener = bind(0).await?;
        let port = listener
            .local_addr()
            .map_err(|source| Error::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?
            .port();
        let kubelet = StandInKubelet {
            logs: Arc::new(Logs::default()),
            port,
            tls,
            server: Mutex::new(None),
        };
        kubelet.serve(listener);
        Ok(kubelet)
    }

    /// The port it serves on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops serving and cuts every open connection, as a kubelet that goes down does; when it
    /// returns, no connection is open and nothing appended later reaches anyone. The logs are kept
    /// for [`StandInKubelet::restart`].
    pub async fn stop(&self) {
        let server = self.server().take();
        if let Some(server) = server {
            let _ = server.shutdown.send(());
            let _ = server.task.await;
        }
    }

    /// Stops, then serves again on the same port with the same logs: open streams are cut, new
    /// requests succeed.
    pub async fn restart(&self) -> Result<(), Error> {
        self.stop().await;
        // The port is free once the accept loop has returned; retry briefly all the same, in case
        // the kernel is slow to let go of it.
        let mut attempt = 0;
        let listener = loop {
            match bind(self.port).await {
                Ok(listener) => break listener,
                Err(e) if attempt >= 50 => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.serve(listener);
        Ok(())
    }

    /// Makes the container known with an empty log, so that requests for it succeed (a kubelet
    /// answers 404 for a container it does not run).
    pub fn add_container(&self, namespace: &str, pod: &str, container: &str) {
        self.logs.get_or_add(key(namespace, pod, container));
    }

    /// Forgets the container: open follow streams end, later requests get 404.
    pub fn remove_container(&self, namespace: &str, pod: &str, container: &str) {
        if let Some(log) = self.logs.map().remove(&key(namespace, pod, container)) {
            log.removed.store(true, Ordering::SeqCst);
            log.wake();
        }
    }

    /// Appends `text` to the container's log, each line stamped with the current time (never
    /// earlier than the log's last line, so that a log's timestamps never go backwards). A last
    /// line without a newline gets one: the log holds whole lines.
    pub fn append(&self, namespace: &str, pod: &str, container: &str, text: &str) {
        let log = self.logs.get_or_add(key(namespace, pod, container));
        let mut lines = log.lines();
        let now = Timestamp::now();
        let at = match lines.last() {
            Some(last) if last.at > now => last.at,
            _ => now,
        };
        push_lines(&mut lines, at, text);
        drop(lines);
        log.wake();
    }

    /// Appends `text` to the container's log with every line stamped `at`, for tests that need
    /// exact timestamps (several lines in one second, lines in the past for `sinceTime`).
    pub fn append_at(&self, namespace: &str, pod: &str, container: &str, at: Timestamp, text: &str) {
        let log = self.logs.get_or_add(key(namespace, pod, container));
        push_lines(&mut log.lines(), at, text);
        log.wake();
    }

    /// The container's log as `(timestamp, line without newline)` pairs, for assertions.
    pub fn lines(&self, namespace: &str, pod: &str, container: &str) -> Vec<(Timestamp, String)> {
        let Some(log) = self.logs.map().get(&key(namespace, pod, container)).cloned() else {
            return Vec::new();
        };
        log.lines()
            .iter()
            .map(|l| {
                let text = String::from_utf8_lossy(&l.text);
                (l.at, text.trim_end_matches('\n').to_owned())
            })
            .collect()
    }

    /// Creates a Node whose status points the API server at this stand-in: `InternalIP` 127.0.0.1
    /// (the only address, so that the API server's preferred address types pick it), the kubelet
    /// port, and a `Ready` condition. The status is written through the status subresource, as a
    /// kubelet does.
    pub async fn register_node(&self, client: &Client, name: &str) -> Result<Node, Error> {
        let nodes: Api<Node> = Api::all(client.clone());
        let node = Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some([("kubernetes.io/hostname".to_owned(), name.to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        nodes
            .create(&PostParams::default(), &node)
            .await
            .map_err(|source| Error::Api {
                what: format!("creating node {name}"),
                source,
            })?;
        self.point_node(client, name).await
    }

    /// Points an existing Node at this stand-in, as its kubelet would report itself: the status's
    /// only address `InternalIP` 127.0.0.1, the kubelet port and a `Ready` condition.
    pub async fn point_node(&self, client: &Client, name: &str) -> Result<Node, Error> {
        let nodes: Api<Node> = Api::all(client.clone());
        let status = serde_json::json!({
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                "conditions": [{
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "stand-in kubelet is serving",
                    "lastHeartbeatTime": Timestamp::now().to_string(),
                    "lastTransitionTime": Timestamp::now().to_string(),
                }],
            }
        });
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(|source| Error::Api {
                what: format!("writing the status of node {name}"),
                source,
            })
    }

    /// Creates a Pod bound to `node` (`spec.nodeName`, as the scheduler would set) with one
    /// container, marks it Running through the status subresource, and makes the container known
    /// here with an empty log.
    pub async fn create_running_pod(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
        node: &str,
        container: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Pod, Error> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.to_owned()),
                containers: vec![Container {
                    name: container.to_owned(),
                    image: Some("registry.invalid/stand-in:1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        self.add_container(namespace, name, container);
        pods.create(&PostParams::default(), &pod)
            .await
            .map_err(|source| Error::Api {
                what: format!("creating pod {namespace}/{name}"),
                source,
            })?;
        let now = Timestamp::now().to_string();
        let status = serde_json::json!({
            "status": {
                "phase": "Running",
                "hostIP": "127.0.0.1",
                "startTime": now,
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                "containerStatuses": [{
                    "name": container,
                    "image": "registry.invalid/stand-in:1",
                    "imageID": "",
                    "ready": true,
                    "restartCount": 0,
                    "started": true,
                    "state": {"running": {"startedAt": now}},
                }],
            }
        });
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(|source| Error::Api {
                what: format!("writing the status of pod {namespace}/{name}"),
                source,
            })
    }

    /// Deletes a pod at once (grace period 0). A graceful delete of a pod bound to a node only sets
    /// `deletionTimestamp` and waits for the kubelet to confirm, which this stand-in does not do.
    pub async fn delete_pod_now(client: &Client, namespace: &str, name: &str) -> Result<(), Error> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        pods.delete(
            name,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
        .map_err(|source| Error::Api {
            what: format!("deleting pod {namespace}/{name}"),
            source,
        })
    }

    fn server(&self) -> MutexGuard<'_, Option<Server>> {
        self.server.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, listener: TcpListener) {
        let logs = self.logs.clone();
        let tls = self.tls.clone();
        let (shutdown, mut shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut shutdown_rx => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        connections.spawn(serve_connection(tls.clone(), tcp, logs.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            drop(listener);
            // Aborts every connection and waits until each is gone.
            connections.shutdown().await;
        });
        if let Some(old) = self.server().replace(Server { task, shutdown }) {
            old.task.abort();
        }
    }
}

impl Drop for StandInKubelet {
    fn drop(&mut self) {
        if let Some(server) = self.server().take() {
            // Aborting the accept loop drops its JoinSet, which aborts every connection task.
            server.task.abort();
        }
    }
}

fn key(namespace: &str, pod: &str, container: &str) -> Key {
    (namespace.to_owned(), pod.to_owned(), container.to_owned())
}

fn push_lines(lines: &mut Vec<LogLine>, at: Timestamp, text: &str) {
    for line in text.split_inclusive('\n') {
        let mut line = line.to_owned();
        if !line.ends_with('\n') {
            line.push('\n');
        }
        lines.push(LogLine {
            at,
            text: Bytes::from(line),
        });
    }
}

async fn bind(port: u16) -> Result<TcpListener, Error> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// A TLS acceptor with a fresh self-signed certificate for 127.0.0.1 and localhost, on ring.
fn tls_acceptor() -> Result<TlsAcceptor, Error> {
    let tls_err = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(|e| tls_err(&e))?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| tls_err(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn serve_connection(tls: TlsAcceptor, tcp: tokio::net::TcpStream, logs: Arc<Logs>) {
    let Ok(stream) = tls.accept(tcp).await else {
        return;
    };
    let service = hyper::service::service_fn(move |req| {
        let logs = logs.clone();
        async move { Ok::<_, Infallible>(handle(&logs, req)) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn text_response(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
    *response.status_mut() = status;
    response
}

/// What a `/containerLogs` request asks for, parsed from its query as the kubelet does.
#[derive(Debug, Default, PartialEq)]
struct LogOptions {
    follow: bool,
    timestamps: bool,
    since: Option<Timestamp>,
    tail_lines: Option<usize>,
    limit_bytes: Option<usize>,
    previous: bool,
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    // Go's strconv.ParseBool, which the kubelet's parameter decoding uses.
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("{name}: invalid boolean {value:?}")),
    }
}

fn parse_options(query: &str, now: Timestamp) -> Result<LogOptions, String> {
    let mut o = LogOptions::default();
    let mut since_seconds = None;
    let mut since_time = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "follow" => o.follow = parse_bool(&name, &value)?,
            "timestamps" => o.timestamps = parse_bool(&name, &value)?,
            "previous" => o.previous = parse_bool(&name, &value)?,
            "sinceTime" => {
                since_time = Some(
                    value
                        .parse::<Timestamp>()
                        .map_err(|e| format!("sinceTime: {e}"))?,
                );
            }
            "sinceSeconds" => {
                let s: i64 = value.parse().map_err(|e| format!("sinceSeconds: {e}"))?;
                if s < 1 {
                    return Err("sinceSeconds: must be greater than 0".into());
                }
                since_seconds = Some(s);
            }
            // `tail` is the kubelet's legacy spelling; "all" means no limit.
            "tailLines" | "tail" if value == "all" => o.tail_lines = None,
            "tailLines" | "tail" => {
                let n: i64 = value.parse().map_err(|e| format!("tailLines: {e}"))?;
                o.tail_lines = Some(usize::try_from(n).map_err(|_| "tailLines: must be >= 0".to_owned())?);
            }
            "limitBytes" => {
                let n: i64 = value.parse().map_err(|e| format!("limitBytes: {e}"))?;
                if n < 1 {
                    return Err("limitBytes: must be greater than 0".into());
                }
                o.limit_bytes = usize::try_from(n).ok();
            }
            _ => {}
        }
    }
    o.since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => return Err("at most one of sinceTime or sinceSeconds may be specified".into()),
        (Some(s), None) => now.checked_sub(jiff::SignedDuration::from_secs(s)).ok(),
        (None, t) => t,
    };
    Ok(o)
}

/// The line as the kubelet writes it: with `timestamps`, an RFC3339 timestamp with nine fractional
/// digits (the kubelet's fixed-width RFC3339Nano) and a space before it.
fn render(line: &LogLine, timestamps: bool) -> Bytes {
    if !timestamps {
        return line.text.clone();
    }
    let mut out = format_timestamp(line.at).into_bytes();
    out.push(b' ');
    out.extend_from_slice(&line.text);
    Bytes::from(out)
}

/// `2006-01-02T15:04:05.000000000Z`, the kubelet's `RFC3339NanoFixed` in UTC.
pub fn format_timestamp(at: Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        at.strftime("%Y-%m-%dT%H:%M:%S"),
        at.subsec_nanosecond()
    )
}

fn handle(logs: &Logs, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/containerLogs/") else {
        return text_response(StatusCode::NOT_FOUND, "404 page not found\n".into());
    };
    if req.method() != Method::GET {
        return text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n".into());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let [namespace, pod, container] = parts[..] else {
        return text_response(StatusCode::NOT_FOUND, "404 page not found\n".into());
    };
    let options = match parse_options(req.uri().query().unwrap_or(""), Timestamp::now()) {
        Ok(o) => o,
        Err(e) => return text_response(StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")),
    };
    let log = {
        let map = logs.map();
        match map.get(&key(namespace, pod, container)) {
            Some(log) => log.clone(),
            None if map.keys().any(|(n, p, _)| n == namespace && p == pod) => {
                return text_response(
                    StatusCode::NOT_FOUND,
                    format!("container {container:?} not found in pod {pod:?}\n"),
                );
            }
            None => return text_response(StatusCode::NOT_FOUND, format!("pod {pod:?} does not exist\n")),
        }
    };
    if options.previous {
        return text_response(
            StatusCode::BAD_REQUEST,
            format!("previous terminated container {container:?} in pod {pod:?} not found\n"),
        );
    }
    let mut response = Response::new(log_body(log, options));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    response
}

/// Where a reader of a log is: the next line index, the bytes it may still send.
struct Reader {
    log: Arc<ContainerLog>,
    version: watch::Receiver<u64>,
    next: usize,
    remaining: Option<usize>,
    options: LogOptions,
    done: bool,
}

/// The response body: the lines from the tail (or the start) on, filtered by `since`, then, with
/// `follow`, each new line as it is appended until the container is removed or the client goes away
/// (the body is dropped with the connection).
fn log_body(log: Arc<ContainerLog>, options: LogOptions) -> Body {
    let version = log.version.subscribe();
    let next = match options.tail_lines {
        Some(n) => log.lines().len().saturating_sub(n),
        None => 0,
    };
    let reader = Reader {
        log,
        version,
        next,
        remaining: options.limit_bytes,
        options,
        done: false,
    };
    let stream = futures::stream::unfold(reader, |mut r| async move {
        loop {
            if r.done {
                return None;
            }
            // Mark the current version seen before reading, so an append after the read wakes us.
            r.version.borrow_and_update();
            let batch: Vec<LogLine> = r.log.lines().get(r.next..).unwrap_or_default().to_vec();
            r.next += batch.len();
            let mut out = Vec::new();
            for line in batch.iter().filter(|l| r.options.since.is_none_or(|s| l.at >= s)) {
                out.extend_from_slice(&render(line, r.options.timestamps));
            }
            if let Some(remaining) = r.remaining.as_mut() {
                out.truncate(*remaining);
                *remaining -= out.len();
                if *remaining == 0 {
                    r.done = true;
                }
            }
            if !out.is_empty() {
                return Some((Ok(Frame::data(Bytes::from(out))), r));
            }
            if !r.options.follow || r.log.removed.load(Ordering::SeqCst) {
                return None;
            }
            if r.version.changed().await.is_err() {
                return None;
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(stream.boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn timestamps_have_nine_fractional_digits_in_utc() {
        assert_eq!(
            format_timestamp(ts("2026-11-29T16:04:06.5Z")),
            "2026-11-29T16:04:06.500000000Z"
        );
        assert_eq!(
            format_timestamp(ts("2026-11-29T17:04:06+01:00")),
            "2026-11-29T16:04:06.000000000Z"
        );
    }

    #[test]
    fn options_parse_as_the_kubelet_decodes_them() {
        let now = ts("2026-11-29T16:00:00Z");
        let o = parse_options(
            "follow=true&timestamps=1&sinceTime=2026-11-29T15%3A59%3A00Z&tailLines=3&limitBytes=10",
            now,
        )
        .unwrap();
        assert_eq!(
            o,
            LogOptions {
                follow: true,
                timestamps: true,
                since: Some(ts("2026-11-29T15:59:00Z")),
                tail_lines: Some(3),
                limit_bytes: Some(10),
                previous: false,
            }
        );
        let o = parse_options("sinceSeconds=60&tail=all", now).unwrap();
        assert_eq!(o.since, Some(ts("2026-11-29T15:59:00Z")));
        assert_eq!(o.tail_lines, None);
        assert!(parse_options("sinceSeconds=1&sinceTime=2026-11-29T15:59:00Z", now).is_err());
        assert!(parse_options("tailLines=-1", now).is_err());
        assert!(parse_options("follow=yes", now).is_err());
    }

    #[test]
    fn appended_text_is_split_into_whole_lines() {
        let mut lines = Vec::new();
        push_lines(&mut lines, ts("2026-11-29T16:00:00Z"), "a\nb\nc");
        let texts: Vec<&[u8]> = lines.iter().map(|l| &l.text[..]).collect();
        assert_eq!(texts, [&b"a\n"[..], b"b\n", b"c\n"]);
    }
}
