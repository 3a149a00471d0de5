//! Per-saga state and its transitions (internal to `saga`).
//!
//! A [`Saga`] is one running checkout. The coordinator feeds it call results
//! ([`Saga::on_call_done`]) and asks it what to do next ([`Saga::next`]);
//! recovery rebuilds it from the log with the same `apply_*` functions. The
//! saga never emits commands itself: it records log records in
//! `unpersisted` and answers with a [`Next`]; the coordinator turns that into
//! `Persist` / `Call` / `Schedule` commands and enforces "persist first".
//!
//! The decisions a later mutation suite will want to break each live in one
//! small named function: [`on_unknown_action`], [`attempts_exhausted`],
//! [`next_to_compensate`], [`StepRun::apply_undo`] (null compensation),
//! [`sweep_steps`] (late actions), [`Saga::fence_pivot`] (late pivot),
//! [`attempt_key`] (one key for all attempts until the service poisons
//! it); plus
//! `Coordinator::persist_then` (intent before effect) and
//! `Coordinator::route_start` (idempotent start).

use super::config::{BackoffKind, Config};
use super::coordinator::{Phase, SagaStatus, StepState};
use super::definition::{action_key, undo_key, SagaDefinition, SagaId, SagaInput, SweepPolicy};
use super::log::{Decision, LogRecord, Op, Outcome};
use super::mutants::{self, Mutant};
use std::sync::Arc;

/// Most effects of one step the sweep undoes in one round (a service that
/// answers a reconcile with more is beyond repair by a coordinator).
pub(super) const SWEEP_UNDO_MAX: usize = 16;

/// One saga, in memory.
#[derive(Clone, Debug)]
pub(super) struct Saga {
    pub(super) id: SagaId,
    pub(super) input: Arc<SagaInput>,
    pub(super) started_at_ms: u64,
    /// `SagaStarted` is durable.
    pub(super) durable: bool,
    pub(super) steps: Vec<StepRun>,
    pub(super) stage: Stage,
    /// Set when the saga turned backward; kept afterwards (the sweep needs it).
    pub(super) compensation_reason: Option<String>,
    pub(super) decision: Option<Decision>,
    pub(super) final_status: Option<Decision>,
    /// Backoff: no retry / reconcile is sent before this instant.
    pub(super) ready_at_ms: u64,
    /// Records produced but not yet handed to the driver.
    pub(super) unpersisted: Vec<LogRecord>,
    pub(super) wait: Wait,
    /// Tell agents the status once the pending persist is acknowledged.
    pub(super) notify_on_ack: bool,
    /// The last intent (key, attempt) acknowledged durable and not yet used
    /// by a call.
    pub(super) acked_intent: Option<(String, u32)>,
}

/// Where the saga is in its life.
#[derive(Clone, Debug)]
pub(super) enum Stage {
    Forward,
    Compensating,
    Sweeping(Sweep),
    Finalized,
}

/// The state of one step.
#[derive(Clone, Debug, Default)]
pub(super) struct StepRun {
    /// Action sends (intents written), counting from 1.
    pub(super) attempts: u32,
    /// Forward reconcile calls.
    pub(super) reconciles: u32,
    /// Ever `Unknown`, sent more than once, or in flight at a crash: the
    /// service may hold effects the coordinator does not know about.
    pub(super) ambiguous: bool,
    /// Upper bound of the instant the last action request was sent: when
    /// the last action call returned (set again when it returns).
    pub(super) last_action_at_ms: Option<u64>,
    /// The pivot failed after it was sent, but a copy of one of its
    /// requests may still land (duplicate, late delivery): the saga waits
    /// out the late window and reconciles once more before it turns back.
    /// Not logged itself: recovery rebuilds it from a forward reconcile
    /// result that follows the failure, and otherwise puts the fence up
    /// again.
    pub(super) fence: Option<Fence>,
    pub(super) action: ActionState,
    /// Keys of this action the service poisoned (a replayed stored 5xx):
    /// the next attempt's key is generation `key_generation`
    /// ([`attempt_key`]). Rebuilt from the log's intents and results.
    pub(super) key_generation: u32,
    pub(super) undo_attempts: u32,
    pub(super) undo: UndoState,
}

/// A failed pivot waiting out the late window (see [`Saga::fence_pivot`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Fence {
    /// Why the pivot failed: the compensation reason if the fence holds.
    pub(super) reason: String,
    /// `reconciles` when the fence went up: the fence has a reconcile budget
    /// of its own, so a pivot that used up its reconciles before it was
    /// refused is still checked before the saga turns back.
    pub(super) reconciles_before: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum ActionState {
    /// Never attempted.
    #[default]
    Idle,
    /// An action call is (or, during recovery, was) outstanding.
    InFlight,
    /// A reconcile call is outstanding.
    Reconciling,
    /// Definitely not applied; send the action again.
    Retry {
        reason: String,
    },
    /// Maybe applied; reconcile.
    Unknown {
        reason: String,
    },
    Applied {
        reference: Option<String>,
    },
    /// Definitely not applied and given up (rejected, attempts or deadline).
    Failed {
        reason: String,
    },
    /// Gave up reconciling: nobody knows whether it is applied.
    Unresolved {
        reason: String,
    },
}

