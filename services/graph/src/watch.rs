//! Agentless inventory of live clusters through kube-rs: one watcher per kind and cluster
//! (list, then watch from the list's resourceVersion with bookmarks; a 410 Gone re-lists),
//! for many clusters at once, from kubeconfig contexts. Secrets and ConfigMaps are watched
//! through the metadata API, so their values never leave the API server.

use std::path::Path;

use futures::{Stream, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::engine::InventoryChange;
use crate::error::{GraphError, Result};
use crate::object::{ALL_KINDS, Object, ObjectKey, ObjectKind, Parsed, parse_object};

/// A cluster to watch: its name (the kubeconfig context) and a client.
#[derive(Clone)]
pub struct ClusterClient {
    /// Cluster name used in entity ids.
    pub name: String,
    /// Client for its API server.
    pub client: kube::Client,
}

/// Context names of a kubeconfig, in file order.
pub fn kubeconfig_contexts(path: &Path) -> Result<Vec<String>> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|error| GraphError::BadInput {
        location: path.display().to_string(),
        message: format!("invalid kubeconfig: {error}"),
    })?;
    Ok(kubeconfig
        .contexts
        .iter()
        .map(|context| context.name.clone())
        .collect())
}

/// Clients for the given contexts of a kubeconfig (every context when `contexts` is empty).
/// A context that cannot be turned into a client is an error naming it.
pub async fn clients_from_kubeconfig(
    path: &Path,
    contexts: &[String],
) -> Result<Vec<ClusterClient>> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|error| GraphError::BadInput {
        location: path.display().to_string(),
        message: format!("invalid kubeconfig: {error}"),
    })?;
    let wanted: Vec<String> = if contexts.is_empty() {
        kubeconfig
            .contexts
            .iter()
            .map(|context| context.name.clone())
            .collect()
    } else {
        contexts.to_vec()
    };
    let mut clients = Vec::new();
    for context in wanted {
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
            .await
            .map_err(|error| GraphError::Kube {
                cluster: context.clone(),
                message: format!("context cannot be used: {error}"),
            })?;
        let client = kube::Client::try_from(config).map_err(|error| GraphError::Kube {
            cluster: context.clone(),
            message: format!("cannot build a client: {error}"),
        })?;
        clients.push(ClusterClient {
            name: context,
            client,
        });
    }
    Ok(clients)
}

/// An inventory change from a cluster, or a problem the watch reported.
#[derive(Debug)]
pub enum WatchEvent {
    /// A change to apply.
    Change {
        /// Cluster.
        cluster: String,
        /// Change.
        change: Box<InventoryChange>,
    },
    /// A watch error (the watcher retries by itself with backoff).
    Problem {
        /// Cluster.
        cluster: String,
        /// Kind watched.
        kind: ObjectKind,
        /// What happened.
        message: String,
    },
}

/// How a watcher starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListStrategy {
    /// LIST, then WATCH from its resourceVersion (works with every API server).
    #[default]
    ListWatch,
    /// A streaming list: WATCH with sendInitialEvents, ended by a bookmark (Kubernetes 1.27+).
    StreamingList,
}

fn api_resource(kind: ObjectKind) -> ApiResource {
    let (group, version, plural) = kind.api_resource();
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.name().to_string(),
        plural: plural.to_string(),
    }
}

fn to_object(kind: ObjectKind, value: Value) -> std::result::Result<Option<Object>, String> {
    match parse_object(&value, "")? {
        Parsed::Object(object) => Ok(Some(*object)),
        Parsed::UnknownKind { .. } => {
            debug_assert!(false, "the API server answered {kind:?} with another kind");
            Ok(None)
        }
    }
}

fn value_of<T: serde::Serialize>(
    kind: ObjectKind,
    object: &T,
) -> std::result::Result<Value, String> {
    let mut value = serde_json::to_value(object).map_err(|error| error.to_string())?;
    // Metadata-only and dynamic objects do not always carry their type fields.
    let resource = api_resource(kind);
    if let Some(map) = value.as_object_mut() {
        map.insert("kind".to_string(), Value::String(resource.kind));
        map.insert(
            "apiVersion".to_string(),
            Value::String(resource.api_version),
        );
    }
    Ok(value)
}

