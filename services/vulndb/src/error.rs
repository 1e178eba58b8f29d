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
    /// A file beside the database could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Path that failed.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process held the database for longer than the caller would wait.
    #[error(
        "vulnerability database at {path} is in use by another process (an import, or a server \
         re-matching its images); waited {waited_ms} ms"
    )]
    Busy {
        /// Database directory.
        path: PathBuf,
        /// How long the open waited.
        waited_ms: u64,
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
    /// The database was written by a version with another on-disk layout.
    #[error(
        "vulnerability database at {path} has schema {found}, this version reads schema {expected}: import the feeds into a new directory"
    )]
    Schema {
        /// Database directory.
        path: PathBuf,
        /// Schema found on disk (`none` for a pre-versioned database).
        found: String,
        /// Schema this version writes.
        expected: u32,
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
            VulnDbError::Schema { .. } => "VULNDB_SCHEMA",
            VulnDbError::Unrecognised { .. } => "VULNDB_UNRECOGNISED",
            VulnDbError::Busy { .. } => "VULNDB_BUSY",
            VulnDbError::Write { .. } => "VULNDB_WRITE",
        }
    }
}
