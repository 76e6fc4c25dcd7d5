//! Billing periods: where each period of a subscription starts and ends.
//!
//! A [`BillingCycle`] is an anchor instant and an [`Interval`]. Boundary `n` is always computed
//! from the anchor, never from the previous boundary, so the anchor never drifts:
//!
//! - Monthly, quarterly and yearly boundaries keep the anchor's day of month, clamped to the
//!   month's last day, and its time of day. An anchor of Jan 31 renews on Feb 29 (2024) or
//!   Feb 28 (2025), then Mar 31, Apr 30, May 31. A yearly Feb 29 anchor renews on Feb 28 in
//!   common years and Feb 29 in leap years.
//! - Weekly boundaries are exactly `7 x count` days apart (instants are UTC: no DST).
//!
//! Periods are half-open, `[start, end)`: the end of period `n` is the start of period `n + 1`,
//! and an instant belongs to exactly one period.

use std::fmt;

use chrono::{DateTime, Datelike, Months, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::validation::InvalidField;

/// How often a price bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// Every 7 days.
    Weekly,
    /// Every calendar month, on the anchor's day.
    Monthly,
    /// Every 3 calendar months.
    Quarterly,
    /// Every 12 calendar months.
    Yearly,
}

impl Frequency {
    /// The lower-case name: `weekly`, `monthly`, `quarterly`, `yearly`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
            Frequency::Quarterly => "quarterly",
            Frequency::Yearly => "yearly",
        }
    }

    /// The largest count allowed: a period may last at most three years (as at Stripe).
    #[must_use]
    pub fn max_count(self) -> u32 {
        match self {
            Frequency::Weekly => 156,
            Frequency::Monthly => 36,
            Frequency::Quarterly => 12,
            Frequency::Yearly => 3,
        }
    }
}

impl std::str::FromStr for Frequency {
    type Err = InvalidField;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "weekly" => Ok(Frequency::Weekly),
            "monthly" => Ok(Frequency::Monthly),
            "quarterly" => Ok(Frequency::Quarterly),
            "yearly" => Ok(Frequency::Yearly),
            _ => Err(InvalidField::new(
                "interval",
                format_args!(
                    "{:?} is not one of weekly, monthly, quarterly, yearly",
                    crate::validation::excerpt(text)
                ),
            )),
        }
    }
}

/// A billing interval: `count` times a [`Frequency`] ("every 2 weeks", "monthly").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "IntervalRepr", into = "IntervalRepr")]
pub struct Interval {
    frequency: Frequency,
    count: u32,
}

#[derive(Serialize, Deserialize)]
struct IntervalRepr {
    frequency: Frequency,
    count: u32,
}

impl TryFrom<IntervalRepr> for Interval {
    type Error = InvalidField;

    fn try_from(repr: IntervalRepr) -> Result<Self, Self::Error> {
        Interval::new(repr.frequency, repr.count)
    }
}

impl From<Interval> for IntervalRepr {
    fn from(interval: Interval) -> Self {
        IntervalRepr {
            frequency: interval.frequency,
            count: interval.count,
        }
    }
}

impl Interval {
    /// Every week.
    pub const WEEKLY: Interval = Interval {
        frequency: Frequency::Weekly,
        count: 1,
    };
    /// Every month.
    pub const MONTHLY: Interval = Interval {
        frequency: Frequency::Monthly,
        count: 1,
    };
    /// Every quarter.
    pub const QUARTERLY: Interval = Interval {
        frequency: Frequency::Quarterly,
        count: 1,
    };
    /// Every year.
    pub const YEARLY: Interval = Interval {
        frequency: Frequency::Yearly,
        count: 1,
    };

    /// `count` times `frequency`. The count must be at least 1 and the period at most three
    /// years long; otherwise the error names `interval_count`.
    pub fn new(frequency: Frequency, count: u32) -> Result<Interval, InvalidField> {
        if count == 0 {
            return Err(InvalidField::new("interval_count", "must be at least 1"));
        }
        if count > frequency.max_count() {
            return Err(InvalidField::new(
                "interval_count",
                format_args!(
                    "must be at most {} for {} prices (periods last at most three years)",
                    frequency.max_count(),
                    frequency.as_str()
                ),
            ));
        }
        Ok(Interval { frequency, count })
    }

