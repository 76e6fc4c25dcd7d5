//! One event's delivery to one endpoint: its status (through its own transition table), when
//! it is due, and the log of every attempt.
//!
//! | from | trigger | to |
//! |---|---|---|
//! | `pending` | `delivered` (a 2xx) | `succeeded` |
//! | `pending` | `exhausted` (the schedule is used up), `gone` (a 410), `endpoint_off` (disabled or deleted) | `failed` |
//! | `pending`, `succeeded`, `failed` | `redeliver` (by hand) | `pending` |
//!
//! A failed attempt that the schedule retries leaves the delivery `pending`, due at the next
//! retry. An attempt is logged when it is claimed (before the request leaves) and completed
//! with what came back, so an attempt whose worker died is in the log too: the next claim
//! completes it as [`AttemptOutcome::Interrupted`].

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::schedule::{RetrySchedule, parse_retry_after};
use crate::event::EventKind;
use crate::ids::{DeliveryId, EndpointId, EventId};

/// The most of a response body the log keeps, in bytes.
pub const MAX_LOGGED_BODY: usize = 1024;

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx came back.
    Succeeded,
    /// Given up (see [`Delivery::failure`]).
    Failed,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// What moves a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryTrigger {
    /// The receiver answered 2xx.
    Delivered,
    /// The last retry failed.
    Exhausted,
    /// The receiver answered `410 Gone`.
    Gone,
    /// The endpoint was disabled or deleted before the delivery was due.
    EndpointOff,
    /// Sent again by hand.
    Redeliver,
}

/// A trigger the table does not allow from where the delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from:?} delivery cannot take {trigger:?}")]
pub struct IllegalDeliveryTransition {
    /// Where it was.
    pub from: DeliveryStatus,
    /// What was attempted.
    pub trigger: DeliveryTrigger,
}

/// The delivery's transition table (see the [module docs](self)).
pub fn transition(
    from: DeliveryStatus,
    trigger: DeliveryTrigger,
) -> Result<DeliveryStatus, IllegalDeliveryTransition> {
    use DeliveryStatus::{Failed, Pending, Succeeded};
    match (from, trigger) {
        (Pending, DeliveryTrigger::Delivered) => Ok(Succeeded),
        (
            Pending,
            DeliveryTrigger::Exhausted | DeliveryTrigger::Gone | DeliveryTrigger::EndpointOff,
        ) => Ok(Failed),
        (_, DeliveryTrigger::Redeliver) => Ok(Pending),
        _ => Err(IllegalDeliveryTransition { from, trigger }),
    }
}

/// Why a delivery failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryFailure {
    /// Every retry of the schedule failed.
    Exhausted,
    /// The receiver answered `410 Gone` (and the endpoint was disabled).
    Gone,
    /// The endpoint was disabled or deleted.
    EndpointOff,
}

/// Who started an attempt's round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptTrigger {
    /// The schedule.
    Scheduled,
    /// A redelivery by hand.
    Manual,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver answered.
    Response {
        /// The HTTP status.
        status: u16,
        /// The first KiB of the response body (lossy UTF-8).
        body: String,
    },
    /// No answer: timeout, connection refused, a forbidden address ...
    NoResponse {
        /// The kind of failure (`timeout`, `connect` ...).
        error: String,
        /// What happened.
        message: String,
    },
    /// The worker that sent it stopped before it logged an answer.
    Interrupted,
}

impl AttemptOutcome {
    /// A 2xx response.
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, AttemptOutcome::Response { status, .. } if (200..300).contains(status))
    }
}

/// One attempt, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt of the delivery, counting across rounds.
    pub number: u32,
    /// Scheduled, or by hand.
    pub trigger: AttemptTrigger,
    /// When it was claimed and sent: the timestamp it was signed with.
    pub started_at: DateTime<Utc>,
    /// When its outcome was logged (`None` while in flight).
    pub finished_at: Option<DateTime<Utc>>,
    /// From sending to the end of the answer, in milliseconds.
    pub latency_ms: Option<u64>,
    /// What it came to (`None` while in flight).
    pub outcome: Option<AttemptOutcome>,
}

/// What came back from sending an attempt, as the engine hands it to [`Delivery::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The outcome (not [`AttemptOutcome::Interrupted`]).
    pub outcome: AttemptOutcome,
    /// The receiver's `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// How long it took.
    pub latency: std::time::Duration,
}

/// What a completed attempt means for its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSignal {
    /// Delivered: the endpoint's failure streak ends.
    Succeeded,
    /// Failed; `gone` if the receiver answered `410`.
    Failed {
        /// The receiver answered `410 Gone`.
        gone: bool,
    },
}

