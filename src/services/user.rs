//! A service of the user's own (a shipping carrier, a loyalty ledger, …),
//! added to the world by a workload and served like the bundled models:
//! on its own node, behind the same transport, with the same injected
//! faults.
//!
//! The user writes a [`UserService`]: a synchronous state machine from a
//! JSON request to a JSON response (`{"status": 200, …}`), and the list of
//! its effects with their labels (the attribution contract of
//! `crate::workload`: a label reads `K` or `saga-K`, optionally followed by
//! `/…` or `#…`). [`UserModel`] adapts it to [`ServiceModel`] and applies
//! injected faults the way a real API fails:
//!
//! | injected | response |
//! |---|---|
//! | `Throttle` | `{"status": 429}`, not applied |
//! | `FailBeforeApply` | `{"status": 503}`, not applied |
//! | `FailAfterApply` | applied, then `{"status": 500}` |
//!
//! Not here: how the reference coordinator talks to it (the glue's
//! `Operation::Call`), judging (the checkers read [`UserGroundTruth`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Begin, InFlight, Injected, ServiceModel, Ticket};

/// One effect a user service applied, labelled with its business key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserEffect {
    /// The service's own id of the effect (what reconciliation's `"found"`
    /// lists and an undo's `"target"` names).
    pub id: String,
    /// The business key's label the request carried (`K`, `saga-K/…`).
    pub label: String,
    /// Still in force (not cancelled, not undone).
    pub live: bool,
    /// Service clock, ms.
    pub created_ms: u64,
}

/// A user's own simulated service.
pub trait UserService: Send + 'static {
    /// Apply one request at `now_ms` (the service's own clock) and answer.
    /// The answer carries `"status"` (HTTP-like); anything else is the
    /// service's own.
    fn handle(&mut self, now_ms: u64, request: &Value) -> Value;
    /// Every effect applied so far (its ground truth).
    fn effects(&self) -> Vec<UserEffect>;
    /// Time passes (expiries); most services need nothing.
    fn tick(&mut self, _now_ms: u64) {}
}

/// What the checkers read of a user service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroundTruth {
    /// The service's name (its node's name).
    pub service: String,
    /// Every effect it applied, sorted (live or undone).
    pub effects: Vec<UserEffect>,
}

/// A [`UserService`] as a [`ServiceModel`].
pub struct UserModel {
    inner: Box<dyn UserService>,
    in_flight: InFlight<(Value, Option<Injected>)>,
    truth: UserGroundTruth,
}

impl fmt::Debug for UserModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserModel({})", self.truth.service)
    }
}

impl UserModel {
    /// Serve `inner` as the service named `service` (its node's name).
    pub fn new(service: &str, inner: Box<dyn UserService>) -> UserModel {
        let mut m = UserModel {
            inner,
            in_flight: InFlight::default(),
            truth: UserGroundTruth {
                service: service.to_string(),
                effects: Vec::new(),
            },
        };
        m.refresh();
        m
    }

    fn refresh(&mut self) {
        let mut effects = self.inner.effects();
        effects.sort();
        self.truth.effects = effects;
    }
}

/// The status of a user service's response (500 if it has none).
pub fn status_of(response: &Value) -> u16 {
    response
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(500)
}

/// A user-service request's kind for the coverage catalogue: `find` (a
/// reconciliation, `{"op": "find"}`) or `call` (an action or an undo).
pub fn request_kind(request: &Value) -> &'static str {
    match request.get("op").and_then(Value::as_str) {
        Some("find") => "find",
        _ => "call",
    }
}

/// Every response class a user service can answer with: a user service's
/// statuses are its own, so the classes are the status groups the glue
/// tells apart ([`response_class`]).
pub const RESPONSE_CLASSES: &[&str] = &["2xx", "409", "429", "4xx", "500", "503", "5xx"];

