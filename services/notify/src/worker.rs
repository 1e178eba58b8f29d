//! One target's consumer of the alert log.
//!
//! What must stay true:
//! - The target's log position (its consumer offset, `notify/<name>`) only moves past a record
//!   once that record was delivered, filtered out or recorded as a dead letter. A restart,
//!   even after a crash, resumes at the position and at worst delivers again what was
//!   delivered after it was last made durable: at-least-once, never a skipped alert.
//! - A dead letter is durable before the position moves past its alert.
//! - Memory is one read step of the log and one delivery batch, whatever the backlog.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use palisade_core::config::NotifyTarget;
use palisade_core::log::{ControlRecord, LogRecord, Topic};
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::{Store, TypedTree};
use palisade_proto::PriorityExt;
use palisade_proto::v1::{Alert, Priority};
use prost::Message;
use tracing::{info, warn};

use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::error::Result;
use crate::filter::AlertFilter;
use crate::retry::{Backoff, Failure, now_unix};
use crate::sink::Sink;
use crate::status::TargetCounters;
use crate::webhook::webhook_body;

/// Log records read per step.
const READ_STEP: usize = 256;
/// Meta key holding the log position the target started at.
const STARTED_KEY: &str = "started_at";

/// The log consumer name of a target.
pub fn consumer_name(target: &str) -> String {
    format!("notify/{target}")
}

/// How a delivery ended.
enum Attempts {
    Delivered,
    GaveUp { failure: Failure, attempts: u32 },
    Stopped,
}

/// Whether the worker goes on.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub(crate) struct Worker {
    pub target: NotifyTarget,
    pub topic: Topic,
    pub store: Store,
    pub sink: Sink,
    pub dead_letters: DeadLetters,
    pub counters: Arc<TargetCounters>,
    pub shutdown: Shutdown,
}

impl Worker {
    /// Runs until shutdown; an error stops this target only, and is kept for its status.
    pub async fn run(mut self) {
        if let Err(error) = self.consume().await {
            warn!(target_name = %self.target.name, %error, "notification target stopped");
            self.counters.set_stopped(error.to_string());
        }
    }

    /// The position to read from: the committed one, or for a target seen the first time
    /// the log's end (or its start, with `replay_history`).
    async fn start_position(&self) -> Result<u64> {
        let consumer = consumer_name(&self.target.name);
        let meta: TypedTree<u64> = self
            .store
            .typed_tree(&format!("notify/{}/meta", self.target.name))?;
        if meta.get(STARTED_KEY)?.is_none() {
            let start = if self.target.replay_history {
                0
            } else {
                self.topic.durable_end()
            };
            self.topic.commit_consumer_offset(&consumer, start)?;
            meta.put(STARTED_KEY, &start)?;
            self.store.flush().await?;
            info!(target_name = %self.target.name, start, "new notification target starts reading the alert log");
        }
        Ok(self.topic.consumer_offset(&consumer)?)
    }

    async fn consume(&mut self) -> Result<()> {
        let mut position = self.start_position().await?;
        self.counters.position.store(position, Ordering::Relaxed);
        let mut durable = self.topic.subscribe();
        let filter = AlertFilter::for_target(&self.target);
        while !self.shutdown.is_triggered() {
            // Marking the current end as seen before reading means an append that lands
            // after the read still wakes the wait below.
            durable.borrow_and_update();
            let records = self.topic.read(position, READ_STEP)?;
            if records.is_empty() {
                tokio::select! {
                    changed = durable.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    () = self.shutdown.triggered() => break,
                }
                continue;
            }
            if self.process(records, &filter, &mut position).await? == Flow::Stop {
                break;
            }
        }
        self.store.flush().await?;
        Ok(())
    }

