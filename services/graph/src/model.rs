//! The security graph's vocabulary: entity kinds, relationship kinds and attack techniques.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kinds of entities in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// The internet, the origin of external attacks.
    Internet,
    /// A cluster.
    Cluster,
    /// A namespace.
    Namespace,
    /// A node (or the placeholder for "the node an unscheduled pod lands on").
    Node,
    /// A pod controller (Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, RC).
    Workload,
    /// A pod (or the pod a workload template will create).
    Pod,
    /// A container.
    Container,
    /// A volume mounted by a pod.
    Volume,
    /// A container image.
    Image,
    /// A vulnerability (CVE, GHSA ...).
    Vulnerability,
    /// A service.
    Service,
    /// A network endpoint through which a container is reachable.
    Endpoint,
    /// An ingress.
    Ingress,
    /// A cloud load balancer in front of a service.
    LoadBalancer,
    /// A service account.
    ServiceAccount,
    /// A user.
    User,
    /// A group.
    Group,
    /// A Role.
    Role,
    /// A ClusterRole.
    ClusterRole,
    /// A RoleBinding.
    RoleBinding,
    /// A ClusterRoleBinding.
    ClusterRoleBinding,
    /// A role as granted by one binding in one scope (KubeHound's PermissionSet).
    PermissionSet,
    /// A secret (metadata only).
    Secret,
    /// A config map (metadata only).
    ConfigMap,
    /// A persistent volume.
    PersistentVolume,
    /// A network policy.
    NetworkPolicy,
    /// A cloud identity (node instance role, IRSA role, GCP/Azure workload identity).
    CloudIdentity,
}

/// Every entity kind.
pub const ALL_ENTITY_KINDS: [EntityKind; 27] = [
    EntityKind::Internet,
    EntityKind::Cluster,
    EntityKind::Namespace,
    EntityKind::Node,
    EntityKind::Workload,
    EntityKind::Pod,
    EntityKind::Container,
    EntityKind::Volume,
    EntityKind::Image,
    EntityKind::Vulnerability,
    EntityKind::Service,
    EntityKind::Endpoint,
    EntityKind::Ingress,
    EntityKind::LoadBalancer,
    EntityKind::ServiceAccount,
    EntityKind::User,
    EntityKind::Group,
    EntityKind::Role,
    EntityKind::ClusterRole,
    EntityKind::RoleBinding,
    EntityKind::ClusterRoleBinding,
    EntityKind::PermissionSet,
    EntityKind::Secret,
    EntityKind::ConfigMap,
    EntityKind::PersistentVolume,
    EntityKind::NetworkPolicy,
    EntityKind::CloudIdentity,
];

impl EntityKind {
    /// Lower-case name, as used in ids, queries and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Internet => "internet",
            EntityKind::Cluster => "cluster",
            EntityKind::Namespace => "namespace",
            EntityKind::Node => "node",
            EntityKind::Workload => "workload",
            EntityKind::Pod => "pod",
            EntityKind::Container => "container",
            EntityKind::Volume => "volume",
            EntityKind::Image => "image",
            EntityKind::Vulnerability => "vulnerability",
            EntityKind::Service => "service",
            EntityKind::Endpoint => "endpoint",
            EntityKind::Ingress => "ingress",
            EntityKind::LoadBalancer => "load_balancer",
            EntityKind::ServiceAccount => "service_account",
            EntityKind::User => "user",
            EntityKind::Group => "group",
            EntityKind::Role => "role",
            EntityKind::ClusterRole => "cluster_role",
            EntityKind::RoleBinding => "role_binding",
            EntityKind::ClusterRoleBinding => "cluster_role_binding",
            EntityKind::PermissionSet => "permission_set",
            EntityKind::Secret => "secret",
            EntityKind::ConfigMap => "config_map",
            EntityKind::PersistentVolume => "persistent_volume",
            EntityKind::NetworkPolicy => "network_policy",
            EntityKind::CloudIdentity => "cloud_identity",
        }
    }

    /// The kind named `name` (lower case, as in [`EntityKind::as_str`]).
    pub fn parse(name: &str) -> Option<EntityKind> {
        ALL_ENTITY_KINDS
            .iter()
            .copied()
            .find(|kind| kind.as_str() == name)
    }

    /// Whether the kind is an identity (KubeHound's Identity vertex).
    pub fn is_identity(self) -> bool {
        matches!(
            self,
            EntityKind::ServiceAccount | EntityKind::User | EntityKind::Group
        )
    }
}

