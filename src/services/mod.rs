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
//! - every model exposes `ground_truth()` for the checkers.
//!
//! Not here: latency, lost replies, duplicates, crashes — the transport's job.

use serde::{Deserialize, Serialize};

/// A service-side failure that the fault plan injects into one request.
///
/// The model turns it into its own error catalogue: Stripe 429 / 500,
/// Salesforce `UNABLE_TO_LOCK_ROW` / 503, PMS 503 / 500.
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
}
