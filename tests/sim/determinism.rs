//! Same seed, same trace — alone on a fresh thread or inside a loop on a
//! used thread (DESIGN.md core idea 2: per-thread hash seeds, madsim#240).

use std::collections::BTreeSet;

use sagasim::sim::demo;
use sagasim::trace::TraceMode;

const SEEDS: u64 = 200;
const CLIENTS: usize = 3;
const OPS: usize = 4;

fn hash_of(seed: u64) -> u64 {
    let plan = demo::swarm_plan(seed, CLIENTS);
    let (_, trace) = demo::run(seed, plan, CLIENTS, OPS, TraceMode::HashOnly);
    trace.hash
}

#[test]
fn each_seed_alone_on_a_fresh_thread_equals_all_seeds_in_one_loop() {
    let in_loop: Vec<u64> = std::thread::spawn(|| (0..SEEDS).map(hash_of).collect())
        .join()
        .unwrap();
    let alone: Vec<u64> = (0..SEEDS)
        .map(|seed| std::thread::spawn(move || hash_of(seed)).join().unwrap())
        .collect();
    assert_eq!(in_loop, alone);
}

#[test]
fn different_seeds_give_different_traces() {
    let hashes: BTreeSet<u64> = (0..50).map(hash_of).collect();
    assert_eq!(hashes.len(), 50);
}

#[test]
fn demo_workload_keeps_its_invariant_under_swarm_faults() {
    let mut faulted = 0;
    for seed in 0..50 {
        let plan = demo::swarm_plan(seed, CLIENTS);
        faulted += usize::from(!plan.is_empty());
        let (out, _) = demo::run(seed, plan, CLIENTS, OPS, TraceMode::HashOnly);
        assert!(out.phases.converged, "seed {seed} did not converge");
        let mut keys = BTreeSet::new();
        for a in &out.applied {
            let k = a
                .key
                .clone()
                .expect("demo clients only send keyed deposits");
            assert!(keys.insert(k.clone()), "seed {seed}: {k} applied twice");
        }
        for acked in out.acked.values() {
            for k in acked {
                assert!(keys.contains(k), "seed {seed}: acked {k} is not durable");
            }
        }
    }
    assert!(faulted > 40);
}
