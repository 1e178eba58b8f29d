//! Derivation of a cluster's part of the graph: entities, structural relationships and attack
//! technique edges, from its inventory.

pub mod exposure;
mod grants;
pub mod owners;
mod pod;
mod structure;
mod techniques;
pub mod view;

/// Conditions shared with the insights.
pub mod techniques_support {
    pub use super::techniques::{
        clean_path, is_runtime_socket_path, is_takeover_set, pod_permissions, reads_secrets,
    };
}

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::inventory::ClusterInventory;
use crate::model::{EdgeKind, Entity};

pub use grants::Grants;
pub use pod::{PodContext, derive_pod};
pub use view::{ClusterView, ContainerView, PodScope, PodView, UNSCHEDULED_NODE};

/// An edge between two entities named by their stable ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DerivedEdge {
    /// Source entity id.
    pub from: String,
    /// Relationship.
    pub kind: EdgeKind,
    /// Target entity id.
    pub to: String,
}

/// The part of the graph one cluster contributes.
#[derive(Debug, Default)]
pub struct Derived {
    /// Entities, unique by id.
    pub entities: BTreeMap<String, Entity>,
    /// Edges, unique.
    pub edges: BTreeSet<DerivedEdge>,
}

impl Derived {
    /// Adds an entity, merging properties into an existing one with the same id.
    pub fn entity(&mut self, entity: Entity) {
        match self.entities.get_mut(&entity.id) {
            Some(existing) => existing.properties.extend(entity.properties),
            None => {
                self.entities.insert(entity.id.clone(), entity);
            }
        }
    }

    /// Adds an edge.
    pub fn edge(&mut self, from: &str, kind: EdgeKind, to: &str) {
        if from == to && kind.is_technique() {
            return;
        }
        self.edges.insert(DerivedEdge {
            from: from.to_string(),
            kind,
            to: to.to_string(),
        });
    }

    /// Adds everything `other` holds, merging entities as [`Derived::entity`] does.
    pub fn merge(&mut self, other: Derived) {
        for (_, entity) in other.entities {
            self.entity(entity);
        }
        self.edges.extend(other.edges);
    }

    /// Sets a property on an entity already added.
    pub fn set(&mut self, id: &str, key: &str, value: impl Into<serde_json::Value>) {
        if let Some(entity) = self.entities.get_mut(id) {
            entity.set(key, value);
        }
    }
}

/// Derives the graph of one cluster from its inventory.
pub fn derive_cluster(cluster: &str, inventory: &ClusterInventory) -> Derived {
    let view = ClusterView::build(cluster, inventory);
    derive_from_view(&view)
}

/// A cluster's graph in parts: what the cluster's objects contribute apart from its services
/// and pods, what each service contributes, and what each pod contributes (see
/// [`derive_pod`]). Edges of a part may end at entities of another part.
#[derive(Debug, Default)]
pub struct Parts {
    /// Everything but the services and pods.
    pub cluster: Derived,
    /// Each service's part, by the service's entity id.
    pub services: Vec<(String, Derived)>,
    /// Each pod's part, by the pod's entity id.
    pub pods: Vec<(String, Derived)>,
}

/// Derives the graph of a view in parts.
pub fn derive_parts(view: &ClusterView<'_>) -> Parts {
    Parts {
        cluster: derive_cluster_part(view),
        services: derive_services(view, |_, _| true),
        pods: derive_pods(view),
    }
}

/// The part of each service that `wanted` accepts (by namespace and name): the service, its
/// load balancer and endpoints. It depends on the ingresses and nothing else.
pub fn derive_services(
    view: &ClusterView<'_>,
    wanted: impl Fn(&str, &str) -> bool,
) -> Vec<(String, Derived)> {
    exposure::service_exposures(view, |_| true)
        .iter()
        .filter(|service| wanted(&service.object.meta.namespace, &service.object.meta.name))
        .map(|service| {
            let mut derived = Derived::default();
            exposure::add_service(view, service, &mut derived);
            (service.id.clone(), derived)
        })
        .collect()
}

/// What a cluster's objects contribute apart from its services and pods. It depends on the
/// pods only through the namespaces they imply and whether one is not scheduled.
pub fn derive_cluster_part(view: &ClusterView<'_>) -> Derived {
    let mut cluster = Derived::default();
    structure::add_structure(view, &mut cluster);
    exposure::add_exposure(view, &mut cluster);
    techniques::add_techniques(view, &mut cluster);
    cluster
}

/// The part of every pod of the view.
pub fn derive_pods(view: &ClusterView<'_>) -> Vec<(String, Derived)> {
    let context = PodContext::build(view);
    view.pods
        .iter()
        .map(|pod| (pod.id.clone(), derive_pod(view, &context, pod)))
        .collect()
}

/// Derives the graph from an already resolved view.
pub fn derive_from_view(view: &ClusterView<'_>) -> Derived {
    let parts = derive_parts(view);
    let mut derived = parts.cluster;
    for (_, part) in parts.services.into_iter().chain(parts.pods) {
        derived.merge(part);
    }
    // Bindings to missing roles and owners that are not in the inventory leave edges without
    // an end; they describe nothing that exists.
    let Derived { entities, edges } = &mut derived;
    edges.retain(|edge| entities.contains_key(&edge.from) && entities.contains_key(&edge.to));
    derived
}
