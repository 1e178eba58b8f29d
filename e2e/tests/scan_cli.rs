//! `palisade scan` on a root filesystem holding a real Alpine 3.4 package database (with one
//! invalid entry), matched against Alpine's real secdb for v3.4 imported by `palisade vulndb`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use palisade_testkit::{corpus_path, palisade_binary};

fn rootfs(directory: &Path) -> PathBuf {
    let root = directory.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::create_dir_all(root.join("lib/apk/db")).expect("apk dir");
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME=\"Alpine Linux v3.4\"\n",
    )
    .expect("os-release");
    std::fs::copy(
        corpus_path("images/alpine-3.4-lib-apk-db-installed-with-invalid-entry"),
        root.join("lib/apk/db/installed"),
    )
    .expect("apk database");
    root
}

fn palisade(args: &[&str]) -> Output {
    Command::new(palisade_binary())
        .args(args)
        .output()
        .expect("palisade runs")
}

#[test]
fn an_alpine_image_is_matched_against_alpines_secdb() {
    let temp = tempfile::tempdir().expect("temp");
    let root = rootfs(temp.path());
    let target = format!("dir:{}", root.display());
    let db = temp.path().join("vulndb");
    let db = db.to_str().expect("utf-8 path");

    let missing = palisade(&["scan", &target, "--db", db, "-q"]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(db) && stderr.contains("vulndb import"),
        "{stderr}"
    );

    let secdb = corpus_path("vulndb/alpine-secdb/v3.4");
    let import = palisade(&[
        "vulndb",
        "import",
        "--db",
        db,
        secdb.to_str().expect("path"),
    ]);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let scan = palisade(&["scan", &target, "--db", db, "--format", "json", "-q"]);
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout).expect("json report");
    let packages = report["packages"].as_array().expect("packages");
    let installed = std::fs::read_to_string(root.join("lib/apk/db/installed")).expect("db");
    let entries_with_version = installed
        .split("\n\n")
        .filter(|entry| entry.lines().any(|line| line.starts_with("V:")))
        .count();
    assert_eq!(packages.len(), entries_with_version);
    let issues = report["issues"].as_array().expect("issues");
    assert!(
        issues.iter().any(|issue| issue["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no version")),
        "the entry without a version is reported: {issues:?}"
    );

    // Every finding is an advisory of Alpine's v3.4 secdb naming the package's fix.
    let secdb_text = ["main.yaml", "community.yaml"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(secdb.join(file)).ok())
        .collect::<String>();
    let findings = report["vulnerabilities"]
        .as_array()
        .expect("vulnerabilities");
    assert!(findings.len() > 20, "{} findings", findings.len());
    for finding in findings {
        let id = finding["id"].as_str().expect("id");
        let fixed = finding["fixed_version"].as_str().expect("fixed version");
        assert!(
            secdb_text.contains(id) && secdb_text.contains(fixed),
            "{id} fixed in {fixed} is not in the secdb"
        );
    }

    let gate = palisade(&["scan", &target, "--db", db, "--fail-on", "unknown", "-q"]);
    assert_eq!(gate.status.code(), Some(1), "findings trip the gate");

    let sbom = palisade(&["scan", &target, "--skip-db", "--format", "cyclonedx", "-q"]);
    assert!(sbom.status.success());
    let bom: serde_json::Value = serde_json::from_slice(&sbom.stdout).expect("cyclonedx json");
    assert_eq!(bom["bomFormat"], "CycloneDX");
    let libraries = bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|component| component["type"] == "library")
        .count();
    assert_eq!(libraries, packages.len(), "one component per package");

    let bad_format = palisade(&["scan", &target, "--skip-db", "--format", "xml"]);
    assert!(!bad_format.status.success());
    assert!(String::from_utf8_lossy(&bad_format.stderr).contains("--format"));
}
