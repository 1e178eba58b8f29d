#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    palisade_rules::fuzzing::fuzz_rules_input(data);
});
