//! The agent refuses what it cannot attribute to the operator, against a real API server and the
//! simulated edge world: a task whose `nodewright.io/created-by` does not name the operator it was
//! told of, and a site-storage delete (`linstor-node-delete`) that no rolling-back Migration asked
//! for, are failed as `Refused` with a Warning Event, and no host command runs; the same delete
//! asked for by a rolling-back Migration runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use nodewright_api::migration::{Migration, MigrationSpec};
use nodewright_api::nodetask::{CREATED_BY_ANNOTATION, NodeTask, NodeTaskPhase, WorkflowKind, WorkflowRef};

use common::*;

const OPERATOR: &str = "system:serviceaccount:nodewright-system:nw-operator";

fn by(mut t: NodeTask, creator: &str) -> NodeTask {
    t.metadata.annotations = Some([(CREATED_BY_ANNOTATION.to_owned(), creator.to_owned())].into());
    t
}

/// edge-1's agent, told the operator's name.
fn start(site: &Edge1, pod: &str) -> RunningAgent {
    let mut options = options(&site.ctx.namespace, "edge-1", pod, site.state.path());
    options.operator = Some(OPERATOR.to_owned());
    start_agent(site.ctx.client.clone(), options, site.host.clone())
}

/// The Warning Event the agent published about `task`, once it is there.
async fn refusal_event(site: &Edge1, task: &str) -> Event {
    let events: Api<Event> = site.ctx.api();
    eventually(
        &format!("a Refused Event about {task}"),
        Duration::from_secs(30),
        || async {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("Refused")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(task)
                })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_not_attributed_to_the_operator_is_refused_with_an_event_and_nothing_runs() {
    let site = Edge1::new("agent-unattributed").await;
    let api = site.ctx.api::<NodeTask>();
    let agent = start(&site, "agent-edge-1-auth");
    let create = |t: NodeTask| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &t).await.unwrap() }
    };
    create(node_task("anon", "edge-1", "linstor-node-list", &[], "anon-1")).await;
    create(by(
        node_task("forged", "edge-1", "linstor-node-list", &[], "forged-1"),
        "jane",
    ))
    .await;
    create(by(
        node_task("real", "edge-1", "linstor-node-list", &[], "real-1"),
        OPERATOR,
    ))
    .await;

    for (name, says) in [("anon", "is missing"), ("forged", "is \"jane\"")] {
        let done = finished(&api, name).await;
        let status = done.status.clone().unwrap();
        assert_eq!(status.phase, Some(NodeTaskPhase::Failed), "{name}");
        let message = status.message.unwrap();
        assert!(
            message.contains("not attributed to the operator") && message.contains(says),
            "{name}: {message}"
        );
        assert_eq!(
            condition(&done, nodewright_api::common::condition_type::COMPLETE).map(|c| c.reason.as_str()),
            Some("Refused")
        );
        let event = refusal_event(&site, name).await;
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert!(event.note.unwrap().contains("not attributed"), "{name}");
    }
    let real = finished(&api, "real").await;
    assert_eq!(real.status.unwrap().phase, Some(NodeTaskPhase::Succeeded));
    // Only the attributed task's command ran.
    assert_eq!(
        site.host.ran(),
        vec![vec!["linstor", "--no-color", "node", "list"]]
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_storage_delete_runs_only_while_its_migration_rolls_back() {
    let site = Edge1::new("agent-delete").await;
    let api = site.ctx.api::<NodeTask>();
    let migrations = site.ctx.api::<Migration>();
    let spec: MigrationSpec = serde_json::from_value(serde_json::json!({
        "owner": "operator", "clusterRef": {"name": "site"},
        "sourceNode": "edge-1", "joiningNodes": ["edge-2"],
    }))
    .unwrap();
    let m = migrations
        .create(&PostParams::default(), &Migration::new("grow", spec))
        .await
        .unwrap();
    let set_phase = |phase: &str| {
        let (migrations, phase) = (migrations.clone(), phase.to_owned());
        async move {
            migrations
                .patch_status(
                    "grow",
                    &PatchParams::default(),
                    &Patch::Merge(&serde_json::json!({"status": {"phase": phase}})),
                )
                .await
                .unwrap();
        }
    };
    let delete = |name: &str, target: &str| {
        let mut t = by(
            node_task(name, "edge-1", "linstor-node-delete", &[target], name),
            OPERATOR,
        );
        t.spec.workflow_ref = Some(WorkflowRef {
            kind: WorkflowKind::Migration,
            name: "grow".into(),
        });
        t.metadata.owner_references = m.controller_owner_ref(&()).map(|o| vec![o]);
        t
    };
    // edge-2 registered, as the migration's forward phase would have left it.
    create(
        &site.ctx,
        &by(
            node_task(
                "register",
                "edge-1",
                "linstor-node-create",
                &["edge-2", "10.10.100.12"],
                "reg",
            ),
            OPERATOR,
        ),
    )
    .await;
    set_phase("PlacingReplicas").await;
    let agent = start(&site, "agent-edge-1-del");
    assert_eq!(
        finished(&api, "register").await.status.unwrap().phase,
        Some(NodeTaskPhase::Succeeded)
    );

    // Not rolling back: refused, nothing deleted.
    api.create(&PostParams::default(), &delete("early", "edge-2"))
        .await
        .unwrap();
    let early = finished(&api, "early").await.status.unwrap();
    assert_eq!(early.phase, Some(NodeTaskPhase::Failed));
    let message = early.message.unwrap();
    assert!(
        message.contains("removes storage the whole site shares")
            && message.contains("in phase PlacingReplicas"),
        "{message}"
    );
    refusal_event(&site, "early").await;
    assert!(linstor_nodes(&site.world).contains("edge-2"));

    // Rolling back, the source node: refused.
    set_phase("RollingBack").await;
    api.create(&PostParams::default(), &delete("source", "edge-1"))
        .await
        .unwrap();
    let source = finished(&api, "source").await.status.unwrap();
    assert!(
        source.message.unwrap().contains("\"edge-1\" is not one of"),
        "the source node's storage is never deleted"
    );
    assert_eq!(site.host.count(&["node", "delete"]), 0);

    // Rolling back, a joining node: runs.
    api.create(&PostParams::default(), &delete("undo", "edge-2"))
        .await
        .unwrap();
    let undo = finished(&api, "undo").await;
    assert_eq!(
        undo.status.as_ref().unwrap().phase,
        Some(NodeTaskPhase::Succeeded),
        "{:?}",
        undo.status
    );
    assert_eq!(
        site.host
            .count(&["linstor", "--no-color", "node", "delete", "edge-2"]),
        1
    );
    assert!(
        !linstor_nodes(&site.world).contains("edge-2"),
        "{}",
        undo.name_any()
    );
    agent.stop().await;
}
