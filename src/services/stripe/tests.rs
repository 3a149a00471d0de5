//! Unit tests (one per documented behaviour) and property tests (the model
//! against a small reference model; no panic on arbitrary requests).

use super::*;
use proptest::prelude::*;

const DAY_MS: u64 = 24 * HOUR_MS;

fn stripe() -> Stripe {
    Stripe::new(StripeConfig {
        declining_customers: ["cus_decline".to_owned()].into(),
        refund_failing_customers: ["cus_b".to_owned()].into(),
        ..StripeConfig::default()
    })
}

fn create(key: Option<&str>, customer: &str, amount: i64, method: CaptureMethod) -> StripeRequest {
    StripeRequest::CreatePaymentIntent {
        idempotency_key: key.map(str::to_owned),
        customer: customer.to_owned(),
        amount_cents: amount,
        currency: "usd".to_owned(),
        capture_method: method,
        confirm: true,
        metadata: [("saga_id".to_owned(), format!("saga-{customer}"))].into(),
    }
}

fn charge(key: &str, amount: i64) -> StripeRequest {
    create(Some(key), "cus_a", amount, CaptureMethod::Automatic)
}

fn authorize(key: &str, amount: i64) -> StripeRequest {
    create(Some(key), "cus_a", amount, CaptureMethod::Manual)
}

fn capture(key: &str, id: &str, amount: Option<i64>) -> StripeRequest {
    StripeRequest::CapturePaymentIntent {
        idempotency_key: Some(key.to_owned()),
        id: id.to_owned(),
        amount_to_capture_cents: amount,
    }
}

fn cancel(key: &str, id: &str) -> StripeRequest {
    StripeRequest::CancelPaymentIntent {
        idempotency_key: Some(key.to_owned()),
        id: id.to_owned(),
    }
}

fn refund(key: &str, id: &str, amount: Option<i64>) -> StripeRequest {
    StripeRequest::CreateRefund {
        idempotency_key: Some(key.to_owned()),
        payment_intent: id.to_owned(),
        amount_cents: amount,
    }
}

fn retrieve(s: &mut Stripe, now_ms: u64, id: &str) -> PaymentIntent {
    let r = s.handle(
        now_ms,
        StripeRequest::RetrievePaymentIntent { id: id.to_owned() },
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.payment_intent().cloned().expect("a payment intent")
}

fn code(r: &StripeResponse) -> Option<StripeErrorCode> {
    r.error_code()
}

fn err_type(r: &StripeResponse) -> Option<StripeErrorType> {
    r.error().map(|e| e.error_type)
}

// ----- lifecycle -----

#[test]
fn automatic_capture_charges_at_once() {
    let mut s = stripe();
    let r = s.handle(0, charge("k1", 25_000), None);
    assert_eq!(r.status, 200);
    assert!(!r.idempotent_replayed);
    let pi = r.payment_intent().unwrap();
    assert_eq!(pi.id, "pi_0001");
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(pi.amount_received_cents, 25_000);
    assert_eq!(pi.idempotency_key.as_deref(), Some("k1"));
    let t = s.ground_truth();
    assert_eq!(t.captured_cents("cus_a"), 25_000);
    assert_eq!(t.ledger.len(), 1);
    assert_eq!(t.ledger[0].movement, Movement::Charge);
    s.check_invariants();
}

#[test]
fn create_without_confirm_then_confirm() {
    let mut s = stripe();
    let mut req = charge("k1", 1_000);
    if let StripeRequest::CreatePaymentIntent { confirm, .. } = &mut req {
        *confirm = false;
    }
    let r = s.handle(0, req, None);
    assert_eq!(
        r.payment_intent().unwrap().status,
        PaymentIntentStatus::RequiresConfirmation
    );
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 0);
    let confirm = StripeRequest::ConfirmPaymentIntent {
        idempotency_key: Some("k2".into()),
        id: "pi_0001".into(),
    };
    let r = s.handle(1, confirm, None);
    assert_eq!(
        r.payment_intent().unwrap().status,
        PaymentIntentStatus::Succeeded
    );
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 1_000);
    // Confirming a succeeded intent is a state error.
    let again = StripeRequest::ConfirmPaymentIntent {
        idempotency_key: Some("k3".into()),
        id: "pi_0001".into(),
    };
    let r = s.handle(2, again, None);
    assert_eq!(r.status, 400);
    assert_eq!(
        code(&r),
        Some(StripeErrorCode::PaymentIntentUnexpectedState)
    );
    s.check_invariants();
}

#[test]
fn manual_capture_authorizes_then_captures() {
    let mut s = stripe();
    let r = s.handle(0, authorize("k1", 10_000), None);
    let pi = r.payment_intent().unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::RequiresCapture);
    assert_eq!(pi.amount_capturable_cents, 10_000);
    assert_eq!(pi.amount_received_cents, 0);
    assert_eq!(pi.authorization_expires_ms, Some(7 * DAY_MS));
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 0);
    assert_eq!(s.ground_truth().held_cents("cus_a"), 10_000);

    let r = s.handle(1_000, capture("k2", "pi_0001", None), None);
    assert_eq!(r.status, 200);
    let pi = r.payment_intent().unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(pi.amount_received_cents, 10_000);
    assert_eq!(pi.amount_capturable_cents, 0);
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 10_000);
    assert_eq!(s.ground_truth().held_cents("cus_a"), 0);
    s.check_invariants();
}

#[test]
fn partial_capture_releases_the_rest() {
    let mut s = stripe();
    s.handle(0, authorize("k1", 10_000), None);
    let r = s.handle(1, capture("k2", "pi_0001", Some(6_000)), None);
    assert_eq!(r.payment_intent().unwrap().amount_received_cents, 6_000);
    let t = s.ground_truth();
    assert_eq!(t.captured_cents("cus_a"), 6_000);
    assert_eq!(t.held_cents("cus_a"), 0);
    let movements: Vec<_> = t
        .ledger
        .iter()
        .map(|e| (e.movement, e.amount_cents))
        .collect();
    assert_eq!(
        movements,
        vec![
            (Movement::Authorize, 10_000),
            (Movement::Capture, 6_000),
            (Movement::Release, 4_000)
        ]
    );
    s.check_invariants();
}

#[test]
fn capture_more_than_authorized_is_rejected() {
    let mut s = stripe();
    s.handle(0, authorize("k1", 10_000), None);
    let r = s.handle(1, capture("k2", "pi_0001", Some(10_001)), None);
    assert_eq!(r.status, 400);
    assert_eq!(code(&r), Some(StripeErrorCode::AmountTooLarge));
    assert_eq!(
        retrieve(&mut s, 2, "pi_0001").status,
        PaymentIntentStatus::RequiresCapture
    );
}

#[test]
fn capture_of_non_capturable_intent_is_unexpected_state() {
    let mut s = stripe();
    s.handle(0, charge("k1", 10_000), None);
    let r = s.handle(1, capture("k2", "pi_0001", None), None);
    assert_eq!(r.status, 400);
    assert_eq!(
        code(&r),
        Some(StripeErrorCode::PaymentIntentUnexpectedState)
    );
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 10_000);
}

