//! The agent registry: every agent that ever connected, by (tenant, cluster, agent id), with
//! what it said about itself, when it was last heard from, its drop counters, spool depth and
//! the configuration it applied.
//!
//! The live view is kept in memory; each record is also written to a sled tree on connect,
//! heartbeat, configuration change and disconnect, so a restarted gateway still lists known
//! agents (as disconnected, with their last-seen time). Those writes are not flushed on their
//! own: the registry is a report, and losing its last half second in a crash loses nothing an
//! agent needs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palisade_core::auth::Principal;
use palisade_core::ids::TenantId;
use palisade_core::storage::{Store, TypedTree};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{AgentHello, AgentInfo, AgentState, DropCounters, Heartbeat};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::GatewayError;

/// Name of the tree holding the registry's records.
const AGENTS_TREE: &str = "agent_registry";
/// Longest agent id accepted.
pub const MAX_AGENT_ID: usize = 128;
/// Most capabilities, and longest text field, kept of what an agent says about itself.
const MAX_CAPABILITIES: usize = 32;
const MAX_FIELD: usize = 256;
/// Heartbeat intervals an agent may miss before it is dead (spec point 13).
pub const MISSED_HEARTBEATS: u32 = 3;

/// Who an agent is: its tenant and cluster come from its credential, its id from its hello.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentKey {
    pub tenant: TenantId,
    /// Empty until credentials name a cluster.
    pub cluster: String,
    pub agent_id: String,
}

impl AgentKey {
    /// The key of the agent's record and stored sequence number.
    pub fn storage_key(&self) -> String {
        format!("{}\n{}\n{}", self.tenant, self.cluster, self.agent_id)
    }
}

/// The registry key of the agent `agent_id` calling as `principal`. The one place that says
/// where an agent's tenant and cluster come from: its credential, never its messages.
pub fn agent_key(principal: &Principal, agent_id: &str) -> Result<AgentKey, GatewayError> {
    let printable = agent_id.chars().all(|c| !c.is_control());
    if agent_id.is_empty() || agent_id.len() > MAX_AGENT_ID || !printable {
        return Err(GatewayError::InvalidAgentId {
            max: MAX_AGENT_ID,
            given: agent_id.chars().take(MAX_AGENT_ID + 8).collect(),
        });
    }
    Ok(AgentKey {
        tenant: principal.tenant.clone(),
        cluster: principal_cluster(principal),
        agent_id: agent_id.to_string(),
    })
}

/// The cluster of a principal: the one its certificate names; API keys belong to none.
fn principal_cluster(principal: &Principal) -> String {
    principal.cluster.clone().unwrap_or_default()
}

/// Liveness as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredState {
    Connected,
    Dead,
    Disconnected,
}

/// What is kept of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub tenant: TenantId,
    pub cluster: String,
    pub agent_id: String,
    pub kind: i32,
    pub version: String,
    pub node_name: String,
    pub capabilities: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub connected_since_ms: u64,
    pub last_seen_ms: u64,
    /// DropCounters in field order: kernel_ringbuf_full, decode_errors, rules_queue_full,
    /// spool_evicted, suppressed, malformed_events.
    pub drops: [u64; 6],
    pub spool_batches: u64,
    pub config_version: String,
    pub config_error: String,
    pub state: StoredState,
    pub durable_seq: u64,
    pub throttled: u64,
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_FIELD).collect()
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn timestamp(milliseconds: u64) -> Option<Timestamp> {
    if milliseconds == 0 {
        return None;
    }
    Some(Timestamp {
        seconds: i64::try_from(milliseconds / 1000).unwrap_or(i64::MAX),
        nanos: i32::try_from((milliseconds % 1000) * 1_000_000).unwrap_or(0),
    })
}

fn drops_array(drops: Option<&DropCounters>) -> [u64; 6] {
    let drops = drops.cloned().unwrap_or_default();
    [
        drops.kernel_ringbuf_full,
        drops.decode_errors,
        drops.rules_queue_full,
        drops.spool_evicted,
        drops.suppressed,
        drops.malformed_events,
    ]
}

fn drop_counters(drops: &[u64; 6]) -> DropCounters {
    DropCounters {
        kernel_ringbuf_full: drops[0],
        decode_errors: drops[1],
        rules_queue_full: drops[2],
        spool_evicted: drops[3],
        suppressed: drops[4],
        malformed_events: drops[5],
    }
}

struct Entry {
    record: AgentRecord,
    /// The session that owns the entry; a session ending after a newer one took over must
    /// not mark the agent disconnected.
    session: Option<u64>,
    heard: Instant,
}

