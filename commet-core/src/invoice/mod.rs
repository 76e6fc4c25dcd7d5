//! Invoices: lines, totals, numbering and the lifecycle (DESIGN.md section 7).
//!
//! | concept | types |
//! |---|---|
//! | the aggregate, and its plain-data form for stores and serde | [`Invoice`], [`InvoiceRecord`] |
//! | the lifecycle: the table is on [`InvoiceStatus`] | [`InvoiceStatus`], [`InvoiceTrigger`], [`transition`] |
//! | lines, each rounded once | [`LineItem`], [`LineKind`] |
//! | totals and the customer credit rule | [`Totals`] |
//! | the recurring invoice of a period | [`RecurringInvoice`], [`item_lines`] |
//! | numbering | [`NumberSeries`], [`InvoiceNumber`] |
//!
//! An invoice is made as a draft, gets its lines, and is finalized:
//!
//! 1. [`Invoice::draft`] (or [`RecurringInvoice::build`], or a plan-change preview's
//!    [`Upgrade::into_invoice`](crate::proration::Upgrade::into_invoice)) makes a `draft`.
//!    Lines, discount, tax, credit and memo may change while it is a draft; every change
//!    recomputes the [`Totals`].
//! 2. [`Invoice::finalize`] freezes it (`outstanding`) and sets the issue and due dates. It does
//!    **not** number it: the number comes from a gap-free [`NumberSeries`] that the store
//!    allocates inside the commit that records the finalized invoice, then sets with
//!    [`Invoice::assign_number`] (once, on any status but `draft`). So an invoice that has left
//!    `draft` has no number only between those two steps, in memory.
//! 3. [`Invoice::mark_paid`], [`Invoice::void`] and [`Invoice::mark_uncollectible`] end it; an
//!    uncollectible invoice can still be paid or voided.
//!
//! Every status change goes through [`transition`]; a method whose trigger the table refuses
//! returns [`InvoiceError::IllegalTransition`] and changes nothing. Every method checks
//! everything before it changes anything, so an error always leaves the invoice as it was.
//!
//! Timestamps are the `now` the caller passes (nothing here reads a clock). They are not
//! required to be in order, because on several workers clocks can disagree by a little; only
//! `due_at >= issued_at`, which come from the same call, is enforced.

mod builder;
mod line;
mod numbering;
mod status;
mod totals;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use builder::{RecurringInvoice, describe_item, item_lines};
pub use line::{LineItem, LineKind, LineRecord, MAX_DESCRIPTION_CHARS, NewLineItem};
pub use numbering::{
    DEFAULT_PADDING, DEFAULT_PREFIX, InvoiceNumber, MAX_NUMBER_CHARS, MAX_PADDING,
    MAX_PREFIX_CHARS, NumberSeries,
};
pub use status::{InvoiceStatus, InvoiceTrigger, transition};
pub use totals::Totals;

pub(crate) use builder::{check_items, item_charge};

use crate::calendar::{Interval, Period};
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::money::{Currency, Money, MoneyError};
use crate::validation::{InvalidField, check_text};

/// The longest memo, in characters.
pub const MAX_MEMO_CHARS: usize = 2_000;
/// The most metadata entries an invoice may carry.
pub const MAX_METADATA_ENTRIES: usize = 50;
/// The longest metadata key, in characters.
pub const MAX_METADATA_KEY_CHARS: usize = 40;
/// The longest metadata value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;

