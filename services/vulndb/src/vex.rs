//! VEX documents (OpenVEX, CSAF VEX, CycloneDX VEX) reduced to statements, and the rule that
//! applies them: a `not_affected` or `fixed` statement about a vulnerability (or one of its
//! aliases) and a product matching the package suppresses the match.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A VEX status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VexStatus {
    /// The product is not affected.
    NotAffected,
    /// The product is affected.
    Affected,
    /// The product version contains a fix.
    Fixed,
    /// Not known yet.
    UnderInvestigation,
}

impl VexStatus {
    fn parse(text: &str) -> Option<VexStatus> {
        match text.trim().to_ascii_lowercase().as_str() {
            "not_affected" | "known_not_affected" | "false_positive" => {
                Some(VexStatus::NotAffected)
            }
            "affected" | "known_affected" | "exploitable" => Some(VexStatus::Affected),
            "fixed" | "resolved" | "resolved_with_pedigree" | "first_fixed" => {
                Some(VexStatus::Fixed)
            }
            "under_investigation" | "in_triage" => Some(VexStatus::UnderInvestigation),
            _ => None,
        }
    }

    /// Whether a statement with this status suppresses a match.
    pub fn suppresses(self) -> bool {
        matches!(self, VexStatus::NotAffected | VexStatus::Fixed)
    }

    /// Stable lowercase name (OpenVEX spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            VexStatus::NotAffected => "not_affected",
            VexStatus::Affected => "affected",
            VexStatus::Fixed => "fixed",
            VexStatus::UnderInvestigation => "under_investigation",
        }
    }
}

/// One statement: a vulnerability, the products (package URLs) it is about and, optionally, the
/// subcomponents of those products that hold the vulnerability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VexStatement {
    /// Document the statement came from (file name, or document id).
    pub document: String,
    /// Vulnerability id.
    pub vulnerability: String,
    /// Other ids of the vulnerability named by the statement.
    pub aliases: Vec<String>,
    /// Products, as package URLs.
    pub products: Vec<String>,
    /// Subcomponents of the products, as package URLs; empty when the statement is about the
    /// products themselves.
    pub subcomponents: Vec<String>,
    /// Status.
    pub status: VexStatus,
    /// Justification or impact statement, when given.
    pub justification: Option<String>,
}

/// Which VEX format a JSON document is, if any.
pub fn detect(value: &serde_json::Value) -> Option<&'static str> {
    if value.get("statements").is_some()
        && value
            .get("@context")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|context| context.contains("openvex"))
    {
        return Some("openvex");
    }
    if value
        .get("document")
        .and_then(|document| document.get("csaf_version"))
        .is_some()
    {
        return Some("csaf");
    }
    if value.get("bomFormat").and_then(serde_json::Value::as_str) == Some("CycloneDX")
        && value.get("vulnerabilities").is_some()
    {
        return Some("cyclonedx");
    }
    None
}

fn string_at<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(serde_json::Value::as_str)
}

