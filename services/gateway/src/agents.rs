//! The server side of the agent stream, palisade.v1.AgentService/Connect
//! (docs/specs/agent-stream.md).
//!
//! One task per connected agent reads its messages in order. An alert batch goes to the ingest
//! actor, which answers once the alerts are in the durable log, and only then is the batch
//! acked. The agent's highest durable sequence number is then stored without a flush of its
//! own: it is a resume hint that the store writes back within 500 ms (or with the next log
//! flush). A crash before that makes the agent resend batches whose alerts are already
//! stored: they carry stable ids and are stored once, and the ack counts them as duplicates.
//!
//! Batches of many agents enter the log at once; the log's group commit makes one flush cover
//! every batch written before it began.
//!
//! Memory per connection is bounded: the task reads the next message only after answering the
//! previous one, its answers go through a channel of `window + 4` messages, and pushed
//! configurations come through a watch channel holding only the latest version. A slow log
//! therefore slows the agent (HTTP/2 flow control stops it) instead of queueing its batches.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use futures::{Stream, StreamExt};
use palisade_core::auth::{Credentials, Principal, Role};
use palisade_core::bridge::{mailbox_status, principal_of};
use palisade_core::config::AgentsConfig;
use palisade_core::ids::TenantId;
use palisade_core::storage::{Store, TypedTree};
use palisade_proto::prost_types;
use palisade_proto::v1::agent_service_server::AgentService;
use palisade_proto::v1::{
    AgentConfig, AgentHello, AlertBatch, BatchAck, ConfigApplied, ConnectRequest, ConnectResponse,
    Heartbeat, ServerHello, Throttle, connect_request, connect_response,
};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use crate::agent_config::AgentConfigStore;
use crate::error::GatewayError;
use crate::ingest::{Ingest, PublishAlerts};
use crate::metrics::METRICS;
use crate::rate::{RateLimit, TenantRateLimiter};
use crate::registry::{AgentKey, AgentRegistry, Ticket, agent_key};

/// Name of the tree holding each agent's highest durable sequence number.
const SEQUENCES_TREE: &str = "agent_sequences";

/// Capability names of the agent stream (spec point 3).
pub mod capability {
    /// Alert batches and acks.
    pub const ALERTS: &str = "alerts";
    /// Heartbeats with drop counters.
    pub const HEARTBEAT: &str = "heartbeat";
    /// The agent honours `Throttle`; without it, an agent over its tenant's rate has its
    /// stream closed with RESOURCE_EXHAUSTED.
    pub const THROTTLE: &str = "throttle";
    /// The agent applies pushed `AgentConfig` and answers `ConfigApplied`.
    pub const CONFIG: &str = "config";
}

/// Limits the server grants agents.
#[derive(Debug, Clone, Copy)]
pub struct AgentLimits {
    /// Unacked batches an agent may have in flight.
    pub window: u32,
    /// Largest encoded AlertBatch accepted.
    pub max_batch_bytes: u32,
    /// How often an idle agent sends a heartbeat; three missed intervals make it dead.
    pub heartbeat_interval: Duration,
    /// Alerts per second per tenant, over all its agents.
    pub rate: RateLimit,
}

impl Default for AgentLimits {
    fn default() -> AgentLimits {
        AgentLimits::from_config(&AgentsConfig::default())
    }
}

impl AgentLimits {
    /// The limits of the `[agents]` configuration section.
    pub fn from_config(config: &AgentsConfig) -> AgentLimits {
        AgentLimits {
            window: config.window,
            max_batch_bytes: config.max_batch_bytes,
            heartbeat_interval: Duration::from_secs(config.heartbeat_seconds),
            rate: RateLimit {
                alerts_per_second: config.tenant_alerts_per_second,
                burst: config.tenant_alert_burst,
            },
        }
    }
}

/// Serves AgentService.
#[derive(Clone)]
pub struct AgentGrpc {
    ingest: Addr<Ingest>,
    credentials: Credentials,
    sequences: TypedTree<u64>,
    limits: AgentLimits,
    registry: Arc<AgentRegistry>,
    configs: Arc<AgentConfigStore>,
    rate: Arc<TenantRateLimiter>,
}

