//! Subscriptions: the lifecycle as one explicit, pure state machine, and every rule about what
//! it is due, what it charges and what a charge's result does.
//!
//! A [`Subscription`] moves only through [`Subscription::create`] and [`Subscription::decide`],
//! which return a [`Decision`]: the new subscription, the events to publish, and the actions to
//! take on invoices. Both go through [`transition`], the one function that maps
//! `(status, trigger)` to the next status and its events. Nothing else in commet assigns a
//! status. Business rules live here and touch no store and no clock: the caller passes `now`
//! (and the catalog, the billing policy and the id source) in a [`Context`].
//!
//! | question | answer |
//! |---|---|
//! | what is due now? | [`Subscription::due_step`]: a [`Decision`] to make, or a charge ([`DueStep`]) |
//! | what does a request charge? | [`Subscription::complete_checkout`], [`charge_period`](Subscription::charge_period), [`retry`](Subscription::retry), [`change_plan`](Subscription::change_plan), [`restart`](Subscription::restart): a [`Charge`] to record first, or a decision ([`Resolution`]) |
//! | what does a charge's result do? | [`Subscription::settle`]: one [`SettledCharge`] (renewal, dunning step, exhaustion, a declined change's invoice voided) |
//! | what does checkout cost now? | [`first_charge`], [`Subscription::checkout_terms`] |
//! | should the customer be served? | [`access`], [`access_for`] |
//!
//! The modules: `transition` (the table), `command` (commands and their facts), `decision`
//! (context, decision, errors, invoice actions), `decide` (the handler of each command),
//! `admin` (the override), `events` (a row's events), `rules` (what handlers share), `due`,
//! `charge`, `access`, `state`, `status`, `item`.
//!
//! # Charges
//!
//! Every charge goes through the same two decisions, whatever asked for it (checkout, a trial's
//! end, a renewal, a dunning retry, an upgrade, resuming, reactivating):
//!
//! 1. **what to charge**: a [`Charge`] (the invoice, finalized with the customer's credit
//!    applied; a pending [`PaymentAttempt`](crate::payment::PaymentAttempt); the subscription with the charge recorded as in
//!    flight). The engine commits it before it asks the payment provider, so a crash never
//!    loses a charge or makes it twice. Some requests need no charge (a trial's checkout, a
//!    downgrade, resuming inside the paid period): they come back as a [`Decision`] instead
//!    ([`Resolution`]).
//! 2. **what the result does**: [`Subscription::settle`] turns the provider's answer into one
//!    [`SettledCharge`]: the attempt completed through its own table, the invoice paid (or, for
//!    a declined immediate change, voided with its credit returned), and the subscription's
//!    transition, with every event. A declined period charge starts or continues dunning with
//!    the engine's [`DunningPolicy`](crate::dunning::DunningPolicy); when no retry is left, the
//!    failure and the exhaustion of dunning are decided together: `payment.failed` and
//!    `subscription.payment_failed` (with `retryAt` null), then `payment.retry_failed` and, under
//!    the default policy, `subscription.canceled`.
//!
//! The engine only loads the aggregates, asks these functions, commits what they return and
//! calls the payment provider.
//!
//! # The transition table
//!
//! Produced from [`transition`]; a test keeps this copy identical to the code.
//!
#![doc = include_str!("transitions.md")]
//!
//! `invoice.created` and `payment.received` are emitted only when the transition settles an
//! invoice: a free subscription (every price zero) is never invoiced, so its transitions emit
//! the other events only. A cancellation or an override that voids open invoices emits one
//! `invoice.voided` per invoice after the events above.
//!
//! The admin override has its own table of allowed targets: see [`override_allowed`].
//!
//! # Decisions written down here
//!
//! - **Periods.** The anchor is the start of the first paid period: checkout completion, or the
//!   end of the trial. A renewal's period starts where the previous one ended, never at "when the
//!   job ran". Upgrades, resumes, reactivations and activations by override start a new period
//!   at that instant. Recovering from `past_due` keeps the anchor and the period.
//! - **Scheduled changes.** A scheduled cancellation takes effect at exactly the end of the
//!   period (or trial) it was asked in: `canceled_at` is that instant, whenever the work runs.
//!   While it is pending, renewals, upgrades, downgrades and pauses are refused with
//!   [`SubscriptionError::CancellationPending`]: revoke it first. A scheduled downgrade replaces
//!   any earlier one and takes effect at the period end, before that period's renewal.
//! - **Trials.** `trial.will_end` is sent once, three days before the trial ends (at the start
//!   of a shorter trial). Ending a trial without a payment method is a failed first charge (hard
//!   decline `payment_method_missing`): the subscription goes `past_due` and the customer gets
//!   a recovery link, as Stripe's `create_invoice` trial-end behaviour does.
//! - **Pause** is immediate: no renewals and no access while paused, but the period already
//!   paid for is kept. Resuming before it ends continues it at no charge (anchor unchanged);
//!   resuming after it ended starts a new period at that instant, billed then. So pausing and
//!   resuming never bills one stretch of time twice. Reactivating a subscription canceled
//!   while it had a paid period works the same way (the table's "new period anchored now"
//!   applies once that paid period is over).
//! - **Currency** never changes on a subscription; a plan change to another currency is refused.
//! - **Dunning** retry times come from the engine's dunning policy, applied when a charge's
//!   result is settled; when no retry is left, the failure is recorded (`payment.failed` and
//!   `subscription.payment_failed` with `retryAt` null) and dunning is exhausted in the same
//!   decision (`payment.retry_failed`, then `subscription.canceled` under the default policy).
//! - **A charge in flight** is recorded on the subscription ([`ChargeInFlight`]) by the commit
//!   that records the charge, before the provider is asked. Until its result is settled the
//!   subscription refuses every command ([`SubscriptionError::ChargeInFlight`]) and has no due
//!   work, so nothing can decide on a state the charge is about to change.

