//! Laws of money (DESIGN.md section 12): conservation, rounding, text round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used)] // strategies build values known valid

use commet_core::money::{Currency, Money, MoneyError, RoundingPolicy, UnitAmount};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rust_decimal::Decimal;

/// Currencies with 0, 2, 3 and 4 decimal places.
fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![
        Just(Currency::USD),
        Just(Currency::JPY),
        Just(Currency::KWD),
        Just(Currency::EUR),
        Just(Currency::from_code("CLF").unwrap()),
    ]
}

/// Amounts well inside the range, so sums of two never overflow.
fn money() -> impl Strategy<Value = Money> {
    (currency(), -1_000_000_000_000_000i64..1_000_000_000_000_000)
        .prop_map(|(currency, minor)| Money::from_minor(minor, currency))
}

/// Two amounts in one currency.
fn money_pair() -> impl Strategy<Value = (Money, Money)> {
    (
        currency(),
        -1_000_000_000_000_000i64..1_000_000_000_000_000,
        -1_000_000_000_000_000i64..1_000_000_000_000_000,
    )
        .prop_map(|(c, a, b)| (Money::from_minor(a, c), Money::from_minor(b, c)))
}

/// Any decimal with up to 12 decimal places, positive or negative.
fn decimal() -> impl Strategy<Value = Decimal> {
    (any::<i64>(), 0u32..=12).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
}

fn policy() -> impl Strategy<Value = RoundingPolicy> {
    prop_oneof![
        Just(RoundingPolicy::HalfAwayFromZero),
        Just(RoundingPolicy::HalfEven)
    ]
}

/// Half a minor unit of `currency`.
fn half_unit(currency: Currency) -> Decimal {
    Decimal::new(5, currency.decimals() + 1)
}

/// Failures are saved under `proptest-regressions/` (committed) and re-run first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/money_laws.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn addition_is_commutative((a, b) in money_pair()) {
        prop_assert_eq!(a.checked_add(b), b.checked_add(a));
    }

    #[test]
    fn subtraction_undoes_addition((a, b) in money_pair()) {
        prop_assert_eq!(a.checked_add(b)?.checked_sub(b)?, a);
        prop_assert_eq!(a.checked_sub(b)?.checked_add(b)?, a);
    }

    #[test]
    fn arithmetic_never_panics_and_overflow_is_typed(
        a in any::<i64>(), b in any::<i64>(), c in currency()
    ) {
        let (x, y) = (Money::from_minor(a, c), Money::from_minor(b, c));
        match a.checked_add(b) {
            Some(sum) => prop_assert_eq!(x.checked_add(y)?.minor_units(), sum),
            None => prop_assert_eq!(x.checked_add(y), Err(MoneyError::Overflow)),
        }
        match a.checked_sub(b) {
            Some(difference) => prop_assert_eq!(x.checked_sub(y)?.minor_units(), difference),
            None => prop_assert_eq!(x.checked_sub(y), Err(MoneyError::Overflow)),
        }
    }

    #[test]
    fn mixing_currencies_is_always_refused(a in money(), b in money()) {
        prop_assume!(a.currency() != b.currency());
        let mismatch = Err(MoneyError::CurrencyMismatch {
            expected: a.currency(),
            actual: b.currency(),
        });
        prop_assert_eq!(a.checked_add(b), mismatch.clone());
        prop_assert_eq!(a.checked_sub(b), mismatch);
        prop_assert_eq!(a.partial_cmp(&b), None);
    }

    #[test]
    fn allocation_conserves_the_total_and_each_part_is_within_one_minor_unit(
        total in any::<i64>(),
        c in currency(),
        weights in prop::collection::vec(0u64..1_000_000, 1..24),
    ) {
        prop_assume!(weights.iter().any(|&w| w > 0));
        let whole = Money::from_minor(total, c);
        let parts = whole.allocate(&weights)?;
        prop_assert_eq!(parts.len(), weights.len());
        let sum: i128 = parts.iter().map(|p| i128::from(p.minor_units())).sum();
        prop_assert_eq!(sum, i128::from(total));
        let weight_sum: i128 = weights.iter().map(|&w| i128::from(w)).sum();
        for (part, &weight) in parts.iter().zip(&weights) {
            prop_assert_eq!(part.currency(), c);
            // |part - total * w / W| < 1  <=>  |part * W - total * w| < W, in exact integers.
            let error = i128::from(part.minor_units()) * weight_sum - i128::from(total) * i128::from(weight);
            prop_assert!(error.abs() < weight_sum, "part {} off its share by >= 1", part);
        }
    }

    #[test]
    fn allocation_with_huge_weights_still_conserves(
        total in -1_000_000_000i64..1_000_000_000,
        weights in prop::collection::vec(any::<u64>(), 1..8),
    ) {
        prop_assume!(weights.iter().any(|&w| w > 0));
        let parts = Money::from_minor(total, Currency::USD).allocate(&weights)?;
        let sum: i64 = parts.iter().map(Money::minor_units).sum();
        prop_assert_eq!(sum, total);
    }

    #[test]
    fn money_text_round_trips(m in money()) {
        prop_assert_eq!(m.to_string().parse::<Money>()?, m);
        prop_assert_eq!(Money::parse_amount(&m.amount().to_string(), m.currency())?, m);
        prop_assert_eq!(Money::from_minor(m.minor_units(), m.currency()), m);
    }

    #[test]
    fn unit_amount_text_round_trips(d in decimal(), c in currency()) {
        let unit = UnitAmount::new(d, c);
        prop_assert_eq!(unit.to_string().parse::<UnitAmount>()?, unit);
    }

    #[test]
    fn rounding_is_idempotent(d in decimal(), places in 0u32..=6, p in policy()) {
        let once = p.round(d, places);
        prop_assert_eq!(p.round(once, places), once);
        prop_assert!(once.scale() <= places);
    }

    #[test]
    fn rounding_to_money_moves_at_most_half_a_minor_unit(d in decimal(), c in currency(), p in policy()) {
        let rounded = Money::round(d, c, p);
        // Values beyond i64 minor units are refused, never wrapped.
        if let Ok(money) = rounded {
            prop_assert!((money.amount() - d).abs() <= half_unit(c));
            prop_assert_eq!(Money::round(money.amount(), c, p)?, money);
        } else {
            prop_assert_eq!(rounded, Err(MoneyError::Overflow));
        }
    }

    #[test]
    fn quantity_times_unit_amount_is_rounded_once(
        unit in (0i64..10_000_000, 0u32..=6),
        quantity in 0u32..100_000,
        c in currency(),
        p in policy(),
    ) {
        let unit = UnitAmount::new(Decimal::new(unit.0, unit.1), c);
        let exact = unit.amount() * Decimal::from(quantity);
        let line = unit.times(quantity.into(), p)?;
        prop_assert_eq!(line, Money::round(exact, c, p)?);
        prop_assert!((line.amount() - exact).abs() <= half_unit(c));
    }

    #[test]
    fn multiplying_by_a_whole_number_is_exact(a in -1_000_000_000i64..1_000_000_000, k in -1000i64..1000, c in currency()) {
        let m = Money::from_minor(a, c);
        prop_assert_eq!(m.checked_mul(k.into(), RoundingPolicy::HalfEven)?.minor_units(), a * k);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in ".{0,40}") {
        let _ = text.parse::<Money>();
        let _ = text.parse::<UnitAmount>();
        let _ = Currency::from_code(&text);
    }
}
