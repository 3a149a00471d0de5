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

use crate::scenario::{CaptureModeName, Scenario};
use crate::workload::Workload;

/// The bundled workload a scenario file runs: the hotel checkout in the
/// scenario's capture mode.
/// The family's members are the capture modes the scenario's seeds may run
/// (`[saga] capture` and those `[swarm] capture` draws).
pub fn for_scenario(s: &Scenario) -> Arc<Workload> {
    let all = [CaptureModeName::Automatic, CaptureModeName::Manual]
        .map(|c| Arc::new(hotel::hotel_checkout(c.into())));
    let drawn: Vec<CaptureModeName> = s.swarm.as_ref().map_or(Vec::new(), |w| w.capture.clone());
    let members = [CaptureModeName::Automatic, CaptureModeName::Manual]
        .iter()
        .zip(&all)
        .filter(|(c, _)| **c == s.saga.capture || drawn.contains(c))
        .map(|(_, w)| w.clone())
        .collect();
    let pick = move |d: &Scenario| match d.saga.capture {
        CaptureModeName::Automatic => all[0].clone(),
        CaptureModeName::Manual => all[1].clone(),
    };
    Arc::new(hotel::hotel_checkout(s.saga.capture.into()).with_variants(Arc::new(pick), members))
}
