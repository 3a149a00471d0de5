//! Argument helpers shared by the subcommands: the scenario argument,
//! `--shard`, `--jobs`, seed ranges, plan files, coordinator lookup, the
//! replay command, atomic file writes, and [`BadInput`] (exit code 2).
//!
//! Not here: what a subcommand does with them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::check::regression::Regression;
use crate::fuzz::FuzzConfig;
use crate::scenario::{self, Scenario, DEFAULT_SCENARIO};
use crate::sim::FaultPlan;
use crate::world::CoordinatorImpl;

#[derive(Args, Clone)]
pub struct ScenarioArg {
    /// Scenario name (a file in the scenarios directory) or path to a .toml.
    #[arg(default_value = DEFAULT_SCENARIO)]
    pub scenario: String,
    /// Where named scenarios live.
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
}

/// `--coordinator NAME`: which coordinator implementation runs (default: the
/// reference saga coordinator, `saga`).
#[derive(Args, Clone, Default)]
pub struct CoordinatorArg {
    /// Coordinator implementation: `saga` (the reference, the default) or
    /// `naive` (the baseline: see `sagasim compare`).
    #[arg(long, value_name = "NAME")]
    pub coordinator: Option<String>,
}

impl CoordinatorArg {
    /// The name asked for, or the reference's.
    pub fn name(&self) -> String {
        self.coordinator
            .clone()
            .unwrap_or_else(|| crate::harness::reference().name().to_string())
    }

    /// The implementation asked for.
    pub fn resolve(&self) -> Result<Arc<dyn CoordinatorImpl>, BadInput> {
        coordinator(&self.name())
    }

    /// ` --coordinator NAME` for a printed command, empty for the default.
    pub fn flag(&self) -> String {
        match &self.coordinator {
            Some(c) if *c != crate::harness::reference().name() => format!(" --coordinator {c}"),
            _ => String::new(),
        }
    }
}

