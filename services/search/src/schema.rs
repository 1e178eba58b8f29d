//! The index schema and how alerts and findings become documents.
//!
//! Every document stores its encoded protobuf record whole (`alert` or `finding`), so hits are
//! returned exactly as they were published; the other fields exist to be searched, filtered,
//! faceted and sorted. Text fields are tokenized for free text; keyword fields hold exact values
//! and are fast fields (columns) so facets and sorting never touch the stored documents.

use std::collections::BTreeMap;
use std::path::Path;

use palisade_proto::PriorityExt;
use palisade_proto::v1::{Alert, EntityRef, Finding, FindingKind, Priority, Severity, finding};
use prost::Message;
use tantivy::schema::document::OwnedValue;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, IndexRecordOption, JsonObjectOptions,
    STORED, STRING, Schema, TEXT, TextFieldIndexing,
};
use tantivy::{DateTime, Index, TantivyDocument, Term};

use crate::error::SearchError;

/// Kind of an alert document, in the `kind` field.
pub const KIND_ALERT: &str = "alert";

/// Name of the JSON field holding an alert's `output_fields` (and a finding's details). Queries
/// name its keys directly by their Falco names (`proc.name:bash`).
pub const FIELDS: &str = "fields";

/// Names of the keyword fields, each indexed exactly and kept as a column.
pub const KEYWORD_FIELDS: &[&str] = &[
    "id",
    "kind",
    "rule_name",
    "priority",
    "source",
    "tags",
    "cluster",
    "namespace",
    "pod",
    "image",
    "node",
    "container",
    "technique",
    "tactic",
    "cve",
    "package",
    "control",
    "resolved",
];

/// The fields of the index.
#[derive(Clone, Debug)]
pub struct IndexSchema {
    pub schema: Schema,
    /// "tenant/id" for alerts, "tenant/f/id" for findings: unique per document, used to
    /// upsert and as the last sort key of cursors.
    pub uid: Field,
    pub tenant: Field,
    /// Tokenized rule name, for free text and `rule:word`.
    pub rule: Field,
    /// Alert output line or finding title.
    pub output: Field,
    pub description: Field,
    /// Rank on Falco's priority scale (findings mapped onto it), for ranges and sorting.
    pub severity: Field,
    pub time: Field,
    /// Offset of the record in its log topic, for the live tail.
    pub log_offset: Field,
    pub fields: Field,
    pub alert: Field,
    pub finding: Field,
    keywords: BTreeMap<&'static str, Field>,
}

