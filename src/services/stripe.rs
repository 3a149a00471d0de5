//! Simulated Stripe: PaymentIntents (automatic and manual capture), Refunds,
//! the `Idempotency-Key` store, and a money ledger per customer.
//!
//! What it reproduces (see `SERVICES.md` and `docs/FIDELITY.md`), because
//! sagas break on it:
//! - the PaymentIntent lifecycle `requires_confirmation → succeeded` or
//!   `→ requires_capture → succeeded | canceled`, partial capture, cancel only
//!   before capture, authorization expiry after 7 days of *service* time;
//!   for declared customers, 3-D Secure (`requires_action`: no money moves,
//!   the intent can be canceled) and asynchronous confirmation
//!   (`processing`, then succeeded or — for a declining card —
//!   `requires_payment_method`, after `processing_ms`);
//! - refunds, partial or full, never above the captured amount, `pending`
//!   for `refund_settle_ms` and then `succeeded` (the ledger's `Refund`
//!   line) or, to a closed card, `failed` (`amount_refunded` lowered again,
//!   no money back); refunds are read by id or listed by PaymentIntent;
//! - idempotency: a keyed request's result is stored once execution starts
//!   (402 and 5xx included) and replayed with `Idempotent-Replayed: true`;
//!   nothing is stored for validation 400s, 429 or 409
//!   `idempotency_key_in_use`; a reused key with other parameters is a 400
//!   `idempotency_error`; keys are pruned after 24 h, after which a retry
//!   executes again (the double charge the real Stripe allows); a 502/503
//!   from the edge (`Injected::EdgeUnavailable`) never reached the API and
//!   is not stored, so a retry with the same key executes;
//! - deterministic declines per customer (`card_declined`, 402);
//! - lookup by id and listing (by customer, by creation time; strongly
//!   consistent) and search by metadata (lagging, like the real search
//!   index).
//!
//! Deliberately not here: Charges/PaymentMethods as separate objects (a
//! customer has one card, which declines or not), the customer completing
//! 3-D Secure (nobody authenticates in the simulation), refunds'
//! `requires_action` and `canceled` statuses, webhooks, disputes,
//! currencies' different minimums, latency (the transport's job).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Begin, InFlight, Injected, ServiceModel, Ticket};

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// Smallest chargeable amount (Stripe's USD minimum; used for all currencies).
pub const MIN_CHARGE_CENTS: i64 = 50;
/// Largest chargeable amount (eight digits).
pub const MAX_CHARGE_CENTS: i64 = 99_999_999;
/// Metadata limits: keys per object, characters per key, per value.
pub const MAX_METADATA_KEYS: usize = 50;
/// Longest metadata key.
pub const MAX_METADATA_KEY_CHARS: usize = 40;
/// Longest metadata value.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
/// Most results one search returns (the rest is `has_more`).
pub const SEARCH_LIMIT: usize = 100;
/// A list page's size when the request names none, and the largest it may
/// name (Stripe API, pagination: `limit` "between 1 and 100, default 10").
pub const LIST_LIMIT_DEFAULT: u32 = 10;
/// The largest page a list request may ask for (see [`LIST_LIMIT_DEFAULT`]).
pub const LIST_LIMIT_MAX: u32 = 100;

const HOUR_MS: u64 = 3_600_000;

/// Scenario knobs for the simulated Stripe account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeConfig {
    /// Customers whose card always declines (402 `card_declined`).
    pub declining_customers: BTreeSet<String>,
    /// How long a stored idempotent result is kept (Stripe: at least 24 h).
    pub idempotency_key_ttl_ms: u64,
    /// How long a manual-capture authorization lives before it is canceled
    /// (Stripe: 7 days for online card payments).
    pub authorization_ttl_ms: u64,
    /// How long after creation a PaymentIntent becomes visible to search.
    /// Stripe documents search as eventually consistent and "not for
    /// read-after-write": "under normal operating conditions, data is
    /// searchable in less than 1 minute" (docs: Search API), and longer
    /// during incidents. Default: that bound, 60 s. Retrieve by id and the
    /// list endpoints are always consistent.
    pub search_index_delay_ms: u64,
    /// Customers whose card can no longer take money back (closed or
    /// expired card): their refunds end `failed` with `failure_reason =
    /// expired_or_canceled_card`, and the PaymentIntent's
    /// `amount_refunded` goes back down (Stripe docs, Refunds: "Refunds to
    /// expired or canceled cards… the refund fails"; Refund object:
    /// `failure_reason` ∈ `lost_or_stolen_card`, `expired_or_canceled_card`,
    /// `unknown`).
    pub refund_failing_customers: BTreeSet<String>,
    /// How long a refund stays `pending` before it becomes `succeeded` or
    /// `failed` (Refund object: `status` ∈ `pending`, `requires_action`,
    /// `succeeded`, `failed`, `canceled`). Default 0: a card refund is
    /// normally `succeeded` in the create response (the API reference's
    /// example Refund object), and a failing one is `failed` at once.
    pub refund_settle_ms: u64,
    /// Customers whose card asks for 3-D Secure: confirm answers 200 with
    /// status `requires_action` and moves no money; the intent can be
    /// canceled (Stripe docs, PaymentIntent lifecycle: "If the payment
    /// requires additional actions, such as authenticating with 3D Secure,
    /// the PaymentIntent has a status of requires_action").
    pub requires_action_customers: BTreeSet<String>,
    /// Customers whose payment confirms asynchronously: confirm answers 200
    /// with status `processing`, and `processing_ms` later the intent
    /// succeeds (or, for a declining customer, falls back to
    /// `requires_payment_method`).
    pub processing_customers: BTreeSet<String>,
    /// How long a `processing` intent takes to settle. Stripe docs,
    /// PaymentIntent lifecycle: "for some payment methods (for example,
    /// cards) processing can be quick, other types of payment methods can
    /// take up to a few days"; default: ACH Direct Debit's "up to 4
    /// business days", as 4 days.
    pub processing_ms: u64,
}

impl Default for StripeConfig {
    fn default() -> Self {
        StripeConfig {
            declining_customers: BTreeSet::new(),
            idempotency_key_ttl_ms: 24 * HOUR_MS,
            authorization_ttl_ms: 7 * 24 * HOUR_MS,
            search_index_delay_ms: 60_000,
            refund_failing_customers: BTreeSet::new(),
            refund_settle_ms: 0,
            requires_action_customers: BTreeSet::new(),
            processing_customers: BTreeSet::new(),
            processing_ms: 4 * 24 * HOUR_MS,
        }
    }
}

/// `capture_method` of a PaymentIntent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    /// Confirming charges the card at once.
    Automatic,
    /// Confirming only authorizes; a separate capture moves the money.
    Manual,
}

/// `status` of a PaymentIntent (the statuses a card payment can reach).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentIntentStatus {
    /// The last confirmation was declined; confirm again or cancel.
    RequiresPaymentMethod,
    /// Created without `confirm`.
    RequiresConfirmation,
    /// The customer must act (3-D Secure); no money moved; can be canceled.
    RequiresAction,
    /// Confirmed, settling asynchronously; no money moved yet; can be
    /// canceled.
    Processing,
    /// Authorized (manual capture), waiting for capture.
    RequiresCapture,
    /// Money captured.
    Succeeded,
    /// Canceled by request or by authorization expiry.
    Canceled,
}

impl PaymentIntentStatus {
    fn as_str(self) -> &'static str {
        match self {
            PaymentIntentStatus::RequiresPaymentMethod => "requires_payment_method",
            PaymentIntentStatus::RequiresConfirmation => "requires_confirmation",
            PaymentIntentStatus::RequiresAction => "requires_action",
            PaymentIntentStatus::Processing => "processing",
            PaymentIntentStatus::RequiresCapture => "requires_capture",
            PaymentIntentStatus::Succeeded => "succeeded",
            PaymentIntentStatus::Canceled => "canceled",
        }
    }
}

/// Why a PaymentIntent was canceled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    /// A `CancelPaymentIntent` request (Stripe shows `null` unless the
    /// client passes a reason; the model records who did it).
    RequestedByClient,
    /// The authorization expired (Stripe: `automatic`).
    Automatic,
}

