//! Simulated inventory / hotel PMS: room types × nights with capacity, holds
//! (leases with a TTL on the service's own clock), confirmed bookings.
//!
//! What it reproduces (see `SERVICES.md`), because sagas break on it:
//! - `hold` reserves a room type for a run of nights, or fails with
//!   `NO_AVAILABILITY` when active holds + bookings would exceed capacity +
//!   overbooking limit on any night; holds expire after their TTL, measured
//!   on the *service's* clock (expiry is evaluated lazily from `now_ms`: no
//!   timer needed, and an expired hold frees its capacity);
//! - many real PMS APIs have no idempotency key: a retried hold makes a
//!   second hold. A `client_ref` is stored with every hold and is queryable;
//!   only when the scenario says the PMS *honours* it does a second hold with
//!   the same reference return the first one;
//! - `confirm` re-checks the lease (`LEASE_EXPIRED`), the room status
//!   (`ROOM_OUT_OF_ORDER`, definitive) and availability, and is idempotent
//!   for an already confirmed hold;
//! - `release` is idempotent: an unknown, released or expired hold is a
//!   success (null compensation); a confirmed hold cannot be released;
//! - an operator can change a room type's capacity or status mid-run
//!   ([`InventoryRequest::SetRoomType`]), which is when confirm's re-check
//!   matters;
//! - the overbooking limit is **per room type** (hotels overbook the
//!   types that see no-shows, never suites): `[inventory] overbooking = {
//!   standard = 1 }`, every other type `overbooking_limit` (default 0);
//! - a confirmed booking can be **cancelled**
//!   ([`InventoryRequest::CancelBooking`]): idempotent, it frees the
//!   booking's nights; a cancelled booking no longer counts anywhere. A
//!   guest can cancel at the front desk too
//!   ([`Inventory::cancel_at_front_desk`], an environment event): the
//!   ground truth lists those apart (`guest_cancellations`), as a PMS
//!   keeps a cancellation's source;
//!
//! Deliberately not here: individual rooms and room assignment (a room type
//! is a pool), rates and prices, booking modification, cancellation
//! penalties, guests, channel managers, latency (the transport's job).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Begin, InFlight, Injected, ServiceModel, Ticket};

/// Longest accepted `client_ref`.
pub const MAX_CLIENT_REF_CHARS: usize = 255;
/// Longest accepted room type name.
pub const MAX_ROOM_TYPE_CHARS: usize = 64;

const MINUTE_MS: u64 = 60_000;

/// Scenario knobs for the simulated PMS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryConfig {
    /// Room types and how many rooms each has per night.
    pub room_types: BTreeMap<String, u32>,
    /// Extra rooms per night that may be sold of a room type not listed in
    /// `overbooking` (default 0: most PMSs sell no room they do not have
    /// unless a revenue manager sets a limit).
    pub overbooking_limit: u32,
    /// Per room type: extra rooms per night that may be sold of it.
    pub overbooking: BTreeMap<String, u32>,
    /// Room types that are out of order from the start (confirm fails).
    pub out_of_order: BTreeSet<String>,
    /// Whether a second hold with the same `client_ref` returns the first
    /// (true) or makes another hold (false, like many real PMS APIs).
    pub honour_client_ref: bool,
    /// TTL of a hold that does not ask for one.
    pub default_hold_ttl_ms: u64,
    /// Longest TTL a hold may ask for.
    pub max_hold_ttl_ms: u64,
    /// Most nights in one hold.
    pub max_nights: u32,
}

impl InventoryConfig {
    /// The overbooking limit of `room_type`.
    pub fn overbooking_of(&self, room_type: &str) -> u32 {
        self.overbooking
            .get(room_type)
            .copied()
            .unwrap_or(self.overbooking_limit)
    }
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            room_types: [("standard".to_owned(), 10)].into(),
            overbooking_limit: 0,
            overbooking: BTreeMap::new(),
            out_of_order: BTreeSet::new(),
            honour_client_ref: false,
            default_hold_ttl_ms: 15 * MINUTE_MS,
            max_hold_ttl_ms: 24 * 60 * MINUTE_MS,
            max_nights: 30,
        }
    }
}

