//! Matching against the whole imported corpora/vulndb, checked against expectations worked out
//! by hand from the records. Each expectation names the record lines that justify it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use palisade_testkit::corpus_path;
use palisade_vulndb::vex::{VexStatement, VexStatus};
use palisade_vulndb::{
    FixState, ImportLimits, MatchOptions, MatchReport, OsRelease, PackageKind, PackageQuery,
    Severity, VulnDb,
};

struct Fixture {
    _directory: tempfile::TempDir,
    db: VulnDb,
}

fn database() -> &'static VulnDb {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    &FIXTURE
        .get_or_init(|| {
            let directory = tempfile::tempdir().expect("temp dir");
            let db = VulnDb::open(directory.path().join("db")).expect("database opens");
            let report = db
                .import_paths(&[corpus_path("vulndb")], &ImportLimits::default())
                .expect("corpus imports");
            assert!(
                report.issues.is_empty(),
                "import issues: {:?}",
                report.issues
            );
            Fixture {
                _directory: directory,
                db,
            }
        })
        .db
}

fn deb(name: &str, version: &str, source: Option<(&str, &str)>) -> PackageQuery {
    let mut query = PackageQuery::new(PackageKind::Deb, name, version);
    if let Some((source_name, source_version)) = source {
        query.source_name = Some(source_name.to_owned());
        query.source_version = Some(source_version.to_owned());
    }
    query
}

fn run(os: Option<OsRelease>, package: PackageQuery, options: &MatchOptions) -> MatchReport {
    database()
        .match_packages(os.as_ref(), &[package], options)
        .expect("matching works")
}

fn ids(report: &MatchReport) -> BTreeSet<String> {
    report
        .matches
        .iter()
        .map(|found| found.id.clone())
        .collect()
}

fn fixed_of(report: &MatchReport, id: &str) -> Option<String> {
    report
        .matches
        .iter()
        .find(|found| found.id == id)
        .and_then(|found| found.fixed_version.clone())
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

#[test]
fn debian_11_openssl_is_affected_only_by_the_dsa_fixing_a_later_revision() {
    // DSA.list:114-116 DSA-5343-1: [bullseye] - openssl 1.1.1n-0+deb11u4. The other bullseye
    // openssl lines (DSA.list:658 deb11u3, 767 deb11u2, 891/1400 1.1.1k) fix older versions.
    // CVE-2021-3450 (samples/cve-list-parsed) has no bullseye line; its unstable fix 1.1.1k-1
    // applies and 1.1.1n is newer.
    let report = run(
        Some(OsRelease::new("debian", "11")),
        deb(
            "libssl1.1",
            "1.1.1n-0+deb11u3",
            Some(("openssl", "1.1.1n-0+deb11u3")),
        ),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&report), set(&["DSA-5343-1"]));
    let found = &report.matches[0];
    assert_eq!(found.fixed_version.as_deref(), Some("1.1.1n-0+deb11u4"));
    assert_eq!(found.fix_state, FixState::Fixed);
    assert_eq!(found.matched_name, "openssl");
    assert_eq!(found.ecosystem, "Debian:11");
    assert!(found.aliases.contains(&"CVE-2023-0286".to_owned()));
}

#[test]
fn debian_matching_compares_the_source_version_not_the_binary_version() {
    // A binNMU of the fixed source: binary 1.1.1n-0+deb11u3+b1 < deb11u4, but the source
    // version 1.1.1n-0+deb11u4 equals DSA-5343-1's fix (DSA.list:116), so it is not affected.
    let report = run(
        Some(OsRelease::new("debian", "11")),
        deb(
            "libssl1.1",
            "1.1.1n-0+deb11u3+b1",
            Some(("openssl", "1.1.1n-0+deb11u4")),
        ),
        &MatchOptions::default(),
    );
    assert!(ids(&report).is_empty(), "{:?}", ids(&report));
}

