//! Where alerts go. The main line implements [`AlertSink`] to write alerts to the durable log;
//! a sink returns only once the alerts are durable, so ingestion can acknowledge after it.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use palisade_proto::v1;

use crate::error::AuditError;

/// A boxed future returned by sinks.
pub type SinkFuture<'sink> = Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'sink>>;

/// Receives alerts. `publish` resolves once the alerts are stored durably; an error means none
/// of them may be considered stored. Alerts carry stable ids, so publishing twice is harmless.
pub trait AlertSink: Send + Sync {
    /// Stores a batch of alerts.
    fn publish(&self, alerts: Vec<v1::Alert>) -> SinkFuture<'_>;
}

/// Keeps published alerts in memory (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    alerts: Arc<Mutex<Vec<v1::Alert>>>,
}

impl MemorySink {
    /// Alerts published so far.
    pub fn alerts(&self) -> Vec<v1::Alert> {
        self.alerts
            .lock()
            .map(|alerts| alerts.clone())
            .unwrap_or_default()
    }
}

impl AlertSink for MemorySink {
    fn publish(&self, alerts: Vec<v1::Alert>) -> SinkFuture<'_> {
        Box::pin(async move {
            self.alerts
                .lock()
                .map_err(|_| AuditError::Sink("memory sink poisoned".into()))?
                .extend(alerts);
            Ok(())
        })
    }
}

/// Writes alerts as JSON lines of the `palisade.v1.Alert` fields to a writer and flushes it.
pub struct JsonLinesSink<W: Write + Send> {
    writer: Mutex<W>,
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// A sink over `writer`.
    pub fn new(writer: W) -> Self {
        Self {
            writer: Mutex::new(writer),
        }
    }
}

impl<W: Write + Send> AlertSink for JsonLinesSink<W> {
    fn publish(&self, alerts: Vec<v1::Alert>) -> SinkFuture<'_> {
        let result = (|| {
            let mut writer = self
                .writer
                .lock()
                .map_err(|_| AuditError::Sink("writer poisoned".into()))?;
            for alert in &alerts {
                let line = serde_json::json!({
                    "id": alert.id, "rule": alert.rule, "priority": alert.priority, "source": alert.source,
                    "output": alert.output, "tags": alert.tags, "cluster_id": alert.cluster_id,
                    "hostname": alert.hostname, "output_fields": alert.output_fields,
                });
                writeln!(writer, "{line}")?;
            }
            writer.flush()?;
            Ok(())
        })();
        Box::pin(async move { result })
    }
}
