//! Metrics of the gateway.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;

pub(crate) struct GatewayMetrics {
    pub alerts_accepted: Counter,
    pub alerts_duplicate: Counter,
    pub batches_rejected: Counter,
}

pub(crate) static METRICS: LazyLock<GatewayMetrics> = LazyLock::new(|| {
    let metrics = GatewayMetrics {
        alerts_accepted: Counter::default(),
        alerts_duplicate: Counter::default(),
        batches_rejected: Counter::default(),
    };
    palisade_core::telemetry::register(|registry| {
        registry.register(
            "gateway_alerts_accepted",
            "Alerts stored durably in the log",
            metrics.alerts_accepted.clone(),
        );
        registry.register(
            "gateway_alerts_duplicate",
            "Alerts received again after they were stored (resends), not stored twice",
            metrics.alerts_duplicate.clone(),
        );
        registry.register(
            "gateway_batches_rejected",
            "Alert batches refused as a whole (too large or invalid)",
            metrics.batches_rejected.clone(),
        );
    });
    metrics
});
