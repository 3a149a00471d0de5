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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::scenario::{CaptureModeName, Scenario};
use crate::workload::Workload;

/// The bundled workload a scenario file runs: the hotel checkout in the
/// scenario's capture mode.
/// The family's members are the capture modes the scenario's seeds may run
/// (`[saga] capture` and those `[swarm] capture` draws). Built once per
/// combination and shared: fuzz asks for it every seed, and building the
/// hotel checkout's definitions cost about 2 % of a seed.
pub fn for_scenario(s: &Scenario) -> Arc<Workload> {
    type Families = BTreeMap<(CaptureModeName, bool, bool), Arc<Workload>>;
    static FAMILIES: Mutex<Families> = Mutex::new(BTreeMap::new());
    let drawn: &[CaptureModeName] = s.swarm.as_ref().map_or(&[], |w| &w.capture);
    let wanted = |c: CaptureModeName| s.saga.capture == c || drawn.contains(&c);
    let key = (
        s.saga.capture,
        wanted(CaptureModeName::Automatic),
        wanted(CaptureModeName::Manual),
    );
    let mut families = FAMILIES.lock().unwrap_or_else(|e| e.into_inner());
    families
        .entry(key)
        .or_insert_with(|| family(s, &wanted))
        .clone()
}

fn family(s: &Scenario, wanted: &dyn Fn(CaptureModeName) -> bool) -> Arc<Workload> {
    let all = [CaptureModeName::Automatic, CaptureModeName::Manual]
        .map(|c| Arc::new(hotel::hotel_checkout(c.into())));
    let members = [CaptureModeName::Automatic, CaptureModeName::Manual]
        .iter()
        .zip(&all)
        .filter(|(c, _)| wanted(**c))
        .map(|(_, w)| w.clone())
        .collect();
    let pick = move |d: &Scenario| match d.saga.capture {
        CaptureModeName::Automatic => all[0].clone(),
        CaptureModeName::Manual => all[1].clone(),
    };
    Arc::new(hotel::hotel_checkout(s.saga.capture.into()).with_variants(Arc::new(pick), members))
}