mod access;
mod admin;
mod charge;
mod command;
mod decide;
mod decision;
mod due;
mod events;
mod item;
mod rules;
mod state;
mod status;
mod transition;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use access::{Access, AccessPolicy, AccessReason, PastDueAccess, access, access_for};
pub use charge::{Charge, CheckoutTerms, Resolution, SettledCharge, first_charge};
pub use command::{AdminUpdate, OpenInvoicePolicy};
pub use command::{
    ChargeOutcome, CheckoutCompletion, CheckoutOffer, Command, FailedCharge, NewSubscription,
    PlanChange, Settlement,
};
pub use decision::{Context, Decision, InvoiceAction, SubscriptionError, void};
pub use due::DueStep;
pub use item::{MAX_ITEMS, MAX_QUANTITY, PricedItems, SubscriptionItem};
pub use state::{
    Active, CancelReason, Canceled, ChargeInFlight, Dunning, PaidPeriod, PastDue, Paused,
    PaymentFailure, PendingPayment, ScheduledCancellation, ScheduledPlanChange, SubscriptionState,
    TRIAL_REMINDER_LEAD, Trialing,
};
pub use status::SubscriptionStatus;
pub use transition::{
    IllegalTransition, Transition, Trigger, override_allowed, table_markdown, transition,
};

pub use crate::invoice::InvoiceSummary;

use crate::InvalidField;
use crate::calendar::{BillingCycle, CalendarError, Interval, Period};
use crate::dunning::DunningStep;
use crate::ids::{CustomerId, SubscriptionId};
use crate::money::Currency;
use crate::validation::check_metadata;

