#![no_main]

#[path = "../harness/webhooks.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::webhook_verify_commet(data));