fn array_at<'a>(value: &'a serde_json::Value, key: &str) -> &'a [serde_json::Value] {
    value
        .get(key)
        .and_then(serde_json::Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Parses an OpenVEX, CSAF VEX or CycloneDX VEX document.
pub fn parse_document(
    value: &serde_json::Value,
    document_name: &str,
) -> Result<Vec<VexStatement>, String> {
    match detect(value) {
        Some("openvex") => parse_openvex(value, document_name),
        Some("csaf") => parse_csaf(value, document_name),
        Some("cyclonedx") => parse_cyclonedx(value, document_name),
        _ => Err("not an OpenVEX, CSAF VEX or CycloneDX VEX document".to_owned()),
    }
}

fn product_id(product: &serde_json::Value) -> Option<String> {
    product
        .as_str()
        .map(str::to_owned)
        .or_else(|| string_at(product, "@id").map(str::to_owned))
}

fn parse_openvex(
    value: &serde_json::Value,
    document_name: &str,
) -> Result<Vec<VexStatement>, String> {
    let mut statements = Vec::new();
    for (index, statement) in array_at(value, "statements").iter().enumerate() {
        let vulnerability_value = statement
            .get("vulnerability")
            .ok_or_else(|| format!("statements[{index}] has no vulnerability"))?;
        let (vulnerability, aliases) = match vulnerability_value {
            serde_json::Value::String(name) => (name.clone(), Vec::new()),
            object => {
                let name = string_at(object, "name")
                    .or_else(|| string_at(object, "@id"))
                    .ok_or_else(|| format!("statements[{index}].vulnerability has no name"))?;
                let aliases = array_at(object, "aliases")
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .collect();
                (name.to_owned(), aliases)
            }
        };
        let status_text = string_at(statement, "status")
            .ok_or_else(|| format!("statements[{index}] has no status"))?;
        let status = VexStatus::parse(status_text)
            .ok_or_else(|| format!("statements[{index}] has unknown status {status_text:?}"))?;
        let mut products = Vec::new();
        let mut subcomponents = Vec::new();
        for product in array_at(statement, "products") {
            if let Some(identifier) = product_id(product) {
                products.push(identifier);
            }
            for subcomponent in array_at(product, "subcomponents") {
                if let Some(identifier) = product_id(subcomponent) {
                    subcomponents.push(identifier);
                }
            }
        }
        if products.is_empty() {
            return Err(format!("statements[{index}] names no product"));
        }
        let justification = string_at(statement, "justification")
            .or_else(|| string_at(statement, "impact_statement"))
            .map(str::to_owned);
        statements.push(VexStatement {
            document: document_name.to_owned(),
            vulnerability,
            aliases,
            products,
            subcomponents,
            status,
            justification,
        });
    }
    Ok(statements)
}

/// Walks CSAF product tree branches collecting product_id -> purl.
fn collect_csaf_products(
    branch: &serde_json::Value,
    purls: &mut BTreeMap<String, String>,
    depth: usize,
) {
    // CSAF trees are a few levels deep; the bound keeps a hostile document from recursing deep.
    if depth > 32 {
        return;
    }
    if let Some(product) = branch.get("product")
        && let (Some(identifier), Some(purl)) = (
            string_at(product, "product_id"),
            product
                .get("product_identification_helper")
                .and_then(|helper| string_at(helper, "purl")),
        )
    {
        purls.insert(identifier.to_owned(), purl.to_owned());
    }
    for child in array_at(branch, "branches") {
        collect_csaf_products(child, purls, depth + 1);
    }
}

fn parse_csaf(value: &serde_json::Value, document_name: &str) -> Result<Vec<VexStatement>, String> {
    let tree = value
        .get("product_tree")
        .ok_or("CSAF document has no product_tree")?;
    let mut purls = BTreeMap::new();
    collect_csaf_products(tree, &mut purls, 0);
    for product in array_at(tree, "full_product_names") {
        if let (Some(identifier), Some(purl)) = (
            string_at(product, "product_id"),
            product
                .get("product_identification_helper")
                .and_then(|helper| string_at(helper, "purl")),
        ) {
            purls.insert(identifier.to_owned(), purl.to_owned());
        }
    }
    // product_id of a relationship -> (parent purl, component purl)
    let mut relationships: BTreeMap<String, (String, String)> = BTreeMap::new();
    for relationship in array_at(tree, "relationships") {
        let component =
            string_at(relationship, "product_reference").and_then(|reference| purls.get(reference));
        let parent = string_at(relationship, "relates_to_product_reference")
            .and_then(|reference| purls.get(reference));
        let identifier = relationship
            .get("full_product_name")
            .and_then(|name| string_at(name, "product_id"));
        if let (Some(component), Some(parent), Some(identifier)) = (component, parent, identifier) {
            relationships.insert(identifier.to_owned(), (parent.clone(), component.clone()));
        }
    }
    let mut statements = Vec::new();
    for (index, vulnerability) in array_at(value, "vulnerabilities").iter().enumerate() {
        let Some(name) = string_at(vulnerability, "cve").or_else(|| {
            array_at(vulnerability, "ids")
                .first()
                .and_then(|id| string_at(id, "text"))
        }) else {
            return Err(format!("vulnerabilities[{index}] has neither cve nor ids"));
        };
        let justification = array_at(vulnerability, "flags")
            .first()
            .and_then(|flag| string_at(flag, "label"))
            .or_else(|| {
                array_at(vulnerability, "threats")
                    .first()
                    .and_then(|threat| string_at(threat, "details"))
            })
            .map(str::to_owned);
        let Some(product_status) = vulnerability
            .get("product_status")
            .and_then(serde_json::Value::as_object)
        else {
            continue;
        };
        for (status_name, identifiers) in product_status {
            let Some(status) = VexStatus::parse(status_name) else {
                continue;
            };
            for identifier in identifiers
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(serde_json::Value::as_str)
            {
                let (products, subcomponents) =
                    if let Some((parent, component)) = relationships.get(identifier) {
                        (vec![parent.clone()], vec![component.clone()])
                    } else if let Some(purl) = purls.get(identifier) {
                        (vec![purl.clone()], Vec::new())
                    } else {
                        continue;
                    };
                statements.push(VexStatement {
                    document: document_name.to_owned(),
                    vulnerability: name.to_owned(),
                    aliases: Vec::new(),
                    products,
                    subcomponents,
                    status,
                    justification: justification.clone(),
                });
            }
        }
    }
    Ok(statements)
}

fn parse_cyclonedx(
    value: &serde_json::Value,
    document_name: &str,
) -> Result<Vec<VexStatement>, String> {
    let mut references: BTreeMap<String, String> = BTreeMap::new();
    for component in array_at(value, "components") {
        if let (Some(reference), Some(purl)) = (
            string_at(component, "bom-ref"),
            string_at(component, "purl"),
        ) {
            references.insert(reference.to_owned(), purl.to_owned());
        }
    }
    let mut statements = Vec::new();
    for (index, vulnerability) in array_at(value, "vulnerabilities").iter().enumerate() {
        let name = string_at(vulnerability, "id")
            .ok_or_else(|| format!("vulnerabilities[{index}] has no id"))?;
        let Some(analysis) = vulnerability.get("analysis") else {
            continue;
        };
        let Some(status) = string_at(analysis, "state").and_then(VexStatus::parse) else {
            continue;
        };
        let mut products = Vec::new();
        for affects in array_at(vulnerability, "affects") {
            let Some(reference) = string_at(affects, "ref") else {
                continue;
            };
            // A BOM-link ends with "#<bom-ref>"; Trivy and others put the purl there.
            let local = reference
                .rsplit_once('#')
                .map_or(reference, |(_, fragment)| fragment);
            if local.starts_with("pkg:") {
                products.push(local.to_owned());
            } else if let Some(purl) = references.get(local) {
                products.push(purl.clone());
            }
        }
        if products.is_empty() {
            continue;
        }
        let justification = string_at(analysis, "justification").map(str::to_owned);
        statements.push(VexStatement {
            document: document_name.to_owned(),
            vulnerability: name.to_owned(),
            aliases: Vec::new(),
            products,
            subcomponents: Vec::new(),
            status,
            justification,
        });
    }
    Ok(statements)
}

/// A parsed package URL reduced to what VEX matching compares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PurlKey {
    kind: String,
    namespace: String,
    name: String,
    version: Option<String>,
    source_arch: bool,
}