/// The session's claim on its agent's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    key: AgentKey,
    session: u64,
}

impl Ticket {
    /// The agent.
    pub fn key(&self) -> &AgentKey {
        &self.key
    }
}

/// How many agents are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentCounts {
    pub connected: usize,
    pub dead: usize,
    pub disconnected: usize,
}

struct Inner {
    entries: BTreeMap<AgentKey, Entry>,
    next_session: u64,
}

/// The registry of agents.
pub struct AgentRegistry {
    records: TypedTree<AgentRecord>,
    heartbeat_interval: Duration,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AgentRegistry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AgentRegistry")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl AgentRegistry {
    /// Loads the known agents from `store`; every agent connected before a restart is now
    /// disconnected.
    pub fn open(
        store: &Store,
        heartbeat_interval: Duration,
    ) -> Result<AgentRegistry, GatewayError> {
        let records = store.typed_tree::<AgentRecord>(AGENTS_TREE)?;
        let now = Instant::now();
        let mut entries = BTreeMap::new();
        for (_, mut record) in records.scan_prefix("")? {
            if record.state == StoredState::Connected {
                record.state = StoredState::Disconnected;
            }
            let key = AgentKey {
                tenant: record.tenant.clone(),
                cluster: record.cluster.clone(),
                agent_id: record.agent_id.clone(),
            };
            entries.insert(
                key,
                Entry {
                    record,
                    session: None,
                    heard: now,
                },
            );
        }
        Ok(AgentRegistry {
            records,
            heartbeat_interval,
            inner: Mutex::new(Inner {
                entries,
                next_session: 1,
            }),
        })
    }

