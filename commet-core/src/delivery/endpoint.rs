//! A webhook endpoint: where events go, which ones, signed with which secret.

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::InvalidField;
use crate::event::{EventKind, Mode};
use crate::ids::EndpointId;
use crate::validation::{check_text, check_url};
use crate::webhook::WebhookSecret;

use super::address::is_forbidden_address;

/// The longest endpoint description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Which events an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventFilter {
    /// Every event.
    All,
    /// Only these kinds (at least one).
    Only(BTreeSet<EventKind>),
}

impl EventFilter {
    /// Does the filter let `kind` through?
    #[must_use]
    pub fn matches(&self, kind: EventKind) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(kinds) => kinds.contains(&kind),
        }
    }

    fn check(&self) -> Result<(), InvalidField> {
        match self {
            EventFilter::Only(kinds) if kinds.is_empty() => Err(InvalidField::new(
                "events",
                "name at least one event, or choose all",
            )),
            _ => Ok(()),
        }
    }
}

/// Where endpoints may point. Endpoints must be absolute `https` URLs, unless `allow_http`;
/// in live mode a host that is a loopback, private or link-local address (or `localhost`) is
/// refused, unless `allow_private_addresses` (the transport checks what a name resolves to
/// when it connects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPolicy {
    /// The engine's mode.
    pub mode: Mode,
    /// Accept `http://` URLs (local receivers in tests and development).
    pub allow_http: bool,
    /// Accept private and loopback hosts in live mode.
    pub allow_private_addresses: bool,
}

impl UrlPolicy {
    /// May an endpoint's request go to a private address? In sandbox mode always; in live
    /// mode only if allowed.
    #[must_use]
    pub fn private_addresses_allowed(self) -> bool {
        self.allow_private_addresses || self.mode == Mode::Sandbox
    }

    /// Check an endpoint URL (field `url`).
    pub fn check(self, url: &str) -> Result<(), InvalidField> {
        const FIELD: &str = "url";
        check_url(FIELD, url, true)?;
        let parsed = url::Url::parse(url).map_err(|e| InvalidField::new(FIELD, e))?;
        if parsed.scheme() != "https" && !self.allow_http {
            return Err(InvalidField::new(
                FIELD,
                "must be an https URL (http is allowed only when the configuration allows it)",
            ));
        }
        if !self.private_addresses_allowed() {
            let private = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => is_forbidden_address(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => is_forbidden_address(IpAddr::V6(ip)),
                Some(url::Host::Domain(name)) => {
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    name == "localhost" || name.ends_with(".localhost")
                }
                None => false,
            };
            if private {
                return Err(InvalidField::new(
                    FIELD,
                    "points at a private or loopback address, which live mode refuses \
                     unless the configuration allows it",
                ));
            }
        }
        Ok(())
    }
}

/// A new endpoint, as a host registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    /// Where deliveries are sent (HTTP `POST`).
    pub url: String,
    /// Which events it receives.
    pub events: EventFilter,
    /// A note for people.
    pub description: Option<String>,
    /// Whether it receives deliveries now.
    pub enabled: bool,
}

/// Changes to an endpoint; `None` keeps a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointUpdate {
    /// A new URL.
    pub url: Option<String>,
    /// A new filter.
    pub events: Option<EventFilter>,
    /// A new description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Enable or disable. Enabling clears the reason it was disabled and its failure streak,
    /// and the endpoint receives the events committed from then on (not the ones committed
    /// while it was disabled: redeliver those by range if they are wanted).
    pub enabled: Option<bool>,
}

/// Why an endpoint stopped receiving deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// The host disabled it (or created it disabled).
    Manual,
    /// The receiver answered `410 Gone`.
    Gone,
    /// Every delivery failed for the configured span (3 days by default).
    Failing,
}

/// The secret an endpoint signed with before a rotation, still signing until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredSecret {
    /// The old secret.
    pub secret: WebhookSecret,
    /// When it stops signing.
    pub until: DateTime<Utc>,
}

/// A webhook endpoint. Its secret never appears in `Debug` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    id: EndpointId,
    url: String,
    events: EventFilter,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<DisabledReason>,
    secret: WebhookSecret,
    retired: Option<RetiredSecret>,
    after_seq: u64,
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    version: u64,
}

