//! The scanner as a service of the platform: scans requested over the API, SBOMs cached by
//! image digest, vulnerabilities published to the log as findings of the caller's tenant, and
//! every scanned image matched again from its cached SBOM when the vulnerability database
//! changes (a `palisade vulndb import`), raising new findings and resolving vanished ones
//! without reading a layer.
//!
//! The vulnerability database is opened for each match and closed after it: sled lets one
//! process hold it at a time, and an import from the command line must be able to run while
//! the server is up. Imports raise a generation number the service polls without opening the
//! database.
//!
//! What is stored (in the platform's store):
//! - `scanner.images`: `tenant/image-digest` -> [`ImageRecord`], the images a tenant scanned;
//! - `scanner.findings`: `tenant/image-digest/finding-id` -> [`FindingState`], what was last
//!   published for each finding, so a match writes only what changed;
//! - `scanner.meta`: the database generation every image was last matched at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix::prelude::*;
use palisade_core::config::ScannerConfig;
use palisade_core::error::CoreError;
use palisade_core::ids::TenantId;
use palisade_core::log::LogEntry;
use palisade_core::log::remote::TopicWriter;
use palisade_core::storage::{Store, TypedTree};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{
    GetVulnDbStatusResponse, ScanImageRequest, ScanImageResponse, VulnDbSource,
};
use palisade_vulndb::{MatchOptions, VulnDb, VulnDbError};
use prometheus_client::metrics::counter::Counter;
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::cache::ScanCache;
use crate::error::ScanError;
use crate::findings::{self, FindingState, ImageSubject};
use crate::matching::Vulnerability;
use crate::progress::{Progress, ProgressEvent};
use crate::sbom::Sbom;
use crate::scan::{FindingFilter, ScanOptions, build_sbom, match_sbom};
use crate::source::ImageReference;
use crate::source::RegistryCredentials;
use crate::vulndb_matcher::VulnDbMatcher;

/// Images matched per opening of the database during a re-match.
const REMATCH_CHUNK: usize = 64;

/// How long a match waits for the database while an import holds it.
const DATABASE_WAIT: Duration = Duration::from_secs(120);

/// Where and how the service scans.
#[derive(Debug, Clone)]
pub struct ScannerSettings {
    /// The vulnerability database directory (`config.vulndb` or the data directory's).
    pub vulndb: PathBuf,
    /// Where SBOMs are cached by image digest.
    pub cache_dir: PathBuf,
    /// Local roots, registries, containerd, concurrency and the re-match interval.
    pub config: ScannerConfig,
}

/// Why a service request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The reference does not parse.
    #[error("{0}")]
    Reference(ScanError),
    /// A local image outside the allowed roots.
    #[error("{path}: local images are scanned only under the server's scanner.local_roots{roots}")]
    LocalPathRefused { path: String, roots: String },
    /// Too many scans are waiting.
    #[error("the scanner is busy: {waiting} scans are waiting for a slot; retry later")]
    Busy { waiting: usize },
    /// The scan failed.
    #[error("{0}")]
    Scan(ScanError),
    /// The vulnerability database failed.
    #[error("{0}")]
    VulnDb(#[from] VulnDbError),
    /// The log or the store failed.
    #[error("{0}")]
    Storage(#[from] CoreError),
    /// A worker stopped.
    #[error("scan worker stopped: {0}")]
    Worker(String),
    /// The tenant was deleted while the scan ran.
    #[error("tenant {tenant} was deleted while the scan ran: nothing of the scan was recorded")]
    TenantForgotten { tenant: String },
    /// A configured registry password cannot be read.
    #[error("scanner.registries: the password file of {host} ({path}) cannot be read: {reason}")]
    RegistryLogin {
        host: String,
        path: String,
        reason: String,
    },
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match &error {
            ServiceError::Reference(_) => tonic::Status::invalid_argument(message),
            ServiceError::LocalPathRefused { .. } => tonic::Status::permission_denied(message),
            ServiceError::Busy { .. } => tonic::Status::resource_exhausted(message),
            ServiceError::TenantForgotten { .. } => tonic::Status::aborted(message),
            ServiceError::Scan(scan) => match scan {
                ScanError::InvalidReference { .. } => tonic::Status::invalid_argument(message),
                ScanError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    tonic::Status::not_found(message)
                }
                ScanError::Registry { reason, .. } if registry_says_missing(reason) => {
                    tonic::Status::not_found(message)
                }
                ScanError::Registry { .. } | ScanError::Containerd { .. } => {
                    tonic::Status::unavailable(message)
                }
                ScanError::ImageMetadata { .. }
                | ScanError::DigestMismatch { .. }
                | ScanError::LayerFormat { .. }
                | ScanError::HostileEntry { .. }
                | ScanError::LimitExceeded { .. } => tonic::Status::failed_precondition(message),
                ScanError::Io { .. }
                | ScanError::Matching { .. }
                | ScanError::Output { .. }
                | ScanError::Cache { .. } => tonic::Status::internal(message),
            },
            ServiceError::VulnDb(VulnDbError::Busy { .. }) => tonic::Status::unavailable(message),
            ServiceError::VulnDb(_) | ServiceError::Storage(_) | ServiceError::Worker(_) => {
                tonic::Status::internal(message)
            }
            ServiceError::RegistryLogin { .. } => tonic::Status::failed_precondition(message),
        }
    }
}

