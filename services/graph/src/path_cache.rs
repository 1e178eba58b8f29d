//! Attack paths kept per entry point and brought up to date from graph diffs: only the entry
//! points whose search can see a change are searched again.
//!
//! Why this equals searching everything again: the paths of an entry point are a function of
//! (a) the entities its search reaches within [`MAX_HOPS`] and their outgoing edges (which
//! also fix the search order) and (b) the image, the pod and the alerted state of the first
//! container of each path, which is the entry itself or, for an endpoint, a container its
//! `endpoint_exploit` edges lead to (an endpoint has no other outgoing edges). For (a): a
//! change to an entity or to the outgoing edges of a slot `s` can alter the paths of an entry
//! point only if the entry's search reaches `s`, i.e. if `s` lies within [`MAX_HOPS`] walked
//! edges of it. For an added edge that is read off the graph after the change. For a removed
//! edge, take the entry's shortest old route to `s`: its first slot whose outgoing edges
//! changed is reached over edges that all still exist, and that slot is a seed too. So a
//! reverse search from the changed slots over the same edges finds every entry point whose
//! paths may differ. For (b) the containers of changed images and pods and of changed alerts
//! are entry points themselves, and the endpoints exploiting them are one edge away. All
//! other entry points keep their paths; a cluster's list is then the same merge, in the same
//! order, as a full search.

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
    /// Slots whose entity or outgoing edges changed: searched for in reverse.
    seeds: Vec<Slot>,
    /// Containers whose image, pod or alerted state changed: only the paths they start
    /// (as entry, or one edge after an endpoint) read that.
    first_containers: Vec<Slot>,
    /// Images and pods whose entity changed (their containers are first containers).
    owners: Vec<Slot>,
    removed: Vec<String>,
}

impl PathChanges {
    /// Records a graph diff.
    pub fn add_diff(&mut self, diff: &GraphDiff) {
        self.seeds.extend(diff.upserted_entities.iter().copied());
        self.owners.extend(diff.upserted_entities.iter().copied());
        for &(from, kind, to) in &diff.changed_edges {
            self.seeds.push(from);
            // A container's pod is looked up through its incoming `runs` edge.
            if kind == EdgeKind::Runs {
                self.first_containers.push(to);
            }
        }
        self.removed.extend(diff.removed_entities.iter().cloned());
    }

    /// Records containers whose alerted state changed.
    pub fn add_containers(&mut self, containers: impl IntoIterator<Item = Slot>) {
        self.first_containers.extend(containers);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty() && self.first_containers.is_empty() && self.removed.is_empty()
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
        let seeds: Vec<Slot> = changes
            .seeds
            .iter()
            .copied()
            .filter(|slot| graph.entity(*slot).is_some())
            .collect();
        let mut first_containers: Vec<Slot> = changes.first_containers.clone();
        for &slot in &changes.owners {
            // Paths read an image's vulnerability summary and a pod's host network through
            // the containers that run them.
            let (edges, edge) = match graph.entity(slot).map(|entity| entity.kind) {
                Some(EntityKind::Image) => (graph.in_edges(slot), EdgeKind::UsesImage),
                Some(EntityKind::Pod) => (graph.out_edges(slot), EdgeKind::Runs),
                _ => continue,
            };
            first_containers.extend(
                edges
                    .iter()
                    .filter(|(_, kind)| *kind == edge)
                    .map(|(container, _)| *container),
            );
        }
        let mut candidates: Vec<Slot> = Vec::new();
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
            entries.insert((point, id), paths);
            changed_clusters.insert(cluster);
        }
        (changed_clusters, update)
    }
}
