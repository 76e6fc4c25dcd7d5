//! Subscriptions: create with a checkout link, change, cancel, override.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use commet_core::catalog::{Catalog, Price};
use commet_core::ids::{CustomerId, PriceId, SubscriptionId};
use commet_core::invoice::Invoice;
use commet_core::payment::ChargePurpose;
use commet_core::proration::ChangePreview;
use commet_core::subscription::{
    AdminUpdate, CheckoutOffer, Command, NewSubscription, PricedItems, Resolution, Subscription,
    SubscriptionState, Trigger, first_charge,
};
use commet_core::token::SignedUrl;
use serde::{Deserialize, Serialize};

use super::ById;
use crate::billing::Billing;
use crate::charges::Settled;
use crate::error::Result;
use crate::request::Prepared;
use crate::store::{Page, PageRequest, Put, StoreExt, SubscriptionQuery, every_page};
use crate::writes::Writes;

/// A subscription to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSubscription {
    /// The customer.
    pub customer: CustomerId,
    /// The prices and quantities (1 for a flat price, seats for a per-seat one).
    pub items: Vec<(PriceId, u32)>,
    /// Create as a draft, to submit later.
    pub draft: bool,
    /// Where checkout sends the customer after success.
    pub success_url: Option<String>,
    /// Where checkout sends the customer if they leave.
    pub cancel_url: Option<String>,
    /// Free-form key/value pairs.
    pub metadata: BTreeMap<String, String>,
}

/// A subscription and, while it waits for checkout, its checkout link (a fresh token on every
/// read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    /// The subscription.
    pub subscription: Subscription,
    /// `{checkout_base_url}/{id}?token=...` (or the provider's hosted page), while
    /// `pending_payment`.
    pub checkout_url: Option<SignedUrl>,
}

/// How to cancel.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Cancel at the end of the current period (or trial) instead of now.
    pub at_period_end: bool,
    /// The customer's words, kept on the subscription and sent in events.
    pub comment: Option<String>,
}

/// What a plan change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // an answer, built and moved once
pub enum ChangeResult {
    /// Changed now (an upgrade, or a trial converted), billed by `invoice` when not free.
    Changed {
        /// The subscription after the change.
        subscription: Subscription,
        /// The paid plan-change invoice, if anything was billed.
        invoice: Option<Invoice>,
    },
    /// A downgrade, scheduled for the end of the period.
    Scheduled {
        /// The subscription, with the change scheduled.
        subscription: Subscription,
        /// When it takes effect.
        effective_at: DateTime<Utc>,
    },
}

/// Subscriptions. From [`Billing::subscriptions`].
#[derive(Debug, Clone, Copy)]
pub struct Subscriptions<'a> {
    billing: &'a Billing,
    key: Option<&'a str>,
}

