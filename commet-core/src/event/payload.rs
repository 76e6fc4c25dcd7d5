//! The `data` of each event: Commet's documented fields (camelCase, amounts in minor units,
//! currencies in lower case), plus a few fields of commet's own where Commet has no event or
//! leaves a gap (marked "commet" below). Receivers built for Commet ignore the extra fields.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::wire::{currency, time};
use crate::calendar::Frequency;
use crate::ids::{CustomerId, EndpointId, InvoiceId, PlanId, SubscriptionId};
use crate::invoice::InvoiceSummary;
use crate::money::Currency;
use crate::subscription::SubscriptionStatus;
use crate::token::SignedUrl;

/// A plan as events name it: `{ "id", "name" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    /// The plan id.
    pub id: PlanId,
    /// The plan's name.
    pub name: String,
}

/// `subscription.created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionCreatedData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The (first) plan.
    pub plan_id: PlanId,
    /// Its name.
    pub plan_name: String,
    /// The status it was created in.
    pub status: SubscriptionStatus,
    /// When it was created.
    #[serde(with = "time")]
    pub start_date: DateTime<Utc>,
}

/// `subscription.activated` and `subscription.reactivated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionActivatedData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// `active`.
    pub status: SubscriptionStatus,
    /// Start of the current period.
    #[serde(with = "time::option")]
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current period.
    #[serde(with = "time::option")]
    pub current_period_end: Option<DateTime<Utc>>,
    /// The first invoice (`null` for a free subscription).
    pub invoice_id: Option<InvoiceId>,
    /// Its number.
    pub invoice_number: Option<String>,
    /// Its total, in minor units.
    pub invoice_total: Option<i64>,
    /// Its currency.
    #[serde(with = "currency")]
    pub invoice_currency: Currency,
    /// The payment provider (the gateway's name), if a charge was made.
    pub provider: Option<String>,
}

/// `subscription.canceled` and `subscription.updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionCanceledData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The status after the change.
    pub status: SubscriptionStatus,
    /// When it was canceled (or when the scheduled cancellation was asked for).
    #[serde(with = "time::option")]
    pub canceled_at: Option<DateTime<Utc>>,
    /// The customer's words, or `checkout_expired` / `dunning_exhausted` / `admin_override`.
    pub cancel_reason: Option<String>,
    /// When access ends (or ended).
    #[serde(with = "time::option")]
    pub end_date: Option<DateTime<Utc>>,
    /// commet: the status before the change.
    pub previous_status: Option<SubscriptionStatus>,
    /// commet: who made an admin override.
    pub actor: Option<String>,
    /// commet: why an admin override was made.
    pub reason: Option<String>,
}

/// `subscription.cancellation_scheduled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationScheduledData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// `active` or `trialing`: unchanged until the cancellation takes effect.
    pub status: SubscriptionStatus,
    /// When the cancellation was asked for.
    #[serde(with = "time")]
    pub canceled_at: DateTime<Utc>,
    /// The customer's words.
    pub cancel_reason: Option<String>,
    /// When it takes effect: the end of the period (or trial).
    #[serde(with = "time")]
    pub effective_at: DateTime<Utc>,
}

/// `subscription.cancellation_revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationRevokedData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The status.
    pub status: SubscriptionStatus,
    /// The end of the current period, when it now renews.
    #[serde(with = "time::option")]
    pub current_period_end: Option<DateTime<Utc>>,
}

/// `subscription.plan_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanChangedData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The plan before.
    pub previous_plan: PlanRef,
    /// The plan after.
    pub current_plan: PlanRef,
    /// How often the new plan bills.
    pub billing_interval: Frequency,
    /// commet: how many of `billingInterval` make one period.
    pub interval_count: u32,
    /// The proration credit for unused time, in minor units (0 for a scheduled change).
    pub credit: i64,
    /// The charge for the new plan, in minor units (0 for a scheduled change).
    pub charge: i64,
    /// What was charged, in minor units.
    pub total_charged: i64,
}

