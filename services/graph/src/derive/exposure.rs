//! Network exposure: services, endpoints, ingresses, load balancers and the internet.
//!
//! Endpoints follow KubeHound: a port reachable through a service is one endpoint of the
//! service; a container port no service targets is an endpoint of the container (exposure
//! `node` with a hostPort or on the host network, `container` otherwise). Endpoints behind a
//! LoadBalancer, NodePort, external IP or ingress are reachable from the internet.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::derive::structure::cluster_entity;
use crate::derive::{ClusterView, Derived, PodView};
use crate::k8s::ServicePort;
use crate::model::{EdgeKind, Entity, EntityKind, INTERNET_ID, entity_id};
use crate::object::{Body, ObjectKind};

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

pub(crate) fn add_exposure(view: &ClusterView<'_>, derived: &mut Derived) {
    // Services reachable from outside through an ingress.
    let mut ingress_backends: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
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
        let mut backends = Vec::new();
        for backend in spec
            .default_backend
            .iter()
            .chain(spec.backend.iter())
            .chain(
                spec.rules
                    .iter()
                    .filter_map(|rule| rule.http.as_ref())
                    .flat_map(|http| http.paths.iter().map(|path| &path.backend)),
            )
        {
            let name = backend
                .service
                .as_ref()
                .map(|service| service.name.clone())
                .or_else(|| backend.service_name.clone());
            if let Some(name) = name.filter(|name| !name.is_empty()) {
                backends.push(name);
            }
        }
        for backend in backends {
            let service_id = entity_id(
                &view.cluster,
                EntityKind::Service,
                &ingress.meta.namespace,
                &backend,
            );
            derived.edge(&ingress_id, EdgeKind::RoutesTo, &service_id);
            ingress_backends
                .entry((ingress.meta.namespace.clone(), backend))
                .or_default()
                .push(ingress.meta.name.clone());
        }
    }
    // Pods behind services without a selector, from EndpointSlices / Endpoints.
    let mut slice_targets: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for kind in [ObjectKind::EndpointSlice, ObjectKind::Endpoints] {
        for object in view.inventory.of_kind(kind) {
            if let Body::Endpoints {
                service_name,
                endpoints,
            } = &object.body
            {
                for endpoint in endpoints {
                    if let Some(target) = &endpoint.target_ref
                        && target.kind == "Pod"
                    {
                        slice_targets
                            .entry((object.meta.namespace.clone(), service_name.clone()))
                            .or_default()
                            .insert(target.name.clone());
                    }
                }
            }
        }
    }
    // Nodes with an external address. A pod not yet scheduled may land on any node.
    let exposed_node_ids: BTreeSet<String> = view
        .inventory
        .of_kind(ObjectKind::Node)
        .filter(|node| match &node.body {
            Body::Node { addresses, .. } => addresses
                .iter()
                .any(|address| address.address_type == "ExternalIP"),
            _ => false,
        })
        .map(|node| entity_id(&view.cluster, EntityKind::Node, "", &node.meta.name))
        .collect();
    let unscheduled_node = entity_id(
        &view.cluster,
        EntityKind::Node,
        "",
        crate::derive::UNSCHEDULED_NODE,
    );
    let on_exposed_node = |node_id: &str| {
        exposed_node_ids.contains(node_id)
            || (node_id == unscheduled_node && !exposed_node_ids.is_empty())
    };
    let mut covered_ports: BTreeSet<(String, i64)> = BTreeSet::new();
    for service in view.inventory.of_kind(ObjectKind::Service) {
        let Body::Service {
            spec,
            load_balancer_ingress,
        } = &service.body
        else {
            continue;
        };
        let namespace = &service.meta.namespace;
        let service_type = spec
            .service_type
            .clone()
            .unwrap_or_else(|| "ClusterIP".to_string());
        let ingresses = ingress_backends
            .get(&(namespace.clone(), service.meta.name.clone()))
            .cloned()
            .unwrap_or_default();
        let exposure_reason = if service_type == "LoadBalancer" {
            Some(format!("LoadBalancer service {}", service.meta.name))
        } else if service_type == "NodePort" {
            Some(format!(
                "NodePort service {} (reachable on every node address)",
                service.meta.name
            ))
        } else if !spec.external_ips.is_empty() {
            Some(format!("service {} has external IPs", service.meta.name))
        } else {
            ingresses
                .first()
                .map(|ingress| format!("ingress {ingress} routes to service {}", service.meta.name))
        };
        let entity = cluster_entity(view, EntityKind::Service, namespace, &service.meta.name)
            .with("service_type", service_type.clone())
            .with("exposed_to_internet", exposure_reason.is_some());
        let service_id = entity.id.clone();
        derived.entity(entity);
        derived.edge(
            &entity_id(&view.cluster, EntityKind::Namespace, "", namespace),
            EdgeKind::Contains,
            &service_id,
        );
        if service_type == "LoadBalancer" {
            let balancer = cluster_entity(
                view,
                EntityKind::LoadBalancer,
                namespace,
                &service.meta.name,
            )
            .with("addresses", load_balancer_ingress.clone());
            let balancer_id = balancer.id.clone();
            derived.entity(balancer);
            derived.entity(internet());
            derived.edge(INTERNET_ID, EdgeKind::RoutesTo, &balancer_id);
            derived.edge(&balancer_id, EdgeKind::RoutesTo, &service_id);
        }
        let selected: Vec<&PodView<'_>> = match &spec.selector {
            Some(selector) if !selector.is_empty() => view
                .pods
                .iter()
                .filter(|pod| {
                    pod.namespace == *namespace
                        && selector
                            .iter()
                            .all(|(key, value)| pod.labels.get(key) == Some(value))
                })
                .collect(),
            _ => {
                let names = slice_targets.get(&(namespace.clone(), service.meta.name.clone()));
                view.pods
                    .iter()
                    .filter(|pod| {
                        pod.namespace == *namespace
                            && names.is_some_and(|names| names.contains(&pod.name))
                    })
                    .collect()
            }
        };
        for port in &spec.ports {
            let port_label = if port.name.is_empty() {
                port.port.to_string()
            } else {
                port.name.clone()
            };
            let endpoint_id = format!(
                "{}:{port_label}",
                entity_id(
                    &view.cluster,
                    EntityKind::Endpoint,
                    namespace,
                    &service.meta.name
                )
            );
            let mut endpoint = Entity::new(
                EntityKind::Endpoint,
                &view.cluster,
                namespace,
                &service.meta.name,
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
            .with("service", service.meta.name.clone())
            .with(
                "exposure",
                if exposure_reason.is_some() {
                    "internet"
                } else {
                    "service"
                },
            );
            if let Some(node_port) = port.node_port {
                endpoint.set("node_port", node_port);
            }
            if let Some(reason) = &exposure_reason {
                endpoint.set("exposure_reason", reason.clone());
            }
            derived.entity(endpoint);
            derived.edge(&service_id, EdgeKind::Exposes, &endpoint_id);
            if exposure_reason.is_some() {
                derived.entity(internet());
                derived.edge(INTERNET_ID, EdgeKind::RoutesTo, &endpoint_id);
            }
            for pod in &selected {
                derived.edge(&service_id, EdgeKind::RoutesTo, &pod.id);
                for (container_id, container_port, _) in port_targets(pod, port) {
                    covered_ports.insert((container_id.to_string(), container_port));
                    derived.edge(&endpoint_id, EdgeKind::EndpointExploit, container_id);
                    if let Some(reason) = &exposure_reason {
                        derived.set(container_id, "exposed_to_internet", true);
                        derived.set(&pod.id, "exposed_to_internet", true);
                        derived.set(&pod.id, "exposure_reason", reason.clone());
                    }
                }
            }
        }
    }
    // Container ports no service covers.
    for pod in &view.pods {
        let host_network = pod.spec.host_network.unwrap_or(false);
        for container in &pod.containers {
            for port in &container.spec.ports {
                if covered_ports.contains(&(container.id.clone(), port.container_port)) {
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
                let internet_reachable = on_node && on_exposed_node(&pod.node_id);
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
}
