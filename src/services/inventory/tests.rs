//! Unit tests (one per documented behaviour) and property tests (the model
//! against a small reference model; no panic on arbitrary requests).

use super::*;
use proptest::prelude::*;

const TTL: u64 = 15 * MINUTE_MS;

fn pms(capacity: u32) -> Inventory {
    Inventory::new(InventoryConfig {
        room_types: [("std".to_owned(), capacity), ("suite".to_owned(), 1)].into(),
        ..InventoryConfig::default()
    })
}

fn hold(room: &str, first: u32, nights: u32, client_ref: Option<&str>) -> InventoryRequest {
    InventoryRequest::Hold {
        room_type: room.into(),
        first_night: first,
        nights,
        ttl_ms: None,
        client_ref: client_ref.map(str::to_owned),
    }
}

fn confirm(id: &str) -> InventoryRequest {
    InventoryRequest::Confirm { hold_id: id.into() }
}

fn release(id: &str) -> InventoryRequest {
    InventoryRequest::Release { hold_id: id.into() }
}

fn list(client_ref: &str) -> InventoryRequest {
    InventoryRequest::ListByClientRef {
        client_ref: client_ref.into(),
    }
}

fn hold_id(r: &InventoryResponse) -> String {
    r.hold()
        .unwrap_or_else(|| panic!("no hold in {r:?}"))
        .id
        .clone()
}

#[test]
fn hold_then_confirm() {
    let mut p = pms(2);
    let r = p.handle(1_000, hold("std", 10, 3, Some("saga-1")), None);
    assert_eq!(r.status, 201);
    let h = r.hold().unwrap();
    assert_eq!(h.id, "hold-1");
    assert_eq!(h.expires_ms, 1_000 + TTL);
    assert_eq!(h.status, HoldStatus::Active);
    assert_eq!(p.ground_truth().occupancy("std", 11).active_holds, 1);
    let r = p.handle(2_000, confirm("hold-1"), None);
    assert_eq!(r.status, 201);
    let b = r.booking().unwrap();
    assert_eq!(
        (b.id.as_str(), b.hold_id.as_str(), b.client_ref.as_deref()),
        ("bk-1", "hold-1", Some("saga-1"))
    );
    let t = p.ground_truth();
    assert_eq!(t.hold("hold-1").unwrap().status, HoldStatus::Confirmed);
    for night in 10..13 {
        assert_eq!(t.confirmed_count("std", night), 1);
        assert_eq!(t.occupancy("std", night).active_holds, 0);
    }
    assert_eq!(t.confirmed_count("std", 13), 0);
    p.check_invariants();
}

#[test]
fn no_availability_when_capacity_is_held() {
    let mut p = pms(2);
    assert_eq!(p.handle(0, hold("std", 10, 2, None), None).status, 201);
    assert_eq!(p.handle(0, hold("std", 11, 2, None), None).status, 201);
    // Night 11 is full; night 12 has one room left; night 9 is free.
    let r = p.handle(0, hold("std", 9, 3, None), None);
    assert_eq!(
        (r.status, r.error_code()),
        (409, Some(PmsErrorCode::NoAvailability))
    );
    assert_eq!(p.handle(0, hold("std", 12, 1, None), None).status, 201);
    assert_eq!(p.handle(0, hold("std", 9, 1, None), None).status, 201);
    assert_eq!(p.handle(0, hold("suite", 11, 1, None), None).status, 201);
    p.check_invariants();
}

#[test]
fn overbooking_limit_allows_extra_rooms() {
    let mut p = Inventory::new(InventoryConfig {
        room_types: [("std".to_owned(), 1)].into(),
        overbooking_limit: 1,
        ..InventoryConfig::default()
    });
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    let b = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    assert_eq!(
        p.handle(0, hold("std", 1, 1, None), None).error_code(),
        Some(PmsErrorCode::NoAvailability)
    );
    assert_eq!(p.handle(1, confirm(&a), None).status, 201);
    assert_eq!(p.handle(1, confirm(&b), None).status, 201);
    assert_eq!(p.ground_truth().confirmed_count("std", 1), 2);
    p.check_invariants();
}

