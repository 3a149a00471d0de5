//! The invariants, judged **black-box**: from what the services applied
//! (ground truth, attributed to business keys by `truth`) and what each
//! caller was told — never from the coordinator's own records. They are
//! derived from the workload's declaration, so they hold for any saga.
//!
//! Safety (over the whole run):
//! - `no-double-charge`: per business key, the money taken (captured −
//!   refunded) never exceeds the amount its input declared and ends at 0 or
//!   that amount; no refund above its charge; at most one live
//!   PaymentIntent per (business key, step).
//! - `at-most-once`: at most one booking, one Salesforce record per object
//!   and one live effect per user service per business key.
//! - `no-overbooking`: confirmed bookings per unit-night ≤ capacity + limit.
//! - `attributable`: every effect carries a label of the attribution
//!   contract (`crate::workload`) naming one of the run's business keys.
//! - `no-retry-after-decline`: a card Stripe declined (402, definitive) is
//!   never asked again for the same business key.
//! - `answer-stands`: every decided answer a caller gets for its key (a
//!   restarted caller asks again) is the same decision.
//!
//! `docs/PROMISES.md` lists every promise the coordinator makes to its
//! callers and to the services, and the invariant that checks each.
//!
//! Eventually (only judged when the run converged; otherwise `liveness`):
//! - `all-or-nothing`: each saga ends with every declared step done or
//!   nothing left — Completed ⇒ all, Compensated or Rejected ⇒ nothing,
//!   unanswered ⇒ one or the other;
//! - `caller-told-truth`: the answer agrees with which one it is;
//! - `no-orphan-hold`: no hold left active where the workload confirms its
//!   holds;
//! - `needs-operator`: only where the scenario allows it, Stripe ended the
//!   authorization (nobody can capture it), a PMS operator withdrew the
//!   rooms of an unconfirmed hold, or Stripe failed a refund of the key's
//!   charge (nobody can return that money), with a reason.
//!
//! Log checks, only for a coordinator that keeps sagasim's saga log
//! ([`crate::world::CoordinatorImpl::uses_saga_log`]), named `saga-log:*`:
//! - `saga-log:discipline`: every effect carries a key (or external id)
//!   whose `Intent` was durable in the log before the effect;
//! - `saga-log:compensation-order`: a saga that turns back compensates its
//!   applied steps in reverse order;
//! - `saga-log:terminal`: every durably started saga is finalized, and
//!   every caller answered has a durably started saga.
//!
//! User invariants ([`UserInvariant`]) are plain functions over the same
//! run and are reported, shrunk and replayed like these.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::truth::{Expectations, SagaState, Truth};
use crate::saga::{action_key, durable_intent_keys, Decision, LogRecord, Op, SagaId, SagaStatus};
use crate::scenario::Scenario;
use crate::sim::clock::Clocks;
use crate::workload::Operation;
use crate::world::run::RunOutcome;

/// One broken invariant, with the facts that break it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Violation {
    /// Stable name (`no-double-charge`, `all-or-nothing`, …).
    pub invariant: String,
    /// The business key concerned (empty when global).
    pub business_key: String,
    /// Simulated ms at which it was seen.
    pub at_ms: u64,
    /// What was seen, in one line for a human (amounts, ids, statuses).
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
    /// Broken safety invariants and user invariants, sorted.
    pub safety: Vec<Violation>,
    /// Broken "eventually" invariants, sorted; after a run that did not
    /// converge, the one `liveness` violation instead.
    pub liveness: Vec<Violation>,
}

