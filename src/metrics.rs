//! Business metrics: what partial failure cost in one run, and over many —
//! for any coordinator, so that two architectures can be compared on the
//! same fault plans (`sagasim compare`).
//!
//! Everything is computed from a [`RunOutcome`]'s **ground truth** (the
//! Stripe ledger, the PMS holds and bookings, the Salesforce records), the
//! **agents' records** (what each caller was told, and when) and the
//! checkers' [`Verdict`]; never from the coordinator's own log or status.
//!
//! # Attribution
//!
//! An effect belongs to a checkout (a business key `K` of the run's inputs)
//! by the labels a coordinator puts on it:
//! - a Stripe movement by its PaymentIntent's metadata `business_key`;
//! - a PMS hold or booking by its `client_ref`, a Salesforce record by its
//!   external id, when that reads `saga-K` or `K`, optionally followed by
//!   `/…` or `#…` (`saga-K/hold_room`, `saga-K#17.3`).
//!
//! (The attribution is `check::truth`'s, the same the invariants use.)
//! Effects that cannot be attributed are counted (`unattributed_effects`):
//! a coordinator that labels nothing cannot be measured, and should show.
//!
//! # Definitions (per run)
//!
//! - **started**: agents that made at least one tool call;
//!   **completed / compensated / needs operator / rejected**: their last
//!   decided answer; **unanswered**: started, never decided (gave up).
//! - **verified completion**: answered `Completed` *and* the ground truth
//!   agrees with what the workload declares (`check::truth::Expectations`):
//!   net charge = price (what was due: a partial capture's amount, see
//!   `SagaInput::capture_cents`), nothing held, exactly one room booking, every
//!   Salesforce object and user-service effect in its final forward state
//!   exactly once (for the hotel: booking `Confirmed`, opportunity `Closed
//!   Won`), no stale state. **Contradicted answer**: `Completed` without
//!   that, or `Compensated` / `Rejected` while something is left (money
//!   taken or held, a room, a live record or effect). "CRM" below means
//!   those records and effects, whatever the workload. Success rate = completed / started (as told) and verified
//!   / started (as true).
//! - **could succeed** (the ceiling): checkouts that a perfect coordinator
//!   would complete — started by an agent whose card does not decline,
//!   at most as many as the room type has sellable rooms (capacity +
//!   overbooking limit, none if out of order). A declined card and a
//!   sold-out room are correct failures, not lost sales: with 4 agents, 3
//!   rooms and one declining card the ceiling is 75 %. Success among them
//!   = verified / could succeed; **lost sales** = could succeed − verified.
//!   Set by [`RunMetrics::with_ceiling`] from the scenario (the run alone
//!   does not say which cards decline).
//! - **latency**: `answered_ms − first_call_ms` of each answered checkout,
//!   simulated ms, as the agent sees it (retries included).
//! - **double charge**: a business key whose running net (charged +
//!   captured − refunded, in ledger order) ever exceeded its price;
//!   **overcharge at end**: Σ max(0, final net − price).
//! - **stale state** (after quiescence: the end of the run), at most once
//!   per business key and [`StaleKind`]; "paid" means money taken or held:
//!   `paid-no-room`, `room-not-paid` (net < price), `room-booked-twice`,
//!   `room-crm-not-confirmed` (booking not `Confirmed` or opportunity not
//!   `Closed Won`), `crm-confirmed-no-room`, `crm-open-no-room` (a pending
//!   booking or open opportunity for a checkout without a room).
//! - **orphaned holds**: holds still active at the end.
//! - **violations**: the checkers' verdict, by invariant.
//!
//! [`Aggregate`] sums these over runs and takes latency percentiles over
//! all answered checkouts (nearest rank). It also keeps, per failing
//! metric ([`FailingMetric`]), the lowest seed that shows it: an example
//! to replay and look at. Rates are fractions of started
//! checkouts. Aggregates of the same runs are equal whatever the order or
//! thread count.
//!
//! Not here: the checkers (`check`), printing (the binary), wall time
//! (only [`Comparison::elapsed_s`], never in the table).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use crate::check::truth::owner_of;
use crate::check::truth::{Expectations, Progress, Truth};
use crate::check::Verdict;
use crate::fuzz::{for_each_seed, FuzzConfig};
use crate::harness::run_checked;
use crate::saga::SagaStatus;
use crate::scenario::Scenario;
use crate::services::inventory::HoldStatus;
use crate::trace::TraceMode;
use crate::world::agent::AgentRecord;
use crate::world::run::{plan_for, RunOutcome};
use crate::world::CoordinatorImpl;

/// A kind of cross-system disagreement left after quiescence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaleKind {
    /// Money taken or held, no room booked.
    PaidNoRoom,
    /// A room booked, less than the price taken.
    RoomNotPaid,
    /// More than one room booked for one checkout.
    RoomBookedTwice,
    /// A room booked, the CRM not `Confirmed` + `Closed Won`.
    RoomCrmNotConfirmed,
    /// The CRM says confirmed or won, no room booked.
    CrmConfirmedNoRoom,
    /// A pending booking or open opportunity, no room booked.
    CrmOpenNoRoom,
}

impl StaleKind {
    /// Every kind, in table order.
    pub const ALL: [StaleKind; 6] = [
        StaleKind::PaidNoRoom,
        StaleKind::RoomNotPaid,
        StaleKind::RoomBookedTwice,
        StaleKind::RoomCrmNotConfirmed,
        StaleKind::CrmConfirmedNoRoom,
        StaleKind::CrmOpenNoRoom,
    ];

    /// Human label for tables.
    pub fn label(self) -> &'static str {
        match self {
            StaleKind::PaidNoRoom => "paid, no room",
            StaleKind::RoomNotPaid => "room booked, not paid",
            StaleKind::RoomBookedTwice => "room booked twice",
            StaleKind::RoomCrmNotConfirmed => "room booked, CRM not confirmed",
            StaleKind::CrmConfirmedNoRoom => "CRM confirmed, no room",
            StaleKind::CrmOpenNoRoom => "CRM left open, no room",
        }
    }
}

/// One stale fact: a business key and what disagrees.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stale {
    /// The checkout the disagreeing effects are attributed to.
    pub business_key: String,
    /// What disagrees.
    pub kind: StaleKind,
}

