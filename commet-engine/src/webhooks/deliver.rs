//! The delivery flow: the outbox fanned out into deliveries, due deliveries claimed, signed,
//! sent and logged. Both are a [`DeadlineSource`] of the due runner, so `run_due` and
//! `advance_to` play retry schedules exactly as real time would.
//!
//! - **Fan-out.** A stored [`DeliveryCursor`] says which events already have their
//!   deliveries. One commit creates the deliveries of a batch of events and moves the cursor
//!   at its version: a crash before the commit leaves both unwritten, a crash after leaves both
//!   written, and two workers racing conflict on the cursor (and on the unique (endpoint,
//!   event) key), so no event ever loses or doubles a delivery.
//! - **Claim.** Due deliveries are claimed a chunk of [`concurrency`](crate::WebhookConfig::concurrency)
//!   at a time, right before they are sent: each attempt is logged as in flight, with a lease
//!   (the timeout and a margin), in a commit at the delivery's version, so two workers never
//!   send a delivery at once while its lease lasts. A worker that dies (or overruns its lease)
//!   leaves the attempt in flight; when the lease runs out the delivery is due again, and the
//!   next claim logs the dead attempt as `interrupted` (an answer that comes back later is not
//!   logged: delivery is at least once). A delivery that cannot be claimed (its event missing,
//!   an event that does not sign) is reported in
//!   [`RunReport::webhook_failures`](crate::RunReport::webhook_failures) and left for the next
//!   run; the others go on.
//! - **Send and log.** The transport sends the signed requests of a batch, up to
//!   [`concurrency`](crate::WebhookConfig::concurrency) at once; their outcomes are committed
//!   in one commit with the endpoints' streaks or disabling, at versions. After a lost race
//!   (another worker took over a claim whose lease ran out, or changed an endpoint) each is
//!   logged on its own from fresh reads; an attempt no longer in flight was logged as
//!   interrupted by the worker that took it over.
//!
//! Without a transport ([`Billing::with_transport`](crate::Billing::with_transport)) both
//! sources have nothing to do: no endpoint can be registered, and nothing is fanned out.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commet_core::delivery::{
    AttemptOutcome, AttemptResult, Delivery, DeliveryStatus, EndpointSignal, WebhookEndpoint,
    deliveries_for,
};
use commet_core::event::Envelope;
use commet_core::ids::{DeliveryId, EndpointId};
use commet_core::webhook::sign_delivery;
use futures_util::StreamExt as _;

use super::transport::{Transport, WebhookRequest};
use crate::billing::{Billing, MAX_RUNS};
use crate::deadline::DeadlineSource;
use crate::error::{BillingError, Result};
use crate::run_report::{RunReport, WebhookFailure};
use crate::store::{ChangeSet, DeliveryCursor, DeliveryQuery, Put, StoreError, every_page};

/// The outbox's events not yet fanned out into deliveries.
#[derive(Debug)]
pub(crate) struct FanOut;

#[async_trait]
impl DeadlineSource for FanOut {
    async fn next_deadline(&self, billing: &Billing) -> Result<Option<DateTime<Utc>>> {
        let Some(start) = fan_out_start(billing).await? else {
            return Ok(None);
        };
        let next = billing.store.events_after(start.after, 1).await?;
        Ok(next.first().map(|event| event.envelope.timestamp))
    }

    async fn run(&self, billing: &Billing, report: &mut RunReport) -> Result<()> {
        for _ in 0..MAX_RUNS {
            match fan_out(billing, report).await {
                Err(error) if error.is_conflict() => {}
                Err(BillingError::Store(error)) if is_taken(&error) => {}
                done => return done,
            }
        }
        Err(BillingError::Contention {
            what: "the webhook delivery cursor".into(),
        })
    }
}

/// A delivery for an (endpoint, event) that has one.
fn is_taken(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::AlreadyExists {
            kind: crate::store::EntityKind::Delivery,
            ..
        }
    )
}

/// Where fan-out stands: the cursor, and the sequence number fan-out continues after (the
/// cursor, or the oldest live endpoint's `after_seq` if that is later: no endpoint receives
/// the events before it). `None` when no endpoint is live (or there is no transport).
struct FanOutStart {
    cursor: DeliveryCursor,
    after: u64,
}

