//! Charges: record the intent, call the gateway, settle the outcome.
//!
//! Every charge goes through the same three steps, whether an API call (checkout, an upgrade,
//! resume, reactivation, a new payment method) or `run_due` (trial ends, renewals, dunning
//! retries) asked for it, and whether it is made for the first time or recovered after a crash:
//!
//! 1. **intent**: one commit finalizes and numbers the invoice (customer credit applied and
//!    debited), records a `pending` attempt, and claims the subscription (its version moves,
//!    so a concurrent writer conflicts instead of racing);
//! 2. **charge**: the gateway is called with the key `{invoice}:{attempt}` (a zero amount, all
//!    covered by credit, is settled without a call; no payment method on file is a hard decline
//!    `payment_method_missing`);
//! 3. **settle**: one commit records the outcome, the invoice's new status, the subscription's
//!    transition for the attempt's [`ChargePurpose`] and every event.

use chrono::{DateTime, Utc};

use super::{Billing, BillingError, Result};
use crate::gateway::{ChargeRequest, GatewayError, PaymentOutcome};
use crate::store::{ChangeSet, EntityKind, InvoiceWrite, Put, StoreExt};
use commet_core::catalog::Price;
use commet_core::customer::Customer;
use commet_core::dunning::{DeclineClass, DunningStep, FailureHistory};
use commet_core::event::Event;
use commet_core::event::payload::PaymentReceivedData;
use commet_core::invoice::{Invoice, InvoiceStatus, LineKind};
use commet_core::payment::{AttemptStatus, ChargePurpose, PaymentAttempt};
use commet_core::subscription::SubscriptionError as Refused;
use commet_core::subscription::{
    ChargeOutcome, Command, FailedCharge, InvoiceAction, InvoiceSummary, PaymentFailure,
    PlanChange, PricedItems, Settlement, Subscription, SubscriptionState,
};
use commet_core::token::Purpose;

/// The code of the decline recorded when the customer has no payment method on file.
pub(super) const NO_PAYMENT_METHOD: &str = "payment_method_missing";

/// What the gateway (or the absence of anything to charge) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Charged {
    /// Paid; `None` when nothing was charged (a zero amount).
    Paid { payment_id: Option<String> },
    /// Declined.
    Declined {
        code: String,
        message: String,
        class: DeclineClass,
    },
}

/// A settled charge: the state after it.
#[derive(Debug, Clone)]
pub(super) struct Settled {
    pub subscription: Option<Subscription>,
    pub invoice: Invoice,
    pub charged: Charged,
}

impl Settled {
    /// The settled charge as the answer to an API call: declined is an error.
    pub(super) fn into_paid(self) -> Result<Settled> {
        match &self.charged {
            Charged::Paid { .. } => Ok(self),
            Charged::Declined { code, message, .. } => Err(BillingError::PaymentDeclined {
                code: code.clone(),
                message: message.clone(),
            }),
        }
    }
}

/// A recorded charge attempt, with its invoice and subscription as stored when known (a batch
/// of due work knows them from its own intent commit, and need not read them back).
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    /// The attempt, as stored.
    pub attempt: PaymentAttempt,
    /// Its invoice, as stored, if known.
    pub invoice: Option<Invoice>,
    /// Its subscription, as stored, if known.
    pub subscription: Option<Subscription>,
}

impl Recorded {
    /// An attempt just read: the rest is read when settling.
    pub(super) fn read(attempt: PaymentAttempt) -> Recorded {
        Recorded {
            attempt,
            invoice: None,
            subscription: None,
        }
    }
}

/// What an intent commit writes for one charge: the writes, and the attempt recorded.
#[derive(Debug)]
pub(super) struct Intent {
    /// The invoice (new, numbered in the commit), the attempt, the claimed subscription, and
    /// the customer if their credit or payment method moved.
    pub changes: ChangeSet,
    /// The pending attempt.
    pub attempt: PaymentAttempt,
}

impl Billing {
    /// The prices of a subscription's items, with their quantities.
    pub(super) async fn priced_items(
        &self,
        subscription: &Subscription,
    ) -> Result<Vec<(Price, u32)>> {
        let mut items = Vec::with_capacity(subscription.items().len());
        for item in subscription.items() {
            items.push((self.price(item.price).await?, item.quantity));
        }
        Ok(items)
    }

