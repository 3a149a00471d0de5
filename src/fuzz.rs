//! The fuzz loop: many seeds, on J threads, each seed its own runtime.
//!
//! Results are collected per seed and reported in seed order, so a summary
//! is independent of `--jobs` and of sharding. Seeds of shard `K/N` are the
//! seeds `s` of the range with `(s - start) % N == K - 1`.
//!
//! Not here: what one seed runs (the caller's closure) or output format
//! beyond the summary (the binary prints).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::check::regression::ReplayHandle;
use serde::{Deserialize, Serialize};

/// Version of the `--json` summary line's layout. Bumped when a field
/// changes meaning or goes away; `merge` refuses to mix versions.
///
/// 2: `coverage` holds every entry of the generated catalogue (0 when
/// missed) and the entries hit outside it; `unreachable` names the entries
/// the scenario cannot reach, with why.
pub const SCHEMA_VERSION: u32 = 2;
/// Failing seeds kept in a summary (the lowest ones); the count of
/// failures is always exact. Keeps memory flat when every seed fails.
pub const MAX_KEPT_FAILURES: usize = 10_000;

/// Set by a Ctrl-C (SIGINT/SIGTERM) handler: every seed loop stops handing
/// out seeds and returns what ran so far.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ask every running seed loop to stop after the seeds in progress.
/// Async-signal-safe (one atomic store).
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Which seeds to run and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuzzConfig {
    /// The first seed of the range.
    pub start: u64,
    /// How many seeds the range holds (all shards together);
    /// `start + seeds` must fit in a `u64`.
    pub seeds: u64,
    /// Threads to run seeds on (at least 1 is used, at most one per seed).
    pub jobs: usize,
    /// `(k, n)`: run only shard k of n (1-based).
    pub shard: Option<(u64, u64)>,
}

/// The seeds of one run, as arithmetic: `first + i * step` for `i <
/// count`. Never a list, so any run length takes the same memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeds {
    first: u64,
    step: u64,
    count: u64,
}

impl Seeds {
    /// How many seeds.
    pub fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }

    /// No seed at all (an empty range, or a shard whose index is above
    /// the range's length).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`-th seed (0-based), if there is one.
    pub fn get(&self, i: u64) -> Option<u64> {
        (i < self.count).then(|| self.first + i * self.step)
    }

    /// The seeds in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count).map(|i| self.first + i * self.step)
    }
}

impl FuzzConfig {
    /// The seeds this configuration runs, in order: the seeds `s` of
    /// `start..start + seeds` with `(s - start) % N == K - 1`.
    pub fn seed_list(&self) -> Seeds {
        let (k, n) = self.shard.unwrap_or((1, 1));
        assert!(1 <= k && k <= n, "shard {k}/{n}");
        // start + seeds fits in a u64 (the CLI checks), so every seed does.
        let count = if self.seeds >= k {
            (self.seeds - k) / n + 1
        } else {
            0
        };
        Seeds {
            first: self.start.saturating_add(k - 1),
            step: n,
            count,
        }
    }
}

/// The verdict of one seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The run's trace hash (equal on every replay of the seed; JSON: 16
    /// hex digits).
    #[serde(with = "hex_u64")]
    pub trace_hash: u64,
    /// `None` when every check held; else what failed.
    pub failure: Option<String>,
    /// Not run (`--stop-on-failure` stopped the loop first). The loop hands
    /// out no further seeds after a skipped one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Coverage points this seed hit (totalled into the summary).
    #[serde(skip)]
    pub coverage: BTreeMap<String, u64>,
}

/// A failing seed as the summary and the `--failures` file show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The failing seed.
    pub seed: u64,
    /// The first violated invariant's name (`determinism` for a trace-hash
    /// mismatch).
    pub invariant: String,
    /// The whole one-line verdict.
    pub message: String,
    /// 16 hex digits: JSON numbers above 2^53 lose digits in `jq` and
    /// JavaScript.
    #[serde(with = "hex_u64")]
    pub trace_hash: u64,
    /// The command that replays this seed (filled in by the CLI).
    #[serde(default)]
    pub replay: String,
    /// What replays it anywhere (filled in by the CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<ReplayHandle>,
}