async fn fan_out_start(billing: &Billing) -> Result<Option<FanOutStart>> {
    if billing.transport.is_none() {
        return Ok(None);
    }
    let endpoints = billing.store.webhook_endpoints().await?;
    let Some(oldest) = endpoints
        .iter()
        .filter(|endpoint| endpoint.is_live())
        .map(WebhookEndpoint::after_seq)
        .min()
    else {
        return Ok(None);
    };
    let cursor = billing.store.delivery_cursor().await?;
    Ok(Some(FanOutStart {
        after: cursor.seq.max(oldest),
        cursor,
    }))
}

/// Fan out batches of events until the outbox is covered.
async fn fan_out(billing: &Billing, report: &mut RunReport) -> Result<()> {
    while let Some(FanOutStart { cursor, after, .. }) = fan_out_start(billing).await? {
        let events = billing
            .store
            .events_after(after, billing.config().batch_size)
            .await?;
        let Some(last) = events.last().map(|event| event.seq) else {
            return Ok(());
        };
        // The endpoints are read after the events: an endpoint registered since is seen, so
        // no event committed after an endpoint's registration is fanned out without it.
        let endpoints = billing.store.webhook_endpoints().await?;
        let now = billing.now();
        let mut deliveries: Vec<Delivery> = events
            .iter()
            .flat_map(|event| {
                deliveries_for(&event.envelope, event.seq, &endpoints, &billing.ids, now)
            })
            .collect();
        let commit = |deliveries: &[Delivery]| ChangeSet {
            deliveries: deliveries.iter().cloned().map(Put::of).collect(),
            delivery_cursor: Some(Put::of(DeliveryCursor {
                seq: last,
                version: cursor.version,
            })),
            ..ChangeSet::default()
        };
        if let Err(error) = billing.store.commit(commit(&deliveries)).await {
            if !is_taken(&error) {
                return Err(error.into());
            }
            // Some of these deliveries exist already: queued by hand (`redeliver_range`) for
            // events not fanned out yet. They stand; the rest are created with the cursor.
            let mut existing = HashSet::new();
            for event in &events {
                let query = DeliveryQuery {
                    event: Some(event.envelope.id),
                    ..DeliveryQuery::default()
                };
                for delivery in every_page(|page| billing.store.deliveries(query, page)).await? {
                    existing.insert((delivery.endpoint(), delivery.event()));
                }
            }
            deliveries.retain(|d| !existing.contains(&(d.endpoint(), d.event())));
            billing.store.commit(commit(&deliveries)).await?;
        }
        report.deliveries_created += deliveries.len() as u64;
        report.events_fanned_out += events.len() as u64;
        report.commits += 1;
    }
    Ok(())
}

/// Deliveries due now: claimed, sent, logged.
#[derive(Debug)]
pub(crate) struct DueDeliveries;

#[async_trait]
impl DeadlineSource for DueDeliveries {
    async fn next_deadline(&self, billing: &Billing) -> Result<Option<DateTime<Utc>>> {
        if billing.transport.is_none() {
            return Ok(None);
        }
        let next = billing
            .store
            .due_deliveries(DateTime::<Utc>::MAX_UTC, 1)
            .await?;
        Ok(next
            .first()
            .and_then(commet_core::delivery::Delivery::next_attempt_at))
    }

    async fn run(&self, billing: &Billing, report: &mut RunReport) -> Result<()> {
        let Some(transport) = billing.transport.clone() else {
            return Ok(());
        };
        let mut seen: HashSet<DeliveryId> = HashSet::new();
        loop {
            let now = billing.now();
            let due: Vec<Delivery> = billing
                .store
                .due_deliveries(now, billing.config().batch_size + seen.len())
                .await?
                .into_iter()
                .filter(|delivery| seen.insert(delivery.id()))
                .take(billing.config().batch_size)
                .collect();
            if due.is_empty() {
                return Ok(());
            }
            // Claimed a chunk at a time, right before it is sent: a claim's lease (the
            // timeout and a margin) covers its own send, and its signatures are fresh.
            let mut due = due.into_iter().peekable();
            while due.peek().is_some() {
                let chunk: Vec<Delivery> = due
                    .by_ref()
                    .take(billing.config().webhooks.concurrency)
                    .collect();
                let claimed = claim_batch(billing, chunk, billing.now(), report).await?;
                if claimed.is_empty() {
                    continue;
                }
                let sent = send_all(billing, &transport, claimed).await;
                complete_all(billing, sent, report).await?;
            }
        }
    }
}