fn parse_purl(text: &str) -> Option<PurlKey> {
    let parsed: packageurl::PackageUrl<'_> = text.parse().ok()?;
    let kind = parsed.ty().to_ascii_lowercase();
    // Names of these types are case-insensitive per the purl specification.
    let case_insensitive = matches!(
        kind.as_str(),
        "deb" | "apk" | "pypi" | "npm" | "github" | "golang"
    );
    let normalize = |value: &str| {
        if case_insensitive {
            value.to_ascii_lowercase()
        } else {
            value.to_owned()
        }
    };
    let version = parsed.version().map(|version| {
        version
            .strip_prefix('v')
            .filter(|_| kind == "golang")
            .unwrap_or(version)
            .to_owned()
    });
    Some(PurlKey {
        namespace: parsed.namespace().map(normalize).unwrap_or_default(),
        name: normalize(parsed.name()),
        version,
        source_arch: parsed
            .qualifiers()
            .iter()
            .any(|(key, value)| key.as_ref() == "arch" && value.as_ref() == "source"),
        kind,
    })
}

/// The identity of an SBOM package for VEX matching.
#[derive(Debug, Clone, Default)]
pub struct VexSubject<'a> {
    /// The package's purl.
    pub purl: Option<&'a str>,
    /// Source package name and version (Debian/Ubuntu), matched by `arch=source` products.
    pub source_name: Option<&'a str>,
    /// Source version.
    pub source_version: Option<&'a str>,
}

fn product_matches(product: &str, subject: &VexSubject<'_>) -> bool {
    let Some(product_key) = parse_purl(product) else {
        return false;
    };
    let Some(subject_key) = subject.purl.and_then(parse_purl) else {
        return false;
    };
    if product_key.kind != subject_key.kind || product_key.namespace != subject_key.namespace {
        return false;
    }
    if product_key.source_arch {
        // An arch=source product names the source package: compare with the SBOM's source pair.
        let source_name = subject.source_name.unwrap_or(&subject_key.name);
        return source_name == product_key.name
            && product_key.version.as_deref().is_none_or(|version| {
                Some(version) == subject.source_version.or(subject_key.version.as_deref())
            });
    }
    product_key.name == subject_key.name
        && product_key
            .version
            .as_deref()
            .is_none_or(|version| Some(version) == subject_key.version.as_deref())
}

impl VexStatement {
    /// Whether the statement names this vulnerability (by id or alias, in either direction).
    pub fn names_vulnerability(&self, identifier: &str, aliases: &[String]) -> bool {
        let mentioned = |candidate: &str| {
            candidate == self.vulnerability
                || self.aliases.iter().any(|alias| {
                    alias == candidate
                        || alias.ends_with(&format!("/{candidate}"))
                        || alias.ends_with(&format!("={candidate}"))
                })
        };
        mentioned(identifier) || aliases.iter().any(|alias| mentioned(alias))
    }

    /// Whether the statement is about this package. `present` tells whether a purl is one of
    /// the scanned image's (the target itself or another package of the SBOM): a statement with
    /// subcomponents applies to a subcomponent only inside a product that is present.
    pub fn applies_to(&self, subject: &VexSubject<'_>, present: impl Fn(&str) -> bool) -> bool {
        if self.subcomponents.is_empty() {
            return self
                .products
                .iter()
                .any(|product| product_matches(product, subject));
        }
        self.subcomponents
            .iter()
            .any(|component| product_matches(component, subject))
            && self.products.iter().any(|product| present(product))
    }
}

/// Fuzz entry point for VEX parsing: any bytes either parse or are refused, without panicking.
pub fn fuzz_parse(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = parse_document(&value, "fuzz");
    }
}
