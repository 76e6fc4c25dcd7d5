//! # commet-webhooks
//!
//! The real [`Transport`](commet_engine::webhooks::Transport) of commet's webhook deliveries:
//! [`HttpTransport`] POSTs each signed delivery once, with reqwest over rustls, and reports what
//! came back (status, first KiB of the body, `Retry-After`, latency) or why nothing did
//! ([`FailureKind`](commet_engine::webhooks::FailureKind)). The engine signs, schedules,
//! retries and logs; this crate only moves bytes.
//!
//! ## The contract
//!
//! - **One attempt, no retries.** reqwest's own retry policy is off; the engine schedules
//!   retries.
//! - **Timeout.** [`WebhookRequest::timeout`](commet_engine::webhooks::WebhookRequest::timeout)
//!   bounds the whole exchange: DNS, connecting, TLS, sending, the response head and the body
//!   read. When it passes the result is a `Timeout` failure, with a latency of about the
//!   timeout. If the status line had already arrived but the body was still trickling in (less
//!   than 1 KiB of it), it is still a `Timeout` failure, not a response: a delivery counts only
//!   once its exchange completes. The failure's message says the status arrived and how many
//!   body bytes were read, so the delivery log shows it.
//! - **Body cap.** At most [`MAX_RESPONSE_BYTES`](commet_engine::webhooks::MAX_RESPONSE_BYTES)
//!   (1 KiB) of the response body is read, chunk by chunk; as soon as 1 KiB is in hand the
//!   connection is dropped without waiting for the rest of a slow or endless body. The body is
//!   passed as bytes, undecoded (no compression is negotiated).
//! - **No redirects.** A 3xx is an answer like any other non-2xx (its status and body are
//!   returned); the `Location` is not followed.
//! - **Errors.** Connection refused, unreachable, DNS failure, TLS failure: `Connect`. A
//!   response that breaks off (connection reset mid-head or mid-body), an invalid URL, scheme
//!   or header: `Other`. Messages carry the error's causes but never the URL (it may carry a
//!   token).
//! - **Private addresses.** Unless the request sets
//!   [`allow_private_addresses`](commet_engine::webhooks::WebhookRequest::allow_private_addresses),
//!   a delivery never connects to an address [`is_forbidden_address`](commet_core::delivery::is_forbidden_address) refuses (loopback,
//!   private, link-local, CGNAT, multicast, …): `ForbiddenAddress`. The check happens at
//!   connection time, in the DNS resolver of the client (a name that resolves to a private
//!   address now is refused even if it resolved to a public one when the endpoint was saved;
//!   forbidden addresses are dropped from a mixed answer and only the public ones are tried),
//!   and on the URL itself for an IP-literal host, which no resolver sees. No proxy is used
//!   (environment variables included): a proxy would resolve the host out of the check's
//!   reach. Two clients are built once, a strict and a permissive one, since a client's
//!   resolver is fixed and the allowance is per request.
//! - **TLS.** rustls on the *ring* crypto provider (no OpenSSL, no aws-lc), TLS 1.2 and 1.3,
//!   HTTP/1.1 only. Server certificates are checked against Mozilla's root certificates compiled
//!   in (`webpki-roots`), not the system store: HTTPS works the same on every host, scratch and
//!   distroless containers without `ca-certificates` included. No process-wide crypto provider
//!   is installed: the configuration is passed to reqwest explicitly.
//! - **Headers.** The request's headers are sent in order; reqwest adds `Content-Length`,
//!   `Host`, `Accept: */*` and the `User-Agent` [`USER_AGENT`]
//!   (`commet-webhooks/<version>`). `Retry-After` is passed through raw (lossily decoded as
//!   UTF-8 should it not be ASCII).
//! - **Latency.** Measured with [`std::time::Instant`] from before the request is sent to the
//!   end of the body read, failures included.
//!
//! ## Usage
//!
//! Build one transport at start-up and share it (it is cheap to clone; clones share the
//! connection pools). Sending needs a Tokio runtime with its time driver.
//!
//! ```
//! use std::sync::Arc;
//! use commet_engine::webhooks::Transport;
//! use commet_webhooks::HttpTransport;
//!
//! # fn main() -> Result<(), commet_webhooks::HttpTransportError> {
//! let transport: Arc<dyn Transport> = Arc::new(HttpTransport::new()?);
//! // Billing::new(store, gateway, clock, config)?.with_transport(transport)
//! # drop(transport);
//! # Ok(())
//! # }
//! ```

mod resolver;
mod transport;

pub use transport::{HttpTransport, HttpTransportError, USER_AGENT};