/// A request to the simulated PMS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum InventoryRequest {
    /// Hold one room of `room_type` for nights `first_night ..
    /// first_night + nights`.
    Hold {
        /// Room type name.
        room_type: String,
        /// First night (a day number).
        first_night: u32,
        /// Number of nights (1..=max_nights).
        nights: u32,
        /// Lease length; `None` = the PMS default.
        ttl_ms: Option<u64>,
        /// The client's own reference (e.g. the saga id).
        client_ref: Option<String>,
    },
    /// Turn a hold into a booking.
    Confirm {
        /// `hold-N`.
        hold_id: String,
    },
    /// Give a hold back (idempotent).
    Release {
        /// `hold-N`.
        hold_id: String,
    },
    /// Read one hold.
    GetHold {
        /// `hold-N`.
        hold_id: String,
    },
    /// Every hold and booking with this client reference (reconciliation).
    ListByClientRef {
        /// The reference.
        client_ref: String,
    },
    /// Cancel a confirmed booking (idempotent: a cancelled booking answers
    /// as it is). Its nights are free again.
    CancelBooking {
        /// `bk-N`.
        booking_id: String,
    },
    /// Operator action: add a room type or change its capacity / status.
    /// Refused if it would leave confirmed bookings above capacity +
    /// overbooking limit on some night.
    SetRoomType {
        /// Room type name.
        room_type: String,
        /// Rooms per night.
        capacity: u32,
        /// Out of order (confirm fails definitively).
        out_of_order: bool,
    },
}

/// Status of a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Holding capacity until `expires_ms`.
    Active,
    /// Given back by `Release`.
    Released,
    /// The lease ran out.
    Expired,
    /// Turned into a booking.
    Confirmed,
}

/// A hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// `hold-1`, `hold-2`, …
    pub id: String,
    /// Room type.
    pub room_type: String,
    /// First night.
    pub first_night: u32,
    /// Number of nights.
    pub nights: u32,
    /// The client's reference, if given.
    pub client_ref: Option<String>,
    /// Status.
    pub status: HoldStatus,
    /// Creation instant (service clock).
    pub created_ms: u64,
    /// Lease end: from this instant on the hold is expired.
    pub expires_ms: u64,
    /// When it stopped being active (released, expired or confirmed).
    pub ended_ms: Option<u64>,
    /// The booking it became.
    pub booking_id: Option<String>,
}

impl Hold {
    fn covers(&self, room_type: &str, night: u32) -> bool {
        self.room_type == room_type
            && night >= self.first_night
            && night - self.first_night < self.nights
    }
}

/// A confirmed booking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// `bk-1`, `bk-2`, …
    pub id: String,
    /// The hold it came from.
    pub hold_id: String,
    /// Room type.
    pub room_type: String,
    /// First night.
    pub first_night: u32,
    /// Number of nights.
    pub nights: u32,
    /// The client's reference, if given.
    pub client_ref: Option<String>,
    /// Confirmation instant.
    pub confirmed_ms: u64,
    /// Cancellation instant; `None` while the booking stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_ms: Option<u64>,
}

impl Booking {
    /// Whether it still stands (not cancelled).
    pub fn stands(&self) -> bool {
        self.cancelled_ms.is_none()
    }

    fn covers(&self, room_type: &str, night: u32) -> bool {
        self.stands()
            && self.room_type == room_type
            && night >= self.first_night
            && night - self.first_night < self.nights
    }
}

/// A room type's current capacity and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomType {
    /// Rooms per night.
    pub capacity: u32,
    /// Out of order: confirm fails.
    pub out_of_order: bool,
    /// Extra rooms per night that may be sold of this type.
    #[serde(default)]
    pub overbooking_limit: u32,
}

/// Occupancy of one room type on one night.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occupancy {
    /// Active (unexpired) holds covering the night.
    pub active_holds: u32,
    /// Confirmed bookings covering the night.
    pub confirmed: u32,
    /// Capacity + overbooking limit.
    pub sellable: u32,
}

impl Occupancy {
    /// Rooms that can still be held (negative if over-held after a
    /// capacity cut).
    pub fn available(&self) -> i64 {
        i64::from(self.sellable) - i64::from(self.active_holds) - i64::from(self.confirmed)
    }
}

/// Everything that happened, for the checkers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryGroundTruth {
    /// Room types as they are now.
    pub room_types: BTreeMap<String, RoomType>,
    /// Every hold, by number (`hold-N` ↦ N), in creation order.
    pub holds: BTreeMap<u64, Hold>,
    /// Every booking, by number (`bk-N` ↦ N), in confirmation order.
    pub bookings: BTreeMap<u64, Booking>,
    /// Hold requests answered with the existing hold of their honoured
    /// `client_ref` (a retry or duplicate that made no second hold).
    #[serde(default)]
    pub client_ref_dedupes: u64,
    /// Bookings a guest cancelled at the front desk
    /// ([`Inventory::cancel_at_front_desk`]), in cancellation order: the
    /// environment's cancellations, not any client's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guest_cancellations: Vec<String>,
}

fn parse_id(id: &str, prefix: &str) -> Option<u64> {
    let n: u64 = id.strip_prefix(prefix)?.parse().ok()?;
    (format!("{prefix}{n}") == id).then_some(n)
}

impl InventoryGroundTruth {
    /// The hold `hold-N`.
    pub fn hold(&self, id: &str) -> Option<&Hold> {
        self.holds.get(&parse_id(id, "hold-")?)
    }

