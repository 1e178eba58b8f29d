//! Every comparison vector of corpora/vulndb/version-vectors, produced by the reference tools
//! (dpkg 1.21.22, rpm 4.18.0, packaging 23.0) and the upstream test tables of apk-tools and
//! rpm, plus a property test against this machine's `dpkg --compare-versions`.

use std::cmp::Ordering;
use std::process::Command;

use palisade_testkit::corpus_path;
use palisade_vulndb::version::{VersionScheme, apk, rpm};
use proptest::prelude::*;

fn parse_op(op: &str) -> Ordering {
    match op {
        "<" => Ordering::Less,
        "=" => Ordering::Equal,
        ">" => Ordering::Greater,
        other => panic!("unknown operator {other:?} in a vector file"),
    }
}

/// Checks every `a<TAB>op<TAB>b` line; returns how many were checked.
fn check_tsv(file: &str, scheme_compare: impl Fn(&str, &str) -> Ordering) -> usize {
    let path = corpus_path(format!("vulndb/version-vectors/{file}"));
    let text = std::fs::read_to_string(&path).expect("vector file is readable");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (line_number, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            fields.len(),
            3,
            "{file}:{} is not a<TAB>op<TAB>b: {line:?}",
            line_number + 1
        );
        let expected = parse_op(fields[1]);
        let actual = scheme_compare(fields[0], fields[2]);
        let reversed = scheme_compare(fields[2], fields[0]);
        if actual != expected || reversed != expected.reverse() {
            failures.push(format!(
                "{file}:{}: {line:?} gave {actual:?}/{reversed:?}",
                line_number + 1
            ));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    checked
}

#[test]
fn dpkg_comparator_matches_all_867_dpkg_vectors() {
    let checked = check_tsv("dpkg.tsv", |left, right| {
        VersionScheme::Dpkg.compare(left, right)
    });
    assert_eq!(checked, 867);
}

#[test]
fn rpm_comparator_matches_all_311_rpm_vectors() {
    let checked = check_tsv("rpm.tsv", rpm::vercmp);
    assert_eq!(checked, 311);
}

#[test]
fn pep440_comparator_matches_all_1382_packaging_vectors() {
    let checked = check_tsv("pep440.tsv", |left, right| {
        VersionScheme::Pep440.compare(left, right)
    });
    assert_eq!(checked, 1382);
}

#[test]
fn rpm_comparator_matches_rpms_own_rpmvercmp_table() {
    let path = corpus_path("vulndb/version-vectors/rpmvercmp.at");
    let text = std::fs::read_to_string(path).expect("rpmvercmp.at is readable");
    let mut checked = 0;
    for line in text.lines() {
        let Some(arguments) = line
            .strip_prefix("RPMVERCMP(")
            .and_then(|rest| rest.strip_suffix(')'))
        else {
            continue;
        };
        let fields: Vec<&str> = arguments.split(", ").collect();
        assert_eq!(fields.len(), 3, "malformed RPMVERCMP line {line:?}");
        let expected = match fields[2] {
            "-1" => Ordering::Less,
            "0" => Ordering::Equal,
            "1" => Ordering::Greater,
            other => panic!("unexpected expectation {other:?}"),
        };
        assert_eq!(rpm::vercmp(fields[0], fields[1]), expected, "{line}");
        checked += 1;
    }
    assert_eq!(checked, 91, "rpmvercmp.at holds 91 expectations");
}

#[test]
fn apk_comparator_matches_apk_tools_own_table() {
    let path = corpus_path("vulndb/version-vectors/apk-version.data");
    let text = std::fs::read_to_string(path).expect("apk-version.data is readable");
    let mut comparisons = 0;
    let mut validity_checks = 0;
    let mut failures = Vec::new();
    for (line_number, raw_line) in text.lines().enumerate() {
        let line = raw_line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [version] => {
                let (expect_valid, candidate) = match version.strip_prefix('!') {
                    Some(invalid) => (false, invalid),
                    None => (true, *version),
                };
                if apk::is_valid(candidate) != expect_valid {
                    failures.push(format!(
                        "line {}: validity of {candidate:?} should be {expect_valid}",
                        line_number + 1
                    ));
                }
                validity_checks += 1;
            }
            [left, op, right] => {
                let ok = match *op {
                    "<" => apk::compare(left, right) == Ordering::Less,
                    "=" => apk::compare(left, right) == Ordering::Equal,
                    ">" => apk::compare(left, right) == Ordering::Greater,
                    "~" => apk::compare_fuzzy(left, right, true) == Ordering::Equal,
                    "!~" => apk::compare_fuzzy(left, right, true) != Ordering::Equal,
                    "<~" => apk::compare_fuzzy(left, right, true) == Ordering::Less,
                    ">~" => apk::compare_fuzzy(left, right, true) == Ordering::Greater,
                    other => panic!("unknown apk operator {other:?} at line {}", line_number + 1),
                };
                if !ok {
                    failures.push(format!("line {}: {line}", line_number + 1));
                }
                comparisons += 1;
            }
            _ => panic!(
                "unexpected apk table line {}: {raw_line:?}",
                line_number + 1
            ),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(comparisons >= 750, "only {comparisons} comparisons found");
    assert!(
        validity_checks >= 30,
        "only {validity_checks} validity checks found"
    );
}

fn dpkg_compare_versions(left: &str, op: &str, right: &str) -> bool {
    let status = Command::new("dpkg")
        .args(["--compare-versions", left, op, right])
        .status()
        .expect("dpkg must be installed for the dpkg property test (apt-get install dpkg)");
    status.success()
}

fn dpkg_order(left: &str, right: &str) -> Ordering {
    if dpkg_compare_versions(left, "lt", right) {
        Ordering::Less
    } else if dpkg_compare_versions(left, "eq", right) {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

/// Versions dpkg accepts without a warning: optional epoch, upstream starting with a digit,
/// optional revision, drawn from the characters that matter (`~`, `+`, `.`, letters, digits).
fn dpkg_version() -> impl Strategy<Value = String> {
    (
        prop::option::of(0u8..3),
        "[0-9][0-9a-z.+~]{0,7}",
        prop::option::of("[0-9a-z+.~]{1,6}"),
    )
        .prop_map(|(epoch, upstream, revision)| {
            let mut version = String::new();
            if let Some(epoch) = epoch {
                version.push_str(&format!("{epoch}:"));
            }
            version.push_str(&upstream);
            if let Some(revision) = revision {
                version.push('-');
                version.push_str(&revision);
            }
            version
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn dpkg_comparator_agrees_with_dpkg_compare_versions(
        left in dpkg_version(),
        right in dpkg_version(),
    ) {
        prop_assert_eq!(VersionScheme::Dpkg.compare(&left, &right), dpkg_order(&left, &right), "{} vs {}", left, right);
    }
}

/// Vectors produced by maven-artifact 3.8.7's `ComparableVersion` (tests/data/MavenVectors.java
/// over tests/data/maven-versions.txt), all pairs of 48 versions.
#[test]
fn maven_comparator_matches_maven_artifact_3_8_7_vectors() {
    let text = include_str!("data/maven-3.8.7.tsv");
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let fields: Vec<&str> = line.split('\t').collect();
        let expected = parse_op(fields[1]);
        if VersionScheme::Maven.compare(fields[0], fields[2]) != expected
            || VersionScheme::Maven.compare(fields[2], fields[0]) != expected.reverse()
        {
            failures.push(line.to_owned());
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 1128);
}
