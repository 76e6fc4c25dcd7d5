//! The dates an invoice gains on its way through the lifecycle, kept with the statuses that
//! have them: a draft has no issue date, only a paid invoice has a payment date, and so on. The
//! status itself is derived from this, so the two cannot disagree.

use chrono::{DateTime, Utc};

use super::InvoiceStatus;
use crate::validation::InvalidField;

/// When an invoice was finalized, and when payment is due (never before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Issued {
    issued_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
}

impl Issued {
    /// Issued and due at `instant`.
    pub(super) fn at(instant: DateTime<Utc>) -> Issued {
        Issued {
            issued_at: instant,
            due_at: instant,
        }
    }

    /// Issued at `issued_at`, due at `due_at`; the error names `due_at` if it comes first.
    pub(super) fn new(
        issued_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> Result<Issued, InvalidField> {
        if due_at < issued_at {
            return Err(InvalidField::new(
                "due_at",
                format_args!("{due_at} is before the issue date {issued_at}"),
            ));
        }
        Ok(Issued { issued_at, due_at })
    }
}

/// The status of an invoice with the dates that status carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifecycle {
    Draft,
    Outstanding {
        issued: Issued,
    },
    Uncollectible {
        issued: Issued,
        marked_uncollectible_at: DateTime<Utc>,
    },
    Paid {
        issued: Issued,
        paid_at: DateTime<Utc>,
        /// Set if it was written off before being paid.
        marked_uncollectible_at: Option<DateTime<Utc>>,
    },
    Void {
        issued: Issued,
        voided_at: DateTime<Utc>,
        /// Set if it was written off before being voided.
        marked_uncollectible_at: Option<DateTime<Utc>>,
    },
}

/// The dates as optional columns, as a store keeps them.
#[allow(clippy::struct_field_names)] // the names of the record's fields and a store's columns
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Dates {
    pub(super) issued_at: Option<DateTime<Utc>>,
    pub(super) due_at: Option<DateTime<Utc>>,
    pub(super) paid_at: Option<DateTime<Utc>>,
    pub(super) voided_at: Option<DateTime<Utc>>,
    pub(super) marked_uncollectible_at: Option<DateTime<Utc>>,
}

impl Lifecycle {
    pub(super) fn status(self) -> InvoiceStatus {
        match self {
            Lifecycle::Draft => InvoiceStatus::Draft,
            Lifecycle::Outstanding { .. } => InvoiceStatus::Outstanding,
            Lifecycle::Uncollectible { .. } => InvoiceStatus::Uncollectible,
            Lifecycle::Paid { .. } => InvoiceStatus::Paid,
            Lifecycle::Void { .. } => InvoiceStatus::Void,
        }
    }

    fn issued(self) -> Option<Issued> {
        match self {
            Lifecycle::Draft => None,
            Lifecycle::Outstanding { issued }
            | Lifecycle::Uncollectible { issued, .. }
            | Lifecycle::Paid { issued, .. }
            | Lifecycle::Void { issued, .. } => Some(issued),
        }
    }

    fn marked_uncollectible_at(self) -> Option<DateTime<Utc>> {
        match self {
            Lifecycle::Draft | Lifecycle::Outstanding { .. } => None,
            Lifecycle::Uncollectible {
                marked_uncollectible_at,
                ..
            } => Some(marked_uncollectible_at),
            Lifecycle::Paid {
                marked_uncollectible_at,
                ..
            }
            | Lifecycle::Void {
                marked_uncollectible_at,
                ..
            } => marked_uncollectible_at,
        }
    }

    /// The lifecycle once moved to `to`, the status [`transition`](super::transition) decided,
    /// at `now`. Dates already set are kept; `issue` is used when this move issues the invoice.
    pub(super) fn moved(self, to: InvoiceStatus, now: DateTime<Utc>, issue: Issued) -> Lifecycle {
        let issued = self.issued().unwrap_or(issue);
        let marked_uncollectible_at = self.marked_uncollectible_at();
        match to {
            InvoiceStatus::Draft => Lifecycle::Draft,
            InvoiceStatus::Outstanding => Lifecycle::Outstanding { issued },
            InvoiceStatus::Uncollectible => Lifecycle::Uncollectible {
                issued,
                marked_uncollectible_at: now,
            },
            InvoiceStatus::Paid => Lifecycle::Paid {
                issued,
                paid_at: now,
                marked_uncollectible_at,
            },
            InvoiceStatus::Void => Lifecycle::Void {
                issued,
                voided_at: now,
                marked_uncollectible_at,
            },
        }
    }

