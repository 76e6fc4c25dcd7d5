//! The transition table: the one function every status change goes through.
//!
//! [`transition`] maps `(current status, trigger)` to the next status and the exact events that
//! accompany the change, or to [`IllegalTransition`]. It matches exhaustively over triggers and
//! over statuses (no `_ =>` arm), so a new status or trigger forces every row to be revisited.
//! The table rendered in the [`subscription`](crate::subscription) docs is produced from this
//! function, and a test keeps the two identical.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SubscriptionStatus;
use crate::event::EventKind;

/// What moves a subscription: one variant per row of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Create with a paid price: a checkout link is issued.
    CreatePaid,
    /// Create as a draft, to be submitted later.
    CreateDraft,
    /// Create with a free price: active at once.
    CreateFree,
    /// Offer a draft to the customer: a checkout link is issued.
    Submit,
    /// Checkout completed and the first charge was paid.
    CheckoutPaid,
    /// Checkout completed for a price with a trial: the payment method is saved.
    CheckoutTrial,
    /// Checkout was not completed within its time to live.
    CheckoutExpired,
    /// Three days before the trial ends.
    TrialReminder,
    /// The trial ended and the first charge was paid.
    TrialEndPaid,
    /// The trial ended and the first charge failed (or there was no payment method).
    TrialEndFailed,
    /// The plan was changed during the trial: the trial converts to a paid period now.
    TrialConverted,
    /// The period ended and the renewal was paid.
    RenewalPaid,
    /// The period ended and the renewal failed.
    RenewalFailed,
    /// A dunning retry failed and another is scheduled (or awaits a new payment method).
    RetryFailed,
    /// A retry (scheduled, manual or after a new payment method) was paid.
    PaymentRecovered,
    /// The last retry failed, and the exhaustion policy cancels.
    DunningExhausted,
    /// The last retry failed, and the exhaustion policy keeps the subscription past due.
    DunningExhaustedKeptPastDue,
    /// Cancel at the end of the current period (or trial).
    ScheduleCancellation,
    /// Revoke a scheduled cancellation before it takes effect.
    RevokeCancellation,
    /// The period (or trial) ended with a cancellation scheduled.
    ScheduledCancellationTakesEffect,
    /// Cancel now.
    CancelNow,
    /// Pause: no renewals, no access.
    Pause,
    /// Resume a paused subscription: a new period starts now.
    Resume,
    /// Reactivate a canceled subscription: a new period starts now.
    Reactivate,
    /// Upgrade: immediate, with proration; the period resets to now.
    Upgrade,
    /// Downgrade: scheduled for the end of the period.
    ScheduleDowngrade,
    /// Revoke a scheduled plan change.
    RevokePlanChange,
    /// The period ended with a plan change scheduled: it takes effect before the renewal.
    ScheduledPlanChangeTakesEffect,
    /// An administrator sets the status directly (the override table decides).
    Override(SubscriptionStatus),
}

impl Trigger {
    /// Every trigger, including one override per target status.
    #[must_use]
    pub fn all() -> Vec<Trigger> {
        let mut all = vec![
            Trigger::CreatePaid,
            Trigger::CreateDraft,
            Trigger::CreateFree,
            Trigger::Submit,
            Trigger::CheckoutPaid,
            Trigger::CheckoutTrial,
            Trigger::CheckoutExpired,
            Trigger::TrialReminder,
            Trigger::TrialEndPaid,
            Trigger::TrialEndFailed,
            Trigger::TrialConverted,
            Trigger::RenewalPaid,
            Trigger::RenewalFailed,
            Trigger::RetryFailed,
            Trigger::PaymentRecovered,
            Trigger::DunningExhausted,
            Trigger::DunningExhaustedKeptPastDue,
            Trigger::ScheduleCancellation,
            Trigger::RevokeCancellation,
            Trigger::ScheduledCancellationTakesEffect,
            Trigger::CancelNow,
            Trigger::Pause,
            Trigger::Resume,
            Trigger::Reactivate,
            Trigger::Upgrade,
            Trigger::ScheduleDowngrade,
            Trigger::RevokePlanChange,
            Trigger::ScheduledPlanChangeTakesEffect,
        ];
        all.extend(SubscriptionStatus::ALL.map(Trigger::Override));
        all
    }

