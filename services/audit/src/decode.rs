//! Decodes audit events from every envelope they arrive in: a raw `audit.k8s.io` Event, an
//! EventList (webhook), JSON lines (log files), AKS diagnostic records, EKS CloudWatch records
//! and GKE Cloud Audit Logs entries. Sizes are bounded; an entry that is not a usable audit event
//! is skipped with a counted reason, never a panic.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::event::{AuditEvent, Envelope};
use crate::gke::gke_entry_to_event;

/// Size limits of decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest single event (a JSON line, an AKS `properties.log`, an EKS `message`, an
    /// EventList item). Falco's k8saudit plugin uses the same default.
    pub max_event_bytes: usize,
    /// Largest document (a webhook body, one line of a file).
    pub max_document_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: 256 * 1024,
            max_document_bytes: 12 * 1024 * 1024,
        }
    }
}

/// Why an entry was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Not valid JSON.
    InvalidJson,
    /// Larger than the limit.
    TooLarge,
    /// Valid JSON but not a Kubernetes audit event.
    NotAuditEvent,
    /// An audit event without a required field.
    MissingField,
    /// An audit event whose field has the wrong type.
    MalformedField,
    /// An AKS record of a category other than kube-audit / kube-audit-admin.
    OtherCategory,
    /// A cloud log entry of another service.
    NotKubernetes,
}

impl SkipReason {
    /// Stable reason string.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::TooLarge => "too_large",
            Self::NotAuditEvent => "not_audit_event",
            Self::MissingField => "missing_field",
            Self::MalformedField => "malformed_field",
            Self::OtherCategory => "other_category",
            Self::NotKubernetes => "not_kubernetes",
        }
    }
}

/// One skipped entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Why.
    pub reason: SkipReason,
    /// Details naming what was wrong and where.
    pub detail: String,
}

/// Events and skips from one input.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// Decoded events in input order.
    pub events: Vec<AuditEvent>,
    /// Skipped entries in input order.
    pub skips: Vec<Skip>,
}

impl Decoded {
    fn skip(&mut self, reason: SkipReason, detail: impl Into<String>) {
        self.skips.push(Skip {
            reason,
            detail: detail.into(),
        });
    }
}

/// Running counts of a decoding path.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    /// Events decoded.
    pub decoded: u64,
    /// Entries skipped, by reason code.
    pub skipped: BTreeMap<&'static str, u64>,
}

impl DecodeStats {
    /// Adds the outcome of one decode.
    pub fn add(&mut self, decoded: &Decoded) {
        self.decoded += decoded.events.len() as u64;
        for skip in &decoded.skips {
            *self.skipped.entry(skip.reason.code()).or_default() += 1;
        }
    }

    /// All skipped entries.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// A document that cannot be decoded at all (the webhook answers 400 or 413 with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The document is larger than the limit.
    #[error("document of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
}

/// Decodes one JSON document: an Event, an EventList, an array, or a cloud envelope.
pub fn decode_document(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DocumentError> {
    if bytes.len() > limits.max_document_bytes {
        return Err(DocumentError::TooLarge {
            size: bytes.len(),
            limit: limits.max_document_bytes,
        });
    }
    let value: Json = serde_json::from_slice(bytes)
        .map_err(|error| DocumentError::InvalidJson(error.to_string()))?;
    let mut decoded = Decoded::default();
    let single_event_size = (bytes.len() <= limits.max_event_bytes).then_some(bytes.len());
    decode_value(value, single_event_size, limits, &mut decoded);
    Ok(decoded)
}

/// Decodes JSON lines: every non-blank line is a document. A bad line is skipped and counted
/// with its line number.
pub fn decode_lines(bytes: &[u8], limits: &DecodeLimits) -> Decoded {
    let mut decoded = Decoded::default();
    for (number, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        decode_line(line, number + 1, limits, &mut decoded);
    }
    decoded
}

/// Decodes one line of a JSON-lines input into `decoded`.
pub fn decode_line(line: &[u8], line_number: usize, limits: &DecodeLimits, decoded: &mut Decoded) {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return;
    }
    if trimmed.len() > limits.max_event_bytes.max(limits.max_document_bytes) {
        decoded.skip(
            SkipReason::TooLarge,
            format!("line {line_number}: {} bytes", trimmed.len()),
        );
        return;
    }
    match decode_document(trimmed, limits) {
        Ok(mut line_decoded) => {
            decoded.events.append(&mut line_decoded.events);
            for mut skip in line_decoded.skips {
                skip.detail = format!("line {line_number}: {}", skip.detail);
                decoded.skips.push(skip);
            }
        }
        Err(DocumentError::InvalidJson(reason)) => decoded.skip(
            SkipReason::InvalidJson,
            format!("line {line_number}: {reason}"),
        ),
        Err(error) => decoded.skip(SkipReason::TooLarge, format!("line {line_number}: {error}")),
    }
}

