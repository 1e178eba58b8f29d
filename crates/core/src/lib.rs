//! What every Palisade component shares: ids and tenancy, configuration, the data directory,
//! typed storage over sled, the durable log, authentication of callers, the bridge between
//! actix actors and gRPC, graceful shutdown and telemetry.

pub mod agent_identity;
pub mod auth;
pub mod bridge;
pub mod config;
pub mod data_dir;
pub mod error;
pub mod falco;
pub mod ids;
pub mod log;
pub mod pki;
pub mod shutdown;
pub mod storage;
pub mod telemetry;

pub use error::{CoreError, CoreResult};
