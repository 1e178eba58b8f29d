//! Insights: posture controls that fail on an entity. The checklist is the cross-tool control
//! table (Kubescape, Polaris, kubeaudit, CIS 5.x, StackRox, Defender); each control names its
//! equivalents in those tools.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::derive::techniques_support::{clean_path, is_runtime_socket_path};
use crate::derive::{ClusterView, ContainerView, PodContext, PodView};
use crate::findings::Severity;
use crate::model::{EntityKind, entity_id};
use crate::object::{Body, ObjectKind};
use crate::rbac::{PermissionSet, grants_everything, has_wildcard};

/// A posture control.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Control {
    /// Stable id, e.g. "privileged-container".
    pub id: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// Severity when it fails.
    pub severity: Severity,
    /// Ids of the same control in other tools.
    pub equivalents: &'static [&'static str],
    /// What to do.
    pub remediation: &'static str,
}

macro_rules! control {
    ($name:ident, $id:literal, $title:literal, $severity:ident, [$($equivalent:literal),*], $remediation:literal) => {
        /// Control `$id`.
        pub const $name: Control = Control {
            id: $id,
            title: $title,
            severity: Severity::$severity,
            equivalents: &[$($equivalent),*],
            remediation: $remediation,
        };
    };
}

control!(
    PRIVILEGED,
    "privileged-container",
    "Privileged container",
    Critical,
    [
        "C-0057",
        "CIS-5.2.2",
        "polaris:runAsPrivileged",
        "kubeaudit:privileged",
        "stackrox:privileged"
    ],
    "remove securityContext.privileged"
);
control!(
    HOST_PID,
    "host-pid",
    "Pod shares the host PID namespace",
    High,
    [
        "C-0038",
        "CIS-5.2.3",
        "polaris:hostPIDSet",
        "kubeaudit:hostns"
    ],
    "remove hostPID"
);
control!(
    HOST_IPC,
    "host-ipc",
    "Pod shares the host IPC namespace",
    High,
    [
        "C-0038",
        "CIS-5.2.4",
        "polaris:hostIPCSet",
        "kubeaudit:hostns"
    ],
    "remove hostIPC"
);
control!(
    HOST_NETWORK,
    "host-network",
    "Pod uses the host network",
    High,
    [
        "C-0041",
        "CIS-5.2.5",
        "polaris:hostNetworkSet",
        "defender:uses-host-network"
    ],
    "remove hostNetwork"
);
control!(
    HOST_PATH,
    "host-path-mount",
    "Container mounts a host path",
    Medium,
    ["C-0048", "CIS-5.2.12", "polaris:hostPathSet"],
    "replace the hostPath volume with a PVC, configMap or emptyDir"
);
control!(
    WRITABLE_HOST_PATH,
    "writable-host-path",
    "Container mounts a host path read-write",
    High,
    ["C-0045"],
    "mount the host path read-only"
);
control!(
    SENSITIVE_HOST_PATH,
    "sensitive-host-path",
    "Container mounts a sensitive host path",
    High,
    ["C-0020", "kubeaudit:mounts", "KHV047"],
    "do not mount host credential or system directories"
);
control!(
    RUNTIME_SOCKET,
    "runtime-socket-mount",
    "Container runtime socket mounted",
    Critical,
    ["C-0074", "kubeaudit:mounts", "stackrox:docker_sock"],
    "do not mount docker.sock, containerd.sock or crio.sock"
);
control!(
    DANGEROUS_CAPS,
    "dangerous-capabilities",
    "Dangerous capabilities added",
    High,
    [
        "C-0046",
        "CIS-5.2.9",
        "polaris:dangerousCapabilities",
        "kubeaudit:capabilities"
    ],
    "remove SYS_ADMIN, SYS_MODULE, SYS_PTRACE, NET_ADMIN, BPF and ALL from capabilities.add"
);
control!(
    NET_RAW,
    "net-raw-not-dropped",
    "NET_RAW capability not dropped",
    Low,
    ["CIS-5.2.8", "CIS-5.7.3"],
    "drop NET_RAW (or ALL)"
);
control!(
    PRIV_ESCALATION,
    "privilege-escalation-allowed",
    "allowPrivilegeEscalation not false",
    Medium,
    [
        "C-0016",
        "CIS-5.2.6",
        "polaris:privilegeEscalationAllowed",
        "kubeaudit:privesc"
    ],
    "set allowPrivilegeEscalation: false"
);
control!(
    RUNS_AS_ROOT,
    "runs-as-root",
    "Container may run as root",
    Medium,
    [
        "C-0013",
        "CIS-5.2.7",
        "polaris:runAsRootAllowed",
        "kubeaudit:nonroot"
    ],
    "set runAsNonRoot: true and a non-zero runAsUser"
);
control!(
    WRITABLE_ROOT_FS,
    "writable-root-filesystem",
    "Root filesystem is writable",
    Low,
    [
        "C-0017",
        "polaris:notReadOnlyRootFilesystem",
        "kubeaudit:rootfs"
    ],
    "set readOnlyRootFilesystem: true"
);
control!(
    TOKEN_AUTOMOUNT,
    "service-account-token-automounted",
    "Service account token automounted",
    Low,
    [
        "C-0034",
        "CIS-5.1.6",
        "polaris:automountServiceAccountToken",
        "kubeaudit:asat"
    ],
    "set automountServiceAccountToken: false where the pod does not call the API"
);
control!(
    DEFAULT_SA,
    "default-service-account",
    "Pod uses the default service account",
    Low,
    ["C-0189", "CIS-5.1.5"],
    "give the workload its own service account"
);
control!(
    SECRET_ENV,
    "secret-in-env",
    "Secret exposed as an environment variable",
    Medium,
    ["CIS-5.4.1", "stackrox:secret_env"],
    "mount secrets as files instead of environment variables"
);
control!(
    CREDENTIALS_ENV,
    "credentials-in-env",
    "Credentials in environment variable values",
    High,
    ["C-0012", "polaris:sensitiveContainerEnvVar"],
    "move the credential into a Secret"
);
control!(
    HOST_PORT,
    "host-port",
    "Container binds a host port",
    Medium,
    ["C-0044", "CIS-5.2.13", "polaris:hostPortSet"],
    "remove hostPort; expose the pod through a Service"
);
control!(
    INTERNET_EXPOSED,
    "internet-exposed",
    "Exposed to the internet",
    Medium,
    [
        "C-0256",
        "defender:exposed-to-the-internet",
        "stackrox:external_exposure"
    ],
    "restrict the LoadBalancer/NodePort/Ingress with source ranges or make it internal"
);
control!(
    NO_NETWORK_POLICY,
    "missing-network-policy",
    "No NetworkPolicy selects the pod",
    Low,
    [
        "C-0260",
        "CIS-5.3.2",
        "polaris:missingNetworkPolicy",
        "kubeaudit:netpols"
    ],
    "add a default-deny NetworkPolicy and allow only needed traffic"
);
control!(
    NO_LIMITS,
    "missing-resource-limits",
    "No CPU or memory limits",
    Low,
    ["C-0009", "C-0270", "C-0271"],
    "set resources.limits.cpu and resources.limits.memory"
);
control!(
    NO_SECCOMP,
    "seccomp-unconfined",
    "No seccomp profile",
    Low,
    ["C-0210", "CIS-5.7.2", "kubeaudit:seccomp"],
    "set seccompProfile.type: RuntimeDefault"
);
control!(
    APPARMOR_UNCONFINED,
    "apparmor-unconfined",
    "AppArmor disabled",
    Medium,
    ["C-0055", "kubeaudit:apparmor"],
    "remove the Unconfined AppArmor profile"
);
control!(
    LATEST_TAG,
    "image-not-pinned",
    "Image uses latest or no tag",
    Low,
    ["C-0075", "polaris:tagNotSpecified", "CIS-5.5.1"],
    "pin the image to a version tag or digest"
);
control!(
    PROC_MOUNT,
    "unmasked-proc-mount",
    "procMount Unmasked",
    High,
    ["C-0202", "polaris:procMount"],
    "remove procMount: Unmasked"
);
control!(
    HOST_PROCESS,
    "windows-host-process",
    "Windows HostProcess container",
    Critical,
    ["polaris:hostProcess"],
    "remove windowsOptions.hostProcess"
);
control!(
    RBAC_WILDCARD,
    "rbac-wildcard",
    "Role uses wildcards",
    Medium,
    ["C-0187", "CIS-5.1.3"],
    "list the verbs, resources and API groups explicitly"
);
control!(
    CLUSTER_ADMIN,
    "cluster-admin-binding",
    "Subject bound to cluster-admin or equivalent",
    Critical,
    [
        "C-0035",
        "CIS-5.1.1",
        "polaris:clusterrolebindingClusterAdmin"
    ],
    "bind a narrower role"
);
control!(
    SECRETS_ACCESS,
    "secrets-access",
    "Subject can read secrets",
    High,
    ["C-0015", "CIS-5.1.2"],
    "remove get/list/watch on secrets"
);
control!(
    POD_CREATE,
    "pod-create",
    "Subject can create pods or pod controllers",
    High,
    ["C-0188", "CIS-5.1.4"],
    "remove create on pods and controllers"
);
control!(
    POD_EXEC,
    "pod-exec",
    "Subject can exec, attach or port-forward into pods",
    High,
    ["C-0002", "C-0063", "polaris:clusterrolePodExecAttach"],
    "remove create on pods/exec, pods/attach and pods/portforward"
);
control!(
    BIND_ESCALATE,
    "bind-escalate",
    "Subject can bind or escalate roles",
    Critical,
    ["C-0191", "CIS-5.1.8"],
    "remove the bind and escalate verbs"
);
control!(
    IMPERSONATE,
    "impersonate",
    "Subject can impersonate users, groups or service accounts",
    Critical,
    ["C-0065", "CIS-5.1.8"],
    "remove the impersonate verb"
);
control!(
    NODES_PROXY,
    "nodes-proxy",
    "Subject can reach the kubelet through nodes/proxy",
    High,
    ["C-0279", "CIS-5.1.10"],
    "remove access to nodes/proxy"
);
control!(
    CSR_APPROVE,
    "csr-approve",
    "Subject can approve certificate signing requests",
    High,
    ["C-0280", "CIS-5.1.11"],
    "remove update on certificatesigningrequests/approval"
);
control!(
    WEBHOOK_CONFIG,
    "webhook-config",
    "Subject can change admission webhooks",
    High,
    ["C-0281", "CIS-5.1.12"],
    "remove write access to (mutating|validating)webhookconfigurations"
);
control!(
    TOKEN_CREATE,
    "token-create",
    "Subject can create service account tokens",
    High,
    ["C-0282", "CIS-5.1.13"],
    "remove create on serviceaccounts/token"
);
control!(
    PV_CREATE,
    "pv-create",
    "Subject can create persistent volumes",
    Medium,
    ["C-0278", "CIS-5.1.9"],
    "remove create on persistentvolumes"
);
control!(
    ANONYMOUS_BINDING,
    "anonymous-binding",
    "Role bound to unauthenticated or all authenticated users",
    High,
    ["C-0262"],
    "remove system:anonymous, system:unauthenticated and system:authenticated from the binding"
);
control!(
    CRITICAL_VULNS,
    "critical-vulnerabilities",
    "Image has critical vulnerabilities",
    Critical,
    [
        "C-0083",
        "C-0085",
        "defender:has-high-severity-vulnerabilities",
        "stackrox:cvss_7"
    ],
    "update the image to a version with fixes"
);
control!(
    HIGH_VULNS,
    "high-vulnerabilities",
    "Image has high-severity vulnerabilities",
    High,
    ["C-0085", "defender:has-high-severity-vulnerabilities"],
    "update the image to a version with fixes"
);
control!(
    RCE_VULN,
    "rce-vulnerability",
    "Image is vulnerable to remote code execution",
    Critical,
    ["C-0084", "defender:vulnerable-to-remote-code-execution"],
    "update the image; until then keep it off the internet"
);
control!(
    RECENT_ALERT,
    "recent-alert",
    "Runtime or audit alert on the entity",
    High,
    ["defender:alerts"],
    "investigate the alert; treat the workload as compromised until cleared"
);

