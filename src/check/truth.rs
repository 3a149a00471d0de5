//! What the services applied, per business key: the ground truth of a run
//! attributed by the labels of the attribution contract
//! (`crate::workload`), and read against the workload's declaration.
//!
//! Used by the invariants (black-box: never the coordinator's records) and
//! by the business metrics, so both mean the same thing by "paid", "booked"
//! and "left open".
//!
//! Not here: verdicts (`invariants`), rates (`crate::metrics`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::services::inventory::HoldStatus;
use crate::services::stripe::{
    CancellationReason, Movement, PaymentIntent, PaymentIntentStatus, RefundStatus,
};
use crate::sim::clock::Clocks;
use crate::sim::faults::EnvKind;
use crate::workload::{Operation, SfRecord, Workload, META_BUSINESS_KEY, META_STEP};
use crate::world::run::RunOutcome;

/// The business key a label (`saga-K`, `K`, `saga-K/…`, `K#…`) names, if
/// `K` is one of `keys`.
pub fn owner_of<'a>(label: &str, keys: &BTreeSet<&'a str>) -> Option<&'a str> {
    let r = label.strip_prefix("saga-").unwrap_or(label);
    let end = r.find(['/', '#']).unwrap_or(r.len());
    keys.get(&r[..end]).copied()
}

/// A PaymentIntent that holds or took money (and still does).
pub fn is_live(pi: &PaymentIntent) -> bool {
    match pi.status {
        PaymentIntentStatus::RequiresCapture => true,
        PaymentIntentStatus::Succeeded => pi.amount_received_cents > pi.amount_refunded_cents,
        _ => false,
    }
}

/// One service effect nobody can be held to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unattributed {
    /// Run time (ms since start) of its creation.
    pub at_ms: u64,
    /// `stripe payment intent pi_…`, `inventory hold hold-3`, …
    pub what: String,
    /// The label it carried, if any.
    pub label: Option<String>,
}

/// The first time a business key's running net exceeded what was due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overcharge {
    /// Run time (ms since start) of the ledger entry, off Stripe's clock.
    pub at_ms: u64,
    /// The running net (cents) just after that entry, above what was due.
    pub net_cents: i64,
    /// The ledger entry that crossed it (`ledger entry #… (Capture … on
    /// pi_…)`).
    pub entry: String,
}

/// A Salesforce record as it stands: (id, fields), borrowed from the run.
pub type RecordState<'a> = (&'a str, &'a BTreeMap<String, Value>);

/// Everything the services hold for one business key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyTruth<'a> {
    /// The amount the caller's input declared.
    pub amount_cents: i64,
    /// What the saga takes in the end: the input's `capture_cents` when a
    /// step captures (a partial capture), else `amount_cents`.
    pub due_cents: i64,
    /// Captured or charged − refunded.
    pub net_cents: i64,
    /// The highest `net_cents` reached at any point of the ledger.
    pub peak_net_cents: i64,
    /// Authorized, not captured nor released.
    pub held_cents: i64,
    /// When the net first went above `due_cents`; `None` if it never
    /// did.
    pub overcharge: Option<Overcharge>,
    /// PaymentIntents refunded above what they received.
    pub over_refunded: Vec<String>,
    /// Live PaymentIntents, by the step that made them.
    pub live_intents: BTreeMap<String, Vec<String>>,
    /// Refunds Stripe failed (a closed card): their money was never
    /// returned — the ledger has no `Refund` line for them, so `net_cents`
    /// still counts it as taken.
    pub failed_refunds: Vec<String>,
    /// Confirmations Stripe declined (402), over the key's PaymentIntents.
    pub declines: u32,
    /// Authorizations Stripe ended, not the coordinator (expired, or
    /// reversed by the card network: `cancellation_reason = automatic`):
    /// a capture after the pivot can then only fail.
    pub expired_authorizations: Vec<String>,
    /// A hold of this key was never confirmed, on a room type a PMS
    /// operator changed during the run (cut, out of order), or it expired
    /// early on a PMS clock that jumped forward: a confirm after the pivot
    /// may have been made impossible.
    pub rooms_withdrawn: bool,
    /// Ids of PMS holds still `Active` in the ground truth at the end of
    /// the run.
    pub active_holds: Vec<String>,
    /// Ids of PMS bookings (confirmed holds) that stand.
    pub bookings: Vec<String>,
    /// Ids of this key's bookings a guest cancelled at the front desk:
    /// the saga made them, the environment undid them (see
    /// [`KeyTruth::bookings_made`]).
    pub guest_cancelled: Vec<String>,
    /// Live Salesforce records, by object.
    pub records: BTreeMap<&'a str, Vec<RecordState<'a>>>,
    /// Records an admin deleted (in the Recycle Bin), by object, as they
    /// were when deleted.
    pub admin_deleted: BTreeMap<&'a str, Vec<RecordState<'a>>>,
    /// Live effects in user services, by service.
    pub user_live: BTreeMap<String, Vec<String>>,
}

