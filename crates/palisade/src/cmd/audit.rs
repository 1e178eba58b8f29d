//! `palisade audit replay|watch`.
//!
//! The watcher delivers its alerts like the node agent: each is written to a durable spool
//! first, and the agent stream (AgentKind AUDIT) sends them to the server and deletes them once
//! acknowledged. A cut link loses nothing (the spool keeps them, bounded, evictions counted)
//! and a resend is never doubled (alerts have stable ids).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use palisade_agent_link::stream::{self, Link, StreamCredential};
use palisade_agent_link::{AgentStatus, Spool, StreamConfig};
use palisade_audit::pipeline::local_hostname;
use palisade_audit::{
    AlertSink, AnomalyConfig, AuditError, ReplayArgs, ReplayFormat, TailConfig, WatchArgs,
    WebhookConfig, replay, start_watch,
};
use palisade_core::agent_identity::own_identity_dir;
use palisade_core::config::default_data_dir;
use palisade_core::falco::alert_to_falco_json;
use palisade_proto::v1::{AgentKind, Alert, DropCounters};
use palisade_rules::MatchMode;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};

use crate::cli::{AuditCommand, AuditReplayArgs, AuditWatchArgs, MatchArg, OutputFormat};
use crate::client::resolve_token;
use crate::cmd::rules::exit_code;

/// Longest the watcher waits at shutdown for the server to acknowledge what is spooled; the
/// rest stays in the spool for the next start.
const DRAIN_AT_SHUTDOWN: Duration = Duration::from_secs(5);

pub fn run(
    command: AuditCommand,
    runtime: impl FnOnce() -> anyhow::Result<tokio::runtime::Runtime>,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Replay(args) => run_replay(args),
        AuditCommand::Watch(args) => runtime()?.block_on(run_watch(*args)),
    }
}

/// `palisade serve audit`: the watcher with the options of the configuration's [audit_watch]
/// (the API token, when no credentials are given, from PALISADE_TOKEN).
pub fn serve_audit(config: &palisade_core::config::Config) -> anyhow::Result<ExitCode> {
    let watch = &config.audit_watch;
    let args = AuditWatchArgs {
        client: crate::cli::ClientArgs {
            server: watch
                .server
                .clone()
                .unwrap_or_else(|| palisade_core::config::DEFAULT_SERVER_URL.to_string()),
            token: std::env::var("PALISADE_TOKEN").ok(),
            data_dir: Some(config.data_dir.clone()),
            ca_file: watch.ca_file.clone(),
        },
        credentials: watch.credentials.clone(),
        webhook_listen: watch.webhook_listen,
        files: watch.files.clone(),
        rules: watch.rules.clone(),
        state_dir: watch.state_dir.clone(),
        anomaly: watch.anomaly,
        anomaly_learning_days: 7,
        stdout: false,
        spool_dir: watch.spool_dir.clone(),
        spool_max_bytes: 256 << 20,
        agent_id: watch.agent_id.clone(),
        match_mode: MatchArg::All,
    };
    if args.webhook_listen.is_none() && args.files.is_empty() {
        anyhow::bail!(
            "`palisade serve audit` has nothing to watch: set [audit_watch] webhook_listen and/or files in the configuration"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_watch(args))
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

/// What the audit watcher reports on its stream.
struct WatchStatus {
    /// Highest sequence number durable in the spool.
    durable: AtomicU64,
    spool_evicted: AtomicU64,
    /// The webhook's counters, once the watch runs.
    webhook: std::sync::OnceLock<Arc<palisade_audit::WebhookStats>>,
}

impl AgentStatus for WatchStatus {
    fn drop_counters(&self) -> DropCounters {
        let malformed_events = self.webhook.get().map_or(0, |webhook| {
            webhook.skipped.load(Ordering::Relaxed) + webhook.invalid_bodies.load(Ordering::Relaxed)
        });
        DropCounters {
            spool_evicted: self.spool_evicted.load(Ordering::Relaxed),
            malformed_events,
            ..DropCounters::default()
        }
    }

    fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::Relaxed)
    }
}

/// Writes alerts to the spool and returns once they are durable there; the stream delivers
/// them. The tailers advance their offsets only after this, so nothing read is lost.
struct SpoolSink {
    spool: Arc<Spool>,
    status: Arc<WatchStatus>,
    appended: Arc<Notify>,
}

