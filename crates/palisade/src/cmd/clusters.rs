//! `palisade admin cluster register|token|list|revoke`, `palisade admin audit-log` and
//! `palisade enroll`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use palisade_core::agent_identity::{AgentIdentity, EnrollmentBundle, enroll as enroll_with};
use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::{
    IssueEnrollmentTokenRequest, ListAdminEventsRequest, ListClustersRequest,
    RegisterClusterRequest, RegisterClusterResponse, RevokeClusterCredentialsRequest,
};
use serde_json::json;

use crate::cli::{AuditLogArgs, ClusterCommand, ClusterTokenArgs, EnrollArgs, OutputFormat};
use crate::client::{ClientLimits, connect, describe_status};
use crate::output::print_table;

fn fail(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", describe_status(&status))
}

pub async fn run(command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Register(args) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let response = client
                .register_cluster(RegisterClusterRequest {
                    name: args.cluster.clone(),
                    token_ttl_seconds: ttl_seconds(&args),
                })
                .await
                .map_err(fail)?
                .into_inner();
            write_bundle(&args, response)?;
        }
        ClusterCommand::Token(args) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let response = client
                .issue_enrollment_token(IssueEnrollmentTokenRequest {
                    cluster_id: args.cluster.clone(),
                    token_ttl_seconds: ttl_seconds(&args),
                })
                .await
                .map_err(fail)?
                .into_inner();
            write_bundle(&args, response)?;
        }
        ClusterCommand::List(args) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let clusters = client
                .list_clusters(ListClustersRequest {})
                .await
                .map_err(fail)?
                .into_inner()
                .clusters;
            match args.format {
                OutputFormat::Json => {
                    let clusters: Vec<serde_json::Value> = clusters
                        .iter()
                        .map(|cluster| {
                            json!({
                                "id": cluster.id,
                                "created": cluster.created.map(|time| time.seconds),
                                "revoked": cluster.revoked,
                                "active_credentials": cluster.active_credentials,
                                "pending_tokens": cluster.pending_tokens,
                            })
                        })
                        .collect();
                    println!("{}", json!({ "clusters": clusters }));
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = clusters
                        .iter()
                        .map(|cluster| {
                            let state = if cluster.revoked { "revoked" } else { "active" };
                            vec![
                                cluster.id.clone(),
                                state.to_string(),
                                cluster.active_credentials.to_string(),
                                cluster.pending_tokens.to_string(),
                            ]
                        })
                        .collect();
                    print_table(
                        &["CLUSTER", "STATE", "CREDENTIALS", "PENDING TOKENS"],
                        &rows,
                    );
                }
            }
        }
        ClusterCommand::Revoke(args) => {
            let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
            let revoked = client
                .revoke_cluster_credentials(RevokeClusterCredentialsRequest {
                    cluster_id: args.cluster.clone(),
                    credential_id: args.credential.clone().unwrap_or_default(),
                })
                .await
                .map_err(fail)?
                .into_inner()
                .revoked;
            match args.format {
                OutputFormat::Json => println!(
                    "{}",
                    json!({ "cluster": args.cluster, "credential": args.credential, "revoked_credentials": revoked })
                ),
                OutputFormat::Table => println!(
                    "revoked {revoked} credential(s) of cluster {}{}",
                    args.cluster,
                    if args.credential.is_none() {
                        "; the cluster and its pending tokens are revoked too"
                    } else {
                        ""
                    }
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ttl_seconds(args: &ClusterTokenArgs) -> u64 {
    args.token_ttl.map(|ttl| ttl.as_secs().max(1)).unwrap_or(0)
}

fn write_bundle(args: &ClusterTokenArgs, response: RegisterClusterResponse) -> anyhow::Result<()> {
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.enrollment.json", args.cluster)));
    let expires = response
        .expires
        .map(|time| time.seconds)
        .unwrap_or_default();
    let bundle = EnrollmentBundle {
        agent_url: response.agent_url,
        server_name: response.server_name,
        ca_certificate_pem: response.ca_certificate_pem,
        enrollment_token: response.enrollment_token,
        tenant: response.tenant_id,
        cluster: response.cluster_id,
        expires,
    };
    bundle
        .save(&path)
        .with_context(|| format!("cannot write the enrollment bundle {}", path.display()))?;
    let expires_text = chrono::DateTime::from_timestamp(expires, 0)
        .map(|time| time.to_rfc3339())
        .unwrap_or_default();
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            json!({
                "cluster": bundle.cluster,
                "tenant": bundle.tenant,
                "bundle": path,
                "agent_url": bundle.agent_url,
                "expires": expires,
            })
        ),
        OutputFormat::Table => {
            println!(
                "cluster {} of tenant {}: enrollment bundle written to {} (mode 0600)",
                bundle.cluster,
                bundle.tenant,
                path.display()
            );
            println!("its token works once, until {expires_text}; on the cluster run");
            println!(
                "  palisade enroll --bundle {} --out /etc/palisade/credential",
                path.display()
            );
        }
    }
    Ok(())
}

pub async fn audit_log(args: AuditLogArgs) -> anyhow::Result<ExitCode> {
    let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
    let events = client
        .list_admin_events(ListAdminEventsRequest { limit: args.limit })
        .await
        .map_err(fail)?
        .into_inner()
        .events;
    let time_text = |time: Option<palisade_proto::prost_types::Timestamp>| {
        time.and_then(|time| chrono::DateTime::from_timestamp(time.seconds, 0))
            .map(|time| time.to_rfc3339())
            .unwrap_or_default()
    };
    match args.format {
        OutputFormat::Json => {
            let events: Vec<serde_json::Value> = events
                .iter()
                .map(|event| {
                    json!({
                        "time": time_text(event.time),
                        "actor": event.actor,
                        "action": event.action,
                        "target": event.target,
                        "outcome": event.outcome,
                    })
                })
                .collect();
            println!("{}", json!({ "events": events }));
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|event| {
                    vec![
                        time_text(event.time),
                        event.actor.clone(),
                        event.action.clone(),
                        event.target.clone(),
                        event.outcome.clone(),
                    ]
                })
                .collect();
            print_table(&["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn enroll(args: EnrollArgs) -> anyhow::Result<ExitCode> {
    if AgentIdentity::exists(&args.out) {
        anyhow::bail!(
            "{} holds a credential already; enroll into an empty directory",
            args.out.display()
        );
    }
    let bundle = EnrollmentBundle::load(&args.bundle)?;
    let identity = enroll_with(&bundle).await?;
    identity
        .save(&args.out)
        .with_context(|| format!("cannot write the credential to {}", args.out.display()))?;
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            json!({
                "tenant": identity.info.tenant,
                "cluster": identity.info.cluster,
                "credential_id": identity.info.credential_id,
                "not_after": identity.info.not_after,
                "dir": args.out,
            })
        ),
        OutputFormat::Table => println!(
            "enrolled cluster {} of tenant {}: credential {} in {}",
            identity.info.cluster,
            identity.info.tenant,
            identity.info.credential_id,
            args.out.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
