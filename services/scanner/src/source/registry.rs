//! `docker://` images from an OCI distribution registry: token or basic auth, image indexes
//! resolved to one platform, every manifest and blob checked against its digest.

use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::streaming::apply_streamed_layers;
use super::{
    INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, Platform, ResolvedImage, layers_of_manifest,
    parse_manifest_json, select_platform, sha256_digest,
};
use crate::error::{Result, ScanError};
use crate::layer::ImageFilesystem;
use crate::progress::Progress;

/// Credentials for one registry host; never sent to any other host.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    /// Registry host (and port) these belong to, as in the image reference.
    pub registry: String,
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RegistryCredentials")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A registry image being scanned.
pub(crate) struct RegistrySource {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    text: String,
}

impl RegistrySource {
    pub(crate) fn new(
        text: &str,
        credentials: &[RegistryCredentials],
        insecure_registries: &[String],
    ) -> Result<Self> {
        let reference: Reference = text.parse().map_err(|error| ScanError::InvalidReference {
            reference: text.to_string(),
            reason: format!("{error}"),
        })?;
        let registry = reference.registry().to_string();
        let auth = credentials
            .iter()
            .find(|c| c.registry == registry || c.registry == reference.resolve_registry())
            .map(|c| RegistryAuth::Basic(c.username.clone(), c.password.clone()))
            .unwrap_or(RegistryAuth::Anonymous);
        // The process-wide TLS provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure_registries.to_vec()),
            platform_resolver: None,
            ..ClientConfig::default()
        };
        Ok(RegistrySource {
            client: Client::new(config),
            reference,
            auth,
            text: text.to_string(),
        })
    }

    fn registry_error(&self, reason: impl std::fmt::Display) -> ScanError {
        ScanError::Registry {
            reference: self.text.clone(),
            reason: reason.to_string(),
        }
    }

    async fn fetch_manifest(
        &self,
        reference: &Reference,
        expected_digest: Option<&str>,
    ) -> Result<(Vec<u8>, String)> {
        let accepted: Vec<&str> = INDEX_MEDIA_TYPES
            .iter()
            .chain(MANIFEST_MEDIA_TYPES.iter())
            .copied()
            .collect();
        let (body, _) = self
            .client
            .pull_manifest_raw(reference, &self.auth, &accepted)
            .await
            .map_err(|error| {
                self.registry_error(format!("cannot fetch manifest {reference}: {error}"))
            })?;
        let actual = sha256_digest(&body);
        if let Some(expected) = expected_digest
            && expected != actual
        {
            return Err(ScanError::DigestMismatch {
                what: format!("manifest {reference}"),
                expected: expected.to_string(),
                actual,
            });
        }
        Ok((body.to_vec(), actual))
    }

    /// Fetches the manifest (through an index if there is one) for `platform`.
    pub(crate) async fn resolve(&self, platform: &Platform) -> Result<ResolvedImage> {
        let pinned = self.reference.digest().map(str::to_string);
        let (mut body, mut digest) = self
            .fetch_manifest(&self.reference, pinned.as_deref())
            .await?;
        for _ in 0..4 {
            let parsed = parse_manifest_json(&body, &self.text)?;
            let Some(manifests) = parsed.manifests.as_ref() else {
                let layers = layers_of_manifest(&parsed, &self.text)?;
                return Ok(ResolvedImage {
                    image_digest: digest,
                    layers,
                });
            };
            let chosen = select_platform(manifests, platform, &self.text)?;
            let by_digest = Reference::with_digest(
                self.reference.registry().to_string(),
                self.reference.repository().to_string(),
                chosen.digest.clone(),
            );
            (body, digest) = self
                .fetch_manifest(&by_digest, Some(&chosen.digest))
                .await?;
        }
        Err(self.registry_error("image indexes nested more than four deep"))
    }

    /// Streams every layer into `filesystem`.
    pub(crate) async fn apply_layers(
        &self,
        image: &ResolvedImage,
        filesystem: ImageFilesystem,
        progress: &dyn Progress,
    ) -> Result<ImageFilesystem> {
        apply_streamed_layers(image, filesystem, progress, |digest| async move {
            let sized = self
                .client
                .pull_blob_stream(&self.reference, digest.as_str())
                .await
                .map_err(|error| {
                    self.registry_error(format!("cannot fetch layer {digest}: {error}"))
                })?;
            Ok(sized.stream.boxed())
        })
        .await
    }
}
