#![allow(clippy::unwrap_used)]

use nodewright_api::WorkflowOwner;
use nodewright_api::bondflip::BondTarget;

use super::legacy::{Translation, answer_of, answered, request_name, translate};
use super::*;

const NOW: i64 = 1_790_000_000;

fn spec(to_mode: Option<BondMode>, to_slave: Option<&str>) -> BondFlipSpec {
    BondFlipSpec {
        owner: WorkflowOwner::Operator,
        node_name: "edge-1".into(),
        bond: "bond0".into(),
        from: BondState {
            mode: BondMode::ActiveBackup,
            active_slave: Some("eno1".into()),
        },
        to: BondTarget {
            mode: to_mode,
            active_slave: to_slave.map(str::to_owned),
        },
    }
}

fn lacp() -> BondFlipSpec {
    spec(Some(BondMode::Lacp), None)
}

fn bond(mode: BondMode, active: Option<&str>, eno2_up: bool) -> HostBond {
    HostBond {
        mode,
        active_slave: active.map(str::to_owned),
        slaves: vec![("eno1".into(), true), ("eno2".into(), eno2_up)],
    }
}

fn facts(host: Option<HostBond>, observed_at: i64) -> Facts {
    Facts {
        now: NOW,
        host: Some(Host {
            observed_at,
            bond: host,
        }),
        storage_interface: Some("bond0.100".into()),
        peers: vec!["10.100.0.12".into()],
        unknown_peers: vec![],
        gate: None,
        busy: None,
    }
}

fn in_from() -> Facts {
    facts(Some(bond(BondMode::ActiveBackup, Some("eno1"), true)), NOW)
}

fn status_in(phase: Phase, since: i64) -> BondFlipStatus {
    BondFlipStatus {
        phase: Some(phase),
        history: vec![PhaseTransition {
            phase,
            at: nodewright_kit::clock::time(since),
            message: None,
        }],
        ..BondFlipStatus::default()
    }
}

fn entered(d: &Decision) -> Option<(Phase, &'static str)> {
    match &d.outcome {
        Outcome::Enter { phase, reason, .. } => Some((*phase, *reason)),
        _ => None,
    }
}

fn waits(d: &Decision) -> Option<&'static str> {
    match &d.outcome {
        Outcome::Wait { reason, .. } => Some(*reason),
        _ => None,
    }
}

#[test]
fn a_pending_flip_waits_while_the_storage_gate_is_held() {
    let mut f = in_from();
    f.gate = Some("StorageUpgrade/storage-9-2-14".into());
    let d = decide(&lacp(), "u1", &BondFlipStatus::default(), &f, None);
    assert_eq!(waits(&d), Some("DeferredToStorage"));
    let Outcome::Wait { message, .. } = &d.outcome else {
        unreachable!()
    };
    assert!(message.contains("StorageUpgrade/storage-9-2-14"), "{message}");
    // Also once in Preflight: the gate may have been taken in between.
    let d = decide(&lacp(), "u1", &status_in(Phase::Preflight, NOW), &f, None);
    assert_eq!(waits(&d), Some("DeferredToStorage"));
    assert!(d.task.is_none());
}

#[test]
fn a_second_flip_of_the_same_node_waits_for_the_first() {
    let mut f = in_from();
    f.busy = Some("flip-a".into());
    let d = decide(&lacp(), "u1", &BondFlipStatus::default(), &f, None);
    assert_eq!(waits(&d), Some("OtherFlipInProgress"));
}

#[test]
fn a_pending_flip_without_fresh_facts_waits_and_with_them_enters_preflight() {
    let mut f = in_from();
    f.host = None;
    assert_eq!(
        waits(&decide(&lacp(), "u1", &BondFlipStatus::default(), &f, None)),
        Some("WaitingForFacts")
    );
    assert_eq!(
        entered(&decide(
            &lacp(),
            "u1",
            &BondFlipStatus::default(),
            &in_from(),
            None
        )),
        Some((Phase::Preflight, "PreflightStarted"))
    );
}

#[test]
fn preflight_passing_enters_flipping_with_one_bond_flip_task_carrying_from_to_and_the_peers() {
    let d = decide(
        &lacp(),
        "5a7e-0000",
        &status_in(Phase::Preflight, NOW),
        &in_from(),
        None,
    );
    assert_eq!(entered(&d), Some((Phase::Flipping, "FlipStarted")));
    let t = d.task.unwrap();
    assert_eq!(t.step, "bond-flip");
    assert_eq!(t.node, "edge-1");
    assert_eq!(t.key, "bf-5a7e0000-edge-1-flip");
    assert_eq!(
        t.args,
        [
            "bond0",
            "active-backup:eno1",
            "802.3ad",
            "bond0.100",
            "10.100.0.12"
        ]
    );
}

