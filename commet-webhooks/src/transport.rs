//! [`HttpTransport`]: the [`Transport`] that POSTs deliveries with reqwest over rustls.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use commet_engine::webhooks::{
    FailureKind, MAX_RESPONSE_BYTES, Transport, TransportFailure, WebhookRequest, WebhookResponse,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::{Host, Url};

use crate::resolver::{ForbiddenAddressError, PublicOnlyResolver};
use commet_core::delivery::is_forbidden_address;

/// The `User-Agent` of every delivery: `commet-webhooks/<crate version>`.
pub const USER_AGENT: &str = concat!("commet-webhooks/", env!("CARGO_PKG_VERSION"));

/// Why [`HttpTransport::new`] could not build its clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpTransportError {
    /// rustls refused the TLS configuration (the ring provider and its protocol versions).
    #[error("cannot configure TLS: {0}")]
    Tls(#[source] Box<dyn Error + Send + Sync>),
    /// reqwest refused to build its HTTP client.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] Box<dyn Error + Send + Sync>),
}

/// The real [`Transport`]: one HTTP/1.1 POST per delivery, over HTTPS (rustls, ring, Mozilla's
/// roots) or plain HTTP, as the endpoint URL says.
///
/// Holds two connection-pooling clients built once by [`HttpTransport::new`]: a strict one
/// whose DNS resolver refuses non-public addresses, and a permissive one for requests with
/// [`allow_private_addresses`](WebhookRequest::allow_private_addresses) set. Cloning is cheap
/// (two reference counts) and clones share the connection pools.
///
/// See the [crate documentation](crate) for the contract: whole-exchange timeout, 1 KiB body
/// cap, no redirects, no retries, no proxies.
#[derive(Clone)]
pub struct HttpTransport {
    strict: reqwest::Client,
    permissive: reqwest::Client,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("user_agent", &USER_AGENT)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// Builds the transport: a rustls configuration on the ring provider with Mozilla's root
    /// certificates (no system certificate store needed, no process-wide provider installed),
    /// and the two clients. Needs no runtime; sending needs a Tokio runtime with its time
    /// driver enabled.
    pub fn new() -> Result<HttpTransport, HttpTransportError> {
        let tls = tls_config()?;
        let strict = client_builder(tls.clone())
            .dns_resolver(PublicOnlyResolver)
            .build()
            .map_err(|error| HttpTransportError::Client(Box::new(error)))?;
        let permissive = client_builder(tls)
            .build()
            .map_err(|error| HttpTransportError::Client(Box::new(error)))?;
        Ok(HttpTransport { strict, permissive })
    }

    /// The exchange itself, without the deadline (which [`Transport::send`] puts around it).
    /// Records how far it got in `progress`, which outlives the future when the deadline
    /// drops it.
    async fn exchange(
        &self,
        request: WebhookRequest,
        progress: &mut Progress,
    ) -> Result<Answer, (FailureKind, String)> {
        let url = Url::parse(&request.url)
            .map_err(|error| (FailureKind::Other, format!("invalid URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err((
                FailureKind::Other,
                format!(
                    "unsupported URL scheme {:?}: http or https only",
                    url.scheme()
                ),
            ));
        }
        // A literal address does not go through the resolver: check it here.
        if !request.allow_private_addresses {
            let literal = match url.host() {
                Some(Host::Ipv4(ip)) => Some(ip.into()),
                Some(Host::Ipv6(ip)) => Some(ip.into()),
                Some(Host::Domain(_)) => None,
                None => return Err((FailureKind::Other, "the URL has no host".to_owned())),
            };
            if let Some(ip) = literal.filter(|ip| is_forbidden_address(*ip)) {
                return Err((
                    FailureKind::ForbiddenAddress,
                    format!(
                        "{ip} is a private, loopback or otherwise non-public address, and the \
                         request does not allow private addresses"
                    ),
                ));
            }
        }
        let headers = header_map(request.headers)?;
        let client = if request.allow_private_addresses {
            &self.permissive
        } else {
            &self.strict
        };
        let mut response = client
            .post(url)
            .headers(headers)
            .body(request.body)
            .send()
            .await
            .map_err(send_failure)?;

        let status = response.status().as_u16();
        progress.status = Some(status);
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());

