//! Progress of long scans (registry pulls, big layers), reported to a sink the caller chooses.

// Progress of blocking scan work on its own threads: std's clock, not tokio's.
#![allow(clippy::disallowed_types)]

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// One step of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A layer starts streaming.
    LayerStarted {
        index: usize,
        total: usize,
        digest: String,
        /// Compressed size from the manifest (0 when unknown).
        size: u64,
    },
    /// A layer has been read, applied and verified.
    LayerFinished {
        index: usize,
        total: usize,
        digest: String,
        compressed_bytes: u64,
        decompressed_bytes: u64,
    },
}

/// Receives progress events; implementations must be cheap, they run on the scan's threads.
pub trait Progress: Send + Sync {
    /// Called for each event, in order.
    fn report(&self, event: ProgressEvent);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _event: ProgressEvent) {}
}

/// Writes one line per layer to a writer (stderr for the CLI), so stdout stays the report.
pub struct LineProgress<W: Write + Send> {
    output: Mutex<W>,
    started: Mutex<Option<Instant>>,
}

impl<W: Write + Send> LineProgress<W> {
    /// Progress lines written to `output`.
    pub fn new(output: W) -> Self {
        LineProgress {
            output: Mutex::new(output),
            started: Mutex::new(None),
        }
    }
}

/// Progress lines on standard error.
pub fn stderr_progress() -> LineProgress<std::io::Stderr> {
    LineProgress::new(std::io::stderr())
}

fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map(|(_, hex)| hex).unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

impl<W: Write + Send> Progress for LineProgress<W> {
    fn report(&self, event: ProgressEvent) {
        let Ok(mut output) = self.output.lock() else {
            return;
        };
        let line = match event {
            ProgressEvent::LayerStarted {
                index,
                total,
                digest,
                size,
            } => {
                if let Ok(mut started) = self.started.lock() {
                    *started = Some(Instant::now());
                }
                format!(
                    "layer {}/{total} {} ({} MiB) ...",
                    index + 1,
                    short(&digest),
                    size / (1024 * 1024)
                )
            }
            ProgressEvent::LayerFinished {
                index,
                total,
                digest,
                compressed_bytes,
                decompressed_bytes,
            } => {
                let elapsed = self
                    .started
                    .lock()
                    .ok()
                    .and_then(|started| started.map(|at| at.elapsed().as_secs_f64()))
                    .unwrap_or_default();
                format!(
                    "layer {}/{total} {} done: {:.1} MiB read, {:.1} MiB unpacked in {elapsed:.1}s",
                    index + 1,
                    short(&digest),
                    compressed_bytes as f64 / 1048576.0,
                    decompressed_bytes as f64 / 1048576.0
                )
            }
        };
        // Progress must never fail a scan.
        let _ = writeln!(output, "{line}");
    }
}
