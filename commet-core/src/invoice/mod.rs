//! Invoices: lines, totals, numbering and the lifecycle (DESIGN.md section 7).
//!
//! | concept | types |
//! |---|---|
//! | the aggregate, and its plain-data form for stores and serde | [`Invoice`], [`InvoiceRecord`] |
//! | the lifecycle: the table is on [`InvoiceStatus`] | [`InvoiceStatus`], [`InvoiceTrigger`], [`transition`] |
//! | lines, each rounded once | [`LineItem`], [`LineKind`] |
//! | totals and the customer credit rule | [`Totals`] |
//! | the invoice of a period | [`PeriodInvoice`], [`item_lines`] |
//! | numbering | [`NumberSeries`], [`InvoiceNumber`] |
//!
//! An invoice is made as a draft, gets its lines, and is finalized:
//!
//! 1. [`Invoice::draft`] (or [`PeriodInvoice::build`], or a plan-change preview's
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
//! The dates a status carries (issued and due, paid, voided, written off) live with that status
//! inside the invoice, so a draft cannot have a due date nor an outstanding invoice a payment
//! date; [`InvoiceRecord`] spells them out as optional columns for stores, and
//! [`Invoice::from_record`] refuses any combination the lifecycle cannot produce. The amount
//! paid is the amount due once `paid`, and zero before: there are no partial payments.
//!
//! Timestamps are the `now` the caller passes (nothing here reads a clock). They are not
//! required to be in order, because on several workers clocks can disagree by a little; only
//! `due_at >= issued_at`, which come from the same call, is enforced.

mod builder;
mod document;
mod lifecycle;
mod line;
mod numbering;
mod parties;
mod record;
mod status;
mod summary;
mod totals;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use builder::{PeriodInvoice, describe_item, item_lines};
pub use document::{DocumentLine, InvoiceDocument, format_money, format_unit_amount};
pub use line::{LineItem, LineKind, LineRecord, MAX_DESCRIPTION_CHARS, NewLineItem};
pub use numbering::{
    DEFAULT_PADDING, DEFAULT_PREFIX, InvoiceNumber, MAX_NUMBER_CHARS, MAX_PADDING,
    MAX_PREFIX_CHARS, NumberSeries,
};
pub use parties::{
    BillingDetails, InvoiceParties, Issuer, MAX_FOOTER_CHARS, MAX_LOGO_BYTES,
    MAX_PARTY_FIELD_CHARS, Party, PostalAddress,
};
pub use record::InvoiceRecord;
pub use status::{InvoiceStatus, InvoiceTrigger, transition};
pub use summary::InvoiceSummary;
pub use totals::Totals;

pub(crate) use builder::{check_items, item_charge};

use lifecycle::{Issued, Lifecycle};

use crate::calendar::{Interval, Period};
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::money::{Currency, Money, MoneyError};
use crate::validation::{InvalidField, check_metadata, check_text};

