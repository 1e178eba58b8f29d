//! SPDX 2.3 JSON: the image as a CONTAINER package that CONTAINS every found package.

use serde_json::{Value, json};

use super::{TOOL_NAME, TOOL_VERSION, stable_uuid};
use crate::scan::ScanReport;

pub(super) fn document(report: &ScanReport) -> Value {
    let sbom = &report.sbom;
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": sbom.target,
        "versionInfo": sbom.image_digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    if let Some(os) = &sbom.os {
        packages.push(json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": os.id,
            "versionInfo": os.version_id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-OperatingSystem",
        }));
    }
    for (index, package) in sbom.packages.iter().enumerate() {
        let identifier = format!("SPDXRef-Package-{}-{index}", package.kind.as_str());
        let mut entry = json!({
            "SPDXID": identifier,
            "name": package.name,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("found at {} in layer {}", package.location, package.layer),
            "primaryPackagePurpose": "LIBRARY",
        });
        if !package.purl.is_empty() {
            entry["externalRefs"] = json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": package.purl,
            }]);
        }
        packages.push(entry);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": identifier,
        }));
    }
    let namespace_id = stable_uuid(&format!("{}{}", sbom.image_digest, report.created));
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": sbom.target,
        "documentNamespace": format!("https://palisade.dev/spdx/image/{namespace_id}"),
        "creationInfo": {
            "created": report.created,
            "creators": [format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}
