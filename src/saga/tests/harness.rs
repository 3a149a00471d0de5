//! A driver played by hand, for unit tests of the pure core.
//!
//! [`Harness`] acknowledges persists (appending to an in-memory durable
//! log), answers calls against a [`FakeWorld`] according to a fault script,
//! fires timers on a simulated clock, delivers late requests, and can crash
//! the coordinator and recover it from its log. It checks on every `Call`
//! that the call's intent is durable and unused ("intent before effect").
//!
//! [`FakeWorld`] keeps the ground truth: the *live* effects of every step of
//! every saga, with three service semantics (idempotency-key replay, upsert
//! by external id, plain create).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::saga::{
    Command, Config, Coordinator, Event, LogRecord, Op, Outcome, SagaDefinition, SagaId, SagaInput,
    SagaStatus, SagaSummary, StepCall,
};

/// How a service treats a repeated action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Semantics {
    /// Idempotency key (Stripe, PMS with client refs): a repeat returns the
    /// first result and makes no new effect, even after it was undone.
    Replay,
    /// Upsert by external id (Salesforce): a repeat makes the same record
    /// live again (a late upsert un-cancels the booking).
    Upsert,
    /// No deduplication (PMS without client refs): every delivery is a new
    /// effect.
    Create,
}

/// What happens to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Delivered, applied, answered truthfully.
    Ok,
    /// Refused (not applied).
    Reject,
    /// Throttled (not applied).
    Transient,
    /// Applied, reply lost: `Unknown`.
    LostReply,
    /// Never arrived: `Unknown`.
    LostRequest,
    /// Arrives (and is applied) after this many ms; the caller sees `Unknown`.
    Late(u64),
    /// Delivered twice; the first reply comes back.
    Duplicate,
    /// Delivered twice, and the reply is lost: `Unknown`.
    DuplicateLostReply,
}

/// The services' ground truth, per (saga, step).
#[derive(Clone, Debug)]
pub struct FakeWorld {
    semantics: Vec<Semantics>,
    effects: BTreeMap<(SagaId, usize), Effects>,
    next_ref: u64,
}

#[derive(Clone, Debug, Default)]
struct Effects {
    live: BTreeSet<String>,
    first: Option<String>,
}

impl FakeWorld {
    pub fn new(semantics: Vec<Semantics>) -> FakeWorld {
        FakeWorld {
            semantics,
            effects: BTreeMap::new(),
            next_ref: 1,
        }
    }

    /// The semantics the hotel checkout's services have.
    pub fn hotel(def: &SagaDefinition, pms_idempotent: bool) -> FakeWorld {
        let semantics = def
            .steps()
            .iter()
            .map(|s| match s.name.as_str() {
                "hold_room" if !pms_idempotent => Semantics::Create,
                "crm_record" | "crm_close_won" => Semantics::Upsert,
                _ => Semantics::Replay,
            })
            .collect();
        FakeWorld::new(semantics)
    }

    fn apply_action(&mut self, saga: &SagaId, step: usize, step_name: &str) -> String {
        let semantics = self.semantics[step];
        let fresh = format!("{step_name}-{}", self.next_ref);
        let e = self.effects.entry((saga.clone(), step)).or_default();
        match (semantics, e.first.clone()) {
            (Semantics::Replay, Some(first)) => first,
            (Semantics::Upsert, Some(first)) => {
                e.live.insert(first.clone());
                first
            }
            _ => {
                self.next_ref += 1;
                e.first.get_or_insert(fresh.clone());
                e.live.insert(fresh.clone());
                fresh
            }
        }
    }

    fn compensate(&mut self, saga: &SagaId, step: usize, target: Option<&str>) {
        let e = self.effects.entry((saga.clone(), step)).or_default();
        match target {
            Some(t) => {
                e.live.remove(t);
            }
            None => e.live.clear(),
        }
    }

    fn reconcile(&self, saga: &SagaId, step: usize) -> Outcome {
        let live = self.live(saga, step);
        if live.is_empty() {
            Outcome::NotFound
        } else {
            Outcome::Found {
                references: live.into_iter().collect(),
            }
        }
    }

    /// Live effects of one step of one saga.
    pub fn live(&self, saga: &SagaId, step: usize) -> BTreeSet<String> {
        self.effects
            .get(&(saga.clone(), step))
            .map(|e| e.live.clone())
            .unwrap_or_default()
    }

