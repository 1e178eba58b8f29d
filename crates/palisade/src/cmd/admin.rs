//! `palisade admin tenant|key` (agents and agent-config in `agents.rs`).

use std::process::ExitCode;

use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::{CreateApiKeyRequest, CreateTenantRequest, ListTenantsRequest, Role};
use serde_json::json;

use crate::cli::{
    AdminCommand, AgentConfigCommand, KeyCommand, OutputFormat, RoleArg, TenantCommand,
};
use crate::client::{ClientLimits, connect, describe_status};
use crate::output::print_table;

pub async fn run(command: AdminCommand) -> anyhow::Result<ExitCode> {
    let fail = |status: tonic::Status| anyhow::anyhow!("{}", describe_status(&status));
    match command {
        AdminCommand::Agents(args) => return super::agents::list(args).await,
        AdminCommand::AgentConfig(AgentConfigCommand::Set(args)) => {
            return super::agents::set(args).await;
        }
        AdminCommand::AgentConfig(AgentConfigCommand::Show(args)) => {
            return super::agents::show(args).await;
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
