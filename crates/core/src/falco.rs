//! Falco's JSON alert format (what `json_output`, `http_output` and falcosidekick carry), both
//! ways: a Falco line into an [`Alert`], and an alert back into the line Falco would print.
//!
//! ```json
//! {"hostname":"node-1","output":"... Warning Shell spawned ...","priority":"Warning",
//!  "rule":"Terminal shell in container","source":"syscall","tags":["container","T1059"],
//!  "time":"2026-11-27T02:47:52.881781397Z","output_fields":{"proc.name":"bash","evt.time":1470327477881781397}}
//! ```

use std::collections::BTreeMap;

use palisade_proto::PriorityExt;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{Alert, EntityRef, Mitre, Priority};
use serde::{Deserialize, Serialize};

/// Value Falco prints for a field the event did not have.
pub const NOT_AVAILABLE: &str = "<NA>";
/// Most output fields accepted on one alert.
pub const MAX_OUTPUT_FIELDS: usize = 1_024;
/// Longest text accepted in any one value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Why a Falco JSON alert could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FalcoFormatError {
    #[error("not a Falco JSON alert: {0}")]
    Json(String),
    #[error("missing required field {0:?}")]
    Missing(&'static str),
    #[error("field {field:?}: {message}")]
    Invalid { field: String, message: String },
}

/// The wire form of a Falco alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FalcoAlert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub output_fields: BTreeMap<String, serde_json::Value>,
}

/// Reads one Falco JSON alert. The alert has no id, tenant or cluster yet: the server assigns
/// them.
pub fn alert_from_falco_json(text: &str) -> Result<Alert, FalcoFormatError> {
    let falco: FalcoAlert =
        serde_json::from_str(text).map_err(|error| FalcoFormatError::Json(error.to_string()))?;
    alert_from_falco(falco)
}