/// A customer's subscription to one or more prices.
///
/// Fields are private: a subscription changes only through [`Subscription::decide`]. Stores
/// persist it through [`SubscriptionRecord`] and rebuild it with [`Subscription::from_record`],
/// which checks that the record is consistent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SubscriptionRecord", into = "SubscriptionRecord")]
pub struct Subscription {
    id: SubscriptionId,
    customer: CustomerId,
    items: Vec<SubscriptionItem>,
    interval: Interval,
    currency: Currency,
    state: SubscriptionState,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    metadata: BTreeMap<String, String>,
    charging: Option<ChargeInFlight>,
    version: u64,
}

/// The plain data of a [`Subscription`], for stores and serialization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// The id.
    pub id: SubscriptionId,
    /// The customer.
    pub customer: CustomerId,
    /// The items (at least one).
    pub items: Vec<SubscriptionItem>,
    /// The interval every item bills at.
    pub interval: Interval,
    /// The currency every item bills in.
    pub currency: Currency,
    /// The status and its data.
    pub state: SubscriptionState,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Free-form key/value pairs for the integrating service.
    pub metadata: BTreeMap<String, String>,
    /// The charge recorded and not yet settled, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<ChargeInFlight>,
    /// The stored version: 0 before the first write; each write adds one.
    pub version: u64,
}

/// Work a subscription is waiting for, and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueWork {
    /// Cancel a checkout that was not completed in time.
    CheckoutExpiry,
    /// Send `trial.will_end`.
    TrialReminder,
    /// End the trial (charge, or cancel if a cancellation is scheduled).
    TrialEnd,
    /// Renew at the period end (after any scheduled plan change; or cancel if scheduled).
    PeriodEnd,
    /// Retry the failed charge.
    DunningRetry,
    /// Exhaust dunning (a hard decline awaited a new payment method in vain).
    DunningExhaustion,
}

impl Subscription {
    /// Rebuild a subscription from its record, refusing inconsistent data with the field named.
    pub fn from_record(record: SubscriptionRecord) -> Result<Subscription, InvalidField> {
        check_items(&record.items)?;
        check_metadata(&record.metadata)?;
        check_state(&record.state, record.interval)?;
        Ok(Subscription {
            id: record.id,
            customer: record.customer,
            items: record.items,
            interval: record.interval,
            currency: record.currency,
            state: record.state,
            created_at: record.created_at,
            updated_at: record.updated_at,
            metadata: record.metadata,
            charging: record.charging,
            version: record.version,
        })
    }

    /// The plain data, for a store to write.
    #[must_use]
    pub fn to_record(&self) -> SubscriptionRecord {
        SubscriptionRecord::from(self.clone())
    }

    /// The id.
    #[must_use]
    pub fn id(&self) -> SubscriptionId {
        self.id
    }

    /// The customer.
    #[must_use]
    pub fn customer(&self) -> CustomerId {
        self.customer
    }

    /// The items.
    #[must_use]
    pub fn items(&self) -> &[SubscriptionItem] {
        &self.items
    }

    /// The interval every item bills at.
    #[must_use]
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The currency every item bills in.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> SubscriptionStatus {
        self.state.status()
    }

    /// The status and the data that exists only in it.
    #[must_use]
    pub fn state(&self) -> &SubscriptionState {
        &self.state
    }

    /// When it was created.
    #[must_use]
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// When it last changed.
    #[must_use]
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// Free-form key/value pairs.
    #[must_use]
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The stored version (0 before the first write).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Set the stored version; for stores, which bump it on each write.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    /// The current billing period: the trial while trialing, the paid (or unpaid) period while
    /// active or past due, none otherwise.
    #[must_use]
    pub fn current_period(&self) -> Option<Period> {
        match &self.state {
            SubscriptionState::Trialing(trialing) => Some(trialing.trial),
            SubscriptionState::Active(active) => Some(active.period),
            SubscriptionState::PastDue(past_due) => Some(past_due.period),
            SubscriptionState::Draft
            | SubscriptionState::PendingPayment(_)
            | SubscriptionState::Paused(_)
            | SubscriptionState::Canceled(_) => None,
        }
    }

