//! `palisade status`.

use std::process::ExitCode;

use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::{GetStatusRequest, HealthState};
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::{OutputFormat, StatusArgs};
use crate::client::{ClientLimits, connect, describe_status, plain_channel};
use crate::output::print_table;

fn state_name(state: i32) -> &'static str {
    match HealthState::try_from(state).unwrap_or(HealthState::Unspecified) {
        HealthState::Serving => "serving",
        HealthState::Degraded => "degraded",
        HealthState::NotServing => "not serving",
        HealthState::Unspecified => "unknown",
    }
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let channel = match plain_channel(&args.client).await {
        Ok(channel) => channel,
        Err(error) => {
            report_unreachable(args.format, &format!("{error:#}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|response| response.into_inner().status)
        .map_err(|status| describe_status(&status));
    let serving = matches!(health, Ok(status) if status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let authenticated = connect(&args.client).await?;
    let status = AdminServiceClient::new(authenticated)
        .with_limits()
        .get_status(GetStatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| describe_status(&status));
    let healthy_components = status.as_ref().is_ok_and(|status| {
        status
            .components
            .iter()
            .all(|component| component.state == HealthState::Serving as i32)
    });
    match args.format {
        OutputFormat::Json => {
            let components: Vec<serde_json::Value> = match &status {
                Ok(status) => status
                    .components
                    .iter()
                    .map(|component| {
                        json!({
                            "name": component.name,
                            "state": state_name(component.state),
                            "detail": component.detail,
                            "metrics": component.metrics,
                        })
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            let body = json!({
                "server": args.client.server,
                "serving": serving,
                "healthy": serving && healthy_components,
                "version": status.as_ref().map(|status| status.version.clone()).ok(),
                "tenant": status.as_ref().map(|status| status.tenant_id.clone()).ok(),
                "components": components,
                "error": status.as_ref().err(),
            });
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        OutputFormat::Table => {
            println!(
                "server {}: {}",
                args.client.server,
                match &health {
                    Ok(_) if serving => "serving".to_string(),
                    Ok(_) => "not serving".to_string(),
                    Err(error) => error.clone(),
                }
            );
            match &status {
                Ok(status) => {
                    println!("version {}, tenant {}", status.version, status.tenant_id);
                    let rows: Vec<Vec<String>> = status
                        .components
                        .iter()
                        .map(|component| {
                            vec![
                                component.name.clone(),
                                state_name(component.state).to_string(),
                                component.detail.clone(),
                            ]
                        })
                        .collect();
                    print_table(&["COMPONENT", "STATE", "DETAIL"], &rows);
                }
                Err(error) => println!("components: {error}"),
            }
        }
    }
    Ok(if serving && healthy_components {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn report_unreachable(format: OutputFormat, error: &str) {
    match format {
        OutputFormat::Json => println!(
            "{}",
            json!({ "serving": false, "healthy": false, "error": error })
        ),
        OutputFormat::Table => println!("{error}"),
    }
}