    /// The frequency.
    #[must_use]
    pub fn frequency(self) -> Frequency {
        self.frequency
    }

    /// How many of the frequency make one period.
    #[must_use]
    pub fn count(self) -> u32 {
        self.count
    }

    /// The calendar months in one period, or `None` for weekly intervals.
    #[must_use]
    pub fn months(self) -> Option<u32> {
        match self.frequency {
            Frequency::Weekly => None,
            Frequency::Monthly => Some(self.count),
            Frequency::Quarterly => Some(3 * self.count),
            Frequency::Yearly => Some(12 * self.count),
        }
    }

    /// The shortest and longest a period of this interval can be, in days, given that
    /// a month lasts 28 to 31 days, a quarter 89 to 92 and a year 365 or 366.
    #[must_use]
    pub fn day_bounds(self) -> (i64, i64) {
        let count = i64::from(self.count);
        match self.frequency {
            Frequency::Weekly => (7 * count, 7 * count),
            Frequency::Monthly => (28 * count, 31 * count),
            Frequency::Quarterly => (89 * count, 92 * count),
            Frequency::Yearly => (365 * count, 366 * count),
        }
    }
}

impl fmt::Display for Interval {
    /// `monthly`, or `every 2 weeks`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 1 {
            return f.write_str(self.frequency.as_str());
        }
        let unit = match self.frequency {
            Frequency::Weekly => "weeks",
            Frequency::Monthly => "months",
            Frequency::Quarterly => "quarters",
            Frequency::Yearly => "years",
        };
        write!(f, "every {} {unit}", self.count)
    }
}

/// A half-open span of time, `[start, end)`, with `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "PeriodRepr", into = "PeriodRepr")]
pub struct Period {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct PeriodRepr {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TryFrom<PeriodRepr> for Period {
    type Error = InvalidField;

    fn try_from(repr: PeriodRepr) -> Result<Self, Self::Error> {
        Period::new(repr.start, repr.end)
    }
}

impl From<Period> for PeriodRepr {
    fn from(period: Period) -> Self {
        PeriodRepr {
            start: period.start,
            end: period.end,
        }
    }
}

impl Period {
    /// The span `[start, end)`; the error names `period` unless `start < end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Period, InvalidField> {
        if start < end {
            Ok(Period { start, end })
        } else {
            Err(InvalidField::new(
                "period",
                format_args!("start {start} must be before end {end}"),
            ))
        }
    }

    /// The first instant of the period.
    #[must_use]
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The first instant after the period.
    #[must_use]
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// How long the period lasts.
    #[must_use]
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }

    /// True if `instant` is in `[start, end)`.
    #[must_use]
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }
}

/// Why a billing calendar could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The instant asked about is before the cycle's anchor, so no period contains it.
    #[error("{instant} is before the billing anchor {anchor}")]
    BeforeAnchor {
        /// The instant asked about.
        instant: DateTime<Utc>,
        /// The cycle's anchor.
        anchor: DateTime<Utc>,
    },
    /// The boundary would fall outside the representable dates (beyond year 262,000).
    #[error("billing period {index} is beyond the representable dates")]
    OutOfRange {
        /// The boundary index asked for.
        index: u64,
    },
}

/// The periods of one subscription: an anchor and an interval.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use commet_core::calendar::{BillingCycle, Interval};
///
/// let anchor = Utc.with_ymd_and_hms(2024, 1, 31, 9, 30, 0).unwrap();
/// let cycle = BillingCycle::new(anchor, Interval::MONTHLY);
/// let ends: Vec<String> = (0..4)
///     .map(|n| cycle.period(n).unwrap().end().format("%b %d").to_string())
///     .collect();
/// assert_eq!(ends, ["Feb 29", "Mar 31", "Apr 30", "May 31"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BillingCycle {
    anchor: DateTime<Utc>,
    interval: Interval,
}

