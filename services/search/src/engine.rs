//! Answering queries: what every thread that answers them shares, and the steps of an answer.
//!
//! A query is answered from one snapshot of the index (a tantivy `Searcher`, taken once per
//! query and used for every step), so it sees exactly one commit whatever the indexer publishes
//! meanwhile. Everything else it reads is safe to share between threads: the filter cache and
//! the record readers lock their maps, the settings are sled trees, the metrics are atomics.
//!
//! So a query may be answered on any thread. A cheap one (see [`SearchEngine::runs_inline`])
//! is answered on the calling task, which spares it the round trip through the searchers'
//! mailbox; any other runs on the [`Searcher`](crate::searcher::Searcher) actors' threads, so
//! a long query never holds an async worker.

use std::ops::Bound;

use palisade_core::ids::TenantId;
use palisade_proto::v1::{Facet, FacetBucket, SearchRequest, TailResponse, TimeRange, search_hit};
use palisade_proto::wire;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, DocAddress, IndexReader, Term};
use tokio::time::Instant;

use crate::collector::{Collected, SearchCollector, SortSpec};
use crate::error::SearchError;
use crate::filter::{FilterCache, collect_by_time};
use crate::metrics::METRICS;
use crate::query::compile::{CompileContext, CompiledQuery, compile_confined};
use crate::query::time_range::TimeRangeQuery;
use crate::query::{Node, QueryError, QueryLimits, parse};
use crate::records::{RecordReaders, decode_document, document_uid, snippet_text};
use crate::request::{
    FacetSpec, PagePosition, has_free_text, has_wildcard, parse_cursor, parse_facets, sort_code,
    sort_spec,
};
use crate::schema::{IndexSchema, KIND_ALERT};
use crate::searcher::TailWindow;
use crate::settings::SearchSettings;

/// Hits per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Top values per facet when neither the facet nor the request says.
pub const DEFAULT_FACET_SIZE: usize = 10;
/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 200;
/// Most hits a query answered on the calling task may return: each costs a doc store look-up
/// (about 1-2 us when its block is cached).
const INLINE_MAX_HITS: usize = 100;
/// Most bitset words a query answered on the calling task may combine, summed over segments:
/// one pass over every segment's words for each term, time range, the tenant, the live
/// documents and the page. On the benchmark machine a million words of copies, ANDs and
/// population counts took 0.5 ms (measured before the count used POPCNT and stopped copying,
/// both of which only made it cheaper), so half a million keeps an async worker held for at
/// most about 0.25 ms; a filter of two terms stays here up to 6.4 million documents.
const INLINE_MAX_WORDS: u64 = 500_000;

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// What every thread answering queries shares.
pub struct SearchEngine {
    pub(crate) schema: IndexSchema,
    /// Reloaded by the indexer after each commit; every query takes one snapshot of it.
    pub(crate) reader: IndexReader,
    pub(crate) settings: SearchSettings,
    pub(crate) limits: QueryLimits,
    pub(crate) max_page_size: u32,
    pub(crate) filter_cache: std::sync::Arc<FilterCache>,
    pub(crate) records: std::sync::Arc<RecordReaders>,
}

/// A request read and checked against the limits, before the index is touched.
pub struct SearchPlan {
    tenant: TenantId,
    node: Node,
    sort: SortSpec,
    limit: usize,
    position: PagePosition,
    facet_specs: Vec<FacetSpec>,
    time_range: Option<TimeRange>,
    highlight: bool,
    started: Instant,
}

impl SearchPlan {
    /// Whether the query may be cheap enough to answer on the calling task, as far as the
    /// request shows: ordered by time, without facets or highlighting, a short page, and no
    /// wildcard to expand. [`SearchEngine::runs_inline`] decides once it is compiled.
    pub fn may_run_inline(&self) -> bool {
        matches!(self.sort, SortSpec::TimeDesc | SortSpec::TimeAsc)
            && self.facet_specs.is_empty()
            && !self.highlight
            && self.limit <= INLINE_MAX_HITS
            && !has_wildcard(&self.node)
    }
}

/// A plan compiled against one snapshot of the index: everything after this reads only that
/// snapshot.
pub struct CompiledSearch {
    snapshot: tantivy::Searcher,
    compiled: CompiledQuery,
    collector: SearchCollector,
    facet_specs: Vec<FacetSpec>,
    offset: usize,
    highlight: bool,
    started: Instant,
}

