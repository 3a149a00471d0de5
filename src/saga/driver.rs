//! The thin async driver: executes the core's commands with tokio APIs and
//! feeds the results back as events.
//!
//! It is the only part of `saga` that does I/O, and it does it through two
//! traits, so the same coordinator runs on real tokio with HTTP clients or,
//! here, on simulated nodes: [`StepClient`] (make one service call and
//! classify its result into an [`Outcome`]) and [`SagaLog`] (append, fsync,
//! read back). Time comes from the node's wall clock, read once at boot as
//! the anchor, and the monotonic clock after it: the core's `now_ms` is
//! `wall at boot + monotonic time since boot`, so a wall clock stepped
//! forward (NTP, a resumed VM) cannot end a deadline or a late window early
//! within one process lifetime. Across a restart nothing is trusted: the
//! recovery waits whole late windows again (see `recovery`).
//!
//! Ordering: records of a `Persist` are appended *while the core is still
//! locked*, so the log holds them in the order the core produced them; only
//! the fsync and its acknowledgement run concurrently.
//!
//! Not here: decisions (the core), service specifics (the client).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

use super::{Command, Config, ConfigError, Coordinator, Event, LogRecord, Outcome};
use super::{SagaDefinition, SagaInput, SagaStatus, SagaSummary, StepCall};

/// A boxed, sendable future (what the traits return).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Makes one service call for a step and classifies the result. Must always
/// return (a timeout is `Outcome::Unknown`), and send nothing once it has
/// returned: the core's late window counts from the return.
pub trait StepClient: Send + Sync + 'static {
    /// Makes `call` (with its key) and returns the classified outcome.
    fn call(&self, call: StepCall) -> BoxFuture<Outcome>;
}

/// The coordinator's durable log.
pub trait SagaLog: Send + Sync + 'static {
    /// Append records (not yet durable).
    fn append(&self, records: &[LogRecord]);
    /// Make everything appended so far durable.
    fn sync(&self) -> BoxFuture<()>;
    /// Everything this process can read (after a crash: what was durable).
    fn read(&self) -> Vec<LogRecord>;
}

/// The node's wall clock (ms since the Unix epoch). The driver reads it once
/// per boot; see the module docs.
pub type ClockFn = Arc<dyn Fn() -> u64 + Send + Sync>;

/// One running coordinator (one process lifetime).
pub struct Driver {
    core: Mutex<Coordinator>,
    client: Arc<dyn StepClient>,
    log: Arc<dyn SagaLog>,
    clock: ClockFn,
    /// Agents waiting for the answer to their `Start`, per business key.
    waiters: Mutex<BTreeMap<String, Vec<oneshot::Sender<SagaStatus>>>>,
    /// Signalled on every `Notify` (a status may have changed).
    changed: Notify,
    /// Persists appended but not yet acknowledged.
    unsynced: AtomicU64,
}

impl Driver {
    /// Boot: recover from the log (empty log = fresh start) and resume.
    pub fn boot(
        definition: SagaDefinition,
        config: Config,
        client: Arc<dyn StepClient>,
        log: Arc<dyn SagaLog>,
        clock: ClockFn,
    ) -> Result<Arc<Driver>, ConfigError> {
        let records = log.read();
        let clock = monotonic_from(clock());
        let (core, commands) = Coordinator::recover(definition, config, clock(), &records)?;
        crate::emit!(
            "coordinator",
            "recover",
            "{} log record(s), {} saga(s), {} command(s) to resume",
            records.len(),
            core.saga_count(),
            commands.len()
        );
        let driver = Arc::new(Driver {
            core: Mutex::new(core),
            client,
            log,
            clock,
            waiters: Mutex::new(BTreeMap::new()),
            changed: Notify::new(),
            unsynced: AtomicU64::new(0),
        });
        driver.append_persists(&commands);
        driver.execute(commands);
        Ok(driver)
    }

