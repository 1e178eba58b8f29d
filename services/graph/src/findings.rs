//! Inputs from the rest of the platform: scanner findings (vulnerabilities of images) and
//! runtime or audit alerts on entities. Files from Trivy and Grype are read as well, so
//! `graph analyze` can take an existing scan.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::derive::Derived;
use crate::error::{GraphError, Result};
use crate::model::{EdgeKind, Entity, EntityKind, image_id, normalize_image, vulnerability_id};

/// Severity of a vulnerability, ordered.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// No severity given.
    #[default]
    Unknown,
    /// Negligible.
    Negligible,
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
    /// Parses a severity name in any case ("CRITICAL", "High", "moderate" ...).
    pub fn parse(text: &str) -> Severity {
        match text.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" | "none" | "info" | "informational" => Severity::Negligible,
            _ => Severity::Unknown,
        }
    }

    /// The rank of a severity given as a property value: its name, or `None` for a value
    /// that names no severity ("unknown" itself ranks lowest).
    pub fn rank_of(value: &serde_json::Value) -> Option<f64> {
        let text = value.as_str()?;
        let severity = Severity::parse(text);
        (severity != Severity::Unknown || text.eq_ignore_ascii_case("unknown"))
            .then_some(severity as u8 as f64)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One vulnerability found in an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct VulnerabilityFinding {
    /// Advisory id (CVE-..., GHSA-...).
    pub id: String,
    /// Severity.
    pub severity: Severity,
    /// CVSS base score.
    pub cvss_score: Option<f64>,
    /// CVSS vector.
    pub cvss_vector: String,
    /// Affected package.
    pub package: String,
    /// Installed version.
    pub version: String,
    /// Fixed version, empty when none.
    pub fixed_version: String,
    /// CWE ids.
    pub cwes: Vec<String>,
    /// Title or description.
    pub title: String,
    /// Set when the source says the flaw allows remote code execution.
    pub remote_code_execution: bool,
}

/// CWEs whose flaws amount to code execution.
const RCE_CWES: &[&str] = &[
    "CWE-77", "CWE-78", "CWE-94", "CWE-95", "CWE-502", "CWE-917", "CWE-1336", "CWE-434",
];

impl VulnerabilityFinding {
    /// Whether the flaw allows remote code execution (flag, CWE or description).
    pub fn is_rce(&self) -> bool {
        let title = self.title.to_ascii_lowercase();
        self.remote_code_execution
            || self.cwes.iter().any(|cwe| RCE_CWES.contains(&cwe.as_str()))
            || title.contains("remote code execution")
            || title.contains("arbitrary code execution")
    }

    /// Whether the flaw is exploitable over the network (CVSS attack vector N).
    pub fn is_network_exploitable(&self) -> bool {
        self.cvss_vector.contains("AV:N")
    }
}

/// The vulnerabilities of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ImageFindings {
    /// Image reference as scanned.
    pub image: String,
    /// Manifest digest, when known.
    pub digest: String,
    /// Vulnerabilities.
    pub vulnerabilities: Vec<VulnerabilityFinding>,
}

