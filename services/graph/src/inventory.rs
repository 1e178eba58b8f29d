//! The inventory of one cluster: the objects the graph is derived from.

use std::collections::BTreeMap;

use crate::object::{Object, ObjectKey, ObjectKind};

/// Objects of one cluster, keyed by kind, namespace and name.
#[derive(Debug, Clone, Default)]
pub struct ClusterInventory {
    objects: BTreeMap<ObjectKey, Object>,
}

impl ClusterInventory {
    /// An empty inventory.
    pub fn new() -> ClusterInventory {
        ClusterInventory::default()
    }

    /// Adds or replaces an object. Returns whether anything changed.
    pub fn upsert(&mut self, object: Object) -> bool {
        let key = object.key();
        match self.objects.get(&key) {
            Some(existing) if *existing == object => false,
            _ => {
                self.objects.insert(key, object);
                true
            }
        }
    }

    /// Removes an object. Returns whether it was present.
    pub fn remove(&mut self, key: &ObjectKey) -> bool {
        self.objects.remove(key).is_some()
    }

    /// Removes every object of a kind (before a re-list replaces them).
    pub fn clear_kind(&mut self, kind: ObjectKind) -> Vec<ObjectKey> {
        let keys: Vec<ObjectKey> = self.of_kind(kind).map(Object::key).collect();
        for key in &keys {
            self.objects.remove(key);
        }
        keys
    }

    /// The object with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<&Object> {
        self.objects.get(key)
    }

    /// Objects of one kind, ordered by namespace and name.
    pub fn of_kind(&self, kind: ObjectKind) -> impl Iterator<Item = &Object> {
        let start = ObjectKey {
            kind,
            namespace: String::new(),
            name: String::new(),
        };
        self.objects
            .range(start..)
            .take_while(move |(key, _)| key.kind == kind)
            .map(|(_, object)| object)
    }

    /// Every object.
    pub fn iter(&self) -> impl Iterator<Item = &Object> {
        self.objects.values()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the inventory is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}