/// Every control, for listings.
pub const ALL_CONTROLS: &[Control] = &[
    PRIVILEGED,
    HOST_PID,
    HOST_IPC,
    HOST_NETWORK,
    HOST_PATH,
    WRITABLE_HOST_PATH,
    SENSITIVE_HOST_PATH,
    RUNTIME_SOCKET,
    DANGEROUS_CAPS,
    NET_RAW,
    PRIV_ESCALATION,
    RUNS_AS_ROOT,
    WRITABLE_ROOT_FS,
    TOKEN_AUTOMOUNT,
    DEFAULT_SA,
    SECRET_ENV,
    CREDENTIALS_ENV,
    HOST_PORT,
    INTERNET_EXPOSED,
    NO_NETWORK_POLICY,
    NO_LIMITS,
    NO_SECCOMP,
    APPARMOR_UNCONFINED,
    LATEST_TAG,
    PROC_MOUNT,
    HOST_PROCESS,
    RBAC_WILDCARD,
    CLUSTER_ADMIN,
    SECRETS_ACCESS,
    POD_CREATE,
    POD_EXEC,
    BIND_ESCALATE,
    IMPERSONATE,
    NODES_PROXY,
    CSR_APPROVE,
    WEBHOOK_CONFIG,
    TOKEN_CREATE,
    PV_CREATE,
    ANONYMOUS_BINDING,
    CRITICAL_VULNS,
    HIGH_VULNS,
    RCE_VULN,
    RECENT_ALERT,
];

