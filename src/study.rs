//! The comparison as a study (`sagasim compare`): the same seeds against
//! several coordinators at several **fault intensities**, from a
//! production-like profile (rare faults) to the scenario's full swarm.
//!
//! # Intensity
//!
//! A seed's plan at intensity `p` (per mille) is its full swarm plan
//! (`plan_for`) *thinned*: each fault is kept when a hash of the seed, the
//! fault's kind and its position is below `p` (`sim::rng::mix`). So a
//! point's faults are a subset of every heavier point's, the same seeds
//! meet ever more of the same faults, and 1000 ‰ is exactly the plan that
//! `fuzz` and `replay --seed` run. The default points are 0 (no faults:
//! the ceiling), 1 %, 3 %, 10 %, 30 % and 100 % of the swarm; at 1 % a run
//! of `hotel-checkout` meets a fault or two, most of them a single lost or
//! delayed message — a production day, not an incident.
//!
//! # The article's claim
//!
//! `Study::claim` finds the heaviest point at which a coordinator keeps
//! the seed article's "94% success rates with 2–4 second response times":
//! verified success of the checkouts that could succeed ≥ 94 % and the
//! agent's p50 latency ≤ 4 s (raw success is bounded by the ceiling —
//! 75 % in the default scenario — so the raw rate is reported, not judged).
//!
//! Determinism: every run is a pure function of (scenario, seed, thinned
//! plan, coordinator); aggregates are order-independent sums, so the study
//! does not depend on `--jobs`. Wall time is only in [`Study::elapsed_s`].
//!
//! Not here: rendering (`report::compare`), printing (`cli::compare`), the
//! metric definitions (`metrics`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::check::UserInvariant;
use crate::fuzz::{for_each_seed, FuzzConfig};
use crate::harness::run_checked_with;
use crate::metrics::{Aggregate, FailingMetric, RunMetrics};
use crate::scenario::Scenario;
use crate::sim::rng::mix;
use crate::sim::FaultPlan;
use crate::trace::TraceMode;
use crate::workload::Workload;
use crate::world::run::{plan_for, plan_for_with, user_services};
use crate::world::CoordinatorImpl;

/// The default intensities, per mille of the scenario's swarm.
pub const DEFAULT_INTENSITIES_PERMILLE: [u32; 6] = [0, 10, 30, 100, 300, 1000];

/// Most intensity points a study takes (each costs a full pass of seeds).
pub const MAX_POINTS: usize = 12;

/// The article's success rate, in per mille of the checkouts that could
/// succeed.
pub const CLAIM_SUCCESS_PERMILLE: u64 = 940;

/// The article's response time: p50 at most this, in ms.
pub const CLAIM_P50_MAX_MS: u64 = 4_000;

/// `plan` kept at `permille` of its faults for `seed` (see the module doc);
/// 1000 keeps every fault, 0 none.
pub fn thin(plan: &FaultPlan, seed: u64, permille: u32) -> FaultPlan {
    assert!(permille <= 1000, "intensity {permille} ‰ is above 1000");
    if permille >= 1000 {
        return plan.clone();
    }
    let keep =
        |kind: u64, i: usize| mix(seed, &[0x7417, kind, i as u64]) % 1000 < u64::from(permille);
    fn filtered<T: Clone>(v: &[T], kind: u64, keep: &impl Fn(u64, usize) -> bool) -> Vec<T> {
        v.iter()
            .enumerate()
            .filter(|(i, _)| keep(kind, *i))
            .map(|(_, f)| f.clone())
            .collect()
    }
    let thinned = FaultPlan {
        calls: filtered(&plan.calls, 0, &keep),
        crashes: filtered(&plan.crashes, 1, &keep),
        pauses: filtered(&plan.pauses, 2, &keep),
        partitions: filtered(&plan.partitions, 3, &keep),
        brownouts: filtered(&plan.brownouts, 4, &keep),
        clocks: filtered(&plan.clocks, 5, &keep),
        search_lags: filtered(&plan.search_lags, 6, &keep),
        events: filtered(&plan.events, 7, &keep),
        // The workload is not a fault: every intensity runs the same one.
        workload: plan.workload.clone(),
    };
    debug_assert!(thinned.len() <= plan.len());
    thinned
}

/// The plan `seed` runs at `permille` in scenario `s`.
pub fn plan_at(s: &Scenario, seed: u64, permille: u32) -> FaultPlan {
    thin(&plan_for(s, seed), seed, permille)
}

