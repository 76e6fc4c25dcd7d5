//! The charge flow: record the intent, ask the payment provider, settle the outcome.
//!
//! Every charge goes through the same three steps, whether an API call (checkout, an upgrade,
//! resume, reactivation, "pay now", a new payment method) or the due runner (trial ends,
//! renewals, dunning retries) asked for it, and whether it is made for the first time or
//! recovered after a crash:
//!
//! 1. **intent**: one commit records the [`Charge`](commet_core::subscription::Charge) the
//!    domain built: the invoice (numbered in the commit), the pending attempt, the customer's
//!    credit, and the subscription with the charge in flight;
//! 2. **charge**: the provider is called with the attempt's idempotency key
//!    `{invoice}:{attempt}` (unless the domain says no call is needed: nothing to pay, or no
//!    payment method);
//! 3. **settle**: the domain decides what the result does
//!    ([`Subscription::settle`](commet_core::subscription::Subscription::settle)) and one commit
//!    records it, with every event.
//!
//! A process that dies between 1 and 3 leaves a pending attempt; after
//! [`BillingConfig::recovery_grace`](crate::BillingConfig::recovery_grace) the due runner
//! charges it again with the same key (the provider answers with the first outcome) and
//! settles it. Nothing is charged twice and no invoice is lost.

use chrono::{DateTime, Utc};
use commet_core::customer::Customer;
use commet_core::invoice::Invoice;
use commet_core::payment::{AttemptStatus, ChargeResult, PaymentAttempt};
use commet_core::subscription::{SettledCharge, Subscription};

use crate::billing::{Billing, MAX_RUNS};
use crate::error::{BillingError, Result};
use crate::gateway::{ChargeRequest, GatewayError, PaymentOutcome};
use crate::idempotency::IdempotencyRecord;
use crate::store::{EntityKind, Put, StoreExt};
use crate::writes::{Stored, Writes};

/// A charge as its intent commit stored it: the attempt, with its invoice, subscription and
/// customer. Settling from these needs no reads; if any moved since, the settling commit
/// conflicts and the charge is settled again from fresh reads.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) attempt: PaymentAttempt,
    pub(crate) invoice: Invoice,
    pub(crate) subscription: Subscription,
    pub(crate) customer: Customer,
}

impl Recorded {
    /// The charge of `attempt` as a commit `stored` it; `payer` is the customer as read, for a
    /// commit that did not write them.
    pub(crate) fn stored(
        stored: &Stored,
        attempt: &PaymentAttempt,
        payer: &Customer,
    ) -> Result<Recorded> {
        let missing = |what: &str| BillingError::Internal {
            reason: format!(
                "the intent commit of {} wrote no {what}",
                attempt.idempotency_key()
            ),
        };
        let subscription = attempt
            .subscription
            .and_then(|id| stored.subscription(id))
            .ok_or_else(|| missing("subscription"))?
            .clone();
        Ok(Recorded {
            attempt: stored
                .attempt(attempt.id)
                .ok_or_else(|| missing("attempt"))?
                .clone(),
            invoice: stored
                .invoice(attempt.invoice)
                .ok_or_else(|| missing("invoice"))?
                .clone(),
            customer: match stored.customer(attempt.customer) {
                Some(customer) => customer.clone(),
                None if payer.id() == attempt.customer => payer.clone(),
                None => return Err(missing("customer")),
            },
            subscription,
        })
    }
}

/// A settled charge as stored: what a charging call answers from.
#[derive(Debug, Clone)]
pub(crate) struct Settled {
    /// The subscription after the charge.
    pub(crate) subscription: Subscription,
    /// The invoice charged.
    pub(crate) invoice: Invoice,
    /// What the charge came to.
    pub(crate) result: ChargeResult,
}

/// What a settling commit writes besides the settlement: the idempotency record of the call
/// that made the charge, with its answer (the request flow's `Finish`).
pub(crate) trait SettlementRecord: Send + Sync {
    /// The record to write with `settled`, at `now`.
    fn record(
        &self,
        billing: &Billing,
        settled: &Settled,
        now: DateTime<Utc>,
    ) -> Result<Put<IdempotencyRecord>>;
}

impl Billing {
    /// The result of a recorded attempt: from the domain when no call is needed, else from
    /// the provider. A provider error leaves the outcome unknown: the attempt stays pending
    /// and is recovered later with the same key.
    pub(crate) async fn call_gateway(
        &self,
        attempt: &PaymentAttempt,
    ) -> Result<ChargeResult, GatewayError> {
        if let Some(result) = attempt.result_without_gateway() {
            return Ok(result);
        }
        let request = ChargeRequest {
            idempotency_key: attempt.idempotency_key(),
            amount: attempt.amount,
            customer: attempt.customer,
            payment_method: attempt.payment_method.clone().unwrap_or_default(),
            description: format!(
                "Invoice {} ({})",
                attempt.invoice,
                attempt.purpose.describe()
            ),
            invoice: attempt.invoice,
            subscription: attempt.subscription,
            metadata: std::collections::BTreeMap::new(),
        };
        Ok(match self.gateway.charge(&request).await? {
            PaymentOutcome::Paid { payment_id } => ChargeResult::Paid {
                payment_id: Some(payment_id),
            },
            PaymentOutcome::Declined {
                code,
                message,
                class,
            } => ChargeResult::Declined {
                code,
                message,
                class,
            },
        })
    }

