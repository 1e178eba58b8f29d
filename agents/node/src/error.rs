//! The agent's errors. Each has a stable `code()` users can search for.

use std::path::PathBuf;

/// Why a ring-buffer record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Longer than any record the kernel writes.
    #[error("record of {len} bytes is larger than the 16384-byte maximum")]
    TooLarge {
        /// Bytes given.
        len: usize,
    },
    /// Ends before a part that must be there.
    #[error("record truncated in its {what}: needed {needed} bytes, {available} available")]
    Truncated {
        /// Which part.
        what: &'static str,
        /// Bytes the part needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The header's length field disagrees with the record.
    #[error("record declares {declared} bytes but {available} were read")]
    BadLength {
        /// Length in the header.
        declared: usize,
        /// Bytes given.
        available: usize,
    },
    /// A record kind this agent does not know.
    #[error("unknown record kind {kind}")]
    UnknownKind {
        /// The kind field.
        kind: u16,
    },
    /// More parameters than any record has.
    #[error("record declares {count} parameters, at most 8 are allowed")]
    TooManyParams {
        /// Declared count.
        count: usize,
    },
    /// A parameter type this agent does not know.
    #[error("parameter {index} has unknown type {param_type}")]
    UnknownParam {
        /// Position of the parameter.
        index: usize,
        /// Its type byte.
        param_type: u8,
    },
    /// A fixed-size parameter with the wrong size.
    #[error("parameter {index} of type {param_type} has {len} bytes, not its fixed size")]
    BadParamLength {
        /// Position of the parameter.
        index: usize,
        /// Its type byte.
        param_type: u8,
        /// Its length.
        len: usize,
    },
}

impl RecordError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "record_too_large",
            Self::Truncated { .. } => "record_truncated",
            Self::BadLength { .. } => "record_bad_length",
            Self::UnknownKind { .. } => "record_unknown_kind",
            Self::TooManyParams { .. } => "record_too_many_params",
            Self::UnknownParam { .. } => "record_unknown_param",
            Self::BadParamLength { .. } => "record_bad_param_length",
        }
    }
}

/// Errors of the node agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The eBPF sensor could not start; the message says which capability or feature is missing.
    #[error("the eBPF sensor cannot start: {reason}")]
    SensorUnavailable {
        /// What is missing, and what to do about it.
        reason: String,
    },
    /// A record failed to decode.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The containerd API failed.
    #[error("containerd at {socket}: {message}")]
    Containerd {
        /// Socket path.
        socket: PathBuf,
        /// What failed.
        message: String,
    },
    /// The spool or the agent stream failed.
    #[error(transparent)]
    Link(#[from] palisade_agent_link::LinkError),
    /// A configuration file or option is wrong.
    #[error("configuration {source_name}: {message}")]
    Config {
        /// File or option.
        source_name: String,
        /// What is wrong, and where.
        message: String,
    },
    /// Rules could not be loaded.
    #[error("rules {path}: {message}")]
    Rules {
        /// Rules file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl AgentError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SensorUnavailable { .. } => "sensor_unavailable",
            Self::Record(error) => error.code(),
            Self::Containerd { .. } => "containerd_error",
            Self::Link(error) => error.code(),
            Self::Config { .. } => "config_error",
            Self::Rules { .. } => "rules_error",
            Self::Io { .. } => "io_error",
        }
    }

    /// The gRPC status code a service would map this error to.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::SensorUnavailable { .. } => tonic::Code::FailedPrecondition,
            Self::Record(_) | Self::Config { .. } | Self::Rules { .. } => {
                tonic::Code::InvalidArgument
            }
            Self::Containerd { .. } => tonic::Code::Unavailable,
            Self::Link(palisade_agent_link::LinkError::Stream { .. }) => tonic::Code::Unavailable,
            Self::Link(_) | Self::Io { .. } => tonic::Code::Internal,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
