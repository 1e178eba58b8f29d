//! Search at scale: one million realistic alerts (PALISADE_BENCH_ALERTS to change).
//!
//! - Indexing: the search service (log -> indexer actor -> committed, searchable) against raw
//!   tantivy with the same schema and documents in the same run, and against SQLite FTS5
//!   (Python's sqlite3) loading the same alerts.
//! - Queries: p50/p99 of free text, field filters, ranges and facets through
//!   `SearchPeer::Local` (cheap queries answered on the caller's thread, others by the searcher
//!   actors), against the same questions asked of SQLite FTS5 on the same data. Both engines must
//!   give the same totals, the same newest hits (whole records: palisade returns each hit's
//!   stored alert, SQLite the row's copy of the same encoded alert) and the same facet counts,
//!   or the run fails.
//! - Index size on disk.
//!
//! ```text
//! cargo bench -p palisade-bench --bench search
//! PALISADE_BENCH_ALERTS=200000 cargo bench -p palisade-bench --bench search
//! PALISADE_BENCH_PEERS=0 cargo bench -p palisade-bench --bench search   # palisade alone
//! ```
//!
//! Without the peers nothing is compared: the run only times palisade's indexing and queries.
//!
//! `PALISADE_BENCH_TAIL=N` adds a study of the field filter's slow runs, before and after the
//! tables: N runs each of the query, the same with a one-hit page, and two fixed workloads
//! (passes over 128 KiB, a strided read of 4 MiB; left out with
//! `PALISADE_BENCH_TAIL_QUERIES_ONLY=1`), alternating on one thread, each run with its CPU
//! time, time spent waiting for a CPU and page faults.

mod alerts;
mod procfs;
mod sqlite;
mod tail;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use palisade_core::auth::{Principal, Role};
use palisade_core::bridge::ActorSystem;
use palisade_core::config::SearchConfig;
use palisade_core::ids::TenantId;
use palisade_core::log::{LogEntry, Topic};
use palisade_core::storage::Store;
use palisade_proto::v1::{
    Alert, PageRequest, SearchRequest, SearchResponse, SortOrder, search_hit,
};
use palisade_search::schema::IndexSchema;
use palisade_search::searcher::RunSearch;
use palisade_search::{SearchActors, SearchPeer, SearchTopics, start_search_actors};
use prost::Message;
use tokio::time::Instant;

use crate::alerts::{TENANT, realistic_alert};
use crate::procfs::StatFields;
use crate::sqlite::sqlite_fts5;

// The service allocates as the platform's binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Timed runs of every query, after one untimed run: at least `QUERY_RUNS`, then more while
/// the query's runs have taken under `QUERY_TIME_BUDGET`, up to `QUERY_MAX_RUNS`, so a fast
/// query's p99 is the 99th percentile of up to 2,000 runs rather than the second slowest of
/// 100. SQLite's runs follow the same rule.
const QUERY_RUNS: usize = 100;
const QUERY_MAX_RUNS: usize = 2_000;
const QUERY_TIME_BUDGET: Duration = Duration::from_secs(2);

/// Whether a query that has run `runs` times since `started` runs again.
fn runs_again(runs: usize, started: Instant) -> bool {
    runs < QUERY_RUNS || (runs < QUERY_MAX_RUNS && started.elapsed() < QUERY_TIME_BUDGET)
}

/// One question asked of both engines: the palisade query, and the same question in SQL.
struct QueryCase {
    name: &'static str,
    query: &'static str,
    /// FTS5 MATCH expression, when the question has free text.
    fts_match: Option<&'static str>,
    /// Further SQL conditions on the `alerts` table (aliased `a`).
    sql_conditions: &'static [&'static str],
    limit: u32,
    /// (palisade facet, SQLite column).
    facets: &'static [(&'static str, &'static str)],
}

