//! The coordinator: a pure state machine over many sagas.
//!
//! `on_event(now_ms, Event) -> Vec<Command>` — no I/O, no clock, no
//! randomness. The driver executes the commands and feeds the results back
//! as events. See the module docs of [`crate::saga`] for the protocol.
//!
//! Not here: the per-saga transitions (`state.rs`), rebuilding from the log
//! (`recovery.rs`), anything that talks to a service.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::{Config, ConfigError};
use super::definition::{SagaDefinition, SagaId, SagaInput, STEPS_MAX};
use super::log::{Decision, LogRecord, Op, Outcome};
use super::state::{ActionState, Next, Saga, Then, Wait};

/// Most consecutive internal moves of one saga within one event; every move
/// either changes state towards the end or stops. A limit, not a tuning knob.
const DRIVE_MOVES_MAX: usize = 8 * STEPS_MAX + 32;

/// A call the driver must make: map it to a service request, classify the
/// result, and answer with [`Event::CallDone`] — always, exactly once (a
/// timeout is `Outcome::Unknown`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCall {
    /// Echo it in [`Event::CallDone`]. Unique within this coordinator
    /// instance (one counter numbers calls, persists and timers).
    pub call_id: u64,
    /// The saga the call belongs to.
    pub saga: SagaId,
    /// Index of the step in the saga definition (0-based).
    pub step: usize,
    /// The step's name in the definition (`step` is its index).
    pub step_name: String,
    /// Do, undo, or read-only reconcile.
    pub op: Op,
    /// `Action` / `Reconcile`: the action key `{saga}/{step}` (send it as the
    /// Idempotency-Key / client ref / external id; search by it to
    /// reconcile). `Compensate`: the undo key.
    pub key: String,
    /// 1-based attempt of this op for this step (traces only; never part of
    /// a key).
    pub attempt: u32,
    /// Shared with the saga's state: a call is made many times per saga.
    pub input: Arc<SagaInput>,
    /// References returned by earlier applied steps, by step name (e.g.
    /// `hold_room` → hold id, `charge` → PaymentIntent id).
    pub refs: BTreeMap<String, String>,
    /// `Compensate`: the one effect to undo (the step's recorded reference,
    /// or a late / duplicate one the sweep found). `None` if the step was
    /// applied without a reference: undo by key / external id.
    pub target_ref: Option<String>,
}

/// What the driver tells the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// An agent asks for a checkout (idempotent on `input.business_key`).
    Start {
        /// The request; validated before a saga is started.
        input: SagaInput,
    },
    /// The records of `Command::Persist { token, .. }` are appended and
    /// fsynced.
    Persisted {
        /// The token of the `Persist` command that is now durable.
        token: u64,
    },
    /// The call `call_id` returned (or timed out: `Unknown`).
    CallDone {
        /// [`StepCall::call_id`] of the call.
        call_id: u64,
        /// The driver's classification of the result.
        outcome: Outcome,
    },
    /// The timer `timer_id` fired.
    Timer {
        /// The id of the `Schedule` command that set the timer.
        timer_id: u64,
    },
}

/// What the coordinator asks of the driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Append `records` to the log in order, fsync, then send
    /// `Event::Persisted { token }`. Never report a failed write: if the disk
    /// fails, stop (crash) and recover from what is durable.
    Persist {
        /// Echo it in `Event::Persisted`.
        token: u64,
        /// Records to append, in this order.
        records: Vec<LogRecord>,
    },
    /// Make this call and answer with `Event::CallDone`.
    Call(StepCall),
    /// Send `Event::Timer { timer_id }` after `delay_ms` (coordinator clock).
    Schedule {
        /// Echo it in `Event::Timer`.
        timer_id: u64,
        /// Delay in ms of the coordinator's clock.
        delay_ms: u64,
    },
    /// Answer the agents waiting on `business_key` (sent for every `Start`,
    /// and when a saga is decided or its final status differs from the
    /// decision).
    Notify {
        /// The business key the agents started the saga with.
        business_key: String,
        /// The answer for them.
        status: SagaStatus,
    },
}

