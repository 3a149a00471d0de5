//! The coordinators against Salesforce sessions as they really behave
//! (issue 16): an OAuth session ends after the org's inactivity timeout,
//! and a request under it answers 401 `INVALID_SESSION_ID`, applying
//! nothing. Each case is one agent of the article's scenario (no plan) in
//! an org with the shortest timeout Salesforce offers, 15 minutes, and a
//! coordinator stalled or restarted once the room is confirmed (the pivot:
//! the saga only goes forward from there, whatever the saga deadline), with
//! its last Salesforce writes still to make.

use sagasim::harness::{coordinator, run_checked, Checked};
use sagasim::saga::SagaStatus;
use sagasim::scenario::Scenario;
use sagasim::sim::faults::{Crash, Pause};
use sagasim::sim::FaultPlan;
use sagasim::trace::TraceMode;
use sagasim::workloads::hotel::{BOOKING, OPPORTUNITY};
use sagasim::world::run::RunOutcome;

use crate::checkout::{checked, scenario};

const MIN: u64 = 60_000;
const SEED: u64 = 3;

/// One agent, the 15-minute timeout, a safety phase long enough for a
/// stall past it.
fn one_agent() -> Scenario {
    let mut s = scenario("article-salesforce-timeout");
    s.plan = None;
    s.salesforce.session_timeout_ms = 15 * MIN;
    s.phases.safety_ms = 20 * MIN;
    s
}

/// When (ms) the coordinator heard that the room is confirmed, in a run of
/// `imp` without faults: it holds a session by then, and has its last
/// Salesforce writes (booking confirmed, opportunity won) still to make.
fn after_the_pivot(s: &Scenario, imp: &str) -> u64 {
    let imp = coordinator(imp).expect("known coordinator");
    let base = run_checked(s, SEED, &FaultPlan::default(), TraceMode::Full, imp);
    assert!(base.verdict.ok(), "{:#?}", base.verdict);
    assert_eq!(base.outcome.salesforce.logins, 1, "one login, then reuse");
    base.trace
        .events
        .iter()
        .find(|e| {
            e.node == "coordinator"
                && e.kind == "recv"
                && e.text.contains("<- inventory")
                && e.text.contains("Booking(")
        })
        .map(|e| e.t_us / 1000 + 1)
        .expect("the room confirmed")
}

fn stalled(imp: &str, for_ms: u64) -> (Scenario, FaultPlan) {
    let mut s = one_agent();
    // The agent waits the stall out instead of calling again (the naive
    // orchestrator would start a second flow: its own mistake, not this
    // test's subject).
    s.workload.tool_timeout_ms = 30 * MIN;
    let at_ms = after_the_pivot(&s, imp);
    let plan = FaultPlan {
        pauses: vec![Pause {
            node: "coordinator".into(),
            at_ms,
            for_ms,
        }],
        ..FaultPlan::default()
    };
    (s, plan)
}

fn field(out: &RunOutcome, object: &str, name: &str) -> Vec<String> {
    out.salesforce
        .with_external_id(object, "saga-res-1")
        .map(|r| r.fields[name].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The checkout completed, charged once and never refunded, its CRM
/// records written once and closed.
fn assert_completed_once(c: &Checked) {
    assert!(c.verdict.ok(), "{:#?}", c.verdict);
    let out = &c.outcome;
    assert_eq!(out.agents[0].answer, Some(SagaStatus::Completed));
    assert_eq!(out.stripe.net_cents("cust-1"), 25_000);
    assert!(
        out.stripe.refunds.is_empty(),
        "a stale token refunds nothing"
    );
    assert_eq!(out.inventory.bookings.len(), 1);
    assert_eq!(field(out, BOOKING, "Status__c"), ["Confirmed"]);
    assert_eq!(field(out, OPPORTUNITY, "StageName"), ["Closed Won"]);
}

/// The coordinator stalls (a VM pause) for 16 minutes once the room is
/// confirmed, keeping its token in memory. Its next call is refused
/// 401 `INVALID_SESSION_ID`: it logs in again, sends the call once more
/// and completes — the 401 is neither a rejection (that would compensate
/// a good booking) nor retried forever under the dead token.
#[test]
fn an_expired_session_is_renewed_and_the_checkout_completes() {
    let (s, plan) = stalled("saga", 16 * MIN);
    let c = checked(&s, SEED, &plan);
    assert_completed_once(&c);
    let sf = &c.outcome.salesforce;
    assert_eq!(sf.session_expiries, 1);
    assert_eq!(sf.invalid_session_refusals, 1, "refused once, then renewed");
    assert_eq!(sf.logins, 2);
    assert_eq!(sf.relogins_after_expiry, 1);
    assert!(c.trace.of_kind("sf-session").count() == 1);
    let coverage = sagasim::check::coverage::coverage(&c.outcome);
    assert_eq!(
        coverage.0["salesforce: expired session re-authenticated"],
        1
    );
}

/// A stall shorter than the timeout keeps the session: no 401, one login.
#[test]
fn a_stall_within_the_timeout_keeps_the_session() {
    let (s, plan) = stalled("saga", 14 * MIN);
    let c = checked(&s, SEED, &plan);
    assert_completed_once(&c);
    let sf = &c.outcome.salesforce;
    assert_eq!((sf.logins, sf.invalid_session_refusals), (1, 0));
}

/// The token lives in the coordinator's memory: a restarted coordinator
/// has none and logs in again before its next Salesforce call (the old
/// session, still valid in the org, is simply never used again).
#[test]
fn a_restarted_coordinator_logs_in_again() {
    let s = one_agent();
    let at_ms = after_the_pivot(&s, "saga");
    let plan = FaultPlan {
        crashes: vec![Crash {
            node: "coordinator".into(),
            at_ms,
            down_ms: Some(2_000),
        }],
        ..FaultPlan::default()
    };
    let c = checked(&s, SEED, &plan);
    assert_completed_once(&c);
    let sf = &c.outcome.salesforce;
    assert_eq!(sf.logins, 2, "one login per incarnation");
    assert_eq!(sf.invalid_session_refusals, 0);
}

/// The naive orchestrator speaks the protocol too (its mistakes are
/// elsewhere): after the same stall it logs in again and completes.
#[test]
fn the_naive_orchestrator_also_logs_in_again_after_an_expired_session() {
    let (s, plan) = stalled("naive", 16 * MIN);
    let naive = coordinator("naive").expect("naive");
    let c = run_checked(&s, SEED, &plan, TraceMode::HashOnly, naive);
    assert_eq!(c.outcome.agents[0].answer, Some(SagaStatus::Completed));
    let sf = &c.outcome.salesforce;
    assert_eq!((sf.session_expiries, sf.relogins_after_expiry), (1, 1));
    assert_eq!(field(&c.outcome, BOOKING, "Status__c"), ["Confirmed"]);
}
