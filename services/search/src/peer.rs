//! The search service as a peer: the actors in this process, or the service in another process
//! over gRPC. Callers hold a [`SearchPeer`] and never know which.

use palisade_core::auth::Principal;
use palisade_core::bridge::{mailbox_status, remote_request};
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{SearchRequest, SearchResponse};
use tonic::transport::Channel;

use crate::actor::{RunSearch, SearchActors};

/// A handle to the search service.
#[derive(Clone)]
pub enum SearchPeer {
    /// The actors of this process.
    Local(SearchActors),
    /// The search service of another process.
    Remote {
        client: SearchServiceClient<Channel>,
        /// Internal credential that lets this process call on behalf of its callers.
        service_token: String,
    },
}

impl SearchPeer {
    /// A peer reached over `channel`, authenticated with the internal `service_token`.
    pub fn remote(channel: Channel, service_token: impl Into<String>) -> SearchPeer {
        SearchPeer::Remote {
            client: SearchServiceClient::new(channel),
            service_token: service_token.into(),
        }
    }

    /// Runs `request` for `principal`, confined to the principal's tenant.
    pub async fn search(
        &self,
        principal: &Principal,
        request: SearchRequest,
    ) -> Result<SearchResponse, tonic::Status> {
        match self {
            SearchPeer::Local(actors) => {
                let message = RunSearch {
                    tenant: principal.tenant.clone(),
                    request,
                };
                let response = actors
                    .searcher
                    .send(message)
                    .await
                    .map_err(mailbox_status)??;
                Ok(response)
            }
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                let response = client.clone().search(request).await?;
                Ok(response.into_inner())
            }
        }
    }
}
