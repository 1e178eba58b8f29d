//! Errors of the shared layer, each with a stable reason users can search for.

use std::path::PathBuf;

/// Result of the shared layer.
pub type CoreResult<T> = Result<T, CoreError>;

/// Everything that can go wrong in the shared layer.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("cannot read configuration file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    ConfigParse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    ConfigInvalid(String),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory {path} is in use by another palisade process (pid {pid}); stop it or pick another --data-dir"
    )]
    DataDirLocked { path: PathBuf, pid: String },
    #[error("storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("storage transaction failed: {0}")]
    Transaction(String),
    #[error("corrupt record in {tree} at key {key}: {message}")]
    Corrupt {
        tree: String,
        key: String,
        message: String,
    },
    #[error("background task failed: {0}")]
    Task(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl CoreError {
    /// Stable, searchable reason for the error.
    pub fn reason(&self) -> &'static str {
        match self {
            CoreError::ConfigRead { .. } => "CONFIG_READ",
            CoreError::ConfigParse { .. } => "CONFIG_PARSE",
            CoreError::ConfigInvalid(_) => "CONFIG_INVALID",
            CoreError::DataDir { .. } => "DATA_DIR",
            CoreError::DataDirLocked { .. } => "DATA_DIR_LOCKED",
            CoreError::Storage(_) => "STORAGE",
            CoreError::Transaction(_) => "STORAGE_TRANSACTION",
            CoreError::Corrupt { .. } => "STORAGE_CORRUPT",
            CoreError::Task(_) => "TASK_FAILED",
            CoreError::Unauthenticated(_) => "UNAUTHENTICATED",
            CoreError::PermissionDenied(_) => "PERMISSION_DENIED",
            CoreError::NotFound(_) => "NOT_FOUND",
            CoreError::AlreadyExists(_) => "ALREADY_EXISTS",
            CoreError::InvalidArgument(_) => "INVALID_ARGUMENT",
            CoreError::Unavailable(_) => "UNAVAILABLE",
        }
    }

    /// The gRPC status code this error maps to.
    pub fn code(&self) -> tonic::Code {
        match self {
            CoreError::ConfigRead { .. }
            | CoreError::ConfigParse { .. }
            | CoreError::ConfigInvalid(_)
            | CoreError::InvalidArgument(_) => tonic::Code::InvalidArgument,
            CoreError::DataDir { .. }
            | CoreError::Storage(_)
            | CoreError::Transaction(_)
            | CoreError::Corrupt { .. }
            | CoreError::Task(_) => tonic::Code::Internal,
            CoreError::DataDirLocked { .. } => tonic::Code::FailedPrecondition,
            CoreError::Unauthenticated(_) => tonic::Code::Unauthenticated,
            CoreError::PermissionDenied(_) => tonic::Code::PermissionDenied,
            CoreError::NotFound(_) => tonic::Code::NotFound,
            CoreError::AlreadyExists(_) => tonic::Code::AlreadyExists,
            CoreError::Unavailable(_) => tonic::Code::Unavailable,
        }
    }
}

impl From<CoreError> for tonic::Status {
    fn from(error: CoreError) -> Self {
        tonic::Status::new(error.code(), format!("{} [{}]", error, error.reason()))
    }
}

/// An error and its sources, joined with ": " (transport errors hide the cause in a source).
pub fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
