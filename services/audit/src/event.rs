//! The one internal audit event every ingestion path produces.

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// Where an event came from, as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope {
    /// An `audit.k8s.io` Event, alone or in an EventList or a JSON-lines file.
    Raw,
    /// An AKS diagnostic record (`properties.log`).
    Aks,
    /// An EKS CloudWatch Logs record (`message`).
    Eks,
    /// A GKE Cloud Audit Logs entry (`protoPayload`), mapped to audit Event fields.
    Gke,
}

impl Envelope {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Aks => "aks",
            Self::Eks => "eks",
            Self::Gke => "gke",
        }
    }
}

/// A Kubernetes audit event in `audit.k8s.io/v1` Event form.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// The Event object. For GKE entries it is built from the LogEntry.
    pub object: Json,
    /// The audit id: `auditID`, or a digest of the event when it has none.
    pub audit_id: String,
    /// Event time in nanoseconds since the Unix epoch (`stageTimestamp`, else
    /// `requestReceivedTimestamp`, else the time it was decoded, as Falco's plugin does).
    pub time_ns: i64,
    /// Delivery envelope.
    pub envelope: Envelope,
    /// Cluster name when the envelope says it.
    pub cluster: Option<String>,
}

/// Parses the timestamp forms found in audit logs: RFC 3339 and `YYYY-MM-DD HH:MM:SS[.f]`.
pub fn parse_timestamp_ns(text: &str) -> Option<i64> {
    if let Ok(parsed) = chrono::DateTime::parse_from_rfc3339(text) {
        return parsed.timestamp_nanos_opt();
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(parsed) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return parsed.and_utc().timestamp_nanos_opt();
        }
    }
    None
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

impl AuditEvent {
    /// Wraps an Event object, deriving the id and time.
    pub fn from_object(object: Json, envelope: Envelope, cluster: Option<String>) -> Self {
        let audit_id = match object.get("auditID").and_then(Json::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                let digest = Sha256::digest(object.to_string().as_bytes());
                format!("sha256:{}", hex::encode(&digest[..16]))
            }
        };
        let time_ns = ["stageTimestamp", "requestReceivedTimestamp"]
            .iter()
            .filter_map(|key| object.get(*key).and_then(Json::as_str))
            .find_map(parse_timestamp_ns)
            .unwrap_or_else(now_ns);
        Self {
            object,
            audit_id,
            time_ns,
            envelope,
            cluster,
        }
    }

    /// A string member at a path of object keys.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        let mut value = &self.object;
        for key in path {
            value = value.get(key)?;
        }
        value.as_str()
    }

    /// The user name.
    pub fn user(&self) -> Option<&str> {
        self.str_at(&["user", "username"])
    }

    /// The verb.
    pub fn verb(&self) -> Option<&str> {
        self.str_at(&["verb"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_rfc3339_and_space_form_parse() {
        assert_eq!(
            parse_timestamp_ns("2018-10-25T13:58:49.730588Z"),
            Some(1_540_475_929_730_588_000)
        );
        assert_eq!(
            parse_timestamp_ns("2022-11-29 00:09:04.38"),
            Some(1_669_680_544_380_000_000)
        );
        assert_eq!(parse_timestamp_ns("yesterday"), None);
    }

    #[test]
    fn events_without_audit_id_get_a_stable_digest() {
        let object = serde_json::json!({"kind": "Event", "verb": "get"});
        let first = AuditEvent::from_object(object.clone(), Envelope::Raw, None);
        let second = AuditEvent::from_object(object, Envelope::Raw, None);
        assert!(first.audit_id.starts_with("sha256:"));
        assert_eq!(first.audit_id, second.audit_id);
    }
}
