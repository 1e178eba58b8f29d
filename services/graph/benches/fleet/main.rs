//! The graph benchmark: a synthetic fleet (by default 50 clusters x 2,000 pods, 5,000 images,
//! 1,000,000 image-vulnerability edges), built into Palisade's graph and exported to CSV for
//! Kuzu (the peer) and NetworkX (the correctness oracle), which load the same graph in the same
//! run and answer the same questions; every answer is compared.
//!
//! Run: `cargo bench -p palisade-graph --bench fleet` (needs `pip install kuzu networkx`).
//! Environment: BENCH_CLUSTERS, BENCH_PODS (fleet size), BENCH_PEERS=0 to skip the peers.

// A synchronous benchmark: std's clock, no tokio runtime.
#![allow(clippy::disallowed_types)]

mod fleet_gen;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::explorer::{self, QueryLimits};
use palisade_graph::graph::{Slot, TenantGraph};
use palisade_graph::model::{EdgeKind, EntityKind};
use palisade_graph::paths::{TargetClass, external_endpoints, target_class};
use palisade_graph::search::Searcher;
use serde_json::{Value, json};

const TENANT: &str = "bench";

/// The allocator the platform's binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Runs of each explorer question, for Palisade and for Kuzu: the p99 of 100 runs is the
/// second slowest, so one run disturbed by the host does not make it.
const QUERY_RUNS: usize = 100;

fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(samples: &mut [f64], fraction: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|first, second| first.total_cmp(second));
    let index = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[index]
}

/// Latencies of the runs of one question. The first run is given apart: it finds the
/// graph's memory out of the caches, as a query that comes alone does, and is often the
/// slowest.
fn summary(mut samples: Vec<f64>) -> Value {
    let total: f64 = samples.iter().sum();
    let first = samples.first().copied().unwrap_or(0.0);
    json!({"runs": samples.len(), "first_ms": first, "p50_ms": percentile(&mut samples, 0.5), "p99_ms": percentile(&mut samples, 0.99), "total_ms": total})
}

fn walk(kind: EdgeKind) -> bool {
    kind.is_pathfinding() && kind != EdgeKind::RoutesTo
}

fn is_p1_target(graph: &TenantGraph, slot: Slot) -> bool {
    graph
        .entity(slot)
        .and_then(target_class)
        .is_some_and(|class| class != TargetClass::ExposedVulnerableWorkload)
}

fn timed<T>(work: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let value = work();
    (value, started.elapsed().as_secs_f64() * 1000.0)
}

struct Questions {
    entries: Vec<Slot>,
    containers: Vec<Slot>,
    cve: String,
}

fn export(
    graph: &TenantGraph,
    directory: &Path,
    questions: &Questions,
    runs: &Value,
) -> Result<()> {
    std::fs::create_dir_all(directory)?;
    let mut nodes = std::io::BufWriter::new(std::fs::File::create(directory.join("nodes.csv"))?);
    writeln!(nodes, "id,kind,name,exposed,target,severity,creates_pods")?;
    for (slot, entity) in graph.entities() {
        let severity = entity
            .properties
            .get("severity_rank")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        writeln!(
            nodes,
            "{slot},{},\"{}\",{},{},{severity},{}",
            entity.kind.as_str(),
            entity.name.replace('"', "'"),
            entity.flag("exposed_to_internet"),
            is_p1_target(graph, slot),
            entity.text("creates_pods").unwrap_or("")
        )?;
    }
    let mut files: BTreeMap<&str, std::io::BufWriter<std::fs::File>> = BTreeMap::new();
    for name in ["path", "vuln", "uses", "runs"] {
        let mut file = std::io::BufWriter::new(std::fs::File::create(
            directory.join(format!("{name}.csv")),
        )?);
        writeln!(file, "src,dst,kind")?;
        files.insert(name, file);
    }
    for (from, kind, to) in graph.edges() {
        let table = match kind {
            EdgeKind::HasVulnerability => "vuln",
            EdgeKind::UsesImage => "uses",
            EdgeKind::Runs => "runs",
            kind if walk(kind) => "path",
            _ => continue,
        };
        if let Some(file) = files.get_mut(table) {
            writeln!(file, "{from},{to},{}", kind.as_str())?;
        }
    }
    for (_, mut file) in files {
        file.flush()?;
    }
    nodes.flush()?;
    let description = json!({"entries": questions.entries, "containers": questions.containers, "cve": questions.cve, "runs": runs});
    std::fs::write(
        directory.join("questions.json"),
        serde_json::to_vec(&description)?,
    )?;
    Ok(())
}

