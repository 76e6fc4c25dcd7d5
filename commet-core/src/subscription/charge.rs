//! Charges: what a subscription must charge for, and what the charge's result does. See
//! [charges](super#charges).

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::command::{
    ChargeOutcome, CheckoutCompletion, Command, FailedCharge, PlanChange, Settlement,
};
use super::decision::{Context, Decision, InvoiceAction, SubscriptionError, void};
use super::state::{ChargeInFlight, PaymentFailure, SubscriptionState};
use super::transition::{IllegalTransition, Trigger, transition};
use super::{PricedItems, Subscription};
use crate::InvalidField;
use crate::calendar::{BillingCycle, Period};
use crate::catalog::Price;
use crate::customer::Customer;
use crate::dunning::{DunningStep, FailureHistory};
use crate::event::Event;
use crate::event::payload::PaymentReceivedData;
use crate::invoice::{
    Invoice, InvoiceKind, InvoiceParties, InvoiceStatus, InvoiceSummary, LineKind, PeriodInvoice,
    Totals, item_lines,
};
use crate::money::Money;
use crate::payment::{ChargePurpose, ChargeResult, PaymentAttempt};
use crate::proration::{self, ChangePreview};
use crate::token::Purpose;

/// A charge to make: what the engine records in one commit before it asks the payment
/// provider. See [charges](super#charges).
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// The subscription with the charge recorded as in flight (written in the same commit, so a
    /// concurrent writer conflicts instead of racing).
    pub subscription: Subscription,
    /// The invoice charged: finalized, with the customer's credit applied.
    pub invoice: Invoice,
    /// True if the invoice is new (the commit numbers it); false for an open invoice charged
    /// again (a retry, or a checkout after a declined first attempt).
    pub new_invoice: bool,
    /// The pending attempt; the provider is called with its idempotency key.
    pub attempt: PaymentAttempt,
    /// The customer, if the charge changed them (credit applied to a new invoice).
    pub customer: Option<Customer>,
}

/// What a request comes to: decided now, or a charge to make first.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // an answer, built and moved once
pub enum Resolution {
    /// Nothing to charge: commit this decision.
    Decided(Decision),
    /// Charge first; [`Subscription::settle`] decides once the result is known.
    ChargeFirst(Charge),
}

/// A charge's result, decided: everything to commit. See [`Subscription::settle`].
#[derive(Debug, Clone, PartialEq)]
pub struct SettledCharge {
    /// The subscription after the result (no charge in flight any more).
    pub subscription: Subscription,
    /// The attempt, completed.
    pub attempt: PaymentAttempt,
    /// The invoice after the result: paid; unchanged (a declined checkout or period charge,
    /// collected again later); voided (a declined immediate change); uncollectible (dunning
    /// exhausted).
    pub invoice: Invoice,
    /// The customer, if the result changed them (credit given back with a voided invoice).
    pub customer: Option<Customer>,
    /// The rows of the transition table applied, in order: none for a declined checkout or
    /// immediate change, two when a failed charge exhausts dunning.
    pub triggers: Vec<Trigger>,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// For a paid charge only: the subscription refused the transition the payment was for,
    /// and why. The payment is recorded (invoice paid, `payment.received`) all the same: money
    /// that was taken is never lost. (The charge in flight blocks every other command, so this
    /// does not happen unless stored data was changed by hand.)
    pub refused: Option<SubscriptionError>,
}

impl SettledCharge {
    /// True if the charge was paid.
    #[must_use]
    pub fn is_paid(&self) -> bool {
        matches!(
            self.attempt.status,
            crate::payment::AttemptStatus::Succeeded { .. }
        )
    }
}

/// What a checkout page shows. See [`Subscription::checkout_terms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutTerms {
    /// What completing checkout charges now (zero for a trial).
    pub amount_due_now: Money,
    /// When the trial would end, for a price with a trial.
    pub trial_ends_at: Option<DateTime<Utc>>,
}

