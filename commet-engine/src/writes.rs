//! From decisions to a commit: [`Writes`] gathers what one commit stores while a flow reads and
//! decides, each aggregate once, as the last decision left it.

use chrono::{DateTime, Utc};
use commet_core::customer::Customer;
use std::collections::HashMap;

use commet_core::ids::{CustomerId, InvoiceId, SubscriptionId};
use commet_core::invoice::{Invoice, NumberSeries};
use commet_core::payment::{PaymentAttempt, PaymentAttemptId};
use commet_core::subscription::{Charge, Decision, SettledCharge, Subscription};

use crate::billing::Billing;
use crate::error::Result;
use crate::store::{ChangeSet, CommitReceipt, InvoiceWrite, Put, StoreExt};

/// What one commit writes. Aggregates are put with the version they were read at; putting one
/// again replaces the earlier put, so a flow of several decisions writes each aggregate once.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    pub(crate) changes: ChangeSet,
}

impl Writes {
    /// True if nothing is written.
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The customer `id`, if this commit writes them.
    pub(crate) fn customer(&self, id: CustomerId) -> Option<&Customer> {
        self.changes
            .customers
            .iter()
            .find(|put| put.value.id() == id)
            .map(|put| &put.value)
    }

    /// The invoice `id`, if this commit writes it.
    pub(crate) fn invoice(&self, id: InvoiceId) -> Option<&Invoice> {
        self.changes
            .invoices
            .iter()
            .find(|write| write.put.value.id() == id)
            .map(|write| &write.put.value)
    }

    /// Write `customer`.
    pub(crate) fn put_customer(&mut self, customer: Customer) {
        put(&mut self.changes.customers, customer, |a, b| {
            a.id() == b.id()
        });
    }

    /// Write `subscription`.
    pub(crate) fn put_subscription(&mut self, subscription: Subscription) {
        put(&mut self.changes.subscriptions, subscription, |a, b| {
            a.id() == b.id()
        });
    }

    /// Write `invoice`, numbered from `series` inside the commit if given.
    pub(crate) fn put_invoice(&mut self, invoice: Invoice, series: Option<&NumberSeries>) {
        match self
            .changes
            .invoices
            .iter_mut()
            .find(|write| write.put.value.id() == invoice.id())
        {
            Some(write) => {
                write.put.value = invoice;
                if series.is_some() {
                    write.number_from = series.cloned();
                }
            }
            None => self.changes.invoices.push(match series {
                Some(series) => InvoiceWrite::numbered(invoice, series.clone()),
                None => InvoiceWrite::of(invoice),
            }),
        }
    }

    /// Write `attempt`.
    pub(crate) fn put_attempt(&mut self, attempt: PaymentAttempt) {
        put(&mut self.changes.payment_attempts, attempt, |a, b| {
            a.id == b.id
        });
    }

    /// Record a charge: the subscription with the charge in flight, the invoice (numbered in the
    /// commit if new), the pending attempt, the customer if the charge changed them.
    pub(crate) fn put_charge(&mut self, charge: Charge, series: &NumberSeries) {
        self.put_subscription(charge.subscription);
        self.put_invoice(charge.invoice, charge.new_invoice.then_some(series));
        self.put_attempt(charge.attempt);
        if let Some(customer) = charge.customer {
            self.put_customer(customer);
        }
    }

    /// Record a settled charge (its events are added by the caller, in envelopes).
    pub(crate) fn put_settled(&mut self, settled: SettledCharge) {
        self.put_subscription(settled.subscription);
        self.put_invoice(settled.invoice, None);
        self.put_attempt(settled.attempt);
        if let Some(customer) = settled.customer {
            self.put_customer(customer);
        }
    }

