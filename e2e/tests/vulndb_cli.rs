//! `palisade vulndb import|status` on real vulnerability data.

use std::process::Command;

use palisade_testkit::{corpus_path, palisade_binary};

#[test]
fn importing_real_feeds_reports_sources_and_status_counts_them() {
    let temp = tempfile::tempdir().expect("temp");
    let db = temp.path().join("vulndb");
    let rustsec = corpus_path("vulndb/rustsec");
    let secdb = corpus_path("vulndb/alpine-secdb");
    let import = Command::new(palisade_binary())
        .args(["vulndb", "import", "--format", "json", "--db"])
        .arg(&db)
        .arg(&rustsec)
        .arg(&secdb)
        .output()
        .expect("cli");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&import.stdout).expect("json");
    let imported: u64 = report["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|source| source["advisories"].as_u64().expect("count"))
        .sum();
    assert!(
        imported > 1_000,
        "RustSec and Alpine secdb hold thousands of advisories, got {imported}"
    );

    let status = Command::new(palisade_binary())
        .args(["vulndb", "status", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .expect("cli");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status["advisories"].as_u64(), Some(imported));

    let missing = Command::new(palisade_binary())
        .args(["vulndb", "import", "--db"])
        .arg(&db)
        .arg(temp.path().join("no-such-feed"))
        .output()
        .expect("cli");
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no-such-feed"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}
