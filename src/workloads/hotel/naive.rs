//! The naive orchestrator: the baseline the saga coordinator is measured
//! against.
//!
//! This is what an LLM agent with a tool loop and try/catch tends to be, and
//! what many hand-written integrations are: call the tools in order, wrap
//! each in try/catch, retry what failed a few times, and on an error that
//! survives the retries undo what it *believes* it did. It is a documented
//! library type (not a test mutant) so that `sagasim compare` can put
//! numbers on what the architecture buys; plug in your own variant the same
//! way, by implementing [`CoordinatorImpl`] (and listing it in
//! [`crate::harness::known_coordinators`] for `sagasim compare`).
//!
//! # The flow, per `checkout` tool call
//!
//! 1. hold a room (PMS `Hold`);
//! 2. charge the card (Stripe `CreatePaymentIntent`, automatic capture,
//!    `confirm: true`) — in every scenario, also `authorize-capture`;
//! 3. record the booking and the opportunity in Salesforce;
//! 4. confirm the room (PMS `Confirm`);
//! 5. set the booking `Confirmed` and the opportunity `Closed Won`
//!    (Salesforce `Update` by the ids step 3 returned).
//!
//! Salesforce wants a session: it logs in at its first Salesforce call,
//! keeps the token in memory (a restart logs in again), and on a 401
//! `INVALID_SESSION_ID` logs in again and resends the call once — what
//! any Salesforce client library does, and not what this baseline is
//! about.
//!
//! Each call is tried once and then retried up to [`RETRIES_MAX`] times,
//! [`RETRY_PAUSE_MS`] apart, on *any* failure (timeout, refused, 5xx, 429,
//! 4xx alike). If a step still fails, it compensates in reverse order what
//! it believes it did — mark the CRM records `Cancelled` / `Closed Lost`,
//! release its hold, refund its charge — each with the same retries, and
//! answers `Compensated` (or `NeedsOperator` if a compensation failed).
//!
//! # Its mistakes, and what each breaks
//!
//! | mistake | consequence | flagged by |
//! |---|---|---|
//! | Stripe create **without an idempotency key**, retried after a timeout or 5xx | the first charge landed, its reply was lost: the retry charges again, and the first charge is never refunded (it does not know it exists) | `no-double-charge`; metric *double charges* |
//! | **no idempotent start**: every tool call runs the flow again, and the agent calls again after its tool timeout while the first flow still runs | two flows for one reservation: two charges, two holds (starving other guests of rooms), possibly two rooms; the second flow's upsert resets the first one's confirmed CRM records to pending, and if it fails its compensation cancels them | `no-double-charge`; *double charges*, *room booked twice*, *room booked, CRM not confirmed*, *answers contradicted* |
//! | PMS hold with a **fresh reference per call** (a request id generated inside the retry loop; the PMS cannot deduplicate it) | a retried hold whose first reply was lost holds a second room that nobody releases | *orphaned holds* (until the TTL) |
//! | Salesforce: the first try is an upsert by external id, a **retry is a plain `Create`** (the "create record" tool reached for when "save" failed) | a retry of a write that landed gets `DUPLICATE_VALUE`, which it takes for failure: it rolls back a checkout whose CRM record exists, and never learns that record's id, so it cannot cancel it (the article's case) | `all-or-nothing`; *CRM left open, no room*; *answers contradicted* |
//! | **compensates on any error it sees, without reconciling** (a timeout is not "failed") | refunds and releases a checkout whose timed-out step landed | *stale state*; *answers contradicted* |
//! | **no pivot**: a failure after the room is confirmed still rolls back | refunds a confirmed stay; the release of a confirmed hold fails | *room booked, not paid*; *NeedsOperator* |
//! | compensations **without keys and without checking** what is there (it refunds its own idea of the charge) | a refund whose reply was lost is retried and refused (`charge_already_refunded`): it reports a failed compensation | *NeedsOperator* |
//! | **no intent log**: it ignores its disk; after a crash it has forgotten every flow in progress | holds never released, charges never refunded, CRM records left pending | *paid, no room*, *orphaned holds*; `all-or-nothing`, `no-orphan-hold` |
//! | **no reconciliation, no sweep** | nothing ever looks for effects it could not see | everything above stays after quiescence |
//!
//! The checkers are not told about it: they judge it black-box, from the
//! services' ground truth and what each agent was told, as any
//! coordinator. So that they (and `crate::metrics`) can attribute its
//! effects, it labels them as the attribution contract asks (a sensible
//! integration would too) — Stripe metadata `business_key`, Salesforce
//! external id `saga-{business_key}`, PMS reference
//! `saga-{business_key}#{nonce}`. It keeps no saga log, so the `saga-log:*`
//! checks do not apply to it; the business invariants (`no-double-charge`,
//! `all-or-nothing`, `caller-told-truth`, `no-orphan-hold`, `at-most-once`)
//! are what catch it.
//!
//! `is_quiescent` is "no flow in progress in this incarnation" (a crashed
//! incarnation's flows died with it). The tool's `wait` is ignored: the
//! call answers when the flow ends, as a blocking tool does.
//!
//! Not here: anything clever. Resist fixing it — it is the control group.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::{
    BOOKING, BOOKING_STATUS, OPPORTUNITY, STAGE, STAGE_LOST, STAGE_OPEN, STAGE_WON,
    STATUS_CANCELLED, STATUS_CONFIRMED, STATUS_PENDING,
};
use crate::emit;
use crate::saga::driver::BoxFuture;
use crate::saga::{SagaId, SagaInput, SagaStatus};
use crate::services::inventory::{HoldStatus, InventoryBody, InventoryRequest, InventoryResponse};
use crate::services::salesforce::{
    SalesforceBody, SalesforceCall, SalesforceRequest, SalesforceResponse, EXTERNAL_ID_FIELD,
};
use crate::services::stripe::{CaptureMethod, PaymentIntentStatus, StripeRequest, StripeResponse};
use crate::sim::clock::elapsed_ms;
use crate::sim::CallError;
use crate::workload::META_BUSINESS_KEY;
use crate::world::wire::Services;
use crate::world::{CoordinatorEnv, CoordinatorImpl, SagaService};

