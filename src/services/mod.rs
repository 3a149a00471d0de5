//! Simulated external systems: Stripe, Salesforce and an inventory / hotel PMS.
//!
//! Each model is a plain, synchronous state machine — request in, response
//! out, state changed — usable in a unit test without the simulator. The
//! simulation serves them on nodes through `sim::net`; the transport decides
//! separately whether the caller ever sees the reply.
//!
//! Conventions shared by all three models (see `SERVICES.md`):
//! - time is the *service's own* clock in milliseconds (`now_ms`), passed in
//!   by the caller of the model: the model never reads a clock itself, so
//!   clock skew is the transport's business;
//! - money is integer cents (`i64` in requests so that negative / zero
//!   amounts can be sent and rejected with the documented error);
//! - a request is applied atomically at one instant. Where concurrency
//!   matters (Stripe's `idempotency_key_in_use`, Salesforce's
//!   `DUPLICATE_VALUE` race) the model has a two-phase API `begin` /
//!   `complete`, and `handle` = `begin` + `complete` at the same instant;
//! - injected faults (brown-outs) are passed in as [`Injected`], so that the
//!   model applies its own semantics to them (Stripe stores a 5xx under the
//!   idempotency key, for example);
//! - every model exposes `ground_truth()` for the checkers and `dump()` for
//!   reports; all of them implement [`ServiceModel`], so one adapter serves
//!   any of them;
//! - every id is a counter (`pi_0001`, `a0B000000000001`, `hold-1`), every
//!   map a `BTreeMap`: two runs with the same inputs are identical;
//! - no input a client can send makes a model panic (it gets the documented
//!   error); `assert!`s guard the models' own invariants.
//!
//! Not here: latency, lost replies, duplicates, crashes — the transport's job.

pub mod inventory;
pub mod salesforce;
pub mod stripe;
pub mod user;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A service-side failure that the fault plan injects into one request.
///
/// The model turns it into its own error catalogue:
///
/// | injected          | Stripe                          | Salesforce                  | PMS      |
/// |-------------------|---------------------------------|-----------------------------|----------|
/// | `Throttle`        | 429 `rate_limit`, not stored    | 400 `UNABLE_TO_LOCK_ROW`    | 429      |
/// | `FailBeforeApply` | 500 `api_error`, stored by key  | 503 `SERVER_UNAVAILABLE`    | 503      |
/// | `FailAfterApply`  | applied, 500 stored by key      | applied, 500 `UNKNOWN_EXCEPTION` | applied, 500 |
/// | `EdgeUnavailable` | 503 at the edge, *not* stored   | 503 `SERVER_UNAVAILABLE`    | 503      |
///
/// A throttle is decided when the request arrives (`begin`); the failures
/// when it commits (`complete`). A request answered at the door (validation
/// error, idempotent replay, API limit) is not affected by `Fail*`, except
/// that a Stripe replay becomes a 500 (the stored result is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Injected {
    /// Throttled / lock contention: the request is *not* applied, and the
    /// error says "retry later" (429, `UNABLE_TO_LOCK_ROW`).
    Throttle,
    /// Server error before anything was applied (5xx; the caller cannot tell
    /// it apart from [`Injected::FailAfterApply`]).
    FailBeforeApply,
    /// Server error after the request was applied (5xx): the ambiguous case.
    FailAfterApply,
    /// A 502/503 from the infrastructure in front of the API (load
    /// balancer, edge): the request never reached the application, so
    /// nothing is applied and — for Stripe — nothing is stored under its
    /// `Idempotency-Key` (Stripe docs, Idempotent requests: results are
    /// saved "only if an API endpoint began executing"). A service without
    /// idempotency keys answers it like [`Injected::FailBeforeApply`].
    EdgeUnavailable,
}

/// One request that a model has accepted ([`ServiceModel::begin`]) and not yet
/// committed ([`ServiceModel::complete`]) or abandoned ([`ServiceModel::abort`]).
///
/// Tickets are numbered per model instance from 1, so they are deterministic.
/// Completing a ticket twice, or one the model never issued, is a harness bug
/// and panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ticket(u64);

impl Ticket {
    /// The ticket's number (for traces).
    pub fn number(self) -> u64 {
        self.0
    }
}

/// What [`ServiceModel::begin`] decided when the request arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Begin<R> {
    /// Answered at the door, nothing to commit: validation errors, throttling,
    /// idempotent replays, `idempotency_key_in_use`, API limits.
    Done(R),
    /// Accepted: the request executes when the ticket is completed.
    Pending(Ticket),
}

