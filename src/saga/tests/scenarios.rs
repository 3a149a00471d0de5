//! Named transitions of the pure core, driven through the hand-played
//! driver: each outcome class for each step kind, compensation order, null
//! compensation, limits and backoff, deadline, NeedsOperator, intent before
//! effect, idempotent start, the sweep.

use super::harness::*;
use crate::saga::{
    hotel_checkout, CaptureMode, Command, Config, Coordinator, Event, LogRecord, Op, Outcome,
    Phase, SagaId, SagaStatus, StepState,
};

const KEY: &str = "res-1";
const EVENTS_MAX: usize = 5_000;

fn harness(capture: CaptureMode, pms_idempotent: bool, config: Config, script: Script) -> Harness {
    let def = hotel_checkout(capture, pms_idempotent);
    let world = FakeWorld::hotel(&def, pms_idempotent);
    Harness::new(def, config, world, script)
}

/// Runs one checkout to quiescence and checks what every test wants.
fn run(capture: CaptureMode, pms_idempotent: bool, config: Config, script: Script) -> Harness {
    let mut h = harness(capture, pms_idempotent, config, script);
    h.start(input(KEY));
    h.run(EVENTS_MAX);
    assert_eq!(h.coord.is_finalized(KEY), Some(true), "{:?}", h.status(KEY));
    h.assert_consistent();
    h.assert_notified();
    assert_log_discipline(&h.log);
    h
}

fn auto(script: Script) -> Harness {
    run(CaptureMode::Automatic, true, Config::default(), script)
}

fn reason(status: &SagaStatus) -> &str {
    match status {
        SagaStatus::Compensated { reason }
        | SagaStatus::NeedsOperator { reason }
        | SagaStatus::Rejected { reason } => reason,
        other => panic!("no reason in {other:?}"),
    }
}

fn ops(h: &Harness, step: &str) -> Vec<Op> {
    h.call_trace(KEY)
        .into_iter()
        .filter(|(s, _)| s == step)
        .map(|(_, op)| op)
        .collect()
}

fn record_kinds(log: &[LogRecord]) -> Vec<&'static str> {
    log.iter()
        .map(|r| match r {
            LogRecord::SagaStarted { .. } => "started",
            LogRecord::Intent { .. } => "intent",
            LogRecord::Result { .. } => "result",
            LogRecord::CompensationStarted { .. } => "compensation",
            LogRecord::Decision { .. } => "decision",
            LogRecord::SweepRound { .. } => "sweep",
            LogRecord::Finalized { .. } => "finalized",
        })
        .collect()
}

#[test]
fn happy_path_automatic_runs_each_step_once_in_order() {
    let h = auto(healthy());
    let trace: Vec<(String, Op)> = [
        "hold_room",
        "charge",
        "crm_record",
        "confirm_room",
        "crm_close_won",
    ]
    .iter()
    .map(|s| (s.to_string(), Op::Action))
    .collect();
    assert_eq!(h.call_trace(KEY), trace);
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    let mut want = vec!["started"];
    for _ in 0..5 {
        want.extend(["intent", "result"]);
    }
    want.extend(["decision", "finalized"]);
    assert_eq!(record_kinds(&h.log), want);
    // Every Start gets a reply once the saga is durable, then the decision.
    let statuses: Vec<SagaStatus> = h.notifies.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(
        statuses,
        vec![
            SagaStatus::Running {
                step: "hold_room".into(),
                phase: Phase::Forward
            },
            SagaStatus::Completed
        ]
    );
    // Later steps get the references of earlier ones.
    let confirm = h
        .calls
        .iter()
        .find(|c| c.step_name == "confirm_room")
        .unwrap();
    assert_eq!(confirm.refs.len(), 3);
    assert!(confirm.refs["hold_room"].starts_with("hold_room-"));
    assert_eq!(confirm.key, "saga-res-1/confirm_room");
    assert!(h
        .summary(KEY)
        .steps
        .iter()
        .all(|s| s.state == StepState::Applied));
}