/// One intensity of a study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Per mille of the swarm's faults kept.
    pub intensity_permille: u32,
    /// Faults per run, on average over the seeds (the same for every
    /// coordinator: the plans are).
    pub faults_per_run: f64,
    /// One aggregate per coordinator, in the study's order.
    pub coordinators: Vec<Aggregate>,
}

/// Where a coordinator keeps the article's claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The coordinator judged.
    pub coordinator: String,
    /// The heaviest intensity (‰) at which it holds, with every lighter
    /// point holding too; `None` if it fails at the lightest.
    pub holds_up_to_permille: Option<u32>,
    /// Faults per run at that point.
    pub faults_per_run: Option<f64>,
    /// The lightest intensity at which it fails, if any.
    pub fails_at_permille: Option<u32>,
}

/// The study: points in rising intensity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Study {
    /// The scenario's name.
    pub scenario: String,
    /// First seed.
    pub start: u64,
    /// Seeds per point (the same seeds at every point).
    pub seeds: u64,
    /// The points, lightest first.
    pub points: Vec<Point>,
    /// Each coordinator's standing against the article's claim.
    pub claims: Vec<Claim>,
    /// Wall time of the whole study (never on a page or in a table).
    pub elapsed_s: f64,
}

impl Point {
    /// This point's aggregate of `coordinator`.
    pub fn of(&self, coordinator: &str) -> Option<&Aggregate> {
        self.coordinators
            .iter()
            .find(|a| a.coordinator == coordinator)
    }
}

/// Whether `a` keeps the article's claim (see the module doc).
pub fn keeps_claim(a: &Aggregate) -> bool {
    a.could_succeed > 0
        && a.completed_verified * 1000 >= CLAIM_SUCCESS_PERMILLE * a.could_succeed
        && a.latency_p50_ms.is_some_and(|p| p <= CLAIM_P50_MAX_MS)
}