    /// The snake-case name, e.g. `schedule_cancellation`; overrides print as `override(active)`.
    #[must_use]
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        let name = match self {
            Trigger::CreatePaid => "create_paid",
            Trigger::CreateDraft => "create_draft",
            Trigger::CreateFree => "create_free",
            Trigger::Submit => "submit",
            Trigger::CheckoutPaid => "checkout_paid",
            Trigger::CheckoutTrial => "checkout_trial",
            Trigger::CheckoutExpired => "checkout_expired",
            Trigger::TrialReminder => "trial_reminder",
            Trigger::TrialEndPaid => "trial_end_paid",
            Trigger::TrialEndFailed => "trial_end_failed",
            Trigger::TrialConverted => "trial_converted",
            Trigger::RenewalPaid => "renewal_paid",
            Trigger::RenewalFailed => "renewal_failed",
            Trigger::RetryFailed => "retry_failed",
            Trigger::PaymentRecovered => "payment_recovered",
            Trigger::DunningExhausted => "dunning_exhausted",
            Trigger::DunningExhaustedKeptPastDue => "dunning_exhausted_kept_past_due",
            Trigger::ScheduleCancellation => "schedule_cancellation",
            Trigger::RevokeCancellation => "revoke_cancellation",
            Trigger::ScheduledCancellationTakesEffect => "scheduled_cancellation_takes_effect",
            Trigger::CancelNow => "cancel_now",
            Trigger::Pause => "pause",
            Trigger::Resume => "resume",
            Trigger::Reactivate => "reactivate",
            Trigger::Upgrade => "upgrade",
            Trigger::ScheduleDowngrade => "schedule_downgrade",
            Trigger::RevokePlanChange => "revoke_plan_change",
            Trigger::ScheduledPlanChangeTakesEffect => "scheduled_plan_change_takes_effect",
            Trigger::Override(to) => return format!("override({to})").into(),
        };
        name.into()
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A trigger the table does not allow from the current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{trigger} is not allowed from {}", .from.map_or("(none)", SubscriptionStatus::as_str))]
pub struct IllegalTransition {
    /// The status the subscription was in (`None` before it exists).
    pub from: Option<SubscriptionStatus>,
    /// What was attempted.
    pub trigger: Trigger,
}

/// An allowed row of the table: where the trigger leads, and the events it emits, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The status after the transition.
    pub to: SubscriptionStatus,
    /// The events the transition emits, in order. A cancellation or an override that voids open
    /// invoices also emits one `invoice.voided` per voided invoice, after these.
    pub events: &'static [EventKind],
}

