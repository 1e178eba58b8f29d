//! The search actors: one indexer owning the index writer, searchers answering queries, and a
//! tailer that wakes the indexer when the log grows. Indexing and searching block, so both run
//! in `SyncArbiter`s, off the async threads.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::prelude::*;
use palisade_core::config::SearchConfig;
use palisade_core::ids::TenantId;
use palisade_core::log::Topic;
use palisade_proto::v1::{Alert, SearchHit, SearchRequest, SearchResponse, SortOrder, search_hit};
use prost::Message as _;
use tantivy::collector::{Count, TopDocs};
use tantivy::schema::Value;
use tantivy::{
    DateTime, DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy,
    Searcher as IndexSearcher, TantivyDocument,
};

use crate::error::SearchError;
use crate::metrics::METRICS;
use crate::query::QueryBuilder;
use crate::schema::AlertSchema;

/// Name under which the indexer records its log offset.
pub const CONSUMER_NAME: &str = "search";
/// Most log records indexed between two commits while catching up.
const RECORDS_PER_COMMIT: usize = 20_000;
/// Records read from the log at a time.
const RECORDS_PER_READ: usize = 2_000;
/// Hits per page when the request does not say.
const DEFAULT_PAGE_SIZE: u32 = 50;

/// Addresses of the running search actors and what they share.
#[derive(Clone)]
pub struct SearchActors {
    pub indexer: Addr<Indexer>,
    pub searcher: Addr<Searcher>,
    pub tailer: Addr<Tailer>,
    /// Log offset up to which the index is committed.
    pub indexed_offset: Arc<AtomicU64>,
    pub reader: IndexReader,
    pub topic: Topic,
}

/// Counts shown by `palisade status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchIndexStatus {
    pub documents: u64,
    pub indexed_offset: u64,
    pub log_end: u64,
}

impl SearchActors {
    /// What the index holds and how far behind the log it is.
    pub fn status(&self) -> SearchIndexStatus {
        SearchIndexStatus {
            documents: self.reader.searcher().num_docs(),
            indexed_offset: self.indexed_offset.load(Ordering::Acquire),
            log_end: self.topic.durable_end(),
        }
    }
}

/// Opens the index under `index_path` and starts the actors. Must run inside an actix System.
pub fn start_search_actors(
    index_path: &Path,
    topic: Topic,
    config: &SearchConfig,
) -> Result<SearchActors, SearchError> {
    let schema = AlertSchema::new();
    let index = schema.open_or_create(index_path)?;
    let start_offset = committed_offset(&index)?;
    let writer: IndexWriter = index.writer_with_num_threads(1, config.writer_memory_bytes)?;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let indexed_offset = Arc::new(AtomicU64::new(start_offset));
    METRICS
        .indexed_offset
        .set(i64::try_from(start_offset).unwrap_or(i64::MAX));

    let indexer_state = std::sync::Mutex::new(Some(Indexer {
        schema: schema.clone(),
        writer,
        reader: reader.clone(),
        topic: topic.clone(),
        position: start_offset,
        indexed_offset: Arc::clone(&indexed_offset),
    }));
    // A SyncArbiter with one thread: the single owner of the index writer. Its factory runs
    // once, when the thread starts.
    let indexer = SyncArbiter::start(1, move || {
        let taken = match indexer_state.lock() {
            Ok(mut state) => state.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        taken.unwrap_or_else(|| panic!("the indexer is started once and never restarted"))
    });
    let builder = QueryBuilder::new(&index, &schema);
    let searcher_reader = reader.clone();
    let max_page_size = config.max_page_size;
    let searcher = SyncArbiter::start(config.searcher_threads, move || Searcher {
        schema: schema.clone(),
        reader: searcher_reader.clone(),
        builder: builder.clone(),
        max_page_size,
    });
    let tailer = Tailer {
        topic: topic.clone(),
        indexer: indexer.clone(),
    }
    .start();
    Ok(SearchActors {
        indexer,
        searcher,
        tailer,
        indexed_offset,
        reader,
        topic,
    })
}

/// The log offset stored in the index's last commit (0 for a new index).
fn committed_offset(index: &Index) -> Result<u64, SearchError> {
    let metas = index.load_metas()?;
    let Some(payload) = metas.payload else {
        return Ok(0);
    };
    payload
        .parse()
        .map_err(|_| SearchError::Open {
            path: String::new(),
            message: format!("index commit payload {payload:?} is not a log offset; rebuild with `palisade search reindex`"),
        })
}

/// Indexes the log from the last committed offset to its durable end.
#[derive(Message)]
#[rtype(result = "Result<IndexProgress, SearchError>")]
pub struct CatchUp;

/// Where the indexer stands after a [`CatchUp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexProgress {
    /// Log offset up to which the index is committed.
    pub indexed_offset: u64,
    /// Documents added by this catch-up.
    pub added: u64,
}