impl SearchEngine {
    /// The query of a request: the saved search's (if named) AND the request's.
    fn request_query(
        &self,
        tenant: &TenantId,
        request: &SearchRequest,
    ) -> Result<(Node, Vec<String>), SearchError> {
        let query = parse(&request.query, &self.limits.parse).map_err(SearchError::InvalidQuery)?;
        if request.saved_search.is_empty() {
            return Ok((query, request.facets.clone()));
        }
        let saved = self.settings.get(tenant, &request.saved_search)?;
        let saved_query = parse(&saved.query, &self.limits.parse).map_err(|error| {
            SearchError::InvalidQuery(QueryError {
                column: error.column,
                message: format!("in saved search {:?}: {}", saved.name, error.message),
            })
        })?;
        let facets = if request.facets.is_empty() {
            saved.facets
        } else {
            request.facets.clone()
        };
        Ok((Node::And(vec![saved_query, query]), facets))
    }

    /// Answers `request` for `tenant` on this thread, whatever it costs.
    pub fn run(
        &self,
        tenant: &TenantId,
        request: &SearchRequest,
    ) -> Result<wire::SearchResponse, SearchError> {
        let plan = self.plan(tenant, request)?;
        let search = self.compile(plan)?;
        self.execute(search)
    }

    /// Reads and checks `request`: its query (and saved search), sort, page, cursor and facets.
    pub fn plan(
        &self,
        tenant: &TenantId,
        request: &SearchRequest,
    ) -> Result<SearchPlan, SearchError> {
        let started = Instant::now();
        let (node, facet_names) = self.request_query(tenant, request)?;
        let sort = sort_spec(request.sort, has_free_text(&node));
        let page = request.page.clone().unwrap_or_default();
        let limit = match page.limit {
            0 => DEFAULT_PAGE_SIZE,
            limit => limit.min(self.max_page_size),
        } as usize;
        let position = parse_cursor(&page.cursor, sort)?;
        let offset = match &position {
            PagePosition::Offset(offset) => *offset,
            _ => 0,
        };
        if sort == SortSpec::Relevance && offset + limit > self.limits.max_result_window {
            return Err(SearchError::QueryLimit(format!(
                "relevance order reaches at most {} hits deep; sort by time or severity to page \
                 further (those orders page without limit)",
                self.limits.max_result_window
            )));
        }
        let default_facet_size = match request.facet_size {
            0 => DEFAULT_FACET_SIZE,
            size => size as usize,
        };
        let facet_specs = parse_facets(&facet_names, default_facet_size, &self.limits)?;
        Ok(SearchPlan {
            tenant: tenant.clone(),
            node,
            sort,
            limit,
            position,
            facet_specs,
            time_range: request.time_range,
            highlight: request.highlight,
            started,
        })
    }

    /// Takes a snapshot of the index and compiles the plan's query against it (wildcards are
    /// expanded here). The time budget starts now.
    pub fn compile(&self, plan: SearchPlan) -> Result<CompiledSearch, SearchError> {
        let deadline = Instant::now() + self.limits.time_budget;
        let snapshot = self.reader.searcher();
        let mut filters: Vec<Box<dyn Query>> = Vec::new();
        if let Some(range) = plan
            .time_range
            .as_ref()
            .and_then(|range| self.time_range_query(range))
        {
            filters.push(range);
        }
        let context = CompileContext {
            schema: &self.schema,
            searcher: &snapshot,
            limits: &self.limits,
            now_nanos: now_nanos(),
            deadline,
        };
        let compiled = compile_confined(&plan.node, &plan.tenant, filters, &context)?;
        let offset = match &plan.position {
            PagePosition::Offset(offset) => *offset,
            _ => 0,
        };
        let collector = SearchCollector {
            sort: plan.sort,
            limit: plan.limit,
            offset,
            cursor: match plan.position {
                PagePosition::After(cursor) => Some(cursor),
                _ => None,
            },
            facets: plan
                .facet_specs
                .iter()
                .filter_map(|spec| match spec {
                    FacetSpec::Terms { facet, .. } => Some(facet.clone()),
                    FacetSpec::Histogram { .. } => None,
                })
                .collect(),
            histogram_interval_micros: plan.facet_specs.iter().find_map(|spec| match spec {
                FacetSpec::Histogram { interval_micros } => Some(*interval_micros),
                FacetSpec::Terms { .. } => None,
            }),
            max_histogram_buckets: self.limits.max_histogram_buckets,
            deadline,
        };
        Ok(CompiledSearch {
            snapshot,
            compiled,
            collector,
            facet_specs: plan.facet_specs,
            offset,
            highlight: plan.highlight,
            started: plan.started,
        })
    }

