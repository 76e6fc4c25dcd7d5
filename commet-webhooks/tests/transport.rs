//! `HttpTransport` against a real HTTP server (axum on 127.0.0.1, port 0): what the receiver
//! sees, and what the transport reports for each kind of answer or failure.
// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use commet_engine::webhooks::{FailureKind, MAX_RESPONSE_BYTES, Transport, WebhookRequest};
use commet_webhooks::{HttpTransport, USER_AGENT};
use futures_util::stream;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Longer than any test may take: a server that waits this long is never waited for.
const FOREVER: Duration = Duration::from_secs(30);
/// The loose upper bound proving the transport did not wait for `FOREVER`.
const PROMPTLY: Duration = Duration::from_secs(5);

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct ServerState {
    received: Arc<Mutex<Vec<Received>>>,
}

/// The receiver: records every request, then answers by path.
async fn receive(
    State(state): State<ServerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let seen = {
        let mut received = state.received.lock().unwrap();
        received.push(Received {
            method,
            path: path.clone(),
            headers,
            body,
        });
        received.iter().filter(|r| r.path == path).count()
    };
    match path.as_str() {
        "/ok" => (StatusCode::OK, "thanks").into_response(),
        "/no-content" => StatusCode::NO_CONTENT.into_response(),
        // 500 the first time, 200 after.
        "/flaky" if seen == 1 => (StatusCode::INTERNAL_SERVER_ERROR, "try later").into_response(),
        "/flaky" => (StatusCode::OK, "now fine").into_response(),
        "/sleep" => {
            tokio::time::sleep(FOREVER).await;
            StatusCode::OK.into_response()
        }
        "/gone" => (StatusCode::GONE, "endpoint removed").into_response(),
        "/redirect" => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, "/ok")],
            "moved",
        )
            .into_response(),
        "/moved" => (
            StatusCode::FOUND,
            [(header::LOCATION, "/ok")],
            "found elsewhere",
        )
            .into_response(),
        "/big" => (StatusCode::OK, pattern(5000)).into_response(),
        // Headers at once, then 4 × 300 bytes 20 ms apart, then nothing for 30 s, then more.
        "/slow-body" => {
            let chunks = stream::unfold(0_usize, |sent| async move {
                let (wait, chunk) = match sent {
                    0..4 => (Duration::from_millis(20), pattern_at(sent * 300, 300)),
                    4 => (FOREVER, pattern_at(1200, 300)),
                    _ => return None,
                };
                tokio::time::sleep(wait).await;
                Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), sent + 1))
            });
            (StatusCode::OK, Body::from_stream(chunks)).into_response()
        }
        // Headers at once, 10 bytes, then nothing for 30 s.
        "/trickle" => {
            let chunks = stream::unfold(0_usize, |sent| async move {
                match sent {
                    0 => Some((Ok::<_, std::io::Error>(Bytes::from(pattern(10))), 1)),
                    1 => {
                        tokio::time::sleep(FOREVER).await;
                        Some((Ok(Bytes::from(pattern(10))), 2))
                    }
                    _ => None,
                }
            });
            (StatusCode::OK, Body::from_stream(chunks)).into_response()
        }
        "/retry-after-seconds" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "120")],
            "busy",
        )
            .into_response(),
        "/retry-after-date" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT")],
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `len` bytes of a recognisable pattern.
fn pattern(len: usize) -> Vec<u8> {
    pattern_at(0, len)
}

/// Bytes `start..start + len` of the pattern.
fn pattern_at(start: usize, len: usize) -> Vec<u8> {
    (start..start + len)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz"[i % 36])
        .collect()
}

