//! # commet-core
//!
//! The domain of commet, an embedded billing engine for Rust services: every business rule, and
//! nothing else. This crate is pure: no `async`, no store, no IO crates, no wall clock (time
//! comes from a [`clock::Clock`]), no floats near money. The engine (`commet-engine`), the
//! stores and the transports live in their own crates and depend on this one.
//!
//! | module | what it holds | status |
//! |---|---|---|
//! | [`money`] | [`Currency`](money::Currency), [`Money`](money::Money), [`UnitAmount`](money::UnitAmount), [`RoundingPolicy`](money::RoundingPolicy), allocation | works |
//! | [`ids`] | typed, prefixed, time-sortable ids (`cus_`, `sub_`, `inv_` ...) and their generator | works |
//! | [`catalog`] | [`Plan`](catalog::Plan), [`Price`](catalog::Price) (flat or per seat, interval, trial) | works |
//! | [`calendar`] | billing periods from an anchor, month-end clamping | works |
//! | [`clock`] | [`Clock`](clock::Clock), [`SystemClock`](clock::SystemClock), [`TestClock`](clock::TestClock) | works |
//! | [`customer`] | [`Customer`](customer::Customer): contact details, payment method on file, credit per currency | works |
//! | [`subscription`] | the lifecycle state machine: statuses, the transition table, commands, decisions, access; what is due at an instant ([`due_step`](subscription::Subscription::due_step)), what a due period or retry charges ([`charge_period`](subscription::Subscription::charge_period), [`retry`](subscription::Subscription::retry)) and what a charge's outcome does ([`settle`](subscription::Subscription::settle)) | works |
//! | [`payment`] | [`PaymentAttempt`](payment::PaymentAttempt) and its own transition table (pending, succeeded, failed), [`ChargeResult`](payment::ChargeResult) | works |
//! | [`policy`] | [`BillingPolicy`](policy::BillingPolicy): the dunning policy, rounding, checkout expiry and the signed links decisions put in events | works |
//! | [`token`] | signed checkout and portal links: [`Links`](token::Links), [`SigningKey`](token::SigningKey) | works |
//! | [`validation`] | the checks every input passes: texts, metadata, absolute `http(s)` URLs | works |
//! | [`delivery`] | webhook endpoints, one delivery per (endpoint, event), the retry schedule, the attempt log | works |
//! | [`event`] | typed events with Commet's wire names and fields, and the envelope | works |
//! | [`invoice`] | [`Invoice`](invoice::Invoice) and its lifecycle, [`LineItem`](invoice::LineItem), [`Totals`](invoice::Totals) and customer credit, the recurring invoice of a period, [`NumberSeries`](invoice::NumberSeries) | works |
//! | [`proration`] | plan-change previews: upgrade now with credit for unused time to the second, downgrade at period end | works |
//! | [`webhook`] | the endpoint secret ([`WebhookSecret`](webhook::WebhookSecret)), delivery signatures (Commet's and Standard Webhooks v1) and the receiver's [`verify`](webhook::verify()), [`verify_standard`](webhook::verify_standard) | works |
//! | [`dunning`] | [`DunningPolicy`](dunning::DunningPolicy): retry schedule, soft and hard declines, exhaustion | works |
//!
//! Bad input is always a typed error ([`InvalidField`] names the field), never a panic.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use commet_core::calendar::{BillingCycle, Interval};
//! use commet_core::money::{Money, RoundingPolicy, UnitAmount};
//!
//! let price: UnitAmount = "0.0004 USD".parse()?;
//! let usage = price.times(12_345.into(), RoundingPolicy::default())?;
//! assert_eq!(usage, "4.94 USD".parse::<Money>()?);
//!
//! let cycle = BillingCycle::new(Utc.with_ymd_and_hms(2024, 1, 31, 0, 0, 0).unwrap(), Interval::MONTHLY);
//! assert_eq!(cycle.period(0)?.end(), Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod customer;
pub mod delivery;
pub mod dunning;
pub mod event;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod ids;
pub mod invoice;
pub mod money;
pub mod payment;
pub mod policy;
pub mod proration;
pub mod subscription;
pub mod token;
pub mod validation;
pub mod webhook;

#[doc(hidden)]
pub mod __fuzz;

pub use validation::{
    InvalidField, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_CHARS, MAX_METADATA_VALUE_CHARS,
};
