//! The graph service's error type: one enum, each variant with a stable reason code.

use std::path::PathBuf;

/// Everything that can go wrong in the graph service.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An input document could not be understood.
    #[error("{location}: {message}")]
    BadInput {
        /// File and document index (or other position) of the bad input.
        location: String,
        /// What was wrong.
        message: String,
    },
    /// An explorer query does not parse or names something unknown.
    #[error("invalid query at {position}: {message}")]
    InvalidQuery {
        /// Byte offset in the text form, or a JSON pointer in the builder form.
        position: String,
        /// What was wrong.
        message: String,
    },
    /// An explorer query would cost more than the configured budget.
    #[error("query exceeds its cost budget: {message}")]
    QueryTooExpensive {
        /// Which budget was exceeded and by how much.
        message: String,
    },
    /// An entity id was not found in the tenant's graph.
    #[error("entity {id} not found")]
    NotFound {
        /// The id that was looked up.
        id: String,
    },
    /// The persistent store failed.
    #[error("graph store failed: {0}")]
    Store(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("stored record {key} is corrupt: {message}")]
    CorruptRecord {
        /// The store key.
        key: String,
        /// Decoding error.
        message: String,
    },
    /// Talking to a Kubernetes API server failed.
    #[error("kubernetes api of cluster {cluster}: {message}")]
    Kube {
        /// The cluster (kubeconfig context) concerned.
        cluster: String,
        /// What went wrong.
        message: String,
    },
}

impl GraphError {
    /// Stable reason string users can search for.
    pub fn code(&self) -> &'static str {
        match self {
            GraphError::Io { .. } => "GRAPH_IO",
            GraphError::BadInput { .. } => "GRAPH_BAD_INPUT",
            GraphError::InvalidQuery { .. } => "GRAPH_INVALID_QUERY",
            GraphError::QueryTooExpensive { .. } => "GRAPH_QUERY_TOO_EXPENSIVE",
            GraphError::NotFound { .. } => "GRAPH_NOT_FOUND",
            GraphError::Store(_) => "GRAPH_STORE",
            GraphError::CorruptRecord { .. } => "GRAPH_CORRUPT_RECORD",
            GraphError::Kube { .. } => "GRAPH_KUBE_API",
        }
    }

    /// The gRPC status code this error maps to.
    pub fn grpc_code(&self) -> tonic_code::Code {
        match self {
            GraphError::BadInput { .. } | GraphError::InvalidQuery { .. } => {
                tonic_code::Code::InvalidArgument
            }
            GraphError::QueryTooExpensive { .. } => tonic_code::Code::ResourceExhausted,
            GraphError::NotFound { .. } => tonic_code::Code::NotFound,
            GraphError::Kube { .. } => tonic_code::Code::Unavailable,
            GraphError::Io { .. } | GraphError::Store(_) | GraphError::CorruptRecord { .. } => {
                tonic_code::Code::Internal
            }
        }
    }
}

/// The gRPC status codes the graph service's errors map to, without depending on tonic.
pub mod tonic_code {
    /// Subset of gRPC status codes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Code {
        /// The request was malformed.
        InvalidArgument,
        /// The request exceeded a resource budget.
        ResourceExhausted,
        /// The requested entity does not exist.
        NotFound,
        /// A dependency is unreachable.
        Unavailable,
        /// A server-side failure.
        Internal,
    }
}

/// Result alias of the graph service.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;
