//! Authentication of gRPC calls: every call except health and reflection passes through
//! [`Authenticate`], which attaches the caller's [`Principal`] or refuses the call.

use palisade_core::auth::Credentials;
use tonic::service::Interceptor;

/// Interceptor that authenticates the bearer token of a call.
#[derive(Clone)]
pub struct Authenticate {
    credentials: Credentials,
}

impl Authenticate {
    /// An interceptor checking tokens against `credentials`.
    pub fn new(credentials: Credentials) -> Authenticate {
        Authenticate { credentials }
    }
}

impl Interceptor for Authenticate {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let principal = self
            .credentials
            .authenticate_metadata(request.metadata())
            .map_err(|error| {
                tracing::debug!(%error, "refused unauthenticated call");
                tonic::Status::from(error)
            })?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}
