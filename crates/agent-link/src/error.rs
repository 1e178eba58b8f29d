//! Errors of the agent link.

use std::path::PathBuf;

/// What can go wrong between an agent's alerts and the gateway.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The spool failed.
    #[error("spool at {path}: {message}")]
    Spool {
        /// Spool directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The agent stream to the server failed.
    #[error("agent stream to {url}: {message}")]
    Stream {
        /// Server URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// A file or directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl LinkError {
    /// Stable, searchable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Spool { .. } => "spool_error",
            Self::Stream { .. } => "stream_error",
            Self::Io { .. } => "io_error",
        }
    }

    /// The path-carrying I/O error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
