//! Errors of the search service.

use std::time::Duration;

use crate::query::QueryError;

/// Everything that can go wrong in the search service.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid query {0}")]
    InvalidQuery(QueryError),
    #[error("query limit: {0}")]
    QueryLimit(String),
    #[error(
        "the query ran longer than its time budget of {0:?}; narrow it (a time range, fewer wildcards)"
    )]
    TimeBudget(Duration),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("cannot open the search index at {path}: {message}")]
    Open { path: String, message: String },
    #[error(transparent)]
    Core(#[from] palisade_core::CoreError),
    #[error("stored document {address} cannot be decoded: {message}")]
    CorruptDocument { address: String, message: String },
    #[error("saved search {0:?} does not exist")]
    SavedSearchNotFound(String),
    #[error("the search service is shutting down")]
    Unavailable,
}

impl SearchError {
    /// Stable, searchable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            SearchError::InvalidQuery(_) => "SEARCH_INVALID_QUERY",
            SearchError::QueryLimit(_) => "SEARCH_QUERY_LIMIT",
            SearchError::TimeBudget(_) => "SEARCH_TIME_BUDGET",
            SearchError::InvalidRequest(_) => "SEARCH_INVALID_REQUEST",
            SearchError::Index(_) => "SEARCH_INDEX",
            SearchError::Open { .. } => "SEARCH_INDEX_OPEN",
            SearchError::Core(error) => error.reason(),
            SearchError::CorruptDocument { .. } => "SEARCH_CORRUPT_DOCUMENT",
            SearchError::SavedSearchNotFound(_) => "SEARCH_SAVED_NOT_FOUND",
            SearchError::Unavailable => "SEARCH_UNAVAILABLE",
        }
    }

    /// The gRPC status code this error maps to.
    pub fn code(&self) -> tonic::Code {
        match self {
            SearchError::InvalidQuery(_)
            | SearchError::QueryLimit(_)
            | SearchError::InvalidRequest(_) => tonic::Code::InvalidArgument,
            SearchError::TimeBudget(_) => tonic::Code::DeadlineExceeded,
            SearchError::Index(_)
            | SearchError::Open { .. }
            | SearchError::CorruptDocument { .. } => tonic::Code::Internal,
            SearchError::Core(error) => error.code(),
            SearchError::SavedSearchNotFound(_) => tonic::Code::NotFound,
            SearchError::Unavailable => tonic::Code::Unavailable,
        }
    }
}

impl From<SearchError> for tonic::Status {
    fn from(error: SearchError) -> Self {
        tonic::Status::new(error.code(), format!("{} [{}]", error, error.reason()))
    }
}
