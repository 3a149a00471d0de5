//! Black-box judging (issue 13): a coordinator that keeps its state in
//! memory is judged on the business invariants — from what the services
//! applied and what the callers were told — never on sagasim's own log
//! format; effects that break the attribution contract are a verdict of
//! their own; a user's invariant is reported like the built-in ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sagasim::check::{UserInvariant, Violation};
use sagasim::harness::{run_checked, run_checked_with};
use sagasim::saga::driver::BoxFuture;
use sagasim::saga::{SagaInput, SagaStatus};
use sagasim::services::inventory::InventoryRequest;
use sagasim::services::stripe::{CaptureMethod, StripeRequest};
use sagasim::trace::TraceMode;
use sagasim::workloads::for_scenario;
use sagasim::workloads::hotel::naive::NaiveCoordinator;
use sagasim::world::run::plan_for;
use sagasim::world::wire::Services;
use sagasim::world::{CoordinatorEnv, CoordinatorImpl, SagaService};

use crate::checkout::scenario;

/// The first of `seeds` at which the naive orchestrator (in memory, no
/// saga log) breaks `invariant`, and the invariants it broke there.
fn naive_breaks(invariant: &str, seeds: u64) -> Option<(u64, Vec<String>)> {
    let s = scenario("hotel-checkout");
    (0..seeds).find_map(|seed| {
        let c = run_checked(
            &s,
            seed,
            &plan_for(&s, seed),
            TraceMode::HashOnly,
            Arc::new(NaiveCoordinator),
        );
        let names: Vec<String> = c.verdict.all().map(|v| v.invariant.clone()).collect();
        names
            .iter()
            .any(|n| n == invariant)
            .then_some((seed, names))
    })
}

#[test]
fn an_in_memory_coordinator_is_caught_for_a_double_charge_by_a_business_invariant() {
    let (seed, names) = naive_breaks("no-double-charge", 200).expect("caught");
    assert!(
        names.iter().all(|n| !n.starts_with("saga-log:")),
        "seed {seed}: a coordinator without sagasim's log is never judged by it: {names:?}"
    );
    // The failure replays: same plan, same trace hash.
    let s = scenario("hotel-checkout");
    let run = || {
        run_checked(
            &s,
            seed,
            &plan_for(&s, seed),
            TraceMode::HashOnly,
            Arc::new(NaiveCoordinator),
        )
    };
    assert_eq!(run().trace.hash, run().trace.hash);
}

#[test]
fn an_in_memory_coordinator_is_caught_for_an_orphaned_hold() {
    let (seed, names) = naive_breaks("no-orphan-hold", 200).expect("caught");
    assert!(
        names.iter().all(|n| !n.starts_with("saga-log:")),
        "seed {seed}: {names:?}"
    );
}

/// A coordinator that labels nothing: it charges without metadata and
/// holds without a client reference, then answers Completed.
struct Unlabelled;

impl CoordinatorImpl for Unlabelled {
    fn name(&self) -> &'static str {
        "unlabelled"
    }

    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn SagaService> {
        Arc::new(UnlabelledService(Services::new(&env)))
    }
}

struct UnlabelledService(Services);

impl SagaService for UnlabelledService {
    fn start(&self, input: SagaInput, _wait: Duration) -> BoxFuture<SagaStatus> {
        let svc = self.0.clone();
        Box::pin(async move {
            let hold = InventoryRequest::Hold {
                room_type: input.param("room_type").unwrap_or_default().into(),
                first_night: 100,
                nights: 2,
                ttl_ms: None,
                client_ref: None,
            };
            let _ = svc.inventory(hold).await;
            let charge = StripeRequest::CreatePaymentIntent {
                idempotency_key: None,
                customer: input.customer.clone(),
                amount_cents: input.amount_cents,
                currency: "usd".into(),
                capture_method: CaptureMethod::Automatic,
                confirm: true,
                metadata: BTreeMap::new(),
            };
            let _ = svc.stripe(charge).await;
            SagaStatus::Completed
        })
    }

    fn is_quiescent(&self) -> bool {
        true
    }
}

#[test]
fn effects_without_a_business_key_are_a_verdict_not_silence() {
    let s = scenario("hotel-checkout");
    let c = run_checked(
        &s,
        1,
        &Default::default(),
        TraceMode::HashOnly,
        Arc::new(Unlabelled),
    );
    let unattributed: Vec<&Violation> = c
        .verdict
        .all()
        .filter(|v| v.invariant == "attributable")
        .collect();
    assert!(
        unattributed
            .iter()
            .any(|v| v.facts.contains("stripe payment intent")),
        "{:?}",
        c.verdict
    );
    assert!(
        unattributed
            .iter()
            .any(|v| v.facts.contains("inventory hold")),
        "{:?}",
        c.verdict
    );
    assert!(unattributed
        .iter()
        .all(|v| v.facts.contains("effect not attributable")));
    // Told Completed while nothing attributable is left: the caller was lied to.
    assert!(c.verdict.all().any(|v| v.invariant == "caller-told-truth"));
}

#[test]
fn a_user_invariant_is_reported_like_the_built_in_ones() {
    let s = scenario("hotel-checkout");
    let workload = for_scenario(&s);
    // "Nobody is ever told Completed": false on a clean run of the
    // reference coordinator, so it must fail there.
    let never_completed = UserInvariant::new("never-completed", |out| {
        out.agents
            .iter()
            .filter(|a| a.answer == Some(SagaStatus::Completed))
            .map(|a| Violation {
                invariant: String::new(),
                business_key: a.business_key.clone(),
                at_ms: a.answered_ms.unwrap_or(0),
                facts: "told Completed".into(),
            })
            .collect()
    });
    let c = run_checked_with(
        &s,
        &workload,
        &[never_completed],
        3,
        &Default::default(),
        TraceMode::HashOnly,
        sagasim::harness::reference(),
    );
    let first = c.verdict.first().expect("the user invariant fails");
    assert_eq!(first.invariant, "never-completed");
    assert!(c.verdict.all().all(|v| v.invariant == "never-completed"));
}
