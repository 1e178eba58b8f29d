#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    palisade_audit::fuzzing::fuzz_decode(data);
});
