//! The catalog: define and list plans and prices.

use serde::Serialize;

use super::{Billing, Result};
use crate::store::{ChangeSet, StoreExt};
use commet_core::catalog::{NewPlan, NewPrice, Plan, Price};
use commet_core::ids::PlanId;

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
    pub(super) fn new(billing: &'a Billing, key: Option<&'a str>) -> CatalogApi<'a> {
        CatalogApi { billing, key }
    }

    /// Define a plan. A code already in use is [`BillingError::Store`](super::BillingError::Store)
    /// `AlreadyExists`.
    pub async fn define_plan(&self, plan: NewPlan) -> Result<Plan> {
        let billing = self.billing;
        let plan = &plan;
        billing
            .commit_once(self.key, "catalog.define_plan", plan, |now| async move {
                let plan = Plan::new(billing.ids.next(now), plan.clone())?;
                let changes = ChangeSet {
                    plans: vec![plan.clone()],
                    ..ChangeSet::default()
                };
                Ok((plan, changes))
            })
            .await
    }

    /// Define a price of an existing plan.
    pub async fn define_price(&self, price: NewPrice) -> Result<Price> {
        #[derive(Serialize)]
        struct Request<'r>(&'r NewPrice);
        let billing = self.billing;
        billing
            .commit_once(
                self.key,
                "catalog.define_price",
                &Request(&price),
                |now| async move {
                    billing.store.get_plan(price.plan).await?;
                    let price = Price::new(billing.ids.next(now), price)?;
                    let changes = ChangeSet {
                        prices: vec![price.clone()],
                        ..ChangeSet::default()
                    };
                    Ok((price, changes))
                },
            )
            .await
    }

    /// Every plan, in creation order.
    pub async fn plans(&self) -> Result<Vec<Plan>> {
        self.billing.plans().await
    }

    /// The prices of a plan (or of every plan), in creation order.
    pub async fn prices(&self, plan: Option<PlanId>) -> Result<Vec<Price>> {
        Ok(match plan {
            Some(plan) => self.billing.store.prices_of(plan).await?,
            None => self.billing.store.prices().await?,
        })
    }
}
