//! The database on disk: sled trees indexed by (ecosystem, package), one source per imported
//! file or directory, replaced as a whole when it is imported again.
//!
//! Trees:
//! - `index`: `ecosystem \0 package \0 source-id(4 bytes) advisory-id` -> postcard [`Affected`]
//! - `advisories`: `source-id advisory-id` -> postcard [`AdvisoryMeta`]
//! - `by_source`: `source-id chunk(4 bytes)` -> postcard list of index keys, one chunk per write
//!   batch, written before the batch itself so that a crash mid-import never leaves index
//!   entries the next import of the source cannot find and remove
//! - `vex`: `source-id sequence(4 bytes)` -> postcard [`VexStatement`]
//! - `cvss_by_id`: `vulnerability-id \0 source-id advisory-id` -> postcard [`CvssEvidence`],
//!   for every id and alias of an advisory whose severity was computed from a CVSS vector, so a
//!   record without one (a DSA) gets the severity of the same CVE from another feed
//! - `sources`: source name -> JSON [`SourceStatus`]
//! - `meta`: counters
//!
//! Beside the trees, the file `generation` holds a number raised by every import, so a
//! long-running scanner can tell that the data changed (and re-match what it scanned) without
//! opening the database, which sled lets one process hold at a time.

// Imports are blocking work with no tokio clock to pause; std's Instant times them.
#![allow(clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::time::Instant;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::ecosystem::{ecosystem_key, package_key};
use crate::error::VulnDbError;
use crate::import::{self, FeedFormat, ImportIssue, ImportLimits, RecordSink, SourceUnit};
use crate::model::{Advisory, Affected};
use crate::severity::{SeverityAssessment, SeveritySource};
use crate::vex::VexStatement;

/// What a stored advisory says besides its affected packages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdvisoryMeta {
    /// Feed id.
    pub id: String,
    /// Other ids.
    pub aliases: Vec<String>,
    /// Summary.
    pub summary: String,
    /// Severity.
    pub severity: SeverityAssessment,
    /// Withdrawn.
    pub withdrawn: bool,
    /// RustSec informational kind.
    pub informational: Option<String>,
}

/// What is loaded from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Source name (the imported path).
    pub name: String,
    /// Internal id, stable across re-imports.
    pub id: u32,
    /// Format recognised.
    pub format: String,
    /// Advisories imported.
    pub advisories: u64,
    /// (advisory, package) entries indexed.
    pub affected_entries: u64,
    /// VEX statements imported.
    pub vex_statements: u64,
    /// Records skipped as bad.
    pub issues: u64,
    /// When the import finished (RFC 3339, UTC).
    pub imported_at: String,
    /// How long the import took, in milliseconds.
    pub import_millis: u64,
}

/// What the database holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbStatus {
    /// Database directory.
    pub path: PathBuf,
    /// Every source, sorted by name.
    pub sources: Vec<SourceStatus>,
    /// Total advisories.
    pub advisories: u64,
    /// Total indexed entries.
    pub affected_entries: u64,
    /// Total VEX statements.
    pub vex_statements: u64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// The sources imported, with their counts.
    pub sources: Vec<SourceStatus>,
    /// Bad records that were skipped.
    pub issues: Vec<ImportIssue>,
    /// Files that held no vulnerability data (notes, test tables).
    pub ignored: Vec<String>,
}

/// Bad records listed in an import report at most; the counts in [`SourceStatus`] stay exact.
const MAX_REPORTED_ISSUES: usize = 10_000;

/// The vulnerability database.
#[derive(Clone)]
pub struct VulnDb {
    path: PathBuf,
    db: sled::Db,
    pub(crate) index: sled::Tree,
    pub(crate) advisories: sled::Tree,
    by_source: sled::Tree,
    pub(crate) vex: sled::Tree,
    sources: sled::Tree,
    meta: sled::Tree,
    pub(crate) cvss_by_id: sled::Tree,
}

/// A CVSS-based severity known for a vulnerability id, and the advisory it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvssEvidence {
    /// Advisory whose vector gave the severity.
    pub advisory_id: String,
    /// The severity computed from it.
    pub severity: SeverityAssessment,
}

/// On-disk layout version, bumped whenever a tree's key or value encoding changes.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";

/// Name of the change marker in the database directory.
const GENERATION_FILE: &str = "generation";