fn run_peer(engine: &str, directory: &Path) -> Result<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(engine)
        .arg(directory)
        .output()
        .context("running python3")?;
    if !output.status.success() {
        bail!(
            "{engine} peer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn as_set(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|items| items.iter().map(|item| item.to_string()).collect())
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let clusters = env_usize("BENCH_CLUSTERS", 50);
    let pods = env_usize("BENCH_PODS", 2000);
    let with_peers = env_usize("BENCH_PEERS", 1) == 1;
    let update_rounds = env_usize("BENCH_UPDATE_ROUNDS", 20);
    eprintln!("fleet: {clusters} clusters x {pods} pods");
    let shape = fleet_gen::ClusterShape { pods };
    // ---------------- build ----------------
    let mut engine = GraphEngine::in_memory();
    let mut generate_ms = 0.0;
    let mut build_ms = 0.0;
    let mut objects_total = 0;
    for cluster in 0..clusters {
        let (objects, generated) = timed(|| fleet_gen::cluster_objects(cluster, &shape));
        generate_ms += generated;
        objects_total += objects.len();
        let changes = objects.into_iter().map(InventoryChange::upsert).collect();
        let (result, built) =
            timed(|| engine.apply_changes(TENANT, &format!("c{cluster:02}"), changes));
        result?;
        build_ms += built;
    }
    let findings = fleet_gen::fleet_findings();
    let (result, findings_ms) = timed(|| engine.set_findings(TENANT, findings));
    result?;
    let (_, peak_after_build) = rss_mb();
    let tenant = engine.tenant(TENANT).context("tenant")?;
    let graph = tenant.graph();
    let entities = graph.entity_count();
    let edges = graph.edge_count();
    let paths_total = tenant.attack_paths().len();
    eprintln!(
        "palisade: {entities} entities, {edges} edges, {paths_total} attack paths, build {:.0} ms + findings {findings_ms:.0} ms",
        build_ms
    );
    // ---------------- questions ----------------
    let mut searcher = Searcher::new();
    let entries = external_endpoints(graph);
    let containers: Vec<Slot> = graph
        .of_kind(EntityKind::Container)
        .step_by((graph.count_of_kind(EntityKind::Container) / 200).max(1))
        .take(200)
        .collect();
    let mut p1_pairs: BTreeSet<(Slot, Slot, u8)> = BTreeSet::new();
    let mut p1_latencies = Vec::new();
    for round in 0..5 {
        for &entry in &entries {
            let (_, elapsed) = timed(|| searcher.run(graph, &[entry], 5, walk));
            p1_latencies.push(elapsed);
            if round == 0 {
                for &slot in searcher.reached.iter().skip(1) {
                    if is_p1_target(graph, slot) {
                        p1_pairs.insert((entry, slot, searcher.depth_of(slot)));
                    }
                }
            }
        }
    }
    let (_, p1_fleet_ms) = timed(|| {
        for &entry in &entries {
            searcher.run(graph, &[entry], 5, walk);
        }
    });
    let mut blast: BTreeMap<u8, Vec<(Slot, usize)>> = BTreeMap::new();
    let mut blast_latencies: BTreeMap<u8, Vec<f64>> = BTreeMap::new();
    for depth in [3u8, 5] {
        for &container in &containers {
            let (_, elapsed) = timed(|| searcher.run(graph, &[container], depth, walk));
            blast
                .entry(depth)
                .or_default()
                .push((container, searcher.reached.len() - 1));
            blast_latencies.entry(depth).or_default().push(elapsed);
        }
    }
    eprintln!("p1/p2 done");
    // The CVE shared by the most images.
    let cve = fleet_gen::cve_name(0);
    // Every row, so that the whole answer is compared with the peers'.
    let limits = QueryLimits {
        max_included: 1_000_000,
        max_results: 1_000_000,
        ..QueryLimits::default()
    };
    let texts = [
        ("q1", format!("image where has vulnerability(name = \"{cve}\") include pod")),
        ("q2", "pod where exposed_to_internet and has vulnerability(severity >= critical)".to_string()),
        ("q3", "service_account where has permission_set(creates_pods = \"kube-system\" or creates_pods = \"*\")".to_string()),
    ];
    let mut palisade_answers: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut palisade_latencies: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (name, text) in &texts {
        let query = explorer::parse_text(text)?;
        for _ in 0..QUERY_RUNS {
            let (result, elapsed) = timed(|| explorer::run(graph, &query, 0, limits));
            let result = result?;
            palisade_latencies.entry(name).or_default().push(elapsed);
            if palisade_answers.contains_key(name) {
                continue;
            }
            let mut answer = BTreeSet::new();
            for row in &result.rows {
                let slot = graph.slot(&row.entity.id).context("slot")?;
                match *name {
                    "q1" => {
                        for pod in row.related.get("pod").into_iter().flatten() {
                            let pod_slot = graph.slot(pod).context("pod slot")?;
                            answer.insert(json!([slot, pod_slot]).to_string());
                        }
                    }
                    _ => {
                        answer.insert(json!(slot).to_string());
                    }
                }
            }
            palisade_answers.insert(name, answer);
        }
    }
    // ---------------- incremental updates ----------------
    let mut update_latencies: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let target_cluster = format!("c{:02}", clusters / 2);
    let target_cluster = target_cluster.as_str();
    let inventory = engine
        .tenant(TENANT)
        .and_then(|tenant| tenant.inventory(target_cluster))
        .context("cluster")?;
    let pod = inventory
        .of_kind(palisade_graph::object::ObjectKind::Pod)
        .nth(10)
        .cloned()
        .context("pod")?;
    let binding = inventory
        .of_kind(palisade_graph::object::ObjectKind::RoleBinding)
        .nth(3)
        .cloned()
        .context("binding")?;
    let service = inventory
        .of_kind(palisade_graph::object::ObjectKind::Service)
        .nth(4)
        .cloned()
        .context("service")?;
    // A pod whose workload runs others too: it goes and comes back as pods do.
    let owner_of = |pod: &palisade_graph::object::Object| {
        pod.meta
            .owner_references
            .first()
            .map(|owner| owner.name.clone())
    };
    let churned = inventory
        .of_kind(palisade_graph::object::ObjectKind::Pod)
        .find(|candidate| {
            owner_of(candidate).is_some_and(|owner| {
                inventory
                    .of_kind(palisade_graph::object::ObjectKind::Pod)
                    .filter(|other| owner_of(other).as_ref() == Some(&owner))
                    .count()
                    > 1
            })
        })
        .cloned()
        .context("a workload with two pods")?;
    eprintln!("questions done, updating");
    for round in 0..update_rounds {
        let mut changed_pod = pod.clone();
        let mut body = serde_json::to_value(&changed_pod.body)?;
        body["Pod"]["containers"][0]["securityContext"]["privileged"] = json!(round % 2 == 0);
        changed_pod.body = serde_json::from_value(body)?;
        let (result, elapsed) = timed(|| {
            engine.apply_changes(
                TENANT,
                target_cluster,
                vec![InventoryChange::upsert(changed_pod)],
            )
        });
        let stats = result?;
        if round < 2 {
            eprintln!("pod update: {stats:?}");
        }
        update_latencies.entry("pod").or_default().push(elapsed);
        let mut changed_binding = binding.clone();
        let mut body = serde_json::to_value(&changed_binding.body)?;
        body["Binding"]["subjects"][0]["name"] =
            json!(if round % 2 == 0 { "sa-0001" } else { "sa-0002" });
        changed_binding.body = serde_json::from_value(body)?;
        let (result, elapsed) = timed(|| {
            engine.apply_changes(
                TENANT,
                target_cluster,
                vec![InventoryChange::upsert(changed_binding)],
            )
        });
        let stats = result?;
        if round < 2 {
            eprintln!("binding update: {stats:?}");
        }
        update_latencies.entry("binding").or_default().push(elapsed);
        let mut changed_service = service.clone();
        let mut body = serde_json::to_value(&changed_service.body)?;
        body["Service"]["spec"]["type"] = json!(if round % 2 == 0 {
            "LoadBalancer"
        } else {
            "ClusterIP"
        });
        changed_service.body = serde_json::from_value(body)?;
        let (result, elapsed) = timed(|| {
            engine.apply_changes(
                TENANT,
                target_cluster,
                vec![InventoryChange::upsert(changed_service)],
            )
        });
        let stats = result?;
        if round < 2 {
            eprintln!("service update: {stats:?}");
        }
        update_latencies.entry("service").or_default().push(elapsed);
    }
    // Scanner findings arriving a few images at a time: three images rescanned, one of them
    // now clean, the next round as before.
    let findings_batches: Vec<Vec<palisade_graph::findings::ImageFindings>> = {
        let all = fleet_gen::fleet_findings();
        let mut rescanned: Vec<_> = all.iter().take(3).cloned().collect();
        rescanned[0].vulnerabilities.truncate(150);
        rescanned[1].vulnerabilities.clear();
        rescanned[2].vulnerabilities.reverse();
        vec![rescanned, all.into_iter().take(3).collect()]
    };
    // Back to the fleet as generated, so that the peers get the graph the questions were
    // asked on.
    engine.apply_changes(
        TENANT,
        target_cluster,
        vec![
            InventoryChange::upsert(pod.clone()),
            InventoryChange::upsert(binding.clone()),
            InventoryChange::upsert(service.clone()),
        ],
    )?;
    // An even number of rounds ends with the findings as generated.
    let findings_rounds = update_rounds.max(2) / 2 * 2;
    for round in 0..findings_rounds {
        let batch = findings_batches[round % 2].clone();
        let (result, elapsed) = timed(|| engine.update_image_findings(TENANT, batch));
        let stats = result?;
        if round < 2 {
            eprintln!("findings update: {stats:?}");
        }
        update_latencies
            .entry("findings")
            .or_default()
            .push(elapsed);
    }
    // What was kept up to date must equal a search from scratch.
    let tenant = engine.tenant(TENANT).context("tenant")?;
    let (recomputed, recompute_ms) = timed(|| tenant.recompute_attack_paths(target_cluster));
    let incremental_equal = tenant.cluster_attack_paths(target_cluster) == recomputed;
    eprintln!("incremental paths equal a full search: {incremental_equal} ({recompute_ms:.0} ms)");
    if !incremental_equal {
        bail!("incremental attack paths differ from a full search of {target_cluster}");
    }
    let (_, peak) = rss_mb();
    let palisade = json!({
        "objects": objects_total, "entities": entities, "edges": edges, "attack_paths": paths_total,
        "generate_ms": generate_ms, "build_ms": build_ms, "findings_ms": findings_ms, "peak_rss_mb_after_build": peak_after_build, "peak_rss_mb": peak,
        "p1": {"entries": entries.len(), "pairs": p1_pairs.len(), "per_entry": summary(p1_latencies), "fleet_ms": p1_fleet_ms},
        "p2_3": summary(blast_latencies.remove(&3).unwrap_or_default()),
        "p2_5": summary(blast_latencies.remove(&5).unwrap_or_default()),
        "q1": summary(palisade_latencies.remove("q1").unwrap_or_default()), "q1_rows": palisade_answers["q1"].len(),
        "q2": summary(palisade_latencies.remove("q2").unwrap_or_default()), "q2_rows": palisade_answers["q2"].len(),
        "q3": summary(palisade_latencies.remove("q3").unwrap_or_default()), "q3_rows": palisade_answers["q3"].len(),
        "update_pod": summary(update_latencies.remove("pod").unwrap_or_default()),
        "update_binding": summary(update_latencies.remove("binding").unwrap_or_default()),
        "update_service": summary(update_latencies.remove("service").unwrap_or_default()),
        "update_findings_3_images": summary(update_latencies.remove("findings").unwrap_or_default()),
        "full_path_search_one_cluster_ms": recompute_ms,
        "incremental_paths_equal_full_search": incremental_equal,
    });
    let mut report =
        json!({"fleet": {"clusters": clusters, "pods_per_cluster": pods}, "palisade": palisade});
    if with_peers {
        // The graph after the updates equals the one before (every change was reverted).
        let graph = engine.tenant(TENANT).context("tenant")?.graph();
        let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("graph-bench");
        let questions = Questions {
            entries: entries.clone(),
            containers: containers.clone(),
            cve: cve.clone(),
        };
        export(
            graph,
            &directory,
            &questions,
            &json!({"networkx": {"p1": 1, "q": 3}, "kuzu": {"p1": 1, "q": QUERY_RUNS}}),
        )?;
        let expected_p1: BTreeSet<String> = p1_pairs
            .iter()
            .map(|(entry, target, depth)| json!([entry, target, depth]).to_string())
            .collect();
        let expected_blast: BTreeMap<u8, BTreeSet<String>> = blast
            .iter()
            .map(|(depth, counts)| {
                (
                    *depth,
                    counts
                        .iter()
                        .map(|(slot, count)| json!([slot, count]).to_string())
                        .collect(),
                )
            })
            .collect();
        for peer in ["networkx", "kuzu"] {
            eprintln!("running {peer}");
            let answer = run_peer(peer, &directory)?;
            let mut equal = BTreeMap::new();
            equal.insert("p1", as_set(&answer["p1"]["pairs"]) == expected_p1);
            equal.insert(
                "p2_3",
                as_set(&answer["p2_3"]["counts"]) == expected_blast[&3],
            );
            equal.insert(
                "p2_5",
                as_set(&answer["p2_5"]["counts"]) == expected_blast[&5],
            );
            for name in ["q1", "q2", "q3"] {
                equal.insert(
                    name,
                    as_set(&answer[name]["rows"]) == palisade_answers[name],
                );
            }
            let mut summary_answer = answer.clone();
            for key in ["p1", "p2_3", "p2_5", "q1", "q2", "q3"] {
                if let Some(object) = summary_answer[key].as_object_mut() {
                    object.remove("pairs");
                    object.remove("counts");
                    object.remove("rows");
                }
            }
            summary_answer["equal_to_palisade"] = json!(equal);
            report[peer] = summary_answer;
        }
    }
    // Pods going and coming back, last: the entities they bring back take other slots, and
    // the peers' questions and answers above name entities by slot.
    for round in 0..update_rounds {
        for (name, change) in [
            ("pod_delete", InventoryChange::Delete(churned.key())),
            ("pod_create", InventoryChange::upsert(churned.clone())),
        ] {
            let (result, elapsed) =
                timed(|| engine.apply_changes(TENANT, target_cluster, vec![change]));
            let stats = result?;
            if round < 2 {
                eprintln!("{name}: {stats:?}");
            }
            update_latencies.entry(name).or_default().push(elapsed);
        }
    }
    let tenant = engine.tenant(TENANT).context("tenant")?;
    if tenant.cluster_attack_paths(target_cluster) != tenant.recompute_attack_paths(target_cluster)
    {
        bail!(
            "after pods went and came back, the attack paths of {target_cluster} differ from a full search"
        );
    }
    report["palisade"]["update_pod_delete"] =
        summary(update_latencies.remove("pod_delete").unwrap_or_default());
    report["palisade"]["update_pod_create"] =
        summary(update_latencies.remove("pod_create").unwrap_or_default());
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