#[test]
fn debian_epochs_are_compared_on_both_sides() {
    // DSA.list:492-494 DSA-5218-1 [bullseye] zlib 1:1.2.11.dfsg-2+deb11u2;
    // DSA.list:860-863 DSA-5111-1 [bullseye] zlib 1:1.2.11.dfsg-2+deb11u1.
    let os = Some(OsRelease::new("debian", "11.6"));
    let equal = run(
        os.clone(),
        deb(
            "zlib1g",
            "1:1.2.11.dfsg-2+deb11u2",
            Some(("zlib", "1:1.2.11.dfsg-2+deb11u2")),
        ),
        &MatchOptions::default(),
    );
    assert!(ids(&equal).is_empty());
    let older = run(
        os,
        deb(
            "zlib1g",
            "1:1.2.11.dfsg-2+deb11u1",
            Some(("zlib", "1:1.2.11.dfsg-2+deb11u1")),
        ),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&older), set(&["DSA-5218-1"]));
}

#[test]
fn debian_release_scoping_keeps_bullseye_fixes_off_bookworm() {
    // DSA.list and DLA.list end in April 2023 without a single [bookworm] line, so the same
    // openssl/zlib versions on Debian 12 match nothing from them.
    let report = run(
        Some(OsRelease::new("debian", "12")),
        deb(
            "zlib1g",
            "1:1.2.11.dfsg-2+deb11u1",
            Some(("zlib", "1:1.2.11.dfsg-2+deb11u1")),
        ),
        &MatchOptions::default(),
    );
    assert!(ids(&report).is_empty(), "{:?}", ids(&report));
}

#[test]
fn debian_unstable_line_applies_only_to_releases_without_their_own() {
    // samples/cve-list-parsed/CVE-2021-33560.json: "- libgcrypt20 1.8.7-6" (unstable),
    // "[buster] - libgcrypt20 1.8.4-5+deb10u1", "[stretch] - libgcrypt20 <no-dsa>".
    let buster = run(
        Some(OsRelease::new("debian", "10")),
        deb("libgcrypt20", "1.8.4-5", None),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&buster), set(&["CVE-2021-33560"]));
    assert_eq!(
        fixed_of(&buster, "CVE-2021-33560").as_deref(),
        Some("1.8.4-5+deb10u1")
    );
    let bullseye = run(
        Some(OsRelease::new("debian", "11")),
        deb("libgcrypt20", "1.8.7-5", None),
        &MatchOptions::default(),
    );
    assert_eq!(
        fixed_of(&bullseye, "CVE-2021-33560").as_deref(),
        Some("1.8.7-6")
    );
    let bullseye_fixed = run(
        Some(OsRelease::new("debian", "11")),
        deb("libgcrypt20", "1.8.7-6", None),
        &MatchOptions::default(),
    );
    assert!(ids(&bullseye_fixed).is_empty());
    // Stretch: <no-dsa> (affected, no fix) plus DLA.list:2082-2084 DLA-2691-1 fixed in
    // 1.7.6-2+deb9u4.
    let stretch = run(
        Some(OsRelease::new("debian", "9")),
        deb("libgcrypt20", "1.7.6-2+deb9u3", None),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&stretch), set(&["CVE-2021-33560", "DLA-2691-1"]));
    let no_dsa = stretch
        .matches
        .iter()
        .find(|found| found.id == "CVE-2021-33560")
        .expect("no-dsa match");
    assert_eq!(
        (no_dsa.fix_state, no_dsa.fixed_version.as_deref()),
        (FixState::NotFixed, None)
    );
    let only_fixed = run(
        Some(OsRelease::new("debian", "9")),
        deb("libgcrypt20", "1.7.6-2+deb9u3", None),
        &MatchOptions {
            ignore_unfixed: true,
            ..MatchOptions::default()
        },
    );
    assert_eq!(ids(&only_fixed), set(&["DLA-2691-1"]));
}

