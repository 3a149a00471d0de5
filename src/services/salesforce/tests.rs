//! Unit tests (one per documented behaviour) and property tests (the model
//! against a small reference model; no panic on arbitrary requests).

use super::*;
use proptest::prelude::*;
use serde_json::json;

const BOOKING: &str = "Booking__c";
const OPP: &str = "Opportunity";

/// An org with the custom object the tests write.
fn config() -> SalesforceConfig {
    SalesforceConfig {
        custom_objects: vec![BOOKING.to_string()],
        ..SalesforceConfig::default()
    }
}

fn sf() -> Salesforce {
    Salesforce::new(config())
}

/// Requests under a fresh session each: the tests of the data semantics
/// are not about sessions (those are below, with `ServiceModel::handle`).
trait Authed {
    /// `request` under a new session, begun and completed at `now`.
    fn call(
        &mut self,
        now: u64,
        request: SalesforceRequest,
        injected: Option<Injected>,
    ) -> SalesforceResponse;
    /// `request` under a new session, begun at `now`.
    fn start(
        &mut self,
        now: u64,
        request: SalesforceRequest,
        injected: Option<Injected>,
    ) -> Begin<SalesforceResponse>;
}

impl Authed for Salesforce {
    fn call(
        &mut self,
        now: u64,
        request: SalesforceRequest,
        injected: Option<Injected>,
    ) -> SalesforceResponse {
        let token = token(self, now);
        self.handle(now, SalesforceCall::api(&token, request), injected)
    }

    fn start(
        &mut self,
        now: u64,
        request: SalesforceRequest,
        injected: Option<Injected>,
    ) -> Begin<SalesforceResponse> {
        let token = token(self, now);
        self.begin(now, SalesforceCall::api(&token, request), injected)
    }
}

/// A new session's access token.
fn token(s: &mut Salesforce, now: u64) -> String {
    let r = s.handle(now, SalesforceCall::Login, None);
    assert_eq!(r.status, 200, "{r:?}");
    r.access_token().expect("a token").to_owned()
}

fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn upsert(object: &str, ext: &str, f: &[(&str, Value)]) -> SalesforceRequest {
    SalesforceRequest::Upsert {
        object: object.into(),
        external_id: ext.into(),
        fields: fields(f),
        if_unmodified_since_ms: None,
    }
}

fn create(object: &str, f: &[(&str, Value)]) -> SalesforceRequest {
    SalesforceRequest::Create {
        object: object.into(),
        fields: fields(f),
    }
}

fn update(object: &str, id: &str, f: &[(&str, Value)], since: Option<u64>) -> SalesforceRequest {
    SalesforceRequest::Update {
        object: object.into(),
        id: id.into(),
        fields: fields(f),
        if_unmodified_since_ms: since,
    }
}

fn query(object: &str, ext: &str) -> SalesforceRequest {
    SalesforceRequest::QueryByExternalId {
        object: object.into(),
        external_id: ext.into(),
    }
}

fn opp_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("Name", json!("Checkout saga-1")),
        ("StageName", json!("Prospecting")),
        ("CloseDate", json!("2025-01-31")),
        ("Amount", json!(250.0)),
    ]
}

fn count(s: &Salesforce, object: &str, ext: &str) -> usize {
    s.ground_truth().with_external_id(object, ext).count()
}

#[test]
fn custom_objects_exist_only_when_declared_and_get_their_own_key_prefix() {
    let mut bare = Salesforce::new(SalesforceConfig::default());
    assert!(bare.object_type("Booking__c").is_none());
    assert!(bare.object_type("Opportunity").is_some());
    let upsert = |object: &str| SalesforceRequest::Upsert {
        object: object.into(),
        external_id: "e-1".into(),
        fields: fields(&[("Status__c", json!("x"))]),
        if_unmodified_since_ms: None,
    };
    assert_eq!(bare.call(0, upsert("Order__c"), None).status, 404);
    let mut org = Salesforce::new(SalesforceConfig {
        custom_objects: vec!["Booking__c".into(), "Order__c".into()],
        ..SalesforceConfig::default()
    });
    let r = org.call(0, upsert("Order__c"), None);
    assert_eq!(r.status, 201, "{r:?}");
    let id = org
        .ground_truth()
        .records
        .values()
        .next()
        .unwrap()
        .id
        .clone();
    assert!(id.starts_with("a0C"), "{id}");
    assert!(valid_custom_object("Order__c"));
    assert!(!valid_custom_object("Order"));
    assert!(!valid_custom_object("__c"));
    assert!(!valid_custom_object("1x__c"));
}

#[test]
fn upsert_creates_then_updates() {
    let mut s = sf();
    let r = s.call(
        1_000,
        upsert(BOOKING, "saga-1", &[("Status__c", json!("Held"))]),
        None,
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body,
        SalesforceBody::SaveResult {
            id: "a0B000000000001".into(),
            created: true
        }
    );
    let r = s.call(
        2_000,
        upsert(BOOKING, "saga-1", &[("Status__c", json!("Confirmed"))]),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        SalesforceBody::SaveResult {
            id: "a0B000000000001".into(),
            created: false
        }
    );
    assert_eq!(count(&s, BOOKING, "saga-1"), 1);
    let rec = &s.ground_truth().records["a0B000000000001"];
    assert_eq!(rec.fields["Status__c"], json!("Confirmed"));
    assert_eq!(rec.external_id.as_deref(), Some("saga-1"));
    assert_eq!((rec.created_ms, rec.last_modified_ms), (1_000, 2_000));
    let kinds: Vec<_> = s
        .ground_truth()
        .history_of("a0B000000000001")
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, vec![ChangeKind::Created, ChangeKind::Updated]);
    s.check_invariants();
}

#[test]
fn external_ids_are_per_object() {
    let mut s = sf();
    assert_eq!(s.call(0, upsert(BOOKING, "saga-1", &[]), None).status, 201);
    let r = s.call(1, upsert(OPP, "saga-1", &opp_fields()), None);
    assert_eq!(r.status, 201);
    assert_eq!(r.id(), Some("006000000000002"));
}

#[test]
fn plain_create_is_not_idempotent() {
    let mut s = sf();
    let req = create(BOOKING, &[("Guest__c", json!("Ada"))]);
    assert_eq!(s.call(0, req.clone(), None).status, 201);
    assert_eq!(s.call(1, req, None).status, 201);
    assert_eq!(s.ground_truth().records_of(BOOKING).count(), 2);
    s.check_invariants();
}

#[test]
fn create_with_taken_unique_external_id_is_duplicate_value() {
    let mut s = sf();
    s.call(0, upsert(BOOKING, "saga-1", &[]), None);
    let r = s.call(
        1,
        create(BOOKING, &[(EXTERNAL_ID_FIELD, json!("saga-1"))]),
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), Some(SalesforceErrorCode::DuplicateValue));
    assert_eq!(count(&s, BOOKING, "saga-1"), 1);
}

#[test]
fn without_unique_index_duplicates_make_upsert_ambiguous_300() {
    let mut s = Salesforce::new(SalesforceConfig {
        external_id_unique: false,
        ..config()
    });
    let req = create(BOOKING, &[(EXTERNAL_ID_FIELD, json!("saga-1"))]);
    s.call(0, req.clone(), None);
    s.call(1, req, None);
    let r = s.call(
        2,
        upsert(BOOKING, "saga-1", &[("Status__c", json!("x"))]),
        None,
    );
    assert_eq!(r.status, 300);
    assert_eq!(
        r.body,
        SalesforceBody::MultipleChoices {
            ids: vec!["a0B000000000001".into(), "a0B000000000002".into()]
        }
    );
    // Nothing was written by the ambiguous upsert.
    assert_eq!(s.ground_truth().history.len(), 2);
    s.check_invariants();
}

