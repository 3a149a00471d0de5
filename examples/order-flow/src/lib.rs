//! An order flow tested with sagasim, as a user would write it in a crate
//! of their own.
//!
//! The saga: **reserve stock** (the PMS as a stock service) → **authorize**
//! the card (Stripe, manual capture) → **record the order** (Salesforce
//! `Order__c`, upsert by external id) → **ship** (a carrier of our own: the
//! point of no return) → confirm the stock → capture → mark the order
//! fulfilled.
//!
//! What this crate brings, and sagasim judges black-box:
//! - [`workload`]: the declaration (steps bound to operations, inputs);
//! - [`Carrier`]: a service of our own, served and faulted like Stripe;
//! - [`ship_after_authorize`]: an invariant of our own;
//! - two coordinators: [`Careful`] (the order flow on sagasim's saga core,
//!   with its durable log, reconciliation and compensation) and [`Hasty`]
//!   (in-memory state, and a realistic bug: a retried authorization gets a
//!   fresh idempotency key).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sagasim::serde_json::{json, Value};
use sagasim::tokio;

use sagasim::check::truth::owner_of;
use sagasim::check::{UserInvariant, Violation};
use sagasim::reference::boot_saga_core;
use sagasim::reference::glue::OpClient;
use sagasim::saga::driver::BoxFuture;
use sagasim::saga::{SagaInput, SagaStatus};
use sagasim::scenario::Scenario;
use sagasim::services::inventory::{HoldStatus, InventoryBody, InventoryRequest};
use sagasim::services::salesforce::{SalesforceCall, SalesforceRequest};
use sagasim::services::stripe::{CaptureMethod, PaymentIntentStatus, StripeRequest};
use sagasim::services::user::{status_of, UserEffect, UserService};
use sagasim::sim::clock::Clocks;
use sagasim::workload::{
    Field, HoldSpec, Operation, SfRecord, Step, Workload, META_BUSINESS_KEY, META_STEP,
};
use sagasim::world::run::RunOutcome;
use sagasim::world::wire::Services;
use sagasim::world::{CoordinatorEnv, CoordinatorImpl, SagaService};

/// The carrier's node name.
pub const CARRIER: &str = "carrier";

/// A carrier API: one shipment per idempotency key; `find` lists the live
/// shipments of a key.
#[derive(Default)]
pub struct Carrier {
    shipments: BTreeMap<String, UserEffect>,
}

impl UserService for Carrier {
    fn handle(&mut self, now_ms: u64, req: &Value) -> Value {
        let key = req["key"].as_str().unwrap_or_default().to_string();
        let live = |s: &&UserEffect| s.label == key && s.live;
        match req["op"].as_str() {
            Some("ship") if !key.is_empty() => {
                if let Some(s) = self.shipments.values().find(live) {
                    return json!({"status": 200, "id": s.id});
                }
                let id = format!("shp_{:04}", self.shipments.len() + 1);
                let effect = UserEffect {
                    id: id.clone(),
                    label: key,
                    live: true,
                    created_ms: now_ms,
                };
                self.shipments.insert(id.clone(), effect);
                json!({"status": 201, "id": id})
            }
            Some("find") => {
                let found: Vec<&str> = self
                    .shipments
                    .values()
                    .filter(live)
                    .map(|s| s.id.as_str())
                    .collect();
                json!({"status": 200, "found": found})
            }
            _ => json!({"status": 400, "error": "bad request"}),
        }
    }

    fn effects(&self) -> Vec<UserEffect> {
        self.shipments.values().cloned().collect()
    }
}

fn order(status: &str) -> SfRecord {
    SfRecord::new(
        "Order__c",
        &[
            ("Status__c", Field::text(status)),
            ("Customer__c", Field::Customer),
            ("Sku__c", Field::Param("sku".into())),
            ("Amount_Cents__c", Field::AmountCents),
        ],
    )
}

