//! Structural entities and relationships: the inventory as a graph.

use std::collections::BTreeSet;

use crate::derive::{ClusterView, Derived, PodView, UNSCHEDULED_NODE};
use crate::model::{EdgeKind, Entity, EntityKind, entity_id, image_id, normalize_image};
use crate::object::{Body, ObjectKind};
use crate::rbac::{CRITICAL_ROLES, has_wildcard};

/// An entity of this cluster with its stable id.
pub(crate) fn cluster_entity(
    view: &ClusterView<'_>,
    kind: EntityKind,
    namespace: &str,
    name: &str,
) -> Entity {
    Entity::new(
        kind,
        &view.cluster,
        namespace,
        name,
        entity_id(&view.cluster, kind, namespace, name),
    )
}

/// Entity id of a volume of a pod.
pub(crate) fn volume_id(pod_id: &str, volume: &str) -> String {
    let (prefix, pod) = pod_id.rsplit_once('/').unwrap_or(("", pod_id));
    format!("{}/{pod}/{volume}", prefix.replacen("/pod/", "/volume/", 1))
}

/// Name of the projected token volume the admission controller adds.
pub(crate) const TOKEN_VOLUME: &str = "kube-api-access";

pub(crate) fn add_structure(view: &ClusterView<'_>, derived: &mut Derived) {
    let cluster_id = entity_id(&view.cluster, EntityKind::Cluster, "", &view.cluster);
    derived.entity(cluster_entity(view, EntityKind::Cluster, "", &view.cluster));
    // Namespaces: declared, and implied by any namespaced object.
    let mut namespaces: BTreeSet<String> = view
        .inventory
        .iter()
        .filter(|object| object.kind.is_namespaced())
        .map(|object| object.meta.namespace.clone())
        .collect();
    namespaces.extend(
        view.inventory
            .of_kind(ObjectKind::Namespace)
            .map(|namespace| namespace.meta.name.clone()),
    );
    for namespace in &namespaces {
        let mut entity = cluster_entity(view, EntityKind::Namespace, "", namespace);
        entity.namespace = namespace.clone();
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(&cluster_id, EdgeKind::Contains, &id);
    }
    for node in view.inventory.of_kind(ObjectKind::Node) {
        let mut entity = cluster_entity(view, EntityKind::Node, "", &node.meta.name);
        if let Body::Node {
            provider_id,
            addresses,
            kubelet_version,
        } = &node.body
        {
            let external: Vec<&str> = addresses
                .iter()
                .filter(|address| address.address_type == "ExternalIP")
                .map(|address| address.address.as_str())
                .collect();
            entity.set("external_ip", !external.is_empty());
            entity.set("provider_id", provider_id.clone());
            entity.set("kubelet_version", kubelet_version.clone());
        }
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(&cluster_id, EdgeKind::Contains, &id);
    }
    if view.uses_placeholder_node {
        let entity =
            cluster_entity(view, EntityKind::Node, "", UNSCHEDULED_NODE).with("placeholder", true);
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(&cluster_id, EdgeKind::Contains, &id);
    }
    add_workloads(view, derived);
    add_identities(view, derived);
    add_rbac(view, derived);
    add_config_objects(view, derived);
}

fn namespace_id(view: &ClusterView<'_>, namespace: &str) -> String {
    entity_id(&view.cluster, EntityKind::Namespace, "", namespace)
}

fn add_workloads(view: &ClusterView<'_>, derived: &mut Derived) {
    for workload in view
        .inventory
        .iter()
        .filter(|object| object.kind.is_workload())
    {
        let entity = cluster_entity(
            view,
            EntityKind::Workload,
            &workload.meta.namespace,
            &format!("{}/{}", workload.kind.name(), workload.meta.name),
        )
        .with("workload_kind", workload.kind.name());
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(
            &namespace_id(view, &workload.meta.namespace),
            EdgeKind::Contains,
            &id,
        );
        for owner in &workload.meta.owner_references {
            let owner_id = entity_id(
                &view.cluster,
                EntityKind::Workload,
                &workload.meta.namespace,
                &format!("{}/{}", owner.kind, owner.name),
            );
            derived.edge(&owner_id, EdgeKind::Owns, &id);
        }
    }
}

