//! Attack technique edges: KubeHound's 26 edges with KubeHound's conditions, the three it
//! does not compute (IDENTITY_IMPERSONATE, EXPLOIT_CONTAINERD_SOCK, ROLE_BIND in every case),
//! network MITM, and cloud credential access. RBAC checks honour `resourceNames` and
//! aggregated ClusterRoles.

use std::collections::BTreeSet;

use crate::derive::structure::{TOKEN_VOLUME, cluster_entity, volume_id};
use crate::derive::{ClusterView, ContainerView, Derived, PodContext, PodView};
use crate::model::{EdgeKind, Entity, EntityKind, entity_id};
use crate::object::{Body, Object, ObjectKind};
use crate::rbac::{PermissionSet, grants_everything};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Host paths whose read-only mount exposes host secrets (KubeHound's EXPLOIT_HOST_READ list).
fn is_sensitive_read_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/home" | "/root" | "/root/.ssh" | "/proc" | "/etc"
    ) || path
        .strip_prefix("/home/")
        .is_some_and(|rest| rest.ends_with("/.ssh") && rest.matches('/').count() == 1)
}

/// Host paths whose writable mount is not an escape (KubeHound's documented allowlist).
fn is_safe_write_path(path: &str) -> bool {
    const EXACT: &[&str] = &[
        "/var/run/datadog-agent",
        "/etc/datadog-agent",
        "/etc/datadog-agent/auth",
        "/etc/datadog",
        "/run/xtables.lock",
    ];
    const PREFIXES: &[&str] = &[
        "/tmp",
        "/var/run/",
        "/mnt/",
        "/var/lib/datadog-agent/",
        "/var/tmp/datadog-agent/",
        "/run/udev",
        "/lib/udev",
        "/etc/udev",
        "/sys/kernel/debug",
        "/opt/datadog-agent/run",
        "/opt/datadog/heapdumps",
        "/var/datadog/dumps",
    ];
    EXACT.contains(&path) || PREFIXES.iter().any(|prefix| path.starts_with(prefix))
}

/// Host paths from which other pods' projected tokens are reachable.
pub(crate) fn reaches_kubelet_pods(path: &str) -> bool {
    matches!(
        path,
        "/" | "/var" | "/var/lib" | "/var/lib/kubelet" | "/var/lib/kubelet/pods"
    ) || path.starts_with("/var/lib/kubelet/pods/")
}

/// Whether a host path is, or contains, a container runtime socket.
pub fn is_runtime_socket_path(path: &str) -> bool {
    const SOCKETS: &[&str] = &[
        "docker.sock",
        "containerd.sock",
        "crio.sock",
        "cri-dockerd.sock",
        "dockershim.sock",
    ];
    const DIRECTORIES: &[&str] = &[
        "/",
        "/var",
        "/run",
        "/var/run",
        "/run/containerd",
        "/var/run/containerd",
        "/run/crio",
        "/var/run/crio",
        "/run/docker",
        "/var/run/docker",
        "/run/k3s/containerd",
    ];
    let file = path.rsplit('/').next().unwrap_or_default();
    SOCKETS.contains(&file) || DIRECTORIES.contains(&path)
}

