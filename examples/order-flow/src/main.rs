//! The order flow's own `sagasim` CLI: the same subcommands, knowing this
//! crate's coordinators (`--coordinator careful|hasty`), running its
//! workload, judging with its invariant too.
//!
//! ```sh
//! cargo run --release -- fuzz scenarios/order-flow.toml --coordinator hasty --seeds 500 --json
//! ```

use std::process::ExitCode;

use order_flow::{ship_after_authorize, workload, Careful, Hasty};
use sagasim::cli::Registry;

fn main() -> ExitCode {
    sagasim::cli::main_with(
        Registry::new()
            .coordinator(Careful)
            .coordinator(Hasty)
            .workload(workload())
            .invariant(ship_after_authorize()),
    )
}