/// The metrics of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// The run's seed.
    pub seed: u64,
    /// Whether the run was quiescent before the liveness phase ran out.
    pub converged: bool,
    /// Agents that made at least one tool call.
    pub started: u32,
    /// Started checkouts last told `Completed`.
    pub completed: u32,
    /// Started checkouts last told `Compensated`.
    pub compensated: u32,
    /// Started checkouts last told `NeedsOperator`.
    pub needs_operator: u32,
    /// Started checkouts last told `Rejected`.
    pub rejected: u32,
    /// Started checkouts never told a decided status (the agent gave up).
    pub unanswered: u32,
    /// Told `Completed`, and the ground truth agrees (everything done
    /// exactly once, no stale state).
    pub completed_verified: u32,
    /// Business keys whose answer the ground truth contradicts.
    pub contradicted: Vec<String>,
    /// Agent-side latency of each answered checkout, in agent order.
    pub latencies_ms: Vec<u64>,
    /// Business keys charged more than their price at some point.
    pub double_charged: Vec<String>,
    /// Σ over business keys of max(0, final net − price), in cents.
    pub overcharged_cents: i64,
    /// Sorted.
    pub stale: Vec<Stale>,
    /// Ids of holds still active at the end.
    pub orphan_holds: Vec<String>,
    /// Effects whose label names no business key of the run.
    pub unattributed_effects: u32,
    /// The checkers' violations, by invariant.
    pub violations: BTreeMap<String, u32>,
    /// Checkouts that could succeed (the ceiling; 0 until
    /// [`RunMetrics::with_ceiling`]).
    #[serde(default)]
    pub could_succeed: u32,
}

/// A business metric that a run can fail on; [`Aggregate::examples`] keeps
/// the lowest seed that shows each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailingMetric {
    /// A checkout that could succeed did not end verified (a lost sale).
    LostSale,
    /// The ground truth contradicts what a caller was told.
    Contradicted,
    /// A checkout was charged more than its price at some point.
    DoubleCharge,
    /// Cross-system state disagrees after quiescence.
    Stale,
    /// A hold is still active at the end.
    OrphanHold,
    /// A checkout ended waiting for an operator.
    NeedsOperator,
    /// An agent gave up without a decided answer.
    Unanswered,
    /// The checkers flagged an invariant.
    Violation,
}

impl FailingMetric {
    /// Every failing metric, in table order.
    pub const ALL: [FailingMetric; 8] = [
        FailingMetric::LostSale,
        FailingMetric::Contradicted,
        FailingMetric::DoubleCharge,
        FailingMetric::Stale,
        FailingMetric::OrphanHold,
        FailingMetric::NeedsOperator,
        FailingMetric::Unanswered,
        FailingMetric::Violation,
    ];

    /// Human label for tables and pages.
    pub fn label(self) -> &'static str {
        match self {
            FailingMetric::LostSale => "lost sale (could succeed, did not)",
            FailingMetric::Contradicted => "answer contradicted by ground truth",
            FailingMetric::DoubleCharge => "double charge",
            FailingMetric::Stale => "stale state after quiescence",
            FailingMetric::OrphanHold => "orphaned active hold",
            FailingMetric::NeedsOperator => "needs an operator",
            FailingMetric::Unanswered => "unanswered (agent gave up)",
            FailingMetric::Violation => "invariant violated",
        }
    }
}

/// How many checkouts of `out` could succeed under scenario `s` (the
/// hotel workload's ceiling; see the module doc): started agents whose card
/// does not decline, capped by the sellable rooms of the room type.
pub fn could_succeed(s: &Scenario, agents: &[AgentRecord]) -> u32 {
    let willing = agents
        .iter()
        .filter(|a| a.first_call_ms.is_some())
        .filter(|a| !s.workload.declining_agents.contains(&a.agent))
        .count();
    let room_type = &s.workload.room_type;
    let rooms = if s.inventory.out_of_order.contains(room_type) {
        0
    } else {
        s.inventory
            .room_types
            .get(room_type)
            .copied()
            .unwrap_or(0)
            .saturating_add(s.inventory.overbooking_of(room_type))
    };
    u32::try_from(willing).unwrap_or(u32::MAX).min(rooms)
}

/// What the services hold for one business key at the end.
#[derive(Clone, Copy, Debug, Default)]
struct KeyTruth {
    net_cents: i64,
    peak_net_cents: i64,
    held_cents: i64,
    rooms: u32,
    /// Every Salesforce object and user-service effect the declaration
    /// writes is in its final forward state, exactly once (vacuously true
    /// for a workload that writes none).
    crm_done: bool,
    /// At least one of them is.
    crm_confirmed_any: bool,
    /// One of them is neither done nor undone (a pending booking, an open
    /// opportunity, a duplicate).
    crm_open: bool,
}

impl KeyTruth {
    fn paid(&self) -> bool {
        self.net_cents > 0 || self.held_cents > 0
    }

    fn stale(&self, price: i64) -> Vec<StaleKind> {
        let mut v = Vec::new();
        let room = self.rooms > 0;
        if self.paid() && !room {
            v.push(StaleKind::PaidNoRoom);
        }
        if room && self.net_cents < price {
            v.push(StaleKind::RoomNotPaid);
        }
        if self.rooms > 1 {
            v.push(StaleKind::RoomBookedTwice);
        }
        if room && !self.crm_done {
            v.push(StaleKind::RoomCrmNotConfirmed);
        }
        if !room && self.crm_confirmed_any {
            v.push(StaleKind::CrmConfirmedNoRoom);
        }
        if !room && !self.crm_confirmed_any && self.crm_open {
            v.push(StaleKind::CrmOpenNoRoom);
        }
        v
    }

    /// Everything done exactly once.
    fn all_done(&self, price: i64) -> bool {
        self.net_cents == price
            && self.held_cents == 0
            && self.rooms == 1
            && self.crm_done
            && self.stale(price).is_empty()
    }

    /// Nothing left anywhere.
    fn nothing_left(&self) -> bool {
        !self.paid() && self.rooms == 0 && !self.crm_confirmed_any && !self.crm_open
    }
}

