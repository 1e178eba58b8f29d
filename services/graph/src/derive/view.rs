//! A cluster's inventory resolved into pods (live or from workload templates), their
//! containers, volumes and identities: the common ground of structure, techniques and insights.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::derive::Grants;
use crate::derive::owners::{owned_by_workload, owner_chain_roots, template_spec};
use crate::inventory::ClusterInventory;
use crate::k8s::{Container, PodSpec, SecurityContext, Volume};
use crate::model::{EntityKind, entity_id};
use crate::object::{Body, Object, ObjectKey, ObjectKind};
use crate::rbac::{PermissionSet, RbacIndex, subject_is_service_account};

/// Name of the placeholder node of pods that are not scheduled yet (manifests, templates).
pub const UNSCHEDULED_NODE: &str = "(unscheduled)";

/// A pod of the cluster: a live pod, or the pod a workload template will create.
#[derive(Debug)]
pub struct PodView<'a> {
    /// Entity id.
    pub id: String,
    /// Pod name (the workload name for template pods).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Annotations.
    pub annotations: &'a BTreeMap<String, String>,
    /// Spec.
    pub spec: &'a PodSpec,
    /// The object the pod comes from (the pod, or the workload of a template pod).
    pub source: ObjectKey,
    /// Direct owner (kind, name) of a live pod, or the workload of a template pod.
    pub owner: Option<(ObjectKind, String)>,
    /// Whether the pod is synthesized from a workload template.
    pub is_template: bool,
    /// Entity id of the node the pod runs on (or the placeholder node).
    pub node_id: String,
    /// Service account name.
    pub service_account: String,
    /// Whether a service account token is mounted.
    pub token_mounted: bool,
    /// Containers (regular, init and ephemeral).
    pub containers: Vec<ContainerView<'a>>,
}

/// A container with its effective security settings.
#[derive(Debug)]
pub struct ContainerView<'a> {
    /// Entity id.
    pub id: String,
    /// Container spec.
    pub spec: &'a Container,
    /// regular, init or ephemeral.
    pub role: &'static str,
    /// Index in its list (for Kubescape-style fix paths).
    pub index: usize,
    /// privileged.
    pub privileged: bool,
    /// Added capabilities, upper case without the CAP_ prefix.
    pub caps_add: BTreeSet<String>,
    /// Dropped capabilities, upper case without the CAP_ prefix.
    pub caps_drop: BTreeSet<String>,
    /// Effective runAsUser.
    pub run_as_user: Option<i64>,
    /// Effective runAsNonRoot.
    pub run_as_non_root: Option<bool>,
    /// Effective runAsGroup.
    pub run_as_group: Option<i64>,
    /// AppArmor explicitly unconfined.
    pub apparmor_unconfined: bool,
    /// Effective seccomp profile type.
    pub seccomp: Option<String>,
}

impl ContainerView<'_> {
    /// Whether the container holds a capability (privileged containers hold all).
    pub fn has_cap(&self, cap: &str) -> bool {
        self.privileged || self.caps_add.contains(cap) || self.caps_add.contains("ALL")
    }

    /// Whether a capability is explicitly added.
    pub fn adds_cap(&self, cap: &str) -> bool {
        self.caps_add.contains(cap) || self.caps_add.contains("ALL")
    }

    /// Mounts of a volume by this container: (mount path, read-only).
    pub fn mounts_of<'s>(&'s self, volume: &'s str) -> impl Iterator<Item = (&'s str, bool)> + 's {
        self.spec
            .volume_mounts
            .iter()
            .filter(move |mount| mount.name == volume)
            .map(|mount| (mount.mount_path.as_str(), mount.read_only.unwrap_or(false)))
    }

    /// The security context of the container.
    pub fn security_context(&self) -> Option<&SecurityContext> {
        self.spec.security_context.as_ref()
    }
}

fn cap_name(raw: &str) -> String {
    let upper = raw.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_string)
        .unwrap_or(upper)
}