/// Why an invoice could not be built, changed or rebuilt from storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvoiceError {
    /// A field is invalid or inconsistent with the rest (the error names it): a caller error
    /// (HTTP 400), or corrupt data when rebuilding a stored invoice.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// An amount is beyond the money range (far beyond any real invoice).
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// An amount, a line or a price is in another currency than the invoice.
    #[error("currency mismatch: the invoice is in {expected}, got {actual}")]
    CurrencyMismatch {
        /// The invoice's currency.
        expected: Currency,
        /// The currency that was given.
        actual: Currency,
    },
    /// The lifecycle table does not allow `trigger` from `from` (paying a draft, voiding a paid
    /// invoice ...). Nothing changed; show the invoice's current status.
    #[error("an invoice that is {from} cannot {trigger}")]
    IllegalTransition {
        /// The invoice's status.
        from: InvoiceStatus,
        /// What was attempted.
        trigger: InvoiceTrigger,
    },
    /// The invoice has left `draft`: its lines, amounts and memo can no longer change. Issue a
    /// new invoice (an adjustment) instead.
    #[error("the invoice is {status}: its lines and amounts are frozen")]
    LinesFrozen {
        /// The invoice's status.
        status: InvoiceStatus,
    },
    /// No line at this index.
    #[error("no line {index}: the invoice has {len} lines")]
    NoSuchLine {
        /// The index asked for.
        index: usize,
        /// How many lines there are.
        len: usize,
    },
    /// An invoice without lines cannot be finalized.
    #[error("an invoice needs at least one line to be finalized")]
    NoLines,
    /// A number is assigned only after finalizing; drafts have none.
    #[error("a draft has no number: finalize the invoice first")]
    NotFinalized,
    /// The invoice already has a number; numbers never change.
    #[error("the invoice is already numbered {number}")]
    AlreadyNumbered {
        /// Its number.
        number: InvoiceNumber,
    },
    /// A payment must be exactly the amount due (no partial or over-payments).
    #[error("the amount due is {expected}, but {actual} was paid")]
    PaymentMismatch {
        /// The invoice's amount due.
        expected: Money,
        /// The amount given.
        actual: Money,
    },
    /// The invoice-level discount is larger than the subtotal (or the subtotal is negative).
    #[error("a discount of {discount} exceeds the subtotal {subtotal}")]
    DiscountExceedsSubtotal {
        /// The discount.
        discount: Money,
        /// The subtotal.
        subtotal: Money,
    },
    /// A stored total does not follow from the lines: corrupt or tampered data.
    #[error("stored {field} {stored} does not match {computed} computed from the lines")]
    TotalsMismatch {
        /// Which total: `subtotal`, `total`, `credit_applied` or `amount_due`.
        field: &'static str,
        /// What the lines give.
        computed: Money,
        /// What was stored.
        stored: Money,
    },
    /// The number series has handed out its last value.
    #[error("the invoice number series is exhausted")]
    NumberSeriesExhausted,
    /// A subscription invoice or plan change needs at least one item.
    #[error("at least one item is needed")]
    NoItems,
    /// A per-seat item has zero seats.
    #[error("item {index} is priced per seat and needs at least one seat")]
    ZeroQuantity {
        /// The position of the item.
        index: usize,
    },
    /// The items of one subscription bill at different intervals.
    #[error("all items must bill at one interval: got {first} and {other}")]
    MixedIntervals {
        /// The interval of the first item.
        first: Interval,
        /// A different interval of a later item.
        other: Interval,
    },
}

/// Why an invoice was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// A subscription's charge for one period (needs a subscription and a period).
    Recurring,
    /// An immediate plan change: credit for unused time, charge for the new plan (needs a
    /// subscription).
    PlanChange,
    /// A canceled subscription started again (needs a subscription).
    Reactivation,
    /// A one-off charge.
    OneTime,
    /// A manual correction.
    Adjustment,
}

impl InvoiceKind {
    /// The serialized name, such as `plan_change`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Recurring => "recurring",
            InvoiceKind::PlanChange => "plan_change",
            InvoiceKind::Reactivation => "reactivation",
            InvoiceKind::OneTime => "one_time",
            InvoiceKind::Adjustment => "adjustment",
        }
    }
}