    /// Everything as the commit will store it: versions moved on (new invoices get their
    /// numbers from the commit's receipt: [`Stored::numbered`]).
    pub(crate) fn stored(&self) -> Stored {
        fn by_id<T, K: std::hash::Hash + Eq>(
            values: impl Iterator<Item = T>,
            id: impl Fn(&T) -> K,
        ) -> HashMap<K, T> {
            values.map(|value| (id(&value), value)).collect()
        }
        Stored {
            customers: by_id(self.changes.customers.iter().map(Put::stored), Customer::id),
            subscriptions: by_id(
                self.changes.subscriptions.iter().map(Put::stored),
                Subscription::id,
            ),
            invoices: by_id(
                self.changes.invoices.iter().map(|write| write.put.stored()),
                Invoice::id,
            ),
            attempts: by_id(
                self.changes.payment_attempts.iter().map(Put::stored),
                |attempt| attempt.id,
            ),
        }
    }
}

/// Put `value` into `puts`, replacing an earlier put of the same aggregate (keeping the version
/// that one expected).
fn put<T: crate::store::Versioned>(
    puts: &mut Vec<Put<T>>,
    value: T,
    same: impl Fn(&T, &T) -> bool,
) {
    match puts.iter_mut().find(|put| same(&put.value, &value)) {
        Some(put) => put.value = value,
        None => puts.push(Put::of(value)),
    }
}

/// What a commit stored: the aggregates it wrote, at their new versions, by id.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    customers: HashMap<CustomerId, Customer>,
    subscriptions: HashMap<SubscriptionId, Subscription>,
    invoices: HashMap<InvoiceId, Invoice>,
    attempts: HashMap<PaymentAttemptId, PaymentAttempt>,
}

impl Stored {
    /// Give the new invoices the numbers the commit's `receipt` names.
    pub(crate) fn numbered(mut self, receipt: &CommitReceipt) -> Stored {
        for (id, number) in &receipt.invoice_numbers {
            if let Some(invoice) = self.invoices.get_mut(id) {
                // A number the commit gave cannot be refused: the invoice had none.
                let _ = invoice.assign_number(number.clone());
            }
        }
        self
    }

    /// The stored subscription `id`.
    pub(crate) fn subscription(&self, id: SubscriptionId) -> Option<&Subscription> {
        self.subscriptions.get(&id)
    }

    /// The stored invoice `id`.
    pub(crate) fn invoice(&self, id: InvoiceId) -> Option<&Invoice> {
        self.invoices.get(&id)
    }

    /// The stored customer `id`.
    pub(crate) fn customer(&self, id: CustomerId) -> Option<&Customer> {
        self.customers.get(&id)
    }

    /// The stored attempt `id`.
    pub(crate) fn attempt(&self, id: PaymentAttemptId) -> Option<&PaymentAttempt> {
        self.attempts.get(&id)
    }
}

impl Billing {
    /// Commit `writes`: what it stored, with the new invoices' numbers.
    pub(crate) async fn commit(&self, writes: Writes) -> crate::store::Result<Stored> {
        let stored = writes.stored();
        let receipt = self.store.commit(writes.changes).await?;
        Ok(stored.numbered(&receipt))
    }

    /// Apply `decision` to `writes`: the subscription, its events, and its invoice actions
    /// applied to the invoices they name (and their customers, where credit goes back), read
    /// from the store unless `writes` holds them. Returns the subscription after it.
    pub(crate) async fn apply_decision(
        &self,
        writes: &mut Writes,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<Subscription> {
        let mut events = decision.events;
        for action in &decision.invoice_actions {
            let mut invoice = match writes.invoice(action.invoice()) {
                Some(invoice) => invoice.clone(),
                None => self.store.get_invoice(action.invoice()).await?,
            };
            let mut customer = match writes.customer(invoice.customer()) {
                Some(customer) => customer.clone(),
                None => self.store.get_customer(invoice.customer()).await?,
            };
            let before = customer.clone();
            events.extend(action.apply(&mut invoice, &mut customer, now)?);
            writes.put_invoice(invoice, None);
            if customer != before {
                writes.put_customer(customer);
            }
        }
        writes.changes.events.extend(self.envelopes(events, now));
        writes.put_subscription(decision.subscription.clone());
        Ok(decision.subscription)
    }
}