    /// The customer with `id` as `changes` will leave them: taken from `changes` or loaded
    /// (not added).
    pub(super) async fn customer_view(
        &self,
        changes: &ChangeSet,
        id: commet_core::ids::CustomerId,
    ) -> Result<Customer> {
        match changes.customers.iter().find(|put| put.value.id() == id) {
            Some(put) => Ok(put.value.clone()),
            None => Ok(self.store.get_customer(id).await?),
        }
    }

    /// Claim a subscription in `changes`: written back unchanged so its version moves and a
    /// concurrent writer conflicts (unless `changes` already writes it).
    pub(super) fn claim(subscription: &Subscription, changes: &mut ChangeSet) {
        if !changes
            .subscriptions
            .iter()
            .any(|put| put.value.id() == subscription.id())
        {
            changes.subscriptions.push(Put::of(subscription.clone()));
        }
    }

    /// Add to `changes` the intent to charge a new invoice (a draft, finalized here with the
    /// customer's credit applied and moved, due at once) for `subscription`; returns the
    /// pending attempt. `customer` is the invoice's customer as `changes` leaves them.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn new_invoice_intent(
        &self,
        mut invoice: Invoice,
        subscription: &Subscription,
        customer: &Customer,
        purpose: ChargePurpose,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<PaymentAttempt> {
        invoice.apply_credit(customer.credit(invoice.currency()))?;
        invoice.finalize(now, now)?;
        let change = invoice
            .totals()
            .credit_issued()
            .checked_sub(invoice.credit_applied())
            .map_err(commet_core::invoice::InvoiceError::from)?;
        if !change.is_zero() {
            self.customer_in(changes, invoice.customer())
                .await?
                .adjust_credit(change, now)?;
        }
        let attempt = self.pending_attempt(&invoice, customer, purpose, 1, now);
        changes.invoices.push(InvoiceWrite::numbered(
            invoice,
            self.config.invoice_series.clone(),
        ));
        changes.payment_attempts.push(Put::of(attempt.clone()));
        Billing::claim(subscription, changes);
        Ok(attempt)
    }

    /// Add to `changes` the intent to charge an open invoice again (attempt `attempt`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn retry_intent(
        &self,
        invoice: &Invoice,
        subscription: &Subscription,
        customer: &Customer,
        purpose: ChargePurpose,
        attempt: u32,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> PaymentAttempt {
        let attempt = self.pending_attempt(invoice, customer, purpose, attempt, now);
        changes.payment_attempts.push(Put::of(attempt.clone()));
        Billing::claim(subscription, changes);
        attempt
    }

