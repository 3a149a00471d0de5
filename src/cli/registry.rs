//! What the CLI runs: the coordinators it knows by name, and the workload
//! a scenario runs. The bundled binary knows the naive baseline and the
//! reference coordinator and runs the hotel checkout;
//! [`super::main_with`] lets a user's own binary host the same CLI with
//! their coordinators, their workload and their invariants.
//!
//! Set once per process, before any subcommand runs (the CLI is not
//! simulated code; nothing here is read inside a run).

use std::sync::{Arc, OnceLock};

use crate::check::UserInvariant;
use crate::harness::{known_coordinators, run_checked_with, shrink_failure_with, Checked};
use crate::scenario::Scenario;
use crate::sim::faults::Topology;
use crate::sim::FaultPlan;
use crate::trace::TraceMode;
use crate::workload::Workload;
use crate::world::run::{check_plan_with, plan_for_with, topology_with, user_services};
use crate::world::CoordinatorImpl;

/// The coordinators, workload and invariants a CLI binary serves.
#[derive(Clone, Default)]
pub struct Registry {
    coordinators: Vec<Arc<dyn CoordinatorImpl>>,
    workload: Option<Arc<Workload>>,
    invariants: Vec<UserInvariant>,
}

impl Registry {
    /// Only the bundled coordinators (`naive`, `saga`) and the scenario's
    /// bundled workload.
    pub fn new() -> Registry {
        Registry {
            coordinators: known_coordinators(),
            ..Registry::default()
        }
    }

    /// Add a coordinator, known by its `name()` (a later one of the same
    /// name replaces an earlier one).
    pub fn coordinator(mut self, imp: impl CoordinatorImpl) -> Registry {
        let imp: Arc<dyn CoordinatorImpl> = Arc::new(imp);
        self.coordinators.retain(|c| c.name() != imp.name());
        self.coordinators.push(imp);
        self
    }

    /// Run this workload for every scenario (instead of the bundled one).
    pub fn workload(mut self, w: Arc<Workload>) -> Registry {
        self.workload = Some(w);
        self
    }

    /// Judge every run with this invariant too.
    pub fn invariant(mut self, inv: UserInvariant) -> Registry {
        self.invariants.push(inv);
        self
    }

    /// The invariants of your own every run is judged with too.
    pub fn invariants(&self) -> &[UserInvariant] {
        &self.invariants
    }

    /// The coordinators, by name.
    pub fn coordinators(&self) -> &[Arc<dyn CoordinatorImpl>] {
        &self.coordinators
    }

    /// The workload `s` runs.
    pub fn workload_for(&self, s: &Scenario) -> Arc<Workload> {
        self.workload
            .clone()
            .unwrap_or_else(|| crate::workloads::for_scenario(s))
    }

    fn extra(&self, s: &Scenario) -> Vec<String> {
        user_services(&self.workload_for(s))
    }

    /// The nodes and links faults may name in `s`'s world.
    pub fn topology(&self, s: &Scenario) -> Topology {
        topology_with(s, &self.extra(s))
    }

    /// Whether `plan` (from a file) can run in `s`'s world (see
    /// [`check_plan_with`]).
    pub fn check_plan(&self, s: &Scenario, plan: &FaultPlan) -> Result<(), String> {
        check_plan_with(s, &self.extra(s), plan)
    }

    /// Seed `seed`'s plan in `s`'s world.
    pub fn plan(&self, s: &Scenario, seed: u64) -> FaultPlan {
        plan_for_with(s, &self.extra(s), seed)
    }

    /// Run and check one seed.
    pub fn run(
        &self,
        s: &Scenario,
        seed: u64,
        plan: &FaultPlan,
        mode: TraceMode,
        imp: Arc<dyn CoordinatorImpl>,
    ) -> Checked {
        let w = self.workload_for(s);
        run_checked_with(s, &w, &self.invariants, seed, plan, mode, imp)
    }

    /// Run and check seed `seed`'s own plan (the workload built once).
    pub fn run_seed(
        &self,
        s: &Scenario,
        seed: u64,
        mode: TraceMode,
        imp: Arc<dyn CoordinatorImpl>,
    ) -> Checked {
        let w = self.workload_for(s);
        let plan = Arc::new(plan_for_with(s, &user_services(&w), seed));
        crate::harness::run_checked_shared(s, &w, &self.invariants, seed, plan, mode, imp)
    }

    /// Shrink a failing plan: (plan, invariant, runs), or `None` if it
    /// does not fail.
    pub fn shrink(
        &self,
        s: &Scenario,
        seed: u64,
        plan: &FaultPlan,
        imp: Arc<dyn CoordinatorImpl>,
    ) -> Option<(FaultPlan, String, usize)> {
        let w = self.workload_for(s);
        shrink_failure_with(s, &w, &self.invariants, seed, plan, imp)
    }
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Set the process's registry (the first call wins).
pub fn install(r: Registry) {
    let _ = REGISTRY.set(r);
}

/// The process's registry (the bundled one if none was installed).
pub fn get() -> &'static Registry {
    REGISTRY.get_or_init(Registry::new)
}
