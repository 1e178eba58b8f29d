//! Effective RBAC: roles with aggregation resolved, permission sets (a role as granted by one
//! binding in one scope), and rule matching that honours wildcards and `resourceNames`.

use std::collections::{BTreeMap, BTreeSet};

use crate::inventory::ClusterInventory;
use crate::k8s::{PolicyRule, RoleRef, Subject};
use crate::object::{Body, ObjectKind};

/// Where a permission set applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every namespace and cluster-scoped resources (ClusterRoleBinding).
    Cluster,
    /// One namespace (RoleBinding).
    Namespace(String),
}

/// A role as granted by one binding: what its subjects may do, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionSet {
    /// KubeHound-style name: `role::binding`.
    pub name: String,
    /// Role or ClusterRole.
    pub role_kind: String,
    /// Role name.
    pub role_name: String,
    /// RoleBinding or ClusterRoleBinding.
    pub binding_kind: ObjectKind,
    /// Binding name.
    pub binding_name: String,
    /// Scope of the grant.
    pub scope: Scope,
    /// Effective rules (aggregation resolved).
    pub rules: Vec<PolicyRule>,
    /// Subjects of the binding.
    pub subjects: Vec<Subject>,
}

impl PermissionSet {
    /// Namespace of the grant, empty for cluster scope.
    pub fn namespace(&self) -> &str {
        match &self.scope {
            Scope::Cluster => "",
            Scope::Namespace(namespace) => namespace,
        }
    }

    /// Whether the grant is limited to one namespace.
    pub fn is_namespaced(&self) -> bool {
        matches!(self.scope, Scope::Namespace(_))
    }

    /// Whether the set allows `verb` on `resource` (`pods`, `pods/exec` ...) of `group` in
    /// `namespace` (empty for cluster-scoped resources), on the object `name` when given.
    pub fn allows(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
        name: Option<&str>,
    ) -> bool {
        if let Scope::Namespace(own) = &self.scope
            && own != namespace
        {
            return false;
        }
        self.rules
            .iter()
            .any(|rule| rule_allows(rule, verb, group, resource, name))
    }

    /// Names the set restricts `verb` on `resource` to: `None` when any name is allowed,
    /// `Some(names)` (possibly empty) otherwise.
    pub fn allowed_names(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
    ) -> Option<BTreeSet<String>> {
        if let Scope::Namespace(own) = &self.scope
            && own != namespace
        {
            return Some(BTreeSet::new());
        }
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            if !rule_allows_any_name(rule, verb, group, resource) {
                continue;
            }
            if rule.resource_names.is_empty() {
                return None;
            }
            names.extend(rule.resource_names.iter().cloned());
        }
        Some(names)
    }
}

fn contains_or_star(list: &[String], wanted: &str) -> bool {
    list.iter().any(|entry| entry == "*" || entry == wanted)
}

fn resource_matches(rule_resources: &[String], resource: &str) -> bool {
    rule_resources.iter().any(|entry| {
        if entry == "*" || entry == resource {
            return true;
        }
        // `*/scale` matches the scale subresource of every resource.
        if let Some(sub) = entry.strip_prefix("*/") {
            return resource
                .split_once('/')
                .is_some_and(|(_, wanted_sub)| wanted_sub == sub);
        }
        false
    })
}

fn rule_allows_any_name(rule: &PolicyRule, verb: &str, group: &str, resource: &str) -> bool {
    contains_or_star(&rule.verbs, verb)
        && contains_or_star(&rule.api_groups, group)
        && resource_matches(&rule.resources, resource)
}

/// Whether one rule allows the request. A rule with `resourceNames` allows only requests on
/// those names, so it never allows `create` (whose object has no name yet) or `list`.
pub fn rule_allows(
    rule: &PolicyRule,
    verb: &str,
    group: &str,
    resource: &str,
    name: Option<&str>,
) -> bool {
    if !rule_allows_any_name(rule, verb, group, resource) {
        return false;
    }
    if rule.resource_names.is_empty() {
        return true;
    }
    match name {
        Some(name) => rule.resource_names.iter().any(|allowed| allowed == name),
        None => false,
    }
}

