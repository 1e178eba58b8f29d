//! Where images come from, named as skopeo names them, and the OCI metadata they share.

mod archive;
mod containerd;
mod oci_layout;
mod registry;
mod rootfs;
mod streaming;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Result, ScanError};
use crate::sbom::LayerInfo;

pub(crate) use archive::{load_docker_archive, load_oci_archive};
pub(crate) use containerd::ContainerdSource;
pub(crate) use oci_layout::{apply_local_layers, load_oci_layout};
pub use registry::RegistryCredentials;
pub(crate) use registry::RegistrySource;
pub(crate) use rootfs::scan_rootfs;

/// An image reference in skopeo's transport syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    /// `oci:DIR[:TAG]` — an OCI image layout directory.
    OciLayout {
        directory: PathBuf,
        tag: Option<String>,
    },
    /// `oci-archive:FILE[:TAG]` — a tar of an OCI image layout.
    OciArchive { file: PathBuf, tag: Option<String> },
    /// `docker-archive:FILE[:REPO:TAG]` — the output of `docker save`.
    DockerArchive { file: PathBuf, tag: Option<String> },
    /// `docker://REGISTRY/REPO:TAG` (or `@sha256:...`), also a bare `REPO:TAG`.
    Registry { reference: String },
    /// `containerd:NAME` — an image in containerd's content store.
    Containerd { name: String },
    /// `dir:ROOTFS` — an unpacked root filesystem.
    Rootfs { directory: PathBuf },
}

/// Splits `PATH[:SUFFIX]`; the suffix may not contain `/` (it would be part of the path).
fn split_path_and_tag(rest: &str) -> (PathBuf, Option<String>) {
    match rest.split_once(':') {
        Some((path, tag)) if !tag.is_empty() && !tag.contains('/') => {
            (PathBuf::from(path), Some(tag.to_string()))
        }
        Some((path, tag)) if !tag.is_empty() && !path.is_empty() && tag.contains(':') => {
            // docker-archive:FILE:REPO:TAG where REPO has a slash.
            (PathBuf::from(path), Some(tag.to_string()))
        }
        _ => (PathBuf::from(rest), None),
    }
}

impl std::str::FromStr for ImageReference {
    type Err = ScanError;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = |reason: &str| ScanError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        if text.trim().is_empty() {
            return Err(invalid("empty reference"));
        }
        if let Some(rest) = text.strip_prefix("docker://") {
            return Ok(ImageReference::Registry {
                reference: rest.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (file, tag) = split_path_and_tag(rest);
            return Ok(ImageReference::OciArchive { file, tag });
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            let (directory, tag) = split_path_and_tag(rest);
            return Ok(ImageReference::OciLayout { directory, tag });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (file, tag) = match rest.split_once(':') {
                Some((file, tag)) if !tag.is_empty() => {
                    (PathBuf::from(file), Some(tag.to_string()))
                }
                _ => (PathBuf::from(rest), None),
            };
            return Ok(ImageReference::DockerArchive { file, tag });
        }
        if let Some(rest) = text.strip_prefix("containerd:") {
            if rest.is_empty() {
                return Err(invalid("containerd: needs an image name"));
            }
            return Ok(ImageReference::Containerd {
                name: rest.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("dir:") {
            return Ok(ImageReference::Rootfs {
                directory: PathBuf::from(rest),
            });
        }
        let transport = text.split_once(':').map(|(t, _)| t).unwrap_or_default();
        if ["docker-daemon", "containers-storage", "ostree", "sif"].contains(&transport) {
            return Err(invalid(
                "transport not supported; use docker-archive (docker save) or containerd:",
            ));
        }
        Ok(ImageReference::Registry {
            reference: text.to_string(),
        })
    }
}

/// An OCI (or Docker v2) content descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<DescriptorPlatform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct DescriptorPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image index or manifest list, or a manifest: told apart by their fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestOrIndex {
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
}

/// The platform to take from a multi-platform index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64` ...
    pub architecture: String,
    /// `v8` ...
    pub variant: Option<String>,
}

impl Platform {
    /// The machine this process runs on, in OCI's spelling.
    pub fn current() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = ScanError;

    /// `os/arch[/variant]`.
    fn from_str(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, architecture] => Ok(Platform {
                os: (*os).to_string(),
                architecture: (*architecture).to_string(),
                variant: None,
            }),
            [os, architecture, variant] => Ok(Platform {
                os: (*os).to_string(),
                architecture: (*architecture).to_string(),
                variant: Some((*variant).to_string()),
            }),
            _ => Err(ScanError::InvalidReference {
                reference: text.to_string(),
                reason: "platform must be os/arch[/variant]".to_string(),
            }),
        }
    }
}

