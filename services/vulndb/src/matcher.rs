//! Matching SBOM packages against the database: Debian and Ubuntu by source package and source
//! version in the image's release, Alpine by origin in its branch, RPM distributions by binary
//! name, language packages by (ecosystem, name); OSV ranges and version lists evaluated with the
//! ecosystem's own order; VEX statements applied last.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ecosystem::{OsRelease, PackageKind, ecosystem_key, os_ecosystem_keys, package_key};
use crate::error::VulnDbError;
use crate::import::debian::DEBIAN_ANY_RELEASE;
use crate::model::{Affected, AffectedStatus, Event, FixState, RangeKind, Requirements};
use crate::severity::{Severity, SeverityAssessment};
use crate::store::{AdvisoryMeta, VulnDb, package_prefix};
use crate::version::{VersionScheme, compare_installed_to_feed};
use crate::vex::{VexStatement, VexSubject};

/// A package to match, as the SBOM describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageQuery {
    /// Package name (binary package for OS packages).
    pub name: String,
    /// Installed version (with epoch for dpkg/rpm when it has one).
    pub version: String,
    /// Package manager or language ecosystem.
    pub kind: PackageKind,
    /// Source package (dpkg `Source:`, apk origin, rpm SOURCERPM name).
    pub source_name: Option<String>,
    /// Source version (dpkg `Source: name (version)`), when it differs from `version`.
    pub source_version: Option<String>,
    /// Package URL, used for VEX statements.
    pub purl: Option<String>,
}

impl PackageQuery {
    /// A package without source information or purl.
    pub fn new(kind: PackageKind, name: &str, version: &str) -> Self {
        PackageQuery {
            name: name.to_owned(),
            version: version.to_owned(),
            kind,
            source_name: None,
            source_version: None,
            purl: None,
        }
    }
}

/// Options of a match run.
#[derive(Debug, Clone, Default)]
pub struct MatchOptions {
    /// Report only vulnerabilities that have a fixed version.
    pub ignore_unfixed: bool,
    /// Consult Ubuntu Pro (ESM) data for Ubuntu images.
    pub include_ubuntu_pro: bool,
    /// Report RustSec informational advisories (unmaintained, unsound, notices).
    pub include_informational: bool,
    /// Do not apply the VEX documents imported into the database.
    pub skip_imported_vex: bool,
    /// Further VEX statements (from `--vex FILE`).
    pub extra_vex: Vec<VexStatement>,
    /// Package URL of the scanned image, for VEX statements whose product is the image.
    pub target_purl: Option<String>,
}

/// One vulnerability of one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnerabilityMatch {
    /// Index of the package in the query slice.
    pub package_index: usize,
    /// Advisory id.
    pub id: String,
    /// Other ids.
    pub aliases: Vec<String>,
    /// Summary.
    pub summary: String,
    /// Ecosystem of the matching record (`Debian:12`, `PyPI` ...).
    pub ecosystem: String,
    /// Name the record was matched under (the source package for Debian/Ubuntu/Alpine).
    pub matched_name: String,
    /// Version compared (the source version for Debian/Ubuntu).
    pub matched_version: String,
    /// Lowest version that fixes it, when one exists.
    pub fixed_version: Option<String>,
    /// Fix state.
    pub fix_state: FixState,
    /// Severity and its evidence.
    pub severity: SeverityAssessment,
    /// Per-package label from the feed (Debian urgency), when any.
    pub severity_label: Option<String>,
    /// Imported source (file) the record came from.
    pub source: String,
    /// Why it matched: comparator and the range or list that decided.
    pub reason: String,
}

/// A match that a VEX statement suppressed, with the statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuppressedMatch {
    /// The suppressed match.
    pub vulnerability: VulnerabilityMatch,
    /// The statement that suppressed it.
    pub statement: VexStatement,
}

/// The result of matching an SBOM.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MatchReport {
    /// Vulnerabilities found, ordered by package index then id.
    pub matches: Vec<VulnerabilityMatch>,
    /// Vulnerabilities suppressed by VEX.
    pub suppressed: Vec<SuppressedMatch>,
    /// Indexes of OS packages for whose distribution no vulnerability data exists.
    pub unsupported_os_packages: Vec<usize>,
}