/// A delivery as stored, field by field: what a store writes and reads back through
/// [`Delivery::from_record`], which checks that the fields agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The id.
    pub id: DeliveryId,
    /// The endpoint.
    pub endpoint: EndpointId,
    /// The event, stable across attempts.
    pub event: EventId,
    /// The event's position in the outbox.
    pub event_seq: u64,
    /// The event's kind.
    pub event_kind: EventKind,
    /// Where it is.
    pub status: DeliveryStatus,
    /// When it is due while pending (and, while an attempt is in flight, when its claim runs
    /// out); `None` otherwise.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why it failed, once failed.
    pub failure: Option<DeliveryFailure>,
    /// The number of the first attempt of the current round (a redelivery starts a round,
    /// with the whole schedule).
    pub round_start: u32,
    /// Who started the current round: its first attempt is logged with this trigger, its
    /// retries as scheduled.
    pub round_trigger: AttemptTrigger,
    /// Every attempt, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The stored version (0: never stored).
    pub version: u64,
}

/// One event's delivery to one endpoint (at most one per (endpoint, event)): its status, which
/// changes only through the [transition table](self), when it is due, and its attempt log.
/// The fields are read through its methods; a store rebuilds it with
/// [`Delivery::from_record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "DeliveryRecord", try_from = "DeliveryRecord")]
pub struct Delivery {
    id: DeliveryId,
    endpoint: EndpointId,
    event: EventId,
    event_seq: u64,
    event_kind: EventKind,
    status: DeliveryStatus,
    next_attempt_at: Option<DateTime<Utc>>,
    failure: Option<DeliveryFailure>,
    round_start: u32,
    round_trigger: AttemptTrigger,
    attempts: Vec<DeliveryAttempt>,
    created_at: DateTime<Utc>,
    version: u64,
}

/// A delivery operation that does not fit its state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The status table refuses it.
    #[error(transparent)]
    Illegal(#[from] IllegalDeliveryTransition),
    /// Only a pending delivery is sent: redeliver it first.
    #[error("a {0:?} delivery is not sent again unless it is redelivered")]
    NotPending(DeliveryStatus),
    /// Not due yet.
    #[error("the delivery is not due until {0}")]
    NotDue(DateTime<Utc>),
    /// The attempt completed is not the one in flight.
    #[error("attempt {0} of the delivery is not in flight")]
    NotInFlight(u32),
    /// What came back from an attempt is an answer or none; `interrupted` is only logged by a
    /// claim.
    #[error("an attempt is completed with what came back, not as interrupted")]
    NotAnAnswer,
    /// An instant past the end of time.
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
}

