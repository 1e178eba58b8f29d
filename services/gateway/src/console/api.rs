//! The console reads everything through the platform's own gRPC API, in process: each call
//! goes through the same routes, authentication interceptor, role checks and tenant
//! confinement as a call from `palisade` or a Python client, with the signed-in key as its
//! bearer token. The console itself decides nothing about who may see what.

use palisade_core::auth::BearerToken;
use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::graph_service_client::GraphServiceClient;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use tonic::service::interceptor::InterceptedService;

/// Largest answer the console accepts from one call.
const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// The gRPC services, called in process.
pub type Channel = InterceptedService<tonic::service::Routes, BearerToken>;

/// Clients of the gRPC API for one signed-in key.
#[derive(Clone)]
pub struct Api {
    channel: Channel,
}

impl Api {
    /// Clients calling `routes` as the holder of `api_key`; `None` for a key that cannot be a
    /// header value.
    pub fn new(routes: tonic::service::Routes, api_key: &str) -> Option<Api> {
        Some(Api {
            channel: InterceptedService::new(routes, BearerToken::new(api_key)?),
        })
    }

    /// The search service.
    pub fn search(&self) -> SearchServiceClient<Channel> {
        SearchServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The graph service.
    pub fn graph(&self) -> GraphServiceClient<Channel> {
        GraphServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The alert service.
    pub fn alerts(&self) -> AlertServiceClient<Channel> {
        AlertServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The admin service.
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }
}
