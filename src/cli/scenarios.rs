//! `sagasim scenarios [--scenarios DIR]`: list the scenarios and their
//! descriptions (an invalid file is listed with its error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::BadInput;
use crate::scenario::{self, Scenario};

#[derive(Args)]
pub struct ScenariosArgs {
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
}

pub fn exec(a: ScenariosArgs) -> Result<ExitCode, BadInput> {
    let dir = a.scenarios.unwrap_or_else(scenario::default_dir);
    for name in scenario::list(&dir) {
        match Scenario::load(&name, &dir) {
            Ok(s) => println!("{name:<28} {}", s.description),
            Err(e) => println!("{name:<28} (invalid: {e})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