#[test]
fn debian_tracker_json_gives_fixes_statuses_and_urgency() {
    // samples/tracker-json-sample.json: chromium CVE-2022-0456 bookworm resolved
    // 98.0.4758.80-1, buster open with urgency end-of-life; sope CVE-2025-53603 bookworm
    // resolved 5.8.0-1+deb12u1.
    let bookworm = run(
        Some(OsRelease::new("debian", "12")),
        deb("chromium", "97.0.4692.99-1", None),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&bookworm), set(&["CVE-2022-0456"]));
    assert_eq!(
        fixed_of(&bookworm, "CVE-2022-0456").as_deref(),
        Some("98.0.4758.80-1")
    );
    let sope = run(
        Some(OsRelease::new("debian", "12")),
        deb("sope4.9-appserver", "5.8.0-1", Some(("sope", "5.8.0-1"))),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&sope), set(&["CVE-2025-53603"]));
    let buster = run(
        Some(OsRelease::new("debian", "10")),
        deb("chromium", "90.0.4430.212-1~deb10u1", None),
        &MatchOptions::default(),
    );
    let eol = buster
        .matches
        .iter()
        .find(|found| found.id == "CVE-2022-0456")
        .expect("end-of-life entry matches");
    assert_eq!(eol.fix_state, FixState::EndOfLife);
}

#[test]
fn ubuntu_pro_records_apply_only_when_pro_is_in_scope() {
    // samples/ubuntu/UBUNTU-CVE-2016-20013.json lists glibc for Ubuntu:Pro:18.04:LTS with
    // introduced 0 and no fix; images/ubuntu-18.04-dpkg-status has libc6 2.27-3ubuntu1
    // (Source: glibc).
    let package = deb("libc6", "2.27-3ubuntu1", Some(("glibc", "2.27-3ubuntu1")));
    let without_pro = run(
        Some(OsRelease::new("ubuntu", "18.04")),
        package.clone(),
        &MatchOptions::default(),
    );
    assert!(ids(&without_pro).is_empty());
    let with_pro = run(
        Some(OsRelease::new("ubuntu", "18.04")),
        package,
        &MatchOptions {
            include_ubuntu_pro: true,
            ..MatchOptions::default()
        },
    );
    assert_eq!(ids(&with_pro), set(&["UBUNTU-CVE-2016-20013"]));
    assert_eq!(with_pro.matches[0].fix_state, FixState::NotFixed);
    assert_eq!(
        with_pro.matches[0].severity.severity,
        Severity::High,
        "CVSS:3.1 .../A:H scores 7.5"
    );
}

#[test]
fn ubuntu_lts_records_match_by_source_with_their_fixed_version() {
    // samples/ubuntu/UBUNTU-CVE-2021-3782.json and USN-5614-1.json: Ubuntu:18.04:LTS wayland
    // fixed 1.16.0-1ubuntu1.1~18.04.4.
    let report = run(
        Some(OsRelease::new("ubuntu", "18.04")),
        deb(
            "libwayland-client0",
            "1.16.0-1ubuntu1.1~18.04.3",
            Some(("wayland", "1.16.0-1ubuntu1.1~18.04.3")),
        ),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&report), set(&["UBUNTU-CVE-2021-3782", "USN-5614-1"]));
    assert!(
        report
            .matches
            .iter()
            .all(|found| found.fixed_version.as_deref() == Some("1.16.0-1ubuntu1.1~18.04.4"))
    );
}

#[test]
fn alpine_matches_by_origin_in_its_branch() {
    // alpine-secdb/v3.11/main.yaml openssl secfixes: 1.1.1d-r3 CVE-2019-1551; 1.1.1d-r1
    // CVE-2019-1547/1549/1563; 1.1.1b-r1 CVE-2019-1543; 1.1.1a-r0 CVE-2018-0734/0735.
    let mut package = PackageQuery::new(PackageKind::Apk, "libssl1.1", "1.1.1d-r2");
    package.source_name = Some("openssl".to_owned());
    let report = run(
        Some(OsRelease::new("alpine", "3.11.6")),
        package.clone(),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&report), set(&["CVE-2019-1551"]));
    assert_eq!(
        fixed_of(&report, "CVE-2019-1551").as_deref(),
        Some("1.1.1d-r3")
    );
    // No secdb for v3.16 in the corpus: nothing matches there.
    let other_branch = run(
        Some(OsRelease::new("alpine", "3.16.2")),
        package,
        &MatchOptions::default(),
    );
    assert!(ids(&other_branch).is_empty());
}

