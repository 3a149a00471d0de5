//! Faults are data: the [`FaultPlan`] of one run, and the swarm generator.
//!
//! A plan lists fault events: per-call delivery decisions addressed by
//! `(caller, callee, call index)`, node crashes and pauses, partition and
//! brown-out windows, and clock skews. A run is a pure function of
//! `(scenario, seed, plan)`: the seed fixes latencies and scheduling, the
//! plan fixes every fault. Plans come from two places:
//! - [`FaultPlan::swarm`]: from a seed and a [`SwarmProfile`] — each seed
//!   turns a random subset of fault kinds on, each at a random intensity
//!   (swarm testing: fewer kinds at once find more bugs than all at once);
//! - explicitly: a regression file, a proptest strategy, a shrink step.
//!
//! All times are simulated milliseconds since the start of the run. Faults
//! act only in the safety phase; the world turns them off for the liveness
//! phase.
//!
//! Not here: *applying* faults (`net.rs` for calls, `world.rs` for nodes).

use std::collections::BTreeSet;
use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::clock::{ClockJump, ClockSkew};
use super::rng::rng_for;
use crate::services::Injected;

/// The most fault events one plan may hold (input limit for plan files).
pub const MAX_PLAN_FAULTS: usize = 10_000;
/// Longest time any plan or profile field may name: one simulated day (the
/// longest run). With every time below it, sums of a few of them cannot
/// overflow a `u64`.
pub const MAX_TIME_MS: u64 = 86_400_000;
/// Largest clock drift, in parts per million (10 %: a clock that gains or
/// loses more is broken, not skewed; and `1_000_000 + drift` stays positive).
pub const MAX_DRIFT_PPM: i64 = 100_000;
/// Most crashes, pauses, partitions, brown-outs or skewed clocks a swarm
/// profile may ask for per run.
pub const MAX_FAULTS_PER_KIND: u32 = 100;
/// Most calls per link a swarm profile may draw faults for (keeps a swarm
/// plan's size and generation time bounded: at most about this many call
/// faults per link).
pub const MAX_CALLS_PER_LINK: u32 = 1_000;

/// `Err("{field} = {value} is outside {lo}..={hi}")` unless `lo <= value <= hi`.
pub fn in_range<T: PartialOrd + fmt::Display>(
    field: &str,
    value: T,
    lo: T,
    hi: T,
) -> Result<(), String> {
    if lo <= value && value <= hi {
        Ok(())
    } else {
        Err(format!("{field} = {value} is outside {lo}..={hi}"))
    }
}

/// What happens to one request/response exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CallFaultKind {
    /// The request is lost: not applied; the caller times out.
    DropRequest,
    /// The callee applies the request, the reply is lost: the caller times
    /// out although the effect happened.
    DropReply,
    /// The request is delivered twice, the copy `gap_ms` after the first.
    Duplicate {
        /// Extra latency of the copy over the first, in ms.
        gap_ms: u64,
    },
    /// The request arrives `extra_ms` after the caller's timeout: the caller
    /// has given up when it is applied ("hanging" request).
    DelayPastTimeout {
        /// How long after the caller's timeout the request lands, in ms.
        extra_ms: u64,
    },
    /// Extra latency on the request (reordering; may or may not exceed the
    /// caller's timeout).
    Delay {
        /// Added to the request leg's drawn latency, in ms.
        extra_ms: u64,
    },
    /// The callee fails this request (brown-out), with the given semantics.
    Inject {
        /// Whether the failure is a throttle, or a 5xx before or after
        /// applying the request.
        fault: Injected,
    },
}

/// A fault on one call, addressed by the caller's per-link call counter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallFault {
    /// The calling node.
    pub from: String,
    /// The called node.
    pub to: String,
    /// 0-based index of the call on the link `from -> to`.
    pub index: u32,
    /// What happens to that call (flattened: `"kind"` sits beside `index`
    /// in JSON).
    #[serde(flatten)]
    pub fault: CallFaultKind,
}

/// Crash a node at `at_ms`; it restarts after `down_ms` (or at the start of
/// the liveness phase when `down_ms` is absent).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Crash {
    /// The node to crash.
    pub node: String,
    /// When, in simulated ms since the start of the run.
    pub at_ms: u64,
    /// How long it stays down, in ms; `None`: until the liveness phase
    /// restarts it.
    #[serde(default)]
    pub down_ms: Option<u64>,
}

/// Stall every task of a node (GC pause, VM migration) for `for_ms`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pause {
    /// The node to stall (it stays up: calls to it are not refused).
    pub node: String,
    /// When the pause begins, in simulated ms since the start of the run.
    pub at_ms: u64,
    /// How long it lasts, in ms (cut short by the liveness phase).
    pub for_ms: u64,
}

/// Cut the link between `a` and `b`, both ways, during `[from_ms, until_ms)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Partition {
    /// One end of the link.
    pub a: String,
    /// The other end (the order of `a` and `b` does not matter).
    pub b: String,
    /// Start of the window, in simulated ms (inclusive).
    pub from_ms: u64,
    /// End of the window, in simulated ms (exclusive; the liveness phase
    /// ends it early).
    pub until_ms: u64,
}

/// A service fails a share of its requests during `[from_ms, until_ms)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Brownout {
    /// The service node whose requests fail.
    pub service: String,
    /// Start of the window, in simulated ms (inclusive), judged when a
    /// request arrives.
    pub from_ms: u64,
    /// End of the window, in simulated ms (exclusive).
    pub until_ms: u64,
    /// How the failed requests fail.
    pub fault: Injected,
    /// Share of requests failed, in thousandths (1000 = all).
    pub permille: u16,
}

/// A service's search index lags `lag_ms` behind its writes for the whole
/// run (overrides the scenario's `stripe.search_index_delay_ms`). Stripe
/// documents search as "not for read-after-write": "data is usually
/// searchable within 1 minute, but may be delayed during outages" (Search
/// API docs); the swarm draws both kinds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SearchLag {
    /// The service whose search lags (the model that has one: `stripe`).
    pub service: String,
    /// How far behind, in ms.
    pub lag_ms: u64,
}

