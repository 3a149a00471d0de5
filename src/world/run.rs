//! One run of the world: (scenario, workload, seed, plan) -> outcome + trace.
//!
//! Builds the nodes (coordinator, stripe, salesforce, inventory, agents),
//! serves the models, boots the coordinator implementation on its node (and
//! again after each restart, from its disk), starts the agents, runs the
//! safety phase with the plan's faults and the liveness phase without, and
//! returns the services' ground truth, the coordinator's durable log and
//! the agents' records — the checkers' inputs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::agent::{run_agent, AgentPlan, AgentRecord};
use super::wire::{self, Request, Response, COORDINATOR, INVENTORY, SALESFORCE, STRIPE};
use super::{CoordinatorEnv, CoordinatorImpl, SagaService};
use crate::saga::{LogRecord, SagaInput};
use crate::scenario::Scenario;
use crate::services::inventory::{Inventory, InventoryGroundTruth, InventoryRequest};
use crate::services::salesforce::{
    valid_custom_object, Salesforce, SalesforceConfig, SalesforceGroundTruth,
};
use crate::services::stripe::{Stripe, StripeGroundTruth};
use crate::services::user::{UserGroundTruth, UserModel};
use crate::services::ServiceModel;
use crate::sim::disk::Durable;
use crate::sim::faults::{EnvKind, FaultPlan, OperatorTarget, Topology};
use crate::sim::net::{Handler, NetStats};
use crate::sim::rng::{between, mix};
use crate::sim::serve::{serve_model, ServiceLatency};
use crate::sim::{simulate, Net, PhaseReport, World};
use crate::trace::{Trace, TraceMode};
use crate::workload::{Operation, Workload};

/// Everything a run leaves for the checkers and reports.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The scenario's name.
    pub scenario: String,
    /// The declared saga the callers asked for.
    pub workload: Arc<Workload>,
    /// The coordinator implementation's name.
    pub coordinator: String,
    /// Whether the coordinator keeps sagasim's saga log (`log` is then
    /// judged by the `saga-log:*` checks).
    pub uses_saga_log: bool,
    /// The seed the run was a function of.
    pub seed: u64,
    /// Shared with the world that ran it (plans run to hundreds of faults).
    pub plan: Arc<FaultPlan>,
    /// When the phases ended, whether the run converged, crash and pause
    /// counts.
    pub phases: PhaseReport,
    /// What Stripe applied, at the end of the run.
    pub stripe: StripeGroundTruth,
    /// What Salesforce applied, at the end of the run.
    pub salesforce: SalesforceGroundTruth,
    /// What the PMS applied (holds, bookings), at the end of the run.
    pub inventory: InventoryGroundTruth,
    /// Each user service's ground truth, in the workload's order.
    pub user: Vec<UserGroundTruth>,
    /// The coordinator's durable log, with fsync times.
    pub log: Vec<Durable<LogRecord>>,
    /// How many of the coordinator's service calls got each answer, by
    /// step label, service, request kind and response class (see
    /// [`wire::Services`]; not part of the trace).
    pub calls: BTreeMap<wire::CallKey, u64>,
    /// What each caller was told, by agent number order.
    pub agents: Vec<AgentRecord>,
    /// What each agent asked for, by agent number order.
    pub inputs: Vec<SagaInput>,
    /// What the transport did (calls, drops, duplicates, timeouts…).
    pub net: NetStats,
    /// Whether the coordinator reported itself quiescent at the end.
    pub coordinator_quiescent: bool,
}

/// Node names of a scenario's world without user services, in fixed order.
pub fn node_names(s: &Scenario) -> Vec<String> {
    node_names_with(s, &[])
}

/// Node names of a scenario's world with the user services `extra` (after
/// the built-in services, before the agents).
pub fn node_names_with(s: &Scenario, extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [COORDINATOR, STRIPE, SALESFORCE, INVENTORY]
        .iter()
        .map(|n| n.to_string())
        .collect();
    v.extend(extra.iter().cloned());
    v.extend((1..=s.workload.agents).map(wire::agent));
    v
}

/// The nodes and links faults may name (no user services).
pub fn topology(s: &Scenario) -> Topology {
    topology_with(s, &[])
}