#[test]
fn concurrent_first_upserts_race_to_duplicate_value() {
    let mut s = sf();
    let a = s
        .start(0, upsert(BOOKING, "saga-1", &[("N__c", json!(1))]), None)
        .ticket()
        .unwrap();
    let b = s
        .start(10, upsert(BOOKING, "saga-1", &[("N__c", json!(2))]), None)
        .ticket()
        .unwrap();
    assert_eq!(s.complete(800, a).status, 201);
    let r = s.complete(810, b);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), Some(SalesforceErrorCode::DuplicateValue));
    assert_eq!(count(&s, BOOKING, "saga-1"), 1);
    assert_eq!(
        s.ground_truth().records["a0B000000000001"].fields["N__c"],
        json!(1)
    );
    // A retry of the loser now updates.
    assert_eq!(
        s.call(900, upsert(BOOKING, "saga-1", &[("N__c", json!(2))]), None)
            .status,
        200
    );
    s.check_invariants();
}

#[test]
fn concurrent_first_upserts_without_unique_index_make_two_records() {
    let mut s = Salesforce::new(SalesforceConfig {
        external_id_unique: false,
        ..config()
    });
    let a = s
        .start(0, upsert(BOOKING, "saga-1", &[]), None)
        .ticket()
        .unwrap();
    let b = s
        .start(10, upsert(BOOKING, "saga-1", &[]), None)
        .ticket()
        .unwrap();
    assert_eq!(s.complete(800, a).status, 201);
    assert_eq!(s.complete(810, b).status, 201);
    assert_eq!(count(&s, BOOKING, "saga-1"), 2);
    assert_eq!(
        s.call(900, upsert(BOOKING, "saga-1", &[]), None).status,
        300
    );
}

#[test]
fn sequential_upserts_do_not_race() {
    let mut s = sf();
    let a = s
        .start(0, upsert(BOOKING, "saga-1", &[]), None)
        .ticket()
        .unwrap();
    assert_eq!(s.complete(800, a).status, 201);
    let b = s
        .start(801, upsert(BOOKING, "saga-1", &[]), None)
        .ticket()
        .unwrap();
    assert_eq!(s.complete(1_600, b).status, 200);
}

#[test]
fn update_then_get() {
    let mut s = sf();
    let id = s
        .call(
            0,
            create(BOOKING, &[("A__c", json!("x")), ("B__c", json!(1))]),
            None,
        )
        .id()
        .unwrap()
        .to_owned();
    let r = s.call(
        5,
        update(
            BOOKING,
            &id,
            &[("A__c", Value::Null), ("C__c", json!(true))],
            None,
        ),
        None,
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.body, SalesforceBody::NoContent);
    let r = s.call(
        6,
        SalesforceRequest::Get {
            object: BOOKING.into(),
            id: id.clone(),
        },
        None,
    );
    let SalesforceBody::Record(rec) = r.body else {
        panic!()
    };
    assert_eq!(
        rec.fields,
        fields(&[("B__c", json!(1)), ("C__c", json!(true))])
    );
    assert_eq!(rec.last_modified_ms, 5);
    // The history keeps the null that cleared A__c.
    let last = s.ground_truth().history.last().unwrap();
    assert_eq!(last.fields["A__c"], Value::Null);
    // 18-character ids are accepted (the checksum suffix is ignored).
    let long = format!("{id}AAA");
    assert_eq!(
        s.call(
            7,
            SalesforceRequest::Get {
                object: BOOKING.into(),
                id: long
            },
            None
        )
        .status,
        200
    );
    s.check_invariants();
}

#[test]
fn unknown_and_malformed_ids() {
    let mut s = sf();
    s.call(0, create(BOOKING, &[]), None);
    let r = s.call(1, update(BOOKING, "a0B000000000099", &[], None), None);
    assert_eq!(
        (r.status, r.error_code()),
        (404, Some(SalesforceErrorCode::NotFound))
    );
    // Right id, wrong object.
    let r = s.call(1, update(OPP, "a0B000000000001", &[], None), None);
    assert_eq!(r.status, 404);
    for bad in ["", "short", "a0B00000000000!", "a0B0000000000011"] {
        let r = s.call(
            1,
            SalesforceRequest::Get {
                object: BOOKING.into(),
                id: bad.into(),
            },
            None,
        );
        assert_eq!(
            (r.status, r.error_code()),
            (400, Some(SalesforceErrorCode::MalformedId)),
            "{bad:?}"
        );
    }
}

#[test]
fn unknown_object_is_404() {
    let mut s = sf();
    for req in [
        upsert("Lead", "x", &[]),
        create("", &[]),
        query("Foo__c", "x"),
    ] {
        let r = s.call(0, req, None);
        assert_eq!(
            (r.status, r.error_code()),
            (404, Some(SalesforceErrorCode::NotFound))
        );
    }
    assert!(s.ground_truth().records.is_empty());
}

#[test]
fn if_unmodified_since_gives_412_when_changed() {
    let mut s = sf();
    let id = s
        .call(10_000, create(BOOKING, &[]), None)
        .id()
        .unwrap()
        .to_owned();
    s.call(
        20_000,
        update(BOOKING, &id, &[("A__c", json!(1))], None),
        None,
    );
    // The client read the record at 10 s; it changed at 20 s.
    let r = s.call(
        21_000,
        update(BOOKING, &id, &[("A__c", json!(2))], Some(10_000)),
        None,
    );
    assert_eq!(
        (r.status, r.error_code()),
        (412, Some(SalesforceErrorCode::PreconditionFailed))
    );
    assert_eq!(s.ground_truth().records[&id].fields["A__c"], json!(1));
    // Unchanged since: applied.
    let r = s.call(
        22_000,
        update(BOOKING, &id, &[("A__c", json!(3))], Some(20_000)),
        None,
    );
    assert_eq!(r.status, 204);
    // Also for an upsert that updates.
    s.call(23_000, upsert(BOOKING, "e", &[]), None);
    s.call(30_000, upsert(BOOKING, "e", &[("A__c", json!(1))]), None);
    let mut req = upsert(BOOKING, "e", &[("A__c", json!(2))]);
    if let SalesforceRequest::Upsert {
        if_unmodified_since_ms,
        ..
    } = &mut req
    {
        *if_unmodified_since_ms = Some(23_000);
    }
    assert_eq!(s.call(31_000, req, None).status, 412);
}

#[test]
fn if_unmodified_since_has_one_second_resolution() {
    let mut s = sf();
    let id = s
        .call(10_000, create(BOOKING, &[]), None)
        .id()
        .unwrap()
        .to_owned();
    // Changed at 10.5 s, client says "unmodified since 10.0 s": same second,
    // so the change goes unseen — a lost update the real API allows.
    s.call(
        10_500,
        update(BOOKING, &id, &[("A__c", json!(1))], None),
        None,
    );
    let r = s.call(
        10_900,
        update(BOOKING, &id, &[("A__c", json!(2))], Some(10_000)),
        None,
    );
    assert_eq!(r.status, 204);
    s.call(
        11_000,
        update(BOOKING, &id, &[("A__c", json!(3))], None),
        None,
    );
    let r = s.call(
        11_100,
        update(BOOKING, &id, &[("A__c", json!(4))], Some(10_999)),
        None,
    );
    assert_eq!(r.status, 412);
}

#[test]
fn throttle_is_unable_to_lock_row_and_not_applied() {
    let mut s = sf();
    let r = s.call(0, upsert(BOOKING, "saga-1", &[]), Some(Injected::Throttle));
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some(SalesforceErrorCode::UnableToLockRow))
    );
    assert!(s.ground_truth().records.is_empty());
}

#[test]
fn fail_before_apply_is_503_not_applied() {
    let mut s = sf();
    let r = s.call(
        0,
        upsert(BOOKING, "saga-1", &[]),
        Some(Injected::FailBeforeApply),
    );
    assert_eq!(
        (r.status, r.error_code()),
        (503, Some(SalesforceErrorCode::ServerUnavailable))
    );
    assert!(s.ground_truth().records.is_empty());
}

