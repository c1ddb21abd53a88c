//! Leader election on a `coordination.k8s.io/v1` Lease, so that two replicas of one component (the
//! bridge, the operator) never both write.
//!
//! The decision (given the Lease as last read, the time and this replica's identity: create, acquire,
//! renew or wait) is the pure function [`decide`]; [`LeaderElector::run`] only reads the Lease, acts
//! on the decision with optimistic concurrency (replace with the `resourceVersion` read, a 409 means
//! "read again"), and publishes leadership on a `watch` channel. This module touches one Lease and
//! nothing else.
//!
//! Expiry is judged on this replica's own monotonic clock, as client-go does: another holder's lease
//! has expired when its record (holder, renew time, duration) has not changed for its
//! `leaseDurationSeconds` since this replica first saw it. Clocks of different machines are never
//! compared, so clock skew cannot make two replicas lead at once; the price is that a replica that
//! starts next to a stale Lease of a dead holder waits one lease duration before taking over.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, info, warn};

/// Where the Lease is and how this replica competes for it.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease, the same for every replica.
    pub name: String,
    /// This replica's identity (its pod name), unique among the replicas.
    pub identity: String,
    /// How long a holder's lease lasts after its last renew, written as `leaseDurationSeconds`
    /// (rounded up to whole seconds, at least 1).
    pub lease_duration: Duration,
    /// How often the leader renews. Must be well below [`LeaseConfig::renew_deadline`].
    pub renew_interval: Duration,
    /// How often a follower looks at the Lease, and how long to wait after a failed call.
    pub retry_interval: Duration,
}

impl LeaseConfig {
    /// The Lease `name` in `namespace`, with the durations every Nodewright component uses: a
    /// 15 s lease, renewed every 5 s, looked at every 2 s by followers. A leader cut off from the
    /// API server steps down after about 11 s (the renew deadline); a successor takes over after
    /// 15 s at most, or at once when the leader released the Lease on shutdown.
    pub fn standard(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            retry_interval: Duration::from_secs(2),
        }
    }

    /// How long after sending its last successful renew the leader keeps calling itself leader: the
    /// lease duration minus a quarter of it. Others count the lease duration from when they *see*
    /// the renew, which is later than when it was sent, so the leader steps down at least a quarter
    /// of the lease duration before anyone else may take over; that margin covers a write the
    /// writer started just before the step-down, if it reaches the API server within the margin
    /// (nothing guarantees that: docs/verification.md).
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration.saturating_sub(self.lease_duration / 4)
    }

    fn lease_duration_seconds(&self) -> i32 {
        let secs = self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
    }
}

/// The Lease as this replica last read it, reduced to what [`decide`] needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// `holderIdentity`; `None` (or an empty string, normalised to `None`) when the lease is free.
    pub holder: Option<String>,
    /// `leaseDurationSeconds` as the holder wrote it.
    pub lease_duration: Option<Duration>,
    /// When this replica first saw the record in its current form, on its own clock.
    pub unchanged_since: Instant,
}

/// What to do about the Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create it, holding it.
    Create,
    /// The lease is free or its holder's lease has expired: take it.
    Acquire,
    /// This replica holds it: renew.
    Renew,
    /// Another replica holds a lease that has not expired: follow (and step down if leading).
    Wait {
        /// When the holder's lease expires if it is not renewed before.
        expires_at: Instant,
    },
}

/// Competes for the Lease until `stop` completes; without a Lease this replica always leads.
/// Returns who leads now, and the elector's task (which releases the Lease when it stops).
pub fn start_election(
    client: &Client,
    lease: Option<LeaseConfig>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> (watch::Receiver<bool>, Option<tokio::task::JoinHandle<()>>) {
    match lease {
        Some(config) => {
            let elector = LeaderElector::new(client.clone(), config);
            let rx = elector.subscribe();
            (rx, Some(tokio::spawn(elector.run(stop))))
        }
        None => (watch::channel(true).1, None),
    }
}

/// Decides what to do, given the Lease as last read (`None`: it does not exist), the time, this
/// replica's identity and the lease duration to assume when the Lease does not say.
pub fn decide(
    observed: Option<&Observed>,
    now: Instant,
    identity: &str,
    default_duration: Duration,
) -> Decision {
    let Some(observed) = observed else {
        return Decision::Create;
    };
    match observed.holder.as_deref() {
        None => Decision::Acquire,
        Some(holder) if holder == identity => Decision::Renew,
        Some(_) => {
            let duration = observed.lease_duration.unwrap_or(default_duration);
            let expires_at = observed.unchanged_since + duration;
            if now >= expires_at {
                Decision::Acquire
            } else {
                Decision::Wait { expires_at }
            }
        }
    }
}

/// Competes for the Lease and publishes whether this replica holds it.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
}