/// A host path without trailing slashes (`/` stays `/`).
pub fn clean_path(path: &str) -> String {
    let trimmed = path.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Resources whose `create` lets a subject run a pod of its choosing.
const POD_CREATING: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

/// Whether the set may create pods (directly or through a controller) in a namespace.
pub fn can_create_pods(set: &PermissionSet, namespace: &str) -> bool {
    POD_CREATING
        .iter()
        .any(|(group, resource)| set.allows("create", group, resource, namespace, None))
}

/// Whether the set reads secrets anywhere in its scope.
pub fn reads_secrets(set: &PermissionSet) -> bool {
    let namespace = set.namespace().to_string();
    ["get", "list", "watch"]
        .iter()
        .any(|verb| set.allows(verb, "", "secrets", &namespace, None))
}

/// Whether a permission set amounts to cluster takeover: a critical asset where paths end.
pub fn is_takeover_set(set: &PermissionSet) -> bool {
    if set.is_namespaced() {
        return false;
    }
    grants_everything(&set.rules)
        || can_create_pods(set, "kube-system")
        || reads_secrets(set)
        || set.allows("impersonate", "", "groups", "", None)
        || set.allows("impersonate", "", "users", "", None)
        || (set.allows("create", RBAC_GROUP, "clusterrolebindings", "", None)
            && set.allows("bind", RBAC_GROUP, "clusterroles", "", None))
        || set.allows("escalate", RBAC_GROUP, "clusterroles", "", None)
        || set.allows("create", "", "pods/exec", "kube-system", None)
        || set.allows("approve", "certificates.k8s.io", "signers", "", None)
}

pub fn add_techniques(view: &ClusterView<'_>, derived: &mut Derived) {
    add_node_techniques(view, derived);
    add_rbac_techniques(view, derived);
    add_cloud_identities(view, derived);
}

/// Attack techniques from and to one pod: container escapes, its token, host mounts, and the
/// permission sets that may exec into or patch it.
pub(crate) fn add_pod_techniques(
    view: &ClusterView<'_>,
    context: &PodContext<'_>,
    pod: &PodView<'_>,
    derived: &mut Derived,
) {
    let host_pid = pod.spec.host_pid.unwrap_or(false);
    let host_network = pod.spec.host_network.unwrap_or(false);
    let node = pod.node_id.as_str();
    for container in &pod.containers {
        derived.edge(&pod.id, EdgeKind::ContainerAttach, &container.id);
        if container.privileged || container.adds_cap("SYS_MODULE") {
            derived.edge(&container.id, EdgeKind::CeModuleLoad, node);
        }
        if container.privileged && host_pid {
            derived.edge(&container.id, EdgeKind::CeNsenter, node);
        }
        if container.privileged {
            derived.edge(&container.id, EdgeKind::CePrivMount, node);
        }
        let apparmor_applies = view.kubelet_minor.is_none_or(|minor| minor >= 31);
        if host_pid
            && container.adds_cap("SYS_PTRACE")
            && container.adds_cap("SYS_ADMIN")
            && (container.apparmor_unconfined || !apparmor_applies)
        {
            derived.edge(&container.id, EdgeKind::CeSysPtrace, node);
        }
        if host_network && container.has_cap("NET_ADMIN") {
            for other in view
                .pods
                .iter()
                .filter(|other| other.node_id == pod.node_id && other.id != pod.id)
            {
                derived.edge(&container.id, EdgeKind::CeNetMitm, &other.id);
            }
        }
        add_mount_techniques(view, pod, container, derived);
    }
    if pod.spec.share_process_namespace.unwrap_or(false) {
        for first in &pod.containers {
            for second in &pod.containers {
                if first.id != second.id {
                    derived.edge(&first.id, EdgeKind::SharePsNamespace, &second.id);
                }
            }
        }
    }
    let token =
        pod.token_mounted && view.account_is_privileged(&pod.namespace, &pod.service_account);
    if token {
        let account_id = entity_id(
            &view.cluster,
            EntityKind::ServiceAccount,
            &pod.namespace,
            &pod.service_account,
        );
        let token_volume = volume_id(&pod.id, TOKEN_VOLUME);
        derived.edge(&token_volume, EdgeKind::TokenSteal, &account_id);
        derived.edge(&pod.node_id, EdgeKind::VolumeAccess, &token_volume);
        for container in &pod.containers {
            derived.edge(&container.id, EdgeKind::IdentityAssume, &account_id);
            derived.edge(&container.id, EdgeKind::VolumeDiscover, &token_volume);
        }
    }
    derived.edge(&pod.node_id, EdgeKind::PodAttach, &pod.id);
    for set in &view.rbac.permission_sets {
        let (exec, patch) = pod_permissions(set, &pod.namespace, &pod.name, pod.owner.as_ref());
        if exec {
            derived.edge(&set_id(view, set), EdgeKind::PodExec, &pod.id);
        }
        if patch {
            derived.edge(&set_id(view, set), EdgeKind::PodPatch, &pod.id);
        }
    }
    // Pod-network traffic to the metadata service is cut by IMDSv2's hop limit (the
    // managed-node default) and NetworkPolicies; the host network bypasses both. Whether a
    // node still serves IMDSv1 is not visible in the inventory, so only the host network
    // counts as certain.
    if host_network && let Some(identity) = context.node_identities.get(&pod.node_id) {
        for container in &pod.containers {
            derived.edge(&container.id, EdgeKind::ImdsAccess, identity);
        }
    }
}

/// Whether a permission set may exec into a pod, and whether it may patch the pod or its
/// direct owner (`kind`, name).
pub fn pod_permissions(
    set: &PermissionSet,
    namespace: &str,
    name: &str,
    owner: Option<&(ObjectKind, String)>,
) -> (bool, bool) {
    if !in_scope(set, namespace) {
        return (false, false);
    }
    let exec = set.allows("create", "", "pods/exec", namespace, Some(name));
    let patch_pod = ["patch", "update"]
        .iter()
        .any(|verb| set.allows(verb, "", "pods", namespace, Some(name)));
    let patch_owner = owner.is_some_and(|(kind, owner)| {
        let (group, _, resource) = kind.api_resource();
        ["patch", "update"]
            .iter()
            .any(|verb| set.allows(verb, group, resource, namespace, Some(owner)))
    });
    (exec, patch_pod || patch_owner)
}

fn account_allows(
    view: &ClusterView<'_>,
    pod: &PodView<'_>,
    verb: &str,
    group: &str,
    resource: &str,
) -> bool {
    view.sets_of_account(&pod.namespace, &pod.service_account)
        .any(|set| set.allows(verb, group, resource, &pod.namespace, None))
}

fn add_mount_techniques(
    view: &ClusterView<'_>,
    pod: &PodView<'_>,
    container: &ContainerView<'_>,
    derived: &mut Derived,
) {
    for volume in view.mounted_volumes(pod) {
        let mounts: Vec<(&str, bool)> = container.mounts_of(&volume.name).collect();
        if mounts.is_empty() {
            continue;
        }
        let id = volume_id(&pod.id, &volume.name);
        derived.edge(&container.id, EdgeKind::VolumeDiscover, &id);
        derived.edge(&pod.node_id, EdgeKind::VolumeAccess, &id);
        let Some(host_path) = view.host_path_of(&pod.namespace, volume) else {
            continue;
        };
        let path = clean_path(&host_path);
        let read_only = mounts.iter().any(|(_, read_only)| *read_only);
        let writable = mounts.iter().any(|(_, read_only)| !*read_only);
        let node = pod.node_id.as_str();
        if read_only && is_sensitive_read_path(&path) {
            derived.edge(&id, EdgeKind::ExploitHostRead, node);
        }
        if writable && !is_safe_write_path(&path) {
            derived.edge(&id, EdgeKind::ExploitHostWrite, node);
        }
        if reaches_kubelet_pods(&path) {
            // An unscheduled pod may land on any node: every node's tokens are within reach.
            let any_node = pod.node_id.ends_with(crate::derive::UNSCHEDULED_NODE);
            for other in view
                .pods
                .iter()
                .filter(|other| (any_node || other.node_id == pod.node_id) && other.id != pod.id)
            {
                if other.token_mounted
                    && view.account_is_privileged(&other.namespace, &other.service_account)
                {
                    derived.edge(
                        &id,
                        EdgeKind::ExploitHostTraverse,
                        &volume_id(&other.id, TOKEN_VOLUME),
                    );
                }
            }
        }
        if writable
            && container.run_as_user == Some(0)
            && matches!(
                path.as_str(),
                "/" | "/proc" | "/proc/sys" | "/proc/sys/kernel"
            )
        {
            derived.edge(&container.id, EdgeKind::CeUmhCorePattern, node);
        }
        if matches!(path.as_str(), "/" | "/var" | "/var/log")
            && account_allows(view, pod, "get", "", "pods/log")
        {
            derived.edge(&container.id, EdgeKind::CeVarLogSymlink, node);
        }
        if is_runtime_socket_path(&path) {
            derived.edge(&container.id, EdgeKind::ExploitContainerdSock, node);
        }
    }
}

fn add_node_techniques(view: &ClusterView<'_>, derived: &mut Derived) {
    let mut nodes: Vec<(String, String)> = view
        .inventory
        .of_kind(ObjectKind::Node)
        .map(|node| {
            (
                entity_id(&view.cluster, EntityKind::Node, "", &node.meta.name),
                node.meta.name.clone(),
            )
        })
        .collect();
    if view.uses_placeholder_node {
        nodes.push((
            entity_id(
                &view.cluster,
                EntityKind::Node,
                "",
                crate::derive::UNSCHEDULED_NODE,
            ),
            String::new(),
        ));
    }
    let nodes_group = entity_id(&view.cluster, EntityKind::Group, "", "system:nodes");
    let has_nodes_group = derived.entities.contains_key(&nodes_group);
    for (node_id, name) in &nodes {
        if has_nodes_group {
            derived.edge(node_id, EdgeKind::IdentityAssume, &nodes_group);
        }
        if !name.is_empty() {
            let user = entity_id(
                &view.cluster,
                EntityKind::User,
                "",
                &format!("system:node:{name}"),
            );
            if derived.entities.contains_key(&user) {
                derived.edge(node_id, EdgeKind::IdentityAssume, &user);
            }
        }
    }
}

fn set_id(view: &ClusterView<'_>, set: &PermissionSet) -> String {
    entity_id(
        &view.cluster,
        EntityKind::PermissionSet,
        set.namespace(),
        &set.name,
    )
}

fn in_scope(set: &PermissionSet, namespace: &str) -> bool {
    match set.is_namespaced() {
        true => set.namespace() == namespace,
        false => true,
    }
}

fn add_rbac_techniques(view: &ClusterView<'_>, derived: &mut Derived) {
    let node_targets: Vec<String> = if view.nodes.is_empty() {
        vec![entity_id(
            &view.cluster,
            EntityKind::Node,
            "",
            crate::derive::UNSCHEDULED_NODE,
        )]
    } else {
        view.nodes.clone()
    };
    let privileged_accounts: Vec<(String, String)> =
        view.privileged_accounts.iter().cloned().collect();
    // Service account token secrets, by account, for get restricted by resourceNames.
    let mut token_secrets: Vec<(String, String, String)> = Vec::new();
    for secret in view.inventory.of_kind(ObjectKind::Secret) {
        // The metadata API does not show the type; the owner annotation is enough.
        if let Body::Secret { .. } = &secret.body
            && let Some(account) = secret
                .meta
                .annotations
                .get("kubernetes.io/service-account.name")
        {
            token_secrets.push((
                secret.meta.namespace.clone(),
                secret.meta.name.clone(),
                account.clone(),
            ));
        }
    }
    let identities: Vec<(EntityKind, String, String)> = derived
        .entities
        .values()
        .filter(|entity| matches!(entity.kind, EntityKind::User | EntityKind::Group))
        .map(|entity| (entity.kind, entity.name.clone(), entity.id.clone()))
        .collect();
    for set in &view.rbac.permission_sets {
        let source = set_id(view, set);
        // A set that already grants everything gains nothing by binding or impersonating.
        let everything = grants_everything(&set.rules) && !set.is_namespaced();
        let scope_namespace = set.namespace().to_string();
        if can_create_pods(set, &scope_namespace)
            && (set.is_namespaced() || can_create_pods(set, "default"))
        {
            for node in &node_targets {
                if derived.entities.contains_key(node) {
                    derived.edge(&source, EdgeKind::PodCreate, node);
                }
            }
        }
        // What the set grants on tokens and accounts does not depend on the namespace within
        // its scope, only on the names: resolved once, then matched against each account.
        let lists_secrets = set.allows("list", "", "secrets", &scope_namespace, None);
        let readable_secrets = set.allowed_names("get", "", "secrets", &scope_namespace);
        let impersonable = match everything {
            true => Some(BTreeSet::new()),
            false => set.allowed_names("impersonate", "", "serviceaccounts", &scope_namespace),
        };
        let nothing = Some(BTreeSet::new());
        let grants_any = lists_secrets || readable_secrets != nothing || impersonable != nothing;
        for (namespace, account) in privileged_accounts
            .iter()
            .filter(|(namespace, _)| grants_any && in_scope(set, namespace))
        {
            let brute = match &readable_secrets {
                None => true,
                Some(names) => token_secrets
                    .iter()
                    .any(|(secret_namespace, secret, owner)| {
                        secret_namespace == namespace && owner == account && names.contains(secret)
                    }),
            };
            let impersonate = impersonable
                .as_ref()
                .is_none_or(|names| names.contains(account));
            if !(lists_secrets || brute || impersonate) {
                continue;
            }
            let account_id = entity_id(
                &view.cluster,
                EntityKind::ServiceAccount,
                namespace,
                account,
            );
            if lists_secrets {
                derived.edge(&source, EdgeKind::TokenList, &account_id);
            }
            if brute {
                derived.edge(&source, EdgeKind::TokenBruteforce, &account_id);
            }
            if impersonate {
                derived.edge(&source, EdgeKind::IdentityImpersonate, &account_id);
            }
        }
        if !everything {
            add_impersonation(view, set, &source, &identities, derived);
            add_role_bind(view, set, &source, derived);
        }
    }
}

/// Impersonation of users and groups is authorized cluster-wide only: a Role cannot grant it.
fn add_impersonation(
    view: &ClusterView<'_>,
    set: &PermissionSet,
    source: &str,
    identities: &[(EntityKind, String, String)],
    derived: &mut Derived,
) {
    if set.is_namespaced() {
        return;
    }
    for (kind, name, id) in identities {
        let resource = if *kind == EntityKind::User {
            "users"
        } else {
            "groups"
        };
        if set.allows("impersonate", "", resource, "", Some(name)) {
            derived.edge(source, EdgeKind::IdentityImpersonate, id);
        }
    }
    if set.allows("impersonate", "", "groups", "", Some("system:masters")) {
        let masters = cluster_entity(view, EntityKind::Group, "", "system:masters")
            .with("critical", true)
            .with(
                "critical_reason",
                "members of system:masters bypass RBAC entirely",
            );
        let masters_id = masters.id.clone();
        derived.entity(masters);
        derived.edge(source, EdgeKind::IdentityImpersonate, &masters_id);
    }
}

/// ROLE_BIND in all four of KubeHound's cases: creating (or updating) a binding needs the
/// binding permission in the target scope and `bind` on the referenced role.
fn add_role_bind(view: &ClusterView<'_>, set: &PermissionSet, source: &str, derived: &mut Derived) {
    let binding_verbs = ["create", "update", "patch"];
    // The API server checks `bind` in the namespace of the binding being written, also when
    // a RoleBinding references a ClusterRole.
    let can_bind_role = |role_kind: &str, role_name: &str, binding_namespace: &str| {
        let resource = if role_kind == "ClusterRole" {
            "clusterroles"
        } else {
            "roles"
        };
        set.allows(
            "bind",
            RBAC_GROUP,
            resource,
            binding_namespace,
            Some(role_name),
        )
    };
    // Most sets bind nothing: no target to try.
    let nothing = Some(BTreeSet::new());
    if ["roles", "clusterroles"]
        .iter()
        .all(|resource| set.allowed_names("bind", RBAC_GROUP, resource, set.namespace()) == nothing)
    {
        return;
    }
    let can_cluster_bind = !set.is_namespaced()
        && binding_verbs
            .iter()
            .any(|verb| set.allows(verb, RBAC_GROUP, "clusterrolebindings", "", None));
    for target in &view.rbac.permission_sets {
        let target_namespace = target.namespace().to_string();
        let can_namespace_bind = |namespace: &str| {
            binding_verbs
                .iter()
                .any(|verb| set.allows(verb, RBAC_GROUP, "rolebindings", namespace, None))
        };
        let reachable = if target.is_namespaced() {
            can_namespace_bind(&target_namespace)
                && can_bind_role(&target.role_kind, &target.role_name, &target_namespace)
        } else {
            // A cluster-wide grant is reached with a ClusterRoleBinding, or (for its namespaced
            // resources) with a RoleBinding in every namespace when the source may create those.
            can_bind_role("ClusterRole", &target.role_name, "")
                && (can_cluster_bind || (!set.is_namespaced() && can_namespace_bind("default")))
        };
        if reachable {
            derived.edge(source, EdgeKind::RoleBind, &set_id(view, target));
        }
    }
}

/// The cloud a node runs in, from its provider id.
pub(crate) fn node_cloud_provider(node: &Object) -> Option<&'static str> {
    let Body::Node { provider_id, .. } = &node.body else {
        return None;
    };
    ["aws", "gce", "azure"]
        .into_iter()
        .find(|provider| provider_id.starts_with(&format!("{provider}://")))
}

/// Entity id of a node's instance identity.
pub(crate) fn node_identity_id(cluster: &str, node: &str) -> String {
    format!("{cluster}/cloud_identity/node/{node}")
}

/// The instance identity of each cloud node (what a pod on the host network can assume).
fn add_cloud_identities(view: &ClusterView<'_>, derived: &mut Derived) {
    for node in view.inventory.of_kind(ObjectKind::Node) {
        if let Some(provider) = node_cloud_provider(node) {
            derived.entity(
                Entity::new(
                    EntityKind::CloudIdentity,
                    &view.cluster,
                    "",
                    &format!("instance identity of {}", node.meta.name),
                    node_identity_id(&view.cluster, &node.meta.name),
                )
                .with("provider", provider),
            );
        }
    }
}