impl AgentGrpc {
    /// An adapter publishing through `ingest`, keeping sequence numbers, the agent registry
    /// and pushed configurations in `store`, and cutting off streams whose credential
    /// `credentials` revokes.
    pub fn new(
        ingest: Addr<Ingest>,
        credentials: Credentials,
        store: Store,
        limits: AgentLimits,
    ) -> Result<AgentGrpc, Status> {
        let sequences = store
            .typed_tree(SEQUENCES_TREE)
            .map_err(|error| Status::internal(format!("cannot open {SEQUENCES_TREE}: {error}")))?;
        let registry = AgentRegistry::open(&store, limits.heartbeat_interval)?;
        let configs = AgentConfigStore::open(&store, limits.max_batch_bytes as usize)?;
        Ok(AgentGrpc {
            ingest,
            credentials,
            sequences,
            limits,
            registry: Arc::new(registry),
            configs: Arc::new(configs),
            rate: Arc::new(TenantRateLimiter::new(limits.rate)),
        })
    }

    /// The registry of agents, for the admin service and status.
    pub fn registry(&self) -> Arc<AgentRegistry> {
        Arc::clone(&self.registry)
    }

    /// The pushed configurations, for the admin service.
    pub fn configs(&self) -> Arc<AgentConfigStore> {
        Arc::clone(&self.configs)
    }

    /// Forgets the agents of `tenant` (an erased tenant): their registry entries, sequence
    /// numbers and pushed configurations. Returns how many agents and configurations went.
    pub fn forget_tenant(&self, tenant: &TenantId) -> Result<(usize, usize), GatewayError> {
        let agents = self.registry.forget_tenant(tenant)?;
        let configs = self.configs.forget_tenant(tenant)?;
        // a tenant created again under this id must not find its agents' old sequence
        // numbers, or their first batches would be taken for ones already stored
        self.sequences.remove_prefix(&format!("{tenant}\n"))?;
        Ok((agents, configs))
    }
}

type ConnectStream = Pin<Box<dyn Stream<Item = Result<ConnectResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentGrpc {
    type ConnectStream = ConnectStream;

    async fn connect(
        &self,
        request: Request<Streaming<ConnectRequest>>,
    ) -> Result<Response<ConnectStream>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Analyst)?;
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(ConnectRequest {
                msg: Some(connect_request::Msg::Hello(hello)),
            }) => hello,
            Some(_) => {
                return Err(Status::invalid_argument(
                    "the first message of the agent stream must be AgentHello",
                ));
            }
            None => {
                return Err(Status::cancelled(
                    "the agent closed the stream before AgentHello",
                ));
            }
        };
        self.start_session(principal, hello, inbound).await
    }
}

/// How often a connected credential is checked even without a revocation, so one that
/// expires while connected is cut off too.
const CREDENTIAL_RECHECK: Duration = Duration::from_secs(60);

/// Resolves, with the status that ends the stream, once the credential `principal`
/// authenticated with is revoked or expired; never otherwise.
async fn cut_off_when_revoked(
    credentials: Credentials,
    principal: Principal,
) -> Result<ConnectResponse, Status> {
    let mut revocations = credentials.revocations();
    loop {
        tokio::select! {
            changed = revocations.changed() => {
                if changed.is_err() {
                    // the credential store is gone: the server is stopping
                    return std::future::pending().await;
                }
            }
            () = tokio::time::sleep(CREDENTIAL_RECHECK) => {}
        }
        if !credentials.still_valid(&principal) {
            info!(
                tenant = %principal.tenant,
                credential = %principal.key_id,
                "cutting off an agent whose credential was revoked or expired"
            );
            return Err(Status::unauthenticated(format!(
                "credential {} was revoked or has expired",
                principal.key_id
            )));
        }
    }
}

impl AgentGrpc {
    fn stored_sequence(&self, key: &str) -> Result<u64, Status> {
        self.sequences
            .get(key)
            .map(Option::unwrap_or_default)
            .map_err(|error| Status::internal(format!("cannot read agent sequence: {error}")))
    }

