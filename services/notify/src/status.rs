//! The notifier's numbers, per target and as one component of the platform's status.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use palisade_proto::v1::{ComponentStatus, HealthState};

/// A dead letter younger than this makes the component degraded.
pub const RECENT_DEAD_LETTER_SECONDS: i64 = 900;
/// More alerts than this waiting behind a target makes the component degraded.
pub const DEGRADED_LAG: u64 = 100_000;

/// Counters a target's worker updates and status readers read without waiting for it.
#[derive(Debug, Default)]
pub(crate) struct TargetCounters {
    pub delivered: AtomicU64,
    pub filtered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub undecodable: AtomicU64,
    pub consecutive_failures: AtomicU32,
    pub retrying: AtomicBool,
    pub position: AtomicU64,
    pub last_delivery_unix: AtomicU64,
    pub last_dead_letter_unix: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub stopped: Mutex<Option<String>>,
}

impl TargetCounters {
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn set_last_error(&self, message: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = message;
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set_stopped(&self, reason: String) {
        *self
            .stopped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason);
    }

    pub fn stopped(&self) -> Option<String> {
        self.stopped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// One target's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetStatus {
    /// The target's name.
    pub name: String,
    /// The tenant whose alerts it receives.
    pub tenant: String,
    /// webhook, slack, syslog or splunk_hec.
    pub kind: String,
    /// Next log offset the target reads.
    pub position: u64,
    /// Records of the log (every tenant's) not yet looked at by this target.
    pub lag: u64,
    /// Alerts delivered since the process started.
    pub delivered: u64,
    /// Alerts of the log this target does not take (other tenants, below its priority, ...).
    pub filtered: u64,
    /// Attempts that failed (each retry counts once).
    pub failed_attempts: u64,
    /// Whether a delivery is waiting to be tried again now.
    pub retrying: bool,
    /// Failed attempts in a row.
    pub consecutive_failures: u32,
    /// Alerts given up on since the process started.
    pub dead_lettered: u64,
    /// Dead letters kept (listable).
    pub dead_letters_kept: usize,
    /// Dead letters dropped past the target's limit.
    pub dead_letters_evicted: u64,
    /// Log records that were not alerts (skipped and counted).
    pub undecodable: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Unix time of the last delivery (0: none).
    pub last_delivery_unix: u64,
    /// Unix time of the last dead letter (0: none).
    pub last_dead_letter_unix: u64,
    /// Why the target's worker stopped, if it stopped on an error.
    pub stopped: Option<String>,
}

/// Every target's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyStatus {
    /// In configuration order.
    pub targets: Vec<TargetStatus>,
}

impl NotifyStatus {
    /// The notifier as a component of the platform's status: degraded while a target retries,
    /// lags far behind, dead-lettered an alert in the last 15 minutes, or has stopped.
    pub fn component_status(&self, now_unix: i64) -> ComponentStatus {
        let delivered: u64 = self.targets.iter().map(|target| target.delivered).sum();
        let kept: usize = self
            .targets
            .iter()
            .map(|target| target.dead_letters_kept)
            .sum();
        let mut problems = Vec::new();
        for target in &self.targets {
            if let Some(reason) = &target.stopped {
                problems.push(format!("{} stopped: {reason}", target.name));
            } else if target.retrying {
                problems.push(format!(
                    "{} retrying: {}",
                    target.name,
                    target.last_error.as_deref().unwrap_or("delivery failed")
                ));
            } else if target.lag > DEGRADED_LAG {
                problems.push(format!("{} is {} records behind", target.name, target.lag));
            } else if target.last_dead_letter_unix > 0
                && now_unix.saturating_sub(target.last_dead_letter_unix as i64)
                    < RECENT_DEAD_LETTER_SECONDS
            {
                problems.push(format!(
                    "{} dead-lettered an alert: {}",
                    target.name,
                    target.last_error.as_deref().unwrap_or("delivery failed")
                ));
            }
        }
        let mut detail = format!(
            "{} targets, {delivered} alerts delivered, {kept} dead letters",
            self.targets.len()
        );
        if !problems.is_empty() {
            detail.push_str("; ");
            detail.push_str(&problems.join("; "));
        }
        let mut metrics = std::collections::HashMap::new();
        for target in &self.targets {
            for (key, value) in [
                ("delivered", target.delivered.to_string()),
                ("lag", target.lag.to_string()),
                ("retrying", target.retrying.to_string()),
                ("dead_letters", target.dead_letters_kept.to_string()),
                ("position", target.position.to_string()),
            ] {
                metrics.insert(format!("{}.{key}", target.name), value);
            }
        }
        let state = if problems.is_empty() {
            HealthState::Serving
        } else {
            HealthState::Degraded
        };
        ComponentStatus {
            name: "notify".to_string(),
            state: state as i32,
            detail,
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrying_lagging_recent_dead_letters_and_stops_degrade_the_component() {
        let healthy = TargetStatus {
            name: "soc".into(),
            delivered: 5,
            ..TargetStatus::default()
        };
        let status = NotifyStatus {
            targets: vec![healthy.clone()],
        };
        let component = status.component_status(10_000);
        assert_eq!(component.state, HealthState::Serving as i32);
        assert_eq!(component.metrics["soc.delivered"], "5");
        for (broken, expected) in [
            (
                TargetStatus {
                    retrying: true,
                    last_error: Some("HTTP 503".into()),
                    ..healthy.clone()
                },
                "soc retrying: HTTP 503",
            ),
            (
                TargetStatus {
                    lag: DEGRADED_LAG + 1,
                    ..healthy.clone()
                },
                "records behind",
            ),
            (
                TargetStatus {
                    last_dead_letter_unix: 9_990,
                    ..healthy.clone()
                },
                "dead-lettered",
            ),
            (
                TargetStatus {
                    stopped: Some("storage error".into()),
                    ..healthy.clone()
                },
                "soc stopped",
            ),
        ] {
            let component = NotifyStatus {
                targets: vec![broken],
            }
            .component_status(10_000);
            assert_eq!(component.state, HealthState::Degraded as i32);
            assert!(component.detail.contains(expected), "{}", component.detail);
        }
        let old_letter = TargetStatus {
            last_dead_letter_unix: 1,
            ..healthy
        };
        let component = NotifyStatus {
            targets: vec![old_letter],
        }
        .component_status(10_000);
        assert_eq!(component.state, HealthState::Serving as i32);
    }
}
