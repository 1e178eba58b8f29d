//! A change to pods scheduled on nodes re-derives only the pods on those nodes; a change to a
//! service, only the service and the pods it selects. After every one of a random sequence of
//! such changes to real clusters, the graph, the insights and the attack paths equal those of
//! an engine that derives the same inventory from scratch.

use std::collections::BTreeMap;
use std::path::PathBuf;

use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::object::{Object, ObjectKind};
use palisade_graph::source::{ProblemKind, SourceLimits, load_path};
use palisade_testkit::corpus_path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

fn objects_of(path: PathBuf) -> Vec<Object> {
    let report = load_path(&path, &SourceLimits::default()).expect("corpus");
    // Kinds the graph does not model (CRDs, events, storage classes) are skipped, nothing else.
    let other: Vec<_> = report
        .problems
        .iter()
        .filter(|problem| problem.kind != ProblemKind::UnknownKind)
        .collect();
    assert!(other.is_empty(), "{}: {other:?}", path.display());
    report.objects
}

/// Two live clusters: KubeHound's kind cluster with its attack pods running, and a kURL
/// cluster's support-bundle dump.
fn clusters() -> Vec<(&'static str, Vec<Object>)> {
    vec![
        (
            "kubehound",
            objects_of(corpus_path("k8s-api/dumps/kubehound-kind-v1.27")),
        ),
        (
            "kurl",
            objects_of(corpus_path("k8s-api/dumps/sbctl-kurl-v1.23.5-all.json")),
        ),
    ]
}

/// Everything the engine shows of a tenant, by id, so that two engines compare equal
/// whatever slots they use.
#[derive(Debug, PartialEq)]
struct Snapshot {
    entities: BTreeMap<String, Value>,
    edges: Vec<(String, String, String)>,
    insights: Vec<String>,
    paths: BTreeMap<String, Vec<String>>,
}

fn snapshot(engine: &GraphEngine) -> Snapshot {
    let tenant = engine.tenant("t").expect("tenant");
    let graph = tenant.graph();
    let id = |slot| graph.entity(slot).expect("entity").id.clone();
    let entities = graph
        .entities()
        .map(|(_, entity)| {
            (
                entity.id.clone(),
                serde_json::to_value(entity).expect("json"),
            )
        })
        .collect();
    let mut edges: Vec<(String, String, String)> = graph
        .edges()
        .map(|(from, kind, to)| (id(from), format!("{kind:?}"), id(to)))
        .collect();
    edges.sort();
    let mut insights: Vec<String> = tenant
        .insights()
        .iter()
        .map(|insight| serde_json::to_string(insight).expect("json"))
        .collect();
    insights.sort();
    let paths = tenant
        .clusters()
        .map(|cluster| {
            let paths = tenant
                .cluster_attack_paths(cluster)
                .iter()
                .map(|path| serde_json::to_string(path).expect("json"))
                .collect();
            (cluster.to_string(), paths)
        })
        .collect();
    Snapshot {
        entities,
        edges,
        insights,
        paths,
    }
}

/// An engine that derives the inventory `engine` holds now from scratch.
fn from_scratch(engine: &GraphEngine) -> GraphEngine {
    let tenant = engine.tenant("t").expect("tenant");
    let mut fresh = GraphEngine::in_memory();
    for cluster in tenant.clusters() {
        let objects = tenant
            .inventory(cluster)
            .expect("inventory")
            .iter()
            .cloned()
            .map(InventoryChange::upsert)
            .collect();
        fresh.apply_changes("t", cluster, objects).expect("load");
    }
    fresh
}

