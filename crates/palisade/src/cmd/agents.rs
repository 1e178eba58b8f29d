//! `palisade admin agents` and `palisade admin agent-config set|show`.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::{
    AgentConfig, AgentInfo, AgentKind, AgentState, GetAgentConfigRequest, ListAgentsRequest,
    SetAgentConfigRequest,
};
use serde_json::{Value, json};

use crate::cli::{AgentConfigSetArgs, AgentConfigShowArgs, AgentsListArgs, OutputFormat};
use crate::client::{ClientLimits, connect, describe_status};
use crate::output::print_table;

fn fail(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", describe_status(&status))
}

fn state_name(state: i32) -> &'static str {
    match AgentState::try_from(state) {
        Ok(AgentState::Connected) => "connected",
        Ok(AgentState::Dead) => "dead",
        Ok(AgentState::Disconnected) => "disconnected",
        _ => "unknown",
    }
}

fn kind_name(kind: i32) -> &'static str {
    match AgentKind::try_from(kind) {
        Ok(AgentKind::Node) => "node",
        Ok(AgentKind::Audit) => "audit",
        _ => "unknown",
    }
}

fn time_text(time: Option<palisade_proto::prost_types::Timestamp>) -> Value {
    time.as_ref()
        .map(|time| Value::String(palisade_core::falco::format_time(time)))
        .unwrap_or(Value::Null)
}

fn agent_json(agent: &AgentInfo) -> Value {
    let drops = agent.drops.unwrap_or_default();
    json!({
        "agent_id": agent.agent_id,
        "cluster_id": agent.cluster_id,
        "kind": kind_name(agent.kind),
        "state": state_name(agent.state),
        "version": agent.version,
        "node_name": agent.node_name,
        "capabilities": agent.capabilities,
        "connected_since": time_text(agent.connected_since),
        "last_seen": time_text(agent.last_seen),
        "spool_batches": agent.spool_batches,
        "durable_seq": agent.durable_seq,
        "throttled": agent.throttled,
        "config_version": agent.config_version,
        "config_error": agent.config_error,
        "drops": {
            "kernel_ringbuf_full": drops.kernel_ringbuf_full,
            "decode_errors": drops.decode_errors,
            "rules_queue_full": drops.rules_queue_full,
            "spool_evicted": drops.spool_evicted,
            "suppressed": drops.suppressed,
            "malformed_events": drops.malformed_events,
        },
    })
}

