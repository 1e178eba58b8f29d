//! A Kubernetes API server replaying recorded responses, for tests of the inventory: LIST
//! bodies in order (the last repeats; kinds without a script get an empty list), WATCH lines
//! in order (then the stream is held open or closed), on 127.0.0.1, with a kubeconfig naming
//! it. No kube-apiserver can be installed on the build machines.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;
use palisade_graph::object::{ALL_KINDS, ObjectKind};
use palisade_testkit::corpus_path;
use serde_json::{Value, json};

/// What the replay server answers: per path, the LIST bodies in order (the last repeats) and
/// the WATCH scripts in order (lines, then hold the stream open or close it).
#[derive(Default)]
pub struct Script {
    pub lists: HashMap<String, Vec<String>>,
    pub watches: HashMap<String, Vec<(Vec<String>, bool)>>,
    pub log: Vec<String>,
}

pub type Shared = Arc<Mutex<Script>>;

pub fn empty_list(kind: ObjectKind) -> String {
    let (group, version, _) = kind.api_resource();
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": format!("{}List", kind.name()), "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": []}).to_string()
}

pub fn collection_path(kind: ObjectKind) -> String {
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

pub async fn serve(script: Script) -> (String, Shared) {
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

pub fn read(relative: &str) -> String {
    std::fs::read_to_string(corpus_path(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// A kubeconfig with one context per (name, server URL); the first is current.
pub fn kubeconfig(directory: &Path, servers: &[(&str, &str)]) -> std::path::PathBuf {
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
