//! Dunning: what happens after a payment fails (DESIGN.md section 8).
//!
//! A [`DunningPolicy`] is a retry schedule and an exhaustion policy. Its functions are pure:
//! given what the subscription remembers about the failures so far ([`FailureHistory`]) and the
//! current instant, they answer with a [`DunningStep`]: retry at an instant, wait for a new
//! payment method, or give up.
//!
//! # The rules
//!
//! - **The schedule is fixed by the first failure.** Retry `i` is due at
//!   `first_failed_at + offset[i]` (default: 1, 3, 5 and 7 days). After a failure at `now`, the
//!   next attempt is the first scheduled retry strictly after `now`; if there is none, dunning is
//!   **exhausted**. So the last retry happens exactly at the last offset, and a retry that ran
//!   late or an extra attempt never adds time to the schedule.
//! - **Soft declines** (insufficient funds, a generic decline, an issuer that is down ...) are
//!   retried on the schedule.
//! - **Hard declines** (lost or stolen card, fraud, closed account, invalid number, expired card
//!   ...: see [`HARD_DECLINE_CODES`]) cannot succeed on the same payment method, so nothing is
//!   retried until the method changes: [`DunningStep::WaitForPaymentMethod`]. Exhaustion still
//!   comes at the last scheduled retry, as for soft declines.
//! - **A new payment method** means a retry right away
//!   ([`DunningPolicy::on_new_payment_method`]). If that attempt fails too, the schedule carries
//!   on from where it is ([`DunningPolicy::next_step`] as after any failure).
//! - **Exhaustion** does what [`Exhaustion`] says: cancel the subscription (default) or keep it
//!   `past_due`; mark the invoice `uncollectible` (default) or leave it `outstanding`.
//! - **An empty schedule** is allowed: the first failure exhausts dunning at once (no retries).
//!
//! ```
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use commet_core::dunning::{DeclineClass, DunningPolicy, DunningStep, FailureHistory, classify};
//!
//! let policy = DunningPolicy::default();
//! let first = Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap();
//! let history = FailureHistory {
//!     first_failed_at: first,
//!     failed_attempts: 1,
//!     last_decline: classify("insufficient_funds"),
//! };
//! assert_eq!(
//!     policy.next_step(&history, first),
//!     DunningStep::RetryAt { at: first + TimeDelta::days(1), attempt: 2, last: false }
//! );
//! let stolen = FailureHistory { last_decline: classify("stolen_card"), ..history };
//! assert_eq!(stolen.last_decline, DeclineClass::Hard);
//! assert_eq!(
//!     policy.next_step(&stolen, first),
//!     DunningStep::WaitForPaymentMethod { exhausts_at: first + TimeDelta::days(7) }
//! );
//! ```

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::validation::InvalidField;

/// The most retries a schedule may have.
pub const MAX_RETRIES: usize = 24;
/// The latest a retry may be scheduled after the first failure: 90 days.
pub const MAX_RETRY_OFFSET_DAYS: i64 = 90;

/// Decline codes that no retry of the same payment method can fix, in Stripe's spelling
/// (plus the bank-debit codes `account_closed`, `no_account` and `debit_not_authorized`). Each
/// needs the customer to act: a new card, new details, or a call to the bank that ends in new
/// details.
///
/// `do_not_honor`, `generic_decline`, `call_issuer` and `insufficient_funds` are not here:
/// Stripe documents them as declines "for an unknown reason" or for a temporary condition,
/// which retries later often get past. Any code not listed (including codes this list does not
/// know yet) is soft.
pub const HARD_DECLINE_CODES: &[&str] = &[
    "account_closed",
    "authentication_required",
    "card_not_supported",
    "currency_not_supported",
    "debit_not_authorized",
    "do_not_try_again",
    "expired_card",
    "fraudulent",
    "incorrect_cvc",
    "incorrect_number",
    "incorrect_zip",
    "invalid_account",
    "invalid_cvc",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "invalid_number",
    "lost_card",
    "merchant_blacklist",
    "new_account_information_available",
    "no_account",
    "not_permitted",
    "pickup_card",
    "restricted_card",
    "revocation_of_all_authorizations",
    "revocation_of_authorization",
    "security_violation",
    "service_not_allowed",
    "stolen_card",
    "stop_payment_order",
    "transaction_not_allowed",
];

