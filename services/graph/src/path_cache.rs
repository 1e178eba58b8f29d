//! Attack paths kept per entry point and brought up to date from graph diffs: only the entry
//! points whose search can see a change are searched again.
//!
//! Why this equals searching everything again: the paths of an entry point are a function of
//! (a) its breadth-first search tree within [`MAX_HOPS`] (which slots it reaches, at which
//! depth, and by which edge: of several shortest ways the search keeps one fixed by ids, not
//! by the order edges were added), (b) the flags that make a reached permission set or group a
//! target, and (c) the image, the pod and the alerted state of the first container of each
//! path, which is the entry itself or, for an endpoint, a container its `endpoint_exploit`
//! edges lead to, and the endpoint's own exposure. Other entities appear in paths only by
//! their id, kind, name, namespace and cluster, which the id fixes.
//!
//! For (a): a walked edge `u -> v` that came or went can change a tree only if the tree
//! expands `u` and `v` lies one hop beyond `u` (it then is, or may become, the edge `v` is
//! reached by). Reverse searches from `u` and from `v` on the graph after the change give
//! every entry point's distance to both; the entry points that reach `v` no further than `u`
//! keep their tree. If no changed edge moves a tree, distances equal those of the edges both
//! graphs share, so the argument holds for any number of changes at once. When no changed
//! edge's head can reach a target, trees may change but paths cannot (see
//! `heads_reach_targets`): a pod that comes or goes with nothing to escape to moves no path.
//! Edges that searches do not walk, and changed permission sets and groups (b), make every
//! entry point that reaches them within [`MAX_HOPS`] search again. For (c) the containers of
//! changed images and pods and of changed alerts are entry points themselves, and the
//! endpoints exploiting them are one edge away. All other entry points keep their paths; a
//! cluster's list is then the same merge, in the same order, as a full search.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::graph::{GraphDiff, Slot, TenantGraph};
use crate::model::{EdgeKind, EntityKind};
use crate::paths::{
    AttackPath, EntryPoint, MAX_HOPS, cluster_entries, entry_paths, entry_point, may_be_target,
    merge_entry_paths, target_class, walks,
};
use crate::search::Searcher;

type EntryKey = (EntryPoint, String);

/// What changed since the paths were last brought up to date.
#[derive(Debug, Default)]
pub struct PathChanges {
    /// Slots whose outgoing edges changed in a way searches cannot tell apart: every entry
    /// point that reaches one is searched again.
    seeds: Vec<Slot>,
    /// Walked edges added or removed, as (from, to).
    edges: Vec<(Slot, Slot)>,
    /// Entities that changed: what they are decides who reads them.
    entities: Vec<Slot>,
    /// Slots that are searched again themselves if they are entry points.
    entries: Vec<Slot>,
    /// Containers whose image, pod or alerted state changed: only the paths they start
    /// (as entry, or one edge after an endpoint) read that.
    first_containers: Vec<Slot>,
    removed: Vec<String>,
    /// Whether an entity that may be a target went.
    targets_removed: bool,
    /// Whether an endpoint's edge to a container it exploits came or went (Defender's paths
    /// read whether the search reached that container, not only targets).
    exploits_changed: bool,
}

/// Above this many walked edge changes, the entry points reaching their sources are all
/// searched again instead of being told apart one edge at a time.
const MAX_EDGE_CHECKS: usize = 256;

impl PathChanges {
    /// Records a graph diff.
    pub fn add_diff(&mut self, diff: &GraphDiff) {
        self.entities.extend(diff.upserted_entities.iter().copied());
        for &(from, kind, to) in &diff.changed_edges {
            if walks(kind) {
                self.edges.push((from, to));
                self.exploits_changed |= kind == EdgeKind::EndpointExploit;
            } else {
                self.seeds.push(from);
                self.entries.push(to);
            }
            // A container's pod is looked up through its incoming `runs` edge.
            if kind == EdgeKind::Runs {
                self.first_containers.push(to);
            }
        }
        self.removed.extend(diff.removed_entities.iter().cloned());
        self.targets_removed |= diff.removed_kinds.iter().any(|kind| may_be_target(*kind));
    }

    /// Records containers whose alerted state changed.
    pub fn add_containers(&mut self, containers: impl IntoIterator<Item = Slot>) {
        self.first_containers.extend(containers);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
            && self.edges.is_empty()
            && self.entities.is_empty()
            && self.entries.is_empty()
            && self.first_containers.is_empty()
            && self.removed.is_empty()
    }
}

/// What an update searched.
#[derive(Debug, Default, Clone, Copy)]
pub struct PathUpdate {
    /// Entry points searched again.
    pub entries_searched: usize,
    /// Slots the reverse search visited.
    pub slots_visited: usize,
}