const QUERY_CASES: &[QueryCase] = &[
    QueryCase {
        name: "free text: shadow, newest 50 + total",
        query: "shadow",
        fts_match: Some("shadow"),
        sql_conditions: &[],
        limit: 50,
        facets: &[],
    },
    QueryCase {
        name: "field filter: proc.name:bash AND k8s.ns.name:prod, newest 50 + total",
        query: "proc.name:bash AND k8s.ns.name:prod",
        fts_match: None,
        sql_conditions: &["a.proc = 'bash'", "a.ns = 'prod'"],
        limit: 50,
        facets: &[],
    },
    QueryCase {
        name: "range + field: priority:>=error AND k8s.ns.name:payments, newest 50 + total",
        query: "priority:>=error AND k8s.ns.name:payments",
        fts_match: None,
        sql_conditions: &["a.severity >= 5", "a.ns = 'payments'"],
        limit: 50,
        facets: &[],
    },
    QueryCase {
        name: "facets: rule and k8s.ns.name over everything, newest 10 + total",
        query: "*",
        fts_match: None,
        sql_conditions: &[],
        limit: 10,
        facets: &[("rule", "rule"), ("k8s.ns.name", "ns")],
    },
    QueryCase {
        name: "facets over free text: rule for shell, newest 10 + total",
        query: "shell",
        fts_match: Some("shell"),
        sql_conditions: &[],
        limit: 10,
        facets: &[("rule", "rule")],
    },
];