impl fmt::Display for InvoiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a new draft invoice is made of; checked by [`Invoice::draft`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice {
    /// The invoice's id.
    pub id: InvoiceId,
    /// Who pays.
    pub customer: CustomerId,
    /// The subscription it bills, if any (required for `recurring`, `plan_change` and
    /// `reactivation`).
    pub subscription: Option<SubscriptionId>,
    /// Every amount on the invoice is in this currency.
    pub currency: Currency,
    /// Why it is issued.
    pub kind: InvoiceKind,
    /// The billing period it covers (required for `recurring`).
    pub period: Option<Period>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// A note shown on the invoice: up to 2,000 characters.
    pub memo: Option<String>,
    /// Free-form key-value pairs for the integrator: up to 50, keys 1 to 40 characters, values
    /// up to 500.
    pub metadata: BTreeMap<String, String>,
}

/// A bill to a customer: lines, [`Totals`], a status, a number once finalized.
///
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use commet_core::ids::IdGenerator;
/// use commet_core::invoice::*;
/// use commet_core::money::{Currency, RoundingPolicy};
///
/// let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let ids = IdGenerator::seeded(7);
/// let mut invoice = Invoice::draft(NewInvoice {
///     id: ids.next(now),
///     customer: ids.next(now),
///     subscription: None,
///     currency: Currency::USD,
///     kind: InvoiceKind::OneTime,
///     period: None,
///     created_at: now,
///     memo: None,
///     metadata: BTreeMap::new(),
/// })?;
/// invoice.add_line(LineItem::new(
///     NewLineItem {
///         kind: LineKind::OneTime,
///         description: "Onboarding".into(),
///         quantity: 1.into(),
///         unit_amount: "250.00 USD".parse()?,
///         period: None,
///         price: None,
///     },
///     RoundingPolicy::default(),
/// )?)?;
/// assert_eq!(invoice.amount_due().to_string(), "250.00 USD");
///
/// // draft -> outstanding; the store numbers it in the same commit.
/// invoice.finalize(now, now + TimeDelta::days(30))?;
/// let mut series = NumberSeries::default();
/// invoice.assign_number(series.allocate()?)?;
/// assert_eq!(invoice.number().map(InvoiceNumber::as_str), Some("INV-000001"));
///
/// // outstanding -> paid; then nothing else.
/// invoice.mark_paid(now + TimeDelta::days(2), invoice.amount_due())?;
/// assert_eq!(invoice.status(), InvoiceStatus::Paid);
/// assert_eq!(
///     invoice.void(now + TimeDelta::days(3)),
///     Err(InvoiceError::IllegalTransition {
///         from: InvoiceStatus::Paid,
///         trigger: InvoiceTrigger::Void,
///     })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "InvoiceRecord", into = "InvoiceRecord")]
pub struct Invoice {
    id: InvoiceId,
    number: Option<InvoiceNumber>,
    customer: CustomerId,
    subscription: Option<SubscriptionId>,
    currency: Currency,
    status: InvoiceStatus,
    kind: InvoiceKind,
    period: Option<Period>,
    created_at: DateTime<Utc>,
    issued_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    lines: Vec<LineItem>,
    totals: Totals,
    amount_paid: Money,
    paid_at: Option<DateTime<Utc>>,
    voided_at: Option<DateTime<Utc>>,
    marked_uncollectible_at: Option<DateTime<Utc>>,
    memo: Option<String>,
    metadata: BTreeMap<String, String>,
    version: u64,
}

/// An invoice as plain data: what a store keeps in its columns, and the serde form. Every field
/// is public and nothing is checked until [`Invoice::from_record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    /// The id.
    pub id: InvoiceId,
    /// The number; `None` on drafts.
    pub number: Option<String>,
    /// Who pays.
    pub customer: CustomerId,
    /// The subscription billed, if any.
    pub subscription: Option<SubscriptionId>,
    /// The currency of every amount.
    pub currency: Currency,
    /// The lifecycle status.
    pub status: InvoiceStatus,
    /// Why it was issued.
    pub kind: InvoiceKind,
    /// The billing period covered, if any.
    pub period: Option<Period>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was finalized; `None` exactly on drafts.
    pub issued_at: Option<DateTime<Utc>>,
    /// When payment is due; `None` exactly on drafts.
    pub due_at: Option<DateTime<Utc>>,
    /// The lines, in order.
    pub lines: Vec<LineRecord>,
    /// The sum of the line amounts.
    pub subtotal: Money,
    /// The invoice-level discount.
    pub discount: Money,
    /// The invoice-level tax.
    pub tax: Money,
    /// `subtotal - discount + tax`.
    pub total: Money,
    /// The customer credit consumed.
    pub credit_applied: Money,
    /// `max(total, 0) - credit_applied`.
    pub amount_due: Money,
    /// The amount due once paid; zero before.
    pub amount_paid: Money,
    /// When it was paid; `Some` exactly when `paid`.
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was voided; `Some` exactly when `void`.
    pub voided_at: Option<DateTime<Utc>>,
    /// When it was written off; `Some` when `uncollectible`, and kept if it is later paid or
    /// voided.
    pub marked_uncollectible_at: Option<DateTime<Utc>>,
    /// A note shown on the invoice.
    pub memo: Option<String>,
    /// Integrator key-value pairs.
    pub metadata: BTreeMap<String, String>,
    /// The store's version of the row.
    pub version: u64,
}

impl Invoice {
    /// A new, empty `draft`.
    ///
    /// Refused, naming the field: a `recurring` invoice without a subscription or period, a
    /// `plan_change` or `reactivation` without a subscription, an invalid memo or metadata.
    pub fn draft(new: NewInvoice) -> Result<Invoice, InvoiceError> {
        check_header(new.kind, new.subscription, new.period)?;
        check_memo(new.memo.as_deref())?;
        check_metadata(&new.metadata)?;
        Ok(Invoice {
            id: new.id,
            number: None,
            customer: new.customer,
            subscription: new.subscription,
            currency: new.currency,
            status: InvoiceStatus::Draft,
            kind: new.kind,
            period: new.period,
            created_at: new.created_at,
            issued_at: None,
            due_at: None,
            lines: Vec::new(),
            totals: Totals::zero(new.currency),
            amount_paid: Money::zero(new.currency),
            paid_at: None,
            voided_at: None,
            marked_uncollectible_at: None,
            memo: new.memo,
            metadata: new.metadata,
            version: 0,
        })
    }

