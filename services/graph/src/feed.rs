//! What the graph takes from the durable log: scanner findings become the vulnerabilities of
//! images, runtime and audit alerts about pods become alerts on the graph.
//!
//! A findings record is one vulnerability of one image, raised or resolved; the graph needs
//! every vulnerability of an image at once. [`FindingsBook`] keeps them per tenant and image,
//! so each record changes one image and the graph is told only about the images that changed.

use std::collections::{BTreeMap, BTreeSet};

use palisade_proto::v1::{Alert, Finding, FindingKind, Priority, finding};

use crate::findings::{ImageFindings, RuntimeAlert, Severity, VulnerabilityFinding};
use crate::model::normalize_image;

/// The image a scanner finding is about, as the inventory names it: a registry reference
/// without the `docker://` transport the scanner accepts.
pub fn inventory_image(reference: &str) -> String {
    let bare = reference.strip_prefix("docker://").unwrap_or(reference);
    normalize_image(bare)
}

fn severity_of(finding: &Finding) -> Severity {
    match palisade_proto::v1::Severity::try_from(finding.severity) {
        Ok(palisade_proto::v1::Severity::Critical) => Severity::Critical,
        Ok(palisade_proto::v1::Severity::High) => Severity::High,
        Ok(palisade_proto::v1::Severity::Medium) => Severity::Medium,
        Ok(palisade_proto::v1::Severity::Low) => Severity::Low,
        Ok(palisade_proto::v1::Severity::Negligible) => Severity::Negligible,
        _ => Severity::Unknown,
    }
}

/// One vulnerability of one image, raised or resolved, from a findings record.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageVulnerability {
    /// Tenant of the record.
    pub tenant: String,
    /// Image reference, normalised.
    pub image: String,
    /// Manifest digest.
    pub digest: String,
    /// The vulnerability.
    pub vulnerability: VulnerabilityFinding,
    /// Whether the record says the vulnerability is gone.
    pub resolved: bool,
}

/// The image vulnerability a findings record carries; `None` for other kinds of finding (the
/// graph's own insights and attack paths) and for records without an image.
pub fn image_vulnerability(record: &Finding) -> Option<ImageVulnerability> {
    if record.kind != FindingKind::Vulnerability as i32 || record.tenant_id.is_empty() {
        return None;
    }
    let Some(finding::Detail::Vulnerability(detail)) = &record.detail else {
        return None;
    };
    let image = inventory_image(&detail.image);
    if image.is_empty() || detail.vulnerability_id.is_empty() {
        return None;
    }
    let title = if record.description.is_empty() {
        record.title.clone()
    } else {
        record.description.clone()
    };
    Some(ImageVulnerability {
        tenant: record.tenant_id.clone(),
        image,
        digest: detail.image_digest.clone(),
        vulnerability: VulnerabilityFinding {
            id: detail.vulnerability_id.clone(),
            severity: severity_of(record),
            cvss_score: (detail.cvss_score > 0.0).then_some(detail.cvss_score),
            cvss_vector: detail.cvss_vector.clone(),
            package: detail.package_name.clone(),
            version: detail.package_version.clone(),
            fixed_version: detail.fixed_version.clone(),
            cwes: Vec::new(),
            title,
            remote_code_execution: false,
        },
        resolved: record.resolved,
    })
}

/// The vulnerabilities of every image of every tenant, as the findings records left them.
#[derive(Debug, Default)]
pub struct FindingsBook {
    tenants: BTreeMap<String, BTreeMap<String, BookedImage>>,
}

#[derive(Debug, Default)]
struct BookedImage {
    digest: String,
    // keyed by advisory, package and version: one graph edge however many files carry it
    vulnerabilities: BTreeMap<(String, String, String), VulnerabilityFinding>,
}

fn vulnerability_key(vulnerability: &VulnerabilityFinding) -> (String, String, String) {
    (
        vulnerability.id.clone(),
        vulnerability.package.clone(),
        vulnerability.version.clone(),
    )
}

impl FindingsBook {
    /// Forgets every image of `tenant`.
    pub fn forget_tenant(&mut self, tenant: &str) {
        self.tenants.remove(tenant);
    }

    /// A book holding what the graph already has for `tenant` (loaded from its store).
    pub fn load(&mut self, tenant: &str, images: Vec<ImageFindings>) {
        let booked = self.tenants.entry(tenant.to_string()).or_default();
        for image in images {
            let entry = booked.entry(normalize_image(&image.image)).or_default();
            entry.digest = image.digest;
            for vulnerability in image.vulnerabilities {
                entry
                    .vulnerabilities
                    .insert(vulnerability_key(&vulnerability), vulnerability);
            }
        }
    }

    /// Applies one record; returns whether the image's vulnerabilities changed.
    pub fn apply(&mut self, change: ImageVulnerability) -> bool {
        let booked = self.tenants.entry(change.tenant).or_default();
        let entry = booked.entry(change.image).or_default();
        if !change.digest.is_empty() {
            entry.digest = change.digest;
        }
        let key = vulnerability_key(&change.vulnerability);
        if change.resolved {
            return entry.vulnerabilities.remove(&key).is_some();
        }
        if entry.vulnerabilities.get(&key) == Some(&change.vulnerability) {
            return false;
        }
        entry.vulnerabilities.insert(key, change.vulnerability);
        true
    }