/// Relationship kinds. Structural relationships describe the inventory; technique relationships
/// are attacks that improve an attacker's position (KubeHound's edges and Palisade's additions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum EdgeKind {
    // ---- structural ----
    /// cluster/namespace contains an entity.
    Contains,
    /// controller owns a controller or pod.
    Owns,
    /// pod runs a container.
    Runs,
    /// pod is scheduled on a node.
    ScheduledOn,
    /// container uses an image.
    UsesImage,
    /// image has a vulnerability.
    HasVulnerability,
    /// container mounts a volume.
    Mounts,
    /// pod runs as a service account.
    RunsAs,
    /// identity is a member of a group.
    MemberOf,
    /// identity is a subject of a binding.
    SubjectOf,
    /// binding grants a role.
    Grants,
    /// binding yields a permission set.
    Yields,
    /// service, ingress, load balancer or the internet routes traffic to the next hop.
    RoutesTo,
    /// service or container port is exposed through an endpoint.
    Exposes,
    /// network policy selects a pod.
    Selects,
    /// pod reads a secret (volume or environment).
    UsesSecret,
    // ---- KubeHound's 26 attack edges ----
    /// Load a kernel module from the container (T1611).
    CeModuleLoad,
    /// nsenter into the host's namespaces (T1611).
    CeNsenter,
    /// Mount the host disk from a privileged container (T1611).
    CePrivMount,
    /// ptrace a host process (T1611).
    CeSysPtrace,
    /// Overwrite the core_pattern usermode helper (T1611).
    CeUmhCorePattern,
    /// Symlink through /var/log and the kubelet /logs endpoint (T1611).
    CeVarLogSymlink,
    /// Attach to a container of a pod (T1609).
    ContainerAttach,
    /// Exploit an exposed port (T1210).
    EndpointExploit,
    /// Use a mounted container runtime socket (T1610).
    ExploitContainerdSock,
    /// Read a sensitive host file through a read-only host mount (T1611).
    ExploitHostRead,
    /// Reach other pods' tokens through a host mount of the kubelet directory (T1552).
    ExploitHostTraverse,
    /// Write a sensitive host path (T1611).
    ExploitHostWrite,
    /// Act as the identity whose credentials are held (T1078).
    IdentityAssume,
    /// Impersonate a user, group or service account (T1078).
    IdentityImpersonate,
    /// Learn what an identity may do (T1069).
    PermissionDiscover,
    /// From a node, attach to a pod on it (T1609).
    PodAttach,
    /// Create a pod on a node (T1610).
    PodCreate,
    /// Exec into a pod (T1609).
    PodExec,
    /// Patch a running pod (T1609).
    PodPatch,
    /// Bind a role to gain its permissions (T1078).
    RoleBind,
    /// Reach a sibling container through a shared process namespace (T1080).
    SharePsNamespace,
    /// Guess a service account token secret name with get secrets (T1528).
    TokenBruteforce,
    /// List secrets and read service account tokens (T1528).
    TokenList,
    /// Read the token from a projected volume (T1552).
    TokenSteal,
    /// A node reads every volume on it (T1613).
    VolumeAccess,
    /// A container sees its mounts (T1613).
    VolumeDiscover,
    // ---- Palisade's additions ----
    /// hostNetwork + NET_ADMIN: intercept traffic of pods on the node (T1557).
    CeNetMitm,
    /// Reach the cloud metadata service and its instance credentials (T1552.005).
    ImdsAccess,
    /// Use a cloud identity bound to a service account (T1078.004).
    CloudIdentityAssume,
}