    /// Rebuild an invoice from its plain-data form, refusing anything inconsistent: a line in
    /// another currency, totals that do not follow from the lines
    /// ([`InvoiceError::TotalsMismatch`]), a number on a draft, timestamps or an amount paid
    /// that do not fit the status (naming the field).
    pub fn from_record(record: InvoiceRecord) -> Result<Invoice, InvoiceError> {
        check_header(record.kind, record.subscription, record.period)?;
        check_memo(record.memo.as_deref())?;
        check_metadata(&record.metadata)?;
        let currency = record.currency;
        let lines = rebuild_lines(record.lines, currency)?;
        let totals = check_stored_totals(
            currency,
            &lines,
            &StoredTotals {
                subtotal: record.subtotal,
                discount: record.discount,
                tax: record.tax,
                total: record.total,
                credit_applied: record.credit_applied,
                amount_due: record.amount_due,
                amount_paid: record.amount_paid,
            },
        )?;
        let number = match (record.status, record.number) {
            (_, None) => None,
            (InvoiceStatus::Draft, Some(_)) => {
                return Err(InvalidField::new("number", "a draft has no number").into());
            }
            (_, Some(number)) => Some(InvoiceNumber::new(number)?),
        };
        check_status_fields(&StatusFields {
            status: record.status,
            issued_at: record.issued_at,
            due_at: record.due_at,
            paid_at: record.paid_at,
            voided_at: record.voided_at,
            marked_uncollectible_at: record.marked_uncollectible_at,
            amount_paid: record.amount_paid,
            amount_due: totals.amount_due(),
        })?;
        Ok(Invoice {
            id: record.id,
            number,
            customer: record.customer,
            subscription: record.subscription,
            currency,
            status: record.status,
            kind: record.kind,
            period: record.period,
            created_at: record.created_at,
            issued_at: record.issued_at,
            due_at: record.due_at,
            lines,
            totals,
            amount_paid: record.amount_paid,
            paid_at: record.paid_at,
            voided_at: record.voided_at,
            marked_uncollectible_at: record.marked_uncollectible_at,
            memo: record.memo,
            metadata: record.metadata,
            version: record.version,
        })
    }

    /// The plain-data form, for stores.
    #[must_use]
    pub fn to_record(&self) -> InvoiceRecord {
        InvoiceRecord::from(self.clone())
    }

    // ---- draft edits ----------------------------------------------------------------------

    /// Append a line (drafts only) and recompute the totals. The credit applied stays at most
    /// what it was; call [`apply_credit`](Invoice::apply_credit) to re-apply a balance.
    pub fn add_line(&mut self, line: LineItem) -> Result<(), InvoiceError> {
        self.ensure_draft()?;
        if line.currency() != self.currency {
            return Err(InvoiceError::CurrencyMismatch {
                expected: self.currency,
                actual: line.currency(),
            });
        }
        let mut lines = self.lines.clone();
        lines.push(line);
        self.replace_lines(lines)
    }

    /// Remove and return the line at `index` (drafts only), recomputing the totals. Refused
    /// with [`InvoiceError::DiscountExceedsSubtotal`] if the discount would exceed what is left.
    pub fn remove_line(&mut self, index: usize) -> Result<LineItem, InvoiceError> {
        self.ensure_draft()?;
        let len = self.lines.len();
        if index >= len {
            return Err(InvoiceError::NoSuchLine { index, len });
        }
        let mut lines = self.lines.clone();
        let removed = lines.remove(index);
        self.replace_lines(lines)?;
        Ok(removed)
    }

    /// Set the invoice-level discount (drafts only): zero or more, at most the subtotal.
    pub fn set_discount(&mut self, discount: Money) -> Result<(), InvoiceError> {
        self.ensure_draft()?;
        self.totals = Totals::compute(
            self.currency,
            &self.lines,
            discount,
            self.totals.tax(),
            self.totals.credit_applied(),
        )?;
        Ok(())
    }

    /// Set the invoice-level tax (drafts only): zero or more.
    pub fn set_tax(&mut self, tax: Money) -> Result<(), InvoiceError> {
        self.ensure_draft()?;
        self.totals = Totals::compute(
            self.currency,
            &self.lines,
            self.totals.discount(),
            tax,
            self.totals.credit_applied(),
        )?;
        Ok(())
    }

    /// Apply the customer's credit balance (drafts only): `credit_applied` becomes
    /// `min(available, max(total, 0))`, replacing any credit applied before. The engine debits
    /// the customer's balance by `credit_applied` in the commit that finalizes the invoice.
    pub fn apply_credit(&mut self, available: Money) -> Result<(), InvoiceError> {
        self.ensure_draft()?;
        self.totals = Totals::compute(
            self.currency,
            &self.lines,
            self.totals.discount(),
            self.totals.tax(),
            available,
        )?;
        Ok(())
    }

