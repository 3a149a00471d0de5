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

/// Open bugs (`tests/open-bugs/*.json`): minimized plans that still break
/// the reference coordinator, kept until the fix. Each must still fail the
/// invariant it names — when one stops failing, it was fixed: move it to
/// `tests/regressions/`, where it must then hold forever.
#[test]
fn every_open_bug_still_reproduces() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/open-bugs");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in &files {
        let r = Regression::load(f).unwrap();
        let s = Scenario::load(&r.scenario, &default_dir()).unwrap();
        let c = run_checked(&s, r.seed, &r.plan, TraceMode::HashOnly, reference());
        assert!(
            c.verdict.all().any(|v| v.invariant == r.invariant),
            "{} no longer breaks `{}`: the bug is fixed; move it to tests/regressions/ ({})",
            f.display(),
            r.invariant,
            r.note
        );
    }
}
