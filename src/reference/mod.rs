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

use crate::saga::driver::{BoxFuture, Driver, SagaLog};
use crate::saga::{LogRecord, SagaInput, SagaStatus};
use crate::sim::disk::Disk;
use crate::world::{CoordinatorEnv, CoordinatorImpl, SagaService};

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

impl SagaService for DriverService {
    fn start(&self, input: SagaInput, wait: Duration) -> BoxFuture<SagaStatus> {
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

    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn SagaService> {
        let s = &env.scenario;
        let definition = env
            .workload
            .definition(s.inventory.honour_client_ref)
            .expect("Workload::new validated the definition");
        let mut config = s.coordinator.clone();
        config.jitter_seed = env.seed;
        let client = Arc::new(glue::OpClient::new(&env));
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

    fn uses_saga_log(&self) -> bool {
        true
    }
}
