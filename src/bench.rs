//! `sagasim bench`: how fast the harness searches, measured in one run.
//!
//! Figures: seeds/s of a scenario with faults and every check, on 1 thread
//! and on all cores; the same for an **empty world** (same runtime, same
//! nodes, the same number of request/response messages per seed through the
//! same transport, but no-op handlers, no services, no checks); their ratio
//! (the cost of our models, coordinator and checkers over the bare
//! simulator); simulated seconds per wall second; messages per seed and µs
//! per message (to compare with other simulators per message); and peak RSS
//! sampled over a long run (it must stay flat: nothing may grow per seed).
//!
//! Wall time is measured here, outside every simulation. Benchmarks, not
//! tests: nothing asserts on these numbers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::fuzz::{fuzz, FuzzConfig, SeedResult};
use crate::harness::{reference, run_checked};
use crate::scenario::Scenario;
use crate::sim::{simulate, FaultPlan, Net, World};
use crate::trace::TraceMode;
use crate::world::run::node_names;
use crate::world::run::plan_for;

/// The figures of one bench run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The scenario's name.
    pub scenario: String,
    /// Seeds timed per measurement (seeds `0..seeds`).
    pub seeds: u64,
    /// Threads of the "all jobs" measurements.
    pub jobs: usize,
    /// Scenario seeds per wall second, on `jobs` threads.
    pub seeds_per_s: f64,
    /// Scenario seeds per wall second, on 1 thread.
    pub seeds_per_s_1_thread: f64,
    /// Empty-world seeds per wall second, on `jobs` threads.
    pub baseline_seeds_per_s: f64,
    /// Empty-world seeds per wall second, on 1 thread.
    pub baseline_seeds_per_s_1_thread: f64,
    /// Cost of a real seed over an empty-world seed (1 thread).
    pub ratio: f64,
    /// Requests plus replies per scenario seed (mean over the first 200
    /// seeds at most).
    pub messages_per_seed: f64,
    /// Wall µs per message on 1 thread (a whole seed's time over its
    /// messages, models and checks included).
    pub us_per_message: f64,
    /// Simulated seconds run per wall second, on `jobs` threads.
    pub sim_s_per_wall_s: f64,
    /// Seeds of the RSS run (the seeds after the timed ones).
    pub rss_seeds: u64,
    /// Peak RSS of the process at the end of the RSS run, in MiB (0 where
    /// `/proc/self/status` is not readable).
    pub peak_rss_mib: f64,
    /// Peak RSS after the first tenth of the RSS run (growth shows as a
    /// difference to `peak_rss_mib`).
    pub early_rss_mib: f64,
}

