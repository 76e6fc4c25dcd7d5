#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| commet_core::__fuzz::token_parse(data));
