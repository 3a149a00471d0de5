//! Restart: rebuild every saga from the durable log alone and continue it.
//!
//! The log is folded record by record with the same `apply_*` functions the
//! live coordinator uses, so a recovered saga is in the state the live one
//! was when its last record became durable. Then each saga is resumed:
//!
//! - an action whose `Intent` has no `Result` was in flight: it may have been
//!   applied, so it is *reconciled* first, never re-sent blindly, and it
//!   counts as ambiguous (the sweep re-checks it);
//! - a compensation in flight is simply sent again (same undo key:
//!   compensations are idempotent);
//! - a saga that was sweeping restarts its current sweep round (reconciles
//!   are reads, sweep compensations use stable keys);
//! - backoff timers are not in the log: whatever waited, retries now;
//! - a late window (the sweep's, the pivot fence's) starts again at the
//!   restart: the log's times are wall-clock readings of a clock that may
//!   have been stepped since, so they cannot tell how long ago a request
//!   left;
//! - a pivot fence is not logged either: a forward reconcile result that
//!   follows the pivot's failure shows it was up (it is rebuilt, with its
//!   own reconcile budget); a failed pivot without one is fenced again, so
//!   the saga never turns back without that reconcile.
//!
//! Records of a saga whose `SagaStarted` is not in the log are ignored (it
//! never started durably, so no call of it was ever made). Records after a
//! saga's `Finalized` are ignored.
//!
//! Not here: reading the log from storage (the driver's job).

use std::collections::BTreeMap;

use super::config::{Config, ConfigError};
use super::coordinator::{Command, Coordinator};
use super::definition::{SagaDefinition, SagaId};
use super::log::{LogRecord, Op};
use super::state::{
    attempts_exhausted, deadline_reason, gave_up_reason, key_generation_of, ActionState, Saga,
    Stage, StepRun, Sweep, UndoState,
};

impl Coordinator {
    /// Rebuilds a coordinator from the durable log `records` (in log order)
    /// at the node's clock `now_ms`, and returns the commands that resume
    /// every unfinished saga. Call ids, timer ids and persist tokens start
    /// afresh: events addressed to the crashed incarnation must not be fed
    /// to the new one.
    ///
    /// `definition` must be the one the log was written with; records naming
    /// a step it does not have are ignored.
    pub fn recover(
        definition: SagaDefinition,
        config: Config,
        now_ms: u64,
        records: &[LogRecord],
    ) -> Result<(Coordinator, Vec<Command>), ConfigError> {
        let mut coordinator = Coordinator::new(definition, config)?;
        let mut sagas: BTreeMap<SagaId, Saga> = BTreeMap::new();
        for record in records {
            fold(&coordinator.def, &coordinator.config, &mut sagas, record);
        }
        for (_, mut saga) in sagas {
            resume(&mut saga, now_ms);
            coordinator.insert_recovered(saga);
        }
        let mut out = Vec::new();
        let ids: Vec<SagaId> = coordinator.sagas.keys().cloned().collect();
        for id in ids {
            coordinator.drive(&id, now_ms, &mut out);
        }
        Ok((coordinator, out))
    }
}

