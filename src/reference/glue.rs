//! The reference coordinator's glue between the saga's `StepCall`s and the
//! services: for each declared [`Operation`], which request it sends, how
//! each reply is classified, how its effect is found again and undone.
//!
//! Classification (DESIGN core idea 3): `Applied` (2xx), `Rejected`
//! (definitely not applied: decline, no availability, validation),
//! `Transient` (not applied, retry: 429, lock contention, key in use,
//! connection refused), `Unknown` (timeout, any 5xx: maybe applied).
//!
//! Reconciliation reports *live* effects only (a refunded charge, a released
//! hold, a cancelled record are not found), found by the step's key:
//! Stripe's customer list filtered by `metadata.step_key` (the list is
//! consistent; search lags and is never used), PMS list by `client_ref`,
//! Salesforce query by external id.
//!
//! Keys: a PaymentIntent create carries the step's stable key (a new key
//! could charge twice) until Stripe replays a stored 5xx under it: then it
//! reports `KeyPoisoned`, and the core reconciles (consistent list) and, if
//! nothing is live, sends the next attempt under a fresh key it logged
//! first (`{key}#{n}`); `metadata.step_key` stays the base key, so
//! reconciliation finds every generation's intent. Refund, cancel and capture first *retrieve* the
//! intent and act only on what is still to do; Stripe itself bounds them
//! (no refund above the captured amount, no second capture), so they use
//! `{key}#{attempt}`: a key that once got a 500 is poisoned (Stripe replays
//! the stored 500 forever) and must not block the compensation.
//!
//! Salesforce sessions: the client keeps its OAuth access token in memory
//! (a restarted coordinator has none), logs in lazily before its first
//! Salesforce call (one login at a time: concurrent sagas wait for it and
//! share the token), and on 401 `INVALID_SESSION_ID` (session expired or
//! revoked; nothing applied) logs in again and sends the call once more.
//! A login that fails or times out is `Transient`: a token request applies
//! nothing. A 401 is never `Rejected` — that would compensate a booking
//! whose only fault was a stale token.
//!
//! Labels (the attribution contract of `crate::workload`): Stripe metadata
//! `business_key`, `step`, `step_key`, `saga_id`; PMS client ref = the
//! step's key `saga-K/<step>`; Salesforce external id = the saga id
//! `saga-K`.
//!
//! Not here: retry policy or ordering (the saga core decides).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::emit;
use crate::saga::driver::{BoxFuture, StepClient};
use crate::saga::mutants::{self, Mutant};
use crate::saga::{Op, Outcome, StepCall};
use crate::services::inventory::{
    HoldStatus, InventoryBody, InventoryRequest, InventoryResponse, PmsErrorCode,
};
use crate::services::salesforce::{
    SalesforceBody, SalesforceCall, SalesforceErrorCode, SalesforceRequest, SalesforceResponse,
};
use crate::services::stripe::{
    CaptureMethod, PaymentIntent, PaymentIntentStatus, Refund, RefundStatus, StripeBody,
    StripeErrorCode, StripeRequest, StripeResponse, LIST_LIMIT_MAX,
};
use crate::services::user::status_of;
use crate::sim::CallError;
use crate::workload::{
    HoldSpec, Operation, SfRecord, Workload, META_BUSINESS_KEY, META_SAGA, META_STEP, META_STEP_KEY,
};
use crate::world::wire::{CallLabel, Services};
use crate::world::CoordinatorEnv;

/// Most list pages one reconciliation reads (a limit on everything): 1,000
/// PaymentIntents of one customer.
const LIST_PAGES_MAX: usize = 10;

/// How many times one Salesforce call is sent again after a 401
/// `INVALID_SESSION_ID`, each time under a fresh login: once. A second 401
/// in a row (the new session revoked at once) is `Transient`, and the core
/// retries within its own budget.
const SESSION_RETRIES_MAX: u32 = 1;

/// The reference coordinator's service client (one per incarnation).
#[derive(Clone)]
pub struct OpClient {
    svc: Services,
    workload: Arc<Workload>,
    hold_ttl_ms: u64,
    /// The Salesforce access token, in memory only (a restarted coordinator
    /// logs in again); the lock is held across a login so that concurrent
    /// calls wait for one login instead of each making their own.
    session: Arc<tokio::sync::Mutex<Option<String>>>,
    /// Each step's call labels, by [`Op`] (action, reconcile, compensate).
    labels: Arc<Vec<[Arc<CallLabel>; 3]>>,
}

type Reply<T> = Result<T, CallError>;

fn net_outcome(e: CallError) -> Outcome {
    match e {
        CallError::Timeout => Outcome::unknown("timeout"),
        CallError::Refused => Outcome::transient("connection refused"),
    }
}

impl OpClient {
    /// The glue of a coordinator node: its typed service calls (with the
    /// scenario's timeouts) and the workload it executes.
    pub fn new(env: &CoordinatorEnv) -> Self {
        OpClient {
            svc: Services::new(env),
            workload: env.workload.clone(),
            hold_ttl_ms: env.scenario.workload.hold_ttl_ms,
            session: Arc::new(tokio::sync::Mutex::new(None)),
            labels: Arc::new(
                env.workload
                    .steps()
                    .iter()
                    .map(|s| {
                        [Op::Action, Op::Reconcile, Op::Compensate].map(|op| {
                            Arc::new(CallLabel {
                                step: s.name.clone(),
                                op: op_name(op),
                            })
                        })
                    })
                    .collect(),
            ),
        }
    }

    async fn stripe(&self, req: StripeRequest) -> Reply<StripeResponse> {
        self.svc.stripe(req).await
    }

