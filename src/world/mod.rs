//! The world a coordinator runs in: the nodes of one run, the messages
//! between them, the callers, and the plug-in point for coordinators. It
//! knows services and a declared [`Workload`], never a particular one.
//!
//! - `wire` — the messages between nodes, and typed service calls;
//! - `agent` — an LLM-agent-like caller: calls the saga tool, retries on
//!   timeout with the same business key, re-issues after its own crash;
//! - `run` — builds the world for (scenario, workload, seed, plan), runs
//!   both phases, returns the services' ground truth for the checkers.
//!
//! The coordinator node is pluggable: a [`CoordinatorImpl`] boots a
//! [`SagaService`] on the node (at start and after every restart). The
//! reference implementation is [`crate::reference::SagaCoordinator`]; a
//! workload may bring coordinators of its own (the hotel checkout brings a
//! naive baseline).
//!
//! Not here: what a particular workload's steps are (the engine only reads
//! a [`Workload`]), judging (`crate::check`).

pub mod agent;
pub mod run;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use crate::saga::driver::{BoxFuture, ClockFn};
use crate::saga::{LogRecord, SagaInput, SagaStatus};
use crate::scenario::Scenario;
use crate::sim::disk::Disk;
use crate::sim::Net;
use crate::workload::Workload;
use wire::{Request, Response};

/// What the world gives a coordinator node when it boots.
#[derive(Clone)]
pub struct CoordinatorEnv {
    /// This node's name (calls go out from it).
    pub node: String,
    /// The run's transport: every call it makes goes through the fault
    /// plan (wrap it in [`wire::Services`] for typed service calls).
    pub net: Net<Request, Response>,
    /// The node's durable log (survives crashes; loses unsynced writes).
    pub disk: Disk<LogRecord>,
    /// The node's own clock (ms since the Unix epoch, possibly skewed).
    pub clock: ClockFn,
    /// The scenario being run (timeouts, coordinator settings, workload
    /// parameters).
    pub scenario: Arc<Scenario>,
    /// The saga the callers ask for.
    pub workload: Arc<Workload>,
    /// The run's seed, for a coordinator that needs seeded jitter (it must
    /// not use any other randomness).
    pub seed: u64,
    /// Where [`wire::Services`] counts its calls' answers (the run's
    /// coverage of response classes; shared by every incarnation).
    pub calls: wire::CallTally,
}

/// What the world needs from a running coordinator.
pub trait SagaService: Send + Sync + 'static {
    /// The saga tool the callers call: start or attach to the saga for
    /// `input.business_key`; answer once decided, or after `wait` with the
    /// current status.
    fn start(&self, input: SagaInput, wait: Duration) -> BoxFuture<SagaStatus>;
    /// Whether this coordinator has nothing left to do (every saga it knows
    /// is terminal). The liveness phase waits for it.
    fn is_quiescent(&self) -> bool;
}

/// A coordinator implementation the world can boot on its node.
pub trait CoordinatorImpl: Send + Sync + 'static {
    /// The name reports, regressions and `--coordinator` know it by
    /// (`"reference"`, `"naive"`, …). In a CLI registry, a later
    /// coordinator of the same name replaces an earlier one.
    fn name(&self) -> &'static str;
    /// Boot on the coordinator node: at start and after every restart.
    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn SagaService>;
    /// Whether this coordinator keeps sagasim's saga log
    /// ([`LogRecord`]s on its disk). Only then are the log checks
    /// (`saga-log:*`) applied; every coordinator is judged on the
    /// black-box invariants.
    fn uses_saga_log(&self) -> bool {
        false
    }
}
