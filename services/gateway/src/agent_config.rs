//! Configuration pushed to agents (spec point 14): rules files and settings per tenant, and
//! optionally per cluster, stored in sled with a version that increases on every change.
//!
//! An agent receives its cluster's configuration when one is set, else its tenant's. Every
//! change wakes the tenant's sessions through a watch channel (which holds only the latest
//! version, so a burst of changes never queues), and each session pushes the configuration if
//! it differs from what its agent applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use palisade_core::ids::TenantId;
use palisade_core::storage::{Store, TypedTree};
use palisade_proto::v1::AgentConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::GatewayError;

const CONFIGS_TREE: &str = "agent_configs";
const VERSIONS_TREE: &str = "agent_config_versions";
/// Most rules files and settings in one configuration.
const MAX_FILES: usize = 64;
const MAX_SETTINGS: usize = 256;
/// Longest file name, setting key or setting value.
const MAX_NAME: usize = 256;
const MAX_SETTING_VALUE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredConfig {
    version: u64,
    rules_files: BTreeMap<String, String>,
    settings: BTreeMap<String, String>,
}

impl StoredConfig {
    fn message(&self) -> AgentConfig {
        AgentConfig {
            version: self.version.to_string(),
            rules_files: self.rules_files.clone().into_iter().collect(),
            settings: self.settings.clone().into_iter().collect(),
        }
    }
}

type ScopeKey = (TenantId, String);

/// Stored agent configurations and the channels that announce their changes.
pub struct AgentConfigStore {
    store: Store,
    configs: TypedTree<StoredConfig>,
    versions: TypedTree<u64>,
    /// Largest configuration accepted, in bytes of rules and settings: it travels as one
    /// message on the agent stream.
    max_bytes: usize,
    cache: Mutex<HashMap<ScopeKey, Option<Arc<AgentConfig>>>>,
    changes: Mutex<HashMap<TenantId, watch::Sender<u64>>>,
}

impl std::fmt::Debug for AgentConfigStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AgentConfigStore")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