    /// `req` under the current session (logging in first if there is
    /// none); after a 401 `INVALID_SESSION_ID`, log in again and send it
    /// once more. `Err` is the outcome of a call that did not get an
    /// answer worth classifying: a lost request (`net_outcome`), a failed
    /// login or a second 401 (`Transient`: nothing was applied).
    async fn salesforce(&self, req: SalesforceRequest) -> Result<SalesforceResponse, Outcome> {
        let mut refused = 0;
        loop {
            let token = self.session().await?;
            let call = SalesforceCall::api(&token, req.clone());
            let r = self.svc.salesforce(call).await.map_err(net_outcome)?;
            if !r.is_invalid_session() {
                return Ok(r);
            }
            if mutants::is_active(Mutant::SessionExpiryIsRejection) {
                return Err(Outcome::rejected("salesforce 401 INVALID_SESSION_ID"));
            }
            self.forget_session(&token).await;
            emit!(
                self.svc.node,
                "sf-session",
                "401 INVALID_SESSION_ID: log in again"
            );
            refused += 1;
            if refused > SESSION_RETRIES_MAX {
                return Err(Outcome::transient(
                    "salesforce 401 INVALID_SESSION_ID right after a login",
                ));
            }
        }
    }

    /// The current Salesforce session, after a login if there is none.
    async fn session(&self) -> Result<String, Outcome> {
        let mut slot = self.session.lock().await;
        if let Some(token) = slot.as_ref() {
            return Ok(token.clone());
        }
        let token = match self.svc.salesforce(SalesforceCall::Login).await {
            Err(e) => return Err(Outcome::transient(&format!("salesforce login: {e:?}"))),
            Ok(r) => match r.access_token() {
                Some(t) => t.to_owned(),
                None => {
                    return Err(Outcome::transient(&format!(
                        "salesforce login {} {:?}",
                        r.status,
                        r.error_code()
                    )))
                }
            },
        };
        *slot = Some(token.clone());
        Ok(token)
    }

    /// Drop `token` if it is still the current session (another call may
    /// have logged in meanwhile).
    async fn forget_session(&self, token: &str) {
        let mut slot = self.session.lock().await;
        if slot.as_deref() == Some(token) {
            *slot = None;
        }
    }

    async fn inventory(&self, req: InventoryRequest) -> Reply<InventoryResponse> {
        self.svc.inventory(req).await
    }

    async fn dispatch(&self, call: &StepCall) -> Outcome {
        let Some(step) = self.workload.steps().get(call.step) else {
            return Outcome::rejected(&format!("the workload has no step #{}", call.step));
        };
        match (&step.op, call.op) {
            (Operation::PmsHold(spec), Op::Action) => self.hold(call, spec).await,
            (Operation::PmsHold(_), Op::Reconcile) => self.find_holds(call).await,
            (Operation::PmsHold(_), Op::Compensate) => self.release(call).await,
            (Operation::StripeCharge, Op::Action) => {
                self.create_intent(call, CaptureMethod::Automatic).await
            }
            (Operation::StripeAuthorize, Op::Action) => {
                self.create_intent(call, CaptureMethod::Manual).await
            }
            (Operation::StripeCharge | Operation::StripeAuthorize, Op::Reconcile) => {
                self.find_intents(call).await
            }
            (Operation::StripeCharge | Operation::StripeAuthorize, Op::Compensate) => {
                self.undo_payment(call).await
            }
            (
                Operation::SalesforceUpsert {
                    records,
                    create_only,
                    ..
                },
                Op::Action,
            ) => self.crm_write(call, records, *create_only).await,
            (Operation::SalesforceUpsert { records, undo, .. }, Op::Reconcile) => {
                self.crm_find(call, records, undo).await
            }
            (Operation::SalesforceUpsert { undo, .. }, Op::Compensate) if !undo.is_empty() => {
                self.crm_write(call, &undo_records(call, undo), false).await
            }
            (Operation::PmsConfirm { hold }, Op::Action) => self.confirm(call, hold).await,
            (Operation::PmsConfirm { hold }, Op::Reconcile) => {
                self.find_confirmed(call, hold).await
            }
            (Operation::StripeCapture { authorization }, Op::Action) => {
                self.capture(call, authorization).await
            }
            (Operation::StripeCapture { authorization }, Op::Reconcile) => {
                self.find_captured(call, authorization).await
            }
            (
                Operation::Call {
                    service, action, ..
                },
                Op::Action,
            ) => {
                let body = request_body(action, call);
                self.user_call(service, body).await
            }
            (Operation::Call { service, .. }, Op::Reconcile) => self.user_find(service, call).await,
            (
                Operation::Call {
                    service,
                    undo: Some(undo),
                    ..
                },
                Op::Compensate,
            ) => {
                let mut body = request_body(undo, call);
                body["action_key"] = json!(action_key(call));
                body["target"] = json!(call.target_ref);
                self.user_call(service, body).await
            }
            (op, kind) => {
                Outcome::rejected(&format!("step {} ({op:?}) has no {kind:?}", call.step_name))
            }
        }
    }

    // ---- PMS -------------------------------------------------------------

