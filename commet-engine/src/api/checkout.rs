//! Checkout: the customer opens the signed link, enters a payment method, and is charged.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use commet_core::catalog::Catalog;
use commet_core::ids::SubscriptionId;
use commet_core::money::Money;
use commet_core::subscription::{Command, Resolution, Subscription};
use commet_core::token::{self, Purpose};
use serde::{Deserialize, Serialize};

use super::subscriptions::{SubscriptionView, stored};
use crate::billing::Billing;
use crate::charges::Settled;
use crate::error::Result;
use crate::request::Prepared;
use crate::store::StoreExt;
use crate::writes::Writes;

/// What a checkout page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSession {
    /// The subscription waiting for checkout.
    pub subscription: Subscription,
    /// The customer's e-mail address.
    pub email: String,
    /// What completing checkout charges now (zero for a trial).
    pub amount_due_now: Money,
    /// When the trial would end, for a price with a trial.
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// Where to send the customer after success.
    pub success_url: Option<String>,
    /// Where to send the customer if they leave.
    pub cancel_url: Option<String>,
    /// When this link stops working.
    pub link_expires_at: DateTime<Utc>,
}

/// Checkout links. From [`Billing::checkout`].
#[derive(Debug, Clone, Copy)]
pub struct Checkout<'a> {
    billing: &'a Billing,
    key: Option<&'a str>,
}

impl<'a> Checkout<'a> {
    pub(crate) fn new(billing: &'a Billing, key: Option<&'a str>) -> Checkout<'a> {
        Checkout { billing, key }
    }

    /// Open a checkout link: check the token (signed, for checkout, for this subscription, not
    /// expired) and return what the page shows.
    pub async fn open(&self, subscription: SubscriptionId, token: &str) -> Result<CheckoutSession> {
        let billing = self.billing;
        let now = billing.now();
        let claims = token::verify_for(
            &billing.config().signing_key,
            token,
            Purpose::Checkout,
            &subscription.to_string(),
            now,
        )?;
        let subscription = billing.store.get_subscription(subscription).await?;
        let pending = subscription.pending_checkout()?;
        let customer = billing.store.get_customer(subscription.customer()).await?;
        let open = billing.open_first_invoice(subscription.id()).await?;
        let catalog = billing.catalog_view(false).await?;
        let terms = subscription.checkout_terms(
            &customer,
            open.as_ref(),
            &billing.context(&catalog, now),
        )?;
        Ok(CheckoutSession {
            email: customer.email().to_owned(),
            amount_due_now: terms.amount_due_now,
            trial_ends_at: terms.trial_ends_at,
            success_url: pending.success_url.clone(),
            cancel_url: pending.cancel_url.clone(),
            link_expires_at: claims.expires_at,
            subscription,
        })
    }

    /// Complete checkout with a payment method (the provider's reference): the method is put on
    /// file, and the first invoice is charged (active from now) or, for a price with a trial,
    /// the trial starts. A decline is [`BillingError::PaymentDeclined`](crate::BillingError):
    /// the subscription stays `pending_payment` and the customer can try another method on the
    /// same link (the same first invoice is charged again).
    pub async fn complete(
        &self,
        subscription: SubscriptionId,
        token: &str,
        payment_method: &str,
    ) -> Result<SubscriptionView> {
        #[derive(Serialize)]
        struct Request<'r> {
            subscription: SubscriptionId,
            payment_method: &'r str,
        }
        let billing = self.billing;
        token::verify_for(
            &billing.config().signing_key,
            token,
            Purpose::Checkout,
            &subscription.to_string(),
            billing.now(),
        )?;
        let id = subscription;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let subscription = billing.store.get_subscription(id).await?;
            let mut customer = billing.store.get_customer(subscription.customer()).await?;
            customer.set_payment_method(payment_method, now)?;
            let open = billing.open_first_invoice(id).await?;
            let attempts = match &open {
                Some(open) => billing.store.payment_attempts(open.id()).await?,
                None => Vec::new(),
            };
            let open = open.as_ref().map(|open| (open, attempts.as_slice()));
            let context = billing.context(&catalog, now);
            Ok(
                match subscription.complete_checkout(&customer, open, &context)? {
                    Resolution::ChargeFirst(mut charge) => {
                        // The charge moved the customer's credit from the customer it was given,
                        // who already has the new payment method on file.
                        charge.customer.get_or_insert_with(|| customer.clone());
                        billing.charge_first(charge, customer)
                    }
                    Resolution::Decided(decision) => {
                        let mut writes = Writes::default();
                        writes.put_customer(customer);
                        let after = billing.apply_decision(&mut writes, decision, now).await?;
                        Prepared::Commit {
                            writes,
                            answer: SubscriptionView {
                                subscription: stored(&after),
                                checkout_url: None,
                            },
                        }
                    }
                },
            )
        };
        let answer = |settled: &Settled| {
            Ok(SubscriptionView {
                subscription: settled.subscription.clone(),
                checkout_url: None,
            })
        };
        billing
            .request(
                self.key,
                "checkout.complete",
                &Request {
                    subscription,
                    payment_method,
                },
                prepare,
                Some(&answer),
            )
            .await
    }

    /// Cancel a subscription whose checkout time to live has passed (the due work does this
    /// too): its open first invoice is voided.
    pub async fn expire(&self, subscription: SubscriptionId) -> Result<Subscription> {
        #[derive(Serialize)]
        struct Request {
            subscription: SubscriptionId,
        }
        let billing = self.billing;
        let id = subscription;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let subscription = billing.store.get_subscription(id).await?;
            let open_invoices = billing
                .outstanding_invoices(id)
                .await?
                .iter()
                .map(commet_core::invoice::Invoice::id)
                .collect();
            let decision = subscription.decide(
                &Command::ExpireCheckout { open_invoices },
                &billing.context(&catalog, now),
            )?;
            let mut writes = Writes::default();
            let after = billing.apply_decision(&mut writes, decision, now).await?;
            Ok(Prepared::Commit {
                writes,
                answer: stored(&after),
            })
        };
        billing
            .request(
                self.key,
                "checkout.expire",
                &Request { subscription },
                prepare,
                None,
            )
            .await
    }
}
