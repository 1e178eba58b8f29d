//! The invariant checks on a small sound release, and on each way of breaking it: every check
//! must be able to fail.

use palisade_deploy::Manifest;
use palisade_deploy::invariants::{Expectations, Violation, check_all};
use serde_json::{Value, json};

fn restricted_container(name: &str) -> Value {
    json!({
        "name": name,
        "image": "palisade:test",
        "args": ["up", "--config", "/etc/palisade/palisade.toml"],
        "ports": [
            {"name": "grpc", "containerPort": 7400},
            {"name": "http", "containerPort": 7401}
        ],
        "readinessProbe": {"grpc": {"port": 7400}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "2", "memory": "1Gi"}
        },
        "securityContext": {
            "privileged": false,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]}
        },
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/palisade"}]
    })
}

fn restricted_pod_context() -> Value {
    json!({"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}})
}

fn labels(component: &str) -> Value {
    let mut labels =
        json!({"app.kubernetes.io/instance": "t", "app.kubernetes.io/component": component});
    if component == "gateway" {
        labels["palisade.dev/gateway"] = json!("true");
    }
    labels
}

fn sound_release() -> Vec<Value> {
    let agent = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "t-agent"},
        "spec": {"template": {"metadata": {"labels": labels("agent")}, "spec": {
            "hostPID": true,
            "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"}},
            "containers": [{
                "name": "agent",
                "args": ["agent"],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"}
                },
                "securityContext": {
                    "privileged": false,
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"], "add": ["BPF", "PERFMON", "SYS_PTRACE"]}
                },
                "volumeMounts": [
                    {"name": "btf", "mountPath": "/sys/kernel/btf", "readOnly": true},
                    {"name": "cgroup", "mountPath": "/sys/fs/cgroup", "readOnly": true},
                    {"name": "spool", "mountPath": "/var/lib/palisade"},
                    {"name": "tmp", "mountPath": "/tmp"}
                ]
            }],
            "volumes": [
                {"name": "btf", "hostPath": {"path": "/sys/kernel/btf"}},
                {"name": "cgroup", "hostPath": {"path": "/sys/fs/cgroup"}},
                {"name": "spool", "hostPath": {"path": "/var/lib/palisade/agent"}},
                {"name": "tmp", "emptyDir": {}}
            ]
        }}}
    });
    let gateway = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "t-gateway"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": labels("gateway")}, "spec": {
            "securityContext": restricted_pod_context(),
            "containers": [restricted_container("palisade")]
        }}}
    });
    let search = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "t-search"},
        "spec": {
            "template": {"metadata": {"labels": labels("search")}, "spec": {
                "securityContext": restricted_pod_context(),
                "containers": [restricted_container("palisade")]
            }},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}]
        }
    });
    let budget = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "t-gateway"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/component": "gateway"}}}
    });
    let deny = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "t-deny"},
        "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "t"}}, "policyTypes": ["Ingress", "Egress"]}
    });
    let allow = |name: &str, components: &[&str]| {
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name},
            "spec": {
                "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": components}]},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": 7400}]}]
            }
        })
    };
    vec![
        agent,
        gateway,
        search,
        budget,
        deny,
        allow("t-agent", &["agent"]),
        allow("t-control", &["gateway", "search"]),
    ]
}

fn violations_of(objects: Vec<Value>) -> Vec<Violation> {
    let manifest = Manifest::from_objects(objects).expect("serialisable");
    check_all(&manifest, &Expectations::default())
}

/// Breaks the sound release with `mutate` and returns the rules that then fail.
fn rules_broken_by(mutate: impl FnOnce(&mut Vec<Value>)) -> Vec<&'static str> {
    let mut objects = sound_release();
    mutate(&mut objects);
    violations_of(objects)
        .into_iter()
        .map(|violation| violation.rule)
        .collect()
}

fn agent_container(objects: &mut [Value]) -> &mut Value {
    &mut objects[0]["spec"]["template"]["spec"]["containers"][0]
}

