//! [`FakeReceiver`]: a webhook [`Transport`] for tests that plays the receiver: it answers what
//! each URL is scripted to answer and records every request with the engine's clock, so a
//! test checks when each attempt arrived and verifies it as a real receiver would.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commet_core::clock::Clock;

use crate::webhooks::{FailureKind, Transport, TransportFailure, WebhookRequest, WebhookResponse};

/// What the receiver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP status with a short body.
    Status(u16),
    /// An HTTP status with a `Retry-After` header.
    RetryAfter(u16, String),
    /// No answer before the timeout.
    Timeout,
    /// The connection is refused.
    Refused,
}

/// A request the receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// When, on the engine's clock.
    pub at: DateTime<Utc>,
    /// The URL.
    pub url: String,
    /// The headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// What it answered.
    pub reply: Reply,
}

impl Received {
    /// A header's value (ASCII case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Debug, Default)]
struct State {
    scripts: HashMap<String, VecDeque<Reply>>,
    fallbacks: HashMap<String, Reply>,
    received: Vec<Received>,
}

/// A scripted webhook receiver. Every URL answers `200` unless told otherwise: first the
/// replies queued with [`FakeReceiver::script`], then its fallback ([`FakeReceiver::answer`]).
#[derive(Debug)]
pub struct FakeReceiver {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl FakeReceiver {
    /// A receiver that stamps requests with `clock` (the engine's).
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> FakeReceiver {
        FakeReceiver {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answer the next requests to `url` with `replies`, in order.
    pub fn script(&self, url: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state()
            .scripts
            .entry(url.to_owned())
            .or_default()
            .extend(replies);
    }

    /// Answer `url` with `reply` once its script is used up (instead of `200`).
    pub fn answer(&self, url: &str, reply: Reply) {
        self.state().fallbacks.insert(url.to_owned(), reply);
    }

    /// Every request so far, in order.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    /// The requests to `url`, in order.
    #[must_use]
    pub fn received_by(&self, url: &str) -> Vec<Received> {
        self.state()
            .received
            .iter()
            .filter(|received| received.url == url)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl Transport for FakeReceiver {
    async fn send(&self, request: WebhookRequest) -> Result<WebhookResponse, TransportFailure> {
        // A real request waits on the network: let other workers run meanwhile.
        super::yield_now().await;
        let mut state = self.state();
        let reply = state
            .scripts
            .get_mut(&request.url)
            .and_then(VecDeque::pop_front)
            .or_else(|| state.fallbacks.get(&request.url).cloned())
            .unwrap_or(Reply::Status(200));
        state.received.push(Received {
            at: self.clock.now(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            reply: reply.clone(),
        });
        let latency = Duration::from_millis(3);
        match reply {
            Reply::Status(status) => Ok(WebhookResponse {
                status,
                body: format!("answered {status}").into_bytes(),
                retry_after: None,
                latency,
            }),
            Reply::RetryAfter(status, after) => Ok(WebhookResponse {
                status,
                body: b"slow down".to_vec(),
                retry_after: Some(after),
                latency,
            }),
            Reply::Timeout => Err(TransportFailure {
                kind: FailureKind::Timeout,
                message: "no answer within the timeout".into(),
                latency: request.timeout,
            }),
            Reply::Refused => Err(TransportFailure {
                kind: FailureKind::Connect,
                message: "connection refused".into(),
                latency,
            }),
        }
    }
}
