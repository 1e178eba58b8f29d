//! A seeded synthetic fleet with the proportions of the research note (per 2,000-pod cluster:
//! 70 nodes, 60 namespaces, 650 workloads, 550 services of which 15 LoadBalancer/NodePort, 50
//! ingresses, 700 service accounts, 90/80/100/150 cluster roles/bindings/roles/bindings, 1,000
//! secrets, 800 config maps, 60 network policies; fleet-wide 5,000 images with 200
//! vulnerabilities each) and a small, controlled rate of risky settings.

use palisade_graph::findings::{ImageFindings, Severity, VulnerabilityFinding};
use palisade_graph::object::{Object, Parsed, parse_object};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

pub const IMAGES: usize = 5_000;
pub const VULNERABILITIES_PER_IMAGE: usize = 200;
pub const CVE_POOL: usize = 80_000;

pub fn image_name(index: usize) -> String {
    format!(
        "registry.example.com/team{}/app{}:1.{}",
        index % 97,
        index,
        index % 13
    )
}

pub fn cve_name(index: usize) -> String {
    format!("CVE-2024-{index:05}")
}

fn object(value: Value) -> Object {
    match parse_object(&value, "default") {
        Ok(Parsed::Object(object)) => *object,
        other => panic!("generator produced an unusable object: {other:?}"),
    }
}

pub struct ClusterShape {
    pub pods: usize,
}

