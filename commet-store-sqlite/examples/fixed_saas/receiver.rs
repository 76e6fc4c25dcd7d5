//! The story's webhook receivers: an axum server on 127.0.0.1 that verifies every delivery as
//! a receiver of Commet's SDK would (`verify_and_parse`) and as a Standard Webhooks receiver
//! would (`verify_standard`, against the story's clock), and keeps a log of what it saw.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use commet_core::clock::{Clock, TestClock};
use commet_core::webhook::signing::COMMET_SIGNATURE;
use commet_core::webhook::{WebhookSecret, verify_and_parse, verify_standard};
use tokio::task::JoinHandle;

/// What one receiver saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    /// Requests answered 2xx.
    pub(crate) accepted: u64,
    /// Requests answered 503 while it was down.
    pub(crate) refused: u64,
    /// Requests that verified with both schemes.
    pub(crate) verified: u64,
    /// Requests that did not verify (there should be none).
    pub(crate) forged: u64,
    /// Distinct events received.
    pub(crate) events: std::collections::BTreeSet<String>,
}

/// An outage: from, until.
type Window = (DateTime<Utc>, DateTime<Utc>);

#[derive(Debug)]
struct Receivers {
    clock: TestClock,
    secrets: Mutex<BTreeMap<String, WebhookSecret>>,
    down: Mutex<BTreeMap<String, Window>>,
    seen: Mutex<BTreeMap<String, Seen>>,
}

/// The running server.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    receivers: Arc<Receivers>,
    address: SocketAddr,
}

impl Server {
    /// Start on a free port of 127.0.0.1; `clock` is the story's.
    pub(crate) async fn start(clock: TestClock) -> std::io::Result<(Server, JoinHandle<()>)> {
        let receivers = Arc::new(Receivers {
            clock,
            secrets: Mutex::new(BTreeMap::new()),
            down: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(BTreeMap::new()),
        });
        let app = Router::new()
            .route("/hooks/{name}", post(receive))
            .with_state(receivers.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("the receiver stopped: {error}");
            }
        });
        Ok((Server { receivers, address }, task))
    }

    /// The URL of receiver `name`.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://{}/hooks/{name}", self.address)
    }

    /// Give receiver `name` the secret its endpoint signs with.
    pub(crate) fn trust(&self, name: &str, secret: WebhookSecret) {
        lock(&self.receivers.secrets).insert(name.into(), secret);
    }

    /// Receiver `name` answers 503 from `from` until `until` (on the story's clock).
    pub(crate) fn down_between(&self, name: &str, from: DateTime<Utc>, until: DateTime<Utc>) {
        lock(&self.receivers.down).insert(name.into(), (from, until));
    }

    /// What receiver `name` saw.
    pub(crate) fn seen(&self, name: &str) -> Seen {
        lock(&self.receivers.seen)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive(
    State(receivers): State<Arc<Receivers>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = receivers.clock.now();
    let Some(secret) = lock(&receivers.secrets).get(&name).cloned() else {
        return StatusCode::NOT_FOUND;
    };
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(key, value)| Some((key.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let signature = headers
        .get(COMMET_SIGNATURE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    // Commet's SDK: `commet.webhooks.verifyAndParse(payload, signature, secret)`.
    let commet = verify_and_parse(&body, signature, secret.expose());
    // Standard Webhooks: id, timestamp within 5 minutes of now, signature.
    let standard = verify_standard(&pairs, &body, &[&secret], now);
    let down = lock(&receivers.down)
        .get(&name)
        .is_some_and(|(from, until)| *from <= now && now < *until);
    let mut seen = lock(&receivers.seen);
    let seen = seen.entry(name).or_default();
    match (commet, standard) {
        (Ok(envelope), Ok(verified)) if verified.id == envelope.id.to_string() => {
            seen.verified += 1;
            if down {
                seen.refused += 1;
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            seen.accepted += 1;
            seen.events.insert(verified.id);
            StatusCode::NO_CONTENT
        }
        _ => {
            seen.forged += 1;
            StatusCode::UNAUTHORIZED
        }
    }
}
