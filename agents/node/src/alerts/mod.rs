//! From rule matches to alerts: the detection model, scoping to namespaces / pod labels /
//! nodes, aggregation of repeats and rate limits that always report what they held back,
//! Falco's JSON output, and conversion to `palisade.v1.Alert` with stable ids.

pub mod convert;
pub mod falco_json;
pub mod limiter;
pub mod scope;

use std::collections::BTreeMap;

use palisade_proto::v1::Priority;
use sha2::{Digest, Sha256};

use crate::event::Event;

/// A rule that fired on one event, with everything an alert needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Stable id, derived from the node, the event and the rule.
    pub id: String,
    /// Rule name.
    pub rule: String,
    /// Rule description.
    pub description: String,
    /// Priority.
    pub priority: Priority,
    /// Rendered output.
    pub output: String,
    /// Output template fields, by Falco field name.
    pub output_fields: BTreeMap<String, String>,
    /// Rule tags.
    pub tags: Vec<String>,
    /// Event source ("syscall").
    pub source: String,
    /// Event time, ns since the epoch.
    pub time_ns: u64,
    /// Node name.
    pub hostname: String,
    /// Workload the event belongs to: container id or "host".
    pub workload: String,
    /// Kubernetes namespace, when in a pod.
    pub namespace: Option<String>,
    /// Pod name, when in a pod.
    pub pod_name: Option<String>,
    /// Pod uid, when in a pod.
    pub pod_uid: Option<String>,
    /// Pod labels.
    pub pod_labels: BTreeMap<String, String>,
    /// Container image.
    pub image: String,
    /// Container name.
    pub container_name: String,
    /// Repeats aggregated into this detection (1 for a single event).
    pub count: u64,
    /// First time of the aggregated repeats (ns since the epoch).
    pub first_time_ns: u64,
    /// Last time of the aggregated repeats.
    pub last_time_ns: u64,
}

/// Stable id of a detection: the same node, event and rule always give the same id, so a
/// detection re-sent after a crash is stored once.
pub fn detection_id(hostname: &str, rule: &str, event: &Event) -> String {
    let mut hasher = Sha256::new();
    hasher.update(hostname.as_bytes());
    hasher.update([0]);
    hasher.update(rule.as_bytes());
    hasher.update([0]);
    hasher.update(event.time_ns.to_le_bytes());
    hasher.update(event.tid.to_le_bytes());
    hasher.update(event.process.pid.to_le_bytes());
    hasher.update(event.evt_type.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

impl Detection {
    /// A detection of `rule` on `event`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hostname: &str,
        event: &Event,
        rule: &str,
        description: &str,
        priority: Priority,
        output: String,
        output_fields: BTreeMap<String, String>,
        tags: Vec<String>,
    ) -> Self {
        let container = &event.container;
        let pod = container.pod.as_ref();
        Self {
            id: detection_id(hostname, rule, event),
            rule: rule.to_string(),
            description: description.to_string(),
            priority,
            output,
            output_fields,
            tags,
            source: "syscall".to_string(),
            time_ns: event.time_ns,
            hostname: hostname.to_string(),
            workload: container.id.clone(),
            namespace: pod.map(|pod| pod.namespace.clone()),
            pod_name: pod.map(|pod| pod.name.clone()),
            pod_uid: pod.map(|pod| pod.uid.clone()),
            pod_labels: pod.map(|pod| pod.labels.clone()).unwrap_or_default(),
            image: container.image.clone(),
            container_name: container.name.clone(),
            count: 1,
            first_time_ns: event.time_ns,
            last_time_ns: event.time_ns,
        }
    }
}

/// Fields that differ between repeats of the same behaviour; ignored when deciding
/// whether two detections are repeats.
const VOLATILE_FIELDS: &[&str] = &[
    "evt.time",
    "evt.rawtime",
    "evt.num",
    "proc.pid",
    "proc.ppid",
    "proc.vpid",
    "thread.tid",
    "fd.num",
    "proc.duration",
    "proc.ppid.duration",
    "fd.cport",
    "fd.lport",
    "evt.args",
    "evt.arg.res",
    "evt.rawres",
    "proc.apid",
];

/// Key under which repeats aggregate: rule, workload, and the non-volatile output fields.
pub fn aggregation_key(detection: &Detection) -> String {
    let mut hasher = Sha256::new();
    hasher.update(detection.rule.as_bytes());
    hasher.update([0]);
    hasher.update(detection.workload.as_bytes());
    for (name, value) in &detection.output_fields {
        if VOLATILE_FIELDS.contains(&name.as_str()) {
            continue;
        }
        // a connection's client end has an ephemeral port: keep the server end only
        let stable_value = match value.split_once("->") {
            Some((_, server)) if name == "fd.name" => server,
            _ => value.as_str(),
        };
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([1]);
        hasher.update(stable_value.as_bytes());
    }
    hex::encode(&hasher.finalize()[..12])
}
