//! containerd as the source of container metadata: the containers service for image,
//! labels and OCI spec; the images service for the digest; the events service to learn about
//! new containers the moment they are created.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::{
    GetContainerRequest, GetImageRequest, ListNamespacesRequest, SubscribeRequest,
};
use containerd_client::tonic::Request;
use containerd_client::tonic::transport::Channel;
use prost::Message;
use tracing::{debug, warn};

use super::ContainerRegistry;
use super::spec::RuntimeSpec;
use crate::error::AgentError;
use crate::event::{Container, Pod, split_image_reference};

/// Label keys Kubernetes (CRI) puts on containers.
const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const POD_UID: &str = "io.kubernetes.pod.uid";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";
const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// How long one metadata request may take before the event goes on without it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to containerd's API socket.
#[derive(Debug, Clone)]
pub struct Containerd {
    channel: Channel,
    socket: PathBuf,
}

fn containerd_error(socket: &Path, message: impl std::fmt::Display) -> AgentError {
    AgentError::Containerd {
        socket: socket.to_path_buf(),
        message: message.to_string(),
    }
}

fn with_namespace<T>(message: T, namespace: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = namespace.parse() {
        request.metadata_mut().insert("containerd-namespace", value);
    }
    request.set_timeout(REQUEST_TIMEOUT);
    request
}

impl Containerd {
    /// Connects to the socket and checks that it answers.
    pub async fn connect(socket: &Path) -> Result<Self, AgentError> {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|error| containerd_error(socket, format!("cannot connect: {error}")))?;
        let client = Self {
            channel,
            socket: socket.to_path_buf(),
        };
        client.namespaces().await?;
        Ok(client)
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// containerd namespaces ("k8s.io" for Kubernetes, "default" for ctr, "moby" for Docker).
    pub async fn namespaces(&self) -> Result<Vec<String>, AgentError> {
        let mut client = NamespacesClient::new(self.channel.clone());
        let mut request = Request::new(ListNamespacesRequest {
            filter: String::new(),
        });
        request.set_timeout(REQUEST_TIMEOUT);
        let response = client.list(request).await.map_err(|status| {
            containerd_error(
                &self.socket,
                format!("listing namespaces: {}", status.message()),
            )
        })?;
        Ok(response
            .into_inner()
            .namespaces
            .into_iter()
            .map(|namespace| namespace.name)
            .collect())
    }

    /// Metadata of container `full_id`, searched in every namespace; `None` when no
    /// namespace has it.
    pub async fn inspect(&self, full_id: &str) -> Result<Option<Container>, AgentError> {
        for namespace in self.namespaces().await? {
            if let Some(container) = self.inspect_in(full_id, &namespace).await? {
                return Ok(Some(container));
            }
        }
        Ok(None)
    }

    async fn raw_container(
        &self,
        full_id: &str,
        namespace: &str,
    ) -> Result<Option<containerd_client::services::v1::Container>, AgentError> {
        let mut client = ContainersClient::new(self.channel.clone());
        let request = with_namespace(
            GetContainerRequest {
                id: full_id.to_string(),
            },
            namespace,
        );
        match client.get(request).await {
            Ok(response) => Ok(response.into_inner().container),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(containerd_error(
                &self.socket,
                format!("getting container {full_id}: {}", status.message()),
            )),
        }
    }

    /// Metadata of `full_id` in one namespace.
    pub async fn inspect_in(
        &self,
        full_id: &str,
        namespace: &str,
    ) -> Result<Option<Container>, AgentError> {
        let Some(raw) = self.raw_container(full_id, namespace).await? else {
            return Ok(None);
        };
        let spec = raw
            .spec
            .as_ref()
            .and_then(|any| RuntimeSpec::parse(&any.value).ok())
            .unwrap_or_default();
        let digest = self.image_digest(&raw.image, namespace).await;
        let sandbox_labels = match spec.annotations.get(SANDBOX_ID_ANNOTATION) {
            Some(sandbox_id) if sandbox_id != full_id => self
                .raw_container(sandbox_id, namespace)
                .await
                .ok()
                .flatten()
                .map(|sandbox| sandbox.labels),
            _ => None,
        };
        Ok(Some(container_from_parts(
            full_id,
            &raw.image,
            raw.labels.into_iter().collect(),
            sandbox_labels.map(|labels| labels.into_iter().collect()),
            &spec,
            digest,
        )))
    }

    async fn image_digest(&self, image: &str, namespace: &str) -> String {
        if image.is_empty() {
            return String::new();
        }
        let mut client = ImagesClient::new(self.channel.clone());
        let request = with_namespace(
            GetImageRequest {
                name: image.to_string(),
            },
            namespace,
        );
        match client.get(request).await {
            Ok(response) => response
                .into_inner()
                .image
                .and_then(|image| image.target)
                .map(|target| target.digest)
                .unwrap_or_default(),
            Err(status) => {
                debug!(
                    image,
                    message = status.message(),
                    "image digest unavailable"
                );
                String::new()
            }
        }
    }