impl KeyTruth<'_> {
    /// Money taken or held.
    pub fn paid(&self) -> bool {
        self.net_cents > 0 || self.held_cents > 0
    }

    /// Bookings the saga made: those that stand and those a guest
    /// cancelled since (a cancellation the environment made is not the
    /// coordinator's undoing, and a second booking the guest cancelled
    /// was still made twice).
    pub fn bookings_made(&self) -> usize {
        self.bookings.len() + self.guest_cancelled.len()
    }
}

/// How far one resource of a saga got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// In its final forward state, exactly once.
    Done,
    /// Nothing left (never done, or undone).
    Nothing,
    /// Nothing left, because the environment removed what the saga made
    /// (an admin deleted the record, a guest cancelled the booking): not
    /// the coordinator's undoing, so it agrees with a saga that turned back
    /// and, if it was in its final forward state when removed
    /// (`was_done`), with one that completed.
    Removed {
        /// In its final forward state when the environment removed it.
        was_done: bool,
        /// What was removed.
        what: String,
    },
    /// Anything else, described.
    Partial(String),
}

/// A saga's state across every resource its steps touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SagaState {
    /// Every resource [`Progress::Done`].
    All,
    /// Every resource [`Progress::Nothing`].
    Nothing,
    /// Every resource [`Progress::Removed`] after it was done: the
    /// environment removed all the saga made, so a saga told completed and
    /// one told it turned back both agree with it.
    Removed,
    /// Resources that are neither, described.
    Partial(Vec<String>),
}

impl fmt::Display for SagaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SagaState::All => f.write_str("every step done"),
            SagaState::Nothing => f.write_str("nothing left"),
            SagaState::Removed => f.write_str("every step done, then removed by the environment"),
            SagaState::Partial(v) => f.write_str(&v.join("; ")),
        }
    }
}

/// The run's ground truth by business key.
#[derive(Clone, Debug, Default)]
pub struct Truth<'a> {
    /// One entry per business key of the run's inputs (also those nothing
    /// was applied for).
    pub keys: BTreeMap<String, KeyTruth<'a>>,
    /// Effects whose label names no business key of the run, sorted.
    pub unattributed: Vec<Unattributed>,
}

