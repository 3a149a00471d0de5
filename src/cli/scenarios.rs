//! `sagasim scenarios [--scenarios DIR]`: list the scenarios and their
//! descriptions (an invalid file is listed with its error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::{load_from, BadInput};
use crate::scenario;

#[derive(Args)]
pub struct ScenariosArgs {
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
}

pub fn exec(a: ScenariosArgs) -> Result<ExitCode, BadInput> {
    let dir = a.scenarios.unwrap_or_else(scenario::default_dir);
    if !dir.is_dir() {
        return Err(BadInput(format!("{}: no such directory", dir.display())));
    }
    let names = scenario::list(&dir);
    if names.is_empty() {
        return Err(BadInput(format!(
            "{}: no scenarios (*.toml files) here",
            dir.display()
        )));
    }
    for name in names {
        match load_from(&name, &dir) {
            Ok(s) => outln!("{name:<28} {}", s.description),
            Err(BadInput(e)) => outln!("{name:<28} (invalid: {e})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
