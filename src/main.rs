//! The `sagasim` command line.
//!
//! Exit codes: 0 every invariant held; 1 an invariant failed (the seed,
//! the invariant and a replay command are printed); 2 bad input (one clear
//! line: unknown scenario, malformed TOML or JSON, bad shard, seed range).
//! No panic on user input.
//!
//! `report [SCENARIO] --seed N [--plan FILE] [--out DIR]` writes
//! `DIR/<scenario>-<seed>.html` and `.md` (default `reports/`), with the
//! same exit codes: the report is written even when an invariant failed.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use sagasim::check::regression::Regression;
use sagasim::fuzz::{fuzz, FuzzConfig, FuzzSummary};
use sagasim::harness::{
    coordinator, fuzz_seed, known_coordinators, reference, run_checked, shrink_failure,
};
use sagasim::metrics::{compare, Comparison};
use sagasim::report::Report;
use sagasim::scenario::{self, Scenario, DEFAULT_SCENARIO};
use sagasim::sim::FaultPlan;
use sagasim::trace::TraceMode;
use sagasim::world::run::{plan_for, topology};
use sagasim::world::CoordinatorImpl;

#[derive(Parser)]
#[command(
    name = "sagasim",
    version,
    about = "Deterministic simulation and chaos testing for saga-based integrations",
    after_help = "Default scenario: hotel-checkout. Scenarios are TOML files in ./scenarios \
                  (or give a path ending in .toml)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ScenarioArg {
    /// Scenario name (a file in the scenarios directory) or path to a .toml.
    #[arg(default_value = DEFAULT_SCENARIO)]
    scenario: String,
    /// Where named scenarios live.
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed: verdict, trace hash, and the trace (`--quiet`: no trace).
    Run {
        #[command(flatten)]
        scenario: ScenarioArg,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print only the verdict.
        #[arg(long)]
        quiet: bool,
    },
    /// Run many seeds in parallel and summarise.
    Fuzz {
        #[command(flatten)]
        scenario: ScenarioArg,
        /// Number of seeds.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
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
    },
    /// Re-run a seed or a plan file bit-for-bit and print the full trace.
    Replay {
        #[command(flatten)]
        scenario: ScenarioArg,
        #[arg(long)]
        seed: Option<u64>,
        /// A regression file (scenario, seed and plan) or a bare fault plan.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
    },
    /// Shrink a failing seed's fault plan and save it as a regression.
    Shrink {
        #[command(flatten)]
        scenario: ScenarioArg,
        #[arg(long)]
        seed: u64,
        /// Directory for the regression file.
        #[arg(long, value_name = "DIR", default_value = "tests/regressions")]
        out: PathBuf,
        /// One line: what the bug is.
        #[arg(long, default_value = "found by sagasim fuzz")]
        note: String,
    },
    /// Measure seeds/s (1 thread and all), the empty-world baseline, the
    /// ratio, messages per seed, µs per message, sim s per wall s, peak RSS.
    Bench {
        #[command(flatten)]
        scenario: ScenarioArg,
        /// Seeds per measurement.
        #[arg(long, default_value_t = 2000)]
        seeds: u64,
        /// Worker threads for the all-cores figures (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Seeds of the long run that samples peak RSS.
        #[arg(long, default_value_t = 20_000)]
        rss_seeds: u64,
        /// Print the figures as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Write an HTML timeline report and a markdown summary of one run.
    Report {
        #[command(flatten)]
        scenario: ScenarioArg,
        #[arg(long)]
        seed: Option<u64>,
        /// A regression file (scenario, seed and plan) or a bare fault plan.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Directory for `<scenario>-<seed>.html` and `.md` (created if missing).
        #[arg(long, value_name = "DIR", default_value = "reports")]
        out: PathBuf,
    },
    /// Run the same seeds (the same fault plans) against several
    /// coordinators and print their business metrics side by side.
    /// Exit code 0 once the comparison ran (failing runs are its data).
    Compare {
        #[command(flatten)]
        scenario: ScenarioArg,
        /// Number of seeds.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Coordinators to compare, comma-separated, in column order.
        #[arg(long, default_value = "naive,saga", value_delimiter = ',')]
        coordinators: Vec<String>,
        /// Print one machine-readable line last.
        #[arg(long)]
        json: bool,
        /// Also write the table as a self-contained HTML page into DIR.
        #[arg(long, value_name = "DIR")]
        html: Option<PathBuf>,
    },
    /// Merge the JSON summary lines of sharded fuzz runs into one.
    Merge {
        /// Files holding `fuzz --json` output (the last JSON line counts).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the scenarios.
    Scenarios {
        #[arg(long, value_name = "DIR")]
        scenarios: Option<PathBuf>,
    },
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("shard `{s}` is not of the form K/N (e.g. 2/8)"))?;
    let k: u64 = k
        .trim()
        .parse()
        .map_err(|_| format!("shard index `{k}` is not a number"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("shard count `{n}` is not a number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("shard {k}/{n}: need 1 <= K <= N"));
    }
    Ok((k, n))
}

/// A user-facing failure: one line, exit code 2.
struct BadInput(String);

impl<E: std::fmt::Display> From<E> for BadInput {
    fn from(e: E) -> Self {
        BadInput(e.to_string())
    }
}

fn load(arg: &ScenarioArg) -> Result<Scenario, BadInput> {
    let dir = arg.scenarios.clone().unwrap_or_else(scenario::default_dir);
    Ok(Scenario::load(&arg.scenario, &dir)?)
}

/// mimalloc: a run allocates and frees many small objects (tasks, messages,
/// trace scratch); with glibc malloc this was a quarter of fuzzing time
/// (`perf`, see issue 8's note). Results do not depend on the allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One clear line (clap's first), not a page of usage.
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("bad usage").trim();
            eprintln!("{line} (see sagasim --help)");
            return ExitCode::from(2);
        }
    };
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(BadInput(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn verdict_exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn dispatch(command: Command) -> Result<ExitCode, BadInput> {
    match command {
        Command::Run {
            scenario,
            seed,
            quiet,
        } => {
            let s = load(&scenario)?;
            let plan = plan_for(&s, seed);
            Ok(verdict_exit(show_run(
                &s,
                seed,
                &plan,
                !quiet,
                &replay_cmd(&scenario, seed),
            )))
        }
        Command::Replay {
            scenario,
            seed,
            plan,
        } => {
            let (s, seed, plan, cmd) = seed_or_plan("replay", &scenario, seed, plan.as_deref())?;
            Ok(verdict_exit(show_run(&s, seed, &plan, true, &cmd)))
        }
        Command::Fuzz {
            scenario,
            seeds,
            start,
            jobs,
            shard,
            json,
            check_determinism,
            stop_on_failure,
            failures,
            report,
        } => {
            let s = load(&scenario)?;
            let cfg = fuzz_config(start, seeds, jobs, shard)?;
            let summary = run_fuzz(&s, &cfg, json, check_determinism, stop_on_failure);
            if let Some(path) = failures {
                let mut text = String::new();
                for f in &summary.failing {
                    text.push_str(&serde_json::to_string(f).expect("serialises"));
                    text.push('\n');
                }
                write_atomic(&path, &text)?;
            }
            if let Some(path) = report {
                write_atomic(&path, &fuzz_report(&scenario, &summary))?;
                if !json {
                    println!("wrote {}", path.display());
                }
            }
            print_summary(&scenario, &summary, json);
            Ok(verdict_exit(summary.failures == 0))
        }
        Command::Shrink {
            scenario,
            seed,
            out,
            note,
        } => {
            let s = load(&scenario)?;
            let plan = plan_for(&s, seed);
            let Some((small, invariant, runs)) = shrink_failure(&s, seed, &plan, reference())
            else {
                println!(
                    "seed {seed} of {} holds every invariant: nothing to shrink",
                    s.name
                );
                return Ok(ExitCode::SUCCESS);
            };
            std::fs::create_dir_all(&out)?;
            let path = out.join(format!("{}-{seed}.json", s.name));
            let reg = Regression {
                scenario: s.name.clone(),
                seed,
                invariant: invariant.clone(),
                note,
                plan: small.clone(),
                workload: None,
                coordinator: Some(sagasim::harness::reference().name().to_string()),
                sagasim_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            };
            reg.save_new(&path)?;
            println!(
                "{invariant}: shrunk {} faults to {} in {runs} runs",
                plan.len(),
                small.len()
            );
            println!(
                "{}",
                serde_json::to_string_pretty(&small).expect("serialises")
            );
            println!("wrote {}", path.display());
            println!(
                "replay: cargo run --release -- replay {} --plan {}",
                scenario.scenario,
                path.display()
            );
            Ok(ExitCode::from(1))
        }
        Command::Report {
            scenario,
            seed,
            plan,
            out,
        } => report(&scenario, seed, plan.as_deref(), &out),
        Command::Compare {
            scenario,
            seeds,
            start,
            jobs,
            coordinators,
            json,
            html,
        } => {
            let s = load(&scenario)?;
            let cfg = fuzz_config(start, seeds, jobs, None)?;
            let mut imps = Vec::new();
            for name in &coordinators {
                let name = name.trim();
                let Some(imp) = coordinator(name) else {
                    let known: Vec<&str> = known_coordinators().iter().map(|c| c.name()).collect();
                    return Err(BadInput(format!(
                        "unknown coordinator `{name}`; known: {}",
                        known.join(", ")
                    )));
                };
                if imps
                    .iter()
                    .any(|i: &Arc<dyn CoordinatorImpl>| i.name() == name)
                {
                    return Err(BadInput(format!("coordinator `{name}` named twice")));
                }
                imps.push(imp);
            }
            let c = run_compare(&s, &cfg, &imps, json);
            print_comparison(&scenario, &c, seeds, start, &coordinators, json);
            if let Some(dir) = html {
                let command = format!(
                    "cargo run --release -- compare {} --seeds {seeds} --start {start} --coordinators {}",
                    scenario.scenario,
                    coordinators.join(",")
                );
                let path = sagasim::report::compare::write(&c, &command, &dir)?;
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge { files } => merge(&files),
        Command::Bench {
            scenario,
            seeds,
            jobs,
            rss_seeds,
            json,
        } => {
            let s = load(&scenario)?;
            if seeds == 0 {
                return Err(BadInput("--seeds must be at least 1".into()));
            }
            let jobs = default_jobs(jobs);
            let quiet = json || !std::io::stderr().is_terminal();
            let r = sagasim::bench::bench(&s, seeds, jobs, rss_seeds, |what| {
                if !quiet {
                    eprintln!("bench: {what}…");
                }
            });
            if json {
                println!("{}", serde_json::to_string(&r).expect("serialises"));
            } else {
                println!(
                    "scenario {} ({} seeds per figure, {} jobs)",
                    r.scenario, r.seeds, r.jobs
                );
                println!(
                    "  seeds/s, {} jobs            {:>10.0}",
                    r.jobs, r.seeds_per_s
                );
                println!(
                    "  seeds/s, 1 thread           {:>10.0}",
                    r.seeds_per_s_1_thread
                );
                println!(
                    "  empty world seeds/s, {} jobs {:>9.0}",
                    r.jobs, r.baseline_seeds_per_s
                );
                println!(
                    "  empty world seeds/s, 1 thr. {:>10.0}",
                    r.baseline_seeds_per_s_1_thread
                );
                println!("  cost ratio (1 thread)       {:>10.2}x", r.ratio);
                println!(
                    "  messages per seed           {:>10.1}",
                    r.messages_per_seed
                );
                println!("  µs per message (1 thread)   {:>10.2}", r.us_per_message);
                println!("  simulated s per wall s      {:>10.0}", r.sim_s_per_wall_s);
                println!(
                    "  peak RSS                    {:>10.1} MiB after {} seeds ({:.1} MiB after a tenth)",
                    r.peak_rss_mib, r.rss_seeds, r.early_rss_mib
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Scenarios { scenarios } => {
            let dir = scenarios.unwrap_or_else(scenario::default_dir);
            for name in scenario::list(&dir) {
                match Scenario::load(&name, &dir) {
                    Ok(s) => println!("{name:<28} {}", s.description),
                    Err(e) => println!("{name:<28} (invalid: {e})"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--jobs`, defaulting to every core.
fn default_jobs(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// The seeds of `--start S --seeds N [--shard K/N]`, refusing a range that
/// overflows.
fn fuzz_config(
    start: u64,
    seeds: u64,
    jobs: Option<usize>,
    shard: Option<(u64, u64)>,
) -> Result<FuzzConfig, BadInput> {
    if start.checked_add(seeds).is_none() {
        return Err(BadInput(format!(
            "seed range --start {start} --seeds {seeds} overflows u64"
        )));
    }
    Ok(FuzzConfig {
        start,
        seeds,
        jobs: default_jobs(jobs),
        shard,
    })
}

fn replay_cmd(arg: &ScenarioArg, seed: u64) -> String {
    format!(
        "cargo run --release -- replay {} --seed {seed}",
        arg.scenario
    )
}

/// `report`: run the seed (or plan file) with the full trace, write the
/// HTML and markdown under `out`, print their paths and the verdict.
fn report(
    arg: &ScenarioArg,
    seed: Option<u64>,
    plan: Option<&Path>,
    out: &Path,
) -> Result<ExitCode, BadInput> {
    let (s, seed, plan, cmd) = seed_or_plan("report", arg, seed, plan)?;
    let c = run_checked(&s, seed, &plan, TraceMode::Full, reference());
    let written = Report::new(&s, &c).write(out)?;
    println!("{}", written.html.display());
    println!("{}", written.markdown.display());
    if c.verdict.ok() {
        println!("verdict: every invariant held");
    } else {
        for v in c.verdict.all() {
            println!("violated: {v}");
        }
        println!("replay: {cmd}");
    }
    Ok(verdict_exit(c.verdict.ok()))
}

/// What `replay` and `report` run: a seed's own plan (`--seed N`), or a
/// regression / plan file (`--plan FILE`); with the replay command for it.
fn seed_or_plan(
    verb: &str,
    arg: &ScenarioArg,
    seed: Option<u64>,
    plan: Option<&Path>,
) -> Result<(Scenario, u64, FaultPlan, String), BadInput> {
    match plan {
        Some(path) => {
            let (s, seed, plan) = load_plan(arg, path, seed)?;
            let cmd = format!(
                "cargo run --release -- replay {} --seed {seed} --plan {}",
                arg.scenario,
                path.display()
            );
            Ok((s, seed, plan, cmd))
        }
        None => {
            let Some(seed) = seed else {
                return Err(BadInput(format!("{verb} needs --seed N or --plan FILE")));
            };
            let s = load(arg)?;
            let plan = plan_for(&s, seed);
            Ok((s, seed, plan, replay_cmd(arg, seed)))
        }
    }
}

/// Load a regression file or a bare plan for `replay --plan`.
fn load_plan(
    arg: &ScenarioArg,
    path: &Path,
    seed: Option<u64>,
) -> Result<(Scenario, u64, FaultPlan), BadInput> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| BadInput(format!("{shown}: {e}")))?;
    if meta.len() > scenario::MAX_FILE_BYTES {
        return Err(BadInput(format!(
            "{shown}: file is larger than {} bytes",
            scenario::MAX_FILE_BYTES
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| BadInput(format!("{shown}: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        BadInput(format!(
            "{shown}: line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let (name, seed, plan) = if value.get("plan").is_some() {
        let reg: Regression =
            serde_json::from_value(value).map_err(|e| BadInput(format!("{shown}: {e}")))?;
        (reg.scenario, seed.unwrap_or(reg.seed), reg.plan)
    } else {
        let plan: FaultPlan =
            serde_json::from_value(value).map_err(|e| BadInput(format!("{shown}: {e}")))?;
        (arg.scenario.clone(), seed.unwrap_or(0), plan)
    };
    let dir = arg.scenarios.clone().unwrap_or_else(scenario::default_dir);
    let s = Scenario::load(&name, &dir)?;
    plan.validate(&topology(&s))
        .map_err(|e| BadInput(format!("{shown}: {e}")))?;
    Ok((s, seed, plan))
}

/// Run one seed, print the trace (if asked) and the verdict. Returns ok.
fn show_run(s: &Scenario, seed: u64, plan: &FaultPlan, trace: bool, replay: &str) -> bool {
    let c = run_checked(s, seed, plan, TraceMode::Full, reference());
    let mut out = std::io::stdout().lock();
    if trace {
        let _ = write!(out, "{}", c.trace.render());
    }
    let _ = writeln!(
        out,
        "scenario {} seed {seed}: {} events, trace hash {:016x}, {} faults in plan",
        s.name,
        c.trace.len,
        c.trace.hash,
        plan.len()
    );
    for a in &c.outcome.agents {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            a.business_key,
            a.answer
                .as_ref()
                .map_or("no answer".to_string(), |s| format!("{s:?}")),
            format_args!("{} call(s), {} timeout(s)", a.calls, a.timeouts)
        );
    }
    if c.verdict.ok() {
        let _ = writeln!(out, "verdict: every invariant held");
        true
    } else {
        for v in c.verdict.all() {
            let _ = writeln!(out, "violated: {v}");
        }
        let _ = writeln!(out, "replay: {replay}");
        false
    }
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
    let stop = std::sync::atomic::AtomicBool::new(false);
    let summary = fuzz(
        &s.name,
        cfg,
        |seed| {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return sagasim::fuzz::SeedResult {
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
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
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

fn run_compare(
    s: &Scenario,
    cfg: &FuzzConfig,
    imps: &[Arc<dyn CoordinatorImpl>],
    json: bool,
) -> Comparison {
    let total = cfg.seed_list().len() as u64;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}",
            )
            .expect("template"),
        );
        b
    });
    let c = compare(s, cfg, imps, |done| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    c
}

fn print_comparison(
    arg: &ScenarioArg,
    c: &Comparison,
    seeds: u64,
    start: u64,
    names: &[String],
    json: bool,
) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", c.table());
    let _ = writeln!(
        out,
        "command: cargo run --release -- compare {} --seeds {seeds} --start {start} --coordinators {}",
        arg.scenario,
        names.join(",")
    );
    // Wall time on its own line: the table above is a pure function of the command.
    let _ = writeln!(
        out,
        "took {:.1} s ({:.0} runs/s)",
        c.elapsed_s,
        if c.elapsed_s > 0.0 {
            (c.seeds * c.coordinators.len() as u64) as f64 / c.elapsed_s
        } else {
            0.0
        }
    );
    if json {
        let _ = writeln!(out, "{}", c.json_line());
    }
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
        for point in sagasim::check::coverage::POINTS {
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
    for point in sagasim::check::coverage::POINTS {
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

fn merge(files: &[PathBuf]) -> Result<ExitCode, BadInput> {
    let mut parts = Vec::new();
    for f in files {
        let shown = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|e| BadInput(format!("{shown}: {e}")))?;
        let line = text
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .ok_or_else(|| BadInput(format!("{shown}: no JSON summary line")))?;
        let part: FuzzSummary = serde_json::from_str(line)
            .map_err(|e| BadInput(format!("{shown}: not a fuzz --json summary: {e}")))?;
        parts.push(part);
    }
    let merged = FuzzSummary::merge(&parts).map_err(BadInput)?;
    println!(
        "{}: {} seeds, {} failures (merged from {} files)",
        merged.scenario,
        merged.seeds,
        merged.failures,
        parts.len()
    );
    println!("{}", merged.json_line());
    Ok(verdict_exit(merged.failures == 0))
}

fn write_atomic(path: &Path, text: &str) -> Result<(), BadInput> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| BadInput(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    Ok(())
}
