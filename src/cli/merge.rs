//! `sagasim merge FILE...`: combine the `fuzz --json` summary lines of
//! sharded runs into the totals and failures of one run, refusing shards
//! that are duplicated, overlapping, missing, interrupted or of another
//! version, scenario or seed range (exit 2, saying which).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::{read_bounded, verdict_exit, BadInput};
use crate::fuzz::FuzzSummary;

#[derive(Args)]
pub struct MergeArgs {
    /// Files holding `fuzz --json` output (the last JSON line counts).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn exec(a: MergeArgs) -> Result<ExitCode, BadInput> {
    let mut parts = Vec::new();
    for f in &a.files {
        let shown = f.display().to_string();
        let text = read_bounded(f)?;
        let line = text
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .ok_or_else(|| BadInput(format!("{shown}: no JSON summary line")))?;
        let part: FuzzSummary = serde_json::from_str(line)
            .map_err(|e| BadInput(format!("{shown}: not a fuzz --json summary: {e}")))?;
        parts.push((shown, part));
    }
    let merged = FuzzSummary::merge(&parts).map_err(BadInput)?;
    super::fuzz::print_failures(&merged);
    outln!(
        "{}: {} seeds, {} failures (merged from {} shards)",
        merged.scenario,
        merged.seeds,
        merged.failures,
        parts.len()
    );
    outln!("{}", merged.json_line());
    Ok(verdict_exit(merged.failures == 0))
}
