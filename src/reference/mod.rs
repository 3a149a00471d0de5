//! The reference coordinator as a [`CoordinatorImpl`]: the saga core
//! (`crate::saga`) and its driver, booted on the coordinator node over the
//! node's disk, running whatever [`Workload`](crate::workload::Workload)
//! the callers ask for; `glue` executes the declared operations on the
//! simulated services.
//!
//! Not here: decisions (the saga core), the services (the models).

pub mod glue;

use std::sync::Arc;
use std::time::Duration;

use crate::saga::driver::{BoxFuture, Driver, SagaLog, StepClient};
use crate::saga::{Config, LogRecord, SagaInput, SagaStatus};
use crate::sim::disk::Disk;
use crate::world::{CoordinatorEnv, CoordinatorImpl, SagaService};

/// The reference saga coordinator (`crate::saga`).
pub struct SagaCoordinator;

/// sagasim's saga log on a node's disk (appends, fsync, read back after a
/// crash).
pub struct DiskLog(pub Disk<LogRecord>);

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

impl SagaService for DriverService {
    fn start(&self, input: SagaInput, wait: Duration) -> BoxFuture<SagaStatus> {
        let d = self.0.clone();
        Box::pin(async move { d.checkout(input, wait).await })
    }

    fn is_quiescent(&self) -> bool {
        self.0.all_finalized()
    }
}

/// Boot the saga core on a coordinator node: the workload's definition,
/// `config` (its jitter seeded by the run's seed), `client` for the service
/// calls, sagasim's log on the node's disk. What [`SagaCoordinator`] does
/// with the scenario's `[coordinator]` config and the reference glue; a
/// coordinator of your own can do it with its own config or client.
pub fn boot_saga_core(
    env: &CoordinatorEnv,
    mut config: Config,
    client: Arc<dyn StepClient>,
) -> Arc<dyn SagaService> {
    let definition = env
        .workload
        .definition_with(
            env.scenario.inventory.honour_client_ref,
            !env.scenario.salesforce.others_delete_records,
        )
        .expect("Workload::new validated the definition");
    config.jitter_seed = env.seed;
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

/// The reference coordinator's name (`--coordinator saga`, the default).
pub const NAME: &str = "saga";

impl CoordinatorImpl for SagaCoordinator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn SagaService> {
        let config = env.scenario.coordinator.clone();
        let client = Arc::new(glue::OpClient::new(&env));
        boot_saga_core(&env, config, client)
    }

    fn uses_saga_log(&self) -> bool {
        true
    }
}