/// A control failing on an entity.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Insight {
    /// Stable id: the same control on the same entity always gets the same id.
    pub id: String,
    /// Control id.
    pub control_id: &'static str,
    /// Control title.
    pub title: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Entity the insight is about.
    pub entity_id: String,
    /// Its kind.
    pub entity_kind: EntityKind,
    /// Cluster.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Entity name.
    pub name: String,
    /// The Kubernetes object to fix (`Deployment/ns/name` ...).
    pub object: String,
    /// Evidence: the fields and values that make the control fail.
    pub evidence: BTreeMap<String, String>,
    /// Equivalent controls of other tools.
    pub equivalents: &'static [&'static str],
    /// What to do.
    pub remediation: &'static str,
}

impl Insight {
    /// A new insight of `control` on an entity.
    pub fn new(
        control: &Control,
        entity_id: String,
        kind: EntityKind,
        cluster: &str,
        namespace: &str,
        name: &str,
        object: String,
    ) -> Insight {
        Insight {
            id: format!("{}:{entity_id}", control.id),
            control_id: control.id,
            title: control.title,
            severity: control.severity,
            entity_id,
            entity_kind: kind,
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            object,
            evidence: BTreeMap::new(),
            equivalents: control.equivalents,
            remediation: control.remediation,
        }
    }