/// Decodes a file's content: one JSON document, or JSON lines when it is not one document.
pub fn decode_any(bytes: &[u8], limits: &DecodeLimits) -> Decoded {
    match decode_document(bytes, limits) {
        Ok(decoded) => decoded,
        Err(_) => decode_lines(bytes, limits),
    }
}

fn decode_value(value: Json, size: Option<usize>, limits: &DecodeLimits, decoded: &mut Decoded) {
    match value {
        Json::Array(items) => {
            for item in items {
                decode_value(item, None, limits, decoded);
            }
        }
        Json::Object(object) => decode_object(object, size, limits, decoded),
        other => decoded.skip(
            SkipReason::NotAuditEvent,
            format!("a JSON {} is not an audit event", json_kind(&other)),
        ),
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn event_too_large(
    object: &Map<String, Json>,
    size: Option<usize>,
    limits: &DecodeLimits,
) -> Option<usize> {
    let size = match size {
        Some(size) => size,
        None => serde_json::to_vec(object)
            .map(|bytes| bytes.len())
            .unwrap_or(usize::MAX),
    };
    (size > limits.max_event_bytes).then_some(size)
}

fn decode_object(
    mut object: Map<String, Json>,
    size: Option<usize>,
    limits: &DecodeLimits,
    decoded: &mut Decoded,
) {
    let kind = object
        .get("kind")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    if kind == "EventList" || (kind.is_empty() && object.get("items").is_some_and(Json::is_array)) {
        let Some(Json::Array(items)) = object.remove("items") else {
            decoded.skip(
                SkipReason::MalformedField,
                "EventList without an items array",
            );
            return;
        };
        for item in items {
            match item {
                Json::Object(item) => {
                    if let Some(item_size) = size
                        .is_none()
                        .then(|| event_too_large(&item, None, limits))
                        .flatten()
                    {
                        decoded.skip(
                            SkipReason::TooLarge,
                            format!(
                                "EventList item of {item_size} bytes exceeds {} bytes",
                                limits.max_event_bytes
                            ),
                        );
                        continue;
                    }
                    accept_event(item, Envelope::Raw, None, decoded);
                }
                other => decoded.skip(
                    SkipReason::NotAuditEvent,
                    format!("EventList item is a JSON {}", json_kind(&other)),
                ),
            }
        }
        return;
    }
    if let Some(Json::Array(records)) = object.remove("records") {
        for record in records {
            match record {
                Json::Object(record) => decode_aks_record(record, limits, decoded),
                other => decoded.skip(
                    SkipReason::NotAuditEvent,
                    format!("diagnostic record is a JSON {}", json_kind(&other)),
                ),
            }
        }
        return;
    }
    if let Some(Json::Array(log_events)) = object.remove("logEvents") {
        let cluster = object
            .get("logGroup")
            .and_then(Json::as_str)
            .and_then(eks_cluster_from_log_group);
        for log_event in log_events {
            match log_event.get("message") {
                Some(message) => {
                    decode_embedded(message, Envelope::Eks, cluster.clone(), limits, decoded)
                }
                None => decoded.skip(
                    SkipReason::MissingField,
                    "CloudWatch log event without message",
                ),
            }
        }
        return;
    }
    if object.contains_key("protoPayload") {
        match gke_entry_to_event(&object) {
            Ok((event, cluster)) => accept_event(event, Envelope::Gke, cluster, decoded),
            Err(skip) => decoded.skips.push(skip),
        }
        return;
    }
    if object
        .get("properties")
        .is_some_and(|properties| properties.get("log").is_some())
    {
        decode_aks_record(object, limits, decoded);
        return;
    }
    if kind.is_empty()
        && !object.contains_key("auditID")
        && let Some(message) = object.get("message").or_else(|| object.get("@message"))
    {
        let message = message.clone();
        decode_embedded(&message, Envelope::Eks, None, limits, decoded);
        return;
    }
    if let Some(too_large) = event_too_large(&object, size, limits) {
        decoded.skip(
            SkipReason::TooLarge,
            format!(
                "event of {too_large} bytes exceeds {} bytes",
                limits.max_event_bytes
            ),
        );
        return;
    }
    accept_event(object, Envelope::Raw, None, decoded);
}

fn eks_cluster_from_log_group(log_group: &str) -> Option<String> {
    // EKS control-plane log groups are named /aws/eks/<cluster>/cluster.
    let rest = log_group.strip_prefix("/aws/eks/")?;
    rest.strip_suffix("/cluster").map(ToString::to_string)
}

fn decode_embedded(
    message: &Json,
    envelope: Envelope,
    cluster: Option<String>,
    limits: &DecodeLimits,
    decoded: &mut Decoded,
) {
    let object = match message {
        Json::String(text) => {
            if text.len() > limits.max_event_bytes {
                decoded.skip(
                    SkipReason::TooLarge,
                    format!(
                        "{} message of {} bytes exceeds {} bytes",
                        envelope.name(),
                        text.len(),
                        limits.max_event_bytes
                    ),
                );
                return;
            }
            match serde_json::from_str::<Json>(text) {
                Ok(Json::Object(object)) => object,
                Ok(other) => {
                    decoded.skip(
                        SkipReason::NotAuditEvent,
                        format!(
                            "{} message is a JSON {}",
                            envelope.name(),
                            json_kind(&other)
                        ),
                    );
                    return;
                }
                Err(error) => {
                    decoded.skip(
                        SkipReason::InvalidJson,
                        format!("{} message: {error}", envelope.name()),
                    );
                    return;
                }
            }
        }
        Json::Object(object) => object.clone(),
        other => {
            decoded.skip(
                SkipReason::NotAuditEvent,
                format!("{} message is a JSON {}", envelope.name(), json_kind(other)),
            );
            return;
        }
    };
    accept_event(object, envelope, cluster, decoded);
}

fn decode_aks_record(record: Map<String, Json>, limits: &DecodeLimits, decoded: &mut Decoded) {
    let category = record
        .get("category")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if !category.is_empty() && category != "kube-audit" && category != "kube-audit-admin" {
        decoded.skip(
            SkipReason::OtherCategory,
            format!("AKS diagnostic category {category:?} is not kube-audit or kube-audit-admin"),
        );
        return;
    }
    let cluster = record
        .get("resourceId")
        .and_then(Json::as_str)
        .and_then(|resource| resource.rsplit('/').next())
        .map(ToString::to_string);
    match record
        .get("properties")
        .and_then(|properties| properties.get("log"))
    {
        Some(log) => decode_embedded(log, Envelope::Aks, cluster, limits, decoded),
        None => decoded.skip(
            SkipReason::MissingField,
            "AKS record without properties.log",
        ),
    }
}

fn check_type(
    object: &Map<String, Json>,
    key: &str,
    expected: fn(&Json) -> bool,
    what: &str,
) -> Result<(), Skip> {
    match object.get(key) {
        Some(value) if !expected(value) && !value.is_null() => Err(Skip {
            reason: SkipReason::MalformedField,
            detail: format!(
                "field {key} must be {what}, found a JSON {}",
                json_kind(value)
            ),
        }),
        _ => Ok(()),
    }
}

/// Checks that an object is a usable audit event.
pub fn validate_event(object: &Map<String, Json>) -> Result<(), Skip> {
    match object.get("kind").and_then(Json::as_str) {
        Some("Event") => {}
        Some(other) => {
            return Err(Skip {
                reason: SkipReason::NotAuditEvent,
                detail: format!("object of kind {other:?} is not an audit Event"),
            });
        }
        None if object.contains_key("auditID") => {}
        None => {
            return Err(Skip {
                reason: SkipReason::NotAuditEvent,
                detail: "data not recognized as a k8s audit event: no kind Event and no auditID"
                    .to_string(),
            });
        }
    }
    match object.get("verb") {
        Some(Json::String(_)) => {}
        Some(other) => {
            return Err(Skip {
                reason: SkipReason::MalformedField,
                detail: format!(
                    "field verb must be a string, found a JSON {}",
                    json_kind(other)
                ),
            });
        }
        None => {
            return Err(Skip {
                reason: SkipReason::MissingField,
                detail: "audit event without verb".to_string(),
            });
        }
    }
    check_type(object, "user", Json::is_object, "an object")?;
    check_type(object, "objectRef", Json::is_object, "an object")?;
    check_type(object, "sourceIPs", Json::is_array, "an array")?;
    check_type(object, "annotations", Json::is_object, "an object")?;
    check_type(object, "responseStatus", Json::is_object, "an object")?;
    check_type(object, "auditID", Json::is_string, "a string")?;
    check_type(object, "stage", Json::is_string, "a string")?;
    Ok(())
}

fn accept_event(
    object: Map<String, Json>,
    envelope: Envelope,
    cluster: Option<String>,
    decoded: &mut Decoded,
) {
    if let Err(mut skip) = validate_event(&object) {
        if let Some(id) = object.get("auditID").and_then(Json::as_str) {
            skip.detail = format!("event {id}: {}", skip.detail);
        }
        decoded.skips.push(skip);
        return;
    }
    decoded.events.push(AuditEvent::from_object(
        Json::Object(object),
        envelope,
        cluster,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","stage":"ResponseComplete","verb":"create","user":{"username":"bob"},"objectRef":{"resource":"pods","namespace":"default","name":"p"},"stageTimestamp":"2024-01-01T00:00:00Z"}"#;

    #[test]
    fn every_envelope_yields_the_same_event() {
        let limits = DecodeLimits::default();
        let raw = decode_document(EVENT.as_bytes(), &limits).expect("raw");
        let list = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{EVENT},{EVENT}]}}"#
        );
        let list = decode_document(list.as_bytes(), &limits).expect("list");
        let aks = serde_json::json!({"records": [{"category": "kube-audit", "properties": {"log": EVENT}}, {"category": "kube-apiserver", "properties": {"log": "x"}}]});
        let aks = decode_document(aks.to_string().as_bytes(), &limits).expect("aks");
        let eks = serde_json::json!({"logGroup": "/aws/eks/prod/cluster", "logEvents": [{"id": "1", "timestamp": 1, "message": EVENT}]});
        let eks = decode_document(eks.to_string().as_bytes(), &limits).expect("eks");
        let lines = decode_lines(
            format!("{EVENT}\n\n{EVENT}\nnot json\n").as_bytes(),
            &limits,
        );

        assert_eq!(raw.events.len(), 1);
        assert_eq!(list.events.len(), 2);
        assert_eq!(aks.events.len(), 1);
        assert_eq!(aks.skips[0].reason, SkipReason::OtherCategory);
        assert_eq!(eks.events[0].cluster.as_deref(), Some("prod"));
        assert_eq!(eks.events[0].envelope, Envelope::Eks);
        assert_eq!(lines.events.len(), 2);
        assert_eq!(lines.skips.len(), 1);
        assert!(
            lines.skips[0].detail.starts_with("line 4:"),
            "{:?}",
            lines.skips
        );
        for decoded in [&raw, &list, &aks, &eks, &lines] {
            assert_eq!(decoded.events[0].object, raw.events[0].object);
            assert_eq!(decoded.events[0].audit_id, "a1");
        }
    }

    #[test]
    fn malformed_and_foreign_entries_are_skipped_with_reasons() {
        let limits = DecodeLimits::default();
        let decoded = decode_document(
            br#"[{"kind":"Event","auditID":"x"},{"kind":"Event","verb":3},{"kind":"Pod","verb":"get"},{"auditID":"y","verb":"get","user":"bob"},42]"#,
            &limits,
        )
        .expect("json");
        let reasons: Vec<SkipReason> = decoded.skips.iter().map(|skip| skip.reason).collect();
        assert_eq!(
            reasons,
            vec![
                SkipReason::MissingField,
                SkipReason::MalformedField,
                SkipReason::NotAuditEvent,
                SkipReason::MalformedField,
                SkipReason::NotAuditEvent
            ]
        );
        assert!(decoded.events.is_empty());
        assert!(matches!(
            decode_document(b"{", &limits),
            Err(DocumentError::InvalidJson(_))
        ));
        let small = DecodeLimits {
            max_event_bytes: 10,
            max_document_bytes: 20,
        };
        assert!(matches!(
            decode_document(EVENT.as_bytes(), &small),
            Err(DocumentError::TooLarge { .. })
        ));
        let decoded = decode_lines(
            EVENT.as_bytes(),
            &DecodeLimits {
                max_event_bytes: 10,
                max_document_bytes: 100_000,
            },
        );
        assert_eq!(decoded.skips[0].reason, SkipReason::TooLarge);
    }
}
