//! Deleting a tenant with its data. The tenant is first marked as being deleted, durably, with
//! every credential of it revoked; then its records are erased from the log topics (the
//! search index, the graph and the notifiers, here or behind the log's followers, drop what
//! they derived as they read the erasure); then its agents, pushed configurations and audit
//! events go, and the tenant with them. A crash part-way leaves the mark, and the next start
//! finishes the deletion.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use palisade_core::CoreError;
use palisade_core::auth::Credentials;
use palisade_core::ids::TenantId;
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_proto::v1::DeleteTenantResponse;

use crate::agents::AgentGrpc;
use crate::error::GatewayError;

/// How often deletions that could not finish (a service unreachable) are tried again.
const RETRY_INTERVAL: Duration = Duration::from_secs(60);

/// A service that keeps a tenant's state outside the log and forgets it when the tenant is
/// deleted, before the log is erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Keeper {
    /// Scanned images and finding states; counted in images.
    Scanner,
    /// Saved searches and the retention; counted in settings.
    Search,
    /// The tenant's graph (inventory, findings, alerts, scans); counted in clusters.
    Graph,
}

impl Keeper {
    /// The service's name, as the operator knows it.
    pub fn name(self) -> &'static str {
        match self {
            Keeper::Scanner => "scanner",
            Keeper::Search => "search",
            Keeper::Graph => "graph",
        }
    }
}

/// Asks a service, in this process or behind the gateway, to forget what it keeps of a
/// deleted tenant outside the log; answers how many items went.
pub type Forgetter =
    Arc<dyn Fn(TenantId) -> BoxFuture<'static, Result<u64, CoreError>> + Send + Sync>;

/// Deletes tenants and their data.
#[derive(Clone)]
pub struct TenantEraser {
    credentials: Credentials,
    store: Store,
    topics: Vec<Topic>,
    agents: Option<AgentGrpc>,
    forgetters: Vec<(Keeper, Forgetter)>,
    /// One erasure at a time: each walks whole topics.
    running: Arc<tokio::sync::Mutex<()>>,
}

impl TenantEraser {
    /// An eraser over the log `topics` kept in `store` beside `credentials`.
    pub fn new(credentials: Credentials, store: Store, topics: Vec<Topic>) -> TenantEraser {
        TenantEraser {
            credentials,
            store,
            topics,
            agents: None,
            forgetters: Vec::new(),
            running: Arc::default(),
        }
    }

    /// Also has `keeper` forget what it keeps of the tenant outside the log.
    pub fn with_forgetter(mut self, keeper: Keeper, forget: Forgetter) -> TenantEraser {
        self.forgetters.push((keeper, forget));
        self
    }

    /// Also forgets the tenant's agents and their configurations kept by the agent stream.
    pub fn with_agents(mut self, agents: &AgentGrpc) -> TenantEraser {
        self.agents = Some(agents.clone());
        self
    }

    /// Deletes `tenant` and its data; returns what was removed.
    pub async fn delete(&self, tenant: &TenantId) -> Result<DeleteTenantResponse, GatewayError> {
        self.credentials.begin_tenant_deletion(tenant).await?;
        self.erase(tenant).await.map_err(|error| {
            GatewayError::Core(CoreError::Unavailable(format!(
                "tenant {tenant} no longer exists for any caller, but erasing its data stopped: \
                 {error}; the gateway finishes it by itself (it tries every minute and at start)"
            )))
        })
    }

    /// Finishes the deletions a stop or an unreachable service interrupted.
    pub async fn resume(&self) -> Result<(), GatewayError> {
        for tenant in self.credentials.tenants_being_deleted()? {
            tracing::info!(%tenant, "finishing the deletion of a tenant begun earlier");
            let report = self.erase(&tenant).await?;
            tracing::info!(%tenant, ?report, "tenant deleted");
        }
        Ok(())
    }

