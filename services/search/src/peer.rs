//! The search service as a peer: the actors in this process, or the service in another process
//! over gRPC. Callers hold a [`SearchPeer`] and never know which. Roles are checked on the
//! local side, so a remote call is checked by the process that serves it.

use std::pin::Pin;

use palisade_core::auth::{Principal, Role};
use palisade_core::bridge::{mailbox_status, remote_request};
use palisade_core::ids::TenantId;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{
    DeleteSavedSearchRequest, DeleteSavedSearchResponse, GetRetentionRequest, GetRetentionResponse,
    ListSavedSearchesRequest, ListSavedSearchesResponse, ReindexRequest, ReindexResponse,
    SaveSearchRequest, SaveSearchResponse, SearchRequest, SetRetentionRequest,
    SetRetentionResponse, TailRequest, TailResponse,
};
use palisade_proto::wire;
use palisade_proto::wire::search_service_client::SearchServiceClient;
use tokio_stream::StreamExt as _;
use tonic::Status;
use tonic::transport::Channel;

use crate::actor::SearchActors;
use crate::error::SearchError;
use crate::indexer::{ApplyRetention, Reindex};
use crate::metrics::METRICS;
use crate::query::validate;
use crate::searcher::RunSearch;

/// A stream of live-tail records.
pub type TailStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<TailResponse, Status>> + Send>>;

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

fn require(principal: &Principal, role: Role) -> Result<(), Status> {
    principal
        .require(role)
        .map_err(|error| Status::from(SearchError::from(error)))
}

impl SearchPeer {
    /// A peer reached over `channel`, authenticated with the internal `service_token`.
    pub fn remote(channel: Channel, service_token: impl Into<String>) -> SearchPeer {
        SearchPeer::Remote {
            client: SearchServiceClient::new(channel),
            service_token: service_token.into(),
        }
    }