/// What customer `n` orders: one unit of the scenario's SKU
/// (`workload.room_type`) at the scenario's price.
pub fn input(s: &Scenario, n: u32) -> SagaInput {
    SagaInput::new(
        &format!("order-{n}"),
        &Scenario::customer(n),
        s.workload.price_cents,
    )
    .with_param("sku", &s.workload.room_type)
    .with_param("day", 1)
}

/// The order flow.
pub fn workload() -> Arc<Workload> {
    let stock = HoldSpec {
        room_type: Field::Param("sku".into()),
        first_night: Field::ParamInt("day".into()),
        nights: Field::Int(1),
    };
    let steps = vec![
        Step::compensatable("reserve_stock", Operation::PmsHold(stock)),
        Step::compensatable("authorize", Operation::StripeAuthorize),
        Step::compensatable(
            "record_order",
            Operation::SalesforceUpsert {
                records: vec![order("Open")],
                undo: vec![order("Cancelled")],
                create_only: true,
            },
        ),
        Step::pivot(
            "ship",
            Operation::Call {
                service: CARRIER.into(),
                action: "ship".into(),
                undo: None,
            },
        ),
        Step::retriable(
            "confirm_stock",
            Operation::PmsConfirm {
                hold: "reserve_stock".into(),
            },
        ),
        Step::retriable(
            "capture",
            Operation::StripeCapture {
                authorization: "authorize".into(),
            },
        ),
        Step::retriable(
            "fulfil_order",
            Operation::SalesforceUpsert {
                records: vec![order("Fulfilled")],
                undo: vec![],
                create_only: false,
            },
        ),
    ];
    let w = Workload::new("order_flow", steps, Arc::new(input))
        .and_then(|w| w.with_service(CARRIER, || Box::<Carrier>::default()))
        .expect("the order flow is a valid workload");
    w.validate_services().expect("every call names a service");
    Arc::new(w)
}

/// Never ship an order whose card was not authorized first: every live
/// shipment of an order comes after an authorization of that order's
/// PaymentIntent (times converted to run time through each node's clock).
pub fn ship_after_authorize() -> UserInvariant {
    UserInvariant::new("ship-after-authorize", |out: &RunOutcome| {
        let clocks = Clocks::new(&out.plan.clocks);
        let keys = out.inputs.iter().map(|i| i.business_key.as_str()).collect();
        let mut authorized: BTreeMap<&str, u64> = BTreeMap::new();
        for pi in out.stripe.payment_intents.values() {
            let (Some(k), Some(at)) = (pi.metadata.get(META_BUSINESS_KEY), pi.authorized_ms) else {
                continue;
            };
            let at = clocks.elapsed_at("stripe", at);
            let first = authorized.entry(k.as_str()).or_insert(at);
            *first = (*first).min(at);
        }
        let mut v = Vec::new();
        for truth in out.user.iter().filter(|u| u.service == CARRIER) {
            for s in truth.effects.iter().filter(|s| s.live) {
                let Some(k) = owner_of(&s.label, &keys) else {
                    continue; // `attributable` reports it
                };
                let shipped = clocks.elapsed_at(CARRIER, s.created_ms);
                if authorized.get(k).is_none_or(|&a| a > shipped) {
                    v.push(Violation {
                        invariant: "ship-after-authorize".into(),
                        business_key: k.to_string(),
                        at_ms: shipped,
                        facts: format!("{} shipped before any authorization", s.id),
                    });
                }
            }
        }
        v
    })
}

// ---- Careful: the order flow on sagasim's saga core ----------------------

/// The order flow on sagasim's saga core: intents logged durably before
/// every call, unknown outcomes reconciled by key, compensation in reverse,
/// recovery from the log after a crash.
pub struct Careful;

impl CoordinatorImpl for Careful {
    fn name(&self) -> &'static str {
        "careful"
    }

    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn SagaService> {
        // The scenario's budgets, the reference glue for the service calls.
        let config = env.scenario.coordinator.clone();
        let client = Arc::new(OpClient::new(&env));
        boot_saga_core(&env, config, client)
    }

    fn uses_saga_log(&self) -> bool {
        true
    }
}

