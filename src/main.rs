//! The `sagasim` command line. Prints one clear line and exits 2 on bad
//! input; exits 1 when an invariant failed; 0 when every seed held.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sagasim::fuzz::{fuzz, FuzzConfig, SeedResult};
use sagasim::sim::demo;
use sagasim::trace::TraceMode;

#[derive(Parser)]
#[command(name = "sagasim", version, about = "Deterministic simulation and chaos testing for saga-based integrations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed and print its verdict and trace.
    Run {
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Run many seeds in parallel and summarise.
    Fuzz {
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
    },
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("shard `{s}` is not of the form K/N (e.g. 2/8)"))?;
    let k: u64 = k.trim().parse().map_err(|_| format!("shard index `{k}` is not a number"))?;
    let n: u64 = n.trim().parse().map_err(|_| format!("shard count `{n}` is not a number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("shard {k}/{n}: need 1 <= K <= N"));
    }
    Ok((k, n))
}

const CLIENTS: usize = 3;
const OPS: usize = 4;

fn run_seed(seed: u64, mode: TraceMode) -> (SeedResult, sagasim::trace::Trace) {
    let plan = demo::swarm_plan(seed, CLIENTS);
    let (out, trace) = demo::run(seed, plan, CLIENTS, OPS, mode);
    let mut failure = None;
    if !out.phases.converged {
        failure = Some("liveness: clients did not finish".to_string());
    }
    let mut keys = std::collections::BTreeSet::new();
    for a in &out.applied {
        if let Some(k) = &a.key {
            if !keys.insert(k.clone()) {
                failure = Some(format!("safety: deposit {k} applied twice"));
            }
        }
    }
    (
        SeedResult {
            seed,
            trace_hash: trace.hash,
            failure,
        },
        trace,
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { seed } => {
            let (r, trace) = run_seed(seed, TraceMode::Full);
            print!("{}", trace.render());
            println!("seed {seed}: trace hash {:016x}", r.trace_hash);
            match r.failure {
                None => {
                    println!("verdict: all invariants held");
                    ExitCode::SUCCESS
                }
                Some(f) => {
                    println!("verdict: FAILED: {f}\nreplay: cargo run --release -- run --seed {seed}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Fuzz {
            seeds,
            start,
            jobs,
            shard,
            json,
        } => {
            let jobs = jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let cfg = FuzzConfig {
                start,
                seeds,
                jobs,
                shard,
            };
            let summary = fuzz("demo", &cfg, |s| run_seed(s, TraceMode::HashOnly).0, |_, _| {});
            for f in &summary.failing {
                println!(
                    "seed {}: {}\n  replay: cargo run --release -- run --seed {}",
                    f.seed,
                    f.failure.as_deref().unwrap_or(""),
                    f.seed
                );
            }
            println!(
                "{} seeds, {} failures, {:.1} s, {:.0} seeds/s",
                summary.seeds, summary.failures, summary.elapsed_s, summary.seeds_per_s
            );
            if json {
                let line = serde_json::json!({
                    "scenario": summary.scenario,
                    "seeds": summary.seeds,
                    "failures": summary.failures,
                    "first_failing_seed": summary.first_failing_seed,
                    "elapsed_s": summary.elapsed_s,
                    "seeds_per_s": summary.seeds_per_s,
                });
                println!("{line}");
            }
            if summary.failures > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