    async fn hold(&self, call: &StepCall, spec: &HoldSpec) -> Outcome {
        let int = |f: &crate::workload::Field| {
            f.resolve(&call.input)
                .as_i64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        let req = InventoryRequest::Hold {
            room_type: spec.room_type.resolve_str(&call.input),
            first_night: int(&spec.first_night),
            nights: int(&spec.nights),
            ttl_ms: Some(self.hold_ttl_ms),
            client_ref: Some(call.key.clone()),
        };
        match self.inventory(req).await {
            Err(e) => net_outcome(e),
            Ok(r) => match (&r.body, r.status) {
                (InventoryBody::Hold(h), _) if h.status == HoldStatus::Active => {
                    Outcome::applied(&h.id)
                }
                (InventoryBody::Hold(h), _) => {
                    Outcome::rejected(&format!("hold {} is {:?}", h.id, h.status))
                }
                _ => classify_pms(&r),
            },
        }
    }

    async fn list_holds(&self, client_ref: &str) -> Result<Vec<(String, HoldStatus)>, Outcome> {
        let req = InventoryRequest::ListByClientRef {
            client_ref: client_ref.to_string(),
        };
        match self.inventory(req).await {
            Err(e) => Err(net_outcome(e)),
            Ok(r) => match r.body {
                InventoryBody::List { holds, .. } => {
                    Ok(holds.into_iter().map(|h| (h.id, h.status)).collect())
                }
                _ => Err(classify_pms(&r)),
            },
        }
    }

    async fn find_holds(&self, call: &StepCall) -> Outcome {
        match self.list_holds(&call.key).await {
            Err(o) => reconcile_failure(o),
            Ok(holds) => found(
                holds
                    .into_iter()
                    .filter(|(_, s)| matches!(s, HoldStatus::Active | HoldStatus::Confirmed))
                    .map(|(id, _)| id)
                    .collect(),
            ),
        }
    }

    async fn release(&self, call: &StepCall) -> Outcome {
        let targets = match &call.target_ref {
            Some(id) => vec![id.clone()],
            None => match self.list_holds(&action_key(call)).await {
                Err(o) => return o,
                Ok(holds) => holds
                    .into_iter()
                    .filter(|(_, s)| *s == HoldStatus::Active)
                    .map(|(id, _)| id)
                    .collect(),
            },
        };
        for hold_id in targets {
            match self.inventory(InventoryRequest::Release { hold_id }).await {
                Err(e) => return net_outcome(e),
                Ok(InventoryResponse {
                    body: InventoryBody::Released { previous, .. },
                    ..
                }) if mutants::is_active(Mutant::NullCompensationIsError)
                    && previous != Some(HoldStatus::Active) =>
                {
                    return Outcome::rejected("hold not found");
                }
                Ok(r) if r.is_success() => {}
                Ok(r) => return classify_pms(&r),
            }
        }
        Outcome::Applied { reference: None }
    }

    async fn confirm(&self, call: &StepCall, hold: &str) -> Outcome {
        let Some(hold_id) = call.refs.get(hold) else {
            return Outcome::rejected("no hold to confirm");
        };
        let req = InventoryRequest::Confirm {
            hold_id: hold_id.clone(),
        };
        match self.inventory(req).await {
            Err(e) => net_outcome(e),
            Ok(r) => match &r.body {
                InventoryBody::Booking(b) => Outcome::applied(&b.id),
                InventoryBody::Error(_)
                    if r.status < 500
                        && r.status != 429
                        && mutants::is_active(Mutant::RefusedConfirmCountsAsBooked) =>
                {
                    Outcome::applied(hold_id)
                }
                _ => classify_pms(&r),
            },
        }
    }

    async fn find_confirmed(&self, call: &StepCall, hold: &str) -> Outcome {
        let Some(hold_id) = call.refs.get(hold) else {
            return Outcome::NotFound;
        };
        let req = InventoryRequest::GetHold {
            hold_id: hold_id.clone(),
        };
        match self.inventory(req).await {
            Err(e) => reconcile_failure(net_outcome(e)),
            Ok(r) => match &r.body {
                InventoryBody::Hold(h) if h.status == HoldStatus::Confirmed => {
                    found(h.booking_id.iter().cloned().collect())
                }
                InventoryBody::Hold(_) => Outcome::NotFound,
                _ if r.status == 404 => Outcome::NotFound,
                _ => reconcile_failure(classify_pms(&r)),
            },
        }
    }

    // ---- Stripe ----------------------------------------------------------

    async fn create_intent(&self, call: &StepCall, capture: CaptureMethod) -> Outcome {
        // `step_key` is the step's base key whatever key generation this
        // attempt carries: reconciliation finds every attempt's intent.
        let metadata: BTreeMap<String, String> = [
            (META_STEP_KEY.to_string(), action_key(call)),
            (META_SAGA.to_string(), call.saga.as_str().to_string()),
            (
                META_BUSINESS_KEY.to_string(),
                call.input.business_key.clone(),
            ),
            (META_STEP.to_string(), call.step_name.clone()),
        ]
        .into();
        let without_key = mutants::is_active(Mutant::RetryChargeWithoutKey) && call.attempt > 1;
        let req = StripeRequest::CreatePaymentIntent {
            idempotency_key: (!without_key).then(|| call.key.clone()),
            customer: call.input.customer.clone(),
            amount_cents: call.input.amount_cents,
            currency: "usd".into(),
            capture_method: capture,
            confirm: true,
            metadata,
        };
        match self.stripe(req).await {
            Err(e) => net_outcome(e),
            Ok(r) => match r.payment_intent() {
                // A replay shows the intent as it was created: read where
                // it stands now (by id, consistent).
                Some(pi) if r.idempotent_replayed => match self.retrieve(&pi.id).await {
                    Err(o) => reconcile_failure(o),
                    Ok(None) => Outcome::unknown(&format!("payment intent {} vanished", pi.id)),
                    Ok(Some(now)) => self.created_intent(call, &now).await,
                },
                Some(pi) => self.created_intent(call, pi).await,
                // A replayed 5xx: Stripe stored it under this key and will
                // replay it to every retry (Stripe docs, Idempotent
                // requests). The core reconciles, then uses a fresh key.
                None if r.idempotent_replayed && r.status >= 500 => Outcome::key_poisoned(
                    &format!("stripe {} replayed under key {}", r.status, call.key),
                ),
                None => classify_stripe(&r),
            },
        }
    }

    /// The outcome of a charge or authorization whose PaymentIntent is
    /// `pi`: live = applied; `processing` = not known yet (the core
    /// reconciles until it settles, a bounded wait); `requires_action`
    /// (3-D Secure) = a definite rejection the agent can act on, after
    /// canceling the intent so that nothing is left behind; otherwise
    /// (declined, canceled) rejected.
    async fn created_intent(&self, call: &StepCall, pi: &PaymentIntent) -> Outcome {
        match pi.status {
            _ if is_live(pi) => Outcome::applied(&pi.id),
            PaymentIntentStatus::Processing => {
                Outcome::unknown(&format!("payment intent {} {PROCESSING}", pi.id))
            }
            PaymentIntentStatus::RequiresAction => {
                let cancel = StripeRequest::CancelPaymentIntent {
                    idempotency_key: Some(format!("{}/cancel#{}", call.key, call.attempt)),
                    id: pi.id.clone(),
                };
                match self.stripe(cancel).await {
                    Err(e) => net_outcome(e),
                    Ok(r)
                        if r.is_success()
                            || r.error_code()
                                == Some(StripeErrorCode::PaymentIntentUnexpectedState) =>
                    {
                        Outcome::rejected(&format!(
                            "{REQUIRES_ACTION}: payment intent {} needs the customer to \
                             authenticate (3-D Secure); canceled, nothing charged",
                            pi.id
                        ))
                    }
                    Ok(r) => classify_stripe(&r),
                }
            }
            other => Outcome::rejected(&format!("payment intent {} is {other:?}", pi.id)),
        }
    }

    /// The customer's PaymentIntents made under `step_key`, read from the
    /// list endpoint (strongly consistent), never from search (which Stripe
    /// documents as lagging up to a minute, "not for read-after-write":
    /// regression `stripe-search-lag-78`). At most [`LIST_PAGES_MAX`] pages.
    async fn intents_of(
        &self,
        customer: &str,
        step_key: &str,
    ) -> Result<Vec<PaymentIntent>, Outcome> {
        if mutants::is_active(Mutant::ReconcileBySearch) {
            let req = StripeRequest::SearchPaymentIntents {
                metadata_key: META_STEP_KEY.to_string(),
                metadata_value: step_key.to_string(),
            };
            return match self.stripe(req).await {
                Err(e) => Err(net_outcome(e)),
                Ok(r) => match r.body {
                    StripeBody::SearchResult { data, .. } => Ok(data),
                    _ => Err(classify_stripe(&r)),
                },
            };
        }
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..LIST_PAGES_MAX {
            let req = StripeRequest::ListPaymentIntents {
                customer: Some(customer.to_string()),
                created_gte_ms: None,
                limit: Some(LIST_LIMIT_MAX),
                starting_after: after.take(),
            };
            let (data, has_more) = match self.stripe(req).await {
                Err(e) => return Err(net_outcome(e)),
                Ok(r) => match r.body {
                    StripeBody::List { data, has_more } => (data, has_more),
                    _ => return Err(classify_stripe(&r)),
                },
            };
            after = data.last().map(|pi| pi.id.clone());
            found.extend(
                data.into_iter().filter(|pi| {
                    pi.metadata.get(META_STEP_KEY).map(String::as_str) == Some(step_key)
                }),
            );
            if !has_more || after.is_none() {
                return Ok(found);
            }
        }
        Err(Outcome::unknown(&format!(
            "more than {} payment intents of {customer} to look through",
            LIST_PAGES_MAX * LIST_LIMIT_MAX as usize
        )))
    }

    async fn find_intents(&self, call: &StepCall) -> Outcome {
        match self
            .intents_of(&call.input.customer, &action_key(call))
            .await
        {
            Err(o) => reconcile_failure(o),
            // Still settling: neither found nor absent yet.
            Ok(list)
                if list
                    .iter()
                    .any(|pi| pi.status == PaymentIntentStatus::Processing) =>
            {
                Outcome::unknown(&format!("a payment intent is still {PROCESSING}"))
            }
            Ok(list) => {
                let live: Vec<String> = list
                    .iter()
                    .filter(|pi| is_live(pi))
                    .map(|pi| pi.id.clone())
                    .collect();
                // Nothing live, but Stripe declined the card under this key
                // (an answer lost to a timeout or a stored 500): that is
                // the action's definitive answer — asking the card again
                // under a fresh key would be a second charge attempt
                // (regression `authorize-capture-71`).
                let declined = list.iter().find(|pi| {
                    pi.status == PaymentIntentStatus::RequiresPaymentMethod
                        && pi.declined_attempts > 0
                });
                match declined {
                    Some(pi) if live.is_empty() => Outcome::rejected(&format!(
                        "stripe 402 card declined (found by reconciliation: {})",
                        pi.id
                    )),
                    _ => found(live),
                }
            }
        }
    }

    async fn retrieve(&self, id: &str) -> Result<Option<PaymentIntent>, Outcome> {
        match self
            .stripe(StripeRequest::RetrievePaymentIntent { id: id.to_string() })
            .await
        {
            Err(e) => Err(net_outcome(e)),
            Ok(r) => match r.payment_intent() {
                Some(pi) => Ok(Some(pi.clone())),
                None if r.error_code() == Some(StripeErrorCode::ResourceMissing) => Ok(None),
                None => Err(classify_stripe(&r)),
            },
        }
    }

    /// Refund what is captured, cancel what is only authorized.
    async fn undo_payment(&self, call: &StepCall) -> Outcome {
        let targets = match &call.target_ref {
            Some(id) => vec![id.clone()],
            None => match self
                .intents_of(&call.input.customer, &action_key(call))
                .await
            {
                Err(o) => return o,
                Ok(list) => list
                    .into_iter()
                    .filter(|pi| is_live(pi) || may_still_take_money(pi))
                    .map(|pi| pi.id)
                    .collect(),
            },
        };
        let nothing_to_undo_is_error = mutants::is_active(Mutant::NullCompensationIsError);
        for id in targets {
            let key = format!("{}#{}", call.key, call.attempt);
            let pi = match self.retrieve(&id).await {
                Err(o) => return o,
                Ok(None) if nothing_to_undo_is_error => return Outcome::rejected("no such charge"),
                Ok(None) => continue, // nothing to undo
                Ok(Some(pi)) => pi,
            };
            let req = match pi.status {
                PaymentIntentStatus::RequiresCapture
                    if mutants::is_active(Mutant::AuthorizationLeftOnCompensation) =>
                {
                    continue
                }
                PaymentIntentStatus::RequiresCapture
                | PaymentIntentStatus::RequiresConfirmation
                | PaymentIntentStatus::RequiresAction
                | PaymentIntentStatus::Processing => StripeRequest::CancelPaymentIntent {
                    idempotency_key: Some(key),
                    id: id.clone(),
                },
                PaymentIntentStatus::RequiresPaymentMethod => continue, // declined: nothing taken
                PaymentIntentStatus::Succeeded => {
                    // Earlier refunds first: one still pending is awaited,
                    // one that failed is for an operator.
                    let refunded_cents = match self.refund_state(&pi).await {
                        RefundState::Settled { refunded_cents } => refunded_cents,
                        RefundState::Pending(o) | RefundState::Failed(o) => return o,
                    };
                    if pi.amount_received_cents <= refunded_cents {
                        if nothing_to_undo_is_error {
                            return Outcome::rejected("charge already refunded");
                        }
                        continue; // fully refunded already
                    }
                    StripeRequest::CreateRefund {
                        idempotency_key: Some(key),
                        payment_intent: id.clone(),
                        amount_cents: None,
                    }
                }
                PaymentIntentStatus::Canceled => continue,
            };
            match self.stripe(req).await {
                Err(e) => return net_outcome(e),
                // The refund settles later: await it (the next attempt
                // reads its status), or hand a failed one to an operator.
                Ok(r)
                    if r.refund()
                        .is_some_and(|re| re.status != RefundStatus::Succeeded) =>
                {
                    let re = r.refund().expect("checked");
                    return refund_outcome(re);
                }
                Ok(r) if r.is_success() => {}
                Ok(r) => match r.error_code() {
                    // Another refund took the rest — perhaps one still
                    // pending that may yet fail: look at it on the next
                    // attempt (regression `stripe-refunds-2470`).
                    Some(StripeErrorCode::ChargeAlreadyRefunded) => {
                        return Outcome::transient(&format!(
                            "{REFUND_PENDING}: {id} already refunded by another refund"
                        ))
                    }
                    // Changed under us (captured or cancelled meanwhile):
                    // look again on the next attempt.
                    Some(StripeErrorCode::PaymentIntentUnexpectedState) => {
                        return Outcome::transient("payment intent changed state")
                    }
                    _ => return classify_stripe(&r),
                },
            }
        }
        Outcome::Applied { reference: None }
    }

    /// Where the refunds of a captured `pi` stand (list by PaymentIntent,
    /// consistent): one pending is awaited, a failed one whose money is
    /// still taken is for an operator. At most one page of 100 refunds.
    async fn refund_state(&self, pi: &PaymentIntent) -> RefundState {
        let req = StripeRequest::ListRefunds {
            payment_intent: pi.id.clone(),
            limit: Some(LIST_LIMIT_MAX),
        };
        let refunds = match self.stripe(req).await {
            Err(e) => return RefundState::Pending(net_outcome(e)),
            Ok(r) => match r.body {
                StripeBody::RefundList { data, has_more } if !has_more => data,
                StripeBody::RefundList { .. } => {
                    return RefundState::Failed(Outcome::rejected(&format!(
                        "more than {LIST_LIMIT_MAX} refunds of {}",
                        pi.id
                    )))
                }
                _ => return RefundState::Pending(classify_stripe(&r)),
            },
        };
        if let Some(re) = refunds.iter().find(|re| re.status == RefundStatus::Pending) {
            return RefundState::Pending(refund_outcome(re));
        }
        // From the list, not from `pi`: the list was read later, and a
        // refund pending when `pi` was read may have failed since
        // (regression `stripe-refunds-274`).
        let refunded_cents: i64 = refunds
            .iter()
            .filter(|re| re.status == RefundStatus::Succeeded)
            .map(|re| re.amount_cents)
            .sum();
        let still_taken = pi.amount_received_cents > refunded_cents;
        match refunds.iter().find(|re| re.status == RefundStatus::Failed) {
            Some(re) if still_taken => RefundState::Failed(refund_outcome(re)),
            _ => RefundState::Settled { refunded_cents },
        }
    }

    async fn capture(&self, call: &StepCall, authorization: &str) -> Outcome {
        let Some(id) = call.refs.get(authorization) else {
            return Outcome::rejected("no authorization to capture");
        };
        let pi = match self.retrieve(id).await {
            Err(o) => return o,
            Ok(None) => return Outcome::rejected("authorization not found"),
            Ok(Some(pi)) => pi,
        };
        match pi.status {
            PaymentIntentStatus::Succeeded => return Outcome::applied(&pi.id),
            PaymentIntentStatus::RequiresCapture => {}
            other => return Outcome::rejected(&format!("cannot capture: intent is {other:?}")),
        }
        let req = StripeRequest::CapturePaymentIntent {
            idempotency_key: Some(format!("{}#{}", call.key, call.attempt)),
            id: id.clone(),
            // A lower final bill is a partial capture: Stripe releases the
            // rest of the authorization.
            amount_to_capture_cents: call
                .input
                .capture_cents
                .filter(|_| !mutants::is_active(Mutant::CaptureTheWholeAuthorization)),
        };
        match self.stripe(req).await {
            Err(e) => net_outcome(e),
            Ok(r) => match r.payment_intent() {
                Some(pi) if pi.status == PaymentIntentStatus::Succeeded => Outcome::applied(&pi.id),
                _ if r.error_code() == Some(StripeErrorCode::PaymentIntentUnexpectedState) => {
                    Outcome::transient("payment intent changed state")
                }
                _ => classify_stripe(&r),
            },
        }
    }

    async fn find_captured(&self, call: &StepCall, authorization: &str) -> Outcome {
        let Some(id) = call.refs.get(authorization) else {
            return Outcome::NotFound;
        };
        match self.retrieve(id).await {
            Err(o) => reconcile_failure(o),
            Ok(Some(pi)) if pi.status == PaymentIntentStatus::Succeeded => found(vec![pi.id]),
            Ok(_) => Outcome::NotFound,
        }
    }

    // ---- Salesforce --------------------------------------------------------

    /// Upsert `records` in order by external id (the saga id); the step's
    /// reference is the first record's, as `Object/id` (what reconcile
    /// finds: [`sf_ref`]).
    ///
    /// `create_only` (a forward write that must never update):
    /// `If-Unmodified-Since` at the epoch makes the upsert create a missing
    /// record and never update an existing one (412). A late or duplicate
    /// delivery of this request then cannot set a later state back.
    async fn crm_write(&self, call: &StepCall, records: &[SfRecord], create_only: bool) -> Outcome {
        let ext = call.saga.as_str().to_string();
        let mut reference = None;
        for (i, record) in records.iter().enumerate() {
            let fields = record.resolve(&call.input);
            let req = SalesforceRequest::Upsert {
                object: record.object.clone(),
                external_id: ext.clone(),
                fields,
                if_unmodified_since_ms: create_only.then_some(0),
            };
            match self.salesforce(req).await {
                Err(o) => return o,
                Ok(r) => match &r.body {
                    SalesforceBody::SaveResult { id, .. } if i == 0 => {
                        reference = Some(sf_ref(&record.object, id));
                    }
                    SalesforceBody::SaveResult { .. } => {}
                    SalesforceBody::NoContent => {}
                    // create_only: the record exists already (ours: the
                    // external id is the saga id).
                    _ if create_only && r.status == 412 => {}
                    _ => return classify_salesforce(&r),
                },
            }
        }
        Outcome::Applied { reference }
    }

    /// A step with an undo is found when its first record exists in the
    /// state the step writes (its constants, not its undone ones); a step
    /// without one when its *last* record (written last, so every earlier
    /// one was written before it) carries the step's constants.
    ///
    /// The state matters, not only the external id: a later step writes
    /// the same records by the same external id, and after an admin deleted
    /// one (to the Recycle Bin, where an upsert does not match it) that
    /// later write *creates* a record in its own state. That record is not
    /// this step's effect; a sweep that took it for a late copy of this
    /// step undid a completed saga's booking (regression
    /// `hotel-checkout-334`). A late copy of a `create_only` write can only
    /// create a record in this step's own state, which is still found.
    async fn crm_find(&self, call: &StepCall, records: &[SfRecord], undo: &[SfRecord]) -> Outcome {
        first_found(crm_lookups(records, undo), |record, undone| {
            self.crm_find_one(call, record, undone)
        })
        .await
    }

    /// The live records of `record`'s object under the saga's external id
    /// that carry `record`'s constants and, if `undone` is given, are not
    /// in that state.
    async fn crm_find_one(
        &self,
        call: &StepCall,
        record: &SfRecord,
        undone: Option<&SfRecord>,
    ) -> Outcome {
        let req = SalesforceRequest::QueryByExternalId {
            object: record.object.clone(),
            external_id: call.saga.as_str().to_string(),
        };
        match self.salesforce(req).await {
            Err(o) => reconcile_failure(o),
            Ok(r) => match r.body {
                SalesforceBody::QueryResult { records, .. } => crm_effect(record, undone, records),
                _ => reconcile_failure(classify_salesforce(&r)),
            },
        }
    }
}

/// What a Salesforce step's reconcile looks for, in the order it looks:
/// each record the step writes with the undone state of its object (a step
/// with an undo), or only its last record (a step without one: written
/// last, so every earlier one was written before it).
fn crm_lookups<'w>(
    records: &'w [SfRecord],
    undo: &'w [SfRecord],
) -> Vec<(&'w SfRecord, Option<&'w SfRecord>)> {
    if undo.is_empty() {
        return records.last().map(|r| (r, None)).into_iter().collect();
    }
    records
        .iter()
        .map(|r| (r, undo.iter().find(|u| u.object == r.object)))
        .collect()
}

