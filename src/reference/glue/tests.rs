//! The Salesforce reconcile's judgement, without a world: which records a
//! step's reconcile looks for ([`crm_lookups`]), which rows of a query by
//! external id are its effect ([`crm_effect`]), and that it looks at each
//! record in turn ([`first_found`]); and which records a sweep's undo of a
//! late copy writes ([`undo_records`]).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::*;
use crate::saga::SagaInput;
use crate::services::salesforce::SfRecord as Row;
use crate::workloads::hotel::{
    booking, opportunity, BOOKING, OPPORTUNITY, STAGE_LOST, STAGE_OPEN, STAGE_WON,
    STATUS_CANCELLED, STATUS_CONFIRMED, STATUS_PENDING,
};

/// The hotel checkout's `crm_record`: written before the pivot, undone by
/// cancelling the booking and losing the opportunity.
fn crm_record() -> (Vec<SfRecord>, Vec<SfRecord>) {
    (
        vec![booking(STATUS_PENDING), opportunity(STAGE_OPEN)],
        vec![booking(STATUS_CANCELLED), opportunity(STAGE_LOST)],
    )
}

/// A live row of the org under saga `saga-1`, as a query returns it: the
/// fields `record` sends for a guest, with id `id`.
fn row(record: &SfRecord, id: &str) -> Row {
    let input = SagaInput::new("res-1", "cust-1", 25_000)
        .with_param("room_type", "standard")
        .with_param("first_night", 1)
        .with_param("nights", 2);
    Row {
        object: record.object.clone(),
        id: id.to_string(),
        external_id: Some("saga-1".into()),
        fields: record.resolve(&input),
        created_ms: 0,
        last_modified_ms: 0,
        is_deleted: false,
    }
}

/// Run a future that never waits (the look-ups below answer at once).
fn now<T>(f: impl Future<Output = T>) -> T {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(t) => t,
        Poll::Pending => panic!("a look-up that answers at once"),
    }
}

/// What the reconcile of (`records`, `undo`) finds when the org's live
/// rows under the saga's external id are `live`, and the objects it
/// queried, in order.
fn reconcile(records: &[SfRecord], undo: &[SfRecord], live: &[Row]) -> (Outcome, Vec<String>) {
    let mut queried = Vec::new();
    let outcome = now(first_found(crm_lookups(records, undo), |record, undone| {
        queried.push(record.object.clone());
        let rows: Vec<Row> = live
            .iter()
            .filter(|r| r.object == record.object)
            .cloned()
            .collect();
        std::future::ready(crm_effect(record, undone, rows))
    }));
    (outcome, queried)
}

/// Found, as the glue names Salesforce effects: `Object/id`.
fn found_ids(ids: &[(&str, &str)]) -> Outcome {
    Outcome::Found {
        references: ids.iter().map(|(o, id)| sf_ref(o, id)).collect(),
    }
}

#[test]
fn a_record_in_a_state_its_step_does_not_write_is_not_the_steps_effect() {
    let (records, undo) = crm_record();
    let (pending, cancelled) = (&records[0], &undo[0]);
    // After an admin deleted crm_record's booking, crm_close_won's upsert
    // (which does not match a record in the Recycle Bin) created a new one
    // in its own state, Confirmed: not a late copy of crm_record, whose
    // sweep must not cancel it (regression hotel-checkout-334).
    let confirmed = row(&booking(STATUS_CONFIRMED), "a00000000000002");
    assert_eq!(
        crm_effect(pending, Some(cancelled), vec![confirmed.clone()]),
        Outcome::NotFound
    );
    // Nor is a record in the undone state.
    let undone = row(cancelled, "a00000000000003");
    assert_eq!(
        crm_effect(pending, Some(cancelled), vec![undone]),
        Outcome::NotFound
    );
    // A record in the step's own state (a late copy of its create-only
    // upsert, say) is its effect, whatever stands beside it.
    let own = row(pending, "a00000000000004");
    assert_eq!(
        crm_effect(pending, Some(cancelled), vec![confirmed.clone(), own]),
        found_ids(&[(BOOKING, "a00000000000004")])
    );
    // The whole reconcile: the re-created Confirmed booking and a Closed
    // Won opportunity are crm_close_won's, so crm_record is not found.
    let won = row(&opportunity(STAGE_WON), "00600000000001");
    let (outcome, _) = reconcile(&records, &undo, &[confirmed, won]);
    assert_eq!(outcome, Outcome::NotFound);
}

