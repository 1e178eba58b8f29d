//! The agent's threads: the sensor thread (read, decode, apply to state, hold events whose
//! container is not known yet), rule workers (one per core, sharing the compiled rules), and
//! the alert thread (scope, aggregate, rate-limit, print, spool). Channels between them are
//! bounded and senders block: a slow stage slows the sensor, and the kernel ring buffer
//! absorbs the burst and counts what it cannot hold, so nothing is lost without a count.

// The pipeline's threads are plain OS threads, not tokio tasks: std's clock.
#![allow(clippy::disallowed_types)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender, bounded};
use palisade_proto::v1::Priority;
use tokio::sync::Notify;
use tracing::{error, warn};

use crate::alerts::Detection;
use crate::alerts::convert::to_alert;
use crate::alerts::falco_json::to_falco_json_line;
use crate::alerts::limiter::Limiter;
use crate::alerts::scope::Scopes;
use crate::batches::{BatchReceiver, BatchSender, batch_channel};
use crate::engine::Evaluator;
use crate::event::Event;
use crate::hold::HoldQueue;
use crate::metrics::AgentMetrics;
use crate::record::Record;
use crate::sensor::RecordSource;
use crate::sensor::replay::Recorder;
use crate::spool::Spool;
use crate::state::State;

/// Events per batch handed to the rule workers.
const EVENT_BATCH: usize = 512;
/// Batches queued between stages.
const QUEUE_BATCHES: usize = 256;

/// Where alerts go.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Print Falco JSON lines on stdout.
    pub stdout: bool,
    /// Durable spool (for the agent stream).
    pub spool: Option<Arc<Spool>>,
    /// Woken after each durable append.
    pub appended: Arc<Notify>,
    /// Status file rewritten after each flush (JSON counters), for operators and tests.
    pub status_file: Option<PathBuf>,
}

/// The sensor stage.
pub struct SensorStage {
    /// Record source.
    pub source: Box<dyn RecordSource>,
    /// Process and container state.
    pub state: State,
    /// How long events wait for container metadata.
    pub attribution_wait: Duration,
    /// Optional recorder of every record.
    pub recorder: Option<Recorder<std::io::BufWriter<std::fs::File>>>,
}

/// Starts the sensor thread. It stops when `shutdown` is set or the source finishes; the
/// event channel closes when it stops.
pub fn spawn_sensor(
    mut stage: SensorStage,
    events: BatchSender,
    metrics: Arc<AgentMetrics>,
    shutdown: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("palisade-sensor".into())
        .spawn(move || {
            let mut hold = HoldQueue::new();
            let mut batch: Vec<Event> = events.empty_batch(EVENT_BATCH);
            let mut released = Vec::new();
            while !shutdown.load(Ordering::Relaxed) && !stage.source.is_finished() {
                let state = &mut stage.state;
                let recorder = &mut stage.recorder;
                let now = Instant::now();
                let deadline = now + stage.attribution_wait;
                let result = stage
                    .source
                    .next_batch(Duration::from_millis(100), &mut |bytes| {
                        metrics.records.inc();
                        if let Some(recorder) = recorder.as_mut()
                            && let Err(error) = recorder.write(bytes)
                        {
                            warn!(%error, "recording stopped");
                        }
                        let record = match Record::decode(bytes) {
                            Ok(record) => record,
                            Err(error) => {
                                metrics.decode_errors.inc();
                                warn!(%error, code = error.code(), "undecodable record");
                                return;
                            }
                        };
                        let Some(enriched) = state.apply(&record) else {
                            return;
                        };
                        if enriched.container_pending
                            || hold.is_holding(&enriched.event.container.full_id)
                        {
                            hold.hold(enriched.event, deadline);
                        } else {
                            batch.push(enriched.event);
                        }
                    });
                if let Err(error) = result {
                    error!(%error, "sensor failed");
                    break;
                }
                let timeouts_before = hold.timeouts;
                hold.release(state.containers(), Instant::now(), &mut released);
                metrics
                    .attribution_timeouts
                    .inc_by(hold.timeouts - timeouts_before);
                batch.append(&mut released);
                let stats = stage.source.stats();
                metrics
                    .kernel_ringbuf_full
                    .set(i64::try_from(stats.ringbuf_full + stats.oversize).unwrap_or(i64::MAX));
                if !batch.is_empty() {
                    let full = std::mem::replace(&mut batch, events.empty_batch(EVENT_BATCH));
                    if events.send(full).is_err() {
                        break;
                    }
                }
            }
            hold.drain(&mut batch);
            if !batch.is_empty() {
                let _ = events.send(batch);
            }
            if let Some(recorder) = stage.recorder.take()
                && let Err(error) = recorder.finish()
            {
                warn!(%error, "finishing the recording");
            }
        })
}