/// The single owner of the index writer.
pub struct Indexer {
    schema: AlertSchema,
    writer: IndexWriter,
    reader: IndexReader,
    topic: Topic,
    /// Next log offset to index.
    position: u64,
    indexed_offset: Arc<AtomicU64>,
}

impl Actor for Indexer {
    type Context = SyncContext<Self>;
}

impl Handler<CatchUp> for Indexer {
    type Result = Result<IndexProgress, SearchError>;

    fn handle(&mut self, _message: CatchUp, _context: &mut SyncContext<Self>) -> Self::Result {
        let mut added = 0;
        loop {
            let pending = self.index_until_commit_point()?;
            if pending == 0 {
                break;
            }
            added += pending;
            self.commit()?;
        }
        Ok(IndexProgress {
            indexed_offset: self.position,
            added,
        })
    }
}

impl Indexer {
    /// Adds up to RECORDS_PER_COMMIT records to the writer; returns how many log records it
    /// consumed (decodable or not).
    fn index_until_commit_point(&mut self) -> Result<u64, SearchError> {
        let mut consumed = 0u64;
        while (consumed as usize) < RECORDS_PER_COMMIT {
            let records = self.topic.read(self.position, RECORDS_PER_READ)?;
            let Some(last) = records.last() else {
                break;
            };
            let next_position = last.offset + 1;
            for record in &records {
                match Alert::decode(record.payload.as_slice()) {
                    Ok(alert) => {
                        self.writer
                            .delete_term(self.schema.uid_term(&alert.tenant_id, &alert.id));
                        self.writer
                            .add_document(self.schema.alert_document(&alert))?;
                        METRICS.indexed_documents.inc();
                    }
                    Err(error) => {
                        METRICS.undecodable_records.inc();
                        tracing::error!(offset = record.offset, %error, "skipping undecodable alert record");
                    }
                }
            }
            consumed += next_position - self.position;
            self.position = next_position;
        }
        Ok(consumed)
    }

    fn commit(&mut self) -> Result<(), SearchError> {
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&self.position.to_string());
        prepared.commit()?;
        self.reader.reload()?;
        self.indexed_offset.store(self.position, Ordering::Release);
        METRICS.commits.inc();
        METRICS
            .indexed_offset
            .set(i64::try_from(self.position).unwrap_or(i64::MAX));
        // Informational only: the index's own commit payload is the offset the indexer trusts.
        self.topic
            .commit_consumer_offset(CONSUMER_NAME, self.position)?;
        Ok(())
    }
}

/// Wakes the indexer whenever the log grows, and once at start to replay what a crash left
/// unindexed.
pub struct Tailer {
    topic: Topic,
    indexer: Addr<Indexer>,
}

impl Actor for Tailer {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Context<Self>) {
        let mut durable_end = self.topic.subscribe();
        let indexer = self.indexer.clone();
        let follow = async move {
            loop {
                match indexer.send(CatchUp).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::error!(%error, "indexing failed; retrying when the log grows")
                    }
                    Err(_) => break,
                }
                if durable_end.changed().await.is_err() {
                    break;
                }
            }
        };
        context.spawn(follow.into_actor(self));
    }
}

/// A query of one tenant.
#[derive(Message)]
#[rtype(result = "Result<SearchResponse, SearchError>")]
pub struct RunSearch {
    pub tenant: TenantId,
    pub request: SearchRequest,
}

/// Answers queries; several run in parallel, each on its own thread.
pub struct Searcher {
    schema: AlertSchema,
    reader: IndexReader,
    builder: QueryBuilder,
    max_page_size: u32,
}

impl Actor for Searcher {
    type Context = SyncContext<Self>;
}