    /// Adds evidence.
    pub fn evidence(mut self, key: &str, value: impl Into<String>) -> Insight {
        self.evidence.insert(key.to_string(), value.into());
        self
    }
}

struct Collector<'v> {
    view: &'v ClusterView<'v>,
    insights: BTreeMap<String, Insight>,
}

impl Collector<'_> {
    fn pod(&mut self, control: &Control, pod: &PodView<'_>, evidence: &[(&str, String)]) {
        let mut insight = Insight::new(
            control,
            pod.id.clone(),
            EntityKind::Pod,
            &self.view.cluster,
            &pod.namespace,
            &pod.name,
            pod.source.to_string(),
        );
        for (key, value) in evidence {
            insight = insight.evidence(key, value.clone());
        }
        self.push(insight);
    }

    fn container(
        &mut self,
        control: &Control,
        pod: &PodView<'_>,
        container: &ContainerView<'_>,
        evidence: &[(&str, String)],
    ) {
        let mut insight = Insight::new(
            control,
            container.id.clone(),
            EntityKind::Container,
            &self.view.cluster,
            &pod.namespace,
            &container.spec.name,
            pod.source.to_string(),
        )
        .evidence("pod", pod.name.clone());
        for (key, value) in evidence {
            insight = insight.evidence(key, value.clone());
        }
        self.push(insight);
    }

    fn push(&mut self, insight: Insight) {
        match self.insights.get_mut(&insight.id) {
            Some(existing) => existing.evidence.extend(insight.evidence),
            None => {
                self.insights.insert(insight.id.clone(), insight);
            }
        }
    }
}

/// Kubescape's default insecure capabilities, plus DAC_READ_SEARCH (host file reads).
const DANGEROUS: &[&str] = &[
    "ALL",
    "SETPCAP",
    "NET_ADMIN",
    "NET_RAW",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_PTRACE",
    "SYS_ADMIN",
    "SYS_BOOT",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "PERFMON",
    "BPF",
    "DAC_READ_SEARCH",
];

/// Names of environment variables that hold credentials (Polaris' and Kubescape's lists).
fn sensitive_env_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "bearer",
        "key",
        "credential",
        "jwt",
        "cert",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
        || lower == "aws_secret_access_key"
        || lower == "google_application_credentials"
        || (lower.starts_with("azure_") && lower.ends_with("key"))
}

