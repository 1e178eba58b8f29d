//! CycloneDX 1.5 JSON: the image as the subject, packages as components, findings as
//! vulnerabilities that reference their components.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{TOOL_NAME, TOOL_VERSION, stable_uuid};
use crate::matching::Severity;
use crate::scan::ScanReport;

fn rating(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Unknown => "unknown",
    }
}

pub(super) fn document(report: &ScanReport) -> Value {
    let sbom = &report.sbom;
    let mut reference_of: HashMap<(&str, &str, &str), String> = HashMap::new();
    let mut components = Vec::new();
    if let Some(os) = &sbom.os {
        components.push(json!({
            "type": "operating-system",
            "bom-ref": "os",
            "name": os.id,
            "version": os.version_id,
            "description": os.pretty_name,
        }));
    }
    for (index, package) in sbom.packages.iter().enumerate() {
        let reference = format!("pkg-{index}");
        reference_of.insert(
            (
                package.name.as_str(),
                package.version.as_str(),
                package.location.as_str(),
            ),
            reference.clone(),
        );
        let mut properties = vec![
            json!({"name": "palisade:package:type", "value": package.kind.as_str()}),
            json!({"name": "palisade:location", "value": package.location}),
            json!({"name": "palisade:layer", "value": package.layer}),
        ];
        if let Some(source) = &package.source_name {
            properties.push(json!({"name": "palisade:source:name", "value": source}));
        }
        if let Some(source_version) = &package.source_version {
            properties.push(json!({"name": "palisade:source:version", "value": source_version}));
        }
        let mut component = json!({
            "type": "library",
            "bom-ref": reference,
            "name": package.name,
            "version": package.version,
            "properties": properties,
        });
        if !package.purl.is_empty() {
            component["purl"] = json!(package.purl);
        }
        components.push(component);
    }
    let vulnerabilities: Vec<Value> = report
        .vulnerabilities
        .iter()
        .enumerate()
        .map(|(index, vulnerability)| {
            let affected = reference_of
                .get(&(
                    vulnerability.package.as_str(),
                    vulnerability.version.as_str(),
                    vulnerability.location.as_str(),
                ))
                .cloned()
                .unwrap_or_else(|| "image".to_string());
            let mut entry = json!({
                "bom-ref": format!("vuln-{index}"),
                "id": vulnerability.id,
                "source": { "name": vulnerability.ecosystem },
                "ratings": [{ "severity": rating(vulnerability.severity) }],
                "affects": [{ "ref": affected }],
            });
            if let Some(score) = vulnerability.cvss_score {
                entry["ratings"][0]["score"] = json!(score);
            }
            if let Some(summary) = &vulnerability.summary {
                entry["description"] = json!(summary);
            }
            if let Some(fixed) = &vulnerability.fixed_version {
                entry["recommendation"] =
                    json!(format!("Upgrade {} to {fixed}", vulnerability.package));
            }
            let references: Vec<Value> = vulnerability
                .aliases
                .iter()
                .map(|alias| json!({ "id": alias, "source": { "name": "alias" } }))
                .collect();
            if !references.is_empty() {
                entry["references"] = json!(references);
            }
            entry
        })
        .collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", stable_uuid(&format!("{}{}", sbom.image_digest, report.created))),
        "version": 1,
        "metadata": {
            "timestamp": report.created,
            "tools": { "components": [{ "type": "application", "name": TOOL_NAME, "version": TOOL_VERSION }] },
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": sbom.target,
                "version": sbom.image_digest,
            },
        },
        "components": components,
        "vulnerabilities": vulnerabilities,
    })
}
