//! The gRPC adapter of the search service: authenticates nothing itself (the server's
//! authentication layer attached the principal) and forwards to the peer.

use std::pin::Pin;

use palisade_core::bridge::principal_of;
use palisade_proto::v1::search_service_server::SearchService;
use palisade_proto::v1::{
    ReindexRequest, ReindexResponse, SearchRequest, SearchResponse, TailRequest, TailResponse,
};
use tonic::{Request, Response, Status};

use crate::error::SearchError;
use crate::peer::SearchPeer;

/// Serves palisade.v1.SearchService from a [`SearchPeer`].
#[derive(Clone)]
pub struct SearchGrpc {
    peer: SearchPeer,
}

impl SearchGrpc {
    /// An adapter forwarding to `peer`.
    pub fn new(peer: SearchPeer) -> SearchGrpc {
        SearchGrpc { peer }
    }
}

type TailStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<TailResponse, Status>> + Send>>;

#[tonic::async_trait]
impl SearchService for SearchGrpc {
    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchResponse>, Status> {
        let principal = principal_of(&request)?;
        let response = self.peer.search(&principal, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    type TailStream = TailStream;

    async fn tail(
        &self,
        request: Request<TailRequest>,
    ) -> Result<Response<Self::TailStream>, Status> {
        principal_of(&request)?;
        Err(SearchError::NotYetAvailable("live tail").into())
    }

    async fn reindex(
        &self,
        request: Request<ReindexRequest>,
    ) -> Result<Response<ReindexResponse>, Status> {
        principal_of(&request)?;
        Err(SearchError::NotYetAvailable("reindex").into())
    }
}
