//! The server side of the agent stream, palisade.v1.AgentService/Connect
//! (docs/specs/agent-stream.md).
//!
//! One task per connected agent reads its messages in order. An alert batch goes to the ingest
//! actor, which answers once the alerts are in the durable log; then the agent's highest
//! durable sequence number is stored and flushed, and only then is the batch acked. A crash
//! between the two writes makes the agent resend a batch whose alerts are already stored: they
//! carry stable ids and are stored once.

use std::pin::Pin;
use std::time::Duration;

use actix::Addr;
use futures::{Stream, StreamExt};
use palisade_core::auth::{Credentials, Principal, Role};
use palisade_core::bridge::{mailbox_status, principal_of};
use palisade_core::storage::{Store, TypedTree};
use palisade_proto::prost_types;
use palisade_proto::v1::agent_service_server::AgentService;
use palisade_proto::v1::{
    AgentHello, AlertBatch, BatchAck, ConnectRequest, ConnectResponse, Heartbeat, ServerHello,
    connect_request, connect_response,
};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use crate::ingest::{Ingest, PublishAlerts};

/// Name of the tree holding each agent's highest durable sequence number.
const SEQUENCES_TREE: &str = "agent_sequences";
/// Longest agent id accepted.
const MAX_AGENT_ID: usize = 128;

/// Limits the server grants agents.
#[derive(Debug, Clone, Copy)]
pub struct AgentLimits {
    /// Unacked batches an agent may have in flight.
    pub window: u32,
    /// Largest encoded AlertBatch accepted.
    pub max_batch_bytes: u32,
    /// How often an idle agent sends a heartbeat.
    pub heartbeat_interval: Duration,
}

impl Default for AgentLimits {
    fn default() -> AgentLimits {
        AgentLimits {
            window: 8,
            max_batch_bytes: 4 << 20,
            heartbeat_interval: Duration::from_secs(15),
        }
    }
}

/// Serves AgentService.
#[derive(Clone)]
pub struct AgentGrpc {
    ingest: Addr<Ingest>,
    credentials: Credentials,
    store: Store,
    sequences: TypedTree<u64>,
    limits: AgentLimits,
}

impl AgentGrpc {
    /// An adapter publishing through `ingest`, keeping sequence numbers in `store`, and
    /// cutting off streams whose credential `credentials` revokes.
    pub fn new(
        ingest: Addr<Ingest>,
        credentials: Credentials,
        store: Store,
        limits: AgentLimits,
    ) -> Result<AgentGrpc, Status> {
        let sequences = store
            .typed_tree(SEQUENCES_TREE)
            .map_err(|error| Status::internal(format!("cannot open {SEQUENCES_TREE}: {error}")))?;
        Ok(AgentGrpc {
            ingest,
            credentials,
            store,
            sequences,
            limits,
        })
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
        let key = sequence_key(&principal, &hello)?;
        let durable = self.stored_sequence(&key)?;
        info!(
            tenant = %principal.tenant,
            agent = %hello.agent_id,
            node = %hello.node_name,
            version = %hello.version,
            agent_acked = hello.last_acked_seq,
            server_durable = durable,
            "agent connected"
        );
        let (sender, receiver) =
            mpsc::channel(usize::try_from(self.limits.window).unwrap_or(8) + 4);
        let server_hello = ServerHello {
            version: env!("CARGO_PKG_VERSION").to_string(),
            capabilities: Vec::new(),
            resume_after_seq: durable,
            window: self.limits.window,
            max_batch_bytes: self.limits.max_batch_bytes,
            heartbeat_interval: prost_types::Duration::try_from(self.limits.heartbeat_interval)
                .ok(),
            tenant_id: principal.tenant.to_string(),
            cluster_id: principal.cluster.clone().unwrap_or_default(),
        };
        sender
            .send(Ok(response(connect_response::Msg::Hello(server_hello))))
            .await
            .map_err(|_| Status::cancelled("the agent went away"))?;
        let cut_off = cut_off_when_revoked(self.credentials.clone(), principal.clone());
        let session = Session {
            service: self.clone(),
            principal,
            agent_id: hello.agent_id,
            key,
            durable,
            sender,
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
}

/// Where an agent's sequence number is kept: per tenant, cluster and agent (agents with API
/// keys belong to no cluster, and keep the key they had before clusters existed).
fn sequence_key(principal: &Principal, hello: &AgentHello) -> Result<String, Status> {
    let id = &hello.agent_id;
    let printable = id.chars().all(|c| !c.is_control());
    if id.is_empty() || id.len() > MAX_AGENT_ID || !printable {
        return Err(Status::invalid_argument(format!(
            "agent_id must be 1-{MAX_AGENT_ID} printable characters, got {:?}",
            id.chars().take(MAX_AGENT_ID + 8).collect::<String>()
        )));
    }
    match &principal.cluster {
        Some(cluster) => Ok(format!("{}\n{cluster}\n{id}", principal.tenant)),
        None => Ok(format!("{}\n{id}", principal.tenant)),
    }
}

fn response(msg: connect_response::Msg) -> ConnectResponse {
    ConnectResponse { msg: Some(msg) }
}

/// One connected agent.
struct Session {
    service: AgentGrpc,
    principal: Principal,
    agent_id: String,
    key: String,
    /// Highest sequence number whose alerts are durable.
    durable: u64,
    sender: mpsc::Sender<Result<ConnectResponse, Status>>,
}

impl Session {
    async fn run(mut self, mut inbound: Streaming<ConnectRequest>) {
        loop {
            let message = match inbound.message().await {
                Ok(Some(message)) => message,
                Ok(None) => {
                    debug!(agent = %self.agent_id, "agent closed its stream");
                    return;
                }
                Err(status) => {
                    debug!(agent = %self.agent_id, %status, "agent stream ended");
                    return;
                }
            };
            let outcome = match message.msg {
                Some(connect_request::Msg::Batch(batch)) => self.batch(batch).await,
                Some(connect_request::Msg::Heartbeat(_)) => Ok(Some(response(
                    connect_response::Msg::Heartbeat(Heartbeat {
                        time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
                        ..Heartbeat::default()
                    }),
                ))),
                Some(connect_request::Msg::Hello(_)) => Err(Status::invalid_argument(
                    "AgentHello may only be the first message of the stream",
                )),
                Some(connect_request::Msg::Inventory(_)) => Err(Status::unimplemented(
                    "inventory over the agent stream is not served by this server",
                )),
                Some(connect_request::Msg::ConfigApplied(applied)) => {
                    debug!(agent = %self.agent_id, version = %applied.version, ok = applied.ok, "agent config applied");
                    Ok(None)
                }
                None => Err(Status::invalid_argument("empty agent stream message")),
            };
            let reply = match outcome {
                Ok(Some(reply)) => Ok(reply),
                Ok(None) => continue,
                Err(status) => {
                    warn!(agent = %self.agent_id, %status, "agent stream closed by the server");
                    Err(status)
                }
            };
            let failed = reply.is_err();
            if self.sender.send(reply).await.is_err() || failed {
                return;
            }
        }
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
            return Err(Status::failed_precondition(format!(
                "sequence gap: expected a batch starting at or before {}, got {}",
                self.durable + 1,
                batch.first_seq
            )));
        }
        let mut duplicates = 0u64;
        if last > self.durable {
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
                .put(&self.key, &last)
                .map_err(|error| {
                    Status::internal(format!("cannot store agent sequence: {error}"))
                })?;
            self.service.store.flush().await.map_err(|error| {
                Status::internal(format!("cannot flush agent sequence: {error}"))
            })?;
            self.durable = last;
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
