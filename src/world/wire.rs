//! The messages between the nodes of the world, and [`Services`]:
//! typed calls from a coordinator node to the three services.

use std::time::Duration;

use crate::saga::{SagaInput, SagaStatus};
use crate::services::inventory::{InventoryRequest, InventoryResponse};
use crate::services::salesforce::{SalesforceRequest, SalesforceResponse};
use crate::services::stripe::{StripeRequest, StripeResponse};
use crate::sim::{CallError, Net};
use serde::Serialize;

/// Node names.
pub const COORDINATOR: &str = "coordinator";
pub const STRIPE: &str = "stripe";
pub const SALESFORCE: &str = "salesforce";
pub const INVENTORY: &str = "inventory";

/// Name of agent `n` (1-based).
pub fn agent(n: u32) -> String {
    format!("agent-{n}")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Request {
    Stripe(StripeRequest),
    Salesforce(SalesforceRequest),
    Inventory(InventoryRequest),
    /// A request to a user service (the node it is sent to).
    User(serde_json::Value),
    /// A caller calls the saga tool.
    Start(SagaInput),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Response {
    Stripe(StripeResponse),
    Salesforce(SalesforceResponse),
    Inventory(InventoryResponse),
    User(serde_json::Value),
    Status(SagaStatus),
    /// The request went to a node that does not serve it (a wiring bug).
    Misrouted,
}

/// Typed calls from a coordinator node to the services, each with its
/// timeout from the scenario. Shared by every coordinator implementation.
#[derive(Clone)]
pub struct Services {
    pub node: String,
    pub net: Net<Request, Response>,
    stripe_timeout: Duration,
    salesforce_timeout: Duration,
    inventory_timeout: Duration,
}

impl Services {
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

    pub async fn salesforce(
        &self,
        req: SalesforceRequest,
    ) -> Result<SalesforceResponse, CallError> {
        let to = self.salesforce_timeout;
        match self
            .net
            .call(&self.node, SALESFORCE, Request::Salesforce(req), to)
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
