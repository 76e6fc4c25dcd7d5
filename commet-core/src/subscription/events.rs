//! Events of a decision, built from the table row: one event per kind the row names, in order.
//!
//! The decide functions never list events themselves; they hand over the facts (the invoice,
//! the failure, the admin update ...) and this module turns the row's event kinds into typed
//! events. So a decision emits exactly the events its row names, by construction.

use super::command::AdminUpdate;
use super::command::{CheckoutOffer, FailedCharge};
use super::decision::{Context, SubscriptionError};
use super::state::{Dunning, ScheduledCancellation, ScheduledPlanChange, SubscriptionState};
use super::transition::Transition;
use super::{Subscription, SubscriptionItem};
use crate::InvalidField;
use crate::event::payload::{
    CancellationRevokedData, CancellationScheduledData, CheckoutReadyData, InvoiceData,
    PastDueData, PaymentFailedData, PaymentReceivedData, PaymentRecoveredData,
    PaymentRetryFailedData, PlanChangeRevokedData, PlanChangeScheduledData, PlanChangedData,
    PlanRef, SubscriptionActivatedData, SubscriptionCanceledData, SubscriptionCreatedData,
    SubscriptionPaymentFailedData, TrialConvertedData, TrialData,
};
use crate::event::{Event, EventKind};
use crate::invoice::InvoiceSummary;

/// The facts a decision hands over for its events.
#[derive(Debug, Default)]
pub(super) struct EventContext<'a> {
    /// The checkout offered (`checkout.ready`).
    pub checkout: Option<&'a CheckoutOffer>,
    /// The invoice settled or attempted; `None` for a free subscription (no invoice events).
    pub settlement: Option<&'a InvoiceSummary>,
    /// A failed charge and which attempt it was.
    pub failure: Option<FailureContext<'a>>,
    /// Failed attempts before a recovery.
    pub recovered_after: Option<u32>,
    /// The dunning record at exhaustion.
    pub exhausted: Option<Dunning>,
    /// The cancellation a revoke removed.
    pub revoked_cancellation: Option<ScheduledCancellation>,
    /// The plan change a revoke removed.
    pub revoked_plan_change: Option<ScheduledPlanChange>,
    /// The admin override.
    pub admin: Option<&'a AdminUpdate>,
}

/// A failed charge and its attempt number (1 for the first charge).
#[derive(Debug)]
pub(super) struct FailureContext<'a> {
    pub charge: &'a FailedCharge,
    pub attempt: u32,
}

fn missing(kind: EventKind, what: &str) -> SubscriptionError {
    SubscriptionError::Internal {
        reason: format!("{kind} needs {what}, which the decision did not provide"),
    }
}

fn plan_ref(
    items: &[SubscriptionItem],
    context: &Context<'_>,
) -> Result<PlanRef, SubscriptionError> {
    let item = items
        .first()
        .ok_or_else(|| InvalidField::new("items", "a subscription has at least one item"))?;
    let plan = context.catalog.plan(item.plan)?;
    Ok(PlanRef {
        id: plan.id(),
        name: plan.name().to_owned(),
    })
}