#[test]
fn happy_path_manual_captures_after_the_pivot() {
    let h = run(CaptureMode::Manual, true, Config::default(), healthy());
    let steps: Vec<String> = h.call_trace(KEY).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        steps,
        [
            "hold_room",
            "authorize",
            "crm_record",
            "confirm_room",
            "capture",
            "crm_close_won"
        ]
    );
    assert_eq!(h.status(KEY), SagaStatus::Completed);
}

/// Expected end of a one-step fault script, per step kind.
#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    Completed,
    Compensated,
    NeedsOperator,
}

fn end_of(status: &SagaStatus) -> End {
    match status {
        SagaStatus::Completed => End::Completed,
        SagaStatus::Compensated { .. } => End::Compensated,
        SagaStatus::NeedsOperator { .. } => End::NeedsOperator,
        other => panic!("not terminal: {other:?}"),
    }
}

#[test]
fn each_outcome_class_for_each_step_kind() {
    use Fault::*;
    let action = |f| vec![(Op::Action, 1, f)];
    // (name, faults for the step under test, end for compensatable / pivot /
    // retriable, action sends, reconciles)
    type Case = (&'static str, Vec<(Op, u32, Fault)>, [End; 3], u32, u32);
    let e = End::Completed;
    let c = End::Compensated;
    let n = End::NeedsOperator;
    let never_found: Vec<(Op, u32, Fault)> = std::iter::once((Op::Action, 1, LostReply))
        .chain((1..=20).map(|i| (Op::Reconcile, i, LostRequest)))
        .collect();
    let cases: Vec<Case> = vec![
        ("applied", vec![], [e, e, e], 1, 0),
        ("rejected", action(Reject), [c, c, n], 1, 0),
        ("transient once", action(Transient), [e, e, e], 2, 0),
        (
            "transient always",
            (1..=5).map(|i| (Op::Action, i, Transient)).collect(),
            [c, c, n],
            5,
            0,
        ),
        ("unknown, found", action(LostReply), [e, e, e], 1, 1),
        ("unknown, not found", action(LostRequest), [e, e, e], 2, 1),
        (
            "unknown, reconcile unknown, found",
            vec![(Op::Action, 1, LostReply), (Op::Reconcile, 1, Transient)],
            [e, e, e],
            1,
            2,
        ),
        (
            "unknown, reconcile unknown, not found",
            vec![
                (Op::Action, 1, LostRequest),
                (Op::Reconcile, 1, LostRequest),
            ],
            [e, e, e],
            2,
            2,
        ),
        // Never resolved: before the pivot the saga compensates the rest and
        // the sweep cannot check either; at or after it nobody can decide.
        ("unknown forever", never_found, [n, n, n], 1, 6),
    ];
    for (case, faults, ends, sends, reconciles) in cases {
        for (kind, step) in ["charge", "confirm_room", "crm_close_won"]
            .iter()
            .enumerate()
        {
            let rules = faults
                .iter()
                .map(|&(op, nth, fault)| (*step, op, nth, fault))
                .collect();
            let h = auto(scripted(rules));
            let status = h.status(KEY);
            assert_eq!(end_of(&status), ends[kind], "{case} on {step}: {status:?}");
            let summary = h.summary(KEY);
            let s = summary.steps.iter().find(|s| s.name == *step).unwrap();
            assert_eq!(s.attempts, sends, "{case} on {step}: action sends");
            assert_eq!(s.reconciles, reconciles, "{case} on {step}: reconciles");
            if ends[kind] != End::Completed {
                assert!(
                    reason(&status).contains(step),
                    "{case} on {step}: {status:?}"
                );
            }
            // An Unknown action is always reconciled before anything else
            // happens to that step.
            let step_ops = ops(&h, step);
            for pair in step_ops.windows(2) {
                if pair[0] == Op::Action && pair[1] == Op::Action {
                    assert!(
                        case.starts_with("transient"),
                        "{case} on {step}: blind retry"
                    );
                }
            }
        }
    }
}

#[test]
fn failure_at_the_pivot_compensates_in_reverse_order() {
    let h = auto(always("confirm_room", Op::Action, Fault::Reject));
    assert_eq!(
        h.call_trace(KEY),
        vec![
            ("hold_room".into(), Op::Action),
            ("charge".into(), Op::Action),
            ("crm_record".into(), Op::Action),
            ("confirm_room".into(), Op::Action),
            ("crm_record".into(), Op::Compensate),
            ("charge".into(), Op::Compensate),
            ("hold_room".into(), Op::Compensate),
        ]
    );
    let status = h.status(KEY);
    assert_eq!(
        status,
        SagaStatus::Compensated {
            reason: "`confirm_room` rejected: scripted rejection".into()
        }
    );
    let undo = h.calls.iter().find(|c| c.op == Op::Compensate).unwrap();
    assert_eq!(undo.key, "saga-res-1/crm_record/undo");
    assert_eq!(
        undo.target_ref.as_deref(),
        Some(undo.refs["crm_record"].as_str())
    );
    let summary = h.summary(KEY);
    let states: Vec<StepState> = summary.steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            StepState::Compensated,
            StepState::Compensated,
            StepState::Compensated,
            StepState::NotApplied,
            StepState::NotStarted
        ]
    );
}

