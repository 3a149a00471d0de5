//! The architecture comparison (issue 9): the naive orchestrator and the
//! saga coordinator on the same fault plans, measured by business metrics.

use std::sync::Arc;

use sagasim::fuzz::FuzzConfig;
use sagasim::harness::{known_coordinators, run_checked, Checked};
use sagasim::metrics::{compare, Aggregate, RunMetrics, Stale, StaleKind};
use sagasim::saga::SagaStatus;
use sagasim::scenario::{default_dir, Scenario};
use sagasim::sim::faults::Crash;
use sagasim::sim::FaultPlan;
use sagasim::trace::TraceMode;
use sagasim::workloads::hotel::naive::NaiveCoordinator;
use sagasim::workloads::hotel::{BOOKING, BOOKING_STATUS, STATUS_PENDING};
use sagasim::world::run::plan_for;

fn scenario(name: &str) -> Scenario {
    Scenario::load(name, &default_dir()).unwrap()
}

fn naive(s: &Scenario, seed: u64, plan: &FaultPlan) -> Checked {
    run_checked(s, seed, plan, TraceMode::Full, Arc::new(NaiveCoordinator))
}

fn seeds(start: u64, seeds: u64, jobs: usize) -> FuzzConfig {
    FuzzConfig {
        start,
        seeds,
        jobs,
        shard: None,
    }
}

fn by_name<'a>(aggregates: &'a [Aggregate], name: &str) -> &'a Aggregate {
    aggregates
        .iter()
        .find(|a| a.coordinator == name)
        .unwrap_or_else(|| panic!("no aggregate for {name}"))
}

/// The acceptance, on a modest number of seeds of the default
/// scenario: under the same faults the naive orchestrator double-charges
/// and leaves stale state, and the checkers (which know nothing of it) flag
/// it on the business invariant; the saga coordinator shows none of it.
#[test]
fn naive_double_charges_and_leaves_stale_state_where_the_saga_does_not() {
    let s = scenario("hotel-checkout");
    let c = compare(&s, &seeds(0, 120, 2), &known_coordinators(), |_| {});
    assert_eq!(c.seeds, 120);
    let (n, saga) = (
        by_name(&c.coordinators, "naive"),
        by_name(&c.coordinators, "saga"),
    );
    let table = c.table();
    assert_eq!((n.runs, saga.runs), (120, 120));
    assert_eq!(n.started, saga.started, "the same agents ran\n{table}");

    assert!(n.double_charges > 0, "{table}");
    assert!(n.overcharged_cents > 0, "{table}");
    assert!(n.stale > 0, "{table}");
    assert!(n.orphan_holds > 0, "{table}");
    assert!(n.answers_contradicted > 0, "{table}");
    assert!(
        n.runs_flagged_by_invariant
            .get("no-double-charge")
            .is_some_and(|r| *r > 0),
        "the checkers flag the naive double charges\n{table}"
    );

    assert_eq!(saga.double_charges, 0, "{table}");
    assert_eq!(saga.overcharged_cents, 0, "{table}");
    assert_eq!(saga.stale, 0, "{table}");
    assert_eq!(saga.orphan_holds, 0, "{table}");
    assert_eq!(saga.answers_contradicted, 0, "{table}");
    assert_eq!(saga.runs_flagged, 0, "{table}");
    assert_eq!(saga.completed, saga.completed_verified, "{table}");
    assert_eq!(saga.unattributed_effects + n.unattributed_effects, 0);
}

/// Same command, same table: the aggregates do not depend on the thread
/// count or on what ran before on a thread.
#[test]
fn the_comparison_is_deterministic() {
    let s = scenario("hotel-checkout");
    let one = compare(&s, &seeds(500, 60, 1), &known_coordinators(), |_| {});
    let two = compare(&s, &seeds(500, 60, 2), &known_coordinators(), |_| {});
    assert_eq!(one.coordinators, two.coordinators);
    assert_eq!(one.table(), two.table());
    assert!(!one.table().contains(" s ("), "no wall time in the table");
}

/// The article's case (the Salesforce write lands, its reply is lost)
/// against the naive orchestrator: its retry is a plain create that
/// collides with the record that landed, so it believes the CRM failed,
/// refunds and releases — and leaves a pending booking in the CRM that it
/// never learned the id of. The agent is told "compensated"; the ground
/// truth disagrees.
#[test]
fn article_case_naive_rolls_back_and_leaves_the_crm_booking_pending() {
    let s = scenario("article-salesforce-timeout");
    let c = naive(&s, 7, &plan_for(&s, 7));
    let out = &c.outcome;
    assert!(
        matches!(out.agents[0].answer, Some(SagaStatus::Compensated { .. })),
        "{:?}\n{}",
        out.agents[0],
        c.trace.render()
    );
    assert_eq!(out.stripe.net_cents("cust-1"), 0, "refunded");
    let pending: Vec<_> = out
        .salesforce
        .with_external_id(BOOKING, "saga-res-1")
        .filter(|r| r.fields.get(BOOKING_STATUS).and_then(|v| v.as_str()) == Some(STATUS_PENDING))
        .collect();
    assert_eq!(pending.len(), 1, "{}", c.trace.render());
    assert!(c
        .trace
        .of_kind("naive-error")
        .any(|e| e.text.contains("DuplicateValue")));

    let m = RunMetrics::of(out, &c.verdict);
    assert_eq!(
        m.stale,
        vec![Stale {
            business_key: "res-1".into(),
            kind: StaleKind::CrmOpenNoRoom
        }]
    );
    assert_eq!(m.contradicted, vec!["res-1"]);
    assert_eq!(m.completed_verified, 0);
    assert!(!c.verdict.ok(), "the checkers flag the naive run");
}

/// No intent log: a coordinator crash right after the charge landed makes
/// the naive orchestrator forget the flow. The agent calls again; the new
/// flow finds the only room still held by the forgotten flow and gives up.
/// The customer is charged for nothing, and the hold is orphaned.
#[test]
fn naive_forgets_a_charge_and_a_hold_across_a_crash() {
    let s = scenario("article-salesforce-timeout");
    let clean = naive(&s, 3, &FaultPlan::default());
    let charged_ms = clean
        .trace
        .events
        .iter()
        .find(|e| e.node == "coordinator" && e.kind == "recv" && e.text.contains("Succeeded"))
        .map(|e| e.t_us / 1000)
        .expect("the clean run charges");
    let plan = FaultPlan {
        crashes: vec![Crash {
            node: "coordinator".into(),
            at_ms: charged_ms + 1,
            down_ms: Some(2_000),
        }],
        ..FaultPlan::default()
    };
    let c = naive(&s, 3, &plan);
    let out = &c.outcome;
    assert!(out.phases.converged);
    assert_eq!(
        out.stripe.net_cents("cust-1"),
        25_000,
        "{}",
        c.trace.render()
    );
    assert!(out.inventory.bookings.is_empty());
    let m = RunMetrics::of(out, &c.verdict);
    assert!(
        m.stale.contains(&Stale {
            business_key: "res-1".into(),
            kind: StaleKind::PaidNoRoom
        }),
        "{m:?}\n{}",
        c.trace.render()
    );
    assert_eq!(m.orphan_holds.len(), 1, "{m:?}");
    assert!(matches!(
        out.agents[0].answer,
        Some(SagaStatus::Compensated { .. })
    ));
}
