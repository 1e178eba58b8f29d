//! Maps a GKE Cloud Audit Logs entry (a LogEntry whose `protoPayload` is an AuditLog written by
//! the `k8s.io` service) to the fields of an `audit.k8s.io` Event, so the same rules apply.

use serde_json::{Map, Value as Json, json};

use crate::decode::{Skip, SkipReason};

/// The HTTP status an API server would have answered for a google.rpc status code.
fn http_status_of_rpc_code(code: i64) -> i64 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

/// Parts of a GKE `resourceName` such as `core/v1/namespaces/ns/pods/name/exec`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ResourceName {
    api_group: String,
    api_version: String,
    namespace: Option<String>,
    resource: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_resource_name(text: &str) -> ResourceName {
    let segments: Vec<&str> = text
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let mut parsed = ResourceName::default();
    if segments.len() < 3 {
        return parsed;
    }
    parsed.api_group = if segments[0] == "core" {
        String::new()
    } else {
        segments[0].to_string()
    };
    parsed.api_version = segments[1].to_string();
    let mut rest = &segments[2..];
    if rest.len() >= 3 && rest[0] == "namespaces" {
        parsed.namespace = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    parsed.resource = rest.first().map(ToString::to_string);
    parsed.name = rest.get(1).map(ToString::to_string);
    parsed.subresource = rest.get(2).map(ToString::to_string);
    parsed
}

fn is_version_token(token: &str) -> bool {
    let Some(rest) = token.strip_prefix('v') else {
        return false;
    };
    let digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    digits.len() < rest.len()
        && (digits.is_empty() || digits.starts_with("alpha") || digits.starts_with("beta"))
}

/// Reads group, version, resource and subresource out of a method name such as
/// `io.k8s.core.v1.pods.exec.create`, for entries without a resourceName.
fn fill_from_method(parsed: &mut ResourceName, method: &str) {
    let tokens: Vec<&str> = method.split('.').collect();
    let Some(version) = tokens.iter().position(|token| is_version_token(token)) else {
        return;
    };
    let last = tokens.len().saturating_sub(1);
    if version + 1 >= last {
        return;
    }
    let group = tokens
        .get(2..version)
        .map(|group| group.join("."))
        .unwrap_or_default();
    parsed.api_group = if group == "core" {
        String::new()
    } else {
        group
    };
    parsed.api_version = tokens[version].to_string();
    parsed.resource = Some(tokens[version + 1].to_string());
    if version + 2 < last {
        parsed.subresource = Some(tokens[version + 2].to_string());
    }
}

fn without_type_annotation(value: &Json) -> Json {
    match value {
        Json::Object(object) => Json::Object(
            object
                .iter()
                .filter(|(key, _)| key.as_str() != "@type")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Converts a LogEntry to an Event object and the cluster name.
pub fn gke_entry_to_event(
    entry: &Map<String, Json>,
) -> Result<(Map<String, Json>, Option<String>), Skip> {
    let Some(payload) = entry.get("protoPayload").and_then(Json::as_object) else {
        return Err(Skip {
            reason: SkipReason::MalformedField,
            detail: "protoPayload must be an object".to_string(),
        });
    };
    let method = payload
        .get("methodName")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let service = payload
        .get("serviceName")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if !method.starts_with("io.k8s.") && service != "k8s.io" {
        return Err(Skip {
            reason: SkipReason::NotKubernetes,
            detail: format!(
                "Cloud Audit Logs entry of service {service:?} method {method:?} is not a Kubernetes API call"
            ),
        });
    }
    let Some(verb) = method.rsplit('.').next().filter(|verb| !verb.is_empty()) else {
        return Err(Skip {
            reason: SkipReason::MissingField,
            detail: "GKE entry without methodName".to_string(),
        });
    };
    let resource_name = payload
        .get("resourceName")
        .and_then(Json::as_str)
        .or_else(|| {
            payload
                .get("authorizationInfo")
                .and_then(|info| info.get(0))
                .and_then(|first| first.get("resource"))
                .and_then(Json::as_str)
        })
        .unwrap_or_default();
    let mut parsed = parse_resource_name(resource_name);
    if parsed.resource.is_none() {
        fill_from_method(&mut parsed, method);
    }

    let mut event = Map::new();
    event.insert("kind".into(), json!("Event"));
    event.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
    event.insert("level".into(), json!("RequestResponse"));
    if let Some(id) = entry.get("insertId").and_then(Json::as_str) {
        event.insert("auditID".into(), json!(id));
    }
    // Cloud Audit Logs record completed requests only.
    event.insert("stage".into(), json!("ResponseComplete"));
    event.insert("verb".into(), json!(verb));
    event.insert("requestURI".into(), json!(format!("/{resource_name}")));
    if let Some(user) = payload
        .get("authenticationInfo")
        .and_then(|info| info.get("principalEmail"))
        .and_then(Json::as_str)
    {
        event.insert("user".into(), json!({ "username": user }));
    }
    if let Some(metadata) = payload.get("requestMetadata") {
        if let Some(ip) = metadata.get("callerIp").and_then(Json::as_str) {
            event.insert("sourceIPs".into(), json!([ip]));
        }
        if let Some(agent) = metadata
            .get("callerSuppliedUserAgent")
            .and_then(Json::as_str)
        {
            event.insert("userAgent".into(), json!(agent));
        }
    }
    if parsed.resource.is_some() {
        let mut object_ref = Map::new();
        let fields = [
            ("resource", &parsed.resource),
            ("namespace", &parsed.namespace),
            ("name", &parsed.name),
            ("subresource", &parsed.subresource),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                object_ref.insert(key.into(), json!(value));
            }
        }
        object_ref.insert("apiGroup".into(), json!(parsed.api_group));
        object_ref.insert("apiVersion".into(), json!(parsed.api_version));
        event.insert("objectRef".into(), Json::Object(object_ref));
    }
    let rpc_code = payload
        .get("status")
        .and_then(|status| status.get("code"))
        .and_then(Json::as_i64)
        .unwrap_or(0);
    let mut response_status = Map::new();
    response_status.insert("code".into(), json!(http_status_of_rpc_code(rpc_code)));
    if let Some(message) = payload
        .get("status")
        .and_then(|status| status.get("message"))
        .and_then(Json::as_str)
    {
        response_status.insert("reason".into(), json!(message));
    }
    event.insert("responseStatus".into(), Json::Object(response_status));
    if let Some(request) = payload.get("request") {
        event.insert("requestObject".into(), without_type_annotation(request));
    }
    if let Some(response) = payload.get("response") {
        event.insert("responseObject".into(), without_type_annotation(response));
    }
    let mut annotations = Map::new();
    let labels = entry.get("labels").and_then(Json::as_object);
    for key in [
        "authorization.k8s.io/decision",
        "authorization.k8s.io/reason",
    ] {
        if let Some(value) = labels.and_then(|labels| labels.get(key)) {
            annotations.insert(key.into(), value.clone());
        }
    }
    if !annotations.contains_key("authorization.k8s.io/decision")
        && let Some(info) = payload.get("authorizationInfo").and_then(Json::as_array)
    {
        let granted = info
            .iter()
            .all(|entry| entry.get("granted").and_then(Json::as_bool).unwrap_or(true));
        annotations.insert(
            "authorization.k8s.io/decision".into(),
            json!(if granted { "allow" } else { "forbid" }),
        );
    }
    if !annotations.is_empty() {
        event.insert("annotations".into(), Json::Object(annotations));
    }
    let timestamp = entry
        .get("timestamp")
        .or_else(|| payload.get("timestamp"))
        .or_else(|| entry.get("receiveTimestamp"));
    if let Some(timestamp) = timestamp {
        event.insert("stageTimestamp".into(), timestamp.clone());
        event.insert("requestReceivedTimestamp".into(), timestamp.clone());
    }
    let cluster = entry
        .get("resource")
        .and_then(|resource| resource.get("labels"))
        .and_then(|labels| labels.get("cluster_name"))
        .and_then(Json::as_str)
        .map(ToString::to_string);
    Ok((event, cluster))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_split_into_object_ref_parts() {
        let parsed = parse_resource_name("core/v1/namespaces/example/pods/web-1/exec");
        assert_eq!(parsed.namespace.as_deref(), Some("example"));
        assert_eq!(parsed.resource.as_deref(), Some("pods"));
        assert_eq!(parsed.name.as_deref(), Some("web-1"));
        assert_eq!(parsed.subresource.as_deref(), Some("exec"));
        let cluster_scoped =
            parse_resource_name("rbac.authorization.k8s.io/v1/clusterrolebindings/admins");
        assert_eq!(cluster_scoped.api_group, "rbac.authorization.k8s.io");
        assert_eq!(
            cluster_scoped.resource.as_deref(),
            Some("clusterrolebindings")
        );
        let mut from_method = ResourceName::default();
        fill_from_method(&mut from_method, "io.k8s.core.v1.pods.exec.create");
        assert_eq!(from_method.resource.as_deref(), Some("pods"));
        assert_eq!(from_method.subresource.as_deref(), Some("exec"));
        let mut rbac = ResourceName::default();
        fill_from_method(
            &mut rbac,
            "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
        );
        assert_eq!(rbac.api_group, "authorization.rbac");
        assert_eq!(rbac.resource.as_deref(), Some("clusterrolebindings"));
        let namespace = parse_resource_name("core/v1/namespaces/foo");
        assert_eq!(namespace.resource.as_deref(), Some("namespaces"));
        assert_eq!(namespace.name.as_deref(), Some("foo"));
    }

    #[test]
    fn a_log_entry_maps_to_audit_fields() {
        let entry = json!({
            "insertId": "abc",
            "protoPayload": {
                "methodName": "io.k8s.core.v1.pods.exec.create",
                "resourceName": "core/v1/namespaces/example/pods/web-1/exec",
                "authenticationInfo": {"principalEmail": "dev@example.com"},
                "requestMetadata": {"callerIp": "1.2.3.4", "callerSuppliedUserAgent": "kubectl/v1.28"},
                "status": {"code": 7, "message": "denied"}
            },
            "resource": {"labels": {"cluster_name": "prod"}},
            "timestamp": "2022-03-04T16:01:49.978756Z"
        });
        let (event, cluster) =
            gke_entry_to_event(entry.as_object().expect("object")).expect("maps");
        assert_eq!(event["verb"], "create");
        assert_eq!(event["objectRef"]["subresource"], "exec");
        assert_eq!(event["user"]["username"], "dev@example.com");
        assert_eq!(event["responseStatus"]["code"], 403);
        assert_eq!(cluster.as_deref(), Some("prod"));
        let other = json!({"protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.instances.insert"}});
        let skip = gke_entry_to_event(other.as_object().expect("object")).expect_err("not k8s");
        assert_eq!(skip.reason, SkipReason::NotKubernetes);
    }
}
