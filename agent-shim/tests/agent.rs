//! The node agent against a real kube-apiserver (from `testenv/`) with the simulated edge world
//! (`legacy/sim`) as its host: it claims its own node's tasks and runs them, never touches
//! another node's, answers a repeated idempotency key from its journal, resumes a step a kill
//! interrupted, loses a race for a task gracefully, and fails a step with wrong arguments without
//! running it.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::*;
use kube::api::PostParams;
use nodewright_agent_shim::journal::{Finished, JOURNAL_FILE, Record, Started};
use nodewright_agent_shim::{Claim, claim};
use nodewright_api::common::condition_type;
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase, NodeTaskStatus};

const NODE_CREATE: &[&str] = &["node", "create", "edge-3"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_for_its_node_is_claimed_and_succeeds_and_a_task_for_another_node_is_never_touched() {
    let site = Edge1::new("agent-own-node").await;
    let (ctx, world, host) = (&site.ctx, &site.world, &site.host);
    let api = ctx.api::<NodeTask>();

    // Created first, so that the agent would meet it first if the watch delivered it.
    let other = create(
        ctx,
        &node_task(
            "other-node",
            "edge-2",
            "linstor-node-create",
            &["edge-2", "10.10.100.12"],
            "other-key",
        ),
    )
    .await;
    let agent = site.start("agent-edge-1-a");
    create(
        ctx,
        &node_task(
            "register-edge-3",
            "edge-1",
            "linstor-node-create",
            &["edge-3", "10.10.100.13/24"],
            "mig-1:edge-3",
        ),
    )
    .await;

    let done = finished(&api, "register-edge-3").await;
    let status = done.status.clone().unwrap();
    assert_eq!(status.phase, Some(NodeTaskPhase::Succeeded), "{status:?}");
    assert_eq!(status.exit_code, Some(0));
    assert_eq!(status.claimed_by.as_deref(), Some("agent-edge-1-a"));
    assert_eq!(status.attempts, 1);
    assert!(status.started_at.is_some() && status.finished_at.is_some());
    let output = status.output.unwrap();
    assert!(
        output.contains("$ linstor --no-color node create edge-3 10.10.100.13 --node-type satellite"),
        "{output}"
    );
    assert!(output.contains("New node 'edge-3' registered."), "{output}");
    let complete = condition(&done, condition_type::COMPLETE).unwrap();
    assert_eq!(
        (complete.status.as_str(), complete.reason.as_str()),
        ("True", "Succeeded")
    );

    // The satellite is there, registered by the legacy script's own command, once.
    assert!(
        linstor_nodes(world).contains("┊ edge-3 "),
        "{}",
        linstor_nodes(world)
    );
    assert_eq!(host.count(NODE_CREATE), 1);

    // The other node's task: no status, same resourceVersion, and no command for it ran.
    let other_now = api.get("other-node").await.unwrap();
    assert_eq!(other_now.status, None);
    assert_eq!(
        other_now.metadata.resource_version,
        other.metadata.resource_version
    );
    assert_eq!(host.count(&["node", "create", "edge-2"]), 0);
    assert!(!linstor_nodes(world).contains("┊ edge-2 "));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_step_reports_the_commands_standard_output() {
    let site = Edge1::new("agent-read-only").await;
    let (ctx, world, host) = (&site.ctx, &site.world, &site.host);
    let api = ctx.api::<NodeTask>();
    let agent = site.start("agent-edge-1-ro");
    create(
        ctx,
        &node_task("nodes", "edge-1", "linstor-node-list", &[], "list-1"),
    )
    .await;
    let done = finished(&api, "nodes").await;
    let status = done.status.unwrap();
    assert_eq!(status.phase, Some(NodeTaskPhase::Succeeded));
    assert_eq!(status.output.as_deref(), Some(linstor_nodes(world).as_str()));
    assert_eq!(host.ran(), vec![vec!["linstor", "--no-color", "node", "list"]]);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_in_a_second_task_is_reported_from_the_journal_without_running_again() {
    let site = Edge1::new("agent-repeat").await;
    let (ctx, world, host) = (&site.ctx, &site.world, &site.host);
    let api = ctx.api::<NodeTask>();
    let agent = site.start("agent-edge-1-r");

    let args = ["edge-3", "10.10.100.13"];
    create(
        ctx,
        &node_task("first", "edge-1", "linstor-node-create", &args, "mig-1:edge-3"),
    )
    .await;
    let first = finished(&api, "first").await.status.unwrap();
    assert_eq!(first.phase, Some(NodeTaskPhase::Succeeded));
    let commands_after_first = host.ran().len();
    let world_after_first = world.lock().unwrap().clone();

    // A re-created task: same key, new name (and uid).
    create(
        ctx,
        &node_task("second", "edge-1", "linstor-node-create", &args, "mig-1:edge-3"),
    )
    .await;
    let second_task = finished(&api, "second").await;
    let second = second_task.status.clone().unwrap();
    assert_eq!(second.phase, Some(NodeTaskPhase::Succeeded));
    assert_eq!(second.exit_code, Some(0));
    assert_eq!(second.output, first.output, "the earlier result is reported");
    let message = second.message.unwrap();
    assert!(
        message.contains("idempotency key mig-1:edge-3 already ran on this node"),
        "{message}"
    );
    assert!(message.contains("task first"), "{message}");
    assert_eq!(second.attempts, 0, "the step was not started for the second task");
    assert_eq!(
        condition(&second_task, condition_type::COMPLETE).unwrap().reason,
        "ReportedFromJournal"
    );

    // Nothing ran on the host for the second task, and the world did not change.
    assert_eq!(host.ran().len(), commands_after_first);
    assert_eq!(*world.lock().unwrap(), world_after_first);
    assert_eq!(host.count(NODE_CREATE), 1);

    // The same key for a different step is refused, and nothing runs either.
    create(
        ctx,
        &node_task(
            "third",
            "edge-1",
            "linstor-node-delete",
            &["edge-3"],
            "mig-1:edge-3",
        ),
    )
    .await;
    let third = finished(&api, "third").await.status.unwrap();
    assert_eq!(third.phase, Some(NodeTaskPhase::Failed));
    assert!(third.message.unwrap().contains("needs a new key"));
    assert_eq!(host.ran().len(), commands_after_first);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_step_resumes_on_restart_and_the_task_succeeds_with_the_mutation_applied_once() {
    let ctx = context("agent-killed").await;
    let api = ctx.api::<NodeTask>();
    let world = world();
    let state = tempfile::tempdir().unwrap();

    // The first agent's host applies `node create` and then hangs, like a node losing power
    // right after the mutation and before anything else is written.
    let (reached_tx, reached_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let reached_tx = std::sync::Mutex::new(reached_tx);
    let release_rx = std::sync::Mutex::new(release_rx);
    let mut first_host = SimHost::new(&world, "edge-1");
    first_host.hook = Some(Arc::new(move |argv: &[String]| {
        if argv.iter().any(|a| a == "create") {
            let _ = reached_tx.lock().unwrap().send(());
            let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
        }
    }));
    let first = start_agent(
        ctx.client.clone(),
        options(&ctx.namespace, "edge-1", "agent-edge-1-old", state.path()),
        first_host.clone(),
    );
    create(
        &ctx,
        &node_task(
            "register-edge-3",
            "edge-1",
            "linstor-node-create",
            &["edge-3", "10.10.100.13"],
            "mig-2:edge-3",
        ),
    )
    .await;
    tokio::task::spawn_blocking(move || reached_rx.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("the first agent reaches the mutation");

    // Kill it: the agent's future is dropped at once, nothing more is written.
    first.task.abort();
    assert!(first.task.await.unwrap_err().is_cancelled());
    let _ = release_tx.send(());

    let journal = std::fs::read_to_string(state.path().join(JOURNAL_FILE)).unwrap();
    assert_eq!(journal.matches("\"record\":\"started\"").count(), 1, "{journal}");
    assert_eq!(journal.matches("\"record\":\"finished\"").count(), 0, "{journal}");
    let running = api.get("register-edge-3").await.unwrap().status.unwrap();
    assert_eq!(running.phase, Some(NodeTaskPhase::Running));
    assert_eq!(running.claimed_by.as_deref(), Some("agent-edge-1-old"));
    assert!(
        linstor_nodes(&world).contains("┊ edge-3 "),
        "the mutation happened before the kill"
    );

    // The restarted agent (a new pod on the same node, same state directory) resumes it.
    let second_host = SimHost::new(&world, "edge-1");
    let second = start_agent(
        ctx.client.clone(),
        options(&ctx.namespace, "edge-1", "agent-edge-1-new", state.path()),
        second_host.clone(),
    );
    let done = finished(&api, "register-edge-3").await.status.unwrap();
    assert_eq!(done.phase, Some(NodeTaskPhase::Succeeded), "{done:?}");
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.attempts, 2);
    assert_eq!(done.claimed_by.as_deref(), Some("agent-edge-1-new"));
    let message = done.message.unwrap();
    assert!(
        message.starts_with("resumed after an interruption (attempt 1"),
        "{message}"
    );
    assert!(
        message.contains("already done: LINSTOR node edge-3 exists already"),
        "{message}"
    );

    // The mutation ran once in all: the restarted agent only checked.
    assert_eq!(first_host.count(NODE_CREATE) + second_host.count(NODE_CREATE), 1);
    assert_eq!(
        second_host.ran(),
        vec![vec!["linstor", "--no-color", "node", "list"]]
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stopped_after_the_step_but_before_the_status_write_reports_from_its_journal_without_running()
 {
    let ctx = context("agent-unreported").await;
    let api = ctx.api::<NodeTask>();
    let world = world();
    let state = tempfile::tempdir().unwrap();

    // The task as the stopped agent left it: claimed and Running.
    let task = create(
        &ctx,
        &node_task(
            "register-edge-3",
            "edge-1",
            "linstor-node-create",
            &["edge-3", "10.10.100.13"],
            "mig-3:edge-3",
        ),
    )
    .await;
    let mut running = task.clone();
    running.status = Some(NodeTaskStatus {
        phase: Some(NodeTaskPhase::Running),
        claimed_by: Some("agent-edge-1-old".into()),
        attempts: 1,
        started_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        )),
        ..NodeTaskStatus::default()
    });
    api.replace_status("register-edge-3", &PostParams::default(), &running)
        .await
        .unwrap();
    // Its journal, written by hand: the step started and finished.
    let records = [
        Record::Started(Started {
            key: "mig-3:edge-3".into(),
            task_uid: task.metadata.uid.clone().unwrap(),
            task_name: "register-edge-3".into(),
            step: "linstor-node-create".into(),
            args: vec!["edge-3".into(), "10.10.100.13".into()],
            attempt: 1,
            at: "2026-11-29T19:00:00Z".into(),
        }),
        Record::Finished(Finished {
            key: "mig-3:edge-3".into(),
            code: 0,
            output_tail: "SUCCESS: registered\n".into(),
            message: "done".into(),
            at: "2026-11-29T19:00:02Z".into(),
        }),
    ];
    let text: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(state.path().join(JOURNAL_FILE), text).unwrap();

    let host = SimHost::new(&world, "edge-1");
    let agent = start_agent(
        ctx.client.clone(),
        options(&ctx.namespace, "edge-1", "agent-edge-1-new", state.path()),
        host.clone(),
    );
    let done = finished(&api, "register-edge-3").await.status.unwrap();
    assert_eq!(done.phase, Some(NodeTaskPhase::Succeeded));
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.output.as_deref(), Some("SUCCESS: registered\n"));
    assert_eq!(done.attempts, 1);
    assert!(
        done.message
            .unwrap()
            .starts_with("reported from the journal after an agent restart")
    );
    assert!(host.ran().is_empty(), "nothing ran: {:?}", host.ran());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_for_the_same_node_racing_for_the_same_tasks_run_each_exactly_once() {
    let ctx = context("agent-race").await;
    let api = ctx.api::<NodeTask>();
    let world = world();
    let a_host = SimHost::new(&world, "edge-1");
    let b_host = SimHost::new(&world, "edge-1");
    let (a_state, b_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_agent(
        ctx.client.clone(),
        options(&ctx.namespace, "edge-1", "agent-edge-1-a", a_state.path()),
        a_host.clone(),
    );
    let b = start_agent(
        ctx.client.clone(),
        options(&ctx.namespace, "edge-1", "agent-edge-1-b", b_state.path()),
        b_host.clone(),
    );

    // Several tasks, so the two agents meet on most of them.
    let resources = ["pvc-a", "pvc-b", "pvc-c", "pvc-d", "pvc-e", "pvc-f"];
    for r in resources {
        create(
            &ctx,
            &node_task(
                r,
                "edge-1",
                "resource-create",
                &["edge-1", r, "pool0"],
                &format!("place:{r}"),
            ),
        )
        .await;
    }
    for r in resources {
        let done = finished(&api, r).await.status.unwrap();
        assert_eq!(done.phase, Some(NodeTaskPhase::Succeeded), "{r}: {done:?}");
        assert_eq!(done.attempts, 1, "{r} was claimed once");
        let words = ["resource", "create", "edge-1", r];
        let runs = a_host.count(&words) + b_host.count(&words);
        assert_eq!(runs, 1, "{r} was created {runs} times");
        let by = done.claimed_by.unwrap();
        let runner = if a_host.count(&words) == 1 {
            "agent-edge-1-a"
        } else {
            "agent-edge-1-b"
        };
        assert_eq!(by, runner, "{r}: the claimant ran it");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_command_completes_after_its_timeout_is_unknown_then_settled_by_its_check_before_the_next_task()
 {
    let ctx = context("agent-timeout").await;
    let api = ctx.api::<NodeTask>();
    let world = world();
    let mut host = SimHost::new(&world, "edge-1");
    // The mutation takes effect, but only after the step's timeout (the simulated host does not
    // kill at the deadline): the record must not count it as finished.
    host.hook = Some(Arc::new(|argv: &[String]| {
        if argv.iter().any(|a| a == "create") {
            std::thread::sleep(Duration::from_secs(4));
        }
    }));
    let state = tempfile::tempdir().unwrap();
    let agent = start_agent(
        ctx.client.clone(),
        options(&ctx.namespace, "edge-1", "agent-edge-1-t", state.path()),
        host.clone(),
    );
    let mut task = node_task(
        "slow",
        "edge-1",
        "linstor-node-create",
        &["edge-3", "10.10.100.13"],
        "slow-1",
    );
    task.spec.timeout_seconds = 1;
    create(&ctx, &task).await;
    eventually("the slow task to be claimed", Duration::from_secs(30), || async {
        let t = api.get("slow").await.ok()?;
        (t.status.as_ref()?.phase? == NodeTaskPhase::Running).then_some(())
    })
    .await;
    // A second task queued behind it: it must not run before the first is settled.
    create(
        &ctx,
        &node_task("after", "edge-1", "linstor-node-list", &[], "after-1"),
    )
    .await;
    let unknown = eventually("the slow task to be Unknown", Duration::from_secs(30), || async {
        let t = api.get("slow").await.ok()?;
        (t.status.as_ref()?.phase? == NodeTaskPhase::Unknown).then_some(t)
    })
    .await;
    let status = unknown.status.clone().unwrap();
    assert_eq!(status.exit_code, None, "not finished");
    assert_eq!(status.finished_at, None);
    assert!(status.message.unwrap().starts_with("timed out after 1s"));
    assert_eq!(
        condition(&unknown, condition_type::COMPLETE).unwrap().status,
        "Unknown"
    );
    // The journal holds a time-out, not a result.
    let journal = std::fs::read_to_string(state.path().join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"record\":\"timedOut\""), "{journal}");
    assert!(
        !journal.contains("\"record\":\"finished\",\"key\":\"slow-1\""),
        "{journal}"
    );

    let done = finished(&api, "slow").await;
    let status = done.status.clone().unwrap();
    assert_eq!(status.phase, Some(NodeTaskPhase::Succeeded), "{status:?}");
    assert!(
        status
            .message
            .as_deref()
            .unwrap()
            .contains("found done on the host by its check"),
        "{status:?}"
    );
    assert_eq!(host.count(&["node", "create"]), 1, "the step is never run again");
    let after = finished(&api, "after").await;
    assert_eq!(
        after.status.as_ref().unwrap().phase,
        Some(NodeTaskPhase::Succeeded)
    );
    // The host's order: the create, then the check that settled it, then the next task.
    let ran = host.ran();
    let create_at = ran.iter().position(|a| a.contains(&"create".to_owned())).unwrap();
    let lists: Vec<usize> = ran
        .iter()
        .enumerate()
        .filter(|(_, a)| a.ends_with(&["node".to_owned(), "list".to_owned()]))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(lists.len(), 3, "check, settle check, next task: {ran:?}");
    assert!(lists[0] < create_at && lists[1] > create_at, "{ran:?}");
    let complete = condition(&done, condition_type::COMPLETE).unwrap();
    assert_eq!(complete.reason, "TimedOutFoundDone");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_check_of_a_timed_out_step_gives_no_answer_nothing_else_runs_on_the_node() {
    let ctx = context("agent-timeout-no-answer").await;
    let api = ctx.api::<NodeTask>();
    let world = world();
    let mut host = SimHost::new(&world, "edge-1");
    // The mutation outlives its timeout, and then LINSTOR cannot be reached.
    let down = Arc::clone(&host.linstor_down);
    host.hook = Some(Arc::new(move |argv: &[String]| {
        if argv.iter().any(|a| a == "create") {
            std::thread::sleep(Duration::from_secs(4));
            down.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }));
    let state = tempfile::tempdir().unwrap();
    let agent = start_agent(
        ctx.client.clone(),
        options(&ctx.namespace, "edge-1", "agent-edge-1-t", state.path()),
        host.clone(),
    );
    let mut task = node_task(
        "slow",
        "edge-1",
        "linstor-node-create",
        &["edge-3", "10.10.100.13"],
        "slow-3",
    );
    task.spec.timeout_seconds = 1;
    create(&ctx, &task).await;
    eventually("the slow task to be claimed", Duration::from_secs(30), || async {
        let t = api.get("slow").await.ok()?;
        (t.status.as_ref()?.phase? == NodeTaskPhase::Running).then_some(())
    })
    .await;
    create(
        &ctx,
        &node_task("next", "edge-1", "module-load", &["drbd"], "next-3"),
    )
    .await;
    // The marker that the agent has tried to settle it and found no answer: a second try of the
    // check (the resync is 2 s), each failing.
    eventually(
        "two checks without an answer",
        Duration::from_secs(30),
        || async {
            let lists = host
                .ran()
                .iter()
                .skip_while(|a| !a.contains(&"create".to_owned()))
                .filter(|a| a.ends_with(&["node".to_owned(), "list".to_owned()]))
                .count();
            (lists >= 2).then_some(())
        },
    )
    .await;
    let slow = api.get("slow").await.unwrap();
    assert_eq!(slow.status.as_ref().unwrap().phase, Some(NodeTaskPhase::Unknown));
    let next = api.get("next").await.unwrap();
    assert!(
        next.status.as_ref().and_then(|s| s.phase).is_none(),
        "another task ran while a step was unsettled: {next:?}"
    );
    assert_eq!(host.count(&["lsmod"]), 0, "nothing else ran on the host");

    // LINSTOR is back: the step is settled (it took effect), then the next task runs.
    host.linstor_down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let slow = finished(&api, "slow").await;
    assert_eq!(
        slow.status.as_ref().unwrap().phase,
        Some(NodeTaskPhase::Succeeded)
    );
    finished(&api, "next").await;
    assert_eq!(host.count(&["node", "create"]), 1);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_timed_out_and_is_not_done_on_the_host_fails() {
    let ctx = context("agent-timeout-not-done").await;
    let api = ctx.api::<NodeTask>();
    let world = world();
    let mut host = SimHost::new(&world, "edge-1");
    // The mutation hangs past the deadline and is then undone, as if killed before it acted.
    let w = Arc::clone(&world);
    host.hook = Some(Arc::new(move |argv: &[String]| {
        if argv.iter().any(|a| a == "create") {
            std::thread::sleep(Duration::from_secs(4));
            let delete: Vec<String> = ["linstor", "--no-color", "node", "delete", "edge-3"]
                .map(String::from)
                .to_vec();
            w.lock().unwrap().exec("edge-1", &delete, &[]);
        }
    }));
    let state = tempfile::tempdir().unwrap();
    let agent = start_agent(
        ctx.client.clone(),
        options(&ctx.namespace, "edge-1", "agent-edge-1-t", state.path()),
        host.clone(),
    );
    let mut task = node_task(
        "slow",
        "edge-1",
        "linstor-node-create",
        &["edge-3", "10.10.100.13"],
        "slow-2",
    );
    task.spec.timeout_seconds = 1;
    create(&ctx, &task).await;
    let done = finished(&api, "slow").await;
    let status = done.status.clone().unwrap();
    assert_eq!(status.phase, Some(NodeTaskPhase::Failed), "{status:?}");
    assert_eq!(status.exit_code, Some(124));
    assert!(
        status
            .message
            .as_deref()
            .unwrap()
            .contains("not done on the host"),
        "{status:?}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_made_from_a_stale_read_loses_with_a_conflict_and_the_first_claim_stands() {
    let ctx = context("agent-claim-conflict").await;
    let api = ctx.api::<NodeTask>();
    let read_by_both = create(&ctx, &node_task("t", "edge-1", "linstor-node-list", &[], "k")).await;
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());

    let first = claim(&api, &read_by_both, "agent-edge-1-a", "running", &now)
        .await
        .unwrap();
    let Claim::Claimed(claimed) = first else {
        panic!("the first claim wins");
    };
    assert_eq!(
        claimed.status.as_ref().unwrap().claimed_by.as_deref(),
        Some("agent-edge-1-a")
    );

    let second = claim(&api, &read_by_both, "agent-edge-1-b", "running", &now)
        .await
        .unwrap();
    assert!(matches!(second, Claim::Lost), "{second:?}");
    let status = api.get("t").await.unwrap().status.unwrap();
    assert_eq!(status.claimed_by.as_deref(), Some("agent-edge-1-a"));
    assert_eq!(status.attempts, 1);
    assert_eq!(status.phase, Some(NodeTaskPhase::Running));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_step_is_refused_at_create_and_a_wrong_argument_count_fails_the_task_with_a_clear_message_and_nothing_runs()
 {
    let site = Edge1::new("agent-unknown").await;
    let (ctx, host) = (&site.ctx, &site.host);
    let api = ctx.api::<NodeTask>();
    let agent = site.start("agent-edge-1-u");

    // The CRD accepts only the catalogue's step names, so an unknown step never reaches the agent
    // through a new task (the agent's own "unknown step" failure, for a task that outlived its
    // step, is covered by the catalogue's unit tests).
    let refused = api
        .create(
            &PostParams::default(),
            &node_task("wipe", "edge-1", "format-disk", &["/dev/sda"], "wipe-1"),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("spec.step"), "{refused}");
    create(
        ctx,
        &node_task("short", "edge-1", "linstor-node-create", &["edge-3"], "short-1"),
    )
    .await;
    let short_task = finished(&api, "short").await;
    let failed = condition(&short_task, condition_type::FAILED).unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.reason.as_str()),
        ("True", "InvalidStep")
    );
    let short = short_task.status.unwrap();
    assert_eq!(short.exit_code, None);
    assert_eq!(short.attempts, 0);
    assert_eq!(short.phase, Some(NodeTaskPhase::Failed));
    assert!(
        short
            .message
            .unwrap()
            .starts_with("step linstor-node-create takes 2 argument(s) (<node> <ip>), got 1")
    );

    assert!(host.ran().is_empty(), "nothing ran: {:?}", host.ran());
    agent.stop().await;
}
