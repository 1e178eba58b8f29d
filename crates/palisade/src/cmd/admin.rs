//! `palisade admin tenant|key` (cluster and audit-log in `clusters.rs`, agents and
//! agent-config in `agents.rs`).

use std::process::ExitCode;

use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::{
    CreateApiKeyRequest, CreateTenantRequest, DeleteTenantRequest, ListApiKeysRequest,
    ListTenantsRequest, RevokeApiKeyRequest, Role,
};
use serde_json::json;

use crate::cli::{
    AdminCommand, AgentConfigCommand, KeyCommand, OutputFormat, RoleArg, TenantCommand,
};
use crate::client::{ClientLimits, connect, describe_status};
use crate::output::print_table;

pub async fn run(command: AdminCommand) -> anyhow::Result<ExitCode> {
    let fail = |status: tonic::Status| anyhow::anyhow!("{}", describe_status(&status));
    match command {
        AdminCommand::Cluster(command) => return crate::cmd::clusters::run(command).await,
        AdminCommand::AuditLog(args) => return crate::cmd::clusters::audit_log(args).await,
        AdminCommand::Agents(args) => return super::agents::list(args).await,
        AdminCommand::AgentConfig(AgentConfigCommand::Set(args)) => {
            return super::agents::set(args).await;
        }
        AdminCommand::AgentConfig(AgentConfigCommand::Show(args)) => {
            return super::agents::show(args).await;
        }
        AdminCommand::Tenant(TenantCommand::Delete(args)) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let removed = client
                .delete_tenant(DeleteTenantRequest {
                    id: args.name.clone(),
                })
                .await
                .map_err(fail)?
                .into_inner();
            let records: u64 = removed.records_erased.values().sum();
            match args.format {
                OutputFormat::Json => println!(
                    "{}",
                    json!({
                        "deleted": args.name,
                        "records_erased": removed.records_erased,
                        "agents_removed": removed.agents_removed,
                        "agent_configs_removed": removed.agent_configs_removed,
                        "admin_events_removed": removed.admin_events_removed,
                        "scanned_images_removed": removed.scanned_images_removed,
                        "search_settings_removed": removed.search_settings_removed,
                        "graph_clusters_removed": removed.graph_clusters_removed,
                    })
                ),
                OutputFormat::Table => println!(
                    "deleted tenant {}: {records} log records erased; {} agents, {} agent configurations, {} audit events, {} scanned images, {} search settings and {} graph clusters removed",
                    args.name,
                    removed.agents_removed,
                    removed.agent_configs_removed,
                    removed.admin_events_removed,
                    removed.scanned_images_removed,
                    removed.search_settings_removed,
                    removed.graph_clusters_removed
                ),
            }
        }
        AdminCommand::Key(KeyCommand::List(args)) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let keys = client
                .list_api_keys(ListApiKeysRequest {})
                .await
                .map_err(fail)?
                .into_inner()
                .keys;
            let role_name = |role: i32| match Role::try_from(role) {
                Ok(Role::ReadOnly) => "read-only",
                Ok(Role::Analyst) => "analyst",
                Ok(Role::Admin) => "admin",
                _ => "unknown",
            };
            match args.format {
                OutputFormat::Json => {
                    let keys: Vec<serde_json::Value> = keys
                        .iter()
                        .map(|key| {
                            json!({
                                "key_id": key.key_id,
                                "name": key.name,
                                "role": role_name(key.role),
                                "created": key.created.map(|time| time.seconds),
                                "expires": key.expires.map(|time| time.seconds),
                                "revoked": key.revoked,
                            })
                        })
                        .collect();
                    println!("{}", json!({ "keys": keys }));
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = keys
                        .iter()
                        .map(|key| {
                            let state = if key.revoked { "revoked" } else { "active" };
                            vec![
                                key.key_id.clone(),
                                key.name.clone(),
                                role_name(key.role).to_string(),
                                state.to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["KEY ID", "NAME", "ROLE", "STATE"], &rows);
                }
            }
        }
        AdminCommand::Key(KeyCommand::Revoke(args)) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            client
                .revoke_api_key(RevokeApiKeyRequest {
                    key_id: args.key_id.clone(),
                })
                .await
                .map_err(fail)?;
            match args.format {
                OutputFormat::Json => println!("{}", json!({ "revoked": args.key_id })),
                OutputFormat::Table => println!("revoked key {}", args.key_id),
            }
        }
        AdminCommand::Tenant(TenantCommand::Create(args)) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let response = client
                .create_tenant(CreateTenantRequest {
                    name: args.name.clone(),
                })
                .await
                .map_err(fail)?
                .into_inner();
            let tenant = response.tenant.unwrap_or_default();
            match args.format {
                OutputFormat::Json => println!(
                    "{}",
                    json!({ "tenant": tenant.id, "name": tenant.name, "api_key": response.api_key })
                ),
                OutputFormat::Table => {
                    println!("created tenant {}", tenant.id);
                    println!("its first admin key (shown once): {}", response.api_key);
                }
            }
        }
        AdminCommand::Tenant(TenantCommand::List(args)) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let response = client
                .list_tenants(ListTenantsRequest {})
                .await
                .map_err(fail)?
                .into_inner();
            match args.format {
                OutputFormat::Json => {
                    let tenants: Vec<serde_json::Value> = response
                        .tenants
                        .iter()
                        .map(|tenant| json!({ "id": tenant.id, "name": tenant.name, "created": tenant.created.map(|time| time.seconds) }))
                        .collect();
                    println!("{}", json!({ "tenants": tenants }));
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = response
                        .tenants
                        .iter()
                        .map(|tenant| vec![tenant.id.clone(), tenant.name.clone()])
                        .collect();
                    print_table(&["ID", "NAME"], &rows);
                }
            }
        }
        AdminCommand::Key(KeyCommand::Create(args)) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let role = match args.role {
                RoleArg::ReadOnly => Role::ReadOnly,
                RoleArg::Analyst => Role::Analyst,
                RoleArg::Admin => Role::Admin,
            };
            let response = client
                .create_api_key(CreateApiKeyRequest {
                    name: args.name.clone(),
                    role: role as i32,
                    ttl_seconds: args.expires_in.map(|ttl| ttl.as_secs().max(1)).unwrap_or(0),
                })
                .await
                .map_err(fail)?
                .into_inner();
            match args.format {
                OutputFormat::Json => println!(
                    "{}",
                    json!({ "key_id": response.key_id, "api_key": response.api_key })
                ),
                OutputFormat::Table => println!(
                    "created key {} (shown once): {}",
                    response.key_id, response.api_key
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