/// Attack paths of every cluster, per entry point.
#[derive(Debug, Default)]
pub struct PathCache {
    clusters: BTreeMap<String, BTreeMap<EntryKey, Vec<Arc<AttackPath>>>>,
    located: HashMap<String, (String, EntryPoint)>,
}

impl PathCache {
    /// Searches every entry point of a cluster again.
    pub fn rebuild_cluster(
        &mut self,
        graph: &TenantGraph,
        cluster: &str,
        alerted: &HashSet<Slot>,
        searcher: &mut Searcher,
    ) {
        self.forget_cluster(cluster);
        let mut entries = BTreeMap::new();
        for (point, id, slot) in cluster_entries(graph, cluster) {
            let paths = entry_paths(graph, slot, alerted, searcher);
            if paths.is_empty() {
                continue;
            }
            self.located
                .insert(id.clone(), (cluster.to_string(), point));
            entries.insert((point, id), paths.into_iter().map(Arc::new).collect());
        }
        self.clusters.insert(cluster.to_string(), entries);
    }

    /// Drops a cluster's paths.
    pub fn forget_cluster(&mut self, cluster: &str) {
        if let Some(entries) = self.clusters.remove(cluster) {
            for (_, id) in entries.keys() {
                self.located.remove(id);
            }
        }
    }

    /// Whether a cluster's paths are kept.
    pub fn has_cluster(&self, cluster: &str) -> bool {
        self.clusters.contains_key(cluster)
    }

    /// A cluster's paths, merged as a full search merges them and sorted.
    pub fn cluster_paths(&self, cluster: &str) -> Vec<Arc<AttackPath>> {
        match self.clusters.get(cluster) {
            Some(entries) => merge_entry_paths(entries.values().map(Vec::as_slice)),
            None => Vec::new(),
        }
    }

    /// Searches again the entry points that can see `changes`; returns the clusters whose
    /// paths may have changed.
    pub fn update(
        &mut self,
        graph: &TenantGraph,
        changes: &PathChanges,
        alerted: &HashSet<Slot>,
        searcher: &mut Searcher,
    ) -> (BTreeSet<String>, PathUpdate) {
        let mut changed_clusters = BTreeSet::new();
        let mut update = PathUpdate::default();
        for id in &changes.removed {
            if let Some((cluster, point)) = self.located.remove(id)
                && let Some(entries) = self.clusters.get_mut(&cluster)
            {
                entries.remove(&(point, id.clone()));
                changed_clusters.insert(cluster);
            }
        }
        let mut seeds: Vec<Slot> = changes.seeds.clone();
        let mut candidates: Vec<Slot> = changes.entries.clone();
        let mut first_containers: Vec<Slot> = changes.first_containers.clone();
        for &slot in &changes.entities {
            // Paths read the flags that make a permission set or group a target anywhere on
            // the way, an endpoint's exposure where it is the entry, a container's image where
            // it is the first container, and through those containers an image's
            // vulnerability summary and a pod's host network. Other entities show only their
            // id, kind, name, namespace and cluster, which their id fixes.
            match graph.entity(slot).map(|entity| entity.kind) {
                Some(EntityKind::PermissionSet | EntityKind::Group) => seeds.push(slot),
                Some(EntityKind::Endpoint) => candidates.push(slot),
                Some(EntityKind::Container) => first_containers.push(slot),
                Some(EntityKind::Image) => first_containers.extend(
                    graph
                        .in_edges(slot)
                        .iter()
                        .filter(|(_, kind)| *kind == EdgeKind::UsesImage)
                        .map(|(container, _)| *container),
                ),
                Some(EntityKind::Pod) => first_containers.extend(
                    graph
                        .out_edges(slot)
                        .iter()
                        .filter(|(_, kind)| *kind == EdgeKind::Runs)
                        .map(|(container, _)| *container),
                ),
                _ => {}
            }
        }
        if changes.edges.len() > MAX_EDGE_CHECKS {
            seeds.extend(changes.edges.iter().map(|(from, _)| *from));
        } else if !heads_reach_targets(graph, changes, searcher) {
            // The trees change only off every path: each end may have become (or stopped
            // being) an entry point of its own, nothing more.
            candidates.extend(changes.edges.iter().flat_map(|&(from, to)| [from, to]));
        } else {
            for &(from, to) in &changes.edges {
                affected_by_edge(graph, from, to, searcher, &mut candidates);
            }
        }
        seeds.retain(|slot| graph.entity(*slot).is_some());
        if !seeds.is_empty() {
            searcher.run_reverse(graph, &seeds, MAX_HOPS, walks);
            candidates.extend(searcher.reached.iter().copied());
        }
        for container in first_containers {
            if graph.entity(container).is_none() {
                continue;
            }
            candidates.push(container);
            candidates.extend(
                graph
                    .in_edges(container)
                    .iter()
                    .filter(|(_, kind)| *kind == EdgeKind::EndpointExploit)
                    .map(|(endpoint, _)| *endpoint),
            );
        }
        candidates.sort_unstable();
        candidates.dedup();
        update.slots_visited = candidates.len();
        for slot in candidates {
            let Some(entity) = graph.entity(slot) else {
                continue;
            };
            if !matches!(entity.kind, EntityKind::Endpoint | EntityKind::Container) {
                continue;
            }
            let Some(entries) = self.clusters.get_mut(&entity.cluster) else {
                continue;
            };
            let id = entity.id.clone();
            let cluster = entity.cluster.clone();
            if let Some((_, point)) = self.located.remove(&id) {
                entries.remove(&(point, id.clone()));
                changed_clusters.insert(cluster.clone());
            }
            let Some(point) = entry_point(graph, slot) else {
                continue;
            };
            update.entries_searched += 1;
            let paths = entry_paths(graph, slot, alerted, searcher);
            if paths.is_empty() {
                continue;
            }
            self.located.insert(id.clone(), (cluster.clone(), point));
            entries.insert((point, id), paths.into_iter().map(Arc::new).collect());
            changed_clusters.insert(cluster);
        }
        (changed_clusters, update)
    }
}