/// A pod's own entities: the pod, its containers, images, volumes and the secrets and
/// service account it names, with the edges between them and to its node and namespace.
pub(crate) fn add_pod(view: &ClusterView<'_>, pod: &PodView<'_>, derived: &mut Derived) {
    let mut entity = Entity::new(
        EntityKind::Pod,
        &view.cluster,
        &pod.namespace,
        &pod.name,
        pod.id.clone(),
    )
    .with("host_network", pod.spec.host_network.unwrap_or(false))
    .with("host_pid", pod.spec.host_pid.unwrap_or(false))
    .with("host_ipc", pod.spec.host_ipc.unwrap_or(false))
    .with("service_account", pod.service_account.clone())
    .with("token_mounted", pod.token_mounted)
    .with("template", pod.is_template)
    .with("source", pod.source.to_string());
    if pod.is_template {
        entity.set("template_of", pod.source.to_string());
    }
    derived.entity(entity);
    derived.edge(
        &namespace_id(view, &pod.namespace),
        EdgeKind::Contains,
        &pod.id,
    );
    derived.edge(&pod.id, EdgeKind::ScheduledOn, &pod.node_id);
    if let Some((kind, name)) = &pod.owner {
        let owner_id = entity_id(
            &view.cluster,
            EntityKind::Workload,
            &pod.namespace,
            &format!("{}/{name}", kind.name()),
        );
        derived.edge(&owner_id, EdgeKind::Owns, &pod.id);
    }
    let account_id = entity_id(
        &view.cluster,
        EntityKind::ServiceAccount,
        &pod.namespace,
        &pod.service_account,
    );
    derived.entity(cluster_entity(
        view,
        EntityKind::ServiceAccount,
        &pod.namespace,
        &pod.service_account,
    ));
    derived.edge(&pod.id, EdgeKind::RunsAs, &account_id);
    for container in &pod.containers {
        let image = normalize_image(&container.spec.image);
        let mut entity = Entity::new(
            EntityKind::Container,
            &view.cluster,
            &pod.namespace,
            &container.spec.name,
            container.id.clone(),
        )
        .with("pod", pod.name.clone())
        .with("image", image.clone())
        .with("privileged", container.privileged)
        .with("container_role", container.role)
        .with(
            "capabilities_added",
            container.caps_add.iter().cloned().collect::<Vec<_>>(),
        );
        if let Some(user) = container.run_as_user {
            entity.set("run_as_user", user);
        }
        derived.entity(entity);
        derived.edge(&pod.id, EdgeKind::Runs, &container.id);
        if !image.is_empty() {
            let image_entity_id = image_id(&image);
            derived.entity(Entity::new(
                EntityKind::Image,
                "",
                "",
                &image,
                image_entity_id.clone(),
            ));
            derived.edge(&container.id, EdgeKind::UsesImage, &image_entity_id);
        }
    }
    for volume in view.mounted_volumes(pod) {
        let id = volume_id(&pod.id, &volume.name);
        let volume_type = if volume.host_path.is_some() {
            "hostPath"
        } else if volume.projected.is_some() {
            "projected"
        } else if volume.secret.is_some() {
            "secret"
        } else if volume.config_map.is_some() {
            "configMap"
        } else if volume.persistent_volume_claim.is_some() {
            "persistentVolumeClaim"
        } else {
            "other"
        };
        let mut entity = Entity::new(
            EntityKind::Volume,
            &view.cluster,
            &pod.namespace,
            &volume.name,
            id.clone(),
        )
        .with("volume_type", volume_type)
        .with("pod", pod.name.clone());
        if let Some(path) = view.host_path_of(&pod.namespace, volume) {
            entity.set("host_path", path);
        }
        derived.entity(entity);
        for container in &pod.containers {
            if container.mounts_of(&volume.name).next().is_some() {
                derived.edge(&container.id, EdgeKind::Mounts, &id);
            }
        }
        if let Some(secret) = &volume.secret {
            let secret_id = entity_id(
                &view.cluster,
                EntityKind::Secret,
                &pod.namespace,
                &secret.secret_name,
            );
            derived.entity(cluster_entity(
                view,
                EntityKind::Secret,
                &pod.namespace,
                &secret.secret_name,
            ));
            derived.edge(&pod.id, EdgeKind::UsesSecret, &secret_id);
        }
    }
    // The admission controller mounts the token into every container; only tokens that
    // grant something are worth an entity (KubeHound keeps none for default accounts).
    if pod.token_mounted && view.account_is_privileged(&pod.namespace, &pod.service_account) {
        let id = volume_id(&pod.id, TOKEN_VOLUME);
        derived.entity(
            Entity::new(
                EntityKind::Volume,
                &view.cluster,
                &pod.namespace,
                TOKEN_VOLUME,
                id.clone(),
            )
            .with("volume_type", "projected")
            .with("service_account_token", true)
            .with("pod", pod.name.clone()),
        );
        for container in &pod.containers {
            derived.edge(&container.id, EdgeKind::Mounts, &id);
        }
    }
    for container in &pod.containers {
        for variable in &container.spec.env {
            if let Some(reference) = variable
                .value_from
                .as_ref()
                .and_then(|source| source.secret_key_ref.as_ref())
                && !reference.name.is_empty()
            {
                let secret_id = entity_id(
                    &view.cluster,
                    EntityKind::Secret,
                    &pod.namespace,
                    &reference.name,
                );
                derived.entity(cluster_entity(
                    view,
                    EntityKind::Secret,
                    &pod.namespace,
                    &reference.name,
                ));
                derived.edge(&pod.id, EdgeKind::UsesSecret, &secret_id);
            }
        }
        for source in &container.spec.env_from {
            if let Some(reference) = &source.secret_ref
                && !reference.name.is_empty()
            {
                let secret_id = entity_id(
                    &view.cluster,
                    EntityKind::Secret,
                    &pod.namespace,
                    &reference.name,
                );
                derived.entity(cluster_entity(
                    view,
                    EntityKind::Secret,
                    &pod.namespace,
                    &reference.name,
                ));
                derived.edge(&pod.id, EdgeKind::UsesSecret, &secret_id);
            }
        }
    }
}