/// Something the world does at `at_ms` that no request of the run caused:
/// an operator at the PMS's console, the card network at Stripe. Like the
/// other faults it happens only in the safety phase; unlike a brown-out,
/// what it changes stays changed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EnvEvent {
    /// When, in simulated ms since the start of the run.
    pub at_ms: u64,
    /// What happens (flattened: `"kind"` sits beside `at_ms` in JSON).
    #[serde(flatten)]
    pub what: EnvKind,
}

/// What an environment event does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EnvKind {
    /// A PMS operator sets a room type's capacity and status: a capacity
    /// cut, a room type out of order, or back in service. The PMS refuses
    /// a cut below its confirmed bookings (409), as it would the console.
    RoomType {
        /// The PMS node.
        service: String,
        /// The room type.
        room_type: String,
        /// Rooms per night from now on.
        capacity: u32,
        /// Out of order: a confirm of a hold on it fails definitively.
        out_of_order: bool,
    },
    /// Every uncaptured card authorization at Stripe ends now, canceled
    /// with `cancellation_reason = automatic`: the issuer reversed it, or
    /// its network's window was shorter than Stripe's usual seven days
    /// ("the authorization window can be shorter for some card brands and
    /// payment method types", Stripe: place a hold on a payment method).
    AuthorizationsExpire {
        /// The Stripe node.
        service: String,
    },
    /// An admin revokes every Salesforce session (a password reset, a
    /// connected app's tokens revoked, Setup → Session Management): the
    /// next API call with an old token gets 401 `INVALID_SESSION_ID`.
    SessionsRevoked {
        /// The Salesforce node.
        service: String,
    },
    /// An admin (or a data-cleanup job) deletes a live Salesforce record:
    /// the `nth` live record of the org at that instant that no write in
    /// flight has locked, counted round, in id order
    /// (`Salesforce::delete_by_admin`). It goes to the Recycle Bin: a get
    /// or update of it answers 404 `ENTITY_IS_DELETED`, and an upsert or
    /// query by external id no longer finds it.
    RecordDeleted {
        /// The Salesforce node.
        service: String,
        /// Which live record, counted round over those at that instant.
        nth: u32,
    },
    /// A guest cancels a confirmed booking at the front desk: the `nth`
    /// booking still standing at that instant, counted round, in booking
    /// order (`Inventory::cancel_at_front_desk`). Its nights are free
    /// again.
    BookingCancelled {
        /// The PMS node.
        service: String,
        /// Which standing booking, counted round over those at that
        /// instant.
        nth: u32,
    },
    /// An admin restores a record from the Salesforce Recycle Bin: the
    /// `nth` deleted record at that instant, counted round, in id order
    /// (`Salesforce::restore_by_admin`, an `undelete()`; it fails, and
    /// nothing happens, when a live record holds its unique external id).
    /// Upserts and queries by external id find it again.
    RecordRestored {
        /// The Salesforce node.
        service: String,
        /// Which deleted record, counted round over those at that instant.
        nth: u32,
    },
}

impl EnvKind {
    /// The service node the event acts on.
    pub fn service(&self) -> &str {
        match self {
            EnvKind::RoomType { service, .. }
            | EnvKind::AuthorizationsExpire { service }
            | EnvKind::SessionsRevoked { service }
            | EnvKind::RecordDeleted { service, .. }
            | EnvKind::BookingCancelled { service, .. }
            | EnvKind::RecordRestored { service, .. } => service,
        }
    }
}

/// An admin's deletion or a guest's cancellation picks the `nth` record or
/// booking there is, `nth` drawn below this (then counted round): a run
/// has a handful of sagas, each with a booking and two CRM records.
pub const ENV_NTH_MAX: u32 = 16;

/// The share of seeds whose swarm plan sets a search lag at all (the rest
/// keep the scenario's), and of those, the share that draws an incident.
const SEARCH_LAG_SHARE: f64 = 0.5;
const SEARCH_INCIDENT_SHARE: f64 = 0.1;
/// A normal lag: under a minute (Stripe: "usually searchable within 1
/// minute").
const SEARCH_LAG_NORMAL_MAX_MS: u64 = 60_000;
/// An incident: ten minutes to four hours ("may be delayed during
/// outages"; SERVICES.md: up to an hour seen, four allowed for margin).
const SEARCH_LAG_INCIDENT_MS: std::ops::RangeInclusive<u64> = SEARCH_INCIDENT_MIN_MS..=14_400_000;
/// The shortest search lag that counts as an incident (ten minutes).
pub const SEARCH_INCIDENT_MIN_MS: u64 = 600_000;

/// Every fault of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Per-call delivery faults, by `(from, to, index)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallFault>,
    /// Node crashes (and their restarts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crashes: Vec<Crash>,
    /// Node stalls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Pause>,
    /// Windows during which a link loses traffic both ways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<Partition>,
    /// Windows during which a service fails a share of its requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brownouts: Vec<Brownout>,
    /// Skewed node clocks, at most one per node in a swarm plan (unlike the
    /// other faults, these last the whole run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clocks: Vec<ClockSkew>,
    /// Search indexes lagging (the largest lag per service applies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_lags: Vec<SearchLag>,
    /// Environment events: operators and card networks acting on the
    /// services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EnvEvent>,
    /// The seed's draw of the workload (agents, rooms, declines, capture,
    /// price, hold TTL, attempts) within the scenario's `[swarm]`; `None`:
    /// the scenario's `[workload]` as written. Not a fault: shrinking keeps
    /// it, and it does not count in [`FaultPlan::len`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::scenario::WorkloadDraw>,
}

/// The nodes and links a plan may name.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// Every node, by name.
    pub nodes: Vec<String>,
    /// Caller -> callee pairs that carry requests.
    pub links: Vec<(String, String)>,
    /// Nodes the swarm may crash or pause.
    pub crashable: Vec<String>,
    /// Nodes that are services (brown-out targets).
    pub services: Vec<String>,
}