#[test]
fn failure_before_anything_applied_compensates_nothing() {
    let h = auto(always("hold_room", Op::Action, Fault::Reject));
    // Nothing to undo; the sweep still looks once for a late copy of the
    // refused hold (regression `rejected-hold-duplicated-later`).
    assert_eq!(
        h.call_trace(KEY),
        vec![
            ("hold_room".into(), Op::Action),
            ("hold_room".into(), Op::Reconcile)
        ]
    );
    assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
}

#[test]
fn null_compensation_counts_as_done() {
    let mut h = harness(
        CaptureMode::Automatic,
        true,
        Config::default(),
        always("crm_record", Op::Action, Fault::Reject),
    );
    h.start(input(KEY));
    let saga = SagaId::for_business_key(KEY);
    // Run until the hold exists, then let it expire behind our back.
    while h.world.live(&saga, 0).is_empty() {
        assert!(h.step());
    }
    h.world.expire(&saga, 0);
    h.run(EVENTS_MAX);
    assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
    assert_eq!(ops(&h, "hold_room"), [Op::Action, Op::Compensate]);
    h.assert_consistent();
}

#[test]
fn rejected_compensation_needs_an_operator_and_the_others_still_run() {
    let h = auto(scripted(vec![
        ("confirm_room", Op::Action, 1, Fault::Reject),
        ("crm_record", Op::Compensate, 1, Fault::Reject),
    ]));
    let status = h.status(KEY);
    let reason = reason(&status);
    assert!(matches!(status, SagaStatus::NeedsOperator { .. }));
    assert!(
        reason.contains("compensation of `crm_record` rejected"),
        "{reason}"
    );
    assert!(reason.contains("confirm_room"), "{reason}");
    let saga = SagaId::for_business_key(KEY);
    assert!(h.world.live(&saga, 0).is_empty() && h.world.live(&saga, 1).is_empty());
    assert_eq!(h.world.live(&saga, 2).len(), 1);
    assert_eq!(h.summary(KEY).steps[2].state, StepState::CompensationFailed);
}

#[test]
fn compensation_retries_with_its_own_cap_then_needs_an_operator() {
    let config = Config::default();
    let h = auto(Box::new(|call| match (call.step_name.as_str(), call.op) {
        ("confirm_room", Op::Action) => Fault::Reject,
        ("charge", Op::Compensate) => Fault::LostRequest,
        _ => Fault::Ok,
    }));
    assert_eq!(
        ops(&h, "charge")
            .iter()
            .filter(|o| **o == Op::Compensate)
            .count(),
        config.compensation_attempts_max as usize
    );
    let delays = h.scheduled_delays();
    assert_eq!(delays.len(), config.compensation_attempts_max as usize - 1);
    assert!(delays
        .iter()
        .all(|d| *d <= config.compensation_backoff_cap_ms));
    assert!(
        delays.iter().any(|d| *d > config.backoff_cap_ms),
        "compensation backs off past the forward cap: {delays:?}"
    );
    let status = h.status(KEY);
    assert!(reason(&status).contains("compensation of `charge` gave up after 10 attempts"));
    // The hold is released anyway.
    assert!(h.world.live(&SagaId::for_business_key(KEY), 0).is_empty());
}