    /// Answers the hello, registers the agent and spawns the task serving its stream.
    async fn start_session(
        &self,
        principal: Principal,
        hello: AgentHello,
        inbound: Streaming<ConnectRequest>,
    ) -> Result<Response<ConnectStream>, Status> {
        let key = agent_key(&principal, &hello.agent_id)?;
        // an agent that saw acks the server no longer holds (a restored server) resumes
        // after them: it has deleted those alerts, and waiting for them would stop it forever
        let durable = self
            .stored_sequence(&key.storage_key())?
            .max(hello.last_acked_seq);
        info!(
            tenant = %key.tenant,
            cluster = %key.cluster,
            agent = %key.agent_id,
            node = %hello.node_name,
            version = %hello.version,
            agent_acked = hello.last_acked_seq,
            server_durable = durable,
            config_version = %hello.config_version,
            "agent connected"
        );
        let (sender, receiver) =
            mpsc::channel(usize::try_from(self.limits.window).unwrap_or(8) + 4);
        let server_hello = ServerHello {
            version: env!("CARGO_PKG_VERSION").to_string(),
            capabilities: [
                capability::ALERTS,
                capability::HEARTBEAT,
                capability::THROTTLE,
                capability::CONFIG,
            ]
            .map(String::from)
            .to_vec(),
            resume_after_seq: durable,
            window: self.limits.window,
            max_batch_bytes: self.limits.max_batch_bytes,
            heartbeat_interval: prost_types::Duration::try_from(self.limits.heartbeat_interval)
                .ok(),
            tenant_id: key.tenant.to_string(),
            cluster_id: key.cluster.clone(),
        };
        sender
            .send(Ok(response(connect_response::Msg::Hello(server_hello))))
            .await
            .map_err(|_| Status::cancelled("the agent went away"))?;
        let ticket = self.registry.connected(&key, &hello, durable)?;
        let cut_off = cut_off_when_revoked(self.credentials.clone(), principal.clone());
        let agent_has = |name: &str| hello.capabilities.iter().any(|given| given == name);
        let session = Session {
            service: self.clone(),
            principal,
            config_changes: self.configs.subscribe(&key.tenant),
            key,
            ticket,
            durable,
            sender,
            throttle_capable: agent_has(capability::THROTTLE),
            config_capable: agent_has(capability::CONFIG),
            applied_config: hello.config_version,
            pushed_config: None,
            discarding_after_throttle: false,
        };
        tokio::spawn(session.run(inbound));
        // Ending the response with an error closes the call for the agent at once; the
        // session notices when it next sends. The response ends with the session too.
        let outbound = futures::stream::unfold(
            (ReceiverStream::new(receiver), Box::pin(cut_off), false),
            |(mut replies, mut cut_off, ended)| async move {
                if ended {
                    return None;
                }
                tokio::select! {
                    biased;
                    reply = replies.next() => reply.map(|reply| (reply, (replies, cut_off, false))),
                    status = &mut cut_off => Some((status, (replies, cut_off, true))),
                }
            },
        );
        Ok(Response::new(Box::pin(outbound)))
    }
}

fn response(msg: connect_response::Msg) -> ConnectResponse {
    ConnectResponse { msg: Some(msg) }
}

/// How a session ended.
enum End {
    /// The agent closed its stream or the connection broke.
    Disconnected,
    /// The agent was silent for three heartbeat intervals.
    Dead,
}

/// One connected agent.
struct Session {
    service: AgentGrpc,
    principal: Principal,
    key: AgentKey,
    ticket: Ticket,
    /// Highest sequence number whose alerts are durable.
    durable: u64,
    sender: mpsc::Sender<Result<ConnectResponse, Status>>,
    config_changes: watch::Receiver<u64>,
    throttle_capable: bool,
    config_capable: bool,
    /// Configuration version the agent reported applied.
    applied_config: String,
    /// Last version pushed, so a version the agent refused is not pushed again.
    pushed_config: Option<String>,
    /// After a Throttle, batches already on the wire start past the next expected sequence
    /// number; they are skipped (the agent resends them) instead of failing as a gap.
    discarding_after_throttle: bool,
}

impl Session {
    async fn run(mut self, mut inbound: Streaming<ConnectRequest>) {
        let end = self.serve(&mut inbound).await;
        let dead = matches!(end, End::Dead);
        if dead {
            METRICS.agents_dead.inc();
        }
        if let Err(error) = self.service.registry.ended(&self.ticket, dead) {
            warn!(agent = %self.key.agent_id, %error, "cannot record the agent's disconnect");
        }
    }

