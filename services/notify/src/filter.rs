//! Which alerts a target receives: its own tenant's only, at or above its priority, and of its
//! rules and tags when it names some.

use std::collections::HashSet;

use palisade_core::config::NotifyTarget;
use palisade_proto::v1::Alert;

/// A target's choice of alerts.
#[derive(Debug, Clone)]
pub struct AlertFilter {
    tenant: String,
    min_priority: i32,
    rules: HashSet<String>,
    tags: HashSet<String>,
}

impl AlertFilter {
    /// The filter a target's configuration describes.
    pub fn for_target(target: &NotifyTarget) -> AlertFilter {
        AlertFilter {
            tenant: target.tenant.clone(),
            min_priority: target.min_priority() as i32,
            rules: target.rules.iter().cloned().collect(),
            tags: target.tags.iter().cloned().collect(),
        }
    }

    /// Whether the target receives `alert`.
    pub fn matches(&self, alert: &Alert) -> bool {
        // The tenant check comes first and never depends on configuration: an alert of
        // another tenant is never sent, whatever the other filters say.
        if alert.tenant_id != self.tenant {
            return false;
        }
        if alert.priority < self.min_priority {
            return false;
        }
        if !self.rules.is_empty() && !self.rules.contains(&alert.rule) {
            return false;
        }
        if !self.tags.is_empty() && !alert.tags.iter().any(|tag| self.tags.contains(tag)) {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use palisade_core::config::NotifyKind;
    use palisade_proto::v1::Priority;

    use super::*;

    fn alert(tenant: &str, priority: Priority, rule: &str, tags: &[&str]) -> Alert {
        Alert {
            tenant_id: tenant.into(),
            priority: priority as i32,
            rule: rule.into(),
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn tenant_priority_rules_and_tags_all_have_to_match() {
        let mut target = NotifyTarget::new("t", "acme", NotifyKind::Syslog);
        target.min_priority = "warning".into();
        let filter = AlertFilter::for_target(&target);
        assert!(filter.matches(&alert("acme", Priority::Warning, "r", &[])));
        assert!(filter.matches(&alert("acme", Priority::Emergency, "r", &[])));
        assert!(!filter.matches(&alert("acme", Priority::Notice, "r", &[])));
        assert!(!filter.matches(&alert("other", Priority::Critical, "r", &[])));
        assert!(!filter.matches(&alert("", Priority::Critical, "r", &[])));

        target.rules = vec!["Terminal shell in container".into()];
        target.tags = vec!["T1059".into(), "mitre_execution".into()];
        let narrow = AlertFilter::for_target(&target);
        assert!(narrow.matches(&alert(
            "acme",
            Priority::Error,
            "Terminal shell in container",
            &["container", "T1059"]
        )));
        assert!(!narrow.matches(&alert(
            "acme",
            Priority::Error,
            "Terminal shell in container",
            &["container"]
        )));
        assert!(!narrow.matches(&alert("acme", Priority::Error, "Other rule", &["T1059"])));
    }
}
