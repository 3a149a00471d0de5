//! One-call entry points that tie a run to its checks: what the CLI, the
//! fuzz loop and the tests use.
//!
//! The `run_checked*` helpers without a workload run the bundled workload
//! of the scenario (`crate::workloads::for_scenario`); `run_checked_with`
//! takes any declared workload and the user's invariants.
//!
//! Not here: the run itself (`world::run`) or the invariants (`check`).

use std::sync::Arc;

use crate::check::shrink::shrink;
use crate::check::{check_with, UserInvariant, Verdict};
use crate::fuzz::SeedResult;
use crate::reference::SagaCoordinator;
use crate::scenario::Scenario;
use crate::sim::FaultPlan;
use crate::trace::{Trace, TraceMode};
use crate::workload::Workload;
use crate::workloads::hotel::naive::NaiveCoordinator;
use crate::world::run::{plan_for, run_shared, RunOutcome};
use crate::world::CoordinatorImpl;

/// A finished, checked run.
pub struct Checked {
    /// What the run left: ground truth, callers' records, the log.
    pub outcome: RunOutcome,
    /// The run's trace (events only with [`TraceMode::Full`]; the hash
    /// always).
    pub trace: Trace,
    /// The built-in invariants' and the user's verdict on `outcome`.
    pub verdict: Verdict,
}

/// Run (scenario, seed, plan) of the scenario's bundled workload with
/// `imp` and check it.
pub fn run_checked(
    s: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    mode: TraceMode,
    imp: Arc<dyn CoordinatorImpl>,
) -> Checked {
    let workload = crate::workloads::for_scenario(s);
    run_checked_with(s, &workload, &[], seed, plan, mode, imp)
}

/// Run (scenario, seed, plan) with callers asking for `workload`, with
/// `imp`, and check it with the built-in invariants and `user`'s.
///
/// `plan` must name only nodes and links of this world: check a plan from
/// a file with [`FaultPlan::validate`] against
/// [`topology_with`](crate::world::run::topology_with)`(s,
/// &user_services(workload))` first, as the CLI and
/// [`FuzzTest`](crate::testing::FuzzTest) do.
///
/// One seed of the bundled hotel checkout, with an invariant of the
/// user's own (four agents, three rooms: at most three stays are sold):
///
/// ```rust
/// use sagasim::check::{UserInvariant, Violation};
/// use sagasim::harness::{reference, run_checked_with};
/// use sagasim::saga::SagaStatus;
/// use sagasim::scenario::{default_dir, Scenario};
/// use sagasim::trace::TraceMode;
/// use sagasim::world::run::{plan_for_with, user_services};
///
/// let s = Scenario::load("hotel-checkout", &default_dir())?;
/// let workload = sagasim::workloads::for_scenario(&s);
/// let three_rooms = UserInvariant::new("at-most-three-stays", |out| {
///     let sold = out.agents.iter().filter(|a| a.answer == Some(SagaStatus::Completed)).count();
///     match sold {
///         0..=3 => vec![],
///         _ => vec![Violation {
///             invariant: String::new(), // filled in: "at-most-three-stays"
///             business_key: String::new(),
///             at_ms: out.phases.end_ms,
///             facts: format!("{sold} callers were told their stay is booked"),
///         }],
///     }
/// });
/// let seed = 7;
/// // The seed's swarm plan (or the scenario's fixed `[plan]`).
/// let plan = plan_for_with(&s, &user_services(&workload), seed);
/// let run = |mode| {
///     run_checked_with(&s, &workload, &[three_rooms.clone()], seed, &plan, mode, reference())
/// };
/// let checked = run(TraceMode::HashOnly);
/// assert!(checked.verdict.ok(), "{:?}", checked.verdict.first());
/// // A run is a pure function of its inputs: same seed and plan, same trace.
/// assert_eq!(run(TraceMode::Full).trace.hash, checked.trace.hash);
/// # Ok::<(), sagasim::scenario::ScenarioError>(())
/// ```
pub fn run_checked_with(
    s: &Scenario,
    workload: &Arc<Workload>,
    user: &[UserInvariant],
    seed: u64,
    plan: &FaultPlan,
    mode: TraceMode,
    imp: Arc<dyn CoordinatorImpl>,
) -> Checked {
    run_checked_shared(s, workload, user, seed, Arc::new(plan.clone()), mode, imp)
}