    async fn serve(&mut self, inbound: &mut Streaming<ConnectRequest>) -> End {
        let dead_after = self.service.registry.dead_after();
        let mut deadline = Instant::now() + dead_after;
        let mut config_open = true;
        if let Some(config) = self.config_to_push() {
            let pushed = self.push_config(config, deadline).await;
            if !pushed {
                return End::Disconnected;
            }
        }
        loop {
            let message = tokio::select! {
                message = inbound.next() => message,
                changed = self.config_changes.changed(), if config_open => {
                    if changed.is_err() {
                        config_open = false;
                        continue;
                    }
                    if let Some(config) = self.config_to_push()
                        && !self.push_config(config, deadline).await
                    {
                        return End::Disconnected;
                    }
                    continue;
                }
                () = tokio::time::sleep_until(deadline) => {
                    let silent = dead_after.as_secs();
                    warn!(tenant = %self.key.tenant, agent = %self.key.agent_id, silent, "agent missed three heartbeats; closing its stream");
                    let status = Status::unavailable(format!(
                        "no message from the agent for {silent} s (three heartbeat intervals): considered dead"
                    ));
                    let _ = self.sender.try_send(Err(status));
                    return End::Dead;
                }
            };
            let message = match message {
                Some(Ok(message)) => message,
                None => {
                    debug!(agent = %self.key.agent_id, "agent closed its stream");
                    return End::Disconnected;
                }
                Some(Err(status)) => {
                    debug!(agent = %self.key.agent_id, %status, "agent stream ended");
                    return End::Disconnected;
                }
            };
            deadline = Instant::now() + dead_after;
            self.service.registry.seen(&self.ticket);
            let outcome = self.handle(message).await;
            let reply = match outcome {
                Ok(Some(reply)) => Ok(reply),
                Ok(None) => continue,
                Err(status) => {
                    warn!(agent = %self.key.agent_id, %status, "agent stream closed by the server");
                    Err(status)
                }
            };
            let failed = reply.is_err();
            // an agent that stops reading is dead once the deadline passes, not a stuck task
            let sent = tokio::time::timeout_at(deadline, self.sender.send(reply)).await;
            match sent {
                Ok(Ok(())) if !failed => {}
                Ok(_) => return End::Disconnected,
                Err(_) => return End::Dead,
            }
        }
    }

    async fn handle(&mut self, message: ConnectRequest) -> Result<Option<ConnectResponse>, Status> {
        match message.msg {
            Some(connect_request::Msg::Batch(batch)) => self.batch(batch).await,
            Some(connect_request::Msg::Heartbeat(heartbeat)) => {
                self.service.registry.heartbeat(&self.ticket, &heartbeat)?;
                Ok(Some(response(connect_response::Msg::Heartbeat(
                    Heartbeat {
                        time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
                        ..Heartbeat::default()
                    },
                ))))
            }
            Some(connect_request::Msg::Hello(_)) => Err(Status::invalid_argument(
                "AgentHello may only be the first message of the stream",
            )),
            Some(connect_request::Msg::Inventory(_)) => Err(Status::unimplemented(
                "inventory over the agent stream is not served by this server",
            )),
            Some(connect_request::Msg::ConfigApplied(applied)) => {
                self.config_applied(&applied)?;
                Ok(None)
            }
            None => Err(Status::invalid_argument("empty agent stream message")),
        }
    }

    /// The configuration to push now, if the agent takes pushes and lacks it.
    fn config_to_push(&self) -> Option<Arc<AgentConfig>> {
        if !self.config_capable {
            return None;
        }
        let config = match self
            .service
            .configs
            .effective(&self.key.tenant, &self.key.cluster)
        {
            Ok(config) => config?,
            Err(error) => {
                warn!(agent = %self.key.agent_id, %error, "cannot read the agent configuration");
                return None;
            }
        };
        let applied = config.version == self.applied_config;
        let already_pushed = self.pushed_config.as_deref() == Some(config.version.as_str());
        (!applied && !already_pushed).then_some(config)
    }

    /// Sends `config`; false when the agent is gone.
    async fn push_config(&mut self, config: Arc<AgentConfig>, deadline: Instant) -> bool {
        info!(agent = %self.key.agent_id, version = %config.version, "pushing agent configuration");
        self.pushed_config = Some(config.version.clone());
        let message = response(connect_response::Msg::Config((*config).clone()));
        matches!(
            tokio::time::timeout_at(deadline, self.sender.send(Ok(message))).await,
            Ok(Ok(()))
        )
    }

