//! `invoices` and `invoice_lines`: amounts as exact decimal text in the invoice's currency
//! (one `currency` column), periods as two instants, lines in their own table keyed by
//! (invoice, position).

use std::sync::LazyLock;

use commet_core::InvalidField;
use commet_core::calendar::Period;
use commet_core::invoice::{Invoice, InvoiceNumber, InvoiceRecord, LineItem, LineRecord};
use commet_core::money::Currency;
use commet_engine::store::EntityKind;
use rusqlite::{Connection, Row, params_from_iter};

use super::{Writes, execute, query, statement};
use crate::codec::{self, Bound, Columns, borrowed, micros, opt_borrowed, opt_micros, owned};
use crate::error::Result;

/// The columns every read selects, in the order [`decode`] expects.
pub(crate) const COLUMNS: &str = "id, number, customer, subscription, currency, status, kind, \
                                  period_start, period_end, subtotal, discount, tax, total, \
                                  credit_applied, amount_due, amount_paid, created_at, \
                                  issued_at, due_at, paid_at, voided_at, \
                                  marked_uncollectible_at, memo, metadata, version, parties";

/// The columns every write sets: [`COLUMNS`], with the digest of the lines before `version`.
const WRITE_COLUMNS: &str = "id, number, customer, subscription, currency, status, kind, \
                             period_start, period_end, subtotal, discount, tax, total, \
                             credit_applied, amount_due, amount_paid, created_at, issued_at, \
                             due_at, paid_at, voided_at, marked_uncollectible_at, memo, metadata, \
                             lines_digest, version, parties";

static WRITES: LazyLock<Writes> = LazyLock::new(|| Writes::new("invoices", WRITE_COLUMNS));

/// The same writes, the rewrite applying only where the stored lines have the digest of the
/// new ones (`?25`): the lines are unchanged, so a finalized invoice may be rewritten and a
/// draft's lines need no rewrite.
static SAME_LINES: LazyLock<Writes> =
    LazyLock::new(|| Writes::with_condition("invoices", WRITE_COLUMNS, "lines_digest = ?25"));

