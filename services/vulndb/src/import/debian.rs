//! The Debian security tracker's formats: the DSA/DLA advisory lists (`data/DSA/list`), the
//! tracker JSON (`/tracker/data/json`, keyed by source package) and `data/CVE/list` entries as
//! parsed by vuln-list-debian. Debian releases become OSV ecosystems (`Debian:12`); an entry
//! without a release (the unstable line of `data/CVE/list`) is stored under the release-less
//! ecosystem `Debian`, which applies to a release only when that release has no entry of its own.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::import::ImportIssue;
use crate::model::{Advisory, Affected, AffectedStatus, Event, Range, RangeKind};
use crate::severity::{self, SeverityAssessment};

/// Release-less ecosystem for statements about unstable that hold for every release without
/// its own statement.
pub const DEBIAN_ANY_RELEASE: &str = "Debian";

/// Debian codenames and their release numbers (OSV names releases by number).
const CODENAMES: [(&str, &str); 15] = [
    ("buzz", "1.1"),
    ("woody", "3.0"),
    ("sarge", "3.1"),
    ("etch", "4"),
    ("lenny", "5"),
    ("squeeze", "6"),
    ("wheezy", "7"),
    ("jessie", "8"),
    ("stretch", "9"),
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("duke", "15"),
];

/// The OSV ecosystem of a Debian codename (`bookworm` -> `Debian:12`, `sid` -> `Debian:sid`).
pub fn ecosystem_for_codename(codename: &str) -> Option<String> {
    let lowered = codename.trim().to_ascii_lowercase();
    let base = lowered.split(['-', '/']).next().unwrap_or(&lowered);
    if base == "sid" || base == "unstable" {
        return Some("Debian:sid".to_owned());
    }
    CODENAMES
        .iter()
        .find(|(name, _)| *name == base)
        .map(|(_, number)| format!("Debian:{number}"))
}

fn fixed_range(version: &str) -> Vec<Range> {
    vec![Range {
        kind: RangeKind::Ecosystem,
        events: vec![
            Event::Introduced("0".to_owned()),
            Event::Fixed(version.to_owned()),
        ],
    }]
}

fn introduced_range() -> Vec<Range> {
    vec![Range {
        kind: RangeKind::Ecosystem,
        events: vec![Event::Introduced("0".to_owned())],
    }]
}

/// Turns a tracker state (`<no-dsa>`, a version ...) into ranges and status; `None` when the
/// state says nothing usable (`<undetermined>`, `<itp>`).
fn state_to_affected(state: &str) -> Option<(Vec<Range>, AffectedStatus)> {
    match state {
        "<not-affected>" | "<removed>" => Some((Vec::new(), AffectedStatus::NotAffected)),
        "<unfixed>" | "<no-dsa>" => Some((introduced_range(), AffectedStatus::Affected)),
        "<ignored>" => Some((introduced_range(), AffectedStatus::WillNotFix)),
        "<postponed>" => Some((introduced_range(), AffectedStatus::FixDeferred)),
        "<end-of-life>" => Some((introduced_range(), AffectedStatus::EndOfLife)),
        "0" => Some((Vec::new(), AffectedStatus::NotAffected)),
        version if !version.starts_with('<') && !version.is_empty() => {
            Some((fixed_range(version), AffectedStatus::Affected))
        }
        _ => None,
    }
}

