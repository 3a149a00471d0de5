//! The reference coordinator against Stripe as it really behaves (issue
//! 16): stored 500s that poison a key, edge 503s that do not, asynchronous
//! refunds, 3-D Secure and `processing` intents, and search that lags.
//! Each case is one agent of the article's scenario with a plan aimed at
//! the coordinator's Stripe calls (call 0 is the PaymentIntent create).

use sagasim::saga::{LogRecord, Op, Outcome, SagaStatus};
use sagasim::services::Injected;
use sagasim::sim::faults::{CallFault, CallFaultKind};
use sagasim::sim::FaultPlan;

use crate::checkout::{checked, scenario};

fn stripe_call(index: u32, fault: Injected) -> CallFault {
    CallFault {
        from: "coordinator".into(),
        to: "stripe".into(),
        index,
        fault: CallFaultKind::Inject { fault },
    }
}

/// One agent, no faults but the plan's.
fn one_agent() -> sagasim::scenario::Scenario {
    let mut s = scenario("article-salesforce-timeout");
    s.plan = None;
    s
}

/// Runs one checkout with `fault` on the coordinator's Stripe call 0 (the
/// create); it must complete, charged exactly once.
fn completes_after(fault: Injected) -> sagasim::harness::Checked {
    let plan = FaultPlan {
        calls: vec![stripe_call(0, fault)],
        ..FaultPlan::default()
    };
    let c = checked(&one_agent(), 3, &plan);
    assert!(c.verdict.ok(), "{:#?}", c.verdict);
    let out = &c.outcome;
    assert_eq!(out.agents[0].answer, Some(SagaStatus::Completed));
    assert_eq!(out.stripe.payment_intents.len(), 1);
    assert_eq!(out.stripe.net_cents("cust-1"), 25_000);
    c
}

fn action_keys(out: &sagasim::world::run::RunOutcome) -> Vec<String> {
    out.log
        .iter()
        .filter_map(|d| match &d.record {
            LogRecord::Intent {
                op: Op::Action,
                key,
                ..
            } if key.contains("/charge") => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// A 500 stored under the charge's key poisons it: Stripe replays the 500
/// to every retry. The coordinator reconciles (nothing live), logs a fresh
/// key and charges under it: the sale completes, charged once.
#[test]
fn a_stored_500_poisons_the_key_and_the_sale_completes_under_a_fresh_logged_key() {
    let c = completes_after(Injected::FailBeforeApply);
    let out = &c.outcome;
    let pi = out.stripe.payment_intents.values().next().unwrap();
    assert_eq!(pi.idempotency_key.as_deref(), Some("saga-res-1/charge#1"));
    assert_eq!(
        action_keys(out),
        [
            "saga-res-1/charge",
            "saga-res-1/charge",
            "saga-res-1/charge#1"
        ],
        "the fresh key is in a durable intent before it is used"
    );
    assert!(out.log.iter().any(|d| matches!(
        &d.record,
        LogRecord::Result {
            outcome: Outcome::KeyPoisoned { .. },
            ..
        }
    )));
}

/// A 500 stored *after* the charge applied: reconciliation finds the
/// intent, so no fresh key is ever used and the customer pays once.
#[test]
fn a_stored_500_after_the_charge_applied_is_found_not_charged_again() {
    let c = completes_after(Injected::FailAfterApply);
    let out = &c.outcome;
    assert!(action_keys(out).iter().all(|k| !k.contains('#')));
}

/// An edge 503 was never stored: after reconciling, the retry with the
/// *same* key executes — no fresh key needed.
#[test]
fn an_edge_503_is_retried_under_the_same_key() {
    let c = completes_after(Injected::EdgeUnavailable);
    let out = &c.outcome;
    let pi = out.stripe.payment_intents.values().next().unwrap();
    assert_eq!(pi.idempotency_key.as_deref(), Some("saga-res-1/charge"));
    assert_eq!(action_keys(out), ["saga-res-1/charge", "saga-res-1/charge"]);
}