/// Whether a target may lie on a path through the head of a changed walked edge. When none
/// can, no attack path changes through the walked edges, however many changed at once:
///
/// A path ends at a target `t` and follows the search tree, each step from the least (by id)
/// of the slots one hop nearer the entry that have an edge to the next. Every slot `w` on it
/// reaches `t` within [`MAX_HOPS`] - 1 hops (the entry is the only slot at depth 0). A shortest
/// way from the entry to `w` through a changed edge `u -> v` would let `v` reach `w`, so `t`,
/// within that many hops; so, in both graphs, `w`'s shortest ways avoid the changed edges and
/// exist in the other graph too: `w` has the same depth in both, its candidate steps are the
/// same unchanged edges from slots of the same depth, and the path is the same. A head that
/// reaches no target after the change reached none before either: on a way it had, the last
/// changed edge's head reaches `t` by unchanged edges, unless that head is `t`, a target that
/// went. Defender's paths also read whether an endpoint's search reached the containers it
/// exploits, one hop away: those edges are told apart as before.
fn heads_reach_targets(
    graph: &TenantGraph,
    changes: &PathChanges,
    searcher: &mut Searcher,
) -> bool {
    if changes.targets_removed || changes.exploits_changed {
        return true;
    }
    let heads: Vec<Slot> = changes
        .edges
        .iter()
        .map(|&(_, to)| to)
        .filter(|&to| graph.entity(to).is_some())
        .collect();
    searcher.run(graph, &heads, MAX_HOPS - 1, walks);
    searcher.reached.iter().any(|&slot| {
        graph
            .entity(slot)
            .is_some_and(|entity| target_class(entity).is_some())
    })
}

/// The entry points whose search an added or removed walked edge `from -> to` can change,
/// added to `out`. Distances are those of the graph after the change, from reverse searches.
/// A search is a breadth-first tree: an edge changes it only if it is, or was, the edge by
/// which `to` is first reached, which needs `to` one hop further than `from`. So an entry
/// point that reaches `to` no further than `from` keeps its tree (and its paths), whether the
/// edge came or went; so does one that does not expand `from`.
fn affected_by_edge(
    graph: &TenantGraph,
    from: Slot,
    to: Slot,
    searcher: &mut Searcher,
    out: &mut Vec<Slot>,
) {
    if graph.entity(from).is_none() {
        // Its incoming edges went with it and are changes of their own.
        return;
    }
    searcher.run_reverse(graph, &[from], MAX_HOPS - 1, walks);
    if graph.entity(to).is_none() {
        out.extend(searcher.reached.iter().copied());
        return;
    }
    let from_depths: Vec<(Slot, u8)> = searcher
        .reached
        .iter()
        .map(|&slot| (slot, searcher.depth_of(slot)))
        .collect();
    searcher.run_reverse(graph, &[to], MAX_HOPS, walks);
    for (slot, from_depth) in from_depths {
        let keeps_tree = searcher.was_reached(slot) && searcher.depth_of(slot) <= from_depth;
        if !keeps_tree {
            out.push(slot);
        }
    }
    // `to` may have become (or stopped being) an entry point itself.
    out.push(to);
}