#[test]
fn almalinux_rpm_matches_by_binary_name_and_epoch() {
    // osv/AlmaLinux_9/all.zip openssl records: ALSA-2026:19218 fixed 1:3.5.5-2.el9_8,
    // ALSA-2026:22312 1:3.5.5-3.el9_8, ALSA-2026:25239 1:3.5.5-4.el9_8; all earlier fixes
    // (up to ALSA-2026:1473 1:3.5.1-7.el9_7) are at or below the installed version.
    let package = PackageQuery::new(PackageKind::Rpm, "openssl", "1:3.5.1-7.el9_7");
    let report = run(
        Some(OsRelease::new("almalinux", "9.6")),
        package,
        &MatchOptions::default(),
    );
    assert_eq!(
        ids(&report),
        set(&["ALSA-2026:19218", "ALSA-2026:22312", "ALSA-2026:25239"])
    );
    assert_eq!(
        fixed_of(&report, "ALSA-2026:19218").as_deref(),
        Some("1:3.5.5-2.el9_8")
    );
}

#[test]
fn pypi_matches_ranges_with_normalised_names() {
    // osv/PyPI/all.zip jinja2: PYSEC-2019-217 fixed 2.10.1, PYSEC-2021-66 fixed 2.11.3;
    // PYSEC-2014-8 (2.7.2), PYSEC-2014-82 (2.7.3), PYSEC-2019-220 (2.8.1) are fixed below 2.10.
    let report = run(
        None,
        PackageQuery::new(PackageKind::PyPI, "Jinja2", "2.10"),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&report), set(&["PYSEC-2019-217", "PYSEC-2021-66"]));
    assert_eq!(
        fixed_of(&report, "PYSEC-2019-217").as_deref(),
        Some("2.10.1")
    );
}

#[test]
fn go_semver_ranges_match_module_versions_with_a_v_prefix() {
    // osv/Go/all.zip golang.org/x/text: GO-2020-0015 fixed 0.3.3, GO-2021-0113 0.3.7,
    // GO-2022-1059 0.3.8, GO-2026-5970 0.39.0 (all SEMVER, introduced 0).
    let report = run(
        None,
        PackageQuery::new(PackageKind::Go, "golang.org/x/text", "v0.3.6"),
        &MatchOptions::default(),
    );
    assert_eq!(
        ids(&report),
        set(&["GO-2021-0113", "GO-2022-1059", "GO-2026-5970"])
    );
    let pseudo = run(
        None,
        PackageQuery::new(
            PackageKind::Go,
            "golang.org/x/text",
            "v0.3.8-0.20220101000000-abcdefabcdef",
        ),
        &MatchOptions::default(),
    );
    // A pseudo-version based on 0.3.8 is a pre-release of 0.3.8: still before the 0.3.8 fix.
    assert_eq!(ids(&pseudo), set(&["GO-2022-1059", "GO-2026-5970"]));
}

#[test]
fn rustsec_requirements_decide_and_report_the_next_patched_version() {
    // rustsec/crates.zip smallvec: RUSTSEC-2021-0003 patched [">= 0.6.14, < 1.0.0", ">= 1.6.1"],
    // unaffected ["< 0.6.3"]; RUSTSEC-2019-0009 and -0012 patched [">= 0.6.10"];
    // RUSTSEC-2018-0003 patched [">= 0.6.3", ...]; RUSTSEC-2018-0018 informational, ">= 0.6.13".
    let current = run(
        None,
        PackageQuery::new(PackageKind::Cargo, "smallvec", "1.6.0"),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&current), set(&["RUSTSEC-2021-0003"]));
    assert_eq!(
        fixed_of(&current, "RUSTSEC-2021-0003").as_deref(),
        Some("1.6.1")
    );
    let old = run(
        None,
        PackageQuery::new(PackageKind::Cargo, "smallvec", "0.6.9"),
        &MatchOptions::default(),
    );
    assert_eq!(
        ids(&old),
        set(&[
            "RUSTSEC-2019-0009",
            "RUSTSEC-2019-0012",
            "RUSTSEC-2021-0003"
        ])
    );
    assert_eq!(
        fixed_of(&old, "RUSTSEC-2021-0003").as_deref(),
        Some("0.6.14")
    );
    let informational = run(
        None,
        PackageQuery::new(PackageKind::Cargo, "smallvec", "0.6.9"),
        &MatchOptions {
            include_informational: true,
            ..MatchOptions::default()
        },
    );
    assert!(ids(&informational).contains("RUSTSEC-2018-0018"));
}