/// Parses a DSA or DLA list. Each advisory keeps its CVEs as aliases and one affected entry per
/// `[release] - package state` line.
pub fn parse_advisory_list(text: &str, file: &str) -> (Vec<Advisory>, Vec<ImportIssue>) {
    let mut advisories: Vec<Advisory> = Vec::new();
    let mut issues = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line_number = index + 1;
        let entry = || Some(format!("line {line_number}"));
        if raw_line.trim().is_empty() {
            continue;
        }
        if raw_line.starts_with('[') {
            // "[29 Mar 2023] DSA-5380-1 xorg-server - security update"
            let Some((_, after_date)) = raw_line.split_once("] ") else {
                issues.push(ImportIssue::new(
                    file,
                    entry(),
                    "advisory header without a closing ']'".to_owned(),
                ));
                continue;
            };
            let (head, title) = after_date.split_once(" - ").unwrap_or((after_date, ""));
            let mut words = head.split_whitespace();
            let Some(identifier) = words.next() else {
                issues.push(ImportIssue::new(
                    file,
                    entry(),
                    "advisory header without an id".to_owned(),
                ));
                continue;
            };
            let package = words.next().unwrap_or("");
            advisories.push(Advisory {
                id: identifier.to_owned(),
                aliases: Vec::new(),
                summary: format!("{package} - {}", title.trim())
                    .trim_matches([' ', '-'])
                    .to_owned(),
                severity: SeverityAssessment::unknown(),
                withdrawn: false,
                informational: None,
                affected: Vec::new(),
            });
            continue;
        }
        let line = raw_line.trim();
        let Some(current) = advisories.last_mut() else {
            issues.push(ImportIssue::new(
                file,
                entry(),
                "line before the first advisory header".to_owned(),
            ));
            continue;
        };
        if let Some(identifiers) = line
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
        {
            current
                .aliases
                .extend(identifiers.split_whitespace().map(str::to_owned));
            continue;
        }
        if line.starts_with("NOTE:") {
            continue;
        }
        let Some(after_release) = line.strip_prefix('[') else {
            issues.push(ImportIssue::new(
                file,
                entry(),
                format!("unrecognised line {line:?}"),
            ));
            continue;
        };
        let Some((release, statement)) = after_release.split_once(']') else {
            issues.push(ImportIssue::new(
                file,
                entry(),
                "release tag without a closing ']'".to_owned(),
            ));
            continue;
        };
        let Some(ecosystem) = ecosystem_for_codename(release) else {
            issues.push(ImportIssue::new(
                file,
                entry(),
                format!("unknown Debian release {release:?}"),
            ));
            continue;
        };
        let mut words = statement.trim().trim_start_matches('-').split_whitespace();
        let (Some(package), Some(state)) = (words.next(), words.next()) else {
            issues.push(ImportIssue::new(
                file,
                entry(),
                format!("package line without a package and a state: {line:?}"),
            ));
            continue;
        };
        let Some((ranges, status)) = state_to_affected(state) else {
            continue;
        };
        current.affected.push(Affected {
            ecosystem,
            package: package.to_owned(),
            ranges,
            versions: Vec::new(),
            requirements: None,
            status,
            severity_label: None,
        });
    }
    (advisories, issues)
}

#[derive(Deserialize)]
struct TrackerCve {
    #[serde(default)]
    description: String,
    /// The tracker writes `[]` instead of `{}` for a CVE without releases.
    #[serde(default, deserialize_with = "map_or_empty_list")]
    releases: BTreeMap<String, TrackerRelease>,
}

fn map_or_empty_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, TrackerRelease>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum MapOrList {
        Map(BTreeMap<String, TrackerRelease>),
        List(Vec<serde_json::Value>),
    }
    match MapOrList::deserialize(deserializer)? {
        MapOrList::Map(map) => Ok(map),
        MapOrList::List(list) if list.is_empty() => Ok(BTreeMap::new()),
        MapOrList::List(_) => Err(serde::de::Error::custom("releases is a non-empty list")),
    }
}

#[derive(Deserialize)]
struct TrackerRelease {
    status: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    nodsa_reason: Option<String>,
}

/// Whether a JSON value has the tracker's shape: package -> CVE -> {releases}.
pub fn looks_like_tracker_json(value: &serde_json::Value) -> bool {
    let Some(packages) = value.as_object() else {
        return false;
    };
    packages.values().take(3).all(|cves| {
        cves.as_object().is_some_and(|entries| {
            !entries.is_empty()
                && entries
                    .values()
                    .take(3)
                    .all(|entry| entry.get("releases").is_some())
        })
    }) && !packages.is_empty()
}