impl<'a> Truth<'a> {
    /// Attribute every effect of `out` to the business keys of its inputs.
    pub fn of(out: &'a RunOutcome) -> Truth<'a> {
        let clocks = Clocks::new(&out.plan.clocks);
        let keys: BTreeSet<&str> = out.inputs.iter().map(|i| i.business_key.as_str()).collect();
        let captures = out
            .workload
            .steps()
            .iter()
            .any(|s| matches!(s.op, Operation::StripeCapture { .. }));
        let mut t = Truth {
            keys: out
                .inputs
                .iter()
                .map(|i| {
                    let k = KeyTruth {
                        amount_cents: i.amount_cents,
                        due_cents: if captures {
                            i.due_cents()
                        } else {
                            i.amount_cents
                        },
                        ..KeyTruth::default()
                    };
                    (i.business_key.clone(), k)
                })
                .collect(),
            unattributed: Vec::new(),
        };
        let payment_steps: Vec<&str> = out
            .workload
            .payment_steps()
            .map(|s| s.name.as_str())
            .collect();

        // Stripe: intents to keys, then the ledger in order.
        let mut intent_owner: BTreeMap<&str, &str> = BTreeMap::new();
        for pi in out.stripe.payment_intents.values() {
            let label = pi.metadata.get(META_BUSINESS_KEY);
            let Some(k) = label.and_then(|l| keys.get(l.as_str()).copied()) else {
                t.unattributed.push(Unattributed {
                    at_ms: clocks.elapsed_at("stripe", pi.created_ms),
                    what: format!("stripe payment intent {}", pi.id),
                    label: label.cloned(),
                });
                continue;
            };
            intent_owner.insert(pi.id.as_str(), k);
            let kt = t.keys.get_mut(k).expect("keys come from the inputs");
            kt.declines += pi.declined_attempts;
            // Ended by Stripe (expired, or reversed by the network), not by
            // the coordinator.
            if pi.cancellation_reason == Some(CancellationReason::Automatic)
                && pi.authorized_ms.is_some()
            {
                kt.expired_authorizations.push(pi.id.clone());
            }
            if pi.amount_refunded_cents > pi.amount_received_cents {
                kt.over_refunded.push(pi.id.clone());
            }
            if is_live(pi) {
                let step = match (pi.metadata.get(META_STEP), payment_steps.as_slice()) {
                    (Some(s), _) => s.clone(),
                    (None, [only]) => only.to_string(),
                    (None, _) => String::new(),
                };
                kt.live_intents.entry(step).or_default().push(pi.id.clone());
            }
        }
        for e in &out.stripe.ledger {
            let Some(kt) = intent_owner
                .get(e.payment_intent.as_str())
                .and_then(|k| t.keys.get_mut(*k))
            else {
                continue;
            };
            assert!(e.amount_cents > 0, "ledger amounts are positive");
            match e.movement {
                Movement::Charge => kt.net_cents += e.amount_cents,
                Movement::Capture => {
                    kt.net_cents += e.amount_cents;
                    kt.held_cents -= e.amount_cents;
                }
                Movement::Refund => kt.net_cents -= e.amount_cents,
                Movement::Authorize => kt.held_cents += e.amount_cents,
                Movement::Release => kt.held_cents -= e.amount_cents,
            }
            kt.peak_net_cents = kt.peak_net_cents.max(kt.net_cents);
            if kt.net_cents > kt.due_cents && kt.overcharge.is_none() {
                kt.overcharge = Some(Overcharge {
                    at_ms: clocks.elapsed_at("stripe", e.at_ms),
                    net_cents: kt.net_cents,
                    entry: format!(
                        "ledger entry #{} ({:?} {} on {})",
                        e.seq, e.movement, e.amount_cents, e.payment_intent
                    ),
                });
            }
        }
        for re in out.stripe.refunds.values() {
            if re.status != RefundStatus::Failed {
                continue;
            }
            if let Some(kt) = intent_owner
                .get(re.payment_intent.as_str())
                .and_then(|k| t.keys.get_mut(*k))
            {
                kt.failed_refunds.push(re.id.clone());
            }
        }

        // PMS. Room types an operator changed during the run (a capacity
        // cut, out of order): a hold on one may be unconfirmable.
        let operated: BTreeSet<&str> = out
            .plan
            .events
            .iter()
            .filter_map(|e| match &e.what {
                EnvKind::RoomType { room_type, .. } => Some(room_type.as_str()),
                _ => None,
            })
            .collect();
        // The PMS's clock jumped forward: a hold may have expired before
        // its TTL had passed in true time.
        let pms_jumped = out
            .plan
            .clocks
            .iter()
            .any(|c| c.node == crate::world::wire::INVENTORY && c.jump.is_some());
        for h in out.inventory.holds.values() {
            let owner = h.client_ref.as_deref().and_then(|r| owner_of(r, &keys));
            if let Some(k) = owner {
                let withdrawn = operated.contains(h.room_type.as_str())
                    || (pms_jumped && h.status == HoldStatus::Expired);
                if h.booking_id.is_none() && withdrawn {
                    t.keys.get_mut(k).expect("input").rooms_withdrawn = true;
                }
            }
            match owner {
                Some(k) if h.status == HoldStatus::Active => t
                    .keys
                    .get_mut(k)
                    .expect("input")
                    .active_holds
                    .push(h.id.clone()),
                Some(_) => {}
                None => t.unattributed.push(Unattributed {
                    at_ms: clocks.elapsed_at("inventory", h.created_ms),
                    what: format!("inventory hold {}", h.id),
                    label: h.client_ref.clone(),
                }),
            }
        }
        let by_guest: BTreeSet<&str> = out
            .inventory
            .guest_cancellations
            .iter()
            .map(String::as_str)
            .collect();
        for b in out.inventory.bookings.values() {
            // A booking is its hold confirmed: an unattributable one was
            // reported with its hold. One cancelled by a client is no
            // booking; one a guest cancelled at the desk is listed apart.
            let Some(k) = b.client_ref.as_deref().and_then(|r| owner_of(r, &keys)) else {
                continue;
            };
            let kt = t.keys.get_mut(k).expect("input");
            if b.stands() {
                kt.bookings.push(b.id.clone());
            } else if by_guest.contains(b.id.as_str()) {
                kt.guest_cancelled.push(b.id.clone());
            }
        }

        // Salesforce: live records; an admin's deletion is judged below.
        // A record an admin restored from the Recycle Bin is the admin's
        // too: judged with the deleted ones, as it stands now.
        let restored: BTreeSet<&str> = out
            .salesforce
            .admin_restorations
            .iter()
            .map(String::as_str)
            .collect();
        for rec in out.salesforce.records.values() {
            let owner = rec.external_id.as_deref().and_then(|e| owner_of(e, &keys));
            let Some(k) = owner else {
                t.unattributed.push(Unattributed {
                    at_ms: clocks.elapsed_at("salesforce", rec.created_ms),
                    what: format!("salesforce {} {}", rec.object, rec.id),
                    label: rec.external_id.clone(),
                });
                continue;
            };
            if rec.is_deleted || restored.contains(rec.id.as_str()) {
                // In the Recycle Bin (or back from it by an admin's hand):
                // not a live record the saga answers for.
                continue;
            }
            t.keys
                .get_mut(k)
                .expect("input")
                .records
                .entry(rec.object.as_str())
                .or_default()
                .push((rec.id.as_str(), &rec.fields));
        }
        // Records an admin deleted: the saga wrote them, the environment
        // removed them (see `Progress::Removed`). Once each, though an
        // admin may delete a record again after restoring it.
        let deleted: BTreeSet<&String> = out.salesforce.admin_deletions.iter().collect();
        for id in deleted {
            let Some(rec) = out.salesforce.records.get(id) else {
                continue;
            };
            let owner = rec.external_id.as_deref().and_then(|e| owner_of(e, &keys));
            let admins = rec.is_deleted || restored.contains(rec.id.as_str());
            if let (Some(k), true) = (owner, admins) {
                t.keys
                    .get_mut(k)
                    .expect("input")
                    .admin_deleted
                    .entry(rec.object.as_str())
                    .or_default()
                    .push((rec.id.as_str(), &rec.fields));
            }
        }
        // User services.
        for u in &out.user {
            for e in &u.effects {
                match owner_of(&e.label, &keys) {
                    Some(k) if e.live => t
                        .keys
                        .get_mut(k)
                        .expect("input")
                        .user_live
                        .entry(u.service.clone())
                        .or_default()
                        .push(e.id.clone()),
                    Some(_) => {}
                    None => t.unattributed.push(Unattributed {
                        at_ms: clocks.elapsed_at(&u.service, e.created_ms),
                        what: format!("{} effect {}", u.service, e.id),
                        label: Some(e.label.clone()),
                    }),
                }
            }
        }
        t.unattributed.sort();
        t
    }
}

/// What the workload's declaration says each resource ends as.
#[derive(Clone, Debug)]
pub struct Expectations<'w> {
    /// Whether any step moves money, and whether it ends captured.
    payment: Option<PaymentEnd>,
    /// Whether any step holds, and whether the hold ends confirmed.
    pms: Option<bool>,
    /// Per Salesforce object: the final forward record, and the undone one.
    records: BTreeMap<&'w str, (&'w SfRecord, Option<&'w SfRecord>)>,
    /// User services a step calls (one live effect each when done).
    users: BTreeSet<&'w str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PaymentEnd {
    Captured,
    Authorized,
}