impl Delivery {
    /// A new delivery of event `event` (number `seq`, of `kind`) to `endpoint`, due at `now`.
    #[must_use]
    pub fn new(
        id: DeliveryId,
        endpoint: EndpointId,
        event: EventId,
        seq: u64,
        kind: EventKind,
        now: DateTime<Utc>,
    ) -> Delivery {
        Delivery {
            id,
            endpoint,
            event,
            event_seq: seq,
            event_kind: kind,
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now),
            failure: None,
            round_start: 1,
            round_trigger: AttemptTrigger::Scheduled,
            attempts: Vec::new(),
            created_at: now,
            version: 0,
        }
    }

    fn apply(&mut self, trigger: DeliveryTrigger) -> Result<(), DeliveryError> {
        self.status = transition(self.status, trigger)?;
        Ok(())
    }

    /// Is it pending and due at `now`?
    #[must_use]
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == DeliveryStatus::Pending && self.next_attempt_at.is_some_and(|at| at <= now)
    }

    /// The attempt in flight, if one is.
    #[must_use]
    pub fn in_flight(&self) -> Option<&DeliveryAttempt> {
        self.attempts
            .last()
            .filter(|attempt| attempt.outcome.is_none())
    }

    /// Claim the next attempt at `now`, for `lease` (after which another worker may claim it
    /// again): log it as in flight and return its number. An attempt whose worker stopped is
    /// completed first as [`AttemptOutcome::Interrupted`].
    pub fn claim(&mut self, now: DateTime<Utc>, lease: TimeDelta) -> Result<u32, DeliveryError> {
        if self.status != DeliveryStatus::Pending {
            return Err(DeliveryError::NotPending(self.status));
        }
        if let Some(at) = self.next_attempt_at
            && at > now
        {
            return Err(DeliveryError::NotDue(at));
        }
        if lease <= TimeDelta::zero() {
            return Err(DeliveryError::OutOfRange("lease"));
        }
        // Checked before anything changes: a refused claim leaves the delivery as it was.
        let lease_end = now
            .checked_add_signed(lease)
            .ok_or(DeliveryError::OutOfRange("next_attempt_at"))?;
        if let Some(abandoned) = self.attempts.last_mut()
            && abandoned.outcome.is_none()
        {
            abandoned.outcome = Some(AttemptOutcome::Interrupted);
            abandoned.finished_at = Some(now);
        }
        let number = self.next_number();
        let trigger = if number == self.round_start {
            self.round_trigger
        } else {
            AttemptTrigger::Scheduled
        };
        self.attempts.push(DeliveryAttempt {
            number,
            trigger,
            started_at: now,
            finished_at: None,
            latency_ms: None,
            outcome: None,
        });
        self.next_attempt_at = Some(lease_end);
        Ok(number)
    }

    fn next_number(&self) -> u32 {
        self.attempts
            .last()
            .map_or(1, |attempt| attempt.number.saturating_add(1))
    }

    /// Log what attempt `number` came to at `now`, and decide what follows: succeeded on a
    /// 2xx; failed on a 410 or once `schedule` is used up; otherwise pending until the next
    /// retry (at once if a redelivery by hand was asked for while it was in flight). Returns
    /// what it means for the endpoint. `result` is what came back: an answer or none, never
    /// [`AttemptOutcome::Interrupted`] (which only a claim logs).
    pub fn complete(
        &mut self,
        number: u32,
        result: AttemptResult,
        now: DateTime<Utc>,
        schedule: &RetrySchedule,
    ) -> Result<EndpointSignal, DeliveryError> {
        let Some(attempt) = self
            .attempts
            .last_mut()
            .filter(|attempt| attempt.number == number && attempt.outcome.is_none())
        else {
            return Err(DeliveryError::NotInFlight(number));
        };
        if result.outcome == AttemptOutcome::Interrupted {
            return Err(DeliveryError::NotAnAnswer);
        }
        let gone = matches!(result.outcome, AttemptOutcome::Response { status: 410, .. });
        let success = result.outcome.is_success();
        attempt.outcome = Some(truncated(result.outcome));
        attempt.finished_at = Some(now);
        attempt.latency_ms = Some(u64::try_from(result.latency.as_millis()).unwrap_or(u64::MAX));
        if success {
            self.apply(DeliveryTrigger::Delivered)?;
            self.next_attempt_at = None;
            return Ok(EndpointSignal::Succeeded);
        }
        if gone {
            self.fail(DeliveryTrigger::Gone, DeliveryFailure::Gone)?;
            return Ok(EndpointSignal::Failed { gone: true });
        }
        if number < self.round_start {
            // Redelivered by hand while this attempt was in flight: the new round starts now.
            self.next_attempt_at = Some(now);
            return Ok(EndpointSignal::Failed { gone: false });
        }
        let round: Vec<&DeliveryAttempt> = self
            .attempts
            .iter()
            .filter(|attempt| attempt.number >= self.round_start)
            .collect();
        let first_failure = round
            .first()
            .and_then(|attempt| attempt.finished_at)
            .unwrap_or(now);
        let retry_after = result
            .retry_after
            .as_deref()
            .and_then(|value| parse_retry_after(value, now));
        match schedule
            .next_attempt(round.len(), first_failure, now, retry_after)
            .map_err(|_| DeliveryError::OutOfRange("next_attempt_at"))?
        {
            Some(at) => self.next_attempt_at = Some(at),
            None => self.fail(DeliveryTrigger::Exhausted, DeliveryFailure::Exhausted)?,
        }
        Ok(EndpointSignal::Failed { gone: false })
    }

    /// Give up without sending: the endpoint is disabled or deleted.
    pub fn cancel_for_endpoint(&mut self) -> Result<(), DeliveryError> {
        if let Some(abandoned) = self.attempts.last_mut()
            && abandoned.outcome.is_none()
        {
            abandoned.outcome = Some(AttemptOutcome::Interrupted);
            abandoned.finished_at = abandoned.finished_at.or(Some(abandoned.started_at));
        }
        self.fail(DeliveryTrigger::EndpointOff, DeliveryFailure::EndpointOff)
    }

    fn fail(
        &mut self,
        trigger: DeliveryTrigger,
        failure: DeliveryFailure,
    ) -> Result<(), DeliveryError> {
        self.apply(trigger)?;
        self.failure = Some(failure);
        self.next_attempt_at = None;
        Ok(())
    }

    /// Send it again by hand at `now`: a new round with the whole schedule, the same event id,
    /// a fresh timestamp and fresh signatures. An attempt in flight is left to finish (its
    /// claim is kept); the new round starts with the attempt after it, at once if it fails
    /// (if it succeeds, the delivery is delivered).
    pub fn redeliver(&mut self, now: DateTime<Utc>) -> Result<(), DeliveryError> {
        self.apply(DeliveryTrigger::Redeliver)?;
        self.failure = None;
        self.round_start = self.next_number();
        self.round_trigger = AttemptTrigger::Manual;
        if self.in_flight().is_none() {
            self.next_attempt_at = Some(now);
        }
        Ok(())
    }
}

