//! Sometimes-assertions (Antithesis style): did a run reach the paths that
//! matter? Each entry is counted per run (hit or not) and totalled over a
//! fuzz run (seeds that hit it); a long fuzz run of the default scenario
//! must hit every entry not declared unreachable — otherwise the faults are
//! not exercising what the invariants protect.
//!
//! The **catalogue** ([`catalogue`]) is generated from the models and the
//! workload, so a new error code or a new step shows up as new entries:
//! - the named points of [`POINTS`] (fault kinds, recovery paths);
//! - every `(step, saga operation, service request kind, response class)`
//!   the reference glue can meet: the request kinds each operation sends
//!   (`reference::glue::requests`), the classes each model declares per
//!   kind (`response_classes` next to each model, plus the transport's
//!   `timeout` / `refused`), counted by `world::wire::Services` per labelled
//!   call (never a trace event);
//! - every saga state transition of the reference coordinator, read from
//!   its durable log: each step's outcome per operation, where the saga
//!   turned back, the pivot fence, sweep rounds, each decision and each
//!   NeedsOperator reason class;
//! - every crash point class: where a coordinator crash fell in a saga
//!   (between an action's or a compensation's intent and its result,
//!   between calls forward or backward, after the decision, during the
//!   sweep), from the plan's crash times and the log's fsync times.
//!
//! An entry a scenario cannot reach is declared with why
//! ([`unreachable()`]); a test holds both ways (every other entry is hit,
//! no declared one is).
//!
//! Computed from structured results (network counters, the call tally, the
//! nemesis's counts, the coordinator's durable log, the services' ground
//! truth), so it works in hash-only trace mode at fuzzing speed.
//!
//! Not here: pass/fail of a run (that is `invariants`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::truth::owner_of;
use crate::reference::glue::{
    op_name, requests, PROCESSING, REFUND_FAILED, REFUND_PENDING, REQUIRES_ACTION,
};
use crate::saga::{Decision, LogRecord, Op, Outcome, SagaId, SagaStatus, StepKind};
use crate::scenario::Scenario;
use crate::services::{inventory, salesforce, stripe, user};
use crate::sim::clock::Clocks;
use crate::sim::faults::SEARCH_INCIDENT_MIN_MS;
use crate::workload::{Operation, Workload, META_SAGA};
use crate::world::run::RunOutcome;
use crate::world::wire::{CallKey, INVENTORY, SALESFORCE, STRIPE, TRANSPORT_CLASSES, UNLABELLED};

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
    "fault: clock jumped forward",
    "fault: a hold expired while the coordinator was paused",
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
    "salesforce: an admin deleted a saga's record",
    "salesforce: a saga wrote its record again after an admin deleted it",
    "salesforce: a completed saga's record deleted by an admin",
    "salesforce: an admin restored a saga's record from the Recycle Bin",
    "salesforce: a saga wrote a record an admin had restored",
    "pms: a guest cancelled a confirmed booking",
    "pms: a completed saga's booking cancelled by the guest",
];

/// The entries of [`catalogue`]`(w, true)` that scenario `s` cannot reach,
/// each with why: a path of the reference glue that never sends such a
/// request, or a cause the scenario does not declare (some of which the
/// workload swarm will draw per seed). `cargo test` checks that the
/// default scenario hits none of them and every other entry but the
/// [`rare`] ones.
pub fn unreachable(s: &Scenario, w: &Workload) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (point, undeclared, why) in [
        (
            "stripe: 3-D Secure answered as a rejection the agent can act on",
            !reach(s).requires_action,
            NO_3DS,
        ),
        (
            "stripe: processing payment awaited, then applied",
            !reach(s).processing,
            NO_PROCESSING,
        ),
        (
            "stripe: failed refund handed to an operator",
            !reach(s).closed_cards,
            NO_FAILING_REFUNDS,
        ),
        (
            "salesforce: a validation rule refused a save",
            s.salesforce.validation_rules.is_empty(),
            NO_RULES,
        ),
        (
            "fault: a hold expired while the coordinator was paused",
            !reach(s).long_pause_outlives_hold,
            NO_LONG_PAUSE,
        ),
        (
            "pms: a guest cancelled a confirmed booking",
            !reach(s).cancellations,
            NO_CANCELLATIONS,
        ),
        (
            "pms: a completed saga's booking cancelled by the guest",
            !reach(s).cancellations,
            NO_CANCELLATIONS,
        ),
        (
            "salesforce: an admin deleted a saga's record",
            !reach(s).deletions,
            NO_DELETIONS,
        ),
        (
            "salesforce: a saga wrote its record again after an admin deleted it",
            !reach(s).deletions,
            NO_DELETIONS,
        ),
        (
            "salesforce: a completed saga's record deleted by an admin",
            !reach(s).deletions,
            NO_DELETIONS,
        ),
        (
            "salesforce: an admin restored a saga's record from the Recycle Bin",
            !reach(s).restorations,
            NO_RESTORATIONS,
        ),
        (
            "salesforce: a saga wrote a record an admin had restored",
            !reach(s).restorations,
            NO_RESTORATIONS,
        ),
    ] {
        if undeclared {
            out.push((point.to_string(), why.to_string()));
        }
    }
    if s.phases.safety_ms.saturating_add(s.phases.liveness_ms) < s.salesforce.session_timeout_ms {
        out.push((
            "salesforce: expired session re-authenticated".to_string(),
            "no run lasts as long as salesforce.session_timeout_ms (two hours by default), so no \
             session ends of inactivity (scenario salesforce-sessions sets the 15-minute minimum)"
                .to_string(),
        ));
    }
    for (entry, why) in generated_declarations(s, w) {
        if let Declared::Unreachable(why) = why {
            out.push((entry, why.to_string()));
        }
    }
    out
}

/// The entries of [`catalogue`]`(w, true)` that scenario `s` reaches only
/// rarely — a fault on a request the glue seldom sends (a read after a
/// replayed charge, a refund's retry), a crash inside a compensation —
/// each with why: fewer than one seed in 5,000 of the default scenario
/// hits one (measured over 100,000 seeds), so the default budget is not
/// asked to. Not asserted either way.
pub fn rare(s: &Scenario, w: &Workload) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    if !reach(s).pending_refunds {
        // Reached only through a refund another refund pre-empted (one seed
        // in 100,000 of the default scenario).
        out.push((
            "stripe: pending refund awaited".to_string(),
            "stripe.refund_settle_ms is 0: refunds settle at once; only a refund pre-empted by \
             another one is awaited (scenario stripe-refunds sets it)"
                .to_string(),
        ));
    }
    for (entry, why) in generated_declarations(s, w) {
        if let Declared::Rare(why) = why {
            out.push((entry, why.to_string()));
        }
    }
    out
}

