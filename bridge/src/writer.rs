//! The one status writer: the only part of the bridge that writes to the API server.
//!
//! The bridge computes [`Desired`] objects purely; [`StatusWriter::write`] server-side applies what
//! changed since its last successful write of each object, only while this replica leads, no faster
//! than a client-side [`TokenBucket`] allows. It writes only the objects it is given (Nodewright's
//! own resources), and of those only labels, spec and status. It also deletes the EdgeNodes of
//! nodes that left the site and publishes the bridge's Events, under the same leadership check.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, Recorder, Reporter};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

/// One object the bridge wants to exist with this status.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Its kind, for example `ApiResource::erase::<EdgeNode>(&())`.
    pub resource: ApiResource,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Labels, applied with the spec on the main resource.
    pub labels: BTreeMap<String, String>,
    /// The spec, applied with server-side apply on the main resource. With `None` and no labels the
    /// main resource is not written at all (the object must exist already): only its status is.
    pub spec: Option<Value>,
    /// The whole status this writer owns, applied on the `status` subresource.
    pub status: Value,
    /// Fingerprints of what is applied, when the caller computed them from the typed values the
    /// JSON was made of (see [`Fingerprints::of_typed`]); with `None` the writer computes them from
    /// the JSON. Either way, the same object must always come the same way, since only equal
    /// fingerprints count as unchanged.
    pub fingerprints: Option<Fingerprints>,
}

/// What the writer remembers of a write, and compares to decide whether the next one is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprints {
    /// Of the labels and spec applied on the main resource.
    pub main: u64,
    /// Of the status applied on the status subresource.
    pub status: u64,
}

impl Fingerprints {
    /// The fingerprints of labels, spec and status before they are turned into JSON values:
    /// serialising a typed status into a hash allocates nothing, so a caller can ask
    /// [`StatusWriter::unchanged`] before building the JSON at all.
    pub fn of_typed<S: serde::Serialize, T: serde::Serialize>(
        labels: &BTreeMap<String, String>,
        spec: Option<&S>,
        status: &T,
    ) -> Self {
        Fingerprints {
            main: fingerprint(&(labels, spec)),
            status: fingerprint(status),
        }
    }
}

impl Desired {
    /// `kind/namespace/name`, the key of the object in reports.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.resource.kind, self.namespace, self.name)
    }

    fn writes_main(&self) -> bool {
        self.spec.is_some() || !self.labels.is_empty()
    }

    fn fingerprints(&self) -> Fingerprints {
        self.fingerprints.unwrap_or_else(|| Fingerprints {
            main: fingerprint(&(&self.labels, &self.spec)),
            status: fingerprint(&self.status),
        })
    }
}

/// How the writer writes.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// The server-side-apply field manager, for example `nodewright-bridge`.
    pub field_manager: String,
    /// Sustained write rate, in API writes per second (a main apply and a status apply are two).
    pub max_writes_per_second: f64,
    /// Writes allowed at once before the rate applies; at least 1.
    pub burst: u32,
}

/// What one [`StatusWriter::write`] did, object by object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteReport {
    /// Objects of which something was written, all successfully.
    pub applied: usize,
    /// Objects that needed no write: the same as last written.
    pub unchanged: usize,
    /// Objects not written because this replica did not lead when their turn came.
    pub skipped_not_leader: usize,
    /// Objects whose write failed, as `kind/namespace/name` and the error. They are retried on the
    /// next call.
    pub failed: Vec<(String, String)>,
    /// How long each API write took, by kind.
    pub durations: Vec<(String, Duration)>,
    /// API writes that had to wait for the rate limit.
    pub throttled: usize,
}

