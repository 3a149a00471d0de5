//! The `cargo test` entry point: fuzz a workload with a coordinator,
//! deterministically, in the habits of `#[madsim::test]` and proptest.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn scenario() -> sagasim::scenario::Scenario { unimplemented!() }
//! # fn workload() -> Arc<sagasim::workload::Workload> { unimplemented!() }
//! #[test]
//! fn my_saga_holds_under_faults() {
//!     sagasim::testing::FuzzTest::new(scenario(), workload(), sagasim::harness::reference())
//!         .seeds(300)
//!         .run(); // panics with the invariant, the seed and how to replay it
//! }
//! ```
//!
//! - **Regressions first**, as proptest replays its persisted failures: every
//!   `*.json` in the regressions directory (default `tests/regressions/`
//!   under the crate being tested) whose workload and coordinator match runs
//!   before any new seed.
//! - **Environment**: `SAGASIM_SEED=N` runs seed N only; `SAGASIM_SEEDS=N`
//!   runs N seeds (0..N); `SAGASIM_CHECK_DETERMINISM=1` runs every seed
//!   twice and requires the same trace hash.
//! - **On failure**: the plan is shrunk to the faults that still break the
//!   same invariant and written as a new regression file (never over an
//!   existing one); the panic message names the invariant, the seed, the
//!   file and the command that replays the seed.
//!
//! Not here: the CLI, long fuzzing (that is `sagasim fuzz`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::regression::Regression;
use crate::check::{UserInvariant, Violation};
use crate::harness::{run_checked_with, shrink_to_with};
use crate::scenario::Scenario;
use crate::sim::FaultPlan;
use crate::trace::TraceMode;
use crate::workload::Workload;
use crate::world::run::{check_plan_with, plan_for_with, user_services};
use crate::world::CoordinatorImpl;

/// Seeds a test runs when neither the test nor `SAGASIM_SEEDS` says.
pub const DEFAULT_SEEDS: u64 = 100;
/// Most seeds one test may run (`SAGASIM_SEEDS` above it is refused): long
/// fuzzing belongs in `sagasim fuzz`.
pub const SEEDS_MAX: u64 = 1_000_000;

/// A fuzz test of one workload with one coordinator.
///
/// The bundled hotel checkout with the reference coordinator, over a
/// handful of seeds (a test of your own would run a few hundred):
///
/// ```rust
/// use sagasim::harness::reference;
/// use sagasim::scenario::{default_dir, Scenario};
/// use sagasim::testing::FuzzTest;
///
/// let scenario = Scenario::load("hotel-checkout", &default_dir())?;
/// let workload = sagasim::workloads::for_scenario(&scenario);
/// let passed = FuzzTest::new(scenario, workload, reference())
///     .seeds(4)
///     .run(); // on a failure: panics with the invariant, seed and replay command
/// println!(
///     "{} regression(s) and {} seed(s) passed",
///     passed.regressions, passed.seeds
/// );
/// # Ok::<(), sagasim::scenario::ScenarioError>(())
/// ```
///
/// [`FuzzTest::check`] returns the [`Failure`] instead of panicking, for a
/// test that expects one.
pub struct FuzzTest {
    scenario: Scenario,
    workload: Arc<Workload>,
    coordinator: Arc<dyn CoordinatorImpl>,
    invariants: Vec<UserInvariant>,
    seeds: u64,
    regressions: PathBuf,
    write_regressions: bool,
}

/// What a passing test ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    /// Committed regression files replayed (those of this scenario,
    /// workload and coordinator).
    pub regressions: usize,
    /// New seeds fuzzed.
    pub seeds: u64,
    /// Whether each seed ran twice with equal trace hashes
    /// (`SAGASIM_CHECK_DETERMINISM`).
    pub determinism_checked: bool,
}

/// Why a fuzz test failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The failing seed (the replay command's `SAGASIM_SEED`).
    pub seed: u64,
    /// The first violation (safety first); `determinism` for a
    /// trace-hash mismatch.
    pub violation: Violation,
    /// The regression file it failed on, or the one written for it.
    pub regression: Option<PathBuf>,
    /// Faults left after shrinking (of how many); `None` when nothing was
    /// shrunk (a committed regression or a determinism mismatch failed, or
    /// the same invariant did not break again on a rerun).
    pub shrunk: Option<(usize, usize)>,
    /// The workload's name.
    pub workload: String,
    /// The coordinator's name.
    pub coordinator: String,
    /// Set when the failure is a determinism mismatch, not an invariant.
    pub nondeterministic: bool,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sagasim: {} with {} failed at seed {}: {}",
            self.workload, self.coordinator, self.seed, self.violation
        )?;
        if let Some((small, of)) = self.shrunk {
            writeln!(f, "  shrunk the fault plan from {of} to {small} faults")?;
        }
        if let Some(path) = &self.regression {
            writeln!(f, "  regression: {}", path.display())?;
        }
        write!(
            f,
            "  replay: SAGASIM_SEED={} cargo test --release",
            self.seed
        )
    }
}

/// A bad environment variable.
fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a whole number"),
    }
}

impl FuzzTest {
    /// A test of `workload` under `scenario` with `coordinator`.
    pub fn new(
        scenario: Scenario,
        workload: Arc<Workload>,
        coordinator: Arc<dyn CoordinatorImpl>,
    ) -> FuzzTest {
        let dir = std::env::var("CARGO_MANIFEST_DIR").map_or_else(
            |_| PathBuf::from("tests/regressions"),
            |d| Path::new(&d).join("tests/regressions"),
        );
        FuzzTest {
            scenario,
            workload,
            coordinator,
            invariants: Vec::new(),
            seeds: DEFAULT_SEEDS,
            regressions: dir,
            write_regressions: true,
        }
    }

