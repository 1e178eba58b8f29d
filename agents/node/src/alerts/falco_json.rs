//! Falco's JSON alert format (what `falco -o json_output=true` prints and falcosidekick
//! reads): hostname, output, priority, rule, source, tags, time, output_fields. Palisade adds
//! its own keys only under output_fields, with a `palisade.` prefix, so Falco consumers keep
//! working: the detection id, the aggregate count and times.

use palisade_proto::PriorityExt;
use serde_json::{Map, Value, json};

use super::Detection;

/// Falco's time form: 2016-08-04T16:17:57.881781397Z (or +0000 inside `output`).
fn falco_time(ns: u64, suffix: &str) -> String {
    let seconds = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(ns % 1_000_000_000).unwrap_or(0);
    match chrono::DateTime::from_timestamp(seconds, nanos) {
        Some(time) => format!("{}{suffix}", time.format("%Y-%m-%dT%H:%M:%S%.9f")),
        None => ns.to_string(),
    }
}

/// The detection as one Falco JSON object.
pub fn to_falco_json(detection: &Detection) -> Value {
    let mut fields = Map::new();
    for (name, value) in &detection.output_fields {
        fields.insert(name.clone(), Value::String(value.clone()));
    }
    fields.insert("palisade.id".into(), Value::String(detection.id.clone()));
    if detection.count > 1 {
        fields.insert("palisade.count".into(), json!(detection.count));
        fields.insert(
            "palisade.first_time".into(),
            Value::String(falco_time(detection.first_time_ns, "Z")),
        );
        fields.insert(
            "palisade.last_time".into(),
            Value::String(falco_time(detection.last_time_ns, "Z")),
        );
    }
    json!({
        "hostname": detection.hostname,
        "output": format!(
            "{}: {} {}",
            falco_time(detection.time_ns, "+0000"),
            detection.priority.falco_name(),
            detection.output
        ),
        "priority": detection.priority.falco_name(),
        "rule": detection.rule,
        "source": detection.source,
        "tags": detection.tags,
        "time": falco_time(detection.time_ns, "Z"),
        "output_fields": Value::Object(fields),
    })
}

/// The detection as one line of Falco JSON.
pub fn to_falco_json_line(detection: &Detection) -> String {
    to_falco_json(detection).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use palisade_proto::v1::Priority;

    use super::*;

    #[test]
    fn the_shape_matches_falcos_own_output() {
        let sample = std::fs::read_to_string(palisade_testkit::corpus_path(
            "runtime/falco-output/single_rule_with_cat_write.json",
        ))
        .expect("corpus");
        let falco: Value =
            serde_json::from_str(sample.lines().next().expect("a line")).expect("json");
        let detection = Detection {
            id: "abc".into(),
            rule: "open_from_cat".into(),
            description: String::new(),
            priority: Priority::Warning,
            output: "An open was seen (command=cat /dev/null)".into(),
            output_fields: [("proc.cmdline".to_string(), "cat /dev/null".to_string())]
                .into_iter()
                .collect(),
            tags: vec!["filesystem".into(), "process".into(), "testing".into()],
            source: "syscall".into(),
            time_ns: 1_470_327_477_881_781_397,
            hostname: "test-falco-hostname".into(),
            workload: "host".into(),
            namespace: None,
            pod_name: None,
            pod_uid: None,
            pod_labels: BTreeMap::new(),
            image: String::new(),
            container_name: String::new(),
            count: 1,
            first_time_ns: 0,
            last_time_ns: 0,
        };
        let ours = to_falco_json(&detection);
        let keys = |value: &Value| -> Vec<String> {
            let mut keys: Vec<String> =
                value.as_object().expect("object").keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(&ours), keys(&falco));
        for key in [
            "hostname", "output", "priority", "rule", "source", "tags", "time",
        ] {
            assert_eq!(ours[key], falco[key], "{key}");
        }
        assert_eq!(
            ours["output_fields"]["proc.cmdline"],
            falco["output_fields"]["proc.cmdline"]
        );
    }
}
