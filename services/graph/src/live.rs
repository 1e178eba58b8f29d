//! The graph service inside a server: the engine on its sled store, fed by the configured
//! inventory sources (live kubeconfig contexts and manifests on disk), by scanner findings and
//! by alerts from the durable log, and asking the scanner for every image the inventory runs.
//!
//! One task applies every change, so changes are applied in order; queries read the engine
//! behind a read-write lock on blocking threads. Log positions are kept in the graph's own
//! store and written only after what they cover is flushed, so a crash replays records (the
//! graph deduplicates them) and never skips one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use palisade_core::config::{GraphConfig, InventorySource};
use palisade_core::log::{ControlRecord, Topic};
use palisade_core::shutdown::Shutdown;
use palisade_proto::v1::{Alert, Finding};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::engine::{GraphEngine, InventoryChange};
use crate::error::{GraphError, Result};
use crate::feed::{FindingsBook, image_vulnerability, runtime_alert};
use crate::findings::RuntimeAlert;
use crate::model::{EdgeKind, EntityKind};
use crate::object::{ALL_KINDS, Object};
use crate::source::{SourceLimits, load_path};
use crate::store::GraphStore;
use crate::watch::{ListStrategy, WatchEvent, clients_from_kubeconfig, watch_clusters};

/// Records read from a log topic per step.
const RECORDS_PER_STEP: usize = 2048;
/// An alert slot (pod, container, rule) is rewritten at most this often: "a recent alert on
/// the entity" needs no finer time, and a noisy rule must not turn into a write per alert.
const ALERT_REFRESH_SECONDS: i64 = 60;
/// Watch events applied together.
const EVENTS_PER_BATCH: usize = 4096;
/// How often waiting work (scan retries) is looked at.
const TICK: Duration = Duration::from_secs(5);
/// Store meta entries of the service itself live under this tenant name, which no tenant has.
const SERVICE_META: &str = "";
const FINDINGS_POSITION: &str = "log/findings";
const ALERTS_POSITION: &str = "log/alerts";

/// Where the service keeps its data and what it reads.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// Directory of the graph's sled store.
    pub store_path: PathBuf,
    /// The `[graph]` configuration.
    pub config: GraphConfig,
}

/// The log topics the graph reads.
#[derive(Clone)]
pub struct GraphTopics {
    /// Alerts (runtime and audit).
    pub alerts: Topic,
    /// Findings (scanner vulnerabilities).
    pub findings: Topic,
}

/// An image the graph wants scanned for a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOrder {
    /// Tenant whose inventory runs the image.
    pub tenant: String,
    /// A cluster that runs it.
    pub cluster: String,
    /// The image reference, as the pods name it (normalised).
    pub image: String,
}

/// The scanner as the graph reaches it: in process an actor, across processes a client.
pub type ImageScanner =
    Arc<dyn Fn(ScanOrder) -> BoxFuture<'static, std::result::Result<(), String>> + Send + Sync>;

/// What an inventory source has delivered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceState {
    /// `kubeconfig` or `path`.
    pub origin: &'static str,
    /// Objects the source's cluster holds.
    pub objects: usize,
    /// Problems reported (skipped documents, watch errors).
    pub problems: usize,
    /// The last problem.
    pub last_problem: Option<String>,
    /// When the last problem was reported (Unix seconds).
    pub last_problem_at: u64,
}

/// A source problem younger than this makes the service degraded; an older one (a watch
/// error the watcher has since recovered from) is history.
pub const RECENT_PROBLEM_SECONDS: u64 = 900;