impl ActionState {
    pub(super) fn is_applied(&self) -> bool {
        matches!(self, ActionState::Applied { .. })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum UndoState {
    #[default]
    Pending,
    InFlight,
    Retry {
        reason: String,
    },
    Done,
    Stuck {
        reason: String,
    },
}

/// The sweep: the last look for late and duplicate effects before a decided
/// saga is finalized.
#[derive(Clone, Debug, Default)]
pub(super) struct Sweep {
    pub(super) round: u32,
    /// The `SweepRound` record of `round` was written.
    pub(super) started: bool,
    /// Steps still to check this round, ascending: `pop` takes the latest.
    pub(super) queue: Vec<usize>,
    pub(super) current: Option<SweepItem>,
    /// This round found effects to undo (so another round verifies).
    pub(super) undid_any: bool,
    /// What the sweep could not clean up (makes the saga `NeedsOperator`).
    pub(super) problems: Vec<String>,
}

#[derive(Clone, Debug)]
pub(super) struct SweepItem {
    pub(super) step: usize,
    pub(super) reconciles: u32,
    /// `None` until reconciled; then the references still to undo.
    pub(super) to_undo: Option<Vec<String>>,
    pub(super) undo_attempts: u32,
    pub(super) last_reason: String,
}

/// What the saga wants next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// State changed (maybe records added): ask again.
    Changed,
    /// Make this call (after persisting `unpersisted`, which holds its intent
    /// if it needs one).
    Call(PlannedCall),
    /// Wait this long, then ask again.
    Sleep(u64),
    /// Nothing to do (finalized).
    Idle,
}

/// A call the saga wants made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PlannedCall {
    pub(super) step: usize,
    pub(super) op: Op,
    pub(super) key: String,
    pub(super) attempt: u32,
    pub(super) target_ref: Option<String>,
    /// Part of the sweep (not of the forward or backward path).
    pub(super) sweep: bool,
}

/// What the saga is waiting for. At most one thing at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    Idle,
    Persist {
        token: u64,
        /// The intent in this batch (at most one), to be acknowledged.
        intent: Option<(String, u32)>,
        then: Then,
    },
    Call {
        call_id: u64,
        call: PlannedCall,
    },
    Timer {
        timer_id: u64,
    },
}

/// What to do once a persist is acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Then {
    Call(PlannedCall),
    Sleep(u64),
    Nothing,
}

/// What the sweep should do with a step's live effects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Disposition {
    /// The step's effect stays: keep this reference (or, if `None`, the
    /// smallest found), undo any other.
    Kept(Option<String>),
    /// No effect of the step should exist: undo all found.
    Gone,
    /// Left to the operator (a stuck compensation, an unresolved pivot).
    Excluded,
}

/// Decision point ("compensate Unknown without reconciling"): an `Unknown`
/// action is only ever reconciled.
pub(super) fn on_unknown_action(reason: String) -> ActionState {
    if mutants::is_active(Mutant::CompensateUnknownWithoutReconcile) {
        return ActionState::Failed { reason };
    }
    ActionState::Unknown { reason }
}

/// Decision point ("retry without the idempotency key"): every attempt of
/// an action carries the same key, whatever its attempt number — until the
/// service poisoned that key (`Outcome::KeyPoisoned`) and reconciliation
/// found nothing live: then generation `n` is `{saga}/{step}#{n}`, written
/// in the attempt's `Intent` before it is sent.
pub(super) fn attempt_key(saga: &SagaId, step_name: &str, generation: u32) -> String {
    let key = action_key(saga, step_name);
    if generation == 0 {
        key
    } else {
        format!("{key}#{generation}")
    }
}

