//! Aggregation and rate limiting that never drop silently.
//!
//! The first detection of a kind (same rule, workload and non-volatile output fields) in a
//! window goes out at once. Repeats in the window are counted, and when the window closes one
//! aggregate alert says how many there were and between which times. Independently, each
//! (rule, workload) may emit at most `max_per_window` alerts per window; what it could not
//! emit is reported in one summary alert when the window closes.

use std::collections::HashMap;

use super::{Detection, aggregation_key};

/// Limits; both windows are the same length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Window length in ns.
    pub window_ns: u64,
    /// Alerts a (rule, workload) may emit per window.
    pub max_per_window: u32,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            window_ns: 60_000_000_000,
            max_per_window: 20,
        }
    }
}

#[derive(Debug)]
struct Repeats {
    template: Detection,
    window_start_ns: u64,
    held: u64,
    first_held_ns: u64,
    last_held_ns: u64,
}

#[derive(Debug)]
struct Budget {
    template: Detection,
    window_start_ns: u64,
    emitted: u32,
    suppressed: u64,
    first_suppressed_ns: u64,
    last_suppressed_ns: u64,
}

/// Aggregator and rate limiter.
#[derive(Debug, Default)]
pub struct Limiter {
    config: LimiterConfig,
    repeats: HashMap<String, Repeats>,
    budgets: HashMap<(String, String), Budget>,
    /// Detections held back so far (all reported later in aggregates and summaries).
    pub suppressed_total: u64,
}

fn format_time(ns: u64) -> String {
    let seconds = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(ns % 1_000_000_000).unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, nanos)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ns.to_string())
}

fn derived_id(base: &str, kind: &str, window_start_ns: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(base.as_bytes());
    hasher.update(kind.as_bytes());
    hasher.update(window_start_ns.to_le_bytes());
    hex::encode(&hasher.finalize()[..16])
}