    /// The findings of some images of a tenant (an image without vulnerabilities comes back
    /// empty, which removes its findings).
    pub fn images(&self, tenant: &str, images: &BTreeSet<String>) -> Vec<ImageFindings> {
        images
            .iter()
            .map(|image| {
                let booked = self
                    .tenants
                    .get(tenant)
                    .and_then(|booked| booked.get(image));
                ImageFindings {
                    image: image.clone(),
                    digest: booked.map(|entry| entry.digest.clone()).unwrap_or_default(),
                    vulnerabilities: booked
                        .map(|entry| entry.vulnerabilities.values().cloned().collect())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}

fn priority_name(value: i32) -> String {
    let name = Priority::try_from(value)
        .unwrap_or(Priority::Unspecified)
        .as_str_name();
    let word = name.strip_prefix("PRIORITY_").unwrap_or(name);
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_string() + &chars.as_str().to_ascii_lowercase(),
        None => String::new(),
    }
}

/// The graph's view of an alert about a pod: `None` when the alert names no pod (host events,
/// audit alerts about other objects) or lacks a tenant or cluster.
pub fn runtime_alert(alert: &Alert) -> Option<(String, RuntimeAlert)> {
    if alert.tenant_id.is_empty() || alert.cluster_id.is_empty() || alert.id.is_empty() {
        return None;
    }
    let field = |name: &str| alert.output_fields.get(name).cloned().unwrap_or_default();
    let pod_entity = alert.entities.iter().find(|entity| entity.kind == "pod");
    let (pod, namespace) = match pod_entity {
        Some(entity) => (entity.name.clone(), entity.namespace.clone()),
        None => (field("k8s.pod.name"), field("k8s.ns.name")),
    };
    if pod.is_empty() || namespace.is_empty() {
        return None;
    }
    let container = alert
        .entities
        .iter()
        .find(|entity| entity.kind == "container")
        .map(|entity| entity.name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| field("container.name"));
    Some((
        alert.tenant_id.clone(),
        RuntimeAlert {
            id: alert.id.clone(),
            cluster: alert.cluster_id.clone(),
            namespace,
            pod,
            container,
            rule: alert.rule.clone(),
            priority: priority_name(alert.priority),
            time: alert.time.as_ref().map(|time| time.seconds).unwrap_or(0),
            mitre: alert
                .mitre
                .as_ref()
                .map(|mitre| mitre.technique_ids.clone())
                .unwrap_or_default(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use palisade_proto::v1::{EntityRef, VulnerabilityDetail};

    use super::*;

    fn record(advisory: &str, image: &str, resolved: bool) -> Finding {
        Finding {
            id: format!("{image}/{advisory}"),
            tenant_id: "acme".into(),
            kind: FindingKind::Vulnerability as i32,
            severity: palisade_proto::v1::Severity::High as i32,
            title: format!("{advisory} in openssl 1.0"),
            resolved,
            detail: Some(finding::Detail::Vulnerability(VulnerabilityDetail {
                vulnerability_id: advisory.into(),
                package_name: "openssl".into(),
                package_version: "1.0".into(),
                image: image.into(),
                image_digest: "sha256:aa".into(),
                ..VulnerabilityDetail::default()
            })),
            ..Finding::default()
        }
    }

    #[test]
    fn records_raise_and_resolve_the_vulnerabilities_of_one_image() {
        let mut book = FindingsBook::default();
        let raised = image_vulnerability(&record("CVE-1", "docker://alpine:3.4", false))
            .expect("a vulnerability record");
        assert_eq!(raised.image, "docker.io/library/alpine:3.4");
        assert!(book.apply(raised.clone()));
        assert!(!book.apply(raised), "the same record twice changes nothing");
        let other = image_vulnerability(&record("CVE-2", "alpine:3.4", false)).expect("record");
        assert!(book.apply(other));
        let alpine: BTreeSet<String> = ["docker.io/library/alpine:3.4".to_string()].into();
        let images = book.images("acme", &alpine);
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].vulnerabilities.len(), 2);
        assert_eq!(images[0].digest, "sha256:aa");
        assert_eq!(images[0].vulnerabilities[0].severity, Severity::High);

        let resolved = image_vulnerability(&record("CVE-1", "alpine:3.4", true)).expect("record");
        assert!(book.apply(resolved));
        assert_eq!(book.images("acme", &alpine)[0].vulnerabilities.len(), 1);
        assert!(
            book.images("other", &alpine)[0].vulnerabilities.is_empty(),
            "tenants are apart"
        );
    }

    #[test]
    fn other_findings_and_alerts_without_a_pod_are_not_taken() {
        let mut insight = record("CVE-1", "alpine", false);
        insight.kind = FindingKind::Insight as i32;
        assert!(image_vulnerability(&insight).is_none());

        let mut alert = Alert {
            id: "a1".into(),
            tenant_id: "acme".into(),
            cluster_id: "prod".into(),
            rule: "Terminal shell in container".into(),
            priority: Priority::Warning as i32,
            ..Alert::default()
        };
        assert!(runtime_alert(&alert).is_none(), "no pod named");
        alert.entities.push(EntityRef {
            kind: "pod".into(),
            name: "web-1".into(),
            namespace: "shop".into(),
            ..EntityRef::default()
        });
        alert
            .output_fields
            .insert("container.name".into(), "nginx".into());
        let (tenant, runtime) = runtime_alert(&alert).expect("an alert about a pod");
        assert_eq!(tenant, "acme");
        assert_eq!(
            (runtime.pod.as_str(), runtime.namespace.as_str()),
            ("web-1", "shop")
        );
        assert_eq!(runtime.container, "nginx");
        assert_eq!(runtime.priority, "Warning");
    }
}