    /// Answers the registry's lookup requests until the channel closes.
    pub async fn serve_lookups(
        self,
        registry: Arc<ContainerRegistry>,
        mut requests: tokio::sync::mpsc::Receiver<String>,
    ) {
        while let Some(full_id) = requests.recv().await {
            let answer = match self.inspect(&full_id).await {
                Ok(answer) => answer,
                Err(error) => {
                    warn!(container_id = %full_id, %error, "container metadata lookup failed");
                    None
                }
            };
            registry.complete(&full_id, answer);
        }
    }

    /// Follows containerd's container events: fetches metadata when a container is created
    /// (before its first process starts) and retires it when deleted. Reconnects with a delay
    /// when the stream ends.
    pub async fn follow_events(self, registry: Arc<ContainerRegistry>) {
        loop {
            if let Err(error) = self.follow_once(&registry).await {
                warn!(%error, "containerd event stream ended; resubscribing");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow_once(&self, registry: &ContainerRegistry) -> Result<(), AgentError> {
        let mut client = EventsClient::new(self.channel.clone());
        let request = Request::new(SubscribeRequest {
            filters: vec![
                "topic==\"/containers/create\"".to_string(),
                "topic==\"/containers/delete\"".to_string(),
            ],
        });
        let mut stream = client
            .subscribe(request)
            .await
            .map_err(|status| containerd_error(&self.socket, status.message()))?
            .into_inner();
        while let Some(envelope) = stream
            .message()
            .await
            .map_err(|status| containerd_error(&self.socket, status.message()))?
        {
            let Some(any) = envelope.event else {
                continue;
            };
            match envelope.topic.as_str() {
                "/containers/create" => {
                    let Ok(created) =
                        containerd_client::events::ContainerCreate::decode(any.value.as_slice())
                    else {
                        continue;
                    };
                    match self.inspect_in(&created.id, &envelope.namespace).await {
                        Ok(Some(container)) => registry.insert(container),
                        Ok(None) => {}
                        Err(error) => {
                            warn!(container_id = %created.id, %error, "metadata of a new container")
                        }
                    }
                }
                "/containers/delete" => {
                    if let Ok(deleted) =
                        containerd_client::events::ContainerDelete::decode(any.value.as_slice())
                    {
                        registry.retire(&deleted.id);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Builds a [`Container`] from what containerd stores. Pod labels come from the pod's
/// sandbox container when there is one, else from the container's own labels without the
/// runtime's `io.kubernetes.*` / `io.cri-containerd.*` keys.
pub fn container_from_parts(
    full_id: &str,
    image: &str,
    labels: BTreeMap<String, String>,
    sandbox_labels: Option<BTreeMap<String, String>>,
    spec: &RuntimeSpec,
    digest: String,
) -> Container {
    let (image_repository, image_tag, reference_digest) = split_image_reference(image);
    let pod = labels.get(POD_NAME).map(|pod_name| {
        let label_source = sandbox_labels.as_ref().unwrap_or(&labels);
        Pod {
            name: pod_name.clone(),
            namespace: labels.get(POD_NAMESPACE).cloned().unwrap_or_default(),
            uid: labels.get(POD_UID).cloned().unwrap_or_default(),
            labels: label_source
                .iter()
                .filter(|(key, _)| {
                    !key.starts_with("io.kubernetes.") && !key.starts_with("io.cri-containerd.")
                })
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        }
    });
    let name = labels
        .get(CONTAINER_NAME)
        .cloned()
        .unwrap_or_else(|| full_id.to_string());
    Container {
        id: full_id.chars().take(12).collect(),
        full_id: full_id.to_string(),
        name,
        image: image.to_string(),
        image_repository,
        image_tag,
        image_digest: if digest.is_empty() {
            reference_digest
        } else {
            digest
        },
        labels,
        privileged: spec.is_privileged(),
        capabilities: spec.capabilities(),
        mounts: spec.mounts(),
        pod,
        runtime: "containerd".to_string(),
        metadata_complete: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_labels_make_the_pod_and_the_rest_its_labels() {
        let labels: BTreeMap<String, String> = [
            (POD_NAME, "web-7d9f"),
            (POD_NAMESPACE, "payments"),
            (POD_UID, "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"),
            (CONTAINER_NAME, "nginx"),
            ("app", "web"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        let container = container_from_parts(
            &"d".repeat(64),
            "registry.local/shop/web:1.4",
            labels,
            None,
            &RuntimeSpec::default(),
            "sha256:feed".into(),
        );
        assert_eq!(container.id, "d".repeat(12));
        assert_eq!(container.name, "nginx");
        assert_eq!(container.image_repository, "registry.local/shop/web");
        assert_eq!(container.image_tag, "1.4");
        assert_eq!(container.image_digest, "sha256:feed");
        let pod = container.pod.expect("pod");
        assert_eq!(pod.name, "web-7d9f");
        assert_eq!(pod.namespace, "payments");
        assert_eq!(pod.labels.len(), 1);
        assert_eq!(pod.labels.get("app").map(String::as_str), Some("web"));
        assert!(!container.privileged);
    }
}