    /// Settle a charge with its result in one commit, re-run from fresh reads if it loses a
    /// race. `recorded` is the charge as stored (by its intent commit, or read); `finish`
    /// writes a charging call's answer under its idempotency key. A charge that someone else
    /// settled meanwhile is answered as they settled it.
    pub(crate) async fn settle(
        &self,
        mut recorded: Recorded,
        result: &ChargeResult,
        finish: Option<&dyn SettlementRecord>,
    ) -> Result<Settled> {
        let key = recorded.attempt.idempotency_key();
        let mut read_again = false;
        for run in 0..MAX_RUNS {
            if std::mem::take(&mut read_again) {
                match self.read_charge(&key).await? {
                    Ok(fresh) => recorded = fresh,
                    Err(done) => return Ok(done),
                }
            }
            let now = self.now();
            let catalog = self.catalog_view(run > 0).await?;
            let context = self.context(&catalog, now);
            let settled = match recorded.subscription.settle(
                &recorded.attempt,
                &recorded.invoice,
                &recorded.customer,
                result,
                &context,
            ) {
                Ok(settled) => settled,
                // The reads were made one by one: a settlement committed between them leaves
                // a pending attempt next to a subscription it already moved. Read again: a
                // charge settled meanwhile is answered as it was settled; the same state
                // refused again is the domain's answer.
                Err(refused) => match self.read_charge(&key).await? {
                    Err(done) => return Ok(done),
                    Ok(fresh)
                        if fresh.subscription != recorded.subscription
                            || fresh.invoice != recorded.invoice
                            || fresh.customer != recorded.customer =>
                    {
                        recorded = fresh;
                        continue;
                    }
                    Ok(_) => return Err(refused.into()),
                },
            };
            let answer = Settled {
                subscription: settled.subscription.clone(),
                invoice: settled.invoice.clone(),
                result: result.clone(),
            };
            let mut writes = Writes::default();
            self.put_settled(&mut writes, settled, now);
            let stored = writes.stored();
            if let Some(finish) = finish {
                let answer = Settled {
                    subscription: stored
                        .subscription(answer.subscription.id())
                        .cloned()
                        .unwrap_or(answer.subscription),
                    invoice: stored
                        .invoice(answer.invoice.id())
                        .cloned()
                        .unwrap_or(answer.invoice),
                    result: answer.result,
                };
                writes
                    .changes
                    .idempotency
                    .push(finish.record(self, &answer, now)?);
            }
            match self.store.commit(writes.changes).await {
                Ok(_) => {
                    return Ok(Settled {
                        subscription: stored
                            .subscription(recorded.subscription.id())
                            .cloned()
                            .unwrap_or(recorded.subscription),
                        invoice: stored
                            .invoice(recorded.invoice.id())
                            .cloned()
                            .unwrap_or(recorded.invoice),
                        result: result.clone(),
                    });
                }
                Err(error) if error.is_conflict() => read_again = true,
                Err(error) => return Err(error.into()),
            }
        }
        Err(BillingError::Contention {
            what: format!("settling {key}"),
        })
    }

    /// Add a settled charge to `writes`: the aggregates and the events, stamped `now`.
    pub(crate) fn put_settled(
        &self,
        writes: &mut Writes,
        settled: SettledCharge,
        now: DateTime<Utc>,
    ) {
        let events = self.envelopes(settled.events.iter().cloned(), now);
        writes.changes.events.extend(events);
        writes.put_settled(settled);
    }

    /// The charge with attempt `key` as stored now: `Ok` while it is pending, `Err` with its
    /// settled state once someone settled it.
    pub(crate) async fn read_charge(&self, key: &str) -> Result<Result<Recorded, Settled>> {
        let attempt = self
            .store
            .payment_attempt(key)
            .await?
            .ok_or_else(|| BillingError::not_found(EntityKind::PaymentAttempt, key))?;
        let invoice = self.store.get_invoice(attempt.invoice).await?;
        let subscription = match attempt.subscription {
            Some(id) => self.store.get_subscription(id).await?,
            None => {
                return Err(BillingError::Internal {
                    reason: format!("the charge {key} bills no subscription"),
                });
            }
        };
        match &attempt.status {
            AttemptStatus::Pending => Ok(Ok(Recorded {
                customer: self.store.get_customer(attempt.customer).await?,
                attempt,
                invoice,
                subscription,
            })),
            AttemptStatus::Succeeded { payment_id } => Ok(Err(Settled {
                subscription,
                invoice,
                result: ChargeResult::Paid {
                    payment_id: payment_id.clone(),
                },
            })),
            AttemptStatus::Failed { code, message } => Ok(Err(Settled {
                subscription,
                invoice,
                result: ChargeResult::Declined {
                    code: code.clone(),
                    message: message.clone(),
                    class: attempt.decline_class(),
                },
            })),
        }
    }
}
