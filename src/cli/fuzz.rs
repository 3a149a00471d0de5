//! `sagasim fuzz [SCENARIO] --seeds N ...`: many seeds on many threads, a
//! summary (coverage, failing seeds with replay commands), optionally one
//! JSON line, a failures file and a markdown report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use super::args::{
    fuzz_config, handle_of_seed, load, parse_shard, replay_cmd, write_atomic, BadInput,
    CoordinatorArg, ScenarioArg, SeedRangeArg,
};
use crate::check::coverage;
use crate::fuzz::{fuzz, FuzzConfig, FuzzSummary, SeedResult};
use crate::scenario::Scenario;
use crate::trace::TraceMode;
use crate::world::CoordinatorImpl;
use std::sync::Arc;

#[derive(Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    coordinator: CoordinatorArg,
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
    stop_on_signal();
    let imp = a.coordinator.resolve()?;
    let (mut summary, twice) = run_fuzz(
        &s,
        &imp,
        &cfg,
        a.json,
        a.check_determinism,
        a.stop_on_failure,
    );
    summary.scenario_path = a.scenario.scenario.clone();
    summary.coordinator = imp.name().to_string();
    let workload = super::registry::get().workload_for(&s);
    let catalogue = coverage::catalogue(&workload, imp.uses_saga_log());
    summary.with_catalogue(
        &catalogue,
        coverage::unreachable(&s, &workload),
        coverage::rare(&s, &workload),
    );
    for f in &mut summary.failing {
        f.replay = replay_cmd(&a.scenario, &a.coordinator, f.seed);
        f.handle = Some(handle_of_seed(&a.scenario, &a.coordinator, &s, f.seed));
    }
    // Files first, then the terminal: a bad path loses nothing, the
    // summary and failures are printed whatever happened to the files.
    let mut written = Vec::new();
    let mut errors = Vec::new();
    if let Some(path) = &a.failures {
        let mut text = String::new();
        for f in &summary.failing {
            text.push_str(&serde_json::to_string(f).expect("serialises"));
            text.push('\n');
        }
        match write_atomic(path, &text) {
            Ok(()) => written.push(path),
            Err(BadInput(e)) => errors.push(format!("--failures {e}")),
        }
    }
    if let Some(path) = &a.report {
        match write_atomic(path, &fuzz_report(&summary, &catalogue)) {
            Ok(()) => written.push(path),
            Err(BadInput(e)) => errors.push(format!("--report {e}")),
        }
    }
    let determinism = a.check_determinism.then_some(twice);
    print_summary(&summary, &catalogue, a.json, &written, determinism);
    for e in &errors {
        errln!("error: {e} (the run's summary is above)");
    }
    Ok(if !errors.is_empty() {
        ExitCode::from(2)
    } else if summary.failures > 0 {
        ExitCode::from(1)
    } else if summary.interrupted {
        ExitCode::from(INTERRUPTED_EXIT)
    } else {
        ExitCode::SUCCESS
    })
}

/// Exit code of a run stopped by Ctrl-C / SIGTERM that found no failure
/// (128 + SIGINT, as shells report it): not a pass, the run is incomplete.
const INTERRUPTED_EXIT: u8 = 130;

/// Ctrl-C or SIGTERM (a CI job cancelled, a pod evicted): stop handing out
/// seeds, finish the ones in progress, print what was found. A second
/// signal kills the process as usual.
fn stop_on_signal() {
    extern "C" fn on_signal(signal: libc::c_int) {
        crate::fuzz::interrupt();
        // SAFETY: signal() is async-signal-safe; SIG_DFL is a valid handler.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    // SAFETY: the handler only stores an atomic and resets itself, both
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

fn run_fuzz(
    s: &Scenario,
    imp: &Arc<dyn CoordinatorImpl>,
    cfg: &FuzzConfig,
    json: bool,
    check_determinism: bool,
    stop_on_failure: bool,
) -> (FuzzSummary, u64) {
    // Seeds run a second time by --check-determinism.
    let twice = std::sync::atomic::AtomicU64::new(0);
    let total = cfg.seed_list().len() as u64;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds  {rate}  {msg}  eta {eta}",
            )
            .expect("template")
            .with_key("rate", whole_rate),
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
            let mut r = one_seed(s, seed, imp.clone());
            if check_determinism && r.failure.is_none() {
                twice.fetch_add(1, Ordering::Relaxed);
                let again =
                    std::thread::scope(|sc| sc.spawn(|| one_seed(s, seed, imp.clone())).join())
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
    (summary, twice.into_inner())
}

/// Fuzz one seed with the registry's workload and invariants.
fn one_seed(s: &Scenario, seed: u64, imp: Arc<dyn CoordinatorImpl>) -> SeedResult {
    let c = super::registry::get().run_seed(s, seed, TraceMode::HashOnly, imp);
    crate::harness::seed_result(seed, &c)
}

/// Terminal colours (SGR codes) for the summary.
#[derive(Clone, Copy)]
pub(crate) enum Colour {
    /// Failures.
    Red,
    /// All good.
    Green,
    /// Worth a look (a coverage point never hit).
    Yellow,
    /// Commands to copy.
    Cyan,
    /// Secondary text.
    Dim,
}

/// Whether stdout gets colour: it is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>). Piped or redirected output never.
pub(crate) fn colour_on() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        colour_decision(std::io::stdout().is_terminal(), no_color)
    })
}