/// Picks the manifest for `platform` from an index. Attestation manifests (platform
/// unknown/unknown) are never picked.
pub(crate) fn select_platform(
    manifests: &[Descriptor],
    platform: &Platform,
    source: &str,
) -> Result<Descriptor> {
    let matches = |descriptor: &&Descriptor| {
        descriptor.platform.as_ref().is_some_and(|p| {
            p.os == platform.os
                && p.architecture == platform.architecture
                && (platform.variant.is_none() || p.variant == platform.variant)
        })
    };
    if let Some(found) = manifests.iter().find(matches) {
        return Ok(found.clone());
    }
    let available: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    Err(ScanError::ImageMetadata {
        source_name: source.to_string(),
        reason: format!(
            "no manifest for platform {}/{} in the index (it has: {})",
            platform.os,
            platform.architecture,
            available.join(", ")
        ),
    })
}

/// Checks the shape of a digest before it becomes part of a path or URL, so
/// `sha256:../../etc/passwd` cannot walk out of a blob directory.
pub(crate) fn validate_digest(digest: &str) -> Result<(&str, &str)> {
    let bad = |reason: &str| ScanError::ImageMetadata {
        source_name: digest.to_string(),
        reason: format!("invalid digest: {reason}"),
    };
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| bad("missing algorithm"))?;
    if algorithm != "sha256" && algorithm != "sha512" {
        return Err(bad("only sha256 and sha512 digests are accepted"));
    }
    let expected_length = if algorithm == "sha256" { 64 } else { 128 };
    if hex.len() != expected_length
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(bad("not lowercase hex of the right length"));
    }
    Ok((algorithm, hex))
}

/// `sha256:` digest of some bytes.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Verifies that small metadata (index, manifest, config) hashes to the digest that named it.
pub(crate) fn verify_bytes(what: &str, expected: &str, bytes: &[u8]) -> Result<()> {
    if !expected.starts_with("sha256:") {
        return Ok(()); // sha512 content is rare; its digest is still shape-checked above
    }
    let actual = sha256_digest(bytes);
    if actual != expected {
        return Err(ScanError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Hashes everything read through it, so a streamed layer can be verified once it ends.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what the consumer left unread, then returns the digest and byte count.
    pub(crate) fn finish(mut self) -> std::io::Result<(String, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.bytes,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.bytes += read as u64;
        Ok(read)
    }
}

/// An image whose metadata was resolved: what to read, in order.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedImage {
    pub image_digest: String,
    pub layers: Vec<ResolvedLayer>,
}

/// One layer to read, and how to verify it.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedLayer {
    pub info: LayerInfo,
    /// Where the blob is inside its source (a digest, or an archive member path).
    pub locator: String,
    /// Digest the blob's bytes must hash to, when the source names one.
    pub expected_digest: Option<String>,
}

