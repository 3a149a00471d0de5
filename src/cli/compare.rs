//! `sagasim compare [SCENARIO] --seeds N --coordinators a,b
//! [--intensities 0,1,3,10,30,100] [--json] [--html DIR]`: the same seeds
//! against several coordinators at several fault intensities (a study, see
//! `crate::study`), printed as a sweep table, the full table at the heaviest
//! point, where each coordinator keeps the article's claim, and an example
//! seed per failing metric with a replay command that works as printed.
//! With `--html DIR` also the page with its charts, and per example a
//! report (and, below 100 %, the thinned plan file the replay command
//! names).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::args::{
    coordinator, fuzz_config, load, replay_cmd, BadInput, CoordinatorArg, ScenarioArg, SeedRangeArg,
};
use crate::fuzz::FuzzConfig;
use crate::metrics::{Comparison, FailingMetric};
use crate::report::compare::Example;
use crate::report::{file_stem, Report};
use crate::scenario::Scenario;
use crate::study::{
    fmt_intensity, fmt_pct as pct, fmt_secs as secs, study_with, thin, Study,
    DEFAULT_INTENSITIES_PERMILLE, MAX_POINTS,
};
use crate::trace::TraceMode;
use crate::world::CoordinatorImpl;

/// The arguments of `compare`.
#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    range: SeedRangeArg,
    /// Coordinators to compare, comma-separated, in column order.
    #[arg(long, default_value = "naive,saga", value_delimiter = ',')]
    coordinators: Vec<String>,
    /// Fault intensities in percent of the scenario's swarm, rising
    /// (0 = no faults, 100 = the swarm `fuzz` runs; one decimal allowed).
    #[arg(long, value_delimiter = ',', value_name = "PERCENT")]
    intensities: Vec<String>,
    /// Print one machine-readable line last (the points and the claims).
    #[arg(long)]
    json: bool,
    /// Also write the study as a self-contained HTML page with charts into
    /// DIR, and a report per example seed.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
}

/// `2.5` → 25 ‰; one decimal at most, 0..=100.
fn parse_percent(text: &str) -> Result<u32, BadInput> {
    let t = text.trim();
    let bad = || {
        BadInput(format!(
            "--intensities {t}: not a percentage in 0..=100 with at most one decimal"
        ))
    };
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) if f.len() == 1 => (w, f),
        Some(_) => return Err(bad()),
        None => (t, "0"),
    };
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let frac: u32 = frac.parse().map_err(|_| bad())?;
    let permille = whole
        .checked_mul(10)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    if permille > 1000 {
        return Err(bad());
    }
    Ok(permille)
}

fn intensities(args: &[String]) -> Result<Vec<u32>, BadInput> {
    if args.is_empty() {
        return Ok(DEFAULT_INTENSITIES_PERMILLE.to_vec());
    }
    let v: Vec<u32> = args
        .iter()
        .map(|a| parse_percent(a))
        .collect::<Result<_, _>>()?;
    if v.len() > MAX_POINTS {
        return Err(BadInput(format!(
            "--intensities: {} points, at most {MAX_POINTS}",
            v.len()
        )));
    }
    if !v.windows(2).all(|w| w[0] < w[1]) {
        return Err(BadInput("--intensities must rise (e.g. 0,1,10,100)".into()));
    }
    Ok(v)
}

/// Run the study, write the page and example reports, print the tables.
pub fn exec(a: CompareArgs) -> Result<ExitCode, BadInput> {
    let CompareArgs {
        scenario,
        range,
        coordinators,
        intensities: intensity_args,
        json,
        html,
    } = a;
    let s = load(&scenario)?;
    let cfg = fuzz_config(&range, None)?;
    let points = intensities(&intensity_args)?;
    let SeedRangeArg { seeds, start, .. } = range;
    let mut imps: Vec<Arc<dyn CoordinatorImpl>> = Vec::new();
    for name in &coordinators {
        let name = name.trim();
        let imp = coordinator(name)?;
        if imps.iter().any(|i| i.name() == name) {
            return Err(BadInput(format!("coordinator `{name}` named twice")));
        }
        imps.push(imp);
    }
    let st = run_study(&s, &cfg, &imps, &points, json);
    let command = format!(
        "cargo run --release -- compare {} --seeds {seeds} --start {start} --coordinators {}{}",
        scenario.scenario,
        coordinators.join(","),
        if intensity_args.is_empty() {
            String::new()
        } else {
            format!(" --intensities {}", intensity_args.join(","))
        }
    );
    let mut examples = examples(&st, &scenario, html.as_deref());
    // The page first, then the terminal (the JSON line last); a bad --html
    // directory still prints the tables.
    let written = html.map(|dir| {
        write_examples(&s, &st, &imps, &dir, &mut examples)
            .and_then(|()| crate::report::compare::write(&st, &examples, &command, &dir))
            .map_err(|e| format!("--html {e}"))
    });
    print_study(&st, &examples, &command, json, written.as_ref());
    if let Some(Err(e)) = written {
        errln!("error: {e} (the comparison is above)");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_study(
    s: &Scenario,
    cfg: &FuzzConfig,
    imps: &[Arc<dyn CoordinatorImpl>],
    points: &[u32],
    json: bool,
) -> Study {
    let total = cfg.seed_list().len() as u64;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds (each at every intensity)  {rate}  eta {eta}",
            )
            .expect("template")
            .with_key("rate", super::fuzz::whole_rate),
        );
        b
    });
    let registry = super::registry::get();
    let workload = registry.workload_for(s);
    let invariants = registry.invariants();
    let st = study_with(s, &workload, invariants, cfg, imps, points, |done| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    st
}

