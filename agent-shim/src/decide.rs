//! The claim decision, pure: given a `NodeTask` as read from the API server, this agent's node
//! and pod, what its journal says about the task's idempotency key, and the time, what the agent
//! does with the task. No I/O; the runtime acts on the [`Decision`].
//!
//! The rules, in order:
//! 1. a task for another node is ignored (the field selector should never deliver one);
//! 2. a `Succeeded` or `Failed` task is left alone;
//! 3. a key the journal recorded for a different step or arguments is refused, nothing runs;
//! 4. a key the journal has as finished is reported from the journal, never run again;
//! 5. a key the journal has as timed out with its outcome unknown is left to the settling (the
//!    host's check says done or not done), never run again;
//! 6. a key the journal has as interrupted (started, not finished) is claimed and re-run — safe
//!    because every mutating step checks first — and the message says it was resumed;
//! 7. a new key: a `Pending` task is claimed; a `Running` task claimed by this pod is re-run (its
//!    journal record was lost); one claimed by another pod is left to it, unless that claim is
//!    older than the task's timeout plus a grace period (its agent is gone): then it is taken over.
//!
//! Before the runtime runs a task or reports one from the journal, [`authorize`] says whether the
//! agent may act on it at all: attributed to the operator, and, for a step that removes the site's
//! storage, asked for by a rolling-back Migration.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use nodewright_api::migration::{Migration, MigrationPhase};
use nodewright_api::nodetask::{
    CREATED_BY_ANNOTATION, NodeTask, NodeTaskPhase, SITE_STORAGE_DELETES, WorkflowKind,
};

use crate::journal::{Finished, JournalState, KeyState, Started};

/// Who this agent is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The node it runs on (`spec.nodeName` of its tasks).
    pub node: String,
    /// Its pod name (`status.claimedBy` of the tasks it claims).
    pub pod: String,
}

/// Why a task is claimed and run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunReason {
    /// A new task.
    Fresh,
    /// The journal shows the step started on this node and never finished.
    ResumeInterrupted {
        /// The attempt that was interrupted.
        attempt: i32,
        /// When it started.
        at: String,
    },
    /// The task is `Running`, claimed by this very pod, with no journal record.
    RerunOwnClaim,
    /// Another pod's claim is older than the task's timeout plus the grace period.
    TakeOver {
        /// The pod that held it.
        from: String,
    },
}

/// Why a task is left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// It is `Succeeded` or `Failed`.
    Finished,
    /// Another agent claimed it and may still be running it.
    ClaimedByOther {
        /// That agent's pod.
        pod: String,
    },
    /// Its step ran out of time here with its outcome unknown: the host's check settles it
    /// (the runtime does that before anything else runs on the node), never a re-run.
    Unsettled,
}

/// What to do with a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The task is for another node.
    IgnoreOtherNode {
        /// The node it is for.
        node: String,
    },
    /// Nothing to do.
    LeaveAlone(LeaveReason),
    /// Claim it and run the step.
    Run(RunReason),
    /// The key already finished here: report that result without running anything.
    Report(Box<EarlierResult>),
    /// The key already ran here for a different step or arguments: fail the task, run nothing.
    RefuseReusedKey {
        /// Why, for the task's message.
        message: String,
    },
}

/// A result the journal already holds for a task's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EarlierResult {
    /// The journal's start record, when kept.
    pub started: Option<Started>,
    /// The journal's result.
    pub finished: Finished,
    /// Whether the result is this very task's (the agent stopped before reporting it).
    pub same_task: bool,
}

fn phase(task: &NodeTask) -> Option<NodeTaskPhase> {
    task.status.as_ref().and_then(|s| s.phase)
}