/// The class of a user service's response (see [`RESPONSE_CLASSES`]).
pub fn response_class(response: &Value) -> &'static str {
    match status_of(response) {
        200..=299 => "2xx",
        409 => "409",
        429 => "429",
        500 => "500",
        503 => "503",
        501..=502 | 504..=599 => "5xx",
        _ => "4xx",
    }
}

impl ServiceModel for UserModel {
    type Request = Value;
    type Response = Value;
    type GroundTruth = UserGroundTruth;

    fn begin(&mut self, _now_ms: u64, req: Value, injected: Option<Injected>) -> Begin<Value> {
        if injected == Some(Injected::Throttle) {
            return Begin::Done(json!({"status": 429, "error": "rate_limited"}));
        }
        Begin::Pending(self.in_flight.insert((req, injected)))
    }

    fn complete(&mut self, now_ms: u64, ticket: Ticket) -> Value {
        let (req, injected) = self.in_flight.take(ticket);
        if matches!(
            injected,
            Some(Injected::FailBeforeApply | Injected::EdgeUnavailable)
        ) {
            return json!({"status": 503, "error": "service_unavailable"});
        }
        let response = self.inner.handle(now_ms, &req);
        self.refresh();
        if injected == Some(Injected::FailAfterApply) {
            return json!({"status": 500, "error": "internal_error"});
        }
        response
    }

    fn abort(&mut self, ticket: Ticket) -> bool {
        self.in_flight.remove(ticket).is_some()
    }

    fn in_flight(&self) -> Vec<Ticket> {
        self.in_flight.tickets()
    }

    fn tick(&mut self, now_ms: u64) {
        self.inner.tick(now_ms);
        self.refresh();
    }

    fn ground_truth(&self) -> &UserGroundTruth {
        &self.truth
    }

    fn dump(&self) -> String {
        let live = self.truth.effects.iter().filter(|e| e.live).count();
        format!(
            "{}: {} effects ({live} live), {} in flight\n",
            self.truth.service,
            self.truth.effects.len(),
            self.in_flight.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts requests; every request is one live effect.
    struct Counter(Vec<UserEffect>);

    impl UserService for Counter {
        fn handle(&mut self, now_ms: u64, request: &Value) -> Value {
            let id = format!("e-{}", self.0.len() + 1);
            self.0.push(UserEffect {
                id: id.clone(),
                label: request["key"].as_str().unwrap_or_default().into(),
                live: true,
                created_ms: now_ms,
            });
            json!({"status": 200, "id": id})
        }

        fn effects(&self) -> Vec<UserEffect> {
            self.0.clone()
        }
    }

    #[test]
    fn injected_faults_apply_as_documented() {
        let mut m = UserModel::new("counter", Box::new(Counter(Vec::new())));
        let req = json!({"key": "saga-k/ship"});
        assert_eq!(status_of(&m.handle(1, req.clone(), None)), 200);
        assert_eq!(
            status_of(&m.handle(2, req.clone(), Some(Injected::Throttle))),
            429
        );
        assert_eq!(
            status_of(&m.handle(3, req.clone(), Some(Injected::FailBeforeApply))),
            503
        );
        assert_eq!(m.ground_truth().effects.len(), 1, "not applied");
        assert_eq!(
            status_of(&m.handle(4, req, Some(Injected::FailAfterApply))),
            500
        );
        assert_eq!(m.ground_truth().effects.len(), 2, "applied, then 500");
        assert_eq!(m.ground_truth().effects[1].created_ms, 4);
        assert_eq!(status_of(&json!({"no": "status"})), 500);
    }

    #[test]
    fn an_aborted_request_is_never_applied() {
        let mut m = UserModel::new("counter", Box::new(Counter(Vec::new())));
        let t = m.begin(1, json!({"key": "k"}), None).ticket().unwrap();
        assert_eq!(m.in_flight(), vec![t]);
        assert!(m.abort(t));
        assert!(m.ground_truth().effects.is_empty());
        assert!(m.in_flight().is_empty());
    }
}
