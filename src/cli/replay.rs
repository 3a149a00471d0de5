//! `sagasim replay [SCENARIO] (--seed N | --plan FILE)`: re-run a seed or a
//! plan file bit-for-bit and print the full trace.

use std::process::ExitCode;

use clap::Args;

use super::args::{seed_or_plan, verdict_exit, BadInput, ScenarioArg, SeedOrPlanArg};
use super::run::show_run;

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    run: SeedOrPlanArg,
}

pub fn exec(a: ReplayArgs) -> Result<ExitCode, BadInput> {
    let (s, seed, plan, cmd) = seed_or_plan("replay", &a.scenario, &a.run)?;
    Ok(verdict_exit(show_run(&s, seed, &plan, true, &cmd)))
}
