//! The legacy pods' logs through the `pods/log` API: one follow task per pod of the legacy
//! DaemonSet, each resuming after a cut stream without losing or repeating a line.
//!
//! [`LogSource::start`] watches the Pods that match the DaemonSet's selector (or a given label
//! selector) and follows the log of every pod bound to a node, sending [`LogEvent`]s on one channel:
//! `Started`, then `Chunk`s of the container's raw output (whole lines, timestamps stripped), then
//! `Ended` once the pod is deleted. The events of one pod come in that order; those of different pods
//! interleave.
//!
//! Resuming: every request asks for `timestamps=true`. [`PodLogState`] (pure, no I/O) splits the
//! timestamp off each line and remembers the last timestamp delivered and how many lines carried
//! exactly that timestamp. A new stream starts at `sinceTime` = that timestamp rounded down to the
//! second (the API's precision), and the lines it repeats — those before the last timestamp, and the
//! first `n` at it — are dropped. This relies on a container's log timestamps never going backwards,
//! which holds for the kubelet's log files barring a clock step on the node; a line with no readable
//! timestamp is passed on whole and cannot be deduplicated. An unfinished line at the end of a cut
//! stream is held back: the next stream repeats it whole. So a pod's last line is delivered only
//! once it ends with a newline.
//!
//! A pod is followed from the first watch event that shows it bound to a node (`spec.nodeName`, its
//! node in every event) until its deletion; a stream that ends while the pod exists (a kubelet
//! restart, a container restart, an error) is reconnected with doubling, jittered backoff.
//!
//! This module reads Pods, one DaemonSet and `pods/log`; it writes nothing.

use nodewright_kit::backoff::Backoff;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Errors of the log source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The DaemonSet whose pods to follow could not be read.
    #[error("reading DaemonSet {namespace}/{name}: {source}")]
    DaemonSet {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// A label selector cannot be written as a selector string.
    #[error("label selector: {0}")]
    Selector(String),
}

/// Which pods to follow.
#[derive(Clone, Debug)]
pub enum PodSelector {
    /// The pods of this DaemonSet (in the configured namespace), chosen by its `spec.selector`.
    DaemonSet(String),
    /// The pods matching this label selector string, e.g. `app=vx-rail-node-init`.
    Labels(String),
}

/// How to follow the logs.
#[derive(Clone, Debug)]
pub struct LogSourceConfig {
    /// The namespace of the pods (and of the DaemonSet).
    pub namespace: String,
    /// Which pods.
    pub pods: PodSelector,
    /// The container whose log to follow; `None` lets the API server pick the pod's only container.
    pub container: Option<String>,
    /// The first wait before reconnecting a cut stream; it doubles on each failure in a row, with
    /// jitter (see [`Backoff`]).
    pub initial_backoff: Duration,
    /// The longest wait before reconnecting.
    pub max_backoff: Duration,
    /// Reconnect a stream that has been silent this long. Neither kube's client nor the API server
    /// times out a follow stream, so a connection that died without a reset (a node powered off)
    /// would otherwise hang for ever; reconnecting a healthy quiet stream costs a repeat of the last
    /// second's lines, which are dropped. `None` never reconnects a quiet stream.
    pub idle_timeout: Option<Duration>,
    /// How many events may wait in the channel before the follow tasks wait for the consumer.
    pub channel_capacity: usize,
}

impl LogSourceConfig {
    /// Follows the pods of the DaemonSet `daemon_set` in `namespace`, with default backoff and capacity.
    pub fn daemon_set(namespace: &str, daemon_set: &str) -> LogSourceConfig {
        LogSourceConfig {
            namespace: namespace.to_owned(),
            pods: PodSelector::DaemonSet(daemon_set.to_owned()),
            container: None,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            channel_capacity: 1024,
        }
    }

    /// Follows the pods matching `selector` in `namespace`, with default backoff and capacity.
    pub fn labels(namespace: &str, selector: &str) -> LogSourceConfig {
        LogSourceConfig {
            pods: PodSelector::Labels(selector.to_owned()),
            ..LogSourceConfig::daemon_set(namespace, "")
        }
    }
}

/// Output of a pod's log, as the container wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// The node the pod runs on (`spec.nodeName`).
    pub node: String,
    /// The pod.
    pub pod: String,
    /// One or more whole lines, each with its newline, without the API's timestamp prefix.
    pub bytes: Vec<u8>,
}

