//! Alpine secdb YAML (`distroversion`, `packages[].pkg.{name, secfixes}`): each CVE listed under
//! a version is fixed in that version of the origin package; version `0` means not affected.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::import::ImportIssue;
use crate::model::{Advisory, Affected, AffectedStatus, Event, Range, RangeKind};
use crate::severity::SeverityAssessment;
use crate::version::apk;

#[derive(Deserialize)]
struct SecdbDocument {
    distroversion: String,
    #[serde(default)]
    packages: Vec<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct PackageEntry {
    pkg: PackageBody,
}

#[derive(Deserialize)]
struct PackageBody {
    name: String,
    #[serde(default)]
    secfixes: BTreeMap<String, Option<Vec<Option<String>>>>,
}

/// Whether a YAML document looks like a secdb file.
pub fn looks_like_secdb(text: &str) -> bool {
    text.contains("distroversion:") && text.contains("packages:")
}

/// Parses a secdb document into one advisory per (CVE, package); bad package entries become
/// issues and are skipped.
pub fn parse_document(text: &str, file: &str) -> Result<(Vec<Advisory>, Vec<ImportIssue>), String> {
    let document: SecdbDocument =
        serde_yaml_ng::from_str(text).map_err(|error| format!("not a secdb document: {error}"))?;
    let branch = document.distroversion.trim();
    let ecosystem = format!(
        "Alpine:{}",
        if branch.starts_with('v') {
            branch.to_owned()
        } else {
            format!("v{branch}")
        }
    );
    let mut issues = Vec::new();
    // (vulnerability id, package) -> lowest fixed version, or None for "not affected".
    let mut fixes: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    for (index, value) in document.packages.into_iter().enumerate() {
        let entry: PackageEntry = match serde_yaml_ng::from_value(value) {
            Ok(entry) => entry,
            Err(error) => {
                issues.push(ImportIssue::new(
                    file,
                    Some(format!("packages[{index}]")),
                    format!("bad package entry: {error}"),
                ));
                continue;
            }
        };
        let package = entry.pkg.name.trim().to_owned();
        for (fixed_version, identifiers) in entry.pkg.secfixes {
            let fixed = fixed_version.trim().to_owned();
            for identifier_line in identifiers.unwrap_or_default().into_iter().flatten() {
                // Lines sometimes carry several ids ("CVE-2019-1 CVE-2019-2") or a note.
                for identifier in identifier_line
                    .split_whitespace()
                    .filter(|word| word.contains('-') && word.chars().any(|c| c.is_ascii_digit()))
                {
                    let key = (identifier.to_owned(), package.clone());
                    let candidate = if fixed == "0" {
                        None
                    } else {
                        Some(fixed.clone())
                    };
                    let merged = match fixes.get(&key) {
                        None => candidate,
                        Some(None) => None,
                        Some(Some(existing)) => match &candidate {
                            None => None,
                            Some(new_fix) if apk::compare(new_fix, existing).is_lt() => candidate,
                            Some(_) => Some(existing.clone()),
                        },
                    };
                    fixes.insert(key, merged);
                }
            }
        }
    }
    let advisories = fixes
        .into_iter()
        .map(|((identifier, package), fixed)| {
            let (ranges, status) = match fixed {
                Some(version) => (
                    vec![Range {
                        kind: RangeKind::Ecosystem,
                        events: vec![Event::Introduced("0".to_owned()), Event::Fixed(version)],
                    }],
                    AffectedStatus::Affected,
                ),
                None => (Vec::new(), AffectedStatus::NotAffected),
            };
            Advisory {
                id: identifier,
                aliases: Vec::new(),
                summary: String::new(),
                severity: SeverityAssessment::unknown(),
                withdrawn: false,
                informational: None,
                affected: vec![Affected {
                    ecosystem: ecosystem.clone(),
                    package,
                    ranges,
                    versions: Vec::new(),
                    requirements: None,
                    status,
                    severity_label: None,
                }],
            }
        })
        .collect();
    Ok((advisories, issues))
}