/// `subscription.plan_change_scheduled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanChangeScheduledData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The status.
    pub status: SubscriptionStatus,
    /// The plan now.
    pub current_plan: PlanRef,
    /// The plan from `effectiveAt`.
    pub scheduled_plan: PlanRef,
    /// How often the current plan bills.
    pub billing_interval: Frequency,
    /// How often the scheduled plan bills.
    pub scheduled_billing_interval: Frequency,
    /// When the change takes effect: the end of the period.
    #[serde(with = "time")]
    pub effective_at: DateTime<Utc>,
}

/// `subscription.plan_change_revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanChangeRevokedData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The status.
    pub status: SubscriptionStatus,
    /// The plan, unchanged.
    pub current_plan: PlanRef,
    /// The plan that will no longer take effect.
    pub revoked_plan: PlanRef,
    /// How often the current plan bills.
    pub billing_interval: Frequency,
    /// How often the revoked plan would have billed.
    pub revoked_billing_interval: Frequency,
}

/// `subscription.past_due`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PastDueData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// `past_due`.
    pub status: SubscriptionStatus,
    /// The unpaid invoice.
    pub invoice_id: InvoiceId,
    /// Its number.
    pub invoice_number: String,
    /// commet: the first retry, if one is scheduled.
    #[serde(with = "time::option")]
    pub retry_at: Option<DateTime<Utc>>,
}

/// `subscription.payment_failed` (commet: the seed's missing event; Commet itself sends only
/// `payment.failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPaymentFailedData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The decline code, e.g. `card_declined`.
    pub error_code: String,
    /// The gateway's message, e.g. `Insufficient funds`.
    pub error_message: String,
    /// When the next retry runs; `null` when none is scheduled.
    #[serde(with = "time::option")]
    pub retry_at: Option<DateTime<Utc>>,
    /// The unpaid invoice.
    pub invoice_id: InvoiceId,
    /// Which attempt failed: 1 for the first charge.
    pub attempt: u32,
}

/// `trial.started`, `trial.will_end` and `trial.expired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrialData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The status after the event.
    pub status: SubscriptionStatus,
    /// The (first) plan.
    pub plan_id: PlanId,
    /// Its name.
    pub plan_name: String,
    /// When the trial ends (or ended).
    #[serde(with = "time")]
    pub trial_ends_at: DateTime<Utc>,
}

/// `trial.converted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrialConvertedData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// `active`.
    pub status: SubscriptionStatus,
    /// The plan converted to.
    pub plan_id: PlanId,
    /// Its name.
    pub plan_name: String,
}

/// `checkout.ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutReadyData {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// `null`: commet issues the first invoice when checkout completes.
    pub invoice_id: Option<InvoiceId>,
    /// `null`, as above.
    pub invoice_number: Option<String>,
    /// What checkout will charge, in minor units (0 for a trial).
    pub invoice_total: i64,
    /// The currency.
    #[serde(with = "currency")]
    pub invoice_currency: Currency,
    /// Where to send the customer.
    pub checkout_url: SignedUrl,
}

/// `payment.received`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentReceivedData {
    /// The invoice.
    pub invoice_id: InvoiceId,
    /// Its number.
    pub invoice_number: String,
    /// Its total, in minor units.
    pub invoice_total: i64,
    /// The customer.
    pub customer_id: CustomerId,
    /// The subscription.
    pub subscription_id: Option<SubscriptionId>,
    /// The gateway's payment id (`null` when credit covered the invoice).
    pub payment_transaction_id: Option<String>,
    /// The gateway's name.
    pub provider: Option<String>,
    /// What was collected, in minor units.
    pub gross_amount: i64,
    /// The currency.
    #[serde(with = "currency")]
    pub currency: Currency,
    /// When.
    #[serde(with = "time")]
    pub paid_at: DateTime<Utc>,
}

/// `payment.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailedData {
    /// The invoice.
    pub invoice_id: InvoiceId,
    /// Its number.
    pub invoice_number: String,
    /// The customer.
    pub customer_id: CustomerId,
    /// The subscription.
    pub subscription_id: Option<SubscriptionId>,
    /// The gateway's name.
    pub provider: Option<String>,
    /// The decline code.
    pub failure_code: String,
    /// The gateway's message.
    pub failure_message: String,
    /// Where the customer can pay or update the payment method.
    pub recovery_url: Option<SignedUrl>,
    /// commet: when the next retry runs; `null` when none is scheduled.
    #[serde(with = "time::option")]
    pub retry_at: Option<DateTime<Utc>>,
    /// commet: which attempt failed, 1 for the first charge.
    pub attempt: u32,
}

