//! The search service answers with its stored records undecoded (`palisade_proto::wire`); a
//! client of palisade.v1.SearchService must not be able to tell. Through a real gRPC server and
//! the public client, every page of alert and finding queries (scored, highlighted, faceted,
//! every sort order, cursors across ties) decodes to the published records themselves, equals
//! the in-process answer decoded, and stays confined to the caller's tenant.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use palisade_core::auth::{BearerToken, Credentials, Principal, Role};
use palisade_core::bridge::ActorSystem;
use palisade_core::ids::TenantId;
use palisade_core::log::LogEntry;
use palisade_core::storage::Store;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{
    Alert, Finding, FindingKind, PageRequest, Priority, SearchRequest, SearchResponse, Severity,
    SortOrder, search_hit,
};
use palisade_search::schema::{alert_uid, finding_uid};
use palisade_search::{SearchActors, SearchPeer};
use prost::Message as _;
use support::{publish, serve_over_grpc, wait_indexed_logs};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

mod support;

const INDEX_WAIT: Duration = Duration::from_secs(5);
const T0: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z

type Client = SearchServiceClient<InterceptedService<Channel, BearerToken>>;

fn alert(tenant: &str, index: usize, seconds: i64, fields: &[(&str, &str)]) -> Alert {
    let rule = if index.is_multiple_of(3) {
        "Read sensitive file untrusted"
    } else {
        "Terminal shell in container"
    };
    let priorities = [Priority::Warning, Priority::Error, Priority::Notice];
    Alert {
        id: format!("a{index:02}"),
        tenant_id: tenant.into(),
        rule: rule.into(),
        source: "syscall".into(),
        priority: priorities[index % priorities.len()] as i32,
        output: format!("{rule}: a shell or a file, event {index}"),
        output_fields: fields
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        time: Some(Timestamp { seconds, nanos: 0 }),
        tags: vec!["container".into(), format!("t{index}")],
        hostname: "node-1".into(),
        ..Default::default()
    }
}

fn finding(tenant: &str, index: usize, seconds: i64) -> Finding {
    Finding {
        id: format!("vuln-{index}"),
        tenant_id: tenant.into(),
        kind: FindingKind::Vulnerability as i32,
        severity: Severity::High as i32,
        title: format!("CVE-2024-309{index} in xz-utils, reachable from a shell"),
        description: "A backdoor in liblzma".into(),
        last_seen: Some(Timestamp { seconds, nanos: 0 }),
        remediation: vec!["upgrade xz-utils".into()],
        ..Default::default()
    }
}

/// What a tenant published, by uid.
fn records_by_uid(
    alerts: &[Alert],
    findings: &[Finding],
) -> BTreeMap<String, search_hit::Document> {
    let alerts = alerts.iter().map(|alert| {
        (
            alert_uid(&alert.tenant_id, &alert.id),
            search_hit::Document::Alert(alert.clone()),
        )
    });
    let findings = findings.iter().map(|finding| {
        (
            finding_uid(&finding.tenant_id, &finding.id),
            search_hit::Document::Finding(finding.clone()),
        )
    });
    alerts.chain(findings).collect()
}

fn uid_of(document: &search_hit::Document) -> String {
    match document {
        search_hit::Document::Alert(alert) => alert_uid(&alert.tenant_id, &alert.id),
        search_hit::Document::Finding(finding) => finding_uid(&finding.tenant_id, &finding.id),
    }
}

fn start(store: &Store, index_dir: &std::path::Path) -> (ActorSystem, SearchActors) {
    support::start_actors(store, index_dir, "search-encoded-hits")
}

/// A public palisade.v1 client holding a read-only key of `tenant`, and that key's principal.
async fn client_of(
    address: std::net::SocketAddr,
    credentials: &Credentials,
    tenant: &str,
) -> (Client, Principal) {
    let tenant_id = TenantId::new(tenant).expect("tenant");
    let key = credentials
        .create_api_key(&tenant_id, Role::ReadOnly, "reader")
        .expect("key");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let client = SearchServiceClient::with_interceptor(
        channel,
        BearerToken::new(&key.token).expect("token header"),
    );
    let principal = Principal {
        tenant: tenant_id,
        role: Role::ReadOnly,
        key_id: key.key_id,
        cluster: None,
    };
    (client, principal)
}

fn requests() -> Vec<SearchRequest> {
    let request = |query: &str, sort: SortOrder, limit: u32| SearchRequest {
        query: query.into(),
        sort: sort as i32,
        page: Some(PageRequest {
            limit,
            cursor: String::new(),
        }),
        ..Default::default()
    };
    vec![
        request("", SortOrder::TimeDesc, 4),
        request("*", SortOrder::TimeAsc, 5),
        request("", SortOrder::SeverityDesc, 3),
        // Free text: scored by relevance, highlighted, alerts and findings together.
        SearchRequest {
            highlight: true,
            ..request("shell", SortOrder::Unspecified, 4)
        },
        SearchRequest {
            highlight: true,
            ..request("xz", SortOrder::TimeDesc, 2)
        },
        // Terms only, sorted by time: answered from bitsets.
        request(
            "proc.name:bash AND k8s.ns.name:prod",
            SortOrder::TimeDesc,
            2,
        ),
        SearchRequest {
            facets: vec!["rule".into(), "time:1h".into()],
            ..request("priority:>=warning", SortOrder::TimeDesc, 3)
        },
    ]
}