/// What an agent is told about its checkout.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SagaStatus {
    /// Not decided yet; `step` is the step being run or compensated.
    Running {
        /// Name of the step being run or compensated.
        step: String,
        /// Starting, forward or compensating.
        phase: Phase,
    },
    /// Every step applied.
    Completed,
    /// Every applied step undone.
    Compensated {
        /// Why the saga went backward.
        reason: String,
    },
    /// Neither way could be finished: a human must look.
    NeedsOperator {
        /// Names the step and the outcome.
        reason: String,
    },
    /// The `Start` itself was refused (invalid input, business key reused
    /// with a different request, coordinator full). No saga was started by
    /// it.
    Rejected {
        /// Why the `Start` was refused.
        reason: String,
    },
}

impl SagaStatus {
    /// Whether this answer is final for the agent: every status but
    /// `Running`. (A decided saga may still be sweeping; see
    /// [`Coordinator::is_finalized`].)
    pub fn is_decided(&self) -> bool {
        !matches!(self, SagaStatus::Running { .. })
    }
}

impl From<Decision> for SagaStatus {
    fn from(decision: Decision) -> SagaStatus {
        match decision {
            Decision::Completed => SagaStatus::Completed,
            Decision::Compensated { reason } => SagaStatus::Compensated { reason },
            Decision::NeedsOperator { reason } => SagaStatus::NeedsOperator { reason },
        }
    }
}

/// Phase of a running saga.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `SagaStarted` is not durable yet.
    Starting,
    /// Running the steps in order.
    Forward,
    /// Undoing the applied steps in reverse order.
    Compensating,
}

/// Where one step stands (for reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// No action sent yet.
    NotStarted,
    /// Sent, being retried or reconciled: the outcome is not known yet.
    InProgress,
    /// The action is applied (possibly found by reconciliation).
    Applied,
    /// Definitely not applied, and given up (rejected, attempts or deadline).
    NotApplied,
    /// Gave up finding out whether it is applied.
    Unresolved,
    /// Its undo is in flight or waiting to be retried.
    Compensating,
    /// Its undo is done.
    Compensated,
    /// Its undo gave up (attempts exhausted or rejected): a human must look.
    CompensationFailed,
}

/// Read-only view of one saga.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaSummary {
    /// `saga-{business_key}`.
    pub saga: SagaId,
    /// The business key from the saga's input.
    pub business_key: String,
    /// What an agent asking now would be told.
    pub status: SagaStatus,
    /// Terminal: swept and the `Finalized` record written.
    pub finalized: bool,
    /// Coordinator clock (ms) when the saga was started (its `SagaStarted`
    /// record's time after a recovery).
    pub started_at_ms: u64,
    /// One per step of the definition, in definition order.
    pub steps: Vec<StepSummary>,
}

/// Read-only view of one step of a saga (see [`SagaSummary`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSummary {
    /// The step's name in the definition.
    pub name: String,
    /// Where the step stands.
    pub state: StepState,
    /// Action sends (intents written); 0 if never sent.
    pub attempts: u32,
    /// Forward reconcile calls (not the sweep's).
    pub reconciles: u32,
    /// Undo sends of the step's own effect (not the sweep's undos of late
    /// or duplicate effects).
    pub compensation_attempts: u32,
    /// Ever `Unknown`, sent more than once, or in flight at a crash.
    pub ambiguous: bool,
    /// The reference recorded as the step's result.
    pub reference: Option<String>,
}

/// Where a `Start` goes.
enum StartRoute {
    Attach(SagaId),
    New(SagaId),
}

/// The saga coordinator's pure core. See the [module docs](crate::saga).
#[derive(Clone, Debug)]
pub struct Coordinator {
    pub(super) def: SagaDefinition,
    pub(super) config: Config,
    pub(super) sagas: BTreeMap<SagaId, Saga>,
    /// Outstanding persist tokens, call ids and timer ids, by saga. One
    /// counter numbers all three.
    persists: BTreeMap<u64, SagaId>,
    calls: BTreeMap<u64, SagaId>,
    timers: BTreeMap<u64, SagaId>,
    next_id: u64,
}