    fn commit(&self, next_offset: u64, position: &mut u64) -> Result<()> {
        if next_offset > *position {
            self.topic
                .commit_consumer_offset(&consumer_name(&self.target.name), next_offset)?;
            *position = next_offset;
            self.counters.position.store(next_offset, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn process(
        &mut self,
        records: Vec<LogRecord>,
        filter: &AlertFilter,
        position: &mut u64,
    ) -> Result<Flow> {
        let limit = self.sink.batch_limit();
        let mut offsets = Vec::with_capacity(limit);
        let mut alerts = Vec::with_capacity(limit);
        let mut step_end = *position;
        for record in records {
            step_end = record.offset + 1;
            if self.apply_control(&record)? {
                continue;
            }
            match Alert::decode(record.payload.as_slice()) {
                Ok(alert) if filter.matches(&alert) => {
                    offsets.push(record.offset);
                    alerts.push(alert);
                }
                Ok(_) => TargetCounters::add(&self.counters.filtered, 1),
                Err(error) => {
                    TargetCounters::add(&self.counters.undecodable, 1);
                    warn!(target_name = %self.target.name, offset = record.offset, %error, "log record is not an alert, skipped");
                }
            }
            if alerts.len() >= limit {
                if self.deliver(&offsets, &alerts).await? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
                self.commit(step_end, position)?;
                offsets.clear();
                alerts.clear();
                // A slow target stops between batches, not at the end of a whole step.
                if self.shutdown.is_triggered() {
                    return Ok(Flow::Stop);
                }
            }
        }
        if !alerts.is_empty() && self.deliver(&offsets, &alerts).await? == Flow::Stop {
            return Ok(Flow::Stop);
        }
        self.commit(step_end, position)?;
        Ok(Flow::Continue)
    }

    /// Acts on `record` if it is a control record of the log, and says whether it was one. An
    /// erased tenant's dead letters go with it.
    fn apply_control(&self, record: &LogRecord) -> Result<bool> {
        match ControlRecord::decode(&record.payload) {
            Ok(None) => Ok(false),
            Ok(Some(ControlRecord::Erased)) => Ok(true),
            Ok(Some(ControlRecord::TenantErased { tenant })) => {
                let removed = self.dead_letters.remove_tenant(&tenant)?;
                if removed > 0 {
                    info!(target_name = %self.target.name, %tenant, removed, "erased tenant's dead letters removed");
                }
                Ok(true)
            }
            Err(error) => {
                TargetCounters::add(&self.counters.undecodable, 1);
                warn!(target_name = %self.target.name, offset = record.offset, %error, "log control record this version does not know, skipped");
                Ok(true)
            }
        }
    }

    /// Delivers a batch, retrying; what cannot be delivered becomes dead letters. A batch
    /// refused for good is tried alert by alert, so one bad alert does not take the others.
    async fn deliver(&mut self, offsets: &[u64], alerts: &[Alert]) -> Result<Flow> {
        let (failure, attempts) = match self.attempt(alerts).await {
            Attempts::Delivered => return Ok(Flow::Continue),
            Attempts::Stopped => return Ok(Flow::Stop),
            Attempts::GaveUp { failure, attempts } => (failure, attempts),
        };
        let mut letters = Vec::new();
        if failure.permanent && alerts.len() > 1 {
            for (offset, alert) in offsets.iter().zip(alerts) {
                match self.attempt(std::slice::from_ref(alert)).await {
                    Attempts::Delivered => {}
                    // The position stays before this batch: after a restart it is tried again.
                    Attempts::Stopped => return Ok(Flow::Stop),
                    Attempts::GaveUp {
                        failure: single_failure,
                        attempts: single_attempts,
                    } => {
                        letters.push((*offset, alert, single_failure, single_attempts));
                    }
                }
            }
        } else {
            for (offset, alert) in offsets.iter().zip(alerts) {
                letters.push((*offset, alert, failure.clone(), attempts));
            }
        }
        self.record_dead_letters(&letters).await?;
        Ok(Flow::Continue)
    }

    /// Tries until delivered, refused for good, out of attempts, or shut down.
    async fn attempt(&mut self, alerts: &[Alert]) -> Attempts {
        let backoff = Backoff {
            initial: std::time::Duration::from_millis(self.target.backoff_initial_ms),
            max: std::time::Duration::from_millis(self.target.backoff_max_ms),
        };
        let counters = Arc::clone(&self.counters);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.sink.deliver(alerts).await {
                Ok(()) => {
                    TargetCounters::add(&counters.delivered, alerts.len() as u64);
                    counters.consecutive_failures.store(0, Ordering::Relaxed);
                    counters.retrying.store(false, Ordering::Relaxed);
                    counters
                        .last_delivery_unix
                        .store(now_unix().unsigned_abs(), Ordering::Relaxed);
                    return Attempts::Delivered;
                }
                Err(failure) => failure,
            };
            TargetCounters::add(&counters.failed_attempts, 1);
            counters
                .consecutive_failures
                .fetch_add(1, Ordering::Relaxed);
            counters.set_last_error(Some(failure.message.clone()));
            if failure.permanent || attempts >= self.target.max_attempts {
                counters.retrying.store(false, Ordering::Relaxed);
                warn!(target_name = %self.target.name, attempts, permanent = failure.permanent, error = %failure.message, alerts = alerts.len(), "giving up on a delivery");
                return Attempts::GaveUp { failure, attempts };
            }
            counters.retrying.store(true, Ordering::Relaxed);
            let wait = failure
                .retry_after
                .unwrap_or_else(|| backoff.delay(attempts));
            warn!(target_name = %self.target.name, attempts, error = %failure.message, wait_ms = wait.as_millis() as u64, "delivery failed, retrying");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.triggered() => return Attempts::Stopped,
            }
        }
    }

    /// Records dead letters and makes them durable, so the position may move past them.
    async fn record_dead_letters(&self, letters: &[(u64, &Alert, Failure, u32)]) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let failed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for (offset, alert, failure, attempts) in letters {
            let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
            self.dead_letters.record(DeadLetter {
                sequence: 0,
                target: self.target.name.clone(),
                offset: *offset,
                alert_id: alert.id.clone(),
                tenant: alert.tenant_id.clone(),
                rule: alert.rule.clone(),
                priority: priority.falco_name().to_string(),
                attempts: *attempts,
                error: failure.message.clone(),
                failed_at: failed_at.clone(),
                alert: String::from_utf8_lossy(&webhook_body(alert)).into_owned(),
            })?;
        }
        self.store.flush().await?;
        TargetCounters::add(&self.counters.dead_lettered, letters.len() as u64);
        self.counters
            .last_dead_letter_unix
            .store(now_unix().unsigned_abs(), Ordering::Relaxed);
        Ok(())
    }
}
