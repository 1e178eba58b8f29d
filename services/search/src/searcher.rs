//! The searcher actors: answer queries on their own threads (tantivy searches block), each
//! confined to the caller's tenant.

use std::ops::Bound;
use std::sync::Arc;

use actix::prelude::*;
use palisade_core::ids::TenantId;
use palisade_proto::v1::{Facet, FacetBucket, SearchRequest, SortOrder, TailResponse, search_hit};
use palisade_proto::wire;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, DocAddress, IndexReader, Term};
use tokio::time::Instant;

use crate::collector::{Collected, SearchCollector, SortCursor, SortSpec, TermsFacet};
use crate::error::SearchError;
use crate::filter::{FilterCache, collect_by_time};
use crate::indexer::Positions;
use crate::metrics::METRICS;
use crate::query::compile::{CompileContext, compile_confined};
use crate::query::time_range::TimeRangeQuery;
use crate::query::values::parse_duration_nanos;
use crate::query::{Node, QueryError, QueryLimits, parse};
use crate::records::{RecordReaders, decode_document, document_uid, snippet_text};
use crate::schema::{FIELDS, IndexSchema, KIND_ALERT};
use crate::settings::SearchSettings;

/// Hits per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Top values per facet when neither the facet nor the request says.
pub const DEFAULT_FACET_SIZE: usize = 10;
/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 200;

/// A query of one tenant. The answer's hits hold their stored records undecoded.
#[derive(Message)]
#[rtype(result = "Result<wire::SearchResponse, SearchError>")]
pub struct RunSearch {
    pub tenant: TenantId,
    pub request: SearchRequest,
}

/// The records of one tenant matching a query that became searchable between two commits.
#[derive(Message)]
#[rtype(result = "Result<Vec<TailResponse>, SearchError>")]
pub struct TailWindow {
    pub tenant: TenantId,
    pub query: Node,
    pub from: Positions,
    pub to: Positions,
}

/// Answers queries; several run in parallel, each on its own thread.
pub struct Searcher {
    pub(crate) schema: IndexSchema,
    pub(crate) reader: IndexReader,
    pub(crate) settings: SearchSettings,
    pub(crate) limits: QueryLimits,
    pub(crate) max_page_size: u32,
    /// Shared by every searcher thread.
    pub(crate) filter_cache: Arc<FilterCache>,
    /// Shared by every searcher thread.
    pub(crate) records: Arc<RecordReaders>,
}

