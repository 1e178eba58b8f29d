//! The search service end to end in one process: alerts appended to a real log on disk are
//! indexed by the actors, found by queries through both kinds of peer handle, confined to their
//! tenant, and re-indexed after a restart exactly once.

use std::time::Duration;

use palisade_core::auth::{Credentials, Principal, Role};
use palisade_core::bridge::ActorSystem;
use palisade_core::ids::TenantId;
use palisade_core::log::Topic;
use palisade_core::storage::Store;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{Alert, PageRequest, Priority, SortOrder, search_hit};
use palisade_proto::wire;
use palisade_search::indexer::CatchUp;
use palisade_search::{SearchActors, SearchPeer};
use support::{publish, query, serve_over_grpc};

mod support;

fn alert(tenant: &str, id: &str, rule: &str, seconds: i64, fields: &[(&str, &str)]) -> Alert {
    Alert {
        id: id.into(),
        tenant_id: tenant.into(),
        rule: rule.into(),
        source: "syscall".into(),
        priority: Priority::Warning as i32,
        output: format!(
            "{rule} happened ({})",
            fields
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        output_fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        time: Some(Timestamp { seconds, nanos: 0 }),
        ..Default::default()
    }
}

fn principal(tenant: &str) -> Principal {
    support::principal(tenant, Role::ReadOnly)
}

/// The wait of these tests' few alerts.
const INDEX_WAIT: Duration = Duration::from_secs(2);

async fn wait_indexed(actors: &SearchActors, offset: u64) {
    support::wait_indexed(actors, offset, INDEX_WAIT).await;
}

/// Opens the store, waiting for the threads of a stopped actor system to release it.
fn reopen_store(path: &std::path::Path) -> Store {
    for _ in 0..100 {
        match Store::open(path) {
            Ok(store) => return store,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    Store::open(path).expect("store released by the stopped actors")
}

fn start(store: &Store, index_dir: &std::path::Path) -> (ActorSystem, SearchActors) {
    support::start_actors(store, index_dir, "search-test")
}

fn ids(response: &wire::SearchResponse) -> Vec<String> {
    response
        .clone()
        .decode_hits()
        .expect("hits decode")
        .hits
        .iter()
        .map(|hit| match &hit.document {
            Some(search_hit::Document::Alert(alert)) => alert.id.clone(),
            other => panic!("expected an alert, got {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_found_by_text_field_and_dotted_falco_names_newest_first() {
    let temp = tempfile::tempdir().expect("temp");
    let store = Store::open(&temp.path().join("db")).expect("store");
    let (system, actors) = start(&store, &temp.path().join("index"));
    let topic = actors.topics.alerts.clone();
    publish(
        &topic,
        &[
            alert(
                "acme",
                "a1",
                "Terminal shell in container",
                100,
                &[("proc.name", "bash"), ("k8s.ns.name", "prod")],
            ),
            alert(
                "acme",
                "a2",
                "Read sensitive file untrusted",
                200,
                &[("fd.name", "/etc/shadow"), ("k8s.ns.name", "dev")],
            ),
            alert(
                "acme",
                "a3",
                "Terminal shell in container",
                300,
                &[("proc.name", "sh"), ("k8s.ns.name", "dev")],
            ),
        ],
    )
    .await;
    wait_indexed(&actors, 3).await;
    let peer = SearchPeer::Local(actors.clone());
    let acme = principal("acme");

    let all = peer.search(&acme, query("")).await.expect("search");
    assert_eq!(all.total, 3);
    assert_eq!(ids(&all), ["a3", "a2", "a1"], "newest first by default");

    let shells = peer.search(&acme, query("shell")).await.expect("search");
    assert_eq!(ids(&shells), ["a3", "a1"]);
    let dev = peer
        .search(&acme, query("k8s.ns.name:dev"))
        .await
        .expect("search");
    assert_eq!(ids(&dev), ["a3", "a2"]);
    let bash_in_prod = peer
        .search(&acme, query("proc.name:bash AND k8s.ns.name:prod"))
        .await
        .expect("search");
    assert_eq!(ids(&bash_in_prod), ["a1"]);
    let warnings = peer
        .search(&acme, query("priority:warning"))
        .await
        .expect("search");
    assert_eq!(warnings.total, 3);

    let mut oldest_first = query("");
    oldest_first.sort = SortOrder::TimeAsc as i32;
    oldest_first.page = Some(PageRequest {
        limit: 2,
        cursor: String::new(),
    });
    let page_one = peer
        .search(&acme, oldest_first.clone())
        .await
        .expect("search");
    assert_eq!(ids(&page_one), ["a1", "a2"]);
    oldest_first.page = Some(PageRequest {
        limit: 2,
        cursor: page_one.next_cursor.clone(),
    });
    let page_two = peer.search(&acme, oldest_first).await.expect("search");
    assert_eq!(ids(&page_two), ["a3"]);
    assert!(page_two.next_cursor.is_empty());

    let error = peer
        .search(&acme, query("rule:(unclosed"))
        .await
        .expect_err("bad query");
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    system.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_query_text_reaches_another_tenants_alerts() {
    let temp = tempfile::tempdir().expect("temp");
    let store = Store::open(&temp.path().join("db")).expect("store");
    let (system, actors) = start(&store, &temp.path().join("index"));
    publish(
        &actors.topics.alerts,
        &[
            alert("acme", "same-id", "Shell", 100, &[("proc.name", "bash")]),
            alert("globex", "same-id", "Shell", 100, &[("proc.name", "bash")]),
            alert("globex", "g2", "Shell", 200, &[("proc.name", "zsh")]),
        ],
    )
    .await;
    wait_indexed(&actors, 3).await;
    let peer = SearchPeer::Local(actors.clone());
    let acme = principal("acme");
    for text in [
        "",
        "*",
        "tenant:globex",
        "tenant:globex OR tenant:acme",
        "* AND NOT tenant:acme",
        "zsh",
        "proc.name:zsh",
        "id:g2",
        "uid:globex/g2",
    ] {
        let response = match peer.search(&acme, query(text)).await {
            Ok(response) => response,
            Err(status) => {
                assert_eq!(
                    status.code(),
                    tonic::Code::InvalidArgument,
                    "{text:?}: {status}"
                );
                continue;
            }
        };
        for hit in response.clone().decode_hits().expect("hits decode").hits {
            let Some(search_hit::Document::Alert(alert)) = hit.document else {
                panic!("alert expected")
            };
            assert_eq!(alert.tenant_id, "acme", "query {text:?} leaked {alert:?}");
        }
        assert!(
            response.total <= 1,
            "query {text:?} counted another tenant's documents: {}",
            response.total
        );
    }
    let globex = peer
        .search(&principal("globex"), query(""))
        .await
        .expect("search");
    assert_eq!(
        globex.total, 2,
        "an id shared across tenants is two documents"
    );
    system.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_indexes_what_the_log_holds_beyond_the_last_commit_exactly_once() {
    let temp = tempfile::tempdir().expect("temp");
    let index_dir = temp.path().join("index");
    {
        let store = Store::open(&temp.path().join("db")).expect("store");
        let (system, actors) = start(&store, &index_dir);
        publish(
            &actors.topics.alerts,
            &[
                alert("acme", "x1", "Shell", 1, &[]),
                alert("acme", "x2", "Shell", 2, &[]),
            ],
        )
        .await;
        wait_indexed(&actors, 2).await;
        system.stop();
    }
    {
        // The log grows while the search service is down.
        let store = reopen_store(&temp.path().join("db"));
        let topic = Topic::open(&store, "alerts").expect("topic");
        publish(&topic, &[alert("acme", "x3", "Shell", 3, &[])]).await;
    }
    let store = reopen_store(&temp.path().join("db"));
    let (system, actors) = start(&store, &index_dir);
    wait_indexed(&actors, 3).await;
    // Replaying records already indexed (a commit lost in a crash) must not double them.
    let replayed = actors
        .indexer
        .send(CatchUp { commit_now: true })
        .await
        .expect("mailbox")
        .expect("catch up");
    assert_eq!(replayed.committed.alerts, 3);
    let response = SearchPeer::Local(actors.clone())
        .search(&principal("acme"), query(""))
        .await
        .expect("search");
    assert_eq!(ids(&response), ["x3", "x2", "x1"]);
    system.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_peer_reaches_the_same_service_over_grpc_for_the_callers_tenant() {
    let temp = tempfile::tempdir().expect("temp");
    let store = Store::open(&temp.path().join("db")).expect("store");
    let credentials = Credentials::open(&store).expect("credentials");
    for tenant in ["acme", "globex"] {
        credentials
            .ensure_tenant(&TenantId::new(tenant).expect("tenant"), tenant)
            .expect("tenant");
    }
    let service = credentials
        .create_api_key(
            &TenantId::new("acme").expect("tenant"),
            Role::Service,
            "internal",
        )
        .expect("service key");
    let (system, actors) = start(&store, &temp.path().join("index"));
    publish(
        &actors.topics.alerts,
        &[
            alert("acme", "r1", "Shell", 1, &[]),
            alert("globex", "r2", "Shell", 1, &[]),
        ],
    )
    .await;
    wait_indexed(&actors, 2).await;

    let address = serve_over_grpc(&actors, credentials).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let remote = SearchPeer::remote(channel, service.token);
    let response = remote
        .search(&principal("globex"), query(""))
        .await
        .expect("remote search");
    assert_eq!(ids(&response), ["r2"]);
    let refused = remote
        .search(&principal("acme"), query("tenant:globex"))
        .await
        .expect_err("tenant is not a field");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("confined to the tenant of your credential"),
        "{refused}"
    );
    system.stop();
}
