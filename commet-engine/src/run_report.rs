//! What a run of the due work did: [`RunReport`], merged across every deadline source.

use commet_core::ids::{DeliveryId, SubscriptionId};
use commet_core::payment::{ChargePurpose, ChargeResult};
use commet_core::subscription::Trigger;

use crate::error::BillingError;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Periods renewed (charged, or free).
    pub renewals: u64,
    /// `trial.will_end` reminders sent.
    pub trial_reminders: u64,
    /// Trials ended (charged, or free).
    pub trial_ends: u64,
    /// Dunning retries charged.
    pub dunning_retries: u64,
    /// Subscriptions whose dunning was exhausted without a charge (a hard decline's deadline);
    /// exhaustion after a failed retry is counted as the retry.
    pub dunning_exhausted: u64,
    /// Scheduled cancellations that took effect.
    pub cancellations: u64,
    /// Scheduled plan changes that took effect.
    pub plan_changes: u64,
    /// Checkouts canceled for their time to live.
    pub checkouts_expired: u64,
    /// Charges paid.
    pub charges_paid: u64,
    /// Charges declined.
    pub charges_declined: u64,
    /// Charges whose outcome is unknown (the provider failed); completed by a later run.
    pub charges_unresolved: u64,
    /// Abandoned charges (from a crashed process) completed.
    pub recovered: u64,
    /// Outbox events fanned out (whether or not an endpoint took them).
    pub events_fanned_out: u64,
    /// Webhook deliveries created from the outbox (one per event and endpoint).
    pub deliveries_created: u64,
    /// Webhook attempts sent.
    pub webhook_attempts: u64,
    /// Webhook deliveries that succeeded.
    pub webhooks_delivered: u64,
    /// Webhook deliveries that failed for good (retries used up, `410`, endpoint disabled or
    /// deleted).
    pub webhooks_failed: u64,
    /// Deliveries that could not be sent (their event missing from the outbox, an event that
    /// does not sign): left as they are for this run, each with the reason.
    pub webhook_failures: Vec<WebhookFailure>,
    /// Commits made.
    pub commits: u64,
    /// Subscriptions whose due work the domain refused (a bug, or data edited by hand): left
    /// as they are for this run, each with the reason.
    pub failures: Vec<DueFailure>,
}

/// A subscription whose due work could not be done. See [`RunReport::failures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueFailure {
    /// The subscription.
    pub subscription: SubscriptionId,
    /// Why.
    pub error: BillingError,
}

/// A webhook delivery that could not be sent. See [`RunReport::webhook_failures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookFailure {
    /// The delivery.
    pub delivery: DeliveryId,
    /// Why.
    pub error: BillingError,
}

impl RunReport {
    pub(crate) fn merge(&mut self, other: RunReport) {
        self.renewals += other.renewals;
        self.trial_reminders += other.trial_reminders;
        self.trial_ends += other.trial_ends;
        self.dunning_retries += other.dunning_retries;
        self.dunning_exhausted += other.dunning_exhausted;
        self.cancellations += other.cancellations;
        self.plan_changes += other.plan_changes;
        self.checkouts_expired += other.checkouts_expired;
        self.charges_paid += other.charges_paid;
        self.charges_declined += other.charges_declined;
        self.charges_unresolved += other.charges_unresolved;
        self.recovered += other.recovered;
        self.events_fanned_out += other.events_fanned_out;
        self.deliveries_created += other.deliveries_created;
        self.webhook_attempts += other.webhook_attempts;
        self.webhooks_delivered += other.webhooks_delivered;
        self.webhooks_failed += other.webhooks_failed;
        self.commits += other.commits;
        self.failures.extend(other.failures);
        self.webhook_failures.extend(other.webhook_failures);
    }

    /// Did the run change anything?
    #[must_use]
    pub fn did_work(&self) -> bool {
        self.renewals
            + self.trial_reminders
            + self.trial_ends
            + self.dunning_retries
            + self.dunning_exhausted
            + self.cancellations
            + self.plan_changes
            + self.checkouts_expired
            + self.recovered
            + self.events_fanned_out
            + self.deliveries_created
            + self.webhook_attempts
            + self.webhooks_failed
            > 0
    }

    /// Count a decision of the due work by its row.
    pub(crate) fn count(&mut self, trigger: Trigger) {
        match trigger {
            Trigger::TrialReminder => self.trial_reminders += 1,
            Trigger::ScheduledCancellationTakesEffect => self.cancellations += 1,
            Trigger::ScheduledPlanChangeTakesEffect => self.plan_changes += 1,
            Trigger::DunningExhausted | Trigger::DunningExhaustedKeptPastDue => {
                self.dunning_exhausted += 1;
            }
            Trigger::CheckoutExpired => self.checkouts_expired += 1,
            Trigger::TrialEndPaid | Trigger::TrialEndFailed => self.trial_ends += 1,
            _ => self.renewals += 1,
        }
    }

    /// Count a charge the due work recorded.
    pub(crate) fn count_charge(&mut self, purpose: ChargePurpose) {
        match purpose {
            ChargePurpose::TrialEnd => self.trial_ends += 1,
            ChargePurpose::DunningRetry => self.dunning_retries += 1,
            _ => self.renewals += 1,
        }
    }

    /// Count a charge's result.
    pub(crate) fn count_result(&mut self, result: &ChargeResult) {
        match result {
            ChargeResult::Paid { .. } => self.charges_paid += 1,
            ChargeResult::Declined { .. } => self.charges_declined += 1,
        }
    }
}
