//! Fuzzes webhook signature verification with arbitrary timestamp and signature headers and
//! bodies, as a receiver would get them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_notify::signature::fuzz_verify(data);
});
