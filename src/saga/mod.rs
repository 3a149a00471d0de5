//! The system under test: a saga coordinator — its **pure core**.
//!
//! A saga is an ordered list of steps (`definition`): compensatable steps,
//! one pivot (the point of no return), retriable steps. The [`Coordinator`]
//! runs many sagas as a pure state machine,
//! `on_event(now_ms, Event) -> Vec<Command>`: no I/O, no clock (the driver
//! passes the node's `now_ms`), no randomness (backoff jitter is a hash of
//! the config seed, saga, step and attempt). The async driver and the glue to
//! the services live elsewhere and talk to this module only through
//! [`Event`], [`Command`], [`StepCall`] and [`Outcome`].
//!
//! Not here: I/O, a runtime, timeouts, service clients. `saga` never
//! imports `sim`, `services` or `check`.
//!
//! # The driver protocol
//!
//! | command from the core | what the driver does | event back |
//! |---|---|---|
//! | `Persist { token, records }` | append in order + fsync | `Persisted { token }` |
//! | `Call(StepCall)` | service request, classify result, timeout ⇒ `Unknown` | `CallDone { call_id, outcome }` (exactly once) |
//! | `Schedule { timer_id, delay_ms }` | sleep | `Timer { timer_id }` |
//! | `Notify { business_key, status }` | answer agents waiting on that key | — |
//!
//! Agents send `Start { input }`; the same business key always means the same
//! saga (`saga-{business_key}`), whatever happens: a repeated `Start` gets the
//! saga's status, a `Start` with the same key but a different request is
//! `Rejected`. Every `Start` gets exactly one `Notify` (unless the node
//! crashes first: the agent retries); a new saga's comes once `SagaStarted`
//! is durable. Events with unknown ids are ignored; ids restart after
//! [`Coordinator::recover`], so the driver must drop events addressed to a
//! crashed incarnation (a restarted node has none).
//!
//! # What the glue must do (per `StepCall`)
//!
//! - `Action`: send `key` as the idempotency key / client reference /
//!   external id (Stripe `Idempotency-Key`, PMS `client_ref`, Salesforce
//!   `ExternalId__c`), use `refs` for earlier steps' ids (`confirm_room`
//!   needs `refs["hold_room"]`). Report `Applied { reference }` with the id
//!   of the effect.
//! - `Compensate`: undo `target_ref` (or, if `None`, the effect found by
//!   key); if it is already undone or absent, report `Applied` (null
//!   compensation). Use `key` as the compensation's own idempotency key.
//! - `Reconcile`: find the action's **live** effects by `key` (Stripe search
//!   by metadata, Salesforce query by external id, PMS list by client ref)
//!   and answer `Found { references }` / `NotFound`; if the query itself
//!   fails, `Unknown`.
//! - Classification: 4xx that means "no" (card declined, no availability,
//!   lease expired) ⇒ `Rejected`; 429 / lock row / key in use ⇒
//!   `Transient`; timeout, reset, 5xx ⇒ `Unknown`.
//!
//! # Rules the core keeps (asserted)
//!
//! - **Intent before effect**: a `Call` with `Op::Action` or `Op::Compensate`
//!   is emitted only after the `Persist` carrying its `Intent` (with its
//!   idempotency key) was acknowledged. Results are persisted after the call
//!   (batched with the next intent). A `Decision` is durable before agents
//!   hear of it.
//! - **Keys**: action `{saga}/{step}`, compensation `{saga}/{step}/undo`,
//!   sweep compensation of a specific effect `{saga}/{step}/undo/{ref}`.
//!   Never the attempt number. A key the service *poisoned*
//!   (`Outcome::KeyPoisoned`: it replays a stored failure to every retry)
//!   is reconciled like `Unknown`; if nothing is live, the next attempt
//!   carries generation `n` of the key, `{saga}/{step}#{n}`, in its durable
//!   `Intent` — so the log names every key that may have charged.
//! - **Unknown is reconciled**, never retried or compensated blindly:
//!   `Unknown` → (backoff) `Reconcile` → `Found` = applied / `NotFound` =
//!   send again with the same key (an attempt) / `Unknown` = reconcile again.
//! - **Limits**: per-step action attempts, reconciles (per step in total),
//!   compensation attempts; capped exponential backoff with jitter; a
//!   per-saga deadline before the pivot (an `Unknown` step is still
//!   reconciled after it: knowing is what allows undoing it); bounded sweep
//!   rounds. A saga that can go neither way ends
//!   `NeedsOperator` with a reason naming the step and the outcome.
//! - **Direction**: a failure up to and including the pivot compensates every
//!   applied step in reverse order; after the pivot the saga only goes
//!   forward, and a failure there is `NeedsOperator`. An unresolvable step
//!   before the pivot is not compensated blindly: the others are, and the
//!   sweep re-checks it.
//! - **Pivot fence**: a pivot that failed (rejected, attempts or deadline
//!   exhausted) after it was sent does not turn the saga back at once: it
//!   is reconciled no earlier than `late_window_ms` after its last action
//!   call returned (with a reconcile budget of its own); `Found` = applied, go forward;
//!   `NotFound` = compensate; `Unknown` = reconcile again. That reconcile
//!   makes the pivot ambiguous, so the sweep re-checks it after compensating.
//!
//! # Decision, sweep, finalization
//!
//! When a saga is *decided* (`Completed`, `Compensated`, `NeedsOperator`) the
//! decision is logged and agents are notified — except a `Compensated`
//! decision with an ambiguous step, which agents hear only once the sweep is
//! done (until then they are told `Running`, compensating): a late copy of
//! that step may land, and its undo may fail (a refund to a closed card),
//! and the caller must not have been told "compensated" by then. Before it is *finalized*, the
//! **sweep** looks for effects the coordinator could not see: a request
//! delivered after the coordinator gave up on it (a hanging action), or
//! delivered twice to a service that does not deduplicate. It re-checks every
//! attempted step whose action was ambiguous (ever `Unknown`, sent more than
//! once, in flight at a crash) or whose `SweepPolicy` is `Always`:
//!
//! 1. wait until `late_window_ms` has passed since the last action call
//!    of any swept step returned — **assumption: a request never stays in
//!    flight longer than `late_window_ms`** (the transport's longest delay
//!    must be shorter), and a client sends nothing after its call returned
//!    (it may send late *within* the call: a login first, a retry of its
//!    own — regression `pms-without-idempotency-7659`);
//! 2. reconcile each swept step (latest first). `Found` effects that should
//!    not be live — all of them for a step that was compensated or never
//!    applied; all but the kept one (the recorded reference, else the
//!    smallest) for a step that stays — are compensated one by one
//!    (`target_ref` = that effect, key `{saga}/{step}/undo/{ref}`). A step
//!    without compensation that has such effects (a pivot landing after the
//!    saga compensated) cannot be fixed: `NeedsOperator`;
//! 3. if a round undid something, another round verifies, up to
//!    `sweep_rounds_max`; effects still appearing in the last round, or
//!    anything the sweep could not check or undo, turn the final status into
//!    `NeedsOperator` (agents are notified again).
//!
//! Reconciliation reports **live** effects only: an effect that was
//! compensated (released hold, refunded charge, cancelled booking) is not
//! `Found`. Otherwise the sweep would undo it again and again.
//!
//! # Crash recovery
//!
//! [`Coordinator::recover`] rebuilds every saga from the log alone (see
//! `recovery.rs`): an action in flight is reconciled before anything else,
//! a compensation in flight is re-sent, a sweep restarts its round, a pivot
//! fence is rebuilt from the log (or, if its reconcile left no result, put
//! up again).
//!
//! # Decision points
//!
//! Each policy a mutation test may want to break lives in one small named
//! function, so that a later change can put a switch there:
//!
//! | broken variant | place |
//! |---|---|
//! | compensate Unknown without reconciling | `state::on_unknown_action` |
//! | retry without the idempotency key | `state::attempt_key` |
//! | compensate in forward order | `state::next_to_compensate` |
//! | intent after effect | `Coordinator::persist_then` (and the assertion in `Coordinator::perform`) |
//! | treat null compensation as error | `state::StepRun::apply_undo` (`Applied` arm; the glue reports null compensations as `Applied`) |
//! | ignore late actions | `state::sweep_steps` |
//! | turn back at once when the pivot fails | `state::Saga::fence_pivot` |
//! | new saga per Start | `Coordinator::route_start` |
//! | tell Compensated before the sweep | `state::Saga::withholds_compensated` |
//! | retry forever | `state::attempts_exhausted` |

mod config;
mod coordinator;
mod definition;
pub mod driver;
mod log;
pub mod mutants;
mod recovery;
mod state;

#[cfg(test)]
mod tests;

pub use config::{BackoffKind, Config, ConfigError};
pub use coordinator::{
    Command, Coordinator, Event, Phase, SagaStatus, SagaSummary, StepCall, StepState, StepSummary,
};
pub use definition::{
    action_key, undo_key, DefinitionError, InputError, SagaDefinition, SagaId, SagaInput, StepDef,
    StepKind, SweepPolicy,
};
pub use log::{durable_intent_keys, Decision, LogRecord, Op, Outcome};