/// A PaymentIntent as Stripe returns it, plus the ground-truth fields the
/// checkers want (which idempotency key created it, when it was authorized).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    /// `pi_0001`, `pi_0002`, …
    pub id: String,
    /// The paying customer.
    pub customer: String,
    /// Amount to charge.
    pub amount_cents: i64,
    /// Lower-case ISO currency code.
    pub currency: String,
    /// Automatic or manual capture.
    pub capture_method: CaptureMethod,
    /// Lifecycle state.
    pub status: PaymentIntentStatus,
    /// Authorized and not yet captured or released.
    pub amount_capturable_cents: i64,
    /// Captured (moved to the merchant).
    pub amount_received_cents: i64,
    /// Refunded out of `amount_received_cents`.
    pub amount_refunded_cents: i64,
    /// Client metadata (e.g. `saga_id`).
    pub metadata: BTreeMap<String, String>,
    /// The `Idempotency-Key` of the request that created it.
    pub idempotency_key: Option<String>,
    /// Creation instant (service clock).
    pub created_ms: u64,
    /// When the card was authorized (manual capture).
    pub authorized_ms: Option<u64>,
    /// When an uncaptured authorization is canceled automatically.
    pub authorization_expires_ms: Option<u64>,
    /// When it was canceled.
    pub canceled_ms: Option<u64>,
    /// Why it was canceled.
    pub cancellation_reason: Option<CancellationReason>,
    /// How many confirmations were declined.
    pub declined_attempts: u32,
}

/// `status` of a Refund (the ones the model produces; Stripe also has
/// `requires_action` and `canceled` for other payment methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Accepted, not settled: counts in `amount_refunded`, no money back yet.
    Pending,
    /// The money went back to the customer.
    Succeeded,
    /// The card refused it: nothing went back, `amount_refunded` was
    /// lowered again.
    Failed,
}

/// `failure_reason` of a failed Refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundFailureReason {
    /// The card was closed or has expired.
    ExpiredOrCanceledCard,
}

/// A Refund object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// `re_0001`, …
    pub id: String,
    /// The refunded PaymentIntent.
    pub payment_intent: String,
    /// Its customer.
    pub customer: String,
    /// Refunded amount.
    pub amount_cents: i64,
    /// Creation instant.
    pub created_ms: u64,
    /// The `Idempotency-Key` of the request that created it.
    pub idempotency_key: Option<String>,
    /// Pending, succeeded or failed.
    pub status: RefundStatus,
    /// Why it failed.
    pub failure_reason: Option<RefundFailureReason>,
    /// When it left `pending` (service clock).
    pub settled_ms: Option<u64>,
}

/// Kind of one money movement in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Movement {
    /// Automatic capture: authorized and captured at once.
    Charge,
    /// Manual capture: funds held on the card.
    Authorize,
    /// Held funds captured.
    Capture,
    /// Held funds released (cancel, expiry, or the uncaptured rest of a
    /// partial capture).
    Release,
    /// Captured funds returned (recorded when the refund *succeeds*; a
    /// pending or failed refund moved no money).
    Refund,
}

/// One append-only ledger line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position in the ledger, from 0.
    pub seq: u64,
    /// When the movement took effect (service clock; non-decreasing as long
    /// as the service clock is).
    pub at_ms: u64,
    /// The customer whose card it concerns.
    pub customer: String,
    /// The PaymentIntent.
    pub payment_intent: String,
    /// The Refund, for [`Movement::Refund`].
    pub refund: Option<String>,
    /// What happened.
    pub movement: Movement,
    /// How much (always > 0).
    pub amount_cents: i64,
}

/// Everything that happened, for the checkers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeGroundTruth {
    /// Every PaymentIntent ever created, by id.
    pub payment_intents: BTreeMap<String, PaymentIntent>,
    /// Every Refund, by id.
    pub refunds: BTreeMap<String, Refund>,
    /// Every money movement, in the order it was applied.
    pub ledger: Vec<LedgerEntry>,
    /// Requests answered from the idempotency store (a retry or duplicate
    /// that did not execute again).
    #[serde(default)]
    pub idempotent_replays: u64,
    /// Requests answered 503 by the edge (`Injected::EdgeUnavailable`):
    /// never executed, nothing stored under their key.
    #[serde(default)]
    pub edge_errors: u64,
    /// Search requests executed (a coordinator that moves money on
    /// search results reads a lagging index: see `search_index_delay_ms`).
    #[serde(default)]
    pub searches: u64,
    /// Authorizations the card network ended before their window
    /// ([`Stripe::expire_authorizations`]).
    #[serde(default)]
    pub authorizations_expired_early: u32,
}

impl StripeGroundTruth {
    fn sum(&self, customer: &str, movements: &[Movement]) -> i64 {
        self.ledger
            .iter()
            .filter(|e| e.customer == customer && movements.contains(&e.movement))
            .map(|e| e.amount_cents)
            .sum()
    }

    /// Money captured from `customer` (charges and captures).
    pub fn captured_cents(&self, customer: &str) -> i64 {
        self.sum(customer, &[Movement::Charge, Movement::Capture])
    }

    /// Money refunded to `customer`.
    pub fn refunded_cents(&self, customer: &str) -> i64 {
        self.sum(customer, &[Movement::Refund])
    }

    /// Captured minus refunded: what the customer is out of pocket.
    pub fn net_cents(&self, customer: &str) -> i64 {
        self.captured_cents(customer) - self.refunded_cents(customer)
    }

    /// Funds currently held on the card (authorized, not captured/released).
    pub fn held_cents(&self, customer: &str) -> i64 {
        self.sum(customer, &[Movement::Authorize])
            - self.sum(customer, &[Movement::Capture, Movement::Release])
    }

    /// The ledger lines of one customer.
    pub fn ledger_for<'a>(&'a self, customer: &'a str) -> impl Iterator<Item = &'a LedgerEntry> {
        self.ledger.iter().filter(move |e| e.customer == customer)
    }

    /// All PaymentIntents whose `metadata[key] == value` (strongly
    /// consistent, unlike the search endpoint), in creation order.
    pub fn intents_with_metadata<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = &'a PaymentIntent> {
        self.payment_intents
            .values()
            .filter(move |pi| pi.metadata.get(key).map(String::as_str) == Some(value))
    }
}

/// A request to the simulated Stripe API. The `idempotency_key` stands for the
/// `Idempotency-Key` header; reads take none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum StripeRequest {
    /// `POST /v1/payment_intents`.
    CreatePaymentIntent {
        /// `Idempotency-Key` header.
        idempotency_key: Option<String>,
        /// Paying customer.
        customer: String,
        /// Amount; must be in `MIN_CHARGE_CENTS..=MAX_CHARGE_CENTS`.
        amount_cents: i64,
        /// Three-letter ISO code.
        currency: String,
        /// Automatic or manual capture.
        capture_method: CaptureMethod,
        /// Confirm at once (charge or authorize the card).
        confirm: bool,
        /// Metadata, e.g. `saga_id`.
        metadata: BTreeMap<String, String>,
    },
    /// `POST /v1/payment_intents/{id}/confirm`.
    ConfirmPaymentIntent {
        /// `Idempotency-Key` header.
        idempotency_key: Option<String>,
        /// PaymentIntent id.
        id: String,
    },
    /// `POST /v1/payment_intents/{id}/capture`.
    CapturePaymentIntent {
        /// `Idempotency-Key` header.
        idempotency_key: Option<String>,
        /// PaymentIntent id.
        id: String,
        /// Partial capture; `None` captures everything authorized.
        amount_to_capture_cents: Option<i64>,
    },
    /// `POST /v1/payment_intents/{id}/cancel`.
    CancelPaymentIntent {
        /// `Idempotency-Key` header.
        idempotency_key: Option<String>,
        /// PaymentIntent id.
        id: String,
    },
    /// `POST /v1/refunds`.
    CreateRefund {
        /// `Idempotency-Key` header.
        idempotency_key: Option<String>,
        /// PaymentIntent to refund.
        payment_intent: String,
        /// Partial refund; `None` refunds what is left.
        amount_cents: Option<i64>,
    },
    /// `GET /v1/payment_intents/{id}`.
    RetrievePaymentIntent {
        /// PaymentIntent id.
        id: String,
    },
    /// `GET /v1/refunds/{id}`.
    RetrieveRefund {
        /// Refund id.
        id: String,
    },
    /// `GET /v1/refunds?payment_intent=…&limit=…`: the PaymentIntent's
    /// refunds, newest first, strongly consistent, one page.
    ListRefunds {
        /// The refunded PaymentIntent.
        payment_intent: String,
        /// Page size, 1..=100 (default 10).
        limit: Option<u32>,
    },
    /// `GET /v1/payment_intents/search?query=metadata['key']:'value'`.
    SearchPaymentIntents {
        /// Metadata key.
        metadata_key: String,
        /// Exact value.
        metadata_value: String,
    },
    /// `GET /v1/payment_intents?customer=…&created[gte]=…&limit=…&starting_after=…`:
    /// strongly consistent (Stripe recommends the list endpoints over search
    /// for read-after-write), newest first, one page.
    ListPaymentIntents {
        /// Only this customer's.
        customer: Option<String>,
        /// Only those created at or after this time (ms, Stripe's clock).
        created_gte_ms: Option<u64>,
        /// Page size, 1..=100 (default 10).
        limit: Option<u32>,
        /// The page after this PaymentIntent id (the last of the previous page).
        starting_after: Option<String>,
    },
}

