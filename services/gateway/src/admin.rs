//! The gRPC adapter of palisade.v1.AdminService: component health, tenants and API keys.

use std::sync::Arc;

use palisade_core::auth::{Credentials, Principal, Role};
use palisade_core::bridge::principal_of;
use palisade_core::ids::TenantId;
use palisade_core::storage::Store;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::admin_service_server::AdminService;
use palisade_proto::v1::{
    ComponentStatus, CreateApiKeyRequest, CreateApiKeyResponse, CreateTenantRequest,
    CreateTenantResponse, DeleteTenantRequest, DeleteTenantResponse, GetAgentConfigRequest,
    GetAgentConfigResponse, GetStatusRequest, GetStatusResponse, ListAgentsRequest,
    ListAgentsResponse, ListTenantsRequest, ListTenantsResponse, RegisterClusterRequest,
    RegisterClusterResponse, SetAgentConfigRequest, SetAgentConfigResponse, Tenant,
};
use tonic::{Request, Response, Status};

use crate::agent_admin::AgentAdmin;
use crate::agents::AgentGrpc;
use crate::error::GatewayError;

/// Reports the health of one component; called for every status request, so it must be cheap.
pub type StatusProbe = Arc<dyn Fn() -> ComponentStatus + Send + Sync>;

/// Serves AdminService.
#[derive(Clone)]
pub struct AdminGrpc {
    credentials: Credentials,
    store: Store,
    probes: Vec<StatusProbe>,
    started: Timestamp,
    agents: Option<AgentAdmin>,
}

impl AdminGrpc {
    /// An adapter over `credentials`, reporting the given components' health.
    pub fn new(credentials: Credentials, store: Store, probes: Vec<StatusProbe>) -> AdminGrpc {
        let now = chrono::Utc::now();
        AdminGrpc {
            credentials,
            store,
            probes,
            started: Timestamp {
                seconds: now.timestamp(),
                nanos: 0,
            },
            agents: None,
        }
    }

    /// Serves the agent registry and agent configuration calls from the agent stream's state.
    pub fn with_agents(mut self, agents: &AgentGrpc) -> AdminGrpc {
        self.agents = Some(AgentAdmin::new(agents));
        self
    }

    fn agent_admin(&self) -> Result<&AgentAdmin, Status> {
        self.agents.as_ref().ok_or_else(|| {
            Status::unimplemented(
                "this process does not serve the agent stream, so it has no agents",
            )
        })
    }
}

/// Tenants are managed by admins of the `default` tenant only.
fn require_operator(principal: &Principal) -> Result<(), Status> {
    principal.require(Role::Admin)?;
    if principal.tenant != TenantId::default_tenant() {
        return Err(Status::permission_denied(
            "managing tenants needs an admin key of the default tenant",
        ));
    }
    Ok(())
}

fn tenant_message(record: palisade_core::auth::TenantRecord) -> Tenant {
    let created = chrono::DateTime::parse_from_rfc3339(&record.created)
        .ok()
        .map(|time| Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        });
    Tenant {
        id: record.id.to_string(),
        name: record.name,
        created,
    }
}

#[tonic::async_trait]
impl AdminService for AdminGrpc {
    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let principal = principal_of(&request)?;
        let operator = require_operator(&principal).is_ok();
        let components = self
            .probes
            .iter()
            .map(|probe| {
                let component = probe();
                if operator {
                    component
                } else {
                    // the details and numbers count every tenant's data: only the state of
                    // each component is the other tenants' business
                    ComponentStatus {
                        name: component.name,
                        state: component.state,
                        detail: String::new(),
                        metrics: Default::default(),
                    }
                }
            })
            .collect();
        Ok(Response::new(GetStatusResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            components,
            started: Some(self.started),
            tenant_id: principal.tenant.to_string(),
        }))
    }

    async fn create_tenant(
        &self,
        request: Request<CreateTenantRequest>,
    ) -> Result<Response<CreateTenantResponse>, Status> {
        let principal = principal_of(&request)?;
        require_operator(&principal)?;
        let name = request.into_inner().name;
        let tenant = TenantId::new(name.clone())?;
        if !self.credentials.ensure_tenant(&tenant, &name)? {
            return Err(Status::already_exists(format!(
                "tenant {tenant} already exists"
            )));
        }
        let key = self
            .credentials
            .create_api_key(&tenant, Role::Admin, "first admin key")?;
        self.store.flush().await?;
        tracing::info!(tenant = %tenant, by = %principal.key_id, "tenant created");
        let record = self
            .credentials
            .tenant(&tenant)?
            .ok_or_else(|| Status::internal("tenant vanished after creation"))?;
        Ok(Response::new(CreateTenantResponse {
            tenant: Some(tenant_message(record)),
            api_key: key.token,
        }))
    }

    async fn list_tenants(
        &self,
        request: Request<ListTenantsRequest>,
    ) -> Result<Response<ListTenantsResponse>, Status> {
        let principal = principal_of(&request)?;
        require_operator(&principal)?;
        let tenants = self
            .credentials
            .tenants()?
            .into_iter()
            .map(tenant_message)
            .collect();
        Ok(Response::new(ListTenantsResponse { tenants }))
    }

    async fn delete_tenant(
        &self,
        request: Request<DeleteTenantRequest>,
    ) -> Result<Response<DeleteTenantResponse>, Status> {
        let principal = principal_of(&request)?;
        require_operator(&principal)?;
        Err(GatewayError::NotYetAvailable("deleting a tenant and its data").into())
    }

    async fn register_cluster(
        &self,
        request: Request<RegisterClusterRequest>,
    ) -> Result<Response<RegisterClusterResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Admin)?;
        Err(GatewayError::NotYetAvailable("cluster enrollment").into())
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Admin)?;
        let request = request.into_inner();
        let role = match palisade_proto::v1::Role::try_from(request.role) {
            Ok(palisade_proto::v1::Role::ReadOnly) => Role::ReadOnly,
            Ok(palisade_proto::v1::Role::Analyst) => Role::Analyst,
            Ok(palisade_proto::v1::Role::Admin) => Role::Admin,
            _ => {
                return Err(Status::invalid_argument(
                    "role must be read-only, analyst or admin",
                ));
            }
        };
        let key = self
            .credentials
            .create_api_key(&principal.tenant, role, &request.name)?;
        self.store.flush().await?;
        tracing::info!(tenant = %principal.tenant, key = %key.key_id, by = %principal.key_id, "api key created");
        Ok(Response::new(CreateApiKeyResponse {
            key_id: key.key_id,
            api_key: key.token,
        }))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let principal = principal_of(&request)?;
        let agents = self.agent_admin()?;
        Ok(Response::new(
            agents.list(&principal, &request.into_inner())?,
        ))
    }

    async fn set_agent_config(
        &self,
        request: Request<SetAgentConfigRequest>,
    ) -> Result<Response<SetAgentConfigResponse>, Status> {
        let principal = principal_of(&request)?;
        let agents = self.agent_admin()?;
        Ok(Response::new(
            agents.set_config(&principal, request.into_inner()).await?,
        ))
    }

    async fn get_agent_config(
        &self,
        request: Request<GetAgentConfigRequest>,
    ) -> Result<Response<GetAgentConfigResponse>, Status> {
        let principal = principal_of(&request)?;
        let agents = self.agent_admin()?;
        Ok(Response::new(
            agents.get_config(&principal, &request.into_inner())?,
        ))
    }
}
