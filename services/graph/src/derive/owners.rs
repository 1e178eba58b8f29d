//! Who runs whom: the workloads above each pod, which workloads stand for template pods (none
//! of their pods is live), and what a namespace holds. A pod change that alters these reaches
//! beyond the pod's node.

use std::collections::{BTreeMap, BTreeSet};

use crate::inventory::ClusterInventory;
use crate::k8s::PodSpec;
use crate::object::{Body, Object, ObjectKey, ObjectKind};

/// (kind, namespace, name) of a workload.
pub(crate) type WorkloadKey = (ObjectKind, String, String);

/// Each workload's owner, to walk from a pod up to the workload at the top.
struct OwnerChains {
    owners: BTreeMap<WorkloadKey, (ObjectKind, String)>,
}

impl OwnerChains {
    fn build(inventory: &ClusterInventory, namespace: Option<&str>) -> OwnerChains {
        let mut owners = BTreeMap::new();
        for object in inventory.iter().filter(|object| {
            object.kind.is_workload() && namespace.is_none_or(|name| object.meta.namespace == name)
        }) {
            if let Some(owner) = object.meta.owner_references.first()
                && let Some(kind) = ObjectKind::from_name(&owner.kind)
            {
                owners.insert(
                    (
                        object.kind,
                        object.meta.namespace.clone(),
                        object.meta.name.clone(),
                    ),
                    (kind, owner.name.clone()),
                );
            }
        }
        OwnerChains { owners }
    }

    /// The workloads above a pod, nearest first.
    fn chain(&self, pod: &Object) -> Vec<WorkloadKey> {
        let mut chain = Vec::new();
        let mut current = pod.meta.owner_references.first().and_then(|owner| {
            ObjectKind::from_name(&owner.kind).map(|kind| (kind, owner.name.clone()))
        });
        while let Some((kind, name)) = current {
            let key = (kind, pod.meta.namespace.clone(), name);
            current = self.owners.get(&key).cloned();
            chain.push(key);
            if chain.len() > 8 {
                break;
            }
        }
        chain
    }
}

/// Workloads whose pods are not in the inventory get a template pod, so manifests and
/// scaled-down controllers still show what they would run.
pub(crate) fn owner_chain_roots(
    inventory: &ClusterInventory,
    namespace: Option<&str>,
) -> BTreeSet<WorkloadKey> {
    let chains = OwnerChains::build(inventory, namespace);
    let mut with_pods = BTreeSet::new();
    for pod in inventory
        .of_kind(ObjectKind::Pod)
        .filter(|pod| namespace.is_none_or(|name| pod.meta.namespace == name))
    {
        with_pods.extend(chains.chain(pod));
    }
    with_pods
}

/// Whether a workload is run by another (a ReplicaSet of a Deployment): only the top one's
/// template stands for pods.
pub(crate) fn owned_by_workload(workload: &Object) -> bool {
    workload
        .meta
        .owner_references
        .iter()
        .any(|owner| ObjectKind::from_name(&owner.kind).is_some_and(ObjectKind::is_workload))
}

/// Labels, annotations and spec of a pod template.
pub(crate) type TemplateParts<'a> = (
    &'a BTreeMap<String, String>,
    &'a BTreeMap<String, String>,
    &'a PodSpec,
);

pub(crate) fn template_spec(object: &Object) -> Option<TemplateParts<'_>> {
    let Body::Workload(spec) = &object.body else {
        return None;
    };
    let template = match object.kind {
        ObjectKind::CronJob => spec.job_template.as_ref()?.spec.template.as_ref()?,
        _ => spec.template.as_ref()?,
    };
    Some((
        &template.metadata.labels,
        &template.metadata.annotations,
        &template.spec,
    ))
}

/// Whether adding or removing this pod (given the inventory without it, or with this
/// version) changes which workloads stand for template pods: a workload above it has no other
/// live pod.
pub fn changes_templates(inventory: &ClusterInventory, pod: &Object) -> bool {
    let namespace = pod.meta.namespace.as_str();
    let chains = OwnerChains::build(inventory, Some(namespace));
    let chain = chains.chain(pod);
    if chain.is_empty() {
        return false;
    }
    let mut others: BTreeSet<WorkloadKey> = BTreeSet::new();
    for other in inventory
        .of_kind(ObjectKind::Pod)
        .filter(|other| other.meta.namespace == namespace && other.meta.name != pod.meta.name)
    {
        others.extend(chains.chain(other));
    }
    // Only workloads have templates (a static pod's owner is its node).
    chain
        .iter()
        .any(|workload| workload.0.is_workload() && !others.contains(workload))
}

/// Whether a namespace exists apart from one object: its Namespace object, or another object
/// in it.
pub fn namespace_implied_without(inventory: &ClusterInventory, except: &ObjectKey) -> bool {
    let namespace = except.namespace.as_str();
    inventory
        .get(&ObjectKey {
            kind: ObjectKind::Namespace,
            namespace: String::new(),
            name: namespace.to_string(),
        })
        .is_some()
        || inventory.iter().any(|object| {
            object.kind.is_namespaced()
                && object.meta.namespace == namespace
                && (object.kind, object.meta.name.as_str()) != (except.kind, except.name.as_str())
        })
}

/// The pods of a namespace as a view would name them, without resolving them: (name,
/// labels, node if scheduled) of each live pod and of each template pod.
pub fn namespace_pods<'i>(
    inventory: &'i ClusterInventory,
    namespace: &str,
) -> Vec<(&'i str, &'i BTreeMap<String, String>, Option<&'i str>)> {
    let node_of = |spec: &'i PodSpec| spec.node_name.as_deref().filter(|node| !node.is_empty());
    let mut pods = Vec::new();
    for pod in inventory.of_kind(ObjectKind::Pod) {
        if let Body::Pod(spec) = &pod.body
            && pod.meta.namespace == namespace
        {
            pods.push((pod.meta.name.as_str(), &pod.meta.labels, node_of(spec)));
        }
    }
    let with_pods = owner_chain_roots(inventory, Some(namespace));
    for workload in inventory
        .iter()
        .filter(|object| object.kind.is_workload() && object.meta.namespace == namespace)
    {
        let key = (
            workload.kind,
            workload.meta.namespace.clone(),
            workload.meta.name.clone(),
        );
        if owned_by_workload(workload) || with_pods.contains(&key) {
            continue;
        }
        if let Some((labels, _, spec)) = template_spec(workload) {
            pods.push((workload.meta.name.as_str(), labels, node_of(spec)));
        }
    }
    pods
}
