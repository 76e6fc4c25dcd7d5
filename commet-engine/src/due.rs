//! The due runner: every deadline, from every source, in time order.
//!
//! A [`DeadlineSource`] knows its earliest deadline and does the work due at the current
//! instant. [`Billing::run_due`] runs every source once; [`Billing::advance_to`] moves a test
//! clock from deadline to deadline (the earliest of all sources each time), running the due
//! work at each, so a simulated year produces exactly the timeline a real one would. The
//! sources:
//!
//! | source | deadline | work |
//! |---|---|---|
//! | abandoned charges | a pending attempt's `created_at` + [`recovery_grace`](crate::BillingConfig::recovery_grace) | charge again with the same key, settle |
//! | subscriptions | [`Subscription::due_work`] (the stores' due index) | what [`Subscription::due_step`] says: a decision, or a charge |
//! | webhook fan-out | the first outbox event without its deliveries | one delivery per event and endpoint that receives it ([`crate::webhooks`]) |
//! | webhook deliveries | a pending delivery's next attempt | claim, sign, send, log; retry on the schedule |
//!
//! Each source's work is done in batches of
//! [`batch_size`](crate::BillingConfig::batch_size); a batch of subscriptions takes two commits
//! (their decisions and charge intents, then the charges' outcomes) whatever its size.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commet_core::customer::Customer;
use commet_core::ids::{CustomerId, SubscriptionId};
use commet_core::payment::{ChargePurpose, PaymentAttempt};
use commet_core::subscription::{Command, Context, DueStep, Subscription, SubscriptionError};

use crate::billing::Billing;
use crate::billing::MAX_RUNS;
use crate::charges::Recorded;
use crate::deadline::DeadlineSource;
use crate::error::{BillingError, Result};
use crate::run_report::{DueFailure, RunReport};
use crate::store::{EntityKind, StoreExt};
use crate::webhooks::deliver::{DueDeliveries, FanOut};
use crate::writes::Writes;

/// The sources, in the order a run visits them: charges a crash abandoned first, so the
/// subscriptions they block are free again for their own due work; then the events all of
/// that committed are fanned out into webhook deliveries, and the deliveries due are sent.
fn sources() -> [&'static dyn DeadlineSource; 4] {
    [
        &AbandonedCharges,
        &SubscriptionWork,
        &FanOut,
        &DueDeliveries,
    ]
}

impl Billing {
    /// Run every piece of work due now, from every source of deadlines, in batches of
    /// [`batch_size`](crate::BillingConfig::batch_size):
    ///
    /// | source | deadline | work |
    /// |---|---|---|
    /// | abandoned charges | a pending attempt's `created_at` + [`recovery_grace`](crate::BillingConfig::recovery_grace) | charge again with the same key, settle |
    /// | subscriptions | [`Subscription::due_work`](commet_core::subscription::Subscription::due_work) (the stores' due index) | what [`Subscription::due_step`](commet_core::subscription::Subscription::due_step) says: a decision, or a charge |
    /// | webhook fan-out | the first outbox event without its deliveries | one delivery per event and endpoint that receives it |
    /// | webhook deliveries | a pending delivery's next attempt | claim, sign, send, log; retry on the schedule |
    ///
    /// A batch of subscriptions takes two commits (their decisions and charge intents, then
    /// the charges' outcomes) whatever its size. A subscription whose due work the domain
    /// refuses is left as it is and reported in [`RunReport::failures`]. Call it from one
    /// worker loop every minute or so; several workers (processes, machines) may run it on one
    /// store at once.
    pub async fn run_due(&self) -> Result<RunReport> {
        run_due(self).await
    }

    /// Move the engine's clock (a [`TestClock`](commet_core::clock::TestClock)) forward to
    /// `until`, stopping at every deadline on the way (renewals, trial reminders and ends,
    /// dunning retries, scheduled changes, checkout expiry, abandoned charges) and running the
    /// due work there, so a simulated year produces exactly the timeline a real one would. An
    /// engine on the wall clock refuses with
    /// [`ClockError::NotSettable`](commet_core::clock::ClockError::NotSettable).
    pub async fn advance_to(&self, until: DateTime<Utc>) -> Result<RunReport> {
        advance_to(self, until).await
    }
}

