//! # commet-engine
//!
//! The engine of commet: [`Billing`], the facade a service embeds to run its subscription
//! business, over a [`store::Store`] and a [`gateway::PaymentGateway`]. Every business rule
//! lives in `commet-core`; the engine has none of its own. Every operation has the same shape
//! (DESIGN.md section 2): **load** what it touches, **ask** the domain, **commit** one
//! [`ChangeSet`](store::ChangeSet) with the expected versions, the events and the invoice
//! numbers, and only then run **effects** that leave the process (a charge), whose outcome is
//! committed the same way. A lost race re-runs the operation from its reads.
//!
//! | part | file | what it does |
//! |---|---|---|
//! | [`Billing`] | `billing.rs` | the engine: the store, the provider, the clock, the configuration, the catalog as read |
//! | facades | `api/` | [`Billing::customers`], [`Billing::catalog`], [`Billing::subscriptions`], [`Billing::checkout`], [`Billing::invoices`], [`Billing::webhooks`]: what a service calls |
//! | one request flow | `request.rs` | the idempotency key looked up first, reads and decision re-run on a lost race, one commit (or a charge) |
//! | one charge flow | `charges.rs` | intent committed, provider called with `{invoice}:{attempt}`, outcome settled by the domain and committed |
//! | one due runner | `due.rs` | every deadline of every source ([`Billing::run_due`], [`Billing::advance_to`]): subscriptions' due work, abandoned charges, webhook fan-out and deliveries |
//! | webhooks | [`webhooks`] | the outbox fanned out into deliveries, claimed, signed, sent through a [`Transport`](webhooks::Transport), logged and retried (`webhooks/deliver.rs`) |
//! | writes | `writes.rs` | decisions gathered into one commit |
//! | store | [`store`] | the [`Store`](store::Store) trait, change sets, and the commit rules every store shares |
//! | provider | [`gateway`] | the [`PaymentGateway`](gateway::PaymentGateway) trait |
//! | test kit | [`testkit`] (feature `testkit`) | the store conformance suite, a fake provider, engine scenarios |
//!
//! # Charges
//!
//! A charge is recorded before it is made: one commit finalizes and numbers the invoice,
//! records a `pending` [`PaymentAttempt`](commet_core::payment::PaymentAttempt) and marks the
//! charge in flight on the subscription (which then takes no other command); the gateway is
//! called with the idempotency key `{invoice}:{attempt}`; a second commit records the outcome
//! the domain decides. A process that dies in between leaves a pending attempt; after
//! [`BillingConfig::recovery_grace`] the due work charges it again with the same key (the
//! gateway answers with the first outcome) and settles it. Nothing is charged twice and no
//! invoice is lost. Two workers cannot bill one period twice: the charge's commit claims the
//! subscription's version, and each store keeps one recurring invoice per (subscription,
//! period start).
//!
//! # Idempotency
//!
//! Every mutating call can be made through [`Billing::idempotent`] with a key: the key is
//! looked up before anything else; the same key and the same request return the first result
//! without a second effect, or [`BillingError::RequestInProgress`] while its charge is in
//! flight; the same key with a different request is [`BillingError::IdempotencyKeyReused`].
//! Keys are kept for [`BillingConfig::idempotency_ttl`]. See the `request` module.

mod api;
mod billing;
mod charges;
mod config;
mod deadline;
mod due;
mod error;
pub mod gateway;
pub mod idempotency;
pub mod render;
mod request;
mod run_report;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod webhooks;
mod writes;

pub use api::{
    CancelRequest, CatalogApi, ChangeResult, Checkout, CheckoutSession, CreateSubscription,
    Customers, Invoices, SubscriptionView, Subscriptions, TestDelivery, Webhooks,
};
pub use billing::{Billing, Idempotent};
pub use config::{BillingConfig, LinkTtls, MAX_DURATION_DAYS, WebhookConfig};
pub use error::{BillingError, Result};
pub use run_report::{DueFailure, RunReport, WebhookFailure};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
