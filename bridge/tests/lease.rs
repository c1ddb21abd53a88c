//! Leader election against a real kube-apiserver (from `testenv/`): two electors on one Lease never
//! lead together, a leader that shuts down releases the lease so that the other takes over at once,
//! a leader whose lease is taken by another identity steps down, and a cancelled elector stops
//! calling itself leader.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use nodewright_bridge::lease::{LeaderElector, LeaseConfig};
use nodewright_testenv::TestContext;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Generous: the machine is shared, and these waits only bound a test that would otherwise hang.
const PATIENCE: Duration = Duration::from_secs(20);

fn config(ctx: &TestContext, identity: &str, lease_duration: Duration) -> LeaseConfig {
    LeaseConfig {
        namespace: ctx.namespace.clone(),
        name: "nodewright-bridge".into(),
        identity: identity.into(),
        lease_duration,
        renew_interval: Duration::from_millis(300),
        retry_interval: Duration::from_millis(200),
    }
}

struct Running {
    leader: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(ctx: &TestContext, config: LeaseConfig) -> Running {
        let elector = LeaderElector::new(ctx.client.clone(), config);
        let leader = elector.subscribe();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(elector.run(async move {
            let _ = stopped.await;
        }));
        Running {
            leader,
            stop: Some(stop),
            task,
        }
    }

    fn leads(&self) -> bool {
        *self.leader.borrow()
    }

    async fn wait_until(&mut self, leading: bool) {
        timeout(PATIENCE, self.leader.wait_for(|l| *l == leading))
            .await
            .unwrap_or_else(|_| panic!("leadership did not become {leading}"))
            .expect("elector alive");
    }

    async fn shut_down(mut self) {
        let _ = self.stop.take().expect("running").send(());
        timeout(PATIENCE, self.task)
            .await
            .expect("run ends after shutdown")
            .expect("run does not panic");
    }
}

async fn holder(ctx: &TestContext) -> Option<String> {
    let leases: Api<Lease> = ctx.api();
    leases
        .get("nodewright-bridge")
        .await
        .expect("lease exists")
        .spec
        .and_then(|s| s.holder_identity)
}

#[tokio::test]
async fn two_electors_on_one_lease_never_lead_together() {
    let ctx = TestContext::new("lease-two").await.expect("namespace");
    let lease = Duration::from_secs(2);
    let a = Running::start(&ctx, config(&ctx, "replica-a", lease));
    let b = Running::start(&ctx, config(&ctx, "replica-b", lease));

    let deadline = Instant::now() + PATIENCE;
    while !(a.leads() || b.leads()) {
        assert!(Instant::now() < deadline, "nobody became leader");
        sleep(Duration::from_millis(20)).await;
    }
    let mut samples_with_a_leader = 0;
    for _ in 0..200 {
        let (la, lb) = (a.leads(), b.leads());
        assert!(!(la && lb), "both replicas lead");
        if la || lb {
            samples_with_a_leader += 1;
        }
        sleep(Duration::from_millis(20)).await;
    }
    // Someone led throughout, apart from a renew that failed on a busy machine.
    assert!(samples_with_a_leader > 150, "{samples_with_a_leader} of 200");

    let expected = if a.leads() { "replica-a" } else { "replica-b" };
    assert_eq!(holder(&ctx).await.as_deref(), Some(expected));
    a.shut_down().await;
    b.shut_down().await;
}

#[tokio::test]
async fn a_leader_that_shuts_down_releases_the_lease_and_the_other_takes_over_at_once() {
    let ctx = TestContext::new("lease-release").await.expect("namespace");
    // Far longer than the wait below: a takeover within it can only come from the release.
    let lease = Duration::from_secs(60);
    let mut first = Running::start(&ctx, config(&ctx, "first", lease));
    first.wait_until(true).await;
    let mut second = Running::start(&ctx, config(&ctx, "second", lease));
    // The second replica has seen the lease held and waits.
    sleep(Duration::from_millis(600)).await;
    assert!(!second.leads());

    let mut first_leader = first.leader.clone();
    first.shut_down().await;
    assert!(
        !*first_leader.borrow_and_update(),
        "a stopped elector does not lead"
    );
    second.wait_until(true).await;
    assert_eq!(holder(&ctx).await.as_deref(), Some("second"));
    let leases: Api<Lease> = ctx.api();
    let spec = leases.get("nodewright-bridge").await.unwrap().spec.unwrap();
    assert_eq!(
        spec.lease_transitions,
        Some(0),
        "a released lease is taken without a transition"
    );
    second.shut_down().await;
    assert_eq!(holder(&ctx).await, None, "released on shutdown");
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_by_another_identity_steps_down() {
    let ctx = TestContext::new("lease-stolen").await.expect("namespace");
    let mut leader = Running::start(&ctx, config(&ctx, "rightful", Duration::from_secs(2)));
    leader.wait_until(true).await;

    // Another identity writes the Lease, as a replica that (wrongly or not) took over would.
    let leases: Api<Lease> = ctx.api();
    loop {
        let mut lease = leases.get("nodewright-bridge").await.unwrap();
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = Some("usurper".into());
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        match leases
            .replace("nodewright-bridge", &PostParams::default(), &lease)
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => panic!("stealing the lease: {e}"),
        }
    }
    leader.wait_until(false).await;
    // The usurper never renews: once its lease expires on the rightful replica's clock, it takes the
    // lease back, counting a transition.
    leader.wait_until(true).await;
    assert_eq!(holder(&ctx).await.as_deref(), Some("rightful"));
    let spec = leases.get("nodewright-bridge").await.unwrap().spec.unwrap();
    assert_eq!(spec.lease_transitions, Some(1));
    leader.shut_down().await;
}

#[tokio::test]
async fn a_cancelled_elector_stops_calling_itself_leader() {
    let ctx = TestContext::new("lease-cancel").await.expect("namespace");
    let mut running = Running::start(&ctx, config(&ctx, "cancelled", Duration::from_secs(2)));
    running.wait_until(true).await;
    running.task.abort();
    let _ = (&mut running.task).await;
    assert!(!*running.leader.borrow(), "leadership ends with the elector");
}
