//! Embedded, versioned migrations, recorded in `PRAGMA user_version`.
//!
//! Migration `n` (1-based) takes a database from schema version `n - 1` to `n`. They run on
//! open, each in its own `BEGIN IMMEDIATE` transaction that re-reads the version first, so
//! several processes opening one new file at once apply each migration exactly once. A
//! database whose version is newer than [`SCHEMA_VERSION`] was written by a newer commet and
//! is refused rather than misread.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::Result;
use commet_engine::store::StoreError;

/// The schema version this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 4;

/// The migrations, in order: `MIGRATIONS[n - 1]` creates schema version `n`. Each is a file
/// under `src/migrations/`, never edited once released (a database at version `n` has run
/// exactly these).
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [V1, V2, V3, V4];

/// Version 1: one table per entity.
const V1: &str = include_str!("migrations/v1.sql");

/// Version 2: idempotency records are versioned.
const V2: &str = include_str!("migrations/v2.sql");

/// Version 3: webhook endpoints, their deliveries (with the due-delivery index), and the
/// delivery cursor.
const V3: &str = include_str!("migrations/v3.sql");

/// Version 4: customers' billing details and invoices' parties.
const V4: &str = include_str!("migrations/v4.sql");

/// The schema version a database is at.
pub(crate) fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Bring the database to [`SCHEMA_VERSION`], or refuse one from a newer commet.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    loop {
        // Checked outside a transaction first: a read-only look that never takes the write lock
        // once the database is current.
        if is_current(version(conn)?)? {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = version(&tx)?;
        if is_current(current)? {
            return Ok(());
        }
        if current == 0 && has_tables(&tx)? {
            // Another application's database: commet's tables must not be mixed into it.
            return Err(StoreError::backend(
                "not a commet database: it has tables but no commet schema version",
            )
            .into());
        }
        let next = current + 1;
        let sql = usize::try_from(current)
            .ok()
            .and_then(|index| MIGRATIONS.get(index))
            .ok_or_else(|| StoreError::backend(format_args!("no migration to version {next}")))?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", next)?;
        tx.commit()?;
    }
}

/// True if the database holds any table, index, view or trigger.
fn has_tables(conn: &Connection) -> Result<bool> {
    let count: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
    Ok(count > 0)
}

/// `Ok(true)` if the database is at [`SCHEMA_VERSION`], `Ok(false)` if a migration is due, and
/// an error if it is newer than this crate (or has a negative version).
fn is_current(version: i64) -> Result<bool> {
    let supported = i64::from(SCHEMA_VERSION);
    if version > supported {
        return Err(StoreError::backend(format_args!(
            "the database has schema version {version}, newer than version {supported} that \
             this commet-store-sqlite supports: upgrade commet to open it"
        ))
        .into());
    }
    if version < 0 {
        return Err(StoreError::backend(format_args!(
            "the database has schema version {version}, which no commet writes"
        ))
        .into());
    }
    Ok(version == supported)
}