/// What the log source reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent {
    /// A pod was found and its log is being followed; its chunks follow.
    Started {
        /// The node the pod runs on.
        node: String,
        /// The pod.
        pod: String,
    },
    /// New output of a pod.
    Chunk(LogChunk),
    /// The pod is gone: no more chunks of it will come.
    Ended {
        /// The node the pod ran on.
        node: String,
        /// The pod.
        pod: String,
    },
}

/// A running log source. Dropping it stops the watch and every follow task.
pub struct LogSource {
    task: JoinHandle<()>,
}

impl LogSource {
    /// Resolves the pod selector (reading the DaemonSet once, if one is named) and starts watching
    /// and following. Returns the handle and the channel of events; the source also stops when the
    /// receiver is dropped.
    pub async fn start(
        client: Client,
        config: LogSourceConfig,
    ) -> Result<(LogSource, mpsc::Receiver<LogEvent>), Error> {
        let selector = match &config.pods {
            PodSelector::Labels(selector) => selector.clone(),
            PodSelector::DaemonSet(name) => {
                let daemon_sets: Api<DaemonSet> = Api::namespaced(client.clone(), &config.namespace);
                let ds = daemon_sets.get(name).await.map_err(|source| Error::DaemonSet {
                    namespace: config.namespace.clone(),
                    name: name.clone(),
                    source,
                })?;
                selector_string(&ds.spec.selector)?
            }
        };
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let task = tokio::spawn(run(client, config, selector, tx));
        Ok((LogSource { task }, rx))
    }

    /// Stops the watch and every follow task at once (no `Ended` events are sent).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for LogSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A label selector as the API's `labelSelector` string: `k=v`, `k in (a,b)`, `k notin (a,b)`,
/// `k`, `!k`, joined by commas. An empty selector selects everything, as in the API.
pub fn selector_string(selector: &LabelSelector) -> Result<String, Error> {
    let mut terms: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        terms.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => {
                return Err(Error::Selector(format!(
                    "unknown operator {other:?} for key {}",
                    e.key
                )));
            }
        });
    }
    Ok(terms.join(","))
}

// ---------------------------------------------------------------------------------------------
// Pure: which pods to follow.
// ---------------------------------------------------------------------------------------------

/// A pod whose log is followed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FollowedPod {
    /// The pod's UID: a pod deleted and created again under its name is another pod.
    pub uid: String,
    /// The pod's name.
    pub name: String,
    /// Its node.
    pub node: String,
}

/// What the watch means for the follow tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowAction {
    /// Start following this pod.
    Start(FollowedPod),
    /// Stop following this pod.
    Stop(FollowedPod),
}

/// The pods being followed, fed by the Pod watch. Pure: it decides, the caller acts.
#[derive(Debug, Default)]
pub struct FollowIndex {
    followed: BTreeMap<String, FollowedPod>,
    /// UIDs listed since the watch (re)started, until `InitDone`.
    relisting: Option<HashSet<String>>,
}

