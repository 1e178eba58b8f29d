//! Vulnerabilities as findings: stable ids, the protobuf record, and what changed since the
//! image was last matched.
//!
//! A finding is one vulnerability of one installed package at one location of one image
//! digest. Its id hashes exactly that, so scanning or re-matching the same image gives the same
//! id and the search index updates the finding in place. A finding is written to the log when
//! it appears, when what is known about it changes (severity, fixed version ...), and when it
//! stops being true (resolved); a match that changes nothing writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{
    EntityRef, Finding, FindingKind, ScanImageResponse, VulnerabilityDetail, finding,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::matching::{Severity, Vulnerability, sort_for_report};
use crate::sbom::{CatalogIssue, LayerInfo, OsInfo, Package, PackageKind, Sbom};
use crate::scan::ScanReport;

/// The image a set of findings is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSubject {
    /// The reference as the caller named it.
    pub image: String,
    /// The image digest (the SBOM cache key).
    pub image_digest: String,
    /// Cluster the image runs in, when the caller said.
    pub cluster_id: String,
}

/// What is remembered of one finding between matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingState {
    /// Seconds since the epoch when the current occurrence was first seen.
    pub first_seen: i64,
    /// The vulnerability as last published.
    pub vulnerability: Vulnerability,
    /// Whether the last record published says resolved.
    pub resolved: bool,
}

/// One finding to publish, with the state to remember once it is durable.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// The finding's id.
    pub id: String,
    /// The record for the log.
    pub finding: Finding,
    /// Key that makes publishing the same fact twice (a retry after a crash) a no-op.
    pub dedupe_key: Vec<u8>,
    /// What to remember.
    pub state: FindingState,
}

/// The outcome of comparing a match with what was published before.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Records to write, in id order.
    pub publications: Vec<Publication>,
    /// Findings seen for the first time (or again after being resolved).
    pub new: u32,
    /// Findings whose details changed.
    pub updated: u32,
    /// Findings no longer true.
    pub resolved: u32,
}