/// Run every source's due work once.
async fn run_due(billing: &Billing) -> Result<RunReport> {
    let mut report = RunReport::default();
    for source in sources() {
        source.run(billing, &mut report).await?;
    }
    Ok(report)
}

/// Move the clock from deadline to deadline up to `until`. See [`Billing::advance_to`].
async fn advance_to(billing: &Billing, until: DateTime<Utc>) -> Result<RunReport> {
    let mut report = RunReport::default();
    loop {
        let now = billing.now();
        let mut next: Option<DateTime<Utc>> = None;
        for source in sources() {
            if let Some(deadline) = source.next_deadline(billing).await? {
                next = Some(next.map_or(deadline, |earliest| earliest.min(deadline)));
            }
        }
        let target = match next {
            Some(deadline) if deadline <= until => deadline.max(now),
            _ => until,
        };
        billing.move_clock(target)?;
        let run = run_due(billing).await?;
        let worked = run.did_work();
        report.merge(run);
        // Work that cannot progress now (a charge the provider does not answer, a refused
        // step) does not hold time back: the clock moves on to `until`.
        if target == until || (!worked && target == now) {
            if target != until {
                billing.move_clock(until)?;
                report.merge(run_due(billing).await?);
            }
            return Ok(report);
        }
    }
}

/// Charges a process recorded and never settled (it died): charged again with the same key
/// once they are older than the recovery grace, and settled.
#[derive(Debug)]
struct AbandonedCharges;

#[async_trait]
impl DeadlineSource for AbandonedCharges {
    async fn next_deadline(&self, billing: &Billing) -> Result<Option<DateTime<Utc>>> {
        let oldest = billing
            .store
            .pending_payment_attempts(DateTime::<Utc>::MAX_UTC, 1)
            .await?;
        Ok(oldest
            .first()
            .and_then(|attempt| attempt.abandoned_at(billing.config().recovery_grace)))
    }

    async fn run(&self, billing: &Billing, report: &mut RunReport) -> Result<()> {
        // Before the first instant plus the grace, no charge can be abandoned yet.
        let Some(cutoff) = billing
            .now()
            .checked_sub_signed(billing.config().recovery_grace)
        else {
            return Ok(());
        };
        let mut tried = HashSet::new();
        loop {
            let pending = billing
                .store
                .pending_payment_attempts(cutoff, billing.config().batch_size + tried.len())
                .await?;
            let fresh: Vec<PaymentAttempt> = pending
                .into_iter()
                .filter(|attempt| tried.insert(attempt.idempotency_key()))
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            for attempt in &fresh {
                let Ok(result) = billing.call_gateway(attempt).await else {
                    report.charges_unresolved += 1;
                    continue;
                };
                // Settled by someone else meanwhile: nothing to do.
                if let Ok(recorded) = billing.read_charge(&attempt.idempotency_key()).await? {
                    billing.settle(recorded, &result, None).await?;
                    report.count_result(&result);
                    report.recovered += 1;
                    report.commits += 1;
                }
            }
        }
    }
}

/// The subscriptions' own deadlines: renewals, trial reminders and ends, scheduled changes,
/// dunning retries and exhaustion, checkout expiry.
#[derive(Debug)]
struct SubscriptionWork;

#[async_trait]
impl DeadlineSource for SubscriptionWork {
    async fn next_deadline(&self, billing: &Billing) -> Result<Option<DateTime<Utc>>> {
        Ok(billing.store.next_due_at().await?)
    }

    async fn run(&self, billing: &Billing, report: &mut RunReport) -> Result<()> {
        let mut skipped: HashSet<SubscriptionId> = HashSet::new();
        loop {
            let now = billing.now();
            let batch: Vec<Subscription> = billing
                .store
                .due(now, billing.config().batch_size + skipped.len())
                .await?
                .into_iter()
                .filter(|subscription| !skipped.contains(&subscription.id()))
                .take(billing.config().batch_size)
                .collect();
            if batch.is_empty() {
                return Ok(());
            }
            let decided = decide_batch(billing, batch, now).await?;
            skipped.extend(decided.report.failures.iter().map(|f| f.subscription));
            report.merge(decided.report);
            let unresolved = charge_batch(billing, decided.charges, report).await?;
            skipped.extend(unresolved);
        }
    }
}