impl RunMetrics {
    /// The metrics of a finished run and its verdict.
    pub fn of(out: &RunOutcome, verdict: &Verdict) -> RunMetrics {
        let attributed = Truth::of(out);
        let expect = Expectations::of(&out.workload);
        let records = expect.records_and_services();
        let price: BTreeMap<&str, i64> = attributed
            .keys
            .iter()
            .map(|(k, t)| (k.as_str(), t.due_cents))
            .collect();
        let mut truth: BTreeMap<&str, KeyTruth> = BTreeMap::new();
        for (k, t) in &attributed.keys {
            let mut kt = KeyTruth {
                net_cents: t.net_cents,
                peak_net_cents: t.peak_net_cents,
                held_cents: t.held_cents,
                // A booking the guest cancelled since was still sold.
                rooms: u32::try_from(t.bookings_made()).unwrap_or(u32::MAX),
                ..KeyTruth::default()
            };
            // The CRM records and user-service effects, judged against
            // what the declaration says each ends as.
            let progress = expect.progress(t);
            let others: Vec<&Progress> = progress
                .iter()
                .filter(|(r, _)| records.contains(r))
                .map(|(_, p)| p)
                .collect();
            // A record an admin deleted once it was done counts as done.
            let done = |p: &Progress| {
                matches!(p, Progress::Done | Progress::Removed { was_done: true, .. })
            };
            kt.crm_done = others.iter().all(|p| done(p));
            kt.crm_confirmed_any = others.iter().any(|p| done(p));
            kt.crm_open = others.iter().any(|p| matches!(p, Progress::Partial(_)));
            truth.insert(k.as_str(), kt);
        }
        let orphan_holds = out
            .inventory
            .holds
            .values()
            .filter(|h| h.status == HoldStatus::Active)
            .map(|h| h.id.clone())
            .collect();
        let unattributed = u32::try_from(attributed.unattributed.len()).unwrap_or(u32::MAX);

        let mut m = RunMetrics {
            seed: out.seed,
            converged: out.phases.converged,
            orphan_holds,
            unattributed_effects: unattributed,
            ..RunMetrics::default()
        };
        for (k, t) in &truth {
            let p = price[k];
            if t.peak_net_cents > p {
                m.double_charged.push(k.to_string());
            }
            m.overcharged_cents += (t.net_cents - p).max(0);
            for kind in t.stale(p) {
                m.stale.push(Stale {
                    business_key: k.to_string(),
                    kind,
                });
            }
        }
        m.stale.sort();

        // The agents: what they were told, checked against the truth.
        for a in &out.agents {
            let Some(first_ms) = a.first_call_ms else {
                continue;
            };
            m.started += 1;
            let t = truth
                .get(a.business_key.as_str())
                .copied()
                .unwrap_or_default();
            let p = price.get(a.business_key.as_str()).copied().unwrap_or(0);
            let contradicted = match &a.answer {
                None | Some(SagaStatus::Running { .. }) => {
                    m.unanswered += 1;
                    false
                }
                Some(SagaStatus::Completed) => {
                    m.completed += 1;
                    if t.all_done(p) {
                        m.completed_verified += 1;
                    }
                    !t.all_done(p)
                }
                Some(SagaStatus::Compensated { .. }) => {
                    m.compensated += 1;
                    !t.nothing_left()
                }
                Some(SagaStatus::Rejected { .. }) => {
                    m.rejected += 1;
                    !t.nothing_left()
                }
                Some(SagaStatus::NeedsOperator { .. }) => {
                    m.needs_operator += 1;
                    false
                }
            };
            if contradicted {
                m.contradicted.push(a.business_key.clone());
            }
            if let (Some(answered_ms), Some(answer)) = (a.answered_ms, &a.answer) {
                if answer.is_decided() {
                    assert!(answered_ms >= first_ms, "answered before the first call");
                    m.latencies_ms.push(answered_ms - first_ms);
                }
            }
        }
        for v in verdict.all() {
            *m.violations.entry(v.invariant.clone()).or_default() += 1;
        }
        m
    }

    /// These metrics with the ceiling set: how many checkouts of `out`
    /// could succeed under `s` as the run's plan drew it (its agents,
    /// rooms and declining cards; [`could_succeed`]).
    pub fn with_ceiling(mut self, s: &Scenario, out: &RunOutcome) -> RunMetrics {
        // The run ran this plan, so its draw was valid.
        let mut drawn = s.drawn(&out.plan);
        // Correct failures besides a declined card: a card that asks for
        // 3-D Secure (the agent must send the customer to authenticate), a
        // booking the CRM's validation rules refuse.
        for (n, input) in (1..).zip(&out.inputs) {
            let refused = out.workload.steps().iter().any(|step| match &step.op {
                crate::workload::Operation::SalesforceUpsert { records, .. } => {
                    records.iter().any(|r| {
                        let fields = r.resolve(input);
                        drawn
                            .salesforce
                            .validation_rules
                            .iter()
                            .any(|rule| rule.rejects_record(&r.object, &fields))
                    })
                }
                _ => false,
            });
            if refused
                || drawn
                    .stripe
                    .requires_action_customers
                    .contains(&input.customer)
            {
                drawn.workload.declining_agents.insert(n);
            }
        }
        self.could_succeed = could_succeed(&drawn, &out.agents);
        self
    }

    /// Checkouts that could succeed and did not end verified.
    pub fn lost_sales(&self) -> u32 {
        self.could_succeed.saturating_sub(self.completed_verified)
    }

    /// Whether this run shows `metric`.
    pub fn fails(&self, metric: FailingMetric) -> bool {
        match metric {
            FailingMetric::LostSale => self.lost_sales() > 0,
            FailingMetric::Contradicted => !self.contradicted.is_empty(),
            FailingMetric::DoubleCharge => !self.double_charged.is_empty(),
            FailingMetric::Stale => !self.stale.is_empty(),
            FailingMetric::OrphanHold => !self.orphan_holds.is_empty(),
            FailingMetric::NeedsOperator => self.needs_operator > 0,
            FailingMetric::Unanswered => self.unanswered > 0,
            FailingMetric::Violation => !self.violations.is_empty(),
        }
    }
}