/// The transition table.
///
/// `from` is `None` for the creation triggers. Returns the row, or [`IllegalTransition`] if the
/// table has no row for `(from, trigger)`.
#[allow(clippy::too_many_lines)] // the table itself: one arm per trigger, every status listed
pub fn transition(
    from: Option<SubscriptionStatus>,
    trigger: Trigger,
) -> Result<Transition, IllegalTransition> {
    use EventKind as E;
    use SubscriptionStatus::{Active, Canceled, Draft, PastDue, Paused, PendingPayment, Trialing};

    let illegal = Err(IllegalTransition { from, trigger });
    let to = |to, events| Ok(Transition { to, events });

    match trigger {
        Trigger::CreatePaid => match from {
            None => to(PendingPayment, &[E::SubscriptionCreated, E::CheckoutReady]),
            Some(Draft | PendingPayment | Trialing | Active | PastDue | Paused | Canceled) => {
                illegal
            }
        },
        Trigger::CreateDraft => match from {
            None => to(Draft, &[E::SubscriptionCreated]),
            Some(Draft | PendingPayment | Trialing | Active | PastDue | Paused | Canceled) => {
                illegal
            }
        },
        Trigger::CreateFree => match from {
            None => to(Active, &[E::SubscriptionCreated, E::SubscriptionActivated]),
            Some(Draft | PendingPayment | Trialing | Active | PastDue | Paused | Canceled) => {
                illegal
            }
        },
        Trigger::Submit => match from {
            Some(Draft) => to(PendingPayment, &[E::CheckoutReady]),
            None | Some(PendingPayment | Trialing | Active | PastDue | Paused | Canceled) => {
                illegal
            }
        },
        Trigger::CheckoutPaid => match from {
            Some(PendingPayment) => to(
                Active,
                &[
                    E::InvoiceCreated,
                    E::PaymentReceived,
                    E::SubscriptionActivated,
                ],
            ),
            None | Some(Draft | Trialing | Active | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::CheckoutTrial => match from {
            Some(PendingPayment) => to(Trialing, &[E::TrialStarted]),
            None | Some(Draft | Trialing | Active | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::CheckoutExpired => match from {
            Some(PendingPayment) => to(Canceled, &[E::SubscriptionCanceled]),
            None | Some(Draft | Trialing | Active | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::TrialReminder => match from {
            Some(Trialing) => to(Trialing, &[E::TrialWillEnd]),
            None | Some(Draft | PendingPayment | Active | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::TrialEndPaid => match from {
            Some(Trialing) => to(
                Active,
                &[E::TrialExpired, E::InvoiceCreated, E::PaymentReceived],
            ),
            None | Some(Draft | PendingPayment | Active | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::TrialEndFailed => match from {
            Some(Trialing) => to(
                PastDue,
                &[
                    E::TrialExpired,
                    E::InvoiceCreated,
                    E::PaymentFailed,
                    E::SubscriptionPaymentFailed,
                    E::SubscriptionPastDue,
                ],
            ),
            None | Some(Draft | PendingPayment | Active | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::TrialConverted => match from {
            Some(Trialing) => to(
                Active,
                &[
                    E::TrialConverted,
                    E::SubscriptionPlanChanged,
                    E::InvoiceCreated,
                    E::PaymentReceived,
                ],
            ),
            None | Some(Draft | PendingPayment | Active | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::RenewalPaid => match from {
            Some(Active) => to(Active, &[E::InvoiceCreated, E::PaymentReceived]),
            None | Some(Draft | PendingPayment | Trialing | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::RenewalFailed => match from {
            Some(Active) => to(
                PastDue,
                &[
                    E::InvoiceCreated,
                    E::PaymentFailed,
                    E::SubscriptionPaymentFailed,
                    E::SubscriptionPastDue,
                ],
            ),
            None | Some(Draft | PendingPayment | Trialing | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::RetryFailed => match from {
            Some(PastDue) => to(PastDue, &[E::PaymentFailed, E::SubscriptionPaymentFailed]),
            None | Some(Draft | PendingPayment | Trialing | Active | Paused | Canceled) => illegal,
        },
        Trigger::PaymentRecovered => match from {
            Some(PastDue) => to(Active, &[E::PaymentRecovered, E::PaymentReceived]),
            None | Some(Draft | PendingPayment | Trialing | Active | Paused | Canceled) => illegal,
        },
        Trigger::DunningExhausted => match from {
            Some(PastDue) => to(Canceled, &[E::PaymentRetryFailed, E::SubscriptionCanceled]),
            None | Some(Draft | PendingPayment | Trialing | Active | Paused | Canceled) => illegal,
        },
        Trigger::DunningExhaustedKeptPastDue => match from {
            Some(PastDue) => to(PastDue, &[E::PaymentRetryFailed]),
            None | Some(Draft | PendingPayment | Trialing | Active | Paused | Canceled) => illegal,
        },
        Trigger::ScheduleCancellation => match from {
            Some(status @ (Active | Trialing)) => to(
                status,
                &[E::SubscriptionCancellationScheduled, E::SubscriptionUpdated],
            ),
            None | Some(Draft | PendingPayment | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::RevokeCancellation => match from {
            Some(status @ (Active | Trialing)) => to(status, &[E::SubscriptionCancellationRevoked]),
            None | Some(Draft | PendingPayment | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::ScheduledCancellationTakesEffect => match from {
            Some(Active | Trialing) => to(Canceled, &[E::SubscriptionCanceled]),
            None | Some(Draft | PendingPayment | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::CancelNow => match from {
            Some(Draft | PendingPayment | Trialing | Active | PastDue | Paused) => {
                to(Canceled, &[E::SubscriptionCanceled])
            }
            None | Some(Canceled) => illegal,
        },
        Trigger::Pause => match from {
            Some(Active) => to(Paused, &[E::SubscriptionUpdated]),
            None | Some(Draft | PendingPayment | Trialing | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::Resume => match from {
            Some(Paused) => to(
                Active,
                &[
                    E::SubscriptionUpdated,
                    E::InvoiceCreated,
                    E::PaymentReceived,
                ],
            ),
            None | Some(Draft | PendingPayment | Trialing | Active | PastDue | Canceled) => illegal,
        },
        Trigger::Reactivate => match from {
            Some(Canceled) => to(
                Active,
                &[
                    E::SubscriptionReactivated,
                    E::InvoiceCreated,
                    E::PaymentReceived,
                ],
            ),
            None | Some(Draft | PendingPayment | Trialing | Active | PastDue | Paused) => illegal,
        },
        Trigger::Upgrade => match from {
            Some(Active) => to(
                Active,
                &[
                    E::SubscriptionPlanChanged,
                    E::InvoiceCreated,
                    E::PaymentReceived,
                ],
            ),
            None | Some(Draft | PendingPayment | Trialing | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::ScheduleDowngrade => match from {
            Some(Active) => to(Active, &[E::SubscriptionPlanChangeScheduled]),
            None | Some(Draft | PendingPayment | Trialing | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::RevokePlanChange => match from {
            Some(Active) => to(Active, &[E::SubscriptionPlanChangeRevoked]),
            None | Some(Draft | PendingPayment | Trialing | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::ScheduledPlanChangeTakesEffect => match from {
            Some(Active) => to(Active, &[E::SubscriptionPlanChanged]),
            None | Some(Draft | PendingPayment | Trialing | PastDue | Paused | Canceled) => illegal,
        },
        Trigger::Override(target) => match from {
            Some(current) if override_allowed(current, target) => {
                to(target, override_events(current, target))
            }
            None
            | Some(Draft | PendingPayment | Trialing | Active | PastDue | Paused | Canceled) => {
                illegal
            }
        },
    }
}

/// The admin override table: which status an administrator may set from which.
///
/// | from | allowed targets |
/// |---|---|
/// | `draft` | `active`, `canceled` |
/// | `pending_payment` | `active`, `canceled` |
/// | `trialing` | `active`, `canceled` |
/// | `active` | `paused`, `canceled` |
/// | `past_due` | `active`, `canceled` |
/// | `paused` | `active`, `canceled` |
/// | `canceled` | `active` |
///
/// Activating starts a fresh period now when the subscription has none to continue (a draft, a
/// pending checkout, a canceled or paused one), ends a trial early without charging, and forgives
/// a past-due one (its open invoice voided or marked paid out of band, as the caller chooses).
/// Setting `trialing` or `past_due` by hand is not allowed: both need data (a trial end, a failed
/// invoice) that only the real flows produce.
#[must_use]
pub fn override_allowed(from: SubscriptionStatus, to: SubscriptionStatus) -> bool {
    use SubscriptionStatus::{Active, Canceled, Draft, PastDue, Paused, PendingPayment, Trialing};
    match from {
        Draft | PendingPayment | Trialing | PastDue | Paused => matches!(to, Active | Canceled),
        Active => matches!(to, Paused | Canceled),
        Canceled => matches!(to, Active),
    }
}

/// The events of an allowed override: always `subscription.updated` (with the previous status,
/// the actor and the reason), then the lifecycle event the same change would emit in the normal
/// flow, so a receiver that provisions on `subscription.activated` or revokes on
/// `subscription.canceled` sees overrides too.
fn override_events(from: SubscriptionStatus, to: SubscriptionStatus) -> &'static [EventKind] {
    use EventKind as E;
    use SubscriptionStatus::{Active, Canceled, Draft, PastDue, Paused, PendingPayment, Trialing};
    match (from, to) {
        (Draft | PendingPayment, Active) => &[E::SubscriptionUpdated, E::SubscriptionActivated],
        (Canceled, Active) => &[E::SubscriptionUpdated, E::SubscriptionReactivated],
        (_, Canceled) => &[E::SubscriptionUpdated, E::SubscriptionCanceled],
        (Trialing | PastDue | Paused | Active, Active)
        | (_, Draft | PendingPayment | Trialing | PastDue | Paused) => &[E::SubscriptionUpdated],
    }
}

/// The transition table as markdown, one row per allowed `(from, trigger)`, as it appears in
/// the [`subscription`](crate::subscription) docs.
#[must_use]
pub fn table_markdown() -> String {
    let froms = std::iter::once(None).chain(SubscriptionStatus::ALL.map(Some));
    let mut lines = vec![
        "| from | trigger | to | events |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ];
    for trigger in Trigger::all() {
        for from in froms.clone() {
            if let Ok(row) = transition(from, trigger) {
                let events: Vec<String> = row.events.iter().map(|e| format!("`{e}`")).collect();
                lines.push(format!(
                    "| {} | `{trigger}` | `{}` | {} |",
                    from.map_or("(none)".to_owned(), |f| format!("`{f}`")),
                    row.to,
                    events.join(", ")
                ));
            }
        }
    }
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriptionStatus::{Active, Canceled, Draft, PastDue, Paused, PendingPayment, Trialing};

    #[test]
    fn the_table_in_the_docs_is_the_table_in_the_code() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/subscription/transitions.md"
        );
        let generated = table_markdown();
        if std::env::var_os("COMMET_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let documented = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            documented, generated,
            "transitions.md is stale: rerun with COMMET_BLESS=1 and review the diff"
        );
    }

    #[test]
    fn every_trigger_has_at_least_one_row_and_overrides_follow_their_table() {
        let froms: Vec<Option<SubscriptionStatus>> = std::iter::once(None)
            .chain(SubscriptionStatus::ALL.map(Some))
            .collect();
        for trigger in Trigger::all() {
            let rows = froms
                .iter()
                .filter(|&&from| transition(from, trigger).is_ok())
                .count();
            match trigger {
                Trigger::Override(Draft | PendingPayment | Trialing | PastDue) => {
                    assert_eq!(rows, 0);
                }
                _ => assert!(rows > 0, "{trigger} has no row"),
            }
        }
        for from in SubscriptionStatus::ALL {
            for to in SubscriptionStatus::ALL {
                let row = transition(Some(from), Trigger::Override(to));
                assert_eq!(row.is_ok(), override_allowed(from, to), "{from} -> {to}");
                if let Ok(row) = row {
                    assert_eq!(row.to, to);
                    assert_eq!(row.events.first(), Some(&EventKind::SubscriptionUpdated));
                    assert_eq!(
                        row.events.contains(&EventKind::SubscriptionCanceled),
                        to == Canceled
                    );
                }
            }
        }
    }

    #[test]
    fn refused_rows_name_what_was_attempted() {
        let err = transition(Some(Canceled), Trigger::Pause).unwrap_err();
        assert_eq!(
            err,
            IllegalTransition {
                from: Some(Canceled),
                trigger: Trigger::Pause
            }
        );
        assert_eq!(err.to_string(), "pause is not allowed from canceled");
        assert_eq!(
            transition(None, Trigger::Submit).unwrap_err().to_string(),
            "submit is not allowed from (none)"
        );
    }

    #[test]
    fn canceled_is_left_only_by_reactivate_or_the_override() {
        for trigger in Trigger::all() {
            if let Ok(row) = transition(Some(Canceled), trigger) {
                assert!(
                    matches!(trigger, Trigger::Reactivate | Trigger::Override(Active)),
                    "{trigger} leaves canceled"
                );
                assert_ne!(row.to, Canceled);
            }
        }
        assert_eq!(
            transition(Some(Paused), Trigger::CancelNow).map(|row| row.to),
            Ok(Canceled)
        );
    }
}
