//! Webhook signing against raw HMAC-SHA256 over the same bytes (goal: signing reaches at
//! least 0.8 of raw speed). `cargo bench -p commet-core --bench signatures`.
//!
//! A delivery computes two HMACs (Commet's over the body, Standard Webhooks' over
//! `{id}.{timestamp}.{body}`), so `sign_delivery` is compared with two raw HMACs of the same
//! byte counts, and each single-scheme function with one. "Raw" is measured two ways: keyed
//! on every call (what a plain implementation does), and from an already keyed state (the
//! bare hashing: the strictest bar, since `WebhookSecret` keeps its keyed states).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use commet_core::webhook::{WebhookSecret, commet_signature, sign_delivery, standard_signature};
use divan::{Bencher, black_box};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn main() {
    assert_eq!(BODY.len(), 1024);
    divan::main();
}

const EVENT_ID: &str = "evt_01hq3zk7w5f8e6j8x9y2n4m3p7";
const TIMESTAMP: i64 = 1_774_449_000;

/// A typical envelope (`invoice.created`), padded with a memo to exactly 1 KiB.
static BODY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let head = r#"{"id":"evt_01hq3zk7w5f8e6j8x9y2n4m3p7","event":"invoice.created","timestamp":"2026-03-25T14:30:00.000Z","organizationId":"org_abc123","mode":"live","apiVersion":"2026-07-31","data":{"invoiceId":"inv_01hq3zk7w5f8e6j8x9y2n4m3p8","customerId":"cus_01hq3zk7w5f8e6j8x9y2n4m3p9","subscriptionId":"sub_01hq3zk7w5f8e6j8x9y2n4m3pa","number":"INV-2026-000042","status":"open","currency":"usd","subtotal":4900,"tax":0,"total":4900,"amountDue":4900,"periodStart":"2026-03-25T14:30:00.000Z","periodEnd":"2026-04-25T14:30:00.000Z","lines":[{"description":"Pro plan (monthly)","quantity":1,"unitAmount":4900,"amount":4900}],"memo":""#;
    let tail = r#""}}"#;
    let mut body = head.to_owned();
    body.push_str(&"x".repeat(1024 - head.len() - tail.len()));
    body.push_str(tail);
    body.into_bytes()
});

static SECRET: LazyLock<WebhookSecret> =
    LazyLock::new(|| WebhookSecret::from_bytes(&[0x5a; 32]).unwrap());

/// The bytes the Standard Webhooks signature covers, concatenated (for the raw baseline).
static STANDARD_MESSAGE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut message = format!("{EVENT_ID}.{TIMESTAMP}.").into_bytes();
    message.extend_from_slice(&BODY);
    message
});

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(TIMESTAMP, 0).unwrap()
}

fn raw_hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn keyed_hmac(keyed: &Hmac<Sha256>, message: &[u8]) -> [u8; 32] {
    let mut mac = keyed.clone();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Both schemes, one secret: the work of one delivery attempt.
#[divan::bench]
fn sign_delivery_1k(bencher: Bencher) {
    let secret = &*SECRET;
    bencher.bench(|| {
        sign_delivery(
            black_box(EVENT_ID),
            black_box("invoice.created"),
            black_box(at()),
            black_box(&BODY),
            black_box(at()),
            &[secret],
        )
        .unwrap()
    });
}

/// Two raw HMACs of the same byte counts as `sign_delivery`, keyed on every call.
#[divan::bench]
fn raw_hmac_x2_1k(bencher: Bencher) {
    let (text, key) = (SECRET.expose().as_bytes(), SECRET.key_bytes());
    bencher.bench(|| {
        (
            raw_hmac(black_box(text), black_box(&BODY)),
            raw_hmac(black_box(key), black_box(&STANDARD_MESSAGE)),
        )
    });
}

/// Two raw HMACs of the same byte counts, from already keyed states (hashing only).
#[divan::bench]
fn raw_hmac_x2_prekeyed_1k(bencher: Bencher) {
    let commet = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.expose().as_bytes()).unwrap();
    let standard = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.key_bytes()).unwrap();
    bencher.bench(|| {
        (
            keyed_hmac(black_box(&commet), black_box(&BODY)),
            keyed_hmac(black_box(&standard), black_box(&STANDARD_MESSAGE)),
        )
    });
}

/// Commet's signature alone (HMAC + hex).
#[divan::bench]
fn commet_signature_1k(bencher: Bencher) {
    let secret = &*SECRET;
    bencher.bench(|| commet_signature(secret, black_box(&BODY)));
}

/// The Standard Webhooks signature alone (HMAC fed piece by piece + base64).
#[divan::bench]
fn standard_signature_1k(bencher: Bencher) {
    let secret = &*SECRET;
    bencher.bench(|| {
        standard_signature(
            secret,
            black_box(EVENT_ID),
            black_box(TIMESTAMP),
            black_box(&BODY),
        )
    });
}

/// One raw HMAC of the body (Commet's byte count), keyed on every call.
#[divan::bench]
fn raw_hmac_body_1k(bencher: Bencher) {
    let text = SECRET.expose().as_bytes();
    bencher.bench(|| raw_hmac(black_box(text), black_box(&BODY)));
}

/// One raw HMAC of the body, from an already keyed state.
#[divan::bench]
fn raw_hmac_body_prekeyed_1k(bencher: Bencher) {
    let commet = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.expose().as_bytes()).unwrap();
    bencher.bench(|| keyed_hmac(black_box(&commet), black_box(&BODY)));
}

/// One raw HMAC of `{id}.{timestamp}.{body}` (Standard's byte count), keyed on every call.
#[divan::bench]
fn raw_hmac_standard_message_1k(bencher: Bencher) {
    let key = SECRET.key_bytes();
    bencher.bench(|| raw_hmac(black_box(key), black_box(&STANDARD_MESSAGE)));
}

/// One raw HMAC of `{id}.{timestamp}.{body}`, from an already keyed state.
#[divan::bench]
fn raw_hmac_standard_message_prekeyed_1k(bencher: Bencher) {
    let standard = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.key_bytes()).unwrap();
    bencher.bench(|| keyed_hmac(black_box(&standard), black_box(&STANDARD_MESSAGE)));
}
