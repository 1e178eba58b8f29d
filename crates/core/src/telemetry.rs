//! Logs (human or JSON, to stderr) and Prometheus metrics.
//!
//! Every crate registers its metric families in the process-wide [`registry`] once, when its
//! metrics are first used; the HTTP listener renders them at /metrics.

use std::sync::{Mutex, OnceLock};

use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global tracing subscriber; later calls do nothing.
pub fn init_tracing(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // An error means a subscriber is already installed (tests), which is fine.
    drop(result);
}

/// The process-wide metrics registry.
pub fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::with_prefix("palisade")))
}

/// Registers metrics with the process-wide registry.
pub fn register(register: impl FnOnce(&mut Registry)) {
    match registry().lock() {
        Ok(mut registry) => register(&mut registry),
        Err(poisoned) => register(&mut poisoned.into_inner()),
    }
}

/// The metrics in Prometheus' text exposition format.
pub fn render_metrics() -> String {
    let mut text = String::new();
    let registry = match registry().lock() {
        Ok(registry) => registry,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::error!(%error, "cannot encode metrics");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn registered_counters_are_rendered_with_the_prefix() {
        let counter: Counter = Counter::default();
        register(|registry| {
            registry.register(
                "telemetry_test_events",
                "Events seen by the telemetry test",
                counter.clone(),
            )
        });
        counter.inc_by(3);
        let text = render_metrics();
        assert!(
            text.contains("palisade_telemetry_test_events_total 3"),
            "{text}"
        );
    }
}