/// The configured registry logins, passwords read now (a rotated secret is used at once).
fn registry_credentials(config: &ScannerConfig) -> Result<Vec<RegistryCredentials>, ServiceError> {
    config
        .registries
        .iter()
        .map(|login| {
            let password = std::fs::read_to_string(&login.password_file).map_err(|error| {
                ServiceError::RegistryLogin {
                    host: login.host.clone(),
                    path: login.password_file.display().to_string(),
                    reason: error.to_string(),
                }
            })?;
            Ok(RegistryCredentials {
                registry: login.host.clone(),
                username: login.username.clone(),
                password: password.trim().to_string(),
            })
        })
        .collect()
}

fn registry_says_missing(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("manifest_unknown")
        || reason.contains("name_unknown")
        || reason.contains("not found")
        || reason.contains("404")
}

/// An image a tenant scanned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image, as last requested.
    pub subject: ImageSubject,
    /// Seconds since the epoch of the first and the last scan or match.
    pub first_scanned: i64,
    pub last_matched: i64,
}

/// What one re-match of every scanned image did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RematchReport {
    /// The database generation matched against.
    pub generation: u64,
    /// Images matched again.
    pub images: u64,
    /// Images whose SBOM was no longer cached (scan them again).
    pub missing_sboms: u64,
    /// Findings raised, updated and resolved.
    pub new: u64,
    pub updated: u64,
    pub resolved: u64,
}

struct Metrics {
    scans: Counter,
    scans_from_cache: Counter,
    layers_read: Counter,
    rematches: Counter,
    findings_published: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let metrics = Metrics {
        scans: Counter::default(),
        scans_from_cache: Counter::default(),
        layers_read: Counter::default(),
        rematches: Counter::default(),
        findings_published: Counter::default(),
    };
    palisade_core::telemetry::register(|registry| {
        registry.register(
            "scanner_scans",
            "Image scans completed for API callers",
            metrics.scans.clone(),
        );
        registry.register(
            "scanner_scans_from_cache",
            "Scans answered from a cached SBOM, reading no layer",
            metrics.scans_from_cache.clone(),
        );
        registry.register(
            "scanner_layers_read",
            "Image layers read by the scanner service",
            metrics.layers_read.clone(),
        );
        registry.register(
            "scanner_rematches",
            "Re-matches of every scanned image after a vulnerability database change",
            metrics.rematches.clone(),
        );
        registry.register(
            "scanner_findings_published",
            "Vulnerability findings written to the log (new, changed or resolved)",
            metrics.findings_published.clone(),
        );
    });
    metrics
});

