//! Same seed, same trace — alone on a fresh thread or inside a loop on a
//! used thread (DESIGN.md core idea 2: per-thread hash seeds, madsim#240).

use std::collections::BTreeSet;

use sagasim::harness::fuzz_seed;
use sagasim::scenario::{default_dir, Scenario};

const SEEDS: u64 = 200;

fn scenario() -> Scenario {
    Scenario::load("hotel-checkout", &default_dir()).unwrap()
}

#[test]
fn each_seed_alone_on_a_fresh_thread_equals_all_seeds_in_one_loop() {
    let s = scenario();
    let in_loop: Vec<u64> = {
        let s = s.clone();
        std::thread::spawn(move || {
            (0..SEEDS)
                .map(|seed| fuzz_seed(&s, seed).trace_hash)
                .collect()
        })
        .join()
        .unwrap()
    };
    let alone: Vec<u64> = (0..SEEDS)
        .map(|seed| {
            let s = s.clone();
            std::thread::spawn(move || fuzz_seed(&s, seed).trace_hash)
                .join()
                .unwrap()
        })
        .collect();
    assert_eq!(in_loop, alone);
}

#[test]
fn different_seeds_give_different_traces() {
    let s = scenario();
    let hashes: BTreeSet<u64> = (0..50).map(|seed| fuzz_seed(&s, seed).trace_hash).collect();
    assert_eq!(hashes.len(), 50);
}