    /// Whether a compiled query is cheap enough to answer on the calling task: it runs on
    /// bitsets ([`crate::filter`]) over few enough words, and every bitset and time summary
    /// it needs is in the filter cache already (building one reads a term's whole postings
    /// list or a segment's times, which can take milliseconds).
    pub fn runs_inline(&self, search: &CompiledSearch) -> bool {
        let Some(filter) = &search.compiled.filter else {
            return false;
        };
        if !search.collector.pages_by_time_only()
            || !search.collector.facets.is_empty()
            || search.collector.limit > INLINE_MAX_HITS
        {
            return false;
        }
        let blocks: u64 = search
            .snapshot
            .segment_readers()
            .iter()
            .map(|reader| u64::from(reader.max_doc()).div_ceil(64))
            .sum();
        // Each leaf is a pass over the words; so are the tenant, the live documents and the
        // page.
        let passes = filter.leaves() as u64 + 3;
        if blocks.saturating_mul(passes) > INLINE_MAX_WORDS {
            return false;
        }
        self.filter_cache
            .holds_everything_for(&search.snapshot, filter, &search.compiled.tenant)
            .unwrap_or(false)
    }

    /// Runs a compiled query on its snapshot: the total, the page and its stored records, the
    /// facets, the next cursor.
    pub fn execute(&self, search: CompiledSearch) -> Result<wire::SearchResponse, SearchError> {
        let CompiledSearch {
            snapshot,
            compiled,
            collector,
            facet_specs,
            offset,
            highlight,
            started,
        } = search;
        let collected = match &compiled.filter {
            Some(filter) if collector.pages_by_time_only() => collect_by_time(
                &snapshot,
                &collector,
                filter,
                &compiled.tenant,
                &self.filter_cache,
            )?,
            _ => snapshot.search(compiled.confined.as_ref(), &collector)?,
        };
        if collected.timed_out {
            METRICS.queries_timed_out.inc();
            return Err(SearchError::TimeBudget(self.limits.time_budget));
        }
        if collected.too_many_buckets {
            return Err(SearchError::QueryLimit(format!(
                "the time histogram would have more than {} buckets; use a larger interval or a \
                 shorter time range",
                self.limits.max_histogram_buckets
            )));
        }
        let snippets = if highlight {
            let mut generator =
                SnippetGenerator::create(&snapshot, compiled.user.as_ref(), self.schema.output)?;
            generator.set_max_num_chars(SNIPPET_CHARS);
            Some(generator)
        } else {
            None
        };
        let mut hits = Vec::with_capacity(collected.hits.len());
        for hit in &collected.hits {
            let document = self
                .records
                .document(&self.schema, &snapshot, hit.address)?;
            let snippet = match &snippets {
                Some(generator) => generator
                    .snippet(&snippet_text(&document, hit.address)?)
                    .to_html(),
                None => String::new(),
            };
            hits.push(wire::SearchHit {
                document: Some(document),
                score: hit.score,
                snippet,
            });
        }
        let last_record = hits.last().and_then(|hit| hit.document.as_ref());
        let next_cursor = self.next_cursor(collector.sort, &collected, offset, last_record)?;
        let facets = self.facets(&facet_specs, &collected)?;
        METRICS.queries.inc();
        Ok(wire::SearchResponse {
            total: collected.count,
            hits,
            facets,
            next_cursor,
            took_micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        })
    }

    fn next_cursor(
        &self,
        sort: SortSpec,
        collected: &Collected,
        offset: usize,
        last_record: Option<&wire::search_hit::Document>,
    ) -> Result<String, SearchError> {
        let Some(last) = collected.hits.last() else {
            return Ok(String::new());
        };
        Ok(match sort {
            SortSpec::Relevance => {
                let next = offset + collected.hits.len();
                if (next as u64) < collected.count {
                    format!("r:{next}")
                } else {
                    String::new()
                }
            }
            _ if collected.after_cursor_count > collected.hits.len() as u64 => {
                let uid = match last_record {
                    Some(record) => document_uid(record, last.address)?,
                    None => last.uid.text(),
                };
                format!("{}:{}:{}:{}", sort_code(sort), last.primary, last.time, uid)
            }
            _ => String::new(),
        })
    }