/// Why a plan is not acceptable for a topology.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// More than [`MAX_PLAN_FAULTS`] fault events (the count is given).
    #[error("plan has {0} faults, more than the limit of {MAX_PLAN_FAULTS}")]
    TooLarge(usize),
    /// A fault names a node the topology does not have.
    #[error("{what} names unknown node `{node}` (known: {known})")]
    UnknownNode {
        /// The kind of fault (`"crash"`, `"call fault"`, …).
        what: &'static str,
        /// The unknown name.
        node: String,
        /// The topology's nodes, comma-separated.
        known: String,
    },
    /// A partition or brown-out window that ends before it starts.
    #[error("{what}: window ends ({until_ms} ms) before it starts ({from_ms} ms)")]
    EmptyWindow {
        /// `"partition"` or `"brownout"`.
        what: &'static str,
        /// The window's start, in ms.
        from_ms: u64,
        /// The window's end, in ms (below `from_ms`).
        until_ms: u64,
    },
    /// A brown-out's `permille` above 1000 (the value is given).
    #[error("brownout permille {0} is above 1000")]
    Permille(u16),
    /// A time, drift or rate outside its documented limit.
    #[error("{0}")]
    OutOfRange(String),
}

impl FaultPlan {
    /// Number of fault events (what shrinking minimises).
    pub fn len(&self) -> usize {
        self.calls.len()
            + self.crashes.len()
            + self.pauses.len()
            + self.partitions.len()
            + self.brownouts.len()
            + self.clocks.len()
            + self.search_lags.len()
            + self.events.len()
    }

    /// The search lag this plan sets for `service`, if any (the largest).
    pub fn search_lag_ms(&self, service: &str) -> Option<u64> {
        self.search_lags
            .iter()
            .filter(|l| l.service == service)
            .map(|l| l.lag_ms)
            .max()
    }

    /// No fault at all: the run sees only latency and scheduling.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plan without its `i`-th fault (in the order of [`FaultPlan::len`]'s
    /// fields). Used by shrinking.
    pub fn without(&self, mut i: usize) -> FaultPlan {
        let mut p = self.clone();
        macro_rules! take {
            ($field:ident) => {
                if i < p.$field.len() {
                    p.$field.remove(i);
                    return p;
                }
                i -= p.$field.len();
            };
        }
        take!(calls);
        take!(crashes);
        take!(pauses);
        take!(partitions);
        take!(brownouts);
        take!(clocks);
        take!(search_lags);
        take!(events);
        let _ = i;
        p
    }

    /// Sort every list, so equal plans serialise equally.
    pub fn normalise(&mut self) {
        self.calls.sort();
        self.crashes.sort();
        self.pauses.sort();
        self.partitions.sort();
        self.brownouts.sort();
        self.clocks.sort();
        self.search_lags.sort();
        self.events.sort();
    }