fn storage_key(tenant: &TenantId, cluster: &str) -> String {
    format!("{tenant}\n{cluster}")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AgentConfigStore {
    /// Opens the configurations kept in `store`; none may exceed `max_bytes`.
    pub fn open(store: &Store, max_bytes: usize) -> Result<AgentConfigStore, GatewayError> {
        Ok(AgentConfigStore {
            store: store.clone(),
            configs: store.typed_tree(CONFIGS_TREE)?,
            versions: store.typed_tree(VERSIONS_TREE)?,
            max_bytes,
            cache: Mutex::new(HashMap::new()),
            changes: Mutex::new(HashMap::new()),
        })
    }

    fn validate(
        &self,
        rules_files: &BTreeMap<String, String>,
        settings: &BTreeMap<String, String>,
    ) -> Result<(), GatewayError> {
        let invalid = |message: String| Err(GatewayError::InvalidAgentConfig(message));
        if rules_files.len() > MAX_FILES || settings.len() > MAX_SETTINGS {
            return invalid(format!(
                "{} rules files and {} settings given; at most {MAX_FILES} and {MAX_SETTINGS} are accepted",
                rules_files.len(),
                settings.len()
            ));
        }
        let bad_name = |name: &str| {
            name.trim().is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control)
        };
        if let Some(name) = rules_files.keys().find(|name| bad_name(name)) {
            return invalid(format!(
                "rules file name {name:?} must be 1-{MAX_NAME} printable characters"
            ));
        }
        if let Some(key) = settings.keys().find(|key| bad_name(key)) {
            return invalid(format!(
                "setting name {key:?} must be 1-{MAX_NAME} printable characters"
            ));
        }
        if let Some((key, _)) = settings
            .iter()
            .find(|(_, value)| value.len() > MAX_SETTING_VALUE)
        {
            return invalid(format!(
                "setting {key} is longer than {MAX_SETTING_VALUE} bytes"
            ));
        }
        let total: usize = rules_files
            .iter()
            .chain(settings.iter())
            .map(|(key, value)| key.len() + value.len())
            .sum();
        if total > self.max_bytes {
            return invalid(format!(
                "{total} bytes of rules and settings; at most {} are accepted",
                self.max_bytes
            ));
        }
        Ok(())
    }

    /// Replaces the configuration of `tenant` (of one cluster when `cluster` is not empty),
    /// makes it durable and announces it; returns it with its new version.
    pub async fn set(
        &self,
        tenant: &TenantId,
        cluster: &str,
        rules_files: BTreeMap<String, String>,
        settings: BTreeMap<String, String>,
    ) -> Result<AgentConfig, GatewayError> {
        self.validate(&rules_files, &settings)?;
        let stored = {
            // one version per change even when two admins set at once
            let mut cache = lock(&self.cache);
            let version = self.versions.get(tenant.as_str())?.unwrap_or(0) + 1;
            self.versions.put(tenant.as_str(), &version)?;
            let stored = StoredConfig {
                version,
                rules_files,
                settings,
            };
            self.configs.put(&storage_key(tenant, cluster), &stored)?;
            cache.insert(
                (tenant.clone(), cluster.to_string()),
                Some(Arc::new(stored.message())),
            );
            stored
        };
        // a blocking flush on a blocking thread: the store's async flush deadlocks when
        // awaited by several callers at once (sled 0.34, issue 1308)
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush_blocking())
            .await
            .map_err(|error| {
                palisade_core::CoreError::Task(format!("agent configuration flush: {error}"))
            })??;
        let sender = self.sender(tenant);
        sender.send_replace(stored.version);
        Ok(stored.message())
    }

    /// The configuration set for exactly this scope (the tenant's when `cluster` is empty).
    pub fn get(
        &self,
        tenant: &TenantId,
        cluster: &str,
    ) -> Result<Option<Arc<AgentConfig>>, GatewayError> {
        let scope = (tenant.clone(), cluster.to_string());
        if let Some(cached) = lock(&self.cache).get(&scope) {
            return Ok(cached.clone());
        }
        let loaded = self
            .configs
            .get(&storage_key(tenant, cluster))?
            .map(|stored| Arc::new(stored.message()));
        lock(&self.cache).insert(scope, loaded.clone());
        Ok(loaded)
    }

    /// The configuration an agent of `cluster` receives: its cluster's, else its tenant's.
    pub fn effective(
        &self,
        tenant: &TenantId,
        cluster: &str,
    ) -> Result<Option<Arc<AgentConfig>>, GatewayError> {
        if !cluster.is_empty()
            && let Some(config) = self.get(tenant, cluster)?
        {
            return Ok(Some(config));
        }
        self.get(tenant, "")
    }

    /// Removes every configuration of `tenant` (an erased tenant). Its version counter stays,
    /// so versions never go back for agents that remember one.
    pub fn forget_tenant(&self, tenant: &TenantId) -> Result<usize, GatewayError> {
        let mut cache = lock(&self.cache);
        cache.retain(|(owner, _), _| owner != tenant);
        Ok(self.configs.remove_prefix(&format!("{tenant}\n"))?)
    }

    fn sender(&self, tenant: &TenantId) -> watch::Sender<u64> {
        lock(&self.changes)
            .entry(tenant.clone())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    /// A channel that changes whenever a configuration of `tenant` changes.
    pub fn subscribe(&self, tenant: &TenantId) -> watch::Receiver<u64> {
        self.sender(tenant).subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).expect("tenant")
    }

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn versions_increase_per_change_and_a_cluster_config_overrides_the_tenants() {
        let temp = tempfile::tempdir().expect("temp");
        let store = Store::open(temp.path()).expect("store");
        let configs = AgentConfigStore::open(&store, 1 << 20).expect("open");
        let acme = tenant("acme");
        let mut changes = configs.subscribe(&acme);
        let first = configs
            .set(
                &acme,
                "",
                files(&[("a.yaml", "- list: x\n  items: []\n")]),
                BTreeMap::new(),
            )
            .await
            .expect("set");
        assert_eq!(first.version, "1");
        assert!(changes.has_changed().expect("open channel"));
        changes.borrow_and_update();
        let prod = configs
            .set(&acme, "prod", BTreeMap::new(), files(&[("mode", "strict")]))
            .await
            .expect("set cluster");
        assert_eq!(prod.version, "2", "one counter per tenant");
        assert_eq!(*changes.borrow_and_update(), 2);
        let effective = |cluster: &str| {
            configs
                .effective(&acme, cluster)
                .expect("effective")
                .map(|config| config.version.clone())
        };
        assert_eq!(effective("prod").as_deref(), Some("2"));
        assert_eq!(effective("staging").as_deref(), Some("1"));
        assert_eq!(effective("").as_deref(), Some("1"));
        assert_eq!(
            configs.effective(&tenant("globex"), "").expect("effective"),
            None
        );
        drop(configs);

        let reopened = AgentConfigStore::open(&store, 1 << 20).expect("reopen");
        let again = reopened
            .set(&acme, "", BTreeMap::new(), BTreeMap::new())
            .await
            .expect("set");
        assert_eq!(again.version, "3", "the counter survives a restart");
        assert_eq!(
            reopened
                .get(&acme, "prod")
                .expect("get")
                .map(|config| config.settings["mode"].clone()),
            Some("strict".to_string())
        );
    }

    #[tokio::test]
    async fn oversized_and_misnamed_configurations_are_refused_with_the_reason() {
        let store = Store::temporary().expect("store");
        let configs = AgentConfigStore::open(&store, 100).expect("open");
        let acme = tenant("acme");
        let error = configs
            .set(
                &acme,
                "",
                files(&[("big.yaml", &"x".repeat(200))]),
                BTreeMap::new(),
            )
            .await
            .expect_err("too large");
        assert!(error.to_string().contains("at most 100"), "{error}");
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        let error = configs
            .set(&acme, "", files(&[("bad\nname", "")]), BTreeMap::new())
            .await
            .expect_err("bad name");
        assert!(error.to_string().contains("rules file name"), "{error}");
        assert_eq!(configs.get(&acme, "").expect("get"), None, "nothing stored");
    }
}
