//! `sagasim bench [SCENARIO] --seeds N --rss-seeds M`: seeds/s, the
//! empty-world baseline and their ratio, messages per seed, µs per message,
//! simulated s per wall s, peak RSS (as a table or one JSON line).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Args;

use super::args::{jobs_arg, load, BadInput, ScenarioArg};

#[derive(Args)]
pub struct BenchArgs {
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
}

pub fn exec(a: BenchArgs) -> Result<ExitCode, BadInput> {
    let s = load(&a.scenario)?;
    if a.seeds == 0 {
        return Err(BadInput("--seeds must be at least 1".into()));
    }
    let jobs = jobs_arg(a.jobs)?;
    let quiet = a.json || !std::io::stderr().is_terminal();
    let r = crate::bench::bench(&s, a.seeds, jobs, a.rss_seeds, |what| {
        if !quiet {
            errln!("bench: {what}…");
        }
    });
    if a.json {
        outln!("{}", serde_json::to_string(&r).expect("serialises"));
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "scenario {} ({} seeds per figure, {} jobs)",
        r.scenario,
        r.seeds,
        r.jobs
    );
    outln!(
        "  seeds/s, {} jobs            {:>10.0}",
        r.jobs,
        r.seeds_per_s
    );
    outln!(
        "  seeds/s, 1 thread           {:>10.0}",
        r.seeds_per_s_1_thread
    );
    outln!(
        "  empty world seeds/s, {} jobs {:>9.0}",
        r.jobs,
        r.baseline_seeds_per_s
    );
    outln!(
        "  empty world seeds/s, 1 thr. {:>10.0}",
        r.baseline_seeds_per_s_1_thread
    );
    outln!("  cost ratio (1 thread)       {:>10.2}x", r.ratio);
    outln!(
        "  messages per seed           {:>10.1}",
        r.messages_per_seed
    );
    outln!("  µs per message (1 thread)   {:>10.2}", r.us_per_message);
    outln!("  simulated s per wall s      {:>10.0}", r.sim_s_per_wall_s);
    outln!(
        "  peak RSS                    {:>10.1} MiB after {} seeds ({:.1} MiB after a tenth)",
        r.peak_rss_mib,
        r.rss_seeds,
        r.early_rss_mib
    );
    Ok(ExitCode::SUCCESS)
}