    /// Check the plan against a topology and the input limits.
    pub fn validate(&self, topo: &Topology) -> Result<(), PlanError> {
        if self.len() > MAX_PLAN_FAULTS {
            return Err(PlanError::TooLarge(self.len()));
        }
        let known: BTreeSet<&str> = topo.nodes.iter().map(String::as_str).collect();
        let check = |what: &'static str, node: &str| {
            if known.contains(node) {
                Ok(())
            } else {
                Err(PlanError::UnknownNode {
                    what,
                    node: node.to_string(),
                    known: topo.nodes.join(", "),
                })
            }
        };
        let window = |what: &'static str, from_ms: u64, until_ms: u64| {
            if until_ms < from_ms {
                Err(PlanError::EmptyWindow {
                    what,
                    from_ms,
                    until_ms,
                })
            } else {
                Ok(())
            }
        };
        for c in &self.calls {
            check("call fault", &c.from)?;
            check("call fault", &c.to)?;
        }
        for c in &self.crashes {
            check("crash", &c.node)?;
        }
        for p in &self.pauses {
            check("pause", &p.node)?;
        }
        for p in &self.partitions {
            check("partition", &p.a)?;
            check("partition", &p.b)?;
            window("partition", p.from_ms, p.until_ms)?;
        }
        for b in &self.brownouts {
            check("brownout", &b.service)?;
            window("brownout", b.from_ms, b.until_ms)?;
            if b.permille > 1000 {
                return Err(PlanError::Permille(b.permille));
            }
        }
        for c in &self.clocks {
            check("clock", &c.node)?;
        }
        for l in &self.search_lags {
            check("search lag", &l.service)?;
        }
        for e in &self.events {
            check("environment event", e.what.service())?;
        }
        self.check_limits().map_err(PlanError::OutOfRange)
    }

    /// Every time of the plan within `0..=MAX_TIME_MS`, every clock within
    /// its limits; the message names the field and the allowed range.
    pub fn check_limits(&self) -> Result<(), String> {
        let ms = |field: String, v: u64| in_range(&field, v, 0, MAX_TIME_MS);
        for (i, c) in self.calls.iter().enumerate() {
            match c.fault {
                CallFaultKind::Duplicate { gap_ms } => ms(format!("calls[{i}].gap_ms"), gap_ms)?,
                CallFaultKind::DelayPastTimeout { extra_ms }
                | CallFaultKind::Delay { extra_ms } => {
                    ms(format!("calls[{i}].extra_ms"), extra_ms)?
                }
                _ => {}
            }
        }
        for (i, c) in self.crashes.iter().enumerate() {
            ms(format!("crashes[{i}].at_ms"), c.at_ms)?;
            if let Some(d) = c.down_ms {
                ms(format!("crashes[{i}].down_ms"), d)?;
            }
        }
        for (i, p) in self.pauses.iter().enumerate() {
            ms(format!("pauses[{i}].at_ms"), p.at_ms)?;
            ms(format!("pauses[{i}].for_ms"), p.for_ms)?;
        }
        for (i, p) in self.partitions.iter().enumerate() {
            ms(format!("partitions[{i}].from_ms"), p.from_ms)?;
            ms(format!("partitions[{i}].until_ms"), p.until_ms)?;
        }
        for (i, b) in self.brownouts.iter().enumerate() {
            ms(format!("brownouts[{i}].from_ms"), b.from_ms)?;
            ms(format!("brownouts[{i}].until_ms"), b.until_ms)?;
        }
        for (i, l) in self.search_lags.iter().enumerate() {
            ms(format!("search_lags[{i}].lag_ms"), l.lag_ms)?;
        }
        for (i, e) in self.events.iter().enumerate() {
            ms(format!("events[{i}].at_ms"), e.at_ms)?;
            if let EnvKind::RoomType { capacity, .. } = e.what {
                in_range(
                    &format!("events[{i}].capacity"),
                    capacity,
                    0,
                    crate::scenario::MAX_ROOMS,
                )?;
            }
        }
        let max_off = MAX_TIME_MS as i64;
        for (i, c) in self.clocks.iter().enumerate() {
            if let Some(j) = c.jump {
                ms(format!("clocks[{i}].jump.at_ms"), j.at_ms)?;
                ms(format!("clocks[{i}].jump.by_ms"), j.by_ms)?;
            }
            in_range(
                &format!("clocks[{i}].offset_ms"),
                c.offset_ms,
                -max_off,
                max_off,
            )?;
            in_range(
                &format!("clocks[{i}].drift_ppm"),
                c.drift_ppm,
                -MAX_DRIFT_PPM,
                MAX_DRIFT_PPM,
            )?;
        }
        Ok(())
    }

    /// Generate the swarm plan of one seed.
    pub fn swarm(seed: u64, profile: &SwarmProfile, topo: &Topology, safety_ms: u64) -> FaultPlan {
        FaultPlan::generate(seed, profile, topo, safety_ms, true)
    }

    /// The *uniform* plan of one seed: every fault kind on, each at half its
    /// maximum intensity — the baseline swarm testing is measured against.
    pub fn uniform(
        seed: u64,
        profile: &SwarmProfile,
        topo: &Topology,
        safety_ms: u64,
    ) -> FaultPlan {
        FaultPlan::generate(seed, profile, topo, safety_ms, false)
    }

    fn generate(
        seed: u64,
        profile: &SwarmProfile,
        topo: &Topology,
        safety_ms: u64,
        swarm: bool,
    ) -> FaultPlan {
        let mut rng = rng_for(seed, "swarm");
        let mut plan = FaultPlan::default();
        let safety_ms = safety_ms.max(1);
        // Swarm: each kind is on with probability 1/2, at a random intensity
        // up to the profile's maximum. Uniform: all on, at half the maximum.
        let mut on = |max: f64| -> f64 {
            let enabled = rng.gen_bool(0.5);
            let scale: f64 = rng.gen();
            if !swarm {
                max / 2.0
            } else if enabled && max > 0.0 {
                max * scale
            } else {
                0.0
            }
        };
        let rates = [
            on(profile.drop_request),
            on(profile.drop_reply),
            on(profile.duplicate),
            on(profile.delay_past_timeout),
            on(profile.delay),
            on(profile.inject),
        ];
        let counts = [
            on(f64::from(profile.crashes)),
            on(f64::from(profile.pauses)),
            on(f64::from(profile.partitions)),
            on(f64::from(profile.brownouts)),
            on(f64::from(profile.clock_skews)),
        ];
        let total: f64 = rates.iter().sum::<f64>().min(0.95);
        let max_delay = profile.max_delay_ms.max(1);
        // Per-link runs of call faults, each in index order. They are
        // concatenated in (from, to) order below, which is the plan's sort
        // order, so `normalise` finds them sorted (no string comparisons to
        // speak of; this sort was 3 % of fuzzing time).
        let mut per_link: Vec<Vec<CallFault>> = vec![Vec::new(); topo.links.len()];
        if total > 0.0 {
            for ((from, to), out) in topo.links.iter().zip(per_link.iter_mut()) {
                // Geometric skipping: draw the gap to the next faulty call.
                let mut idx: u64 = 0;
                loop {
                    let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
                    let gap = (u.ln() / (1.0 - total).ln()).floor() as u64;
                    idx += gap;
                    if idx >= u64::from(profile.calls_per_link) {
                        break;
                    }
                    let mut pick: f64 = rng.gen_range(0.0..rates.iter().sum::<f64>());
                    let mut kind = 0;
                    for (k, r) in rates.iter().enumerate() {
                        if pick < *r {
                            kind = k;
                            break;
                        }
                        pick -= r;
                    }
                    let fault = match kind {
                        0 => CallFaultKind::DropRequest,
                        1 => CallFaultKind::DropReply,
                        2 => CallFaultKind::Duplicate {
                            gap_ms: rng.gen_range(0..=max_delay),
                        },
                        3 => CallFaultKind::DelayPastTimeout {
                            extra_ms: rng.gen_range(0..=max_delay),
                        },
                        4 => CallFaultKind::Delay {
                            extra_ms: rng.gen_range(1..=max_delay),
                        },
                        _ => CallFaultKind::Inject {
                            fault: injected_kind(&mut rng),
                        },
                    };
                    out.push(CallFault {
                        from: from.clone(),
                        to: to.clone(),
                        index: idx as u32,
                        fault,
                    });
                    idx += 1;
                }
            }
        }
        let mut order: Vec<usize> = (0..topo.links.len()).collect();
        order.sort_by(|&a, &b| topo.links[a].cmp(&topo.links[b]));
        plan.calls.reserve(per_link.iter().map(Vec::len).sum());
        for i in order {
            plan.calls.append(&mut per_link[i]);
        }
        let n = |c: f64, rng: &mut super::rng::SimRng| -> usize {
            if c <= 0.0 {
                0
            } else {
                rng.gen_range(1..=(c.ceil() as usize))
            }
        };
        if !topo.crashable.is_empty() {
            for _ in 0..n(counts[0], &mut rng) {
                let node = topo.crashable[rng.gen_range(0..topo.crashable.len())].clone();
                let at_ms = rng.gen_range(0..safety_ms);
                let down_ms = if rng.gen_bool(0.9) {
                    Some(rng.gen_range(1..=profile.max_down_ms.max(1)))
                } else {
                    None
                };
                plan.crashes.push(Crash {
                    node,
                    at_ms,
                    down_ms,
                });
            }
            for _ in 0..n(counts[1], &mut rng) {
                let node = topo.crashable[rng.gen_range(0..topo.crashable.len())].clone();
                plan.pauses.push(Pause {
                    node,
                    at_ms: rng.gen_range(0..safety_ms),
                    for_ms: rng.gen_range(1..=profile.max_pause_ms.max(1)),
                });
            }
        }
        if !topo.links.is_empty() {
            for _ in 0..n(counts[2], &mut rng) {
                let (a, b) = topo.links[rng.gen_range(0..topo.links.len())].clone();
                let from_ms = rng.gen_range(0..safety_ms);
                let until_ms =
                    from_ms.saturating_add(rng.gen_range(1..=profile.max_window_ms.max(1)));
                plan.partitions.push(Partition {
                    a,
                    b,
                    from_ms,
                    until_ms,
                });
            }
        }
        if !topo.services.is_empty() {
            for _ in 0..n(counts[3], &mut rng) {
                let service = topo.services[rng.gen_range(0..topo.services.len())].clone();
                let from_ms = rng.gen_range(0..safety_ms);
                let until_ms =
                    from_ms.saturating_add(rng.gen_range(1..=profile.max_window_ms.max(1)));
                let fault = injected_kind(&mut rng);
                plan.brownouts.push(Brownout {
                    service,
                    from_ms,
                    until_ms,
                    fault,
                    permille: rng.gen_range(100..=1000),
                });
            }
        }
        if !topo.nodes.is_empty() {
            for _ in 0..n(counts[4], &mut rng) {
                let node = topo.nodes[rng.gen_range(0..topo.nodes.len())].clone();
                let max_off = profile.max_clock_offset_ms.max(1);
                let max_drift = profile.max_drift_ppm.max(1);
                plan.clocks.push(ClockSkew {
                    jump: None,
                    node,
                    offset_ms: rng.gen_range(-max_off..=max_off),
                    drift_ppm: rng.gen_range(-max_drift..=max_drift),
                });
            }
            // One skew per node: the last one drawn wins.
            plan.clocks.reverse();
            let mut seen = BTreeSet::new();
            plan.clocks.retain(|c| seen.insert(c.node.clone()));
        }
        if let Some(service) = topo.services.iter().find(|s| *s == "stripe") {
            if rng.gen_bool(SEARCH_LAG_SHARE) {
                let lag_ms = if rng.gen_bool(SEARCH_INCIDENT_SHARE) {
                    rng.gen_range(SEARCH_LAG_INCIDENT_MS)
                } else {
                    rng.gen_range(0..=SEARCH_LAG_NORMAL_MAX_MS)
                };
                plan.search_lags.push(SearchLag {
                    service: service.clone(),
                    lag_ms,
                });
            }
        }
        plan.normalise();
        debug_assert!(plan.validate(topo).is_ok());
        plan
    }
}