/// What one look at the Lease ended with.
enum Outcome {
    /// This replica holds the lease; the successful write was sent at `sent_at`.
    Leading { sent_at: Instant },
    /// Another replica holds it.
    Following { holder: Option<String> },
    /// Someone else wrote the Lease between our read and our write: read again.
    Conflict,
    /// The API call failed.
    Failed(String),
}

/// The Lease record last read and when it was first seen in that form.
#[derive(Clone)]
struct Seen {
    spec: Option<LeaseSpec>,
    since: Instant,
}

/// Sends `false` when dropped, so that receivers never keep seeing `true` after [`LeaderElector::run`]
/// was cancelled while leading.
struct StepDownOnDrop(watch::Sender<bool>);

impl StepDownOnDrop {
    fn set(&self, leading: bool) {
        let changed = self.0.send_if_modified(|current| {
            let changed = *current != leading;
            *current = leading;
            changed
        });
        if changed {
            if leading {
                info!("became leader");
            } else {
                info!("stepped down");
            }
        }
    }
}

impl Drop for StepDownOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

impl LeaderElector {
    /// An elector for the Lease `config.namespace/config.name`. Nothing happens before [`run`](Self::run).
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        let (leader, _) = watch::channel(false);
        LeaderElector { api, config, leader }
    }

    /// A receiver that is `true` while this replica holds the lease. Take it before [`run`](Self::run).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// Competes for the lease until `shutdown` completes, then steps down and releases the lease (no
    /// holder, a one-second duration) so that a successor takes over at once.
    ///
    /// Acquires the lease when it is free or expired, renews it every `renew_interval`, and steps
    /// down (sends `false`) as soon as a renew fails, the lease is found held by another identity, or
    /// no renew has succeeded within [`LeaseConfig::renew_deadline`] (even while a call hangs). If the
    /// future is dropped instead, it steps down without releasing; the others take over when the
    /// lease expires.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let LeaderElector { api, config, leader } = self;
        if config.renew_interval >= config.renew_deadline() {
            warn!(
                lease = %config.name,
                renew_interval = ?config.renew_interval,
                renew_deadline = ?config.renew_deadline(),
                "the renew interval is not below the renew deadline: leadership will flap"
            );
        }
        let leader = StepDownOnDrop(leader);
        let mut shutdown = std::pin::pin!(shutdown);
        let mut seen: Option<Seen> = None;
        // When the last successful acquire or renew was sent, while this replica leads.
        let mut renewed_at: Option<Instant> = None;
        let mut next = Instant::now();
        let mut conflicts = 0u32;
        loop {
            let step_down_at = renewed_at.map(|sent| sent + config.renew_deadline());
            let previous = seen.clone();
            let (api_ref, config_ref) = (&api, &config);
            let look = async move {
                sleep_until(next).await;
                // A hung call must not keep a follower from retrying; the leader's deadline below
                // fires earlier anyway.
                match timeout(
                    config_ref.lease_duration,
                    look_at_lease(api_ref, config_ref, previous),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => (None, Outcome::Failed("timed out".into())),
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = sleep_until(step_down_at.unwrap_or(next)), if step_down_at.is_some() => {
                    warn!(lease = %config.name, "no renew succeeded within the renew deadline");
                    renewed_at = None;
                    leader.set(false);
                }
                (new_seen, outcome) = look => {
                    if new_seen.is_some() {
                        seen = new_seen;
                    }
                    let now = Instant::now();
                    match outcome {
                        Outcome::Leading { sent_at } => {
                            conflicts = 0;
                            if now < sent_at + config.renew_deadline() {
                                renewed_at = Some(sent_at);
                                leader.set(true);
                            }
                            next = sent_at + config.renew_interval;
                        }
                        Outcome::Following { holder } => {
                            conflicts = 0;
                            if renewed_at.take().is_some() {
                                info!(lease = %config.name, holder = ?holder, "the lease is held by another replica");
                            }
                            leader.set(false);
                            next = now + config.retry_interval;
                        }
                        Outcome::Conflict => {
                            // Read again at once, but not in a tight loop. Leadership stands until
                            // the deadline: the lease may still be ours.
                            conflicts += 1;
                            debug!(lease = %config.name, conflicts, "conflict writing the lease");
                            next = if conflicts == 1 { now } else { now + config.retry_interval };
                        }
                        Outcome::Failed(error) => {
                            conflicts = 0;
                            warn!(lease = %config.name, %error, "reading or writing the lease failed");
                            renewed_at = None;
                            leader.set(false);
                            next = now + config.retry_interval;
                        }
                    }
                }
            }
        }
        leader.set(false);
        let held = seen
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.holder_identity.as_deref())
            == Some(config.identity.as_str());
        if held || renewed_at.is_some() {
            match timeout(config.lease_duration, release(&api, &config)).await {
                Ok(Ok(())) => info!(lease = %config.name, "released the lease"),
                Ok(Err(error)) => warn!(lease = %config.name, %error, "releasing the lease failed"),
                Err(_) => warn!(lease = %config.name, "releasing the lease timed out"),
            }
        }
    }
}

