//! The kube-rs inventory against recorded API server responses.
//!
//! No kube-apiserver can be installed on the build machines, so these tests replay real
//! responses (shared/corpora/k8s-api: a v1.36 kind cluster's LIST and WATCH bodies, the
//! streaming-list BOOKMARK, a real 410 Expired Status, lists from real k3s and kURL clusters)
//! from a small HTTP server on 127.0.0.1, and drive the production watchers through kubeconfig
//! contexts for several clusters at once.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;
use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::model::EntityKind;
use palisade_graph::object::{ALL_KINDS, ObjectKind};
use palisade_graph::watch::{
    ListStrategy, WatchEvent, clients_from_kubeconfig, kubeconfig_contexts, watch_clusters,
};
use palisade_testkit::corpus_path;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What the replay server answers: per path, the LIST bodies in order (the last repeats) and
/// the WATCH scripts in order (lines, then hold the stream open or close it).
#[derive(Default)]
struct Script {
    lists: HashMap<String, Vec<String>>,
    watches: HashMap<String, Vec<(Vec<String>, bool)>>,
    log: Vec<String>,
}

type Shared = Arc<Mutex<Script>>;

fn empty_list(kind: ObjectKind) -> String {
    let (group, version, _) = kind.api_resource();
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": format!("{}List", kind.name()), "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": []}).to_string()
}

fn collection_path(kind: ObjectKind) -> String {
    let (group, version, plural) = kind.api_resource();
    if group.is_empty() {
        format!("/api/{version}/{plural}")
    } else {
        format!("/apis/{group}/{version}/{plural}")
    }
}

async fn handle(State(state): State<Shared>, uri: Uri) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let is_watch = query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let mut script = state.lock().expect("script lock");
    script.log.push(format!(
        "{} {path}?{query}",
        if is_watch { "WATCH" } else { "LIST" }
    ));
    if is_watch {
        let (lines, hold) = match script.watches.get_mut(&path) {
            Some(queue) if queue.len() > 1 => queue.remove(0),
            Some(queue) if queue.len() == 1 => queue[0].clone(),
            _ => (Vec::new(), true),
        };
        let chunks = futures::stream::iter(
            lines
                .into_iter()
                .map(|line| Ok::<Bytes, Infallible>(Bytes::from(format!("{line}\n")))),
        );
        let body = if hold {
            Body::from_stream(chunks.chain(futures::stream::pending()))
        } else {
            Body::from_stream(chunks)
        };
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(body)
            .expect("response");
    }
    let body = match script.lists.get_mut(&path) {
        Some(bodies) if bodies.len() > 1 => bodies.remove(0),
        Some(bodies) => bodies[0].clone(),
        None => {
            let kind = ALL_KINDS
                .iter()
                .find(|kind| collection_path(**kind) == path);
            match kind {
                Some(kind) => empty_list(*kind),
                None => {
                    return Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Body::from("404 page not found"))
                        .expect("response");
                }
            }
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("response")
}

async fn serve(script: Script) -> (String, Shared) {
    let shared = Arc::new(Mutex::new(script));
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{address}"), shared)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(corpus_path(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// Cluster A: the v1.36 kind cluster's pods (LIST, WATCH with bookmark, then a 410 Expired
/// that forces a re-list in which one pod is gone), plus real k3s lists for the other kinds.
fn cluster_a() -> Script {
    let mut script = Script::default();
    let pods = read("k8s-api/list/k8s-openapi-v1.36/podlist-kube-system.json");
    let mut relisted: Value = serde_json::from_str(&pods).expect("pod list");
    relisted["items"].as_array_mut().expect("items").remove(0);
    relisted["metadata"]["resourceVersion"] = json!("600");
    script
        .lists
        .insert("/api/v1/pods".to_string(), vec![pods, relisted.to_string()]);
    let mut first_watch: Vec<String> =
        read("k8s-api/watch/k8s-openapi-v1.36/watch-pods-kube-system.jsonl")
            .lines()
            .map(str::to_string)
            .collect();
    let bookmark =
        read("k8s-api/watch/k8s-openapi-v1.36/watchlist-pods-kube-system-sendInitialEvents.jsonl")
            .lines()
            .last()
            .expect("bookmark")
            .to_string();
    first_watch.push(bookmark);
    // The corpus has no recorded watch ERROR event; its wire form wraps a Status, and the
    // real 410 Expired Status body is in the corpus.
    let expired: Value =
        serde_json::from_str(&read("k8s-api/errors/kubeclient/pods_410.json")).expect("status");
    first_watch.push(json!({"type": "ERROR", "object": expired}).to_string());
    script.watches.insert(
        "/api/v1/pods".to_string(),
        vec![(first_watch, false), (Vec::new(), true)],
    );
    for (path, file) in [
        ("/api/v1/nodes", "nodelist.json"),
        ("/api/v1/namespaces", "namespacelist.json"),
        (
            "/api/v1/serviceaccounts",
            "serviceaccountlist-kube-system.json",
        ),
        ("/api/v1/services", "servicelist-kube-system.json"),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "clusterrolelist.json",
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            "clusterrolebindinglist.json",
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/roles",
            "rolelist-kube-system.json",
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/rolebindings",
            "rolebindinglist-kube-system.json",
        ),
        ("/apis/apps/v1/daemonsets", "daemonsetlist-kube-system.json"),
        (
            "/apis/discovery.k8s.io/v1/endpointslices",
            "endpointslicelist-kube-system.json",
        ),
        (
            "/apis/networking.k8s.io/v1/networkpolicies",
            "networkpolicylist-default-empty.json",
        ),
        (
            "/apis/networking.k8s.io/v1/ingresses",
            "ingresslist-kube-system-empty.json",
        ),
    ] {
        script.lists.insert(
            path.to_string(),
            vec![read(&format!(
                "k8s-api/list/troubleshoot-k3s-v1.31.2/{file}"
            ))],
        );
    }
    script.lists.insert(
        "/apis/apps/v1/deployments".to_string(),
        vec![read(
            "k8s-api/list/k8s-openapi-v1.36/deploymentlist-kube-system.json",
        )],
    );
    script
}

