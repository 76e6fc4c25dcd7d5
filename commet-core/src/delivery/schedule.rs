//! When a failed delivery is tried again: the retry schedule, and the receiver's `Retry-After`.

use chrono::{DateTime, TimeDelta, Utc};

use crate::InvalidField;

/// The most a receiver's `Retry-After` may push a retry back: 4 hours, the default schedule's
/// last offset.
pub const MAX_RETRY_AFTER: TimeDelta = TimeDelta::hours(4);

/// Offsets from a round's first failure at which a delivery is tried again. The default is
/// Commet's: 1 m, 5 m, 15 m, 30 m, 1 h, 2 h and 4 h after the first failure, so a delivery is
/// tried 8 times over 4 hours and then failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    offsets: Vec<TimeDelta>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            offsets: vec![
                TimeDelta::minutes(1),
                TimeDelta::minutes(5),
                TimeDelta::minutes(15),
                TimeDelta::minutes(30),
                TimeDelta::hours(1),
                TimeDelta::hours(2),
                TimeDelta::hours(4),
            ],
        }
    }
}

impl RetrySchedule {
    /// A schedule of offsets after the first failure: positive, strictly increasing, at most
    /// 20 of them, none over 7 days. No offsets: a failed attempt is final.
    pub fn new(offsets: Vec<TimeDelta>) -> Result<RetrySchedule, InvalidField> {
        const FIELD: &str = "webhooks.retry_schedule";
        if offsets.len() > 20 {
            return Err(InvalidField::new(FIELD, "at most 20 retries"));
        }
        let mut previous = TimeDelta::zero();
        for offset in &offsets {
            if *offset <= previous {
                return Err(InvalidField::new(
                    FIELD,
                    "offsets must be positive and strictly increasing",
                ));
            }
            if *offset > TimeDelta::days(7) {
                return Err(InvalidField::new(FIELD, "offsets must be at most 7 days"));
            }
            previous = *offset;
        }
        Ok(RetrySchedule { offsets })
    }

    /// The offsets after the first failure.
    #[must_use]
    pub fn offsets(&self) -> &[TimeDelta] {
        &self.offsets
    }

    /// When to try again after `failed` attempts of a round have failed, the first at
    /// `first_failure` and the last at `now`: `Ok(None)` once the schedule is used up.
    ///
    /// The retry is due at its offset from the first failure, but never sooner than the
    /// schedule's own step after `now` (the gap between this offset and the one before), so a
    /// late attempt (a slow worker, a `Retry-After` that pushed it past later offsets) shifts
    /// the rest of the round instead of bunching it into a burst; a receiver's `Retry-After`
    /// (capped at [`MAX_RETRY_AFTER`] from `now`) pushes it further back. An instant past the
    /// end of time is an error naming `next_attempt_at`, not the end of the schedule.
    pub fn next_attempt(
        &self,
        failed: usize,
        first_failure: DateTime<Utc>,
        now: DateTime<Utc>,
        retry_after: Option<TimeDelta>,
    ) -> Result<Option<DateTime<Utc>>, InvalidField> {
        let Some(index) = failed.checked_sub(1) else {
            return Ok(None);
        };
        let Some(offset) = self.offsets.get(index) else {
            return Ok(None);
        };
        let previous = index
            .checked_sub(1)
            .and_then(|before| self.offsets.get(before))
            .copied()
            .unwrap_or_else(TimeDelta::zero);
        let step = *offset - previous;
        let out_of_range = || InvalidField::new("next_attempt_at", "after the end of time");
        let scheduled = first_failure
            .checked_add_signed(*offset)
            .ok_or_else(out_of_range)?;
        let spaced = now.checked_add_signed(step).ok_or_else(out_of_range)?;
        let asked = match retry_after {
            Some(delay) => now
                .checked_add_signed(delay.clamp(TimeDelta::zero(), MAX_RETRY_AFTER))
                .ok_or_else(out_of_range)?,
            None => now,
        };
        Ok(Some(scheduled.max(spaced).max(asked)))
    }
}

