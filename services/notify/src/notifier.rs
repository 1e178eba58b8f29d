//! Starting the notifier, and what the platform holds while it runs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use palisade_core::config::{NotifyConfig, NotifyTarget};
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_proto::v1::ComponentStatus;
use tokio::task::JoinHandle;

use crate::dead_letter::DeadLetters;
use crate::error::{NotifyError, Result};
use crate::retry::now_unix;
use crate::sink::Sink;
use crate::status::{NotifyStatus, TargetCounters, TargetStatus};
use crate::worker::{Worker, consumer_name};

/// Starts notification delivery.
pub struct Notifier;

struct TargetState {
    target: NotifyTarget,
    counters: Arc<TargetCounters>,
    dead_letters: DeadLetters,
}

/// Reads the notifier's status; cheap to clone into a status probe.
#[derive(Clone)]
pub struct NotifyMonitor {
    targets: Arc<Vec<TargetState>>,
    topic: Topic,
}

/// The running notifier.
pub struct NotifierHandle {
    monitor: NotifyMonitor,
    store: Store,
    tasks: Vec<JoinHandle<()>>,
}

impl Notifier {
    /// Starts one delivery task per configured target, reading `alerts` (the log's alert
    /// topic) with positions and dead letters kept in `store` (the store holding the topic).
    /// The tasks stop when `shutdown` is triggered. Must be called inside a tokio runtime.
    pub fn start(
        config: &NotifyConfig,
        store: &Store,
        alerts: &Topic,
        shutdown: &Shutdown,
    ) -> Result<NotifierHandle> {
        let mut workers = Vec::with_capacity(config.targets.len());
        let mut states = Vec::with_capacity(config.targets.len());
        for target in &config.targets {
            let sink = Sink::for_target(target)?;
            let dead_letters = DeadLetters::open(store, &target.name, target.max_dead_letters)?;
            let counters = Arc::new(TargetCounters::default());
            counters.position.store(
                alerts.consumer_offset(&consumer_name(&target.name))?,
                Ordering::Relaxed,
            );
            workers.push(Worker {
                target: target.clone(),
                topic: alerts.clone(),
                store: store.clone(),
                sink,
                dead_letters: dead_letters.clone(),
                counters: Arc::clone(&counters),
                shutdown: shutdown.clone(),
            });
            states.push(TargetState {
                target: target.clone(),
                counters,
                dead_letters,
            });
        }
        let tasks = workers
            .into_iter()
            .map(|worker| tokio::spawn(worker.run()))
            .collect();
        Ok(NotifierHandle {
            monitor: NotifyMonitor {
                targets: Arc::new(states),
                topic: alerts.clone(),
            },
            store: store.clone(),
            tasks,
        })
    }
}

impl NotifyMonitor {
    /// Every target's numbers.
    pub fn status(&self) -> NotifyStatus {
        let log_end = self.topic.durable_end();
        let targets = self
            .targets
            .iter()
            .map(|state| {
                let counters = &state.counters;
                let position = counters.position.load(Ordering::Relaxed);
                TargetStatus {
                    name: state.target.name.clone(),
                    tenant: state.target.tenant.clone(),
                    kind: state.target.kind.name().to_string(),
                    position,
                    lag: log_end.saturating_sub(position),
                    delivered: counters.delivered.load(Ordering::Relaxed),
                    filtered: counters.filtered.load(Ordering::Relaxed),
                    failed_attempts: counters.failed_attempts.load(Ordering::Relaxed),
                    retrying: counters.retrying.load(Ordering::Relaxed),
                    consecutive_failures: counters.consecutive_failures.load(Ordering::Relaxed),
                    dead_lettered: counters.dead_lettered.load(Ordering::Relaxed),
                    dead_letters_kept: state.dead_letters.len(),
                    dead_letters_evicted: state.dead_letters.evicted(),
                    undecodable: counters.undecodable.load(Ordering::Relaxed),
                    last_error: counters.last_error(),
                    last_delivery_unix: counters.last_delivery_unix.load(Ordering::Relaxed),
                    last_dead_letter_unix: counters.last_dead_letter_unix.load(Ordering::Relaxed),
                    stopped: counters.stopped(),
                }
            })
            .collect();
        NotifyStatus { targets }
    }

    /// The notifier as a component of the platform's status (`name = "notify"`).
    pub fn component_status(&self) -> ComponentStatus {
        self.status().component_status(now_unix())
    }

    /// The dead letters of a target.
    pub fn dead_letters(&self, target: &str) -> Result<DeadLetters> {
        self.targets
            .iter()
            .find(|state| state.target.name == target)
            .map(|state| state.dead_letters.clone())
            .ok_or_else(|| NotifyError::UnknownTarget(target.to_string()))
    }
}

impl NotifierHandle {
    /// A status reader to keep (for probes) after the handle is consumed.
    pub fn monitor(&self) -> NotifyMonitor {
        self.monitor.clone()
    }

    /// Every target's numbers.
    pub fn status(&self) -> NotifyStatus {
        self.monitor.status()
    }

    /// The notifier as a component of the platform's status.
    pub fn component_status(&self) -> ComponentStatus {
        self.monitor.component_status()
    }

    /// The dead letters of a target.
    pub fn dead_letters(&self, target: &str) -> Result<DeadLetters> {
        self.monitor.dead_letters(target)
    }

    /// Waits for every target to stop (after shutdown was triggered) and flushes positions.
    pub async fn stopped(self) -> Result<()> {
        for task in self.tasks {
            task.await
                .map_err(|error| NotifyError::Task(error.to_string()))?;
        }
        self.store.flush().await?;
        Ok(())
    }

    /// Stops every target at once, flushing nothing, as a crash would; waits until the tasks
    /// are gone. For tests of what a restart recovers.
    pub async fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