impl BillingCycle {
    /// The cycle whose period 0 starts at `anchor`.
    #[must_use]
    pub fn new(anchor: DateTime<Utc>, interval: Interval) -> BillingCycle {
        BillingCycle { anchor, interval }
    }

    /// The anchor: the start of period 0.
    #[must_use]
    pub fn anchor(&self) -> DateTime<Utc> {
        self.anchor
    }

    /// The interval.
    #[must_use]
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// Boundary `n`: the start of period `n` (boundary 0 is the anchor).
    pub fn boundary(&self, n: u64) -> Result<DateTime<Utc>, CalendarError> {
        let out_of_range = CalendarError::OutOfRange { index: n };
        if let Some(months) = self.interval.months() {
            let months = u32::try_from(n)
                .ok()
                .and_then(|n| n.checked_mul(months))
                .ok_or(out_of_range.clone())?;
            // chrono clamps the day to the month's last day and keeps the time of day.
            self.anchor
                .checked_add_months(Months::new(months))
                .ok_or(out_of_range)
        } else {
            let days = i64::try_from(n)
                .ok()
                .and_then(|n| n.checked_mul(7 * i64::from(self.interval.count)))
                .and_then(TimeDelta::try_days)
                .ok_or(out_of_range.clone())?;
            self.anchor.checked_add_signed(days).ok_or(out_of_range)
        }
    }

    /// Period `n`: `[boundary(n), boundary(n + 1))`.
    pub fn period(&self, n: u64) -> Result<Period, CalendarError> {
        let start = self.boundary(n)?;
        let end = self.boundary(n.saturating_add(1))?;
        // Boundaries strictly increase, so this holds; map the impossible case to range.
        Period::new(start, end).map_err(|_| CalendarError::OutOfRange { index: n })
    }

    /// The index of the period that contains `instant`.
    pub fn period_index_at(&self, instant: DateTime<Utc>) -> Result<u64, CalendarError> {
        if instant < self.anchor {
            return Err(CalendarError::BeforeAnchor {
                instant,
                anchor: self.anchor,
            });
        }
        // A close guess from whole months or weeks, then step to the exact period.
        let mut n = if let Some(months) = self.interval.months() {
            let elapsed = i64::from(instant.year() - self.anchor.year()) * 12
                + i64::from(instant.month())
                - i64::from(self.anchor.month());
            u64::try_from(elapsed / i64::from(months)).unwrap_or(0)
        } else {
            let week_span = 7 * i64::from(self.interval.count);
            u64::try_from((instant - self.anchor).num_days() / week_span).unwrap_or(0)
        };
        while n > 0 && self.boundary(n)? > instant {
            n -= 1;
        }
        while self.boundary(n + 1)? <= instant {
            n += 1;
        }
        Ok(n)
    }

    /// The period that contains `instant`.
    pub fn period_containing(&self, instant: DateTime<Utc>) -> Result<Period, CalendarError> {
        self.period(self.period_index_at(instant)?)
    }