impl Delivery {
    /// A delivery from its stored record, checked: attempts numbered 1, 2, 3 ... with only
    /// the last one in flight (and then pending); a round that starts within the log; a due
    /// time exactly while pending; a failure reason exactly when failed.
    pub fn from_record(record: DeliveryRecord) -> Result<Delivery, crate::InvalidField> {
        use crate::InvalidField;
        let count = record.attempts.len();
        if !record
            .attempts
            .iter()
            .zip(1_u32..)
            .all(|(attempt, number)| attempt.number == number)
        {
            return Err(InvalidField::new(
                "delivery.attempts",
                "attempts are numbered 1, 2, 3 ... in order",
            ));
        }
        let in_flight = record
            .attempts
            .iter()
            .filter(|attempt| attempt.outcome.is_none())
            .count();
        let last_in_flight = record
            .attempts
            .last()
            .is_some_and(|attempt| attempt.outcome.is_none());
        if in_flight > usize::from(last_in_flight)
            || (last_in_flight && record.status != DeliveryStatus::Pending)
        {
            return Err(InvalidField::new(
                "delivery.attempts",
                "only the last attempt of a pending delivery may be in flight",
            ));
        }
        let next = u32::try_from(count).ok().and_then(|n| n.checked_add(1));
        if record.round_start == 0 || next.is_none_or(|next| record.round_start > next) {
            return Err(InvalidField::new(
                "delivery.round_start",
                "a round starts at an attempt of the log, or the next one",
            ));
        }
        let pending = record.status == DeliveryStatus::Pending;
        if pending != record.next_attempt_at.is_some() {
            return Err(InvalidField::new(
                "delivery.next_attempt_at",
                "a delivery has a next attempt exactly while it is pending",
            ));
        }
        if (record.status == DeliveryStatus::Failed) != record.failure.is_some() {
            return Err(InvalidField::new(
                "delivery.failure",
                "a delivery has a failure reason exactly when it failed",
            ));
        }
        Ok(Delivery {
            id: record.id,
            endpoint: record.endpoint,
            event: record.event,
            event_seq: record.event_seq,
            event_kind: record.event_kind,
            status: record.status,
            next_attempt_at: record.next_attempt_at,
            failure: record.failure,
            round_start: record.round_start,
            round_trigger: record.round_trigger,
            attempts: record.attempts,
            created_at: record.created_at,
            version: record.version,
        })
    }

    /// The stored record.
    #[must_use]
    pub fn to_record(&self) -> DeliveryRecord {
        DeliveryRecord::from(self.clone())
    }

    /// The id.
    #[must_use]
    pub fn id(&self) -> DeliveryId {
        self.id
    }
    /// The endpoint.
    #[must_use]
    pub fn endpoint(&self) -> EndpointId {
        self.endpoint
    }
    /// The event, stable across attempts.
    #[must_use]
    pub fn event(&self) -> EventId {
        self.event
    }
    /// The event's position in the outbox.
    #[must_use]
    pub fn event_seq(&self) -> u64 {
        self.event_seq
    }
    /// The event's kind.
    #[must_use]
    pub fn event_kind(&self) -> EventKind {
        self.event_kind
    }
    /// Where it is.
    #[must_use]
    pub fn status(&self) -> DeliveryStatus {
        self.status
    }
    /// When it is due while pending (while an attempt is in flight, when its claim runs out).
    #[must_use]
    pub fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.next_attempt_at
    }
    /// Why it failed, once failed.
    #[must_use]
    pub fn failure(&self) -> Option<DeliveryFailure> {
        self.failure
    }
    /// The number of the first attempt of the current round.
    #[must_use]
    pub fn round_start(&self) -> u32 {
        self.round_start
    }
    /// Who started the current round.
    #[must_use]
    pub fn round_trigger(&self) -> AttemptTrigger {
        self.round_trigger
    }
    /// Every attempt, oldest first.
    #[must_use]
    pub fn attempts(&self) -> &[DeliveryAttempt] {
        &self.attempts
    }
    /// When it was created.
    #[must_use]
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// The stored version (0: never stored).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Set the version; stores call this after a write.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }
}

