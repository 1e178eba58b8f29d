//! Palisade's control-plane log watcher: Kubernetes audit events from the webhook backend, log
//! files and cloud exports, decoded into one [`AuditEvent`], evaluated by Falco-compatible rules
//! through the `k8s_audit` field source, plus per-identity anomaly detection.

pub mod alert;
pub mod anomaly;
pub mod decode;
pub mod error;
pub mod event;
pub mod fields;
pub mod fuzzing;
pub mod gke;
pub mod input;
pub mod pack;
pub mod pipeline;
pub mod replay;
pub mod rules_test;
pub mod sink;
pub mod tail;
pub mod watch;
pub mod webhook;
pub mod yaml_json;

pub use alert::{AuditAlert, stable_alert_id};
pub use anomaly::{AnomalyConfig, AnomalyDetector};
pub use decode::{
    DecodeLimits, DecodeStats, Decoded, DocumentError, Skip, SkipReason, decode_any,
    decode_document, decode_lines,
};
pub use error::AuditError;
pub use event::{AuditEvent, Envelope};
pub use fields::{K8sAuditSource, SOURCE_NAME};
pub use pack::builtin_rules;
pub use pipeline::AuditPipeline;
pub use replay::{ReplayArgs, ReplayFormat, ReplaySummary, replay};
pub use rules_test::{AuditRulesTestArgs, rules_test};
pub use sink::{AlertSink, JsonLinesSink, MemorySink};
pub use tail::{FileTailer, OffsetStore, TailConfig, TailStats};
pub use watch::{Watch, WatchArgs, start_watch};
pub use webhook::{WebhookConfig, WebhookStats, process_batches, webhook_router};
