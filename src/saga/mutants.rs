//! Deliberately broken coordinator behaviours, for the mutation suite that
//! proves the harness can find real saga bugs (`tests/sim/mutants.rs`).
//!
//! Each mutant is one mistake real saga code makes, switched on at one of
//! the core's named decision points (or in the checkout's glue). Compiled
//! in only with the `mutants` feature, which the test build turns on (the
//! crate dev-depends on itself with it); in the default build
//! [`is_active`] is a constant `false` and nothing here exists at run time.
//!
//! The active mutant is a thread-local set for the duration of one run
//! (`mutants::with`, in the `mutants` build only): a run is one runtime on one thread, and the guard restores
//! the previous value, so parallel fuzz threads and later runs on the same
//! thread are unaffected.

use serde::{Deserialize, Serialize};

/// One deliberate bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mutant {
    /// Retry a Stripe charge without its idempotency key.
    RetryChargeWithoutKey,
    /// Treat a timeout as a definite failure: compensate without
    /// reconciling, and never look for the effect again.
    CompensateUnknownWithoutReconcile,
    /// Call the service before the intent is fsynced (ack the log at once).
    CallBeforeIntentDurable,
    /// Compensate in forward order instead of reverse.
    CompensateInForwardOrder,
    /// Treat "nothing to undo" (hold not found, already refunded) as an
    /// error and give up.
    NullCompensationIsError,
    /// Ignore late actions: no sweep for effects that land after the
    /// coordinator gave up on them.
    IgnoreLateActions,
    /// Start a new saga for an agent's retried tool call.
    NewSagaPerStart,
    /// Retry forever, without a cap (even a declined card).
    RetryForever,
    /// Capture the whole authorization, not the (lower) final bill.
    CaptureTheWholeAuthorization,
    /// A confirm the PMS refused (hold expired, rooms out of order or
    /// sold) counted as booked.
    RefusedConfirmCountsAsBooked,
    /// An expired or revoked Salesforce session taken as a definitive
    /// refusal: no new login.
    SessionExpiryIsRejection,
    /// Undo an authorization by forgetting it: nothing is cancelled, the
    /// money stays held.
    AuthorizationLeftOnCompensation,
    /// Look a charge up through Stripe's search (eventually consistent)
    /// instead of the consistent list, so reconciliation and undo miss
    /// charges written less than a lag ago.
    ReconcileBySearch,
    /// Tell the caller "completed" as soon as the pivot is applied, before
    /// the steps after it are done.
    AnswerCompletedAtPivot,
}

impl Mutant {
    /// Every mutant, once each (the mutation suite runs them all).
    pub const ALL: [Mutant; 14] = [
        Mutant::RetryChargeWithoutKey,
        Mutant::CompensateUnknownWithoutReconcile,
        Mutant::CallBeforeIntentDurable,
        Mutant::CompensateInForwardOrder,
        Mutant::NullCompensationIsError,
        Mutant::IgnoreLateActions,
        Mutant::NewSagaPerStart,
        Mutant::RetryForever,
        Mutant::CaptureTheWholeAuthorization,
        Mutant::RefusedConfirmCountsAsBooked,
        Mutant::SessionExpiryIsRejection,
        Mutant::AuthorizationLeftOnCompensation,
        Mutant::ReconcileBySearch,
        Mutant::AnswerCompletedAtPivot,
    ];

    /// The invariants one would expect to catch this mutant.
    pub fn expected(self) -> &'static [&'static str] {
        match self {
            Mutant::RetryChargeWithoutKey => &["no-double-charge"],
            Mutant::CompensateUnknownWithoutReconcile => &["all-or-nothing", "no-orphan-hold"],
            Mutant::CallBeforeIntentDurable => &["saga-log:discipline"],
            Mutant::CompensateInForwardOrder => &["saga-log:compensation-order"],
            Mutant::NullCompensationIsError => &["needs-operator"],
            Mutant::IgnoreLateActions => &["all-or-nothing", "no-orphan-hold", "no-double-charge"],
            Mutant::NewSagaPerStart => &["no-double-charge", "no-overbooking", "at-most-once"],
            Mutant::RetryForever => &["liveness", "no-retry-after-decline"],
            Mutant::CaptureTheWholeAuthorization => &["no-double-charge"],
            Mutant::RefusedConfirmCountsAsBooked => &["caller-told-truth", "all-or-nothing"],
            Mutant::SessionExpiryIsRejection => &["needs-operator", "all-or-nothing"],
            Mutant::AuthorizationLeftOnCompensation => &["all-or-nothing"],
            Mutant::ReconcileBySearch => &["all-or-nothing", "no-double-charge"],
            Mutant::AnswerCompletedAtPivot => {
                &["all-or-nothing", "caller-told-truth", "answer-stands"]
            }
        }
    }
}

#[cfg(feature = "mutants")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Mutant>> = const { std::cell::Cell::new(None) };
}

/// Whether `m` is switched on for the current run.
#[inline]
pub fn is_active(m: Mutant) -> bool {
    #[cfg(feature = "mutants")]
    {
        ACTIVE.with(|a| a.get() == Some(m))
    }
    #[cfg(not(feature = "mutants"))]
    {
        let _ = m;
        false
    }
}

/// Run `f` with `mutant` switched on (`None`: the correct coordinator).
#[cfg(feature = "mutants")]
pub fn with<T>(mutant: Option<Mutant>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Mutant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ACTIVE.with(|a| a.replace(mutant)));
    f()
}