/// Registers the scanner's metrics.
pub fn register_metrics() {
    LazyLock::force(&METRICS);
}

/// Counts the layers a scan reads.
#[derive(Default)]
struct LayerCounter(AtomicU64);

impl Progress for LayerCounter {
    fn report(&self, event: ProgressEvent) {
        if let ProgressEvent::LayerFinished { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
            METRICS.layers_read.inc();
        }
    }
}

fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

fn image_key(tenant: &str, image_digest: &str) -> String {
    format!("{tenant}/{image_digest}")
}

/// The vulnerabilities of each SBOM matched, in order, and the database generation matched.
struct Matched {
    generation: u64,
    vulnerabilities: Vec<Vec<Vulnerability>>,
}

/// The service's state, shared by the actor and the work it spawns.
#[derive(Clone)]
pub struct ScannerCore {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ScannerSettings,
    cache: ScanCache,
    topic: TopicWriter,
    images: TypedTree<ImageRecord>,
    states: TypedTree<FindingState>,
    meta: TypedTree<u64>,
    slots: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    /// One user of the vulnerability database at a time in this process.
    database: std::sync::Mutex<()>,
    /// One publisher at a time, so two matches of an image do not interleave; it also
    /// guards which tenants were forgotten when.
    publishing: tokio::sync::Mutex<Forgotten>,
    /// Forgets so far: read without the lock when work begins, raised under it.
    forgets: AtomicU64,
    /// The runtime scans run on (not the actor's thread).
    runtime: tokio::runtime::Handle,
}

/// Which tenants were forgotten (deleted), and when, counted in forgets since the start.
#[derive(Debug, Default)]
struct Forgotten {
    /// The count of forgets ([`Inner::forgets`]) each forgotten tenant was forgotten at.
    tenants: std::collections::HashMap<String, u64>,
}

