//! Lenient typed views of the Kubernetes objects the graph reads.
//!
//! Only the fields the graph uses are declared, every field is optional, and unknown fields
//! are ignored, so manifests from any Kubernetes version parse. Secret and ConfigMap payloads
//! are never declared: their values cannot enter the graph even when an input carries them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Object metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    /// Object name.
    pub name: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Kubernetes uid.
    pub uid: String,
    /// Resource version.
    pub resource_version: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Owners.
    pub owner_references: Vec<OwnerReference>,
}

/// An owner reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct OwnerReference {
    /// Owner kind.
    pub kind: String,
    /// Owner name.
    pub name: String,
}

/// A label selector.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Equality requirements.
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    pub match_expressions: Vec<SelectorRequirement>,
}

/// A set-based selector requirement.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct SelectorRequirement {
    /// Label key.
    pub key: String,
    /// In, NotIn, Exists, DoesNotExist.
    pub operator: String,
    /// Values for In / NotIn.
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether the selector matches the labels (an empty selector matches everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let labels_ok = self
            .match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value));
        labels_ok
            && self.match_expressions.iter().all(|requirement| {
                let present = labels.get(&requirement.key);
                match requirement.operator.as_str() {
                    "In" => present.is_some_and(|value| requirement.values.contains(value)),
                    "NotIn" => present.is_none_or(|value| !requirement.values.contains(value)),
                    "Exists" => present.is_some(),
                    "DoesNotExist" => present.is_none(),
                    _ => false,
                }
            })
    }

    /// Whether the selector has no requirement at all.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

/// Pod or container security context (the fields both share, plus the container ones).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct SecurityContext {
    /// Privileged container.
    pub privileged: Option<bool>,
    /// allowPrivilegeEscalation.
    pub allow_privilege_escalation: Option<bool>,
    /// readOnlyRootFilesystem.
    pub read_only_root_filesystem: Option<bool>,
    /// runAsUser.
    pub run_as_user: Option<i64>,
    /// runAsGroup.
    pub run_as_group: Option<i64>,
    /// runAsNonRoot.
    pub run_as_non_root: Option<bool>,
    /// Capabilities.
    pub capabilities: Option<Capabilities>,
    /// procMount.
    pub proc_mount: Option<String>,
    /// seccompProfile.
    pub seccomp_profile: Option<ProfileRef>,
    /// appArmorProfile.
    pub app_armor_profile: Option<ProfileRef>,
    /// seLinuxOptions (kept opaque).
    pub se_linux_options: Option<Value>,
    /// windowsOptions.
    pub windows_options: Option<WindowsOptions>,
}

/// Windows security options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct WindowsOptions {
    /// hostProcess.
    pub host_process: Option<bool>,
}

/// A seccomp or AppArmor profile reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ProfileRef {
    /// RuntimeDefault, Localhost, Unconfined.
    #[serde(rename = "type")]
    pub profile_type: String,
}

/// Linux capabilities.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Capabilities {
    /// Added capabilities.
    pub add: Vec<String>,
    /// Dropped capabilities.
    pub drop: Vec<String>,
}

/// A container port.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerPort {
    /// Port name.
    pub name: String,
    /// Port in the container.
    pub container_port: i64,
    /// Port on the host.
    pub host_port: Option<i64>,
    /// TCP, UDP, SCTP.
    pub protocol: String,
}

/// An environment variable (the value is kept only to detect credentials in env).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Literal value.
    pub value: Option<String>,
    /// Reference to a secret or config map key.
    pub value_from: Option<EnvVarSource>,
}

/// Source of an environment variable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvVarSource {
    /// Secret key reference.
    pub secret_key_ref: Option<KeyRef>,
    /// ConfigMap key reference.
    pub config_map_key_ref: Option<KeyRef>,
}

/// A key in a secret or config map.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct KeyRef {
    /// Object name.
    pub name: String,
    /// Key.
    pub key: String,
}

/// envFrom entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvFromSource {
    /// All keys of a secret.
    pub secret_ref: Option<NameRef>,
    /// All keys of a config map.
    pub config_map_ref: Option<NameRef>,
}

/// A reference by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NameRef {
    /// Object name.
    pub name: String,
}

/// A volume mount.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct VolumeMount {
    /// Volume name.
    pub name: String,
    /// Path in the container.
    pub mount_path: String,
    /// Read-only mount.
    pub read_only: Option<bool>,
}

/// Resource requirements.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Resources {
    /// Limits.
    pub limits: BTreeMap<String, Value>,
    /// Requests.
    pub requests: BTreeMap<String, Value>,
}

/// A container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// imagePullPolicy.
    pub image_pull_policy: String,
    /// Entrypoint.
    pub command: Vec<String>,
    /// Arguments.
    pub args: Vec<String>,
    /// Ports.
    pub ports: Vec<ContainerPort>,
    /// Environment.
    pub env: Vec<EnvVar>,
    /// envFrom.
    pub env_from: Vec<EnvFromSource>,
    /// Mounts.
    pub volume_mounts: Vec<VolumeMount>,
    /// Security context.
    pub security_context: Option<SecurityContext>,
    /// Resources.
    pub resources: Option<Resources>,
}

/// A volume of a pod.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Volume {
    /// Volume name.
    pub name: String,
    /// hostPath source.
    pub host_path: Option<HostPathSource>,
    /// projected source.
    pub projected: Option<ProjectedSource>,
    /// secret source.
    pub secret: Option<SecretVolumeSource>,
    /// configMap source.
    pub config_map: Option<NameRef>,
    /// PVC source.
    pub persistent_volume_claim: Option<PvcSource>,
}

