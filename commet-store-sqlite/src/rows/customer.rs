//! `customers`: one row per customer; credit and metadata as JSON objects.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use commet_core::customer::{Customer, CustomerDetails, CustomerRecord};
use commet_core::money::Currency;
use commet_engine::store::EntityKind;
use rusqlite::{Connection, Row};

use super::Writes;
use super::execute;
use crate::codec::{self, Bound, Columns, borrowed, micros, opt_borrowed, owned};
use crate::error::Result;

/// The columns every read selects, in the order [`decode`] expects.
pub(crate) const COLUMNS: &str = "id, external_id, email, full_name, payment_method, credit, \
                                  metadata, created_at, updated_at, version, billing";

/// Let go of the external ids `claimed` (a JSON array) held by the customers `ids` (a JSON
/// array): the customers a commit rewrites, before it writes them, so that an external id can
/// move between them without the unique index ever seeing two holders mid-commit. Each is
/// rewritten later in the same commit (with its own external id, if it keeps it); a holder the
/// commit does not rewrite keeps its id, and the index refuses a claim on it.
pub(crate) fn release_external_ids(conn: &Connection, ids: &str, claimed: &str) -> Result<()> {
    execute(
        conn,
        "UPDATE customers SET external_id = NULL \
         WHERE id IN (SELECT value FROM json_each(?1)) \
         AND external_id IN (SELECT value FROM json_each(?2))",
        [ids, claimed],
    )?;
    Ok(())
}

fn credit_json(customer: &Customer) -> Result<String> {
    let credit: BTreeMap<&str, String> = customer
        .credits()
        .iter()
        .map(|(currency, money)| (currency.code(), codec::amount(*money)))
        .collect();
    codec::json(&credit)
}

static WRITES: LazyLock<Writes> = LazyLock::new(|| Writes::new("customers", COLUMNS));

/// The values of [`COLUMNS`] for a customer stored at `version`.
fn values(customer: &Customer, version: i64) -> Result<Vec<Bound<'_>>> {
    Ok(vec![
        owned(customer.id().to_string()),
        opt_borrowed(customer.external_id()),
        borrowed(customer.email()),
        opt_borrowed(customer.full_name()),
        opt_borrowed(customer.payment_method()),
        owned(credit_json(customer)?),
        owned(codec::json(customer.metadata())?),
        owned(micros(customer.created_at())),
        owned(micros(customer.updated_at())),
        owned(version),
        owned(customer.billing().map(codec::json).transpose()?),
    ])
}

/// Insert a new customer at `version`.
pub(crate) fn insert(conn: &Connection, customer: &Customer, version: i64) -> Result<()> {
    WRITES.insert(conn, values(customer, version)?)
}

/// Rewrite a customer stored at `expected`; false if it is not at that version.
pub(crate) fn update(
    conn: &Connection,
    customer: &Customer,
    expected: i64,
    version: i64,
) -> Result<bool> {
    WRITES.update(conn, values(customer, version)?, expected)
}

/// Rebuild a customer from a row of [`COLUMNS`].
pub(crate) fn decode(row: &Row<'_>) -> Result<Customer> {
    let columns = Columns::new(row, EntityKind::Customer);
    let credit_text: BTreeMap<String, String> = columns.json(5)?;
    let mut credit = BTreeMap::new();
    for (code, amount) in credit_text {
        let currency: Currency = code
            .parse()
            .map_err(|e| columns.corrupt(format_args!("column credit: {e}")))?;
        let money = commet_core::money::Money::parse_amount(&amount, currency)
            .map_err(|e| columns.corrupt(format_args!("column credit: {e}")))?;
        credit.insert(currency, money);
    }
    let record = CustomerRecord {
        id: columns.parse(0)?,
        details: CustomerDetails {
            external_id: columns.get(1)?,
            email: columns.get(2)?,
            full_name: columns.get(3)?,
            metadata: columns.json(6)?,
        },
        payment_method: columns.get(4)?,
        billing: columns.opt_json(10)?,
        credit,
        created_at: columns.time(7)?,
        updated_at: columns.time(8)?,
        version: columns.u64(9)?,
    };
    Customer::from_record(record).map_err(|e| columns.corrupt(e))
}
