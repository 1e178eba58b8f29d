#![no_main]

// Arbitrary query text: it parses, or fails with an error pointing inside the text; it never
// panics, recurses without bound or runs long.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_search::query::fuzz_query_text(data);
});
