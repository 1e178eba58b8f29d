//! Attack paths kept up to date incrementally equal a search from scratch on the same graph
//! after every one of a random sequence of inventory changes, findings and alerts.

use std::path::PathBuf;

use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::findings::{ImageFindings, RuntimeAlert, Severity, VulnerabilityFinding};
use palisade_graph::model::EntityKind;
use palisade_graph::object::Object;
use palisade_graph::source::{SourceLimits, load_path};
use palisade_testkit::corpus_path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn objects_of(paths: &[PathBuf]) -> Vec<Object> {
    let mut objects = Vec::new();
    for path in paths {
        let report = load_path(path, &SourceLimits::default()).expect("corpus");
        // Kinds the graph does not model (Kyverno policies in Goat) are skipped, nothing else.
        assert!(
            report
                .problems
                .iter()
                .all(|problem| problem.message.starts_with("unknown kind")),
            "{:?}",
            report.problems
        );
        objects.extend(report.objects);
    }
    objects
}

/// KubeHound's kind cluster with its attack manifests, and Kubernetes Goat.
fn clusters() -> Vec<(&'static str, Vec<Object>)> {
    let dump = corpus_path("k8s-api/dumps/kubehound-kind-v1.27");
    let mut files = Vec::new();
    let mut stack = vec![dump];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).expect("dump").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("default/pods.json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files.push(corpus_path("k8s/kubehound/test-cluster/attacks"));
    vec![
        ("kubehound", objects_of(&files)),
        (
            "goat",
            objects_of(&[corpus_path("k8s/kubernetes-goat/scenarios")]),
        ),
    ]
}