/// Metrics summed over runs of one coordinator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The coordinator's name.
    pub coordinator: String,
    /// Runs added.
    pub runs: u64,
    /// Runs that were quiescent before the liveness phase ran out.
    pub runs_converged: u64,
    /// Σ [`RunMetrics::started`]; the sum of the five counts below it.
    pub started: u64,
    /// Σ [`RunMetrics::completed`].
    pub completed: u64,
    /// Σ [`RunMetrics::compensated`].
    pub compensated: u64,
    /// Σ [`RunMetrics::needs_operator`].
    pub needs_operator: u64,
    /// Σ [`RunMetrics::rejected`].
    pub rejected: u64,
    /// Σ [`RunMetrics::unanswered`].
    pub unanswered: u64,
    /// Σ [`RunMetrics::completed_verified`].
    pub completed_verified: u64,
    /// Answers the ground truth contradicts (Σ of
    /// [`RunMetrics::contradicted`] lengths).
    pub answers_contradicted: u64,
    /// completed / started.
    pub success_rate: f64,
    /// completed_verified / started.
    pub success_rate_verified: f64,
    /// compensated / started.
    pub compensation_rate: f64,
    /// needs_operator / started.
    pub needs_operator_rate: f64,
    /// Nearest-rank percentiles over every answered checkout.
    pub latency_p50_ms: Option<u64>,
    /// 95th percentile, like `latency_p50_ms`: `None` until
    /// [`Aggregate::finish`] or if no checkout was answered.
    pub latency_p95_ms: Option<u64>,
    /// 99th percentile, like `latency_p95_ms`.
    pub latency_p99_ms: Option<u64>,
    /// Longest answered latency; `None` if no checkout was answered.
    pub latency_max_ms: Option<u64>,
    /// Business keys charged more than their price at some point, summed.
    pub double_charges: u64,
    /// Runs with at least one double charge.
    pub runs_with_double_charge: u64,
    /// Σ [`RunMetrics::overcharged_cents`], in cents.
    pub overcharged_cents: i64,
    /// Stale facts, summed (at most one per business key and kind per run).
    pub stale: u64,
    /// `stale` by kind; every kind present, 0 when never seen.
    pub stale_by_kind: BTreeMap<StaleKind, u64>,
    /// Runs with at least one stale fact.
    pub runs_with_stale: u64,
    /// Holds still active at the end of a run, summed.
    pub orphan_holds: u64,
    /// Σ [`RunMetrics::unattributed_effects`].
    pub unattributed_effects: u64,
    /// Runs with at least one violation.
    pub runs_flagged: u64,
    /// Runs in which each invariant was violated at least once.
    pub runs_flagged_by_invariant: BTreeMap<String, u64>,
    /// Violations, summed over runs and invariants.
    pub violations: u64,
    /// Violations by invariant name, summed over runs.
    pub violations_by_invariant: BTreeMap<String, u64>,
    /// Checkouts that could succeed (the ceiling), summed.
    #[serde(default)]
    pub could_succeed: u64,
    /// could_succeed / started: the best success rate possible.
    #[serde(default)]
    pub ceiling_rate: f64,
    /// completed_verified / could_succeed: success against what was
    /// possible.
    #[serde(default)]
    pub success_rate_of_possible: f64,
    /// Checkouts that could succeed and did not end verified.
    #[serde(default)]
    pub lost_sales: u64,
    /// The lowest seed showing each failing metric (only those seen).
    #[serde(default)]
    pub examples: BTreeMap<FailingMetric, u64>,
    /// Every answered checkout's latency: ms -> how many (exact, bounded by
    /// the number of distinct ms values; kept for adding runs, not
    /// serialised).
    #[serde(skip)]
    pub latency_histogram_ms: BTreeMap<u64, u64>,
}

/// Nearest-rank percentile `p` (1..=100) of a histogram (value -> count).
pub fn percentile(histogram: &BTreeMap<u64, u64>, p: u64) -> Option<u64> {
    assert!((1..=100).contains(&p), "percentile {p} out of range");
    let n: u64 = histogram.values().sum();
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).max(1);
    let mut seen = 0;
    for (value, count) in histogram {
        seen += count;
        if seen >= rank {
            return Some(*value);
        }
    }
    unreachable!("rank {rank} is at most the total {n}")
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Aggregate {
    /// An empty aggregate for `coordinator` (every stale kind at 0).
    pub fn new(coordinator: &str) -> Aggregate {
        Aggregate {
            coordinator: coordinator.to_string(),
            stale_by_kind: StaleKind::ALL.iter().map(|k| (*k, 0)).collect(),
            ..Aggregate::default()
        }
    }

    /// Sum `runs` of `coordinator`.
    pub fn of<'a>(coordinator: &str, runs: impl IntoIterator<Item = &'a RunMetrics>) -> Aggregate {
        let mut a = Aggregate::new(coordinator);
        for r in runs {
            a.add(r);
        }
        a.finish();
        a
    }

    /// Add one run. Sums and counts only, so the result does not depend on
    /// the order runs are added in. Percentiles wait for
    /// [`Aggregate::finish`].
    pub fn add(&mut self, r: &RunMetrics) {
        let a = self;
        a.runs += 1;
        a.runs_converged += u64::from(r.converged);
        a.started += u64::from(r.started);
        a.completed += u64::from(r.completed);
        a.compensated += u64::from(r.compensated);
        a.needs_operator += u64::from(r.needs_operator);
        a.rejected += u64::from(r.rejected);
        a.unanswered += u64::from(r.unanswered);
        a.completed_verified += u64::from(r.completed_verified);
        a.answers_contradicted += r.contradicted.len() as u64;
        for l in &r.latencies_ms {
            *a.latency_histogram_ms.entry(*l).or_default() += 1;
        }
        a.double_charges += r.double_charged.len() as u64;
        a.runs_with_double_charge += u64::from(!r.double_charged.is_empty());
        a.overcharged_cents += r.overcharged_cents;
        a.stale += r.stale.len() as u64;
        for s in &r.stale {
            *a.stale_by_kind.entry(s.kind).or_default() += 1;
        }
        a.runs_with_stale += u64::from(!r.stale.is_empty());
        a.orphan_holds += r.orphan_holds.len() as u64;
        a.unattributed_effects += u64::from(r.unattributed_effects);
        a.runs_flagged += u64::from(!r.violations.is_empty());
        for (inv, n) in &r.violations {
            *a.runs_flagged_by_invariant.entry(inv.clone()).or_default() += 1;
            a.violations += u64::from(*n);
            *a.violations_by_invariant.entry(inv.clone()).or_default() += u64::from(*n);
        }
        a.could_succeed += u64::from(r.could_succeed);
        a.lost_sales += u64::from(r.lost_sales());
        for metric in FailingMetric::ALL {
            if r.fails(metric) {
                let e = a.examples.entry(metric).or_insert(r.seed);
                *e = (*e).min(r.seed);
            }
        }
        a.ceiling_rate = ratio(a.could_succeed, a.started);
        a.success_rate_of_possible = ratio(a.completed_verified, a.could_succeed);
        a.success_rate = ratio(a.completed, a.started);
        a.success_rate_verified = ratio(a.completed_verified, a.started);
        a.compensation_rate = ratio(a.compensated, a.started);
        a.needs_operator_rate = ratio(a.needs_operator, a.started);
        a.latency_max_ms = a.latency_histogram_ms.keys().next_back().copied();
        assert_eq!(
            a.started,
            a.completed + a.compensated + a.needs_operator + a.rejected + a.unanswered,
            "every started checkout is counted once"
        );
    }

    /// Compute the latency percentiles (after the last [`Aggregate::add`]).
    pub fn finish(&mut self) {
        self.latency_p50_ms = percentile(&self.latency_histogram_ms, 50);
        self.latency_p95_ms = percentile(&self.latency_histogram_ms, 95);
        self.latency_p99_ms = percentile(&self.latency_histogram_ms, 99);
    }
}

/// The same seeds run against several coordinators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The scenario's name.
    pub scenario: String,
    /// Where the seed range begins (`FuzzConfig::start`).
    pub start: u64,
    /// Seeds run: consecutive from `start`, or one shard's share of them.
    pub seeds: u64,
    /// One aggregate per coordinator, in the order asked.
    pub coordinators: Vec<Aggregate>,
    /// Wall time of the whole comparison (not part of the table).
    pub elapsed_s: f64,
}