    /// Replace the memo (drafts only): up to 2,000 characters.
    pub fn set_memo(&mut self, memo: Option<String>) -> Result<(), InvoiceError> {
        self.ensure_draft()?;
        check_memo(memo.as_deref())?;
        self.memo = memo;
        Ok(())
    }

    /// Set a metadata entry, on any status (metadata is the integrator's, not the customer's).
    pub fn set_metadata(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), InvoiceError> {
        let mut metadata = self.metadata.clone();
        metadata.insert(key.into(), value.into());
        check_metadata(&metadata)?;
        self.metadata = metadata;
        Ok(())
    }

    /// Remove a metadata entry, returning its value.
    pub fn remove_metadata(&mut self, key: &str) -> Option<String> {
        self.metadata.remove(key)
    }

    // ---- lifecycle ------------------------------------------------------------------------

    /// `draft` -> `outstanding`: freeze the lines, issue the invoice at `now`, due at `due_at`
    /// (not before `now`). The number is assigned separately by the store, see
    /// [`assign_number`](Invoice::assign_number).
    ///
    /// ```
    /// # use chrono::{TimeDelta, TimeZone, Utc};
    /// # use commet_core::invoice::*;
    /// # let mut invoice = commet_core::invoice::__doc_invoice()?;
    /// let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    /// invoice.finalize(now, now + TimeDelta::days(14))?;
    /// assert_eq!(invoice.status(), InvoiceStatus::Outstanding);
    /// assert_eq!(invoice.number(), None); // until the store assigns one
    /// assert_eq!(
    ///     invoice.finalize(now, now),
    ///     Err(InvoiceError::IllegalTransition {
    ///         from: InvoiceStatus::Outstanding,
    ///         trigger: InvoiceTrigger::Finalize,
    ///     })
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finalize(
        &mut self,
        now: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> Result<(), InvoiceError> {
        let next = transition(self.status, InvoiceTrigger::Finalize)?;
        if self.lines.is_empty() {
            return Err(InvoiceError::NoLines);
        }
        if due_at < now {
            return Err(InvalidField::new(
                "due_at",
                format_args!("{due_at} is before the issue date {now}"),
            )
            .into());
        }
        self.status = next;
        self.issued_at = Some(now);
        self.due_at = Some(due_at);
        Ok(())
    }

    /// Set the number the store allocated from its [`NumberSeries`] in the finalizing commit.
    /// Allowed once, on any status but `draft`.
    ///
    /// ```
    /// # use chrono::{TimeZone, Utc};
    /// # use commet_core::invoice::*;
    /// # let mut invoice = commet_core::invoice::__doc_invoice()?;
    /// # let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    /// let mut series = NumberSeries::default();
    /// assert_eq!(invoice.assign_number(series.peek()), Err(InvoiceError::NotFinalized));
    /// invoice.finalize(now, now)?;
    /// invoice.assign_number(series.allocate()?)?;
    /// assert!(matches!(
    ///     invoice.assign_number(series.allocate()?),
    ///     Err(InvoiceError::AlreadyNumbered { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn assign_number(&mut self, number: InvoiceNumber) -> Result<(), InvoiceError> {
        if self.status == InvoiceStatus::Draft {
            return Err(InvoiceError::NotFinalized);
        }
        if let Some(existing) = &self.number {
            return Err(InvoiceError::AlreadyNumbered {
                number: existing.clone(),
            });
        }
        self.number = Some(number);
        Ok(())
    }