impl Actor for Searcher {
    type Context = SyncContext<Self>;
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A facet as requested: a terms facet or the time histogram.
enum FacetSpec {
    Terms { label: String, facet: TermsFacet },
    Histogram { interval_micros: i64 },
}

/// The column a facet name counts.
fn facet_column(name: &str) -> Option<String> {
    let column = match name {
        "rule" => "rule_name",
        "priority" | "severity" => "priority",
        "tag" | "tags" => "tags",
        "node" | "hostname" => "node",
        "mitre" | "technique" => "technique",
        "cve" | "vulnerability" => "cve",
        "id" | "kind" | "source" | "cluster" | "namespace" | "pod" | "image" | "container"
        | "tactic" | "package" | "control" | "resolved" => name,
        dotted if dotted.contains('.') && !dotted.starts_with('.') && !dotted.ends_with('.') => {
            return Some(format!("{FIELDS}.{dotted}"));
        }
        _ => return None,
    };
    Some(column.to_string())
}

fn parse_facets(
    requested: &[String],
    default_size: usize,
    limits: &QueryLimits,
) -> Result<Vec<FacetSpec>, SearchError> {
    if requested.len() > limits.max_facets {
        return Err(SearchError::QueryLimit(format!(
            "{} facets requested; at most {} per query",
            requested.len(),
            limits.max_facets
        )));
    }
    let mut specs = Vec::with_capacity(requested.len());
    for text in requested {
        let (name, parameter) = match text.rsplit_once(':') {
            Some((name, parameter)) => (name, Some(parameter)),
            None => (text.as_str(), None),
        };
        if name == "time" || name == "@timestamp" {
            let interval = parameter.unwrap_or("1h");
            let nanos = parse_duration_nanos(interval).map_err(|message| {
                SearchError::InvalidRequest(format!("facet {text:?}: {message}"))
            })?;
            if nanos <= 0 {
                return Err(SearchError::InvalidRequest(format!(
                    "facet {text:?}: the histogram interval must be positive"
                )));
            }
            if specs
                .iter()
                .any(|spec| matches!(spec, FacetSpec::Histogram { .. }))
            {
                return Err(SearchError::InvalidRequest(
                    "one time histogram per query".into(),
                ));
            }
            specs.push(FacetSpec::Histogram {
                interval_micros: nanos / 1_000,
            });
            continue;
        }
        let size = match parameter {
            None => default_size,
            Some(size) => size.parse::<usize>().map_err(|_| {
                SearchError::InvalidRequest(format!(
                    "facet {text:?}: expected NAME or NAME:SIZE with a number of top values"
                ))
            })?,
        };
        if size == 0 || size > limits.max_facet_buckets {
            return Err(SearchError::QueryLimit(format!(
                "facet {text:?}: the number of top values must be 1 to {}",
                limits.max_facet_buckets
            )));
        }
        let column = facet_column(name).ok_or_else(|| {
            SearchError::InvalidRequest(format!(
                "cannot facet on {name:?}: use rule, priority, kind, source, tags, cluster, \
                 namespace, pod, image, node, container, technique, tactic, cve, package, \
                 control, resolved, time:INTERVAL or a dotted Falco field such as k8s.ns.name"
            ))
        })?;
        specs.push(FacetSpec::Terms {
            label: name.to_string(),
            facet: TermsFacet { column, size },
        });
    }
    Ok(specs)
}

fn sort_spec(sort: i32, free_text: bool) -> SortSpec {
    match SortOrder::try_from(sort).unwrap_or(SortOrder::Unspecified) {
        SortOrder::TimeAsc => SortSpec::TimeAsc,
        SortOrder::SeverityDesc => SortSpec::SeverityDesc,
        SortOrder::Relevance => SortSpec::Relevance,
        SortOrder::TimeDesc => SortSpec::TimeDesc,
        SortOrder::Unspecified if free_text => SortSpec::Relevance,
        SortOrder::Unspecified => SortSpec::TimeDesc,
    }
}

fn sort_code(sort: SortSpec) -> char {
    match sort {
        SortSpec::TimeDesc => 't',
        SortSpec::TimeAsc => 'a',
        SortSpec::SeverityDesc => 's',
        SortSpec::Relevance => 'r',
    }
}

/// A page position: an offset for relevance, a search-after key otherwise.
enum PagePosition {
    Start,
    Offset(usize),
    After(SortCursor),
}

fn parse_cursor(cursor: &str, sort: SortSpec) -> Result<PagePosition, SearchError> {
    if cursor.is_empty() {
        return Ok(PagePosition::Start);
    }
    let foreign = || {
        SearchError::InvalidRequest(format!(
            "cursor {:?} was not returned by this server for this sort order",
            cursor.chars().take(80).collect::<String>()
        ))
    };
    let mut parts = cursor.splitn(4, ':');
    let code = parts.next().ok_or_else(foreign)?;
    if code.len() != 1 || !code.starts_with(sort_code(sort)) {
        return Err(foreign());
    }
    if sort == SortSpec::Relevance {
        let offset = parts
            .next()
            .and_then(|offset| offset.parse().ok())
            .ok_or_else(foreign)?;
        return Ok(PagePosition::Offset(offset));
    }
    let primary = parts
        .next()
        .and_then(|value| value.parse().ok())
        .ok_or_else(foreign)?;
    let time = parts
        .next()
        .and_then(|value| value.parse().ok())
        .ok_or_else(foreign)?;
    let uid = parts.next().ok_or_else(foreign)?.to_string();
    Ok(PagePosition::After(SortCursor { primary, time, uid }))
}

/// True when the query has a free-text clause, so unspecified order means relevance.
fn has_free_text(node: &Node) -> bool {
    match node {
        Node::All => false,
        Node::And(children) | Node::Or(children) => children.iter().any(has_free_text),
        Node::Not(_) => false,
        Node::Match(clause) => clause.field.is_none(),
    }
}

impl Searcher {
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