/// Minimum severity filter helper: whether a match is at or above a severity.
pub fn at_or_above(vulnerability: &VulnerabilityMatch, minimum: Severity) -> bool {
    vulnerability
        .severity
        .severity
        .max(severity_from_label(vulnerability))
        >= minimum
}

fn severity_from_label(vulnerability: &VulnerabilityMatch) -> Severity {
    if vulnerability.severity.severity != Severity::Unknown {
        return vulnerability.severity.severity;
    }
    vulnerability
        .severity_label
        .as_deref()
        .map_or(Severity::Unknown, Severity::from_label)
}

/// Outcome of evaluating one affected entry against one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluation {
    /// Not affected.
    NotAffected,
    /// Affected; the fixed version when the entry names one, and why.
    Affected {
        /// Lowest fixed version above the installed one.
        fixed: Option<String>,
        /// Explanation.
        reason: String,
    },
}

fn event_version(event: &Event) -> &str {
    match event {
        Event::Introduced(version)
        | Event::Fixed(version)
        | Event::LastAffected(version)
        | Event::Limit(version) => version,
    }
}

fn event_rank(event: &Event) -> u8 {
    match event {
        Event::Introduced(_) => 0,
        Event::LastAffected(_) => 1,
        Event::Fixed(_) => 2,
        Event::Limit(_) => 3,
    }
}

/// Sorts events by version: `introduced: 0` first, `limit: *` last, ties by kind.
fn sort_events(scheme: VersionScheme, events: &mut [&Event]) {
    events.sort_by(|left, right| {
        let left_version = event_version(left);
        let right_version = event_version(right);
        let ordering = match (left_version, right_version) {
            ("0", "0") => Ordering::Equal,
            ("0", _) if matches!(left, Event::Introduced(_)) => Ordering::Less,
            (_, "0") if matches!(right, Event::Introduced(_)) => Ordering::Greater,
            ("*", "*") => Ordering::Equal,
            ("*", _) => Ordering::Greater,
            (_, "*") => Ordering::Less,
            _ => scheme.compare(left_version, right_version),
        };
        ordering.then_with(|| event_rank(left).cmp(&event_rank(right)))
    });
}

/// OSV's evaluation of one range (ossf/osv-schema, "Evaluation").
fn evaluate_range(
    scheme: VersionScheme,
    version: &str,
    events: &[Event],
) -> Option<Option<String>> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sort_events(scheme, &mut sorted);
    let limits: Vec<&str> = sorted
        .iter()
        .filter_map(|event| match event {
            Event::Limit(limit) => Some(limit.as_str()),
            _ => None,
        })
        .collect();
    if !limits.is_empty()
        && !limits.iter().any(|limit| {
            *limit == "*" || compare_installed_to_feed(scheme, version, limit) == Ordering::Less
        })
    {
        return None;
    }
    let mut vulnerable = false;
    for event in &sorted {
        match event {
            Event::Introduced(introduced) => {
                if introduced == "0"
                    || compare_installed_to_feed(scheme, version, introduced) != Ordering::Less
                {
                    vulnerable = true;
                }
            }
            Event::Fixed(fixed) => {
                if compare_installed_to_feed(scheme, version, fixed) != Ordering::Less {
                    vulnerable = false;
                }
            }
            Event::LastAffected(last) => {
                if compare_installed_to_feed(scheme, version, last) == Ordering::Greater {
                    vulnerable = false;
                }
            }
            Event::Limit(_) => {}
        }
    }
    if !vulnerable {
        return None;
    }
    let fixed = sorted.iter().find_map(|event| match event {
        Event::Fixed(fixed)
            if compare_installed_to_feed(scheme, version, fixed) == Ordering::Less =>
        {
            Some(fixed.clone())
        }
        _ => None,
    });
    Some(fixed)
}