/// Decides what the agent `me` does with `task`, from `journal` and `now`.
pub fn decide(
    task: &NodeTask,
    me: &Identity,
    journal: &JournalState,
    now: &Time,
    grace: Duration,
) -> Decision {
    let spec = &task.spec;
    if spec.node_name != me.node {
        return Decision::IgnoreOtherNode {
            node: spec.node_name.clone(),
        };
    }
    let phase = phase(task);
    if matches!(phase, Some(NodeTaskPhase::Succeeded | NodeTaskPhase::Failed)) {
        return Decision::LeaveAlone(LeaveReason::Finished);
    }
    let key = &spec.idempotency_key;
    let state = journal.key_state(key);
    let recorded = match &state {
        KeyState::Interrupted(s) => Some(*s),
        KeyState::Finished { started, .. } | KeyState::Unsettled { started, .. } => *started,
        KeyState::New => None,
    };
    if let Some(s) = recorded
        && !s.step.is_empty()
        && (s.step != spec.step || s.args != spec.args)
    {
        return Decision::RefuseReusedKey {
            message: format!(
                "idempotency key {key} already ran on this node as `{} {}` (task {}); this task asks for `{} {}`, which needs a new key",
                s.step,
                s.args.join(" "),
                if s.task_name.is_empty() {
                    &s.task_uid
                } else {
                    &s.task_name
                },
                spec.step,
                spec.args.join(" "),
            ),
        };
    }
    let uid = task.metadata.uid.as_deref().unwrap_or("");
    match state {
        KeyState::Finished { started, finished } => Decision::Report(Box::new(EarlierResult {
            same_task: started.is_some_and(|s| !uid.is_empty() && s.task_uid == uid),
            started: started.cloned(),
            finished: finished.clone(),
        })),
        KeyState::Unsettled { .. } => Decision::LeaveAlone(LeaveReason::Unsettled),
        KeyState::Interrupted(s) => Decision::Run(RunReason::ResumeInterrupted {
            attempt: s.attempt,
            at: s.at.clone(),
        }),
        KeyState::New => {
            let status = task.status.as_ref();
            let claimant = status.and_then(|s| s.claimed_by.clone()).unwrap_or_default();
            match phase {
                None | Some(NodeTaskPhase::Pending) => Decision::Run(RunReason::Fresh),
                Some(_) if claimant == me.pod => Decision::Run(RunReason::RerunOwnClaim),
                Some(_) => {
                    let limit = Duration::from_secs(u64::try_from(spec.timeout_seconds).unwrap_or(0)) + grace;
                    let stale = match status.and_then(|s| s.started_at.as_ref()) {
                        Some(started) => {
                            let age = now.0.duration_since(started.0);
                            age.as_secs() >= i64::try_from(limit.as_secs()).unwrap_or(i64::MAX)
                        }
                        None => true,
                    };
                    if stale {
                        Decision::Run(RunReason::TakeOver { from: claimant })
                    } else {
                        Decision::LeaveAlone(LeaveReason::ClaimedByOther { pod: claimant })
                    }
                }
            }
        }
    }
}

/// Whether the agent may act on `task` at all, checked (by the runtime) before any task that
/// [`decide`] would run or report from the journal; an `Err` is the message of a task failed
/// without running anything.
///
/// - **Attribution.** With `operator` set (the chart always sets it: `--operator-identity`), the
///   task's `nodewright.io/created-by` must name that user. The chart's admission policy makes the
///   annotation the API server's word: it must equal the requester's own name on create and can
///   never change, and only the operator may create NodeTasks at all.
/// - **Site storage.** A step that removes storage the whole site shares (`linstor-node-delete`,
///   `resource-delete`: [`SITE_STORAGE_DELETES`]) needs what only the operator can give: the task
///   is controlled by a `Migration` (owner reference with `controller: true`) that its
///   `workflowRef` names, `migration` is that object as read now (same uid), its status — which
///   only the operator writes — says `RollingBack`, and the node whose storage goes is one of its
///   `joiningNodes`, never its source. That is the only time the operator asks for these steps.
pub fn authorize(
    task: &NodeTask,
    operator: Option<&str>,
    migration: Option<&Migration>,
) -> Result<(), String> {
    let name = task.metadata.name.as_deref().unwrap_or_default();
    if let Some(operator) = operator {
        let created_by = task
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CREATED_BY_ANNOTATION));
        if created_by.map(String::as_str) != Some(operator) {
            return Err(format!(
                "refused: task {name} is not attributed to the operator {operator} ({CREATED_BY_ANNOTATION} is {}); nothing was run",
                created_by.map_or_else(|| "missing".to_owned(), |c| format!("{c:?}")),
            ));
        }
    }
    let Ok(step) = task.spec.step_name() else {
        // An unknown step is failed by the catalogue, with its own message.
        return Ok(());
    };
    if !SITE_STORAGE_DELETES.contains(&step) {
        return Ok(());
    }
    let refuse = |why: String| {
        Err(format!(
            "refused: {step} removes storage the whole site shares and runs only for a Migration that is rolling back, on one of its joining nodes: {why}; nothing was run"
        ))
    };
    let Some(owner) = migration_owner(task) else {
        return refuse(format!("task {name} is not controlled by a Migration"));
    };
    match &task.spec.workflow_ref {
        Some(w) if w.kind == WorkflowKind::Migration && w.name == owner.name => {}
        _ => {
            return refuse(format!(
                "task {name}'s workflowRef does not name its owner, Migration {}",
                owner.name
            ));
        }
    }
    let Some(m) = migration.filter(|m| m.metadata.uid.as_deref() == Some(owner.uid.as_str())) else {
        return refuse(format!(
            "its Migration {} (uid {}) does not exist any more",
            owner.name, owner.uid
        ));
    };
    let phase = m.status.as_ref().and_then(|s| s.phase);
    if phase != Some(MigrationPhase::RollingBack) {
        return refuse(format!(
            "Migration {} is {}",
            owner.name,
            phase.map_or_else(|| "not started".to_owned(), |p| format!("in phase {p:?}"))
        ));
    }
    let target = task.spec.args.first().map(String::as_str).unwrap_or_default();
    if !m.spec.joining_nodes.iter().any(|n| n == target) {
        return refuse(format!(
            "node {target:?} is not one of Migration {}'s joining nodes ({})",
            owner.name,
            m.spec.joining_nodes.join(", ")
        ));
    }
    Ok(())
}

