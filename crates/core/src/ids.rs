//! Identifiers: tenants, and the stable ids of alerts.

use std::fmt;

use palisade_proto::v1::Alert;
use sha2::{Digest, Sha256};

use crate::error::{CoreError, CoreResult};

/// The tenant that exists from the first start, owner of the first admin token.
pub const DEFAULT_TENANT: &str = "default";

/// A tenant's id: 1 to 63 characters of lower-case ASCII letters, digits and '-', starting with
/// a letter or digit (the same rules as a Kubernetes DNS label, so it can name resources).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Checks `value` against the tenant id rules.
    pub fn new(value: impl Into<String>) -> CoreResult<Self> {
        let value = value.into();
        check_label("tenant id", &value)?;
        Ok(TenantId(value))
    }

    /// The `default` tenant.
    pub fn default_tenant() -> Self {
        TenantId(DEFAULT_TENANT.to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl TryFrom<String> for TenantId {
    type Error = CoreError;
    fn try_from(value: String) -> CoreResult<Self> {
        TenantId::new(value)
    }
}

impl From<TenantId> for String {
    fn from(tenant: TenantId) -> String {
        tenant.0
    }
}

/// Checks a DNS-label-like id: 1 to 63 lower-case ASCII letters, digits and '-', not starting
/// or ending with '-'. `what` names the id in the error.
fn check_label(what: &str, value: &str) -> CoreResult<()> {
    let valid_length = (1..=63).contains(&value.len());
    let valid_chars = value
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    let valid_edges = !value.starts_with('-') && !value.ends_with('-');
    if valid_length && valid_chars && valid_edges {
        return Ok(());
    }
    Err(CoreError::InvalidArgument(format!(
        "{what} {value:?} must be 1-63 lower-case letters, digits or '-', not starting or ending with '-'"
    )))
}

/// Checks a cluster id (the same rules as a tenant id).
pub fn validate_cluster_id(value: &str) -> CoreResult<()> {
    check_label("cluster id", value)
}

/// Length in hex characters of derived alert ids (128 bits).
const ALERT_ID_HEX_LEN: usize = 32;

/// Derives the stable id of an alert that arrived without one, from what identifies the
/// detection: source, rule, event time, host and the output fields (in key order). The same
/// alert re-sent gives the same id; the tenant is not part of it because ids are scoped by
/// tenant wherever they are stored.
pub fn derive_alert_id(alert: &Alert) -> String {
    let mut hasher = Sha256::new();
    let mut feed = |part: &str| {
        // Length-prefixed so that ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    };
    feed(&alert.source);
    feed(&alert.rule);
    let time = alert
        .time
        .as_ref()
        .map(|time| format!("{}.{:09}", time.seconds, time.nanos))
        .unwrap_or_default();
    feed(&time);
    feed(&alert.hostname);
    feed(&alert.cluster_id);
    let mut keys: Vec<&String> = alert.output_fields.keys().collect();
    keys.sort();
    for key in keys {
        feed(key);
        feed(&alert.output_fields[key]);
    }
    if alert.output_fields.is_empty() {
        // Without fields the output line is what tells two detections apart.
        feed(&alert.output);
    }
    let digest = hasher.finalize();
    let mut id = hex::encode(digest);
    id.truncate(ALERT_ID_HEX_LEN);
    id
}

/// Checks an id given by a producer: 1 to 128 characters of ASCII letters, digits, '-', '_',
/// '.' or ':'. Ids are used as storage and index keys, so anything else is refused.
pub fn validate_record_id(id: &str) -> CoreResult<()> {
    let valid_length = (1..=128).contains(&id.len());
    let valid_chars = id
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':'));
    if valid_length && valid_chars {
        return Ok(());
    }
    Err(CoreError::InvalidArgument(format!(
        "id {:?} must be 1-128 characters of letters, digits, '-', '_', '.', ':'",
        id.chars().take(140).collect::<String>()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_proto::prost_types::Timestamp;

    fn sample_alert() -> Alert {
        Alert {
            source: "syscall".into(),
            rule: "Terminal shell in container".into(),
            time: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            hostname: "node-1".into(),
            output_fields: [
                ("proc.name".to_string(), "bash".to_string()),
                ("container.id".to_string(), "abc".to_string()),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn derived_id_is_stable_and_sensitive_to_every_identifying_part() {
        let alert = sample_alert();
        let id = derive_alert_id(&alert);
        assert_eq!(id.len(), ALERT_ID_HEX_LEN);
        assert_eq!(id, derive_alert_id(&alert.clone()));

        let mut other_rule = alert.clone();
        other_rule.rule.push('x');
        let mut other_time = alert.clone();
        other_time.time = Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 6,
        });
        let mut other_field = alert.clone();
        other_field
            .output_fields
            .insert("proc.name".into(), "sh".into());
        let mut other_host = alert.clone();
        other_host.hostname = "node-2".into();
        for variant in [other_rule, other_time, other_field, other_host] {
            assert_ne!(derive_alert_id(&variant), id);
        }
    }

    #[test]
    fn derived_id_ignores_tenant_and_output_fields_order() {
        let alert = sample_alert();
        let mut with_tenant = alert.clone();
        with_tenant.tenant_id = "acme".into();
        assert_eq!(derive_alert_id(&with_tenant), derive_alert_id(&alert));
    }

    #[test]
    fn tenant_ids_follow_dns_label_rules() {
        assert!(TenantId::new("acme-prod-1").is_ok());
        for bad in [
            "",
            "Acme",
            "-acme",
            "acme-",
            "ac me",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn record_ids_are_bounded_and_plain() {
        assert!(validate_record_id("abc-123_x.y:z").is_ok());
        assert!(validate_record_id("").is_err());
        assert!(validate_record_id("a b").is_err());
        assert!(validate_record_id(&"a".repeat(129)).is_err());
    }
}
