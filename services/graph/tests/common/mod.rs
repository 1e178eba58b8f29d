//! Helpers shared by the corpus tests.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;

use palisade_graph::derive::{Derived, derive_cluster};
use palisade_graph::inventory::ClusterInventory;
use palisade_graph::model::{EdgeKind, EntityKind};
use palisade_graph::source::{LoadReport, SourceLimits, load_path};

/// Loads files or directories into one cluster inventory, failing on any unreadable input.
pub fn inventory_of(paths: &[&Path]) -> (ClusterInventory, Vec<LoadReport>) {
    let mut inventory = ClusterInventory::new();
    let mut reports = Vec::new();
    for path in paths {
        let report = load_path(path, &SourceLimits::default()).expect("corpus path is readable");
        for object in &report.objects {
            inventory.upsert(object.clone());
        }
        reports.push(report);
    }
    (inventory, reports)
}

/// An edge as (source kind, source name, label, target kind, target name).
pub type NamedEdge = (EntityKind, String, String, EntityKind, String);

/// Every edge of a derived graph with entity kinds and names.
pub fn named_edges(derived: &Derived) -> Vec<NamedEdge> {
    derived
        .edges
        .iter()
        .map(|edge| {
            let from = &derived.entities[&edge.from];
            let to = derived
                .entities
                .get(&edge.to)
                .unwrap_or_else(|| panic!("edge {edge:?} points to a missing entity"));
            (
                from.kind,
                from.name.clone(),
                edge.kind.as_str().to_string(),
                to.kind,
                to.name.clone(),
            )
        })
        .collect()
}

/// Edges of one label as (source name, target name).
pub fn pairs(derived: &Derived, kind: EdgeKind) -> BTreeSet<(String, String)> {
    derived
        .edges
        .iter()
        .filter(|edge| edge.kind == kind)
        .map(|edge| {
            (
                derived.entities[&edge.from].name.clone(),
                derived.entities[&edge.to].name.clone(),
            )
        })
        .collect()
}

/// Technique edges leaving entities of a kind with a name.
pub fn techniques_from(derived: &Derived, kind: EntityKind, name: &str) -> BTreeSet<String> {
    derived
        .edges
        .iter()
        .filter(|edge| edge.kind.is_technique())
        .filter(|edge| {
            let from = &derived.entities[&edge.from];
            from.kind == kind && from.name == name
        })
        .map(|edge| edge.kind.as_str().to_string())
        .collect()
}

/// Derives a graph from paths, as cluster `test`.
pub fn derive_paths(paths: &[&Path]) -> Derived {
    let (inventory, _) = inventory_of(paths);
    derive_cluster("test", &inventory)
}
