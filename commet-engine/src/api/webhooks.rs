//! Webhook endpoints and their deliveries: register, list, update, delete, rotate the secret,
//! send a test event; list deliveries with their attempt logs; redeliver by hand.
//!
//! Decisions: an endpoint is never removed from the store: [`Webhooks::delete`] marks it
//! deleted, so its delivery log stays readable, and its pending deliveries are failed when
//! due. Attempts are listed with their delivery ([`Delivery::attempts`]): one delivery per
//! (endpoint, event) holds every attempt made for it, so listing deliveries by endpoint or by
//! event lists their attempts. A test event (`webhook.test`) is sent at once to one endpoint,
//! signed like any delivery, and is not in the outbox or the delivery log.

use commet_core::delivery::{Delivery, EndpointUpdate, NewEndpoint, WebhookEndpoint};
use commet_core::event::{Envelope, Event, payload::WebhookTestData};
use commet_core::ids::{DeliveryId, EndpointId};
use commet_core::webhook::WebhookSecret;

use crate::billing::{Billing, MAX_RUNS};
use crate::error::{BillingError, Result};
use crate::store::{
    ChangeSet, DeliveryQuery, EntityKind, Page, PageRequest, Put, StoreError, every_page,
};
use crate::webhooks::deliver::{deliver_now, envelope_json, send, signed_request};
use crate::webhooks::transport::{Transport, WebhookRequest};
use commet_core::delivery::AttemptResult;

/// Webhook endpoints and deliveries. From [`Billing::webhooks`].
#[derive(Debug, Clone, Copy)]
pub struct Webhooks<'a> {
    billing: &'a Billing,
}

/// What a test event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDelivery {
    /// The envelope sent.
    pub envelope: Envelope,
    /// The request sent (URL, signed headers, body).
    pub request: WebhookRequest,
    /// What came back.
    pub result: AttemptResult,
}

impl<'a> Webhooks<'a> {
    pub(crate) fn new(billing: &'a Billing) -> Webhooks<'a> {
        Webhooks { billing }
    }

    fn transport(self) -> Result<&'a dyn Transport> {
        self.billing
            .transport
            .as_deref()
            .ok_or(BillingError::NoTransport)
    }

    /// Register an endpoint with a fresh secret ([`WebhookEndpoint::secret`]: show it to the
    /// host now). It receives the events committed after it is registered that its filter
    /// lets through (an event committed while it is being registered may or may not reach it;
    /// [`redeliver_range`](Webhooks::redeliver_range) sends any earlier ones).
    /// The URL must be `https` (or `http` where [`WebhookConfig::allow_http`](crate::WebhookConfig::allow_http)),
    /// and in live mode not a private or loopback address (unless allowed).
    pub async fn create(&self, new: NewEndpoint) -> Result<WebhookEndpoint> {
        self.transport()?;
        let billing = self.billing;
        let now = billing.now();
        let after_seq = billing.store.last_event_seq().await?;
        let endpoint = WebhookEndpoint::new(
            billing.ids.next(now),
            new,
            WebhookSecret::generate()?,
            after_seq,
            self.policy(),
            now,
        )?;
        let put = Put::of(endpoint);
        let stored = put.stored();
        billing
            .store
            .commit(ChangeSet {
                endpoints: vec![put],
                ..ChangeSet::default()
            })
            .await?;
        Ok(stored)
    }

    fn policy(self) -> commet_core::delivery::UrlPolicy {
        let config = self.billing.config();
        config.webhooks.url_policy(config.mode)
    }

    /// Every endpoint not deleted, oldest first.
    pub async fn list(&self) -> Result<Vec<WebhookEndpoint>> {
        let mut endpoints = self.billing.store.webhook_endpoints().await?;
        endpoints.retain(|endpoint| endpoint.deleted_at().is_none());
        Ok(endpoints)
    }

