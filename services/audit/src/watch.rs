//! `palisade audit watch`: the webhook router and file tailers feeding one pipeline whose alerts
//! go to a sink, with rules reloadable while running.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use palisade_rules::{
    CompileOptions, MatchMode, ReloadPolicy, ReloadReport, ReloadableRules, RulesError, RulesSource,
};
use tokio::task::JoinHandle;

use crate::anomaly::{AnomalyConfig, AnomalyDetector};
use crate::error::AuditError;
use crate::fields::K8sAuditSource;
use crate::pack::builtin_rules;
use crate::pipeline::{AuditPipeline, local_hostname};
use crate::sink::AlertSink;
use crate::tail::{FileTailer, OffsetStore, TailConfig, TailStats};
use crate::webhook::{WebhookConfig, WebhookStats, process_batches, webhook_router};

/// Arguments of `palisade audit watch`.
#[derive(Debug, Clone, Default)]
pub struct WatchArgs {
    /// Rules files in order; empty means the built-in pack.
    pub rules: Vec<PathBuf>,
    /// Serve the webhook endpoint (the caller mounts [`Watch::router`]).
    pub webhook: Option<WebhookConfig>,
    /// Audit log files to tail.
    pub files: Vec<TailConfig>,
    /// Directory of the state database (tail offsets, anomaly baselines).
    pub state_dir: PathBuf,
    /// Anomaly detection settings, when enabled.
    pub anomaly: Option<AnomalyConfig>,
    /// Host name in alerts.
    pub hostname: Option<String>,
    /// First or all matches.
    pub match_mode: MatchMode,
}

/// A running watch.
pub struct Watch {
    /// The webhook router to mount on the HTTP listener, when the webhook is enabled.
    pub router: Option<Router>,
    /// Webhook counters.
    pub webhook_stats: Arc<WebhookStats>,
    pipeline: Arc<AuditPipeline>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tailers: Vec<JoinHandle<Result<TailStats, AuditError>>>,
    batches: Option<JoinHandle<()>>,
}

/// Loads the rules, opens the state, starts the tailers and the webhook's processing task.
pub async fn start_watch(args: WatchArgs, sink: Arc<dyn AlertSink>) -> Result<Watch, AuditError> {
    let source = if args.rules.is_empty() {
        RulesSource::Texts(builtin_rules())
    } else {
        RulesSource::Files(args.rules.clone())
    };
    let options = CompileOptions {
        match_mode: args.match_mode,
    };
    let (rules, report) = ReloadableRules::load(
        Arc::new(K8sAuditSource),
        source,
        options,
        ReloadPolicy::RejectOnError,
    )?;
    for diagnostic in &report.diagnostics {
        tracing::warn!(%diagnostic, "rules problem");
    }
    tracing::info!(summary = %report.summary, "audit rules loaded");
    let database = sled::open(&args.state_dir).map_err(|error| AuditError::Store {
        path: args.state_dir.clone(),
        reason: error.to_string(),
    })?;
    let anomaly = match args.anomaly {
        Some(config) => Some(AnomalyDetector::from_db(
            &database,
            &args.state_dir,
            config,
        )?),
        None => None,
    };
    let pipeline = Arc::new(AuditPipeline::new(
        Arc::new(rules),
        anomaly,
        args.hostname.clone().unwrap_or_else(local_hostname),
    ));
    let (shutdown, shutdown_receiver) = tokio::sync::watch::channel(false);
    let store = OffsetStore::from_db(&database, &args.state_dir)?;
    let mut tailers = Vec::new();
    for config in args.files {
        let tailer = FileTailer::new(config, store.clone(), pipeline.clone(), sink.clone())?;
        tailers.push(tokio::spawn(tailer.run(shutdown_receiver.clone())));
    }
    let webhook_stats = Arc::new(WebhookStats::default());
    let (router, batches) = match &args.webhook {
        Some(config) => {
            let (router, receiver) = webhook_router(config, webhook_stats.clone());
            let task = tokio::spawn(process_batches(receiver, pipeline.clone(), sink.clone()));
            (Some(router), Some(task))
        }
        None => (None, None),
    };
    Ok(Watch {
        router,
        webhook_stats,
        pipeline,
        shutdown,
        tailers,
        batches,
    })
}

impl Watch {
    /// Reloads the rules (on SIGHUP); the previous rules stay active if the new ones fail.
    pub fn reload_rules(&self) -> Result<ReloadReport, RulesError> {
        self.pipeline.rules().reload()
    }

    /// Stops the tailers (after their current batch) and waits for them. The webhook task
    /// ends when the router is dropped.
    pub async fn shutdown(self) -> Result<Vec<TailStats>, AuditError> {
        let _ = self.shutdown.send(true);
        let mut stats = Vec::new();
        for tailer in self.tailers {
            match tailer.await {
                Ok(result) => stats.push(result?),
                Err(error) => return Err(AuditError::Sink(format!("tailer task failed: {error}"))),
            }
        }
        drop(self.router);
        if let Some(batches) = self.batches {
            batches.abort();
        }
        self.pipeline.flush()?;
        Ok(stats)
    }
}