impl Failure {
    fn of(r: &SeedResult) -> Option<Failure> {
        let message = r.failure.clone()?;
        let invariant = message
            .split(|c: char| c.is_whitespace() || c == ':')
            .next()
            .unwrap_or("")
            .to_string();
        Some(Failure {
            seed: r.seed,
            invariant,
            message,
            trace_hash: r.trace_hash,
            replay: String::new(),
            handle: None,
        })
    }
}

/// `u64` as a 16-digit hex string in JSON.
mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

/// Shard `index` of `count` (1-based), as the JSON line shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, 1-based (`1..=count`).
    pub index: u64,
    /// How many shards the range is split into.
    pub count: u64,
}

/// What a fuzz run found. Serialised, it is the `--json` summary line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuzzSummary {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The sagasim version that ran it (`merge` refuses to mix versions).
    pub sagasim_version: String,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario as given on the command line (name or path).
    #[serde(default)]
    pub scenario_path: String,
    /// The coordinator implementation that ran.
    #[serde(default)]
    pub coordinator: String,
    /// The seed range of the whole run, `start .. start + range_seeds`
    /// (of which this shard ran its part).
    pub start: u64,
    /// How many seeds the whole range holds.
    pub range_seeds: u64,
    /// `None`: the whole range.
    pub shard: Option<Shard>,
    /// Threads used (after `merge`: the sum over the shards).
    pub jobs: usize,
    /// Seeds run (skipped ones excluded).
    pub seeds: u64,
    /// Seeds that failed: exact, even beyond [`MAX_KEPT_FAILURES`].
    pub failures: u64,
    /// The lowest failing seed; `None` if every seed passed.
    pub first_failing_seed: Option<u64>,
    /// Stopped by Ctrl-C / SIGTERM before every seed ran.
    pub interrupted: bool,
    /// Wall-clock seconds the seed loop took (after `merge`: the longest
    /// shard's).
    pub elapsed_s: f64,
    /// `seeds / elapsed_s` (0 when no time was measured).
    pub seeds_per_s: f64,
    /// The failing seeds with their reason, in seed order: the lowest
    /// [`MAX_KEPT_FAILURES`] of them (`failures` counts all).
    pub failing: Vec<Failure>,
    /// Coverage entries (`check::coverage::catalogue`): how many seeds hit
    /// each, 0 for one never hit.
    #[serde(default)]
    pub coverage: BTreeMap<String, u64>,
    /// The catalogue entries the scenario cannot reach, each with why
    /// (`check::coverage::unreachable`).
    #[serde(default)]
    pub unreachable: BTreeMap<String, String>,
    /// The catalogue entries the scenario reaches too rarely for its
    /// default budget to be asked to, each with why
    /// (`check::coverage::rare`).
    #[serde(default)]
    pub rare: BTreeMap<String, String>,
}

fn add_coverage(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        match into.get_mut(k) {
            Some(n) => *n += v,
            None => {
                into.insert(k.clone(), *v);
            }
        }
    }
}

/// Call `each(seed)` for every seed on `jobs` threads (a seed goes to the
/// next free worker) and return the wall time it took, in seconds. The
/// worker pool of `fuzz` and of `compare`. Stops handing out seeds once
/// [`interrupt`] was called.
pub fn for_each_seed(seeds: &Seeds, jobs: usize, each: impl Fn(u64) + Sync) -> f64 {
    for_each_seed_until(seeds, jobs, &AtomicBool::new(false), each)
}

/// [`for_each_seed`], also stopping once `halt` is set.
fn for_each_seed_until(
    seeds: &Seeds,
    jobs: usize,
    halt: &AtomicBool,
    each: impl Fn(u64) + Sync,
) -> f64 {
    let next = AtomicU64::new(0);
    // Wall time is measured outside every simulation (allowed: not simulated code).
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, seeds.len().max(1)) {
            scope.spawn(|| loop {
                if interrupted() || halt.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = seeds.get(i) else {
                    break;
                };
                each(seed);
            });
        }
    });
    started.elapsed().as_secs_f64()
}