    /// The booking `bk-N`.
    pub fn booking(&self, id: &str) -> Option<&Booking> {
        self.bookings.get(&parse_id(id, "bk-")?)
    }

    /// Holds that are still active (as of the last tick).
    pub fn active_holds(&self) -> impl Iterator<Item = &Hold> {
        self.holds
            .values()
            .filter(|h| h.status == HoldStatus::Active)
    }

    /// Holds and bookings with this client reference.
    pub fn by_client_ref<'a>(&'a self, client_ref: &'a str) -> (Vec<&'a Hold>, Vec<&'a Booking>) {
        let is = move |r: &Option<String>| r.as_deref() == Some(client_ref);
        (
            self.holds.values().filter(|h| is(&h.client_ref)).collect(),
            self.bookings
                .values()
                .filter(|b| is(&b.client_ref))
                .collect(),
        )
    }

    /// Occupancy of `room_type` on `night` (as of the last tick).
    pub fn occupancy(&self, room_type: &str, night: u32) -> Occupancy {
        let active_holds = self
            .active_holds()
            .filter(|h| h.covers(room_type, night))
            .count();
        let confirmed = self
            .bookings
            .values()
            .filter(|b| b.covers(room_type, night))
            .count();
        let sellable = self
            .room_types
            .get(room_type)
            .map_or(0, |t| t.capacity.saturating_add(t.overbooking_limit));
        Occupancy {
            active_holds: u32::try_from(active_holds).expect("fewer than 2^32 holds"),
            confirmed: u32::try_from(confirmed).expect("fewer than 2^32 bookings"),
            sellable,
        }
    }

    /// Confirmed bookings of `room_type` on `night`.
    pub fn confirmed_count(&self, room_type: &str, night: u32) -> u32 {
        self.occupancy(room_type, night).confirmed
    }

    /// Every (room type, night) that some hold or booking ever covered.
    pub fn nights_in_use(&self) -> BTreeSet<(String, u32)> {
        let mut out = BTreeSet::new();
        let spans = self
            .holds
            .values()
            .map(|h| (&h.room_type, h.first_night, h.nights));
        for (room_type, first, nights) in spans {
            for night in first..first + nights {
                out.insert((room_type.clone(), night));
            }
        }
        out
    }
}

/// An error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmsError {
    /// Machine-readable code.
    pub code: PmsErrorCode,
    /// Human-readable message.
    pub message: String,
}

/// Error codes of the simulated PMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PmsErrorCode {
    /// 400: malformed request (nights, TTL, client ref, names).
    InvalidRequest,
    /// 400: no such room type.
    UnknownRoomType,
    /// 409: not enough rooms on some night.
    NoAvailability,
    /// 409: confirm after the hold's TTL.
    LeaseExpired,
    /// 409: confirm of a hold on an out-of-order room type (definitive).
    RoomOutOfOrder,
    /// 409: confirm of a released hold.
    HoldReleased,
    /// 409: release of a confirmed hold.
    HoldConfirmed,
    /// 404: no such hold (confirm, get).
    HoldNotFound,
    /// 404: no such booking (cancel).
    BookingNotFound,
    /// 409: the honoured client ref is taken by a hold for other nights /
    /// another room type.
    ClientRefConflict,
    /// 409: a capacity cut would leave confirmed bookings over capacity.
    CapacityInUse,
    /// 429: throttled; nothing applied.
    RateLimited,
    /// 503: unavailable; nothing applied.
    ServiceUnavailable,
    /// 500: internal error; may have been applied.
    InternalError,
}

/// The response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InventoryBody {
    /// A hold (hold, get).
    Hold(Hold),
    /// A booking (confirm).
    Booking(Booking),
    /// Release result: what the hold was before (`None` = unknown hold).
    Released {
        /// The id as given.
        hold_id: String,
        /// Status before the release.
        previous: Option<HoldStatus>,
    },
    /// Reconciliation listing, in id order.
    List {
        /// Holds with the reference.
        holds: Vec<Hold>,
        /// Bookings with the reference.
        bookings: Vec<Booking>,
    },
    /// A room type after an operator change.
    RoomType {
        /// Name.
        name: String,
        /// Capacity and status.
        room_type: RoomType,
    },
    /// An error.
    Error(PmsError),
}

/// A response: HTTP status and body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: InventoryBody,
}

impl InventoryResponse {
    fn ok(status: u16, body: InventoryBody) -> Self {
        InventoryResponse { status, body }
    }

