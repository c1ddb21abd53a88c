//! Bounded model checks of the takeover, the operator's leadership and the node agent, against the
//! product's own decision functions; and the seeded bugs each found with a readable trace.
//! Bounds are chosen to finish in seconds here; `nodewright-verify fence` runs deeper.

#![allow(clippy::unwrap_used)]

use nodewright_verify::check::{self, Bounds, Outcome};
use nodewright_verify::fence::Bug;
use nodewright_verify::fence::agent::{AgentModel, KEY_ONCE};
use nodewright_verify::fence::takeover::{AT_MOST_ONE_DECIDER, DEPOSED_NEVER_WRITES, Start, TakeoverModel};
use nodewright_verify::trace::Trace;

const TICKS: u8 = 3;

fn bounds(depth: usize) -> Bounds {
    Bounds { depth, threads: 2 }
}

fn summary(o: &Outcome) -> String {
    let mut s = format!(
        "{} states, depth {}, {:?}\n",
        o.unique_states, o.max_depth, o.elapsed
    );
    for t in &o.counterexamples {
        s.push_str(&t.to_string());
    }
    s
}

fn numbered(t: &Trace) -> String {
    let text = t.to_string();
    assert!(
        text.contains("\n  1. ") && text.contains("state that matters:"),
        "{text}"
    );
    text
}

#[test]
fn with_two_nodes_the_product_fence_never_lets_a_script_and_the_operator_both_decide() {
    let o = check::run(TakeoverModel::new(2, TICKS, None), bounds(9));
    assert!(o.counterexample(AT_MOST_ONE_DECIDER).is_none(), "{}", summary(&o));
    // The model gets where it should: both deciders step, the Lease changes hands, and the
    // operator acts past a node whose script is proven unable to act.
    assert!(o.unreached.is_empty(), "not reached: {:?}", o.unreached);
}

#[test]
fn with_three_nodes_the_product_fence_never_lets_a_script_and_the_operator_both_decide() {
    let o = check::run(TakeoverModel::new(3, TICKS, None), bounds(8));
    assert!(o.counterexample(AT_MOST_ONE_DECIDER).is_none(), "{}", summary(&o));
    assert!(o.unique_states > 100_000, "{}", summary(&o));
    assert!(
        o.reached
            .iter()
            .any(|t| t.property == "a script takes a migration step")
    );
}

#[test]
fn a_deposed_leader_lands_a_write_it_sent_before_it_lost_the_lease() {
    // One node is enough: the window is the writer's, between its leadership check and the API server.
    let o = check::run_until(
        TakeoverModel::new(1, TICKS, None),
        bounds(10),
        DEPOSED_NEVER_WRITES,
    );
    let t = o
        .counterexample(DEPOSED_NEVER_WRITES)
        .expect("the writer's check-then-send window");
    let text = numbered(t);
    assert!(t.mentions("operator-a: leads, sends"), "{text}");
    assert!(
        t.mentions("operator-b: reads the Lease (held by operator-a)") && t.mentions("acquires it"),
        "{text}"
    );
    assert!(
        t.steps
            .last()
            .is_some_and(|s| s.contains("operator-a's write lands")),
        "{text}"
    );
    assert!(
        t.focus.contains("while the Lease was held by operator-b"),
        "{text}"
    );
    // What holds instead — the late write is guarded by the version it was decided from, and no
    // script and operator both decide — is what the bounded runs above check, deposed writes included.
}

/// The counterexample both seeded fence bugs share at their shortest: the handover is under way,
/// the first node's script stalled holding generation 1, and the operator steps without waiting.
fn assert_stale_script_steps_after_the_operator(t: &Trace) {
    let text = numbered(t);
    assert!(
        t.start
            .as_deref()
            .is_some_and(|s| s.contains("edge-1, whose script holds generation 1")),
        "{text}"
    );
    assert!(
        t.mentions("operator-a: reads takeover (generation 2, rv 2), decides the fence lets it act"),
        "{text}"
    );
    assert!(
        t.mentions("operator-a's write lands (take migration step 1"),
        "{text}"
    );
    assert!(
        t.steps
            .last()
            .is_some_and(|s| s.starts_with("script edge-1: takes migration step 2")),
        "{text}"
    );
    assert!(t.focus.contains("after the operator had stepped"), "{text}");
}

