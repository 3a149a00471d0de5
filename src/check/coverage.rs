//! Sometimes-assertions (Antithesis style): did a run reach the paths that
//! matter? Each point is counted per run and totalled over a fuzz run; a
//! long fuzz run of the default scenario must hit every one — otherwise the
//! faults are not exercising what the invariants protect.
//!
//! Computed from structured results (network counters, the nemesis's
//! counts, the coordinator's durable log, the services' ground truth), so it
//! works in hash-only trace mode at fuzzing speed.
//!
//! Not here: pass/fail of a run (that is `invariants`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::truth::owner_of;
use crate::reference::glue::{PROCESSING, REFUND_FAILED, REFUND_PENDING, REQUIRES_ACTION};
use crate::saga::{LogRecord, Op, Outcome, SagaId, SagaStatus};
use crate::scenario::Scenario;
use crate::sim::clock::Clocks;
use crate::sim::faults::SEARCH_INCIDENT_MIN_MS;
use crate::workload::META_SAGA;
use crate::world::run::RunOutcome;

/// Every coverage point, in report order.
pub const POINTS: &[&str] = &[
    "fault: request dropped",
    "fault: reply dropped after apply",
    "fault: request duplicated",
    "fault: request delayed past timeout",
    "fault: request delayed",
    "fault: service error injected",
    "fault: partition cut traffic",
    "fault: node crashed",
    "fault: node paused",
    "fault: clock skewed",
    "fault: connection refused",
    "reconcile found the effect applied",
    "reconcile found the effect not applied",
    "compensation after a lost reply",
    "duplicate deduplicated by an idempotency key",
    "crash between intent and result",
    "late request landed after its compensation",
    "agent retry deduplicated",
    "salesforce: a validation rule refused a save",
    "salesforce: a write waited out another's row lock",
    "salesforce: expired session re-authenticated",
    "salesforce: revoked session re-authenticated",
    "stripe: edge 503 not stored under the key",
    "stripe: poisoned key retried under a fresh logged key",
    "fault: search index an incident behind",
    "stripe: 3-D Secure answered as a rejection the agent can act on",
    "stripe: processing payment awaited, then applied",
    "stripe: pending refund awaited",
    "stripe: failed refund handed to an operator",
];

/// The points `s` cannot reach, each with why: a run reaches them only
/// where the scenario declares what causes them.
pub fn unreachable(s: &Scenario) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let st = &s.stripe;
    for (point, undeclared, why) in [
        (
            "stripe: 3-D Secure answered as a rejection the agent can act on",
            st.requires_action_customers.is_empty(),
            "no stripe.requires_action_customers (scenario stripe-async-payments has them)",
        ),
        (
            "stripe: processing payment awaited, then applied",
            st.processing_customers.is_empty(),
            "no stripe.processing_customers (scenario stripe-async-payments has them)",
        ),
        (
            "stripe: pending refund awaited",
            st.refund_settle_ms == 0,
            "stripe.refund_settle_ms is 0: refunds settle at once (scenario stripe-refunds sets it)",
        ),
        (
            "stripe: failed refund handed to an operator",
            st.refund_failing_customers.is_empty(),
            "no stripe.refund_failing_customers (scenario stripe-refunds has them)",
        ),
    ] {
        if undeclared {
            out.push((point, why));
        }
    }
    if s.phases.safety_ms.saturating_add(s.phases.liveness_ms) < s.salesforce.session_timeout_ms {
        out.push((
            "salesforce: expired session re-authenticated",
            "no run lasts as long as salesforce.session_timeout_ms (two hours by default), so no \
             session ends of inactivity (scenario salesforce-sessions sets the 15-minute minimum)",
        ));
    }
    if s.salesforce.validation_rules.is_empty() {
        out.push((
            "salesforce: a validation rule refused a save",
            "the scenario declares no salesforce.validation_rules (scenario crm-refuses does)",
        ));
    }
    out
}

/// Hits per coverage point (every point present, 0 when missed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage(pub BTreeMap<String, u64>);

impl Coverage {
    /// Every point of [`POINTS`] at 0 hits.
    pub fn empty() -> Coverage {
        Coverage(POINTS.iter().map(|p| (p.to_string(), 0)).collect())
    }

    fn hit(&mut self, point: &str, yes: bool) {
        debug_assert!(POINTS.contains(&point), "unknown coverage point {point}");
        if yes {
            *self.0.entry(point.to_string()).or_insert(0) += 1;
        }
    }