/// Applies one durable record to the rebuilt sagas.
fn fold(
    def: &SagaDefinition,
    config: &Config,
    sagas: &mut BTreeMap<SagaId, Saga>,
    record: &LogRecord,
) {
    if let LogRecord::SagaStarted { saga, input, at_ms } = record {
        if sagas.contains_key(saga) || *saga != SagaId::for_business_key(&input.business_key) {
            tracing::debug!(%saga, "ignoring a duplicate or inconsistent SagaStarted");
            return;
        }
        let mut rebuilt = Saga::new(saga.clone(), input.clone(), def.step_count(), *at_ms);
        rebuilt.durable = true;
        sagas.insert(saga.clone(), rebuilt);
        return;
    }
    let Some(saga) = sagas.get_mut(record.saga()) else {
        tracing::debug!(saga = %record.saga(), "ignoring a record of a saga that never started durably");
        return;
    };
    if saga.is_finalized() {
        tracing::debug!(saga = %saga.id, "ignoring a record after Finalized");
        return;
    }
    match record {
        LogRecord::SagaStarted { .. } => unreachable!("handled above"),
        LogRecord::Intent {
            step,
            op,
            key,
            attempt,
            at_ms,
            ..
        } => {
            let Some(run) = saga.steps.get_mut(*step) else {
                return;
            };
            match (&saga.stage, op) {
                (Stage::Forward, Op::Action) => {
                    // A fresh key once sent stays in use until poisoned too.
                    let generation = key_generation_of(&saga.id, &def.step(*step).name, key);
                    run.key_generation = run.key_generation.max(generation);
                    run.attempts = run.attempts.max(*attempt);
                    if run.attempts > 1 {
                        run.ambiguous = true;
                    }
                    run.action = ActionState::InFlight;
                    run.last_action_at_ms = run.last_action_at_ms.max(Some(*at_ms));
                }
                (Stage::Compensating, Op::Compensate) => {
                    run.undo_attempts = run.undo_attempts.max(*attempt);
                    run.undo = UndoState::InFlight;
                }
                // Sweep intents: the round restarts on resume.
                _ => {}
            }
        }
        LogRecord::Result {
            step,
            op,
            outcome,
            at_ms,
            ..
        } => {
            let Some(run) = saga.steps.get_mut(*step) else {
                return;
            };
            let name = &def.step(*step).name;
            match (&saga.stage, op) {
                (Stage::Forward, Op::Action) => {
                    // The request was sent before its result was written.
                    run.last_action_at_ms = run.last_action_at_ms.max(Some(*at_ms));
                    run.apply_action(name, outcome);
                }
                (Stage::Forward, Op::Reconcile) => {
                    if let Some(reason) = fence_reason(run, name, config) {
                        run.put_up_fence(reason);
                    }
                    run.reconciles += 1;
                    run.apply_reconcile(outcome);
                }
                (Stage::Compensating, Op::Compensate) => {
                    run.apply_undo(name, outcome);
                }
                _ => {}
            }
        }
        LogRecord::CompensationStarted { reason, .. } => {
            if matches!(saga.stage, Stage::Forward) {
                saga.compensation_reason = Some(reason.clone());
                saga.stage = Stage::Compensating;
            }
        }
        LogRecord::Decision { decision, .. } => {
            if matches!(saga.stage, Stage::Forward | Stage::Compensating) {
                saga.decision = Some(decision.clone());
                saga.stage = Stage::Sweeping(Sweep {
                    round: 1,
                    ..Sweep::default()
                });
            }
        }
        LogRecord::SweepRound { round, .. } => {
            if let Stage::Sweeping(sweep) = &mut saga.stage {
                sweep.round = *round;
            }
        }
        LogRecord::Finalized { status, .. } => {
            if saga.decision.is_none() {
                saga.decision = Some(status.clone());
            }
            saga.final_status = Some(status.clone());
            saga.stage = Stage::Finalized;
        }
    }
}

/// The reason the pivot fence went up, if a forward reconcile result folded
/// onto `run` now shows that it did. Live, a forward reconcile follows only
/// an `Unknown` action (an action in flight at a crash folds as
/// `InFlight`); one that follows a definite failure (`Failed`: rejected;
/// `Retry`: attempts or deadline exhausted) is the fence's. The reason is
/// rebuilt as `Saga::next_forward` words it.
fn fence_reason(run: &StepRun, name: &str, config: &Config) -> Option<String> {
    if run.fence.is_some() {
        return None;
    }
    match &run.action {
        ActionState::Failed { reason } => Some(reason.clone()),
        ActionState::Retry { reason } => Some(
            if attempts_exhausted(run.attempts, config.action_attempts_max) {
                gave_up_reason(name, run.attempts, reason)
            } else {
                deadline_reason(name, config.saga_deadline_ms, reason)
            },
        ),
        _ => None,
    }
}

/// Turns "was in flight" into "must find out", and restarts what was
/// interrupted.
fn resume(saga: &mut Saga, now_ms: u64) {
    assert!(saga.durable, "only durably started sagas are recovered");
    for run in &mut saga.steps {
        if matches!(run.action, ActionState::InFlight | ActionState::Reconciling) {
            run.action = ActionState::Unknown {
                reason: "in flight at a crash".to_string(),
            };
            run.ambiguous = true;
        }
        // Sent at some instant before the crash, which is before now; how
        // long before, the logged wall-clock times cannot say (the clock may
        // have been stepped since), so the late window starts again now.
        if run.last_action_at_ms.is_some() {
            run.last_action_at_ms = Some(now_ms);
        }
        if run.undo == UndoState::InFlight {
            run.undo = UndoState::Retry {
                reason: "in flight at a crash".to_string(),
            };
        }
    }
    if let Stage::Sweeping(sweep) = &mut saga.stage {
        *sweep = Sweep {
            round: sweep.round.max(1),
            ..Sweep::default()
        };
    }
    saga.ready_at_ms = now_ms;
    assert!(saga.unpersisted.is_empty() && saga.acked_intent.is_none());
}
