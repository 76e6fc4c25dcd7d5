//! Subscriptions: create with a checkout link, change, cancel, override.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::charge::Intent;
use super::{Billing, BillingError, Result};
use crate::store::{
    ChangeSet, EntityKind, InvoiceQuery, Page, PageRequest, Put, StoreExt, SubscriptionQuery,
};
use commet_core::calendar::BillingCycle;
use commet_core::catalog::Price;
use commet_core::ids::{CustomerId, PriceId, SubscriptionId};
use commet_core::invoice::{Invoice, InvoiceKind, InvoiceStatus, NewInvoice, item_lines};
use commet_core::money::Money;
use commet_core::payment::ChargePurpose;
use commet_core::proration::{self, ChangePreview};
use commet_core::subscription::{
    AdminUpdate, CheckoutOffer, Command, NewSubscription, PlanChange, PricedItems, Settlement,
    Subscription, SubscriptionState, SubscriptionStatus,
};
use commet_core::token::{Purpose, SignedUrl};

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

#[derive(Serialize)]
struct ById {
    id: SubscriptionId,
}

impl<'a> Subscriptions<'a> {
    pub(super) fn new(billing: &'a Billing, key: Option<&'a str>) -> Subscriptions<'a> {
        Subscriptions { billing, key }
    }

    /// Create a subscription: `pending_payment` with a checkout link for a paid price (the
    /// answer carries the link; `checkout.ready` is emitted), `draft` if asked, `active` at once
    /// for a free price.
    pub async fn create(&self, request: CreateSubscription) -> Result<SubscriptionView> {
        let billing = self.billing;
        let request = &request;
        billing
            .commit_once(
                self.key,
                "subscriptions.create",
                request,
                |now| async move {
                    billing.store.get_customer(request.customer).await?;
                    let prices = billing.prices_of(&request.items).await?;
                    let items = PricedItems::new(&prices)?;
                    let id: SubscriptionId = billing.ids.next(now);
                    let checkout = if items.free || request.draft {
                        None
                    } else {
                        Some(billing.checkout_offer(id, &prices, request, now).await?)
                    };
                    let plans = billing.plans().await?;
                    let decision = Subscription::create(
                        NewSubscription {
                            id,
                            customer: request.customer,
                            items,
                            draft: request.draft,
                            checkout: checkout.clone(),
                            metadata: request.metadata.clone(),
                        },
                        &billing.context(&plans, now),
                    )?;
                    let put = Put::of(decision.subscription);
                    let view = SubscriptionView {
                        subscription: put.stored(),
                        checkout_url: checkout.map(|offer| offer.url),
                    };
                    let changes = ChangeSet {
                        subscriptions: vec![put],
                        events: billing.envelopes(decision.events, now),
                        ..ChangeSet::default()
                    };
                    Ok((view, changes))
                },
            )
            .await
    }

    /// Offer a draft to the customer: `pending_payment` with a checkout link.
    pub async fn submit(&self, id: SubscriptionId) -> Result<SubscriptionView> {
        let billing = self.billing;
        billing
            .commit_once(
                self.key,
                "subscriptions.submit",
                &ById { id },
                |now| async move {
                    let subscription = billing.store.get_subscription(id).await?;
                    let prices = billing.priced_items(&subscription).await?;
                    let request = CreateSubscription {
                        customer: subscription.customer(),
                        items: Vec::new(),
                        draft: false,
                        success_url: None,
                        cancel_url: None,
                        metadata: BTreeMap::new(),
                    };
                    let checkout = billing.checkout_offer(id, &prices, &request, now).await?;
                    let mut changes = ChangeSet::default();
                    let after = billing
                        .decide_into(
                            &subscription,
                            &Command::Submit {
                                checkout: checkout.clone(),
                            },
                            now,
                            &mut changes,
                        )
                        .await?;
                    Ok((
                        SubscriptionView {
                            subscription: after,
                            checkout_url: Some(checkout.url),
                        },
                        changes,
                    ))
                },
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
        let mut request = PageRequest::first(crate::store::MAX_PAGE);
        loop {
            let page = self
                .billing
                .store
                .subscriptions(
                    SubscriptionQuery {
                        customer: Some(customer),
                        status: None,
                    },
                    request.clone(),
                )
                .await?;
            if let Some(current) = page.items.into_iter().find(|s| {
                !matches!(
                    s.status(),
                    SubscriptionStatus::Canceled | SubscriptionStatus::Draft
                )
            }) {
                return Ok(Some(current));
            }
            match page.next {
                Some(cursor) => request.after = Some(cursor),
                None => return Ok(None),
            }
        }
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
        billing
            .commit_once(
                self.key,
                "subscriptions.cancel",
                &Request { id, request },
                |now| async move {
                    let subscription = billing.store.get_subscription(id).await?;
                    billing.ensure_no_charge_in_flight(&subscription).await?;
                    let command = if request.at_period_end {
                        Command::ScheduleCancellation {
                            comment: request.comment.clone(),
                        }
                    } else {
                        Command::CancelNow {
                            comment: request.comment.clone(),
                            open_invoices: billing.open_invoices(&subscription).await?,
                        }
                    };
                    let mut changes = ChangeSet::default();
                    let after = billing
                        .decide_into(&subscription, &command, now, &mut changes)
                        .await?;
                    Ok((after, changes))
                },
            )
            .await
    }

    /// Revoke a scheduled cancellation.
    pub async fn uncancel(&self, id: SubscriptionId) -> Result<Subscription> {
        self.simple("subscriptions.uncancel", id, Command::RevokeCancellation)
            .await
    }

    /// Pause: no renewals, no access, until resumed. Immediate; the rest of the period is not
    /// credited.
    pub async fn pause(&self, id: SubscriptionId) -> Result<Subscription> {
        self.simple("subscriptions.pause", id, Command::Pause).await
    }

    /// Revoke a scheduled plan change.
    pub async fn revoke_plan_change(&self, id: SubscriptionId) -> Result<Subscription> {
        self.simple(
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
        let billing = self.billing;
        let update = &update;
        billing
            .commit_once(
                self.key,
                "subscriptions.update",
                &Request { id, update },
                |now| async move {
                    let subscription = billing.store.get_subscription(id).await?;
                    billing.ensure_no_charge_in_flight(&subscription).await?;
                    let mut changes = ChangeSet::default();
                    let after = billing
                        .decide_into(
                            &subscription,
                            &Command::Override(update.clone()),
                            now,
                            &mut changes,
                        )
                        .await?;
                    Ok((after, changes))
                },
            )
            .await
    }

    /// Resume a paused subscription: within the period it paid for, that period continues at
    /// no charge; after it, a new period starts now and is charged.
    pub async fn resume(&self, id: SubscriptionId) -> Result<Subscription> {
        self.restart(id, ChargePurpose::Resume).await
    }

    /// Reactivate a canceled subscription: within the period it had paid for when it was
    /// canceled, that period continues at no charge; otherwise a new period starts now and is
    /// charged.
    pub async fn reactivate(&self, id: SubscriptionId) -> Result<Subscription> {
        self.restart(id, ChargePurpose::Reactivation).await
    }

    /// Retry a past-due subscription's invoice now (the portal's "pay now"). A decline is
    /// recorded as a failed retry (dunning goes on) and answered with
    /// [`BillingError::PaymentDeclined`].
    pub async fn retry_payment(&self, id: SubscriptionId) -> Result<Subscription> {
        let billing = self.billing;
        billing
            .charge_flow(
                self.key,
                "subscriptions.retry_payment",
                &ById { id },
                |now| async move { billing.retry_intent_for(id, now).await },
                |settled| {
                    settled
                        .subscription
                        .clone()
                        .ok_or_else(|| BillingError::not_found(EntityKind::Subscription, id))
                },
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
        let subscription = billing.store.get_subscription(id).await?;
        let now = billing.now();
        let to = billing.prices_of(&items).await?;
        billing.preview(&subscription, &to, now).await
    }

    /// Change the items: an upgrade (costlier per unit of time) is charged now with proration
    /// and starts a new period; a downgrade is scheduled for the period end. During a trial the
    /// change converts the trial to a paid period now.
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
        let request = Request { id, items: &items };
        let subscription = billing.store.get_subscription(id).await?;
        let to = billing.prices_of(&items).await?;
        let preview = billing.preview(&subscription, &to, billing.now()).await?;
        let change = PlanChange {
            items: PricedItems::new(&to)?,
        };
        let trialing = matches!(subscription.state(), SubscriptionState::Trialing(_));
        let (to, change) = (&to, &change);
        match preview {
            // Charged now (for zero when credit covers it: the invoice still records it).
            ChangePreview::Upgrade(_) => {
                billing
                    .charge_flow(
                        self.key,
                        "subscriptions.change_plan",
                        &request,
                        |now| async move { billing.upgrade_intent(id, to, now).await },
                        |settled| {
                            Ok(ChangeResult::Changed {
                                subscription: settled.subscription.clone().ok_or_else(|| {
                                    BillingError::not_found(EntityKind::Subscription, id)
                                })?,
                                invoice: Some(settled.invoice.clone()),
                            })
                        },
                    )
                    .await
            }
            ChangePreview::Downgrade(_) if trialing => {
                // A trial moved to a free plan converts at once, with nothing to bill.
                billing
                    .commit_once(
                        self.key,
                        "subscriptions.change_plan",
                        &request,
                        |now| async move {
                            let subscription = billing.store.get_subscription(id).await?;
                            let mut changes = ChangeSet::default();
                            let after = billing
                                .decide_into(
                                    &subscription,
                                    &Command::ConvertTrial {
                                        change: change.clone(),
                                        settlement: Settlement::Free,
                                    },
                                    now,
                                    &mut changes,
                                )
                                .await?;
                            Ok((
                                ChangeResult::Changed {
                                    subscription: after,
                                    invoice: None,
                                },
                                changes,
                            ))
                        },
                    )
                    .await
            }
            ChangePreview::Downgrade(_) => {
                billing
                    .commit_once(
                        self.key,
                        "subscriptions.change_plan",
                        &request,
                        |now| async move {
                            let subscription = billing.store.get_subscription(id).await?;
                            let mut changes = ChangeSet::default();
                            let after = billing
                                .decide_into(
                                    &subscription,
                                    &Command::ScheduleDowngrade {
                                        change: change.clone(),
                                    },
                                    now,
                                    &mut changes,
                                )
                                .await?;
                            let effective_at =
                                after.current_period().map_or(now, |period| period.end());
                            Ok((
                                ChangeResult::Scheduled {
                                    subscription: after,
                                    effective_at,
                                },
                                changes,
                            ))
                        },
                    )
                    .await
            }
        }
    }

    /// A command with no other input, in one commit.
    async fn simple(
        &self,
        operation: &str,
        id: SubscriptionId,
        command: Command,
    ) -> Result<Subscription> {
        let billing = self.billing;
        let command = &command;
        billing
            .commit_once(self.key, operation, &ById { id }, |now| async move {
                let subscription = billing.store.get_subscription(id).await?;
                let mut changes = ChangeSet::default();
                let after = billing
                    .decide_into(&subscription, command, now, &mut changes)
                    .await?;
                Ok((after, changes))
            })
            .await
    }

    /// Resume or reactivate: free subscriptions in one commit, paid ones through a charge.
    async fn restart(&self, id: SubscriptionId, purpose: ChargePurpose) -> Result<Subscription> {
        let billing = self.billing;
        let operation = match purpose {
            ChargePurpose::Resume => "subscriptions.resume",
            _ => "subscriptions.reactivate",
        };
        let subscription = billing.store.get_subscription(id).await?;
        let prices = billing.priced_items(&subscription).await?;
        // Restarted within the period it paid for, it continues that period: nothing to bill.
        let paid_up = subscription
            .state()
            .paid_period()
            .is_some_and(|paid| billing.now() < paid.period.end());
        if paid_up || prices.iter().all(|(price, _)| price.is_free()) {
            let command = match purpose {
                ChargePurpose::Resume => Command::Resume {
                    settlement: Settlement::Free,
                },
                _ => Command::Reactivate {
                    settlement: Settlement::Free,
                },
            };
            return self.simple(operation, id, command).await;
        }
        billing
            .charge_flow(
                self.key,
                operation,
                &ById { id },
                |now| async move { billing.restart_intent(id, purpose, now).await },
                |settled| {
                    settled
                        .subscription
                        .clone()
                        .ok_or_else(|| BillingError::not_found(EntityKind::Subscription, id))
                },
            )
            .await
    }
}

impl Billing {
    /// Decide `command` on `subscription` and add the writes to `changes`; the subscription
    /// as stored after the commit.
    pub(super) async fn decide_into(
        &self,
        subscription: &Subscription,
        command: &Command,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Subscription> {
        let decision = self
            .decide_with_plans(|plans| subscription.decide(command, &self.context(plans, now)))
            .await??;
        changes.events.extend(self.envelopes(decision.events, now));
        self.apply_invoice_actions(
            &decision.invoice_actions,
            &decision.subscription,
            now,
            changes,
        )
        .await?;
        let put = Put::of(decision.subscription);
        let stored = put.stored();
        changes.subscriptions.push(put);
        Ok(stored)
    }

    /// A subscription with a fresh checkout link if it waits for checkout.
    pub(super) async fn view(&self, subscription: Subscription) -> Result<SubscriptionView> {
        let checkout_url = if subscription.status() == SubscriptionStatus::PendingPayment {
            let prices = self.priced_items(&subscription).await?;
            Some(
                self.checkout_url(subscription.id(), &prices, self.now())
                    .await?,
            )
        } else {
            None
        };
        Ok(SubscriptionView {
            subscription,
            checkout_url,
        })
    }

    /// The prices of `(price, quantity)` pairs, each of which must exist.
    pub(super) async fn prices_of(&self, items: &[(PriceId, u32)]) -> Result<Vec<(Price, u32)>> {
        let mut prices = Vec::with_capacity(items.len());
        for (index, &(id, quantity)) in items.iter().enumerate() {
            let price = self.store.price(id).await?.ok_or_else(|| {
                commet_core::InvalidField::new(
                    format!("items[{index}].price"),
                    format_args!("{id} does not exist"),
                )
            })?;
            prices.push((price, quantity));
        }
        Ok(prices)
    }

    /// What checkout charges first: nothing for a trial, the items' first period otherwise.
    fn first_charge(
        prices: &[(Price, u32)],
        policy: commet_core::money::RoundingPolicy,
    ) -> Result<Money> {
        let currency = prices
            .first()
            .map(|(price, _)| price.currency())
            .ok_or_else(|| {
                commet_core::InvalidField::new("items", "at least one item is needed")
            })?;
        if prices.iter().any(|(price, _)| price.trial_days() > 0) {
            return Ok(Money::zero(currency));
        }
        let mut total = Money::zero(currency);
        for (price, quantity) in prices {
            let line = price
                .unit_amount()
                .times((*quantity).into(), policy)
                .map_err(commet_core::invoice::InvoiceError::from)?;
            total = total
                .checked_add(line)
                .map_err(commet_core::invoice::InvoiceError::from)?;
        }
        Ok(total)
    }

    /// The checkout link: the provider's hosted page if it has one, commet's signed link
    /// otherwise.
    pub(super) async fn checkout_url(
        &self,
        id: SubscriptionId,
        prices: &[(Price, u32)],
        now: DateTime<Utc>,
    ) -> Result<SignedUrl> {
        let amount = Billing::first_charge(prices, self.config.rounding)?;
        if let Some(hosted) = self.gateway.hosted_checkout_url(id, amount).await? {
            return Ok(SignedUrl::external(hosted));
        }
        self.link(
            Purpose::Checkout,
            &self.config.checkout_base_url,
            &id.to_string(),
            self.config.links.checkout,
            now,
        )
    }

    async fn checkout_offer(
        &self,
        id: SubscriptionId,
        prices: &[(Price, u32)],
        request: &CreateSubscription,
        now: DateTime<Utc>,
    ) -> Result<CheckoutOffer> {
        Ok(CheckoutOffer {
            url: self.checkout_url(id, prices, now).await?,
            amount: Billing::first_charge(prices, self.config.rounding)?,
            expires_at: self.config.checkout_expires_after.map(|ttl| now + ttl),
            success_url: request.success_url.clone(),
            cancel_url: request.cancel_url.clone(),
        })
    }

    /// The outstanding invoices of a subscription (refused while one is being charged).
    pub(super) async fn open_invoices(
        &self,
        subscription: &Subscription,
    ) -> Result<Vec<commet_core::ids::InvoiceId>> {
        self.ensure_no_charge_in_flight(subscription).await?;
        Ok(self
            .outstanding_invoices(subscription.id())
            .await?
            .iter()
            .map(Invoice::id)
            .collect())
    }

    pub(super) async fn outstanding_invoices(&self, id: SubscriptionId) -> Result<Vec<Invoice>> {
        let mut invoices = Vec::new();
        let mut request = PageRequest::first(crate::store::MAX_PAGE);
        loop {
            let page = self
                .store
                .invoices(
                    InvoiceQuery {
                        customer: None,
                        subscription: Some(id),
                        status: Some(InvoiceStatus::Outstanding),
                    },
                    request.clone(),
                )
                .await?;
            invoices.extend(page.items);
            match page.next {
                Some(cursor) => request.after = Some(cursor),
                None => return Ok(invoices),
            }
        }
    }

    /// Refuse with [`BillingError::PaymentInProgress`] while a charge for the subscription is
    /// recorded but not settled.
    pub(super) async fn ensure_no_charge_in_flight(
        &self,
        subscription: &Subscription,
    ) -> Result<()> {
        for invoice in self.outstanding_invoices(subscription.id()).await? {
            let attempts = self.store.payment_attempts(invoice.id()).await?;
            if attempts
                .iter()
                .any(commet_core::payment::PaymentAttempt::is_pending)
            {
                return Err(BillingError::PaymentInProgress {
                    subscription: subscription.id().to_string(),
                });
            }
        }
        Ok(())
    }

    /// The proration preview of a change to `to` now (a trial credits nothing).
    async fn preview(
        &self,
        subscription: &Subscription,
        to: &[(Price, u32)],
        now: DateTime<Utc>,
    ) -> Result<ChangePreview> {
        let customer = self.store.get_customer(subscription.customer()).await?;
        let from = self.priced_items(subscription).await?;
        let trialing = matches!(subscription.state(), SubscriptionState::Trialing(_));
        let period = subscription.current_period().ok_or_else(|| {
            commet_core::subscription::SubscriptionError::IllegalTransition(
                commet_core::subscription::IllegalTransition {
                    from: Some(subscription.status()),
                    trigger: commet_core::subscription::Trigger::Upgrade,
                },
            )
        })?;
        Ok(proration::PlanChange {
            period,
            at: now,
            from: if trialing { &[] } else { &from },
            to,
            currency: subscription.currency(),
            available_credit: customer.credit(subscription.currency()),
            policy: self.config.rounding,
        }
        .preview()?)
    }

    /// The intent to charge an upgrade (or a trial's conversion) to `to`.
    async fn upgrade_intent(
        &self,
        id: SubscriptionId,
        to: &[(Price, u32)],
        now: DateTime<Utc>,
    ) -> Result<Intent> {
        let subscription = self.store.get_subscription(id).await?;
        self.ensure_no_charge_in_flight(&subscription).await?;
        let ChangePreview::Upgrade(upgrade) = self.preview(&subscription, to, now).await? else {
            return Err(
                commet_core::subscription::SubscriptionError::IllegalTransition(
                    commet_core::subscription::IllegalTransition {
                        from: Some(subscription.status()),
                        trigger: commet_core::subscription::Trigger::Upgrade,
                    },
                )
                .into(),
            );
        };
        // Checked before anything is charged, as the decision will check it once paid.
        subscription.check_immediate_plan_change()?;
        let invoice = upgrade.into_invoice(self.ids.next(now), subscription.customer(), id, now)?;
        let customer = self.store.get_customer(subscription.customer()).await?;
        let mut changes = ChangeSet::default();
        let attempt = self
            .new_invoice_intent(
                invoice,
                &subscription,
                &customer,
                ChargePurpose::PlanChange,
                now,
                &mut changes,
            )
            .await?;
        Ok(Intent { changes, attempt })
    }

    /// The intent to charge the new period of a resumed or reactivated subscription.
    async fn restart_intent(
        &self,
        id: SubscriptionId,
        purpose: ChargePurpose,
        now: DateTime<Utc>,
    ) -> Result<Intent> {
        let subscription = self.store.get_subscription(id).await?;
        let trigger = match purpose {
            ChargePurpose::Resume => commet_core::subscription::Trigger::Resume,
            _ => commet_core::subscription::Trigger::Reactivate,
        };
        commet_core::subscription::transition(Some(subscription.status()), trigger)
            .map_err(commet_core::subscription::SubscriptionError::from)?;
        self.ensure_no_charge_in_flight(&subscription).await?;
        let items = self.priced_items(&subscription).await?;
        let period = BillingCycle::new(now, subscription.interval())
            .period(0)
            .map_err(commet_core::subscription::SubscriptionError::from)?;
        // Not a renewal (renewals are `recurring`, one per period start): the subscription
        // starts again, so the new period is billed as a reactivation.
        let mut invoice = Invoice::draft(NewInvoice {
            id: self.ids.next(now),
            customer: subscription.customer(),
            subscription: Some(id),
            currency: subscription.currency(),
            kind: InvoiceKind::Reactivation,
            period: Some(period),
            created_at: now,
            memo: None,
            metadata: BTreeMap::new(),
        })?;
        for line in item_lines(
            &items,
            subscription.currency(),
            period,
            self.config.rounding,
        )? {
            invoice.add_line(line)?;
        }
        let mut changes = ChangeSet::default();
        let customer = self.store.get_customer(subscription.customer()).await?;
        let attempt = self
            .new_invoice_intent(
                invoice,
                &subscription,
                &customer,
                purpose,
                now,
                &mut changes,
            )
            .await?;
        Ok(Intent { changes, attempt })
    }

    /// The intent to charge a past-due subscription's invoice again now.
    pub(super) async fn retry_intent_for(
        &self,
        id: SubscriptionId,
        now: DateTime<Utc>,
    ) -> Result<Intent> {
        let subscription = self.store.get_subscription(id).await?;
        let SubscriptionState::PastDue(past_due) = subscription.state() else {
            return Err(
                commet_core::subscription::SubscriptionError::IllegalTransition(
                    commet_core::subscription::IllegalTransition {
                        from: Some(subscription.status()),
                        trigger: commet_core::subscription::Trigger::PaymentRecovered,
                    },
                )
                .into(),
            );
        };
        self.ensure_no_charge_in_flight(&subscription).await?;
        let invoice = self.store.get_invoice(past_due.dunning.invoice).await?;
        let customer = self.store.get_customer(subscription.customer()).await?;
        let attempt = next_attempt_number(&self.store.payment_attempts(invoice.id()).await?);
        let mut changes = ChangeSet::default();
        let attempt = self.retry_intent(
            &invoice,
            &subscription,
            &customer,
            ChargePurpose::DunningRetry,
            attempt,
            now,
            &mut changes,
        );
        Ok(Intent { changes, attempt })
    }

    /// Retry now every past-due subscription of a customer who just put a payment method on
    /// file. Declines are recorded (dunning goes on) and not reported as errors.
    pub(super) async fn retry_past_due_of(&self, customer: CustomerId) -> Result<()> {
        let page = self
            .store
            .subscriptions(
                SubscriptionQuery {
                    customer: Some(customer),
                    status: Some(SubscriptionStatus::PastDue),
                },
                PageRequest::first(crate::store::MAX_PAGE),
            )
            .await?;
        for subscription in page.items {
            let id = subscription.id();
            let attempt = self
                .retrying("retrying a past-due invoice", || async move {
                    let intent = self.retry_intent_for(id, self.now()).await?;
                    self.store.commit(intent.changes).await?;
                    Ok(intent.attempt)
                })
                .await;
            match attempt {
                Ok(attempt) => match self.charge_and_settle(&attempt, None).await {
                    // A decline is recorded by the settlement; a gateway error leaves the
                    // attempt pending for recovery.
                    Ok(_) | Err(BillingError::Gateway(_)) => {}
                    Err(error) => return Err(error),
                },
                Err(BillingError::PaymentInProgress { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// The next attempt number for an invoice: one more than the attempts recorded.
pub(super) fn next_attempt_number(attempts: &[commet_core::payment::PaymentAttempt]) -> u32 {
    attempts
        .iter()
        .map(|attempt| attempt.attempt)
        .max()
        .map_or(1, |last| last.saturating_add(1))
}
