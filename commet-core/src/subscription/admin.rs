//! The admin override: support staff set a status directly, with a reason.
//!
//! This answers the seed's missing "subscription update endpoint": manual activation (free
//! trials, migrations, refunds), forgiving a past-due subscription, cancelling, restoring. It
//! goes through the same transition function as everything else, via its own table
//! ([`override_allowed`](super::override_allowed)), requires a reason and an actor, and emits
//! `subscription.updated` with the previous status, the actor and the reason, followed by the
//! lifecycle event the same change would emit in the normal flow (`subscription.activated`,
//! `subscription.reactivated` or `subscription.canceled`), so receivers that provision or revoke
//! on those events see overrides too.

use super::command::{AdminUpdate, OpenInvoicePolicy};
use chrono::{DateTime, Utc};

use super::decision::{InvoiceAction, SubscriptionError};
use super::rules::{Step, canceled, fresh_period};
use super::state::{Active, CancelReason, Paused, SubscriptionState};
use super::transition::{Trigger, transition};
use super::{Subscription, SubscriptionStatus};
use crate::InvalidField;
use crate::validation::check_text;

/// Decide an override: the new state and the invoice actions.
pub(super) fn decide<'a>(
    subscription: &Subscription,
    update: &'a AdminUpdate,
    now: DateTime<Utc>,
) -> Result<Step<'a>, SubscriptionError> {
    // The override table first: a refused target is `IllegalTransition`, whatever else is wrong.
    transition(
        Some(subscription.status()),
        Trigger::Override(update.status),
    )?;
    check_text("reason", &update.reason, true, 500)?;
    check_text("actor", &update.actor, true, 200)?;
    let mut actions = Vec::new();
    let open_invoice = match subscription.state() {
        SubscriptionState::PastDue(past_due) => Some(past_due.dunning.invoice),
        _ => None,
    };
    match (open_invoice, update.invoice_policy) {
        (Some(invoice), Some(OpenInvoicePolicy::Void)) => {
            actions.push(InvoiceAction::Void(invoice));
        }
        (Some(invoice), Some(OpenInvoicePolicy::MarkPaidOutOfBand)) => {
            actions.push(InvoiceAction::MarkPaidOutOfBand(invoice));
        }
        (Some(_), None) => {
            return Err(InvalidField::new(
                "invoice_policy",
                "the subscription is past due: say whether its open invoice is voided or marked paid out of band",
            )
            .into());
        }
        (None, Some(_)) => {
            return Err(InvalidField::new(
                "invoice_policy",
                "the subscription has no open invoice",
            )
            .into());
        }
        (None, None) => {}
    }
    let state = match (subscription.state(), update.status) {
        // Forgiven: the past-due period becomes a paid one, anchor unchanged.
        (SubscriptionState::PastDue(past_due), SubscriptionStatus::Active) => {
            SubscriptionState::Active(Active {
                anchor: past_due.anchor,
                period: past_due.period,
                cancellation: None,
                plan_change: None,
            })
        }
        // Activated by hand: a fresh period from now, never an active subscription without one.
        (_, SubscriptionStatus::Active) => fresh_period(subscription.interval(), now)?,
        (SubscriptionState::Active(active), SubscriptionStatus::Paused) => {
            SubscriptionState::Paused(Paused {
                paused_at: now,
                anchor: active.anchor,
                period: active.period,
            })
        }
        (state, SubscriptionStatus::Canceled) => canceled(
            now,
            CancelReason::AdminOverride,
            Some(update.reason.clone()),
            state.paid_period(),
        ),
        (
            _,
            SubscriptionStatus::Draft
            | SubscriptionStatus::PendingPayment
            | SubscriptionStatus::Trialing
            | SubscriptionStatus::PastDue
            | SubscriptionStatus::Paused,
        ) => {
            return Err(SubscriptionError::Internal {
                reason: format!("the override table allowed {}", update.status),
            });
        }
    };
    let mut step = Step::new(state);
    step.actions = actions;
    step.facts.admin = Some(update);
    Ok(step)
}