impl Verdict {
    /// No violation of either kind: the run passed.
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

/// A check of the user's own: a name and a function over the finished run
/// (ground truth, callers' records, inputs). Its violations are reported,
/// shrunk and replayed like the built-in ones.
#[derive(Clone)]
pub struct UserInvariant {
    /// The name its violations carry when they leave `invariant` empty.
    pub name: String,
    /// The check: every violation it finds in the run (empty: it holds).
    #[allow(clippy::type_complexity)]
    pub check: Arc<dyn Fn(&RunOutcome) -> Vec<Violation> + Send + Sync>,
}

impl UserInvariant {
    /// A user invariant named `name`. A [`Violation`] it returns with an
    /// empty `invariant` is given `name`; all count as safety violations.
    pub fn new(
        name: &str,
        check: impl Fn(&RunOutcome) -> Vec<Violation> + Send + Sync + 'static,
    ) -> UserInvariant {
        UserInvariant {
            name: name.to_string(),
            check: Arc::new(check),
        }
    }
}

impl fmt::Debug for UserInvariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserInvariant({})", self.name)
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
    let truth = Truth::of(out);
    let expect = Expectations::of(&out.workload);
    no_double_charge(&mut cx, &truth);
    at_most_once(&mut cx, &truth);
    no_overbooking(&mut cx);
    attributable(&mut cx, &truth);
    no_retry_after_decline(&mut cx, &truth);
    answer_stands(&mut cx);
    if out.uses_saga_log {
        log_discipline(&mut cx);
        compensation_order(&mut cx);
    }
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
        eventual(&mut cx, scenario, &truth, &expect);
        if out.uses_saga_log {
            log_terminal(&mut cx, scenario, &truth);
        }
    }
    let mut verdict = cx.verdict;
    verdict.safety.sort();
    verdict.safety.dedup();
    verdict.liveness.sort();
    verdict.liveness.dedup();
    verdict
}

/// [`check`], then the user's invariants (their violations count as safety
/// violations, named as the user named them).
pub fn check_with(scenario: &Scenario, out: &RunOutcome, user: &[UserInvariant]) -> Verdict {
    let mut verdict = check(scenario, out);
    for inv in user {
        for mut v in (inv.check)(out) {
            if v.invariant.is_empty() {
                v.invariant = inv.name.clone();
            }
            verdict.safety.push(v);
        }
    }
    verdict.safety.sort();
    verdict
}

fn no_double_charge(cx: &mut Ctx<'_>, truth: &Truth) {
    for (key, t) in &truth.keys {
        let amount = t.due_cents;
        let partial = if t.due_cents == t.amount_cents {
            String::new()
        } else {
            format!(" (a partial capture of {amount} of {})", t.amount_cents)
        };
        if let Some(o) = &t.overcharge {
            let facts = format!(
                "{} cents taken after {}, the input declared {amount}{partial}",
                o.net_cents, o.entry
            );
            cx.safety("no-double-charge", key, o.at_ms, facts);
        }
        if t.net_cents != 0 && t.net_cents != amount {
            let facts = format!(
                "{} cents taken in the end, expected 0 or {amount}{partial}",
                t.net_cents
            );
            cx.safety("no-double-charge", key, cx.end_ms, facts);
        }
        for pi in &t.over_refunded {
            let facts = format!("{pi} refunded more than it received");
            cx.safety("no-double-charge", key, cx.end_ms, facts);
        }
        for (step, live) in &t.live_intents {
            if live.len() > 1 {
                let facts = format!(
                    "{} live payment intents for step {step:?}: {}",
                    live.len(),
                    live.join(", ")
                );
                cx.safety("no-double-charge", key, cx.end_ms, facts);
            }
        }
    }
}

fn at_most_once(cx: &mut Ctx<'_>, truth: &Truth) {
    for (key, t) in &truth.keys {
        // A booking a guest cancelled since was still made.
        if t.bookings_made() > 1 {
            let made: Vec<&str> = t
                .bookings
                .iter()
                .chain(&t.guest_cancelled)
                .map(String::as_str)
                .collect();
            let facts = format!("{} bookings: {}", made.len(), made.join(", "));
            cx.safety("at-most-once", key, cx.end_ms, facts);
        }
        for (service, live) in &t.user_live {
            if live.len() > 1 {
                let facts = format!("{} live {service} effects: {}", live.len(), live.join(", "));
                cx.safety("at-most-once", key, cx.end_ms, facts);
            }
        }
        for (object, recs) in &t.records {
            if recs.len() > 1 {
                let ids: Vec<&str> = recs.iter().map(|(id, _)| *id).collect();
                let facts = format!("{} {object} records: {}", recs.len(), ids.join(", "));
                cx.safety("at-most-once", key, cx.end_ms, facts);
            }
        }
    }
}

/// A declined card (402) is a definitive answer: sending the charge again
/// (under a new key, or by confirming the intent again) asks the bank
/// twice, and to the customer looks like a second attempt to take money.
fn no_retry_after_decline(cx: &mut Ctx<'_>, truth: &Truth) {
    for (key, t) in &truth.keys {
        if t.declines > 1 {
            let facts = format!(
                "the card was declined {} times: a definitive decline was retried",
                t.declines
            );
            cx.safety("no-retry-after-decline", key, cx.end_ms, facts);
        }
    }
}

