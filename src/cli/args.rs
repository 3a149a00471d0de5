//! Argument helpers shared by the subcommands: the scenario argument,
//! `--shard`, `--jobs`, seed ranges, plan files, coordinator lookup, the
//! replay command, atomic file writes, and [`BadInput`] (exit code 2).
//!
//! Not here: what a subcommand does with them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::check::regression::{scenario_path_of, Regression, ReplayHandle};
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
    let dir = scenarios_flag(arg);
    format!(
        "cargo run --release -- replay {}{dir}{} --seed {seed}",
        arg.scenario,
        coord.flag()
    )
}

/// What `replay` and `report` run: a seed's own plan (`--seed N`), or a
/// regression / plan file (`--plan FILE`); with the replay command and the
/// replay handle for it. The coordinator a regression file's handle names
/// must be the one the command line names, if it names one: never a silent
/// choice.
pub fn seed_or_plan(
    verb: &str,
    arg: &ScenarioArg,
    coord: &mut CoordinatorArg,
    which: &SeedOrPlanArg,
) -> Result<Run, BadInput> {
    let seed = which.seed;
    let registry = super::registry::get();
    match which.plan.as_deref() {
        Some(path) => {
            let (s, seed, plan, named, scenario_path) = load_plan(arg, path, seed)?;
            if let Some(named) = named {
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
            // The file names its scenario: the command repeats only what
            // the user typed.
            let positional = match arg.scenario != DEFAULT_SCENARIO {
                true => format!(" {}", arg.scenario),
                false => String::new(),
            };
            let command = format!(
                "cargo run --release -- replay{positional}{}{} --seed {seed} --plan {}",
                scenarios_flag(arg),
                coord.flag(),
                path.display()
            );
            let mut handle = ReplayHandle::of_seed(
                registry.workload_for(&s).name(),
                &s.name,
                scenario_path,
                &coord.name(),
                seed,
            );
            handle.plan = path.display().to_string();
            Ok(Run {
                scenario: s,
                seed,
                plan,
                command,
                handle,
            })
        }
        None => {
            let Some(seed) = seed else {
                return Err(BadInput(format!("{verb} needs --seed N or --plan FILE")));
            };
            let s = load(arg)?;
            let plan = registry.plan(&s, seed);
            let handle = handle_of_seed(arg, coord, &s, seed);
            Ok(Run {
                command: replay_cmd(arg, coord, seed),
                scenario: s,
                seed,
                plan,
                handle,
            })
        }
    }
}

/// One run `replay` or `report` makes, and how to make it again.
pub struct Run {
    /// The scenario.
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
    /// The fault plan.
    pub plan: FaultPlan,
    /// The command that replays it, runnable as printed.
    pub command: String,
    /// Its replay handle.
    pub handle: ReplayHandle,
}

/// The replay handle of seed `seed`'s own plan of `s` (loaded from `arg`).
pub fn handle_of_seed(
    arg: &ScenarioArg,
    coord: &CoordinatorArg,
    s: &Scenario,
    seed: u64,
) -> ReplayHandle {
    ReplayHandle::of_seed(
        super::registry::get().workload_for(s).name(),
        &s.name,
        scenario_path_of(&arg.scenario),
        &coord.name(),
        seed,
    )
}

fn scenarios_flag(arg: &ScenarioArg) -> String {
    arg.scenarios
        .as_ref()
        .map_or(String::new(), |d| format!(" --scenarios {}", d.display()))
}

/// What a plan file holds: the scenario, seed and plan to run, the
/// coordinator its handle names (if any), and the scenario's path (when
/// it was given by path).
type PlanFile = (Scenario, u64, FaultPlan, Option<String>, Option<String>);

/// Load a regression file or a bare plan for `replay --plan`.
fn load_plan(arg: &ScenarioArg, path: &Path, seed: Option<u64>) -> Result<PlanFile, BadInput> {
    let shown = path.display().to_string();
    let text = read_bounded(path)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        BadInput(format!(
            "{shown}: line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let dir = arg.scenarios.clone().unwrap_or_else(scenario::default_dir);
    let (s, seed, plan, coordinator, scenario_path) = if value.get("plan").is_some() {
        let reg: Regression =
            serde_json::from_value(value).map_err(|e| BadInput(format!("{shown}: {e}")))?;
        // A scenario named on the command line must be the file's; a
        // scenario the file names by path is loaded from that path.
        let named = arg.scenario != DEFAULT_SCENARIO;
        let s = match (&reg.scenario_path, named) {
            (_, true) => load_from(&arg.scenario, &dir)?,
            (Some(p), false) => load_from(p, &dir)?,
            (None, false) => load_from(&reg.scenario, &dir)?,
        };
        if s.name != reg.scenario {
            return Err(BadInput(format!(
                "{shown}: the regression is of scenario `{}`, but the command names `{}`",
                reg.scenario, arg.scenario
            )));
        }
        let registry = super::registry::get();
        let workload = registry.workload_for(&s);
        if let Some(w) = reg.workload.as_deref() {
            if w != workload.name() {
                return Err(BadInput(format!(
                    "{shown}: the regression was found with workload `{w}`, but this binary runs `{}` for scenario `{}`",
                    workload.name(),
                    s.name
                )));
            }
        }
        let scenario_path = match named {
            true => scenario_path_of(&arg.scenario),
            false => reg.scenario_path.clone(),
        };
        let seed = seed.unwrap_or(reg.seed);
        (s, seed, reg.plan, reg.coordinator, scenario_path)
    } else {
        let plan: FaultPlan =
            serde_json::from_value(value).map_err(|e| BadInput(format!("{shown}: {e}")))?;
        let s = load_from(&arg.scenario, &dir)?;
        let path = scenario_path_of(&arg.scenario);
        (s, seed.unwrap_or(0), plan, None, path)
    };
    super::registry::get()
        .check_plan(&s, &plan)
        .map_err(|e| BadInput(format!("{shown}: {e}")))?;
    Ok((s, seed, plan, coordinator, scenario_path))
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
