//! The one write: number a change set and write it, all in one `BEGIN IMMEDIATE` transaction.
//!
//! Every rule a commit must keep is either a rule of the schema (a primary key, a unique or
//! foreign key) or checked on the row a write touches (the expected version in the `UPDATE`'s
//! `WHERE`, a finalized invoice's lines), so the common commit, which breaks none, is written
//! straight away with no lookups before it. When a write is refused, the transaction rolls
//! back and a second one checks every rule, against the rows as they are without the commit
//! and in exactly the order `MemoryStore` checks them, so both stores refuse a change set with
//! the same error. Customers and catalog entries,
//! checked first in that order, are checked before writing (an external id handed from one
//! customer to another needs to know it beforehand); they are rare in a commit.

use std::collections::HashSet;

use commet_core::InvalidField;
use commet_core::catalog::{Plan, Price};
use commet_core::customer::Customer;
use commet_core::event::Envelope;
use commet_core::invoice::{InvoiceKind, NumberSeries};
use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::{
    ChangeSet, CommitReceipt, EntityKind, ExpectedVersion, InvoiceWrite, Put, StoreError, Versioned,
};
use rusqlite::{Connection, TransactionBehavior};

use crate::codec::{integer, micros};
use crate::error::{Error, Result};
use crate::rows::{attempt, catalog, customer, event, idempotency, invoice, series, subscription};

/// Commit `changes` (already validated) atomically.
pub(crate) fn commit(conn: &mut Connection, mut changes: ChangeSet) -> Result<CommitReceipt> {
    let written = {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_all(&tx, &mut changes).and_then(|receipt| {
            tx.commit()?;
            Ok(receipt)
        })
        // On an error, dropping the transaction rolls it back.
    };
    match written {
        Err(refused) if is_refusal(&refused) => {
            Err(name_refusal(conn, &changes).unwrap_or(refused))
        }
        other => other,
    }
}

/// The first rule `changes` breaks, as `MemoryStore` would name it, read in a transaction of
/// its own (not a savepoint: one would make every commit keep a sub-journal of the pages it
/// touches). A read transaction: naming never waits for the write lock. `None` if no rule is
/// broken any more or the reading fails: the caller then reports the refusal itself, so a lost
/// version race stays a retryable conflict.
fn name_refusal(conn: &mut Connection, changes: &ChangeSet) -> Option<Error> {
    let tx = conn.transaction().ok()?;
    let named = check_customers(&tx, &changes.customers).and_then(|(rewritten, _)| {
        check_catalog(&tx, &changes.plans, &changes.prices)?;
        check(&tx, changes, &rewritten)
    });
    match named {
        Err(rule) if is_refusal(&rule) => Some(rule),
        _ => None,
    }
}

/// Check the customers and the catalog, number the change set, write it.
fn write_all(tx: &Connection, changes: &mut ChangeSet) -> Result<CommitReceipt> {
    let (_, handover) = check_customers(tx, &changes.customers)?;
    check_catalog(tx, &changes.plans, &changes.prices)?;
    let numbering =
        changes.assign_numbers(|prefix| series::load(tx, prefix).map_err(StoreError::from))?;
    let event_seqs = apply(tx, changes, &numbering.series, handover)?;
    Ok(CommitReceipt {
        event_seqs,
        invoice_numbers: numbering.numbers,
    })
}

/// A write refused by a rule (a constraint, a version, the lines of a finalized invoice), as
/// opposed to SQLite failing.
fn is_refusal(error: &Error) -> bool {
    match error {
        Error::Store(_) => true,
        Error::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => {
            failure.code == rusqlite::ErrorCode::ConstraintViolation
        }
        Error::Sqlite(_) => false,
    }
}

fn exists(kind: EntityKind, key: impl std::fmt::Display) -> Error {
    StoreError::AlreadyExists {
        kind,
        key: key.to_string(),
    }
    .into()
}

fn unknown(field: &str, what: impl std::fmt::Display) -> Error {
    InvalidField::new(field, format_args!("{what} does not exist")).into()
}

/// Does the stored version (from a `SELECT version`) satisfy the write?
fn check_version<T: Versioned>(put: &Put<T>, stored: Option<i64>) -> Result<()> {
    let stored = stored
        .map(|version| {
            u64::try_from(version).map_err(|_| {
                StoreError::corrupt(T::KIND, put.value.key(), "the stored version is negative")
            })
        })
        .transpose()?;
    if put.expected.matches(stored) {
        Ok(())
    } else {
        Err(put.conflict(stored).into())
    }
}

