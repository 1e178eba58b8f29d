//! Palisade's alert notifications: every configured target (`[[notify.targets]]`) reads the
//! durable log's alert topic with its own position and sends its tenant's alerts, filtered by
//! priority, rules and tags, to a signed webhook, a Slack incoming webhook, a syslog receiver
//! (RFC 5424 over UDP or TCP) or Splunk's HTTP Event Collector.
//!
//! Delivery is at-least-once: a target's position moves only past alerts delivered, filtered
//! out or recorded as dead letters, and every delivery carries the alert's stable id so a
//! receiver can drop repeats. Transient failures (connection errors, timeouts, 408, 429, 5xx)
//! are retried with exponential backoff and jitter, honouring Retry-After; after the target's
//! `max_attempts`, or at once for a permanent refusal, the alert becomes a dead letter and the
//! target moves on.
//!
//! ```no_run
//! # async fn example(config: palisade_core::config::Config,
//! #     store: palisade_core::storage::Store, alerts: palisade_core::log::Topic) -> Result<(), palisade_notify::NotifyError> {
//! let shutdown = palisade_core::shutdown::Shutdown::new();
//! let notifier = palisade_notify::Notifier::start(&config.notify, &store, &alerts, &shutdown)?;
//! let monitor = notifier.monitor(); // monitor.component_status() for the status page
//! shutdown.trigger();
//! notifier.stopped().await?;
//! # Ok(()) }
//! ```

pub mod dead_letter;
pub mod error;
pub mod filter;
mod grpc;
mod notifier;
pub mod retry;
mod secret;
pub mod signature;
mod sink;
pub mod slack;
pub mod splunk;
mod status;
pub mod syslog;
mod syslog_sink;
pub mod webhook;
mod worker;

pub use dead_letter::{DeadLetter, DeadLetters};
pub use error::{NotifyError, Result};
pub use grpc::NotifyGrpc;
pub use notifier::{Notifier, NotifierHandle, NotifyMonitor, Resent};
pub use status::{NotifyStatus, TargetStatus};
pub use worker::consumer_name;