#[test]
fn action_attempt_limit_with_capped_growing_backoff() {
    let config = Config {
        backoff_cap_ms: 1_000,
        action_attempts_max: 8,
        saga_deadline_ms: 600_000,
        ..Config::default()
    };
    let h = run(
        CaptureMode::Automatic,
        true,
        config.clone(),
        always("charge", Op::Action, Fault::Transient),
    );
    // Sent more than once, so the sweep re-checks it (nothing found).
    let mut want = vec![Op::Action; 8];
    want.push(Op::Reconcile);
    assert_eq!(ops(&h, "charge"), want);
    // Seven backoffs, then the sweep's wait for the late window.
    let all = h.scheduled_delays();
    assert_eq!(all.len(), 8);
    assert!(all[7] > config.backoff_cap_ms);
    let delays = &all[..7];
    let saga = SagaId::for_business_key(KEY);
    for (i, delay) in delays.iter().enumerate() {
        let failures = i as u32 + 1;
        assert_eq!(
            *delay,
            config.backoff_ms(&saga, 1, crate::saga::BackoffKind::Forward, failures)
        );
        let ceiling = (config.backoff_base_ms << i).min(config.backoff_cap_ms);
        assert!(*delay <= ceiling && *delay >= ceiling / 2, "{delays:?}");
    }
    assert!(delays.iter().all(|d| *d <= config.backoff_cap_ms));
    assert!(delays[6] >= config.backoff_cap_ms / 2, "the cap is reached");
    let status = h.status(KEY);
    assert_eq!(
        status,
        SagaStatus::Compensated {
            reason: "`charge` gave up after 8 attempts; last: transient: scripted 429".into()
        }
    );
}

#[test]
fn deadline_before_the_pivot_compensates() {
    let config = Config {
        saga_deadline_ms: 1_500,
        backoff_base_ms: 400,
        ..Config::default()
    };
    let h = run(
        CaptureMode::Automatic,
        true,
        config,
        always("charge", Op::Action, Fault::Transient),
    );
    let status = h.status(KEY);
    assert!(matches!(status, SagaStatus::Compensated { .. }));
    assert!(reason(&status).contains("deadline of 1500 ms passed while retrying `charge`"));
    assert!(
        ops(&h, "charge").len() < 5,
        "the deadline came before the attempt limit"
    );
}

#[test]
fn deadline_does_not_stop_a_saga_after_the_pivot() {
    let config = Config {
        saga_deadline_ms: 200,
        ..Config::default()
    };
    let h = run(
        CaptureMode::Automatic,
        true,
        config,
        scripted(
            (1..=4)
                .map(|i| ("crm_close_won", Op::Action, i, Fault::Transient))
                .collect(),
        ),
    );
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    assert_eq!(ops(&h, "crm_close_won").len(), 5);
}

#[test]
fn deadline_before_a_step_starts_compensates_without_calling_it() {
    let config = Config {
        saga_deadline_ms: 1_000,
        backoff_base_ms: 2_000,
        backoff_cap_ms: 4_000,
        ..Config::default()
    };
    // hold_room's reply is lost; the reconcile after a >= 1 s backoff finds
    // it applied, but by then the deadline passed, so charge is never called.
    let h = run(
        CaptureMode::Automatic,
        true,
        config,
        scripted(vec![("hold_room", Op::Action, 1, Fault::LostReply)]),
    );
    assert!(ops(&h, "charge").is_empty());
    assert!(reason(&h.status(KEY)).contains("deadline of 1000 ms passed before `charge` started"));
    // Reconciled, compensated, and (ambiguous) swept.
    assert_eq!(
        ops(&h, "hold_room"),
        [Op::Action, Op::Reconcile, Op::Compensate, Op::Reconcile]
    );
}

