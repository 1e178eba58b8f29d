//! Queries running on several threads at once while alerts are indexed and segments merge: each
//! answer comes from one commit of the index. Alerts of a tenant are published in time order,
//! so any commit holds a prefix of them; a total taken from one commit and a page from another
//! (or a bitset of one segment applied to another) would show as a page that is not the newest
//! (or oldest) hits of that prefix, or as facet counts that do not add up to the total.
//!
//! Cheap queries are answered on the caller's task, the others on the searcher threads; the
//! second test pins which are which.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use palisade_core::auth::Role;
use palisade_core::bridge::ActorSystem;
use palisade_core::storage::Store;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{Alert, PageRequest, SearchRequest, SortOrder, search_hit};
use palisade_search::{SearchActors, SearchPeer};
use support::{principal, publish};

mod support;

const T0: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z
const BATCHES: u64 = 60;
const PER_TENANT_PER_BATCH: u64 = 40;
const PAGE: u32 = 20;
const RULES: &[&str] = &["Terminal shell in container", "Write below etc"];

/// The `sequence`-th alert of `tenant`: its id and time both follow the sequence.
fn alert(tenant: &str, sequence: u64) -> Alert {
    Alert {
        id: format!("{sequence:06}"),
        tenant_id: tenant.into(),
        rule: RULES[(sequence % 2) as usize].into(),
        source: "syscall".into(),
        output: format!("event {sequence} of {tenant}"),
        output_fields: [("proc.name".to_string(), "bash".to_string())].into(),
        time: Some(Timestamp {
            seconds: T0 + sequence as i64,
            nanos: 0,
        }),
        ..Default::default()
    }
}

fn start(store: &Store, index_dir: &std::path::Path) -> (ActorSystem, SearchActors) {
    support::start_actors(store, index_dir, "search-concurrent")
}

fn request(query: &str, sort: SortOrder, limit: u32, facets: &[&str]) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        sort: sort as i32,
        page: Some(PageRequest {
            limit,
            cursor: String::new(),
        }),
        facets: facets.iter().map(|facet| facet.to_string()).collect(),
        ..Default::default()
    }
}

/// The sequence numbers of the page's alerts, each checked to be acme's.
fn page_sequences(response: palisade_proto::wire::SearchResponse) -> Vec<u64> {
    response
        .decode_hits()
        .expect("hits decode")
        .hits
        .into_iter()
        .map(|hit| match hit.document {
            Some(search_hit::Document::Alert(alert)) => {
                assert_eq!(alert.tenant_id, "acme", "another tenant's alert: {alert:?}");
                alert.id.parse().expect("a sequence number")
            }
            other => panic!("expected an alert, got {other:?}"),
        })
        .collect()
}