/// Every edge kind.
pub const ALL_EDGE_KINDS: [EdgeKind; 45] = [
    EdgeKind::Contains,
    EdgeKind::Owns,
    EdgeKind::Runs,
    EdgeKind::ScheduledOn,
    EdgeKind::UsesImage,
    EdgeKind::HasVulnerability,
    EdgeKind::Mounts,
    EdgeKind::RunsAs,
    EdgeKind::MemberOf,
    EdgeKind::SubjectOf,
    EdgeKind::Grants,
    EdgeKind::Yields,
    EdgeKind::RoutesTo,
    EdgeKind::Exposes,
    EdgeKind::Selects,
    EdgeKind::UsesSecret,
    EdgeKind::CeModuleLoad,
    EdgeKind::CeNsenter,
    EdgeKind::CePrivMount,
    EdgeKind::CeSysPtrace,
    EdgeKind::CeUmhCorePattern,
    EdgeKind::CeVarLogSymlink,
    EdgeKind::ContainerAttach,
    EdgeKind::EndpointExploit,
    EdgeKind::ExploitContainerdSock,
    EdgeKind::ExploitHostRead,
    EdgeKind::ExploitHostTraverse,
    EdgeKind::ExploitHostWrite,
    EdgeKind::IdentityAssume,
    EdgeKind::IdentityImpersonate,
    EdgeKind::PermissionDiscover,
    EdgeKind::PodAttach,
    EdgeKind::PodCreate,
    EdgeKind::PodExec,
    EdgeKind::PodPatch,
    EdgeKind::RoleBind,
    EdgeKind::SharePsNamespace,
    EdgeKind::TokenBruteforce,
    EdgeKind::TokenList,
    EdgeKind::TokenSteal,
    EdgeKind::VolumeAccess,
    EdgeKind::VolumeDiscover,
    EdgeKind::CeNetMitm,
    EdgeKind::ImdsAccess,
    EdgeKind::CloudIdentityAssume,
];

/// Description of an attack technique.
#[derive(Debug, Clone, Copy)]
pub struct Technique {
    /// KubeHound-style label, e.g. "CE_NSENTER".
    pub label: &'static str,
    /// MITRE ATT&CK technique id.
    pub mitre_id: &'static str,
    /// MITRE ATT&CK technique name.
    pub mitre_name: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// How to break this step.
    pub remediation: &'static str,
}