/// Colour only on a terminal and without `NO_COLOR`.
fn colour_decision(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

/// `text` in `colour` when [`colour_on`], else as is.
pub(crate) fn paint(colour: Colour, text: &str) -> String {
    paint_if(colour_on(), colour, text)
}

fn paint_if(on: bool, colour: Colour, text: &str) -> String {
    if !on {
        return text.to_string();
    }
    let code = match colour {
        Colour::Red => "31",
        Colour::Green => "32",
        Colour::Yellow => "33",
        Colour::Cyan => "36",
        Colour::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The first 20 failing seeds with their replay commands, and how many more.
pub fn print_failures(summary: &FuzzSummary) {
    for f in summary.failing.iter().take(20) {
        outln!(
            "{} {}\n  replay: {}",
            paint(Colour::Red, &format!("seed {}:", f.seed)),
            f.message,
            paint(Colour::Cyan, &f.replay)
        );
    }
    if summary.failures > 20 {
        outln!(
            "{}",
            paint(
                Colour::Dim,
                &format!("… and {} more failing seeds", summary.failures - 20)
            )
        );
    }
}

/// Seeds per second as a whole number (`2,417 seeds/s`), not indicatif's
/// four decimals.
pub fn whole_rate(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{} seeds/s", thousands(state.per_sec().round() as u64));
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `determinism`: how many seeds were run twice, when `--check-determinism`.
fn print_summary(
    summary: &FuzzSummary,
    catalogue: &[String],
    json: bool,
    written: &[&PathBuf],
    determinism: Option<u64>,
) {
    if !json {
        for line in coverage_lines(summary, catalogue) {
            outln!("{line}");
        }
    }
    if summary.interrupted {
        outln!(
            "interrupted: {} of {} seeds ran (the summary covers those)",
            summary.seeds,
            FuzzConfig {
                start: summary.start,
                seeds: summary.range_seeds,
                jobs: 1,
                shard: summary.shard.map(|s| (s.index, s.count)),
            }
            .seed_list()
            .len()
        );
    }
    for path in written {
        outln!("wrote {}", path.display());
    }
    if let Some(twice) = determinism {
        let mismatched = summary
            .failing
            .iter()
            .filter(|f| f.message.starts_with("determinism:"))
            .count();
        // Failing seeds are not run again: their failure is the news.
        let not_twice = summary.seeds.saturating_sub(twice);
        outln!(
            "determinism: {twice} seed{} run twice (again on a fresh thread{}); {}",
            if twice == 1 { "" } else { "s" },
            if not_twice > 0 {
                format!(", not the {not_twice} failing")
            } else {
                String::new()
            },
            match mismatched {
                0 => paint(Colour::Green, "every trace hash matched"),
                n => paint(
                    Colour::Red,
                    &format!("{n} trace hash(es) differed (listed below)"),
                ),
            }
        );
    }
    // Failures last, so that they do not scroll away above the coverage.
    print_failures(summary);
    let failures = format!("{} failures", summary.failures);
    outln!(
        "{}: {} seeds, {}, {:.1} s, {} seeds/s",
        summary.scenario,
        summary.seeds,
        if summary.failures == 0 {
            paint(Colour::Green, &failures)
        } else {
            paint(Colour::Red, &failures)
        },
        summary.elapsed_s,
        thousands(summary.seeds_per_s.round() as u64)
    );
    if json {
        outln!("{}", summary.json_line());
    }
}

/// The coverage part of the terminal summary: the count of entries and how
/// many were hit, then the entries never hit that are not declared
/// unreachable, the declared ones by reason, anything hit outside the
/// catalogue, and a compact hit summary (the named points one by one, the
/// generated entries by group).
fn coverage_lines(summary: &FuzzSummary, catalogue: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let seeds = |e: &str| summary.coverage.get(e).copied().unwrap_or(0);
    let hit = catalogue.iter().filter(|e| seeds(e) > 0).count();
    let unreachable = &summary.unreachable;
    let rare = &summary.rare;
    let missed: Vec<&String> = catalogue
        .iter()
        .filter(|e| seeds(e) == 0 && !unreachable.contains_key(*e) && !rare.contains_key(*e))
        .collect();
    out.push(format!(
        "coverage: {} entries, {hit}/{} hit, {} declared unreachable, {} rare ({} of them hit), {}",
        catalogue.len(),
        catalogue.len(),
        unreachable.len(),
        rare.len(),
        rare.keys().filter(|e| seeds(e) > 0).count(),
        if missed.is_empty() {
            paint(Colour::Green, "every other entry hit")
        } else {
            paint(Colour::Yellow, &format!("{} never hit", missed.len()))
        }
    ));
    if !missed.is_empty() {
        out.push("never hit:".to_string());
        for e in &missed {
            out.push(format!("  {}", paint(Colour::Yellow, e)));
        }
    }
    let stale: Vec<&String> = unreachable.keys().filter(|e| seeds(e) > 0).collect();
    if !stale.is_empty() {
        out.push(format!(
            "{} (hit, yet declared unreachable):",
            paint(Colour::Yellow, "stale declarations")
        ));
        for e in stale {
            out.push(format!("  {e}"));
        }
    }
    if !unreachable.is_empty() {
        let mut by_reason: std::collections::BTreeMap<&str, usize> = Default::default();
        for why in unreachable.values() {
            *by_reason.entry(why).or_insert(0) += 1;
        }
        out.push("declared unreachable, by reason:".to_string());
        for (why, n) in by_reason {
            out.push(format!("  {n:>4}  {}", paint(Colour::Dim, why)));
        }
    }
    let outside = coverage::Coverage(summary.coverage.clone());
    let outside = outside.outside(catalogue);
    if !outside.is_empty() {
        out.push(format!(
            "hit outside the catalogue ({}; unlabelled calls, or a class a model does not declare):",
            outside.len()
        ));
        for e in outside.iter().take(20) {
            out.push(format!("  {:>8}  {e}", seeds(e)));
        }
        if outside.len() > 20 {
            out.push(format!("  … and {} more", outside.len() - 20));
        }
    }
    out.push("coverage (seeds that hit each path):".to_string());
    for point in coverage::POINTS {
        let hits = seeds(point);
        out.push(format!(
            "  {hits:>8}  {point}{}",
            if hits == 0 {
                paint(Colour::Yellow, "   <- never hit")
            } else {
                String::new()
            }
        ));
    }
    let mut groups: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for e in catalogue.iter().skip(coverage::POINTS.len()) {
        let g = groups.entry(coverage::group_of(e)).or_insert((0, 0));
        g.1 += 1;
        if seeds(e) > 0 {
            g.0 += 1;
        }
    }
    if !groups.is_empty() {
        out.push("generated entries hit, by group:".to_string());
        for (g, (h, n)) in groups {
            out.push(format!("  {h:>4}/{n:<4} {g}"));
        }
    }
    out
}

/// The markdown summary of a fuzz run (`fuzz --report FILE`).
fn fuzz_report(s: &FuzzSummary, catalogue: &[String]) -> String {
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
    if s.failing.len() as u64 != s.failures {
        let _ = writeln!(
            out,
            "\n(only the lowest {} failing seeds are kept; {} failed)\n",
            s.failing.len(),
            s.failures
        );
    }
    let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
    for f in &s.failing {
        *by.entry(&f.invariant).or_insert(0) += 1;
    }
    for (inv, n) in &by {
        let _ = writeln!(out, "| `{inv}` violated | {n} |");
    }
    let _ = writeln!(
        out,
        "\n## Coverage (seeds that reached each path)\n\n{} entries, {} hit, {} declared \
         unreachable.\n\n| path | seeds | |\n|---|--:|---|",
        catalogue.len(),
        catalogue
            .iter()
            .filter(|e| s.coverage.get(*e).copied().unwrap_or(0) > 0)
            .count(),
        s.unreachable.len()
    );
    for entry in catalogue {
        let hits = s.coverage.get(entry).copied().unwrap_or(0);
        let note = match s.unreachable.get(entry) {
            Some(why) => format!("unreachable: {why}"),
            None => match s.rare.get(entry) {
                Some(why) => format!("rare: {why}"),
                None if hits == 0 => "**never hit**".to_string(),
                None => String::new(),
            },
        };
        let _ = writeln!(out, "| {} | {hits} | {} |", md_cell(entry), md_cell(&note));
    }
    if !s.failing.is_empty() {
        let _ = writeln!(out, "\n## Failing seeds (first 50)\n");
        for f in s.failing.iter().take(50) {
            let _ = writeln!(out, "- seed {}: {} — `{}`", f.seed, f.message, f.replay);
        }
    }
    out
}

/// `text` safe in a markdown table cell.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_decision(true, false));
        assert!(!colour_decision(true, true), "NO_COLOR wins");
        assert!(!colour_decision(false, false), "piped: plain");
        assert_eq!(paint_if(false, Colour::Red, "x"), "x");
        assert_eq!(paint_if(true, Colour::Red, "x"), "\x1b[31mx\x1b[0m");
        assert_eq!(thousands(2_417), "2,417");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