/// The `Migration` that controls `task`, by its controller owner reference, if any.
pub fn migration_owner(task: &NodeTask) -> Option<&OwnerReference> {
    task.metadata.owner_references.as_ref()?.iter().find(|o| {
        o.controller == Some(true)
            && o.kind == "Migration"
            && o.api_version.split('/').next() == Some(nodewright_api::GROUP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Record, replay};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::jiff::Timestamp;
    use nodewright_api::nodetask::{NodeTaskSpec, NodeTaskStatus};

    const GRACE: Duration = Duration::from_secs(60);

    fn at(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    fn me() -> Identity {
        Identity {
            node: "edge-1".into(),
            pod: "agent-edge-1-abcde".into(),
        }
    }

    fn task(node: &str) -> NodeTask {
        NodeTask {
            metadata: ObjectMeta {
                name: Some("t1".into()),
                uid: Some("uid-1".into()),
                ..ObjectMeta::default()
            },
            spec: NodeTaskSpec {
                node_name: node.into(),
                step: "linstor-node-create".into(),
                args: vec!["edge-1".into(), "10.0.0.1".into()],
                idempotency_key: "k1".into(),
                workflow_ref: None,
                timeout_seconds: 600,
            },
            status: None,
        }
    }

    fn with_status(mut t: NodeTask, phase: NodeTaskPhase, by: &str, started: i64) -> NodeTask {
        t.status = Some(NodeTaskStatus {
            phase: Some(phase),
            claimed_by: Some(by.into()),
            attempts: 1,
            started_at: Some(at(started)),
            ..NodeTaskStatus::default()
        });
        t
    }

    fn journal(lines: &[Record]) -> JournalState {
        let text: String = lines
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        replay(&text).0
    }

    fn started(uid: &str, step: &str) -> Record {
        Record::Started(Started {
            key: "k1".into(),
            task_uid: uid.into(),
            task_name: "t0".into(),
            step: step.into(),
            args: vec!["edge-1".into(), "10.0.0.1".into()],
            attempt: 1,
            at: "2026-11-29T19:00:00Z".into(),
        })
    }

    fn finished_rec() -> Record {
        Record::Finished(Finished {
            key: "k1".into(),
            code: 0,
            output_tail: "SUCCESS".into(),
            message: "done".into(),
            at: "2026-11-29T19:00:01Z".into(),
        })
    }

    fn empty() -> JournalState {
        JournalState::default()
    }

    #[test]
    fn a_task_for_another_node_is_ignored() {
        let d = decide(&task("edge-2"), &me(), &empty(), &at(0), GRACE);
        assert_eq!(
            d,
            Decision::IgnoreOtherNode {
                node: "edge-2".into()
            }
        );
    }

    #[test]
    fn a_finished_task_is_left_alone_even_if_the_journal_never_saw_it() {
        for phase in [NodeTaskPhase::Succeeded, NodeTaskPhase::Failed] {
            let t = with_status(task("edge-1"), phase, "someone", 0);
            assert_eq!(
                decide(&t, &me(), &empty(), &at(0), GRACE),
                Decision::LeaveAlone(LeaveReason::Finished)
            );
        }
    }

    #[test]
    fn a_pending_task_with_a_new_key_is_claimed() {
        assert_eq!(
            decide(&task("edge-1"), &me(), &empty(), &at(0), GRACE),
            Decision::Run(RunReason::Fresh)
        );
    }

    #[test]
    fn a_key_the_journal_finished_is_reported_not_run_again() {
        let j = journal(&[started("uid-0", "linstor-node-create"), finished_rec()]);
        let Decision::Report(earlier) = decide(&task("edge-1"), &me(), &j, &at(0), GRACE) else {
            panic!("expected a report");
        };
        assert_eq!(earlier.finished.output_tail, "SUCCESS");
        assert!(!earlier.same_task, "another task (uid-0) ran the key");
        let j = journal(&[started("uid-1", "linstor-node-create"), finished_rec()]);
        let t = with_status(task("edge-1"), NodeTaskPhase::Running, "agent-edge-1-old", 0);
        assert!(matches!(
            decide(&t, &me(), &j, &at(0), GRACE),
            Decision::Report(earlier) if earlier.same_task
        ));
    }

    #[test]
    fn an_interrupted_key_is_resumed_whoever_claimed_it() {
        let j = journal(&[started("uid-1", "linstor-node-create")]);
        let t = with_status(task("edge-1"), NodeTaskPhase::Running, "agent-edge-1-old", 0);
        assert_eq!(
            decide(&t, &me(), &j, &at(1), GRACE),
            Decision::Run(RunReason::ResumeInterrupted {
                attempt: 1,
                at: "2026-11-29T19:00:00Z".into()
            })
        );
    }

    #[test]
    fn a_key_that_timed_out_with_its_outcome_unknown_is_never_run_again_before_it_is_settled() {
        let timed_out = Record::TimedOut(crate::journal::TimedOut {
            key: "k1".into(),
            output_tail: String::new(),
            message: "timed out".into(),
            at: "2026-11-29T19:00:02Z".into(),
        });
        let j = journal(&[started("uid-1", "linstor-node-create"), timed_out]);
        for phase in [NodeTaskPhase::Unknown, NodeTaskPhase::Running] {
            let t = with_status(task("edge-1"), phase, "agent-edge-1-abcde", 0);
            assert_eq!(
                decide(&t, &me(), &j, &at(100_000), GRACE),
                Decision::LeaveAlone(LeaveReason::Unsettled)
            );
        }
    }

    #[test]
    fn a_key_reused_for_a_different_step_is_refused() {
        let j = journal(&[started("uid-0", "linstor-node-delete"), finished_rec()]);
        let Decision::RefuseReusedKey { message } = decide(&task("edge-1"), &me(), &j, &at(0), GRACE) else {
            panic!("expected a refusal");
        };
        assert!(message.contains("linstor-node-delete"), "{message}");
    }

    #[test]
    fn a_running_task_claimed_by_another_live_agent_is_left_to_it() {
        let t = with_status(task("edge-1"), NodeTaskPhase::Running, "agent-edge-1-other", 1000);
        assert_eq!(
            decide(&t, &me(), &empty(), &at(1000 + 600), GRACE),
            Decision::LeaveAlone(LeaveReason::ClaimedByOther {
                pod: "agent-edge-1-other".into()
            })
        );
    }

    #[test]
    fn a_claim_older_than_timeout_and_grace_is_taken_over() {
        let t = with_status(task("edge-1"), NodeTaskPhase::Running, "agent-edge-1-gone", 1000);
        assert_eq!(
            decide(&t, &me(), &empty(), &at(1000 + 600 + 60), GRACE),
            Decision::Run(RunReason::TakeOver {
                from: "agent-edge-1-gone".into()
            })
        );
    }

    #[test]
    fn a_running_task_claimed_by_this_pod_without_a_journal_record_is_run_again() {
        let t = with_status(task("edge-1"), NodeTaskPhase::Running, "agent-edge-1-abcde", 1000);
        assert_eq!(
            decide(&t, &me(), &empty(), &at(1001), GRACE),
            Decision::Run(RunReason::RerunOwnClaim)
        );
    }

    const OPERATOR: &str = "system:serviceaccount:nodewright-system:nw-operator";

    fn attributed(mut t: NodeTask, by: &str) -> NodeTask {
        t.metadata.annotations = Some([(CREATED_BY_ANNOTATION.to_owned(), by.to_owned())].into());
        t
    }

    /// A `linstor-node-delete` of `target` by the Migration `grow` (uid `mig-uid`), as its
    /// rollback creates it.
    fn rollback_delete(target: &str) -> NodeTask {
        let mut t = attributed(task("edge-1"), OPERATOR);
        t.spec.step = "linstor-node-delete".into();
        t.spec.args = vec![target.into()];
        t.spec.workflow_ref = Some(nodewright_api::nodetask::WorkflowRef {
            kind: WorkflowKind::Migration,
            name: "grow".into(),
        });
        t.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "nodewright.io/v1alpha1".into(),
            kind: "Migration".into(),
            name: "grow".into(),
            uid: "mig-uid".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        t
    }

    fn migration(phase: Option<MigrationPhase>) -> Migration {
        let spec: nodewright_api::MigrationSpec = serde_json::from_value(serde_json::json!({
            "owner": "operator", "clusterRef": {"name": "site"},
            "sourceNode": "edge-1", "joiningNodes": ["edge-2", "edge-3"],
        }))
        .unwrap();
        let mut m = Migration::new("grow", spec);
        m.metadata.uid = Some("mig-uid".into());
        m.status = phase.map(|p| nodewright_api::MigrationStatus {
            phase: Some(p),
            ..Default::default()
        });
        m
    }

    #[test]
    fn a_task_attributed_to_the_operator_is_authorized() {
        let t = attributed(task("edge-1"), OPERATOR);
        assert_eq!(authorize(&t, Some(OPERATOR), None), Ok(()));
    }

    #[test]
    fn a_task_not_attributed_to_the_operator_is_refused_and_the_message_says_by_whom() {
        let e = authorize(&task("edge-1"), Some(OPERATOR), None).unwrap_err();
        assert!(
            e.contains("not attributed to the operator") && e.contains("is missing"),
            "{e}"
        );
        let t = attributed(task("edge-1"), "kubernetes-admin");
        let e = authorize(&t, Some(OPERATOR), None).unwrap_err();
        assert!(e.contains("\"kubernetes-admin\"") && e.contains(OPERATOR), "{e}");
        assert!(e.contains("nothing was run"), "{e}");
    }

    #[test]
    fn without_an_operator_identity_attribution_is_not_checked_but_deletes_still_are() {
        assert_eq!(authorize(&task("edge-1"), None, None), Ok(()));
        let mut t = rollback_delete("edge-2");
        t.metadata.annotations = None;
        assert!(authorize(&t, None, None).is_err());
    }

    #[test]
    fn a_site_storage_delete_runs_only_for_its_rolling_back_migration_on_a_joining_node() {
        let rolling_back = migration(Some(MigrationPhase::RollingBack));
        for target in ["edge-2", "edge-3"] {
            let t = rollback_delete(target);
            assert_eq!(
                authorize(&t, Some(OPERATOR), Some(&rolling_back)),
                Ok(()),
                "{target}"
            );
        }
        let mut replica = rollback_delete("edge-2");
        replica.spec.step = "resource-delete".into();
        replica.spec.args = vec!["edge-2".into(), "pvc-1".into()];
        assert_eq!(authorize(&replica, Some(OPERATOR), Some(&rolling_back)), Ok(()));
    }

    #[test]
    fn a_site_storage_delete_is_refused_outside_a_rollback_or_for_the_source_or_another_migration() {
        let refused = |t: &NodeTask, m: Option<&Migration>, why: &str| {
            let e = authorize(t, Some(OPERATOR), m).unwrap_err();
            assert!(e.contains("removes storage the whole site shares"), "{e}");
            assert!(e.contains(why), "expected {why:?} in {e}");
        };
        let rolling_back = migration(Some(MigrationPhase::RollingBack));
        refused(
            &rollback_delete("edge-2"),
            Some(&migration(Some(MigrationPhase::PlacingReplicas))),
            "is in phase PlacingReplicas",
        );
        refused(
            &rollback_delete("edge-2"),
            Some(&migration(None)),
            "is not started",
        );
        refused(
            &rollback_delete("edge-1"),
            Some(&rolling_back),
            "\"edge-1\" is not one of",
        );
        refused(&rollback_delete("edge-2"), None, "does not exist any more");
        let mut recreated = rolling_back.clone();
        recreated.metadata.uid = Some("another-uid".into());
        refused(
            &rollback_delete("edge-2"),
            Some(&recreated),
            "does not exist any more",
        );
        let mut unowned = rollback_delete("edge-2");
        unowned.metadata.owner_references = None;
        refused(&unowned, Some(&rolling_back), "not controlled by a Migration");
        let mut not_controller = rollback_delete("edge-2");
        if let Some(o) = not_controller.metadata.owner_references.as_mut() {
            o[0].controller = Some(false);
        }
        refused(
            &not_controller,
            Some(&rolling_back),
            "not controlled by a Migration",
        );
        let mut other_ref = rollback_delete("edge-2");
        other_ref.spec.workflow_ref = None;
        refused(
            &other_ref,
            Some(&rolling_back),
            "workflowRef does not name its owner",
        );
    }

    #[test]
    fn other_steps_need_no_migration() {
        let t = attributed(task("edge-1"), OPERATOR);
        assert_eq!(t.spec.step, "linstor-node-create");
        assert_eq!(authorize(&t, Some(OPERATOR), None), Ok(()));
    }
}
