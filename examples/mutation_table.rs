//! Prints the mutation suite's table (issue 8): per mutant, seeds to first
//! detection under swarm faults and under uniform faults (same seeds), the
//! invariant that caught it, and the size of its shrunk plan.
//!
//!     cargo run --release --example mutation_table [SEED_BUDGET]
//!
//! (Examples build with the dev-dependencies, so `mutants` is on here.)

use sagasim::harness::{reference, run_checked_mutant, shrink_to};
use sagasim::saga::mutants::{self, Mutant};
use sagasim::scenario::{default_dir, Scenario};
use sagasim::sim::FaultPlan;
use sagasim::trace::TraceMode;
use sagasim::world::run::topology;

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
    let topo = topology(&s);
    let swarm = |seed| FaultPlan::swarm(seed, &s.faults, &topo, s.phases.safety_ms);
    let uniform = |seed| FaultPlan::uniform(seed, &s.faults, &topo, s.phases.safety_ms);
    println!("| mutant | seeds to detection (swarm) | seeds to detection (uniform) | caught by | shrunk plan (faults) |");
    println!("|---|---|---|---|---|");
    for m in Mutant::ALL {
        let sw = first_catch(&s, m, budget, &swarm);
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
}