#[test]
fn ghsa_records_match_each_branch_of_npm_and_maven() {
    // osv/samples/ghsa/GHSA-xvch-5gv4-984h.json minimist: [1.0.0, 1.2.6) and [0, 0.2.4).
    let npm_new = run(
        None,
        PackageQuery::new(PackageKind::Npm, "minimist", "1.2.5"),
        &MatchOptions::default(),
    );
    assert_eq!(
        fixed_of(&npm_new, "GHSA-xvch-5gv4-984h").as_deref(),
        Some("1.2.6")
    );
    let npm_old = run(
        None,
        PackageQuery::new(PackageKind::Npm, "minimist", "0.2.1"),
        &MatchOptions::default(),
    );
    assert_eq!(
        fixed_of(&npm_old, "GHSA-xvch-5gv4-984h").as_deref(),
        Some("0.2.4")
    );
    let npm_between = run(
        None,
        PackageQuery::new(PackageKind::Npm, "minimist", "0.2.4"),
        &MatchOptions::default(),
    );
    assert!(ids(&npm_between).is_empty());
    // GHSA-jfh8-c2jp-5v3q.json log4j-core: [2.13.0, 2.15.0), [0, 2.3.1), [2.4, 2.12.2);
    // CVSS:3.1 .../S:C/C:H/I:H/A:H scores 10.0, critical.
    let log4j = run(
        None,
        PackageQuery::new(
            PackageKind::Maven,
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
        ),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&log4j), set(&["GHSA-jfh8-c2jp-5v3q"]));
    assert_eq!(
        fixed_of(&log4j, "GHSA-jfh8-c2jp-5v3q").as_deref(),
        Some("2.15.0")
    );
    assert_eq!(log4j.matches[0].severity.severity, Severity::Critical);
    assert_eq!(log4j.matches[0].severity.cvss_score, Some(10.0));
    let patched_branch = run(
        None,
        PackageQuery::new(
            PackageKind::Maven,
            "org.apache.logging.log4j:log4j-core",
            "2.12.2",
        ),
        &MatchOptions::default(),
    );
    assert!(ids(&patched_branch).is_empty());
}

#[test]
fn chainguard_fixed_zero_means_never_affected() {
    // osv/samples/chainguard/CGA-xcpc-gm23-prj9.json: syncthing fixed 2.0.14-r1;
    // syncthing-compat introduced 0, fixed 0.
    let affected = run(
        Some(OsRelease::new("chainguard", "")),
        PackageQuery::new(PackageKind::Apk, "syncthing", "2.0.14-r0"),
        &MatchOptions::default(),
    );
    assert_eq!(ids(&affected), set(&["CGA-xcpc-gm23-prj9"]));
    let compat = run(
        Some(OsRelease::new("chainguard", "")),
        PackageQuery::new(PackageKind::Apk, "syncthing-compat", "1.0.0-r0"),
        &MatchOptions::default(),
    );
    assert!(ids(&compat).is_empty());
}

fn log4j_with_purl() -> PackageQuery {
    let mut package = PackageQuery::new(
        PackageKind::Maven,
        "org.apache.logging.log4j:log4j-core",
        "2.14.1",
    );
    package.purl = Some("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1".to_owned());
    package
}