/// Run every seed of `cfg` against each coordinator (each seed's fault plan
/// is the same for all) on `cfg.jobs` threads, and aggregate per
/// coordinator. `progress(done)` is called after each seed.
pub fn compare(
    s: &Scenario,
    cfg: &FuzzConfig,
    coordinators: &[Arc<dyn CoordinatorImpl>],
    progress: impl Fn(u64) + Sync,
) -> Comparison {
    assert!(!coordinators.is_empty(), "nothing to compare");
    let seeds = cfg.seed_list();
    let done = AtomicU64::new(0);
    let aggregates: Mutex<Vec<Aggregate>> = Mutex::new(
        coordinators
            .iter()
            .map(|imp| Aggregate::new(imp.name()))
            .collect(),
    );
    let elapsed_s = for_each_seed(&seeds, cfg.jobs, |seed| {
        let plan = plan_for(s, seed);
        let per: Vec<RunMetrics> = coordinators
            .iter()
            .map(|imp| {
                let c = run_checked(s, seed, &plan, TraceMode::HashOnly, imp.clone());
                RunMetrics::of(&c.outcome, &c.verdict).with_ceiling(s, &c.outcome)
            })
            .collect();
        // Aggregates are order-independent sums: adding as seeds finish
        // gives the same result as adding in seed order.
        let mut all = aggregates.lock().expect("aggregates");
        for (a, r) in all.iter_mut().zip(&per) {
            a.add(r);
        }
        drop(all);
        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
    });
    let mut aggregates = aggregates.into_inner().expect("aggregates");
    for a in &mut aggregates {
        a.finish();
    }
    Comparison {
        scenario: s.name.clone(),
        start: cfg.start,
        seeds: seeds.len() as u64,
        coordinators: aggregates,
        elapsed_s,
    }
}

