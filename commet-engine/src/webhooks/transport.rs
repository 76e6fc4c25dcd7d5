//! How a delivery leaves the process: the [`Transport`] trait. The engine signs a delivery,
//! hands it to the transport, and logs what comes back; the transport only moves bytes.
//! `commet-webhooks` has the real one (HTTPS with reqwest); tests use a fake.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

/// The most of a response body a transport reads (and the delivery log keeps): 1 KiB.
pub const MAX_RESPONSE_BYTES: usize = 1024;

/// One HTTP POST of a signed event.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The endpoint's URL.
    pub url: String,
    /// The headers to send, in order (content type, Commet's, Standard Webhooks').
    pub headers: Vec<(&'static str, String)>,
    /// The envelope, as JSON.
    pub body: Vec<u8>,
    /// How long the whole exchange may take, connecting and reading the response included.
    pub timeout: Duration,
    /// May the request reach a non-public address (loopback, private, link-local, CGNAT,
    /// multicast, reserved: [`is_forbidden_address`](commet_core::delivery::is_forbidden_address))?
    /// Unless this is set, a transport refuses such an address, whether the URL names it or
    /// the host resolves to it ([`FailureKind::ForbiddenAddress`]).
    pub allow_private_addresses: bool,
}

impl fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .field("timeout", &self.timeout)
            .field("allow_private_addresses", &self.allow_private_addresses)
            .finish()
    }
}

/// What the receiver answered (any status: the engine decides what counts as delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The first [`MAX_RESPONSE_BYTES`] of the body, at most.
    pub body: Vec<u8>,
    /// The `Retry-After` header as sent, if any (seconds or an HTTP date).
    pub retry_after: Option<String>,
    /// From the start of the request to the end of the body read.
    pub latency: Duration,
}

/// Why no response came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The request's timeout passed.
    Timeout,
    /// No connection: refused, unreachable, DNS failed, TLS failed.
    Connect,
    /// The host resolves to an address the request does not allow.
    ForbiddenAddress,
    /// Anything else (a broken response).
    Other,
}

impl FailureKind {
    /// A short name for logs: `timeout`, `connect`, `forbidden_address`, `other`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::ForbiddenAddress => "forbidden_address",
            FailureKind::Other => "other",
        }
    }
}

/// No response: what went wrong, and how long it took to find out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    /// The kind of failure.
    pub kind: FailureKind,
    /// What happened, for the delivery log.
    pub message: String,
    /// From the start of the request to the failure.
    pub latency: Duration,
}

/// Sends one request. Implementations must give up after [`WebhookRequest::timeout`]
/// ([`FailureKind::Timeout`]: also when the status line came but the body, short of
/// [`MAX_RESPONSE_BYTES`], did not finish in time), must not follow redirects (a 3xx is an
/// answer), read at most [`MAX_RESPONSE_BYTES`] of the body (and stop reading there), and never
/// retry on their own: the engine schedules retries.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Send `request` once.
    async fn send(&self, request: WebhookRequest) -> Result<WebhookResponse, TransportFailure>;
}
