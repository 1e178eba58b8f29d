//! Behavioural baselines per identity. For each user or service account the detector learns,
//! during a learning window that starts when the identity is first seen, the verbs, resources,
//! namespaces, source addresses and client programs it uses. After the window, a request that
//! uses something new raises an alert saying what is new and what was usual. Time is the
//! events' own time, so a replay gives the same result as the live stream did.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use palisade_proto::v1::Priority;

use crate::alert::AuditAlert;
use crate::error::AuditError;
use crate::event::AuditEvent;

/// Rule name of anomaly alerts.
pub const ANOMALY_RULE: &str = "Palisade Anomalous Kubernetes API Activity";

/// Baseline settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyConfig {
    /// How long after first seeing an identity its behaviour is only learned.
    pub learning_window: Duration,
    /// Values kept per identity and dimension; a dimension that outgrows it is too varied to
    /// baseline and stops alerting.
    pub max_values_per_dimension: usize,
    /// Identities kept; identities beyond it are counted and not baselined.
    pub max_identities: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            learning_window: Duration::from_secs(7 * 24 * 3600),
            max_values_per_dimension: 256,
            max_identities: 100_000,
        }
    }
}

/// The aspects of a request that are baselined.
pub const DIMENSIONS: [&str; 5] = ["verb", "resource", "namespace", "source address", "client"];

/// What one identity was seen doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// When the identity was first seen (ns since the epoch).
    pub first_seen_ns: i64,
    /// Per dimension, each value and when it was first seen.
    pub values: [BTreeMap<String, i64>; 5],
    /// Dimensions that outgrew the value limit.
    pub saturated: [bool; 5],
}

/// A request that departs from its identity's baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Novelty {
    /// The identity.
    pub identity: String,
    /// (dimension, new value, usual values).
    pub new_values: Vec<(&'static str, String, Vec<String>)>,
    /// When the identity was first seen.
    pub first_seen_ns: i64,
}

impl Novelty {
    /// A sentence a responder can act on.
    pub fn explanation(&self, learning_window: Duration) -> String {
        let parts: Vec<String> = self
            .new_values
            .iter()
            .map(|(dimension, value, usual)| {
                let shown: Vec<&str> = usual.iter().take(8).map(String::as_str).collect();
                let more = usual.len().saturating_sub(shown.len());
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!(
                    "new {dimension} {value:?} (usual: {}{tail})",
                    shown.join(", ")
                )
            })
            .collect();
        format!(
            "{} did something it had not done since it was first seen (baseline learned over {} days): {}",
            self.identity,
            learning_window.as_secs() / 86_400,
            parts.join("; ")
        )
    }
}

/// The detector and its persisted baselines.
pub struct AnomalyDetector {
    config: AnomalyConfig,
    profiles: HashMap<String, Profile>,
    dirty: Vec<String>,
    tree: Option<sled::Tree>,
    identities_not_tracked: u64,
}

fn client_name(user_agent: &str) -> String {
    // Keep the program, not its version or platform: kubectl/v1.28.0 (linux/amd64) -> kubectl.
    user_agent
        .split(['/', ' '])
        .next()
        .unwrap_or(user_agent)
        .to_string()
}

fn features(event: &AuditEvent) -> [Option<String>; 5] {
    let text = |path: &[&str]| event.str_at(path).map(ToString::to_string);
    let resource = text(&["objectRef", "resource"]).map(|resource| {
        match event.str_at(&["objectRef", "subresource"]) {
            Some(subresource) => format!("{resource}/{subresource}"),
            None => resource,
        }
    });
    let source = event
        .object
        .get("sourceIPs")
        .and_then(|ips| ips.get(0))
        .and_then(serde_json::Value::as_str)
        .map(ToString::to_string);
    [
        text(&["verb"]),
        resource,
        text(&["objectRef", "namespace"]),
        source,
        text(&["userAgent"]).map(|agent| client_name(&agent)),
    ]
}

impl AnomalyDetector {
    /// A detector keeping its baselines in memory only.
    pub fn in_memory(config: AnomalyConfig) -> Self {
        Self {
            config,
            profiles: HashMap::new(),
            dirty: Vec::new(),
            tree: None,
            identities_not_tracked: 0,
        }
    }