impl Forgotten {
    /// Refuses to record for `tenant` what work that `began` at an earlier epoch found.
    fn check(&self, tenant: &str, began: u64) -> Result<(), ServiceError> {
        match self.tenants.get(tenant) {
            Some(forgotten) if *forgotten > began => Err(ServiceError::TenantForgotten {
                tenant: tenant.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

impl ScannerCore {
    /// The service over `store` (its trees) and `topic` (findings: the log of this process or
    /// the gateway's); scans run on `runtime`.
    pub fn new(
        settings: ScannerSettings,
        store: &Store,
        topic: impl Into<TopicWriter>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, ServiceError> {
        let cache = ScanCache::open(&settings.cache_dir).map_err(ServiceError::Scan)?;
        Ok(ScannerCore {
            inner: Arc::new(Inner {
                cache,
                topic: topic.into(),
                images: store.typed_tree("scanner.images")?,
                states: store.typed_tree("scanner.findings")?,
                meta: store.typed_tree("scanner.meta")?,
                slots: tokio::sync::Semaphore::new(settings.config.max_concurrent_scans.max(1)),
                waiting: AtomicUsize::new(0),
                database: std::sync::Mutex::new(()),
                publishing: tokio::sync::Mutex::new(Forgotten::default()),
                forgets: AtomicU64::new(0),
                settings,
                runtime,
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &ScannerSettings {
        &self.inner.settings
    }

    /// Images scanned, over all tenants.
    pub fn image_count(&self) -> usize {
        self.inner.images.len()
    }

    /// Forgets what `tenant` scanned and the state of its findings (a deleted tenant), so a
    /// tenant created again under its id gets its findings published afresh. Returns how
    /// many images it had. The SBOM cache is by image digest, shared, and stays.
    pub async fn forget_tenant(&self, tenant: &TenantId) -> Result<u64, ServiceError> {
        let mut forgotten = self.inner.publishing.lock().await;
        let epoch = self.inner.forgets.fetch_add(1, Ordering::SeqCst) + 1;
        forgotten.tenants.insert(tenant.to_string(), epoch);
        let prefix = format!("{tenant}/");
        let images = self.inner.images.remove_prefix(&prefix)?;
        self.inner.states.remove_prefix(&prefix)?;
        Ok(images as u64)
    }

    fn check_local(&self, reference: &ImageReference) -> Result<(), ServiceError> {
        let path = match reference {
            ImageReference::OciLayout { directory, .. } | ImageReference::Rootfs { directory } => {
                directory
            }
            ImageReference::OciArchive { file, .. }
            | ImageReference::DockerArchive { file, .. } => file,
            ImageReference::Registry { .. } | ImageReference::Containerd { .. } => return Ok(()),
        };
        let refused = || {
            let roots = &self.inner.settings.config.local_roots;
            ServiceError::LocalPathRefused {
                path: path.display().to_string(),
                roots: if roots.is_empty() {
                    " (none are configured)".to_string()
                } else {
                    format!(
                        " ({})",
                        roots
                            .iter()
                            .map(|root| root.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            }
        };
        // resolved, so neither `..` nor a symlink leads out of a root
        let resolved = match path.canonicalize() {
            Ok(resolved) => resolved,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // say "not found" only for paths a caller may name
                let inside = self.inner.settings.config.local_roots.iter().any(|root| {
                    path.is_absolute()
                        && !path
                            .components()
                            .any(|part| part == std::path::Component::ParentDir)
                        && path.starts_with(root)
                });
                return Err(if inside {
                    ServiceError::Scan(ScanError::Io {
                        path: path.clone(),
                        source: error,
                    })
                } else {
                    refused()
                });
            }
            Err(_) => return Err(refused()),
        };
        let allowed = self
            .inner
            .settings
            .config
            .local_roots
            .iter()
            .filter_map(|root| root.canonicalize().ok())
            .any(|root| resolved.starts_with(root));
        if allowed { Ok(()) } else { Err(refused()) }
    }

    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ServiceError> {
        if let Ok(permit) = self.inner.slots.try_acquire() {
            return Ok(permit);
        }
        let waiting = self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        if waiting >= self.inner.settings.config.max_waiting_scans {
            self.inner.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ServiceError::Busy { waiting });
        }
        let permit = self.inner.slots.acquire().await;
        self.inner.waiting.fetch_sub(1, Ordering::SeqCst);
        permit.map_err(|_| ServiceError::Worker("the scanner is stopping".to_string()))
    }

    /// Opens the vulnerability database for this process's one user at a time (the guard),
    /// waiting while an import holds it; `None` when nothing was ever imported. Blocking.
    fn open_database(
        &self,
    ) -> Result<Option<(std::sync::MutexGuard<'_, ()>, u64, VulnDb)>, ServiceError> {
        let guard = self
            .inner
            .database
            .lock()
            .map_err(|_| ServiceError::Worker("database lock poisoned".to_string()))?;
        let path = &self.inner.settings.vulndb;
        let Some(generation) = VulnDb::generation(path) else {
            return Ok(None);
        };
        let database = VulnDb::open_waiting(path, DATABASE_WAIT, |path| {
            tracing::info!(path = %path.display(), "waiting for the vulnerability database (an import holds it)");
        })?;
        Ok(Some((guard, generation, database)))
    }

    /// Matches SBOMs against the database as it is now; `None` when no database was ever
    /// imported (nothing is known, so nothing may be raised or resolved).
    fn match_now(&self, sboms: Vec<Sbom>) -> Result<Option<Matched>, ServiceError> {
        let Some((_guard, generation, database)) = self.open_database()? else {
            return Ok(None);
        };
        let matcher = VulnDbMatcher::new(database, MatchOptions::default());
        let mut all = Vec::with_capacity(sboms.len());
        for sbom in sboms {
            let report = match_sbom(sbom, Some(&matcher)).map_err(ServiceError::Scan)?;
            all.push(report.vulnerabilities);
        }
        Ok(Some(Matched {
            generation,
            vulnerabilities: all,
        }))
    }

    async fn match_blocking(&self, sboms: Vec<Sbom>) -> Result<Option<Matched>, ServiceError> {
        let core = self.clone();
        tokio::task::spawn_blocking(move || core.match_now(sboms))
            .await
            .map_err(|error| ServiceError::Worker(error.to_string()))?
    }

    /// Where forgetting stands: work that records what it found for a tenant takes this
    /// before it begins, and records nothing if the tenant was forgotten since.
    fn epoch(&self) -> u64 {
        self.inner.forgets.load(Ordering::SeqCst)
    }

    /// The publishing lock, once it is clear that work for `tenant` that `began` then may
    /// still record what it found: not if the tenant was forgotten since.
    async fn publishing_for(
        &self,
        tenant: &str,
        began: u64,
    ) -> Result<tokio::sync::MutexGuard<'_, Forgotten>, ServiceError> {
        let forgotten = self.inner.publishing.lock().await;
        forgotten.check(tenant, began)?;
        Ok(forgotten)
    }

    /// Publishes what changed for one image and remembers it; returns the counts and the
    /// image's current (unresolved) findings. Work `began` before the tenant was forgotten
    /// (a deletion while it ran) records nothing.
    async fn publish(
        &self,
        tenant: &str,
        subject: &ImageSubject,
        vulnerabilities: &[Vulnerability],
        now: i64,
        began: u64,
    ) -> Result<(findings::Changes, BTreeMap<String, FindingState>), ServiceError> {
        let _publishing = self.publishing_for(tenant, began).await?;
        let prefix = format!("{}/", image_key(tenant, &subject.image_digest));
        let mut states: BTreeMap<String, FindingState> = self
            .inner
            .states
            .scan_prefix(&prefix)?
            .into_iter()
            .map(|(key, state)| (key[prefix.len()..].to_string(), state))
            .collect();
        let changes = findings::changes(tenant, subject, vulnerabilities, &states, now);
        if !changes.publications.is_empty() {
            let entries = changes
                .publications
                .iter()
                .map(|publication| LogEntry {
                    dedupe_key: Some(publication.dedupe_key.clone()),
                    payload: publication.finding.encode_to_vec(),
                })
                .collect();
            // durable first: a crash before the states are written republishes the same
            // records next time, which the dedupe keys turn into no-ops
            self.inner.topic.append(entries).await?;
            METRICS
                .findings_published
                .inc_by(changes.publications.len() as u64);
            for publication in &changes.publications {
                self.inner
                    .states
                    .put(&format!("{prefix}{}", publication.id), &publication.state)?;
                states.insert(publication.id.clone(), publication.state.clone());
            }
        }
        self.remember_image(tenant, subject, now)?;
        states.retain(|_, state| !state.resolved);
        Ok((changes, states))
    }

    /// Records that `tenant` scanned the image, so a database change matches it again.
    fn remember_image(
        &self,
        tenant: &str,
        subject: &ImageSubject,
        now: i64,
    ) -> Result<(), ServiceError> {
        let key = image_key(tenant, &subject.image_digest);
        let first_scanned = self
            .inner
            .images
            .get(&key)?
            .map_or(now, |record| record.first_scanned);
        self.inner.images.put(
            &key,
            &ImageRecord {
                subject: subject.clone(),
                first_scanned,
                last_matched: now,
            },
        )?;
        Ok(())
    }

    /// Scans `request.image` for `tenant`: SBOM (from the cache when the digest was seen),
    /// match, findings published, response filtered as asked.
    pub async fn scan(
        &self,
        tenant: &TenantId,
        request: ScanImageRequest,
    ) -> Result<ScanImageResponse, ServiceError> {
        let reference: ImageReference = request.image.parse().map_err(ServiceError::Reference)?;
        self.check_local(&reference)?;
        let _slot = self.slot().await?;
        let settings = &self.inner.settings;
        let counter = Arc::new(LayerCounter::default());
        let mut options = ScanOptions::new(request.image.clone());
        options.cache = Some(self.inner.cache.clone());
        options.insecure_registries = settings.config.insecure_registries.clone();
        options.registry_credentials = registry_credentials(&settings.config)?;
        options.containerd_socket = settings.config.containerd_socket.clone();
        options.containerd_namespace = settings.config.containerd_namespace.clone();
        options.progress = counter.clone();
        let began = self.epoch();
        let sbom = build_sbom(&options).await.map_err(ServiceError::Scan)?;
        let from_cache = counter.0.load(Ordering::Relaxed) == 0
            && !matches!(reference, ImageReference::Rootfs { .. });
        METRICS.scans.inc();
        if from_cache {
            METRICS.scans_from_cache.inc();
        }
        let now = now_seconds();
        let subject = ImageSubject {
            image: request.image.clone(),
            image_digest: sbom.image_digest.clone(),
            cluster_id: request.cluster_id.clone(),
        };
        let matched = self.match_blocking(vec![sbom.clone()]).await?;
        let (new_findings, resolved_findings, current) = match matched {
            Some(mut matched) => {
                let vulnerabilities = matched.vulnerabilities.pop().unwrap_or_default();
                let (changes, current) = self
                    .publish(tenant.as_str(), &subject, &vulnerabilities, now, began)
                    .await?;
                (changes.new, changes.resolved, current)
            }
            None => {
                // no data yet: the image is matched once a database is imported
                let _publishing = self.publishing_for(tenant.as_str(), began).await?;
                self.remember_image(tenant.as_str(), &subject, now)?;
                (0, 0, BTreeMap::new())
            }
        };
        tracing::info!(
            tenant = %tenant,
            image = %request.image,
            digest = %sbom.image_digest,
            packages = sbom.packages.len(),
            findings = current.len(),
            new_findings,
            resolved_findings,
            from_cache,
            "image scanned"
        );
        let filter = FindingFilter {
            min_severity: findings::scanner_severity(request.min_severity),
            ignore_unfixed: request.ignore_unfixed,
        };
        let vulnerabilities = current
            .iter()
            .filter(|(_, state)| filter.accepts(&state.vulnerability))
            .map(|(id, state)| {
                findings::vulnerability_finding(tenant.as_str(), &subject, id, state, now)
            })
            .collect();
        Ok(ScanImageResponse {
            image: request.image,
            manifest_digest: sbom.image_digest.clone(),
            os: sbom
                .os
                .as_ref()
                .map(|os| format!("{} {}", os.id, os.version_id))
                .unwrap_or_default(),
            packages: sbom
                .packages
                .iter()
                .map(|package| palisade_proto::v1::Package {
                    name: package.name.clone(),
                    version: package.version.clone(),
                    ecosystem: package
                        .osv_ecosystem(sbom.os.as_ref())
                        .unwrap_or_else(|| package.kind.as_str().to_string()),
                    source_name: package.source_name.clone().unwrap_or_default(),
                    source_version: package.source_version.clone().unwrap_or_default(),
                    purl: package.purl.clone(),
                    location: package.location.clone(),
                    layer_digest: package.layer.clone(),
                    kind: package.kind.as_str().to_string(),
                })
                .collect(),
            vulnerabilities,
            scanned: Some(Timestamp {
                seconds: now,
                nanos: 0,
            }),
            from_cache,
            new_findings,
            resolved_findings,
            issues: sbom
                .issues
                .iter()
                .map(|issue| palisade_proto::v1::CatalogIssue {
                    location: issue.location.clone(),
                    line: issue.line.unwrap_or_default(),
                    reason: issue.reason.clone(),
                })
                .collect(),
        })
    }

    /// Matches every scanned image again if the database changed since the last match.
    pub async fn rematch_if_changed(&self) -> Result<Option<RematchReport>, ServiceError> {
        let Some(generation) = VulnDb::generation(&self.inner.settings.vulndb) else {
            return Ok(None);
        };
        if self.inner.meta.get("matched_generation")? == Some(generation) {
            return Ok(None);
        }
        let began = self.epoch();
        let records: Vec<(String, ImageRecord)> = self.inner.images.scan_prefix("")?;
        let mut report = RematchReport::default();
        // in chunks: the SBOMs of one chunk are in memory at a time, and an import waiting for
        // the database gets it between chunks
        let mut matched_generation = u64::MAX;
        for chunk in records.chunks(REMATCH_CHUNK) {
            let mut sboms = Vec::with_capacity(chunk.len());
            let mut kept = Vec::with_capacity(chunk.len());
            for (key, record) in chunk {
                match self.inner.cache.get(&record.subject.image_digest) {
                    Ok(Some(sbom)) => {
                        sboms.push(sbom);
                        kept.push((key, record));
                    }
                    Ok(None) => report.missing_sboms += 1,
                    Err(error) => {
                        tracing::warn!(%error, image = %record.subject.image, "cached SBOM unreadable; scan the image again");
                        report.missing_sboms += 1;
                    }
                }
            }
            let Some(matched) = self.match_blocking(sboms).await? else {
                return Ok(None);
            };
            // an import between chunks: the next check matches everything again
            matched_generation = matched_generation.min(matched.generation);
            let now = now_seconds();
            for ((key, record), vulnerabilities) in kept.into_iter().zip(matched.vulnerabilities) {
                let Some((tenant, _)) = key.split_once('/') else {
                    continue;
                };
                let published = self
                    .publish(tenant, &record.subject, &vulnerabilities, now, began)
                    .await;
                let changes = match published {
                    Ok((changes, _)) => changes,
                    // deleted since the records were read: its images are gone
                    Err(ServiceError::TenantForgotten { .. }) => continue,
                    Err(error) => return Err(error),
                };
                report.images += 1;
                report.new += u64::from(changes.new);
                report.updated += u64::from(changes.updated);
                report.resolved += u64::from(changes.resolved);
            }
        }
        if matched_generation == u64::MAX {
            // nothing scanned yet: this generation is matched by definition
            matched_generation = generation;
        }
        report.generation = matched_generation;
        self.inner
            .meta
            .put("matched_generation", &matched_generation)?;
        METRICS.rematches.inc();
        tracing::info!(
            generation = report.generation,
            images = report.images,
            new = report.new,
            updated = report.updated,
            resolved = report.resolved,
            missing_sboms = report.missing_sboms,
            "vulnerability database changed: scanned images matched again"
        );
        Ok(Some(report))
    }

    /// What the database holds.
    pub async fn vulndb_status(&self) -> Result<GetVulnDbStatusResponse, ServiceError> {
        let core = self.clone();
        tokio::task::spawn_blocking(move || {
            let Some((_guard, generation, database)) = core.open_database()? else {
                return Ok(GetVulnDbStatusResponse::default());
            };
            let status = database.status()?;
            Ok(GetVulnDbStatusResponse {
                sources: status
                    .sources
                    .iter()
                    .map(|source| VulnDbSource {
                        name: source.name.clone(),
                        records: source.advisories,
                        imported: chrono::DateTime::parse_from_rfc3339(&source.imported_at)
                            .ok()
                            .map(|time| Timestamp {
                                seconds: time.timestamp(),
                                nanos: 0,
                            }),
                    })
                    .collect(),
                records: status.advisories,
                generation,
            })
        })
        .await
        .map_err(|error| ServiceError::Worker(error.to_string()))?
    }
}

/// The scanner actor: takes requests, runs them on the platform's runtime so its mailbox stays
/// responsive, and checks the database for changes on a timer.
pub struct ScannerActor {
    core: ScannerCore,
    rematching: bool,
}

impl ScannerActor {
    /// The actor over `core`.
    pub fn new(core: ScannerCore) -> Self {
        ScannerActor {
            core,
            rematching: false,
        }
    }
}

impl Actor for ScannerActor {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Self::Context) {
        context.set_mailbox_capacity(64);
        let every = Duration::from_secs(self.core.settings().config.rematch_check_seconds);
        context.run_interval(every, |actor, context| {
            if actor.rematching {
                return;
            }
            actor.rematching = true;
            let core = actor.core.clone();
            let work = async move {
                let runtime = core.inner.runtime.clone();
                match runtime.spawn(async move { core.rematch_if_changed().await }).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::error!(%error, "re-matching scanned images failed; retrying at the next check"),
                    Err(error) => tracing::error!(%error, "re-match worker stopped"),
                }
            };
            context.spawn(actix::fut::wrap_future::<_, Self>(work).map(|(), actor, _| {
                actor.rematching = false;
            }));
        });
    }
}

/// Scan an image for a tenant.
#[derive(Message)]
#[rtype(result = "Result<ScanImageResponse, ServiceError>")]
pub struct ScanImage {
    pub tenant: TenantId,
    pub request: ScanImageRequest,
}

impl Handler<ScanImage> for ScannerActor {
    type Result = ResponseFuture<Result<ScanImageResponse, ServiceError>>;

    fn handle(&mut self, message: ScanImage, _: &mut Self::Context) -> Self::Result {
        let core = self.core.clone();
        Box::pin(async move {
            let runtime = core.inner.runtime.clone();
            runtime
                .spawn(async move { core.scan(&message.tenant, message.request).await })
                .await
                .map_err(|error| ServiceError::Worker(error.to_string()))?
        })
    }
}

/// What the vulnerability database holds.
#[derive(Message)]
#[rtype(result = "Result<GetVulnDbStatusResponse, ServiceError>")]
pub struct VulnDbStatus;

impl Handler<VulnDbStatus> for ScannerActor {
    type Result = ResponseFuture<Result<GetVulnDbStatusResponse, ServiceError>>;

    fn handle(&mut self, _: VulnDbStatus, _: &mut Self::Context) -> Self::Result {
        let core = self.core.clone();
        Box::pin(async move {
            let runtime = core.inner.runtime.clone();
            runtime
                .spawn(async move { core.vulndb_status().await })
                .await
                .map_err(|error| ServiceError::Worker(error.to_string()))?
        })
    }
}

/// The SBOM cache directory inside a data directory.
pub fn default_cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("scan-cache")
}

#[cfg(test)]
mod tests {
    use palisade_core::log::Topic;

    use super::*;

    fn core(directory: &Path, store: &Store) -> ScannerCore {
        let topic = Topic::open(store, "findings").expect("topic");
        let settings = ScannerSettings {
            vulndb: directory.join("vulndb"),
            cache_dir: directory.join("cache"),
            config: ScannerConfig::default(),
        };
        ScannerCore::new(settings, store, topic, tokio::runtime::Handle::current())
            .expect("scanner")
    }

    #[tokio::test]
    async fn a_scan_that_began_before_its_tenant_was_forgotten_records_nothing() {
        let directory = tempfile::tempdir().expect("tempdir");
        let store = Store::temporary().expect("store");
        let core = core(directory.path(), &store);
        let acme = TenantId::new("acme").expect("tenant");
        let subject = ImageSubject {
            image: "docker.io/library/alpine:3.20".into(),
            image_digest: format!("sha256:{}", "a".repeat(64)),
            cluster_id: String::new(),
        };
        let globex_began = core.epoch();
        let began = core.epoch();
        core.publish("acme", &subject, &[], 1, began)
            .await
            .expect("recorded");
        assert_eq!(core.image_count(), 1);

        // a deletion while a scan of acme runs: the scan ends after it and records nothing
        let running = core.epoch();
        assert_eq!(core.forget_tenant(&acme).await.expect("forget"), 1);
        let late = core.publish("acme", &subject, &[], 2, running).await;
        assert!(
            matches!(late, Err(ServiceError::TenantForgotten { ref tenant }) if tenant == "acme"),
            "{late:?}"
        );
        assert_eq!(core.image_count(), 0, "the image stays forgotten");

        // another tenant's scan of the same time records, and so does acme's next one
        core.publish("globex", &subject, &[], 2, globex_began)
            .await
            .expect("globex records");
        let after = core.epoch();
        core.publish("acme", &subject, &[], 3, after)
            .await
            .expect("a new acme records");
        assert_eq!(core.image_count(), 2);
    }
}
