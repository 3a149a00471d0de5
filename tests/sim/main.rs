//! The one integration-test binary: simulation tests of the world, the
//! transport and (later) the coordinator, checkers and scenarios.

mod checkout;
mod compare;
mod determinism;
mod disk;
mod regressions;
mod scenarios;
mod transport;
