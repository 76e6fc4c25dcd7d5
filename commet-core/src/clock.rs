//! Time: the only place that reads the wall clock.
//!
//! Everything in commet that needs "now" asks a [`Clock`]. Production uses [`SystemClock`];
//! tests use [`TestClock`], which moves only when told to, so a test can walk a subscription
//! through a year in milliseconds and see exactly the timeline a real year would produce.
//!
//! Instants are UTC and have microsecond precision: both clocks truncate to whole
//! microseconds, which is what every store keeps, so an instant read back from a store is equal
//! to the one written.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant, in UTC, truncated to microseconds.
    fn now(&self) -> DateTime<Utc>;

    /// Move the clock to `instant`: a [`TestClock`] moves (forward only); the wall clock
    /// cannot be moved and answers [`ClockError::NotSettable`]. This is what lets an engine
    /// play deadlines in time order on the clock it was built with, and only on that one.
    fn move_to(&self, instant: DateTime<Utc>) -> Result<(), ClockError>;
}

/// Truncate an instant to whole microseconds, the precision commet keeps.
#[must_use]
pub fn truncate_to_micros(instant: DateTime<Utc>) -> DateTime<Utc> {
    // Truncation to a unit that divides a second cannot fail for in-range instants.
    instant
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(instant)
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }

    fn move_to(&self, _instant: DateTime<Utc>) -> Result<(), ClockError> {
        Err(ClockError::NotSettable)
    }
}

/// A clock that moves only when told to. Clones share one instant.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use commet_core::clock::{Clock, TestClock};
///
/// let clock = TestClock::new(Utc.with_ymd_and_hms(2024, 1, 31, 9, 0, 0).unwrap());
/// let engine_view = clock.clone();
/// clock.advance(TimeDelta::days(30))?;
/// assert_eq!(engine_view.now(), Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap());
/// assert!(clock.set(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()).is_err());
/// # Ok::<(), commet_core::clock::ClockError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TestClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

/// Why a [`TestClock`] refused to move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    /// Time only moves forward; deadlines already processed cannot be replayed.
    #[error("the clock cannot move backwards from {current} to {requested}")]
    Backwards {
        /// The clock's instant.
        current: DateTime<Utc>,
        /// The earlier instant that was asked for.
        requested: DateTime<Utc>,
    },
    /// The clock is the wall clock ([`SystemClock`]): only a [`TestClock`] can be moved.
    #[error("the system clock cannot be moved: build the engine with a TestClock to play time")]
    NotSettable,
    /// Advancing would leave the range of representable instants.
    #[error("advancing the clock by {by} overflows")]
    Overflow {
        /// The requested step.
        by: TimeDelta,
    },
}

impl TestClock {
    /// A clock standing at `start` (truncated to microseconds).
    #[must_use]
    pub fn new(start: DateTime<Utc>) -> TestClock {
        TestClock {
            now: Arc::new(Mutex::new(truncate_to_micros(start))),
        }
    }

    /// Move to `instant`. Setting the current instant again is allowed; an earlier one is
    /// [`ClockError::Backwards`].
    pub fn set(&self, instant: DateTime<Utc>) -> Result<(), ClockError> {
        let instant = truncate_to_micros(instant);
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if instant < *now {
            return Err(ClockError::Backwards {
                current: *now,
                requested: instant,
            });
        }
        *now = instant;
        Ok(())
    }

    /// Move forward by `by`; a negative step is [`ClockError::Backwards`].
    pub fn advance(&self, by: TimeDelta) -> Result<(), ClockError> {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        let target = now
            .checked_add_signed(by)
            .ok_or(ClockError::Overflow { by })?;
        let target = truncate_to_micros(target);
        if target < *now {
            return Err(ClockError::Backwards {
                current: *now,
                requested: target,
            });
        }
        *now = target;
        Ok(())
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn move_to(&self, instant: DateTime<Utc>) -> Result<(), ClockError> {
        self.set(instant)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn jan_1() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn clones_share_the_instant() {
        let clock = TestClock::new(jan_1());
        let other = clock.clone();
        clock.advance(TimeDelta::hours(1)).unwrap();
        assert_eq!(other.now(), jan_1() + TimeDelta::hours(1));
    }

    #[test]
    fn moving_backwards_is_a_typed_error_and_changes_nothing() {
        let clock = TestClock::new(jan_1());
        assert_eq!(
            clock.advance(TimeDelta::seconds(-1)),
            Err(ClockError::Backwards {
                current: jan_1(),
                requested: jan_1() - TimeDelta::seconds(1)
            })
        );
        assert!(clock.set(jan_1() - TimeDelta::days(1)).is_err());
        assert_eq!(clock.now(), jan_1());
        clock.set(jan_1()).unwrap();
    }

    #[test]
    fn only_a_test_clock_can_be_moved_through_the_trait() {
        let clock: &dyn Clock = &TestClock::new(jan_1());
        clock.move_to(jan_1() + TimeDelta::days(1)).unwrap();
        assert_eq!(clock.now(), jan_1() + TimeDelta::days(1));
        assert_eq!(SystemClock.move_to(jan_1()), Err(ClockError::NotSettable));
    }

    #[test]
    fn overflow_is_a_typed_error() {
        let clock = TestClock::new(jan_1());
        assert!(matches!(
            clock.advance(TimeDelta::MAX),
            Err(ClockError::Overflow { .. })
        ));
    }

    #[test]
    fn instants_are_kept_to_the_microsecond() {
        let precise = jan_1() + TimeDelta::nanoseconds(1_234_567);
        let clock = TestClock::new(precise);
        assert_eq!(clock.now(), jan_1() + TimeDelta::microseconds(1_234));
        let system = SystemClock.now();
        assert_eq!(system.timestamp_subsec_nanos() % 1_000, 0);
    }
}
