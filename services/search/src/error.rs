//! Errors of the search service.

/// Everything that can go wrong in the search service.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid query: {0}")]
    InvalidQuery(String),
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
    #[error("{0} is not yet available")]
    NotYetAvailable(&'static str),
}

impl SearchError {
    /// Stable, searchable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            SearchError::InvalidQuery(_) => "SEARCH_INVALID_QUERY",
            SearchError::InvalidRequest(_) => "SEARCH_INVALID_REQUEST",
            SearchError::Index(_) => "SEARCH_INDEX",
            SearchError::Open { .. } => "SEARCH_INDEX_OPEN",
            SearchError::Core(error) => error.reason(),
            SearchError::CorruptDocument { .. } => "SEARCH_CORRUPT_DOCUMENT",
            SearchError::NotYetAvailable(_) => "NOT_YET_AVAILABLE",
        }
    }

    /// The gRPC status code this error maps to.
    pub fn code(&self) -> tonic::Code {
        match self {
            SearchError::InvalidQuery(_) | SearchError::InvalidRequest(_) => {
                tonic::Code::InvalidArgument
            }
            SearchError::Index(_)
            | SearchError::Open { .. }
            | SearchError::CorruptDocument { .. } => tonic::Code::Internal,
            SearchError::Core(error) => error.code(),
            SearchError::NotYetAvailable(_) => tonic::Code::Unimplemented,
        }
    }
}

impl From<SearchError> for tonic::Status {
    fn from(error: SearchError) -> Self {
        tonic::Status::new(error.code(), format!("{} [{}]", error, error.reason()))
    }
}
