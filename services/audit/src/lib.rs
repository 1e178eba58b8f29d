//! Palisade's control-plane log watcher: Kubernetes audit events from the webhook backend, log
//! files and cloud exports, decoded into one [`AuditEvent`], evaluated by Falco-compatible rules
//! through the `k8s_audit` field source, plus per-identity anomaly detection.

pub mod alert;
pub mod decode;
pub mod error;
pub mod event;
pub mod fields;
pub mod gke;
pub mod pack;
pub mod yaml_json;

pub use decode::{DecodeLimits, DecodeStats, Decoded, DocumentError, Skip, SkipReason, decode_any, decode_document, decode_lines};
pub use event::{AuditEvent, Envelope};
pub use fields::{K8sAuditSource, SOURCE_NAME};
pub use alert::{AuditAlert, stable_alert_id};
pub use error::AuditError;
pub use pack::builtin_rules;
