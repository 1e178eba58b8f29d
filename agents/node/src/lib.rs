//! Palisade's node agent: an eBPF sensor on BTF-typed tracepoints, a process table and
//! container/pod attribution, Falco-compatible rule evaluation, alert aggregation and rate
//! limiting that never drops silently, and delivery through a durable spool over the agent
//! stream.
//!
//! Data flow: sensor (ring buffer) -> record decode -> state (process table, cgroup ->
//! container -> pod) -> rules -> alert handling (scope, aggregate, rate-limit) -> outputs
//! (Falco JSON on stdout, spool -> agent stream).

pub mod agent;
pub mod alerts;
pub mod batches;
pub mod cgroup;
pub mod container;
pub mod decode;
pub mod engine;
pub mod error;
pub mod event;
pub mod fields;
pub mod hold;
pub mod metrics;
pub mod pipeline;
pub mod process;
pub mod record;
pub mod sensor;
pub mod state;
pub mod syscalls;
pub mod tetragon;

pub use agent::{AgentArgs, SensorChoice, run};
pub use error::{AgentError, RecordError};
/// The spool and stream client live in palisade-agent-link, shared with the audit watcher.
pub use palisade_agent_link::{spool, stream};
