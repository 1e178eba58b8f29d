//! Bounded breadth-first search over the graph with reusable buffers, so that thousands of
//! searches per second allocate nothing.

use crate::graph::{Slot, TenantGraph};
use crate::model::EdgeKind;

/// A reusable breadth-first searcher.
#[derive(Debug, Default)]
pub struct Searcher {
    stamp: Vec<u32>,
    parent: Vec<(Slot, EdgeKind)>,
    depth: Vec<u8>,
    generation: u32,
    queue: Vec<Slot>,
    /// Slots reached by the last search, in visiting order (the start first).
    pub reached: Vec<Slot>,
    /// Edges looked at by the last search.
    pub edges_scanned: usize,
}

impl Searcher {
    /// A searcher.
    pub fn new() -> Searcher {
        Searcher::default()
    }

    fn prepare(&mut self, size: usize) {
        if self.stamp.len() < size {
            self.stamp.resize(size, 0);
            self.parent.resize(size, (0, EdgeKind::Contains));
            self.depth.resize(size, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.iter_mut().for_each(|stamp| *stamp = 0);
            self.generation = 1;
        }
        self.queue.clear();
        self.reached.clear();
        self.edges_scanned = 0;
    }

    /// Whether the last search reached a slot.
    pub fn was_reached(&self, slot: Slot) -> bool {
        self.stamp.get(slot as usize) == Some(&self.generation)
    }

    /// Hop count of a reached slot.
    pub fn depth_of(&self, slot: Slot) -> u8 {
        self.depth[slot as usize]
    }

    /// Searches from `starts` along outgoing edges accepted by `walk`, up to `max_depth` hops.
    /// Of several shortest ways to a slot, [`Searcher::path_to`] gives the one whose last
    /// step leaves the entity with the smallest id (then the smallest edge kind): the same
    /// path whatever order the graph's edges were added in.
    pub fn run(
        &mut self,
        graph: &TenantGraph,
        starts: &[Slot],
        max_depth: u8,
        walk: impl Fn(EdgeKind) -> bool,
    ) {
        self.run_along(graph, starts, max_depth, walk, TenantGraph::out_edges, true);
    }

    /// Searches from `starts` against the direction of edges accepted by `walk`, up to
    /// `max_depth` hops: afterwards `reached` holds every slot from which a forward search
    /// of at most `max_depth` hops reaches one of the starts.
    pub fn run_reverse(
        &mut self,
        graph: &TenantGraph,
        starts: &[Slot],
        max_depth: u8,
        walk: impl Fn(EdgeKind) -> bool,
    ) {
        self.run_along(graph, starts, max_depth, walk, TenantGraph::in_edges, false);
    }

    fn run_along(
        &mut self,
        graph: &TenantGraph,
        starts: &[Slot],
        max_depth: u8,
        walk: impl Fn(EdgeKind) -> bool,
        neighbours: impl Fn(&TenantGraph, Slot) -> &[(Slot, EdgeKind)],
        canonical: bool,
    ) {
        self.prepare(graph.slot_capacity());
        for &start in starts {
            if (start as usize) < self.stamp.len() && self.stamp[start as usize] != self.generation
            {
                self.stamp[start as usize] = self.generation;
                self.depth[start as usize] = 0;
                self.parent[start as usize] = (start, EdgeKind::Contains);
                self.queue.push(start);
                self.reached.push(start);
            }
        }
        let mut head = 0;
        while head < self.queue.len() {
            let current = self.queue[head];
            head += 1;
            let depth = self.depth[current as usize];
            if depth >= max_depth {
                continue;
            }
            for &(next, kind) in neighbours(graph, current) {
                self.edges_scanned += 1;
                if !walk(kind) {
                    continue;
                }
                if self.stamp[next as usize] == self.generation {
                    // Slots of one depth are all expanded before the next depth: every way
                    // to `next` of the same length is seen here, in any order.
                    if canonical
                        && self.depth[next as usize] == depth + 1
                        && precedes(graph, (current, kind), self.parent[next as usize])
                    {
                        self.parent[next as usize] = (current, kind);
                    }
                    continue;
                }
                self.stamp[next as usize] = self.generation;
                self.depth[next as usize] = depth + 1;
                self.parent[next as usize] = (current, kind);
                self.queue.push(next);
                self.reached.push(next);
            }
        }
    }

    /// The path from a start of the last search to `slot`: slots, and the edge leaving each
    /// slot but the last.
    pub fn path_to(&self, slot: Slot) -> Vec<(Slot, Option<EdgeKind>)> {
        let mut reversed = vec![(slot, None)];
        let mut current = slot;
        while self.depth[current as usize] > 0 {
            let (previous, kind) = self.parent[current as usize];
            reversed.push((previous, Some(kind)));
            current = previous;
        }
        reversed.reverse();
        reversed
    }
}

/// Whether the step `(from, kind)` sorts before `other`: by the id of the entity it leaves,
/// then by edge kind.
fn precedes(graph: &TenantGraph, step: (Slot, EdgeKind), other: (Slot, EdgeKind)) -> bool {
    if step.0 == other.0 {
        return step.1 < other.1;
    }
    let id = |slot| graph.entity(slot).map(|entity| entity.id.as_str());
    (id(step.0), step.1) < (id(other.0), other.1)
}