fn pct(part: u64, whole: u64) -> String {
    format!("{:.2}% ({part})", 100.0 * ratio(part, whole))
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

impl Comparison {
    /// The rows of the table: label, then one value per coordinator.
    pub fn rows(&self) -> Vec<(String, Vec<String>)> {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let mut row = |label: &str, f: &dyn Fn(&Aggregate) -> String| {
            rows.push((label.to_string(), self.coordinators.iter().map(f).collect()));
        };
        row("runs (seeds)", &|a| a.runs.to_string());
        row("runs converged (quiescent)", &|a| {
            a.runs_converged.to_string()
        });
        row("checkouts started", &|a| a.started.to_string());
        row("success rate, as the agent was told", &|a| {
            pct(a.completed, a.started)
        });
        row("success rate, verified in ground truth", &|a| {
            pct(a.completed_verified, a.started)
        });
        row("ceiling: checkouts that could succeed", &|a| {
            pct(a.could_succeed, a.started)
        });
        row("success among those that could, verified", &|a| {
            pct(a.completed_verified, a.could_succeed)
        });
        row("lost sales (could succeed, did not)", &|a| {
            a.lost_sales.to_string()
        });
        row("answers contradicted by ground truth", &|a| {
            a.answers_contradicted.to_string()
        });
        row("compensation rate", &|a| pct(a.compensated, a.started));
        row("NeedsOperator rate", &|a| pct(a.needs_operator, a.started));
        row("unanswered (agent gave up)", &|a| a.unanswered.to_string());
        row("latency p50 (ms, agent's view)", &|a| ms(a.latency_p50_ms));
        row("latency p95 (ms)", &|a| ms(a.latency_p95_ms));
        row("latency p99 (ms)", &|a| ms(a.latency_p99_ms));
        row("latency max (ms)", &|a| ms(a.latency_max_ms));
        row("double charges (checkouts)", &|a| {
            a.double_charges.to_string()
        });
        row("runs with a double charge", &|a| {
            pct(a.runs_with_double_charge, a.runs)
        });
        row("overcharge left at the end (cents)", &|a| {
            a.overcharged_cents.to_string()
        });
        row("stale state after quiescence", &|a| a.stale.to_string());
        for kind in StaleKind::ALL {
            row(&format!("  {}", kind.label()), &|a| {
                a.stale_by_kind.get(&kind).copied().unwrap_or(0).to_string()
            });
        }
        row("runs with stale state", &|a| pct(a.runs_with_stale, a.runs));
        row("orphaned active holds", &|a| a.orphan_holds.to_string());
        row("effects not attributable", &|a| {
            a.unattributed_effects.to_string()
        });
        row("invariant violations", &|a| a.violations.to_string());
        row("runs flagged by the checkers", &|a| {
            pct(a.runs_flagged, a.runs)
        });
        let invariants: BTreeSet<&String> = self
            .coordinators
            .iter()
            .flat_map(|a| a.runs_flagged_by_invariant.keys())
            .collect();
        for inv in invariants {
            row(&format!("  by {inv}"), &|a| {
                pct(
                    a.runs_flagged_by_invariant.get(inv).copied().unwrap_or(0),
                    a.runs,
                )
            });
        }
        rows
    }

    /// The side-by-side table (deterministic: no wall time in it).
    pub fn table(&self) -> String {
        let rows = self.rows();
        let names: Vec<&str> = self
            .coordinators
            .iter()
            .map(|a| a.coordinator.as_str())
            .collect();
        let label_w = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0).max(6);
        let col_w: Vec<usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                rows.iter()
                    .map(|(_, v)| v[i].len())
                    .max()
                    .unwrap_or(0)
                    .max(n.len())
            })
            .collect();
        let mut out = String::new();
        let end = self.start + self.seeds;
        let _ = writeln!(
            out,
            "{}: seeds {}..{end}, the same fault plan per seed for every coordinator",
            self.scenario, self.start
        );
        let _ = write!(out, "| {:<label_w$} |", "metric");
        for (n, w) in names.iter().zip(&col_w) {
            let _ = write!(out, " {n:>w$} |");
        }
        out.push('\n');
        let _ = write!(out, "|{}|", "-".repeat(label_w + 2));
        for w in &col_w {
            let _ = write!(out, "{}:|", "-".repeat(w + 1));
        }
        out.push('\n');
        for (label, values) in &rows {
            let _ = write!(out, "| {label:<label_w$} |");
            for (v, w) in values.iter().zip(&col_w) {
                let _ = write!(out, " {v:>w$} |");
            }
            out.push('\n');
        }
        out
    }

    /// One machine-readable line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).expect("comparisons serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Violation;
    use crate::saga::SagaInput;
    use crate::services::inventory::{Booking, Hold, InventoryGroundTruth};
    use crate::services::salesforce::{SalesforceGroundTruth, SfRecord};
    use crate::services::stripe::Movement;
    use crate::services::stripe::{
        CaptureMethod, LedgerEntry, PaymentIntent, PaymentIntentStatus, StripeGroundTruth,
    };
    use crate::sim::net::NetStats;
    use crate::sim::{FaultPlan, PhaseReport};
    use crate::workload::META_BUSINESS_KEY;
    use crate::workloads::hotel::{
        BOOKING, BOOKING_STATUS, OPPORTUNITY, STAGE, STAGE_WON, STATUS_CANCELLED, STATUS_CONFIRMED,
    };
    use crate::world::agent::AgentRecord;
    use serde_json::{json, Value};

    const PRICE: i64 = 25_000;

    fn input(n: u32) -> SagaInput {
        SagaInput::new(&format!("res-{n}"), &format!("cust-{n}"), PRICE)
            .with_param("room_type", "standard")
            .with_param("first_night", 100)
            .with_param("nights", 2)
    }

    /// A world of `agents` checkouts where nothing happened yet.
    fn outcome(agents: u32) -> RunOutcome {
        RunOutcome {
            scenario: "unit".into(),
            workload: std::sync::Arc::new(crate::workloads::hotel::hotel_checkout(
                crate::workloads::hotel::CaptureMode::Automatic,
            )),
            coordinator: "unit".into(),
            uses_saga_log: false,
            seed: 1,
            plan: FaultPlan::default().into(),
            phases: PhaseReport {
                safety_end_ms: 60_000,
                end_ms: 70_000,
                converged: true,
                crashes: 0,
                pauses: 0,
            },
            stripe: StripeGroundTruth::default(),
            salesforce: SalesforceGroundTruth::default(),
            inventory: InventoryGroundTruth::default(),
            user: Vec::new(),
            log: Vec::new(),
            calls: Default::default(),
            agents: (1..=agents)
                .map(|n| AgentRecord {
                    agent: n,
                    business_key: format!("res-{n}"),
                    ..AgentRecord::default()
                })
                .collect(),
            inputs: (1..=agents).map(input).collect(),
            net: NetStats::default(),
            coordinator_quiescent: true,
        }
    }

    fn answer(out: &mut RunOutcome, n: u32, status: SagaStatus, first_ms: u64, answered_ms: u64) {
        let a = &mut out.agents[n as usize - 1];
        a.first_call_ms = Some(first_ms);
        a.answered_ms = Some(answered_ms);
        a.answer = Some(status);
        a.calls = 1;
        a.finished = true;
    }

    fn intent(out: &mut RunOutcome, n: u32, id: &str, metadata_key: Option<&str>) {
        let pi = PaymentIntent {
            id: id.into(),
            customer: format!("cust-{n}"),
            amount_cents: PRICE,
            currency: "usd".into(),
            capture_method: CaptureMethod::Automatic,
            status: PaymentIntentStatus::Succeeded,
            amount_capturable_cents: 0,
            amount_received_cents: PRICE,
            amount_refunded_cents: 0,
            metadata: metadata_key
                .map(|k| [(META_BUSINESS_KEY.to_string(), k.to_string())].into())
                .unwrap_or_default(),
            idempotency_key: None,
            created_ms: 0,
            authorized_ms: None,
            authorization_expires_ms: None,
            canceled_ms: None,
            cancellation_reason: None,
            declined_attempts: 0,
        };
        out.stripe.payment_intents.insert(id.into(), pi);
    }

    fn ledger(out: &mut RunOutcome, n: u32, pi: &str, movement: Movement, amount_cents: i64) {
        let seq = out.stripe.ledger.len() as u64;
        out.stripe.ledger.push(LedgerEntry {
            seq,
            at_ms: seq * 10,
            customer: format!("cust-{n}"),
            payment_intent: pi.into(),
            refund: None,
            movement,
            amount_cents,
        });
    }

    /// A hold with `client_ref`, confirmed into a booking if `booked`.
    fn hold(out: &mut RunOutcome, client_ref: Option<&str>, status: HoldStatus) {
        let n = out.inventory.holds.len() as u64 + 1;
        let booked = status == HoldStatus::Confirmed;
        out.inventory.holds.insert(
            n,
            Hold {
                id: format!("hold-{n}"),
                room_type: "standard".into(),
                first_night: 100,
                nights: 2,
                client_ref: client_ref.map(str::to_string),
                status,
                created_ms: 0,
                expires_ms: 900_000,
                ended_ms: None,
                booking_id: booked.then(|| format!("bk-{n}")),
            },
        );
        if booked {
            out.inventory.bookings.insert(
                n,
                Booking {
                    id: format!("bk-{n}"),
                    hold_id: format!("hold-{n}"),
                    room_type: "standard".into(),
                    first_night: 100,
                    nights: 2,
                    client_ref: client_ref.map(str::to_string),
                    confirmed_ms: 5,
                    cancelled_ms: None,
                },
            );
        }
    }

    fn crm(out: &mut RunOutcome, ext: Option<&str>, object: &str, field: &str, value: &str) {
        let id = format!("a0B{:012}", out.salesforce.records.len() + 1);
        out.salesforce.records.insert(
            id.clone(),
            SfRecord {
                object: object.into(),
                id,
                external_id: ext.map(str::to_string),
                fields: crm_fields(object, field, value),
                created_ms: 0,
                last_modified_ms: 0,
                is_deleted: false,
            },
        );
    }

    /// `field = value`, plus the constants the hotel declaration fixes on
    /// an opportunity (its close date), as the coordinator writes them.
    fn crm_fields(object: &str, field: &str, value: &str) -> BTreeMap<String, Value> {
        let mut f: BTreeMap<String, Value> = [(field.to_string(), json!(value))].into();
        if object == OPPORTUNITY {
            f.insert("CloseDate".into(), json!("2026-01-01"));
        }
        f
    }

    /// Agent `n`'s checkout, done right: charged, room, CRM confirmed + won.
    fn complete(out: &mut RunOutcome, n: u32) {
        let pi = format!("pi_{n:04}");
        intent(out, n, &pi, Some(&format!("res-{n}")));
        ledger(out, n, &pi, Movement::Charge, PRICE);
        hold(
            out,
            Some(&format!("saga-res-{n}/hold_room")),
            HoldStatus::Confirmed,
        );
        let ext = format!("saga-res-{n}");
        crm(out, Some(&ext), BOOKING, BOOKING_STATUS, STATUS_CONFIRMED);
        crm(out, Some(&ext), OPPORTUNITY, STAGE, STAGE_WON);
    }

    fn stale(m: &RunMetrics) -> Vec<(&str, StaleKind)> {
        m.stale
            .iter()
            .map(|s| (s.business_key.as_str(), s.kind))
            .collect()
    }

    #[test]
    fn clean_run_counts_success_latency_and_nothing_else() {
        let mut out = outcome(2);
        complete(&mut out, 1);
        answer(&mut out, 1, SagaStatus::Completed, 100, 3_100);
        // Agent 2's card declined: nothing anywhere, CRM cancelled.
        crm(
            &mut out,
            Some("saga-res-2"),
            BOOKING,
            BOOKING_STATUS,
            STATUS_CANCELLED,
        );
        hold(&mut out, Some("saga-res-2/hold_room"), HoldStatus::Released);
        answer(
            &mut out,
            2,
            SagaStatus::Compensated {
                reason: "declined".into(),
            },
            200,
            1_200,
        );
        let m = RunMetrics::of(&out, &Verdict::default());
        assert_eq!((m.started, m.completed, m.completed_verified), (2, 1, 1));
        assert_eq!((m.compensated, m.needs_operator, m.unanswered), (1, 0, 0));
        assert_eq!(m.latencies_ms, vec![3_000, 1_000]);
        assert!(m.double_charged.is_empty());
        assert!(m.stale.is_empty(), "{:?}", m.stale);
        assert!(m.contradicted.is_empty());
        assert!(m.orphan_holds.is_empty());
        assert_eq!(m.unattributed_effects, 0);
        assert!(m.violations.is_empty());
    }

    #[test]
    fn double_charge_is_the_running_net_above_the_price_even_if_refunded_later() {
        let mut out = outcome(2);
        complete(&mut out, 1);
        // A retry without a key charged again; the second was refunded later.
        intent(&mut out, 1, "pi_0100", Some("res-1"));
        ledger(&mut out, 1, "pi_0100", Movement::Charge, PRICE);
        ledger(&mut out, 1, "pi_0100", Movement::Refund, PRICE);
        answer(&mut out, 1, SagaStatus::Completed, 0, 10);
        // Agent 2: charged twice, never refunded. Also room + CRM done, so
        // only the money is wrong.
        complete(&mut out, 2);
        intent(&mut out, 2, "pi_0200", Some("res-2"));
        ledger(&mut out, 2, "pi_0200", Movement::Charge, PRICE);
        answer(&mut out, 2, SagaStatus::Completed, 0, 10);
        let m = RunMetrics::of(&out, &Verdict::default());
        assert_eq!(m.double_charged, vec!["res-1", "res-2"]);
        assert_eq!(
            m.overcharged_cents, PRICE,
            "only res-2's second charge is left"
        );
        // res-2 is paid twice: Completed is contradicted; res-1 ends right.
        assert_eq!(m.completed_verified, 1);
        assert_eq!(m.contradicted, vec!["res-2"]);
        assert!(m.stale.is_empty());
        let a = Aggregate::of("t", [&m]);
        assert_eq!((a.double_charges, a.runs_with_double_charge), (2, 1));
    }

    #[test]
    fn authorize_then_capture_is_one_charge_and_a_held_authorization_is_paid() {
        let mut out = outcome(2);
        complete(&mut out, 1);
        out.stripe.ledger.clear();
        ledger(&mut out, 1, "pi_0001", Movement::Authorize, PRICE);
        ledger(&mut out, 1, "pi_0001", Movement::Capture, PRICE);
        answer(&mut out, 1, SagaStatus::Completed, 0, 10);
        // Agent 2: an authorization left held, nothing else.
        intent(&mut out, 2, "pi_0002", Some("res-2"));
        ledger(&mut out, 2, "pi_0002", Movement::Authorize, PRICE);
        let m = RunMetrics::of(&out, &Verdict::default());
        assert!(m.double_charged.is_empty());
        assert_eq!(m.completed_verified, 1);
        assert_eq!(stale(&m), vec![("res-2", StaleKind::PaidNoRoom)]);
        assert_eq!(m.unanswered, 0, "agent 2 never called");
        assert_eq!(m.started, 1);
    }

    #[test]
    fn each_stale_kind_is_found_once_per_key() {
        let mut out = outcome(6);
        // res-1: paid, no room (CRM cancelled, hold released).
        intent(&mut out, 1, "pi_0001", Some("res-1"));
        ledger(&mut out, 1, "pi_0001", Movement::Charge, PRICE);
        crm(
            &mut out,
            Some("saga-res-1"),
            BOOKING,
            BOOKING_STATUS,
            STATUS_CANCELLED,
        );
        answer(
            &mut out,
            1,
            SagaStatus::Compensated { reason: "x".into() },
            0,
            10,
        );
        // res-2: room booked, refunded, CRM won and confirmed.
        complete(&mut out, 2);
        ledger(&mut out, 2, "pi_0002", Movement::Refund, PRICE);
        // res-3: everything done, but two rooms.
        complete(&mut out, 3);
        hold(&mut out, Some("saga-res-3#77.1"), HoldStatus::Confirmed);
        // res-4: paid, room, CRM booking still pending, opportunity open.
        intent(&mut out, 4, "pi_0004", Some("res-4"));
        ledger(&mut out, 4, "pi_0004", Movement::Charge, PRICE);
        hold(&mut out, Some("saga-res-4#1.0"), HoldStatus::Confirmed);
        crm(
            &mut out,
            Some("saga-res-4"),
            BOOKING,
            BOOKING_STATUS,
            "Pending",
        );
        crm(
            &mut out,
            Some("saga-res-4"),
            OPPORTUNITY,
            STAGE,
            "Prospecting",
        );
        // res-5: CRM won, nothing else.
        crm(&mut out, Some("saga-res-5"), OPPORTUNITY, STAGE, STAGE_WON);
        // res-6: a pending CRM booking, nothing else; an active hold.
        crm(
            &mut out,
            Some("saga-res-6"),
            BOOKING,
            BOOKING_STATUS,
            "Pending",
        );
        hold(&mut out, Some("saga-res-6#3.0"), HoldStatus::Active);
        let m = RunMetrics::of(&out, &Verdict::default());
        assert_eq!(
            stale(&m),
            vec![
                ("res-1", StaleKind::PaidNoRoom),
                ("res-2", StaleKind::RoomNotPaid),
                ("res-3", StaleKind::RoomBookedTwice),
                ("res-4", StaleKind::RoomCrmNotConfirmed),
                ("res-5", StaleKind::CrmConfirmedNoRoom),
                ("res-6", StaleKind::CrmOpenNoRoom),
            ]
        );
        assert_eq!(m.contradicted, vec!["res-1"], "compensated, but paid");
        assert_eq!(m.orphan_holds, vec!["hold-5"]);
        let a = Aggregate::of("t", [&m]);
        assert_eq!(a.stale, 6);
        assert!(a.stale_by_kind.values().all(|n| *n == 1));
        assert_eq!(a.runs_with_stale, 1);
    }

    #[test]
    fn unlabelled_effects_are_counted_not_attributed() {
        let mut out = outcome(1);
        intent(&mut out, 9, "pi_0009", None); // no metadata: nobody's
                                              // A customer of the run is not a label: a charge of cust-1 without
                                              // metadata is not res-1's (customers may share many orders).
        intent(&mut out, 1, "pi_0010", None);
        hold(&mut out, None, HoldStatus::Confirmed);
        crm(&mut out, None, BOOKING, BOOKING_STATUS, STATUS_CONFIRMED);
        crm(
            &mut out,
            Some("saga-someone-else"),
            OPPORTUNITY,
            STAGE,
            STAGE_WON,
        );
        let m = RunMetrics::of(&out, &Verdict::default());
        assert_eq!(m.unattributed_effects, 5);
        assert!(m.stale.is_empty());
    }

    #[test]
    fn references_name_their_business_key() {
        let keys: BTreeSet<&str> = ["res-1", "res-12"].into();
        assert_eq!(owner_of("saga-res-1", &keys), Some("res-1"));
        assert_eq!(owner_of("saga-res-1/hold_room", &keys), Some("res-1"));
        assert_eq!(owner_of("saga-res-12#5.1", &keys), Some("res-12"));
        assert_eq!(owner_of("res-12", &keys), Some("res-12"));
        assert_eq!(owner_of("saga-res-2", &keys), None);
        assert_eq!(owner_of("saga-res-1x", &keys), None);
    }

    #[test]
    fn answers_rates_percentiles_and_violations_aggregate() {
        let mut runs = Vec::new();
        for i in 0..10u64 {
            let mut out = outcome(2);
            out.seed = i;
            complete(&mut out, 1);
            answer(&mut out, 1, SagaStatus::Completed, 0, 100 * (i + 1));
            let a2 = &mut out.agents[1];
            a2.first_call_ms = Some(5);
            a2.gave_up = true;
            a2.finished = true;
            let mut verdict = Verdict::default();
            if i % 2 == 0 {
                // Two violations in one run: one flagged run.
                for at_ms in [0, 1] {
                    verdict.safety.push(Violation {
                        invariant: "no-double-charge".into(),
                        business_key: "res-1".into(),
                        at_ms,
                        facts: String::new(),
                    });
                }
            }
            runs.push(RunMetrics::of(&out, &verdict));
        }
        let a = Aggregate::of("t", &runs);
        assert_eq!(
            (a.runs, a.started, a.completed, a.unanswered),
            (10, 20, 10, 10)
        );
        assert_eq!(a.success_rate, 0.5);
        assert_eq!(a.success_rate_verified, 0.5);
        assert_eq!(a.latency_p50_ms, Some(500));
        assert_eq!(a.latency_p95_ms, Some(1_000));
        assert_eq!(a.latency_p99_ms, Some(1_000));
        assert_eq!(a.latency_max_ms, Some(1_000));
        assert_eq!((a.runs_flagged, a.violations), (5, 10));
        assert_eq!(a.violations_by_invariant["no-double-charge"], 10);
        assert_eq!(a.runs_flagged_by_invariant["no-double-charge"], 5);
        // Order does not matter.
        let mut rev = runs.clone();
        rev.reverse();
        assert_eq!(Aggregate::of("t", &rev), a);
        // Serialisable (latencies are not carried).
        let v: serde_json::Value = serde_json::to_value(&a).unwrap();
        assert_eq!(v["stale_by_kind"]["paid-no-room"], 0);
        assert!(v.get("latency_histogram_ms").is_none());
    }

    #[test]
    fn the_ceiling_leaves_out_declined_cards_and_sold_out_rooms() {
        let s = Scenario::load("hotel-checkout", &crate::scenario::default_dir()).unwrap();
        assert_eq!(s.workload.agents, 4);
        let mut out = outcome(4);
        for n in 1..=4 {
            answer(&mut out, n, SagaStatus::Completed, 0, 10);
        }
        // Agent 4's card declines and three rooms are for sale: 3 of 4.
        assert_eq!(could_succeed(&s, &out.agents), 3);
        complete(&mut out, 1);
        complete(&mut out, 2);
        let m = RunMetrics::of(&out, &Verdict::default()).with_ceiling(&s, &out);
        assert_eq!((m.could_succeed, m.completed_verified), (3, 2));
        assert_eq!(m.lost_sales(), 1);
        assert!(m.fails(FailingMetric::LostSale));
        let a = Aggregate::of("t", [&m]);
        assert_eq!(a.ceiling_rate, 0.75);
        assert_eq!(a.success_rate_of_possible, 2.0 / 3.0);
        assert_eq!(a.examples.get(&FailingMetric::LostSale), Some(&1));
        assert_eq!(a.examples.get(&FailingMetric::DoubleCharge), None);
        // An agent that never called is not a checkout that could succeed.
        out.agents[0].first_call_ms = None;
        assert_eq!(could_succeed(&s, &out.agents), 2);
        // No rooms at all: nothing could succeed.
        let mut sold_out = s.clone();
        sold_out
            .inventory
            .out_of_order
            .insert(s.workload.room_type.clone());
        assert_eq!(could_succeed(&sold_out, &out.agents), 0);
    }

    #[test]
    fn examples_keep_the_lowest_seed_whatever_the_order() {
        let runs: Vec<RunMetrics> = [9u64, 4, 7]
            .iter()
            .map(|seed| RunMetrics {
                seed: *seed,
                double_charged: vec!["res-1".into()],
                unanswered: u32::from(*seed == 7),
                completed: u32::from(*seed != 7),
                started: 1,
                ..RunMetrics::default()
            })
            .collect();
        let a = Aggregate::of("t", &runs);
        assert_eq!(a.examples[&FailingMetric::DoubleCharge], 4);
        assert_eq!(a.examples[&FailingMetric::Unanswered], 7);
        assert!(!a.examples.contains_key(&FailingMetric::Stale));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: BTreeMap<u64, u64> = (1..=100).map(|x| (x, 1)).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&v, 100), Some(100));
        assert_eq!(percentile(&[(7, 1)].into(), 1), Some(7));
        assert_eq!(percentile(&BTreeMap::new(), 50), None);
        // Counts weigh: 90 fast, 10 slow.
        let w: BTreeMap<u64, u64> = [(10, 90), (1_000, 10)].into();
        assert_eq!(percentile(&w, 90), Some(10));
        assert_eq!(percentile(&w, 91), Some(1_000));
    }
}
