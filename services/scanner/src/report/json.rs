//! Palisade's JSON report.

use serde_json::{Value, json};

use crate::scan::ScanReport;

pub(super) fn document(report: &ScanReport) -> Value {
    let sbom = &report.sbom;
    json!({
        "target": sbom.target,
        "image_digest": sbom.image_digest,
        "os": sbom.os,
        "layers": sbom.layers,
        "packages": sbom.packages,
        "vulnerabilities": report.vulnerabilities,
        "issues": sbom.issues,
        "vulnerability_source": report.vulnerability_source,
        "created": report.created,
    })
}