/// The nodes and links faults may name, with the user services `extra`.
pub fn topology_with(s: &Scenario, extra: &[String]) -> Topology {
    let nodes = node_names_with(s, extra);
    let mut services: Vec<String> = vec![STRIPE.into(), SALESFORCE.into(), INVENTORY.into()];
    services.extend(extra.iter().cloned());
    let mut links: Vec<(String, String)> = services
        .iter()
        .map(|svc| (COORDINATOR.to_string(), svc.clone()))
        .collect();
    links.extend((1..=s.workload.agents).map(|n| (wire::agent(n), COORDINATOR.to_string())));
    let mut crashable = vec![COORDINATOR.to_string()];
    crashable.extend(services.iter().cloned());
    crashable.extend((1..=s.workload.agents).map(wire::agent));
    Topology {
        links,
        crashable,
        services,
        nodes,
    }
}

/// The plan of a seed: the scenario's fixed plan, or the seed's swarm plan.
pub fn plan_for(s: &Scenario, seed: u64) -> FaultPlan {
    plan_for_with(s, &[], seed)
}

/// The plan of a seed for a world with the user services `extra`: the
/// seed's workload draw (within `[swarm]`), the swarm's faults on the
/// world that draw makes, and the environment events. The scenario's name
/// is mixed into the seed, so seed `n` of two scenarios that share a
/// topology and profile draws two independent plans.
pub fn plan_for_with(s: &Scenario, extra: &[String], seed: u64) -> FaultPlan {
    if let Some(p) = &s.plan {
        return p.clone();
    }
    let seed = mix(seed, &[0x5ce4_a210, name_word(&s.name)]);
    let workload = s.draw_workload(seed);
    let drawn = FaultPlan {
        workload,
        ..FaultPlan::default()
    };
    let d = s.drawn(&drawn);
    let mut plan = FaultPlan::swarm(
        seed,
        &d.faults,
        &topology_with(&d, extra),
        d.phases.safety_ms,
    );
    let rooms = OperatorTarget {
        service: INVENTORY.into(),
        room_type: d.workload.room_type.clone(),
        capacity: d.inventory.room_types[&d.workload.room_type],
    };
    plan.events = FaultPlan::draw_events(
        seed,
        &d.faults,
        d.phases.safety_ms,
        Some(&rooms),
        Some(STRIPE),
        Some(SALESFORCE),
    );
    plan.draw_clock_jumps(
        seed,
        &d.faults,
        d.phases.safety_ms,
        &[COORDINATOR, INVENTORY],
    );
    plan.draw_long_pauses(seed, &d.faults, d.phases.safety_ms, &[COORDINATOR]);
    plan.workload = drawn.workload;
    plan
}

/// Whether `plan` can run in `s`'s world with the user services `extra`:
/// its workload draw makes a valid scenario, and its faults name only nodes
/// and links of the world that draw makes. Check every plan that comes
/// from a file with it.
pub fn check_plan_with(s: &Scenario, extra: &[String], plan: &FaultPlan) -> Result<(), String> {
    let drawn = s.for_plan(plan)?;
    plan.validate(&topology_with(&drawn, extra))
        .map_err(|e| e.to_string())
}

