//! The durable spool: every alert not yet acknowledged by the server, on disk, in sequence
//! order. Alerts get consecutive sequence numbers as they are appended; an ack removes every
//! alert up to a sequence number. The spool is bounded in bytes: when full it evicts the
//! oldest alerts, counts them, and reports how many so the caller raises an alert about it.
//!
//! Durability: an alert is durable only after [`Spool::flush`] returned (sled writes back
//! every 500 ms on its own; the agent flushes after each batch of appends). Storage sits
//! behind [`SpoolStore`] so another embedded store can replace sled.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use palisade_proto::v1::Alert;
use prost::Message;

use crate::error::LinkError;

/// What the spool needs from a key-value store: ordered u64 keys and a few counters.
pub trait SpoolStore: Send + Sync {
    /// Stores a record.
    fn put(&self, seq: u64, bytes: &[u8]) -> Result<(), String>;
    /// Removes a record.
    fn remove(&self, seq: u64) -> Result<Option<usize>, String>;
    /// Records with seq > `after`, in order, at most `limit`.
    fn scan_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, String>;
    /// Every (seq, size), in order.
    fn sizes(&self) -> Result<Vec<(u64, usize)>, String>;
    /// Reads a counter.
    fn counter(&self, name: &str) -> Result<u64, String>;
    /// Writes a counter.
    fn set_counter(&self, name: &str, value: u64) -> Result<(), String>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), String>;
}

/// [`SpoolStore`] on sled.
#[derive(Debug)]
pub struct SledStore {
    alerts: sled::Tree,
    meta: sled::Tree,
    db: sled::Db,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let db = palisade_core::storage::open_sled(
            &sled::Config::new().path(dir).flush_every_ms(Some(500)),
        )
        .map_err(|error| error.to_string())?;
        let alerts = db.open_tree("alerts").map_err(|error| error.to_string())?;
        let meta = db.open_tree("meta").map_err(|error| error.to_string())?;
        Ok(Self { alerts, meta, db })
    }
}

impl SpoolStore for SledStore {
    fn put(&self, seq: u64, bytes: &[u8]) -> Result<(), String> {
        self.alerts
            .insert(seq.to_be_bytes(), bytes)
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    fn remove(&self, seq: u64) -> Result<Option<usize>, String> {
        self.alerts
            .remove(seq.to_be_bytes())
            .map(|old| old.map(|value| value.len()))
            .map_err(|error| error.to_string())
    }

    fn scan_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, String> {
        let start = after.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for entry in self.alerts.range(start..).take(limit) {
            let (key, value) = entry.map_err(|error| error.to_string())?;
            let key_bytes: [u8; 8] = key.as_ref().try_into().map_err(|_| "bad key".to_string())?;
            out.push((u64::from_be_bytes(key_bytes), value.to_vec()));
        }
        Ok(out)
    }

    fn sizes(&self) -> Result<Vec<(u64, usize)>, String> {
        let mut out = Vec::new();
        for entry in self.alerts.iter() {
            let (key, value) = entry.map_err(|error| error.to_string())?;
            let key_bytes: [u8; 8] = key.as_ref().try_into().map_err(|_| "bad key".to_string())?;
            out.push((u64::from_be_bytes(key_bytes), value.len()));
        }
        Ok(out)
    }

    fn counter(&self, name: &str) -> Result<u64, String> {
        match self.meta.get(name).map_err(|error| error.to_string())? {
            Some(value) => {
                let bytes: [u8; 8] = value
                    .as_ref()
                    .try_into()
                    .map_err(|_| format!("bad counter {name}"))?;
                Ok(u64::from_be_bytes(bytes))
            }
            None => Ok(0),
        }
    }

    fn set_counter(&self, name: &str, value: u64) -> Result<(), String> {
        self.meta
            .insert(name, &value.to_be_bytes())
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    fn flush(&self) -> Result<(), String> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}

#[derive(Debug, Default)]
struct Index {
    /// (seq, size) of every held alert, oldest first.
    entries: std::collections::VecDeque<(u64, usize)>,
    bytes: usize,
    next_seq: u64,
    acked: u64,
    evicted: u64,
}

/// Result of appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Sequence number of the alert.
    pub seq: u64,
    /// Older alerts evicted to make room.
    pub evicted: u64,
}

/// The spool.
pub struct Spool {
    store: Box<dyn SpoolStore>,
    index: Mutex<Index>,
    max_bytes: usize,
    path: PathBuf,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Spool")
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

const NEXT_SEQ: &str = "next_seq";
const ACKED: &str = "acked";
const EVICTED: &str = "evicted";

impl Spool {
    /// Opens the spool in `dir`, bounded to `max_bytes` of encoded alerts.
    pub fn open(dir: &Path, max_bytes: usize) -> Result<Self, LinkError> {
        std::fs::create_dir_all(dir).map_err(|error| LinkError::io(dir, error))?;
        let store = SledStore::open(dir).map_err(|message| LinkError::Spool {
            path: dir.to_path_buf(),
            message,
        })?;
        Self::with_store(Box::new(store), dir, max_bytes)
    }

