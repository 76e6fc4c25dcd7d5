//! Fresh ids: UUID v7 stamped with the engine's clock, monotonic within a generator.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use uuid::{Builder, Uuid};

use super::TypedId;

/// Makes new ids. One generator per engine; cheap to share behind a reference.
///
/// Each id is a UUID v7 whose timestamp is the instant the caller passes in (the engine's
/// [`Clock`](crate::clock::Clock), never the wall clock), so ids sort by creation time, also
/// under a test clock that simulates a year. Within one millisecond a 42-bit counter keeps ids
/// strictly increasing; the remaining 32 bits are random. If the instant goes backwards, the
/// generator keeps its last millisecond, so ids never go backwards either.
///
/// [`IdGenerator::seeded`] gives the same ids for the same seed and instants, which makes two
/// runs of a scenario (say on two stores) comparable byte for byte.
#[derive(Debug)]
pub struct IdGenerator {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last_millis: u64,
    counter: u64,
    random: SplitMix64,
}

const COUNTER_BITS: u32 = 42;
const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;

impl IdGenerator {
    /// A generator seeded from the operating system's randomness.
    ///
    /// Should the OS have none to give, it falls back to a fixed seed: ids stay unique within
    /// the process, and only ids made by two processes in the same millisecond could collide.
    #[must_use]
    pub fn random() -> IdGenerator {
        IdGenerator::seeded(getrandom::u64().unwrap_or(0x9e37_79b9_7f4a_7c15))
    }

    /// A deterministic generator: the same seed and instants give the same ids.
    #[must_use]
    pub fn seeded(seed: u64) -> IdGenerator {
        IdGenerator {
            state: Mutex::new(State {
                last_millis: 0,
                counter: 0,
                random: SplitMix64(seed),
            }),
        }
    }

    /// A new id of type `I`, created at `now`.
    pub fn next<I: TypedId>(&self, now: DateTime<Utc>) -> I {
        I::from_uuid(self.next_uuid(now))
    }

    fn next_uuid(&self, now: DateTime<Utc>) -> Uuid {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Instants before 1970 clamp to the epoch; UUID v7 has 48 bits of milliseconds.
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0) & ((1 << 48) - 1);
        if millis > state.last_millis {
            state.last_millis = millis;
            // A random start leaves room to count up and makes ids hard to guess.
            state.counter = state.random.next() & (COUNTER_MAX >> 1);
        } else if state.counter < COUNTER_MAX {
            state.counter += 1;
        } else {
            state.last_millis += 1;
            state.counter = 0;
        }
        let counter = state.counter;
        let random = state.random.next().to_be_bytes();
        // Bytes 0-5: rand_a (12 bits) and the top 30 bits of rand_b hold the counter, leaving
        // room for the version nibble (top of byte 0) and the variant bits (top of byte 2),
        // which the builder sets. Bytes 6-9: random.
        let packed =
            ((counter >> 30) << 32) | (((counter >> 24) & 0x3f) << 24) | (counter & 0xff_ffff);
        let mut bytes = [0u8; 10];
        bytes[..6].copy_from_slice(&packed.to_be_bytes()[2..]);
        bytes[6..].copy_from_slice(&random[..4]);
        Builder::from_unix_timestamp_millis(state.last_millis, &bytes).into_uuid()
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        IdGenerator::random()
    }
}

/// `SplitMix64`: a tiny, well-known mixing generator. Ids are not secrets; tokens and webhook
/// secrets use the OS generator directly.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ids::CustomerId;

    fn at(millis: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(millis).unwrap()
    }

    #[test]
    fn ids_are_v7_stamped_with_the_given_instant() {
        let ids = IdGenerator::seeded(7);
        let id: CustomerId = ids.next(at(1_700_000_000_123));
        assert_eq!(id.uuid().get_version_num(), 7);
        let (secs, nanos) = id.uuid().get_timestamp().unwrap().to_unix();
        assert_eq!((secs, nanos), (1_700_000_000, 123_000_000));
    }

    #[test]
    fn ids_increase_within_a_millisecond_and_when_time_goes_back() {
        let ids = IdGenerator::random();
        let mut previous: CustomerId = ids.next(at(5_000));
        for millis in [5_000, 5_000, 4_000, 5_000, 6_000, 6_000, 1] {
            let next: CustomerId = ids.next(at(millis));
            assert!(next > previous, "{next} should sort after {previous}");
            assert!(next.to_string() > previous.to_string());
            previous = next;
        }
    }

    #[test]
    fn a_seed_repeats_its_ids() {
        let (a, b) = (IdGenerator::seeded(42), IdGenerator::seeded(42));
        for millis in [1, 1, 2, 3] {
            assert_eq!(
                a.next::<CustomerId>(at(millis)),
                b.next::<CustomerId>(at(millis))
            );
        }
        let other: CustomerId = IdGenerator::seeded(43).next(at(1));
        assert_ne!(other, IdGenerator::seeded(42).next(at(1)));
    }
}
