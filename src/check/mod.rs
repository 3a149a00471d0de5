//! Invariant checkers. They read the services' ground truth (the simulated
//! Stripe ledger, Salesforce records, PMS holds and bookings), the
//! coordinator's *durable* log and the agents' records — never the
//! coordinator's in-memory opinion.
//!
//! Not here: running anything, or deciding what a scenario allows beyond
//! its `checks` section.

pub mod coverage;
pub mod invariants;
pub mod regression;
pub mod shrink;

pub use invariants::{check, Verdict, Violation};