impl<'w> Expectations<'w> {
    /// Read the declaration: which resources its steps touch and what each
    /// ends as when every step is done.
    pub fn of(w: &'w Workload) -> Expectations<'w> {
        let mut payment = None;
        let mut pms = None;
        let mut records: BTreeMap<&str, (&SfRecord, Option<&SfRecord>)> = BTreeMap::new();
        let mut users = BTreeSet::new();
        for step in w.steps() {
            match &step.op {
                Operation::Call { service, .. } => {
                    users.insert(service.as_str());
                }
                Operation::StripeCharge | Operation::StripeCapture { .. } => {
                    payment = Some(PaymentEnd::Captured)
                }
                Operation::StripeAuthorize => {
                    payment.get_or_insert(PaymentEnd::Authorized);
                }
                Operation::PmsHold(_) => {
                    pms.get_or_insert(false);
                }
                Operation::PmsConfirm { .. } => pms = Some(true),
                Operation::SalesforceUpsert {
                    records: rs, undo, ..
                } => {
                    for r in rs {
                        let undone = undo.iter().find(|u| u.object == r.object);
                        let e = records.entry(r.object.as_str()).or_insert((r, undone));
                        e.0 = r;
                        if e.1.is_none() {
                            e.1 = undone;
                        }
                    }
                }
            }
        }
        Expectations {
            payment,
            pms,
            records,
            users,
        }
    }

    /// The resources besides payment and inventory: each Salesforce object
    /// and each user service the steps write, by the names
    /// [`Expectations::progress`] reports them under.
    pub fn records_and_services(&self) -> Vec<&'w str> {
        self.records
            .keys()
            .copied()
            .chain(self.users.iter().copied())
            .collect()
    }

