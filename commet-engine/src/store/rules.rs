//! The commit rules, written once: [`check`] judges a change set against the stored rows it
//! depends on ([`CommitFacts`]), and [`prepare`] also numbers its invoices and events.
//!
//! Why this shape: the rules are a pure function of plain data, so they serve every backend
//! alike. A synchronous store (`MemoryStore` under its lock, `SqliteStore` inside a
//! transaction) and an asynchronous one (a Postgres store awaiting its queries inside its
//! transaction) differ only in how they answer [`Lookups`](super::Lookups); none of them
//! re-implements a rule, or the order in which broken rules are named, and the rules never
//! hold a connection.

use std::collections::HashSet;

use super::{
    ChangeSet, CommitFacts, CommitReceipt, EntityKind, ExpectedVersion, InvoiceWrite, Put,
    StoreError, Versioned, recurring_period,
};
use crate::idempotency::IdempotencyRecord;
use commet_core::InvalidField;
use commet_core::catalog::{Plan, Price};
use commet_core::customer::Customer;
use commet_core::event::Envelope;
use commet_core::ids::{CustomerId, EndpointId, InvoiceId, PlanId};
use commet_core::invoice::NumberSeries;

/// Judge `changes` against the stored rows: `Ok(())` if the commit may be written, otherwise
/// the first rule it breaks, in this order (the order is part of the contract: every store
/// names the same error for the same change set, and the conformance suite and the
/// differential test pin it):
///
/// 1. the change set on its own ([`ChangeSet::validate`]): [`StoreError::Invalid`];
/// 2. customers, in order: each one's version ([`StoreError::Conflict`]), then its external id:
///    held by a customer this change set does not rewrite, or claimed twice in it, is
///    [`StoreError::AlreadyExists`] `external_id=...` (a rewritten customer lets go of its
///    own, so an external id may move between the customers of one change set);
/// 3. plans, in order: the id (`id=...`), then the code (`code=...`), both `AlreadyExists`;
///    then prices: the id (`AlreadyExists`), then the plan, stored or added here (`Invalid`,
///    `price.plan`);
/// 4. subscriptions, in order: version, then the customer, stored or written here
///    (`Invalid`, `subscription.customer`);
/// 5. every invoice's customer (`Invalid`, `invoice.customer`);
/// 6. invoices, in order: version; a finalized invoice's lines, which are fixed (`Invalid`,
///    `invoice.lines`, compared as values); one recurring invoice per (subscription, period
///    start) (`AlreadyExists` `subscription=... period_start=...`);
/// 7. payment attempts, in order: version; the invoice, stored or written here (`Invalid`,
///    `payment_attempt.invoice`); one attempt per idempotency key (`AlreadyExists`
///    `idempotency_key=...`);
/// 8. events: an id already in the outbox (`AlreadyExists` `id=...`);
/// 9. idempotency records, in order: `New` over a record still live at the new one's
///    `created_at`, or a key written twice, is `AlreadyExists` `key=...`; `Exactly(v)` over
///    another version (or none) is a `Conflict` (see [`crate::idempotency`]);
/// 10. webhook endpoints, in order: version;
/// 11. deliveries, in order: version; the endpoint, stored or written here (`Invalid`,
///     `delivery.endpoint`); one delivery per (endpoint, event) (`AlreadyExists`
///     `endpoint=... event=...`);
/// 12. the delivery cursor: version.
pub fn check(changes: &ChangeSet, facts: &CommitFacts) -> Result<(), StoreError> {
    changes.validate()?;
    let rewritten = check_customers(&changes.customers, facts)?;
    check_catalog(&changes.plans, &changes.prices, facts)?;
    let customer_exists =
        |id: CustomerId| facts.customers.contains_key(&id) || rewritten.contains(&id);
    for put in &changes.subscriptions {
        check_version(put, facts.subscriptions.get(&put.value.id()).copied())?;
        if !customer_exists(put.value.customer()) {
            return Err(unknown("subscription.customer", put.value.customer()));
        }
    }
    for write in &changes.invoices {
        if !customer_exists(write.put.value.customer()) {
            return Err(unknown("invoice.customer", write.put.value.customer()));
        }
    }
    check_invoices(&changes.invoices, facts)?;
    check_attempts(changes, facts)?;
    check_events(&changes.events, facts)?;
    check_idempotency(&changes.idempotency, facts)?;
    check_deliveries(changes, facts)
}

