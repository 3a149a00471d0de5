//! Safety (always) and eventual (after the liveness phase) invariants.
//!
//! Safety:
//! - `no-double-charge`: per business key, the money taken (captured −
//!   refunded) never exceeds the price at any point of the ledger and ends
//!   at 0 or the price; no refund above its charge; at most one live
//!   PaymentIntent per saga.
//! - `no-overbooking`: confirmed bookings per room-night ≤ capacity + limit.
//! - `no-orphan-crm`: every Salesforce record belongs to a saga that was
//!   durably started.
//! - `log-discipline`: every service effect carries a key (or external id)
//!   whose `Intent` was durable in the coordinator's log before the effect.
//! - `compensation-order`: a saga that turns back compensates its applied
//!   steps in reverse order (read from the durable log: the first
//!   compensation intent of each step, before the saga's decision).
//!
//! Eventually (only judged when the run converged; otherwise `liveness`):
//! - `terminal`: every started saga is finalized in the log;
//! - `all-or-nothing`: Completed ⇒ charged once + room confirmed + CRM
//!   confirmed and Closed Won; Compensated ⇒ nothing charged, no booking,
//!   CRM absent or cancelled;
//! - `no-orphan-hold`: no active hold is left for a terminal saga;
//! - `needs-operator`: only where the scenario allows it, with a reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checkout::client::{
    BOOKING, BOOKING_STATUS, META_BUSINESS_KEY, OPPORTUNITY, STAGE, STAGE_LOST, STAGE_WON,
    STATUS_CANCELLED, STATUS_CONFIRMED,
};
use crate::checkout::run::RunOutcome;
use crate::saga::{action_key, durable_intent_keys, Decision, LogRecord, SagaId};
use crate::scenario::Scenario;
use crate::services::inventory::HoldStatus;
use crate::services::stripe::{Movement, PaymentIntentStatus};
use crate::sim::clock::Clocks;

/// One broken invariant, with the facts that break it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Violation {
    /// Stable name (`no-double-charge`, `all-or-nothing`, …).
    pub invariant: String,
    /// The business key concerned (empty when global).
    pub business_key: String,
    /// Simulated ms at which it was seen.
    pub at_ms: u64,
    pub facts: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] at {} ms: {}",
            self.invariant,
            if self.business_key.is_empty() {
                "-"
            } else {
                &self.business_key
            },
            self.at_ms,
            self.facts
        )
    }
}

/// The verdict of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub safety: Vec<Violation>,
    pub liveness: Vec<Violation>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.safety.is_empty() && self.liveness.is_empty()
    }

    /// The first violation (safety first), for one-line summaries.
    pub fn first(&self) -> Option<&Violation> {
        self.safety.first().or(self.liveness.first())
    }

    /// Every violation, safety first.
    pub fn all(&self) -> impl Iterator<Item = &Violation> {
        self.safety.iter().chain(self.liveness.iter())
    }
}

struct Ctx<'a> {
    out: &'a RunOutcome,
    clocks: Clocks,
    end_ms: u64,
    verdict: Verdict,
}

impl Ctx<'_> {
    fn safety(&mut self, invariant: &str, key: &str, at_ms: u64, facts: String) {
        self.verdict.safety.push(Violation {
            invariant: invariant.into(),
            business_key: key.into(),
            at_ms,
            facts,
        });
    }

    fn eventually(&mut self, invariant: &str, key: &str, facts: String) {
        let at_ms = self.end_ms;
        self.verdict.liveness.push(Violation {
            invariant: invariant.into(),
            business_key: key.into(),
            at_ms,
            facts,
        });
    }
}

