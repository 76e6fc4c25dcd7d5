//! How an engine is configured.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use commet_core::InvalidField;
use commet_core::delivery::{RetrySchedule, UrlPolicy};
use commet_core::dunning::DunningPolicy;
use commet_core::event::{DEFAULT_API_VERSION, Mode};
use commet_core::invoice::{Issuer, NumberSeries, Party};
use commet_core::money::RoundingPolicy;
use commet_core::policy::BillingPolicy;
use commet_core::subscription::AccessPolicy;
use commet_core::token::{LinkBase, Links, SigningKey};

/// The longest any configured duration (link lifetimes, idempotency, recovery grace, checkout
/// expiry) may be: ten years.
pub const MAX_DURATION_DAYS: i64 = 3_650;

/// How long signed links stay valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkTtls {
    /// Checkout links: 24 hours by default.
    pub checkout: TimeDelta,
    /// Portal sessions: 1 hour by default.
    pub portal: TimeDelta,
    /// Recovery links in `payment.failed`: 7 days by default.
    pub recovery: TimeDelta,
}

impl Default for LinkTtls {
    fn default() -> Self {
        LinkTtls {
            checkout: TimeDelta::hours(24),
            portal: TimeDelta::hours(1),
            recovery: TimeDelta::days(7),
        }
    }
}

/// How webhooks are delivered (DESIGN.md section 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Accept `http://` endpoint URLs (local receivers in tests and development). Off by
    /// default: endpoints must be `https`.
    pub allow_http: bool,
    /// In live mode, accept endpoints on private and loopback addresses (by URL and by what
    /// their host resolves to). Off by default; sandbox mode always allows them.
    pub allow_private_addresses: bool,
    /// How long one attempt may take, connecting and reading the answer: 10 s by default.
    pub timeout: TimeDelta,
    /// When a failed delivery is tried again: 1 m, 5 m, 15 m, 30 m, 1 h, 2 h, 4 h after the
    /// first failure by default.
    pub retry_schedule: RetrySchedule,
    /// An endpoint every attempt to which failed for this long is disabled: 3 days by
    /// default.
    pub disable_after: TimeDelta,
    /// How long a rotated-out secret keeps signing: 24 hours by default.
    pub rotation_grace: TimeDelta,
    /// How long a claimed attempt is another worker's before it may be claimed again (the
    /// worker died): the timeout plus this margin, 1 minute by default.
    pub claim_margin: TimeDelta,
    /// How many deliveries a run sends at once.
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_http: false,
            allow_private_addresses: false,
            timeout: TimeDelta::seconds(10),
            retry_schedule: RetrySchedule::default(),
            disable_after: TimeDelta::days(3),
            rotation_grace: TimeDelta::hours(24),
            claim_margin: TimeDelta::minutes(1),
            concurrency: 16,
        }
    }
}

impl WebhookConfig {
    /// How long a claim lasts: the timeout and the margin.
    #[must_use]
    pub fn lease(&self) -> TimeDelta {
        self.timeout + self.claim_margin
    }

    /// Where endpoints may point, in `mode`.
    #[must_use]
    pub fn url_policy(&self, mode: Mode) -> UrlPolicy {
        UrlPolicy {
            mode,
            allow_http: self.allow_http,
            allow_private_addresses: self.allow_private_addresses,
        }
    }
}

/// Everything a [`Billing`](super::Billing) engine is configured with.
///
/// Start from [`BillingConfig::new`] and change what you need:
///
/// ```
/// use chrono::TimeDelta;
/// use commet_engine::BillingConfig;
/// use commet_core::token::SigningKey;
///
/// let mut config = BillingConfig::new("org_acme", SigningKey::generate()?);
/// config.checkout_base_url = "https://billing.acme.com/checkout".into();
/// config.checkout_expires_after = Some(TimeDelta::days(3));
/// config.validate()?;
/// # Ok::<(), commet_core::InvalidField>(())
/// ```
#[derive(Debug, Clone)]
pub struct BillingConfig {
    /// The organization id in every event envelope.
    pub organization_id: String,
    /// Live or sandbox, in every event envelope.
    pub mode: Mode,
    /// The payload version in every event envelope.
    pub api_version: String,
    /// Checkout links are `{checkout_base_url}/{subscription id}?token=...`.
    pub checkout_base_url: String,
    /// Portal links are `{portal_base_url}/{customer id}?token=...`.
    pub portal_base_url: String,
    /// Recovery links are `{recovery_base_url}/{subscription id}?token=...`.
    pub recovery_base_url: String,
    /// Signs every link.
    pub signing_key: SigningKey,
    /// The invoice number series (prefix, padding, first number).
    pub invoice_series: NumberSeries,
    /// Retries and exhaustion.
    pub dunning: DunningPolicy,
    /// Access while past due.
    pub access: AccessPolicy,
    /// How long links stay valid.
    pub links: LinkTtls,
    /// Cancel a subscription whose checkout is not completed within this long (`None`, the
    /// default: never, as at Commet).
    pub checkout_expires_after: Option<TimeDelta>,
    /// How amounts are rounded.
    pub rounding: RoundingPolicy,
    /// How long an idempotency key is remembered: 24 hours by default.
    pub idempotency_ttl: TimeDelta,
    /// A charge still pending this long after it was recorded is taken to be abandoned (its
    /// process crashed) and is completed by the next run, with the same idempotency key.
    pub recovery_grace: TimeDelta,
    /// How many subscriptions `run_due` handles per commit.
    pub batch_size: usize,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// The seller's legal details (name, address, tax id, e-mail, logo, footer), copied onto
    /// every invoice when it leaves `draft`. `None` (the default) records the organization id
    /// as the seller's name and nothing else: set it before issuing real invoices.
    pub issuer: Option<Issuer>,
}