fn first_difference(kept: &Snapshot, fresh: &Snapshot) -> String {
    for (id, entity) in &kept.entities {
        if fresh.entities.get(id) != Some(entity) {
            return format!(
                "entity {id}: kept {entity}, fresh {:?}",
                fresh.entities.get(id)
            );
        }
    }
    for id in fresh.entities.keys() {
        if !kept.entities.contains_key(id) {
            return format!("entity {id} only in the fresh graph");
        }
    }
    let kept_only: Vec<_> = kept
        .edges
        .iter()
        .filter(|edge| !fresh.edges.contains(edge))
        .take(3)
        .collect();
    let fresh_only: Vec<_> = fresh
        .edges
        .iter()
        .filter(|edge| !kept.edges.contains(edge))
        .take(3)
        .collect();
    if !kept_only.is_empty() || !fresh_only.is_empty() || kept.edges.len() != fresh.edges.len() {
        return format!(
            "edges: {} kept, {} fresh; kept only {kept_only:?}; fresh only {fresh_only:?}",
            kept.edges.len(),
            fresh.edges.len()
        );
    }
    if kept.insights != fresh.insights {
        return format!(
            "insights: {} kept, {} fresh",
            kept.insights.len(),
            fresh.insights.len()
        );
    }
    for (cluster, paths) in &kept.paths {
        let other = &fresh.paths[cluster];
        let kept_only: Vec<_> = paths
            .iter()
            .filter(|path| !other.contains(path))
            .take(2)
            .collect();
        let fresh_only: Vec<_> = other
            .iter()
            .filter(|path| !paths.contains(path))
            .take(2)
            .collect();
        if !kept_only.is_empty() || !fresh_only.is_empty() {
            return format!(
                "{cluster}: {} kept paths, {} fresh; kept only {kept_only:?}; fresh only {fresh_only:?}",
                paths.len(),
                other.len()
            );
        }
    }
    "attack paths in another order".to_string()
}

/// The spec of the first container, created as needed.
fn first_container(spec: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    spec.get_mut("containers")?.get_mut(0)?.as_object_mut()
}

/// A change to a pod of the kind a cluster sees: security settings, node, service account,
/// labels, ports and mounts. Owners stay as they are.
fn mutate(rng: &mut StdRng, pod: &Object, nodes: &[String], accounts: &[String]) -> Object {
    let mut body = serde_json::to_value(&pod.body).expect("body");
    let spec = body.get_mut("Pod").expect("pod body");
    let mut changed = pod.clone();
    match rng.random_range(0..10) {
        0 => {
            let privileged = first_container(spec)
                .and_then(|container| container.get("securityContext"))
                .and_then(|context| context.get("privileged"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if let Some(container) = first_container(spec) {
                let context = container
                    .entry("securityContext")
                    .or_insert_with(|| json!({}));
                if !context.is_object() {
                    *context = json!({});
                }
                context["privileged"] = json!(!privileged);
            }
        }
        1 => {
            let host_network = spec["hostNetwork"].as_bool().unwrap_or(false);
            spec["hostNetwork"] = json!(!host_network);
            if let Some(container) = first_container(spec) {
                container.insert(
                    "securityContext".into(),
                    json!({"capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"]}}),
                );
            }
        }
        2 => spec["hostPID"] = json!(!spec["hostPID"].as_bool().unwrap_or(false)),
        3 => spec["nodeName"] = json!(nodes[rng.random_range(0..nodes.len())]),
        4 => {
            spec["serviceAccountName"] = json!(accounts[rng.random_range(0..accounts.len())]);
        }
        5 => {
            let automount = spec["automountServiceAccountToken"]
                .as_bool()
                .unwrap_or(true);
            spec["automountServiceAccountToken"] = json!(!automount);
        }
        6 => {
            // The kubelet's pod directory: every token on the node is within reach.
            let volumes = spec
                .as_object_mut()
                .expect("spec")
                .entry("volumes")
                .or_insert_with(|| json!([]));
            if let Some(volumes) = volumes.as_array_mut() {
                volumes.push(
                    json!({"name": "kubelet-pods", "hostPath": {"path": "/var/lib/kubelet/pods"}}),
                );
            }
            if let Some(container) = first_container(spec) {
                let mounts = container.entry("volumeMounts").or_insert_with(|| json!([]));
                if let Some(mounts) = mounts.as_array_mut() {
                    mounts.push(json!({"name": "kubelet-pods", "mountPath": "/host/pods"}));
                }
            }
        }
        7 => {
            if let Some(container) = first_container(spec) {
                let ports = container.entry("ports").or_insert_with(|| json!([]));
                if let Some(ports) = ports.as_array_mut() {
                    if ports.is_empty() || rng.random_bool(0.5) {
                        ports.push(json!({"containerPort": 8443, "hostPort": 8443}));
                    } else {
                        ports.pop();
                    }
                }
            }
        }
        8 => {
            // Labels decide which services and network policies select the pod.
            if changed.meta.labels.is_empty() || rng.random_bool(0.5) {
                changed
                    .meta
                    .labels
                    .insert("app".into(), format!("app-{}", rng.random_range(0..3)));
            } else {
                changed.meta.labels.clear();
            }
        }
        _ => {
            if let Some(container) = first_container(spec) {
                container.insert(
                    "image".into(),
                    json!(format!("registry.example/app:{}", rng.random_range(0..4))),
                );
            }
        }
    }
    changed.body = serde_json::from_value(body).expect("changed body");
    changed
}

