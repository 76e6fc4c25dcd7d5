//! Invoices: list, retrieve, settle out of band, void.

use serde::Serialize;

use super::{Billing, BillingError, Result};
use crate::store::{ChangeSet, InvoiceQuery, InvoiceWrite, Page, PageRequest, StoreExt};
use commet_core::event::Event;
use commet_core::ids::InvoiceId;
use commet_core::invoice::Invoice;
use commet_core::subscription::{Command, InvoiceSummary, SubscriptionState};

/// Invoices. From [`Billing::invoices`].
#[derive(Debug, Clone, Copy)]
pub struct Invoices<'a> {
    billing: &'a Billing,
    key: Option<&'a str>,
}

#[derive(Serialize)]
struct ById {
    id: InvoiceId,
}

impl<'a> Invoices<'a> {
    pub(super) fn new(billing: &'a Billing, key: Option<&'a str>) -> Invoices<'a> {
        Invoices { billing, key }
    }

    /// Invoices matching `query` (by customer, subscription, status), newest first.
    pub async fn list(&self, query: InvoiceQuery, page: PageRequest) -> Result<Page<Invoice>> {
        Ok(self.billing.store.invoices(query, page).await?)
    }

    /// An invoice with its lines.
    pub async fn retrieve(&self, id: InvoiceId) -> Result<Invoice> {
        Ok(self.billing.store.get_invoice(id).await?)
    }

    /// Mark an outstanding or uncollectible invoice paid outside commet (cash, a bank
    /// transfer). If it is the invoice a past-due subscription is being dunned for, the
    /// subscription recovers (`payment.recovered`, `payment.received`).
    pub async fn mark_paid_out_of_band(&self, id: InvoiceId) -> Result<Invoice> {
        let billing = self.billing;
        billing
            .commit_once(
                self.key,
                "invoices.mark_paid_out_of_band",
                &ById { id },
                |now| async move {
                    let mut invoice = billing.store.get_invoice(id).await?;
                    invoice.mark_paid(now, invoice.amount_due())?;
                    let mut changes = ChangeSet::default();
                    if let Some(subscription_id) = invoice.subscription() {
                        let subscription = billing.store.get_subscription(subscription_id).await?;
                        billing.ensure_no_charge_in_flight(&subscription).await?;
                        if let SubscriptionState::PastDue(past_due) = subscription.state()
                            && past_due.dunning.invoice == id
                        {
                            let summary = InvoiceSummary::of(&invoice, None)?;
                            billing
                                .decide_into(
                                    &subscription,
                                    &Command::Recover { invoice: summary },
                                    now,
                                    &mut changes,
                                )
                                .await?;
                        }
                    }
                    let stored = crate::store::Put::of(invoice.clone()).stored();
                    changes.invoices.push(InvoiceWrite::of(invoice));
                    Ok((stored, changes))
                },
            )
            .await
    }

    /// Void an outstanding or uncollectible invoice: nothing is owed any more, the credit it
    /// used goes back to the customer (`invoice.voided`). The invoice a past-due subscription
    /// is being dunned for cannot be voided here: forgive it with the admin override, which
    /// says what happens to the subscription.
    pub async fn void(&self, id: InvoiceId) -> Result<Invoice> {
        let billing = self.billing;
        billing
            .commit_once(self.key, "invoices.void", &ById { id }, |now| async move {
                let mut invoice = billing.store.get_invoice(id).await?;
                let mut changes = ChangeSet::default();
                if let Some(subscription_id) = invoice.subscription() {
                    let subscription = billing.store.get_subscription(subscription_id).await?;
                    billing.ensure_no_charge_in_flight(&subscription).await?;
                    if let SubscriptionState::PastDue(past_due) = subscription.state()
                        && past_due.dunning.invoice == id
                    {
                        return Err(commet_core::InvalidField::new(
                            "invoice",
                            format_args!(
                                "is being collected for the past-due subscription {subscription_id}: \
                                 use the admin override to forgive it"
                            ),
                        )
                        .into());
                    }
                }
                invoice.void(now)?;
                if invoice.credit_applied().is_positive() {
                    billing
                        .customer_in(&mut changes, invoice.customer())
                        .await?
                        .adjust_credit(invoice.credit_applied(), now)?;
                }
                let summary = InvoiceSummary::of(&invoice, None)?;
                changes.events.push(billing.envelope(
                    Event::InvoiceVoided(commet_core::subscription::invoice_event_data(
                        &summary,
                        invoice.customer(),
                        invoice.subscription(),
                    )),
                    now,
                ));
                let stored = crate::store::Put::of(invoice.clone()).stored();
                changes.invoices.push(InvoiceWrite::of(invoice));
                Ok((stored, changes))
            })
            .await
    }
}

impl BillingError {
    /// True if the error is a declined payment.
    #[must_use]
    pub fn is_declined(&self) -> bool {
        matches!(self, BillingError::PaymentDeclined { .. })
    }
}
