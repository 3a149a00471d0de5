//! The mutation suite: deliberately broken coordinators must be caught, by
//! the invariant one would expect, within a seed budget — and the correct
//! coordinator passes the same seeds. A harness that catches none of these
//! would be a false all-clear.

use sagasim::harness::{reference, run_checked_mutant, shrink_to};
use sagasim::saga::mutants::{self, Mutant};
use sagasim::scenario::Scenario;
use sagasim::trace::TraceMode;
use sagasim::world::run::plan_for;

use crate::checkout::scenario;

/// Seeds a mutant may take to be caught (issue: ≤ 10,000).
const BUDGET: u64 = 2_000;

/// The first seed at which `mutant` breaks one of its expected invariants.
fn first_catch(s: &Scenario, mutant: Mutant) -> Option<(u64, String)> {
    (0..BUDGET).find_map(|seed| {
        let plan = plan_for(s, seed);
        let c = run_checked_mutant(s, seed, &plan, TraceMode::HashOnly, Some(mutant));
        let caught = c
            .verdict
            .all()
            .find(|v| mutant.expected().contains(&v.invariant.as_str()))
            .map(|v| (seed, v.to_string()));
        caught
    })
}

#[test]
fn every_mutant_is_caught_by_its_invariant_and_the_correct_coordinator_is_not() {
    let s = scenario("hotel-checkout");
    let mut report = Vec::new();
    let mut missed = Vec::new();
    let mut last_seed = 0;
    for mutant in Mutant::ALL {
        match first_catch(&s, mutant) {
            Some((seed, violation)) => {
                last_seed = last_seed.max(seed);
                report.push(format!("{mutant:?}: caught at seed {seed}: {violation}"));
            }
            None => missed.push(format!("{mutant:?} not caught in {BUDGET} seeds")),
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(missed.is_empty(), "{}", missed.join("\n"));
    // The correct coordinator passes every seed the mutants needed.
    for seed in 0..=last_seed {
        let plan = plan_for(&s, seed);
        let c = run_checked_mutant(&s, seed, &plan, TraceMode::HashOnly, None);
        assert!(
            c.verdict.ok(),
            "clean coordinator, seed {seed}: {:?}",
            c.verdict.first()
        );
    }
}

/// Issue 6: a broken coordinator is reported with the matching invariant,
/// its plan shrinks to at most 3 faults, and the shrunk plan still fails on
/// replay (and only because of the bug).
#[test]
fn a_retry_without_idempotency_key_shrinks_to_a_few_faults_and_replays() {
    let s = scenario("hotel-checkout");
    let mutant = Mutant::RetryChargeWithoutKey;
    let (seed, violation) = first_catch(&s, mutant).expect("caught");
    assert!(violation.starts_with("no-double-charge"), "{violation}");
    let plan = plan_for(&s, seed);
    let (small, invariant, runs) = mutants::with(Some(mutant), || {
        shrink_to(&s, seed, &plan, reference(), "no-double-charge").expect("fails")
    });
    assert_eq!(invariant, "no-double-charge");
    eprintln!(
        "seed {seed}: {invariant}, {} faults shrunk to {} in {runs} runs: {small}",
        plan.len(),
        small.len()
    );
    assert!(
        small.len() <= 3,
        "shrunk plan has {} faults: {small}",
        small.len()
    );
    let replay = run_checked_mutant(&s, seed, &small, TraceMode::HashOnly, Some(mutant));
    assert!(
        replay.verdict.all().any(|v| v.invariant == invariant),
        "the shrunk plan still fails: {:?}",
        replay.verdict
    );
    let again = run_checked_mutant(&s, seed, &small, TraceMode::HashOnly, Some(mutant));
    assert_eq!(replay.trace.hash, again.trace.hash, "replays bit for bit");
    let clean = run_checked_mutant(&s, seed, &small, TraceMode::HashOnly, None);
    assert!(
        clean.verdict.ok(),
        "the correct coordinator survives the same plan"
    );
}