/// Check every invariant of a finished run.
pub fn check(scenario: &Scenario, out: &RunOutcome) -> Verdict {
    let mut cx = Ctx {
        out,
        clocks: Clocks::new(&out.plan.clocks),
        end_ms: out.phases.end_ms,
        verdict: Verdict::default(),
    };
    let price = scenario.workload.price_cents;
    let log: Vec<&LogRecord> = out.log.iter().map(|d| &d.record).collect();
    let started: BTreeMap<SagaId, String> = log
        .iter()
        .filter_map(|r| match r {
            LogRecord::SagaStarted { saga, input, .. } => {
                Some((saga.clone(), input.business_key.clone()))
            }
            _ => None,
        })
        .collect();

    no_double_charge(&mut cx, price);
    no_overbooking(&mut cx);
    no_orphan_crm(&mut cx, &started);
    log_discipline(&mut cx);
    compensation_order(&mut cx, &log);

    if !out.phases.converged {
        let facts = format!(
            "did not converge within the liveness phase (faults stopped at {} ms, gave up at {} ms); \
             coordinator quiescent: {}; agents unfinished: {}",
            out.phases.safety_end_ms,
            out.phases.end_ms,
            out.coordinator_quiescent,
            out.agents.iter().filter(|a| !a.finished).count()
        );
        cx.eventually("liveness", "", facts);
    } else {
        eventual(&mut cx, scenario, &log, &started, price);
    }
    cx.verdict.safety.sort();
    cx.verdict.liveness.sort();
    cx.verdict
}

fn no_double_charge(cx: &mut Ctx<'_>, price: i64) {
    let stripe = &cx.out.stripe;
    for input in &cx.out.inputs {
        let key = &input.business_key;
        // The running net over the ledger of this customer (one per agent).
        let mut net = 0i64;
        for e in stripe.ledger_for(&input.customer) {
            match e.movement {
                Movement::Charge | Movement::Capture => net += e.amount_cents,
                Movement::Refund => net -= e.amount_cents,
                Movement::Authorize | Movement::Release => {}
            }
            if net > price {
                let at = cx.clocks.elapsed_at("stripe", e.at_ms);
                let facts = format!(
                    "{} cents taken after ledger entry #{} ({:?} {} on {}), price is {price}",
                    net, e.seq, e.movement, e.amount_cents, e.payment_intent
                );
                cx.safety("no-double-charge", key, at, facts);
                break;
            }
        }
        if net != 0 && net != price {
            let facts = format!("{net} cents taken in the end, expected 0 or {price}");
            cx.safety("no-double-charge", key, cx.end_ms, facts);
        }
        let intents: Vec<_> = stripe
            .intents_with_metadata(META_BUSINESS_KEY, key)
            .collect();
        for pi in &intents {
            if pi.amount_refunded_cents > pi.amount_received_cents {
                let facts = format!(
                    "{} refunded {} of {} received",
                    pi.id, pi.amount_refunded_cents, pi.amount_received_cents
                );
                cx.safety("no-double-charge", key, cx.end_ms, facts);
            }
        }
        let live: Vec<&str> = intents
            .iter()
            .filter(|pi| {
                pi.status == PaymentIntentStatus::RequiresCapture
                    || (pi.status == PaymentIntentStatus::Succeeded
                        && pi.amount_received_cents > pi.amount_refunded_cents)
            })
            .map(|pi| pi.id.as_str())
            .collect();
        if live.len() > 1 {
            let facts = format!("{} live payment intents: {}", live.len(), live.join(", "));
            cx.safety("no-double-charge", key, cx.end_ms, facts);
        }
    }
}

fn no_overbooking(cx: &mut Ctx<'_>) {
    let inv = &cx.out.inventory;
    let mut nights: BTreeSet<(String, u32)> = BTreeSet::new();
    for b in inv.bookings.values() {
        for n in b.first_night..b.first_night + b.nights {
            nights.insert((b.room_type.clone(), n));
        }
    }
    for (room, night) in nights {
        let o = inv.occupancy(&room, night);
        if o.confirmed > o.sellable {
            let facts = format!(
                "{} confirmed bookings of {room} on night {night}, {} sellable",
                o.confirmed, o.sellable
            );
            cx.safety("no-overbooking", "", cx.end_ms, facts);
        }
    }
}

fn no_orphan_crm(cx: &mut Ctx<'_>, started: &BTreeMap<SagaId, String>) {
    let owners: BTreeSet<&str> = started.keys().map(SagaId::as_str).collect();
    for rec in cx.out.salesforce.records.values() {
        let owned = rec
            .external_id
            .as_deref()
            .is_some_and(|e| owners.contains(e));
        if !owned {
            let at = cx.clocks.elapsed_at("salesforce", rec.created_ms);
            let facts = format!(
                "{} {} (external id {:?}) has no durably started saga",
                rec.object, rec.id, rec.external_id
            );
            cx.safety("no-orphan-crm", "", at, facts);
        }
    }
}

