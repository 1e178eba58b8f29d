//! The audit webhook backend: an axum [`Router`] receiving `audit.k8s.io/v1` EventList POSTs
//! from the API server (`--audit-webhook-config-file`). The batch is evaluated and its alerts
//! stored before the response, so a 200 means durable and a 5xx makes the API server retry.
//!
//! Answers: 200 with counts; 400 with the reason for a body that is not JSON; 413 for a body over
//! the limit; 503 when the pipeline is gone or the sink failed. Events that are not usable audit
//! events are skipped and counted, never an error for the batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::decode::{DecodeLimits, DocumentError, decode_document};
use crate::event::AuditEvent;
use crate::pipeline::AuditPipeline;
use crate::sink::AlertSink;

/// Default path of the endpoint, as Falco's k8saudit plugin uses.
pub const DEFAULT_WEBHOOK_PATH: &str = "/k8s-audit";

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Route path.
    pub path: String,
    /// Size limits; `max_document_bytes` is the body limit.
    pub limits: DecodeLimits,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_WEBHOOK_PATH.to_string(),
            limits: DecodeLimits::default(),
        }
    }
}

/// Counters of the webhook.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Requests answered 200.
    pub batches: AtomicU64,
    /// Events accepted.
    pub events: AtomicU64,
    /// Events skipped (not audit events, missing or malformed fields, too large).
    pub skipped: AtomicU64,
    /// Bodies refused as not JSON.
    pub invalid_bodies: AtomicU64,
    /// Batches refused because the pipeline or sink failed.
    pub unavailable: AtomicU64,
}

/// A batch handed to the processing task, with the channel its result is reported on.
pub struct Batch {
    /// Decoded events.
    pub events: Vec<AuditEvent>,
    /// Receives the number of alerts stored, or why the batch failed.
    pub done: oneshot::Sender<Result<usize, String>>,
}

#[derive(Clone)]
struct WebhookState {
    batches: mpsc::Sender<Batch>,
    limits: DecodeLimits,
    stats: Arc<WebhookStats>,
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn receive(State(state): State<WebhookState>, body: Bytes) -> Response {
    let decoded = match decode_document(&body, &state.limits) {
        Ok(decoded) => decoded,
        Err(DocumentError::InvalidJson(reason)) => {
            state.stats.invalid_bodies.fetch_add(1, Ordering::Relaxed);
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("malformed JSON: {reason}")}),
            );
        }
        Err(error @ DocumentError::TooLarge { .. }) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": error.to_string()}),
            );
        }
    };
    let skipped = decoded.skips.len();
    state
        .stats
        .skipped
        .fetch_add(skipped as u64, Ordering::Relaxed);
    let reasons: Vec<String> = decoded
        .skips
        .iter()
        .take(20)
        .map(|skip| format!("{}: {}", skip.reason.code(), skip.detail))
        .collect();
    let accepted = decoded.events.len();
    let (done, result) = oneshot::channel();
    let stored = match state
        .batches
        .send(Batch {
            events: decoded.events,
            done,
        })
        .await
    {
        Ok(()) => result
            .await
            .unwrap_or_else(|_| Err("the processing task stopped".to_string())),
        Err(_) => Err("the processing task stopped".to_string()),
    };
    match stored {
        Ok(alerts) => {
            state.stats.batches.fetch_add(1, Ordering::Relaxed);
            state
                .stats
                .events
                .fetch_add(accepted as u64, Ordering::Relaxed);
            reply(
                StatusCode::OK,
                json!({"accepted": accepted, "skipped": skipped, "alerts": alerts, "skip_reasons": reasons}),
            )
        }
        Err(reason) => {
            state.stats.unavailable.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": reason}))
        }
    }
}

/// The webhook router, and the receiving end of its batches (give it to [`process_batches`]).
pub fn webhook_router(
    config: &WebhookConfig,
    stats: Arc<WebhookStats>,
) -> (Router, mpsc::Receiver<Batch>) {
    // Bounded: a slow sink slows the API server's webhook instead of growing memory.
    let (sender, receiver) = mpsc::channel(16);
    let state = WebhookState {
        batches: sender,
        limits: config.limits,
        stats,
    };
    let router = Router::new()
        .route(&config.path, post(receive))
        .layer(DefaultBodyLimit::max(config.limits.max_document_bytes))
        .with_state(state);
    (router, receiver)
}

/// Evaluates batches and stores their alerts until every sender is gone.
pub async fn process_batches(
    mut batches: mpsc::Receiver<Batch>,
    pipeline: Arc<AuditPipeline>,
    sink: Arc<dyn AlertSink>,
) {
    while let Some(batch) = batches.recv().await {
        let alerts: Vec<_> = batch
            .events
            .iter()
            .flat_map(|event| pipeline.process(event))
            .map(|alert| alert.to_proto())
            .collect();
        let count = alerts.len();
        let result = match sink.publish(alerts).await {
            Ok(()) => pipeline
                .flush()
                .map(|()| count)
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(reason) = &result {
            tracing::warn!(%reason, "audit webhook batch not stored");
        }
        // The requester may have gone away; its batch was processed either way.
        let _ = batch.done.send(result);
    }
}
