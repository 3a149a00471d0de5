//! The one integration-test binary: simulation tests of the world, the
//! transport and (later) the coordinator, checkers and scenarios.

// The same allocator as the binary (see src/main.rs): faster simulations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod architecture;
mod blackbox;
mod checkout;
mod cli;
mod compare;
mod determinism;
mod disk;
mod environment;
mod front_door;
mod mutants;
mod props;
mod regressions;
mod report;
mod salesforce;
mod scenarios;
mod stripe;
mod transport;
mod user_workload;