impl FaultPlan {
    /// Add seed `seed`'s long pauses to this plan (its own random stream,
    /// like the clock jumps): on for a quarter of the seeds, 1 to
    /// `long_pauses` of them, each of one of `nodes` at a uniform time of
    /// the safety phase, for longer than `max_pause_ms` and at most
    /// `max_long_pause_ms`. Draw them only on nodes whose stall cannot hold
    /// a request past the late window (not a service: a request it stalls
    /// lands after any window a coordinator can wait).
    pub fn draw_long_pauses(
        &mut self,
        seed: u64,
        profile: &SwarmProfile,
        safety_ms: u64,
        nodes: &[&str],
    ) {
        let mut rng = rng_for(seed, "long-pauses");
        let shortest = profile.max_pause_ms.saturating_add(1);
        if nodes.is_empty()
            || profile.long_pauses == 0
            || profile.max_long_pause_ms < shortest
            || !rng.gen_bool(0.25)
        {
            return;
        }
        let safety_ms = safety_ms.max(1);
        for _ in 0..rng.gen_range(1..=profile.long_pauses) {
            self.pauses.push(Pause {
                node: nodes[rng.gen_range(0..nodes.len())].to_string(),
                at_ms: rng.gen_range(0..safety_ms),
                for_ms: rng.gen_range(shortest..=profile.max_long_pause_ms),
            });
        }
        self.pauses.sort();
    }

    /// Add seed `seed`'s forward clock jumps to this plan (its own random
    /// stream, so the other draws of a seed do not move): on for half the
    /// seeds, 1 to `clock_jumps` of them, each on one of `nodes` at a
    /// uniform time of the safety phase, by 1 s to `max_clock_jump_ms`. A
    /// jump joins the node's skew (one per node: the last drawn wins).
    pub fn draw_clock_jumps(
        &mut self,
        seed: u64,
        profile: &SwarmProfile,
        safety_ms: u64,
        nodes: &[&str],
    ) {
        let mut rng = rng_for(seed, "clock-jumps");
        if nodes.is_empty() || profile.clock_jumps == 0 || !rng.gen_bool(0.5) {
            return;
        }
        let safety_ms = safety_ms.max(1);
        for _ in 0..rng.gen_range(1..=profile.clock_jumps) {
            let node = nodes[rng.gen_range(0..nodes.len())];
            let jump = ClockJump {
                at_ms: rng.gen_range(0..safety_ms),
                by_ms: rng.gen_range(1_000..=profile.max_clock_jump_ms.max(1_000)),
            };
            match self.clocks.iter_mut().find(|c| c.node == node) {
                Some(c) => c.jump = Some(jump),
                None => self.clocks.push(ClockSkew {
                    node: node.to_string(),
                    offset_ms: 0,
                    drift_ppm: 0,
                    jump: Some(jump),
                }),
            }
        }
        self.clocks.sort();
    }
}

/// The rooms an operator may act on: the PMS node, the booked room type and
/// its capacity as the run starts.
#[derive(Clone, Debug)]
pub struct OperatorTarget {
    /// The PMS node.
    pub service: String,
    /// The room type.
    pub room_type: String,
    /// Its capacity as the run starts.
    pub capacity: u32,
}

