#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_core::falco::fuzz_falco_json(data);
});
