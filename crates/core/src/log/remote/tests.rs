use std::net::SocketAddr;

use palisade_proto::v1::log_service_server::LogServiceServer;
use tonic::service::interceptor::InterceptedService;

use super::*;
use crate::auth::service::ServiceOnly;
use crate::log::record_tenant;
use crate::storage::Store;

fn token() -> ServiceToken {
    ServiceToken::new("internal-credential-of-the-tests-0001").expect("valid")
}

fn entry(key: &str, payload: &str) -> LogEntry {
    LogEntry {
        dedupe_key: Some(key.as_bytes().to_vec()),
        payload: payload.as_bytes().to_vec(),
    }
}

/// A gateway's log served on loopback; returns its address and the served topic.
async fn serve(store: &Store, shutdown: &Shutdown) -> (SocketAddr, Topic) {
    let topic = Topic::open(store, "alerts").expect("topic");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    serve_topic(listener, topic.clone(), shutdown);
    (address, topic)
}

/// Serves `topic` as the gateway's log on `listener` until `shutdown`.
fn serve_topic(listener: tokio::net::TcpListener, topic: Topic, shutdown: &Shutdown) {
    let service = InterceptedService::new(
        LogServiceServer::new(LogGrpc::new([topic])),
        ServiceOnly::new(token()),
    );
    let shutdown = shutdown.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move { shutdown.triggered().await },
            ),
    );
}

fn channel(address: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("url")
        .connect_lazy()
}

async fn wait_for(replica: &Topic, end: u64) {
    let mut changes = replica.subscribe();
    tokio::time::timeout(Duration::from_secs(20), async {
        while *changes.borrow_and_update() < end {
            changes.changed().await.expect("replica open");
        }
    })
    .await
    .expect("the replica catches up");
}

#[tokio::test]
async fn a_replica_holds_the_same_records_at_the_same_offsets_and_follows_new_ones() {
    let temp = tempfile::tempdir().expect("temp dir");
    let shutdown = Shutdown::new();
    let source_store = Store::open(&temp.path().join("gateway")).expect("open");
    let (address, source) = serve(&source_store, &shutdown).await;
    let remote = RemoteTopic::new(channel(address), token(), "alerts");

    // Appended through the gateway, deduplicated there.
    let results = remote
        .append(vec![
            entry("a", "one"),
            entry("b", "two"),
            entry("a", "again"),
        ])
        .await
        .expect("append");
    assert_eq!(
        results,
        vec![
            AppendResult::Appended(0),
            AppendResult::Appended(1),
            AppendResult::Duplicate(0)
        ]
    );
    assert_eq!(source.durable_end(), 2);

    let replica_store = Store::open(&temp.path().join("search")).expect("open");
    let replica = Topic::open(&replica_store, "alerts").expect("replica");
    let (task, monitor) = spawn_follower(remote.clone(), replica.clone(), shutdown.clone());
    wait_for(&replica, 2).await;
    for round in 0..5u32 {
        let batch = (0..100)
            .map(|index| {
                entry(
                    &format!("{round}-{index}"),
                    &format!("record {round}/{index}"),
                )
            })
            .collect();
        source.append(batch).await.expect("append at the gateway");
    }
    wait_for(&replica, 502).await;
    assert_eq!(
        replica.read(0, 1000).expect("replica"),
        source.read(0, 1000).expect("source")
    );
    let state = monitor.state();
    assert!(state.connected, "{state:?}");
    assert_eq!(state.replica_end, 502);
    shutdown.trigger();
    task.await.expect("follower stops");
}

#[tokio::test]
async fn a_follower_resumes_from_its_replica_after_the_gateway_restarts() {
    let temp = tempfile::tempdir().expect("temp dir");
    let replica_store = Store::open(&temp.path().join("graph")).expect("open");
    let replica = Topic::open(&replica_store, "alerts").expect("replica");
    let source_store = Store::open(&temp.path().join("gateway")).expect("open");
    let first = Shutdown::new();
    let (address, source) = serve(&source_store, &first).await;
    source
        .append((0..10).map(|i| entry(&i.to_string(), "x")).collect())
        .await
        .expect("append");
    let following = Shutdown::new();
    let (task, monitor) = spawn_follower(
        RemoteTopic::new(channel(address), token(), "alerts"),
        replica.clone(),
        following.clone(),
    );
    wait_for(&replica, 10).await;

    // The gateway goes away; records appended meanwhile arrive once it serves again.
    first.trigger();
    source
        .append((10..25).map(|i| entry(&i.to_string(), "y")).collect())
        .await
        .expect("append");
    let second = Shutdown::new();
    let listener = tokio::net::TcpListener::bind(address).await;
    let Ok(listener) = listener else {
        panic!("the gateway's port {address} could not be bound again");
    };
    serve_topic(listener, source.clone(), &second);
    wait_for(&replica, 25).await;
    assert_eq!(
        replica.read(0, 100).expect("replica"),
        source.read(0, 100).expect("source")
    );
    assert_eq!(monitor.state().last_error, None);
    following.trigger();
    second.trigger();
    task.await.expect("follower stops");
}