    fn error(status: u16, code: PmsErrorCode, message: String) -> Self {
        InventoryResponse {
            status,
            body: InventoryBody::Error(PmsError { code, message }),
        }
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error code, if this is an error.
    pub fn error_code(&self) -> Option<PmsErrorCode> {
        match &self.body {
            InventoryBody::Error(e) => Some(e.code),
            _ => None,
        }
    }

    /// The hold in the body, if any.
    pub fn hold(&self) -> Option<&Hold> {
        match &self.body {
            InventoryBody::Hold(h) => Some(h),
            _ => None,
        }
    }

    /// The booking in the body, if any.
    pub fn booking(&self) -> Option<&Booking> {
        match &self.body {
            InventoryBody::Booking(b) => Some(b),
            _ => None,
        }
    }
}

impl InventoryRequest {
    /// The request's kind, as the coverage catalogue names it (`hold`,
    /// `confirm`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            InventoryRequest::Hold { .. } => "hold",
            InventoryRequest::Confirm { .. } => "confirm",
            InventoryRequest::Release { .. } => "release",
            InventoryRequest::GetHold { .. } => "get_hold",
            InventoryRequest::ListByClientRef { .. } => "list_by_client_ref",
            InventoryRequest::CancelBooking { .. } => "cancel_booking",
            InventoryRequest::SetRoomType { .. } => "set_room_type",
        }
    }
}

/// Every response class the PMS can answer a request of kind `kind` (see
/// [`InventoryRequest::kind`]) with ([`InventoryResponse::class`] of each
/// possible response); empty for an unknown kind. Every kind can be
/// throttled (429), fail before (503) or after (500) applying.
pub fn response_classes(kind: &str) -> Vec<&'static str> {
    let own: &[&str] = match kind {
        "hold" => &[
            "201 hold active",
            "200 hold active",
            "200 hold released",
            "200 hold expired",
            "200 hold confirmed",
            "400 INVALID_REQUEST",
            "400 UNKNOWN_ROOM_TYPE",
            "409 CLIENT_REF_CONFLICT",
            "409 NO_AVAILABILITY",
        ],
        "confirm" => &[
            "201 booking",
            "200 booking",
            "404 HOLD_NOT_FOUND",
            "409 HOLD_RELEASED",
            "409 LEASE_EXPIRED",
            "409 NO_AVAILABILITY",
            "409 ROOM_OUT_OF_ORDER",
        ],
        "release" => &[
            "200 released an active hold",
            "200 release of an ended hold",
            "200 release of an unknown hold",
            "409 HOLD_CONFIRMED",
        ],
        "get_hold" => &[
            "200 hold active",
            "200 hold released",
            "200 hold expired",
            "200 hold confirmed",
            "404 HOLD_NOT_FOUND",
        ],
        "list_by_client_ref" => &["200 list", "400 INVALID_REQUEST"],
        "cancel_booking" => &["200 booking", "404 BOOKING_NOT_FOUND"],
        "set_room_type" => &[
            "200 room type",
            "400 INVALID_REQUEST",
            "409 CAPACITY_IN_USE",
        ],
        _ => return Vec::new(),
    };
    let mut v: Vec<&'static str> = own.to_vec();
    v.extend([
        "429 RATE_LIMITED",
        "500 INTERNAL_ERROR",
        "503 SERVICE_UNAVAILABLE",
    ]);
    v.sort_unstable();
    v
}

impl InventoryResponse {
    /// The response's class for the coverage catalogue: the status and
    /// what the body says (a hold's status, what a release found, an
    /// error's code).
    pub fn class(&self) -> &'static str {
        let created = self.status == 201;
        match &self.body {
            InventoryBody::Hold(h) => match (created, h.status) {
                (true, _) => "201 hold active",
                (false, HoldStatus::Active) => "200 hold active",
                (false, HoldStatus::Released) => "200 hold released",
                (false, HoldStatus::Expired) => "200 hold expired",
                (false, HoldStatus::Confirmed) => "200 hold confirmed",
            },
            InventoryBody::Booking(_) if created => "201 booking",
            InventoryBody::Booking(_) => "200 booking",
            InventoryBody::Released { previous, .. } => match previous {
                Some(HoldStatus::Active) => "200 released an active hold",
                Some(_) => "200 release of an ended hold",
                None => "200 release of an unknown hold",
            },
            InventoryBody::List { .. } => "200 list",
            InventoryBody::RoomType { .. } => "200 room type",
            InventoryBody::Error(e) => match e.code {
                PmsErrorCode::InvalidRequest => "400 INVALID_REQUEST",
                PmsErrorCode::UnknownRoomType => "400 UNKNOWN_ROOM_TYPE",
                PmsErrorCode::NoAvailability => "409 NO_AVAILABILITY",
                PmsErrorCode::LeaseExpired => "409 LEASE_EXPIRED",
                PmsErrorCode::RoomOutOfOrder => "409 ROOM_OUT_OF_ORDER",
                PmsErrorCode::HoldReleased => "409 HOLD_RELEASED",
                PmsErrorCode::HoldConfirmed => "409 HOLD_CONFIRMED",
                PmsErrorCode::HoldNotFound => "404 HOLD_NOT_FOUND",
                PmsErrorCode::BookingNotFound => "404 BOOKING_NOT_FOUND",
                PmsErrorCode::ClientRefConflict => "409 CLIENT_REF_CONFLICT",
                PmsErrorCode::CapacityInUse => "409 CAPACITY_IN_USE",
                PmsErrorCode::RateLimited => "429 RATE_LIMITED",
                PmsErrorCode::ServiceUnavailable => "503 SERVICE_UNAVAILABLE",
                PmsErrorCode::InternalError => "500 INTERNAL_ERROR",
            },
        }
    }
}

