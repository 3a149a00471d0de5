//! The `sagasim` binary: the allocator and a call into [`sagasim::cli`],
//! where every subcommand lives.

use std::process::ExitCode;

/// mimalloc: a run allocates and frees many small objects (tasks, messages,
/// trace scratch); with glibc malloc this was a quarter of fuzzing time
/// (`perf`, see issue 8's note). Results do not depend on the allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    sagasim::cli::main()
}
