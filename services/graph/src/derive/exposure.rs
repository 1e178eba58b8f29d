//! Network exposure: services, endpoints, ingresses, load balancers and the internet.
//!
//! Endpoints follow KubeHound: a port reachable through a service is one endpoint of the
//! service; a container port no service targets is an endpoint of the container (exposure
//! `node` with a hostPort or on the host network, `container` otherwise). Endpoints behind a
//! LoadBalancer, NodePort, external IP or ingress are reachable from the internet.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::derive::structure::cluster_entity;
use crate::derive::{ClusterView, Derived, PodContext, PodView};
use crate::inventory::ClusterInventory;
use crate::k8s::{IngressSpec, ServicePort, ServiceSpec};
use crate::model::{EdgeKind, Entity, EntityKind, INTERNET_ID, entity_id};
use crate::object::{Body, Object, ObjectKind};

fn internet() -> Entity {
    Entity::new(
        EntityKind::Internet,
        "",
        "",
        "internet",
        INTERNET_ID.to_string(),
    )
}

/// Containers of a pod that a service port reaches, with the matching container port.
fn port_targets<'p>(pod: &'p PodView<'_>, port: &ServicePort) -> Vec<(&'p str, i64, Option<i64>)> {
    let mut targets = Vec::new();
    let target = port.target_port.clone().unwrap_or(Value::from(port.port));
    for container in &pod.containers {
        for declared in &container.spec.ports {
            let matches = match &target {
                Value::String(name) => match name.parse::<i64>() {
                    Ok(number) => declared.container_port == number,
                    Err(_) => declared.name == *name,
                },
                Value::Number(number) => number.as_i64() == Some(declared.container_port),
                _ => false,
            };
            if matches {
                targets.push((
                    container.id.as_str(),
                    declared.container_port,
                    declared.host_port,
                ));
            }
        }
    }
    // A numeric target port need not be declared by the container.
    if targets.is_empty()
        && let Some(number) = match &target {
            Value::Number(number) => number.as_i64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        }
    {
        for container in pod
            .containers
            .iter()
            .filter(|container| container.role == "regular")
        {
            targets.push((container.id.as_str(), number, None));
        }
    }
    targets
}

/// Names of the services an ingress routes to.
fn ingress_backends(spec: &IngressSpec) -> Vec<String> {
    spec.default_backend
        .iter()
        .chain(spec.backend.iter())
        .chain(
            spec.rules
                .iter()
                .filter_map(|rule| rule.http.as_ref())
                .flat_map(|http| http.paths.iter().map(|path| &path.backend)),
        )
        .filter_map(|backend| {
            backend
                .service
                .as_ref()
                .map(|service| service.name.clone())
                .or_else(|| backend.service_name.clone())
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// A service and what makes it reachable from outside the cluster.
pub(crate) struct ServiceExposure<'v> {
    /// The service object.
    pub object: &'v Object,
    /// Its spec.
    pub spec: &'v ServiceSpec,
    /// Addresses of its load balancer.
    pub load_balancer_ingress: &'v [String],
    /// Entity id.
    pub id: String,
    /// ClusterIP, NodePort, LoadBalancer or ExternalName.
    pub service_type: String,
    /// Why the internet reaches it, when it does.
    pub reason: Option<String>,
}

impl ServiceExposure<'_> {
    /// Entity id of the endpoint of one of the service's ports.
    pub fn endpoint_id(&self, view: &ClusterView<'_>, port: &ServicePort) -> String {
        let port_label = if port.name.is_empty() {
            port.port.to_string()
        } else {
            port.name.clone()
        };
        format!(
            "{}:{port_label}",
            entity_id(
                &view.cluster,
                EntityKind::Endpoint,
                &self.object.meta.namespace,
                &self.object.meta.name
            )
        )
    }
}

/// The services of the cluster in the namespaces `wanted` accepts, with their exposure.
pub(crate) fn service_exposures<'v>(
    view: &'v ClusterView<'_>,
    wanted: impl Fn(&str) -> bool,
) -> Vec<ServiceExposure<'v>> {
    // Services reachable from outside through an ingress.
    let mut routed: BTreeMap<(&str, String), &str> = BTreeMap::new();
    for ingress in view.inventory.of_kind(ObjectKind::Ingress) {
        if let Body::Ingress(spec) = &ingress.body {
            for backend in ingress_backends(spec) {
                routed
                    .entry((ingress.meta.namespace.as_str(), backend))
                    .or_insert(ingress.meta.name.as_str());
            }
        }
    }
    let mut services = Vec::new();
    for service in view.inventory.of_kind(ObjectKind::Service) {
        let Body::Service {
            spec,
            load_balancer_ingress,
        } = &service.body
        else {
            continue;
        };
        let namespace = &service.meta.namespace;
        if !wanted(namespace) {
            continue;
        }
        let service_type = spec
            .service_type
            .clone()
            .unwrap_or_else(|| "ClusterIP".to_string());
        let reason = if service_type == "LoadBalancer" {
            Some(format!("LoadBalancer service {}", service.meta.name))
        } else if service_type == "NodePort" {
            Some(format!(
                "NodePort service {} (reachable on every node address)",
                service.meta.name
            ))
        } else if !spec.external_ips.is_empty() {
            Some(format!("service {} has external IPs", service.meta.name))
        } else {
            routed
                .get(&(namespace.as_str(), service.meta.name.clone()))
                .map(|ingress| format!("ingress {ingress} routes to service {}", service.meta.name))
        };
        services.push(ServiceExposure {
            object: service,
            spec,
            load_balancer_ingress,
            id: entity_id(
                &view.cluster,
                EntityKind::Service,
                namespace,
                &service.meta.name,
            ),
            service_type,
            reason,
        });
    }
    services
}

