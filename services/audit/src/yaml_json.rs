//! Converts YAML nodes to JSON values with YAML 1.2 core-schema scalar types, for test fixtures
//! and configuration written in YAML.

use palisade_rules::yaml::{Node, NodeValue};
use serde_json::Value as Json;

/// The JSON value of a YAML node: plain scalars become null, booleans or numbers when they
/// read as such; quoted scalars stay strings.
pub fn yaml_to_json(node: &Node) -> Json {
    match &node.value {
        NodeValue::Scalar { text, quoted } => {
            if *quoted {
                return Json::String(text.clone());
            }
            if node.is_null() {
                return Json::Null;
            }
            match text.as_str() {
                "true" | "True" | "TRUE" => return Json::Bool(true),
                "false" | "False" | "FALSE" => return Json::Bool(false),
                _ => {}
            }
            if let Ok(integer) = text.parse::<i64>() {
                return Json::from(integer);
            }
            if let Ok(float) = text.parse::<f64>()
                && float.is_finite()
                && text.contains('.')
            {
                return Json::from(float);
            }
            Json::String(text.clone())
        }
        NodeValue::Sequence(items) => Json::Array(items.iter().map(yaml_to_json).collect()),
        NodeValue::Mapping(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, value)| {
                    let key = match &key.value {
                        NodeValue::Scalar { text, .. } => text.clone(),
                        _ => yaml_to_json(key).to_string(),
                    };
                    (key, yaml_to_json(value))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_get_core_schema_types() {
        let documents = palisade_rules::yaml::parse_documents(
            "{a: 1, b: '1', c: true, d: ~, e: 10.0.0.5, f: 1.5, g: [x]}",
        )
        .expect("yaml");
        let json = yaml_to_json(&documents[0]);
        assert_eq!(
            json,
            serde_json::json!({"a": 1, "b": "1", "c": true, "d": null, "e": "10.0.0.5", "f": 1.5, "g": ["x"]})
        );
    }
}