/// The stable id of `vulnerability` in the image `image_digest`.
pub fn finding_id(image_digest: &str, vulnerability: &Vulnerability) -> String {
    let mut hasher = Sha256::new();
    for part in [
        image_digest,
        &vulnerability.id,
        &vulnerability.package,
        &vulnerability.version,
        &vulnerability.location,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    format!("vuln-{}", &hex::encode(hasher.finalize())[..32])
}

/// The protobuf severity of a scanner severity.
pub fn proto_severity(severity: Severity) -> palisade_proto::v1::Severity {
    use palisade_proto::v1::Severity as Proto;
    match severity {
        Severity::Unknown => Proto::Unknown,
        Severity::Low => Proto::Low,
        Severity::Medium => Proto::Medium,
        Severity::High => Proto::High,
        Severity::Critical => Proto::Critical,
    }
}

/// The scanner severity of a protobuf severity.
pub fn scanner_severity(value: i32) -> Severity {
    use palisade_proto::v1::Severity as Proto;
    match Proto::try_from(value).unwrap_or(Proto::Unspecified) {
        Proto::Unspecified | Proto::Unknown => Severity::Unknown,
        Proto::Negligible | Proto::Low => Severity::Low,
        Proto::Medium => Severity::Medium,
        Proto::High => Severity::High,
        Proto::Critical => Severity::Critical,
    }
}

/// A report of a scan the server made, so it is written in the same formats as a local scan.
/// Fails on a package kind this version does not know.
pub fn report_from_response(response: &ScanImageResponse) -> Result<ScanReport, String> {
    let os = response.os.split_once(' ').map(|(id, version_id)| OsInfo {
        id: id.to_string(),
        version_id: version_id.to_string(),
        codename: None,
        pretty_name: None,
    });
    let mut packages = Vec::with_capacity(response.packages.len());
    let mut layers: Vec<LayerInfo> = Vec::new();
    for package in &response.packages {
        let kind: PackageKind = serde_json::from_value(serde_json::Value::String(
            package.kind.clone(),
        ))
        .map_err(|_| {
            format!(
                "package {} {}: unknown kind {:?}",
                package.name, package.version, package.kind
            )
        })?;
        if !layers
            .iter()
            .any(|layer| layer.digest == package.layer_digest)
        {
            layers.push(LayerInfo {
                digest: package.layer_digest.clone(),
                media_type: String::new(),
                size: 0,
            });
        }
        let optional = |text: &str| (!text.is_empty()).then(|| text.to_string());
        packages.push(Package {
            name: package.name.clone(),
            version: package.version.clone(),
            kind,
            source_name: optional(&package.source_name),
            source_version: optional(&package.source_version),
            arch: None,
            purl: package.purl.clone(),
            location: package.location.clone(),
            layer: package.layer_digest.clone(),
        });
    }
    let mut vulnerabilities: Vec<Vulnerability> = response
        .vulnerabilities
        .iter()
        .filter_map(|found| match &found.detail {
            Some(finding::Detail::Vulnerability(detail)) => Some(Vulnerability {
                id: detail.vulnerability_id.clone(),
                aliases: detail.aliases.clone(),
                package: detail.package_name.clone(),
                version: detail.package_version.clone(),
                fixed_version: (!detail.fixed_version.is_empty())
                    .then(|| detail.fixed_version.clone()),
                severity: scanner_severity(found.severity),
                cvss_score: (detail.cvss_score > 0.0).then_some(detail.cvss_score),
                ecosystem: detail.ecosystem.clone(),
                layer: detail.layer_digest.clone(),
                purl: detail.purl.clone(),
                location: String::new(),
                summary: None,
                status: None,
            }),
            _ => None,
        })
        .collect();
    sort_for_report(&mut vulnerabilities);
    let created = response
        .scanned
        .as_ref()
        .and_then(|time| chrono::DateTime::from_timestamp(time.seconds, 0))
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(ScanReport {
        sbom: Sbom {
            target: response.image.clone(),
            image_digest: response.manifest_digest.clone(),
            os,
            layers,
            packages,
            issues: response
                .issues
                .iter()
                .map(|issue| CatalogIssue {
                    location: issue.location.clone(),
                    line: (issue.line > 0).then_some(issue.line),
                    reason: issue.reason.clone(),
                })
                .collect(),
        },
        vulnerabilities,
        vulnerability_source: Some("palisade server".to_string()),
        created,
    })
}

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// The finding record of `vulnerability` in `subject`, for `tenant`.
pub fn vulnerability_finding(
    tenant: &str,
    subject: &ImageSubject,
    id: &str,
    state: &FindingState,
    last_seen: i64,
) -> Finding {
    let vulnerability = &state.vulnerability;
    let fixed = vulnerability.fixed_version.clone().unwrap_or_default();
    let title = format!(
        "{} in {} {}",
        vulnerability.id, vulnerability.package, vulnerability.version
    );
    let mut description = vulnerability.summary.clone().unwrap_or_default();
    if description.is_empty() {
        description = format!(
            "{} {} ({}) in {} is affected by {}",
            vulnerability.package,
            vulnerability.version,
            vulnerability.ecosystem,
            subject.image,
            vulnerability.id
        );
    }
    let remediation = if fixed.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "upgrade {} to {} or later and rebuild the image",
            vulnerability.package, fixed
        )]
    };
    Finding {
        id: id.to_string(),
        tenant_id: tenant.to_string(),
        cluster_id: subject.cluster_id.clone(),
        kind: FindingKind::Vulnerability as i32,
        severity: proto_severity(vulnerability.severity) as i32,
        title,
        description,
        subject: Some(EntityRef {
            kind: "image".to_string(),
            name: subject.image.clone(),
            namespace: String::new(),
            cluster_id: subject.cluster_id.clone(),
            uid: subject.image_digest.clone(),
        }),
        related: Vec::new(),
        first_seen: Some(timestamp(state.first_seen)),
        last_seen: Some(timestamp(last_seen)),
        resolved: state.resolved,
        remediation,
        mitre: None,
        detail: Some(finding::Detail::Vulnerability(VulnerabilityDetail {
            vulnerability_id: vulnerability.id.clone(),
            aliases: vulnerability.aliases.clone(),
            package_name: vulnerability.package.clone(),
            package_version: vulnerability.version.clone(),
            ecosystem: vulnerability.ecosystem.clone(),
            fixed_version: fixed,
            purl: vulnerability.purl.clone(),
            image: subject.image.clone(),
            image_digest: subject.image_digest.clone(),
            layer_digest: vulnerability.layer.clone(),
            cvss_vector: String::new(),
            cvss_score: vulnerability.cvss_score.unwrap_or_default(),
        })),
    }
}