#[test]
fn authorization_expires_after_seven_days_and_capture_fails() {
    let mut s = stripe();
    s.handle(0, authorize("k1", 10_000), None);
    // One millisecond before expiry it is still capturable (checked by
    // retrieve, which does not change it).
    assert_eq!(
        retrieve(&mut s, 7 * DAY_MS - 1, "pi_0001").status,
        PaymentIntentStatus::RequiresCapture
    );
    let r = s.handle(7 * DAY_MS, capture("k2", "pi_0001", None), None);
    assert_eq!(r.status, 400);
    assert_eq!(
        code(&r),
        Some(StripeErrorCode::PaymentIntentUnexpectedState)
    );
    let pi = retrieve(&mut s, 7 * DAY_MS, "pi_0001");
    assert_eq!(pi.status, PaymentIntentStatus::Canceled);
    assert_eq!(pi.cancellation_reason, Some(CancellationReason::Automatic));
    assert_eq!(pi.canceled_ms, Some(7 * DAY_MS));
    let t = s.ground_truth();
    assert_eq!(t.captured_cents("cus_a"), 0);
    assert_eq!(t.held_cents("cus_a"), 0);
    assert_eq!(t.ledger.last().unwrap().movement, Movement::Release);
    s.check_invariants();
}

#[test]
fn tick_expires_authorizations_without_a_request() {
    let mut s = stripe();
    s.handle(0, authorize("k1", 10_000), None);
    s.tick(8 * DAY_MS);
    let pi = &s.ground_truth().payment_intents["pi_0001"];
    assert_eq!(pi.status, PaymentIntentStatus::Canceled);
    // Stamped with the expiry instant, not the instant it was noticed.
    assert_eq!(pi.canceled_ms, Some(7 * DAY_MS));
}

#[test]
fn cancel_before_capture_releases_the_hold() {
    let mut s = stripe();
    s.handle(0, authorize("k1", 10_000), None);
    let r = s.handle(1, cancel("k2", "pi_0001"), None);
    assert_eq!(r.status, 200);
    let pi = r.payment_intent().unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Canceled);
    assert_eq!(
        pi.cancellation_reason,
        Some(CancellationReason::RequestedByClient)
    );
    assert_eq!(s.ground_truth().held_cents("cus_a"), 0);
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 0);
    // Capturing a canceled intent fails.
    let r = s.handle(2, capture("k3", "pi_0001", None), None);
    assert_eq!(
        code(&r),
        Some(StripeErrorCode::PaymentIntentUnexpectedState)
    );
    s.check_invariants();
}

#[test]
fn cancel_after_capture_or_twice_is_unexpected_state() {
    let mut s = stripe();
    s.handle(0, charge("k1", 10_000), None);
    let r = s.handle(1, cancel("k2", "pi_0001"), None);
    assert_eq!(r.status, 400);
    assert_eq!(
        code(&r),
        Some(StripeErrorCode::PaymentIntentUnexpectedState)
    );

    s.handle(2, authorize("k3", 10_000), None);
    assert_eq!(s.handle(3, cancel("k4", "pi_0002"), None).status, 200);
    let r = s.handle(4, cancel("k5", "pi_0002"), None);
    assert_eq!(r.status, 400);
    assert_eq!(
        code(&r),
        Some(StripeErrorCode::PaymentIntentUnexpectedState)
    );
}

// ----- declines -----

#[test]
fn declining_customer_gets_402_and_intent_needs_payment_method() {
    let mut s = stripe();
    let r = s.handle(
        0,
        create(Some("k1"), "cus_decline", 5_000, CaptureMethod::Automatic),
        None,
    );
    assert_eq!(r.status, 402);
    assert_eq!(err_type(&r), Some(StripeErrorType::CardError));
    assert_eq!(code(&r), Some(StripeErrorCode::CardDeclined));
    assert_eq!(
        r.error().unwrap().payment_intent.as_deref(),
        Some("pi_0001")
    );
    let pi = retrieve(&mut s, 1, "pi_0001");
    assert_eq!(pi.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert_eq!(pi.declined_attempts, 1);
    assert_eq!(s.ground_truth().ledger.len(), 0);
    // The 402 is stored under the key: a retry replays it, no second intent.
    let r2 = s.handle(
        2,
        create(Some("k1"), "cus_decline", 5_000, CaptureMethod::Automatic),
        None,
    );
    assert_eq!(r2.status, 402);
    assert!(r2.idempotent_replayed);
    assert_eq!(r2.body, r.body);
    assert_eq!(s.ground_truth().payment_intents.len(), 1);
    // Declines are deterministic data: confirming again declines again.
    let r3 = s.handle(
        3,
        StripeRequest::ConfirmPaymentIntent {
            idempotency_key: Some("k2".into()),
            id: "pi_0001".into(),
        },
        None,
    );
    assert_eq!(r3.status, 402);
    assert_eq!(retrieve(&mut s, 4, "pi_0001").declined_attempts, 2);
    // A declined intent can be canceled.
    assert_eq!(s.handle(5, cancel("k3", "pi_0001"), None).status, 200);
}

// ----- refunds -----

#[test]
fn partial_then_full_refund_then_already_refunded() {
    let mut s = stripe();
    s.handle(0, charge("k1", 10_000), None);
    let r = s.handle(1, refund("r1", "pi_0001", Some(3_000)), None);
    assert_eq!(r.status, 200);
    let re = r.refund().unwrap();
    assert_eq!(re.id, "re_0001");
    assert_eq!(re.amount_cents, 3_000);
    // `None` refunds the remainder.
    let r = s.handle(2, refund("r2", "pi_0001", None), None);
    assert_eq!(r.refund().unwrap().amount_cents, 7_000);
    let r = s.handle(3, refund("r3", "pi_0001", None), None);
    assert_eq!(r.status, 400);
    assert_eq!(code(&r), Some(StripeErrorCode::ChargeAlreadyRefunded));
    let r = s.handle(4, refund("r4", "pi_0001", Some(1)), None);
    assert_eq!(code(&r), Some(StripeErrorCode::ChargeAlreadyRefunded));
    let t = s.ground_truth();
    assert_eq!(t.refunded_cents("cus_a"), 10_000);
    assert_eq!(t.net_cents("cus_a"), 0);
    assert_eq!(t.payment_intents["pi_0001"].amount_refunded_cents, 10_000);
    s.check_invariants();
}

#[test]
fn refund_over_the_remainder_is_rejected() {
    let mut s = stripe();
    s.handle(0, charge("k1", 10_000), None);
    s.handle(1, refund("r1", "pi_0001", Some(6_000)), None);
    let r = s.handle(2, refund("r2", "pi_0001", Some(4_001)), None);
    assert_eq!(r.status, 400);
    assert_eq!(code(&r), Some(StripeErrorCode::AmountTooLarge));
    assert_eq!(s.ground_truth().refunded_cents("cus_a"), 6_000);
}

#[test]
fn refund_of_partial_capture_is_bounded_by_captured() {
    let mut s = stripe();
    s.handle(0, authorize("k1", 10_000), None);
    s.handle(1, capture("k2", "pi_0001", Some(4_000)), None);
    let r = s.handle(2, refund("r1", "pi_0001", Some(4_001)), None);
    assert_eq!(code(&r), Some(StripeErrorCode::AmountTooLarge));
    let r = s.handle(3, refund("r2", "pi_0001", None), None);
    assert_eq!(r.refund().unwrap().amount_cents, 4_000);
}

#[test]
fn refund_of_uncaptured_intent_is_an_error() {
    let mut s = stripe();
    s.handle(0, authorize("k1", 10_000), None);
    let r = s.handle(1, refund("r1", "pi_0001", None), None);
    assert_eq!(r.status, 400);
    assert_eq!(
        code(&r),
        Some(StripeErrorCode::PaymentIntentUnexpectedState)
    );
    assert!(s.ground_truth().refunds.is_empty());
    assert_eq!(s.ground_truth().held_cents("cus_a"), 10_000);
}

#[test]
fn unknown_intent_is_404_resource_missing() {
    let mut s = stripe();
    for req in [
        StripeRequest::RetrievePaymentIntent {
            id: "pi_9999".into(),
        },
        capture("k1", "pi_9999", None),
        cancel("k2", "nope"),
        refund("k3", "", None),
        StripeRequest::ConfirmPaymentIntent {
            idempotency_key: None,
            id: "pi_0001".into(),
        },
    ] {
        let r = s.handle(0, req, None);
        assert_eq!(r.status, 404, "{r:?}");
        assert_eq!(code(&r), Some(StripeErrorCode::ResourceMissing));
    }
}

// ----- validation -----

#[test]
fn invalid_amounts_are_400_and_not_stored() {
    let mut s = stripe();
    for (amount, expected) in [
        (0, StripeErrorCode::ParameterInvalidInteger),
        (-5, StripeErrorCode::ParameterInvalidInteger),
        (i64::MIN, StripeErrorCode::ParameterInvalidInteger),
        (49, StripeErrorCode::AmountTooSmall),
        (MAX_CHARGE_CENTS + 1, StripeErrorCode::AmountTooLarge),
        (i64::MAX, StripeErrorCode::AmountTooLarge),
    ] {
        let r = s.handle(0, charge("k1", amount), None);
        assert_eq!(r.status, 400);
        assert_eq!(code(&r), Some(expected), "amount {amount}");
        assert!(!s.has_stored_key("k1"));
    }
    // Not stored: the corrected request with the same key executes.
    let r = s.handle(1, charge("k1", 5_000), None);
    assert_eq!(r.status, 200);
    assert!(!r.idempotent_replayed);
    for (req, param) in [
        (capture("k2", "pi_0001", Some(0)), "amount_to_capture"),
        (refund("k3", "pi_0001", Some(-1)), "amount"),
    ] {
        let r = s.handle(2, req, None);
        assert_eq!(r.status, 400);
        assert_eq!(code(&r), Some(StripeErrorCode::ParameterInvalidInteger));
        assert_eq!(r.error().unwrap().param.as_deref(), Some(param));
    }
    assert!(!s.has_stored_key("k2") && !s.has_stored_key("k3"));
}

#[test]
fn bad_customer_currency_metadata_and_keys_are_400() {
    let mut s = stripe();
    let bad = [
        create(Some("k"), " ", 1_000, CaptureMethod::Automatic),
        StripeRequest::CreatePaymentIntent {
            idempotency_key: None,
            customer: "cus_a".into(),
            amount_cents: 1_000,
            currency: "dollars".into(),
            capture_method: CaptureMethod::Automatic,
            confirm: true,
            metadata: BTreeMap::new(),
        },
        StripeRequest::CreatePaymentIntent {
            idempotency_key: None,
            customer: "cus_a".into(),
            amount_cents: 1_000,
            currency: "usd".into(),
            capture_method: CaptureMethod::Automatic,
            confirm: true,
            metadata: [("k".repeat(41), "v".into())].into(),
        },
        charge("", 1_000),
        charge(&"x".repeat(256), 1_000),
        StripeRequest::SearchPaymentIntents {
            metadata_key: String::new(),
            metadata_value: "x".into(),
        },
    ];
    for req in bad {
        let r = s.handle(0, req.clone(), None);
        assert_eq!(r.status, 400, "{req:?}");
        assert_eq!(err_type(&r), Some(StripeErrorType::InvalidRequestError));
    }
    // 255 characters is fine.
    assert_eq!(
        s.handle(0, charge(&"x".repeat(255), 1_000), None).status,
        200
    );
    assert!(s.ground_truth().payment_intents.len() == 1);
}

// ----- idempotency -----

#[test]
fn same_key_within_24h_is_replayed_not_re_executed() {
    let mut s = stripe();
    let first = s.handle(0, charge("k1", 25_000), None);
    let again = s.handle(24 * HOUR_MS - 1, charge("k1", 25_000), None);
    assert!(again.idempotent_replayed);
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body);
    assert_eq!(s.ground_truth().payment_intents.len(), 1);
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 25_000);
}

