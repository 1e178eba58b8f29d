//! The gateway in the distributed mode: calls to the search, graph and scanner services are
//! authenticated here and forwarded whole to the process that serves them.
//!
//! [`Forward`] stands in for a service's generated server: it takes the raw HTTP/2 request,
//! authenticates its bearer token like every other call, replaces the credential with the
//! internal service credential plus headers naming the caller's tenant, role and key, and
//! streams the request and the answer through a gRPC channel to the peer. The peer checks the
//! role of each call itself. Whatever tenant or role headers the caller sent are overwritten,
//! so no caller can act for another tenant through the gateway.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use palisade_core::auth::Credentials;
use palisade_core::auth::service::{ServiceToken, write_principal_headers};
use palisade_core::error::source_chain;
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tower::ServiceExt as _;

/// A service of another process, reached through the gateway.
pub struct Forward<S> {
    peer: &'static str,
    channel: Channel,
    credentials: Credentials,
    token: ServiceToken,
    service: PhantomData<fn() -> S>,
}

impl<S> Clone for Forward<S> {
    fn clone(&self) -> Self {
        Forward {
            peer: self.peer,
            channel: self.channel.clone(),
            credentials: self.credentials.clone(),
            token: self.token.clone(),
            service: PhantomData,
        }
    }
}

impl<S> Forward<S> {
    /// Forwards the calls of service `S` to `channel`, the `peer` service's listener.
    pub fn new(
        peer: &'static str,
        channel: Channel,
        credentials: Credentials,
        token: ServiceToken,
    ) -> Forward<S> {
        Forward {
            peer,
            channel,
            credentials,
            token,
            service: PhantomData,
        }
    }
}

impl<S: NamedService> NamedService for Forward<S> {
    const NAME: &'static str = S::NAME;
}

impl<S: 'static> tower::Service<http::Request<Body>> for Forward<S> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let forward = self.clone();
        Box::pin(async move { Ok(forward.forward(request).await) })
    }
}

impl<S> Forward<S> {
    async fn forward(self, request: http::Request<Body>) -> http::Response<Body> {
        let (mut parts, body) = request.into_parts();
        let mut metadata = MetadataMap::from_headers(std::mem::take(&mut parts.headers));
        let principal = match self.credentials.authenticate_metadata(&metadata) {
            Ok(principal) => principal,
            Err(error) => {
                tracing::debug!(%error, "refused unauthenticated call");
                return tonic::Status::from(error).into_http();
            }
        };
        if let Err(error) = write_principal_headers(&mut metadata, &principal, &self.token) {
            return tonic::Status::from(error).into_http();
        }
        parts.headers = metadata.into_headers();
        let request = http::Request::from_parts(parts, body);
        match self.channel.oneshot(request).await {
            Ok(response) => response,
            Err(error) => tonic::Status::unavailable(format!(
                "the {} service is unreachable: {}",
                self.peer,
                source_chain(&error)
            ))
            .into_http(),
        }
    }
}