impl EdgeKind {
    /// Lower-case name, as used in queries and the API.
    pub fn as_str(self) -> &'static str {
        match self.technique() {
            Some(technique) => technique.label,
            None => match self {
                EdgeKind::Contains => "contains",
                EdgeKind::Owns => "owns",
                EdgeKind::Runs => "runs",
                EdgeKind::ScheduledOn => "scheduled_on",
                EdgeKind::UsesImage => "uses_image",
                EdgeKind::HasVulnerability => "has_vulnerability",
                EdgeKind::Mounts => "mounts",
                EdgeKind::RunsAs => "runs_as",
                EdgeKind::MemberOf => "member_of",
                EdgeKind::SubjectOf => "subject_of",
                EdgeKind::Grants => "grants",
                EdgeKind::Yields => "yields",
                EdgeKind::RoutesTo => "routes_to",
                EdgeKind::Exposes => "exposes",
                EdgeKind::Selects => "selects",
                EdgeKind::UsesSecret => "uses_secret",
                _ => "technique",
            },
        }
    }

    /// The kind named `name` (structural names in lower case, techniques by label).
    pub fn parse(name: &str) -> Option<EdgeKind> {
        ALL_EDGE_KINDS
            .iter()
            .copied()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether the edge is an attack technique.
    pub fn is_technique(self) -> bool {
        self.technique().is_some()
    }

    /// Whether attack-path search may walk this edge (BloodHound's pathfinding set).
    pub fn is_pathfinding(self) -> bool {
        match self {
            EdgeKind::RoutesTo | EdgeKind::MemberOf => true,
            // Interception gives traffic, not control of the pods: it ends a path, never extends it.
            EdgeKind::CeNetMitm => false,
            other => other.is_technique(),
        }
    }

    /// The technique behind an attack edge.
    pub fn technique(self) -> Option<Technique> {
        let technique = |label, mitre_id, mitre_name, summary, remediation| {
            Some(Technique {
                label,
                mitre_id,
                mitre_name,
                summary,
                remediation,
            })
        };
        const ESCAPE: &str = "T1611";
        const ESCAPE_NAME: &str = "Escape to Host";
        match self {
            EdgeKind::CeModuleLoad => technique(
                "CE_MODULE_LOAD",
                ESCAPE,
                ESCAPE_NAME,
                "load a kernel module from a container with CAP_SYS_MODULE",
                "drop CAP_SYS_MODULE and do not run the container privileged",
            ),
            EdgeKind::CeNsenter => technique(
                "CE_NSENTER",
                ESCAPE,
                ESCAPE_NAME,
                "nsenter into the host namespaces of PID 1 (privileged + hostPID)",
                "remove hostPID and privileged from the pod",
            ),
            EdgeKind::CePrivMount => technique(
                "CE_PRIV_MOUNT",
                ESCAPE,
                ESCAPE_NAME,
                "mount the host disk from a privileged container",
                "do not run the container privileged",
            ),
            EdgeKind::CeSysPtrace => technique(
                "CE_SYS_PTRACE",
                ESCAPE,
                ESCAPE_NAME,
                "ptrace a host process (hostPID + SYS_PTRACE + SYS_ADMIN without AppArmor)",
                "remove hostPID, drop SYS_PTRACE and SYS_ADMIN, keep the AppArmor runtime default",
            ),
            EdgeKind::CeUmhCorePattern => technique(
                "CE_UMH_CORE_PATTERN",
                ESCAPE,
                ESCAPE_NAME,
                "overwrite /proc/sys/kernel/core_pattern through a writable host mount as root",
                "remove the hostPath mount of /proc (or mount it read-only) and run as non-root",
            ),
            EdgeKind::CeVarLogSymlink => technique(
                "CE_VAR_LOG_SYMLINK",
                ESCAPE,
                ESCAPE_NAME,
                "plant a symlink in the host /var/log and read host files through the kubelet log API",
                "remove the hostPath mount of /var/log or the pods/log permission of the service account",
            ),
            EdgeKind::ContainerAttach => technique(
                "CONTAINER_ATTACH",
                "T1609",
                "Container Administration Command",
                "attach to a container of a controlled pod",
                "restrict exec/attach/debug access to the pod",
            ),
            EdgeKind::EndpointExploit => technique(
                "ENDPOINT_EXPLOIT",
                "T1210",
                "Exploitation of Remote Services",
                "exploit the service listening on an exposed port",
                "patch the exposed service, restrict its exposure with a NetworkPolicy or remove the port",
            ),
            EdgeKind::ExploitContainerdSock => technique(
                "EXPLOIT_CONTAINERD_SOCK",
                "T1610",
                "Deploy Container",
                "drive the node's container runtime through its mounted socket and start a privileged container",
                "do not mount the container runtime socket (docker, containerd, cri-o) into pods",
            ),
            EdgeKind::ExploitHostRead => technique(
                "EXPLOIT_HOST_READ",
                ESCAPE,
                ESCAPE_NAME,
                "read sensitive host files (SSH keys, credentials) through a read-only host mount",
                "remove the hostPath mount of the sensitive host directory",
            ),
            EdgeKind::ExploitHostTraverse => technique(
                "EXPLOIT_HOST_TRAVERSE",
                "T1552",
                "Unsecured Credentials",
                "reach other pods' projected service account tokens under /var/lib/kubelet/pods",
                "do not mount /var/lib/kubelet or its parents from the host",
            ),
            EdgeKind::ExploitHostWrite => technique(
                "EXPLOIT_HOST_WRITE",
                ESCAPE,
                ESCAPE_NAME,
                "write a sensitive host path (cron, SSH keys, binaries) through a writable host mount",
                "remove the hostPath mount or mount it read-only",
            ),
            EdgeKind::IdentityAssume => technique(
                "IDENTITY_ASSUME",
                "T1078",
                "Valid Accounts",
                "act as the identity whose credentials are held",
                "set automountServiceAccountToken: false where the API is not needed, and reduce the identity's permissions",
            ),
            EdgeKind::IdentityImpersonate => technique(
                "IDENTITY_IMPERSONATE",
                "T1078",
                "Valid Accounts",
                "impersonate a user, group or service account",
                "remove the impersonate verb from the role",
            ),
            EdgeKind::PermissionDiscover => technique(
                "PERMISSION_DISCOVER",
                "T1069",
                "Permission Groups Discovery",
                "learn the permissions granted to the identity",
                "remove the binding if the identity does not need it",
            ),
            EdgeKind::PodAttach => technique(
                "POD_ATTACH",
                "T1609",
                "Container Administration Command",
                "from the node, attach to any pod running on it",
                "protect the node: break the path that leads to it",
            ),
            EdgeKind::PodCreate => technique(
                "POD_CREATE",
                "T1610",
                "Deploy Container",
                "create a privileged pod on a node",
                "remove create on pods and pod controllers, or enforce the restricted Pod Security Standard",
            ),
            EdgeKind::PodExec => technique(
                "POD_EXEC",
                "T1609",
                "Container Administration Command",
                "exec into a pod",
                "remove create on pods/exec from the role",
            ),
            EdgeKind::PodPatch => technique(
                "POD_PATCH",
                "T1609",
                "Container Administration Command",
                "patch a running pod or its controller (swap the image)",
                "remove patch/update on pods and pod controllers from the role",
            ),
            EdgeKind::RoleBind => technique(
                "ROLE_BIND",
                "T1078",
                "Valid Accounts",
                "create a binding to a more powerful role",
                "remove create on (cluster)rolebindings or the bind verb on roles from the role",
            ),
            EdgeKind::SharePsNamespace => technique(
                "SHARE_PS_NAMESPACE",
                "T1080",
                "Taint Shared Content",
                "reach a sibling container through the shared process namespace",
                "set shareProcessNamespace: false",
            ),
            EdgeKind::TokenBruteforce => technique(
                "TOKEN_BRUTEFORCE",
                "T1528",
                "Steal Application Access Token",
                "guess service account token secret names with get on secrets",
                "remove get on secrets from the role, or restrict it with resourceNames",
            ),
            EdgeKind::TokenList => technique(
                "TOKEN_LIST",
                "T1528",
                "Steal Application Access Token",
                "list secrets and read service account tokens",
                "remove list on secrets from the role",
            ),
            EdgeKind::TokenSteal => technique(
                "TOKEN_STEAL",
                "T1552",
                "Unsecured Credentials",
                "read the service account token from its projected volume",
                "set automountServiceAccountToken: false where the API is not needed",
            ),
            EdgeKind::VolumeAccess => technique(
                "VOLUME_ACCESS",
                "T1613",
                "Container and Resource Discovery",
                "from the node, read every volume mounted on it",
                "protect the node: break the path that leads to it",
            ),
            EdgeKind::VolumeDiscover => technique(
                "VOLUME_DISCOVER",
                "T1613",
                "Container and Resource Discovery",
                "see the volumes mounted in the container",
                "mount only what the container needs",
            ),
            EdgeKind::CeNetMitm => technique(
                "CE_NET_MITM",
                "T1557",
                "Adversary-in-the-Middle",
                "intercept or redirect traffic of the node's pods from the host network with NET_ADMIN",
                "remove hostNetwork and drop CAP_NET_ADMIN",
            ),
            EdgeKind::ImdsAccess => technique(
                "IMDS_ACCESS",
                "T1552.005",
                "Unsecured Credentials: Cloud Instance Metadata API",
                "read the node's cloud credentials from the instance metadata service",
                "block 169.254.169.254 with an egress NetworkPolicy and require IMDSv2 with hop limit 1",
            ),
            EdgeKind::CloudIdentityAssume => technique(
                "CLOUD_IDENTITY_ASSUME",
                "T1078.004",
                "Valid Accounts: Cloud Accounts",
                "use the cloud identity federated to the service account",
                "scope the cloud role to what the workload needs",
            ),
            _ => None,
        }
    }
}

