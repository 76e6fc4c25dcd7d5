//! Due work: renewals, trials, dunning, scheduled changes, checkout expiry, crash recovery.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::charge::{Charged, Recorded};
use super::subscriptions::next_attempt_number;
use super::{Billing, BillingError, Result};
use crate::store::{ChangeSet, CommitReceipt, EntityKind, Put, StoreError, StoreExt};
use commet_core::clock::TestClock;
use commet_core::customer::Customer;
use commet_core::ids::{CustomerId, SubscriptionId};
use commet_core::invoice::{InvoiceStatus, RecurringInvoice};
use commet_core::money::Money;
use commet_core::payment::{ChargePurpose, PaymentAttempt};
use commet_core::subscription::{
    ChargeOutcome, Command, DueWork, InvoiceSummary, Settlement, Subscription, SubscriptionState,
};

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Periods renewed (charged, or free).
    pub renewals: u64,
    /// `trial.will_end` reminders sent.
    pub trial_reminders: u64,
    /// Trials ended (charged or canceled).
    pub trial_ends: u64,
    /// Dunning retries charged.
    pub dunning_retries: u64,
    /// Subscriptions whose dunning was exhausted.
    pub dunning_exhausted: u64,
    /// Scheduled cancellations that took effect.
    pub cancellations: u64,
    /// Scheduled plan changes that took effect.
    pub plan_changes: u64,
    /// Checkouts canceled for their time to live.
    pub checkouts_expired: u64,
    /// Charges paid.
    pub charges_paid: u64,
    /// Charges declined.
    pub charges_declined: u64,
    /// Charges whose outcome is unknown (the gateway failed); completed by a later run.
    pub charges_unresolved: u64,
    /// Abandoned charges (from a crashed process) completed.
    pub recovered: u64,
    /// Commits made.
    pub commits: u64,
}

impl RunReport {
    fn merge(&mut self, other: RunReport) {
        self.renewals += other.renewals;
        self.trial_reminders += other.trial_reminders;
        self.trial_ends += other.trial_ends;
        self.dunning_retries += other.dunning_retries;
        self.dunning_exhausted += other.dunning_exhausted;
        self.cancellations += other.cancellations;
        self.plan_changes += other.plan_changes;
        self.checkouts_expired += other.checkouts_expired;
        self.charges_paid += other.charges_paid;
        self.charges_declined += other.charges_declined;
        self.charges_unresolved += other.charges_unresolved;
        self.recovered += other.recovered;
        self.commits += other.commits;
    }

    /// Did the run change anything?
    #[must_use]
    pub fn did_work(&self) -> bool {
        self.renewals
            + self.trial_reminders
            + self.trial_ends
            + self.dunning_retries
            + self.dunning_exhausted
            + self.cancellations
            + self.plan_changes
            + self.checkouts_expired
            + self.recovered
            > 0
    }
}

/// What a pass over a batch of due subscriptions read before deciding.
struct BatchReads {
    /// The batch's customers, read in one call.
    customers: HashMap<CustomerId, Customer>,
    /// Whether to look for a period's invoice before billing the period. The first pass does
    /// not: a due period has an invoice only while a charge for it is under way or after one
    /// was abandoned, and then the store refuses a second one (one recurring invoice per
    /// subscription and period start), so the batch is decided again, looking.
    look_for_period_invoices: bool,
}

/// What one due subscription needs after its work without charges was decided.
enum Next {
    /// Nothing more now.
    Done,
    /// A charge was recorded in the batch's intent commit.
    Charge(PaymentAttempt),
    /// Its period charge is being made by someone else (or was abandoned and awaits
    /// recovery): leave it.
    InFlight,
    /// Its due work could not move it (the state machine refused the step): leave it for this
    /// run, so the run ends.
    Stuck,
}

impl Billing {
    /// Run every piece of work due now, in batches: trial reminders and ends, period ends
    /// (scheduled cancellations and plan changes first, then the renewal), dunning retries and
    /// exhaustion, checkout expiry; and complete charges a crashed process left pending for
    /// longer than [`recovery_grace`](super::BillingConfig::recovery_grace).
    ///
    /// Each batch needs two commits (the decisions and charge intents, then the outcomes)
    /// whatever its size. Work that another worker is doing at the same time is left to it.
    pub async fn run_due(&self) -> Result<RunReport> {
        let mut report = RunReport::default();
        self.recover_abandoned(&mut report).await?;
        let mut left: HashSet<SubscriptionId> = HashSet::new();
        loop {
            let now = self.now();
            let batch: Vec<Subscription> = self
                .store
                .due(now, self.config.batch_size + left.len())
                .await?
                .into_iter()
                .filter(|subscription| !left.contains(&subscription.id()))
                .take(self.config.batch_size)
                .collect();
            if batch.is_empty() {
                return Ok(report);
            }
            let (attempts, in_flight, counts) = self.decide_batch(batch, now).await?;
            report.merge(counts);
            report.commits += 1;
            left.extend(in_flight);
            let unresolved = self.charge_batch(&attempts, &mut report).await?;
            left.extend(unresolved);
        }
    }