#[test]
fn retriable_step_exhausted_needs_an_operator_naming_it() {
    let h = run(
        CaptureMode::Manual,
        true,
        Config::default(),
        always("capture", Op::Action, Fault::Transient),
    );
    assert_eq!(
        h.status(KEY),
        SagaStatus::NeedsOperator {
            reason: "`capture` gave up after 5 attempts; last: transient: scripted 429".into()
        }
    );
    // After the pivot nothing is compensated.
    assert!(h.calls.iter().all(|c| c.op != Op::Compensate));
    assert!(ops(&h, "crm_close_won").is_empty());
}

#[test]
fn every_call_follows_the_acknowledged_persist_of_its_intent() {
    let h = auto(scripted(vec![
        ("charge", Op::Action, 1, Fault::LostRequest),
        ("confirm_room", Op::Action, 1, Fault::Reject),
    ]));
    let mut persisted_at: Vec<(usize, &LogRecord)> = Vec::new();
    for (event, command) in &h.commands {
        match command {
            Command::Persist { records, .. } => {
                persisted_at.extend(records.iter().map(|r| (*event, r)));
            }
            Command::Call(call) if call.op.needs_intent() => {
                let intent = persisted_at.iter().find(|(_, r)| {
                    matches!(r, LogRecord::Intent { key, attempt, .. }
                        if *key == call.key && *attempt == call.attempt)
                });
                let (persist_event, _) = intent.expect("intent persisted before the call");
                assert!(
                    *persist_event < *event,
                    "the call waits for the acknowledgement"
                );
            }
            _ => {}
        }
    }
    // The Decision is durable before agents hear of it.
    let decision_event = h
        .commands
        .iter()
        .find(|(_, c)| {
            matches!(c, Command::Persist { records, .. }
            if records.iter().any(|r| matches!(r, LogRecord::Decision { .. })))
        })
        .unwrap()
        .0;
    let notify_event = h
        .commands
        .iter()
        .find(|(_, c)| matches!(c, Command::Notify { status, .. } if status.is_decided()))
        .unwrap()
        .0;
    assert!(decision_event < notify_event);
}

#[test]
fn start_is_idempotent_on_the_business_key() {
    let mut h = harness(CaptureMode::Automatic, true, Config::default(), healthy());
    h.start(input(KEY));
    h.start(input(KEY));
    assert_eq!(
        h.notifies[0].1,
        SagaStatus::Running {
            step: "hold_room".into(),
            phase: Phase::Starting
        }
    );
    h.run(EVENTS_MAX);
    h.start(input(KEY));
    let mut other = input(KEY);
    other.amount_cents = 1;
    h.start(other);
    let started = h
        .log
        .iter()
        .filter(|r| matches!(r, LogRecord::SagaStarted { .. }))
        .count();
    assert_eq!(started, 1);
    assert_eq!(h.calls.len(), 5, "one set of calls");
    assert_eq!(h.coord.saga_count(), 1);
    let replies: Vec<&SagaStatus> = h.notifies.iter().map(|(_, s)| s).collect();
    assert_eq!(replies.len(), 5);
    assert_eq!(*replies[3], SagaStatus::Completed);
    assert!(reason(replies[4]).contains("already used by saga-res-1 with a different request"));
}

#[test]
fn bad_starts_are_rejected_without_a_saga() {
    let config = Config {
        sagas_max: 1,
        ..Config::default()
    };
    let mut h = harness(CaptureMode::Automatic, true, config, healthy());
    let mut bad = input("res/1");
    h.start(bad.clone());
    bad.business_key = "res-2".into();
    bad.nights = 0;
    h.start(bad);
    h.start(input("res-3"));
    h.start(input("res-4"));
    let reasons: Vec<String> = h
        .notifies
        .iter()
        .map(|(_, s)| reason(s).to_string())
        .collect();
    assert!(reasons[0].contains("business_key"), "{reasons:?}");
    assert!(reasons[1].contains("nights"), "{reasons:?}");
    assert!(reasons[2].contains("limit of 1 sagas"), "{reasons:?}");
    assert_eq!(h.coord.saga_count(), 1);
    assert!(h.coord.status("res-2").is_none());
}

