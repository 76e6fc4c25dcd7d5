//! The per-resource facades of [`Billing`](crate::Billing): what a service calls. Each method
//! reads what it needs, asks the domain, and commits through the one request flow
//! ([`crate::request`]); the methods that charge go through the one charge flow
//! ([`crate::charges`]).

mod catalog;
mod checkout;
mod customers;
mod invoices;
mod subscriptions;
mod webhooks;

pub use catalog::CatalogApi;
pub use checkout::{Checkout, CheckoutSession};
pub use customers::Customers;
pub use invoices::Invoices;
pub use subscriptions::{
    CancelRequest, ChangeResult, CreateSubscription, SubscriptionView, Subscriptions,
};
pub use webhooks::{TestDelivery, Webhooks};

use serde::Serialize;

/// The request of a call that names one object.
#[derive(Serialize)]
struct ById<T: Serialize> {
    id: T,
}