    /// The first boundary strictly after `instant` (the anchor, if `instant` is before it).
    pub fn next_boundary_after(
        &self,
        instant: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, CalendarError> {
        if instant < self.anchor {
            return Ok(self.anchor);
        }
        Ok(self.period_containing(instant)?.end())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn boundaries(cycle: &BillingCycle, count: u64) -> Vec<String> {
        (0..count)
            .map(|n| cycle.boundary(n).unwrap().format("%Y-%m-%d").to_string())
            .collect()
    }

    #[test]
    fn jan_31_anchor_renews_on_feb_29_in_leap_year_then_returns_to_the_31st() {
        let cycle = BillingCycle::new(utc(2024, 1, 31), Interval::MONTHLY);
        assert_eq!(
            boundaries(&cycle, 6),
            [
                "2024-01-31",
                "2024-02-29",
                "2024-03-31",
                "2024-04-30",
                "2024-05-31",
                "2024-06-30"
            ]
        );
    }

    #[test]
    fn jan_31_anchor_renews_on_feb_28_in_common_year() {
        let cycle = BillingCycle::new(utc(2025, 1, 31), Interval::MONTHLY);
        assert_eq!(
            boundaries(&cycle, 5),
            [
                "2025-01-31",
                "2025-02-28",
                "2025-03-31",
                "2025-04-30",
                "2025-05-31"
            ]
        );
    }

    #[test]
    fn quarterly_from_nov_30_clamps_february_and_keeps_the_30th() {
        let cycle = BillingCycle::new(utc(2023, 11, 30), Interval::QUARTERLY);
        assert_eq!(
            boundaries(&cycle, 6),
            [
                "2023-11-30",
                "2024-02-29",
                "2024-05-30",
                "2024-08-30",
                "2024-11-30",
                "2025-02-28"
            ]
        );
    }

    #[test]
    fn weekly_crosses_the_year_boundary_seven_days_at_a_time() {
        let anchor = Utc.with_ymd_and_hms(2023, 12, 20, 17, 45, 10).unwrap();
        let cycle = BillingCycle::new(anchor, Interval::WEEKLY);
        assert_eq!(
            boundaries(&cycle, 4),
            ["2023-12-20", "2023-12-27", "2024-01-03", "2024-01-10"]
        );
        assert_eq!(
            cycle.boundary(2).unwrap().format("%H:%M:%S").to_string(),
            "17:45:10"
        );
    }

    #[test]
    fn yearly_from_feb_29_renews_feb_28_in_common_years_for_eight_years() {
        let cycle = BillingCycle::new(utc(2024, 2, 29), Interval::YEARLY);
        assert_eq!(
            boundaries(&cycle, 9),
            [
                "2024-02-29",
                "2025-02-28",
                "2026-02-28",
                "2027-02-28",
                "2028-02-29",
                "2029-02-28",
                "2030-02-28",
                "2031-02-28",
                "2032-02-29"
            ]
        );
    }

    #[test]
    fn time_of_day_is_kept_through_clamping() {
        let anchor = Utc.with_ymd_and_hms(2024, 1, 31, 23, 59, 59).unwrap();
        let cycle = BillingCycle::new(anchor, Interval::MONTHLY);
        assert_eq!(
            cycle.boundary(1).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap()
        );
    }

    #[test]
    fn every_instant_has_exactly_one_period() {
        let cycle = BillingCycle::new(utc(2024, 1, 31), Interval::MONTHLY);
        let feb_29 = utc(2024, 2, 29);
        assert_eq!(
            cycle.period_index_at(feb_29 - TimeDelta::microseconds(1)),
            Ok(0)
        );
        assert_eq!(cycle.period_index_at(feb_29), Ok(1));
        assert_eq!(cycle.next_boundary_after(feb_29), Ok(utc(2024, 3, 31)));
        assert_eq!(
            cycle.next_boundary_after(utc(2023, 1, 1)),
            Ok(utc(2024, 1, 31))
        );
        assert_eq!(
            cycle.period_containing(utc(2023, 1, 1)),
            Err(CalendarError::BeforeAnchor {
                instant: utc(2023, 1, 1),
                anchor: utc(2024, 1, 31)
            })
        );
    }

    #[test]
    fn interval_count_zero_or_too_long_names_the_field() {
        let zero = Interval::new(Frequency::Monthly, 0).unwrap_err();
        assert_eq!(zero.field, "interval_count");
        let long = Interval::new(Frequency::Yearly, 4).unwrap_err();
        assert_eq!(long.field, "interval_count");
        assert!(serde_json::from_str::<Interval>(r#"{"frequency":"weekly","count":0}"#).is_err());
        assert_eq!(
            Interval::new(Frequency::Weekly, 2).unwrap().to_string(),
            "every 2 weeks"
        );
    }

    #[test]
    fn far_boundaries_are_out_of_range_not_a_panic() {
        let cycle = BillingCycle::new(
            utc(2024, 1, 1),
            Interval::new(Frequency::Yearly, 3).unwrap(),
        );
        assert_eq!(
            cycle.boundary(u64::MAX),
            Err(CalendarError::OutOfRange { index: u64::MAX })
        );
        assert!(cycle.boundary(1_000_000).is_err());
        let weekly = BillingCycle::new(utc(2024, 1, 1), Interval::WEEKLY);
        assert!(weekly.boundary(u64::MAX).is_err());
    }
}