/// Look each of `lookups` up with `find`, in order, until one is found (or
/// the look-up fails): an admin may have deleted a step's first record
/// while a later one stands, and the step did apply (regression
/// `hotel-checkout-5861`).
async fn first_found<'w, F, Fut>(
    lookups: Vec<(&'w SfRecord, Option<&'w SfRecord>)>,
    mut find: F,
) -> Outcome
where
    F: FnMut(&'w SfRecord, Option<&'w SfRecord>) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    for (record, undone) in lookups {
        match find(record, undone).await {
            Outcome::NotFound => continue,
            other => return other,
        }
    }
    Outcome::NotFound
}

/// Of the live records a query by external id returned (`rows`), the
/// step's effect: those in the state the step writes (`record`'s
/// constants) and not in its undone one. A record another step wrote
/// under the same external id, in its own state, is not this step's.
fn crm_effect(
    record: &SfRecord,
    undone: Option<&SfRecord>,
    rows: Vec<crate::services::salesforce::SfRecord>,
) -> Outcome {
    found(
        rows.into_iter()
            .filter(|rec| {
                record.matches(&rec.fields) && !undone.is_some_and(|u| u.matches(&rec.fields))
            })
            .map(|rec| sf_ref(&rec.object, &rec.id))
            .collect(),
    )
}