/// A digest of an invoice's lines, equal for lines equal as values (a quantity of `1.0` is the
/// quantity `1`): the first 16 bytes of SHA-256 over the invoice's currency (every line amount
/// is in it) and each line's fields in binary (decimals normalized, instants in microseconds,
/// texts with their lengths).
fn lines_digest(invoice: &Invoice) -> Vec<u8> {
    use commet_core::ids::TypedId;
    use sha2::{Digest, Sha256};
    fn text(hasher: &mut Sha256, value: &str) {
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    fn instant(hasher: &mut Sha256, value: Option<chrono::DateTime<chrono::Utc>>) {
        match value {
            Some(at) => {
                hasher.update([1]);
                hasher.update(at.timestamp_micros().to_le_bytes());
            }
            None => hasher.update([0]),
        }
    }
    let mut hasher = Sha256::new();
    text(&mut hasher, invoice.currency().code());
    for line in invoice.lines() {
        let period = line.period();
        text(&mut hasher, line.kind().as_str());
        text(&mut hasher, line.description());
        hasher.update(line.quantity().normalize().serialize());
        hasher.update(line.unit_amount().amount().normalize().serialize());
        hasher.update(line.amount().amount().normalize().serialize());
        instant(&mut hasher, period.map(|p| p.start()));
        instant(&mut hasher, period.map(|p| p.end()));
        match line.price() {
            Some(price) => {
                hasher.update([1]);
                hasher.update(price.uuid().as_bytes());
            }
            None => hasher.update([0]),
        }
    }
    hasher
        .finalize()
        .get(..16)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// The values of [`WRITE_COLUMNS`] for an invoice stored at `version`.
fn values(invoice: &Invoice, version: i64) -> Result<Vec<Bound<'_>>> {
    let period = invoice.period();
    let amount = |money| owned(codec::amount(money));
    Ok(vec![
        owned(invoice.id().to_string()),
        opt_borrowed(invoice.number().map(InvoiceNumber::as_str)),
        owned(invoice.customer().to_string()),
        owned(invoice.subscription().map(|s| s.to_string())),
        borrowed(invoice.currency().code()),
        borrowed(invoice.status().as_str()),
        borrowed(invoice.kind().as_str()),
        owned(period.map(|p| micros(p.start()))),
        owned(period.map(|p| micros(p.end()))),
        amount(invoice.subtotal()),
        amount(invoice.discount()),
        amount(invoice.tax()),
        amount(invoice.total()),
        amount(invoice.credit_applied()),
        amount(invoice.amount_due()),
        amount(invoice.amount_paid()),
        owned(micros(invoice.created_at())),
        owned(opt_micros(invoice.issued_at())),
        owned(opt_micros(invoice.due_at())),
        owned(opt_micros(invoice.paid_at())),
        owned(opt_micros(invoice.voided_at())),
        owned(opt_micros(invoice.marked_uncollectible_at())),
        opt_borrowed(invoice.memo()),
        owned(codec::json(invoice.metadata())?),
        owned(lines_digest(invoice)),
        owned(version),
        owned(invoice.parties().map(codec::json).transpose()?),
    ])
}

/// Insert a new invoice and its lines at `version`.
pub(crate) fn insert(conn: &Connection, invoice: &Invoice, version: i64) -> Result<()> {
    WRITES.insert(conn, values(invoice, version)?)?;
    insert_lines(conn, invoice)
}

/// How an invoice is stored now.
pub(crate) struct Stored {
    /// The stored version.
    pub(crate) version: i64,
    /// True while it is a draft, whose lines may still change.
    pub(crate) draft: bool,
    /// The currency its stored lines are in.
    pub(crate) currency: Currency,
}

/// How the invoice `id` is stored now, if it is.
pub(crate) fn stored(conn: &Connection, id: &str) -> Result<Option<Stored>> {
    Ok(query(
        conn,
        "SELECT version, status, currency FROM invoices WHERE id = CAST(?1 AS TEXT)",
        [id],
        |row| {
            let columns = Columns::new(row, EntityKind::Invoice);
            Ok(Stored {
                version: columns.get(0)?,
                draft: columns.text(1)? == "draft",
                currency: columns.parse(2)?,
            })
        },
    )?
    .pop())
}

/// Rewrite an invoice stored at `expected`; false if it is not at that version. A draft's lines
/// are replaced; a finalized invoice's lines are fixed, and a write that changes them is refused
/// (`invoice.lines`), so nothing is rewritten that cannot have changed.
pub(crate) fn update(
    conn: &Connection,
    invoice: &Invoice,
    expected: i64,
    version: i64,
) -> Result<bool> {
    // The common rewrite (a finalized invoice paid, voided ...): the lines are unchanged, which
    // the UPDATE checks against the stored digest, with nothing read first.
    if SAME_LINES.update(conn, values(invoice, version)?, expected)? {
        return Ok(true);
    }
    let id = invoice.id().to_string();
    let Some(Stored {
        version: stored_version,
        draft,
        currency,
    }) = stored(conn, &id)?
    else {
        return Ok(false);
    };
    if stored_version != expected {
        return Ok(false);
    }
    if !draft && !lines_unchanged(conn, invoice, currency)? {
        return Err(lines_changed());
    }
    if !WRITES.update(conn, values(invoice, version)?, expected)? {
        return Ok(false);
    }
    if draft {
        execute(conn, "DELETE FROM invoice_lines WHERE invoice = ?1", [&id])?;
        insert_lines(conn, invoice)?;
    }
    Ok(true)
}

/// The refusal of a write that changes a finalized invoice's lines.
pub(crate) fn lines_changed() -> crate::error::Error {
    InvalidField::new("invoice.lines", "a finalized invoice's lines cannot change").into()
}

/// True if the stored lines of `invoice`, read in the currency they were stored in, are its
/// lines, compared as values (a quantity of `1.0` is the quantity `1`; `20 USD` is not
/// `20 EUR`), as the engine's rules compare them.
pub(crate) fn lines_unchanged(
    conn: &Connection,
    invoice: &Invoice,
    stored_currency: Currency,
) -> Result<bool> {
    let stored = lines(conn, &invoice.id().to_string(), stored_currency)?;
    Ok(stored.iter().eq(invoice
        .lines()
        .iter()
        .map(LineItem::to_record)
        .collect::<Vec<_>>()
        .iter()))
}

/// The stored values of each line, without the invoice id: position, kind, description,
/// quantity, unit amount, amount, period start and end, price.
fn line_values(invoice: &Invoice) -> Vec<[Bound<'_>; 9]> {
    (0_i64..)
        .zip(invoice.lines())
        .map(|(position, line)| {
            let period = line.period();
            [
                owned(position),
                borrowed(line.kind().as_str()),
                borrowed(line.description()),
                owned(line.quantity().to_string()),
                owned(codec::unit_amount(line.unit_amount())),
                owned(codec::amount(line.amount())),
                owned(period.map(|p| micros(p.start()))),
                owned(period.map(|p| micros(p.end()))),
                owned(line.price().map(|p| p.to_string())),
            ]
        })
        .collect()
}

fn insert_lines(conn: &Connection, invoice: &Invoice) -> Result<()> {
    let id = owned(invoice.id().to_string());
    let mut stmt = statement(
        conn,
        "INSERT INTO invoice_lines (invoice, position, kind, description, quantity, \
         unit_amount, amount, period_start, period_end, price) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for line in line_values(invoice) {
        stmt.execute(params_from_iter(std::iter::once(&id).chain(line.iter())))?;
    }
    Ok(())
}

/// A period stored as two nullable instants: both or neither.
fn period(columns: &Columns<'_, '_>, start: usize, end: usize) -> Result<Option<Period>> {
    match (columns.opt_time(start)?, columns.opt_time(end)?) {
        (None, None) => Ok(None),
        (Some(start), Some(end)) => Period::new(start, end)
            .map(Some)
            .map_err(|e| columns.corrupt(e)),
        _ => Err(columns.corrupt("a period needs both its start and its end")),
    }
}

/// Read an invoice row of [`COLUMNS`]; its lines are read by [`complete`].
fn decode(row: &Row<'_>) -> Result<InvoiceRecord> {
    let columns = Columns::new(row, EntityKind::Invoice);
    let currency: Currency = columns.parse(4)?;
    let record = InvoiceRecord {
        id: columns.parse(0)?,
        number: columns.get(1)?,
        customer: columns.parse(2)?,
        subscription: columns.parse_opt(3)?,
        currency,
        status: columns.name(5)?,
        kind: columns.name(6)?,
        period: period(&columns, 7, 8)?,
        created_at: columns.time(16)?,
        issued_at: columns.opt_time(17)?,
        due_at: columns.opt_time(18)?,
        lines: Vec::new(),
        subtotal: columns.money(9, currency)?,
        discount: columns.money(10, currency)?,
        tax: columns.money(11, currency)?,
        total: columns.money(12, currency)?,
        credit_applied: columns.money(13, currency)?,
        amount_due: columns.money(14, currency)?,
        amount_paid: columns.money(15, currency)?,
        paid_at: columns.opt_time(19)?,
        voided_at: columns.opt_time(20)?,
        marked_uncollectible_at: columns.opt_time(21)?,
        memo: columns.get(22)?,
        metadata: columns.json(23)?,
        parties: columns.opt_json(25)?,
        version: columns.u64(24)?,
    };
    Ok(record)
}

/// Read the lines of an invoice and rebuild it through [`Invoice::from_record`].
fn complete(conn: &Connection, mut record: InvoiceRecord) -> Result<Invoice> {
    let id = record.id.to_string();
    record.lines = lines(conn, &id, record.currency)?;
    Invoice::from_record(record)
        .map_err(|e| commet_engine::store::StoreError::corrupt(EntityKind::Invoice, &id, e).into())
}

/// The stored lines of invoice `id`, in order.
pub(crate) fn lines(conn: &Connection, id: &str, currency: Currency) -> Result<Vec<LineRecord>> {
    query(
        conn,
        "SELECT invoice, kind, description, quantity, unit_amount, amount, period_start, \
         period_end, price FROM invoice_lines WHERE invoice = CAST(?1 AS TEXT) \
         ORDER BY position",
        [id],
        |row| {
            let columns = Columns::new(row, EntityKind::Invoice);
            let quantity = columns.text(3)?;
            Ok(LineRecord {
                kind: columns.name(1)?,
                description: columns.get(2)?,
                quantity: quantity
                    .parse()
                    .map_err(|e| columns.corrupt(format_args!("a line's quantity: {e}")))?,
                unit_amount: columns.unit_amount(4, currency)?,
                amount: columns.money(5, currency)?,
                period: period(&columns, 6, 7)?,
                price: columns.parse_opt(8)?,
            })
        },
    )
}

/// Invoices (with their lines) read by a query selecting [`COLUMNS`].
pub(crate) fn read(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Invoice>> {
    query(conn, sql, params, decode)?
        .into_iter()
        .map(|record| complete(conn, record))
        .collect()
}