    fn run(
        &self,
        tenant: &TenantId,
        request: &SearchRequest,
    ) -> Result<wire::SearchResponse, SearchError> {
        let started = Instant::now();
        let deadline = started + self.limits.time_budget;
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
        let searcher = self.reader.searcher();
        let mut filters: Vec<Box<dyn Query>> = Vec::new();
        if let Some(range) = request
            .time_range
            .as_ref()
            .and_then(|range| self.time_range_query(range))
        {
            filters.push(range);
        }
        let context = CompileContext {
            schema: &self.schema,
            searcher: &searcher,
            limits: &self.limits,
            now_nanos: now_nanos(),
            deadline,
        };
        let compiled = compile_confined(&node, tenant, filters, &context)?;
        let collector = SearchCollector {
            sort,
            limit,
            offset,
            cursor: match position {
                PagePosition::After(cursor) => Some(cursor),
                _ => None,
            },
            facets: facet_specs
                .iter()
                .filter_map(|spec| match spec {
                    FacetSpec::Terms { facet, .. } => Some(facet.clone()),
                    FacetSpec::Histogram { .. } => None,
                })
                .collect(),
            histogram_interval_micros: facet_specs.iter().find_map(|spec| match spec {
                FacetSpec::Histogram { interval_micros } => Some(*interval_micros),
                FacetSpec::Terms { .. } => None,
            }),
            max_histogram_buckets: self.limits.max_histogram_buckets,
            deadline,
        };
        let collected = match &compiled.filter {
            Some(filter) if collector.pages_by_time_only() => collect_by_time(
                &searcher,
                &collector,
                filter,
                &compiled.tenant,
                &self.filter_cache,
            )?,
            _ => searcher.search(compiled.confined.as_ref(), &collector)?,
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
        let snippets = if request.highlight {
            let mut generator =
                SnippetGenerator::create(&searcher, compiled.user.as_ref(), self.schema.output)?;
            generator.set_max_num_chars(SNIPPET_CHARS);
            Some(generator)
        } else {
            None
        };
        let mut hits = Vec::with_capacity(collected.hits.len());
        for hit in &collected.hits {
            let document = self
                .records
                .document(&self.schema, &searcher, hit.address)?;
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
        let next_cursor = self.next_cursor(sort, &collected, offset, last_record)?;
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

    /// The cursor after the page; `last_record` is the page's last hit's stored record, whose
    /// uid is read from it rather than from the uid column (a look-up there decompresses a
    /// dictionary block).
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

    fn time_range_query(&self, range: &palisade_proto::v1::TimeRange) -> Option<Box<dyn Query>> {
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

    fn tail_window(&self, window: &TailWindow) -> Result<Vec<TailResponse>, SearchError> {
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

impl Handler<RunSearch> for Searcher {
    type Result = Result<wire::SearchResponse, SearchError>;

    fn handle(&mut self, message: RunSearch, _context: &mut SyncContext<Self>) -> Self::Result {
        self.run(&message.tenant, &message.request)
    }
}

impl Handler<TailWindow> for Searcher {
    type Result = Result<Vec<TailResponse>, SearchError>;

    fn handle(&mut self, message: TailWindow, _context: &mut SyncContext<Self>) -> Self::Result {
        self.tail_window(&message)
    }
}