fn describe_events(events: &[Event]) -> String {
    events
        .iter()
        .map(|event| match event {
            Event::Introduced(version) => format!("introduced {version}"),
            Event::Fixed(version) => format!("fixed {version}"),
            Event::LastAffected(version) => format!("last_affected {version}"),
            Event::Limit(version) => format!("limit {version}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn evaluate_requirements(version: &str, requirements: &Requirements) -> Evaluation {
    let trimmed = version.trim().trim_start_matches('v');
    let Ok(parsed) = semver::Version::parse(trimmed) else {
        return Evaluation::NotAffected;
    };
    let matches_any = |list: &[String]| {
        list.iter()
            .filter_map(|text| semver::VersionReq::parse(text).ok())
            .any(|requirement| requirement.matches(&parsed))
    };
    if matches_any(&requirements.patched) || matches_any(&requirements.unaffected) {
        return Evaluation::NotAffected;
    }
    // The fix to report: the lowest lower bound of a patched requirement above the installed.
    let mut lowest: Option<semver::Version> = None;
    for requirement in requirements
        .patched
        .iter()
        .filter_map(|text| semver::VersionReq::parse(text).ok())
    {
        for comparator in &requirement.comparators {
            if !matches!(
                comparator.op,
                semver::Op::GreaterEq
                    | semver::Op::Greater
                    | semver::Op::Caret
                    | semver::Op::Tilde
                    | semver::Op::Exact
            ) {
                continue;
            }
            let mut candidate = semver::Version::new(
                comparator.major,
                comparator.minor.unwrap_or(0),
                comparator.patch.unwrap_or(0),
            );
            candidate.pre = comparator.pre.clone();
            if candidate > parsed && lowest.as_ref().is_none_or(|current| candidate < *current) {
                lowest = Some(candidate);
            }
        }
    }
    Evaluation::Affected {
        fixed: lowest.map(|version| version.to_string()),
        reason: format!(
            "semver: patched {:?}, unaffected {:?}",
            requirements.patched, requirements.unaffected
        ),
    }
}

/// Evaluates one affected entry against an installed version.
pub fn evaluate(affected: &Affected, version: &str) -> Evaluation {
    if affected.status == AffectedStatus::NotAffected {
        return Evaluation::NotAffected;
    }
    if let Some(requirements) = &affected.requirements {
        return evaluate_requirements(version, requirements);
    }
    let ecosystem_scheme = VersionScheme::for_ecosystem(&affected.ecosystem);
    let mut listed = false;
    if affected
        .versions
        .iter()
        .any(|listed_version| listed_version == version)
        || affected.versions.iter().any(|listed_version| {
            ecosystem_scheme.compare(listed_version, version) == Ordering::Equal
        })
    {
        listed = true;
    }
    let mut best: Option<(Option<String>, String)> = None;
    for range in &affected.ranges {
        let scheme = match range.kind {
            RangeKind::Semver => VersionScheme::Semver,
            RangeKind::Ecosystem => ecosystem_scheme,
            RangeKind::Git => continue,
        };
        if let Some(fixed) = evaluate_range(scheme, version, &range.events) {
            let reason = format!("{}: {}", scheme.name(), describe_events(&range.events));
            let replace = match (&best, &fixed) {
                (None, _) => true,
                (Some((None, _)), Some(_)) => true,
                (Some((Some(current), _)), Some(candidate)) => {
                    scheme.compare(candidate, current) == Ordering::Less
                }
                _ => false,
            };
            if replace {
                best = Some((fixed, reason));
            }
        }
    }
    match best {
        Some((fixed, reason)) => Evaluation::Affected { fixed, reason },
        None if listed => Evaluation::Affected {
            fixed: None,
            reason: format!("{}: version listed as affected", ecosystem_scheme.name()),
        },
        None => Evaluation::NotAffected,
    }
}

/// One place to look a package up.
struct Lookup {
    ecosystem: String,
    package: String,
    version: String,
    /// Debian's release-less entries apply only where the release has none for the advisory.
    release_less: bool,
}

fn lookups(
    package: &PackageQuery,
    os: Option<&OsRelease>,
    options: &MatchOptions,
) -> Option<Vec<Lookup>> {
    if let Some(ecosystem) = package.kind.language_ecosystem() {
        let key = ecosystem_key(ecosystem);
        return Some(vec![Lookup {
            package: package_key(&key, &package.name),
            ecosystem: key,
            version: package.version.clone(),
            release_less: false,
        }]);
    }
    let os = os?;
    let keys = os_ecosystem_keys(os, package.kind, options.include_ubuntu_pro);
    if keys.is_empty() {
        return None;
    }
    // Debian, Ubuntu and Alpine feeds name source packages (origins); RPM feeds name binaries.
    let (name, version) = match package.kind {
        PackageKind::Deb => (
            package
                .source_name
                .clone()
                .unwrap_or_else(|| package.name.clone()),
            package
                .source_version
                .clone()
                .unwrap_or_else(|| package.version.clone()),
        ),
        PackageKind::Apk => (
            package
                .source_name
                .clone()
                .unwrap_or_else(|| package.name.clone()),
            package.version.clone(),
        ),
        _ => (package.name.clone(), package.version.clone()),
    };
    Some(
        keys.into_iter()
            .map(|key| Lookup {
                release_less: key == DEBIAN_ANY_RELEASE,
                package: package_key(&key, &name),
                ecosystem: key,
                version: version.clone(),
            })
            .collect(),
    )
}

fn subject_of(package: &PackageQuery) -> VexSubject<'_> {
    VexSubject {
        purl: package.purl.as_deref(),
        source_name: package.source_name.as_deref(),
        source_version: package.source_version.as_deref(),
    }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], key: &[u8]) -> Result<T, VulnDbError> {
    postcard::from_bytes(bytes).map_err(|error| VulnDbError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        message: error.to_string(),
    })
}

