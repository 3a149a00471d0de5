//! The hotel checkout, declared on the workload API.
//!
//! - Automatic capture: `hold_room` → `charge` → `crm_record` →
//!   **`confirm_room`** → `crm_close_won`.
//! - Manual capture: `hold_room` → `authorize` → `crm_record` →
//!   **`confirm_room`** → `capture` → `crm_close_won`.
//!
//! `hold_room` is undone by releasing the hold, `charge` by a refund,
//! `authorize` by cancelling the intent, `crm_record` (upsert booking and
//! opportunity by external id, create-only) by marking both cancelled.
//! Callers: agent `n` books `res-n` for customer `cust-n` at the
//! scenario's price, for its room type and nights (the params
//! `room_type`, `first_night`, `nights`).
//!
//! Not here: anything the engine needs to know — it reads this declaration
//! like any user's.

pub mod naive;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::saga::SagaInput;
use crate::scenario::Scenario;
use crate::workload::{Field, HoldSpec, Operation, SfRecord, Step, Workload};

/// The Salesforce custom object of a stay (see [`booking`]).
pub const BOOKING: &str = "Booking__c";
/// The Salesforce object of the sale (see [`opportunity`]).
pub const OPPORTUNITY: &str = "Opportunity";
/// The booking's status field.
pub const BOOKING_STATUS: &str = "Status__c";
/// Booking status written by `crm_record`, before the pivot.
pub const STATUS_PENDING: &str = "Pending";
/// Booking status written by `crm_close_won`, after the pivot.
pub const STATUS_CONFIRMED: &str = "Confirmed";
/// Booking status written when `crm_record` is compensated.
pub const STATUS_CANCELLED: &str = "Cancelled";
/// The opportunity's stage field.
pub const STAGE: &str = "StageName";
/// Opportunity stage written by `crm_record`.
pub const STAGE_OPEN: &str = "Prospecting";
/// Opportunity stage written by `crm_close_won`.
pub const STAGE_WON: &str = "Closed Won";
/// Opportunity stage written when `crm_record` is compensated.
pub const STAGE_LOST: &str = "Closed Lost";

/// How the hotel checkout takes the money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// `charge` captures at once; its compensation is a refund.
    Automatic,
    /// `authorize` before the pivot (compensation: cancel the intent),
    /// `capture` after it.
    Manual,
}

impl From<crate::scenario::CaptureModeName> for CaptureMode {
    fn from(c: crate::scenario::CaptureModeName) -> CaptureMode {
        match c {
            crate::scenario::CaptureModeName::Automatic => CaptureMode::Automatic,
            crate::scenario::CaptureModeName::Manual => CaptureMode::Manual,
        }
    }
}

/// The booking record, in `status`.
pub fn booking(status: &str) -> SfRecord {
    SfRecord::new(
        BOOKING,
        &[
            (BOOKING_STATUS, Field::text(status)),
            ("Customer__c", Field::Customer),
            ("Room_Type__c", Field::Param("room_type".into())),
            ("First_Night__c", Field::ParamInt("first_night".into())),
            ("Nights__c", Field::ParamInt("nights".into())),
            ("Amount_Cents__c", Field::AmountCents),
        ],
    )
}

/// The opportunity record, at `stage`.
pub fn opportunity(stage: &str) -> SfRecord {
    SfRecord::new(
        OPPORTUNITY,
        &[
            ("Name", Field::Template("Stay {business_key}".into())),
            (STAGE, Field::text(stage)),
            ("CloseDate", Field::text("2026-01-01")),
            ("Amount", Field::AmountCents),
        ],
    )
}

