//! The order flow under sagasim: the careful coordinator holds every
//! invariant, sagasim's and ours; the hasty one is caught by a business
//! invariant (judged from Stripe, the PMS, Salesforce and the carrier, not
//! from any log), on a seed whose replay gives the same trace hash.

use std::path::Path;
use std::sync::Arc;

use order_flow::{ship_after_authorize, workload, Careful, Hasty};
use sagasim::harness::{run_checked_with, Checked};
use sagasim::scenario::Scenario;
use sagasim::trace::TraceMode;
use sagasim::world::run::{plan_for_with, user_services};
use sagasim::world::CoordinatorImpl;

/// Seeds per coordinator (a test budget; `SEEDS=n` for more).
fn seeds() -> u64 {
    std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

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
fn the_careful_coordinator_holds_every_invariant() {
    let s = scenario();
    let mut completed = 0;
    for seed in 0..seeds() {
        let c = run(&s, seed, Arc::new(Careful));
        assert!(
            c.verdict.ok(),
            "seed {seed}: {}",
            c.verdict.first().unwrap()
        );
        completed += c
            .outcome
            .agents
            .iter()
            .filter(|a| a.answer == Some(sagasim::saga::SagaStatus::Completed))
            .count();
    }
    // Three widgets for four orders: most seeds ship three.
    assert!(
        completed as u64 > seeds() * 2,
        "{completed} orders completed"
    );
}

#[test]
fn the_hasty_coordinator_is_caught_by_a_business_invariant() {
    let s = scenario();
    let caught = (0..seeds()).find_map(|seed| {
        let c = run(&s, seed, Arc::new(Hasty));
        let v = c.verdict.all().next().cloned();
        v.map(|v| (seed, v, c.trace.hash))
    });
    let (seed, violation, hash) = caught.expect("the hasty coordinator is caught");
    eprintln!("hasty: seed {seed}: {violation}");
    assert!(
        [
            "no-double-charge",
            "all-or-nothing",
            "no-orphan-hold",
            "caller-told-truth"
        ]
        .contains(&violation.invariant.as_str()),
        "a business invariant, not a log check: {violation}"
    );
    // The replay of that seed is the same run, bit for bit.
    assert_eq!(run(&s, seed, Arc::new(Hasty)).trace.hash, hash);
}
