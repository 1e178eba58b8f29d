//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the vulnerability database.
#[derive(Debug, thiserror::Error)]
pub enum VulnDbError {
    /// The database directory could not be opened or written.
    #[error("vulnerability database at {path}: {source}")]
    Storage {
        /// Database directory.
        path: PathBuf,
        /// What sled reported.
        #[source]
        source: sled::Error,
    },
    /// A stored value could not be decoded (written by another version, or damaged).
    #[error("vulnerability database entry {key} is unreadable: {message}")]
    Corrupt {
        /// Key of the entry.
        key: String,
        /// Decoder message.
        message: String,
    },
    /// An input path could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Path that failed.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input is bigger than the limit set for its kind.
    #[error("{path}: {what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// File (and entry) that was too large.
        path: String,
        /// What was measured.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A whole input (not a single record) is malformed: a zip without a directory, a list that
    /// is not a list.
    #[error("{path}: {message}")]
    Malformed {
        /// File that failed.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// An import path names nothing the importer understands.
    #[error("{path}: no vulnerability data recognised")]
    Unrecognised {
        /// The path.
        path: PathBuf,
    },
}

impl VulnDbError {
    /// Stable reason string users can search for.
    pub fn code(&self) -> &'static str {
        match self {
            VulnDbError::Storage { .. } => "VULNDB_STORAGE",
            VulnDbError::Corrupt { .. } => "VULNDB_CORRUPT",
            VulnDbError::Read { .. } => "VULNDB_READ",
            VulnDbError::TooLarge { .. } => "VULNDB_TOO_LARGE",
            VulnDbError::Malformed { .. } => "VULNDB_MALFORMED",
            VulnDbError::Unrecognised { .. } => "VULNDB_UNRECOGNISED",
        }
    }
}
