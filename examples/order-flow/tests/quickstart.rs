//! The smallest fuzz test of a saga of your own (README: "Use sagasim from
//! your own crate").
use std::path::Path;
use std::sync::Arc;

use order_flow::{ship_after_authorize, workload, Careful};
use sagasim::scenario::Scenario;
use sagasim::testing::FuzzTest;

#[test]
fn the_careful_coordinator_holds_every_invariant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let scenario = Scenario::load("order-flow", &dir).expect("a valid scenario");
    // Committed regressions first, then seeds 0..300. SAGASIM_SEED=N runs one
    // seed, SAGASIM_SEEDS=N more, SAGASIM_CHECK_DETERMINISM=1 each twice.
    FuzzTest::new(scenario, workload(), Arc::new(Careful))
        .invariant(ship_after_authorize())
        .seeds(300)
        .run();
}
