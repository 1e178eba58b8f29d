//! Palisade's search service: a tantivy index of alerts (and, later, findings) fed from the
//! durable log, answering queries confined to the caller's tenant.
//!
//! Data flow: the gateway appends alerts to the log; the [`Tailer`](actor::Tailer) wakes the
//! [`Indexer`](actor::Indexer) whenever the log grows; the indexer reads from the offset stored
//! in the index's last commit, upserts documents by (tenant, id) and commits with the new
//! offset as payload, so a crash at any point neither loses nor doubles a document.
//! [`Searcher`](actor::Searcher)s answer queries on their own threads.

pub mod actor;
pub mod error;
pub mod grpc;
mod metrics;
pub mod peer;
pub mod query;
pub mod schema;

pub use actor::{SearchActors, SearchIndexStatus, start_search_actors};
pub use error::SearchError;
pub use grpc::SearchGrpc;
pub use peer::SearchPeer;

/// Registers the search service's metrics so /metrics lists them before the first event.
pub fn register_metrics() {
    std::sync::LazyLock::force(&metrics::METRICS);
}
