//! The Falco webhook: `POST /falco/v1/alerts` accepts what Falco's `http_output` and
//! falcosidekick's webhook output send, so an existing Falco fleet can send its alerts to
//! Palisade as it is.
//!
//! The body is one Falco JSON alert (what both send), a JSON array of them, or one per line.
//! The caller authenticates with `Authorization: Bearer TOKEN` (Falco's `http_output` sets it
//! through its custom headers, falcosidekick through `webhook.customheaders`). Alerts go through
//! the same [`Ingest`] actor as gRPC publishes: stamped with the credential's tenant, given the
//! stable id the server derives (falcosidekick's `uuid` is random per delivery, so it is not
//! used), and answered 200 only once durable. A resent alert is stored once.

use actix::Addr;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use palisade_core::auth::{Credentials, Role};
use palisade_core::falco::alert_from_falco_json;
use palisade_proto::v1::Alert;

use crate::error::GatewayError;
use crate::ingest::{Ingest, PublishAlerts};

/// Path the webhook is served on.
pub const FALCO_WEBHOOK_PATH: &str = "/falco/v1/alerts";

/// What the webhook needs.
#[derive(Clone)]
pub struct FalcoWebhook {
    pub ingest: Addr<Ingest>,
    pub credentials: Credentials,
    /// Largest body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most alerts in one body.
    pub max_alerts: usize,
}

impl FalcoWebhook {
    /// The webhook's routes.
    pub fn routes(self) -> Router {
        let limit = self.max_body_bytes;
        Router::new()
            .route(FALCO_WEBHOOK_PATH, post(receive))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self)
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn refuse(status: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    reply(
        status,
        serde_json::json!({ "error": message.into(), "reason": reason }),
    )
}

/// Splits a body into Falco JSON alerts: an array, or one object per non-empty line.
fn parse_body(body: &str) -> Result<Vec<Alert>, String> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(trimmed)
            .map_err(|error| format!("body is not a JSON array of Falco alerts: {error}"))?;
        return values
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                alert_from_falco_json(&value.to_string())
                    .map_err(|error| format!("entry {}: {error}", index + 1))
            })
            .collect();
    }
    body.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            alert_from_falco_json(line).map_err(|error| format!("line {}: {error}", index + 1))
        })
        .collect()
}

async fn receive(State(webhook): State<FalcoWebhook>, headers: HeaderMap, body: Bytes) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "missing Authorization: Bearer TOKEN",
        );
    };
    let principal = match webhook.credentials.authenticate_token(token.trim()) {
        Ok(principal) => principal,
        Err(error) => return refuse(StatusCode::UNAUTHORIZED, error.reason(), error.to_string()),
    };
    if let Err(error) = principal.require(Role::Analyst) {
        return refuse(StatusCode::FORBIDDEN, error.reason(), error.to_string());
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "INVALID_ALERT",
            "body is not UTF-8 text",
        );
    };
    let alerts = match parse_body(text) {
        Ok(alerts) if alerts.is_empty() => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "INVALID_ALERT",
                "body holds no alert",
            );
        }
        Ok(alerts) => alerts,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, "INVALID_ALERT", message),
    };
    if alerts.len() > webhook.max_alerts {
        let error = GatewayError::BatchTooLarge {
            given: alerts.len(),
            limit: webhook.max_alerts,
        };
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            error.reason(),
            error.to_string(),
        );
    }
    match webhook
        .ingest
        .send(PublishAlerts { principal, alerts })
        .await
    {
        Ok(Ok(published)) => reply(
            StatusCode::OK,
            serde_json::json!({
                "accepted": published.accepted,
                "duplicates": published.duplicates,
                "ids": published.ids,
            }),
        ),
        Ok(Err(error)) => {
            let status = match error.code() {
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                tonic::Code::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
                tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            refuse(status, error.reason(), error.to_string())
        }
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the server is shutting down; retry",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FALCOSIDEKICK: &str = r#"{"uuid":"0f6a6e0e-9d4e-4a4a-9c1e-3a1d1f0b7c11","output":"16:31:56.746609046: Notice A shell was spawned (user=root container=abc)","priority":"Notice","rule":"Terminal shell in container","time":"2026-11-27T16:31:56.746609046Z","output_fields":{"container.id":"abc","proc.name":"bash","evt.time":1795624316746609046},"source":"syscall","tags":["container","mitre_execution","T1059"],"hostname":"node-1"}"#;

    #[test]
    fn bodies_hold_one_alert_an_array_or_lines() {
        assert_eq!(parse_body(FALCOSIDEKICK).expect("one").len(), 1);
        let array = format!("[{FALCOSIDEKICK},{FALCOSIDEKICK}]");
        assert_eq!(parse_body(&array).expect("array").len(), 2);
        let lines = format!("{FALCOSIDEKICK}\n\n{FALCOSIDEKICK}\n");
        assert_eq!(parse_body(&lines).expect("lines").len(), 2);
        let alert = &parse_body(FALCOSIDEKICK).expect("one")[0];
        assert!(alert.id.is_empty(), "the random uuid is not the alert id");
        assert_eq!(alert.output_fields["proc.name"], "bash");
    }

    #[test]
    fn a_bad_entry_is_named_by_its_line_or_position() {
        let error = parse_body(&format!("{FALCOSIDEKICK}\n{{\"rule\":\"x\"}}")).expect_err("bad");
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(error.contains("priority"), "{error}");
        let error = parse_body(&format!("[{FALCOSIDEKICK}, 3]")).expect_err("bad");
        assert!(error.starts_with("entry 2:"), "{error}");
    }
}
