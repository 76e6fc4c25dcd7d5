//! Invoice documents through the engine: the issuer's and the customer's legal details are
//! frozen onto an invoice when it is issued (editing the customer afterwards changes nothing,
//! neither the document nor its PDF),
//! a draft has no document, and `pdf` goes through the renderer the host plugs in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use commet_core::calendar::Interval;
use commet_core::customer::CustomerDetails;
use commet_core::fixtures::utc;
use commet_core::ids::IdGenerator;
use commet_core::invoice::{BillingDetails, InvoiceDocument, Issuer, PostalAddress};
use commet_core::invoice::{Invoice, InvoiceKind, LineItem, LineKind, NewInvoice, NewLineItem};
use commet_core::money::{Currency, RoundingPolicy};
use commet_engine::BillingError;
use commet_engine::render::{InvoiceRenderer, RenderError};
use commet_engine::store::{ChangeSet, InvoiceWrite, Store};
use commet_engine::testkit::scenarios::Harness;
use commet_pdf::PdfRenderer;
use commet_store_memory::MemoryStore;
use commet_store_sqlite::SqliteStore;

fn issuer() -> Issuer {
    Issuer {
        legal_name: "Acme Billing GmbH".into(),
        address: PostalAddress {
            line1: "Hauptstraße 1".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: Some("10115".into()),
            region: None,
            country: "DE".into(),
        },
        tax_id: Some("DE123456789".into()),
        email: "billing@acme.example".into(),
        logo: None,
        footer: Some("IBAN DE89 3704 0044 0532 0130 00".into()),
    }
}

/// A renderer that writes the document as JSON: enough to see what the engine hands over.
#[derive(Debug)]
struct JsonRenderer;

impl InvoiceRenderer for JsonRenderer {
    fn content_type(&self) -> &'static str {
        "application/json"
    }
    fn render(&self, document: &InvoiceDocument) -> Result<Vec<u8>, RenderError> {
        serde_json::to_vec(document).map_err(|e| RenderError(e.to_string()))
    }
}

