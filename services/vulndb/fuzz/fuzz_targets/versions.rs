#![no_main]
//! Every version comparator on arbitrary pairs: total, antisymmetric, reflexive, no panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_vulndb::version::fuzz_compare(data);
});