        let expected = response
            .content_length()
            .and_then(|length| usize::try_from(length).ok())
            .unwrap_or(MAX_RESPONSE_BYTES);
        let mut body = Vec::with_capacity(expected.min(MAX_RESPONSE_BYTES));
        while body.len() < MAX_RESPONSE_BYTES {
            let chunk = response.chunk().await.map_err(|error| {
                (
                    FailureKind::Other,
                    format!(
                        "the response body broke after status {status} and {} bytes: {}",
                        body.len(),
                        describe(&error.without_url())
                    ),
                )
            })?;
            let Some(chunk) = chunk else { break };
            let room = MAX_RESPONSE_BYTES - body.len();
            body.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            progress.body_bytes = body.len();
        }
        // Whatever is left of the body is not read: dropping the response closes the
        // connection instead of waiting for a slow or endless body.
        drop(response);
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, request: WebhookRequest) -> Result<WebhookResponse, TransportFailure> {
        let started = Instant::now();
        let timeout = request.timeout;
        let mut progress = Progress::default();
        let outcome = match started.checked_add(timeout) {
            Some(deadline) => {
                let exchange = self.exchange(request, &mut progress);
                match tokio::time::timeout_at(deadline.into(), exchange).await {
                    Ok(outcome) => outcome,
                    Err(_elapsed) => Err((FailureKind::Timeout, timed_out(timeout, &progress))),
                }
            }
            // A timeout too long to add to the clock: no deadline.
            None => self.exchange(request, &mut progress).await,
        };
        let latency = started.elapsed();
        match outcome {
            Ok(Answer {
                status,
                body,
                retry_after,
            }) => Ok(WebhookResponse {
                status,
                body,
                retry_after,
                latency,
            }),
            Err((kind, message)) => Err(TransportFailure {
                kind,
                message,
                latency,
            }),
        }
    }
}

/// A response, before its latency is known.
struct Answer {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<String>,
}

/// How far an exchange got, for the timeout's message.
#[derive(Debug, Default)]
struct Progress {
    status: Option<u16>,
    body_bytes: usize,
}

fn timed_out(timeout: Duration, progress: &Progress) -> String {
    match progress.status {
        None => format!("no response within {timeout:?}"),
        Some(status) => format!(
            "timed out after {timeout:?} reading the response body: status {status} arrived, \
             {} of at most {MAX_RESPONSE_BYTES} body bytes read",
            progress.body_bytes
        ),
    }
}

fn tls_config() -> Result<rustls::ClientConfig, HttpTransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| HttpTransportError::Tls(Box::new(error)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn client_builder(tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .referer(false)
        // A proxy would resolve the host itself, out of the private-address check's reach.
        .no_proxy()
}

fn header_map(headers: Vec<(&'static str, String)>) -> Result<HeaderMap, (FailureKind, String)> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|error| {
            (
                FailureKind::Other,
                format!("invalid header name {name:?}: {error}"),
            )
        })?;
        let value = HeaderValue::try_from(value).map_err(|error| {
            (
                FailureKind::Other,
                format!("invalid value for header {name}: {error}"),
            )
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// Classifies an error of `send` (before any response).
fn send_failure(error: reqwest::Error) -> (FailureKind, String) {
    // The URL is the endpoint's, known to the log already, and may carry a token.
    let error = error.without_url();
    if let Some(forbidden) = find_cause::<ForbiddenAddressError>(&error) {
        return (FailureKind::ForbiddenAddress, forbidden.to_string());
    }
    let kind = if error.is_timeout() {
        FailureKind::Timeout
    } else if error.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Other
    };
    (kind, describe(&error))
}

fn find_cause<'e, T: Error + 'static>(error: &'e (dyn Error + 'static)) -> Option<&'e T> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        current = cause.source();
    }
    None
}

/// The error and its causes, `: `-separated, skipping a cause its parent already spells out.
fn describe(error: &(dyn Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        current = cause.source();
    }
    message
}
