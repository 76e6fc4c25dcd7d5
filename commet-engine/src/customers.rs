//! Customers: create, update, find, and the payment method on file.

use serde::Serialize;

use super::{Billing, BillingError, Result};
use crate::store::{ChangeSet, EntityKind, Page, PageRequest, Put, StoreExt};
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::event::Event;
use commet_core::ids::CustomerId;

/// Customers. From [`Billing::customers`].
#[derive(Debug, Clone, Copy)]
pub struct Customers<'a> {
    billing: &'a Billing,
    key: Option<&'a str>,
}

impl<'a> Customers<'a> {
    pub(super) fn new(billing: &'a Billing, key: Option<&'a str>) -> Customers<'a> {
        Customers { billing, key }
    }

    /// Create a customer; emits `customer.created`. An external id already taken is
    /// [`BillingError::Store`] `AlreadyExists`.
    pub async fn create(&self, details: CustomerDetails) -> Result<Customer> {
        let billing = self.billing;
        let details = &details;
        billing
            .commit_once(self.key, "customers.create", details, |now| async move {
                let customer = Customer::new(billing.ids.next(now), details.clone(), now)?;
                let put = Put::of(customer);
                let stored = put.stored();
                let changes = ChangeSet {
                    events: vec![
                        billing.envelope(Event::CustomerCreated(stored.event_data()), now),
                    ],
                    customers: vec![put],
                    ..ChangeSet::default()
                };
                Ok((stored, changes))
            })
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
        billing
            .commit_once(
                self.key,
                "customers.update",
                &Request { id, details },
                |now| async move {
                    let mut customer = billing.store.get_customer(id).await?;
                    customer.update(details.clone(), now)?;
                    Ok(billing.customer_changes(customer, now))
                },
            )
            .await
    }

    /// Put a payment method on file (the provider's reference, `pm_...`); emits
    /// `customer.updated`. A past-due subscription of the customer is retried at once with the
    /// new method (DESIGN.md section 8); the customer is returned either way, and a declined
    /// retry is reported by the subscription's events.
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
        let customer = billing
            .commit_once(
                self.key,
                "customers.set_payment_method",
                &Request { id, payment_method },
                |now| async move {
                    let mut customer = billing.store.get_customer(id).await?;
                    customer.set_payment_method(payment_method, now)?;
                    Ok(billing.customer_changes(customer, now))
                },
            )
            .await?;
        billing.retry_past_due_of(id).await?;
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
    /// The change set that writes an updated customer and emits `customer.updated`.
    fn customer_changes(
        &self,
        customer: Customer,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (Customer, ChangeSet) {
        let put = Put::of(customer);
        let stored = put.stored();
        let changes = ChangeSet {
            events: vec![self.envelope(Event::CustomerUpdated(stored.event_data()), now)],
            customers: vec![put],
            ..ChangeSet::default()
        };
        (stored, changes)
    }
}
