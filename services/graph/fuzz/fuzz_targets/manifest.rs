//! Fuzzes the manifest and dump parser with arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = palisade_graph::source::fuzz_manifest(data);
});