#[test]
fn preflight_fails_without_a_task_when_the_bond_left_its_from_state() {
    let f = facts(Some(bond(BondMode::ActiveBackup, Some("eno2"), true)), NOW);
    let d = decide(&lacp(), "u1", &status_in(Phase::Preflight, NOW), &f, None);
    assert_eq!(entered(&d), Some((Phase::Failed, "BondNotInFromState")));
    assert!(d.task.is_none(), "the host is not touched");
}

#[test]
fn preflight_fails_without_a_task_when_the_target_slave_has_no_carrier() {
    let f = facts(Some(bond(BondMode::ActiveBackup, Some("eno1"), false)), NOW);
    let d = decide(
        &spec(None, Some("eno2")),
        "u1",
        &status_in(Phase::Preflight, NOW),
        &f,
        None,
    );
    assert_eq!(entered(&d), Some((Phase::Failed, "TargetSlaveNoCarrier")));
    assert!(d.task.is_none());
    let d = decide(
        &spec(None, Some("eno9")),
        "u1",
        &status_in(Phase::Preflight, NOW),
        &f,
        None,
    );
    assert_eq!(entered(&d), Some((Phase::Failed, "TargetSlaveNotInBond")));
    // A mode flip needs some slave with carrier; eno1 has it.
    let d = decide(&lacp(), "u1", &status_in(Phase::Preflight, NOW), &f, None);
    assert_eq!(entered(&d), Some((Phase::Flipping, "FlipStarted")));
}

#[test]
fn preflight_fails_when_the_node_has_no_such_bond() {
    let f = facts(None, NOW);
    let d = decide(&lacp(), "u1", &status_in(Phase::Preflight, NOW), &f, None);
    assert_eq!(entered(&d), Some((Phase::Failed, "BondNotFound")));
}

#[test]
fn preflight_waits_for_peer_addresses_and_gives_up_after_its_timeout() {
    let mut f = in_from();
    f.unknown_peers = vec!["edge-3".into()];
    let d = decide(&lacp(), "u1", &status_in(Phase::Preflight, NOW - 10), &f, None);
    assert_eq!(waits(&d), Some("WaitingForPeerAddresses"));
    let d = decide(
        &lacp(),
        "u1",
        &status_in(Phase::Preflight, NOW - WAIT_TIMEOUT_SECONDS - 1),
        &f,
        None,
    );
    assert_eq!(entered(&d), Some((Phase::Failed, "PreflightTimedOut")));
    assert!(d.task.is_none());
}

fn task(phase: NodeTaskPhase, output: &str, finished_at: i64) -> TaskResult {
    TaskResult {
        phase: Some(phase),
        output: output.into(),
        message: "done".into(),
        finished_at: Some(finished_at),
    }
}

#[test]
fn flipping_follows_its_task_a_success_verifies_a_local_revert_rolls_back_a_refusal_fails() {
    let s = status_in(Phase::Flipping, NOW - 5);
    let f = in_from();
    let ok = task(NodeTaskPhase::Succeeded, "flipped\n", NOW - 1);
    assert_eq!(
        entered(&decide(&lacp(), "u1", &s, &f, Some(&ok))),
        Some((Phase::Verifying, "FlipApplied"))
    );
    let reverted = task(
        NodeTaskPhase::Failed,
        "reverted: 10.100.0.12 unreachable\n",
        NOW - 1,
    );
    assert_eq!(
        entered(&decide(&lacp(), "u1", &s, &f, Some(&reverted))),
        Some((Phase::RollingBack, "RevertedOnNode"))
    );
    let refused = task(NodeTaskPhase::Failed, "", NOW - 1);
    assert_eq!(
        entered(&decide(&lacp(), "u1", &s, &f, Some(&refused))),
        Some((Phase::Failed, "FlipFailed"))
    );
    let running = TaskResult {
        phase: Some(NodeTaskPhase::Running),
        ..TaskResult::default()
    };
    assert_eq!(
        waits(&decide(&lacp(), "u1", &s, &f, Some(&running))),
        Some("WaitingForAgent")
    );
}