/// Every rule after the customers' and the catalog's (checked before writing), in
/// `MemoryStore`'s order, against the rows as they were before the commit.
fn check(conn: &Connection, changes: &ChangeSet, rewritten: &HashSet<String>) -> Result<()> {
    let customer_exists = |id: &str| -> Result<bool> {
        Ok(rewritten.contains(id) || customer::version(conn, id)?.is_some())
    };
    for put in &changes.subscriptions {
        let id = put.value.id().to_string();
        check_version(put, subscription::version(conn, &id)?)?;
        if !customer_exists(&put.value.customer().to_string())? {
            return Err(unknown("subscription.customer", put.value.customer()));
        }
    }
    for write in &changes.invoices {
        if !customer_exists(&write.put.value.customer().to_string())? {
            return Err(unknown("invoice.customer", write.put.value.customer()));
        }
    }
    check_invoices(conn, &changes.invoices)?;
    check_attempts(conn, changes)?;
    check_outbox(conn, &changes.events, &changes.idempotency)
}

/// Versions, and one customer per external id after the commit. Returns the ids written and
/// whether an external id is handed from one of them to another.
fn check_customers(conn: &Connection, puts: &[Put<Customer>]) -> Result<(HashSet<String>, bool)> {
    let rewritten: HashSet<String> = puts.iter().map(|put| put.value.id().to_string()).collect();
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut handover = false;
    for put in puts {
        let id = put.value.id().to_string();
        check_version(put, customer::version(conn, &id)?)?;
        if let Some(external_id) = put.value.external_id() {
            let holder = customer::owner_of_external_id(conn, external_id)?;
            let held_elsewhere = holder
                .as_ref()
                .is_some_and(|holder| !rewritten.contains(holder));
            if held_elsewhere || !claimed.insert(external_id) {
                return Err(exists(
                    EntityKind::Customer,
                    format_args!("external_id={external_id}"),
                ));
            }
            handover |= holder.is_some_and(|holder| holder != id);
        }
    }
    Ok((rewritten, handover))
}

/// Plans and prices are insert-only: unique ids and plan codes, prices of known plans.
fn check_catalog(conn: &Connection, plans: &[Plan], prices: &[Price]) -> Result<()> {
    let mut ids = HashSet::new();
    let mut codes = HashSet::new();
    for plan in plans {
        if catalog::plan_exists(conn, &plan.id().to_string())? || !ids.insert(plan.id()) {
            return Err(exists(EntityKind::Plan, format_args!("id={}", plan.id())));
        }
        if catalog::code_taken(conn, plan.code())? || !codes.insert(plan.code()) {
            return Err(exists(
                EntityKind::Plan,
                format_args!("code={}", plan.code()),
            ));
        }
    }
    let mut new_prices = HashSet::new();
    for price in prices {
        if catalog::price_exists(conn, &price.id().to_string())? || !new_prices.insert(price.id()) {
            return Err(exists(EntityKind::Price, format_args!("id={}", price.id())));
        }
        if !ids.contains(&price.plan()) && !catalog::plan_exists(conn, &price.plan().to_string())? {
            return Err(unknown("price.plan", price.plan()));
        }
    }
    Ok(())
}

/// Versions, and one recurring invoice per (subscription, period start).
fn check_invoices(conn: &Connection, writes: &[InvoiceWrite]) -> Result<()> {
    let mut periods = HashSet::new();
    for write in writes {
        let value = &write.put.value;
        let id = value.id().to_string();
        let stored = invoice::stored(conn, &id)?;
        check_version(&write.put, stored.map(|(version, _)| version))?;
        if stored.is_some_and(|(_, draft)| !draft) && !invoice::lines_unchanged(conn, value)? {
            return Err(invoice::lines_changed());
        }
        if let (InvoiceKind::Recurring, Some(subscription), Some(period)) =
            (value.kind(), value.subscription(), value.period())
        {
            let start = period.start();
            let taken = invoice::recurring_owner(conn, subscription, micros(start))?
                .is_some_and(|holder| holder != id);
            if taken || !periods.insert((subscription, start)) {
                return Err(exists(
                    EntityKind::Invoice,
                    format_args!("subscription={subscription} period_start={start}"),
                ));
            }
        }
    }
    Ok(())
}