#[test]
fn fail_after_apply_is_500_but_the_write_landed() {
    let mut s = sf();
    let r = s.call(
        0,
        create(BOOKING, &[(EXTERNAL_ID_FIELD, json!("saga-1"))]),
        Some(Injected::FailAfterApply),
    );
    assert_eq!(
        (r.status, r.error_code()),
        (500, Some(SalesforceErrorCode::UnknownException))
    );
    assert_eq!(count(&s, BOOKING, "saga-1"), 1);
    // Reconciliation: query by external id finds it.
    let r = s.call(1, query(BOOKING, "saga-1"), None);
    let SalesforceBody::QueryResult {
        total_size,
        done,
        records,
    } = r.body
    else {
        panic!()
    };
    assert_eq!((total_size, done), (1, true));
    assert_eq!(records[0].id, "a0B000000000001");
}

#[test]
fn daily_api_limit_is_a_rolling_24h_window() {
    let mut s = Salesforce::new(SalesforceConfig {
        daily_api_limit: Some(3),
        ..config()
    });
    for t in 0..3 {
        assert_eq!(s.call(t * 1_000, query(BOOKING, "x"), None).status, 200);
    }
    let r = s.call(5_000, upsert(BOOKING, "x", &[]), None);
    assert_eq!(
        (r.status, r.error_code()),
        (403, Some(SalesforceErrorCode::RequestLimitExceeded))
    );
    assert!(s.ground_truth().records.is_empty());
    // Rejected calls do not count: the first call leaves the window at 24 h.
    assert_eq!(s.call(DAY_MS - 1, query(BOOKING, "x"), None).status, 403);
    assert_eq!(s.call(DAY_MS, upsert(BOOKING, "x", &[]), None).status, 201);
    assert_eq!(s.call(DAY_MS, query(BOOKING, "x"), None).status, 403);
    assert_eq!(s.api_calls_in_window(), 3);
    s.check_invariants();
}

#[test]
fn opportunity_requires_name_stage_and_close_date() {
    let mut s = sf();
    let r = s.call(0, upsert(OPP, "saga-1", &[("Name", json!("x"))]), None);
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some(SalesforceErrorCode::RequiredFieldMissing))
    );
    let SalesforceBody::Errors(errors) = &r.body else {
        panic!()
    };
    assert_eq!(errors[0].fields, vec!["StageName", "CloseDate"]);
    assert!(s.ground_truth().records.is_empty());
    let id = s
        .call(1, upsert(OPP, "saga-1", &opp_fields()), None)
        .id()
        .unwrap()
        .to_owned();
    // Updating the existing record does not need them again…
    assert_eq!(
        s.call(
            2,
            upsert(OPP, "saga-1", &[("StageName", json!("Closed Won"))]),
            None
        )
        .status,
        200
    );
    // …but cannot clear them.
    let r = s.call(
        3,
        update(OPP, &id, &[("StageName", Value::Null)], None),
        None,
    );
    assert_eq!(
        r.error_code(),
        Some(SalesforceErrorCode::RequiredFieldMissing)
    );
    assert_eq!(
        s.ground_truth().records[&id].fields["StageName"],
        json!("Closed Won")
    );
}

#[test]
fn field_validation() {
    let mut s = sf();
    let cases = [
        (
            upsert(BOOKING, "e", &[("Id", json!("x"))]),
            SalesforceErrorCode::InvalidFieldForInsertUpdate,
        ),
        (
            upsert(BOOKING, "e", &[("LastModifiedDate", json!(1))]),
            SalesforceErrorCode::InvalidFieldForInsertUpdate,
        ),
        (
            upsert(BOOKING, "e", &[("bad name", json!(1))]),
            SalesforceErrorCode::InvalidField,
        ),
        (
            upsert(BOOKING, "e", &[("_x", json!(1))]),
            SalesforceErrorCode::InvalidField,
        ),
        (
            upsert(BOOKING, "e", &[("A__c", json!([1, 2]))]),
            SalesforceErrorCode::InvalidField,
        ),
        (
            upsert(BOOKING, "e", &[(EXTERNAL_ID_FIELD, json!("other"))]),
            SalesforceErrorCode::InvalidField,
        ),
        (upsert(BOOKING, "", &[]), SalesforceErrorCode::InvalidField),
        (
            upsert(BOOKING, &"x".repeat(256), &[]),
            SalesforceErrorCode::StringTooLong,
        ),
        (
            upsert(
                BOOKING,
                "e",
                &[("A__c", json!("y".repeat(MAX_TEXT_CHARS + 1)))],
            ),
            SalesforceErrorCode::StringTooLong,
        ),
        (
            create(BOOKING, &[(EXTERNAL_ID_FIELD, json!(5))]),
            SalesforceErrorCode::InvalidField,
        ),
    ];
    for (req, code) in cases {
        let r = s.call(0, req.clone(), None);
        assert_eq!((r.status, r.error_code()), (400, Some(code)), "{req:?}");
    }
    assert!(s.ground_truth().records.is_empty());
    // A matching external id in the body is fine.
    assert_eq!(
        s.call(
            0,
            upsert(BOOKING, "e", &[(EXTERNAL_ID_FIELD, json!("e"))]),
            None
        )
        .status,
        201
    );
    assert_eq!(
        s.call(0, upsert(BOOKING, &"x".repeat(255), &[]), None)
            .status,
        201
    );
}

#[test]
fn update_can_move_the_external_id_but_not_onto_a_taken_one() {
    let mut s = sf();
    let a = s
        .call(0, upsert(BOOKING, "a", &[]), None)
        .id()
        .unwrap()
        .to_owned();
    s.call(1, upsert(BOOKING, "b", &[]), None);
    let r = s.call(
        2,
        update(BOOKING, &a, &[(EXTERNAL_ID_FIELD, json!("b"))], None),
        None,
    );
    assert_eq!(r.error_code(), Some(SalesforceErrorCode::DuplicateValue));
    assert_eq!(
        s.call(
            3,
            update(BOOKING, &a, &[(EXTERNAL_ID_FIELD, json!("c"))], None),
            None
        )
        .status,
        204
    );
    assert_eq!(count(&s, BOOKING, "c"), 1);
    assert_eq!(count(&s, BOOKING, "a"), 0);
    assert_eq!(
        s.call(
            4,
            update(BOOKING, &a, &[(EXTERNAL_ID_FIELD, Value::Null)], None),
            None
        )
        .status,
        204
    );
    assert_eq!(s.ground_truth().records[&a].external_id, None);
    s.check_invariants();
}

#[test]
fn abort_applies_nothing() {
    let mut s = sf();
    let t = s
        .start(0, upsert(BOOKING, "saga-1", &[]), None)
        .ticket()
        .unwrap();
    assert_eq!(s.in_flight(), vec![t]);
    assert!(s.abort(t));
    assert!(!s.abort(t));
    assert!(s.ground_truth().records.is_empty());
    assert_eq!(s.call(1, upsert(BOOKING, "saga-1", &[]), None).status, 201);
}

#[test]
fn dump_lists_records() {
    let mut s = sf();
    s.call(
        0,
        upsert(BOOKING, "saga-1", &[("Status__c", json!("Held"))]),
        None,
    );
    let d = s.dump();
    assert!(
        d.contains("a0B000000000001") && d.contains("saga-1") && d.contains("Held"),
        "{d}"
    );
}

