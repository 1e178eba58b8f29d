//! The agent-stream client of `palisade.v1.AgentService/Connect`: hello, sequence-numbered
//! batches read from the spool, cumulative acks that release the spool, the server's
//! window, throttling, heartbeats, pushed configuration, and reconnection with jittered
//! backoff. After every (re)connect it resends everything after `ServerHello.resume_after_seq`.
//!
//! The client serves any kind of agent: what it reports (drop counters, the durable end of the
//! spool) comes from an [`AgentStatus`], and pushed configuration goes to a [`ConfigApplier`]
//! when the agent has one.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use palisade_proto::v1::agent_service_client::AgentServiceClient;
use palisade_proto::v1::{
    AgentConfig, AgentHello, AgentKind, AlertBatch, ConfigApplied, ConnectRequest, ConnectResponse,
    DropCounters, Heartbeat, connect_request, connect_response,
};
use rand::Rng;
use tokio::sync::{Notify, mpsc, watch};
use tracing::{info, warn};

use crate::error::LinkError;
use crate::spool::Spool;

/// What the agent authenticates with.
#[derive(Debug, Clone)]
pub enum StreamCredential {
    /// An API key sent as a bearer token (the API listener), and the CA that verifies an
    /// https:// server (None: the system's roots).
    Token {
        token: String,
        ca_file: Option<PathBuf>,
    },
    /// A client certificate of the agent listener: the cluster's bootstrap credential in
    /// `bootstrap_dir` (from `palisade enroll`), renewed into the agent's own in `own_dir`.
    Certificate {
        bootstrap_dir: PathBuf,
        own_dir: PathBuf,
    },
}

impl StreamCredential {
    /// The enrolled credential of an agent whose cluster credential is in `bootstrap_dir` and
    /// whose own is kept in `own_dir`, and the agent listener URL the current one names.
    pub fn enrolled(
        bootstrap_dir: &Path,
        own_dir: PathBuf,
    ) -> Result<(String, StreamCredential), palisade_core::CoreError> {
        let identity = palisade_core::agent_identity::current_identity(bootstrap_dir, &own_dir)?;
        let credential = StreamCredential::Certificate {
            bootstrap_dir: bootstrap_dir.to_path_buf(),
            own_dir,
        };
        Ok((identity.info.agent_url, credential))
    }
}

/// What the stream reports about its agent, and where it reports progress.
pub trait AgentStatus: Send + Sync {
    /// The agent's drop counters, sent in the hello and every heartbeat.
    fn drop_counters(&self) -> DropCounters;
    /// Highest sequence number durable in the spool: only alerts up to it leave the agent.
    fn durable_seq(&self) -> u64;
    /// A stream to the server was established.
    fn connected(&self) {}
    /// An ack released `alerts` from the spool, which now holds `spooled`.
    fn acked(&self, alerts: u64, spooled: usize) {
        let _ = (alerts, spooled);
    }
}

/// Applies configuration pushed by the server (spec point 14).
pub trait ConfigApplier: Send + Sync {
    /// Applies `config` atomically, or keeps the running one and says why not. Called on a
    /// blocking thread: it may compile rules.
    fn apply(&self, config: &AgentConfig) -> Result<(), String>;
}