/// Whether any rule uses a wildcard in verbs, resources or API groups.
pub fn has_wildcard(rules: &[PolicyRule]) -> bool {
    rules.iter().any(|rule| {
        rule.verbs.iter().any(|verb| verb == "*")
            || rule.resources.iter().any(|resource| resource == "*")
            || rule.api_groups.iter().any(|group| group == "*")
    })
}

/// The RBAC state of one cluster.
#[derive(Debug, Default)]
pub struct RbacIndex {
    /// Cluster roles by name, aggregation resolved.
    pub cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    /// Roles by (namespace, name).
    pub roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    /// Every permission set.
    pub permission_sets: Vec<PermissionSet>,
}

impl RbacIndex {
    /// Builds the index from the cluster's roles and bindings.
    pub fn build(inventory: &ClusterInventory) -> RbacIndex {
        let mut index = RbacIndex::default();
        let mut aggregations = Vec::new();
        let mut role_labels = BTreeMap::new();
        for object in inventory.of_kind(ObjectKind::ClusterRole) {
            if let Body::Role { rules, aggregation } = &object.body {
                index
                    .cluster_roles
                    .insert(object.meta.name.clone(), rules.clone());
                role_labels.insert(object.meta.name.clone(), object.meta.labels.clone());
                if let Some(aggregation) = aggregation
                    && !aggregation.cluster_role_selectors.is_empty()
                {
                    aggregations.push((object.meta.name.clone(), aggregation.clone()));
                }
            }
        }
        // The aggregation controller writes the union into the role; do the same, to a fixed
        // point, because aggregated roles may themselves be aggregated (admin <- edit <- view).
        for _round in 0..8 {
            let mut changed = false;
            for (name, aggregation) in &aggregations {
                let mut merged: Vec<PolicyRule> =
                    index.cluster_roles.get(name).cloned().unwrap_or_default();
                for (other, labels) in &role_labels {
                    if other == name {
                        continue;
                    }
                    let selected = aggregation
                        .cluster_role_selectors
                        .iter()
                        .any(|selector| !selector.is_empty() && selector.matches(labels));
                    if !selected {
                        continue;
                    }
                    for rule in index.cluster_roles.get(other).cloned().unwrap_or_default() {
                        if !merged.contains(&rule) {
                            merged.push(rule);
                            changed = true;
                        }
                    }
                }
                index.cluster_roles.insert(name.clone(), merged);
            }
            if !changed {
                break;
            }
        }
        // Manifests rarely carry the API server's bootstrap roles: a binding to cluster-admin
        // must still mean cluster-admin.
        for (name, rules) in builtin_cluster_roles() {
            index.cluster_roles.entry(name.to_string()).or_insert(rules);
        }
        for object in inventory.of_kind(ObjectKind::Role) {
            if let Body::Role { rules, .. } = &object.body {
                index.roles.insert(
                    (object.meta.namespace.clone(), object.meta.name.clone()),
                    rules.clone(),
                );
            }
        }
        for kind in [ObjectKind::ClusterRoleBinding, ObjectKind::RoleBinding] {
            for object in inventory.of_kind(kind) {
                let Body::Binding { role_ref, subjects } = &object.body else {
                    continue;
                };
                let Some(rules) = index.resolve(role_ref, &object.meta.namespace) else {
                    continue;
                };
                let scope = if kind == ObjectKind::ClusterRoleBinding {
                    Scope::Cluster
                } else {
                    Scope::Namespace(object.meta.namespace.clone())
                };
                // A ClusterRoleBinding can only reference a ClusterRole.
                if kind == ObjectKind::ClusterRoleBinding && role_ref.kind != "ClusterRole" {
                    continue;
                }
                let subjects = subjects
                    .iter()
                    .map(|subject| {
                        let mut subject = subject.clone();
                        if subject.kind == "ServiceAccount" && subject.namespace.is_empty() {
                            subject.namespace = object.meta.namespace.clone();
                        }
                        subject
                    })
                    .collect();
                index.permission_sets.push(PermissionSet {
                    name: format!("{}::{}", role_ref.name, object.meta.name),
                    role_kind: role_ref.kind.clone(),
                    role_name: role_ref.name.clone(),
                    binding_kind: kind,
                    binding_name: object.meta.name.clone(),
                    scope,
                    rules,
                    subjects,
                });
            }
        }
        index
    }

