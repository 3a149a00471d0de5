//! `sagasim report [SCENARIO] (--seed N | --plan FILE) [--out DIR]`: write
//! `DIR/<scenario>-<seed>.html` and `.md` (default `reports/`; for a plan
//! file `DIR/<scenario>-plan-<file>-<seed>.*`), with the
//! same exit codes as `run`: the report is written even when an invariant
//! failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::{
    seed_or_plan, verdict_exit, BadInput, CoordinatorArg, ScenarioArg, SeedOrPlanArg,
};
use crate::report::{file_stem, Report};
use crate::trace::TraceMode;

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    coordinator: CoordinatorArg,
    #[command(flatten)]
    run: SeedOrPlanArg,
    /// Directory for `<scenario>-<seed>.html` and `.md` (created if missing).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    out: PathBuf,
}

/// Run the seed (or plan file) with the full trace, write the HTML and
/// markdown under `out`, print their paths and the verdict.
pub fn exec(a: ReportArgs) -> Result<ExitCode, BadInput> {
    let mut coord = a.coordinator.clone();
    let run = seed_or_plan("report", &a.scenario, &mut coord, &a.run)?;
    let (s, seed, plan, cmd) = (&run.scenario, run.seed, &run.plan, &run.command);
    let c = super::registry::get().run(s, seed, plan, TraceMode::Full, coord.resolve()?);
    let report = Report::new(s, &c).with_replay(cmd, &run.handle);
    // A plan file's report is named after the plan too: the seed's own
    // report (`--seed N`) and a plan's for the same seed both survive.
    // Another coordinator's report is named after it too.
    let who = match coord.flag().is_empty() {
        true => s.name.clone(),
        false => format!("{}-{}", s.name, coord.name()),
    };
    let written = match &a.run.plan {
        None if who == s.name => report.write(&a.out)?,
        None => report.write_as(&a.out, &file_stem(&who, seed))?,
        Some(path) => {
            let plan_name = path
                .file_stem()
                .map_or_else(|| "plan".to_string(), |n| n.to_string_lossy().into_owned());
            let stem = file_stem(&format!("{who}-plan-{plan_name}"), seed);
            report.write_as(&a.out, &stem)?
        }
    };
    outln!("{}", written.html.display());
    outln!("{}", written.markdown.display());
    if c.verdict.ok() {
        outln!("verdict: every invariant held");
    } else {
        for v in c.verdict.all() {
            outln!("violated: {v}");
        }
        outln!("replay: {cmd}");
    }
    Ok(verdict_exit(c.verdict.ok()))
}
