//! Splunk HTTP Event Collector requests: several events in one body, each
//! `{"time", "host", "source", "sourcetype", "index", "event", "fields"}`, POSTed to
//! `/services/collector/event` with `Authorization: Splunk <token>`.

use palisade_proto::PriorityExt;
use palisade_proto::v1::{Alert, Priority};
use serde_json::{Map, Value, json};

use crate::webhook::alert_document;

/// Path of the JSON event endpoint.
pub const EVENT_PATH: &str = "/services/collector/event";
/// Sourcetype when the target names none.
pub const DEFAULT_SOURCETYPE: &str = "palisade:alert";

/// The endpoint a target's `url` stands for: a URL without a path gets [`EVENT_PATH`].
pub fn event_url(url: &str) -> Result<reqwest::Url, String> {
    let mut parsed = reqwest::Url::parse(url).map_err(|error| format!("url {url:?}: {error}"))?;
    if parsed.path().is_empty() || parsed.path() == "/" {
        parsed.set_path(EVENT_PATH);
    }
    Ok(parsed)
}

/// One HEC event for an alert.
pub fn hec_event(alert: &Alert, index: Option<&str>, sourcetype: Option<&str>) -> Value {
    let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
    let mut event = Map::new();
    if let Some(time) = &alert.time {
        // Seconds with millisecond precision, as HEC reads it.
        let millis = i64::from(time.nanos) / 1_000_000;
        event.insert(
            "time".into(),
            json!(
                format!("{}.{millis:03}", time.seconds)
                    .parse::<f64>()
                    .unwrap_or(time.seconds as f64)
            ),
        );
    }
    if !alert.hostname.is_empty() {
        event.insert("host".into(), json!(alert.hostname));
    }
    event.insert("source".into(), json!("palisade"));
    event.insert(
        "sourcetype".into(),
        json!(sourcetype.unwrap_or(DEFAULT_SOURCETYPE)),
    );
    if let Some(index) = index {
        event.insert("index".into(), json!(index));
    }
    event.insert(
        "event".into(),
        serde_json::to_value(alert_document(alert)).unwrap_or(Value::Null),
    );
    // Indexed fields, searchable without extracting them from the event.
    event.insert(
        "fields".into(),
        json!({
            "tenant": alert.tenant_id,
            "cluster": alert.cluster_id,
            "rule": alert.rule,
            "priority": priority.falco_name(),
            "alert_id": alert.id,
        }),
    );
    Value::Object(event)
}

/// The body of one HEC request: the events one after another, newline-separated.
pub fn hec_body(alerts: &[Alert], index: Option<&str>, sourcetype: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(alerts.len() * 1024);
    for alert in alerts {
        // JSON values always serialize.
        if serde_json::to_writer(&mut body, &hec_event(alert, index, sourcetype)).is_ok() {
            body.push(b'\n');
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use palisade_core::falco::alert_from_falco_json;

    use super::*;

    #[test]
    fn urls_without_a_path_get_the_event_endpoint() {
        assert_eq!(
            event_url("https://splunk:8088").expect("url").as_str(),
            "https://splunk:8088/services/collector/event"
        );
        assert_eq!(
            event_url("https://splunk:8088/services/collector")
                .expect("url")
                .path(),
            "/services/collector"
        );
        assert!(event_url("not a url").is_err());
    }

    #[test]
    fn a_batch_is_one_event_object_per_alert_with_time_host_and_indexed_fields() {
        let line = r#"{"hostname":"node-1","output":"o","priority":"Warning","rule":"r","source":"syscall","time":"2016-08-04T16:17:57.881781397Z"}"#;
        let mut alert = alert_from_falco_json(line).expect("valid");
        alert.id = "a1".into();
        alert.tenant_id = "acme".into();
        let body = hec_body(&[alert.clone(), alert], Some("security"), None);
        let events: Vec<Value> = serde_json::Deserializer::from_slice(&body)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["time"], json!(1470327477.881));
        assert_eq!(events[0]["host"], "node-1");
        assert_eq!(events[0]["index"], "security");
        assert_eq!(events[0]["sourcetype"], DEFAULT_SOURCETYPE);
        assert_eq!(events[0]["event"]["uuid"], "a1");
        assert_eq!(events[0]["fields"]["tenant"], "acme");
        assert_eq!(events[0]["fields"]["priority"], "Warning");
    }
}