/// One example per coordinator and failing metric: the lightest point that
/// shows it, its lowest seed. Below 100 % the replay names the thinned plan
/// file, which only `--html DIR` writes (`DIR/plans/`); without it the
/// example is replayed at 100 % when that point shows the metric too.
fn examples(st: &Study, arg: &ScenarioArg, dir: Option<&Path>) -> Vec<Example> {
    let mut out = Vec::new();
    for name in st.coordinator_names() {
        let coord = CoordinatorArg {
            coordinator: Some(name.clone()),
        };
        for metric in FailingMetric::ALL {
            let Some((mut permille, mut seed)) = st.example(&name, metric) else {
                continue;
            };
            if permille < 1000 && dir.is_none() {
                if let Some(s) = st
                    .heaviest()
                    .of(&name)
                    .filter(|_| st.heaviest().intensity_permille == 1000)
                    .and_then(|a| a.examples.get(&metric))
                {
                    (permille, seed) = (1000, *s);
                }
            }
            let stem = example_stem(&st.scenario, &name, permille, seed);
            let plan = (permille < 1000).then(|| {
                dir.unwrap_or(Path::new("."))
                    .join("plans")
                    .join(format!("{stem}.json"))
            });
            let replay = match &plan {
                None => replay_cmd(arg, &coord, seed),
                Some(p) if dir.is_some() => {
                    format!("{} --plan {}", replay_cmd(arg, &coord, seed), p.display())
                }
                Some(_) => format!(
                    "(at {}: run with --html DIR for the plan file)",
                    fmt_intensity(permille)
                ),
            };
            out.push(Example {
                coordinator: name.clone(),
                metric,
                intensity_permille: permille,
                seed,
                report: dir.map(|_| format!("{stem}.html")),
                plan,
                replay,
            });
        }
    }
    out
}

/// `<scenario>-<coordinator>-<seed>` at 100 %, `…-at<‰>permille-<seed>`
/// below.
fn example_stem(scenario: &str, coordinator: &str, permille: u32, seed: u64) -> String {
    if permille >= 1000 {
        file_stem(&format!("{scenario}-{coordinator}"), seed)
    } else {
        file_stem(
            &format!("{scenario}-{coordinator}-at{permille}permille"),
            seed,
        )
    }
}

/// Write each example's report (and thinned plan) under `dir`, once per
/// (coordinator, intensity, seed).
fn write_examples(
    s: &Scenario,
    st: &Study,
    imps: &[Arc<dyn CoordinatorImpl>],
    dir: &Path,
    examples: &mut [Example],
) -> Result<(), crate::report::ReportError> {
    let mut done: Vec<String> = Vec::new();
    for e in examples.iter() {
        let stem = example_stem(&st.scenario, &e.coordinator, e.intensity_permille, e.seed);
        if done.contains(&stem) {
            continue;
        }
        done.push(stem.clone());
        let imp = imps
            .iter()
            .find(|i| i.name() == e.coordinator)
            .expect("an example's coordinator was compared")
            .clone();
        let plan = thin(
            &super::registry::get().plan(s, e.seed),
            e.seed,
            e.intensity_permille,
        );
        if let Some(path) = &e.plan {
            let text = serde_json::to_string_pretty(&plan).expect("plans serialise") + "\n";
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| {
                    crate::report::ReportError::Io {
                        path: parent.display().to_string(),
                        source,
                    }
                })?;
            }
            crate::report::write_atomic(path, &text)?;
        }
        let c = super::registry::get().run(s, e.seed, &plan, TraceMode::Full, imp);
        Report::new(s, &c).write_as(dir, &stem)?;
    }
    Ok(())
}