/// The key generation of an action `key` of `saga`'s step `step_name` (the
/// inverse of [`attempt_key`]; 0 for anything else).
pub(super) fn key_generation_of(saga: &SagaId, step_name: &str, key: &str) -> u32 {
    let base = action_key(saga, step_name);
    key.strip_prefix(base.as_str())
        .and_then(|rest| rest.strip_prefix('#'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Decision point ("retry forever"): whether `done` sends exhaust `max`.
pub(super) fn attempts_exhausted(done: u32, max: u32) -> bool {
    if mutants::is_active(Mutant::RetryForever) {
        return false;
    }
    done >= max
}

/// Why a step waiting to be retried is given up after `attempts` sends.
pub(super) fn gave_up_reason(name: &str, attempts: u32, last: &str) -> String {
    format!("`{name}` gave up after {attempts} attempts; last: {last}")
}

/// Why a step waiting to be retried is given up at the deadline.
pub(super) fn deadline_reason(name: &str, deadline_ms: u64, last: &str) -> String {
    format!("deadline of {deadline_ms} ms passed while retrying `{name}`; last: {last}")
}

/// Decision point ("compensate in forward order"): the next step to
/// compensate is the *latest* applied step with a compensation still to do.
pub(super) fn next_to_compensate(def: &SagaDefinition, steps: &[StepRun]) -> Option<usize> {
    let due = |j: &usize| {
        def.step(*j).compensation
            && steps[*j].action.is_applied()
            && matches!(steps[*j].undo, UndoState::Pending | UndoState::Retry { .. })
    };
    if mutants::is_active(Mutant::CompensateInForwardOrder) {
        return (0..steps.len()).find(due);
    }
    (0..steps.len()).rev().find(due)
}

/// Decision point ("ignore late actions"): the steps the sweep re-checks,
/// ascending. A step is swept if it was attempted, its action was ambiguous
/// or its policy says `Always`, and the sweep could act on what it finds.
pub(super) fn sweep_steps(def: &SagaDefinition, saga: &Saga) -> Vec<usize> {
    if mutants::is_active(Mutant::IgnoreLateActions) {
        return Vec::new();
    }
    let believes_failed = mutants::is_active(Mutant::CompensateUnknownWithoutReconcile);
    (0..saga.steps.len())
        .filter(|&i| {
            let run = &saga.steps[i];
            let step = def.step(i);
            let not_applied =
                !matches!(run.action, ActionState::Applied { .. }) && !believes_failed;
            run.attempts > 0
                && (run.ambiguous
                    || step.sweep == SweepPolicy::Always
                    || (step.sweep == SweepPolicy::UnlessApplied && not_applied))
                && match disposition(def, saga, i) {
                    Disposition::Kept(_) => step.compensation,
                    Disposition::Gone => true,
                    Disposition::Excluded => false,
                }
        })
        .collect()
}

/// Which effects of step `i` should be live once the saga is decided.
pub(super) fn disposition(def: &SagaDefinition, saga: &Saga, i: usize) -> Disposition {
    let run = &saga.steps[i];
    let at_or_after_pivot = i >= def.pivot();
    match (&run.action, &run.undo) {
        (_, UndoState::Stuck { .. }) => Disposition::Excluded,
        (ActionState::Applied { .. }, UndoState::Done) => Disposition::Gone,
        (ActionState::Applied { reference }, _) => Disposition::Kept(reference.clone()),
        (ActionState::Unresolved { .. }, _) if at_or_after_pivot => Disposition::Excluded,
        // Not applied. At or after the pivot this only matters if the saga
        // went backward (a late pivot then needs an operator).
        _ if at_or_after_pivot && saga.compensation_reason.is_none() => Disposition::Excluded,
        _ => Disposition::Gone,
    }
}

/// The references among `found` that must be undone under `disposition`.
pub(super) fn unwanted(disposition: &Disposition, found: &[String]) -> Vec<String> {
    let mut refs: Vec<String> = found.to_vec();
    refs.sort();
    refs.dedup();
    match disposition {
        Disposition::Kept(Some(kept)) => refs.retain(|r| r != kept),
        Disposition::Kept(None) => {
            if !refs.is_empty() {
                refs.remove(0);
            }
        }
        Disposition::Gone => {}
        Disposition::Excluded => refs.clear(),
    }
    refs
}

fn contract_violation(op: Op, outcome: &Outcome) -> ! {
    panic!("driver contract violated: a {op:?} call was answered {outcome:?}")
}

impl StepRun {
    /// Applies an action's outcome. Returns whether the next move waits a
    /// backoff.
    pub(super) fn apply_action(&mut self, name: &str, outcome: &Outcome) -> bool {
        match outcome {
            Outcome::Applied { reference } => {
                self.action = ActionState::Applied {
                    reference: reference.clone(),
                };
                false
            }
            Outcome::Rejected { reason } if mutants::is_active(Mutant::RetryForever) => {
                self.action = ActionState::Retry {
                    reason: format!("rejected, retried anyway: {reason}"),
                };
                true
            }
            Outcome::Rejected { reason } => {
                self.action = ActionState::Failed {
                    reason: format!("`{name}` rejected: {reason}"),
                };
                false
            }
            Outcome::Transient { reason } => {
                self.action = ActionState::Retry {
                    reason: format!("transient: {reason}"),
                };
                true
            }
            Outcome::Unknown { reason } => {
                // The mutant believes a timeout is a failure: nothing
                // ambiguous to look for later.
                self.ambiguous = !mutants::is_active(Mutant::CompensateUnknownWithoutReconcile);
                self.action = on_unknown_action(format!("unknown: {reason}"));
                true
            }
            Outcome::KeyPoisoned { reason } => {
                // Maybe applied (a stored 500 may follow an applied
                // request): reconcile first; a retry then needs a new key.
                self.ambiguous = true;
                self.key_generation += 1;
                self.action = on_unknown_action(format!("key poisoned: {reason}"));
                true
            }
            Outcome::Found { .. } | Outcome::NotFound => contract_violation(Op::Action, outcome),
        }
    }

    /// Puts up the pivot fence after the action failed for `reason` (live,
    /// or while recovery folds a reconcile that followed the failure).
    pub(super) fn put_up_fence(&mut self, reason: String) {
        assert!(self.fence.is_none(), "the fence goes up once");
        assert!(self.attempts > 0, "only a pivot that was sent is fenced");
        self.fence = Some(Fence {
            reason,
            reconciles_before: self.reconciles,
        });
    }

    /// Forward reconciles that count against `reconcile_attempts_max`: all
    /// of them, or those since the fence went up.
    pub(super) fn reconciles_in_budget(&self) -> u32 {
        let before = self.fence.as_ref().map_or(0, |f| f.reconciles_before);
        debug_assert!(before <= self.reconciles);
        self.reconciles - before
    }

    /// How much longer the fence waits: until `late_window_ms` after the
    /// pivot's last action call returned (on `now`'s clock, like the sweep: a timer that
    /// fires early does not shorten it). `None` once it may reconcile.
    fn fence_wait_ms(&self, config: &Config, now: u64) -> Option<u64> {
        self.fence.as_ref()?;
        let until_ms = self
            .last_action_at_ms
            .expect("a fenced pivot was sent")
            .saturating_add(config.late_window_ms);
        (now < until_ms).then(|| until_ms - now)
    }

    /// Applies a forward reconcile's outcome. Returns whether the next move
    /// waits a backoff.
    pub(super) fn apply_reconcile(&mut self, outcome: &Outcome) -> bool {
        // A step is reconciled only when its action was ambiguous; saying so
        // here makes the flag recoverable from the log (a crash loses the
        // in-memory `Unknown` that led to this reconcile).
        self.ambiguous = true;
        match outcome {
            Outcome::Found { references } => {
                // Several live effects: a non-idempotent service got
                // duplicates. Keep the smallest; the sweep undoes the rest.
                self.action = ActionState::Applied {
                    reference: references.iter().min().cloned(),
                };
                false
            }
            Outcome::NotFound if self.fence.is_some() => {
                // The fence held: no late copy landed; fail for real, for
                // the reason the pivot failed in the first place.
                let reason = &self.fence.as_ref().expect("fenced").reason;
                self.action = ActionState::Failed {
                    reason: format!("{reason}; no late copy landed within the late window"),
                };
                false
            }
            Outcome::NotFound => {
                // Not applied: sending again (same key) is safe, at once.
                self.action = ActionState::Retry {
                    reason: "reconcile found no effect".to_string(),
                };
                false
            }
            Outcome::Rejected { reason } => {
                // Found definitively refused (a declined card whose answer
                // was lost): the action failed; sending it again, under
                // any key, would ask the service a second time.
                self.action = ActionState::Failed {
                    reason: reason.clone(),
                };
                false
            }
            Outcome::Unknown { reason } | Outcome::Transient { reason } => {
                self.action = ActionState::Unknown {
                    reason: format!("reconcile failed: {reason}"),
                };
                true
            }
            Outcome::Applied { .. } | Outcome::KeyPoisoned { .. } => {
                contract_violation(Op::Reconcile, outcome)
            }
        }
    }

    /// Applies a compensation's outcome. Returns whether the next move waits
    /// a backoff.
    ///
    /// Decision point ("treat null compensation as error"): `Applied` — which
    /// the glue also reports when there was nothing to undo — is success.
    pub(super) fn apply_undo(&mut self, name: &str, outcome: &Outcome) -> bool {
        match outcome {
            Outcome::Applied { .. } => {
                self.undo = UndoState::Done;
                false
            }
            Outcome::Rejected { reason } => {
                self.undo = UndoState::Stuck {
                    reason: format!("compensation of `{name}` rejected: {reason}"),
                };
                false
            }
            // Compensations are idempotent (stable undo key): an ambiguous
            // one is simply sent again.
            Outcome::Transient { reason } | Outcome::Unknown { reason } => {
                self.undo = UndoState::Retry {
                    reason: reason.clone(),
                };
                true
            }
            Outcome::Found { .. } | Outcome::NotFound | Outcome::KeyPoisoned { .. } => {
                contract_violation(Op::Compensate, outcome)
            }
        }
    }

    /// Public summary of this step.
    pub(super) fn state(&self) -> StepState {
        match (&self.action, &self.undo) {
            (_, UndoState::Done) => StepState::Compensated,
            (_, UndoState::Stuck { .. }) => StepState::CompensationFailed,
            (_, UndoState::InFlight | UndoState::Retry { .. }) => StepState::Compensating,
            (ActionState::Idle, _) => StepState::NotStarted,
            (
                ActionState::InFlight
                | ActionState::Reconciling
                | ActionState::Retry { .. }
                | ActionState::Unknown { .. },
                _,
            ) => StepState::InProgress,
            (ActionState::Applied { .. }, _) => StepState::Applied,
            (ActionState::Failed { .. }, _) => StepState::NotApplied,
            (ActionState::Unresolved { .. }, _) => StepState::Unresolved,
        }
    }
}

impl Saga {
    pub(super) fn new(id: SagaId, input: SagaInput, steps: usize, now_ms: u64) -> Saga {
        Saga {
            id,
            input: Arc::new(input),
            started_at_ms: now_ms,
            durable: false,
            steps: vec![StepRun::default(); steps],
            stage: Stage::Forward,
            compensation_reason: None,
            decision: None,
            final_status: None,
            ready_at_ms: now_ms,
            unpersisted: Vec::new(),
            wait: Wait::Idle,
            notify_on_ack: false,
            acked_intent: None,
        }
    }

    pub(super) fn is_finalized(&self) -> bool {
        matches!(self.stage, Stage::Finalized)
    }

    /// The status agents see.
    pub(super) fn status(&self, def: &SagaDefinition) -> SagaStatus {
        if mutants::is_active(Mutant::AnswerCompletedAtPivot)
            && matches!(self.stage, Stage::Forward)
            && self.steps[def.pivot()].action.is_applied()
        {
            return SagaStatus::Completed;
        }
        if let Some(decision) = self.final_status.as_ref().or(self.decision.as_ref()) {
            if !self.withholds_compensated() {
                return SagaStatus::from(decision.clone());
            }
        }
        let (step, phase) = match self.stage {
            _ if !self.durable => (0, Phase::Starting),
            Stage::Forward => (
                self.steps
                    .iter()
                    .position(|s| !s.action.is_applied())
                    .unwrap_or(self.steps.len() - 1),
                Phase::Forward,
            ),
            _ => (
                next_to_compensate(def, &self.steps).unwrap_or(0),
                Phase::Compensating,
            ),
        };
        SagaStatus::Running {
            step: def.step(step).name.clone(),
            phase,
        }
    }

    /// Decision point ("tell Compensated before the sweep"): a saga decided
    /// `Compensated` with an ambiguous step is answered `Running
    /// (compensating)` until its sweep is done. A late copy of that step
    /// may still land, and its undo may fail (a refund to a closed card):
    /// the caller then hears the final `NeedsOperator`, never a
    /// "compensated" the money contradicts (regression
    /// `stripe-refunds-8262`).
    pub(super) fn withholds_compensated(&self) -> bool {
        self.final_status.is_none()
            && matches!(self.decision, Some(Decision::Compensated { .. }))
            && self.steps.iter().any(|s| s.ambiguous)
    }

    /// Decides the next move. Called only when the saga waits for nothing.
    pub(super) fn next(&mut self, def: &SagaDefinition, config: &Config, now: u64) -> Next {
        assert_eq!(
            self.wait,
            Wait::Idle,
            "saga {} decides while waiting",
            self.id
        );
        assert_eq!(self.steps.len(), def.step_count());
        match self.stage {
            Stage::Forward => self.next_forward(def, config, now),
            Stage::Compensating => self.next_compensation(def, config, now),
            Stage::Sweeping(_) => self.next_sweep(def, config, now),
            Stage::Finalized => Next::Idle,
        }
    }

    fn next_forward(&mut self, def: &SagaDefinition, config: &Config, now: u64) -> Next {
        let Some(i) = self.steps.iter().position(|s| !s.action.is_applied()) else {
            return self.decide(Decision::Completed, now);
        };
        let pivot = def.pivot();
        assert!(
            i <= pivot || self.steps[pivot].action.is_applied(),
            "no step runs after the pivot before the pivot is applied"
        );
        let name = def.step(i).name.clone();
        // (The "retry forever" mutant has no deadline either.)
        let deadline_passed = i <= pivot
            && now >= self.started_at_ms.saturating_add(config.saga_deadline_ms)
            && !mutants::is_active(Mutant::RetryForever);
        let run = &self.steps[i];
        match run.action.clone() {
            ActionState::Idle if deadline_passed => self.start_compensation(
                format!(
                    "deadline of {} ms passed before `{name}` started",
                    config.saga_deadline_ms
                ),
                now,
            ),
            ActionState::Idle => self.send_action(def, i, now),
            ActionState::Retry { reason } => {
                // After the pivot the saga can only go forward: a retriable
                // step gets the patient budget compensations get.
                let max = if i > pivot {
                    config.forward_attempts_after_pivot_max
                } else {
                    config.action_attempts_max
                };
                if attempts_exhausted(run.attempts, max) {
                    let why = gave_up_reason(&name, run.attempts, &reason);
                    self.fail(def, i, why, now)
                } else if deadline_passed {
                    let why = deadline_reason(&name, config.saga_deadline_ms, &reason);
                    self.fail(def, i, why, now)
                } else if now < self.ready_at_ms {
                    Next::Sleep(self.ready_at_ms - now)
                } else {
                    self.send_action(def, i, now)
                }
            }
            ActionState::Unknown { reason } => {
                // A fenced pivot counts only the reconciles since the fence.
                let reconciles = run.reconciles_in_budget();
                if attempts_exhausted(reconciles, config.reconcile_attempts_max) {
                    self.unresolved(
                        def,
                        i,
                        format!(
                            "outcome of `{name}` still unknown after {reconciles} reconciles; last: {reason}"
                        ),
                        now,
                    )
                } else if let Some(wait_ms) = run.fence_wait_ms(config, now) {
                    Next::Sleep(wait_ms)
                } else if now < self.ready_at_ms {
                    Next::Sleep(self.ready_at_ms - now)
                } else {
                    self.send_reconcile(def, i)
                }
            }
            ActionState::Failed { reason } => self.fail(def, i, reason, now),
            ActionState::Unresolved { reason } => self.unresolved(def, i, reason, now),
            ActionState::InFlight | ActionState::Reconciling | ActionState::Applied { .. } => {
                panic!(
                    "saga {}: step `{name}` is outstanding while the saga waits for nothing",
                    self.id
                )
            }
        }
    }

    /// Step `i` definitely failed: compensate (up to the pivot) or hand over
    /// to an operator (after it).
    fn fail(&mut self, def: &SagaDefinition, i: usize, reason: String, now: u64) -> Next {
        assert!(
            matches!(self.stage, Stage::Forward),
            "only the forward path fails"
        );
        assert!(
            !self.steps[i].action.is_applied(),
            "an applied step does not fail"
        );
        if let Some(next) = self.fence_pivot(def, i, &reason) {
            return next;
        }
        self.steps[i].action = ActionState::Failed {
            reason: reason.clone(),
        };
        if i <= def.pivot() {
            self.start_compensation(reason, now)
        } else {
            self.decide(Decision::NeedsOperator { reason }, now)
        }
    }

    /// Decision point ("ignore late actions", pivot): a refused pivot
    /// request may have a copy still in flight (the network duplicated or
    /// delayed it) that lands after the saga turned back — a booking nobody
    /// can undo (regression `late-pivot-after-compensation`). So before
    /// turning back, the pivot becomes `Unknown` behind a fence: it is
    /// reconciled no earlier than `late_window_ms` after its last action
    /// call returned (`StepRun::fence_wait_ms`), with a reconcile budget of its own; found
    /// = applied, go forward; not found = fail for real, for `reason`;
    /// unknown = reconcile again. `None` when no fence is needed (not the
    /// pivot, never sent) or it was already up.
    fn fence_pivot(&mut self, def: &SagaDefinition, i: usize, reason: &str) -> Option<Next> {
        let run = &mut self.steps[i];
        if i != def.pivot() || run.attempts == 0 || run.fence.is_some() {
            return None;
        }
        assert!(
            !matches!(run.action, ActionState::InFlight | ActionState::Reconciling),
            "the pivot is fenced only when nothing of it is outstanding"
        );
        run.put_up_fence(reason.to_string());
        run.action = ActionState::Unknown {
            reason: format!("fence after: {reason}"),
        };
        Some(Next::Changed)
    }

    /// Step `i`'s outcome stays unknown. Before the pivot the saga
    /// compensates the steps it knows about and leaves this one to the sweep
    /// (never undone blindly); at or after the pivot nobody can decide.
    fn unresolved(&mut self, def: &SagaDefinition, i: usize, reason: String, now: u64) -> Next {
        assert!(
            matches!(self.stage, Stage::Forward),
            "only the forward path gives up"
        );
        assert!(!self.steps[i].action.is_applied());
        self.steps[i].action = ActionState::Unresolved {
            reason: reason.clone(),
        };
        self.steps[i].ambiguous = true;
        if i < def.pivot() {
            self.start_compensation(reason, now)
        } else {
            self.decide(Decision::NeedsOperator { reason }, now)
        }
    }

    fn start_compensation(&mut self, reason: String, now: u64) -> Next {
        assert!(
            matches!(self.stage, Stage::Forward),
            "compensation starts from forward"
        );
        assert!(self.compensation_reason.is_none() && self.decision.is_none());
        self.unpersisted.push(LogRecord::CompensationStarted {
            saga: self.id.clone(),
            reason: reason.clone(),
            at_ms: now,
        });
        self.compensation_reason = Some(reason);
        self.stage = Stage::Compensating;
        Next::Changed
    }

    fn next_compensation(&mut self, def: &SagaDefinition, config: &Config, now: u64) -> Next {
        assert!(
            !self.steps[def.pivot()].action.is_applied(),
            "a saga whose pivot is applied never compensates"
        );
        let Some(j) = next_to_compensate(def, &self.steps) else {
            let reason = self
                .compensation_reason
                .clone()
                .expect("a compensating saga knows why");
            let stuck: Vec<String> = self
                .steps
                .iter()
                .filter_map(|s| match &s.undo {
                    UndoState::Stuck { reason } => Some(reason.clone()),
                    _ => None,
                })
                .collect();
            let decision = if stuck.is_empty() {
                Decision::Compensated { reason }
            } else {
                Decision::NeedsOperator {
                    reason: format!("{}; compensating because: {reason}", stuck.join("; ")),
                }
            };
            return self.decide(decision, now);
        };
        let run = &self.steps[j];
        match run.undo.clone() {
            UndoState::Pending => self.send_compensation(def, j, now),
            UndoState::Retry { reason } => {
                if attempts_exhausted(run.undo_attempts, config.compensation_attempts_max) {
                    let name = &def.step(j).name;
                    self.steps[j].undo = UndoState::Stuck {
                        reason: format!(
                            "compensation of `{name}` gave up after {} attempts; last: {reason}",
                            run.undo_attempts
                        ),
                    };
                    Next::Changed
                } else if now < self.ready_at_ms {
                    Next::Sleep(self.ready_at_ms - now)
                } else {
                    self.send_compensation(def, j, now)
                }
            }
            other => panic!(
                "saga {}: compensation of step {j} is {other:?} while idle",
                self.id
            ),
        }
    }

    fn send_action(&mut self, def: &SagaDefinition, i: usize, now: u64) -> Next {
        assert!(matches!(self.stage, Stage::Forward));
        let run = &mut self.steps[i];
        assert!(
            !run.action.is_applied(),
            "an applied action is not sent again"
        );
        run.attempts += 1;
        if run.attempts > 1 {
            run.ambiguous = true;
        }
        run.action = ActionState::InFlight;
        let key = attempt_key(&self.id, &def.step(i).name, run.key_generation);
        self.unpersisted.push(LogRecord::Intent {
            saga: self.id.clone(),
            step: i,
            op: Op::Action,
            key: key.clone(),
            attempt: run.attempts,
            target_ref: None,
            at_ms: now,
        });
        Next::Call(PlannedCall {
            step: i,
            op: Op::Action,
            key,
            attempt: run.attempts,
            target_ref: None,
            sweep: false,
        })
    }

    fn send_reconcile(&mut self, def: &SagaDefinition, i: usize) -> Next {
        assert!(matches!(self.stage, Stage::Forward));
        let run = &mut self.steps[i];
        assert!(matches!(run.action, ActionState::Unknown { .. }));
        run.reconciles += 1;
        run.action = ActionState::Reconciling;
        Next::Call(PlannedCall {
            step: i,
            op: Op::Reconcile,
            key: action_key(&self.id, &def.step(i).name),
            attempt: run.reconciles,
            target_ref: None,
            sweep: false,
        })
    }

    fn send_compensation(&mut self, def: &SagaDefinition, j: usize, now: u64) -> Next {
        assert!(matches!(self.stage, Stage::Compensating));
        let run = &mut self.steps[j];
        let ActionState::Applied { reference } = &run.action else {
            panic!(
                "saga {}: compensation only for applied steps (step {j})",
                self.id
            )
        };
        assert!(def.step(j).compensation && j < def.pivot());
        let target_ref = reference.clone();
        run.undo_attempts += 1;
        run.undo = UndoState::InFlight;
        let key = undo_key(&self.id, &def.step(j).name, None);
        self.unpersisted.push(LogRecord::Intent {
            saga: self.id.clone(),
            step: j,
            op: Op::Compensate,
            key: key.clone(),
            attempt: run.undo_attempts,
            target_ref: target_ref.clone(),
            at_ms: now,
        });
        Next::Call(PlannedCall {
            step: j,
            op: Op::Compensate,
            key,
            attempt: run.undo_attempts,
            target_ref,
            sweep: false,
        })
    }

    fn decide(&mut self, decision: Decision, now: u64) -> Next {
        assert!(self.decision.is_none(), "saga {} is decided twice", self.id);
        assert!(matches!(self.stage, Stage::Forward | Stage::Compensating));
        self.unpersisted.push(LogRecord::Decision {
            saga: self.id.clone(),
            decision: decision.clone(),
            at_ms: now,
        });
        tracing::debug!(saga = %self.id, ?decision, "saga decided");
        self.decision = Some(decision);
        self.notify_on_ack = true;
        self.stage = Stage::Sweeping(Sweep {
            round: 1,
            ..Sweep::default()
        });
        Next::Changed
    }

    fn next_sweep(&mut self, def: &SagaDefinition, config: &Config, now: u64) -> Next {
        let Stage::Sweeping(mut sweep) = std::mem::replace(&mut self.stage, Stage::Finalized)
        else {
            unreachable!("next_sweep outside the sweep")
        };
        match self.sweep_next(&mut sweep, def, config, now) {
            Some(next) => {
                self.stage = Stage::Sweeping(sweep);
                next
            }
            None => self.finalize(sweep.problems, now),
        }
    }

    /// One move of the sweep; `None` means "finalize now".
    fn sweep_next(
        &mut self,
        sweep: &mut Sweep,
        def: &SagaDefinition,
        config: &Config,
        now: u64,
    ) -> Option<Next> {
        assert!(self.decision.is_some(), "only a decided saga is swept");
        if !sweep.started {
            let steps = sweep_steps(def, self);
            if steps.is_empty() {
                return None;
            }
            let due_at_ms = steps
                .iter()
                .filter_map(|&i| self.steps[i].last_action_at_ms)
                .max()
                .unwrap_or(0)
                .saturating_add(config.late_window_ms);
            if now < due_at_ms {
                return Some(Next::Sleep(due_at_ms - now));
            }
            sweep.started = true;
            sweep.queue = steps;
            sweep.current = None;
            sweep.undid_any = false;
            self.unpersisted.push(LogRecord::SweepRound {
                saga: self.id.clone(),
                round: sweep.round,
                at_ms: now,
            });
            return Some(Next::Changed);
        }
        let Some(item) = sweep.current.as_mut() else {
            if let Some(step) = sweep.queue.pop() {
                sweep.current = Some(SweepItem {
                    step,
                    reconciles: 0,
                    to_undo: None,
                    undo_attempts: 0,
                    last_reason: String::new(),
                });
                return Some(Next::Changed);
            }
            // Round done.
            if !sweep.undid_any {
                return None;
            }
            if sweep.round < config.sweep_rounds_max {
                sweep.round += 1;
                sweep.started = false;
                return Some(Next::Changed);
            }
            sweep.problems.push(format!(
                "late effects still appeared in sweep round {}",
                sweep.round
            ));
            return None;
        };
        let step = item.step;
        let name = def.step(step).name.clone();
        match &mut item.to_undo {
            None => {
                if attempts_exhausted(item.reconciles, config.reconcile_attempts_max) {
                    sweep.problems.push(format!(
                        "could not check `{name}` for late effects after {} reconciles; last: {}",
                        item.reconciles, item.last_reason
                    ));
                    sweep.current = None;
                    return Some(Next::Changed);
                }
                if now < self.ready_at_ms {
                    return Some(Next::Sleep(self.ready_at_ms - now));
                }
                item.reconciles += 1;
                Some(Next::Call(PlannedCall {
                    step,
                    op: Op::Reconcile,
                    key: action_key(&self.id, &name),
                    attempt: item.reconciles,
                    target_ref: None,
                    sweep: true,
                }))
            }
            Some(refs) => {
                let Some(target) = refs.first().cloned() else {
                    sweep.current = None;
                    return Some(Next::Changed);
                };
                assert!(
                    def.step(step).compensation,
                    "the sweep undoes only compensatable steps"
                );
                if attempts_exhausted(item.undo_attempts, config.compensation_attempts_max) {
                    sweep.problems.push(format!(
                        "could not undo late effect `{target}` of `{name}` after {} attempts; last: {}",
                        item.undo_attempts, item.last_reason
                    ));
                    refs.remove(0);
                    item.undo_attempts = 0;
                    return Some(Next::Changed);
                }
                if now < self.ready_at_ms {
                    return Some(Next::Sleep(self.ready_at_ms - now));
                }
                item.undo_attempts += 1;
                let key = undo_key(&self.id, &name, Some(&target));
                self.unpersisted.push(LogRecord::Intent {
                    saga: self.id.clone(),
                    step,
                    op: Op::Compensate,
                    key: key.clone(),
                    attempt: item.undo_attempts,
                    target_ref: Some(target.clone()),
                    at_ms: now,
                });
                Some(Next::Call(PlannedCall {
                    step,
                    op: Op::Compensate,
                    key,
                    attempt: item.undo_attempts,
                    target_ref: Some(target),
                    sweep: true,
                }))
            }
        }
    }

    fn finalize(&mut self, problems: Vec<String>, now: u64) -> Next {
        assert!(self.wait == Wait::Idle && self.acked_intent.is_none());
        let decision = self
            .decision
            .clone()
            .expect("a saga is finalized only after its decision");
        assert!(
            self.final_status.is_none(),
            "saga {} is finalized twice",
            self.id
        );
        let status = if problems.is_empty() {
            decision.clone()
        } else {
            let before = match &decision {
                Decision::Completed => "completed".to_string(),
                Decision::Compensated { reason } => format!("compensated ({reason})"),
                Decision::NeedsOperator { reason } => reason.clone(),
            };
            Decision::NeedsOperator {
                reason: format!("{before}; sweep: {}", problems.join("; ")),
            }
        };
        if status != decision || self.withholds_compensated() {
            self.notify_on_ack = true;
        }
        self.unpersisted.push(LogRecord::Finalized {
            saga: self.id.clone(),
            status: status.clone(),
            at_ms: now,
        });
        tracing::debug!(saga = %self.id, ?status, "saga finalized");
        self.final_status = Some(status);
        self.stage = Stage::Finalized;
        Next::Changed
    }

    /// A call this saga made returned.
    pub(super) fn on_call_done(
        &mut self,
        def: &SagaDefinition,
        config: &Config,
        call: &PlannedCall,
        outcome: Outcome,
        now: u64,
    ) {
        assert_eq!(
            self.wait,
            Wait::Idle,
            "the call's wait was cleared by the caller"
        );
        self.unpersisted.push(LogRecord::Result {
            saga: self.id.clone(),
            step: call.step,
            op: call.op,
            target_ref: call.target_ref.clone(),
            outcome: outcome.clone(),
            at_ms: now,
        });
        if call.sweep {
            return self.on_sweep_result(def, config, call, &outcome, now);
        }
        let name = def.step(call.step).name.clone();
        let run = &mut self.steps[call.step];
        let (backoff, kind, failures) = match call.op {
            Op::Action => {
                assert!(matches!(self.stage, Stage::Forward));
                assert_eq!(run.action, ActionState::InFlight);
                let backoff = run.apply_action(&name, &outcome);
                (backoff, BackoffKind::Forward, run.attempts + run.reconciles)
            }
            Op::Reconcile => {
                assert!(matches!(self.stage, Stage::Forward));
                assert_eq!(run.action, ActionState::Reconciling);
                let backoff = run.apply_reconcile(&outcome);
                (backoff, BackoffKind::Forward, run.attempts + run.reconciles)
            }
            Op::Compensate => {
                assert!(matches!(self.stage, Stage::Compensating));
                assert_eq!(run.undo, UndoState::InFlight);
                let backoff = run.apply_undo(&name, &outcome);
                (backoff, BackoffKind::Compensation, run.undo_attempts)
            }
        };
        self.ready_at_ms = if backoff {
            now.saturating_add(config.backoff_ms(&self.id, call.step, kind, failures))
        } else {
            now
        };
    }

    fn on_sweep_result(
        &mut self,
        def: &SagaDefinition,
        config: &Config,
        call: &PlannedCall,
        outcome: &Outcome,
        now: u64,
    ) {
        let disposition = disposition(def, self, call.step);
        let name = &def.step(call.step).name;
        let Stage::Sweeping(sweep) = &mut self.stage else {
            panic!("saga {}: sweep result outside the sweep", self.id)
        };
        let item = sweep
            .current
            .as_mut()
            .expect("a sweep call belongs to the current item");
        assert_eq!(item.step, call.step);
        let mut backoff = None;
        match (call.op, outcome) {
            (Op::Reconcile, Outcome::Found { references }) => {
                let mut refs = unwanted(&disposition, references);
                if refs.len() > SWEEP_UNDO_MAX {
                    sweep.problems.push(format!(
                        "`{name}` has {} effects to undo; the sweep undoes at most {SWEEP_UNDO_MAX} per round",
                        refs.len()
                    ));
                    refs.truncate(SWEEP_UNDO_MAX);
                }
                if let Disposition::Kept(Some(kept)) = &disposition {
                    assert!(
                        !refs.contains(kept),
                        "the sweep never undoes the kept effect"
                    );
                }
                if !refs.is_empty() && !def.step(call.step).compensation {
                    sweep.problems.push(format!(
                        "`{name}` has effects {refs:?} that should not exist and no compensation"
                    ));
                    item.to_undo = Some(Vec::new());
                } else {
                    sweep.undid_any |= !refs.is_empty();
                    item.to_undo = Some(refs);
                }
            }
            // Found definitively refused (a declined card): nothing live to
            // undo, as for nothing found.
            (Op::Reconcile, Outcome::NotFound | Outcome::Rejected { .. }) => {
                item.to_undo = Some(Vec::new())
            }
            (Op::Reconcile, Outcome::Unknown { reason } | Outcome::Transient { reason }) => {
                item.last_reason = reason.clone();
                backoff = Some((BackoffKind::Forward, item.reconciles));
            }
            (Op::Compensate, Outcome::Applied { .. }) => {
                let refs = item.to_undo.as_mut().expect("undo follows the reconcile");
                assert_eq!(refs.first(), call.target_ref.as_ref());
                refs.remove(0);
                item.undo_attempts = 0;
            }
            (Op::Compensate, Outcome::Rejected { reason }) => {
                let refs = item.to_undo.as_mut().expect("undo follows the reconcile");
                sweep.problems.push(format!(
                    "undoing late effect `{}` of `{name}` was rejected: {reason}",
                    refs[0]
                ));
                refs.remove(0);
                item.undo_attempts = 0;
            }
            (Op::Compensate, Outcome::Transient { reason } | Outcome::Unknown { reason }) => {
                item.last_reason = reason.clone();
                backoff = Some((BackoffKind::Compensation, item.undo_attempts));
            }
            (op, outcome) => contract_violation(op, outcome),
        }
        self.ready_at_ms = match backoff {
            Some((kind, failures)) => {
                now.saturating_add(config.backoff_ms(&self.id, call.step, kind, failures))
            }
            None => now,
        };
    }
}
