//! Palisade's gateway: the front door. It authenticates every call (the tenant comes from the
//! credential, never from the request), writes alerts durably into the log before
//! acknowledging them, answers administration and status calls, and serves the HTTP listener
//! (/metrics, /healthz).

pub mod admin;
pub mod agent_admin;
pub mod agent_config;
pub mod agents;
pub mod alerts;
pub mod auth;
pub mod console;
pub mod enrollment;
pub mod erasure;
pub mod error;
pub mod falco_webhook;
pub mod forward;
pub mod http;
pub mod ingest;
mod metrics;
pub mod rate;
pub mod registry;

pub use admin::{AdminGrpc, AskProbe, Probe, StatusProbe};
pub use agents::{AgentGrpc, AgentLimits};
pub use alerts::AlertGrpc;
pub use enrollment::{CertificateAuthenticate, EnrollmentGrpc, EnrollmentSettings};
pub use erasure::TenantEraser;
pub use error::GatewayError;
pub use ingest::{Ingest, PublishAlerts};
pub use registry::{AgentCounts, AgentRegistry};

/// Registers the gateway's metrics so /metrics lists them before the first event.
pub fn register_metrics() {
    std::sync::LazyLock::force(&metrics::METRICS);
}