#[test]
fn vex_not_affected_statement_suppresses_by_alias_and_purl() {
    // The corpus VEX documents (vex/trivy-testdata-openvex.json) say CVE-2021-44228 does not
    // affect spring-boot@2.6.0: log4j-core itself stays reported.
    let unsuppressed = run(None, log4j_with_purl(), &MatchOptions::default());
    assert_eq!(ids(&unsuppressed), set(&["GHSA-jfh8-c2jp-5v3q"]));
    let statement = VexStatement {
        document: "test".to_owned(),
        vulnerability: "CVE-2021-44228".to_owned(),
        aliases: Vec::new(),
        products: vec!["pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1".to_owned()],
        subcomponents: Vec::new(),
        status: VexStatus::NotAffected,
        justification: Some("vulnerable_code_not_in_execute_path".to_owned()),
    };
    let suppressed = run(
        None,
        log4j_with_purl(),
        &MatchOptions {
            extra_vex: vec![statement.clone()],
            ..MatchOptions::default()
        },
    );
    assert!(suppressed.matches.is_empty());
    assert_eq!(suppressed.suppressed.len(), 1);
    assert_eq!(suppressed.suppressed[0].statement, statement);
    let affected_statement = VexStatement {
        status: VexStatus::Affected,
        ..statement
    };
    let kept = run(
        None,
        log4j_with_purl(),
        &MatchOptions {
            extra_vex: vec![affected_statement],
            ..MatchOptions::default()
        },
    );
    assert_eq!(ids(&kept), set(&["GHSA-jfh8-c2jp-5v3q"]));
}

#[test]
fn vex_subcomponent_statement_applies_only_inside_its_product() {
    let statement = VexStatement {
        document: "test".to_owned(),
        vulnerability: "CVE-2021-44228".to_owned(),
        aliases: Vec::new(),
        products: vec!["pkg:oci/app@sha256%3Aabc".to_owned()],
        subcomponents: vec!["pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1".to_owned()],
        status: VexStatus::NotAffected,
        justification: None,
    };
    let other_image = run(
        None,
        log4j_with_purl(),
        &MatchOptions {
            extra_vex: vec![statement.clone()],
            target_purl: Some("pkg:oci/other@sha256%3Adef".to_owned()),
            ..MatchOptions::default()
        },
    );
    assert_eq!(ids(&other_image), set(&["GHSA-jfh8-c2jp-5v3q"]));
    let this_image = run(
        None,
        log4j_with_purl(),
        &MatchOptions {
            extra_vex: vec![statement],
            target_purl: Some("pkg:oci/app@sha256%3Aabc".to_owned()),
            ..MatchOptions::default()
        },
    );
    assert!(this_image.matches.is_empty());
}