/// Starts `workers` rule workers. They stop when the event channel closes. Evaluated batches
/// go back to the sensor thread, which drops their events (see [`crate::batches`]).
pub fn spawn_workers(
    workers: usize,
    rules: Arc<ArcSwap<Evaluator>>,
    events: BatchReceiver,
    detections: Sender<Vec<Detection>>,
    metrics: Arc<AgentMetrics>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..workers.max(1))
        .map(|index| {
            let rules = Arc::clone(&rules);
            let events = events.clone();
            let detections = detections.clone();
            let metrics = Arc::clone(&metrics);
            std::thread::Builder::new()
                .name(format!("palisade-rules-{index}"))
                .spawn(move || {
                    let mut found = Vec::new();
                    let mut scratch = palisade_rules::EvalScratch::new();
                    while let Some(batch) = events.recv() {
                        metrics.events.inc_by(batch.len() as u64);
                        // one rule set per batch: a pushed set replaces it between batches
                        let evaluator = rules.load();
                        evaluator.evaluate_batch(&batch, &mut scratch, &mut found);
                        events.give_back(batch);
                        if !found.is_empty() && detections.send(std::mem::take(&mut found)).is_err()
                        {
                            return;
                        }
                    }
                })
        })
        .collect()
}

/// The alert stage's state.
pub struct AlertStage {
    /// Rule scopes.
    pub scopes: Scopes,
    /// Aggregation and rate limits.
    pub limiter: Limiter,
    /// Outputs.
    pub outputs: Outputs,
    /// Node name, for the agent's own alerts.
    pub hostname: String,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl AlertStage {
    fn emit(&mut self, detection: &Detection, metrics: &AgentMetrics) -> Vec<Detection> {
        metrics.alerts.inc();
        if self.outputs.stdout {
            let line = to_falco_json_line(detection);
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{line}")
                .and_then(|()| stdout.flush())
                .is_err()
            {
                warn!("stdout closed; alerts still go to the spool");
            }
        }
        let mut follow_up = Vec::new();
        if let Some(spool) = &self.outputs.spool {
            match spool.append(&to_alert(detection)) {
                Ok(appended) if appended.evicted > 0 => {
                    metrics.spool_evicted.inc_by(appended.evicted);
                    error!(
                        evicted = appended.evicted,
                        total = spool.evicted(),
                        "spool full, dropped the oldest alerts"
                    );
                    follow_up.push(self.overflow_detection(
                        appended.evicted,
                        spool.evicted(),
                        appended.seq,
                    ));
                }
                Ok(_) => {}
                Err(spool_error) => error!(error = %spool_error, "alert not spooled"),
            }
        }
        follow_up
    }

    fn overflow_detection(&self, evicted: u64, total: u64, seq: u64) -> Detection {
        let time_ns = now_ns();
        let id = {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            hasher.update(self.hostname.as_bytes());
            hasher.update(b"spool-overflow");
            hasher.update(seq.to_le_bytes());
            hex::encode(&hasher.finalize()[..16])
        };
        Detection {
            id,
            rule: "Palisade agent spool overflow".into(),
            description: "The agent's spool reached its size bound and evicted its oldest alerts."
                .into(),
            priority: Priority::Critical,
            output: format!(
                "agent spool full: evicted the {evicted} oldest unacknowledged alerts ({total} since the spool was created)"
            ),
            output_fields: [
                ("palisade.spool.evicted".to_string(), evicted.to_string()),
                (
                    "palisade.spool.evicted_total".to_string(),
                    total.to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            tags: vec!["palisade".into(), "agent_health".into()],
            source: "syscall".into(),
            time_ns,
            hostname: self.hostname.clone(),
            workload: "host".into(),
            namespace: None,
            pod_name: None,
            pod_uid: None,
            pod_labels: Default::default(),
            image: String::new(),
            container_name: String::new(),
            count: evicted,
            first_time_ns: time_ns,
            last_time_ns: time_ns,
        }
    }

    fn flush(&mut self, metrics: &AgentMetrics) {
        if let Some(spool) = &self.outputs.spool {
            match spool.flush() {
                Ok(()) => {
                    metrics.set_durable(spool.next_seq().saturating_sub(1));
                    metrics
                        .spool_alerts
                        .set(i64::try_from(spool.len()).unwrap_or(i64::MAX));
                    metrics
                        .spool_bytes
                        .set(i64::try_from(spool.bytes()).unwrap_or(i64::MAX));
                    self.outputs.appended.notify_one();
                }
                Err(spool_error) => error!(error = %spool_error, "spool flush failed"),
            }
        }
        if let Some(path) = &self.outputs.status_file {
            let status = serde_json::json!({
                "alerts": metrics.alerts.get(),
                "durable_seq": metrics.durable(),
                "acked": metrics.alerts_acked.get(),
                "events": metrics.events.get(),
                "records": metrics.records.get(),
                "suppressed": metrics.suppressed.get(),
                "drops": {
                    "kernel_ringbuf_full": metrics.kernel_ringbuf_full.get(),
                    "decode_errors": metrics.decode_errors.get(),
                    "spool_evicted": metrics.spool_evicted.get(),
                },
            });
            let temporary = path.with_extension("tmp");
            if std::fs::write(&temporary, status.to_string())
                .and_then(|()| std::fs::rename(&temporary, path))
                .is_err()
            {
                warn!(path = %path.display(), "status file not written");
            }
        }
    }

    fn offer_all(&mut self, detections: Vec<Detection>, metrics: &AgentMetrics) {
        for detection in detections {
            if !self.scopes.admits(&detection) {
                continue;
            }
            let before = self.limiter.suppressed_total;
            if let Some(out) = self.limiter.offer(detection) {
                let follow_up = self.emit(&out, metrics);
                for extra in follow_up {
                    self.emit(&extra, metrics);
                }
            }
            metrics
                .suppressed
                .inc_by(self.limiter.suppressed_total - before);
        }
    }

    fn emit_all(&mut self, detections: Vec<Detection>, metrics: &AgentMetrics) {
        for detection in detections {
            let follow_up = self.emit(&detection, metrics);
            for extra in follow_up {
                self.emit(&extra, metrics);
            }
        }
    }
}

/// Starts the alert thread. It stops, flushing aggregates, when the detection channel closes.
pub fn spawn_alerts(
    mut stage: AlertStage,
    detections: Receiver<Vec<Detection>>,
    metrics: Arc<AgentMetrics>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("palisade-alerts".into())
        .spawn(move || {
            let mut last_window_check = Instant::now();
            loop {
                match detections.recv_timeout(Duration::from_millis(200)) {
                    Ok(batch) => {
                        stage.offer_all(batch, &metrics);
                        // group every batch already waiting into one flush
                        while let Ok(more) = detections.try_recv() {
                            stage.offer_all(more, &metrics);
                        }
                        stage.flush(&metrics);
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
                if last_window_check.elapsed() >= Duration::from_secs(1) {
                    last_window_check = Instant::now();
                    let closed = stage.limiter.flush(now_ns());
                    if !closed.is_empty() {
                        stage.emit_all(closed, &metrics);
                    }
                    // also refreshes the status file when no alert is raised
                    stage.flush(&metrics);
                }
            }
            let remaining = stage.limiter.flush_all();
            stage.emit_all(remaining, &metrics);
            stage.flush(&metrics);
        })
}

/// The channel from the sensor thread to the rule workers (and back, for spent batches).
pub type EventChannel = (BatchSender, BatchReceiver);
/// The channel from the rule workers to the alert thread.
pub type DetectionChannel = (Sender<Vec<Detection>>, Receiver<Vec<Detection>>);

/// Bounded channels between the stages.
pub fn channels() -> (EventChannel, DetectionChannel) {
    (batch_channel(QUEUE_BATCHES), bounded(QUEUE_BATCHES))
}