#[test]
fn config_defaults_from_partial_input() {
    let c: SalesforceConfig = serde_json::from_str(r#"{"daily_api_limit": 5}"#).unwrap();
    assert!(c.custom_objects.is_empty());
    assert_eq!(c.daily_api_limit, Some(5));
    assert!(c.external_id_unique);
}

// ----- property tests -----

#[derive(Clone, Debug)]
enum Cmd {
    Advance(u64),
    Upsert {
        object: u8,
        ext: u8,
        complete: bool,
    },
    Create {
        object: u8,
        ext: Option<u8>,
        complete: bool,
    },
    /// Two first-time-or-not upserts of one external id, both begun before
    /// either commits.
    Race {
        object: u8,
        ext: u8,
    },
    Update {
        record: u8,
    },
    Delete {
        record: u8,
    },
    /// An admin deletes the nth live record (not an API call).
    AdminDelete {
        nth: u8,
    },
    /// An admin restores the nth record of the Recycle Bin.
    AdminRestore {
        nth: u8,
    },
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let object = 0u8..2;
    let ext = 0u8..4;
    prop_oneof![
        1 => prop_oneof![Just(1_000u64), Just(3_600_000u64), Just(DAY_MS)].prop_map(Cmd::Advance),
        4 => (object.clone(), ext.clone(), proptest::bool::weighted(0.9))
            .prop_map(|(object, ext, complete)| Cmd::Upsert { object, ext, complete }),
        2 => (object.clone(), proptest::option::of(ext.clone()), proptest::bool::weighted(0.9))
            .prop_map(|(object, ext, complete)| Cmd::Create { object, ext, complete }),
        2 => (object, ext).prop_map(|(object, ext)| Cmd::Race { object, ext }),
        1 => (0u8..8).prop_map(|record| Cmd::Update { record }),
        1 => (0u8..8).prop_map(|record| Cmd::Delete { record }),
        1 => (0u8..8).prop_map(|nth| Cmd::AdminDelete { nth }),
        1 => (0u8..8).prop_map(|nth| Cmd::AdminRestore { nth }),
    ]
}

fn injected() -> impl Strategy<Value = Option<Injected>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(Injected::Throttle)),
        1 => Just(Some(Injected::FailBeforeApply)),
        1 => Just(Some(Injected::FailAfterApply)),
    ]
}

const OBJECTS: [&str; 2] = [BOOKING, OPP];

fn write_fields(object: u8, complete: bool, n: usize) -> BTreeMap<String, Value> {
    let mut f = if object == 1 && complete {
        fields(&opp_fields())
    } else {
        BTreeMap::new()
    };
    f.insert("Step__c".into(), json!(n));
    f
}

/// The reference: how many records each (object, external id) has, how many
/// records each object has, and the API calls in the 24 h window.
struct Reference {
    unique: bool,
    limit: Option<usize>,
    by_ext: BTreeMap<(u8, u8), usize>,
    per_object: [usize; 2],
    /// Records deleted (still in the org, in the Recycle Bin).
    deleted: usize,
    calls: Vec<u64>,
}

impl Reference {
    /// Counts one API call; false when over the limit (403, nothing else).
    fn call(&mut self, now: u64) -> bool {
        self.calls.retain(|&t| t + DAY_MS > now);
        if self.limit.is_some_and(|l| self.calls.len() >= l) {
            return false;
        }
        self.calls.push(now);
        true
    }

    /// Expected status of an insert; applies it.
    fn insert(&mut self, object: u8, ext: Option<u8>, complete: bool) -> u16 {
        if object == 1 && !complete {
            return 400; // REQUIRED_FIELD_MISSING
        }
        if let Some(e) = ext {
            if self.unique && self.by_ext.get(&(object, e)).copied().unwrap_or(0) > 0 {
                return 400; // DUPLICATE_VALUE
            }
            *self.by_ext.entry((object, e)).or_default() += 1;
        }
        self.per_object[object as usize] += 1;
        201
    }

    fn upsert(&mut self, object: u8, ext: u8, complete: bool) -> u16 {
        match self.by_ext.get(&(object, ext)).copied().unwrap_or(0) {
            0 => self.insert(object, Some(ext), complete),
            1 => 200,
            _ => 300,
        }
    }

    /// Expected status under an injected fault, given the fault-free one.
    fn with_fault(
        &mut self,
        injected: Option<Injected>,
        apply: impl FnOnce(&mut Self) -> u16,
    ) -> u16 {
        match injected {
            None => apply(self),
            Some(Injected::Throttle) => 400,
            Some(Injected::FailBeforeApply | Injected::EdgeUnavailable) => 503,
            Some(Injected::FailAfterApply) => {
                apply(self);
                500
            }
        }
    }
}