/// A Salesforce effect's reference: `Object/id`. The object rides along
/// so that a sweep's undo of a late copy can write that record's object
/// alone ([`undo_records`]).
fn sf_ref(object: &str, id: &str) -> String {
    format!("{object}/{id}")
}

/// The undo records a compensation writes (by external id): every one for
/// the step's effect; for a late copy the sweep found — its key names the
/// target, an [`sf_ref`] — only those of the target's object. A late copy
/// is one record: the step's other records may stand for a saga that went
/// on, and undoing them too closed a completed saga's opportunity after
/// a stray booking was swept (regression `crm-admin-deletes-471`).
fn undo_records(call: &StepCall, undo: &[SfRecord]) -> Vec<SfRecord> {
    let late_copy = call.key != crate::saga::undo_key(&call.saga, &call.step_name, None);
    let object = call
        .target_ref
        .as_deref()
        .filter(|_| late_copy)
        .and_then(|t| t.split_once('/'))
        .map(|(object, _)| object);
    undo.iter()
        .filter(|r| object.is_none_or(|o| r.object == o))
        .cloned()
        .collect()
}

impl OpClient {
    async fn user_call(&self, service: &str, body: Value) -> Outcome {
        match self.svc.user(service, body).await {
            Err(e) => net_outcome(e),
            Ok(r) => match status_of(&r) {
                200..=299 => Outcome::Applied {
                    reference: r.get("id").and_then(Value::as_str).map(str::to_string),
                },
                s => classify_status(service, s),
            },
        }
    }