#[test]
fn same_key_after_24h_executes_again_double_charge() {
    // The double charge the real Stripe allows: keys are pruned after 24 h.
    let mut s = stripe();
    s.handle(0, charge("k1", 25_000), None);
    let again = s.handle(24 * HOUR_MS, charge("k1", 25_000), None);
    assert_eq!(again.status, 200);
    assert!(!again.idempotent_replayed);
    assert_eq!(again.payment_intent().unwrap().id, "pi_0002");
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 50_000);
    s.check_invariants();
}

#[test]
fn key_ttl_counts_from_when_the_result_was_stored() {
    let mut s = stripe();
    let t = s.begin(0, charge("k1", 1_000), None).ticket().unwrap();
    s.complete(5_000, t);
    let r = s.handle(24 * HOUR_MS + 4_999, charge("k1", 1_000), None);
    assert!(r.idempotent_replayed);
    let r = s.handle(24 * HOUR_MS + 5_000, charge("k1", 1_000), None);
    assert!(!r.idempotent_replayed);
}

#[test]
fn same_key_different_parameters_is_idempotency_error() {
    let mut s = stripe();
    s.handle(0, charge("k1", 25_000), None);
    let r = s.handle(1, charge("k1", 26_000), None);
    assert_eq!(r.status, 400);
    assert_eq!(err_type(&r), Some(StripeErrorType::IdempotencyError));
    assert!(!r.idempotent_replayed);
    // Different metadata is a different request too.
    let mut other = charge("k1", 25_000);
    if let StripeRequest::CreatePaymentIntent { metadata, .. } = &mut other {
        metadata.insert("x".into(), "y".into());
    }
    assert_eq!(
        err_type(&s.handle(2, other, None)),
        Some(StripeErrorType::IdempotencyError)
    );
    // An invalid request with a used key: parameters differ.
    assert_eq!(
        err_type(&s.handle(3, charge("k1", -1), None)),
        Some(StripeErrorType::IdempotencyError)
    );
    // The same key on another endpoint.
    let r = s.handle(4, refund("k1", "pi_0001", None), None);
    assert_eq!(err_type(&r), Some(StripeErrorType::IdempotencyError));
    assert!(s.ground_truth().refunds.is_empty());
    // The original still replays.
    assert!(s.handle(5, charge("k1", 25_000), None).idempotent_replayed);
    assert_eq!(s.ground_truth().payment_intents.len(), 1);
}

#[test]
fn concurrent_same_key_gets_409_in_use_and_it_is_not_stored() {
    let mut s = stripe();
    let t1 = s.begin(0, charge("k1", 25_000), None).ticket().unwrap();
    let second = s.begin(10, charge("k1", 25_000), None);
    let r = second.done().expect("answered at once");
    assert_eq!(r.status, 409);
    assert_eq!(code(&r), Some(StripeErrorCode::IdempotencyKeyInUse));
    // Different parameters while in flight: idempotency error.
    let r = s.begin(11, charge("k1", 1_000), None).done().unwrap();
    assert_eq!(err_type(&r), Some(StripeErrorType::IdempotencyError));
    let first = s.complete(300, t1);
    assert_eq!(first.status, 200);
    // After the first completes, the same key replays the stored result.
    let r = s.handle(400, charge("k1", 25_000), None);
    assert!(r.idempotent_replayed);
    assert_eq!(r.body, first.body);
    assert_eq!(s.ground_truth().payment_intents.len(), 1);
    s.check_invariants();
}

#[test]
fn requests_without_key_execute_twice() {
    let mut s = stripe();
    let req = create(None, "cus_a", 1_000, CaptureMethod::Automatic);
    s.handle(0, req.clone(), None);
    s.handle(1, req, None);
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 2_000);
}

