//! The audit trail end to end, as it is deployed: the API server's audit webhook backend sends
//! its events to the trail's writer over HTTPS (blocking mode), while the legacy script runs on
//! every simulated node with the real kubectl, and `nodewright operator` and one `nodewright
//! agent` per node carry out a migration. A person, alice (impersonated, as `kubectl --as alice`
//! does), hands the migration to the operator and requests it. The log must then hold her
//! requests, the operator's decisions and the agents' host steps, linked so that one query from
//! her request reaches every host step, and it must verify against the checkpoint the writer
//! published to the cluster.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use nodewright_agent_shim::AgentOptions;
use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec, SiteProfile, Topology, WorkflowModes};
use nodewright_api::migration::{Migration, MigrationPhase, MigrationSpec};
use nodewright_api::nodetask::NodeTask;
use nodewright_api::{WorkflowMode, WorkflowOwner};
use nodewright_audit::{Entry, EntryKind, Log, Signer, VerifyOptions};
use nodewright_audit_trail::events::Scope;
use nodewright_audit_trail::query::{self, Filter};
use nodewright_audit_trail::serve::{self, Metrics, Shared, Writer};
use nodewright_audit_trail::trail::Trail;
use nodewright_legacy_sim::run::{self, Action, RealCluster, RunConfig, Scenario};
use nodewright_parity::run::OperatorOptions;
use nodewright_sim_harness::world::{AgentHost, SharedWorld};
use nodewright_testenv::{AuditWebhook, ControlPlane, Options};
use tokio::runtime::Runtime;

const NS: &str = "nodewright-system";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn start_agent(rt: &Runtime, client: kube::Client, host: AgentHost, state: &Path) {
    let node = host.node.clone();
    let mut options = AgentOptions::new(node.clone(), NS, format!("agent-{node}"), state.join(&node));
    options.resync = Duration::from_secs(2);
    rt.spawn(async move {
        nodewright_agent_shim::run(client, options, host, std::future::pending())
            .await
            .unwrap();
    });
}