/// The longest memo, in characters.
pub const MAX_MEMO_CHARS: usize = 2_000;

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
    /// A subscription started again: resumed after a pause, or reactivated after a
    /// cancellation; bills the new period that starts then (needs a subscription).
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
/// invoice.finalize(now, now + TimeDelta::days(30), commet_core::invoice::__doc_parties())?;
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
    lifecycle: Lifecycle,
    kind: InvoiceKind,
    period: Option<Period>,
    created_at: DateTime<Utc>,
    lines: Vec<LineItem>,
    totals: Totals,
    memo: Option<String>,
    metadata: BTreeMap<String, String>,
    parties: Option<InvoiceParties>,
    version: u64,
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
            lifecycle: Lifecycle::Draft,
            kind: new.kind,
            period: new.period,
            created_at: new.created_at,
            lines: Vec::new(),
            totals: Totals::zero(new.currency),
            memo: new.memo,
            metadata: new.metadata,
            parties: None,
            version: 0,
        })
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
        self.lines.push(line);
        self.recompute().inspect_err(|_| {
            self.lines.pop();
        })
    }

    /// Remove and return the line at `index` (drafts only), recomputing the totals. Refused
    /// with [`InvoiceError::DiscountExceedsSubtotal`] if the discount would exceed what is left.
    pub fn remove_line(&mut self, index: usize) -> Result<LineItem, InvoiceError> {
        self.ensure_draft()?;
        let len = self.lines.len();
        if index >= len {
            return Err(InvoiceError::NoSuchLine { index, len });
        }
        let removed = self.lines.remove(index);
        match self.recompute() {
            Ok(()) => Ok(removed),
            Err(error) => {
                self.lines.insert(index, removed);
                Err(error)
            }
        }
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
    /// invoice.finalize(now, now + TimeDelta::days(14), commet_core::invoice::__doc_parties())?;
    /// assert_eq!(invoice.status(), InvoiceStatus::Outstanding);
    /// assert_eq!(invoice.number(), None); // until the store assigns one
    /// assert_eq!(
    ///     invoice.finalize(now, now, commet_core::invoice::__doc_parties()),
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
        parties: InvoiceParties,
    ) -> Result<(), InvoiceError> {
        let next = transition(self.status(), InvoiceTrigger::Finalize)?;
        if self.lines.is_empty() {
            return Err(InvoiceError::NoLines);
        }
        let issue = Issued::new(now, due_at)?;
        self.lifecycle = self.lifecycle.moved(next, now, issue);
        self.parties = Some(parties);
        Ok(())
    }

    /// Who sold and who bought, as recorded when the invoice left `draft` (`None` for a draft,
    /// and for invoices stored before parties were recorded).
    #[must_use]
    pub fn parties(&self) -> Option<&InvoiceParties> {
        self.parties.as_ref()
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
    /// invoice.finalize(now, now, commet_core::invoice::__doc_parties())?;
    /// invoice.assign_number(series.allocate()?)?;
    /// assert!(matches!(
    ///     invoice.assign_number(series.allocate()?),
    ///     Err(InvoiceError::AlreadyNumbered { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn assign_number(&mut self, number: InvoiceNumber) -> Result<(), InvoiceError> {
        if self.status() == InvoiceStatus::Draft {
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
    /// invoice.finalize(now, now, commet_core::invoice::__doc_parties())?;
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
        let next = transition(self.status(), InvoiceTrigger::Pay)?;
        if amount != self.totals.amount_due() {
            return Err(InvoiceError::PaymentMismatch {
                expected: self.totals.amount_due(),
                actual: amount,
            });
        }
        self.move_to(next, now);
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
    /// invoice.finalize(now, now, commet_core::invoice::__doc_parties())?;
    /// invoice.void(now)?;
    /// assert_eq!(invoice.voided_at(), Some(now));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn void(&mut self, now: DateTime<Utc>) -> Result<(), InvoiceError> {
        let next = transition(self.status(), InvoiceTrigger::Void)?;
        self.move_to(next, now);
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
    /// invoice.finalize(now, now, commet_core::invoice::__doc_parties())?;
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
        let next = transition(self.status(), InvoiceTrigger::MarkUncollectible)?;
        self.move_to(next, now);
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
        self.lifecycle.status()
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
        self.lifecycle.dates().issued_at
    }

    /// When payment is due.
    #[must_use]
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        self.lifecycle.dates().due_at
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
        match self.lifecycle {
            Lifecycle::Paid { .. } => self.totals.amount_due(),
            Lifecycle::Draft
            | Lifecycle::Outstanding { .. }
            | Lifecycle::Uncollectible { .. }
            | Lifecycle::Void { .. } => Money::zero(self.currency),
        }
    }

    /// When it was paid.
    #[must_use]
    pub fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.lifecycle.dates().paid_at
    }

    /// When it was voided.
    #[must_use]
    pub fn voided_at(&self) -> Option<DateTime<Utc>> {
        self.lifecycle.dates().voided_at
    }

    /// When it was written off.
    #[must_use]
    pub fn marked_uncollectible_at(&self) -> Option<DateTime<Utc>> {
        self.lifecycle.dates().marked_uncollectible_at
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
        match self.status() {
            InvoiceStatus::Draft => Ok(()),
            status => Err(InvoiceError::LinesFrozen { status }),
        }
    }

    /// Move to `next`, which [`transition`] decided, at `now` (not for finalizing, which also
    /// sets the due date).
    fn move_to(&mut self, next: InvoiceStatus, now: DateTime<Utc>) {
        // Only a draft lacks issue dates, and the table leads out of a draft only by
        // finalizing, so these are never used.
        self.lifecycle = self.lifecycle.moved(next, now, Issued::at(now));
    }

    /// Recompute the totals after the lines changed, keeping the discount, the tax and at most
    /// the credit applied so far. On error the totals are unchanged (the caller restores the
    /// lines).
    fn recompute(&mut self) -> Result<(), InvoiceError> {
        self.totals = Totals::compute(
            self.currency,
            &self.lines,
            self.totals.discount(),
            self.totals.tax(),
            self.totals.credit_applied(),
        )?;
        Ok(())
    }
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

/// Parties for the method examples. Not a public API.
#[doc(hidden)]
#[must_use]
pub fn __doc_parties() -> InvoiceParties {
    let party = |name: &str| Party {
        legal_name: name.into(),
        email: None,
        address: None,
        tax_id: None,
    };
    InvoiceParties {
        issuer: party("Acme Inc."),
        customer: party("Ana"),
        footer: None,
    }
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