    /// A copy of a request the coordinator saw refused lands after all
    /// (the service forgot the refusal): a new effect of the step.
    pub fn land_refused_copy(&mut self, saga: &SagaId, step: usize, step_name: &str) -> String {
        self.apply_action(saga, step, step_name)
    }

    /// Removes an effect behind the coordinator's back (a hold that expired).
    pub fn expire(&mut self, saga: &SagaId, step: usize) {
        self.compensate(saga, step, None);
    }
}

pub type Script = Box<dyn FnMut(&StepCall) -> Fault>;

/// Every call succeeds.
pub fn healthy() -> Script {
    Box::new(|_| Fault::Ok)
}

/// `rules`: (step name, op, n-th such call of that saga counting from 1,
/// fault). Everything else is `Ok`.
pub fn scripted(rules: Vec<(&'static str, Op, u32, Fault)>) -> Script {
    let mut seen: BTreeMap<(SagaId, String, Op), u32> = BTreeMap::new();
    Box::new(move |call| {
        let n = seen
            .entry((call.saga.clone(), call.step_name.clone(), call.op))
            .or_insert(0);
        *n += 1;
        rules
            .iter()
            .find(|(step, op, nth, _)| *step == call.step_name && *op == call.op && *nth == *n)
            .map_or(Fault::Ok, |rule| rule.3)
    })
}

/// Every call of `step` with `op` gets `fault`.
pub fn always(step: &'static str, op: Op, fault: Fault) -> Script {
    Box::new(move |call| {
        if call.step_name == step && call.op == op {
            fault
        } else {
            Fault::Ok
        }
    })
}

/// The n-th call overall gets `faults[n]`; later calls are `Ok`.
pub fn sequence(faults: Vec<Fault>) -> Script {
    let mut n = 0;
    Box::new(move |_| {
        n += 1;
        faults.get(n - 1).copied().unwrap_or(Fault::Ok)
    })
}

#[derive(Clone, Debug)]
enum LateDelivery {
    Action(StepCall),
    Compensate(StepCall),
}

pub struct Harness {
    pub def: SagaDefinition,
    pub config: Config,
    pub coord: Coordinator,
    pub world: FakeWorld,
    pub now_ms: u64,
    /// The durable log.
    pub log: Vec<LogRecord>,
    pending_persists: VecDeque<(u64, Vec<LogRecord>)>,
    pending_calls: VecDeque<StepCall>,
    timers: BTreeSet<(u64, u64)>,
    late: Vec<(u64, u64, LateDelivery)>,
    late_seq: u64,
    /// Durable intents not yet used by a call: (key, attempt).
    open_intents: BTreeSet<(String, u32)>,
    /// Every call issued, in order.
    pub calls: Vec<StepCall>,
    /// The simulated instant each call of `calls` was issued at.
    pub call_at_ms: Vec<u64>,
    /// Every command emitted, in order, with the event count at the time.
    pub commands: Vec<(usize, Command)>,
    pub notifies: Vec<(String, SagaStatus)>,
    /// A readable line per event fed and command emitted (for snapshots).
    pub trace: Vec<String>,
    pub events: usize,
    pub latency_ms: u64,
    script: Script,
    /// Indexes into `calls` at which a crash happened.
    pub crash_marks: Vec<usize>,
}

impl Harness {
    pub fn new(def: SagaDefinition, config: Config, world: FakeWorld, script: Script) -> Harness {
        let coord = Coordinator::new(def.clone(), config.clone()).expect("valid config");
        Harness {
            def,
            config,
            coord,
            world,
            now_ms: 1_000,
            log: Vec::new(),
            pending_persists: VecDeque::new(),
            pending_calls: VecDeque::new(),
            timers: BTreeSet::new(),
            late: Vec::new(),
            late_seq: 0,
            open_intents: BTreeSet::new(),
            calls: Vec::new(),
            call_at_ms: Vec::new(),
            commands: Vec::new(),
            notifies: Vec::new(),
            trace: Vec::new(),
            events: 0,
            latency_ms: 10,
            script,
            crash_marks: Vec::new(),
        }
    }

    pub fn set_script(&mut self, script: Script) {
        self.script = script;
    }

    pub fn start(&mut self, input: SagaInput) {
        self.feed(Event::Start { input });
    }

    pub fn feed(&mut self, event: Event) {
        self.trace
            .push(format!("t={} <- {}", self.now_ms, render_event(&event)));
        let commands = self.coord.on_event(self.now_ms, event);
        self.events += 1;
        self.absorb(commands);
    }

    fn absorb(&mut self, commands: Vec<Command>) {
        for command in commands {
            match &command {
                Command::Persist { token, records } => {
                    assert!(!records.is_empty(), "no empty persist");
                    self.pending_persists.push_back((*token, records.clone()));
                }
                Command::Call(call) => {
                    if call.op.needs_intent() {
                        let intent = (call.key.clone(), call.attempt);
                        assert!(
                            self.open_intents.remove(&intent),
                            "call {call:?} without a durable, unused intent"
                        );
                    }
                    self.calls.push(call.clone());
                    self.call_at_ms.push(self.now_ms);
                    self.pending_calls.push_back(call.clone());
                }
                Command::Schedule { timer_id, delay_ms } => {
                    self.timers.insert((self.now_ms + delay_ms, *timer_id));
                }
                Command::Notify {
                    business_key,
                    status,
                } => self.notifies.push((business_key.clone(), status.clone())),
            }
            self.trace
                .push(format!("t={} -> {}", self.now_ms, render_command(&command)));
            self.commands.push((self.events, command));
        }
    }

    pub fn has_pending_persist(&self) -> bool {
        !self.pending_persists.is_empty()
    }

    /// Appends the next pending persist to the durable log; returns its
    /// token (not yet acknowledged to the coordinator).
    pub fn append_next_persist(&mut self) -> Option<u64> {
        let (token, records) = self.pending_persists.pop_front()?;
        for record in records {
            if let LogRecord::Intent { key, attempt, .. } = &record {
                self.open_intents.insert((key.clone(), *attempt));
            }
            self.log.push(record);
        }
        Some(token)
    }

    /// Delivers the next pending call to the world and returns the reply
    /// (not yet given to the coordinator).
    pub fn deliver_next_call(&mut self) -> Option<(u64, Outcome)> {
        let call = self.pending_calls.pop_front()?;
        self.now_ms += self.latency_ms;
        let fault = (self.script)(&call);
        let outcome = self.answer(&call, fault);
        Some((call.call_id, outcome))
    }

    /// One driver move. Returns false when nothing is left to do.
    pub fn step(&mut self) -> bool {
        if let Some(token) = self.append_next_persist() {
            self.feed(Event::Persisted { token });
            return true;
        }
        if let Some((call_id, outcome)) = self.deliver_next_call() {
            self.feed(Event::CallDone { call_id, outcome });
            return true;
        }
        let next_timer = self.timers.first().copied();
        let next_late = self
            .late
            .iter()
            .enumerate()
            .min_by_key(|(_, (due, seq, _))| (*due, *seq))
            .map(|(i, (due, _, _))| (i, *due));
        match (next_timer, next_late) {
            (None, None) => false,
            (timer, Some((i, due))) if timer.is_none_or(|(t, _)| due <= t) => {
                self.now_ms = self.now_ms.max(due);
                let (_, _, delivery) = self.late.remove(i);
                match delivery {
                    LateDelivery::Action(call) => {
                        self.world
                            .apply_action(&call.saga, call.step, &call.step_name);
                    }
                    LateDelivery::Compensate(call) => {
                        self.world
                            .compensate(&call.saga, call.step, call.target_ref.as_deref());
                    }
                }
                true
            }
            (Some((due, timer_id)), _) => {
                self.timers.remove(&(due, timer_id));
                self.now_ms = self.now_ms.max(due);
                self.feed(Event::Timer { timer_id });
                true
            }
            (None, Some(_)) => unreachable!("handled above"),
        }
    }

    /// Runs until nothing is left; panics past `max_events`.
    pub fn run(&mut self, max_events: usize) {
        while self.step() {
            assert!(
                self.events <= max_events,
                "no quiescence within {max_events} events"
            );
        }
    }

    /// The coordinator node crashes: everything not in the durable log is
    /// lost (pending persists, calls in flight, timers); requests already in
    /// the network still arrive. It restarts at once from the log.
    pub fn crash_and_recover(&mut self) {
        self.trace
            .push(format!("t={} !! crash and recover", self.now_ms));
        self.pending_persists.clear();
        self.pending_calls.clear();
        self.timers.clear();
        self.open_intents.clear();
        self.crash_marks.push(self.calls.len());
        let (coord, commands) = Coordinator::recover(
            self.def.clone(),
            self.config.clone(),
            self.now_ms,
            &self.log,
        )
        .expect("valid config");
        self.coord = coord;
        self.absorb(commands);
    }

    fn answer(&mut self, call: &StepCall, fault: Fault) -> Outcome {
        let (saga, step, name) = (&call.saga, call.step, call.step_name.as_str());
        match call.op {
            Op::Action => match fault {
                Fault::Ok => Outcome::applied(&self.world.apply_action(saga, step, name)),
                Fault::Reject => Outcome::rejected("scripted rejection"),
                Fault::Transient => Outcome::transient("scripted 429"),
                Fault::LostReply => {
                    self.world.apply_action(saga, step, name);
                    Outcome::unknown("reply lost")
                }
                Fault::LostRequest => Outcome::unknown("request lost"),
                Fault::Late(delay_ms) => {
                    self.push_late(delay_ms, LateDelivery::Action(call.clone()));
                    Outcome::unknown("timeout (request delayed)")
                }
                Fault::Duplicate => {
                    let first = self.world.apply_action(saga, step, name);
                    self.world.apply_action(saga, step, name);
                    Outcome::applied(&first)
                }
                Fault::DuplicateLostReply => {
                    self.world.apply_action(saga, step, name);
                    self.world.apply_action(saga, step, name);
                    Outcome::unknown("reply lost")
                }
            },
            Op::Compensate => {
                let target = call.target_ref.as_deref();
                match fault {
                    Fault::Ok | Fault::Duplicate => {
                        self.world.compensate(saga, step, target);
                        Outcome::Applied { reference: None }
                    }
                    Fault::DuplicateLostReply => {
                        self.world.compensate(saga, step, target);
                        Outcome::unknown("reply lost")
                    }
                    Fault::Reject => Outcome::rejected("scripted refusal to undo"),
                    Fault::Transient => Outcome::transient("scripted 429"),
                    Fault::LostReply => {
                        self.world.compensate(saga, step, target);
                        Outcome::unknown("reply lost")
                    }
                    Fault::LostRequest => Outcome::unknown("request lost"),
                    Fault::Late(delay_ms) => {
                        self.push_late(delay_ms, LateDelivery::Compensate(call.clone()));
                        Outcome::unknown("timeout (request delayed)")
                    }
                }
            }
            Op::Reconcile => match fault {
                Fault::Ok | Fault::Duplicate => self.world.reconcile(saga, step),
                // A reconcile's `Rejected` means "found, definitively
                // refused" (a declined card whose answer was lost): only
                // where nothing is live; a refused lookup is `Unknown`.
                Fault::Reject => match self.world.reconcile(saga, step) {
                    Outcome::NotFound => Outcome::rejected("scripted: found declined"),
                    _ => Outcome::unknown("scripted 400 on search"),
                },
                Fault::Transient => Outcome::transient("scripted 429"),
                Fault::LostReply
                | Fault::LostRequest
                | Fault::Late(_)
                | Fault::DuplicateLostReply => Outcome::unknown("search timed out"),
            },
        }
    }

    fn push_late(&mut self, delay_ms: u64, delivery: LateDelivery) {
        self.late_seq += 1;
        self.late
            .push((self.now_ms + delay_ms, self.late_seq, delivery));
    }

    pub fn status(&self, key: &str) -> SagaStatus {
        self.coord.status(key).expect("saga exists")
    }

    pub fn summary(&self, key: &str) -> SagaSummary {
        self.coord.summary(key).expect("saga exists")
    }

    /// Calls of one saga as (step name, op), in order.
    pub fn call_trace(&self, key: &str) -> Vec<(String, Op)> {
        let saga = SagaId::for_business_key(key);
        self.calls
            .iter()
            .filter(|c| c.saga == saga)
            .map(|c| (c.step_name.clone(), c.op))
            .collect()
    }

    /// Calls of one saga with the instant each was issued, in order.
    pub fn timed_calls(&self, key: &str) -> Vec<(u64, &StepCall)> {
        let saga = SagaId::for_business_key(key);
        self.call_at_ms
            .iter()
            .copied()
            .zip(&self.calls)
            .filter(|(_, c)| c.saga == saga)
            .collect()
    }

    /// Delays of every `Schedule` command, in order.
    pub fn scheduled_delays(&self) -> Vec<u64> {
        self.commands
            .iter()
            .filter_map(|(_, c)| match c {
                Command::Schedule { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .collect()
    }

    /// Ground truth agrees with each finalized saga's status:
    /// `Completed` ⇒ every step has exactly its recorded effect live;
    /// `Compensated` ⇒ no step has a live effect.
    pub fn assert_consistent(&self) {
        for summary in self.coord.summaries() {
            if !summary.finalized {
                continue;
            }
            for (i, step) in summary.steps.iter().enumerate() {
                let live = self.world.live(&summary.saga, i);
                match &summary.status {
                    SagaStatus::Completed => {
                        assert_eq!(
                            live.len(),
                            1,
                            "{}: completed but `{}` has live effects {live:?}",
                            summary.saga,
                            step.name
                        );
                        if let Some(r) = &step.reference {
                            assert!(live.contains(r), "{}: kept {r} not live", summary.saga);
                        }
                    }
                    SagaStatus::Compensated { .. } => assert!(
                        live.is_empty(),
                        "{}: compensated but `{}` has live effects {live:?}",
                        summary.saga,
                        step.name
                    ),
                    _ => {}
                }
            }
        }
    }

    /// The last decided status each key was notified of equals its status.
    pub fn assert_notified(&self) {
        for summary in self.coord.summaries() {
            let last = self
                .notifies
                .iter()
                .rev()
                .find(|(k, s)| *k == summary.business_key && s.is_decided())
                .map(|(_, s)| s.clone());
            if summary.status.is_decided() {
                assert_eq!(last, Some(summary.status.clone()), "{}", summary.saga);
            }
        }
    }
}

/// A checkout request.
pub fn input(key: &str) -> SagaInput {
    SagaInput::new(key, "cus_1", 25_000)
        .with_param("room_type", "double")
        .with_param("first_night", 10)
        .with_param("nights", 2)
}

/// Checks the log alone for the coordinator's discipline:
/// - an action is sent again only after the log shows the previous attempt
///   definitely not applied (`Transient`, `Rejected`, or a reconcile's
///   `NotFound`) — never blindly after `Unknown` or a crash;
/// - a step's own compensation only after the log shows it applied;
/// - a sweep compensation only of an effect the preceding reconcile found.
pub fn assert_log_discipline(log: &[LogRecord]) {
    #[derive(Default)]
    struct StepLog {
        maybe_applied: bool,
        applied: bool,
        found: Vec<String>,
    }
    let mut steps: BTreeMap<(SagaId, usize), StepLog> = BTreeMap::new();
    for (index, record) in log.iter().enumerate() {
        match record {
            LogRecord::Intent {
                saga,
                step,
                op,
                key,
                target_ref,
                ..
            } => {
                let s = steps.entry((saga.clone(), *step)).or_default();
                match op {
                    Op::Action => {
                        assert!(
                            !s.maybe_applied,
                            "record {index}: {key} re-sent while the last attempt may be applied"
                        );
                        assert!(
                            !s.applied,
                            "record {index}: {key} sent after it was applied"
                        );
                        s.maybe_applied = true;
                    }
                    Op::Compensate if key.ends_with("/undo") => {
                        assert!(
                            s.applied,
                            "record {index}: {key} for a step not known applied"
                        );
                    }
                    Op::Compensate => {
                        let target = target_ref.as_ref().expect("sweep undo has a target");
                        assert!(
                            s.found.contains(target),
                            "record {index}: {key} undoes {target}, which no reconcile found"
                        );
                    }
                    Op::Reconcile => panic!("record {index}: reconcile needs no intent"),
                }
            }
            LogRecord::Result {
                saga,
                step,
                op,
                outcome,
                ..
            } => {
                let s = steps.entry((saga.clone(), *step)).or_default();
                match (op, outcome) {
                    (Op::Action, Outcome::Applied { .. }) => {
                        s.applied = true;
                        s.maybe_applied = false;
                    }
                    (Op::Action, Outcome::Transient { .. } | Outcome::Rejected { .. }) => {
                        s.maybe_applied = false;
                    }
                    (Op::Reconcile, Outcome::NotFound | Outcome::Rejected { .. }) => {
                        s.maybe_applied = false;
                        s.found.clear();
                    }
                    (Op::Reconcile, Outcome::Found { references }) => {
                        s.applied = true;
                        s.maybe_applied = false;
                        s.found = references.clone();
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

fn render_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied { reference } => {
            format!("applied({})", reference.as_deref().unwrap_or("-"))
        }
        Outcome::Rejected { reason } => format!("rejected({reason})"),
        Outcome::Transient { reason } => format!("transient({reason})"),
        Outcome::Unknown { reason } => format!("unknown({reason})"),
        Outcome::KeyPoisoned { reason } => format!("key_poisoned({reason})"),
        Outcome::Found { references } => format!("found({})", references.join(",")),
        Outcome::NotFound => "not_found".to_string(),
    }
}

fn render_status(status: &SagaStatus) -> String {
    match status {
        SagaStatus::Running { step, phase } => format!("running({step}, {phase:?})"),
        SagaStatus::Completed => "completed".to_string(),
        SagaStatus::Compensated { reason } => format!("compensated({reason})"),
        SagaStatus::NeedsOperator { reason } => format!("needs_operator({reason})"),
        SagaStatus::Rejected { reason } => format!("rejected({reason})"),
    }
}

fn render_record(record: &LogRecord) -> String {
    match record {
        LogRecord::SagaStarted { saga, .. } => format!("started {saga}"),
        LogRecord::Intent {
            step,
            op,
            key,
            attempt,
            target_ref,
            ..
        } => format!(
            "intent {step}:{op:?}#{attempt} {key}{}",
            target_ref
                .as_ref()
                .map(|r| format!(" -> {r}"))
                .unwrap_or_default()
        ),
        LogRecord::Result {
            step, op, outcome, ..
        } => format!("result {step}:{op:?} {}", render_outcome(outcome)),
        LogRecord::CompensationStarted { reason, .. } => format!("compensation_started({reason})"),
        LogRecord::Decision { decision, .. } => {
            format!(
                "decision {}",
                render_status(&SagaStatus::from(decision.clone()))
            )
        }
        LogRecord::SweepRound { round, .. } => format!("sweep_round {round}"),
        LogRecord::Finalized { status, .. } => {
            format!(
                "finalized {}",
                render_status(&SagaStatus::from(status.clone()))
            )
        }
    }
}

fn render_event(event: &Event) -> String {
    match event {
        Event::Start { input } => format!("start {}", input.business_key),
        Event::Persisted { token } => format!("persisted #{token}"),
        Event::CallDone { call_id, outcome } => {
            format!("call_done #{call_id} {}", render_outcome(outcome))
        }
        Event::Timer { timer_id } => format!("timer #{timer_id}"),
    }
}

fn render_command(command: &Command) -> String {
    match command {
        Command::Persist { token, records } => format!(
            "persist #{token} [{}]",
            records
                .iter()
                .map(render_record)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Command::Call(call) => format!(
            "call #{} {} {:?}#{} {}{}",
            call.call_id,
            call.step_name,
            call.op,
            call.attempt,
            call.key,
            call.target_ref
                .as_ref()
                .map(|r| format!(" -> {r}"))
                .unwrap_or_default()
        ),
        Command::Schedule { timer_id, delay_ms } => format!("schedule #{timer_id} +{delay_ms}ms"),
        Command::Notify {
            business_key,
            status,
        } => format!("notify {business_key} {}", render_status(status)),
    }
}

/// The budgets these tests are written against: the core's defaults before
/// issue 14 raised them to outlast the default swarm profile. Small, so that
/// exhausting one takes a few scripted failures; each test names the budget
/// it exhausts through this config, not through `Config::default()`.
pub fn small_budgets() -> Config {
    Config {
        action_attempts_max: 5,
        forward_attempts_after_pivot_max: 5,
        reconcile_attempts_max: 6,
        compensation_attempts_max: 10,
        ..Config::default()
    }
}
