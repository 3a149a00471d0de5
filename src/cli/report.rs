//! `sagasim report [SCENARIO] (--seed N | --plan FILE) [--out DIR]`: write
//! `DIR/<scenario>-<seed>.html` and `.md` (default `reports/`), with the
//! same exit codes as `run`: the report is written even when an invariant
//! failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::{seed_or_plan, verdict_exit, BadInput, ScenarioArg, SeedOrPlanArg};
use crate::harness::{reference, run_checked};
use crate::report::Report;
use crate::trace::TraceMode;

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    run: SeedOrPlanArg,
    /// Directory for `<scenario>-<seed>.html` and `.md` (created if missing).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    out: PathBuf,
}

/// Run the seed (or plan file) with the full trace, write the HTML and
/// markdown under `out`, print their paths and the verdict.
pub fn exec(a: ReportArgs) -> Result<ExitCode, BadInput> {
    let (s, seed, plan, cmd) = seed_or_plan("report", &a.scenario, &a.run)?;
    let c = run_checked(&s, seed, &plan, TraceMode::Full, reference());
    let written = Report::new(&s, &c).write(&a.out)?;
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
