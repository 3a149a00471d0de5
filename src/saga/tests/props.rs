//! Property: whatever the services answer and whenever the coordinator
//! crashes, every saga is finalized within a bounded number of events, no
//! call goes out without a durable intent, and a `Completed` / `Compensated`
//! status agrees with the services' ground truth.

use crate::workloads::hotel::{saga_definition, CaptureMode};
use proptest::prelude::*;

use super::harness::*;
use crate::saga::{Config, LogRecord};

/// Events one case may take; far above what the limits allow a few sagas.
const EVENTS_MAX: usize = 20_000;

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::Ok),
        1 => Just(Fault::Reject),
        2 => Just(Fault::Transient),
        2 => Just(Fault::LostReply),
        2 => Just(Fault::LostRequest),
        // Well inside the late window (30 s), leaving room for queueing.
        1 => (1u64..15_000).prop_map(Fault::Late),
        1 => Just(Fault::Duplicate),
        1 => Just(Fault::DuplicateLostReply),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_outcomes_and_crashes_always_finalize_consistently(
        manual in any::<bool>(),
        pms_idempotent in any::<bool>(),
        faults in prop::collection::vec(fault(), 0..80),
        crash_after_events in prop::collection::vec(1usize..200, 0..4),
        agents in 1usize..4,
        jitter_seed in any::<u64>(),
        limits in (1u32..7, 1u32..7, 1u32..7, 1u32..4),
        saga_deadline_ms in prop_oneof![Just(60_000u64), 100u64..10_000],
    ) {
        let (action_attempts_max, reconcile_attempts_max, compensation_attempts_max, sweep_rounds_max) = limits;
        let capture = if manual { CaptureMode::Manual } else { CaptureMode::Automatic };
        let def = saga_definition(capture, pms_idempotent);
        let world = FakeWorld::hotel(&def, pms_idempotent);
        let config = Config {
            jitter_seed,
            action_attempts_max,
            reconcile_attempts_max,
            compensation_attempts_max,
            sweep_rounds_max,
            saga_deadline_ms,
            ..small_budgets()
        };
        let mut h = Harness::new(def, config, world, sequence(faults));
        let keys: Vec<String> = (0..agents).map(|i| format!("res-{i}")).collect();
        for key in &keys {
            h.start(input(key));
        }
        // An impatient agent asks again.
        h.start(input(&keys[0]));
        let mut crashes: Vec<usize> = crash_after_events;
        crashes.sort_unstable();
        loop {
            if crashes.first().is_some_and(|at| h.events >= *at) {
                crashes.remove(0);
                h.crash_and_recover();
                for key in &keys {
                    h.start(input(key));
                }
                continue;
            }
            if !h.step() {
                break;
            }
            prop_assert!(h.events <= EVENTS_MAX, "no quiescence within {} events", EVENTS_MAX);
        }
        for key in &keys {
            prop_assert_eq!(h.coord.is_finalized(key), Some(true), "{}", key);
            let started = h
                .log
                .iter()
                .filter(|r| matches!(r, LogRecord::SagaStarted { saga, .. } if saga.business_key() == key))
                .count();
            prop_assert_eq!(started, 1, "{}", key);
        }
        prop_assert_eq!(h.coord.saga_count(), agents);
        h.assert_consistent();
        h.assert_notified();
        assert_log_discipline(&h.log);
    }
}
