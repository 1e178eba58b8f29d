//! Metrics of the search service.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

pub(crate) struct SearchMetrics {
    pub indexed_documents: Counter,
    pub commits: Counter,
    pub undecodable_records: Counter,
    pub expired_records: Counter,
    pub expired_documents: Counter,
    pub reindexes: Counter,
    pub queries: Counter,
    pub queries_inline: Counter,
    pub queries_timed_out: Counter,
    pub live_tails: Gauge,
    pub indexed_offset: Gauge,
    pub filter_cache_hits: Counter,
    pub filter_cache_misses: Counter,
    pub filter_cache_bytes: Gauge,
}

pub(crate) static METRICS: LazyLock<SearchMetrics> = LazyLock::new(|| {
    let metrics = SearchMetrics {
        indexed_documents: Counter::default(),
        commits: Counter::default(),
        undecodable_records: Counter::default(),
        expired_records: Counter::default(),
        expired_documents: Counter::default(),
        reindexes: Counter::default(),
        queries: Counter::default(),
        queries_inline: Counter::default(),
        queries_timed_out: Counter::default(),
        live_tails: Gauge::default(),
        indexed_offset: Gauge::default(),
        filter_cache_hits: Counter::default(),
        filter_cache_misses: Counter::default(),
        filter_cache_bytes: Gauge::default(),
    };
    palisade_core::telemetry::register(|registry| {
        registry.register(
            "search_indexed_documents",
            "Documents added to the search index",
            metrics.indexed_documents.clone(),
        );
        registry.register(
            "search_index_commits",
            "Commits of the search index",
            metrics.commits.clone(),
        );
        registry.register(
            "search_undecodable_records",
            "Log records the indexer could not decode and skipped",
            metrics.undecodable_records.clone(),
        );
        registry.register(
            "search_expired_records",
            "Log records not indexed because they are older than their tenant's retention",
            metrics.expired_records.clone(),
        );
        registry.register(
            "search_expired_documents",
            "Documents deleted from the index by retention",
            metrics.expired_documents.clone(),
        );
        registry.register(
            "search_reindexes",
            "Rebuilds of the index from the log",
            metrics.reindexes.clone(),
        );
        registry.register(
            "search_queries",
            "Search queries answered",
            metrics.queries.clone(),
        );
        registry.register(
            "search_queries_inline",
            "Search queries cheap enough to be answered on the calling task, of search_queries",
            metrics.queries_inline.clone(),
        );
        registry.register(
            "search_queries_timed_out",
            "Search queries stopped at their time budget",
            metrics.queries_timed_out.clone(),
        );
        registry.register(
            "search_live_tails",
            "Live tails streaming now",
            metrics.live_tails.clone(),
        );
        registry.register(
            "search_indexed_log_offset",
            "Offset of the alert log up to which the index is committed",
            metrics.indexed_offset.clone(),
        );
        registry.register(
            "search_filter_cache_hits",
            "Term bitsets and segment time summaries found in the filter cache",
            metrics.filter_cache_hits.clone(),
        );
        registry.register(
            "search_filter_cache_misses",
            "Term bitsets and segment time summaries built because the filter cache lacked them",
            metrics.filter_cache_misses.clone(),
        );
        registry.register(
            "search_filter_cache_bytes",
            "Bytes held by the filter cache",
            metrics.filter_cache_bytes.clone(),
        );
    });
    metrics
});
