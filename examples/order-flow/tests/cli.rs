//! This crate's own CLI (`src/main.rs`, `sagasim::cli::main_with`): fuzz
//! its coordinators, replay a failure with the command it printed, shrink
//! it into a regression file that `cargo test` then replays first.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use order_flow::{ship_after_authorize, workload, Hasty};
use sagasim::scenario::Scenario;
use sagasim::serde_json;
use sagasim::testing::FuzzTest;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_order-flow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs")
}

fn last_json(o: &Output) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.trim_end().lines().last().expect("a line")).expect("JSON")
}

/// The hash a `run`/`replay` line reports.
fn trace_hash(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("trace hash"))
        .expect("hash line");
    let at = line.find("trace hash ").unwrap() + "trace hash ".len();
    line[at..at + 16].to_string()
}

#[test]
fn the_crates_cli_fuzzes_replays_and_shrinks_its_own_coordinator() {
    let scenario = "scenarios/order-flow.toml";
    let o = cli(&[
        "fuzz",
        scenario,
        "--coordinator",
        "hasty",
        "--seeds",
        "500",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let json = last_json(&o);
    assert_eq!(json["coordinator"], "hasty");
    let first = &json["failing"][0];
    // Each failure record carries the replay handle.
    let handle = &first["handle"];
    assert_eq!(handle["workload"], "order_flow");
    assert_eq!(handle["scenario"], "order-flow");
    assert_eq!(handle["scenario_path"], scenario);
    assert_eq!(handle["coordinator"], "hasty");
    assert_eq!(handle["seed"], first["seed"]);
    assert_eq!(handle["plan"], "seed");
    assert!(handle["sagasim_version"].is_string());
    let replay = first["replay"].as_str().unwrap();
    assert!(replay.contains("--coordinator hasty"), "{replay}");
    // The printed command, as printed (minus `cargo run --release --`).
    let args: Vec<&str> = replay
        .strip_prefix("cargo run --release -- ")
        .unwrap()
        .split(' ')
        .collect();
    let replayed = cli(&args);
    assert_eq!(replayed.status.code(), Some(1));
    assert_eq!(trace_hash(&replayed), first["trace_hash"].as_str().unwrap());

    // Shrink it into a regressions directory ...
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("order-flow-regressions");
    let _ = std::fs::remove_dir_all(&dir);
    let seed = first["seed"].as_u64().unwrap().to_string();
    let shrunk = cli(&[
        "shrink",
        scenario,
        "--coordinator",
        "hasty",
        "--seed",
        &seed,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(shrunk.status.code(), Some(1), "{shrunk:?}");
    let file = dir.join(format!("order-flow-hasty-{seed}.json"));
    let shrink_out = String::from_utf8_lossy(&shrunk.stdout);
    assert!(file.is_file(), "{shrink_out}");
    // The replay command shrink printed works as printed.
    let printed = shrink_out
        .lines()
        .find_map(|l| l.strip_prefix("replay: cargo run --release -- "))
        .expect("shrink prints a replay command");
    let again = cli(&printed.split(' ').collect::<Vec<_>>());
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    // ... which the cargo test entry point replays before any new seed.
    let s = Scenario::load(
        scenario,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"),
    )
    .unwrap();
    let failure = FuzzTest::new(s, workload(), Arc::new(Hasty))
        .invariant(ship_after_authorize())
        .regressions(&dir)
        .without_writing_regressions()
        .check()
        .expect_err("the committed regression fails first");
    assert_eq!(failure.regression.as_deref(), Some(file.as_path()));

    // The careful coordinator is known to the CLI too, and holds.
    let ok = cli(&[
        "fuzz",
        scenario,
        "--coordinator",
        "careful",
        "--seeds",
        "100",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let unknown = cli(&["fuzz", scenario, "--coordinator", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("careful, hasty"));
}

/// `compare` runs this crate's workload with its coordinators, and judges
/// success against the declaration: without faults the careful coordinator
/// completes, verified, every order that could succeed.
#[test]
fn compare_accepts_the_crates_coordinators_and_judges_its_workload() {
    let o = cli(&[
        "compare",
        "scenarios/order-flow.toml",
        "--coordinators",
        "careful,hasty",
        "--seeds",
        "10",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let json = last_json(&o);
    let calm = &json["points"][0];
    assert_eq!(calm["intensity_permille"], 0);
    let careful = &calm["coordinators"][0];
    assert_eq!(careful["coordinator"], "careful");
    assert!(careful["could_succeed"].as_u64().unwrap() > 0);
    assert_eq!(careful["completed_verified"], careful["could_succeed"]);
    assert_eq!(
        careful["answers_contradicted"].as_u64(),
        Some(0),
        "{careful}"
    );
    assert_eq!(careful["runs_with_stale"].as_u64(), Some(0), "{careful}");
}
