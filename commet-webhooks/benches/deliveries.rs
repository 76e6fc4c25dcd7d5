//! Deliveries per second through `HttpTransport` to a local axum receiver on 127.0.0.1 that
//! reads the body and answers 204: a typical signed envelope (about 1 KiB of JSON, the Commet and
//! Standard Webhooks headers), sent one at a time and 16 at once. Plain HTTP over loopback with
//! pooled keep-alive connections: this measures the transport's own cost (request building,
//! HTTP/1.1, the bounded body read), not TLS or the network.
#![allow(clippy::expect_used)] // benchmark set-up: a failure ends the run

use std::sync::LazyLock;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use commet_engine::webhooks::{Transport, WebhookRequest};
use commet_webhooks::HttpTransport;
use divan::Bencher;
use divan::counter::ItemsCount;
use tokio::runtime::Runtime;

fn main() {
    divan::main();
}

/// The runtime the receiver (and the concurrent sends) run on, the transport and the URL.
struct Fixture {
    runtime: Runtime,
    transport: HttpTransport,
    url: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let url = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("an address");
        let app = Router::new().fallback(|body: Bytes| async move {
            assert!(!body.is_empty());
            StatusCode::NO_CONTENT
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/webhooks/commet")
    });
    let transport = HttpTransport::new().expect("the transport builds");
    Fixture {
        runtime,
        transport,
        url,
    }
});

/// A signed delivery of about 1 KiB, as the engine builds them.
fn request(url: &str) -> WebhookRequest {
    let data = format!(
        r#"{{"id":"sub_01JH2Z3XK4P5Q6R7S8T9V0W1X2","customerId":"cus_01JH2Z3XK4P5Q6R7S8T9V0W1X3","planId":"plan_01JH2Z3XK4P5Q6R7S8T9V0W1X4","status":"active","currency":"USD","amount":4900,"interval":"month","currentPeriodStart":"2026-01-01T00:00:00Z","currentPeriodEnd":"2026-02-01T00:00:00Z","metadata":{{"note":"{}"}}}}"#,
        "x".repeat(480)
    );
    let body = format!(
        r#"{{"id":"evt_01JH2Z3XK4P5Q6R7S8T9V0W1X5","event":"subscription.activated","timestamp":"2026-01-01T00:00:00Z","organizationId":"org_01JH2Z3XK4P5Q6R7S8T9V0W1X6","mode":"live","apiVersion":"2026-01-01","data":{data}}}"#
    )
    .into_bytes();
    WebhookRequest {
        url: url.to_owned(),
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("x-commet-event", "subscription.activated".to_owned()),
            (
                "x-commet-event-id",
                "evt_01JH2Z3XK4P5Q6R7S8T9V0W1X5".to_owned(),
            ),
            ("x-commet-timestamp", "1767225600".to_owned()),
            ("x-commet-signature", "5e".repeat(32)),
            ("webhook-id", "evt_01JH2Z3XK4P5Q6R7S8T9V0W1X5".to_owned()),
            ("webhook-timestamp", "1767225600".to_owned()),
            (
                "webhook-signature",
                "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=".to_owned(),
            ),
        ],
        body,
        timeout: Duration::from_secs(10),
        allow_private_addresses: true,
    }
}

/// One delivery at a time, each awaited before the next (one pooled connection).
#[divan::bench]
fn sequential(bencher: Bencher) {
    let fixture = &*FIXTURE;
    bencher
        .counter(ItemsCount::new(1_usize))
        .with_inputs(|| request(&fixture.url))
        .bench_local_values(|request| {
            let response = fixture
                .runtime
                .block_on(fixture.transport.send(request))
                .expect("delivered");
            assert_eq!(response.status, 204);
        });
}

/// 16 deliveries in flight at once, each its own task (up to 16 pooled connections).
#[divan::bench]
fn concurrent_16(bencher: Bencher) {
    const IN_FLIGHT: usize = 16;
    let fixture = &*FIXTURE;
    bencher
        .counter(ItemsCount::new(IN_FLIGHT))
        .with_inputs(|| {
            (0..IN_FLIGHT)
                .map(|_| request(&fixture.url))
                .collect::<Vec<_>>()
        })
        .bench_local_values(|requests| {
            fixture.runtime.block_on(async {
                let sends: Vec<_> = requests
                    .into_iter()
                    .map(|request| {
                        let transport = fixture.transport.clone();
                        tokio::spawn(async move { transport.send(request).await })
                    })
                    .collect();
                for send in sends {
                    let response = send.await.expect("the task ran").expect("delivered");
                    assert_eq!(response.status, 204);
                }
            });
        });
}