/// A runtime or audit alert about an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RuntimeAlert {
    /// Stable alert id.
    pub id: String,
    /// Cluster.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name, when known.
    pub container: String,
    /// Rule that fired.
    pub rule: String,
    /// Priority (Falco's names).
    pub priority: String,
    /// Unix time in seconds.
    pub time: i64,
    /// MITRE technique ids.
    pub mitre: Vec<String>,
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn from_trivy(report: &Value) -> Vec<ImageFindings> {
    let image = text(report, "ArtifactName");
    let digest = report
        .pointer("/Metadata/RepoDigests/0")
        .and_then(Value::as_str)
        .and_then(|digest| digest.split_once('@').map(|(_, digest)| digest.to_string()))
        .unwrap_or_default();
    let mut vulnerabilities = Vec::new();
    for result in report
        .get("Results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for entry in result
            .get("Vulnerabilities")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cvss = entry
                .get("CVSS")
                .and_then(Value::as_object)
                .and_then(|map| map.values().next());
            vulnerabilities.push(VulnerabilityFinding {
                id: text(entry, "VulnerabilityID"),
                severity: Severity::parse(&text(entry, "Severity")),
                cvss_score: cvss
                    .and_then(|cvss| cvss.get("V3Score"))
                    .and_then(Value::as_f64),
                cvss_vector: cvss.map(|cvss| text(cvss, "V3Vector")).unwrap_or_default(),
                package: text(entry, "PkgName"),
                version: text(entry, "InstalledVersion"),
                fixed_version: text(entry, "FixedVersion"),
                cwes: entry
                    .get("CweIDs")
                    .and_then(Value::as_array)
                    .map(|ids| {
                        ids.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                title: format!("{} {}", text(entry, "Title"), text(entry, "Description")),
                remote_code_execution: false,
            });
        }
    }
    vec![ImageFindings {
        image,
        digest,
        vulnerabilities,
    }]
}

fn from_grype(report: &Value) -> Vec<ImageFindings> {
    let image = report
        .pointer("/source/target/userInput")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let digest = report
        .pointer("/source/target/manifestDigest")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut vulnerabilities = Vec::new();
    for entry in report
        .get("matches")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let vulnerability = entry.get("vulnerability").cloned().unwrap_or(Value::Null);
        let cvss = vulnerability.pointer("/cvss/0");
        vulnerabilities.push(VulnerabilityFinding {
            id: text(&vulnerability, "id"),
            severity: Severity::parse(&text(&vulnerability, "severity")),
            cvss_score: cvss
                .and_then(|cvss| cvss.pointer("/metrics/baseScore"))
                .and_then(Value::as_f64),
            cvss_vector: cvss.map(|cvss| text(cvss, "vector")).unwrap_or_default(),
            package: entry
                .pointer("/artifact/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            version: entry
                .pointer("/artifact/version")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            fixed_version: vulnerability
                .pointer("/fix/versions/0")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            cwes: Vec::new(),
            title: text(&vulnerability, "description"),
            remote_code_execution: false,
        });
    }
    vec![ImageFindings {
        image,
        digest,
        vulnerabilities,
    }]
}

/// Reads scanner findings: Palisade's own form (an [`ImageFindings`] object or a list of
/// them), a Trivy JSON report, or a Grype JSON report.
pub fn parse_findings(bytes: &[u8], origin: &str) -> Result<Vec<ImageFindings>> {
    let bad = |message: String| GraphError::BadInput {
        location: origin.to_string(),
        message,
    };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|error| bad(format!("invalid JSON: {error}")))?;
    let findings = if value.get("Results").is_some() || value.get("ArtifactName").is_some() {
        from_trivy(&value)
    } else if value.get("matches").is_some() {
        from_grype(&value)
    } else if value.is_array() {
        serde_json::from_value(value)
            .map_err(|error| bad(format!("not a list of image findings: {error}")))?
    } else {
        vec![
            serde_json::from_value(value)
                .map_err(|error| bad(format!("not image findings: {error}")))?,
        ]
    };
    for (index, entry) in findings.iter().enumerate() {
        if entry.image.is_empty() {
            return Err(bad(format!("entry {index} names no image")));
        }
    }
    Ok(findings)
}

