//! Laws of the billing calendar (DESIGN.md sections 6 and 12), over thousands of random
//! (anchor, interval, count, n).
#![allow(clippy::unwrap_used, clippy::expect_used)] // strategies build values known valid

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use commet_core::calendar::{BillingCycle, Frequency, Interval};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Anchors between 1970 and 2200, to the microsecond.
fn anchor() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..7_258_118_400, 0u32..1_000_000).prop_map(|(secs, micros)| {
        DateTime::from_timestamp(secs, micros * 1_000).expect("in range")
    })
}

/// Anchors on the days that clamp: the 28th to the 31st.
fn month_end_anchor() -> impl Strategy<Value = DateTime<Utc>> {
    (1970i32..2200, 1u32..=12, 28u32..=31, 0u32..86_400).prop_filter_map(
        "a real date",
        |(year, month, day, second)| {
            NaiveDate::from_ymd_opt(year, month, day)
                .and_then(|date| date.and_hms_opt(second / 3600, second / 60 % 60, second % 60))
                .map(|naive| naive.and_utc())
        },
    )
}

fn interval() -> impl Strategy<Value = Interval> {
    prop_oneof![
        Just(Frequency::Weekly),
        Just(Frequency::Monthly),
        Just(Frequency::Quarterly),
        Just(Frequency::Yearly),
    ]
    .prop_flat_map(|frequency| {
        (1..=frequency.max_count())
            .prop_map(move |count| Interval::new(frequency, count).expect("valid"))
    })
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|first| first.pred_opt())
        .expect("valid month")
        .day()
}

/// Failures are saved under `proptest-regressions/` (committed) and re-run first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/calendar_laws.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn periods_are_contiguous_increasing_and_of_calendar_length(
        anchor in anchor(), interval in interval(), n in 0u64..120,
    ) {
        let cycle = BillingCycle::new(anchor, interval);
        let this = cycle.period(n)?;
        let next = cycle.period(n + 1)?;
        prop_assert_eq!(this.end(), next.start());
        prop_assert!(this.start() < this.end());
        prop_assert_eq!(this.start(), cycle.boundary(n)?);
        // The time of day is kept, so a period is a whole number of days.
        let length = this.duration();
        prop_assert_eq!(length.num_seconds() % 86_400, 0);
        prop_assert_eq!(length.subsec_nanos(), 0);
        let (shortest, longest) = interval.day_bounds();
        prop_assert!(
            (shortest..=longest).contains(&length.num_days()),
            "{} days is outside {}..={} for {}", length.num_days(), shortest, longest, interval
        );
    }

    #[test]
    fn the_anchor_day_and_time_return_after_every_short_month(
        anchor in prop_oneof![anchor(), month_end_anchor()], interval in interval(), n in 0u64..240,
    ) {
        let boundary = BillingCycle::new(anchor, interval).boundary(n)?;
        prop_assert_eq!(boundary.time(), anchor.time());
        if interval.frequency() == Frequency::Weekly {
            prop_assert_eq!(boundary.weekday(), anchor.weekday());
            prop_assert_eq!((boundary - anchor).num_days(), i64::try_from(n)? * 7 * i64::from(interval.count()));
        } else {
            let expected_day = anchor.day().min(days_in_month(boundary.year(), boundary.month()));
            prop_assert_eq!(boundary.day(), expected_day);
            let months = i64::from(boundary.year() - anchor.year()) * 12
                + i64::from(boundary.month()) - i64::from(anchor.month());
            prop_assert_eq!(months, i64::try_from(n)? * i64::from(interval.months().unwrap_or(0)));
        }
    }

    #[test]
    fn every_instant_after_the_anchor_is_in_exactly_its_period(
        anchor in anchor(), interval in interval(), offset_secs in 0i64..3_000_000_000,
    ) {
        let cycle = BillingCycle::new(anchor, interval);
        let instant = anchor + TimeDelta::seconds(offset_secs);
        let n = cycle.period_index_at(instant)?;
        let period = cycle.period(n)?;
        prop_assert!(period.contains(instant));
        if n > 0 {
            prop_assert!(!cycle.period(n - 1)?.contains(instant));
        }
        prop_assert!(!cycle.period(n + 1)?.contains(instant));
        prop_assert_eq!(cycle.next_boundary_after(instant)?, period.end());
    }

    #[test]
    fn a_boundary_is_in_the_period_it_starts(anchor in anchor(), interval in interval(), n in 0u64..120) {
        let cycle = BillingCycle::new(anchor, interval);
        let boundary = cycle.boundary(n)?;
        prop_assert_eq!(cycle.period_index_at(boundary)?, n);
        prop_assert_eq!(cycle.next_boundary_after(boundary)?, cycle.boundary(n + 1)?);
    }
}
