//! The client side of the agent stream (docs/specs/agent-stream.md), shared by every kind of
//! agent: the node agent and the audit watcher write their alerts to a [`spool::Spool`] and
//! run [`stream::run`], which delivers them to the gateway and releases them once acked.

pub mod error;
pub mod spool;
pub mod stream;

pub use error::LinkError;
pub use spool::Spool;
pub use stream::{AgentStatus, ConfigApplier, StreamConfig};