/// An endpoint as stored, field by field (the secrets as their `whsec_` text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// The id.
    pub id: EndpointId,
    /// The URL.
    pub url: String,
    /// The event filter.
    pub events: EventFilter,
    /// The description.
    pub description: Option<String>,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Why it is disabled, if it is.
    pub disabled_reason: Option<DisabledReason>,
    /// The current secret.
    pub secret: WebhookSecret,
    /// The secret before the last rotation, while it still signs.
    pub retired: Option<RetiredSecret>,
    /// It receives the outbox's events after this sequence number.
    pub after_seq: u64,
    /// Since when every attempt to it has failed, if they have.
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was deleted, if it was.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The stored version (0: never stored).
    pub version: u64,
}

impl WebhookEndpoint {
    /// A new endpoint with a fresh secret that receives the events after `after_seq` (the
    /// outbox's last sequence number when it is created). The URL is checked by `policy`.
    pub fn new(
        id: EndpointId,
        new: NewEndpoint,
        secret: WebhookSecret,
        after_seq: u64,
        policy: UrlPolicy,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpoint, InvalidField> {
        policy.check(&new.url)?;
        new.events.check()?;
        check_description(new.description.as_deref())?;
        Ok(WebhookEndpoint {
            id,
            url: new.url,
            events: new.events,
            description: new.description,
            enabled: new.enabled,
            disabled_reason: (!new.enabled).then_some(DisabledReason::Manual),
            secret,
            retired: None,
            after_seq,
            failing_since: None,
            created_at: now,
            deleted_at: None,
            version: 0,
        })
    }

    /// An endpoint from its stored record, checked.
    pub fn from_record(record: EndpointRecord) -> Result<WebhookEndpoint, InvalidField> {
        record.events.check()?;
        check_description(record.description.as_deref())?;
        if record.enabled == record.disabled_reason.is_some() {
            return Err(InvalidField::new(
                "disabled_reason",
                "an endpoint has a reason exactly when it is disabled",
            ));
        }
        Ok(WebhookEndpoint {
            id: record.id,
            url: record.url,
            events: record.events,
            description: record.description,
            enabled: record.enabled,
            disabled_reason: record.disabled_reason,
            secret: record.secret,
            retired: record.retired,
            after_seq: record.after_seq,
            failing_since: record.failing_since,
            created_at: record.created_at,
            deleted_at: record.deleted_at,
            version: record.version,
        })
    }

    /// The stored record.
    #[must_use]
    pub fn to_record(&self) -> EndpointRecord {
        EndpointRecord {
            id: self.id,
            url: self.url.clone(),
            events: self.events.clone(),
            description: self.description.clone(),
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            secret: self.secret.clone(),
            retired: self.retired.clone(),
            after_seq: self.after_seq,
            failing_since: self.failing_since,
            created_at: self.created_at,
            deleted_at: self.deleted_at,
            version: self.version,
        }
    }

    /// Apply an update checked by `policy`; `last_seq` is the outbox's last sequence number
    /// now (an endpoint enabled again receives the events after it).
    pub fn update(
        &mut self,
        update: EndpointUpdate,
        policy: UrlPolicy,
        last_seq: u64,
    ) -> Result<(), InvalidField> {
        self.check_not_deleted()?;
        if let Some(url) = &update.url {
            policy.check(url)?;
        }
        if let Some(events) = &update.events {
            events.check()?;
        }
        if let Some(description) = &update.description {
            check_description(description.as_deref())?;
        }
        if let Some(url) = update.url {
            self.url = url;
        }
        if let Some(events) = update.events {
            self.events = events;
        }
        if let Some(description) = update.description {
            self.description = description;
        }
        match update.enabled {
            Some(true) if !self.enabled => {
                self.enabled = true;
                self.disabled_reason = None;
                self.failing_since = None;
                self.after_seq = self.after_seq.max(last_seq);
            }
            Some(false) if self.enabled => self.disable(DisabledReason::Manual),
            _ => {}
        }
        Ok(())
    }

    /// Sign with `secret` from now on; the current secret keeps signing for `grace` (a
    /// receiver that has not switched yet still verifies), then stops. One secret is retired
    /// at a time: rotating again while one still signs stops it at once (rotate again to end
    /// a leaked secret's grace).
    pub fn rotate_secret(
        &mut self,
        secret: WebhookSecret,
        grace: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidField> {
        self.check_not_deleted()?;
        if grace < TimeDelta::zero() {
            return Err(InvalidField::new("rotation_grace", "must not be negative"));
        }
        let until = now
            .checked_add_signed(grace)
            .ok_or_else(|| InvalidField::new("rotation_grace", "ends after the end of time"))?;
        let old = std::mem::replace(&mut self.secret, secret);
        self.retired = Some(RetiredSecret { secret: old, until });
        Ok(())
    }

    /// Mark the endpoint deleted: it receives nothing more, and its deliveries stay in the log.
    /// Deleting it again changes nothing.
    pub fn delete(&mut self, now: DateTime<Utc>) {
        self.deleted_at.get_or_insert(now);
    }

    /// A deleted endpoint takes no more changes.
    fn check_not_deleted(&self) -> Result<(), InvalidField> {
        match self.deleted_at {
            Some(_) => Err(InvalidField::new(
                "endpoint",
                format_args!("{} is deleted", self.id),
            )),
            None => Ok(()),
        }
    }

    /// The secrets that sign a delivery at `now`: the current one first, then the retired one
    /// while its grace lasts.
    #[must_use]
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.secret];
        if let Some(retired) = &self.retired
            && now < retired.until
        {
            secrets.push(&retired.secret);
        }
        secrets
    }