#[derive(Clone, Debug)]
struct Pending {
    request: InventoryRequest,
    injected: Option<Injected>,
}

/// The simulated PMS.
#[derive(Clone, Debug)]
pub struct Inventory {
    config: InventoryConfig,
    truth: InventoryGroundTruth,
    in_flight: InFlight<Pending>,
    /// (expires_ms, hold number) of active holds.
    expiry: BTreeSet<(u64, u64)>,
    last_hold: u64,
    last_booking: u64,
}

impl Inventory {
    /// A fresh PMS.
    pub fn new(config: InventoryConfig) -> Self {
        let room_types = config
            .room_types
            .iter()
            .map(|(name, &capacity)| {
                let out_of_order = config.out_of_order.contains(name);
                (
                    name.clone(),
                    RoomType {
                        capacity,
                        out_of_order,
                        overbooking_limit: config.overbooking_of(name),
                    },
                )
            })
            .collect();
        let truth = InventoryGroundTruth {
            room_types,
            holds: BTreeMap::new(),
            bookings: BTreeMap::new(),
            client_ref_dedupes: 0,
            guest_cancellations: Vec::new(),
        };
        Inventory {
            config,
            truth,
            in_flight: InFlight::default(),
            expiry: BTreeSet::new(),
            last_hold: 0,
            last_booking: 0,
        }
    }

    /// A guest cancels a confirmed booking at the front desk: the `nth`
    /// booking that still stands at `now_ms`, counted round (`nth` modulo
    /// their number), in booking order. Like any cancellation it frees the
    /// booking's nights; the ground truth lists it in
    /// `guest_cancellations`. Returns the booking as cancelled, or `None`
    /// when no booking stands. For environment events (a front desk is not
    /// an API client, so no fault is injected).
    pub fn cancel_at_front_desk(&mut self, now_ms: u64, nth: u32) -> Option<Booking> {
        self.tick(now_ms);
        let standing: Vec<&Booking> = self
            .truth
            .bookings
            .values()
            .filter(|b| b.stands())
            .collect();
        if standing.is_empty() {
            return None;
        }
        let id = standing[nth as usize % standing.len()].id.clone();
        let req = InventoryRequest::CancelBooking {
            booking_id: id.clone(),
        };
        let r = self.handle(now_ms, req, None);
        assert_eq!(r.status, 200, "a standing booking cancels: {r:?}");
        self.truth.guest_cancellations.push(id);
        let booking = r.booking().cloned();
        debug_assert!(booking.as_ref().is_some_and(|b| !b.stands()));
        booking
    }

    /// The configuration it started with.
    pub fn config(&self) -> &InventoryConfig {
        &self.config
    }

    /// Checks the model's internal invariants; panics on a violation.
    pub fn check_invariants(&self) {
        let t = &self.truth;
        for (n, h) in &t.holds {
            assert_eq!(h.id, format!("hold-{n}"));
            assert_eq!(
                h.status == HoldStatus::Active,
                self.expiry.contains(&(h.expires_ms, *n))
            );
            assert_eq!(h.status == HoldStatus::Active, h.ended_ms.is_none());
            assert_eq!(h.status == HoldStatus::Confirmed, h.booking_id.is_some());
            assert!(h.nights >= 1 && t.room_types.contains_key(&h.room_type));
        }
        for (n, b) in &t.bookings {
            assert_eq!(b.id, format!("bk-{n}"));
            let hold = t.hold(&b.hold_id).expect("booking without hold");
            assert_eq!(hold.booking_id.as_deref(), Some(b.id.as_str()));
        }
        assert_eq!(self.expiry.len(), t.active_holds().count());
        for id in &t.guest_cancellations {
            let b = t
                .booking(id)
                .expect("a guest cancels a booking that exists");
            assert!(!b.stands(), "{id} was cancelled at the front desk");
        }
        if self.config.honour_client_ref {
            let refs: Vec<_> = t
                .holds
                .values()
                .filter_map(|h| h.client_ref.as_ref())
                .collect();
            let unique: BTreeSet<_> = refs.iter().collect();
            assert_eq!(refs.len(), unique.len(), "honoured client refs are unique");
        }
        // The headline invariant: never more confirmed than sellable.
        for (room_type, night) in t.nights_in_use() {
            let o = t.occupancy(&room_type, night);
            assert!(
                o.confirmed <= o.sellable,
                "overbooked {room_type} night {night}: {o:?}"
            );
        }
    }

