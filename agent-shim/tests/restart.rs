//! The agent survives its API server: killed while a step runs and started again, the API server
//! gets the step's result (the agent retries its status write until the server answers), the step
//! is not run twice, and the agent's watch recovers to take the next task. This test owns its
//! control plane, since it kills it.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase};
use nodewright_testenv::{ControlPlane, Options, install_crds, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_killed_mid_step_gets_the_result_once_it_is_back_and_the_step_runs_once() {
    init_logging();
    let cp = Arc::new(tokio::task::block_in_place(|| ControlPlane::start(Options::default())).unwrap());
    let client = cp.client().await.unwrap();
    install_crds(&client, &nodewright_api::crds()).await.unwrap();
    let ns = unique_name("agent-restart");
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let api: Api<NodeTask> = Api::namespaced(client.clone(), &ns);

    // The API server dies right after the mutation, and comes back a little later.
    let world = world();
    let mut host = SimHost::new(&world, "edge-1");
    let killer = Arc::clone(&cp);
    host.hook = Some(Arc::new(move |argv: &[String]| {
        if argv.iter().any(|a| a == "create") && argv.iter().any(|a| a == "edge-3") {
            killer.kill().unwrap();
            let again = Arc::clone(&killer);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                again.start_again().unwrap();
            });
        }
    }));
    let state = tempfile::tempdir().unwrap();
    let agent = start_agent(
        client.clone(),
        options(&ns, "edge-1", "agent-edge-1-r", state.path()),
        host.clone(),
    );
    api.create(
        &PostParams::default(),
        &node_task(
            "register-edge-3",
            "edge-1",
            "linstor-node-create",
            &["edge-3", "10.10.100.13"],
            "k-3",
        ),
    )
    .await
    .unwrap();

    let done = finished(&api, "register-edge-3").await.status.unwrap();
    assert_eq!(done.phase, Some(NodeTaskPhase::Succeeded), "{done:?}");
    assert_eq!(done.attempts, 1);
    assert_eq!(host.count(&["node", "create", "edge-3"]), 1);

    // The watch came back too: a task created after the restart is run.
    api.create(
        &PostParams::default(),
        &node_task(
            "register-edge-2",
            "edge-1",
            "linstor-node-create",
            &["edge-2", "10.10.100.12"],
            "k-2",
        ),
    )
    .await
    .unwrap();
    let done = finished(&api, "register-edge-2").await.status.unwrap();
    assert_eq!(done.phase, Some(NodeTaskPhase::Succeeded), "{done:?}");
    assert_eq!(host.count(&["node", "create", "edge-2"]), 1);
    agent.stop().await;
    tokio::task::block_in_place(|| cp.stop()).unwrap();
}