    /// The billing cycle (anchor and interval), once there is one.
    #[must_use]
    pub fn cycle(&self) -> Option<BillingCycle> {
        let anchor = match &self.state {
            SubscriptionState::Trialing(trialing) => trialing.trial.end(),
            SubscriptionState::Active(active) => active.anchor,
            SubscriptionState::PastDue(past_due) => past_due.anchor,
            SubscriptionState::Draft
            | SubscriptionState::PendingPayment(_)
            | SubscriptionState::Paused(_)
            | SubscriptionState::Canceled(_) => return None,
        };
        Some(BillingCycle::new(anchor, self.interval))
    }

    /// True if this is a customer's current subscription: neither ended (`canceled`) nor not yet
    /// offered (`draft`).
    #[must_use]
    pub fn is_current(&self) -> bool {
        !matches!(
            self.state,
            SubscriptionState::Canceled(_) | SubscriptionState::Draft
        )
    }

    /// The charge recorded and not yet settled, if any: while there is one, the subscription
    /// takes no other command and has no due work.
    #[must_use]
    pub fn charging(&self) -> Option<&ChargeInFlight> {
        self.charging.as_ref()
    }

    /// The period the charge at the end of the current period (or trial) bills, with the anchor
    /// of its cycle: the first period after a trial is anchored at the trial's end, whenever the
    /// work runs; a renewal's period starts where the current one ends, never at "when the job
    /// ran". `None` in a status that bills no next period.
    pub fn next_period(&self) -> Result<Option<(DateTime<Utc>, Period)>, CalendarError> {
        match &self.state {
            SubscriptionState::Trialing(trialing) => {
                let anchor = trialing.trial.end();
                Ok(Some((
                    anchor,
                    BillingCycle::new(anchor, self.interval).period(0)?,
                )))
            }
            SubscriptionState::Active(active) => {
                let period = active
                    .cycle(self.interval)
                    .period_containing(active.period.end())?;
                Ok(Some((active.anchor, period)))
            }
            SubscriptionState::Draft
            | SubscriptionState::PendingPayment(_)
            | SubscriptionState::PastDue(_)
            | SubscriptionState::Paused(_)
            | SubscriptionState::Canceled(_) => Ok(None),
        }
    }

    /// The next work this subscription waits for, and when it is due: none while a charge is in
    /// flight (its outcome decides what comes next). Stores index this instant so `run_due`
    /// finds due subscriptions without scanning.
    #[must_use]
    pub fn due_work(&self) -> Option<(DateTime<Utc>, DueWork)> {
        if self.charging.is_some() {
            return None;
        }
        match &self.state {
            SubscriptionState::PendingPayment(pending) => {
                pending.expires_at.map(|at| (at, DueWork::CheckoutExpiry))
            }
            SubscriptionState::Trialing(trialing) if !trialing.reminder_sent => {
                Some((trialing.reminder_at(), DueWork::TrialReminder))
            }
            SubscriptionState::Trialing(trialing) => {
                Some((trialing.trial.end(), DueWork::TrialEnd))
            }
            SubscriptionState::Active(active) => Some((active.period.end(), DueWork::PeriodEnd)),
            SubscriptionState::PastDue(past_due) => match past_due.dunning.next {
                DunningStep::RetryAt { at, .. } => Some((at, DueWork::DunningRetry)),
                DunningStep::WaitForPaymentMethod { exhausts_at } => {
                    Some((exhausts_at, DueWork::DunningExhaustion))
                }
                DunningStep::Exhausted(_) => None,
            },
            SubscriptionState::Draft
            | SubscriptionState::Paused(_)
            | SubscriptionState::Canceled(_) => None,
        }
    }

    /// When [`due_work`](Subscription::due_work) is due, if ever.
    #[must_use]
    pub fn next_due_at(&self) -> Option<DateTime<Utc>> {
        self.due_work().map(|(at, _)| at)
    }
}

