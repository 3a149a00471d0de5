//! `sagasim compare [SCENARIO] --seeds N --coordinators a,b`: the same seeds
//! against several coordinators, their business metrics side by side, as a
//! table, one JSON line and optionally an HTML page.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::args::{coordinator, fuzz_config, load, BadInput, ScenarioArg, SeedRangeArg};
use crate::fuzz::FuzzConfig;
use crate::metrics::{compare, Comparison};
use crate::scenario::Scenario;
use crate::world::CoordinatorImpl;

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    range: SeedRangeArg,
    /// Coordinators to compare, comma-separated, in column order.
    #[arg(long, default_value = "naive,saga", value_delimiter = ',')]
    coordinators: Vec<String>,
    /// Print one machine-readable line last.
    #[arg(long)]
    json: bool,
    /// Also write the table as a self-contained HTML page into DIR.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
}

pub fn exec(a: CompareArgs) -> Result<ExitCode, BadInput> {
    let CompareArgs {
        scenario,
        range,
        coordinators,
        json,
        html,
    } = a;
    let s = load(&scenario)?;
    let cfg = fuzz_config(&range, None)?;
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
    let c = run_compare(&s, &cfg, &imps, json);
    // The page first, then the terminal (the JSON line last); a bad --html
    // directory still prints the table.
    let written = html.map(|dir| {
        let command = format!(
            "cargo run --release -- compare {} --seeds {seeds} --start {start} --coordinators {}",
            scenario.scenario,
            coordinators.join(",")
        );
        crate::report::compare::write(&c, &command, &dir).map_err(|e| format!("--html {e}"))
    });
    print_comparison(
        &scenario,
        &c,
        seeds,
        start,
        &coordinators,
        json,
        written.as_ref(),
    );
    if let Some(Err(e)) = written {
        errln!("error: {e} (the comparison is above)");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_compare(
    s: &Scenario,
    cfg: &FuzzConfig,
    imps: &[Arc<dyn CoordinatorImpl>],
    json: bool,
) -> Comparison {
    let total = cfg.seed_list().len() as u64;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds  {rate}  eta {eta}",
            )
            .expect("template")
            .with_key("rate", super::fuzz::whole_rate),
        );
        b
    });
    let c = compare(s, cfg, imps, |done| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    c
}

fn print_comparison(
    arg: &ScenarioArg,
    c: &Comparison,
    seeds: u64,
    start: u64,
    names: &[String],
    json: bool,
    written: Option<&Result<PathBuf, String>>,
) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", c.table());
    let _ = writeln!(
        out,
        "command: cargo run --release -- compare {} --seeds {seeds} --start {start} --coordinators {}",
        arg.scenario,
        names.join(",")
    );
    // Wall time on its own line: the table above is a pure function of the command.
    let _ = writeln!(
        out,
        "took {:.1} s ({:.0} runs/s)",
        c.elapsed_s,
        if c.elapsed_s > 0.0 {
            (c.seeds * c.coordinators.len() as u64) as f64 / c.elapsed_s
        } else {
            0.0
        }
    );
    if let Some(Ok(path)) = written {
        let _ = writeln!(out, "wrote {}", path.display());
    }
    if json {
        let _ = writeln!(out, "{}", c.json_line());
    }
}