/// Run `run_one` for every seed of `cfg` on `cfg.jobs` threads.
/// `progress(done, failures)` is called after each seed. A skipped result
/// stops the loop (`--stop-on-failure`), and so does [`interrupt`].
pub fn fuzz(
    scenario: &str,
    cfg: &FuzzConfig,
    run_one: impl Fn(u64) -> SeedResult + Sync,
    progress: impl Fn(u64, u64) + Sync,
) -> FuzzSummary {
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let halt = AtomicBool::new(false);
    // Aggregated as seeds finish: memory stays flat however many seeds run
    // (only the lowest failing seeds are kept).
    struct Agg {
        ran: u64,
        failures: u64,
        failing: Vec<Failure>,
        coverage: BTreeMap<String, u64>,
    }
    let agg = Mutex::new(Agg {
        ran: 0,
        failures: 0,
        failing: Vec::new(),
        coverage: BTreeMap::new(),
    });
    let seeds = cfg.seed_list();
    let elapsed_s = for_each_seed_until(&seeds, cfg.jobs, &halt, |seed| {
        let r = run_one(seed);
        if r.skipped {
            halt.store(true, Ordering::Relaxed);
        }
        if r.failure.is_some() {
            failed.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut a = agg.lock().expect("results");
            if !r.skipped {
                a.ran += 1;
                add_coverage(&mut a.coverage, &r.coverage);
                if let Some(f) = Failure::of(&r) {
                    a.failures += 1;
                    a.failing.push(f);
                    if a.failing.len() >= 2 * MAX_KEPT_FAILURES {
                        keep_lowest(&mut a.failing);
                    }
                }
            }
        }
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(d, failed.load(Ordering::Relaxed));
    });
    let Agg {
        ran,
        failures,
        failing,
        coverage,
    } = agg.into_inner().expect("results");
    let mut summary = FuzzSummary::new(scenario.to_string(), ran, failures, failing, coverage);
    summary.start = cfg.start;
    summary.range_seeds = cfg.seeds;
    summary.shard = cfg.shard.map(|(index, count)| Shard { index, count });
    summary.jobs = cfg.jobs;
    summary.interrupted = interrupted() && ran < seeds.len() as u64;
    summary.set_elapsed(elapsed_s);
    summary
}

