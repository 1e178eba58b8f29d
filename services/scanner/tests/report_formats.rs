//! Every report format written from a real scan with real findings (corpus DSA advisories
//! matched by palisade-vulndb), checked by the formats' own validators where one exists:
//! CycloneDX 1.5 by cyclonedx-python-lib's strict JSON-schema validator, SPDX 2.3 by
//! spdx-tools (`pip install "cyclonedx-python-lib[json-validation]" spdx-tools`).

use std::process::Command;

use palisade_scanner::{
    FindingFilter, OutputFormat, ReportOptions, ScanOptions, ScanReport, Severity, VulnDbMatcher,
    build_sbom, match_sbom, write_report,
};
use palisade_testkit::corpus_path;
use palisade_vulndb::matcher::MatchOptions;
use palisade_vulndb::{ImportLimits, VulnDb};

fn scanned_report(directory: &std::path::Path) -> ScanReport {
    let root = directory.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("dpkg");
    std::fs::create_dir_all(root.join("srv/app")).expect("app");
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"11\"\nPRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\n",
    )
    .expect("os-release");
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: libssl1.1\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 1.1.1n-0+deb11u3\n\n",
    )
    .expect("status");
    std::fs::copy(
        corpus_path("images/lockfiles/rust/Cargo.lock"),
        root.join("srv/app/Cargo.lock"),
    )
    .expect("Cargo.lock");
    let database = VulnDb::open(directory.join("db")).expect("vulndb");
    database
        .import_paths(
            &[corpus_path("vulndb/debian-security-tracker/DSA.list")],
            &ImportLimits::default(),
        )
        .expect("import");
    let matcher = VulnDbMatcher::new(database, MatchOptions::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sbom = runtime
        .block_on(build_sbom(&ScanOptions::new(format!(
            "dir:{}",
            root.display()
        ))))
        .expect("scan");
    let report = match_sbom(sbom, Some(&matcher)).expect("match");
    assert!(
        !report.vulnerabilities.is_empty(),
        "the fixture must have findings"
    );
    report
}

fn render(report: &ScanReport, format: OutputFormat, color: bool) -> String {
    let mut output = Vec::new();
    let options = ReportOptions {
        format,
        color,
        ..ReportOptions::default()
    };
    write_report(report, &options, &mut output).expect("write");
    String::from_utf8(output).expect("utf-8")
}

fn python_validator(script: &str, document: &str) {
    // `make test` points PALISADE_PYTHON at its venv, which holds the validators.
    let python = std::env::var("PALISADE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python)
        .args(["-c", script])
        .env("DOCUMENT", document)
        .output()
        .unwrap_or_else(|error| panic!("{python} is needed for format validation: {error}"));
    assert!(
        output.status.success(),
        "validation failed (needs `pip install \"cyclonedx-python-lib[json-validation]\" spdx-tools`):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn cyclonedx_is_valid_1_5_and_links_findings_to_components() {
    let directory = tempfile::tempdir().expect("temp dir");
    let report = scanned_report(directory.path());
    let text = render(&report, OutputFormat::CycloneDx, false);
    python_validator(
        "import os, sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\nerror = JsonStrictValidator(SchemaVersion.V1_5).validate_str(os.environ['DOCUMENT'])\nif error is not None:\n    sys.exit(str(error))\n",
        &text,
    );
    let document: serde_json::Value = serde_json::from_str(&text).expect("json");
    let components = document["components"].as_array().expect("components");
    assert_eq!(
        components.len(),
        report.sbom.packages.len() + 1,
        "packages plus the operating system"
    );
    let vulnerability = &document["vulnerabilities"][0];
    let affected = vulnerability["affects"][0]["ref"].as_str().expect("ref");
    assert!(
        components.iter().any(|c| c["bom-ref"] == affected),
        "{affected} names a component"
    );
}

#[test]
fn spdx_is_valid_2_3() {
    let directory = tempfile::tempdir().expect("temp dir");
    let report = scanned_report(directory.path());
    let text = render(&report, OutputFormat::Spdx, false);
    let path = directory.path().join("report.spdx.json");
    std::fs::write(&path, &text).expect("write");
    // spdx-tools' own command line (pyspdxtools), run by the venv's Python as `make test` sets
    // it up, since its script is not on the PATH
    let python = std::env::var("PALISADE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python)
        .args([
            "-c",
            "import sys; from spdx_tools.spdx.clitools.pyspdxtools import main; \
             sys.argv = ['pyspdxtools', '-i', sys.argv[1]]; main()",
        ])
        .arg(&path)
        .output()
        .unwrap_or_else(|error| panic!("{python} with spdx-tools is needed: {error}"));
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && !messages.contains("ValidationMessage"),
        "{messages}"
    );
    let document: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    let packages = document["packages"].as_array().expect("packages");
    assert_eq!(
        packages.len(),
        report.sbom.packages.len() + 2,
        "image, operating system and every package"
    );
}

#[test]
fn sarif_has_one_rule_per_advisory_and_one_result_per_finding() {
    let directory = tempfile::tempdir().expect("temp dir");
    let report = scanned_report(directory.path());
    let document: serde_json::Value =
        serde_json::from_str(&render(&report, OutputFormat::Sarif, false)).expect("json");
    assert_eq!(document["version"], "2.1.0");
    let run = &document["runs"][0];
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), report.vulnerabilities.len());
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    for result in results {
        let rule_id = result["ruleId"].as_str().expect("ruleId");
        assert!(
            rules.iter().any(|rule| rule["id"] == rule_id),
            "{rule_id} has a rule"
        );
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().expect("level")));
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "var/lib/dpkg/status"
        );
    }
}

#[test]
fn table_groups_findings_and_colours_only_when_asked() {
    let directory = tempfile::tempdir().expect("temp dir");
    let report = scanned_report(directory.path());
    let plain = render(&report, OutputFormat::Table, false);
    assert!(plain.contains("debian 11 (os packages)"), "{plain}");
    assert!(
        plain.contains("libssl1.1")
            && plain.contains("DSA-5343-1")
            && plain.contains("1.1.1n-0+deb11u4"),
        "{plain}"
    );
    assert!(!plain.contains('\u{1b}'));
    assert!(render(&report, OutputFormat::Table, true).contains('\u{1b}'));
}

#[test]
fn severity_filter_and_unfixed_filter_shape_every_format() {
    let directory = tempfile::tempdir().expect("temp dir");
    let report = scanned_report(directory.path());
    let filter = FindingFilter {
        min_severity: Severity::Critical,
        ignore_unfixed: true,
    };
    let expected = report
        .vulnerabilities
        .iter()
        .filter(|v| filter.accepts(v))
        .count();
    let mut output = Vec::new();
    let options = ReportOptions {
        format: OutputFormat::Json,
        filter,
        color: false,
    };
    write_report(&report, &options, &mut output).expect("write");
    let document: serde_json::Value = serde_json::from_slice(&output).expect("json");
    assert_eq!(
        document["vulnerabilities"].as_array().map(Vec::len),
        Some(expected)
    );
    assert!(report.vulnerabilities.len() > expected || expected == report.vulnerabilities.len());
    assert_eq!(
        report.exit_status(&filter, 2),
        if expected > 0 { 2 } else { 0 }
    );
}