    fn validate(&self, req: &InventoryRequest) -> Result<(), Box<InventoryResponse>> {
        let invalid = |m: String| -> Result<(), Box<InventoryResponse>> {
            Err(Box::new(InventoryResponse::error(
                400,
                PmsErrorCode::InvalidRequest,
                m,
            )))
        };
        match req {
            InventoryRequest::Hold {
                first_night,
                nights,
                ttl_ms,
                client_ref,
                ..
            } => {
                if *nights == 0 || *nights > self.config.max_nights {
                    return invalid(format!(
                        "nights must be 1..={}, got {nights}",
                        self.config.max_nights
                    ));
                }
                if first_night.checked_add(*nights).is_none() {
                    return invalid(format!("night range {first_night}+{nights} overflows"));
                }
                if let Some(ttl) = ttl_ms {
                    if *ttl == 0 || *ttl > self.config.max_hold_ttl_ms {
                        return invalid(format!(
                            "ttl_ms must be 1..={}, got {ttl}",
                            self.config.max_hold_ttl_ms
                        ));
                    }
                }
                if let Some(r) = client_ref {
                    if r.is_empty() || r.chars().count() > MAX_CLIENT_REF_CHARS {
                        return invalid(format!(
                            "client_ref must be 1..={MAX_CLIENT_REF_CHARS} characters"
                        ));
                    }
                }
            }
            InventoryRequest::ListByClientRef { client_ref } => {
                if client_ref.is_empty() || client_ref.chars().count() > MAX_CLIENT_REF_CHARS {
                    return invalid(format!(
                        "client_ref must be 1..={MAX_CLIENT_REF_CHARS} characters"
                    ));
                }
            }
            InventoryRequest::SetRoomType { room_type, .. } => {
                if room_type.is_empty() || room_type.chars().count() > MAX_ROOM_TYPE_CHARS {
                    return invalid(format!(
                        "room type name must be 1..={MAX_ROOM_TYPE_CHARS} characters"
                    ));
                }
            }
            InventoryRequest::Confirm { .. }
            | InventoryRequest::Release { .. }
            | InventoryRequest::GetHold { .. }
            | InventoryRequest::CancelBooking { .. } => {}
        }
        Ok(())
    }

    fn hold_not_found(id: &str) -> InventoryResponse {
        InventoryResponse::error(404, PmsErrorCode::HoldNotFound, format!("no hold {id:?}"))
    }

    fn nights_of(first_night: u32, nights: u32) -> std::ops::Range<u32> {
        first_night..first_night + nights
    }