/// An attempt claimed: the delivery as stored after the claim, and what to send.
#[derive(Debug)]
pub(crate) struct Claim {
    delivery: Delivery,
    number: u32,
    request: WebhookRequest,
}

/// Claim a batch in one commit (deliveries to endpoints no longer live are failed instead);
/// if another worker changed one meanwhile, claim them one by one, skipping those taken.
async fn claim_batch(
    billing: &Billing,
    due: Vec<Delivery>,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<Vec<Claim>> {
    let endpoints: HashMap<EndpointId, WebhookEndpoint> = billing
        .store
        .webhook_endpoints()
        .await?
        .into_iter()
        .map(|endpoint| (endpoint.id(), endpoint))
        .collect();
    let mut changes = ChangeSet::default();
    let mut claims = Vec::new();
    let mut events = EventCache::default();
    let mut refused = Vec::new();
    for delivery in &due {
        match claim_one(
            billing,
            delivery.clone(),
            &endpoints,
            &mut events,
            now,
            &mut changes,
            report,
        )
        .await
        {
            Ok(claim) => claims.extend(claim),
            Err(error) if error.is_conflict() => return Err(error),
            Err(error) => refused.push(WebhookFailure {
                delivery: delivery.id(),
                error,
            }),
        }
    }
    report.webhook_failures.extend(refused);
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    match billing.store.commit(changes).await {
        Ok(_) => {
            report.commits += 1;
            Ok(stored(claims))
        }
        Err(error) if error.is_conflict() => {
            // One by one, from fresh reads: each commit claims one or finds it taken.
            let mut claims = Vec::new();
            for delivery in due {
                let Some(fresh) = billing.store.delivery(delivery.id()).await? else {
                    continue;
                };
                if !fresh.is_due(now) {
                    continue;
                }
                let mut changes = ChangeSet::default();
                let claim = match claim_one(
                    billing,
                    fresh,
                    &endpoints,
                    &mut events,
                    now,
                    &mut changes,
                    report,
                )
                .await
                {
                    Ok(claim) => claim,
                    Err(error) => {
                        report.webhook_failures.push(WebhookFailure {
                            delivery: delivery.id(),
                            error,
                        });
                        continue;
                    }
                };
                match billing.store.commit(changes).await {
                    Ok(_) => {
                        report.commits += 1;
                        claims.extend(claim);
                    }
                    Err(error) if error.is_conflict() => {}
                    Err(error) => return Err(error.into()),
                }
            }
            Ok(stored(claims))
        }
        Err(error) => Err(error.into()),
    }
}

/// The claims with their deliveries at the version the claim commit gave them.
fn stored(claims: Vec<Claim>) -> Vec<Claim> {
    claims
        .into_iter()
        .map(|mut claim| {
            claim.delivery = Put::of(claim.delivery).stored();
            claim
        })
        .collect()
}

/// Claim `delivery` into `changes` and build its request; a delivery to an endpoint no longer
/// live is failed instead (`None`).
async fn claim_one(
    billing: &Billing,
    mut delivery: Delivery,
    endpoints: &HashMap<EndpointId, WebhookEndpoint>,
    events: &mut EventCache,
    now: DateTime<Utc>,
    changes: &mut ChangeSet,
    report: &mut RunReport,
) -> Result<Option<Claim>> {
    let Some(endpoint) = endpoints
        .get(&delivery.endpoint())
        .filter(|endpoint| endpoint.is_live())
    else {
        delivery.cancel_for_endpoint()?;
        changes.deliveries.push(Put::of(delivery));
        report.webhooks_failed += 1;
        return Ok(None);
    };
    let (envelope, body) = events.get(billing, delivery.event_seq()).await?;
    let number = delivery.claim(now, billing.config().webhooks.lease())?;
    let request = signed_request(billing, endpoint, envelope, body.to_vec(), now)?;
    changes.deliveries.push(Put::of(delivery.clone()));
    Ok(Some(Claim {
        delivery,
        number,
        request,
    }))
}

/// The request of one attempt to `endpoint` of `envelope` (whose JSON is `body`), signed at
/// `now` with the secrets signing then.
pub(crate) fn signed_request(
    billing: &Billing,
    endpoint: &WebhookEndpoint,
    envelope: &Envelope,
    body: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<WebhookRequest> {
    let config = &billing.config().webhooks;
    let headers = sign_delivery(
        &envelope.id.to_string(),
        envelope.event.kind().as_str(),
        envelope.timestamp,
        &body,
        now,
        &endpoint.signing_secrets(now),
    )?;
    Ok(WebhookRequest {
        url: endpoint.url().to_owned(),
        headers: headers.into_vec(),
        body,
        timeout: config
            .timeout
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(10)),
        allow_private_addresses: config
            .url_policy(billing.config().mode)
            .private_addresses_allowed(),
    })
}

/// The envelope as JSON: the exact bytes a delivery sends and signs.
pub(crate) fn envelope_json(envelope: &Envelope) -> Result<Vec<u8>> {
    Ok(envelope
        .to_json()
        .map_err(|e| BillingError::Internal {
            reason: format!("an event does not serialize: {e}"),
        })?
        .into_bytes())
}

/// The outbox events a batch delivers, each read and serialized once.
#[derive(Default)]
struct EventCache(HashMap<u64, (Envelope, Vec<u8>)>);

impl EventCache {
    /// The event at `seq`, with its JSON.
    async fn get(&mut self, billing: &Billing, seq: u64) -> Result<(&Envelope, &[u8])> {
        if let Entry::Vacant(slot) = self.0.entry(seq) {
            let envelope = billing
                .store
                .events_after(seq.saturating_sub(1), 1)
                .await?
                .into_iter()
                .find(|event| event.seq == seq)
                .map(|event| event.envelope)
                .ok_or_else(|| BillingError::Internal {
                    reason: format!("a delivery names event {seq}, which is not in the outbox"),
                })?;
            let body = envelope_json(&envelope)?;
            slot.insert((envelope, body));
        }
        self.0
            .get(&seq)
            .map(|(envelope, body)| (envelope, body.as_slice()))
            .ok_or_else(|| BillingError::Internal {
                reason: "an event vanished from the cache".into(),
            })
    }
}

/// Send every claimed request, up to the configured number at once.
async fn send_all(
    billing: &Billing,
    transport: &Arc<dyn Transport>,
    claims: Vec<Claim>,
) -> Vec<(Claim, AttemptResult)> {
    futures_util::stream::iter(claims)
        .map(|claim| async move {
            let result = send(transport.as_ref(), claim.request.clone()).await;
            (claim, result)
        })
        .buffered(billing.config().webhooks.concurrency)
        .collect()
        .await
}

/// Send one request and describe what came back.
pub(crate) async fn send(transport: &dyn Transport, request: WebhookRequest) -> AttemptResult {
    match transport.send(request).await {
        Ok(response) => AttemptResult {
            outcome: AttemptOutcome::Response {
                status: response.status,
                body: String::from_utf8_lossy(&response.body).into_owned(),
            },
            retry_after: response.retry_after,
            latency: response.latency,
        },
        Err(failure) => AttemptResult {
            outcome: AttemptOutcome::NoResponse {
                error: failure.kind.as_str().to_owned(),
                message: failure.message,
            },
            retry_after: None,
            latency: failure.latency,
        },
    }
}

/// Sent attempts' outcomes, as one change set: each delivery completed, and its endpoint's
/// streak (or disabling) when that changed.
struct Logged {
    changes: ChangeSet,
    delivered: u64,
    failed: u64,
}

/// Apply each `(delivery, attempt number, result)` to its delivery and to its endpoint (from
/// `endpoints`) at `now`. A delivery whose attempt is no longer in flight (another worker took
/// the claim over after its lease and logged it as interrupted) is left out.
fn log_outcomes(
    sent: &[(Delivery, u32, AttemptResult)],
    endpoints: Vec<WebhookEndpoint>,
    now: DateTime<Utc>,
    config: &crate::WebhookConfig,
) -> Result<Logged> {
    let mut endpoints: HashMap<EndpointId, (WebhookEndpoint, bool)> = endpoints
        .into_iter()
        .map(|endpoint| (endpoint.id(), (endpoint, false)))
        .collect();
    let mut logged = Logged {
        changes: ChangeSet::default(),
        delivered: 0,
        failed: 0,
    };
    for (delivery, number, result) in sent {
        if delivery
            .in_flight()
            .is_none_or(|attempt| attempt.number != *number)
        {
            continue;
        }
        let mut updated = delivery.clone();
        let signal = updated.complete(*number, result.clone(), now, &config.retry_schedule)?;
        if let Some((endpoint, changed)) = endpoints.get_mut(&updated.endpoint()) {
            *changed |= match signal {
                EndpointSignal::Succeeded => endpoint.record_success(),
                EndpointSignal::Failed { gone } => {
                    endpoint.record_failure(gone, now, config.disable_after)
                }
            };
        }
        match (signal, updated.status()) {
            (EndpointSignal::Succeeded, _) => logged.delivered += 1,
            (_, DeliveryStatus::Failed) => logged.failed += 1,
            _ => {}
        }
        logged.changes.deliveries.push(Put::of(updated));
    }
    logged.changes.endpoints = endpoints
        .into_values()
        .filter(|(_, changed)| *changed)
        .map(|(endpoint, _)| Put::of(endpoint))
        .collect();
    Ok(logged)
}

/// Log a batch of sent attempts in one commit; if another writer changed one of the rows
/// meanwhile, log them one by one from fresh reads.
async fn complete_all(
    billing: &Billing,
    sent: Vec<(Claim, AttemptResult)>,
    report: &mut RunReport,
) -> Result<()> {
    if sent.is_empty() {
        return Ok(());
    }
    report.webhook_attempts += sent.len() as u64;
    let sent: Vec<(Delivery, u32, AttemptResult)> = sent
        .into_iter()
        .map(|(claim, result)| (claim.delivery, claim.number, result))
        .collect();
    let config = &billing.config().webhooks;
    let logged = log_outcomes(
        &sent,
        billing.store.webhook_endpoints().await?,
        billing.now(),
        config,
    )?;
    match billing.store.commit(logged.changes).await {
        Ok(_) => {
            report.commits += 1;
            report.webhooks_delivered += logged.delivered;
            report.webhooks_failed += logged.failed;
            Ok(())
        }
        Err(error) if error.is_conflict() => {
            for (delivery, number, result) in sent {
                complete_one(billing, delivery.id(), number, result, report).await?;
            }
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Log one attempt's outcome from fresh reads of its delivery and endpoint, again on a lost
/// race.
async fn complete_one(
    billing: &Billing,
    id: DeliveryId,
    number: u32,
    result: AttemptResult,
    report: &mut RunReport,
) -> Result<()> {
    let config = &billing.config().webhooks;
    for _ in 0..MAX_RUNS {
        let Some(delivery) = billing.store.delivery(id).await? else {
            return Ok(());
        };
        let endpoints = billing.store.webhook_endpoints().await?;
        let sent = [(delivery, number, result.clone())];
        let logged = log_outcomes(&sent, endpoints, billing.now(), config)?;
        if logged.changes.deliveries.is_empty() {
            return Ok(());
        }
        match billing.store.commit(logged.changes).await {
            Ok(_) => {
                report.commits += 1;
                report.webhooks_delivered += logged.delivered;
                report.webhooks_failed += logged.failed;
                return Ok(());
            }
            Err(error) if error.is_conflict() => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(BillingError::Contention {
        what: format!("delivery {id}"),
    })
}

/// Claim, send and log one delivery now (a redelivery by hand): the delivery as it is after.
pub(crate) async fn deliver_now(billing: &Billing, id: DeliveryId) -> Result<Delivery> {
    let transport = billing.transport.clone().ok_or(BillingError::NoTransport)?;
    let now = billing.now();
    let mut report = RunReport::default();
    let Some(delivery) = billing.store.delivery(id).await? else {
        return Err(BillingError::not_found(
            crate::store::EntityKind::Delivery,
            id,
        ));
    };
    if delivery.is_due(now) {
        let claims = claim_batch(billing, vec![delivery], now, &mut report).await?;
        let sent = send_all(billing, &transport, claims).await;
        complete_all(billing, sent, &mut report).await?;
    }
    billing
        .store
        .delivery(id)
        .await?
        .ok_or_else(|| BillingError::not_found(crate::store::EntityKind::Delivery, id))
}
