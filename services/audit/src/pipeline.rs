//! Evaluation of decoded audit events: rules (reloadable) plus anomaly detection, producing
//! alerts.

use std::sync::{Arc, Mutex};

use palisade_rules::ReloadableRules;

use crate::alert::AuditAlert;
use crate::anomaly::AnomalyDetector;
use crate::error::AuditError;
use crate::event::AuditEvent;
use crate::fields::K8sAuditSource;

/// Rules and anomaly detection for audit events.
pub struct AuditPipeline {
    rules: Arc<ReloadableRules<K8sAuditSource>>,
    anomaly: Option<Mutex<AnomalyDetector>>,
    hostname: String,
}

impl AuditPipeline {
    /// A pipeline over reloadable rules, with optional anomaly detection.
    pub fn new(
        rules: Arc<ReloadableRules<K8sAuditSource>>,
        anomaly: Option<AnomalyDetector>,
        hostname: impl Into<String>,
    ) -> Self {
        Self {
            rules,
            anomaly: anomaly.map(Mutex::new),
            hostname: hostname.into(),
        }
    }

    /// The rules, for reloading.
    pub fn rules(&self) -> &Arc<ReloadableRules<K8sAuditSource>> {
        &self.rules
    }

    /// Alerts raised by one event.
    pub fn process(&self, event: &AuditEvent) -> Vec<AuditAlert> {
        let engine = self.rules.current();
        let mut alerts: Vec<AuditAlert> = engine
            .detect(event)
            .iter()
            .map(|detection| AuditAlert::from_detection(detection, event, &self.hostname))
            .collect();
        if let Some(anomaly) = &self.anomaly {
            let mut detector = anomaly
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(novelty) = detector.observe(event) {
                alerts.push(detector.alert(&novelty, event, &self.hostname));
            }
        }
        alerts
    }

    /// Makes learned baselines durable.
    pub fn flush(&self) -> Result<(), AuditError> {
        if let Some(anomaly) = &self.anomaly {
            anomaly
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .flush()?;
        }
        Ok(())
    }
}

/// The host name alerts carry: $HOSTNAME, else /etc/hostname, else "palisade".
pub fn local_hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|name| name.trim().to_string())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "palisade".to_string())
}