impl Default for IndexSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexSchema {
    /// Builds the schema.
    pub fn new() -> IndexSchema {
        let mut builder = Schema::builder();
        let uid = builder.add_text_field("uid", STRING | FAST);
        let tenant = builder.add_text_field("tenant", STRING);
        let rule = builder.add_text_field("rule", TEXT);
        let output = builder.add_text_field("output", TEXT);
        let description = builder.add_text_field("description", TEXT);
        let severity = builder.add_u64_field("severity", INDEXED | FAST);
        let time = builder.add_date_field(
            "time",
            DateOptions::default()
                .set_indexed()
                .set_fast()
                .set_precision(DateTimePrecision::Microseconds),
        );
        let log_offset = builder.add_u64_field("log_offset", INDEXED | FAST);
        let keywords = KEYWORD_FIELDS
            .iter()
            .map(|name| (*name, builder.add_text_field(name, STRING | FAST)))
            .collect();
        let raw_indexing = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic);
        let fields = builder.add_json_field(
            FIELDS,
            JsonObjectOptions::default()
                .set_indexing_options(raw_indexing)
                .set_fast("raw")
                .set_expand_dots_enabled(),
        );
        let alert = builder.add_bytes_field("alert", STORED);
        let finding = builder.add_bytes_field("finding", STORED);
        IndexSchema {
            schema: builder.build(),
            uid,
            tenant,
            rule,
            output,
            description,
            severity,
            time,
            log_offset,
            fields,
            alert,
            finding,
            keywords,
        }
    }

    /// The keyword field named `name` (one of [`KEYWORD_FIELDS`]).
    pub fn keyword(&self, name: &str) -> Option<Field> {
        self.keywords.get(name).copied()
    }

    /// Opens the index at `path`, creating it if the directory is empty.
    pub fn open_or_create(&self, path: &Path) -> Result<Index, SearchError> {
        let open_error = |message: String| SearchError::Open {
            path: path.display().to_string(),
            message,
        };
        std::fs::create_dir_all(path).map_err(|error| open_error(error.to_string()))?;
        let directory = tantivy::directory::MmapDirectory::open(path)
            .map_err(|error| open_error(error.to_string()))?;
        Index::open_or_create(directory, self.schema.clone()).map_err(|error| {
            open_error(format!(
                "{error} (an index written by another version can be rebuilt: stop the server, \
                 remove the index directory and start it again, or run `palisade search reindex`)"
            ))
        })
    }

    /// The term naming one tenant's alert in `uid`.
    pub fn alert_uid_term(&self, tenant: &str, id: &str) -> Term {
        Term::from_field_text(self.uid, &alert_uid(tenant, id))
    }

    /// The term naming one tenant's finding in `uid`.
    pub fn finding_uid_term(&self, tenant: &str, id: &str) -> Term {
        Term::from_field_text(self.uid, &finding_uid(tenant, id))
    }

    /// The term of every document of `tenant`.
    pub fn tenant_term(&self, tenant: &str) -> Term {
        Term::from_field_text(self.tenant, tenant)
    }

    /// The document of an alert read from the log at `log_offset`. The alert's tenant and id
    /// are set (the gateway sets them before the alert reaches the log).
    pub fn alert_document(&self, alert: &Alert, log_offset: u64) -> TantivyDocument {
        let mut document = TantivyDocument::default();
        document.add_text(self.uid, alert_uid(&alert.tenant_id, &alert.id));
        document.add_text(self.tenant, &alert.tenant_id);
        self.add_keyword(&mut document, "id", &alert.id);
        self.add_keyword(&mut document, "kind", KIND_ALERT);
        document.add_text(self.rule, &alert.rule);
        self.add_keyword(&mut document, "rule_name", &alert.rule);
        document.add_text(self.output, &alert.output);
        if !alert.description.is_empty() {
            document.add_text(self.description, &alert.description);
        }
        let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
        self.add_keyword(&mut document, "priority", priority.query_name());
        document.add_u64(self.severity, priority as u64);
        self.add_keyword(&mut document, "source", &alert.source);
        for tag in &alert.tags {
            self.add_keyword(&mut document, "tags", tag);
        }
        self.add_keyword(&mut document, "cluster", &alert.cluster_id);
        self.add_keyword(&mut document, "node", &alert.hostname);
        if let Some(mitre) = &alert.mitre {
            for technique in &mitre.technique_ids {
                self.add_keyword(&mut document, "technique", technique);
            }
            for tactic in &mitre.tactics {
                self.add_keyword(&mut document, "tactic", tactic);
            }
        }
        self.add_entities(&mut document, alert.entities.iter(), false);
        document.add_date(self.time, timestamp_to_date(alert.time.as_ref()));
        document.add_u64(self.log_offset, log_offset);
        let fields: BTreeMap<String, OwnedValue> = alert
            .output_fields
            .iter()
            .map(|(key, value)| (key.clone(), OwnedValue::Str(value.clone())))
            .collect();
        if !fields.is_empty() {
            document.add_object(self.fields, fields);
        }
        document.add_bytes(self.alert, &alert.encode_to_vec());
        document
    }

    /// The document of a finding read from the log at `log_offset`.
    pub fn finding_document(&self, finding: &Finding, log_offset: u64) -> TantivyDocument {
        let mut document = TantivyDocument::default();
        document.add_text(self.uid, finding_uid(&finding.tenant_id, &finding.id));
        document.add_text(self.tenant, &finding.tenant_id);
        self.add_keyword(&mut document, "id", &finding.id);
        let kind = FindingKind::try_from(finding.kind).unwrap_or(FindingKind::Unspecified);
        self.add_keyword(&mut document, "kind", finding_kind_name(kind));
        document.add_text(self.output, &finding.title);
        if !finding.description.is_empty() {
            document.add_text(self.description, &finding.description);
        }
        let severity = Severity::try_from(finding.severity).unwrap_or(Severity::Unspecified);
        self.add_keyword(&mut document, "priority", severity_name(severity));
        document.add_u64(self.severity, severity_rank(severity));
        self.add_keyword(&mut document, "cluster", &finding.cluster_id);
        self.add_keyword(
            &mut document,
            "resolved",
            if finding.resolved { "true" } else { "false" },
        );
        if let Some(mitre) = &finding.mitre {
            for technique in &mitre.technique_ids {
                self.add_keyword(&mut document, "technique", technique);
            }
            for tactic in &mitre.tactics {
                self.add_keyword(&mut document, "tactic", tactic);
            }
        }
        self.add_entities(
            &mut document,
            finding.subject.iter().chain(&finding.related),
            true,
        );
        let mut fields: BTreeMap<String, OwnedValue> = BTreeMap::new();
        let mut field = |key: &str, value: &str| {
            if !value.is_empty() {
                fields.insert(key.to_string(), OwnedValue::Str(value.to_string()));
            }
        };
        match &finding.detail {
            Some(finding::Detail::Vulnerability(detail)) => {
                field("vulnerability.id", &detail.vulnerability_id);
                field("package.name", &detail.package_name);
                field("package.version", &detail.package_version);
                field("package.ecosystem", &detail.ecosystem);
                field("package.fixed_version", &detail.fixed_version);
                field("package.purl", &detail.purl);
                field("image.digest", &detail.image_digest);
                field("layer.digest", &detail.layer_digest);
                field("cvss.vector", &detail.cvss_vector);
                field("cvss.score", &format!("{:.1}", detail.cvss_score));
                self.add_keyword(&mut document, "cve", &detail.vulnerability_id);
                for alias in &detail.aliases {
                    self.add_keyword(&mut document, "cve", alias);
                }
                self.add_keyword(&mut document, "package", &detail.package_name);
                self.add_keyword(&mut document, "image", &detail.image);
            }
            Some(finding::Detail::Insight(detail)) => {
                self.add_keyword(&mut document, "control", &detail.control_id);
                for control in &detail.equivalent_controls {
                    self.add_keyword(&mut document, "control", control);
                }
                for (key, value) in &detail.evidence {
                    field(key, value);
                }
            }
            Some(finding::Detail::AttackPath(detail)) => {
                field("path.id", &detail.path_id);
                field("path.risk_score", &format!("{:.2}", detail.risk_score));
                field("path.steps", &detail.step_count.to_string());
            }
            None => {}
        }
        if !fields.is_empty() {
            document.add_object(self.fields, fields);
        }
        let time = finding.last_seen.as_ref().or(finding.first_seen.as_ref());
        document.add_date(self.time, timestamp_to_date(time));
        document.add_u64(self.log_offset, log_offset);
        document.add_bytes(self.finding, &finding.encode_to_vec());
        document
    }

    fn add_keyword(&self, document: &mut TantivyDocument, name: &'static str, value: &str) {
        // Every name passed here is one of KEYWORD_FIELDS, all of which `new` created.
        if let (false, Some(field)) = (value.is_empty(), self.keyword(name)) {
            document.add_text(field, value);
        }
    }

    /// Namespace, pod, image, node and container of the entities a record is about.
    fn add_entities<'a>(
        &self,
        document: &mut TantivyDocument,
        entities: impl Iterator<Item = &'a EntityRef>,
        with_cluster: bool,
    ) {
        let mut namespaces = Vec::new();
        for entity in entities {
            let field = match entity.kind.as_str() {
                "pod" => Some("pod"),
                "image" => Some("image"),
                "node" => Some("node"),
                "container" => Some("container"),
                "namespace" => Some("namespace"),
                _ => None,
            };
            if let Some(field) = field {
                self.add_keyword(document, field, &entity.name);
            }
            if !entity.namespace.is_empty() && !namespaces.contains(&entity.namespace.as_str()) {
                namespaces.push(entity.namespace.as_str());
            }
            if with_cluster {
                self.add_keyword(document, "cluster", &entity.cluster_id);
            }
        }
        for namespace in namespaces {
            self.add_keyword(document, "namespace", namespace);
        }
    }
}

