//! Pure builders of a `NodeTask`'s status: the claim (`Running`) and the result (`Succeeded` /
//! `Failed` with exit code, output tail, message and conditions). The time is passed in.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nodewright_api::common::{ConditionStatus, condition_type, set_condition};
use nodewright_api::nodetask::{NodeTaskPhase, NodeTaskStatus};

/// The most output a status holds (the CRD's `maxLength` of `status.output`).
pub const OUTPUT_MAX_CHARS: usize = 16384;

/// Condition reasons the agent writes.
pub mod reason {
    /// The agent claimed the task and runs the step.
    pub const RUNNING: &str = "Running";
    /// The step succeeded.
    pub const SUCCEEDED: &str = "Succeeded";
    /// The step failed.
    pub const STEP_FAILED: &str = "StepFailed";
    /// The step ran out of time.
    pub const TIMED_OUT: &str = "TimedOut";
    /// The step or its arguments are not in the catalogue; nothing ran.
    pub const INVALID_STEP: &str = "InvalidStep";
    /// The idempotency key already ran here: the result comes from the journal.
    pub const FROM_JOURNAL: &str = "ReportedFromJournal";
    /// The idempotency key already ran here for a different step or arguments.
    pub const KEY_REUSED: &str = "IdempotencyKeyReused";
    /// The agent could not record the step in its journal, so it did not run it.
    pub const JOURNAL_FAILED: &str = "JournalFailed";
    /// The agent may not run the task: not attributed to the operator, or a site-storage delete
    /// not asked for by a rolling-back Migration (`decide::authorize`); nothing ran.
    pub const REFUSED: &str = "Refused";
    /// The step ran out of time after it may have changed the host; the host is checked next.
    pub const OUTCOME_UNKNOWN: &str = "TimedOutOutcomeUnknown";
    /// A step that timed out was found done on the host by its check.
    pub const FOUND_DONE: &str = "TimedOutFoundDone";
    /// A step that timed out was found not done on the host by its check.
    pub const FOUND_NOT_DONE: &str = "TimedOutNotDone";
}

/// The last `max` characters of `s` (on a character boundary).
pub fn tail_chars(s: &str, max: usize) -> &str {
    let count = s.chars().count();
    if count <= max {
        return s;
    }
    let skip = count - max;
    match s.char_indices().nth(skip) {
        Some((i, _)) => &s[i..],
        None => "",
    }
}

/// The status after a claim by `pod`: `Running`, one more attempt, started now.
pub fn claimed(previous: Option<&NodeTaskStatus>, pod: &str, message: &str, now: &Time) -> NodeTaskStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.phase = Some(NodeTaskPhase::Running);
    status.claimed_by = Some(pod.to_owned());
    status.attempts = status.attempts.saturating_add(1);
    status.started_at = Some(now.clone());
    status.finished_at = None;
    status.exit_code = None;
    status.output = None;
    status.message = Some(message.to_owned());
    set_condition(
        &mut status.conditions,
        condition_type::COMPLETE,
        ConditionStatus::False,
        reason::RUNNING,
        message,
        None,
        now,
    );
    set_condition(
        &mut status.conditions,
        condition_type::FAILED,
        ConditionStatus::False,
        reason::RUNNING,
        message,
        None,
        now,
    );
    status
}

/// How a task ended, as the status reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Whether it succeeded.
    pub succeeded: bool,
    /// The step's exit code; `None` when no step ran (invalid step).
    pub exit_code: Option<i32>,
    /// The step's output (its tail is kept).
    pub output: String,
    /// What happened.
    pub message: String,
    /// Condition reason, one of [`reason`].
    pub reason: &'static str,
    /// When the step started, when it is not the claim's time (a result from the journal).
    pub started_at: Option<Time>,
    /// When it finished.
    pub finished_at: Time,
}

/// The final status: phase, exit code, output tail, finish time, message and the `Complete`
/// and `Failed` conditions. `claimedBy` is set to `pod` (the agent that reports).
pub fn completed(previous: Option<&NodeTaskStatus>, pod: &str, done: &Completion) -> NodeTaskStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.phase = Some(if done.succeeded {
        NodeTaskPhase::Succeeded
    } else {
        NodeTaskPhase::Failed
    });
    status.claimed_by = Some(pod.to_owned());
    if let Some(started) = &done.started_at {
        status.started_at = Some(started.clone());
    }
    status.finished_at = Some(done.finished_at.clone());
    status.exit_code = done.exit_code;
    status.output = Some(tail_chars(&done.output, OUTPUT_MAX_CHARS).to_owned()).filter(|o| !o.is_empty());
    status.message = Some(done.message.clone());
    let now = &done.finished_at;
    set_condition(
        &mut status.conditions,
        condition_type::COMPLETE,
        ConditionStatus::True,
        done.reason,
        &done.message,
        None,
        now,
    );
    set_condition(
        &mut status.conditions,
        condition_type::FAILED,
        if done.succeeded {
            ConditionStatus::False
        } else {
            ConditionStatus::True
        },
        done.reason,
        &done.message,
        None,
        now,
    );
    status
}