/// [`run_checked_with`] with a plan the run keeps as it is (fuzz's path:
/// no copy of a fresh plan).
pub fn run_checked_shared(
    s: &Scenario,
    workload: &Arc<Workload>,
    user: &[UserInvariant],
    seed: u64,
    plan: Arc<FaultPlan>,
    mode: TraceMode,
    imp: Arc<dyn CoordinatorImpl>,
) -> Checked {
    let (outcome, trace) = run_shared(s, workload, seed, plan, mode, imp);
    let verdict = check_with(s, &outcome, user);
    Checked {
        outcome,
        trace,
        verdict,
    }
}

/// Run and check with a deliberate bug switched on (`None`: the correct
/// coordinator). Only with the `mutants` feature (the test build).
#[cfg(feature = "mutants")]
pub fn run_checked_mutant(
    s: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    mode: TraceMode,
    mutant: Option<crate::saga::mutants::Mutant>,
) -> Checked {
    crate::saga::mutants::with(mutant, || run_checked(s, seed, plan, mode, reference()))
}

/// The reference coordinator.
pub fn reference() -> Arc<dyn CoordinatorImpl> {
    Arc::new(SagaCoordinator)
}

/// Every coordinator implementation the CLI knows, by name: the naive
/// baseline and the reference saga (`sagasim compare --coordinators`).
pub fn known_coordinators() -> Vec<Arc<dyn CoordinatorImpl>> {
    vec![Arc::new(NaiveCoordinator), reference()]
}

/// The known coordinator called `name`.
pub fn coordinator(name: &str) -> Option<Arc<dyn CoordinatorImpl>> {
    known_coordinators().into_iter().find(|c| c.name() == name)
}

/// Fuzz one seed of `s` with the reference coordinator.
pub fn fuzz_seed(s: &Scenario, seed: u64) -> SeedResult {
    fuzz_seed_with(s, seed, reference())
}

/// Fuzz one seed of `s` with coordinator `imp`.
pub fn fuzz_seed_with(s: &Scenario, seed: u64, imp: Arc<dyn CoordinatorImpl>) -> SeedResult {
    let c = run_checked(s, seed, &plan_for(s, seed), TraceMode::HashOnly, imp);
    seed_result(seed, &c)
}

/// What the fuzz loop keeps of a checked run.
pub fn seed_result(seed: u64, c: &Checked) -> SeedResult {
    SeedResult {
        seed,
        trace_hash: c.trace.hash,
        failure: c.verdict.first().map(|v| v.to_string()),
        skipped: false,
        coverage: crate::check::coverage::coverage(&c.outcome).0,
    }
}

/// Shrink the plan of a failing run to the faults that still break the
/// same invariant. Returns `None` if the run does not fail.
pub fn shrink_failure(
    s: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    imp: Arc<dyn CoordinatorImpl>,
) -> Option<(FaultPlan, String, usize)> {
    let workload = crate::workloads::for_scenario(s);
    shrink_failure_with(s, &workload, &[], seed, plan, imp)
}

/// [`shrink_failure`] for a declared workload judged with `user`'s
/// invariants too.
pub fn shrink_failure_with(
    s: &Scenario,
    workload: &Arc<Workload>,
    user: &[UserInvariant],
    seed: u64,
    plan: &FaultPlan,
    imp: Arc<dyn CoordinatorImpl>,
) -> Option<(FaultPlan, String, usize)> {
    let first = run_checked_with(
        s,
        workload,
        user,
        seed,
        plan,
        TraceMode::HashOnly,
        imp.clone(),
    );
    let invariant = first.verdict.first()?.invariant.clone();
    shrink_to_with(s, workload, user, seed, plan, imp, &invariant)
}

/// Shrink a plan while the run still breaks `invariant`.
pub fn shrink_to(
    s: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    imp: Arc<dyn CoordinatorImpl>,
    invariant: &str,
) -> Option<(FaultPlan, String, usize)> {
    let workload = crate::workloads::for_scenario(s);
    shrink_to_with(s, &workload, &[], seed, plan, imp, invariant)
}

/// Shrink a plan of `workload` while the run still breaks `invariant`
/// (a built-in one or one of `user`'s).
pub fn shrink_to_with(
    s: &Scenario,
    workload: &Arc<Workload>,
    user: &[UserInvariant],
    seed: u64,
    plan: &FaultPlan,
    imp: Arc<dyn CoordinatorImpl>,
    invariant: &str,
) -> Option<(FaultPlan, String, usize)> {
    let invariant = invariant.to_string();
    let breaks = |candidate: &FaultPlan| {
        run_checked_with(
            s,
            workload,
            user,
            seed,
            candidate,
            TraceMode::HashOnly,
            imp.clone(),
        )
        .verdict
        .all()
        .any(|v| v.invariant == invariant)
    };
    if !breaks(plan) {
        return None;
    }
    let (small, runs) = shrink(plan, breaks);
    Some((small, invariant, runs))
}
