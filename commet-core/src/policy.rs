//! The billing policy: the rules an engine is configured with, as decisions apply them.
//!
//! An engine is configured once (`commet_engine::BillingConfig`); the parts that decide
//! something (how amounts round, how dunning retries, when an unfinished checkout expires,
//! where recovery links point, who sells) are handed to every decision in its
//! [`Context`](crate::subscription::Context) as a [`BillingPolicy`].

use chrono::TimeDelta;

use crate::dunning::DunningPolicy;
use crate::invoice::Party;
use crate::money::RoundingPolicy;
use crate::token::Links;

/// The rules decisions apply. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct BillingPolicy {
    /// Retries and exhaustion after a failed charge.
    pub dunning: DunningPolicy,
    /// How line amounts are rounded.
    pub rounding: RoundingPolicy,
    /// Cancel a subscription whose checkout is not completed within this long (`None`: never).
    pub checkout_expires_after: Option<TimeDelta>,
    /// The signed links decisions put in events (the recovery link of `payment.failed`).
    pub links: Links,
    /// The seller every invoice records when it leaves `draft`.
    pub seller: Party,
    /// The text printed at the foot of every invoice, recorded with it.
    pub footer: Option<String>,
}
