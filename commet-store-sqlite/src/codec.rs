//! How values become columns and back: instants as integer microseconds, amounts as exact
//! decimal text, enums by their snake-case names, nested data as JSON text.
//!
//! Writing never fails except for numbers SQLite cannot hold (a `u64` above `i64::MAX`), which
//! are refused as [`StoreError::Invalid`]. Reading checks everything: a value that does not
//! decode is [`StoreError::Corrupt`], naming the row and the column.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use commet_core::InvalidField;
use commet_core::money::{Currency, Money, UnitAmount};
use commet_engine::store::{EntityKind, StoreError};
use rusqlite::Row;
use rusqlite::types::{FromSql, ToSqlOutput, Value, ValueRef};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// An instant as microseconds since the Unix epoch (UTC). Commet keeps instants to the
/// microsecond, so this is exact; a sub-microsecond part would be dropped.
pub(crate) fn micros(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_micros()
}

/// An optional instant as microseconds.
pub(crate) fn opt_micros(instant: Option<DateTime<Utc>>) -> Option<i64> {
    instant.map(micros)
}

/// A count or version as an SQLite integer; `field` names it if it does not fit.
pub(crate) fn integer(field: &str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        Error::from(InvalidField::new(
            field,
            format_args!("{value} is larger than SQLite can store ({})", i64::MAX),
        ))
    })
}

/// A decimal amount as text, e.g. `12.34` (no currency: that is its own column).
pub(crate) fn amount(money: Money) -> String {
    money.amount().to_string()
}

/// A unit amount as text, at the precision it has (`0.0004`).
pub(crate) fn unit_amount(unit: UnitAmount) -> String {
    unit.amount().to_string()
}

/// A value bound to a statement: borrowed from the aggregate where it is already text
/// (statuses, codes, descriptions), owned where it is computed (ids, amounts, JSON).
pub(crate) type Bound<'a> = ToSqlOutput<'a>;

/// Text bound without copying it.
pub(crate) fn borrowed(text: &str) -> Bound<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))
}

/// Optional text bound without copying it (`NULL` when absent).
pub(crate) fn opt_borrowed(text: Option<&str>) -> Bound<'_> {
    text.map_or(ToSqlOutput::Owned(Value::Null), borrowed)
}

/// A computed value (an integer, owned text, or an optional one: `NULL` when absent).
pub(crate) fn owned<'a>(value: impl Into<Value>) -> Bound<'a> {
    ToSqlOutput::Owned(value.into())
}

/// Serialize nested data as JSON text.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::from(StoreError::backend(format_args!("cannot encode JSON: {e}"))))
}

/// The snake-case name of an enum that serializes as a plain string (`per_seat`).
pub(crate) fn name<T: Serialize>(value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        Ok(other) => Err(StoreError::backend(format_args!("{other} is not a name")).into()),
        Err(e) => Err(StoreError::backend(format_args!("cannot encode a name: {e}")).into()),
    }
}

/// The columns of one stored row, read with errors that name the row and the column. Every
/// query selects the row's id (or key) first, so column 0 names the row.
pub(crate) struct Columns<'a, 'stmt> {
    row: &'a Row<'stmt>,
    kind: EntityKind,
}

impl<'a, 'stmt> Columns<'a, 'stmt> {
    /// The row of a `kind`, identified by the text in column 0 (its id or key).
    pub(crate) fn new(row: &'a Row<'stmt>, kind: EntityKind) -> Self {
        Columns { row, kind }
    }

    /// The id (or key) of the row, as error messages name it.
    fn id(&self) -> String {
        match self.row.get_ref(0) {
            Ok(ValueRef::Text(text)) => String::from_utf8_lossy(text).into_owned(),
            Ok(ValueRef::Integer(number)) => number.to_string(),
            Ok(other) => format!("{other:?}"),
            Err(error) => format!("({error})"),
        }
    }

    /// A `Corrupt` error for this row.
    pub(crate) fn corrupt(&self, reason: impl Display) -> Error {
        StoreError::corrupt(self.kind, self.id(), reason).into()
    }

    fn column_corrupt(&self, index: usize, reason: impl Display) -> Error {
        let column = self.row.as_ref().column_name(index).unwrap_or("?");
        self.corrupt(format_args!("column {column}: {reason}"))
    }