#[test]
fn the_clock_liveness_fence_lets_a_stalled_script_on_a_slow_clock_decide_after_the_operator() {
    let model = TakeoverModel::new(2, TICKS, Some(Bug::ClockLiveness));
    let o = check::run_until(model, bounds(8), AT_MOST_ONE_DECIDER);
    let t = o
        .counterexample(AT_MOST_ONE_DECIDER)
        .expect("seeded bug (a) is found");
    assert_stale_script_steps_after_the_operator(t);
    // What the clock rule went by: a report 20 s old by the operator's clock, from a node whose
    // clock is 10 s slow, of a loop that is stalled, not gone.
    assert!(
        t.focus
            .contains("node edge-1: acknowledged 1, last report -15 s (node clock), pod running"),
        "{}",
        t
    );
}

#[test]
fn the_fence_that_skips_the_acknowledgement_lets_a_stale_script_decide_after_the_operator() {
    let model = TakeoverModel::new(2, TICKS, Some(Bug::SkipAck));
    let o = check::run_until(model, bounds(8), AT_MOST_ONE_DECIDER);
    let t = o
        .counterexample(AT_MOST_ONE_DECIDER)
        .expect("seeded bug (b) is found");
    assert_stale_script_steps_after_the_operator(t);
}

#[test]
fn the_fence_that_skips_the_acknowledgement_is_found_from_before_the_handover_too() {
    // No script stalled at the start: the bug needs a script to read generation 1 before the
    // operator projects generation 2, and to step after the operator's next turn stepped without
    // waiting for its acknowledgement.
    let model = TakeoverModel::new(1, TICKS, Some(Bug::SkipAck)).starting(Start::Before);
    let o = check::run_until(model, bounds(10), AT_MOST_ONE_DECIDER);
    let t = o
        .counterexample(AT_MOST_ONE_DECIDER)
        .expect("seeded bug (b) is found");
    let text = numbered(t);
    assert!(
        t.start
            .as_deref()
            .is_some_and(|s| s.starts_with("before the handover")),
        "{text}"
    );
    assert!(
        t.mentions("reads takeover (generation 1, migration shadow"),
        "{text}"
    );
    assert!(
        t.mentions("decides to project generation 2 (migration operator)"),
        "{text}"
    );
    assert!(
        t.mentions("reads takeover (generation 2, rv 2), decides the fence lets it act"),
        "{text}"
    );
    assert!(
        t.steps
            .last()
            .is_some_and(|s| s.starts_with("script edge-") && s.contains("takes migration step")),
        "{text}"
    );
}

#[test]
fn a_node_task_key_never_runs_again_once_its_result_is_journalled_through_crashes_and_a_rollout() {
    let o = check::run(AgentModel::new(), bounds(24));
    assert!(o.counterexample(KEY_ONCE).is_none(), "{}", summary(&o));
    // Crashes between claiming, journalling and reporting, a second pod taking the journal over,
    // and a task created again under the same key are all reached.
    assert!(o.unreached.is_empty(), "not reached: {:?}", o.unreached);
}

#[test]
fn a_script_pod_created_while_the_operator_projects_cannot_act_on_the_old_generation() {
    // The interleaving the product allowed before `run::may_act_this_turn`: the only script's pod
    // is gone when the operator decides, so the fence let it act in the turn that projects
    // generation 2; the pod is created again and its script reads generation 1 before generation 2
    // lands, and steps after the operator did. Now the operator acts only in a later turn, which
    // sees the new pod.
    let model = TakeoverModel::new(1, TICKS, None).starting(Start::Before);
    let o = check::run(model, bounds(12));
    assert!(o.counterexample(AT_MOST_ONE_DECIDER).is_none(), "{}", summary(&o));
    assert!(o.unreached.is_empty(), "not reached: {:?}", o.unreached);
}
