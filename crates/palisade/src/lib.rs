//! The `palisade` platform as a library: what `palisade up` runs, for benchmarks and tests that
//! start it in process.

pub mod agent_listener;
pub mod listener_tls;
pub mod peers;
pub mod platform;
