//! The scanner's one error type.

use std::path::PathBuf;

/// Everything that can stop a scan. Catalogers do not use this for a bad record inside a package
/// database: those become [`crate::sbom::CatalogIssue`]s and the scan goes on.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The image reference could not be understood.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// A local file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The image's index, manifest or configuration is missing or malformed.
    #[error("bad image metadata in {source_name}: {reason}")]
    ImageMetadata { source_name: String, reason: String },

    /// A blob's content does not hash to the digest that named it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// The registry refused or failed a request.
    #[error("registry error for {reference}: {reason}")]
    Registry { reference: String, reason: String },

    /// containerd refused or failed a request.
    #[error("containerd error at {socket}: {reason}")]
    Containerd { socket: String, reason: String },

    /// A layer is not a tar stream in a compression the scanner reads.
    #[error("layer {layer}: {reason}")]
    LayerFormat { layer: String, reason: String },

    /// A layer entry tries to escape the image or otherwise lie about the filesystem.
    #[error("layer {layer}, entry {entry:?}: refused: {reason}")]
    HostileEntry {
        layer: String,
        entry: String,
        reason: String,
    },

    /// A size, count or depth bound was crossed: the scan stops instead of exhausting memory.
    #[error("layer {layer}, entry {entry:?}: limit exceeded: {reason}")]
    LimitExceeded {
        layer: String,
        entry: String,
        reason: String,
    },

    /// The vulnerability matcher failed.
    #[error("vulnerability matching failed: {reason}")]
    Matching { reason: String },

    /// A report could not be written.
    #[error("cannot write the {format} report: {reason}")]
    Output { format: String, reason: String },

    /// The scan cache could not be read or written.
    #[error("scan cache at {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
}

impl ScanError {
    /// A stable reason string users can search for.
    pub fn code(&self) -> &'static str {
        match self {
            ScanError::InvalidReference { .. } => "scanner.invalid_reference",
            ScanError::Io { .. } => "scanner.io",
            ScanError::ImageMetadata { .. } => "scanner.image_metadata",
            ScanError::DigestMismatch { .. } => "scanner.digest_mismatch",
            ScanError::Registry { .. } => "scanner.registry",
            ScanError::Containerd { .. } => "scanner.containerd",
            ScanError::LayerFormat { .. } => "scanner.layer_format",
            ScanError::HostileEntry { .. } => "scanner.hostile_entry",
            ScanError::LimitExceeded { .. } => "scanner.limit_exceeded",
            ScanError::Matching { .. } => "scanner.matching",
            ScanError::Output { .. } => "scanner.output",
            ScanError::Cache { .. } => "scanner.cache",
        }
    }

    /// The gRPC status code a service should answer with for this error.
    pub fn grpc_code(&self) -> i32 {
        // Numeric tonic::Code values, so this crate does not depend on tonic's server side.
        const INVALID_ARGUMENT: i32 = 3;
        const NOT_FOUND: i32 = 5;
        const RESOURCE_EXHAUSTED: i32 = 8;
        const FAILED_PRECONDITION: i32 = 9;
        const INTERNAL: i32 = 13;
        const UNAVAILABLE: i32 = 14;
        const DATA_LOSS: i32 = 15;
        match self {
            ScanError::InvalidReference { .. } => INVALID_ARGUMENT,
            ScanError::Io { .. } => NOT_FOUND,
            ScanError::ImageMetadata { .. } | ScanError::LayerFormat { .. } => FAILED_PRECONDITION,
            ScanError::HostileEntry { .. } => INVALID_ARGUMENT,
            ScanError::DigestMismatch { .. } => DATA_LOSS,
            ScanError::LimitExceeded { .. } => RESOURCE_EXHAUSTED,
            ScanError::Registry { .. } | ScanError::Containerd { .. } => UNAVAILABLE,
            ScanError::Matching { .. } | ScanError::Output { .. } | ScanError::Cache { .. } => {
                INTERNAL
            }
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ScanError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The scanner's result type.
pub type Result<T, E = ScanError> = std::result::Result<T, E>;
