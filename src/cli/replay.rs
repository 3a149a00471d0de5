//! `sagasim replay [SCENARIO] (--seed N | --plan FILE)`: re-run a seed or a
//! plan file bit-for-bit and print the full trace.

use std::process::ExitCode;

use clap::Args;

use super::args::{
    seed_or_plan, verdict_exit, BadInput, CoordinatorArg, ScenarioArg, SeedOrPlanArg,
};
use super::run::show_run;

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    coordinator: CoordinatorArg,
    #[command(flatten)]
    run: SeedOrPlanArg,
}

pub fn exec(a: ReplayArgs) -> Result<ExitCode, BadInput> {
    let mut coord = a.coordinator;
    let run = seed_or_plan("replay", &a.scenario, &mut coord, &a.run)?;
    let imp = coord.resolve()?;
    let (s, seed, plan) = (&run.scenario, run.seed, &run.plan);
    Ok(verdict_exit(show_run(
        s,
        imp,
        seed,
        plan,
        true,
        &run.command,
    )))
}