/// Durable intents: key -> earliest fsync time (ms).
fn durable_intents(out: &RunOutcome) -> BTreeMap<String, u64> {
    // The log's own reader says which records announce which keys; the
    // disk says when each became durable.
    let records: Vec<LogRecord> = out.log.iter().map(|d| d.record.clone()).collect();
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for (key, index) in durable_intent_keys(&records) {
        let t = out.log[index].synced_at_us / 1000;
        m.entry(key).and_modify(|x| *x = (*x).min(t)).or_insert(t);
    }
    m
}

fn log_discipline(cx: &mut Ctx<'_>) {
    let intents = durable_intents(cx.out);
    let mut effects: Vec<(String, String, u64, String)> = Vec::new(); // (key, service, at, what)
    for pi in cx.out.stripe.payment_intents.values() {
        let key = pi.idempotency_key.clone().unwrap_or_default();
        let at = cx.clocks.elapsed_at("stripe", pi.created_ms);
        effects.push((
            key,
            "stripe".into(),
            at,
            format!("payment intent {}", pi.id),
        ));
    }
    for h in cx.out.inventory.holds.values() {
        let key = h.client_ref.clone().unwrap_or_default();
        let at = cx.clocks.elapsed_at("inventory", h.created_ms);
        effects.push((key, "inventory".into(), at, format!("hold {}", h.id)));
    }
    for rec in cx.out.salesforce.records.values() {
        let Some(ext) = rec.external_id.as_deref() else {
            let at = cx.clocks.elapsed_at("salesforce", rec.created_ms);
            effects.push((
                String::new(),
                "salesforce".into(),
                at,
                format!("record {}", rec.id),
            ));
            continue;
        };
        let saga = SagaId::for_business_key(ext.strip_prefix("saga-").unwrap_or(ext));
        let key = action_key(&saga, "crm_record");
        let at = cx.clocks.elapsed_at("salesforce", rec.created_ms);
        effects.push((
            key,
            "salesforce".into(),
            at,
            format!("{} {}", rec.object, rec.id),
        ));
    }
    for (key, service, at, what) in effects {
        match intents.get(&key) {
            // Times are whole ms and a skewed clock's inverse may round
            // down by one; a correct coordinator's request leaves after the
            // fsync and takes at least a network hop, so 1 ms of slack
            // never hides a real "effect before intent".
            Some(&synced) if synced <= at + 1 => {}
            Some(&synced) => {
                let facts = format!(
                    "{service} {what} applied at {at} ms, but the intent for key {key} was durable only at {synced} ms"
                );
                cx.safety("log-discipline", &business_key_of(&key), at, facts);
            }
            None => {
                let facts = format!("{service} {what} carries key {key:?} with no durable intent");
                cx.safety("log-discipline", &business_key_of(&key), at, facts);
            }
        }
    }
}

fn compensation_order(cx: &mut Ctx<'_>, log: &[&LogRecord]) {
    let mut order: BTreeMap<&SagaId, Vec<usize>> = BTreeMap::new();
    let mut decided: BTreeSet<&SagaId> = BTreeSet::new();
    for r in log {
        match r {
            LogRecord::Decision { saga, .. } => {
                decided.insert(saga);
            }
            LogRecord::Intent {
                saga,
                step,
                op: crate::saga::Op::Compensate,
                ..
            } if !decided.contains(saga) => {
                let steps = order.entry(saga).or_default();
                if !steps.contains(step) {
                    steps.push(*step);
                }
            }
            _ => {}
        }
    }
    for (saga, steps) in order {
        if steps.windows(2).any(|w| w[0] < w[1]) {
            let facts = format!("compensated steps in the order {steps:?}, not in reverse");
            let key = saga.business_key().to_string();
            cx.safety("compensation-order", &key, cx.end_ms, facts);
        }
    }
}

fn business_key_of(key: &str) -> String {
    key.split('/')
        .next()
        .and_then(|s| s.strip_prefix("saga-"))
        .unwrap_or("")
        .to_string()
}