    fn pending_attempt(
        &self,
        invoice: &Invoice,
        customer: &Customer,
        purpose: ChargePurpose,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> PaymentAttempt {
        PaymentAttempt {
            id: self.ids.next(now),
            invoice: invoice.id(),
            customer: invoice.customer(),
            subscription: invoice.subscription(),
            purpose,
            attempt,
            amount: invoice.amount_due(),
            payment_method: customer.payment_method().map(str::to_owned),
            status: AttemptStatus::Pending,
            created_at: now,
            completed_at: None,
            version: 0,
        }
    }

    /// Call the gateway for a recorded attempt (or settle it without a call).
    pub(super) async fn charge(&self, attempt: &PaymentAttempt) -> Result<Charged, GatewayError> {
        if attempt.amount.is_zero() {
            return Ok(Charged::Paid { payment_id: None });
        }
        let Some(payment_method) = &attempt.payment_method else {
            return Ok(Charged::Declined {
                code: NO_PAYMENT_METHOD.into(),
                message: "No payment method is on file.".into(),
                class: DeclineClass::Hard,
            });
        };
        let request = ChargeRequest {
            idempotency_key: attempt.idempotency_key(),
            amount: attempt.amount,
            customer: attempt.customer,
            payment_method: payment_method.clone(),
            description: format!(
                "Invoice {} ({})",
                attempt.invoice,
                describe(attempt.purpose)
            ),
            invoice: attempt.invoice,
            subscription: attempt.subscription,
            metadata: std::collections::BTreeMap::new(),
        };
        Ok(match self.gateway.charge(&request).await? {
            PaymentOutcome::Paid { payment_id } => Charged::Paid {
                payment_id: Some(payment_id),
            },
            PaymentOutcome::Declined {
                code,
                message,
                class,
            } => Charged::Declined {
                code,
                message,
                class,
            },
        })
    }

    /// Charge a recorded attempt and settle it. A gateway error leaves it pending (recovered by
    /// a later run with the same key).
    pub(super) async fn charge_and_settle(
        &self,
        attempt: &PaymentAttempt,
        finish: Option<&super::Finish<'_>>,
    ) -> Result<Settled> {
        let charged = self.charge(attempt).await?;
        self.settle(&attempt.idempotency_key(), &charged, finish)
            .await
    }

    /// Record the outcome of the attempt with `key` in its own commit, re-run on conflicts.
    /// `finish` adds an API call's idempotency record when the charge is paid.
    pub(super) async fn settle(
        &self,
        key: &str,
        charged: &Charged,
        finish: Option<&super::Finish<'_>>,
    ) -> Result<Settled> {
        self.retrying("settling a charge", || async move {
            let now = self.now();
            let mut changes = ChangeSet::default();
            let settled = self.settle_into(key, charged, now, &mut changes).await?;
            if let (Some(finish), Charged::Paid { .. }) = (finish, charged) {
                finish.attach(self, &mut changes, &settled, now)?;
            }
            if !changes.is_empty() {
                self.store.commit(changes).await?;
            }
            Ok(settled)
        })
        .await
    }

    /// Add the outcome of the attempt with `key` to `changes`: the attempt, the invoice, the
    /// subscription's transition for its purpose, the events. An attempt that is no longer
    /// pending adds nothing. Returns the state as `changes` will leave it.
    pub(super) async fn settle_into(
        &self,
        key: &str,
        charged: &Charged,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Settled> {
        let attempt = self
            .store
            .payment_attempt(key)
            .await?
            .ok_or_else(|| BillingError::not_found(EntityKind::PaymentAttempt, key))?;
        self.settle_recorded_into(Recorded::read(attempt), charged, now, changes)
            .await
    }

    /// [`settle_into`](Billing::settle_into) for an attempt already read, with its invoice and
    /// subscription when known; what is not known is read. Whatever was known must be as
    /// stored: the writes expect its versions, so a commit made on state that moved since
    /// fails with a conflict.
    pub(super) async fn settle_recorded_into(
        &self,
        recorded: Recorded,
        charged: &Charged,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Settled> {
        let Recorded {
            mut attempt,
            invoice,
            subscription,
        } = recorded;
        let subscription_known = subscription.is_some();
        let invoice = match invoice {
            Some(invoice) => invoice,
            None => self.store.get_invoice(attempt.invoice).await?,
        };
        let subscription = match (subscription, attempt.subscription) {
            (Some(subscription), _) => Some(subscription),
            (None, Some(id)) => Some(self.store.get_subscription(id).await?),
            (None, None) => None,
        };
        if !attempt.is_pending() {
            return Ok(Settled {
                subscription,
                invoice,
                charged: charged.clone(),
            });
        }
        attempt.status = match charged {
            Charged::Paid { payment_id } => AttemptStatus::Succeeded {
                payment_id: payment_id.clone(),
            },
            Charged::Declined { code, message, .. } => AttemptStatus::Failed {
                code: code.clone(),
                message: message.clone(),
            },
        };
        attempt.completed_at = Some(now);
        let invoice_id = invoice.id();
        let next = match charged {
            Charged::Paid { payment_id } => {
                self.settle_paid_into(
                    subscription.as_ref(),
                    &attempt,
                    invoice,
                    payment_id.as_ref(),
                    now,
                    changes,
                )
                .await?
            }
            Charged::Declined {
                code,
                message,
                class,
            } => {
                let failure = PaymentFailure {
                    code: code.clone(),
                    message: message.clone(),
                };
                self.settle_declined_into(
                    subscription.as_ref(),
                    &attempt,
                    invoice,
                    failure,
                    *class,
                    now,
                    changes,
                )
                .await?
            }
        };
        changes.payment_attempts.push(Put::of(attempt));
        let mut written = next
            .clone()
            .filter(|after| Some(after) != subscription.as_ref());
        if written.is_none() && subscription_known {
            // Not read now: written back even if unchanged, so that a commit decided on it after
            // it moved conflicts instead of going through.
            written.clone_from(&subscription);
        }
        let stored_subscription = match &written {
            Some(after) => Some(Put::of(after.clone()).stored()),
            None => subscription,
        };
        changes.subscriptions.extend(written.map(Put::of));
        let stored_invoice = changes
            .invoices
            .iter()
            .find(|w| w.put.value.id() == invoice_id)
            .map(|w| w.put.stored())
            .ok_or_else(|| BillingError::not_found(EntityKind::Invoice, invoice_id))?;
        Ok(Settled {
            subscription: stored_subscription,
            invoice: stored_invoice,
            charged: charged.clone(),
        })
    }

    /// Settle a paid attempt into `changes`: the invoice paid, the subscription's transition
    /// for the attempt's purpose. Returns the subscription after it.
    async fn settle_paid_into(
        &self,
        subscription: Option<&Subscription>,
        attempt: &PaymentAttempt,
        mut invoice: Invoice,
        payment_id: Option<&String>,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Option<Subscription>> {
        let collectable = matches!(
            invoice.status(),
            InvoiceStatus::Outstanding | InvoiceStatus::Uncollectible
        );
        if collectable {
            invoice.mark_paid(now, invoice.amount_due())?;
        }
        let summary = InvoiceSummary::of(&invoice, payment_id.cloned())?;
        changes.invoices.push(InvoiceWrite::of(invoice.clone()));
        let decided = match subscription {
            Some(subscription) if collectable => {
                self.decide_paid(
                    subscription,
                    attempt.purpose,
                    &invoice,
                    summary.clone(),
                    now,
                    changes,
                )
                .await?
            }
            _ => None,
        };
        if decided.is_none() {
            // Money taken, but the subscription moved on meanwhile (canceled during the charge
            // ...): record and announce the payment anyway.
            changes.events.push(self.envelope(
                Event::PaymentReceived(self.payment_received(&summary, &invoice, now)),
                now,
            ));
        }
        Ok(decided.or_else(|| subscription.cloned()))
    }

    /// Settle a declined attempt into `changes`: dunning for a period charge; for an immediate
    /// change, its invoice voided and its credit returned. Returns the subscription after it.
    #[allow(clippy::too_many_arguments)]
    async fn settle_declined_into(
        &self,
        subscription: Option<&Subscription>,
        attempt: &PaymentAttempt,
        invoice: Invoice,
        failure: PaymentFailure,
        class: DeclineClass,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Option<Subscription>> {
        let invoice_id = invoice.id();
        let outstanding = invoice.status() == InvoiceStatus::Outstanding;
        changes.invoices.push(InvoiceWrite::of(invoice.clone()));
        let next = match subscription {
            Some(subscription) => {
                self.decide_declined(
                    subscription,
                    attempt,
                    &invoice,
                    failure,
                    class,
                    now,
                    changes,
                )
                .await?
            }
            None => None,
        };
        let immediate = matches!(
            attempt.purpose,
            ChargePurpose::PlanChange | ChargePurpose::Resume | ChargePurpose::Reactivation
        );
        if immediate && outstanding {
            // The change did not happen: its invoice is void, its credit returned.
            let invoice = invoice_in(changes, invoice_id)?;
            invoice.void(now)?;
            let returned = invoice.credit_applied();
            if returned.is_positive() {
                self.customer_in(changes, attempt.customer)
                    .await?
                    .adjust_credit(returned, now)?;
            }
        }
        Ok(next)
    }

    /// The customer with `id` as the change set will write it: taken from `changes`, or loaded
    /// and added.
    pub(super) async fn customer_in<'c>(
        &self,
        changes: &'c mut ChangeSet,
        id: commet_core::ids::CustomerId,
    ) -> Result<&'c mut Customer> {
        let index = match changes.customers.iter().position(|p| p.value.id() == id) {
            Some(index) => index,
            None => {
                let customer = self.store.get_customer(id).await?;
                changes.customers.push(Put::of(customer));
                changes.customers.len() - 1
            }
        };
        changes
            .customers
            .get_mut(index)
            .map(|put| &mut put.value)
            .ok_or_else(|| BillingError::not_found(EntityKind::Customer, id))
    }

    /// The invoice with `id` as the change set will write it: taken from `changes`, or loaded
    /// and added.
    pub(super) async fn invoice_in<'c>(
        &self,
        changes: &'c mut ChangeSet,
        id: commet_core::ids::InvoiceId,
    ) -> Result<&'c mut Invoice> {
        if !changes.invoices.iter().any(|w| w.put.value.id() == id) {
            let invoice = self.store.get_invoice(id).await?;
            changes.invoices.push(InvoiceWrite::of(invoice));
        }
        invoice_in(changes, id)
    }

    /// The subscription after a paid charge for `purpose`, its events and invoice actions added
    /// to `changes`; `None` if the subscription can no longer take that transition.
    async fn decide_paid(
        &self,
        subscription: &Subscription,
        purpose: ChargePurpose,
        invoice: &Invoice,
        summary: InvoiceSummary,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Option<Subscription>> {
        let settlement = Settlement::Invoice(summary.clone());
        let command = match purpose {
            ChargePurpose::Checkout => {
                Command::CompleteCheckout(commet_core::subscription::CheckoutCompletion::Paid {
                    invoice: summary,
                })
            }
            ChargePurpose::TrialEnd => Command::EndTrial(ChargeOutcome::Paid { settlement }),
            ChargePurpose::Renewal => Command::Renew(ChargeOutcome::Paid { settlement }),
            ChargePurpose::DunningRetry => Command::Recover { invoice: summary },
            ChargePurpose::PlanChange => {
                let change = PlanChange {
                    items: self.items_billed_by(invoice).await?,
                };
                if matches!(subscription.state(), SubscriptionState::Trialing(_)) {
                    Command::ConvertTrial { change, settlement }
                } else {
                    Command::Upgrade { change, settlement }
                }
            }
            ChargePurpose::Resume => Command::Resume { settlement },
            ChargePurpose::Reactivation => Command::Reactivate { settlement },
        };
        self.apply_decision(subscription, &command, now, changes)
            .await
    }

    /// The subscription after a declined charge: dunning for a period charge, nothing for
    /// checkout and the immediate changes (their caller gets the decline).
    #[allow(clippy::too_many_arguments)]
    async fn decide_declined(
        &self,
        subscription: &Subscription,
        attempt: &PaymentAttempt,
        invoice: &Invoice,
        failure: PaymentFailure,
        class: DeclineClass,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Option<Subscription>> {
        let (first_failed_at, failed_before) = match (attempt.purpose, subscription.state()) {
            (ChargePurpose::TrialEnd | ChargePurpose::Renewal, _) => (now, 0),
            (ChargePurpose::DunningRetry, SubscriptionState::PastDue(past_due)) => (
                past_due.dunning.first_failed_at,
                past_due.dunning.failed_attempts,
            ),
            _ => return Ok(Some(subscription.clone())),
        };
        let history = FailureHistory {
            first_failed_at,
            failed_attempts: failed_before + 1,
            last_decline: class,
        };
        let step = self.config.dunning.next_step(&history, now);
        let recovery_url = Some(self.link(
            Purpose::Recovery,
            &self.config.recovery_base_url,
            &subscription.id().to_string(),
            self.config.links.recovery,
            now,
        )?);
        let summary = InvoiceSummary::of(invoice, None)?;
        let failed = |next| FailedCharge {
            invoice: summary.clone(),
            failure: failure.clone(),
            next,
            recovery_url: recovery_url.clone(),
        };
        // When no retry is left, the failure is recorded with the deadline "now" and dunning is
        // exhausted in the same commit.
        let recorded_step = match step {
            DunningStep::Exhausted(_) => DunningStep::WaitForPaymentMethod { exhausts_at: now },
            other => other,
        };
        let command = match attempt.purpose {
            ChargePurpose::TrialEnd => {
                Command::EndTrial(ChargeOutcome::Failed(failed(recorded_step)))
            }
            ChargePurpose::Renewal => Command::Renew(ChargeOutcome::Failed(failed(recorded_step))),
            _ => match step {
                DunningStep::Exhausted(policy) => Command::ExhaustDunning {
                    final_failure: Some(failure.clone()),
                    policy,
                },
                _ => Command::RetryFailed(failed(recorded_step)),
            },
        };
        let Some(after) = self
            .apply_decision(subscription, &command, now, changes)
            .await?
        else {
            return Ok(None);
        };
        if let (DunningStep::Exhausted(policy), ChargePurpose::TrialEnd | ChargePurpose::Renewal) =
            (step, attempt.purpose)
        {
            let exhaust = Command::ExhaustDunning {
                final_failure: None,
                policy,
            };
            return self.apply_decision(&after, &exhaust, now, changes).await;
        }
        Ok(Some(after))
    }

    /// Decide `command` on `subscription`, adding its events and invoice actions to `changes`.
    /// `None` if the subscription's state refuses it (it moved on meanwhile); invalid input
    /// and internal errors are errors.
    pub(super) async fn apply_decision(
        &self,
        subscription: &Subscription,
        command: &Command,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<Option<Subscription>> {
        let decided = self
            .decide_with_plans(|plans| subscription.decide(command, &self.context(plans, now)))
            .await?;
        let decision = match decided {
            Ok(decision) => decision,
            // The subscription's state no longer allows it (it moved on while the work or the
            // charge was under way): nothing to decide.
            Err(
                Refused::IllegalTransition(_)
                | Refused::NotDue { .. }
                | Refused::CancellationPending { .. }
                | Refused::PlanChangePending { .. }
                | Refused::NothingTo { .. }
                | Refused::TooLate { .. },
            ) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        changes.events.extend(self.envelopes(decision.events, now));
        self.apply_invoice_actions(
            &decision.invoice_actions,
            &decision.subscription,
            now,
            changes,
        )
        .await?;
        Ok(Some(decision.subscription))
    }

    /// Apply a decision's invoice actions to the invoices (as `changes` will write them),
    /// returning a voided invoice's credit and announcing the void.
    pub(super) async fn apply_invoice_actions(
        &self,
        actions: &[InvoiceAction],
        subscription: &Subscription,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<()> {
        for action in actions {
            match *action {
                InvoiceAction::Void(id) => {
                    let invoice = self.invoice_in(changes, id).await?;
                    invoice.void(now)?;
                    let (customer, returned) = (invoice.customer(), invoice.credit_applied());
                    let summary = InvoiceSummary::of(invoice, None)?;
                    if returned.is_positive() {
                        self.customer_in(changes, customer)
                            .await?
                            .adjust_credit(returned, now)?;
                    }
                    changes.events.push(self.envelope(
                        Event::InvoiceVoided(commet_core::subscription::invoice_event_data(
                            &summary,
                            subscription.customer(),
                            Some(subscription.id()),
                        )),
                        now,
                    ));
                }
                InvoiceAction::MarkPaidOutOfBand(id) => {
                    let invoice = self.invoice_in(changes, id).await?;
                    invoice.mark_paid(now, invoice.amount_due())?;
                }
                InvoiceAction::MarkUncollectible(id) => {
                    self.invoice_in(changes, id)
                        .await?
                        .mark_uncollectible(now)?;
                }
            }
        }
        Ok(())
    }

    /// The items an upgrade's invoice bills: its `plan_base` and `seats` lines.
    async fn items_billed_by(&self, invoice: &Invoice) -> Result<PricedItems> {
        let mut items = Vec::new();
        for line in invoice.lines() {
            if !matches!(line.kind(), LineKind::PlanBase | LineKind::Seats) {
                continue;
            }
            let Some(price) = line.price() else { continue };
            let quantity = Some(line.quantity())
                .filter(|q| q.fract().is_zero())
                .and_then(|q| u32::try_from(q).ok())
                .ok_or_else(|| commet_core::InvalidField::new("quantity", "is not a seat count"))?;
            items.push((self.price(price).await?, quantity));
        }
        Ok(PricedItems::new(&items)?)
    }

    fn payment_received(
        &self,
        summary: &InvoiceSummary,
        invoice: &Invoice,
        now: DateTime<Utc>,
    ) -> PaymentReceivedData {
        PaymentReceivedData {
            invoice_id: summary.id,
            invoice_number: summary.number.clone(),
            invoice_total: summary.total.minor_units(),
            customer_id: invoice.customer(),
            subscription_id: invoice.subscription(),
            payment_transaction_id: summary.payment_id.clone(),
            provider: summary
                .payment_id
                .as_ref()
                .map(|_| self.gateway.name().to_owned()),
            gross_amount: summary.amount_paid.minor_units(),
            currency: summary.total.currency(),
            paid_at: now,
        }
    }
}

/// The invoice with `id` in a change set.
fn invoice_in(changes: &mut ChangeSet, id: commet_core::ids::InvoiceId) -> Result<&mut Invoice> {
    changes
        .invoices
        .iter_mut()
        .find(|w| w.put.value.id() == id)
        .map(|w| &mut w.put.value)
        .ok_or_else(|| BillingError::not_found(EntityKind::Invoice, id))
}

fn describe(purpose: ChargePurpose) -> &'static str {
    match purpose {
        ChargePurpose::Checkout => "checkout",
        ChargePurpose::TrialEnd => "first charge after the trial",
        ChargePurpose::Renewal => "renewal",
        ChargePurpose::DunningRetry => "retry",
        ChargePurpose::PlanChange => "plan change",
        ChargePurpose::Resume => "resume",
        ChargePurpose::Reactivation => "reactivation",
    }
}