/// Everything derived from the inventory that later steps need.
#[derive(Debug)]
pub struct ClusterView<'a> {
    /// Cluster name.
    pub cluster: String,
    /// The inventory.
    pub inventory: &'a ClusterInventory,
    /// Pods.
    pub pods: Vec<PodView<'a>>,
    /// RBAC.
    pub rbac: Arc<RbacIndex>,
    /// Node entity ids of real nodes.
    pub nodes: Vec<String>,
    /// Whether the placeholder node is used.
    pub uses_placeholder_node: bool,
    /// Service accounts (namespace, name) that hold permissions (subjects of a binding or
    /// federated to a cloud identity).
    pub privileged_accounts: Arc<BTreeSet<(String, String)>>,
    /// Kubelet minor version of the cluster, when the nodes say.
    pub kubelet_minor: Option<u32>,
}

impl<'a> ClusterView<'a> {
    /// Resolves the inventory of `cluster`.
    pub fn build(cluster: &str, inventory: &'a ClusterInventory) -> ClusterView<'a> {
        ClusterView::build_with(cluster, inventory, None, Grants::build(inventory))
    }

    /// Resolves the inventory of `cluster` with only the pods `scope` names
    /// (`uses_placeholder_node` then speaks of those pods only), given the cluster's grants
    /// as [`Grants::build`] resolves them.
    pub fn build_scoped(
        cluster: &str,
        inventory: &'a ClusterInventory,
        scope: &PodScope,
        grants: Grants,
    ) -> ClusterView<'a> {
        ClusterView::build_with(cluster, inventory, Some(scope), grants)
    }

    /// The grants the view was resolved with.
    pub fn grants(&self) -> Grants {
        Grants {
            rbac: Arc::clone(&self.rbac),
            privileged_accounts: Arc::clone(&self.privileged_accounts),
        }
    }

