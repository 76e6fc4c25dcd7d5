//! Customers: create, update, find, and the payment method on file.

use commet_core::customer::{Customer, CustomerDetails};
use commet_core::event::Event;
use commet_core::ids::{CustomerId, SubscriptionId};
use commet_core::invoice::BillingDetails;
use commet_core::subscription::SubscriptionStatus;
use serde::Serialize;

use crate::api::Subscriptions;
use crate::billing::Billing;
use crate::error::{BillingError, Result};
use crate::request::{Prepared, derived_key};
use crate::store::{EntityKind, Page, PageRequest, Put, StoreExt, SubscriptionQuery, every_page};
use crate::writes::Writes;

/// Customers. From [`Billing::customers`].
#[derive(Debug, Clone, Copy)]
pub struct Customers<'a> {
    billing: &'a Billing,
    key: Option<&'a str>,
}

impl<'a> Customers<'a> {
    pub(crate) fn new(billing: &'a Billing, key: Option<&'a str>) -> Customers<'a> {
        Customers { billing, key }
    }

    /// Create a customer; emits `customer.created`. An external id already taken is
    /// [`BillingError::Store`] `AlreadyExists`.
    pub async fn create(&self, details: CustomerDetails) -> Result<Customer> {
        let billing = self.billing;
        let details = &details;
        let prepare = |_, now| async move {
            let customer = Customer::new(billing.ids.next(now), details.clone(), now)?;
            Ok(billing.customer_written(customer, Event::CustomerCreated, now))
        };
        billing
            .request(self.key, "customers.create", details, prepare, None)
            .await
    }

    /// Replace a customer's details; emits `customer.updated`.
    pub async fn update(&self, id: CustomerId, details: CustomerDetails) -> Result<Customer> {
        #[derive(Serialize)]
        struct Request<'r> {
            id: CustomerId,
            details: &'r CustomerDetails,
        }
        let billing = self.billing;
        let details = &details;
        let prepare = |_, now| async move {
            let mut customer = billing.store.get_customer(id).await?;
            customer.update(details.clone(), now)?;
            Ok(billing.customer_written(customer, Event::CustomerUpdated, now))
        };
        billing
            .request(
                self.key,
                "customers.update",
                &Request { id, details },
                prepare,
                None,
            )
            .await
    }

    /// Set (or clear, with `None`) the billing details (legal name, address with country, tax
    /// id) that invoices issued from now on carry; emits `customer.updated`. Invoices already
    /// issued keep the details they were issued with.
    pub async fn set_billing_details(
        &self,
        id: CustomerId,
        billing_details: Option<BillingDetails>,
    ) -> Result<Customer> {
        #[derive(Serialize)]
        struct Request<'r> {
            id: CustomerId,
            billing_details: &'r Option<BillingDetails>,
        }
        let billing = self.billing;
        let details = &billing_details;
        let prepare = |_, now| async move {
            let mut customer = billing.store.get_customer(id).await?;
            customer.set_billing_details(details.clone(), now)?;
            Ok(billing.customer_written(customer, Event::CustomerUpdated, now))
        };
        billing
            .request(
                self.key,
                "customers.set_billing_details",
                &Request {
                    id,
                    billing_details: details,
                },
                prepare,
                None,
            )
            .await
    }

    /// Put a payment method on file (the provider's reference, `pm_...`); emits
    /// `customer.updated`. Every past-due subscription of the customer is then retried at once
    /// with the new method (DESIGN.md section 8); the customer is returned either way, and a
    /// declined retry is reported by the subscription's events.
    ///
    /// With an idempotency key, each retry is made under a key derived from it and the
    /// subscription, so repeating the call replays the retries it made instead of charging
    /// again (and makes those a crash interrupted).
    pub async fn set_payment_method(
        &self,
        id: CustomerId,
        payment_method: &str,
    ) -> Result<Customer> {
        #[derive(Serialize)]
        struct Request<'r> {
            id: CustomerId,
            payment_method: &'r str,
        }
        let billing = self.billing;
        let prepare = |_, now| async move {
            let mut customer = billing.store.get_customer(id).await?;
            customer.set_payment_method(payment_method, now)?;
            Ok(billing.customer_written(customer, Event::CustomerUpdated, now))
        };
        let customer = billing
            .request(
                self.key,
                "customers.set_payment_method",
                &Request { id, payment_method },
                prepare,
                None,
            )
            .await?;
        let query = SubscriptionQuery {
            customer: Some(id),
            status: Some(SubscriptionStatus::PastDue),
        };
        let past_due: Vec<SubscriptionId> =
            every_page(|page| billing.store.subscriptions(query, page))
                .await?
                .iter()
                .map(commet_core::subscription::Subscription::id)
                .collect();
        for subscription in past_due {
            let retry_key = self
                .key
                .map(|key| derived_key(key, &format!("retry:{subscription}")));
            let retried = Subscriptions::new(billing, retry_key.as_deref())
                .retry_payment(subscription)
                .await;
            match retried {
                // A decline is recorded by the settlement (dunning goes on); a provider error
                // leaves the charge to the recovery of abandoned charges; a charge already in
                // flight, or a subscription that moved on, has nothing to retry now.
                Ok(_)
                | Err(
                    BillingError::PaymentDeclined { .. }
                    | BillingError::Gateway(_)
                    | BillingError::PaymentInProgress { .. }
                    | BillingError::Subscription(_),
                ) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(customer)
    }

    /// A customer by id.
    pub async fn get(&self, id: CustomerId) -> Result<Customer> {
        Ok(self.billing.store.get_customer(id).await?)
    }

    /// The customer with this external id (the service's own id for them).
    pub async fn find_by_external_id(&self, external_id: &str) -> Result<Customer> {
        self.billing
            .store
            .customer_by_external_id(external_id)
            .await?
            .ok_or_else(|| BillingError::not_found(EntityKind::Customer, external_id))
    }

    /// Customers, newest first.
    pub async fn list(&self, page: PageRequest) -> Result<Page<Customer>> {
        Ok(self.billing.store.customers(page).await?)
    }
}

impl Billing {
    /// The commit that writes `customer` and announces it with `event`.
    fn customer_written(
        &self,
        customer: Customer,
        event: fn(commet_core::event::payload::CustomerData) -> Event,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Prepared<Customer> {
        let stored = Put::of(customer.clone()).stored();
        let mut writes = Writes::default();
        writes.changes.events = self.envelopes([event(stored.event_data())], now);
        writes.put_customer(customer);
        Prepared::Commit {
            writes,
            answer: stored,
        }
    }
}