    /// Whether the holds of this workload end confirmed (so an active hold
    /// at the end is an orphan).
    pub fn holds_end_confirmed(&self) -> bool {
        self.pms == Some(true)
    }

    /// How far each resource of key `k` got.
    pub fn progress(&self, k: &KeyTruth) -> Vec<(&'w str, Progress)> {
        let mut v = Vec::new();
        if let Some(end) = self.payment {
            let (net, held, amount) = (k.net_cents, k.held_cents, k.amount_cents);
            let done = match end {
                PaymentEnd::Captured => net == k.due_cents && held == 0,
                PaymentEnd::Authorized => held == amount && net == 0,
            };
            let p = if done {
                Progress::Done
            } else if net == 0 && held == 0 {
                Progress::Nothing
            } else {
                Progress::Partial(format!("{net} cents taken, {held} cents held"))
            };
            v.push(("payment", p));
        }
        if let Some(confirmed) = self.pms {
            let (units, what) = if confirmed {
                (k.bookings_made(), "booking(s)")
            } else {
                (k.active_holds.len(), "active hold(s)")
            };
            let p = match units {
                1 if confirmed && k.bookings.is_empty() => Progress::Removed {
                    was_done: true,
                    what: format!("booking {} cancelled by the guest", k.guest_cancelled[0]),
                },
                1 => Progress::Done,
                0 => Progress::Nothing,
                n => Progress::Partial(format!("{n} {what}")),
            };
            v.push(("inventory", p));
        }
        for (object, (done, undone)) in &self.records {
            let have = k.records.get(object).map(Vec::as_slice).unwrap_or(&[]);
            let deleted = k
                .admin_deleted
                .get(object)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let is_undone =
                |f: &BTreeMap<String, Value>| undone.as_ref().is_some_and(|u| u.matches(f));
            let removed: Vec<&RecordState> =
                deleted.iter().filter(|(_, f)| !is_undone(f)).collect();
            let p = if have.iter().all(|(_, f)| is_undone(f)) {
                // Nothing live but undone records; what an admin deleted
                // in a forward state was removed by the environment.
                match removed.as_slice() {
                    [] => Progress::Nothing,
                    rs => Progress::Removed {
                        was_done: rs.iter().any(|(_, f)| done.matches(f)),
                        what: format!(
                            "{object} {} deleted by an admin",
                            rs.iter().map(|(id, _)| *id).collect::<Vec<_>>().join(", ")
                        ),
                    },
                }
            } else if have.len() == 1 && done.matches(have[0].1) {
                Progress::Done
            } else {
                let states: Vec<String> =
                    have.iter().map(|(id, f)| describe(id, done, f)).collect();
                Progress::Partial(format!("{object} {}", states.join(", ")))
            };
            v.push((object, p));
        }
        for service in &self.users {
            let live = k.user_live.get(*service).map_or(0, Vec::len);
            let p = match live {
                1 => Progress::Done,
                0 => Progress::Nothing,
                n => Progress::Partial(format!("{n} live {service} effects")),
            };
            v.push((service, p));
        }
        v
    }

