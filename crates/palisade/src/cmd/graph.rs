//! `palisade graph analyze|query|paths`: offline over manifests, snapshots and scan findings,
//! or online over the server's graph of the caller's tenant.

use std::collections::BTreeMap;
use std::process::ExitCode;

use palisade_graph::analyze::{
    AnalyzeOptions, OutputFormat as ReportFormat, analyze, query_offline, render,
};
use palisade_proto::v1::graph_service_client::GraphServiceClient;
use palisade_proto::v1::{
    AttackPath, Entity, GraphQueryRequest, ListAttackPathsRequest, PageRequest,
};
use serde_json::{Value, json};

use crate::cli::{
    ClientArgs, GraphCommand, GraphFormatArg, GraphInputArgs, GraphPathsArgs, GraphQueryArgs,
    OutputFormat,
};
use crate::client::{connect, describe_status};

/// Largest page asked of the server.
const PAGE: u32 = 500;

pub fn run(
    command: GraphCommand,
    runtime: impl FnOnce() -> anyhow::Result<tokio::runtime::Runtime>,
) -> anyhow::Result<ExitCode> {
    match command {
        GraphCommand::Analyze(args) => {
            let report = analyze(&options(args.input))?;
            for problem in &report.problems {
                eprintln!("skipped: {problem}");
            }
            let format = match args.format {
                GraphFormatArg::Table => ReportFormat::Table,
                GraphFormatArg::Json => ReportFormat::Json,
                GraphFormatArg::Dot => ReportFormat::Dot,
            };
            println!("{}", render(&report, format)?);
            if args.fail_on_attack_paths && report.has_attack_paths() {
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        GraphCommand::Query(args) if args.server.is_some() => {
            runtime()?.block_on(query_online(args))
        }
        GraphCommand::Query(args) => query_local(args),
        GraphCommand::Paths(args) => runtime()?.block_on(paths_online(args)),
    }
}

fn query_local(args: GraphQueryArgs) -> anyhow::Result<ExitCode> {
    let result = query_offline(&options(args.input), &args.query)?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        OutputFormat::Table => {
            print_entity_header();
            for row in &result.rows {
                let entity = &row.entity;
                print_entity_row(
                    serde_json::to_value(entity.kind)?
                        .as_str()
                        .unwrap_or_default(),
                    &entity.namespace,
                    &entity.name,
                    &entity.id,
                );
            }
            println!("{} match(es)", result.total);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_entity_header() {
    println!("{:<16} {:<24} {:<40} ID", "KIND", "NAMESPACE", "NAME");
}

fn print_entity_row(kind: &str, namespace: &str, name: &str, id: &str) {
    println!("{kind:<16} {namespace:<24} {name:<40} {id}");
}

/// An entity of the API in the JSON shape of the offline output.
fn entity_json(entity: &Entity) -> Value {
    let reference = entity.r#ref.clone().unwrap_or_default();
    json!({
        "id": entity.id,
        "kind": reference.kind,
        "name": reference.name,
        "namespace": reference.namespace,
        "cluster": reference.cluster_id,
        "properties": entity.properties.iter().collect::<BTreeMap<_, _>>(),
    })
}

async fn query_online(args: GraphQueryArgs) -> anyhow::Result<ExitCode> {
    let client_args = ClientArgs {
        server: args.server.clone().unwrap_or_default(),
        token: args.token.clone(),
        data_dir: args.data_dir.clone(),
        ca_file: std::env::var_os("PALISADE_CA_FILE").map(std::path::PathBuf::from),
    };
    let mut client = GraphServiceClient::new(connect(&client_args).await?)
        .max_decoding_message_size(64 * 1024 * 1024);
    // the JSON builder form starts with '{'; anything else is the text form
    let (query, query_json) = if args.query.trim_start().starts_with('{') {
        (String::new(), args.query.clone())
    } else {
        (args.query.clone(), String::new())
    };
    let mut entities: Vec<Entity> = Vec::new();
    let mut cursor = String::new();
    let mut total;
    loop {
        let wanted = args.limit.saturating_sub(entities.len() as u32).min(PAGE);
        let response = client
            .query(GraphQueryRequest {
                query: query.clone(),
                query_json: query_json.clone(),
                page: Some(PageRequest {
                    limit: wanted,
                    cursor: cursor.clone(),
                }),
            })
            .await
            .map_err(|status| anyhow::anyhow!("{}", describe_status(&status)))?
            .into_inner();
        total = response.total;
        entities.extend(response.entities);
        cursor = response.next_cursor;
        if cursor.is_empty() || entities.len() as u32 >= args.limit {
            break;
        }
    }
    match args.format {
        OutputFormat::Json => {
            let rows: Vec<Value> = entities
                .iter()
                .map(|entity| json!({ "entity": entity_json(entity) }))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "total": total, "rows": rows }))?
            );
        }
        OutputFormat::Table => {
            print_entity_header();
            for entity in &entities {
                let reference = entity.r#ref.clone().unwrap_or_default();
                print_entity_row(
                    &reference.kind,
                    &reference.namespace,
                    &reference.name,
                    &entity.id,
                );
            }
            println!("{total} match(es)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn path_json(path: &AttackPath) -> Value {
    json!({
        "id": path.id,
        "title": path.title,
        "risk_score": path.risk_score,
        "risk_reasons": path.risk_reasons,
        "entry": path.entry.as_ref().map(entity_json),
        "target": path.target.as_ref().map(entity_json),
        "steps": path.steps.iter().map(|step| json!({
            "entity": step.entity.as_ref().map(entity_json),
            "technique": step.technique,
            "mitre_id": step.mitre_id,
        })).collect::<Vec<_>>(),
        "remediation": path.remediation,
    })
}

async fn paths_online(args: GraphPathsArgs) -> anyhow::Result<ExitCode> {
    let mut client = GraphServiceClient::new(connect(&args.client).await?)
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut paths: Vec<AttackPath> = Vec::new();
    let mut cursor = String::new();
    loop {
        let wanted = args.limit.saturating_sub(paths.len() as u32).min(PAGE);
        let response = client
            .list_attack_paths(ListAttackPathsRequest {
                page: Some(PageRequest {
                    limit: wanted,
                    cursor: cursor.clone(),
                }),
                cluster_id: args.cluster.clone().unwrap_or_default(),
            })
            .await
            .map_err(|status| anyhow::anyhow!("{}", describe_status(&status)))?
            .into_inner();
        paths.extend(response.paths);
        cursor = response.next_cursor;
        if cursor.is_empty() || paths.len() as u32 >= args.limit {
            break;
        }
    }
    match args.format {
        OutputFormat::Json => {
            let listed: Vec<Value> = paths.iter().map(path_json).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "attack_paths": listed }))?
            );
        }
        OutputFormat::Table => {
            for path in &paths {
                println!("{:>5.1}  {}", path.risk_score, path.title);
                for step in &path.steps {
                    let reference = step
                        .entity
                        .as_ref()
                        .and_then(|entity| entity.r#ref.clone())
                        .unwrap_or_default();
                    let technique = if step.technique.is_empty() {
                        String::new()
                    } else {
                        format!("  --{} ({})-->", step.technique, step.mitre_id)
                    };
                    println!(
                        "       {} {}/{}{technique}",
                        reference.kind, reference.namespace, reference.name
                    );
                }
            }
            println!("{} attack path(s)", paths.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn options(input: GraphInputArgs) -> AnalyzeOptions {
    AnalyzeOptions {
        manifests: input.manifests,
        snapshots: input.snapshots,
        findings: input.findings,
        cluster: Some(input.cluster),
    }
}