fn add_identities(view: &ClusterView<'_>, derived: &mut Derived) {
    for account in view.inventory.of_kind(ObjectKind::ServiceAccount) {
        let mut entity = cluster_entity(
            view,
            EntityKind::ServiceAccount,
            &account.meta.namespace,
            &account.meta.name,
        );
        if let Body::ServiceAccount {
            automount_token: Some(automount),
        } = &account.body
        {
            entity.set("automount_token", *automount);
        }
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(
            &namespace_id(view, &account.meta.namespace),
            EdgeKind::Contains,
            &id,
        );
        if let Some((provider, identity)) = crate::derive::view::cloud_identity_of(account) {
            let cloud = Entity::new(
                EntityKind::CloudIdentity,
                &view.cluster,
                "",
                &identity,
                format!("{}/cloud_identity/{provider}/{identity}", view.cluster),
            )
            .with("provider", provider);
            let cloud_id = cloud.id.clone();
            derived.entity(cloud);
            derived.edge(&id, EdgeKind::CloudIdentityAssume, &cloud_id);
        }
    }
    for set in &view.rbac.permission_sets {
        for subject in &set.subjects {
            let (kind, namespace) = match subject.kind.as_str() {
                "ServiceAccount" => (EntityKind::ServiceAccount, subject.namespace.as_str()),
                "User" => (EntityKind::User, ""),
                "Group" => (EntityKind::Group, ""),
                _ => continue,
            };
            derived.entity(cluster_entity(view, kind, namespace, &subject.name));
        }
    }
    // Service accounts belong to the service-account groups when those are granted anything.
    let groups: Vec<String> = derived
        .entities
        .values()
        .filter(|entity| {
            entity.kind == EntityKind::Group && entity.name.starts_with("system:serviceaccounts")
        })
        .map(|entity| entity.name.clone())
        .collect();
    if groups.is_empty() {
        return;
    }
    let accounts: Vec<(String, String, String)> = derived
        .entities
        .values()
        .filter(|entity| entity.kind == EntityKind::ServiceAccount)
        .map(|entity| {
            (
                entity.id.clone(),
                entity.namespace.clone(),
                entity.name.clone(),
            )
        })
        .collect();
    for (account_id, namespace, _) in accounts {
        for group in &groups {
            if group == "system:serviceaccounts"
                || *group == format!("system:serviceaccounts:{namespace}")
            {
                let group_id = entity_id(&view.cluster, EntityKind::Group, "", group);
                derived.edge(&account_id, EdgeKind::MemberOf, &group_id);
            }
        }
    }
}

