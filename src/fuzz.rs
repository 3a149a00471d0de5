//! The fuzz loop: many seeds, on J threads, each seed its own runtime.
//!
//! Results are collected per seed and reported in seed order, so a summary
//! is independent of `--jobs` and of sharding. Seeds of shard `K/N` are the
//! seeds `s` of the range with `(s - start) % N == K - 1`.
//!
//! Not here: what one seed runs (the caller's closure) or output format
//! beyond the summary (the binary prints).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Which seeds to run and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuzzConfig {
    pub start: u64,
    pub seeds: u64,
    pub jobs: usize,
    /// `(k, n)`: run only shard k of n (1-based).
    pub shard: Option<(u64, u64)>,
}

impl FuzzConfig {
    /// The seeds this configuration runs, in order.
    pub fn seed_list(&self) -> Vec<u64> {
        let (k, n) = self.shard.unwrap_or((1, 1));
        (0..self.seeds)
            .filter(|i| i % n == k - 1)
            .map(|i| self.start + i)
            .collect()
    }
}

/// The verdict of one seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    pub trace_hash: u64,
    /// `None` when every check held; else what failed.
    pub failure: Option<String>,
    /// Not run (`--stop-on-failure` stopped the loop first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Coverage points this seed hit (totalled into the summary).
    #[serde(skip)]
    pub coverage: BTreeMap<String, u64>,
}

/// What a fuzz run found. Serialised, it is the `--json` summary line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FuzzSummary {
    pub scenario: String,
    /// Seeds run (skipped ones excluded).
    pub seeds: u64,
    pub failures: u64,
    pub first_failing_seed: Option<u64>,
    pub elapsed_s: f64,
    pub seeds_per_s: f64,
    /// Every failing seed with its reason, in seed order.
    pub failing: Vec<SeedResult>,
    /// Coverage points: how many seeds hit each.
    #[serde(default)]
    pub coverage: BTreeMap<String, u64>,
}

fn add_coverage(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

/// Call `each(seed)` for every seed on `jobs` threads (a seed goes to the
/// next free worker) and return the wall time it took, in seconds. The
/// worker pool of `fuzz` and of `compare`.
pub fn for_each_seed(seeds: &[u64], jobs: usize, each: impl Fn(u64) + Sync) -> f64 {
    let next = AtomicU64::new(0);
    // Wall time is measured outside every simulation (allowed: not simulated code).
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(i as usize) else {
                    break;
                };
                each(seed);
            });
        }
    });
    started.elapsed().as_secs_f64()
}

/// Run `run_one` for every seed of `cfg` on `cfg.jobs` threads.
/// `progress(done, failures)` is called after each seed.
pub fn fuzz(
    scenario: &str,
    cfg: &FuzzConfig,
    run_one: impl Fn(u64) -> SeedResult + Sync,
    progress: impl Fn(u64, u64) + Sync,
) -> FuzzSummary {
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    // Aggregated as seeds finish: memory stays flat however many seeds run
    // (only failing seeds are kept).
    struct Agg {
        ran: u64,
        failing: Vec<SeedResult>,
        coverage: BTreeMap<String, u64>,
    }
    let agg = Mutex::new(Agg {
        ran: 0,
        failing: Vec::new(),
        coverage: BTreeMap::new(),
    });
    let elapsed_s = for_each_seed(&cfg.seed_list(), cfg.jobs, |seed| {
        let r = run_one(seed);
        if r.failure.is_some() {
            failed.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut a = agg.lock().expect("results");
            if !r.skipped {
                a.ran += 1;
                add_coverage(&mut a.coverage, &r.coverage);
                if r.failure.is_some() {
                    // Totalled above; a failure record carries only its verdict.
                    a.failing.push(SeedResult {
                        coverage: BTreeMap::new(),
                        ..r
                    });
                }
            }
        }
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(d, failed.load(Ordering::Relaxed));
    });
    let Agg {
        ran,
        failing,
        coverage,
    } = agg.into_inner().expect("results");
    FuzzSummary::new(scenario.to_string(), ran, failing, coverage, elapsed_s)
}

fn rate(seeds: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        seeds as f64 / elapsed_s
    } else {
        0.0
    }
}