impl VulnDb {
    /// Loads every imported VEX statement.
    pub fn vex_statements(&self) -> Result<Vec<VexStatement>, VulnDbError> {
        let mut statements = Vec::new();
        for item in self.vex.iter() {
            let (key, value) = item.map_err(|source| VulnDbError::Storage {
                path: self.path().to_path_buf(),
                source,
            })?;
            statements.push(decode(&value, &key)?);
        }
        Ok(statements)
    }

    fn source_names(&self) -> Result<HashMap<u32, String>, VulnDbError> {
        Ok(self
            .status()?
            .sources
            .into_iter()
            .map(|source| (source.id, source.name))
            .collect())
    }

    /// Matches packages of one image (its OS, when known) against the whole database.
    pub fn match_packages(
        &self,
        os: Option<&OsRelease>,
        packages: &[PackageQuery],
        options: &MatchOptions,
    ) -> Result<MatchReport, VulnDbError> {
        let source_names = self.source_names()?;
        let mut metas: HashMap<Vec<u8>, Arc<AdvisoryMeta>> = HashMap::new();
        let mut report = MatchReport::default();
        for (package_index, package) in packages.iter().enumerate() {
            let Some(package_lookups) = lookups(package, os, options) else {
                if package.kind.language_ecosystem().is_none() {
                    report.unsupported_os_packages.push(package_index);
                }
                continue;
            };
            let mut seen_ids: BTreeSet<String> = BTreeSet::new();
            let mut release_specific_ids: BTreeSet<String> = BTreeSet::new();
            for lookup in &package_lookups {
                let prefix = package_prefix(&lookup.ecosystem, &lookup.package);
                for item in self.index.scan_prefix(&prefix) {
                    let (key, value) = item.map_err(|source| VulnDbError::Storage {
                        path: self.path().to_path_buf(),
                        source,
                    })?;
                    // key = prefix, source id (4), advisory id, NUL, position (4)
                    if key.len() < prefix.len() + 4 + 5 {
                        return Err(VulnDbError::Corrupt {
                            key: String::from_utf8_lossy(&key).into_owned(),
                            message: "index key too short".to_owned(),
                        });
                    }
                    let meta_key = &key[prefix.len()..key.len() - 5];
                    let advisory_id = String::from_utf8_lossy(&meta_key[4..]).into_owned();
                    if lookup.release_less && release_specific_ids.contains(&advisory_id) {
                        continue;
                    }
                    if !lookup.release_less {
                        release_specific_ids.insert(advisory_id.clone());
                    }
                    let affected: Affected = decode(&value, &key)?;
                    let Evaluation::Affected { fixed, reason } =
                        evaluate(&affected, &lookup.version)
                    else {
                        continue;
                    };
                    let meta = match metas.get(meta_key) {
                        Some(meta) => Arc::clone(meta),
                        None => {
                            let Some(bytes) = self.advisories.get(meta_key).map_err(|source| {
                                VulnDbError::Storage {
                                    path: self.path().to_path_buf(),
                                    source,
                                }
                            })?
                            else {
                                return Err(VulnDbError::Corrupt {
                                    key: advisory_id,
                                    message: "index entry without its advisory".to_owned(),
                                });
                            };
                            let meta: Arc<AdvisoryMeta> = Arc::new(decode(&bytes, meta_key)?);
                            metas.insert(meta_key.to_vec(), Arc::clone(&meta));
                            meta
                        }
                    };
                    if meta.withdrawn
                        || (meta.informational.is_some() && !options.include_informational)
                    {
                        continue;
                    }
                    if !seen_ids.insert(meta.id.clone()) {
                        continue;
                    }
                    let fix_state = match (&fixed, affected.status) {
                        (Some(_), _) => FixState::Fixed,
                        (None, AffectedStatus::WillNotFix) => FixState::WillNotFix,
                        (None, AffectedStatus::FixDeferred) => FixState::FixDeferred,
                        (None, AffectedStatus::EndOfLife) => FixState::EndOfLife,
                        (None, _) => FixState::NotFixed,
                    };
                    if options.ignore_unfixed && fix_state != FixState::Fixed {
                        continue;
                    }
                    let source_id =
                        u32::from_be_bytes([meta_key[0], meta_key[1], meta_key[2], meta_key[3]]);
                    report.matches.push(VulnerabilityMatch {
                        package_index,
                        id: meta.id.clone(),
                        aliases: meta.aliases.clone(),
                        summary: meta.summary.clone(),
                        ecosystem: affected.ecosystem.clone(),
                        matched_name: affected.package.clone(),
                        matched_version: lookup.version.clone(),
                        fixed_version: fixed,
                        fix_state,
                        severity: meta.severity.clone(),
                        severity_label: affected.severity_label.clone(),
                        source: source_names.get(&source_id).cloned().unwrap_or_default(),
                        reason,
                    });
                }
            }
        }
        self.apply_vex(packages, options, &mut report)?;
        report.matches.sort_by(|left, right| {
            left.package_index
                .cmp(&right.package_index)
                .then_with(|| left.id.cmp(&right.id))
        });
        Ok(report)
    }