#[test]
fn holds_expire_on_the_service_clock_and_free_capacity() {
    let mut p = pms(1);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    assert_eq!(
        p.handle(TTL - 1, hold("std", 1, 1, None), None)
            .error_code(),
        Some(PmsErrorCode::NoAvailability)
    );
    // At the TTL the hold is expired: capacity is free again.
    let r = p.handle(TTL, hold("std", 1, 1, None), None);
    assert_eq!(r.status, 201);
    let h = p.ground_truth().hold(&a).unwrap();
    assert_eq!((h.status, h.ended_ms), (HoldStatus::Expired, Some(TTL)));
    p.check_invariants();
}

#[test]
fn confirm_after_ttl_is_lease_expired() {
    let mut p = pms(1);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    let r = p.handle(TTL, confirm(&a), None);
    assert_eq!(
        (r.status, r.error_code()),
        (409, Some(PmsErrorCode::LeaseExpired))
    );
    assert!(p.ground_truth().bookings.is_empty());
    // Just before the TTL it would have worked.
    let b = hold_id(&p.handle(TTL, hold("std", 1, 1, None), None));
    assert_eq!(p.handle(2 * TTL - 1, confirm(&b), None).status, 201);
}

#[test]
fn custom_ttl_and_its_limits() {
    let mut p = pms(1);
    let mut req = hold("std", 1, 1, None);
    if let InventoryRequest::Hold { ttl_ms, .. } = &mut req {
        *ttl_ms = Some(5_000);
    }
    let r = p.handle(100, req.clone(), None);
    assert_eq!(r.hold().unwrap().expires_ms, 5_100);
    for bad in [0, p.config().max_hold_ttl_ms + 1, u64::MAX] {
        if let InventoryRequest::Hold { ttl_ms, .. } = &mut req {
            *ttl_ms = Some(bad);
        }
        assert_eq!(
            p.handle(200, req.clone(), None).error_code(),
            Some(PmsErrorCode::InvalidRequest)
        );
    }
}

#[test]
fn confirm_is_idempotent() {
    let mut p = pms(1);
    let a = hold_id(&p.handle(0, hold("std", 1, 2, None), None));
    let first = p.handle(1, confirm(&a), None);
    // Even after the TTL, a confirmed hold confirms to the same booking.
    let again = p.handle(TTL * 10, confirm(&a), None);
    assert_eq!(again.status, 200);
    assert_eq!(again.booking(), first.booking());
    assert_eq!(p.ground_truth().bookings.len(), 1);
}

#[test]
fn confirm_of_released_or_unknown_hold_fails() {
    let mut p = pms(1);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    p.handle(1, release(&a), None);
    let r = p.handle(2, confirm(&a), None);
    assert_eq!(
        (r.status, r.error_code()),
        (409, Some(PmsErrorCode::HoldReleased))
    );
    for bad in [
        "hold-99",
        "hold-01",
        "hold-",
        "",
        "bk-1",
        "hold-18446744073709551616",
    ] {
        let r = p.handle(2, confirm(bad), None);
        assert_eq!(
            (r.status, r.error_code()),
            (404, Some(PmsErrorCode::HoldNotFound)),
            "{bad:?}"
        );
    }
}

#[test]
fn out_of_order_room_type_fails_confirm_definitively() {
    let mut p = Inventory::new(InventoryConfig {
        room_types: [("std".to_owned(), 2)].into(),
        out_of_order: ["std".to_owned()].into(),
        ..InventoryConfig::default()
    });
    // The hold is an allotment; the room status is checked at confirm.
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    let r = p.handle(1, confirm(&a), None);
    assert_eq!(
        (r.status, r.error_code()),
        (409, Some(PmsErrorCode::RoomOutOfOrder))
    );
    // Definitive: retrying does not help; the hold stays for the saga to
    // release (a model that released it silently would hide leaks).
    assert_eq!(
        p.handle(2, confirm(&a), None).error_code(),
        Some(PmsErrorCode::RoomOutOfOrder)
    );
    assert_eq!(
        p.ground_truth().hold(&a).unwrap().status,
        HoldStatus::Active
    );
    assert_eq!(p.handle(3, release(&a), None).status, 200);
}

#[test]
fn room_going_out_of_order_between_hold_and_confirm() {
    let mut p = pms(2);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    let set = |ooo| InventoryRequest::SetRoomType {
        room_type: "std".into(),
        capacity: 2,
        out_of_order: ooo,
    };
    assert_eq!(p.handle(1, set(true), None).status, 200);
    assert_eq!(
        p.handle(2, confirm(&a), None).error_code(),
        Some(PmsErrorCode::RoomOutOfOrder)
    );
    assert_eq!(p.handle(3, set(false), None).status, 200);
    assert_eq!(p.handle(4, confirm(&a), None).status, 201);
}

