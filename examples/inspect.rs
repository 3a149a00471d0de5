//! Developer scratch tool: print the trace of a seed, or shrink it.
use sagasim::harness::{reference, run_checked, shrink_failure};
use sagasim::trace::TraceMode;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args[1].parse().unwrap();
    let name = args.get(2).cloned().unwrap_or("hotel-checkout".into());
    let s = sagasim::scenario::Scenario::load(&name, &sagasim::scenario::default_dir()).unwrap();
    let plan = sagasim::checkout::run::plan_for(&s, seed);
    if args.iter().any(|a| a == "--shrink") {
        let (small, inv, runs) = shrink_failure(&s, seed, &plan, reference()).expect("fails");
        println!(
            "{inv} after {runs} runs: {}",
            serde_json::to_string_pretty(&small).unwrap()
        );
        return;
    }
    let c = run_checked(&s, seed, &plan, TraceMode::Full, reference());
    print!("{}", c.trace.render());
    println!("{:#?}", c.verdict);
}