    /// Rules of the role a binding in `namespace` references; `None` when it does not exist
    /// (such a binding grants nothing).
    pub fn resolve(&self, role_ref: &RoleRef, namespace: &str) -> Option<Vec<PolicyRule>> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&role_ref.name).cloned(),
            "Role" => self
                .roles
                .get(&(namespace.to_string(), role_ref.name.clone()))
                .cloned(),
            _ => None,
        }
    }
}

/// Whether a subject designates the service account `namespace/name`, directly or through the
/// service-account groups.
pub fn subject_is_service_account(subject: &Subject, namespace: &str, name: &str) -> bool {
    match subject.kind.as_str() {
        "ServiceAccount" => subject.name == name && subject.namespace == namespace,
        "Group" => {
            subject.name == "system:serviceaccounts"
                || subject.name == format!("system:serviceaccounts:{namespace}")
        }
        "User" => subject.name == format!("system:serviceaccount:{namespace}:{name}"),
        _ => false,
    }
}

/// KubeHound's list of critical roles: permission sets granting one of them cluster-wide are
/// where attack paths end.
pub const CRITICAL_ROLES: &[&str] = &[
    "admin",
    "cluster-admin",
    "edit",
    "kindnet",
    "kubeadm:get-nodes",
    "local-path-provisioner-role",
    "system:aggregate-to-admin",
    "system:aggregate-to-edit",
    "system:aggregate-to-view",
    "system:auth-delegator",
    "system:basic-user",
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
    "system:certificates.k8s.io:kube-apiserver-client-approver",
    "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
    "system:certificates.k8s.io:kubelet-serving-approver",
    "system:certificates.k8s.io:legacy-unknown-approver",
    "system:controller:attachdetach-controller",
    "system:controller:bootstrap-signer",
    "system:controller:certificate-controller",
    "system:controller:clusterrole-aggregation-controller",
    "system:controller:cronjob-controller",
    "system:controller:daemon-set-controller",
    "system:controller:deployment-controller",
    "system:controller:disruption-controller",
    "system:controller:endpoint-controller",
    "system:controller:endpointslice-controller",
    "system:controller:endpointslicemirroring-controller",
    "system:controller:ephemeral-volume-controller",
    "system:controller:expand-controller",
    "system:controller:generic-garbage-collector",
    "system:controller:horizontal-pod-autoscaler",
    "system:controller:job-controller",
    "system:controller:namespace-controller",
    "system:controller:node-controller",
    "system:controller:persistent-volume-binder",
    "system:controller:pod-garbage-collector",
    "system:controller:pv-protection-controller",
    "system:controller:pvc-protection-controller",
    "system:controller:replicaset-controller",
    "system:controller:replication-controller",
    "system:controller:resourcequota-controller",
    "system:controller:root-ca-cert-publisher",
    "system:controller:route-controller",
    "system:controller:service-account-controller",
    "system:controller:service-controller",
    "system:controller:statefulset-controller",
    "system:controller:token-cleaner",
    "system:controller:ttl-after-finished-controller",
    "system:controller:ttl-controller",
    "system:coredns",
    "system:discovery",
    "system:heapster",
    "system:kube-aggregator",
    "system:kube-controller-manager",
    "system:kube-dns",
    "system:kube-scheduler",
    "system:kubelet-api-admin",
    "system:monitoring",
    "system:node",
    "system:node-bootstrapper",
    "system:node-problem-detector",
    "system:node-proxier",
    "system:persistent-volume-provisioner",
    "system:public-info-viewer",
    "system:service-account-issuer-discovery",
    "system:volume-scheduler",
    "view",
];

