//! The catalog: define and list plans and prices.

use commet_core::catalog::{NewPlan, NewPrice, Plan, Price};
use commet_core::ids::PlanId;

use crate::billing::Billing;
use crate::error::Result;
use crate::request::Prepared;
use crate::store::StoreExt;
use crate::writes::Writes;

/// Plans and prices. From [`Billing::catalog`].
///
/// Plans and prices are never rewritten: a new amount or interval is a new price, so existing
/// subscriptions keep billing what they signed up for (as at Stripe).
#[derive(Debug, Clone, Copy)]
pub struct CatalogApi<'a> {
    billing: &'a Billing,
    key: Option<&'a str>,
}

impl<'a> CatalogApi<'a> {
    pub(crate) fn new(billing: &'a Billing, key: Option<&'a str>) -> CatalogApi<'a> {
        CatalogApi { billing, key }
    }

    /// Define a plan. A code already in use is
    /// [`BillingError::Store`](crate::BillingError::Store) `AlreadyExists`.
    pub async fn define_plan(&self, plan: NewPlan) -> Result<Plan> {
        let billing = self.billing;
        let plan = &plan;
        let prepare = |_, now| async move {
            let plan = Plan::new(billing.ids.next(now), plan.clone())?;
            let mut writes = Writes::default();
            writes.changes.plans.push(plan.clone());
            Ok(Prepared::Commit {
                writes,
                answer: plan,
            })
        };
        billing
            .request(self.key, "catalog.define_plan", plan, prepare, None)
            .await
    }

    /// Define a price of an existing plan. A price too large ever to bill is refused here,
    /// naming `unit_amount` (see [`commet_core::catalog`]).
    pub async fn define_price(&self, price: NewPrice) -> Result<Price> {
        let billing = self.billing;
        let price = &price;
        let prepare = |_, now| async move {
            billing.store.get_plan(price.plan).await?;
            let price = Price::new(billing.ids.next(now), *price)?;
            let mut writes = Writes::default();
            writes.changes.prices.push(price.clone());
            Ok(Prepared::Commit {
                writes,
                answer: price,
            })
        };
        billing
            .request(self.key, "catalog.define_price", price, prepare, None)
            .await
    }

    /// Every plan, in creation order.
    pub async fn plans(&self) -> Result<Vec<Plan>> {
        Ok(self.billing.store.plans().await?)
    }

    /// The prices of a plan (or of every plan), in creation order.
    pub async fn prices(&self, plan: Option<PlanId>) -> Result<Vec<Price>> {
        Ok(match plan {
            Some(plan) => self.billing.store.prices_of(plan).await?,
            None => self.billing.store.prices().await?,
        })
    }
}