/// What checkout charges for `items` now: nothing for a price with a trial; otherwise the open
/// first invoice's amount due if an earlier attempt left one, else the first period's total
/// less the customer's credit. The one answer for the `checkout.ready` event, the checkout
/// page and the charge itself.
pub fn first_charge(
    items: &[(Price, u32)],
    customer: &Customer,
    open_first: Option<&Invoice>,
    context: &Context<'_>,
) -> Result<Money, SubscriptionError> {
    let priced = PricedItems::new(items)?;
    if trial_days(items) > 0 {
        return Ok(Money::zero(priced.currency));
    }
    if let Some(open) = open_first {
        return Ok(open.amount_due());
    }
    let period = BillingCycle::new(context.now, priced.interval).period(0)?;
    let lines = item_lines(items, priced.currency, period, context.policy.rounding)?;
    let zero = Money::zero(priced.currency);
    let totals = Totals::compute(
        priced.currency,
        &lines,
        zero,
        zero,
        customer.credit(priced.currency),
    )?;
    Ok(totals.amount_due())
}

/// The longest trial among the prices.
fn trial_days(items: &[(Price, u32)]) -> u32 {
    items
        .iter()
        .map(|(price, _)| price.trial_days())
        .max()
        .unwrap_or(0)
}

/// When a trial of the items' longest trial days, started `now`, ends (`None`: no trial).
fn trial_end(
    items: &[(Price, u32)],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, SubscriptionError> {
    let trial = trial_days(items);
    if trial == 0 {
        return Ok(None);
    }
    now.checked_add_signed(TimeDelta::days(trial.into()))
        .map(Some)
        .ok_or_else(|| {
            InvalidField::new("trial_days", "the trial would end after the last instant").into()
        })
}

impl Subscription {
    /// The subscription's items with their prices, from the catalog.
    pub fn priced_items(
        &self,
        context: &Context<'_>,
    ) -> Result<Vec<(Price, u32)>, SubscriptionError> {
        self.items
            .iter()
            .map(|item| Ok((context.catalog.price(item.price)?.clone(), item.quantity)))
            .collect()
    }

    /// The checkout this subscription waits for: refused unless it is `pending_payment`.
    pub fn pending_checkout(&self) -> Result<&super::PendingPayment, SubscriptionError> {
        match &self.state {
            SubscriptionState::PendingPayment(pending) => Ok(pending),
            _ => Err(IllegalTransition {
                from: Some(self.status()),
                trigger: Trigger::CheckoutPaid,
            }
            .into()),
        }
    }

    /// What the checkout page shows: what completing checkout charges now ([`first_charge`])
    /// and, for a price with a trial, when the trial would end. Only a subscription waiting for
    /// checkout (a draft being submitted, or `pending_payment`) has checkout terms.
    pub fn checkout_terms(
        &self,
        customer: &Customer,
        open_first: Option<&Invoice>,
        context: &Context<'_>,
    ) -> Result<CheckoutTerms, SubscriptionError> {
        if !matches!(
            self.state,
            SubscriptionState::Draft | SubscriptionState::PendingPayment(_)
        ) {
            return Err(IllegalTransition {
                from: Some(self.status()),
                trigger: Trigger::CheckoutPaid,
            }
            .into());
        }
        let items = self.priced_items(context)?;
        Ok(CheckoutTerms {
            amount_due_now: first_charge(&items, customer, open_first, context)?,
            trial_ends_at: trial_end(&items, context.now)?,
        })
    }

    /// Complete checkout: for a price with a trial, the trial starts now (decided, nothing
    /// charged); otherwise the first invoice is charged: `open_first` again (an earlier attempt
    /// was declined; the period is the one it billed) or a new one for the period starting now.
    /// `customer` already has the payment method the checkout collected.
    pub fn complete_checkout(
        &self,
        customer: &Customer,
        open_first: Option<(&Invoice, &[PaymentAttempt])>,
        context: &Context<'_>,
    ) -> Result<Resolution, SubscriptionError> {
        self.check_chargeable(Trigger::CheckoutPaid)?;
        let items = self.priced_items(context)?;
        if let Some(ends_at) = trial_end(&items, context.now)? {
            let command = Command::CompleteCheckout(CheckoutCompletion::Trial { ends_at });
            return Ok(Resolution::Decided(self.decide(&command, context)?));
        }
        let charge = match open_first {
            Some((open, attempts)) => {
                self.charge_again(open, attempts, customer, ChargePurpose::Checkout, context)?
            }
            None => {
                let period = BillingCycle::new(context.now, self.interval).period(0)?;
                let invoice =
                    self.period_invoice(InvoiceKind::Recurring, period, &items, context)?;
                self.charge_new(invoice, customer, ChargePurpose::Checkout, context)?
            }
        };
        Ok(Resolution::ChargeFirst(charge))
    }

    /// The charge of a due period ([`DueStep::ChargePeriod`](super::DueStep::ChargePeriod)): a
    /// new recurring invoice for `period`.
    pub fn charge_period(
        &self,
        purpose: ChargePurpose,
        period: Period,
        customer: &Customer,
        context: &Context<'_>,
    ) -> Result<Charge, SubscriptionError> {
        let trigger = match purpose {
            ChargePurpose::TrialEnd => Trigger::TrialEndPaid,
            _ => Trigger::RenewalPaid,
        };
        self.check_chargeable(trigger)?;
        let items = self.priced_items(context)?;
        let invoice = self.period_invoice(InvoiceKind::Recurring, period, &items, context)?;
        self.charge_new(invoice, customer, purpose, context)
    }

    /// The invoice a retry charges: the one dunning collects, or why there is none (a
    /// subscription that is not past due has nothing to retry).
    pub fn unpaid_invoice(&self) -> Result<crate::ids::InvoiceId, SubscriptionError> {
        match &self.state {
            SubscriptionState::PastDue(past_due) => Ok(past_due.dunning.invoice),
            _ => Err(IllegalTransition {
                from: Some(self.status()),
                trigger: Trigger::PaymentRecovered,
            }
            .into()),
        }
    }

    /// Charge the unpaid invoice of a past-due subscription again: a scheduled retry, "pay
    /// now", or a new payment method. `attempts` are the invoice's attempts so far.
    pub fn retry(
        &self,
        invoice: &Invoice,
        attempts: &[PaymentAttempt],
        customer: &Customer,
        context: &Context<'_>,
    ) -> Result<Charge, SubscriptionError> {
        self.check_chargeable(Trigger::PaymentRecovered)?;
        match &self.state {
            SubscriptionState::PastDue(past_due) if past_due.dunning.invoice == invoice.id() => {}
            _ => {
                return Err(crate::InvalidField::new(
                    "invoice",
                    format_args!("{} is not the invoice dunning collects", invoice.id()),
                )
                .into());
            }
        }
        self.charge_again(
            invoice,
            attempts,
            customer,
            ChargePurpose::DunningRetry,
            context,
        )
    }

    /// What a change to `to` would do now, committing nothing: the exact lines and totals of an
    /// upgrade (crediting unused time to the second; a trial credits nothing), or when a
    /// downgrade takes effect.
    pub fn preview_change(
        &self,
        to: &[(Price, u32)],
        customer: &Customer,
        context: &Context<'_>,
    ) -> Result<ChangePreview, SubscriptionError> {
        let from = self.priced_items(context)?;
        let trialing = matches!(self.state, SubscriptionState::Trialing(_));
        let period = self.current_period().ok_or(IllegalTransition {
            from: Some(self.status()),
            trigger: Trigger::Upgrade,
        })?;
        Ok(proration::PlanChange {
            period,
            at: context.now,
            from: if trialing { &[] } else { &from },
            to,
            currency: self.currency,
            available_credit: customer.credit(self.currency),
            policy: context.policy.rounding,
        }
        .preview()?)
    }

    /// Change the items to `to`: an upgrade (costlier per unit of time) is charged now, with
    /// proration, and starts a new period; a downgrade is scheduled for the period end; a trial
    /// converts now (charged, or at once when the new items are free).
    pub fn change_plan(
        &self,
        to: &[(Price, u32)],
        customer: &Customer,
        context: &Context<'_>,
    ) -> Result<Resolution, SubscriptionError> {
        let preview = self.preview_change(to, customer, context)?;
        let change = PlanChange {
            items: PricedItems::new(to)?,
        };
        let trialing = matches!(self.state, SubscriptionState::Trialing(_));
        match preview {
            ChangePreview::Upgrade(upgrade) => {
                // Checked before anything is charged, as the decision will check it once paid.
                self.check_immediate_plan_change()?;
                self.no_charge_in_flight()?;
                let invoice = upgrade.into_invoice(
                    context.ids.next(context.now),
                    self.customer,
                    self.id,
                    context.now,
                )?;
                Ok(Resolution::ChargeFirst(self.charge_new(
                    invoice,
                    customer,
                    ChargePurpose::PlanChange,
                    context,
                )?))
            }
            // A trial moved to free items converts at once, with nothing to bill.
            ChangePreview::Downgrade(_) if trialing => Ok(Resolution::Decided(self.decide(
                &Command::ConvertTrial {
                    change,
                    settlement: Settlement::Free,
                },
                context,
            )?)),
            ChangePreview::Downgrade(_) => Ok(Resolution::Decided(
                self.decide(&Command::ScheduleDowngrade { change }, context)?,
            )),
        }
    }

    /// Resume a paused subscription ([`ChargePurpose::Resume`]) or reactivate a canceled one
    /// ([`ChargePurpose::Reactivation`]): within the period it paid for, that period goes on
    /// and nothing is charged; a free subscription restarts at once; otherwise a new period
    /// starting now is charged first.
    pub fn restart(
        &self,
        purpose: ChargePurpose,
        customer: &Customer,
        context: &Context<'_>,
    ) -> Result<Resolution, SubscriptionError> {
        let (trigger, free) = match purpose {
            ChargePurpose::Resume => (
                Trigger::Resume,
                Command::Resume {
                    settlement: Settlement::Free,
                },
            ),
            ChargePurpose::Reactivation => (
                Trigger::Reactivate,
                Command::Reactivate {
                    settlement: Settlement::Free,
                },
            ),
            other => {
                return Err(crate::InvalidField::new(
                    "purpose",
                    format_args!("{} does not restart a subscription", other.describe()),
                )
                .into());
            }
        };
        self.check_chargeable(trigger)?;
        let paid_up = self
            .state
            .paid_period()
            .is_some_and(|paid| context.now < paid.period.end());
        if paid_up || self.is_free(context)? {
            return Ok(Resolution::Decided(self.decide(&free, context)?));
        }
        let items = self.priced_items(context)?;
        let period = BillingCycle::new(context.now, self.interval).period(0)?;
        // Not a renewal (renewals are `recurring`, one per period start): the subscription
        // starts again, so the new period is billed as a reactivation.
        let invoice = self.period_invoice(InvoiceKind::Reactivation, period, &items, context)?;
        Ok(Resolution::ChargeFirst(
            self.charge_new(invoice, customer, purpose, context)?,
        ))
    }

    /// `invoice`, of this subscription, was paid outside commet (cash, a bank transfer): the
    /// invoice paid and, if it is the invoice dunning collects, the subscription's recovery
    /// (`payment.recovered`, `payment.received`). Refused while a charge is in flight.
    pub fn invoice_paid_out_of_band(
        &self,
        invoice: &Invoice,
        context: &Context<'_>,
    ) -> Result<(Invoice, Option<Decision>), SubscriptionError> {
        self.no_charge_in_flight()?;
        let mut invoice = invoice.clone();
        invoice.mark_paid(context.now, invoice.amount_due())?;
        let collected = matches!(
            &self.state,
            SubscriptionState::PastDue(past_due) if past_due.dunning.invoice == invoice.id()
        );
        if !collected {
            return Ok((invoice, None));
        }
        let summary = InvoiceSummary::of(&invoice, None)?;
        let decision = self.decide(&Command::Recover { invoice: summary }, context)?;
        Ok((invoice, Some(decision)))
    }

    /// May `invoice`, of this subscription, be voided by hand? Not while a charge is in flight,
    /// and not the invoice dunning collects: forgive that one with the admin override, which
    /// says what happens to the subscription.
    pub fn check_void(&self, invoice: &Invoice) -> Result<(), SubscriptionError> {
        self.no_charge_in_flight()?;
        match &self.state {
            SubscriptionState::PastDue(past_due) if past_due.dunning.invoice == invoice.id() => {
                Err(crate::InvalidField::new(
                    "invoice",
                    format_args!(
                        "is being collected for the past-due subscription {}: use the admin \
                         override to forgive it",
                        self.id
                    ),
                )
                .into())
            }
            _ => Ok(()),
        }
    }

    /// Decide what the result of the charge in flight does (see [charges](super#charges)).
    /// `attempt`, `invoice` and `customer` are as stored: the attempt in flight, its invoice and
    /// the invoice's customer.
    #[allow(clippy::too_many_lines)] // one arm per outcome, each short
    pub fn settle(
        &self,
        attempt: &PaymentAttempt,
        invoice: &Invoice,
        customer: &Customer,
        result: &ChargeResult,
        context: &Context<'_>,
    ) -> Result<SettledCharge, SubscriptionError> {
        let now = context.now;
        let key = attempt.idempotency_key();
        if self
            .charging
            .as_ref()
            .is_none_or(|charge| charge.attempt != key)
            || attempt.invoice != invoice.id()
            || invoice.customer() != customer.id()
        {
            return Err(SubscriptionError::NothingTo {
                what: "settle: that charge is not the one in flight",
            });
        }
        let mut attempt = attempt.clone();
        attempt.complete(result, now)?;
        let mut before = self.clone();
        before.charging = None;
        before.updated_at = now;
        let mut invoice = invoice.clone();
        let mut settled = SettledCharge {
            subscription: before.clone(),
            attempt,
            invoice: invoice.clone(),
            customer: None,
            triggers: Vec::new(),
            events: Vec::new(),
            refused: None,
        };
        match result {
            ChargeResult::Paid { payment_id } => {
                let collectable = matches!(
                    invoice.status(),
                    InvoiceStatus::Outstanding | InvoiceStatus::Uncollectible
                );
                if collectable {
                    invoice.mark_paid(now, invoice.amount_due())?;
                }
                let summary = InvoiceSummary::of(&invoice, payment_id.clone())?;
                let decided = if collectable {
                    self.paid_command(settled.attempt.purpose, &invoice, summary.clone(), context)
                        .and_then(|command| before.decide(&command, context))
                } else {
                    Err(SubscriptionError::Invoice(
                        crate::invoice::InvoiceError::IllegalTransition {
                            from: invoice.status(),
                            trigger: crate::invoice::InvoiceTrigger::Pay,
                        },
                    ))
                };
                match decided {
                    Ok(decision) => {
                        settled.triggers.push(decision.trigger);
                        settled.events = decision.events;
                        settled.subscription = decision.subscription;
                    }
                    Err(refused) => {
                        settled
                            .events
                            .push(Event::PaymentReceived(PaymentReceivedData {
                                invoice_id: summary.id,
                                invoice_number: summary.number.clone(),
                                invoice_total: summary.total.minor_units(),
                                customer_id: invoice.customer(),
                                subscription_id: invoice.subscription(),
                                payment_transaction_id: summary.payment_id.clone(),
                                provider: summary
                                    .payment_id
                                    .as_ref()
                                    .and(context.provider.map(str::to_owned)),
                                gross_amount: summary.amount_paid.minor_units(),
                                currency: summary.total.currency(),
                                paid_at: now,
                            }));
                        settled.refused = Some(refused);
                    }
                }
            }
            ChargeResult::Declined { .. } if settled.attempt.purpose == ChargePurpose::Checkout => {
                // Still waiting for checkout: the same first invoice is charged again with the
                // next payment method the customer gives.
            }
            ChargeResult::Declined { .. } if settled.attempt.purpose.is_immediate_change() => {
                // The change did not happen: its invoice is void and its credit returned.
                let mut customer = customer.clone();
                settled.events.push(void(&mut invoice, &mut customer, now)?);
                settled.customer = Some(customer);
            }
            ChargeResult::Declined {
                code,
                message,
                class,
            } => {
                let failure = PaymentFailure {
                    code: code.clone(),
                    message: message.clone(),
                };
                let decisions = before.decline_period_charge(
                    settled.attempt.purpose,
                    &invoice,
                    failure,
                    *class,
                    context,
                )?;
                for decision in decisions {
                    for action in &decision.invoice_actions {
                        match action {
                            // An invoice written off earlier (dunning exhausted, kept past due)
                            // stays written off.
                            InvoiceAction::MarkUncollectible(_)
                                if invoice.status() == InvoiceStatus::Uncollectible => {}
                            action => {
                                let mut customer =
                                    settled.customer.clone().unwrap_or_else(|| customer.clone());
                                settled.events.extend(action.apply(
                                    &mut invoice,
                                    &mut customer,
                                    now,
                                )?);
                                settled.customer = Some(customer);
                            }
                        }
                    }
                    settled.triggers.push(decision.trigger);
                    settled.events.extend(decision.events);
                    settled.subscription = decision.subscription;
                }
            }
        }
        settled.invoice = invoice;
        Ok(settled)
    }

    /// The command a paid charge for `purpose` applies.
    fn paid_command(
        &self,
        purpose: ChargePurpose,
        invoice: &Invoice,
        summary: InvoiceSummary,
        context: &Context<'_>,
    ) -> Result<Command, SubscriptionError> {
        let settlement = Settlement::Invoice(summary.clone());
        Ok(match purpose {
            ChargePurpose::Checkout => {
                Command::CompleteCheckout(CheckoutCompletion::Paid { invoice: summary })
            }
            ChargePurpose::TrialEnd => Command::EndTrial(ChargeOutcome::Paid { settlement }),
            ChargePurpose::Renewal => Command::Renew(ChargeOutcome::Paid { settlement }),
            ChargePurpose::DunningRetry => Command::Recover { invoice: summary },
            ChargePurpose::PlanChange => {
                let change = PlanChange {
                    items: PricedItems::new(&items_billed_by(invoice, context)?)?,
                };
                if matches!(self.state, SubscriptionState::Trialing(_)) {
                    Command::ConvertTrial { change, settlement }
                } else {
                    Command::Upgrade { change, settlement }
                }
            }
            ChargePurpose::Resume => Command::Resume { settlement },
            ChargePurpose::Reactivation => Command::Reactivate { settlement },
        })
    }

    /// A declined charge of a period or a retry: dunning starts (trial end, renewal) or goes on
    /// (retry), with the next step from the dunning policy; when no retry is left, dunning is
    /// exhausted in the same decision, after the failure is recorded.
    fn decline_period_charge(
        &self,
        purpose: ChargePurpose,
        invoice: &Invoice,
        failure: PaymentFailure,
        class: crate::dunning::DeclineClass,
        context: &Context<'_>,
    ) -> Result<Vec<Decision>, SubscriptionError> {
        let now = context.now;
        let (first_failed_at, failed_before) = match (purpose, &self.state) {
            (ChargePurpose::TrialEnd | ChargePurpose::Renewal, _) => (now, 0),
            (ChargePurpose::DunningRetry, SubscriptionState::PastDue(past_due)) => (
                past_due.dunning.first_failed_at,
                past_due.dunning.failed_attempts,
            ),
            _ => {
                return Err(IllegalTransition {
                    from: Some(self.status()),
                    trigger: Trigger::RetryFailed,
                }
                .into());
            }
        };
        let history = FailureHistory {
            first_failed_at,
            failed_attempts: failed_before.saturating_add(1),
            last_decline: class,
        };
        let step = context.policy.dunning.next_step(&history, now);
        let failed = FailedCharge {
            invoice: InvoiceSummary::of(invoice, None)?,
            failure,
            // No retry left: the failure is recorded with the deadline "now", and dunning is
            // exhausted right after it, in this decision.
            next: match step {
                DunningStep::Exhausted(_) => DunningStep::WaitForPaymentMethod { exhausts_at: now },
                other => other,
            },
            recovery_url: Some(context.policy.links.issue(
                Purpose::Recovery,
                &self.id.to_string(),
                now,
            )?),
        };
        let command = match purpose {
            ChargePurpose::TrialEnd => Command::EndTrial(ChargeOutcome::Failed(failed)),
            ChargePurpose::Renewal => Command::Renew(ChargeOutcome::Failed(failed)),
            _ => Command::RetryFailed(failed),
        };
        let recorded = self.decide(&command, context)?;
        let DunningStep::Exhausted(policy) = step else {
            return Ok(vec![recorded]);
        };
        let exhausted = recorded
            .subscription
            .decide(&Command::ExhaustDunning { policy }, context)?;
        Ok(vec![recorded, exhausted])
    }

    /// The invoice of `period` for `items`: the one function that builds it.
    fn period_invoice(
        &self,
        kind: InvoiceKind,
        period: Period,
        items: &[(Price, u32)],
        context: &Context<'_>,
    ) -> Result<Invoice, SubscriptionError> {
        Ok(PeriodInvoice {
            id: context.ids.next(context.now),
            kind,
            customer: self.customer,
            subscription: self.id,
            currency: self.currency,
            period,
            items,
            created_at: context.now,
            available_credit: Money::zero(self.currency),
            policy: context.policy.rounding,
        }
        .build()?)
    }

    /// Charge a new draft invoice: the customer's credit applied (and taken from their
    /// balance; a negative total becomes credit), finalized and due now.
    fn charge_new(
        &self,
        mut invoice: Invoice,
        customer: &Customer,
        purpose: ChargePurpose,
        context: &Context<'_>,
    ) -> Result<Charge, SubscriptionError> {
        let now = context.now;
        let before = customer.credit(invoice.currency());
        invoice.apply_credit(before)?;
        let parties = InvoiceParties::of(
            &context.policy.seller,
            context.policy.footer.as_deref(),
            customer,
        );
        invoice.finalize(now, now, parties)?;
        let after = invoice.totals().customer_credit_after(before)?;
        let mut changed = None;
        if after != before {
            let mut customer = customer.clone();
            let change = after
                .checked_sub(before)
                .map_err(crate::invoice::InvoiceError::from)?;
            customer.adjust_credit(change, now)?;
            changed = Some(customer);
        }
        let payer = changed.as_ref().unwrap_or(customer);
        let mut charge = self.charge_again(&invoice, &[], payer, purpose, context)?;
        charge.new_invoice = true;
        charge.customer = changed;
        Ok(charge)
    }

    /// Charge an open invoice (again): a pending attempt numbered after `attempts`, with the
    /// customer's payment method, and the charge recorded on the subscription.
    fn charge_again(
        &self,
        invoice: &Invoice,
        attempts: &[PaymentAttempt],
        customer: &Customer,
        purpose: ChargePurpose,
        context: &Context<'_>,
    ) -> Result<Charge, SubscriptionError> {
        let now = context.now;
        if invoice.status() != InvoiceStatus::Outstanding
            && invoice.status() != InvoiceStatus::Uncollectible
        {
            return Err(crate::invoice::InvoiceError::IllegalTransition {
                from: invoice.status(),
                trigger: crate::invoice::InvoiceTrigger::Pay,
            }
            .into());
        }
        if invoice.subscription() != Some(self.id) || invoice.customer() != customer.id() {
            return Err(crate::InvalidField::new(
                "invoice",
                format_args!(
                    "{} does not bill this subscription's customer",
                    invoice.id()
                ),
            )
            .into());
        }
        let attempt = PaymentAttempt::pending(
            context.ids.next(now),
            invoice,
            customer.payment_method(),
            purpose,
            attempts,
            now,
        );
        let mut subscription = self.clone();
        subscription.charging = Some(ChargeInFlight {
            attempt: attempt.idempotency_key(),
            purpose,
            since: now,
        });
        Ok(Charge {
            subscription,
            invoice: invoice.clone(),
            new_invoice: false,
            attempt,
            customer: None,
        })
    }

    /// May a charge start for a transition with `trigger` (the row its payment applies)? Only
    /// from a status the row starts from, and not while another is in flight.
    fn check_chargeable(&self, trigger: Trigger) -> Result<(), SubscriptionError> {
        transition(Some(self.status()), trigger)?;
        self.no_charge_in_flight()
    }

    /// Refused while a charge is in flight.
    fn no_charge_in_flight(&self) -> Result<(), SubscriptionError> {
        match &self.charging {
            Some(charge) => Err(SubscriptionError::ChargeInFlight {
                attempt: charge.attempt.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// The items an upgrade's invoice bills: its `plan_base` and `seats` lines.
fn items_billed_by(
    invoice: &Invoice,
    context: &Context<'_>,
) -> Result<Vec<(Price, u32)>, SubscriptionError> {
    let mut items = Vec::new();
    for line in invoice.lines() {
        if !matches!(line.kind(), LineKind::PlanBase | LineKind::Seats) {
            continue;
        }
        let Some(price) = line.price() else { continue };
        let quantity = Some(line.quantity())
            .filter(|quantity| quantity.fract() == Decimal::ZERO)
            .and_then(|quantity| u32::try_from(quantity).ok())
            .ok_or_else(|| crate::InvalidField::new("quantity", "is not a seat count"))?;
        items.push((context.catalog.price(price)?.clone(), quantity));
    }
    Ok(items)
}