    async fn user_find(&self, service: &str, call: &StepCall) -> Outcome {
        let body = json!({"op": "find", "key": call.key});
        match self.svc.user(service, body).await {
            Err(e) => reconcile_failure(net_outcome(e)),
            Ok(r) if status_of(&r) == 200 => found(
                r.get("found")
                    .and_then(Value::as_array)
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Ok(r) => reconcile_failure(classify_status(service, status_of(&r))),
        }
    }
}

/// The JSON request of a user-service call (see `Operation::Call`).
fn request_body(op: &str, call: &StepCall) -> Value {
    json!({
        "op": op,
        "key": call.key,
        "business_key": call.input.business_key,
        "customer": call.input.customer,
        "amount_cents": call.input.amount_cents,
        "params": call.input.params,
        "refs": call.refs,
    })
}

/// A user service's status: 409 and 429 retry later, 5xx unknown, other
/// 4xx refused.
fn classify_status(service: &str, status: u16) -> Outcome {
    let what = format!("{service} {status}");
    match status {
        200..=299 => Outcome::Applied { reference: None },
        409 | 429 => Outcome::transient(&what),
        500..=599 => Outcome::unknown(&what),
        _ => Outcome::rejected(&what),
    }
}

impl StepClient for OpClient {
    fn call(&self, call: StepCall) -> BoxFuture<Outcome> {
        let mut me = self.clone();
        let slot = match call.op {
            Op::Action => 0,
            Op::Reconcile => 1,
            Op::Compensate => 2,
        };
        match self.labels.get(call.step) {
            Some(labels) => me.svc.set_label(labels[slot].clone()),
            None => me.svc = me.svc.labelled(&call.step_name, op_name(call.op)),
        }
        Box::pin(async move {
            emit!(
                me.svc.node,
                "step-call",
                "{} {} {:?} #{} key={}{}",
                call.saga.as_str(),
                call.step_name,
                call.op,
                call.attempt,
                call.key,
                call.target_ref
                    .as_deref()
                    .map(|r| format!(" target={r}"))
                    .unwrap_or_default()
            );
            let outcome = me.dispatch(&call).await;
            emit!(
                me.svc.node,
                "step-outcome",
                "{} {} {:?}: {:?}",
                call.saga.as_str(),
                call.step_name,
                call.op,
                outcome
            );
            outcome
        })
    }
}

/// How the coverage catalogue names a saga operation.
pub fn op_name(op: Op) -> &'static str {
    match op {
        Op::Action => "action",
        Op::Reconcile => "reconcile",
        Op::Compensate => "compensate",
    }
}

