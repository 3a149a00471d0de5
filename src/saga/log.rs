//! The saga log (outbox): the records the coordinator asks the driver to
//! append and fsync, and the vocabulary they share with the driver (`Op`,
//! `Outcome`, `Decision`).
//!
//! The log is the coordinator's only memory across a crash: recovery
//! (`Coordinator::recover`) rebuilds every saga from these records alone.
//! Discipline: an `Intent` (with its idempotency key) is durable before the
//! call it announces is made; a `Result` is written after the call returns;
//! a `Decision` is durable before agents are told about it.
//!
//! Not here: the storage itself (the driver owns the file / simulated disk).

use serde::{Deserialize, Serialize};

use super::definition::{SagaId, SagaInput};

/// What a call asks the service to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Perform the step's action (with the action key).
    Action,
    /// Undo the step's action (with an undo key), targeting one reference.
    Compensate,
    /// Read-only: is the action applied? Which live effects does it have?
    Reconcile,
}

impl Op {
    /// Whether a call with this op changes the service and therefore needs a
    /// durable `Intent` before it is made (reconciliation is a read).
    pub fn needs_intent(self) -> bool {
        match self {
            Op::Action | Op::Compensate => true,
            Op::Reconcile => false,
        }
    }
}

/// The driver's classification of a call's result.
///
/// For `Action` and `Compensate`: `Applied`, `Rejected`, `Transient` or
/// `Unknown` (and for `Action`, `KeyPoisoned`). For `Reconcile`: `Found`, `NotFound` or `Unknown` (a
/// reconcile answered `Transient` or `Rejected` is treated as `Unknown`:
/// "could not find out").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Done (2xx). `reference` names the effect (hold id, PaymentIntent id,
    /// booking id), passed to later steps and to the compensation. A
    /// compensation whose target is already undone or absent (null
    /// compensation) is reported `Applied` by the glue.
    Applied {
        /// The effect's id, if it has one.
        reference: Option<String>,
    },
    /// Definitely not applied and retrying will not help: card declined, no
    /// availability, lease expired, validation error.
    Rejected {
        /// What the service said (for the log and the caller).
        reason: String,
    },
    /// Not applied, retry later: 429, `UNABLE_TO_LOCK_ROW`, 409 key in use.
    Transient {
        /// What the service said (for the log and the caller).
        reason: String,
    },
    /// Maybe applied: timeout, connection reset, 5xx after the request was
    /// sent. Resolved by reconciliation, never by blind retry or compensation.
    Unknown {
        /// What the service said (for the log and the caller).
        reason: String,
    },
    /// An action's key can never execute again: the service replayed a
    /// failure it stored under it (Stripe keeps a 5xx under its
    /// `Idempotency-Key` for 24 h and replays it to every retry). Maybe
    /// applied, like `Unknown`: the step is reconciled, and if nothing is
    /// live the next attempt carries a fresh key (`{key}#{n}`), logged in its
    /// `Intent` before it is sent. Only for `Action` calls.
    KeyPoisoned {
        /// What the service said (for the log and the caller).
        reason: String,
    },
    /// Reconcile: the action is applied. `references` lists its *live*
    /// (not compensated) effects — several if a non-idempotent service got
    /// duplicates; empty if the effect has no reference.
    Found {
        /// The live effects' ids.
        references: Vec<String>,
    },
    /// Reconcile: no live effect of the action exists.
    NotFound,
}

impl Outcome {
    /// [`Outcome::Applied`] with `reference`.
    pub fn applied(reference: &str) -> Outcome {
        Outcome::Applied {
            reference: Some(reference.to_string()),
        }
    }
    /// [`Outcome::Rejected`] with `reason`.
    pub fn rejected(reason: &str) -> Outcome {
        Outcome::Rejected {
            reason: reason.to_string(),
        }
    }
    /// [`Outcome::Transient`] with `reason`.
    pub fn transient(reason: &str) -> Outcome {
        Outcome::Transient {
            reason: reason.to_string(),
        }
    }
    /// [`Outcome::Unknown`] with `reason`.
    pub fn unknown(reason: &str) -> Outcome {
        Outcome::Unknown {
            reason: reason.to_string(),
        }
    }
    /// [`Outcome::KeyPoisoned`] with `reason`.
    pub fn key_poisoned(reason: &str) -> Outcome {
        Outcome::KeyPoisoned {
            reason: reason.to_string(),
        }
    }
    /// [`Outcome::Found`] with `references`.
    pub fn found(references: &[&str]) -> Outcome {
        Outcome::Found {
            references: references.iter().map(|r| r.to_string()).collect(),
        }
    }
}

/// How a saga ended (or will end, once swept).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Every step applied.
    Completed,
    /// Every applied step undone.
    Compensated {
        /// Why the saga went backward (the failing step and its outcome).
        reason: String,
    },
    /// Neither way could be finished: a human must look.
    NeedsOperator {
        /// The step and the outcome it could not get past.
        reason: String,
    },
}

