//! The messages between the nodes of the world, and [`Services`]:
//! typed calls from a coordinator node to the three services.

use std::time::Duration;

use crate::saga::{SagaInput, SagaStatus};
use crate::services::inventory::{InventoryRequest, InventoryResponse};
use crate::services::salesforce::{SalesforceCall, SalesforceResponse};
use crate::services::stripe::{StripeRequest, StripeResponse};
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

/// Typed calls from a coordinator node to the services, each with its
/// timeout from the scenario. Shared by every coordinator implementation.
#[derive(Clone)]
pub struct Services {
    /// The calling node (the coordinator's name).
    pub node: String,
    /// The transport the calls go through.
    pub net: Net<Request, Response>,
    stripe_timeout: Duration,
    salesforce_timeout: Duration,
    inventory_timeout: Duration,
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
        }
    }

    /// A request to Stripe, with `timeouts.stripe_ms`. Panics if the node
    /// answers with another service's response (a wiring bug).
    pub async fn stripe(&self, req: StripeRequest) -> Result<StripeResponse, CallError> {
        let to = self.stripe_timeout;
        match self
            .net
            .call(&self.node, STRIPE, Request::Stripe(req), to)
            .await?
        {
            Response::Stripe(r) => Ok(r),
            other => panic!("stripe answered {other:?}"),
        }
    }

    /// A call to Salesforce (a login, or an API request under the session
    /// a login returned), with `timeouts.salesforce_ms`. Panics on a
    /// response of another kind.
    pub async fn salesforce(&self, call: SalesforceCall) -> Result<SalesforceResponse, CallError> {
        let to = self.salesforce_timeout;
        match self
            .net
            .call(&self.node, SALESFORCE, Request::Salesforce(call), to)
            .await?
        {
            Response::Salesforce(r) => Ok(r),
            other => panic!("salesforce answered {other:?}"),
        }
    }

    /// A request to the user service on node `service` (with the PMS's
    /// timeout).
    pub async fn user(
        &self,
        service: &str,
        req: serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let to = self.inventory_timeout;
        match self
            .net
            .call(&self.node, service, Request::User(req), to)
            .await?
        {
            Response::User(r) => Ok(r),
            other => panic!("{service} answered {other:?}"),
        }
    }

    /// A request to the PMS, with `timeouts.inventory_ms`. Panics on a
    /// response of another kind.
    pub async fn inventory(&self, req: InventoryRequest) -> Result<InventoryResponse, CallError> {
        let to = self.inventory_timeout;
        match self
            .net
            .call(&self.node, INVENTORY, Request::Inventory(req), to)
            .await?
        {
            Response::Inventory(r) => Ok(r),
            other => panic!("inventory answered {other:?}"),
        }
    }
}