/// The requests (service, request kind) the glue may send for `kind` of a
/// step bound to `op` — what [`OpClient`]'s dispatch does, listed for the
/// coverage catalogue. Empty when the step has no such operation (no
/// undo).
pub fn requests(op: &Operation, kind: Op) -> Vec<(String, &'static str)> {
    use crate::world::wire::{INVENTORY as PMS, SALESFORCE as SF, STRIPE};
    let on = |service: &str, kinds: &[&'static str]| -> Vec<(String, &'static str)> {
        kinds.iter().map(|k| (service.to_string(), *k)).collect()
    };
    match (op, kind) {
        (Operation::PmsHold(_), Op::Action) => on(PMS, &["hold"]),
        (Operation::PmsHold(_), Op::Reconcile) => on(PMS, &["list_by_client_ref"]),
        (Operation::PmsHold(_), Op::Compensate) => on(PMS, &["list_by_client_ref", "release"]),
        (Operation::StripeCharge | Operation::StripeAuthorize, Op::Action) => on(
            STRIPE,
            &[
                "create_payment_intent",
                "retrieve_payment_intent",
                "cancel_payment_intent",
            ],
        ),
        (Operation::StripeCharge | Operation::StripeAuthorize, Op::Reconcile) => {
            on(STRIPE, &["list_payment_intents"])
        }
        (Operation::StripeCharge | Operation::StripeAuthorize, Op::Compensate) => on(
            STRIPE,
            &[
                "list_payment_intents",
                "retrieve_payment_intent",
                "cancel_payment_intent",
                "list_refunds",
                "create_refund",
            ],
        ),
        (Operation::StripeCapture { .. }, Op::Action) => on(
            STRIPE,
            &["retrieve_payment_intent", "capture_payment_intent"],
        ),
        (Operation::StripeCapture { .. }, Op::Reconcile) => {
            on(STRIPE, &["retrieve_payment_intent"])
        }
        // Any Salesforce call may first log in (none yet, or a 401).
        (Operation::SalesforceUpsert { .. }, Op::Action) => on(SF, &["login", "upsert"]),
        (Operation::SalesforceUpsert { .. }, Op::Reconcile) => {
            on(SF, &["login", "query_by_external_id"])
        }
        (Operation::SalesforceUpsert { undo, .. }, Op::Compensate) if !undo.is_empty() => {
            on(SF, &["login", "upsert"])
        }
        (Operation::PmsConfirm { .. }, Op::Action) => on(PMS, &["confirm"]),
        (Operation::PmsConfirm { .. }, Op::Reconcile) => on(PMS, &["get_hold"]),
        (Operation::Call { service, .. }, Op::Action) => on(service, &["call"]),
        (Operation::Call { service, .. }, Op::Reconcile) => on(service, &["find"]),
        (
            Operation::Call {
                service,
                undo: Some(_),
                ..
            },
            Op::Compensate,
        ) => on(service, &["call"]),
        _ => Vec::new(),
    }
}

