//! What one pod contributes to the graph, and what it needs to know about the cluster around
//! it (the services that select it, its node, the network policies of its namespace).
//!
//! A pod's part is a function of the pod, the cluster's RBAC, its namespace's services,
//! policies and claims, the nodes, and the other pods on its node: a change to a pod is
//! applied by deriving the parts of the pods on its node again, nothing else.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::derive::exposure::{
    ServiceExposure, add_pod_exposure, endpoint_targets, exposed_nodes, selects, service_exposures,
};
use crate::derive::structure::add_pod;
use crate::derive::techniques::{add_pod_techniques, node_cloud_provider, node_identity_id};
use crate::derive::{ClusterView, Derived, PodView, UNSCHEDULED_NODE};
use crate::k8s::{LabelSelector, ServicePort};
use crate::model::{EdgeKind, EntityKind, entity_id};
use crate::object::{Body, ObjectKind};

/// A service port that routes to a pod.
pub(crate) struct Selection<'c> {
    /// Entity id of the service.
    pub service_id: &'c str,
    /// Entity id of the port's endpoint.
    pub endpoint_id: &'c str,
    /// The port.
    pub port: &'c ServicePort,
    /// Why the internet reaches the service, when it does.
    pub reason: Option<&'c str>,
}

/// The cluster around the pods of a view, resolved once for all of them.
pub struct PodContext<'v> {
    services: Vec<ServiceExposure<'v>>,
    /// Endpoint ids by service, then port.
    endpoint_ids: Vec<Vec<String>>,
    /// (service, port) indexes routing to each pod, in service order.
    selections: HashMap<&'v str, Vec<(usize, usize)>>,
    exposed_nodes: BTreeSet<String>,
    unscheduled_node: String,
    /// Cloud identity of each node that has one.
    pub(crate) node_identities: BTreeMap<String, String>,
    /// Network policies by namespace: (entity id, pod selector).
    policies: BTreeMap<&'v str, Vec<(String, &'v LabelSelector)>>,
}

impl<'v> PodContext<'v> {
    /// Resolves the context of the view's pods.
    pub fn build(view: &'v ClusterView<'_>) -> PodContext<'v> {
        let mut pods_by_namespace: BTreeMap<&str, Vec<&PodView<'_>>> = BTreeMap::new();
        for pod in &view.pods {
            pods_by_namespace
                .entry(pod.namespace.as_str())
                .or_default()
                .push(pod);
        }
        let services =
            service_exposures(view, |namespace| pods_by_namespace.contains_key(namespace));
        let targets = endpoint_targets(view.inventory);
        let mut endpoint_ids = Vec::with_capacity(services.len());
        let mut selections: HashMap<&'v str, Vec<(usize, usize)>> = HashMap::new();
        for (index, service) in services.iter().enumerate() {
            endpoint_ids.push(
                service
                    .spec
                    .ports
                    .iter()
                    .map(|port| service.endpoint_id(view, port))
                    .collect(),
            );
            let namespace = service.object.meta.namespace.as_str();
            let Some(candidates) = pods_by_namespace.get(namespace) else {
                continue;
            };
            for pod in candidates
                .iter()
                .filter(|pod| selects(service.object, &targets, &pod.name, pod.labels))
            {
                let entry = selections.entry(pod.id.as_str()).or_default();
                entry.extend((0..service.spec.ports.len()).map(|port| (index, port)));
            }
        }
        let mut node_identities = BTreeMap::new();
        for node in view.inventory.of_kind(ObjectKind::Node) {
            if node_cloud_provider(node).is_some() {
                node_identities.insert(
                    entity_id(&view.cluster, EntityKind::Node, "", &node.meta.name),
                    node_identity_id(&view.cluster, &node.meta.name),
                );
            }
        }
        let mut policies: BTreeMap<&str, Vec<(String, &LabelSelector)>> = BTreeMap::new();
        for policy in view.inventory.of_kind(ObjectKind::NetworkPolicy) {
            if let Body::NetworkPolicy(spec) = &policy.body {
                policies
                    .entry(policy.meta.namespace.as_str())
                    .or_default()
                    .push((
                        entity_id(
                            &view.cluster,
                            EntityKind::NetworkPolicy,
                            &policy.meta.namespace,
                            &policy.meta.name,
                        ),
                        &spec.pod_selector,
                    ));
            }
        }
        PodContext {
            services,
            endpoint_ids,
            selections,
            exposed_nodes: exposed_nodes(view),
            unscheduled_node: entity_id(&view.cluster, EntityKind::Node, "", UNSCHEDULED_NODE),
            node_identities,
            policies,
        }
    }

    /// The service ports that route to a pod, in the order of the services.
    pub(crate) fn selections_of(&self, pod: &PodView<'_>) -> impl Iterator<Item = Selection<'_>> {
        self.selections
            .get(pod.id.as_str())
            .into_iter()
            .flatten()
            .map(|&(service, port)| {
                let exposure = &self.services[service];
                Selection {
                    service_id: &exposure.id,
                    endpoint_id: &self.endpoint_ids[service][port],
                    port: &exposure.spec.ports[port],
                    reason: exposure.reason.as_deref(),
                }
            })
    }

    /// Whether a pod on this node listening on the host is reachable from the internet. A pod
    /// not yet scheduled may land on any node.
    pub(crate) fn on_exposed_node(&self, node_id: &str) -> bool {
        self.exposed_nodes.contains(node_id)
            || (node_id == self.unscheduled_node && !self.exposed_nodes.is_empty())
    }

    /// Network policies of a namespace: (entity id, pod selector).
    pub(crate) fn policies_of(&self, namespace: &str) -> &[(String, &'v LabelSelector)] {
        self.policies
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// What one pod contributes: its entities and every edge that touches them.
pub fn derive_pod(view: &ClusterView<'_>, context: &PodContext<'_>, pod: &PodView<'_>) -> Derived {
    let mut derived = Derived::default();
    add_pod(view, pod, &mut derived);
    add_pod_exposure(view, context, pod, &mut derived);
    add_pod_techniques(view, context, pod, &mut derived);
    for (policy_id, selector) in context.policies_of(&pod.namespace) {
        if selector.matches(pod.labels) {
            derived.edge(policy_id, EdgeKind::Selects, &pod.id);
        }
    }
    derived
}