fn check(s: &Salesforce, r: &Reference) {
    for o in 0..2u8 {
        assert_eq!(
            s.ground_truth().records_of(OBJECTS[o as usize]).count(),
            r.per_object[o as usize]
        );
        for e in 0..4u8 {
            let expected = r.by_ext.get(&(o, e)).copied().unwrap_or(0);
            assert_eq!(
                count(s, OBJECTS[o as usize], &format!("ext-{e}")),
                expected,
                "object {o} ext {e}"
            );
            if r.unique {
                assert!(expected <= 1);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// Upsert and create agree with a count-per-external-id reference,
    /// including races, faults, the daily limit, and an admin's deletions
    /// and restorations from the Recycle Bin.
    #[test]
    fn agrees_with_reference(
        unique in any::<bool>(),
        limit in proptest::option::weighted(0.3, 3usize..12),
        cmds in prop::collection::vec((cmd(), injected()), 1..40),
    ) {
        let mut s = Salesforce::new(SalesforceConfig {
            daily_api_limit: limit.map(|l| l as u32),
            external_id_unique: unique,
            ..config()
        });
        let mut r = Reference { unique, limit, by_ext: BTreeMap::new(), per_object: [0, 0], deleted: 0, calls: vec![] };
        let mut now = 0u64;
        for (n, (cmd, inj)) in cmds.iter().enumerate() {
            now += 1;
            match cmd {
                Cmd::Advance(ms) => now += ms,
                Cmd::Upsert { object, ext, complete } => {
                    let req = SalesforceRequest::Upsert {
                        object: OBJECTS[*object as usize].into(),
                        external_id: format!("ext-{ext}"),
                        fields: write_fields(*object, *complete, n),
                        if_unmodified_since_ms: None,
                    };
                    let resp = s.call(now, req, *inj);
                    let expected = if r.call(now) {
                        r.with_fault(*inj, |r| r.upsert(*object, *ext, *complete))
                    } else {
                        403
                    };
                    prop_assert_eq!(resp.status, expected, "{:?} {:?}", cmd, resp);
                }
                Cmd::Create { object, ext, complete } => {
                    let mut fields = write_fields(*object, *complete, n);
                    if let Some(e) = ext {
                        fields.insert(EXTERNAL_ID_FIELD.into(), json!(format!("ext-{e}")));
                    }
                    let req = SalesforceRequest::Create { object: OBJECTS[*object as usize].into(), fields };
                    let resp = s.call(now, req, *inj);
                    let expected = if r.call(now) {
                        r.with_fault(*inj, |r| r.insert(*object, *ext, *complete))
                    } else {
                        403
                    };
                    prop_assert_eq!(resp.status, expected, "{:?} {:?}", cmd, resp);
                }
                Cmd::Race { object, ext } => {
                    let req = SalesforceRequest::Upsert {
                        object: OBJECTS[*object as usize].into(),
                        external_id: format!("ext-{ext}"),
                        fields: write_fields(*object, true, n),
                        if_unmodified_since_ms: None,
                    };
                    let a = s.start(now, req.clone(), None);
                    let b = s.start(now, req, None);
                    let a_ok = r.call(now);
                    let b_ok = r.call(now);
                    let before = r.by_ext.get(&(*object, *ext)).copied().unwrap_or(0);
                    let ra = match a { Begin::Pending(t) => s.complete(now + 1, t), Begin::Done(x) => x };
                    let rb = match b { Begin::Pending(t) => s.complete(now + 1, t), Begin::Done(x) => x };
                    let expected_a = if a_ok { r.upsert(*object, *ext, true) } else { 403 };
                    let expected_b = if !b_ok {
                        403
                    } else if before == 0 {
                        // Both started with no match: the second insert
                        // meets the first one's record.
                        if a_ok { r.insert(*object, Some(*ext), true) } else { r.upsert(*object, *ext, true) }
                    } else {
                        r.upsert(*object, *ext, true)
                    };
                    prop_assert_eq!((ra.status, rb.status), (expected_a, expected_b), "{:?}", cmd);
                    now += 1;
                }
                Cmd::Update { record } => {
                    let id = s.ground_truth().records.keys().nth(*record as usize).cloned();
                    let id = id.unwrap_or_else(|| "a0B000000000999".into());
                    let object = s.ground_truth().records.get(&id).map_or(BOOKING, |rec| if rec.object == OPP { OPP } else { BOOKING });
                    let deleted = s.ground_truth().records.get(&id).is_some_and(|rec| rec.is_deleted);
                    let req = update(object, &id, &[("Step__c", json!(n))], None);
                    let resp = s.call(now, req, *inj);
                    let exists = (*record as usize) < r.per_object.iter().sum::<usize>() + r.deleted;
                    let expected = if r.call(now) {
                        r.with_fault(*inj, |_| if exists && !deleted { 204 } else { 404 })
                    } else {
                        403
                    };
                    prop_assert_eq!(resp.status, expected, "{:?} {:?}", cmd, resp);
                }
                Cmd::Delete { record } => {
                    let id = s.ground_truth().records.keys().nth(*record as usize).cloned();
                    let id = id.unwrap_or_else(|| "a0B000000000999".into());
                    let found = s.ground_truth().records.get(&id).cloned();
                    let object = found.as_ref().map_or(BOOKING, |rec| if rec.object == OPP { OPP } else { BOOKING });
                    let resp = s.call(now, SalesforceRequest::Delete { object: object.into(), id }, *inj);
                    let expected = if r.call(now) {
                        r.with_fault(*inj, |r| match &found {
                            Some(rec) if !rec.is_deleted => {
                                let o = u8::from(rec.object == OPP);
                                r.per_object[o as usize] -= 1;
                                r.deleted += 1;
                                if let Some(e) = rec.external_id.as_deref().and_then(|e| e.strip_prefix("ext-")) {
                                    *r.by_ext.get_mut(&(o, e.parse().unwrap())).unwrap() -= 1;
                                }
                                204
                            }
                            _ => 404,
                        })
                    } else {
                        403
                    };
                    prop_assert_eq!(resp.status, expected, "{:?} {:?}", cmd, resp);
                }
                Cmd::AdminDelete { nth } => {
                    // The nth live record in id order (no write is in
                    // flight between commands, so none is locked).
                    let live: Vec<String> = s.ground_truth().records.values()
                        .filter(|rec| !rec.is_deleted).map(|rec| rec.id.clone()).collect();
                    let gone = s.delete_by_admin(now, u32::from(*nth));
                    match (&gone, live.is_empty()) {
                        (None, true) => {}
                        (Some(rec), false) => {
                            prop_assert_eq!(&rec.id, &live[*nth as usize % live.len()]);
                            prop_assert!(rec.is_deleted);
                            let o = u8::from(rec.object == OPP);
                            r.per_object[o as usize] -= 1;
                            r.deleted += 1;
                            if let Some(e) = rec.external_id.as_deref().and_then(|e| e.strip_prefix("ext-")) {
                                *r.by_ext.get_mut(&(o, e.parse().unwrap())).unwrap() -= 1;
                            }
                        }
                        _ => prop_assert!(false, "{:?} with {} live", gone, live.len()),
                    }
                }
                Cmd::AdminRestore { nth } => {
                    // The nth record of the Recycle Bin, in id order; with a
                    // unique external id a live holder of it blocks it.
                    let bin: Vec<(String, Option<String>, u8)> = s.ground_truth().records.values()
                        .filter(|rec| rec.is_deleted)
                        .map(|rec| (rec.id.clone(), rec.external_id.clone(), u8::from(rec.object == OPP)))
                        .collect();
                    let back = s.restore_by_admin(now, u32::from(*nth));
                    if bin.is_empty() {
                        prop_assert!(back.is_none());
                    } else {
                        let (id, ext, o) = &bin[*nth as usize % bin.len()];
                        let ext = ext.as_deref().and_then(|e| e.strip_prefix("ext-")).map(|e| e.parse::<u8>().unwrap());
                        let held = ext.is_some_and(|e| r.by_ext.get(&(*o, e)).copied().unwrap_or(0) > 0);
                        if unique && held {
                            prop_assert!(back.is_none(), "{:?}", back);
                        } else {
                            let rec = back.expect("restored");
                            prop_assert_eq!(&rec.id, id);
                            prop_assert!(!rec.is_deleted);
                            r.per_object[*o as usize] += 1;
                            r.deleted -= 1;
                            if let Some(e) = ext {
                                *r.by_ext.entry((*o, e)).or_default() += 1;
                            }
                        }
                    }
                }
            }
            s.check_invariants();
            check(&s, &r);
        }
    }

    /// No request a client can send makes the model panic.
    #[test]
    fn never_panics(reqs in prop::collection::vec((any_request(), injected(), 0u64..DAY_MS), 1..30)) {
        let mut s = Salesforce::new(SalesforceConfig { daily_api_limit: Some(20), external_id_unique: true, ..config() });
        let mut now = 0;
        for (req, inj, dt) in reqs {
            now += dt;
            let r = s.call(now, req, inj);
            prop_assert!(matches!(r.status, 200 | 201 | 204 | 300 | 400 | 403 | 404 | 412 | 500 | 503));
            s.check_invariants();
        }
    }
}

fn any_string() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just(BOOKING.to_owned()),
        Just(OPP.to_owned()),
        Just("a0B000000000001".to_owned()),
        Just(EXTERNAL_ID_FIELD.to_owned()),
        Just("Name".to_owned()),
        ".{0,8}",
        "x{250,260}",
    ]
    .boxed()
}

fn any_value() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        any_string().prop_map(Value::String),
        Just(json!([1])),
        Just(json!({"a": 1})),
    ]
    .boxed()
}

fn any_fields() -> BoxedStrategy<BTreeMap<String, Value>> {
    prop::collection::btree_map(any_string(), any_value(), 0..4).boxed()
}

fn any_request() -> impl Strategy<Value = SalesforceRequest> {
    let since = proptest::option::of(any::<u64>());
    prop_oneof![
        (any_string(), any_string(), any_fields(), since.clone()).prop_map(
            |(object, external_id, fields, if_unmodified_since_ms)| {
                SalesforceRequest::Upsert {
                    object,
                    external_id,
                    fields,
                    if_unmodified_since_ms,
                }
            }
        ),
        (any_string(), any_fields())
            .prop_map(|(object, fields)| SalesforceRequest::Create { object, fields }),
        (any_string(), any_string(), any_fields(), since).prop_map(
            |(object, id, fields, if_unmodified_since_ms)| {
                SalesforceRequest::Update {
                    object,
                    id,
                    fields,
                    if_unmodified_since_ms,
                }
            }
        ),
        (any_string(), any_string()).prop_map(|(object, id)| SalesforceRequest::Get { object, id }),
        (any_string(), any_string())
            .prop_map(|(object, id)| SalesforceRequest::Delete { object, id }),
        (any_string(), any_string())
            .prop_map(|(object, id)| SalesforceRequest::Undelete { object, id }),
        (any_string(), any_string()).prop_map(|(object, external_id)| {
            SalesforceRequest::QueryByExternalId {
                object,
                external_id,
            }
        }),
    ]
}

#[test]
fn every_body_serialises_and_round_trips() {
    // An internally tagged enum cannot serialise a newtype around a sequence
    // (`Errors`); the trace hash serialises every reply, so this must hold.
    let bodies = vec![
        SalesforceBody::SaveResult {
            id: "001".into(),
            created: true,
        },
        SalesforceBody::NoContent,
        SalesforceBody::QueryResult {
            total_size: 0,
            done: true,
            records: vec![],
        },
        SalesforceBody::MultipleChoices {
            ids: vec!["a".into(), "b".into()],
        },
        SalesforceBody::Errors(vec![SalesforceError {
            error_code: SalesforceErrorCode::UnableToLockRow,
            message: "locked".into(),
            fields: vec![],
        }]),
    ];
    for body in bodies {
        let json = serde_json::to_string(&body).expect("serialises");
        let back: SalesforceBody = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, body);
        assert!(bincode::serialize(&body).is_ok());
    }
}