/// Cluster B: a real kURL v1.23 cluster, its support-bundle dump served kind by kind.
fn cluster_b() -> (Script, BTreeMap<String, usize>) {
    let dump: Value =
        serde_json::from_str(&read("k8s-api/dumps/sbctl-kurl-v1.23.5-all.json")).expect("dump");
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for item in dump["items"].as_array().expect("items") {
        by_kind
            .entry(item["kind"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(item.clone());
    }
    let mut script = Script::default();
    let mut counts = BTreeMap::new();
    for kind in ALL_KINDS {
        if let Some(items) = by_kind.get(kind.name()) {
            counts.insert(kind.name().to_string(), items.len());
            let list = json!({"kind": format!("{}List", kind.name()), "apiVersion": "v1", "metadata": {"resourceVersion": "27195722"}, "items": items});
            script
                .lists
                .insert(collection_path(kind), vec![list.to_string()]);
        }
    }
    (script, counts)
}

fn kubeconfig(directory: &Path, servers: &[(&str, &str)]) -> std::path::PathBuf {
    let clusters: Vec<Value> = servers
        .iter()
        .map(|(name, url)| json!({"name": name, "cluster": {"server": url}}))
        .collect();
    let contexts: Vec<Value> = servers
        .iter()
        .map(|(name, _)| json!({"name": name, "context": {"cluster": name, "user": "replay"}}))
        .collect();
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": servers[0].0,
        "clusters": clusters, "contexts": contexts,
        "users": [{"name": "replay", "user": {"token": "placeholder"}}],
    });
    let path = directory.join("kubeconfig.json");
    std::fs::write(&path, config.to_string()).expect("write kubeconfig");
    path
}