const NO_3DS: &str =
    "no stripe.requires_action_customers (scenario stripe-async-payments has them)";
const NO_PROCESSING: &str =
    "no stripe.processing_customers (scenario stripe-async-payments has them)";
const NO_FAILING_REFUNDS: &str =
    "no stripe.refund_failing_customers (scenario stripe-refunds has them)";
const NO_RULES: &str =
    "the scenario declares no salesforce.validation_rules (scenario crm-refuses does)";

const NO_DELETIONS: &str = "the scenario's swarm sends no admin deletions (faults.crm_deletions = \
                            0, the default, or a fixed [plan]; scenario crm-admin-deletes has \
                            them)";
const NO_RESTORATIONS: &str = "the scenario's swarm sends no admin restorations from the Recycle \
                               Bin (faults.crm_restorations = 0, the default; scenario \
                               crm-admin-deletes has them)";
const NO_CANCELLATIONS: &str = "the scenario's swarm sends no guest cancellations \
                                (faults.booking_cancellations = 0, or a fixed [plan])";

const NO_LONG_PAUSE: &str = "no coordinator pause the scenario draws (faults.long_pauses, up to \
                             faults.max_long_pause_ms) outlasts its shortest hold TTL";

/// What the seeds of a scenario may meet beyond its `[workload]` as
/// written: the shortest hold TTL its `[swarm]` draws, and the environment
/// events its swarm profile sends (a fixed `[plan]` draws none).
struct Reach {
    /// Every hold TTL a seed may ask for outlasts the run.
    ttl_outlasts_run: bool,
    /// PMS operators cut capacity or take rooms out of order.
    operators: bool,
    /// The card network ends authorizations.
    expiries: bool,
    /// An admin deletes Salesforce records.
    deletions: bool,
    /// An admin restores deleted Salesforce records.
    restorations: bool,
    /// A guest cancels confirmed bookings.
    cancellations: bool,
    /// Some customer's card asks for 3-D Secure.
    requires_action: bool,
    /// Some customer's payment settles later.
    processing: bool,
    /// Some customer's card refuses refunds (closed).
    closed_cards: bool,
    /// Refunds stay pending for a while.
    pending_refunds: bool,
    /// A long pause of the coordinator may outlast a hold's TTL.
    long_pause_outlives_hold: bool,
}

fn reach(s: &Scenario) -> Reach {
    let run = s.phases.safety_ms.saturating_add(s.phases.liveness_ms);
    let shortest_ttl = s
        .swarm
        .as_ref()
        .and_then(|w| w.hold_ttl_ms)
        .map_or(s.workload.hold_ttl_ms, |[lo, _]| {
            lo.min(s.workload.hold_ttl_ms)
        });
    let swarm = s.plan.is_none();
    let st = &s.stripe;
    let drawn = |share: fn(&crate::scenario::WorkloadSwarm) -> f64| {
        swarm && s.swarm.as_ref().is_some_and(|w| share(w) > 0.0)
    };
    Reach {
        ttl_outlasts_run: shortest_ttl > run,
        long_pause_outlives_hold: swarm
            && s.faults.long_pauses > 0
            && s.faults.max_long_pause_ms > shortest_ttl,
        operators: swarm && s.faults.operator_events > 0,
        expiries: swarm && s.faults.authorization_expiries > 0,
        deletions: swarm && s.faults.crm_deletions > 0,
        restorations: swarm && s.faults.crm_deletions > 0 && s.faults.crm_restorations > 0,
        cancellations: swarm && s.faults.booking_cancellations > 0,
        requires_action: !st.requires_action_customers.is_empty()
            || drawn(|w| w.requires_action_share),
        processing: !st.processing_customers.is_empty() || drawn(|w| w.processing_share),
        closed_cards: !st.refund_failing_customers.is_empty() || drawn(|w| w.closed_card_share),
        pending_refunds: st.refund_settle_ms > 0
            || (swarm
                && s.swarm
                    .as_ref()
                    .and_then(|w| w.refund_settle_ms)
                    .is_some_and(|[_, hi]| hi > 0)),
    }
}