impl FaultPlan {
    /// Draw the environment events of one seed: like the other kinds, each
    /// is on for half the seeds, then 1 to its maximum of them at uniform
    /// times of the safety phase. An operator cuts the room type's capacity
    /// (half the time), takes it out of order (a quarter) or puts it back as
    /// it was (a quarter); `stripe` names the Stripe node, if the world has
    /// one, `salesforce` the Salesforce node. An admin's deletion and a
    /// guest's cancellation each pick their record or booking by a number
    /// drawn below [`ENV_NTH_MAX`], counted round over what is there at
    /// that instant. (Drawn after the older kinds on the same stream, so
    /// adding them kept those draws.)
    pub fn draw_events(
        seed: u64,
        profile: &SwarmProfile,
        safety_ms: u64,
        rooms: Option<&OperatorTarget>,
        stripe: Option<&str>,
        salesforce: Option<&str>,
    ) -> Vec<EnvEvent> {
        let mut rng = rng_for(seed, "environment");
        let safety_ms = safety_ms.max(1);
        let count = |max: u32, rng: &mut super::rng::SimRng| -> u32 {
            if max == 0 || !rng.gen_bool(0.5) {
                0
            } else {
                rng.gen_range(1..=max)
            }
        };
        let mut events = Vec::new();
        let operator = count(profile.operator_events, &mut rng);
        if let Some(t) = rooms {
            for _ in 0..operator {
                let at_ms = rng.gen_range(0..safety_ms);
                let (capacity, out_of_order) = match rng.gen_range(0..4) {
                    0 | 1 => (rng.gen_range(0..t.capacity.max(1)), false),
                    2 => (t.capacity, true),
                    _ => (t.capacity, false),
                };
                events.push(EnvEvent {
                    at_ms,
                    what: EnvKind::RoomType {
                        service: t.service.clone(),
                        room_type: t.room_type.clone(),
                        capacity,
                        out_of_order,
                    },
                });
            }
        }
        type Whole<'a> = (u32, Option<&'a str>, fn(String) -> EnvKind);
        let at_a_service: [Whole; 2] = [
            (profile.authorization_expiries, stripe, |service| {
                EnvKind::AuthorizationsExpire { service }
            }),
            (profile.session_revocations, salesforce, |service| {
                EnvKind::SessionsRevoked { service }
            }),
        ];
        for (max, service, what) in at_a_service {
            let n = count(max, &mut rng);
            if let Some(service) = service {
                for _ in 0..n {
                    events.push(EnvEvent {
                        at_ms: rng.gen_range(0..safety_ms),
                        what: what(service.to_string()),
                    });
                }
            }
        }
        type Picked<'a> = (u32, Option<&'a str>, fn(String, u32) -> EnvKind);
        let picks: [Picked; 3] = [
            (profile.crm_deletions, salesforce, |service, nth| {
                EnvKind::RecordDeleted { service, nth }
            }),
            (
                profile.booking_cancellations,
                rooms.map(|t| t.service.as_str()),
                |service, nth| EnvKind::BookingCancelled { service, nth },
            ),
            // Last: drawing it does not move the draws above.
            (profile.crm_restorations, salesforce, |service, nth| {
                EnvKind::RecordRestored { service, nth }
            }),
        ];
        for (max, service, what) in picks {
            let n = count(max, &mut rng);
            if let Some(service) = service {
                for _ in 0..n {
                    let at_ms = rng.gen_range(0..safety_ms);
                    let nth = rng.gen_range(0..ENV_NTH_MAX);
                    events.push(EnvEvent {
                        at_ms,
                        what: what(service.to_string(), nth),
                    });
                }
            }
        }
        events.sort();
        events
    }
}

/// One injected service error, each kind equally likely: throttled (not
/// applied), failed before or after applying (Stripe stores both 500s under
/// the key), or a 502/503 from the edge (not applied, not stored).
fn injected_kind(rng: &mut super::rng::SimRng) -> Injected {
    match rng.gen_range(0..4) {
        0 => Injected::Throttle,
        1 => Injected::FailBeforeApply,
        2 => Injected::FailAfterApply,
        _ => Injected::EdgeUnavailable,
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => f.write_str("<unprintable plan>"),
        }
    }
}

/// How hard the swarm may push, per fault kind. Each seed turns each kind
/// on with probability 1/2 at a random intensity up to these maxima.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwarmProfile {
    /// Highest per-call probability of each call fault kind, in `[0, 1]`
    /// (here: [`CallFaultKind::DropRequest`]). However high the rates, a
    /// call is faulted with probability at most 0.95.
    pub drop_request: f64,
    /// Highest per-call probability of [`CallFaultKind::DropReply`].
    pub drop_reply: f64,
    /// Highest per-call probability of [`CallFaultKind::Duplicate`].
    pub duplicate: f64,
    /// Highest per-call probability of [`CallFaultKind::DelayPastTimeout`].
    pub delay_past_timeout: f64,
    /// Highest per-call probability of [`CallFaultKind::Delay`].
    pub delay: f64,
    /// Highest per-call probability of [`CallFaultKind::Inject`].
    pub inject: f64,
    /// Longest extra delay of a delayed or duplicated request, in ms.
    pub max_delay_ms: u64,
    /// Per-call faults are drawn for this many calls per link (later
    /// calls get none). The default, 128, is twice the most calls any link
    /// made in 11,000 seeds over the shipped scenarios (66); drawing faults
    /// for calls that never happen cost a tenth of fuzzing time at 256.
    pub calls_per_link: u32,
    /// Most node crashes per run (at most [`MAX_FAULTS_PER_KIND`]).
    pub crashes: u32,
    /// Most node pauses per run.
    pub pauses: u32,
    /// Most partition windows per run.
    pub partitions: u32,
    /// Most brown-out windows per run.
    pub brownouts: u32,
    /// Most skewed clocks per run (one per node at most).
    pub clock_skews: u32,
    /// Longest time a crashed node stays down, in ms (a tenth of crashes
    /// stay down until the liveness phase instead).
    pub max_down_ms: u64,
    /// Longest pause, in ms.
    pub max_pause_ms: u64,
    /// Longest partition or brown-out window, in ms.
    pub max_window_ms: u64,
    /// Largest clock offset either way, in ms.
    pub max_clock_offset_ms: i64,
    /// Largest clock drift either way, in parts per million (at most
    /// [`MAX_DRIFT_PPM`]).
    pub max_drift_ppm: i64,
    /// Most PMS operator actions per run ([`EnvKind::RoomType`] on the
    /// booked room type: a capacity cut, out of order, back in service).
    pub operator_events: u32,
    /// Most authorization expiries at Stripe per run
    /// ([`EnvKind::AuthorizationsExpire`]).
    pub authorization_expiries: u32,
    /// Most revocations of every Salesforce session per run
    /// ([`EnvKind::SessionsRevoked`]).
    pub session_revocations: u32,
    /// Most deletions of a live Salesforce record by an admin per run
    /// ([`EnvKind::RecordDeleted`]).
    pub crm_deletions: u32,
    /// Most cancellations of a confirmed booking by a guest per run
    /// ([`EnvKind::BookingCancelled`]).
    pub booking_cancellations: u32,
    /// Most restorations of a deleted Salesforce record by an admin per
    /// run ([`EnvKind::RecordRestored`]).
    pub crm_restorations: u32,
    /// Most forward clock jumps per run (`ClockSkew::jump`), on the nodes
    /// that keep time for holds and deadlines (the PMS, the coordinator).
    pub clock_jumps: u32,
    /// Largest forward clock jump, in ms (at most [`MAX_TIME_MS`]).
    pub max_clock_jump_ms: u64,
    /// Most long pauses per run, on the nodes a long stall cannot make a
    /// late request of (the coordinator): a pause of longer than
    /// `max_pause_ms`, up to `max_long_pause_ms`, that outlives a short
    /// hold while the coordinator keeps every belief in memory.
    pub long_pauses: u32,
    /// Longest long pause, in ms. The liveness phase must outlast it and a
    /// late window (scenario validation).
    pub max_long_pause_ms: u64,
}