#[test]
fn confirm_rechecks_availability_after_a_capacity_cut() {
    let mut p = pms(2);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    let b = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    let cut = InventoryRequest::SetRoomType {
        room_type: "std".into(),
        capacity: 1,
        out_of_order: false,
    };
    assert_eq!(p.handle(1, cut, None).status, 200);
    assert_eq!(p.ground_truth().occupancy("std", 1).available(), -1);
    assert_eq!(p.handle(2, confirm(&a), None).status, 201);
    let r = p.handle(3, confirm(&b), None);
    assert_eq!(
        (r.status, r.error_code()),
        (409, Some(PmsErrorCode::NoAvailability))
    );
    // A cut below the confirmed bookings is refused.
    let cut0 = InventoryRequest::SetRoomType {
        room_type: "std".into(),
        capacity: 0,
        out_of_order: false,
    };
    assert_eq!(
        p.handle(4, cut0, None).error_code(),
        Some(PmsErrorCode::CapacityInUse)
    );
    p.check_invariants();
}

#[test]
fn release_is_idempotent_and_null_compensation_succeeds() {
    let mut p = pms(1);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    let r = p.handle(1, release(&a), None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        InventoryBody::Released {
            hold_id: a.clone(),
            previous: Some(HoldStatus::Active)
        }
    );
    let r = p.handle(2, release(&a), None);
    assert_eq!(
        r.body,
        InventoryBody::Released {
            hold_id: a.clone(),
            previous: Some(HoldStatus::Released)
        }
    );
    let r = p.handle(3, release("hold-77"), None);
    assert_eq!(
        (r.status, r.body),
        (
            200,
            InventoryBody::Released {
                hold_id: "hold-77".into(),
                previous: None
            }
        )
    );
    assert_eq!(p.handle(3, release("garbage"), None).status, 200);
    // Released capacity is free.
    assert_eq!(p.handle(4, hold("std", 1, 1, None), None).status, 201);
    let h = p.ground_truth().hold(&a).unwrap();
    assert_eq!((h.status, h.ended_ms), (HoldStatus::Released, Some(1)));
    p.check_invariants();
}

#[test]
fn release_of_expired_hold_succeeds() {
    let mut p = pms(1);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    let r = p.handle(TTL + 1, release(&a), None);
    assert_eq!(
        r.body,
        InventoryBody::Released {
            hold_id: a,
            previous: Some(HoldStatus::Expired)
        }
    );
}

#[test]
fn release_of_confirmed_hold_is_409() {
    let mut p = pms(1);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, None), None));
    p.handle(1, confirm(&a), None);
    let r = p.handle(2, release(&a), None);
    assert_eq!(
        (r.status, r.error_code()),
        (409, Some(PmsErrorCode::HoldConfirmed))
    );
    assert_eq!(p.ground_truth().confirmed_count("std", 1), 1);
}

#[test]
fn without_honoured_client_ref_a_retried_hold_makes_a_second_hold() {
    let mut p = pms(5);
    let req = hold("std", 1, 2, Some("saga-1"));
    let a = hold_id(&p.handle(0, req.clone(), None));
    let b = hold_id(&p.handle(1, req, None));
    assert_ne!(a, b);
    assert_eq!(p.ground_truth().occupancy("std", 1).active_holds, 2);
    // Reconciliation finds both by client ref.
    let r = p.handle(2, list("saga-1"), None);
    let InventoryBody::List { holds, bookings } = r.body else {
        panic!()
    };
    assert_eq!(
        holds.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        vec!["hold-1", "hold-2"]
    );
    assert!(bookings.is_empty());
}