/// Whether retrying the same payment method can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineClass {
    /// A temporary or unexplained decline: retry on the schedule.
    Soft,
    /// The payment method cannot work: wait for a new one.
    Hard,
}

impl DeclineClass {
    /// `soft` or `hard`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineClass::Soft => "soft",
            DeclineClass::Hard => "hard",
        }
    }
}

impl fmt::Display for DeclineClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of a gateway's decline code: [`Hard`](DeclineClass::Hard) for the codes in
/// [`HARD_DECLINE_CODES`] (compared without surrounding spaces and ignoring ASCII case),
/// [`Soft`](DeclineClass::Soft) for every other code, known or not.
#[must_use]
pub fn classify(code: &str) -> DeclineClass {
    let code = code.trim();
    if HARD_DECLINE_CODES
        .iter()
        .any(|hard| hard.eq_ignore_ascii_case(code))
    {
        DeclineClass::Hard
    } else {
        DeclineClass::Soft
    }
}

/// What happens to the subscription when dunning is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionOnExhaustion {
    /// Cancel it (reason `dunning_exhausted`). The default, as at Commet.
    #[default]
    Cancel,
    /// Leave it `past_due`: access follows the engine's grace policy, and a new payment method
    /// still retries the invoice.
    KeepPastDue,
}

/// What happens to the unpaid invoice when dunning is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceOnExhaustion {
    /// Mark it `uncollectible` (it may still be paid later). The default.
    #[default]
    MarkUncollectible,
    /// Leave it `outstanding`.
    LeaveOutstanding,
}

/// The exhaustion policy: what to do with the subscription and the invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Exhaustion {
    /// Cancel, or keep `past_due`.
    pub subscription: SubscriptionOnExhaustion,
    /// Mark `uncollectible`, or leave `outstanding`.
    pub invoice: InvoiceOnExhaustion,
}

/// What a subscription remembers about the failed payments of its unpaid invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FailureHistory {
    /// When the first attempt failed: the schedule counts from here.
    pub first_failed_at: DateTime<Utc>,
    /// Failed attempts so far, the first included (so at least 1).
    pub failed_attempts: u32,
    /// The class of the last decline.
    pub last_decline: DeclineClass,
}

/// What to do next about an unpaid invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DunningStep {
    /// Charge again at `at`.
    RetryAt {
        /// When to attempt (now, after a new payment method).
        at: DateTime<Utc>,
        /// The number of that attempt (the first charge was attempt 1): the idempotency key of
        /// the charge is derived from (invoice, attempt).
        attempt: u32,
        /// True if no retry is scheduled after this one: if it fails, dunning is exhausted.
        last: bool,
    },
    /// A hard decline: no retry until the payment method changes; dunning is exhausted at
    /// `exhausts_at` (the last scheduled retry) if it has not changed by then.
    WaitForPaymentMethod {
        /// When to give up.
        exhausts_at: DateTime<Utc>,
    },
    /// No attempt is left: apply the exhaustion policy.
    Exhausted(Exhaustion),
}

impl DunningStep {
    /// The instant of the next dunning deadline: the retry, or the exhaustion of a hard decline.
    /// `None` once exhausted.
    #[must_use]
    pub fn due_at(self) -> Option<DateTime<Utc>> {
        match self {
            DunningStep::RetryAt { at, .. } => Some(at),
            DunningStep::WaitForPaymentMethod { exhausts_at } => Some(exhausts_at),
            DunningStep::Exhausted(_) => None,
        }
    }

    /// The next retry, if one is scheduled (what `retryAt` says on the wire).
    #[must_use]
    pub fn retry_at(self) -> Option<DateTime<Utc>> {
        match self {
            DunningStep::RetryAt { at, .. } => Some(at),
            DunningStep::WaitForPaymentMethod { .. } | DunningStep::Exhausted(_) => None,
        }
    }
}