fn pods_of(engine: &GraphEngine, cluster: &str) -> usize {
    engine
        .tenant("t")
        .and_then(|tenant| tenant.inventory(cluster))
        .map(|inventory| inventory.of_kind(ObjectKind::Pod).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_list_watch_bookmark_and_relist_after_410_for_two_clusters() {
    let (url_a, log_a) = serve(cluster_a()).await;
    let (script_b, counts_b) = cluster_b();
    let (url_b, _log_b) = serve(script_b).await;
    let directory = tempfile::tempdir().expect("tempdir");
    let path = kubeconfig(directory.path(), &[("kind-a", &url_a), ("kurl-b", &url_b)]);
    assert_eq!(
        kubeconfig_contexts(&path).expect("contexts"),
        vec!["kind-a", "kurl-b"]
    );
    let clients = clients_from_kubeconfig(&path, &[]).await.expect("clients");
    assert_eq!(clients.len(), 2);
    let (sender, mut receiver) = mpsc::channel(64);
    let watching = tokio::spawn(watch_clusters(
        clients,
        &ALL_KINDS,
        ListStrategy::ListWatch,
        sender,
    ));
    let mut engine = GraphEngine::in_memory();
    let mut problems = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let expected_b = counts_b["Pod"];
    let mut replaced_a = 0;
    loop {
        let event = tokio::time::timeout_at(deadline, receiver.recv())
            .await
            .expect("watch events within a minute")
            .expect("stream open");
        match event {
            WatchEvent::Change { cluster, change } => {
                if cluster == "kind-a"
                    && matches!(
                        change.as_ref(),
                        InventoryChange::Replace {
                            kind: ObjectKind::Pod,
                            ..
                        }
                    )
                {
                    replaced_a += 1;
                }
                engine
                    .apply_changes("t", &cluster, vec![*change])
                    .expect("apply");
            }
            WatchEvent::Problem { message, .. } => problems.push(message),
        }
        if replaced_a >= 2
            && pods_of(&engine, "kind-a") == 7
            && pods_of(&engine, "kurl-b") == expected_b
        {
            break;
        }
    }
    watching.abort();
    // The 410 came through as a problem and made the watcher list again.
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("410") || problem.to_lowercase().contains("too old")),
        "{problems:?}"
    );
    let log = log_a.lock().expect("log").log.clone();
    let pod_requests: Vec<&String> = log
        .iter()
        .filter(|line| line.contains(" /api/v1/pods?"))
        .collect();
    assert!(pod_requests[0].starts_with("LIST"), "{pod_requests:?}");
    assert!(
        pod_requests[1].starts_with("WATCH")
            && pod_requests[1].contains("resourceVersion=554")
            && pod_requests[1].contains("allowWatchBookmarks=true"),
        "{pod_requests:?}"
    );
    assert!(
        pod_requests[2].starts_with("LIST"),
        "re-list after 410: {pod_requests:?}"
    );
    assert!(
        pod_requests[3].starts_with("WATCH") && pod_requests[3].contains("resourceVersion=600"),
        "{pod_requests:?}"
    );
    // Secrets and config maps go through the metadata API only.
    let tenant = engine.tenant("t").expect("tenant");
    let graph = tenant.graph();
    assert!(
        graph
            .entities()
            .any(|(_, entity)| entity.cluster == "kind-a" && entity.kind == EntityKind::Node)
    );
    assert!(
        graph
            .entities()
            .any(|(_, entity)| entity.cluster == "kurl-b" && entity.kind == EntityKind::Pod)
    );
    assert!(
        graph
            .entities()
            .any(|(_, entity)| entity.cluster == "kind-a"
                && entity.kind == EntityKind::PermissionSet)
    );
    assert_eq!(
        tenant
            .inventory("kurl-b")
            .expect("b")
            .of_kind(ObjectKind::Deployment)
            .count(),
        counts_b["Deployment"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_ends_at_the_initial_events_bookmark() {
    let mut script = Script::default();
    let lines: Vec<String> =
        read("k8s-api/watch/k8s-openapi-v1.36/watchlist-pods-kube-system-sendInitialEvents.jsonl")
            .lines()
            .map(str::to_string)
            .collect();
    script
        .watches
        .insert("/api/v1/pods".to_string(), vec![(lines, true)]);
    let (url, log) = serve(script).await;
    let directory = tempfile::tempdir().expect("tempdir");
    let path = kubeconfig(directory.path(), &[("stream", &url)]);
    let clients = clients_from_kubeconfig(&path, &["stream".to_string()])
        .await
        .expect("clients");
    let (sender, mut receiver) = mpsc::channel(16);
    let watching = tokio::spawn(watch_clusters(
        clients,
        &[ObjectKind::Pod],
        ListStrategy::StreamingList,
        sender,
    ));
    let event = tokio::time::timeout(Duration::from_secs(30), receiver.recv())
        .await
        .expect("initial events")
        .expect("open");
    watching.abort();
    let WatchEvent::Change { change, .. } = event else {
        panic!("expected the initial list, got {event:?}");
    };
    let InventoryChange::Replace { kind, objects } = *change else {
        panic!("expected the initial list, got {change:?}");
    };
    assert_eq!(kind, ObjectKind::Pod);
    assert_eq!(objects.len(), 8);
    let first = log.lock().expect("log").log[0].clone();
    assert!(
        first.starts_with("WATCH")
            && first.contains("sendInitialEvents=true")
            && first.contains("resourceVersionMatch=NotOlderThan"),
        "{first}"
    );
}

#[test]
fn kubeconfig_contexts_of_real_client_fixtures_are_enumerated() {
    let javascript = corpus_path("k8s-api/kubeconfig/kubernetes-client-javascript/kubeconfig.yaml");
    assert_eq!(
        kubeconfig_contexts(&javascript).expect("contexts"),
        vec!["context1", "context2", "passwd"]
    );
    let ruby = corpus_path("k8s-api/kubeconfig/kubeclient/userauth.kubeconfig");
    assert_eq!(kubeconfig_contexts(&ruby).expect("contexts").len(), 3);
}

#[tokio::test]
async fn a_context_that_cannot_be_used_is_reported_by_name() {
    let javascript = corpus_path("k8s-api/kubeconfig/kubernetes-client-javascript/kubeconfig.yaml");
    let error = match clients_from_kubeconfig(&javascript, &["no-such-context".to_string()]).await {
        Err(error) => error,
        Ok(_) => panic!("a missing context must not make a client"),
    };
    assert_eq!(error.code(), "GRAPH_KUBE_API");
    assert!(error.to_string().contains("no-such-context"), "{error}");
}