/// Pods behind services without a selector, from EndpointSlices and Endpoints: pod names by
/// (namespace, service).
pub type EndpointTargets<'i> = BTreeMap<(&'i str, &'i str), BTreeSet<&'i str>>;

/// The [`EndpointTargets`] of an inventory.
pub fn endpoint_targets(inventory: &ClusterInventory) -> EndpointTargets<'_> {
    let mut targets: EndpointTargets<'_> = BTreeMap::new();
    for kind in [ObjectKind::EndpointSlice, ObjectKind::Endpoints] {
        for object in inventory.of_kind(kind) {
            if let Body::Endpoints {
                service_name,
                endpoints,
            } = &object.body
            {
                for endpoint in endpoints {
                    if let Some(target) = &endpoint.target_ref
                        && target.kind == "Pod"
                    {
                        targets
                            .entry((object.meta.namespace.as_str(), service_name.as_str()))
                            .or_default()
                            .insert(target.name.as_str());
                    }
                }
            }
        }
    }
    targets
}

/// Whether a service routes to a pod (of its namespace): by its selector, or for a service
/// without one, by the endpoints that name the pod.
pub fn selects(
    service: &Object,
    targets: &EndpointTargets<'_>,
    pod_name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let Body::Service { spec, .. } = &service.body else {
        return false;
    };
    match &spec.selector {
        Some(selector) if !selector.is_empty() => selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value)),
        _ => targets
            .get(&(service.meta.namespace.as_str(), service.meta.name.as_str()))
            .is_some_and(|names| names.contains(pod_name)),
    }
}

/// Entity ids of the nodes with an external address.
pub(crate) fn exposed_nodes(view: &ClusterView<'_>) -> BTreeSet<String> {
    view.inventory
        .of_kind(ObjectKind::Node)
        .filter(|node| match &node.body {
            Body::Node { addresses, .. } => addresses
                .iter()
                .any(|address| address.address_type == "ExternalIP"),
            _ => false,
        })
        .map(|node| entity_id(&view.cluster, EntityKind::Node, "", &node.meta.name))
        .collect()
}

/// Ingresses and the internet's routes to the services they name (the services themselves
/// are parts of their own, see [`add_service`]).
pub(crate) fn add_exposure(view: &ClusterView<'_>, derived: &mut Derived) {
    for ingress in view.inventory.of_kind(ObjectKind::Ingress) {
        let Body::Ingress(spec) = &ingress.body else {
            continue;
        };
        let entity = cluster_entity(
            view,
            EntityKind::Ingress,
            &ingress.meta.namespace,
            &ingress.meta.name,
        )
        .with("tls", !spec.tls.is_empty());
        let ingress_id = entity.id.clone();
        derived.entity(entity);
        derived.entity(internet());
        derived.edge(INTERNET_ID, EdgeKind::RoutesTo, &ingress_id);
        for backend in ingress_backends(spec) {
            let service_id = entity_id(
                &view.cluster,
                EntityKind::Service,
                &ingress.meta.namespace,
                &backend,
            );
            derived.edge(&ingress_id, EdgeKind::RoutesTo, &service_id);
        }
    }
}