    /// An endpoint (a deleted one is not found).
    pub async fn get(&self, id: EndpointId) -> Result<WebhookEndpoint> {
        self.billing
            .store
            .webhook_endpoints()
            .await?
            .into_iter()
            .find(|endpoint| endpoint.id() == id && endpoint.deleted_at().is_none())
            .ok_or_else(|| BillingError::not_found(EntityKind::WebhookEndpoint, id))
    }

    /// Change an endpoint's URL, filter, description or enabled flag. Enabling a disabled
    /// endpoint clears why it was disabled and its failure streak.
    pub async fn update(&self, id: EndpointId, update: EndpointUpdate) -> Result<WebhookEndpoint> {
        let policy = self.policy();
        let last_seq = self.billing.store.last_event_seq().await?;
        self.change(id, |endpoint, _| {
            Ok(endpoint.update(update.clone(), policy, last_seq)?)
        })
        .await
    }

    /// Delete an endpoint: it receives nothing more; its deliveries stay listed.
    pub async fn delete(&self, id: EndpointId) -> Result<WebhookEndpoint> {
        self.change(id, |endpoint, now| {
            endpoint.delete(now);
            Ok(())
        })
        .await
    }

    /// Sign with a fresh secret from now on (returned in the endpoint); the old one keeps
    /// signing beside it for [`WebhookConfig::rotation_grace`](crate::WebhookConfig::rotation_grace)
    /// (24 hours by default), so receivers can switch without missing a delivery.
    pub async fn rotate_secret(&self, id: EndpointId) -> Result<WebhookEndpoint> {
        let grace = self.billing.config().webhooks.rotation_grace;
        self.change(id, |endpoint, now| {
            Ok(endpoint.rotate_secret(WebhookSecret::generate()?, grace, now)?)
        })
        .await
    }