impl GraphServiceStatus {
    /// The most recent problem of any source within [`RECENT_PROBLEM_SECONDS`], with its
    /// source (`tenant/cluster`).
    pub fn recent_problem(&self) -> Option<(&str, &str)> {
        let now = now_seconds();
        self.sources
            .iter()
            .filter(|(_, source)| {
                now.saturating_sub(source.last_problem_at) < RECENT_PROBLEM_SECONDS
            })
            .max_by_key(|(_, source)| source.last_problem_at)
            .and_then(|(name, source)| {
                source
                    .last_problem
                    .as_deref()
                    .map(|problem| (name.as_str(), problem))
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum ScanState {
    Waiting,
    Scanned { at: u64 },
    Failed { at: u64, error: String },
}

/// The service's numbers, for status pages and probes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphServiceStatus {
    /// Tenants with a graph.
    pub tenants: usize,
    /// Entities over every tenant.
    pub entities: usize,
    /// Edges over every tenant.
    pub edges: usize,
    /// Attack paths over every tenant.
    pub attack_paths: usize,
    /// Per source (`tenant/cluster`).
    pub sources: BTreeMap<String, SourceState>,
    /// Images asked of the scanner and not answered yet.
    pub images_waiting: usize,
    /// Images scanned.
    pub images_scanned: usize,
    /// Images whose scan failed (tried again later).
    pub images_failed: usize,
    /// The last scan failure.
    pub last_scan_error: Option<String>,
    /// Next findings record to read.
    pub findings_position: u64,
    /// Next alerts record to read.
    pub alerts_position: u64,
}

#[derive(Default)]
struct ServiceState {
    sources: BTreeMap<String, SourceState>,
    /// Time of the alert each (tenant, slot) holds, as far as this process has written it.
    alert_times: HashMap<(String, String), i64>,
    scans: HashMap<(String, String), ScanState>,
    counts: (usize, usize, usize, usize),
    positions: (u64, u64),
}

struct Inner {
    engine: RwLock<GraphEngine>,
    book: Mutex<FindingsBook>,
    state: Mutex<ServiceState>,
    settings: GraphSettings,
    topics: GraphTopics,
}

/// The graph service's state, shared by its feeding task and the gRPC adapter.
#[derive(Clone)]
pub struct GraphCore {
    inner: Arc<Inner>,
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn source_key(tenant: &str, cluster: &str) -> String {
    format!("{tenant}/{cluster}")
}

/// The state of a source (created on first sight), with where its inventory comes from.
fn source_state<'a>(
    state: &'a mut ServiceState,
    tenant: &str,
    cluster: &str,
    origin: &'static str,
) -> &'a mut SourceState {
    let source = state
        .sources
        .entry(source_key(tenant, cluster))
        .or_default();
    source.origin = origin;
    source
}

/// One alert per pod, container and rule: the newest stands for the others, so the graph's
/// memory follows the inventory, not the alert rate.
fn alert_slot(alert: &RuntimeAlert) -> String {
    let mut hasher = Sha256::new();
    for part in [
        &alert.cluster,
        &alert.namespace,
        &alert.pod,
        &alert.container,
        &alert.rule,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..12])
}

impl GraphCore {
    /// Opens the graph's store (creating it) and loads what it holds.
    pub fn open(settings: GraphSettings, topics: GraphTopics) -> Result<GraphCore> {
        std::fs::create_dir_all(&settings.store_path).map_err(|source| GraphError::Io {
            path: settings.store_path.clone(),
            source,
        })?;
        let store = GraphStore::open(&settings.store_path)?;
        let mut book = FindingsBook::default();
        for tenant in store.tenants() {
            book.load(&tenant, store.load_findings(&tenant)?);
        }
        let positions = (
            read_position(&store, FINDINGS_POSITION)?,
            read_position(&store, ALERTS_POSITION)?,
        );
        let engine = GraphEngine::with_store(store)?;
        let core = GraphCore {
            inner: Arc::new(Inner {
                engine: RwLock::new(engine),
                book: Mutex::new(book),
                state: Mutex::new(ServiceState {
                    positions,
                    ..ServiceState::default()
                }),
                settings,
                topics,
            }),
        };
        core.forget_unconfigured_clusters()?;
        core.recount();
        Ok(core)
    }