#[test]
fn honoured_client_ref_returns_the_existing_hold() {
    let mut p = Inventory::new(InventoryConfig {
        room_types: [("std".to_owned(), 5)].into(),
        honour_client_ref: true,
        ..InventoryConfig::default()
    });
    let req = hold("std", 1, 2, Some("saga-1"));
    let first = p.handle(0, req.clone(), None);
    assert_eq!(first.status, 201);
    let again = p.handle(1, req, None);
    assert_eq!(again.status, 200);
    assert_eq!(again.hold(), first.hold());
    assert_eq!(p.ground_truth().holds.len(), 1);
    // Same reference, different stay: conflict.
    let r = p.handle(2, hold("std", 1, 3, Some("saga-1")), None);
    assert_eq!(
        (r.status, r.error_code()),
        (409, Some(PmsErrorCode::ClientRefConflict))
    );
    // After expiry the reference still names that hold (it is unique).
    let r = p.handle(TTL, hold("std", 1, 2, Some("saga-1")), None);
    assert_eq!(
        (r.status, r.hold().unwrap().status),
        (200, HoldStatus::Expired)
    );
    // Holds without a reference are never merged.
    p.handle(TTL, hold("std", 1, 2, None), None);
    p.handle(TTL, hold("std", 1, 2, None), None);
    assert_eq!(p.ground_truth().holds.len(), 3);
    p.check_invariants();
}

#[test]
fn list_by_client_ref_includes_bookings() {
    let mut p = pms(5);
    let a = hold_id(&p.handle(0, hold("std", 1, 1, Some("s1")), None));
    p.handle(0, hold("std", 1, 1, Some("s2")), None);
    p.handle(1, confirm(&a), None);
    let r = p.handle(2, list("s1"), None);
    let InventoryBody::List { holds, bookings } = r.body else {
        panic!()
    };
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].status, HoldStatus::Confirmed);
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0].hold_id, a);
    let r = p.handle(2, InventoryRequest::GetHold { hold_id: a }, None);
    assert_eq!(r.hold().unwrap().status, HoldStatus::Confirmed);
}

#[test]
fn validation_errors() {
    let mut p = pms(5);
    let cases = [
        (hold("std", 1, 0, None), PmsErrorCode::InvalidRequest),
        (hold("std", 1, 31, None), PmsErrorCode::InvalidRequest),
        (hold("std", u32::MAX, 1, None), PmsErrorCode::InvalidRequest),
        (hold("std", 1, 1, Some("")), PmsErrorCode::InvalidRequest),
        (
            hold("std", 1, 1, Some(&"r".repeat(256))),
            PmsErrorCode::InvalidRequest,
        ),
        (hold("penthouse", 1, 1, None), PmsErrorCode::UnknownRoomType),
        (hold("", 1, 1, None), PmsErrorCode::UnknownRoomType),
        (list(""), PmsErrorCode::InvalidRequest),
    ];
    for (req, code) in cases {
        let r = p.handle(0, req.clone(), None);
        assert_eq!((r.status, r.error_code()), (400, Some(code)), "{req:?}");
    }
    assert!(p.ground_truth().holds.is_empty());
    assert_eq!(
        p.handle(0, hold("std", u32::MAX - 1, 1, None), None).status,
        201
    );
}

#[test]
fn injected_faults() {
    let mut p = pms(5);
    let r = p.handle(0, hold("std", 1, 1, None), Some(Injected::Throttle));
    assert_eq!(
        (r.status, r.error_code()),
        (429, Some(PmsErrorCode::RateLimited))
    );
    let r = p.handle(0, hold("std", 1, 1, None), Some(Injected::FailBeforeApply));
    assert_eq!(
        (r.status, r.error_code()),
        (503, Some(PmsErrorCode::ServiceUnavailable))
    );
    assert!(p.ground_truth().holds.is_empty());
    let r = p.handle(
        0,
        hold("std", 1, 1, Some("s1")),
        Some(Injected::FailAfterApply),
    );
    assert_eq!(
        (r.status, r.error_code()),
        (500, Some(PmsErrorCode::InternalError))
    );
    // Applied: the hold exists and reconciliation finds it.
    assert_eq!(p.ground_truth().holds.len(), 1);
    let InventoryBody::List { holds, .. } = p.handle(1, list("s1"), None).body else {
        panic!()
    };
    assert_eq!(holds.len(), 1);
}

#[test]
fn last_room_contention_is_decided_at_commit() {
    let mut p = pms(1);
    let a = p.begin(0, hold("std", 1, 1, None), None).ticket().unwrap();
    let b = p.begin(1, hold("std", 1, 1, None), None).ticket().unwrap();
    assert_eq!(p.complete(50, b).status, 201);
    assert_eq!(
        p.complete(51, a).error_code(),
        Some(PmsErrorCode::NoAvailability)
    );
    let c = p.begin(60, hold("std", 1, 1, None), None).ticket().unwrap();
    assert!(p.abort(c));
    assert_eq!(p.ground_truth().holds.len(), 1);
}