// ---- Hasty: in memory, and a retried authorization gets a new key --------

/// An order flow as it is often first written: state in memory, each call
/// retried a few times, compensation on failure. Its bug: a retried
/// authorization is sent under a *new* idempotency key (`…/authorize/2`),
/// as if a retry were a new request — so an authorization whose reply was
/// lost is authorized twice, and one of them is never captured nor
/// released.
pub struct Hasty;

/// Tries per call.
const TRIES: u32 = 3;
/// Pause between tries.
const PAUSE: Duration = Duration::from_millis(500);

impl CoordinatorImpl for Hasty {
    fn name(&self) -> &'static str {
        "hasty"
    }

    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn SagaService> {
        Arc::new(HastyService(Arc::new(HastyState {
            svc: Services::new(&env),
            orders: Mutex::new(BTreeMap::new()),
            running: AtomicU32::new(0),
        })))
    }
}

struct HastyState {
    svc: Services,
    /// What this incarnation knows: order -> last status. Lost on a crash.
    orders: Mutex<BTreeMap<String, SagaStatus>>,
    running: AtomicU32,
}

struct HastyService(Arc<HastyState>);

impl SagaService for HastyService {
    fn start(&self, input: SagaInput, _wait: Duration) -> BoxFuture<SagaStatus> {
        let st = self.0.clone();
        Box::pin(async move {
            let key = input.business_key.clone();
            {
                let mut orders = st.orders.lock().expect("orders");
                if let Some(s) = orders.get(&key) {
                    return s.clone();
                }
                let running = SagaStatus::Running {
                    step: "reserve_stock".into(),
                    phase: sagasim::saga::Phase::Forward,
                };
                orders.insert(key.clone(), running);
            }
            st.running.fetch_add(1, Ordering::SeqCst);
            let status = st.run(&input).await;
            st.orders
                .lock()
                .expect("orders")
                .insert(key, status.clone());
            st.running.fetch_sub(1, Ordering::SeqCst);
            status
        })
    }

    fn is_quiescent(&self) -> bool {
        self.0.running.load(Ordering::SeqCst) == 0
    }
}

/// What a forward step left to undo.
#[derive(Default)]
struct Done {
    hold: Option<String>,
    intent: Option<String>,
    order: bool,
}

impl HastyState {
    async fn run(&self, input: &SagaInput) -> SagaStatus {
        let mut done = Done::default();
        match self.forward(input, &mut done).await {
            Ok(()) => SagaStatus::Completed,
            Err(reason) => {
                if done.intent.is_some() || done.hold.is_some() || done.order {
                    self.undo(input, &done).await;
                }
                SagaStatus::Compensated { reason }
            }
        }
    }

    /// Retry `call` up to [`TRIES`] times while it errs.
    async fn tried<T, F, Fut>(&self, mut call: F) -> Result<T, String>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let mut last = String::new();
        for attempt in 1..=TRIES {
            match call(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
            tokio::time::sleep(PAUSE).await;
        }
        Err(last)
    }