/// Retries after the first try of any call (so at most 4 tries).
pub const RETRIES_MAX: u32 = 3;
/// Pause before each retry (fixed: no backoff, no jitter).
pub const RETRY_PAUSE_MS: u64 = 200;

/// The naive orchestrator (see the module documentation).
pub struct NaiveCoordinator;

impl CoordinatorImpl for NaiveCoordinator {
    fn name(&self) -> &'static str {
        "naive"
    }

    fn boot(&self, env: CoordinatorEnv) -> Arc<dyn SagaService> {
        // The disk is ignored on purpose: no intent log, nothing to recover.
        Arc::new(NaiveService(Arc::new(Naive {
            svc: Services::new(&env),
            hold_ttl_ms: env.scenario.workload.hold_ttl_ms,
            in_progress: AtomicU32::new(0),
            holds_sent: AtomicU64::new(0),
            session: Mutex::new(None),
        })))
    }
}

struct NaiveService(Arc<Naive>);

impl SagaService for NaiveService {
    fn start(&self, input: SagaInput, _wait: Duration) -> BoxFuture<SagaStatus> {
        let naive = self.0.clone();
        Box::pin(async move { naive.checkout(input).await })
    }

    fn is_quiescent(&self) -> bool {
        self.0.in_progress.load(Ordering::SeqCst) == 0
    }
}

/// One incarnation's state: only counters; everything else lives in the
/// flows' stack frames and dies with them.
struct Naive {
    svc: Services,
    hold_ttl_ms: u64,
    in_progress: AtomicU32,
    holds_sent: AtomicU64,
    /// The Salesforce access token (memory only).
    session: Mutex<Option<String>>,
}

/// What one flow believes it did (it never asks the services).
#[derive(Debug, Default)]
struct Believed {
    hold: Option<String>,
    payment_intent: Option<String>,
    crm_booking: Option<String>,
    crm_opportunity: Option<String>,
}

/// Counts a flow as in progress until it ends or its task is dropped.
struct InProgress<'a>(&'a AtomicU32);

impl<'a> InProgress<'a> {
    fn enter(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        InProgress(counter)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        let before = self.0.fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "in-progress counter underflow");
    }
}

type Tried<T> = Result<T, String>;

fn net_error(e: CallError) -> String {
    e.to_string()
}

impl Naive {
    async fn checkout(&self, input: SagaInput) -> SagaStatus {
        let _flow = InProgress::enter(&self.in_progress);
        let key = input.business_key.clone();
        emit!(self.svc.node, "naive-start", "{key}");
        let mut believed = Believed::default();
        let status = match self.forward(&input, &mut believed).await {
            Ok(()) => SagaStatus::Completed,
            Err(failure) => self.compensate(&input, &believed, failure).await,
        };
        emit!(self.svc.node, "naive-answer", "{key}: {status:?}");
        assert!(status.is_decided(), "the naive flow always decides");
        status
    }

