//! The search actors and how they start: one [`Indexer`] owning the index writer, several
//! [`Searcher`]s answering the costly queries, and a [`Tailer`] that wakes the indexer when the
//! log grows, commits on time, and applies retention. Indexing and costly searches block, so
//! both run in `SyncArbiter`s, off the async threads; cheap queries are answered by the caller
//! with the shared [`SearchEngine`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use palisade_core::config::SearchConfig;
use palisade_core::ids::TenantId;
use palisade_core::storage::Store;
use palisade_proto::v1::TailResponse;
use tantivy::{IndexReader, IndexWriter, ReloadPolicy, Warmer};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::engine::SearchEngine;
use crate::error::SearchError;
use crate::filter::FilterCache;
use crate::indexer::{
    ApplyRetention, CatchUp, Indexer, Positions, SearchTopics, committed_positions,
};
use crate::metrics::METRICS;
use crate::query::{Node, QueryLimits};
use crate::records::RecordReaders;
use crate::schema::IndexSchema;
use crate::searcher::{Searcher, TailWindow};
use crate::settings::SearchSettings;

/// How often pending documents are committed while records arrive: a record is searchable
/// at most this long (plus the commit itself) after it is durable.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(250);
/// How often every tenant's retention is applied.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3_600);
/// Records a live tail may have queued for a slow reader before it is ended.
const TAIL_BUFFER: usize = 1_024;

/// Addresses of the running search actors and what they share.
#[derive(Clone)]
pub struct SearchActors {
    pub indexer: Addr<Indexer>,
    pub searcher: Addr<Searcher>,
    /// What the searchers share; callers answer cheap queries with it on their own task.
    pub engine: Arc<SearchEngine>,
    pub tailer: Addr<Tailer>,
    /// Positions up to which the index is committed and searchable.
    pub committed: Arc<watch::Sender<Positions>>,
    pub reader: IndexReader,
    pub topics: SearchTopics,
    pub settings: SearchSettings,
    pub limits: QueryLimits,
}

/// Counts shown by `palisade status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchIndexStatus {
    pub documents: u64,
    /// Alerts log offset up to which the index is committed.
    pub indexed_offset: u64,
    /// End of the alerts log.
    pub log_end: u64,
    pub indexed_findings_offset: u64,
    pub findings_log_end: u64,
}

impl SearchActors {
    /// What the index holds and how far behind the log it is.
    pub fn status(&self) -> SearchIndexStatus {
        let committed = *self.committed.borrow();
        SearchIndexStatus {
            documents: self.reader.searcher().num_docs(),
            indexed_offset: committed.alerts,
            log_end: self.topics.alerts.durable_end(),
            indexed_findings_offset: committed.findings,
            findings_log_end: self.topics.findings.durable_end(),
        }
    }

    /// Streams the records of `tenant` matching `query` as they become searchable. The stream
    /// ends when the receiver is dropped, or with an error when the reader falls too far behind.
    pub fn tail(
        &self,
        tenant: TenantId,
        query: Node,
    ) -> mpsc::Receiver<Result<TailResponse, SearchError>> {
        let (sender, receiver) = mpsc::channel(TAIL_BUFFER);
        let mut committed = self.committed.subscribe();
        let searcher = self.searcher.clone();
        METRICS.live_tails.inc();
        tokio::spawn(async move {
            let mut from = *committed.borrow_and_update();
            loop {
                tokio::select! {
                    changed = committed.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    () = sender.closed() => break,
                }
                let to = *committed.borrow_and_update();
                let window = TailWindow {
                    tenant: tenant.clone(),
                    query: query.clone(),
                    from,
                    to,
                };
                from = to;
                let records = match searcher.send(window).await {
                    Ok(Ok(records)) => records,
                    Ok(Err(error)) => {
                        let _ = sender.send(Err(error)).await;
                        break;
                    }
                    Err(_) => {
                        let _ = sender.send(Err(SearchError::Unavailable)).await;
                        break;
                    }
                };
                for record in records {
                    if sender.send(Ok(record)).await.is_err() {
                        METRICS.live_tails.dec();
                        return;
                    }
                }
            }
            METRICS.live_tails.dec();
        });
        receiver
    }
}

/// Opens the index under `index_path` and starts the actors. Must run inside an actix System.
pub fn start_search_actors(
    index_path: &Path,
    topics: SearchTopics,
    store: &Store,
    config: &SearchConfig,
) -> Result<SearchActors, SearchError> {
    start_search_actors_with(index_path, topics, store, config, QueryLimits::default())
}