/// Build the events of `row` for the change `before` -> `after`.
#[allow(clippy::too_many_lines)] // one arm per event kind
pub(super) fn build(
    row: &Transition,
    after: &Subscription,
    before: Option<&Subscription>,
    facts: &EventContext<'_>,
    context: &Context<'_>,
) -> Result<Vec<Event>, SubscriptionError> {
    let mut events = Vec::with_capacity(row.events.len());
    let subscription_id = after.id();
    let customer_id = after.customer();
    let status = after.status();
    let period = after.current_period();
    for &kind in row.events {
        let settlement = facts.settlement;
        let invoice = || settlement.ok_or_else(|| missing(kind, "an invoice"));
        let failure = || {
            facts
                .failure
                .as_ref()
                .ok_or_else(|| missing(kind, "a failed charge"))
        };
        let provider = || context.provider.map(str::to_owned);
        let event = match kind {
            // A free subscription is never invoiced: no invoice, no invoice events.
            EventKind::InvoiceCreated | EventKind::PaymentReceived if settlement.is_none() => {
                continue;
            }
            EventKind::SubscriptionCreated => {
                let plan = plan_ref(after.items(), context)?;
                Event::SubscriptionCreated(SubscriptionCreatedData {
                    subscription_id,
                    customer_id,
                    plan_id: plan.id,
                    plan_name: plan.name,
                    status,
                    start_date: after.created_at(),
                })
            }
            EventKind::SubscriptionActivated | EventKind::SubscriptionReactivated => {
                let data = SubscriptionActivatedData {
                    subscription_id,
                    customer_id,
                    status,
                    current_period_start: period.map(|p| p.start()),
                    current_period_end: period.map(|p| p.end()),
                    invoice_id: settlement.map(|i| i.id),
                    invoice_number: settlement.map(|i| i.number.clone()),
                    invoice_total: settlement.map(|i| i.total.minor_units()),
                    invoice_currency: after.currency(),
                    provider: settlement
                        .and_then(|i| i.payment_id.as_ref())
                        .and(provider()),
                };
                if kind == EventKind::SubscriptionActivated {
                    Event::SubscriptionActivated(data)
                } else {
                    Event::SubscriptionReactivated(data)
                }
            }
            EventKind::SubscriptionCanceled | EventKind::SubscriptionUpdated => {
                let (canceled_at, cancel_reason, end_date) = match after.state() {
                    SubscriptionState::Canceled(canceled) => (
                        Some(canceled.canceled_at),
                        canceled
                            .comment
                            .clone()
                            .or_else(|| Some(canceled.reason.as_str().to_owned())),
                        Some(canceled.canceled_at),
                    ),
                    SubscriptionState::Active(super::Active {
                        cancellation: Some(scheduled),
                        ..
                    })
                    | SubscriptionState::Trialing(super::Trialing {
                        cancellation: Some(scheduled),
                        ..
                    }) => (
                        Some(scheduled.requested_at),
                        scheduled.comment.clone(),
                        Some(scheduled.effective_at),
                    ),
                    _ => (None, None, None),
                };
                let data = SubscriptionCanceledData {
                    subscription_id,
                    customer_id,
                    status,
                    canceled_at,
                    cancel_reason,
                    end_date,
                    previous_status: before.map(Subscription::status),
                    actor: facts.admin.map(|admin| admin.actor.clone()),
                    reason: facts.admin.map(|admin| admin.reason.clone()),
                };
                if kind == EventKind::SubscriptionCanceled {
                    Event::SubscriptionCanceled(data)
                } else {
                    Event::SubscriptionUpdated(data)
                }
            }
            EventKind::SubscriptionCancellationScheduled => {
                let scheduled = match after.state() {
                    SubscriptionState::Active(active) => active.cancellation.as_ref(),
                    SubscriptionState::Trialing(trialing) => trialing.cancellation.as_ref(),
                    _ => None,
                }
                .ok_or_else(|| missing(kind, "a scheduled cancellation"))?;
                Event::SubscriptionCancellationScheduled(CancellationScheduledData {
                    subscription_id,
                    customer_id,
                    status,
                    canceled_at: scheduled.requested_at,
                    cancel_reason: scheduled.comment.clone(),
                    effective_at: scheduled.effective_at,
                })
            }
            EventKind::SubscriptionCancellationRevoked => {
                Event::SubscriptionCancellationRevoked(CancellationRevokedData {
                    subscription_id,
                    customer_id,
                    status,
                    current_period_end: period.map(|p| p.end()),
                })
            }
            EventKind::SubscriptionPlanChanged => {
                let before = before.ok_or_else(|| missing(kind, "the previous subscription"))?;
                let (credit, charge, total_charged) = settlement.map_or((0, 0, 0), |invoice| {
                    let credit = invoice.credited.minor_units();
                    (
                        credit,
                        invoice.total.minor_units().saturating_add(credit),
                        invoice.amount_paid.minor_units(),
                    )
                });
                Event::SubscriptionPlanChanged(PlanChangedData {
                    subscription_id,
                    customer_id,
                    previous_plan: plan_ref(before.items(), context)?,
                    current_plan: plan_ref(after.items(), context)?,
                    billing_interval: after.interval().frequency(),
                    interval_count: after.interval().count(),
                    credit,
                    charge,
                    total_charged,
                })
            }
            EventKind::SubscriptionPlanChangeScheduled => {
                let SubscriptionState::Active(super::Active {
                    plan_change: Some(change),
                    ..
                }) = after.state()
                else {
                    return Err(missing(kind, "a scheduled plan change"));
                };
                Event::SubscriptionPlanChangeScheduled(PlanChangeScheduledData {
                    subscription_id,
                    customer_id,
                    status,
                    current_plan: plan_ref(after.items(), context)?,
                    scheduled_plan: plan_ref(&change.items, context)?,
                    billing_interval: after.interval().frequency(),
                    scheduled_billing_interval: change.interval.frequency(),
                    effective_at: change.effective_at,
                })
            }
            EventKind::SubscriptionPlanChangeRevoked => {
                let revoked = facts
                    .revoked_plan_change
                    .as_ref()
                    .ok_or_else(|| missing(kind, "the revoked plan change"))?;
                Event::SubscriptionPlanChangeRevoked(PlanChangeRevokedData {
                    subscription_id,
                    customer_id,
                    status,
                    current_plan: plan_ref(after.items(), context)?,
                    revoked_plan: plan_ref(&revoked.items, context)?,
                    billing_interval: after.interval().frequency(),
                    revoked_billing_interval: revoked.interval.frequency(),
                })
            }
            EventKind::SubscriptionPastDue => {
                let failure = failure()?;
                Event::SubscriptionPastDue(PastDueData {
                    subscription_id,
                    customer_id,
                    status,
                    invoice_id: failure.charge.invoice.id,
                    invoice_number: failure.charge.invoice.number.clone(),
                    retry_at: failure.charge.next.retry_at(),
                })
            }
            EventKind::SubscriptionPaymentFailed => {
                let failure = failure()?;
                Event::SubscriptionPaymentFailed(SubscriptionPaymentFailedData {
                    subscription_id,
                    customer_id,
                    error_code: failure.charge.failure.code.clone(),
                    error_message: failure.charge.failure.message.clone(),
                    retry_at: failure.charge.next.retry_at(),
                    invoice_id: failure.charge.invoice.id,
                    attempt: failure.attempt,
                })
            }
            EventKind::TrialStarted | EventKind::TrialWillEnd | EventKind::TrialExpired => {
                let trialing = [Some(after), before]
                    .into_iter()
                    .flatten()
                    .find_map(|s| match s.state() {
                        SubscriptionState::Trialing(trialing) => Some(trialing.trial),
                        _ => None,
                    })
                    .ok_or_else(|| missing(kind, "a trial"))?;
                let plan = plan_ref(after.items(), context)?;
                let data = TrialData {
                    subscription_id,
                    customer_id,
                    status,
                    plan_id: plan.id,
                    plan_name: plan.name,
                    trial_ends_at: trialing.end(),
                };
                match kind {
                    EventKind::TrialStarted => Event::TrialStarted(data),
                    EventKind::TrialWillEnd => Event::TrialWillEnd(data),
                    _ => Event::TrialExpired(data),
                }
            }
            EventKind::TrialConverted => {
                let plan = plan_ref(after.items(), context)?;
                Event::TrialConverted(TrialConvertedData {
                    subscription_id,
                    customer_id,
                    status,
                    plan_id: plan.id,
                    plan_name: plan.name,
                })
            }
            EventKind::CheckoutReady => {
                let checkout = facts.checkout.ok_or_else(|| missing(kind, "a checkout"))?;
                Event::CheckoutReady(CheckoutReadyData {
                    subscription_id,
                    customer_id,
                    invoice_id: None,
                    invoice_number: None,
                    invoice_total: checkout.amount.minor_units(),
                    invoice_currency: checkout.amount.currency(),
                    checkout_url: checkout.url.clone(),
                })
            }
            EventKind::PaymentReceived => {
                let invoice = invoice()?;
                Event::PaymentReceived(PaymentReceivedData {
                    invoice_id: invoice.id,
                    invoice_number: invoice.number.clone(),
                    invoice_total: invoice.total.minor_units(),
                    customer_id,
                    subscription_id: Some(subscription_id),
                    payment_transaction_id: invoice.payment_id.clone(),
                    provider: invoice.payment_id.as_ref().and(provider()),
                    gross_amount: invoice.amount_paid.minor_units(),
                    currency: invoice.total.currency(),
                    paid_at: context.now,
                })
            }
            EventKind::PaymentFailed => {
                let failure = failure()?;
                Event::PaymentFailed(PaymentFailedData {
                    invoice_id: failure.charge.invoice.id,
                    invoice_number: failure.charge.invoice.number.clone(),
                    customer_id,
                    subscription_id: Some(subscription_id),
                    provider: provider(),
                    failure_code: failure.charge.failure.code.clone(),
                    failure_message: failure.charge.failure.message.clone(),
                    recovery_url: failure.charge.recovery_url.clone(),
                    retry_at: failure.charge.next.retry_at(),
                    attempt: failure.attempt,
                })
            }
            EventKind::PaymentRecovered => {
                let invoice = invoice()?;
                Event::PaymentRecovered(PaymentRecoveredData {
                    invoice_id: invoice.id,
                    invoice_number: invoice.number.clone(),
                    invoice_total: invoice.total.minor_units(),
                    customer_id,
                    subscription_id: Some(subscription_id),
                    provider: invoice.payment_id.as_ref().and(provider()),
                    failed_attempts: facts.recovered_after.unwrap_or_default(),
                })
            }
            EventKind::PaymentRetryFailed => {
                let dunning = facts
                    .exhausted
                    .as_ref()
                    .ok_or_else(|| missing(kind, "the exhausted dunning record"))?;
                Event::PaymentRetryFailed(PaymentRetryFailedData {
                    invoice_id: dunning.invoice,
                    customer_id,
                    subscription_id,
                    provider: provider(),
                    reason: dunning.last_failure.code.clone(),
                    failure_message: dunning.last_failure.message.clone(),
                    failed_attempts: dunning.failed_attempts,
                })
            }
            EventKind::InvoiceCreated => Event::InvoiceCreated(InvoiceData::of(
                invoice()?,
                after.customer(),
                Some(after.id()),
            )),
            EventKind::InvoiceVoided
            | EventKind::CustomerCreated
            | EventKind::CustomerUpdated
            | EventKind::WebhookTest => {
                return Err(missing(
                    kind,
                    "an invoice or customer decision, not a subscription one",
                ));
            }
        };
        events.push(event);
    }
    Ok(events)
}
