//! The gRPC adapter of palisade.v1.AdminService: component health, tenants, clusters and
//! their enrollment, API keys, and the audit log of administrative actions. Every action that
//! changes something is recorded in the audit log of the caller's tenant, refused ones too.

use std::sync::Arc;

use palisade_core::auth::{Credentials, Principal, Role};
use palisade_core::bridge::principal_of;
use palisade_core::ids::TenantId;
use palisade_core::storage::Store;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::admin_service_server::AdminService;
use palisade_proto::v1::{
    AdminEvent, ApiKey, Cluster, ComponentStatus, CreateApiKeyRequest, CreateApiKeyResponse,
    CreateTenantRequest, CreateTenantResponse, DeleteTenantRequest, DeleteTenantResponse,
    GetAgentConfigRequest, GetAgentConfigResponse, GetStatusRequest, GetStatusResponse,
    IssueEnrollmentTokenRequest, ListAdminEventsRequest, ListAdminEventsResponse,
    ListAgentsRequest, ListAgentsResponse, ListApiKeysRequest, ListApiKeysResponse,
    ListClustersRequest, ListClustersResponse, ListTenantsRequest, ListTenantsResponse,
    RegisterClusterRequest, RegisterClusterResponse, RevokeApiKeyRequest, RevokeApiKeyResponse,
    RevokeClusterCredentialsRequest, RevokeClusterCredentialsResponse, SetAgentConfigRequest,
    SetAgentConfigResponse, Tenant,
};
use tonic::{Request, Response, Status};

use crate::agent_admin::AgentAdmin;
use crate::agents::AgentGrpc;
use crate::enrollment::EnrollmentSettings;
use crate::erasure::TenantEraser;

/// Reports the health of one component; called for every status request, so it must be cheap.
pub type StatusProbe = Arc<dyn Fn() -> ComponentStatus + Send + Sync>;

/// Asks another process for the health of its component (a service of the distributed mode);
/// bounded in time by whoever builds it.
pub type AskProbe =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, ComponentStatus> + Send + Sync>;

/// One component of the status report.
#[derive(Clone)]
pub enum Probe {
    /// A component of this process.
    Now(StatusProbe),
    /// A component of another process.
    Ask(AskProbe),
}

impl From<StatusProbe> for Probe {
    fn from(probe: StatusProbe) -> Probe {
        Probe::Now(probe)
    }
}

/// Serves AdminService.
#[derive(Clone)]
pub struct AdminGrpc {
    credentials: Credentials,
    store: Store,
    probes: Vec<Probe>,
    enrollment: EnrollmentSettings,
    started: Timestamp,
    agents: Option<AgentAdmin>,
    eraser: TenantEraser,
}

impl AdminGrpc {
    /// An adapter over `credentials`, reporting the given components' health, enrolling
    /// clusters with `enrollment` and deleting tenants with `eraser`.
    pub fn new(
        credentials: Credentials,
        store: Store,
        probes: Vec<Probe>,
        enrollment: EnrollmentSettings,
        eraser: TenantEraser,
    ) -> AdminGrpc {
        let now = chrono::Utc::now();
        AdminGrpc {
            credentials,
            store,
            probes,
            enrollment,
            started: Timestamp {
                seconds: now.timestamp(),
                nanos: 0,
            },
            agents: None,
            eraser,
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

    /// Records `outcome` of an action in the caller's audit log, makes it and the action
    /// durable, and passes the outcome on.
    async fn audited<T>(
        &self,
        principal: &Principal,
        action: &str,
        target: &str,
        outcome: Result<T, Status>,
    ) -> Result<T, Status> {
        let described = match &outcome {
            Ok(_) => "ok".to_string(),
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        };
        self.credentials
            .record_admin_event(principal, action, target, &described)?;
        self.store.flush().await?;
        tracing::info!(
            tenant = %principal.tenant,
            by = %principal.key_id,
            action,
            target,
            outcome = %described,
            "admin action"
        );
        outcome
    }
}

fn timestamp_of_rfc3339(text: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        })
}

