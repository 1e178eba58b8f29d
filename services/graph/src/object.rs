//! Inventory objects: one Kubernetes object reduced to what the graph needs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::k8s::{
    AggregationRule, IngressSpec, Meta, NetworkPolicySpec, NodeAddress, PodSpec, PolicyRule,
    RoleRef, ServiceSpec, SliceEndpoint, Subject, WorkloadSpec,
};

/// The Kubernetes kinds the inventory watches and the graph understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectKind {
    /// Namespace.
    Namespace,
    /// Node.
    Node,
    /// Pod.
    Pod,
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// v1 ReplicationController.
    ReplicationController,
    /// Service.
    Service,
    /// v1 Endpoints.
    Endpoints,
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlice,
    /// networking.k8s.io/v1 Ingress.
    Ingress,
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy,
    /// ServiceAccount.
    ServiceAccount,
    /// rbac Role.
    Role,
    /// rbac ClusterRole.
    ClusterRole,
    /// rbac RoleBinding.
    RoleBinding,
    /// rbac ClusterRoleBinding.
    ClusterRoleBinding,
    /// Secret (metadata only).
    Secret,
    /// ConfigMap (metadata only).
    ConfigMap,
    /// PersistentVolume.
    PersistentVolume,
    /// PersistentVolumeClaim.
    PersistentVolumeClaim,
}

/// Every kind, in watch order (RBAC and nodes before pods so early graphs are coherent).
pub const ALL_KINDS: [ObjectKind; 24] = [
    ObjectKind::Namespace,
    ObjectKind::Node,
    ObjectKind::ClusterRole,
    ObjectKind::ClusterRoleBinding,
    ObjectKind::Role,
    ObjectKind::RoleBinding,
    ObjectKind::ServiceAccount,
    ObjectKind::Secret,
    ObjectKind::ConfigMap,
    ObjectKind::PersistentVolume,
    ObjectKind::PersistentVolumeClaim,
    ObjectKind::Deployment,
    ObjectKind::ReplicaSet,
    ObjectKind::StatefulSet,
    ObjectKind::DaemonSet,
    ObjectKind::Job,
    ObjectKind::CronJob,
    ObjectKind::ReplicationController,
    ObjectKind::Pod,
    ObjectKind::Service,
    ObjectKind::Endpoints,
    ObjectKind::EndpointSlice,
    ObjectKind::Ingress,
    ObjectKind::NetworkPolicy,
];

impl ObjectKind {
    /// Kind name as Kubernetes spells it.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Namespace => "Namespace",
            ObjectKind::Node => "Node",
            ObjectKind::Pod => "Pod",
            ObjectKind::Deployment => "Deployment",
            ObjectKind::ReplicaSet => "ReplicaSet",
            ObjectKind::StatefulSet => "StatefulSet",
            ObjectKind::DaemonSet => "DaemonSet",
            ObjectKind::Job => "Job",
            ObjectKind::CronJob => "CronJob",
            ObjectKind::ReplicationController => "ReplicationController",
            ObjectKind::Service => "Service",
            ObjectKind::Endpoints => "Endpoints",
            ObjectKind::EndpointSlice => "EndpointSlice",
            ObjectKind::Ingress => "Ingress",
            ObjectKind::NetworkPolicy => "NetworkPolicy",
            ObjectKind::ServiceAccount => "ServiceAccount",
            ObjectKind::Role => "Role",
            ObjectKind::ClusterRole => "ClusterRole",
            ObjectKind::RoleBinding => "RoleBinding",
            ObjectKind::ClusterRoleBinding => "ClusterRoleBinding",
            ObjectKind::Secret => "Secret",
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::PersistentVolume => "PersistentVolume",
            ObjectKind::PersistentVolumeClaim => "PersistentVolumeClaim",
        }
    }

    /// The kind named `name` (as in a manifest's `kind:`), if the graph understands it.
    pub fn from_name(name: &str) -> Option<ObjectKind> {
        ALL_KINDS.iter().copied().find(|kind| kind.name() == name)
    }

    /// API group, version and plural resource name, as the API server serves them.
    pub fn api_resource(self) -> (&'static str, &'static str, &'static str) {
        match self {
            ObjectKind::Namespace => ("", "v1", "namespaces"),
            ObjectKind::Node => ("", "v1", "nodes"),
            ObjectKind::Pod => ("", "v1", "pods"),
            ObjectKind::Deployment => ("apps", "v1", "deployments"),
            ObjectKind::ReplicaSet => ("apps", "v1", "replicasets"),
            ObjectKind::StatefulSet => ("apps", "v1", "statefulsets"),
            ObjectKind::DaemonSet => ("apps", "v1", "daemonsets"),
            ObjectKind::Job => ("batch", "v1", "jobs"),
            ObjectKind::CronJob => ("batch", "v1", "cronjobs"),
            ObjectKind::ReplicationController => ("", "v1", "replicationcontrollers"),
            ObjectKind::Service => ("", "v1", "services"),
            ObjectKind::Endpoints => ("", "v1", "endpoints"),
            ObjectKind::EndpointSlice => ("discovery.k8s.io", "v1", "endpointslices"),
            ObjectKind::Ingress => ("networking.k8s.io", "v1", "ingresses"),
            ObjectKind::NetworkPolicy => ("networking.k8s.io", "v1", "networkpolicies"),
            ObjectKind::ServiceAccount => ("", "v1", "serviceaccounts"),
            ObjectKind::Role => ("rbac.authorization.k8s.io", "v1", "roles"),
            ObjectKind::ClusterRole => ("rbac.authorization.k8s.io", "v1", "clusterroles"),
            ObjectKind::RoleBinding => ("rbac.authorization.k8s.io", "v1", "rolebindings"),
            ObjectKind::ClusterRoleBinding => {
                ("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
            }
            ObjectKind::Secret => ("", "v1", "secrets"),
            ObjectKind::ConfigMap => ("", "v1", "configmaps"),
            ObjectKind::PersistentVolume => ("", "v1", "persistentvolumes"),
            ObjectKind::PersistentVolumeClaim => ("", "v1", "persistentvolumeclaims"),
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        !matches!(
            self,
            ObjectKind::Namespace
                | ObjectKind::Node
                | ObjectKind::ClusterRole
                | ObjectKind::ClusterRoleBinding
                | ObjectKind::PersistentVolume
        )
    }

    /// Whether only the metadata of this kind may be read (values never leave the API server).
    pub fn metadata_only(self) -> bool {
        matches!(self, ObjectKind::Secret | ObjectKind::ConfigMap)
    }

    /// Whether this kind is a pod controller with a pod template.
    pub fn is_workload(self) -> bool {
        matches!(
            self,
            ObjectKind::Deployment
                | ObjectKind::ReplicaSet
                | ObjectKind::StatefulSet
                | ObjectKind::DaemonSet
                | ObjectKind::Job
                | ObjectKind::CronJob
                | ObjectKind::ReplicationController
        )
    }
}

/// Identity of an object within a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    /// Kind.
    pub kind: ObjectKind,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(formatter, "{}/{}", self.kind.name(), self.name)
        } else {
            write!(
                formatter,
                "{}/{}/{}",
                self.kind.name(),
                self.namespace,
                self.name
            )
        }
    }
}