/// Reads the Lease, decides, and writes it if the decision says so. Returns the record read (`None`
/// when the read failed) and the outcome.
async fn look_at_lease(
    api: &Api<Lease>,
    config: &LeaseConfig,
    previous: Option<Seen>,
) -> (Option<Seen>, Outcome) {
    let current = match api.get_opt(&config.name).await {
        Ok(current) => current,
        Err(e) => return (None, Outcome::Failed(e.to_string())),
    };
    let now = Instant::now();
    let spec = current.as_ref().map(|l| l.spec.clone().unwrap_or_default());
    let since = match &previous {
        Some(previous) if previous.spec == spec => previous.since,
        _ => now,
    };
    let seen = Seen { spec, since };
    let observed = current.as_ref().map(|lease| observe(lease, since));
    let decision = decide(observed.as_ref(), now, &config.identity, config.lease_duration);
    let outcome = match (decision, current) {
        (Decision::Wait { .. }, _) => Outcome::Following {
            holder: observed.and_then(|o| o.holder),
        },
        (Decision::Create, _) | (_, None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(held_spec(None, config, true)),
            };
            let sent_at = Instant::now();
            written(api.create(&PostParams::default(), &lease).await, sent_at)
        }
        (decision, Some(mut lease)) => {
            let acquiring = decision == Decision::Acquire;
            lease.spec = Some(held_spec(lease.spec.take(), config, acquiring));
            let sent_at = Instant::now();
            // `replace` carries the resourceVersion read above: optimistic concurrency.
            written(
                api.replace(&config.name, &PostParams::default(), &lease).await,
                sent_at,
            )
        }
    };
    (Some(seen), outcome)
}

