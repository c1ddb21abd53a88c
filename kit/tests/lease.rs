//! Leader election against a real kube-apiserver (from `testenv/`): two electors on one Lease never
//! lead together, a leader that shuts down releases the lease so that the other takes over at once,
//! a leader whose lease is taken by another identity steps down, a leader cut off from the API
//! server steps down before the other replica takes over, and a cancelled elector stops calling
//! itself leader.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use nodewright_kit::lease::{LeaderElector, LeaseConfig};
use nodewright_testenv::TestContext;
use tokio::net::{TcpListener, TcpStream};
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
    // The second replica has seen the lease held and waits. The marker that it had the time to
    // look (its retry interval is 200 ms): the first renewed the lease twice since it started.
    let renewed = || async {
        let leases: Api<Lease> = ctx.api();
        leases
            .get("nodewright-bridge")
            .await
            .expect("lease exists")
            .spec
            .and_then(|s| s.renew_time)
    };
    let mut seen = renewed().await;
    for _ in 0..2 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = renewed().await;
            if now != seen {
                seen = now;
                break;
            }
            assert!(Instant::now() < deadline, "the leader stopped renewing");
            sleep(Duration::from_millis(20)).await;
        }
    }
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

/// A TCP relay to the API server that can be frozen: while frozen it keeps connections open but
/// passes no bytes, so calls hang as they do when the network to the API server is cut.
async fn freezable_relay(upstream: String) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frozen = Arc::new(AtomicBool::new(false));
    let relay_frozen = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pump(client_read, server_write, relay_frozen.clone()));
            tokio::spawn(pump(server_read, client_write, relay_frozen.clone()));
        }
    });
    (port, frozen)
}

async fn pump(
    from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    // Readiness and `try_*` calls: this crate's tokio has `net` but not `io-util`.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if from.readable().await.is_err() {
            return;
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        while frozen.load(Ordering::SeqCst) {
            sleep(Duration::from_millis(10)).await;
        }
        let mut sent = 0;
        while sent < n {
            if to.writable().await.is_err() {
                return;
            }
            match to.try_write(&buf[sent..n]) {
                Ok(m) => sent += m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            }
        }
    }
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_steps_down_before_the_other_takes_over() {
    let ctx = TestContext::new("lease-cut-off").await.expect("namespace");
    let server = ctx
        .control_plane
        .server()
        .trim_start_matches("https://")
        .to_owned();
    let (port, frozen) = freezable_relay(server).await;
    let kubeconfig = kube::config::Kubeconfig::read_from(ctx.control_plane.kubeconfig()).unwrap();
    let mut client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    client_config.cluster_url = format!("https://127.0.0.1:{port}").parse().unwrap();
    let relayed = kube::Client::try_from(client_config).unwrap();

    let lease = Duration::from_secs(2);
    let elector = LeaderElector::new(relayed, config(&ctx, "cut-off", lease));
    let mut cut_off = Running {
        leader: elector.subscribe(),
        stop: None,
        task: tokio::spawn(elector.run(std::future::pending())),
    };
    cut_off.wait_until(true).await;
    let other = Running::start(&ctx, config(&ctx, "connected", lease));

    frozen.store(true, Ordering::SeqCst);
    // The connected replica takes over once the lease expires on its clock; by then the cut-off one
    // must have stepped down, though none of its calls has returned.
    let deadline = Instant::now() + PATIENCE;
    while !other.leads() {
        assert!(!(cut_off.leads() && other.leads()), "both replicas lead");
        assert!(Instant::now() < deadline, "the connected replica never took over");
        sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !cut_off.leads(),
        "the cut-off leader still leads after the takeover"
    );

    // Reconnected, it finds the lease held and stays a follower.
    frozen.store(false, Ordering::SeqCst);
    for _ in 0..50 {
        assert!(!cut_off.leads() && other.leads());
        sleep(Duration::from_millis(20)).await;
    }
    cut_off.task.abort();
    other.shut_down().await;
}
