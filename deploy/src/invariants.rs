//! What must hold of every rendering of the chart, beyond the schemas: the agent's exact
//! privileges, Pod Security "restricted" for everything else, probes, resources, a network
//! policy for every workload, disruption budgets and volumes.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::manifest::{Manifest, Workload, selector_matches};
use crate::quantity::parse_quantity;

/// The capabilities the node agent gets, and no others (deploy/README.md says why each).
pub const AGENT_CAPABILITIES: [&str; 3] = ["BPF", "PERFMON", "SYS_PTRACE"];

/// Where the agent mounts node paths; only the spool is writable.
pub const AGENT_HOST_MOUNTS: [(&str, bool); 3] = [
    ("/sys/kernel/btf", true),
    ("/sys/fs/cgroup", true),
    ("/var/lib/palisade", false),
];

/// The component label of the node agent's pods.
pub const AGENT_COMPONENT: &str = "agent";

/// One broken rule, naming the object (and container) it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `Kind/name`, and the container when the rule is about one.
    pub object: String,
    /// The rule broken: agent, restricted, probes, resources, network-policy,
    /// disruption-budget, storage.
    pub rule: &'static str,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}: {}", self.object, self.rule, self.detail)
    }
}

/// What a rendering is expected to contain, beyond the rules every rendering follows.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// Capabilities the values added to the agent's (agent.extraCapabilities).
    pub extra_agent_capabilities: Vec<String>,
    /// The containerd socket the agent mounts read-only, if any.
    pub containerd_socket: Option<String>,
}

fn violation(object: &str, rule: &'static str, detail: impl Into<String>) -> Violation {
    Violation {
        object: object.to_string(),
        rule,
        detail: detail.into(),
    }
}

/// Every check; empty when the rendering is sound.
pub fn check_all(manifest: &Manifest, expectations: &Expectations) -> Vec<Violation> {
    let mut violations = Vec::new();
    for workload in manifest.workloads() {
        if workload.component() == AGENT_COMPONENT {
            violations.extend(check_agent(&workload, expectations));
        } else {
            violations.extend(check_restricted(&workload));
            violations.extend(check_probes(&workload));
        }
        violations.extend(check_resources(&workload));
    }
    violations.extend(check_network_policies(manifest));
    violations.extend(check_disruption_budgets(manifest));
    violations.extend(check_claims(manifest));
    violations
}

fn container_id(workload: &Workload<'_>, container: &Value) -> String {
    format!(
        "{} container {}",
        workload.id(),
        container["name"].as_str().unwrap_or("?")
    )
}

/// Pod Security "restricted", a read-only root filesystem, no node access.
pub fn check_restricted(workload: &Workload<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    let pod = workload.pod_spec();
    let id = workload.id();
    for field in ["hostPID", "hostNetwork", "hostIPC"] {
        if pod[field] == true {
            violations.push(violation(&id, "restricted", format!("{field} is set")));
        }
    }
    if let Some(volumes) = pod["volumes"].as_array() {
        for volume in volumes
            .iter()
            .filter(|volume| volume.get("hostPath").is_some())
        {
            violations.push(violation(
                &id,
                "restricted",
                format!("mounts hostPath volume {}", volume["name"]),
            ));
        }
    }
    let pod_context = &pod["securityContext"];
    for container in workload.containers() {
        let id = container_id(workload, container);
        let context = &container["securityContext"];
        let effective = |field: &str| {
            context
                .get(field)
                .filter(|value| !value.is_null())
                .unwrap_or(&pod_context[field])
        };
        if effective("runAsNonRoot") != true {
            violations.push(violation(&id, "restricted", "runAsNonRoot is not true"));
        }
        if effective("runAsUser") == 0 {
            violations.push(violation(&id, "restricted", "runs as user 0"));
        }
        let seccomp = effective("seccompProfile")["type"].as_str().unwrap_or("");
        if seccomp != "RuntimeDefault" && seccomp != "Localhost" {
            violations.push(violation(
                &id,
                "restricted",
                format!("seccomp profile {seccomp:?}, not RuntimeDefault"),
            ));
        }
        if context["privileged"] == true {
            violations.push(violation(&id, "restricted", "privileged"));
        }
        if context["allowPrivilegeEscalation"] != false {
            violations.push(violation(
                &id,
                "restricted",
                "allowPrivilegeEscalation is not false",
            ));
        }
        if context["readOnlyRootFilesystem"] != true {
            violations.push(violation(&id, "restricted", "root filesystem is writable"));
        }
        let dropped = string_set(&context["capabilities"]["drop"]);
        if !dropped.contains("ALL") {
            violations.push(violation(
                &id,
                "restricted",
                "does not drop ALL capabilities",
            ));
        }
        let added = string_set(&context["capabilities"]["add"]);
        if added
            .iter()
            .any(|capability| capability != "NET_BIND_SERVICE")
        {
            violations.push(violation(
                &id,
                "restricted",
                format!("adds capabilities {added:?}"),
            ));
        }
    }
    violations
}