/// [`start_search_actors`] with explicit query limits.
pub fn start_search_actors_with(
    index_path: &Path,
    topics: SearchTopics,
    store: &Store,
    config: &SearchConfig,
    limits: QueryLimits,
) -> Result<SearchActors, SearchError> {
    let schema = IndexSchema::new();
    let index = schema.open_or_create(index_path)?;
    let start = committed_positions(&index)?;
    let writer: IndexWriter = index.writer_with_num_threads(1, config.writer_memory_bytes)?;
    // The filter cache warms each new searcher's segments before queries see them.
    let filter_cache = Arc::new(FilterCache::new(config.filter_cache_bytes));
    let warmer: Arc<dyn Warmer> = filter_cache.clone();
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .warmers(vec![Arc::downgrade(&warmer)])
        .try_into()?;
    let settings = SearchSettings::open(store)?;
    let committed = Arc::new(watch::Sender::new(start));
    METRICS
        .indexed_offset
        .set(i64::try_from(start.alerts).unwrap_or(i64::MAX));

    let indexer_state = std::sync::Mutex::new(Some(Indexer {
        schema: schema.clone(),
        writer,
        reader: reader.clone(),
        topics: topics.clone(),
        settings: settings.clone(),
        position: start,
        committed: Arc::clone(&committed),
        pending: 0,
        first_pending_at: None,
        commit_interval: COMMIT_INTERVAL,
    }));
    // A SyncArbiter with one thread: the single owner of the index writer. Its factory runs
    // once, when the thread starts; a second call would find the state taken and stop the
    // process loudly rather than run two writers.
    let indexer = SyncArbiter::start(1, move || {
        let taken = match indexer_state.lock() {
            Ok(mut state) => state.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        taken.unwrap_or_else(|| panic!("the indexer is started once and never restarted"))
    });
    let engine = Arc::new(SearchEngine {
        schema: schema.clone(),
        reader: reader.clone(),
        settings: settings.clone(),
        limits,
        max_page_size: config.max_page_size,
        filter_cache,
        records: Arc::new(RecordReaders::default()),
    });
    let searcher_engine = Arc::clone(&engine);
    let searcher = SyncArbiter::start(config.searcher_threads.max(1), move || Searcher {
        engine: Arc::clone(&searcher_engine),
    });
    let tailer = Tailer {
        topics: topics.clone(),
        indexer: indexer.clone(),
    }
    .start();
    Ok(SearchActors {
        indexer,
        searcher,
        engine,
        tailer,
        committed,
        reader,
        topics,
        settings,
        limits,
    })
}

/// Wakes the indexer whenever the log grows (and once at start, to index what a crash left
/// unindexed), commits pending documents when their commit is due, and applies retention.
pub struct Tailer {
    topics: SearchTopics,
    indexer: Addr<Indexer>,
}

impl Actor for Tailer {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Context<Self>) {
        let mut alerts_end = self.topics.alerts.subscribe();
        let mut findings_end = self.topics.findings.subscribe();
        let indexer = self.indexer.clone();
        let follow = async move {
            let mut commit_due: Option<Instant> = None;
            // Start by indexing what the log already holds (what a crash left unindexed).
            let mut more_available = true;
            loop {
                if !more_available {
                    let due = commit_due;
                    tokio::select! {
                        changed = alerts_end.changed() => if changed.is_err() { break },
                        changed = findings_end.changed() => if changed.is_err() { break },
                        () = sleep_until(due), if due.is_some() => {}
                    }
                }
                alerts_end.borrow_and_update();
                findings_end.borrow_and_update();
                match indexer.send(CatchUp { commit_now: false }).await {
                    Ok(Ok(progress)) => {
                        commit_due = progress.commit_due;
                        more_available = progress.more_available;
                    }
                    Ok(Err(error)) => {
                        tracing::error!(%error, "indexing failed; retrying when the log grows");
                        commit_due = None;
                        more_available = false;
                    }
                    Err(_) => break,
                }
            }
        };
        context.spawn(follow.into_actor(self));
        context.run_interval(RETENTION_INTERVAL, |tailer, context| {
            let indexer = tailer.indexer.clone();
            context.spawn(
                async move {
                    if let Ok(Err(error)) = indexer.send(ApplyRetention { tenant: None }).await {
                        tracing::error!(%error, "applying retention failed");
                    }
                }
                .into_actor(tailer),
            );
        });
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
