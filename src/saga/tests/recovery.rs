//! Crash recovery: a log cut at every record boundary, in-flight actions
//! reconciled first, idempotent start after a restart.

use crate::workloads::hotel::{saga_definition, CaptureMode};
use std::collections::BTreeSet;

use super::harness::*;
use crate::saga::{
    Command, Coordinator, Decision, Event, LogRecord, Op, Outcome, SagaDefinition, SagaId,
    SagaStatus,
};

const KEY: &str = "res-1";
const EVENTS_MAX: usize = 5_000;

struct Scenario {
    name: &'static str,
    capture: CaptureMode,
    pms_idempotent: bool,
    script: fn() -> Script,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "success, PMS without client refs (hold swept)",
            capture: CaptureMode::Automatic,
            pms_idempotent: false,
            script: healthy,
        },
        Scenario {
            name: "success, manual capture",
            capture: CaptureMode::Manual,
            pms_idempotent: true,
            script: healthy,
        },
        Scenario {
            name: "compensated at the pivot",
            capture: CaptureMode::Automatic,
            pms_idempotent: true,
            script: || always("confirm_room", Op::Action, Fault::Reject),
        },
        Scenario {
            name: "ambiguous: lost reply, late upsert, duplicate hold, then compensated",
            capture: CaptureMode::Automatic,
            pms_idempotent: false,
            script: || {
                scripted(vec![
                    ("hold_room", Op::Action, 1, Fault::Duplicate),
                    ("charge", Op::Action, 1, Fault::LostReply),
                    ("crm_record", Op::Action, 1, Fault::Late(2_000)),
                    ("confirm_room", Op::Action, 1, Fault::Reject),
                ])
            },
        },
        Scenario {
            name: "pivot refused 429 on every attempt, fenced, then compensated",
            capture: CaptureMode::Automatic,
            pms_idempotent: true,
            script: || always("confirm_room", Op::Action, Fault::Transient),
        },
        Scenario {
            name: "late pivot copy found by the fence, then forward",
            capture: CaptureMode::Manual,
            pms_idempotent: true,
            script: || {
                scripted(vec![
                    ("confirm_room", Op::Action, 1, Fault::Late(2_000)),
                    ("confirm_room", Op::Action, 2, Fault::Reject),
                ])
            },
        },
    ]
}

fn harness_for(s: &Scenario) -> Harness {
    let def = saga_definition(s.capture, s.pms_idempotent);
    let world = FakeWorld::hotel(&def, s.pms_idempotent);
    Harness::new(def, small_budgets(), world, (s.script)())
}

/// Action intents without a result: requests that may be in flight.
fn in_flight_actions(log: &[LogRecord]) -> BTreeSet<(SagaId, usize)> {
    let mut in_flight = BTreeSet::new();
    for record in log {
        match record {
            LogRecord::Intent {
                saga,
                step,
                op: Op::Action,
                ..
            } => {
                in_flight.insert((saga.clone(), *step));
            }
            LogRecord::Result {
                saga,
                step,
                op: Op::Action,
                ..
            } => {
                in_flight.remove(&(saga.clone(), *step));
            }
            _ => {}
        }
    }
    in_flight
}

/// Crash variants at one cut of the log.
#[derive(Clone, Copy, Debug)]
enum CrashAt {
    /// The batch reaching the cut is being written: records past the cut are
    /// torn off, the coordinator never got the acknowledgement.
    TornWrite,
    /// The batch ending exactly at the cut was acknowledged, the call it
    /// announced reached the service and was applied, the reply died with
    /// the node.
    AfterEffect,
}

/// Runs `s` until the log holds `cut` records and crashes as `how`;
/// `None` if that crash point does not exist.
fn crash_at(s: &Scenario, cut: usize, how: CrashAt) -> Option<Harness> {
    let mut h = harness_for(s);
    h.start(input(KEY));
    while h.log.len() < cut {
        if h.has_pending_persist() {
            let token = h.append_next_persist().expect("pending");
            if h.log.len() >= cut {
                match how {
                    CrashAt::TornWrite => {
                        h.log.truncate(cut);
                        return Some(h);
                    }
                    CrashAt::AfterEffect if h.log.len() == cut => {
                        h.feed(Event::Persisted { token });
                        h.set_script(healthy());
                        h.deliver_next_call()?;
                        return Some(h);
                    }
                    CrashAt::AfterEffect => return None,
                }
            }
            h.feed(Event::Persisted { token });
        } else {
            assert!(h.step(), "the reference run reaches {cut} records");
        }
    }
    match how {
        CrashAt::TornWrite => Some(h),
        CrashAt::AfterEffect => None,
    }
}