/// An entity of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Stable id, unique in the tenant's graph.
    pub id: String,
    /// Kind.
    pub kind: EntityKind,
    /// Name.
    pub name: String,
    /// Namespace, empty when not namespaced.
    pub namespace: String,
    /// Cluster, empty for fleet-wide entities (images, vulnerabilities, the internet).
    pub cluster: String,
    /// Properties (privileged, host_network, severity, exposure ...).
    pub properties: BTreeMap<String, Value>,
}

impl Entity {
    /// A new entity without properties.
    pub fn new(kind: EntityKind, cluster: &str, namespace: &str, name: &str, id: String) -> Entity {
        Entity {
            id,
            kind,
            name: name.to_string(),
            namespace: namespace.to_string(),
            cluster: cluster.to_string(),
            properties: BTreeMap::new(),
        }
    }

    /// Sets a property.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Entity {
        self.properties.insert(key.to_string(), value.into());
        self
    }

    /// Sets a property in place.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.properties.insert(key.to_string(), value.into());
    }

    /// A boolean property (false when absent).
    pub fn flag(&self, key: &str) -> bool {
        self.properties
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// A string property.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(Value::as_str)
    }
}

/// Stable id of a cluster-scoped or namespaced entity.
pub fn entity_id(cluster: &str, kind: EntityKind, namespace: &str, name: &str) -> String {
    let namespace = if namespace.is_empty() { "_" } else { namespace };
    format!("{cluster}/{}/{namespace}/{name}", kind.as_str())
}

