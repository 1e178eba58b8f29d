//! A tenant's security graph in memory: entities in slots, adjacency lists both ways, and the
//! contribution of each source unit (a cluster, or the scanner findings) so that a unit's new
//! derivation is applied as a diff: only what changed is touched.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::derive::Derived;
use crate::findings::Severity;
use crate::model::{EdgeKind, Entity, EntityKind};

/// Index of an entity slot.
pub type Slot = u32;

/// What contributes entities and edges to a tenant's graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// The inventory of one cluster.
    Cluster(String),
    /// Scanner findings (images and their vulnerabilities).
    Findings,
    /// One pod or service of a cluster: its own entities, the shared ones it names bare
    /// (image, service account, secrets, the internet), and every edge that touches its own.
    Part {
        /// Cluster.
        cluster: String,
        /// Entity id of the pod or service.
        id: String,
    },
}

#[derive(Debug, Default)]
struct UnitState {
    entities: BTreeSet<Slot>,
    edges: BTreeSet<(Slot, EdgeKind, Slot)>,
}

#[derive(Debug)]
struct Node {
    /// Shared, so that query answers hold entities without copying them.
    entity: Arc<Entity>,
    owners: u32,
}

/// What applying a unit changed.
#[derive(Debug, Default, Clone)]
pub struct GraphDiff {
    /// Entities added or whose properties changed.
    pub upserted_entities: Vec<Slot>,
    /// Ids of entities removed.
    pub removed_entities: Vec<String>,
    /// Kinds of the entities removed, in the same order.
    pub removed_kinds: Vec<EntityKind>,
    /// Edges added, as (from id, kind, to id).
    pub added_edges: Vec<(String, EdgeKind, String)>,
    /// Edges removed, as (from id, kind, to id).
    pub removed_edges: Vec<(String, EdgeKind, String)>,
    /// Edges added or removed, as slots (the slots of removed entities may be free).
    pub changed_edges: Vec<(Slot, EdgeKind, Slot)>,
}

/// Entities and edges a unit stops contributing, for [`TenantGraph::patch`].
#[derive(Debug, Default, Clone)]
pub struct UnitPatch {
    /// Entity ids.
    pub entities: Vec<String>,
    /// Edges as (from id, kind, to id).
    pub edges: Vec<(String, EdgeKind, String)>,
}

impl GraphDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.upserted_entities.is_empty()
            && self.removed_entities.is_empty()
            && self.added_edges.is_empty()
            && self.removed_edges.is_empty()
    }
}

/// The graph of one tenant.
#[derive(Debug, Default)]
pub struct TenantGraph {
    nodes: Vec<Option<Node>>,
    out: Vec<Vec<(Slot, EdgeKind)>>,
    inc: Vec<Vec<(Slot, EdgeKind)>>,
    ids: HashMap<String, Slot>,
    free: Vec<Slot>,
    units: HashMap<Unit, UnitState>,
    by_kind: HashMap<EntityKind, BTreeSet<Slot>>,
    /// The kind of the entity in each slot, beside the entities so that walks filtering
    /// on kind read a dense array.
    kinds: Vec<Option<EntityKind>>,
    indexes: PropertyIndexes,
    edge_count: usize,
}

/// Where the severity of an entity puts it in [`PropertyIndexes::ranked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeverityBucket {
    /// The entity's severity rank (`severity_rank`, or its `severity` by name).
    Rank(u8),
    /// A severity that ranks as no name: only a comparison of the value itself tells.
    Unranked,
}

/// Entities by the values of the properties queries select on most.
#[derive(Debug, Default)]
struct PropertyIndexes {
    /// Entities whose property is `true`, by (kind, property).
    flagged: HashMap<(EntityKind, String), BTreeSet<Slot>>,
    /// Entities with a severity, by kind and severity.
    ranked: HashMap<EntityKind, BTreeMap<SeverityBucket, BTreeSet<Slot>>>,
    /// Entities that hold a property as a string, by kind and property: a condition that a
    /// property equal some text can only hold for these, often far fewer than the kind's.
    texts: HashMap<EntityKind, HashMap<String, BTreeSet<Slot>>>,
    /// The severity bucket of the entity in each slot, so that comparing an entity's
    /// severity reads a dense array instead of the entity's properties.
    severities: Vec<Option<SeverityBucket>>,
}

