//! [`FakeGateway`]: a payment provider for tests that behaves like a real one.
//!
//! It honours idempotency keys (a second call with a key returns the first outcome and charges
//! nothing), records every call, and keeps a ledger of successful charges to compare with the
//! invoices marked paid. Payment methods decide what happens, like Stripe's test cards:
//!
//! | payment method | behaviour |
//! |---|---|
//! | `pm_card_visa` (and any unregistered `pm_card_ok...`) | succeeds |
//! | `pm_card_declined` | declines, `card_declined` (soft) |
//! | `pm_card_insufficient_funds` | declines, `insufficient_funds` (soft) |
//! | `pm_card_stolen` | declines, `stolen_card` (hard) |
//! | `pm_card_expired` | declines, `expired_card` (hard) |
//! | anything else | declines, `invalid_payment_method` (soft), so typos show |
//!
//! [`FakeGateway::register`] adds methods with any [`Behaviour`]: decline the first n charges,
//! decline only the n-th, or be unreachable the first n times.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::gateway::{ChargeRequest, GatewayError, PaymentGateway, PaymentOutcome};
use commet_core::dunning::classify;

/// What a payment method does when charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Every charge succeeds.
    Succeed,
    /// Every charge is declined with `code`.
    Decline {
        /// The decline code.
        code: String,
    },
    /// The first `times` charges are declined with `code`, later ones succeed.
    DeclineFirst {
        /// How many declines.
        times: u32,
        /// The decline code.
        code: String,
    },
    /// Only the `n`-th charge (counting from 1) is declined with `code`.
    DeclineNth {
        /// Which charge.
        n: u32,
        /// The decline code.
        code: String,
    },
    /// The first `times` calls fail with a [`GatewayError`] (outcome unknown), later ones succeed.
    UnreachableFirst {
        /// How many failures.
        times: u32,
    },
}

/// A recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The request.
    pub request: ChargeRequest,
    /// What was answered (`None`: a gateway error).
    pub outcome: Option<PaymentOutcome>,
    /// True if the key was seen before and the first outcome was replayed.
    pub replayed: bool,
}

#[derive(Debug, Default)]
struct State {
    behaviours: HashMap<String, Behaviour>,
    outcomes: HashMap<String, PaymentOutcome>,
    charges_per_method: HashMap<String, u32>,
    calls: Vec<Call>,
    ledger: Vec<ChargeRequest>,
}

/// A test payment provider. See the module docs for its payment methods.
#[derive(Debug, Default)]
pub struct FakeGateway {
    state: Mutex<State>,
}

impl FakeGateway {
    /// A gateway with the built-in test payment methods.
    #[must_use]
    pub fn new() -> FakeGateway {
        let gateway = FakeGateway::default();
        let decline = |code: &str| Behaviour::Decline { code: code.into() };
        for (method, behaviour) in [
            ("pm_card_visa", Behaviour::Succeed),
            ("pm_card_declined", decline("card_declined")),
            ("pm_card_insufficient_funds", decline("insufficient_funds")),
            ("pm_card_stolen", decline("stolen_card")),
            ("pm_card_expired", decline("expired_card")),
        ] {
            gateway.register(method, behaviour);
        }
        gateway
    }

    /// Give `method` a behaviour (replacing any earlier one).
    pub fn register(&self, method: &str, behaviour: Behaviour) {
        self.state().behaviours.insert(method.to_owned(), behaviour);
    }

    /// Every call so far, replays and errors included.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The successful charges, each once (the money actually taken).
    #[must_use]
    pub fn ledger(&self) -> Vec<ChargeRequest> {
        self.state().ledger.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<PaymentOutcome, GatewayError> {
        let mut state = self.state();
        if let Some(first) = state.outcomes.get(&request.idempotency_key).cloned() {
            state.calls.push(Call {
                request: request.clone(),
                outcome: Some(first.clone()),
                replayed: true,
            });
            return Ok(first);
        }
        let count = {
            let count = state
                .charges_per_method
                .entry(request.payment_method.clone())
                .or_insert(0);
            *count += 1;
            *count
        };
        let behaviour = state
            .behaviours
            .get(&request.payment_method)
            .cloned()
            .unwrap_or_else(|| {
                if request.payment_method.starts_with("pm_card_ok") {
                    Behaviour::Succeed
                } else {
                    Behaviour::Decline {
                        code: "invalid_payment_method".into(),
                    }
                }
            });
        let decline = |code: &str| PaymentOutcome::Declined {
            code: code.to_owned(),
            message: format!("The card was declined ({code})."),
            class: classify(code),
        };
        let paid = |seq: usize| PaymentOutcome::Paid {
            payment_id: format!("fake_pay_{seq}"),
        };
        let outcome = match behaviour {
            Behaviour::Decline { code } => decline(&code),
            Behaviour::DeclineFirst { times, code } if count <= times => decline(&code),
            Behaviour::DeclineNth { n, code } if count == n => decline(&code),
            Behaviour::UnreachableFirst { times } if count <= times => {
                state.calls.push(Call {
                    request: request.clone(),
                    outcome: None,
                    replayed: false,
                });
                return Err(GatewayError {
                    message: "connection reset by the fake provider".into(),
                });
            }
            Behaviour::Succeed
            | Behaviour::DeclineFirst { .. }
            | Behaviour::DeclineNth { .. }
            | Behaviour::UnreachableFirst { .. } => paid(state.ledger.len() + 1),
        };
        if matches!(outcome, PaymentOutcome::Paid { .. }) {
            state.ledger.push(request.clone());
        }
        state
            .outcomes
            .insert(request.idempotency_key.clone(), outcome.clone());
        state.calls.push(Call {
            request: request.clone(),
            outcome: Some(outcome.clone()),
            replayed: false,
        });
        Ok(outcome)
    }
}
