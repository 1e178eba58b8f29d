//! The durable log: append-only topics of records with per-consumer offsets.
//!
//! Contract:
//! - [`Topic::append`] returns only after the batch is durable; a caller may acknowledge the
//!   records to its own client as soon as it returns.
//! - Records carrying a dedupe key are stored at most once per topic: appending a record whose
//!   key is already present returns the existing offset instead (idempotent producers).
//! - Offsets are dense and increasing. Readers only see durable records, so a consumer never
//!   processes a record that a crash could take back.
//! - Delivery to consumers is at-least-once: a consumer records its offset after processing and
//!   starts from it after a restart; consumers deduplicate by the records' stable ids.
//! - Every data record is a protobuf message carrying its tenant as field 2, and its dedupe key
//!   starts with the tenant and `/`. That is how [`Topic::erase_tenant`] finds a tenant's
//!   records: they are replaced by [`ControlRecord::Erased`] at the same offsets, and a
//!   [`ControlRecord::TenantErased`] record is appended for consumers (and replicas) to drop
//!   what they derived from them.

use std::sync::{Arc, Mutex};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tokio::sync::watch;

use crate::error::{CoreError, CoreResult};
use crate::storage::Store;

pub use control::{ControlRecord, record_tenant};

/// One record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Identity of the record for deduplication, starting with its tenant and `/` (for alerts:
    /// `tenant/alert-id`).
    pub dedupe_key: Option<Vec<u8>>,
    /// The encoded record.
    pub payload: Vec<u8>,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// What happened to each entry of an appended batch, in batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendResult {
    /// Stored at this offset.
    Appended(u64),
    /// Its dedupe key was already stored, at this offset.
    Duplicate(u64),
}

/// A named, durable, append-only sequence of records.
#[derive(Clone)]
pub struct Topic {
    inner: Arc<TopicInner>,
}

struct TopicInner {
    name: String,
    store: Store,
    records: sled::Tree,
    keys: sled::Tree,
    consumers: sled::Tree,
    /// Next offset to assign. Held while a batch is written so offsets are assigned in order.
    next_offset: Mutex<u64>,
    /// Offsets below this are durable and visible to readers.
    durable_end: watch::Sender<u64>,
    /// Held by the one appender flushing the store for everyone waiting.
    flusher: tokio::sync::Mutex<()>,
    /// Held while a tenant's records are erased, so erasures do not interleave.
    eraser: Mutex<()>,
    /// Tenants being erased: their records are refused until [`Topic::reopen_tenant`], so
    /// nothing of theirs lands after the erasure's marker.
    closed: Mutex<std::collections::HashSet<String>>,
    /// Batches waiting for the writer: one blocking task at a time writes every batch queued,
    /// in one transaction, instead of a thread per appender contending for the offsets.
    queue: Mutex<WriteQueue>,
}

/// Most entries written in one transaction by the writer.
const ENTRIES_PER_WRITE: usize = 8_192;

#[derive(Default)]
struct WriteQueue {
    pending: Vec<PendingBatch>,
    /// A writer task is running and will take what is queued.
    writing: bool,
}

/// What the writer answers an appender: each entry's result, and the end offset its batch
/// needs durable.
type WriteOutcome = CoreResult<(Vec<AppendResult>, u64)>;

struct PendingBatch {
    entries: Vec<LogEntry>,
    reply: tokio::sync::oneshot::Sender<WriteOutcome>,
}

/// The writer task's hold on the topic. Should the task end without emptying the queue (a
/// panic, or a runtime shutting down before it ran), it clears the writing flag so a later
/// appender starts another writer.
struct WriterGuard {
    inner: Arc<TopicInner>,
    /// The queue was emptied and the flag cleared by the writer itself.
    finished: bool,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if !self.finished
            && let Ok(mut queue) = self.inner.queue.lock()
        {
            queue.writing = false;
            // their senders go with them: each waiting appender gets "the writer stopped"
            // instead of waiting for a writer some later append would start
            queue.pending.clear();
        }
    }
}

/// Records erased from a topic in one step.
const ERASE_CHUNK: usize = 4_096;