/// Values that look like credentials whatever the variable is called.
fn credential_value(value: &str) -> bool {
    value.starts_with("AKIA") && value.len() == 20
        || value.contains("-----BEGIN") && value.contains("PRIVATE KEY")
        || value.to_ascii_lowercase().starts_with("bearer ")
}

fn sensitive_host_path(path: &str) -> bool {
    const SENSITIVE: &[&str] = &[
        "/",
        "/etc",
        "/etc/kubernetes",
        "/etc/kubernetes/pki",
        "/root",
        "/root/.ssh",
        "/home",
        "/proc",
        "/sys",
        "/var/lib/kubelet",
        "/var/lib/kubelet/pods",
        "/var/lib/etcd",
        "/var/lib/docker",
        "/var/lib/containerd",
        "/var/log",
        "/var/run",
        "/run",
        "/boot",
        "/dev",
        "/var/lib",
        "/var",
    ];
    SENSITIVE.contains(&path)
        || path.starts_with("/etc/kubernetes")
        || path.starts_with("/var/lib/kubelet")
        || path.starts_with("/home/") && path.ends_with("/.ssh")
}

/// Posture insights of one cluster (workloads and RBAC). Vulnerability and alert insights
/// come from [`vulnerability_insights`] and [`alert_insights`].
pub fn cluster_insights(view: &ClusterView<'_>) -> Vec<Insight> {
    let mut collector = Collector {
        view,
        insights: BTreeMap::new(),
    };
    let context = PodContext::build(view);
    for pod in &view.pods {
        workload_insights(&mut collector, pod, context.policies_of(&pod.namespace));
    }
    collect_cluster_level(&mut collector);
    collector.insights.into_values().collect()
}

/// The insights of one pod (and its containers).
pub fn pod_insights(
    view: &ClusterView<'_>,
    context: &PodContext<'_>,
    pod: &PodView<'_>,
) -> Vec<Insight> {
    let mut collector = Collector {
        view,
        insights: BTreeMap::new(),
    };
    workload_insights(&mut collector, pod, context.policies_of(&pod.namespace));
    collector.insights.into_values().collect()
}

/// The insights of a cluster that are not about a pod: RBAC, bindings and roles.
pub fn cluster_level_insights(view: &ClusterView<'_>) -> Vec<Insight> {
    let mut collector = Collector {
        view,
        insights: BTreeMap::new(),
    };
    collect_cluster_level(&mut collector);
    collector.insights.into_values().collect()
}

fn collect_cluster_level(collector: &mut Collector<'_>) {
    let view = collector.view;
    for set in &view.rbac.permission_sets {
        rbac_insights(collector, set);
    }
    // Bindings to anonymous users count even when the role is not in the inventory.
    for binding in view
        .inventory
        .of_kind(ObjectKind::RoleBinding)
        .chain(view.inventory.of_kind(ObjectKind::ClusterRoleBinding))
    {
        let Body::Binding { subjects, role_ref } = &binding.body else {
            continue;
        };
        let anonymous: Vec<&str> = subjects
            .iter()
            .map(|subject| subject.name.as_str())
            .filter(|name| matches!(*name, "system:anonymous" | "system:unauthenticated"))
            .collect();
        if anonymous.is_empty() {
            continue;
        }
        let kind = if binding.kind == ObjectKind::ClusterRoleBinding {
            EntityKind::ClusterRoleBinding
        } else {
            EntityKind::RoleBinding
        };
        let id = entity_id(
            &view.cluster,
            kind,
            &binding.meta.namespace,
            &binding.meta.name,
        );
        collector.push(
            Insight::new(
                &ANONYMOUS_BINDING,
                id,
                kind,
                &view.cluster,
                &binding.meta.namespace,
                &binding.meta.name,
                binding.key().to_string(),
            )
            .evidence("subjects", anonymous.join(","))
            .evidence("role", role_ref.name.clone()),
        );
    }
    for role in view
        .inventory
        .of_kind(ObjectKind::Role)
        .chain(view.inventory.of_kind(ObjectKind::ClusterRole))
    {
        let rules = match role.kind {
            ObjectKind::ClusterRole => view
                .rbac
                .cluster_roles
                .get(&role.meta.name)
                .cloned()
                .unwrap_or_default(),
            _ => view
                .rbac
                .roles
                .get(&(role.meta.namespace.clone(), role.meta.name.clone()))
                .cloned()
                .unwrap_or_default(),
        };
        if has_wildcard(&rules) {
            let kind = if role.kind == ObjectKind::ClusterRole {
                EntityKind::ClusterRole
            } else {
                EntityKind::Role
            };
            let id = entity_id(&view.cluster, kind, &role.meta.namespace, &role.meta.name);
            collector.push(Insight::new(
                &RBAC_WILDCARD,
                id,
                kind,
                &view.cluster,
                &role.meta.namespace,
                &role.meta.name,
                role.key().to_string(),
            ));
        }
    }
}

