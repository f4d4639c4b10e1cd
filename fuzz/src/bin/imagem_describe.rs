//! libFuzzer's entry point for [`fuzz::imagem_describe`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::imagem_describe(data));
