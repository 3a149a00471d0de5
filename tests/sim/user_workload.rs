//! A saga sagasim does not ship, declared from outside on the workload API
//! (issue 13): reserve stock (the PMS), authorize (Stripe), ship (a user
//! service of its own), capture (Stripe). The reference coordinator runs
//! it, the swarm faults the user service like the bundled ones, and the
//! black-box invariants judge its effects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use sagasim::harness::{reference, run_checked_with};
use sagasim::saga::SagaInput;
use sagasim::scenario::Scenario;
use sagasim::services::user::{UserEffect, UserService};
use sagasim::trace::TraceMode;
use sagasim::workload::{HoldSpec, Operation, Step, Workload};
use sagasim::world::run::{plan_for_with, user_services};

use crate::checkout::scenario;

/// A carrier: one shipment per request key (or, if `dedupe` is off, one per
/// request, as a carrier API without idempotency keys does).
struct Carrier {
    dedupe: bool,
    shipments: BTreeMap<String, UserEffect>,
}

impl UserService for Carrier {
    fn handle(&mut self, now_ms: u64, req: &Value) -> Value {
        let key = req["key"].as_str().unwrap_or_default().to_string();
        match req["op"].as_str() {
            Some("ship") => {
                let existing = self.shipments.values().find(|s| s.label == key && s.live);
                if let (true, Some(s)) = (self.dedupe, existing) {
                    return json!({"status": 200, "id": s.id});
                }
                let id = format!("shp-{}", self.shipments.len() + 1);
                let effect = UserEffect {
                    id: id.clone(),
                    label: key,
                    live: true,
                    created_ms: now_ms,
                };
                self.shipments.insert(id.clone(), effect);
                json!({"status": 201, "id": id})
            }
            Some("find") => {
                let found: Vec<&str> = self
                    .shipments
                    .values()
                    .filter(|s| s.label == key && s.live)
                    .map(|s| s.id.as_str())
                    .collect();
                json!({"status": 200, "found": found})
            }
            _ => json!({"status": 400, "error": "unknown op"}),
        }
    }

    fn effects(&self) -> Vec<UserEffect> {
        self.shipments.values().cloned().collect()
    }
}

fn order_flow(dedupe: bool) -> Arc<Workload> {
    let steps = vec![
        Step::compensatable("reserve_stock", Operation::PmsHold(HoldSpec::from_params())),
        Step::compensatable("authorize", Operation::StripeAuthorize),
        Step::pivot(
            "ship",
            Operation::Call {
                service: "carrier".into(),
                action: "ship".into(),
                undo: None,
            },
        ),
        Step::retriable(
            "confirm_stock",
            Operation::PmsConfirm {
                hold: "reserve_stock".into(),
            },
        ),
        Step::retriable(
            "capture",
            Operation::StripeCapture {
                authorization: "authorize".into(),
            },
        ),
    ];
    let input = Arc::new(|s: &Scenario, n: u32| {
        SagaInput::new(&format!("order-{n}"), &Scenario::customer(n), 4_200)
            .with_param("room_type", &s.workload.room_type)
            .with_param("first_night", 1)
            .with_param("nights", 1)
    });
    let w = Workload::new("order_flow", steps, input)
        .unwrap()
        .with_service("carrier", move || {
            Box::new(Carrier {
                dedupe,
                shipments: BTreeMap::new(),
            })
        })
        .unwrap();
    w.validate_services().unwrap();
    Arc::new(w)
}