#[test]
fn a_flip_whose_task_never_finishes_counts_as_not_confirmed_and_rolls_back() {
    let late = NOW - i64::from(TASK_TIMEOUT_SECONDS) - FLIPPING_GRACE_SECONDS - 1;
    let running = TaskResult {
        phase: Some(NodeTaskPhase::Running),
        ..TaskResult::default()
    };
    let d = decide(
        &lacp(),
        "u1",
        &status_in(Phase::Flipping, late),
        &in_from(),
        Some(&running),
    );
    assert_eq!(entered(&d), Some((Phase::RollingBack, "NotConfirmed")));
}

#[test]
fn a_missing_task_in_flipping_is_asked_for_again_under_the_same_key() {
    let d = decide(&lacp(), "u1", &status_in(Phase::Flipping, NOW), &in_from(), None);
    assert_eq!(waits(&d), Some("WaitingForAgent"));
    assert_eq!(d.task.unwrap().key, "bf-u1-edge-1-flip");
}

#[test]
fn verifying_completes_only_on_facts_read_after_the_task_showing_the_target() {
    let s = status_in(Phase::Verifying, NOW - 5);
    let done = task(NodeTaskPhase::Succeeded, "", NOW - 3);
    // Facts from before the flip prove nothing.
    let old = facts(Some(bond(BondMode::ActiveBackup, Some("eno1"), true)), NOW - 4);
    assert_eq!(
        waits(&decide(&lacp(), "u1", &s, &old, Some(&done))),
        Some("WaitingForFacts")
    );
    let flipped = facts(Some(bond(BondMode::Lacp, None, true)), NOW);
    let d = decide(&lacp(), "u1", &s, &flipped, Some(&done));
    assert_eq!(entered(&d), Some((Phase::Completed, "FlipCompleted")));
    assert_eq!(d.observed.unwrap().mode, BondMode::Lacp);
    // Back in `from` after a success: the agent reverted a flip it could not confirm.
    let back = facts(Some(bond(BondMode::ActiveBackup, Some("eno1"), true)), NOW);
    assert_eq!(
        entered(&decide(&lacp(), "u1", &s, &back, Some(&done))),
        Some((Phase::RolledBack, "RevertedOnNode"))
    );
    let other = facts(Some(bond(BondMode::BalanceRr, None, true)), NOW);
    assert_eq!(
        entered(&decide(&lacp(), "u1", &s, &other, Some(&done))),
        Some((Phase::Failed, "BondInUnexpectedState"))
    );
}

#[test]
fn rolling_back_ends_rolled_back_when_fresh_facts_show_the_from_state_else_fails_after_its_timeout() {
    let back = facts(Some(bond(BondMode::ActiveBackup, Some("eno1"), true)), NOW);
    let d = decide(
        &lacp(),
        "u1",
        &status_in(Phase::RollingBack, NOW - 2),
        &back,
        None,
    );
    assert_eq!(entered(&d), Some((Phase::RolledBack, "RolledBack")));
    let stuck = facts(Some(bond(BondMode::Lacp, None, true)), NOW);
    assert_eq!(
        waits(&decide(
            &lacp(),
            "u1",
            &status_in(Phase::RollingBack, NOW - 2),
            &stuck,
            None
        )),
        Some("WaitingForRollback")
    );
    let d = decide(
        &lacp(),
        "u1",
        &status_in(Phase::RollingBack, NOW - WAIT_TIMEOUT_SECONDS - 1),
        &stuck,
        None,
    );
    assert_eq!(entered(&d), Some((Phase::Failed, "RollbackNotObserved")));
}

#[test]
fn a_finished_flip_decides_nothing() {
    for p in [Phase::Completed, Phase::RolledBack, Phase::Failed] {
        assert_eq!(
            decide(&lacp(), "u1", &status_in(p, NOW), &in_from(), None).outcome,
            Outcome::Over
        );
    }
}

