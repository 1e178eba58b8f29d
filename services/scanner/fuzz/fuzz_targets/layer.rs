//! Arbitrary bytes as an image layer: gzip, zstd or tar, hostile or broken.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_scanner::fuzzing::fuzz_layer(data);
});