/// Endpoints' and deliveries' versions, deliveries' endpoints, one delivery per (endpoint,
/// event), the cursor's version.
fn check_deliveries(changes: &ChangeSet, facts: &CommitFacts) -> Result<(), StoreError> {
    for put in &changes.endpoints {
        check_version(put, facts.endpoints.get(&put.value.id()).copied())?;
    }
    let written: HashSet<EndpointId> = changes.endpoints.iter().map(|p| p.value.id()).collect();
    let mut keys = HashSet::new();
    for put in &changes.deliveries {
        let delivery = &put.value;
        check_version(put, facts.deliveries.get(&delivery.id()).copied())?;
        if !facts.endpoints.contains_key(&delivery.endpoint())
            && !written.contains(&delivery.endpoint())
        {
            return Err(unknown("delivery.endpoint", delivery.endpoint()));
        }
        let key = (delivery.endpoint(), delivery.event());
        let taken = facts
            .delivery_keys
            .get(&key)
            .is_some_and(|holder| *holder != delivery.id());
        if taken || !keys.insert(key) {
            return Err(exists(
                EntityKind::Delivery,
                format_args!("endpoint={} event={}", key.0, key.1),
            ));
        }
    }
    if let Some(put) = &changes.delivery_cursor {
        check_version(put, facts.delivery_cursor)?;
    }
    Ok(())
}

/// A checked, numbered change set, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedCommit {
    /// The change set, its invoices numbered (each [`InvoiceWrite::number_from`] taken).
    pub changes: ChangeSet,
    /// The number series after allocation, to write back (one per prefix used).
    pub series: Vec<NumberSeries>,
    /// What the commit assigned: the events' sequence numbers (`receipt.event_seqs`, in the
    /// order of `changes.events`) and the invoice numbers. Return it once written.
    pub receipt: CommitReceipt,
}

/// [`check`] `changes`, then number its invoices from the stored series
/// ([`ChangeSet::assign_numbers`]) and its events after [`CommitFacts::last_event_seq`]
/// ([`ChangeSet::event_seqs`]). A store that checks before it writes calls this inside its
/// transaction and writes the result; nothing is written if it fails.
pub fn prepare(mut changes: ChangeSet, facts: &CommitFacts) -> Result<PreparedCommit, StoreError> {
    check(&changes, facts)?;
    let numbering =
        changes.assign_numbers(|prefix| Ok(facts.number_series.get(prefix).cloned()))?;
    let event_seqs = changes.event_seqs(facts.last_event_seq)?;
    Ok(PreparedCommit {
        changes,
        series: numbering.series,
        receipt: CommitReceipt {
            event_seqs,
            invoice_numbers: numbering.numbers,
        },
    })
}

fn exists(kind: EntityKind, key: impl std::fmt::Display) -> StoreError {
    StoreError::AlreadyExists {
        kind,
        key: key.to_string(),
    }
}

fn unknown(field: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(InvalidField::new(
        field,
        format_args!("{what} does not exist"),
    ))
}

fn check_version<T: Versioned>(put: &Put<T>, stored: Option<u64>) -> Result<(), StoreError> {
    if put.expected.matches(stored) {
        Ok(())
    } else {
        Err(put.conflict(stored))
    }
}

/// Versions, and one customer per external id after the commit. Returns the ids written.
fn check_customers(
    puts: &[Put<Customer>],
    facts: &CommitFacts,
) -> Result<HashSet<CustomerId>, StoreError> {
    let rewritten: HashSet<CustomerId> = puts.iter().map(|put| put.value.id()).collect();
    let mut claimed: HashSet<&str> = HashSet::new();
    for put in puts {
        check_version(put, facts.customers.get(&put.value.id()).copied())?;
        if let Some(external_id) = put.value.external_id() {
            let held_elsewhere = facts
                .external_ids
                .get(external_id)
                .is_some_and(|holder| !rewritten.contains(holder));
            if held_elsewhere || !claimed.insert(external_id) {
                return Err(exists(
                    EntityKind::Customer,
                    format_args!("external_id={external_id}"),
                ));
            }
        }
    }
    Ok(rewritten)
}