/// One durable record. `at_ms` is the coordinator's clock as its core
/// reads it when the record was produced: the node's wall clock at boot
/// plus monotonic time since (see `driver`), for reports and deadlines.
/// Recovery does not trust it for the late window (see `recovery`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum LogRecord {
    /// The saga exists. Nothing of a saga counts before this is durable.
    SagaStarted {
        /// The saga the record belongs to.
        saga: SagaId,
        /// What the caller asked for.
        input: SagaInput,
        /// The coordinator's clock when the record was produced, in ms.
        at_ms: u64,
    },
    /// About to call the service (`op` is `Action` or `Compensate`) with this
    /// idempotency key. `attempt` counts from 1 and is *not* part of the key;
    /// an action's key changes only after the service poisoned the previous
    /// one (`Outcome::KeyPoisoned`), so the log names every key ever sent.
    Intent {
        /// The saga the record belongs to.
        saga: SagaId,
        /// The step's index in the definition.
        step: usize,
        /// Action or compensation.
        op: Op,
        /// The idempotency key the call carries.
        key: String,
        /// Which send of this (step, op) it is, from 1.
        attempt: u32,
        /// The effect the call acts on (the compensation's target), if any.
        target_ref: Option<String>,
        /// The coordinator's clock when the record was produced, in ms.
        at_ms: u64,
    },
    /// What a call returned (all ops, all outcomes, `Unknown` included).
    Result {
        /// The saga the record belongs to.
        saga: SagaId,
        /// The step's index in the definition.
        step: usize,
        /// Which call it answers: action, compensation or reconciliation.
        op: Op,
        /// The effect the call acted on, if any.
        target_ref: Option<String>,
        /// What the glue made of the answer.
        outcome: Outcome,
        /// The coordinator's clock when the record was produced, in ms.
        at_ms: u64,
    },
    /// The saga turned backward: it compensates from here on.
    CompensationStarted {
        /// The saga the record belongs to.
        saga: SagaId,
        /// The failure that turned it.
        reason: String,
        /// The coordinator's clock when the record was produced, in ms.
        at_ms: u64,
    },
    /// The saga's outcome is decided (and may be told to agents).
    Decision {
        /// The saga the record belongs to.
        saga: SagaId,
        /// How it ends.
        decision: Decision,
        /// The coordinator's clock when the record was produced, in ms.
        at_ms: u64,
    },
    /// A sweep round for late / duplicate effects begins.
    SweepRound {
        /// The saga the record belongs to.
        saga: SagaId,
        /// Which round, from 1.
        round: u32,
        /// The coordinator's clock when the record was produced, in ms.
        at_ms: u64,
    },
    /// Terminal: swept and done. `status` may differ from the decision if the
    /// sweep found something it could not clean up.
    Finalized {
        /// The saga the record belongs to.
        saga: SagaId,
        /// The final status.
        status: Decision,
        /// The coordinator's clock when the record was produced, in ms.
        at_ms: u64,
    },
}

impl LogRecord {
    /// The saga the record belongs to.
    pub fn saga(&self) -> &SagaId {
        match self {
            LogRecord::SagaStarted { saga, .. }
            | LogRecord::Intent { saga, .. }
            | LogRecord::Result { saga, .. }
            | LogRecord::CompensationStarted { saga, .. }
            | LogRecord::Decision { saga, .. }
            | LogRecord::SweepRound { saga, .. }
            | LogRecord::Finalized { saga, .. } => saga,
        }
    }

    /// The coordinator's clock when the record was produced, in ms.
    pub fn at_ms(&self) -> u64 {
        match self {
            LogRecord::SagaStarted { at_ms, .. }
            | LogRecord::Intent { at_ms, .. }
            | LogRecord::Result { at_ms, .. }
            | LogRecord::CompensationStarted { at_ms, .. }
            | LogRecord::Decision { at_ms, .. }
            | LogRecord::SweepRound { at_ms, .. }
            | LogRecord::Finalized { at_ms, .. } => *at_ms,
        }
    }
}

/// Every idempotency key announced by an `Intent` in `records` (the durable
/// log), with the index of the record, in log order. A key appears once per
/// attempt.
///
/// For the checker's "no service effect without a prior durable intent": a
/// service request carrying key `k` is legitimate only if `k` is here in
/// the part of the log that was durable when the request was sent.
pub fn durable_intent_keys(records: &[LogRecord]) -> Vec<(String, usize)> {
    records
        .iter()
        .enumerate()
        .filter_map(|(index, record)| match record {
            LogRecord::Intent { key, .. } => Some((key.clone(), index)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let saga = SagaId::for_business_key("r1");
        let records = vec![
            LogRecord::Intent {
                saga: saga.clone(),
                step: 1,
                op: Op::Action,
                key: "saga-r1/charge".into(),
                attempt: 2,
                target_ref: None,
                at_ms: 7,
            },
            LogRecord::Result {
                saga: saga.clone(),
                step: 1,
                op: Op::Reconcile,
                target_ref: None,
                outcome: Outcome::found(&["pi_1", "pi_2"]),
                at_ms: 9,
            },
            LogRecord::Finalized {
                saga,
                status: Decision::NeedsOperator { reason: "x".into() },
                at_ms: 10,
            },
        ];
        let json = serde_json::to_string(&records).unwrap();
        let back: Vec<LogRecord> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, records);
        assert_eq!(back[1].at_ms(), 9);
        assert_eq!(back[2].saga().as_str(), "saga-r1");
    }

    #[test]
    fn durable_intent_keys_lists_intents_in_log_order() {
        let saga = SagaId::for_business_key("r1");
        let intent = |key: &str, op| LogRecord::Intent {
            saga: saga.clone(),
            step: 0,
            op,
            key: key.into(),
            attempt: 1,
            target_ref: None,
            at_ms: 0,
        };
        let records = vec![
            LogRecord::SagaStarted {
                saga: saga.clone(),
                input: SagaInput::new("r1", "c", 100),
                at_ms: 0,
            },
            intent("saga-r1/hold_room", Op::Action),
            intent("saga-r1/hold_room/undo", Op::Compensate),
        ];
        assert_eq!(
            durable_intent_keys(&records),
            vec![
                ("saga-r1/hold_room".to_string(), 1),
                ("saga-r1/hold_room/undo".to_string(), 2)
            ]
        );
        assert!(Op::Action.needs_intent() && Op::Compensate.needs_intent());
        assert!(!Op::Reconcile.needs_intent());
    }
}
