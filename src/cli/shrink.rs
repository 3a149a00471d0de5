//! `sagasim shrink [SCENARIO] --seed N [--out DIR] [--note TEXT]`: shrink a
//! failing seed's fault plan and save it as a regression (never overwriting
//! one).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::{load, BadInput, CoordinatorArg, ScenarioArg};
use crate::check::regression::{scenario_path_of, Regression};

#[derive(Args)]
pub struct ShrinkArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    coordinator: CoordinatorArg,
    #[arg(long)]
    seed: u64,
    /// Directory for the regression file.
    #[arg(long, value_name = "DIR", default_value = "tests/regressions")]
    out: PathBuf,
    /// One line: what the bug is.
    #[arg(long, default_value = "found by sagasim fuzz")]
    note: String,
}

pub fn exec(a: ShrinkArgs) -> Result<ExitCode, BadInput> {
    let ShrinkArgs {
        scenario,
        coordinator,
        seed,
        out,
        note,
    } = a;
    let s = load(&scenario)?;
    let imp = coordinator.resolve()?;
    let registry = super::registry::get();
    let plan = registry.plan(&s, seed);
    let Some((small, invariant, runs)) = registry.shrink(&s, seed, &plan, imp.clone()) else {
        outln!(
            "seed {seed} of {} holds every invariant: nothing to shrink",
            s.name
        );
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&out).map_err(|e| BadInput(format!("--out {}: {e}", out.display())))?;
    // The reference's regressions keep their short name.
    let stem = match coordinator.flag().is_empty() {
        true => format!("{}-{seed}", s.name),
        false => format!("{}-{}-{seed}", s.name, imp.name()),
    };
    let path = out.join(format!("{stem}.json"));
    let reg = Regression {
        scenario: s.name.clone(),
        scenario_path: scenario_path_of(&scenario.scenario),
        seed,
        invariant: invariant.clone(),
        note,
        plan: small.clone(),
        workload: Some(registry.workload_for(&s).name().to_string()),
        coordinator: Some(imp.name().to_string()),
        sagasim_version: Some(env!("CARGO_PKG_VERSION").to_string()),
    };
    reg.save_new(&path)?;
    outln!(
        "{invariant}: shrunk {} faults to {} in {runs} runs",
        plan.len(),
        small.len()
    );
    outln!(
        "{}",
        serde_json::to_string_pretty(&small).expect("serialises")
    );
    outln!("wrote {}", path.display());
    outln!(
        "replay: cargo run --release -- replay {}{} --plan {}",
        scenario.scenario,
        coordinator.flag(),
        path.display()
    );
    Ok(ExitCode::from(1))
}