/// Versions, known invoices, one attempt per idempotency key.
fn check_attempts(conn: &Connection, changes: &ChangeSet) -> Result<()> {
    let new_invoices: HashSet<_> = changes.invoices.iter().map(|w| w.put.value.id()).collect();
    let mut keys = HashSet::new();
    for put in &changes.payment_attempts {
        let attempt = &put.value;
        let id = attempt.id.to_string();
        check_version(put, attempt::version(conn, &id)?)?;
        if !new_invoices.contains(&attempt.invoice)
            && !invoice::exists(conn, &attempt.invoice.to_string())?
        {
            return Err(unknown("payment_attempt.invoice", attempt.invoice));
        }
        let key = attempt.idempotency_key();
        let taken = attempt::owner_of_key(conn, &key)?.is_some_and(|holder| holder != id);
        if taken || !keys.insert(key.clone()) {
            return Err(exists(
                EntityKind::PaymentAttempt,
                format_args!("idempotency_key={key}"),
            ));
        }
    }
    Ok(())
}

/// Unique event ids across the outbox; a live idempotency key cannot be taken again.
fn check_outbox(
    conn: &Connection,
    events: &[Envelope],
    records: &[IdempotencyRecord],
) -> Result<()> {
    for envelope in events {
        if event::exists(conn, &envelope.id.to_string())? {
            return Err(exists(
                EntityKind::Event,
                format_args!("id={}", envelope.id),
            ));
        }
    }
    let mut keys = HashSet::new();
    for record in records {
        if live_idempotency_key(conn, record)? || !keys.insert(record.key.as_str()) {
            return Err(exists(
                EntityKind::IdempotencyRecord,
                format_args!("key={}", record.key),
            ));
        }
    }
    Ok(())
}

/// Is the key of `record` held by a record still live when `record` is made? (An expired one
/// is replaced.)
fn live_idempotency_key(conn: &Connection, record: &IdempotencyRecord) -> Result<bool> {
    Ok(idempotency::expires_at(conn, &record.key)?
        .is_some_and(|expires_at| micros(record.created_at) < expires_at))
}

/// A versioned write: insert a new row or update the expected version.
fn write<T: Versioned>(
    put: &Put<T>,
    insert: impl FnOnce(&T, i64) -> Result<()>,
    update: impl FnOnce(&T, i64, i64) -> Result<bool>,
) -> Result<()> {
    let version = integer("version", put.expected.next())?;
    match put.expected {
        ExpectedVersion::New => insert(&put.value, version),
        ExpectedVersion::Exactly(expected) => {
            if update(&put.value, integer("version", expected)?, version)? {
                Ok(())
            } else {
                // Not at the expected version (or gone): the checks name the conflict.
                Err(StoreError::Conflict {
                    kind: T::KIND,
                    id: put.value.key(),
                    expected: put.expected,
                    actual: None,
                }
                .into())
            }
        }
    }
}

/// Write a checked, numbered change set. Returns the events' sequence numbers.
fn apply(
    conn: &Connection,
    changes: &ChangeSet,
    numbered: &[NumberSeries],
    handover: bool,
) -> Result<Vec<u64>> {
    if handover {
        // An external id moves between customers of this commit: let every rewritten holder
        // go first, so the unique index never sees two holders mid-commit.
        for put in &changes.customers {
            if put.expected != ExpectedVersion::New {
                customer::clear_external_id(conn, &put.value.id().to_string())?;
            }
        }
    }
    for put in &changes.customers {
        write(
            put,
            |value, version| customer::insert(conn, value, version),
            |value, expected, version| customer::update(conn, value, expected, version),
        )?;
    }
    for plan in &changes.plans {
        catalog::insert_plan(conn, plan)?;
    }
    for price in &changes.prices {
        catalog::insert_price(conn, price)?;
    }
    for put in &changes.subscriptions {
        write(
            put,
            |value, version| subscription::insert(conn, value, version),
            |value, expected, version| subscription::update(conn, value, expected, version),
        )?;
    }
    for write_invoice in &changes.invoices {
        write(
            &write_invoice.put,
            |value, version| invoice::insert(conn, value, version),
            |value, expected, version| invoice::update(conn, value, expected, version),
        )?;
    }
    for series in numbered {
        series::save(conn, series)?;
    }
    for put in &changes.payment_attempts {
        write(
            put,
            |value, version| attempt::insert(conn, value, version),
            |value, expected, version| attempt::update(conn, value, expected, version),
        )?;
    }
    let mut seqs = Vec::with_capacity(changes.events.len());
    let mut seq = event::last_seq(conn)?;
    for envelope in &changes.events {
        seq += 1;
        event::insert(conn, seq, envelope)?;
        seqs.push(u64::try_from(seq).map_err(|_| StoreError::backend("negative event seq"))?);
    }
    for record in &changes.idempotency {
        if live_idempotency_key(conn, record)? {
            return Err(exists(
                EntityKind::IdempotencyRecord,
                format_args!("key={}", record.key),
            ));
        }
        idempotency::upsert(conn, record)?;
    }
    Ok(seqs)
}