/// `palisade admin agents`.
pub async fn list(args: AgentsListArgs) -> anyhow::Result<ExitCode> {
    let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
    let agents = client
        .list_agents(ListAgentsRequest {
            cluster_id: args.cluster.unwrap_or_default(),
        })
        .await
        .map_err(fail)?
        .into_inner()
        .agents;
    match args.format {
        OutputFormat::Json => {
            let listed: Vec<Value> = agents.iter().map(agent_json).collect();
            println!("{}", json!({ "agents": listed }));
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = agents
                .iter()
                .map(|agent| {
                    let drops = agent.drops.unwrap_or_default();
                    let dropped = drops.kernel_ringbuf_full
                        + drops.decode_errors
                        + drops.rules_queue_full
                        + drops.spool_evicted
                        + drops.malformed_events;
                    vec![
                        agent.agent_id.clone(),
                        kind_name(agent.kind).to_string(),
                        state_name(agent.state).to_string(),
                        time_text(agent.last_seen)
                            .as_str()
                            .unwrap_or("-")
                            .to_string(),
                        agent.spool_batches.to_string(),
                        dropped.to_string(),
                        if agent.config_error.is_empty() {
                            agent.config_version.clone()
                        } else {
                            format!("{} ({})", agent.config_version, agent.config_error)
                        },
                    ]
                })
                .collect();
            print_table(
                &[
                    "AGENT",
                    "KIND",
                    "STATE",
                    "LAST SEEN",
                    "SPOOLED",
                    "DROPPED",
                    "CONFIG",
                ],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Rules files named by their position, so the agents' name-ordered load keeps the order the
/// files were given in.
fn read_rules(paths: &[std::path::PathBuf]) -> anyhow::Result<HashMap<String, String>> {
    let mut files = HashMap::new();
    for (position, path) in paths.iter().enumerate() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read rules file {}", path.display()))?;
        let base = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rules.yaml".to_string());
        files.insert(format!("{:02}-{base}", position + 1), text);
    }
    Ok(files)
}

fn parse_settings(settings: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut parsed = HashMap::new();
    for setting in settings {
        let Some((key, value)) = setting.split_once('=') else {
            bail!("--setting {setting:?} must be KEY=VALUE");
        };
        if key.trim().is_empty() {
            bail!("--setting {setting:?} has an empty key");
        }
        if parsed
            .insert(key.trim().to_string(), value.to_string())
            .is_some()
        {
            bail!("--setting {key} is given twice");
        }
    }
    Ok(parsed)
}

fn config_json(config: &AgentConfig, with_text: bool) -> Value {
    let mut names: Vec<&String> = config.rules_files.keys().collect();
    names.sort();
    let files: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let text = &config.rules_files[name];
            if with_text {
                json!({ "name": name, "bytes": text.len(), "text": text })
            } else {
                json!({ "name": name, "bytes": text.len() })
            }
        })
        .collect();
    let settings: serde_json::Map<String, Value> = config
        .settings
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
    json!({ "version": config.version, "rules_files": files, "settings": settings })
}

fn print_config(config: &AgentConfig, with_text: bool) {
    println!("version {}", config.version);
    let mut names: Vec<&String> = config.rules_files.keys().collect();
    names.sort();
    for name in names {
        let text = &config.rules_files[name];
        println!("rules file {name} ({} bytes)", text.len());
        if with_text {
            println!("{text}");
        }
    }
    let mut settings: Vec<(&String, &String)> = config.settings.iter().collect();
    settings.sort();
    for (key, value) in settings {
        println!("setting {key}={value}");
    }
}

/// `palisade admin agent-config set`.
pub async fn set(args: AgentConfigSetArgs) -> anyhow::Result<ExitCode> {
    let rules_files = read_rules(&args.rules)?;
    let settings = parse_settings(&args.settings)?;
    let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
    let response = client
        .set_agent_config(SetAgentConfigRequest {
            cluster_id: args.cluster.unwrap_or_default(),
            rules_files,
            settings,
        })
        .await
        .map_err(fail)?
        .into_inner();
    let config = response.config.unwrap_or_default();
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            json!({ "config": config_json(&config, false), "pushed_to": response.pushed_to })
        ),
        OutputFormat::Table => {
            print_config(&config, false);
            println!("pushed to {} connected agents", response.pushed_to);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `palisade admin agent-config show`.
pub async fn show(args: AgentConfigShowArgs) -> anyhow::Result<ExitCode> {
    let mut client = AdminServiceClient::new(connect(&args.client).await?).with_limits();
    let config = client
        .get_agent_config(GetAgentConfigRequest {
            cluster_id: args.cluster.unwrap_or_default(),
        })
        .await
        .map_err(fail)?
        .into_inner()
        .config;
    match (args.format, config) {
        (OutputFormat::Json, config) => println!(
            "{}",
            json!({ "config": config.map(|config| config_json(&config, args.rules_text)) })
        ),
        (OutputFormat::Table, Some(config)) => print_config(&config, args.rules_text),
        (OutputFormat::Table, None) => {
            println!("no agent configuration set: agents run the rules they were started with")
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_need_a_key_and_an_equals_sign_and_rules_keep_their_order() {
        let parsed = parse_settings(&["mode=strict".into(), "empty=".into()]).expect("valid");
        assert_eq!(parsed["mode"], "strict");
        assert_eq!(parsed["empty"], "");
        assert!(parse_settings(&["novalue".into()]).is_err());
        assert!(parse_settings(&["=x".into()]).is_err());
        assert!(parse_settings(&["a=1".into(), "a=2".into()]).is_err());

        let temp = tempfile::tempdir().expect("temp");
        let first = temp.path().join("z.yaml");
        let second = temp.path().join("a.yaml");
        std::fs::write(&first, "- list: a\n  items: []\n").expect("write");
        std::fs::write(&second, "- list: b\n  items: []\n").expect("write");
        let files = read_rules(&[first, second]).expect("read");
        let mut names: Vec<&String> = files.keys().collect();
        names.sort();
        assert_eq!(names, ["01-z.yaml", "02-a.yaml"]);
        let missing = read_rules(&[temp.path().join("missing.yaml")]).expect_err("missing");
        assert!(missing.to_string().contains("missing.yaml"), "{missing}");
    }
}