    /// Read, change and commit an endpoint at its version, again on a lost race.
    async fn change(
        &self,
        id: EndpointId,
        edit: impl Fn(&mut WebhookEndpoint, chrono::DateTime<chrono::Utc>) -> Result<()>,
    ) -> Result<WebhookEndpoint> {
        for _ in 0..MAX_RUNS {
            let mut endpoint = self.get(id).await?;
            let now = self.billing.now();
            edit(&mut endpoint, now)?;
            let put = Put::of(endpoint);
            let stored = put.stored();
            match self
                .billing
                .store
                .commit(ChangeSet {
                    endpoints: vec![put],
                    ..ChangeSet::default()
                })
                .await
            {
                Ok(_) => return Ok(stored),
                Err(error) if error.is_conflict() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(BillingError::Contention {
            what: format!("webhook endpoint {id}"),
        })
    }

    /// Send a `webhook.test` event to an endpoint now, signed like a delivery, and answer what
    /// came back. Nothing is stored.
    pub async fn send_test(&self, id: EndpointId) -> Result<TestDelivery> {
        let transport = self.transport()?;
        let endpoint = self.get(id).await?;
        let billing = self.billing;
        let now = billing.now();
        let envelope = billing
            .envelopes(
                [Event::WebhookTest(WebhookTestData {
                    endpoint_id: id,
                    message: "A test event from commet: this endpoint receives deliveries.".into(),
                })],
                now,
            )
            .into_iter()
            .next()
            .ok_or_else(|| BillingError::Internal {
                reason: "no envelope for the test event".into(),
            })?;
        let body = envelope_json(&envelope)?;
        let request = signed_request(billing, &endpoint, &envelope, body, now)?;
        let result = send(transport, request.clone()).await;
        Ok(TestDelivery {
            envelope,
            request,
            result,
        })
    }

    /// Deliveries matching `query` (by endpoint, event, status), newest first, each with its
    /// attempt log.
    pub async fn deliveries(
        &self,
        query: DeliveryQuery,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        Ok(self.billing.store.deliveries(query, page).await?)
    }

    /// A delivery with its attempt log.
    pub async fn delivery(&self, id: DeliveryId) -> Result<Delivery> {
        self.billing
            .store
            .delivery(id)
            .await?
            .ok_or_else(|| BillingError::not_found(EntityKind::Delivery, id))
    }

    /// Send a delivery again now, by hand: the same event id, a fresh timestamp and fresh
    /// signatures, and a new round of the retry schedule if it fails. Answers the delivery
    /// after the attempt. An attempt in flight is left to finish.
    pub async fn redeliver(&self, id: DeliveryId) -> Result<Delivery> {
        self.transport()?;
        let delivery = self.delivery(id).await?;
        self.live(delivery.endpoint()).await?;
        self.requeue(id).await?;
        deliver_now(self.billing, id).await
    }

    /// The endpoint `id`, which must be enabled (a disabled one receives nothing, so nothing is
    /// queued for it).
    async fn live(&self, id: EndpointId) -> Result<WebhookEndpoint> {
        let endpoint = self.get(id).await?;
        endpoint.check_live()?;
        Ok(endpoint)
    }

    /// Queue an endpoint's events with sequence numbers in `from..=to` for delivery again (a
    /// delivery that exists starts a new round; an event that has none, such as one from
    /// before the endpoint existed, gets one if the endpoint's filter lets it through). The
    /// next `run_due` sends them. Answers how many were queued.
    pub async fn redeliver_range(&self, endpoint: EndpointId, from: u64, to: u64) -> Result<u64> {
        self.transport()?;
        if from == 0 || from > to {
            return Err(commet_core::InvalidField::new(
                "from",
                "must be at least 1 and at most `to`",
            )
            .into());
        }
        let billing = self.billing;
        let target = self.live(endpoint).await?;
        let mut queued = 0;
        let mut after = from - 1;
        while after < to {
            let limit = usize::try_from(to - after)
                .unwrap_or(usize::MAX)
                .min(billing.config().batch_size);
            let events = billing.store.events_after(after, limit).await?;
            let Some(last) = events.last().map(|event| event.seq) else {
                break;
            };
            for event in events.iter().filter(|event| event.seq <= to) {
                if !target.events().matches(event.envelope.event.kind()) {
                    continue;
                }
                let query = DeliveryQuery {
                    endpoint: Some(endpoint),
                    event: Some(event.envelope.id),
                    status: None,
                };
                let existing = every_page(|page| billing.store.deliveries(query, page)).await?;
                if let Some(delivery) = existing.into_iter().next() {
                    self.requeue(delivery.id()).await?;
                } else {
                    let now = billing.now();
                    let delivery = Delivery::new(
                        billing.ids.next(now),
                        endpoint,
                        event.envelope.id,
                        event.seq,
                        event.envelope.event.kind(),
                        now,
                    );
                    let created = billing
                        .store
                        .commit(ChangeSet {
                            deliveries: vec![Put::of(delivery)],
                            ..ChangeSet::default()
                        })
                        .await;
                    match created {
                        Ok(_) => {}
                        // Fanned out meanwhile: queue that one again instead.
                        Err(StoreError::AlreadyExists { .. }) => {
                            let made =
                                every_page(|page| billing.store.deliveries(query, page)).await?;
                            if let Some(delivery) = made.into_iter().next() {
                                self.requeue(delivery.id()).await?;
                            }
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                queued += 1;
            }
            after = last;
        }
        Ok(queued)
    }

    /// Start a new round of delivery `id` now, at its version, again on a lost race.
    async fn requeue(&self, id: DeliveryId) -> Result<()> {
        for _ in 0..MAX_RUNS {
            let mut delivery = self.delivery(id).await?;
            delivery.redeliver(self.billing.now())?;
            match self
                .billing
                .store
                .commit(ChangeSet {
                    deliveries: vec![Put::of(delivery)],
                    ..ChangeSet::default()
                })
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) if error.is_conflict() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(BillingError::Contention {
            what: format!("delivery {id}"),
        })
    }
}