/// The action key of the step a compensation belongs to.
fn action_key(call: &StepCall) -> String {
    crate::saga::action_key(&call.saga, &call.step_name)
}

fn found(mut refs: Vec<String>) -> Outcome {
    refs.sort();
    refs.dedup();
    if refs.is_empty() {
        Outcome::NotFound
    } else {
        Outcome::Found { references: refs }
    }
}

/// A reconcile that could not find out is `Unknown`, whatever the reason.
fn reconcile_failure(o: Outcome) -> Outcome {
    match o {
        Outcome::Unknown { reason }
        | Outcome::Transient { reason }
        | Outcome::Rejected { reason } => Outcome::Unknown { reason },
        other => other,
    }
}

/// What the reason of a 3-D Secure rejection starts with (the agent's
/// cue: the customer must authenticate, then check out again).
pub const REQUIRES_ACTION: &str = "requires_action";

/// What the reason of a charge still settling contains.
pub const PROCESSING: &str = "processing";

/// Reason prefix of a compensation waiting for a pending refund.
pub const REFUND_PENDING: &str = "refund pending";
/// Reason prefix of a refund Stripe failed (the saga ends NeedsOperator).
pub const REFUND_FAILED: &str = "refund failed";

/// Where a captured intent's refunds stand (see `OpClient::refund_state`).
enum RefundState {
    /// Nothing pending, nothing failed with money still taken;
    /// `refunded_cents` succeeded.
    Settled { refunded_cents: i64 },
    /// A refund is still pending (or the list could not be read): try
    /// again later.
    Pending(Outcome),
    /// A refund failed and the money is still taken: an operator's case.
    Failed(Outcome),
}

/// A refund that did not succeed (yet): pending → `Transient` (the core
/// sends the compensation again after a backoff, which reads the refund's
/// status: bounded polling); failed → `Rejected` with Stripe's reason, which
/// the core turns into `NeedsOperator`.
fn refund_outcome(re: &Refund) -> Outcome {
    match re.status {
        RefundStatus::Pending => Outcome::transient(&format!("{REFUND_PENDING}: {}", re.id)),
        RefundStatus::Failed => Outcome::rejected(&format!(
            "{REFUND_FAILED}: {} of {} cents on {} ({:?}); the money is still taken",
            re.id, re.amount_cents, re.payment_intent, re.failure_reason
        )),
        RefundStatus::Succeeded => Outcome::Applied { reference: None },
    }
}

/// An intent that holds no money yet but may still take some: settling
/// (`processing`) or waiting for the customer (`requires_action`). A
/// compensation cancels it.
fn may_still_take_money(pi: &PaymentIntent) -> bool {
    matches!(
        pi.status,
        PaymentIntentStatus::Processing | PaymentIntentStatus::RequiresAction
    )
}

/// A PaymentIntent that holds or took money (and still does).
fn is_live(pi: &PaymentIntent) -> bool {
    match pi.status {
        PaymentIntentStatus::RequiresCapture => true,
        PaymentIntentStatus::Succeeded => pi.amount_received_cents > pi.amount_refunded_cents,
        _ => false,
    }
}

fn classify_stripe(r: &StripeResponse) -> Outcome {
    let code = r.error_code();
    let what = format!("stripe {} {:?}", r.status, code);
    match r.status {
        200..=299 => Outcome::Applied { reference: None },
        402 => Outcome::rejected(&what),
        409 | 429 => Outcome::transient(&what),
        500..=599 => Outcome::unknown(&what),
        _ => Outcome::rejected(&what),
    }
}

fn classify_pms(r: &InventoryResponse) -> Outcome {
    let code = match &r.body {
        InventoryBody::Error(e) => Some(e.code),
        _ => None,
    };
    let what = format!("pms {} {:?}", r.status, code);
    match (r.status, code) {
        (200..=299, _) => Outcome::Applied { reference: None },
        (429, _) => Outcome::transient(&what),
        (500..=599, _) => Outcome::unknown(&what),
        (404, Some(PmsErrorCode::HoldNotFound)) => Outcome::rejected(&what),
        _ => Outcome::rejected(&what),
    }
}

fn classify_salesforce(r: &SalesforceResponse) -> Outcome {
    let code = match &r.body {
        SalesforceBody::Errors(errs) => errs.first().map(|e| e.error_code),
        _ => None,
    };
    let what = format!("salesforce {} {:?}", r.status, code);
    match (r.status, code) {
        (200..=299, _) => Outcome::Applied { reference: None },
        (
            _,
            Some(
                SalesforceErrorCode::InvalidSessionId
                | SalesforceErrorCode::UnableToLockRow
                | SalesforceErrorCode::RequestLimitExceeded
                | SalesforceErrorCode::DuplicateValue
                | SalesforceErrorCode::PreconditionFailed,
            ),
        ) => Outcome::transient(&what),
        (500..=599, _) => Outcome::unknown(&what),
        _ => Outcome::rejected(&what),
    }
}

#[cfg(test)]
mod tests;