impl Default for SwarmProfile {
    fn default() -> Self {
        SwarmProfile {
            drop_request: 0.10,
            drop_reply: 0.10,
            duplicate: 0.10,
            delay_past_timeout: 0.05,
            delay: 0.10,
            inject: 0.10,
            max_delay_ms: 15_000,
            calls_per_link: 128,
            crashes: 3,
            pauses: 2,
            partitions: 2,
            brownouts: 2,
            clock_skews: 2,
            max_down_ms: 10_000,
            max_pause_ms: 5_000,
            max_window_ms: 20_000,
            max_clock_offset_ms: 60_000,
            max_drift_ppm: 500,
            operator_events: 2,
            authorization_expiries: 1,
            session_revocations: 1,
            // Off: allowed only where the org declares
            // `salesforce.others_delete_records` (scenario
            // crm-admin-deletes), which the coordinator reads.
            crm_deletions: 0,
            crm_restorations: 0,
            // A guest at the front desk.
            booking_cancellations: 1,
            clock_jumps: 1,
            // A VM suspended for a quarter of an hour, or an NTP step after
            // a long partition: enough to outlive a PMS hold's usual TTL.
            max_clock_jump_ms: 900_000,
            long_pauses: 1,
            // A stop-the-world stall of two minutes: a VM live-migrated or
            // suspended, a process swapped out. Longer than the short holds
            // the swarm draws, shorter than the liveness phase.
            max_long_pause_ms: 120_000,
        }
    }
}