fn directory_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_size(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Documents and segments of a closed index, after its pending merges have finished and
/// unused files are deleted, so both indexes are measured in the same settled state.
fn settle_index(path: &Path) -> anyhow::Result<(u64, usize, u64)> {
    let index = IndexSchema::new().open_or_create(path)?;
    let writer: tantivy::IndexWriter =
        index.writer_with_num_threads(1, SearchConfig::default().writer_memory_bytes)?;
    writer.garbage_collect_files().wait()?;
    writer.wait_merging_threads()?;
    let reader = index.reader()?;
    let searcher = reader.searcher();
    Ok((
        searcher.num_docs(),
        searcher.segment_readers().len(),
        directory_size(path),
    ))
}

/// Raw tantivy: the same schema and documents, one writer thread and the same memory budget
/// as the service, one commit at the end. Timed until the commit makes everything searchable.
fn raw_tantivy(alerts: &[Alert], path: &Path) -> anyhow::Result<Duration> {
    let schema = IndexSchema::new();
    let index = schema.open_or_create(path)?;
    let mut writer: tantivy::IndexWriter =
        index.writer_with_num_threads(1, SearchConfig::default().writer_memory_bytes)?;
    let started = Instant::now();
    for (offset, alert) in alerts.iter().enumerate() {
        writer.add_document(schema.alert_document(alert, offset as u64))?;
    }
    writer.commit()?;
    let elapsed = started.elapsed();
    writer.wait_merging_threads()?;
    Ok(elapsed)
}

/// The search request asking `case` of palisade: newest first, the case's page and facets.
fn request_of(case: &QueryCase) -> SearchRequest {
    SearchRequest {
        query: case.query.into(),
        sort: SortOrder::TimeDesc as i32,
        page: Some(PageRequest {
            limit: case.limit,
            cursor: String::new(),
        }),
        facets: case
            .facets
            .iter()
            .map(|(facet, _)| facet.to_string())
            .collect(),
        ..Default::default()
    }
}

/// Latency of a query over its runs.
struct Percentiles {
    p50: Duration,
    p99: Duration,
}

fn percentiles(mut samples: Vec<Duration>) -> Percentiles {
    samples.sort();
    Percentiles {
        p50: percentile(&samples, 0.50),
        p99: percentile(&samples, 0.99),
    }
}

/// The sample at `fraction` (0 to 1) of sorted, non-empty `samples`, nearest rank.
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

/// What a query answered, in a form both engines can be compared on.
#[derive(Debug, PartialEq)]
struct Answer {
    total: u64,
    /// The page's hits, whole.
    newest: Vec<Alert>,
    facets: BTreeMap<String, BTreeMap<String, u64>>,
}

fn palisade_answer(response: &SearchResponse) -> anyhow::Result<Answer> {
    let mut newest = Vec::new();
    for hit in &response.hits {
        let Some(search_hit::Document::Alert(alert)) = &hit.document else {
            anyhow::bail!("a hit without an alert: {hit:?}");
        };
        newest.push(alert.clone());
    }
    let mut facets = BTreeMap::new();
    for facet in &response.facets {
        ensure!(
            facet.other_count == 0,
            "facet {} cut values off ({} matches in other values); the comparison needs all",
            facet.field,
            facet.other_count
        );
        let buckets = facet
            .buckets
            .iter()
            .map(|bucket| (bucket.value.clone(), bucket.count))
            .collect();
        facets.insert(facet.field.clone(), buckets);
    }
    Ok(Answer {
        total: response.total,
        newest,
        facets,
    })
}

/// One query case as the service ran it.
struct ServiceQuery {
    /// As the caller sees it, through `SearchPeer::Local`.
    latency: Percentiles,
    /// Inside the searcher (the response's `took_micros`): parse, search, stored records.
    searcher: Percentiles,
    /// Inside the searcher, for the same query with a page of one hit.
    searcher_one_hit: Percentiles,
    answer: Answer,
}

struct ServiceRun {
    indexing: Duration,
    queries: Vec<ServiceQuery>,
    hops: Hops,
    documents: u64,
    segments: usize,
    size: u64,
}

/// The service: every alert in the log first, then the search actors index it from there
/// (reading, decoding, building documents, grouped commits) until all of it is searchable.
async fn service(alerts: &[Alert], data: &Path) -> anyhow::Result<ServiceRun> {
    let store = Store::open(&data.join("db"))?;
    let topics = SearchTopics {
        alerts: Topic::open(&store, "alerts")?,
        findings: Topic::open(&store, "findings")?,
    };
    for (index, batch) in alerts.chunks(5_000).enumerate() {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(offset, alert)| LogEntry {
                dedupe_key: Some(format!("{TENANT}/{index}-{offset}").into_bytes()),
                payload: alert.encode_to_vec(),
            })
            .collect();
        topics.alerts.append(entries).await?;
    }
    ensure!(
        topics.alerts.durable_end() == alerts.len() as u64,
        "the log holds {} alerts, {} were appended",
        topics.alerts.durable_end(),
        alerts.len()
    );
    let index_path = data.join("index");
    let actor_store = store.clone();
    let actor_topics = topics.clone();
    let actor_index = index_path.clone();
    let started = Instant::now();
    let (system, actors) = ActorSystem::start("search-bench", move || {
        start_search_actors(
            &actor_index,
            actor_topics,
            &actor_store,
            &SearchConfig::default(),
        )
    })?;
    let actors = actors?;
    while actors.status().indexed_offset < alerts.len() as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let indexing = started.elapsed();
    let searchable = actors.status().documents;
    ensure!(
        searchable == alerts.len() as u64,
        "the service's index holds {searchable} documents after indexing {} alerts",
        alerts.len()
    );
    // Segment merges go on for a while after a bulk load; SQLite's timed queries run on an
    // idle engine, so palisade's do too.
    let settle = settle_background_work().await?;
    println!("service idle {settle:.1?} after indexing (segment merges finished)");
    let peer = SearchPeer::Local(actors.clone());
    let principal = Principal {
        tenant: TenantId::new(TENANT)?,
        role: Role::ReadOnly,
        key_id: "bench".into(),
        cluster: None,
    };
    tail_study(&actors, &principal, "before the tables")?;
    let mut queries = Vec::new();
    for case in QUERY_CASES {
        let request = request_of(case);
        // The untimed first run warms caches, as the SQLite side's does, and is the answer
        // compared with SQLite's. The timed runs leave the hits' records encoded, as the
        // service hands them to its gRPC response and as SQLite hands back its blobs.
        let first = peer
            .search(&principal, request.clone())
            .await?
            .decode_hits()?;
        let answer = palisade_answer(&first).with_context(|| case.name)?;
        let mut samples = Vec::with_capacity(QUERY_MAX_RUNS);
        let mut searcher_samples = Vec::with_capacity(QUERY_MAX_RUNS);
        let started = Instant::now();
        while runs_again(samples.len(), started) {
            let run = Instant::now();
            let response = peer.search(&principal, request.clone()).await?;
            samples.push(run.elapsed());
            searcher_samples.push(Duration::from_micros(response.took_micros));
            ensure!(
                response.total == answer.total,
                "{}: total changed between runs",
                case.name
            );
        }
        // The same question with a one-hit page: the difference to the full page is what
        // reading and returning the other hits' stored alerts costs.
        let one_hit = SearchRequest {
            page: Some(PageRequest {
                limit: 1,
                cursor: String::new(),
            }),
            ..request.clone()
        };
        peer.search(&principal, one_hit.clone()).await?;
        let mut one_hit_samples = Vec::with_capacity(QUERY_MAX_RUNS);
        let started = Instant::now();
        while runs_again(one_hit_samples.len(), started) {
            let response = peer.search(&principal, one_hit.clone()).await?;
            one_hit_samples.push(Duration::from_micros(response.took_micros));
        }
        queries.push(ServiceQuery {
            latency: percentiles(samples),
            searcher: percentiles(searcher_samples),
            searcher_one_hit: percentiles(one_hit_samples),
            answer,
        });
    }
    let hops = hops(&actors, &peer, &principal).await?;
    tail_study(&actors, &principal, "after the tables")?;
    system.stop();
    drop(actors);
    drop(peer);
    // The indexer thread drops its writer (and the index lock) some time after the stop.
    let mut attempts = 0;
    let (documents, segments, size) = loop {
        match settle_index(&index_path) {
            Ok(settled) => break settled,
            Err(_) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.context("the service's index stayed locked")),
        }
    };
    Ok(ServiceRun {
        indexing,
        queries,
        hops,
        documents,
        segments,
        size,
    })
}