    /// A detector persisting its baselines in the sled database at `path`, loading what is
    /// there.
    pub fn open(path: &Path, config: AnomalyConfig) -> Result<Self, AuditError> {
        let store_error = |error: sled::Error| AuditError::Store {
            path: path.to_path_buf(),
            reason: error.to_string(),
        };
        let database = sled::open(path).map_err(store_error)?;
        Self::from_db(&database, path, config)
    }

    /// A detector persisting its baselines in an open sled database.
    pub fn from_db(
        database: &sled::Db,
        path: &Path,
        config: AnomalyConfig,
    ) -> Result<Self, AuditError> {
        let store_error = |error: sled::Error| AuditError::Store {
            path: path.to_path_buf(),
            reason: error.to_string(),
        };
        let tree = database
            .open_tree("anomaly_profiles")
            .map_err(store_error)?;
        let mut detector = Self::in_memory(config);
        for entry in tree.iter() {
            let (key, value) = entry.map_err(store_error)?;
            let identity = String::from_utf8_lossy(&key).into_owned();
            match serde_json::from_slice::<Profile>(&value) {
                Ok(profile) => {
                    detector.profiles.insert(identity, profile);
                }
                Err(error) => {
                    tracing::warn!(identity = %identity, %error, "unreadable baseline dropped")
                }
            }
        }
        detector.tree = Some(tree);
        Ok(detector)
    }

    /// Baselined identities.
    pub fn identities(&self) -> usize {
        self.profiles.len()
    }

    /// Identities seen beyond the limit and not baselined.
    pub fn identities_not_tracked(&self) -> u64 {
        self.identities_not_tracked
    }

    /// The profile of an identity.
    pub fn profile(&self, identity: &str) -> Option<&Profile> {
        self.profiles.get(identity)
    }

    /// Learns from an event and returns what is new about it, after the learning window.
    pub fn observe(&mut self, event: &AuditEvent) -> Option<Novelty> {
        let identity = event.user()?.to_string();
        if !self.profiles.contains_key(&identity) {
            if self.profiles.len() >= self.config.max_identities {
                self.identities_not_tracked += 1;
                return None;
            }
            self.profiles.insert(
                identity.clone(),
                Profile {
                    first_seen_ns: event.time_ns,
                    ..Profile::default()
                },
            );
        }
        let window_ns = i64::try_from(self.config.learning_window.as_nanos()).unwrap_or(i64::MAX);
        let limit = self.config.max_values_per_dimension;
        let profile = self.profiles.get_mut(&identity)?;
        let learning = event.time_ns < profile.first_seen_ns.saturating_add(window_ns);
        let mut new_values = Vec::new();
        let mut changed = false;
        for (index, value) in features(event).into_iter().enumerate() {
            let Some(value) = value else { continue };
            if profile.values[index].contains_key(&value) || profile.saturated[index] {
                continue;
            }
            if profile.values[index].len() >= limit {
                profile.saturated[index] = true;
                changed = true;
                continue;
            }
            if !learning {
                let usual = profile.values[index].keys().cloned().collect();
                new_values.push((DIMENSIONS[index], value.clone(), usual));
            }
            profile.values[index].insert(value, event.time_ns);
            changed = true;
        }
        if changed {
            self.dirty.push(identity.clone());
        }
        if new_values.is_empty() {
            return None;
        }
        Some(Novelty {
            first_seen_ns: profile.first_seen_ns,
            identity,
            new_values,
        })
    }