    fn build_with(
        cluster: &str,
        inventory: &'a ClusterInventory,
        scope: Option<&PodScope>,
        grants: Grants,
    ) -> ClusterView<'a> {
        let in_scope = |spec: &PodSpec| scope.is_none_or(|scope| scope.contains(spec));
        let node_names: BTreeSet<String> = inventory
            .of_kind(ObjectKind::Node)
            .map(|node| node.meta.name.clone())
            .collect();
        let kubelet_minor = inventory
            .of_kind(ObjectKind::Node)
            .find_map(|node| match &node.body {
                Body::Node {
                    kubelet_version, ..
                } => kubelet_version
                    .trim_start_matches('v')
                    .split('.')
                    .nth(1)
                    .and_then(|minor| minor.parse().ok()),
                _ => None,
            });
        let mut view = ClusterView {
            cluster: cluster.to_string(),
            inventory,
            pods: Vec::new(),
            rbac: grants.rbac,
            nodes: node_names
                .iter()
                .map(|name| entity_id(cluster, EntityKind::Node, "", name))
                .collect(),
            uses_placeholder_node: false,
            privileged_accounts: grants.privileged_accounts,
            kubelet_minor,
        };
        let placeholder = entity_id(cluster, EntityKind::Node, "", UNSCHEDULED_NODE);
        let node_of = |spec: &PodSpec| match spec.node_name.as_deref() {
            Some(node) if !node.is_empty() => entity_id(cluster, EntityKind::Node, "", node),
            _ => placeholder.clone(),
        };
        let mut pods = Vec::new();
        for pod in inventory.of_kind(ObjectKind::Pod) {
            let Body::Pod(spec) = &pod.body else { continue };
            if !in_scope(spec) {
                continue;
            }
            let owner = pod.meta.owner_references.first().and_then(|owner| {
                ObjectKind::from_name(&owner.kind).map(|kind| (kind, owner.name.clone()))
            });
            pods.push((
                pod,
                &pod.meta.labels,
                &pod.meta.annotations,
                spec.as_ref(),
                owner,
                false,
            ));
        }
        // Workloads with no live pod below them: their template pods, resolved when one is
        // in scope (a template may name its node).
        let mut with_pods: Option<BTreeSet<(ObjectKind, String, String)>> = None;
        for workload in inventory.iter().filter(|object| object.kind.is_workload()) {
            if owned_by_workload(workload) {
                continue;
            }
            let Some((labels, annotations, spec)) = template_spec(workload) else {
                continue;
            };
            if !in_scope(spec) {
                continue;
            }
            let key = (
                workload.kind,
                workload.meta.namespace.clone(),
                workload.meta.name.clone(),
            );
            if with_pods
                .get_or_insert_with(|| owner_chain_roots(inventory, None))
                .contains(&key)
            {
                continue;
            }
            pods.push((
                workload,
                labels,
                annotations,
                spec,
                Some((workload.kind, workload.meta.name.clone())),
                true,
            ));
        }
        for (object, labels, annotations, spec, owner, is_template) in pods {
            let namespace = object.meta.namespace.clone();
            let name = object.meta.name.clone();
            let id = if is_template {
                entity_id(
                    cluster,
                    EntityKind::Pod,
                    &namespace,
                    &format!("{name}@{}", object.kind.name().to_ascii_lowercase()),
                )
            } else {
                entity_id(cluster, EntityKind::Pod, &namespace, &name)
            };
            let node_id = node_of(spec);
            if node_id == placeholder {
                view.uses_placeholder_node = true;
            }
            let service_account = service_account_of(spec);
            let account_automount = inventory
                .get(&ObjectKey {
                    kind: ObjectKind::ServiceAccount,
                    namespace: namespace.clone(),
                    name: service_account.clone(),
                })
                .and_then(|account| match &account.body {
                    Body::ServiceAccount { automount_token } => *automount_token,
                    _ => None,
                });
            let token_mounted = spec
                .automount_service_account_token
                .or(account_automount)
                .unwrap_or(true);
            let pod_context = spec.security_context.clone().unwrap_or_default();
            let mut containers = Vec::new();
            for (role, list) in [
                ("regular", &spec.containers),
                ("init", &spec.init_containers),
                ("ephemeral", &spec.ephemeral_containers),
            ] {
                for (index, container) in list.iter().enumerate() {
                    containers.push(container_view(
                        cluster,
                        &namespace,
                        &id,
                        container,
                        role,
                        index,
                        &pod_context,
                        annotations,
                    ));
                }
            }
            view.pods.push(PodView {
                id,
                name,
                namespace,
                labels,
                annotations,
                spec,
                source: object.key(),
                owner,
                is_template,
                node_id,
                service_account,
                token_mounted,
                containers,
            });
        }
        view
    }

    /// Whether the service account holds permissions worth stealing its token for.
    pub fn account_is_privileged(&self, namespace: &str, name: &str) -> bool {
        self.privileged_accounts
            .contains(&(namespace.to_string(), name.to_string()))
    }

    /// Permission sets that apply to the service account.
    pub fn sets_of_account<'s>(
        &'s self,
        namespace: &'s str,
        name: &'s str,
    ) -> impl Iterator<Item = &'s PermissionSet> + 's {
        self.rbac.permission_sets.iter().filter(move |set| {
            set.subjects
                .iter()
                .any(|subject| subject_is_service_account(subject, namespace, name))
        })
    }

    /// Whether a pod not scheduled mounts the kubelet's pod directory: it may land on any
    /// node, so its part depends on every pod of the cluster, not only on those of one node.
    pub fn reaches_every_node(&self) -> bool {
        self.pods
            .iter()
            .filter(|pod| pod.node_id.ends_with(UNSCHEDULED_NODE))
            .any(|pod| {
                self.mounted_volumes(pod).iter().any(|volume| {
                    self.host_path_of(&pod.namespace, volume)
                        .is_some_and(|path| {
                            crate::derive::techniques::reaches_kubelet_pods(
                                &crate::derive::techniques::clean_path(&path),
                            )
                        })
                })
            })
    }

    /// Volumes of a pod mounted by at least one of its containers.
    pub fn mounted_volumes<'s>(&self, pod: &'s PodView<'_>) -> Vec<&'s Volume> {
        pod.spec
            .volumes
            .iter()
            .filter(|volume| {
                pod.containers
                    .iter()
                    .any(|container| container.mounts_of(&volume.name).next().is_some())
            })
            .collect()
    }

    /// Host path behind a volume: a hostPath volume, or a PVC bound to a hostPath PV.
    pub fn host_path_of(&self, namespace: &str, volume: &Volume) -> Option<String> {
        if let Some(host_path) = &volume.host_path {
            return Some(host_path.path.clone());
        }
        let claim = volume.persistent_volume_claim.as_ref()?;
        let claim_object = self.inventory.get(&ObjectKey {
            kind: ObjectKind::PersistentVolumeClaim,
            namespace: namespace.to_string(),
            name: claim.claim_name.clone(),
        })?;
        let Body::PersistentVolumeClaim { volume_name } = &claim_object.body else {
            return None;
        };
        let volume_object = self.inventory.get(&ObjectKey {
            kind: ObjectKind::PersistentVolume,
            namespace: String::new(),
            name: volume_name.clone(),
        })?;
        match &volume_object.body {
            Body::PersistentVolume { host_path } => host_path.clone(),
            _ => None,
        }
    }
}

