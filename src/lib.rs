//! sagasim: deterministic simulation and chaos testing for saga-based
//! integrations (work in progress; see ARCHITECTURE.md).

#[cfg(not(madsim))]
compile_error!(
    "sagasim must be built with `--cfg madsim` (set in .cargo/config.toml). \
     A RUSTFLAGS environment variable replaces that setting: use \
     RUSTFLAGS=\"--cfg madsim ...\""
);

pub mod bench;
pub mod check;
pub mod checkout;
pub mod cli;
pub mod fuzz;
pub mod harness;
pub mod metrics;
pub mod report;
pub mod saga;
pub mod scenario;
pub mod services;
pub mod sim;
pub mod trace;