/// Flips a random boolean, switches a service type or drops an array element of an object.
fn mutate(rng: &mut StdRng, object: &Object) -> Option<Object> {
    fn leaves(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push(key.clone());
                    if child.is_boolean()
                        || (key == "type" && child.is_string())
                        || child.as_array().is_some_and(|items| !items.is_empty())
                    {
                        out.push(path.clone());
                    }
                    leaves(child, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    path.push(index.to_string());
                    leaves(child, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut body = serde_json::to_value(&object.body).ok()?;
    let mut targets = Vec::new();
    leaves(&body, &mut Vec::new(), &mut targets);
    if targets.is_empty() {
        return None;
    }
    let target = &targets[rng.random_range(0..targets.len())];
    let pointer = format!("/{}", target.join("/"));
    let leaf = body.pointer_mut(&pointer)?;
    match leaf {
        Value::Bool(flag) => *flag = !*flag,
        Value::String(text) => {
            *text = ["LoadBalancer", "ClusterIP", "NodePort"][rng.random_range(0..3)].to_string()
        }
        Value::Array(items) => {
            items.pop();
        }
        _ => return None,
    }
    let mut changed = object.clone();
    changed.body = serde_json::from_value(body).ok()?;
    Some(changed)
}

fn assert_paths_equal_a_full_search(engine: &GraphEngine, step: usize) -> usize {
    let tenant = engine.tenant("t").expect("tenant");
    let mut total = 0;
    for cluster in tenant.clusters() {
        let kept = tenant.cluster_attack_paths(cluster);
        let searched = tenant.recompute_attack_paths(cluster);
        assert!(
            kept == searched,
            "step {step}, cluster {cluster}: {} kept paths, {} from a full search",
            kept.len(),
            searched.len()
        );
        total += kept.len();
    }
    total
}

#[test]
fn random_updates_keep_attack_paths_equal_to_a_full_search() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut engine = GraphEngine::in_memory();
    let clusters = clusters();
    for (cluster, objects) in &clusters {
        let changes = objects
            .iter()
            .cloned()
            .map(InventoryChange::upsert)
            .collect();
        engine.apply_changes("t", cluster, changes).expect("load");
    }
    let initial = assert_paths_equal_a_full_search(&engine, 0);
    assert!(initial > 20, "{initial} paths to start with");
    let mut deleted: Vec<(usize, Object)> = Vec::new();
    let mut path_counts = std::collections::BTreeSet::new();
    let mut partial_updates = 0;
    for step in 1..=120 {
        let cluster_index = rng.random_range(0..clusters.len());
        let (cluster, objects) = &clusters[cluster_index];
        let choice = rng.random_range(0..100);
        let stats = if choice < 55 {
            let object = &objects[rng.random_range(0..objects.len())];
            let current = engine
                .tenant("t")
                .and_then(|tenant| tenant.inventory(cluster))
                .and_then(|inventory| inventory.get(&object.key()))
                .cloned()
                .unwrap_or_else(|| object.clone());
            let Some(changed) = mutate(&mut rng, &current) else {
                continue;
            };
            Some(
                engine
                    .apply_changes("t", cluster, vec![InventoryChange::upsert(changed)])
                    .expect("mutate"),
            )
        } else if choice < 70 {
            let object = objects[rng.random_range(0..objects.len())].clone();
            let stats = engine
                .apply_changes("t", cluster, vec![InventoryChange::Delete(object.key())])
                .expect("delete");
            deleted.push((cluster_index, object));
            Some(stats)
        } else if choice < 80 && !deleted.is_empty() {
            let (index, object) = deleted.swap_remove(rng.random_range(0..deleted.len()));
            Some(
                engine
                    .apply_changes(
                        "t",
                        clusters[index].0,
                        vec![InventoryChange::upsert(object)],
                    )
                    .expect("re-add"),
            )
        } else if choice < 90 {
            let tenant = engine.tenant("t").expect("tenant");
            let graph = tenant.graph();
            let containers: Vec<_> = graph
                .of_kind(EntityKind::Container)
                .filter_map(|slot| graph.entity(slot))
                .collect();
            let container = containers[rng.random_range(0..containers.len())];
            let alert = RuntimeAlert {
                id: format!("alert-{step}"),
                cluster: container.cluster.clone(),
                namespace: container.namespace.clone(),
                pod: container.text("pod").unwrap_or_default().to_string(),
                container: container.name.clone(),
                rule: "Terminal shell in container".into(),
                priority: "Warning".into(),
                ..RuntimeAlert::default()
            };
            engine.add_alerts("t", vec![alert]).expect("alert");
            None
        } else {
            let tenant = engine.tenant("t").expect("tenant");
            let graph = tenant.graph();
            let images: Vec<String> = graph
                .of_kind(EntityKind::Image)
                .filter_map(|slot| graph.entity(slot))
                .map(|image| image.name.clone())
                .collect();
            let image = images[rng.random_range(0..images.len())].clone();
            let vulnerabilities = (0..rng.random_range(0..3))
                .map(|index| VulnerabilityFinding {
                    id: format!("CVE-2099-{index}"),
                    severity: [Severity::High, Severity::Critical][rng.random_range(0..2)],
                    remote_code_execution: rng.random_bool(0.5),
                    ..VulnerabilityFinding::default()
                })
                .collect();
            Some(
                engine
                    .update_image_findings(
                        "t",
                        vec![ImageFindings {
                            image,
                            digest: String::new(),
                            vulnerabilities,
                        }],
                    )
                    .expect("findings"),
            )
        };
        let total = assert_paths_equal_a_full_search(&engine, step);
        path_counts.insert(total);
        if let Some(stats) = stats
            && stats.entries_searched > 0
        {
            partial_updates += 1;
        }
    }
    // The sequence really moved the paths around, and updates searched only part of them.
    assert!(path_counts.len() > 5, "path counts seen: {path_counts:?}");
    assert!(
        partial_updates > 10,
        "{partial_updates} updates searched entries again"
    );
}

/// A second shortest way to a target, through an entity whose id sorts first, moves the
/// target's path to it: the entry point searches again although its distances stay the same.
#[test]
fn an_equally_short_way_added_moves_the_path_to_it() {
    use palisade_graph::derive::Derived;
    use palisade_graph::graph::{TenantGraph, Unit};
    use palisade_graph::model::{EdgeKind, Entity};
    use palisade_graph::path_cache::{PathCache, PathChanges};
    use palisade_graph::paths::cluster_paths;
    use palisade_graph::search::Searcher;

    // entry -escape-> node-1 -attach-> pod-z -attach-> ctr-z -escape-> node-2
    //                        -attach-> pod-a -attach-> ctr-a (-escape-> node-2, added)
    let graph_with = |second_way: bool| {
        let mut derived = Derived::default();
        let entity = |kind, name: &str| Entity::new(kind, "c", "ns", name, format!("c/{name}"));
        for (kind, name) in [
            (EntityKind::Container, "entry"),
            (EntityKind::Node, "node-1"),
            (EntityKind::Node, "node-2"),
            (EntityKind::Pod, "pod-z"),
            (EntityKind::Pod, "pod-a"),
            (EntityKind::Container, "ctr-z"),
            (EntityKind::Container, "ctr-a"),
        ] {
            derived.entity(entity(kind, name));
        }
        let mut edges = vec![
            ("entry", EdgeKind::CePrivMount, "node-1"),
            ("node-1", EdgeKind::PodAttach, "pod-z"),
            ("node-1", EdgeKind::PodAttach, "pod-a"),
            ("pod-z", EdgeKind::ContainerAttach, "ctr-z"),
            ("pod-a", EdgeKind::ContainerAttach, "ctr-a"),
            ("ctr-z", EdgeKind::CePrivMount, "node-2"),
        ];
        if second_way {
            edges.push(("ctr-a", EdgeKind::CePrivMount, "node-2"));
        }
        for (from, kind, to) in edges {
            derived.edge(&format!("c/{from}"), kind, &format!("c/{to}"));
        }
        derived
    };
    let route_to_node_2 = |paths: &[palisade_graph::paths::AttackPath]| -> Vec<String> {
        paths
            .iter()
            .find(|path| {
                path.steps[0].name == "entry"
                    && path.steps.last().is_some_and(|step| step.name == "node-2")
            })
            .map(|path| path.steps.iter().map(|step| step.name.clone()).collect())
            .unwrap_or_default()
    };
    let alerted = Default::default();
    let mut searcher = Searcher::new();
    let mut graph = TenantGraph::new();
    graph.apply(Unit::Cluster("c".into()), graph_with(false));
    let mut cache = PathCache::default();
    cache.rebuild_cluster(&graph, "c", &alerted, &mut searcher);
    let before: Vec<_> = cache
        .cluster_paths("c")
        .iter()
        .map(|path| (**path).clone())
        .collect();
    assert_eq!(
        route_to_node_2(&before),
        ["entry", "node-1", "pod-z", "ctr-z", "node-2"]
    );
    let diff = graph.apply(Unit::Cluster("c".into()), graph_with(true));
    let mut changes = PathChanges::default();
    changes.add_diff(&diff);
    cache.update(&graph, &changes, &alerted, &mut searcher);
    let kept: Vec<_> = cache
        .cluster_paths("c")
        .iter()
        .map(|path| (**path).clone())
        .collect();
    assert_eq!(
        route_to_node_2(&kept),
        ["entry", "node-1", "pod-a", "ctr-a", "node-2"]
    );
    assert_eq!(kept, cluster_paths(&graph, "c", &alerted, &mut searcher));
    // And back: the way that goes leaves the path to the other one.
    let diff = graph.apply(Unit::Cluster("c".into()), graph_with(false));
    let mut changes = PathChanges::default();
    changes.add_diff(&diff);
    cache.update(&graph, &changes, &alerted, &mut searcher);
    let kept: Vec<_> = cache
        .cluster_paths("c")
        .iter()
        .map(|path| (**path).clone())
        .collect();
    assert_eq!(kept, before);
}