#[test]
fn tick_expires_holds_without_requests() {
    let mut p = pms(1);
    p.handle(0, hold("std", 1, 1, None), None);
    p.tick(TTL);
    assert_eq!(p.ground_truth().active_holds().count(), 0);
    assert!(p.dump().contains("Expired"));
}

#[test]
fn config_defaults_from_partial_input() {
    let c: InventoryConfig = serde_json::from_str(r#"{"honour_client_ref": true}"#).unwrap();
    assert!(c.honour_client_ref);
    assert_eq!(c.overbooking_limit, 0);
    assert_eq!(c.default_hold_ttl_ms, TTL);
    assert!(serde_json::from_str::<InventoryConfig>(r#"{"honor_client_ref": true}"#).is_err());
}

// ----- property tests -----

#[derive(Clone, Debug)]
enum Cmd {
    Advance(u64),
    Hold {
        room: u8,
        first: u32,
        nights: u32,
        ttl: Option<u64>,
        client_ref: Option<u8>,
    },
    Confirm {
        hold: u8,
    },
    Release {
        hold: u8,
    },
    SetRoomType {
        room: u8,
        capacity: u32,
        ooo: bool,
    },
    /// Cancel the nth booking (`bk-{n+1}`, in confirmation order).
    Cancel {
        booking: u8,
    },
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        2 => prop_oneof![Just(1_000u64), Just(5 * MINUTE_MS), Just(TTL)].prop_map(Cmd::Advance),
        5 => (0u8..3, 0u32..5, 0u32..4, proptest::option::of(prop_oneof![Just(1u64), Just(MINUTE_MS), Just(2 * TTL)]),
              proptest::option::of(0u8..3))
            .prop_map(|(room, first, nights, ttl, client_ref)| Cmd::Hold { room, first, nights, ttl, client_ref }),
        3 => (0u8..10).prop_map(|hold| Cmd::Confirm { hold }),
        2 => (0u8..10).prop_map(|hold| Cmd::Release { hold }),
        1 => (0u8..2, 0u32..4, proptest::bool::weighted(0.2))
            .prop_map(|(room, capacity, ooo)| Cmd::SetRoomType { room, capacity, ooo }),
        1 => (0u8..6).prop_map(|booking| Cmd::Cancel { booking }),
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

/// Room 2 is unknown to the PMS.
const ROOMS: [&str; 3] = ["std", "suite", "attic"];

/// The reference: a list of holds with plain per-night counting.
struct Reference {
    honour: bool,
    limit: u32,
    capacity: [u32; 2],
    ooo: [bool; 2],
    holds: Vec<RefHold>,
    /// The hold of each booking, in confirmation order.
    bookings: Vec<usize>,
}

#[derive(Clone, Debug)]
struct RefHold {
    room: u8,
    nights: std::ops::Range<u32>,
    client_ref: Option<u8>,
    status: HoldStatus,
    expires: u64,
    /// Its booking was cancelled: it no longer counts anywhere.
    cancelled: bool,
}

impl Reference {
    fn expire(&mut self, now: u64) {
        for h in &mut self.holds {
            if h.status == HoldStatus::Active && now >= h.expires {
                h.status = HoldStatus::Expired;
            }
        }
    }

    fn count(&self, room: u8, night: u32, status: HoldStatus) -> u32 {
        self.holds
            .iter()
            .filter(|h| {
                h.room == room && h.nights.contains(&night) && h.status == status && !h.cancelled
            })
            .count() as u32
    }

    fn sellable(&self, room: u8) -> u32 {
        self.capacity[room as usize] + self.limit
    }

    /// Expected status; applies the request.
    fn apply(&mut self, now: u64, cmd: &Cmd) -> u16 {
        match cmd {
            Cmd::Advance(_) => unreachable!(),
            Cmd::Hold {
                room,
                first,
                nights,
                ttl,
                client_ref,
            } => {
                if *nights == 0 {
                    return 400;
                }
                if *room == 2 {
                    return 400;
                }
                if let (true, Some(r)) = (self.honour, client_ref) {
                    if let Some(h) = self.holds.iter().find(|h| h.client_ref == Some(*r)) {
                        let same = h.room == *room && h.nights == (*first..first + nights);
                        return if same { 200 } else { 409 };
                    }
                }
                let span = *first..first + nights;
                let full = span.clone().any(|n| {
                    self.count(*room, n, HoldStatus::Active)
                        + self.count(*room, n, HoldStatus::Confirmed)
                        >= self.sellable(*room)
                });
                if full {
                    return 409;
                }
                self.holds.push(RefHold {
                    room: *room,
                    nights: span,
                    client_ref: *client_ref,
                    status: HoldStatus::Active,
                    expires: now + ttl.unwrap_or(TTL),
                    cancelled: false,
                });
                201
            }
            Cmd::Confirm { hold } => {
                let Some(h) = self.holds.get(*hold as usize).cloned() else {
                    return 404;
                };
                match h.status {
                    HoldStatus::Confirmed => 200,
                    HoldStatus::Released | HoldStatus::Expired => 409,
                    HoldStatus::Active => {
                        if self.ooo[h.room as usize]
                            || h.nights.clone().any(|n| {
                                self.count(h.room, n, HoldStatus::Confirmed)
                                    >= self.sellable(h.room)
                            })
                        {
                            409
                        } else {
                            self.holds[*hold as usize].status = HoldStatus::Confirmed;
                            self.bookings.push(*hold as usize);
                            201
                        }
                    }
                }
            }
            Cmd::Release { hold } => match self.holds.get_mut(*hold as usize) {
                None => 200,
                Some(h) => match h.status {
                    HoldStatus::Confirmed => 409,
                    HoldStatus::Active => {
                        h.status = HoldStatus::Released;
                        200
                    }
                    _ => 200,
                },
            },
            Cmd::SetRoomType {
                room,
                capacity,
                ooo,
            } => {
                let over = (0..10)
                    .any(|n| self.count(*room, n, HoldStatus::Confirmed) > capacity + self.limit);
                if over {
                    return 409;
                }
                self.capacity[*room as usize] = *capacity;
                self.ooo[*room as usize] = *ooo;
                200
            }
            // Idempotent; frees the booking's nights.
            Cmd::Cancel { booking } => match self.bookings.get(*booking as usize) {
                None => 404,
                Some(&h) => {
                    self.holds[h].cancelled = true;
                    200
                }
            },
        }
    }
}

fn to_request(cmd: &Cmd) -> InventoryRequest {
    match cmd {
        Cmd::Advance(_) => unreachable!(),
        Cmd::Hold {
            room,
            first,
            nights,
            ttl,
            client_ref,
        } => InventoryRequest::Hold {
            room_type: ROOMS[*room as usize].into(),
            first_night: *first,
            nights: *nights,
            ttl_ms: *ttl,
            client_ref: client_ref.map(|r| format!("saga-{r}")),
        },
        Cmd::Confirm { hold } => confirm(&format!("hold-{}", hold + 1)),
        Cmd::Cancel { booking } => InventoryRequest::CancelBooking {
            booking_id: format!("bk-{}", booking + 1),
        },
        Cmd::Release { hold } => release(&format!("hold-{}", hold + 1)),
        Cmd::SetRoomType {
            room,
            capacity,
            ooo,
        } => InventoryRequest::SetRoomType {
            room_type: ROOMS[*room as usize].into(),
            capacity: *capacity,
            out_of_order: *ooo,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// Holds, expiry, confirm and capacity agree with a per-night counting
    /// reference; confirmed never exceeds capacity + overbooking limit.
    #[test]
    fn agrees_with_reference(
        honour in any::<bool>(),
        limit in 0u32..2,
        capacity in (1u32..3, 1u32..3),
        ooo in any::<bool>(),
        cmds in prop::collection::vec((cmd(), injected()), 1..40),
    ) {
        let mut p = Inventory::new(InventoryConfig {
            room_types: [("std".to_owned(), capacity.0), ("suite".to_owned(), capacity.1)].into(),
            overbooking_limit: limit,
            out_of_order: if ooo { ["suite".to_owned()].into() } else { BTreeSet::new() },
            honour_client_ref: honour,
            ..InventoryConfig::default()
        });
        let mut r = Reference { honour, limit, capacity: [capacity.0, capacity.1], ooo: [false, ooo], holds: vec![], bookings: vec![] };
        let mut now = 0u64;
        for (cmd, inj) in &cmds {
            if let Cmd::Advance(ms) = cmd {
                now += ms;
                p.tick(now);
                r.expire(now);
            } else {
                let resp = p.handle(now, to_request(cmd), *inj);
                r.expire(now);
                let is_invalid = matches!(cmd, Cmd::Hold { nights: 0, .. });
                let expected = match inj {
                    Some(Injected::Throttle) => 429,
                    _ if is_invalid => 400,
                    Some(Injected::FailBeforeApply | Injected::EdgeUnavailable) => 503,
                    Some(Injected::FailAfterApply) => {
                        r.apply(now, cmd);
                        500
                    }
                    None => r.apply(now, cmd),
                };
                prop_assert_eq!(resp.status, expected, "{:?} {:?}", cmd, resp);
            }
            p.check_invariants();
            let t = p.ground_truth();
            prop_assert_eq!(t.holds.len(), r.holds.len());
            for (n, h) in r.holds.iter().enumerate() {
                prop_assert_eq!(t.holds[&(n as u64 + 1)].status, h.status, "hold-{}", n + 1);
            }
            for room in 0..2u8 {
                for night in 0..10 {
                    let o = t.occupancy(ROOMS[room as usize], night);
                    prop_assert_eq!(o.confirmed, r.count(room, night, HoldStatus::Confirmed));
                    prop_assert_eq!(o.active_holds, r.count(room, night, HoldStatus::Active));
                    prop_assert!(o.confirmed <= r.sellable(room));
                }
            }
        }
    }

    /// No request a client can send makes the model panic.
    #[test]
    fn never_panics(reqs in prop::collection::vec((any_request(), injected(), 0u64..2 * TTL), 1..30)) {
        let mut p = pms(2);
        let mut now = 0;
        for (req, inj, dt) in reqs {
            now += dt;
            let r = p.handle(now, req, inj);
            prop_assert!(matches!(r.status, 200 | 201 | 400 | 404 | 409 | 429 | 500 | 503));
            p.check_invariants();
        }
    }
}

fn any_string() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just("std".to_owned()),
        Just("hold-1".to_owned()),
        Just("hold-2".to_owned()),
        ".{0,8}",
        "r{250,260}",
    ]
    .boxed()
}

fn any_request() -> impl Strategy<Value = InventoryRequest> {
    let night = prop_oneof![any::<u32>(), 0u32..5, Just(u32::MAX)];
    let nights = prop_oneof![any::<u32>(), 0u32..4];
    prop_oneof![
        (
            any_string(),
            night,
            nights,
            proptest::option::of(any::<u64>()),
            proptest::option::of(any_string())
        )
            .prop_map(|(room_type, first_night, nights, ttl_ms, client_ref)| {
                InventoryRequest::Hold {
                    room_type,
                    first_night,
                    nights,
                    ttl_ms,
                    client_ref,
                }
            }),
        any_string().prop_map(|hold_id| InventoryRequest::Confirm { hold_id }),
        any_string().prop_map(|hold_id| InventoryRequest::Release { hold_id }),
        any_string().prop_map(|hold_id| InventoryRequest::GetHold { hold_id }),
        prop_oneof![any_string(), Just("bk-1".to_owned())]
            .prop_map(|booking_id| InventoryRequest::CancelBooking { booking_id }),
        any_string().prop_map(|client_ref| InventoryRequest::ListByClientRef { client_ref }),
        (any_string(), any::<u32>(), any::<bool>()).prop_map(
            |(room_type, capacity, out_of_order)| InventoryRequest::SetRoomType {
                room_type,
                capacity,
                out_of_order
            }
        ),
    ]
}

// ----- per-room-type overbooking, cancellation (issue 16) -----

#[test]
fn the_overbooking_limit_is_per_room_type() {
    let mut p = Inventory::new(InventoryConfig {
        room_types: [("std".to_owned(), 1), ("suite".to_owned(), 1)].into(),
        overbooking: [("std".to_owned(), 1)].into(),
        ..InventoryConfig::default()
    });
    // Two standard rooms sell (one overbooked), a second suite does not.
    for n in 0..2 {
        let r = p.handle(n, hold("std", 10, 1, None), None);
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(p.handle(n, confirm(&hold_id(&r)), None).status, 201);
    }
    assert_eq!(p.handle(5, hold("std", 10, 1, None), None).status, 409);
    let r = p.handle(6, hold("suite", 10, 1, None), None);
    assert_eq!(p.handle(7, confirm(&hold_id(&r)), None).status, 201);
    let r = p.handle(8, hold("suite", 10, 1, None), None);
    assert_eq!(r.error_code(), Some(PmsErrorCode::NoAvailability));
    assert_eq!(p.ground_truth().occupancy("std", 10).sellable, 2);
    assert_eq!(p.ground_truth().occupancy("suite", 10).sellable, 1);
    // An operator's capacity change keeps the type's own limit.
    let r = p.handle(
        9,
        InventoryRequest::SetRoomType {
            room_type: "std".into(),
            capacity: 2,
            out_of_order: false,
        },
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(p.ground_truth().occupancy("std", 10).sellable, 3);
    p.check_invariants();
}

#[test]
fn a_cancelled_booking_frees_its_nights_and_cancelling_again_is_a_no_op() {
    let mut p = pms(1);
    let r = p.handle(0, hold("std", 10, 2, Some("saga-1/hold")), None);
    let booking = p.handle(1, confirm(&hold_id(&r)), None);
    let id = booking.booking().unwrap().id.clone();
    assert_eq!(p.handle(2, hold("std", 11, 1, None), None).status, 409);
    let cancel = |id: &str| InventoryRequest::CancelBooking {
        booking_id: id.into(),
    };
    let r = p.handle(3, cancel(&id), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.booking().unwrap().cancelled_ms, Some(3));
    assert_eq!(p.ground_truth().occupancy("std", 11).confirmed, 0);
    // Idempotent: the first cancellation's instant stays.
    let r = p.handle(4, cancel(&id), None);
    assert_eq!(r.booking().unwrap().cancelled_ms, Some(3));
    // The nights sell again; an unknown booking is 404.
    let r = p.handle(5, hold("std", 11, 1, None), None);
    assert_eq!(p.handle(6, confirm(&hold_id(&r)), None).status, 201);
    let r = p.handle(7, cancel("bk-99"), None);
    assert_eq!(r.error_code(), Some(PmsErrorCode::BookingNotFound));
    p.check_invariants();
}

#[test]
fn a_booking_cancelled_does_not_count_for_its_business_key() {
    // The checkers read bookings through `Booking::stands`.
    let mut p = pms(2);
    let r = p.handle(0, hold("std", 10, 1, Some("saga-res-1/hold_room")), None);
    let b = p.handle(1, confirm(&hold_id(&r)), None);
    let id = b.booking().unwrap().id.clone();
    p.handle(
        2,
        InventoryRequest::CancelBooking {
            booking_id: id.clone(),
        },
        None,
    );
    let standing: Vec<&Booking> = p
        .ground_truth()
        .bookings
        .values()
        .filter(|b| b.stands())
        .collect();
    assert!(standing.is_empty());
    assert_eq!(p.ground_truth().booking(&id).unwrap().cancelled_ms, Some(2));
}

#[test]
fn a_guest_cancels_the_nth_standing_booking_at_the_front_desk() {
    let mut p = pms(3);
    let mut ids = Vec::new();
    for n in 0..3 {
        let r = p.handle(n, hold("std", 10, 1, Some(&format!("saga-{n}/hold"))), None);
        ids.push(
            p.handle(n, confirm(&hold_id(&r)), None)
                .booking()
                .unwrap()
                .id
                .clone(),
        );
    }
    // Three stand (bk-1 .. bk-3), in booking order: nth 4 counts round
    // (4 mod 3 = 1) to bk-2.
    let b = p.cancel_at_front_desk(5, 4).expect("a booking stands");
    assert_eq!(b.id, ids[1]);
    assert_eq!(b.cancelled_ms, Some(5));
    assert_eq!(p.ground_truth().guest_cancellations, vec![ids[1].clone()]);
    // Now bk-1 and bk-3 stand: nth 1 is bk-3.
    assert_eq!(p.cancel_at_front_desk(6, 1).unwrap().id, ids[2]);
    assert_eq!(p.ground_truth().occupancy("std", 10).confirmed, 1);
    // A confirm sent again for the cancelled booking's hold answers the
    // booking as it is: cancelled (the PMS does not book it again).
    let hold_of = p.ground_truth().booking(&ids[2]).unwrap().hold_id.clone();
    let again = p.handle(7, confirm(&hold_of), None);
    assert_eq!(again.status, 200);
    assert_eq!(again.booking().unwrap().cancelled_ms, Some(6));
    p.check_invariants();
    assert_eq!(p.cancel_at_front_desk(8, 0).unwrap().id, ids[0]);
    assert_eq!(p.cancel_at_front_desk(9, 0), None, "nothing stands");
    assert_eq!(p.ground_truth().guest_cancellations.len(), 3);
    p.check_invariants();
}
