//! Arbitrary ring-buffer records through the bounded decoder and the parameter decoders.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_agent::record::fuzz_decode(data);
});