fn gateway_container(objects: &mut [Value]) -> &mut Value {
    &mut objects[1]["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn the_sound_release_passes_every_check() {
    let violations = violations_of(sound_release());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn a_privileged_agent_or_one_more_capability_is_refused() {
    assert_eq!(
        rules_broken_by(
            |objects| agent_container(objects)["securityContext"]["privileged"] = json!(true)
        ),
        ["agent"]
    );
    assert_eq!(
        rules_broken_by(|objects| {
            agent_container(objects)["securityContext"]["capabilities"]["add"] =
                json!(["BPF", "PERFMON", "SYS_PTRACE", "SYS_ADMIN"]);
        }),
        ["agent"]
    );
    assert_eq!(
        rules_broken_by(|objects| {
            agent_container(objects)["securityContext"]["capabilities"]["add"] =
                json!(["BPF", "PERFMON"]);
        }),
        ["agent"]
    );
    assert_eq!(
        rules_broken_by(
            |objects| objects[0]["spec"]["template"]["spec"]["hostNetwork"] = json!(true)
        ),
        ["agent"]
    );
}

#[test]
fn a_writable_or_unexpected_node_mount_of_the_agent_is_refused() {
    assert_eq!(
        rules_broken_by(|objects| {
            agent_container(objects)["volumeMounts"][1]["readOnly"] = json!(false);
        }),
        ["agent"]
    );
    assert_eq!(
        rules_broken_by(|objects| {
            objects[0]["spec"]["template"]["spec"]["volumes"][3] =
                json!({"name": "tmp", "hostPath": {"path": "/"}});
        }),
        ["agent"]
    );
}

#[test]
fn control_plane_pods_must_meet_restricted() {
    assert_eq!(
        rules_broken_by(
            |objects| gateway_container(objects)["securityContext"]["readOnlyRootFilesystem"] =
                json!(false)
        ),
        ["restricted"]
    );
    assert_eq!(
        rules_broken_by(|objects| {
            objects[1]["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"] =
                json!("Unconfined");
        }),
        ["restricted"]
    );
    assert_eq!(
        rules_broken_by(|objects| {
            gateway_container(objects)["securityContext"]["capabilities"]["add"] =
                json!(["NET_ADMIN"]);
        }),
        ["restricted"]
    );
    assert_eq!(
        rules_broken_by(|objects| objects[1]["spec"]["template"]["spec"]["hostPID"] = json!(true)),
        ["restricted"]
    );
}

#[test]
fn missing_probes_or_probes_on_undeclared_ports_are_refused() {
    assert_eq!(
        rules_broken_by(|objects| {
            gateway_container(objects)
                .as_object_mut()
                .expect("container")
                .remove("livenessProbe");
        }),
        ["probes"]
    );
    assert_eq!(
        rules_broken_by(|objects| gateway_container(objects)["readinessProbe"] =
            json!({"grpc": {"port": 9999}})),
        ["probes"]
    );
}

#[test]
fn resources_need_requests_and_limits_that_are_quantities_in_order() {
    assert_eq!(
        rules_broken_by(|objects| {
            gateway_container(objects)["resources"]["limits"]
                .as_object_mut()
                .expect("limits")
                .remove("memory");
        }),
        ["resources"]
    );
    assert_eq!(
        rules_broken_by(
            |objects| agent_container(objects)["resources"]["requests"]["cpu"] = json!("lots")
        ),
        ["resources"]
    );
    assert_eq!(
        rules_broken_by(
            |objects| gateway_container(objects)["resources"]["requests"]["cpu"] = json!("3")
        ),
        ["resources"]
    );
}

#[test]
fn every_workload_needs_the_default_deny_and_a_policy_of_its_own() {
    assert_eq!(
        rules_broken_by(|objects| {
            objects.retain(|object| {
                object["kind"] != "NetworkPolicy" || object["metadata"]["name"] != "t-agent"
            });
        }),
        ["network-policy"]
    );
    assert_eq!(
        rules_broken_by(|objects| {
            objects.retain(|object| object["metadata"]["name"] != "t-deny");
        }),
        ["network-policy", "network-policy", "network-policy"]
    );
}

#[test]
fn the_gateway_needs_a_budget_that_still_lets_nodes_drain() {
    assert_eq!(
        rules_broken_by(|objects| objects.retain(|object| object["kind"] != "PodDisruptionBudget")),
        ["disruption-budget"]
    );
    assert_eq!(
        rules_broken_by(|objects| objects[3]["spec"]["minAvailable"] = json!(2)),
        ["disruption-budget"]
    );
}

#[test]
fn stateful_sets_keep_their_data_on_mounted_claims() {
    assert_eq!(
        rules_broken_by(|objects| {
            objects[2]["spec"]
                .as_object_mut()
                .expect("spec")
                .remove("volumeClaimTemplates");
        }),
        ["storage"]
    );
    assert_eq!(
        rules_broken_by(
            |objects| objects[2]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] =
                json!("index")
        ),
        ["storage"]
    );
}
