//! Prints the mutation suite's table (issues 8 and 15): per mutant, seeds to
//! first detection on exactly what `sagasim fuzz` runs (the default
//! scenario's plans: each seed's workload draw, swarm faults and
//! environment events) and with uniform faults instead of swarm ones (same
//! seeds, same workloads and events), the invariant that caught it, the
//! size of its shrunk plan, and the median over the mutants.
//!
//!     cargo run --release --example mutation_table [SEED_BUDGET]
//!
//! (Examples build with the dev-dependencies, so `mutants` is on here.)

use sagasim::harness::{reference, run_checked_mutant, shrink_to};
use sagasim::saga::mutants::{self, Mutant};
use sagasim::scenario::{default_dir, Scenario};
use sagasim::sim::FaultPlan;
use sagasim::trace::TraceMode;
use sagasim::world::run::{plan_for, topology};

fn first_catch(
    s: &Scenario,
    m: Mutant,
    budget: u64,
    plan_of: &dyn Fn(u64) -> FaultPlan,
) -> Option<(u64, String)> {
    (0..budget).find_map(|seed| {
        let c = run_checked_mutant(s, seed, &plan_of(seed), TraceMode::HashOnly, Some(m));
        let hit = c
            .verdict
            .all()
            .find(|v| m.expected().contains(&v.invariant.as_str()))
            .map(|v| (seed, v.invariant.clone()));
        hit
    })
}

fn main() {
    let budget: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("budget is a number"))
        .unwrap_or(10_000);
    let s = Scenario::load("hotel-checkout", &default_dir()).expect("default scenario");
    // `fuzz`'s own plan of each seed.
    let swarm = |seed| plan_for(&s, seed);
    // The same workload and environment events, uniform faults.
    let uniform = |seed| {
        let fuzz = plan_for(&s, seed);
        let drawn = s.drawn(&fuzz);
        let mut p = FaultPlan::uniform(
            seed,
            &drawn.faults,
            &topology(&drawn),
            drawn.phases.safety_ms,
        );
        p.events = fuzz.events;
        p.workload = fuzz.workload;
        p
    };
    let mut found = Vec::new();
    println!("| mutant | seeds to detection (swarm) | seeds to detection (uniform) | caught by | shrunk plan (faults) |");
    println!("|---|---|---|---|---|");
    for m in Mutant::ALL {
        let sw = first_catch(&s, m, budget, &swarm);
        found.push(sw.as_ref().map_or(budget + 1, |(seed, _)| seed + 1));
        let un = first_catch(&s, m, budget, &uniform);
        let shown = |r: &Option<(u64, String)>| match r {
            Some((seed, _)) => format!("{}", seed + 1),
            None => format!("not in {budget}"),
        };
        let (inv, shrunk) = match &sw {
            Some((seed, inv)) => {
                let plan = swarm(*seed);
                let small =
                    mutants::with(Some(m), || shrink_to(&s, *seed, &plan, reference(), inv));
                (
                    inv.clone(),
                    small.map_or("-".into(), |(p, _, _)| p.len().to_string()),
                )
            }
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {m:?} | {} | {} | `{inv}` | {shrunk} |",
            shown(&sw),
            shown(&un)
        );
    }
    found.sort();
    let n = found.len();
    let median = if n % 2 == 1 {
        found[n / 2] as f64
    } else {
        (found[n / 2 - 1] + found[n / 2]) as f64 / 2.0
    };
    println!(
        "\n{n} mutants; median seeds to detection {median}, most {} (budget {budget})",
        found.last().copied().unwrap_or(0)
    );
}
