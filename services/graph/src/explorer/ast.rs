//! The explorer query: the JSON query-builder structure, which the compact text form parses to.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A query: an entity type, conditions on it (including conditions on related entities),
/// related entity types to return with each result, and a result limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Entity kind to return (`pod`, `image`, `service_account` ...).
    pub entity: String,
    /// Conditions; none means every entity of the kind.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Related entity kinds listed with each result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Maximum results returned (the total is still counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A condition on an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// All must hold.
    And {
        /// Conditions.
        and: Vec<Condition>,
    },
    /// One must hold.
    Or {
        /// Conditions.
        or: Vec<Condition>,
    },
    /// Must not hold.
    Not {
        /// Condition.
        not: Box<Condition>,
    },
    /// A related entity of a kind exists that satisfies its own conditions.
    Related {
        /// The related entity.
        related: Related,
    },
    /// A property comparison.
    Property {
        /// Property name (`name`, `namespace`, `cluster` and `kind` are always available).
        property: String,
        /// Operator: `=`, `!=`, `>`, `>=`, `<`, `<=`, `~` (contains), `exists`.
        #[serde(default = "default_op")]
        op: String,
        /// Value compared with; `true` when omitted.
        #[serde(default = "default_value")]
        value: Value,
    },
}

fn default_op() -> String {
    "=".to_string()
}

fn default_value() -> Value {
    Value::Bool(true)
}

/// A related-entity condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Related {
    /// Kind of the related entity.
    pub entity: String,
    /// Its conditions.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Box<Condition>>,
}
