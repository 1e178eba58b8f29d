//! The index schema and how an alert becomes a document.
//!
//! Every document stores the encoded protobuf record whole (`doc`), so hits are returned exactly
//! as they were published; the other fields exist to be searched, filtered and sorted.

use std::collections::BTreeMap;
use std::path::Path;

use palisade_proto::PriorityExt;
use palisade_proto::v1::{Alert, Priority};
use prost::Message;
use tantivy::schema::document::OwnedValue;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, IndexRecordOption, JsonObjectOptions,
    STORED, STRING, Schema, TEXT, TextFieldIndexing,
};
use tantivy::{DateTime, Index, TantivyDocument, Term};

use crate::error::SearchError;

/// Kind of a document, in the `kind` field.
pub const KIND_ALERT: &str = "alert";

/// Name of the JSON field holding `output_fields`. Queries name its keys directly
/// (`proc.name:bash`): the field is a default field, so unknown dotted names resolve into it.
pub const OUTPUT_FIELDS: &str = "output_fields";

/// The fields of the index.
#[derive(Clone, Debug)]
pub struct AlertSchema {
    pub schema: Schema,
    /// "tenant/id": unique per document, used to upsert.
    pub uid: Field,
    pub tenant: Field,
    pub kind: Field,
    pub id: Field,
    pub rule: Field,
    /// Lower-case priority name ("warning").
    pub priority: Field,
    /// Priority as a number, for ranges and sorting (Priority's enum value).
    pub severity: Field,
    pub source: Field,
    pub tags: Field,
    pub output: Field,
    pub hostname: Field,
    pub cluster: Field,
    pub mitre: Field,
    pub time: Field,
    pub output_fields: Field,
    /// The encoded record.
    pub doc: Field,
}

impl Default for AlertSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl AlertSchema {
    /// Builds the schema.
    pub fn new() -> AlertSchema {
        let mut builder = Schema::builder();
        let uid = builder.add_text_field("uid", STRING);
        let tenant = builder.add_text_field("tenant", STRING | FAST);
        let kind = builder.add_text_field("kind", STRING);
        let id = builder.add_text_field("id", STRING);
        let rule = builder.add_text_field("rule", TEXT);
        let priority = builder.add_text_field("priority", STRING);
        let severity = builder.add_u64_field("severity", INDEXED | FAST);
        let source = builder.add_text_field("source", STRING);
        let tags = builder.add_text_field("tags", STRING);
        let output = builder.add_text_field("output", TEXT);
        let hostname = builder.add_text_field("hostname", STRING);
        let cluster = builder.add_text_field("cluster", STRING);
        let mitre = builder.add_text_field("mitre", STRING);
        let time = builder.add_date_field(
            "time",
            DateOptions::default()
                .set_indexed()
                .set_fast()
                .set_precision(DateTimePrecision::Microseconds),
        );
        let json_indexing = TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let output_fields = builder.add_json_field(
            OUTPUT_FIELDS,
            JsonObjectOptions::default()
                .set_indexing_options(json_indexing)
                .set_expand_dots_enabled(),
        );
        let doc = builder.add_bytes_field("doc", STORED);
        AlertSchema {
            schema: builder.build(),
            uid,
            tenant,
            kind,
            id,
            rule,
            priority,
            severity,
            source,
            tags,
            output,
            hostname,
            cluster,
            mitre,
            time,
            output_fields,
            doc,
        }
    }

    /// Opens the index at `path`, creating it if the directory is empty.
    pub fn open_or_create(&self, path: &Path) -> Result<Index, SearchError> {
        std::fs::create_dir_all(path).map_err(|error| SearchError::Open {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        let directory =
            tantivy::directory::MmapDirectory::open(path).map_err(|error| SearchError::Open {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
        let index = Index::open_or_create(directory, self.schema.clone()).map_err(|error| SearchError::Open {
            path: path.display().to_string(),
            message: format!("{error} (an index written by an incompatible version can be rebuilt with `palisade search reindex`)"),
        })?;
        Ok(index)
    }

    /// The term that identifies a tenant's record in `uid`.
    pub fn uid_term(&self, tenant: &str, id: &str) -> Term {
        Term::from_field_text(self.uid, &format!("{tenant}/{id}"))
    }

    /// The document of an alert. The alert's tenant and id must be set (the gateway sets them
    /// before the alert reaches the log).
    pub fn alert_document(&self, alert: &Alert) -> TantivyDocument {
        let mut document = TantivyDocument::default();
        document.add_text(self.uid, format!("{}/{}", alert.tenant_id, alert.id));
        document.add_text(self.tenant, &alert.tenant_id);
        document.add_text(self.kind, KIND_ALERT);
        document.add_text(self.id, &alert.id);
        document.add_text(self.rule, &alert.rule);
        let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
        document.add_text(self.priority, priority.query_name());
        document.add_u64(self.severity, priority as u64);
        document.add_text(self.source, &alert.source);
        for tag in &alert.tags {
            document.add_text(self.tags, tag);
        }
        document.add_text(self.output, &alert.output);
        document.add_text(self.hostname, &alert.hostname);
        document.add_text(self.cluster, &alert.cluster_id);
        if let Some(mitre) = &alert.mitre {
            for value in mitre.technique_ids.iter().chain(&mitre.tactics) {
                document.add_text(self.mitre, value);
            }
        }
        document.add_date(self.time, alert_time(alert));
        let fields: BTreeMap<String, OwnedValue> = alert
            .output_fields
            .iter()
            .map(|(key, value)| (key.clone(), OwnedValue::Str(value.clone())))
            .collect();
        document.add_object(self.output_fields, fields);
        document.add_bytes(self.doc, &alert.encode_to_vec());
        document
    }
}

/// The event time of an alert, or the Unix epoch when it has none.
pub fn alert_time(alert: &Alert) -> DateTime {
    let nanos = alert
        .time
        .as_ref()
        .map(|time| {
            time.seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(time.nanos))
        })
        .unwrap_or(0);
    DateTime::from_timestamp_nanos(nanos)
}