/// `payment.recovered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecoveredData {
    /// The invoice.
    pub invoice_id: InvoiceId,
    /// Its number.
    pub invoice_number: String,
    /// Its total, in minor units.
    pub invoice_total: i64,
    /// The customer.
    pub customer_id: CustomerId,
    /// The subscription.
    pub subscription_id: Option<SubscriptionId>,
    /// The gateway's name.
    pub provider: Option<String>,
    /// commet: failed attempts before this one succeeded.
    pub failed_attempts: u32,
}

/// `payment.retry_failed`: dunning is exhausted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRetryFailedData {
    /// The invoice.
    pub invoice_id: InvoiceId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The gateway's name.
    pub provider: Option<String>,
    /// The last decline code.
    pub reason: String,
    /// commet: the last gateway message.
    pub failure_message: String,
    /// commet: failed attempts in all.
    pub failed_attempts: u32,
}

/// `invoice.created` and `invoice.voided`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceData {
    /// The invoice.
    pub invoice_id: InvoiceId,
    /// Its number.
    pub invoice_number: String,
    /// Its status: `outstanding`, `paid`, `void` ...
    pub invoice_status: String,
    /// Start of the period it bills.
    #[serde(with = "time::option")]
    pub period_start: Option<DateTime<Utc>>,
    /// End of the period it bills.
    #[serde(with = "time::option")]
    pub period_end: Option<DateTime<Utc>>,
    /// When it was issued.
    #[serde(with = "time")]
    pub issue_date: DateTime<Utc>,
    /// When it is due.
    #[serde(with = "time")]
    pub due_date: DateTime<Utc>,
    /// The currency.
    #[serde(with = "currency")]
    pub currency: Currency,
    /// Sum of its lines, in minor units.
    pub subtotal: i64,
    /// Its total, in minor units.
    pub total: i64,
    /// The customer.
    pub customer_id: CustomerId,
    /// The subscription.
    pub subscription_id: Option<SubscriptionId>,
}

impl InvoiceData {
    /// The data of `invoice.created` / `invoice.voided` for an invoice of `customer`.
    #[must_use]
    pub fn of(
        invoice: &InvoiceSummary,
        customer: CustomerId,
        subscription: Option<SubscriptionId>,
    ) -> InvoiceData {
        InvoiceData {
            invoice_id: invoice.id,
            invoice_number: invoice.number.clone(),
            invoice_status: invoice.status.as_str().to_owned(),
            period_start: invoice.period.map(|p| p.start()),
            period_end: invoice.period.map(|p| p.end()),
            issue_date: invoice.issued_at,
            due_date: invoice.due_at,
            currency: invoice.total.currency(),
            subtotal: invoice.subtotal.minor_units(),
            total: invoice.total.minor_units(),
            customer_id: customer,
            subscription_id: subscription,
        }
    }
}

/// `customer.created` and `customer.updated`: the customer as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerData {
    /// The customer.
    pub id: CustomerId,
    /// The integrating service's own id for the customer.
    pub external_id: Option<String>,
    /// The customer's full name.
    pub full_name: Option<String>,
    /// The billing e-mail address.
    pub email: String,
    /// Free-form key/value pairs.
    pub metadata: BTreeMap<String, String>,
    /// When the customer was created.
    #[serde(with = "time")]
    pub created_at: DateTime<Utc>,
    /// When the customer last changed.
    #[serde(with = "time")]
    pub updated_at: DateTime<Utc>,
}

/// `webhook.test` (commet): sent to one endpoint by hand to check that it receives and
/// verifies deliveries. Never in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTestData {
    /// The endpoint tested.
    pub endpoint_id: EndpointId,
    /// A note for whoever reads the receiver's log.
    pub message: String,
}