#[test]
fn recovery_from_every_cut_of_the_log_reaches_a_consistent_end() {
    let mut runs = 0;
    for s in scenarios() {
        let mut reference = harness_for(&s);
        reference.start(input(KEY));
        reference.run(EVENTS_MAX);
        assert!(reference.coord.all_finalized(), "{}", s.name);
        let records = reference.log.len();
        for cut in 0..=records {
            for how in [CrashAt::TornWrite, CrashAt::AfterEffect] {
                let Some(mut h) = crash_at(&s, cut, how) else {
                    continue;
                };
                runs += 1;
                let context = format!("{}: cut {cut} of {records}, {how:?}", s.name);
                let in_flight = in_flight_actions(&h.log);
                let calls_before = h.calls.len();
                h.set_script(healthy());
                h.crash_and_recover();
                // The agent, whose call died with the node, retries.
                h.start(input(KEY));
                h.run(EVENTS_MAX);
                assert_eq!(h.coord.is_finalized(KEY), Some(true), "{context}");
                assert!(h.status(KEY).is_decided(), "{context}");
                h.assert_consistent();
                h.assert_notified();
                assert_log_discipline(&h.log);
                let started = h
                    .log
                    .iter()
                    .filter(|r| matches!(r, LogRecord::SagaStarted { .. }))
                    .count();
                assert_eq!(started, 1, "{context}");
                // An action that may be in flight is reconciled before it is
                // sent again.
                for (saga, step) in in_flight {
                    let first = h.calls[calls_before..]
                        .iter()
                        .find(|c| c.saga == saga && c.step == step && c.op != Op::Compensate);
                    if let Some(call) = first {
                        assert_eq!(call.op, Op::Reconcile, "{context}: step {step}");
                    }
                }
            }
        }
    }
    assert!(runs > 100, "{runs} crash runs");
}

fn def() -> SagaDefinition {
    saga_definition(CaptureMode::Automatic, true)
}

fn started(key: &str) -> LogRecord {
    LogRecord::SagaStarted {
        saga: SagaId::for_business_key(key),
        input: input(key),
        at_ms: 0,
    }
}

fn intent(key: &str, step: usize, name: &str, op: Op, attempt: u32) -> LogRecord {
    let saga = SagaId::for_business_key(key);
    let idem = match op {
        Op::Compensate => crate::saga::undo_key(&saga, name, None),
        _ => crate::saga::action_key(&saga, name),
    };
    LogRecord::Intent {
        saga,
        step,
        op,
        key: idem,
        attempt,
        target_ref: None,
        at_ms: 0,
    }
}

fn result(key: &str, step: usize, op: Op, outcome: Outcome) -> LogRecord {
    LogRecord::Result {
        saga: SagaId::for_business_key(key),
        step,
        op,
        target_ref: None,
        outcome,
        at_ms: 0,
    }
}

