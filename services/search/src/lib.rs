//! Palisade's search service: a tantivy index of alerts and findings fed from the durable log,
//! answering queries confined to the caller's tenant.
//!
//! Data flow: the gateway appends alerts (and the scanner and graph findings) to the log; the
//! [`Tailer`](actor::Tailer) wakes the [`Indexer`](indexer::Indexer) whenever the log grows; the
//! indexer reads from the positions stored in the index's last commit, adds documents, and
//! commits at most every [`COMMIT_INTERVAL`](actor::COMMIT_INTERVAL) with the new positions as
//! payload, so a crash at any point neither loses nor doubles a document.
//! Queries are answered by the [`SearchEngine`](engine::SearchEngine) from one snapshot of the
//! index each: the query language of [`query`] compiled to tantivy with the tenant clause
//! injected, one pass of [`collector`] (or [`filter`]'s bitsets) for count, page, facets and
//! histogram. Cheap queries run on the caller's task, the others on the
//! [`Searcher`](searcher::Searcher)s' threads.

pub mod actor;
pub mod collector;
pub mod engine;
pub mod error;
pub mod filter;
pub mod grpc;
pub mod indexer;
mod metrics;
pub mod peer;
pub mod query;
mod records;
mod request;
pub mod schema;
pub mod searcher;
pub mod settings;

pub use actor::{SearchActors, SearchIndexStatus, start_search_actors, start_search_actors_with};
pub use error::SearchError;
pub use grpc::SearchGrpc;
pub use indexer::{ALERTS_TOPIC, FINDINGS_TOPIC, SearchTopics};
pub use peer::SearchPeer;

/// Registers the search service's metrics so /metrics lists them before the first event.
pub fn register_metrics() {
    std::sync::LazyLock::force(&metrics::METRICS);
}