/// A batch decided and its intents committed.
struct DecidedBatch {
    /// The charges recorded, as stored.
    charges: Vec<Recorded>,
    /// What the decisions did (and the subscriptions refused).
    report: RunReport,
}

/// Decide a batch of due subscriptions and commit the decisions and charge intents in one
/// commit, re-run from fresh reads if it loses a race (a concurrent worker got there first).
/// A subscription the domain refuses is reported and left out; the batch is decided again
/// without it, so nothing of it is written.
async fn decide_batch(
    billing: &Billing,
    batch: Vec<Subscription>,
    now: DateTime<Utc>,
) -> Result<DecidedBatch> {
    let ids: Vec<SubscriptionId> = batch.iter().map(Subscription::id).collect();
    let mut subscriptions = Some(batch);
    let mut failures = Vec::new();
    let mut refresh = false;
    for _ in 0..MAX_RUNS + ids.len() {
        let current = match subscriptions.take() {
            Some(just_read) => just_read,
            None => {
                let mut fresh = Vec::with_capacity(ids.len());
                for &id in &ids {
                    fresh.extend(billing.store.subscription(id).await?);
                }
                fresh
            }
        };
        let catalog = billing.catalog_view(refresh).await?;
        let context = billing.context(&catalog, now);
        let customers = batch_customers(billing, &current).await?;
        let mut writes = Writes::default();
        let mut report = RunReport::default();
        let mut attempts = Vec::new();
        let mut refused = None;
        for subscription in current.iter().filter(|s| {
            !failures
                .iter()
                .any(|failure: &DueFailure| failure.subscription == s.id())
        }) {
            match decide_one(
                billing,
                subscription,
                &context,
                &customers,
                &mut writes,
                &mut report,
            )
            .await
            {
                Ok(Some(attempt)) => attempts.push(attempt),
                Ok(None) => {}
                Err(error) => {
                    refused = Some((subscription.id(), error));
                    break;
                }
            }
        }
        match refused {
            Some((_, error)) if error.is_not_in_catalog() && !refresh => {
                refresh = true;
                subscriptions = Some(current);
                continue;
            }
            Some((_, error)) if error.is_conflict() => continue,
            Some((subscription, error)) if error.is_refusal() => {
                failures.push(DueFailure {
                    subscription,
                    error,
                });
                subscriptions = Some(current);
                continue;
            }
            Some((_, error)) => return Err(error),
            None => {}
        }
        report.failures.clone_from(&failures);
        if writes.is_empty() {
            return Ok(DecidedBatch {
                charges: Vec::new(),
                report,
            });
        }
        match billing.commit(writes).await {
            Ok(stored) => {
                report.commits += 1;
                let charges = attempts
                    .iter()
                    .map(|attempt| {
                        let payer = customers.get(&attempt.customer).ok_or_else(|| {
                            BillingError::not_found(EntityKind::Customer, attempt.customer)
                        })?;
                        Recorded::stored(&stored, attempt, payer)
                    })
                    .collect::<Result<_>>()?;
                return Ok(DecidedBatch { charges, report });
            }
            Err(error) if error.is_conflict() => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(BillingError::Contention {
        what: "due work".into(),
    })
}

/// The customers of a batch, read in one call.
async fn batch_customers(
    billing: &Billing,
    subscriptions: &[Subscription],
) -> Result<HashMap<CustomerId, Customer>> {
    let ids: Vec<CustomerId> = subscriptions.iter().map(Subscription::customer).collect();
    Ok(billing
        .store
        .customers_by_id(&ids)
        .await?
        .into_iter()
        .map(|customer| (customer.id(), customer))
        .collect())
}

/// Bring one due subscription forward to `now`, into `writes`: every step the domain decides
/// without a charge, and the charge it then needs, if any (returned).
async fn decide_one(
    billing: &Billing,
    subscription: &Subscription,
    context: &Context<'_>,
    customers: &HashMap<CustomerId, Customer>,
    writes: &mut Writes,
    report: &mut RunReport,
) -> Result<Option<PaymentAttempt>> {
    let now = context.now;
    let mut current = subscription.clone();
    while let Some(step) = current.due_step(context)? {
        let command = match step {
            DueStep::Decide(command) => command,
            DueStep::ExpireCheckout => Command::ExpireCheckout {
                open_invoices: billing
                    .outstanding_invoices(current.id())
                    .await?
                    .iter()
                    .map(commet_core::invoice::Invoice::id)
                    .collect(),
            },
            DueStep::ChargePeriod { purpose, period } => {
                let customer = payer(billing, writes, customers, current.customer()).await?;
                let charge = current.charge_period(purpose, period, &customer, context)?;
                report.count_charge(purpose);
                let attempt = charge.attempt.clone();
                writes.put_charge(charge, &billing.config().invoice_series);
                return Ok(Some(attempt));
            }
            DueStep::RetryInvoice { invoice } => {
                let customer = payer(billing, writes, customers, current.customer()).await?;
                let invoice = billing.store.get_invoice(invoice).await?;
                let attempts = billing.store.payment_attempts(invoice.id()).await?;
                let charge = current.retry(&invoice, &attempts, &customer, context)?;
                report.count_charge(ChargePurpose::DunningRetry);
                let attempt = charge.attempt.clone();
                writes.put_charge(charge, &billing.config().invoice_series);
                return Ok(Some(attempt));
            }
        };
        let decision = current.decide(&command, context)?;
        report.count(decision.trigger);
        current = billing.apply_decision(writes, decision, now).await?;
    }
    Ok(None)
}

/// The customer who pays, as this commit leaves them: written by it, read for the batch, or
/// read now.
async fn payer(
    billing: &Billing,
    writes: &Writes,
    customers: &HashMap<CustomerId, Customer>,
    id: CustomerId,
) -> Result<Customer> {
    if let Some(customer) = writes.customer(id) {
        return Ok(customer.clone());
    }
    match customers.get(&id) {
        Some(customer) => Ok(customer.clone()),
        None => Ok(billing.store.get_customer(id).await?),
    }
}

/// Charge a batch's recorded attempts, then settle them all in one commit (one by one if that
/// commit loses a race). Returns the subscriptions whose charge is unresolved.
async fn charge_batch(
    billing: &Billing,
    charges: Vec<Recorded>,
    report: &mut RunReport,
) -> Result<Vec<SubscriptionId>> {
    let mut outcomes = Vec::with_capacity(charges.len());
    let mut unresolved = Vec::new();
    for recorded in charges {
        match billing.call_gateway(&recorded.attempt).await {
            Ok(result) => {
                report.count_result(&result);
                outcomes.push((recorded, result));
            }
            Err(_) => {
                report.charges_unresolved += 1;
                unresolved.extend(recorded.attempt.subscription);
            }
        }
    }
    if outcomes.is_empty() {
        return Ok(unresolved);
    }
    let now = billing.now();
    let catalog = billing.catalog_view(false).await?;
    let context = billing.context(&catalog, now);
    let mut writes = Writes::default();
    let mut together = true;
    for (recorded, result) in &outcomes {
        match recorded.subscription.settle(
            &recorded.attempt,
            &recorded.invoice,
            &recorded.customer,
            result,
            &context,
        ) {
            Ok(settled) => billing.put_settled(&mut writes, settled, now),
            Err(_) => {
                together = false;
                break;
            }
        }
    }
    if together {
        match billing.store.commit(writes.changes).await {
            Ok(_) => {
                report.commits += 1;
                return Ok(unresolved);
            }
            Err(error) if error.is_conflict() => {}
            Err(error) => return Err(error.into()),
        }
    }
    // Something moved since the intents were committed: each is settled from fresh reads.
    for (recorded, result) in outcomes {
        billing.settle(recorded, &result, None).await?;
        report.commits += 1;
    }
    Ok(unresolved)
}

impl BillingError {
    /// True if the domain refused (as opposed to the store or the provider failing).
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self,
            BillingError::Subscription(_)
                | BillingError::Invoice(_)
                | BillingError::Proration(_)
                | BillingError::Invalid(_)
                | BillingError::PaymentInProgress { .. }
        )
    }

    /// True if a decision named a plan or price the catalog as read does not hold.
    pub(crate) fn is_not_in_catalog(&self) -> bool {
        matches!(
            self,
            BillingError::Subscription(SubscriptionError::NotInCatalog(_))
        )
    }
}