impl Study {
    /// The coordinators' names, in column order.
    pub fn coordinator_names(&self) -> Vec<String> {
        self.points
            .first()
            .map(|p| {
                p.coordinators
                    .iter()
                    .map(|a| a.coordinator.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The heaviest point (the scenario's own swarm when 1000 ‰ is in).
    pub fn heaviest(&self) -> &Point {
        self.points.last().expect("a study has points")
    }

    /// The lightest point at which `coordinator` shows `metric`, with its
    /// example seed.
    pub fn example(&self, coordinator: &str, metric: FailingMetric) -> Option<(u32, u64)> {
        self.points.iter().find_map(|p| {
            let seed = p.of(coordinator)?.examples.get(&metric)?;
            Some((p.intensity_permille, *seed))
        })
    }

    /// One machine-readable line (the points, the claims).
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).expect("studies serialise")
    }

    fn claim(points: &[Point], coordinator: &str) -> Claim {
        let mut c = Claim {
            coordinator: coordinator.to_string(),
            holds_up_to_permille: None,
            faults_per_run: None,
            fails_at_permille: None,
        };
        for p in points {
            match p.of(coordinator) {
                Some(a) if keeps_claim(a) => {
                    c.holds_up_to_permille = Some(p.intensity_permille);
                    c.faults_per_run = Some(p.faults_per_run);
                }
                _ => {
                    c.fails_at_permille = Some(p.intensity_permille);
                    break;
                }
            }
        }
        c
    }
}

/// Run every seed of `cfg` at each intensity (‰, rising, at most
/// [`MAX_POINTS`]) against each coordinator, on `cfg.jobs` threads.
/// `progress(done)` is called after each seed (all its points).
pub fn study(
    s: &Scenario,
    cfg: &FuzzConfig,
    coordinators: &[Arc<dyn CoordinatorImpl>],
    intensities_permille: &[u32],
    progress: impl Fn(u64) + Sync,
) -> Study {
    let workload = crate::workloads::for_scenario(s);
    study_with(
        s,
        &workload,
        &[],
        cfg,
        coordinators,
        intensities_permille,
        progress,
    )
}

/// [`study`] of a workload of your own, judged with your invariants too
/// (its user services in the plans' reach, as `fuzz` runs it).
pub fn study_with(
    s: &Scenario,
    workload: &Arc<Workload>,
    invariants: &[UserInvariant],
    cfg: &FuzzConfig,
    coordinators: &[Arc<dyn CoordinatorImpl>],
    intensities_permille: &[u32],
    progress: impl Fn(u64) + Sync,
) -> Study {
    let extra = user_services(workload);
    assert!(!coordinators.is_empty(), "nothing to compare");
    assert!(
        !intensities_permille.is_empty() && intensities_permille.len() <= MAX_POINTS,
        "1..={MAX_POINTS} intensities"
    );
    assert!(
        intensities_permille.windows(2).all(|w| w[0] < w[1]),
        "intensities rise"
    );
    let seeds = cfg.seed_list();
    let done = AtomicU64::new(0);
    let blank = || -> Vec<Aggregate> {
        coordinators
            .iter()
            .map(|imp| Aggregate::new(imp.name()))
            .collect()
    };
    // Per point: the aggregates and the faults summed over seeds.
    let acc: Mutex<Vec<(Vec<Aggregate>, u64)>> =
        Mutex::new(intensities_permille.iter().map(|_| (blank(), 0)).collect());
    let elapsed_s = for_each_seed(&seeds, cfg.jobs, |seed| {
        let full = plan_for_with(s, &extra, seed);
        let per: Vec<(Vec<RunMetrics>, u64)> = intensities_permille
            .iter()
            .map(|p| {
                let plan = thin(&full, seed, *p);
                let runs = coordinators
                    .iter()
                    .map(|imp| {
                        let mode = TraceMode::HashOnly;
                        let c = run_checked_with(
                            s,
                            workload,
                            invariants,
                            seed,
                            &plan,
                            mode,
                            imp.clone(),
                        );
                        RunMetrics::of(&c.outcome, &c.verdict).with_ceiling(s, &c.outcome)
                    })
                    .collect();
                (runs, plan.len() as u64)
            })
            .collect();
        let mut all = acc.lock().expect("study");
        for ((aggs, faults), (runs, n)) in all.iter_mut().zip(&per) {
            *faults += n;
            for (a, r) in aggs.iter_mut().zip(runs) {
                a.add(r);
            }
        }
        drop(all);
        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
    });
    let n = seeds.len() as u64;
    let points: Vec<Point> = acc
        .into_inner()
        .expect("study")
        .into_iter()
        .zip(intensities_permille)
        .map(|((mut aggs, faults), p)| {
            for a in &mut aggs {
                a.finish();
            }
            Point {
                intensity_permille: *p,
                faults_per_run: if n == 0 {
                    0.0
                } else {
                    faults as f64 / n as f64
                },
                coordinators: aggs,
            }
        })
        .collect();
    let claims = coordinators
        .iter()
        .map(|imp| Study::claim(&points, imp.name()))
        .collect();
    Study {
        scenario: s.name.clone(),
        start: cfg.start,
        seeds: n,
        points,
        claims,
        elapsed_s,
    }
}

/// `part` of `whole` as `12.3 %` (`-` of nothing).
pub fn fmt_pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

/// Milliseconds as seconds with one decimal, `3.7 s` (`-` for none).
pub fn fmt_secs(ms: Option<u64>) -> String {
    ms.map_or("-".into(), |v| format!("{:.1} s", v as f64 / 1000.0))
}

/// `permille` as people read it: `0 %`, `1 %`, `0.5 %`, `100 %`.
pub fn fmt_intensity(permille: u32) -> String {
    if permille % 10 == 0 {
        format!("{} %", permille / 10)
    } else {
        format!("{}.{} %", permille / 10, permille % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::default_dir;

    #[test]
    fn thinning_nests_and_ends_at_the_full_plan() {
        let s = Scenario::load("hotel-checkout", &default_dir()).unwrap();
        let mut seen_some = false;
        for seed in 0..40 {
            let full = plan_for(&s, seed);
            assert_eq!(thin(&full, seed, 1000), full);
            assert!(thin(&full, seed, 0).is_empty());
            let light = thin(&full, seed, 100);
            let heavy = thin(&full, seed, 300);
            assert!(light.len() <= heavy.len() && heavy.len() <= full.len());
            // Nested: every fault of the lighter plan is in the heavier.
            assert!(light.calls.iter().all(|f| heavy.calls.contains(f)));
            assert!(light.crashes.iter().all(|f| heavy.crashes.contains(f)));
            seen_some |= light.len() < heavy.len();
            assert_eq!(plan_at(&s, seed, 300), heavy, "a pure function");
        }
        assert!(seen_some, "thinning removed nothing in 40 seeds");
    }

    #[test]
    fn intensities_print_as_percent() {
        assert_eq!(fmt_intensity(0), "0 %");
        assert_eq!(fmt_intensity(10), "1 %");
        assert_eq!(fmt_intensity(5), "0.5 %");
        assert_eq!(fmt_intensity(1000), "100 %");
    }
}