/// A generated entry's declaration.
enum Declared {
    Unreachable(&'static str),
    Rare(&'static str),
}

/// The declarations of generated entries (responses, saga states, crash
/// points) for `s` and `w`.
fn generated_declarations(s: &Scenario, w: &Workload) -> Vec<(String, Declared)> {
    let mut out = Vec::new();
    for w in w.family() {
        member_declarations(s, w, &mut out);
    }
    // Members share steps: one declaration per entry.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|(e, _)| seen.insert(e.clone()));
    out
}

/// Whether a declared validation rule can refuse step `i`'s write (its
/// action's records, or its undo's for `op == Compensate`): a rule on an
/// object and field the write sends, with a literal value it rejects, or a
/// value from the caller's input that no earlier write of that object sent
/// (an earlier write carrying it was refused first).
fn rule_can_refuse(s: &Scenario, w: &Workload, i: usize, op: Op) -> bool {
    let Operation::SalesforceUpsert { records, undo, .. } = &w.steps()[i].op else {
        return false;
    };
    let writes = if op == Op::Compensate { undo } else { records };
    let written_before = |object: &str| {
        op == Op::Compensate
            || w.steps()[..i].iter().any(|st| {
                matches!(&st.op, Operation::SalesforceUpsert { records, .. }
                    if records.iter().any(|r| r.object == object))
            })
    };
    s.salesforce.validation_rules.iter().any(|rule| {
        writes.iter().any(|r| {
            r.object == rule.object
                && match r.fields.get(&rule.field).map(|f| f.literal()) {
                    None => false,
                    Some(Some(v)) => {
                        rule.rejects_record(&r.object, &[(rule.field.clone(), v)].into())
                    }
                    Some(None) => !written_before(&r.object),
                }
        })
    })
}

const RULES_MISS: &str = "no declared validation rule can refuse this write: its rules refuse \
                          a value from the caller's input, which an earlier write of the object \
                          carried and was refused for first";

fn member_declarations(s: &Scenario, w: &Workload, out: &mut Vec<(String, Declared)>) {
    if !s.salesforce.validation_rules.is_empty() {
        let pivot = pivot_of(w);
        for (i, step) in w.steps().iter().enumerate() {
            let name = &step.name;
            for op in [Op::Action, Op::Compensate] {
                if !matches!(step.op, Operation::SalesforceUpsert { .. })
                    || (op == Op::Compensate && !step.compensated())
                    || rule_can_refuse(s, w, i, op)
                {
                    continue;
                }
                let label = step_op(name, op_name(op));
                let mut put = |e: String| out.push((e, Declared::Unreachable(RULES_MISS)));
                put(response_entry(
                    &label,
                    crate::world::wire::SALESFORCE,
                    "upsert",
                    "400 FIELD_CUSTOM_VALIDATION_EXCEPTION",
                ));
                put(format!("saga: {name} {} \u{2192} rejected", op_name(op)));
                match op {
                    Op::Compensate => put(format!(
                        "saga: needs operator: compensation of {name} rejected"
                    )),
                    _ if i >= pivot => put(format!(
                        "saga: needs operator: {name} rejected at or after the pivot"
                    )),
                    _ => put(format!("saga: turned back at {name} (rejected)")),
                }
            }
        }
    }
    for step in w.steps() {
        for op in ops_of(step) {
            let label = step_op(&step.name, op_name(op));
            for (service, kind) in requests(&step.op, op) {
                for class in response_classes(&service, kind) {
                    if let Some(d) = response_declaration(s, &step.op, op, kind, class) {
                        out.push((response_entry(&label, &service, kind, class), d));
                    }
                }
            }
        }
    }
    let pivot = pivot_of(w);
    let r = reach(s);
    let ttl_outlasts_run = r.ttl_outlasts_run;
    let no_refusal = !r.closed_cards;
    for (i, step) in w.steps().iter().enumerate() {
        let name = &step.name;
        let mut put = |entry: String, d: Option<Declared>| {
            if let Some(d) = d {
                out.push((entry, d));
            }
        };
        let action_rejected = match &step.op {
            Operation::SalesforceUpsert { .. } if s.salesforce.validation_rules.is_empty() => {
                Some(Declared::Unreachable(NO_RULES))
            }
            Operation::PmsConfirm { .. }
                if ttl_outlasts_run && s.inventory.out_of_order.is_empty() && !r.operators =>
            {
                Some(Declared::Unreachable(HOLD_KEEPS_ROOM))
            }
            _ => None,
        };
        if i >= pivot {
            put(
                format!("saga: {name} action \u{2192} rejected"),
                action_rejected,
            );
            put(
                format!("saga: needs operator: {name} rejected at or after the pivot"),
                match &step.op {
                    // The pivot's refusal puts up the fence and turns back.
                    _ if i == pivot => Some(Declared::Unreachable(
                        "the pivot's refusal puts up the fence, then turns back (compensates)",
                    )),
                    Operation::SalesforceUpsert { .. }
                        if s.salesforce.validation_rules.is_empty() =>
                    {
                        Some(Declared::Unreachable(NO_RULES))
                    }
                    _ => None,
                },
            );
            put(
                format!("saga: needs operator: {name} unresolved at or after the pivot"),
                Some(Declared::Unreachable(BUDGETS)),
            );
        } else if let Operation::SalesforceUpsert { .. } = step.op {
            if s.salesforce.validation_rules.is_empty() {
                put(
                    format!("saga: {name} action \u{2192} rejected"),
                    Some(Declared::Unreachable(NO_RULES)),
                );
                put(
                    format!("saga: turned back at {name} (rejected)"),
                    Some(Declared::Unreachable(NO_RULES)),
                );
            }
        }
        if step.compensated() {
            let undo_rejected = match &step.op {
                Operation::StripeAuthorize => Some(Declared::Unreachable(
                    "an authorization's undo is a cancel, which Stripe does not refuse for an \
                     intent not yet captured",
                )),
                Operation::StripeCharge if no_refusal => {
                    Some(Declared::Unreachable(NO_FAILING_REFUNDS))
                }
                Operation::PmsHold(_) => Some(Declared::Unreachable(RELEASE_NEVER_REFUSED)),
                Operation::SalesforceUpsert { .. } if s.salesforce.validation_rules.is_empty() => {
                    Some(Declared::Unreachable(NO_RULES))
                }
                _ => None,
            };
            put(
                format!("saga: {name} compensate \u{2192} rejected"),
                match undo_rejected {
                    Some(Declared::Unreachable(w)) => Some(Declared::Unreachable(w)),
                    _ => None,
                },
            );
            put(
                format!("saga: needs operator: compensation of {name} rejected"),
                undo_rejected,
            );
            put(
                format!("saga: needs operator: compensation of {name} gave up"),
                Some(Declared::Unreachable(BUDGETS)),
            );
            if matches!(
                step.op,
                Operation::SalesforceUpsert { .. }
                    | Operation::StripeCharge
                    | Operation::StripeAuthorize
            ) {
                put(
                    format!("crash: between intent and result of {name} compensate"),
                    Some(Declared::Rare(RARE_CRASH)),
                );
            }
        }
    }
    let operator_free = no_refusal && s.salesforce.validation_rules.is_empty() && !r.expiries;
    if operator_free {
        out.push((
            "saga: decided needs operator".to_string(),
            Declared::Unreachable(BUDGETS),
        ));
    }
    out.push((
        "saga: finalized needs operator: the sweep could not clean up".to_string(),
        if no_refusal {
            Declared::Unreachable(
                "the sweep's retry budget outlasts the scenario's faults, and nothing refuses the \
                 undo of a late effect",
            )
        } else {
            Declared::Rare(
                "a closed card refuses the refund of a late charge the sweep undoes: a late \
                 charge and a closed card in one seed",
            )
        },
    ));
    out.push((
        "crash: compensating, between calls".to_string(),
        Declared::Rare(RARE_CRASH),
    ));
}

const BUDGETS: &str = "the retry budgets (coordinator.*_attempts_max) outlast every outage the \
                       scenario's faults cause, and nothing refuses this step for good";
const HOLD_KEEPS_ROOM: &str = "a hold keeps its room until confirmed: confirm refuses only an \
                               expired hold (workload.hold_ttl_ms outlasts the run), a capacity \
                               cut or an out-of-order room (needs short hold TTLs or PMS operator \
                               events from the workload swarm)";
const RELEASE_NEVER_REFUSED: &str = "release refuses only a confirmed hold, and the pivot fence \
                                     releases a hold only once its confirm is known not applied";
const RARE_CRASH: &str = "a coordinator crash inside a compensation (few sagas compensate, and a \
                          compensation takes milliseconds)";
const RARE_FAULT: &str = "a fault on a request the glue seldom sends (fewer than one seed in \
                          5,000 of the default scenario)";

/// The declaration of a response entry, if any: `op` of a step bound to
/// `operation` sent `kind` and got `class`.
fn response_declaration(
    s: &Scenario,
    operation: &Operation,
    op: Op,
    kind: &str,
    class: &str,
) -> Option<Declared> {
    use Declared::{Rare, Unreachable};
    let charge = matches!(operation, Operation::StripeCharge);
    let no_3ds = !reach(s).requires_action;
    let no_processing = !reach(s).processing;
    let r = reach(s);
    let ttl_outlasts_run = r.ttl_outlasts_run;
    let transport_or_5xx = matches!(
        class,
        "timeout"
            | "refused"
            | "429 rate_limit"
            | "500 api_error"
            | "503 edge unavailable"
            | "409 idempotency_key_in_use"
    );
    // Requests the glue never sends malformed.
    match class {
        "400 invalid request" | "400 INVALID_REQUEST" | "400 REQUIRED_FIELD_MISSING"
        | "400 idempotency_error" => {
            return Some(Unreachable(
                "the reference glue sends only well-formed requests, each key with one request",
            ))
        }
        "400 UNKNOWN_ROOM_TYPE" | "404 NOT_FOUND" => {
            return Some(Unreachable(
                "the workload names only room types and objects the scenario declares",
            ))
        }
        "404 resource_missing" | "404 HOLD_NOT_FOUND" | "200 release of an unknown hold" => {
            return Some(Unreachable(
                "the glue reads and acts only on ids the service returned",
            ))
        }
        "300 MULTIPLE_CHOICES" => {
            return Some(Unreachable(
                "the glue only upserts by external id, so an external id matches at most one record",
            ))
        }
        "400 DUPLICATE_VALUE" if op == Op::Compensate => {
            return Some(Rare(
                "the undo races an insert only when the action's upsert landed late, after the \
                 undo created the record",
            ))
        }
        "200 pi succeeded" | "200 refund list" | "200 refund succeeded"
            if matches!(operation, Operation::StripeAuthorize) =>
        {
            return Some(Unreachable(
                "an authorization is captured only after the pivot, by another step: its own \
                 action and undo never meet a succeeded intent, and it is cancelled, never refunded",
            ))
        }
        _ if matches!(operation, Operation::StripeAuthorize)
            && matches!(kind, "list_refunds" | "create_refund") =>
        {
            return Some(Unreachable(
                "an authorization is cancelled, never refunded: it is captured only after the pivot",
            ))
        }
        "replayed 2xx" | "replayed 4xx" | "replayed 500 api_error" | "refused"
            if kind == "capture_payment_intent" =>
        {
            return Some(Rare(
                "a capture is sent once per manual-capture saga past its pivot: a replay or a \
                 refusal of it is rare",
            ))
        }
        "200 hold expired" if kind == "hold" => {
            return Some(Rare(
                "a hold sent again after its first copy landed and expired (a short TTL and a long \
                 retry) is rare",
            ))
        }
        _ if kind == "login" && class != "200 token" => {
            return Some(Rare(
                "a login is one call per session (once per coordinator life and after a revoked \
                 or expired session): faults on it are rare",
            ))
        }
        "200 pi requires_confirmation" => {
            return Some(Unreachable(
                "the glue confirms every PaymentIntent as it creates it",
            ))
        }
        "403 REQUEST_LIMIT_EXCEEDED" if s.salesforce.daily_api_limit.is_none() => {
            return Some(Unreachable("no salesforce.daily_api_limit"))
        }
        "400 FIELD_CUSTOM_VALIDATION_EXCEPTION" if s.salesforce.validation_rules.is_empty() => {
            return Some(Unreachable(NO_RULES))
        }
        "200 pi requires_action" if no_3ds => return Some(Unreachable(NO_3DS)),
        "200 pi processing" if no_processing => return Some(Unreachable(NO_PROCESSING)),
        "200 refund pending" if !r.pending_refunds => {
            return Some(Unreachable(
                "stripe.refund_settle_ms is 0: refunds settle at once (scenario stripe-refunds sets it)",
            ))
        }
        "200 refund failed" if !r.closed_cards => {
            return Some(Unreachable(NO_FAILING_REFUNDS))
        }
        "200 pi requires_capture" if charge => {
            return Some(Unreachable(
                "a charge captures at once (saga.capture = \"automatic\"; scenario \
                 authorize-capture authorizes)",
            ))
        }
        "200 pi requires_payment_method" if op == Op::Action && !no_processing => {
            return Some(Rare(
                "a declined payment's answer lost is found by reconciliation, which lists; the \
                 action reads one back only when a processing payment declines under a replay",
            ))
        }
        "200 pi requires_payment_method" if no_processing => {
            return Some(Unreachable(
                "the glue reads an intent back only after a replayed success or to undo a live one, \
                 never a declined one (only a processing payment that declines is read back as \
                 one: no stripe.processing_customers)",
            ))
        }
        "200 pi processing" | "200 pi requires_action" | "200 pi requires_payment_method"
            if matches!(operation, Operation::StripeCapture { .. }) =>
        {
            return Some(Unreachable(
                "a capture reads the authorization its saga already holds (requires_capture or \
                 later)",
            ))
        }
        "200 pi processing"
        | "200 pi requires_action"
        | "200 pi requires_payment_method"
        | "200 pi canceled"
        | "timeout"
            if op == Op::Compensate
                && matches!(operation, Operation::StripeCharge | Operation::StripeAuthorize)
                && matches!(kind, "retrieve_payment_intent" | "cancel_payment_intent") =>
        {
            return Some(Rare(
                "a payment is undone while still in 3-D Secure or processing only when its saga \
                 turns back in that window",
            ))
        }
        "replayed 2xx" | "replayed 4xx" | "replayed 500 api_error" | "refused"
            if kind == "cancel_payment_intent" && op == Op::Action =>
        {
            return Some(Rare(
                "the action cancels only a 3-D Secure intent: a replay or refusal of that cancel \
                 is rare",
            ))
        }
        "200 pi canceled" if charge && no_3ds && no_processing => {
            return Some(Unreachable(
                "nothing cancels a charge that captured at once (no 3-D Secure or processing \
                 customers)",
            ))
        }
        "412 PRECONDITION_FAILED" => {
            if let Operation::SalesforceUpsert { create_only, .. } = operation {
                if op == Op::Compensate || !create_only {
                    return Some(Unreachable(
                        "this write sends no If-Unmodified-Since (only a create_only action does)",
                    ));
                }
            }
        }
        "200 saved an existing record" if op == Op::Action => {
            if let Operation::SalesforceUpsert {
                create_only: true, ..
            } = operation
            {
                return Some(Unreachable(
                    "a create_only upsert meets an existing record as 412, never an update",
                ));
            }
        }
        "409 CLIENT_REF_CONFLICT" => {
            return Some(Unreachable(
                "a step sends the same hold request (room, nights) under its key every time",
            ))
        }
        "409 ROOM_OUT_OF_ORDER" if s.inventory.out_of_order.is_empty() && !r.operators => {
            return Some(Unreachable(
                "no inventory.out_of_order room type (PMS operator events from the workload swarm \
                 will cause it)",
            ))
        }
        "409 LEASE_EXPIRED" | "200 hold expired" if ttl_outlasts_run => {
            return Some(Unreachable(
                "workload.hold_ttl_ms outlasts the run (short hold TTLs from the workload swarm \
                 will cause it)",
            ))
        }
        "409 NO_AVAILABILITY" if kind == "confirm" && !r.operators => {
            return Some(Unreachable(HOLD_KEEPS_ROOM))
        }
        "409 HOLD_RELEASED" => {
            return Some(Unreachable(
                "the saga confirms only a hold it has not released",
            ))
        }
        "409 HOLD_CONFIRMED" | "200 hold confirmed" | "200 hold released" if kind != "get_hold" => {
            return Some(Unreachable(
                "the pivot fence: a hold is released only once its confirm is known not applied, \
                 and the hold is sent again only before either",
            ))
        }
        _ => {}
    }
    // Requests a path sends only where the scenario declares its cause.
    match (operation, op, kind) {
        (
            Operation::StripeCharge | Operation::StripeAuthorize,
            Op::Action,
            "cancel_payment_intent",
        ) if no_3ds => {
            return Some(Unreachable(
                "the action cancels only a 3-D Secure intent; no stripe.requires_action_customers \
                 (scenario stripe-async-payments has them)",
            ))
        }
        (Operation::StripeCharge, Op::Compensate, "cancel_payment_intent")
            if no_3ds && no_processing =>
        {
            return Some(Unreachable(
                "a charge's undo cancels only an intent still processing or awaiting 3-D Secure \
                 (no such customers declared)",
            ))
        }
        (
            Operation::StripeCharge | Operation::StripeAuthorize | Operation::PmsHold(_),
            Op::Compensate,
            "list_payment_intents" | "list_by_client_ref",
        ) => {
            return Some(Unreachable(
                "the core compensates the reference the action returned (a hold id, a \
                 PaymentIntent id): the undo never lists",
            ))
        }
        _ => {}
    }
    let seldom = matches!(
        (operation, op, kind),
        (
            Operation::StripeCharge | Operation::StripeAuthorize,
            Op::Action,
            "retrieve_payment_intent"
        ) | (
            Operation::StripeCharge | Operation::StripeAuthorize,
            Op::Compensate,
            _
        ) | (Operation::SalesforceUpsert { .. }, Op::Compensate, _)
    );
    // Timeouts of a compensation are common enough to ask for; a read
    // after a replayed charge is rare whatever its answer.
    let action_read = op == Op::Action && kind == "retrieve_payment_intent";
    let odd = transport_or_5xx
        || class.starts_with("replayed")
        || matches!(
            class,
            "400 UNABLE_TO_LOCK_ROW"
                | "500 UNKNOWN_EXCEPTION"
                | "503 SERVER_UNAVAILABLE"
                | "400 charge_already_refunded"
                | "400 payment_intent_unexpected_state"
        );
    if seldom && odd && (class != "timeout" || action_read) {
        return Some(Rare(RARE_FAULT));
    }
    None
}

/// Hits per coverage entry. A run's coverage lists the entries it hit; a
/// fuzz summary's starts from the whole catalogue at 0 (see
/// [`Coverage::of_catalogue`]), so a missed entry shows as 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage(pub BTreeMap<String, u64>);

impl Coverage {
    /// Every point of [`POINTS`] at 0 hits.
    pub fn empty() -> Coverage {
        Coverage(POINTS.iter().map(|p| (p.to_string(), 0)).collect())
    }

    /// Every entry of `catalogue` at 0 hits.
    pub fn of_catalogue(catalogue: &[String]) -> Coverage {
        Coverage(catalogue.iter().map(|e| (e.clone(), 0)).collect())
    }

    fn hit(&mut self, point: &str, yes: bool) {
        debug_assert!(POINTS.contains(&point), "unknown coverage point {point}");
        if yes {
            self.bump(point.to_string());
        }
    }

    /// Count `entry` as hit by this run (once, however often it was met).
    fn bump(&mut self, entry: String) {
        self.0.entry(entry).or_insert(1);
    }

    /// Add another run's (or shard's) hits.
    pub fn add(&mut self, other: &Coverage) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Entries never hit.
    pub fn missed(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(_, &n)| n == 0)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Entries hit that `catalogue` does not list (a model answered with a
    /// class it does not declare for the request kind, a call was not
    /// labelled, or a coordinator other than the reference ran).
    pub fn outside<'a>(&'a self, catalogue: &[String]) -> Vec<&'a str> {
        let known: std::collections::BTreeSet<&str> =
            catalogue.iter().map(String::as_str).collect();
        self.0
            .iter()
            .filter(|(k, &n)| n > 0 && !known.contains(k.as_str()))
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

// ---- the catalogue ------------------------------------------------------

/// The response classes of `service`'s request `kind`, transport outcomes
/// included: what the model declares next to its code.
pub fn response_classes(service: &str, kind: &str) -> Vec<&'static str> {
    let mut v = match service {
        STRIPE => stripe::response_classes(kind),
        SALESFORCE => salesforce::response_classes(kind),
        INVENTORY => inventory::response_classes(kind),
        _ => user::RESPONSE_CLASSES.to_vec(),
    };
    v.extend(TRANSPORT_CLASSES);
    v
}

/// The entry of a call answered `class`: `"{step} {op}: {service} {kind}
/// ← {class}"` (`"charge compensate: stripe create_refund ← 200 refund
/// pending"`); an unlabelled call's step part is [`UNLABELLED`].
pub fn response_entry(step_op: &str, service: &str, kind: &str, class: &str) -> String {
    cat(&[step_op, ": ", service, " ", kind, " \u{2190} ", class])
}

/// `parts` joined: cheaper than `format!` on the fuzzing path (an entry
/// name per hit per seed).
fn cat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// The group an entry is summarised in: the step and operation of a
/// response entry (`"responses of charge compensate"`), `saga`, `crash`,
/// or the entry itself.
pub fn group_of(entry: &str) -> String {
    if entry.contains('\u{2190}') {
        let so = entry.split(':').next().unwrap_or(entry);
        return format!("responses of {so}");
    }
    match entry.split(':').next() {
        Some(g @ ("saga" | "crash")) => g.to_string(),
        _ => entry.to_string(),
    }
}

fn step_op(step: &str, op: &str) -> String {
    format!("{step} {op}")
}

/// The saga operations a step has (`compensate` only if it is undone).
fn ops_of(step: &crate::workload::Step) -> Vec<Op> {
    let mut v = vec![Op::Action, Op::Reconcile];
    if step.compensated() {
        v.push(Op::Compensate);
    }
    v
}

/// The outcomes the glue can give `op` of a step bound to `operation`.
fn outcomes_of(operation: &Operation, op: Op) -> &'static [&'static str] {
    match op {
        Op::Action
            if matches!(
                operation,
                Operation::StripeCharge | Operation::StripeAuthorize
            ) =>
        {
            &[
                "applied",
                "rejected",
                "transient",
                "unknown",
                "key poisoned",
            ]
        }
        Op::Action | Op::Compensate => &["applied", "rejected", "transient", "unknown"],
        // A payment found declined (its answer lost) is the action's
        // definitive answer.
        Op::Reconcile
            if matches!(
                operation,
                Operation::StripeCharge | Operation::StripeAuthorize
            ) =>
        {
            &["found", "not found", "rejected", "unknown"]
        }
        Op::Reconcile => &["found", "not found", "unknown"],
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Applied { .. } => "applied",
        Outcome::Rejected { .. } => "rejected",
        Outcome::Transient { .. } => "transient",
        Outcome::Unknown { .. } => "unknown",
        Outcome::KeyPoisoned { .. } => "key poisoned",
        Outcome::Found { .. } => "found",
        Outcome::NotFound => "not found",
    }
}

/// Why a saga turned back at a step before the pivot (from that step's
/// last result): `rejected`, `transient` (retries ran out) or `unresolved`.
const TURNED_BACK: &[&str] = &["rejected", "transient", "unresolved"];

fn pivot_of(w: &Workload) -> usize {
    w.steps()
        .iter()
        .position(|s| s.kind == StepKind::Pivot)
        .unwrap_or(w.steps().len().saturating_sub(1))
}

/// The saga-state entries of step `name` of `w`.
fn saga_step_entries(w: &Workload, out: &mut Vec<String>) {
    let pivot = pivot_of(w);
    for (i, step) in w.steps().iter().enumerate() {
        let name = &step.name;
        for op in ops_of(step) {
            for o in outcomes_of(&step.op, op) {
                out.push(format!("saga: {name} {} \u{2192} {o}", op_name(op)));
            }
        }
        if i < pivot {
            for why in TURNED_BACK {
                out.push(format!("saga: turned back at {name} ({why})"));
            }
        }
        if i >= pivot {
            out.push(format!(
                "saga: needs operator: {name} rejected at or after the pivot"
            ));
            out.push(format!(
                "saga: needs operator: {name} unresolved at or after the pivot"
            ));
        }
        if step.compensated() {
            out.push(format!(
                "saga: needs operator: compensation of {name} rejected"
            ));
            out.push(format!(
                "saga: needs operator: compensation of {name} gave up"
            ));
            out.push(format!(
                "crash: between intent and result of {name} compensate"
            ));
        }
        out.push(format!("crash: between intent and result of {name} action"));
    }
}

/// Saga-state entries that do not name a step.
const SAGA_POINTS: &[&str] = &[
    "saga: pivot fenced, then found applied (went forward)",
    "saga: pivot fenced, the fence held (turned back)",
    "saga: sweep round",
    "saga: a second sweep round",
    "saga: decided completed",
    "saga: decided compensated",
    "saga: decided needs operator",
    "saga: finalized as decided",
    "saga: finalized needs operator: the sweep could not clean up",
];

/// Crash point classes that do not name a step.
const CRASH_POINTS: &[&str] = &[
    "crash: no saga in flight",
    "crash: forward, between calls",
    "crash: compensating, between calls",
    "crash: after the decision, before the sweep",
    "crash: during the sweep",
];

/// Every coverage entry for workload `w`, in report order: the named
/// [`POINTS`]; if the coordinator keeps sagasim's saga log (the reference
/// coordinator, whose glue labels its calls), every `(step, op, request
/// kind, response class)` its glue can meet, every saga state transition
/// and every crash point class.
pub fn catalogue(w: &Workload, keeps_saga_log: bool) -> Vec<String> {
    let mut out: Vec<String> = POINTS.iter().map(|p| p.to_string()).collect();
    if !keeps_saga_log {
        return out;
    }
    for w in w.family() {
        for step in w.steps() {
            for op in ops_of(step) {
                let label = step_op(&step.name, op_name(op));
                for (service, kind) in requests(&step.op, op) {
                    for class in response_classes(&service, kind) {
                        out.push(response_entry(&label, &service, kind, class));
                    }
                }
            }
        }
        saga_step_entries(w, &mut out);
    }
    out.extend(SAGA_POINTS.iter().map(|p| p.to_string()));
    out.extend(CRASH_POINTS.iter().map(|p| p.to_string()));
    // Members share steps (the hotel's hold, CRM and confirm): once each.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|e| seen.insert(e.clone()));
    out
}

/// The coverage of one run.
pub fn coverage(out: &RunOutcome) -> Coverage {
    let mut c = Coverage::default();
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
    c.hit(
        "fault: clock jumped forward",
        out.plan
            .clocks
            .iter()
            .any(|k| k.jump.is_some_and(|j| j.at_ms < out.phases.safety_end_ms)),
    );
    c.hit(
        "fault: a hold expired while the coordinator was paused",
        hold_expired_in_a_coordinator_pause(out),
    );

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
        late_after_compensation(out),
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
    environment_points(out, &mut c);
    for key in out.calls.keys() {
        c.bump(call_entry(key));
    }
    if out.uses_saga_log {
        saga_entries(out, &log, &mut c);
        crash_entries(out, &mut c);
    }
    c
}

/// The catalogue entry of a counted call.
fn call_entry(key: &CallKey) -> String {
    let (step, sep, op) = match &key.label {
        Some(l) => (l.step.as_str(), " ", l.op),
        None => (UNLABELLED, "", ""),
    };
    cat(&[
        step,
        sep,
        op,
        ": ",
        &key.service,
        " ",
        key.kind,
        " \u{2190} ",
        key.class,
    ])
}

/// The log's records grouped by saga (in order of first record), each
/// group in log order. A run has a handful of sagas: a list, searched.
fn by_saga<'a>(log: &[&'a LogRecord]) -> Vec<Vec<&'a LogRecord>> {
    let mut groups: Vec<(&SagaId, Vec<&LogRecord>)> = Vec::new();
    for r in log {
        let saga = r.saga();
        match groups.iter_mut().find(|(s, _)| *s == saga) {
            Some((_, v)) => v.push(r),
            None => groups.push((saga, vec![*r])),
        }
    }
    groups.into_iter().map(|(_, v)| v).collect()
}

