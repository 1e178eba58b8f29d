//! Helpers the search service's integration tests share: publishing alerts to the log, the
//! principal and request of a query, starting the actors, waiting for the indexer, and serving
//! the service over gRPC.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use palisade_core::auth::{Credentials, Principal, Role};
use palisade_core::bridge::ActorSystem;
use palisade_core::config::SearchConfig;
use palisade_core::ids::TenantId;
use palisade_core::log::{LogEntry, Topic};
use palisade_core::storage::Store;
use palisade_proto::v1::{Alert, PageRequest, SearchRequest};
use palisade_proto::wire::search_service_server::SearchServiceServer;
use palisade_search::{SearchActors, SearchGrpc, SearchPeer, SearchTopics, start_search_actors};
use prost::Message;

/// Appends `alerts` under their `tenant/id` dedupe keys; returns the log's durable end.
pub async fn publish(topic: &Topic, alerts: &[Alert]) -> u64 {
    let entries = alerts
        .iter()
        .map(|alert| LogEntry {
            dedupe_key: Some(format!("{}/{}", alert.tenant_id, alert.id).into_bytes()),
            payload: alert.encode_to_vec(),
        })
        .collect();
    topic.append(entries).await.expect("append");
    topic.durable_end()
}

/// A caller of `tenant` with `role`, its key named after the tenant.
pub fn principal(tenant: &str, role: Role) -> Principal {
    Principal {
        tenant: TenantId::new(tenant).expect("tenant"),
        role,
        key_id: format!("{tenant}-key"),
        cluster: None,
    }
}

/// `text` as a request for the first 100 hits.
pub fn query(text: &str) -> SearchRequest {
    SearchRequest {
        query: text.into(),
        page: Some(PageRequest {
            limit: 100,
            cursor: String::new(),
        }),
        ..Default::default()
    }
}

/// Starts the search actors with the default configuration in an actor system named
/// `system_name`, reading the alerts and findings topics of `store` and keeping the index in
/// `index_dir`.
pub fn start_actors(
    store: &Store,
    index_dir: &Path,
    system_name: &str,
) -> (ActorSystem, SearchActors) {
    let topics = SearchTopics {
        alerts: Topic::open(store, "alerts").expect("topic"),
        findings: Topic::open(store, "findings").expect("topic"),
    };
    let index_dir = index_dir.to_path_buf();
    let actor_store = store.clone();
    let (system, actors) = ActorSystem::start(system_name, move || {
        start_search_actors(&index_dir, topics, &actor_store, &SearchConfig::default())
    })
    .expect("system");
    (system, actors.expect("actors"))
}

/// Waits until the index has reached alerts log offset `offset`, for at most `wait`.
pub async fn wait_indexed(actors: &SearchActors, offset: u64, wait: Duration) {
    wait_indexed_logs(actors, offset, 0, wait).await;
}

/// Waits until the index has reached offset `alerts` of the alerts log and offset `findings`
/// of the findings log, for at most `wait`.
pub async fn wait_indexed_logs(actors: &SearchActors, alerts: u64, findings: u64, wait: Duration) {
    let step = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    while waited < wait {
        let status = actors.status();
        if status.indexed_offset >= alerts && status.indexed_findings_offset >= findings {
            return;
        }
        tokio::time::sleep(step).await;
        waited += step;
    }
    panic!(
        "index did not reach alerts offset {alerts} and findings offset {findings}: {:?}",
        actors.status()
    );
}

/// Serves the search service on a local port over gRPC as the platform does, each call
/// authenticated by `credentials` and carrying the caller's principal; returns its address.
pub async fn serve_over_grpc(actors: &SearchActors, credentials: Credentials) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = SearchServiceServer::with_interceptor(
        SearchGrpc::new(SearchPeer::Local(actors.clone())),
        move |mut request: tonic::Request<()>| {
            let principal = credentials.authenticate_metadata(request.metadata())?;
            request.extensions_mut().insert(principal);
            Ok(request)
        },
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    address
}
