//! Checkout: the customer opens the signed link, enters a payment method, and is charged.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::charge::Intent;
use super::subscriptions::{SubscriptionView, next_attempt_number};
use super::{Billing, BillingError, Result};
use crate::store::{ChangeSet, EntityKind, StoreExt};
use commet_core::calendar::BillingCycle;
use commet_core::ids::SubscriptionId;
use commet_core::invoice::{InvoiceKind, RecurringInvoice};
use commet_core::money::Money;
use commet_core::payment::ChargePurpose;
use commet_core::subscription::{CheckoutCompletion, Command, Subscription, SubscriptionState};
use commet_core::token::{self, Purpose};

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
    pub(super) fn new(billing: &'a Billing, key: Option<&'a str>) -> Checkout<'a> {
        Checkout { billing, key }
    }

    /// Open a checkout link: check the token (signed, for checkout, for this subscription, not
    /// expired) and return what the page shows.
    pub async fn open(&self, subscription: SubscriptionId, token: &str) -> Result<CheckoutSession> {
        let billing = self.billing;
        let now = billing.now();
        let claims = token::verify_for(
            &billing.config.signing_key,
            token,
            Purpose::Checkout,
            &subscription.to_string(),
            now,
        )?;
        let subscription = billing.store.get_subscription(subscription).await?;
        let SubscriptionState::PendingPayment(pending) = subscription.state() else {
            return Err(illegal(&subscription));
        };
        let customer = billing.store.get_customer(subscription.customer()).await?;
        let prices = billing.priced_items(&subscription).await?;
        let trial_days = trial_days(&prices);
        Ok(CheckoutSession {
            email: customer.email().to_owned(),
            amount_due_now: billing.first_charge_now(&subscription, &prices).await?,
            trial_ends_at: (trial_days > 0).then(|| now + TimeDelta::days(trial_days.into())),
            success_url: pending.success_url.clone(),
            cancel_url: pending.cancel_url.clone(),
            link_expires_at: claims.expires_at,
            subscription,
        })
    }

    /// Complete checkout with a payment method (the provider's reference): the method is put on
    /// file, and the first invoice is charged (active from now) or, for a price with a trial,
    /// the trial starts. A decline is [`BillingError::PaymentDeclined`]: the subscription stays
    /// `pending_payment` and the customer can try another method on the same link (the same
    /// first invoice is charged again).
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
            &billing.config.signing_key,
            token,
            Purpose::Checkout,
            &subscription.to_string(),
            billing.now(),
        )?;
        let current = billing.store.get_subscription(subscription).await?;
        let prices = billing.priced_items(&current).await?;
        let request = Request {
            subscription,
            payment_method,
        };
        let trial_days = trial_days(&prices);
        if trial_days > 0 {
            return billing
                .commit_once(self.key, "checkout.complete", &request, |now| async move {
                    let current = billing.store.get_subscription(subscription).await?;
                    let mut changes = ChangeSet::default();
                    billing
                        .customer_in(&mut changes, current.customer())
                        .await?
                        .set_payment_method(payment_method, now)?;
                    let command = Command::CompleteCheckout(CheckoutCompletion::Trial {
                        ends_at: now + TimeDelta::days(trial_days.into()),
                    });
                    let after = billing
                        .decide_into(&current, &command, now, &mut changes)
                        .await?;
                    Ok((
                        SubscriptionView {
                            subscription: after,
                            checkout_url: None,
                        },
                        changes,
                    ))
                })
                .await;
        }
        billing
            .charge_flow(
                self.key,
                "checkout.complete",
                &request,
                |now| async move {
                    billing
                        .checkout_intent(subscription, payment_method, now)
                        .await
                },
                |settled| {
                    Ok(SubscriptionView {
                        subscription: settled.subscription.clone().ok_or_else(|| {
                            BillingError::not_found(EntityKind::Subscription, subscription)
                        })?,
                        checkout_url: None,
                    })
                },
            )
            .await
    }

    /// Cancel a subscription whose checkout time to live has passed (`run_due` does this too).
    pub async fn expire(&self, subscription: SubscriptionId) -> Result<Subscription> {
        #[derive(Serialize)]
        struct Request {
            subscription: SubscriptionId,
        }
        let billing = self.billing;
        billing
            .commit_once(
                self.key,
                "checkout.expire",
                &Request { subscription },
                |now| async move {
                    let current = billing.store.get_subscription(subscription).await?;
                    let mut changes = ChangeSet::default();
                    let after = billing.expire_into(&current, now, &mut changes).await?;
                    Ok((after, changes))
                },
            )
            .await
    }
}

