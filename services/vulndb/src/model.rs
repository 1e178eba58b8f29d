//! The one internal shape every feed is converted to: OSV's model plus a fix status richer than
//! OSV's (Debian's `<no-dsa>`, `<ignored>`, `<postponed>`, `<end-of-life>`), RustSec's semver
//! requirements, and severities computed at import.

use serde::{Deserialize, Serialize};

use crate::severity::SeverityAssessment;

/// One advisory (OSV record, secdb fix, RustSec advisory, DSA, tracker entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// Feed id (`GHSA-...`, `CVE-...`, `DSA-5343-1`, `RUSTSEC-...`).
    pub id: String,
    /// Other ids of the same vulnerability (OSV `aliases` and `upstream`).
    pub aliases: Vec<String>,
    /// One-line summary (may be empty).
    pub summary: String,
    /// Severity computed from the record's CVSS vectors, else its vendor label.
    pub severity: SeverityAssessment,
    /// Withdrawn records are stored (status counts them) but never match.
    pub withdrawn: bool,
    /// RustSec's `informational` kind (`unmaintained`, `unsound`, `notice`): not a
    /// vulnerability, reported only on request.
    pub informational: Option<String>,
    /// Affected packages.
    pub affected: Vec<Affected>,
}

/// One affected package of an advisory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// Ecosystem as the feed writes it (`Debian:12`, `Ubuntu:Pro:18.04:LTS`, `PyPI`).
    pub ecosystem: String,
    /// Package name as the feed writes it (source package for Debian, Ubuntu and Alpine).
    pub package: String,
    /// OSV ranges.
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    pub versions: Vec<String>,
    /// RustSec requirements, when the feed speaks in semver requirements instead of ranges.
    pub requirements: Option<Requirements>,
    /// Fix status when the feed says more than ranges can.
    pub status: AffectedStatus,
    /// Per-package severity label from the feed (Debian urgency), used when no CVSS exists.
    pub severity_label: Option<String>,
}

/// An OSV range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// How events are ordered.
    pub kind: RangeKind,
    /// Events in feed order.
    pub events: Vec<Event>,
}

/// OSV range types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeKind {
    /// SemVer 2.0 precedence regardless of ecosystem.
    Semver,
    /// The ecosystem's own order.
    Ecosystem,
    /// Commit hashes: cannot be evaluated against a version, kept for completeness.
    Git,
}

/// An OSV range event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Vulnerable from this version on (`0` = from the beginning).
    Introduced(String),
    /// Not vulnerable from this version on.
    Fixed(String),
    /// Vulnerable up to and including this version.
    LastAffected(String),
    /// Range applies only below this version (`*` = no limit).
    Limit(String),
}

/// RustSec's `[versions]`: a version is affected unless a patched or unaffected requirement
/// matches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// Requirements of fixed versions (`>= 1.2.3`, `^0.9.1`).
    pub patched: Vec<String>,
    /// Requirements of versions never affected.
    pub unaffected: Vec<String>,
}

/// What a feed says about an affected package beyond its ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AffectedStatus {
    /// Affected where the ranges say so; fixed where they end.
    Affected,
    /// Explicitly not affected in this ecosystem (Debian `<not-affected>`, fixed version `0`).
    NotAffected,
    /// Affected, and the distribution will not fix it (Debian `<ignored>`).
    WillNotFix,
    /// Affected, fix postponed (Debian `<postponed>`, `<no-dsa>`).
    FixDeferred,
    /// The package is no longer supported in this release (Debian `<end-of-life>`).
    EndOfLife,
}

/// The fix state reported with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FixState {
    /// A fixed version exists (reported alongside).
    Fixed,
    /// No fix exists yet.
    NotFixed,
    /// The distribution will not fix it.
    WillNotFix,
    /// The fix is postponed.
    FixDeferred,
    /// The package is end-of-life in this release.
    EndOfLife,
}

impl FixState {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            FixState::Fixed => "fixed",
            FixState::NotFixed => "not_fixed",
            FixState::WillNotFix => "will_not_fix",
            FixState::FixDeferred => "fix_deferred",
            FixState::EndOfLife => "end_of_life",
        }
    }
}