    async fn forward(&self, input: &SagaInput, believed: &mut Believed) -> Tried<()> {
        let hold = self.retried("hold_room", |_| self.hold(input)).await?;
        believed.hold = Some(hold.clone());
        let pi = self.retried("charge", |_| self.charge(input)).await?;
        believed.payment_intent = Some(pi);
        let booking_fields = booking_fields(input, STATUS_PENDING);
        let booking = self
            .retried("crm_booking", |n| {
                self.crm_save(input, BOOKING, booking_fields.clone(), n)
            })
            .await?;
        believed.crm_booking = Some(booking.clone());
        let opportunity_fields = opportunity_fields(input, STAGE_OPEN);
        let opportunity = self
            .retried("crm_opportunity", |n| {
                self.crm_save(input, OPPORTUNITY, opportunity_fields.clone(), n)
            })
            .await?;
        believed.crm_opportunity = Some(opportunity.clone());
        self.retried("confirm_room", |_| self.confirm(&hold))
            .await?;
        self.retried("crm_confirm", |_| {
            self.crm_update(BOOKING, &booking, BOOKING_STATUS, STATUS_CONFIRMED)
        })
        .await?;
        self.retried("crm_close_won", |_| {
            self.crm_update(OPPORTUNITY, &opportunity, STAGE, STAGE_WON)
        })
        .await?;
        Ok(())
    }

    /// Undo, in reverse order, what the flow believes it did.
    async fn compensate(
        &self,
        input: &SagaInput,
        believed: &Believed,
        failure: String,
    ) -> SagaStatus {
        emit!(
            self.svc.node,
            "naive-compensate",
            "{}: {failure}; undoing {believed:?}",
            input.business_key
        );
        let mut failed: Vec<String> = Vec::new();
        if let Some(id) = &believed.crm_opportunity {
            if let Err(e) = self
                .retried("undo crm_opportunity", |_| {
                    self.crm_update(OPPORTUNITY, id, STAGE, STAGE_LOST)
                })
                .await
            {
                failed.push(e);
            }
        }
        if let Some(id) = &believed.crm_booking {
            if let Err(e) = self
                .retried("undo crm_booking", |_| {
                    self.crm_update(BOOKING, id, BOOKING_STATUS, STATUS_CANCELLED)
                })
                .await
            {
                failed.push(e);
            }
        }
        if let Some(id) = &believed.hold {
            if let Err(e) = self.retried("release", |_| self.release(id)).await {
                failed.push(e);
            }
        }
        if let Some(id) = &believed.payment_intent {
            if let Err(e) = self.retried("refund", |_| self.refund(id)).await {
                failed.push(e);
            }
        }
        if failed.is_empty() {
            SagaStatus::Compensated { reason: failure }
        } else {
            SagaStatus::NeedsOperator {
                reason: format!("{failure}; compensation failed: {}", failed.join("; ")),
            }
        }
    }

    /// Try `call`, then retry it up to `RETRIES_MAX` times on any error.
    /// `call(n)` gets the try number (0 = first).
    async fn retried<T, F, Fut>(&self, what: &str, mut call: F) -> Tried<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Tried<T>>,
    {
        let mut last = String::new();
        for n in 0..=RETRIES_MAX {
            if n > 0 {
                tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
            }
            match call(n).await {
                Ok(t) => return Ok(t),
                Err(e) => {
                    emit!(self.svc.node, "naive-error", "{what} try {}: {e}", n + 1);
                    last = e;
                }
            }
        }
        Err(format!("{what} failed {} times: {last}", RETRIES_MAX + 1))
    }

    // ---- calls -------------------------------------------------------------

    async fn stripe(&self, req: StripeRequest) -> Tried<StripeResponse> {
        self.svc.stripe(req).await.map_err(net_error)
    }

    /// `req` under its session (a login first if it has none); after a
    /// 401 `INVALID_SESSION_ID`, one login and one resend.
    async fn salesforce(&self, req: SalesforceRequest) -> Tried<SalesforceResponse> {
        let token = match self.token() {
            Some(t) => t,
            None => self.login().await?,
        };
        let r = self
            .svc
            .salesforce(SalesforceCall::api(&token, req.clone()))
            .await
            .map_err(net_error)?;
        if !r.is_invalid_session() {
            return Ok(r);
        }
        let token = self.login().await?;
        self.svc
            .salesforce(SalesforceCall::api(&token, req))
            .await
            .map_err(net_error)
    }

    fn token(&self) -> Option<String> {
        self.session.lock().expect("session").clone()
    }

    async fn login(&self) -> Tried<String> {
        let r = self
            .svc
            .salesforce(SalesforceCall::Login)
            .await
            .map_err(net_error)?;
        let token = r
            .access_token()
            .ok_or_else(|| format!("salesforce login {}: {:?}", r.status, r.error_code()))?
            .to_owned();
        *self.session.lock().expect("session") = Some(token.clone());
        Ok(token)
    }

    async fn inventory(&self, req: InventoryRequest) -> Tried<InventoryResponse> {
        self.svc.inventory(req).await.map_err(net_error)
    }