impl<'a> Subscriptions<'a> {
    pub(crate) fn new(billing: &'a Billing, key: Option<&'a str>) -> Subscriptions<'a> {
        Subscriptions { billing, key }
    }

    /// Create a subscription: `pending_payment` with a checkout link for a paid price (the
    /// answer carries the link; `checkout.ready` is emitted), `draft` if asked, `active` at once
    /// for a free price. `success_url` and `cancel_url` must be absolute http(s) URLs.
    pub async fn create(&self, request: CreateSubscription) -> Result<SubscriptionView> {
        let billing = self.billing;
        let request = &request;
        let prices = &billing.prices_of(&request.items).await?;
        let items = &PricedItems::new(prices)?;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let customer = billing.store.get_customer(request.customer).await?;
            let context = billing.context(&catalog, now);
            let id: SubscriptionId = billing.ids.next(now);
            let checkout = if items.free || request.draft {
                None
            } else {
                let amount = first_charge(prices, &customer, None, &context)?;
                Some(CheckoutOffer::new(
                    billing.checkout_url(id, amount, now).await?,
                    amount,
                    request.success_url.clone(),
                    request.cancel_url.clone(),
                    &context,
                )?)
            };
            let decision = Subscription::create(
                NewSubscription {
                    id,
                    customer: request.customer,
                    items: items.clone(),
                    draft: request.draft,
                    checkout: checkout.clone(),
                    metadata: request.metadata.clone(),
                },
                &context,
            )?;
            let mut writes = Writes::default();
            let subscription = billing.apply_decision(&mut writes, decision, now).await?;
            Ok(Prepared::Commit {
                writes,
                answer: SubscriptionView {
                    subscription: stored(&subscription),
                    checkout_url: checkout.map(|offer| offer.url),
                },
            })
        };
        billing
            .request(self.key, "subscriptions.create", request, prepare, None)
            .await
    }

    /// Offer a draft to the customer: `pending_payment` with a checkout link.
    pub async fn submit(&self, id: SubscriptionId) -> Result<SubscriptionView> {
        let billing = self.billing;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let subscription = billing.store.get_subscription(id).await?;
            let customer = billing.store.get_customer(subscription.customer()).await?;
            let context = billing.context(&catalog, now);
            let amount = subscription
                .checkout_terms(&customer, None, &context)?
                .amount_due_now;
            let checkout = CheckoutOffer::new(
                billing.checkout_url(id, amount, now).await?,
                amount,
                None,
                None,
                &context,
            )?;
            let decision = subscription.decide(
                &Command::Submit {
                    checkout: checkout.clone(),
                },
                &context,
            )?;
            let mut writes = Writes::default();
            let after = billing.apply_decision(&mut writes, decision, now).await?;
            Ok(Prepared::Commit {
                writes,
                answer: SubscriptionView {
                    subscription: stored(&after),
                    checkout_url: Some(checkout.url),
                },
            })
        };
        billing
            .request(
                self.key,
                "subscriptions.submit",
                &ById { id },
                prepare,
                None,
            )
            .await
    }

    /// A subscription, with a fresh checkout link while it is `pending_payment`.
    pub async fn get(&self, id: SubscriptionId) -> Result<SubscriptionView> {
        let subscription = self.billing.store.get_subscription(id).await?;
        self.billing.view(subscription).await
    }

    /// Subscriptions matching `query`, newest first.
    pub async fn list(
        &self,
        query: SubscriptionQuery,
        page: PageRequest,
    ) -> Result<Page<Subscription>> {
        Ok(self.billing.store.subscriptions(query, page).await?)
    }

    /// The customer's current subscription: the newest one that is not canceled (nor a draft),
    /// if any.
    pub async fn active_for(&self, customer: CustomerId) -> Result<Option<Subscription>> {
        let billing = self.billing;
        let query = SubscriptionQuery {
            customer: Some(customer),
            status: None,
        };
        Ok(every_page(|page| billing.store.subscriptions(query, page))
            .await?
            .into_iter()
            .find(Subscription::is_current))
    }

    /// Cancel now (outstanding invoices are voided; `subscription.canceled`) or at the end of
    /// the period or trial (`subscription.cancellation_scheduled`).
    pub async fn cancel(&self, id: SubscriptionId, request: CancelRequest) -> Result<Subscription> {
        #[derive(Serialize)]
        struct Request<'r> {
            id: SubscriptionId,
            request: &'r CancelRequest,
        }
        let billing = self.billing;
        let request = &request;
        let command = || async move {
            let comment = request.comment.clone();
            Ok(if request.at_period_end {
                Command::ScheduleCancellation { comment }
            } else {
                Command::CancelNow {
                    comment,
                    open_invoices: billing
                        .outstanding_invoices(id)
                        .await?
                        .iter()
                        .map(Invoice::id)
                        .collect(),
                }
            })
        };
        self.decide(
            "subscriptions.cancel",
            id,
            &Request { id, request },
            command,
        )
        .await
    }

    /// Revoke a scheduled cancellation.
    pub async fn uncancel(&self, id: SubscriptionId) -> Result<Subscription> {
        self.command("subscriptions.uncancel", id, Command::RevokeCancellation)
            .await
    }

    /// Pause: no renewals, no access, until resumed. Immediate; the rest of the period is kept
    /// (resuming within it continues it at no charge).
    pub async fn pause(&self, id: SubscriptionId) -> Result<Subscription> {
        self.command("subscriptions.pause", id, Command::Pause)
            .await
    }

    /// Revoke a scheduled plan change.
    pub async fn revoke_plan_change(&self, id: SubscriptionId) -> Result<Subscription> {
        self.command(
            "subscriptions.revoke_plan_change",
            id,
            Command::RevokePlanChange,
        )
        .await
    }

    /// The admin override: set a status directly, with a reason and an actor (see
    /// [`override_allowed`](commet_core::subscription::override_allowed)).
    pub async fn update(&self, id: SubscriptionId, update: AdminUpdate) -> Result<Subscription> {
        #[derive(Serialize)]
        struct Request<'r> {
            id: SubscriptionId,
            update: &'r AdminUpdate,
        }
        let update = &update;
        let command = || async move { Ok(Command::Override(update.clone())) };
        self.decide("subscriptions.update", id, &Request { id, update }, command)
            .await
    }

    /// Resume a paused subscription: within the period it paid for, that period continues at
    /// no charge; after it, a new period starts now and is charged.
    pub async fn resume(&self, id: SubscriptionId) -> Result<Subscription> {
        self.restart("subscriptions.resume", id, ChargePurpose::Resume)
            .await
    }

    /// Reactivate a canceled subscription: within the period it had paid for when it was
    /// canceled, that period continues at no charge; otherwise a new period starts now and is
    /// charged.
    pub async fn reactivate(&self, id: SubscriptionId) -> Result<Subscription> {
        self.restart("subscriptions.reactivate", id, ChargePurpose::Reactivation)
            .await
    }

    /// Retry a past-due subscription's invoice now (the portal's "pay now"). A decline is
    /// recorded as a failed retry (dunning goes on) and answered with
    /// [`BillingError::PaymentDeclined`](crate::BillingError::PaymentDeclined).
    pub async fn retry_payment(&self, id: SubscriptionId) -> Result<Subscription> {
        let billing = self.billing;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let subscription = billing.store.get_subscription(id).await?;
            let invoice = billing
                .store
                .get_invoice(subscription.unpaid_invoice()?)
                .await?;
            let attempts = billing.store.payment_attempts(invoice.id()).await?;
            let customer = billing.store.get_customer(subscription.customer()).await?;
            let charge = subscription.retry(
                &invoice,
                &attempts,
                &customer,
                &billing.context(&catalog, now),
            )?;
            Ok(billing.charge_first(charge, customer))
        };
        let answer = |settled: &Settled| Ok(settled.subscription.clone());
        billing
            .request(
                self.key,
                "subscriptions.retry_payment",
                &ById { id },
                prepare,
                Some(&answer),
            )
            .await
    }

    /// Preview a plan change: the exact lines and totals of an upgrade, or when a downgrade
    /// would take effect. Commits nothing.
    pub async fn preview_change(
        &self,
        id: SubscriptionId,
        items: Vec<(PriceId, u32)>,
    ) -> Result<ChangePreview> {
        let billing = self.billing;
        let to = billing.prices_of(&items).await?;
        let subscription = billing.store.get_subscription(id).await?;
        let customer = billing.store.get_customer(subscription.customer()).await?;
        let catalog = billing.catalog_view(false).await?;
        Ok(subscription.preview_change(
            &to,
            &customer,
            &billing.context(&catalog, billing.now()),
        )?)
    }

    /// Change the items: an upgrade (costlier per unit of time) is charged now with proration
    /// and starts a new period; a downgrade is scheduled for the period end. During a trial the
    /// change converts the trial to a paid period now. A repeat with the same idempotency key
    /// answers as the first call did.
    pub async fn change_plan(
        &self,
        id: SubscriptionId,
        items: Vec<(PriceId, u32)>,
    ) -> Result<ChangeResult> {
        #[derive(Serialize)]
        struct Request<'r> {
            id: SubscriptionId,
            items: &'r [(PriceId, u32)],
        }
        let billing = self.billing;
        let to = &billing.prices_of(&items).await?;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let subscription = billing.store.get_subscription(id).await?;
            let customer = billing.store.get_customer(subscription.customer()).await?;
            let context = billing.context(&catalog, now);
            match subscription.change_plan(to, &customer, &context)? {
                Resolution::ChargeFirst(charge) => Ok(billing.charge_first(charge, customer)),
                Resolution::Decided(decision) => {
                    let scheduled = decision.trigger == Trigger::ScheduleDowngrade;
                    let mut writes = Writes::default();
                    let after = stored(&billing.apply_decision(&mut writes, decision, now).await?);
                    let answer = match after.state() {
                        SubscriptionState::Active(active) if scheduled => {
                            let effective_at = active
                                .plan_change
                                .as_ref()
                                .map_or(now, |change| change.effective_at);
                            ChangeResult::Scheduled {
                                subscription: after,
                                effective_at,
                            }
                        }
                        _ => ChangeResult::Changed {
                            subscription: after,
                            invoice: None,
                        },
                    };
                    Ok(Prepared::Commit { writes, answer })
                }
            }
        };
        let answer = |settled: &Settled| {
            Ok(ChangeResult::Changed {
                subscription: settled.subscription.clone(),
                invoice: Some(settled.invoice.clone()),
            })
        };
        billing
            .request(
                self.key,
                "subscriptions.change_plan",
                &Request { id, items: &items },
                prepare,
                Some(&answer),
            )
            .await
    }

    /// A command that needs no other input, in one commit.
    async fn command(
        &self,
        operation: &str,
        id: SubscriptionId,
        command: Command,
    ) -> Result<Subscription> {
        let command = &command;
        self.decide(operation, id, &ById { id }, || async move {
            Ok(command.clone())
        })
        .await
    }

    /// Decide the command `command` builds (from fresh reads, on every run), in one commit.
    async fn decide<F>(
        &self,
        operation: &str,
        id: SubscriptionId,
        request: &impl Serialize,
        command: impl Fn() -> F + Send + Sync,
    ) -> Result<Subscription>
    where
        F: Future<Output = Result<Command>> + Send,
    {
        let billing = self.billing;
        let command = &command;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let subscription = billing.store.get_subscription(id).await?;
            let command = command().await?;
            let decision = subscription.decide(&command, &billing.context(&catalog, now))?;
            let mut writes = Writes::default();
            let after = billing.apply_decision(&mut writes, decision, now).await?;
            Ok(Prepared::Commit {
                writes,
                answer: stored(&after),
            })
        };
        billing
            .request(self.key, operation, request, prepare, None)
            .await
    }

    /// Resume or reactivate: decided at once inside the paid period or for free items,
    /// charged first otherwise.
    async fn restart(
        &self,
        operation: &str,
        id: SubscriptionId,
        purpose: ChargePurpose,
    ) -> Result<Subscription> {
        let billing = self.billing;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let subscription = billing.store.get_subscription(id).await?;
            let customer = billing.store.get_customer(subscription.customer()).await?;
            match subscription.restart(purpose, &customer, &billing.context(&catalog, now))? {
                Resolution::ChargeFirst(charge) => Ok(billing.charge_first(charge, customer)),
                Resolution::Decided(decision) => {
                    let mut writes = Writes::default();
                    let after = billing.apply_decision(&mut writes, decision, now).await?;
                    Ok(Prepared::Commit {
                        writes,
                        answer: stored(&after),
                    })
                }
            }
        };
        let answer = |settled: &Settled| Ok(settled.subscription.clone());
        billing
            .request(self.key, operation, &ById { id }, prepare, Some(&answer))
            .await
    }
}