    async fn forward(&self, input: &SagaInput, done: &mut Done) -> Result<(), String> {
        let key = &input.business_key;
        let sku = input.param("sku").unwrap_or_default().to_string();
        // Stock.
        let hold = self
            .tried(|_| async {
                let req = InventoryRequest::Hold {
                    room_type: sku.clone(),
                    first_night: 1,
                    nights: 1,
                    ttl_ms: None,
                    client_ref: Some(format!("{key}/reserve_stock")),
                };
                match self.svc.inventory(req).await {
                    Ok(r) => match r.body {
                        InventoryBody::Hold(h) if h.status == HoldStatus::Active => Ok(h.id),
                        other => Err(format!("stock: {other:?}")),
                    },
                    Err(e) => Err(format!("stock: {e:?}")),
                }
            })
            .await?;
        done.hold = Some(hold.clone());
        // Card. THE BUG: a new idempotency key on every try.
        let intent = self
            .tried(|attempt| async move {
                let req = StripeRequest::CreatePaymentIntent {
                    idempotency_key: Some(format!("{key}/authorize/{attempt}")),
                    customer: input.customer.clone(),
                    amount_cents: input.amount_cents,
                    currency: "usd".into(),
                    capture_method: CaptureMethod::Manual,
                    confirm: true,
                    metadata: [
                        (META_BUSINESS_KEY.to_string(), key.clone()),
                        (META_STEP.to_string(), "authorize".to_string()),
                    ]
                    .into(),
                };
                match self.svc.stripe(req).await {
                    Ok(r) => match r.payment_intent() {
                        Some(pi) if pi.status == PaymentIntentStatus::RequiresCapture => {
                            Ok(pi.id.clone())
                        }
                        _ => Err(format!("card: stripe {}", r.status)),
                    },
                    Err(e) => Err(format!("card: {e:?}")),
                }
            })
            .await?;
        done.intent = Some(intent.clone());
        // CRM.
        self.tried(|_| self.upsert(input, "Open")).await?;
        done.order = true;
        // Ship: the point of no return.
        self.tried(|_| async {
            let body = json!({"op": "ship", "key": format!("{key}/ship")});
            match self.svc.user(CARRIER, body).await {
                Ok(r) if (200..300).contains(&status_of(&r)) => Ok(()),
                Ok(r) => Err(format!("carrier {}", status_of(&r))),
                Err(e) => Err(format!("carrier: {e:?}")),
            }
        })
        .await?;
        // After shipping, keep going whatever happens (best effort).
        let _ = self
            .tried(|_| async {
                let req = InventoryRequest::Confirm {
                    hold_id: hold.clone(),
                };
                match self.svc.inventory(req).await {
                    Ok(r) if r.is_success() => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
        let intent = &intent;
        let _ = self
            .tried(|attempt| async move {
                let req = StripeRequest::CapturePaymentIntent {
                    idempotency_key: Some(format!("{key}/capture/{attempt}")),
                    id: intent.clone(),
                    amount_to_capture_cents: None,
                };
                match self.svc.stripe(req).await {
                    Ok(r) if r.is_success() => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
        let _ = self.tried(|_| self.upsert(input, "Fulfilled")).await;
        Ok(())
    }

    async fn upsert(&self, input: &SagaInput, status: &str) -> Result<(), String> {
        let req = SalesforceRequest::Upsert {
            object: "Order__c".into(),
            external_id: input.business_key.clone(),
            fields: order(status).resolve(input),
            if_unmodified_since_ms: None,
        };
        // A fresh Salesforce session per write (hasty, but never stale).
        let login = self.svc.salesforce(SalesforceCall::Login).await;
        let token = match login.as_ref().map(|r| r.access_token()) {
            Ok(Some(token)) => token.to_string(),
            other => return Err(format!("crm login: {other:?}")),
        };
        match self.svc.salesforce(SalesforceCall::api(&token, req)).await {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            Ok(r) => Err(format!("crm {}", r.status)),
            Err(e) => Err(format!("crm: {e:?}")),
        }
    }

    /// Undo what it believes it did, in reverse.
    async fn undo(&self, input: &SagaInput, done: &Done) {
        let key = &input.business_key;
        if done.order {
            let _ = self.tried(|_| self.upsert(input, "Cancelled")).await;
        }
        if let Some(id) = &done.intent {
            let _ = self
                .tried(|attempt| async move {
                    let req = StripeRequest::CancelPaymentIntent {
                        idempotency_key: Some(format!("{key}/cancel/{attempt}")),
                        id: id.clone(),
                    };
                    match self.svc.stripe(req).await {
                        Ok(r) if r.is_success() => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                })
                .await;
        }
        if let Some(hold_id) = &done.hold {
            let _ = self
                .tried(|_| async {
                    let req = InventoryRequest::Release {
                        hold_id: hold_id.clone(),
                    };
                    match self.svc.inventory(req).await {
                        Ok(r) if r.is_success() => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                })
                .await;
        }
    }
}
