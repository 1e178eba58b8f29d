//! Errors of the notifier, each with a stable code users can search for.

use palisade_core::CoreError;

/// Result of the notifier.
pub type Result<T> = std::result::Result<T, NotifyError>;

/// Everything that can go wrong in the notifier (failed deliveries are not errors: they are
/// retried, then recorded as dead letters).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A target's configuration cannot be used.
    #[error("notify target {target}: {message}")]
    InvalidTarget { target: String, message: String },
    /// The HTTP client of a target could not be built.
    #[error("notify target {target}: cannot build its HTTP client: {message}")]
    HttpClient { target: String, message: String },
    /// The store failed (positions, dead letters).
    #[error("notify storage: {0}")]
    Storage(#[from] CoreError),
    /// No target has this name.
    #[error("no notify target is named {0:?}")]
    UnknownTarget(String),
    /// A signature header is missing.
    #[error("signature header {header} is missing")]
    SignatureMissing { header: &'static str },
    /// A signature header cannot be read.
    #[error("signature header {header} is malformed: {message}")]
    SignatureMalformed {
        header: &'static str,
        message: String,
    },
    /// The signed timestamp is outside the tolerance (a replay, or clocks far apart).
    #[error(
        "signature timestamp is {age_seconds} s away from now, beyond the {tolerance_seconds} s tolerance"
    )]
    SignatureExpired {
        age_seconds: i64,
        tolerance_seconds: u64,
    },
    /// The signature is not the HMAC of the body and timestamp with the key.
    #[error("signature does not match the body and timestamp")]
    SignatureMismatch,
    /// A target's task ended abnormally.
    #[error("notify task failed: {0}")]
    Task(String),
}

impl NotifyError {
    /// Stable, searchable reason for the error.
    pub fn code(&self) -> &'static str {
        match self {
            NotifyError::InvalidTarget { .. } => "NOTIFY_INVALID_TARGET",
            NotifyError::HttpClient { .. } => "NOTIFY_HTTP_CLIENT",
            NotifyError::Storage(_) => "NOTIFY_STORAGE",
            NotifyError::UnknownTarget(_) => "NOTIFY_UNKNOWN_TARGET",
            NotifyError::SignatureMissing { .. } => "NOTIFY_SIGNATURE_MISSING",
            NotifyError::SignatureMalformed { .. } => "NOTIFY_SIGNATURE_MALFORMED",
            NotifyError::SignatureExpired { .. } => "NOTIFY_SIGNATURE_EXPIRED",
            NotifyError::SignatureMismatch => "NOTIFY_SIGNATURE_MISMATCH",
            NotifyError::Task(_) => "NOTIFY_TASK",
        }
    }
}