fn workload_insights(
    collector: &mut Collector<'_>,
    pod: &PodView<'_>,
    policies: &[(String, &crate::k8s::LabelSelector)],
) {
    let view = collector.view;
    let spec = pod.spec;
    if spec.host_pid.unwrap_or(false) {
        collector.pod(&HOST_PID, pod, &[("hostPID", "true".into())]);
    }
    if spec.host_ipc.unwrap_or(false) {
        collector.pod(&HOST_IPC, pod, &[("hostIPC", "true".into())]);
    }
    if spec.host_network.unwrap_or(false) {
        collector.pod(&HOST_NETWORK, pod, &[("hostNetwork", "true".into())]);
    }
    if pod.token_mounted {
        collector.pod(
            &TOKEN_AUTOMOUNT,
            pod,
            &[("serviceAccount", pod.service_account.clone())],
        );
    }
    if pod.service_account == "default" {
        collector.pod(&DEFAULT_SA, pod, &[("serviceAccount", "default".into())]);
    }
    if !policies
        .iter()
        .any(|(_, selector)| selector.matches(pod.labels))
    {
        collector.pod(
            &NO_NETWORK_POLICY,
            pod,
            &[("namespace", pod.namespace.clone())],
        );
    }
    for volume in &spec.volumes {
        let Some(host_path) = view.host_path_of(&pod.namespace, volume) else {
            continue;
        };
        let path = clean_path(&host_path);
        if is_runtime_socket_path(&path) && path != "/" && path != "/var" {
            let mounted = pod
                .containers
                .iter()
                .any(|container| container.mounts_of(&volume.name).next().is_some());
            collector.pod(
                &RUNTIME_SOCKET,
                pod,
                &[
                    ("hostPath", path.clone()),
                    ("volume", volume.name.clone()),
                    ("mounted", mounted.to_string()),
                ],
            );
        }
        for container in &pod.containers {
            for (mount_path, read_only) in container.mounts_of(&volume.name) {
                let evidence = [
                    ("hostPath", path.clone()),
                    ("mountPath", mount_path.to_string()),
                    ("readOnly", read_only.to_string()),
                ];
                collector.container(&HOST_PATH, pod, container, &evidence);
                if !read_only {
                    collector.container(&WRITABLE_HOST_PATH, pod, container, &evidence);
                }
                if sensitive_host_path(&path) {
                    collector.container(&SENSITIVE_HOST_PATH, pod, container, &evidence);
                }
            }
        }
    }
    for container in &pod.containers {
        container_insights(collector, pod, container);
    }
}