fn calls(commands: &[Command]) -> Vec<(String, usize, Op)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Call(call) => Some((call.saga.to_string(), call.step, call.op)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_action_in_flight_is_reconciled_first() {
    let log = vec![
        started("a"),
        intent("a", 0, "hold_room", Op::Action, 1),
        result("a", 0, Op::Action, Outcome::applied("h1")),
        intent("a", 1, "charge", Op::Action, 1),
    ];
    let (c, commands) = Coordinator::recover(def(), small_budgets(), 50, &log).unwrap();
    assert_eq!(calls(&commands), [("saga-a".to_string(), 1, Op::Reconcile)]);
    let Command::Call(call) = &commands[0] else {
        panic!("{commands:?}")
    };
    assert_eq!(call.key, "saga-a/charge");
    assert_eq!(call.refs["hold_room"], "h1");
    let summary = c.summary("a").unwrap();
    assert!(summary.steps[1].ambiguous);
}

#[test]
fn records_of_sagas_that_never_started_are_ignored() {
    let log = vec![
        intent("ghost", 0, "hold_room", Op::Action, 1),
        result("ghost", 0, Op::Action, Outcome::applied("h1")),
    ];
    let (c, commands) = Coordinator::recover(def(), small_budgets(), 0, &log).unwrap();
    assert!(commands.is_empty());
    assert_eq!(c.saga_count(), 0);
    assert!(c.status("ghost").is_none());
}

#[test]
fn a_finalized_saga_stays_quiet_and_start_attaches_to_it() {
    let log = vec![
        started("a"),
        LogRecord::Decision {
            saga: SagaId::for_business_key("a"),
            decision: Decision::Completed,
            at_ms: 0,
        },
        LogRecord::Finalized {
            saga: SagaId::for_business_key("a"),
            status: Decision::Completed,
            at_ms: 0,
        },
        // Ignored: nothing follows Finalized.
        intent("a", 0, "hold_room", Op::Action, 1),
    ];
    let (mut c, commands) = Coordinator::recover(def(), small_budgets(), 0, &log).unwrap();
    assert!(commands.is_empty());
    assert_eq!(c.is_finalized("a"), Some(true));
    let reply = c.on_event(1, Event::Start { input: input("a") });
    assert_eq!(
        reply,
        vec![Command::Notify {
            business_key: "a".into(),
            status: SagaStatus::Completed
        }]
    );
    assert!(c.all_finalized());
}

#[test]
fn a_compensation_in_flight_is_sent_again_with_the_same_key() {
    let log = vec![
        started("a"),
        intent("a", 0, "hold_room", Op::Action, 1),
        result("a", 0, Op::Action, Outcome::applied("h1")),
        intent("a", 1, "charge", Op::Action, 1),
        result("a", 1, Op::Action, Outcome::rejected("card_declined")),
        LogRecord::CompensationStarted {
            saga: SagaId::for_business_key("a"),
            reason: "`charge` rejected: card_declined".into(),
            at_ms: 0,
        },
        intent("a", 0, "hold_room", Op::Compensate, 1),
    ];
    let (_, commands) = Coordinator::recover(def(), small_budgets(), 0, &log).unwrap();
    let Command::Persist { records, .. } = &commands[0] else {
        panic!("{commands:?}")
    };
    assert!(
        matches!(&records[0], LogRecord::Intent { op: Op::Compensate, attempt: 2, key, target_ref, .. }
        if key == "saga-a/hold_room/undo" && target_ref.as_deref() == Some("h1"))
    );
    assert_eq!(commands.len(), 1, "the call waits for the intent");
}

#[test]
fn recovery_continues_a_failed_step_that_did_not_yet_turn_backward() {
    // Crash after the rejection was logged, before CompensationStarted.
    let log = vec![
        started("a"),
        intent("a", 0, "hold_room", Op::Action, 1),
        result("a", 0, Op::Action, Outcome::applied("h1")),
        intent("a", 1, "charge", Op::Action, 1),
        result("a", 1, Op::Action, Outcome::rejected("card_declined")),
    ];
    let (c, commands) = Coordinator::recover(def(), small_budgets(), 0, &log).unwrap();
    let Command::Persist { records, .. } = &commands[0] else {
        panic!("{commands:?}")
    };
    assert!(
        matches!(&records[0], LogRecord::CompensationStarted { reason, .. } if reason.contains("card_declined"))
    );
    assert!(matches!(
        &records[1],
        LogRecord::Intent {
            op: Op::Compensate,
            ..
        }
    ));
    assert!(matches!(c.status("a"), Some(SagaStatus::Running { .. })));
}

#[test]
fn a_sweeping_saga_restarts_its_round_after_a_crash() {
    let def = saga_definition(CaptureMode::Automatic, false);
    let world = FakeWorld::hotel(&def, false);
    let mut h = Harness::new(
        def,
        small_budgets(),
        world,
        scripted(vec![("hold_room", Op::Action, 1, Fault::Duplicate)]),
    );
    h.start(input(KEY));
    // Run until the sweep's first compensation intent is durable.
    while !h.log.iter().any(|r| {
        matches!(
            r,
            LogRecord::Intent {
                op: Op::Compensate,
                ..
            }
        )
    }) {
        assert!(h.step());
    }
    h.crash_and_recover();
    h.run(EVENTS_MAX);
    assert_eq!(h.status(KEY), SagaStatus::Completed);
    h.assert_consistent();
    assert_log_discipline(&h.log);
    assert_eq!(h.world.live(&SagaId::for_business_key(KEY), 0).len(), 1);
}

#[test]
fn recovery_with_many_sagas_resumes_each() {
    let def = saga_definition(CaptureMode::Manual, true);
    let world = FakeWorld::hotel(&def, true);
    let mut h = Harness::new(
        def,
        small_budgets(),
        world,
        always("capture", Op::Action, Fault::LostReply),
    );
    for i in 0..5 {
        h.start(input(&format!("res-{i}")));
    }
    for _ in 0..40 {
        assert!(h.step());
    }
    h.crash_and_recover();
    for i in 0..5 {
        h.start(input(&format!("res-{i}")));
    }
    h.run(EVENTS_MAX);
    assert!(h.coord.all_finalized());
    assert_eq!(h.coord.saga_count(), 5);
    h.assert_consistent();
    h.assert_notified();
    assert_log_discipline(&h.log);
}

/// The pivot fence across a crash. The refused confirm is step 3.
mod fence {
    use super::*;

    const PIVOT: usize = 3;

    fn checkout(rules: Vec<(&'static str, Op, u32, Fault)>) -> Harness {
        let def = saga_definition(CaptureMode::Automatic, true);
        let world = FakeWorld::hotel(&def, true);
        let mut h = Harness::new(def, small_budgets(), world, scripted(rules));
        h.start(input(KEY));
        h
    }

    fn pivot_results(h: &Harness, op: Op) -> Vec<&Outcome> {
        h.log
            .iter()
            .filter_map(|r| match r {
                LogRecord::Result {
                    step: PIVOT,
                    op: o,
                    outcome,
                    ..
                } if *o == op => Some(outcome),
                _ => None,
            })
            .collect()
    }

    /// Steps until `done` holds and nothing is left to persist.
    fn run_until(h: &mut Harness, done: impl Fn(&Harness) -> bool) {
        while !done(h) || h.has_pending_persist() {
            assert!(h.step(), "the run gets there");
        }
    }

    /// (instant, step name, op) of the calls issued from `from` on.
    fn calls_from(h: &Harness, from: usize) -> Vec<(u64, String, Op)> {
        h.call_at_ms[from..]
            .iter()
            .zip(&h.calls[from..])
            .map(|(at_ms, c)| (*at_ms, c.step_name.clone(), c.op))
            .collect()
    }

    fn last_pivot_send_ms(h: &Harness) -> u64 {
        h.call_at_ms
            .iter()
            .zip(&h.calls)
            .filter(|(_, c)| c.step == PIVOT && c.op == Op::Action)
            .map(|(at_ms, _)| *at_ms)
            .next_back()
            .expect("the pivot was sent")
    }

    fn finish(h: &mut Harness) {
        h.run(EVENTS_MAX);
        assert_eq!(h.coord.is_finalized(KEY), Some(true));
        h.assert_consistent();
        h.assert_notified();
        assert_log_discipline(&h.log);
    }

    const REASON: &str =
        "`confirm_room` rejected: scripted rejection; no late copy landed within the late window";

    #[test]
    fn a_crash_while_the_fence_waits_puts_it_up_again() {
        let mut h = checkout(vec![("confirm_room", Op::Action, 1, Fault::Reject)]);
        run_until(&mut h, |h| !pivot_results(h, Op::Action).is_empty());
        let sent_ms = last_pivot_send_ms(&h);
        let from = h.calls.len();
        // The node comes back 5 s later, well inside the late window.
        h.now_ms += 5_000;
        h.crash_and_recover();
        finish(&mut h);
        let after = calls_from(&h, from);
        let (fence_at, name, op) = after[0].clone();
        assert_eq!((name.as_str(), op), ("confirm_room", Op::Reconcile));
        assert!(fence_at >= sent_ms + h.config.late_window_ms, "{after:?}");
        let names: Vec<(&str, Op)> = after.iter().map(|(_, n, op)| (n.as_str(), *op)).collect();
        assert_eq!(
            names,
            [
                ("confirm_room", Op::Reconcile),
                ("crm_record", Op::Compensate),
                ("charge", Op::Compensate),
                ("hold_room", Op::Compensate),
                ("confirm_room", Op::Reconcile)
            ]
        );
        assert_eq!(
            h.status(KEY),
            SagaStatus::Compensated {
                reason: REASON.into()
            }
        );
    }

    #[test]
    fn a_crash_with_the_fence_reconcile_in_flight_reconciles_again() {
        let mut h = checkout(vec![("confirm_room", Op::Action, 1, Fault::Reject)]);
        run_until(&mut h, |h| {
            h.calls
                .iter()
                .any(|c| c.step == PIVOT && c.op == Op::Reconcile)
        });
        let sent_ms = last_pivot_send_ms(&h);
        let from = h.calls.len();
        // The reconcile dies with the node, unanswered.
        h.crash_and_recover();
        finish(&mut h);
        let after = calls_from(&h, from);
        let (fence_at, name, op) = after[0].clone();
        assert_eq!((name.as_str(), op), ("confirm_room", Op::Reconcile));
        assert!(fence_at >= sent_ms + h.config.late_window_ms);
        assert!(after
            .iter()
            .all(|(_, n, op)| !(n == "confirm_room" && *op == Op::Action)));
        assert_eq!(
            h.status(KEY),
            SagaStatus::Compensated {
                reason: REASON.into()
            }
        );
    }

    /// The fence's `NotFound` is durable but the `CompensationStarted`
    /// written with it is torn off: the log shows the fence held, so the
    /// recovered saga compensates — it neither re-sends the refused pivot
    /// nor loses the reason.
    #[test]
    fn a_torn_write_after_the_fence_held_compensates_without_resending_the_pivot() {
        let mut h = checkout(vec![("confirm_room", Op::Action, 1, Fault::Reject)]);
        run_until(&mut h, |h| {
            h.calls
                .iter()
                .any(|c| c.step == PIVOT && c.op == Op::Reconcile)
        });
        assert!(h.step(), "the fence's reconcile is answered");
        assert!(h.has_pending_persist());
        let before = h.log.len();
        h.append_next_persist()
            .expect("the batch with the fence's result");
        assert!(matches!(
            &h.log[before],
            LogRecord::Result {
                step: PIVOT,
                op: Op::Reconcile,
                outcome: Outcome::NotFound,
                ..
            }
        ));
        assert!(matches!(
            &h.log[before + 1],
            LogRecord::CompensationStarted { .. }
        ));
        h.log.truncate(before + 1);
        let from = h.calls.len();
        h.crash_and_recover();
        finish(&mut h);
        let names: Vec<(String, Op)> = calls_from(&h, from)
            .into_iter()
            .map(|(_, n, op)| (n, op))
            .collect();
        assert_eq!(names[0], ("crm_record".to_string(), Op::Compensate));
        assert!(
            !names.contains(&("confirm_room".to_string(), Op::Action)),
            "{names:?}"
        );
        assert_eq!(h.summary(KEY).steps[PIVOT].attempts, 1);
        assert_eq!(
            h.status(KEY),
            SagaStatus::Compensated {
                reason: REASON.into()
            }
        );
    }

    /// The pivot used up its reconciles before it was refused; the fence's
    /// first reconcile fails and is durable when the node crashes. The
    /// recovered fence still has its own budget left.
    #[test]
    fn a_recovered_fence_keeps_its_own_reconcile_budget() {
        let budget = small_budgets().reconcile_attempts_max;
        let mut rules = vec![("confirm_room", Op::Action, 1, Fault::LostRequest)];
        rules.extend((1..budget).map(|i| ("confirm_room", Op::Reconcile, i, Fault::LostRequest)));
        rules.push(("confirm_room", Op::Action, 2, Fault::Reject));
        rules.push((
            "confirm_room",
            Op::Reconcile,
            budget + 1,
            Fault::LostRequest,
        ));
        let mut h = checkout(rules);
        run_until(&mut h, |h| {
            pivot_results(h, Op::Reconcile).len() == budget as usize + 1
        });
        assert!(matches!(
            pivot_results(&h, Op::Reconcile).last(),
            Some(Outcome::Unknown { .. })
        ));
        h.set_script(healthy());
        h.crash_and_recover();
        finish(&mut h);
        assert_eq!(
            h.status(KEY),
            SagaStatus::Compensated {
                reason: REASON.into()
            }
        );
        let s = &h.summary(KEY).steps[PIVOT];
        assert_eq!((s.attempts, s.reconciles), (2, budget + 2));
    }
}

/// A key the service poisoned is never sent again, live or after a crash:
/// recovery rebuilds the key generation from the log's intents and
/// results, so the next charge attempt carries `#2` after `#1` was
/// poisoned too, and its intent is persisted before the call.
#[test]
fn recovery_keeps_the_fresh_key_generation_of_a_poisoned_key() {
    let def = saga_definition(CaptureMode::Automatic, true);
    let saga = SagaId::for_business_key(KEY);
    let charge = def.steps().iter().position(|s| s.name == "charge").unwrap();
    let hold = def
        .steps()
        .iter()
        .position(|s| s.name == "hold_room")
        .unwrap();
    let intent = |step: usize, key: &str, attempt: u32| LogRecord::Intent {
        saga: saga.clone(),
        step,
        op: Op::Action,
        key: key.into(),
        attempt,
        target_ref: None,
        at_ms: 1,
    };
    let result = |step: usize, op: Op, outcome: Outcome| LogRecord::Result {
        saga: saga.clone(),
        step,
        op,
        target_ref: None,
        outcome,
        at_ms: 2,
    };
    let base = format!("{}/charge", saga.as_str());
    let records = vec![
        LogRecord::SagaStarted {
            saga: saga.clone(),
            input: input(KEY),
            at_ms: 0,
        },
        intent(hold, &format!("{}/hold_room", saga.as_str()), 1),
        result(hold, Op::Action, Outcome::applied("hold-1")),
        intent(charge, &base, 1),
        result(charge, Op::Action, Outcome::key_poisoned("500 replayed")),
        result(charge, Op::Reconcile, Outcome::NotFound),
        intent(charge, &format!("{base}#1"), 2),
        result(charge, Op::Action, Outcome::key_poisoned("500 replayed")),
    ];
    let (mut c, cmds) = Coordinator::recover(def, small_budgets(), 10, &records).unwrap();
    // First a reconcile (the poisoned attempt may have applied), by the base key.
    let call = cmds
        .iter()
        .find_map(|c| match c {
            Command::Call(call) => Some(call.clone()),
            _ => None,
        })
        .expect("a reconcile first");
    assert_eq!((call.op, call.key.as_str()), (Op::Reconcile, base.as_str()));
    let cmds = c.on_event(
        20,
        Event::CallDone {
            call_id: call.call_id,
            outcome: Outcome::NotFound,
        },
    );
    // Then the intent of generation 2, persisted before any call.
    let Some(Command::Persist { token, records }) = cmds.first() else {
        panic!("expected the intent persisted first: {cmds:?}");
    };
    assert!(
        records.iter().any(|r| matches!(
            r,
            LogRecord::Intent { op: Op::Action, key, attempt: 3, .. } if *key == format!("{base}#2")
        )),
        "{records:?}"
    );
    assert!(!cmds.iter().any(|c| matches!(c, Command::Call(_))));
    let cmds = c.on_event(30, Event::Persisted { token: *token });
    assert!(cmds.iter().any(
        |c| matches!(c, Command::Call(call) if call.op == Op::Action && call.key == format!("{base}#2"))
    ));
}

/// The log's times are wall-clock readings of the incarnation that wrote
/// them: after a restart on a clock stepped forward (regression
/// `coordinator-clock-jump-1038`), a request sent "long ago" by those times
/// may have left a moment before the crash. The sweep waits a whole late
/// window from the restart, whatever the log's times say.
#[test]
fn after_a_restart_the_sweep_waits_a_whole_late_window_again() {
    let saga = SagaId::for_business_key("a");
    let log = vec![
        started("a"),
        intent("a", 0, "hold_room", Op::Action, 1),
        result("a", 0, Op::Action, Outcome::applied("h1")),
        intent("a", 1, "charge", Op::Action, 1),
        result("a", 1, Op::Action, Outcome::rejected("402 card_declined")),
        LogRecord::CompensationStarted {
            saga: saga.clone(),
            reason: "declined".to_string(),
            at_ms: 0,
        },
        intent("a", 0, "hold_room", Op::Compensate, 1),
        result("a", 0, Op::Compensate, Outcome::applied("h1")),
        LogRecord::Decision {
            saga,
            decision: Decision::Compensated {
                reason: "declined".to_string(),
            },
            at_ms: 0,
        },
    ];
    let config = small_budgets();
    // Hours after every logged time, as the log's clock reads it.
    let now = 10 * 3_600_000;
    let (_, commands) = Coordinator::recover(def(), config.clone(), now, &log).unwrap();
    assert!(calls(&commands).is_empty(), "{commands:?}");
    let waits: Vec<u64> = commands
        .iter()
        .filter_map(|c| match c {
            Command::Schedule { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [config.late_window_ms], "{commands:?}");
}