impl StripeRequest {
    /// The `Idempotency-Key` header, if any.
    pub fn idempotency_key(&self) -> Option<&str> {
        match self {
            StripeRequest::CreatePaymentIntent {
                idempotency_key, ..
            }
            | StripeRequest::ConfirmPaymentIntent {
                idempotency_key, ..
            }
            | StripeRequest::CapturePaymentIntent {
                idempotency_key, ..
            }
            | StripeRequest::CancelPaymentIntent {
                idempotency_key, ..
            }
            | StripeRequest::CreateRefund {
                idempotency_key, ..
            } => idempotency_key.as_deref(),
            StripeRequest::RetrievePaymentIntent { .. }
            | StripeRequest::SearchPaymentIntents { .. }
            | StripeRequest::ListPaymentIntents { .. }
            | StripeRequest::RetrieveRefund { .. }
            | StripeRequest::ListRefunds { .. } => None,
        }
    }

    /// Whether this is a read (never stored under a key, never changes state).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            StripeRequest::RetrievePaymentIntent { .. }
                | StripeRequest::SearchPaymentIntents { .. }
                | StripeRequest::ListPaymentIntents { .. }
                | StripeRequest::RetrieveRefund { .. }
                | StripeRequest::ListRefunds { .. }
        )
    }
}

/// `error.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StripeErrorType {
    /// 5xx: Stripe's side; ambiguous (may have been applied).
    ApiError,
    /// 402: the card was declined (definitive).
    CardError,
    /// 400: key reused with different parameters.
    IdempotencyError,
    /// 400 / 404 / 409 / 429: the request is wrong or must be retried.
    InvalidRequestError,
}

/// `error.code` (the subset the model produces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StripeErrorCode {
    /// Amount above the maximum, above what is capturable, or above what is
    /// left to refund.
    AmountTooLarge,
    /// Amount below the minimum charge.
    AmountTooSmall,
    /// The customer's card declines.
    CardDeclined,
    /// Nothing left to refund.
    ChargeAlreadyRefunded,
    /// A request with the same key is still executing (409).
    IdempotencyKeyInUse,
    /// A required string parameter is empty.
    ParameterInvalidEmpty,
    /// An integer parameter is not a positive integer.
    ParameterInvalidInteger,
    /// The PaymentIntent's status does not allow the operation.
    PaymentIntentUnexpectedState,
    /// Too many requests (429).
    RateLimit,
    /// No such object (404).
    ResourceMissing,
}

/// The `error` object of an error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeError {
    /// `type`.
    #[serde(rename = "type")]
    pub error_type: StripeErrorType,
    /// `code` (absent for generic validation errors and `api_error`).
    pub code: Option<StripeErrorCode>,
    /// `decline_code` for card errors.
    pub decline_code: Option<String>,
    /// `param`: which parameter was wrong.
    pub param: Option<String>,
    /// `payment_intent.id` for errors about a PaymentIntent (declines).
    pub payment_intent: Option<String>,
    /// Human-readable message.
    pub message: String,
}

/// The response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "object", rename_all = "snake_case")]
pub enum StripeBody {
    /// A PaymentIntent.
    PaymentIntent(PaymentIntent),
    /// A Refund.
    Refund(Refund),
    /// A search result page, newest first.
    SearchResult {
        /// Matching PaymentIntents (at most [`SEARCH_LIMIT`]).
        data: Vec<PaymentIntent>,
        /// More matched than were returned.
        has_more: bool,
    },
    /// A page of refunds, newest first.
    RefundList {
        /// At most the request's `limit`.
        data: Vec<Refund>,
        /// More follow.
        has_more: bool,
    },
    /// A list page, newest first.
    List {
        /// At most the request's `limit`.
        data: Vec<PaymentIntent>,
        /// More follow (ask again with `starting_after` = the last id).
        has_more: bool,
    },
    /// An error.
    Error(StripeError),
}

/// A response: HTTP status, the `Idempotent-Replayed` header, the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeResponse {
    /// HTTP status.
    pub status: u16,
    /// `Idempotent-Replayed: true`.
    pub idempotent_replayed: bool,
    /// Body.
    pub body: StripeBody,
}

impl StripeResponse {
    fn ok(body: StripeBody) -> Self {
        StripeResponse {
            status: 200,
            idempotent_replayed: false,
            body,
        }
    }

    fn failure(
        status: u16,
        error_type: StripeErrorType,
        code: Option<StripeErrorCode>,
        param: Option<&str>,
        message: String,
    ) -> Self {
        StripeResponse {
            status,
            idempotent_replayed: false,
            body: StripeBody::Error(StripeError {
                error_type,
                code,
                decline_code: None,
                param: param.map(str::to_owned),
                payment_intent: None,
                message,
            }),
        }
    }

    fn invalid(code: Option<StripeErrorCode>, param: Option<&str>, message: String) -> Self {
        Self::failure(
            400,
            StripeErrorType::InvalidRequestError,
            code,
            param,
            message,
        )
    }

    fn api_error() -> Self {
        Self::failure(
            500,
            StripeErrorType::ApiError,
            None,
            None,
            "An unknown error occurred".to_owned(),
        )
    }