impl From<Subscription> for SubscriptionRecord {
    fn from(subscription: Subscription) -> Self {
        SubscriptionRecord {
            id: subscription.id,
            customer: subscription.customer,
            items: subscription.items,
            interval: subscription.interval,
            currency: subscription.currency,
            state: subscription.state,
            created_at: subscription.created_at,
            updated_at: subscription.updated_at,
            metadata: subscription.metadata,
            charging: subscription.charging,
            version: subscription.version,
        }
    }
}

impl TryFrom<SubscriptionRecord> for Subscription {
    type Error = InvalidField;

    fn try_from(record: SubscriptionRecord) -> Result<Self, Self::Error> {
        Subscription::from_record(record)
    }
}

pub(crate) fn check_items(items: &[SubscriptionItem]) -> Result<(), InvalidField> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(InvalidField::new(
            "items",
            format_args!("must have 1 to {MAX_ITEMS} items"),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(InvalidField::new(
                format!("items[{index}].quantity"),
                format_args!("must be 1 to {MAX_QUANTITY}"),
            ));
        }
        if items
            .iter()
            .take(index)
            .any(|other| other.price == item.price)
        {
            return Err(InvalidField::new(
                format!("items[{index}].price"),
                "appears twice",
            ));
        }
    }
    Ok(())
}

/// A period must be a period of its cycle, or end exactly at the anchor (a plan change that has
/// just taken effect, before the renewal that starts the new cycle).
fn check_period_on_cycle(
    field: &str,
    anchor: DateTime<Utc>,
    period: Period,
    interval: Interval,
) -> Result<(), InvalidField> {
    if period.end() == anchor {
        return Ok(());
    }
    let cycle = BillingCycle::new(anchor, interval);
    let on_cycle = cycle
        .period_containing(period.start())
        .is_ok_and(|expected| expected == period);
    if on_cycle {
        Ok(())
    } else {
        Err(InvalidField::new(
            field,
            format_args!("{period:?} is not a period of the {interval} cycle anchored at {anchor}"),
        ))
    }
}

fn check_state(state: &SubscriptionState, interval: Interval) -> Result<(), InvalidField> {
    match state {
        SubscriptionState::Draft
        | SubscriptionState::Paused(_)
        | SubscriptionState::Canceled(_) => Ok(()),
        SubscriptionState::PendingPayment(pending) => match pending.expires_at {
            Some(expires_at) if expires_at <= pending.since => Err(InvalidField::new(
                "state.expires_at",
                "must be after the checkout was offered",
            )),
            _ => Ok(()),
        },
        SubscriptionState::Trialing(trialing) => match &trialing.cancellation {
            Some(cancellation) if cancellation.effective_at != trialing.trial.end() => Err(
                InvalidField::new("state.cancellation.effective_at", "must be the trial end"),
            ),
            _ => Ok(()),
        },
        SubscriptionState::Active(active) => {
            check_period_on_cycle("state.period", active.anchor, active.period, interval)?;
            if let Some(cancellation) = &active.cancellation
                && cancellation.effective_at != active.period.end()
            {
                return Err(InvalidField::new(
                    "state.cancellation.effective_at",
                    "must be the period end",
                ));
            }
            if let Some(change) = &active.plan_change {
                if change.effective_at != active.period.end() {
                    return Err(InvalidField::new(
                        "state.plan_change.effective_at",
                        "must be the period end",
                    ));
                }
                check_items(&change.items).map_err(|e| e.within("state.plan_change"))?;
            }
            Ok(())
        }
        SubscriptionState::PastDue(past_due) => {
            check_period_on_cycle("state.period", past_due.anchor, past_due.period, interval)?;
            if past_due.dunning.failed_attempts == 0 {
                return Err(InvalidField::new(
                    "state.dunning.failed_attempts",
                    "a past-due subscription has at least one failed attempt",
                ));
            }
            Ok(())
        }
    }
}
