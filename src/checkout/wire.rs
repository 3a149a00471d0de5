//! The messages between the nodes of the checkout world.

use crate::saga::{SagaInput, SagaStatus};
use crate::services::inventory::{InventoryRequest, InventoryResponse};
use crate::services::salesforce::{SalesforceRequest, SalesforceResponse};
use crate::services::stripe::{StripeRequest, StripeResponse};

/// Node names.
pub const COORDINATOR: &str = "coordinator";
pub const STRIPE: &str = "stripe";
pub const SALESFORCE: &str = "salesforce";
pub const INVENTORY: &str = "inventory";

/// Name of agent `n` (1-based).
pub fn agent(n: u32) -> String {
    format!("agent-{n}")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Stripe(StripeRequest),
    Salesforce(SalesforceRequest),
    Inventory(InventoryRequest),
    /// An agent calls the checkout tool.
    Checkout(SagaInput),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Stripe(StripeResponse),
    Salesforce(SalesforceResponse),
    Inventory(InventoryResponse),
    Checkout(SagaStatus),
    /// The request went to a node that does not serve it (a wiring bug).
    Misrouted,
}