    /// Runs `request` for `principal`, confined to the principal's tenant. The hits' records
    /// stay encoded, as the service stores them and as its response carries them;
    /// [`wire::SearchResponse::decode_hits`] decodes them.
    pub async fn search(
        &self,
        principal: &Principal,
        request: SearchRequest,
    ) -> Result<wire::SearchResponse, Status> {
        match self {
            SearchPeer::Local(actors) => {
                // A cheap query is answered here, on the caller's task: the round trip through
                // the searchers' mailbox would be a fifth to a third of its time. Whether it is
                // cheap is known once it is compiled; one that turns out not to be is
                // compiled again by the searcher, which costs microseconds.
                let engine = &actors.engine;
                let plan = engine.plan(&principal.tenant, &request)?;
                if plan.may_run_inline() {
                    let search = engine.compile(plan)?;
                    if engine.runs_inline(&search) {
                        let response = engine.execute(search)?;
                        METRICS.queries_inline.inc();
                        return Ok(response);
                    }
                }
                let message = RunSearch {
                    tenant: principal.tenant.clone(),
                    request,
                };
                Ok(actors
                    .searcher
                    .send(message)
                    .await
                    .map_err(mailbox_status)??)
            }
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                Ok(client.clone().search(request).await?.into_inner())
            }
        }
    }

    /// Streams new records of the principal's tenant matching the query. A bad query fails
    /// here, before the stream starts.
    pub async fn tail(
        &self,
        principal: &Principal,
        request: TailRequest,
    ) -> Result<TailStream, Status> {
        match self {
            SearchPeer::Local(actors) => {
                let node = validate(&request.query, &actors.limits)
                    .map_err(|error| Status::from(SearchError::InvalidQuery(error)))?;
                let receiver = actors.tail(principal.tenant.clone(), node);
                let stream = tokio_stream::wrappers::ReceiverStream::new(receiver)
                    .map(|item| item.map_err(Status::from));
                Ok(Box::pin(stream))
            }
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                let stream = client.clone().tail(request).await?.into_inner();
                Ok(Box::pin(stream))
            }
        }
    }

    /// Rebuilds the principal's tenant's documents (or, for an admin of the default tenant
    /// asking for it, the whole index) from the log.
    pub async fn reindex(
        &self,
        principal: &Principal,
        request: ReindexRequest,
    ) -> Result<ReindexResponse, Status> {
        match self {
            SearchPeer::Local(actors) => {
                require(principal, Role::Admin)?;
                let tenant = if request.all_tenants {
                    if principal.tenant != TenantId::default_tenant() {
                        return Err(Status::permission_denied(
                            "rebuilding every tenant's documents needs an admin key of the default tenant [SEARCH_PERMISSION]",
                        ));
                    }
                    None
                } else {
                    Some(principal.tenant.clone())
                };
                let outcome = actors
                    .indexer
                    .send(Reindex { tenant })
                    .await
                    .map_err(mailbox_status)??;
                let now = chrono::Utc::now();
                Ok(ReindexResponse {
                    documents: outcome.documents,
                    finished: Some(Timestamp {
                        seconds: now.timestamp(),
                        nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
                    }),
                    records_read: outcome.records_read,
                })
            }
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                Ok(client.clone().reindex(request).await?.into_inner())
            }
        }
    }

    /// Saves a named query of the principal's tenant.
    pub async fn save_search(
        &self,
        principal: &Principal,
        request: SaveSearchRequest,
    ) -> Result<SaveSearchResponse, Status> {
        match self {
            SearchPeer::Local(actors) => {
                require(principal, Role::Analyst)?;
                let search = request.search.ok_or_else(|| {
                    Status::invalid_argument("search is missing [SEARCH_INVALID_REQUEST]")
                })?;
                validate(&search.query, &actors.limits)
                    .map_err(|error| Status::from(SearchError::InvalidQuery(error)))?;
                let stored = actors
                    .settings
                    .save(&principal.tenant, search, &principal.key_id)?;
                Ok(SaveSearchResponse {
                    search: Some(stored),
                })
            }
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                Ok(client.clone().save_search(request).await?.into_inner())
            }
        }
    }

    /// The principal's tenant's saved searches.
    pub async fn list_saved_searches(
        &self,
        principal: &Principal,
        request: ListSavedSearchesRequest,
    ) -> Result<ListSavedSearchesResponse, Status> {
        match self {
            SearchPeer::Local(actors) => Ok(ListSavedSearchesResponse {
                searches: actors.settings.list(&principal.tenant)?,
            }),
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                Ok(client
                    .clone()
                    .list_saved_searches(request)
                    .await?
                    .into_inner())
            }
        }
    }

    /// Deletes a saved search of the principal's tenant.
    pub async fn delete_saved_search(
        &self,
        principal: &Principal,
        request: DeleteSavedSearchRequest,
    ) -> Result<DeleteSavedSearchResponse, Status> {
        match self {
            SearchPeer::Local(actors) => {
                require(principal, Role::Analyst)?;
                Ok(DeleteSavedSearchResponse {
                    deleted: actors.settings.delete(&principal.tenant, &request.name)?,
                })
            }
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                Ok(client
                    .clone()
                    .delete_saved_search(request)
                    .await?
                    .into_inner())
            }
        }
    }

    /// Sets the principal's tenant's retention and deletes what is older at once.
    pub async fn set_retention(
        &self,
        principal: &Principal,
        request: SetRetentionRequest,
    ) -> Result<SetRetentionResponse, Status> {
        match self {
            SearchPeer::Local(actors) => {
                require(principal, Role::Admin)?;
                actors
                    .settings
                    .set_retention(&principal.tenant, request.days)?;
                let deleted = actors
                    .indexer
                    .send(ApplyRetention {
                        tenant: Some(principal.tenant.clone()),
                    })
                    .await
                    .map_err(mailbox_status)??;
                Ok(SetRetentionResponse {
                    days: request.days,
                    deleted,
                })
            }
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                Ok(client.clone().set_retention(request).await?.into_inner())
            }
        }
    }

    /// The principal's tenant's retention.
    pub async fn get_retention(
        &self,
        principal: &Principal,
        request: GetRetentionRequest,
    ) -> Result<GetRetentionResponse, Status> {
        match self {
            SearchPeer::Local(actors) => Ok(GetRetentionResponse {
                days: actors.settings.retention(&principal.tenant)?,
            }),
            SearchPeer::Remote {
                client,
                service_token,
            } => {
                let request = remote_request(request, principal, service_token)?;
                Ok(client.clone().get_retention(request).await?.into_inner())
            }
        }
    }
}
