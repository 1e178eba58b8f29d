//! Tails a JSON-lines audit log (the API server's `--audit-log-path`). The offset of the last
//! complete line whose alerts the sink has stored is persisted (sled, flushed before it counts),
//! together with the file's inode, so a restart resumes exactly there: across appends, partial
//! last lines, truncation (copytruncate) and rotation (rename + new file), also when the
//! rotation happened while the watcher was down.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::decode::{DecodeLimits, Decoded, Skip, SkipReason, decode_line};
use crate::error::AuditError;
use crate::pipeline::AuditPipeline;
use crate::sink::AlertSink;

/// Where a tailed file was read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileOffset {
    /// Device of the file.
    pub device: u64,
    /// Inode of the file, to recognise it after a rename.
    pub inode: u64,
    /// Bytes consumed: the end of the last complete line processed.
    pub offset: u64,
}

/// Persistent offsets, one per tailed path.
#[derive(Clone)]
pub struct OffsetStore {
    tree: sled::Tree,
    path: PathBuf,
}

impl OffsetStore {
    /// Opens (or creates) the store in the sled database at `directory`.
    pub fn open(directory: &Path) -> Result<Self, AuditError> {
        let database = sled::open(directory).map_err(|error| AuditError::Store {
            path: directory.to_path_buf(),
            reason: error.to_string(),
        })?;
        Self::from_db(&database, directory)
    }

    /// The store inside an open sled database.
    pub fn from_db(database: &sled::Db, directory: &Path) -> Result<Self, AuditError> {
        let tree = database
            .open_tree("tail_offsets")
            .map_err(|error| AuditError::Store {
                path: directory.to_path_buf(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            tree,
            path: directory.to_path_buf(),
        })
    }

    /// The offset stored for a tailed path.
    pub fn get(&self, tailed: &Path) -> Result<Option<FileOffset>, AuditError> {
        let key = tailed.to_string_lossy();
        let Some(bytes) = self
            .tree
            .get(key.as_bytes())
            .map_err(|error| self.error(error))?
        else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// Stores an offset and waits until it is on disk.
    pub async fn put(&self, tailed: &Path, offset: FileOffset) -> Result<(), AuditError> {
        let key = tailed.to_string_lossy();
        let bytes = serde_json::to_vec(&offset).map_err(|error| AuditError::Store {
            path: self.path.clone(),
            reason: error.to_string(),
        })?;
        self.tree
            .insert(key.as_bytes(), bytes)
            .map_err(|error| self.error(error))?;
        // sled flushes every 500 ms on its own; an offset counts only once it is on disk. The
        // blocking flush runs on a blocking thread: sled's flush_async can hang under
        // concurrent callers (sled issue 1308).
        let tree = self.tree.clone();
        tokio::task::spawn_blocking(move || tree.flush())
            .await
            .map_err(|error| AuditError::Sink(format!("offset flush task failed: {error}")))?
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    fn error(&self, error: sled::Error) -> AuditError {
        AuditError::Store {
            path: self.path.clone(),
            reason: error.to_string(),
        }
    }
}

/// Tailing settings.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// The log file.
    pub path: PathBuf,
    /// How often the file is checked for new data.
    pub poll_interval: Duration,
    /// Size limits; `max_event_bytes` bounds a line.
    pub limits: DecodeLimits,
    /// Bytes read per step.
    pub read_chunk: usize,
}

impl TailConfig {
    /// Defaults for a path: 500 ms polling, default limits, 1 MiB reads.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            poll_interval: Duration::from_millis(500),
            limits: DecodeLimits::default(),
            read_chunk: 1 << 20,
        }
    }
}

/// Counts of a tailer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Events processed.
    pub events: u64,
    /// Entries skipped.
    pub skipped: u64,
    /// Truncations seen.
    pub truncations: u64,
    /// Rotations seen.
    pub rotations: u64,
    /// Rotated files that could not be found to finish reading (their rest is lost).
    pub rotated_files_lost: u64,
}

/// Follows one audit log file.
pub struct FileTailer {
    config: TailConfig,
    store: OffsetStore,
    pipeline: Arc<AuditPipeline>,
    sink: Arc<dyn AlertSink>,
    position: Option<FileOffset>,
    discarding_long_line: bool,
    stats: TailStats,
}

fn identity_of(metadata: &std::fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

/// Finds a file with this inode next to `path` (the rotated log, e.g. audit.log.1).
fn find_rotated(path: &Path, device: u64, inode: u64) -> Option<PathBuf> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::read_dir(directory)
        .ok()?
        .flatten()
        .find_map(|entry| {
            let metadata = entry.metadata().ok()?;
            (metadata.is_file() && identity_of(&metadata) == (device, inode)).then(|| entry.path())
        })
}

impl FileTailer {
    /// A tailer resuming from the stored offset of `config.path`.
    pub fn new(
        config: TailConfig,
        store: OffsetStore,
        pipeline: Arc<AuditPipeline>,
        sink: Arc<dyn AlertSink>,
    ) -> Result<Self, AuditError> {
        let position = store.get(&config.path)?;
        Ok(Self {
            config,
            store,
            pipeline,
            sink,
            position,
            discarding_long_line: false,
            stats: TailStats::default(),
        })
    }

    /// Counts so far.
    pub fn stats(&self) -> &TailStats {
        &self.stats
    }

