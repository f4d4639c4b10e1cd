//! libFuzzer's entry point for [`fuzz::descriptors`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::descriptors(data));
