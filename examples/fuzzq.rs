//! Developer scratch: fuzz N seeds of a scenario, print failures.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let name = args.get(2).cloned().unwrap_or("hotel-checkout".into());
    let s = sagasim::scenario::Scenario::load(&name, &sagasim::scenario::default_dir()).unwrap();
    let cfg = sagasim::fuzz::FuzzConfig {
        start: 0,
        seeds: n,
        jobs: 2,
        shard: None,
    };
    let sum = sagasim::fuzz::fuzz(
        &name,
        &cfg,
        |seed| sagasim::harness::fuzz_seed(&s, seed),
        |_, _| {},
    );
    let mut by: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for f in &sum.failing {
        let inv = f
            .failure
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .next()
            .unwrap_or("")
            .to_string();
        by.entry(inv).or_default().push(f.seed);
    }
    for (k, v) in &by {
        println!("{k}: {} e.g. {:?}", v.len(), &v[..v.len().min(8)]);
    }
    for f in sum.failing.iter().take(5) {
        println!("{}: {}", f.seed, f.failure.as_deref().unwrap_or(""));
    }
    println!(
        "{} seeds {} failures {:.1}s {:.0}/s",
        sum.seeds, sum.failures, sum.elapsed_s, sum.seeds_per_s
    );
}