impl<R> Begin<R> {
    /// The ticket, if the request is pending.
    pub fn ticket(&self) -> Option<Ticket> {
        match self {
            Begin::Done(_) => None,
            Begin::Pending(t) => Some(*t),
        }
    }

    /// The immediate response, if there is one.
    pub fn done(self) -> Option<R> {
        match self {
            Begin::Done(r) => Some(r),
            Begin::Pending(_) => None,
        }
    }
}

/// The interface every simulated service offers to the simulation adapter.
///
/// The adapter calls [`begin`](ServiceModel::begin) when a request arrives,
/// waits the service's processing time, then calls
/// [`complete`](ServiceModel::complete) at the commit instant. A request that
/// is in flight when the node crashes is either completed (applied) or
/// [`abort`](ServiceModel::abort)ed (nothing applied) as the fault plan says;
/// [`in_flight`](ServiceModel::in_flight) lists the candidates.
pub trait ServiceModel {
    /// The request type (a client can send any value of it).
    type Request;
    /// The response type.
    type Response;
    /// What the checkers read.
    type GroundTruth;

    /// A request arrives at `now_ms` (the service's clock).
    fn begin(
        &mut self,
        now_ms: u64,
        req: Self::Request,
        injected: Option<Injected>,
    ) -> Begin<Self::Response>;

    /// The request behind `ticket` commits at `now_ms`: it is applied
    /// atomically at this instant. Panics if the ticket is not in flight.
    fn complete(&mut self, now_ms: u64, ticket: Ticket) -> Self::Response;

    /// The request behind `ticket` is lost (crash): nothing is applied and any
    /// lock it held (an idempotency key) is released. Returns whether the
    /// ticket was in flight; aborting twice is harmless.
    fn abort(&mut self, ticket: Ticket) -> bool;

    /// Tickets in flight, oldest first.
    fn in_flight(&self) -> Vec<Ticket>;

    /// Applies the time-driven transitions due at `now_ms` (authorization
    /// expiry, hold expiry, idempotency-key pruning). `begin` and `complete`
    /// call it; a checker calls it before reading the ground truth "as of"
    /// an instant.
    fn tick(&mut self, now_ms: u64);

    /// Everything the checkers need, as of the last `tick`.
    fn ground_truth(&self) -> &Self::GroundTruth;

    /// A compact, deterministic, human-readable summary for reports.
    fn dump(&self) -> String;

    /// `begin` and `complete` at the same instant.
    fn handle(
        &mut self,
        now_ms: u64,
        req: Self::Request,
        injected: Option<Injected>,
    ) -> Self::Response {
        match self.begin(now_ms, req, injected) {
            Begin::Done(resp) => resp,
            Begin::Pending(ticket) => self.complete(now_ms, ticket),
        }
    }
}

/// The requests a model has accepted and not yet committed, by ticket.
#[derive(Clone, Debug)]
pub(crate) struct InFlight<P> {
    last_ticket: u64,
    pending: BTreeMap<Ticket, P>,
}

impl<P> Default for InFlight<P> {
    fn default() -> Self {
        InFlight {
            last_ticket: 0,
            pending: BTreeMap::new(),
        }
    }
}

impl<P> InFlight<P> {
    pub(crate) fn insert(&mut self, pending: P) -> Ticket {
        self.last_ticket += 1;
        let ticket = Ticket(self.last_ticket);
        let previous = self.pending.insert(ticket, pending);
        assert!(previous.is_none(), "ticket {ticket:?} issued twice");
        ticket
    }

    /// Removes and returns the pending request; panics on an unknown ticket
    /// (completing a ticket twice is a bug in the harness, not an input).
    pub(crate) fn take(&mut self, ticket: Ticket) -> P {
        match self.pending.remove(&ticket) {
            Some(p) => p,
            None => {
                panic!("complete({ticket:?}): ticket not in flight (completed twice or aborted?)")
            }
        }
    }

    pub(crate) fn remove(&mut self, ticket: Ticket) -> Option<P> {
        self.pending.remove(&ticket)
    }

    pub(crate) fn get(&self, ticket: Ticket) -> Option<&P> {
        self.pending.get(&ticket)
    }

    /// The requests in flight, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Ticket, &P)> {
        self.pending.iter()
    }

    pub(crate) fn tickets(&self) -> Vec<Ticket> {
        self.pending.keys().copied().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}
