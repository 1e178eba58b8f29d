//! The gRPC adapter of the search service: authenticates nothing itself (the server's
//! authentication layer attached the principal) and forwards to the peer. It implements the
//! service as `palisade_proto::wire` generates it, whose Search answer carries the hits'
//! stored records as they are, encoded; clients see palisade.v1.SearchService unchanged.

use palisade_core::bridge::principal_of;
use palisade_proto::v1::{
    DeleteSavedSearchRequest, DeleteSavedSearchResponse, GetRetentionRequest, GetRetentionResponse,
    ListSavedSearchesRequest, ListSavedSearchesResponse, ReindexRequest, ReindexResponse,
    SaveSearchRequest, SaveSearchResponse, SearchRequest, SetRetentionRequest,
    SetRetentionResponse, TailRequest,
};
use palisade_proto::wire;
use palisade_proto::wire::search_service_server::SearchService;
use tonic::{Request, Response, Status};

use crate::peer::{SearchPeer, TailStream};

/// Serves palisade.v1.SearchService from a [`SearchPeer`], through
/// `palisade_proto::wire::search_service_server::SearchServiceServer`.
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

#[tonic::async_trait]
impl SearchService for SearchGrpc {
    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<wire::SearchResponse>, Status> {
        let principal = principal_of(&request)?;
        let response = self.peer.search(&principal, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    type TailStream = TailStream;

    async fn tail(&self, request: Request<TailRequest>) -> Result<Response<TailStream>, Status> {
        let principal = principal_of(&request)?;
        let stream = self.peer.tail(&principal, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn reindex(
        &self,
        request: Request<ReindexRequest>,
    ) -> Result<Response<ReindexResponse>, Status> {
        let principal = principal_of(&request)?;
        let response = self.peer.reindex(&principal, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    async fn save_search(
        &self,
        request: Request<SaveSearchRequest>,
    ) -> Result<Response<SaveSearchResponse>, Status> {
        let principal = principal_of(&request)?;
        let response = self
            .peer
            .save_search(&principal, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn list_saved_searches(
        &self,
        request: Request<ListSavedSearchesRequest>,
    ) -> Result<Response<ListSavedSearchesResponse>, Status> {
        let principal = principal_of(&request)?;
        let response = self
            .peer
            .list_saved_searches(&principal, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn delete_saved_search(
        &self,
        request: Request<DeleteSavedSearchRequest>,
    ) -> Result<Response<DeleteSavedSearchResponse>, Status> {
        let principal = principal_of(&request)?;
        let response = self
            .peer
            .delete_saved_search(&principal, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn set_retention(
        &self,
        request: Request<SetRetentionRequest>,
    ) -> Result<Response<SetRetentionResponse>, Status> {
        let principal = principal_of(&request)?;
        let response = self
            .peer
            .set_retention(&principal, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn get_retention(
        &self,
        request: Request<GetRetentionRequest>,
    ) -> Result<Response<GetRetentionResponse>, Status> {
        let principal = principal_of(&request)?;
        let response = self
            .peer
            .get_retention(&principal, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }
}