/// Reads a findings file.
pub fn load_findings(path: &Path) -> Result<Vec<ImageFindings>> {
    let bytes = std::fs::read(path).map_err(|source| GraphError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_findings(&bytes, &path.display().to_string())
}

/// Scanner findings grouped by normalised image reference (the image entity they describe),
/// each group in the order its entries arrived.
pub type FindingsByImage = BTreeMap<String, Vec<ImageFindings>>;

/// Groups findings by normalised image reference, keeping their order within a group.
pub fn group_by_image(findings: Vec<ImageFindings>) -> FindingsByImage {
    let mut groups = FindingsByImage::new();
    for entry in findings {
        groups
            .entry(normalize_image(&entry.image))
            .or_default()
            .push(entry);
    }
    groups
}

/// Every vulnerability of a group, in order.
pub fn group_vulnerabilities(group: &[ImageFindings]) -> Vec<&VulnerabilityFinding> {
    group
        .iter()
        .flat_map(|entry| entry.vulnerabilities.iter())
        .collect()
}

/// The image entity the findings contribute, with its vulnerability summary.
pub fn image_entity(image: &str, found: &[&VulnerabilityFinding]) -> Entity {
    let count = |severity: Severity| {
        found
            .iter()
            .filter(|vulnerability| vulnerability.severity == severity)
            .count()
    };
    let rce = found.iter().any(|vulnerability| vulnerability.is_rce());
    let max = found
        .iter()
        .map(|vulnerability| vulnerability.severity)
        .max()
        .unwrap_or_default();
    Entity::new(EntityKind::Image, "", "", image, image_id(image))
        .with("scanned", true)
        .with("critical_vulnerabilities", count(Severity::Critical))
        .with("high_vulnerabilities", count(Severity::High))
        .with("max_severity", max.as_str())
        .with("rce_vulnerability", rce)
}

/// The vulnerability entity of an advisory. One entity stands for the advisory however many
/// images carry it; it is described by the first finding of the first image (in reference
/// order) that carries it.
pub fn vulnerability_entity(vulnerability: &VulnerabilityFinding) -> Entity {
    let mut entity = Entity::new(
        EntityKind::Vulnerability,
        "",
        "",
        &vulnerability.id,
        vulnerability_id(&vulnerability.id),
    )
    .with("severity", vulnerability.severity.as_str())
    .with("severity_rank", vulnerability.severity as u8)
    .with("rce", vulnerability.is_rce())
    .with("network", vulnerability.is_network_exploitable());
    if let Some(score) = vulnerability.cvss_score {
        entity.set("cvss_score", score);
    }
    entity
}

/// The findings part of the graph: images, their vulnerabilities, and per-image summaries.
pub fn derive_findings(findings: &[ImageFindings]) -> Derived {
    let mut per_image: BTreeMap<String, Vec<&VulnerabilityFinding>> = BTreeMap::new();
    for entry in findings {
        per_image
            .entry(normalize_image(&entry.image))
            .or_default()
            .extend(entry.vulnerabilities.iter());
    }
    derive_per_image(&per_image)
}

/// [`derive_findings`] of findings already grouped.
pub fn derive_groups(groups: &FindingsByImage) -> Derived {
    let per_image: BTreeMap<String, Vec<&VulnerabilityFinding>> = groups
        .iter()
        .map(|(image, group)| (image.clone(), group_vulnerabilities(group)))
        .collect();
    derive_per_image(&per_image)
}

fn derive_per_image(per_image: &BTreeMap<String, Vec<&VulnerabilityFinding>>) -> Derived {
    let mut derived = Derived::default();
    let mut vulnerabilities: BTreeMap<&str, &VulnerabilityFinding> = BTreeMap::new();
    for (image, found) in per_image {
        let image_entity_id = image_id(image);
        derived.entity(image_entity(image, found));
        for vulnerability in found
            .iter()
            .filter(|vulnerability| !vulnerability.id.is_empty())
        {
            vulnerabilities
                .entry(vulnerability.id.as_str())
                .or_insert(vulnerability);
            derived.edge(
                &image_entity_id,
                EdgeKind::HasVulnerability,
                &vulnerability_id(&vulnerability.id),
            );
        }
    }
    for vulnerability in vulnerabilities.into_values() {
        derived.entity(vulnerability_entity(vulnerability));
    }
    derived
}