/// A retry schedule and an exhaustion policy.
///
/// ```
/// use chrono::TimeDelta;
/// use commet_core::dunning::{DunningPolicy, Exhaustion, SubscriptionOnExhaustion};
///
/// let default = DunningPolicy::default();
/// assert_eq!(default.retry_offsets(), [1, 3, 5, 7].map(TimeDelta::days));
///
/// let patient = DunningPolicy::new(
///     vec![TimeDelta::days(2), TimeDelta::days(9), TimeDelta::days(21)],
///     Exhaustion { subscription: SubscriptionOnExhaustion::KeepPastDue, ..Exhaustion::default() },
/// )?;
/// assert_eq!(patient.retry_offsets().len(), 3);
/// assert!(DunningPolicy::new(vec![TimeDelta::days(3), TimeDelta::days(1)], Exhaustion::default()).is_err());
/// # Ok::<(), commet_core::InvalidField>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "DunningPolicyRepr", into = "DunningPolicyRepr")]
pub struct DunningPolicy {
    retry_offsets: Vec<TimeDelta>,
    on_exhaustion: Exhaustion,
}

/// The serde form: offsets in whole seconds.
#[derive(Serialize, Deserialize)]
struct DunningPolicyRepr {
    retry_after_seconds: Vec<i64>,
    on_exhaustion: Exhaustion,
}

impl TryFrom<DunningPolicyRepr> for DunningPolicy {
    type Error = InvalidField;