    /// A 503 from the infrastructure in front of the API (never stored).
    fn edge_unavailable() -> Self {
        Self::failure(
            503,
            StripeErrorType::ApiError,
            None,
            None,
            "Service Unavailable".to_owned(),
        )
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error object, if this is an error.
    pub fn error(&self) -> Option<&StripeError> {
        match &self.body {
            StripeBody::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The error code, if this is an error with a code.
    pub fn error_code(&self) -> Option<StripeErrorCode> {
        self.error().and_then(|e| e.code)
    }

    /// The PaymentIntent in the body, if any.
    pub fn payment_intent(&self) -> Option<&PaymentIntent> {
        match &self.body {
            StripeBody::PaymentIntent(pi) => Some(pi),
            _ => None,
        }
    }

    /// The Refund in the body, if any.
    pub fn refund(&self) -> Option<&Refund> {
        match &self.body {
            StripeBody::Refund(r) => Some(r),
            _ => None,
        }
    }
}

impl StripeRequest {
    /// The request's kind, as the coverage catalogue names it
    /// (`create_payment_intent`, `list_refunds`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            StripeRequest::CreatePaymentIntent { .. } => "create_payment_intent",
            StripeRequest::ConfirmPaymentIntent { .. } => "confirm_payment_intent",
            StripeRequest::CapturePaymentIntent { .. } => "capture_payment_intent",
            StripeRequest::CancelPaymentIntent { .. } => "cancel_payment_intent",
            StripeRequest::CreateRefund { .. } => "create_refund",
            StripeRequest::RetrievePaymentIntent { .. } => "retrieve_payment_intent",
            StripeRequest::RetrieveRefund { .. } => "retrieve_refund",
            StripeRequest::ListRefunds { .. } => "list_refunds",
            StripeRequest::SearchPaymentIntents { .. } => "search_payment_intents",
            StripeRequest::ListPaymentIntents { .. } => "list_payment_intents",
        }
    }
}

/// Response classes every request kind can get: the rate limiter, the
/// edge and a server error sit in front of every endpoint.
const ANY: &[&str] = &["429 rate_limit", "500 api_error", "503 edge unavailable"];
/// What a keyed write can get besides its own answers: the key's
/// in-flight lock, a key reused with other parameters, a stored result
/// replayed (a stored 5xx poisons the key), a malformed request.
const KEYED: &[&str] = &[
    "400 idempotency_error",
    "400 invalid request",
    "409 idempotency_key_in_use",
    "replayed 2xx",
    "replayed 4xx",
    "replayed 500 api_error",
];
/// A PaymentIntent in each status it can be read in.
const INTENT_STATUSES: &[&str] = &[
    "200 pi requires_payment_method",
    "200 pi requires_confirmation",
    "200 pi requires_action",
    "200 pi processing",
    "200 pi requires_capture",
    "200 pi succeeded",
    "200 pi canceled",
];

/// Every response class the model can answer a request of kind `kind`
/// (see [`StripeRequest::kind`]) with, [`StripeResponse::class`] of each
/// possible response; empty for an unknown kind.
pub fn response_classes(kind: &str) -> Vec<&'static str> {
    let own: &[&str] = match kind {
        "create_payment_intent" => &[
            "200 pi requires_confirmation",
            "200 pi requires_action",
            "200 pi processing",
            "200 pi requires_capture",
            "200 pi succeeded",
            "402 card_declined",
            "replayed 402 card_declined",
        ],
        "confirm_payment_intent" => &[
            "200 pi requires_action",
            "200 pi processing",
            "200 pi requires_capture",
            "200 pi succeeded",
            "402 card_declined",
            "replayed 402 card_declined",
            "400 payment_intent_unexpected_state",
            "404 resource_missing",
        ],
        "capture_payment_intent" => &[
            "200 pi succeeded",
            "400 payment_intent_unexpected_state",
            "404 resource_missing",
        ],
        "cancel_payment_intent" => &[
            "200 pi canceled",
            "400 payment_intent_unexpected_state",
            "404 resource_missing",
        ],
        "create_refund" => &[
            "200 refund pending",
            "200 refund succeeded",
            "200 refund failed",
            "400 charge_already_refunded",
            "400 payment_intent_unexpected_state",
            "404 resource_missing",
        ],
        "retrieve_payment_intent" => INTENT_STATUSES,
        "retrieve_refund" => &[
            "200 refund pending",
            "200 refund succeeded",
            "200 refund failed",
            "404 resource_missing",
        ],
        "list_refunds" => &["200 refund list", "404 resource_missing"],
        "search_payment_intents" => &["200 search page"],
        "list_payment_intents" => &[
            "200 list page",
            "400 invalid request",
            "404 resource_missing",
        ],
        _ => return Vec::new(),
    };
    let keyed = matches!(
        kind,
        "create_payment_intent"
            | "confirm_payment_intent"
            | "capture_payment_intent"
            | "cancel_payment_intent"
            | "create_refund"
    );
    let mut v: Vec<&'static str> = own.iter().chain(ANY).copied().collect();
    if kind == "retrieve_payment_intent" {
        v.push("404 resource_missing");
    }
    if keyed {
        v.extend(KEYED);
    } else if kind != "list_payment_intents" {
        v.push("400 invalid request");
    }
    // A create stores a PaymentIntent, a decline or a 5xx: never a 4xx.
    if kind == "create_payment_intent" {
        v.retain(|c| *c != "replayed 4xx");
    }
    v.sort_unstable();
    v.dedup();
    v
}

impl StripeResponse {
    /// The response's class for the coverage catalogue: status and what
    /// the body says (a PaymentIntent's or Refund's status, an error's
    /// code); a replayed stored result is `replayed …`. Malformed-request
    /// errors (amounts, empty or non-integer parameters) are one class,
    /// `400 invalid request`.
    pub fn class(&self) -> &'static str {
        if self.idempotent_replayed {
            return match self.status {
                200..=299 => "replayed 2xx",
                402 => "replayed 402 card_declined",
                500..=599 => "replayed 500 api_error",
                _ => "replayed 4xx",
            };
        }
        match &self.body {
            StripeBody::PaymentIntent(pi) => match pi.status {
                PaymentIntentStatus::RequiresPaymentMethod => "200 pi requires_payment_method",
                PaymentIntentStatus::RequiresConfirmation => "200 pi requires_confirmation",
                PaymentIntentStatus::RequiresAction => "200 pi requires_action",
                PaymentIntentStatus::Processing => "200 pi processing",
                PaymentIntentStatus::RequiresCapture => "200 pi requires_capture",
                PaymentIntentStatus::Succeeded => "200 pi succeeded",
                PaymentIntentStatus::Canceled => "200 pi canceled",
            },
            StripeBody::Refund(r) => match r.status {
                RefundStatus::Pending => "200 refund pending",
                RefundStatus::Succeeded => "200 refund succeeded",
                RefundStatus::Failed => "200 refund failed",
            },
            StripeBody::SearchResult { .. } => "200 search page",
            StripeBody::RefundList { .. } => "200 refund list",
            StripeBody::List { .. } => "200 list page",
            StripeBody::Error(e) => match (self.status, e.code, e.error_type) {
                (503, _, _) => "503 edge unavailable",
                (500..=599, _, _) => "500 api_error",
                (_, Some(StripeErrorCode::CardDeclined), _) => "402 card_declined",
                (_, Some(StripeErrorCode::RateLimit), _) => "429 rate_limit",
                (_, Some(StripeErrorCode::IdempotencyKeyInUse), _) => "409 idempotency_key_in_use",
                (_, Some(StripeErrorCode::ResourceMissing), _) => "404 resource_missing",
                (_, Some(StripeErrorCode::PaymentIntentUnexpectedState), _) => {
                    "400 payment_intent_unexpected_state"
                }
                (_, Some(StripeErrorCode::ChargeAlreadyRefunded), _) => {
                    "400 charge_already_refunded"
                }
                (_, None, StripeErrorType::IdempotencyError) => "400 idempotency_error",
                (
                    _,
                    Some(
                        StripeErrorCode::AmountTooLarge
                        | StripeErrorCode::AmountTooSmall
                        | StripeErrorCode::ParameterInvalidEmpty
                        | StripeErrorCode::ParameterInvalidInteger,
                    )
                    | None,
                    _,
                ) => "400 invalid request",
            },
        }
    }
}

/// A request refused at the door (boxed: responses are large, refusals rare).
type Rejection = Box<StripeResponse>;

fn reject(code: Option<StripeErrorCode>, param: Option<&str>, message: String) -> Rejection {
    Box::new(StripeResponse::invalid(code, param, message))
}

/// A time-driven transition of one object (by id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// An uncaptured authorization expires.
    AuthorizationExpiry,
    /// A `processing` intent settles.
    Processing,
    /// A `pending` refund settles.
    Refund,
}

/// A stored idempotent result.
#[derive(Clone, Debug)]
struct StoredResult {
    request: StripeRequest,
    response: StripeResponse,
    expires_ms: u64,
}

#[derive(Clone, Debug)]
struct Pending {
    request: StripeRequest,
    injected: Option<Injected>,
}

/// The simulated Stripe account.
#[derive(Clone, Debug)]
pub struct Stripe {
    config: StripeConfig,
    truth: StripeGroundTruth,
    /// Idempotency-Key → first result.
    stored: BTreeMap<String, StoredResult>,
    /// (expires_ms, key) for pruning.
    stored_expiry: BTreeSet<(u64, String)>,
    /// Keys whose first request is executing.
    keys_in_flight: BTreeMap<String, Ticket>,
    in_flight: InFlight<Pending>,
    /// Time-driven transitions, in time order: authorization expiry,
    /// refund and `processing` settlement.
    due: BTreeSet<(u64, Due, String)>,
    /// Creation order of intents, for search ordering.
    creation_seq: BTreeMap<String, u64>,
    last_intent: u64,
    last_refund: u64,
}

