//! The client side of a key: every call of a client carries `authorization: Bearer KEY`.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;

/// Adds `authorization: Bearer KEY` to every call.
#[derive(Clone, Debug)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    /// The interceptor for `key`; `None` when the key has characters a header cannot carry.
    pub fn new(key: &str) -> Option<BearerToken> {
        format!("Bearer {key}").parse().ok().map(BearerToken)
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}