    /// The alert for a novelty on an event.
    pub fn alert(&self, novelty: &Novelty, event: &AuditEvent, hostname: &str) -> AuditAlert {
        let service_account = novelty.identity.starts_with("system:serviceaccount:");
        let mut tags: Vec<String> = [
            "k8s",
            "palisade",
            "anomaly",
            "mitre_defense_evasion",
            "mitre_persistence",
            "T1078",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        tags.push(
            if service_account {
                "MS-TA9016"
            } else {
                "MS-TA9001"
            }
            .to_string(),
        );
        let mut fields = vec![("ka.user.name".to_string(), novelty.identity.clone())];
        for (dimension, value, _) in &novelty.new_values {
            fields.push((
                format!("palisade.new.{}", dimension.replace(' ', "_")),
                value.clone(),
            ));
        }
        AuditAlert::new(
            ANOMALY_RULE,
            Priority::Notice,
            "An identity used a verb, resource, namespace, source address or client it had not used during its baseline.",
            tags,
            novelty.explanation(self.config.learning_window),
            fields,
            event,
            hostname,
        )
    }

    /// Writes changed baselines and waits until they are on disk.
    pub fn flush(&mut self) -> Result<(), AuditError> {
        let Some(tree) = &self.tree else {
            self.dirty.clear();
            return Ok(());
        };
        self.dirty.sort();
        self.dirty.dedup();
        for identity in self.dirty.drain(..) {
            if let Some(profile) = self.profiles.get(&identity) {
                let bytes = serde_json::to_vec(profile).map_err(|error| AuditError::Store {
                    path: std::path::PathBuf::new(),
                    reason: error.to_string(),
                })?;
                tree.insert(identity.as_bytes(), bytes)?;
            }
        }
        tree.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Envelope;

    fn event(user: &str, verb: &str, namespace: &str, time: &str) -> AuditEvent {
        AuditEvent::from_object(
            serde_json::json!({"kind": "Event", "auditID": format!("{user}{verb}{namespace}{time}"), "verb": verb,
                "user": {"username": user}, "objectRef": {"resource": "secrets", "namespace": namespace},
                "sourceIPs": ["10.0.0.1"], "userAgent": "kubectl/v1.30.0 (linux/amd64)", "stageTimestamp": time}),
            Envelope::Raw,
            None,
        )
    }

    #[test]
    fn new_behaviour_after_the_window_is_explained_once_and_persisted() -> anyhow::Result<()> {
        let directory = tempfile::tempdir()?;
        let config = AnomalyConfig {
            learning_window: Duration::from_secs(86_400),
            ..AnomalyConfig::default()
        };
        let mut detector = AnomalyDetector::open(directory.path(), config)?;
        assert!(
            detector
                .observe(&event("bob", "get", "team", "2024-01-01T00:00:00Z"))
                .is_none()
        );
        assert!(
            detector
                .observe(&event("bob", "list", "team", "2024-01-01T12:00:00Z"))
                .is_none()
        );
        assert!(
            detector
                .observe(&event("bob", "get", "team", "2024-01-03T00:00:00Z"))
                .is_none()
        );
        let novelty = detector
            .observe(&event(
                "bob",
                "delete",
                "kube-system",
                "2024-01-03T01:00:00Z",
            ))
            .expect("new verb and namespace");
        assert_eq!(novelty.new_values.len(), 2);
        let explanation = novelty.explanation(config.learning_window);
        assert!(
            explanation.contains("new verb \"delete\" (usual: get, list)"),
            "{explanation}"
        );
        assert!(
            explanation.contains("new namespace \"kube-system\" (usual: team)"),
            "{explanation}"
        );
        assert!(
            detector
                .observe(&event(
                    "bob",
                    "delete",
                    "kube-system",
                    "2024-01-03T02:00:00Z"
                ))
                .is_none()
        );
        detector.flush()?;
        drop(detector);

        let mut reopened = AnomalyDetector::open(directory.path(), config)?;
        assert_eq!(reopened.identities(), 1);
        assert!(
            reopened
                .observe(&event(
                    "bob",
                    "delete",
                    "kube-system",
                    "2024-01-04T00:00:00Z"
                ))
                .is_none()
        );
        assert!(
            reopened
                .observe(&event("bob", "patch", "team", "2024-01-04T00:00:00Z"))
                .is_some()
        );
        Ok(())
    }

    #[test]
    fn identities_and_values_are_bounded() {
        let config = AnomalyConfig {
            learning_window: Duration::from_secs(0),
            max_values_per_dimension: 2,
            max_identities: 1,
        };
        let mut detector = AnomalyDetector::in_memory(config);
        detector.observe(&event("a", "get", "n1", "2024-01-01T00:00:00Z"));
        assert!(
            detector
                .observe(&event("b", "get", "n1", "2024-01-01T00:00:00Z"))
                .is_none()
        );
        assert_eq!(detector.identities_not_tracked(), 1);
        assert!(
            detector
                .observe(&event("a", "get", "n2", "2024-01-01T00:00:01Z"))
                .is_some()
        );
        assert!(
            detector
                .observe(&event("a", "get", "n3", "2024-01-01T00:00:02Z"))
                .is_none()
        );
        assert!(detector.profile("a").expect("profile").saturated[2]);
    }
}
