//! Metrics of the gateway.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;

pub(crate) struct GatewayMetrics {
    pub alerts_accepted: Counter,
    pub alerts_duplicate: Counter,
    pub batches_rejected: Counter,
    pub agent_throttles: Counter,
    pub agent_batches_discarded: Counter,
    pub agents_dead: Counter,
}

pub(crate) static METRICS: LazyLock<GatewayMetrics> = LazyLock::new(|| {
    let metrics = GatewayMetrics {
        alerts_accepted: Counter::default(),
        alerts_duplicate: Counter::default(),
        batches_rejected: Counter::default(),
        agent_throttles: Counter::default(),
        agent_batches_discarded: Counter::default(),
        agents_dead: Counter::default(),
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
        registry.register(
            "gateway_agent_throttles",
            "Times an agent was told to wait (Throttle) because its tenant was over its alert rate",
            metrics.agent_throttles.clone(),
        );
        registry.register(
            "gateway_agent_batches_discarded",
            "Agent batches that arrived after a Throttle and were not read, to be resent by the agent",
            metrics.agent_batches_discarded.clone(),
        );
        registry.register(
            "gateway_agents_dead",
            "Agent streams closed after three missed heartbeat intervals",
            metrics.agents_dead.clone(),
        );
    });
    metrics
});
