//! The messages between the nodes of the world, and [`Services`]:
//! typed calls from a coordinator node to the three services.
//!
//! [`Services`] also counts each call's answer by class into the run's
//! [`CallTally`] (for the coverage catalogue): which step and saga
//! operation it served (a [`CallLabel`] the caller sets), which service
//! and request kind, which response class (each model's `class()`, or
//! `timeout` / `refused`). Counting emits no trace event: the trace hash
//! does not depend on it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::saga::{SagaInput, SagaStatus};
use crate::services::inventory::{InventoryRequest, InventoryResponse};
use crate::services::salesforce::{SalesforceCall, SalesforceResponse};
use crate::services::stripe::{StripeRequest, StripeResponse};
use crate::services::user::{request_kind, response_class};
use crate::sim::{CallError, Net};
use serde::Serialize;

/// Name of the coordinator node (the one node that boots a
/// [`super::CoordinatorImpl`]).
pub const COORDINATOR: &str = "coordinator";
/// Name of the node serving the simulated Stripe.
pub const STRIPE: &str = "stripe";
/// Name of the node serving the simulated Salesforce.
pub const SALESFORCE: &str = "salesforce";
/// Name of the node serving the simulated PMS (room inventory).
pub const INVENTORY: &str = "inventory";

/// Name of agent `n` (1-based).
pub fn agent(n: u32) -> String {
    format!("agent-{n}")
}

/// A request between two nodes: a coordinator to a service, or an agent to
/// the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Request {
    /// To the Stripe node.
    Stripe(StripeRequest),
    /// To the Salesforce node: a token request, or an API request under a
    /// session.
    Salesforce(SalesforceCall),
    /// To the PMS node.
    Inventory(InventoryRequest),
    /// A request to a user service (the node it is sent to).
    User(serde_json::Value),
    /// A caller calls the saga tool.
    Start(SagaInput),
}

/// The reply to a [`Request`], of the matching variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Response {
    /// From the Stripe node.
    Stripe(StripeResponse),
    /// From the Salesforce node.
    Salesforce(SalesforceResponse),
    /// From the PMS node.
    Inventory(InventoryResponse),
    /// From a user service: its JSON response, or the injected failure
    /// (`{"status": 429 | 500 | 503, …}`).
    User(serde_json::Value),
    /// The coordinator's answer to [`Request::Start`]: decided, or still
    /// running when the tool's wait ran out.
    Status(SagaStatus),
    /// The request went to a node that does not serve it (a wiring bug).
    Misrouted,
}

/// Which step of a saga, and which of its operations (`action`,
/// `reconcile`, `compensate`), a coordinator's call serves. Calls made
/// without one are counted under [`UNLABELLED`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallLabel {
    /// The step's name, as the workload declares it.
    pub step: String,
    /// The saga operation: `action`, `reconcile` or `compensate`.
    pub op: &'static str,
}

/// The step name calls without a [`CallLabel`] are counted under.
pub const UNLABELLED: &str = "unlabelled";

/// Transport outcomes, response classes of every request kind: the call
/// timed out (maybe applied), or the connection was refused (not sent).
pub const TRANSPORT_CLASSES: &[&str] = &["timeout", "refused"];

/// One counted kind of call: the label, the service (`stripe`,
/// `salesforce`, `inventory` or a user service's node), the request kind
/// and the response class.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallKey {
    /// What the call served; `None`: unlabelled.
    pub label: Option<Arc<CallLabel>>,
    /// The service called.
    pub service: Cow<'static, str>,
    /// The request's kind (`create_payment_intent`, `hold`, …).
    pub kind: &'static str,
    /// The response's class (`402 card_declined`, `timeout`, …).
    pub class: &'static str,
}

/// How many calls of each [`CallKey`] a run's coordinator made, shared by
/// every incarnation of the coordinator node (a crash loses nothing
/// counted). A short list searched in place: a run meets a few dozen keys.
#[derive(Clone, Debug, Default)]
pub struct CallTally(Arc<Mutex<Vec<(CallKey, u64)>>>);