/// A change to a service: its type, selector or ports.
fn mutate_service(rng: &mut StdRng, service: &Object, pods: &[Object]) -> Object {
    let mut body = serde_json::to_value(&service.body).expect("body");
    let spec = &mut body["Service"]["spec"];
    match rng.random_range(0..4) {
        0 => {
            spec["type"] = json!(["ClusterIP", "NodePort", "LoadBalancer"][rng.random_range(0..3)]);
        }
        1 => {
            // Select the pods of another workload, or none.
            let labels = pods
                .iter()
                .filter(|pod| pod.meta.namespace == service.meta.namespace)
                .map(|pod| pod.meta.labels.clone())
                .filter(|labels| !labels.is_empty())
                .collect::<Vec<_>>();
            spec["selector"] = match labels.is_empty() || rng.random_bool(0.2) {
                true => json!({"app": "nothing-runs-this"}),
                false => json!(labels[rng.random_range(0..labels.len())]),
            };
        }
        2 => {
            if let Some(ports) = spec["ports"].as_array_mut() {
                ports.pop();
            }
        }
        _ => {
            if !spec["ports"].is_array() {
                spec["ports"] = json!([]);
            }
            if let Some(ports) = spec["ports"].as_array_mut() {
                let port = rng.random_range(1..10);
                ports.push(json!({"name": format!("extra-{port}"), "port": 9000 + port, "targetPort": 8443}));
            }
        }
    }
    let mut changed = service.clone();
    changed.body = serde_json::from_value(body).expect("changed body");
    changed
}

fn scheduled_pods(engine: &GraphEngine, cluster: &str) -> Vec<Object> {
    engine
        .tenant("t")
        .and_then(|tenant| tenant.inventory(cluster))
        .expect("inventory")
        .of_kind(ObjectKind::Pod)
        .filter(|pod| {
            serde_json::to_value(&pod.body).expect("body")["Pod"]["nodeName"]
                .as_str()
                .is_some_and(|node| !node.is_empty())
        })
        .cloned()
        .collect()
}

