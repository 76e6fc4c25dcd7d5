//! The statuses a subscription can be in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a subscription is in its lifecycle, named as Commet names it.
///
/// | status | meaning | access |
/// |---|---|---|
/// | `draft` | prepared, not yet offered to the customer | denied |
/// | `pending_payment` | waiting for the customer to complete checkout | denied |
/// | `trialing` | in a free trial | granted |
/// | `active` | paid up for the current period | granted |
/// | `past_due` | a charge failed; dunning retries are running | granted under the default grace policy |
/// | `paused` | no renewals, no access, until resumed | denied |
/// | `canceled` | ended | denied |
///
/// A scheduled cancellation or plan change is an attribute of an `active` or `trialing`
/// subscription, not a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Prepared, not yet offered to the customer.
    Draft,
    /// Waiting for the customer to complete checkout.
    PendingPayment,
    /// In a free trial.
    Trialing,
    /// Paid up for the current period.
    Active,
    /// A charge failed; dunning retries are running.
    PastDue,
    /// No renewals and no access until resumed.
    Paused,
    /// Ended.
    Canceled,
}

impl SubscriptionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SubscriptionStatus; 7] = [
        SubscriptionStatus::Draft,
        SubscriptionStatus::PendingPayment,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Paused,
        SubscriptionStatus::Canceled,
    ];

    /// The wire name, e.g. `pending_payment`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Draft => "draft",
            SubscriptionStatus::PendingPayment => "pending_payment",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Canceled => "canceled",
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SubscriptionStatus {
    type Err = crate::InvalidField;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SubscriptionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                crate::InvalidField::new(
                    "status",
                    format_args!(
                        "{:?} is not a subscription status",
                        crate::validation::excerpt(text)
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_exactly_as_commet_names_them() {
        let names: Vec<String> = SubscriptionStatus::ALL
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "\"draft\"",
                "\"pending_payment\"",
                "\"trialing\"",
                "\"active\"",
                "\"past_due\"",
                "\"paused\"",
                "\"canceled\""
            ]
        );
        for status in SubscriptionStatus::ALL {
            assert_eq!(status.as_str().parse::<SubscriptionStatus>(), Ok(status));
        }
        assert_eq!(
            "cancelled".parse::<SubscriptionStatus>().unwrap_err().field,
            "status"
        );
    }
}