    /// Add another run's (or shard's) hits.
    pub fn add(&mut self, other: &Coverage) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Points never hit.
    pub fn missed(&self) -> Vec<&str> {
        POINTS
            .iter()
            .copied()
            .filter(|p| self.0.get(*p).copied().unwrap_or(0) == 0)
            .collect()
    }
}

/// The coverage of one run.
pub fn coverage(out: &RunOutcome) -> Coverage {
    let mut c = Coverage::empty();
    let n = &out.net;
    c.hit("fault: request dropped", n.dropped_requests > 0);
    c.hit("fault: reply dropped after apply", n.dropped_replies > 0);
    c.hit("fault: request duplicated", n.duplicated > 0);
    c.hit(
        "fault: request delayed past timeout",
        n.delayed_past_timeout > 0,
    );
    c.hit("fault: request delayed", n.delayed > 0);
    c.hit("fault: service error injected", n.injected > 0);
    c.hit("fault: partition cut traffic", n.partitioned > 0);
    c.hit("fault: node crashed", out.phases.crashes > 0);
    c.hit("fault: node paused", out.phases.pauses > 0);
    c.hit(
        "fault: clock skewed",
        out.plan
            .clocks
            .iter()
            .any(|k| k.offset_ms != 0 || k.drift_ppm != 0),
    );
    c.hit("fault: connection refused", n.refused > 0);

    let log: Vec<&LogRecord> = out.log.iter().map(|d| &d.record).collect();
    let reconciled = |want: fn(&Outcome) -> bool| {
        log.iter().any(
            |r| matches!(r, LogRecord::Result { op: Op::Reconcile, outcome, .. } if want(outcome)),
        )
    };
    c.hit(
        "reconcile found the effect applied",
        reconciled(|o| matches!(o, Outcome::Found { .. })),
    );
    c.hit(
        "reconcile found the effect not applied",
        reconciled(|o| matches!(o, Outcome::NotFound)),
    );
    c.hit(
        "compensation after a lost reply",
        compensation_after_lost_reply(&log),
    );
    c.hit(
        "duplicate deduplicated by an idempotency key",
        out.stripe.idempotent_replays + out.inventory.client_ref_dedupes > 0,
    );
    c.hit(
        "crash between intent and result",
        intent_without_result(&log),
    );
    c.hit(
        "late request landed after its compensation",
        late_after_compensation(out, &log),
    );
    c.hit(
        "agent retry deduplicated",
        out.agents.iter().any(|a| {
            a.calls >= 2
                && log
                    .iter()
                    .filter(|r| matches!(r, LogRecord::SagaStarted { input, .. } if input.business_key == a.business_key))
                    .count()
                    == 1
        }),
    );
    c.hit(
        "salesforce: a validation rule refused a save",
        out.salesforce.validation_refusals > 0,
    );
    c.hit(
        "salesforce: a write waited out another's row lock",
        out.salesforce.lock_conflicts > 0,
    );
    c.hit(
        "salesforce: expired session re-authenticated",
        out.salesforce.relogins_after_expiry > 0,
    );
    c.hit(
        "salesforce: revoked session re-authenticated",
        out.salesforce.relogins_after_revocation > 0,
    );
    c.hit(
        "stripe: edge 503 not stored under the key",
        out.stripe.edge_errors > 0,
    );
    c.hit(
        "stripe: poisoned key retried under a fresh logged key",
        retried_after_poisoned_key(&log),
    );
    let answered = |prefix: &str, operator: bool| {
        out.agents.iter().any(|a| match &a.answer {
            Some(SagaStatus::Compensated { reason }) if !operator => reason.contains(prefix),
            Some(SagaStatus::NeedsOperator { reason }) if operator => reason.contains(prefix),
            _ => false,
        })
    };
    c.hit(
        "stripe: 3-D Secure answered as a rejection the agent can act on",
        answered(REQUIRES_ACTION, false),
    );
    c.hit(
        "stripe: processing payment awaited, then applied",
        awaited_then(&log, Op::Action, PROCESSING),
    );
    c.hit(
        "stripe: pending refund awaited",
        awaited_then(&log, Op::Compensate, REFUND_PENDING),
    );
    c.hit(
        "stripe: failed refund handed to an operator",
        answered(REFUND_FAILED, true),
    );
    c.hit(
        "fault: search index an incident behind",
        out.plan
            .search_lags
            .iter()
            .any(|l| l.lag_ms >= SEARCH_INCIDENT_MIN_MS),
    );
    c
}