fn node_of(pod: &Object) -> String {
    serde_json::to_value(&pod.body).expect("body")["Pod"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn names_of(engine: &GraphEngine, cluster: &str, kind: ObjectKind) -> Vec<String> {
    engine
        .tenant("t")
        .and_then(|tenant| tenant.inventory(cluster))
        .expect("inventory")
        .of_kind(kind)
        .map(|object| object.meta.name.clone())
        .collect()
}

#[test]
fn pod_and_service_changes_derive_only_their_parts_and_equal_a_derivation_from_scratch() {
    let mut rng = StdRng::seed_from_u64(7);
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
    let start = snapshot(&engine);
    assert_eq!(
        start,
        snapshot(&from_scratch(&engine)),
        "the engine derives what it loads"
    );
    for (cluster, _) in &clusters {
        assert!(
            scheduled_pods(&engine, cluster).len() >= 10,
            "{cluster} has pods on nodes"
        );
    }
    let mut edges_seen = std::collections::BTreeSet::new();
    let mut service_changes = 0;
    let mut narrow_lifecycle = 0;
    let mut deleted: Vec<(usize, Object)> = Vec::new();
    for step in 1..=100 {
        let (cluster, _) = &clusters[step % clusters.len()];
        let pods = scheduled_pods(&engine, cluster);
        let services: Vec<Object> = engine
            .tenant("t")
            .and_then(|tenant| tenant.inventory(cluster))
            .expect("inventory")
            .of_kind(ObjectKind::Service)
            .cloned()
            .collect();
        if rng.random_bool(0.3) && !services.is_empty() {
            let service = &services[rng.random_range(0..services.len())];
            let changed = mutate_service(&mut rng, service, &pods);
            let in_namespace = pods
                .iter()
                .filter(|pod| pod.meta.namespace == service.meta.namespace)
                .count();
            let stats = engine
                .apply_changes("t", cluster, vec![InventoryChange::upsert(changed)])
                .expect("change");
            let kept = snapshot(&engine);
            let fresh = snapshot(&from_scratch(&engine));
            assert!(
                kept == fresh,
                "step {step} ({cluster}, service {}): {}",
                service.meta.name,
                first_difference(&kept, &fresh)
            );
            // Only the service and pods of its namespace were derived again.
            assert!(
                !stats.cluster_derived,
                "step {step}: derived the whole cluster"
            );
            assert!(
                stats.pods_derived <= in_namespace,
                "step {step}: {} pods derived, {in_namespace} in the namespace",
                stats.pods_derived
            );
            service_changes += 1;
            edges_seen.insert(kept.edges.len());
            continue;
        }
        let pod = &pods[rng.random_range(0..pods.len())];
        // Pods come and go, and wait for a node: checked against a derivation from scratch;
        // most are narrow, some (the last pod of a workload, of a namespace) are not.
        let choice = rng.random_range(0..10);
        if choice < 3 {
            let mut batches = Vec::new();
            match choice {
                0 => {
                    deleted.push((step % clusters.len(), pod.clone()));
                    batches.push(InventoryChange::Delete(pod.key()));
                }
                1 if !deleted.is_empty() => {
                    let (index, object) = deleted.swap_remove(rng.random_range(0..deleted.len()));
                    if clusters[index].0 != *cluster {
                        deleted.push((index, object));
                        continue;
                    }
                    batches.push(InventoryChange::upsert(object));
                }
                _ => {
                    // Waits for a node, then gets its node back.
                    let mut body = serde_json::to_value(&pod.body).expect("body");
                    body["Pod"]["nodeName"] = Value::Null;
                    let mut pending = pod.clone();
                    pending.body = serde_json::from_value(body).expect("pending body");
                    batches.push(InventoryChange::upsert(pending));
                    batches.push(InventoryChange::upsert(pod.clone()));
                }
            }
            for change in batches {
                let stats = engine
                    .apply_changes("t", cluster, vec![change])
                    .expect("change");
                let kept = snapshot(&engine);
                let fresh = snapshot(&from_scratch(&engine));
                assert!(
                    kept == fresh,
                    "step {step} ({cluster}, pod {} comes, goes or waits): {}",
                    pod.meta.name,
                    first_difference(&kept, &fresh)
                );
                if !stats.cluster_derived {
                    narrow_lifecycle += 1;
                }
                edges_seen.insert(kept.edges.len());
            }
            continue;
        }
        let nodes = names_of(&engine, cluster, ObjectKind::Node);
        let mut accounts = names_of(&engine, cluster, ObjectKind::ServiceAccount);
        accounts.push("default".into());
        let changed = mutate(&mut rng, pod, &nodes, &accounts);
        let touched = [node_of(pod), node_of(&changed)];
        // A change that changes nothing derives nothing.
        let on_touched_nodes = match changed == *pod {
            true => 0,
            false => pods
                .iter()
                .filter(|other| touched.contains(&node_of(other)))
                .count(),
        };
        let stats = engine
            .apply_changes("t", cluster, vec![InventoryChange::upsert(changed)])
            .expect("change");
        let kept = snapshot(&engine);
        let fresh = snapshot(&from_scratch(&engine));
        assert!(
            kept == fresh,
            "step {step} ({cluster}, pod {}): {}",
            pod.meta.name,
            first_difference(&kept, &fresh)
        );
        // Only the pods on the pod's node, before and after, were derived again.
        assert!(
            !stats.cluster_derived,
            "step {step}: a pod change derived the whole cluster"
        );
        assert_eq!(
            stats.pods_derived, on_touched_nodes,
            "step {step}: pods derived"
        );
        edges_seen.insert(kept.edges.len());
    }
    // The only pod of a workload goes, so that the workload's template stands for it, and
    // comes back.
    let mut lone_pods = 0;
    for (cluster, _) in &clusters {
        let pods = scheduled_pods(&engine, cluster);
        let owner_of = |pod: &Object| {
            pod.meta
                .owner_references
                .first()
                .map(|owner| owner.name.clone())
        };
        let lone = pods.iter().find(|pod| {
            owner_of(pod).is_some_and(|owner| {
                pods.iter()
                    .filter(|other| owner_of(other).as_ref() == Some(&owner))
                    .count()
                    == 1
            })
        });
        let Some(lone) = lone else { continue };
        lone_pods += 1;
        for change in [
            InventoryChange::Delete(lone.key()),
            InventoryChange::upsert(lone.clone()),
        ] {
            engine
                .apply_changes("t", cluster, vec![change])
                .expect("change");
            let kept = snapshot(&engine);
            let fresh = snapshot(&from_scratch(&engine));
            assert!(
                kept == fresh,
                "{cluster}, the only pod of its workload, {}: {}",
                lone.meta.name,
                first_difference(&kept, &fresh)
            );
        }
    }
    assert!(lone_pods > 0, "no workload with a single pod");
    // A watch batch mixes kinds: pods and a service changed together, a pod deleted and one
    // re-created, applied a change at a time, none deriving the whole cluster.
    let (cluster, _) = &clusters[1];
    let pods = scheduled_pods(&engine, cluster);
    let service = engine
        .tenant("t")
        .and_then(|tenant| tenant.inventory(cluster))
        .and_then(|inventory| inventory.of_kind(ObjectKind::Service).next().cloned())
        .expect("a service");
    let mut toggled = Vec::new();
    for pod in pods.iter().take(2) {
        let mut body = serde_json::to_value(&pod.body).expect("body");
        body["Pod"]["hostPID"] = json!(!body["Pod"]["hostPID"].as_bool().unwrap_or(false));
        let mut changed = pod.clone();
        changed.body = serde_json::from_value(body).expect("changed body");
        toggled.push(InventoryChange::upsert(changed));
    }
    let mut batch = toggled;
    batch.push(InventoryChange::upsert(mutate_service(
        &mut rng, &service, &pods,
    )));
    batch.push(InventoryChange::Delete(pods[2].key()));
    batch.push(InventoryChange::Delete(pods[3].key()));
    batch.push(InventoryChange::upsert(pods[2].clone()));
    let stats = engine.apply_changes("t", cluster, batch).expect("batch");
    let kept = snapshot(&engine);
    let fresh = snapshot(&from_scratch(&engine));
    assert!(
        kept == fresh,
        "mixed batch: {}",
        first_difference(&kept, &fresh)
    );
    assert!(
        !stats.cluster_derived,
        "a mixed batch derived the whole cluster"
    );
    assert!(service_changes > 10, "{service_changes} service changes");
    assert!(
        narrow_lifecycle > 10,
        "{narrow_lifecycle} pods came, went or waited without deriving the whole cluster"
    );
    // The changes did change the graph.
    assert!(edges_seen.len() > 10, "edge counts seen: {edges_seen:?}");
}