impl Limiter {
    /// A limiter with these limits.
    pub fn new(config: LimiterConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Offers a detection; returns what goes out now (the detection, or nothing when it is
    /// a repeat or over budget, in which case it is counted for a later aggregate).
    pub fn offer(&mut self, detection: Detection) -> Option<Detection> {
        let now = detection.time_ns;
        let key = aggregation_key(&detection);
        if let Some(repeats) = self.repeats.get_mut(&key)
            && now.saturating_sub(repeats.window_start_ns) < self.config.window_ns
        {
            if repeats.held == 0 {
                repeats.first_held_ns = now;
            }
            repeats.held += 1;
            repeats.last_held_ns = now.max(repeats.last_held_ns);
            self.suppressed_total += 1;
            return None;
        }
        let budget_key = (detection.rule.clone(), detection.workload.clone());
        let budget = self.budgets.entry(budget_key).or_insert_with(|| Budget {
            template: detection.clone(),
            window_start_ns: now,
            emitted: 0,
            suppressed: 0,
            first_suppressed_ns: 0,
            last_suppressed_ns: 0,
        });
        if budget.emitted >= self.config.max_per_window {
            if budget.suppressed == 0 {
                budget.first_suppressed_ns = now;
            }
            budget.suppressed += 1;
            budget.last_suppressed_ns = now.max(budget.last_suppressed_ns);
            self.suppressed_total += 1;
            return None;
        }
        budget.emitted += 1;
        self.repeats.insert(
            key,
            Repeats {
                template: detection.clone(),
                window_start_ns: now,
                held: 0,
                first_held_ns: 0,
                last_held_ns: 0,
            },
        );
        Some(detection)
    }

    /// Closes windows that ended before `now_ns` and returns their aggregates and
    /// rate-limit summaries.
    pub fn flush(&mut self, now_ns: u64) -> Vec<Detection> {
        let window = self.config.window_ns;
        let mut out = Vec::new();
        self.repeats.retain(|_, repeats| {
            if now_ns.saturating_sub(repeats.window_start_ns) < window {
                return true;
            }
            if repeats.held > 0 {
                let mut aggregate = repeats.template.clone();
                aggregate.id = derived_id(&repeats.template.id, "repeats", repeats.window_start_ns);
                aggregate.count = repeats.held;
                aggregate.first_time_ns = repeats.first_held_ns;
                aggregate.last_time_ns = repeats.last_held_ns;
                aggregate.time_ns = repeats.last_held_ns;
                aggregate.output = format!(
                    "{} (repeated {} more times between {} and {})",
                    repeats.template.output,
                    repeats.held,
                    format_time(repeats.first_held_ns),
                    format_time(repeats.last_held_ns)
                );
                aggregate.tags.push("palisade_aggregated".to_string());
                out.push(aggregate);
            }
            false
        });
        self.budgets.retain(|_, budget| {
            if now_ns.saturating_sub(budget.window_start_ns) < window {
                return true;
            }
            if budget.suppressed > 0 {
                let mut summary = budget.template.clone();
                summary.id = derived_id(&budget.template.id, "rate-limit", budget.window_start_ns);
                summary.count = budget.suppressed;
                summary.first_time_ns = budget.first_suppressed_ns;
                summary.last_time_ns = budget.last_suppressed_ns;
                summary.time_ns = budget.last_suppressed_ns;
                summary.output = format!(
                    "rate limit: {} more alerts of rule \"{}\" for workload {} were held back between {} and {} (limit {} per window); first alert: {}",
                    budget.suppressed,
                    budget.template.rule,
                    budget.template.workload,
                    format_time(budget.first_suppressed_ns),
                    format_time(budget.last_suppressed_ns),
                    self.config.max_per_window,
                    budget.template.output
                );
                summary.tags.push("palisade_rate_limited".to_string());
                out.push(summary);
            }
            false
        });
        out
    }

    /// Closes every window (at shutdown).
    pub fn flush_all(&mut self) -> Vec<Detection> {
        self.flush(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use palisade_proto::v1::Priority;

    use super::*;

    fn detection(rule: &str, workload: &str, file: &str, time_ns: u64) -> Detection {
        let mut fields = BTreeMap::new();
        fields.insert("fd.name".to_string(), file.to_string());
        fields.insert("proc.name".to_string(), "cat".to_string());
        fields.insert("proc.pid".to_string(), time_ns.to_string());
        Detection {
            id: format!("{rule}-{time_ns}"),
            rule: rule.to_string(),
            description: String::new(),
            priority: Priority::Warning,
            output: format!("read {file}"),
            output_fields: fields,
            tags: vec![],
            source: "syscall".into(),
            time_ns,
            hostname: "node".into(),
            workload: workload.into(),
            namespace: None,
            pod_name: None,
            pod_uid: None,
            pod_labels: BTreeMap::new(),
            image: String::new(),
            container_name: String::new(),
            count: 1,
            first_time_ns: time_ns,
            last_time_ns: time_ns,
        }
    }

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn repeats_become_one_aggregate_with_count_and_times() {
        let mut limiter = Limiter::new(LimiterConfig::default());
        assert!(
            limiter
                .offer(detection("Read shadow", "c1", "/etc/shadow", SECOND))
                .is_some()
        );
        for second in 2..=51u64 {
            // pids differ, everything else is the same: repeats
            assert!(
                limiter
                    .offer(detection(
                        "Read shadow",
                        "c1",
                        "/etc/shadow",
                        second * SECOND
                    ))
                    .is_none()
            );
        }
        // not yet: the window is still open
        assert!(limiter.flush(59 * SECOND).is_empty());
        let out = limiter.flush(200 * SECOND);
        assert_eq!(out.len(), 1);
        let aggregate = &out[0];
        assert!(aggregate.tags.contains(&"palisade_aggregated".to_string()));
        assert_eq!(aggregate.count, 50);
        assert_eq!(aggregate.first_time_ns, 2 * SECOND);
        assert_eq!(aggregate.last_time_ns, 51 * SECOND);
        assert!(aggregate.output.contains("repeated"));
        assert_eq!(
            limiter.suppressed_total,
            out.iter().map(|detection| detection.count).sum::<u64>()
        );
    }

    #[test]
    fn over_budget_alerts_are_summarised_never_silently_dropped() {
        let mut limiter = Limiter::new(LimiterConfig {
            window_ns: 10 * SECOND,
            max_per_window: 3,
        });
        let mut emitted = 0;
        for index in 0..10u64 {
            // different files: not repeats, but the same rule and workload
            if limiter
                .offer(detection(
                    "Read secrets",
                    "c1",
                    &format!("/secret/{index}"),
                    SECOND + index,
                ))
                .is_some()
            {
                emitted += 1;
            }
        }
        assert_eq!(emitted, 3);
        // another workload has its own budget
        assert!(
            limiter
                .offer(detection("Read secrets", "c2", "/secret/0", SECOND))
                .is_some()
        );
        let out = limiter.flush(20 * SECOND);
        let summary = out
            .iter()
            .find(|detection| {
                detection
                    .tags
                    .contains(&"palisade_rate_limited".to_string())
            })
            .expect("summary");
        assert_eq!(summary.count, 7);
        assert!(summary.output.contains("7 more alerts"));
        assert_eq!(limiter.suppressed_total, 7);
        // ids of summaries are stable for the same window
        let mut again = Limiter::new(LimiterConfig {
            window_ns: 10 * SECOND,
            max_per_window: 3,
        });
        for index in 0..10u64 {
            again.offer(detection(
                "Read secrets",
                "c1",
                &format!("/secret/{index}"),
                SECOND + index,
            ));
        }
        let out_again = again.flush(20 * SECOND);
        assert_eq!(
            out_again.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
            out.iter().map(|d| d.id.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_new_window_emits_again() {
        let mut limiter = Limiter::new(LimiterConfig {
            window_ns: 10 * SECOND,
            max_per_window: 5,
        });
        assert!(limiter.offer(detection("R", "c", "/x", SECOND)).is_some());
        assert!(
            limiter
                .offer(detection("R", "c", "/x", 2 * SECOND))
                .is_none()
        );
        let out = limiter.flush(12 * SECOND);
        assert_eq!(out.len(), 1);
        assert!(
            limiter
                .offer(detection("R", "c", "/x", 13 * SECOND))
                .is_some()
        );
    }
}
