//! Every OS package database in the images corpus parses to exactly the package list its own
//! tool (dpkg-query, rpm -qa) printed for the same bytes.

use std::collections::BTreeSet;

use palisade_scanner::{Limits, PackageKind, catalog_file_at, parse_os_release};
use palisade_testkit::corpus_path;

fn read_corpus(relative: &str) -> Vec<u8> {
    std::fs::read(corpus_path(relative))
        .unwrap_or_else(|error| panic!("reading {relative}: {error}"))
}

/// Rows of an `expected/*.packages.txt` oracle, without its header line.
fn oracle_rows(relative: &str) -> Vec<Vec<String>> {
    String::from_utf8(read_corpus(relative))
        .expect("oracle is UTF-8")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            line.split('|')
                .map(|field| field.trim_end().to_string())
                .collect()
        })
        .collect()
}

fn dpkg_matches_oracle(status: &str, oracle: &str) {
    let catalog = catalog_file_at(
        "var/lib/dpkg/status",
        &read_corpus(status),
        &Limits::default(),
    )
    .expect("the dpkg path is cataloged");
    assert!(catalog.issues.is_empty(), "issues: {:?}", catalog.issues);
    let found: BTreeSet<(String, String, String, String, String)> = catalog
        .packages
        .iter()
        .map(|p| {
            assert_eq!(p.kind, PackageKind::Deb);
            (
                p.name.clone(),
                p.version.clone(),
                p.source_name.clone().unwrap_or_default(),
                p.source_version.clone().unwrap_or_default(),
                p.arch.clone().unwrap_or_default(),
            )
        })
        .collect();
    let rows = oracle_rows(oracle);
    // dpkg-query -W also lists packages removed with their configuration left ("rc"); those
    // are not installed software and the cataloger leaves them out on purpose.
    let installed: BTreeSet<_> = rows
        .iter()
        .filter(|row| row[5] == "ii")
        .map(|row| {
            (
                row[0].clone(),
                row[1].clone(),
                row[2].clone(),
                row[3].clone(),
                row[4].clone(),
            )
        })
        .collect();
    assert_eq!(found.len(), catalog.packages.len(), "no duplicate packages");
    assert_eq!(found, installed);
    let removed: Vec<_> = rows
        .iter()
        .filter(|row| row[5] != "ii")
        .map(|row| row[0].clone())
        .collect();
    for name in removed {
        assert!(
            !catalog.packages.iter().any(|p| p.name == name),
            "{name} is not installed"
        );
    }
}

#[test]
fn debian_bookworm_status_equals_dpkg_query() {
    dpkg_matches_oracle(
        "images/debian-bookworm-dpkg-status",
        "images/expected/debian-bookworm-dpkg-status.packages.txt",
    );
}

#[test]
fn ubuntu_bionic_status_equals_dpkg_query() {
    dpkg_matches_oracle(
        "images/ubuntu-18.04-dpkg-status",
        "images/expected/ubuntu-18.04-dpkg-status.packages.txt",
    );
}

#[test]
fn debian_source_versions_that_differ_from_binary_versions_are_kept() {
    let catalog = catalog_file_at(
        "var/lib/dpkg/status",
        &read_corpus("images/debian-bookworm-dpkg-status"),
        &Limits::default(),
    )
    .expect("cataloged");
    let dmsetup = catalog
        .packages
        .iter()
        .find(|p| p.name == "dmsetup")
        .expect("dmsetup present");
    assert_eq!(dmsetup.version, "2:1.02.185-2");
    assert_eq!(dmsetup.advisory_name(), "lvm2");
    assert_eq!(dmsetup.advisory_version(), "2.03.16-2");
    assert!(
        dmsetup
            .purl
            .starts_with("pkg:deb/debian/dmsetup@2:1.02.185-2?arch=amd64"),
        "{}",
        dmsetup.purl
    );
}

