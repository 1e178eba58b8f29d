//! The log across processes, for the distributed mode.
//!
//! The gateway owns the durable log and serves it ([`LogGrpc`]). The search and graph services
//! keep a replica of each topic they consume: a [`spawn_follower`] task asks the gateway for
//! records from the replica's end and appends them at the same offsets, so their consumers
//! read the replica exactly as they read the log in the embedded mode, with their own offsets
//! and at-least-once delivery. The scanner appends its findings through a [`TopicWriter`],
//! which waits until the gateway's log has them durable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_proto::v1::log_service_client::LogServiceClient;
use palisade_proto::v1::log_service_server::LogService;
use palisade_proto::v1::{
    AppendLogRequest, AppendLogResponse, AppendResultMessage, FollowLogRequest, FollowLogResponse,
    LogEntryMessage, LogRecordMessage,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::{AppendResult, LogEntry, LogRecord, Topic};
use crate::auth::service::ServiceToken;
use crate::error::{CoreError, CoreResult, source_chain};
use crate::shutdown::Shutdown;

/// Most records one follow message carries.
const FOLLOW_BATCH_RECORDS: usize = 256;
/// Payload bytes after which a follow message is sent even if it has fewer records.
const FOLLOW_BATCH_BYTES: usize = 2 << 20;
/// Largest message a follower or appender accepts from the gateway.
pub const MAX_LOG_MESSAGE_BYTES: usize = 64 << 20;
/// Reconnection delays of a follower: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_LAST: Duration = Duration::from_secs(30);

/// The gateway's log as a gRPC service.
#[derive(Clone)]
pub struct LogGrpc {
    topics: Arc<BTreeMap<String, Topic>>,
}

impl LogGrpc {
    /// Serves `topics`, by name.
    pub fn new(topics: impl IntoIterator<Item = Topic>) -> LogGrpc {
        let topics = topics
            .into_iter()
            .map(|topic| (topic.name().to_string(), topic))
            .collect();
        LogGrpc {
            topics: Arc::new(topics),
        }
    }

    fn topic(&self, name: &str) -> Result<&Topic, Status> {
        self.topics.get(name).ok_or_else(|| {
            Status::not_found(format!(
                "no log topic {name:?}; topics: {}",
                self.topics.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

#[tonic::async_trait]
impl LogService for LogGrpc {
    type FollowStream = ReceiverStream<Result<FollowLogResponse, Status>>;

    async fn follow(
        &self,
        request: Request<FollowLogRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        let request = request.into_inner();
        let topic = self.topic(&request.topic)?.clone();
        let durable_end = topic.durable_end();
        if request.from_offset > durable_end {
            return Err(Status::failed_precondition(format!(
                "log {}: the replica asks from offset {} but the log ends at {durable_end}; \
                 the gateway's data directory was replaced, so delete the replica's data \
                 directory and let it copy the log again",
                request.topic, request.from_offset
            )));
        }
        // A small channel: a slow follower stops this task instead of growing memory.
        let (sender, receiver) = mpsc::channel(2);
        tokio::spawn(stream_records(topic, request.from_offset, sender));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn append(
        &self,
        request: Request<AppendLogRequest>,
    ) -> Result<Response<AppendLogResponse>, Status> {
        let request = request.into_inner();
        let topic = self.topic(&request.topic)?;
        let entries = request
            .entries
            .into_iter()
            .map(|entry| LogEntry {
                dedupe_key: (!entry.dedupe_key.is_empty()).then_some(entry.dedupe_key),
                payload: entry.payload,
            })
            .collect();
        let results = topic.append(entries).await?;
        Ok(Response::new(AppendLogResponse {
            results: results
                .into_iter()
                .map(|result| match result {
                    AppendResult::Appended(offset) => AppendResultMessage {
                        offset,
                        duplicate: false,
                    },
                    AppendResult::Duplicate(offset) => AppendResultMessage {
                        offset,
                        duplicate: true,
                    },
                })
                .collect(),
        }))
    }
}

/// Sends the durable records of `topic` from `from` on, waiting for new ones, until the
/// follower goes away.
async fn stream_records(
    topic: Topic,
    mut from: u64,
    sender: mpsc::Sender<Result<FollowLogResponse, Status>>,
) {
    let mut changes = topic.subscribe();
    loop {
        let reader = topic.clone();
        let read = tokio::task::spawn_blocking(move || reader.read(from, FOLLOW_BATCH_RECORDS))
            .await
            .map_err(|error| CoreError::Task(format!("log read: {error}")))
            .and_then(|records| records);
        let records = match read {
            Ok(records) => records,
            Err(error) => {
                let _ = sender.send(Err(Status::from(error))).await;
                return;
            }
        };
        if records.is_empty() {
            // Mark the current end as seen before waiting, so an append between the read and
            // the wait is not missed: `changed` then returns at once.
            changes.borrow_and_update();
            if topic.durable_end() > from {
                continue;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = sender.closed() => return,
            }
            continue;
        }
        let mut bytes = 0;
        let mut batch = Vec::with_capacity(records.len());
        for record in records {
            bytes += record.payload.len();
            from = record.offset + 1;
            batch.push(LogRecordMessage {
                offset: record.offset,
                payload: record.payload,
            });
            if bytes >= FOLLOW_BATCH_BYTES {
                break;
            }
        }
        let message = FollowLogResponse {
            records: batch,
            durable_end: topic.durable_end(),
        };
        if sender.send(Ok(message)).await.is_err() {
            return;
        }
    }
}

/// A topic of the gateway's log, reached over gRPC with the service credential.
#[derive(Clone)]
pub struct RemoteTopic {
    client: LogServiceClient<Channel>,
    token: ServiceToken,
    name: String,
}

impl RemoteTopic {
    /// The topic `name` of the log served on `channel`.
    pub fn new(channel: Channel, token: ServiceToken, name: &str) -> RemoteTopic {
        RemoteTopic {
            client: LogServiceClient::new(channel)
                .max_decoding_message_size(MAX_LOG_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_LOG_MESSAGE_BYTES),
            token,
            name: name.to_string(),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn request<T>(&self, message: T) -> CoreResult<Request<T>> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.token.bearer()?);
        Ok(request)
    }

    /// Appends a batch to the gateway's log; returns once the gateway has it durable.
    pub async fn append(&self, entries: Vec<LogEntry>) -> CoreResult<Vec<AppendResult>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let count = entries.len();
        let request = self.request(AppendLogRequest {
            topic: self.name.clone(),
            entries: entries
                .into_iter()
                .map(|entry| LogEntryMessage {
                    dedupe_key: entry.dedupe_key.unwrap_or_default(),
                    payload: entry.payload,
                })
                .collect(),
        })?;
        let response = self
            .client
            .clone()
            .append(request)
            .await
            .map_err(|status| remote_error(&self.name, "append to", &status))?
            .into_inner();
        if response.results.len() != count {
            return Err(CoreError::Unavailable(format!(
                "log {}: the gateway answered {} results for {count} entries",
                self.name,
                response.results.len()
            )));
        }
        Ok(response
            .results
            .into_iter()
            .map(|result| match result.duplicate {
                true => AppendResult::Duplicate(result.offset),
                false => AppendResult::Appended(result.offset),
            })
            .collect())
    }

    async fn follow(&self, from_offset: u64) -> CoreResult<tonic::Streaming<FollowLogResponse>> {
        let request = self.request(FollowLogRequest {
            topic: self.name.clone(),
            from_offset,
        })?;
        Ok(self
            .client
            .clone()
            .follow(request)
            .await
            .map_err(|status| remote_error(&self.name, "follow", &status))?
            .into_inner())
    }
}

fn remote_error(topic: &str, action: &str, status: &Status) -> CoreError {
    let text = format!(
        "cannot {action} log {topic} at the gateway: {} ({})",
        status.message(),
        source_chain(status)
    );
    match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            CoreError::Unauthenticated(text)
        }
        tonic::Code::InvalidArgument | tonic::Code::NotFound | tonic::Code::FailedPrecondition => {
            CoreError::InvalidArgument(text)
        }
        _ => CoreError::Unavailable(text),
    }
}

/// Where a producer appends: the log in this process, or the gateway's.
#[derive(Clone)]
pub enum TopicWriter {
    Local(Topic),
    Remote(Box<RemoteTopic>),
}

impl TopicWriter {
    /// Appends a batch; returns once it is durable (locally or at the gateway).
    pub async fn append(&self, entries: Vec<LogEntry>) -> CoreResult<Vec<AppendResult>> {
        match self {
            TopicWriter::Local(topic) => topic.append(entries).await,
            TopicWriter::Remote(topic) => topic.append(entries).await,
        }
    }
}

impl From<RemoteTopic> for TopicWriter {
    fn from(topic: RemoteTopic) -> TopicWriter {
        TopicWriter::Remote(Box::new(topic))
    }
}

impl From<Topic> for TopicWriter {
    fn from(topic: Topic) -> TopicWriter {
        TopicWriter::Local(topic)
    }
}

/// How a replica's follower is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowerState {
    /// Whether a follow stream to the gateway is open.
    pub connected: bool,
    /// The gateway's durable end at its last message.
    pub source_end: u64,
    /// The replica's durable end.
    pub replica_end: u64,
    /// The last failure, cleared once records flow again.
    pub last_error: Option<String>,
}

/// Reads a follower's state.
#[derive(Clone)]
pub struct FollowerMonitor {
    state: Arc<Mutex<FollowerState>>,
    replica: Topic,
}

impl FollowerMonitor {
    /// The follower's state now.
    pub fn state(&self) -> FollowerState {
        let mut state = self
            .state
            .lock()
            .map(|state| state.clone())
            .unwrap_or_default();
        state.replica_end = self.replica.durable_end();
        state
    }

    fn update(&self, change: impl FnOnce(&mut FollowerState)) {
        if let Ok(mut state) = self.state.lock() {
            change(&mut state);
        }
    }
}

/// Keeps `replica` a copy of the gateway's `source` topic until `shutdown`: reconnects with
/// growing delays after failures and resumes from the replica's end.
pub fn spawn_follower(
    source: RemoteTopic,
    replica: Topic,
    shutdown: Shutdown,
) -> (JoinHandle<()>, FollowerMonitor) {
    let monitor = FollowerMonitor {
        state: Arc::new(Mutex::new(FollowerState::default())),
        replica: replica.clone(),
    };
    let task = tokio::spawn(follow(source, replica, shutdown, monitor.clone()));
    (task, monitor)
}

async fn follow(source: RemoteTopic, replica: Topic, shutdown: Shutdown, monitor: FollowerMonitor) {
    let mut delay = RETRY_FIRST;
    while !shutdown.is_triggered() {
        let outcome = tokio::select! {
            outcome = follow_once(&source, &replica, &monitor) => outcome,
            () = shutdown.triggered() => return,
        };
        monitor.update(|state| state.connected = false);
        match outcome {
            // Records flowed before the stream ended: try again at once.
            Ok(true) => {
                delay = RETRY_FIRST;
                continue;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(topic = source.name(), %error, retry_in = ?delay, "log replica cannot follow the gateway");
                monitor.update(|state| state.last_error = Some(error.to_string()));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {},
            () = shutdown.triggered() => return,
        }
        delay = (delay * 2).min(RETRY_LAST);
    }
}

/// One follow stream, until it ends. Ok(true) when it carried records.
async fn follow_once(
    source: &RemoteTopic,
    replica: &Topic,
    monitor: &FollowerMonitor,
) -> CoreResult<bool> {
    let mut stream = source.follow(replica.durable_end()).await?;
    monitor.update(|state| state.connected = true);
    let mut carried = false;
    loop {
        let message = match stream.message().await {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(carried),
            Err(status) => {
                return Err(remote_error(source.name(), "follow", &status));
            }
        };
        let records = message
            .records
            .into_iter()
            .map(|record| LogRecord {
                offset: record.offset,
                payload: record.payload,
            })
            .collect::<Vec<_>>();
        if !records.is_empty() {
            replica.append_replica(records).await?;
            carried = true;
        }
        monitor.update(|state| {
            state.source_end = message.durable_end;
            state.last_error = None;
        });
    }
}

#[cfg(test)]
mod tests;
