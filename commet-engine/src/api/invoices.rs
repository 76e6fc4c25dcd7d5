//! Invoices: list, retrieve, settle out of band, void; their documents and rendered files.

use std::sync::Arc;

use commet_core::catalog::Catalog;
use commet_core::ids::InvoiceId;
use commet_core::invoice::{Invoice, InvoiceDocument};
use commet_core::subscription::void;

use super::ById;
use super::subscriptions::stored;
use crate::billing::Billing;
use crate::error::{BillingError, Result};
use crate::render::RenderedInvoice;
use crate::request::Prepared;
use crate::store::{InvoiceQuery, Page, PageRequest, StoreExt};
use crate::writes::Writes;

/// Invoices. From [`Billing::invoices`].
#[derive(Debug, Clone, Copy)]
pub struct Invoices<'a> {
    billing: &'a Billing,
    key: Option<&'a str>,
}

impl<'a> Invoices<'a> {
    pub(crate) fn new(billing: &'a Billing, key: Option<&'a str>) -> Invoices<'a> {
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

    /// The document of an issued invoice: everything a rendering shows, with the parties
    /// recorded when it was issued (editing the customer later changes nothing here). A draft
    /// has none (`Invalid`, naming `invoice`).
    pub async fn document(&self, id: InvoiceId) -> Result<InvoiceDocument> {
        let invoice = self.billing.store.get_invoice(id).await?;
        Ok(InvoiceDocument::of(&invoice)?)
    }

    /// The invoice rendered by the engine's renderer ([`Billing::with_renderer`]): with
    /// `commet_pdf::PdfRenderer`, a PDF. Without a renderer, [`BillingError::NoRenderer`].
    ///
    /// [`Billing::with_renderer`]: crate::Billing::with_renderer
    /// [`BillingError::NoRenderer`]: crate::BillingError::NoRenderer
    pub async fn pdf(&self, id: InvoiceId) -> Result<RenderedInvoice> {
        let renderer = self
            .billing
            .renderer
            .as_ref()
            .ok_or(BillingError::NoRenderer)?;
        let document = self.document(id).await?;
        Ok(RenderedInvoice {
            content_type: renderer.content_type(),
            bytes: renderer.render(&document)?,
        })
    }

    /// Mark an outstanding or uncollectible invoice paid outside commet (cash, a bank
    /// transfer). If it is the invoice a past-due subscription is being dunned for, the
    /// subscription recovers (`payment.recovered`, `payment.received`).
    pub async fn mark_paid_out_of_band(&self, id: InvoiceId) -> Result<Invoice> {
        let billing = self.billing;
        let prepare = |catalog: Arc<Catalog>, now| async move {
            let mut invoice = billing.store.get_invoice(id).await?;
            let mut writes = Writes::default();
            match invoice.subscription() {
                Some(subscription) => {
                    let subscription = billing.store.get_subscription(subscription).await?;
                    let (paid, recovery) = subscription
                        .invoice_paid_out_of_band(&invoice, &billing.context(&catalog, now))?;
                    invoice = paid;
                    if let Some(decision) = recovery {
                        billing.apply_decision(&mut writes, decision, now).await?;
                    }
                }
                None => invoice.mark_paid(now, invoice.amount_due())?,
            }
            let answer = stored(&invoice);
            writes.put_invoice(invoice, None);
            Ok(Prepared::Commit { writes, answer })
        };
        billing
            .request(
                self.key,
                "invoices.mark_paid_out_of_band",
                &ById { id },
                prepare,
                None,
            )
            .await
    }

    /// Void an outstanding or uncollectible invoice: nothing is owed any more, the credit it
    /// used goes back to the customer (`invoice.voided`). The invoice a past-due subscription
    /// is being dunned for cannot be voided here: forgive it with the admin override, which
    /// says what happens to the subscription.
    pub async fn void(&self, id: InvoiceId) -> Result<Invoice> {
        let billing = self.billing;
        let prepare = |_, now| async move {
            let mut invoice = billing.store.get_invoice(id).await?;
            if let Some(subscription) = invoice.subscription() {
                billing
                    .store
                    .get_subscription(subscription)
                    .await?
                    .check_void(&invoice)?;
            }
            let mut customer = billing.store.get_customer(invoice.customer()).await?;
            let before = customer.clone();
            let event = void(&mut invoice, &mut customer, now)?;
            let mut writes = Writes::default();
            writes.changes.events = billing.envelopes([event], now);
            if customer != before {
                writes.put_customer(customer);
            }
            let answer = stored(&invoice);
            writes.put_invoice(invoice, None);
            Ok(Prepared::Commit { writes, answer })
        };
        billing
            .request(self.key, "invoices.void", &ById { id }, prepare, None)
            .await
    }
}
