//! Typed, prefixed, time-sortable ids: `cus_01h455vb4pex5vsknk084sn02q`.
//!
//! Each kind of object has its own id type, so a customer id cannot be passed where an invoice
//! id is expected. An id is a UUID v7 (its first 48 bits are the creation time in
//! milliseconds) written in the [TypeID](https://github.com/jetify-com/typeid) format: a
//! prefix, `_`, and 26 lower-case Crockford base32 characters. Text order is creation order.
//!
//! | type | prefix |
//! |---|---|
//! | [`CustomerId`] | `cus` |
//! | [`SubscriptionId`] | `sub` |
//! | [`InvoiceId`] | `inv` |
//! | [`EventId`] | `evt` |
//! | [`PlanId`] | `pln` |
//! | [`PriceId`] | `pri` |
//! | [`EndpointId`] | `we` |
//! | [`DeliveryId`] | `whd` |
//!
//! New kinds are added with [`define_id!`](crate::define_id). Fresh ids come from an
//! [`IdGenerator`], which takes the instant from the engine's clock.

mod base32;
mod generator;

pub use generator::IdGenerator;

/// An id type made by [`define_id!`](crate::define_id).
pub trait TypedId:
    Copy + Eq + Ord + std::hash::Hash + std::fmt::Display + std::str::FromStr<Err = IdError>
{
    /// The prefix before the `_`, such as `"cus"`.
    const PREFIX: &'static str;

    /// Wrap a UUID.
    fn from_uuid(uuid: uuid::Uuid) -> Self;

    /// The UUID inside.
    fn uuid(&self) -> uuid::Uuid;
}