#[test]
fn the_reference_coordinator_runs_a_user_workload_under_faults_on_the_user_service() {
    let s = scenario("hotel-checkout");
    let w = order_flow(true);
    let extra = user_services(&w);
    let mut faulted = 0;
    let mut completed = 0;
    for seed in 0..150 {
        let plan = plan_for_with(&s, &extra, seed);
        faulted += usize::from(format!("{plan}").contains("carrier"));
        let c = run_checked_with(&s, &w, &[], seed, &plan, TraceMode::HashOnly, reference());
        assert!(c.verdict.ok(), "seed {seed}: {:?}", c.verdict.first());
        completed += c
            .outcome
            .agents
            .iter()
            .filter(|a| a.answer == Some(sagasim::saga::SagaStatus::Completed))
            .count();
        assert_eq!(c.outcome.user.len(), 1);
    }
    assert!(faulted > 10, "the swarm faults the user service: {faulted}");
    assert!(completed > 100, "orders complete: {completed}");
}

#[test]
fn a_carrier_without_idempotency_is_caught_shipping_twice() {
    let s = scenario("hotel-checkout");
    let w = order_flow(false);
    let extra = user_services(&w);
    let caught = (0..500).find_map(|seed| {
        let plan = plan_for_with(&s, &extra, seed);
        let c = run_checked_with(&s, &w, &[], seed, &plan, TraceMode::HashOnly, reference());
        let found = c
            .verdict
            .all()
            .find(|v| v.invariant == "at-most-once" && v.facts.contains("carrier"))
            .map(|v| (seed, v.to_string()));
        found
    });
    let (seed, violation) = caught.expect("a duplicated or retried ship request ships twice");
    eprintln!("seed {seed}: {violation}");
}

/// The `cargo test` entry point writes the shrunk failure as a regression
/// file and, on the next run, replays it before any new seed.
#[test]
fn fuzz_test_persists_a_shrunk_failure_and_replays_it_first() {
    if std::env::var_os("SAGASIM_SEED").is_some() || std::env::var_os("SAGASIM_SEEDS").is_some() {
        return; // the seeds are the caller's choice then; this test needs its own
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-test-regressions");
    let _ = std::fs::remove_dir_all(&dir);
    let test = || {
        sagasim::testing::FuzzTest::new(scenario("hotel-checkout"), order_flow(false), reference())
            .seeds(500)
            .regressions(&dir)
    };
    let first = test()
        .check()
        .expect_err("a carrier without idempotency ships twice");
    assert_eq!(first.violation.invariant, "at-most-once");
    let written = first
        .regression
        .clone()
        .expect("a regression file was written");
    assert!(written.starts_with(&dir));
    let (small, of) = first.shrunk.expect("shrunk");
    assert!(small <= of);
    let saved = sagasim::check::regression::Regression::load(&written).unwrap();
    assert_eq!(saved.workload.as_deref(), Some("order_flow"));
    assert_eq!(saved.coordinator.as_deref(), Some("saga"));
    assert_eq!(saved.plan.len(), small);
    // The next run fails on the committed file first, before seed 0.
    let again = test().check().expect_err("still failing");
    assert_eq!(again.regression.as_ref(), Some(&written));
    assert_eq!(again.seed, first.seed);
    assert!(again.to_string().contains(&written.display().to_string()));
}

/// The committed regressions written before files named their workload
/// and coordinator are the bundled workload's and the reference's: a
/// `FuzzTest` of that pair replays them (and only those of its scenario).
#[test]
fn fuzz_test_replays_committed_regressions_that_name_no_workload() {
    let s = scenario("hotel-checkout");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let expected = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.ok()?.path()).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            let ours = v["scenario"] == "hotel-checkout"
                && v.get("workload")
                    .is_none_or(|w| w == "hotel_checkout_automatic")
                && v.get("coordinator").is_none_or(|c| c == "saga");
            ours.then_some(())
        })
        .count();
    assert!(
        expected >= 2,
        "the hotel-checkout regressions are committed"
    );
    let passed = sagasim::testing::FuzzTest::new(
        s.clone(),
        sagasim::workloads::for_scenario(&s),
        reference(),
    )
    .seeds(1)
    .regressions(&dir)
    .without_writing_regressions()
    .check()
    .expect("the reference holds on its regressions");
    assert_eq!(passed.regressions, expected);
}
