//! SARIF 2.1.0: one rule per vulnerability id, one result per affected package.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{TOOL_NAME, TOOL_VERSION};
use crate::matching::{Severity, Vulnerability};
use crate::scan::ScanReport;

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

/// GitHub code scanning reads `security-severity` as a CVSS-like number.
fn security_severity(vulnerability: &Vulnerability) -> String {
    let score = vulnerability
        .cvss_score
        .unwrap_or(match vulnerability.severity {
            Severity::Critical => 9.5,
            Severity::High => 8.0,
            Severity::Medium => 5.5,
            Severity::Low => 2.0,
            Severity::Unknown => 0.0,
        });
    format!("{score:.1}")
}

pub(super) fn document(report: &ScanReport) -> Value {
    let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for vulnerability in &report.vulnerabilities {
        let summary = vulnerability
            .summary
            .clone()
            .unwrap_or_else(|| vulnerability.id.clone());
        rules.entry(vulnerability.id.as_str()).or_insert_with(|| {
            json!({
                "id": vulnerability.id,
                "name": "OsPackageVulnerability",
                "shortDescription": { "text": summary },
                "helpUri": format!("https://osv.dev/vulnerability/{}", vulnerability.id),
                "properties": {
                    "security-severity": security_severity(vulnerability),
                    "tags": ["vulnerability", "security", vulnerability.severity.as_str()],
                },
            })
        });
        let fixed = vulnerability
            .fixed_version
            .as_deref()
            .map(|v| format!(", fixed in {v}"))
            .unwrap_or_else(|| ", no fix available".to_string());
        let location = vulnerability.location.trim_start_matches('/');
        results.push(json!({
            "ruleId": vulnerability.id,
            "level": level(vulnerability.severity),
            "message": {
                "text": format!(
                    "{} {} is affected by {} ({}){fixed}; image {} layer {}",
                    vulnerability.package, vulnerability.version, vulnerability.id,
                    vulnerability.severity, report.sbom.target, vulnerability.layer
                ),
            },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": if location.is_empty() { report.sbom.target.as_str() } else { location } },
                },
                "message": { "text": format!("{}@{}", vulnerability.package, vulnerability.version) },
            }],
            "partialFingerprints": {
                "palisade/v1": format!("{}|{}|{}|{}", vulnerability.id, vulnerability.package, vulnerability.version, vulnerability.location),
            },
        }));
    }
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "version": TOOL_VERSION,
                    "informationUri": "https://github.com/palisade-security/palisade",
                    "rules": rules.into_values().collect::<Vec<_>>(),
                },
            },
            "results": results,
            "properties": {
                "imageName": report.sbom.target,
                "imageDigest": report.sbom.image_digest,
            },
        }],
    })
}