    /// Does it take a delivery of event `seq` of `kind` now (enabled, not deleted, created
    /// before the event, and its filter matches)?
    #[must_use]
    pub fn receives(&self, seq: u64, kind: EventKind) -> bool {
        self.is_live() && seq > self.after_seq && self.events.matches(kind)
    }

    /// Enabled and not deleted.
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.enabled && self.deleted_at.is_none()
    }

    /// Refuse (naming `endpoint`) to queue deliveries by hand for an endpoint that receives
    /// nothing: a disabled or deleted one.
    pub fn check_live(&self) -> Result<(), InvalidField> {
        if self.is_live() {
            Ok(())
        } else {
            Err(InvalidField::new(
                "endpoint",
                format_args!("{} is disabled: enable it first", self.id),
            ))
        }
    }

    /// A delivery to it succeeded: its failure streak ends. True if that changed it.
    pub fn record_success(&mut self) -> bool {
        self.failing_since.take().is_some()
    }

    /// An attempt failed at `now`. The streak starts, or, once every attempt has failed for
    /// `disable_after`, the endpoint is disabled ([`DisabledReason::Failing`]); a `410 Gone`
    /// disables it at once. True if that changed it.
    pub fn record_failure(
        &mut self,
        gone: bool,
        now: DateTime<Utc>,
        disable_after: TimeDelta,
    ) -> bool {
        if !self.enabled {
            return false;
        }
        if gone {
            self.disable(DisabledReason::Gone);
            return true;
        }
        match self.failing_since {
            None => {
                self.failing_since = Some(now);
                true
            }
            Some(since) if now.signed_duration_since(since) >= disable_after => {
                self.disable(DisabledReason::Failing);
                true
            }
            Some(_) => false,
        }
    }

    fn disable(&mut self, reason: DisabledReason) {
        self.enabled = false;
        self.disabled_reason = Some(reason);
    }

    /// The id.
    #[must_use]
    pub fn id(&self) -> EndpointId {
        self.id
    }
    /// The URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The event filter.
    #[must_use]
    pub fn events(&self) -> &EventFilter {
        &self.events
    }
    /// The description.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// Whether it receives deliveries.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// Why it is disabled, if it is.
    #[must_use]
    pub fn disabled_reason(&self) -> Option<DisabledReason> {
        self.disabled_reason
    }
    /// The current secret: show it to the host once, when it is created or rotated.
    #[must_use]
    pub fn secret(&self) -> &WebhookSecret {
        &self.secret
    }
    /// The secret before the last rotation, and until when it signs.
    #[must_use]
    pub fn retired_secret(&self) -> Option<&RetiredSecret> {
        self.retired.as_ref()
    }
    /// It receives the outbox's events after this sequence number.
    #[must_use]
    pub fn after_seq(&self) -> u64 {
        self.after_seq
    }
    /// Since when every attempt to it has failed, if they have.
    #[must_use]
    pub fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.failing_since
    }
    /// When it was created.
    #[must_use]
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// When it was deleted, if it was.
    #[must_use]
    pub fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.deleted_at
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