fn tail_study(actors: &SearchActors, principal: &Principal, when: &str) -> anyhow::Result<()> {
    let Ok(runs) = std::env::var("PALISADE_BENCH_TAIL") else {
        return Ok(());
    };
    let request = request_of(&QUERY_CASES[1]);
    println!("\n{when}:");
    tail::study(actors, principal, &request, runs.parse()?)
}

/// The field filter (a cheap query, which `SearchPeer::Local` answers on the caller's task)
/// asked each way a query can reach the engine, as the caller sees it.
struct Hops {
    peer: Percentiles,
    inline: Percentiles,
    mailbox: Percentiles,
    spawn_blocking: Percentiles,
}

async fn hops(
    actors: &SearchActors,
    peer: &SearchPeer,
    principal: &Principal,
) -> anyhow::Result<Hops> {
    let tenant = &principal.tenant;
    let request = request_of(&QUERY_CASES[1]);
    // Each way runs as a block of consecutive queries, as the main table's do (a query right
    // after another on the same thread finds its data in the core's caches); two rounds in
    // opposite orders, so no way always follows the same other.
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for round in [[0, 1, 2, 3], [3, 2, 1, 0]] {
        for way in round {
            for run in 0..QUERY_RUNS / 2 + 1 {
                let started = Instant::now();
                match way {
                    0 => {
                        peer.search(principal, request.clone()).await?;
                    }
                    1 => {
                        actors.engine.run(tenant, &request)?;
                    }
                    2 => {
                        let message = RunSearch {
                            tenant: tenant.clone(),
                            request: request.clone(),
                        };
                        actors.searcher.send(message).await??;
                    }
                    _ => {
                        let engine = Arc::clone(&actors.engine);
                        let (tenant, request) = (tenant.clone(), request.clone());
                        tokio::task::spawn_blocking(move || engine.run(&tenant, &request))
                            .await??;
                    }
                }
                // The first of a block warms up.
                if run > 0 {
                    samples[way].push(started.elapsed());
                }
            }
        }
    }
    let [through_peer, inline, mailbox, spawn_blocking] = samples;
    Ok(Hops {
        peer: percentiles(through_peer),
        inline: percentiles(inline),
        mailbox: percentiles(mailbox),
        spawn_blocking: percentiles(spawn_blocking),
    })
}