    /// `outstanding` | `uncollectible` -> `paid`, for exactly the amount due, at `now`.
    ///
    /// ```
    /// # use chrono::{TimeZone, Utc};
    /// # use commet_core::invoice::*;
    /// # let mut invoice = commet_core::invoice::__doc_invoice()?;
    /// # let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    /// let due = invoice.amount_due();
    /// assert_eq!(
    ///     invoice.mark_paid(now, due),
    ///     Err(InvoiceError::IllegalTransition {
    ///         from: InvoiceStatus::Draft,
    ///         trigger: InvoiceTrigger::Pay,
    ///     })
    /// );
    /// invoice.finalize(now, now)?;
    /// assert!(matches!(
    ///     invoice.mark_paid(now, "1.00 USD".parse()?),
    ///     Err(InvoiceError::PaymentMismatch { .. })
    /// ));
    /// invoice.mark_paid(now, due)?;
    /// assert_eq!(invoice.amount_paid(), due);
    /// assert_eq!(invoice.paid_at(), Some(now));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mark_paid(&mut self, now: DateTime<Utc>, amount: Money) -> Result<(), InvoiceError> {
        let next = transition(self.status, InvoiceTrigger::Pay)?;
        if amount != self.totals.amount_due() {
            return Err(InvoiceError::PaymentMismatch {
                expected: self.totals.amount_due(),
                actual: amount,
            });
        }
        self.status = next;
        self.amount_paid = amount;
        self.paid_at = Some(now);
        Ok(())
    }

    /// `outstanding` | `uncollectible` -> `void` at `now`: nothing is owed any more. The engine
    /// gives [`credit_applied`](Invoice::credit_applied) back to the customer's balance.
    ///
    /// ```
    /// # use chrono::{TimeZone, Utc};
    /// # use commet_core::invoice::*;
    /// # let mut invoice = commet_core::invoice::__doc_invoice()?;
    /// # let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    /// assert!(matches!(invoice.void(now), Err(InvoiceError::IllegalTransition { .. })));
    /// invoice.finalize(now, now)?;
    /// invoice.void(now)?;
    /// assert_eq!(invoice.voided_at(), Some(now));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn void(&mut self, now: DateTime<Utc>) -> Result<(), InvoiceError> {
        let next = transition(self.status, InvoiceTrigger::Void)?;
        self.status = next;
        self.voided_at = Some(now);
        Ok(())
    }

    /// `outstanding` -> `uncollectible` at `now`: written off, though it may still be paid or
    /// voided.
    ///
    /// ```
    /// # use chrono::{TimeZone, Utc};
    /// # use commet_core::invoice::*;
    /// # let mut invoice = commet_core::invoice::__doc_invoice()?;
    /// # let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    /// invoice.finalize(now, now)?;
    /// invoice.mark_uncollectible(now)?;
    /// assert!(matches!(
    ///     invoice.mark_uncollectible(now),
    ///     Err(InvoiceError::IllegalTransition { .. })
    /// ));
    /// invoice.mark_paid(now, invoice.amount_due())?; // recovered after all
    /// assert_eq!(invoice.marked_uncollectible_at(), Some(now));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mark_uncollectible(&mut self, now: DateTime<Utc>) -> Result<(), InvoiceError> {
        let next = transition(self.status, InvoiceTrigger::MarkUncollectible)?;
        self.status = next;
        self.marked_uncollectible_at = Some(now);
        Ok(())
    }

    // ---- versions -------------------------------------------------------------------------

    /// The store's version of this invoice: 0 until first stored.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Set the version; for stores, which bump it on each write.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    // ---- getters --------------------------------------------------------------------------

    /// The id.
    #[must_use]
    pub fn id(&self) -> InvoiceId {
        self.id
    }

    /// The number, once the store has assigned it; never on a draft.
    #[must_use]
    pub fn number(&self) -> Option<&InvoiceNumber> {
        self.number.as_ref()
    }

    /// Who pays.
    #[must_use]
    pub fn customer(&self) -> CustomerId {
        self.customer
    }

    /// The subscription billed, if any.
    #[must_use]
    pub fn subscription(&self) -> Option<SubscriptionId> {
        self.subscription
    }

    /// The currency of every amount.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The lifecycle status.
    #[must_use]
    pub fn status(&self) -> InvoiceStatus {
        self.status
    }

    /// Why it was issued.
    #[must_use]
    pub fn kind(&self) -> InvoiceKind {
        self.kind
    }

    /// The billing period covered, if any.
    #[must_use]
    pub fn period(&self) -> Option<Period> {
        self.period
    }

    /// When it was made.
    #[must_use]
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// When it was finalized.
    #[must_use]
    pub fn issued_at(&self) -> Option<DateTime<Utc>> {
        self.issued_at
    }

    /// When payment is due.
    #[must_use]
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        self.due_at
    }

    /// The lines, in order.
    #[must_use]
    pub fn lines(&self) -> &[LineItem] {
        &self.lines
    }

    /// All the totals at once.
    #[must_use]
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The sum of the line amounts.
    #[must_use]
    pub fn subtotal(&self) -> Money {
        self.totals.subtotal()
    }

    /// The invoice-level discount.
    #[must_use]
    pub fn discount(&self) -> Money {
        self.totals.discount()
    }

    /// The invoice-level tax.
    #[must_use]
    pub fn tax(&self) -> Money {
        self.totals.tax()
    }

    /// `subtotal - discount + tax`.
    #[must_use]
    pub fn total(&self) -> Money {
        self.totals.total()
    }

    /// The customer credit consumed.
    #[must_use]
    pub fn credit_applied(&self) -> Money {
        self.totals.credit_applied()
    }

    /// What the customer must pay.
    #[must_use]
    pub fn amount_due(&self) -> Money {
        self.totals.amount_due()
    }

    /// What was paid: the amount due once `paid`, zero before.
    #[must_use]
    pub fn amount_paid(&self) -> Money {
        self.amount_paid
    }

    /// When it was paid.
    #[must_use]
    pub fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.paid_at
    }

    /// When it was voided.
    #[must_use]
    pub fn voided_at(&self) -> Option<DateTime<Utc>> {
        self.voided_at
    }

    /// When it was written off.
    #[must_use]
    pub fn marked_uncollectible_at(&self) -> Option<DateTime<Utc>> {
        self.marked_uncollectible_at
    }

    /// The note shown on the invoice.
    #[must_use]
    pub fn memo(&self) -> Option<&str> {
        self.memo.as_deref()
    }

    /// Integrator key-value pairs.
    #[must_use]
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    // ---- internals ------------------------------------------------------------------------

    fn ensure_draft(&self) -> Result<(), InvoiceError> {
        if self.status == InvoiceStatus::Draft {
            Ok(())
        } else {
            Err(InvoiceError::LinesFrozen {
                status: self.status,
            })
        }
    }

    /// Swap in new lines with their totals, or change nothing.
    fn replace_lines(&mut self, lines: Vec<LineItem>) -> Result<(), InvoiceError> {
        let totals = Totals::compute(
            self.currency,
            &lines,
            self.totals.discount(),
            self.totals.tax(),
            self.totals.credit_applied(),
        )?;
        self.lines = lines;
        self.totals = totals;
        Ok(())
    }
}