/// How often a blocked open tries again while another process holds the database.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether sled failed to open because another process holds the database's lock.
fn is_lock_contention(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Which tree an owned key belongs to (stored in the per-source key lists).
const OWNED_INDEX: u8 = 0;
const OWNED_CVSS: u8 = 1;

fn storage_error(path: &Path) -> impl Fn(sled::Error) -> VulnDbError + '_ {
    move |source| VulnDbError::Storage {
        path: path.to_path_buf(),
        source,
    }
}

fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Index key prefix of one (ecosystem, package).
pub(crate) fn package_prefix(ecosystem: &str, package: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(ecosystem.len() + package.len() + 2);
    key.extend_from_slice(ecosystem.as_bytes());
    key.push(0);
    key.extend_from_slice(package.as_bytes());
    key.push(0);
    key
}

impl VulnDb {
    /// Opens (or creates) the database in a directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VulnDbError> {
        Self::open_waiting(path, std::time::Duration::ZERO, |_| {})
    }

    /// Opens the database, waiting up to `wait` while another process holds it (an import, or
    /// a server re-matching its images). `waiting` is called once, with the path, when the
    /// first attempt finds the database busy.
    pub fn open_waiting(
        path: impl AsRef<Path>,
        wait: std::time::Duration,
        mut waiting: impl FnMut(&Path),
    ) -> Result<Self, VulnDbError> {
        let path = path.as_ref().to_path_buf();
        let to_error = storage_error(&path);
        let started = Instant::now();
        let mut reported = false;
        let db = loop {
            match sled::Config::new()
                .path(&path)
                .mode(sled::Mode::HighThroughput)
                .open()
            {
                Ok(db) => break db,
                Err(error) if is_lock_contention(&error) && started.elapsed() < wait => {
                    if !reported {
                        waiting(&path);
                        reported = true;
                    }
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(error) if is_lock_contention(&error) => {
                    return Err(VulnDbError::Busy {
                        path: path.clone(),
                        waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    });
                }
                Err(error) => return Err(to_error(error)),
            }
        };
        let open_tree = |name: &str| db.open_tree(name).map_err(&to_error);
        let cvss_by_id = open_tree("cvss_by_id")?;
        let (index, advisories, by_source, vex, sources, meta) = (
            open_tree("index")?,
            open_tree("advisories")?,
            open_tree("by_source")?,
            open_tree("vex")?,
            open_tree("sources")?,
            open_tree("meta")?,
        );
        let stored_schema = meta.get(SCHEMA_KEY).map_err(&to_error)?;
        match stored_schema
            .as_deref()
            .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
            .map(u32::from_be_bytes)
        {
            Some(SCHEMA_VERSION) => {}
            None if stored_schema.is_none() && index.is_empty() && sources.is_empty() => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(&to_error)?;
            }
            other => {
                return Err(VulnDbError::Schema {
                    path: path.clone(),
                    found: other.map_or_else(|| "none".to_owned(), |version| version.to_string()),
                    expected: SCHEMA_VERSION,
                });
            }
        }
        Ok(VulnDb {
            index,
            advisories,
            by_source,
            vex,
            sources,
            meta,
            cvss_by_id,
            db,
            path: path.clone(),
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn to_storage(&self) -> impl Fn(sled::Error) -> VulnDbError + '_ {
        storage_error(&self.path)
    }

    /// Imports files and directories. Each file (or directory of loose records) is one source,
    /// replaced as a whole; bad records are skipped and listed in the report.
    pub fn import_paths(
        &self,
        paths: &[PathBuf],
        limits: &ImportLimits,
    ) -> Result<ImportReport, VulnDbError> {
        let units = import::discover_sources(paths)?;
        let mut report = ImportReport::default();
        let mut recognised_any = false;
        for unit in &units {
            match self.import_unit(unit, limits, &mut report)? {
                Some(status) => {
                    recognised_any = true;
                    report.sources.push(status);
                }
                None => report.ignored.push(unit.name()),
            }
        }
        self.db.flush().map_err(self.to_storage())?;
        if recognised_any {
            self.raise_generation()?;
        }
        if !recognised_any && let Some(first) = paths.first() {
            return Err(VulnDbError::Unrecognised {
                path: first.clone(),
            });
        }
        Ok(report)
    }

    fn source_id(&self, name: &str) -> Result<u32, VulnDbError> {
        if let Some(existing) = self
            .sources
            .get(name.as_bytes())
            .map_err(self.to_storage())?
        {
            let status: SourceStatus =
                serde_json::from_slice(&existing).map_err(|error| VulnDbError::Corrupt {
                    key: format!("sources/{name}"),
                    message: error.to_string(),
                })?;
            return Ok(status.id);
        }
        let next = self
            .meta
            .update_and_fetch(b"next_source_id", |current| {
                let value = current
                    .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
                    .map_or(0, u32::from_be_bytes);
                Some(value.wrapping_add(1).to_be_bytes().to_vec())
            })
            .map_err(self.to_storage())?;
        Ok(next
            .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
            .map_or(0, u32::from_be_bytes))
    }

    /// Removes everything a source wrote before.
    fn clear_source(&self, source_id: u32) -> Result<(), VulnDbError> {
        let prefix = source_id.to_be_bytes();
        let mut index_batch = sled::Batch::default();
        let mut cvss_batch = sled::Batch::default();
        let mut chunk_batch = sled::Batch::default();
        for item in self.by_source.scan_prefix(prefix) {
            let (chunk_key, blob) = item.map_err(self.to_storage())?;
            let keys: Vec<(u8, Vec<u8>)> =
                postcard::from_bytes(&blob).map_err(|error| VulnDbError::Corrupt {
                    key: format!("by_source/{source_id}"),
                    message: error.to_string(),
                })?;
            for (tree, key) in keys {
                match tree {
                    OWNED_CVSS => cvss_batch.remove(key),
                    _ => index_batch.remove(key),
                }
            }
            chunk_batch.remove(chunk_key);
        }
        self.index
            .apply_batch(index_batch)
            .map_err(self.to_storage())?;
        self.cvss_by_id
            .apply_batch(cvss_batch)
            .map_err(self.to_storage())?;
        self.by_source
            .apply_batch(chunk_batch)
            .map_err(self.to_storage())?;
        for tree in [&self.advisories, &self.vex] {
            let mut batch = sled::Batch::default();
            for item in tree.scan_prefix(prefix) {
                let (key, _) = item.map_err(self.to_storage())?;
                batch.remove(key);
            }
            tree.apply_batch(batch).map_err(self.to_storage())?;
        }
        Ok(())
    }

    fn import_unit(
        &self,
        unit: &SourceUnit,
        limits: &ImportLimits,
        report: &mut ImportReport,
    ) -> Result<Option<SourceStatus>, VulnDbError> {
        let started = Instant::now();
        let name = unit.name();
        let source_id = self.source_id(&name)?;
        // Until the import completes, status shows the source as incomplete, not its old counts.
        self.record_source(&name, source_id, "incomplete", (0, 0, 0, 0), started)?;
        self.clear_source(source_id)?;
        let mut sink = StoreSink {
            db: self,
            source_name: name.clone(),
            source_id,
            index_batch: sled::Batch::default(),
            owned_keys: Vec::new(),
            cvss_batch: sled::Batch::default(),
            chunk: 0,
            batch_entries: limits.write_batch_entries.max(1),
            advisory_batch: sled::Batch::default(),
            pending: 0,
            advisories: 0,
            affected_entries: 0,
            vex_statements: 0,
            issues: 0,
            report,
        };
        let summary = import::import_unit(unit, limits, &mut sink)?;
        sink.flush()?;
        let (advisories, affected_entries, vex_statements, issues) = (
            sink.advisories,
            sink.affected_entries,
            sink.vex_statements,
            sink.issues,
        );
        let Some(format) = summary.format.filter(|_| summary.recognised) else {
            if issues == 0 {
                self.sources
                    .remove(name.as_bytes())
                    .map_err(self.to_storage())?;
                return Ok(None);
            }
            // Nothing imported but bad records were found: keep the source so status shows it.
            return Ok(Some(self.record_source(
                &name,
                source_id,
                "unrecognised",
                (0, 0, 0, issues),
                started,
            )?));
        };
        Ok(Some(self.record_source(
            &name,
            source_id,
            format.as_str(),
            (advisories, affected_entries, vex_statements, issues),
            started,
        )?))
    }

    fn record_source(
        &self,
        name: &str,
        source_id: u32,
        format: &str,
        counts: (u64, u64, u64, u64),
        started: Instant,
    ) -> Result<SourceStatus, VulnDbError> {
        let (advisories, affected_entries, vex_statements, issues) = counts;
        let status = SourceStatus {
            name: name.to_owned(),
            id: source_id,
            format: format.to_owned(),
            advisories,
            affected_entries,
            vex_statements,
            issues,
            imported_at: rfc3339_now(),
            import_millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let encoded = serde_json::to_vec(&status).map_err(|error| VulnDbError::Corrupt {
            key: format!("sources/{name}"),
            message: error.to_string(),
        })?;
        self.sources
            .insert(name.as_bytes(), encoded)
            .map_err(self.to_storage())?;
        Ok(status)
    }

    /// What the database holds: every source with its counts and import time.
    pub fn status(&self) -> Result<DbStatus, VulnDbError> {
        let mut sources = Vec::new();
        for item in self.sources.iter() {
            let (key, value) = item.map_err(self.to_storage())?;
            let status: SourceStatus =
                serde_json::from_slice(&value).map_err(|error| VulnDbError::Corrupt {
                    key: format!("sources/{}", String::from_utf8_lossy(&key)),
                    message: error.to_string(),
                })?;
            sources.push(status);
        }
        Ok(DbStatus {
            path: self.path.clone(),
            advisories: sources.iter().map(|source| source.advisories).sum(),
            affected_entries: sources.iter().map(|source| source.affected_entries).sum(),
            vex_statements: sources.iter().map(|source| source.vex_statements).sum(),
            sources,
        })
    }

    /// Raises the change marker after an import; written to a temporary file and renamed, so
    /// a reader sees the old number or the new one.
    fn raise_generation(&self) -> Result<(), VulnDbError> {
        let next = Self::generation(&self.path).unwrap_or(0) + 1;
        let target = self.path.join(GENERATION_FILE);
        let temporary = self.path.join(format!("{GENERATION_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            std::fs::write(&temporary, format!("{next}\n"))?;
            std::fs::rename(&temporary, &target)
        };
        write().map_err(|source| VulnDbError::Write {
            path: target.clone(),
            source,
        })
    }

    /// The change marker of the database in `path`, read without opening the database: a
    /// number raised by every import; `None` before the first import.
    pub fn generation(path: &Path) -> Option<u64> {
        std::fs::read_to_string(path.join(GENERATION_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Number of indexed (advisory, package) entries.
    pub fn index_len(&self) -> usize {
        self.index.len()
    }

    /// Durably writes everything imported so far.
    pub fn flush(&self) -> Result<(), VulnDbError> {
        self.db.flush().map(|_| ()).map_err(self.to_storage())
    }
}

struct StoreSink<'a> {
    db: &'a VulnDb,
    source_name: String,
    source_id: u32,
    index_batch: sled::Batch,
    owned_keys: Vec<(u8, Vec<u8>)>,
    cvss_batch: sled::Batch,
    chunk: u32,
    batch_entries: usize,
    advisory_batch: sled::Batch,
    pending: usize,
    advisories: u64,
    affected_entries: u64,
    vex_statements: u64,
    issues: u64,
    report: &'a mut ImportReport,
}

impl StoreSink<'_> {
    fn flush(&mut self) -> Result<(), VulnDbError> {
        let to_error = self.db.to_storage();
        if !self.owned_keys.is_empty() {
            let mut chunk_key = self.source_id.to_be_bytes().to_vec();
            chunk_key.extend_from_slice(&self.chunk.to_be_bytes());
            let encoded = Self::encode(&self.owned_keys, "by_source")?;
            self.db
                .by_source
                .insert(chunk_key, encoded)
                .map_err(&to_error)?;
            self.chunk = self.chunk.wrapping_add(1);
            self.owned_keys.clear();
        }
        self.db
            .index
            .apply_batch(std::mem::take(&mut self.index_batch))
            .map_err(&to_error)?;
        self.db
            .advisories
            .apply_batch(std::mem::take(&mut self.advisory_batch))
            .map_err(&to_error)?;
        self.db
            .cvss_by_id
            .apply_batch(std::mem::take(&mut self.cvss_batch))
            .map_err(&to_error)?;
        self.pending = 0;
        Ok(())
    }

    fn encode<T: Serialize>(value: &T, key: &str) -> Result<Vec<u8>, VulnDbError> {
        postcard::to_stdvec(value).map_err(|error| VulnDbError::Corrupt {
            key: key.to_owned(),
            message: error.to_string(),
        })
    }

    fn valid_key_part(text: &str) -> bool {
        !text.is_empty() && !text.contains('\0')
    }
}

impl RecordSink for StoreSink<'_> {
    fn advisory(&mut self, advisory: Advisory, _format: FeedFormat) -> Result<(), VulnDbError> {
        if !Self::valid_key_part(&advisory.id)
            || advisory.affected.iter().any(|affected| {
                !Self::valid_key_part(&affected.ecosystem)
                    || !Self::valid_key_part(&affected.package)
            })
        {
            let source_name = self.source_name.clone();
            self.issue(ImportIssue::new(
                &source_name,
                Some(advisory.id.chars().take(64).collect()),
                "empty or NUL-containing id, ecosystem or package name".to_owned(),
            ));
            return Ok(());
        }
        let source_prefix = self.source_id.to_be_bytes();
        let mut advisory_key = source_prefix.to_vec();
        advisory_key.extend_from_slice(advisory.id.as_bytes());
        if matches!(
            advisory.severity.source,
            SeveritySource::CvssV4 | SeveritySource::CvssV3 | SeveritySource::CvssV2
        ) {
            let evidence = CvssEvidence {
                advisory_id: advisory.id.clone(),
                severity: advisory.severity.clone(),
            };
            let encoded = Self::encode(&evidence, &advisory.id)?;
            for identifier in std::iter::once(&advisory.id).chain(advisory.aliases.iter()) {
                if !Self::valid_key_part(identifier) {
                    continue;
                }
                let mut key = identifier.as_bytes().to_vec();
                key.push(0);
                key.extend_from_slice(&advisory_key);
                self.cvss_batch.insert(key.clone(), encoded.clone());
                self.owned_keys.push((OWNED_CVSS, key));
            }
        }
        let meta = AdvisoryMeta {
            id: advisory.id.clone(),
            aliases: advisory.aliases,
            summary: advisory.summary,
            severity: advisory.severity,
            withdrawn: advisory.withdrawn,
            informational: advisory.informational,
        };
        self.advisory_batch
            .insert(advisory_key.clone(), Self::encode(&meta, &advisory.id)?);
        for (index, affected) in advisory.affected.into_iter().enumerate() {
            let ecosystem = ecosystem_key(&affected.ecosystem);
            let package = package_key(&ecosystem, &affected.package);
            let mut key = package_prefix(&ecosystem, &package);
            key.extend_from_slice(&advisory_key);
            // One advisory can list the same package twice (GHSA branches, Ubuntu variants):
            // the position keeps both entries.
            key.push(0);
            key.extend_from_slice(&u32::try_from(index).unwrap_or(u32::MAX).to_be_bytes());
            let value: &Affected = &affected;
            self.index_batch
                .insert(key.clone(), Self::encode(value, &advisory.id)?);
            self.owned_keys.push((OWNED_INDEX, key));
            self.affected_entries += 1;
            self.pending += 1;
        }
        self.advisories += 1;
        if self.pending >= self.batch_entries {
            self.flush()?;
        }
        Ok(())
    }

    fn vex_statement(&mut self, statement: VexStatement) -> Result<(), VulnDbError> {
        let mut key = self.source_id.to_be_bytes().to_vec();
        key.extend_from_slice(
            &u32::try_from(self.vex_statements)
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        let encoded = Self::encode(&statement, &statement.vulnerability)?;
        self.db
            .vex
            .insert(key, encoded)
            .map_err(self.db.to_storage())?;
        self.vex_statements += 1;
        Ok(())
    }

    fn issue(&mut self, issue: ImportIssue) {
        tracing::warn!(file = %issue.file, entry = ?issue.entry, message = %issue.message, "skipped a bad vulnerability record");
        self.issues += 1;
        if self.report.issues.len() < MAX_REPORTED_ISSUES {
            self.report.issues.push(issue);
        }
    }
}

impl std::fmt::Display for DbStatus {
    /// The `palisade vulndb status` table: one line per source, then totals.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(formatter, "vulnerability database: {}", self.path.display())?;
        writeln!(
            formatter,
            "{:<22} {:>10} {:>10} {:>6} {:>7} {:>9}  {:<20}  source",
            "format", "advisories", "entries", "vex", "issues", "import ms", "imported at"
        )?;
        for source in &self.sources {
            writeln!(
                formatter,
                "{:<22} {:>10} {:>10} {:>6} {:>7} {:>9}  {:<20}  {}",
                source.format,
                source.advisories,
                source.affected_entries,
                source.vex_statements,
                source.issues,
                source.import_millis,
                source.imported_at,
                source.name
            )?;
        }
        write!(
            formatter,
            "total: {} sources, {} advisories, {} entries, {} VEX statements",
            self.sources.len(),
            self.advisories,
            self.affected_entries,
            self.vex_statements
        )
    }
}