#[tokio::test]
async fn the_parties_are_frozen_when_an_invoice_is_issued_on_memory() {
    Box::pin(parties_are_frozen(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parties_are_frozen_when_an_invoice_is_issued_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("billing.db"))
        .await
        .unwrap();
    Box::pin(parties_are_frozen(Arc::new(store))).await;
}

async fn parties_are_frozen(store: Arc<dyn Store>) {
    let mut h = Harness::configured(store, utc(2025, 1, 1), |config| {
        config.issuer = Some(issuer());
    });
    let pro = h.price("pro", "1234.5 USD", Interval::MONTHLY, 0).await;
    let zoe = h.customer(1).await;
    let billing_details = BillingDetails {
        legal_name: "Zoë Müller–Straße".into(),
        address: PostalAddress {
            line1: "Rue de la Paix 3".into(),
            line2: Some("Bâtiment B".into()),
            city: "Paris".into(),
            postal_code: Some("75002".into()),
            region: None,
            country: "FR".into(),
        },
        tax_id: Some("FR40303265045".into()),
    };
    h.billing
        .customers()
        .set_billing_details(zoe.id(), Some(billing_details.clone()))
        .await
        .unwrap();
    let refused = h
        .billing
        .customers()
        .set_billing_details(
            zoe.id(),
            Some(BillingDetails {
                address: PostalAddress {
                    country: "France".into(),
                    ..billing_details.address.clone()
                },
                ..billing_details.clone()
            }),
        )
        .await;
    assert!(
        matches!(&refused, Err(BillingError::Invalid(e)) if e.field == "billing.address.country"),
        "{refused:?}"
    );
    h.subscribe(zoe.id(), &pro, "pm_card_visa").await;
    let invoice = h.invoices(zoe.id()).await.remove(0);
    let document = h.billing.invoices().document(invoice.id()).await.unwrap();
    let pdf_before = PdfRenderer::new().render(&document).unwrap();
    assert_eq!(document.number, "INV-000001");
    assert_eq!(document.issuer.legal_name, "Acme Billing GmbH");
    assert_eq!(document.issuer.tax_id.as_deref(), Some("DE123456789"));
    assert_eq!(document.customer.legal_name, "Zoë Müller–Straße");
    assert_eq!(document.customer.tax_id.as_deref(), Some("FR40303265045"));
    assert_eq!(document.footer.as_deref(), issuer().footer.as_deref());
    assert_eq!(document.total, "1,234.50 USD");
    assert_eq!(document.mark.as_deref(), Some("PAID"));

    // The customer moves and renames; the issued invoice keeps what it was issued with.
    h.billing
        .customers()
        .update(
            zoe.id(),
            CustomerDetails {
                external_id: Some("user_1".into()),
                email: "zoe@new.example".into(),
                full_name: Some("Zoë M.".into()),
                metadata: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    h.billing
        .customers()
        .set_billing_details(
            zoe.id(),
            Some(BillingDetails {
                legal_name: "Zoë GmbH".into(),
                ..billing_details
            }),
        )
        .await
        .unwrap();
    let again = h.billing.invoices().document(invoice.id()).await.unwrap();
    assert_eq!(
        again, document,
        "an issued invoice's document never changes"
    );
    assert_eq!(
        PdfRenderer::new().render(&again).unwrap(),
        pdf_before,
        "nor its PDF, byte for byte"
    );

    // The rendering goes through the renderer the host plugged in.
    assert!(matches!(
        h.billing.invoices().pdf(invoice.id()).await,
        Err(BillingError::NoRenderer)
    ));
    h.billing = h.billing.with_renderer(Arc::new(JsonRenderer));
    let rendered = h.billing.invoices().pdf(invoice.id()).await.unwrap();
    assert_eq!(rendered.content_type, "application/json");
    let decoded: InvoiceDocument = serde_json::from_slice(&rendered.bytes).unwrap();
    assert_eq!(decoded, document);
    let twice = h.billing.invoices().pdf(invoice.id()).await.unwrap();
    assert_eq!(twice.bytes, rendered.bytes);
}

#[tokio::test]
async fn a_draft_has_no_document() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let h = Harness::new(store, utc(2025, 1, 1));
    let pro = h.price("pro", "10 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    // A draft, stored as the engine would keep one.
    let now = utc(2025, 1, 1);
    let mut draft = Invoice::draft(NewInvoice {
        id: IdGenerator::seeded(99).next(now),
        customer: ana.id(),
        subscription: None,
        currency: Currency::USD,
        kind: InvoiceKind::OneTime,
        period: None,
        created_at: now,
        memo: None,
        metadata: BTreeMap::new(),
    })
    .unwrap();
    draft
        .add_line(
            LineItem::new(
                NewLineItem {
                    kind: LineKind::OneTime,
                    description: "Setup".into(),
                    quantity: 1.into(),
                    unit_amount: "20 USD".parse().unwrap(),
                    period: None,
                    price: None,
                },
                RoundingPolicy::default(),
            )
            .unwrap(),
        )
        .unwrap();
    h.billing
        .store()
        .commit(ChangeSet {
            invoices: vec![InvoiceWrite::of(draft.clone())],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    let answer = h.billing.invoices().document(draft.id()).await;
    assert!(
        matches!(&answer, Err(BillingError::Invalid(e)) if e.field == "invoice"),
        "{answer:?}"
    );
    // Without an issuer configured, the seller is the organization.
    let view = h.create(ana.id(), &pro).await;
    let token = view.checkout_url.unwrap().token().unwrap().to_owned();
    h.billing
        .checkout()
        .complete(view.subscription.id(), &token, "pm_card_visa")
        .await
        .unwrap();
    let invoice = h
        .invoices(ana.id())
        .await
        .into_iter()
        .find(|invoice| invoice.number().is_some())
        .unwrap();
    let document = h.billing.invoices().document(invoice.id()).await.unwrap();
    assert_eq!(document.issuer.legal_name, "org_test");
    assert_eq!(document.customer.legal_name, "User 1");
    assert_eq!(document.customer.address, None);
}