#[test]
fn a_step_whose_first_record_an_admin_deleted_is_found_by_its_second() {
    let (records, undo) = crm_record();
    // It looks at each record the step writes, in order, each with its
    // object's undone state.
    let lookups = crm_lookups(&records, &undo);
    let objects: Vec<(&str, Option<&str>)> = lookups
        .iter()
        .map(|(r, u)| (r.object.as_str(), u.map(|u| u.object.as_str())))
        .collect();
    assert_eq!(
        objects,
        [(BOOKING, Some(BOOKING)), (OPPORTUNITY, Some(OPPORTUNITY))]
    );
    // The booking is in the Recycle Bin (a query does not return it); the
    // Prospecting opportunity stands: the step applied (regression
    // hotel-checkout-5861).
    let prospecting = row(&opportunity(STAGE_OPEN), "00600000000001");
    let (outcome, queried) = reconcile(&records, &undo, &[prospecting]);
    assert_eq!(outcome, found_ids(&[(OPPORTUNITY, "00600000000001")]));
    assert_eq!(queried, [BOOKING, OPPORTUNITY]);
    // When the first record stands, the second is not queried.
    let pending = row(&booking(STATUS_PENDING), "a00000000000001");
    let (outcome, queried) = reconcile(&records, &undo, &[pending]);
    assert_eq!(outcome, found_ids(&[(BOOKING, "a00000000000001")]));
    assert_eq!(queried, [BOOKING]);
    // Neither stands: not found, after looking at both.
    let (outcome, queried) = reconcile(&records, &undo, &[]);
    assert_eq!(outcome, Outcome::NotFound);
    assert_eq!(queried.len(), 2);
}

#[test]
fn a_step_without_an_undo_is_found_by_its_last_record_only() {
    // crm_close_won: written last, the opportunity says the step is done.
    let records = vec![booking(STATUS_CONFIRMED), opportunity(STAGE_WON)];
    let lookups = crm_lookups(&records, &[]);
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].0.object, OPPORTUNITY);
    assert!(lookups[0].1.is_none());
    let confirmed = row(&records[0], "a00000000000001");
    let (outcome, _) = reconcile(&records, &[], std::slice::from_ref(&confirmed));
    assert_eq!(outcome, Outcome::NotFound, "the opportunity is not won yet");
    let won = row(&records[1], "00600000000001");
    let (outcome, _) = reconcile(&records, &[], &[confirmed, won]);
    assert_eq!(outcome, found_ids(&[(OPPORTUNITY, "00600000000001")]));
}

#[test]
fn a_sweeps_undo_of_a_late_copy_writes_that_records_object_only() {
    let (_, undo) = crm_record();
    let saga = crate::saga::SagaId::for_business_key("res-1");
    let call = |key: String, target: Option<String>| StepCall {
        call_id: 1,
        saga: saga.clone(),
        step: 2,
        step_name: "crm_record".into(),
        op: Op::Compensate,
        key,
        attempt: 1,
        input: std::sync::Arc::new(SagaInput::new("res-1", "cust-1", 25_000)),
        refs: Default::default(),
        target_ref: target,
    };
    let objects = |c: &StepCall| -> Vec<String> {
        undo_records(c, &undo)
            .into_iter()
            .map(|r| r.object)
            .collect()
    };
    // The step's own compensation undoes every record, whatever its
    // reference names.
    let effect = sf_ref(BOOKING, "a00000000000001");
    let own = call(
        crate::saga::undo_key(&saga, "crm_record", None),
        Some(effect.clone()),
    );
    assert_eq!(objects(&own), [BOOKING, OPPORTUNITY]);
    // A late copy the sweep found is one record: only its object is
    // undone, so a completed saga's standing opportunity stays won
    // (regression crm-admin-deletes-471).
    let late = call(
        crate::saga::undo_key(&saga, "crm_record", Some(&effect)),
        Some(effect),
    );
    assert_eq!(objects(&late), [BOOKING]);
    let stray = sf_ref(OPPORTUNITY, "00600000000009");
    let late = call(
        crate::saga::undo_key(&saga, "crm_record", Some(&stray)),
        Some(stray),
    );
    assert_eq!(objects(&late), [OPPORTUNITY]);
}