    /// Decide the batch and commit its decisions and charge intents, re-run on conflicts (a
    /// concurrent worker got there first). The first pass decides on the subscriptions as
    /// `due` just read them; a pass re-run after a conflict reads them again.
    async fn decide_batch(
        &self,
        batch: Vec<Subscription>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Recorded>, Vec<SubscriptionId>, RunReport)> {
        let ids: &[SubscriptionId] = &batch.iter().map(Subscription::id).collect::<Vec<_>>();
        let mut just_read = Some(batch);
        self.retrying("due work", || {
            let just_read = just_read.take();
            async move {
                let first_pass = just_read.is_some();
                let subscriptions = match just_read {
                    Some(subscriptions) => subscriptions,
                    None => {
                        let mut fresh = Vec::with_capacity(ids.len());
                        for &id in ids {
                            fresh.push(self.store.get_subscription(id).await?);
                        }
                        fresh
                    }
                };
                let customers: Vec<CustomerId> =
                    subscriptions.iter().map(Subscription::customer).collect();
                let reads = BatchReads {
                    customers: self
                        .store
                        .customers_by_id(&customers)
                        .await?
                        .into_iter()
                        .map(|customer| (customer.id(), customer))
                        .collect(),
                    look_for_period_invoices: !first_pass,
                };
                let mut changes = ChangeSet::default();
                let mut counts = RunReport::default();
                let mut attempts = Vec::new();
                let mut in_flight = Vec::new();
                for subscription in &subscriptions {
                    let id = subscription.id();
                    match self
                        .due_into(subscription, now, &reads, &mut changes, &mut counts)
                        .await?
                    {
                        Next::Done => {}
                        Next::Charge(attempt) => attempts.push(attempt),
                        Next::InFlight | Next::Stuck => in_flight.push(id),
                    }
                }
                let mut recorded = recorded_by(&changes, attempts);
                if !changes.is_empty() {
                    match self.store.commit(changes).await {
                        Ok(receipt) => numbered(&mut recorded, &receipt),
                        // The period already has its invoice (a charge for it under way, or
                        // abandoned), or another worker recorded the same charge first: a race
                        // like a version conflict, decided again from fresh reads, looking for
                        // each period's invoice.
                        Err(StoreError::AlreadyExists {
                            kind: EntityKind::Invoice | EntityKind::PaymentAttempt,
                            ..
                        }) => {
                            return Err(BillingError::Store(StoreError::Conflict {
                                kind: EntityKind::Invoice,
                                id: "a period charge".into(),
                                expected: crate::store::ExpectedVersion::New,
                                actual: Some(1),
                            }));
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                Ok((recorded, in_flight, counts))
            }
        })
        .await
    }

    /// Charge the batch's attempts, then settle them all in one commit (one by one if that
    /// commit conflicts). Returns the subscriptions whose charge is unresolved.
    async fn charge_batch(
        &self,
        attempts: &[Recorded],
        report: &mut RunReport,
    ) -> Result<Vec<SubscriptionId>> {
        let mut outcomes = Vec::with_capacity(attempts.len());
        let mut unresolved = Vec::new();
        for recorded in attempts {
            match self.charge(&recorded.attempt).await {
                Ok(charged) => outcomes.push((recorded, charged)),
                Err(_) => {
                    report.charges_unresolved += 1;
                    unresolved.extend(recorded.attempt.subscription);
                }
            }
        }
        for (_, charged) in &outcomes {
            match charged {
                Charged::Paid { .. } => report.charges_paid += 1,
                Charged::Declined { .. } => report.charges_declined += 1,
            }
        }
        if outcomes.is_empty() {
            return Ok(unresolved);
        }
        let now = self.now();
        let mut changes = ChangeSet::default();
        let mut together = true;
        // Settled on the state the intent commit left, not read back: if any of it moved since
        // (another worker, an API call), the commit conflicts and each is settled afresh.
        for (recorded, charged) in &outcomes {
            if self
                .settle_recorded_into((*recorded).clone(), charged, now, &mut changes)
                .await
                .is_err()
            {
                together = false;
                break;
            }
        }
        if together {
            match self.store.commit(changes).await {
                Ok(_) => {
                    report.commits += 1;
                    return Ok(unresolved);
                }
                Err(error) if error.is_conflict() => {}
                Err(error) => return Err(error.into()),
            }
        }
        for (recorded, charged) in &outcomes {
            self.settle(&recorded.attempt.idempotency_key(), charged, None)
                .await?;
            report.commits += 1;
        }
        Ok(unresolved)
    }

    /// Bring one due subscription forward to `now`: decide every step without a charge into
    /// `changes`, and record the charge it then needs, if any.
    async fn due_into(
        &self,
        subscription: &Subscription,
        now: DateTime<Utc>,
        reads: &BatchReads,
        changes: &mut ChangeSet,
        counts: &mut RunReport,
    ) -> Result<Next> {
        let mut current = subscription.clone();
        let next = loop {
            let Some((at, work)) = current.due_work() else {
                break Next::Done;
            };
            if at > now {
                break Next::Done;
            }
            let command = match work {
                DueWork::CheckoutExpiry => match self.expire_due(&current, now, changes).await? {
                    Ok(expired) => {
                        counts.checkouts_expired += 1;
                        current = expired;
                        continue;
                    }
                    Err(next) => break next,
                },
                DueWork::TrialReminder => Command::SendTrialReminder,
                DueWork::TrialEnd | DueWork::PeriodEnd if has_cancellation(&current) => {
                    Command::ApplyScheduledCancellation
                }
                DueWork::PeriodEnd if has_plan_change(&current) => {
                    Command::ApplyScheduledPlanChange
                }
                DueWork::TrialEnd | DueWork::PeriodEnd => {
                    let purpose = if work == DueWork::TrialEnd {
                        ChargePurpose::TrialEnd
                    } else {
                        ChargePurpose::Renewal
                    };
                    match self
                        .period_charge(&current, purpose, now, reads, changes)
                        .await?
                    {
                        Some(next) => {
                            if matches!(next, Next::Charge(_) | Next::Done) {
                                count(counts, purpose);
                            }
                            break next;
                        }
                        // Free: renewed without an invoice.
                        None => Command::Renew(ChargeOutcome::Paid {
                            settlement: Settlement::Free,
                        }),
                    }
                }
                DueWork::DunningRetry => {
                    let next = self.dunning_retry(&current, now, reads, changes).await?;
                    if matches!(next, Next::Charge(_)) {
                        counts.dunning_retries += 1;
                    }
                    break next;
                }
                DueWork::DunningExhaustion => Command::ExhaustDunning {
                    final_failure: None,
                    policy: self.config.dunning.on_exhaustion(),
                },
            };
            match self
                .apply_decision(&current, &command, now, changes)
                .await?
            {
                Some(after) => {
                    match command {
                        Command::SendTrialReminder => counts.trial_reminders += 1,
                        Command::ApplyScheduledCancellation => counts.cancellations += 1,
                        Command::ApplyScheduledPlanChange => counts.plan_changes += 1,
                        Command::ExhaustDunning { .. } => counts.dunning_exhausted += 1,
                        _ => counts.renewals += 1,
                    }
                    current = after;
                }
                None => break Next::Stuck,
            }
        };
        let next = match next {
            Next::Done if current == *subscription => Next::Stuck,
            other => other,
        };
        if current != *subscription {
            Billing::claim(&current, changes);
            if let Some(put) = changes
                .subscriptions
                .iter_mut()
                .find(|put| put.value.id() == current.id())
            {
                put.value = current;
            }
        }
        Ok(next)
    }

    /// Expire a checkout that outlived its time to live into `changes`: the subscription
    /// canceled, its open first invoice voided. `Err` with what to do instead when a checkout
    /// charge is under way, or the expiry was refused.
    async fn expire_due(
        &self,
        subscription: &Subscription,
        now: DateTime<Utc>,
        changes: &mut ChangeSet,
    ) -> Result<std::result::Result<Subscription, Next>> {
        let open = self.outstanding_invoices(subscription.id()).await?;
        for invoice in &open {
            // A checkout being paid right now is not expired under it.
            if self.has_pending_attempt(invoice.id()).await? {
                return Ok(Err(Next::InFlight));
            }
        }
        let Some(expired) = self
            .apply_decision(subscription, &Command::ExpireCheckout, now, changes)
            .await?
        else {
            return Ok(Err(Next::Stuck));
        };
        let voids: Vec<_> = open
            .iter()
            .map(|invoice| commet_core::subscription::InvoiceAction::Void(invoice.id()))
            .collect();
        self.apply_invoice_actions(&voids, &expired, now, changes)
            .await?;
        Ok(Ok(expired))
    }

    /// The charge of the period that starts at the end of the current one (or of the trial):
    /// recorded in `changes`. `None` for a free subscription.
    async fn period_charge(
        &self,
        subscription: &Subscription,
        purpose: ChargePurpose,
        now: DateTime<Utc>,
        reads: &BatchReads,
        changes: &mut ChangeSet,
    ) -> Result<Option<Next>> {
        let items = self.priced_items(subscription).await?;
        if items.iter().all(|(price, _)| price.is_free()) {
            return Ok(None);
        }
        let cycle = subscription
            .cycle()
            .ok_or_else(|| BillingError::not_found(EntityKind::Subscription, subscription.id()))?;
        let start = match subscription.state() {
            SubscriptionState::Trialing(trialing) => trialing.trial.end(),
            _ => subscription
                .current_period()
                .map_or(cycle.anchor(), |period| period.end()),
        };
        let period = cycle
            .period_containing(start)
            .map_err(commet_core::subscription::SubscriptionError::from)?;
        let existing = if reads.look_for_period_invoices {
            self.store
                .recurring_invoice(subscription.id(), period.start())
                .await?
        } else {
            None
        };
        if let Some(existing) = existing {
            let attempts = self.store.payment_attempts(existing.id()).await?;
            if attempts.iter().any(PaymentAttempt::is_pending) {
                return Ok(Some(Next::InFlight));
            }
            return match existing.status() {
                InvoiceStatus::Outstanding => {
                    let customer = self
                        .batch_customer(reads, changes, subscription.customer())
                        .await?;
                    Ok(Some(Next::Charge(self.retry_intent(
                        &existing,
                        subscription,
                        &customer,
                        purpose,
                        next_attempt_number(&attempts),
                        now,
                        changes,
                    ))))
                }
                InvoiceStatus::Paid => {
                    // Paid already (its settlement was lost with a crash): renew with it.
                    let summary = InvoiceSummary::of(&existing, None)?;
                    let settlement = Settlement::Invoice(summary);
                    let command = if purpose == ChargePurpose::TrialEnd {
                        Command::EndTrial(ChargeOutcome::Paid { settlement })
                    } else {
                        Command::Renew(ChargeOutcome::Paid { settlement })
                    };
                    match self
                        .apply_decision(subscription, &command, now, changes)
                        .await?
                    {
                        Some(after) => Billing::claim(&after, changes),
                        None => return Ok(Some(Next::InFlight)),
                    }
                    Ok(Some(Next::Done))
                }
                InvoiceStatus::Draft | InvoiceStatus::Void | InvoiceStatus::Uncollectible => {
                    Ok(Some(Next::InFlight))
                }
            };
        }
        let invoice = RecurringInvoice {
            id: self.ids.next(now),
            customer: subscription.customer(),
            subscription: subscription.id(),
            currency: subscription.currency(),
            period,
            items: &items,
            created_at: now,
            available_credit: Money::zero(subscription.currency()),
            policy: self.config.rounding,
        }
        .build()?;
        let customer = self
            .batch_customer(reads, changes, subscription.customer())
            .await?;
        let attempt = self
            .new_invoice_intent(invoice, subscription, &customer, purpose, now, changes)
            .await?;
        Ok(Some(Next::Charge(attempt)))
    }

    /// A scheduled dunning retry of a past-due subscription, recorded in `changes`.
    async fn dunning_retry(
        &self,
        subscription: &Subscription,
        now: DateTime<Utc>,
        reads: &BatchReads,
        changes: &mut ChangeSet,
    ) -> Result<Next> {
        let SubscriptionState::PastDue(past_due) = subscription.state() else {
            return Ok(Next::Done);
        };
        let invoice = self.store.get_invoice(past_due.dunning.invoice).await?;
        let attempts = self.store.payment_attempts(invoice.id()).await?;
        if attempts.iter().any(PaymentAttempt::is_pending) {
            return Ok(Next::InFlight);
        }
        let customer = self
            .batch_customer(reads, changes, subscription.customer())
            .await?;
        Ok(Next::Charge(self.retry_intent(
            &invoice,
            subscription,
            &customer,
            ChargePurpose::DunningRetry,
            next_attempt_number(&attempts),
            now,
            changes,
        )))
    }

    /// The customer `id` as `changes` leaves them: from `changes`, else as the batch read them,
    /// else read now.
    async fn batch_customer(
        &self,
        reads: &BatchReads,
        changes: &ChangeSet,
        id: CustomerId,
    ) -> Result<Customer> {
        match reads.customers.get(&id) {
            Some(customer) if !changes.customers.iter().any(|put| put.value.id() == id) => {
                Ok(customer.clone())
            }
            _ => self.customer_view(changes, id).await,
        }
    }

    async fn has_pending_attempt(&self, invoice: commet_core::ids::InvoiceId) -> Result<bool> {
        Ok(self
            .store
            .payment_attempts(invoice)
            .await?
            .iter()
            .any(PaymentAttempt::is_pending))
    }

    /// Complete charges left pending longer than the recovery grace (their process crashed):
    /// charge again with the same key (the gateway answers with the first outcome) and settle.
    async fn recover_abandoned(&self, report: &mut RunReport) -> Result<()> {
        let cutoff = self.now() - self.config.recovery_grace;
        let mut tried = HashSet::new();
        loop {
            let pending = self
                .store
                .pending_payment_attempts(cutoff, self.config.batch_size + tried.len())
                .await?;
            let fresh: Vec<PaymentAttempt> = pending
                .into_iter()
                .filter(|attempt| tried.insert(attempt.idempotency_key()))
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            for attempt in &fresh {
                match self.charge(attempt).await {
                    Ok(charged) => {
                        self.settle(&attempt.idempotency_key(), &charged, None)
                            .await?;
                        report.recovered += 1;
                        report.commits += 1;
                    }
                    Err(_) => report.charges_unresolved += 1,
                }
            }
        }
    }

    /// Move the engine's [`TestClock`] forward to `until`, stopping at every deadline on the way
    /// (renewals, trial reminders and ends, dunning retries, scheduled changes, checkout
    /// expiry) and running the due work there, so a simulated year produces exactly the
    /// timeline a real one would. `clock` must be the clock the engine was built with.
    ///
    /// Work that cannot progress (a charge another process is making) does not hold time back:
    /// the clock then moves on to `until`.
    pub async fn advance_to(&self, clock: &TestClock, until: DateTime<Utc>) -> Result<RunReport> {
        self.check_test_clock(clock)?;
        let mut report = RunReport::default();
        loop {
            let now = self.now();
            let target = match self.store.next_due_at().await? {
                Some(due) if due <= until => due.max(now),
                _ => until,
            };
            clock.set(target)?;
            let run = self.run_due().await?;
            let worked = run.did_work();
            report.merge(run);
            if target == until || (!worked && target == now) {
                if target != until {
                    clock.set(until)?;
                    report.merge(self.run_due().await?);
                }
                return Ok(report);
            }
        }
    }
}

/// The attempts an intent commit records, each with its invoice and subscription as the
/// commit stores them, if it writes them (new invoices still lack the numbers the commit
/// gives: see [`numbered`]).
fn recorded_by(changes: &ChangeSet, attempts: Vec<PaymentAttempt>) -> Vec<Recorded> {
    attempts
        .into_iter()
        .map(|attempt| {
            let invoice = changes
                .invoices
                .iter()
                .find(|write| write.put.value.id() == attempt.invoice)
                .map(|write| write.put.stored());
            let subscription = attempt
                .subscription
                .and_then(|id| {
                    changes
                        .subscriptions
                        .iter()
                        .find(|put| put.value.id() == id)
                })
                .map(Put::stored);
            let attempt = changes
                .payment_attempts
                .iter()
                .find(|put| put.value.id == attempt.id)
                .map_or(attempt, Put::stored);
            Recorded {
                attempt,
                invoice,
                subscription,
            }
        })
        .collect()
}

/// Give the recorded new invoices the numbers the commit gave them (an invoice that cannot
/// take it is read back when settled instead).
fn numbered(recorded: &mut [Recorded], receipt: &CommitReceipt) {
    for (id, number) in &receipt.invoice_numbers {
        for entry in recorded.iter_mut() {
            if let Some(invoice) = entry.invoice.as_mut().filter(|i| i.id() == *id)
                && invoice.assign_number(number.clone()).is_err()
            {
                entry.invoice = None;
            }
        }
    }
}

/// Count a period charge that was recorded (or found paid).
fn count(counts: &mut RunReport, purpose: ChargePurpose) {
    if purpose == ChargePurpose::TrialEnd {
        counts.trial_ends += 1;
    } else {
        counts.renewals += 1;
    }
}

fn has_cancellation(subscription: &Subscription) -> bool {
    match subscription.state() {
        SubscriptionState::Active(active) => active.cancellation.is_some(),
        SubscriptionState::Trialing(trialing) => trialing.cancellation.is_some(),
        _ => false,
    }
}

fn has_plan_change(subscription: &Subscription) -> bool {
    matches!(subscription.state(), SubscriptionState::Active(active) if active.plan_change.is_some())
}
