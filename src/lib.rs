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

#![warn(missing_docs)]

#[cfg(not(madsim))]
compile_error!(
    "sagasim runs only in madsim's simulation build, and this build lacks \
     `--cfg madsim`.\n\
     In the crate you are building (your own: next to its Cargo.toml, or \
     its workspace's), create `.cargo/config.toml` with\n\n\
     [build]\n\
     rustflags = [\"--cfg\", \"madsim\"]\n\
     rustdocflags = [\"--cfg\", \"madsim\"]\n\n\
     A RUSTFLAGS environment variable replaces that file's rustflags: if you \
     set RUSTFLAGS, add `--cfg madsim` to it."
);

/// madsim, the deterministic runtime every run executes on: its time, RNG
/// and tasks are the simulated ones.
#[cfg(madsim)]
pub use madsim;
/// The JSON values user services and `Field::Param`s carry.
#[cfg(madsim)]
pub use serde_json;
/// tokio as coordinators are written against it: the `madsim-tokio`
/// package, simulated under `--cfg madsim` (`use sagasim::tokio;`).
#[cfg(madsim)]
pub use tokio;
/// The tracing facade the trace is recorded through ([`emit!`] expands to
/// `$crate::tracing::event!`, so a user's crate needs no `tracing`
/// dependency of its own).
#[cfg(madsim)]
pub use tracing;

#[cfg(madsim)]
pub mod bench;
#[cfg(madsim)]
pub mod check;
#[cfg(madsim)]
pub mod cli;
#[cfg(madsim)]
pub mod fuzz;
#[cfg(madsim)]
pub mod harness;
#[cfg(madsim)]
pub mod metrics;
#[cfg(madsim)]
pub mod reference;
#[cfg(madsim)]
pub mod report;
#[cfg(madsim)]
pub mod saga;
#[cfg(madsim)]
pub mod scenario;
#[cfg(madsim)]
pub mod services;
#[cfg(madsim)]
pub mod sim;
#[cfg(madsim)]
pub mod study;
#[cfg(madsim)]
pub mod testing;
#[cfg(madsim)]
pub mod trace;
#[cfg(madsim)]
pub mod workload;
#[cfg(madsim)]
pub mod workloads;
#[cfg(madsim)]
pub mod world;
