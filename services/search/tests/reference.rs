//! Queries over 20,000 generated alerts of two tenants, checked against answers computed here
//! in plain Rust from the same alerts: counts, every page in order (time and severity orders,
//! paged by cursor), term facets with their top-N cut-off, and a daily histogram. Each tenant
//! sees exactly its own alerts through every query.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use palisade_core::auth::{Principal, Role};
use palisade_core::bridge::ActorSystem;
use palisade_core::config::SearchConfig;
use palisade_core::ids::TenantId;
use palisade_core::log::{LogEntry, Topic};
use palisade_core::storage::Store;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{
    Alert, Facet, PageRequest, Priority, SearchRequest, SortOrder, search_hit,
};
use palisade_proto::wire;
use palisade_search::{SearchActors, SearchPeer, SearchTopics, start_search_actors};
use prost::Message;

const T0: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z
const RULES: &[(&str, &str)] = &[
    (
        "Terminal shell in container",
        "A shell was spawned in a container",
    ),
    (
        "Read sensitive file untrusted",
        "Sensitive file /etc/shadow opened for reading",
    ),
    (
        "Contact K8S API Server From Container",
        "Unexpected connection to the API server",
    ),
    (
        "Drop and execute new binary in container",
        "Executing binary not part of base image",
    ),
    ("Write below etc", "File below /etc opened for writing"),
    (
        "Launch Privileged Container",
        "Privileged container started",
    ),
];
const NAMESPACES: &[&str] = &[
    "prod",
    "staging",
    "kube-system",
    "payments",
    "monitoring",
    "dev",
    "ci",
];
const PROCESSES: &[&str] = &["bash", "sh", "cat", "curl", "python3", "nginx"];
const PRIORITIES: &[Priority] = &[
    Priority::Debug,
    Priority::Informational,
    Priority::Notice,
    Priority::Warning,
    Priority::Error,
    Priority::Critical,
    Priority::Alert,
    Priority::Emergency,
];

/// A small deterministic generator, so failures replay.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() as usize) % items.len()]
    }
}

fn generate(tenant: &str, count: usize, seed: u64) -> Vec<Alert> {
    let mut random = Lcg(seed);
    (0..count)
        .map(|index| {
            let (rule, text) = random.pick(RULES);
            // Skewed so facets have a clear order and ties do happen.
            let namespace = NAMESPACES[(random.next() % 10).min(6) as usize];
            let process = random.pick(PROCESSES);
            let priority = random.pick(PRIORITIES);
            // ~30 days; many alerts share a second, so the id must break ties.
            let seconds = T0 + (random.next() % (30 * 86_400 / 4)) as i64 * 4;
            let team = random.next() % 13;
            let mut fields = vec![
                ("proc.name", process.to_string()),
                ("k8s.ns.name", namespace.to_string()),
                (
                    "container.image.repository",
                    format!("registry.example.com/team-{team}/api"),
                ),
            ];
            if index % 3 != 0 {
                fields.push(("k8s.pod.name", format!("web-{}", random.next() % 500)));
            }
            Alert {
                id: format!("{tenant}-{index:06}"),
                tenant_id: tenant.into(),
                rule: rule.into(),
                source: "syscall".into(),
                priority: priority as i32,
                output: format!("{text} (proc={process} ns={namespace} seq={index})"),
                output_fields: fields
                    .into_iter()
                    .map(|(key, value)| (key.to_string(), value))
                    .collect(),
                tags: vec!["container".into(), format!("T10{}", 50 + team % 3)],
                time: Some(Timestamp { seconds, nanos: 0 }),
                ..Default::default()
            }
        })
        .collect()
}

fn field<'a>(alert: &'a Alert, key: &str) -> Option<&'a str> {
    alert.output_fields.get(key).map(String::as_str)
}