fn role_message(role: Role) -> i32 {
    let role = match role {
        Role::ReadOnly => palisade_proto::v1::Role::ReadOnly,
        Role::Analyst => palisade_proto::v1::Role::Analyst,
        Role::Admin | Role::Service => palisade_proto::v1::Role::Admin,
    };
    role as i32
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
    Tenant {
        id: record.id.to_string(),
        created: timestamp_of_rfc3339(&record.created),
        name: record.name,
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
        let components = futures::future::join_all(self.probes.iter().map(|probe| async move {
            match probe {
                Probe::Now(probe) => probe(),
                Probe::Ask(probe) => probe().await,
            }
        }))
        .await
        .into_iter()
        .map(|component| {
            if operator {
                component
            } else {
                // the details and numbers count every tenant's data: only the state of each
                // component is the other tenants' business
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
        let name = request.into_inner().name;
        let outcome = self.create_tenant_for(&principal, &name);
        self.audited(&principal, "tenant.create", &name, outcome)
            .await
            .map(Response::new)
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
        let id = request.into_inner().id;
        let outcome = match require_operator(&principal)
            .and_then(|()| TenantId::new(id.clone()).map_err(Status::from))
        {
            Ok(tenant) => self.eraser.delete(&tenant).await.map_err(Status::from),
            Err(status) => Err(status),
        };
        self.audited(&principal, "tenant.delete", &id, outcome)
            .await
            .map(Response::new)
    }

    async fn register_cluster(
        &self,
        request: Request<RegisterClusterRequest>,
    ) -> Result<Response<RegisterClusterResponse>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        let outcome = principal
            .require(Role::Admin)
            .map_err(Status::from)
            .and_then(|()| {
                let ttl = self.enrollment.token_ttl(request.token_ttl_seconds);
                let token =
                    self.credentials
                        .register_cluster(&principal.tenant, &request.name, ttl)?;
                Ok(self.enrollment.bundle(principal.tenant.as_str(), token))
            });
        self.audited(&principal, "cluster.register", &request.name, outcome)
            .await
            .map(Response::new)
    }

    async fn issue_enrollment_token(
        &self,
        request: Request<IssueEnrollmentTokenRequest>,
    ) -> Result<Response<RegisterClusterResponse>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        let outcome = principal
            .require(Role::Admin)
            .map_err(Status::from)
            .and_then(|()| {
                let ttl = self.enrollment.token_ttl(request.token_ttl_seconds);
                let token = self.credentials.issue_enrollment_token(
                    &principal.tenant,
                    &request.cluster_id,
                    ttl,
                )?;
                Ok(self.enrollment.bundle(principal.tenant.as_str(), token))
            });
        self.audited(&principal, "cluster.token", &request.cluster_id, outcome)
            .await
            .map(Response::new)
    }

    async fn list_clusters(
        &self,
        request: Request<ListClustersRequest>,
    ) -> Result<Response<ListClustersResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::ReadOnly)?;
        let clusters = self
            .credentials
            .clusters(&principal.tenant)?
            .into_iter()
            .map(|summary| Cluster {
                created: timestamp_of_rfc3339(&summary.record.created),
                id: summary.record.id,
                revoked: summary.record.revoked,
                active_credentials: summary.active_credentials,
                pending_tokens: summary.pending_tokens,
            })
            .collect();
        Ok(Response::new(ListClustersResponse { clusters }))
    }

    async fn revoke_cluster_credentials(
        &self,
        request: Request<RevokeClusterCredentialsRequest>,
    ) -> Result<Response<RevokeClusterCredentialsResponse>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        let credential = Some(request.credential_id.as_str()).filter(|id| !id.is_empty());
        let outcome = principal
            .require(Role::Admin)
            .map_err(Status::from)
            .and_then(|()| {
                let revoked = self.credentials.revoke_cluster(
                    &principal.tenant,
                    &request.cluster_id,
                    credential,
                )?;
                Ok(RevokeClusterCredentialsResponse { revoked })
            });
        let target = match credential {
            Some(id) => format!("{}/{id}", request.cluster_id),
            None => request.cluster_id.clone(),
        };
        self.audited(&principal, "cluster.revoke", &target, outcome)
            .await
            .map(Response::new)
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Admin)?;
        let keys = self
            .credentials
            .api_keys(&principal.tenant)?
            .into_iter()
            .filter(|record| record.role != Role::Service)
            .map(|record| ApiKey {
                created: timestamp_of_rfc3339(&record.created),
                expires: record
                    .expires
                    .map(|seconds| Timestamp { seconds, nanos: 0 }),
                role: role_message(record.role),
                key_id: record.key_id,
                name: record.name,
                revoked: record.revoked,
            })
            .collect();
        Ok(Response::new(ListApiKeysResponse { keys }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<RevokeApiKeyResponse>, Status> {
        let principal = principal_of(&request)?;
        let key_id = request.into_inner().key_id;
        let outcome = principal
            .require(Role::Admin)
            .map_err(Status::from)
            .and_then(|()| {
                self.credentials
                    .revoke_api_key(&principal.tenant, &key_id)?;
                Ok(RevokeApiKeyResponse {})
            });
        self.audited(&principal, "apikey.revoke", &key_id, outcome)
            .await
            .map(Response::new)
    }

    async fn list_admin_events(
        &self,
        request: Request<ListAdminEventsRequest>,
    ) -> Result<Response<ListAdminEventsResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Admin)?;
        let limit = match request.into_inner().limit {
            0 => 100,
            limit => usize::try_from(limit).unwrap_or(usize::MAX),
        };
        let events = self
            .credentials
            .admin_events(&principal.tenant, limit)?
            .into_iter()
            .map(|event| AdminEvent {
                time: timestamp_of_rfc3339(&event.time),
                actor: event.actor,
                action: event.action,
                target: event.target,
                outcome: event.outcome,
            })
            .collect();
        Ok(Response::new(ListAdminEventsResponse { events }))
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        let outcome = principal
            .require(Role::Admin)
            .map_err(Status::from)
            .and_then(|()| self.create_api_key_for(&principal, &request));
        let target = match &outcome {
            Ok(created) => format!("{} ({})", created.key_id, request.name),
            Err(_) => request.name.clone(),
        };
        self.audited(&principal, "apikey.create", &target, outcome)
            .await
            .map(Response::new)
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
        let request = request.into_inner();
        let target = match request.cluster_id.as_str() {
            "" => "tenant".to_string(),
            cluster => format!("cluster {cluster}"),
        };
        let outcome = match self.agent_admin() {
            Ok(agents) => agents.set_config(&principal, request).await,
            Err(status) => Err(status),
        };
        self.audited(&principal, "agent-config.set", &target, outcome)
            .await
            .map(Response::new)
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

impl AdminGrpc {
    fn create_tenant_for(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<CreateTenantResponse, Status> {
        require_operator(principal)?;
        let tenant = TenantId::new(name)?;
        if !self.credentials.ensure_tenant(&tenant, name)? {
            return Err(Status::already_exists(format!(
                "tenant {tenant} already exists"
            )));
        }
        let key = self
            .credentials
            .create_api_key(&tenant, Role::Admin, "first admin key")?;
        let record = self
            .credentials
            .tenant(&tenant)?
            .ok_or_else(|| Status::internal("tenant vanished after creation"))?;
        Ok(CreateTenantResponse {
            tenant: Some(tenant_message(record)),
            api_key: key.token,
        })
    }

    fn create_api_key_for(
        &self,
        principal: &Principal,
        request: &CreateApiKeyRequest,
    ) -> Result<CreateApiKeyResponse, Status> {
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
        let key = match request.ttl_seconds {
            0 => self
                .credentials
                .create_api_key(&principal.tenant, role, &request.name)?,
            seconds => self.credentials.create_expiring_api_key(
                &principal.tenant,
                role,
                &request.name,
                std::time::Duration::from_secs(seconds),
            )?,
        };
        Ok(CreateApiKeyResponse {
            key_id: key.key_id,
            api_key: key.token,
        })
    }
}
