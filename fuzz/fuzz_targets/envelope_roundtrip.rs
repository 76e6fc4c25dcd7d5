#![no_main]

#[path = "../harness/webhooks.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::envelope_roundtrip(data));
