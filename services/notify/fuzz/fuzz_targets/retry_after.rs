//! Fuzzes the Retry-After header parser with what a receiver may send.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_notify::retry::fuzz_retry_after(data);
});