    /// Polls until `shutdown` turns true.
    pub async fn run(
        mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<TailStats, AuditError> {
        loop {
            if let Err(error) = self.poll_once().await {
                tracing::warn!(path = %self.config.path.display(), %error, "audit log tail failed, retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return Ok(self.stats);
                    }
                }
            }
        }
    }

    /// Processes everything new in the file (and the rest of a rotated file). Returns the
    /// number of events processed.
    pub async fn poll_once(&mut self) -> Result<u64, AuditError> {
        let before = self.stats.events;
        let metadata = match std::fs::metadata(&self.config.path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(AuditError::Read {
                    path: self.config.path.clone(),
                    source,
                });
            }
        };
        let (device, inode) = identity_of(&metadata);
        match self.position {
            Some(position) if (position.device, position.inode) == (device, inode) => {
                if metadata.len() < position.offset {
                    self.stats.truncations += 1;
                    tracing::info!(path = %self.config.path.display(), "audit log truncated, reading from the start");
                    self.position = Some(FileOffset {
                        offset: 0,
                        ..position
                    });
                    self.discarding_long_line = false;
                }
            }
            Some(position) => {
                self.stats.rotations += 1;
                match find_rotated(&self.config.path, position.device, position.inode) {
                    Some(rotated) => {
                        // A rotated file no longer grows: its last line is complete even
                        // without a newline.
                        self.read_from(&rotated, position, true).await?;
                    }
                    None => {
                        self.stats.rotated_files_lost += 1;
                        tracing::warn!(path = %self.config.path.display(), "rotated audit log not found, its unread rest is lost");
                    }
                }
                self.discarding_long_line = false;
                let start = FileOffset {
                    device,
                    inode,
                    offset: 0,
                };
                self.store.put(&self.config.path, start).await?;
                self.position = Some(start);
            }
            None => {
                self.position = Some(FileOffset {
                    device,
                    inode,
                    offset: 0,
                })
            }
        }
        if let Some(position) = self.position {
            let path = self.config.path.clone();
            self.read_from(&path, position, false).await?;
        }
        Ok(self.stats.events - before)
    }

    /// Reads complete lines of `path` from `position`, processing and committing them.
    async fn read_from(
        &mut self,
        path: &Path,
        position: FileOffset,
        final_read: bool,
    ) -> Result<(), AuditError> {
        let read_error = |source| AuditError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(read_error)?;
        file.seek(SeekFrom::Start(position.offset))
            .map_err(read_error)?;
        let max_line = self.config.limits.max_event_bytes.max(1);
        let mut offset = position.offset;
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; self.config.read_chunk.max(4096)];
        loop {
            let read = file.read(&mut chunk).map_err(read_error)?;
            let at_end = read == 0;
            pending.extend_from_slice(&chunk[..read]);
            let mut batch = Decoded::default();
            let mut consumed = 0usize;
            while let Some(newline) = pending[consumed..].iter().position(|byte| *byte == b'\n') {
                let line = &pending[consumed..consumed + newline];
                let line_number = 0;
                if self.discarding_long_line {
                    self.discarding_long_line = false;
                } else if line.len() > max_line {
                    batch.skips.push(Skip {
                        reason: SkipReason::TooLarge,
                        detail: format!(
                            "line at byte {} of {} bytes",
                            offset + consumed as u64,
                            line.len()
                        ),
                    });
                } else {
                    decode_line(line, line_number, &self.config.limits, &mut batch);
                }
                consumed += newline + 1;
            }
            if at_end && final_read && consumed < pending.len() {
                let line = &pending[consumed..];
                if !self.discarding_long_line && line.len() <= max_line {
                    decode_line(line, 0, &self.config.limits, &mut batch);
                }
                consumed = pending.len();
            }
            pending.drain(..consumed);
            offset += consumed as u64;
            if pending.len() > max_line {
                // A line longer than any event: skip it up to its newline, whenever that comes.
                batch.skips.push(Skip {
                    reason: SkipReason::TooLarge,
                    detail: format!("line at byte {offset} longer than {max_line} bytes"),
                });
                offset += pending.len() as u64;
                pending.clear();
                self.discarding_long_line = true;
            }
            if !batch.events.is_empty() || !batch.skips.is_empty() || offset != position.offset {
                self.commit(batch, FileOffset { offset, ..position })
                    .await?;
            }
            if at_end {
                return Ok(());
            }
        }
    }

    /// Evaluates a batch, stores its alerts, then makes the offset durable.
    async fn commit(&mut self, batch: Decoded, offset: FileOffset) -> Result<(), AuditError> {
        self.stats.skipped += batch.skips.len() as u64;
        for skip in &batch.skips {
            tracing::debug!(path = %self.config.path.display(), reason = skip.reason.code(), detail = %skip.detail, "audit entry skipped");
        }
        let mut alerts = Vec::new();
        for event in &batch.events {
            alerts.extend(
                self.pipeline
                    .process(event)
                    .iter()
                    .map(|alert| alert.to_proto()),
            );
        }
        if !alerts.is_empty() {
            self.sink.publish(alerts).await?;
        }
        self.pipeline.flush()?;
        self.stats.events += batch.events.len() as u64;
        // The offset of a rotated file is stored under the log's path too: its inode tells a
        // restart to finish that file first.
        self.store.put(&self.config.path, offset).await?;
        self.position = Some(offset);
        Ok(())
    }
}