impl SwarmProfile {
    /// Every rate finite and in `[0, 1]`, every count and time within its
    /// limit (`MAX_FAULTS_PER_KIND`, `MAX_CALLS_PER_LINK`, `MAX_TIME_MS`,
    /// `MAX_DRIFT_PPM`). The message names the field (as in a scenario's
    /// `[faults]`) and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        for (field, rate) in [
            ("faults.drop_request", self.drop_request),
            ("faults.drop_reply", self.drop_reply),
            ("faults.duplicate", self.duplicate),
            ("faults.delay_past_timeout", self.delay_past_timeout),
            ("faults.delay", self.delay),
            ("faults.inject", self.inject),
        ] {
            // NaN fails both comparisons, so it is refused too.
            if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
                return Err(format!(
                    "{field} = {rate} is not a probability (a finite number in 0..=1)"
                ));
            }
        }
        in_range(
            "faults.calls_per_link",
            self.calls_per_link,
            0,
            MAX_CALLS_PER_LINK,
        )?;
        for (field, n) in [
            ("faults.crashes", self.crashes),
            ("faults.pauses", self.pauses),
            ("faults.partitions", self.partitions),
            ("faults.brownouts", self.brownouts),
            ("faults.clock_skews", self.clock_skews),
            ("faults.operator_events", self.operator_events),
            ("faults.authorization_expiries", self.authorization_expiries),
            ("faults.session_revocations", self.session_revocations),
            ("faults.crm_deletions", self.crm_deletions),
            ("faults.crm_restorations", self.crm_restorations),
            ("faults.booking_cancellations", self.booking_cancellations),
            ("faults.clock_jumps", self.clock_jumps),
            ("faults.long_pauses", self.long_pauses),
        ] {
            in_range(field, n, 0, MAX_FAULTS_PER_KIND)?;
        }
        for (field, ms) in [
            ("faults.max_delay_ms", self.max_delay_ms),
            ("faults.max_down_ms", self.max_down_ms),
            ("faults.max_pause_ms", self.max_pause_ms),
            ("faults.max_window_ms", self.max_window_ms),
            ("faults.max_clock_jump_ms", self.max_clock_jump_ms),
            ("faults.max_long_pause_ms", self.max_long_pause_ms),
        ] {
            in_range(field, ms, 0, MAX_TIME_MS)?;
        }
        in_range(
            "faults.max_clock_offset_ms",
            self.max_clock_offset_ms,
            0,
            MAX_TIME_MS as i64,
        )?;
        in_range("faults.max_drift_ppm", self.max_drift_ppm, 0, MAX_DRIFT_PPM)
    }

    /// A profile with every fault kind off.
    pub fn none() -> Self {
        SwarmProfile {
            drop_request: 0.0,
            drop_reply: 0.0,
            duplicate: 0.0,
            delay_past_timeout: 0.0,
            delay: 0.0,
            inject: 0.0,
            crashes: 0,
            pauses: 0,
            partitions: 0,
            brownouts: 0,
            clock_skews: 0,
            operator_events: 0,
            authorization_expiries: 0,
            session_revocations: 0,
            crm_deletions: 0,
            crm_restorations: 0,
            booking_cancellations: 0,
            clock_jumps: 0,
            long_pauses: 0,
            ..SwarmProfile::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        let nodes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        Topology {
            links: vec![("a".into(), "b".into()), ("a".into(), "c".into())],
            crashable: nodes.clone(),
            services: vec!["b".into(), "c".into()],
            nodes,
        }
    }

    #[test]
    fn swarm_is_a_pure_function_of_the_seed() {
        let p = SwarmProfile::default();
        for seed in 0..50 {
            assert_eq!(
                FaultPlan::swarm(seed, &p, &topo(), 60_000),
                FaultPlan::swarm(seed, &p, &topo(), 60_000)
            );
        }
        let distinct: BTreeSet<String> = (0..50)
            .map(|s| FaultPlan::swarm(s, &p, &topo(), 60_000).to_string())
            .collect();
        assert!(distinct.len() > 40, "seeds should give different plans");
    }

    #[test]
    fn swarm_varies_which_kinds_are_on() {
        let p = SwarmProfile::default();
        let plans: Vec<FaultPlan> = (0..200)
            .map(|s| FaultPlan::swarm(s, &p, &topo(), 60_000))
            .collect();
        assert!(plans.iter().any(|p| p.crashes.is_empty()));
        assert!(plans.iter().any(|p| !p.crashes.is_empty()));
        assert!(plans.iter().any(|p| p.calls.is_empty()));
        assert!(plans.iter().any(|p| p.calls.len() > 10));
        for plan in &plans {
            plan.validate(&topo()).unwrap();
            assert!(plan.calls.iter().all(|c| c.index < p.calls_per_link));
        }
    }

    #[test]
    fn no_profile_means_no_faults() {
        for seed in 0..20 {
            assert!(FaultPlan::swarm(seed, &SwarmProfile::none(), &topo(), 60_000).is_empty());
        }
    }

    #[test]
    fn plans_round_trip_through_json_and_validate() {
        let plan = FaultPlan::swarm(7, &SwarmProfile::default(), &topo(), 60_000);
        let json = serde_json::to_string_pretty(&plan).unwrap();
        let back: FaultPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(plan, back);

        let bad: FaultPlan =
            serde_json::from_str(r#"{"crashes":[{"node":"zz","at_ms":5}]}"#).unwrap();
        assert!(matches!(
            bad.validate(&topo()),
            Err(PlanError::UnknownNode { .. })
        ));
        assert!(serde_json::from_str::<FaultPlan>(r#"{"crashs":[]}"#).is_err());
    }

    #[test]
    fn without_removes_exactly_one_fault() {
        let plan = FaultPlan::swarm(3, &SwarmProfile::default(), &topo(), 60_000);
        for i in 0..plan.len() {
            assert_eq!(plan.without(i).len(), plan.len() - 1);
        }
    }

    #[test]
    fn long_pauses_fall_on_the_named_nodes_between_the_short_and_long_limits() {
        let profile = SwarmProfile::default();
        let mut drawn = 0;
        for seed in 0..400 {
            let mut plan = FaultPlan::default();
            plan.draw_long_pauses(seed, &profile, 60_000, &["a"]);
            for p in &plan.pauses {
                assert_eq!(p.node, "a");
                assert!(p.at_ms < 60_000);
                assert!(p.for_ms > profile.max_pause_ms, "{p:?}");
                assert!(p.for_ms <= profile.max_long_pause_ms, "{p:?}");
            }
            drawn += usize::from(!plan.pauses.is_empty());
            let mut none = FaultPlan::default();
            none.draw_long_pauses(seed, &SwarmProfile::none(), 60_000, &["a"]);
            assert!(none.is_empty());
        }
        // A quarter of the seeds.
        assert!((60..140).contains(&drawn), "{drawn} of 400");
    }

    #[test]
    fn admins_delete_records_and_guests_cancel_bookings_on_their_own_nodes() {
        let rooms = OperatorTarget {
            service: "pms".into(),
            room_type: "std".into(),
            capacity: 3,
        };
        let profile = SwarmProfile::default();
        let (mut deletions, mut cancellations) = (0, 0);
        for seed in 0..400 {
            let events =
                FaultPlan::draw_events(seed, &profile, 60_000, Some(&rooms), None, Some("sf"));
            for e in &events {
                assert!(e.at_ms < 60_000);
                match &e.what {
                    EnvKind::RecordDeleted { service, nth } => {
                        assert_eq!(service, "sf");
                        assert!(*nth < ENV_NTH_MAX);
                        deletions += 1;
                    }
                    EnvKind::BookingCancelled { service, nth } => {
                        assert_eq!(service, "pms");
                        assert!(*nth < ENV_NTH_MAX);
                        cancellations += 1;
                    }
                    _ => {}
                }
            }
            // Without a PMS or an org, nothing is drawn for them, and the
            // other kinds' draws stay as they were.
            let bare = FaultPlan::draw_events(seed, &profile, 60_000, None, None, None);
            assert!(bare.is_empty(), "{bare:?}");
            let none = SwarmProfile {
                crm_deletions: 0,
                crm_restorations: 0,
                booking_cancellations: 0,
                ..profile.clone()
            };
            let older: Vec<EnvEvent> = events
                .iter()
                .filter(|e| {
                    !matches!(
                        e.what,
                        EnvKind::RecordDeleted { .. } | EnvKind::BookingCancelled { .. }
                    )
                })
                .cloned()
                .collect();
            let without =
                FaultPlan::draw_events(seed, &none, 60_000, Some(&rooms), None, Some("sf"));
            assert_eq!(older, without);
        }
        // Off by default (see `SwarmProfile::default`).
        assert_eq!(deletions, 0);
        assert!((160..240).contains(&cancellations), "{cancellations}");
    }
}
