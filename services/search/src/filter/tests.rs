//! The bitset path against the generic collector: the same totals, the same pages hit for
//! hit, over random term queries, both time orders and every page of a cursor walk, on
//! segments with deletions, two tenants, out-of-order times and many equal times.

use palisade_core::ids::TenantId;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{Alert, Priority};
use std::ops::Bound;
use tantivy::indexer::NoMergePolicy;
use tantivy::{Index, IndexWriter};

use tokio::time::Instant;

use super::*;
use crate::collector::{Collected, SearchCollector, SortCursor, SortSpec, TermsFacet};
use crate::query::compile::{CompileContext, CompiledQuery, compile_confined};
use crate::query::time_range::TimeRangeQuery;
use crate::query::{QueryLimits, parse};
use crate::schema::IndexSchema;

const TENANTS: &[&str] = &["acme", "globex"];
const PROCESSES: &[&str] = &["bash", "sh", "curl", "nginx", "python3"];
const NAMESPACES: &[&str] = &["prod", "staging", "payments", "dev"];
const RULES: &[&str] = &[
    "Terminal shell in container",
    "Write below etc",
    "Read sensitive file untrusted",
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

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// An alert id whose order differs from the order of indexing (ids are unique below 99,991),
/// so ties on time are broken by uids that do not follow document ids.
fn scrambled_id(sequence: u64) -> String {
    format!("{:08}", sequence * 48_271 % 99_991)
}

/// Segments of mixed and single tenants, times mostly rising with jumps back and runs of
/// equal times (two segments entirely), and deletions in several segments.
fn index(random: &mut Lcg) -> (IndexSchema, Index) {
    let schema = IndexSchema::new();
    let index = Index::create_in_ram(schema.schema.clone());
    let mut writer: IndexWriter = index
        .writer_with_num_threads(1, 15_000_000)
        .expect("writer");
    writer.set_merge_policy(Box::new(NoMergePolicy));
    let mut id = 0u64;
    let mut time = 1_793_491_200i64;
    for segment in 0..6 {
        let tenants: &[&str] = match segment % 3 {
            0 => &["acme"],
            1 => &["globex"],
            _ => TENANTS,
        };
        for _ in 0..(150 + random.below(400)) {
            match random.below(10) {
                // The last two segments' documents all share the newest time: ties across
                // blocks and across segments.
                _ if segment >= 4 => {}
                0 => time -= random.below(3_000) as i64,
                1..=6 => {}
                _ => time += random.below(3) as i64,
            }
            let tenant = random.pick(tenants);
            let alert = Alert {
                id: scrambled_id(id),
                tenant_id: tenant.into(),
                rule: random.pick(RULES).into(),
                priority: [
                    Priority::Notice,
                    Priority::Warning,
                    Priority::Error,
                    Priority::Critical,
                ][random.below(4) as usize] as i32,
                time: Some(Timestamp {
                    seconds: time,
                    nanos: 0,
                }),
                output_fields: [
                    ("proc.name".to_string(), random.pick(PROCESSES).to_string()),
                    (
                        "k8s.ns.name".to_string(),
                        random.pick(NAMESPACES).to_string(),
                    ),
                ]
                .into(),
                // None, one or two tags: a multi-valued column.
                tags: ["container", "shell"][..(id % 3) as usize]
                    .iter()
                    .map(|tag| tag.to_string())
                    .collect(),
                ..Default::default()
            };
            writer
                .add_document(schema.alert_document(&alert, id))
                .expect("add");
            id += 1;
        }
        writer.commit().expect("commit");
    }
    for _ in 0..40 {
        let deleted = random.below(id);
        for tenant in TENANTS {
            writer.delete_term(schema.alert_uid_term(tenant, &scrambled_id(deleted)));
        }
    }
    writer.commit().expect("commit");
    (schema, index)
}

fn random_clause(random: &mut Lcg, depth: u32) -> String {
    let leaf = |random: &mut Lcg| match random.below(7) {
        0 => format!("k8s.ns.name:{}", random.pick(NAMESPACES)),
        6 => format!(
            "time:{}",
            random.pick(&[
                ">=2026-10-31",
                "<2026-10-30T12:00:00.5Z",
                "[2026-10-29T06:00:00Z TO 2026-10-31]",
                "2026-10-30",
                "{2026-10-30T01:02:03Z TO *]",
            ])
        ),
        5 => format!(
            "priority:{}",
            random.pick(&[">=error", "<warning", "[notice TO error}", "critical"])
        ),
        1 => "proc.name:*h".to_string(),
        2 => format!("rule:{}", random.pick(&["shell", "etc", "sensitive"])),
        _ => format!("proc.name:{}", random.pick(PROCESSES)),
    };
    if depth == 0 {
        return leaf(random);
    }
    match random.below(5) {
        0 => format!(
            "({} OR {})",
            random_clause(random, depth - 1),
            random_clause(random, depth - 1)
        ),
        1 => format!(
            "({} AND NOT {})",
            random_clause(random, depth - 1),
            random_clause(random, depth - 1)
        ),
        2 => format!("NOT {}", random_clause(random, depth - 1)),
        3 => format!(
            "({} AND {})",
            random_clause(random, depth - 1),
            random_clause(random, depth - 1)
        ),
        _ => leaf(random),
    }
}

/// `text` compiled for `tenant` with the default limits, AND-ed with `filters`.
fn compile(
    schema: &IndexSchema,
    searcher: &tantivy::Searcher,
    tenant: &TenantId,
    text: &str,
    filters: Vec<Box<dyn tantivy::query::Query>>,
) -> CompiledQuery {
    let limits = QueryLimits::default();
    let node = parse(text, &limits.parse).expect("query parses");
    let context = CompileContext {
        schema,
        searcher,
        limits: &limits,
        now_nanos: 0,
        deadline: Instant::now() + limits.time_budget,
    };
    compile_confined(&node, tenant, filters, &context).expect("compiles")
}

/// A page's hits as (segment, doc, time, uid).
fn hits(collected: &Collected) -> Vec<(u32, u32, i64, String)> {
    collected
        .hits
        .iter()
        .map(|hit| {
            (
                hit.address.segment_ord,
                hit.address.doc_id,
                hit.time,
                hit.uid.text(),
            )
        })
        .collect()
}

#[test]
fn bitset_pages_equal_the_collectors_on_random_queries_orders_and_cursors() {
    let mut random = Lcg(7);
    let (schema, index) = index(&mut random);
    let reader = index.reader().expect("reader");
    let searcher = reader.searcher();
    assert!(searcher.segment_readers().len() >= 6);
    let limits = QueryLimits::default();
    // A tiny budget keeps evicting, so cached and rebuilt bitsets are both exercised.
    let caches = [FilterCache::new(64 * 1024 * 1024), FilterCache::new(2_000)];
    let mut pages = 0;
    let mut queries = vec![
        "*".to_string(),
        "proc.name:bash AND k8s.ns.name:prod".into(),
    ];
    queries.extend((0..60).map(|_| random_clause(&mut random, 3)));
    for (number, text) in queries.iter().enumerate() {
        let tenant = TenantId::new(TENANTS[number % 2]).expect("tenant");
        // Every third query also carries a request's time range, as the console sends.
        let filters: Vec<Box<dyn tantivy::query::Query>> = if number % 3 == 0 {
            let day = 1_793_404_800_000_000_000i64; // 2026-10-31T00:00:00Z
            vec![Box::new(TimeRangeQuery::new(
                schema.time,
                Bound::Included(day - 2 * 86_400_000_000_000 + 500_000),
                Bound::Excluded(day + 1_000),
            ))]
        } else {
            Vec::new()
        };
        let compiled = compile(&schema, &searcher, &tenant, text, filters);
        let filter = compiled
            .filter
            .as_ref()
            .unwrap_or_else(|| panic!("{text}: a term-only query should be a filter"));
        // Every other query counts facets too: a single-valued column, an output field and a
        // multi-valued column.
        let facets: Vec<TermsFacet> = if number % 2 == 1 {
            ["rule_name", "fields.k8s.ns.name", "tags"]
                .into_iter()
                .map(|column| TermsFacet {
                    column: column.into(),
                    size: 10,
                })
                .collect()
        } else {
            Vec::new()
        };
        for sort in [SortSpec::TimeDesc, SortSpec::TimeAsc] {
            let mut cursor = None;
            for _page in 0..4 {
                let collector = SearchCollector {
                    sort,
                    limit: 1 + (number % 9),
                    offset: 0,
                    cursor: cursor.clone(),
                    facets: facets.clone(),
                    histogram_interval_micros: None,
                    max_histogram_buckets: 100,
                    deadline: Instant::now() + limits.time_budget,
                };
                let expected = searcher
                    .search(compiled.confined.as_ref(), &collector)
                    .expect("search");
                let cache = &caches[pages % 2];
                let actual =
                    collect_by_time(&searcher, &collector, filter, &compiled.tenant, cache)
                        .expect("bitset search");
                let context = format!("{text} ({sort:?}, cursor {cursor:?})");
                assert_eq!(actual.count, expected.count, "{context}: total");
                assert_eq!(
                    actual.after_cursor_count, expected.after_cursor_count,
                    "{context}: matches after the cursor"
                );
                assert_eq!(hits(&actual), hits(&expected), "{context}: page");
                assert_eq!(actual.facets, expected.facets, "{context}: facets");
                assert!(!actual.timed_out);
                pages += 1;
                let Some(last) = expected.hits.last() else {
                    break;
                };
                cursor = Some(SortCursor {
                    primary: last.primary,
                    time: last.time,
                    uid: last.uid.text(),
                });
            }
        }
    }
    assert!(pages > 300, "only {pages} pages compared");
    assert!(
        caches[1].used_bytes() <= 2_000,
        "the budget bounds the cache"
    );
}

#[test]
fn only_term_queries_become_filters() {
    let (schema, index) = index(&mut Lcg(3));
    let reader = index.reader().expect("reader");
    let searcher = reader.searcher();
    let tenant = TenantId::new("acme").expect("tenant");
    let filter_of = |text: &str| compile(&schema, &searcher, &tenant, text, Vec::new()).filter;
    assert!(filter_of("proc.name:bash AND NOT k8s.ns.name:prod").is_some());
    assert!(filter_of("shell OR proc.name:cu*").is_some());
    assert!(
        filter_of("priority:>=error AND NOT priority:critical").is_some(),
        "priorities are a few terms"
    );
    assert!(filter_of("proc.name:bash AND time:>2026-11-01").is_some());
    assert!(filter_of("\"shell in container\"").is_none(), "a phrase");
    assert!(filter_of("k8s.pod.name:*").is_none(), "existence");
    assert!(
        filter_of("proc.name:bash AND \"shell in container\"").is_none(),
        "a phrase anywhere in the query"
    );
}