/// Asks the three questions over and over until `done`; returns how many answers it checked.
async fn ask_until_done(peer: SearchPeer, done: Arc<AtomicBool>, inline: Arc<AtomicU64>) -> u64 {
    let acme = principal("acme", Role::ReadOnly);
    let newest = request("proc.name:bash", SortOrder::TimeDesc, PAGE, &[]);
    let oldest = request("proc.name:bash", SortOrder::TimeAsc, PAGE, &[]);
    let faceted = request("*", SortOrder::TimeDesc, PAGE, &["rule"]);
    let (mut last_newest, mut last_faceted) = (0, 0);
    let mut checked = 0;
    loop {
        // Read before asking, so the last round runs after the last commit.
        let finished = done.load(Ordering::SeqCst);

        let response = peer.search(&acme, newest.clone()).await.expect("newest");
        let total = response.total;
        assert!(
            total >= last_newest,
            "the index went back: {total} after {last_newest}"
        );
        last_newest = total;
        let expected: Vec<u64> = (total.saturating_sub(u64::from(PAGE))..total)
            .rev()
            .collect();
        assert_eq!(page_sequences(response), expected, "newest page of {total}");

        let response = peer.search(&acme, oldest.clone()).await.expect("oldest");
        let expected: Vec<u64> = (0..response.total.min(u64::from(PAGE))).collect();
        assert_eq!(page_sequences(response), expected, "oldest page");

        let response = peer.search(&acme, faceted.clone()).await.expect("faceted");
        let total = response.total;
        assert!(
            total >= last_faceted,
            "the index went back: {total} after {last_faceted}"
        );
        last_faceted = total;
        let counted: u64 = response.facets[0]
            .buckets
            .iter()
            .map(|bucket| bucket.count)
            .sum();
        assert_eq!(counted, total, "facet counts against the total");
        let expected: Vec<u64> = (total.saturating_sub(u64::from(PAGE))..total)
            .rev()
            .collect();
        assert_eq!(
            page_sequences(response),
            expected,
            "faceted page of {total}"
        );

        if let SearchPeer::Local(actors) = &peer {
            let plan = actors
                .engine
                .plan(&acme.tenant, &newest)
                .expect("a valid request");
            let search = actors.engine.compile(plan).expect("compiles");
            if actors.engine.runs_inline(&search) {
                inline.fetch_add(1, Ordering::Relaxed);
            }
        }
        checked += 3;
        if finished {
            return checked;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_queries_during_indexing_each_see_one_commit() {
    let temp = tempfile::tempdir().expect("temp");
    let store = Store::open(&temp.path().join("db")).expect("store");
    let (_system, actors) = start(&store, &temp.path().join("index"));
    let alerts_topic = actors.topics.alerts.clone();
    let peer = SearchPeer::Local(actors.clone());
    let done = Arc::new(AtomicBool::new(false));
    let inline = Arc::new(AtomicU64::new(0));
    let askers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(ask_until_done(peer.clone(), done.clone(), inline.clone())))
        .collect();

    let mut end = 0;
    for batch in 0..BATCHES {
        let first = batch * PER_TENANT_PER_BATCH;
        let alerts: Vec<Alert> = (first..first + PER_TENANT_PER_BATCH)
            .flat_map(|sequence| [alert("acme", sequence), alert("globex", sequence)])
            .collect();
        end = publish(&alerts_topic, &alerts).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    support::wait_indexed(&actors, end, Duration::from_secs(10)).await;
    done.store(true, Ordering::SeqCst);

    let mut checked = 0;
    for asker in askers {
        checked += asker.await.expect("an asker panicked");
    }
    let acme = principal("acme", Role::ReadOnly);
    let all = peer
        .search(
            &acme,
            request("proc.name:bash", SortOrder::TimeDesc, 1, &[]),
        )
        .await
        .expect("search");
    assert_eq!(all.total, BATCHES * PER_TENANT_PER_BATCH);
    assert!(checked > 30, "only {checked} answers checked");
    assert!(
        inline.load(Ordering::Relaxed) > 0,
        "no query was cheap enough to answer on the calling task"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_cheap_queries_with_their_bitsets_cached_are_answered_on_the_calling_task() {
    let temp = tempfile::tempdir().expect("temp");
    let store = Store::open(&temp.path().join("db")).expect("store");
    let (_system, actors) = start(&store, &temp.path().join("index"));
    let alerts: Vec<Alert> = (0..500)
        .flat_map(|sequence| [alert("acme", sequence), alert("globex", sequence)])
        .collect();
    let end = publish(&actors.topics.alerts, &alerts).await;
    support::wait_indexed(&actors, end, Duration::from_secs(5)).await;
    let acme = principal("acme", Role::ReadOnly);
    let engine = &actors.engine;
    let runs_inline = |request: &SearchRequest| {
        let plan = engine.plan(&acme.tenant, request).expect("a valid request");
        if !plan.may_run_inline() {
            return false;
        }
        engine.runs_inline(&engine.compile(plan).expect("compiles"))
    };

    let filter = request("proc.name:bash", SortOrder::TimeDesc, PAGE, &[]);
    assert!(!runs_inline(&filter), "its bitsets are not built yet");
    let peer = SearchPeer::Local(actors.clone());
    peer.search(&acme, filter.clone()).await.expect("search");
    assert!(runs_inline(&filter), "its bitsets are cached now");

    let mut refused = vec![
        request("proc.name:bash", SortOrder::TimeDesc, 500, &[]),
        request("proc.name:bash", SortOrder::TimeDesc, PAGE, &["rule"]),
        request("proc.name:bash", SortOrder::Relevance, PAGE, &[]),
        request("proc.name:ba*", SortOrder::TimeDesc, PAGE, &[]),
        request("\"event 5\"", SortOrder::TimeDesc, PAGE, &[]),
    ];
    let mut highlighted = filter.clone();
    highlighted.highlight = true;
    refused.push(highlighted);
    for request in refused {
        // Asked once, so whatever it can build is built.
        peer.search(&acme, request.clone()).await.expect("search");
        assert!(
            !runs_inline(&request),
            "answered on the calling task: {request:?}"
        );
    }
}
