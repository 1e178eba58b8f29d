//! The scan pipeline wired to the real vulnerability database (palisade-vulndb) over the
//! corpus' real advisories: a Debian image is matched by source package and source version.

use palisade_scanner::{
    FindingFilter, OutputFormat, ReportOptions, ScanOptions, Severity, VulnDbMatcher, build_sbom,
    match_sbom, write_report,
};
use palisade_testkit::corpus_path;
use palisade_vulndb::matcher::MatchOptions;
use palisade_vulndb::{ImportLimits, VulnDb};

fn debian_dsa_database(directory: &std::path::Path) -> VulnDb {
    let database = VulnDb::open(directory.join("db")).expect("open vulndb");
    let report = database
        .import_paths(
            &[corpus_path("vulndb/debian-security-tracker/DSA.list")],
            &ImportLimits::default(),
        )
        .expect("import DSA.list");
    assert!(format!("{report:?}").contains("DSA"), "{report:?}");
    database
}

/// A root filesystem with one os-release and one dpkg status, scanned through `dir:`.
fn rootfs(directory: &std::path::Path, os_release: &str, status: &[u8]) -> std::path::PathBuf {
    let root = directory.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("dpkg dir");
    std::fs::write(root.join("etc/os-release"), os_release).expect("os-release");
    std::fs::write(root.join("var/lib/dpkg/status"), status).expect("status");
    root
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

const BULLSEYE: &str = "ID=debian\nVERSION_ID=\"11\"\nVERSION_CODENAME=bullseye\n";

#[test]
fn bullseye_openssl_below_the_dsa_fix_is_reported_against_the_binary_package() {
    let directory = tempfile::tempdir().expect("temp dir");
    let status = b"Package: libssl1.1\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 1.1.1n-0+deb11u3\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.11.dfsg-2+deb11u2\n\n";
    let root = rootfs(directory.path(), BULLSEYE, status);
    let matcher = VulnDbMatcher::new(
        debian_dsa_database(directory.path()),
        MatchOptions::default(),
    );
    let sbom = runtime()
        .block_on(build_sbom(&ScanOptions::new(format!(
            "dir:{}",
            root.display()
        ))))
        .expect("scan");
    let report = match_sbom(sbom, Some(&matcher)).expect("match");
    let openssl: Vec<_> = report
        .vulnerabilities
        .iter()
        .filter(|v| v.package == "libssl1.1")
        .collect();
    assert!(
        openssl.iter().any(|v| v.id == "DSA-5343-1"),
        "{:?}",
        report.vulnerabilities
    );
    let dsa = openssl
        .iter()
        .find(|v| v.id == "DSA-5343-1")
        .expect("DSA-5343-1");
    assert_eq!(dsa.fixed_version.as_deref(), Some("1.1.1n-0+deb11u4"));
    assert_eq!(dsa.ecosystem, "Debian:11");
    assert!(
        dsa.aliases.iter().any(|alias| alias == "CVE-2023-0286"),
        "{:?}",
        dsa.aliases
    );
    // zlib1g 1:1.2.11.dfsg-2+deb11u2 is exactly DSA-5218-1's fix: not affected.
    assert!(
        !report
            .vulnerabilities
            .iter()
            .any(|v| v.package == "zlib1g" && v.id == "DSA-5218-1")
    );

    let mut json = Vec::new();
    write_report(
        &report,
        &ReportOptions {
            format: OutputFormat::Json,
            ..ReportOptions::default()
        },
        &mut json,
    )
    .expect("json");
    let document: serde_json::Value = serde_json::from_slice(&json).expect("valid json");
    for field in ["target", "os", "packages", "vulnerabilities"] {
        assert!(document.get(field).is_some(), "json report lacks {field}");
    }
    let first = &document["vulnerabilities"][0];
    for field in [
        "id",
        "aliases",
        "package",
        "version",
        "fixed_version",
        "severity",
        "ecosystem",
        "layer",
    ] {
        assert!(
            first.get(field).is_some(),
            "vulnerability lacks {field}: {first}"
        );
    }
    assert_eq!(report.exit_status(&FindingFilter::default(), 3), 3);
    let critical_only = FindingFilter {
        min_severity: Severity::Critical,
        ignore_unfixed: false,
    };
    let gated = report
        .vulnerabilities
        .iter()
        .any(|v| v.severity >= Severity::Critical);
    assert_eq!(
        report.exit_status(&critical_only, 3),
        if gated { 3 } else { 0 }
    );
}

#[test]
fn bookworm_is_not_matched_with_bullseye_fixes() {
    // DSA.list ends in 2023-04 with no bookworm lines: a bookworm image must get no finding.
    let directory = tempfile::tempdir().expect("temp dir");
    let status = std::fs::read(corpus_path("images/debian-bookworm-dpkg-status")).expect("status");
    let os_release = std::fs::read_to_string(corpus_path("images/debian-bookworm-os-release"))
        .expect("os-release");
    let root = rootfs(directory.path(), &os_release, &status);
    let matcher = VulnDbMatcher::new(
        debian_dsa_database(directory.path()),
        MatchOptions::default(),
    );
    let sbom = runtime()
        .block_on(build_sbom(&ScanOptions::new(format!(
            "dir:{}",
            root.display()
        ))))
        .expect("scan");
    assert_eq!(sbom.packages.len(), 741);
    let report = match_sbom(sbom, Some(&matcher)).expect("match");
    assert!(
        report.vulnerabilities.is_empty(),
        "{:?}",
        report.vulnerabilities.first()
    );
    assert_eq!(report.exit_status(&FindingFilter::default(), 1), 0);
}
