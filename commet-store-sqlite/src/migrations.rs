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
pub const SCHEMA_VERSION: u32 = 1;

/// The migrations, in order: `MIGRATIONS[n - 1]` creates schema version `n`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [V1];

/// Version 1: one table per entity.
const V1: &str = "
CREATE TABLE customers (
    id             TEXT PRIMARY KEY,
    external_id    TEXT UNIQUE,
    email          TEXT NOT NULL COLLATE NOCASE,
    full_name      TEXT,
    payment_method TEXT,
    credit         TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL
);
CREATE INDEX customers_email ON customers (email);

CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT
);

CREATE TABLE prices (
    id                 TEXT PRIMARY KEY,
    plan               TEXT NOT NULL REFERENCES plans (id),
    currency           TEXT NOT NULL,
    unit_amount        TEXT NOT NULL,
    interval_frequency TEXT NOT NULL,
    interval_count     INTEGER NOT NULL,
    trial_days         INTEGER NOT NULL,
    model              TEXT NOT NULL
);
CREATE INDEX prices_plan ON prices (plan, id);

CREATE TABLE subscriptions (
    id                 TEXT PRIMARY KEY,
    customer           TEXT NOT NULL REFERENCES customers (id),
    status             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    interval_frequency TEXT NOT NULL,
    interval_count     INTEGER NOT NULL,
    items              TEXT NOT NULL,
    state              TEXT NOT NULL,
    next_due_at        INTEGER,
    metadata           TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer, id);
CREATE INDEX subscriptions_status ON subscriptions (status, id);
CREATE INDEX subscriptions_due ON subscriptions (next_due_at, id) WHERE next_due_at IS NOT NULL;

CREATE TABLE invoices (
    id                      TEXT PRIMARY KEY,
    number                  TEXT,
    customer                TEXT NOT NULL REFERENCES customers (id),
    subscription            TEXT,
    currency                TEXT NOT NULL,
    status                  TEXT NOT NULL,
    kind                    TEXT NOT NULL,
    period_start            INTEGER,
    period_end              INTEGER,
    subtotal                TEXT NOT NULL,
    discount                TEXT NOT NULL,
    tax                     TEXT NOT NULL,
    total                   TEXT NOT NULL,
    credit_applied          TEXT NOT NULL,
    amount_due              TEXT NOT NULL,
    amount_paid             TEXT NOT NULL,
    created_at              INTEGER NOT NULL,
    issued_at               INTEGER,
    due_at                  INTEGER,
    paid_at                 INTEGER,
    voided_at               INTEGER,
    marked_uncollectible_at INTEGER,
    memo                    TEXT,
    metadata                TEXT NOT NULL,
    version                 INTEGER NOT NULL
);
CREATE INDEX invoices_customer ON invoices (customer, id);
CREATE INDEX invoices_subscription ON invoices (subscription, id) WHERE subscription IS NOT NULL;
CREATE INDEX invoices_status ON invoices (status, id);
CREATE UNIQUE INDEX invoices_recurring_period ON invoices (subscription, period_start)
    WHERE kind = 'recurring';

CREATE TABLE invoice_lines (
    invoice      TEXT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    description  TEXT NOT NULL,
    quantity     TEXT NOT NULL,
    unit_amount  TEXT NOT NULL,
    amount       TEXT NOT NULL,
    period_start INTEGER,
    period_end   INTEGER,
    price        TEXT,
    PRIMARY KEY (invoice, position)
) WITHOUT ROWID;

CREATE TABLE payment_attempts (
    id              TEXT PRIMARY KEY,
    invoice         TEXT NOT NULL REFERENCES invoices (id),
    customer        TEXT NOT NULL,
    subscription    TEXT,
    purpose         TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    currency        TEXT NOT NULL,
    amount          TEXT NOT NULL,
    payment_method  TEXT,
    status          TEXT NOT NULL,
    payment_id      TEXT,
    failure_code    TEXT,
    failure_message TEXT,
    created_at      INTEGER NOT NULL,
    completed_at    INTEGER,
    version         INTEGER NOT NULL
);
CREATE INDEX payment_attempts_invoice ON payment_attempts (invoice, attempt, id);
CREATE INDEX payment_attempts_pending ON payment_attempts (created_at, id)
    WHERE status = 'pending';

CREATE TABLE events (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    envelope  TEXT NOT NULL
);

CREATE TABLE idempotency_records (
    idempotency_key TEXT PRIMARY KEY,
    fingerprint     TEXT NOT NULL,
    response        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);

CREATE TABLE number_series (
    prefix     TEXT PRIMARY KEY,
    padding    INTEGER NOT NULL,
    next_value INTEGER NOT NULL
);
";

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