    fn try_from(repr: DunningPolicyRepr) -> Result<Self, Self::Error> {
        let offsets = repr
            .retry_after_seconds
            .iter()
            .enumerate()
            .map(|(index, &seconds)| {
                TimeDelta::try_seconds(seconds).ok_or_else(|| {
                    InvalidField::new(format!("retry_after_seconds[{index}]"), "out of range")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        DunningPolicy::new(offsets, repr.on_exhaustion)
    }
}

impl From<DunningPolicy> for DunningPolicyRepr {
    fn from(policy: DunningPolicy) -> Self {
        DunningPolicyRepr {
            retry_after_seconds: policy
                .retry_offsets
                .iter()
                .map(TimeDelta::num_seconds)
                .collect(),
            on_exhaustion: policy.on_exhaustion,
        }
    }
}

impl Default for DunningPolicy {
    /// Retries 1, 3, 5 and 7 days after the first failure; then cancel the subscription and
    /// mark the invoice uncollectible.
    fn default() -> Self {
        DunningPolicy {
            retry_offsets: [1, 3, 5, 7].map(TimeDelta::days).to_vec(),
            on_exhaustion: Exhaustion::default(),
        }
    }
}

impl DunningPolicy {
    /// A policy retrying at `retry_offsets` after the first failure: whole seconds, positive,
    /// strictly increasing, at most 90 days, at most 24 of them (error field
    /// `retry_after_seconds[i]` or `retry_after_seconds`). An empty schedule exhausts dunning
    /// at the first failure.
    pub fn new(
        retry_offsets: Vec<TimeDelta>,
        on_exhaustion: Exhaustion,
    ) -> Result<DunningPolicy, InvalidField> {
        if retry_offsets.len() > MAX_RETRIES {
            return Err(InvalidField::new(
                "retry_after_seconds",
                format_args!("at most {MAX_RETRIES} retries"),
            ));
        }
        let max = TimeDelta::days(MAX_RETRY_OFFSET_DAYS);
        let mut previous = TimeDelta::zero();
        for (index, &offset) in retry_offsets.iter().enumerate() {
            let field = || format!("retry_after_seconds[{index}]");
            if offset.subsec_nanos() != 0 {
                return Err(InvalidField::new(field(), "must be whole seconds"));
            }
            if offset <= previous {
                return Err(InvalidField::new(
                    field(),
                    "retries must come after the first failure, each after the one before",
                ));
            }
            if offset > max {
                return Err(InvalidField::new(
                    field(),
                    format_args!("must be at most {MAX_RETRY_OFFSET_DAYS} days"),
                ));
            }
            previous = offset;
        }
        Ok(DunningPolicy {
            retry_offsets,
            on_exhaustion,
        })
    }

    /// The retry offsets from the first failure, in increasing order.
    #[must_use]
    pub fn retry_offsets(&self) -> &[TimeDelta] {
        &self.retry_offsets
    }

    /// What happens when the retries run out.
    #[must_use]
    pub fn on_exhaustion(&self) -> Exhaustion {
        self.on_exhaustion
    }

    /// When each retry is due, for a first failure at `first_failed_at`.
    #[must_use]
    pub fn retry_times(&self, first_failed_at: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.retry_offsets
            .iter()
            .map(|&offset| at_offset(first_failed_at, offset))
            .collect()
    }

    /// When dunning is exhausted if no attempt succeeds: the last scheduled retry (the first
    /// failure itself for an empty schedule).
    #[must_use]
    pub fn exhausts_at(&self, first_failed_at: DateTime<Utc>) -> DateTime<Utc> {
        self.retry_offsets
            .last()
            .map_or(first_failed_at, |&offset| {
                at_offset(first_failed_at, offset)
            })
    }

    /// What to do after the failure recorded in `history`, at `now`: the first scheduled retry
    /// strictly after `now` (soft decline), waiting for a new payment method until the last
    /// scheduled retry (hard decline), or exhaustion when no scheduled retry is left. Also the
    /// answer at a [`WaitForPaymentMethod`](DunningStep::WaitForPaymentMethod) deadline.
    #[must_use]
    pub fn next_step(&self, history: &FailureHistory, now: DateTime<Utc>) -> DunningStep {
        let times = self.retry_times(history.first_failed_at);
        let Some(position) = times.iter().position(|&t| t > now) else {
            return DunningStep::Exhausted(self.on_exhaustion);
        };
        match history.last_decline {
            DeclineClass::Hard => DunningStep::WaitForPaymentMethod {
                exhausts_at: self.exhausts_at(history.first_failed_at),
            },
            DeclineClass::Soft => DunningStep::RetryAt {
                at: times.get(position).copied().unwrap_or(now),
                attempt: history.failed_attempts.saturating_add(1),
                last: position + 1 == times.len(),
            },
        }
    }

    /// What a new payment method changes: a retry at `now`, whatever the last decline. It is
    /// the last attempt if no scheduled retry is left after `now` (also after exhaustion, when
    /// the subscription was kept `past_due`).
    #[must_use]
    pub fn on_new_payment_method(
        &self,
        history: &FailureHistory,
        now: DateTime<Utc>,
    ) -> DunningStep {
        let scheduled_after = self
            .retry_times(history.first_failed_at)
            .into_iter()
            .any(|t| t > now);
        DunningStep::RetryAt {
            at: now,
            attempt: history.failed_attempts.saturating_add(1),
            last: !scheduled_after,
        }
    }
}

/// `start + offset`, or the last representable instant if that is beyond it (an offset of at
/// most 90 days overflows only at the end of the calendar, year 262,143).
fn at_offset(start: DateTime<Utc>, offset: TimeDelta) -> DateTime<Utc> {
    start
        .checked_add_signed(offset)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn first() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
    }

    fn history(failed_attempts: u32, last_decline: DeclineClass) -> FailureHistory {
        FailureHistory {
            first_failed_at: first(),
            failed_attempts,
            last_decline,
        }
    }

    fn day(n: i64) -> DateTime<Utc> {
        first() + TimeDelta::days(n)
    }

    #[test]
    fn soft_declines_retry_on_days_1_3_5_7_then_exhaust() {
        let policy = DunningPolicy::default();
        let mut steps = Vec::new();
        let mut now = first();
        for failed in 1..=5 {
            let step = policy.next_step(&history(failed, DeclineClass::Soft), now);
            steps.push(step);
            if let DunningStep::RetryAt { at, .. } = step {
                now = at;
            }
        }
        let retry = |n, attempt, last| DunningStep::RetryAt {
            at: day(n),
            attempt,
            last,
        };
        assert_eq!(
            steps,
            [
                retry(1, 2, false),
                retry(3, 3, false),
                retry(5, 4, false),
                retry(7, 5, true),
                DunningStep::Exhausted(Exhaustion::default()),
            ]
        );
    }

    #[test]
    fn a_hard_decline_waits_for_a_new_method_until_the_last_retry() {
        let policy = DunningPolicy::default();
        let hard = history(1, DeclineClass::Hard);
        assert_eq!(
            policy.next_step(&hard, first()),
            DunningStep::WaitForPaymentMethod {
                exhausts_at: day(7)
            }
        );
        // At the deadline, with no new method, dunning is exhausted.
        assert_eq!(
            policy.next_step(&hard, day(7)),
            DunningStep::Exhausted(Exhaustion::default())
        );
    }

    #[test]
    fn a_new_payment_method_retries_now_and_the_schedule_carries_on() {
        let policy = DunningPolicy::default();
        let now = day(2) + TimeDelta::hours(5);
        assert_eq!(
            policy.on_new_payment_method(&history(2, DeclineClass::Hard), now),
            DunningStep::RetryAt {
                at: now,
                attempt: 3,
                last: false
            }
        );
        // The retry now fails softly: the next scheduled retry is day 3, not day 2 + 1.
        assert_eq!(
            policy.next_step(&history(3, DeclineClass::Soft), now),
            DunningStep::RetryAt {
                at: day(3),
                attempt: 4,
                last: false
            }
        );
        // After the last scheduled retry, a new method still retries, as the last attempt.
        assert_eq!(
            policy.on_new_payment_method(&history(5, DeclineClass::Soft), day(8)),
            DunningStep::RetryAt {
                at: day(8),
                attempt: 6,
                last: true
            }
        );
    }

    #[test]
    fn an_empty_schedule_exhausts_at_the_first_failure() {
        let keep = Exhaustion {
            subscription: SubscriptionOnExhaustion::KeepPastDue,
            invoice: InvoiceOnExhaustion::LeaveOutstanding,
        };
        let policy = DunningPolicy::new(Vec::new(), keep).unwrap();
        assert_eq!(policy.exhausts_at(first()), first());
        for class in [DeclineClass::Soft, DeclineClass::Hard] {
            assert_eq!(
                policy.next_step(&history(1, class), first()),
                DunningStep::Exhausted(keep)
            );
        }
    }

    #[test]
    fn schedules_must_be_positive_increasing_whole_seconds() {
        let field = |offsets: Vec<TimeDelta>| {
            DunningPolicy::new(offsets, Exhaustion::default())
                .unwrap_err()
                .field
        };
        assert_eq!(field(vec![TimeDelta::zero()]), "retry_after_seconds[0]");
        assert_eq!(field(vec![TimeDelta::days(-1)]), "retry_after_seconds[0]");
        assert_eq!(
            field(vec![TimeDelta::days(2), TimeDelta::days(2)]),
            "retry_after_seconds[1]"
        );
        assert_eq!(
            field(vec![TimeDelta::milliseconds(1500)]),
            "retry_after_seconds[0]"
        );
        assert_eq!(field(vec![TimeDelta::days(91)]), "retry_after_seconds[0]");
        let many = (1..=25).map(TimeDelta::hours).collect();
        assert_eq!(field(many), "retry_after_seconds");
    }

    #[test]
    fn hard_and_soft_codes_are_classified_with_unknown_codes_soft() {
        for code in [
            "lost_card",
            "stolen_card",
            "fraudulent",
            "account_closed",
            "invalid_number",
            "expired_card",
            " PICKUP_CARD ",
        ] {
            assert_eq!(classify(code), DeclineClass::Hard, "{code}");
        }
        for code in [
            "insufficient_funds",
            "do_not_honor",
            "generic_decline",
            "try_again_later",
            "processing_error",
            "a_code_from_the_future",
            "",
        ] {
            assert_eq!(classify(code), DeclineClass::Soft, "{code}");
        }
        let mut sorted = HARD_DECLINE_CODES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, HARD_DECLINE_CODES, "kept sorted and unique");
    }

    #[test]
    fn the_policy_round_trips_through_json_in_seconds() {
        let json = serde_json::to_string(&DunningPolicy::default()).unwrap();
        assert_eq!(
            json,
            r#"{"retry_after_seconds":[86400,259200,432000,604800],"on_exhaustion":{"subscription":"cancel","invoice":"mark_uncollectible"}}"#
        );
        assert_eq!(
            serde_json::from_str::<DunningPolicy>(&json).unwrap(),
            DunningPolicy::default()
        );
        assert!(
            serde_json::from_str::<DunningPolicy>(
                r#"{"retry_after_seconds":[5,1],"on_exhaustion":{"subscription":"cancel","invoice":"mark_uncollectible"}}"#
            )
            .is_err()
        );
        let step = DunningStep::WaitForPaymentMethod {
            exhausts_at: first(),
        };
        assert_eq!(
            serde_json::to_string(&step).unwrap(),
            r#"{"step":"wait_for_payment_method","exhausts_at":"2024-03-01T09:00:00Z"}"#
        );
    }
}