/// The sweep as a table: one row per intensity and coordinator.
pub fn sweep_table(st: &Study) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: seeds {}..{}, the same seeds at every intensity and for every coordinator",
        st.scenario,
        st.start,
        st.start + st.seeds
    );
    let _ = writeln!(
        out,
        "| intensity | faults/run | coordinator |    told | verified | ceiling | of possible |    p50 |    p99 | double-charged runs | stale runs |"
    );
    let _ = writeln!(
        out,
        "|----------:|-----------:|-------------|--------:|---------:|--------:|------------:|-------:|-------:|--------------------:|-----------:|"
    );
    for p in &st.points {
        for a in &p.coordinators {
            let _ = writeln!(
                out,
                "| {:>9} | {:>10.1} | {:<11} | {:>7} | {:>8} | {:>7} | {:>11} | {:>6} | {:>6} | {:>19} | {:>10} |",
                fmt_intensity(p.intensity_permille),
                p.faults_per_run,
                a.coordinator,
                pct(a.completed, a.started),
                pct(a.completed_verified, a.started),
                pct(a.could_succeed, a.started),
                pct(a.completed_verified, a.could_succeed),
                secs(a.latency_p50_ms),
                secs(a.latency_p99_ms),
                pct(a.runs_with_double_charge, a.runs),
                pct(a.runs_with_stale, a.runs),
            );
        }
    }
    out
}

/// What each claim line says.
pub fn claim_lines(st: &Study) -> Vec<String> {
    st.claims
        .iter()
        .map(|c| {
            let what = "94% of the checkouts that could succeed, verified, with p50 ≤ 4 s";
            match (c.holds_up_to_permille, c.fails_at_permille) {
                (Some(p), None) => format!(
                    "{}: keeps the article's claim ({what}) at every intensity, up to {} ({:.1} faults/run)",
                    c.coordinator,
                    fmt_intensity(p),
                    c.faults_per_run.unwrap_or(0.0)
                ),
                (Some(p), Some(f)) => format!(
                    "{}: keeps the article's claim ({what}) up to {} ({:.1} faults/run); not at {}",
                    c.coordinator,
                    fmt_intensity(p),
                    c.faults_per_run.unwrap_or(0.0),
                    fmt_intensity(f)
                ),
                (None, _) => format!(
                    "{}: does not keep the article's claim ({what}) even at the lightest intensity",
                    c.coordinator
                ),
            }
        })
        .collect()
}

fn print_study(
    st: &Study,
    examples: &[Example],
    command: &str,
    json: bool,
    written: Option<&Result<PathBuf, String>>,
) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", sweep_table(st));
    let heavy = st.heaviest();
    let c = Comparison {
        scenario: format!(
            "{} at {} of the swarm",
            st.scenario,
            fmt_intensity(heavy.intensity_permille)
        ),
        start: st.start,
        seeds: st.seeds,
        coordinators: heavy.coordinators.clone(),
        elapsed_s: st.elapsed_s,
    };
    let _ = write!(out, "\n{}", c.table());
    let _ = writeln!(out);
    for line in claim_lines(st) {
        let _ = writeln!(out, "{line}");
    }
    if !examples.is_empty() {
        let _ = writeln!(
            out,
            "\nexample seeds (the lightest intensity that shows each):"
        );
        for e in examples {
            let _ = writeln!(
                out,
                "  {} {} at {}: seed {}\n    replay: {}",
                e.coordinator,
                e.metric.label(),
                fmt_intensity(e.intensity_permille),
                e.seed,
                e.replay
            );
        }
    }
    let _ = writeln!(out, "command: {command}");
    // Wall time on its own line: the tables above are a pure function of the command.
    let runs = st.seeds * (st.points.len() * heavy.coordinators.len()) as u64;
    let _ = writeln!(
        out,
        "took {:.1} s ({} runs, {:.0} runs/s)",
        st.elapsed_s,
        runs,
        if st.elapsed_s > 0.0 {
            runs as f64 / st.elapsed_s
        } else {
            0.0
        }
    );
    if let Some(Ok(path)) = written {
        let _ = writeln!(out, "wrote {}", path.display());
    }
    if json {
        let _ = writeln!(out, "{}", st.json_line());
    }
}