/// A service's own part: the service, its load balancer and its ports' endpoints, and how the
/// internet reaches them.
pub(crate) fn add_service(
    view: &ClusterView<'_>,
    service: &ServiceExposure<'_>,
    derived: &mut Derived,
) {
    let namespace = &service.object.meta.namespace;
    let name = &service.object.meta.name;
    let entity = cluster_entity(view, EntityKind::Service, namespace, name)
        .with("service_type", service.service_type.clone())
        .with("exposed_to_internet", service.reason.is_some());
    derived.entity(entity);
    derived.edge(
        &entity_id(&view.cluster, EntityKind::Namespace, "", namespace),
        EdgeKind::Contains,
        &service.id,
    );
    if service.service_type == "LoadBalancer" {
        let balancer = cluster_entity(view, EntityKind::LoadBalancer, namespace, name)
            .with("addresses", service.load_balancer_ingress.to_vec());
        let balancer_id = balancer.id.clone();
        derived.entity(balancer);
        derived.entity(internet());
        derived.edge(INTERNET_ID, EdgeKind::RoutesTo, &balancer_id);
        derived.edge(&balancer_id, EdgeKind::RoutesTo, &service.id);
    }
    for port in &service.spec.ports {
        let endpoint_id = service.endpoint_id(view, port);
        let mut endpoint = Entity::new(
            EntityKind::Endpoint,
            &view.cluster,
            namespace,
            name,
            endpoint_id.clone(),
        )
        .with("port", port.port)
        .with("port_name", port.name.clone())
        .with(
            "protocol",
            if port.protocol.is_empty() {
                "TCP".to_string()
            } else {
                port.protocol.clone()
            },
        )
        .with("service", name.clone())
        .with(
            "exposure",
            if service.reason.is_some() {
                "internet"
            } else {
                "service"
            },
        );
        if let Some(node_port) = port.node_port {
            endpoint.set("node_port", node_port);
        }
        if let Some(reason) = &service.reason {
            endpoint.set("exposure_reason", reason.clone());
        }
        derived.entity(endpoint);
        derived.edge(&service.id, EdgeKind::Exposes, &endpoint_id);
        if service.reason.is_some() {
            derived.entity(internet());
            derived.edge(INTERNET_ID, EdgeKind::RoutesTo, &endpoint_id);
        }
    }
}

/// A pod's exposure: the services that route to it and the ports of its containers, those
/// no service covers included.
pub(crate) fn add_pod_exposure(
    view: &ClusterView<'_>,
    context: &PodContext<'_>,
    pod: &PodView<'_>,
    derived: &mut Derived,
) {
    let mut covered_ports: BTreeSet<(&str, i64)> = BTreeSet::new();
    for selection in context.selections_of(pod) {
        derived.edge(selection.service_id, EdgeKind::RoutesTo, &pod.id);
        for (container_id, container_port, _) in port_targets(pod, selection.port) {
            covered_ports.insert((container_id, container_port));
            derived.edge(
                selection.endpoint_id,
                EdgeKind::EndpointExploit,
                container_id,
            );
            if let Some(reason) = selection.reason {
                derived.set(container_id, "exposed_to_internet", true);
                derived.set(&pod.id, "exposed_to_internet", true);
                derived.set(&pod.id, "exposure_reason", reason.to_string());
            }
        }
    }
    // Container ports no service covers.
    let host_network = pod.spec.host_network.unwrap_or(false);
    for container in &pod.containers {
        for port in &container.spec.ports {
            if covered_ports.contains(&(container.id.as_str(), port.container_port)) {
                continue;
            }
            let port_label = if port.name.is_empty() {
                port.container_port.to_string()
            } else {
                port.name.clone()
            };
            let on_node = host_network || port.host_port.is_some_and(|host_port| host_port > 0);
            let endpoint_id = format!(
                "{}:{port_label}",
                container.id.replacen("/container/", "/endpoint/", 1)
            );
            let internet_reachable = on_node && context.on_exposed_node(&pod.node_id);
            let mut endpoint = Entity::new(
                EntityKind::Endpoint,
                &view.cluster,
                &pod.namespace,
                &port_label,
                endpoint_id.clone(),
            )
            .with(
                "port",
                port.host_port
                    .filter(|_| !host_network)
                    .unwrap_or(port.container_port),
            )
            .with("port_name", port.name.clone())
            .with(
                "exposure",
                if internet_reachable {
                    "internet"
                } else if on_node {
                    "node"
                } else {
                    "container"
                },
            );
            if internet_reachable {
                let reason = format!(
                    "{} of pod {} listens on an internet-facing node",
                    if host_network {
                        "host network"
                    } else {
                        "hostPort"
                    },
                    pod.name
                );
                endpoint.set("exposure_reason", reason.clone());
                derived.set(&container.id, "exposed_to_internet", true);
                derived.set(&pod.id, "exposed_to_internet", true);
                derived.set(&pod.id, "exposure_reason", reason);
            }
            derived.entity(endpoint);
            derived.edge(&container.id, EdgeKind::Exposes, &endpoint_id);
            derived.edge(&endpoint_id, EdgeKind::EndpointExploit, &container.id);
            if internet_reachable {
                derived.entity(internet());
                derived.edge(INTERNET_ID, EdgeKind::RoutesTo, &endpoint_id);
            }
        }
    }
}
