//! Named transitions of the pure core, driven through the hand-played
//! driver: each outcome class for each step kind, compensation order, null
//! compensation, limits and backoff, deadline, NeedsOperator, intent before
//! effect, idempotent start, the sweep.

use super::harness::*;
use crate::saga::{
    Command, Config, Coordinator, Event, LogRecord, Op, Outcome, Phase, SagaId, SagaStatus,
    StepState,
};
use crate::workloads::hotel::{saga_definition, CaptureMode};

const KEY: &str = "res-1";
const EVENTS_MAX: usize = 5_000;

fn harness(capture: CaptureMode, pms_idempotent: bool, config: Config, script: Script) -> Harness {
    let def = saga_definition(capture, pms_idempotent);
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
    run(CaptureMode::Automatic, true, small_budgets(), script)
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
    let h = run(CaptureMode::Manual, true, small_budgets(), healthy());
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
    // retriable, action sends, forward reconciles for compensatable / pivot
    // / retriable). A pivot that definitely failed after it was sent is
    // reconciled once more behind the fence before the saga turns back.
    type Case = (&'static str, Vec<(Op, u32, Fault)>, [End; 3], u32, [u32; 3]);
    let e = End::Completed;
    let c = End::Compensated;
    let n = End::NeedsOperator;
    let never_found: Vec<(Op, u32, Fault)> = std::iter::once((Op::Action, 1, LostReply))
        .chain((1..=20).map(|i| (Op::Reconcile, i, LostRequest)))
        .collect();
    let cases: Vec<Case> = vec![
        ("applied", vec![], [e, e, e], 1, [0, 0, 0]),
        ("rejected", action(Reject), [c, c, n], 1, [0, 1, 0]),
        ("transient once", action(Transient), [e, e, e], 2, [0, 0, 0]),
        (
            "transient always",
            (1..=5).map(|i| (Op::Action, i, Transient)).collect(),
            [c, c, n],
            5,
            [0, 1, 0],
        ),
        ("unknown, found", action(LostReply), [e, e, e], 1, [1, 1, 1]),
        (
            "unknown, not found",
            action(LostRequest),
            [e, e, e],
            2,
            [1, 1, 1],
        ),
        (
            "unknown, reconcile unknown, found",
            vec![(Op::Action, 1, LostReply), (Op::Reconcile, 1, Transient)],
            [e, e, e],
            1,
            [2, 2, 2],
        ),
        (
            "unknown, reconcile unknown, not found",
            vec![
                (Op::Action, 1, LostRequest),
                (Op::Reconcile, 1, LostRequest),
            ],
            [e, e, e],
            2,
            [2, 2, 2],
        ),
        // Never resolved: before the pivot the saga compensates the rest and
        // the sweep cannot check either; at or after it nobody can decide.
        ("unknown forever", never_found, [n, n, n], 1, [6, 6, 6]),
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
            assert_eq!(
                s.reconciles, reconciles[kind],
                "{case} on {step}: reconciles"
            );
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
            // The saga turns back from a pivot it sent only after the
            // fence's reconcile, which follows the pivot's last send.
            let trace = h.call_trace(KEY);
            if let Some(first_undo) = trace.iter().position(|(_, op)| *op == Op::Compensate) {
                let pivot_sends: Vec<usize> = (0..first_undo)
                    .filter(|&k| trace[k] == ("confirm_room".to_string(), Op::Action))
                    .collect();
                if let Some(&last_send) = pivot_sends.last() {
                    assert!(
                        trace[last_send..first_undo]
                            .contains(&("confirm_room".to_string(), Op::Reconcile)),
                        "{case} on {step}: turned back without the fence: {trace:?}"
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
            // The fence: no late copy of the refused confirm landed.
            ("confirm_room".into(), Op::Reconcile),
            ("crm_record".into(), Op::Compensate),
            ("charge".into(), Op::Compensate),
            ("hold_room".into(), Op::Compensate),
            // The sweep re-checks the (now ambiguous) pivot.
            ("confirm_room".into(), Op::Reconcile),
        ]
    );
    let status = h.status(KEY);
    assert_eq!(
        status,
        SagaStatus::Compensated {
            reason: "`confirm_room` rejected: scripted rejection; \
                     no late copy landed within the late window"
                .into()
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
        small_budgets(),
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
    assert!(
        reason.contains("compensating because: `confirm_room` rejected: scripted rejection"),
        "{reason}"
    );
    // The fence's reconcile came before any compensation.
    let trace = h.call_trace(KEY);
    let fence = trace
        .iter()
        .position(|c| *c == ("confirm_room".to_string(), Op::Reconcile));
    let first_undo = trace.iter().position(|(_, op)| *op == Op::Compensate);
    assert!(fence.is_some() && fence < first_undo, "{trace:?}");
    let saga = SagaId::for_business_key(KEY);
    assert!(h.world.live(&saga, 0).is_empty() && h.world.live(&saga, 1).is_empty());
    assert_eq!(h.world.live(&saga, 2).len(), 1);
    assert_eq!(h.summary(KEY).steps[2].state, StepState::CompensationFailed);
}

#[test]
fn compensation_retries_with_its_own_cap_then_needs_an_operator() {
    let config = small_budgets();
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
    let all = h.scheduled_delays();
    // First the fence waits out the late window after the refused
    // confirm's call returned...
    assert_eq!(all[0], config.late_window_ms);
    // ... then only compensation backoffs (the sweep of the pivot is due
    // already).
    let delays = &all[1..];
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
        ..small_budgets()
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
        ..small_budgets()
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
        ..small_budgets()
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
        ..small_budgets()
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
        small_budgets(),
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
    let mut h = harness(CaptureMode::Automatic, true, small_budgets(), healthy());
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
        ..small_budgets()
    };
    let mut h = harness(CaptureMode::Automatic, true, config, healthy());
    let mut bad = input("res/1");
    h.start(bad.clone());
    bad.business_key = "res-2".into();
    bad.amount_cents = 0;
    h.start(bad);
    h.start(input("res-3"));
    h.start(input("res-4"));
    let reasons: Vec<String> = h
        .notifies
        .iter()
        .map(|(_, s)| reason(s).to_string())
        .collect();
    assert!(reasons[0].contains("business_key"), "{reasons:?}");
    assert!(reasons[1].contains("amount_cents"), "{reasons:?}");
    assert!(reasons[2].contains("limit of 1 sagas"), "{reasons:?}");
    assert_eq!(h.coord.saga_count(), 1);
    assert!(h.coord.status("res-2").is_none());
}

#[test]
fn unknown_and_stale_ids_are_ignored() {
    let mut h = harness(CaptureMode::Automatic, true, small_budgets(), healthy());
    let mut c = Coordinator::new(h.def.clone(), small_budgets()).unwrap();
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
    let config = small_budgets();
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
        small_budgets(),
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
        small_budgets(),
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
    // The decision came before the late charge landed, but the charge was
    // ambiguous: agents hear "compensated" only once the sweep is done
    // (the undo of a late charge could fail), and only once.
    let decided = decided_notifies(&h);
    assert_eq!(decided.len(), 1, "{decided:?}");
    let swept_at = h
        .log
        .iter()
        .position(|r| matches!(r, LogRecord::Finalized { .. }))
        .expect("finalized");
    assert!(h.log[..swept_at]
        .iter()
        .any(|r| matches!(r, LogRecord::Intent { op: Op::Compensate, key, .. } if key.starts_with("saga-res-1/charge/undo/"))));
}

/// The instant of the first log record matching `pick`.
fn record_at(log: &[LogRecord], pick: impl Fn(&LogRecord) -> bool) -> u64 {
    log.iter()
        .find(|r| pick(r))
        .map(|r| match r {
            LogRecord::SagaStarted { at_ms, .. }
            | LogRecord::Intent { at_ms, .. }
            | LogRecord::Result { at_ms, .. }
            | LogRecord::CompensationStarted { at_ms, .. }
            | LogRecord::Decision { at_ms, .. }
            | LogRecord::SweepRound { at_ms, .. }
            | LogRecord::Finalized { at_ms, .. } => *at_ms,
        })
        .expect("a matching record")
}

/// Call instants of one step and op, in order.
fn call_times(h: &Harness, step: &str, op: Op) -> Vec<u64> {
    h.timed_calls(KEY)
        .into_iter()
        .filter(|(_, c)| c.step_name == step && c.op == op)
        .map(|(at_ms, _)| at_ms)
        .collect()
}

fn decided_notifies(h: &Harness) -> Vec<SagaStatus> {
    h.notifies
        .iter()
        .map(|(_, s)| s.clone())
        .filter(|s| s.is_decided())
        .collect()
}

/// A late upsert that lands after the CRM record was cancelled makes it live
/// again (upsert by external id); the sweep cancels it again and verifies.
/// The pivot fence would have outwaited the copy (see the next test), so the
/// saga turns back without sending the pivot: the deadline passes just as
/// the CRM record is written.
#[test]
fn late_upsert_after_cancel_is_cancelled_again() {
    let script = || scripted(vec![("crm_record", Op::Action, 1, Fault::Late(3_000))]);
    // Where the second CRM send's reply arrives, on a run without a
    // deadline: set the deadline there (same run up to that instant).
    let reference = auto(script());
    let crm_written_at_ms = record_at(&reference.log, |r| {
        matches!(
            r,
            LogRecord::Result {
                step: 2,
                op: Op::Action,
                outcome: Outcome::Applied { .. },
                ..
            }
        )
    });
    let config = Config {
        saga_deadline_ms: crm_written_at_ms - reference.summary(KEY).started_at_ms,
        ..small_budgets()
    };
    let h = run(CaptureMode::Automatic, true, config, script());
    let status = h.status(KEY);
    assert!(
        reason(&status).contains("passed before `confirm_room` started"),
        "{status:?}"
    );
    assert!(matches!(status, SagaStatus::Compensated { .. }));
    assert!(ops(&h, "confirm_room").is_empty());
    // The cancel came before the late copy landed (sent + 3 s).
    let sends = call_times(&h, "crm_record", Op::Action);
    let cancels = call_times(&h, "crm_record", Op::Compensate);
    assert!(cancels[0] < sends[0] + 3_000, "{sends:?} {cancels:?}");
    assert_eq!(
        ops(&h, "crm_record"),
        [
            Op::Action,
            Op::Reconcile,
            Op::Action,
            Op::Compensate,
            // Sweep round 1: the revived record, cancelled again ...
            Op::Reconcile,
            Op::Compensate,
            // ... round 2 verifies.
            Op::Reconcile
        ]
    );
    assert!(h.world.live(&SagaId::for_business_key(KEY), 2).is_empty());
}

/// With a refused pivot, the fence waits out the late window after the
/// pivot's send, which follows every earlier send: a late upsert (within
/// the window) has landed before the saga cancels the CRM record, so the
/// one cancel covers it and the sweep finds nothing.
#[test]
fn late_upsert_lands_during_the_pivot_fence_and_one_cancel_covers_it() {
    let config = small_budgets();
    let h = auto(scripted(vec![
        ("crm_record", Op::Action, 1, Fault::Late(3_000)),
        ("confirm_room", Op::Action, 1, Fault::Reject),
    ]));
    assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
    assert_eq!(
        ops(&h, "crm_record"),
        [
            Op::Action,
            Op::Reconcile,
            Op::Action,
            Op::Compensate,
            Op::Reconcile
        ]
    );
    let late_landed_at = call_times(&h, "crm_record", Op::Action)[0] + h.latency_ms + 3_000;
    let cancel_at = call_times(&h, "crm_record", Op::Compensate)[0];
    let pivot_sent_at = call_times(&h, "confirm_room", Op::Action)[0];
    assert!(cancel_at >= pivot_sent_at + config.late_window_ms);
    assert!(cancel_at > late_landed_at);
    assert!(h.world.live(&SagaId::for_business_key(KEY), 2).is_empty());
}

/// A copy of the first confirm lands after the retry was refused but within
/// the late window: the fence's reconcile finds it, the pivot counts as
/// applied, and the saga goes forward — nothing is compensated and agents
/// hear `Completed` only.
#[test]
fn late_pivot_within_the_late_window_is_caught_by_the_fence() {
    let config = small_budgets();
    let h = run(
        CaptureMode::Automatic,
        true,
        config.clone(),
        scripted(vec![
            ("confirm_room", Op::Action, 1, Fault::Late(2_000)),
            ("confirm_room", Op::Action, 2, Fault::Reject),
        ]),
    );
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    assert_eq!(decided_notifies(&h), [SagaStatus::Completed]);
    assert!(h.calls.iter().all(|c| c.op != Op::Compensate));
    assert_eq!(
        ops(&h, "confirm_room"),
        [Op::Action, Op::Reconcile, Op::Action, Op::Reconcile]
    );
    assert_eq!(ops(&h, "crm_close_won"), [Op::Action]);
    let sends = call_times(&h, "confirm_room", Op::Action);
    let fence = call_times(&h, "confirm_room", Op::Reconcile)[1];
    assert!(fence >= sends[1] + config.late_window_ms);
    // The booking the late copy made is the one the saga keeps.
    let summary = h.summary(KEY);
    let kept = summary.steps[3]
        .reference
        .clone()
        .expect("found by the fence");
    let live = h.world.live(&SagaId::for_business_key(KEY), 3);
    assert_eq!(live.into_iter().collect::<Vec<_>>(), [kept]);
}

/// Outside the late-window assumption: the first confirm's copy is delayed
/// longer than `late_window_ms`, lands after the fence's reconcile (which
/// saw nothing) and after the saga turned back. Slow compensation lets the
/// sweep's re-check of the pivot find it: a booking nobody can undo, so the
/// final status is `NeedsOperator` (agents hear only that: the pivot was
/// ambiguous, so "compensated" waits for the sweep).
#[test]
fn late_pivot_beyond_the_late_window_is_found_by_the_sweep_and_needs_an_operator() {
    let config = small_budgets();
    let delay_ms = config.late_window_ms + 1_500;
    let mut rules = vec![
        ("confirm_room", Op::Action, 1, Fault::Late(delay_ms)),
        ("confirm_room", Op::Action, 2, Fault::Reject),
    ];
    rules.extend((1..=5).map(|i| ("hold_room", Op::Compensate, i, Fault::Transient)));
    let h = run(CaptureMode::Automatic, true, config, scripted(rules));
    let status = h.status(KEY);
    assert!(
        reason(&status).contains("`confirm_room` has effects"),
        "{status:?}"
    );
    // The pivot was ambiguous: agents never hear the "compensated" the
    // sweep then contradicts, only the final NeedsOperator.
    let decided = decided_notifies(&h);
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert!(matches!(decided[0], SagaStatus::NeedsOperator { .. }));
    // The fence looked and saw nothing; the copy landed after it, and
    // before the sweep looked again.
    let landed_at = call_times(&h, "confirm_room", Op::Action)[0] + h.latency_ms + delay_ms;
    let reconciles = call_times(&h, "confirm_room", Op::Reconcile);
    assert_eq!(reconciles.len(), 3, "forward, fence, sweep");
    assert!(reconciles[1] < landed_at && landed_at <= reconciles[2]);
    let fence_result = h.log.iter().rev().find_map(|r| match r {
        LogRecord::Result {
            step: 3,
            op: Op::Reconcile,
            outcome,
            ..
        } if !matches!(outcome, Outcome::Found { .. }) => Some(outcome.clone()),
        _ => None,
    });
    assert_eq!(fence_result, Some(Outcome::NotFound));
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
        small_budgets(),
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
    let config = small_budgets();
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
        small_budgets(),
        scripted(vec![("hold_room", Op::Action, 1, Fault::Duplicate)]),
    );
    insta::assert_yaml_snapshot!("duplicate_hold_swept", h.trace);
}

#[test]
fn sweep_undo_per_round_is_bounded() {
    let mut h = harness(CaptureMode::Automatic, false, small_budgets(), healthy());
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
        ..small_budgets()
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
    assert_eq!(s.steps[1].attempts, small_budgets().action_attempts_max);
}

/// Runs a checkout until the refused pivot's fence is up: the refusal is
/// durable and the saga waits on the fence's timer.
fn until_the_fence_waits(h: &mut Harness) {
    h.start(input(KEY));
    while !h.log.iter().any(|r| {
        matches!(
            r,
            LogRecord::Result {
                step: 3,
                op: Op::Action,
                outcome: Outcome::Rejected { .. },
                ..
            }
        )
    }) {
        assert!(h.step());
    }
    assert!(!h.has_pending_persist());
    assert!(matches!(
        h.commands.last(),
        Some((_, Command::Schedule { .. }))
    ));
}

#[test]
fn fence_finds_a_copy_of_the_refused_pivot_and_the_saga_goes_forward() {
    let mut h = harness(
        CaptureMode::Automatic,
        true,
        small_budgets(),
        scripted(vec![("confirm_room", Op::Action, 1, Fault::Reject)]),
    );
    until_the_fence_waits(&mut h);
    // A copy of the refused confirm lands while the fence waits.
    let saga = SagaId::for_business_key(KEY);
    let booking = h.world.land_refused_copy(&saga, 3, "confirm_room");
    h.run(EVENTS_MAX);
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    assert_eq!(decided_notifies(&h), [SagaStatus::Completed]);
    assert!(
        h.calls.iter().all(|c| c.op != Op::Compensate),
        "no compensation"
    );
    assert_eq!(ops(&h, "confirm_room"), [Op::Action, Op::Reconcile]);
    assert_eq!(ops(&h, "crm_close_won"), [Op::Action]);
    let summary = h.summary(KEY);
    assert_eq!(summary.steps[3].reference, Some(booking));
    assert_eq!(summary.steps[3].state, StepState::Applied);
    h.assert_consistent();
    h.assert_notified();
    assert_log_discipline(&h.log);
}

#[test]
fn fence_waits_out_the_late_window_after_the_last_pivot_call_then_compensates() {
    let config = small_budgets();
    // Refused once; refused 429 on every attempt (the regression
    // `late-pivot-after-compensation`): the wait counts from the last send.
    for (rules, sends) in [
        (vec![("confirm_room", Op::Action, 1, Fault::Reject)], 1),
        (
            (1..=5)
                .map(|i| ("confirm_room", Op::Action, i, Fault::Transient))
                .collect(),
            5,
        ),
    ] {
        let h = auto(scripted(rules));
        assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
        let pivot_sends = call_times(&h, "confirm_room", Op::Action);
        assert_eq!(pivot_sends.len(), sends);
        let last_send = *pivot_sends.last().unwrap();
        // The fence sleeps a whole late window from the refusal (the call's
        // return, one latency after the send).
        let delays = h.scheduled_delays();
        assert_eq!(delays.len(), sends, "{delays:?}: backoffs, then the fence");
        assert_eq!(delays[sends - 1], config.late_window_ms);
        let reconciles = call_times(&h, "confirm_room", Op::Reconcile);
        assert_eq!(reconciles.len(), 2, "fence, sweep");
        assert!(reconciles[0] >= last_send + h.latency_ms + config.late_window_ms);
        // Then, and only then, the compensations, latest step first.
        let undos: Vec<(u64, String)> = h
            .timed_calls(KEY)
            .into_iter()
            .filter(|(_, c)| c.op == Op::Compensate)
            .map(|(at_ms, c)| (at_ms, c.step_name.clone()))
            .collect();
        let names: Vec<&str> = undos.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["crm_record", "charge", "hold_room"]);
        assert!(undos.iter().all(|(at_ms, _)| *at_ms > reconciles[0]));
        let compensation_started_at = record_at(&h.log, |r| {
            matches!(r, LogRecord::CompensationStarted { .. })
        });
        assert!(compensation_started_at >= last_send + config.late_window_ms);
        assert!(reason(&h.status(KEY)).ends_with("no late copy landed within the late window"));
    }
}

#[test]
fn fence_reconcile_unknown_is_retried_with_backoff_then_resolved() {
    let config = small_budgets();
    let saga = SagaId::for_business_key(KEY);
    // Resolved not found: compensate.
    let h = auto(scripted(vec![
        ("confirm_room", Op::Action, 1, Fault::Reject),
        ("confirm_room", Op::Reconcile, 1, Fault::LostRequest),
    ]));
    assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
    assert_eq!(
        ops(&h, "confirm_room"),
        [Op::Action, Op::Reconcile, Op::Reconcile, Op::Reconcile]
    );
    assert_eq!(h.summary(KEY).steps[3].reconciles, 2);
    let delays = h.scheduled_delays();
    assert_eq!(
        delays,
        [
            config.late_window_ms,
            // failures = 1 send + 1 reconcile
            config.backoff_ms(&saga, 3, crate::saga::BackoffKind::Forward, 2)
        ]
    );
    let reconciles = call_times(&h, "confirm_room", Op::Reconcile);
    assert_eq!(reconciles[1], reconciles[0] + h.latency_ms + delays[1]);
    let first_undo = h
        .timed_calls(KEY)
        .into_iter()
        .find(|(_, c)| c.op == Op::Compensate)
        .map(|(at_ms, _)| at_ms)
        .unwrap();
    assert!(first_undo > reconciles[1]);

    // Resolved found: a copy landed while the fence backed off.
    let mut h = harness(
        CaptureMode::Automatic,
        true,
        config.clone(),
        scripted(vec![
            ("confirm_room", Op::Action, 1, Fault::Reject),
            ("confirm_room", Op::Reconcile, 1, Fault::Transient),
        ]),
    );
    h.start(input(KEY));
    while ops(&h, "confirm_room").len() < 2 || h.has_pending_persist() {
        assert!(h.step());
    }
    assert!(h.step(), "the fence's first reconcile is answered 429");
    while h.has_pending_persist() {
        assert!(h.step());
    }
    h.world.land_refused_copy(&saga, 3, "confirm_room");
    h.run(EVENTS_MAX);
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    assert_eq!(
        ops(&h, "confirm_room"),
        [Op::Action, Op::Reconcile, Op::Reconcile]
    );
    assert!(h.calls.iter().all(|c| c.op != Op::Compensate));
    h.assert_consistent();
    assert_log_discipline(&h.log);
}

#[test]
fn fence_that_never_learns_anything_needs_an_operator_and_undoes_nothing() {
    let config = small_budgets();
    let h = auto(scripted(
        std::iter::once(("confirm_room", Op::Action, 1, Fault::Reject))
            .chain((1..=20).map(|i| ("confirm_room", Op::Reconcile, i, Fault::LostRequest)))
            .collect(),
    ));
    let status = h.status(KEY);
    assert_eq!(
        status,
        SagaStatus::NeedsOperator {
            reason: format!(
                "outcome of `confirm_room` still unknown after {} reconciles; \
                 last: reconcile failed: search timed out",
                config.reconcile_attempts_max
            )
        }
    );
    // Whether the room is booked is unknown: nothing before it is undone.
    assert!(h.calls.iter().all(|c| c.op != Op::Compensate));
    assert_eq!(
        ops(&h, "confirm_room").len(),
        1 + config.reconcile_attempts_max as usize
    );
}

/// The fence has a reconcile budget of its own: a pivot that used up its
/// reconciles on an earlier ambiguous attempt is still checked once more
/// after it is refused, and the saga compensates cleanly.
#[test]
fn fence_reconciles_even_after_the_pivot_used_up_its_reconciles() {
    let config = small_budgets();
    let budget = config.reconcile_attempts_max;
    let mut rules = vec![("confirm_room", Op::Action, 1, Fault::LostRequest)];
    // Every reconcile but the last of the budget fails; the last finds
    // nothing, so the confirm is sent again — and refused.
    rules.extend((1..budget).map(|i| ("confirm_room", Op::Reconcile, i, Fault::LostRequest)));
    rules.push(("confirm_room", Op::Action, 2, Fault::Reject));
    let h = auto(scripted(rules));
    let status = h.status(KEY);
    assert_eq!(
        status,
        SagaStatus::Compensated {
            reason: "`confirm_room` rejected: scripted rejection; \
                     no late copy landed within the late window"
                .into()
        }
    );
    let s = &h.summary(KEY).steps[3];
    assert_eq!((s.attempts, s.reconciles), (2, budget + 1));
    let mut want = vec![Op::Action];
    want.extend(vec![Op::Reconcile; budget as usize]);
    want.extend([Op::Action, Op::Reconcile, Op::Reconcile]);
    assert_eq!(ops(&h, "confirm_room"), want);
}

#[test]
fn unless_applied_sweeps_a_refused_step_but_not_one_applied_on_its_first_send() {
    use crate::saga::{SagaDefinition, StepDef, SweepPolicy};
    // Compensatable `a` then `b` before the pivot, each under one policy.
    let def = |a: SweepPolicy, b: SweepPolicy| {
        SagaDefinition::new(
            "policies",
            vec![
                StepDef::compensatable("a").with_sweep(a),
                StepDef::compensatable("b").with_sweep(b),
                StepDef::pivot("p"),
            ],
        )
        .unwrap()
    };
    let trace = |def: SagaDefinition, refused: &'static str| {
        let world = FakeWorld::new(vec![Semantics::Replay; 3]);
        let mut h = Harness::new(
            def,
            small_budgets(),
            world,
            always(refused, Op::Action, Fault::Reject),
        );
        h.start(input(KEY));
        h.run(EVENTS_MAX);
        assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
        h.assert_consistent();
        h.call_trace(KEY)
    };
    use SweepPolicy::{UnlessApplied, WhenAmbiguous};
    let (a, b) = ("a".to_string(), "b".to_string());
    // `b` refused: swept under UnlessApplied, not under WhenAmbiguous. `a`,
    // applied on its first clean send (then compensated), is not swept
    // under either.
    assert_eq!(
        trace(def(UnlessApplied, UnlessApplied), "b"),
        [
            (a.clone(), Op::Action),
            (b.clone(), Op::Action),
            (a.clone(), Op::Compensate),
            (b.clone(), Op::Reconcile)
        ]
    );
    assert_eq!(
        trace(def(UnlessApplied, WhenAmbiguous), "b"),
        [
            (a.clone(), Op::Action),
            (b.clone(), Op::Action),
            (a.clone(), Op::Compensate)
        ]
    );
    // On the happy path nothing under UnlessApplied is swept.
    let world = FakeWorld::new(vec![Semantics::Replay; 3]);
    let mut h = Harness::new(
        def(UnlessApplied, UnlessApplied),
        small_budgets(),
        world,
        healthy(),
    );
    h.start(input(KEY));
    h.run(EVENTS_MAX);
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    assert!(h.calls.iter().all(|c| c.op == Op::Action));
}

/// Why `UnlessApplied`: a copy of the refused charge takes effect after the
/// saga gave the step up (Stripe does not store a 429 under the key). The
/// sweep finds and refunds it.
#[test]
fn a_refused_charge_that_takes_effect_later_is_refunded_by_the_sweep() {
    let mut h = harness(
        CaptureMode::Automatic,
        true,
        small_budgets(),
        always("charge", Op::Action, Fault::Reject),
    );
    h.start(input(KEY));
    while !h
        .log
        .iter()
        .any(|r| matches!(r, LogRecord::CompensationStarted { .. }))
    {
        assert!(h.step());
    }
    let saga = SagaId::for_business_key(KEY);
    let charge = h.world.land_refused_copy(&saga, 1, "charge");
    h.run(EVENTS_MAX);
    assert!(matches!(h.status(KEY), SagaStatus::Compensated { .. }));
    assert_eq!(
        ops(&h, "charge"),
        [Op::Action, Op::Reconcile, Op::Compensate, Op::Reconcile]
    );
    let refund = h
        .calls
        .iter()
        .find(|c| c.op == Op::Compensate && c.step_name == "charge");
    assert_eq!(refund.unwrap().target_ref.as_ref(), Some(&charge));
    assert!(h.world.live(&saga, 1).is_empty());
    h.assert_consistent();
    assert_log_discipline(&h.log);
}

/// A client may send its effectful request late in its call (the
/// Salesforce glue logs in first; a lost login reply costs it a timeout):
/// the late window counts from the call's return, not its start
/// (regression `pms-without-idempotency-7659`). The hold's call returns
/// `Unknown` 100 s after it began; the sweep must not look for a late hold
/// before a late window has passed since then.
#[test]
fn the_late_window_counts_from_the_action_calls_return() {
    let config = small_budgets();
    let mut core = Coordinator::new(
        saga_definition(CaptureMode::Automatic, true),
        config.clone(),
    )
    .unwrap();
    let returned_at = 100_000;
    let mut now = 0;
    let mut queue: Vec<Command> = core.on_event(now, Event::Start { input: input(KEY) });
    let mut reconciles_at = Vec::new();
    let mut actions = 0;
    for _ in 0..EVENTS_MAX {
        let Some(command) = (!queue.is_empty()).then(|| queue.remove(0)) else {
            break;
        };
        let event = match command {
            Command::Persist { token, .. } => Event::Persisted { token },
            Command::Schedule { timer_id, delay_ms } => {
                now += delay_ms;
                Event::Timer { timer_id }
            }
            Command::Call(call) => {
                let outcome = match call.op {
                    Op::Action => {
                        actions += 1;
                        now = returned_at;
                        Outcome::unknown("timeout")
                    }
                    Op::Reconcile => {
                        reconciles_at.push(now);
                        Outcome::NotFound
                    }
                    Op::Compensate => Outcome::NotFound,
                };
                Event::CallDone {
                    call_id: call.call_id,
                    outcome,
                }
            }
            Command::Notify { .. } => continue,
        };
        queue.extend(core.on_event(now, event));
    }
    assert_eq!(actions, 1, "the hold is sent once, then reconciled");
    // The first reconcile follows the `Unknown`; the second is the sweep's.
    let [_, at] = reconciles_at[..] else {
        panic!("reconciles at {reconciles_at:?}: one, then the sweep's")
    };
    assert!(
        at >= returned_at + config.late_window_ms,
        "the sweep looked at {at} ms, within the late window of the call's return at {returned_at} ms"
    );
    assert!(matches!(
        core.status(KEY),
        Some(SagaStatus::Compensated { .. })
    ));
}