fn check_description(description: Option<&str>) -> Result<(), InvalidField> {
    match description {
        Some(text) => check_text("description", text, false, MAX_DESCRIPTION_CHARS),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn policy(mode: Mode) -> UrlPolicy {
        UrlPolicy {
            mode,
            allow_http: false,
            allow_private_addresses: false,
        }
    }

    #[test]
    fn urls_are_https_and_public_in_live_mode() {
        let live = policy(Mode::Live);
        assert!(live.check("https://hooks.example.com/commet").is_ok());
        for refused in [
            "http://hooks.example.com/commet",
            "https://127.0.0.1/hook",
            "https://10.0.0.8/hook",
            "https://[::1]/hook",
            "https://localhost/hook",
            "https://api.localhost./hook",
            "https://169.254.169.254/latest",
            "https://[::ffff:192.168.1.1]/hook",
            "ftp://example.com",
            "/relative",
        ] {
            let error = live.check(refused).unwrap_err();
            assert_eq!(error.field, "url", "{refused}");
        }
        let sandbox = UrlPolicy {
            allow_http: true,
            ..policy(Mode::Sandbox)
        };
        assert!(sandbox.check("http://127.0.0.1:8080/hook").is_ok());
        let allowed = UrlPolicy {
            allow_private_addresses: true,
            ..live
        };
        assert!(allowed.check("https://10.0.0.8/hook").is_ok());
    }

    fn endpoint(now: DateTime<Utc>) -> WebhookEndpoint {
        WebhookEndpoint::new(
            "we_01h455vb4pex5vsknk084sn02q".parse().unwrap(),
            NewEndpoint {
                url: "https://hooks.example.com".into(),
                events: EventFilter::Only([EventKind::PaymentFailed].into()),
                description: None,
                enabled: true,
            },
            WebhookSecret::generate().unwrap(),
            7,
            policy(Mode::Live),
            now,
        )
        .unwrap()
    }

    #[test]
    fn an_endpoint_receives_later_events_it_filters_for() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut endpoint = endpoint(now);
        assert!(endpoint.receives(8, EventKind::PaymentFailed));
        assert!(
            !endpoint.receives(7, EventKind::PaymentFailed),
            "created after it"
        );
        assert!(
            !endpoint.receives(8, EventKind::PaymentReceived),
            "filtered out"
        );
        endpoint
            .update(
                EndpointUpdate {
                    enabled: Some(false),
                    ..EndpointUpdate::default()
                },
                policy(Mode::Live),
                9,
            )
            .unwrap();
        assert!(!endpoint.receives(8, EventKind::PaymentFailed));
        assert_eq!(endpoint.disabled_reason(), Some(DisabledReason::Manual));
        // Enabled again when the outbox is at 12: it receives what comes after.
        endpoint
            .update(
                EndpointUpdate {
                    enabled: Some(true),
                    ..EndpointUpdate::default()
                },
                policy(Mode::Live),
                12,
            )
            .unwrap();
        assert!(!endpoint.receives(12, EventKind::PaymentFailed));
        assert!(endpoint.receives(13, EventKind::PaymentFailed));
    }

    #[test]
    fn failing_for_the_whole_span_disables() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut endpoint = endpoint(now);
        let span = TimeDelta::days(3);
        assert!(endpoint.record_failure(false, now, span));
        assert!(!endpoint.record_failure(false, now + TimeDelta::days(2), span));
        assert!(endpoint.record_success(), "a success ends the streak");
        assert!(endpoint.record_failure(false, now + TimeDelta::days(2), span));
        assert!(endpoint.enabled());
        assert!(endpoint.record_failure(false, now + TimeDelta::days(5), span));
        assert_eq!(endpoint.disabled_reason(), Some(DisabledReason::Failing));
        let mut gone = self::endpoint(now);
        assert!(gone.record_failure(true, now, span));
        assert_eq!(gone.disabled_reason(), Some(DisabledReason::Gone));
    }

    #[test]
    fn a_rotated_secret_signs_through_its_grace() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut endpoint = endpoint(now);
        let old = endpoint.secret().clone();
        let new = WebhookSecret::generate().unwrap();
        endpoint
            .rotate_secret(new.clone(), TimeDelta::hours(24), now)
            .unwrap();
        assert_eq!(endpoint.signing_secrets(now), vec![&new, &old]);
        assert_eq!(
            endpoint.signing_secrets(now + TimeDelta::hours(24)),
            vec![&new]
        );
    }
}