#[test]
fn unknown_and_stale_ids_are_ignored() {
    let mut h = harness(CaptureMode::Automatic, true, Config::default(), healthy());
    let mut c = Coordinator::new(h.def.clone(), Config::default()).unwrap();
    assert!(c.on_event(0, Event::Persisted { token: 7 }).is_empty());
    assert!(c.on_event(0, Event::Timer { timer_id: 7 }).is_empty());
    assert!(c
        .on_event(
            0,
            Event::CallDone {
                call_id: 7,
                outcome: Outcome::NotFound
            }
        )
        .is_empty());
    h.start(input(KEY));
    h.run(EVENTS_MAX);
    // Replay every event id the run used: all stale now.
    for id in 0..200 {
        assert!(h
            .coord
            .on_event(h.now_ms, Event::Persisted { token: id })
            .is_empty());
        assert!(h
            .coord
            .on_event(h.now_ms, Event::Timer { timer_id: id })
            .is_empty());
        let done = Event::CallDone {
            call_id: id,
            outcome: Outcome::applied("x"),
        };
        assert!(h.coord.on_event(h.now_ms, done).is_empty());
    }
    assert_eq!(h.status(KEY), SagaStatus::Completed);
}

#[test]
fn non_idempotent_pms_hold_is_always_swept_after_the_late_window() {
    let config = Config::default();
    let h = run(CaptureMode::Automatic, false, config.clone(), healthy());
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    assert_eq!(ops(&h, "hold_room"), [Op::Action, Op::Reconcile]);
    // The sweep waited until the late window after the hold was sent.
    let hold_sent_at = h
        .log
        .iter()
        .find_map(|r| match r {
            LogRecord::Intent { step: 0, at_ms, .. } => Some(*at_ms),
            _ => None,
        })
        .unwrap();
    let sweep_at = h
        .log
        .iter()
        .find_map(|r| match r {
            LogRecord::SweepRound { at_ms, .. } => Some(*at_ms),
            _ => None,
        })
        .unwrap();
    assert!(sweep_at >= hold_sent_at + config.late_window_ms);
    assert!(sweep_at <= hold_sent_at + config.late_window_ms + 100);
    // One notify for the decision, none for the unchanged final status.
    assert_eq!(h.notifies.len(), 2);
}

#[test]
fn duplicate_holds_are_released_by_the_sweep() {
    let h = run(
        CaptureMode::Automatic,
        false,
        Config::default(),
        scripted(vec![("hold_room", Op::Action, 1, Fault::Duplicate)]),
    );
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    let kept = h.summary(KEY).steps[0].reference.clone().unwrap();
    let undo = h.calls.iter().find(|c| c.op == Op::Compensate).unwrap();
    assert_ne!(undo.target_ref.as_ref(), Some(&kept));
    assert_eq!(
        undo.key,
        format!(
            "saga-res-1/hold_room/undo/{}",
            undo.target_ref.as_ref().unwrap()
        )
    );
    // A second round verified the release.
    assert_eq!(
        ops(&h, "hold_room"),
        [Op::Action, Op::Reconcile, Op::Compensate, Op::Reconcile]
    );
    assert_eq!(h.world.live(&SagaId::for_business_key(KEY), 0).len(), 1);
}

#[test]
fn found_with_several_references_keeps_the_smallest_and_sweeps_the_rest() {
    let h = run(
        CaptureMode::Automatic,
        false,
        Config::default(),
        scripted(vec![(
            "hold_room",
            Op::Action,
            1,
            Fault::DuplicateLostReply,
        )]),
    );
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    let summary = h.summary(KEY);
    let kept = summary.steps[0].reference.clone().unwrap();
    let confirm = h
        .calls
        .iter()
        .find(|c| c.step_name == "confirm_room")
        .unwrap();
    assert_eq!(confirm.refs["hold_room"], kept);
    let live = h.world.live(&SagaId::for_business_key(KEY), 0);
    assert_eq!(live.into_iter().collect::<Vec<_>>(), vec![kept]);
    assert_eq!(summary.steps[0].attempts, 1, "never re-sent");
}