    fn facets(
        &self,
        specs: &[FacetSpec],
        collected: &Collected,
    ) -> Result<Vec<Facet>, SearchError> {
        let mut facets = Vec::with_capacity(specs.len());
        let mut terms_index = 0;
        for spec in specs {
            match spec {
                FacetSpec::Terms { label, facet } => {
                    let counts = collected
                        .facets
                        .get(terms_index)
                        .cloned()
                        .unwrap_or_default();
                    terms_index += 1;
                    let total: u64 = counts.values().sum();
                    let mut buckets: Vec<(String, u64)> = counts.into_iter().collect();
                    buckets.sort_by(|left, right| {
                        right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0))
                    });
                    buckets.truncate(facet.size);
                    let shown: u64 = buckets.iter().map(|(_, count)| count).sum();
                    facets.push(Facet {
                        field: label.clone(),
                        buckets: buckets
                            .into_iter()
                            .map(|(value, count)| FacetBucket { value, count })
                            .collect(),
                        other_count: total - shown,
                    });
                }
                FacetSpec::Histogram { interval_micros } => {
                    facets.push(Facet {
                        field: "time".into(),
                        buckets: self.histogram_buckets(*interval_micros, collected)?,
                        other_count: 0,
                    });
                }
            }
        }
        Ok(facets)
    }

    /// Every bucket from the first to the last non-empty one, empty ones included.
    fn histogram_buckets(
        &self,
        interval_micros: i64,
        collected: &Collected,
    ) -> Result<Vec<FacetBucket>, SearchError> {
        let (Some(first), Some(last)) = (
            collected.histogram.keys().next(),
            collected.histogram.keys().next_back(),
        ) else {
            return Ok(Vec::new());
        };
        let span = last.saturating_sub(*first).saturating_add(1);
        if span > self.limits.max_histogram_buckets as i64 {
            return Err(SearchError::QueryLimit(format!(
                "the time histogram would have {span} buckets, more than {}; use a larger \
                 interval or a shorter time range",
                self.limits.max_histogram_buckets
            )));
        }
        Ok((*first..=*last)
            .map(|bucket| {
                let start = DateTime::from_timestamp_micros(bucket.saturating_mul(interval_micros));
                let seconds = start.into_timestamp_secs();
                let value = chrono::DateTime::from_timestamp(seconds, 0)
                    .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| seconds.to_string());
                FacetBucket {
                    value,
                    count: collected.histogram.get(&bucket).copied().unwrap_or(0),
                }
            })
            .collect())
    }

    fn time_range_query(&self, range: &TimeRange) -> Option<Box<dyn Query>> {
        let nanos = |timestamp: &palisade_proto::prost_types::Timestamp| {
            crate::schema::timestamp_to_date(Some(timestamp)).into_timestamp_nanos()
        };
        let lower = range
            .start
            .as_ref()
            .map_or(Bound::Unbounded, |start| Bound::Included(nanos(start)));
        let upper = range
            .end
            .as_ref()
            .map_or(Bound::Unbounded, |end| Bound::Excluded(nanos(end)));
        if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
            return None;
        }
        Some(Box::new(TimeRangeQuery::new(
            self.schema.time,
            lower,
            upper,
        )))
    }

    pub(crate) fn tail_window(
        &self,
        window: &TailWindow,
    ) -> Result<Vec<TailResponse>, SearchError> {
        let searcher = self.reader.searcher();
        let offsets = |from: u64, to: u64| -> Box<dyn Query> {
            Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_u64(self.schema.log_offset, from)),
                Bound::Excluded(Term::from_field_u64(self.schema.log_offset, to)),
            ))
        };
        let alert_kind: Box<dyn Query> = Box::new(TermQuery::new(
            Term::from_field_text(
                self.schema.keyword("kind").unwrap_or(self.schema.uid),
                KIND_ALERT,
            ),
            IndexRecordOption::Basic,
        ));
        let alerts: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
            (Occur::Must, alert_kind.box_clone()),
            (Occur::Must, offsets(window.from.alerts, window.to.alerts)),
        ]));
        let findings: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
            (Occur::MustNot, alert_kind),
            (
                Occur::Must,
                offsets(window.from.findings, window.to.findings),
            ),
        ]));
        let new_records: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
            (Occur::Should, alerts),
            (Occur::Should, findings),
        ]));
        let context = CompileContext {
            schema: &self.schema,
            searcher: &searcher,
            limits: &self.limits,
            now_nanos: now_nanos(),
            deadline: Instant::now() + self.limits.time_budget,
        };
        let compiled =
            compile_confined(&window.query, &window.tenant, vec![new_records], &context)?;
        let mut addresses: Vec<DocAddress> = searcher
            .search(
                compiled.confined.as_ref(),
                &tantivy::collector::DocSetCollector,
            )?
            .into_iter()
            .collect();
        addresses.sort();
        let mut records = Vec::with_capacity(addresses.len());
        for address in addresses {
            let document = self.records.document(&self.schema, &searcher, address)?;
            records.push(match decode_document(&document, address)? {
                search_hit::Document::Alert(alert) => TailResponse {
                    alert: Some(alert),
                    finding: None,
                },
                search_hit::Document::Finding(finding) => TailResponse {
                    alert: None,
                    finding: Some(finding),
                },
            });
        }
        Ok(records)
    }
}