fn illegal(subscription: &Subscription) -> BillingError {
    commet_core::subscription::SubscriptionError::IllegalTransition(
        commet_core::subscription::IllegalTransition {
            from: Some(subscription.status()),
            trigger: commet_core::subscription::Trigger::CheckoutPaid,
        },
    )
    .into()
}

/// The longest trial among the items' prices.
fn trial_days(prices: &[(commet_core::catalog::Price, u32)]) -> u32 {
    prices
        .iter()
        .map(|(price, _)| price.trial_days())
        .max()
        .unwrap_or(0)
}

impl Billing {
    /// What completing checkout charges now: nothing for a trial, the open first invoice's
    /// amount due if there is one, the first period otherwise.
    async fn first_charge_now(
        &self,
        subscription: &Subscription,
        prices: &[(commet_core::catalog::Price, u32)],
    ) -> Result<Money> {
        if trial_days(prices) > 0 {
            return Ok(Money::zero(subscription.currency()));
        }
        if let Some(open) = self.first_invoice(subscription).await? {
            return Ok(open.amount_due());
        }
        let customer = self.store.get_customer(subscription.customer()).await?;
        let period = BillingCycle::new(self.now(), subscription.interval())
            .period(0)
            .map_err(commet_core::subscription::SubscriptionError::from)?;
        let invoice = RecurringInvoice {
            id: self.ids.next(self.now()),
            customer: subscription.customer(),
            subscription: subscription.id(),
            currency: subscription.currency(),
            period,
            items: prices,
            created_at: self.now(),
            available_credit: customer.credit(subscription.currency()),
            policy: self.config.rounding,
        }
        .build()?;
        Ok(invoice.amount_due())
    }

    /// The open first invoice of a subscription waiting for checkout (from an earlier, declined
    /// attempt), if any.
    async fn first_invoice(
        &self,
        subscription: &Subscription,
    ) -> Result<Option<commet_core::invoice::Invoice>> {
        Ok(self
            .outstanding_invoices(subscription.id())
            .await?
            .into_iter()
            .find(|invoice| invoice.kind() == InvoiceKind::Recurring))
    }

    /// The intent to charge a checkout: the payment method put on file, the open first invoice
    /// charged again, or a new one for the period starting now.
    async fn checkout_intent(
        &self,
        id: SubscriptionId,
        payment_method: &str,
        now: DateTime<Utc>,
    ) -> Result<Intent> {
        let subscription = self.store.get_subscription(id).await?;
        if !matches!(subscription.state(), SubscriptionState::PendingPayment(_)) {
            return Err(illegal(&subscription));
        }
        self.ensure_no_charge_in_flight(&subscription).await?;
        let mut changes = ChangeSet::default();
        self.customer_in(&mut changes, subscription.customer())
            .await?
            .set_payment_method(payment_method, now)?;
        let attempt = match self.first_invoice(&subscription).await? {
            Some(open) => {
                let customer = self
                    .customer_view(&changes, subscription.customer())
                    .await?;
                let number = next_attempt_number(&self.store.payment_attempts(open.id()).await?);
                self.retry_intent(
                    &open,
                    &subscription,
                    &customer,
                    ChargePurpose::Checkout,
                    number,
                    now,
                    &mut changes,
                )
            }
            None => {
                let items = self.priced_items(&subscription).await?;
                let period = BillingCycle::new(now, subscription.interval())
                    .period(0)
                    .map_err(commet_core::subscription::SubscriptionError::from)?;
                let invoice = RecurringInvoice {
                    id: self.ids.next(now),
                    customer: subscription.customer(),
                    subscription: id,
                    currency: subscription.currency(),
                    period,
                    items: &items,
                    created_at: now,
                    available_credit: Money::zero(subscription.currency()),
                    policy: self.config.rounding,
                }
                .build()?;
                let customer = self
                    .customer_view(&changes, subscription.customer())
                    .await?;
                self.new_invoice_intent(
                    invoice,
                    &subscription,
                    &customer,
                    ChargePurpose::Checkout,
                    now,
                    &mut changes,
                )
                .await?
            }
        };
        Ok(Intent { changes, attempt })
    }

    /// Expire a checkout into `changes`: the subscription canceled, its open first invoice
    /// voided.
    pub(super) async fn expire_into(
        &self,
        subscription: &Subscription,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Subscription> {
        let open = self.open_invoices(subscription).await?;
        let after = self
            .decide_into(subscription, &Command::ExpireCheckout, now, changes)
            .await?;
        let actions: Vec<_> = open
            .into_iter()
            .map(commet_core::subscription::InvoiceAction::Void)
            .collect();
        self.apply_invoice_actions(&actions, &after, now, changes)
            .await?;
        Ok(after)
    }
}