fn dedupe_key(tenant: &str, id: &str, state: &FindingState) -> Vec<u8> {
    // the same occurrence in the same state is the same record
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&state.vulnerability).unwrap_or_default());
    let content = hex::encode(&hasher.finalize()[..8]);
    format!(
        "{tenant}/{id}/{}/{}/{content}",
        state.first_seen, state.resolved
    )
    .into_bytes()
}

/// Compares the vulnerabilities of a match (`current`) with what was published for the image
/// before (`previous`, by finding id) and returns what to publish.
pub fn changes(
    tenant: &str,
    subject: &ImageSubject,
    current: &[Vulnerability],
    previous: &BTreeMap<String, FindingState>,
    now: i64,
) -> Changes {
    let mut changes = Changes::default();
    let mut seen = BTreeSet::new();
    let mut by_id: BTreeMap<String, &Vulnerability> = BTreeMap::new();
    for vulnerability in current {
        by_id.insert(
            finding_id(&subject.image_digest, vulnerability),
            vulnerability,
        );
    }
    for (id, vulnerability) in by_id {
        seen.insert(id.clone());
        let state = match previous.get(&id) {
            Some(before) if !before.resolved => {
                if before.vulnerability == *vulnerability {
                    continue;
                }
                changes.updated += 1;
                FindingState {
                    first_seen: before.first_seen,
                    vulnerability: vulnerability.clone(),
                    resolved: false,
                }
            }
            _ => {
                changes.new += 1;
                FindingState {
                    first_seen: now,
                    vulnerability: vulnerability.clone(),
                    resolved: false,
                }
            }
        };
        changes
            .publications
            .push(publication(tenant, subject, id, state, now));
    }
    for (id, before) in previous {
        if before.resolved || seen.contains(id) {
            continue;
        }
        changes.resolved += 1;
        let state = FindingState {
            resolved: true,
            ..before.clone()
        };
        changes
            .publications
            .push(publication(tenant, subject, id.clone(), state, now));
    }
    changes.publications.sort_by(|a, b| a.id.cmp(&b.id));
    changes
}