/// The uid of an alert.
pub fn alert_uid(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

/// The uid of a finding. Record ids never contain '/', so it cannot collide with an alert's.
pub fn finding_uid(tenant: &str, id: &str) -> String {
    format!("{tenant}/f/{id}")
}

/// The name of a finding kind in the `kind` field.
pub fn finding_kind_name(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Vulnerability => "vulnerability",
        FindingKind::Insight => "insight",
        FindingKind::AttackPath => "attack_path",
        FindingKind::Unspecified => "finding",
    }
}

/// The lower-case name of a finding severity.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Unspecified => "unspecified",
        Severity::Unknown => "unknown",
        Severity::Negligible => "negligible",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// A finding severity on Falco's priority scale, so alerts and findings sort together:
/// low = notice, medium = warning, high = error, critical = critical.
pub fn severity_rank(severity: Severity) -> u64 {
    let priority = match severity {
        Severity::Unspecified => Priority::Unspecified,
        Severity::Unknown => Priority::Debug,
        Severity::Negligible => Priority::Informational,
        Severity::Low => Priority::Notice,
        Severity::Medium => Priority::Warning,
        Severity::High => Priority::Error,
        Severity::Critical => Priority::Critical,
    };
    priority as u64
}

/// A protobuf timestamp as an index date, the Unix epoch when absent.
pub fn timestamp_to_date(timestamp: Option<&palisade_proto::prost_types::Timestamp>) -> DateTime {
    let nanos = timestamp
        .map(|time| {
            time.seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(time.nanos))
        })
        .unwrap_or(0);
    DateTime::from_timestamp_nanos(nanos)
}
