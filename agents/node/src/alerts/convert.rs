//! Detections as `palisade.v1.Alert`: Falco's fields, MITRE from the rule tags, the pod,
//! container and image as entities, and the stable id.

use palisade_proto::v1::{Alert, EntityRef, Mitre};
use palisade_rules::mitre_from_tags;
use prost_types::Timestamp;

use super::Detection;

fn timestamp(ns: u64) -> Timestamp {
    Timestamp {
        seconds: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
        nanos: i32::try_from(ns % 1_000_000_000).unwrap_or(0),
    }
}

/// The alert for a detection.
pub fn to_alert(detection: &Detection) -> Alert {
    let mitre = mitre_from_tags(&detection.tags);
    let mut entities = Vec::new();
    if detection.workload != "host" {
        entities.push(EntityRef {
            kind: "container".into(),
            name: detection.container_name.clone(),
            namespace: detection.namespace.clone().unwrap_or_default(),
            cluster_id: String::new(),
            uid: detection.workload.clone(),
        });
        if !detection.image.is_empty() {
            entities.push(EntityRef {
                kind: "image".into(),
                name: detection.image.clone(),
                ..EntityRef::default()
            });
        }
    }
    if let Some(pod_name) = &detection.pod_name {
        entities.push(EntityRef {
            kind: "pod".into(),
            name: pod_name.clone(),
            namespace: detection.namespace.clone().unwrap_or_default(),
            cluster_id: String::new(),
            uid: detection.pod_uid.clone().unwrap_or_default(),
        });
    }
    entities.push(EntityRef {
        kind: "node".into(),
        name: detection.hostname.clone(),
        ..EntityRef::default()
    });
    let aggregated = detection.count > 1;
    Alert {
        id: detection.id.clone(),
        tenant_id: String::new(),
        cluster_id: String::new(),
        source: detection.source.clone(),
        rule: detection.rule.clone(),
        priority: detection.priority as i32,
        output: detection.output.clone(),
        output_fields: detection
            .output_fields
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        tags: detection.tags.clone(),
        mitre: Some(Mitre {
            technique_ids: mitre.technique_ids,
            tactics: mitre.tactics,
        }),
        entities,
        time: Some(timestamp(detection.time_ns)),
        hostname: detection.hostname.clone(),
        received_time: None,
        count: detection.count,
        first_time: aggregated.then(|| timestamp(detection.first_time_ns)),
        last_time: aggregated.then(|| timestamp(detection.last_time_ns)),
        description: detection.description.clone(),
    }
}