/// Errors of the writer. Per-object write errors are reported in [`WriteReport::failed`] rather than
/// returned, so that one bad object does not stop the others.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The writer's configuration cannot work.
    #[error("invalid writer configuration: {0}")]
    Config(String),
    /// The desired object cannot be written as given.
    #[error("{key}: {reason}")]
    Invalid {
        /// `kind/namespace/name`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Server-side apply of labels and spec on the main resource failed.
    #[error("applying {key}: {source}")]
    ApplyObject {
        /// `kind/namespace/name`.
        key: String,
        /// The API error.
        source: kube::Error,
    },
    /// Server-side apply on the status subresource failed.
    #[error("applying the status of {key}: {source}")]
    ApplyStatus {
        /// `kind/namespace/name`.
        key: String,
        /// The API error.
        source: kube::Error,
    },
}

impl Error {
    /// Whether the API server answered that the object does not exist.
    fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::ApplyObject { source: kube::Error::Api(e), .. }
                | Error::ApplyStatus { source: kube::Error::Api(e), .. } if e.code == 404
        )
    }

    /// A short, fixed label for failure metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Invalid { .. } => "invalid",
            Error::ApplyObject { .. } => "apply_object",
            Error::ApplyStatus { .. } => "apply_status",
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second. Pure: the caller passes the time.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. `rate` must be positive and finite; `burst` is at least 1.
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// Takes a token if there is one at `now`; otherwise says how long until there is.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        if now > self.updated {
            let elapsed = now.duration_since(self.updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            self.updated = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // A rate that is not positive never refills; the writer refuses such a configuration.
            let wait = Duration::try_from_secs_f64((1.0 - self.tokens) / self.rate);
            Err(wait.unwrap_or(Duration::from_secs(1)))
        }
    }
}

/// Identity of an object across kinds of different groups, as a fingerprint of its API version,
/// kind, namespace and name: the writer remembers thousands of objects, and four strings a key
/// were most of that memory. Two objects collide with a chance of about 2⁻⁶⁴ per pair; a
/// collision would at worst skip one write until the next change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ObjectKey(u64);

impl ObjectKey {
    fn new(resource: &ApiResource, namespace: &str, name: &str) -> Self {
        ObjectKey(crate::fingerprint::of_json(&(
            &resource.api_version,
            &resource.kind,
            namespace,
            name,
        )))
    }

    fn of(desired: &Desired) -> Self {
        ObjectKey::new(&desired.resource, &desired.namespace, &desired.name)
    }
}

/// What was last written successfully for one object, as fingerprints: only whether the next
/// write would differ matters, and a site of thousands of nodes should not keep a second copy of
/// every status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Written {
    /// Fingerprint of the labels and spec applied on the main resource.
    main: Option<u64>,
    /// Fingerprint of the status applied on the status subresource.
    status: Option<u64>,
}

/// A collision of fingerprints (about 2⁻⁶⁴ per pair) would skip one write, which the next
/// change makes good.
fn fingerprint(value: &impl serde::Serialize) -> u64 {
    crate::fingerprint::of_json(value)
}

/// Which writes an object needs, given what was last written of it: the main resource when its
/// labels or spec differ (and it has any), the status subresource when the status differs.
fn changes(previous: &Written, writes_main: bool, now: Fingerprints) -> (bool, bool) {
    let main_changed = writes_main && previous.main != Some(now.main);
    let status_changed = previous.status != Some(now.status);
    (main_changed, status_changed)
}

/// Writes desired objects, only what changed, only while leading, within a rate limit.
///
/// It remembers what it last wrote of every object it was ever given, until [`forget`](Self::forget);
/// an object dropped from the desired set is neither deleted nor forgotten.
pub struct StatusWriter {
    client: Client,
    config: WriterConfig,
    leader: watch::Receiver<bool>,
    bucket: TokenBucket,
    written: HashMap<ObjectKey, Written>,
    /// Whether this replica led when the writer last looked, to forget on gaining leadership.
    was_leader: bool,
    /// Publishes the Events that report what the bridge found or did.
    recorder: Recorder,
}