/// Parses the tracker JSON into one advisory per CVE (or TEMP id) with one affected entry per
/// (package, release).
pub fn parse_tracker_json(
    value: serde_json::Value,
    file: &str,
) -> (Vec<Advisory>, Vec<ImportIssue>) {
    let mut by_identifier: BTreeMap<String, Advisory> = BTreeMap::new();
    let mut issues = Vec::new();
    let serde_json::Value::Object(packages) = value else {
        issues.push(ImportIssue::new(
            file,
            None,
            "tracker JSON is not an object".to_owned(),
        ));
        return (Vec::new(), issues);
    };
    for (package, cves) in packages {
        let serde_json::Value::Object(cves) = cves else {
            issues.push(ImportIssue::new(
                file,
                Some(package.clone()),
                "package entry is not an object".to_owned(),
            ));
            continue;
        };
        for (identifier, cve_value) in cves {
            let cve: TrackerCve = match serde_json::from_value(cve_value) {
                Ok(cve) => cve,
                Err(error) => {
                    issues.push(ImportIssue::new(
                        file,
                        Some(format!("{package}/{identifier}")),
                        format!("bad entry: {error}"),
                    ));
                    continue;
                }
            };
            let advisory = by_identifier
                .entry(identifier.clone())
                .or_insert_with(|| Advisory {
                    id: identifier.clone(),
                    aliases: Vec::new(),
                    summary: super::osv::summary_of("", &cve.description),
                    severity: SeverityAssessment::unknown(),
                    withdrawn: false,
                    informational: None,
                    affected: Vec::new(),
                });
            for (release, state) in cve.releases {
                let Some(ecosystem) = ecosystem_for_codename(&release) else {
                    issues.push(ImportIssue::new(
                        file,
                        Some(format!("{package}/{identifier}/{release}")),
                        "unknown Debian release".to_owned(),
                    ));
                    continue;
                };
                let (ranges, status) = match (state.status.as_str(), state.fixed_version.as_deref())
                {
                    ("resolved", Some("0")) => (Vec::new(), AffectedStatus::NotAffected),
                    ("resolved", Some(version)) if !version.is_empty() => {
                        (fixed_range(version), AffectedStatus::Affected)
                    }
                    ("open", _) => {
                        let status = match (state.nodsa_reason.as_deref(), state.urgency.as_deref())
                        {
                            (_, Some("end-of-life")) => AffectedStatus::EndOfLife,
                            (Some("ignored"), _) => AffectedStatus::WillNotFix,
                            (Some("postponed"), _) => AffectedStatus::FixDeferred,
                            _ => AffectedStatus::Affected,
                        };
                        (introduced_range(), status)
                    }
                    // "undetermined", or resolved without a version: nothing reliable to store.
                    _ => continue,
                };
                advisory.affected.push(Affected {
                    ecosystem,
                    package: package.clone(),
                    ranges,
                    versions: Vec::new(),
                    requirements: None,
                    status,
                    severity_label: state.urgency,
                });
            }
        }
    }
    (by_identifier.into_values().collect(), issues)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParsedCveEntry {
    header: ParsedHeader,
    #[serde(default)]
    annotations: Vec<ParsedAnnotation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParsedHeader {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParsedAnnotation {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default, rename = "Kind")]
    state_kind: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

/// Whether a JSON value is a parsed `data/CVE/list` entry.
pub fn looks_like_parsed_cve_entry(value: &serde_json::Value) -> bool {
    value.get("Header").is_some() && value.get("Annotations").is_some()
}

/// Parses one `data/CVE/list` entry as vuln-list-debian writes it.
pub fn parse_cve_list_entry(value: serde_json::Value) -> Result<Advisory, String> {
    let entry: ParsedCveEntry = serde_json::from_value(value)
        .map_err(|error| format!("not a parsed CVE list entry: {error}"))?;
    let mut affected = Vec::new();
    for (index, annotation) in entry.annotations.iter().enumerate() {
        if annotation.kind != "package" {
            continue;
        }
        let Some(package) = annotation
            .package
            .as_deref()
            .filter(|name| !name.is_empty())
        else {
            return Err(format!("annotation {index} has no package"));
        };
        let ecosystem = match annotation.release.as_deref() {
            None | Some("") => DEBIAN_ANY_RELEASE.to_owned(),
            Some(release) => ecosystem_for_codename(release)
                .ok_or_else(|| format!("annotation {index}: unknown Debian release {release:?}"))?,
        };
        let state = match (
            annotation.state_kind.as_deref(),
            annotation.version.as_deref(),
        ) {
            (Some("fixed"), Some(version)) => version.to_owned(),
            (Some(kind), _) => format!("<{kind}>"),
            (None, _) => return Err(format!("annotation {index} has no kind")),
        };
        let Some((ranges, status)) = state_to_affected(&state) else {
            continue;
        };
        affected.push(Affected {
            ecosystem,
            package: package.to_owned(),
            ranges,
            versions: Vec::new(),
            requirements: None,
            status,
            severity_label: None,
        });
    }
    let description = entry
        .header
        .description
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')');
    Ok(Advisory {
        id: entry.header.id,
        aliases: Vec::new(),
        summary: super::osv::summary_of(description, ""),
        severity: severity::SeverityAssessment::unknown(),
        withdrawn: false,
        informational: None,
        affected,
    })
}
