//! Arbitrary bytes fed to every cataloger (dpkg, apk, rpmdb, lock files, archives, binaries).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_scanner::fuzzing::fuzz_catalogers(data);
});