/// Plans and prices are insert-only: unique ids and plan codes, prices of known plans.
fn check_catalog(plans: &[Plan], prices: &[Price], facts: &CommitFacts) -> Result<(), StoreError> {
    let mut ids: HashSet<PlanId> = HashSet::new();
    let mut codes = HashSet::new();
    for plan in plans {
        if facts.plans.contains(&plan.id()) || !ids.insert(plan.id()) {
            return Err(exists(EntityKind::Plan, format_args!("id={}", plan.id())));
        }
        if facts.plan_codes.contains(plan.code()) || !codes.insert(plan.code()) {
            return Err(exists(
                EntityKind::Plan,
                format_args!("code={}", plan.code()),
            ));
        }
    }
    let mut new_prices = HashSet::new();
    for price in prices {
        if facts.prices.contains(&price.id()) || !new_prices.insert(price.id()) {
            return Err(exists(EntityKind::Price, format_args!("id={}", price.id())));
        }
        if !facts.plans.contains(&price.plan()) && !ids.contains(&price.plan()) {
            return Err(unknown("price.plan", price.plan()));
        }
    }
    Ok(())
}

/// Versions, fixed lines, and one recurring invoice per (subscription, period start).
fn check_invoices(writes: &[InvoiceWrite], facts: &CommitFacts) -> Result<(), StoreError> {
    let mut periods = HashSet::new();
    for write in writes {
        let invoice = &write.put.value;
        let stored = facts.invoices.get(&invoice.id());
        check_version(&write.put, stored.map(|stored| stored.version))?;
        if let Some(fixed) = stored.and_then(|stored| stored.fixed_lines.as_deref())
            && fixed != invoice.lines()
        {
            return Err(StoreError::Invalid(InvalidField::new(
                "invoice.lines",
                "a finalized invoice's lines cannot change",
            )));
        }
        if let Some(key) = recurring_period(invoice) {
            let taken = facts
                .recurring_periods
                .get(&key)
                .is_some_and(|holder| *holder != invoice.id());
            if taken || !periods.insert(key) {
                return Err(exists(
                    EntityKind::Invoice,
                    format_args!("subscription={} period_start={}", key.0, key.1),
                ));
            }
        }
    }
    Ok(())
}

/// Versions, known invoices, one attempt per idempotency key.
fn check_attempts(changes: &ChangeSet, facts: &CommitFacts) -> Result<(), StoreError> {
    let written: HashSet<InvoiceId> = changes.invoices.iter().map(|w| w.put.value.id()).collect();
    let mut keys = HashSet::new();
    for put in &changes.payment_attempts {
        let attempt = &put.value;
        check_version(put, facts.payment_attempts.get(&attempt.id).copied())?;
        if !facts.invoices.contains_key(&attempt.invoice) && !written.contains(&attempt.invoice) {
            return Err(unknown("payment_attempt.invoice", attempt.invoice));
        }
        let key = attempt.idempotency_key();
        let taken = facts
            .attempt_keys
            .get(&key)
            .is_some_and(|holder| *holder != attempt.id);
        if taken || !keys.insert(key.clone()) {
            return Err(exists(
                EntityKind::PaymentAttempt,
                format_args!("idempotency_key={key}"),
            ));
        }
    }
    Ok(())
}

/// Unique event ids across the outbox (within the change set: [`ChangeSet::validate`]).
fn check_events(events: &[Envelope], facts: &CommitFacts) -> Result<(), StoreError> {
    match events.iter().find(|event| facts.events.contains(&event.id)) {
        Some(event) => Err(exists(EntityKind::Event, format_args!("id={}", event.id))),
        None => Ok(()),
    }
}

/// A new record only over none or an expired one; a replacement at its stored version; one
/// record per key in a change set.
fn check_idempotency(
    puts: &[Put<IdempotencyRecord>],
    facts: &CommitFacts,
) -> Result<(), StoreError> {
    let mut keys = HashSet::new();
    for put in puts {
        let record = &put.value;
        let stored = facts.idempotency.get(&record.key);
        let live = match put.expected {
            ExpectedVersion::New => {
                stored.is_some_and(|stored| record.created_at < stored.expires_at)
            }
            ExpectedVersion::Exactly(_) => {
                check_version(put, stored.map(|stored| stored.version))?;
                false
            }
        };
        if live || !keys.insert(record.key.as_str()) {
            return Err(exists(
                EntityKind::IdempotencyRecord,
                format_args!("key={}", record.key),
            ));
        }
    }
    Ok(())
}