fn rpm_matches_oracle(path_in_image: &str, database: &str, oracle: &str) {
    let catalog = catalog_file_at(path_in_image, &read_corpus(database), &Limits::default())
        .expect("rpm path is cataloged");
    assert!(catalog.issues.is_empty(), "issues: {:?}", catalog.issues);
    let found: BTreeSet<(String, String, String, String)> = catalog
        .packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.arch.clone().unwrap_or_default(),
                p.source_name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String, String)> = oracle_rows(oracle)
        .into_iter()
        .filter(|row| row[0] != "gpg-pubkey")
        .map(|row| {
            let evr = if row[1] == "0" || row[1] == "(none)" {
                format!("{}-{}", row[2], row[3])
            } else {
                format!("{}:{}-{}", row[1], row[2], row[3])
            };
            let source = row[5]
                .trim_end_matches(".src.rpm")
                .rsplitn(3, '-')
                .nth(2)
                .unwrap_or_default()
                .to_string();
            (row[0].clone(), evr, row[4].clone(), source)
        })
        .collect();
    assert_eq!(found, expected);
    assert_eq!(found.len(), catalog.packages.len());
}

#[test]
fn rpm_sqlite_database_equals_rpm_qa() {
    rpm_matches_oracle(
        "var/lib/rpm/rpmdb.sqlite",
        "images/rpmdb/cbl-mariner-2.0-rpmdb.sqlite",
        "images/expected/cbl-mariner-2.0-rpmdb.sqlite.packages.txt",
    );
}

#[test]
fn rpm_berkeley_database_equals_rpm_qa() {
    rpm_matches_oracle(
        "var/lib/rpm/Packages",
        "images/rpmdb/libuuid-Packages-bdb",
        "images/expected/libuuid-Packages-bdb.packages.txt",
    );
}

#[test]
fn rpm_ndb_database_parses_every_slot() {
    let catalog = catalog_file_at(
        "usr/lib/sysimage/rpm/Packages.db",
        &read_corpus("images/rpmdb/sle15-bci-Packages.db"),
        &Limits::default(),
    )
    .expect("cataloged");
    assert!(catalog.issues.is_empty(), "issues: {:?}", catalog.issues);
    // Debian's rpm has no NDB backend, so there is no oracle: the file's 35 live slots must
    // each give a complete package of the SLE 15 BCI base image.
    let names: BTreeSet<&str> = catalog.packages.iter().map(|p| p.name.as_str()).collect();
    for expected in [
        "bash",
        "glibc",
        "coreutils",
        "rpm-ndb",
        "perl-base",
        "sles-release",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        catalog
            .packages
            .iter()
            .all(|p| !p.version.is_empty() && p.arch.is_some() && p.source_name.is_some())
    );
    assert_eq!(catalog.packages.len(), 35);
}

#[test]
fn alpine_database_lists_every_package_with_its_origin() {
    let catalog = catalog_file_at(
        "lib/apk/db/installed",
        &read_corpus("images/alpine-3.16-lib-apk-db-installed"),
        &Limits::default(),
    )
    .expect("cataloged");
    assert!(catalog.issues.is_empty());
    assert_eq!(catalog.packages.len(), 14);
    let libssl = catalog
        .packages
        .iter()
        .find(|p| p.name == "libssl1.1")
        .expect("libssl1.1");
    assert_eq!(libssl.source_name.as_deref(), Some("openssl"));
    assert_eq!(libssl.advisory_name(), "openssl");
}

#[test]
fn alpine_database_with_an_invalid_entry_reports_it_and_keeps_the_rest() {
    let content = read_corpus("images/alpine-3.4-lib-apk-db-installed-with-invalid-entry");
    let catalog =
        catalog_file_at("lib/apk/db/installed", &content, &Limits::default()).expect("cataloged");
    assert_eq!(catalog.packages.len(), 15, "every valid record is kept");
    assert_eq!(catalog.issues.len(), 1);
    let issue = &catalog.issues[0];
    assert!(
        issue.reason.contains("invalidPackageWithoutAVersion"),
        "{issue:?}"
    );
    let line = issue.line.expect("the issue names its line") as usize;
    let text = String::from_utf8_lossy(&content);
    assert_eq!(
        text.lines().nth(line - 1),
        Some("P:invalidPackageWithoutAVersion")
    );
}

#[test]
fn os_release_of_the_corpus_is_debian_12() {
    let os = parse_os_release(&read_corpus("images/debian-bookworm-os-release")).expect("parsed");
    assert_eq!(os.display_name(), "debian 12");
    assert_eq!(os.osv_ecosystem().as_deref(), Some("Debian:12"));
    assert_eq!(os.codename.as_deref(), Some("bookworm"));
}