fn words(text: &str) -> Vec<String> {
    text.split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

type Predicate = Box<dyn Fn(&Alert) -> bool>;

/// Queries and the same question asked in plain Rust.
fn cases() -> Vec<(String, Predicate)> {
    let day = |offset: i64| {
        chrono::DateTime::from_timestamp(T0 + offset * 86_400, 0)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let from = T0 + 3 * 86_400;
    let to = T0 + 9 * 86_400;
    vec![
        ("*".to_string(), Box::new(|_: &Alert| true) as Predicate),
        (
            "proc.name:bash".into(),
            Box::new(|a: &Alert| field(a, "proc.name") == Some("bash")),
        ),
        (
            "proc.name:bash AND k8s.ns.name:prod".into(),
            Box::new(|a: &Alert| {
                field(a, "proc.name") == Some("bash") && field(a, "k8s.ns.name") == Some("prod")
            }),
        ),
        (
            "k8s.ns.name:(prod OR staging) -proc.name:sh".into(),
            Box::new(|a: &Alert| {
                matches!(field(a, "k8s.ns.name"), Some("prod" | "staging"))
                    && field(a, "proc.name") != Some("sh")
            }),
        ),
        (
            "priority:>=error".into(),
            Box::new(|a: &Alert| a.priority >= Priority::Error as i32),
        ),
        (
            "priority:[notice TO warning] OR priority:<debug".into(),
            Box::new(|a: &Alert| (3..=4).contains(&a.priority) || a.priority < 1),
        ),
        (
            format!("time:[{} TO {}]", day(3), day(9)),
            Box::new(move |a: &Alert| {
                let seconds = a.time.as_ref().map_or(0, |t| t.seconds);
                (from..=to).contains(&seconds)
            }),
        ),
        (
            "time:>=2026-11-20 AND NOT priority:debug".into(),
            Box::new(|a: &Alert| {
                a.time.as_ref().map_or(0, |t| t.seconds) >= T0 + 19 * 86_400 && a.priority != 1
            }),
        ),
        (
            "rule:\"Terminal shell in container\"".into(),
            Box::new(|a: &Alert| a.rule == "Terminal shell in container"),
        ),
        (
            "shadow".into(),
            Box::new(|a: &Alert| {
                words(&a.output).contains(&"shadow".to_string())
                    || words(&a.rule).contains(&"shadow".to_string())
            }),
        ),
        (
            "\"opened for writing\" OR privileged".into(),
            Box::new(|a: &Alert| {
                a.output.to_lowercase().contains("opened for writing")
                    || words(&a.output).contains(&"privileged".to_string())
                    || words(&a.rule).contains(&"privileged".to_string())
            }),
        ),
        (
            "container.image.repository:registry.example.com/team-1*".into(),
            Box::new(|a: &Alert| {
                field(a, "container.image.repository")
                    .is_some_and(|image| image.starts_with("registry.example.com/team-1"))
            }),
        ),
        (
            "NOT k8s.pod.name:* AND proc.name:?ash".into(),
            Box::new(|a: &Alert| {
                field(a, "k8s.pod.name").is_none() && field(a, "proc.name") == Some("bash")
            }),
        ),
        (
            "tag:T1051".into(),
            Box::new(|a: &Alert| a.tags.iter().any(|tag| tag == "T1051")),
        ),
    ]
}

fn principal(tenant: &str) -> Principal {
    Principal {
        tenant: TenantId::new(tenant).expect("tenant"),
        role: Role::ReadOnly,
        key_id: "test".into(),
        cluster: None,
    }
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

async fn all_pages(
    peer: &SearchPeer,
    who: &Principal,
    query: &str,
    sort: SortOrder,
) -> (u64, Vec<String>) {
    let mut cursor = String::new();
    let mut collected = Vec::new();
    let mut total = None;
    loop {
        let request = SearchRequest {
            query: query.into(),
            sort: sort as i32,
            page: Some(PageRequest { limit: 700, cursor }),
            ..Default::default()
        };
        let response = peer
            .search(who, request)
            .await
            .unwrap_or_else(|status| panic!("{query}: {status}"));
        if let Some(total) = total {
            assert_eq!(
                total, response.total,
                "{query}: the total does not change from page to page"
            );
        }
        total = Some(response.total);
        collected.extend(ids(&response));
        if response.next_cursor.is_empty() {
            break;
        }
        cursor = response.next_cursor;
    }
    (total.unwrap_or(0), collected)
}

fn seconds(alert: &Alert) -> i64 {
    alert.time.as_ref().map_or(0, |t| t.seconds)
}

fn expected_facet(
    matching: &[&Alert],
    value: impl Fn(&Alert) -> Option<String>,
    size: usize,
) -> (Vec<(String, u64)>, u64) {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for alert in matching {
        if let Some(value) = value(alert) {
            *counts.entry(value).or_default() += 1;
        }
    }
    let total: u64 = counts.values().sum();
    let mut buckets: Vec<(String, u64)> = counts.into_iter().collect();
    buckets.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
    buckets.truncate(size);
    let shown: u64 = buckets.iter().map(|(_, count)| count).sum();
    (buckets, total - shown)
}

fn facet_of(facet: &Facet) -> (Vec<(String, u64)>, u64) {
    (
        facet
            .buckets
            .iter()
            .map(|bucket| (bucket.value.clone(), bucket.count))
            .collect(),
        facet.other_count,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_agree_with_a_plain_rust_reference_on_20000_alerts_of_two_tenants() {
    let temp = tempfile::tempdir().expect("temp");
    let store = Store::open(&temp.path().join("db")).expect("store");
    let topics = SearchTopics {
        alerts: Topic::open(&store, "alerts").expect("topic"),
        findings: Topic::open(&store, "findings").expect("topic"),
    };
    let acme = generate("acme", 14_000, 7);
    let globex = generate("globex", 6_000, 11);
    let mut interleaved: Vec<&Alert> = Vec::new();
    for (index, alert) in acme.iter().enumerate() {
        interleaved.push(alert);
        if let Some(other) = globex.get(index) {
            interleaved.push(other);
        }
    }
    for batch in interleaved.chunks(3_000) {
        let entries = batch
            .iter()
            .map(|alert| LogEntry {
                dedupe_key: Some(format!("{}/{}", alert.tenant_id, alert.id).into_bytes()),
                payload: alert.encode_to_vec(),
            })
            .collect();
        topics.alerts.append(entries).await.expect("append");
    }
    let index_dir = temp.path().join("index");
    let actor_store = store.clone();
    let actor_topics = topics.clone();
    let (system, actors) = ActorSystem::start("reference-test", move || {
        start_search_actors(
            &index_dir,
            actor_topics,
            &actor_store,
            &SearchConfig::default(),
        )
    })
    .expect("system");
    let actors: SearchActors = actors.expect("actors");
    for _ in 0..600 {
        if actors.status().indexed_offset >= 20_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(actors.status().indexed_offset, 20_000, "indexed everything");
    let peer = SearchPeer::Local(actors.clone());

    for (tenant, alerts) in [("acme", &acme), ("globex", &globex)] {
        let who = principal(tenant);
        for (case, (query, predicate)) in cases().into_iter().enumerate() {
            let mut matching: Vec<&Alert> =
                alerts.iter().filter(|alert| predicate(alert)).collect();
            assert!(
                !matching.is_empty(),
                "{query}: the reference matches something"
            );
            // Newest first, ties by id, newest id first.
            matching
                .sort_by(|left, right| (seconds(right), &right.id).cmp(&(seconds(left), &left.id)));
            let expected: Vec<String> = matching.iter().map(|alert| alert.id.clone()).collect();
            // Every page of every third query (each page reads its hits' stored records, which
            // is what a debug build spends most on); the first page of the others.
            if case % 3 == 0 {
                let (total, found) = all_pages(&peer, &who, &query, SortOrder::TimeDesc).await;
                assert_eq!(total, expected.len() as u64, "{tenant} {query}: count");
                assert_eq!(found, expected, "{tenant} {query}: newest-first pages");
            } else {
                let request = SearchRequest {
                    query: query.clone(),
                    page: Some(PageRequest {
                        limit: 100,
                        cursor: String::new(),
                    }),
                    sort: SortOrder::TimeDesc as i32,
                    ..Default::default()
                };
                let response = peer
                    .search(&who, request)
                    .await
                    .unwrap_or_else(|status| panic!("{query}: {status}"));
                assert_eq!(
                    response.total,
                    expected.len() as u64,
                    "{tenant} {query}: count"
                );
                let first_page: Vec<String> = expected.iter().take(100).cloned().collect();
                assert_eq!(ids(&response), first_page, "{tenant} {query}: first page");
            }
        }

        // Oldest first and most severe first, for one query each.
        let query = "k8s.ns.name:(prod OR payments) AND proc.name:(bash OR curl)";
        let mut matching: Vec<&Alert> = alerts
            .iter()
            .filter(|alert| {
                matches!(field(alert, "k8s.ns.name"), Some("prod" | "payments"))
                    && matches!(field(alert, "proc.name"), Some("bash" | "curl"))
            })
            .collect();
        matching.sort_by(|left, right| (seconds(left), &left.id).cmp(&(seconds(right), &right.id)));
        let oldest_first: Vec<String> = matching.iter().map(|alert| alert.id.clone()).collect();
        assert_eq!(
            all_pages(&peer, &who, query, SortOrder::TimeAsc).await.1,
            oldest_first
        );
        matching.sort_by(|left, right| {
            (right.priority, seconds(right), &right.id).cmp(&(
                left.priority,
                seconds(left),
                &left.id,
            ))
        });
        let most_severe_first: Vec<String> =
            matching.iter().map(|alert| alert.id.clone()).collect();
        assert_eq!(
            all_pages(&peer, &who, query, SortOrder::SeverityDesc)
                .await
                .1,
            most_severe_first
        );

        // Facets and the histogram count every match, not only the page.
        let request = SearchRequest {
            query: "NOT proc.name:nginx".into(),
            facets: vec![
                "rule".into(),
                "priority".into(),
                "k8s.ns.name:4".into(),
                "time:1d".into(),
                "tags".into(),
            ],
            page: Some(PageRequest {
                limit: 3,
                cursor: String::new(),
            }),
            ..Default::default()
        };
        let response = peer.search(&who, request).await.expect("facets");
        let matching: Vec<&Alert> = alerts
            .iter()
            .filter(|alert| field(alert, "proc.name") != Some("nginx"))
            .collect();
        assert_eq!(response.total, matching.len() as u64);
        assert_eq!(response.hits.len(), 3);
        let by_name: HashMap<&str, &Facet> = response
            .facets
            .iter()
            .map(|facet| (facet.field.as_str(), facet))
            .collect();
        assert_eq!(
            facet_of(by_name["rule"]),
            expected_facet(&matching, |a| Some(a.rule.clone()), 10)
        );
        assert_eq!(
            facet_of(by_name["priority"]),
            expected_facet(
                &matching,
                |a| {
                    use palisade_proto::PriorityExt;
                    Some(
                        Priority::try_from(a.priority)
                            .expect("priority")
                            .query_name()
                            .to_string(),
                    )
                },
                10
            )
        );
        let namespaces = facet_of(by_name["k8s.ns.name"]);
        assert_eq!(
            namespaces,
            expected_facet(&matching, |a| field(a, "k8s.ns.name").map(String::from), 4)
        );
        assert!(
            namespaces.1 > 0,
            "the top-4 cut-off leaves some namespaces out"
        );
        let tags = facet_of(by_name["tags"]);
        let expected_tags = {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for alert in &matching {
                for tag in &alert.tags {
                    *counts.entry(tag.clone()).or_default() += 1;
                }
            }
            let mut buckets: Vec<(String, u64)> = counts.into_iter().collect();
            buckets.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
            buckets
        };
        assert_eq!(tags, (expected_tags, 0));
        let mut days: BTreeMap<i64, u64> = BTreeMap::new();
        for alert in &matching {
            *days.entry(seconds(alert).div_euclid(86_400)).or_default() += 1;
        }
        let histogram = by_name["time"];
        let first_day = *days.keys().next().expect("days");
        let last_day = *days.keys().next_back().expect("days");
        assert_eq!(histogram.buckets.len() as i64, last_day - first_day + 1);
        for (position, bucket) in histogram.buckets.iter().enumerate() {
            let day = first_day + position as i64;
            let start = chrono::DateTime::from_timestamp(day * 86_400, 0)
                .expect("day")
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            assert_eq!(bucket.value, start);
            assert_eq!(
                bucket.count,
                days.get(&day).copied().unwrap_or(0),
                "day {start}"
            );
        }
    }
    system.stop();
}