fn written(result: Result<Lease, kube::Error>, sent_at: Instant) -> Outcome {
    match result {
        Ok(_) => Outcome::Leading { sent_at },
        Err(kube::Error::Api(status)) if status.code == 409 => Outcome::Conflict,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn observe(lease: &Lease, unchanged_since: Instant) -> Observed {
    let spec = lease.spec.as_ref();
    Observed {
        holder: spec
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty()),
        lease_duration: spec
            .and_then(|s| s.lease_duration_seconds)
            .map(|secs| Duration::from_secs(u64::try_from(secs.max(0)).unwrap_or(0))),
        unchanged_since,
    }
}

/// The spec of a lease held by this replica: renewed now, and on acquisition with a new acquire time
/// and one more transition when the holder changes.
fn held_spec(previous: Option<LeaseSpec>, config: &LeaseConfig, acquiring: bool) -> LeaseSpec {
    let mut spec = previous.unwrap_or_default();
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    if acquiring {
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            let transitions = spec.lease_transitions.unwrap_or(0);
            spec.lease_transitions = Some(if spec.holder_identity.is_some() {
                transitions.saturating_add(1)
            } else {
                transitions
            });
        }
        spec.acquire_time = Some(now.clone());
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(config.lease_duration_seconds());
    spec.renew_time = Some(now);
    spec
}

/// Gives the lease up if this replica still holds it, retrying on conflicts.
async fn release(api: &Api<Lease>, config: &LeaseConfig) -> Result<(), kube::Error> {
    for _ in 0..3 {
        let Some(mut lease) = api.get_opt(&config.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        lease.spec = Some(spec);
        match api.replace(&config.name, &PostParams::default(), &lease).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn held_by(holder: &str, since: Instant) -> Observed {
        Observed {
            holder: Some(holder.into()),
            lease_duration: Some(LEASE),
            unchanged_since: since,
        }
    }

    fn config() -> LeaseConfig {
        LeaseConfig {
            namespace: "ns".into(),
            name: "bridge".into(),
            identity: "me".into(),
            lease_duration: Duration::from_millis(2500),
            renew_interval: Duration::from_millis(500),
            retry_interval: Duration::from_millis(500),
        }
    }

    #[test]
    fn a_missing_lease_is_created() {
        assert_eq!(decide(None, Instant::now(), "me", LEASE), Decision::Create);
    }

    #[test]
    fn a_free_lease_is_acquired_at_once() {
        let now = Instant::now();
        let free = Observed {
            holder: None,
            lease_duration: Some(Duration::from_secs(1)),
            unchanged_since: now,
        };
        assert_eq!(decide(Some(&free), now, "me", LEASE), Decision::Acquire);
    }

    #[test]
    fn a_lease_held_by_this_replica_is_renewed_even_if_it_looks_expired() {
        let since = Instant::now();
        let mine = held_by("me", since);
        assert_eq!(decide(Some(&mine), since, "me", LEASE), Decision::Renew);
        assert_eq!(
            decide(Some(&mine), since + LEASE * 3, "me", LEASE),
            Decision::Renew
        );
    }

    #[test]
    fn a_live_lease_held_by_another_replica_is_waited_for() {
        let since = Instant::now();
        let theirs = held_by("other", since);
        assert_eq!(
            decide(Some(&theirs), since + LEASE / 2, "me", LEASE),
            Decision::Wait {
                expires_at: since + LEASE
            }
        );
    }

    #[test]
    fn an_expired_lease_held_by_another_replica_is_taken_over() {
        let since = Instant::now();
        let theirs = held_by("other", since);
        assert_eq!(
            decide(Some(&theirs), since + LEASE, "me", LEASE),
            Decision::Acquire
        );
    }

    #[test]
    fn expiry_uses_the_holders_duration_and_falls_back_to_ours() {
        let since = Instant::now();
        let short = Observed {
            lease_duration: Some(Duration::from_secs(1)),
            ..held_by("other", since)
        };
        assert_eq!(
            decide(Some(&short), since + Duration::from_secs(1), "me", LEASE),
            Decision::Acquire
        );
        let unknown = Observed {
            lease_duration: None,
            ..held_by("other", since)
        };
        assert!(matches!(
            decide(Some(&unknown), since + Duration::from_secs(1), "me", LEASE),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn the_leader_steps_down_a_quarter_of_the_lease_before_it_expires() {
        let config = config();
        assert_eq!(config.renew_deadline(), Duration::from_millis(1875));
        assert!(config.renew_deadline() < config.lease_duration);
    }

    #[test]
    fn lease_duration_seconds_round_up_and_are_at_least_one() {
        let mut config = config();
        assert_eq!(config.lease_duration_seconds(), 3);
        config.lease_duration = Duration::from_millis(10);
        assert_eq!(config.lease_duration_seconds(), 1);
        config.lease_duration = Duration::from_secs(15);
        assert_eq!(config.lease_duration_seconds(), 15);
    }

    #[test]
    fn taking_over_from_another_holder_counts_a_transition() {
        let config = config();
        let theirs = LeaseSpec {
            holder_identity: Some("other".into()),
            lease_transitions: Some(4),
            ..Default::default()
        };
        let spec = held_spec(Some(theirs), &config, true);
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(5));
        assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());
        assert_eq!(spec.lease_duration_seconds, Some(3));
    }

    #[test]
    fn renewing_keeps_the_acquire_time_and_the_transitions() {
        let config = config();
        let acquired = MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let mine = LeaseSpec {
            holder_identity: Some("me".into()),
            lease_transitions: Some(2),
            acquire_time: Some(acquired.clone()),
            ..Default::default()
        };
        let spec = held_spec(Some(mine), &config, false);
        assert_eq!(spec.acquire_time, Some(acquired));
        assert_eq!(spec.lease_transitions, Some(2));
    }

    #[test]
    fn an_empty_holder_means_a_free_lease() {
        let lease = Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(String::new()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let now = Instant::now();
        assert_eq!(observe(&lease, now).holder, None);
        assert_eq!(
            decide(Some(&observe(&lease, now)), now, "me", LEASE),
            Decision::Acquire
        );
    }
}