/// A receiver on 127.0.0.1, stopped on drop.
struct Server {
    address: SocketAddr,
    state: ServerState,
    task: JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = ServerState::default();
        let app = Router::new().fallback(receive).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            address,
            state,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Stops accepting connections (the listener closes); connections still open end with the
    /// test's runtime.
    async fn stop(mut self) {
        self.task.abort();
        let stopped = (&mut self.task).await;
        assert!(stopped.is_err_and(|error| error.is_cancelled()));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A body the size of a typical signed envelope (about 1 KiB of JSON).
fn envelope() -> Vec<u8> {
    let padding = "x".repeat(800);
    format!(
        r#"{{"id":"evt_01","event":"subscription.created","timestamp":"2026-01-01T00:00:00Z","organizationId":"org_1","mode":"live","apiVersion":"2026-01-01","data":{{"note":"{padding}"}}}}"#
    )
    .into_bytes()
}

fn request(url: String) -> WebhookRequest {
    WebhookRequest {
        url,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("x-commet-event", "subscription.created".to_owned()),
            ("x-commet-event-id", "evt_01".to_owned()),
            ("x-commet-timestamp", "1767225600".to_owned()),
            ("x-commet-signature", "ab".repeat(32)),
            ("webhook-id", "evt_01".to_owned()),
            ("webhook-timestamp", "1767225600".to_owned()),
            (
                "webhook-signature",
                "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=".to_owned(),
            ),
        ],
        body: envelope(),
        timeout: Duration::from_secs(10),
        allow_private_addresses: true,
    }
}

fn transport() -> HttpTransport {
    HttpTransport::new().expect("the transport builds")
}

#[tokio::test]
async fn a_2xx_is_returned_and_the_server_gets_every_header_and_the_exact_body() {
    let server = Server::start().await;
    let sent = request(server.url("/ok"));

    let response = transport().send(sent.clone()).await.unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"thanks");
    assert_eq!(response.retry_after, None);
    let received = server.received();
    assert_eq!(received.len(), 1);
    let received = &received[0];
    assert_eq!(received.method, Method::POST);
    assert_eq!(received.path, "/ok");
    assert_eq!(received.body.as_ref(), sent.body.as_slice());
    for (name, value) in &sent.headers {
        let values: Vec<_> = received.headers.get_all(*name).iter().collect();
        assert_eq!(values, [value.as_str()], "header {name}");
    }
    // In the order given.
    let order: Vec<&str> = received
        .headers
        .keys()
        .map(header::HeaderName::as_str)
        .filter(|name| sent.headers.iter().any(|(sent, _)| sent == name))
        .collect();
    let expected: Vec<&str> = sent.headers.iter().map(|(name, _)| *name).collect();
    assert_eq!(order, expected);
    assert_eq!(received.headers[header::USER_AGENT], USER_AGENT);
    assert!(USER_AGENT.starts_with("commet-webhooks/"));
    assert_eq!(
        received.headers[header::CONTENT_LENGTH],
        sent.body.len().to_string().as_str()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_204_has_an_empty_body() {
    let server = Server::start().await;
    let response = transport()
        .send(request(server.url("/no-content")))
        .await
        .unwrap();
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_500_then_a_success_are_two_sends_with_two_answers() {
    let server = Server::start().await;
    let transport = transport();

    let first = transport.send(request(server.url("/flaky"))).await.unwrap();
    let second = transport.send(request(server.url("/flaky"))).await.unwrap();

    assert_eq!(
        (first.status, first.body.as_slice()),
        (500, &b"try later"[..])
    );
    assert_eq!(
        (second.status, second.body.as_slice()),
        (200, &b"now fine"[..])
    );
    assert_eq!(server.received().len(), 2, "no retry of its own");
    server.stop().await;
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_a_timeout() {
    let server = Server::start().await;
    let timeout = Duration::from_millis(300);
    let mut sent = request(server.url("/sleep"));
    sent.timeout = timeout;

    let failure = transport().send(sent).await.unwrap_err();

    assert_eq!(failure.kind, FailureKind::Timeout, "{failure:?}");
    assert!(failure.message.contains("no response"), "{failure:?}");
    assert!(failure.latency >= timeout, "{failure:?}");
    assert!(failure.latency < PROMPTLY, "{failure:?}");
    assert_eq!(server.received().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_410_is_passed_through() {
    let server = Server::start().await;
    let response = transport()
        .send(request(server.url("/gone")))
        .await
        .unwrap();
    assert_eq!(response.status, 410);
    assert_eq!(response.body, b"endpoint removed");
    server.stop().await;
}

#[tokio::test]
async fn a_redirect_is_an_answer_not_followed() {
    let server = Server::start().await;
    let transport = transport();

    let temporary = transport
        .send(request(server.url("/redirect")))
        .await
        .unwrap();
    let found = transport.send(request(server.url("/moved"))).await.unwrap();

    assert_eq!(
        (temporary.status, temporary.body.as_slice()),
        (307, &b"moved"[..])
    );
    assert_eq!(
        (found.status, found.body.as_slice()),
        (302, &b"found elsewhere"[..])
    );
    let paths: Vec<String> = server.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/redirect", "/moved"], "/ok never requested");
    server.stop().await;
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // the listener is dropped: nothing listens there any more

    let failure = transport()
        .send(request(format!("http://127.0.0.1:{port}/ok")))
        .await
        .unwrap_err();

    assert_eq!(failure.kind, FailureKind::Connect, "{failure:?}");
    assert!(failure.latency < PROMPTLY, "{failure:?}");
    assert!(
        !failure.message.contains("127.0.0.1"),
        "no URL: {failure:?}"
    );
}

#[tokio::test]
async fn a_failed_tls_handshake_is_a_connect_failure() {
    // The server speaks plain HTTP: the TLS handshake fails.
    let server = Server::start().await;
    let failure = transport()
        .send(request(format!("https://{}/ok", server.address)))
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Connect, "{failure:?}");
    assert!(server.received().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_not_waited_for_once_a_kib_is_in_hand() {
    let server = Server::start().await;

    let response = transport()
        .send(request(server.url("/slow-body")))
        .await
        .unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(response.body, pattern(MAX_RESPONSE_BYTES));
    assert!(response.latency < PROMPTLY, "{response:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_body_trickling_under_a_kib_until_the_timeout_is_a_timeout_naming_the_status() {
    let server = Server::start().await;
    let timeout = Duration::from_millis(300);
    let mut sent = request(server.url("/trickle"));
    sent.timeout = timeout;

    let failure = transport().send(sent).await.unwrap_err();

    assert_eq!(failure.kind, FailureKind::Timeout, "{failure:?}");
    assert!(failure.message.contains("status 200"), "{failure:?}");
    assert!(
        failure.message.contains("10 of at most 1024"),
        "{failure:?}"
    );
    assert!(failure.latency >= timeout, "{failure:?}");
    assert!(failure.latency < PROMPTLY, "{failure:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_body_longer_than_a_kib_is_cut_to_exactly_1024_bytes() {
    let server = Server::start().await;
    let response = transport().send(request(server.url("/big"))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), 1024);
    assert_eq!(response.body, pattern(1024));
    server.stop().await;
}

#[tokio::test]
async fn retry_after_is_passed_through_raw() {
    let server = Server::start().await;
    let transport = transport();

    let seconds = transport
        .send(request(server.url("/retry-after-seconds")))
        .await
        .unwrap();
    let date = transport
        .send(request(server.url("/retry-after-date")))
        .await
        .unwrap();

    assert_eq!(seconds.status, 503);
    assert_eq!(seconds.retry_after.as_deref(), Some("120"));
    assert_eq!(date.status, 429);
    assert_eq!(
        date.retry_after.as_deref(),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_private_address_is_refused_unless_allowed_and_the_server_sees_nothing() {
    let server = Server::start().await;
    let transport = transport();
    let port = server.address.port();

    for url in [
        // IP literals: checked on the URL.
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://[::1]:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        // 127.0.0.1 spelled as one number: the URL parser normalises it.
        format!("http://2130706433:{port}/ok"),
        // A name: checked by the resolver, at connection time.
        format!("http://localhost:{port}/ok"),
    ] {
        let mut sent = request(url.clone());
        sent.allow_private_addresses = false;
        let failure = transport.send(sent).await.unwrap_err();
        assert_eq!(
            failure.kind,
            FailureKind::ForbiddenAddress,
            "{url}: {failure:?}"
        );
        assert!(failure.latency < PROMPTLY, "{failure:?}");
    }
    assert!(server.received().is_empty(), "{:?}", server.received());

    // The same name, allowed: reaches the server.
    let allowed = transport
        .send(request(format!("http://localhost:{port}/ok")))
        .await
        .unwrap();
    assert_eq!(allowed.status, 200);
    assert_eq!(server.received().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_bad_url_or_header_is_another_failure() {
    let transport = transport();
    for url in ["not a url", "ftp://example.com/hook", "http://"] {
        let failure = transport.send(request(url.to_owned())).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Other, "{url}: {failure:?}");
    }
    let mut sent = request("http://127.0.0.1:9/ok".to_owned());
    sent.headers.push(("bad header", "x".to_owned()));
    let failure = transport.send(sent).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Other, "{failure:?}");
    assert!(failure.message.contains("bad header"), "{failure:?}");
}

#[test]
fn the_transport_is_cheap_to_clone_and_debug_shows_no_internals() {
    let transport = transport();
    let clone = transport.clone();
    let debug = format!("{clone:?}");
    assert!(debug.starts_with("HttpTransport"), "{debug}");
    assert!(debug.contains(USER_AGENT), "{debug}");
}
