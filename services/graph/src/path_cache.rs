//! Attack paths kept per entry point and brought up to date from graph diffs: only the entry
//! points whose search can see a change are searched again.
//!
//! Why this equals searching everything again: the paths of an entry point are a function of
//! (a) the entities its search reaches within [`MAX_HOPS`] and their outgoing edges (which
//! also fix the search order), (b) the images and pods of the containers it reaches and
//! (c) which of those containers are alerted. A change to an entity or to the outgoing edges
//! of a slot `s` can alter the paths of an entry point only if the entry's search reaches
//! `s`, i.e. if `s` lies within [`MAX_HOPS`] walked edges of it. For an added edge that is
//! read off the graph after the change. For a removed edge, take the entry's shortest old
//! route to `s`: its first slot whose outgoing edges changed is reached over edges that all
//! still exist, and that slot is a seed too. So a reverse search from the changed slots
//! (plus the containers of changed images and pods, and newly alerted containers) over the
//! same edges finds every entry point whose paths may differ; all others are kept as they
//! are. A cluster's list is then the same merge, in the same order, as a full search.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::graph::{GraphDiff, Slot, TenantGraph};
use crate::model::{EdgeKind, EntityKind};
use crate::paths::{
    AttackPath, EntryPoint, MAX_HOPS, cluster_entries, entry_paths, entry_point, merge_entry_paths,
    walks,
};
use crate::search::Searcher;

type EntryKey = (EntryPoint, String);

/// What changed since the paths were last brought up to date.
#[derive(Debug, Default)]
pub struct PathChanges {
    seeds: Vec<Slot>,
    removed: Vec<String>,
}

impl PathChanges {
    /// Records a graph diff.
    pub fn add_diff(&mut self, diff: &GraphDiff) {
        self.seeds.extend(diff.upserted_entities.iter().copied());
        for &(from, kind, to) in &diff.changed_edges {
            self.seeds.push(from);
            // A container's pod is looked up through its incoming `runs` edge.
            if kind == EdgeKind::Runs {
                self.seeds.push(to);
            }
        }
        self.removed.extend(diff.removed_entities.iter().cloned());
    }

    /// Records containers whose alerted state changed.
    pub fn add_containers(&mut self, containers: impl IntoIterator<Item = Slot>) {
        self.seeds.extend(containers);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty() && self.removed.is_empty()
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
    clusters: BTreeMap<String, BTreeMap<EntryKey, Vec<AttackPath>>>,
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
            entries.insert((point, id), paths);
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
    pub fn cluster_paths(&self, cluster: &str) -> Vec<AttackPath> {
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
        let mut seeds: Vec<Slot> = Vec::with_capacity(changes.seeds.len());
        for &slot in &changes.seeds {
            let Some(entity) = graph.entity(slot) else {
                continue;
            };
            seeds.push(slot);
            // Paths read an image's vulnerability summary and a pod's host network through
            // the containers that run them.
            match entity.kind {
                EntityKind::Image => seeds.extend(
                    graph
                        .in_edges(slot)
                        .iter()
                        .filter(|(_, kind)| *kind == EdgeKind::UsesImage)
                        .map(|(container, _)| *container),
                ),
                EntityKind::Pod => seeds.extend(
                    graph
                        .out_edges(slot)
                        .iter()
                        .filter(|(_, kind)| *kind == EdgeKind::Runs)
                        .map(|(container, _)| *container),
                ),
                _ => {}
            }
        }
        if seeds.is_empty() {
            return (changed_clusters, update);
        }
        searcher.run_reverse(graph, &seeds, MAX_HOPS, walks);
        let candidates: Vec<Slot> = searcher.reached.clone();
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
            entries.insert((point, id), paths);
            changed_clusters.insert(cluster);
        }
        (changed_clusters, update)
    }
}