    /// The saga's state over every resource. A resource the environment
    /// removed ([`Progress::Removed`]) agrees with nothing left, and, if
    /// it was done when removed, with every step done.
    pub fn state(&self, k: &KeyTruth) -> SagaState {
        let progress = self.progress(k);
        let all_done = progress
            .iter()
            .all(|(_, p)| matches!(p, Progress::Done | Progress::Removed { was_done: true, .. }));
        let all_nothing = progress
            .iter()
            .all(|(_, p)| matches!(p, Progress::Nothing | Progress::Removed { .. }));
        match (all_done, all_nothing) {
            (true, true) if !progress.is_empty() => return SagaState::Removed,
            (true, _) => return SagaState::All,
            (_, true) => return SagaState::Nothing,
            _ => {}
        }
        SagaState::Partial(
            progress
                .into_iter()
                .map(|(r, p)| match p {
                    Progress::Done => format!("{r} done"),
                    Progress::Nothing => format!("no {r}"),
                    Progress::Removed { what, .. } => what,
                    Progress::Partial(what) => what,
                })
                .collect(),
        )
    }
}

/// `id {Field: value, …}` over the fields the declaration fixes.
fn describe(id: &str, record: &SfRecord, fields: &BTreeMap<String, Value>) -> String {
    let shown: Vec<String> = record
        .literals()
        .keys()
        .map(|k| {
            let v = fields.get(*k).map_or("-".to_string(), |v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            format!("{k}={v}")
        })
        .collect();
    format!("{id} {{{}}}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_their_business_key() {
        let keys: BTreeSet<&str> = ["res-1", "res-12"].into();
        assert_eq!(owner_of("saga-res-1", &keys), Some("res-1"));
        assert_eq!(owner_of("res-12", &keys), Some("res-12"));
        assert_eq!(owner_of("saga-res-1/hold_room", &keys), Some("res-1"));
        assert_eq!(owner_of("saga-res-12#17.3", &keys), Some("res-12"));
        assert_eq!(owner_of("saga-res-2", &keys), None);
        assert_eq!(owner_of("res-1x", &keys), None);
        assert_eq!(owner_of("", &keys), None);
    }
}
