//! Derivation of a cluster's part of the graph: entities, structural relationships and attack
//! technique edges, from its inventory.

mod exposure;
mod structure;
mod techniques;
pub mod view;

/// Conditions shared with the insights.
pub mod techniques_support {
    pub use super::techniques::{
        clean_path, is_runtime_socket_path, is_takeover_set, reads_secrets,
    };
}

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::inventory::ClusterInventory;
use crate::model::{EdgeKind, Entity};

pub use view::{ClusterView, ContainerView, PodView, UNSCHEDULED_NODE};

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

/// Derives the graph from an already resolved view.
pub fn derive_from_view(view: &ClusterView<'_>) -> Derived {
    let mut derived = Derived::default();
    structure::add_structure(view, &mut derived);
    exposure::add_exposure(view, &mut derived);
    techniques::add_techniques(view, &mut derived);
    // Bindings to missing roles and owners that are not in the inventory leave edges without
    // an end; they describe nothing that exists.
    let Derived { entities, edges } = &mut derived;
    edges.retain(|edge| entities.contains_key(&edge.from) && entities.contains_key(&edge.to));
    derived
}