impl PropertyIndexes {
    /// Adds (or removes) an entity to (from) the indexes.
    fn update(&mut self, slot: Slot, entity: &Entity, add: bool) {
        for (property, value) in &entity.properties {
            if value.is_string() {
                let texts = self.texts.entry(entity.kind).or_default();
                if add {
                    match texts.get_mut(property.as_str()) {
                        Some(set) => {
                            set.insert(slot);
                        }
                        None => {
                            texts.insert(property.clone(), BTreeSet::from([slot]));
                        }
                    }
                } else if let Some(set) = texts.get_mut(property.as_str()) {
                    set.remove(&slot);
                    if set.is_empty() {
                        texts.remove(property.as_str());
                    }
                }
                continue;
            }
            if *value != Value::Bool(true) {
                continue;
            }
            let key = (entity.kind, property.clone());
            if add {
                self.flagged.entry(key).or_default().insert(slot);
            } else if let Some(set) = self.flagged.get_mut(&key) {
                set.remove(&slot);
                if set.is_empty() {
                    self.flagged.remove(&key);
                }
            }
        }
        let Some(bucket) = severity_bucket(entity) else {
            return;
        };
        let index = slot as usize;
        if index >= self.severities.len() {
            self.severities.resize(index + 1, None);
        }
        self.severities[index] = add.then_some(bucket);
        let buckets = self.ranked.entry(entity.kind).or_default();
        if add {
            buckets.entry(bucket).or_default().insert(slot);
        } else if let Some(set) = buckets.get_mut(&bucket) {
            set.remove(&slot);
            if set.is_empty() {
                buckets.remove(&bucket);
            }
        }
    }
}

/// The severity bucket of an entity, as the explorer compares severities: the numeric
/// `severity_rank` when there is one, else the rank of the `severity` name; `None` without
/// either property.
fn severity_bucket(entity: &Entity) -> Option<SeverityBucket> {
    let rank = match entity
        .properties
        .get("severity_rank")
        .and_then(Value::as_f64)
    {
        Some(rank) => Some(rank),
        None => Severity::rank_of(entity.properties.get("severity")?),
    };
    Some(match rank {
        Some(rank) if rank.fract() == 0.0 && (0.0..=255.0).contains(&rank) => {
            SeverityBucket::Rank(rank as u8)
        }
        _ => SeverityBucket::Unranked,
    })
}

impl TenantGraph {
    /// An empty graph.
    pub fn new() -> TenantGraph {
        TenantGraph::default()
    }

    /// Number of entities.
    pub fn entity_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of slots (an upper bound of slot indexes).
    pub fn slot_capacity(&self) -> usize {
        self.nodes.len()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.edge_count
    }

    /// The slot of an entity id.
    pub fn slot(&self, id: &str) -> Option<Slot> {
        self.ids.get(id).copied()
    }

    /// The entity in a slot.
    pub fn entity(&self, slot: Slot) -> Option<&Entity> {
        self.shared_entity(slot).map(Arc::as_ref)
    }