impl ResolvedLayer {
    /// Checks the sha256 of the bytes read (`actual`) against the expected digest; `name`
    /// says which layer in the error.
    pub(crate) fn verify(&self, actual: String, name: &str) -> Result<()> {
        match &self.expected_digest {
            Some(expected) if expected.starts_with("sha256:") && *expected != actual => {
                Err(ScanError::DigestMismatch {
                    what: format!("layer {name}"),
                    expected: expected.clone(),
                    actual,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Manifest media types whose layers the scanner reads.
pub(crate) const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

pub(crate) const MANIFEST_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Turns a manifest's layer descriptors into layers to read, refusing foreign (URL) layers:
/// following registry-supplied URLs is how SSRF reached scanners before.
pub(crate) fn layers_of_manifest(
    manifest: &ManifestOrIndex,
    source: &str,
) -> Result<Vec<ResolvedLayer>> {
    let layers = manifest
        .layers
        .as_ref()
        .ok_or_else(|| ScanError::ImageMetadata {
            source_name: source.to_string(),
            reason: "manifest has no layers".to_string(),
        })?;
    let mut resolved = Vec::with_capacity(layers.len());
    for layer in layers {
        validate_digest(&layer.digest)?;
        let media_type = layer.media_type.as_str();
        let readable = media_type.contains("tar") || media_type.is_empty();
        if !readable {
            return Err(ScanError::ImageMetadata {
                source_name: source.to_string(),
                reason: format!(
                    "layer {} has media type {media_type:?}, not a tar layer",
                    layer.digest
                ),
            });
        }
        resolved.push(ResolvedLayer {
            info: LayerInfo {
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
                size: layer.size,
            },
            locator: layer.digest.clone(),
            expected_digest: Some(layer.digest.clone()),
        });
    }
    Ok(resolved)
}

/// Parses index or manifest JSON, naming the source on failure.
pub(crate) fn parse_manifest_json(bytes: &[u8], source: &str) -> Result<ManifestOrIndex> {
    serde_json::from_slice(bytes).map_err(|error| ScanError::ImageMetadata {
        source_name: source.to_string(),
        reason: format!("not an OCI manifest or index: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skopeo_transports_parse() {
        let parse = |text: &str| text.parse::<ImageReference>().ok();
        assert_eq!(
            parse("oci:/tmp/img:v1"),
            Some(ImageReference::OciLayout {
                directory: "/tmp/img".into(),
                tag: Some("v1".into())
            })
        );
        assert_eq!(
            parse("oci:/tmp/img"),
            Some(ImageReference::OciLayout {
                directory: "/tmp/img".into(),
                tag: None
            })
        );
        assert_eq!(
            parse("docker-archive:/tmp/a.tar:debian:12"),
            Some(ImageReference::DockerArchive {
                file: "/tmp/a.tar".into(),
                tag: Some("debian:12".into())
            })
        );
        assert_eq!(
            parse("debian:12"),
            Some(ImageReference::Registry {
                reference: "debian:12".into()
            })
        );
        assert_eq!(
            parse("docker://127.0.0.1:5000/x/y:1"),
            Some(ImageReference::Registry {
                reference: "127.0.0.1:5000/x/y:1".into()
            })
        );
        assert_eq!(
            parse("containerd:docker.io/library/debian:12"),
            Some(ImageReference::Containerd {
                name: "docker.io/library/debian:12".into()
            })
        );
        assert_eq!(
            parse("dir:/srv/rootfs"),
            Some(ImageReference::Rootfs {
                directory: "/srv/rootfs".into()
            })
        );
        assert!(parse("containers-storage:x").is_none());
    }

    #[test]
    fn platform_selection_skips_attestations_and_names_what_exists() {
        let descriptor = |digest: &str, os: &str, architecture: &str| Descriptor {
            digest: digest.to_string(),
            platform: Some(DescriptorPlatform {
                os: os.into(),
                architecture: architecture.into(),
                variant: None,
            }),
            ..Descriptor::default()
        };
        let index = [
            descriptor("sha256:att", "unknown", "unknown"),
            descriptor("sha256:arm", "linux", "arm64"),
            descriptor("sha256:amd", "linux", "amd64"),
        ];
        let amd64: Platform = "linux/amd64".parse().expect("platform");
        assert_eq!(
            select_platform(&index, &amd64, "x").ok().map(|d| d.digest),
            Some("sha256:amd".to_string())
        );
        let s390x: Platform = "linux/s390x".parse().expect("platform");
        let error = select_platform(&index, &s390x, "x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("linux/arm64") && error.contains("linux/amd64"),
            "{error}"
        );
    }

    #[test]
    fn digests_that_could_walk_paths_are_refused() {
        assert!(validate_digest("sha256:../../../../etc/passwd").is_err());
        assert!(validate_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(validate_digest(&format!("md5:{}", "a".repeat(32))).is_err());
    }
}