impl CallTally {
    /// Count one call.
    fn count(
        &self,
        label: &Option<Arc<CallLabel>>,
        service: &str,
        kind: &'static str,
        class: &'static str,
    ) {
        let mut v = self.0.lock().expect("call tally");
        let same = |k: &CallKey| {
            k.class == class && k.kind == kind && k.label == *label && k.service == service
        };
        match v.iter_mut().find(|(k, _)| same(k)) {
            Some((_, n)) => *n += 1,
            None => v.push((
                CallKey {
                    label: label.clone(),
                    service: match service {
                        STRIPE => Cow::Borrowed(STRIPE),
                        SALESFORCE => Cow::Borrowed(SALESFORCE),
                        INVENTORY => Cow::Borrowed(INVENTORY),
                        other => Cow::Owned(other.to_string()),
                    },
                    kind,
                    class,
                },
                1,
            )),
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<CallKey, u64> {
        self.0
            .lock()
            .expect("call tally")
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }
}

fn class_of<T>(r: &Result<T, CallError>, class: impl Fn(&T) -> &'static str) -> &'static str {
    match r {
        Ok(resp) => class(resp),
        Err(CallError::Timeout) => "timeout",
        Err(CallError::Refused) => "refused",
    }
}

/// Typed calls from a coordinator node to the services, each with its
/// timeout from the scenario. Shared by every coordinator implementation.
/// Each call's answer is counted into the run's [`CallTally`] under the
/// current [`CallLabel`] (see [`Services::labelled`]).
#[derive(Clone)]
pub struct Services {
    /// The calling node (the coordinator's name).
    pub node: String,
    /// The transport the calls go through.
    pub net: Net<Request, Response>,
    stripe_timeout: Duration,
    salesforce_timeout: Duration,
    inventory_timeout: Duration,
    label: Option<Arc<CallLabel>>,
    tally: CallTally,
}

impl Services {
    /// Calls from `env.node`, with the timeouts of `env.scenario`.
    pub fn new(env: &super::CoordinatorEnv) -> Self {
        let t = &env.scenario.timeouts;
        Services {
            node: env.node.clone(),
            net: env.net.clone(),
            stripe_timeout: Duration::from_millis(t.stripe_ms),
            salesforce_timeout: Duration::from_millis(t.salesforce_ms),
            inventory_timeout: Duration::from_millis(t.inventory_ms),
            label: None,
            tally: env.calls.clone(),
        }
    }

    /// These calls, counted as serving `op` (`action`, `reconcile`,
    /// `compensate`) of step `step`.
    pub fn labelled(&self, step: &str, op: &'static str) -> Services {
        let mut s = self.clone();
        s.set_label(Arc::new(CallLabel {
            step: step.to_string(),
            op,
        }));
        s
    }

    /// Count the calls made from now on under `label` (one made once and
    /// shared, so counting does not allocate).
    pub fn set_label(&mut self, label: Arc<CallLabel>) {
        self.label = Some(label);
    }

    /// A request to Stripe, with `timeouts.stripe_ms`. Panics if the node
    /// answers with another service's response (a wiring bug).
    pub async fn stripe(&self, req: StripeRequest) -> Result<StripeResponse, CallError> {
        let to = self.stripe_timeout;
        let kind = req.kind();
        let r = match self
            .net
            .call(&self.node, STRIPE, Request::Stripe(req), to)
            .await
        {
            Ok(Response::Stripe(r)) => Ok(r),
            Ok(other) => panic!("stripe answered {other:?}"),
            Err(e) => Err(e),
        };
        let class = class_of(&r, StripeResponse::class);
        self.tally.count(&self.label, STRIPE, kind, class);
        r
    }

    /// A call to Salesforce (a login, or an API request under the session
    /// a login returned), with `timeouts.salesforce_ms`. Panics on a
    /// response of another kind.
    pub async fn salesforce(&self, call: SalesforceCall) -> Result<SalesforceResponse, CallError> {
        let to = self.salesforce_timeout;
        let kind = call.kind();
        let r = match self
            .net
            .call(&self.node, SALESFORCE, Request::Salesforce(call), to)
            .await
        {
            Ok(Response::Salesforce(r)) => Ok(r),
            Ok(other) => panic!("salesforce answered {other:?}"),
            Err(e) => Err(e),
        };
        let class = class_of(&r, SalesforceResponse::class);
        self.tally.count(&self.label, SALESFORCE, kind, class);
        r
    }

    /// A request to the user service on node `service` (with the PMS's
    /// timeout).
    pub async fn user(
        &self,
        service: &str,
        req: serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let to = self.inventory_timeout;
        let kind = request_kind(&req);
        let r = match self
            .net
            .call(&self.node, service, Request::User(req), to)
            .await
        {
            Ok(Response::User(r)) => Ok(r),
            Ok(other) => panic!("{service} answered {other:?}"),
            Err(e) => Err(e),
        };
        let class = class_of(&r, response_class);
        self.tally.count(&self.label, service, kind, class);
        r
    }

    /// A request to the PMS, with `timeouts.inventory_ms`. Panics on a
    /// response of another kind.
    pub async fn inventory(&self, req: InventoryRequest) -> Result<InventoryResponse, CallError> {
        let to = self.inventory_timeout;
        let kind = req.kind();
        let r = match self
            .net
            .call(&self.node, INVENTORY, Request::Inventory(req), to)
            .await
        {
            Ok(Response::Inventory(r)) => Ok(r),
            Ok(other) => panic!("inventory answered {other:?}"),
            Err(e) => Err(e),
        };
        let class = class_of(&r, InventoryResponse::class);
        self.tally.count(&self.label, INVENTORY, kind, class);
        r
    }
}