/// Every page of `request` through the public client and in process, compared page by page;
/// returns the uids of every hit in page order and the total.
async fn walk_pages(
    client: &mut Client,
    peer: &SearchPeer,
    principal: &Principal,
    request: &SearchRequest,
    published: &BTreeMap<String, search_hit::Document>,
) -> (Vec<String>, u64) {
    let name = &request.query;
    let mut request = request.clone();
    let mut uids = Vec::new();
    let mut total = None;
    for _ in 0..100 {
        let mut public: SearchResponse = client
            .search(request.clone())
            .await
            .unwrap_or_else(|status| panic!("{name}: {status}"))
            .into_inner();
        let mut in_process = peer
            .search(principal, request.clone())
            .await
            .unwrap_or_else(|status| panic!("{name}: {status}"))
            .decode_hits()
            .expect("records decode");
        public.took_micros = 0;
        in_process.took_micros = 0;
        assert_eq!(public, in_process, "{name}: gRPC and in-process answers");
        for hit in &public.hits {
            let document = hit.document.as_ref().expect("a hit has its record");
            let uid = uid_of(document);
            // The record a client decodes is the one published, field for field.
            assert_eq!(Some(document), published.get(&uid), "{name}: {uid}");
            if request.highlight {
                assert!(hit.snippet.contains("<b>"), "{name}: {:?}", hit.snippet);
            } else {
                assert!(hit.snippet.is_empty(), "{name}: {:?}", hit.snippet);
            }
            uids.push(uid);
        }
        assert_eq!(*total.get_or_insert(public.total), public.total, "{name}");
        if public.next_cursor.is_empty() {
            return (uids, public.total);
        }
        // Search-after cursors end with the last hit's uid, read from its stored record.
        if !public.next_cursor.starts_with("r:") {
            let last = uids.last().expect("a page with a cursor has hits");
            assert!(
                public.next_cursor.ends_with(&format!(":{last}")),
                "{name}: {} after {last}",
                public.next_cursor
            );
        }
        request.page = Some(PageRequest {
            limit: request.page.as_ref().map_or(0, |page| page.limit),
            cursor: public.next_cursor,
        });
    }
    panic!("{name}: more than 100 pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_clients_decode_the_encoded_hits_as_the_published_records() {
    let temp = tempfile::tempdir().expect("temp");
    let store = Store::open(&temp.path().join("db")).expect("store");
    let credentials = Credentials::open(&store).expect("credentials");
    for tenant in ["acme", "globex"] {
        credentials
            .ensure_tenant(&TenantId::new(tenant).expect("tenant"), tenant)
            .expect("tenant");
    }
    let (system, actors) = start(&store, &temp.path().join("index"));

    // Alerts with and without output fields, several sharing a time so pages end inside ties;
    // globex reuses acme's ids.
    let mut published = BTreeMap::new();
    let mut alert_count = 0;
    let mut finding_count = 0;
    for tenant in ["acme", "globex"] {
        let alerts: Vec<Alert> = (0..14)
            .map(|index| {
                let seconds = T0 + 60 * (index as i64 / 3);
                match index % 4 {
                    0 => alert(tenant, index, seconds, &[]),
                    1 => alert(tenant, index, seconds, &[("proc.name", "bash")]),
                    _ => alert(
                        tenant,
                        index,
                        seconds,
                        &[("proc.name", "bash"), ("k8s.ns.name", "prod")],
                    ),
                }
            })
            .collect();
        let findings: Vec<Finding> = (0..3)
            .map(|index| finding(tenant, index, T0 + 30 * index as i64))
            .collect();
        alert_count = publish(&actors.topics.alerts, &alerts).await;
        let entries = findings
            .iter()
            .map(|finding| LogEntry {
                dedupe_key: None,
                payload: finding.encode_to_vec(),
            })
            .collect();
        actors
            .topics
            .findings
            .append(entries)
            .await
            .expect("append findings");
        finding_count = actors.topics.findings.durable_end();
        published.insert(tenant, records_by_uid(&alerts, &findings));
    }
    wait_indexed_logs(&actors, alert_count, finding_count, INDEX_WAIT).await;

    let address = serve_over_grpc(&actors, credentials.clone()).await;
    let peer = SearchPeer::Local(actors.clone());
    for tenant in ["acme", "globex"] {
        let (mut client, principal) = client_of(address, &credentials, tenant).await;
        let own = &published[tenant];
        for request in requests() {
            let (uids, total) = walk_pages(&mut client, &peer, &principal, &request, own).await;
            let name = &request.query;
            assert_eq!(uids.len() as u64, total, "{tenant} {name}: every hit once");
            let distinct: HashSet<&String> = uids.iter().collect();
            assert_eq!(distinct.len(), uids.len(), "{tenant} {name}: no hit twice");
            assert!(total > 0, "{tenant} {name}: the query matches something");
        }
        let (everything, total) =
            walk_pages(&mut client, &peer, &principal, &requests()[0], own).await;
        assert_eq!(
            total,
            own.len() as u64,
            "{tenant}: all of its records, no other"
        );
        assert!(everything.iter().all(|uid| own.contains_key(uid)));
    }
    system.stop();
}