    /// The engine, for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, GraphEngine> {
        // a panic while applying leaves the engine as it was before that change's diff
        self.inner
            .engine
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, GraphEngine> {
        self.inner
            .engine
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, ServiceState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn book(&self) -> MutexGuard<'_, FindingsBook> {
        self.inner
            .book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The service's numbers (never waits for a change being applied).
    pub fn status(&self) -> GraphServiceStatus {
        let state = self.state();
        let mut status = GraphServiceStatus {
            tenants: state.counts.0,
            entities: state.counts.1,
            edges: state.counts.2,
            attack_paths: state.counts.3,
            sources: state.sources.clone(),
            findings_position: state.positions.0,
            alerts_position: state.positions.1,
            ..GraphServiceStatus::default()
        };
        for scan in state.scans.values() {
            match scan {
                ScanState::Waiting => status.images_waiting += 1,
                ScanState::Scanned { .. } => status.images_scanned += 1,
                ScanState::Failed { error, .. } => {
                    status.images_failed += 1;
                    status.last_scan_error = Some(error.clone());
                }
            }
        }
        status
    }

    fn recount(&self) {
        let keys: Vec<String> = self.state().sources.keys().cloned().collect();
        let (counts, objects) = {
            let engine = self.read();
            let mut counts = (0, 0, 0, 0);
            for tenant in engine.tenants() {
                let Some(state) = engine.tenant(tenant) else {
                    continue;
                };
                counts.0 += 1;
                counts.1 += state.graph().entity_count();
                counts.2 += state.graph().edge_count();
                counts.3 += state.attack_paths().len();
            }
            let objects: Vec<usize> = keys
                .iter()
                .map(|key| {
                    let (tenant, cluster) = key.split_once('/').unwrap_or((key, ""));
                    engine
                        .tenant(tenant)
                        .and_then(|state| state.inventory(cluster))
                        .map(|inventory| inventory.len())
                        .unwrap_or(0)
                })
                .collect();
            (counts, objects)
        };
        // the engine's lock is released before the state's is taken: status never waits for
        // a change being applied
        let mut state = self.state();
        state.counts = counts;
        for (key, count) in keys.iter().zip(objects) {
            if let Some(source) = state.sources.get_mut(key) {
                source.objects = count;
            }
        }
    }

    /// Clusters kept from an earlier run whose source is no longer configured are removed:
    /// a security graph must not show what nobody watches any more.
    fn forget_unconfigured_clusters(&self) -> Result<()> {
        let configured: BTreeSet<(String, String)> = self
            .inner
            .settings
            .config
            .sources
            .iter()
            .map(|source| (source.tenant.clone(), source.cluster_id()))
            .collect();
        let mut engine = self.write();
        let stale: Vec<(String, String)> = engine
            .tenants()
            .flat_map(|tenant| {
                engine
                    .tenant(tenant)
                    .map(|state| {
                        state
                            .clusters()
                            .map(|cluster| (tenant.to_string(), cluster.to_string()))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .filter(|key| !configured.contains(key))
            .collect();
        for (tenant, cluster) in stale {
            tracing::info!(%tenant, %cluster, "cluster no longer configured: removed from the graph");
            engine.remove_cluster(&tenant, &cluster)?;
        }
        Ok(())
    }

    /// Feeds the graph until `shutdown`: sources first, then the log and watch events as they
    /// come. `scanner` receives the images the inventory runs (when `scan_images` is on).
    pub async fn run(self, scanner: Option<ImageScanner>, shutdown: Shutdown) {
        let (scan_sender, scan_receiver) = mpsc::unbounded_channel();
        let scanner = scanner.filter(|_| self.inner.settings.config.scan_images);
        let scan_sender = match scanner {
            Some(scanner) => {
                tokio::spawn(self.clone().scan_worker(scanner, scan_receiver));
                Some(scan_sender)
            }
            None => None,
        };
        let core = self.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || core.load_snapshots()).await {
            tracing::error!(%error, "loading inventory snapshots failed");
        }
        let (event_sender, mut events) = mpsc::channel(EVENTS_PER_BATCH);
        self.start_watches(event_sender).await;
        let mut findings_written = self.inner.topics.findings.subscribe();
        let mut alerts_written = self.inner.topics.alerts.subscribe();
        let mut tick = tokio::time::interval(TICK);
        loop {
            let core = self.clone();
            match tokio::task::spawn_blocking(move || core.catch_up_logs()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "graph could not read the log"),
                Err(error) => tracing::error!(%error, "graph log reader failed"),
            }
            if let Some(sender) = &scan_sender {
                self.queue_scans(sender);
            }
            tokio::select! {
                () = shutdown.triggered() => break,
                Some(first) = events.recv() => {
                    let mut batch = vec![first];
                    while batch.len() < EVENTS_PER_BATCH {
                        match events.try_recv() {
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                    let core = self.clone();
                    if let Err(error) =
                        tokio::task::spawn_blocking(move || core.apply_watch_events(batch)).await
                    {
                        tracing::error!(%error, "applying inventory changes failed");
                    }
                }
                Ok(()) = findings_written.changed() => {}
                Ok(()) = alerts_written.changed() => {}
                _ = tick.tick() => {}
            }
        }
        let store = self.read().store().cloned();
        if let Some(store) = store
            && let Err(error) = store.flush().await
        {
            tracing::error!(%error, "final flush of the graph store failed");
        }
    }

    fn sources(&self) -> &[InventorySource] {
        &self.inner.settings.config.sources
    }

    fn note_problem(&self, tenant: &str, cluster: &str, origin: &'static str, problem: String) {
        let mut state = self.state();
        let source = source_state(&mut state, tenant, cluster, origin);
        source.problems += 1;
        source.last_problem = Some(problem);
        source.last_problem_at = now_seconds();
    }

    /// Reads every manifest source and makes its cluster exactly what the files hold.
    fn load_snapshots(&self) {
        for source in self.sources() {
            let Some(path) = &source.path else {
                continue;
            };
            let cluster = source.cluster_id();
            source_state(&mut self.state(), &source.tenant, &cluster, "path");
            match load_snapshot(path) {
                Ok((changes, problems)) => {
                    for problem in problems {
                        tracing::warn!(tenant = %source.tenant, %cluster, %problem, "inventory input skipped");
                        self.note_problem(&source.tenant, &cluster, "path", problem);
                    }
                    let applied = self
                        .write()
                        .apply_changes(&source.tenant, &cluster, changes);
                    match applied {
                        Ok(stats) => tracing::info!(
                            tenant = %source.tenant, %cluster, path = %path.display(),
                            attack_paths = stats.cluster_paths, "inventory loaded"
                        ),
                        Err(error) => {
                            tracing::error!(tenant = %source.tenant, %cluster, %error, "inventory could not be stored");
                            self.note_problem(&source.tenant, &cluster, "path", error.to_string());
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(tenant = %source.tenant, %cluster, %error, "inventory source unreadable");
                    self.note_problem(&source.tenant, &cluster, "path", error.to_string());
                }
            }
        }
        self.recount();
    }

    async fn start_watches(&self, sink: mpsc::Sender<(String, WatchEvent)>) {
        for source in self.sources() {
            let Some(kubeconfig) = &source.kubeconfig else {
                continue;
            };
            let cluster = source.cluster_id();
            source_state(&mut self.state(), &source.tenant, &cluster, "kubeconfig");
            let context = match &source.context {
                Some(context) => Ok(context.clone()),
                None => current_context(kubeconfig),
            };
            let clients = match context {
                Ok(context) => clients_from_kubeconfig(kubeconfig, &[context]).await,
                Err(error) => Err(error),
            };
            let mut clients = match clients {
                Ok(clients) => clients,
                Err(error) => {
                    tracing::error!(tenant = %source.tenant, %cluster, %error, "cluster cannot be watched");
                    self.note_problem(&source.tenant, &cluster, "kubeconfig", error.to_string());
                    continue;
                }
            };
            for client in &mut clients {
                client.name = cluster.clone();
            }
            let (sender, mut receiver) = mpsc::channel(256);
            tokio::spawn(watch_clusters(
                clients,
                &ALL_KINDS,
                ListStrategy::ListWatch,
                sender,
            ));
            let tenant = source.tenant.clone();
            let sink = sink.clone();
            tokio::spawn(async move {
                while let Some(event) = receiver.recv().await {
                    if sink.send((tenant.clone(), event)).await.is_err() {
                        return;
                    }
                }
            });
            tracing::info!(tenant = %source.tenant, %cluster, kubeconfig = %kubeconfig.display(), "watching cluster");
        }
    }

    fn apply_watch_events(&self, events: Vec<(String, WatchEvent)>) {
        // grouped per cluster, in arrival order within each
        let mut grouped: BTreeMap<(String, String), Vec<InventoryChange>> = BTreeMap::new();
        for (tenant, event) in events {
            match event {
                WatchEvent::Change { cluster, change } => {
                    grouped.entry((tenant, cluster)).or_default().push(*change);
                }
                WatchEvent::Problem {
                    cluster,
                    kind,
                    message,
                } => {
                    tracing::warn!(%tenant, %cluster, kind = kind.name(), %message, "watch problem");
                    self.note_problem(
                        &tenant,
                        &cluster,
                        "kubeconfig",
                        format!("{}: {message}", kind.name()),
                    );
                }
            }
        }
        for ((tenant, cluster), changes) in grouped {
            let applied = self.write().apply_changes(&tenant, &cluster, changes);
            if let Err(error) = applied {
                tracing::error!(%tenant, %cluster, %error, "inventory changes could not be stored");
                self.note_problem(&tenant, &cluster, "kubeconfig", error.to_string());
            }
        }
        self.recount();
    }

    /// Applies every findings and alerts record not applied yet.
    fn catch_up_logs(&self) -> Result<()> {
        loop {
            let findings = self.apply_findings()?;
            let alerts = self.apply_alerts()?;
            if findings == 0 && alerts == 0 {
                return Ok(());
            }
            self.recount();
        }
    }

    fn store(&self) -> Option<GraphStore> {
        self.read().store().cloned()
    }

    /// Records the next position of a topic. When the step wrote to the graph, what it wrote
    /// is made durable first; a step that wrote nothing needs no flush (replaying it after a
    /// crash changes nothing either).
    fn commit_position(&self, key: &str, next: u64, wrote: bool) -> Result<()> {
        if let Some(store) = self.store() {
            if wrote {
                store.flush_blocking()?;
            }
            store.write_meta(SERVICE_META, key, &next.to_string())?;
        }
        Ok(())
    }

    /// Whether alerts of `cluster` can land on the graph: it is a configured source's, or the
    /// graph holds its inventory.
    fn knows_cluster(&self, tenant: &str, cluster: &str) -> bool {
        self.sources()
            .iter()
            .any(|source| source.tenant == tenant && source.cluster_id() == cluster)
            || self
                .read()
                .tenant(tenant)
                .is_some_and(|state| state.inventory(cluster).is_some())
    }

    fn apply_findings(&self) -> Result<usize> {
        let from = self.state().positions.0;
        let Some(step) = read_step::<Finding>(&self.inner.topics.findings, "findings", from)?
        else {
            return Ok(0);
        };
        let mut changed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        {
            let mut book = self.book();
            for change in step.messages.iter().filter_map(image_vulnerability) {
                let (tenant, image) = (change.tenant.clone(), change.image.clone());
                if book.apply(change) {
                    changed.entry(tenant).or_default().insert(image);
                }
            }
        }
        for (tenant, images) in &changed {
            let findings = self.book().images(tenant, images);
            self.write().update_image_findings(tenant, findings)?;
        }
        if let Some(tenant) = &step.erased_tenant {
            self.forget_findings(tenant)?;
        }
        let wrote = !changed.is_empty() || step.erased_tenant.is_some();
        self.commit_position(FINDINGS_POSITION, step.next, wrote)?;
        self.state().positions.0 = step.next;
        Ok(step.read)
    }

    fn apply_alerts(&self) -> Result<usize> {
        let from = self.state().positions.1;
        let Some(step) = read_step::<Alert>(&self.inner.topics.alerts, "alerts", from)? else {
            return Ok(0);
        };
        let window = u64::from(self.inner.settings.config.alert_window_days) * 86_400;
        let oldest = i64::try_from(now_seconds().saturating_sub(window)).unwrap_or(0);
        let mut per_tenant: BTreeMap<String, BTreeMap<String, RuntimeAlert>> = BTreeMap::new();
        let mut known: HashMap<(String, String), bool> = HashMap::new();
        for (tenant, mut runtime) in step.messages.iter().filter_map(runtime_alert) {
            if runtime.time < oldest {
                continue;
            }
            let cluster_known = *known
                .entry((tenant.clone(), runtime.cluster.clone()))
                .or_insert_with(|| self.knows_cluster(&tenant, &runtime.cluster));
            if !cluster_known {
                continue;
            }
            runtime.id = alert_slot(&runtime);
            let held = self
                .state()
                .alert_times
                .get(&(tenant.clone(), runtime.id.clone()))
                .copied();
            if held.is_some_and(|time| runtime.time < time + ALERT_REFRESH_SECONDS) {
                continue;
            }
            let slots = per_tenant.entry(tenant).or_default();
            let newer = slots
                .get(&runtime.id)
                .is_none_or(|held| held.time <= runtime.time);
            if newer {
                slots.insert(runtime.id.clone(), runtime);
            }
        }
        let wrote = !per_tenant.is_empty() || step.erased_tenant.is_some();
        for (tenant, alerts) in per_tenant {
            {
                let mut state = self.state();
                for alert in alerts.values() {
                    state
                        .alert_times
                        .insert((tenant.clone(), alert.id.clone()), alert.time);
                }
            }
            self.write()
                .add_alerts(&tenant, alerts.into_values().collect())?;
        }
        if let Some(tenant) = &step.erased_tenant {
            self.forget_alerts(tenant)?;
        }
        self.commit_position(ALERTS_POSITION, step.next, wrote)?;
        self.state().positions.1 = step.next;
        Ok(step.read)
    }

    /// Drops what the findings log said about a tenant whose records it erased. Only the
    /// findings: by the time this reader reaches the erasure, a new tenant of the same id may
    /// have an inventory and alerts here, and those stay.
    fn forget_findings(&self, tenant: &str) -> Result<()> {
        self.book().forget_tenant(tenant);
        let images = self.write().clear_findings(tenant)?;
        tracing::info!(%tenant, images, "erased tenant's findings forgotten");
        Ok(())
    }

    /// Drops what the alerts log said about a tenant whose records it erased; only the
    /// alerts, as [`GraphCore::forget_findings`] keeps to the findings.
    fn forget_alerts(&self, tenant: &str) -> Result<()> {
        self.state()
            .alert_times
            .retain(|(owner, _), _| owner != tenant);
        let alerts = self.write().clear_alerts(tenant)?;
        tracing::info!(%tenant, alerts, "erased tenant's alerts forgotten");
        Ok(())
    }

    /// Forgets everything of a tenant being deleted: its graph, findings, alerts and scans,
    /// in memory and on disk; returns how many clusters it had. The tenant deletion calls this
    /// while the id is still reserved; the log's erasure markers later drop whatever a read
    /// already under way adds back. Clusters the configuration still names for the tenant
    /// come back from their sources; that is reported.
    pub fn forget_tenant(&self, tenant: &str) -> Result<usize> {
        if tenant.is_empty() {
            return Ok(0);
        }
        let clusters = {
            let mut engine = self.write();
            let clusters = engine
                .tenant(tenant)
                .map_or(0, |state| state.clusters().count());
            engine.remove_tenant(tenant)?;
            clusters
        };
        self.book().forget_tenant(tenant);
        {
            let mut state = self.state();
            state.alert_times.retain(|(owner, _), _| owner != tenant);
            state.scans.retain(|(owner, _), _| owner != tenant);
        }
        let configured = self
            .sources()
            .iter()
            .filter(|source| source.tenant == tenant)
            .count();
        if configured > 0 {
            tracing::warn!(%tenant, configured, "erased tenant still has graph.sources in the configuration: its clusters come back from them; remove them");
        } else {
            tracing::info!(%tenant, clusters, "deleted tenant's graph forgotten");
        }
        if let Some(store) = self.store() {
            store.flush_blocking()?;
        }
        Ok(clusters)
    }

    /// The images the inventory runs that the scanner has not been asked about (or whose scan
    /// failed long enough ago), marked as waiting.
    fn images_to_scan(&self) -> Vec<ScanOrder> {
        let mut running: Vec<ScanOrder> = Vec::new();
        {
            let engine = self.read();
            for tenant in engine.tenants() {
                let Some(state) = engine.tenant(tenant) else {
                    continue;
                };
                let graph = state.graph();
                for slot in graph.of_kind(EntityKind::Image) {
                    let Some(image) = graph.entity(slot) else {
                        continue;
                    };
                    let container = graph
                        .in_edges(slot)
                        .iter()
                        .find(|(_, kind)| *kind == EdgeKind::UsesImage)
                        .and_then(|(container, _)| graph.entity(*container));
                    if let Some(container) = container {
                        running.push(ScanOrder {
                            tenant: tenant.to_string(),
                            cluster: container.cluster.clone(),
                            image: image.name.clone(),
                        });
                    }
                }
            }
        }
        let retry = self.inner.settings.config.scan_retry_seconds;
        let rescan = self.inner.settings.config.rescan_seconds;
        let now = now_seconds();
        let mut state = self.state();
        // images no longer run are forgotten, so the map follows the inventory
        let current: BTreeSet<(String, String)> = running
            .iter()
            .map(|order| (order.tenant.clone(), order.image.clone()))
            .collect();
        state.scans.retain(|key, _| current.contains(key));
        running
            .into_iter()
            .filter(|order| {
                let key = (order.tenant.clone(), order.image.clone());
                let due = match state.scans.get(&key) {
                    None => true,
                    Some(ScanState::Failed { at, .. }) => now.saturating_sub(*at) >= retry,
                    Some(ScanState::Scanned { at }) => now.saturating_sub(*at) >= rescan,
                    Some(ScanState::Waiting) => false,
                };
                if due {
                    state.scans.insert(key, ScanState::Waiting);
                }
                due
            })
            .collect()
    }

    fn queue_scans(&self, sender: &mpsc::UnboundedSender<ScanOrder>) {
        for order in self.images_to_scan() {
            // the map of scan states holds each image once, so the queue is bounded by the
            // number of distinct images the inventory runs
            if sender.send(order).is_err() {
                return;
            }
        }
    }

    async fn scan_worker(
        self,
        scanner: ImageScanner,
        mut orders: mpsc::UnboundedReceiver<ScanOrder>,
    ) {
        while let Some(order) = orders.recv().await {
            let key = (order.tenant.clone(), order.image.clone());
            let outcome = scanner(order.clone()).await;
            let state = match outcome {
                Ok(()) => {
                    tracing::info!(tenant = %order.tenant, image = %order.image, "inventory image scanned");
                    ScanState::Scanned { at: now_seconds() }
                }
                Err(error) => {
                    tracing::warn!(tenant = %order.tenant, image = %order.image, %error, "inventory image could not be scanned; will try again later");
                    ScanState::Failed {
                        at: now_seconds(),
                        error: format!("{}: {error}", order.image),
                    }
                }
            };
            self.state().scans.insert(key, state);
        }
    }
}

/// Records read from a topic in one step, decoded.
struct Step<M> {
    messages: Vec<M>,
    /// Records read, undecodable ones included.
    read: usize,
    /// Position after the last record read.
    next: u64,
    /// The tenant whose erasure ended the step: the messages before it are applied, then
    /// everything of the tenant is forgotten.
    erased_tenant: Option<String>,
}

/// Up to [`RECORDS_PER_STEP`] records of `topic` from `from`, decoded, ending early at a
/// tenant's erasure; an undecodable record is logged and passed over (it still moves the
/// position). `None` when nothing is new.
fn read_step<M: Message + Default>(
    topic: &Topic,
    name: &str,
    from: u64,
) -> Result<Option<Step<M>>> {
    let records = topic
        .read(from, RECORDS_PER_STEP)
        .map_err(|error| GraphError::BadInput {
            location: format!("log topic {name}"),
            message: error.to_string(),
        })?;
    let mut step = Step {
        messages: Vec::new(),
        read: 0,
        next: from,
        erased_tenant: None,
    };
    for record in &records {
        step.read += 1;
        step.next = record.offset + 1;
        match ControlRecord::decode(&record.payload) {
            Ok(None) => match M::decode(record.payload.as_slice()) {
                Ok(message) => step.messages.push(message),
                Err(error) => {
                    tracing::error!(topic = name, offset = record.offset, %error, "skipping undecodable record");
                }
            },
            Ok(Some(ControlRecord::Erased)) => {}
            Ok(Some(ControlRecord::TenantErased { tenant })) => {
                step.erased_tenant = Some(tenant);
                break;
            }
            Err(error) => {
                tracing::error!(topic = name, offset = record.offset, %error, "skipping a control record this version does not know");
            }
        }
    }
    Ok((step.read > 0).then_some(step))
}

fn read_position(store: &GraphStore, key: &str) -> Result<u64> {
    match store.read_meta(SERVICE_META, key)? {
        None => Ok(0),
        Some(text) => text.parse().map_err(|_| GraphError::CorruptRecord {
            key: key.to_string(),
            message: format!("log position {text:?} is not a number"),
        }),
    }
}

fn current_context(kubeconfig: &Path) -> Result<String> {
    let config =
        kube::config::Kubeconfig::read_from(kubeconfig).map_err(|error| GraphError::BadInput {
            location: kubeconfig.display().to_string(),
            message: format!("invalid kubeconfig: {error}"),
        })?;
    config.current_context.ok_or_else(|| GraphError::BadInput {
        location: kubeconfig.display().to_string(),
        message: "no current-context: name the context in graph.sources".to_string(),
    })
}

/// The changes that make a cluster hold exactly the objects under `path`, and the problems
/// met reading it.
fn load_snapshot(path: &Path) -> Result<(Vec<InventoryChange>, Vec<String>)> {
    let report = load_path(path, &SourceLimits::default())?;
    let problems = report
        .problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    let mut per_kind: BTreeMap<_, Vec<Object>> = BTreeMap::new();
    for object in report.objects {
        per_kind.entry(object.kind).or_default().push(object);
    }
    let changes = ALL_KINDS
        .iter()
        .map(|kind| InventoryChange::Replace {
            kind: *kind,
            objects: per_kind.remove(kind).unwrap_or_default(),
        })
        .collect();
    Ok((changes, problems))
}