#[test]
fn a_persons_request_the_operators_decisions_and_the_agents_host_steps_of_a_migration_are_linked_in_a_log_that_verifies_against_the_published_checkpoint()
 {
    let rt = Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();

    // The writer: a self-signed certificate for 127.0.0.1, a fresh key, an empty log.
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    std::fs::write(work.path().join("tls.crt"), &cert_pem).unwrap();
    std::fs::write(work.path().join("tls.key"), certified.signing_key.serialize_pem()).unwrap();
    let tls = serve::tls_acceptor(&work.path().join("tls.crt"), &work.path().join("tls.key")).unwrap();
    let (signer, _) = Signer::generate("audit.test/site").unwrap();
    let verifier = signer.verifier();
    let verifier_key = signer.verifier_key().to_owned();
    let dir = work.path().join("log");
    let log = Log::open(&dir, signer, "audit.test/site").unwrap();
    let writer = Writer::new(log, Trail::new(Scope::default()), &dir).unwrap();
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let (published, updates) = tokio::sync::watch::channel(None);
    let shared = Arc::new(Shared::new(writer, metrics.clone(), published));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(serve::serve(
        listener,
        Some(tls),
        shared.clone(),
        std::future::pending(),
    ));

    // The API server sends its audit events to the writer.
    let control_plane = ControlPlane::start(Options {
        audit_webhook: Some(AuditWebhook {
            url: format!("https://127.0.0.1:{port}/audit"),
            ca_pem: Some(cert_pem),
            policy: nodewright_audit_trail::POLICY.to_owned(),
            mode: "blocking".into(),
        }),
        ..Options::default()
    })
    .unwrap();
    let client = rt.block_on(control_plane.client()).unwrap();
    rt.spawn(nodewright_audit_trail::publish::run(
        client.clone(),
        NS.into(),
        verifier_key,
        updates,
    ));
    rt.block_on(nodewright_testenv::install_crds(&client, &nodewright_api::crds()))
        .unwrap();
    rt.block_on(Api::<Namespace>::all(client.clone()).create(
        &PostParams::default(),
        &Namespace {
            metadata: ObjectMeta {
                name: Some(NS.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        },
    ))
    .unwrap();
    // alice may do anything (the test is about what is recorded, not about what she may do).
    rt.block_on(Api::<ClusterRoleBinding>::all(client.clone()).create(
        &PostParams::default(),
        &ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some("alice-admin".into()),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "cluster-admin".into(),
            },
            subjects: Some(vec![Subject {
                kind: "User".into(),
                name: "alice".into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                ..Subject::default()
            }]),
        },
    ))
    .unwrap();
    let alice = rt
        .block_on(nodewright_testenv::client_as(
            control_plane.kubeconfig(),
            "alice",
            vec!["site-owners".into()],
        ))
        .unwrap();
    let mut spec = EdgeClusterSpec {
        profile: SiteProfile {
            topology: Topology::SingleNode,
            storage_backend: Default::default(),
            operating_system: None,
        },
        expected_nodes: None,
        primary_node: None,
        workflows: WorkflowModes::default(),
        legacy: Default::default(),
    };
    spec.workflows.migration = WorkflowMode::Shadow;
    rt.block_on(
        Api::<EdgeCluster>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &EdgeCluster::new("site", spec)),
    )
    .unwrap();

    // The migration scenario, the request made by alice as a Migration object.
    let path = repo().join("golden/scenarios/migration-single-to-multi.yaml");
    let mut scenario = Scenario::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let is_request = |e: &run::Event| matches!(&e.action, Action::Kubectl(a) if a.iter().any(|x| x.contains("\"migration\"")));
    let request_tick = scenario
        .events
        .iter()
        .find(|e| is_request(e))
        .map(|e| e.tick)
        .unwrap();
    scenario.events.retain(|e| !is_request(e));
    scenario.ticks = 30;
    let epoch = u64::try_from(nodewright_kit::clock::unix_now()).unwrap();
    let world = SharedWorld(Arc::new(Mutex::new(run::world_for_at(&scenario, epoch).unwrap())));
    let state = tempfile::tempdir().unwrap();
    let mut options = OperatorOptions::new(NS, "site", "operator");
    options.interval = Duration::from_millis(300);
    let (stop_operator, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = rt.spawn(nodewright_parity::run::run(
        client.clone(),
        options,
        None,
        async {
            let _ = stopped.await;
        },
    ));
    for node in scenario.nodes.iter().map(|n| n.name.clone()) {
        start_agent(&rt, client.clone(), AgentHost::new(&world, &node), state.path());
    }
    let alice_clusters: Api<EdgeCluster> = Api::namespaced(alice.clone(), NS);
    let alice_migrations: Api<Migration> = Api::namespaced(alice.clone(), NS);
    let migrations: Api<Migration> = Api::namespaced(client.clone(), NS);
    let mut completed_at = None;
    let mut after_tick = |tick: u32, _: &[run::TickOutput]| {
        if tick == 0 {
            let patch = serde_json::json!({"spec": {"workflows": {"migration": "operator"}}});
            rt.block_on(alice_clusters.patch("site", &PatchParams::default(), &Patch::Merge(&patch)))
                .unwrap();
        }
        if tick + 1 == request_tick {
            let m = Migration::new(
                "grow-site",
                MigrationSpec {
                    owner: WorkflowOwner::Operator,
                    cluster_ref: nodewright_api::common::ClusterRef { name: "site".into() },
                    source_node: "edge-1".into(),
                    joining_nodes: vec!["edge-2".into(), "edge-3".into()],
                    replicas: Some(3),
                    rollback: false,
                },
            );
            rt.block_on(alice_migrations.create(&PostParams::default(), &m))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(1500));
        let phase = rt
            .block_on(migrations.get_opt("grow-site"))
            .unwrap()
            .and_then(|m| m.status)
            .and_then(|s| s.phase);
        if phase == Some(MigrationPhase::Completed) {
            let at = *completed_at.get_or_insert(tick);
            if tick > at {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    };
    let run_config = RunConfig {
        script: repo().join("legacy/vx-rail-node-init.sh"),
        sim_binary: PathBuf::from(env!("CARGO_BIN_EXE_vxr-tool")),
        work_dir: std::env::temp_dir().join(format!("vxr-audit-real-{}", std::process::id())),
        stuck_after: Duration::from_secs(60),
    };
    let mut cluster = RealCluster {
        kubectl: control_plane.kubectl().get_program().into(),
        kubeconfig: control_plane.kubeconfig().to_path_buf(),
    };
    run::run_observed(
        &scenario,
        &mut world.clone(),
        &mut cluster,
        &run_config,
        false,
        &mut after_tick,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&run_config.work_dir);
    let _ = stop_operator.send(());
    let _ = rt.block_on(operator);
    let m = rt.block_on(migrations.get("grow-site")).unwrap();
    assert_eq!(m.status.and_then(|s| s.phase), Some(MigrationPhase::Completed));
    let tasks: Vec<NodeTask> = rt
        .block_on(Api::<NodeTask>::namespaced(client.clone(), NS).list(&Default::default()))
        .unwrap()
        .items;

    // The log verifies against the checkpoint the writer published to the cluster, once the
    // publisher caught up with the last append.
    let size = metrics.tree_size.get();
    let (checkpoint, published_key) = rt.block_on(async {
        nodewright_testenv::eventually("the newest checkpoint published", Duration::from_secs(20), || {
            let client = client.clone();
            async move {
                let (checkpoint, key) = nodewright_audit_trail::publish::read(client, NS).await.ok()?;
                checkpoint
                    .lines()
                    .nth(1)
                    .and_then(|l| l.parse::<i64>().ok())
                    .filter(|s| *s >= size)?;
                Some((checkpoint, key))
            }
        })
        .await
    });
    assert_eq!(published_key.as_deref(), Some(verifier.text()));
    let report = nodewright_audit::verify(
        &dir,
        &VerifyOptions {
            verifiers: vec![verifier],
            checkpoint: Some(checkpoint),
        },
    )
    .unwrap();
    assert!(report.entries >= u64::try_from(size).unwrap());

    // One query from alice's request reaches every host step of the migration.
    let entries: Vec<(u64, Entry)> = nodewright_audit::read(&dir)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let by_alice = query::select(
        &entries,
        &Filter {
            user: Some("alice".into()),
            ..Filter::default()
        },
    );
    let request = by_alice
        .iter()
        .map(|(_, e)| e)
        .find(|e| {
            e.verb.as_deref() == Some("create") && e.object.as_ref().is_some_and(|o| o.kind == "Migration")
        })
        .expect("alice's request for the migration is in the log");
    assert_eq!(request.detail["impersonator"], "nodewright-admin");
    assert!(request.groups.contains(&"site-owners".to_owned()));
    let mode_change = by_alice
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.changes.iter().any(|c| c.path == "/spec/workflows/migration"))
        .expect("alice's mode change is in the log");
    assert_eq!(mode_change.changes[0].new, Some(serde_json::json!("operator")));
    let chain = query::select(
        &entries,
        &Filter {
            from: Some(request.id.clone()),
            ..Filter::default()
        },
    );
    let steps: BTreeMap<String, &Entry> = chain
        .iter()
        .filter(|(_, e)| e.kind == EntryKind::Step)
        .map(|(_, e)| (e.id.clone(), e))
        .collect();
    for task in &tasks {
        let attempts = task.status.as_ref().map_or(0, |s| s.attempts);
        let id = format!("{}/{attempts}", task.spec.idempotency_key);
        assert!(
            steps.contains_key(&id),
            "the step {id} does not follow from alice's request: {:?}",
            steps.keys()
        );
    }
    assert!(tasks.len() >= 6, "{} tasks", tasks.len());
    let decisions: Vec<&str> = chain
        .iter()
        .filter(|(_, e)| e.kind == EntryKind::Decision)
        .filter_map(|(_, e)| e.workflow.as_ref()?.state.as_deref())
        .collect();
    assert!(decisions.contains(&"Completed"), "{decisions:?}");
    assert!(decisions.len() >= 4, "{decisions:?}");
    // The decisions also follow from the mode change.
    assert!(
        chain
            .iter()
            .filter(|(_, e)| e.kind == EntryKind::Decision)
            .all(|(_, e)| e.caused_by.contains(&mode_change.id))
    );
    let text: String = chain.iter().map(|(i, e)| query::text(*i, e)).collect();
    assert!(
        text.contains(
            "request alice (as impersonated by nodewright-admin) create Migration/nodewright-system/grow-site"
        ),
        "{text}"
    );
    eprintln!("{text}");
}
