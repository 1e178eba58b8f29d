//! `palisade audit replay|watch`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use palisade_audit::{
    AlertSink, AnomalyConfig, AuditError, ReplayArgs, ReplayFormat, TailConfig, WatchArgs,
    WebhookConfig, replay, start_watch,
};
use palisade_core::config::default_data_dir;
use palisade_core::falco::alert_to_falco_json;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::{Alert, PublishAlertsRequest};
use palisade_rules::MatchMode;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{AuditCommand, AuditReplayArgs, AuditWatchArgs, MatchArg, OutputFormat};
use crate::client::{AuthChannel, ClientLimits, connect, describe_status};
use crate::cmd::rules::exit_code;

/// Alerts sent per call to the server.
const PUBLISH_BATCH: usize = 1_000;

pub fn run(
    command: AuditCommand,
    runtime: impl FnOnce() -> anyhow::Result<tokio::runtime::Runtime>,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Replay(args) => run_replay(args),
        AuditCommand::Watch(args) => runtime()?.block_on(run_watch(args)),
    }
}

fn match_mode(arg: MatchArg) -> MatchMode {
    match arg {
        MatchArg::All => MatchMode::All,
        MatchArg::First => MatchMode::First,
    }
}

fn run_replay(args: AuditReplayArgs) -> anyhow::Result<ExitCode> {
    let replay_args = ReplayArgs {
        files: args.files,
        rules: args.rules,
        format: match args.format {
            OutputFormat::Json => ReplayFormat::Json,
            OutputFormat::Table => ReplayFormat::Table,
        },
        hostname: args.hostname,
        match_mode: match_mode(args.match_mode),
        anomaly: args.anomaly.then(AnomalyConfig::default),
        ..ReplayArgs::default()
    };
    let mut alerts_out = std::io::stdout().lock();
    let mut summary_out = std::io::stderr().lock();
    let (_, status) = replay(&replay_args, &mut alerts_out, &mut summary_out)?;
    Ok(exit_code(status.code()))
}

/// Publishes alerts to the server; returns only when the server acknowledged them (durable).
struct ServerSink {
    client: AlertServiceClient<AuthChannel>,
}

impl AlertSink for ServerSink {
    fn publish(&self, alerts: Vec<Alert>) -> palisade_audit::sink::SinkFuture<'_> {
        let mut client = self.client.clone();
        Box::pin(async move {
            for chunk in alerts.chunks(PUBLISH_BATCH) {
                client
                    .publish_alerts(PublishAlertsRequest {
                        alerts: chunk.to_vec(),
                    })
                    .await
                    .map_err(|status| AuditError::Sink(describe_status(&status)))?;
            }
            Ok(())
        })
    }
}

/// Prints alerts as Falco JSON lines.
struct StdoutSink;

impl AlertSink for StdoutSink {
    fn publish(&self, alerts: Vec<Alert>) -> palisade_audit::sink::SinkFuture<'_> {
        Box::pin(async move {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            for alert in &alerts {
                writeln!(stdout, "{}", alert_to_falco_json(alert))?;
            }
            stdout.flush()?;
            Ok(())
        })
    }
}

async fn run_watch(args: AuditWatchArgs) -> anyhow::Result<ExitCode> {
    if args.webhook_listen.is_none() && args.files.is_empty() {
        anyhow::bail!("nothing to watch: give --webhook-listen ADDR and/or --file PATH");
    }
    let sink: Arc<dyn AlertSink> = if args.stdout {
        Arc::new(StdoutSink)
    } else {
        let channel = connect(&args.client).await?;
        Arc::new(ServerSink {
            client: AlertServiceClient::new(channel).with_limits(),
        })
    };
    let state_dir = args.state_dir.clone().unwrap_or_else(|| {
        args.client
            .data_dir
            .clone()
            .unwrap_or_else(default_data_dir)
            .join("audit-watch")
    });
    let watch_args = WatchArgs {
        rules: args.rules.clone(),
        webhook: args.webhook_listen.map(|_| WebhookConfig::default()),
        files: args.files.iter().map(TailConfig::new).collect(),
        state_dir: state_dir.clone(),
        anomaly: args.anomaly.then(|| AnomalyConfig {
            learning_window: Duration::from_secs(args.anomaly_learning_days * 24 * 3600),
            ..AnomalyConfig::default()
        }),
        hostname: None,
        match_mode: match_mode(args.match_mode),
    };
    let mut watch = start_watch(watch_args, sink).await?;
    let mut webhook_address = None;
    let mut webhook_task = None;
    if let (Some(address), Some(router)) = (args.webhook_listen, watch.router.take()) {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen for the audit webhook on {address}"))?;
        webhook_address = Some(listener.local_addr()?);
        webhook_task = Some(tokio::spawn(
            async move { axum::serve(listener, router).await },
        ));
    }
    eprintln!(
        "palisade audit watch: {} file(s){}, state in {}, alerts to {}",
        args.files.len(),
        webhook_address
            .map(|address| format!(", webhook on http://{address}/k8s-audit"))
            .unwrap_or_default(),
        state_dir.display(),
        if args.stdout {
            "stdout".to_string()
        } else {
            args.client.server.clone()
        }
    );
    if !args.stdout {
        println!(
            "{}",
            serde_json::json!({ "ready": true, "webhook": webhook_address.map(|address| address.to_string()) })
        );
    }
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hangup.recv() => match watch.reload_rules() {
                Ok(report) => eprintln!("palisade audit watch: rules reloaded: {}", report.summary),
                Err(error) => eprintln!("palisade audit watch: rules not reloaded, keeping the running set: {error}"),
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    if let Some(task) = webhook_task {
        task.abort();
    }
    let stats = watch.shutdown().await?;
    for stat in stats {
        eprintln!("palisade audit watch: {stat:?}");
    }
    Ok(ExitCode::SUCCESS)
}
