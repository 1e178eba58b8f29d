//! The kube-rs inventory against recorded API server responses.
//!
//! No kube-apiserver can be installed on the build machines, so these tests replay real
//! responses (shared/corpora/k8s-api: a v1.36 kind cluster's LIST and WATCH bodies, the
//! streaming-list BOOKMARK, a real 410 Expired Status, lists from real k3s and kURL clusters)
//! from a small HTTP server on 127.0.0.1, and drive the production watchers through kubeconfig
//! contexts for several clusters at once.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::model::EntityKind;
use palisade_graph::object::{ALL_KINDS, ObjectKind};
use palisade_graph::watch::{
    ListStrategy, WatchEvent, clients_from_kubeconfig, kubeconfig_contexts, watch_clusters,
};
use palisade_testkit::corpus_path;
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod replay_server;

use replay_server::{Script, collection_path, kubeconfig, read, serve};

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
