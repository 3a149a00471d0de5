//! Every file in `scenarios/` loads and runs a few seeds with every
//! invariant holding, deterministically. Adding a scenario adds a case
//! here with no Rust code.

use sagasim::harness::fuzz_seed;
use sagasim::scenario::{default_dir, list, Scenario};

const SEEDS_EACH: u64 = 8;

#[test]
fn every_scenario_file_runs_clean_and_deterministic() {
    let dir = default_dir();
    let names = list(&dir);
    assert!(
        names.len() >= 7,
        "expected the seven scenarios, found {names:?}"
    );
    let mut failures = Vec::new();
    for name in &names {
        let s = Scenario::load(name, &dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&s.name, name, "a scenario's name matches its file name");
        for seed in 0..SEEDS_EACH {
            let r = fuzz_seed(&s, seed);
            if let Some(f) = &r.failure {
                failures.push(format!(
                    "{name} seed {seed}: {f}\n  replay: cargo run --release -- replay {name} --seed {seed}"
                ));
            }
            if seed == 0 {
                assert_eq!(
                    fuzz_seed(&s, 0).trace_hash,
                    r.trace_hash,
                    "{name}: same seed, same trace"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue 14: README's "Add a scenario" example is `tests/fixtures/
/// my-scenario.toml` word for word, and the reference coordinator passes it
/// with the core's default budgets (10,000 seeds were measured; a few
/// hundred run here).
#[test]
fn the_readme_example_scenario_passes_on_the_default_budgets() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let at = readme.find("**Add a scenario**").expect("README section");
    let body = &readme[at..];
    let start = body.find("```toml\n").expect("toml block") + "```toml\n".len();
    let end = start + body[start..].find("```").unwrap();
    let path = root.join("tests/fixtures/my-scenario.toml");
    assert_eq!(
        &body[start..end],
        std::fs::read_to_string(&path).unwrap(),
        "README's example and the fixture differ"
    );
    let s = Scenario::load(path.to_str().unwrap(), &default_dir()).unwrap();
    assert_eq!(s.coordinator, sagasim::saga::Config::default());
    for seed in 0..300 {
        let r = fuzz_seed(&s, seed);
        assert_eq!(r.failure, None, "seed {seed}");
    }
}