impl From<Delivery> for DeliveryRecord {
    fn from(delivery: Delivery) -> DeliveryRecord {
        DeliveryRecord {
            id: delivery.id,
            endpoint: delivery.endpoint,
            event: delivery.event,
            event_seq: delivery.event_seq,
            event_kind: delivery.event_kind,
            status: delivery.status,
            next_attempt_at: delivery.next_attempt_at,
            failure: delivery.failure,
            round_start: delivery.round_start,
            round_trigger: delivery.round_trigger,
            attempts: delivery.attempts,
            created_at: delivery.created_at,
            version: delivery.version,
        }
    }
}

impl TryFrom<DeliveryRecord> for Delivery {
    type Error = crate::InvalidField;

    fn try_from(record: DeliveryRecord) -> Result<Delivery, crate::InvalidField> {
        Delivery::from_record(record)
    }
}

/// An outcome with its texts cut to [`MAX_LOGGED_BODY`] bytes (at a character boundary).
fn truncated(outcome: AttemptOutcome) -> AttemptOutcome {
    fn cut(mut text: String) -> String {
        if text.len() > MAX_LOGGED_BODY {
            let mut end = MAX_LOGGED_BODY;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
    match outcome {
        AttemptOutcome::Response { status, body } => AttemptOutcome::Response {
            status,
            body: cut(body),
        },
        AttemptOutcome::NoResponse { error, message } => AttemptOutcome::NoResponse {
            error: cut(error),
            message: cut(message),
        },
        AttemptOutcome::Interrupted => AttemptOutcome::Interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TypedId;
    use chrono::TimeZone;

    fn record() -> DeliveryRecord {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut delivery = Delivery::new(
            DeliveryId::from_uuid(uuid::Uuid::from_u128(1)),
            EndpointId::from_uuid(uuid::Uuid::from_u128(2)),
            EventId::from_uuid(uuid::Uuid::from_u128(3)),
            1,
            EventKind::CustomerCreated,
            now,
        );
        let number = delivery.claim(now, TimeDelta::minutes(1)).unwrap();
        delivery
            .complete(
                number,
                AttemptResult {
                    outcome: AttemptOutcome::Response {
                        status: 500,
                        body: String::new(),
                    },
                    retry_after: None,
                    latency: std::time::Duration::ZERO,
                },
                now,
                &RetrySchedule::default(),
            )
            .unwrap();
        delivery
            .claim(now + TimeDelta::minutes(1), TimeDelta::minutes(1))
            .unwrap();
        delivery.to_record()
    }

    #[test]
    fn a_record_round_trips_and_inconsistent_ones_are_refused() {
        let good = record();
        assert_eq!(
            Delivery::from_record(good.clone()).unwrap().to_record(),
            good
        );
        let refused = |edit: &dyn Fn(&mut DeliveryRecord)| {
            let mut bad = good.clone();
            edit(&mut bad);
            Delivery::from_record(bad).unwrap_err().field
        };
        assert_eq!(refused(&|r| r.attempts[1].number = 3), "delivery.attempts");
        assert_eq!(
            refused(&|r| r.attempts[0].outcome = None),
            "delivery.attempts"
        );
        assert_eq!(
            refused(&|r| {
                r.status = DeliveryStatus::Succeeded;
                r.next_attempt_at = None;
            }),
            "delivery.attempts",
            "an attempt in flight on a delivery that is not pending"
        );
        assert_eq!(refused(&|r| r.round_start = 0), "delivery.round_start");
        assert_eq!(refused(&|r| r.round_start = 4), "delivery.round_start");
        assert_eq!(
            refused(&|r| r.next_attempt_at = None),
            "delivery.next_attempt_at"
        );
        assert_eq!(
            refused(&|r| r.failure = Some(DeliveryFailure::Gone)),
            "delivery.failure"
        );
    }

    #[test]
    fn the_transition_table() {
        use DeliveryStatus::{Failed, Pending, Succeeded};
        for from in DeliveryStatus::ALL {
            assert_eq!(transition(from, DeliveryTrigger::Redeliver), Ok(Pending));
        }
        assert_eq!(
            transition(Pending, DeliveryTrigger::Delivered),
            Ok(Succeeded)
        );
        for trigger in [
            DeliveryTrigger::Exhausted,
            DeliveryTrigger::Gone,
            DeliveryTrigger::EndpointOff,
        ] {
            assert_eq!(transition(Pending, trigger), Ok(Failed));
            assert!(transition(Succeeded, trigger).is_err());
            assert!(transition(Failed, trigger).is_err());
        }
        assert!(transition(Succeeded, DeliveryTrigger::Delivered).is_err());
    }
}