impl AlertSink for SpoolSink {
    fn publish(&self, alerts: Vec<Alert>) -> palisade_audit::sink::SinkFuture<'_> {
        let spool = Arc::clone(&self.spool);
        Box::pin(async move {
            let written = tokio::task::spawn_blocking(move || {
                let mut evicted = 0;
                for alert in &alerts {
                    evicted += spool.append(alert)?.evicted;
                }
                // read before the flush: a concurrent append after it is not yet durable
                let last = spool.next_seq().saturating_sub(1);
                spool.flush()?;
                Ok::<_, palisade_agent_link::LinkError>((last, evicted))
            })
            .await
            .map_err(|error| AuditError::Sink(format!("spool task failed: {error}")))?;
            let (last, evicted) = written.map_err(|error| AuditError::Sink(error.to_string()))?;
            if evicted > 0 {
                self.status
                    .spool_evicted
                    .fetch_add(evicted, Ordering::Relaxed);
                tracing::error!(
                    evicted,
                    "audit spool full: evicted the oldest unacknowledged alerts"
                );
            }
            self.status.durable.fetch_max(last, Ordering::Relaxed);
            self.appended.notify_one();
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

/// Where the watcher streams and with what: the enrolled cluster's credential (renewed into the
/// watcher's own, kept in its state directory), or the server and an API key.
fn watcher_credential(
    args: &AuditWatchArgs,
    state_dir: &std::path::Path,
) -> anyhow::Result<(String, StreamCredential)> {
    let Some(bootstrap_dir) = &args.credentials else {
        let credential = StreamCredential::Token {
            token: resolve_token(&args.client)?,
            ca_file: crate::client::ca_file(&args.client),
        };
        return Ok((args.client.server.clone(), credential));
    };
    StreamCredential::enrolled(bootstrap_dir, own_identity_dir(state_dir))
        .with_context(|| format!("--credentials {}", bootstrap_dir.display()))
}

async fn run_watch(args: AuditWatchArgs) -> anyhow::Result<ExitCode> {
    if args.webhook_listen.is_none() && args.files.is_empty() {
        anyhow::bail!("nothing to watch: give --webhook-listen ADDR and/or --file PATH");
    }
    let data_dir = args
        .client
        .data_dir
        .clone()
        .unwrap_or_else(default_data_dir);
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("audit-watch"));
    let (stream_shutdown, stream_shutdown_receiver) = watch::channel(false);
    let mut delivery = None;
    let mut destination = "stdout".to_string();
    let sink: Arc<dyn AlertSink> = if args.stdout {
        Arc::new(StdoutSink)
    } else {
        // next to the state directory, so two watchers with their own state never share one
        let spool_dir = args.spool_dir.clone().unwrap_or_else(|| {
            let mut name = state_dir.file_name().unwrap_or_default().to_os_string();
            name.push("-spool");
            state_dir.with_file_name(name)
        });
        let spool = Arc::new(Spool::open(&spool_dir, args.spool_max_bytes)?);
        let status = Arc::new(WatchStatus {
            durable: AtomicU64::new(spool.next_seq().saturating_sub(1)),
            spool_evicted: AtomicU64::new(0),
            webhook: std::sync::OnceLock::new(),
        });
        let appended = Arc::new(Notify::new());
        let hostname = local_hostname();
        let (url, credential) = watcher_credential(&args, &state_dir)?;
        destination.clone_from(&url);
        let mut config = StreamConfig::new(url, credential, hostname.clone());
        config.kind = AgentKind::Audit;
        config.agent_id = args
            .agent_id
            .clone()
            .unwrap_or_else(|| format!("audit/{hostname}"));
        let link = Link {
            config,
            spool: Arc::clone(&spool),
            appended: Arc::clone(&appended),
            status: Arc::clone(&status) as Arc<dyn AgentStatus>,
            // rules are the watcher's own (files, SIGHUP); it takes no pushed configuration
            applier: None,
        };
        delivery = Some((
            Arc::clone(&spool),
            Arc::clone(&status),
            tokio::spawn(stream::run(link, stream_shutdown_receiver)),
        ));
        Arc::new(SpoolSink {
            spool,
            status,
            appended,
        })
    };
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
    if let Some((_, status, _)) = &delivery {
        let _ = status.webhook.set(Arc::clone(&watch.webhook_stats));
    }
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
        destination
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
    if let Some((spool, _, task)) = delivery {
        let deadline = tokio::time::Instant::now() + DRAIN_AT_SHUTDOWN;
        while !spool.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !spool.is_empty() {
            eprintln!(
                "palisade audit watch: {} alerts not yet acknowledged stay in the spool for the next start",
                spool.len()
            );
        }
        let _ = stream_shutdown.send(true);
        let _ = task.await;
    }
    Ok(ExitCode::SUCCESS)
}