    fn apply_vex(
        &self,
        packages: &[PackageQuery],
        options: &MatchOptions,
        report: &mut MatchReport,
    ) -> Result<(), VulnDbError> {
        let mut statements = if options.skip_imported_vex {
            Vec::new()
        } else {
            self.vex_statements()?
        };
        statements.extend(options.extra_vex.iter().cloned());
        statements.retain(|statement| statement.status.suppresses());
        if statements.is_empty() {
            return Ok(());
        }
        let present = |product: &str| {
            options.target_purl.as_deref() == Some(product)
                || packages.iter().any(|package| {
                    let probe = VexStatement {
                        document: String::new(),
                        vulnerability: String::new(),
                        aliases: Vec::new(),
                        products: vec![product.to_owned()],
                        subcomponents: Vec::new(),
                        status: crate::vex::VexStatus::NotAffected,
                        justification: None,
                    };
                    probe.applies_to(&subject_of(package), |_| false)
                })
        };
        let mut kept = Vec::with_capacity(report.matches.len());
        for vulnerability in std::mem::take(&mut report.matches) {
            let Some(package) = packages.get(vulnerability.package_index) else {
                continue;
            };
            let subject = subject_of(package);
            let suppressing = statements.iter().find(|statement| {
                statement.names_vulnerability(&vulnerability.id, &vulnerability.aliases)
                    && statement.applies_to(&subject, present)
            });
            match suppressing {
                Some(statement) => report.suppressed.push(SuppressedMatch {
                    vulnerability,
                    statement: statement.clone(),
                }),
                None => kept.push(vulnerability),
            }
        }
        report.matches = kept;
        Ok(())
    }
}
