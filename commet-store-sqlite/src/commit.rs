//! The one write: number a change set and write it, all in one `BEGIN IMMEDIATE` transaction,
//! without looking anything up first.
//!
//! Every commit rule is enforced by the write itself: versioned writes are `UPDATE ... WHERE id
//! = ? AND version = ?` with a rows-affected check (a new row is an `INSERT` its primary key
//! refuses if the row exists); unique keys, references and the one recurring invoice per period
//! are the schema's unique and foreign keys; a finalized invoice's lines are compared when it is
//! rewritten; a new idempotency record only replaces an expired one. So the common commit,
//! which breaks none, is written straight away. When a write is refused, the transaction rolls
//! back, and a read transaction answers the change set's lookups against the rows as they are
//! (`crate::facts`) for the engine's rules (`commet_engine::store::check`) to name the broken
//! rule, exactly as every store names it. If that naming fails, or finds no broken rule (another
//! process changed the rows in between), the refusal itself is returned: a lost version race
//! stays a retryable `Conflict`.

use std::collections::HashSet;

use commet_core::invoice::NumberSeries;
use commet_engine::store::{
    ChangeSet, CommitReceipt, EntityKind, ExpectedVersion, Put, StoreError, Versioned, check,
};
use rusqlite::{Connection, TransactionBehavior};

use crate::codec::{self, integer};
use crate::error::{Error, Result};
use crate::facts;
use crate::rows::{
    attempt, catalog, customer, delivery, endpoint, event, idempotency, invoice, series,
    subscription,
};

/// Commit `changes` (already validated) atomically.
pub(crate) fn commit(conn: &mut Connection, mut changes: ChangeSet) -> Result<CommitReceipt> {
    let written = {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        write(&tx, &mut changes).and_then(|receipt| {
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

/// The first rule `changes` breaks, named by the shared rules against the rows as they are, in
/// a read transaction of its own (not a savepoint: one would make every commit keep a
/// sub-journal of the pages it touches; a read transaction never waits for the write lock).
/// `None` if no rule is broken any more or the reading fails.
fn name_refusal(conn: &mut Connection, changes: &ChangeSet) -> Option<Error> {
    let tx = conn.transaction().ok()?;
    let facts = facts::answer(&tx, &changes.lookups()).ok()?;
    check(changes, &facts).err().map(Error::from)
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

/// Number the change set, sequence its events, write it.
fn write(tx: &Connection, changes: &mut ChangeSet) -> Result<CommitReceipt> {
    let numbering =
        changes.assign_numbers(|prefix| series::load(tx, prefix).map_err(StoreError::from))?;
    let event_seqs = if changes.events.is_empty() {
        Vec::new()
    } else {
        changes.event_seqs(event::last_seq(tx)?)?
    };
    write_rows(tx, changes, &numbering.series, &event_seqs)?;
    Ok(CommitReceipt {
        event_seqs,
        invoice_numbers: numbering.numbers,
    })
}

/// A versioned write: insert a new row or update the expected version.
fn versioned<T: Versioned>(
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
                // Not at the expected version (or gone): the rules name the conflict.
                Err(put.conflict(None).into())
            }
        }
    }
}

/// Write a numbered change set, its events at `seqs`.
fn write_rows(
    conn: &Connection,
    changes: &ChangeSet,
    numbered: &[NumberSeries],
    seqs: &[u64],
) -> Result<()> {
    if changes.customers.len() > 1 {
        // An external id may move between the customers of this commit: the rewritten holders
        // let go of the ids claimed here first.
        let claimed: Vec<&str> = changes
            .customers
            .iter()
            .filter_map(|put| put.value.external_id())
            .collect();
        if !claimed.is_empty() {
            let ids: Vec<String> = changes
                .customers
                .iter()
                .map(|put| put.value.id().to_string())
                .collect();
            customer::release_external_ids(conn, &codec::json(&ids)?, &codec::json(&claimed)?)?;
        }
    }
    for put in &changes.customers {
        versioned(
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
        versioned(
            put,
            |value, version| subscription::insert(conn, value, version),
            |value, expected, version| subscription::update(conn, value, expected, version),
        )?;
    }
    for write in &changes.invoices {
        versioned(
            &write.put,
            |value, version| invoice::insert(conn, value, version),
            |value, expected, version| invoice::update(conn, value, expected, version),
        )?;
    }
    for series in numbered {
        series::save(conn, series)?;
    }
    for put in &changes.payment_attempts {
        versioned(
            put,
            |value, version| attempt::insert(conn, value, version),
            |value, expected, version| attempt::update(conn, value, expected, version),
        )?;
    }
    for (envelope, &seq) in changes.events.iter().zip(seqs) {
        event::insert(conn, seq, envelope)?;
    }
    let mut keys = HashSet::new();
    for put in &changes.idempotency {
        let record = &put.value;
        let taken = StoreError::AlreadyExists {
            kind: EntityKind::IdempotencyRecord,
            key: format!("key={}", record.key),
        };
        // The schema keeps one row per key; one record per key in a change set is checked here.
        if !keys.insert(record.key.as_str()) {
            return Err(taken.into());
        }
        versioned(
            put,
            |value, _| {
                if idempotency::insert(conn, value)? {
                    Ok(())
                } else {
                    Err(taken.clone().into())
                }
            },
            |value, expected, version| idempotency::update(conn, value, expected, version),
        )?;
    }
    write_deliveries(conn, changes)
}

/// Write the webhook rows of a change set: endpoints, deliveries, then the cursor, in the
/// order of the change set. Endpoints go first, so a delivery to an endpoint written in the
/// same commit finds it. A change set without webhook writes (a renewal) runs no statement
/// here: the loops are empty and the cursor absent.
fn write_deliveries(conn: &Connection, changes: &ChangeSet) -> Result<()> {
    for put in &changes.endpoints {
        versioned(
            put,
            |value, version| endpoint::insert(conn, value, version),
            |value, expected, version| endpoint::update(conn, value, expected, version),
        )?;
    }
    for put in &changes.deliveries {
        versioned(
            put,
            |value, version| delivery::insert(conn, value, version),
            |value, expected, version| delivery::update(conn, value, expected, version),
        )?;
    }
    if let Some(put) = &changes.delivery_cursor {
        versioned(
            put,
            |value, version| delivery::insert_cursor(conn, value, version),
            |value, expected, version| delivery::update_cursor(conn, value, expected, version),
        )?;
    }
    Ok(())
}