    /// The entity in a slot, to keep beyond the graph's lock without copying it.
    pub fn shared_entity(&self, slot: Slot) -> Option<&Arc<Entity>> {
        self.nodes
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|node| &node.entity)
    }

    /// The entity with an id.
    pub fn entity_by_id(&self, id: &str) -> Option<&Entity> {
        self.slot(id).and_then(|slot| self.entity(slot))
    }

    /// Outgoing edges of a slot.
    pub fn out_edges(&self, slot: Slot) -> &[(Slot, EdgeKind)] {
        self.out
            .get(slot as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Incoming edges of a slot.
    pub fn in_edges(&self, slot: Slot) -> &[(Slot, EdgeKind)] {
        self.inc
            .get(slot as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Slots of every entity of a kind.
    pub fn of_kind(&self, kind: EntityKind) -> impl Iterator<Item = Slot> + '_ {
        self.by_kind.get(&kind).into_iter().flatten().copied()
    }

    /// Number of entities of a kind.
    pub fn count_of_kind(&self, kind: EntityKind) -> usize {
        self.by_kind.get(&kind).map(BTreeSet::len).unwrap_or(0)
    }

    /// The kind of the entity in a slot.
    pub fn kind_of(&self, slot: Slot) -> Option<EntityKind> {
        self.kinds.get(slot as usize).copied().flatten()
    }

    /// Slots, in order, of the entities of a kind whose property is `true`.
    pub fn flagged(&self, kind: EntityKind, property: &str) -> impl Iterator<Item = Slot> + '_ {
        self.indexes
            .flagged
            .get(&(kind, property.to_string()))
            .into_iter()
            .flatten()
            .copied()
    }

    /// Slots, in order, of the entities of a kind that hold a property as a string.
    pub fn with_text(&self, kind: EntityKind, property: &str) -> impl Iterator<Item = Slot> + '_ {
        self.indexes
            .texts
            .get(&kind)
            .and_then(|texts| texts.get(property))
            .into_iter()
            .flatten()
            .copied()
    }

    /// Entities of a kind that have a severity, by severity bucket (each set in slot order).
    pub fn by_severity(
        &self,
        kind: EntityKind,
    ) -> impl Iterator<Item = (SeverityBucket, &BTreeSet<Slot>)> + '_ {
        self.indexes
            .ranked
            .get(&kind)
            .into_iter()
            .flatten()
            .map(|(bucket, slots)| (*bucket, slots))
    }

    /// The severity bucket of the entity in a slot (`None`: no entity or no severity).
    pub fn severity_of(&self, slot: Slot) -> Option<SeverityBucket> {
        self.indexes
            .severities
            .get(slot as usize)
            .copied()
            .flatten()
    }

    /// Every entity.
    pub fn entities(&self) -> impl Iterator<Item = (Slot, &Entity)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(slot, node)| node.as_ref().map(|node| (slot as Slot, &*node.entity)))
    }

    /// Every edge as (from, kind, to).
    pub fn edges(&self) -> impl Iterator<Item = (Slot, EdgeKind, Slot)> + '_ {
        self.out.iter().enumerate().flat_map(|(from, list)| {
            list.iter()
                .map(move |(to, kind)| (from as Slot, *kind, *to))
        })
    }

    /// Units that contributed to the graph.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.keys()
    }

    fn allocate(&mut self, entity: Entity) -> Slot {
        debug_assert!(!self.ids.contains_key(&entity.id));
        let kind = entity.kind;
        let id = entity.id.clone();
        let node = Node {
            entity: Arc::new(entity),
            owners: 0,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = Some(node);
                self.kinds[slot as usize] = Some(kind);
                slot
            }
            None => {
                self.nodes.push(Some(node));
                self.kinds.push(Some(kind));
                self.out.push(Vec::new());
                self.inc.push(Vec::new());
                (self.nodes.len() - 1) as Slot
            }
        };
        if let Some(Some(node)) = self.nodes.get(slot as usize) {
            self.indexes.update(slot, &node.entity, true);
        }
        self.ids.insert(id, slot);
        self.by_kind.entry(kind).or_default().insert(slot);
        slot
    }

    fn add_edge(&mut self, from: Slot, kind: EdgeKind, to: Slot) {
        self.out[from as usize].push((to, kind));
        self.inc[to as usize].push((from, kind));
        self.edge_count += 1;
    }

    fn remove_edge(&mut self, from: Slot, kind: EdgeKind, to: Slot) {
        let out = &mut self.out[from as usize];
        if let Some(position) = out.iter().position(|entry| *entry == (to, kind)) {
            out.swap_remove(position);
            self.edge_count -= 1;
        }
        let inc = &mut self.inc[to as usize];
        if let Some(position) = inc.iter().position(|entry| *entry == (from, kind)) {
            inc.swap_remove(position);
        }
    }

    fn id_of(&self, slot: Slot) -> String {
        self.entity(slot)
            .map(|entity| entity.id.clone())
            .unwrap_or_default()
    }

    /// Replaces what `unit` contributes with `derived`, touching only what changed.
    pub fn apply(&mut self, unit: Unit, derived: Derived) -> GraphDiff {
        self.apply_units(vec![(unit, derived)])
    }

    /// Replaces what each unit contributes, touching only what changed. Edges may end at
    /// entities another unit of the batch contributes.
    pub fn apply_units(&mut self, units: Vec<(Unit, Derived)>) -> GraphDiff {
        let mut diff = GraphDiff::default();
        // Every unit's entities first, so that edges between units of the batch resolve; in
        // id order across the batch, so that a cluster's entities of one kind sit together
        // in slots (walks over them read memory in order) whatever parts they come from.
        let mut olds = Vec::with_capacity(units.len());
        let mut edge_sets = Vec::with_capacity(units.len());
        let mut entities: Vec<(usize, Entity)> = Vec::new();
        for (index, (unit, derived)) in units.into_iter().enumerate() {
            olds.push((unit.clone(), self.units.remove(&unit).unwrap_or_default()));
            entities.extend(derived.entities.into_values().map(|entity| (index, entity)));
            edge_sets.push(derived.edges);
        }
        entities.sort_unstable_by(|first, second| first.1.id.cmp(&second.1.id));
        let mut contributed: Vec<BTreeSet<Slot>> = vec![BTreeSet::new(); olds.len()];
        for (index, entity) in entities {
            let slot = self.contribute_entity(&olds[index].1, entity, &mut diff);
            contributed[index].insert(slot);
        }
        let mut released_by_batch: HashMap<Slot, u32> = HashMap::new();
        let released: Vec<Vec<Slot>> = olds
            .iter()
            .zip(&contributed)
            .map(|((_, old), new)| old.entities.difference(new).copied().collect())
            .collect();
        for &slot in released.iter().flatten() {
            *released_by_batch.entry(slot).or_default() += 1;
        }
        // Entities no unit will contribute: the batch's edges to them go with its diffs
        // below, so that only other units' edges are left to find when they are released.
        let doomed: HashSet<Slot> = released_by_batch
            .into_iter()
            .filter(|(slot, count)| {
                self.nodes
                    .get(*slot as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|node| node.owners <= *count)
            })
            .map(|(slot, _)| slot)
            .collect();
        let names: Vec<Unit> = olds.iter().map(|(unit, _)| unit.clone()).collect();
        let mut added = Vec::new();
        for (((unit, old), entities), edges) in olds.into_iter().zip(contributed).zip(edge_sets) {
            let mut new_state = UnitState {
                entities,
                edges: BTreeSet::new(),
            };
            for edge in edges {
                let (Some(&from), Some(&to)) = (self.ids.get(&edge.from), self.ids.get(&edge.to))
                else {
                    continue;
                };
                if !doomed.contains(&from) && !doomed.contains(&to) {
                    new_state.edges.insert((from, edge.kind, to));
                }
            }
            for &(from, kind, to) in old.edges.difference(&new_state.edges) {
                self.remove_edge_recorded(from, kind, to, &mut diff);
            }
            added.extend(new_state.edges.difference(&old.edges).copied());
            if !new_state.entities.is_empty() || !new_state.edges.is_empty() {
                self.units.insert(unit, new_state);
            }
        }
        // In slot order across the batch, as adjacency lists are read.
        added.sort_unstable();
        for (from, kind, to) in added {
            self.add_edge_recorded(from, kind, to, &mut diff);
        }
        for (unit, slots) in names.iter().zip(released) {
            for slot in slots {
                self.release_entity(unit, slot, &mut diff);
            }
        }
        diff
    }

    /// Changes part of what `unit` contributes: the entities and edges of `removed` go
    /// (unless `added` contributes them again), those of `added` are added or updated, and
    /// everything else the unit contributes stays as it is. Applying every unit's full
    /// derivation with [`TenantGraph::apply`] gives the same graph, provided `removed` lists
    /// the unit's edges at every entity it removes that another unit still contributes.
    pub fn patch(&mut self, unit: Unit, removed: &UnitPatch, added: Derived) -> GraphDiff {
        let mut diff = GraphDiff::default();
        let mut state = self.units.remove(&unit).unwrap_or_default();
        let mut contributed: BTreeSet<Slot> = BTreeSet::new();
        for (_, entity) in added.entities {
            let slot = self.contribute_entity(&state, entity, &mut diff);
            state.entities.insert(slot);
            contributed.insert(slot);
        }
        let mut added_edges: BTreeSet<(Slot, EdgeKind, Slot)> = BTreeSet::new();
        for edge in added.edges {
            let (Some(from), Some(to)) = (self.ids.get(&edge.from), self.ids.get(&edge.to)) else {
                continue;
            };
            added_edges.insert((*from, edge.kind, *to));
        }
        for (from_id, kind, to_id) in &removed.edges {
            let (Some(&from), Some(&to)) = (self.ids.get(from_id), self.ids.get(to_id)) else {
                continue;
            };
            if added_edges.contains(&(from, *kind, to)) || !state.edges.remove(&(from, *kind, to)) {
                continue;
            }
            self.remove_edge_recorded(from, *kind, to, &mut diff);
        }
        for (from, kind, to) in added_edges {
            if state.edges.insert((from, kind, to)) {
                self.add_edge_recorded(from, kind, to, &mut diff);
            }
        }
        for id in &removed.entities {
            let Some(&slot) = self.ids.get(id) else {
                continue;
            };
            if contributed.contains(&slot) || !state.entities.remove(&slot) {
                continue;
            }
            // Dangling edges are dropped from every unit's state, this one's included.
            self.units.insert(unit.clone(), state);
            self.release_entity(&unit, slot, &mut diff);
            state = self.units.remove(&unit).unwrap_or_default();
        }
        self.units.insert(unit, state);
        diff
    }

    /// Adds or updates an entity on behalf of a unit whose contribution so far is `owned`.
    ///
    /// Entities that several units contribute (the internet, images) carry properties from
    /// at most one unit (the scanner findings); the others contribute a bare entity without
    /// properties, which never replaces the richer one.
    fn contribute_entity(
        &mut self,
        owned: &UnitState,
        entity: Entity,
        diff: &mut GraphDiff,
    ) -> Slot {
        let Some(&slot) = self.ids.get(&entity.id) else {
            let slot = self.allocate(entity);
            if let Some(Some(node)) = self.nodes.get_mut(slot as usize) {
                node.owners += 1;
            }
            diff.upserted_entities.push(slot);
            return slot;
        };
        let already_owned = owned.entities.contains(&slot);
        if let Some(Some(node)) = self.nodes.get_mut(slot as usize) {
            let other_owners = node.owners - u32::from(already_owned);
            let bare_over_shared = other_owners > 0 && entity.properties.is_empty();
            if !bare_over_shared && *node.entity != entity {
                self.indexes.update(slot, &node.entity, false);
                self.indexes.update(slot, &entity, true);
                node.entity = Arc::new(entity);
                diff.upserted_entities.push(slot);
            }
            if !already_owned {
                node.owners += 1;
            }
        }
        slot
    }

    fn add_edge_recorded(&mut self, from: Slot, kind: EdgeKind, to: Slot, diff: &mut GraphDiff) {
        diff.added_edges
            .push((self.id_of(from), kind, self.id_of(to)));
        diff.changed_edges.push((from, kind, to));
        self.add_edge(from, kind, to);
    }

    fn remove_edge_recorded(&mut self, from: Slot, kind: EdgeKind, to: Slot, diff: &mut GraphDiff) {
        diff.removed_edges
            .push((self.id_of(from), kind, self.id_of(to)));
        diff.changed_edges.push((from, kind, to));
        self.remove_edge(from, kind, to);
    }

    /// Drops `unit`'s claim on an entity (the unit's state must no longer list it); the
    /// entity goes when no unit claims it any more.
    fn release_entity(&mut self, unit: &Unit, slot: Slot, diff: &mut GraphDiff) {
        let Some(Some(node)) = self.nodes.get_mut(slot as usize) else {
            return;
        };
        node.owners = node.owners.saturating_sub(1);
        if node.owners > 0 {
            // A part names the shared entities it uses bare; the cluster's other objects and
            // the findings give them their properties (see contribute_entity). When the one
            // that did goes, the entity the parts still claim is the bare one.
            if !matches!(unit, Unit::Part { .. }) && !node.entity.properties.is_empty() {
                self.indexes.update(slot, &node.entity, false);
                Arc::make_mut(&mut node.entity).properties.clear();
                diff.upserted_entities.push(slot);
            }
            return;
        }
        // Edges of other units that still touch the entity go with it.
        let dangling: Vec<(Slot, EdgeKind, Slot)> = self.out[slot as usize]
            .iter()
            .map(|(to, kind)| (slot, *kind, *to))
            .chain(
                self.inc[slot as usize]
                    .iter()
                    .map(|(from, kind)| (*from, *kind, slot)),
            )
            .collect();
        for (from, kind, to) in dangling {
            self.remove_edge_recorded(from, kind, to, diff);
            for state in self.units.values_mut() {
                state.edges.remove(&(from, kind, to));
            }
        }
        if let Some(node) = self.nodes[slot as usize].take() {
            self.indexes.update(slot, &node.entity, false);
            self.kinds[slot as usize] = None;
            self.ids.remove(&node.entity.id);
            if let Some(set) = self.by_kind.get_mut(&node.entity.kind) {
                set.remove(&slot);
            }
            diff.removed_entities.push(node.entity.id.clone());
            diff.removed_kinds.push(node.entity.kind);
        }
        self.free.push(slot);
    }

    /// Neighbours of a slot (both directions) with the edge and its direction (true = out).
    pub fn neighbours(&self, slot: Slot) -> Vec<(Slot, EdgeKind, bool)> {
        self.out_edges(slot)
            .iter()
            .map(|(to, kind)| (*to, *kind, true))
            .chain(
                self.in_edges(slot)
                    .iter()
                    .map(|(from, kind)| (*from, *kind, false)),
            )
            .collect()
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{image_id, vulnerability_id};

    fn cluster_unit(pod: &str) -> Derived {
        let mut derived = Derived::default();
        let pod_id = format!("c1/pod/shop/{pod}");
        derived.entity(Entity::new(
            EntityKind::Pod,
            "c1",
            "shop",
            pod,
            pod_id.clone(),
        ));
        derived.entity(Entity::new(
            EntityKind::Image,
            "",
            "",
            "shop/web:1",
            image_id("shop/web:1"),
        ));
        derived.edge(&pod_id, EdgeKind::UsesImage, &image_id("shop/web:1"));
        derived
    }

    fn findings_unit() -> Derived {
        let mut derived = Derived::default();
        derived.entity(
            Entity::new(
                EntityKind::Image,
                "",
                "",
                "shop/web:1",
                image_id("shop/web:1"),
            )
            .with("critical_vulnerabilities", 2),
        );
        derived.entity(Entity::new(
            EntityKind::Vulnerability,
            "",
            "",
            "CVE-1",
            vulnerability_id("CVE-1"),
        ));
        derived.edge(
            &image_id("shop/web:1"),
            EdgeKind::HasVulnerability,
            &vulnerability_id("CVE-1"),
        );
        derived
    }

    fn critical(graph: &TenantGraph) -> Option<u64> {
        graph
            .entity_by_id(&image_id("shop/web:1"))
            .and_then(|image| image.properties.get("critical_vulnerabilities"))
            .and_then(serde_json::Value::as_u64)
    }

    #[test]
    fn a_shared_entity_keeps_what_every_unit_says_in_any_order() {
        let mut cluster_first = TenantGraph::new();
        cluster_first.apply(Unit::Cluster("c1".into()), cluster_unit("web-1"));
        cluster_first.apply(Unit::Findings, findings_unit());
        let mut findings_first = TenantGraph::new();
        findings_first.apply(Unit::Findings, findings_unit());
        findings_first.apply(Unit::Cluster("c1".into()), cluster_unit("web-1"));
        assert_eq!(critical(&cluster_first), Some(2));
        assert_eq!(critical(&findings_first), Some(2));

        // the cluster derived again (a pod replaced) does not wipe out the scanner's counts
        let diff = cluster_first.apply(Unit::Cluster("c1".into()), cluster_unit("web-2"));
        assert_eq!(critical(&cluster_first), Some(2));
        assert!(!diff.removed_entities.contains(&image_id("shop/web:1")));

        // the findings withdrawn: the image stays (the cluster runs it) without the counts
        let diff = cluster_first.apply(Unit::Findings, Derived::default());
        assert_eq!(critical(&cluster_first), None);
        assert!(
            cluster_first
                .entity_by_id(&image_id("shop/web:1"))
                .is_some()
        );
        assert!(diff.removed_entities.contains(&vulnerability_id("CVE-1")));
        let image = cluster_first.slot(&image_id("shop/web:1")).expect("image");
        assert!(diff.upserted_entities.contains(&image));

        // and the cluster gone too: the image goes
        let diff = cluster_first.apply(Unit::Cluster("c1".into()), Derived::default());
        assert!(diff.removed_entities.contains(&image_id("shop/web:1")));
        assert_eq!(cluster_first.entity_count(), 0);
    }
}
