//! The search service's bounds and per-tenant settings, through the peer handle the gRPC
//! adapter uses: wildcard expansion, clause count, result window and time budget are refused
//! with errors that say which bound and where; retention deletes a tenant's old documents (and
//! keeps them out of a reindex) without touching another tenant; saved searches belong to one
//! tenant; a tenant erased from the log loses its documents and settings, and a tenant of the
//! same name created afterwards starts empty.

use std::time::Duration;

use palisade_core::auth::{Principal, Role};
use palisade_core::bridge::ActorSystem;
use palisade_core::config::SearchConfig;
use palisade_core::log::Topic;
use palisade_core::storage::Store;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{
    Alert, DeleteSavedSearchRequest, GetRetentionRequest, ListSavedSearchesRequest, PageRequest,
    Priority, ReindexRequest, SaveSearchRequest, SavedSearch, SetRetentionRequest, SortOrder,
};
use palisade_search::query::QueryLimits;
use palisade_search::{SearchActors, SearchPeer, SearchTopics, start_search_actors_with};
use support::{principal, publish, query};

mod support;

const DAY: i64 = 86_400;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn alert(tenant: &str, id: usize, seconds: i64, process: &str) -> Alert {
    let rule = if id.is_multiple_of(2) {
        "Terminal shell in container"
    } else {
        "Read sensitive file untrusted"
    };
    Alert {
        id: format!("a-{id}"),
        tenant_id: tenant.into(),
        rule: rule.into(),
        source: "syscall".into(),
        priority: Priority::Warning as i32,
        output: format!("{rule} (proc.name={process} seq={id})"),
        output_fields: [("proc.name".to_string(), process.to_string())].into(),
        time: Some(Timestamp { seconds, nanos: 0 }),
        ..Default::default()
    }
}

/// The wait for a few thousand alerts to be indexed.
const INDEX_WAIT: Duration = Duration::from_secs(10);

async fn wait_indexed(actors: &SearchActors, offset: u64) {
    support::wait_indexed(actors, offset, INDEX_WAIT).await;
}

struct Service {
    _system: ActorSystem,
    actors: SearchActors,
    topic: Topic,
    _directory: tempfile::TempDir,
}

fn start(limits: QueryLimits) -> Service {
    let directory = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&directory.path().join("db")).expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let topics = SearchTopics {
        alerts: topic.clone(),
        findings: Topic::open(&store, "findings").expect("topic"),
    };
    let index = directory.path().join("index");
    let (system, actors) = ActorSystem::start("search-limits", move || {
        start_search_actors_with(&index, topics, &store, &SearchConfig::default(), limits)
    })
    .expect("system");
    Service {
        _system: system,
        actors: actors.expect("actors"),
        topic,
        _directory: directory,
    }
}

async fn total(peer: &SearchPeer, who: &Principal, text: &str) -> u64 {
    peer.search(who, query(text)).await.expect("search").total
}