/// Kind-specific content of an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// Namespace.
    Namespace,
    /// Node.
    Node {
        /// Cloud provider id (aws://, gce://, azure://).
        provider_id: String,
        /// Addresses.
        addresses: Vec<NodeAddress>,
        /// Kubelet version.
        kubelet_version: String,
    },
    /// Pod.
    Pod(Box<PodSpec>),
    /// A pod controller.
    Workload(Box<WorkloadSpec>),
    /// Service.
    Service {
        /// Spec.
        spec: ServiceSpec,
        /// Whether the load balancer got an address.
        load_balancer_ingress: Vec<String>,
    },
    /// Endpoints or EndpointSlice.
    Endpoints {
        /// Service the slice belongs to.
        service_name: String,
        /// Endpoints.
        endpoints: Vec<SliceEndpoint>,
    },
    /// Ingress.
    Ingress(IngressSpec),
    /// NetworkPolicy.
    NetworkPolicy(NetworkPolicySpec),
    /// ServiceAccount.
    ServiceAccount {
        /// automountServiceAccountToken.
        automount_token: Option<bool>,
    },
    /// Role or ClusterRole.
    Role {
        /// Rules.
        rules: Vec<PolicyRule>,
        /// Aggregation rule (ClusterRole).
        aggregation: Option<AggregationRule>,
    },
    /// RoleBinding or ClusterRoleBinding.
    Binding {
        /// Role reference.
        role_ref: RoleRef,
        /// Subjects.
        subjects: Vec<Subject>,
    },
    /// Secret metadata.
    Secret {
        /// Secret type.
        secret_type: String,
        /// Names of the keys (never the values).
        keys: Vec<String>,
    },
    /// ConfigMap metadata.
    ConfigMap,
    /// PersistentVolume.
    PersistentVolume {
        /// hostPath of the volume, if any.
        host_path: Option<String>,
    },
    /// PersistentVolumeClaim.
    PersistentVolumeClaim {
        /// Bound volume.
        volume_name: String,
    },
}

/// One inventory object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// Kind.
    pub kind: ObjectKind,
    /// Metadata.
    pub meta: Meta,
    /// Content.
    pub body: Body,
}

impl Object {
    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            kind: self.kind,
            namespace: self.meta.namespace.clone(),
            name: self.meta.name.clone(),
        }
    }
}

/// Outcome of reading one JSON object.
#[derive(Debug)]
pub enum Parsed {
    /// An object the graph understands.
    Object(Box<Object>),
    /// A well-formed object of a kind the graph does not model.
    UnknownKind {
        /// apiVersion.
        api_version: String,
        /// kind.
        kind: String,
    },
}