fn eventual(
    cx: &mut Ctx<'_>,
    scenario: &Scenario,
    log: &[&LogRecord],
    started: &BTreeMap<SagaId, String>,
    price: i64,
) {
    let finals: BTreeMap<&SagaId, &Decision> = log
        .iter()
        .filter_map(|r| match r {
            LogRecord::Finalized { saga, status, .. } => Some((saga, status)),
            _ => None,
        })
        .collect();
    for (saga, key) in started {
        let Some(status) = finals.get(saga) else {
            cx.eventually(
                "terminal",
                key,
                format!("{} is not finalized in the log", saga.as_str()),
            );
            continue;
        };
        let input = cx
            .out
            .inputs
            .iter()
            .find(|i| &i.business_key == key)
            .cloned();
        let Some(input) = input else {
            continue;
        };
        let net = cx.out.stripe.net_cents(&input.customer);
        let held = cx.out.stripe.held_cents(&input.customer);
        let hold_ref = action_key(saga, "hold_room");
        let (holds, bookings) = cx.out.inventory.by_client_ref(&hold_ref);
        let active: Vec<&str> = holds
            .iter()
            .filter(|h| h.status == HoldStatus::Active)
            .map(|h| h.id.as_str())
            .collect();
        let sf = |object: &str, field: &str| -> Vec<Option<String>> {
            cx.out
                .salesforce
                .records
                .values()
                .filter(|r| r.object == object && r.external_id.as_deref() == Some(saga.as_str()))
                .map(|r| {
                    r.fields
                        .get(field)
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                })
                .collect()
        };
        let booking_status = sf(BOOKING, BOOKING_STATUS);
        let stage = sf(OPPORTUNITY, STAGE);
        if !active.is_empty() {
            cx.eventually(
                "no-orphan-hold",
                key,
                format!("terminal saga leaves active hold(s) {}", active.join(", ")),
            );
        }
        match status {
            Decision::Completed => {
                let mut wrong = Vec::new();
                if net != price {
                    wrong.push(format!("charged {net} cents, price {price}"));
                }
                if bookings.len() != 1 {
                    wrong.push(format!("{} room booking(s)", bookings.len()));
                }
                if booking_status != [Some(STATUS_CONFIRMED.to_string())] {
                    wrong.push(format!("CRM booking status {booking_status:?}"));
                }
                if stage != [Some(STAGE_WON.to_string())] {
                    wrong.push(format!("CRM opportunity stage {stage:?}"));
                }
                if !wrong.is_empty() {
                    cx.eventually(
                        "all-or-nothing",
                        key,
                        format!("completed, but {}", wrong.join("; ")),
                    );
                }
            }
            Decision::Compensated { .. } => {
                let mut wrong = Vec::new();
                if net != 0 || held != 0 {
                    wrong.push(format!("{net} cents taken, {held} cents held"));
                }
                if !bookings.is_empty() {
                    wrong.push(format!("{} room booking(s)", bookings.len()));
                }
                if booking_status
                    .iter()
                    .any(|s| s.as_deref() != Some(STATUS_CANCELLED))
                {
                    wrong.push(format!("CRM booking status {booking_status:?}"));
                }
                if stage.iter().any(|s| s.as_deref() != Some(STAGE_LOST)) {
                    wrong.push(format!("CRM opportunity stage {stage:?}"));
                }
                if !wrong.is_empty() {
                    cx.eventually(
                        "all-or-nothing",
                        key,
                        format!("compensated, but {}", wrong.join("; ")),
                    );
                }
            }
            Decision::NeedsOperator { reason } => {
                if !scenario.checks.needs_operator_allowed {
                    cx.eventually(
                        "needs-operator",
                        key,
                        format!("ended NeedsOperator: {reason}"),
                    );
                } else if reason.trim().is_empty() {
                    cx.eventually(
                        "needs-operator",
                        key,
                        "NeedsOperator without a reason".into(),
                    );
                }
            }
        }
    }
    // Every agent that was answered "decided" must have a finalized saga.
    for a in &cx.out.agents {
        if a.answer
            .as_ref()
            .is_some_and(|s| !matches!(s, crate::saga::SagaStatus::Rejected { .. }))
            && !started.values().any(|k| k == &a.business_key)
        {
            cx.eventually(
                "terminal",
                &a.business_key,
                "the agent was answered but no saga was durably started".into(),
            );
        }
    }
}