impl Billing {
    /// A subscription with a fresh checkout link if it waits for checkout.
    pub(crate) async fn view(&self, subscription: Subscription) -> Result<SubscriptionView> {
        let checkout_url = if subscription.pending_checkout().is_ok() {
            let now = self.now();
            let catalog = self.catalog_view(false).await?;
            let customer = self.store.get_customer(subscription.customer()).await?;
            let open = self.open_first_invoice(subscription.id()).await?;
            let amount = subscription
                .checkout_terms(&customer, open.as_ref(), &self.context(&catalog, now))?
                .amount_due_now;
            Some(self.checkout_url(subscription.id(), amount, now).await?)
        } else {
            None
        };
        Ok(SubscriptionView {
            subscription,
            checkout_url,
        })
    }

    /// The prices of `(price, quantity)` pairs, each of which must exist: a price missing from
    /// the catalog as read is looked for again before `items[i].price` is refused.
    pub(crate) async fn prices_of(&self, items: &[(PriceId, u32)]) -> Result<Vec<(Price, u32)>> {
        let mut catalog = self.catalog_view(false).await?;
        if items.iter().any(|(id, _)| catalog.price(*id).is_err()) {
            catalog = self.catalog_view(true).await?;
        }
        items
            .iter()
            .enumerate()
            .map(|(index, &(id, quantity))| {
                let price = catalog.price(id).map_err(|_| {
                    commet_core::InvalidField::new(
                        format!("items[{index}].price"),
                        format_args!("{id} does not exist"),
                    )
                })?;
                Ok((price.clone(), quantity))
            })
            .collect()
    }

    /// The open first invoice of a subscription waiting for checkout (from an earlier, declined
    /// attempt), if any.
    pub(crate) async fn open_first_invoice(&self, id: SubscriptionId) -> Result<Option<Invoice>> {
        Ok(self
            .outstanding_invoices(id)
            .await?
            .into_iter()
            .find(|invoice| invoice.kind() == commet_core::invoice::InvoiceKind::Recurring))
    }

    /// The commit that records `charge` (for `payer`, the customer as read), to be made before
    /// the provider is asked.
    pub(crate) fn charge_first<T>(
        &self,
        charge: commet_core::subscription::Charge,
        payer: commet_core::customer::Customer,
    ) -> Prepared<T> {
        let attempt = charge.attempt.clone();
        let mut writes = Writes::default();
        writes.put_charge(charge, &self.config().invoice_series);
        Prepared::Charge {
            writes,
            attempt,
            payer,
        }
    }
}

/// A value as a commit stores it: its version moved on.
pub(crate) fn stored<T: crate::store::Versioned + Clone>(value: &T) -> T {
    Put::of(value.clone()).stored()
}