impl Stripe {
    /// A fresh account.
    pub fn new(config: StripeConfig) -> Self {
        Stripe {
            config,
            truth: StripeGroundTruth::default(),
            stored: BTreeMap::new(),
            stored_expiry: BTreeSet::new(),
            keys_in_flight: BTreeMap::new(),
            in_flight: InFlight::default(),
            due: BTreeSet::new(),
            creation_seq: BTreeMap::new(),
            last_intent: 0,
            last_refund: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    /// Whether a result is currently stored under `key` (not yet pruned).
    pub fn has_stored_key(&self, key: &str) -> bool {
        self.stored.contains_key(key)
    }

    /// Checks the model's internal invariants; panics on a violation. Cheap
    /// enough for tests to call after every step.
    pub fn check_invariants(&self) {
        let t = &self.truth;
        for (id, pi) in &t.payment_intents {
            assert_eq!(id, &pi.id);
            assert!(pi.amount_cents >= MIN_CHARGE_CENTS && pi.amount_cents <= MAX_CHARGE_CENTS);
            assert!(0 <= pi.amount_refunded_cents);
            assert!(
                pi.amount_refunded_cents <= pi.amount_received_cents,
                "{pi:?}"
            );
            assert!(pi.amount_received_cents <= pi.amount_cents, "{pi:?}");
            assert!(
                0 <= pi.amount_capturable_cents && pi.amount_capturable_cents <= pi.amount_cents
            );
            match pi.status {
                PaymentIntentStatus::RequiresCapture => {
                    assert_eq!(pi.amount_capturable_cents, pi.amount_cents);
                    assert_eq!(pi.amount_received_cents, 0);
                }
                PaymentIntentStatus::Succeeded => {
                    assert_eq!(pi.amount_capturable_cents, 0);
                    assert!(pi.amount_received_cents > 0);
                }
                _ => {
                    assert_eq!(pi.amount_capturable_cents, 0);
                    assert_eq!(pi.amount_received_cents, 0);
                }
            }
            let of_pi = |m: Movement| -> i64 {
                t.ledger
                    .iter()
                    .filter(|e| e.payment_intent == pi.id && e.movement == m)
                    .map(|e| e.amount_cents)
                    .sum()
            };
            assert_eq!(
                of_pi(Movement::Charge) + of_pi(Movement::Capture),
                pi.amount_received_cents
            );
            assert_eq!(
                of_pi(Movement::Authorize) - of_pi(Movement::Capture) - of_pi(Movement::Release),
                pi.amount_capturable_cents
            );
            // amount_refunded counts pending and succeeded refunds; the
            // ledger only the succeeded ones (a pending refund moved no
            // money yet, a failed one never will).
            let refunds = |statuses: &[RefundStatus]| -> i64 {
                t.refunds
                    .values()
                    .filter(|r| r.payment_intent == pi.id && statuses.contains(&r.status))
                    .map(|r| r.amount_cents)
                    .sum()
            };
            assert_eq!(
                refunds(&[RefundStatus::Pending, RefundStatus::Succeeded]),
                pi.amount_refunded_cents
            );
            assert_eq!(refunds(&[RefundStatus::Succeeded]), of_pi(Movement::Refund));
        }
        for (i, e) in t.ledger.iter().enumerate() {
            assert_eq!(e.seq, i as u64);
            assert!(e.amount_cents > 0, "{e:?}");
        }
        for (key, ticket) in &self.keys_in_flight {
            let pending = self
                .in_flight
                .get(*ticket)
                .expect("locked key without request");
            assert_eq!(pending.request.idempotency_key(), Some(key.as_str()));
            assert!(
                !self.stored.contains_key(key),
                "key {key} both stored and in flight"
            );
        }
        assert_eq!(self.stored.len(), self.stored_expiry.len());
    }

    // ----- the door: throttling, idempotency, validation -----

    /// The `Idempotency-Key` header itself must be 1..=255 characters.
    fn validate_key(req: &StripeRequest) -> Result<(), Rejection> {
        if let Some(key) = req.idempotency_key() {
            let chars = key.chars().count();
            if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS {
                return Err(reject(
                    None,
                    None,
                    format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters long, got {chars}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Parameter validation, before execution (its 400s are not stored).
    fn validate_params(req: &StripeRequest) -> Result<(), Rejection> {
        let positive = |v: i64, param: &str| -> Result<(), Rejection> {
            if v <= 0 {
                Err(reject(
                    Some(StripeErrorCode::ParameterInvalidInteger),
                    Some(param),
                    format!("Invalid positive integer: {param}={v}"),
                ))
            } else {
                Ok(())
            }
        };
        match req {
            StripeRequest::CreatePaymentIntent {
                customer,
                amount_cents,
                currency,
                metadata,
                ..
            } => {
                if customer.trim().is_empty() {
                    return Err(reject(
                        Some(StripeErrorCode::ParameterInvalidEmpty),
                        Some("customer"),
                        "You passed an empty string for 'customer'".to_owned(),
                    ));
                }
                positive(*amount_cents, "amount")?;
                if *amount_cents < MIN_CHARGE_CENTS {
                    return Err(reject(
                        Some(StripeErrorCode::AmountTooSmall),
                        Some("amount"),
                        format!("Amount must be at least {MIN_CHARGE_CENTS} cents"),
                    ));
                }
                if *amount_cents > MAX_CHARGE_CENTS {
                    return Err(reject(
                        Some(StripeErrorCode::AmountTooLarge),
                        Some("amount"),
                        format!("Amount must be no more than {MAX_CHARGE_CENTS} cents"),
                    ));
                }
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(reject(
                        None,
                        Some("currency"),
                        format!("Invalid currency: {currency:?}"),
                    ));
                }
                if metadata.len() > MAX_METADATA_KEYS
                    || metadata.iter().any(|(k, v)| {
                        k.is_empty()
                            || k.chars().count() > MAX_METADATA_KEY_CHARS
                            || v.chars().count() > MAX_METADATA_VALUE_CHARS
                    })
                {
                    return Err(reject(
                        None,
                        Some("metadata"),
                        format!(
                            "Metadata: at most {MAX_METADATA_KEYS} keys, keys 1..={MAX_METADATA_KEY_CHARS} \
                             characters, values at most {MAX_METADATA_VALUE_CHARS}"
                        ),
                    ));
                }
            }
            StripeRequest::CapturePaymentIntent {
                amount_to_capture_cents: Some(v),
                ..
            } => positive(*v, "amount_to_capture")?,
            StripeRequest::CreateRefund {
                amount_cents: Some(v),
                ..
            } => positive(*v, "amount")?,
            StripeRequest::ListPaymentIntents { limit: Some(l), .. }
            | StripeRequest::ListRefunds { limit: Some(l), .. }
                if !(1..=LIST_LIMIT_MAX).contains(l) =>
            {
                return Err(reject(
                    Some(StripeErrorCode::ParameterInvalidInteger),
                    Some("limit"),
                    format!("This value must be between 1 and {LIST_LIMIT_MAX}."),
                ));
            }
            StripeRequest::SearchPaymentIntents { metadata_key, .. } => {
                if metadata_key.is_empty() || metadata_key.chars().count() > MAX_METADATA_KEY_CHARS
                {
                    return Err(reject(
                        None,
                        Some("query"),
                        "Invalid search query: bad metadata key".to_owned(),
                    ));
                }
            }
            StripeRequest::CapturePaymentIntent { .. }
            | StripeRequest::CreateRefund { .. }
            | StripeRequest::ConfirmPaymentIntent { .. }
            | StripeRequest::CancelPaymentIntent { .. }
            | StripeRequest::RetrievePaymentIntent { .. }
            | StripeRequest::ListPaymentIntents { .. }
            | StripeRequest::RetrieveRefund { .. }
            | StripeRequest::ListRefunds { .. } => {}
        }
        Ok(())
    }

    fn idempotency_mismatch(key: &str) -> StripeResponse {
        StripeResponse::failure(
            400,
            StripeErrorType::IdempotencyError,
            None,
            None,
            format!(
                "Keys for idempotent requests can only be used with the same parameters they were \
                 first used with. Try using a key other than '{key}' if you meant to execute a \
                 different request."
            ),
        )
    }

    // ----- execution -----

    fn intent_missing(id: &str, param: &str) -> StripeResponse {
        StripeResponse::failure(
            404,
            StripeErrorType::InvalidRequestError,
            Some(StripeErrorCode::ResourceMissing),
            Some(param),
            format!("No such payment_intent: '{id}'"),
        )
    }

    fn unexpected_state(pi: &PaymentIntent, action: &str, allowed: &str) -> StripeResponse {
        StripeResponse::invalid(
            Some(StripeErrorCode::PaymentIntentUnexpectedState),
            None,
            format!(
                "You cannot {action} this PaymentIntent because it has a status of {}. \
                 Only a PaymentIntent with one of the following statuses may be {allowed}.",
                pi.status.as_str()
            ),
        )
    }

    fn record(
        &mut self,
        at_ms: u64,
        pi_id: &str,
        refund: Option<&str>,
        movement: Movement,
        cents: i64,
    ) {
        assert!(cents > 0, "ledger entries move a positive amount");
        let customer = self.truth.payment_intents[pi_id].customer.clone();
        let seq = self.truth.ledger.len() as u64;
        self.truth.ledger.push(LedgerEntry {
            seq,
            at_ms,
            customer,
            payment_intent: pi_id.to_owned(),
            refund: refund.map(str::to_owned),
            movement,
            amount_cents: cents,
        });
    }

    fn execute(&mut self, now_ms: u64, req: &StripeRequest) -> StripeResponse {
        match req {
            StripeRequest::CreatePaymentIntent {
                idempotency_key,
                customer,
                amount_cents,
                currency,
                capture_method,
                confirm,
                metadata,
            } => {
                self.last_intent += 1;
                let id = format!("pi_{:04}", self.last_intent);
                let pi = PaymentIntent {
                    id: id.clone(),
                    customer: customer.clone(),
                    amount_cents: *amount_cents,
                    currency: currency.to_ascii_lowercase(),
                    capture_method: *capture_method,
                    status: PaymentIntentStatus::RequiresConfirmation,
                    amount_capturable_cents: 0,
                    amount_received_cents: 0,
                    amount_refunded_cents: 0,
                    metadata: metadata.clone(),
                    idempotency_key: idempotency_key.clone(),
                    created_ms: now_ms,
                    authorized_ms: None,
                    authorization_expires_ms: None,
                    canceled_ms: None,
                    cancellation_reason: None,
                    declined_attempts: 0,
                };
                self.truth.payment_intents.insert(id.clone(), pi);
                self.creation_seq.insert(id.clone(), self.last_intent);
                if *confirm {
                    self.confirm(now_ms, &id)
                } else {
                    StripeResponse::ok(StripeBody::PaymentIntent(
                        self.truth.payment_intents[&id].clone(),
                    ))
                }
            }
            StripeRequest::ConfirmPaymentIntent { id, .. } => {
                let Some(pi) = self.truth.payment_intents.get(id) else {
                    return Self::intent_missing(id, "intent");
                };
                match pi.status {
                    PaymentIntentStatus::RequiresConfirmation
                    | PaymentIntentStatus::RequiresPaymentMethod => self.confirm(now_ms, id),
                    _ => Self::unexpected_state(
                        pi,
                        "confirm",
                        "confirmed: requires_confirmation, requires_payment_method",
                    ),
                }
            }
            StripeRequest::CapturePaymentIntent {
                id,
                amount_to_capture_cents,
                ..
            } => {
                let Some(pi) = self.truth.payment_intents.get(id) else {
                    return Self::intent_missing(id, "intent");
                };
                if pi.status != PaymentIntentStatus::RequiresCapture {
                    return Self::unexpected_state(pi, "capture", "captured: requires_capture");
                }
                let capturable = pi.amount_capturable_cents;
                let amount = amount_to_capture_cents.unwrap_or(capturable);
                if amount > capturable {
                    return StripeResponse::invalid(
                        Some(StripeErrorCode::AmountTooLarge),
                        Some("amount_to_capture"),
                        format!(
                            "The amount to capture ({amount}) is greater than the amount capturable ({capturable})"
                        ),
                    );
                }
                assert!(amount > 0);
                let pi = self
                    .truth
                    .payment_intents
                    .get_mut(id)
                    .expect("checked above");
                pi.amount_received_cents = amount;
                pi.amount_capturable_cents = 0;
                pi.status = PaymentIntentStatus::Succeeded;
                self.record(now_ms, id, None, Movement::Capture, amount);
                if capturable > amount {
                    self.record(now_ms, id, None, Movement::Release, capturable - amount);
                }
                StripeResponse::ok(StripeBody::PaymentIntent(
                    self.truth.payment_intents[id].clone(),
                ))
            }
            StripeRequest::CancelPaymentIntent { id, .. } => {
                let Some(pi) = self.truth.payment_intents.get_mut(id) else {
                    return Self::intent_missing(id, "intent");
                };
                match pi.status {
                    PaymentIntentStatus::RequiresPaymentMethod
                    | PaymentIntentStatus::RequiresConfirmation
                    | PaymentIntentStatus::RequiresAction
                    | PaymentIntentStatus::Processing
                    | PaymentIntentStatus::RequiresCapture => {
                        let held = pi.amount_capturable_cents;
                        pi.status = PaymentIntentStatus::Canceled;
                        pi.amount_capturable_cents = 0;
                        pi.canceled_ms = Some(now_ms);
                        pi.cancellation_reason = Some(CancellationReason::RequestedByClient);
                        if held > 0 {
                            self.record(now_ms, id, None, Movement::Release, held);
                        }
                        StripeResponse::ok(StripeBody::PaymentIntent(
                            self.truth.payment_intents[id].clone(),
                        ))
                    }
                    PaymentIntentStatus::Succeeded | PaymentIntentStatus::Canceled => {
                        Self::unexpected_state(
                            pi,
                            "cancel",
                            "canceled: requires_payment_method, requires_confirmation, requires_action, \
                             processing, requires_capture",
                        )
                    }
                }
            }
            StripeRequest::CreateRefund {
                idempotency_key,
                payment_intent,
                amount_cents,
            } => {
                let Some(pi) = self.truth.payment_intents.get(payment_intent) else {
                    return Self::intent_missing(payment_intent, "payment_intent");
                };
                if pi.status != PaymentIntentStatus::Succeeded {
                    return StripeResponse::invalid(
                        Some(StripeErrorCode::PaymentIntentUnexpectedState),
                        Some("payment_intent"),
                        format!(
                            "This PaymentIntent ({payment_intent}) has a status of {} and no captured \
                             charge to refund; cancel it instead.",
                            pi.status.as_str()
                        ),
                    );
                }
                let remaining = pi.amount_received_cents - pi.amount_refunded_cents;
                if remaining == 0 {
                    return StripeResponse::invalid(
                        Some(StripeErrorCode::ChargeAlreadyRefunded),
                        None,
                        format!("Charge for {payment_intent} has already been refunded."),
                    );
                }
                let amount = amount_cents.unwrap_or(remaining);
                if amount > remaining {
                    return StripeResponse::invalid(
                        Some(StripeErrorCode::AmountTooLarge),
                        Some("amount"),
                        format!(
                            "Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"
                        ),
                    );
                }
                assert!(amount > 0);
                self.last_refund += 1;
                let refund = Refund {
                    id: format!("re_{:04}", self.last_refund),
                    payment_intent: payment_intent.clone(),
                    customer: pi.customer.clone(),
                    amount_cents: amount,
                    created_ms: now_ms,
                    idempotency_key: idempotency_key.clone(),
                    status: RefundStatus::Pending,
                    failure_reason: None,
                    settled_ms: None,
                };
                let id = refund.id.clone();
                let pi = self
                    .truth
                    .payment_intents
                    .get_mut(payment_intent)
                    .expect("checked above");
                // A pending refund counts in amount_refunded at once.
                pi.amount_refunded_cents += amount;
                assert!(pi.amount_refunded_cents <= pi.amount_received_cents);
                self.truth.refunds.insert(id.clone(), refund);
                if self.config.refund_settle_ms == 0 {
                    self.settle_refund(now_ms, &id);
                } else {
                    let at_ms = now_ms.saturating_add(self.config.refund_settle_ms);
                    self.due.insert((at_ms, Due::Refund, id.clone()));
                }
                StripeResponse::ok(StripeBody::Refund(self.truth.refunds[&id].clone()))
            }
            StripeRequest::RetrieveRefund { id } => match self.truth.refunds.get(id) {
                Some(r) => StripeResponse::ok(StripeBody::Refund(r.clone())),
                None => StripeResponse::failure(
                    404,
                    StripeErrorType::InvalidRequestError,
                    Some(StripeErrorCode::ResourceMissing),
                    Some("id"),
                    format!("No such refund: '{id}'"),
                ),
            },
            StripeRequest::ListRefunds {
                payment_intent,
                limit,
            } => {
                if !self.truth.payment_intents.contains_key(payment_intent) {
                    return Self::intent_missing(payment_intent, "payment_intent");
                }
                // Ids are a counter: newest first is reverse id order.
                let all: Vec<&Refund> = self
                    .truth
                    .refunds
                    .values()
                    .rev()
                    .filter(|r| &r.payment_intent == payment_intent)
                    .collect();
                let limit = limit.unwrap_or(LIST_LIMIT_DEFAULT) as usize;
                let has_more = all.len() > limit;
                let data = all.into_iter().take(limit).cloned().collect();
                StripeResponse::ok(StripeBody::RefundList { data, has_more })
            }
            StripeRequest::RetrievePaymentIntent { id } => match self.truth.payment_intents.get(id)
            {
                Some(pi) => StripeResponse::ok(StripeBody::PaymentIntent(pi.clone())),
                None => Self::intent_missing(id, "intent"),
            },
            StripeRequest::SearchPaymentIntents {
                metadata_key,
                metadata_value,
            } => {
                self.truth.searches += 1;
                let delay = self.config.search_index_delay_ms;
                let mut hits: Vec<&PaymentIntent> = self
                    .truth
                    .intents_with_metadata(metadata_key, metadata_value)
                    .filter(|pi| pi.created_ms.saturating_add(delay) <= now_ms)
                    .collect();
                // Newest first, like Stripe; ties broken by creation order.
                hits.sort_by_key(|pi| {
                    std::cmp::Reverse((pi.created_ms, self.creation_seq[&pi.id]))
                });
                let has_more = hits.len() > SEARCH_LIMIT;
                let data = hits.into_iter().take(SEARCH_LIMIT).cloned().collect();
                StripeResponse::ok(StripeBody::SearchResult { data, has_more })
            }
            StripeRequest::ListPaymentIntents {
                customer,
                created_gte_ms,
                limit,
                starting_after,
            } => {
                // Newest first: creation order, reversed.
                let mut all: Vec<&PaymentIntent> = self
                    .truth
                    .payment_intents
                    .values()
                    .filter(|pi| customer.as_ref().is_none_or(|c| &pi.customer == c))
                    .filter(|pi| created_gte_ms.is_none_or(|t| pi.created_ms >= t))
                    .collect();
                all.sort_by_key(|pi| std::cmp::Reverse(self.creation_seq[&pi.id]));
                let start = match starting_after {
                    None => 0,
                    Some(id) => match all.iter().position(|pi| &pi.id == id) {
                        Some(i) => i + 1,
                        None if self.truth.payment_intents.contains_key(id) => all.len(),
                        None => return Self::intent_missing(id, "starting_after"),
                    },
                };
                let limit = limit.unwrap_or(LIST_LIMIT_DEFAULT) as usize;
                let rest = &all[start..];
                let has_more = rest.len() > limit;
                let data = rest.iter().take(limit).map(|pi| (*pi).clone()).collect();
                StripeResponse::ok(StripeBody::List { data, has_more })
            }
        }
    }

    /// Confirms a PaymentIntent that is waiting for confirmation.
    fn confirm(&mut self, now_ms: u64, id: &str) -> StripeResponse {
        let declines = self
            .config
            .declining_customers
            .contains(&self.truth.payment_intents[id].customer);
        let pi = self
            .truth
            .payment_intents
            .get_mut(id)
            .expect("caller checked");
        assert!(matches!(
            pi.status,
            PaymentIntentStatus::RequiresConfirmation | PaymentIntentStatus::RequiresPaymentMethod
        ));
        let customer = pi.customer.clone();
        if self.config.requires_action_customers.contains(&customer) {
            // 3-D Secure: the customer must authenticate; nothing moves.
            pi.status = PaymentIntentStatus::RequiresAction;
            return StripeResponse::ok(StripeBody::PaymentIntent(pi.clone()));
        }
        if self.config.processing_customers.contains(&customer) {
            pi.status = PaymentIntentStatus::Processing;
            let at_ms = now_ms.saturating_add(self.config.processing_ms);
            self.due.insert((at_ms, Due::Processing, id.to_owned()));
            return StripeResponse::ok(StripeBody::PaymentIntent(
                self.truth.payment_intents[id].clone(),
            ));
        }
        if declines {
            pi.status = PaymentIntentStatus::RequiresPaymentMethod;
            pi.declined_attempts += 1;
            return StripeResponse {
                status: 402,
                idempotent_replayed: false,
                body: StripeBody::Error(StripeError {
                    error_type: StripeErrorType::CardError,
                    code: Some(StripeErrorCode::CardDeclined),
                    decline_code: Some("generic_decline".to_owned()),
                    param: None,
                    payment_intent: Some(id.to_owned()),
                    message: "Your card was declined.".to_owned(),
                }),
            };
        }
        self.move_confirmed(now_ms, id);
        StripeResponse::ok(StripeBody::PaymentIntent(
            self.truth.payment_intents[id].clone(),
        ))
    }

    /// A confirmation that went through moves the money: charge
    /// (automatic capture) or authorize (manual).
    fn move_confirmed(&mut self, now_ms: u64, id: &str) {
        let pi = self
            .truth
            .payment_intents
            .get_mut(id)
            .expect("caller checked");
        let amount = pi.amount_cents;
        match pi.capture_method {
            CaptureMethod::Automatic => {
                pi.status = PaymentIntentStatus::Succeeded;
                pi.amount_received_cents = amount;
                self.record(now_ms, id, None, Movement::Charge, amount);
            }
            CaptureMethod::Manual => {
                let expires_ms = now_ms.saturating_add(self.config.authorization_ttl_ms);
                pi.status = PaymentIntentStatus::RequiresCapture;
                pi.amount_capturable_cents = amount;
                pi.authorized_ms = Some(now_ms);
                pi.authorization_expires_ms = Some(expires_ms);
                self.due
                    .insert((expires_ms, Due::AuthorizationExpiry, id.to_owned()));
                self.record(now_ms, id, None, Movement::Authorize, amount);
            }
        }
    }

    /// The card network ends every uncaptured authorization at `now_ms`
    /// (an issuer's reversal, a window shorter than the usual seven days):
    /// each is canceled as on expiry. Returns how many. An environment
    /// event of a fault plan, not a request.
    pub fn expire_authorizations(&mut self, now_ms: u64) -> usize {
        self.tick(now_ms);
        let ids: Vec<String> = self
            .truth
            .payment_intents
            .values()
            .filter(|pi| pi.status == PaymentIntentStatus::RequiresCapture)
            .map(|pi| pi.id.clone())
            .collect();
        for id in &ids {
            self.expire_authorization(now_ms, id);
        }
        self.truth.authorizations_expired_early += ids.len() as u32;
        ids.len()
    }

    /// An uncaptured authorization expires at `at_ms` (Stripe cancels it,
    /// `cancellation_reason = automatic`).
    fn expire_authorization(&mut self, at_ms: u64, id: &str) {
        let pi = self
            .truth
            .payment_intents
            .get_mut(id)
            .expect("expiry of unknown intent");
        if pi.status != PaymentIntentStatus::RequiresCapture {
            return; // captured or canceled meanwhile
        }
        let held = pi.amount_capturable_cents;
        pi.status = PaymentIntentStatus::Canceled;
        pi.amount_capturable_cents = 0;
        pi.canceled_ms = Some(at_ms);
        pi.cancellation_reason = Some(CancellationReason::Automatic);
        self.record(at_ms, id, None, Movement::Release, held);
    }

    /// A `processing` intent settles at `at_ms`: the money moves, or a
    /// declining customer's payment fails (`requires_payment_method`).
    fn settle_processing(&mut self, at_ms: u64, id: &str) {
        let pi = self
            .truth
            .payment_intents
            .get_mut(id)
            .expect("settlement of an unknown intent");
        if pi.status != PaymentIntentStatus::Processing {
            return; // canceled meanwhile
        }
        if self.config.declining_customers.contains(&pi.customer) {
            pi.status = PaymentIntentStatus::RequiresPaymentMethod;
            pi.declined_attempts += 1;
            return;
        }
        self.move_confirmed(at_ms, id);
    }

    /// A `pending` refund settles at `at_ms`: the money goes back
    /// (`succeeded`, a ledger line), or the card refuses it (`failed`:
    /// nothing moved, `amount_refunded` lowered again).
    fn settle_refund(&mut self, at_ms: u64, id: &str) {
        let refund = self
            .truth
            .refunds
            .get_mut(id)
            .expect("settling an unknown refund");
        assert_eq!(
            refund.status,
            RefundStatus::Pending,
            "a refund settles once"
        );
        refund.settled_ms = Some(at_ms);
        let (pi_id, amount) = (refund.payment_intent.clone(), refund.amount_cents);
        if self
            .config
            .refund_failing_customers
            .contains(&refund.customer)
        {
            refund.status = RefundStatus::Failed;
            refund.failure_reason = Some(RefundFailureReason::ExpiredOrCanceledCard);
            let pi = self
                .truth
                .payment_intents
                .get_mut(&pi_id)
                .expect("refund of an intent");
            pi.amount_refunded_cents -= amount;
            assert!(pi.amount_refunded_cents >= 0);
        } else {
            refund.status = RefundStatus::Succeeded;
            self.record(at_ms, &pi_id, Some(id), Movement::Refund, amount);
        }
    }
}

impl ServiceModel for Stripe {
    type Request = StripeRequest;
    type Response = StripeResponse;
    type GroundTruth = StripeGroundTruth;

    fn begin(
        &mut self,
        now_ms: u64,
        req: StripeRequest,
        injected: Option<Injected>,
    ) -> Begin<StripeResponse> {
        self.tick(now_ms);
        // The rate limiter sits in front of everything; a 429 is never stored.
        if injected == Some(Injected::Throttle) {
            return Begin::Done(StripeResponse::failure(
                429,
                StripeErrorType::InvalidRequestError,
                Some(StripeErrorCode::RateLimit),
                None,
                "Too many requests hit the API too quickly.".to_owned(),
            ));
        }
        // So does the edge: its 502/503 never reached the API, so nothing
        // executes and nothing is stored under the key; a retry with the
        // same key executes.
        if injected == Some(Injected::EdgeUnavailable) {
            self.truth.edge_errors += 1;
            return Begin::Done(StripeResponse::edge_unavailable());
        }
        if let Err(resp) = Self::validate_key(&req) {
            return Begin::Done(*resp);
        }
        if let Some(key) = req.idempotency_key() {
            if let Some(stored) = self.stored.get(key) {
                if stored.request != req {
                    return Begin::Done(Self::idempotency_mismatch(key));
                }
                if injected.is_some() {
                    // A server error on the way to the stored result: the
                    // caller sees a 5xx, the stored result is untouched.
                    return Begin::Done(StripeResponse::api_error());
                }
                let mut replay = stored.response.clone();
                replay.idempotent_replayed = true;
                self.truth.idempotent_replays += 1;
                return Begin::Done(replay);
            }
            if let Some(&ticket) = self.keys_in_flight.get(key) {
                let running = &self
                    .in_flight
                    .get(ticket)
                    .expect("lock without request")
                    .request;
                if running != &req {
                    return Begin::Done(Self::idempotency_mismatch(key));
                }
                return Begin::Done(StripeResponse::failure(
                    409,
                    StripeErrorType::InvalidRequestError,
                    Some(StripeErrorCode::IdempotencyKeyInUse),
                    None,
                    format!(
                        "There is currently another in-progress request using this Idempotent Key \
                         ('{key}'). Please try again later."
                    ),
                ));
            }
        }
        // Checked after the key lookup: a stored or running request was
        // valid, so an invalid one with the same key is an idempotency error.
        if let Err(resp) = Self::validate_params(&req) {
            return Begin::Done(*resp);
        }
        let key = req.idempotency_key().map(str::to_owned);
        let ticket = self.in_flight.insert(Pending {
            request: req,
            injected,
        });
        if let Some(key) = key {
            let previous = self.keys_in_flight.insert(key, ticket);
            assert!(previous.is_none());
        }
        Begin::Pending(ticket)
    }

    fn complete(&mut self, now_ms: u64, ticket: Ticket) -> StripeResponse {
        self.tick(now_ms);
        let Pending { request, injected } = self.in_flight.take(ticket);
        let response = match injected {
            Some(Injected::FailBeforeApply) => StripeResponse::api_error(),
            Some(Injected::FailAfterApply) => {
                let _applied = self.execute(now_ms, &request);
                StripeResponse::api_error()
            }
            Some(Injected::Throttle | Injected::EdgeUnavailable) => {
                unreachable!("throttled and edge-failed requests are answered in begin")
            }
            None => self.execute(now_ms, &request),
        };
        if let Some(key) = request.idempotency_key().map(str::to_owned) {
            let locked = self.keys_in_flight.remove(&key);
            assert_eq!(locked, Some(ticket), "key {key} not locked by its request");
            // Execution started: the result is stored, whatever it is.
            let expires_ms = now_ms.saturating_add(self.config.idempotency_key_ttl_ms);
            let previous = self.stored.insert(
                key.clone(),
                StoredResult {
                    request,
                    response: response.clone(),
                    expires_ms,
                },
            );
            assert!(previous.is_none(), "key {key} stored twice");
            self.stored_expiry.insert((expires_ms, key));
        }
        response
    }

    fn abort(&mut self, ticket: Ticket) -> bool {
        let Some(pending) = self.in_flight.remove(ticket) else {
            return false;
        };
        if let Some(key) = pending.request.idempotency_key() {
            let locked = self.keys_in_flight.remove(key);
            assert_eq!(locked, Some(ticket));
        }
        true
    }

    fn in_flight(&self) -> Vec<Ticket> {
        self.in_flight.tickets()
    }

    fn tick(&mut self, now_ms: u64) {
        // Due transitions in time order, each stamped with its own instant,
        // so the ledger stays ordered by time.
        while let Some((at_ms, due, id)) = self.due.first().cloned() {
            if at_ms > now_ms {
                break;
            }
            self.due.pop_first();
            match due {
                Due::AuthorizationExpiry => self.expire_authorization(at_ms, &id),
                Due::Processing => self.settle_processing(at_ms, &id),
                Due::Refund => self.settle_refund(at_ms, &id),
            }
        }
        while let Some((expires_ms, key)) = self.stored_expiry.first().cloned() {
            if expires_ms > now_ms {
                break;
            }
            self.stored_expiry.pop_first();
            let removed = self.stored.remove(&key);
            assert!(removed.is_some_and(|r| r.expires_ms == expires_ms));
        }
    }

    fn ground_truth(&self) -> &StripeGroundTruth {
        &self.truth
    }

    fn dump(&self) -> String {
        let mut out = format!(
            "stripe: {} intents, {} refunds, {} ledger entries, {} stored keys, {} in flight\n",
            self.truth.payment_intents.len(),
            self.truth.refunds.len(),
            self.truth.ledger.len(),
            self.stored.len(),
            self.in_flight.len()
        );
        for pi in self.truth.payment_intents.values() {
            let _ = writeln!(
                out,
                "  {} {} {} {:?} amount={} capturable={} received={} refunded={} key={} metadata={:?}",
                pi.id,
                pi.customer,
                pi.status.as_str(),
                pi.capture_method,
                pi.amount_cents,
                pi.amount_capturable_cents,
                pi.amount_received_cents,
                pi.amount_refunded_cents,
                pi.idempotency_key.as_deref().unwrap_or("-"),
                pi.metadata
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
