//! Persistence in sled: per tenant, the inventory objects, the scanner findings, the alerts and
//! the graph itself (entities and edges), written as diffs in one batch per change.
//!
//! sled flushes on its own every 500 ms; [`GraphStore::flush`] makes a batch durable when the
//! caller needs to acknowledge it.

use std::path::Path;

use crate::error::{GraphError, Result};
use crate::findings::{FindingsByImage, ImageFindings, RuntimeAlert};
use crate::graph::{GraphDiff, TenantGraph};
use crate::object::{Object, ObjectKey};

/// The sled database of the graph service.
#[derive(Debug, Clone)]
pub struct GraphStore {
    db: sled::Db,
}

fn object_key(cluster: &str, key: &ObjectKey) -> Vec<u8> {
    format!(
        "{cluster}\u{0}{}\u{0}{}\u{0}{}",
        key.kind.name(),
        key.namespace,
        key.name
    )
    .into_bytes()
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|error| GraphError::CorruptRecord {
        key: String::from_utf8_lossy(key).into_owned(),
        message: error.to_string(),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|error| GraphError::CorruptRecord {
        key: String::new(),
        message: error.to_string(),
    })
}

impl GraphStore {
    /// Opens (or creates) the store in a directory.
    pub fn open(path: &Path) -> Result<GraphStore> {
        Ok(GraphStore {
            db: palisade_core::storage::open_sled(&sled::Config::new().path(path))?,
        })
    }

    /// A store that lives in memory only (tests, offline analysis).
    pub fn temporary() -> Result<GraphStore> {
        Ok(GraphStore {
            db: sled::Config::new().temporary(true).open()?,
        })
    }

