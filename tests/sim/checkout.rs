//! The hotel checkout end to end: named deterministic cases.

use std::sync::Arc;

use sagasim::check::check;
use sagasim::checkout::run::{plan_for, run, RunOutcome};
use sagasim::checkout::SagaCoordinator;
use sagasim::scenario::Scenario;
use sagasim::sim::FaultPlan;
use sagasim::trace::{Trace, TraceMode};

pub fn scenario(name: &str) -> Scenario {
    Scenario::load(name, &sagasim::scenario::default_dir()).unwrap()
}

pub fn run_plan(s: &Scenario, seed: u64, plan: &FaultPlan) -> (RunOutcome, Trace) {
    run(s, seed, plan, TraceMode::Full, Arc::new(SagaCoordinator))
}

#[test]
fn without_faults_every_checkout_ends_consistent() {
    let s = scenario("hotel-checkout");
    let (out, trace) = run_plan(&s, 1, &FaultPlan::default());
    let verdict = check(&s, &out);
    assert!(verdict.ok(), "{verdict:#?}\n{}", trace.render());
    assert!(out.phases.converged);
    let answered: Vec<_> = out.agents.iter().map(|a| a.answer.clone()).collect();
    eprintln!("{answered:?}");
    // Agent 4's card declines; the other three get the three rooms.
    assert_eq!(out.stripe.net_cents("cust-1"), 25_000);
    assert_eq!(out.stripe.net_cents("cust-4"), 0);
    assert_eq!(out.inventory.bookings.len(), 3);
}

#[test]
fn swarm_seeds_hold_every_invariant() {
    let s = scenario("hotel-checkout");
    let mut failures = Vec::new();
    for seed in 0..40 {
        let plan = plan_for(&s, seed);
        let (out, _) = run(&s, seed, &plan, TraceMode::HashOnly, Arc::new(SagaCoordinator));
        let v = check(&s, &out);
        if let Some(f) = v.first() {
            failures.push(format!("seed {seed}: {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
