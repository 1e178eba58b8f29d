//! Effective RBAC: resourceNames, aggregated ClusterRoles, and the escalation edges
//! KubeHound does not compute.

mod common;

use palisade_graph::derive::derive_cluster;
use palisade_graph::inventory::ClusterInventory;
use palisade_graph::model::EdgeKind;
use palisade_graph::source::{SourceLimits, parse_bytes};

fn graph(manifest: &str) -> palisade_graph::derive::Derived {
    let (objects, problems) = parse_bytes(manifest.as_bytes(), &SourceLimits::default());
    assert!(problems.is_empty(), "{problems:?}");
    let mut inventory = ClusterInventory::new();
    for object in objects {
        inventory.upsert(object);
    }
    derive_cluster("c", &inventory)
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec: {containers: [{name: app, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop}
spec: {containers: [{name: db, image: postgres}]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: operator, namespace: shop}
"#;

#[test]
fn resource_names_limit_exec_to_the_named_pod() {
    let manifest = format!(
        "{PODS}---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: exec-web, namespace: shop}}
rules: [{{apiGroups: [''], resources: [pods/exec], verbs: [create], resourceNames: [web]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: operator-exec, namespace: shop}}
roleRef: {{kind: Role, name: exec-web}}
subjects: [{{kind: ServiceAccount, name: operator}}]
"
    );
    let derived = graph(&manifest);
    let targets: Vec<String> = common::pairs(&derived, EdgeKind::PodExec)
        .into_iter()
        .map(|(_, to)| to)
        .collect();
    assert_eq!(targets, vec!["web".to_string()]);
}

#[test]
fn aggregated_cluster_roles_grant_their_parts() {
    let manifest = format!(
        "{PODS}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: monitoring}}
aggregationRule: {{clusterRoleSelectors: [{{matchLabels: {{rbac.example.com/aggregate-to-monitoring: 'true'}}}}]}}
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: monitoring-secrets, labels: {{rbac.example.com/aggregate-to-monitoring: 'true'}}}}
rules: [{{apiGroups: [''], resources: [secrets], verbs: [list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: operator-monitoring, namespace: shop}}
roleRef: {{kind: ClusterRole, name: monitoring}}
subjects: [{{kind: ServiceAccount, name: operator}}]
"
    );
    let derived = graph(&manifest);
    let listed = common::pairs(&derived, EdgeKind::TokenList);
    assert_eq!(
        listed.into_iter().collect::<Vec<_>>(),
        vec![(
            "monitoring::operator-monitoring".to_string(),
            "operator".to_string()
        )]
    );
}

#[test]
fn cluster_wide_impersonation_reaches_system_masters() {
    let manifest = format!(
        "{PODS}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: impersonator}}
rules: [{{apiGroups: [''], resources: [groups, users], verbs: [impersonate]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: operator-impersonates}}
roleRef: {{kind: ClusterRole, name: impersonator}}
subjects: [{{kind: ServiceAccount, name: operator, namespace: shop}}, {{kind: User, name: alice}}]
"
    );
    let derived = graph(&manifest);
    let impersonated: Vec<String> = common::pairs(&derived, EdgeKind::IdentityImpersonate)
        .into_iter()
        .map(|(_, to)| to)
        .collect();
    assert!(
        impersonated.contains(&"system:masters".to_string()),
        "{impersonated:?}"
    );
    assert!(
        impersonated.contains(&"alice".to_string()),
        "{impersonated:?}"
    );
    let masters = derived
        .entities
        .values()
        .find(|entity| entity.name == "system:masters")
        .expect("masters");
    assert!(masters.flag("critical"));
}

#[test]
fn impersonation_restricted_by_name_reaches_only_that_group() {
    let manifest = format!(
        "{PODS}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: impersonate-viewers}}
rules: [{{apiGroups: [''], resources: [groups], verbs: [impersonate], resourceNames: [viewers]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: operator-impersonates}}
roleRef: {{kind: ClusterRole, name: impersonate-viewers}}
subjects: [{{kind: ServiceAccount, name: operator, namespace: shop}}, {{kind: Group, name: viewers}}]
"
    );
    let derived = graph(&manifest);
    let impersonated: Vec<String> = common::pairs(&derived, EdgeKind::IdentityImpersonate)
        .into_iter()
        .map(|(_, to)| to)
        .collect();
    assert_eq!(impersonated, vec!["viewers".to_string()]);
}

#[test]
fn a_runtime_socket_mounted_read_only_still_reaches_the_node() {
    let derived = graph(
        "apiVersion: v1
kind: Pod
metadata: {name: builder, namespace: ci}
spec:
  containers: [{name: build, image: docker:24, volumeMounts: [{name: sock, mountPath: /var/run/docker.sock, readOnly: true}]}]
  volumes: [{name: sock, hostPath: {path: /var/run/docker.sock}}]
",
    );
    let techniques = common::techniques_from(
        &derived,
        palisade_graph::model::EntityKind::Container,
        "build",
    );
    assert!(
        techniques.contains("EXPLOIT_CONTAINERD_SOCK"),
        "{techniques:?}"
    );
}
