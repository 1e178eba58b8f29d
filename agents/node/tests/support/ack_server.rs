//! A minimal agent-stream server for tests: stores each alert it receives as one JSON line in
//! a file (fsync'd), deduplicated by alert id, and acks a batch only after its alerts are in
//! the file. Its ServerHello resumes after the highest sequence number in the file.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use palisade_proto::v1::agent_service_server::{AgentService, AgentServiceServer};
use palisade_proto::v1::{
    BatchAck, ConnectRequest, ConnectResponse, ServerHello, connect_request, connect_response,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt};

/// One stored alert.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Stored {
    pub seq: u64,
    pub id: String,
    pub rule: String,
    pub output: String,
}

pub fn read_store(path: &Path) -> Vec<Stored> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_str(line).expect("store line"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

struct Service {
    store: PathBuf,
    lock: Arc<Mutex<()>>,
    alive: watch::Receiver<bool>,
    window: u32,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<ConnectResponse, tonic::Status>> + Send>>;

fn respond(msg: connect_response::Msg) -> ConnectResponse {
    ConnectResponse { msg: Some(msg) }
}

#[tonic::async_trait]
impl AgentService for Service {
    type ConnectStream = ResponseStream;

    async fn connect(
        &self,
        request: tonic::Request<tonic::Streaming<ConnectRequest>>,
    ) -> Result<tonic::Response<Self::ConnectStream>, tonic::Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if token != "Bearer test-token" {
            return Err(tonic::Status::unauthenticated("bad token"));
        }
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel::<Result<ConnectResponse, tonic::Status>>(64);
        let store = self.store.clone();
        let lock = Arc::clone(&self.lock);
        let mut alive = self.alive.clone();
        let window = self.window;
        tokio::spawn(async move {
            let first = inbound.next().await;
            let Some(Ok(ConnectRequest {
                msg: Some(connect_request::Msg::Hello(_)),
            })) = first
            else {
                let _ = sender
                    .send(Err(tonic::Status::invalid_argument("hello first")))
                    .await;
                return;
            };
            let stored = read_store(&store);
            let resume = stored.iter().map(|item| item.seq).max().unwrap_or(0);
            let mut ids: HashSet<String> = stored.into_iter().map(|item| item.id).collect();
            let hello = ServerHello {
                version: "test".into(),
                resume_after_seq: resume,
                window,
                heartbeat_interval: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 0,
                }),
                ..ServerHello::default()
            };
            if sender
                .send(Ok(respond(connect_response::Msg::Hello(hello))))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::select! {
                    message = inbound.next() => {
                        let Some(Ok(message)) = message else { return };
                        let Some(connect_request::Msg::Batch(batch)) = message.msg else { continue };
                        if !*alive.borrow() {
                            return;
                        }
                        let mut duplicates = 0;
                        {
                            let _guard = lock.lock().expect("lock");
                            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&store).expect("store");
                            for (offset, alert) in batch.alerts.iter().enumerate() {
                                if !ids.insert(alert.id.clone()) {
                                    duplicates += 1;
                                    continue;
                                }
                                let line = serde_json::to_string(&Stored {
                                    seq: batch.first_seq + offset as u64,
                                    id: alert.id.clone(),
                                    rule: alert.rule.clone(),
                                    output: alert.output.clone(),
                                }).expect("json");
                                writeln!(file, "{line}").expect("write");
                            }
                            file.sync_all().expect("fsync");
                        }
                        let up_to = batch.first_seq + batch.alerts.len() as u64 - 1;
                        let ack = BatchAck { up_to_seq: up_to, window: 0, duplicates };
                        if sender.send(Ok(respond(connect_response::Msg::Ack(ack)))).await.is_err() {
                            return;
                        }
                    }
                    _ = alive.changed() => {
                        if !*alive.borrow() {
                            let _ = sender.send(Err(tonic::Status::unavailable("server stopping"))).await;
                            return;
                        }
                    }
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

/// A running test server.
pub struct AckServer {
    pub address: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AckServer {
    /// Starts a server storing into `store`, on `address` (port 0 for any).
    pub async fn start(store: &Path, address: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(address).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, alive) = watch::channel(true);
        let service = Service {
            store: store.to_path_buf(),
            lock: Arc::new(Mutex::new(())),
            alive,
            window: 4,
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(AgentServiceServer::new(service))
                .serve_with_incoming(incoming)
                .await;
        });
        Self {
            address,
            stop,
            task,
        }
    }

    /// Ends every stream and closes the listener.
    pub async fn stop(self) {
        let _ = self.stop.send(false);
        self.task.abort();
        let _ = self.task.await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