/// The hotel checkout's steps.
pub fn steps(capture: CaptureMode) -> Vec<Step> {
    let mut steps = vec![Step::compensatable(
        "hold_room",
        Operation::PmsHold(HoldSpec::from_params()),
    )];
    steps.push(match capture {
        CaptureMode::Automatic => Step::compensatable("charge", Operation::StripeCharge),
        CaptureMode::Manual => Step::compensatable("authorize", Operation::StripeAuthorize),
    });
    steps.push(Step::compensatable(
        "crm_record",
        Operation::SalesforceUpsert {
            records: vec![booking(STATUS_PENDING), opportunity(STAGE_OPEN)],
            undo: vec![booking(STATUS_CANCELLED), opportunity(STAGE_LOST)],
            create_only: true,
        },
    ));
    steps.push(Step::pivot(
        "confirm_room",
        Operation::PmsConfirm {
            hold: "hold_room".into(),
        },
    ));
    if capture == CaptureMode::Manual {
        steps.push(Step::retriable(
            "capture",
            Operation::StripeCapture {
                authorization: "authorize".into(),
            },
        ));
    }
    steps.push(Step::retriable(
        "crm_close_won",
        Operation::SalesforceUpsert {
            records: vec![booking(STATUS_CONFIRMED), opportunity(STAGE_WON)],
            undo: vec![],
            create_only: false,
        },
    ));
    steps
}

/// What agent `n` asks for; with manual capture, an agent of
/// `partial_capture_agents` is billed `capture_cents` in the end.
pub fn input(s: &Scenario, n: u32) -> SagaInput {
    let input = SagaInput::new(
        &Scenario::business_key(n),
        &Scenario::customer(n),
        s.workload.price_cents,
    )
    .with_param("room_type", &s.workload.room_type)
    .with_param("first_night", s.workload.first_night)
    .with_param("nights", s.workload.nights);
    let partial = s.saga.capture == crate::scenario::CaptureModeName::Manual
        && s.workload.partial_capture_agents.contains(&n);
    if partial {
        input.with_capture(s.workload.capture_cents)
    } else {
        input
    }
}

/// The hotel checkout workload.
pub fn hotel_checkout(capture: CaptureMode) -> Workload {
    let name = match capture {
        CaptureMode::Automatic => "hotel_checkout_automatic",
        CaptureMode::Manual => "hotel_checkout_manual",
    };
    Workload::new(name, steps(capture), Arc::new(input)).expect("the hotel checkout is valid")
}

/// The saga the reference coordinator runs for the hotel checkout (for the
/// core's unit tests).
pub fn saga_definition(
    capture: CaptureMode,
    pms_deduplicates: bool,
) -> crate::saga::SagaDefinition {
    hotel_checkout(capture)
        .definition(pms_deduplicates)
        .expect("valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saga::{StepKind, SweepPolicy};

    fn names(d: &crate::saga::SagaDefinition) -> Vec<&str> {
        d.steps().iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn automatic_has_the_documented_shape() {
        let d = saga_definition(CaptureMode::Automatic, true);
        assert_eq!(
            names(&d),
            [
                "hold_room",
                "charge",
                "crm_record",
                "confirm_room",
                "crm_close_won"
            ]
        );
        assert_eq!(d.pivot(), 3);
        assert_eq!(d.step(0).sweep, SweepPolicy::UnlessApplied);
        assert!(d.steps()[..3].iter().all(|s| s.compensation));
        assert!(d.steps()[..3]
            .iter()
            .all(|s| s.sweep == SweepPolicy::UnlessApplied));
        assert!(d.steps()[3..].iter().all(|s| !s.compensation));
        assert!(d.steps()[3..]
            .iter()
            .all(|s| s.sweep == SweepPolicy::WhenAmbiguous));
    }

    #[test]
    fn manual_has_the_documented_shape() {
        let d = saga_definition(CaptureMode::Manual, false);
        assert_eq!(
            names(&d),
            [
                "hold_room",
                "authorize",
                "crm_record",
                "confirm_room",
                "capture",
                "crm_close_won"
            ]
        );
        assert_eq!(d.pivot(), 3);
        assert_eq!(d.step(0).sweep, SweepPolicy::Always);
        assert_eq!(d.step(4).kind, StepKind::Retriable);
        assert_eq!(d.step_index("capture"), Some(4));
    }
}