impl TryFrom<InvoiceRecord> for Invoice {
    type Error = InvoiceError;

    fn try_from(record: InvoiceRecord) -> Result<Self, Self::Error> {
        Invoice::from_record(record)
    }
}

impl From<Invoice> for InvoiceRecord {
    fn from(invoice: Invoice) -> Self {
        InvoiceRecord {
            id: invoice.id,
            number: invoice.number.map(String::from),
            customer: invoice.customer,
            subscription: invoice.subscription,
            currency: invoice.currency,
            status: invoice.status,
            kind: invoice.kind,
            period: invoice.period,
            created_at: invoice.created_at,
            issued_at: invoice.issued_at,
            due_at: invoice.due_at,
            lines: invoice.lines.into_iter().map(LineRecord::from).collect(),
            subtotal: invoice.totals.subtotal(),
            discount: invoice.totals.discount(),
            tax: invoice.totals.tax(),
            total: invoice.totals.total(),
            credit_applied: invoice.totals.credit_applied(),
            amount_due: invoice.totals.amount_due(),
            amount_paid: invoice.amount_paid,
            paid_at: invoice.paid_at,
            voided_at: invoice.voided_at,
            marked_uncollectible_at: invoice.marked_uncollectible_at,
            memo: invoice.memo,
            metadata: invoice.metadata,
            version: invoice.version,
        }
    }
}

/// Rebuild stored lines, naming the line in errors, and check their currency.
fn rebuild_lines(
    records: Vec<LineRecord>,
    currency: Currency,
) -> Result<Vec<LineItem>, InvoiceError> {
    records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            let line = LineItem::from_record(record).map_err(|error| match error {
                InvoiceError::Invalid(invalid) => {
                    InvoiceError::Invalid(invalid.within(&format!("lines[{index}]")))
                }
                other => other,
            })?;
            if line.currency() == currency {
                Ok(line)
            } else {
                Err(InvoiceError::CurrencyMismatch {
                    expected: currency,
                    actual: line.currency(),
                })
            }
        })
        .collect()
}

/// The amounts a store keeps next to the lines.
struct StoredTotals {
    subtotal: Money,
    discount: Money,
    tax: Money,
    total: Money,
    credit_applied: Money,
    amount_due: Money,
    amount_paid: Money,
}

/// Recompute the totals from the lines and check the stored ones against them.
fn check_stored_totals(
    currency: Currency,
    lines: &[LineItem],
    stored: &StoredTotals,
) -> Result<Totals, InvoiceError> {
    for amount in [
        stored.subtotal,
        stored.total,
        stored.credit_applied,
        stored.amount_due,
        stored.amount_paid,
    ] {
        if amount.currency() != currency {
            return Err(InvoiceError::CurrencyMismatch {
                expected: currency,
                actual: amount.currency(),
            });
        }
    }
    if stored.credit_applied.is_negative() {
        return Err(InvalidField::new("credit_applied", "must not be negative").into());
    }
    // Applying the stored credit as the available credit gives it back unchanged exactly when
    // it is at most the total, which is the rule.
    let totals = Totals::compute(
        currency,
        lines,
        stored.discount,
        stored.tax,
        stored.credit_applied,
    )?;
    for (field, computed, stored) in [
        ("subtotal", totals.subtotal(), stored.subtotal),
        ("total", totals.total(), stored.total),
        (
            "credit_applied",
            totals.credit_applied(),
            stored.credit_applied,
        ),
        ("amount_due", totals.amount_due(), stored.amount_due),
    ] {
        if computed != stored {
            return Err(InvoiceError::TotalsMismatch {
                field,
                computed,
                stored,
            });
        }
    }
    Ok(totals)
}

