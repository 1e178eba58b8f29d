//! The body of a webhook delivery: the alert in Falco's JSON shape (what `http_output` and
//! falcosidekick send), with its stable id as `uuid` and its tenant and cluster.

use palisade_core::falco::{FalcoAlert, alert_to_falco_json};
use palisade_proto::v1::Alert;
use serde::Serialize;

/// A Falco alert with where it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct AlertDocument {
    /// Falco's fields; `uuid` is the alert's stable id, the same on every retry.
    #[serde(flatten)]
    pub falco: FalcoAlert,
    /// Tenant owning the alert.
    pub tenant: String,
    /// Cluster the alert comes from.
    pub cluster: String,
}

/// The alert as a document receivers of Falco alerts understand.
pub fn alert_document(alert: &Alert) -> AlertDocument {
    // The core crate owns the Falco mapping; reading its line back keeps one definition of it.
    let mut falco: FalcoAlert =
        serde_json::from_str(&alert_to_falco_json(alert)).unwrap_or_else(|_| FalcoAlert {
            uuid: None,
            hostname: alert.hostname.clone(),
            output: alert.output.clone(),
            priority: None,
            rule: Some(alert.rule.clone()),
            source: alert.source.clone(),
            tags: alert.tags.clone(),
            time: None,
            output_fields: Default::default(),
        });
    falco.uuid = Some(alert.id.clone());
    AlertDocument {
        falco,
        tenant: alert.tenant_id.clone(),
        cluster: alert.cluster_id.clone(),
    }
}

/// The JSON body POSTed for one alert.
pub fn webhook_body(alert: &Alert) -> Vec<u8> {
    // A struct of strings and maps always serializes.
    serde_json::to_vec(&alert_document(alert)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use palisade_core::falco::alert_from_falco_json;

    use super::*;

    #[test]
    fn the_body_reads_back_as_the_same_falco_alert_with_id_tenant_and_cluster() {
        let line = r#"{"hostname":"node-1","output":"Shell spawned (user=root)","priority":"Critical","rule":"Terminal shell in container","source":"syscall","tags":["container","T1059"],"time":"2026-11-27T02:47:52.881781397Z","output_fields":{"proc.name":"bash","k8s.pod.name":"web-1","container.name":null}}"#;
        let mut alert = alert_from_falco_json(line).expect("valid");
        alert.id = "a1".into();
        alert.tenant_id = "acme".into();
        alert.cluster_id = "prod-eu".into();
        let body = webhook_body(&alert);
        let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(value["uuid"], "a1");
        assert_eq!(value["tenant"], "acme");
        assert_eq!(value["cluster"], "prod-eu");
        assert_eq!(value["priority"], "Critical");
        assert_eq!(
            value["output_fields"]["container.name"],
            serde_json::Value::Null
        );
        let back =
            alert_from_falco_json(std::str::from_utf8(&body).expect("utf-8")).expect("falco");
        assert_eq!(back.rule, alert.rule);
        assert_eq!(back.time, alert.time);
        assert_eq!(back.output_fields, alert.output_fields);
    }
}
