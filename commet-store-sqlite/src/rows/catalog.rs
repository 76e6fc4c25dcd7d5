//! `plans` and `prices`: insert-only.

use commet_core::calendar::Interval;
use commet_core::catalog::{NewPlan, NewPrice, Plan, Price};
use commet_core::money::Currency;
use commet_engine::store::EntityKind;
use rusqlite::{Connection, Row, params};

use super::execute;
use crate::codec::{self, Columns};
use crate::error::Result;

/// The columns of a plan, in the order [`decode_plan`] expects.
pub(crate) const PLAN_COLUMNS: &str = "id, code, name, description";

/// The columns of a price, in the order [`decode_price`] expects.
pub(crate) const PRICE_COLUMNS: &str =
    "id, plan, currency, unit_amount, interval_frequency, interval_count, trial_days, model";

/// Insert a plan.
pub(crate) fn insert_plan(conn: &Connection, plan: &Plan) -> Result<()> {
    execute(
        conn,
        "INSERT INTO plans (id, code, name, description) VALUES (?1, ?2, ?3, ?4)",
        params![
            plan.id().to_string(),
            plan.code(),
            plan.name(),
            plan.description()
        ],
    )?;
    Ok(())
}

/// Insert a price.
pub(crate) fn insert_price(conn: &Connection, price: &Price) -> Result<()> {
    execute(
        conn,
        "INSERT INTO prices (id, plan, currency, unit_amount, interval_frequency, \
         interval_count, trial_days, model) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            price.id().to_string(),
            price.plan().to_string(),
            price.currency().code(),
            codec::unit_amount(price.unit_amount()),
            price.interval().frequency().as_str(),
            price.interval().count(),
            price.trial_days(),
            codec::name(&price.model())?,
        ],
    )?;
    Ok(())
}

/// Rebuild a plan from a row of [`PLAN_COLUMNS`].
pub(crate) fn decode_plan(row: &Row<'_>) -> Result<Plan> {
    let columns = Columns::new(row, EntityKind::Plan);
    Plan::new(
        columns.parse(0)?,
        NewPlan {
            code: columns.get(1)?,
            name: columns.get(2)?,
            description: columns.get(3)?,
        },
    )
    .map_err(|e| columns.corrupt(e))
}

/// Rebuild a price from a row of [`PRICE_COLUMNS`].
pub(crate) fn decode_price(row: &Row<'_>) -> Result<Price> {
    let columns = Columns::new(row, EntityKind::Price);
    let currency: Currency = columns.parse(2)?;
    let interval =
        Interval::new(columns.parse(4)?, columns.u32(5)?).map_err(|e| columns.corrupt(e))?;
    Price::new(
        columns.parse(0)?,
        NewPrice {
            plan: columns.parse(1)?,
            unit_amount: columns.unit_amount(3, currency)?,
            interval,
            trial_days: columns.u32(6)?,
            model: columns.name(7)?,
        },
    )
    .map_err(|e| columns.corrupt(e))
}