impl FollowIndex {
    /// The actions one watch event calls for. A pod is followed from the first event that shows it
    /// bound to a node until it is deleted, or is missing from a relist.
    pub fn event(&mut self, event: Event<Pod>) -> Vec<FollowAction> {
        match event {
            Event::Init => {
                self.relisting = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(pod) => {
                if let Some(seen) = self.relisting.as_mut() {
                    seen.insert(pod.uid().unwrap_or_default());
                }
                self.apply(&pod)
            }
            Event::Apply(pod) => self.apply(&pod),
            Event::Delete(pod) => self.delete(&pod.uid().unwrap_or_default()),
            Event::InitDone => {
                let seen = self.relisting.take().unwrap_or_default();
                let gone: Vec<String> = self
                    .followed
                    .keys()
                    .filter(|uid| !seen.contains(*uid))
                    .cloned()
                    .collect();
                gone.iter().flat_map(|uid| self.delete(uid)).collect()
            }
        }
    }

    /// The pods followed now.
    pub fn followed(&self) -> impl Iterator<Item = &FollowedPod> {
        self.followed.values()
    }

    fn apply(&mut self, pod: &Pod) -> Vec<FollowAction> {
        let (Some(uid), Some(node)) = (pod.uid(), pod.spec.as_ref().and_then(|s| s.node_name.clone())) else {
            // Not bound to a node yet: there is no log to read.
            return Vec::new();
        };
        if self.followed.contains_key(&uid) {
            return Vec::new();
        }
        let followed = FollowedPod {
            uid: uid.clone(),
            name: pod.name_any(),
            node,
        };
        self.followed.insert(uid, followed.clone());
        vec![FollowAction::Start(followed)]
    }

    fn delete(&mut self, uid: &str) -> Vec<FollowAction> {
        self.followed
            .remove(uid)
            .map(FollowAction::Stop)
            .into_iter()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Pure: timestamps, framing and deduplication of one pod's log.
// ---------------------------------------------------------------------------------------------

/// Splits a line of a `timestamps=true` log into its timestamp and the rest (the container's own
/// bytes, with the newline if it had one). `None` if the line does not start with an RFC 3339
/// timestamp and a space.
pub fn split_timestamp(line: &[u8]) -> Option<(Timestamp, &[u8])> {
    let space = line.iter().position(|&b| b == b' ')?;
    let stamp = std::str::from_utf8(&line[..space]).ok()?;
    let at = stamp.parse::<Timestamp>().ok()?;
    Some((at, &line[space + 1..]))
}

/// Where a pod's log has been read to, across streams: the timestamp of the last line delivered,
/// how many delivered lines carry exactly that timestamp, and the unfinished end of the current
/// stream.
#[derive(Clone, Debug, Default)]
pub struct PodLogState {
    last: Option<Timestamp>,
    delivered_at_last: usize,
    /// Lines at `last` still to drop in the current stream, which repeats them.
    to_skip: usize,
    /// Bytes after the last newline of the current stream.
    partial: Vec<u8>,
}

impl PodLogState {
    /// The `sinceTime` for the next stream: the last delivered timestamp rounded down to the
    /// second, so that no line after it is missed; `None` before anything was delivered.
    pub fn since_time(&self) -> Option<Timestamp> {
        self.last.and_then(|t| Timestamp::from_second(t.as_second()).ok())
    }

    /// Starts a new stream (requested with [`PodLogState::since_time`]): an unfinished line of the
    /// previous stream is dropped, since the new one repeats it whole.
    pub fn begin_stream(&mut self) {
        self.partial.clear();
        self.to_skip = self.delivered_at_last;
    }

    /// Takes the next bytes of the current stream and returns the container output to deliver:
    /// the new whole lines, without their timestamps.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        self.partial.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line_end = start + end + 1;
            let line = &self.partial[start..line_end];
            match split_timestamp(line) {
                Some((at, text)) => {
                    if Self::accept(&mut self.last, &mut self.delivered_at_last, &mut self.to_skip, at) {
                        out.extend_from_slice(text);
                    }
                }
                None => out.extend_from_slice(line),
            }
            start = line_end;
        }
        self.partial.drain(..start);
        out
    }

    /// Whether a line stamped `at` is new, recording it if so.
    fn accept(last: &mut Option<Timestamp>, at_last: &mut usize, to_skip: &mut usize, at: Timestamp) -> bool {
        match *last {
            Some(l) if at < l => false,
            Some(l) if at == l && *to_skip > 0 => {
                *to_skip -= 1;
                false
            }
            Some(l) if at == l => {
                *at_last += 1;
                true
            }
            _ => {
                *last = Some(at);
                *at_last = 1;
                *to_skip = 0;
                true
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// I/O: the watch and the follow tasks.
// ---------------------------------------------------------------------------------------------

async fn run(client: Client, config: LogSourceConfig, selector: String, tx: mpsc::Sender<LogEvent>) {
    let pods: Api<Pod> = Api::namespaced(client, &config.namespace);
    let mut events = watcher(pods.clone(), &selector);
    let mut index = FollowIndex::default();
    let mut stops: HashMap<String, watch::Sender<bool>> = HashMap::new();
    // Dropped with this future, which aborts every follow task.
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            event = events.next() => match event {
                None => break,
                Some(Err(e)) => tracing::warn!(error = %e, "watching the legacy pods; retrying"),
                Some(Ok(event)) => {
                    for action in index.event(event) {
                        match action {
                            FollowAction::Start(pod) => {
                                let (stop_tx, stop_rx) = watch::channel(false);
                                stops.insert(pod.uid.clone(), stop_tx);
                                tasks.spawn(follow(pods.clone(), pod, config.clone(), tx.clone(), stop_rx));
                            }
                            FollowAction::Stop(pod) => {
                                if let Some(stop) = stops.remove(&pod.uid) {
                                    let _ = stop.send(true);
                                }
                            }
                        }
                    }
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = tx.closed() => break,
        }
    }
}

fn watcher(
    pods: Api<Pod>,
    selector: &str,
) -> futures::stream::BoxStream<'static, Result<Event<Pod>, watcher::Error>> {
    watcher::watcher(pods, watcher::Config::default().labels(selector))
        .default_backoff()
        .boxed()
}

/// Why reading one stream stopped.
enum StreamEnd {
    /// The stream ended or failed; reconnect. Whether it delivered anything.
    Cut { delivered: bool },
    /// The consumer is gone: stop for good.
    ReceiverGone,
}

/// Follows one pod's log until told to stop, reconnecting with backoff, then sends `Ended`.
async fn follow(
    pods: Api<Pod>,
    pod: FollowedPod,
    config: LogSourceConfig,
    tx: mpsc::Sender<LogEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let started = LogEvent::Started {
        node: pod.node.clone(),
        pod: pod.name.clone(),
    };
    if tx.send(started).await.is_err() {
        return;
    }
    let mut state = PodLogState::default();
    let mut backoff = Backoff::new(config.initial_backoff, config.max_backoff);
    loop {
        let params = LogParams {
            container: config.container.clone(),
            follow: true,
            timestamps: true,
            since_time: state.since_time(),
            ..Default::default()
        };
        state.begin_stream();
        let end = tokio::select! {
            end = read_stream(&pods, &pod, &params, config.idle_timeout, &mut state, &tx) => end,
            _ = stop.wait_for(|s| *s) => break,
        };
        match end {
            StreamEnd::ReceiverGone => return,
            StreamEnd::Cut { delivered: true } => backoff.reset(),
            StreamEnd::Cut { delivered: false } => {}
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    let _ = tx
        .send(LogEvent::Ended {
            node: pod.node,
            pod: pod.name,
        })
        .await;
}

async fn read_stream(
    pods: &Api<Pod>,
    pod: &FollowedPod,
    params: &LogParams,
    idle_timeout: Option<Duration>,
    state: &mut PodLogState,
    tx: &mpsc::Sender<LogEvent>,
) -> StreamEnd {
    let mut delivered = false;
    let reader = match pods.log_stream(&pod.name, params).await {
        Ok(reader) => reader,
        Err(e) => {
            tracing::debug!(pod = %pod.name, error = %e, "opening the log stream");
            return StreamEnd::Cut { delivered };
        }
    };
    // Boxed: `fill_buf` needs an `Unpin` reader, and the stream's type does not promise it.
    let mut reader = Box::pin(reader);
    loop {
        let read = reader.fill_buf();
        let read = match idle_timeout {
            Some(idle) => match tokio::time::timeout(idle, read).await {
                Ok(read) => read,
                Err(_) => {
                    tracing::debug!(pod = %pod.name, "log stream silent for {idle:?}; reconnecting");
                    return StreamEnd::Cut { delivered };
                }
            },
            None => read.await,
        };
        let data = match read {
            Ok([]) => return StreamEnd::Cut { delivered },
            Ok(data) => data,
            Err(e) => {
                tracing::debug!(pod = %pod.name, error = %e, "reading the log stream");
                return StreamEnd::Cut { delivered };
            }
        };
        let n = data.len();
        let bytes = state.push(data);
        reader.consume_unpin(n);
        if bytes.is_empty() {
            continue;
        }
        let chunk = LogChunk {
            node: pod.node.clone(),
            pod: pod.name.clone(),
            bytes,
        };
        if tx.send(LogEvent::Chunk(chunk)).await.is_err() {
            return StreamEnd::ReceiverGone;
        }
        delivered = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_timestamp_prefix_is_split_from_the_line() {
        let (at, rest) = split_timestamp(b"2026-11-29T16:04:06.123456789Z step 1 of 3\n").unwrap();
        assert_eq!(at, ts("2026-11-29T16:04:06.123456789Z"));
        assert_eq!(rest, b"step 1 of 3\n");
        let (at, rest) = split_timestamp(b"2026-11-29T16:04:06Z \n").unwrap();
        assert_eq!(at, ts("2026-11-29T16:04:06Z"));
        assert_eq!(rest, b"\n");
        assert_eq!(split_timestamp(b"no timestamp here\n"), None);
        assert_eq!(split_timestamp(b"2026-11-29T16:04:06Z"), None);
    }

    #[test]
    fn lines_are_delivered_whole_and_without_timestamps() {
        let mut state = PodLogState::default();
        state.begin_stream();
        assert_eq!(
            text(state.push(b"2026-11-29T16:00:00.1Z a\n2026-11-29T16:00:00.2Z b")),
            "a\n"
        );
        assert_eq!(text(state.push(b"c\n2026-11-29T16:00:01Z d\n")), "bc\nd\n");
        assert_eq!(state.since_time(), Some(ts("2026-11-29T16:00:01Z")));
    }

    #[test]
    fn the_first_stream_starts_at_the_beginning() {
        assert_eq!(PodLogState::default().since_time(), None);
    }

    #[test]
    fn a_resumed_stream_drops_what_was_delivered_within_the_same_second() {
        let mut state = PodLogState::default();
        state.begin_stream();
        let first = "2026-11-29T16:00:00.1Z a\n2026-11-29T16:00:00.5Z b\n2026-11-29T16:00:00.5Z c\n";
        assert_eq!(text(state.push(first.as_bytes())), "a\nb\nc\n");
        // Cut in the middle of a line: the unfinished line is not delivered...
        assert!(state.push(b"2026-11-29T16:00:00.5Z d-unfini").is_empty());
        // ...and the next stream, from the second of the last line, repeats it whole.
        assert_eq!(state.since_time(), Some(ts("2026-11-29T16:00:00Z")));
        state.begin_stream();
        let second = format!("{first}2026-11-29T16:00:00.5Z d-unfinished\n2026-11-29T16:00:02Z e\n");
        assert_eq!(text(state.push(second.as_bytes())), "d-unfinished\ne\n");
        // A third stream after "e" repeats only "e".
        state.begin_stream();
        assert!(state.push(b"2026-11-29T16:00:02Z e\n").is_empty());
        assert_eq!(text(state.push(b"2026-11-29T16:00:02Z f\n")), "f\n");
    }

    #[test]
    fn identical_lines_with_identical_timestamps_are_counted_not_merged() {
        let mut state = PodLogState::default();
        state.begin_stream();
        let line = b"2026-11-29T16:00:00Z same\n";
        assert_eq!(text(state.push(line)), "same\n");
        assert_eq!(text(state.push(line)), "same\n");
        state.begin_stream();
        assert!(state.push(line).is_empty());
        assert!(state.push(line).is_empty());
        assert_eq!(text(state.push(line)), "same\n");
    }

    #[test]
    fn a_line_without_a_timestamp_is_passed_on_whole() {
        let mut state = PodLogState::default();
        state.begin_stream();
        assert_eq!(text(state.push(b"plain\n")), "plain\n");
        assert_eq!(state.since_time(), None);
    }

    fn pod(uid: &str, name: &str, node: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn followed(uid: &str, name: &str, node: &str) -> FollowedPod {
        FollowedPod {
            uid: uid.into(),
            name: name.into(),
            node: node.into(),
        }
    }

    #[test]
    fn a_pod_is_followed_once_bound_and_until_deleted() {
        let mut index = FollowIndex::default();
        assert_eq!(index.event(Event::Apply(pod("u1", "p1", None))), []);
        let start = vec![FollowAction::Start(followed("u1", "p1", "n1"))];
        assert_eq!(index.event(Event::Apply(pod("u1", "p1", Some("n1")))), start);
        assert_eq!(index.event(Event::Apply(pod("u1", "p1", Some("n1")))), []);
        let stop = vec![FollowAction::Stop(followed("u1", "p1", "n1"))];
        assert_eq!(index.event(Event::Delete(pod("u1", "p1", Some("n1")))), stop);
        assert_eq!(index.event(Event::Delete(pod("u1", "p1", Some("n1")))), []);
    }

    #[test]
    fn a_pod_missing_from_a_relist_is_stopped_and_a_new_one_started() {
        let mut index = FollowIndex::default();
        index.event(Event::Apply(pod("u1", "p1", Some("n1"))));
        index.event(Event::Apply(pod("u2", "p2", Some("n2"))));
        assert_eq!(index.event(Event::Init), []);
        assert_eq!(index.event(Event::InitApply(pod("u2", "p2", Some("n2")))), []);
        assert_eq!(
            index.event(Event::InitApply(pod("u3", "p1", Some("n1")))),
            [FollowAction::Start(followed("u3", "p1", "n1"))]
        );
        assert_eq!(
            index.event(Event::InitDone),
            [FollowAction::Stop(followed("u1", "p1", "n1"))]
        );
        let names: Vec<&str> = index.followed().map(|p| p.uid.as_str()).collect();
        assert_eq!(names, ["u2", "u3"]);
    }

    #[test]
    fn a_daemon_set_selector_becomes_a_selector_string() {
        let selector = LabelSelector {
            match_labels: Some([("app".to_owned(), "vx-rail-node-init".to_owned())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["edge".into(), "core".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            selector_string(&selector).unwrap(),
            "app=vx-rail-node-init,tier in (edge,core),!canary"
        );
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "Near".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(selector_string(&bad).is_err());
    }
}