    fn tree(&self, tenant: &str, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(format!("{tenant}\u{0}{name}"))?)
    }

    /// Tenants with stored data.
    pub fn tenants(&self) -> Vec<String> {
        let mut tenants: Vec<String> = self
            .db
            .tree_names()
            .iter()
            .filter_map(|name| {
                let name = String::from_utf8_lossy(name).into_owned();
                name.strip_suffix("\u{0}objects").map(str::to_string)
            })
            .collect();
        tenants.sort();
        tenants.dedup();
        tenants
    }

    /// Drops every tree of `tenant`: its inventory, findings, alerts, graph and meta.
    pub fn remove_tenant(&self, tenant: &str) -> Result<()> {
        let prefix = format!("{tenant}\u{0}");
        for name in self.db.tree_names() {
            if name.starts_with(prefix.as_bytes()) {
                self.db.drop_tree(&name)?;
            }
        }
        Ok(())
    }

    /// Writes object upserts and deletions of one cluster in one batch.
    pub fn write_objects(
        &self,
        tenant: &str,
        cluster: &str,
        upserts: &[&Object],
        deletes: &[ObjectKey],
    ) -> Result<()> {
        let tree = self.tree(tenant, "objects")?;
        let mut batch = sled::Batch::default();
        for object in upserts {
            batch.insert(object_key(cluster, &object.key()), encode(object)?);
        }
        for key in deletes {
            batch.remove(object_key(cluster, key));
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// Every stored object of a tenant, as (cluster, object).
    pub fn load_objects(&self, tenant: &str) -> Result<Vec<(String, Object)>> {
        let tree = self.tree(tenant, "objects")?;
        let mut objects = Vec::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            let cluster = key
                .split(|byte| *byte == 0)
                .next()
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .unwrap_or_default();
            objects.push((cluster, decode(&key, &value)?));
        }
        Ok(objects)
    }

    /// Replaces the stored findings of a tenant.
    pub fn write_findings(&self, tenant: &str, findings: &FindingsByImage) -> Result<()> {
        let tree = self.tree(tenant, "findings")?;
        tree.clear()?;
        let mut batch = sled::Batch::default();
        for (image, group) in findings {
            batch.insert(image.as_bytes(), encode(group)?);
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// Replaces the stored findings of some images (by normalised reference) in one batch; an
    /// image without a group loses its findings.
    pub fn write_image_findings(
        &self,
        tenant: &str,
        groups: &[(&str, Option<&Vec<ImageFindings>>)],
    ) -> Result<()> {
        let tree = self.tree(tenant, "findings")?;
        let mut batch = sled::Batch::default();
        for (image, group) in groups {
            match group {
                Some(group) => batch.insert(image.as_bytes(), encode(group)?),
                None => batch.remove(image.as_bytes()),
            }
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// Stored findings of a tenant, in stored order.
    pub fn load_findings(&self, tenant: &str) -> Result<Vec<ImageFindings>> {
        let tree = self.tree(tenant, "findings")?;
        let mut findings = Vec::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            // One record per image holds its group; older stores held one entry per record.
            match serde_json::from_slice::<Vec<ImageFindings>>(&value) {
                Ok(group) => findings.extend(group),
                Err(_) => findings.push(decode(&key, &value)?),
            }
        }
        Ok(findings)
    }

    /// Stores alerts (deduplicated by id).
    pub fn write_alerts(&self, tenant: &str, alerts: &[RuntimeAlert]) -> Result<()> {
        let tree = self.tree(tenant, "alerts")?;
        let mut batch = sled::Batch::default();
        for alert in alerts {
            batch.insert(alert.id.as_bytes(), encode(alert)?);
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// Removes every stored alert of a tenant.
    pub fn remove_alerts(&self, tenant: &str) -> Result<()> {
        self.db.drop_tree(format!("{tenant}\u{0}alerts"))?;
        Ok(())
    }

    /// Stored alerts of a tenant.
    pub fn load_alerts(&self, tenant: &str) -> Result<Vec<RuntimeAlert>> {
        let tree = self.tree(tenant, "alerts")?;
        tree.iter()
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    /// Writes a graph diff: changed entities and edges.
    pub fn write_graph_diff(
        &self,
        tenant: &str,
        graph: &TenantGraph,
        diff: &GraphDiff,
    ) -> Result<()> {
        let entities = self.tree(tenant, "entities")?;
        let edges = self.tree(tenant, "edges")?;
        let mut entity_batch = sled::Batch::default();
        for slot in &diff.upserted_entities {
            if let Some(entity) = graph.entity(*slot) {
                entity_batch.insert(entity.id.as_bytes(), encode(entity)?);
            }
        }
        for id in &diff.removed_entities {
            entity_batch.remove(id.as_bytes());
        }
        let mut edge_batch = sled::Batch::default();
        let edge_key = |(from, kind, to): &(String, crate::model::EdgeKind, String)| {
            format!("{from}\u{0}{}\u{0}{to}", kind.as_str()).into_bytes()
        };
        for edge in &diff.removed_edges {
            edge_batch.remove(edge_key(edge));
        }
        for edge in &diff.added_edges {
            edge_batch.insert(edge_key(edge), &[]);
        }
        entities.apply_batch(entity_batch)?;
        edges.apply_batch(edge_batch)?;
        Ok(())
    }

    /// Number of stored entities and edges of a tenant.
    pub fn graph_counts(&self, tenant: &str) -> Result<(usize, usize)> {
        Ok((
            self.tree(tenant, "entities")?.len(),
            self.tree(tenant, "edges")?.len(),
        ))
    }

    /// Stores a watch resource version (to resume after a restart).
    pub fn write_meta(&self, tenant: &str, key: &str, value: &str) -> Result<()> {
        self.tree(tenant, "meta")?
            .insert(key.as_bytes(), value.as_bytes())?;
        Ok(())
    }

    /// Reads a stored meta value.
    pub fn read_meta(&self, tenant: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .tree(tenant, "meta")?
            .get(key.as_bytes())?
            .map(|value| String::from_utf8_lossy(&value).into_owned()))
    }

    /// Makes every write so far durable, on a blocking thread (sled's `flush_async` can hang
    /// under concurrent callers, sled issue 1308).
    pub async fn flush(&self) -> Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|error| sled::Error::Io(std::io::Error::other(error)))??;
        Ok(())
    }

    /// Makes every write so far durable, blocking.
    pub fn flush_blocking(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}
