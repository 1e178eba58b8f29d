//! What a field name in a query means.
//!
//! Palisade's own names (`rule`, `priority`, `namespace`, `cve` ...) come first; any other
//! dotted name is a Falco field (`proc.name`, `k8s.ns.name`, `ka.user.name`) looked up in the
//! alert's output fields. `tenant` is never a field: the server sets it from the credential.

use super::parser::{Match, MatchValue, Node, QueryError};

/// How a field is searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldTarget {
    /// Tokenized text (`output`, `rule`, `description`).
    Text(&'static str),
    /// Exact values (one of schema::KEYWORD_FIELDS).
    Keyword(&'static str),
    /// Technique or tactic.
    Mitre,
    /// Priority or severity, by name or rank.
    Severity,
    Time,
    /// A key of the output fields (or a finding's details).
    OutputField(String),
}

/// Names of the text fields free text searches.
pub const FREE_TEXT_FIELDS: &[&str] = &["output", "rule", "description"];

const NAMES: &[(&str, FieldTarget)] = &[
    ("output", FieldTarget::Text("output")),
    ("message", FieldTarget::Text("output")),
    ("title", FieldTarget::Text("output")),
    ("rule", FieldTarget::Text("rule")),
    ("description", FieldTarget::Text("description")),
    ("id", FieldTarget::Keyword("id")),
    ("kind", FieldTarget::Keyword("kind")),
    ("source", FieldTarget::Keyword("source")),
    ("tag", FieldTarget::Keyword("tags")),
    ("tags", FieldTarget::Keyword("tags")),
    ("cluster", FieldTarget::Keyword("cluster")),
    ("namespace", FieldTarget::Keyword("namespace")),
    ("pod", FieldTarget::Keyword("pod")),
    ("image", FieldTarget::Keyword("image")),
    ("node", FieldTarget::Keyword("node")),
    ("hostname", FieldTarget::Keyword("node")),
    ("container", FieldTarget::Keyword("container")),
    ("technique", FieldTarget::Keyword("technique")),
    ("tactic", FieldTarget::Keyword("tactic")),
    ("mitre", FieldTarget::Mitre),
    ("cve", FieldTarget::Keyword("cve")),
    ("vulnerability", FieldTarget::Keyword("cve")),
    ("package", FieldTarget::Keyword("package")),
    ("control", FieldTarget::Keyword("control")),
    ("resolved", FieldTarget::Keyword("resolved")),
    ("priority", FieldTarget::Severity),
    ("severity", FieldTarget::Severity),
    ("time", FieldTarget::Time),
    ("@timestamp", FieldTarget::Time),
];

/// The names a query may use besides dotted Falco field names, for error messages.
pub fn known_names() -> String {
    let names: Vec<&str> = NAMES.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// Resolves a field name as written in a query.
pub fn resolve(name: &str) -> Result<FieldTarget, String> {
    if let Some((_, target)) = NAMES.iter().find(|(known, _)| *known == name) {
        return Ok(target.clone());
    }
    if name == "tenant" || name == "tenant_id" {
        return Err(
            "tenant cannot be queried: every query is confined to the tenant of your credential"
                .to_string(),
        );
    }
    let dotted = name.contains('.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..");
    if dotted {
        return Ok(FieldTarget::OutputField(name.to_string()));
    }
    Err(format!(
        "unknown field {name:?}: use one of {} or a dotted Falco field name such as proc.name \
         or k8s.ns.name (quote the text to search it literally)",
        known_names()
    ))
}

/// Checks every field name of a parsed query.
pub fn check_fields(node: &Node) -> Result<(), QueryError> {
    match node {
        Node::All => Ok(()),
        Node::And(children) | Node::Or(children) => children.iter().try_for_each(check_fields),
        Node::Not(child) => check_fields(child),
        Node::Match(clause) => check_clause(clause).map(|_| ()),
    }
}

/// The target of one clause, with value kinds the target cannot take refused.
pub fn check_clause(clause: &Match) -> Result<Option<FieldTarget>, QueryError> {
    let Some(name) = &clause.field else {
        return match clause.value {
            MatchValue::Range { .. } | MatchValue::Compare(..) | MatchValue::Exists => {
                Err(QueryError {
                    column: clause.column,
                    message: "ranges and comparisons need a field, e.g. time:>=now-1h".into(),
                })
            }
            _ => Ok(None),
        };
    };
    let target = resolve(name).map_err(|message| QueryError {
        column: clause.column,
        message,
    })?;
    let refused = match (&target, &clause.value) {
        (FieldTarget::Text(_), MatchValue::Range { .. } | MatchValue::Compare(..)) => {
            Some("text fields take words and phrases, not ranges")
        }
        (FieldTarget::Severity | FieldTarget::Time, MatchValue::Wildcard(_)) => {
            Some("wildcards apply to text and keyword fields, not to times and severities")
        }
        _ => None,
    };
    if let Some(message) = refused {
        return Err(QueryError {
            column: clause.column,
            message: format!("{name}: {message}"),
        });
    }
    Ok(Some(target))
}