/// A `Retry-After` header's delay from `now`: delay-seconds (`120`) or an HTTP date in any of
/// its three forms (`Wed, 21 Oct 2015 07:28:00 GMT`, `Wednesday, 21-Oct-15 07:28:00 GMT`,
/// `Wed Oct 21 07:28:00 2015`). Anything else, or a date in the past, is no delay.
#[must_use]
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<TimeDelta> {
    let value = value.trim();
    if value.is_empty() || value.len() > 64 {
        return None;
    }
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds: i64 = value.parse().ok()?;
        return TimeDelta::try_seconds(seconds);
    }
    // IMF-fixdate (RFC 2822 reads it), then the two obsolete forms RFC 9110 says a recipient
    // must accept: RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
    // (`Sun Nov  6 08:49:37 1994`).
    let at = DateTime::parse_from_rfc2822(value)
        .map(|at| at.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(value, "%A, %d-%b-%y %H:%M:%S GMT")
                .map(|at| at.and_utc())
        })
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y")
                .map(|at| at.and_utc())
        })
        .ok()?;
    let delay = at.signed_duration_since(now);
    (delay > TimeDelta::zero()).then_some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, h, m, s).unwrap()
    }

    #[test]
    fn the_default_schedule_counts_from_the_first_failure() {
        let schedule = RetrySchedule::default();
        let first = at(10, 0, 0);
        let next = |failed, now| schedule.next_attempt(failed, first, now, None).unwrap();
        assert_eq!(next(1, first), Some(at(10, 1, 0)));
        assert_eq!(next(2, at(10, 1, 0)), Some(at(10, 5, 0)));
        assert_eq!(next(3, at(10, 5, 0)), Some(at(10, 15, 0)));
        assert_eq!(next(7, at(12, 0, 0)), Some(at(14, 0, 0)));
        assert_eq!(next(8, at(14, 0, 0)), None, "8 attempts, then failed");
        // A late attempt shifts the round: no sooner than the schedule's step after it (5 m
        // - 1 m).
        assert_eq!(next(2, at(10, 7, 0)), Some(at(10, 11, 0)));
    }

    #[test]
    fn retry_after_pushes_back_within_bounds() {
        let schedule = RetrySchedule::default();
        let first = at(10, 0, 0);
        let ten_minutes = Some(TimeDelta::minutes(10));
        let next = |failed, now, after| schedule.next_attempt(failed, first, now, after).unwrap();
        assert_eq!(next(1, first, ten_minutes), Some(at(10, 10, 0)));
        // Sooner than the schedule: the schedule wins.
        assert_eq!(
            next(1, first, Some(TimeDelta::seconds(5))),
            Some(at(10, 1, 0))
        );
        // A day is capped at four hours.
        assert_eq!(next(1, first, Some(TimeDelta::days(1))), Some(at(14, 0, 0)));
        // And the rest of the round keeps its shape after it: 4, 10, 15 ... minutes apart.
        assert_eq!(next(2, at(14, 0, 0), None), Some(at(14, 4, 0)));
        assert_eq!(next(3, at(14, 4, 0), None), Some(at(14, 14, 0)));
        // Past the end of time: an error, not the end of the schedule.
        let end = DateTime::<Utc>::MAX_UTC;
        assert!(schedule.next_attempt(1, end, end, None).is_err());
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 20, 0).unwrap();
        assert_eq!(parse_retry_after("120", now), Some(TimeDelta::minutes(2)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(TimeDelta::minutes(8))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            None
        );
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now),
            Some(TimeDelta::minutes(8))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:00 2015", now),
            Some(TimeDelta::minutes(8))
        );
        assert_eq!(
            parse_retry_after("Wed Oct  7 07:28:00 2015", now),
            None,
            "a date in the past"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("99999999999999999999", now), None);
    }

    #[test]
    fn schedules_are_checked() {
        assert!(RetrySchedule::new(vec![TimeDelta::minutes(5), TimeDelta::minutes(1)]).is_err());
        assert!(RetrySchedule::new(vec![TimeDelta::zero()]).is_err());
        assert!(RetrySchedule::new(vec![TimeDelta::days(8)]).is_err());
        assert!(RetrySchedule::new(Vec::new()).is_ok());
    }
}
