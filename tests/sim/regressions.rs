//! Every committed regression (`tests/regressions/*.json`) runs forever
//! after: a scenario + seed + minimized plan that once broke an invariant.

use std::path::Path;

use sagasim::check::regression::Regression;
use sagasim::harness::{reference, run_checked};
use sagasim::scenario::{default_dir, Scenario};
use sagasim::trace::TraceMode;

#[test]
fn every_regression_plan_now_holds_every_invariant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression files in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for f in &files {
        let r = Regression::load(f).unwrap();
        assert!(!r.note.trim().is_empty(), "{}: note is empty", f.display());
        let s = Scenario::load(&r.scenario, &default_dir()).unwrap();
        // The coordinator the file names (the reference if it names none).
        let imp = match r.coordinator.as_deref() {
            None => reference(),
            Some(name) => sagasim::harness::coordinator(name)
                .unwrap_or_else(|| panic!("{}: unknown coordinator {name}", f.display())),
        };
        let c = run_checked(&s, r.seed, &r.plan, TraceMode::HashOnly, imp);
        if let Some(v) = c.verdict.first() {
            failures.push(format!(
                "{} ({}): {v}\n  replay: cargo run --release -- replay --plan {}",
                f.display(),
                r.note,
                f.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
