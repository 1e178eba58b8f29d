//! A change to pods scheduled on nodes re-derives only the pods on those nodes; a change to a
//! service, only the service and the pods it selects; a change to roles, bindings and service
//! accounts, the cluster's own part and the pods whose grants change. After every one of a
//! random sequence of such changes to real clusters, the graph, the insights and the attack
//! paths equal those of an engine that derives the same inventory from scratch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use palisade_graph::engine::{GraphEngine, InventoryChange, UpdateStats};
use palisade_graph::k8s::{PolicyRule, RoleRef, Subject};
use palisade_graph::object::{Body, Object, ObjectKind, Parsed, parse_object};
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

/// An engine holding the clusters as tenant `t`.
fn loaded(clusters: &[(&str, Vec<Object>)]) -> GraphEngine {
    let mut engine = GraphEngine::in_memory();
    for (cluster, objects) in clusters {
        let changes = objects
            .iter()
            .cloned()
            .map(InventoryChange::upsert)
            .collect();
        engine.apply_changes("t", cluster, changes).expect("load");
    }
    engine
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

/// Applies changes to a cluster, then checks that the engine shows what a derivation of the
/// same inventory from scratch shows; `what` names the change in the failure.
fn apply_checked(
    engine: &mut GraphEngine,
    cluster: &str,
    changes: Vec<InventoryChange>,
    what: &str,
) -> (UpdateStats, Snapshot) {
    let stats = engine.apply_changes("t", cluster, changes).expect(what);
    let kept = snapshot(engine);
    let fresh = snapshot(&from_scratch(engine));
    assert!(kept == fresh, "{what}: {}", first_difference(&kept, &fresh));
    (stats, kept)
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
    let clusters = clusters();
    let mut engine = loaded(&clusters);
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
    let mut edges_seen = BTreeSet::new();
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
            let (stats, kept) = apply_checked(
                &mut engine,
                cluster,
                vec![InventoryChange::upsert(changed)],
                &format!("step {step} ({cluster}, service {})", service.meta.name),
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
                let (stats, kept) = apply_checked(
                    &mut engine,
                    cluster,
                    vec![change],
                    &format!(
                        "step {step} ({cluster}, pod {} comes, goes or waits)",
                        pod.meta.name
                    ),
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
        let (stats, kept) = apply_checked(
            &mut engine,
            cluster,
            vec![InventoryChange::upsert(changed)],
            &format!("step {step} ({cluster}, pod {})", pod.meta.name),
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
            apply_checked(
                &mut engine,
                cluster,
                vec![change],
                &format!(
                    "{cluster}, the only pod of its workload, {}",
                    lone.meta.name
                ),
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
    let (stats, _) = apply_checked(&mut engine, cluster, batch, "mixed batch");
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

/// Service accounts of a cluster, (namespace, name): those declared and those pods run as.
fn accounts_of(engine: &GraphEngine, cluster: &str) -> Vec<(String, String)> {
    let inventory = engine
        .tenant("t")
        .and_then(|tenant| tenant.inventory(cluster))
        .expect("inventory");
    let mut accounts: BTreeSet<(String, String)> = inventory
        .of_kind(ObjectKind::ServiceAccount)
        .map(|account| (account.meta.namespace.clone(), account.meta.name.clone()))
        .collect();
    for pod in inventory.of_kind(ObjectKind::Pod) {
        let account = serde_json::to_value(&pod.body).expect("body")["Pod"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        accounts.insert((pod.meta.namespace.clone(), account));
    }
    accounts.into_iter().collect()
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    let strings = |list: &[&str]| list.iter().map(|item| item.to_string()).collect();
    PolicyRule {
        api_groups: strings(groups),
        resources: strings(resources),
        verbs: strings(verbs),
        resource_names: strings(names),
        ..PolicyRule::default()
    }
}

/// A change to a role, binding or service account of the kind a cluster sees: the subjects
/// bound (service accounts, their groups, their user names), the role bound, the rules granted
/// (exec, patching pods or their owners, by name or not, secrets, everything), an account's
/// token mount and cloud identity.
fn mutate_rbac(
    rng: &mut StdRng,
    object: &Object,
    accounts: &[(String, String)],
    roles: &[Object],
    pods: &[Object],
) -> Object {
    let mut changed = object.clone();
    let (namespace, account) = &accounts[rng.random_range(0..accounts.len())];
    match &mut changed.body {
        Body::Binding { role_ref, subjects } => match rng.random_range(0..5) {
            0 => {
                *subjects = vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: account.clone(),
                    namespace: namespace.clone(),
                }];
            }
            1 => subjects.push(Subject {
                kind: "Group".into(),
                name: format!("system:serviceaccounts:{namespace}"),
                namespace: String::new(),
            }),
            2 => subjects.push(Subject {
                kind: "User".into(),
                name: format!("system:serviceaccount:{namespace}:{account}"),
                namespace: String::new(),
            }),
            3 => {
                // Another role this binding may refer to.
                let candidates: Vec<&Object> = roles
                    .iter()
                    .filter(|role| {
                        role.kind == ObjectKind::ClusterRole
                            || (object.kind == ObjectKind::RoleBinding
                                && role.meta.namespace == object.meta.namespace)
                    })
                    .collect();
                let role = candidates[rng.random_range(0..candidates.len())];
                *role_ref = RoleRef {
                    kind: role.kind.name().to_string(),
                    name: role.meta.name.clone(),
                };
            }
            _ => subjects.clear(),
        },
        Body::Role { rules, .. } => {
            let pod = &pods[rng.random_range(0..pods.len())];
            let owner = pod
                .meta
                .owner_references
                .first()
                .map(|owner| owner.name.as_str())
                .unwrap_or("none");
            match rng.random_range(0..6) {
                0 => rules.push(rule(&[""], &["pods/exec"], &["create"], &[])),
                1 => rules.push(rule(&[""], &["pods"], &["patch"], &[&pod.meta.name])),
                2 => rules.push(rule(&["apps"], &["replicasets"], &["update"], &[owner])),
                3 => rules.push(rule(&[""], &["secrets"], &["get", "list"], &[])),
                4 => rules.push(rule(&["*"], &["*"], &["*"], &[])),
                _ => {
                    rules.pop();
                }
            }
        }
        Body::ServiceAccount { automount_token } => match rng.random_bool(0.5) {
            // Pods running as the account mount its token, or stop to.
            true => *automount_token = Some(!automount_token.unwrap_or(true)),
            // A cloud identity federated to the account, or no longer.
            false => {
                let annotation = "eks.amazonaws.com/role-arn";
                if changed.meta.annotations.remove(annotation).is_none() {
                    changed.meta.annotations.insert(
                        annotation.into(),
                        "arn:aws:iam::123456789012:role/app".into(),
                    );
                }
            }
        },
        _ => panic!("{} is not a role, binding or service account", object.key()),
    }
    changed
}

#[test]
fn rbac_and_service_account_changes_derive_the_pods_whose_grants_change_and_equal_a_derivation_from_scratch()
 {
    let mut rng = StdRng::seed_from_u64(11);
    // KubeHound's kind cluster, and a k3s cluster's support-bundle dump with its own roles,
    // bindings and aggregated cluster roles (the kURL dump holds no RBAC).
    let clusters = vec![
        clusters().swap_remove(0),
        (
            "k3s",
            objects_of(corpus_path(
                "k8s-api/dumps/troubleshoot-k3s-v1.31.2-all.json",
            )),
        ),
    ];
    let mut engine = loaded(&clusters);
    let rbac_kinds = [
        ObjectKind::Role,
        ObjectKind::ClusterRole,
        ObjectKind::RoleBinding,
        ObjectKind::ClusterRoleBinding,
        ObjectKind::ServiceAccount,
    ];
    let mut edges_seen = BTreeSet::new();
    let mut paths_seen = BTreeSet::new();
    let mut fewer_pods = 0;
    let mut deleted: Vec<(usize, Object)> = Vec::new();
    let steps = 80;
    for step in 1..=steps {
        let index = step % clusters.len();
        let (cluster, _) = &clusters[index];
        let inventory = engine
            .tenant("t")
            .and_then(|tenant| tenant.inventory(cluster))
            .expect("inventory");
        let all_pods: Vec<Object> = inventory.of_kind(ObjectKind::Pod).cloned().collect();
        let objects: Vec<Object> = rbac_kinds
            .iter()
            .flat_map(|kind| inventory.of_kind(*kind).cloned())
            .collect();
        let roles: Vec<Object> = objects
            .iter()
            .filter(|object| matches!(object.kind, ObjectKind::Role | ObjectKind::ClusterRole))
            .cloned()
            .collect();
        let object = &objects[rng.random_range(0..objects.len())];
        let change = match rng.random_range(0..10) {
            0 => {
                deleted.push((index, object.clone()));
                InventoryChange::Delete(object.key())
            }
            1 if deleted.iter().any(|(from, _)| *from == index) => {
                let position = deleted
                    .iter()
                    .position(|(from, _)| *from == index)
                    .expect("a deleted object");
                InventoryChange::upsert(deleted.swap_remove(position).1)
            }
            2 => {
                // A binding in a namespace nothing else implies.
                let Ok(Parsed::Object(binding)) = parse_object(
                    &json!({
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "RoleBinding",
                        "metadata": {"name": format!("admins-{step}"), "namespace": "fresh"},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "fresh"}]
                    }),
                    "",
                ) else {
                    panic!("a binding");
                };
                InventoryChange::Upsert(binding)
            }
            _ => InventoryChange::upsert(mutate_rbac(
                &mut rng,
                object,
                &accounts_of(&engine, cluster),
                &roles,
                &all_pods,
            )),
        };
        let described = format!("step {step} ({cluster}): {change:?}");
        let (stats, kept) = apply_checked(&mut engine, cluster, vec![change], &described);
        assert!(
            !stats.cluster_derived,
            "step {step}: a role, binding or service account change derived every pod"
        );
        if stats.pods_derived < all_pods.len() / 2 {
            fewer_pods += 1;
        }
        edges_seen.insert(kept.edges.len());
        paths_seen.insert(kept.paths.values().map(Vec::len).sum::<usize>());
    }
    assert!(
        fewer_pods > steps / 2,
        "{fewer_pods} of {steps} changes derived fewer than half the pods"
    );
    // The changes did change the graph and its attack paths.
    assert!(edges_seen.len() > 10, "edge counts seen: {edges_seen:?}");
    assert!(paths_seen.len() > 3, "path counts seen: {paths_seen:?}");
}
