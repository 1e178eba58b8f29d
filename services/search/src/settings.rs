//! Per-tenant settings of the search service, in the embedded store: saved searches and
//! retention.

use palisade_core::ids::TenantId;
use palisade_core::storage::{Store, TypedTree};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::SavedSearch;
use serde::{Deserialize, Serialize};

use crate::error::SearchError;

/// Most saved searches one tenant may keep.
pub const MAX_SAVED_SEARCHES_PER_TENANT: usize = 1_000;
/// Longest retention accepted, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// A saved search as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredSearch {
    name: String,
    query: String,
    facets: Vec<String>,
    description: String,
    updated_seconds: i64,
    updated_by: String,
}

/// Saved searches and retention of every tenant.
#[derive(Clone)]
pub struct SearchSettings {
    saved: TypedTree<StoredSearch>,
    retention: TypedTree<u32>,
}

impl SearchSettings {
    /// The settings in `store`.
    pub fn open(store: &Store) -> Result<SearchSettings, SearchError> {
        Ok(SearchSettings {
            saved: store.typed_tree("search/saved")?,
            retention: store.typed_tree("search/retention")?,
        })
    }

    /// Stores `search` for `tenant` (replacing one of the same name) and returns it as stored.
    pub fn save(
        &self,
        tenant: &TenantId,
        search: SavedSearch,
        key_id: &str,
    ) -> Result<SavedSearch, SearchError> {
        validate_name(&search.name)?;
        let key = saved_key(tenant, &search.name);
        let exists = self.saved.get(&key)?.is_some();
        if !exists
            && self.saved.scan_prefix(&format!("{tenant}/"))?.len() >= MAX_SAVED_SEARCHES_PER_TENANT
        {
            return Err(SearchError::QueryLimit(format!(
                "a tenant keeps at most {MAX_SAVED_SEARCHES_PER_TENANT} saved searches; delete some first"
            )));
        }
        let stored = StoredSearch {
            name: search.name,
            query: search.query,
            facets: search.facets,
            description: search.description,
            updated_seconds: chrono::Utc::now().timestamp(),
            updated_by: key_id.to_string(),
        };
        self.saved.put(&key, &stored)?;
        Ok(to_proto(stored))
    }

    /// The saved search `name` of `tenant`.
    pub fn get(&self, tenant: &TenantId, name: &str) -> Result<SavedSearch, SearchError> {
        self.saved
            .get(&saved_key(tenant, name))?
            .map(to_proto)
            .ok_or_else(|| SearchError::SavedSearchNotFound(name.to_string()))
    }

    /// Every saved search of `tenant`, by name.
    pub fn list(&self, tenant: &TenantId) -> Result<Vec<SavedSearch>, SearchError> {
        Ok(self
            .saved
            .scan_prefix(&format!("{tenant}/"))?
            .into_iter()
            .map(|(_, stored)| to_proto(stored))
            .collect())
    }

    /// Deletes a saved search; false if there was none of that name.
    pub fn delete(&self, tenant: &TenantId, name: &str) -> Result<bool, SearchError> {
        Ok(self.saved.remove(&saved_key(tenant, name))?)
    }

    /// Sets `tenant`'s retention in days (0 keeps everything).
    pub fn set_retention(&self, tenant: &TenantId, days: u32) -> Result<(), SearchError> {
        if days > MAX_RETENTION_DAYS {
            return Err(SearchError::InvalidRequest(format!(
                "retention of {days} days is longer than the {MAX_RETENTION_DAYS} accepted"
            )));
        }
        if days == 0 {
            self.retention.remove(tenant.as_str())?;
        } else {
            self.retention.put(tenant.as_str(), &days)?;
        }
        Ok(())
    }

    /// `tenant`'s retention in days, 0 when it keeps everything.
    pub fn retention(&self, tenant: &TenantId) -> Result<u32, SearchError> {
        Ok(self.retention.get(tenant.as_str())?.unwrap_or(0))
    }

    /// Forgets everything `tenant` kept here (saved searches and retention), because the tenant
    /// was erased; returns how many settings went.
    pub fn forget_tenant(&self, tenant: &str) -> Result<usize, SearchError> {
        let saved = self.saved.remove_prefix(&format!("{tenant}/"))?;
        Ok(saved + usize::from(self.retention.remove(tenant)?))
    }

    /// Every tenant with a retention, and its days.
    pub fn retentions(&self) -> Result<Vec<(String, u32)>, SearchError> {
        Ok(self.retention.scan_prefix("")?)
    }
}

fn saved_key(tenant: &TenantId, name: &str) -> String {
    format!("{tenant}/{name}")
}

fn validate_name(name: &str) -> Result<(), SearchError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if valid {
        return Ok(());
    }
    Err(SearchError::InvalidRequest(format!(
        "saved search name {:?} must be 1-64 letters, digits, '-', '_' or '.'",
        name.chars().take(80).collect::<String>()
    )))
}

fn to_proto(stored: StoredSearch) -> SavedSearch {
    SavedSearch {
        name: stored.name,
        query: stored.query,
        facets: stored.facets,
        description: stored.description,
        updated: Some(Timestamp {
            seconds: stored.updated_seconds,
            nanos: 0,
        }),
        updated_by: stored.updated_by,
    }
}
