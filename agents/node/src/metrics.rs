//! The agent's counters: every point where an event or alert can be lost or held back is
//! counted here, exported to Prometheus and sent to the server with every heartbeat.

use std::sync::atomic::{AtomicU64, Ordering};

use palisade_proto::v1::DropCounters;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters and gauges of one agent.
#[derive(Debug, Default)]
pub struct AgentMetrics {
    /// Records read from the sensor.
    pub records: Counter,
    /// Events evaluated by the rules.
    pub events: Counter,
    /// Records the kernel could not put in the ring buffer (set from the sensor's counter).
    pub kernel_ringbuf_full: Gauge,
    /// Records that did not decode.
    pub decode_errors: Counter,
    /// Events released without container metadata after waiting for it.
    pub attribution_timeouts: Counter,
    /// Detections held back by aggregation or rate limits (reported in aggregates).
    pub suppressed: Counter,
    /// Alerts evicted from a full spool.
    pub spool_evicted: Counter,
    /// Alerts produced.
    pub alerts: Counter,
    /// Alerts acknowledged by the server.
    pub alerts_acked: Counter,
    /// Alerts held in the spool.
    pub spool_alerts: Gauge,
    /// Bytes held in the spool.
    pub spool_bytes: Gauge,
    /// Highest sequence number durable in the spool.
    pub spool_durable_seq: Gauge,
    /// Connections to the server established.
    pub stream_connects: Counter,
    /// Events dropped because the rule queue was full (the pipeline blocks instead; stays 0).
    pub rules_queue_full: Counter,
    last_durable: AtomicU64,
}

impl AgentMetrics {
    /// Registers every metric under `palisade_agent_`.
    pub fn register(&self, registry: &mut Registry) {
        let agent = registry.sub_registry_with_prefix("palisade_agent");
        agent.register(
            "records",
            "Records read from the sensor",
            self.records.clone(),
        );
        agent.register(
            "events",
            "Events evaluated by the rules",
            self.events.clone(),
        );
        agent.register(
            "kernel_ringbuf_full",
            "Records lost because the kernel ring buffer was full",
            self.kernel_ringbuf_full.clone(),
        );
        agent.register(
            "decode_errors",
            "Records that did not decode",
            self.decode_errors.clone(),
        );
        agent.register(
            "attribution_timeouts",
            "Events released without container metadata after waiting for it",
            self.attribution_timeouts.clone(),
        );
        agent.register(
            "suppressed",
            "Detections held back by aggregation or rate limits, reported in aggregates",
            self.suppressed.clone(),
        );
        agent.register(
            "spool_evicted",
            "Alerts evicted from a full spool (lost)",
            self.spool_evicted.clone(),
        );
        agent.register("alerts", "Alerts produced", self.alerts.clone());
        agent.register(
            "alerts_acked",
            "Alerts acknowledged by the server",
            self.alerts_acked.clone(),
        );
        agent.register(
            "spool_alerts",
            "Alerts held in the spool",
            self.spool_alerts.clone(),
        );
        agent.register(
            "spool_bytes",
            "Bytes held in the spool",
            self.spool_bytes.clone(),
        );
        agent.register(
            "spool_durable_seq",
            "Highest alert sequence number durable on disk",
            self.spool_durable_seq.clone(),
        );
        agent.register(
            "stream_connects",
            "Connections to the server",
            self.stream_connects.clone(),
        );
        agent.register(
            "rules_queue_full",
            "Events dropped because the rule queue was full",
            self.rules_queue_full.clone(),
        );
    }

    /// The drop counters of the agent stream protocol.
    pub fn drop_counters(&self) -> DropCounters {
        DropCounters {
            kernel_ringbuf_full: u64::try_from(self.kernel_ringbuf_full.get()).unwrap_or(0),
            decode_errors: self.decode_errors.get(),
            rules_queue_full: self.rules_queue_full.get(),
            spool_evicted: self.spool_evicted.get(),
            suppressed: self.suppressed.get(),
            malformed_events: 0,
        }
    }

    /// Records the highest durable sequence number.
    pub fn set_durable(&self, seq: u64) {
        self.last_durable.store(seq, Ordering::Relaxed);
        self.spool_durable_seq
            .set(i64::try_from(seq).unwrap_or(i64::MAX));
    }

    /// Highest durable sequence number.
    pub fn durable(&self) -> u64 {
        self.last_durable.load(Ordering::Relaxed)
    }
}

impl palisade_agent_link::AgentStatus for AgentMetrics {
    fn drop_counters(&self) -> DropCounters {
        AgentMetrics::drop_counters(self)
    }

    fn durable_seq(&self) -> u64 {
        self.durable()
    }

    fn connected(&self) {
        self.stream_connects.inc();
    }

    fn acked(&self, alerts: u64, spooled: usize) {
        self.alerts_acked.inc_by(alerts);
        self.spool_alerts
            .set(i64::try_from(spooled).unwrap_or(i64::MAX));
    }
}