#[tokio::test]
async fn the_log_refuses_callers_without_the_service_credential() {
    let temp = tempfile::tempdir().expect("temp dir");
    let shutdown = Shutdown::new();
    let store = Store::open(temp.path()).expect("open");
    let (address, source) = serve(&store, &shutdown).await;
    let stranger = ServiceToken::new(&"z".repeat(40)).expect("valid");
    let remote = RemoteTopic::new(channel(address), stranger, "alerts");
    let error = remote
        .append(vec![entry("a", "forged")])
        .await
        .expect_err("refused");
    assert!(matches!(error, CoreError::Unauthenticated(_)), "{error}");
    assert_eq!(source.durable_end(), 0, "nothing was written");

    let unknown = RemoteTopic::new(channel(address), token(), "secrets");
    let error = unknown
        .append(vec![entry("a", "x")])
        .await
        .expect_err("no such topic");
    assert!(error.to_string().contains("no log topic"), "{error}");
    shutdown.trigger();
}

#[tokio::test]
async fn a_replica_ahead_of_the_log_is_told_so_and_a_gap_is_refused() {
    let temp = tempfile::tempdir().expect("temp dir");
    let shutdown = Shutdown::new();
    let store = Store::open(&temp.path().join("gateway")).expect("open");
    let (address, _source) = serve(&store, &shutdown).await;
    let remote = RemoteTopic::new(channel(address), token(), "alerts");
    let error = remote.follow(5).await.expect_err("ahead of the log");
    assert!(
        error.to_string().contains("data directory was replaced"),
        "{error}"
    );

    let replica_store = Store::open(&temp.path().join("replica")).expect("open");
    let replica = Topic::open(&replica_store, "alerts").expect("replica");
    let gap = replica
        .append_replica(vec![LogRecord {
            offset: 3,
            payload: b"x".to_vec(),
        }])
        .await
        .expect_err("a hole");
    assert!(gap.to_string().contains("expected offset 0"), "{gap}");
    assert_eq!(replica.durable_end(), 0);
    shutdown.trigger();
}

fn alert(tenant: &str, id: &str) -> LogEntry {
    let alert = palisade_proto::v1::Alert {
        id: id.to_string(),
        tenant_id: tenant.to_string(),
        ..palisade_proto::v1::Alert::default()
    };
    LogEntry {
        dedupe_key: Some(format!("{tenant}/{id}").into_bytes()),
        payload: prost::Message::encode_to_vec(&alert),
    }
}

#[tokio::test]
async fn a_tenant_erased_at_the_gateway_is_erased_from_replicas_behind_and_caught_up() {
    let temp = tempfile::tempdir().expect("temp dir");
    let shutdown = Shutdown::new();
    let source_store = Store::open(&temp.path().join("gateway")).expect("open");
    let (address, source) = serve(&source_store, &shutdown).await;
    let batch = |from: usize| -> Vec<LogEntry> {
        (from..from + 50)
            .map(|index| {
                let tenant = if index % 2 == 0 { "acme" } else { "globex" };
                alert(tenant, &index.to_string())
            })
            .collect()
    };
    source.append(batch(0)).await.expect("append");

    // one replica holds the tenant's records when the marker comes
    let caught_up_store = Store::open(&temp.path().join("search")).expect("open");
    let caught_up = Topic::open(&caught_up_store, "alerts").expect("replica");
    let (first, _) = spawn_follower(
        RemoteTopic::new(channel(address), token(), "alerts"),
        caught_up.clone(),
        shutdown.clone(),
    );
    wait_for(&caught_up, 50).await;
    source.append(batch(50)).await.expect("append");
    let erasure = source.erase_tenant("acme").await.expect("erase");
    assert_eq!(erasure.erased, 50);
    source.reopen_tenant("acme").expect("deletion done");
    source
        .append(vec![alert("acme", "new")])
        .await
        .expect("append");
    wait_for(&caught_up, 102).await;

    // another starts after the erasure and receives it in one batch
    let behind_store = Store::open(&temp.path().join("graph")).expect("open");
    let behind = Topic::open(&behind_store, "alerts").expect("replica");
    let (second, _) = spawn_follower(
        RemoteTopic::new(channel(address), token(), "alerts"),
        behind.clone(),
        shutdown.clone(),
    );
    wait_for(&behind, 102).await;

    let expected = source.read(0, 200).expect("source");
    assert_eq!(expected.len(), 102);
    let acme_left = expected
        .iter()
        .filter(|record| record_tenant(&record.payload).as_deref() == Some("acme"))
        .count();
    assert_eq!(acme_left, 1, "only the record after the marker");
    assert_eq!(caught_up.read(0, 200).expect("replica"), expected);
    assert_eq!(behind.read(0, 200).expect("replica"), expected);
    shutdown.trigger();
    first.await.expect("follower stops");
    second.await.expect("follower stops");
}
