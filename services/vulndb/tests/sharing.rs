//! The database is shared between processes one at a time (sled holds a lock): an open waits
//! for a holder to finish instead of failing at once, and every import raises a change marker
//! that a server reads without opening the database.

use std::time::Duration;

use palisade_testkit::corpus_path;
use palisade_vulndb::{ImportLimits, VulnDb, VulnDbError};

#[test]
fn every_import_raises_the_generation() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("db");
    let db = VulnDb::open(&path).expect("open");
    assert_eq!(VulnDb::generation(&path), None, "nothing imported yet");
    let secdb = corpus_path("vulndb/alpine-secdb/v3.4/main.yaml");
    db.import_paths(std::slice::from_ref(&secdb), &ImportLimits::default())
        .expect("import");
    assert_eq!(VulnDb::generation(&path), Some(1));
    db.import_paths(&[secdb], &ImportLimits::default())
        .expect("import again");
    assert_eq!(VulnDb::generation(&path), Some(2));
    // a path with nothing to import fails and changes nothing
    let empty = directory.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert!(db.import_paths(&[empty], &ImportLimits::default()).is_err());
    assert_eq!(VulnDb::generation(&path), Some(2));
}

#[test]
fn an_open_waits_for_the_holder_and_gives_up_with_a_clear_error() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("db");
    let holder = VulnDb::open(&path).expect("first open");

    match VulnDb::open_waiting(&path, Duration::from_millis(300), |_| {}) {
        Err(error @ VulnDbError::Busy { .. }) => {
            assert_eq!(error.code(), "VULNDB_BUSY");
            let text = error.to_string();
            assert!(text.contains("in use by another process"), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
        }
        Err(other) => panic!("expected Busy, got {other}"),
        Ok(_) => panic!("two holders at once"),
    }

    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        drop(holder);
    });
    let mut notices = 0;
    let second = VulnDb::open_waiting(&path, Duration::from_secs(30), |_| notices += 1)
        .expect("open after the holder let go");
    release.join().expect("holder thread");
    assert_eq!(notices, 1, "the wait is announced once");
    assert!(second.status().expect("status").sources.is_empty());
}