fn publication(
    tenant: &str,
    subject: &ImageSubject,
    id: String,
    state: FindingState,
    now: i64,
) -> Publication {
    Publication {
        finding: vulnerability_finding(tenant, subject, &id, &state, now),
        dedupe_key: dedupe_key(tenant, &id, &state),
        id,
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vulnerability(id: &str, package: &str, fixed: Option<&str>) -> Vulnerability {
        Vulnerability {
            id: id.into(),
            aliases: vec![],
            package: package.into(),
            version: "1.0-1".into(),
            fixed_version: fixed.map(str::to_string),
            severity: Severity::High,
            cvss_score: Some(7.5),
            ecosystem: "Debian:12".into(),
            layer: "sha256:layer".into(),
            purl: format!("pkg:deb/debian/{package}@1.0-1"),
            location: "/var/lib/dpkg/status".into(),
            summary: None,
            status: None,
        }
    }

    fn subject() -> ImageSubject {
        ImageSubject {
            image: "registry.local/app:1".into(),
            image_digest: "sha256:aaaa".into(),
            cluster_id: "prod".into(),
        }
    }

    fn remember(changes: &Changes, previous: &mut BTreeMap<String, FindingState>) {
        for publication in &changes.publications {
            previous.insert(publication.id.clone(), publication.state.clone());
        }
    }

    #[test]
    fn a_finding_is_published_when_it_appears_changes_or_goes_and_not_otherwise() {
        let subject = subject();
        let mut previous = BTreeMap::new();
        let openssl = vulnerability("CVE-2024-0001", "openssl", None);
        let zlib = vulnerability("CVE-2024-0002", "zlib", Some("1.0-2"));

        let first = changes(
            "acme",
            &subject,
            &[openssl.clone(), zlib.clone()],
            &previous,
            100,
        );
        assert_eq!((first.new, first.updated, first.resolved), (2, 0, 0));
        remember(&first, &mut previous);

        let again = changes(
            "acme",
            &subject,
            &[openssl.clone(), zlib.clone()],
            &previous,
            200,
        );
        assert!(
            again.publications.is_empty(),
            "nothing changed, nothing written"
        );

        let mut fixed_now = openssl.clone();
        fixed_now.fixed_version = Some("1.0-3".into());
        let update = changes("acme", &subject, &[fixed_now, zlib.clone()], &previous, 300);
        assert_eq!((update.new, update.updated, update.resolved), (0, 1, 0));
        let record = &update.publications[0].finding;
        assert_eq!(
            record.first_seen,
            Some(timestamp(100)),
            "first seen is kept"
        );
        assert_eq!(record.last_seen, Some(timestamp(300)));
        assert_eq!(record.remediation.len(), 1);
        remember(&update, &mut previous);

        let gone = changes(
            "acme",
            &subject,
            std::slice::from_ref(&zlib),
            &previous,
            400,
        );
        assert_eq!((gone.new, gone.updated, gone.resolved), (0, 0, 1));
        assert!(gone.publications[0].finding.resolved);
        remember(&gone, &mut previous);

        let back = changes("acme", &subject, &[openssl, zlib], &previous, 500);
        assert_eq!((back.new, back.updated, back.resolved), (1, 0, 0));
        let record = &back.publications[0].finding;
        assert!(!record.resolved);
        assert_eq!(record.first_seen, Some(timestamp(500)), "a new occurrence");
        assert_ne!(
            back.publications[0].dedupe_key, first.publications[0].dedupe_key,
            "reappearing is a new record, not a duplicate of the first"
        );
    }

    #[test]
    fn ids_are_stable_and_differ_by_image_package_and_advisory() {
        let a = vulnerability("CVE-2024-0001", "openssl", None);
        let b = vulnerability("CVE-2024-0001", "libssl3", None);
        assert_eq!(
            finding_id("sha256:1", &a),
            finding_id("sha256:1", &a.clone())
        );
        assert_ne!(finding_id("sha256:1", &a), finding_id("sha256:2", &a));
        assert_ne!(finding_id("sha256:1", &a), finding_id("sha256:1", &b));
        let id = finding_id("sha256:1", &a);
        palisade_core::ids::validate_record_id(&id).expect("a valid record id");
    }

    #[test]
    fn the_record_carries_the_image_the_package_and_the_tenant() {
        let subject = subject();
        let state = FindingState {
            first_seen: 1,
            vulnerability: vulnerability("CVE-2024-0002", "zlib", Some("1.0-2")),
            resolved: false,
        };
        let record = vulnerability_finding("acme", &subject, "vuln-1", &state, 2);
        assert_eq!(record.tenant_id, "acme");
        assert_eq!(record.cluster_id, "prod");
        assert_eq!(record.kind, FindingKind::Vulnerability as i32);
        assert_eq!(record.severity, palisade_proto::v1::Severity::High as i32);
        let subject_ref = record.subject.expect("subject");
        assert_eq!(subject_ref.kind, "image");
        assert_eq!(subject_ref.uid, "sha256:aaaa");
        let Some(finding::Detail::Vulnerability(detail)) = record.detail else {
            panic!("vulnerability detail");
        };
        assert_eq!(detail.fixed_version, "1.0-2");
        assert_eq!(detail.ecosystem, "Debian:12");
        assert_eq!(detail.cvss_score, 7.5);
    }
}
