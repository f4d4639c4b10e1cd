//! libFuzzer's entry point for [`fuzz::upload_key`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::upload_key(data));
