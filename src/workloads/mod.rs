//! The workloads that ship with sagasim, each a declaration on the
//! workload API (`crate::workload`) — written as a user would write theirs.
//!
//! - [`hotel`]: the hotel checkout (hold a room, charge, record in the CRM,
//!   confirm the room, close the opportunity), and its naive baseline
//!   coordinator.
//!
//! The engine never imports this module; the bundled CLI and tests pick a
//! workload here ([`for_scenario`]).

pub mod hotel;

use std::sync::Arc;

use crate::scenario::Scenario;
use crate::workload::Workload;

/// The bundled workload a scenario file runs: the hotel checkout in the
/// scenario's capture mode.
pub fn for_scenario(s: &Scenario) -> Arc<Workload> {
    Arc::new(
        hotel::hotel_checkout(s.saga.capture.into()).with_variants(Arc::new(|drawn: &Scenario| {
            Arc::new(hotel::hotel_checkout(drawn.saga.capture.into()))
        })),
    )
}