/// Why a text is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The text has another kind's prefix (an invoice id where a customer id was expected), or
    /// none.
    #[error("expected an id starting with \"{expected}_\", got {found:?}")]
    WrongPrefix {
        /// The prefix this id type has.
        expected: &'static str,
        /// The text that was given (cut to 64 characters).
        found: String,
    },
    /// The prefix is right but the rest is not 26 base32 characters.
    #[error("malformed {prefix} id {input:?}: {reason}")]
    Malformed {
        /// The prefix this id type has.
        prefix: &'static str,
        /// The text that was given (cut to 64 characters).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

#[doc(hidden)]
pub mod __private {
    //! Helpers for [`define_id!`](crate::define_id); not a public API.
    pub use serde;
    pub use uuid::Uuid;

    use super::IdError;

    /// Write `{prefix}_{suffix}` in one piece, without allocating: ids are formatted for
    /// every row written, and one write lets `to_string` allocate once, at the final size.
    pub fn write(f: &mut std::fmt::Formatter<'_>, prefix: &str, uuid: Uuid) -> std::fmt::Result {
        use std::io::Write as _;

        const CAPACITY: usize = 63 + 1 + super::base32::LEN; // A TypeID prefix has at most 63.
        fn text(bytes: &[u8]) -> Result<&str, std::fmt::Error> {
            std::str::from_utf8(bytes).map_err(|_| std::fmt::Error)
        }

        let suffix = super::base32::encode(uuid.as_u128());
        let mut buffer = [0_u8; CAPACITY];
        let mut rest: &mut [u8] = &mut buffer;
        let fits = rest
            .write_all(prefix.as_bytes())
            .and_then(|()| rest.write_all(b"_"))
            .and_then(|()| rest.write_all(&suffix))
            .is_ok();
        let written = CAPACITY - rest.len();
        match buffer.get(..written) {
            Some(id) if fits => f.write_str(text(id)?),
            // A longer prefix than TypeID allows: write the parts one by one.
            _ => {
                f.write_str(prefix)?;
                f.write_str("_")?;
                f.write_str(text(&suffix)?)
            }
        }
    }

    pub fn parse(prefix: &'static str, text: &str) -> Result<Uuid, IdError> {
        let cut = crate::validation::excerpt;
        let suffix = text
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .ok_or_else(|| IdError::WrongPrefix {
                expected: prefix,
                found: cut(text),
            })?;
        super::base32::decode(suffix)
            .map(Uuid::from_u128)
            .map_err(|reason| IdError::Malformed {
                prefix,
                input: cut(text),
                reason,
            })
    }
}

/// Define a typed id with its prefix.
///
/// ```
/// commet_core::define_id! {
///     /// A coupon, `cpn_...`.
///     pub struct CouponId = "cpn";
/// }
/// let id: CouponId = "cpn_01h455vb4pex5vsknk084sn02q".parse()?;
/// assert_eq!(id.to_string(), "cpn_01h455vb4pex5vsknk084sn02q");
/// assert!("cus_01h455vb4pex5vsknk084sn02q".parse::<CouponId>().is_err());
/// # Ok::<(), commet_core::ids::IdError>(())
/// ```
#[macro_export]
macro_rules! define_id {
    ($(#[$meta:meta])* $vis:vis struct $name:ident = $prefix:literal;) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis struct $name($crate::ids::__private::Uuid);

        impl $crate::ids::TypedId for $name {
            const PREFIX: &'static str = $prefix;

            fn from_uuid(uuid: $crate::ids::__private::Uuid) -> Self {
                $name(uuid)
            }

            fn uuid(&self) -> $crate::ids::__private::Uuid {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::ids::__private::write(f, $prefix, self.0)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(self, f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ids::IdError;

            fn from_str(text: &str) -> ::std::result::Result<Self, Self::Err> {
                $crate::ids::__private::parse($prefix, text).map($name)
            }
        }

        impl $crate::ids::__private::serde::Serialize for $name {
            fn serialize<S: $crate::ids::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> $crate::ids::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::ids::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err($crate::ids::__private::serde::de::Error::custom)
            }
        }
    };
}

define_id! {
    /// A customer, `cus_...`.
    pub struct CustomerId = "cus";
}
define_id! {
    /// A subscription, `sub_...`.
    pub struct SubscriptionId = "sub";
}
define_id! {
    /// An invoice, `inv_...`.
    pub struct InvoiceId = "inv";
}
define_id! {
    /// An event, `evt_...`; stable across webhook retries.
    pub struct EventId = "evt";
}
define_id! {
    /// A plan, `pln_...`.
    pub struct PlanId = "pln";
}
define_id! {
    /// A price of a plan, `pri_...`.
    pub struct PriceId = "pri";
}
define_id! {
    /// A webhook endpoint, `we_...`.
    pub struct EndpointId = "we";
}
define_id! {
    /// One event's delivery to one webhook endpoint, `whd_...`.
    pub struct DeliveryId = "whd";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_with_their_prefix() {
        let text = "sub_01h455vb4pex5vsknk084sn02q";
        let id: SubscriptionId = text.parse().unwrap();
        assert_eq!(id.to_string(), text);
        assert_eq!(format!("{id:?}"), text);
        assert_eq!(
            id.uuid().to_string(),
            "01890a5d-ac96-774b-bcce-b302099a8057"
        );
    }

    #[test]
    fn a_wrong_prefix_is_named() {
        assert_eq!(
            "inv_01h455vb4pex5vsknk084sn02q".parse::<CustomerId>(),
            Err(IdError::WrongPrefix {
                expected: "cus",
                found: "inv_01h455vb4pex5vsknk084sn02q".into()
            })
        );
        assert!(matches!(
            "cus01h455vb4pex5vsknk084sn02q".parse::<CustomerId>(),
            Err(IdError::WrongPrefix { .. })
        ));
        assert!(matches!(
            "cust_01h455vb4pex5vsknk084sn02q".parse::<CustomerId>(),
            Err(IdError::WrongPrefix { .. })
        ));
    }

    #[test]
    fn a_malformed_body_is_named() {
        for text in [
            "cus_",
            "cus_01h455vb4pex5vsknk084sn02",
            "cus_01H455VB4PEX5VSKNK084SN02Q",
            "cus_91h455vb4pex5vsknk084sn02q",
            "cus_01h455vb4pex5vsknk084sn0é",
        ] {
            assert!(
                matches!(
                    text.parse::<CustomerId>(),
                    Err(IdError::Malformed { prefix: "cus", .. })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn serde_is_the_string() {
        let id: PriceId = "pri_01h455vb4pex5vsknk084sn02q".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"pri_01h455vb4pex5vsknk084sn02q\"");
        assert_eq!(serde_json::from_str::<PriceId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<PlanId>(&json).is_err());
    }
}
