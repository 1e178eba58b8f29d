//! The one seam between the scan pipeline and the vulnerability database: a scan hands the
//! SBOM to a [`VulnerabilityMatcher`] and gets findings back. The database (crate
//! palisade-vulndb) implements it; a cached SBOM can be matched again without re-reading layers.

use serde::{Deserialize, Serialize};

use crate::sbom::{OsInfo, Package};

/// Severity of a finding, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// No severity was published.
    #[default]
    Unknown,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The uppercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// From a CVSS base score (v3/v4 bands).
    pub fn from_cvss_score(score: f64) -> Self {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::Unknown,
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_uppercase().as_str() {
            "UNKNOWN" => Ok(Severity::Unknown),
            "LOW" | "NEGLIGIBLE" => Ok(Severity::Low),
            "MEDIUM" | "MODERATE" => Ok(Severity::Medium),
            "HIGH" | "IMPORTANT" => Ok(Severity::High),
            "CRITICAL" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity {other:?} (use UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL)"
            )),
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One vulnerability affecting one package of the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// Advisory identifier (CVE-..., GHSA-..., DSA-..., RUSTSEC-...).
    pub id: String,
    /// Other identifiers of the same vulnerability.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Installed package name (the binary package for OS packages).
    pub package: String,
    /// Installed version.
    pub version: String,
    /// First version that fixes it, when one exists.
    pub fixed_version: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// CVSS base score when the advisory carries a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f64>,
    /// OSV ecosystem the match was made in ("Debian:12", "PyPI", ...).
    pub ecosystem: String,
    /// Layer that introduced the package.
    pub layer: String,
    /// Package URL of the affected package.
    #[serde(default)]
    pub purl: String,
    /// Where the package was found in the image.
    #[serde(default)]
    pub location: String,
    /// One-line description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Fix state (`fixed`, `affected`, `will_not_fix`, `fix_deferred`, `end_of_life`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Vulnerability {
    /// A finding for `package`, carrying its location and layer; the matcher fills the rest.
    pub fn for_package(
        package: &Package,
        ecosystem: impl Into<String>,
        id: impl Into<String>,
    ) -> Self {
        Vulnerability {
            id: id.into(),
            aliases: Vec::new(),
            package: package.name.clone(),
            version: package.version.clone(),
            fixed_version: None,
            severity: Severity::Unknown,
            cvss_score: None,
            ecosystem: ecosystem.into(),
            layer: package.layer.clone(),
            purl: package.purl.clone(),
            location: package.location.clone(),
            summary: None,
            status: None,
        }
    }
}

/// Sorts findings the way reports list them: most severe first, then package and id.
pub fn sort_for_report(vulnerabilities: &mut [Vulnerability]) {
    vulnerabilities.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// Finds the vulnerabilities of a set of packages.
pub trait VulnerabilityMatcher: Send + Sync {
    /// Describes the data matched against, for reports ("palisade-vulndb: 8,591 records").
    fn describe(&self) -> String;

    /// Every vulnerability affecting `packages` of an image running `os`.
    fn match_packages(
        &self,
        os: Option<&OsInfo>,
        packages: &[Package],
    ) -> Result<Vec<Vulnerability>, String>;
}
