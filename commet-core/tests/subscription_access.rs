//! Access answers for every status, under both past-due policies.
#![allow(clippy::unwrap_used)]

use commet_core::dunning::{Exhaustion, InvoiceOnExhaustion, SubscriptionOnExhaustion};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::subscription::{
    Access, AccessPolicy, AccessReason, Command, PastDueAccess, access,
};

const GRACE: AccessPolicy = AccessPolicy {
    past_due: PastDueAccess::DuringDunning,
};
const STRICT: AccessPolicy = AccessPolicy {
    past_due: PastDueAccess::Deny,
};

fn denied(reason: AccessReason) -> Access {
    Access {
        granted: false,
        reason,
        until: None,
    }
}

#[test]
fn statuses_without_a_paid_or_trial_period_deny() {
    let c = Fixtures::new();
    let now = utc(2024, 2, 10);
    for (subscription, reason) in [
        (c.draft(), AccessReason::Draft),
        (c.pending(), AccessReason::PendingPayment),
        (c.paused(), AccessReason::Paused),
        (c.canceled(), AccessReason::Canceled),
    ] {
        for policy in [GRACE, STRICT] {
            assert_eq!(access(&subscription, now, policy), denied(reason));
        }
    }
}

#[test]
fn active_and_trialing_grant_until_the_period_or_trial_ends() {
    let c = Fixtures::new();
    let now = utc(2024, 2, 10);
    for policy in [GRACE, STRICT] {
        let active = access(&c.active(), now, policy);
        assert_eq!(
            active,
            Access {
                granted: true,
                reason: AccessReason::Active,
                until: Some(utc(2024, 2, 29))
            }
        );
        let trialing = access(&c.trialing(), now, policy);
        assert_eq!(
            trialing,
            Access {
                granted: true,
                reason: AccessReason::Trialing,
                until: Some(utc(2024, 2, 14))
            }
        );
    }
}

#[test]
fn a_scheduled_cancellation_keeps_access_until_it_takes_effect() {
    let c = Fixtures::new();
    let scheduled = c.apply(
        &c.active(),
        &Command::ScheduleCancellation { comment: None },
        utc(2024, 2, 5),
    );
    assert_eq!(
        access(&scheduled, utc(2024, 2, 28), GRACE),
        Access {
            granted: true,
            reason: AccessReason::CancellationScheduled,
            until: Some(utc(2024, 2, 29))
        }
    );
    // At the period end access ends, even before the work that cancels has run.
    assert_eq!(
        access(&scheduled, utc(2024, 2, 29), GRACE),
        denied(AccessReason::Canceled)
    );
}

#[test]
fn past_due_grants_during_dunning_only_under_the_grace_policy() {
    let c = Fixtures::new();
    let past_due = c.past_due();
    let now = utc(2024, 2, 29);
    assert_eq!(
        access(&past_due, now, GRACE),
        Access {
            granted: true,
            reason: AccessReason::PastDueGrace,
            until: Some(utc(2024, 3, 1))
        }
    );
    assert_eq!(
        access(&past_due, now, STRICT),
        denied(AccessReason::PastDue)
    );
    // Exhausted but kept past due: no more grace.
    let exhausted = c.apply(
        &past_due,
        &Command::ExhaustDunning {
            policy: Exhaustion {
                subscription: SubscriptionOnExhaustion::KeepPastDue,
                invoice: InvoiceOnExhaustion::MarkUncollectible,
            },
        },
        utc(2024, 3, 1),
    );
    assert_eq!(
        access(&exhausted, utc(2024, 3, 1), GRACE),
        denied(AccessReason::PastDue)
    );
}

#[test]
fn the_default_policy_is_grace_during_dunning() {
    assert_eq!(AccessPolicy::default(), GRACE);
}