impl StatusWriter {
    /// A writer that writes with `client` while `leader` is `true`, and publishes Events as the
    /// controller named by the field manager.
    pub fn new(client: Client, config: WriterConfig, leader: watch::Receiver<bool>) -> Self {
        StatusWriter::with_identity(client, config, leader, None)
    }

    /// The same, with this replica's name on its Events.
    pub fn with_identity(
        client: Client,
        config: WriterConfig,
        leader: watch::Receiver<bool>,
        identity: Option<String>,
    ) -> Self {
        let bucket = TokenBucket::new(config.max_writes_per_second, config.burst, Instant::now());
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: config.field_manager.clone(),
                instance: identity,
            },
        );
        StatusWriter {
            client,
            config,
            leader,
            bucket,
            written: HashMap::new(),
            was_leader: false,
            recorder,
        }
    }

    /// Deletes the object `name` of `resource` in `namespace` (an EdgeNode whose node left the
    /// site), if this replica leads, and forgets what was written of it. `Ok(false)` when nothing
    /// was deleted: not leading, or already gone.
    pub async fn delete(
        &mut self,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
    ) -> Result<bool, kube::Error> {
        if !self.leading() {
            return Ok(false);
        }
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, resource);
        let deleted = match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.code == 404 => false,
            Err(e) => return Err(e),
        };
        self.forget_object(resource, namespace, name);
        Ok(deleted)
    }

    /// Publishes `event` about `regarding`, if this replica leads. A failure is logged: an Event
    /// that cannot be written must not stop the writes it reports on.
    pub async fn event(&mut self, regarding: &ObjectReference, event: &Event) {
        if !self.leading() {
            return;
        }
        if let Err(e) = self.recorder.publish(event, regarding).await {
            warn!(error = %e, reason = %event.reason, "could not record an Event");
        }
    }

    /// Writes what changed since the last successful write of each object, and reports per object.
    /// Fails as a whole only if the configuration cannot work.
    ///
    /// On becoming leader the writer forgets what it wrote before, since another replica may have
    /// written in between.
    pub async fn write(&mut self, desired: &[Desired]) -> Result<WriteReport, Error> {
        let rate = self.config.max_writes_per_second;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::Config(format!(
                "max_writes_per_second must be positive, not {rate}"
            )));
        }
        let mut report = WriteReport::default();
        // Several objects are written at once: one apply is a round trip of several milliseconds,
        // and a large site changes faster than one round trip at a time can follow. The rate
        // limit still spaces the writes as they start.
        let mut in_flight = FuturesUnordered::new();
        for object in desired {
            // Leadership first: gaining it forgets what was written, which changes what is unchanged.
            if !self.leading() {
                report.skipped_not_leader += 1;
                continue;
            }
            let previous = self
                .written
                .get(&ObjectKey::of(object))
                .copied()
                .unwrap_or_default();
            let (main_changed, status_changed) =
                changes(&previous, object.writes_main(), object.fingerprints());
            if !main_changed && !status_changed {
                report.unchanged += 1;
                continue;
            }
            if status_changed && !object.status.is_object() {
                let error = Error::Invalid {
                    key: object.key(),
                    reason: "the status is not a JSON object".into(),
                };
                report.failed.push((object.key(), error.to_string()));
                continue;
            }
            let calls = usize::from(main_changed) + usize::from(status_changed);
            let mut leading = true;
            for _ in 0..calls {
                leading = leading && self.take_token(&mut report).await;
            }
            if !leading {
                report.skipped_not_leader += 1;
                continue;
            }
            let params = PatchParams::apply(&self.config.field_manager).force();
            in_flight.push(write_one(
                self.client.clone(),
                params,
                object.clone(),
                main_changed,
                status_changed,
            ));
            while in_flight.len() >= MAX_IN_FLIGHT {
                if let Some(done) = in_flight.next().await {
                    self.record(done, &mut report);
                }
            }
        }
        while let Some(done) = in_flight.next().await {
            self.record(done, &mut report);
        }
        // Writes finish in any order; the report lists failures in the order of the desired set.
        let position = |key: &str| desired.iter().position(|d| d.key() == key).unwrap_or(usize::MAX);
        report.failed.sort_by_key(|(key, _)| position(key));
        Ok(report)
    }

    /// Takes in the outcome of one object's writes.
    fn record(&mut self, done: Done, report: &mut WriteReport) {
        let key = ObjectKey::of(&done.object);
        for (kind, took) in done.durations {
            report.durations.push((kind, took));
        }
        if let Some(main) = done.main_written {
            self.written.entry(key).or_default().main = Some(main);
        }
        if let Some(status) = done.status_written {
            self.written.entry(key).or_default().status = Some(status);
        }
        match done.result {
            Ok(()) => report.applied += 1,
            Err(error) => {
                if error.is_not_found() {
                    // Deleted by someone else since it was written: forget it, so that the next
                    // write creates it again.
                    self.written.remove(&key);
                }
                warn!(object = %done.object.key(), %error, metric = error.metric_label(), "write failed");
                report.failed.push((done.object.key(), error.to_string()));
            }
        }
    }

    /// Whether an object with these fingerprints would need no write: this replica leads and last
    /// wrote exactly that. A caller that knows the fingerprints before building the object (see
    /// [`Fingerprints::of_typed`]) can leave such objects out of [`write`](Self::write) and count
    /// them as unchanged. `writes_main` says whether the object has labels or a spec.
    pub fn unchanged(
        &mut self,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
        writes_main: bool,
        fingerprints: Fingerprints,
    ) -> bool {
        if !self.leading() {
            return false;
        }
        self.written
            .get(&ObjectKey::new(resource, namespace, name))
            .is_some_and(|previous| changes(previous, writes_main, fingerprints) == (false, false))
    }

    /// Forgets what was written (after a leadership change or an API reconnect), so that the next
    /// [`write`](Self::write) applies everything again.
    pub fn forget(&mut self) {
        self.written.clear();
    }

    /// Forgets what was written of one object, for example after it was deleted by someone else.
    pub fn forget_object(&mut self, resource: &ApiResource, namespace: &str, name: &str) {
        self.written.remove(&ObjectKey::new(resource, namespace, name));
    }

    /// Whether this replica leads now; forgets everything on gaining leadership, including a loss
    /// and regain between two looks (the channel then reports a change while the value is the same).
    fn leading(&mut self) -> bool {
        let changed = self.leader.has_changed().unwrap_or(false);
        let leading = *self.leader.borrow_and_update();
        if leading && (changed || !self.was_leader) {
            debug!("gained leadership: forgetting what was written before");
            self.written.clear();
        }
        self.was_leader = leading;
        leading
    }

    /// Waits for a token, then says whether this replica still leads (it may have stepped down while
    /// waiting).
    async fn take_token(&mut self, report: &mut WriteReport) -> bool {
        let mut waited = false;
        while let Err(wait) = self.bucket.try_take(Instant::now()) {
            waited = true;
            tokio::time::sleep(wait).await;
        }
        if waited {
            report.throttled += 1;
        }
        self.leading()
    }
}