/// Peak resident set size of this process (Linux `VmHWM`), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One empty-world seed: the scenario's nodes; each agent makes its share
/// of `calls` echo calls to the coordinator node. Returns simulated ms.
pub fn empty_world_seed(s: &Scenario, seed: u64, calls: u64) -> u64 {
    let names = node_names(s);
    let agents = u64::from(s.workload.agents).max(1);
    let net_cfg = s.latency.net;
    let (end_ms, _) = simulate(seed, TraceMode::HashOnly, move || async move {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let world = World::new(seed, FaultPlan::default(), &refs, Duration::from_millis(2));
        let net: Net<u64, u64> = Net::new(&world, net_cfg);
        for n in &names[..4] {
            let (net, n2) = (net.clone(), n.clone());
            world.start_node(n, move || {
                net.serve(&n2, Arc::new(|x, _| Box::pin(async move { x })));
                std::future::pending::<()>()
            });
        }
        let done = Arc::new(AtomicU64::new(0));
        for (i, name) in names[4..].iter().enumerate() {
            let share = calls / agents + u64::from((i as u64) < calls % agents);
            let (net, me, done) = (net.clone(), name.clone(), done.clone());
            world.start_node(name, move || {
                let (net, me, done) = (net.clone(), me.clone(), done.clone());
                async move {
                    for k in 0..share {
                        let _ = net
                            .call(&me, "coordinator", k, Duration::from_secs(10))
                            .await;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let total = names.len() as u64 - 4;
        let phases = world
            .run_phases(u64::MAX / 4, 0, 50, move || {
                done.load(Ordering::Relaxed) == total
            })
            .await;
        net.shutdown();
        world.shutdown().await;
        phases.end_ms
    });
    end_ms
}

/// Run the benchmark. `progress` is told what is being measured.
pub fn bench(
    s: &Scenario,
    seeds: u64,
    jobs: usize,
    rss_seeds: u64,
    progress: impl Fn(&str),
) -> BenchReport {
    // Messages and simulated time per seed, from a sample.
    progress("measuring messages per seed");
    let sample = seeds.clamp(1, 200);
    let (mut calls, mut sim_ms) = (0u64, 0u64);
    for seed in 0..sample {
        let c = run_checked(
            s,
            seed,
            &plan_for(s, seed),
            TraceMode::HashOnly,
            reference(),
        );
        calls += c.outcome.net.calls;
        sim_ms += c.outcome.phases.end_ms;
    }
    let messages_per_seed = 2.0 * calls as f64 / sample as f64;
    let calls_per_seed = (calls as f64 / sample as f64).round() as u64;

    // Seeds 0..n on `jobs` threads, as `fuzz` runs them.
    let timed = |name: &str, jobs: usize, n: u64, one: &(dyn Fn(u64) -> SeedResult + Sync)| {
        let cfg = FuzzConfig {
            start: 0,
            seeds: n,
            jobs,
            shard: None,
        };
        fuzz(name, &cfg, one, |_, _| {})
    };
    let real =
        |jobs: usize, n: u64| timed(&s.name, jobs, n, &|seed| crate::harness::fuzz_seed(s, seed));
    let empty = |jobs: usize, n: u64| {
        timed("empty-world", jobs, n, &|seed| {
            empty_world_seed(s, seed, calls_per_seed);
            SeedResult {
                seed,
                trace_hash: 0,
                failure: None,
                skipped: false,
                coverage: Default::default(),
            }
        })
    };
    progress("scenario, 1 thread");
    let one = real(1, seeds);
    progress("scenario, all jobs");
    let all = real(jobs, seeds);
    progress("empty world, 1 thread");
    let base_one = empty(1, seeds);
    progress("empty world, all jobs");
    let base_all = empty(jobs, seeds);

    progress("peak RSS over a long run");
    let early = Mutex::new(0.0f64);
    let tenth = (rss_seeds / 10).max(1);
    let cfg = FuzzConfig {
        start: seeds,
        seeds: rss_seeds,
        jobs,
        shard: None,
    };
    fuzz(
        &s.name,
        &cfg,
        |seed| crate::harness::fuzz_seed(s, seed),
        |done, _| {
            if done == tenth {
                *early.lock().expect("rss") = peak_rss_mib();
            }
        },
    );
    let peak = peak_rss_mib();
    let early_rss_mib = *early.lock().expect("rss");

    let wall_per_seed_1 = 1.0 / one.seeds_per_s.max(f64::MIN_POSITIVE);
    BenchReport {
        scenario: s.name.clone(),
        seeds,
        jobs,
        seeds_per_s: all.seeds_per_s,
        seeds_per_s_1_thread: one.seeds_per_s,
        baseline_seeds_per_s: base_all.seeds_per_s,
        baseline_seeds_per_s_1_thread: base_one.seeds_per_s,
        ratio: base_one.seeds_per_s / one.seeds_per_s.max(f64::MIN_POSITIVE),
        messages_per_seed,
        us_per_message: wall_per_seed_1 * 1e6 / messages_per_seed.max(1.0),
        sim_s_per_wall_s: (sim_ms as f64 / sample as f64 / 1000.0) * all.seeds_per_s,
        rss_seeds,
        peak_rss_mib: peak,
        early_rss_mib,
    }
}
