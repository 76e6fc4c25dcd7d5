//! The data that exists only in some statuses.
//!
//! [`SubscriptionState`] is an enum with one variant per status, each carrying exactly the data
//! that status has: a `past_due` subscription has a [`Dunning`] record, an `active` one does not;
//! only `active` and `trialing` subscriptions can carry a [`ScheduledCancellation`]. The status
//! is derived from the variant, never stored beside it.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{SubscriptionItem, SubscriptionStatus};
use crate::calendar::{BillingCycle, Interval, Period};
use crate::dunning::{DunningStep, FailureHistory, classify};
use crate::ids::InvoiceId;
use crate::payment::ChargePurpose;

/// A subscription's status together with the data that only exists in that status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SubscriptionState {
    /// Prepared, not yet offered.
    Draft,
    /// Waiting for checkout.
    PendingPayment(PendingPayment),
    /// In a free trial.
    Trialing(Trialing),
    /// Paid up for the current period.
    Active(Active),
    /// A charge failed; dunning is running.
    PastDue(PastDue),
    /// Paused.
    Paused(Paused),
    /// Ended.
    Canceled(Canceled),
}

impl SubscriptionState {
    /// The status this state is in.
    #[must_use]
    pub fn status(&self) -> SubscriptionStatus {
        match self {
            SubscriptionState::Draft => SubscriptionStatus::Draft,
            SubscriptionState::PendingPayment(_) => SubscriptionStatus::PendingPayment,
            SubscriptionState::Trialing(_) => SubscriptionStatus::Trialing,
            SubscriptionState::Active(_) => SubscriptionStatus::Active,
            SubscriptionState::PastDue(_) => SubscriptionStatus::PastDue,
            SubscriptionState::Paused(_) => SubscriptionStatus::Paused,
            SubscriptionState::Canceled(_) => SubscriptionStatus::Canceled,
        }
    }
}

/// A charge recorded and not yet settled. While it is in flight the subscription takes no other
/// command ([`SubscriptionError::ChargeInFlight`](super::SubscriptionError::ChargeInFlight)) and
/// has no due work: the charge's outcome decides what happens next. Any status can carry one
/// (a renewal of an active subscription, a checkout, a retry while past due, a reactivation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeInFlight {
    /// The attempt's idempotency key, `{invoice}:{attempt}`.
    pub attempt: String,
    /// Why the charge is made.
    pub purpose: ChargePurpose,
    /// When it was recorded.
    pub since: DateTime<Utc>,
}

/// A subscription waiting for its checkout to be completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPayment {
    /// When checkout was offered (creation, or submission of a draft).
    pub since: DateTime<Utc>,
    /// When the subscription is canceled if checkout is still not completed (`None`: never; the
    /// default, as at Commet).
    pub expires_at: Option<DateTime<Utc>>,
    /// Where checkout sends the customer after success.
    pub success_url: Option<String>,
    /// Where checkout sends the customer if they leave.
    pub cancel_url: Option<String>,
}

/// A subscription in its free trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trialing {
    /// The trial, `[start, end)`. The first paid period starts at its end (the anchor).
    pub trial: Period,
    /// Whether `trial.will_end` was sent (it is sent once).
    pub reminder_sent: bool,
    /// A cancellation taking effect at the end of the trial.
    pub cancellation: Option<ScheduledCancellation>,
}

/// How long before the end of a trial `trial.will_end` is sent.
pub const TRIAL_REMINDER_LEAD: TimeDelta = TimeDelta::days(3);

impl Trialing {
    /// When `trial.will_end` is due: three days before the trial ends, or at its start if the
    /// trial is shorter than that.
    #[must_use]
    pub fn reminder_at(&self) -> DateTime<Utc> {
        // Checked: a stored trial ending near the earliest instant must not panic.
        self.trial
            .end()
            .checked_sub_signed(TRIAL_REMINDER_LEAD)
            .map_or(self.trial.start(), |at| at.max(self.trial.start()))
    }
}

/// A subscription paid up for its current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    /// The billing anchor: periods are counted from it.
    pub anchor: DateTime<Utc>,
    /// The current period.
    pub period: Period,
    /// A cancellation taking effect at the end of the period.
    pub cancellation: Option<ScheduledCancellation>,
    /// A plan change (downgrade) taking effect at the end of the period.
    pub plan_change: Option<ScheduledPlanChange>,
}