#[test]
fn late_charge_after_compensation_is_refunded_by_the_sweep() {
    let mut rules = vec![("charge", Op::Action, 1, Fault::Late(5_000))];
    rules.extend((2..=5).map(|i| ("charge", Op::Action, i, Fault::Transient)));
    let h = auto(scripted(rules));
    assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
    let saga = SagaId::for_business_key(KEY);
    let undo = h
        .calls
        .iter()
        .find(|c| c.step_name == "charge" && c.op == Op::Compensate)
        .expect("the late charge is refunded");
    assert!(undo.key.starts_with("saga-res-1/charge/undo/"));
    assert!(h.world.live(&saga, 1).is_empty());
    // The decision came before the late charge landed; agents heard it once.
    assert_eq!(h.notifies.len(), 2);
}

#[test]
fn late_upsert_after_cancel_is_cancelled_again() {
    let h = auto(scripted(vec![
        ("crm_record", Op::Action, 1, Fault::Late(3_000)),
        ("confirm_room", Op::Action, 1, Fault::Reject),
    ]));
    assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
    let crm_ops = ops(&h, "crm_record");
    assert_eq!(
        crm_ops,
        [
            Op::Action,
            Op::Reconcile,
            Op::Action,
            Op::Compensate,
            Op::Reconcile,
            Op::Compensate,
            Op::Reconcile
        ]
    );
    assert!(h.world.live(&SagaId::for_business_key(KEY), 2).is_empty());
}

#[test]
fn late_pivot_after_compensation_needs_an_operator() {
    let h = run(
        CaptureMode::Automatic,
        true,
        Config::default(),
        scripted(vec![
            ("confirm_room", Op::Action, 1, Fault::Late(2_000)),
            ("confirm_room", Op::Action, 2, Fault::Reject),
        ]),
    );
    let status = h.status(KEY);
    assert!(
        reason(&status).contains("`confirm_room` has effects"),
        "{status:?}"
    );
    let decided: Vec<&SagaStatus> = h
        .notifies
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.is_decided())
        .collect();
    assert!(matches!(decided[0], SagaStatus::Compensated { .. }));
    assert!(matches!(decided[1], SagaStatus::NeedsOperator { .. }));
}

#[test]
fn unresolved_step_is_never_compensated_blindly_the_sweep_finds_it() {
    // The charge lands but its reply is lost, and every forward reconcile
    // fails: the coordinator undoes the hold, leaves the charge to the sweep,
    // which finds and refunds it.
    let mut rules = vec![("charge", Op::Action, 1, Fault::LostReply)];
    rules.extend((1..=6).map(|i| ("charge", Op::Reconcile, i, Fault::LostRequest)));
    let h = auto(scripted(rules));
    assert!(
        matches!(h.status(KEY), SagaStatus::Compensated { .. }),
        "{:?}",
        h.status(KEY)
    );
    let charge = ops(&h, "charge");
    let mut want = vec![Op::Action];
    want.extend([Op::Reconcile; 6]);
    want.extend([Op::Reconcile, Op::Compensate, Op::Reconcile]);
    assert_eq!(charge, want);
    let undo = h
        .calls
        .iter()
        .find(|c| c.step_name == "charge" && c.op == Op::Compensate);
    assert!(undo.unwrap().key.contains("/charge/undo/"));
    // The hold was released before the sweep even started.
    let hold_undo = h
        .calls
        .iter()
        .position(|c| c.step_name == "hold_room" && c.op == Op::Compensate);
    let charge_sweep = h
        .calls
        .iter()
        .position(|c| c.step_name == "charge" && c.op == Op::Compensate);
    assert!(hold_undo < charge_sweep);
}

#[test]
fn sweep_that_cannot_check_needs_an_operator() {
    let h = run(
        CaptureMode::Automatic,
        false,
        Config::default(),
        always("hold_room", Op::Reconcile, Fault::Transient),
    );
    let status = h.status(KEY);
    assert!(
        reason(&status).starts_with(
            "completed; sweep: could not check `hold_room` for late effects after 6 reconciles"
        ),
        "{status:?}"
    );
    assert_eq!(ops(&h, "hold_room").len(), 1 + 6);
    let decided: Vec<&SagaStatus> = h
        .notifies
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.is_decided())
        .collect();
    assert_eq!(decided.len(), 2);
}