impl FuzzSummary {
    /// The one machine-readable line `--json` prints last.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).expect("summaries serialise")
    }

    /// Combine shard summaries (same scenario) into one: seeds and failures
    /// add up, failing seeds are merged in seed order, elapsed time is the
    /// longest shard's (shards run side by side).
    pub fn merge(parts: &[FuzzSummary]) -> Result<FuzzSummary, String> {
        let first = parts.first().ok_or("nothing to merge")?;
        if let Some(other) = parts.iter().find(|p| p.scenario != first.scenario) {
            return Err(format!(
                "cannot merge summaries of different scenarios: {} and {}",
                first.scenario, other.scenario
            ));
        }
        let failing: Vec<SeedResult> = parts
            .iter()
            .flat_map(|p| p.failing.iter().cloned())
            .collect();
        let seeds = parts.iter().map(|p| p.seeds).sum();
        let elapsed_s = parts.iter().map(|p| p.elapsed_s).fold(0.0, f64::max);
        let mut coverage = BTreeMap::new();
        for p in parts {
            add_coverage(&mut coverage, &p.coverage);
        }
        Ok(FuzzSummary::new(
            first.scenario.clone(),
            seeds,
            failing,
            coverage,
            elapsed_s,
        ))
    }

    /// A summary from its parts; the failure count, the first failing seed
    /// and the rate are derived (failing seeds are put in seed order, each
    /// once).
    fn new(
        scenario: String,
        seeds: u64,
        mut failing: Vec<SeedResult>,
        coverage: BTreeMap<String, u64>,
        elapsed_s: f64,
    ) -> FuzzSummary {
        failing.sort_by_key(|r| r.seed);
        failing.dedup_by_key(|r| r.seed);
        FuzzSummary {
            scenario,
            seeds,
            failures: failing.len() as u64,
            first_failing_seed: failing.first().map(|r| r.seed),
            elapsed_s,
            seeds_per_s: rate(seeds, elapsed_s),
            failing,
            coverage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_seed_range() {
        let all = FuzzConfig {
            start: 10,
            seeds: 103,
            jobs: 1,
            shard: None,
        };
        let mut union: Vec<u64> = (1..=4)
            .flat_map(|k| {
                FuzzConfig {
                    shard: Some((k, 4)),
                    ..all
                }
                .seed_list()
            })
            .collect();
        union.sort();
        assert_eq!(union, all.seed_list());
        assert_eq!(all.seed_list().first(), Some(&10));
        assert_eq!(all.seed_list().len(), 103);
    }

    #[test]
    fn results_do_not_depend_on_jobs() {
        let run = |seed: u64| SeedResult {
            seed,
            trace_hash: seed * 7,
            failure: (seed % 13 == 0).then(|| format!("bad {seed}")),
            skipped: false,
            coverage: [("odd".to_string(), seed % 2)].into(),
        };
        let cfg = FuzzConfig {
            start: 1,
            seeds: 100,
            jobs: 1,
            shard: None,
        };
        let one = fuzz("t", &cfg, run, |_, _| {});
        let four = fuzz("t", &FuzzConfig { jobs: 4, ..cfg }, run, |_, _| {});
        assert_eq!(one.failing, four.failing);
        assert_eq!(one.first_failing_seed, Some(13));
        assert_eq!(one.failures, 7);

        // Shards merged equal one run.
        let shards: Vec<FuzzSummary> = (1..=3)
            .map(|k| {
                fuzz(
                    "t",
                    &FuzzConfig {
                        shard: Some((k, 3)),
                        ..cfg
                    },
                    run,
                    |_, _| {},
                )
            })
            .collect();
        let merged = FuzzSummary::merge(&shards).unwrap();
        assert_eq!(merged.seeds, one.seeds);
        assert_eq!(merged.failing, one.failing);
        assert_eq!(merged.coverage, one.coverage);
        assert_eq!(one.coverage["odd"], 50);
        let back: FuzzSummary = serde_json::from_str(&merged.json_line()).unwrap();
        assert_eq!(back.failing, merged.failing);
        assert!(FuzzSummary::merge(&[
            one.clone(),
            FuzzSummary {
                scenario: "u".into(),
                ..one
            }
        ])
        .is_err());
    }
}
