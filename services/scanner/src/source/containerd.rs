//! `containerd:NAME`: images in containerd's content store, read through its gRPC API.

use bytes::Bytes;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{GetImageRequest, ReadContentRequest};
use futures::StreamExt;
use tonic::transport::Channel;

use super::oci_layout::MAX_METADATA_BYTES;
use super::streaming::apply_streamed_layers;
use super::{
    Platform, ResolvedImage, layers_of_manifest, parse_manifest_json, select_platform,
    validate_digest, verify_bytes,
};
use crate::error::{Result, ScanError};
use crate::layer::ImageFilesystem;
use crate::progress::Progress;

/// A connection to containerd in one namespace.
pub(crate) struct ContainerdSource {
    channel: Channel,
    namespace: String,
    socket: String,
}

impl ContainerdSource {
    pub(crate) async fn connect(socket: &std::path::Path, namespace: &str) -> Result<Self> {
        let channel =
            containerd_client::connect(socket)
                .await
                .map_err(|error| ScanError::Containerd {
                    socket: socket.display().to_string(),
                    reason: format!("cannot connect: {error}"),
                })?;
        Ok(ContainerdSource {
            channel,
            namespace: namespace.to_string(),
            socket: socket.display().to_string(),
        })
    }

    fn error(&self, reason: impl std::fmt::Display) -> ScanError {
        ScanError::Containerd {
            socket: self.socket.clone(),
            reason: reason.to_string(),
        }
    }

    fn request<T>(&self, message: T) -> Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        let namespace = self.namespace.parse().map_err(|_| {
            self.error(format!(
                "namespace {:?} is not a valid header value",
                self.namespace
            ))
        })?;
        request
            .metadata_mut()
            .insert("containerd-namespace", namespace);
        Ok(request)
    }

    async fn read_stream(
        &self,
        digest: &str,
    ) -> Result<impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin + Send + use<>> {
        validate_digest(digest)?;
        let request = self.request(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        })?;
        let response = ContentClient::new(self.channel.clone())
            .read(request)
            .await
            .map_err(|status| self.error(format!("cannot read {digest}: {}", status.message())))?;
        Ok(response.into_inner().map(|chunk| {
            chunk
                .map(|message| Bytes::from(message.data))
                .map_err(|status| std::io::Error::other(status.message().to_string()))
        }))
    }

    async fn read_metadata(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = self.read_stream(digest).await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| self.error(format!("reading {digest}: {error}")))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_METADATA_BYTES {
                return Err(self.error(format!(
                    "{digest} is larger than {MAX_METADATA_BYTES} bytes of metadata"
                )));
            }
        }
        verify_bytes(digest, digest, &bytes)?;
        Ok(bytes)
    }

    /// Looks the image up by name and resolves its manifest for `platform`.
    pub(crate) async fn resolve(&self, name: &str, platform: &Platform) -> Result<ResolvedImage> {
        let request = self.request(GetImageRequest {
            name: name.to_string(),
        })?;
        let response = ImagesClient::new(self.channel.clone())
            .get(request)
            .await
            .map_err(|status| {
                self.error(format!(
                    "image {name:?} in namespace {:?}: {}",
                    self.namespace,
                    status.message()
                ))
            })?;
        let target = response
            .into_inner()
            .image
            .and_then(|image| image.target)
            .ok_or_else(|| self.error(format!("image {name:?} has no target")))?;
        let mut digest = target.digest;
        for _ in 0..4 {
            let bytes = self.read_metadata(&digest).await?;
            let parsed = parse_manifest_json(&bytes, name)?;
            let Some(manifests) = parsed.manifests.as_ref() else {
                let layers = layers_of_manifest(&parsed, name)?;
                return Ok(ResolvedImage {
                    image_digest: digest,
                    layers,
                });
            };
            digest = select_platform(manifests, platform, name)?.digest;
        }
        Err(self.error("image indexes nested more than four deep"))
    }

    /// Streams every layer from the content store into `filesystem`.
    pub(crate) async fn apply_layers(
        &self,
        image: &ResolvedImage,
        filesystem: ImageFilesystem,
        progress: &dyn Progress,
    ) -> Result<ImageFilesystem> {
        apply_streamed_layers(image, filesystem, progress, |digest| async move {
            self.read_stream(&digest).await
        })
        .await
    }
}