fn check_header(
    kind: InvoiceKind,
    subscription: Option<SubscriptionId>,
    period: Option<Period>,
) -> Result<(), InvalidField> {
    let needs_subscription = matches!(
        kind,
        InvoiceKind::Recurring | InvoiceKind::PlanChange | InvoiceKind::Reactivation
    );
    if needs_subscription && subscription.is_none() {
        return Err(InvalidField::new(
            "subscription",
            format_args!("a {kind} invoice bills a subscription"),
        ));
    }
    if kind == InvoiceKind::Recurring && period.is_none() {
        return Err(InvalidField::new(
            "period",
            "a recurring invoice bills one period",
        ));
    }
    Ok(())
}

fn check_memo(memo: Option<&str>) -> Result<(), InvalidField> {
    match memo {
        Some(memo) => check_text("memo", memo, false, MAX_MEMO_CHARS),
        None => Ok(()),
    }
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), InvalidField> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(InvalidField::new(
            "metadata",
            format_args!("at most {MAX_METADATA_ENTRIES} entries"),
        ));
    }
    for (key, value) in metadata {
        check_text("metadata", key, true, MAX_METADATA_KEY_CHARS).map_err(|invalid| {
            let key: String = key.chars().take(MAX_METADATA_KEY_CHARS).collect();
            InvalidField::new("metadata", format_args!("key {key:?}: {}", invalid.reason))
        })?;
        check_text(
            &format!("metadata.{key}"),
            value,
            false,
            MAX_METADATA_VALUE_CHARS,
        )?;
    }
    Ok(())
}

/// The fields whose presence the status decides.
struct StatusFields {
    status: InvoiceStatus,
    issued_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    voided_at: Option<DateTime<Utc>>,
    marked_uncollectible_at: Option<DateTime<Utc>>,
    amount_paid: Money,
    amount_due: Money,
}

fn check_status_fields(fields: &StatusFields) -> Result<(), InvalidField> {
    use InvoiceStatus::{Draft, Outstanding, Paid, Uncollectible, Void};
    let status = fields.status;
    let presence = |field: &str, present: bool, expected: bool| {
        if present == expected {
            Ok(())
        } else if expected {
            Err(InvalidField::new(
                field,
                format_args!("an invoice that is {status} has one"),
            ))
        } else {
            Err(InvalidField::new(
                field,
                format_args!("an invoice that is {status} has none"),
            ))
        }
    };
    let issued = status != Draft;
    presence("issued_at", fields.issued_at.is_some(), issued)?;
    presence("due_at", fields.due_at.is_some(), issued)?;
    presence("paid_at", fields.paid_at.is_some(), status == Paid)?;
    presence("voided_at", fields.voided_at.is_some(), status == Void)?;
    // Kept once set: an uncollectible invoice may later be paid or voided.
    match status {
        Uncollectible => presence(
            "marked_uncollectible_at",
            fields.marked_uncollectible_at.is_some(),
            true,
        )?,
        Draft | Outstanding => presence(
            "marked_uncollectible_at",
            fields.marked_uncollectible_at.is_some(),
            false,
        )?,
        Paid | Void => {}
    }
    if let (Some(issued_at), Some(due_at)) = (fields.issued_at, fields.due_at) {
        if due_at < issued_at {
            return Err(InvalidField::new(
                "due_at",
                format_args!("{due_at} is before the issue date {issued_at}"),
            ));
        }
    }
    let expected_paid = if status == Paid {
        fields.amount_due
    } else {
        Money::zero(fields.amount_due.currency())
    };
    if fields.amount_paid != expected_paid {
        return Err(InvalidField::new(
            "amount_paid",
            format_args!(
                "an invoice that is {status} has {expected_paid} paid, not {}",
                fields.amount_paid
            ),
        ));
    }
    Ok(())
}

/// A one-line draft for the method examples. Not a public API.
#[doc(hidden)]
pub fn __doc_invoice() -> Result<Invoice, InvoiceError> {
    let now = chrono::DateTime::<Utc>::UNIX_EPOCH;
    let ids = crate::ids::IdGenerator::seeded(1);
    let mut invoice = Invoice::draft(NewInvoice {
        id: ids.next(now),
        customer: ids.next(now),
        subscription: None,
        currency: Currency::USD,
        kind: InvoiceKind::OneTime,
        period: None,
        created_at: now,
        memo: None,
        metadata: BTreeMap::new(),
    })?;
    invoice.add_line(LineItem::new(
        NewLineItem {
            kind: LineKind::OneTime,
            description: "Setup".into(),
            quantity: 1.into(),
            unit_amount: Money::from_minor(10_000, Currency::USD).into(),
            period: None,
            price: None,
        },
        crate::money::RoundingPolicy::default(),
    )?)?;
    Ok(invoice)
}
