//! `palisade scan` on a root filesystem holding a real Alpine 3.4 package database (with one
//! invalid entry), matched against Alpine's real secdb for v3.4 imported by `palisade vulndb`.

use std::process::{Command, Output};

use palisade_testkit::{corpus_path, palisade_binary};

mod common;

fn palisade(args: &[&str]) -> Output {
    Command::new(palisade_binary())
        .args(args)
        .output()
        .expect("palisade runs")
}

#[test]
fn an_alpine_image_is_matched_against_alpines_secdb() {
    let temp = tempfile::tempdir().expect("temp");
    let root = common::alpine_rootfs(temp.path());
    let target = format!("dir:{}", root.display());
    let db = temp.path().join("vulndb");
    let db = db.to_str().expect("utf-8 path");

    let missing = palisade(&["scan", "image", &target, "--db", db, "-q"]);
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

    let scan = palisade(&[
        "scan", "image", &target, "--db", db, "--format", "json", "-q",
    ]);
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

    // --exit-code gates on the findings that pass --severity (Trivy's convention)
    let gate = palisade(&[
        "scan",
        "image",
        &target,
        "--db",
        db,
        "--exit-code",
        "7",
        "-q",
    ]);
    assert_eq!(gate.status.code(), Some(7), "findings trip the gate");
    let at_least_high = findings
        .iter()
        .any(|finding| matches!(finding["severity"].as_str(), Some("HIGH" | "CRITICAL")));
    let high_gate = palisade(&[
        "scan",
        "image",
        &target,
        "--db",
        db,
        "--severity",
        "high",
        "--exit-code",
        "7",
        "-q",
    ]);
    assert_eq!(
        high_gate.status.code(),
        Some(if at_least_high { 7 } else { 0 }),
        "only findings at or above --severity count"
    );
    let no_gate = palisade(&["scan", "image", &target, "--db", db, "-q"]);
    assert_eq!(no_gate.status.code(), Some(0), "no --exit-code, no failure");

    let sbom = palisade(&[
        "scan",
        "image",
        &target,
        "--skip-db",
        "--format",
        "cyclonedx",
        "-q",
    ]);
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

    let bad_format = palisade(&["scan", "image", &target, "--skip-db", "--format", "xml"]);
    assert!(!bad_format.status.success());
    assert!(String::from_utf8_lossy(&bad_format.stderr).contains("--format"));
}

/// The same root filesystem as an image in Debian's docker-registry behind basic auth (packed
/// with umoci, pushed with skopeo): `palisade scan docker://...` needs the credentials, takes them
/// from the environment, and finds the same packages as the `dir:` scan.
#[test]
fn a_registry_image_is_scanned_with_credentials_from_the_environment() {
    let temp = tempfile::tempdir().expect("temp");
    let root = common::alpine_rootfs(temp.path());
    let image = common::umoci_image(temp.path(), &root);

    let password = "e2e-s3cret";
    let (_registry, address) = common::start_registry(temp.path(), "e2e", password);
    let target = format!("docker://{address}/e2e/alpine:3.4");
    common::run_tool(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("e2e:{password}"),
        &format!("oci:{image}"),
        &target,
    ]));

    let scan = |credentials: bool| {
        let mut command = Command::new(palisade_binary());
        command
            .args(["scan", "image", &target, "--insecure-registry", &address])
            .args(["--skip-db", "--format", "json", "-q"])
            .env_remove("PALISADE_REGISTRY_USERNAME")
            .env_remove("PALISADE_REGISTRY_PASSWORD");
        if credentials {
            command
                .env("PALISADE_REGISTRY_USERNAME", "e2e")
                .env("PALISADE_REGISTRY_PASSWORD", password);
        }
        command.output().expect("palisade runs")
    };
    let refused = scan(false);
    assert!(!refused.status.success(), "an anonymous pull is refused");
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert!(reason.contains(&address), "{reason}");

    let pulled = scan(true);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&pulled.stdout).expect("json");
    let local = palisade(&[
        "scan",
        "image",
        &format!("dir:{}", root.display()),
        "--skip-db",
        "--format",
        "json",
        "-q",
    ]);
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).expect("json");
    let names = |report: &serde_json::Value| {
        let mut names: Vec<String> = report["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|package| format!("{} {}", package["name"], package["version"]))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&report), names(&local));
    assert!(!names(&report).is_empty());
}