    /// Forgets every agent of `tenant` (an erased tenant); returns how many there were.
    pub fn forget_tenant(&self, tenant: &TenantId) -> Result<usize, GatewayError> {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|key, _| key.tenant != *tenant);
        let forgotten = before - inner.entries.len();
        self.records.remove_prefix(&format!("{tenant}\n"))?;
        Ok(forgotten)
    }

    /// How long an agent may stay silent before it is dead.
    pub fn dead_after(&self) -> Duration {
        self.heartbeat_interval.saturating_mul(MISSED_HEARTBEATS)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn persist(&self, record: &AgentRecord) -> Result<(), GatewayError> {
        let key = AgentKey {
            tenant: record.tenant.clone(),
            cluster: record.cluster.clone(),
            agent_id: record.agent_id.clone(),
        };
        self.records.put(&key.storage_key(), record)?;
        Ok(())
    }

    /// Records a new stream of the agent; the returned ticket identifies it in later calls.
    pub fn connected(
        &self,
        key: &AgentKey,
        hello: &AgentHello,
        durable_seq: u64,
    ) -> Result<Ticket, GatewayError> {
        let now_ms = wall_clock_ms();
        let (record, session) = {
            let mut inner = self.lock();
            let session = inner.next_session;
            inner.next_session += 1;
            let previous = inner.entries.remove(key).map(|entry| entry.record);
            let record = AgentRecord {
                tenant: key.tenant.clone(),
                cluster: key.cluster.clone(),
                agent_id: key.agent_id.clone(),
                kind: hello.kind,
                version: bounded(&hello.version),
                node_name: bounded(&hello.node_name),
                capabilities: hello
                    .capabilities
                    .iter()
                    .take(MAX_CAPABILITIES)
                    .map(|capability| bounded(capability))
                    .collect(),
                connected_since_ms: now_ms,
                last_seen_ms: now_ms,
                drops: drops_array(hello.drops.as_ref()),
                spool_batches: hello.spool_batches,
                config_version: bounded(&hello.config_version),
                config_error: String::new(),
                state: StoredState::Connected,
                durable_seq,
                throttled: previous.map(|record| record.throttled).unwrap_or(0),
            };
            inner.entries.insert(
                key.clone(),
                Entry {
                    record: record.clone(),
                    session: Some(session),
                    heard: Instant::now(),
                },
            );
            (record, session)
        };
        self.persist(&record)?;
        Ok(Ticket {
            key: key.clone(),
            session,
        })
    }

    /// Applies `change` to the ticket's record if the ticket still owns it; returns the
    /// changed record when it should be written.
    fn update(
        &self,
        ticket: &Ticket,
        persist: bool,
        change: impl FnOnce(&mut AgentRecord),
    ) -> Result<(), GatewayError> {
        let record = {
            let mut inner = self.lock();
            let Some(entry) = inner.entries.get_mut(&ticket.key) else {
                return Ok(());
            };
            if entry.session != Some(ticket.session) {
                return Ok(());
            }
            entry.heard = Instant::now();
            entry.record.last_seen_ms = wall_clock_ms();
            change(&mut entry.record);
            persist.then(|| entry.record.clone())
        };
        match record {
            Some(record) => self.persist(&record),
            None => Ok(()),
        }
    }

    /// The agent was heard from (any message).
    pub fn seen(&self, ticket: &Ticket) {
        // in memory only: a batch stream must not write the registry per batch
        let _ = self.update(ticket, false, |_| {});
    }

    /// A heartbeat with the agent's counters.
    pub fn heartbeat(&self, ticket: &Ticket, heartbeat: &Heartbeat) -> Result<(), GatewayError> {
        self.update(ticket, true, |record| {
            record.drops = drops_array(heartbeat.drops.as_ref());
            record.spool_batches = heartbeat.spool_batches;
        })
    }

    /// A batch was stored; `durable_seq` is the agent's new highest durable sequence number.
    pub fn stored(&self, ticket: &Ticket, durable_seq: u64) {
        let _ = self.update(ticket, false, |record| record.durable_seq = durable_seq);
    }

    /// The agent was throttled.
    pub fn throttled(&self, ticket: &Ticket) {
        let _ = self.update(ticket, false, |record| {
            record.throttled = record.throttled.saturating_add(1)
        });
    }

    /// The agent answered a pushed configuration.
    pub fn config_applied(
        &self,
        ticket: &Ticket,
        version: &str,
        error: Option<&str>,
    ) -> Result<(), GatewayError> {
        self.update(ticket, true, |record| match error {
            None => {
                record.config_version = bounded(version);
                record.config_error.clear();
            }
            Some(error) => {
                record.config_error = format!(
                    "version {} not applied: {}",
                    bounded(version),
                    error.chars().take(4 * MAX_FIELD).collect::<String>()
                );
            }
        })
    }

    /// The session ended: the agent is dead (it went silent) or disconnected.
    pub fn ended(&self, ticket: &Ticket, dead: bool) -> Result<(), GatewayError> {
        let record = {
            let mut inner = self.lock();
            let Some(entry) = inner.entries.get_mut(&ticket.key) else {
                return Ok(());
            };
            if entry.session != Some(ticket.session) {
                return Ok(());
            }
            entry.session = None;
            entry.record.state = if dead {
                StoredState::Dead
            } else {
                StoredState::Disconnected
            };
            entry.record.clone()
        };
        self.persist(&record)
    }

    fn state_of(&self, entry: &Entry, now: Instant) -> AgentState {
        match entry.record.state {
            StoredState::Connected
                if now.saturating_duration_since(entry.heard) > self.dead_after() =>
            {
                AgentState::Dead
            }
            StoredState::Connected => AgentState::Connected,
            StoredState::Dead => AgentState::Dead,
            StoredState::Disconnected => AgentState::Disconnected,
        }
    }

    /// The agents of `tenant` (of one cluster when `cluster` is given), in key order.
    pub fn list(&self, tenant: &TenantId, cluster: Option<&str>) -> Vec<AgentInfo> {
        let now = Instant::now();
        let inner = self.lock();
        inner
            .entries
            .iter()
            .filter(|(key, _)| &key.tenant == tenant)
            .filter(|(key, _)| cluster.is_none_or(|cluster| key.cluster == cluster))
            .map(|(_, entry)| {
                let record = &entry.record;
                AgentInfo {
                    tenant_id: record.tenant.to_string(),
                    cluster_id: record.cluster.clone(),
                    agent_id: record.agent_id.clone(),
                    kind: record.kind,
                    version: record.version.clone(),
                    node_name: record.node_name.clone(),
                    capabilities: record.capabilities.clone(),
                    connected_since: timestamp(record.connected_since_ms),
                    last_seen: timestamp(record.last_seen_ms),
                    drops: Some(drop_counters(&record.drops)),
                    spool_batches: record.spool_batches,
                    config_version: record.config_version.clone(),
                    config_error: record.config_error.clone(),
                    state: self.state_of(entry, now) as i32,
                    durable_seq: record.durable_seq,
                    throttled: record.throttled,
                }
            })
            .collect()
    }

    /// Connected agents of `tenant` whose cluster satisfies `cluster_matches`.
    pub fn connected_count(
        &self,
        tenant: &TenantId,
        cluster_matches: impl Fn(&str) -> bool,
    ) -> usize {
        let now = Instant::now();
        let inner = self.lock();
        inner
            .entries
            .iter()
            .filter(|(key, entry)| {
                &key.tenant == tenant
                    && cluster_matches(&key.cluster)
                    && self.state_of(entry, now) == AgentState::Connected
            })
            .count()
    }

    /// Agents in each state, over every tenant (for the gateway's status).
    pub fn counts(&self) -> AgentCounts {
        let now = Instant::now();
        let inner = self.lock();
        let mut counts = AgentCounts::default();
        for entry in inner.entries.values() {
            match self.state_of(entry, now) {
                AgentState::Connected => counts.connected += 1,
                AgentState::Dead => counts.dead += 1,
                AgentState::Disconnected | AgentState::Unspecified => counts.disconnected += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::auth::Role;

    fn principal(tenant: &str) -> Principal {
        Principal {
            tenant: TenantId::new(tenant).expect("tenant"),
            role: Role::Analyst,
            key_id: "k".into(),
            cluster: None,
        }
    }

    fn hello(agent_id: &str) -> AgentHello {
        AgentHello {
            agent_id: agent_id.into(),
            version: "1.2.3".into(),
            node_name: "node-a".into(),
            config_version: "4".into(),
            ..AgentHello::default()
        }
    }

    #[test]
    fn agent_ids_are_checked_and_the_tenant_comes_from_the_credential() {
        let key = agent_key(&principal("acme"), "node/a").expect("key");
        assert_eq!(key.tenant.as_str(), "acme");
        assert_eq!(key.cluster, "");
        assert!(agent_key(&principal("acme"), "").is_err());
        assert!(agent_key(&principal("acme"), "bad\nid").is_err());
        assert!(agent_key(&principal("acme"), &"x".repeat(MAX_AGENT_ID + 1)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_agent_is_dead_after_three_intervals_and_a_restart_lists_it_disconnected() {
        let temp = tempfile::tempdir().expect("temp");
        let store = Store::open(temp.path()).expect("store");
        let registry = AgentRegistry::open(&store, Duration::from_secs(10)).expect("registry");
        let acme = principal("acme");
        let key = agent_key(&acme, "node/a").expect("key");
        let ticket = registry
            .connected(&key, &hello("node/a"), 7)
            .expect("connect");
        let state = |registry: &AgentRegistry| registry.list(&acme.tenant, None)[0].state;
        assert_eq!(state(&registry), AgentState::Connected as i32);
        tokio::time::advance(Duration::from_secs(25)).await;
        registry
            .heartbeat(
                &ticket,
                &Heartbeat {
                    drops: Some(DropCounters {
                        spool_evicted: 3,
                        ..DropCounters::default()
                    }),
                    spool_batches: 12,
                    ..Heartbeat::default()
                },
            )
            .expect("heartbeat");
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(
            state(&registry),
            AgentState::Connected as i32,
            "29 s < 3 x 10 s"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(state(&registry), AgentState::Dead as i32);
        assert_eq!(registry.counts().dead, 1);
        assert!(
            registry
                .list(&TenantId::new("globex").expect("tenant"), None)
                .is_empty(),
            "another tenant sees nothing"
        );
        store.flush_blocking().expect("flush");
        drop(registry);

        let reopened = AgentRegistry::open(&store, Duration::from_secs(10)).expect("reopen");
        let listed = reopened.list(&acme.tenant, None);
        assert_eq!(listed.len(), 1);
        let agent = &listed[0];
        assert_eq!(agent.state, AgentState::Disconnected as i32);
        assert_eq!(agent.spool_batches, 12);
        assert_eq!(
            agent.drops.as_ref().map(|drops| drops.spool_evicted),
            Some(3)
        );
        assert_eq!((agent.durable_seq, agent.config_version.as_str()), (7, "4"));
        assert!(agent.last_seen.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_session_ending_after_a_reconnect_leaves_the_agent_connected() {
        let store = Store::temporary().expect("store");
        let registry = AgentRegistry::open(&store, Duration::from_secs(10)).expect("registry");
        let acme = principal("acme");
        let key = agent_key(&acme, "node/a").expect("key");
        let old = registry
            .connected(&key, &hello("node/a"), 0)
            .expect("connect");
        let new = registry
            .connected(&key, &hello("node/a"), 0)
            .expect("reconnect");
        registry.ended(&old, true).expect("old ends");
        assert_eq!(registry.counts().connected, 1);
        registry
            .config_applied(&new, "9", Some("rules file x: bad yaml"))
            .expect("applied");
        let agent = &registry.list(&acme.tenant, None)[0];
        assert_eq!(
            agent.config_version, "4",
            "a refused version is not applied"
        );
        assert!(
            agent.config_error.contains("version 9 not applied"),
            "{}",
            agent.config_error
        );
        registry.ended(&new, false).expect("new ends");
        assert_eq!(registry.counts().disconnected, 1);
    }
}