#[tokio::test(flavor = "multi_thread")]
async fn query_bounds_are_refused_with_the_bound_and_the_position() {
    let service = start(QueryLimits::default());
    let alerts: Vec<Alert> = (0..1_100)
        .map(|id| alert("acme", id, now() - 60, &format!("proc{id:04}")))
        .collect();
    let end = publish(&service.topic, &alerts).await;
    wait_indexed(&service.actors, end).await;
    let peer = SearchPeer::Local(service.actors.clone());
    let acme = principal("acme", Role::ReadOnly);
    assert_eq!(total(&peer, &acme, "proc.name:proc000*").await, 10);

    // 1,100 distinct process names: more than a wildcard may expand to
    let error = peer
        .search(&acme, query("proc.name:proc*"))
        .await
        .expect_err("too many terms");
    assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
    assert!(
        error.message().contains("more than 1024 distinct"),
        "{error:?}"
    );
    assert!(error.message().contains("column 1"), "{error:?}");

    let long = format!("rule:{}*", "x".repeat(300));
    let error = peer.search(&acme, query(&long)).await.expect_err("long");
    assert!(
        error.message().contains("limited to 256 characters"),
        "{error:?}"
    );

    let many = "a ".repeat(1_100);
    let error = peer.search(&acme, query(&many)).await.expect_err("clauses");
    assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
    assert!(error.message().contains("1024"), "{error:?}");
    let huge = "a".repeat(5_000);
    let error = peer.search(&acme, query(&huge)).await.expect_err("length");
    assert!(error.message().contains("at most 4096"), "{error:?}");

    // relevance order pages by offset only so deep; time order has no such bound
    let mut deep = query("shell");
    deep.sort = SortOrder::Relevance as i32;
    deep.page = Some(PageRequest {
        limit: 100,
        cursor: "r:9950".into(),
    });
    let error = peer.search(&acme, deep).await.expect_err("window");
    assert!(
        error.message().contains("at most 10000 hits deep"),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_over_its_time_budget_is_stopped_with_a_clear_error() {
    let service = start(QueryLimits {
        time_budget: Duration::ZERO,
        ..QueryLimits::default()
    });
    let alerts: Vec<Alert> = (0..3_000)
        .map(|id| alert("acme", id, now() - 60, "bash"))
        .collect();
    let end = publish(&service.topic, &alerts).await;
    wait_indexed(&service.actors, end).await;
    let peer = SearchPeer::Local(service.actors.clone());
    let error = peer
        .search(&principal("acme", Role::ReadOnly), query("*"))
        .await
        .expect_err("over budget");
    assert_eq!(error.code(), tonic::Code::DeadlineExceeded, "{error:?}");
    assert!(error.message().contains("time budget"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_one_tenants_old_documents_and_keeps_them_out_of_a_reindex() {
    let service = start(QueryLimits::default());
    let mut alerts = Vec::new();
    for tenant in ["acme", "globex"] {
        for id in 0..10 {
            alerts.push(alert(tenant, id, now() - 10 * DAY, "old"));
        }
        for id in 10..15 {
            alerts.push(alert(tenant, id, now() - DAY, "recent"));
        }
    }
    let end = publish(&service.topic, &alerts).await;
    wait_indexed(&service.actors, end).await;
    let peer = SearchPeer::Local(service.actors.clone());
    let acme_admin = principal("acme", Role::Admin);
    let globex = principal("globex", Role::ReadOnly);

    let denied = peer
        .set_retention(
            &principal("acme", Role::Analyst),
            SetRetentionRequest { days: 5 },
        )
        .await
        .expect_err("only admins");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let set = peer
        .set_retention(&acme_admin, SetRetentionRequest { days: 5 })
        .await
        .expect("retention");
    assert_eq!((set.days, set.deleted), (5, 10));
    let got = peer
        .get_retention(&acme_admin, GetRetentionRequest {})
        .await
        .expect("get");
    assert_eq!(got.days, 5);
    assert_eq!(total(&peer, &acme_admin, "*").await, 5);
    assert_eq!(total(&peer, &acme_admin, "proc.name:old").await, 0);
    assert_eq!(
        total(&peer, &globex, "*").await,
        15,
        "globex keeps everything"
    );

    // the log still holds them: a rebuild must not bring them back
    peer.reindex(&acme_admin, ReindexRequest::default())
        .await
        .expect("reindex");
    wait_indexed(&service.actors, end).await;
    assert_eq!(total(&peer, &acme_admin, "*").await, 5);
    assert_eq!(total(&peer, &globex, "*").await, 15);

    // an old alert arriving late is not indexed either
    let late = publish(
        &service.topic,
        &[alert("acme", 99, now() - 30 * DAY, "late")],
    )
    .await;
    wait_indexed(&service.actors, late).await;
    assert_eq!(total(&peer, &acme_admin, "proc.name:late").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_searches_belong_to_one_tenant() {
    let service = start(QueryLimits::default());
    let mut alerts: Vec<Alert> = (0..20)
        .map(|id| alert("acme", id, now() - 60, "bash"))
        .collect();
    alerts.extend((0..20).map(|id| alert("globex", id, now() - 60, "bash")));
    let end = publish(&service.topic, &alerts).await;
    wait_indexed(&service.actors, end).await;
    let peer = SearchPeer::Local(service.actors.clone());
    let acme = principal("acme", Role::Analyst);
    let globex = principal("globex", Role::Analyst);

    let saved = |name: &str, text: &str| SaveSearchRequest {
        search: Some(SavedSearch {
            name: name.into(),
            query: text.into(),
            facets: vec!["rule".into()],
            description: "shells in containers".into(),
            ..Default::default()
        }),
    };
    let stored = peer
        .save_search(
            &acme,
            saved("shells", "rule:\"Terminal shell in container\""),
        )
        .await
        .expect("save")
        .search
        .expect("stored");
    assert_eq!(stored.updated_by, "acme-key");
    assert!(stored.updated.is_some());

    let bad = peer
        .save_search(&acme, saved("broken", "rule:(shell"))
        .await
        .expect_err("a bad query is not saved");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let read_only = peer
        .save_search(&principal("acme", Role::ReadOnly), saved("x", "*"))
        .await
        .expect_err("read-only");
    assert_eq!(read_only.code(), tonic::Code::PermissionDenied);

    let listed = peer
        .list_saved_searches(&acme, ListSavedSearchesRequest {})
        .await
        .expect("list");
    assert_eq!(listed.searches.len(), 1);
    assert_eq!(listed.searches[0].name, "shells");

    let mut using = query("*");
    using.saved_search = "shells".into();
    let response = peer.search(&acme, using.clone()).await.expect("saved");
    assert_eq!(response.total, 10);
    assert_eq!(response.facets.len(), 1, "the saved facets come along");

    // globex sees neither the list entry nor can it run acme's search
    let theirs = peer
        .list_saved_searches(&globex, ListSavedSearchesRequest {})
        .await
        .expect("list");
    assert!(theirs.searches.is_empty());
    let error = peer.search(&globex, using).await.expect_err("not theirs");
    assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
    let not_theirs = peer
        .delete_saved_search(
            &globex,
            DeleteSavedSearchRequest {
                name: "shells".into(),
            },
        )
        .await
        .expect("delete");
    assert!(!not_theirs.deleted);

    let deleted = peer
        .delete_saved_search(
            &acme,
            DeleteSavedSearchRequest {
                name: "shells".into(),
            },
        )
        .await
        .expect("delete");
    assert!(deleted.deleted);
    let again = peer
        .delete_saved_search(
            &acme,
            DeleteSavedSearchRequest {
                name: "shells".into(),
            },
        )
        .await
        .expect("delete");
    assert!(!again.deleted);
}

/// Saving a search named `name` for `query`, nothing else set.
fn save_request(name: &str, query: &str) -> SaveSearchRequest {
    SaveSearchRequest {
        search: Some(SavedSearch {
            name: name.into(),
            query: query.into(),
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_tenant_loses_its_documents_and_settings_and_a_new_one_starts_empty() {
    let service = start(QueryLimits::default());
    let mut alerts = Vec::new();
    for tenant in ["acme", "globex"] {
        alerts.extend((0..30).map(|id| alert(tenant, id, now() - 60, "bash")));
    }
    let end = publish(&service.topic, &alerts).await;
    wait_indexed(&service.actors, end).await;
    let peer = SearchPeer::Local(service.actors.clone());
    let acme = principal("acme", Role::Admin);
    let globex = principal("globex", Role::Admin);
    for who in [&acme, &globex] {
        peer.save_search(who, save_request("shells", "proc.name:bash"))
            .await
            .expect("save");
        peer.set_retention(who, SetRetentionRequest { days: 90 })
            .await
            .expect("retention");
    }
    assert_eq!(total(&peer, &acme, "*").await, 30);

    // the tenant deletion removes the settings itself, then erases the records
    let forgotten = service
        .actors
        .settings
        .forget_tenant("acme")
        .expect("forget settings");
    assert_eq!(forgotten, 2, "one saved search and the retention");
    let erasure = service.topic.erase_tenant("acme").await.expect("erase");
    assert_eq!(erasure.erased, 30);
    wait_indexed(&service.actors, erasure.marker + 1).await;
    assert_eq!(total(&peer, &acme, "*").await, 0);
    assert_eq!(total(&peer, &globex, "*").await, 30, "globex keeps its own");
    let listed = peer
        .list_saved_searches(&acme, ListSavedSearchesRequest {})
        .await
        .expect("list");
    assert!(listed.searches.is_empty(), "{listed:?}");
    let retention = peer
        .get_retention(&acme, GetRetentionRequest {})
        .await
        .expect("retention");
    assert_eq!(retention.days, 0);
    let theirs = peer
        .list_saved_searches(&globex, ListSavedSearchesRequest {})
        .await
        .expect("list");
    assert_eq!(theirs.searches.len(), 1);

    // the marker leaves settings alone: a new acme's, saved before the indexer reached an
    // erasure of the old one, stay
    peer.save_search(&acme, save_request("fresh", "proc.name:sh"))
        .await
        .expect("save");
    let second = service.topic.erase_tenant("acme").await.expect("erase");
    assert_eq!(second.erased, 0);
    wait_indexed(&service.actors, second.marker + 1).await;
    let listed = peer
        .list_saved_searches(&acme, ListSavedSearchesRequest {})
        .await
        .expect("list");
    assert_eq!(listed.searches.len(), 1, "{listed:?}");

    // a rebuild does not bring the erased documents back; a new acme starts empty
    peer.reindex(&globex, ReindexRequest::default())
        .await
        .expect("reindex");
    service.topic.reopen_tenant("acme").expect("deletion done");
    let again = publish(&service.topic, &[alert("acme", 0, now(), "sh")]).await;
    wait_indexed(&service.actors, again).await;
    assert_eq!(total(&peer, &acme, "*").await, 1);
    assert_eq!(total(&peer, &acme, "proc.name:sh").await, 1);
    peer.reindex(
        &principal("default", Role::Admin),
        ReindexRequest { all_tenants: true },
    )
    .await
    .expect("reindex of every tenant");
    wait_indexed(&service.actors, again).await;
    assert_eq!(total(&peer, &acme, "*").await, 1);
    assert_eq!(total(&peer, &globex, "*").await, 30);
}