fn print_hops(hops: &Hops) {
    println!();
    println!("| field filter, asked | p50 | p99 |");
    println!("| --- | ---: | ---: |");
    for (way, latency) in [
        (
            "through SearchPeer::Local (judged cheap, answered on the caller's thread)",
            &hops.peer,
        ),
        (
            "SearchEngine::run on the caller's thread (no judging)",
            &hops.inline,
        ),
        ("through the searchers' mailbox", &hops.mailbox),
        ("through tokio's spawn_blocking", &hops.spawn_blocking),
    ] {
        println!(
            "| {way} | {:.3} ms | {:.3} ms |",
            milliseconds(latency.p50),
            milliseconds(latency.p99)
        );
    }
}

/// CPU time this process has used so far (user + system), from /proc/self/stat.
fn process_cpu_time() -> anyhow::Result<Duration> {
    let stat = StatFields::read("/proc/self/stat")?;
    // utime and stime, in clock ticks of 1/100 s on Linux.
    let ticks = stat.number(14)? + stat.number(15)?;
    Ok(Duration::from_millis(ticks * 10))
}

/// Waits until the process uses under 5% of a core over a second (at most three minutes);
/// returns how long that took.
async fn settle_background_work() -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let before = process_cpu_time()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = process_cpu_time()? - before;
        if used < Duration::from_millis(50) || started.elapsed() > Duration::from_secs(180) {
            return Ok(started.elapsed());
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let count: usize = match std::env::var("PALISADE_BENCH_ALERTS") {
        Ok(value) => value
            .parse()
            .with_context(|| format!("PALISADE_BENCH_ALERTS={value:?} is not a count"))?,
        Err(_) => 1_000_000,
    };
    ensure!(count > 0, "PALISADE_BENCH_ALERTS must be at least 1");
    let alerts: Vec<Alert> = (0..count).map(realistic_alert).collect();
    let bytes: usize = alerts.iter().map(Message::encoded_len).sum();
    println!(
        "search benchmark: {count} alerts, {:.1} MB encoded, {QUERY_RUNS} to {QUERY_MAX_RUNS} runs per query ({QUERY_TIME_BUDGET:?} unless 100 runs take longer)",
        bytes as f64 / 1e6
    );
    let with_peers = match std::env::var("PALISADE_BENCH_PEERS") {
        Ok(value) => value != "0",
        Err(_) => true,
    };
    let temp = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !with_peers {
        let service = runtime.block_on(service(&alerts, &temp.path().join("service")))?;
        println!(
            "service: {:.2?} (peers skipped: PALISADE_BENCH_PEERS=0)",
            service.indexing
        );
        print_service_queries(&service);
        print_hops(&service.hops);
        return Ok(());
    }

    let raw_path = temp.path().join("raw");
    let raw = raw_tantivy(&alerts, &raw_path)?;
    let (raw_documents, raw_segments, raw_size) = settle_index(&raw_path)?;
    println!("raw tantivy: {raw:.2?}");

    let service = runtime.block_on(service(&alerts, &temp.path().join("service")))?;
    println!("service: {:.2?}", service.indexing);

    let sqlite = sqlite_fts5(&alerts, temp.path())?;
    println!("SQLite FTS5: {:.2?}", sqlite.load);

    let expected = count as u64;
    for (engine, documents) in [
        ("raw tantivy", raw_documents),
        ("palisade", service.documents),
        ("SQLite", sqlite.rows),
        ("SQLite FTS5", sqlite.fts_rows),
    ] {
        ensure!(
            documents == expected,
            "{engine} holds {documents} documents, expected {expected}"
        );
    }
    for (
        case,
        (
            ServiceQuery {
                answer: palisade, ..
            },
            (_, peer),
        ),
    ) in QUERY_CASES
        .iter()
        .zip(service.queries.iter().zip(&sqlite.queries))
    {
        ensure!(
            palisade == peer,
            "{}: palisade and SQLite disagree\npalisade: {palisade:?}\nSQLite: {peer:?}",
            case.name
        );
        ensure!(
            palisade.total > 0 && palisade.newest.len() == case.limit as usize,
            "{}: too few matches ({}) to measure anything",
            case.name,
            palisade.total
        );
    }

    let rate = |time: Duration| count as f64 / time.as_secs_f64();
    println!();
    println!(
        "| indexing path | time | alerts/s | palisade / this | index size on disk | segments |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| palisade search service: log -> indexer -> searchable | {:.1} s | {:.0} | 1.00 | {:.0} MiB | {} |",
        service.indexing.as_secs_f64(),
        rate(service.indexing),
        mib(service.size),
        service.segments
    );
    println!(
        "| raw tantivy, same schema, one commit (limit) | {:.1} s | {:.0} | {:.2} | {:.0} MiB | {raw_segments} |",
        raw.as_secs_f64(),
        rate(raw),
        raw.as_secs_f64() / service.indexing.as_secs_f64(),
        mib(raw_size)
    );
    println!(
        "| SQLite FTS5 (Python sqlite3): insert + FTS5 + B-tree indexes | {:.1} s | {:.0} | {:.2} | {:.0} MiB | |",
        sqlite.load.as_secs_f64(),
        rate(sqlite.load),
        sqlite.load.as_secs_f64() / service.indexing.as_secs_f64(),
        mib(sqlite.size)
    );
    println!();
    println!(
        "| query | palisade p50 | palisade p99 | FTS5 p50 | FTS5 p99 | FTS5 / palisade p50 | FTS5 / palisade p99 | total | inside the searcher p50 / p99 | same, 1 hit |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (case, (palisade, (peer, _))) in QUERY_CASES
        .iter()
        .zip(service.queries.iter().zip(&sqlite.queries))
    {
        let latency = &palisade.latency;
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2}x | {:.2}x | {} | {:.2} / {:.2} ms | {:.2} ms |",
            case.name,
            milliseconds(latency.p50),
            milliseconds(latency.p99),
            milliseconds(peer.p50),
            milliseconds(peer.p99),
            peer.p50.as_secs_f64() / latency.p50.as_secs_f64(),
            peer.p99.as_secs_f64() / latency.p99.as_secs_f64(),
            palisade.answer.total,
            milliseconds(palisade.searcher.p50),
            milliseconds(palisade.searcher.p99),
            milliseconds(palisade.searcher_one_hit.p50)
        );
    }
    print_hops(&service.hops);
    Ok(())
}

/// The service's query times alone, for runs without the peers.
fn print_service_queries(service: &ServiceRun) {
    println!();
    println!(
        "| query | palisade p50 | palisade p99 | total | inside the searcher p50 / p99 | same, 1 hit |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (case, palisade) in QUERY_CASES.iter().zip(&service.queries) {
        println!(
            "| {} | {:.3} ms | {:.3} ms | {} | {:.3} / {:.3} ms | {:.3} ms |",
            case.name,
            milliseconds(palisade.latency.p50),
            milliseconds(palisade.latency.p99),
            palisade.answer.total,
            milliseconds(palisade.searcher.p50),
            milliseconds(palisade.searcher.p99),
            milliseconds(palisade.searcher_one_hit.p50)
        );
    }
}