/// Stable id of an image (fleet-wide within a tenant).
pub fn image_id(reference: &str) -> String {
    format!("image/{reference}")
}

/// Stable id of a vulnerability (fleet-wide within a tenant).
pub fn vulnerability_id(advisory: &str) -> String {
    format!("vulnerability/{advisory}")
}

/// Stable id of the internet entity.
pub const INTERNET_ID: &str = "internet";

/// Normalises an image reference the way container runtimes resolve it: registry
/// `docker.io`, namespace `library` for official images, tag `latest` when none is given.
/// A digest is kept as is.
pub fn normalize_image(reference: &str) -> String {
    let reference = reference.trim();
    if reference.is_empty() {
        return String::new();
    }
    let (name_part, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    let last_slash = name_part.rfind('/').map(|index| index + 1).unwrap_or(0);
    let (repository, tag) = match name_part[last_slash..].rfind(':') {
        Some(colon) => (
            &name_part[..last_slash + colon],
            Some(&name_part[last_slash + colon + 1..]),
        ),
        None => (name_part, None),
    };
    let first = repository.split('/').next().unwrap_or_default();
    let has_registry = repository.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    let full_repository = if has_registry {
        repository.to_string()
    } else if repository.contains('/') {
        format!("docker.io/{repository}")
    } else {
        format!("docker.io/library/{repository}")
    };
    match (tag, digest) {
        (_, Some(digest)) => match tag {
            Some(tag) => format!("{full_repository}:{tag}@{digest}"),
            None => format!("{full_repository}@{digest}"),
        },
        (Some(tag), None) => format!("{full_repository}:{tag}"),
        (None, None) => format!("{full_repository}:latest"),
    }
}
