//! Invariant checkers. They read the services' ground truth (the simulated
//! Stripe ledger, Salesforce records, PMS holds and bookings) attributed to
//! business keys, and what each caller was told — never the coordinator's
//! opinion. Only the opt-in `saga-log:*` checks read a coordinator's
//! durable log, and only if it keeps sagasim's.
//!
//! Not here: running anything, or deciding what a scenario allows beyond
//! its `checks` section.

pub mod coverage;
pub mod invariants;
pub mod regression;
pub mod shrink;
pub mod truth;

pub use invariants::{check, check_with, UserInvariant, Verdict, Violation};