    fn execute(&mut self, now_ms: u64, req: &InventoryRequest) -> InventoryResponse {
        match req {
            InventoryRequest::Hold {
                room_type,
                first_night,
                nights,
                ttl_ms,
                client_ref,
            } => {
                if !self.truth.room_types.contains_key(room_type) {
                    return InventoryResponse::error(
                        400,
                        PmsErrorCode::UnknownRoomType,
                        format!("no room type {room_type:?}"),
                    );
                }
                if let (true, Some(r)) = (self.config.honour_client_ref, client_ref) {
                    let (holds, _) = self.truth.by_client_ref(r);
                    if let Some(existing) = holds.first() {
                        let same = existing.room_type == *room_type
                            && existing.first_night == *first_night
                            && existing.nights == *nights;
                        return if same {
                            let existing = (*existing).clone();
                            self.truth.client_ref_dedupes += 1;
                            InventoryResponse::ok(200, InventoryBody::Hold(existing))
                        } else {
                            InventoryResponse::error(
                                409,
                                PmsErrorCode::ClientRefConflict,
                                format!("client_ref {r:?} already used by {}", existing.id),
                            )
                        };
                    }
                }
                for night in Self::nights_of(*first_night, *nights) {
                    let o = self.truth.occupancy(room_type, night);
                    if o.available() < 1 {
                        return InventoryResponse::error(
                            409,
                            PmsErrorCode::NoAvailability,
                            format!("no {room_type} room on night {night}"),
                        );
                    }
                }
                self.last_hold += 1;
                let n = self.last_hold;
                let ttl = ttl_ms.unwrap_or(self.config.default_hold_ttl_ms);
                let hold = Hold {
                    id: format!("hold-{n}"),
                    room_type: room_type.clone(),
                    first_night: *first_night,
                    nights: *nights,
                    client_ref: client_ref.clone(),
                    status: HoldStatus::Active,
                    created_ms: now_ms,
                    expires_ms: now_ms.saturating_add(ttl),
                    ended_ms: None,
                    booking_id: None,
                };
                self.expiry.insert((hold.expires_ms, n));
                self.truth.holds.insert(n, hold.clone());
                InventoryResponse::ok(201, InventoryBody::Hold(hold))
            }
            InventoryRequest::Confirm { hold_id } => {
                let Some(n) =
                    parse_id(hold_id, "hold-").filter(|n| self.truth.holds.contains_key(n))
                else {
                    return Self::hold_not_found(hold_id);
                };
                let hold = &self.truth.holds[&n];
                match hold.status {
                    HoldStatus::Confirmed => {
                        let booking = self
                            .truth
                            .booking(hold.booking_id.as_deref().expect("confirmed"));
                        let booking = booking.expect("booking of a confirmed hold").clone();
                        return InventoryResponse::ok(200, InventoryBody::Booking(booking));
                    }
                    HoldStatus::Released => {
                        return InventoryResponse::error(
                            409,
                            PmsErrorCode::HoldReleased,
                            format!("{hold_id} was released"),
                        )
                    }
                    HoldStatus::Expired => {
                        return InventoryResponse::error(
                            409,
                            PmsErrorCode::LeaseExpired,
                            format!("{hold_id} expired at {}", hold.expires_ms),
                        )
                    }
                    HoldStatus::Active => {}
                }
                assert!(
                    now_ms < hold.expires_ms,
                    "tick expires holds before they are used"
                );
                if self.truth.room_types[&hold.room_type].out_of_order {
                    return InventoryResponse::error(
                        409,
                        PmsErrorCode::RoomOutOfOrder,
                        format!("room type {} is out of order", hold.room_type),
                    );
                }
                for night in Self::nights_of(hold.first_night, hold.nights) {
                    let o = self.truth.occupancy(&hold.room_type, night);
                    if o.confirmed >= o.sellable {
                        return InventoryResponse::error(
                            409,
                            PmsErrorCode::NoAvailability,
                            format!(
                                "no {} room left to confirm on night {night}",
                                hold.room_type
                            ),
                        );
                    }
                }
                self.last_booking += 1;
                let booking = Booking {
                    id: format!("bk-{}", self.last_booking),
                    hold_id: hold.id.clone(),
                    room_type: hold.room_type.clone(),
                    first_night: hold.first_night,
                    nights: hold.nights,
                    client_ref: hold.client_ref.clone(),
                    confirmed_ms: now_ms,
                    cancelled_ms: None,
                };
                let hold = self.truth.holds.get_mut(&n).expect("checked above");
                hold.status = HoldStatus::Confirmed;
                hold.ended_ms = Some(now_ms);
                hold.booking_id = Some(booking.id.clone());
                let removed = self.expiry.remove(&(hold.expires_ms, n));
                assert!(removed);
                self.truth
                    .bookings
                    .insert(self.last_booking, booking.clone());
                InventoryResponse::ok(201, InventoryBody::Booking(booking))
            }
            InventoryRequest::Release { hold_id } => {
                let hold = parse_id(hold_id, "hold-").and_then(|n| self.truth.holds.get_mut(&n));
                let Some(hold) = hold else {
                    // Null compensation: nothing to release is a success.
                    return InventoryResponse::ok(
                        200,
                        InventoryBody::Released {
                            hold_id: hold_id.clone(),
                            previous: None,
                        },
                    );
                };
                let previous = hold.status;
                match previous {
                    HoldStatus::Confirmed => {
                        return InventoryResponse::error(
                            409,
                            PmsErrorCode::HoldConfirmed,
                            format!(
                                "{hold_id} is confirmed as {}",
                                hold.booking_id.as_deref().unwrap_or("?")
                            ),
                        )
                    }
                    HoldStatus::Active => {
                        hold.status = HoldStatus::Released;
                        hold.ended_ms = Some(now_ms);
                        let removed = self.expiry.remove(&(
                            hold.expires_ms,
                            parse_id(hold_id, "hold-").expect("parsed"),
                        ));
                        assert!(removed);
                    }
                    HoldStatus::Released | HoldStatus::Expired => {}
                }
                InventoryResponse::ok(
                    200,
                    InventoryBody::Released {
                        hold_id: hold_id.clone(),
                        previous: Some(previous),
                    },
                )
            }
            InventoryRequest::CancelBooking { booking_id } => {
                let Some(n) =
                    parse_id(booking_id, "bk-").filter(|n| self.truth.bookings.contains_key(n))
                else {
                    return InventoryResponse::error(
                        404,
                        PmsErrorCode::BookingNotFound,
                        format!("no booking {booking_id}"),
                    );
                };
                let booking = self.truth.bookings.get_mut(&n).expect("checked above");
                if booking.cancelled_ms.is_none() {
                    booking.cancelled_ms = Some(now_ms);
                }
                InventoryResponse::ok(200, InventoryBody::Booking(booking.clone()))
            }
            InventoryRequest::GetHold { hold_id } => match self.truth.hold(hold_id) {
                Some(h) => InventoryResponse::ok(200, InventoryBody::Hold(h.clone())),
                None => Self::hold_not_found(hold_id),
            },
            InventoryRequest::ListByClientRef { client_ref } => {
                let (holds, bookings) = self.truth.by_client_ref(client_ref);
                InventoryResponse::ok(
                    200,
                    InventoryBody::List {
                        holds: holds.into_iter().cloned().collect(),
                        bookings: bookings.into_iter().cloned().collect(),
                    },
                )
            }
            InventoryRequest::SetRoomType {
                room_type,
                capacity,
                out_of_order,
            } => {
                let overbooking = self
                    .truth
                    .room_types
                    .get(room_type)
                    .map_or(self.config.overbooking_of(room_type), |t| {
                        t.overbooking_limit
                    });
                let sellable = capacity.saturating_add(overbooking);
                let over = self
                    .truth
                    .nights_in_use()
                    .into_iter()
                    .filter(|(t, _)| t == room_type)
                    .find(|(t, night)| self.truth.confirmed_count(t, *night) > sellable);
                if let Some((_, night)) = over {
                    return InventoryResponse::error(
                        409,
                        PmsErrorCode::CapacityInUse,
                        format!("night {night} has more confirmed bookings than {sellable}"),
                    );
                }
                let new = RoomType {
                    capacity: *capacity,
                    out_of_order: *out_of_order,
                    overbooking_limit: overbooking,
                };
                self.truth.room_types.insert(room_type.clone(), new);
                InventoryResponse::ok(
                    200,
                    InventoryBody::RoomType {
                        name: room_type.clone(),
                        room_type: new,
                    },
                )
            }
        }
    }
}