/// Converts the wire form into an [`Alert`].
pub fn alert_from_falco(falco: FalcoAlert) -> Result<Alert, FalcoFormatError> {
    let rule = falco.rule.ok_or(FalcoFormatError::Missing("rule"))?;
    if rule.trim().is_empty() {
        return Err(FalcoFormatError::Invalid {
            field: "rule".into(),
            message: "is empty".into(),
        });
    }
    let priority_text = falco
        .priority
        .ok_or(FalcoFormatError::Missing("priority"))?;
    let priority =
        Priority::from_falco_name(&priority_text).map_err(|error| FalcoFormatError::Invalid {
            field: "priority".into(),
            message: error.to_string(),
        })?;
    let time_text = falco.time.ok_or(FalcoFormatError::Missing("time"))?;
    let time = parse_time(&time_text).map_err(|message| FalcoFormatError::Invalid {
        field: "time".into(),
        message,
    })?;
    if falco.output_fields.len() > MAX_OUTPUT_FIELDS {
        return Err(FalcoFormatError::Invalid {
            field: "output_fields".into(),
            message: format!(
                "has {} fields; at most {MAX_OUTPUT_FIELDS} are accepted",
                falco.output_fields.len()
            ),
        });
    }
    let mut output_fields = std::collections::BTreeMap::new();
    for (key, value) in falco.output_fields {
        let text = match value {
            serde_json::Value::Null => NOT_AVAILABLE.to_string(),
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        check_length(&key, &text)?;
        output_fields.insert(key, text);
    }
    for (field, text) in [
        ("rule", &rule),
        ("output", &falco.output),
        ("hostname", &falco.hostname),
        ("source", &falco.source),
    ] {
        check_length(field, text)?;
    }
    let mitre = mitre_from_tags(&falco.tags);
    let mut alert = Alert {
        source: if falco.source.is_empty() {
            "syscall".to_string()
        } else {
            falco.source
        },
        rule,
        priority: priority as i32,
        output: falco.output,
        output_fields,
        tags: falco.tags,
        mitre,
        time: Some(time),
        hostname: falco.hostname,
        ..Default::default()
    };
    alert.entities = entities_from_fields(&alert);
    Ok(alert)
}

fn check_length(field: &str, text: &str) -> Result<(), FalcoFormatError> {
    if text.len() > MAX_VALUE_BYTES {
        return Err(FalcoFormatError::Invalid {
            field: field.to_string(),
            message: format!(
                "value is {} bytes; at most {MAX_VALUE_BYTES} are accepted",
                text.len()
            ),
        });
    }
    Ok(())
}

/// Parses RFC 3339 with up to nanosecond precision.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|error| format!("{text:?} is not an RFC 3339 time: {error}"))?;
    Ok(Timestamp {
        seconds: parsed.timestamp(),
        nanos: i32::try_from(parsed.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// Formats a timestamp the way Falco does: UTC, nanoseconds, `Z`.
pub fn format_time(time: &Timestamp) -> String {
    let nanos = u32::try_from(time.nanos).unwrap_or(0);
    match chrono::DateTime::from_timestamp(time.seconds, nanos) {
        Some(time) => time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => String::new(),
    }
}

/// MITRE ATT&CK ids and tactics from rule tags: `T1059`, `T1552.007` are techniques;
/// `mitre_privilege_escalation` is the tactic "privilege-escalation" (Falco's convention).
pub fn mitre_from_tags(tags: &[String]) -> Option<Mitre> {
    let mut mitre = Mitre::default();
    for tag in tags {
        if is_technique_id(tag) {
            mitre.technique_ids.push(tag.to_ascii_uppercase());
        } else if let Some(tactic) = tag.strip_prefix("mitre_") {
            mitre.tactics.push(tactic.replace('_', "-"));
        }
    }
    (!mitre.technique_ids.is_empty() || !mitre.tactics.is_empty()).then_some(mitre)
}

fn is_technique_id(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix('T').or_else(|| tag.strip_prefix('t')) else {
        return false;
    };
    let (number, sub) = match rest.split_once('.') {
        Some((number, sub)) => (number, Some(sub)),
        None => (rest, None),
    };
    let digits = |text: &str, count: usize| {
        text.len() == count && text.bytes().all(|byte| byte.is_ascii_digit())
    };
    digits(number, 4) && sub.is_none_or(|sub| digits(sub, 3))
}

/// The pod, container, image, node and user an alert's fields name.
pub fn entities_from_fields(alert: &Alert) -> Vec<EntityRef> {
    let field = |name: &str| {
        alert
            .output_fields
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty() && *value != NOT_AVAILABLE)
    };
    let namespace = field("k8s.ns.name")
        .or_else(|| field("ka.target.namespace"))
        .unwrap_or("");
    let mut entities = Vec::new();
    let mut push = |kind: &str, name: &str, namespace: &str, uid: &str| {
        entities.push(EntityRef {
            kind: kind.to_string(),
            name: name.to_string(),
            namespace: namespace.to_string(),
            cluster_id: String::new(),
            uid: uid.to_string(),
        });
    };
    if let Some(pod) = field("k8s.pod.name") {
        push("pod", pod, namespace, field("k8s.pod.uid").unwrap_or(""));
    }
    if let Some(container) = field("container.id").filter(|id| *id != "host") {
        push(
            "container",
            field("container.name").unwrap_or(container),
            namespace,
            container,
        );
    }
    if let Some(image) = field("container.image.repository") {
        let reference = match field("container.image.tag") {
            Some(tag) => format!("{image}:{tag}"),
            None => image.to_string(),
        };
        push(
            "image",
            &reference,
            "",
            field("container.image.digest").unwrap_or(""),
        );
    }
    if let Some(user) = field("ka.user.name") {
        push("user", user, "", "");
    }
    if !alert.hostname.is_empty() {
        push("node", &alert.hostname, "", "");
    }
    entities
}

/// The Falco JSON line of an alert.
pub fn alert_to_falco_json(alert: &Alert) -> String {
    let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
    let output_fields = alert
        .output_fields
        .iter()
        .map(|(key, value)| {
            let value = if value == NOT_AVAILABLE {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(value.clone())
            };
            (key.clone(), value)
        })
        .collect();
    let falco = FalcoAlert {
        uuid: None,
        hostname: alert.hostname.clone(),
        output: alert.output.clone(),
        priority: Some(priority.falco_name().to_string()),
        rule: Some(alert.rule.clone()),
        source: alert.source.clone(),
        tags: alert.tags.clone(),
        time: alert.time.as_ref().map(format_time),
        output_fields,
    };
    // Serializing plain strings and maps cannot fail.
    serde_json::to_string(&falco).unwrap_or_default()
}

/// Fuzz entry point: any bytes either fail to parse with an error or give an alert that writes
/// back to a line reading to the same alert. Never panics.
pub fn fuzz_falco_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(alert) = alert_from_falco_json(text) else {
        return;
    };
    let line = alert_to_falco_json(&alert);
    let again = alert_from_falco_json(&line);
    assert_eq!(
        again.as_ref(),
        Ok(&alert),
        "a written line must read back: {line}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const FALCO_LINE: &str = r#"{"hostname":"test-falco-hostname","output":"2016-08-04T16:17:57.881781397+0000: Warning An open was seen (command=cat /dev/null)","priority":"Warning","rule":"open_from_cat","source":"syscall","tags":["filesystem","process","testing"],"time":"2016-08-04T16:17:57.881781397Z", "output_fields": {"evt.time.iso8601":1470327477881781397,"proc.cmdline":"cat /dev/null"}}"#;

    #[test]
    fn falco_lines_are_read_with_nanosecond_time_and_stringified_fields() {
        let alert = alert_from_falco_json(FALCO_LINE).expect("valid");
        assert_eq!(alert.rule, "open_from_cat");
        assert_eq!(alert.priority, Priority::Warning as i32);
        assert_eq!(
            alert.time,
            Some(Timestamp {
                seconds: 1_470_327_477,
                nanos: 881_781_397
            })
        );
        assert_eq!(
            alert.output_fields["evt.time.iso8601"],
            "1470327477881781397"
        );
        assert_eq!(alert.output_fields["proc.cmdline"], "cat /dev/null");
        assert_eq!(alert.hostname, "test-falco-hostname");
        assert!(alert.id.is_empty() && alert.tenant_id.is_empty());
    }

    #[test]
    fn a_written_line_reads_back_to_the_same_alert() {
        let mut alert = alert_from_falco_json(FALCO_LINE).expect("valid");
        alert
            .output_fields
            .insert("container.name".into(), NOT_AVAILABLE.into());
        let line = alert_to_falco_json(&alert);
        let again = alert_from_falco_json(&line).expect("round trip");
        assert_eq!(again, alert);
        assert!(line.contains("\"container.name\":null"), "{line}");
    }

    #[test]
    fn missing_and_invalid_fields_are_named() {
        let cases = [
            (
                r#"{"priority":"Warning","time":"2016-08-04T16:17:57Z"}"#,
                "\"rule\"",
            ),
            (
                r#"{"rule":"r","time":"2016-08-04T16:17:57Z"}"#,
                "\"priority\"",
            ),
            (
                r#"{"rule":"r","priority":"Severe","time":"2016-08-04T16:17:57Z"}"#,
                "priority",
            ),
            (
                r#"{"rule":"r","priority":"Warning","time":"yesterday"}"#,
                "time",
            ),
            (
                r#"{"rule":"r","priority":"Warning""#,
                "not a Falco JSON alert",
            ),
        ];
        for (line, expected) in cases {
            let error = alert_from_falco_json(line).expect_err(line).to_string();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn oversized_values_are_refused() {
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        let line = format!(
            r#"{{"rule":"r","priority":"Warning","time":"2016-08-04T16:17:57Z","output":"{long}"}}"#
        );
        let error = alert_from_falco_json(&line)
            .expect_err("too long")
            .to_string();
        assert!(error.contains("output"), "{error}");
    }

    #[test]
    fn fuzz_logic_accepts_odd_input_without_panicking() {
        for input in [
            b"".as_slice(),
            b"\xff\xfe",
            b"null",
            b"[]",
            br#"{"rule":"r","priority":"Debug","time":"2026-01-01T00:00:00+05:00","output_fields":{"a":[1,{"b":null}],"n":1.5e300}}"#,
            br#"{"rule":"r","priority":"Debug","time":"9999-12-31T23:59:59.999999999Z"}"#,
            FALCO_LINE.as_bytes(),
        ] {
            fuzz_falco_json(input);
        }
    }

    #[test]
    fn mitre_ids_and_tactics_come_from_tags() {
        let tags: Vec<String> = [
            "container",
            "T1611",
            "t1552.007",
            "mitre_privilege_escalation",
            "T12",
            "T1611.1",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let mitre = mitre_from_tags(&tags).expect("some");
        assert_eq!(mitre.technique_ids, ["T1611", "T1552.007"]);
        assert_eq!(mitre.tactics, ["privilege-escalation"]);
        assert_eq!(mitre_from_tags(&["container".to_string()]), None);
    }

    #[test]
    fn entities_are_taken_from_kubernetes_and_container_fields() {
        let line = r#"{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","hostname":"node-1","output_fields":{"k8s.pod.name":"web-1","k8s.ns.name":"prod","container.id":"abc123","container.name":"web","container.image.repository":"nginx","container.image.tag":"1.27","ka.user.name":null}}"#;
        let alert = alert_from_falco_json(line).expect("valid");
        let kinds: Vec<(&str, &str, &str)> = alert
            .entities
            .iter()
            .map(|entity| {
                (
                    entity.kind.as_str(),
                    entity.name.as_str(),
                    entity.namespace.as_str(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("pod", "web-1", "prod"),
                ("container", "web", "prod"),
                ("image", "nginx:1.27", ""),
                ("node", "node-1", "")
            ]
        );
    }
}