/// Every saga state transition the log shows (see [`catalogue`]).
fn saga_entries(out: &RunOutcome, log: &[&LogRecord], c: &mut Coverage) {
    let steps = out.workload.steps();
    let name = |i: usize| steps.get(i).map_or("?", |s| s.name.as_str());
    let pivot = pivot_of(&out.workload);
    // Each step's outcomes, formatted once however many sagas met them.
    let mut results: std::collections::BTreeSet<(usize, Op, &'static str)> = Default::default();
    for recs in by_saga(log) {
        // The last action / reconcile result of each step, and of the saga.
        let mut forward: BTreeMap<usize, &Outcome> = BTreeMap::new();
        let mut last_forward: Option<usize> = None;
        let mut undo: BTreeMap<usize, &Outcome> = BTreeMap::new();
        let mut pivot_failed = false;
        let mut compensating = false;
        let mut decided: Option<&Decision> = None;
        for r in recs {
            match r {
                LogRecord::Result {
                    step, op, outcome, ..
                } => {
                    results.insert((*step, *op, outcome_name(outcome)));
                    if *op == Op::Compensate {
                        undo.insert(*step, outcome);
                        continue;
                    }
                    forward.insert(*step, outcome);
                    last_forward = Some(*step);
                    if *step == pivot {
                        match (op, outcome) {
                            (Op::Action, Outcome::Rejected { .. } | Outcome::Transient { .. }) => {
                                pivot_failed = true
                            }
                            (Op::Reconcile, Outcome::Found { .. }) if pivot_failed => c.bump(
                                "saga: pivot fenced, then found applied (went forward)".into(),
                            ),
                            _ => {}
                        }
                    }
                }
                LogRecord::CompensationStarted { .. } => {
                    compensating = true;
                    match last_forward {
                        Some(i) if i == pivot => {
                            c.bump("saga: pivot fenced, the fence held (turned back)".into())
                        }
                        Some(i) => {
                            let why = match forward.get(&i) {
                                Some(Outcome::Rejected { .. }) => "rejected",
                                Some(Outcome::Transient { .. }) => "transient",
                                _ => "unresolved",
                            };
                            c.bump(cat(&["saga: turned back at ", name(i), " (", why, ")"]));
                        }
                        None => {}
                    }
                }
                LogRecord::Decision { decision, .. } => {
                    decided = Some(decision);
                    match decision {
                        Decision::Completed => c.bump("saga: decided completed".into()),
                        Decision::Compensated { .. } => c.bump("saga: decided compensated".into()),
                        Decision::NeedsOperator { .. } => {
                            c.bump("saga: decided needs operator".into());
                            if compensating {
                                for (j, o) in &undo {
                                    match o {
                                        Outcome::Applied { .. } => {}
                                        Outcome::Rejected { .. } => c.bump(cat(&[
                                            "saga: needs operator: compensation of ",
                                            name(*j),
                                            " rejected",
                                        ])),
                                        _ => c.bump(cat(&[
                                            "saga: needs operator: compensation of ",
                                            name(*j),
                                            " gave up",
                                        ])),
                                    }
                                }
                            } else if let Some(i) = last_forward {
                                let why = match forward.get(&i) {
                                    Some(Outcome::Rejected { .. }) => "rejected",
                                    _ => "unresolved",
                                };
                                c.bump(cat(&[
                                    "saga: needs operator: ",
                                    name(i),
                                    " ",
                                    why,
                                    " at or after the pivot",
                                ]));
                            }
                        }
                    }
                }
                LogRecord::SweepRound { round, .. } => {
                    c.bump("saga: sweep round".into());
                    if *round >= 2 {
                        c.bump("saga: a second sweep round".into());
                    }
                }
                LogRecord::Finalized { status, .. } => {
                    if decided == Some(status) {
                        c.bump("saga: finalized as decided".into());
                    } else {
                        c.bump(
                            "saga: finalized needs operator: the sweep could not clean up".into(),
                        );
                    }
                }
                LogRecord::SagaStarted { .. } | LogRecord::Intent { .. } => {}
            }
        }
    }
    for (step, op, outcome) in results {
        c.bump(cat(&[
            "saga: ",
            name(step),
            " ",
            op_name(op),
            " \u{2192} ",
            outcome,
        ]));
    }
}

/// Where each coordinator crash of the run fell (see [`catalogue`]): the
/// log durable at the crash (by fsync time) says what every saga was doing.
fn crash_entries(out: &RunOutcome, c: &mut Coverage) {
    let steps = out.workload.steps();
    let name = |i: usize| steps.get(i).map_or("?", |s| s.name.as_str());
    let node = crate::world::wire::COORDINATOR;
    let crashes: Vec<&crate::sim::faults::Crash> = out
        .plan
        .crashes
        .iter()
        .filter(|k| k.node == node && k.at_ms < out.phases.safety_end_ms)
        .collect();
    for (n, crash) in crashes.iter().enumerate() {
        // A crash while the node is still down from an earlier one is none.
        let down = crashes[..n].iter().any(|e| {
            e.at_ms <= crash.at_ms
                && e.down_ms
                    .is_none_or(|d| crash.at_ms < e.at_ms.saturating_add(d))
        });
        if down {
            continue;
        }
        let at_us = crash.at_ms.saturating_mul(1_000);
        let durable: Vec<&LogRecord> = out
            .log
            .iter()
            .take_while(|d| d.synced_at_us <= at_us)
            .map(|d| &d.record)
            .collect();
        let mut in_flight = false;
        for recs in by_saga(&durable) {
            if recs
                .iter()
                .any(|r| matches!(r, LogRecord::Finalized { .. }))
            {
                continue;
            }
            in_flight = true;
            let mut open: Vec<(usize, Op)> = Vec::new();
            let (mut compensating, mut decided, mut sweeping) = (false, false, false);
            for r in recs {
                match r {
                    LogRecord::Intent { step, op, .. } => {
                        if !open.contains(&(*step, *op)) {
                            open.push((*step, *op));
                        }
                    }
                    LogRecord::Result { step, op, .. } => open.retain(|o| *o != (*step, *op)),
                    LogRecord::CompensationStarted { .. } => compensating = true,
                    LogRecord::Decision { .. } => decided = true,
                    LogRecord::SweepRound { .. } => sweeping = true,
                    LogRecord::SagaStarted { .. } | LogRecord::Finalized { .. } => {}
                }
            }
            for (step, op) in &open {
                c.bump(cat(&[
                    "crash: between intent and result of ",
                    name(*step),
                    " ",
                    op_name(*op),
                ]));
            }
            if open.is_empty() {
                c.bump(
                    match (sweeping, decided, compensating) {
                        (true, _, _) => "crash: during the sweep",
                        (false, true, _) => "crash: after the decision, before the sweep",
                        (false, false, true) => "crash: compensating, between calls",
                        (false, false, false) => "crash: forward, between calls",
                    }
                    .into(),
                );
            }
        }
        if !in_flight {
            c.bump("crash: no saga in flight".into());
        }
    }
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

/// A Stripe intent or PMS hold of a saga created after the saga's turn
/// to compensate was durable (all times in simulated time: the fsync's,
/// and the services' clocks inverted; the log's own `at_ms` is the core's
/// clock, which does not follow the node's clock steps within a boot).
fn late_after_compensation(out: &RunOutcome) -> bool {
    let clocks = Clocks::new(&out.plan.clocks);
    out.log.iter().any(|d| {
        let LogRecord::CompensationStarted { saga, .. } = &d.record else {
            return false;
        };
        let since = d.synced_at_us / 1_000;
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

/// The points of an admin's deletions and a guest's cancellations, from
/// the services' ground truth and what the callers were told.
fn environment_points(out: &RunOutcome, c: &mut Coverage) {
    let sf = &out.salesforce;
    let pms = &out.inventory;
    c.hit(
        "salesforce: an admin deleted a saga's record",
        !sf.admin_deletions.is_empty(),
    );
    c.hit(
        "salesforce: an admin restored a saga's record from the Recycle Bin",
        !sf.admin_restorations.is_empty(),
    );
    c.hit(
        "pms: a guest cancelled a confirmed booking",
        !pms.guest_cancellations.is_empty(),
    );
    if sf.admin_deletions.is_empty() && pms.guest_cancellations.is_empty() {
        return;
    }
    let completed = |label: Option<&str>| {
        label.is_some_and(|l| {
            out.agents.iter().any(|a| {
                matches!(a.answer, Some(SagaStatus::Completed))
                    && owner_of(l, &[a.business_key.as_str()].into()).is_some()
            })
        })
    };
    // A write of the same object and external id created a record after
    // an admin deleted one (an upsert by external id does not match a
    // record in the Recycle Bin).
    let deleted: Vec<&salesforce::SfChange> = sf
        .history
        .iter()
        .filter(|ch| {
            ch.kind == salesforce::ChangeKind::Deleted && sf.admin_deletions.contains(&ch.id)
        })
        .collect();
    c.hit(
        "salesforce: a saga wrote its record again after an admin deleted it",
        sf.history.iter().any(|ch| {
            ch.kind == salesforce::ChangeKind::Created
                && deleted.iter().any(|d| {
                    d.seq < ch.seq && d.object == ch.object && d.external_id == ch.external_id
                })
        }),
    );
    // A write of the saga's met a record an admin had brought back from
    // the Recycle Bin (an admin restores; only the saga updates).
    c.hit(
        "salesforce: a saga wrote a record an admin had restored",
        sf.history.iter().any(|ch| {
            ch.kind == salesforce::ChangeKind::Updated
                && sf.history.iter().any(|r| {
                    r.kind == salesforce::ChangeKind::Undeleted
                        && r.seq < ch.seq
                        && r.id == ch.id
                        && sf.admin_restorations.contains(&r.id)
                })
        }),
    );
    c.hit(
        "salesforce: a completed saga's record deleted by an admin",
        sf.admin_deletions.iter().any(|id| {
            let rec = &sf.records[id];
            rec.is_deleted && completed(rec.external_id.as_deref())
        }),
    );
    c.hit(
        "pms: a completed saga's booking cancelled by the guest",
        pms.guest_cancellations.iter().any(|id| {
            pms.booking(id)
                .is_some_and(|b| completed(b.client_ref.as_deref()))
        }),
    );
}

/// Whether a PMS hold ran out (on the PMS's own clock) while the
/// coordinator that asked for it was paused: it resumes believing the
/// hold is still there.
fn hold_expired_in_a_coordinator_pause(out: &RunOutcome) -> bool {
    let pauses: Vec<_> = out
        .plan
        .pauses
        .iter()
        .filter(|p| p.node == crate::world::wire::COORDINATOR)
        .collect();
    if pauses.is_empty() {
        return false;
    }
    let clocks = crate::sim::clock::Clocks::new(&out.plan.clocks);
    out.inventory.holds.values().any(|h| {
        let expired = clocks.elapsed_at(INVENTORY, h.expires_ms);
        h.status == crate::services::inventory::HoldStatus::Expired
            && pauses
                .iter()
                .any(|p| p.at_ms <= expired && expired < p.at_ms.saturating_add(p.for_ms))
    })
}
