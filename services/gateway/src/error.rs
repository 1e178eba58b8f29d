//! Errors of the gateway.

/// Everything that can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("batch has {given} alerts; at most {limit} are accepted per call (split it)")]
    BatchTooLarge { given: usize, limit: usize },
    #[error("alert {index} of the batch: {message}")]
    InvalidAlert { index: usize, message: String },
    #[error("alert {id} not found")]
    AlertNotFound { id: String },
    #[error("stored alert at log offset {offset} cannot be decoded: {message}")]
    CorruptRecord { offset: u64, message: String },
    #[error(transparent)]
    Core(#[from] palisade_core::CoreError),
    #[error("agent_id must be 1-{max} printable characters, got {given:?}")]
    InvalidAgentId { max: usize, given: String },
    #[error("agent configuration: {0}")]
    InvalidAgentConfig(String),
    #[error("{0} is not yet available")]
    NotYetAvailable(&'static str),
}

impl GatewayError {
    /// Stable, searchable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            GatewayError::BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            GatewayError::InvalidAlert { .. } => "INVALID_ALERT",
            GatewayError::AlertNotFound { .. } => "ALERT_NOT_FOUND",
            GatewayError::CorruptRecord { .. } => "CORRUPT_RECORD",
            GatewayError::Core(error) => error.reason(),
            GatewayError::InvalidAgentId { .. } => "INVALID_AGENT_ID",
            GatewayError::InvalidAgentConfig(_) => "INVALID_AGENT_CONFIG",
            GatewayError::NotYetAvailable(_) => "NOT_YET_AVAILABLE",
        }
    }

    /// The gRPC status code this error maps to.
    pub fn code(&self) -> tonic::Code {
        match self {
            GatewayError::BatchTooLarge { .. } => tonic::Code::ResourceExhausted,
            GatewayError::InvalidAlert { .. } => tonic::Code::InvalidArgument,
            GatewayError::AlertNotFound { .. } => tonic::Code::NotFound,
            GatewayError::CorruptRecord { .. } => tonic::Code::Internal,
            GatewayError::Core(error) => error.code(),
            GatewayError::InvalidAgentId { .. } | GatewayError::InvalidAgentConfig(_) => {
                tonic::Code::InvalidArgument
            }
            GatewayError::NotYetAvailable(_) => tonic::Code::Unimplemented,
        }
    }
}

impl From<GatewayError> for tonic::Status {
    fn from(error: GatewayError) -> Self {
        tonic::Status::new(error.code(), format!("{} [{}]", error, error.reason()))
    }
}