/// How many objects are written at the same time.
const MAX_IN_FLIGHT: usize = 16;

/// The outcome of one object's writes.
struct Done {
    object: Desired,
    /// Labels and spec, when the main resource was applied.
    main_written: Option<u64>,
    /// The status, when it was applied.
    status_written: Option<u64>,
    /// How long each successful write took, by kind.
    durations: Vec<(String, Duration)>,
    result: Result<(), Error>,
}

/// Applies one object: labels and spec on the main resource, then the status on the status
/// subresource, as asked. Stops at the first failure.
/// The failpoint after an object of `kind` (not its status) is written.
fn main_written_point(kind: &str) -> &'static str {
    match kind {
        "EdgeNode" => "bridge.write.main.after.EdgeNode",
        "EdgeCluster" => "bridge.write.main.after.EdgeCluster",
        _ => "bridge.write.main.after",
    }
}

async fn write_one(
    client: Client,
    // Force is safe here: this field manager is used by this writer only, and it applies only
    // the labels, spec and status the bridge computes for Nodewright's own objects. A conflict
    // could only come from a person or tool editing those fields, which the bridge is meant to
    // overwrite, as a controller does.
    params: PatchParams,
    object: Desired,
    main_changed: bool,
    status_changed: bool,
) -> Done {
    let mut done = Done {
        main_written: None,
        status_written: None,
        durations: Vec::new(),
        result: Ok(()),
        object,
    };
    let object = &done.object;
    let key = object.key();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &object.namespace, &object.resource);
    if main_changed {
        let mut body = json!({
            "apiVersion": object.resource.api_version,
            "kind": object.resource.kind,
            "metadata": {"name": object.name, "namespace": object.namespace},
        });
        if !object.labels.is_empty() {
            body["metadata"]["labels"] = json!(object.labels);
        }
        if let Some(spec) = &object.spec {
            body["spec"] = spec.clone();
        }
        let started = Instant::now();
        match api.patch(&object.name, &params, &Patch::Apply(&body)).await {
            Ok(_) => {
                // Only successful writes are timed: the histogram is of writes that happened.
                done.durations
                    .push((object.resource.kind.clone(), started.elapsed()));
                done.main_written = Some(object.fingerprints().main);
                // Crash tests: the object written, its status not yet.
                nodewright_kit::failpoint::hit(main_written_point(&object.resource.kind));
            }
            Err(source) => {
                done.result = Err(Error::ApplyObject { key, source });
                return done;
            }
        }
    }
    if status_changed {
        let body = json!({
            "apiVersion": object.resource.api_version,
            "kind": object.resource.kind,
            "metadata": {"name": object.name, "namespace": object.namespace},
            "status": object.status,
        });
        let started = Instant::now();
        match api
            .patch_status(&object.name, &params, &Patch::Apply(&body))
            .await
        {
            Ok(_) => {
                done.durations
                    .push((object.resource.kind.clone(), started.elapsed()));
                done.status_written = Some(object.fingerprints().status);
                nodewright_kit::failpoint::hit("bridge.write.status.after");
            }
            Err(source) => done.result = Err(Error::ApplyStatus { key, source }),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_allows_a_burst_then_asks_to_wait() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(start), Ok(()));
        }
        assert_eq!(bucket.try_take(start), Err(ms(500)));
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(4.0, 1, start);
        assert_eq!(bucket.try_take(start), Ok(()));
        let wait = bucket.try_take(start + ms(100)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.15).abs() < 1e-9, "{wait:?}");
        assert_eq!(bucket.try_take(start + ms(250)), Ok(()));
        assert!(bucket.try_take(start + ms(250)).is_err());
    }

    #[test]
    fn a_long_pause_refills_no_more_than_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 2, start);
        assert_eq!(bucket.try_take(start), Ok(()));
        assert_eq!(bucket.try_take(start), Ok(()));
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.try_take(later), Ok(()));
        assert_eq!(bucket.try_take(later), Ok(()));
        assert!(bucket.try_take(later).is_err());
    }

    #[test]
    fn a_zero_burst_still_allows_one_write() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 0, start);
        assert_eq!(bucket.try_take(start), Ok(()));
        assert_eq!(bucket.try_take(start), Err(Duration::from_secs(1)));
    }

    #[test]
    fn time_going_backwards_does_not_add_tokens() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1.0, 1, start);
        assert_eq!(bucket.try_take(start), Ok(()));
        assert!(bucket.try_take(start - Duration::from_secs(5)).is_err());
    }

    #[test]
    fn keys_name_kind_namespace_and_name() {
        let desired = Desired {
            resource: ApiResource::erase::<nodewright_api::EdgeNode>(&()),
            namespace: "site-a".into(),
            name: "node-1".into(),
            labels: BTreeMap::new(),
            spec: None,
            status: json!({}),
            fingerprints: None,
        };
        assert_eq!(desired.key(), "EdgeNode/site-a/node-1");
        assert!(!desired.writes_main());
    }

    fn desired() -> Desired {
        Desired {
            resource: ApiResource::erase::<nodewright_api::EdgeNode>(&()),
            namespace: "site-a".into(),
            name: "node-1".into(),
            labels: BTreeMap::from([("site".to_owned(), "a".to_owned())]),
            spec: Some(json!({"nodeName": "node-1"})),
            status: json!({"observedGeneration": 1}),
            fingerprints: None,
        }
    }

    fn written(desired: &Desired) -> Written {
        Written {
            main: Some(desired.fingerprints().main),
            status: Some(desired.fingerprints().status),
        }
    }

    /// The writes `desired` needs after `previous`.
    fn needs(previous: &Written, desired: &Desired) -> (bool, bool) {
        changes(previous, desired.writes_main(), desired.fingerprints())
    }

    #[test]
    fn fingerprints_of_typed_values_are_those_given_and_used_as_given() {
        #[derive(serde::Serialize)]
        struct Status {
            zeta: u32,
            alpha: u32,
        }
        let labels = BTreeMap::from([("site".to_owned(), "a".to_owned())]);
        let typed = Fingerprints::of_typed(
            &labels,
            Some(&json!({"nodeName": "node-1"})),
            &Status { zeta: 1, alpha: 2 },
        );
        assert_eq!(
            typed,
            Fingerprints::of_typed(
                &labels,
                Some(&json!({"nodeName": "node-1"})),
                &Status { zeta: 1, alpha: 2 }
            ),
            "the same values give the same fingerprints"
        );
        assert_ne!(
            typed.status,
            Fingerprints::of_typed(&labels, Some(&json!({})), &Status { zeta: 1, alpha: 3 }).status
        );
        let mut d = desired();
        d.fingerprints = Some(typed);
        assert_eq!(
            d.fingerprints(),
            typed,
            "given fingerprints are not recomputed from the JSON"
        );
        assert_eq!(needs(&written(&d), &d), (false, false));
    }

    #[test]
    fn an_object_never_written_needs_both_writes() {
        assert_eq!(needs(&Written::default(), &desired()), (true, true));
    }

    #[test]
    fn an_object_written_as_desired_needs_no_write() {
        let desired = desired();
        assert_eq!(needs(&written(&desired), &desired), (false, false));
    }

    #[test]
    fn a_new_status_needs_only_the_status_write() {
        let mut desired = desired();
        let before = written(&desired);
        desired.status = json!({"observedGeneration": 2});
        assert_eq!(needs(&before, &desired), (false, true));
    }

    #[test]
    fn a_new_label_or_spec_needs_only_the_main_write() {
        let mut desired = desired();
        let before = written(&desired);
        desired.labels.insert("zone".into(), "b".into());
        assert_eq!(needs(&before, &desired), (true, false));
        let mut desired = self::desired();
        desired.spec = Some(json!({"nodeName": "node-2"}));
        assert_eq!(needs(&before, &desired), (true, false));
    }

    #[test]
    fn a_status_only_object_never_writes_the_main_resource() {
        let mut desired = desired();
        desired.labels.clear();
        desired.spec = None;
        assert_eq!(needs(&Written::default(), &desired), (false, true));
    }

    #[test]
    fn a_status_that_failed_last_time_is_written_again() {
        let desired = desired();
        let main_only = Written {
            status: None,
            ..written(&desired)
        };
        assert_eq!(needs(&main_only, &desired), (false, true));
    }

    #[test]
    fn metric_labels_are_fixed_per_stage() {
        let invalid = Error::Invalid {
            key: "k".into(),
            reason: "r".into(),
        };
        assert_eq!(invalid.metric_label(), "invalid");
        assert_eq!(Error::Config("x".into()).metric_label(), "config");
    }
}