pub fn cluster_objects(cluster: usize, shape: &ClusterShape) -> Vec<Object> {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + cluster as u64);
    let mut objects = Vec::new();
    let namespaces: Vec<String> = (0..60).map(|index| format!("ns-{index:02}")).collect();
    for namespace in namespaces
        .iter()
        .chain(["kube-system".to_string(), "default".to_string()].iter())
    {
        objects.push(object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        ));
    }
    let node_count = (shape.pods / 28).max(3);
    for index in 0..node_count {
        let mut addresses = vec![
            json!({"type": "InternalIP", "address": format!("10.{cluster}.{}.{}", index / 250, index % 250)}),
        ];
        if index.is_multiple_of(10) {
            addresses
                .push(json!({"type": "ExternalIP", "address": format!("203.0.{cluster}.{index}")}));
        }
        objects.push(object(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{index:03}")},
            "spec": {"providerID": format!("aws:///eu-west-1a/i-{cluster:04}{index:06}")},
            "status": {"addresses": addresses, "nodeInfo": {"kubeletVersion": "v1.33.2"}}})));
    }
    // The cluster's ~400 images out of the fleet's 5,000.
    let images: Vec<String> = (0..400)
        .map(|index| image_name((cluster * 397 + index * 13) % IMAGES))
        .collect();
    let workloads = (shape.pods * 650 / 2000).max(5);
    for index in 0..workloads {
        let namespace = &namespaces[index % namespaces.len()];
        let name = format!("app-{index:04}");
        let account = format!("sa-{index:04}");
        objects.push(object(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": namespace}})));
        let kind = match index % 20 {
            0 => "StatefulSet",
            1 if index % 40 == 1 => "DaemonSet",
            2 => "Job",
            _ => "Deployment",
        };
        let group = if kind == "Job" { "batch/v1" } else { "apps/v1" };
        objects.push(object(json!({"apiVersion": group, "kind": kind, "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{cluster}-{index}")},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": images[index % images.len()]}]}}}})));
        if kind == "Deployment" {
            objects.push(object(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": format!("{name}-5d8f"), "namespace": namespace,
                "ownerReferences": [{"kind": "Deployment", "name": name}]},
                "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": images[index % images.len()]}]}}}})));
        }
    }
    for index in 0..shape.pods {
        let workload = index % workloads;
        let namespace = &namespaces[workload % namespaces.len()];
        let app = format!("app-{workload:04}");
        let owner = match workload % 20 {
            0 => json!({"kind": "StatefulSet", "name": app}),
            1 if workload % 40 == 1 => json!({"kind": "DaemonSet", "name": app}),
            2 => json!({"kind": "Job", "name": app}),
            _ => json!({"kind": "ReplicaSet", "name": format!("{app}-5d8f")}),
        };
        let roll: f64 = rng.random();
        let container_count = if roll < 0.45 {
            1
        } else if roll < 0.9 {
            2
        } else {
            3
        };
        let mut containers = Vec::new();
        let mut volumes = Vec::new();
        let risk: f64 = rng.random();
        for container in 0..container_count {
            let mut spec = json!({"name": if container == 0 { "main".to_string() } else { format!("sidecar-{container}") },
                "image": images[(workload + container * 7) % images.len()],
                "ports": [{"containerPort": 8080 + container, "name": format!("http-{container}")}],
                "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false}});
            if container == 0 && risk < 0.01 {
                spec["securityContext"] = json!({"privileged": true});
            }
            if container == 0 && (0.01..0.02).contains(&risk) {
                spec["volumeMounts"] = json!([{"name": "host-logs", "mountPath": "/host/var/log"}]);
                volumes.push(json!({"name": "host-logs", "hostPath": {"path": "/var/log"}}));
            }
            if container == 0 && (0.02..0.025).contains(&risk) {
                spec["volumeMounts"] =
                    json!([{"name": "runtime", "mountPath": "/run/containerd/containerd.sock"}]);
                volumes.push(json!({"name": "runtime", "hostPath": {"path": "/run/containerd/containerd.sock", "type": "Socket"}}));
            }
            containers.push(spec);
        }
        let mut spec = json!({"containers": containers, "volumes": volumes, "serviceAccountName": format!("sa-{workload:04}"),
            "nodeName": format!("node-{:03}", index % node_count)});
        if (0.025..0.028).contains(&risk) {
            spec["hostPID"] = json!(true);
            spec["containers"][0]["securityContext"] = json!({"privileged": true});
        }
        if (0.028..0.033).contains(&risk) {
            spec["hostNetwork"] = json!(true);
        }
        if (0.033..0.038).contains(&risk) {
            spec["shareProcessNamespace"] = json!(true);
        }
        if rng.random::<f64>() < 0.3 {
            spec["automountServiceAccountToken"] = json!(false);
        }
        objects.push(object(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("{app}-{index:05}"), "namespace": namespace,
            "labels": {"app": app}, "ownerReferences": [owner]}, "spec": spec})));
    }
    let services = (shape.pods * 550 / 2000).max(3);
    for index in 0..services {
        let workload = index % workloads;
        let namespace = &namespaces[workload % namespaces.len()];
        let service_type = if index.is_multiple_of(37) {
            "LoadBalancer"
        } else if index % 110 == 5 {
            "NodePort"
        } else {
            "ClusterIP"
        };
        objects.push(object(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("svc-{index:04}"), "namespace": namespace},
            "spec": {"type": service_type, "selector": {"app": format!("app-{workload:04}")}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})));
    }
    for index in 0..(services / 11) {
        let service = index * 11 + 3;
        let namespace = &namespaces[(service % workloads) % namespaces.len()];
        objects.push(object(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": format!("ing-{index:03}"), "namespace": namespace},
            "spec": {"rules": [{"host": format!("app{index}.example.com"), "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": format!("svc-{service:04}"), "port": {"number": 80}}}}]}}]}})));
    }
    // RBAC: controllers' cluster roles (read-only) and a few powerful ones.
    for index in 0..88 {
        objects.push(object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": format!("system:controller:c{index:02}")},
            "rules": [{"apiGroups": [""], "resources": ["pods", "services", "endpoints"], "verbs": ["get", "list", "watch"]}]})));
    }
    objects.push(object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cluster-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})));
    objects.push(object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "deployer"},
        "rules": [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": ["create", "get", "list"]}]})));
    for index in 0..78 {
        objects.push(object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": format!("system:controller:c{index:02}")},
            "roleRef": {"kind": "ClusterRole", "name": format!("system:controller:c{index:02}")},
            "subjects": [{"kind": "ServiceAccount", "name": format!("c{index:02}-controller"), "namespace": "kube-system"}]})));
    }
    let admin_workload = (cluster * 31) % workloads;
    objects.push(object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ci-admin"},
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": format!("sa-{admin_workload:04}"), "namespace": &namespaces[admin_workload % namespaces.len()]}]})));
    let deployer_workload = (cluster * 17 + 5) % workloads;
    objects.push(object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "deployer"},
        "roleRef": {"kind": "ClusterRole", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": format!("sa-{deployer_workload:04}"), "namespace": &namespaces[deployer_workload % namespaces.len()]}]})));
    for index in 0..100 {
        let namespace = &namespaces[index % namespaces.len()];
        let rules = match index % 10 {
            0 => json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]),
            1 => {
                json!([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}, {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
            }
            2 => json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "patch"]}]),
            _ => {
                json!([{"apiGroups": ["", "apps"], "resources": ["configmaps", "deployments"], "verbs": ["get", "list", "watch"]}])
            }
        };
        objects.push(object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": format!("role-{index:03}"), "namespace": namespace}, "rules": rules})));
    }
    for index in 0..150 {
        let role = index % 100;
        let namespace = &namespaces[role % namespaces.len()];
        // Bind a workload service account of the same namespace.
        let workload = (role % namespaces.len()) + namespaces.len() * (index / 100 + 1);
        let workload = workload % workloads;
        objects.push(object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": format!("rb-{index:03}"), "namespace": namespace},
            "roleRef": {"kind": "Role", "name": format!("role-{role:03}")},
            "subjects": [{"kind": "ServiceAccount", "name": format!("sa-{workload:04}"), "namespace": namespace}]})));
    }
    for index in 0..(shape.pods / 2) {
        let namespace = &namespaces[index % namespaces.len()];
        objects.push(object(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("secret-{index:04}"), "namespace": namespace}, "type": "Opaque"})));
    }
    for index in 0..(shape.pods * 2 / 5) {
        let namespace = &namespaces[index % namespaces.len()];
        objects.push(object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("config-{index:04}"), "namespace": namespace}})));
    }
    for namespace in namespaces.iter() {
        objects.push(object(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})));
    }
    objects
}

pub fn fleet_findings() -> Vec<ImageFindings> {
    let mut rng = StdRng::seed_from_u64(0xc0ffee);
    (0..IMAGES)
        .map(|image| {
            let vulnerabilities = (0..VULNERABILITIES_PER_IMAGE)
                .map(|slot| {
                    let cve = (image * 7919 + slot * 104_729) % CVE_POOL;
                    // Severity is a property of the CVE, not of the image.
                    let severity = match cve % 100 {
                        0..=2 => Severity::Critical,
                        3..=17 => Severity::High,
                        18..=57 => Severity::Medium,
                        _ => Severity::Low,
                    };
                    VulnerabilityFinding {
                        id: cve_name(cve),
                        severity,
                        cvss_score: Some(rng.random_range(1.0..10.0)),
                        remote_code_execution: cve.is_multiple_of(211),
                        ..VulnerabilityFinding::default()
                    }
                })
                .collect();
            ImageFindings {
                image: image_name(image),
                digest: String::new(),
                vulnerabilities,
            }
        })
        .collect()
}
