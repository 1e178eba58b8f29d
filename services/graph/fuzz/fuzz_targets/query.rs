//! Fuzzes the explorer query parser (text and JSON builder forms).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = palisade_graph::explorer::parse_any(text);
    }
});
