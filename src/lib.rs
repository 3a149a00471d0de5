//! sagasim: deterministic simulation and chaos testing for saga-based
//! integrations (see ARCHITECTURE.md).
//!
//! The engine — `sim` (world, network, disks, clocks, faults), `services`
//! (Stripe, Salesforce, PMS models), `world` (nodes, callers, the
//! coordinator plug-in point), `check` (black-box invariants, coverage,
//! shrinking), `fuzz`, `report` — runs any saga declared on the
//! [`workload`] API. `reference` is the reference coordinator (runs any
//! declaration); `workloads` holds the bundled ones (the hotel checkout).
//! Arrows run one way: a workload depends on the engine, never the reverse.

#[cfg(not(madsim))]
compile_error!(
    "sagasim must be built with `--cfg madsim` (set in .cargo/config.toml). \
     A RUSTFLAGS environment variable replaces that setting: use \
     RUSTFLAGS=\"--cfg madsim ...\""
);

pub mod bench;
pub mod check;
pub mod cli;
pub mod fuzz;
pub mod harness;
pub mod metrics;
pub mod reference;
pub mod report;
pub mod saga;
pub mod scenario;
pub mod services;
pub mod sim;
pub mod study;
pub mod testing;
pub mod trace;
pub mod workload;
pub mod workloads;
pub mod world;
