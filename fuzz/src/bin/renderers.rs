//! libFuzzer's entry point for [`fuzz::renderers`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::renderers(data));
