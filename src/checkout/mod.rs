//! The hotel checkout world: the reference saga wired to the simulated
//! services, the agents that call it, and the run of one seed.
//!
//! - `wire` — the messages between nodes;
//! - `client` — the glue from the saga's `StepCall`s to service requests,
//!   and the classification of replies into `Outcome`s;
//! - `agent` — an LLM-agent-like caller: calls the checkout tool, retries
//!   on timeout with the same business key, re-issues after its own crash;
//! - `run` — builds the world for (scenario, seed, plan), runs both phases,
//!   returns the services' ground truth for the checkers.
//!
//! The coordinator node is pluggable: [`CoordinatorImpl`] boots a
//! [`CheckoutService`] on the node (at start and after every restart). Ours,
//! [`SagaCoordinator`], is the reference implementation;
//! [`naive::NaiveCoordinator`] is the baseline it is compared with (an
//! agent loop with try/catch and blind retries).

pub mod agent;
pub mod client;
pub mod naive;
pub mod run;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use crate::saga::driver::{BoxFuture, ClockFn, Driver, SagaLog};
use crate::saga::{hotel_checkout, LogRecord, SagaInput, SagaStatus};
use crate::scenario::Scenario;
use crate::sim::disk::Disk;
use crate::sim::Net;
use wire::{Request, Response};

/// What the world gives a coordinator node when it boots.
#[derive(Clone)]
pub struct CoordinatorEnv {
    /// This node's name (calls go out from it).
    pub node: String,
    pub net: Net<Request, Response>,
    /// The node's durable log (survives crashes; loses unsynced writes).
    pub disk: Disk<LogRecord>,
    /// The node's own clock (ms since the Unix epoch, possibly skewed).
    pub clock: ClockFn,
    pub scenario: Arc<Scenario>,
    pub seed: u64,
}

/// What the world needs from a running coordinator.
pub trait CheckoutService: Send + Sync + 'static {
    /// The checkout tool: start or attach to the checkout for
    /// `input.business_key`; answer once decided, or after `wait` with the
    /// current status.
    fn checkout(&self, input: SagaInput, wait: Duration) -> BoxFuture<SagaStatus>;
    /// Whether this coordinator has nothing left to do (every saga it knows
    /// is terminal). The liveness phase waits for it.
    fn is_quiescent(&self) -> bool;
}

/// A coordinator implementation the world can boot on its node.
pub trait CoordinatorImpl: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Boot on the coordinator node: at start and after every restart.
    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn CheckoutService>;
}

/// The reference saga coordinator (`crate::saga`).
pub struct SagaCoordinator;

struct DiskLog(Disk<LogRecord>);

impl SagaLog for DiskLog {
    fn append(&self, records: &[LogRecord]) {
        for r in records {
            self.0.write(r.clone());
        }
    }

    fn sync(&self) -> BoxFuture<()> {
        let d = self.0.clone();
        Box::pin(async move { d.fsync().await })
    }

    fn read(&self) -> Vec<LogRecord> {
        self.0.read()
    }
}

struct DriverService(Arc<Driver>);

impl CheckoutService for DriverService {
    fn checkout(&self, input: SagaInput, wait: Duration) -> BoxFuture<SagaStatus> {
        let d = self.0.clone();
        Box::pin(async move { d.checkout(input, wait).await })
    }

    fn is_quiescent(&self) -> bool {
        self.0.all_finalized()
    }
}

impl CoordinatorImpl for SagaCoordinator {
    fn name(&self) -> &'static str {
        "saga"
    }

    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn CheckoutService> {
        let s = &env.scenario;
        let definition = hotel_checkout(s.saga.capture.into(), s.inventory.honour_client_ref);
        let mut config = s.coordinator.clone();
        config.jitter_seed = env.seed;
        let client = Arc::new(client::HotelClient::new(&env));
        let driver = Driver::boot(
            definition,
            config,
            client,
            Arc::new(DiskLog(env.disk.clone())),
            env.clock.clone(),
        )
        .expect("scenario validation checks the coordinator config");
        Arc::new(DriverService(driver))
    }
}
