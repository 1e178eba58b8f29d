#![no_main]
//! OSV, RustSec, Alpine secdb, Debian tracker and VEX parsers on arbitrary bytes.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_vulndb::import::fuzz_parse_feeds(data);
});
