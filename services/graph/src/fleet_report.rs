//! KubeHound's four fleet questions over a tenant's whole graph: the shortest exploitable
//! path from each external service to a critical asset, the share of external services with
//! one, which technique the paths use most, and how many paths removing it would cut.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::graph::{Slot, TenantGraph};
use crate::model::{EdgeKind, Entity, EntityKind, INTERNET_ID};
use crate::paths::{MAX_HOPS, TargetClass, target_class};
use crate::search::Searcher;

/// Answers to KubeHound's four fleet questions.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FleetReport {
    /// Internet-facing endpoints examined.
    pub external_services: usize,
    /// Of those, how many reach a critical asset within the hop limit.
    pub external_services_with_path: usize,
    /// Share of external services with a path, in percent.
    pub percent_with_path: f64,
    /// Shortest path per external service that has one (endpoint id to step labels).
    pub shortest_paths: Vec<ShortestPath>,
    /// Per technique: number of (entry, target) pairs whose shortest path uses it.
    pub paths_per_technique: BTreeMap<String, usize>,
    /// Per technique: percentage of (entry, target) pairs that disappear without it.
    pub reduction_if_removed: BTreeMap<String, f64>,
    /// (entry, target) pairs in total.
    pub reachable_pairs: usize,
}

/// The shortest exploitable path from one external service.
#[derive(Debug, Clone, Serialize)]
pub struct ShortestPath {
    /// Endpoint entity id.
    pub endpoint: String,
    /// Target entity id.
    pub target: String,
    /// Number of hops.
    pub hops: usize,
    /// Techniques along it.
    pub techniques: Vec<String>,
}

fn is_critical_asset(entity: &Entity) -> bool {
    matches!(
        target_class(entity),
        Some(
            TargetClass::ClusterTakeover
                | TargetClass::NodeTakeover
                | TargetClass::CloudCredentials
        )
    )
}

/// Internet-facing endpoints (KubeHound's external services).
pub fn external_endpoints(graph: &TenantGraph) -> Vec<Slot> {
    let Some(internet) = graph.slot(INTERNET_ID) else {
        return Vec::new();
    };
    graph
        .out_edges(internet)
        .iter()
        .filter(|(slot, kind)| {
            *kind == EdgeKind::RoutesTo
                && graph
                    .entity(*slot)
                    .is_some_and(|entity| entity.kind == EntityKind::Endpoint)
        })
        .map(|(slot, _)| *slot)
        .collect()
}

fn reachable_pairs(
    graph: &TenantGraph,
    entries: &[Slot],
    excluded: Option<EdgeKind>,
    searcher: &mut Searcher,
) -> BTreeSet<(Slot, Slot)> {
    let mut pairs = BTreeSet::new();
    for &entry in entries {
        searcher.run(graph, &[entry], MAX_HOPS - 1, |kind| {
            kind.is_pathfinding() && kind != EdgeKind::RoutesTo && Some(kind) != excluded
        });
        for &slot in searcher.reached.iter().skip(1) {
            if graph.entity(slot).is_some_and(is_critical_asset) {
                pairs.insert((entry, slot));
            }
        }
    }
    pairs
}

/// KubeHound's four questions over the whole tenant graph.
pub fn fleet_report(graph: &TenantGraph, searcher: &mut Searcher) -> FleetReport {
    let entries = external_endpoints(graph);
    let mut report = FleetReport {
        external_services: entries.len(),
        ..FleetReport::default()
    };
    let mut used_kinds: BTreeSet<EdgeKind> = BTreeSet::new();
    let mut pairs = 0;
    for &entry in &entries {
        searcher.run(graph, &[entry], MAX_HOPS - 1, |kind| {
            kind.is_pathfinding() && kind != EdgeKind::RoutesTo
        });
        let mut best: Option<Slot> = None;
        for &slot in searcher.reached.iter().skip(1) {
            if !graph.entity(slot).is_some_and(is_critical_asset) {
                continue;
            }
            pairs += 1;
            if best.is_none() {
                best = Some(slot);
            }
            for (_, edge) in searcher.path_to(slot) {
                if let Some(kind) = edge {
                    used_kinds.insert(kind);
                    *report
                        .paths_per_technique
                        .entry(kind.as_str().to_string())
                        .or_default() += 1;
                }
            }
        }
        if let Some(target) = best {
            report.external_services_with_path += 1;
            let route = searcher.path_to(target);
            report.shortest_paths.push(ShortestPath {
                endpoint: graph
                    .entity(entry)
                    .map(|entity| entity.id.clone())
                    .unwrap_or_default(),
                target: graph
                    .entity(target)
                    .map(|entity| entity.id.clone())
                    .unwrap_or_default(),
                // The route lists the entry too: one slot more than hops.
                hops: route.len().saturating_sub(1),
                techniques: route
                    .iter()
                    .filter_map(|(_, edge)| edge.map(|kind| kind.as_str().to_string()))
                    .collect(),
            });
        }
    }
    report.reachable_pairs = pairs;
    report.percent_with_path = if entries.is_empty() {
        0.0
    } else {
        100.0 * report.external_services_with_path as f64 / entries.len() as f64
    };
    if pairs > 0 {
        for kind in used_kinds {
            let remaining = reachable_pairs(graph, &entries, Some(kind), searcher).len();
            let reduction = 100.0 * (pairs.saturating_sub(remaining)) as f64 / pairs as f64;
            report
                .reduction_if_removed
                .insert(kind.as_str().to_string(), (reduction * 10.0).round() / 10.0);
        }
    }
    report
}
