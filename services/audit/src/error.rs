//! Errors of the audit watcher.

use std::path::PathBuf;

/// Failures of the audit watcher's operations.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An input file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A whole-document input file is larger than accepted.
    #[error(
        "{path} is a single JSON document of {size} bytes, more than the {limit} bytes accepted; split it into JSON lines"
    )]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Rules could not be loaded.
    #[error(transparent)]
    Rules(#[from] palisade_rules::RulesError),
    /// The offset or baseline store failed.
    #[error("state store {path}: {reason}")]
    Store {
        /// The store's directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Writing alerts or a summary failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The alert sink refused alerts.
    #[error("alert sink failed: {0}")]
    Sink(String),
}

impl AuditError {
    /// Stable reason string users can search for.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "audit_input_unreadable",
            Self::FileTooLarge { .. } => "audit_input_too_large",
            Self::Rules(error) => error.code(),
            Self::Store { .. } => "audit_state_store_failed",
            Self::Output(_) => "audit_output_failed",
            Self::Sink(_) => "audit_sink_failed",
        }
    }
}

impl From<sled::Error> for AuditError {
    fn from(error: sled::Error) -> Self {
        Self::Store {
            path: PathBuf::new(),
            reason: error.to_string(),
        }
    }
}
