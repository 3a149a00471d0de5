//! The order flow under sagasim: the careful coordinator holds every
//! invariant, sagasim's and ours; the hasty one is caught by a business
//! invariant (judged from Stripe, the PMS, Salesforce and the carrier, not
//! from any log), on a seed whose replay gives the same trace hash.

use std::path::Path;
use std::sync::Arc;

use order_flow::{ship_after_authorize, workload, Careful, Hasty};
use sagasim::harness::{run_checked_with, shrink_to_with, Checked};
use sagasim::scenario::Scenario;
use sagasim::testing::FuzzTest;
use sagasim::trace::TraceMode;
use sagasim::world::run::{plan_for_with, user_services};
use sagasim::world::CoordinatorImpl;

fn scenario() -> Scenario {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    Scenario::load(dir.join("order-flow.toml").to_str().unwrap(), &dir).expect("scenario")
}

fn run(s: &Scenario, seed: u64, imp: Arc<dyn CoordinatorImpl>) -> Checked {
    let w = workload();
    let plan = plan_for_with(s, &user_services(&w), seed);
    run_checked_with(
        s,
        &w,
        &[ship_after_authorize()],
        seed,
        &plan,
        TraceMode::HashOnly,
        imp,
    )
}

#[test]
fn the_hasty_coordinator_is_caught_by_a_business_invariant() {
    let failure = FuzzTest::new(scenario(), workload(), Arc::new(Hasty))
        .invariant(ship_after_authorize())
        .seeds(300)
        .without_writing_regressions()
        .check()
        .expect_err("the hasty coordinator is caught");
    eprintln!("{failure}");
    let v = &failure.violation;
    assert!(
        [
            "no-double-charge",
            "all-or-nothing",
            "no-orphan-hold",
            "caller-told-truth"
        ]
        .contains(&v.invariant.as_str()),
        "a business invariant, not a log check: {v}"
    );
    assert!(failure.shrunk.is_some(), "the plan was shrunk");
    assert!(failure
        .to_string()
        .contains(&format!("SAGASIM_SEED={} cargo test", failure.seed)));
    // The replay of that seed is the same run, bit for bit.
    let s = scenario();
    let first = run(&s, failure.seed, Arc::new(Hasty));
    assert_eq!(
        run(&s, failure.seed, Arc::new(Hasty)).trace.hash,
        first.trace.hash
    );
    assert!(first.verdict.all().any(|x| x.invariant == v.invariant));
}

/// The user's own invariant is judged, and shrunk, like sagasim's: a
/// carrier that ships without waiting for anything (its step moved before
/// the authorization) breaks `ship-after-authorize`, and the failing plan
/// shrinks to the faults that still break it.
#[test]
fn the_users_invariant_is_reported_and_shrunk_like_the_built_in_ones() {
    let s = scenario();
    let w = workload();
    // The bug: authorize only after shipping (the pivot).
    let mut steps = w.steps().to_vec();
    let mut authorize = steps.remove(1);
    authorize.kind = sagasim::saga::StepKind::Retriable;
    steps.insert(3, authorize);
    let early = sagasim::workload::Workload::new("ship_early", steps, Arc::new(order_flow::input))
        .and_then(|w| {
            w.with_service(order_flow::CARRIER, || {
                Box::<order_flow::Carrier>::default()
            })
        })
        .map(Arc::new)
        .expect("valid");
    let extra = user_services(&early);
    let invariants = [ship_after_authorize()];
    let seed = 3;
    let plan = plan_for_with(&s, &extra, seed);
    let c = run_checked_with(
        &s,
        &early,
        &invariants,
        seed,
        &plan,
        TraceMode::HashOnly,
        Arc::new(Careful),
    );
    assert!(
        c.verdict
            .all()
            .any(|v| v.invariant == "ship-after-authorize"),
        "{:?}",
        c.verdict
    );
    let (small, invariant, _runs) = shrink_to_with(
        &s,
        &early,
        &invariants,
        seed,
        &plan,
        Arc::new(Careful),
        "ship-after-authorize",
    )
    .expect("still fails");
    assert_eq!(invariant, "ship-after-authorize");
    assert!(small.len() <= plan.len());
    // It needs no fault at all: shipping first is the bug.
    assert_eq!(small.len(), 0, "{small}");
}