/// What [`Topic::erase_tenant`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    /// Records of the tenant replaced by [`ControlRecord::Erased`].
    pub erased: u64,
    /// Offset of the [`ControlRecord::TenantErased`] record appended after them.
    pub marker: u64,
}

fn offset_key(offset: u64) -> [u8; 8] {
    offset.to_be_bytes()
}

fn decode_offset(tree: &str, key: &[u8], bytes: &[u8]) -> CoreResult<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| CoreError::Corrupt {
        tree: tree.to_string(),
        key: hex::encode(key),
        message: format!("expected an 8-byte offset, found {} bytes", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

impl Topic {
    /// Opens (or creates) the topic `name` in `store`.
    pub fn open(store: &Store, name: &str) -> CoreResult<Topic> {
        let records_name = format!("log/{name}/records");
        let records = store.raw_tree(&records_name)?;
        let keys = store.raw_tree(&format!("log/{name}/keys"))?;
        let consumers = store.raw_tree(&format!("log/{name}/consumers"))?;
        let next_offset = match records.last()? {
            Some((key, _)) => decode_offset(&records_name, &key, &key)? + 1,
            None => 0,
        };
        let (durable_end, _) = watch::channel(next_offset);
        Ok(Topic {
            inner: Arc::new(TopicInner {
                name: name.to_string(),
                store: store.clone(),
                records,
                keys,
                consumers,
                next_offset: Mutex::new(next_offset),
                durable_end,
                flusher: tokio::sync::Mutex::new(()),
                eraser: Mutex::new(()),
                queue: Mutex::new(WriteQueue::default()),
                closed: Mutex::default(),
            }),
        })
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Appends a batch and waits until it is durable.
    pub async fn append(&self, entries: Vec<LogEntry>) -> CoreResult<Vec<AppendResult>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let start_writer = {
            let mut queue = self.inner.lock_queue()?;
            queue.pending.push(PendingBatch { entries, reply });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            let mut guard = WriterGuard {
                inner: Arc::clone(&self.inner),
                finished: false,
            };
            tokio::task::spawn_blocking(move || {
                let inner = Arc::clone(&guard.inner);
                inner.drain_queue(&mut guard);
            });
        }
        let (results, end) = answer.await.map_err(|_| {
            CoreError::Task(format!("log {}: the writer stopped", self.inner.name))
        })??;
        self.wait_durable(end).await?;
        Ok(results)
    }

    /// Returns once every offset below `end` is durable. Group commit: one appender at a time
    /// flushes, and its flush covers every batch written before it began, so appenders waiting
    /// meanwhile usually find their batch durable without a flush of their own.
    async fn wait_durable(&self, end: u64) -> CoreResult<()> {
        loop {
            if *self.inner.durable_end.borrow() >= end {
                return Ok(());
            }
            let _flusher = self.inner.flusher.lock().await;
            if *self.inner.durable_end.borrow() >= end {
                return Ok(());
            }
            // Every batch below `written` was written before this flush begins.
            let written = *self.inner.next_offset.lock().map_err(|_| {
                CoreError::Task(format!("log {} writer lock poisoned", self.inner.name))
            })?;
            self.inner.store.flush().await?;
            self.inner.durable_end.send_if_modified(|durable_end| {
                let advanced = written > *durable_end;
                if advanced {
                    *durable_end = written;
                }
                advanced
            });
        }
    }

    /// Appends a batch from a thread that may block; same contract as [`Topic::append`].
    pub fn append_blocking(&self, entries: Vec<LogEntry>) -> CoreResult<Vec<AppendResult>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (results, end) = self.inner.write_batch(&entries)?;
        self.inner.store.flush_blocking()?;
        self.inner.durable_end.send_if_modified(|durable_end| {
            let advanced = end > *durable_end;
            if advanced {
                *durable_end = end;
            }
            advanced
        });
        Ok(results)
    }

    /// Appends records read from another copy of this topic at their own offsets (a replica
    /// following the gateway's log); waits until they are durable. The first record must sit
    /// at this topic's end and the offsets must be consecutive: a replica never has holes.
    pub async fn append_replica(&self, records: Vec<LogRecord>) -> CoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        let end = tokio::task::spawn_blocking(move || inner.write_replica(&records))
            .await
            .map_err(|error| CoreError::Task(format!("log replica append: {error}")))??;
        self.wait_durable(end).await
    }

    /// Erases every record of `tenant`: each is replaced by [`ControlRecord::Erased`] at its
    /// offset and its dedupe key is removed, then a [`ControlRecord::TenantErased`] record is
    /// appended; returns once all of it is durable. Appenders wait only while the records
    /// written during the erasure are checked. Running it again (after a crash part-way) erases
    /// what is left and appends another marker.
    pub async fn erase_tenant(&self, tenant: &str) -> CoreResult<Erasure> {
        let inner = Arc::clone(&self.inner);
        let tenant = tenant.to_string();
        let (erasure, end) = tokio::task::spawn_blocking(move || inner.erase_tenant(&tenant))
            .await
            .map_err(|error| CoreError::Task(format!("log erase: {error}")))??;
        self.wait_durable(end).await?;
        Ok(erasure)
    }

    /// Accepts records of `tenant` again after its erasure (the tenant's deletion is done; its
    /// id may be given to a new tenant).
    pub fn reopen_tenant(&self, tenant: &str) -> CoreResult<()> {
        self.inner.lock_closed()?.remove(tenant);
        Ok(())
    }

    /// Reads up to `max` durable records starting at `from`.
    pub fn read(&self, from: u64, max: usize) -> CoreResult<Vec<LogRecord>> {
        let end = *self.inner.durable_end.borrow();
        let mut records = Vec::new();
        if from >= end {
            return Ok(records);
        }
        let records_name = format!("log/{}/records", self.inner.name);
        for item in self.inner.records.range(offset_key(from)..offset_key(end)) {
            if records.len() >= max {
                break;
            }
            let (key, payload) = item?;
            let offset = decode_offset(&records_name, &key, &key)?;
            records.push(LogRecord {
                offset,
                payload: payload.to_vec(),
            });
        }
        Ok(records)
    }

    /// Offset after the last durable record (the number of records ever appended).
    pub fn durable_end(&self) -> u64 {
        *self.inner.durable_end.borrow()
    }

    /// A receiver that changes whenever more records become durable.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.durable_end.subscribe()
    }

    /// Offset of the record stored under `dedupe_key`, if any.
    pub fn offset_of_key(&self, dedupe_key: &[u8]) -> CoreResult<Option<u64>> {
        let keys_name = format!("log/{}/keys", self.inner.name);
        match self.inner.keys.get(dedupe_key)? {
            Some(bytes) => Ok(Some(decode_offset(&keys_name, dedupe_key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The record at `offset`, if it is durable.
    pub fn get(&self, offset: u64) -> CoreResult<Option<LogRecord>> {
        if offset >= self.durable_end() {
            return Ok(None);
        }
        Ok(self
            .inner
            .records
            .get(offset_key(offset))?
            .map(|payload| LogRecord {
                offset,
                payload: payload.to_vec(),
            }))
    }

    /// The offset `consumer` will read next (0 if it never committed one).
    pub fn consumer_offset(&self, consumer: &str) -> CoreResult<u64> {
        let consumers_name = format!("log/{}/consumers", self.inner.name);
        match self.inner.consumers.get(consumer.as_bytes())? {
            Some(bytes) => decode_offset(&consumers_name, consumer.as_bytes(), &bytes),
            None => Ok(0),
        }
    }

    /// Records that `consumer` has processed every record below `next_offset`. Durable at the
    /// next flush of the store; consumers are idempotent, so losing it only repeats work.
    pub fn commit_consumer_offset(&self, consumer: &str, next_offset: u64) -> CoreResult<()> {
        self.inner
            .consumers
            .insert(consumer.as_bytes(), &offset_key(next_offset))?;
        Ok(())
    }
}

impl TopicInner {
    fn lock_queue(&self) -> CoreResult<std::sync::MutexGuard<'_, WriteQueue>> {
        self.queue
            .lock()
            .map_err(|_| CoreError::Task(format!("log {} write queue poisoned", self.name)))
    }

    /// Writes queued batches until the queue is empty, several per transaction, and answers
    /// each appender. A failed transaction is written again batch by batch, so each appender
    /// gets its own batch's error.
    fn drain_queue(&self, guard: &mut WriterGuard) {
        loop {
            let taken = {
                let Ok(mut queue) = self.lock_queue() else {
                    return;
                };
                let mut entries = 0;
                let count = queue
                    .pending
                    .iter()
                    .take_while(|batch| {
                        let take =
                            entries == 0 || entries + batch.entries.len() <= ENTRIES_PER_WRITE;
                        entries += batch.entries.len();
                        take
                    })
                    .count();
                if count == 0 {
                    queue.writing = false;
                    guard.finished = true;
                    return;
                }
                queue.pending.drain(..count).collect::<Vec<_>>()
            };
            let mut sizes = Vec::with_capacity(taken.len());
            let mut replies = Vec::with_capacity(taken.len());
            let mut all = Vec::new();
            for batch in taken {
                sizes.push(batch.entries.len());
                replies.push(batch.reply);
                all.extend(batch.entries);
            }
            match self.write_batch(&all) {
                Ok((mut results, end)) => {
                    for (size, reply) in sizes.into_iter().zip(replies).rev() {
                        let own = results.split_off(results.len() - size);
                        let _ = reply.send(Ok((own, end)));
                    }
                }
                Err(error) if replies.len() == 1 => {
                    if let Some(reply) = replies.pop() {
                        let _ = reply.send(Err(error));
                    }
                }
                Err(_) => {
                    let mut rest = all.into_iter();
                    for (size, reply) in sizes.into_iter().zip(replies) {
                        let own: Vec<LogEntry> = rest.by_ref().take(size).collect();
                        let _ = reply.send(self.write_batch(&own));
                    }
                }
            }
        }
    }

    fn lock_next_offset(&self) -> CoreResult<std::sync::MutexGuard<'_, u64>> {
        self.next_offset
            .lock()
            .map_err(|_| CoreError::Task(format!("log {} writer lock poisoned", self.name)))
    }

    fn lock_closed(
        &self,
    ) -> CoreResult<std::sync::MutexGuard<'_, std::collections::HashSet<String>>> {
        self.closed
            .lock()
            .map_err(|_| CoreError::Task(format!("log {} closed tenants poisoned", self.name)))
    }

    fn erase_tenant(&self, tenant: &str) -> CoreResult<(Erasure, u64)> {
        let _eraser = self
            .eraser
            .lock()
            .map_err(|_| CoreError::Task(format!("log {} eraser lock poisoned", self.name)))?;
        {
            // taken under the writer's lock: every batch written before is in the log (and is
            // erased below), every batch after it sees the tenant closed
            let _writer = self.lock_next_offset()?;
            self.lock_closed()?.insert(tenant.to_string());
        }
        let mut prefix = tenant.as_bytes().to_vec();
        prefix.push(b'/');
        let mut keys = sled::Batch::default();
        for item in self.keys.scan_prefix(&prefix) {
            keys.remove(item?.0);
        }
        self.keys.apply_batch(keys)?;
        let written = *self.lock_next_offset()?;
        let mut erased = self.erase_records(tenant, 0, written)?;
        let mut next_offset = self.lock_next_offset()?;
        erased += self.erase_records(tenant, written, *next_offset)?;
        let marker = *next_offset;
        let payload = ControlRecord::TenantErased {
            tenant: tenant.to_string(),
        }
        .encode();
        self.records.insert(offset_key(marker), payload)?;
        *next_offset = marker + 1;
        Ok((Erasure { erased, marker }, marker + 1))
    }

    /// Refuses a batch holding a control record (only the log writes those) or a record of a
    /// tenant being erased.
    fn refuse_closed_or_control(&self, entries: &[LogEntry]) -> CoreResult<()> {
        if let Some(index) = entries
            .iter()
            .position(|entry| entry.payload.starts_with(control::CONTROL_PREFIX))
        {
            return Err(CoreError::InvalidArgument(format!(
                "log {}: record {index} of the batch is a control record, which only the log writes",
                self.name
            )));
        }
        let closed = self.lock_closed()?;
        if closed.is_empty() {
            return Ok(());
        }
        for entry in entries {
            if let Some(tenant) = record_tenant(&entry.payload)
                && closed.contains(&tenant)
            {
                return Err(CoreError::Unavailable(format!(
                    "log {}: tenant {tenant} is being deleted; its records are refused",
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// Replaces the records of `tenant` in `from..to` by [`ControlRecord::Erased`], a chunk at
    /// a time; returns how many there were.
    fn erase_records(&self, tenant: &str, from: u64, to: u64) -> CoreResult<u64> {
        let records_name = format!("log/{}/records", self.name);
        let erased_payload = ControlRecord::Erased.encode();
        let mut erased = 0u64;
        let mut start = from;
        while start < to {
            let mut batch = sled::Batch::default();
            let mut next = to;
            for (seen, item) in self
                .records
                .range(offset_key(start)..offset_key(to))
                .enumerate()
            {
                let (key, payload) = item?;
                if seen == ERASE_CHUNK {
                    next = decode_offset(&records_name, &key, &key)?;
                    break;
                }
                if record_tenant(&payload).as_deref() == Some(tenant) {
                    batch.insert(key, erased_payload.as_slice());
                    erased += 1;
                }
            }
            self.records.apply_batch(batch)?;
            start = next;
        }
        Ok(erased)
    }

    fn write_replica(&self, records: &[LogRecord]) -> CoreResult<u64> {
        let mut next_offset = self.lock_next_offset()?;
        let mut expected = *next_offset;
        for record in records {
            if record.offset != expected {
                return Err(CoreError::InvalidArgument(format!(
                    "log {}: replica expected offset {expected}, the source sent {}",
                    self.name, record.offset
                )));
            }
            expected += 1;
        }
        // The source erased these tenants' records before each marker: the replica does the
        // same, to what it holds first and then in the batch, before the batch is written, so
        // a crash in between only repeats the erasure when the batch comes again.
        let markers: Vec<(String, u64)> = records
            .iter()
            .filter_map(|record| match ControlRecord::decode(&record.payload) {
                Ok(Some(ControlRecord::TenantErased { tenant })) => Some((tenant, record.offset)),
                _ => None,
            })
            .collect();
        for (tenant, _) in &markers {
            let erased = self.erase_records(tenant, 0, *next_offset)?;
            tracing::info!(topic = %self.name, %tenant, erased, "tenant erased from the replica");
        }
        let erased_payload = ControlRecord::Erased.encode();
        let mut batch = sled::Batch::default();
        for record in records {
            let erased = !markers.is_empty()
                && record_tenant(&record.payload).is_some_and(|tenant| {
                    markers
                        .iter()
                        .any(|(erased, marker)| *erased == tenant && record.offset < *marker)
                });
            let payload = if erased {
                erased_payload.as_slice()
            } else {
                record.payload.as_slice()
            };
            batch.insert(&offset_key(record.offset), payload);
        }
        self.records.apply_batch(batch)?;
        *next_offset = expected;
        Ok(expected)
    }

    fn write_batch(&self, entries: &[LogEntry]) -> CoreResult<(Vec<AppendResult>, u64)> {
        let mut next_offset = self.lock_next_offset()?;
        self.refuse_closed_or_control(entries)?;
        let first_offset = *next_offset;
        let outcome = (&self.records, &self.keys).transaction(|(records, keys)| {
            let mut offset = first_offset;
            let mut results = Vec::with_capacity(entries.len());
            for entry in entries {
                if let Some(dedupe_key) = &entry.dedupe_key {
                    if let Some(existing) = keys.get(dedupe_key)? {
                        let existing = decode_offset("keys", dedupe_key, &existing)
                            .map_err(ConflictableTransactionError::Abort)?;
                        results.push(AppendResult::Duplicate(existing));
                        continue;
                    }
                    keys.insert(dedupe_key.as_slice(), &offset_key(offset))?;
                }
                records.insert(&offset_key(offset), entry.payload.as_slice())?;
                results.push(AppendResult::Appended(offset));
                offset += 1;
            }
            Ok((results, offset))
        });
        let (results, end) = outcome.map_err(|error| match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => CoreError::Storage(error),
        })?;
        *next_offset = end;
        Ok((results, end))
    }
}

pub mod control;
pub mod remote;

#[cfg(test)]
mod tests;