/// A decided answer stands: every decided answer a caller got for its key
/// (a restarted caller asks again) is the same decision — an answer given
/// before its decision was durable can change after a crash.
fn answer_stands(cx: &mut Ctx<'_>) {
    for a in &cx.out.agents {
        let Some(first) = a.answers.first() else {
            continue;
        };
        if let Some(other) = a
            .answers
            .iter()
            .find(|s| std::mem::discriminant(*s) != std::mem::discriminant(first))
        {
            let facts = format!(
                "told {} and later {}",
                label(Some(first)),
                label(Some(other))
            );
            let at = a.answered_ms.unwrap_or(cx.end_ms);
            let key = a.business_key.clone();
            cx.safety("answer-stands", &key, at, facts);
        }
    }
}

fn attributable(cx: &mut Ctx<'_>, truth: &Truth) {
    for u in &truth.unattributed {
        let facts = format!(
            "effect not attributable: {} carries {} (see the attribution contract)",
            u.what,
            u.label
                .as_deref()
                .map_or("no label".to_string(), |l| format!(
                    "label {l:?}, not a business key of this run"
                ))
        );
        cx.safety("attributable", "", u.at_ms, facts);
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
        // The record was created by the first step that writes its object.
        let creator = cx.out.workload.steps().iter().find(|s| match &s.op {
            Operation::SalesforceUpsert { records, .. } => {
                records.iter().any(|r| r.object == rec.object)
            }
            _ => false,
        });
        let key = creator.map_or(String::new(), |s| action_key(&saga, &s.name));
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
                cx.safety("saga-log:discipline", &business_key_of(&key), at, facts);
            }
            None => {
                let facts = format!("{service} {what} carries key {key:?} with no durable intent");
                cx.safety("saga-log:discipline", &business_key_of(&key), at, facts);
            }
        }
    }
}