#[test]
fn throttle_is_429_and_not_stored() {
    let mut s = stripe();
    let r = s.handle(0, charge("k1", 25_000), Some(Injected::Throttle));
    assert_eq!(r.status, 429);
    assert_eq!(code(&r), Some(StripeErrorCode::RateLimit));
    assert!(s.ground_truth().payment_intents.is_empty());
    assert!(!s.has_stored_key("k1"));
    let r = s.handle(1, charge("k1", 25_000), None);
    assert_eq!(r.status, 200);
    assert!(!r.idempotent_replayed);
}

#[test]
fn fail_before_apply_stores_the_500_and_replays_it() {
    let mut s = stripe();
    let r = s.handle(0, charge("k1", 25_000), Some(Injected::FailBeforeApply));
    assert_eq!(r.status, 500);
    assert_eq!(err_type(&r), Some(StripeErrorType::ApiError));
    assert!(s.ground_truth().payment_intents.is_empty());
    // Same key: the stored 500 is replayed, nothing executes.
    let r2 = s.handle(1, charge("k1", 25_000), None);
    assert_eq!(r2.status, 500);
    assert!(r2.idempotent_replayed);
    assert!(s.ground_truth().payment_intents.is_empty());
    // Only a new key executes.
    assert_eq!(s.handle(2, charge("k2", 25_000), None).status, 200);
}

#[test]
fn edge_503_is_not_stored_and_a_retry_with_the_same_key_executes() {
    let mut s = stripe();
    let r = s.handle(0, charge("k1", 25_000), Some(Injected::EdgeUnavailable));
    assert_eq!(r.status, 503);
    assert_eq!(err_type(&r), Some(StripeErrorType::ApiError));
    assert!(s.ground_truth().payment_intents.is_empty());
    assert!(!s.has_stored_key("k1"));
    // Same key: it executes (nothing was stored), unlike after a stored 500.
    let r2 = s.handle(1, charge("k1", 25_000), None);
    assert_eq!(r2.status, 200, "{r2:?}");
    assert!(!r2.idempotent_replayed);
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 25_000);
    // Beside it, the stored 500: the same key replays it.
    s.handle(2, charge("k2", 25_000), Some(Injected::FailBeforeApply));
    let r3 = s.handle(3, charge("k2", 25_000), None);
    assert_eq!((r3.status, r3.idempotent_replayed), (500, true));
    // An edge error in front of a stored result leaves it untouched.
    let r4 = s.handle(4, charge("k1", 25_000), Some(Injected::EdgeUnavailable));
    assert_eq!((r4.status, r4.idempotent_replayed), (503, false));
    assert!(s.handle(5, charge("k1", 25_000), None).idempotent_replayed);
    assert_eq!(s.ground_truth().payment_intents.len(), 1);
}

#[test]
fn fail_after_apply_charges_and_stores_the_500() {
    let mut s = stripe();
    let r = s.handle(0, charge("k1", 25_000), Some(Injected::FailAfterApply));
    assert_eq!(r.status, 500);
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 25_000);
    let r2 = s.handle(1, charge("k1", 25_000), None);
    assert_eq!(r2.status, 500);
    assert!(r2.idempotent_replayed);
    assert_eq!(s.ground_truth().captured_cents("cus_a"), 25_000);
    // Reconciliation finds the intent through the consistent list at once;
    // search (60 s behind by default) finds it only a minute later.
    let (ids, more) = page(s.handle(2, list(Some("cus_a"), None, None), None));
    assert_eq!((ids, more), (vec!["pi_0001".to_string()], false));
    let search = StripeRequest::SearchPaymentIntents {
        metadata_key: "saga_id".into(),
        metadata_value: "saga-cus_a".into(),
    };
    let hits = |r: StripeResponse| match r.body {
        StripeBody::SearchResult { data, has_more } => {
            assert!(!has_more);
            data
        }
        other => panic!("{other:?}"),
    };
    assert!(hits(s.handle(2, search.clone(), None)).is_empty());
    let data = hits(s.handle(60_000, search, None));
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].status, PaymentIntentStatus::Succeeded);
}

#[test]
fn fault_on_a_replay_is_a_500_and_keeps_the_stored_result() {
    let mut s = stripe();
    s.handle(0, charge("k1", 25_000), None);
    let r = s.handle(1, charge("k1", 25_000), Some(Injected::FailBeforeApply));
    assert_eq!(r.status, 500);
    assert!(!r.idempotent_replayed);
    let r = s.handle(2, charge("k1", 25_000), None);
    assert_eq!(r.status, 200);
    assert!(r.idempotent_replayed);
    assert_eq!(s.ground_truth().payment_intents.len(), 1);
}

#[test]
fn state_errors_are_stored_under_the_key() {
    let mut s = stripe();
    s.handle(0, charge("k1", 10_000), None);
    let r1 = s.handle(1, refund("r1", "pi_0001", Some(20_000)), None);
    assert_eq!(code(&r1), Some(StripeErrorCode::AmountTooLarge));
    let r2 = s.handle(2, refund("r1", "pi_0001", Some(20_000)), None);
    assert!(r2.idempotent_replayed);
    assert_eq!(r2.body, r1.body);
}

#[test]
fn abort_releases_the_key_and_applies_nothing() {
    let mut s = stripe();
    let t = s.begin(0, charge("k1", 25_000), None).ticket().unwrap();
    assert_eq!(s.in_flight(), vec![t]);
    assert!(s.abort(t));
    assert!(!s.abort(t));
    assert!(s.in_flight().is_empty());
    assert!(s.ground_truth().payment_intents.is_empty());
    let r = s.handle(1, charge("k1", 25_000), None);
    assert_eq!(r.status, 200);
    assert!(!r.idempotent_replayed);
}

#[test]
#[should_panic(expected = "not in flight")]
fn completing_a_ticket_twice_is_a_harness_bug() {
    let mut s = stripe();
    let t = s.begin(0, charge("k1", 25_000), None).ticket().unwrap();
    s.complete(1, t);
    s.complete(2, t);
}

#[test]
fn execution_happens_at_complete_time() {
    let mut s = stripe();
    s.handle(0, authorize("k1", 10_000), None);
    // A capture that arrives just before expiry but commits after it fails.
    let t = s
        .begin(7 * DAY_MS - 10, capture("k2", "pi_0001", None), None)
        .ticket()
        .unwrap();
    let r = s.complete(7 * DAY_MS + 10, t);
    assert_eq!(
        code(&r),
        Some(StripeErrorCode::PaymentIntentUnexpectedState)
    );
}

// ----- reads -----

#[test]
fn search_by_metadata_is_newest_first_and_may_lag() {
    let mut s = Stripe::new(StripeConfig {
        search_index_delay_ms: 1_000,
        ..StripeConfig::default()
    });
    let mut req = charge("k1", 1_000);
    s.handle(0, req.clone(), None);
    if let StripeRequest::CreatePaymentIntent {
        idempotency_key, ..
    } = &mut req
    {
        *idempotency_key = Some("k2".into());
    }
    s.handle(500, req, None);
    let search = StripeRequest::SearchPaymentIntents {
        metadata_key: "saga_id".into(),
        metadata_value: "saga-cus_a".into(),
    };
    let ids = |r: StripeResponse| match r.body {
        StripeBody::SearchResult { data, .. } => data.into_iter().map(|p| p.id).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        ids(s.handle(999, search.clone(), None)),
        Vec::<String>::new()
    );
    assert_eq!(ids(s.handle(1_000, search.clone(), None)), vec!["pi_0001"]);
    assert_eq!(
        ids(s.handle(1_500, search.clone(), None)),
        vec!["pi_0002", "pi_0001"]
    );
    // Retrieve by id is consistent at once, and reads are never stored.
    assert_eq!(retrieve(&mut s, 1, "pi_0002").id, "pi_0002");
    // The ground-truth helper is consistent too.
    assert_eq!(
        s.ground_truth()
            .intents_with_metadata("saga_id", "saga-cus_a")
            .count(),
        2
    );
}

