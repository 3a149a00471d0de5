//! `sagasim fuzz [SCENARIO] --seeds N ...`: many seeds on many threads, a
//! summary (coverage, failing seeds with replay commands), optionally one
//! JSON line, a failures file and a markdown report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use super::args::{
    fuzz_config, load, parse_shard, replay_cmd, verdict_exit, write_atomic, BadInput, ScenarioArg,
    SeedRangeArg,
};
use crate::fuzz::{fuzz, FuzzConfig, FuzzSummary, SeedResult};
use crate::harness::fuzz_seed;
use crate::scenario::Scenario;

#[derive(Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    range: SeedRangeArg,
    /// Run only shard K of N, written K/N (1-based).
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Print one machine-readable summary line last.
    #[arg(long)]
    json: bool,
    /// Run every seed twice (fresh runtime each) and compare trace hashes.
    #[arg(long)]
    check_determinism: bool,
    /// Stop at the first failing seed.
    #[arg(long)]
    stop_on_failure: bool,
    /// Write one JSON line per failing seed to this file.
    #[arg(long, value_name = "FILE")]
    failures: Option<PathBuf>,
    /// Write a markdown summary (outcome histogram, coverage, seeds/s).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

pub fn exec(a: FuzzArgs) -> Result<ExitCode, BadInput> {
    let s = load(&a.scenario)?;
    let cfg = fuzz_config(&a.range, a.shard)?;
    let summary = run_fuzz(&s, &cfg, a.json, a.check_determinism, a.stop_on_failure);
    if let Some(path) = a.failures {
        let mut text = String::new();
        for f in &summary.failing {
            text.push_str(&serde_json::to_string(f).expect("serialises"));
            text.push('\n');
        }
        write_atomic(&path, &text)?;
    }
    if let Some(path) = a.report {
        write_atomic(&path, &fuzz_report(&a.scenario, &summary))?;
        if !a.json {
            println!("wrote {}", path.display());
        }
    }
    print_summary(&a.scenario, &summary, a.json);
    Ok(verdict_exit(summary.failures == 0))
}

fn run_fuzz(
    s: &Scenario,
    cfg: &FuzzConfig,
    json: bool,
    check_determinism: bool,
    stop_on_failure: bool,
) -> FuzzSummary {
    let total = cfg.seed_list().len() as u64;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  eta {eta}",
            )
            .expect("template"),
        );
        b
    });
    let stop = AtomicBool::new(false);
    let summary = fuzz(
        &s.name,
        cfg,
        |seed| {
            if stop.load(Ordering::Relaxed) {
                return SeedResult {
                    seed,
                    trace_hash: 0,
                    failure: None,
                    skipped: true,
                    coverage: Default::default(),
                };
            }
            let mut r = fuzz_seed(s, seed);
            if check_determinism && r.failure.is_none() {
                let again = std::thread::scope(|sc| sc.spawn(|| fuzz_seed(s, seed)).join())
                    .expect("determinism re-run");
                if again.trace_hash != r.trace_hash {
                    r.failure = Some(format!(
                        "determinism: trace hash {:016x} on a used thread, {:016x} on a fresh one",
                        r.trace_hash, again.trace_hash
                    ));
                }
            }
            if r.failure.is_some() && stop_on_failure {
                stop.store(true, Ordering::Relaxed);
            }
            r
        },
        |done, failures| {
            if let Some(b) = &bar {
                b.set_position(done);
                b.set_message(format!("{failures} failing"));
            }
        },
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    summary
}

fn print_summary(arg: &ScenarioArg, summary: &FuzzSummary, json: bool) {
    for f in summary.failing.iter().take(20) {
        println!(
            "seed {}: {}\n  replay: {}",
            f.seed,
            f.failure.as_deref().unwrap_or(""),
            replay_cmd(arg, f.seed)
        );
    }
    if summary.failing.len() > 20 {
        println!("… and {} more failing seeds", summary.failing.len() - 20);
    }
    if !json {
        println!("coverage (seeds that hit each path):");
        for point in crate::check::coverage::POINTS {
            let hits = summary.coverage.get(*point).copied().unwrap_or(0);
            println!(
                "  {hits:>8}  {point}{}",
                if hits == 0 { "   <- never hit" } else { "" }
            );
        }
    }
    println!(
        "{}: {} seeds, {} failures, {:.1} s, {:.0} seeds/s",
        summary.scenario, summary.seeds, summary.failures, summary.elapsed_s, summary.seeds_per_s
    );
    if json {
        println!("{}", summary.json_line());
    }
}

/// The markdown summary of a fuzz run (`fuzz --report FILE`).
fn fuzz_report(arg: &ScenarioArg, s: &FuzzSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "# sagasim fuzz: {}\n", s.scenario);
    let _ = writeln!(
        out,
        "{} seeds, {} failing, {:.1} s, {:.0} seeds/s.\n",
        s.seeds, s.failures, s.elapsed_s, s.seeds_per_s
    );
    let _ = writeln!(out, "## Outcomes\n\n| outcome | seeds |\n|---|--:|");
    let _ = writeln!(out, "| every invariant held | {} |", s.seeds - s.failures);
    let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
    for f in &s.failing {
        let inv = f
            .failure
            .as_deref()
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or("?");
        *by.entry(inv).or_insert(0) += 1;
    }
    for (inv, n) in &by {
        let _ = writeln!(out, "| `{inv}` violated | {n} |");
    }
    let _ = writeln!(
        out,
        "\n## Coverage (seeds that reached each path)\n\n| path | seeds |\n|---|--:|"
    );
    for point in crate::check::coverage::POINTS {
        let hits = s.coverage.get(*point).copied().unwrap_or(0);
        let _ = writeln!(out, "| {point} | {hits} |");
    }
    if !s.failing.is_empty() {
        let _ = writeln!(out, "\n## Failing seeds (first 50)\n");
        for f in s.failing.iter().take(50) {
            let _ = writeln!(
                out,
                "- seed {}: {} — `{}`",
                f.seed,
                f.failure.as_deref().unwrap_or(""),
                replay_cmd(arg, f.seed)
            );
        }
    }
    out
}