/// Turns one kind's watcher events into inventory changes. Init...InitDone is buffered and
/// becomes one `Replace`, so objects deleted while the watch was down disappear.
fn changes<T, S>(
    cluster: String,
    kind: ObjectKind,
    events: S,
) -> impl Stream<Item = WatchEvent> + Send
where
    T: serde::Serialize + Send + 'static,
    S: Stream<Item = std::result::Result<Event<T>, watcher::Error>> + Send + 'static,
{
    let mut buffer: Vec<Object> = Vec::new();
    events.filter_map(move |event| {
        let cluster = cluster.clone();
        let output = match event {
            Err(error) => Some(WatchEvent::Problem {
                cluster,
                kind,
                message: error.to_string(),
            }),
            Ok(Event::Init) => {
                buffer.clear();
                None
            }
            Ok(Event::InitApply(object)) => {
                match value_of(kind, &object).and_then(|value| to_object(kind, value)) {
                    Ok(Some(object)) => buffer.push(object),
                    Ok(None) => {}
                    Err(message) => {
                        return futures::future::ready(Some(WatchEvent::Problem {
                            cluster,
                            kind,
                            message,
                        }));
                    }
                }
                None
            }
            Ok(Event::InitDone) => Some(WatchEvent::Change {
                cluster,
                change: Box::new(InventoryChange::Replace {
                    kind,
                    objects: std::mem::take(&mut buffer),
                }),
            }),
            Ok(Event::Apply(object)) => {
                match value_of(kind, &object).and_then(|value| to_object(kind, value)) {
                    Ok(Some(object)) => Some(WatchEvent::Change {
                        cluster,
                        change: Box::new(InventoryChange::upsert(object)),
                    }),
                    Ok(None) => None,
                    Err(message) => Some(WatchEvent::Problem {
                        cluster,
                        kind,
                        message,
                    }),
                }
            }
            Ok(Event::Delete(object)) => {
                match value_of(kind, &object).and_then(|value| to_object(kind, value)) {
                    Ok(Some(object)) => Some(WatchEvent::Change {
                        cluster,
                        change: Box::new(InventoryChange::Delete(ObjectKey {
                            kind,
                            namespace: object.meta.namespace,
                            name: object.meta.name,
                        })),
                    }),
                    Ok(None) => None,
                    Err(message) => Some(WatchEvent::Problem {
                        cluster,
                        kind,
                        message,
                    }),
                }
            }
        };
        futures::future::ready(output)
    })
}

/// The merged change stream of one kind in one cluster.
pub fn watch_kind(
    cluster: &ClusterClient,
    kind: ObjectKind,
    strategy: ListStrategy,
) -> std::pin::Pin<Box<dyn Stream<Item = WatchEvent> + Send>> {
    let resource = api_resource(kind);
    let mut config = watcher::Config::default();
    if strategy == ListStrategy::StreamingList {
        config = config.streaming_lists();
    }
    if kind.metadata_only() {
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(cluster.client.clone(), &resource);
        Box::pin(changes(
            cluster.name.clone(),
            kind,
            watcher::watcher(api, config).default_backoff(),
        ))
    } else {
        let api: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &resource);
        Box::pin(changes(
            cluster.name.clone(),
            kind,
            watcher::watcher(api, config).default_backoff(),
        ))
    }
}

/// Watches `kinds` of every cluster and sends the changes to `sink` until it closes. Each
/// (cluster, kind) runs its own watcher; they share the bounded channel, so a slow consumer
/// slows the watchers instead of filling memory.
pub async fn watch_clusters(
    clusters: Vec<ClusterClient>,
    kinds: &[ObjectKind],
    strategy: ListStrategy,
    sink: mpsc::Sender<WatchEvent>,
) {
    let mut streams = Vec::new();
    for cluster in &clusters {
        for kind in kinds {
            streams.push(watch_kind(cluster, *kind, strategy));
        }
    }
    let mut merged = futures::stream::select_all(streams);
    while let Some(event) = merged.next().await {
        if sink.send(event).await.is_err() {
            return;
        }
    }
}

/// Every kind the inventory watches.
pub fn all_kinds() -> &'static [ObjectKind] {
    &ALL_KINDS
}