    /// All the dates as optional columns.
    pub(super) fn dates(self) -> Dates {
        let issued = self.issued();
        let (paid_at, voided_at) = match self {
            Lifecycle::Paid { paid_at, .. } => (Some(paid_at), None),
            Lifecycle::Void { voided_at, .. } => (None, Some(voided_at)),
            Lifecycle::Draft | Lifecycle::Outstanding { .. } | Lifecycle::Uncollectible { .. } => {
                (None, None)
            }
        };
        Dates {
            issued_at: issued.map(|i| i.issued_at),
            due_at: issued.map(|i| i.due_at),
            paid_at,
            voided_at,
            marked_uncollectible_at: self.marked_uncollectible_at(),
        }
    }

    /// The lifecycle of a stored invoice: each date present exactly when `status` has it (the
    /// error names the first that is not).
    pub(super) fn from_dates(
        status: InvoiceStatus,
        dates: Dates,
    ) -> Result<Lifecycle, InvalidField> {
        let required = |field: &str, date: Option<DateTime<Utc>>| {
            date.ok_or_else(|| {
                InvalidField::new(field, format_args!("an invoice that is {status} has one"))
            })
        };
        let absent = |field: &str, date: Option<DateTime<Utc>>| match date {
            None => Ok(()),
            Some(_) => Err(InvalidField::new(
                field,
                format_args!("an invoice that is {status} has none"),
            )),
        };
        let issued = || {
            Issued::new(
                required("issued_at", dates.issued_at)?,
                required("due_at", dates.due_at)?,
            )
        };
        match status {
            InvoiceStatus::Draft => {
                absent("issued_at", dates.issued_at)?;
                absent("due_at", dates.due_at)?;
                absent("paid_at", dates.paid_at)?;
                absent("voided_at", dates.voided_at)?;
                absent("marked_uncollectible_at", dates.marked_uncollectible_at)?;
                Ok(Lifecycle::Draft)
            }
            InvoiceStatus::Outstanding => {
                let issued = issued()?;
                absent("paid_at", dates.paid_at)?;
                absent("voided_at", dates.voided_at)?;
                absent("marked_uncollectible_at", dates.marked_uncollectible_at)?;
                Ok(Lifecycle::Outstanding { issued })
            }
            InvoiceStatus::Uncollectible => {
                let issued = issued()?;
                absent("paid_at", dates.paid_at)?;
                absent("voided_at", dates.voided_at)?;
                Ok(Lifecycle::Uncollectible {
                    issued,
                    marked_uncollectible_at: required(
                        "marked_uncollectible_at",
                        dates.marked_uncollectible_at,
                    )?,
                })
            }
            InvoiceStatus::Paid => {
                let issued = issued()?;
                absent("voided_at", dates.voided_at)?;
                Ok(Lifecycle::Paid {
                    issued,
                    paid_at: required("paid_at", dates.paid_at)?,
                    marked_uncollectible_at: dates.marked_uncollectible_at,
                })
            }
            InvoiceStatus::Void => {
                let issued = issued()?;
                absent("paid_at", dates.paid_at)?;
                Ok(Lifecycle::Void {
                    issued,
                    voided_at: required("voided_at", dates.voided_at)?,
                    marked_uncollectible_at: dates.marked_uncollectible_at,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn day(n: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + TimeDelta::days(n)
    }

    #[test]
    fn every_lifecycle_round_trips_through_its_dates() {
        let issued = Issued::new(day(1), day(15)).unwrap();
        let marked = Lifecycle::Uncollectible {
            issued,
            marked_uncollectible_at: day(20),
        };
        for lifecycle in [
            Lifecycle::Draft,
            Lifecycle::Outstanding { issued },
            marked,
            marked.moved(InvoiceStatus::Paid, day(25), issued),
            marked.moved(InvoiceStatus::Void, day(25), issued),
            Lifecycle::Outstanding { issued }.moved(InvoiceStatus::Paid, day(2), issued),
        ] {
            assert_eq!(
                Lifecycle::from_dates(lifecycle.status(), lifecycle.dates()),
                Ok(lifecycle)
            );
        }
    }

    #[test]
    fn moving_keeps_the_dates_already_set() {
        let issued = Issued::new(day(1), day(15)).unwrap();
        let other = Issued::new(day(9), day(9)).unwrap();
        let paid = Lifecycle::Uncollectible {
            issued,
            marked_uncollectible_at: day(20),
        }
        .moved(InvoiceStatus::Paid, day(25), other);
        assert_eq!(
            paid.dates(),
            Dates {
                issued_at: Some(day(1)),
                due_at: Some(day(15)),
                paid_at: Some(day(25)),
                voided_at: None,
                marked_uncollectible_at: Some(day(20)),
            }
        );
    }
}