/// `--seeds N --start S --jobs J`: the seed range of `fuzz` and `compare`.
#[derive(Args, Clone)]
pub struct SeedRangeArg {
    /// Number of seeds.
    #[arg(long, default_value_t = 1000)]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// `--seed N | --plan FILE`: the one run of `replay` and `report`.
#[derive(Args, Clone)]
pub struct SeedOrPlanArg {
    #[arg(long)]
    pub seed: Option<u64>,
    /// A regression file (scenario, seed and plan) or a bare fault plan.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
}

/// A user-facing failure: one line, exit code 2.
pub struct BadInput(pub String);

impl<E: std::fmt::Display> From<E> for BadInput {
    fn from(e: E) -> Self {
        BadInput(e.to_string())
    }
}

pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
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

/// The scenario the user named, validated, its `[plan]` checked against
/// the hotel world the CLI runs.
pub fn load(arg: &ScenarioArg) -> Result<Scenario, BadInput> {
    let dir = arg.scenarios.clone().unwrap_or_else(scenario::default_dir);
    load_from(&arg.scenario, &dir)
}

pub fn load_from(name_or_path: &str, dir: &Path) -> Result<Scenario, BadInput> {
    let s = Scenario::load(name_or_path, dir)?;
    let path = Scenario::resolve(name_or_path, dir)?;
    s.check_plan(
        &super::registry::get().topology(&s),
        &path.display().to_string(),
    )?;
    Ok(s)
}

pub fn verdict_exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `--jobs`, defaulting to every core.
pub fn default_jobs(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// The seeds of `--start S --seeds N [--shard K/N]`, refusing a range that
/// overflows.
pub fn fuzz_config(r: &SeedRangeArg, shard: Option<(u64, u64)>) -> Result<FuzzConfig, BadInput> {
    let SeedRangeArg { start, seeds, jobs } = *r;
    if seeds == 0 {
        return Err(BadInput(
            "--seeds 0: nothing to run (need at least 1)".into(),
        ));
    }
    if start.checked_add(seeds).is_none() {
        return Err(BadInput(format!(
            "seed range --start {start} --seeds {seeds} overflows u64"
        )));
    }
    if let Some((k, n)) = shard {
        if n > seeds {
            return Err(BadInput(format!(
                "--shard {k}/{n} with --seeds {seeds}: more shards than seeds, \
                 so some shards would run nothing (need N <= --seeds)"
            )));
        }
    }
    Ok(FuzzConfig {
        start,
        seeds,
        jobs: jobs_arg(jobs)?,
        shard,
    })
}

/// Most worker threads `--jobs` may ask for (a thread per seed in flight;
/// more than the cores only costs memory).
pub const MAX_JOBS: usize = 1024;

/// `--jobs J` within `1..=MAX_JOBS`, defaulting to every core.
pub fn jobs_arg(jobs: Option<usize>) -> Result<usize, BadInput> {
    match jobs {
        Some(j) if j == 0 || j > MAX_JOBS => {
            Err(BadInput(format!("--jobs {j} is outside 1..={MAX_JOBS}")))
        }
        _ => Ok(default_jobs(jobs)),
    }
}

/// The coordinator implementation called `name`, or the list of known ones.
/// The one place the CLI looks coordinators up.
pub fn coordinator(name: &str) -> Result<Arc<dyn CoordinatorImpl>, BadInput> {
    let known = super::registry::get().coordinators();
    if let Some(imp) = known.iter().find(|c| c.name() == name) {
        return Ok(imp.clone());
    }
    let names: Vec<&str> = known.iter().map(|c| c.name()).collect();
    Err(BadInput(format!(
        "unknown coordinator `{name}`; known: {}",
        names.join(", ")
    )))
}

/// The command that replays `seed` of the scenario as the user named it
/// (with `--scenarios DIR` and `--coordinator NAME` when they were given).
pub fn replay_cmd(arg: &ScenarioArg, coord: &CoordinatorArg, seed: u64) -> String {
    let dir = arg
        .scenarios
        .as_ref()
        .map_or(String::new(), |d| format!(" --scenarios {}", d.display()));
    format!(
        "cargo run --release -- replay {}{dir}{} --seed {seed}",
        arg.scenario,
        coord.flag()
    )
}

/// What `replay` and `report` run: a seed's own plan (`--seed N`), or a
/// regression / plan file (`--plan FILE`); with the replay command for it.
/// The coordinator a regression file's handle names must be the one the
/// command line names, if it names one: never a silent choice.
pub fn seed_or_plan(
    verb: &str,
    arg: &ScenarioArg,
    coord: &mut CoordinatorArg,
    which: &SeedOrPlanArg,
) -> Result<(Scenario, u64, FaultPlan, String), BadInput> {
    let seed = which.seed;
    match which.plan.as_deref() {
        Some(path) => {
            let (s, seed, plan, handle) = load_plan(arg, path, seed)?;
            if let Some(named) = handle {
                match &coord.coordinator {
                    Some(c) if *c != named => {
                        return Err(BadInput(format!(
                            "{}: the regression was found with coordinator `{named}`, but --coordinator is `{c}`",
                            path.display()
                        )))
                    }
                    _ => coord.coordinator = Some(named),
                }
            }
            let cmd = format!(
                "cargo run --release -- replay {}{} --seed {seed} --plan {}",
                arg.scenario,
                coord.flag(),
                path.display()
            );
            Ok((s, seed, plan, cmd))
        }
        None => {
            let Some(seed) = seed else {
                return Err(BadInput(format!("{verb} needs --seed N or --plan FILE")));
            };
            let s = load(arg)?;
            let plan = super::registry::get().plan(&s, seed);
            Ok((s, seed, plan, replay_cmd(arg, coord, seed)))
        }
    }
}

/// Load a regression file or a bare plan for `replay --plan`.
/// Also returns the coordinator the file's handle names, if any.
fn load_plan(
    arg: &ScenarioArg,
    path: &Path,
    seed: Option<u64>,
) -> Result<(Scenario, u64, FaultPlan, Option<String>), BadInput> {
    let shown = path.display().to_string();
    let text = read_bounded(path)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        BadInput(format!(
            "{shown}: line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let (name, seed, plan, coordinator) = if value.get("plan").is_some() {
        let reg: Regression =
            serde_json::from_value(value).map_err(|e| BadInput(format!("{shown}: {e}")))?;
        // A scenario named on the command line must be the file's.
        if arg.scenario != DEFAULT_SCENARIO
            && arg.scenario != reg.scenario
            && !arg.scenario.ends_with(&format!("{}.toml", reg.scenario))
        {
            return Err(BadInput(format!(
                "{shown}: the regression is of scenario `{}`, but the command names `{}`",
                reg.scenario, arg.scenario
            )));
        }
        (
            reg.scenario,
            seed.unwrap_or(reg.seed),
            reg.plan,
            reg.coordinator,
        )
    } else {
        let plan: FaultPlan =
            serde_json::from_value(value).map_err(|e| BadInput(format!("{shown}: {e}")))?;
        (arg.scenario.clone(), seed.unwrap_or(0), plan, None)
    };
    let dir = arg.scenarios.clone().unwrap_or_else(scenario::default_dir);
    let s = load_from(&name, &dir)?;
    plan.validate(&super::registry::get().topology(&s))
        .map_err(|e| BadInput(format!("{shown}: {e}")))?;
    Ok((s, seed, plan, coordinator))
}

/// A text file of at most `MAX_FILE_BYTES`; errors name the file.
pub fn read_bounded(path: &Path) -> Result<String, BadInput> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| BadInput(format!("{shown}: {e}")))?;
    if meta.len() > scenario::MAX_FILE_BYTES {
        return Err(BadInput(format!(
            "{shown}: file is larger than {} bytes",
            scenario::MAX_FILE_BYTES
        )));
    }
    std::fs::read_to_string(path).map_err(|e| BadInput(format!("{shown}: {e}")))
}

/// Write `text` to `path` through a temp file beside it and a rename, so a
/// reader never sees half a file. Errors name `path`, the file asked for,
/// never the temp file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), BadInput> {
    let name = path
        .file_name()
        .map_or_else(|| "out".to_string(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.sagasim-tmp"));
    let fail = |e: std::io::Error| BadInput(format!("{}: {e}", path.display()));
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}
