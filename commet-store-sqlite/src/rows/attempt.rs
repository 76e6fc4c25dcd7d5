//! `payment_attempts`: the outcome as a status column plus the fields each outcome has.

use std::sync::LazyLock;

use commet_core::money::Currency;
use commet_core::payment::{AttemptStatus, PaymentAttempt};
use commet_engine::store::EntityKind;
use rusqlite::{Connection, Row};

use super::Writes;
use crate::codec::{self, Bound, Columns, borrowed, micros, opt_borrowed, opt_micros, owned};
use crate::error::Result;

/// The columns every read selects, in the order [`decode`] expects.
pub(crate) const COLUMNS: &str = "id, invoice, customer, subscription, purpose, attempt, \
                                  idempotency_key, currency, amount, payment_method, status, \
                                  payment_id, failure_code, failure_message, created_at, \
                                  completed_at, version";

/// The status column and the outcome's fields.
fn outcome(status: &AttemptStatus) -> (&'static str, Option<&str>, Option<&str>, Option<&str>) {
    match status {
        AttemptStatus::Pending => ("pending", None, None, None),
        AttemptStatus::Succeeded { payment_id } => ("succeeded", payment_id.as_deref(), None, None),
        AttemptStatus::Failed { code, message } => ("failed", None, Some(code), Some(message)),
    }
}

static WRITES: LazyLock<Writes> = LazyLock::new(|| Writes::new("payment_attempts", COLUMNS));

/// The values of [`COLUMNS`] for an attempt stored at `version`.
fn values(attempt: &PaymentAttempt, version: i64) -> Result<Vec<Bound<'_>>> {
    let (status, payment_id, code, message) = outcome(&attempt.status);
    Ok(vec![
        owned(attempt.id.to_string()),
        owned(attempt.invoice.to_string()),
        owned(attempt.customer.to_string()),
        owned(attempt.subscription.map(|s| s.to_string())),
        owned(codec::name(&attempt.purpose)?),
        owned(i64::from(attempt.attempt)),
        owned(attempt.idempotency_key()),
        borrowed(attempt.amount.currency().code()),
        owned(codec::amount(attempt.amount)),
        opt_borrowed(attempt.payment_method.as_deref()),
        borrowed(status),
        opt_borrowed(payment_id),
        opt_borrowed(code),
        opt_borrowed(message),
        owned(micros(attempt.created_at)),
        owned(opt_micros(attempt.completed_at)),
        owned(version),
    ])
}

/// Insert a new attempt at `version`.
pub(crate) fn insert(conn: &Connection, attempt: &PaymentAttempt, version: i64) -> Result<()> {
    WRITES.insert(conn, values(attempt, version)?)
}

/// Rewrite an attempt stored at `expected`; false if it is not at that version.
pub(crate) fn update(
    conn: &Connection,
    attempt: &PaymentAttempt,
    expected: i64,
    version: i64,
) -> Result<bool> {
    WRITES.update(conn, values(attempt, version)?, expected)
}

/// Rebuild an attempt from a row of [`COLUMNS`], checking it as a commit would.
pub(crate) fn decode(row: &Row<'_>) -> Result<PaymentAttempt> {
    let columns = Columns::new(row, EntityKind::PaymentAttempt);
    let currency: Currency = columns.parse(7)?;
    let status = match columns.text(10)? {
        "pending" => AttemptStatus::Pending,
        "succeeded" => AttemptStatus::Succeeded {
            payment_id: columns.get(11)?,
        },
        "failed" => AttemptStatus::Failed {
            code: required(&columns, 12)?,
            message: required(&columns, 13)?,
        },
        other => return Err(columns.corrupt(format_args!("{other:?} is not an attempt status"))),
    };
    let attempt = PaymentAttempt {
        id: columns.parse(0)?,
        invoice: columns.parse(1)?,
        customer: columns.parse(2)?,
        subscription: columns.parse_opt(3)?,
        purpose: columns.name(4)?,
        attempt: columns.u32(5)?,
        amount: columns.money(8, currency)?,
        payment_method: columns.get(9)?,
        status,
        created_at: columns.time(14)?,
        completed_at: columns.opt_time(15)?,
        version: columns.u64(16)?,
    };
    attempt.validate().map_err(|e| columns.corrupt(e))?;
    let key = columns.text(6)?;
    if key != attempt.idempotency_key() {
        return Err(columns.corrupt(format_args!(
            "column idempotency_key is {key:?}, the attempt's key is {:?}",
            attempt.idempotency_key()
        )));
    }
    Ok(attempt)
}

fn required(columns: &Columns<'_, '_>, index: usize) -> Result<String> {
    let value: Option<String> = columns.get(index)?;
    value.ok_or_else(|| columns.corrupt("an outcome field is missing"))
}
