//! Alerts raised on audit events: Falco's JSON output format and the `palisade.v1.Alert`
//! message, with an id that is the same every time the same event meets the same rule.

use palisade_proto::PriorityExt;
use palisade_proto::v1::{self, Priority};
use palisade_rules::{Detection, mitre_from_tags};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::event::AuditEvent;
use crate::fields::SOURCE_NAME;

/// One alert on one audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditAlert {
    /// Stable id: derived from the audit id and the rule.
    pub id: String,
    /// Rule name.
    pub rule: String,
    /// Rule priority.
    pub priority: Priority,
    /// Rule description.
    pub description: String,
    /// Rule tags.
    pub tags: Vec<String>,
    /// Rendered output template.
    pub output: String,
    /// Output template fields and values, in template order.
    pub output_fields: Vec<(String, String)>,
    /// Event time, nanoseconds since the epoch.
    pub time_ns: i64,
    /// The event's audit id.
    pub audit_id: String,
    /// Host that saw the event (the watcher's host name).
    pub hostname: String,
    /// Cluster, when known.
    pub cluster: Option<String>,
    /// Acting user.
    pub user: Option<String>,
    /// Target resource, namespace and name.
    pub target: (Option<String>, Option<String>, Option<String>),
}

/// The stable id of a detection: the same audit event meeting the same rule always gets it,
/// so re-processing a log or a resent webhook batch does not duplicate alerts.
pub fn stable_alert_id(audit_id: &str, rule: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(SOURCE_NAME.as_bytes());
    hasher.update([0]);
    hasher.update(audit_id.as_bytes());
    hasher.update([0]);
    hasher.update(rule.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

fn iso_time(time_ns: i64) -> String {
    let seconds = time_ns.div_euclid(1_000_000_000);
    let nanos = u32::try_from(time_ns.rem_euclid(1_000_000_000)).unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, nanos)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
        .unwrap_or_default()
}

impl AuditAlert {
    /// An alert from a rule detection.
    pub fn from_detection(detection: &Detection, event: &AuditEvent, hostname: &str) -> Self {
        let rule = &detection.rule;
        Self::new(
            &rule.name,
            rule.priority,
            &rule.description,
            rule.tags.clone(),
            detection.output.clone(),
            detection.output_fields.clone(),
            event,
            hostname,
        )
    }

    /// An alert from its parts (rules and anomaly detection).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rule: &str,
        priority: Priority,
        description: &str,
        tags: Vec<String>,
        output: String,
        output_fields: Vec<(String, String)>,
        event: &AuditEvent,
        hostname: &str,
    ) -> Self {
        let text = |path: &[&str]| event.str_at(path).map(ToString::to_string);
        Self {
            id: stable_alert_id(&event.audit_id, rule),
            rule: rule.to_string(),
            priority,
            description: description.to_string(),
            tags,
            output,
            output_fields,
            time_ns: event.time_ns,
            audit_id: event.audit_id.clone(),
            hostname: hostname.to_string(),
            cluster: event.cluster.clone(),
            user: event.user().map(ToString::to_string),
            target: (
                text(&["objectRef", "resource"]),
                text(&["objectRef", "namespace"]),
                text(&["objectRef", "name"]),
            ),
        }
    }

    /// The alert in Falco's JSON output format (`json_output: true`), so tools that read
    /// Falco's output (falcosidekick ...) read Palisade's.
    pub fn to_falco_json(&self) -> Json {
        let mut fields = serde_json::Map::new();
        fields.insert("evt.time".into(), json!(self.time_ns));
        for (name, value) in &self.output_fields {
            fields.insert(name.clone(), json!(value));
        }
        let time = iso_time(self.time_ns);
        json!({
            "hostname": self.hostname,
            "output": format!("{}: {} {}", time.replace('Z', "+0000"), self.priority.falco_name(), self.output),
            "priority": self.priority.falco_name(),
            "rule": self.rule,
            "source": SOURCE_NAME,
            "tags": self.tags,
            "time": time,
            "output_fields": fields,
        })
    }

    /// The alert as the `palisade.v1.Alert` message.
    pub fn to_proto(&self) -> v1::Alert {
        let mitre = mitre_from_tags(&self.tags);
        let mut entities = Vec::new();
        let cluster_id = self.cluster.clone().unwrap_or_default();
        if let Some(user) = &self.user {
            let kind = if user.starts_with("system:serviceaccount:") {
                "service_account"
            } else {
                "user"
            };
            entities.push(v1::EntityRef {
                kind: kind.to_string(),
                name: user.clone(),
                namespace: String::new(),
                cluster_id: cluster_id.clone(),
                uid: String::new(),
            });
        }
        let (resource, namespace, name) = &self.target;
        if let (Some(resource), Some(name)) = (resource, name) {
            let kind = resource.strip_suffix('s').unwrap_or(resource).to_string();
            entities.push(v1::EntityRef {
                kind,
                name: name.clone(),
                namespace: namespace.clone().unwrap_or_default(),
                cluster_id: cluster_id.clone(),
                uid: String::new(),
            });
        } else if let Some(namespace) = namespace {
            entities.push(v1::EntityRef {
                kind: "namespace".to_string(),
                name: namespace.clone(),
                namespace: String::new(),
                cluster_id: cluster_id.clone(),
                uid: String::new(),
            });
        }
        let seconds = self.time_ns.div_euclid(1_000_000_000);
        let nanos = i32::try_from(self.time_ns.rem_euclid(1_000_000_000)).unwrap_or(0);
        v1::Alert {
            id: self.id.clone(),
            tenant_id: String::new(),
            cluster_id,
            source: SOURCE_NAME.to_string(),
            rule: self.rule.clone(),
            priority: self.priority as i32,
            output: self.output.clone(),
            output_fields: self.output_fields.iter().cloned().collect(),
            tags: self.tags.clone(),
            mitre: Some(v1::Mitre {
                technique_ids: mitre.technique_ids,
                tactics: mitre.tactics,
            }),
            entities,
            time: Some(prost_types::Timestamp { seconds, nanos }),
            hostname: self.hostname.clone(),
            received_time: None,
            count: 1,
            first_time: None,
            last_time: None,
            description: self.description.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Envelope;

    fn alert() -> AuditAlert {
        let event = AuditEvent::from_object(
            json!({"kind": "Event", "auditID": "abc", "verb": "create", "user": {"username": "bob"},
                   "objectRef": {"resource": "pods", "namespace": "ns", "name": "p"},
                   "stageTimestamp": "2024-01-02T03:04:05.000000006Z"}),
            Envelope::Raw,
            Some("prod".into()),
        );
        AuditAlert::new(
            "Privileged Pod",
            Priority::Warning,
            "desc",
            vec![
                "k8s".into(),
                "T1611".into(),
                "mitre_privilege_escalation".into(),
                "MS-TA9017".into(),
            ],
            "pod p".into(),
            vec![("ka.user.name".into(), "bob".into())],
            &event,
            "watcher-1",
        )
    }

    #[test]
    fn ids_are_stable_per_event_and_rule() {
        assert_eq!(stable_alert_id("abc", "r"), stable_alert_id("abc", "r"));
        assert_ne!(stable_alert_id("abc", "r"), stable_alert_id("abc", "s"));
        assert_ne!(stable_alert_id("abc", "r"), stable_alert_id("abd", "r"));
        assert_eq!(alert().id, stable_alert_id("abc", "Privileged Pod"));
    }

    #[test]
    fn falco_json_and_proto_carry_the_same_detection() {
        let alert = alert();
        let falco = alert.to_falco_json();
        assert_eq!(falco["rule"], "Privileged Pod");
        assert_eq!(falco["priority"], "Warning");
        assert_eq!(falco["source"], "k8s_audit");
        assert_eq!(falco["time"], "2024-01-02T03:04:05.000000006Z");
        assert_eq!(
            falco["output"],
            "2024-01-02T03:04:05.000000006+0000: Warning pod p"
        );
        assert_eq!(falco["output_fields"]["ka.user.name"], "bob");
        let proto = alert.to_proto();
        assert_eq!(proto.id, alert.id);
        assert_eq!(proto.priority, Priority::Warning as i32);
        let mitre = proto.mitre.expect("mitre");
        assert_eq!(mitre.technique_ids, ["T1611"]);
        assert_eq!(mitre.tactics, ["privilege-escalation"]);
        assert_eq!(proto.cluster_id, "prod");
        assert_eq!(proto.entities[0].kind, "user");
        assert_eq!(proto.entities[1].kind, "pod");
        assert_eq!(proto.entities[1].namespace, "ns");
        assert_eq!(proto.time.expect("time").nanos, 6);
    }
}
