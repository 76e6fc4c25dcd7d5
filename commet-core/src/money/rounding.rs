//! The rounding policy: how an exact amount becomes a payable one.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// How an exact decimal is rounded to a currency's minor unit.
///
/// An engine uses one policy everywhere; an amount is rounded exactly once, when it becomes
/// payable (a line amount, a proration), and totals are sums of rounded amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingPolicy {
    /// 0.125 -> 0.13, -0.125 -> -0.13: how people round on invoices. The default.
    #[default]
    HalfAwayFromZero,
    /// 0.125 -> 0.12, 0.135 -> 0.14: banker's rounding, unbiased over many roundings.
    HalfEven,
}

impl RoundingPolicy {
    /// Round `value` to `decimals` places. Idempotent: rounding a rounded value changes nothing.
    #[must_use]
    pub fn round(self, value: Decimal, decimals: u32) -> Decimal {
        let strategy = match self {
            RoundingPolicy::HalfAwayFromZero => RoundingStrategy::MidpointAwayFromZero,
            RoundingPolicy::HalfEven => RoundingStrategy::MidpointNearestEven,
        };
        value.round_dp_with_strategy(decimals, strategy)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn half_away_from_zero_rounds_midpoints_outward() {
        let policy = RoundingPolicy::HalfAwayFromZero;
        assert_eq!(policy.round(d("0.125"), 2), d("0.13"));
        assert_eq!(policy.round(d("-0.125"), 2), d("-0.13"));
        assert_eq!(policy.round(d("0.1249999"), 2), d("0.12"));
        assert_eq!(policy.round(d("2.5"), 0), d("3"));
    }

    #[test]
    fn half_even_rounds_midpoints_to_the_even_neighbour() {
        let policy = RoundingPolicy::HalfEven;
        assert_eq!(policy.round(d("0.125"), 2), d("0.12"));
        assert_eq!(policy.round(d("0.135"), 2), d("0.14"));
        assert_eq!(policy.round(d("-0.125"), 2), d("-0.12"));
        assert_eq!(policy.round(d("2.5"), 0), d("2"));
    }

    #[test]
    fn default_is_half_away_from_zero() {
        assert_eq!(RoundingPolicy::default(), RoundingPolicy::HalfAwayFromZero);
        assert_eq!(
            serde_json::to_string(&RoundingPolicy::HalfEven).unwrap(),
            "\"half_even\""
        );
    }
}