#[test]
fn sweep_rounds_are_bounded() {
    // Every release "succeeds" without effect, as a broken glue would: the
    // verification round finds the duplicate again, and the sweep gives up.
    let config = Config::default();
    let h = run(
        CaptureMode::Automatic,
        false,
        config.clone(),
        Box::new(|call| match (call.step_name.as_str(), call.op) {
            ("hold_room", Op::Action) => Fault::Duplicate,
            ("hold_room", Op::Compensate) => Fault::LostRequest,
            _ => Fault::Ok,
        }),
    );
    let status = h.status(KEY);
    assert!(matches!(status, SagaStatus::NeedsOperator { .. }));
    assert!(
        reason(&status).contains("could not undo late effect"),
        "{status:?}"
    );
    let rounds = h
        .log
        .iter()
        .filter(|r| matches!(r, LogRecord::SweepRound { .. }))
        .count();
    assert_eq!(rounds as u32, config.sweep_rounds_max);
}

/// The article's case at the core level: the charge is applied, then the
/// CRM write times out — once applied (reply lost), once not applied.
#[test]
fn snapshot_crm_timeout_after_the_charge() {
    let applied = auto(scripted(vec![(
        "crm_record",
        Op::Action,
        1,
        Fault::LostReply,
    )]));
    assert_eq!(applied.status(KEY), SagaStatus::Completed);
    insta::assert_yaml_snapshot!("crm_reply_lost", applied.trace);
    let not_applied = auto(scripted(vec![
        ("crm_record", Op::Action, 1, Fault::LostRequest),
        ("crm_record", Op::Action, 2, Fault::Reject),
    ]));
    assert!(matches!(
        not_applied.status(KEY),
        SagaStatus::Compensated { .. }
    ));
    insta::assert_yaml_snapshot!("crm_request_lost_then_rejected", not_applied.trace);
}

#[test]
fn snapshot_duplicate_hold_swept() {
    let h = run(
        CaptureMode::Automatic,
        false,
        Config::default(),
        scripted(vec![("hold_room", Op::Action, 1, Fault::Duplicate)]),
    );
    insta::assert_yaml_snapshot!("duplicate_hold_swept", h.trace);
}

#[test]
fn sweep_undo_per_round_is_bounded() {
    let mut h = harness(CaptureMode::Automatic, false, Config::default(), healthy());
    h.start(input(KEY));
    // Run until the sweep's reconcile is sent, then answer it with far too
    // many effects.
    while !h.calls.iter().any(|c| c.op == Op::Reconcile) {
        assert!(h.step());
    }
    while h.has_pending_persist() {
        assert!(h.step());
    }
    let (call_id, _) = h.deliver_next_call().unwrap();
    let references: Vec<String> = (0..40).map(|i| format!("h{i:02}")).collect();
    h.feed(Event::CallDone {
        call_id,
        outcome: Outcome::Found { references },
    });
    h.run(EVENTS_MAX);
    let undos = h.calls.iter().filter(|c| c.op == Op::Compensate).count();
    assert_eq!(undos, crate::saga::state::SWEEP_UNDO_MAX);
    let status = h.status(KEY);
    assert!(
        reason(&status).contains("has 40 effects to undo"),
        "{status:?}"
    );
}

#[test]
fn retriable_steps_after_the_pivot_have_their_own_budget() {
    let config = Config {
        forward_attempts_after_pivot_max: 12,
        ..Config::default()
    };
    let h = run(
        CaptureMode::Manual,
        true,
        config.clone(),
        always("capture", Op::Action, Fault::Transient),
    );
    assert_eq!(
        h.status(KEY),
        SagaStatus::NeedsOperator {
            reason: "`capture` gave up after 12 attempts; last: transient: scripted 429".into()
        }
    );
    // Before the pivot the ordinary budget still applies.
    let h = run(
        CaptureMode::Manual,
        true,
        config,
        always("authorize", Op::Action, Fault::Transient),
    );
    assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
    let s = h.summary(KEY);
    assert_eq!(s.steps[1].attempts, Config::default().action_attempts_max);
}