fn container_insights(
    collector: &mut Collector<'_>,
    pod: &PodView<'_>,
    container: &ContainerView<'_>,
) {
    let context = container.security_context().cloned().unwrap_or_default();
    if container.privileged {
        collector.container(
            &PRIVILEGED,
            pod,
            container,
            &[("privileged", "true".into())],
        );
    } else if container.adds_cap("SYS_ADMIN") {
        // CAP_SYS_ADMIN is most of what privileged grants (mount, namespaces, BPF ...).
        collector.container(
            &PRIVILEGED,
            pod,
            container,
            &[("capabilities.add", "SYS_ADMIN".into())],
        );
    }
    let dangerous: Vec<String> = container
        .caps_add
        .iter()
        .filter(|cap| DANGEROUS.contains(&cap.as_str()))
        .cloned()
        .collect();
    if !dangerous.is_empty() {
        collector.container(
            &DANGEROUS_CAPS,
            pod,
            container,
            &[("capabilities.add", dangerous.join(","))],
        );
    }
    if !container.privileged
        && !container.caps_drop.contains("NET_RAW")
        && !container.caps_drop.contains("ALL")
    {
        collector.container(
            &NET_RAW,
            pod,
            container,
            &[(
                "capabilities.drop",
                container
                    .caps_drop
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            )],
        );
    }
    if context.allow_privilege_escalation != Some(false) || container.privileged {
        collector.container(
            &PRIV_ESCALATION,
            pod,
            container,
            &[(
                "allowPrivilegeEscalation",
                format!("{:?}", context.allow_privilege_escalation),
            )],
        );
    }
    let non_root = container.run_as_user.is_some_and(|user| user > 0)
        || (container.run_as_non_root == Some(true) && container.run_as_user != Some(0));
    if !non_root {
        collector.container(
            &RUNS_AS_ROOT,
            pod,
            container,
            &[
                ("runAsUser", format!("{:?}", container.run_as_user)),
                ("runAsNonRoot", format!("{:?}", container.run_as_non_root)),
            ],
        );
    }
    if context.read_only_root_filesystem != Some(true) {
        collector.container(
            &WRITABLE_ROOT_FS,
            pod,
            container,
            &[(
                "readOnlyRootFilesystem",
                format!("{:?}", context.read_only_root_filesystem),
            )],
        );
    }
    for variable in &container.spec.env {
        if variable
            .value_from
            .as_ref()
            .is_some_and(|source| source.secret_key_ref.is_some())
        {
            collector.container(
                &SECRET_ENV,
                pod,
                container,
                &[("env", variable.name.clone())],
            );
        }
        // A path names where a credential is, not the credential.
        if let Some(value) = variable.value.as_deref()
            && !value.is_empty()
            && !value.starts_with('/')
            && (sensitive_env_name(&variable.name) || credential_value(value))
        {
            collector.container(
                &CREDENTIALS_ENV,
                pod,
                container,
                &[("env", variable.name.clone())],
            );
        }
    }
    if let Some(secret) = container
        .spec
        .env_from
        .iter()
        .find_map(|source| source.secret_ref.as_ref())
    {
        let evidence = [("envFrom.secretRef", secret.name.clone())];
        collector.container(&SECRET_ENV, pod, container, &evidence);
        // Every key of the secret lands in the environment, credentials included.
        collector.container(&CREDENTIALS_ENV, pod, container, &evidence);
    }
    let host_ports: Vec<String> = container
        .spec
        .ports
        .iter()
        .filter_map(|port| port.host_port.filter(|port| *port > 0))
        .map(|port| port.to_string())
        .collect();
    if !host_ports.is_empty() {
        collector.container(
            &HOST_PORT,
            pod,
            container,
            &[("hostPort", host_ports.join(","))],
        );
    }
    let limits = container
        .spec
        .resources
        .as_ref()
        .map(|resources| &resources.limits);
    if container.role == "regular"
        && !limits.is_some_and(|limits| limits.contains_key("cpu") && limits.contains_key("memory"))
    {
        collector.container(&NO_LIMITS, pod, container, &[]);
    }
    if !matches!(
        container.seccomp.as_deref(),
        Some("RuntimeDefault" | "Localhost")
    ) {
        collector.container(
            &NO_SECCOMP,
            pod,
            container,
            &[("seccompProfile", format!("{:?}", container.seccomp))],
        );
    }
    if container.apparmor_unconfined {
        collector.container(
            &APPARMOR_UNCONFINED,
            pod,
            container,
            &[("appArmorProfile", "Unconfined".into())],
        );
    }
    let image = &container.spec.image;
    let tag = image
        .rsplit('/')
        .next()
        .and_then(|last| last.split_once(':').map(|(_, tag)| tag.to_string()));
    if !image.contains('@') && tag.as_deref().is_none_or(|tag| tag == "latest") {
        collector.container(&LATEST_TAG, pod, container, &[("image", image.clone())]);
    }
    if context.proc_mount.as_deref() == Some("Unmasked") {
        collector.container(
            &PROC_MOUNT,
            pod,
            container,
            &[("procMount", "Unmasked".into())],
        );
    }
    let host_process = context
        .windows_options
        .as_ref()
        .and_then(|options| options.host_process)
        .or(pod
            .spec
            .security_context
            .as_ref()
            .and_then(|context| context.windows_options.as_ref())
            .and_then(|options| options.host_process));
    if host_process == Some(true) {
        collector.container(
            &HOST_PROCESS,
            pod,
            container,
            &[("hostProcess", "true".into())],
        );
    }
}