fn list(customer: Option<&str>, limit: Option<u32>, after: Option<&str>) -> StripeRequest {
    StripeRequest::ListPaymentIntents {
        customer: customer.map(str::to_owned),
        created_gte_ms: None,
        limit,
        starting_after: after.map(str::to_owned),
    }
}

fn page(r: StripeResponse) -> (Vec<String>, bool) {
    match r.body {
        StripeBody::List { data, has_more } => (data.into_iter().map(|p| p.id).collect(), has_more),
        other => panic!("{other:?}"),
    }
}

#[test]
fn listing_is_consistent_at_once_newest_first_and_paginated() {
    // Search lags a minute; the list endpoint does not (Stripe recommends
    // it for read-after-write).
    let mut s = Stripe::new(StripeConfig {
        search_index_delay_ms: 60_000,
        ..StripeConfig::default()
    });
    for (i, customer) in ["cus_a", "cus_b", "cus_a", "cus_a"].iter().enumerate() {
        let req = create(
            Some(&format!("k{i}")),
            customer,
            1_000,
            CaptureMethod::Automatic,
        );
        assert_eq!(s.handle(i as u64 * 10, req, None).status, 200);
    }
    let (ids, more) = page(s.handle(31, list(Some("cus_a"), None, None), None));
    assert_eq!(ids, ["pi_0004", "pi_0003", "pi_0001"]);
    assert!(!more);
    let (ids, more) = page(s.handle(31, list(Some("cus_a"), Some(2), None), None));
    assert_eq!(ids, ["pi_0004", "pi_0003"]);
    assert!(more);
    let (ids, more) = page(s.handle(31, list(Some("cus_a"), Some(2), Some("pi_0003")), None));
    assert_eq!(ids, ["pi_0001"]);
    assert!(!more);
    // Everyone's, and by creation time.
    assert_eq!(page(s.handle(31, list(None, None, None), None)).0.len(), 4);
    let since = StripeRequest::ListPaymentIntents {
        customer: None,
        created_gte_ms: Some(20),
        limit: None,
        starting_after: None,
    };
    assert_eq!(page(s.handle(31, since, None)).0, ["pi_0004", "pi_0003"]);
    // A page after another customer's intent is empty, not an error; an
    // unknown id is a 404.
    assert_eq!(
        page(s.handle(31, list(Some("cus_a"), None, Some("pi_0002")), None))
            .0
            .len(),
        0
    );
    let r = s.handle(31, list(Some("cus_a"), None, Some("pi_9999")), None);
    assert_eq!(r.status, 404);
    // limit is 1..=100.
    for bad in [0, 101] {
        let r = s.handle(31, list(None, Some(bad), None), None);
        assert_eq!(r.status, 400, "limit {bad}");
        assert_eq!(
            r.error_code(),
            Some(StripeErrorCode::ParameterInvalidInteger)
        );
    }
    // Reads are never stored under a key, and the search still sees nothing.
    let search = StripeRequest::SearchPaymentIntents {
        metadata_key: "saga_id".into(),
        metadata_value: "saga-cus_a".into(),
    };
    match s.handle(31, search, None).body {
        StripeBody::SearchResult { data, .. } => assert!(data.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_with_faults() {
    let mut s = stripe();
    s.handle(0, charge("k1", 1_000), None);
    let get = StripeRequest::RetrievePaymentIntent {
        id: "pi_0001".into(),
    };
    assert_eq!(
        s.handle(1, get.clone(), Some(Injected::Throttle)).status,
        429
    );
    assert_eq!(
        s.handle(1, get.clone(), Some(Injected::FailAfterApply))
            .status,
        500
    );
    assert_eq!(s.handle(1, get, None).status, 200);
}

#[test]
fn ids_are_deterministic() {
    let run = || {
        let mut s = stripe();
        s.handle(0, charge("k1", 1_000), None);
        s.handle(1, charge("k2", 2_000), None);
        s.handle(2, refund("r1", "pi_0002", Some(500)), None);
        serde_json::to_string(s.ground_truth()).unwrap()
    };
    assert_eq!(run(), run());
    let s = run();
    assert!(s.contains("pi_0002") && s.contains("re_0001"));
}

#[test]
fn dump_mentions_every_intent() {
    let mut s = stripe();
    s.handle(0, charge("k1", 1_000), None);
    let d = s.dump();
    assert!(d.contains("pi_0001") && d.contains("succeeded"), "{d}");
}

#[test]
fn config_reads_from_partial_toml_like_json() {
    let c: StripeConfig = serde_json::from_str(r#"{"declining_customers":["c1"]}"#).unwrap();
    assert_eq!(c.idempotency_key_ttl_ms, 24 * HOUR_MS);
    assert!(c.declining_customers.contains("c1"));
}

// ----- property tests -----

/// One step of a generated run.
#[derive(Clone, Debug)]
enum Cmd {
    Advance(u64),
    Create {
        key: Option<u8>,
        customer: u8,
        amount: i64,
        manual: bool,
        confirm: bool,
    },
    Confirm {
        key: Option<u8>,
        intent: u8,
    },
    Capture {
        key: Option<u8>,
        intent: u8,
        amount: Option<i64>,
    },
    Cancel {
        key: Option<u8>,
        intent: u8,
    },
    Refund {
        key: Option<u8>,
        intent: u8,
        amount: Option<i64>,
    },
    Retrieve {
        intent: u8,
    },
    /// Two requests with the same key, the second arriving while the first
    /// is still executing.
    Concurrent {
        key: u8,
        amount: i64,
    },
}

fn injected() -> impl Strategy<Value = Option<Injected>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(Injected::Throttle)),
        1 => Just(Some(Injected::FailBeforeApply)),
        1 => Just(Some(Injected::FailAfterApply)),
        1 => Just(Some(Injected::EdgeUnavailable)),
    ]
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 40i64..3_000,
        1 => -100i64..=0,
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let key = proptest::option::weighted(0.8, 0u8..6);
    let intent = 0u8..5;
    prop_oneof![
        2 => prop_oneof![Just(1_000u64), Just(HOUR_MS), Just(12 * HOUR_MS), Just(3 * DAY_MS)]
            .prop_map(Cmd::Advance),
        4 => (key.clone(), 0u8..3, amount(), any::<bool>(), proptest::bool::weighted(0.8))
            .prop_map(|(key, customer, amount, manual, confirm)| Cmd::Create { key, customer, amount, manual, confirm }),
        1 => (key.clone(), intent.clone()).prop_map(|(key, intent)| Cmd::Confirm { key, intent }),
        2 => (key.clone(), intent.clone(), proptest::option::of(amount()))
            .prop_map(|(key, intent, amount)| Cmd::Capture { key, intent, amount }),
        1 => (key.clone(), intent.clone()).prop_map(|(key, intent)| Cmd::Cancel { key, intent }),
        3 => (key, intent.clone(), proptest::option::of(amount()))
            .prop_map(|(key, intent, amount)| Cmd::Refund { key, intent, amount }),
        1 => intent.prop_map(|intent| Cmd::Retrieve { intent }),
        1 => (0u8..6, amount()).prop_map(|(key, amount)| Cmd::Concurrent { key, amount }),
    ]
}

/// The reference model: what a correct Stripe must answer, written as
/// plainly as possible. Intents are tracked by their index `pi_NNNN`.
#[derive(Default)]
struct Reference {
    /// key → (request, response as first stored, stored at).
    keys: BTreeMap<String, (StripeRequest, StripeResponse, u64)>,
    intents: Vec<RefIntent>,
    refunds: usize,
}

#[derive(Clone, Debug)]
struct RefIntent {
    customer: String,
    amount: i64,
    manual: bool,
    status: PaymentIntentStatus,
    authorized_at: u64,
    captured: i64,
    refunded: i64,
}

const CUSTOMERS: [&str; 3] = ["cus_a", "cus_b", "cus_decline"];

impl Reference {
    fn expire(&mut self, now: u64) {
        for i in &mut self.intents {
            if i.status == PaymentIntentStatus::RequiresCapture
                && now >= i.authorized_at + 7 * DAY_MS
            {
                i.status = PaymentIntentStatus::Canceled;
            }
        }
        self.keys.retain(|_, (_, _, at)| now < *at + 24 * HOUR_MS);
    }

    /// Expected status code of executing `req` now, applying it to the
    /// reference state when `apply`.
    fn execute(&mut self, now: u64, req: &StripeRequest, apply: bool) -> u16 {
        let index = |id: &str| -> Option<usize> {
            id.strip_prefix("pi_")
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1))
        };
        let mut next = self.intents.clone();
        let status = match req {
            StripeRequest::CreatePaymentIntent {
                customer,
                amount_cents,
                capture_method,
                confirm,
                ..
            } => {
                let mut i = RefIntent {
                    customer: customer.clone(),
                    amount: *amount_cents,
                    manual: *capture_method == CaptureMethod::Manual,
                    status: PaymentIntentStatus::RequiresConfirmation,
                    authorized_at: 0,
                    captured: 0,
                    refunded: 0,
                };
                let code = if *confirm {
                    Self::confirm(&mut i, now)
                } else {
                    200
                };
                next.push(i);
                code
            }
            StripeRequest::ConfirmPaymentIntent { id, .. } => {
                match index(id).and_then(|n| next.get_mut(n)) {
                    None => 404,
                    Some(i)
                        if matches!(
                            i.status,
                            PaymentIntentStatus::RequiresConfirmation
                                | PaymentIntentStatus::RequiresPaymentMethod
                        ) =>
                    {
                        Self::confirm(i, now)
                    }
                    Some(_) => 400,
                }
            }
            StripeRequest::CapturePaymentIntent {
                id,
                amount_to_capture_cents,
                ..
            } => match index(id).and_then(|n| next.get_mut(n)) {
                None => 404,
                Some(i) if i.status == PaymentIntentStatus::RequiresCapture => {
                    let a = amount_to_capture_cents.unwrap_or(i.amount);
                    if a > i.amount {
                        400
                    } else {
                        i.captured = a;
                        i.status = PaymentIntentStatus::Succeeded;
                        200
                    }
                }
                Some(_) => 400,
            },
            StripeRequest::CancelPaymentIntent { id, .. } => {
                match index(id).and_then(|n| next.get_mut(n)) {
                    None => 404,
                    Some(i)
                        if matches!(
                            i.status,
                            PaymentIntentStatus::Succeeded | PaymentIntentStatus::Canceled
                        ) =>
                    {
                        400
                    }
                    Some(i) => {
                        i.status = PaymentIntentStatus::Canceled;
                        200
                    }
                }
            }
            StripeRequest::CreateRefund {
                payment_intent,
                amount_cents,
                ..
            } => match index(payment_intent).and_then(|n| next.get_mut(n)) {
                None => 404,
                Some(i) if i.status != PaymentIntentStatus::Succeeded => 400,
                Some(i) => {
                    let left = i.captured - i.refunded;
                    let a = amount_cents.unwrap_or(left);
                    if left == 0 || a > left {
                        400
                    } else {
                        // cus_b's card is closed: the refund is created,
                        // fails at once, and nothing comes off.
                        if i.customer != "cus_b" {
                            i.refunded += a;
                        }
                        if apply {
                            self.refunds += 1;
                        }
                        200
                    }
                }
            },
            StripeRequest::RetrievePaymentIntent { id } => {
                if index(id).is_some_and(|n| n < next.len()) {
                    200
                } else {
                    404
                }
            }
            StripeRequest::SearchPaymentIntents { .. } => 200,
            StripeRequest::RetrieveRefund { id } => {
                let n = id.strip_prefix("re_").and_then(|n| n.parse::<usize>().ok());
                if n.is_some_and(|n| n >= 1 && n <= self.refunds) {
                    200
                } else {
                    404
                }
            }
            StripeRequest::ListRefunds {
                payment_intent,
                limit,
            } => {
                if limit.is_some_and(|l| !(1..=LIST_LIMIT_MAX).contains(&l)) {
                    400
                } else if index(payment_intent).is_none_or(|i| i >= self.intents.len()) {
                    404
                } else {
                    200
                }
            }
            StripeRequest::ListPaymentIntents {
                limit,
                starting_after,
                ..
            } => {
                if limit.is_some_and(|l| !(1..=LIST_LIMIT_MAX).contains(&l)) {
                    400
                } else if starting_after
                    .as_deref()
                    .is_some_and(|id| index(id).is_none_or(|i| i >= self.intents.len()))
                {
                    404
                } else {
                    200
                }
            }
        };
        if apply {
            self.intents = next;
        }
        status
    }

    fn confirm(i: &mut RefIntent, now: u64) -> u16 {
        if i.customer == "cus_decline" {
            i.status = PaymentIntentStatus::RequiresPaymentMethod;
            return 402;
        }
        if i.manual {
            i.status = PaymentIntentStatus::RequiresCapture;
            i.authorized_at = now;
        } else {
            i.status = PaymentIntentStatus::Succeeded;
            i.captured = i.amount;
        }
        200
    }

    fn valid(req: &StripeRequest) -> bool {
        match req {
            StripeRequest::CreatePaymentIntent { amount_cents, .. } => {
                (MIN_CHARGE_CENTS..=MAX_CHARGE_CENTS).contains(amount_cents)
            }
            StripeRequest::CapturePaymentIntent {
                amount_to_capture_cents: Some(a),
                ..
            }
            | StripeRequest::CreateRefund {
                amount_cents: Some(a),
                ..
            } => *a > 0,
            _ => true,
        }
    }

    /// The full expected response status for a request arriving and
    /// completing at `now` with `injected`; also asserts replay equality
    /// against `actual`.
    fn step(
        &mut self,
        now: u64,
        req: &StripeRequest,
        injected: Option<Injected>,
        actual: &StripeResponse,
    ) {
        self.expire(now);
        let expected = if injected == Some(Injected::Throttle) {
            429
        } else if injected == Some(Injected::EdgeUnavailable) {
            assert!(!actual.idempotent_replayed);
            503
        } else if let Some((stored_req, stored_resp, _)) =
            req.idempotency_key().and_then(|k| self.keys.get(k))
        {
            if stored_req != req {
                assert_eq!(
                    actual.error().map(|e| e.error_type),
                    Some(StripeErrorType::IdempotencyError)
                );
                400
            } else if injected.is_some() {
                500
            } else {
                assert!(
                    actual.idempotent_replayed,
                    "expected a replay, got {actual:?}"
                );
                assert_eq!(
                    &actual.body, &stored_resp.body,
                    "replay differs from the first result"
                );
                stored_resp.status
            }
        } else if !Self::valid(req) {
            400
        } else {
            let code = match injected {
                Some(Injected::FailBeforeApply) => 500,
                Some(Injected::FailAfterApply) => {
                    self.execute(now, req, true);
                    500
                }
                _ => self.execute(now, req, true),
            };
            if let Some(key) = req.idempotency_key() {
                self.keys
                    .insert(key.to_owned(), (req.clone(), actual.clone(), now));
            }
            code
        };
        assert_eq!(
            actual.status, expected,
            "request {req:?} injected {injected:?}: {actual:?}"
        );
        if actual.idempotent_replayed {
            assert!(
                req.idempotency_key().is_some(),
                "only keyed requests replay"
            );
        }
    }
}