/// How the agent reaches the server.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Server URL (http://host:port or https://...).
    pub url: String,
    /// The agent's credential.
    pub credential: StreamCredential,
    /// Agent id (stable per node).
    pub agent_id: String,
    /// Node name (node agents) or host name (audit watchers).
    pub node_name: String,
    /// What kind of agent this is.
    pub kind: AgentKind,
    /// Most alerts per batch.
    pub max_batch_alerts: usize,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl StreamConfig {
    /// Defaults for a node agent with a URL and credential.
    pub fn new(
        url: impl Into<String>,
        credential: StreamCredential,
        node_name: impl Into<String>,
    ) -> Self {
        let node_name = node_name.into();
        Self {
            url: url.into(),
            credential,
            agent_id: format!("node/{node_name}"),
            node_name,
            kind: AgentKind::Node,
            max_batch_alerts: 256,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// The delay before reconnect attempt `attempt` (0-based): doubling from the initial delay
/// up to the maximum, with ±50 % jitter so a fleet does not reconnect in step.
pub fn backoff_delay(config: &StreamConfig, attempt: u32, random_unit: f64) -> Duration {
    let base = config
        .backoff_initial
        .saturating_mul(1u32 << attempt.min(16))
        .min(config.backoff_max);
    let factor = 0.5 + random_unit.clamp(0.0, 1.0);
    base.mul_f64(factor)
}

fn stream_error(config: &StreamConfig, message: impl std::fmt::Display) -> LinkError {
    LinkError::Stream {
        url: config.url.clone(),
        message: message.to_string(),
    }
}

/// What one agent's stream works with.
pub struct Link {
    /// Where to connect and as whom.
    pub config: StreamConfig,
    /// Alerts waiting for their ack.
    pub spool: Arc<Spool>,
    /// Woken after each durable append.
    pub appended: Arc<Notify>,
    /// What the agent reports.
    pub status: Arc<dyn AgentStatus>,
    /// Applies pushed configuration; without one the agent does not take pushes.
    pub applier: Option<Arc<dyn ConfigApplier>>,
}

/// Runs the stream until `shutdown` turns true: connects, sends, reconnects.
pub async fn run(link: Link, mut shutdown: watch::Receiver<bool>) {
    let config = &link.config;
    let mut attempt = 0u32;
    // survives reconnects: the server pushes again only what differs from it
    let mut config_version = String::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match session(&link, &mut config_version, &mut shutdown, &mut attempt).await {
            Ok(()) => return,
            Err(error) => warn!(%error, code = error.code(), "agent stream interrupted"),
        }
        let delay = backoff_delay(config, attempt, rand::rng().random::<f64>());
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}

type BearerHeader = tonic::metadata::MetadataValue<tonic::metadata::Ascii>;

/// A channel to the server and, for an API key, the header that authenticates each call.
async fn open_channel(
    config: &StreamConfig,
) -> Result<(tonic::transport::Channel, Option<BearerHeader>), LinkError> {
    match &config.credential {
        StreamCredential::Token { token, ca_file } => {
            let mut endpoint = tonic::transport::Endpoint::from_shared(config.url.clone())
                .map_err(|error| stream_error(config, format!("bad url: {error}")))?
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true);
            if config.url.starts_with("https://") {
                let tls = match ca_file {
                    Some(path) => {
                        let pem = std::fs::read_to_string(path).map_err(|error| {
                            stream_error(config, format!("CA file {}: {error}", path.display()))
                        })?;
                        tonic::transport::ClientTlsConfig::new()
                            .ca_certificate(tonic::transport::Certificate::from_pem(pem))
                    }
                    None => tonic::transport::ClientTlsConfig::new().with_native_roots(),
                };
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|error| stream_error(config, format!("TLS: {error}")))?;
            }
            let channel = endpoint
                .connect()
                .await
                .map_err(|error| stream_error(config, format!("cannot connect: {error}")))?;
            let header: BearerHeader = format!("Bearer {token}")
                .parse()
                .map_err(|_| stream_error(config, "the token is not valid header text"))?;
            Ok((channel, Some(header)))
        }
        StreamCredential::Certificate {
            bootstrap_dir,
            own_dir,
        } => {
            // renews into the agent's own certificate on first use and when a third of its
            // lifetime is left
            let identity = palisade_core::agent_identity::own_identity(
                bootstrap_dir,
                own_dir,
                &config.agent_id,
            )
            .await
            .map_err(|error| stream_error(config, error))?;
            let channel = identity
                .channel()
                .await
                .map_err(|error| stream_error(config, error))?;
            Ok((channel, None))
        }
    }
}

fn message(msg: connect_request::Msg) -> ConnectRequest {
    ConnectRequest { msg: Some(msg) }
}

/// Applies a pushed configuration off the async threads and says how it went.
async fn apply_config(applier: &Arc<dyn ConfigApplier>, config: AgentConfig) -> ConfigApplied {
    let version = config.version.clone();
    let applier = Arc::clone(applier);
    let outcome = tokio::task::spawn_blocking(move || applier.apply(&config))
        .await
        .unwrap_or_else(|error| Err(format!("applying the configuration failed: {error}")));
    match outcome {
        Ok(()) => {
            info!(%version, "configuration from the server applied");
            ConfigApplied {
                version,
                ok: true,
                error: String::new(),
            }
        }
        Err(error) => {
            warn!(%version, %error, "configuration from the server not applied; keeping the running one");
            ConfigApplied {
                version,
                ok: false,
                error,
            }
        }
    }
}

/// One connection. Returns Ok only on shutdown.
async fn session(
    link: &Link,
    config_version: &mut String,
    shutdown: &mut watch::Receiver<bool>,
    attempt: &mut u32,
) -> Result<(), LinkError> {
    let config = &link.config;
    let spool = link.spool.as_ref();
    let status = link.status.as_ref();
    let (channel, token) = open_channel(config).await?;
    let mut client =
        AgentServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            if let Some(token) = &token {
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
            }
            Ok(request)
        });
    let (outbound, outbound_receiver) = mpsc::channel::<ConnectRequest>(64);
    let mut capabilities = vec!["alerts".into(), "heartbeat".into(), "throttle".into()];
    if link.applier.is_some() {
        capabilities.push("config".into());
    }
    let hello = AgentHello {
        agent_id: config.agent_id.clone(),
        kind: config.kind as i32,
        version: env!("CARGO_PKG_VERSION").to_string(),
        capabilities,
        node_name: config.node_name.clone(),
        last_acked_seq: spool.acked(),
        spool_batches: spool.len() as u64,
        drops: Some(status.drop_counters()),
        config_version: config_version.clone(),
    };
    outbound
        .send(message(connect_request::Msg::Hello(hello)))
        .await
        .map_err(|_| stream_error(config, "request stream closed"))?;
    let response = client
        .connect(tokio_stream::wrappers::ReceiverStream::new(
            outbound_receiver,
        ))
        .await
        .map_err(|status| {
            stream_error(config, format!("{}: {}", status.code(), status.message()))
        })?;
    let mut inbound = response.into_inner();
    let server_hello = match inbound.message().await {
        Ok(Some(ConnectResponse {
            msg: Some(connect_response::Msg::Hello(hello)),
        })) => hello,
        Ok(other) => {
            return Err(stream_error(
                config,
                format!("expected ServerHello first, got {other:?}"),
            ));
        }
        Err(status) => {
            return Err(stream_error(
                config,
                format!("{}: {}", status.code(), status.message()),
            ));
        }
    };
    status.connected();
    *attempt = 0;
    info!(
        resume_after_seq = server_hello.resume_after_seq,
        window = server_hello.window,
        tenant = %server_hello.tenant_id,
        "agent stream connected"
    );
    // the server holds everything up to resume_after_seq durably
    let released = spool.ack(server_hello.resume_after_seq)?;
    status.acked(released as u64, spool.len());
    let mut window = server_hello.window.max(1) as usize;
    let max_batch_bytes = if server_hello.max_batch_bytes == 0 {
        4 << 20
    } else {
        server_hello.max_batch_bytes as usize
    };
    let heartbeat_every = server_hello
        .heartbeat_interval
        .and_then(|duration| Duration::try_from(duration).ok())
        .filter(|duration| !duration.is_zero())
        .unwrap_or(Duration::from_secs(10));
    let mut cursor = server_hello.resume_after_seq.max(spool.acked());
    let mut in_flight: VecDeque<u64> = VecDeque::new();
    let mut throttled_until: Option<tokio::time::Instant> = None;
    // the server answers every heartbeat, so a live server is never silent this long; a link
    // cut without a reset (a partition) is noticed here instead of waiting forever
    let silence_limit = heartbeat_every.saturating_mul(3);
    let mut last_heard = tokio::time::Instant::now();
    let mut heartbeat = tokio::time::interval(heartbeat_every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        // send as much as the window and the throttle allow
        let throttled = throttled_until.is_some_and(|until| tokio::time::Instant::now() < until);
        while !throttled && in_flight.len() < window {
            let durable = status.durable_seq();
            if durable <= cursor {
                break;
            }
            let records = spool.read_after(cursor, config.max_batch_alerts)?;
            let mut alerts = Vec::new();
            let mut first_seq = 0;
            let mut last_seq = cursor;
            let mut bytes = 0usize;
            for (seq, alert) in records {
                // only what is durable leaves the agent, and a batch is consecutive
                if seq > durable || (!alerts.is_empty() && seq != last_seq + 1) {
                    break;
                }
                let size = prost::Message::encoded_len(&alert);
                if !alerts.is_empty() && bytes + size > max_batch_bytes {
                    break;
                }
                if alerts.is_empty() {
                    first_seq = seq;
                }
                bytes += size;
                last_seq = seq;
                alerts.push(alert);
            }
            if alerts.is_empty() {
                break;
            }
            outbound
                .send(message(connect_request::Msg::Batch(AlertBatch {
                    first_seq,
                    alerts,
                })))
                .await
                .map_err(|_| stream_error(config, "request stream closed"))?;
            in_flight.push_back(last_seq);
            cursor = last_seq;
        }
        tokio::select! {
            received = inbound.message() => {
                let response = received
                    .map_err(|status| stream_error(config, format!("{}: {}", status.code(), status.message())))?
                    .ok_or_else(|| stream_error(config, "server closed the stream"))?;
                last_heard = tokio::time::Instant::now();
                match response.msg {
                    Some(connect_response::Msg::Ack(ack)) => {
                        let released = spool.ack(ack.up_to_seq)?;
                        status.acked(released as u64, spool.len());
                        while in_flight.front().is_some_and(|last| *last <= ack.up_to_seq) {
                            in_flight.pop_front();
                        }
                        if ack.window > 0 {
                            window = ack.window as usize;
                        }
                    }
                    Some(connect_response::Msg::Throttle(throttle)) => {
                        let delay = throttle
                            .retry_after
                            .and_then(|duration| Duration::try_from(duration).ok())
                            .unwrap_or(Duration::from_secs(1));
                        warn!(reason = %throttle.reason, ?delay, "server throttled the agent; alerts stay spooled");
                        throttled_until = Some(tokio::time::Instant::now() + delay);
                        // unacked batches will be resent from the cursor the server reports next
                        cursor = spool.acked();
                        in_flight.clear();
                    }
                    Some(connect_response::Msg::Config(pushed)) => {
                        let Some(applier) = &link.applier else {
                            continue;
                        };
                        let applied = apply_config(applier, pushed).await;
                        if applied.ok {
                            config_version.clone_from(&applied.version);
                        }
                        outbound
                            .send(message(connect_request::Msg::ConfigApplied(applied)))
                            .await
                            .map_err(|_| stream_error(config, "request stream closed"))?;
                    }
                    Some(_) | None => {}
                }
            }
            _ = link.appended.notified() => {}
            _ = poll.tick() => {}
            _ = heartbeat.tick() => {
                let silent = last_heard.elapsed();
                if silent > silence_limit {
                    return Err(stream_error(
                        config,
                        format!("no message from the server for {} s (three heartbeat intervals); reconnecting", silent.as_secs()),
                    ));
                }
                let beat = Heartbeat {
                    time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
                    drops: Some(status.drop_counters()),
                    spool_batches: spool.len() as u64,
                };
                // a full queue means the link is stalled: the silence check above ends it
                match outbound.try_send(message(connect_request::Msg::Heartbeat(beat))) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return Err(stream_error(config, "request stream closed"));
                    }
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter() {
        let config = StreamConfig::new(
            "http://127.0.0.1:1",
            StreamCredential::Token {
                token: "t".into(),
                ca_file: None,
            },
            "node",
        );
        assert_eq!(backoff_delay(&config, 0, 0.5), Duration::from_millis(200));
        assert_eq!(backoff_delay(&config, 3, 0.5), Duration::from_millis(1600));
        assert_eq!(backoff_delay(&config, 30, 0.5), Duration::from_secs(30));
        assert_eq!(backoff_delay(&config, 0, 0.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(&config, 0, 1.0), Duration::from_millis(300));
    }
}