    /// A text column, borrowed from the row (decoding reads every text column without copying
    /// it first).
    pub(crate) fn text(&self, index: usize) -> Result<&'a str> {
        let value = self
            .row
            .get_ref(index)
            .map_err(|error| self.error(index, error))?;
        value
            .as_str()
            .map_err(|error| self.column_corrupt(index, error))
    }

    /// Optional text, borrowed from the row.
    fn opt_text(&self, index: usize) -> Result<Option<&'a str>> {
        let value = self
            .row
            .get_ref(index)
            .map_err(|error| self.error(index, error))?;
        value
            .as_str_or_null()
            .map_err(|error| self.column_corrupt(index, error))
    }

    /// A reading error: a value of the wrong type is corrupt; anything else is SQLite's.
    fn error(&self, index: usize, error: rusqlite::Error) -> Error {
        match error {
            rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..) => self.column_corrupt(index, error),
            other => Error::Sqlite(other),
        }
    }

    /// A column as a Rust value; a value of the wrong type is corrupt.
    pub(crate) fn get<T: FromSql>(&self, index: usize) -> Result<T> {
        self.row
            .get(index)
            .map_err(|error| self.error(index, error))
    }

    /// Text parsed with `FromStr` (ids, currencies, statuses).
    pub(crate) fn parse<T>(&self, index: usize) -> Result<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.text(index)?
            .parse()
            .map_err(|e| self.column_corrupt(index, e))
    }

    /// Optional text parsed with `FromStr`.
    pub(crate) fn parse_opt<T>(&self, index: usize) -> Result<Option<T>>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.opt_text(index)?
            .map(|text| text.parse().map_err(|e| self.column_corrupt(index, e)))
            .transpose()
    }

    /// An enum stored by its snake-case name.
    pub(crate) fn name<T: DeserializeOwned>(&self, index: usize) -> Result<T> {
        let name = self.text(index)?;
        T::deserialize(serde::de::value::StrDeserializer::<serde_json::Error>::new(
            name,
        ))
        .map_err(|e| self.column_corrupt(index, e))
    }

    /// An optional enum stored by its snake-case name (`NULL` for none).
    pub(crate) fn opt_name<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>> {
        match self.opt_text(index)? {
            Some(_) => self.name(index).map(Some),
            None => Ok(None),
        }
    }

    /// JSON text.
    pub(crate) fn json<T: DeserializeOwned>(&self, index: usize) -> Result<T> {
        serde_json::from_str(self.text(index)?).map_err(|e| self.column_corrupt(index, e))
    }

    /// Optional JSON text (`NULL` for none).
    pub(crate) fn opt_json<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>> {
        self.opt_text(index)?
            .map(|text| serde_json::from_str(text).map_err(|e| self.column_corrupt(index, e)))
            .transpose()
    }

    /// An instant stored as microseconds.
    pub(crate) fn time(&self, index: usize) -> Result<DateTime<Utc>> {
        let value: i64 = self.get(index)?;
        self.instant(index, value)
    }

    /// An optional instant stored as microseconds.
    pub(crate) fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>> {
        let value: Option<i64> = self.get(index)?;
        value.map(|value| self.instant(index, value)).transpose()
    }

    fn instant(&self, index: usize, value: i64) -> Result<DateTime<Utc>> {
        DateTime::from_timestamp_micros(value)
            .ok_or_else(|| self.column_corrupt(index, format_args!("{value} is not an instant")))
    }

    /// A non-negative integer (a version, a sequence number).
    pub(crate) fn u64(&self, index: usize) -> Result<u64> {
        let value: i64 = self.get(index)?;
        u64::try_from(value).map_err(|_| self.column_corrupt(index, "must not be negative"))
    }

    /// A small non-negative integer (a count, a quantity).
    pub(crate) fn u32(&self, index: usize) -> Result<u32> {
        let value: i64 = self.get(index)?;
        u32::try_from(value).map_err(|_| self.column_corrupt(index, "is out of range"))
    }

    /// A payable amount in `currency`.
    pub(crate) fn money(&self, index: usize, currency: Currency) -> Result<Money> {
        Money::parse_amount(self.text(index)?, currency).map_err(|e| self.column_corrupt(index, e))
    }

    /// A unit amount in `currency`.
    pub(crate) fn unit_amount(&self, index: usize, currency: Currency) -> Result<UnitAmount> {
        UnitAmount::parse_amount(self.text(index)?, currency)
            .map_err(|e| self.column_corrupt(index, e))
    }
}