#[test]
fn imported_vex_documents_are_counted_in_status() {
    let status = database().status().expect("status");
    // vex/: openvex (1 + 2 + 1 statements), csaf (1 + 1), cyclonedx (2), Ubuntu openvex (3).
    assert_eq!(status.vex_statements, 11);
    assert!(
        status.advisories > 30_000,
        "{} advisories",
        status.advisories
    );
    let names: Vec<&str> = status
        .sources
        .iter()
        .map(|source| source.name.as_str())
        .collect();
    for expected in [
        "osv/Go/all.zip",
        "osv/PyPI/all.zip",
        "osv/AlmaLinux_9/all.zip",
        "rustsec/crates.zip",
        "alpine-secdb/v3.11/main.yaml",
        "DSA.list",
        "DLA.list",
        "osv/samples/ubuntu",
        "vex",
    ] {
        assert!(
            names.iter().any(|name| name.contains(expected)),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn os_packages_of_unsupported_distributions_are_reported() {
    let report = database()
        .match_packages(
            Some(&OsRelease::new("gentoo", "2.14")),
            &[PackageQuery::new(PackageKind::Deb, "bash", "5.2")],
            &MatchOptions::default(),
        )
        .expect("matching works");
    assert_eq!(report.unsupported_os_packages, vec![0]);
}

#[test]
fn reimporting_a_source_replaces_it_instead_of_duplicating() {
    let directory = tempfile::tempdir().expect("temp dir");
    let db = VulnDb::open(directory.path().join("db")).expect("opens");
    let source: PathBuf = corpus_path("vulndb/osv/samples/ghsa");
    let first = db
        .import_paths(std::slice::from_ref(&source), &ImportLimits::default())
        .expect("imports");
    let second = db
        .import_paths(std::slice::from_ref(&source), &ImportLimits::default())
        .expect("imports again");
    assert_eq!(first.sources[0].advisories, 3);
    assert_eq!(second.sources[0].id, first.sources[0].id);
    let status = db.status().expect("status");
    assert_eq!(status.sources.len(), 1);
    assert_eq!(status.advisories, 3);
    assert_eq!(
        db.index_len(),
        6,
        "minimist 2 + log4j 3 + Newtonsoft.Json 1 entries, once each"
    );
}

#[test]
fn records_without_cvss_take_the_computed_severity_of_the_same_cve_from_another_feed() {
    // DSA.list:1183-1201: DSA-5024-1 (CVE-2021-45105) fixed 2.17.0-1~deb11u1, DSA-5022-1
    // (CVE-2021-45046) 2.16.0-1~deb11u1, DSA-5020-1 (CVE-2021-44228) 2.15.0-1~deb11u1 for
    // bullseye apache-log4j2. DSA lists carry no severity; GHSA-jfh8-c2jp-5v3q
    // (osv/samples/ghsa) aliases CVE-2021-44228 with CVSS:3.1/.../S:C/C:H/I:H/A:H = 10.0.
    let report = run(
        Some(OsRelease::new("debian", "11")),
        deb(
            "liblog4j2-java",
            "2.13.3-1",
            Some(("apache-log4j2", "2.13.3-1")),
        ),
        &MatchOptions::default(),
    );
    assert_eq!(
        ids(&report),
        set(&["DSA-5020-1", "DSA-5022-1", "DSA-5024-1"])
    );
    let log4shell = report
        .matches
        .iter()
        .find(|found| found.id == "DSA-5020-1")
        .expect("DSA-5020-1");
    assert_eq!(log4shell.severity.severity, Severity::Critical);
    assert_eq!(log4shell.severity.cvss_score, Some(10.0));
    assert_eq!(
        log4shell.severity_from.as_deref(),
        Some("GHSA-jfh8-c2jp-5v3q")
    );
    let ghsa_itself = run(None, log4j_with_purl(), &MatchOptions::default());
    assert_eq!(
        ghsa_itself.matches[0].severity_from, None,
        "a record with its own vector keeps it"
    );
}

#[test]
fn a_last_affected_range_covers_its_version_and_below_and_names_no_fix() {
    // osv/PyPI/all.zip PYSEC-2022-42969 (CVE-2022-42969): py, ECOSYSTEM range
    // {introduced: 0, last_affected: 1.11.0} and no fixed event; its explicit version list
    // ends at 1.11.0. 1.4.31 is listed and in the range; 1.11.1 and 1.12.0 are above it.
    let query = |version: &str| PackageQuery::new(PackageKind::PyPI, "py", version);
    let options = MatchOptions::default();
    for affected in ["1.4.31", "1.11.0"] {
        let report = run(None, query(affected), &options);
        assert!(
            ids(&report).contains("PYSEC-2022-42969"),
            "py {affected}: {:?}",
            ids(&report)
        );
        assert_eq!(fixed_of(&report, "PYSEC-2022-42969"), None, "no fix exists");
    }
    // a version outside the explicit list but inside the range is found by the range alone
    let unlisted = run(None, query("1.10.0.post1"), &options);
    assert!(ids(&unlisted).contains("PYSEC-2022-42969"));
    for clean in ["1.11.1", "1.12.0"] {
        let report = run(None, query(clean), &options);
        assert!(
            !ids(&report).contains("PYSEC-2022-42969"),
            "py {clean} is past last_affected"
        );
    }
    // --ignore-unfixed leaves out a finding that has no fix
    let unfixed = run(
        None,
        query("1.11.0"),
        &MatchOptions {
            ignore_unfixed: true,
            ..MatchOptions::default()
        },
    );
    assert!(!ids(&unfixed).contains("PYSEC-2022-42969"));
}
