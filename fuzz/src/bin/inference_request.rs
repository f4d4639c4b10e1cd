//! libFuzzer's entry point for [`fuzz::inference_request`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::inference_request(data));