// ----- validation rules, delete / undelete, row locks (issue 16) -----

fn strict() -> Salesforce {
    Salesforce::new(SalesforceConfig {
        validation_rules: vec![ValidationRule {
            object: BOOKING.into(),
            field: "Customer__c".into(),
            rejects: vec!["cust-3".into(), "7".into()],
            message: "Customer is on the do-not-book list".into(),
        }],
        ..config()
    })
}

#[test]
fn a_validation_rule_refuses_insert_and_update_definitively_and_applies_nothing() {
    let mut s = strict();
    let r = s.call(
        0,
        upsert(BOOKING, "saga-3", &[("Customer__c", json!("cust-3"))]),
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_code(),
        Some(SalesforceErrorCode::FieldCustomValidationException)
    );
    assert_eq!(count(&s, BOOKING, "saga-3"), 0, "nothing inserted");
    // A number compares by its text; other objects are not guarded.
    let r = s.call(1, create(BOOKING, &[("Customer__c", json!(7))]), None);
    assert_eq!(r.status, 400, "{r:?}");
    let r = s.call(
        2,
        upsert(OPP, "saga-3", &{
            let mut f = opp_fields();
            f.push(("Customer__c", json!("cust-3")));
            f
        }),
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    // An update that would make the record match is refused, and the
    // record keeps its old values.
    let r = s.call(
        3,
        upsert(BOOKING, "saga-1", &[("Customer__c", json!("cust-1"))]),
        None,
    );
    assert_eq!(r.status, 201);
    let r = s.call(
        4,
        upsert(BOOKING, "saga-1", &[("Customer__c", json!("cust-3"))]),
        None,
    );
    assert_eq!(r.status, 400);
    let rec = s
        .ground_truth()
        .with_external_id(BOOKING, "saga-1")
        .next()
        .unwrap();
    assert_eq!(rec.fields["Customer__c"], json!("cust-1"));
    assert_eq!(s.ground_truth().history.len(), 2, "two inserts, no update");
    // Retrying does not help: it is definitive.
    let r = s.call(
        5,
        upsert(BOOKING, "saga-3", &[("Customer__c", json!("cust-3"))]),
        None,
    );
    assert_eq!(r.status, 400);
    s.check_invariants();
}

#[test]
fn validation_rules_are_checked_when_the_scenario_loads() {
    let rule = |object: &str, field: &str, rejects: Vec<String>| SalesforceConfig {
        validation_rules: vec![ValidationRule {
            object: object.into(),
            field: field.into(),
            rejects,
            message: "m".into(),
        }],
        ..SalesforceConfig::default()
    };
    assert!(rule(BOOKING, "Customer__c", vec!["x".into()])
        .validate()
        .is_ok());
    assert!(rule("Opportunity", "Amount", vec!["1".into()])
        .validate()
        .is_ok());
    let e = rule("Not an object", "F", vec!["x".into()])
        .validate()
        .unwrap_err();
    assert!(e.contains("validation_rules[0].object"), "{e}");
    let e = rule(BOOKING, "1bad", vec!["x".into()])
        .validate()
        .unwrap_err();
    assert!(e.contains(".field"), "{e}");
    let e = rule(BOOKING, "F", vec![]).validate().unwrap_err();
    assert!(e.contains(".rejects"), "{e}");
}

#[test]
fn delete_moves_a_record_to_the_recycle_bin_and_undelete_brings_it_back() {
    let mut s = sf();
    let r = s.call(
        0,
        upsert(BOOKING, "saga-1", &[("Status__c", json!("Pending"))]),
        None,
    );
    let id = r.id().unwrap().to_string();
    let del = |id: &str| SalesforceRequest::Delete {
        object: BOOKING.into(),
        id: id.into(),
    };
    assert_eq!(s.call(1, del(&id), None).status, 204);
    // Gone for get, update, delete and query; its external id is free.
    let r = s.call(
        2,
        SalesforceRequest::Get {
            object: BOOKING.into(),
            id: id.clone(),
        },
        None,
    );
    assert_eq!(
        (r.status, r.error_code()),
        (404, Some(SalesforceErrorCode::EntityIsDeleted))
    );
    let r = s.call(
        3,
        update(BOOKING, &id, &[("Status__c", json!("x"))], None),
        None,
    );
    assert_eq!(
        (r.status, r.error_code()),
        (404, Some(SalesforceErrorCode::EntityIsDeleted))
    );
    assert_eq!(s.call(4, del(&id), None).status, 404);
    assert_eq!(count(&s, BOOKING, "saga-1"), 0);
    match s.call(5, query(BOOKING, "saga-1"), None).body {
        SalesforceBody::QueryResult { total_size, .. } => assert_eq!(total_size, 0),
        other => panic!("{other:?}"),
    }
    // Undelete restores it (and undeleting a live record fails).
    let undel = |id: &str| SalesforceRequest::Undelete {
        object: BOOKING.into(),
        id: id.into(),
    };
    assert_eq!(s.call(6, undel(&id), None).status, 200);
    assert_eq!(count(&s, BOOKING, "saga-1"), 1);
    let r = s.call(7, undel(&id), None);
    assert_eq!(r.error_code(), Some(SalesforceErrorCode::UndeleteFailed));
    // Deleted again, an upsert of the same external id makes a new record;
    // the old one can then not come back over it.
    assert_eq!(s.call(8, del(&id), None).status, 204);
    let r = s.call(
        9,
        upsert(BOOKING, "saga-1", &[("Status__c", json!("New"))]),
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_ne!(r.id().unwrap(), id);
    let r = s.call(10, undel(&id), None);
    assert_eq!(r.error_code(), Some(SalesforceErrorCode::DuplicateValue));
    let kinds: Vec<ChangeKind> = s.ground_truth().history_of(&id).map(|c| c.kind).collect();
    use ChangeKind::*;
    assert_eq!(kinds, [Created, Deleted, Undeleted, Deleted]);
    s.check_invariants();
}

#[test]
fn a_write_that_waits_on_another_writes_row_lock_fails_unable_to_lock_row() {
    let mut s = sf();
    let r = s.call(
        0,
        upsert(BOOKING, "saga-1", &[("Status__c", json!("Pending"))]),
        None,
    );
    let id = r.id().unwrap().to_string();
    let ticket = |b: Begin<SalesforceResponse>| match b {
        Begin::Pending(t) => t,
        Begin::Done(r) => panic!("answered at the door: {r:?}"),
    };
    // The first holds the lock past the second's completion.
    let first = ticket(s.start(
        10,
        update(BOOKING, &id, &[("Status__c", json!("A"))], None),
        None,
    ));
    let second = ticket(s.start(
        11,
        upsert(BOOKING, "saga-1", &[("Status__c", json!("B"))]),
        None,
    ));
    let r = s.complete(12, second);
    assert_eq!(r.error_code(), Some(SalesforceErrorCode::UnableToLockRow));
    assert_eq!(s.complete(13, first).status, 204);
    let rec = &s.ground_truth().records[&id];
    assert_eq!(
        rec.fields["Status__c"],
        json!("A"),
        "the locked-out write applied nothing"
    );
    // Once the first has committed, the next write of the row goes through.
    let first = ticket(s.start(
        20,
        update(BOOKING, &id, &[("Status__c", json!("C"))], None),
        None,
    ));
    let second = ticket(s.start(
        21,
        update(BOOKING, &id, &[("Status__c", json!("D"))], None),
        None,
    ));
    assert_eq!(s.complete(22, first).status, 204);
    assert_eq!(s.complete(23, second).status, 204);
    assert_eq!(
        s.ground_truth().records[&id].fields["Status__c"],
        json!("D")
    );
    // Writes of different records do not contend.
    let other = s
        .call(30, upsert(BOOKING, "saga-2", &[]), None)
        .id()
        .unwrap()
        .to_string();
    let a = ticket(s.start(
        31,
        update(BOOKING, &id, &[("Status__c", json!("E"))], None),
        None,
    ));
    let b = ticket(s.start(
        32,
        update(BOOKING, &other, &[("Status__c", json!("F"))], None),
        None,
    ));
    assert_eq!(s.complete(33, b).status, 204);
    assert_eq!(s.complete(34, a).status, 204);
    s.check_invariants();
}

// ----- sessions (issue 16) -----

const MIN: u64 = 60_000;

/// A login's token at `now`.
fn login(s: &mut Salesforce, now: u64) -> String {
    token(s, now)
}

fn under(token: &str, request: SalesforceRequest) -> SalesforceCall {
    SalesforceCall::api(token, request)
}

fn assert_invalid_session(r: &SalesforceResponse) {
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.error_code(), Some(SalesforceErrorCode::InvalidSessionId));
    assert!(r.is_invalid_session());
    match &r.body {
        SalesforceBody::Errors(e) => assert_eq!(e[0].message, "Session expired or invalid"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_default_session_timeout_is_two_hours_and_only_the_documented_choices_load() {
    assert_eq!(
        SalesforceConfig::default().session_timeout_ms,
        2 * 3_600_000
    );
    for minutes in [15, 30, 60, 120, 240, 480, 720, 1440] {
        let c = SalesforceConfig {
            session_timeout_ms: minutes * MIN,
            ..SalesforceConfig::default()
        };
        assert!(c.validate().is_ok(), "{minutes} min");
    }
    for ms in [0, 1, 14 * MIN, 45 * MIN, 1441 * MIN, u64::MAX] {
        let e = SalesforceConfig {
            session_timeout_ms: ms,
            ..SalesforceConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("salesforce.session_timeout_ms"), "{e}");
    }
    let c: SalesforceConfig = serde_json::from_str(r#"{"session_timeout_ms": 900000}"#).unwrap();
    assert_eq!(c.session_timeout_ms, 15 * MIN);
}

#[test]
fn a_session_expires_after_the_timeout_of_inactivity_and_a_401_applies_nothing() {
    let mut s = Salesforce::new(SalesforceConfig {
        session_timeout_ms: 15 * MIN,
        ..config()
    });
    let t = login(&mut s, 0);
    // Just inside the timeout: accepted.
    let r = s.handle(
        15 * MIN - 1,
        under(&t, upsert(BOOKING, "saga-1", &[])),
        None,
    );
    assert_eq!(r.status, 201);
    // A full timeout without a request: ended.
    let quiet_until = 15 * MIN - 1 + 15 * MIN;
    let write = upsert(BOOKING, "saga-2", &[("Status__c", json!("Held"))]);
    let r = s.handle(quiet_until, under(&t, write.clone()), None);
    assert_invalid_session(&r);
    assert_eq!(count(&s, BOOKING, "saga-2"), 0, "nothing applied");
    assert_eq!(s.ground_truth().history.len(), 1);
    assert_eq!(s.ground_truth().api_calls, 1, "a 401 is not an API call");
    assert_eq!(s.ground_truth().session_expiries, 1);
    // It stays ended (counted once), whatever comes later.
    assert_invalid_session(&s.handle(quiet_until + 1, under(&t, query(BOOKING, "saga-1")), None));
    assert_eq!(s.ground_truth().session_expiries, 1);
    assert_eq!(s.ground_truth().invalid_session_refusals, 2);
    // Log in again, send it again: applied once.
    assert_eq!(s.ground_truth().relogins_after_expiry, 0);
    let t2 = login(&mut s, quiet_until + 2);
    assert_ne!(t, t2);
    assert_eq!(s.ground_truth().relogins_after_expiry, 1);
    assert_eq!(
        s.handle(quiet_until + 3, under(&t2, write), None).status,
        201
    );
    assert_eq!(count(&s, BOOKING, "saga-2"), 1);
    s.check_invariants();
}

#[test]
fn every_request_resets_the_inactivity_timer() {
    let mut s = Salesforce::new(SalesforceConfig {
        session_timeout_ms: 15 * MIN,
        ..config()
    });
    let t = login(&mut s, 0);
    // A request every 14 minutes for four hours: never expires.
    for i in 1..=17 {
        let r = s.handle(i * 14 * MIN, under(&t, query(BOOKING, "x")), None);
        assert_eq!(r.status, 200, "at {i}: {r:?}");
    }
    // Any request under a live session counts, even one the API refuses.
    let r = s.handle(
        17 * 14 * MIN + 14 * MIN,
        under(&t, update(BOOKING, "bad", &[], None)),
        None,
    );
    assert_eq!(r.status, 400);
    let r = s.handle(
        17 * 14 * MIN + 28 * MIN,
        under(&t, query(BOOKING, "x")),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(s.ground_truth().session_expiries, 0);
    s.check_invariants();
}

#[test]
fn an_unknown_token_is_refused() {
    let mut s = sf();
    for token in ["", "00D000000000001!session-1", "anything"] {
        let r = s.handle(0, under(token, upsert(BOOKING, "saga-1", &[])), None);
        assert_invalid_session(&r);
    }
    assert_eq!(count(&s, BOOKING, "saga-1"), 0);
    assert_eq!(s.ground_truth().invalid_session_refusals, 3);
    assert_eq!(s.ground_truth().session_expiries, 0);
    assert_eq!(s.ground_truth().api_calls, 0);
    // A refused unknown token is no expiry: the next login is no relogin.
    login(&mut s, 1);
    assert_eq!(s.ground_truth().relogins_after_expiry, 0);
    s.check_invariants();
}

#[test]
fn revoked_sessions_are_refused_and_a_new_login_works() {
    let mut s = sf();
    let a = login(&mut s, 0);
    let b = login(&mut s, 1);
    // In flight when revoked: it was checked on arrival and completes.
    let t = s
        .begin(2, under(&a, upsert(BOOKING, "saga-1", &[])), None)
        .ticket()
        .expect("pending");
    assert_eq!(s.revoke_sessions(), 2);
    assert_eq!(s.revoke_sessions(), 0, "already revoked");
    assert_eq!(s.complete(3, t).status, 201);
    for token in [&a, &b] {
        assert_invalid_session(&s.handle(4, under(token, upsert(BOOKING, "saga-2", &[])), None));
    }
    assert_eq!(count(&s, BOOKING, "saga-2"), 0);
    assert_eq!(s.ground_truth().sessions_revoked, 2);
    assert_eq!(s.ground_truth().session_expiries, 0, "revoked, not expired");
    let c = login(&mut s, 5);
    assert_eq!(
        s.handle(6, under(&c, upsert(BOOKING, "saga-2", &[])), None)
            .status,
        201
    );
    s.check_invariants();
}

#[test]
fn sessions_are_the_orgs_state_and_a_login_after_a_crash_works() {
    let mut s = Salesforce::new(SalesforceConfig {
        session_timeout_ms: 15 * MIN,
        ..config()
    });
    let t = login(&mut s, 0);
    // The service node crashes with a request in flight: aborted, and the
    // session is still there afterwards (durable, like the records).
    let ticket = s
        .begin(1, under(&t, upsert(BOOKING, "saga-1", &[])), None)
        .ticket()
        .expect("pending");
    assert!(s.abort(ticket));
    assert_eq!(
        s.handle(2, under(&t, upsert(BOOKING, "saga-1", &[])), None)
            .status,
        201
    );
    // A restarted client has lost its token and logs in again: both work.
    let fresh = login(&mut s, 3);
    assert_eq!(
        s.handle(4, under(&fresh, query(BOOKING, "saga-1")), None)
            .status,
        200
    );
    assert_eq!(
        s.handle(5, under(&t, query(BOOKING, "saga-1")), None)
            .status,
        200
    );
    assert_eq!(s.sessions_issued(), 2);
    s.check_invariants();
}

#[test]
fn a_login_is_answered_at_once_and_injected_failures_issue_no_usable_token() {
    let mut s = sf();
    let r = s.begin(0, SalesforceCall::Login, None);
    let r = r.done().expect("answered at the door");
    assert_eq!(r.status, 200);
    assert!(r.access_token().is_some());
    // The token endpoint has no row to lock: a throttle does not apply.
    assert_eq!(
        s.handle(1, SalesforceCall::Login, Some(Injected::Throttle))
            .status,
        200
    );
    for inj in [Injected::FailBeforeApply, Injected::EdgeUnavailable] {
        let r = s.handle(2, SalesforceCall::Login, Some(inj));
        assert_eq!(r.status, 503);
        assert!(r.access_token().is_none());
    }
    // Issued, but the client hears a 500 and never learns the token.
    let r = s.handle(3, SalesforceCall::Login, Some(Injected::FailAfterApply));
    assert_eq!(r.status, 500);
    assert!(r.access_token().is_none());
    assert_eq!(s.ground_truth().logins, 3);
    assert_eq!(s.ground_truth().api_calls, 0, "logins are not API calls");
    s.check_invariants();
}

#[derive(Clone, Debug)]
enum SessionCmd {
    Login,
    Advance(u64),
    /// A query under the `n`th token issued (an unknown one past the end).
    Query(usize),
    Revoke,
}

fn session_cmd() -> impl Strategy<Value = SessionCmd> {
    prop_oneof![
        2 => Just(SessionCmd::Login),
        3 => prop_oneof![Just(MIN), Just(10 * MIN), Just(15 * MIN), Just(40 * MIN)]
            .prop_map(SessionCmd::Advance),
        6 => (0usize..5).prop_map(SessionCmd::Query),
        1 => Just(SessionCmd::Revoke),
    ]
}

proptest! {
    /// Sessions agree with a reference (last use and ended flag per
    /// token): a request is served iff its session was issued, not revoked
    /// and used within the timeout; a 401 applies nothing and is not an
    /// API call.
    #[test]
    fn sessions_agree_with_reference(cmds in prop::collection::vec(session_cmd(), 1..60)) {
        let timeout = 15 * MIN;
        let mut s = Salesforce::new(SalesforceConfig { session_timeout_ms: timeout, ..config() });
        // (token, last use, live)
        let mut reference: Vec<(String, u64, bool)> = Vec::new();
        let (mut now, mut served, mut refused) = (0u64, 0u64, 0u64);
        for cmd in &cmds {
            now += 1;
            match cmd {
                SessionCmd::Login => {
                    let r = s.handle(now, SalesforceCall::Login, None);
                    reference.push((r.access_token().unwrap().to_owned(), now, true));
                }
                SessionCmd::Advance(ms) => now += ms,
                SessionCmd::Revoke => {
                    let live = reference.iter().filter(|(_, _, live)| *live).count();
                    // The model also ends sessions it found expired; the
                    // reference ends them only here or on a refused use.
                    let revoked = s.revoke_sessions();
                    prop_assert!(revoked <= live);
                    for r in &mut reference { r.2 = false; }
                }
                SessionCmd::Query(n) => {
                    let token = reference.get(*n).map_or("unknown".to_owned(), |r| r.0.clone());
                    let resp = s.handle(now, SalesforceCall::api(&token, query(BOOKING, "x")), None);
                    let ok = match reference.get_mut(*n) {
                        Some(r) if r.2 && now - r.1 < timeout => { r.1 = now; true }
                        Some(r) => { r.2 = false; false }
                        None => false,
                    };
                    if ok { served += 1 } else { refused += 1 }
                    prop_assert_eq!(resp.status, if ok { 200 } else { 401 }, "{:?} at {}", cmd, now);
                }
            }
            s.check_invariants();
            let t = s.ground_truth();
            prop_assert_eq!((t.api_calls, t.invalid_session_refusals), (served, refused));
            prop_assert!(t.history.is_empty());
        }
    }

    /// No call a client can send — any token, any request — makes the
    /// model panic.
    #[test]
    fn calls_under_any_token_never_panic(
        calls in prop::collection::vec((proptest::option::of(any_string()), any_request(), injected(), 0u64..DAY_MS), 1..30)
    ) {
        let mut s = sf();
        let mut now = 0;
        for (token, req, inj, dt) in calls {
            now += dt;
            let call = match token {
                None => SalesforceCall::Login,
                Some(t) => SalesforceCall::api(&t, req),
            };
            let r = s.handle(now, call, inj);
            prop_assert!(matches!(r.status, 200 | 401 | 500 | 503), "{:?}", r);
            s.check_invariants();
        }
    }
}

#[test]
fn an_admin_deletes_the_nth_live_unlocked_record_and_a_later_upsert_creates_anew() {
    let mut s = sf();
    assert_eq!(s.delete_by_admin(0, 0), None, "nothing to delete yet");
    let mut ids = Vec::new();
    for ext in ["saga-1", "saga-2"] {
        let r = s.call(
            1,
            upsert(BOOKING, ext, &[("Status__c", json!("Pending"))]),
            None,
        );
        ids.push(r.id().unwrap().to_string());
    }
    // A write in flight holds the first record's lock: the admin's delete
    // passes it by, and nth counts over the unlocked ones only.
    let token = token(&mut s, 2);
    let pending = s.begin(
        2,
        SalesforceCall::api(
            &token,
            update(BOOKING, &ids[0], &[("Status__c", json!("Confirmed"))], None),
        ),
        None,
    );
    let ticket = pending.ticket().expect("in flight");
    let gone = s
        .delete_by_admin(3, 0)
        .expect("the second record is unlocked");
    assert_eq!(gone.id, ids[1]);
    assert!(gone.is_deleted);
    assert_eq!(s.complete(4, ticket).status, 204, "the locked write lands");
    assert_eq!(s.ground_truth().admin_deletions, vec![ids[1].clone()]);
    // In the Recycle Bin: the saga's query no longer finds it, and its
    // upsert by external id creates a new record (201), as for any delete.
    assert_eq!(count(&s, BOOKING, "saga-2"), 0);
    let r = s.call(
        5,
        upsert(BOOKING, "saga-2", &[("Status__c", json!("Confirmed"))]),
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_ne!(r.id().unwrap(), ids[1]);
    // nth counts round over the live records (ids[0] and the new one).
    let gone = s.delete_by_admin(6, 2).unwrap();
    assert_eq!(gone.id, ids[0]);
    assert_eq!(s.ground_truth().admin_deletions.len(), 2);
    // Not an API call.
    assert_eq!(s.ground_truth().api_calls, 4);
    s.check_invariants();
}

#[test]
fn an_admin_restores_the_nth_deleted_record_and_the_saga_finds_it_again() {
    let mut s = sf();
    assert_eq!(s.restore_by_admin(0, 0), None, "the Recycle Bin is empty");
    let mut ids = Vec::new();
    for ext in ["saga-1", "saga-2"] {
        let r = s.call(
            1,
            upsert(BOOKING, ext, &[("Status__c", json!("Pending"))]),
            None,
        );
        ids.push(r.id().unwrap().to_string());
    }
    s.delete_by_admin(2, 0).unwrap();
    s.delete_by_admin(3, 0).unwrap();
    assert_eq!(count(&s, BOOKING, "saga-2"), 0);
    // nth counts round over the deleted records, in id order.
    let back = s.restore_by_admin(4, 3).expect("two in the bin");
    assert_eq!(back.id, ids[1]);
    assert!(!back.is_deleted);
    assert_eq!(s.ground_truth().admin_restorations, vec![ids[1].clone()]);
    // Live again: a query finds it, and an upsert by external id updates
    // it (200) instead of creating a new record.
    assert_eq!(count(&s, BOOKING, "saga-2"), 1);
    let r = s.call(
        5,
        upsert(BOOKING, "saga-2", &[("Status__c", json!("Confirmed"))]),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.id().unwrap(), ids[1]);
    s.check_invariants();
}