/// Sort by seed, drop repeats, keep the lowest [`MAX_KEPT_FAILURES`].
fn keep_lowest(failing: &mut Vec<Failure>) {
    failing.sort_by_key(|f| f.seed);
    failing.dedup_by_key(|f| f.seed);
    failing.truncate(MAX_KEPT_FAILURES);
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

    /// Combine the summaries of the shards of one run, each named by its
    /// file: seeds and failures add up, failing seeds are merged in seed
    /// order, elapsed time is the longest shard's (shards run side by side).
    /// Refuses (saying which) mixed schemas, versions, scenarios,
    /// coordinators or seed ranges, an interrupted shard, and a shard that
    /// is duplicated, overlapping or missing.
    pub fn merge(parts: &[(String, FuzzSummary)]) -> Result<FuzzSummary, String> {
        let (first_file, first) = parts.first().ok_or("nothing to merge")?;
        for (file, p) in parts {
            let same = |what: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
                if a.to_string() == b.to_string() {
                    Ok(())
                } else {
                    Err(format!(
                        "cannot merge: {first_file} has {what} {a}, {file} has {b}"
                    ))
                }
            };
            same("schema", &first.schema, &p.schema)?;
            same(
                "sagasim version",
                &first.sagasim_version,
                &p.sagasim_version,
            )?;
            same("scenario", &first.scenario, &p.scenario)?;
            same("coordinator", &first.coordinator, &p.coordinator)?;
            same("start", &first.start, &p.start)?;
            same("range of seeds", &first.range_seeds, &p.range_seeds)?;
            if p.interrupted {
                return Err(format!(
                    "cannot merge: {file} was interrupted after {} seeds",
                    p.seeds
                ));
            }
        }
        let count_of = |p: &FuzzSummary| p.shard.map_or(1, |s| s.count);
        let count = count_of(first);
        let mut by_index: BTreeMap<u64, &str> = BTreeMap::new();
        for (file, p) in parts {
            let shard = p.shard.unwrap_or(Shard { index: 1, count: 1 });
            if shard.count != count {
                return Err(format!(
                    "cannot merge: shards overlap: {first_file} is one of {count} shards, \
                     {file} is shard {}/{}",
                    shard.index, shard.count
                ));
            }
            if let Some(other) = by_index.insert(shard.index, file) {
                return Err(format!(
                    "cannot merge: shard {}/{count} appears twice ({other} and {file})",
                    shard.index
                ));
            }
        }
        if let Some(missing) = (1..=count).find(|k| !by_index.contains_key(k)) {
            return Err(format!(
                "cannot merge: shard {missing}/{count} is missing ({} of {count} given)",
                by_index.len()
            ));
        }
        let mut failing: Vec<Failure> = parts
            .iter()
            .flat_map(|(_, p)| p.failing.iter().cloned())
            .collect();
        keep_lowest(&mut failing);
        let mut coverage = BTreeMap::new();
        for (_, p) in parts {
            add_coverage(&mut coverage, &p.coverage);
        }
        let mut merged = FuzzSummary::new(
            first.scenario.clone(),
            parts.iter().map(|(_, p)| p.seeds).sum(),
            parts.iter().map(|(_, p)| p.failures).sum(),
            failing,
            coverage,
        );
        merged.scenario_path = first.scenario_path.clone();
        merged.coordinator = first.coordinator.clone();
        // One scenario and coordinator (checked above): the same declarations.
        merged.unreachable = first.unreachable.clone();
        merged.rare = first.rare.clone();
        merged.start = first.start;
        merged.range_seeds = first.range_seeds;
        merged.jobs = parts.iter().map(|(_, p)| p.jobs).sum();
        merged.set_elapsed(parts.iter().map(|(_, p)| p.elapsed_s).fold(0.0, f64::max));
        Ok(merged)
    }

    /// A summary from its parts (failing seeds are put in seed order, each
    /// once); the run's range, shard and jobs are set by the caller.
    fn new(
        scenario: String,
        seeds: u64,
        failures: u64,
        mut failing: Vec<Failure>,
        coverage: BTreeMap<String, u64>,
    ) -> FuzzSummary {
        keep_lowest(&mut failing);
        FuzzSummary {
            schema: SCHEMA_VERSION,
            sagasim_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario,
            scenario_path: String::new(),
            coordinator: String::new(),
            start: 0,
            range_seeds: seeds,
            shard: None,
            jobs: 1,
            seeds,
            failures,
            first_failing_seed: failing.first().map(|f| f.seed),
            interrupted: false,
            elapsed_s: 0.0,
            seeds_per_s: 0.0,
            failing,
            coverage,
            unreachable: BTreeMap::new(),
            rare: BTreeMap::new(),
        }
    }

    /// Put the coverage catalogue in: every entry of `catalogue` is listed
    /// (0 when no seed hit it), and the `unreachable` and `rare`
    /// declarations of those entries are kept with their reasons.
    pub fn with_catalogue(
        &mut self,
        catalogue: &[String],
        unreachable: Vec<(String, String)>,
        rare: Vec<(String, String)>,
    ) {
        for entry in catalogue {
            self.coverage.entry(entry.clone()).or_insert(0);
        }
        let listed = |d: Vec<(String, String)>| -> BTreeMap<String, String> {
            d.into_iter()
                .filter(|(e, _)| catalogue.contains(e))
                .collect()
        };
        self.unreachable = listed(unreachable);
        self.rare = listed(rare);
    }

    fn set_elapsed(&mut self, elapsed_s: f64) {
        self.elapsed_s = elapsed_s;
        self.seeds_per_s = rate(self.seeds, elapsed_s);
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
                .iter()
                .collect::<Vec<_>>()
            })
            .collect();
        union.sort();
        assert_eq!(union, all.seed_list().iter().collect::<Vec<_>>());
        assert_eq!(all.seed_list().get(0), Some(10));
        assert_eq!(all.seed_list().len(), 103);
        // More shards than seeds: the late shards are empty.
        let late = FuzzConfig {
            shard: Some((200, 1000)),
            seeds: 100,
            ..all
        };
        assert!(late.seed_list().is_empty());
    }

    #[test]
    fn the_largest_range_is_arithmetic_not_a_list() {
        let cfg = FuzzConfig {
            start: 0,
            seeds: u64::MAX,
            jobs: 1,
            shard: Some((3, 7)),
        };
        let seeds = cfg.seed_list();
        assert_eq!(seeds.get(0), Some(2));
        assert_eq!(seeds.get(1), Some(9));
        assert_eq!(seeds.len() as u64, (u64::MAX - 3) / 7 + 1);
        assert_eq!(seeds.get(seeds.len() as u64), None);
    }

    fn run(seed: u64) -> SeedResult {
        SeedResult {
            seed,
            trace_hash: seed * 7,
            failure: (seed % 13 == 0).then(|| format!("bad-{seed} at 5 ms: broken")),
            skipped: false,
            coverage: [("odd".to_string(), seed % 2)].into(),
        }
    }

    fn cfg() -> FuzzConfig {
        FuzzConfig {
            start: 1,
            seeds: 100,
            jobs: 1,
            shard: None,
        }
    }

    fn shards(n: u64) -> Vec<(String, FuzzSummary)> {
        (1..=n)
            .map(|k| {
                let c = FuzzConfig {
                    shard: Some((k, n)),
                    ..cfg()
                };
                (format!("s{k}"), fuzz("t", &c, run, |_, _| {}))
            })
            .collect()
    }

    #[test]
    fn results_do_not_depend_on_jobs() {
        let one = fuzz("t", &cfg(), run, |_, _| {});
        let four = fuzz("t", &FuzzConfig { jobs: 4, ..cfg() }, run, |_, _| {});
        assert_eq!(one.failing, four.failing);
        assert_eq!(one.first_failing_seed, Some(13));
        assert_eq!(one.failures, 7);
        assert_eq!(one.failing[0].invariant, "bad-13");

        // Shards merged equal one run.
        let merged = FuzzSummary::merge(&shards(3)).unwrap();
        assert_eq!(merged.seeds, one.seeds);
        assert_eq!(merged.failing, one.failing);
        assert_eq!(merged.coverage, one.coverage);
        assert_eq!(one.coverage["odd"], 50);
        let line = merged.json_line();
        assert!(
            line.contains(r#""trace_hash":"000000000000005b""#),
            "{line}"
        );
        let back: FuzzSummary = serde_json::from_str(&line).unwrap();
        assert_eq!(back.failing, merged.failing);
    }

    #[test]
    fn merge_refuses_duplicated_missing_and_mixed_shards() {
        let s = shards(3);
        let err = |parts: &[(String, FuzzSummary)]| FuzzSummary::merge(parts).unwrap_err();
        let dup = [s[0].clone(), s[0].clone(), s[1].clone(), s[2].clone()];
        assert!(err(&dup).contains("shard 1/3 appears twice (s1 and s1)"));
        assert!(err(&s[..2]).contains("shard 3/3 is missing"));
        let four = shards(4);
        assert!(err(&[s[0].clone(), four[1].clone()]).contains("overlap"));
        let mut other = s[1].clone();
        other.1.scenario = "u".into();
        assert!(err(&[s[0].clone(), other, s[2].clone()]).contains("scenario"));
        let mut old = s[1].clone();
        old.1.sagasim_version = "0.0.1".into();
        assert!(err(&[s[0].clone(), old, s[2].clone()]).contains("sagasim version"));
        let whole = fuzz("t", &cfg(), run, |_, _| {});
        assert!(err(&[("a".into(), whole.clone()), ("b".into(), whole)]).contains("twice"));
    }

    #[test]
    fn a_skipped_seed_stops_the_loop() {
        let stopped = fuzz(
            "t",
            &FuzzConfig {
                seeds: u64::MAX - 1,
                ..cfg()
            },
            |seed| SeedResult {
                skipped: seed > 10,
                ..run(seed)
            },
            |_, _| {},
        );
        assert_eq!(stopped.seeds, 10);
        assert!(!stopped.interrupted);
    }
}