/// hostPath volume source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HostPathSource {
    /// Host path.
    pub path: String,
    /// Type (Socket, Directory ...).
    #[serde(rename = "type")]
    pub path_type: Option<String>,
}

/// projected volume source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProjectedSource {
    /// Sources (kept opaque; only serviceAccountToken matters).
    pub sources: Vec<Value>,
}

/// secret volume source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct SecretVolumeSource {
    /// Secret name.
    pub secret_name: String,
}

/// PVC volume source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct PvcSource {
    /// Claim name.
    pub claim_name: String,
}

/// A pod spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    /// Containers.
    pub containers: Vec<Container>,
    /// Init containers.
    pub init_containers: Vec<Container>,
    /// Ephemeral containers.
    pub ephemeral_containers: Vec<Container>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// hostNetwork.
    pub host_network: Option<bool>,
    /// hostPID.
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    /// hostIPC.
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    /// shareProcessNamespace.
    pub share_process_namespace: Option<bool>,
    /// Service account.
    pub service_account_name: Option<String>,
    /// Deprecated alias of serviceAccountName.
    pub service_account: Option<String>,
    /// Token automount.
    pub automount_service_account_token: Option<bool>,
    /// Node the pod is bound to.
    pub node_name: Option<String>,
    /// Pod security context.
    pub security_context: Option<SecurityContext>,
}

/// A pod template.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PodTemplate {
    /// Template metadata.
    pub metadata: Meta,
    /// Template spec.
    pub spec: PodSpec,
}

/// Spec of a pod controller.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Selector.
    pub selector: Option<Value>,
    /// Pod template.
    pub template: Option<PodTemplate>,
    /// CronJob job template.
    pub job_template: Option<Box<JobTemplate>>,
    /// Replicas.
    pub replicas: Option<i64>,
}

/// CronJob job template.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobTemplate {
    /// Job spec.
    pub spec: WorkloadSpec,
}

/// A service port.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name.
    pub name: String,
    /// Service port.
    pub port: i64,
    /// Target port: number or container port name.
    pub target_port: Option<Value>,
    /// Node port.
    pub node_port: Option<i64>,
    /// Protocol.
    pub protocol: String,
}

/// A service spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceSpec {
    /// ClusterIP, NodePort, LoadBalancer, ExternalName.
    #[serde(rename = "type")]
    pub service_type: Option<String>,
    /// Pod selector.
    pub selector: Option<BTreeMap<String, String>>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// External IPs.
    #[serde(rename = "externalIPs")]
    pub external_ips: Vec<String>,
}

/// Ingress backend.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IngressBackend {
    /// Service backend.
    pub service: Option<IngressServiceBackend>,
    /// networking.k8s.io/v1beta1 form.
    #[serde(rename = "serviceName")]
    pub service_name: Option<String>,
}

/// Service backend of an ingress.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IngressServiceBackend {
    /// Service name.
    pub name: String,
}

/// Ingress spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct IngressSpec {
    /// Default backend.
    pub default_backend: Option<IngressBackend>,
    /// Older name of the default backend.
    pub backend: Option<IngressBackend>,
    /// Rules.
    pub rules: Vec<IngressRule>,
    /// TLS entries.
    pub tls: Vec<Value>,
}

/// Ingress rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IngressRule {
    /// Host.
    pub host: Option<String>,
    /// HTTP paths.
    pub http: Option<IngressHttp>,
}

/// Ingress HTTP rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IngressHttp {
    /// Paths.
    pub paths: Vec<IngressPath>,
}

/// Ingress path.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IngressPath {
    /// Backend.
    pub backend: IngressBackend,
}

/// A network policy spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Selected pods.
    pub pod_selector: LabelSelector,
    /// Ingress, Egress.
    pub policy_types: Vec<String>,
    /// Ingress rules (opaque).
    pub ingress: Vec<Value>,
    /// Egress rules (opaque).
    pub egress: Vec<Value>,
}

/// An RBAC policy rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(default, rename_all = "camelCase")]
pub struct PolicyRule {
    /// API groups.
    pub api_groups: Vec<String>,
    /// Resources, possibly with subresources.
    pub resources: Vec<String>,
    /// Verbs.
    pub verbs: Vec<String>,
    /// Names the rule is restricted to.
    pub resource_names: Vec<String>,
    /// Non-resource URLs.
    #[serde(rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

/// Aggregation rule of a ClusterRole.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct AggregationRule {
    /// Selectors of the aggregated roles.
    pub cluster_role_selectors: Vec<LabelSelector>,
}

/// Role reference of a binding.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RoleRef {
    /// Role or ClusterRole.
    pub kind: String,
    /// Role name.
    pub name: String,
}

/// Subject of a binding.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(default)]
pub struct Subject {
    /// User, Group, ServiceAccount.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace (service accounts).
    pub namespace: String,
}

/// A node address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeAddress {
    /// InternalIP, ExternalIP, Hostname ...
    #[serde(rename = "type")]
    pub address_type: String,
    /// Address.
    pub address: String,
}

/// An EndpointSlice endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct SliceEndpoint {
    /// Target object.
    pub target_ref: Option<TargetRef>,
}

/// A target reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TargetRef {
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
}