    /// Add an invariant of your own.
    pub fn invariant(mut self, inv: UserInvariant) -> FuzzTest {
        self.invariants.push(inv);
        self
    }

    /// How many seeds (0..n) to fuzz; `SAGASIM_SEEDS` overrides it.
    pub fn seeds(mut self, n: u64) -> FuzzTest {
        self.seeds = n;
        self
    }

    /// Where regression files live (read first, written on failure).
    pub fn regressions(mut self, dir: impl Into<PathBuf>) -> FuzzTest {
        self.regressions = dir.into();
        self
    }

    /// Do not write a regression file on failure (for tests that expect
    /// one).
    pub fn without_writing_regressions(mut self) -> FuzzTest {
        self.write_regressions = false;
        self
    }

    /// Run; panic with the failure (invariant, seed, regression file,
    /// replay command) if there is one.
    pub fn run(self) -> Passed {
        match self.check() {
            Ok(p) => p,
            Err(f) => panic!("{f}"),
        }
    }

    fn run_one(&self, seed: u64, plan: &FaultPlan) -> (Option<Violation>, u64) {
        let c = run_checked_with(
            &self.scenario,
            &self.workload,
            &self.invariants,
            seed,
            plan,
            TraceMode::HashOnly,
            self.coordinator.clone(),
        );
        (c.verdict.first().cloned(), c.trace.hash)
    }

    fn failure(&self, seed: u64, violation: Violation) -> Failure {
        Failure {
            seed,
            violation,
            regression: None,
            shrunk: None,
            workload: self.workload.name().to_string(),
            coordinator: self.coordinator.name().to_string(),
            nondeterministic: false,
        }
    }

    /// The committed regressions of this scenario, workload and
    /// coordinator. A file that does not read, or whose plan names nodes
    /// or links this world does not have, fails the test with its path.
    fn committed(&self) -> Vec<(PathBuf, Regression)> {
        let extra = user_services(&self.workload);
        let bundled = crate::workloads::for_scenario(&self.scenario);
        let Ok(entries) = std::fs::read_dir(&self.regressions) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|p| {
                let r = Regression::load(&p).unwrap_or_else(|e| panic!("{e}"));
                // A file that names no workload or coordinator was written
                // for the scenario's bundled workload and the reference.
                let h = r.handle(&p, bundled.name());
                let mine = h.workload == self.workload.name()
                    && h.coordinator == self.coordinator.name()
                    && h.scenario == self.scenario.name;
                if mine {
                    check_plan_with(&self.scenario, &extra, &r.plan)
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                }
                mine.then_some((p, r))
            })
            .collect()
    }

    /// Run; the failure, if any, instead of a panic.
    pub fn check(self) -> Result<Passed, Box<Failure>> {
        // 1. What once failed, first.
        let committed = self.committed();
        for (path, r) in &committed {
            if let (Some(v), _) = self.run_one(r.seed, &r.plan) {
                let mut f = self.failure(r.seed, v);
                f.regression = Some(path.clone());
                return Err(Box::new(f));
            }
        }
        // 2. New seeds.
        let seeds: Vec<u64> = match env_u64("SAGASIM_SEED") {
            Some(seed) => vec![seed],
            None => {
                let n = env_u64("SAGASIM_SEEDS").unwrap_or(self.seeds);
                assert!(n <= SEEDS_MAX, "SAGASIM_SEEDS={n} is above {SEEDS_MAX}");
                (0..n).collect()
            }
        };
        let determinism = env_u64("SAGASIM_CHECK_DETERMINISM").is_some_and(|v| v != 0);
        let extra = user_services(&self.workload);
        for &seed in &seeds {
            let plan = plan_for_with(&self.scenario, &extra, seed);
            let (violation, hash) = self.run_one(seed, &plan);
            if determinism {
                let (_, again) = self.run_one(seed, &plan);
                if again != hash {
                    let mut f = self.failure(
                        seed,
                        Violation {
                            invariant: "determinism".into(),
                            business_key: String::new(),
                            at_ms: 0,
                            facts: format!("trace hash {hash:016x} then {again:016x}"),
                        },
                    );
                    f.nondeterministic = true;
                    return Err(Box::new(f));
                }
            }
            if let Some(v) = violation {
                return Err(Box::new(self.shrink_and_save(seed, &plan, v)));
            }
        }
        Ok(Passed {
            regressions: committed.len(),
            seeds: seeds.len() as u64,
            determinism_checked: determinism,
        })
    }

    fn shrink_and_save(&self, seed: u64, plan: &FaultPlan, v: Violation) -> Failure {
        let mut f = self.failure(seed, v);
        let Some((small, invariant, _runs)) = shrink_to_with(
            &self.scenario,
            &self.workload,
            &self.invariants,
            seed,
            plan,
            self.coordinator.clone(),
            &f.violation.invariant,
        ) else {
            return f;
        };
        f.shrunk = Some((small.len(), plan.len()));
        if !self.write_regressions {
            return f;
        }
        let r = Regression {
            scenario: self.scenario.name.clone(),
            scenario_path: None,
            seed,
            invariant,
            note: format!("found by cargo test: {}", f.violation),
            plan: small,
            workload: Some(self.workload.name().to_string()),
            coordinator: Some(self.coordinator.name().to_string()),
            sagasim_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        };
        let name = format!(
            "{}-{}-{seed}.json",
            self.workload.name(),
            self.coordinator.name()
        );
        let path = self.regressions.join(name);
        if std::fs::create_dir_all(&self.regressions).is_ok() && r.save_new(&path).is_ok() {
            f.regression = Some(path);
        }
        f
    }
}
