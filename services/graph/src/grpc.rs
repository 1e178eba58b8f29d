//! The gRPC adapter of the graph service: the server's authentication layer attached the
//! caller's principal; every call reads the graph of the principal's tenant only, whatever the
//! request names (entity ids, cluster filters and queries cannot reach another tenant's graph,
//! which is a different object in the engine).

use palisade_core::auth::Role;
use palisade_core::bridge::principal_of;
use palisade_proto::v1::graph_service_server::GraphService;
use palisade_proto::v1::{
    GetEntityRequest, GetEntityResponse, GraphQueryRequest, GraphQueryResponse,
    ListAttackPathsRequest, ListAttackPathsResponse, ListInsightsRequest, ListInsightsResponse,
};
use tonic::{Request, Response, Status};

use crate::engine::GraphEngine;
use crate::error::{GraphError, tonic_code::Code};
use crate::live::GraphCore;
use crate::service;

/// Serves palisade.v1.GraphService from the graph core.
#[derive(Clone)]
pub struct GraphGrpc {
    core: GraphCore,
}

impl GraphGrpc {
    /// An adapter reading `core`.
    pub fn new(core: GraphCore) -> GraphGrpc {
        GraphGrpc { core }
    }

    /// Runs a read of the caller's graph on a blocking thread (explorer queries and path
    /// listings are CPU work).
    async fn answer<Q, A>(
        &self,
        request: Request<Q>,
        read: fn(&GraphEngine, &str, &Q) -> Result<A, GraphError>,
    ) -> Result<Response<A>, Status>
    where
        Q: Send + 'static,
        A: Send + 'static,
    {
        let principal = principal_of(&request)?;
        principal.require(Role::ReadOnly).map_err(Status::from)?;
        let core = self.core.clone();
        let message = request.into_inner();
        let answer = tokio::task::spawn_blocking(move || {
            let engine = core.read();
            read(&engine, principal.tenant.as_str(), &message)
        })
        .await
        .map_err(|error| Status::internal(format!("graph query failed: {error}")))?;
        answer.map(Response::new).map_err(status_of)
    }
}

/// The status of a graph error, its stable code leading the message.
pub fn status_of(error: GraphError) -> Status {
    let message = format!("{}: {error}", error.code());
    match error.grpc_code() {
        Code::InvalidArgument => Status::invalid_argument(message),
        Code::ResourceExhausted => Status::resource_exhausted(message),
        Code::NotFound => Status::not_found(message),
        Code::Unavailable => Status::unavailable(message),
        Code::Internal => Status::internal(message),
    }
}

#[tonic::async_trait]
impl GraphService for GraphGrpc {
    async fn query(
        &self,
        request: Request<GraphQueryRequest>,
    ) -> Result<Response<GraphQueryResponse>, Status> {
        self.answer(request, service::query).await
    }

    async fn list_attack_paths(
        &self,
        request: Request<ListAttackPathsRequest>,
    ) -> Result<Response<ListAttackPathsResponse>, Status> {
        self.answer(request, service::list_attack_paths).await
    }

    async fn get_entity(
        &self,
        request: Request<GetEntityRequest>,
    ) -> Result<Response<GetEntityResponse>, Status> {
        self.answer(request, service::get_entity).await
    }

    async fn list_insights(
        &self,
        request: Request<ListInsightsRequest>,
    ) -> Result<Response<ListInsightsResponse>, Status> {
        self.answer(request, service::list_insights).await
    }
}
