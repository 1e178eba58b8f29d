//! Where a target's alerts go: one HTTP request per webhook or Slack alert, one request per
//! batch for Splunk HEC, frames on a socket for syslog. A sink makes one attempt; retrying is
//! the worker's business.

use std::path::PathBuf;
use std::time::Duration;

use palisade_core::config::{NotifyKind, NotifyTarget};
use palisade_proto::v1::Alert;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};

use crate::error::{NotifyError, Result};
use crate::retry::{Failure, now_unix};
use crate::secret::read_secret;
use crate::signature::{ALERT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::slack::slack_message;
use crate::splunk::{event_url, hec_body};
use crate::syslog_sink::SyslogSink;
use crate::webhook::webhook_body;

/// Most bytes of a response body kept for an error message.
const MAX_RESPONSE_TEXT: usize = 2_048;
/// User-Agent of every request.
const USER_AGENT: &str = concat!("palisade-notify/", env!("CARGO_PKG_VERSION"));

/// A target's destination.
pub(crate) enum Sink {
    Http(HttpSink),
    Syslog(SyslogSink),
}

impl Sink {
    /// The sink a target's configuration describes.
    pub fn for_target(target: &NotifyTarget) -> Result<Sink> {
        let invalid = |message: String| NotifyError::InvalidTarget {
            target: target.name.clone(),
            message,
        };
        let connect_timeout = Duration::from_secs(target.connect_timeout_seconds);
        let timeout = Duration::from_secs(target.timeout_seconds);
        if target.kind == NotifyKind::Syslog {
            let address = target
                .address
                .clone()
                .ok_or_else(|| invalid("a syslog target needs address".into()))?;
            return Ok(Sink::Syslog(SyslogSink::new(
                address,
                target.transport,
                target.facility_code(),
                connect_timeout,
                timeout,
            )));
        }
        let url_text = target
            .url
            .as_deref()
            .ok_or_else(|| invalid(format!("a {} target needs url", target.kind.name())))?;
        let url = match target.kind {
            NotifyKind::SplunkHec => event_url(url_text).map_err(invalid)?,
            _ => reqwest::Url::parse(url_text)
                .map_err(|error| invalid(format!("url {url_text:?}: {error}")))?,
        };
        // reqwest is built without a bundled crypto provider; this process uses ring. A
        // second install (another component got there first) changes nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            // A signed delivery is never replayed to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|error| NotifyError::HttpClient {
                target: target.name.clone(),
                message: error_chain(&error),
            })?;
        Ok(Sink::Http(HttpSink {
            client,
            kind: target.kind,
            url,
            secret_file: target.secret_file.clone(),
            batch_size: target.batch_size,
            splunk_index: target.splunk_index.clone(),
            splunk_sourcetype: target.splunk_sourcetype.clone(),
        }))
    }

    /// Most alerts handed to one [`Sink::deliver`].
    pub fn batch_limit(&self) -> usize {
        match self {
            Sink::Http(http) if http.kind == NotifyKind::SplunkHec => http.batch_size,
            Sink::Http(_) => 1,
            Sink::Syslog(syslog) => syslog.batch_limit(),
        }
    }

    /// One attempt at delivering `alerts` (at most [`Sink::batch_limit`] of them).
    pub async fn deliver(&mut self, alerts: &[Alert]) -> std::result::Result<(), Failure> {
        match self {
            Sink::Http(http) => http.deliver(alerts).await,
            Sink::Syslog(syslog) => syslog.deliver(alerts).await,
        }
    }
}

/// A webhook, Slack or Splunk HEC endpoint.
pub(crate) struct HttpSink {
    client: reqwest::Client,
    kind: NotifyKind,
    url: reqwest::Url,
    secret_file: Option<PathBuf>,
    batch_size: usize,
    splunk_index: Option<String>,
    splunk_sourcetype: Option<String>,
}

/// An error and its causes on one line (reqwest's own message leaves out the cause).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl HttpSink {
    async fn secret(&self) -> std::result::Result<Vec<u8>, Failure> {
        match &self.secret_file {
            Some(path) => read_secret(path).await,
            None => Err(Failure::permanent("the target has no secret_file")),
        }
    }

    async fn deliver(&self, alerts: &[Alert]) -> std::result::Result<(), Failure> {
        let Some(first) = alerts.first() else {
            return Ok(());
        };
        let base_request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json");
        let request = match self.kind {
            NotifyKind::Webhook => {
                let key = self.secret().await?;
                let body = webhook_body(first);
                let timestamp = now_unix();
                base_request
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .header(SIGNATURE_HEADER, sign(&key, timestamp, &body))
                    .header(ALERT_ID_HEADER, first.id.as_str())
                    .body(body)
            }
            NotifyKind::Slack => {
                let body = serde_json::to_vec(&slack_message(first)).unwrap_or_default();
                base_request.body(body)
            }
            NotifyKind::SplunkHec => {
                let token = self.secret().await?;
                let token_text = String::from_utf8(token)
                    .map_err(|_| Failure::permanent("the HEC token is not UTF-8 text"))?;
                let body = hec_body(
                    alerts,
                    self.splunk_index.as_deref(),
                    self.splunk_sourcetype.as_deref(),
                );
                base_request
                    .header(AUTHORIZATION, format!("Splunk {token_text}"))
                    .body(body)
            }
            NotifyKind::Syslog => {
                return Err(Failure::permanent("a syslog target has no HTTP endpoint"));
            }
        };
        let mut response = request.send().await.map_err(|error| {
            Failure::transient(format!("POST {}: {}", self.url, error_chain(&error)))
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let mut text = Vec::new();
        // Only the start of the body is read: it is for the error message, and a receiver must
        // not be able to make the notifier buffer without bound.
        while text.len() < MAX_RESPONSE_TEXT {
            match response.chunk().await {
                Ok(Some(chunk)) => text.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        text.truncate(MAX_RESPONSE_TEXT);
        match Failure::from_status(
            status,
            retry_after.as_deref(),
            &String::from_utf8_lossy(&text),
        ) {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}