fn rbac_insights(collector: &mut Collector<'_>, set: &PermissionSet) {
    let view = collector.view;
    let namespace = set.namespace().to_string();
    let id = entity_id(
        &view.cluster,
        EntityKind::PermissionSet,
        &namespace,
        &set.name,
    );
    let object = format!(
        "{}/{}{}",
        set.binding_kind.name(),
        if namespace.is_empty() {
            String::new()
        } else {
            format!("{namespace}/")
        },
        set.binding_name
    );
    let subjects = set
        .subjects
        .iter()
        .map(|subject| format!("{}:{}", subject.kind, subject.name))
        .collect::<Vec<_>>()
        .join(",");
    let mut fire = |control: &Control, detail: &str| {
        collector.push(
            Insight::new(
                control,
                id.clone(),
                EntityKind::PermissionSet,
                &view.cluster,
                &namespace,
                &set.name,
                object.clone(),
            )
            .evidence("subjects", subjects.clone())
            .evidence("grant", detail.to_string()),
        );
    };
    let any = |verbs: &[&str], group: &str, resource: &str| {
        verbs.iter().any(|verb| {
            set.allows(verb, group, resource, &namespace, None)
                || (!set.is_namespaced() && set.allows(verb, group, resource, "kube-system", None))
        })
    };
    let named = |verbs: &[&str], group: &str, resource: &str| {
        verbs.iter().any(|verb| {
            set.allowed_names(verb, group, resource, &namespace)
                .is_none_or(|names| !names.is_empty())
        })
    };
    let all_verbs_all_resources = set.rules.iter().any(|rule| {
        rule.resource_names.is_empty()
            && rule.verbs.iter().any(|verb| verb == "*")
            && rule.resources.iter().any(|resource| resource == "*")
    });
    if set.role_name == "cluster-admin" || grants_everything(&set.rules) || all_verbs_all_resources
    {
        let scope = if set.is_namespaced() {
            format!("{} in namespace {namespace}", set.role_name)
        } else {
            set.role_name.clone()
        };
        fire(&CLUSTER_ADMIN, &scope);
    }
    if named(&["get", "list", "watch"], "", "secrets") {
        fire(&SECRETS_ACCESS, "get/list/watch secrets");
    }
    if [
        "pods",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "jobs",
        "cronjobs",
    ]
    .iter()
    .any(|resource| {
        let group = match *resource {
            "pods" => "",
            "jobs" | "cronjobs" => "batch",
            _ => "apps",
        };
        any(&["create"], group, resource)
    }) {
        fire(&POD_CREATE, "create pods or controllers");
    }
    if named(&["create", "get"], "", "pods/exec")
        || named(&["create", "get"], "", "pods/attach")
        || named(&["create", "get"], "", "pods/portforward")
    {
        fire(&POD_EXEC, "pods/exec, pods/attach or pods/portforward");
    }
    let rbac = "rbac.authorization.k8s.io";
    if named(&["bind", "escalate"], rbac, "roles")
        || named(&["bind", "escalate"], rbac, "clusterroles")
    {
        fire(&BIND_ESCALATE, "bind or escalate on roles");
    }
    if named(&["impersonate"], "", "users")
        || named(&["impersonate"], "", "groups")
        || named(&["impersonate"], "", "serviceaccounts")
        || named(
            &["impersonate"],
            "authentication.k8s.io",
            "userextras/scopes",
        )
    {
        fire(&IMPERSONATE, "impersonate");
    }
    if named(&["get", "create"], "", "nodes/proxy") {
        fire(&NODES_PROXY, "nodes/proxy");
    }
    if named(
        &["update", "patch"],
        "certificates.k8s.io",
        "certificatesigningrequests/approval",
    ) {
        fire(&CSR_APPROVE, "certificatesigningrequests/approval");
    }
    if named(
        &["create", "update", "patch", "delete"],
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ) || named(
        &["create", "update", "patch", "delete"],
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ) {
        fire(&WEBHOOK_CONFIG, "admission webhook configurations");
    }
    if named(&["create"], "", "serviceaccounts/token") {
        fire(&TOKEN_CREATE, "serviceaccounts/token");
    }
    if named(&["create"], "", "persistentvolumes") {
        fire(&PV_CREATE, "persistentvolumes");
    }
    if set
        .subjects
        .iter()
        .any(|subject| subject.name == "system:authenticated")
        && crate::derive::techniques_support::is_takeover_set(set)
    {
        fire(&ANONYMOUS_BINDING, &subjects);
    }
}
