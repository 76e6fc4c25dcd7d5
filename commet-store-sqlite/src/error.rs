//! The store's own error, mapped into [`StoreError`] at the boundary.
//!
//! Inside the crate every function returns [`Error`], so `?` works on both rusqlite calls and
//! store checks. SQLite's own failures are mapped here and nowhere else: a uniqueness
//! constraint becomes [`StoreError::AlreadyExists`], a foreign key [`StoreError::Invalid`],
//! anything else [`StoreError::Backend`]. A commit writes first and lets the schema refuse;
//! after a refusal the engine's rules (`commet_engine::store::check`) name the error, and the
//! mapped constraint error is returned only when they find nothing (`crate::commit`).

use commet_core::InvalidField;
use commet_engine::store::{EntityKind, StoreError};
use rusqlite::ErrorCode;

/// What can go wrong inside the store.
#[derive(Debug)]
pub(crate) enum Error {
    /// SQLite (or rusqlite) failed.
    Sqlite(rusqlite::Error),
    /// A store rule refused the operation, or a row did not decode.
    Store(StoreError),
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::Sqlite(error)
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Error::Store(error)
    }
}

impl From<InvalidField> for Error {
    fn from(error: InvalidField) -> Self {
        Error::Store(StoreError::Invalid(error))
    }
}

impl From<Error> for StoreError {
    fn from(error: Error) -> Self {
        match error {
            Error::Store(error) => error,
            Error::Sqlite(error) => from_sqlite(&error),
        }
    }
}

/// A shorthand for results inside the crate.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

fn from_sqlite(error: &rusqlite::Error) -> StoreError {
    let rusqlite::Error::SqliteFailure(failure, message) = error else {
        return StoreError::backend(format_args!("sqlite: {error}"));
    };
    let message = message.clone().unwrap_or_else(|| failure.to_string());
    match failure.code {
        ErrorCode::ConstraintViolation => match failure.extended_code {
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => StoreError::AlreadyExists {
                kind: kind_of_constraint(&message),
                key: message,
            },
            rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                StoreError::Invalid(InvalidField::new("reference", message))
            }
            _ => StoreError::backend(format_args!("sqlite constraint: {message}")),
        },
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::backend(format_args!(
            "sqlite: the database stayed locked beyond the busy timeout ({message})"
        )),
        _ => StoreError::backend(format_args!("sqlite: {message}")),
    }
}

/// The entity a constraint message such as `UNIQUE constraint failed: customers.external_id`
/// is about.
fn kind_of_constraint(message: &str) -> EntityKind {
    let table = message
        .rsplit(": ")
        .next()
        .and_then(|columns| columns.split('.').next())
        .unwrap_or_default();
    match table {
        "plans" => EntityKind::Plan,
        "prices" => EntityKind::Price,
        "subscriptions" => EntityKind::Subscription,
        "invoices" | "invoice_lines" => EntityKind::Invoice,
        "payment_attempts" => EntityKind::PaymentAttempt,
        "events" => EntityKind::Event,
        "idempotency_records" => EntityKind::IdempotencyRecord,
        "number_series" => EntityKind::NumberSeries,
        "webhook_endpoints" => EntityKind::WebhookEndpoint,
        "deliveries" => EntityKind::Delivery,
        "delivery_cursor" => EntityKind::DeliveryCursor,
        _ => EntityKind::Customer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_messages_name_their_entity() {
        assert_eq!(
            kind_of_constraint("UNIQUE constraint failed: payment_attempts.idempotency_key"),
            EntityKind::PaymentAttempt
        );
        assert_eq!(
            kind_of_constraint(
                "UNIQUE constraint failed: invoices.subscription, invoices.period_start"
            ),
            EntityKind::Invoice
        );
        assert_eq!(
            kind_of_constraint("UNIQUE constraint failed: deliveries.endpoint, deliveries.event"),
            EntityKind::Delivery
        );
    }
}
