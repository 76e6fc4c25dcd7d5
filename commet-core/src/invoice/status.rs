//! The invoice lifecycle: statuses, triggers, and the one function that moves between them.
//! The table is on [`InvoiceStatus`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvoiceError;

/// Where an invoice is in its lifecycle. Every status change goes through [`transition`],
/// which allows exactly these moves:
///
/// | from | trigger | to |
/// |---|---|---|
/// | `draft` | `finalize` | `outstanding` |
/// | `outstanding` | `pay` | `paid` |
/// | `outstanding` | `void` | `void` |
/// | `outstanding` | `mark_uncollectible` | `uncollectible` |
/// | `uncollectible` | `pay` | `paid` |
/// | `uncollectible` | `void` | `void` |
///
/// Every other pair is refused with [`InvoiceError::IllegalTransition`]: a draft is never paid,
/// voided or written off (an unwanted draft is deleted, which leaves no gap in the numbering
/// because drafts have no number); `paid` and `void` are final. This table is tested against
/// [`transition`], row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Being prepared: lines and amounts may change; no number yet.
    Draft,
    /// Finalized and awaiting payment: lines are frozen, a number is assigned.
    Outstanding,
    /// Paid in full. Final.
    Paid,
    /// Cancelled; nothing is owed. Final.
    Void,
    /// Written off after collection failed; may still be paid or voided later.
    Uncollectible,
}

impl InvoiceStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [InvoiceStatus; 5] = [
        InvoiceStatus::Draft,
        InvoiceStatus::Outstanding,
        InvoiceStatus::Paid,
        InvoiceStatus::Void,
        InvoiceStatus::Uncollectible,
    ];

    /// The serialized name: `draft`, `outstanding`, `paid`, `void`, `uncollectible`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Outstanding => "outstanding",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
        }
    }

    /// True for `paid` and `void`, which nothing leaves.
    #[must_use]
    pub fn is_final(self) -> bool {
        InvoiceTrigger::ALL
            .iter()
            .all(|&trigger| transition(self, trigger).is_err())
    }

    /// The status `trigger` leads to from this one; see [`transition`].
    pub fn next(self, trigger: InvoiceTrigger) -> Result<InvoiceStatus, InvoiceError> {
        transition(self, trigger)
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What moves an invoice from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceTrigger {
    /// Freeze the lines, set the issue and due dates: `draft` -> `outstanding`.
    Finalize,
    /// Record full payment of the amount due.
    Pay,
    /// Cancel the invoice: nothing is owed any more.
    Void,
    /// Write the invoice off after collection failed (dunning exhausted, or by hand).
    MarkUncollectible,
}

impl InvoiceTrigger {
    /// Every trigger.
    pub const ALL: [InvoiceTrigger; 4] = [
        InvoiceTrigger::Finalize,
        InvoiceTrigger::Pay,
        InvoiceTrigger::Void,
        InvoiceTrigger::MarkUncollectible,
    ];

    /// The serialized name: `finalize`, `pay`, `void`, `mark_uncollectible`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceTrigger::Finalize => "finalize",
            InvoiceTrigger::Pay => "pay",
            InvoiceTrigger::Void => "void",
            InvoiceTrigger::MarkUncollectible => "mark_uncollectible",
        }
    }
}

impl fmt::Display for InvoiceTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one function every invoice status change goes through: the status `trigger` leads to
/// from `from`, or [`InvoiceError::IllegalTransition`] for any pair outside the table on
/// [`InvoiceStatus`].
///
/// ```
/// use commet_core::invoice::{InvoiceError, InvoiceStatus, InvoiceTrigger, transition};
///
/// assert_eq!(
///     transition(InvoiceStatus::Draft, InvoiceTrigger::Finalize),
///     Ok(InvoiceStatus::Outstanding)
/// );
/// assert_eq!(
///     transition(InvoiceStatus::Uncollectible, InvoiceTrigger::Pay),
///     Ok(InvoiceStatus::Paid)
/// );
/// assert_eq!(
///     transition(InvoiceStatus::Paid, InvoiceTrigger::Void),
///     Err(InvoiceError::IllegalTransition {
///         from: InvoiceStatus::Paid,
///         trigger: InvoiceTrigger::Void
///     })
/// );
/// ```
pub fn transition(
    from: InvoiceStatus,
    trigger: InvoiceTrigger,
) -> Result<InvoiceStatus, InvoiceError> {
    use InvoiceStatus::{Draft, Outstanding, Paid, Uncollectible, Void};
    use InvoiceTrigger::{Finalize, MarkUncollectible, Pay};
    // Every (status, trigger) pair is spelled out, with no wildcard, so that a new status or
    // trigger does not compile until each of its transitions has been decided.
    match (from, trigger) {
        (Draft, Finalize) => Ok(Outstanding),
        (Outstanding | Uncollectible, Pay) => Ok(Paid),
        (Outstanding | Uncollectible, InvoiceTrigger::Void) => Ok(Void),
        (Outstanding, MarkUncollectible) => Ok(Uncollectible),
        (Draft, Pay | InvoiceTrigger::Void | MarkUncollectible)
        | (Outstanding | Uncollectible, Finalize)
        | (Uncollectible, MarkUncollectible)
        | (Paid | Void, Finalize | Pay | InvoiceTrigger::Void | MarkUncollectible) => {
            Err(InvoiceError::IllegalTransition { from, trigger })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The rows of the table in `InvoiceStatus`'s docs, parsed from the source.
    fn documented_table() -> BTreeSet<(String, String, String)> {
        include_str!("status.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("/// | `"))
            .map(|row| {
                let cells: Vec<String> = row
                    .split('|')
                    .map(|cell| cell.trim().trim_matches('`').to_owned())
                    .filter(|cell| !cell.is_empty())
                    .collect();
                assert_eq!(cells.len(), 3, "malformed row {row:?}");
                (cells[0].clone(), cells[1].clone(), cells[2].clone())
            })
            .collect()
    }

    #[test]
    fn the_documented_table_is_exactly_what_the_code_allows() {
        let allowed: BTreeSet<(String, String, String)> = InvoiceStatus::ALL
            .iter()
            .flat_map(|&from| InvoiceTrigger::ALL.iter().map(move |&t| (from, t)))
            .filter_map(|(from, trigger)| {
                transition(from, trigger).ok().map(|to| {
                    (
                        from.as_str().to_owned(),
                        trigger.as_str().to_owned(),
                        to.as_str().to_owned(),
                    )
                })
            })
            .collect();
        assert_eq!(allowed.len(), 6);
        assert_eq!(documented_table(), allowed);
    }

    #[test]
    fn every_pair_outside_the_table_names_the_status_and_the_trigger() {
        let table = documented_table();
        for from in InvoiceStatus::ALL {
            for trigger in InvoiceTrigger::ALL {
                let documented = table
                    .iter()
                    .any(|(f, t, _)| f == from.as_str() && t == trigger.as_str());
                if !documented {
                    assert_eq!(
                        transition(from, trigger),
                        Err(InvoiceError::IllegalTransition { from, trigger })
                    );
                }
            }
        }
    }

    #[test]
    fn paid_and_void_are_final() {
        let finals: Vec<InvoiceStatus> = InvoiceStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(finals, [InvoiceStatus::Paid, InvoiceStatus::Void]);
    }

    #[test]
    fn names_serialize_as_documented() {
        for status in InvoiceStatus::ALL {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        for trigger in InvoiceTrigger::ALL {
            assert_eq!(
                serde_json::to_string(&trigger).unwrap(),
                format!("\"{trigger}\"")
            );
        }
    }
}