impl Handler<RunSearch> for Searcher {
    type Result = Result<SearchResponse, SearchError>;

    fn handle(&mut self, message: RunSearch, _context: &mut SyncContext<Self>) -> Self::Result {
        let started = tokio::time::Instant::now();
        let request = message.request;
        if !request.facets.is_empty() {
            return Err(SearchError::NotYetAvailable("faceted search"));
        }
        if request.highlight {
            return Err(SearchError::NotYetAvailable("highlighting"));
        }
        let query =
            self.builder
                .build(&message.tenant, &request.query, request.time_range.as_ref())?;
        let page = request.page.unwrap_or_default();
        let limit = match page.limit {
            0 => DEFAULT_PAGE_SIZE,
            limit => limit.min(self.max_page_size),
        } as usize;
        let offset = parse_cursor(&page.cursor)?;
        let searcher = self.reader.searcher();
        let sort = SortOrder::try_from(request.sort).unwrap_or(SortOrder::Unspecified);
        let (total, addresses) = top_documents(&searcher, query.as_ref(), sort, limit, offset)?;
        let mut hits = Vec::with_capacity(addresses.len());
        for address in &addresses {
            hits.push(SearchHit {
                document: Some(search_hit::Document::Alert(
                    self.stored_alert(&searcher, *address)?,
                )),
                score: 0.0,
                snippet: String::new(),
            });
        }
        let next_offset = offset + hits.len();
        let next_cursor = if next_offset < total && !hits.is_empty() {
            format!("o{next_offset}")
        } else {
            String::new()
        };
        METRICS.queries.inc();
        Ok(SearchResponse {
            total: total as u64,
            hits,
            facets: Vec::new(),
            next_cursor,
            took_micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        })
    }
}

impl Searcher {
    fn stored_alert(
        &self,
        searcher: &IndexSearcher,
        address: DocAddress,
    ) -> Result<Alert, SearchError> {
        let document: TantivyDocument = searcher.doc(address)?;
        let corrupt = |message: String| SearchError::CorruptDocument {
            address: format!("{address:?}"),
            message,
        };
        let bytes = document
            .get_first(self.schema.doc)
            .and_then(|value| value.as_bytes())
            .ok_or_else(|| corrupt("no stored record".into()))?;
        Alert::decode(bytes).map_err(|error| corrupt(error.to_string()))
    }
}

/// The page's documents in the requested order, and the total number of matches.
fn top_documents(
    searcher: &IndexSearcher,
    query: &dyn tantivy::query::Query,
    sort: SortOrder,
    limit: usize,
    offset: usize,
) -> Result<(usize, Vec<DocAddress>), SearchError> {
    let top = TopDocs::with_limit(limit).and_offset(offset);
    let result = match sort {
        SortOrder::Unspecified | SortOrder::TimeDesc => {
            let (total, pairs) = searcher.search(
                query,
                &(
                    Count,
                    top.order_by_fast_field::<DateTime>("time", Order::Desc),
                ),
            )?;
            (total, addresses(pairs))
        }
        SortOrder::TimeAsc => {
            let (total, pairs) = searcher.search(
                query,
                &(
                    Count,
                    top.order_by_fast_field::<DateTime>("time", Order::Asc),
                ),
            )?;
            (total, addresses(pairs))
        }
        SortOrder::SeverityDesc => {
            let (total, pairs) = searcher.search(
                query,
                &(Count, top.order_by_u64_field("severity", Order::Desc)),
            )?;
            (total, addresses(pairs))
        }
        SortOrder::Relevance => {
            let (total, pairs) = searcher.search(query, &(Count, top.order_by_score()))?;
            (total, addresses(pairs))
        }
    };
    Ok(result)
}

fn addresses<SortKey>(pairs: Vec<(SortKey, DocAddress)>) -> Vec<DocAddress> {
    pairs.into_iter().map(|(_, address)| address).collect()
}

/// Cursors are "o" followed by the offset of the next page's first hit.
fn parse_cursor(cursor: &str) -> Result<usize, SearchError> {
    if cursor.is_empty() {
        return Ok(0);
    }
    cursor
        .strip_prefix('o')
        .and_then(|offset| offset.parse().ok())
        .ok_or_else(|| {
            SearchError::InvalidRequest(format!(
                "cursor {cursor:?} was not returned by this server"
            ))
        })
}