    fn config_applied(&mut self, applied: &ConfigApplied) -> Result<(), Status> {
        let reason = if applied.error.is_empty() {
            "the agent gave no reason"
        } else {
            applied.error.as_str()
        };
        let error = (!applied.ok).then_some(reason);
        match error {
            None => {
                info!(agent = %self.key.agent_id, version = %applied.version, "agent applied its configuration");
                self.applied_config = applied.version.clone();
            }
            Some(reason) => {
                warn!(agent = %self.key.agent_id, version = %applied.version, %reason, "agent refused its configuration");
            }
        }
        self.service
            .registry
            .config_applied(&self.ticket, &applied.version, error)?;
        Ok(())
    }

    /// Answers a batch over the tenant's rate: a Throttle for agents that honour it, the end
    /// of the stream for others.
    fn throttle(
        &mut self,
        first_seq: u64,
        retry_after: Duration,
    ) -> Result<Option<ConnectResponse>, Status> {
        METRICS.agent_throttles.inc();
        self.service.registry.throttled(&self.ticket);
        self.discarding_after_throttle = true;
        let limit = self.service.rate.limit();
        let reason = format!(
            "tenant {} is over its rate of {} alerts/s (burst {}); batch at seq {first_seq} not stored, retry after {} ms [TENANT_RATE_LIMITED]",
            self.principal.tenant,
            limit.alerts_per_second,
            limit.burst,
            retry_after.as_millis()
        );
        debug!(agent = %self.key.agent_id, %reason, "throttling agent");
        if !self.throttle_capable {
            return Err(Status::resource_exhausted(reason));
        }
        Ok(Some(response(connect_response::Msg::Throttle(Throttle {
            retry_after: prost_types::Duration::try_from(retry_after).ok(),
            reason,
        }))))
    }

    /// Stores a batch and answers with the ack, once it is durable.
    async fn batch(&mut self, batch: AlertBatch) -> Result<Option<ConnectResponse>, Status> {
        let size = batch.encoded_len();
        let limit = self.service.limits.max_batch_bytes as usize;
        if size > limit {
            return Err(Status::invalid_argument(format!(
                "alert batch at seq {} is {size} bytes, over the {limit} byte limit",
                batch.first_seq
            )));
        }
        let count = batch.alerts.len() as u64;
        if batch.first_seq == 0 || count == 0 {
            return Err(Status::invalid_argument(format!(
                "alert batch needs first_seq >= 1 and at least one alert (first_seq {}, {count} alerts)",
                batch.first_seq
            )));
        }
        let last = batch
            .first_seq
            .checked_add(count - 1)
            .ok_or_else(|| Status::invalid_argument("alert batch sequence numbers overflow"))?;
        if batch.first_seq > self.durable + 1 {
            if self.discarding_after_throttle {
                METRICS.agent_batches_discarded.inc();
                return Ok(None);
            }
            return Err(Status::failed_precondition(format!(
                "sequence gap: expected a batch starting at or before {}, got {}",
                self.durable + 1,
                batch.first_seq
            )));
        }
        self.discarding_after_throttle = false;
        let mut duplicates = 0u64;
        if last > self.durable {
            let new_alerts = last - self.durable;
            if let Err(retry_after) = self.service.rate.take(&self.principal.tenant, new_alerts) {
                return self.throttle(batch.first_seq, retry_after);
            }
            let published = self
                .service
                .ingest
                .send(PublishAlerts {
                    principal: self.principal.clone(),
                    alerts: batch.alerts,
                })
                .await
                .map_err(mailbox_status)??;
            duplicates = u64::from(published.duplicates);
            self.service
                .sequences
                .put(&self.key.storage_key(), &last)
                .map_err(|error| {
                    Status::internal(format!("cannot store agent sequence: {error}"))
                })?;
            self.durable = last;
            self.service.registry.stored(&self.ticket, last);
        } else {
            duplicates = duplicates.saturating_add(count);
        }
        Ok(Some(response(connect_response::Msg::Ack(BatchAck {
            up_to_seq: self.durable,
            window: 0,
            duplicates,
        }))))
    }
}

#[cfg(test)]
mod tests;