fn add_rbac(view: &ClusterView<'_>, derived: &mut Derived) {
    let cluster_id = entity_id(&view.cluster, EntityKind::Cluster, "", &view.cluster);
    for (kind, entity_kind) in [
        (ObjectKind::Role, EntityKind::Role),
        (ObjectKind::ClusterRole, EntityKind::ClusterRole),
    ] {
        for role in view.inventory.of_kind(kind) {
            let rules = if kind == ObjectKind::ClusterRole {
                view.rbac
                    .cluster_roles
                    .get(&role.meta.name)
                    .cloned()
                    .unwrap_or_default()
            } else {
                view.rbac
                    .roles
                    .get(&(role.meta.namespace.clone(), role.meta.name.clone()))
                    .cloned()
                    .unwrap_or_default()
            };
            let entity = cluster_entity(view, entity_kind, &role.meta.namespace, &role.meta.name)
                .with("rule_count", rules.len())
                .with("wildcard", has_wildcard(&rules));
            let id = entity.id.clone();
            derived.entity(entity);
            let parent = if role.meta.namespace.is_empty() {
                cluster_id.clone()
            } else {
                namespace_id(view, &role.meta.namespace)
            };
            derived.edge(&parent, EdgeKind::Contains, &id);
        }
    }
    for set in &view.rbac.permission_sets {
        let namespace = set.namespace().to_string();
        let set_entity = cluster_entity(view, EntityKind::PermissionSet, &namespace, &set.name)
            .with("role", set.role_name.clone())
            .with("role_kind", set.role_kind.clone())
            .with("binding", set.binding_name.clone())
            .with("binding_kind", set.binding_kind.name())
            .with("namespaced", set.is_namespaced())
            .with("critical", crate::derive::techniques::is_takeover_set(set))
            .with(
                "kubehound_critical",
                !set.is_namespaced() && CRITICAL_ROLES.contains(&set.role_name.as_str()),
            )
            .with(
                "reads_secrets",
                crate::derive::techniques::reads_secrets(set),
            );
        let mut set_entity = set_entity;
        if crate::derive::techniques::can_create_pods(set, &namespace) {
            // "*": in every namespace.
            set_entity.set(
                "creates_pods",
                if set.is_namespaced() {
                    namespace.clone()
                } else {
                    "*".to_string()
                },
            );
        }
        let set_id = set_entity.id.clone();
        derived.entity(set_entity);
        let (binding_kind, binding_namespace) = if set.is_namespaced() {
            (EntityKind::RoleBinding, namespace.as_str())
        } else {
            (EntityKind::ClusterRoleBinding, "")
        };
        let binding_id = entity_id(
            &view.cluster,
            binding_kind,
            binding_namespace,
            &set.binding_name,
        );
        derived.entity(cluster_entity(
            view,
            binding_kind,
            binding_namespace,
            &set.binding_name,
        ));
        derived.edge(&binding_id, EdgeKind::Yields, &set_id);
        let role_kind = if set.role_kind == "Role" {
            EntityKind::Role
        } else {
            EntityKind::ClusterRole
        };
        let role_namespace = if set.role_kind == "Role" {
            namespace.as_str()
        } else {
            ""
        };
        derived.edge(
            &binding_id,
            EdgeKind::Grants,
            &entity_id(&view.cluster, role_kind, role_namespace, &set.role_name),
        );
        for subject in &set.subjects {
            let (kind, subject_namespace) = match subject.kind.as_str() {
                "ServiceAccount" => (EntityKind::ServiceAccount, subject.namespace.as_str()),
                "User" => (EntityKind::User, ""),
                "Group" => (EntityKind::Group, ""),
                _ => continue,
            };
            let subject_id = entity_id(&view.cluster, kind, subject_namespace, &subject.name);
            derived.edge(&subject_id, EdgeKind::SubjectOf, &binding_id);
            derived.edge(&subject_id, EdgeKind::PermissionDiscover, &set_id);
            // `system:serviceaccount:ns:name` users are service accounts.
            if kind == EntityKind::User
                && let Some(rest) = subject.name.strip_prefix("system:serviceaccount:")
                && let Some((account_namespace, account)) = rest.split_once(':')
            {
                let account_id = entity_id(
                    &view.cluster,
                    EntityKind::ServiceAccount,
                    account_namespace,
                    account,
                );
                derived.entity(cluster_entity(
                    view,
                    EntityKind::ServiceAccount,
                    account_namespace,
                    account,
                ));
                derived.edge(&account_id, EdgeKind::PermissionDiscover, &set_id);
            }
        }
    }
}