/// Which pods a view resolves: those scheduled on some nodes, and optionally those not
/// scheduled (workload templates included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodScope {
    /// Node names.
    pub nodes: BTreeSet<String>,
    /// Whether the pods not scheduled are in.
    pub unscheduled: bool,
}

impl PodScope {
    /// Whether a pod with this spec is in.
    pub fn contains(&self, spec: &PodSpec) -> bool {
        match spec.node_name.as_deref().filter(|node| !node.is_empty()) {
            Some(node) => self.nodes.contains(node),
            None => self.unscheduled,
        }
    }
}

/// The service account a pod runs as.
pub(crate) fn service_account_of(spec: &PodSpec) -> String {
    spec.service_account_name
        .clone()
        .or_else(|| spec.service_account.clone())
        .filter(|account| !account.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// Cloud identity federated to a service account through its annotations.
pub fn cloud_identity_of(account: &Object) -> Option<(String, String)> {
    let annotations = &account.meta.annotations;
    for (annotation, provider) in [
        ("eks.amazonaws.com/role-arn", "aws"),
        ("iam.gke.io/gcp-service-account", "gcp"),
        ("azure.workload.identity/client-id", "azure"),
    ] {
        if let Some(value) = annotations.get(annotation)
            && !value.is_empty()
        {
            return Some((provider.to_string(), value.clone()));
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn container_view<'a>(
    cluster: &str,
    namespace: &str,
    pod_id: &str,
    container: &'a Container,
    role: &'static str,
    index: usize,
    pod_context: &SecurityContext,
    annotations: &BTreeMap<String, String>,
) -> ContainerView<'a> {
    let own = container.security_context.clone().unwrap_or_default();
    let caps = own.capabilities.clone().unwrap_or_default();
    let apparmor_annotation = annotations
        .get(&format!(
            "container.apparmor.security.beta.kubernetes.io/{}",
            container.name
        ))
        .is_some_and(|value| value == "unconfined");
    let apparmor_unconfined = apparmor_annotation
        || own
            .app_armor_profile
            .as_ref()
            .or(pod_context.app_armor_profile.as_ref())
            .is_some_and(|profile| profile.profile_type == "Unconfined");
    let pod_suffix = pod_id.rsplit('/').next().unwrap_or_default();
    ContainerView {
        id: format!(
            "{}/{}",
            entity_id(cluster, EntityKind::Container, namespace, pod_suffix),
            container.name
        ),
        spec: container,
        role,
        index,
        privileged: own.privileged.unwrap_or(false),
        caps_add: caps.add.iter().map(|cap| cap_name(cap)).collect(),
        caps_drop: caps.drop.iter().map(|cap| cap_name(cap)).collect(),
        run_as_user: own.run_as_user.or(pod_context.run_as_user),
        run_as_non_root: own.run_as_non_root.or(pod_context.run_as_non_root),
        run_as_group: own.run_as_group.or(pod_context.run_as_group),
        apparmor_unconfined,
        seccomp: own
            .seccomp_profile
            .as_ref()
            .or(pod_context.seccomp_profile.as_ref())
            .map(|profile| profile.profile_type.clone()),
    }
}