fn to_request(cmd: &Cmd) -> Option<StripeRequest> {
    let key = |k: &Option<u8>| k.map(|k| format!("key-{k}"));
    let id = |n: &u8| format!("pi_{:04}", n + 1);
    Some(match cmd {
        Cmd::Advance(_) | Cmd::Concurrent { .. } => return None,
        Cmd::Create {
            key: k,
            customer,
            amount,
            manual,
            confirm,
        } => StripeRequest::CreatePaymentIntent {
            idempotency_key: key(k),
            customer: CUSTOMERS[*customer as usize].to_owned(),
            amount_cents: *amount,
            currency: "eur".to_owned(),
            capture_method: if *manual {
                CaptureMethod::Manual
            } else {
                CaptureMethod::Automatic
            },
            confirm: *confirm,
            metadata: [("saga_id".to_owned(), format!("s{customer}"))].into(),
        },
        Cmd::Confirm { key: k, intent } => StripeRequest::ConfirmPaymentIntent {
            idempotency_key: key(k),
            id: id(intent),
        },
        Cmd::Capture {
            key: k,
            intent,
            amount,
        } => StripeRequest::CapturePaymentIntent {
            idempotency_key: key(k),
            id: id(intent),
            amount_to_capture_cents: *amount,
        },
        Cmd::Cancel { key: k, intent } => StripeRequest::CancelPaymentIntent {
            idempotency_key: key(k),
            id: id(intent),
        },
        Cmd::Refund {
            key: k,
            intent,
            amount,
        } => StripeRequest::CreateRefund {
            idempotency_key: key(k),
            payment_intent: id(intent),
            amount_cents: *amount,
        },
        Cmd::Retrieve { intent } => StripeRequest::RetrievePaymentIntent { id: id(intent) },
    })
}