    /// The checkout tool: start (or attach to) the saga for the input's
    /// business key; answer once it is decided, or with its current status
    /// after `wait`.
    pub async fn checkout(self: &Arc<Self>, input: SagaInput, wait: Duration) -> SagaStatus {
        let key = input.business_key.clone();
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters")
            .entry(key.clone())
            .or_default()
            .push(tx);
        self.feed(Event::Start { input });
        let deadline = madsim::time::TimeHandle::current().now_instant() + wait;
        // `biased;`: tokio's select! otherwise starts at a branch drawn from
        // tokio's own thread-local RNG, which madsim does not seed — an
        // answer and the deadline ready at the same instant would go either
        // way depending on what the process ran before (regression
        // `determinism::a_seed_hashes_the_same_whatever_ran_before_it_on_the_thread`).
        // The answer wins a tie.
        let first = tokio::select! {
            biased;
            s = rx => s.ok(),
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let mut status = match first {
            Some(s) => s,
            None => {
                return self.status(&key).unwrap_or(SagaStatus::Running {
                    step: String::new(),
                    phase: super::Phase::Starting,
                })
            }
        };
        while !status.is_decided() {
            let changed = self.changed.notified();
            tokio::select! {
                biased;
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
            if let Some(s) = self.status(&key) {
                status = s;
            }
        }
        status
    }

    /// Status of the saga for `business_key`, if there is one (never waits).
    pub fn status(&self, business_key: &str) -> Option<SagaStatus> {
        self.core.lock().expect("core").status(business_key)
    }

    /// Every saga finalized and every log record durable: nothing left to do.
    pub fn all_finalized(&self) -> bool {
        self.unsynced.load(Ordering::Relaxed) == 0
            && self.core.lock().expect("core").all_finalized()
    }

    /// A snapshot of every saga, in saga-id order.
    pub fn summaries(&self) -> Vec<SagaSummary> {
        self.core.lock().expect("core").summaries().collect()
    }

    fn feed(self: &Arc<Self>, event: Event) {
        let commands = {
            let mut core = self.core.lock().expect("core");
            let now = (self.clock)();
            let commands = core.on_event(now, event);
            // Append under the lock: log order = the order the core decided.
            self.append_persists(&commands);
            commands
        };
        self.execute(commands);
    }

    fn execute(self: &Arc<Self>, commands: Vec<Command>) {
        for command in commands {
            match command {
                Command::Persist { token, .. } => {
                    // Appended already (`append_persists`); sync and ack.
                    let me = self.clone();
                    if super::mutants::is_active(super::mutants::Mutant::CallBeforeIntentDurable) {
                        // Ack first, sync later: calls leave before the intent is durable.
                        let log = self.log.clone();
                        tokio::spawn(async move { log.sync().await });
                        me.feed(Event::Persisted { token });
                        continue;
                    }
                    self.unsynced.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        me.log.sync().await;
                        me.unsynced.fetch_sub(1, Ordering::Relaxed);
                        me.feed(Event::Persisted { token });
                    });
                }
                Command::Call(call) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let call_id = call.call_id;
                        let outcome = me.client.call(call).await;
                        me.feed(Event::CallDone { call_id, outcome });
                    });
                }
                Command::Schedule { timer_id, delay_ms } => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                        me.feed(Event::Timer { timer_id });
                    });
                }
                Command::Notify {
                    business_key,
                    status,
                } => {
                    crate::emit!("coordinator", "notify", "{business_key}: {status:?}");
                    let waiters = self
                        .waiters
                        .lock()
                        .expect("waiters")
                        .remove(&business_key)
                        .unwrap_or_default();
                    for w in waiters {
                        let _ = w.send(status.clone());
                    }
                    self.changed.notify_waiters();
                }
            }
        }
    }

    fn append_persists(&self, commands: &[Command]) {
        for c in commands {
            if let Command::Persist { records, .. } = c {
                self.log.append(records);
            }
        }
    }
}

/// `wall_at_boot` plus the monotonic time since now: the clock the core
/// runs on for one process lifetime. Under madsim the monotonic clock is
/// simulated time, which no fault steps (a `ClockSkew::jump` moves the wall
/// clock only), as `CLOCK_MONOTONIC` is never stepped by NTP.
fn monotonic_from(wall_at_boot: u64) -> ClockFn {
    let boot = madsim::time::TimeHandle::current().now_instant();
    Arc::new(move || {
        let since = madsim::time::TimeHandle::current().now_instant() - boot;
        wall_at_boot.saturating_add(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    })
}