    /// Finishes interrupted deletions now and then every minute, until `shutdown`.
    pub async fn keep_finishing(self, shutdown: Shutdown) {
        loop {
            if let Err(error) = self.resume().await {
                tracing::warn!(%error, "an interrupted tenant deletion could not be finished yet; trying again in a minute");
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY_INTERVAL) => {}
                () = shutdown.triggered() => return,
            }
        }
    }

    async fn erase(&self, tenant: &TenantId) -> Result<DeleteTenantResponse, GatewayError> {
        let _one = self.running.lock().await;
        // another erasure may have finished this deletion while this one waited; the id may
        // even belong to a new tenant by now, whose data must stay
        if !self.credentials.tenants_being_deleted()?.contains(tenant) {
            return Ok(DeleteTenantResponse::default());
        }
        // the services first: while one cannot be reached, a retry repeats no log erasure;
        // and they forget while the id is reserved, so nothing of a new tenant goes with it
        let mut forgotten = BTreeMap::new();
        for (keeper, forget) in &self.forgetters {
            forgotten.insert(*keeper, forget(tenant.clone()).await?);
        }
        let forgotten_by = |keeper| forgotten.get(&keeper).copied().unwrap_or(0);
        let mut records_erased = BTreeMap::new();
        for topic in &self.topics {
            let erasure = topic.erase_tenant(tenant.as_str()).await?;
            records_erased.insert(topic.name().to_string(), erasure.erased);
        }
        let (agents_removed, agent_configs_removed) = match &self.agents {
            Some(agents) => agents.forget_tenant(tenant)?,
            None => (0, 0),
        };
        let admin_events_removed = self.credentials.finish_tenant_deletion(tenant)?;
        self.store.flush().await?;
        for topic in &self.topics {
            topic.reopen_tenant(tenant.as_str())?;
        }
        Ok(DeleteTenantResponse {
            records_erased: records_erased.into_iter().collect(),
            agents_removed: agents_removed as u64,
            agent_configs_removed: agent_configs_removed as u64,
            admin_events_removed: admin_events_removed as u64,
            scanned_images_removed: forgotten_by(Keeper::Scanner),
            search_settings_removed: forgotten_by(Keeper::Search),
            graph_clusters_removed: forgotten_by(Keeper::Graph),
        })
    }
}

#[cfg(test)]
mod tests {
    use palisade_core::auth::Role;
    use palisade_core::log::{ControlRecord, LogEntry, record_tenant};
    use palisade_proto::v1::Alert;
    use prost::Message as _;

    use super::*;

    fn alert(tenant: &str, id: usize) -> LogEntry {
        let alert = Alert {
            id: format!("a-{id}"),
            tenant_id: tenant.to_string(),
            ..Alert::default()
        };
        LogEntry {
            dedupe_key: Some(crate::ingest::alert_key(tenant, &alert.id)),
            payload: alert.encode_to_vec(),
        }
    }

    #[tokio::test]
    async fn a_deletion_interrupted_after_its_start_is_finished_at_the_next_start() {
        let temp = tempfile::tempdir().expect("temp dir");
        let acme = TenantId::new("acme").expect("tenant");
        let token = {
            let store = Store::open(temp.path()).expect("store");
            let credentials = Credentials::open(&store).expect("credentials");
            credentials.ensure_tenant(&acme, "Acme").expect("tenant");
            let globex = TenantId::new("globex").expect("tenant");
            credentials
                .ensure_tenant(&globex, "Globex")
                .expect("tenant");
            let key = credentials
                .create_api_key(&acme, Role::Admin, "first")
                .expect("key");
            let topic = Topic::open(&store, "alerts").expect("topic");
            let entries = (0..20)
                .map(|id| alert(if id % 2 == 0 { "acme" } else { "globex" }, id))
                .collect();
            topic.append(entries).await.expect("append");
            // the deletion begins, and the process dies before erasing anything
            credentials
                .begin_tenant_deletion(&acme)
                .await
                .expect("begun");
            assert!(credentials.authenticate_token(&key.token).is_err());
            assert!(credentials.tenant(&acme).expect("read").is_none());
            assert!(
                !credentials
                    .ensure_tenant(&acme, "Acme again")
                    .expect("create"),
                "the id is not free while its data is still there"
            );
            key.token
        };

        let store = Store::open(temp.path()).expect("reopen");
        let credentials = Credentials::open(&store).expect("credentials");
        let topic = Topic::open(&store, "alerts").expect("topic");
        let eraser = TenantEraser::new(credentials.clone(), store.clone(), vec![topic.clone()]);
        eraser.resume().await.expect("resumed");
        assert!(
            credentials
                .tenants_being_deleted()
                .expect("read")
                .is_empty()
        );
        let records = topic.read(0, 100).expect("read");
        assert_eq!(records.len(), 21, "20 records and the erasure's marker");
        let tenants: Vec<Option<String>> = records
            .iter()
            .map(|record| record_tenant(&record.payload))
            .collect();
        assert_eq!(
            tenants.iter().flatten().collect::<Vec<_>>(),
            vec!["globex"; 10]
        );
        assert_eq!(
            ControlRecord::decode(&records[20].payload).expect("marker"),
            Some(ControlRecord::TenantErased {
                tenant: "acme".into()
            })
        );

        // the id is free again; the old key stays refused
        assert!(
            credentials
                .ensure_tenant(&acme, "Acme again")
                .expect("create")
        );
        assert!(credentials.authenticate_token(&token).is_err());
        // the new acme's data is its own: a late erasure of the old one leaves it alone
        topic.append(vec![alert("acme", 99)]).await.expect("append");
        eraser.resume().await.expect("nothing to finish");
        let report = eraser.erase(&acme).await.expect("not being deleted");
        assert_eq!(report, DeleteTenantResponse::default());
        assert_eq!(
            record_tenant(&topic.read(21, 1).expect("read")[0].payload).as_deref(),
            Some("acme")
        );
        let deleted = eraser.delete(&acme).await.expect("deleted again");
        assert_eq!(deleted.records_erased.get("alerts"), Some(&1));
    }
}