/// A step's `op` was answered "not yet" (a reason containing `waiting`:
/// Unknown for a processing payment, Transient for a pending refund) and
/// later the step was applied (found by a reconcile, or the compensation
/// applied) — the coordinator awaited the service's asynchronous state.
fn awaited_then(log: &[&LogRecord], op: Op, waiting: &str) -> bool {
    let mut waited: Vec<(&SagaId, usize)> = Vec::new();
    for r in log {
        let LogRecord::Result {
            saga,
            step,
            op: o,
            outcome,
            ..
        } = r
        else {
            continue;
        };
        match outcome {
            Outcome::Unknown { reason } | Outcome::Transient { reason }
                if *o == op && reason.contains(waiting) =>
            {
                waited.push((saga, *step));
            }
            Outcome::Found { .. }
                if op == Op::Action && *o == Op::Reconcile && waited.contains(&(saga, *step)) =>
            {
                return true;
            }
            Outcome::Applied { .. } if *o == op && waited.contains(&(saga, *step)) => {
                return true;
            }
            _ => {}
        }
    }
    false
}

/// An action's key was poisoned (`Outcome::KeyPoisoned`) and the step was
/// sent again (under the fresh key its intent names).
fn retried_after_poisoned_key(log: &[&LogRecord]) -> bool {
    let mut poisoned: Vec<(&SagaId, usize)> = Vec::new();
    for r in log {
        match r {
            LogRecord::Result {
                saga,
                step,
                op: Op::Action,
                outcome: Outcome::KeyPoisoned { .. },
                ..
            } => poisoned.push((saga, *step)),
            LogRecord::Intent {
                saga,
                step,
                op: Op::Action,
                key,
                ..
            } if poisoned.contains(&(saga, *step)) => {
                debug_assert!(key.contains('#'), "a poisoned key is never reused: {key}");
                return true;
            }
            _ => {}
        }
    }
    false
}

/// A step's action timed out, reconciliation found it applied (the reply
/// was lost), and the saga later compensated.
fn compensation_after_lost_reply(log: &[&LogRecord]) -> bool {
    let mut lost: Vec<(&SagaId, usize)> = Vec::new();
    let mut applied_unseen: Vec<&SagaId> = Vec::new();
    for r in log {
        match r {
            LogRecord::Result {
                saga,
                step,
                op: Op::Action,
                outcome: Outcome::Unknown { reason },
                ..
            } if reason.contains("timeout") => lost.push((saga, *step)),
            LogRecord::Result {
                saga,
                step,
                op: Op::Reconcile,
                outcome: Outcome::Found { .. },
                ..
            } if lost.contains(&(saga, *step)) => applied_unseen.push(saga),
            LogRecord::Intent {
                saga,
                op: Op::Compensate,
                ..
            } if applied_unseen.contains(&saga) => return true,
            _ => {}
        }
    }
    false
}

/// An Action/Compensate intent that never got its own result: the
/// coordinator crashed between writing the intent and recording the result.
fn intent_without_result(log: &[&LogRecord]) -> bool {
    log.iter().enumerate().any(|(i, r)| {
        let LogRecord::Intent { saga, step, op, .. } = r else {
            return false;
        };
        let answered = log[i + 1..].iter().find_map(|later| match later {
            LogRecord::Result {
                saga: s,
                step: k,
                op: o,
                ..
            } if s == saga && k == step && o == op => Some(true),
            LogRecord::Intent {
                saga: s,
                step: k,
                op: o,
                ..
            } if s == saga && k == step && o == op => Some(false),
            _ => None,
        });
        answered != Some(true)
    })
}

/// A Stripe intent or PMS hold of a saga created after the saga started
/// compensating (all times converted to simulated time).
fn late_after_compensation(out: &RunOutcome, log: &[&LogRecord]) -> bool {
    let clocks = Clocks::new(&out.plan.clocks);
    log.iter().any(|r| {
        let LogRecord::CompensationStarted { saga, at_ms, .. } = r else {
            return false;
        };
        let since = clocks.elapsed_at("coordinator", *at_ms);
        let late_charge = out.stripe.payment_intents.values().any(|pi| {
            pi.metadata.get(META_SAGA).map(String::as_str) == Some(saga.as_str())
                && clocks.elapsed_at("stripe", pi.created_ms) > since
        });
        let key = [saga.business_key()].into();
        let late_hold = out.inventory.holds.values().any(|h| {
            h.client_ref
                .as_deref()
                .is_some_and(|r| owner_of(r, &key).is_some())
                && clocks.elapsed_at("inventory", h.created_ms) > since
        });
        late_charge || late_hold
    })
}