impl ServiceModel for Inventory {
    type Request = InventoryRequest;
    type Response = InventoryResponse;
    type GroundTruth = InventoryGroundTruth;

    fn begin(
        &mut self,
        now_ms: u64,
        req: InventoryRequest,
        injected: Option<Injected>,
    ) -> Begin<InventoryResponse> {
        self.tick(now_ms);
        if injected == Some(Injected::Throttle) {
            return Begin::Done(InventoryResponse::error(
                429,
                PmsErrorCode::RateLimited,
                "too many requests".to_owned(),
            ));
        }
        if let Err(resp) = self.validate(&req) {
            return Begin::Done(*resp);
        }
        Begin::Pending(self.in_flight.insert(Pending {
            request: req,
            injected,
        }))
    }

    fn complete(&mut self, now_ms: u64, ticket: Ticket) -> InventoryResponse {
        self.tick(now_ms);
        let Pending { request, injected } = self.in_flight.take(ticket);
        match injected {
            Some(Injected::FailBeforeApply | Injected::EdgeUnavailable) => {
                InventoryResponse::error(
                    503,
                    PmsErrorCode::ServiceUnavailable,
                    "service unavailable".to_owned(),
                )
            }
            Some(Injected::FailAfterApply) => {
                let _applied = self.execute(now_ms, &request);
                InventoryResponse::error(
                    500,
                    PmsErrorCode::InternalError,
                    "internal error".to_owned(),
                )
            }
            Some(Injected::Throttle) => unreachable!("throttled requests are answered in begin"),
            None => self.execute(now_ms, &request),
        }
    }

    fn abort(&mut self, ticket: Ticket) -> bool {
        self.in_flight.remove(ticket).is_some()
    }

    fn in_flight(&self) -> Vec<Ticket> {
        self.in_flight.tickets()
    }

    fn tick(&mut self, now_ms: u64) {
        while let Some(&(expires_ms, n)) = self.expiry.first() {
            if expires_ms > now_ms {
                break;
            }
            self.expiry.pop_first();
            let hold = self
                .truth
                .holds
                .get_mut(&n)
                .expect("expiry of unknown hold");
            assert_eq!(hold.status, HoldStatus::Active);
            hold.status = HoldStatus::Expired;
            hold.ended_ms = Some(expires_ms);
        }
    }

    fn ground_truth(&self) -> &InventoryGroundTruth {
        &self.truth
    }

    fn dump(&self) -> String {
        let t = &self.truth;
        let mut out = format!(
            "inventory: {} holds ({} active), {} bookings, {} in flight\n",
            t.holds.len(),
            t.active_holds().count(),
            t.bookings.len(),
            self.in_flight.len()
        );
        for h in t.holds.values() {
            let _ = writeln!(
                out,
                "  {} {} nights {}..{} {:?} ref={} expires={}{}",
                h.id,
                h.room_type,
                h.first_night,
                u64::from(h.first_night) + u64::from(h.nights),
                h.status,
                h.client_ref.as_deref().unwrap_or("-"),
                h.expires_ms,
                h.booking_id
                    .as_deref()
                    .map(|b| format!(" -> {b}"))
                    .unwrap_or_default()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
