//! The admin calls about agents: the registry (ListAgents) and pushed configuration
//! (SetAgentConfig, GetAgentConfig). Each is confined to the caller's tenant: the tenant comes
//! from the credential, and no request field can name another.

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_core::auth::{Principal, Role};
use palisade_proto::v1::{
    GetAgentConfigRequest, GetAgentConfigResponse, ListAgentsRequest, ListAgentsResponse,
    SetAgentConfigRequest, SetAgentConfigResponse,
};
use tonic::Status;

use crate::agent_config::AgentConfigStore;
use crate::agents::AgentGrpc;
use crate::registry::AgentRegistry;

/// Longest cluster id accepted in a request.
const MAX_CLUSTER_ID: usize = 128;

/// The agent stream's state, as the admin service reads and changes it.
#[derive(Clone)]
pub struct AgentAdmin {
    registry: Arc<AgentRegistry>,
    configs: Arc<AgentConfigStore>,
}

fn cluster_of(cluster_id: &str) -> Result<&str, Status> {
    let printable = cluster_id.chars().all(|c| !c.is_control());
    if cluster_id.len() > MAX_CLUSTER_ID || !printable {
        return Err(Status::invalid_argument(format!(
            "cluster_id must be at most {MAX_CLUSTER_ID} printable characters"
        )));
    }
    Ok(cluster_id)
}

impl AgentAdmin {
    /// The admin view of `agents`.
    pub fn new(agents: &AgentGrpc) -> AgentAdmin {
        AgentAdmin {
            registry: agents.registry(),
            configs: agents.configs(),
        }
    }

    /// The caller's tenant's agents.
    pub fn list(
        &self,
        principal: &Principal,
        request: &ListAgentsRequest,
    ) -> Result<ListAgentsResponse, Status> {
        principal.require(Role::ReadOnly)?;
        let cluster = cluster_of(&request.cluster_id)?;
        let filter = (!cluster.is_empty()).then_some(cluster);
        Ok(ListAgentsResponse {
            agents: self.registry.list(&principal.tenant, filter),
        })
    }

    /// Replaces the caller's tenant's (or one of its clusters') agent configuration.
    pub async fn set_config(
        &self,
        principal: &Principal,
        request: SetAgentConfigRequest,
    ) -> Result<SetAgentConfigResponse, Status> {
        principal.require(Role::Admin)?;
        let cluster = cluster_of(&request.cluster_id)?.to_string();
        let rules_files: BTreeMap<String, String> = request.rules_files.into_iter().collect();
        let settings: BTreeMap<String, String> = request.settings.into_iter().collect();
        let config = self
            .configs
            .set(&principal.tenant, &cluster, rules_files, settings)
            .await?;
        let receives = |agent_cluster: &str| {
            if !cluster.is_empty() {
                return agent_cluster == cluster;
            }
            // the tenant-wide configuration reaches clusters without one of their own
            agent_cluster.is_empty()
                || matches!(self.configs.get(&principal.tenant, agent_cluster), Ok(None))
        };
        let pushed_to = self.registry.connected_count(&principal.tenant, receives);
        tracing::info!(
            tenant = %principal.tenant,
            cluster = %cluster,
            version = %config.version,
            pushed_to,
            by = %principal.key_id,
            "agent configuration set"
        );
        Ok(SetAgentConfigResponse {
            config: Some(config),
            pushed_to: u32::try_from(pushed_to).unwrap_or(u32::MAX),
        })
    }

    /// The caller's tenant's (or one of its clusters') agent configuration.
    pub fn get_config(
        &self,
        principal: &Principal,
        request: &GetAgentConfigRequest,
    ) -> Result<GetAgentConfigResponse, Status> {
        principal.require(Role::ReadOnly)?;
        let cluster = cluster_of(&request.cluster_id)?;
        let config = self.configs.get(&principal.tenant, cluster)?;
        Ok(GetAgentConfigResponse {
            config: config.map(|config| (*config).clone()),
        })
    }
}
