//! Wire formats shared by event payloads: instants and currencies as Commet sends them.

/// Instants as ISO 8601 UTC with a `Z`: milliseconds (`2026-03-25T14:30:00.000Z`, what
/// JavaScript's `toISOString` writes), or microseconds (or nanoseconds) when the instant has
/// them, so that every instant read back writes the same way: what commet writes, and any
/// instant a receiver parsed from a payload, round-trips exactly.
pub mod time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Format an instant.
    #[must_use]
    pub fn format(instant: &DateTime<Utc>) -> String {
        let nanos = instant.timestamp_subsec_nanos();
        let precision = if nanos % 1_000_000 == 0 {
            SecondsFormat::Millis
        } else if nanos % 1_000 == 0 {
            SecondsFormat::Micros
        } else {
            SecondsFormat::Nanos
        };
        instant.to_rfc3339_opts(precision, true)
    }

    /// Parse an RFC 3339 instant (any offset, converted to UTC).
    pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|instant| instant.with_timezone(&Utc))
    }

    /// `#[serde(with = "time")]`.
    pub fn serialize<S: Serializer>(
        instant: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format(instant))
    }

    /// `#[serde(with = "time")]`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<DateTime<Utc>>`: `null` when absent.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        /// `#[serde(with = "time::option")]`.
        pub fn serialize<S: Serializer>(
            instant: &Option<DateTime<Utc>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match instant {
                Some(instant) => serializer.collect_str(&super::format(instant)),
                None => serializer.serialize_none(),
            }
        }

        /// `#[serde(with = "time::option")]`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)?
                .map(|text| super::parse(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// Currencies as lower-case ISO codes (`usd`), as Commet sends them.
pub mod currency {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::money::Currency;

    /// `#[serde(with = "currency")]`.
    pub fn serialize<S: Serializer>(currency: &Currency, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&currency.code().to_ascii_lowercase())
    }

    /// `#[serde(with = "currency")]`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Currency, D::Error> {
        Currency::deserialize(deserializer)
    }
}
