//! Rule scoping: a rule (or every rule with a tag) can be limited to, or kept away from,
//! Kubernetes namespaces, pods with given labels, and nodes. Scopes are configured in the
//! agent's TOML configuration:
//!
//! ```toml
//! [[scope]]
//! rules = ["Terminal shell in container"]   # rule names; or tags = ["shell"]
//! namespaces = ["payments", "shop-*"]       # globs; only these namespaces
//! exclude_namespaces = ["kube-system"]
//! pod_labels = { tier = "frontend" }        # every label must match
//! nodes = ["worker-*"]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Detection;
use crate::error::AgentError;

/// One scope entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RuleScope {
    /// Rule names it applies to.
    pub rules: Vec<String>,
    /// Rule tags it applies to.
    pub tags: Vec<String>,
    /// Namespace globs the rule is limited to (empty: any, host included).
    pub namespaces: Vec<String>,
    /// Namespace globs where the rule never fires.
    pub exclude_namespaces: Vec<String>,
    /// Pod labels that must all match.
    pub pod_labels: BTreeMap<String, String>,
    /// Node name globs the rule is limited to.
    pub nodes: Vec<String>,
}

/// The scope file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ScopeFile {
    /// Scope entries.
    pub scope: Vec<RuleScope>,
}

fn glob_matches(pattern: &str, text: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|glob| glob.matches(text))
}

impl RuleScope {
    fn applies_to(&self, detection: &Detection) -> bool {
        self.rules.contains(&detection.rule)
            || self.tags.iter().any(|tag| detection.tags.contains(tag))
    }

    fn admits(&self, detection: &Detection) -> bool {
        let namespace = detection.namespace.as_deref();
        if !self.namespaces.is_empty()
            && !namespace.is_some_and(|namespace| {
                self.namespaces
                    .iter()
                    .any(|pattern| glob_matches(pattern, namespace))
            })
        {
            return false;
        }
        if let Some(namespace) = namespace
            && self
                .exclude_namespaces
                .iter()
                .any(|pattern| glob_matches(pattern, namespace))
        {
            return false;
        }
        if !self
            .pod_labels
            .iter()
            .all(|(key, value)| detection.pod_labels.get(key) == Some(value))
        {
            return false;
        }
        if !self.nodes.is_empty()
            && !self
                .nodes
                .iter()
                .any(|pattern| glob_matches(pattern, &detection.hostname))
        {
            return false;
        }
        true
    }
}

/// Every scope entry; a detection passes when every entry that applies to its rule admits it.
#[derive(Debug, Clone, Default)]
pub struct Scopes {
    entries: Vec<RuleScope>,
}

impl Scopes {
    /// Scopes from entries.
    pub fn new(entries: Vec<RuleScope>) -> Self {
        Self { entries }
    }

    /// Parses a TOML scope file's text; `name` is used in errors.
    pub fn parse(name: &str, text: &str) -> Result<Self, AgentError> {
        let file: ScopeFile = toml::from_str(text).map_err(|error| AgentError::Config {
            source_name: name.to_string(),
            message: error.to_string(),
        })?;
        for (index, entry) in file.scope.iter().enumerate() {
            if entry.rules.is_empty() && entry.tags.is_empty() {
                return Err(AgentError::Config {
                    source_name: name.to_string(),
                    message: format!("scope entry {} names no rules and no tags", index + 1),
                });
            }
        }
        Ok(Self::new(file.scope))
    }

    /// Whether the detection is in scope.
    pub fn admits(&self, detection: &Detection) -> bool {
        self.entries
            .iter()
            .filter(|entry| entry.applies_to(detection))
            .all(|entry| entry.admits(detection))
    }

    /// Whether no scope is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
