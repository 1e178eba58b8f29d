//! Starting the notifier, and what the platform holds while it runs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use palisade_core::config::{NotifyConfig, NotifyTarget};
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_proto::v1::{Alert, ComponentStatus};
use prost::Message as _;
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
    /// One resend of the target's dead letters at a time, so two callers asking for the same
    /// letters do not both deliver them.
    resending: tokio::sync::Mutex<()>,
}

/// Reads the notifier's status; cheap to clone into a status probe.
#[derive(Clone)]
pub struct NotifyMonitor {
    targets: Arc<Vec<TargetState>>,
    topic: Topic,
    store: Store,
}

/// What sending dead letters again did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resent {
    /// Delivered and removed.
    pub delivered: u64,
    /// Refused again; kept with the new error.
    pub failed: u64,
    /// Asked for but not kept.
    pub missing: Vec<u64>,
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
                resending: tokio::sync::Mutex::new(()),
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
                store: store.clone(),
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
        self.target_state(target)
            .map(|state| state.dead_letters.clone())
    }

    /// The configuration of a target.
    pub fn target(&self, target: &str) -> Result<&NotifyTarget> {
        self.target_state(target).map(|state| &state.target)
    }

    fn target_state(&self, target: &str) -> Result<&TargetState> {
        self.targets
            .iter()
            .find(|state| state.target.name == target)
            .ok_or_else(|| NotifyError::UnknownTarget(target.to_string()))
    }

    /// Sends dead letters of `target` again, one attempt each: `sequences`, or every kept
    /// letter when it is `None`. The alert is read back from the log at the letter's offset.
    /// Delivered letters are removed; refused ones are kept with one more attempt and the new
    /// error. Durable when it returns.
    pub async fn resend(&self, target: &str, sequences: Option<Vec<u64>>) -> Result<Resent> {
        let state = self.target_state(target)?;
        // the letters are chosen under the lock: a resend that waited finds those the one
        // before it delivered gone
        let _one = state.resending.lock().await;
        let letters = &state.dead_letters;
        let mut outcome = Resent::default();
        let chosen = match sequences {
            None => letters.list(None, usize::MAX)?,
            Some(sequences) => {
                let mut chosen = Vec::with_capacity(sequences.len());
                for sequence in sequences {
                    match letters.get(sequence)? {
                        Some(letter) => chosen.push(letter),
                        None => outcome.missing.push(sequence),
                    }
                }
                chosen
            }
        };
        if chosen.is_empty() {
            return Ok(outcome);
        }
        let mut sink = Sink::for_target(&state.target)?;
        for mut letter in chosen {
            let failure = match self.alert_of(&letter, &state.target) {
                Ok(alert) => match sink.deliver(std::slice::from_ref(&alert)).await {
                    Ok(()) => None,
                    Err(failure) => Some(failure.message),
                },
                Err(message) => Some(message),
            };
            match failure {
                None => {
                    letters.remove(letter.sequence)?;
                    TargetCounters::add(&state.counters.delivered, 1);
                    outcome.delivered += 1;
                }
                Some(message) => {
                    letter.attempts = letter.attempts.saturating_add(1);
                    letter.error = message;
                    letter.failed_at =
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    letters.update(&letter)?;
                    outcome.failed += 1;
                }
            }
        }
        self.store.flush().await?;
        Ok(outcome)
    }

    /// The alert a letter stands for, read back from the log.
    fn alert_of(
        &self,
        letter: &crate::DeadLetter,
        target: &NotifyTarget,
    ) -> std::result::Result<Alert, String> {
        let record = self
            .topic
            .get(letter.offset)
            .map_err(|error| error.to_string())?
            .ok_or_else(|| format!("alert log offset {} is not in the log", letter.offset))?;
        let alert = Alert::decode(record.payload.as_slice()).map_err(|_| {
            format!(
                "alert log offset {} no longer holds an alert (erased)",
                letter.offset
            )
        })?;
        if alert.tenant_id != target.tenant || alert.id != letter.alert_id {
            return Err(format!(
                "alert log offset {} holds another alert than {}",
                letter.offset, letter.alert_id
            ));
        }
        Ok(alert)
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