impl Coordinator {
    /// A coordinator with no sagas. Fails only on an invalid `config`.
    pub fn new(definition: SagaDefinition, config: Config) -> Result<Coordinator, ConfigError> {
        config.validate()?;
        Ok(Coordinator {
            def: definition,
            config,
            sagas: BTreeMap::new(),
            persists: BTreeMap::new(),
            calls: BTreeMap::new(),
            timers: BTreeMap::new(),
            next_id: 1,
        })
    }

    /// Feeds one event; returns the commands to execute, in order.
    /// Unknown or stale ids are ignored (debug trace).
    pub fn on_event(&mut self, now_ms: u64, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Start { input } => self.on_start(now_ms, input, &mut out),
            Event::Persisted { token } => self.on_persisted(now_ms, token, &mut out),
            Event::CallDone { call_id, outcome } => {
                self.on_call_done(now_ms, call_id, outcome, &mut out)
            }
            Event::Timer { timer_id } => self.on_timer(now_ms, timer_id, &mut out),
        }
        out
    }

    /// Status of the saga for `business_key`, if there is one.
    pub fn status(&self, business_key: &str) -> Option<SagaStatus> {
        self.saga_by_key(business_key).map(|s| s.status(&self.def))
    }

    /// Whether the saga for `business_key` is terminal (decided, swept, and
    /// its `Finalized` record produced).
    pub fn is_finalized(&self, business_key: &str) -> Option<bool> {
        self.saga_by_key(business_key).map(Saga::is_finalized)
    }

    /// Whether every saga is finalized (the liveness phase's goal).
    pub fn all_finalized(&self) -> bool {
        self.sagas.values().all(Saga::is_finalized)
    }

    /// Number of sagas held, finalized ones included (they are never
    /// dropped).
    pub fn saga_count(&self) -> usize {
        self.sagas.len()
    }

    /// Read-only view of the saga for `business_key`, if there is one.
    pub fn summary(&self, business_key: &str) -> Option<SagaSummary> {
        self.saga_by_key(business_key).map(|s| self.summarize(s))
    }

    /// Every saga, in saga-id order.
    pub fn summaries(&self) -> impl Iterator<Item = SagaSummary> + '_ {
        self.sagas.values().map(|s| self.summarize(s))
    }

    /// The saga definition every saga of this coordinator runs.
    pub fn definition(&self) -> &SagaDefinition {
        &self.def
    }

    /// The (validated) configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn saga_by_key(&self, business_key: &str) -> Option<&Saga> {
        self.sagas.get(&SagaId::for_business_key(business_key))
    }

    fn summarize(&self, saga: &Saga) -> SagaSummary {
        SagaSummary {
            saga: saga.id.clone(),
            business_key: saga.input.business_key.clone(),
            status: saga.status(&self.def),
            finalized: saga.is_finalized(),
            started_at_ms: saga.started_at_ms,
            steps: saga
                .steps
                .iter()
                .enumerate()
                .map(|(i, run)| StepSummary {
                    name: self.def.step(i).name.clone(),
                    state: run.state(),
                    attempts: run.attempts,
                    reconciles: run.reconciles,
                    compensation_attempts: run.undo_attempts,
                    ambiguous: run.ambiguous,
                    reference: match &run.action {
                        ActionState::Applied { reference } => reference.clone(),
                        _ => None,
                    },
                })
                .collect(),
        }
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Decision point ("new saga per Start"): a business key always routes
    /// to the one saga derived from it.
    fn route_start(&self, input: &SagaInput) -> StartRoute {
        let id = SagaId::for_business_key(&input.business_key);
        if super::mutants::is_active(super::mutants::Mutant::NewSagaPerStart) {
            // Every tool call is a new checkout.
            let n = self
                .sagas
                .keys()
                .filter(|k| k.as_str().starts_with(id.as_str()))
                .count();
            return StartRoute::New(SagaId::mutant(format!("{}~{n}", id.as_str())));
        }
        if self.sagas.contains_key(&id) {
            StartRoute::Attach(id)
        } else {
            StartRoute::New(id)
        }
    }

    fn on_start(&mut self, now: u64, input: SagaInput, out: &mut Vec<Command>) {
        let reject = |business_key: String, reason: String| Command::Notify {
            business_key,
            status: SagaStatus::Rejected { reason },
        };
        if let Err(e) = input.validate() {
            out.push(reject(input.business_key, e.to_string()));
            return;
        }
        let id = match self.route_start(&input) {
            StartRoute::Attach(id) => {
                let saga = &self.sagas[&id];
                let status = if *saga.input == input {
                    saga.status(&self.def)
                } else {
                    SagaStatus::Rejected {
                        reason: format!(
                            "business key `{}` is already used by {id} with a different request",
                            input.business_key
                        ),
                    }
                };
                out.push(Command::Notify {
                    business_key: input.business_key,
                    status,
                });
                return;
            }
            StartRoute::New(id) => id,
        };
        if self.sagas.len() >= self.config.sagas_max {
            out.push(reject(
                input.business_key,
                format!(
                    "the coordinator holds its limit of {} sagas",
                    self.config.sagas_max
                ),
            ));
            return;
        }
        let mut saga = Saga::new(id.clone(), input.clone(), self.def.step_count(), now);
        saga.unpersisted.push(LogRecord::SagaStarted {
            saga: id.clone(),
            input,
            at_ms: now,
        });
        saga.notify_on_ack = true;
        let before = self.sagas.insert(id.clone(), saga);
        assert!(before.is_none(), "one saga per business key");
        self.drive(&id, now, out);
    }

    fn on_persisted(&mut self, now: u64, token: u64, out: &mut Vec<Command>) {
        let Some(id) = self.persists.remove(&token) else {
            tracing::debug!(token, "ignoring Persisted for an unknown token");
            return;
        };
        let saga = self
            .sagas
            .get_mut(&id)
            .expect("a persist belongs to a saga");
        let Wait::Persist {
            token: waited,
            intent,
            then,
        } = std::mem::replace(&mut saga.wait, Wait::Idle)
        else {
            panic!("saga {id} has a persist outstanding but does not wait for it");
        };
        assert_eq!(waited, token);
        saga.durable = true;
        if intent.is_some() {
            saga.acked_intent = intent;
        }
        if saga.notify_on_ack {
            saga.notify_on_ack = false;
            out.push(Command::Notify {
                business_key: saga.input.business_key.clone(),
                status: saga.status(&self.def),
            });
        }
        match then {
            Then::Nothing => self.drive(&id, now, out),
            then => self.perform(&id, then, now, out),
        }
    }

    fn on_call_done(&mut self, now: u64, call_id: u64, outcome: Outcome, out: &mut Vec<Command>) {
        let Some(id) = self.calls.remove(&call_id) else {
            tracing::debug!(call_id, "ignoring CallDone for an unknown call");
            return;
        };
        let saga = self.sagas.get_mut(&id).expect("a call belongs to a saga");
        let Wait::Call {
            call_id: waited,
            call,
        } = std::mem::replace(&mut saga.wait, Wait::Idle)
        else {
            panic!("saga {id} has a call outstanding but does not wait for it");
        };
        assert_eq!(waited, call_id);
        if call.op == Op::Action {
            // The client may send its effectful request late in the call (a
            // login first, a retry of its own): none of it leaves after the
            // call returns, so the late window counts from here.
            saga.steps[call.step].last_action_at_ms = Some(now);
        }
        saga.on_call_done(&self.def, &self.config, &call, outcome, now);
        self.drive(&id, now, out);
    }

    fn on_timer(&mut self, now: u64, timer_id: u64, out: &mut Vec<Command>) {
        let Some(id) = self.timers.remove(&timer_id) else {
            tracing::debug!(timer_id, "ignoring an unknown timer");
            return;
        };
        let saga = self.sagas.get_mut(&id).expect("a timer belongs to a saga");
        assert_eq!(saga.wait, Wait::Timer { timer_id });
        saga.wait = Wait::Idle;
        // The delay has passed on the driver's clock: do not sleep again for
        // a backoff even if `now` disagrees slightly.
        saga.ready_at_ms = saga.ready_at_ms.min(now);
        self.drive(&id, now, out);
    }

    /// Moves the saga until it waits for something (or is finalized).
    pub(super) fn drive(&mut self, id: &SagaId, now: u64, out: &mut Vec<Command>) {
        for _ in 0..DRIVE_MOVES_MAX {
            let saga = self.sagas.get_mut(id).expect("driving an existing saga");
            if saga.wait != Wait::Idle {
                return;
            }
            let then = match saga.next(&self.def, &self.config, now) {
                Next::Changed => continue,
                Next::Call(call) => Then::Call(call),
                Next::Sleep(delay_ms) => Then::Sleep(delay_ms),
                Next::Idle => Then::Nothing,
            };
            if saga.unpersisted.is_empty() {
                if let Then::Call(call) = &then {
                    assert!(
                        !call.op.needs_intent(),
                        "a call that changes a service comes with its intent to persist"
                    );
                }
                self.perform(id, then, now, out);
                return;
            }
            self.persist_then(id, then, out);
            return;
        }
        panic!("saga {id} did not settle within {DRIVE_MOVES_MAX} moves");
    }

    /// Decision point ("intent after effect"): the saga's unpersisted
    /// records (an intent among them) go to the driver first, and the move
    /// waits for their acknowledgement (`on_persisted` carries it out).
    fn persist_then(&mut self, id: &SagaId, then: Then, out: &mut Vec<Command>) {
        let saga = self.sagas.get_mut(id).expect("saga");
        assert_eq!(saga.wait, Wait::Idle);
        let records = std::mem::take(&mut saga.unpersisted);
        assert!(!records.is_empty(), "no empty persist");
        let intents: Vec<(String, u32)> = records
            .iter()
            .filter_map(|r| match r {
                LogRecord::Intent { key, attempt, .. } => Some((key.clone(), *attempt)),
                _ => None,
            })
            .collect();
        assert!(intents.len() <= 1, "at most one intent per persist");
        let intent = intents.into_iter().next();
        if let Then::Call(call) = &then {
            if call.op.needs_intent() {
                assert_eq!(intent, Some((call.key.clone(), call.attempt)));
            }
        }
        let token = self.fresh_id();
        self.persists.insert(token, id.clone());
        self.sagas.get_mut(id).expect("saga").wait = Wait::Persist {
            token,
            intent,
            then,
        };
        out.push(Command::Persist { token, records });
    }

    /// Carries out a move whose records (if any) are durable.
    fn perform(&mut self, id: &SagaId, then: Then, now: u64, out: &mut Vec<Command>) {
        match then {
            Then::Nothing => {}
            Then::Sleep(delay_ms) => {
                let timer_id = self.fresh_id();
                self.timers.insert(timer_id, id.clone());
                self.sagas.get_mut(id).expect("saga").wait = Wait::Timer { timer_id };
                out.push(Command::Schedule { timer_id, delay_ms });
            }
            Then::Call(call) => {
                let call_id = self.fresh_id();
                let saga = self.sagas.get_mut(id).expect("saga");
                assert!(!saga.is_finalized(), "no call after a terminal state");
                assert!(
                    saga.durable,
                    "no call for a saga that did not start durably"
                );
                if call.op.needs_intent() {
                    assert_eq!(
                        saga.acked_intent.take(),
                        Some((call.key.clone(), call.attempt)),
                        "a call is never issued without a persisted intent"
                    );
                }
                if call.op == Op::Action {
                    saga.steps[call.step].last_action_at_ms = Some(now);
                }
                let refs = saga
                    .steps
                    .iter()
                    .enumerate()
                    .filter_map(|(i, run)| match &run.action {
                        ActionState::Applied { reference: Some(r) } => {
                            Some((self.def.step(i).name.clone(), r.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                let step_call = StepCall {
                    call_id,
                    saga: id.clone(),
                    step: call.step,
                    step_name: self.def.step(call.step).name.clone(),
                    op: call.op,
                    key: call.key.clone(),
                    attempt: call.attempt,
                    input: saga.input.clone(),
                    refs,
                    target_ref: call.target_ref.clone(),
                };
                saga.wait = Wait::Call { call_id, call };
                self.calls.insert(call_id, id.clone());
                out.push(Command::Call(step_call));
            }
        }
    }

    /// Used by recovery: adds a saga rebuilt from the log.
    pub(super) fn insert_recovered(&mut self, saga: Saga) {
        let before = self.sagas.insert(saga.id.clone(), saga);
        assert!(before.is_none(), "one recovered saga per id");
    }
}