/// Whether a permission set is a critical asset: a critical role granted cluster-wide, or
/// rules equivalent to cluster-admin.
pub fn is_critical(set: &PermissionSet) -> bool {
    if set.is_namespaced() {
        return false;
    }
    CRITICAL_ROLES.contains(&set.role_name.as_str()) || grants_everything(&set.rules)
}

/// Whether the rules allow every verb on every resource of every group.
pub fn grants_everything(rules: &[PolicyRule]) -> bool {
    rules.iter().any(|rule| {
        rule.resource_names.is_empty()
            && rule.verbs.iter().any(|verb| verb == "*")
            && rule.resources.iter().any(|resource| resource == "*")
            && rule.api_groups.iter().any(|group| group == "*")
    })
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: groups.iter().map(|group| group.to_string()).collect(),
        resources: resources
            .iter()
            .map(|resource| resource.to_string())
            .collect(),
        verbs: verbs.iter().map(|verb| verb.to_string()).collect(),
        resource_names: Vec::new(),
        non_resource_urls: Vec::new(),
    }
}

/// The user-facing bootstrap ClusterRoles of the API server (summarised from the default RBAC
/// policy), used when the inventory does not carry them.
pub fn builtin_cluster_roles() -> Vec<(&'static str, Vec<PolicyRule>)> {
    const READ: &[&str] = &["get", "list", "watch"];
    const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
    let workload_resources: &[&str] = &[
        "pods",
        "pods/attach",
        "pods/exec",
        "pods/portforward",
        "pods/proxy",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "services",
        "services/proxy",
        "endpoints",
        "persistentvolumeclaims",
        "configmaps",
        "secrets",
        "serviceaccounts",
    ];
    let apps: &[&str] = &[
        "deployments",
        "deployments/scale",
        "daemonsets",
        "replicasets",
        "replicasets/scale",
        "statefulsets",
        "statefulsets/scale",
    ];
    let batch: &[&str] = &["jobs", "cronjobs"];
    let view = vec![
        rule(
            &[""],
            &[
                "pods",
                "pods/log",
                "pods/status",
                "replicationcontrollers",
                "services",
                "endpoints",
                "persistentvolumeclaims",
                "configmaps",
                "serviceaccounts",
                "namespaces",
                "events",
                "limitranges",
                "resourcequotas",
            ],
            READ,
        ),
        rule(&["apps"], apps, READ),
        rule(&["batch"], batch, READ),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            READ,
        ),
    ];
    let mut edit = view.clone();
    edit.push(rule(&[""], workload_resources, WRITE));
    edit.push(rule(&[""], &["secrets"], READ));
    edit.push(rule(&[""], &["serviceaccounts"], &["impersonate"]));
    edit.push(rule(&["apps"], apps, WRITE));
    edit.push(rule(&["batch"], batch, WRITE));
    edit.push(rule(
        &["networking.k8s.io"],
        &["ingresses", "networkpolicies"],
        WRITE,
    ));
    let mut admin = edit.clone();
    admin.push(rule(
        &["rbac.authorization.k8s.io"],
        &["roles", "rolebindings"],
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
    ));
    admin.push(rule(
        &["authorization.k8s.io"],
        &["localsubjectaccessreviews"],
        &["create"],
    ));
    let mut everything = rule(&["*"], &["*"], &["*"]);
    everything.resource_names.clear();
    vec![
        ("cluster-admin", vec![everything]),
        ("admin", admin),
        ("edit", edit),
        ("view", view),
    ]
}
