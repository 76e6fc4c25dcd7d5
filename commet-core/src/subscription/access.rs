//! Access: whether to serve a subscription's customer, why, and until when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Subscription;
use super::state::{ScheduledCancellation, SubscriptionState};
use crate::dunning::DunningStep;

/// Whether a past-due subscription keeps access while dunning runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PastDueAccess {
    /// Keep access until dunning is exhausted (the default, as at Commet).
    #[default]
    DuringDunning,
    /// Deny access as soon as a charge fails.
    Deny,
}

/// The engine's access rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AccessPolicy {
    /// Access while past due.
    pub past_due: PastDueAccess,
}

/// Why access is granted or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessReason {
    /// Granted: in a trial.
    Trialing,
    /// Granted: paid up.
    Active,
    /// Granted until a scheduled cancellation takes effect.
    CancellationScheduled,
    /// Granted: a charge failed, but the grace policy keeps access during dunning.
    PastDueGrace,
    /// Denied: a charge failed (and the policy denies, or dunning is exhausted).
    PastDue,
    /// Denied: not yet offered.
    Draft,
    /// Denied: checkout not completed.
    PendingPayment,
    /// Denied: paused.
    Paused,
    /// Denied: canceled (or a scheduled cancellation has taken effect).
    Canceled,
    /// Denied: the customer has no subscription.
    NoSubscription,
}

/// The answer to "should this customer be served?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    /// Serve or not.
    pub granted: bool,
    /// Why.
    pub reason: AccessReason,
    /// For a grant: the instant until which it certainly holds (the end of the period or
    /// trial, the next dunning step, or when a scheduled cancellation takes effect); after it,
    /// ask again. `None` for a denial.
    pub until: Option<DateTime<Utc>>,
}

impl Access {
    fn grant(reason: AccessReason, until: DateTime<Utc>) -> Access {
        Access {
            granted: true,
            reason,
            until: Some(until),
        }
    }

    fn deny(reason: AccessReason) -> Access {
        Access {
            granted: false,
            reason,
            until: None,
        }
    }

    /// The answer for a customer without subscriptions.
    #[must_use]
    pub fn no_subscription() -> Access {
        Access::deny(AccessReason::NoSubscription)
    }
}

/// Should `subscription`'s customer be served at `now`?
///
/// `trialing` and `active` grant (a scheduled cancellation keeps access until it takes effect,
/// even if the work that cancels has not run yet); `past_due` grants during dunning under the
/// default policy; `draft`, `pending_payment`, `paused` and `canceled` deny.
#[must_use]
pub fn access(subscription: &Subscription, now: DateTime<Utc>, policy: AccessPolicy) -> Access {
    let scheduled = |cancellation: Option<&ScheduledCancellation>, reason, until| match cancellation
    {
        Some(cancellation) if now >= cancellation.effective_at => {
            Access::deny(AccessReason::Canceled)
        }
        Some(cancellation) => Access::grant(
            AccessReason::CancellationScheduled,
            cancellation.effective_at,
        ),
        None => Access::grant(reason, until),
    };
    match subscription.state() {
        SubscriptionState::Trialing(trialing) => scheduled(
            trialing.cancellation.as_ref(),
            AccessReason::Trialing,
            trialing.trial.end(),
        ),
        SubscriptionState::Active(active) => scheduled(
            active.cancellation.as_ref(),
            AccessReason::Active,
            active.period.end(),
        ),
        SubscriptionState::PastDue(past_due) => match (policy.past_due, past_due.dunning.next) {
            (PastDueAccess::DuringDunning, DunningStep::RetryAt { at, .. }) => {
                Access::grant(AccessReason::PastDueGrace, at)
            }
            (PastDueAccess::DuringDunning, DunningStep::WaitForPaymentMethod { exhausts_at }) => {
                Access::grant(AccessReason::PastDueGrace, exhausts_at)
            }
            (PastDueAccess::DuringDunning, DunningStep::Exhausted(_))
            | (PastDueAccess::Deny, _) => Access::deny(AccessReason::PastDue),
        },
        SubscriptionState::Draft => Access::deny(AccessReason::Draft),
        SubscriptionState::PendingPayment(_) => Access::deny(AccessReason::PendingPayment),
        SubscriptionState::Paused(_) => Access::deny(AccessReason::Paused),
        SubscriptionState::Canceled(_) => Access::deny(AccessReason::Canceled),
    }
}

/// Should the customer with these `subscriptions` (newest first, as lists are) be served at
/// `now`? Granted if any subscription grants, the one granting longest winning; otherwise the
/// reason of the newest subscription, or `no_subscription` if there is none.
#[must_use]
pub fn access_for<'a>(
    subscriptions: impl IntoIterator<Item = &'a Subscription>,
    now: DateTime<Utc>,
    policy: AccessPolicy,
) -> Access {
    let mut best: Option<Access> = None;
    for subscription in subscriptions {
        let answer = access(subscription, now, policy);
        best = Some(match best {
            None => answer,
            Some(current)
                if answer.granted && (!current.granted || answer.until > current.until) =>
            {
                answer
            }
            Some(current) => current,
        });
    }
    best.unwrap_or_else(Access::no_subscription)
}
