//! Rendered Kubernetes objects, and the questions the checks ask of them.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::DeployError;

/// The objects of one rendering, in helm's order, with the text they came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    text: String,
    objects: Vec<Value>,
}

/// A Deployment, StatefulSet or DaemonSet: what runs pods.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    /// Deployment, StatefulSet or DaemonSet.
    pub kind: &'a str,
    /// metadata.name.
    pub name: &'a str,
    /// The whole object.
    pub object: &'a Value,
}

const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

impl Manifest {
    /// Parses multi-document YAML; empty documents (templates that rendered nothing) are left out.
    pub fn parse(text: &str) -> Result<Manifest, DeployError> {
        let mut objects = Vec::new();
        for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(document).map_err(|error| DeployError::Yaml {
                index,
                message: error.to_string(),
            })?;
            if !value.is_null() {
                objects.push(value);
            }
        }
        Ok(Manifest {
            text: text.to_string(),
            objects,
        })
    }

    /// A manifest of these objects, written out as multi-document YAML.
    pub fn from_objects(objects: Vec<Value>) -> Result<Manifest, DeployError> {
        let mut text = String::new();
        for (index, object) in objects.iter().enumerate() {
            let document = serde_yaml_ng::to_string(object).map_err(|error| DeployError::Yaml {
                index,
                message: error.to_string(),
            })?;
            text.push_str("---\n");
            text.push_str(&document);
        }
        Ok(Manifest { text, objects })
    }

    /// The YAML as rendered.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every object.
    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    /// Objects of one kind.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |object| object["kind"] == kind)
    }

    /// The object of this kind and name.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
    }

    /// Deployments, StatefulSets and DaemonSets.
    pub fn workloads(&self) -> Vec<Workload<'_>> {
        self.objects
            .iter()
            .filter_map(|object| {
                let kind = object["kind"].as_str()?;
                WORKLOAD_KINDS.contains(&kind).then_some(Workload {
                    kind,
                    name: object["metadata"]["name"].as_str().unwrap_or(""),
                    object,
                })
            })
            .collect()
    }
}

impl Workload<'_> {
    /// `Kind/name`, for messages.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// The pod template's spec.
    pub fn pod_spec(&self) -> &Value {
        &self.object["spec"]["template"]["spec"]
    }

    /// The pod template's labels.
    pub fn pod_labels(&self) -> Map<String, Value> {
        self.object["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    /// Containers and init containers.
    pub fn containers(&self) -> Vec<&Value> {
        let spec = self.pod_spec();
        ["initContainers", "containers"]
            .iter()
            .filter_map(|field| spec[*field].as_array())
            .flatten()
            .collect()
    }

    /// The value of `app.kubernetes.io/component` on its pods.
    pub fn component(&self) -> String {
        self.pod_labels()
            .get("app.kubernetes.io/component")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }
}

/// Whether a Kubernetes label selector (`matchLabels`, `matchExpressions`) selects these
/// labels. An empty selector selects everything.
pub fn selector_matches(selector: &Value, labels: &Map<String, Value>) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let labels_match = selector["matchLabels"]
        .as_object()
        .map(|wanted| {
            wanted
                .iter()
                .all(|(key, value)| label(key) == value.as_str())
        })
        .unwrap_or(true);
    let expressions_match = selector["matchExpressions"]
        .as_array()
        .map(|expressions| {
            expressions.iter().all(|expression| {
                let key = expression["key"].as_str().unwrap_or("");
                let values: Vec<&str> = expression["values"]
                    .as_array()
                    .map(|values| values.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match expression["operator"].as_str() {
                    Some("In") => label(key).is_some_and(|value| values.contains(&value)),
                    Some("NotIn") => !label(key).is_some_and(|value| values.contains(&value)),
                    Some("Exists") => label(key).is_some(),
                    Some("DoesNotExist") => label(key).is_none(),
                    _ => false,
                }
            })
        })
        .unwrap_or(true);
    labels_match && expressions_match
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let pod = labels(json!({"app": "palisade", "component": "agent"}));
        assert!(selector_matches(&json!({}), &pod));
        assert!(selector_matches(
            &json!({"matchLabels": {"app": "palisade"}}),
            &pod
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"app": "other"}}),
            &pod
        ));
        let in_set = json!({"matchExpressions": [{"key": "component", "operator": "In", "values": ["agent", "x"]}]});
        assert!(selector_matches(&in_set, &pod));
        let not_in = json!({"matchExpressions": [{"key": "component", "operator": "NotIn", "values": ["agent"]}]});
        assert!(!selector_matches(&not_in, &pod));
        let missing = json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]});
        assert!(!selector_matches(&missing, &pod));
        let absent = json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]});
        assert!(selector_matches(&absent, &pod));
    }

    #[test]
    fn empty_documents_are_left_out_and_bad_yaml_names_its_document() {
        let manifest = Manifest::parse("---\n# only a comment\n---\nkind: A\n---\nkind: B\n")
            .expect("valid YAML");
        assert_eq!(manifest.objects().len(), 2);
        let error = Manifest::parse("kind: A\n---\nkind: [unclosed\n").expect_err("bad YAML");
        assert!(error.to_string().contains("document 1"), "{error}");
    }
}