    /// A spool over any store.
    pub fn with_store(
        store: Box<dyn SpoolStore>,
        path: &Path,
        max_bytes: usize,
    ) -> Result<Self, LinkError> {
        let error = |message: String| LinkError::Spool {
            path: path.to_path_buf(),
            message,
        };
        let sizes = store.sizes().map_err(error)?;
        let acked = store.counter(ACKED).map_err(error)?;
        let stored_next = store.counter(NEXT_SEQ).map_err(error)?;
        let evicted = store.counter(EVICTED).map_err(error)?;
        let highest = sizes.last().map(|(seq, _)| *seq).unwrap_or(0);
        let index = Index {
            bytes: sizes.iter().map(|(_, size)| size).sum(),
            entries: sizes.into_iter().collect(),
            // the counter may lag the records by one flush: never reuse a number
            next_seq: stored_next.max(highest + 1).max(acked + 1).max(1),
            acked,
            evicted,
        };
        Ok(Self {
            store,
            index: Mutex::new(index),
            max_bytes: max_bytes.max(1),
            path: path.to_path_buf(),
        })
    }

    fn error(&self, message: String) -> LinkError {
        LinkError::Spool {
            path: self.path.clone(),
            message,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Index>, LinkError> {
        self.index
            .lock()
            .map_err(|_| self.error("spool index lock poisoned".into()))
    }

    /// Appends an alert; evicts the oldest alerts if the spool is over its bound.
    pub fn append(&self, alert: &Alert) -> Result<Appended, LinkError> {
        let bytes = alert.encode_to_vec();
        let mut index = self.lock()?;
        let seq = index.next_seq;
        self.store
            .put(seq, &bytes)
            .map_err(|message| self.error(message))?;
        index.next_seq += 1;
        self.store
            .set_counter(NEXT_SEQ, index.next_seq)
            .map_err(|message| self.error(message))?;
        index.entries.push_back((seq, bytes.len()));
        index.bytes += bytes.len();
        let mut evicted = 0;
        while index.bytes > self.max_bytes && index.entries.len() > 1 {
            let Some((old_seq, size)) = index.entries.pop_front() else {
                break;
            };
            self.store
                .remove(old_seq)
                .map_err(|message| self.error(message))?;
            index.bytes -= size;
            evicted += 1;
        }
        if evicted > 0 {
            index.evicted += evicted;
            self.store
                .set_counter(EVICTED, index.evicted)
                .map_err(|message| self.error(message))?;
        }
        Ok(Appended { seq, evicted })
    }

    /// Makes every append so far durable.
    pub fn flush(&self) -> Result<(), LinkError> {
        self.store.flush().map_err(|message| self.error(message))
    }

    /// Removes every alert with seq <= `up_to_seq` (the server holds them durably).
    pub fn ack(&self, up_to_seq: u64) -> Result<usize, LinkError> {
        let mut index = self.lock()?;
        // an ack past what was ever appended acknowledges what was appended
        let up_to_seq = up_to_seq.min(index.next_seq.saturating_sub(1));
        let mut removed = 0;
        while let Some(&(seq, size)) = index.entries.front() {
            if seq > up_to_seq {
                break;
            }
            self.store
                .remove(seq)
                .map_err(|message| self.error(message))?;
            index.entries.pop_front();
            index.bytes -= size;
            removed += 1;
        }
        if up_to_seq > index.acked {
            index.acked = up_to_seq;
            self.store
                .set_counter(ACKED, up_to_seq)
                .map_err(|message| self.error(message))?;
        }
        Ok(removed)
    }

    /// Up to `limit` alerts with seq > `after`, in order.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Alert)>, LinkError> {
        let raw = self
            .store
            .scan_after(after, limit)
            .map_err(|message| self.error(message))?;
        raw.into_iter()
            .map(|(seq, bytes)| {
                Alert::decode(bytes.as_slice())
                    .map(|alert| (seq, alert))
                    .map_err(|error| self.error(format!("alert {seq} does not decode: {error}")))
            })
            .collect()
    }

    /// Highest acked sequence number.
    pub fn acked(&self) -> u64 {
        self.lock().map(|index| index.acked).unwrap_or(0)
    }

    /// Sequence number the next alert gets.
    pub fn next_seq(&self) -> u64 {
        self.lock().map(|index| index.next_seq).unwrap_or(0)
    }

    /// Alerts held.
    pub fn len(&self) -> usize {
        self.lock().map(|index| index.entries.len()).unwrap_or(0)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.lock().map(|index| index.bytes).unwrap_or(0)
    }

    /// Alerts evicted since the spool was created.
    pub fn evicted(&self) -> u64 {
        self.lock().map(|index| index.evicted).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