fn compensation_order(cx: &mut Ctx<'_>) {
    let log: Vec<&LogRecord> = cx.out.log.iter().map(|d| &d.record).collect();
    let mut order: BTreeMap<&SagaId, Vec<usize>> = BTreeMap::new();
    let mut decided: BTreeSet<&SagaId> = BTreeSet::new();
    for r in &log {
        match r {
            LogRecord::Decision { saga, .. } => {
                decided.insert(saga);
            }
            LogRecord::Intent {
                saga,
                step,
                op: Op::Compensate,
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
            cx.safety("saga-log:compensation-order", &key, cx.end_ms, facts);
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

fn eventual(cx: &mut Ctx<'_>, scenario: &Scenario, truth: &Truth, expect: &Expectations) {
    let answers: BTreeMap<&str, Option<&SagaStatus>> = cx
        .out
        .agents
        .iter()
        .map(|a| (a.business_key.as_str(), a.answer.as_ref()))
        .collect();
    for (key, t) in &truth.keys {
        // A hold an operator made unconfirmable is left to its TTL (and to
        // the operator the saga hands over to).
        if expect.holds_end_confirmed() && !t.active_holds.is_empty() && !t.rooms_withdrawn {
            let facts = format!(
                "active hold(s) {} left at the end",
                t.active_holds.join(", ")
            );
            cx.eventually("no-orphan-hold", key, facts);
        }
        let state = expect.state(t);
        let answer = answers.get(key.as_str()).copied().flatten();
        match answer {
            Some(SagaStatus::NeedsOperator { reason }) => {
                if !needs_operator_allowed(scenario, truth, key) {
                    cx.eventually(
                        "needs-operator",
                        key,
                        format!("ended NeedsOperator: {reason}"),
                    );
                } else if reason.trim().is_empty() {
                    let facts = "NeedsOperator without a reason".to_string();
                    cx.eventually("needs-operator", key, facts);
                }
            }
            // The environment removing what the saga made (an admin's
            // deletion, a guest's cancellation) is not the coordinator's
            // undoing: `SagaState::Removed` agrees with either answer.
            Some(SagaStatus::Completed) => match state {
                SagaState::All | SagaState::Removed => {}
                SagaState::Nothing => {
                    let facts = "told Completed, but nothing is left in any service".to_string();
                    cx.eventually("caller-told-truth", key, facts);
                }
                SagaState::Partial(_) => {
                    cx.eventually("all-or-nothing", key, format!("completed, but {state}"))
                }
            },
            Some(SagaStatus::Compensated { .. } | SagaStatus::Rejected { .. }) => match state {
                SagaState::Nothing | SagaState::Removed => {}
                SagaState::All => {
                    let facts = format!("told {}, but every step is done", label(answer));
                    cx.eventually("caller-told-truth", key, facts);
                }
                SagaState::Partial(_) => {
                    let facts = format!("{}, but {state}", label(answer));
                    cx.eventually("all-or-nothing", key, facts);
                }
            },
            None | Some(SagaStatus::Running { .. }) => {
                // The services left this saga for an operator (Stripe ended
                // the authorization or failed the refund, a PMS operator
                // withdrew the rooms): nothing can complete or undo it, and
                // its caller, who gave up listening, was owed NeedsOperator —
                // judged as one who heard it would be. A scenario's blanket
                // permission excuses nothing here.
                let services_left_it = services_need_operator(truth, key);
                if let (SagaState::Partial(_), false) = (&state, services_left_it) {
                    cx.eventually("all-or-nothing", key, format!("unanswered, and {state}"));
                }
            }
        }
    }
}

/// Whether `key` may end `NeedsOperator`: where the scenario allows it,
/// where Stripe failed a refund of the key's charge (a closed card: no
/// coordinator can give that money back; the ledger still counts it as
/// taken, so a coordinator that claims anything else is caught by
/// `all-or-nothing`), where Stripe ended its authorization (expired or
/// reversed by the network: a capture after the pivot can only fail), or
/// where a PMS operator changed the room type of a hold it never confirmed
/// (a confirm after the pivot can only fail).
fn needs_operator_allowed(scenario: &Scenario, truth: &Truth, key: &str) -> bool {
    scenario.checks.needs_operator_allowed || services_need_operator(truth, key)
}

/// Whether the services show that no coordinator could finish or undo
/// `key`'s saga alone: Stripe failed a refund or ended an authorization of
/// it, or a PMS operator changed the room type of a hold it never confirmed.
fn services_need_operator(truth: &Truth, key: &str) -> bool {
    truth.keys.get(key).is_some_and(|t| {
        !t.failed_refunds.is_empty() || !t.expired_authorizations.is_empty() || t.rooms_withdrawn
    })
}

fn label(answer: Option<&SagaStatus>) -> &'static str {
    match answer {
        Some(SagaStatus::Compensated { .. }) => "compensated",
        Some(SagaStatus::Rejected { .. }) => "rejected",
        Some(SagaStatus::Completed) => "completed",
        Some(SagaStatus::NeedsOperator { .. }) => "needs operator",
        Some(SagaStatus::Running { .. }) | None => "unanswered",
    }
}

/// The log's own account: every durably started saga finalized (a
/// NeedsOperator decision only where allowed), and every caller answered
/// has a durably started saga.
fn log_terminal(cx: &mut Ctx<'_>, scenario: &Scenario, truth: &Truth) {
    let out = cx.out;
    let mut started: BTreeMap<&SagaId, &str> = BTreeMap::new();
    let mut finals: BTreeMap<&SagaId, &Decision> = BTreeMap::new();
    for d in &out.log {
        match &d.record {
            LogRecord::SagaStarted { saga, input, .. } => {
                started.insert(saga, input.business_key.as_str());
            }
            LogRecord::Finalized { saga, status, .. } => {
                finals.insert(saga, status);
            }
            _ => {}
        }
    }
    for (saga, key) in &started {
        match finals.get(saga) {
            None => cx.eventually(
                "saga-log:terminal",
                key,
                format!("{} is not finalized in the log", saga.as_str()),
            ),
            Some(Decision::NeedsOperator { reason })
                if !needs_operator_allowed(scenario, truth, key) =>
            {
                cx.eventually(
                    "needs-operator",
                    key,
                    format!("ended NeedsOperator: {reason}"),
                )
            }
            Some(_) => {}
        }
    }
    let started_keys: BTreeSet<&str> = started.values().copied().collect();
    for a in &out.agents {
        let answered = a
            .answer
            .as_ref()
            .is_some_and(|s| s.is_decided() && !matches!(s, SagaStatus::Rejected { .. }));
        if answered && !started_keys.contains(a.business_key.as_str()) {
            cx.eventually(
                "saga-log:terminal",
                &a.business_key,
                "the agent was answered but no saga was durably started".into(),
            );
        }
    }
}