fn check_against_reference(s: &Stripe, r: &Reference) {
    let t = s.ground_truth();
    assert_eq!(t.payment_intents.len(), r.intents.len());
    assert_eq!(t.refunds.len(), r.refunds);
    for (n, ri) in r.intents.iter().enumerate() {
        let pi = &t.payment_intents[&format!("pi_{:04}", n + 1)];
        assert_eq!(pi.status, ri.status, "{pi:?} vs {ri:?}");
        assert_eq!(pi.amount_received_cents, ri.captured);
        assert_eq!(pi.amount_refunded_cents, ri.refunded);
        assert!(pi.amount_refunded_cents <= pi.amount_received_cents);
    }
    for c in CUSTOMERS {
        let captured: i64 = r
            .intents
            .iter()
            .filter(|i| i.customer == c)
            .map(|i| i.captured)
            .sum();
        let refunded: i64 = r
            .intents
            .iter()
            .filter(|i| i.customer == c)
            .map(|i| i.refunded)
            .sum();
        assert_eq!(t.captured_cents(c), captured);
        assert_eq!(t.refunded_cents(c), refunded);
        assert!(t.net_cents(c) >= 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// Idempotency, lifecycle and refund rules agree with the reference on
    /// random runs with time advances and injected faults.
    #[test]
    fn agrees_with_reference(cmds in prop::collection::vec((cmd(), injected()), 1..40)) {
        let mut s = stripe();
        let mut r = Reference::default();
        let mut now = 0u64;
        for (cmd, inj) in &cmds {
            match cmd {
                Cmd::Advance(ms) => {
                    now += ms;
                    s.tick(now);
                    r.expire(now);
                }
                Cmd::Concurrent { key, amount } => {
                    let req = to_request(&Cmd::Create {
                        key: Some(*key), customer: 0, amount: *amount, manual: false, confirm: true,
                    }).unwrap();
                    let first = s.begin(now, req.clone(), None);
                    let second = s.begin(now + 1, req.clone(), None);
                    match first {
                        Begin::Pending(t) => {
                            let second = second.done().expect("second is answered at the door");
                            prop_assert_eq!(second.status, 409);
                            let resp = s.complete(now + 2, t);
                            r.step(now + 2, &req, None, &resp);
                        }
                        Begin::Done(resp) => {
                            // Invalid, or already stored: both answered alike.
                            r.step(now, &req, None, &resp);
                            let second = second.done().expect("answered at the door");
                            prop_assert_eq!(second.status, resp.status);
                        }
                    }
                    now += 2;
                }
                _ => {
                    let req = to_request(cmd).unwrap();
                    let resp = s.handle(now, req.clone(), *inj);
                    r.step(now, &req, *inj, &resp);
                }
            }
            s.check_invariants();
            check_against_reference(&s, &r);
        }
    }

    /// No request a client can send makes the model panic.
    #[test]
    fn never_panics(reqs in prop::collection::vec((any_request(), injected(), 0u64..30 * DAY_MS), 1..30)) {
        let mut s = stripe();
        let mut now = 0;
        for (req, inj, dt) in reqs {
            now += dt;
            let r = s.handle(now, req, inj);
            prop_assert!(matches!(r.status, 200 | 400 | 402 | 404 | 409 | 429 | 500 | 503));
            s.check_invariants();
        }
    }
}

fn any_string() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just("pi_0001".to_owned()),
        Just("cus_decline".to_owned()),
        ".{0,8}",
        "x{250,260}",
    ]
    .boxed()
}

fn any_request() -> impl Strategy<Value = StripeRequest> {
    let key = proptest::option::of(any_string());
    let amount = prop_oneof![
        any::<i64>(),
        Just(0i64),
        Just(i64::MIN),
        Just(i64::MAX),
        40i64..2_000
    ];
    let method = prop_oneof![Just(CaptureMethod::Automatic), Just(CaptureMethod::Manual)];
    prop_oneof![
        (
            key.clone(),
            any_string(),
            amount.clone(),
            any_string(),
            method,
            any::<bool>(),
            prop::collection::btree_map(any_string(), any_string(), 0..3)
        )
            .prop_map(
                |(
                    idempotency_key,
                    customer,
                    amount_cents,
                    currency,
                    capture_method,
                    confirm,
                    metadata,
                )| {
                    StripeRequest::CreatePaymentIntent {
                        idempotency_key,
                        customer,
                        amount_cents,
                        currency,
                        capture_method,
                        confirm,
                        metadata,
                    }
                }
            ),
        (key.clone(), any_string()).prop_map(|(idempotency_key, id)| {
            StripeRequest::ConfirmPaymentIntent {
                idempotency_key,
                id,
            }
        }),
        (
            key.clone(),
            any_string(),
            proptest::option::of(amount.clone())
        )
            .prop_map(|(idempotency_key, id, amount_to_capture_cents)| {
                StripeRequest::CapturePaymentIntent {
                    idempotency_key,
                    id,
                    amount_to_capture_cents,
                }
            }),
        (key.clone(), any_string()).prop_map(|(idempotency_key, id)| {
            StripeRequest::CancelPaymentIntent {
                idempotency_key,
                id,
            }
        }),
        (key, any_string(), proptest::option::of(amount)).prop_map(
            |(idempotency_key, payment_intent, amount_cents)| StripeRequest::CreateRefund {
                idempotency_key,
                payment_intent,
                amount_cents
            }
        ),
        any_string().prop_map(|id| StripeRequest::RetrievePaymentIntent { id }),
        (any_string(), any_string()).prop_map(|(metadata_key, metadata_value)| {
            StripeRequest::SearchPaymentIntents {
                metadata_key,
                metadata_value,
            }
        }),
        (
            proptest::option::of(any_string()),
            proptest::option::of(0u64..100),
            proptest::option::of(0u32..120),
            proptest::option::of(any_string()),
        )
            .prop_map(|(customer, created_gte_ms, limit, starting_after)| {
                StripeRequest::ListPaymentIntents {
                    customer,
                    created_gte_ms,
                    limit,
                    starting_after,
                }
            }),
        any_string().prop_map(|id| StripeRequest::RetrieveRefund { id }),
        (any_string(), proptest::option::of(0u32..120)).prop_map(|(payment_intent, limit)| {
            StripeRequest::ListRefunds {
                payment_intent,
                limit,
            }
        }),
    ]
}