#[test]
fn the_status_records_the_phase_history_and_conditions_with_the_generation() {
    let d = decide(&lacp(), "u1", &BondFlipStatus::default(), &in_from(), None);
    let s = status_after(&BondFlipStatus::default(), &d, NOW, Some(3));
    assert_eq!(s.phase, Some(Phase::Preflight));
    assert_eq!(
        s.history.iter().map(|t| t.phase).collect::<Vec<_>>(),
        [Phase::Pending, Phase::Preflight]
    );
    assert_eq!(s.observed_generation, Some(3));
    let c = |s: &BondFlipStatus, t: &str| {
        let c = s.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(c.observed_generation, Some(3));
        (c.status, c.reason)
    };
    assert_eq!(c(&s, "Progressing"), ("True".into(), "PreflightStarted".into()));
    assert_eq!(c(&s, "Complete").0, "False");
    let rolled = Decision {
        outcome: Outcome::Enter {
            phase: Phase::RolledBack,
            reason: "RolledBack",
            message: "back".into(),
        },
        task: None,
        observed: Some(BondState {
            mode: BondMode::ActiveBackup,
            active_slave: Some("eno1".into()),
        }),
    };
    let end = status_after(&s, &rolled, NOW + 10, Some(3));
    assert_eq!(c(&end, "Failed"), ("True".into(), "RolledBack".into()));
    assert_eq!(c(&end, "Progressing").0, "False");
    assert!(end.finished_at.is_some());
    assert!(end.observed.is_some());
    // A wait that changes nothing leaves the status as it was.
    let again = decide(&lacp(), "u1", &end, &in_from(), None);
    assert_eq!(status_after(&end, &again, NOW + 20, Some(3)), end);
}

fn request(text: &str) -> nodewright_parsers::BondFlip {
    nodewright_parsers::parse_bond_flip(text).unwrap()
}

#[test]
fn a_requested_legacy_mode_flip_becomes_an_operator_flip_from_the_bond_as_the_agent_sees_it() {
    let r = request("action=mode;value=802.3ad;state=requested;id=flip-2;requested=1767225710");
    let host = in_from().host;
    let t = translate("edge-1", &r, "bond0", host.as_ref(), &|_| false).unwrap();
    let Translation::Create { name, spec } = t else {
        panic!("{t:?}")
    };
    assert_eq!(name, "bondflip-edge-1-flip-2");
    assert_eq!(name, request_name("edge-1", &r));
    assert_eq!(spec.owner, WorkflowOwner::Operator);
    assert_eq!(spec.from.to_arg(), "active-backup:eno1");
    assert_eq!(spec.to.mode, Some(BondMode::Lacp));
    // Once it exists, or without fresh facts, nothing is created.
    assert_eq!(translate("edge-1", &r, "bond0", host.as_ref(), &|_| true), None);
    assert_eq!(translate("edge-1", &r, "bond0", None, &|_| false), None);
    // An answered request is not taken again.
    let done = request("action=mode;value=802.3ad;state=applied;id=flip-2;done=1");
    assert_eq!(
        translate("edge-1", &done, "bond0", host.as_ref(), &|_| false),
        None
    );
}

#[test]
fn a_legacy_request_for_the_state_the_bond_is_in_or_an_unknown_mode_is_answered_at_once() {
    let host = in_from().host;
    let same = request("action=active;value=eno1;state=requested;id=a");
    assert_eq!(
        translate("edge-1", &same, "bond0", host.as_ref(), &|_| false),
        Some(Translation::Answer {
            applied: true,
            msg: "already in active-backup:eno1".into()
        })
    );
    let bad = request("action=mode;value=fast;state=requested;id=b");
    assert_eq!(
        translate("edge-1", &bad, "bond0", host.as_ref(), &|_| false),
        Some(Translation::Answer {
            applied: false,
            msg: "unknown bond mode".into()
        })
    );
}

#[test]
fn a_finished_translated_flip_answers_the_request_in_the_scripts_spelling() {
    let r = request("action=mode;value=802.3ad;state=requested;id=flip-2;requested=1767225710");
    let mut s = status_in(Phase::Verifying, NOW);
    assert_eq!(answer_of(&s), None, "not over yet");
    s.phase = Some(Phase::RolledBack);
    s.finished_at = Some(nodewright_kit::clock::time(NOW));
    s.history.push(PhaseTransition {
        phase: Phase::RolledBack,
        at: nodewright_kit::clock::time(NOW),
        message: Some("probe: 10.100.0.12 unreachable; reverted".into()),
    });
    let (applied, done, msg) = answer_of(&s).unwrap();
    assert!(!applied);
    let blob = answered(&r, applied, done, &msg);
    assert_eq!(
        blob,
        format!(
            "action=mode;value=802.3ad;state=failed;id=flip-2;requested=1767225710;done={NOW};msg=probe: 10.100.0.12 unreachable, reverted;owner=operator"
        )
    );
    let back = request(&blob);
    assert_eq!(back.state, nodewright_parsers::BondFlipState::Failed);
}