impl BillingConfig {
    /// A configuration with the defaults: sandbox mode, Commet's API version, base URLs on
    /// `http://localhost:8080` (replace them), `INV-000001` numbering, retries 1, 3, 5 and 7
    /// days after a failure then cancel, grace during dunning, no checkout expiry, half away
    /// from zero rounding, 24-hour idempotency, 5-minute recovery grace, batches of 200.
    #[must_use]
    pub fn new(organization_id: impl Into<String>, signing_key: SigningKey) -> BillingConfig {
        BillingConfig {
            organization_id: organization_id.into(),
            mode: Mode::Sandbox,
            api_version: DEFAULT_API_VERSION.into(),
            checkout_base_url: "http://localhost:8080/checkout".into(),
            portal_base_url: "http://localhost:8080/portal".into(),
            recovery_base_url: "http://localhost:8080/recover".into(),
            signing_key,
            invoice_series: NumberSeries::default(),
            dunning: DunningPolicy::default(),
            access: AccessPolicy::default(),
            links: LinkTtls::default(),
            checkout_expires_after: None,
            rounding: RoundingPolicy::default(),
            idempotency_ttl: TimeDelta::hours(24),
            recovery_grace: TimeDelta::minutes(5),
            batch_size: 200,
            webhooks: WebhookConfig::default(),
            issuer: None,
        }
    }

    /// Check the configuration; the error names the field.
    pub fn validate(&self) -> Result<(), InvalidField> {
        commet_core::validation::check_text("organization_id", &self.organization_id, true, 200)?;
        commet_core::validation::check_text("api_version", &self.api_version, true, 32)?;
        for (field, url) in [
            ("checkout_base_url", &self.checkout_base_url),
            ("portal_base_url", &self.portal_base_url),
            ("recovery_base_url", &self.recovery_base_url),
        ] {
            commet_core::validation::check_url(field, url, false)?;
        }
        // Bounded, so that a duration itself can never overflow; adding one to an instant near
        // the end of time can, and is checked where it is done.
        let positive = |field: &str, ttl: TimeDelta| {
            if ttl > TimeDelta::zero() && ttl <= TimeDelta::days(MAX_DURATION_DAYS) {
                Ok(())
            } else {
                Err(InvalidField::new(
                    field,
                    format_args!("must be positive and at most {MAX_DURATION_DAYS} days"),
                ))
            }
        };
        positive("links.checkout", self.links.checkout)?;
        positive("links.portal", self.links.portal)?;
        positive("links.recovery", self.links.recovery)?;
        positive("idempotency_ttl", self.idempotency_ttl)?;
        positive("recovery_grace", self.recovery_grace)?;
        if let Some(ttl) = self.checkout_expires_after {
            positive("checkout_expires_after", ttl)?;
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(InvalidField::new("batch_size", "must be 1 to 10000"));
        }
        if let Some(issuer) = &self.issuer {
            issuer.check()?;
        }
        let webhooks = &self.webhooks;
        if webhooks.timeout <= TimeDelta::zero() || webhooks.timeout > TimeDelta::minutes(5) {
            return Err(InvalidField::new(
                "webhooks.timeout",
                "must be positive and at most 5 minutes",
            ));
        }
        positive("webhooks.disable_after", webhooks.disable_after)?;
        positive("webhooks.rotation_grace", webhooks.rotation_grace)?;
        positive("webhooks.claim_margin", webhooks.claim_margin)?;
        if !(1..=1_000).contains(&webhooks.concurrency) {
            return Err(InvalidField::new(
                "webhooks.concurrency",
                "must be 1 to 1000",
            ));
        }
        Ok(())
    }
}

impl BillingConfig {
    /// The rules decisions apply, as the domain takes them.
    #[must_use]
    pub fn policy(&self) -> BillingPolicy {
        let base = |base_url: &str, ttl| LinkBase {
            base_url: base_url.to_owned(),
            ttl,
        };
        BillingPolicy {
            dunning: self.dunning.clone(),
            rounding: self.rounding,
            checkout_expires_after: self.checkout_expires_after,
            links: Links {
                key: self.signing_key.clone(),
                checkout: base(&self.checkout_base_url, self.links.checkout),
                portal: base(&self.portal_base_url, self.links.portal),
                recovery: base(&self.recovery_base_url, self.links.recovery),
            },
            seller: self.issuer.as_ref().map_or_else(
                || Party {
                    legal_name: self.organization_id.clone(),
                    email: None,
                    address: None,
                    tax_id: None,
                },
                Issuer::party,
            ),
            footer: self
                .issuer
                .as_ref()
                .and_then(|issuer| issuer.footer.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BillingConfig {
        BillingConfig::new(
            "org",
            SigningKey::from_bytes(&[7; 32]).unwrap_or_else(|_| panic!()),
        )
    }

    #[test]
    fn durations_must_be_positive_and_bounded() {
        assert_eq!(config().validate(), Ok(()));
        let mut huge = config();
        huge.idempotency_ttl = TimeDelta::MAX;
        assert_eq!(
            huge.validate().map_err(|e| e.field),
            Err("idempotency_ttl".into())
        );
        let mut zero = config();
        zero.links.checkout = TimeDelta::zero();
        assert_eq!(
            zero.validate().map_err(|e| e.field),
            Err("links.checkout".into())
        );
        let mut longest = config();
        longest.recovery_grace = TimeDelta::days(MAX_DURATION_DAYS);
        assert_eq!(longest.validate(), Ok(()));
    }
}