fn add_config_objects(view: &ClusterView<'_>, derived: &mut Derived) {
    let cluster_id = entity_id(&view.cluster, EntityKind::Cluster, "", &view.cluster);
    for secret in view.inventory.of_kind(ObjectKind::Secret) {
        let mut entity = cluster_entity(
            view,
            EntityKind::Secret,
            &secret.meta.namespace,
            &secret.meta.name,
        );
        if let Body::Secret { secret_type, keys } = &secret.body {
            entity.set("secret_type", secret_type.clone());
            entity.set("keys", keys.clone());
            if let Some(account) = secret
                .meta
                .annotations
                .get("kubernetes.io/service-account.name")
            {
                entity.set("service_account", account.clone());
            }
        }
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(
            &namespace_id(view, &secret.meta.namespace),
            EdgeKind::Contains,
            &id,
        );
    }
    for config_map in view.inventory.of_kind(ObjectKind::ConfigMap) {
        let entity = cluster_entity(
            view,
            EntityKind::ConfigMap,
            &config_map.meta.namespace,
            &config_map.meta.name,
        );
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(
            &namespace_id(view, &config_map.meta.namespace),
            EdgeKind::Contains,
            &id,
        );
    }
    for volume in view.inventory.of_kind(ObjectKind::PersistentVolume) {
        let mut entity = cluster_entity(view, EntityKind::PersistentVolume, "", &volume.meta.name);
        if let Body::PersistentVolume {
            host_path: Some(path),
        } = &volume.body
        {
            entity.set("host_path", path.clone());
        }
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(&cluster_id, EdgeKind::Contains, &id);
    }
    for policy in view.inventory.of_kind(ObjectKind::NetworkPolicy) {
        let Body::NetworkPolicy(spec) = &policy.body else {
            continue;
        };
        let entity = cluster_entity(
            view,
            EntityKind::NetworkPolicy,
            &policy.meta.namespace,
            &policy.meta.name,
        )
        .with("policy_types", spec.policy_types.clone());
        let id = entity.id.clone();
        derived.entity(entity);
        derived.edge(
            &namespace_id(view, &policy.meta.namespace),
            EdgeKind::Contains,
            &id,
        );
    }
}