    /// A hold labelled with a fresh reference per call: attributable, but
    /// never deduplicated.
    async fn hold(&self, input: &SagaInput) -> Tried<String> {
        let n = self.holds_sent.fetch_add(1, Ordering::SeqCst);
        let client_ref = format!(
            "{}#{}.{n}",
            SagaId::for_business_key(&input.business_key).as_str(),
            elapsed_ms()
        );
        let r = self
            .inventory(InventoryRequest::Hold {
                room_type: input.param("room_type").unwrap_or_default().to_string(),
                first_night: param_u32(input, "first_night"),
                nights: param_u32(input, "nights"),
                ttl_ms: Some(self.hold_ttl_ms),
                client_ref: Some(client_ref),
            })
            .await?;
        match &r.body {
            InventoryBody::Hold(h) if h.status == HoldStatus::Active => Ok(h.id.clone()),
            other => Err(format!("pms {}: {other:?}", r.status)),
        }
    }

    async fn confirm(&self, hold_id: &str) -> Tried<()> {
        let r = self
            .inventory(InventoryRequest::Confirm {
                hold_id: hold_id.to_string(),
            })
            .await?;
        match &r.body {
            InventoryBody::Booking(_) => Ok(()),
            other => Err(format!("pms {}: {other:?}", r.status)),
        }
    }

    async fn release(&self, hold_id: &str) -> Tried<()> {
        let r = self
            .inventory(InventoryRequest::Release {
                hold_id: hold_id.to_string(),
            })
            .await?;
        if r.is_success() {
            Ok(())
        } else {
            Err(format!("pms {}: {:?}", r.status, r.body))
        }
    }

    /// A charge without an idempotency key.
    async fn charge(&self, input: &SagaInput) -> Tried<String> {
        let metadata: BTreeMap<String, String> =
            [(META_BUSINESS_KEY.to_string(), input.business_key.clone())].into();
        let r = self
            .stripe(StripeRequest::CreatePaymentIntent {
                idempotency_key: None,
                customer: input.customer.clone(),
                amount_cents: input.amount_cents,
                currency: "usd".into(),
                capture_method: CaptureMethod::Automatic,
                confirm: true,
                metadata,
            })
            .await?;
        match r.payment_intent() {
            Some(pi) if pi.status == PaymentIntentStatus::Succeeded => Ok(pi.id.clone()),
            _ => Err(format!("stripe {}: {:?}", r.status, r.error_code())),
        }
    }

    /// A full refund without an idempotency key and without looking first.
    async fn refund(&self, payment_intent: &str) -> Tried<()> {
        let r = self
            .stripe(StripeRequest::CreateRefund {
                idempotency_key: None,
                payment_intent: payment_intent.to_string(),
                amount_cents: None,
            })
            .await?;
        if r.is_success() {
            Ok(())
        } else {
            Err(format!("stripe {}: {:?}", r.status, r.error_code()))
        }
    }

    /// First try: upsert by external id. Retries: a plain create (with the
    /// external id among the fields), which duplicates or collides.
    async fn crm_save(
        &self,
        input: &SagaInput,
        object: &str,
        mut fields: BTreeMap<String, Value>,
        try_number: u32,
    ) -> Tried<String> {
        let ext = SagaId::for_business_key(&input.business_key)
            .as_str()
            .to_string();
        let req = if try_number == 0 {
            SalesforceRequest::Upsert {
                object: object.into(),
                external_id: ext,
                fields,
                if_unmodified_since_ms: None,
            }
        } else {
            fields.insert(EXTERNAL_ID_FIELD.to_string(), json!(ext));
            SalesforceRequest::Create {
                object: object.into(),
                fields,
            }
        };
        let r = self.salesforce(req).await?;
        match &r.body {
            SalesforceBody::SaveResult { id, .. } => Ok(id.clone()),
            other => Err(format!("salesforce {}: {other:?}", r.status)),
        }
    }

    async fn crm_update(&self, object: &str, id: &str, field: &str, value: &str) -> Tried<()> {
        let r = self
            .salesforce(SalesforceRequest::Update {
                object: object.into(),
                id: id.to_string(),
                fields: [(field.to_string(), json!(value))].into(),
                if_unmodified_since_ms: None,
            })
            .await?;
        if r.is_success() {
            Ok(())
        } else {
            Err(format!("salesforce {}: {:?}", r.status, r.body))
        }
    }
}

fn param_u32(input: &SagaInput, name: &str) -> u32 {
    input.param(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The booking record (the same fields as the reference saga writes).
fn booking_fields(input: &SagaInput, status: &str) -> BTreeMap<String, Value> {
    super::booking(status).resolve(input)
}

/// The opportunity record.
fn opportunity_fields(input: &SagaInput, stage: &str) -> BTreeMap<String, Value> {
    super::opportunity(stage).resolve(input)
}