/// The node agent: exactly its capabilities, not privileged, only its node mounts.
pub fn check_agent(workload: &Workload<'_>, expectations: &Expectations) -> Vec<Violation> {
    let mut violations = Vec::new();
    let pod = workload.pod_spec();
    let id = workload.id();
    if pod["hostPID"] != true {
        violations.push(violation(
            &id,
            "agent",
            "hostPID is needed: /proc and the kernel's process ids must be the node's",
        ));
    }
    for field in ["hostNetwork", "hostIPC"] {
        if pod[field] == true {
            violations.push(violation(&id, "agent", format!("{field} is set")));
        }
    }
    let mut expected_capabilities: BTreeSet<String> = AGENT_CAPABILITIES
        .iter()
        .map(|capability| capability.to_string())
        .collect();
    expected_capabilities.extend(expectations.extra_agent_capabilities.iter().cloned());
    let mut expected_mounts: Vec<(String, bool)> = AGENT_HOST_MOUNTS
        .iter()
        .map(|(path, read_only)| (path.to_string(), *read_only))
        .collect();
    if let Some(socket) = &expectations.containerd_socket {
        expected_mounts.push((socket.clone(), true));
    }
    let host_volumes: BTreeSet<&str> = pod["volumes"]
        .as_array()
        .map(|volumes| {
            volumes
                .iter()
                .filter(|volume| volume.get("hostPath").is_some())
                .filter_map(|volume| volume["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    for container in workload.containers() {
        let id = container_id(workload, container);
        let context = &container["securityContext"];
        if context["privileged"] != false {
            violations.push(violation(
                &id,
                "agent",
                "privileged is not explicitly false",
            ));
        }
        if context["allowPrivilegeEscalation"] != false {
            violations.push(violation(
                &id,
                "agent",
                "allowPrivilegeEscalation is not false",
            ));
        }
        if context["readOnlyRootFilesystem"] != true {
            violations.push(violation(&id, "agent", "root filesystem is writable"));
        }
        if !string_set(&context["capabilities"]["drop"]).contains("ALL") {
            violations.push(violation(&id, "agent", "does not drop ALL capabilities"));
        }
        let added = string_set(&context["capabilities"]["add"]);
        if added != expected_capabilities {
            violations.push(violation(
                &id,
                "agent",
                format!("adds capabilities {added:?}, expected exactly {expected_capabilities:?}"),
            ));
        }
        let mut mounted: Vec<(String, bool)> = container["volumeMounts"]
            .as_array()
            .map(|mounts| {
                mounts
                    .iter()
                    .filter(|mount| {
                        mount["name"]
                            .as_str()
                            .is_some_and(|name| host_volumes.contains(name))
                    })
                    .map(|mount| {
                        (
                            mount["mountPath"].as_str().unwrap_or("").to_string(),
                            mount["readOnly"] == true,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        mounted.sort();
        let mut expected = expected_mounts.clone();
        expected.sort();
        if mounted != expected {
            violations.push(violation(
                &id,
                "agent",
                format!("node mounts (path, read-only) {mounted:?}, expected {expected:?}"),
            ));
        }
    }
    violations
}

/// Readiness and liveness probes on every container, on ports it declares. The node agent
/// is exempt: it serves no endpoint to probe (see deploy/README.md).
pub fn check_probes(workload: &Workload<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    for container in workload.containers() {
        let id = container_id(workload, container);
        let declared: Vec<&Value> = container["ports"]
            .as_array()
            .map(|ports| ports.iter().collect())
            .unwrap_or_default();
        let declares = |port: &Value| {
            declared
                .iter()
                .any(|declared| &declared["name"] == port || &declared["containerPort"] == port)
        };
        for probe_name in ["readinessProbe", "livenessProbe"] {
            if container[probe_name].is_null() {
                violations.push(violation(&id, "probes", format!("no {probe_name}")));
            }
        }
        for probe_name in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let probe = &container[probe_name];
            let port = ["httpGet", "grpc", "tcpSocket"]
                .iter()
                .map(|handler| &probe[*handler]["port"])
                .find(|port| !port.is_null());
            if let Some(port) = port
                && !declares(port)
            {
                violations.push(violation(
                    &id,
                    "probes",
                    format!(
                        "{probe_name} probes port {port}, which the container does not declare"
                    ),
                ));
            }
        }
    }
    violations
}

/// CPU and memory requests and limits on every container, as quantities, requests within
/// limits.
pub fn check_resources(workload: &Workload<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    for container in workload.containers() {
        let id = container_id(workload, container);
        let resources = &container["resources"];
        for resource in ["cpu", "memory"] {
            let request = quantity_of(&resources["requests"][resource]);
            let limit = quantity_of(&resources["limits"][resource]);
            match (request, limit) {
                (Some(request), Some(limit)) if request > limit => violations.push(violation(
                    &id,
                    "resources",
                    format!("{resource} request exceeds its limit"),
                )),
                (Some(_), Some(_)) => {}
                _ => violations.push(violation(
                    &id,
                    "resources",
                    format!(
                        "{resource} needs a request and a limit that are quantities (requests {}, limits {})",
                        resources["requests"][resource], resources["limits"][resource]
                    ),
                )),
            }
        }
    }
    violations
}

fn quantity_of(value: &Value) -> Option<f64> {
    match value {
        Value::String(text) => parse_quantity(text),
        Value::Number(number) => number.as_f64(),
        _ => None,
    }
}

fn is_default_deny(policy: &Value) -> bool {
    let types = string_set(&policy["spec"]["policyTypes"]);
    let empty = |field: &str| {
        policy["spec"][field]
            .as_array()
            .is_none_or(|rules| rules.is_empty())
    };
    types.contains("Ingress") && types.contains("Egress") && empty("ingress") && empty("egress")
}

/// A default-deny policy covering every workload, and an allow policy for each.
pub fn check_network_policies(manifest: &Manifest) -> Vec<Violation> {
    let policies: Vec<&Value> = manifest.of_kind("NetworkPolicy").collect();
    let mut violations = Vec::new();
    for workload in manifest.workloads() {
        let labels = workload.pod_labels();
        let selects = |policy: &&&Value| selector_matches(&policy["spec"]["podSelector"], &labels);
        if !policies
            .iter()
            .filter(|policy| is_default_deny(policy))
            .any(|policy| selects(&policy))
        {
            violations.push(violation(
                &workload.id(),
                "network-policy",
                "no default-deny NetworkPolicy selects its pods",
            ));
        }
        if !policies
            .iter()
            .filter(|policy| !is_default_deny(policy))
            .any(|policy| selects(&policy))
        {
            violations.push(violation(
                &workload.id(),
                "network-policy",
                "no NetworkPolicy of its own selects its pods",
            ));
        }
    }
    violations
}

/// Every gateway Deployment is covered by a PodDisruptionBudget that still lets a node drain.
pub fn check_disruption_budgets(manifest: &Manifest) -> Vec<Violation> {
    let budgets: Vec<&Value> = manifest.of_kind("PodDisruptionBudget").collect();
    let mut violations = Vec::new();
    for workload in manifest.workloads() {
        let labels = workload.pod_labels();
        let is_gateway = labels
            .get("palisade.dev/gateway")
            .is_some_and(|value| value == "true");
        if workload.kind != "Deployment" || !is_gateway {
            continue;
        }
        let replicas = workload.object["spec"]["replicas"].as_i64().unwrap_or(1);
        match budgets
            .iter()
            .find(|budget| selector_matches(&budget["spec"]["selector"], &labels))
        {
            None => violations.push(violation(
                &workload.id(),
                "disruption-budget",
                "no PodDisruptionBudget selects the gateway",
            )),
            Some(budget) => {
                if let Some(min_available) = budget["spec"]["minAvailable"].as_i64()
                    && min_available >= replicas
                {
                    violations.push(violation(
                        &workload.id(),
                        "disruption-budget",
                        format!(
                            "minAvailable {min_available} with {replicas} replicas blocks every drain"
                        ),
                    ));
                }
            }
        }
    }
    violations
}

/// Every StatefulSet keeps its data on a claim of its own, mounted by its container.
pub fn check_claims(manifest: &Manifest) -> Vec<Violation> {
    let mut violations = Vec::new();
    for workload in manifest
        .workloads()
        .into_iter()
        .filter(|workload| workload.kind == "StatefulSet")
    {
        let claims: Vec<&str> = workload.object["spec"]["volumeClaimTemplates"]
            .as_array()
            .map(|claims| {
                claims
                    .iter()
                    .filter_map(|claim| claim["metadata"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if claims.is_empty() {
            violations.push(violation(
                &workload.id(),
                "storage",
                "no volumeClaimTemplates",
            ));
        }
        for claim in claims {
            let mounted = workload.containers().iter().any(|container| {
                container["volumeMounts"]
                    .as_array()
                    .is_some_and(|mounts| mounts.iter().any(|mount| mount["name"] == claim))
            });
            if !mounted {
                violations.push(violation(
                    &workload.id(),
                    "storage",
                    format!("claim {claim} is mounted by no container"),
                ));
            }
        }
    }
    violations
}

fn string_set(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