// ----- asynchronous refunds, 3-D Secure, processing (issue 16) -----

fn async_stripe() -> Stripe {
    Stripe::new(StripeConfig {
        declining_customers: ["cus_late_decline".to_owned()].into(),
        refund_failing_customers: ["cus_closed".to_owned()].into(),
        refund_settle_ms: 10_000,
        requires_action_customers: ["cus_3ds".to_owned()].into(),
        processing_customers: ["cus_slow".to_owned(), "cus_late_decline".to_owned()].into(),
        processing_ms: 20_000,
        ..StripeConfig::default()
    })
}

fn refund_of(r: &StripeResponse) -> Refund {
    r.refund()
        .cloned()
        .unwrap_or_else(|| panic!("a refund: {r:?}"))
}

fn get_refund(s: &mut Stripe, now_ms: u64, id: &str) -> Refund {
    refund_of(&s.handle(
        now_ms,
        StripeRequest::RetrieveRefund { id: id.to_owned() },
        None,
    ))
}

#[test]
fn a_refund_is_pending_then_succeeds_and_only_then_moves_money() {
    let mut s = async_stripe();
    s.handle(
        0,
        create(Some("k"), "cus_a", 5_000, CaptureMethod::Automatic),
        None,
    );
    let re = refund_of(&s.handle(1, refund("r", "pi_0001", None), None));
    assert_eq!(
        (re.status, re.failure_reason),
        (RefundStatus::Pending, None)
    );
    // Pending counts in amount_refunded at once, but no money came back.
    assert_eq!(retrieve(&mut s, 2, "pi_0001").amount_refunded_cents, 5_000);
    assert_eq!(s.ground_truth().net_cents("cus_a"), 5_000);
    s.check_invariants();
    assert_eq!(
        get_refund(&mut s, 10_000, &re.id).status,
        RefundStatus::Pending
    );
    let settled = get_refund(&mut s, 10_001, &re.id);
    assert_eq!(
        (settled.status, settled.settled_ms),
        (RefundStatus::Succeeded, Some(10_001))
    );
    assert_eq!(s.ground_truth().net_cents("cus_a"), 0);
    let last = s.ground_truth().ledger.last().unwrap();
    assert_eq!((last.movement, last.at_ms), (Movement::Refund, 10_001));
    s.check_invariants();
}

#[test]
fn a_refund_to_a_closed_card_fails_later_and_the_money_stays_taken() {
    let mut s = async_stripe();
    s.handle(
        0,
        create(Some("k"), "cus_closed", 5_000, CaptureMethod::Automatic),
        None,
    );
    let re = refund_of(&s.handle(1, refund("r", "pi_0001", None), None));
    assert_eq!(re.status, RefundStatus::Pending);
    let failed = get_refund(&mut s, 20_000, &re.id);
    assert_eq!(failed.status, RefundStatus::Failed);
    assert_eq!(
        failed.failure_reason,
        Some(RefundFailureReason::ExpiredOrCanceledCard)
    );
    // Visible on the intent: amount_refunded went back down.
    assert_eq!(retrieve(&mut s, 20_001, "pi_0001").amount_refunded_cents, 0);
    assert_eq!(s.ground_truth().net_cents("cus_closed"), 5_000);
    // The consistent list shows it too.
    let r = s.handle(
        20_002,
        StripeRequest::ListRefunds {
            payment_intent: "pi_0001".into(),
            limit: None,
        },
        None,
    );
    match r.body {
        StripeBody::RefundList { data, has_more } => {
            assert!(!has_more);
            assert_eq!(data, vec![failed]);
        }
        other => panic!("{other:?}"),
    }
    s.check_invariants();
}

#[test]
fn refund_reads_of_unknown_objects_are_404_and_bad_limits_400() {
    let mut s = async_stripe();
    let get = StripeRequest::RetrieveRefund {
        id: "re_0001".into(),
    };
    assert_eq!(s.handle(0, get, None).status, 404);
    let list = |pi: &str, limit| StripeRequest::ListRefunds {
        payment_intent: pi.into(),
        limit,
    };
    assert_eq!(s.handle(0, list("pi_0001", None), None).status, 404);
    s.handle(0, charge("k", 5_000), None);
    assert_eq!(s.handle(1, list("pi_0001", Some(0)), None).status, 400);
    assert_eq!(s.handle(1, list("pi_0001", Some(1)), None).status, 200);
}

#[test]
fn three_d_secure_confirms_to_requires_action_moves_nothing_and_can_be_canceled() {
    let mut s = async_stripe();
    let r = s.handle(
        0,
        create(Some("k"), "cus_3ds", 5_000, CaptureMethod::Automatic),
        None,
    );
    assert_eq!(r.status, 200);
    let pi = r.payment_intent().unwrap().clone();
    assert_eq!(pi.status, PaymentIntentStatus::RequiresAction);
    assert!(s.ground_truth().ledger.is_empty());
    let c = s.handle(1, cancel("c", &pi.id), None);
    assert_eq!(
        c.payment_intent().map(|p| p.status),
        Some(PaymentIntentStatus::Canceled)
    );
    assert!(s.ground_truth().ledger.is_empty());
    s.check_invariants();
}

#[test]
fn processing_settles_later_into_a_charge_or_a_decline() {
    let mut s = async_stripe();
    let r = s.handle(
        0,
        create(Some("k1"), "cus_slow", 5_000, CaptureMethod::Automatic),
        None,
    );
    assert_eq!(
        r.payment_intent().map(|p| p.status),
        Some(PaymentIntentStatus::Processing)
    );
    s.handle(
        0,
        create(
            Some("k2"),
            "cus_late_decline",
            5_000,
            CaptureMethod::Automatic,
        ),
        None,
    );
    assert!(
        s.ground_truth().ledger.is_empty(),
        "processing moved no money yet"
    );
    assert_eq!(
        retrieve(&mut s, 19_999, "pi_0001").status,
        PaymentIntentStatus::Processing
    );
    assert_eq!(
        retrieve(&mut s, 20_000, "pi_0001").status,
        PaymentIntentStatus::Succeeded
    );
    assert_eq!(s.ground_truth().net_cents("cus_slow"), 5_000);
    assert_eq!(s.ground_truth().ledger[0].at_ms, 20_000);
    let declined = retrieve(&mut s, 20_000, "pi_0002");
    assert_eq!(declined.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert_eq!(s.ground_truth().net_cents("cus_late_decline"), 0);
    // A processing intent can be canceled before it settles.
    s.handle(
        30_000,
        create(Some("k3"), "cus_slow", 5_000, CaptureMethod::Automatic),
        None,
    );
    s.handle(30_001, cancel("c3", "pi_0003"), None);
    assert_eq!(
        retrieve(&mut s, 60_000, "pi_0003").status,
        PaymentIntentStatus::Canceled
    );
    assert_eq!(s.ground_truth().net_cents("cus_slow"), 5_000);
    s.check_invariants();
}