fn field<T: serde::de::DeserializeOwned + Default>(
    value: &Value,
    pointer: &str,
) -> Result<T, String> {
    match value.pointer(pointer) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(found) => serde_json::from_value(found.clone())
            .map_err(|error| format!("field {}: {error}", pointer.trim_start_matches('/'))),
    }
}

/// Reads a Kubernetes object from its JSON form. `default_namespace` fills in a namespaced
/// object's missing namespace (as `kubectl apply` does).
pub fn parse_object(value: &Value, default_namespace: &str) -> Result<Parsed, String> {
    let Some(kind_name) = value.get("kind").and_then(Value::as_str) else {
        return Err("document has no kind".to_string());
    };
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(kind) = ObjectKind::from_name(kind_name) else {
        return Ok(Parsed::UnknownKind {
            api_version,
            kind: kind_name.to_string(),
        });
    };
    // A Kind-cluster config and similar tools reuse kind names under other API groups.
    let (group, _, _) = kind.api_resource();
    let given_group = api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("");
    let group_ok = given_group == group
        || (kind == ObjectKind::Ingress && given_group == "extensions")
        || (kind.is_workload() && given_group == "extensions")
        || api_version.is_empty();
    if !group_ok {
        return Ok(Parsed::UnknownKind {
            api_version,
            kind: kind_name.to_string(),
        });
    }
    let mut meta: Meta = field(value, "/metadata")?;
    if meta.name.is_empty() {
        return Err(format!("{kind_name} has no metadata.name"));
    }
    if kind.is_namespaced() {
        if meta.namespace.is_empty() {
            meta.namespace = default_namespace.to_string();
        }
    } else {
        meta.namespace.clear();
    }
    // Annotations may hold last-applied configurations that include secret values.
    meta.annotations
        .remove("kubectl.kubernetes.io/last-applied-configuration");
    let body = match kind {
        ObjectKind::Namespace => Body::Namespace,
        ObjectKind::Node => Body::Node {
            provider_id: field(value, "/spec/providerID")?,
            addresses: field(value, "/status/addresses")?,
            kubelet_version: field(value, "/status/nodeInfo/kubeletVersion")?,
        },
        ObjectKind::Pod => Body::Pod(Box::new(field(value, "/spec")?)),
        kind if kind.is_workload() => Body::Workload(Box::new(field(value, "/spec")?)),
        ObjectKind::Service => {
            let ingress: Vec<Value> = field(value, "/status/loadBalancer/ingress")?;
            Body::Service {
                spec: field(value, "/spec")?,
                load_balancer_ingress: ingress
                    .iter()
                    .filter_map(|entry| {
                        entry
                            .get("ip")
                            .or_else(|| entry.get("hostname"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect(),
            }
        }
        ObjectKind::EndpointSlice => Body::Endpoints {
            service_name: meta
                .labels
                .get("kubernetes.io/service-name")
                .cloned()
                .unwrap_or_default(),
            endpoints: field(value, "/endpoints")?,
        },
        ObjectKind::Endpoints => {
            let subsets: Vec<Value> = field(value, "/subsets")?;
            let mut endpoints = Vec::new();
            for subset in &subsets {
                let addresses: Vec<SliceEndpoint> = field(subset, "/addresses")?;
                endpoints.extend(addresses);
            }
            Body::Endpoints {
                service_name: meta.name.clone(),
                endpoints,
            }
        }
        ObjectKind::Ingress => Body::Ingress(field(value, "/spec")?),
        ObjectKind::NetworkPolicy => Body::NetworkPolicy(field(value, "/spec")?),
        ObjectKind::ServiceAccount => Body::ServiceAccount {
            automount_token: field(value, "/automountServiceAccountToken")?,
        },
        ObjectKind::Role | ObjectKind::ClusterRole => Body::Role {
            rules: field(value, "/rules")?,
            aggregation: field(value, "/aggregationRule")?,
        },
        ObjectKind::RoleBinding | ObjectKind::ClusterRoleBinding => Body::Binding {
            role_ref: field(value, "/roleRef")?,
            subjects: field(value, "/subjects")?,
        },
        ObjectKind::Secret => {
            let data: serde_json::Map<String, Value> = field(value, "/data")?;
            let string_data: serde_json::Map<String, Value> = field(value, "/stringData")?;
            Body::Secret {
                secret_type: field(value, "/type")?,
                keys: data.keys().chain(string_data.keys()).cloned().collect(),
            }
        }
        ObjectKind::ConfigMap => Body::ConfigMap,
        ObjectKind::PersistentVolume => Body::PersistentVolume {
            host_path: value
                .pointer("/spec/hostPath/path")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        ObjectKind::PersistentVolumeClaim => Body::PersistentVolumeClaim {
            volume_name: field(value, "/spec/volumeName")?,
        },
        _ => Body::Namespace,
    };
    Ok(Parsed::Object(Box::new(Object { kind, meta, body })))
}
