//! The hotel checkout end to end: named deterministic cases (issue 5).

use sagasim::harness::{reference, run_checked, Checked};
use sagasim::saga::{LogRecord, SagaStatus};
use sagasim::scenario::{default_dir, Scenario};
use sagasim::services::Injected;
use sagasim::sim::faults::{Brownout, CallFault, CallFaultKind, Crash};
use sagasim::sim::serve::ServiceLatency;
use sagasim::sim::FaultPlan;
use sagasim::trace::TraceMode;
use sagasim::workloads::hotel::{BOOKING, OPPORTUNITY};
use sagasim::world::run::{plan_for, RunOutcome};

pub fn scenario(name: &str) -> Scenario {
    Scenario::load(name, &default_dir()).unwrap()
}

pub fn checked(s: &Scenario, seed: u64, plan: &FaultPlan) -> Checked {
    run_checked(s, seed, plan, TraceMode::Full, reference())
}

fn assert_ok(c: &Checked) {
    assert!(
        c.verdict.ok(),
        "{:#?}\n--- trace ---\n{}",
        c.verdict,
        c.trace.render()
    );
}

fn sf_field(out: &RunOutcome, object: &str, ext: &str, field: &str) -> Vec<Option<String>> {
    out.salesforce
        .records
        .values()
        .filter(|r| r.object == object && r.external_id.as_deref() == Some(ext))
        .map(|r| {
            r.fields
                .get(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .collect()
}

fn sagas_started(out: &RunOutcome, key: &str) -> usize {
    out.log
        .iter()
        .filter(|d| matches!(&d.record, LogRecord::SagaStarted { input, .. } if input.business_key == key))
        .count()
}

/// The coordinator's first Salesforce write: call 0 is its login (OAuth
/// token request), made lazily before it.
const FIRST_CRM_WRITE: u32 = 1;

fn sf_call(index: u32, fault: CallFaultKind) -> CallFault {
    CallFault {
        from: "coordinator".into(),
        to: "salesforce".into(),
        index,
        fault,
    }
}

/// The article's case, as the scenario file has it: the Salesforce write
/// lands, its reply is lost. The coordinator reconciles (finds the booking)
/// and completes: one charge, no refund, CRM confirmed and won.
#[test]
fn article_case_salesforce_applied_but_reply_lost_completes_after_reconciling() {
    let s = scenario("article-salesforce-timeout");
    let plan = plan_for(&s, 7);
    assert_eq!(
        plan.calls,
        vec![sf_call(FIRST_CRM_WRITE, CallFaultKind::DropReply)]
    );
    let c = checked(&s, 7, &plan);
    assert_ok(&c);
    let out = &c.outcome;
    assert_eq!(out.agents[0].answer, Some(SagaStatus::Completed));
    assert_eq!(out.stripe.payment_intents.len(), 1);
    assert_eq!(out.stripe.net_cents("cust-1"), 25_000);
    assert!(out.stripe.refunds.is_empty(), "never refunded blindly");
    assert_eq!(out.net.dropped_replies, 1);
    assert!(
        c.trace
            .of_kind("step-call")
            .any(|e| e.text.contains("crm_record Reconcile")),
        "the timeout was resolved by reconciliation"
    );
    assert_eq!(
        sf_field(out, BOOKING, "saga-res-1", "Status__c"),
        [Some("Confirmed".into())]
    );
    assert_eq!(
        sf_field(out, OPPORTUNITY, "saga-res-1", "StageName"),
        [Some("Closed Won".into())]
    );
    assert_eq!(out.inventory.bookings.len(), 1);
    insta::assert_snapshot!("article_reply_lost", c.trace.render());
}

/// The other half: the Salesforce write never arrived, and Salesforce stays
/// locked past the saga's 20 s deadline. Once reconciliation can tell "not
/// applied", the coordinator turns back instead of retrying: the charge is
/// refunded, the hold released, the CRM marked cancelled.
#[test]
fn article_case_salesforce_not_applied_compensates_with_a_refund() {
    let mut s = scenario("article-salesforce-timeout");
    s.coordinator.saga_deadline_ms = 20_000;
    let plan = FaultPlan {
        calls: vec![sf_call(FIRST_CRM_WRITE, CallFaultKind::DropRequest)],
        brownouts: vec![Brownout {
            service: "salesforce".into(),
            from_ms: 0,
            until_ms: 40_000,
            fault: Injected::Throttle,
            permille: 1000,
        }],
        ..FaultPlan::default()
    };
    let c = checked(&s, 7, &plan);
    assert_ok(&c);
    let out = &c.outcome;
    assert!(
        matches!(out.agents[0].answer, Some(SagaStatus::Compensated { .. })),
        "{:?}",
        out.agents[0].answer
    );
    assert_eq!(
        out.stripe.captured_cents("cust-1"),
        25_000,
        "it was charged once"
    );
    assert_eq!(out.stripe.refunds.len(), 1, "and refunded once");
    assert_eq!(out.stripe.net_cents("cust-1"), 0);
    assert!(out.inventory.bookings.is_empty());
    assert_eq!(out.inventory.active_holds().count(), 0);
    for status in sf_field(out, BOOKING, "saga-res-1", "Status__c") {
        assert_eq!(status.as_deref(), Some("Cancelled"));
    }
    insta::assert_snapshot!("article_not_applied", c.trace.render());
}

/// The write was lost but Salesforce is healthy: reconcile finds nothing,
/// the upsert is sent again with the same external id, and it completes.
#[test]
fn article_case_salesforce_request_lost_retries_after_reconciling() {
    let s = scenario("article-salesforce-timeout");
    let plan = FaultPlan {
        calls: vec![sf_call(FIRST_CRM_WRITE, CallFaultKind::DropRequest)],
        ..FaultPlan::default()
    };
    let c = checked(&s, 7, &plan);
    assert_ok(&c);
    assert_eq!(c.outcome.agents[0].answer, Some(SagaStatus::Completed));
    assert_eq!(c.outcome.stripe.net_cents("cust-1"), 25_000);
    assert_eq!(
        c.outcome.salesforce.records.len(),
        2,
        "one booking, one opportunity"
    );
}

/// Crash the coordinator at every point between consecutive log writes and
/// calls of a checkout (each distinct instant the coordinator or its disk
/// acts, and one millisecond after it), restart it 2 s later, and require a
/// consistent end with zero or one net charge, every time.
fn crash_everywhere(name: &str) {
    let mut s = scenario(name);
    s.workload.agents = 1;
    s.workload.declining_agents.clear();
    s.plan = None;
    let base = checked(&s, 3, &FaultPlan::default());
    assert_ok(&base);
    let mut points: Vec<u64> = base
        .trace
        .events
        .iter()
        .filter(|e| e.node == "coordinator" || e.node == "coordinator/disk")
        .flat_map(|e| [e.t_us / 1000, e.t_us / 1000 + 1])
        .collect();
    points.sort();
    points.dedup();
    assert!(points.len() > 20, "only {} crash points", points.len());
    let mut outcomes = std::collections::BTreeMap::new();
    for at_ms in points {
        let plan = FaultPlan {
            crashes: vec![Crash {
                node: "coordinator".into(),
                at_ms,
                down_ms: Some(2_000),
            }],
            ..FaultPlan::default()
        };
        let c = run_checked(&s, 3, &plan, TraceMode::HashOnly, reference());
        assert!(
            c.verdict.ok(),
            "{name}: crash at {at_ms} ms: {:#?}",
            c.verdict
        );
        let net = c.outcome.stripe.net_cents("cust-1");
        assert!(net == 0 || net == s.workload.price_cents, "net {net}");
        assert_eq!(sagas_started(&c.outcome, "res-1"), 1, "crash at {at_ms} ms");
        *outcomes
            .entry(format!("{:?}", c.outcome.agents[0].answer))
            .or_insert(0) += 1;
    }
    // The crashes did land mid-saga: most runs still complete.
    assert!(
        outcomes.keys().any(|k| k.contains("Completed")),
        "{outcomes:?}"
    );
}

#[test]
fn a_coordinator_crash_at_every_point_ends_consistent_automatic_capture() {
    crash_everywhere("hotel-checkout");
}

#[test]
fn a_coordinator_crash_at_every_point_ends_consistent_manual_capture() {
    crash_everywhere("authorize-capture");
}

/// An agent whose tool call times out three times while a slow saga runs
/// still gets one saga and one charge.
#[test]
fn agent_retries_during_a_slow_saga_start_one_saga_and_charge_once() {
    let mut s = scenario("hotel-checkout");
    s.workload.agents = 1;
    s.workload.declining_agents.clear();
    s.workload.tool_timeout_ms = 2_000;
    s.workload.tool_wait_ms = 30_000;
    s.workload.agent_retry_ms = 200;
    s.latency.stripe = ServiceLatency {
        min_ms: 6_500,
        p50_ms: 7_000,
        max_ms: 7_500,
    };
    s.timeouts.stripe_ms = 10_000;
    let c = checked(&s, 5, &FaultPlan::default());
    assert_ok(&c);
    let out = &c.outcome;
    let agent = &out.agents[0];
    assert!(agent.timeouts >= 3, "the agent retried: {agent:?}");
    assert!(agent.calls >= 4);
    assert_eq!(agent.answer, Some(SagaStatus::Completed));
    assert_eq!(sagas_started(out, "res-1"), 1);
    assert_eq!(out.stripe.payment_intents.len(), 1);
    assert_eq!(out.stripe.net_cents("cust-1"), 25_000);
}

/// More checkouts than rooms: one wins, no overbooking, every loser is
/// compensated with no net charge.
#[test]
fn competing_checkouts_never_overbook_and_losers_pay_nothing() {
    let s = scenario("last-room-contention");
    let c = checked(&s, 11, &FaultPlan::default());
    assert_ok(&c);
    let out = &c.outcome;
    assert_eq!(out.inventory.bookings.len(), 1);
    let winners: Vec<&str> = out
        .agents
        .iter()
        .filter(|a| a.answer == Some(SagaStatus::Completed))
        .map(|a| a.business_key.as_str())
        .collect();
    assert_eq!(winners.len(), 1);
    for a in &out.agents {
        let customer = a.business_key.replace("res-", "cust-");
        if a.answer == Some(SagaStatus::Completed) {
            assert_eq!(out.stripe.net_cents(&customer), 25_000);
        } else {
            assert!(
                matches!(a.answer, Some(SagaStatus::Compensated { .. })),
                "{a:?}"
            );
            assert_eq!(out.stripe.net_cents(&customer), 0, "{}", a.business_key);
        }
    }
    // And under swarm faults, for a handful of seeds.
    for seed in 0..30 {
        let c = run_checked(
            &s,
            seed,
            &plan_for(&s, seed),
            TraceMode::HashOnly,
            reference(),
        );
        assert!(c.verdict.ok(), "seed {seed}: {:#?}", c.verdict);
        assert!(c.outcome.inventory.bookings.len() <= 1);
    }
}

#[test]
fn swarm_seeds_hold_every_invariant() {
    let s = scenario("hotel-checkout");
    let mut failures = Vec::new();
    for seed in 0..100 {
        let c = run_checked(
            &s,
            seed,
            &plan_for(&s, seed),
            TraceMode::HashOnly,
            reference(),
        );
        if let Some(f) = c.verdict.first() {
            failures.push(format!("seed {seed}: {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Canonical run for the snapshot suite: the coordinator crashes while the
/// charge is in flight and recovers from its log alone.
#[test]
fn snapshot_crash_recovery() {
    let s = scenario("article-salesforce-timeout");
    let plan = FaultPlan {
        crashes: vec![Crash {
            node: "coordinator".into(),
            at_ms: 1_300,
            down_ms: Some(2_000),
        }],
        ..FaultPlan::default()
    };
    let c = checked(&s, 7, &plan);
    assert_ok(&c);
    assert!(c.trace.of_kind("crash").count() == 1);
    assert!(
        c.trace.of_kind("recover").count() >= 2,
        "booted, then recovered"
    );
    assert_eq!(c.outcome.agents[0].answer, Some(SagaStatus::Completed));
    assert_eq!(c.outcome.stripe.payment_intents.len(), 1);
    assert_eq!(c.outcome.stripe.net_cents("cust-1"), 25_000);
    insta::assert_snapshot!("crash_recovery", c.trace.render());
}

/// Canonical run for the snapshot suite: a PMS that ignores client refs
/// gets the hold request twice; the sweep finds and releases the extra hold.
#[test]
fn snapshot_duplicate_delivery() {
    let mut s = scenario("pms-without-idempotency");
    s.workload.agents = 1;
    let plan = FaultPlan {
        calls: vec![CallFault {
            from: "coordinator".into(),
            to: "inventory".into(),
            index: 0,
            fault: CallFaultKind::Duplicate { gap_ms: 40 },
        }],
        ..FaultPlan::default()
    };
    let c = checked(&s, 7, &plan);
    assert_ok(&c);
    let inv = &c.outcome.inventory;
    assert_eq!(inv.holds.len(), 2, "the duplicate made a second hold");
    assert_eq!(inv.bookings.len(), 1);
    assert_eq!(inv.active_holds().count(), 0, "the extra hold was released");
    assert_eq!(c.outcome.agents[0].answer, Some(SagaStatus::Completed));
    insta::assert_snapshot!("duplicate_delivery", c.trace.render());
}
