#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_core::pki::fuzz_signing_request(data);
});