/// A subscription whose latest charge failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastDue {
    /// The billing anchor, unchanged by dunning.
    pub anchor: DateTime<Utc>,
    /// The period the failed invoice is for.
    pub period: Period,
    /// Where dunning stands.
    pub dunning: Dunning,
}

/// Dunning: the retries of one failed invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dunning {
    /// The invoice being collected.
    pub invoice: InvoiceId,
    /// When the first charge of it failed; retries are scheduled from this instant.
    pub first_failed_at: DateTime<Utc>,
    /// Failed charges so far, the first included.
    pub failed_attempts: u32,
    /// The most recent failure.
    pub last_failure: PaymentFailure,
    /// What happens next, as the engine's dunning policy decided: a retry, waiting for a new
    /// payment method until a deadline, or (kept past due) exhausted.
    pub next: DunningStep,
}

impl Dunning {
    /// What the dunning policy needs to decide the next step.
    #[must_use]
    pub fn history(&self) -> FailureHistory {
        FailureHistory {
            first_failed_at: self.first_failed_at,
            failed_attempts: self.failed_attempts,
            last_decline: classify(&self.last_failure.code),
        }
    }
}

/// Why a charge failed, as the payment gateway said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailure {
    /// The decline code, e.g. `card_declined`, `insufficient_funds`, `expired_card`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

/// A paused subscription: no renewals and no access, but the period it paid for is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    /// When it was paused.
    pub paused_at: DateTime<Utc>,
    /// The billing anchor when it was paused.
    pub anchor: DateTime<Utc>,
    /// The period it had paid for: resuming before it ends continues it at no charge.
    pub period: Period,
}

/// A canceled subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canceled {
    /// When it ended: the instant of the request, or the period end for a scheduled cancellation.
    pub canceled_at: DateTime<Utc>,
    /// Why.
    pub reason: CancelReason,
    /// A free-text note (the customer's or support's words).
    pub comment: Option<String>,
    /// The period it had paid for when it was canceled (canceled now while active or paused):
    /// reactivating before it ends continues it at no charge.
    pub paid_period: Option<PaidPeriod>,
}

/// A period that was paid for, with the anchor of its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidPeriod {
    /// The billing anchor.
    pub anchor: DateTime<Utc>,
    /// The period.
    pub period: Period,
}

impl SubscriptionState {
    /// The period paid for, while active or paused (not trialing, not past due).
    #[must_use]
    pub fn paid_period(&self) -> Option<PaidPeriod> {
        match self {
            SubscriptionState::Active(active) => Some(PaidPeriod {
                anchor: active.anchor,
                period: active.period,
            }),
            SubscriptionState::Paused(paused) => Some(PaidPeriod {
                anchor: paused.anchor,
                period: paused.period,
            }),
            SubscriptionState::Canceled(canceled) => canceled.paid_period,
            SubscriptionState::Draft
            | SubscriptionState::PendingPayment(_)
            | SubscriptionState::Trialing(_)
            | SubscriptionState::PastDue(_) => None,
        }
    }
}

/// Why a subscription was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The customer or the service asked for it (now, or at the end of the period).
    Requested,
    /// Checkout was not completed within its time to live.
    CheckoutExpired,
    /// Every dunning retry failed.
    DunningExhausted,
    /// An administrator used the override.
    AdminOverride,
}

impl CancelReason {
    /// The wire name, e.g. `dunning_exhausted`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::Requested => "requested",
            CancelReason::CheckoutExpired => "checkout_expired",
            CancelReason::DunningExhausted => "dunning_exhausted",
            CancelReason::AdminOverride => "admin_override",
        }
    }
}

/// A cancellation that takes effect at the end of the current period (or trial).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledCancellation {
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When it takes effect: the end of the period (or trial) it was asked in.
    pub effective_at: DateTime<Utc>,
    /// A free-text note.
    pub comment: Option<String>,
}

/// A plan change (a downgrade) that takes effect at the end of the current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledPlanChange {
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When it takes effect: the end of the period it was asked in.
    pub effective_at: DateTime<Utc>,
    /// The items after the change.
    pub items: Vec<SubscriptionItem>,
    /// The interval after the change.
    pub interval: Interval,
}

impl Active {
    /// The billing cycle this period belongs to.
    #[must_use]
    pub fn cycle(&self, interval: Interval) -> BillingCycle {
        BillingCycle::new(self.anchor, interval)
    }
}
