//! The `sagasim` command line, one file per subcommand (the way cargo keeps
//! `src/bin/cargo/commands/*.rs`), with the shared argument helpers in
//! `args.rs`. `src/main.rs` only sets the allocator and calls [`main`].
//!
//! Exit codes: 0 every invariant held; 1 an invariant failed (the seed,
//! the invariant and a replay command are printed); 2 bad input (one clear
//! line: unknown scenario, malformed TOML or JSON, bad shard, seed range).
//! No panic on user input.
//!
//! Not here: what a run does (`harness`, `checkout`), how seeds are spread
//! over threads (`fuzz`), how a report looks (`report`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that never panics: a closed stdout (`sagasim fuzz | head`,
/// a broken pipe) drops the rest of the output and the exit code stays the
/// run's.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that never panics on a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod args;
mod bench;
mod compare;
mod fuzz;
mod merge;
pub mod registry;
mod replay;
mod report;
mod run;
mod scenarios;
mod shrink;

pub use args::BadInput;
pub use registry::Registry;

#[derive(Parser)]
#[command(
    name = "sagasim",
    version,
    about = "Deterministic simulation and chaos testing for saga-based integrations",
    after_help = "Default scenario: hotel-checkout. Scenarios are TOML files in ./scenarios \
                  (or give a path ending in .toml)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed: verdict, trace hash, and the trace (`--quiet`: no trace).
    Run(run::RunArgs),
    /// Run many seeds in parallel and summarise.
    Fuzz(fuzz::FuzzArgs),
    /// Re-run a seed or a plan file bit-for-bit and print the full trace.
    Replay(replay::ReplayArgs),
    /// Shrink a failing seed's fault plan and save it as a regression.
    Shrink(shrink::ShrinkArgs),
    /// Measure seeds/s (1 thread and all), the empty-world baseline, the
    /// ratio, messages per seed, µs per message, sim s per wall s, peak RSS.
    Bench(bench::BenchArgs),
    /// Write an HTML timeline report and a markdown summary of one run.
    Report(report::ReportArgs),
    /// Run the same seeds (the same fault plans) against several
    /// coordinators and print their business metrics side by side.
    /// Exit code 0 once the comparison ran (failing runs are its data).
    Compare(compare::CompareArgs),
    /// Merge the JSON summary lines of sharded fuzz runs into one.
    Merge(merge::MergeArgs),
    /// List the scenarios.
    Scenarios(scenarios::ScenariosArgs),
}

/// The whole command line: parse `std::env::args`, run, return the exit code.
pub fn main() -> ExitCode {
    main_with(registry::Registry::new())
}

/// The whole CLI in a binary of your own: `run`, `fuzz`, `replay`,
/// `shrink`, `report` and `compare --coordinators` know your coordinators
/// (`--coordinator NAME`), and every scenario runs your workload, judged
/// with your invariants too.
///
/// ```no_run
/// # struct Mine;
/// # impl sagasim::world::CoordinatorImpl for Mine {
/// #     fn name(&self) -> &'static str { "mine" }
/// #     fn boot(&self, _: sagasim::world::CoordinatorEnv) -> std::sync::Arc<dyn sagasim::world::SagaService> { unimplemented!() }
/// # }
/// fn main() -> std::process::ExitCode {
///     sagasim::cli::main_with(sagasim::cli::Registry::new().coordinator(Mine))
/// }
/// ```
pub fn main_with(registry: Registry) -> ExitCode {
    registry::install(registry);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            errln!("{} (see sagasim --help)", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(BadInput(msg)) => {
            errln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Clap's message as one line, not a page of usage: its first line, and
/// when that ends in a colon ("the following required arguments were not
/// provided:"), the lines it introduces (the arguments' names).
fn one_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut line = lines.next().unwrap_or("bad usage").to_string();
    if line.ends_with(':') {
        for more in lines.take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more")) {
            line.push(' ');
            line.push_str(more);
        }
    }
    line
}

fn dispatch(command: Command) -> Result<ExitCode, BadInput> {
    match command {
        Command::Run(a) => run::exec(a),
        Command::Fuzz(a) => fuzz::exec(a),
        Command::Replay(a) => replay::exec(a),
        Command::Shrink(a) => shrink::exec(a),
        Command::Bench(a) => bench::exec(a),
        Command::Report(a) => report::exec(a),
        Command::Compare(a) => compare::exec(a),
        Command::Merge(a) => merge::exec(a),
        Command::Scenarios(a) => scenarios::exec(a),
    }
}