/// The status of a step that ran out of time after it may have changed the host: `Unknown`,
/// not finished (no `finishedAt`, no exit code), both conditions `Unknown` with the reason
/// [`reason::OUTCOME_UNKNOWN`]. The agent checks the host and then writes [`completed`].
pub fn unknown(
    previous: Option<&NodeTaskStatus>,
    pod: &str,
    output: &str,
    message: &str,
    now: &Time,
) -> NodeTaskStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.phase = Some(NodeTaskPhase::Unknown);
    status.claimed_by = Some(pod.to_owned());
    status.finished_at = None;
    status.exit_code = None;
    status.output = Some(tail_chars(output, OUTPUT_MAX_CHARS).to_owned()).filter(|o| !o.is_empty());
    status.message = Some(message.to_owned());
    for type_ in [condition_type::COMPLETE, condition_type::FAILED] {
        set_condition(
            &mut status.conditions,
            type_,
            ConditionStatus::Unknown,
            reason::OUTCOME_UNKNOWN,
            message,
            None,
            now,
        );
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use nodewright_api::common::find_condition;

    fn at(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn the_tail_keeps_the_last_characters_on_a_char_boundary() {
        assert_eq!(tail_chars("abc", 5), "abc");
        assert_eq!(tail_chars("abcdef", 3), "def");
        assert_eq!(tail_chars("┊a┊b┊", 2), "b┊");
        let long = "x".repeat(OUTPUT_MAX_CHARS + 10);
        assert_eq!(tail_chars(&long, OUTPUT_MAX_CHARS).len(), OUTPUT_MAX_CHARS);
    }

    #[test]
    fn a_claim_is_running_with_one_more_attempt_and_clears_the_last_result() {
        let before = NodeTaskStatus {
            attempts: 1,
            exit_code: Some(1),
            output: Some("old".into()),
            ..NodeTaskStatus::default()
        };
        let s = claimed(Some(&before), "agent-a", "claimed", &at(100));
        assert_eq!(s.phase, Some(NodeTaskPhase::Running));
        assert_eq!(s.claimed_by.as_deref(), Some("agent-a"));
        assert_eq!(s.attempts, 2);
        assert_eq!(s.started_at, Some(at(100)));
        assert_eq!(s.exit_code, None);
        assert_eq!(s.output, None);
        let c = find_condition(&s.conditions, condition_type::COMPLETE).unwrap();
        assert_eq!(c.status, "False");
    }

    #[test]
    fn a_completion_sets_phase_exit_code_output_tail_and_conditions() {
        let running = claimed(None, "agent-a", "claimed", &at(100));
        let done = Completion {
            succeeded: false,
            exit_code: Some(10),
            output: "y".repeat(OUTPUT_MAX_CHARS * 2),
            message: "`linstor` failed".into(),
            reason: reason::STEP_FAILED,
            started_at: None,
            finished_at: at(105),
        };
        let s = completed(Some(&running), "agent-a", &done);
        assert_eq!(s.phase, Some(NodeTaskPhase::Failed));
        assert_eq!(s.exit_code, Some(10));
        assert_eq!(
            s.output.as_ref().map(|o| o.chars().count()),
            Some(OUTPUT_MAX_CHARS)
        );
        assert_eq!(s.started_at, Some(at(100)));
        assert_eq!(s.finished_at, Some(at(105)));
        assert_eq!(s.attempts, 1);
        let complete = find_condition(&s.conditions, condition_type::COMPLETE).unwrap();
        assert_eq!(
            (complete.status.as_str(), complete.reason.as_str()),
            ("True", "StepFailed")
        );
        let failed = find_condition(&s.conditions, condition_type::FAILED).unwrap();
        assert_eq!(failed.status, "True");
    }

    #[test]
    fn a_step_whose_outcome_is_unknown_is_not_finished_and_its_conditions_say_unknown() {
        let running = claimed(None, "agent-a", "claimed", &at(100));
        let s = unknown(
            Some(&running),
            "agent-a",
            "$ linstor node create\n",
            "timed out",
            &at(101),
        );
        assert_eq!(s.phase, Some(NodeTaskPhase::Unknown));
        assert_eq!(s.finished_at, None);
        assert_eq!(s.exit_code, None);
        assert_eq!(s.started_at, Some(at(100)));
        for type_ in [condition_type::COMPLETE, condition_type::FAILED] {
            let c = find_condition(&s.conditions, type_).unwrap();
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("Unknown", reason::OUTCOME_UNKNOWN)
            );
        }
    }
}