/// A scenario name as one word for [`mix`] (FNV-1a: stable across
/// platforms and releases, unlike `std`'s hasher).
fn name_word(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The user service names of `workload`.
pub fn user_services(workload: &Workload) -> Vec<String> {
    workload.services().iter().map(|u| u.name.clone()).collect()
}

/// The scenario's Salesforce org with every custom object the workload's
/// steps write added (in step order, after the scenario's own).
fn org_config(s: &Scenario, workload: &Workload) -> SalesforceConfig {
    let mut config = s.salesforce.clone();
    for step in workload.steps() {
        if let Operation::SalesforceUpsert { records, undo, .. } = &step.op {
            for r in records.iter().chain(undo) {
                if valid_custom_object(&r.object) && !config.custom_objects.contains(&r.object) {
                    config.custom_objects.push(r.object.clone());
                }
            }
        }
    }
    config
}

type Slot = Arc<Mutex<Option<Arc<dyn SagaService>>>>;

/// Apply one environment event to the model it names (on that node's
/// clock), and trace it.
fn apply_event(
    world: &World,
    what: &EnvKind,
    stripe: &Mutex<Stripe>,
    salesforce: &Mutex<Salesforce>,
    inventory: &Mutex<Inventory>,
) {
    match what {
        EnvKind::RoomType {
            service,
            room_type,
            capacity,
            out_of_order,
        } => {
            let req = InventoryRequest::SetRoomType {
                room_type: room_type.clone(),
                capacity: *capacity,
                out_of_order: *out_of_order,
            };
            let now = world.clock_ms(service);
            let resp = inventory.lock().expect("inventory").handle(now, req, None);
            crate::emit!(
                "inventory",
                "operator",
                "sets {room_type} to {capacity} rooms{}: {}",
                if *out_of_order { ", out of order" } else { "" },
                resp.status
            );
        }
        EnvKind::AuthorizationsExpire { service } => {
            let now = world.clock_ms(service);
            let n = stripe.lock().expect("stripe").expire_authorizations(now);
            crate::emit!("stripe", "network", "ends {n} uncaptured authorization(s)");
        }
        EnvKind::SessionsRevoked { .. } => {
            let n = salesforce.lock().expect("salesforce").revoke_sessions();
            crate::emit!("salesforce", "admin", "revokes {n} session(s)");
        }
        EnvKind::RecordDeleted { service, nth } | EnvKind::RecordRestored { service, nth } => {
            let now = world.clock_ms(service);
            let deletes = matches!(what, EnvKind::RecordDeleted { .. });
            let mut org = salesforce.lock().expect("salesforce");
            let (record, verb, bin) = if deletes {
                (
                    org.delete_by_admin(now, *nth),
                    "deletes",
                    "to the Recycle Bin",
                )
            } else {
                (
                    org.restore_by_admin(now, *nth),
                    "restores",
                    "from the Recycle Bin",
                )
            };
            match record {
                Some(r) => crate::emit!(
                    "salesforce",
                    "admin",
                    "{verb} {} {} ext={} ({bin})",
                    r.object,
                    r.id,
                    r.external_id.as_deref().unwrap_or("-")
                ),
                None => crate::emit!(
                    "salesforce",
                    "admin",
                    "finds no record to {}",
                    if deletes { "delete" } else { "restore" }
                ),
            }
        }
        EnvKind::BookingCancelled { service, nth } => {
            let now = world.clock_ms(service);
            match inventory
                .lock()
                .expect("inventory")
                .cancel_at_front_desk(now, *nth)
            {
                Some(b) => crate::emit!(
                    "inventory",
                    "guest",
                    "cancels {} ref={} at the front desk",
                    b.id,
                    b.client_ref.as_deref().unwrap_or("-")
                ),
                None => crate::emit!("inventory", "guest", "finds no booking to cancel"),
            }
        }
    }
}

/// How often the supervisor checks whether the run is done.
const POLL_MS: u64 = 1_000;

/// Start a service node serving `model` (whose state outlives crashes).
fn serve<M>(
    world: &World,
    net: &Net<Request, Response>,
    name: &'static str,
    model: &Arc<Mutex<M>>,
    latency: ServiceLatency,
    unwrap: fn(Request) -> Option<M::Request>,
    wrap: fn(M::Response) -> Response,
) where
    M: ServiceModel + Send + 'static,
    M::Request: Send,
    M::Response: Send,
{
    let (w, n, m) = (world.clone(), net.clone(), model.clone());
    world.start_node(name, move || {
        n.serve(
            name,
            serve_model(
                &w,
                name,
                m.clone(),
                latency,
                unwrap,
                wrap,
                Response::Misrouted,
            ),
        );
        std::future::pending::<()>()
    });
}

fn coordinator_handler(
    service: Arc<dyn SagaService>,
    wait: Duration,
) -> Handler<Request, Response> {
    Arc::new(move |req, _delivery| {
        let service = service.clone();
        Box::pin(async move {
            match req {
                Request::Start(input) => Response::Status(service.start(input, wait).await),
                _ => Response::Misrouted,
            }
        })
    })
}

/// Run one seed of `scenario` with callers asking for `workload`, under
/// `plan`, with coordinator `imp`.
pub fn run(
    scenario: &Scenario,
    workload: &Arc<Workload>,
    seed: u64,
    plan: &FaultPlan,
    mode: TraceMode,
    imp: Arc<dyn CoordinatorImpl>,
) -> (RunOutcome, Trace) {
    run_shared(scenario, workload, seed, Arc::new(plan.clone()), mode, imp)
}

/// [`run`] with a plan the run may keep as it is (no copy: fuzz makes a
/// plan per seed, and copying its call faults' names was 1 % of a seed).
pub fn run_shared(
    scenario: &Scenario,
    workload: &Arc<Workload>,
    seed: u64,
    plan: Arc<FaultPlan>,
    mode: TraceMode,
    imp: Arc<dyn CoordinatorImpl>,
) -> (RunOutcome, Trace) {
    let s = Arc::new(scenario.drawn(&plan));
    let workload = workload.for_scenario(&s);
    let coordinator = imp.name().to_string();
    let uses_saga_log = imp.uses_saga_log();
    simulate(seed, mode, move || async move {
        let names = node_names_with(&s, &user_services(&workload));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let world = World::new(
            seed,
            plan.clone(),
            &refs,
            Duration::from_millis(s.latency.fsync_ms),
        );
        let net: Net<Request, Response> = Net::new(&world, s.latency.net);

        // Services: durable state outside the nodes.
        let mut stripe_config = s.stripe_config();
        if let Some(lag_ms) = plan.search_lag_ms(STRIPE) {
            stripe_config.search_index_delay_ms = lag_ms;
        }
        let stripe = Arc::new(Mutex::new(Stripe::new(stripe_config)));
        let salesforce = Arc::new(Mutex::new(Salesforce::new(org_config(&s, &workload))));
        let inventory = Arc::new(Mutex::new(Inventory::new(s.inventory.clone())));
        serve(
            &world,
            &net,
            STRIPE,
            &stripe,
            s.latency.stripe,
            |r| match r {
                Request::Stripe(x) => Some(x),
                _ => None,
            },
            Response::Stripe,
        );
        serve(
            &world,
            &net,
            SALESFORCE,
            &salesforce,
            s.latency.salesforce,
            |r| match r {
                Request::Salesforce(x) => Some(x),
                _ => None,
            },
            Response::Salesforce,
        );
        serve(
            &world,
            &net,
            INVENTORY,
            &inventory,
            s.latency.inventory,
            |r| match r {
                Request::Inventory(x) => Some(x),
                _ => None,
            },
            Response::Inventory,
        );

        let users: Vec<Arc<Mutex<UserModel>>> = workload
            .services()
            .iter()
            .map(|u| {
                let model = Arc::new(Mutex::new(UserModel::new(&u.name, (u.make)())));
                let (w, n, m) = (world.clone(), net.clone(), model.clone());
                let name = u.name.clone();
                let latency = s.latency.inventory;
                world.start_node(&u.name, move || {
                    n.serve(
                        &name,
                        serve_model(
                            &w,
                            &name,
                            m.clone(),
                            latency,
                            |r| match r {
                                Request::User(x) => Some(x),
                                _ => None,
                            },
                            Response::User,
                            Response::Misrouted,
                        ),
                    );
                    std::future::pending::<()>()
                });
                model
            })
            .collect();

        // The coordinator: booted from its disk at start and every restart.
        let disk = world.disk::<LogRecord>(COORDINATOR);
        let slot: Slot = Arc::default();
        let calls = wire::CallTally::default();
        {
            let env = CoordinatorEnv {
                node: COORDINATOR.into(),
                net: net.clone(),
                disk: disk.clone(),
                clock: {
                    let w = world.clone();
                    Arc::new(move || w.clock_ms(COORDINATOR))
                },
                scenario: s.clone(),
                workload: workload.clone(),
                seed,
                calls: calls.clone(),
            };
            let slot = slot.clone();
            let wait = Duration::from_millis(s.workload.tool_wait_ms);
            world.start_node(COORDINATOR, move || {
                let (imp, env, slot) = (imp.clone(), env.clone(), slot.clone());
                // Boot *inside* the node's task: whatever the coordinator
                // spawns must die with this incarnation (regression
                // `recovery-ran-on-the-supervisor`). The init closure itself
                // runs in the context of whoever calls restart.
                async move {
                    let service = imp.boot(env.clone());
                    *slot.lock().expect("slot") = Some(service.clone());
                    env.net
                        .serve(COORDINATOR, coordinator_handler(service, wait));
                    std::future::pending::<()>().await
                }
            });
        }

        // Agents: what each asks for, built once.
        let inputs: Vec<SagaInput> = (1..=s.workload.agents)
            .map(|n| workload.input(&s, n))
            .collect();
        let records: Vec<Arc<Mutex<AgentRecord>>> = (1..=s.workload.agents)
            .map(|n| {
                Arc::new(Mutex::new(AgentRecord {
                    agent: n,
                    business_key: inputs[n as usize - 1].business_key.clone(),
                    ..AgentRecord::default()
                }))
            })
            .collect();
        for n in 1..=s.workload.agents {
            let name = wire::agent(n);
            let plan = AgentPlan {
                name: name.clone(),
                input: inputs[n as usize - 1].clone(),
                start_at_ms: between(
                    mix(seed, &[0xa9e7, u64::from(n)]),
                    0,
                    s.workload.start_spread_ms,
                ),
                timeout: Duration::from_millis(s.workload.tool_timeout_ms),
                retry: Duration::from_millis(s.workload.agent_retry_ms),
                attempts_max: s.workload.agent_attempts_max,
            };
            let (net, record) = (net.clone(), records[n as usize - 1].clone());
            world.start_node(&name, move || {
                run_agent(net.clone(), plan.clone(), record.clone())
            });
        }

        let done = {
            let (slot, records, net) = (slot.clone(), records.clone(), net.clone());
            move || {
                records
                    .iter()
                    .all(|r| r.lock().expect("agent record").finished)
                    && slot
                        .lock()
                        .expect("slot")
                        .as_ref()
                        .is_some_and(|c| c.is_quiescent())
                    && net.in_flight() == 0
            }
        };
        // Environment events: operators and card networks act on the
        // services' state directly (not through the network), on the
        // service's own clock, in the safety phase only.
        // (No task without events: a task more changes the schedule.)
        let environment = (!plan.events.is_empty()).then(|| {
            let (w, plan) = (world.clone(), plan.clone());
            let (stripe, salesforce, inventory) =
                (stripe.clone(), salesforce.clone(), inventory.clone());
            tokio::spawn(async move {
                for e in &plan.events {
                    let now = crate::sim::clock::elapsed_ms();
                    if e.at_ms > now {
                        tokio::time::sleep(Duration::from_millis(e.at_ms - now)).await;
                    }
                    if !w.faults_on() {
                        return;
                    }
                    apply_event(&w, &e.what, &stripe, &salesforce, &inventory);
                }
            })
        });
        // `done` is polled once a simulated second: each poll is a timer
        // event and a wake-up of this task, and at 250 ms the polls were
        // half of all timer events of a run and a tenth of its cost
        // (callgrind, issue 8). A run ends at most a second later.
        let phases = world
            .run_phases(s.phases.safety_ms, s.phases.liveness_ms, POLL_MS, done)
            .await;

        let coordinator_quiescent = slot
            .lock()
            .expect("slot")
            .as_ref()
            .is_some_and(|c| c.is_quiescent());
        // Break the reference cycles of this run (transport -> handlers ->
        // coordinator -> client -> transport) so its memory is freed.
        if let Some(e) = environment {
            e.abort();
        }
        net.shutdown();
        slot.lock().expect("slot").take();
        world.shutdown().await;
        let truth_at = |node: &str| world.clock_ms(node);
        let stripe_truth = {
            let mut m = stripe.lock().expect("stripe");
            m.tick(truth_at(STRIPE));
            m.ground_truth().clone()
        };
        let salesforce_truth = {
            let mut m = salesforce.lock().expect("salesforce");
            m.tick(truth_at(SALESFORCE));
            m.ground_truth().clone()
        };
        let inventory_truth = {
            let mut m = inventory.lock().expect("inventory");
            m.tick(truth_at(INVENTORY));
            m.ground_truth().clone()
        };
        let user = users
            .iter()
            .map(|m| {
                let mut m = m.lock().expect("user service");
                let name = m.ground_truth().service.clone();
                m.tick(truth_at(&name));
                m.ground_truth().clone()
            })
            .collect();
        RunOutcome {
            scenario: s.name.clone(),
            workload,
            coordinator,
            uses_saga_log,
            seed,
            plan,
            phases,
            stripe: stripe_truth,
            salesforce: salesforce_truth,
            inventory: inventory_truth,
            user,
            log: disk.durable(),
            calls: calls.snapshot(),
            agents: records
                .iter()
                .map(|r| r.lock().expect("agent record").clone())
                .collect(),
            inputs,
            net: net.stats(),
            coordinator_quiescent,
        }
    })
}
