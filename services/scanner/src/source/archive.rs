//! Tar archives of images: `oci-archive:` (a tarred OCI layout) and `docker-archive:` (the
//! output of `docker save`). The archive is indexed once; blobs are then read in place.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::oci_layout::{LocalBlobs, read_metadata, resolve_oci_index};
use super::{Platform, ResolvedImage, ResolvedLayer, sha256_digest, validate_digest};
use crate::error::{Result, ScanError};
use crate::sbom::LayerInfo;

/// Members of an image archive beyond this are refused (real archives hold a few dozen).
const MAX_ARCHIVE_MEMBERS: usize = 100_000;

/// A tar file whose members are read by offset.
pub(crate) struct IndexedTar {
    path: PathBuf,
    members: BTreeMap<String, (u64, u64)>,
}

impl IndexedTar {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|error| ScanError::io(path, error))?;
        let mut archive = tar::Archive::new(file);
        let mut members = BTreeMap::new();
        let entries = archive
            .entries()
            .map_err(|error| ScanError::io(path, error))?;
        for entry in entries {
            let entry = entry.map_err(|error| ScanError::io(path, error))?;
            if members.len() >= MAX_ARCHIVE_MEMBERS {
                return Err(ScanError::LimitExceeded {
                    layer: path.display().to_string(),
                    entry: String::new(),
                    reason: format!("more than {MAX_ARCHIVE_MEMBERS} members in the image archive"),
                });
            }
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes())
                .trim_start_matches("./")
                .to_string();
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(IndexedTar {
            path: path.to_path_buf(),
            members,
        })
    }
}

impl LocalBlobs for IndexedTar {
    fn open(&self, locator: &str) -> Result<Box<dyn Read + '_>> {
        let Some((offset, size)) = self.members.get(locator) else {
            return Err(ScanError::ImageMetadata {
                source_name: self.path.display().to_string(),
                reason: format!("the archive has no member {locator:?}"),
            });
        };
        let mut file = File::open(&self.path).map_err(|error| ScanError::io(&self.path, error))?;
        file.seek(SeekFrom::Start(*offset))
            .map_err(|error| ScanError::io(&self.path, error))?;
        Ok(Box::new(file.take(*size)))
    }

    fn locator_of_digest(&self, digest: &str) -> Result<String> {
        let (algorithm, hex) = validate_digest(digest)?;
        Ok(format!("blobs/{algorithm}/{hex}"))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Resolves `oci-archive:FILE[:TAG]`; the layers are applied by the caller.
pub(crate) fn load_oci_archive(
    file: &Path,
    tag: Option<&str>,
    platform: &Platform,
) -> Result<(Box<dyn LocalBlobs + Send>, ResolvedImage)> {
    let store = IndexedTar::open(file)?;
    let index = read_metadata(&store, "index.json", None)?;
    let image = resolve_oci_index(&store, &index, tag, platform)?;
    Ok((Box::new(store), image))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    rootfs: Option<DockerRootfs>,
}

#[derive(Deserialize)]
struct DockerRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Resolves `docker-archive:FILE[:REPO:TAG]` and applies its layers. The image is named by its
/// config digest (the image ID), as `docker images` does.
pub(crate) fn load_docker_archive(
    file: &Path,
    tag: Option<&str>,
) -> Result<(Box<dyn LocalBlobs + Send>, ResolvedImage)> {
    let store = IndexedTar::open(file)?;
    let source = store.describe();
    let metadata_error = |reason: String| ScanError::ImageMetadata {
        source_name: source.clone(),
        reason,
    };
    let manifest_bytes = read_metadata(&store, "manifest.json", None)?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&manifest_bytes).map_err(|error| {
            metadata_error(format!(
                "manifest.json is not a docker save manifest: {error}"
            ))
        })?;
    let entry = match tag {
        Some(tag) => entries.iter().find(|entry| {
            entry
                .repo_tags
                .iter()
                .flatten()
                .any(|name| name == tag || name.ends_with(&format!("/{tag}")))
        }),
        None if entries.len() == 1 => entries.first(),
        None => None,
    }
    .ok_or_else(|| {
        let tags: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.repo_tags.iter().flatten())
            .map(String::as_str)
            .collect();
        metadata_error(format!(
            "choose one image with :REPO:TAG (the archive has: {})",
            tags.join(", ")
        ))
    })?;
    let config_bytes = read_metadata(&store, &entry.config, None)?;
    let image_digest = sha256_digest(&config_bytes);
    let config: DockerConfig = serde_json::from_slice(&config_bytes).map_err(|error| {
        metadata_error(format!(
            "image config {} is not JSON: {error}",
            entry.config
        ))
    })?;
    let diff_ids = config.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    let mut layers = Vec::with_capacity(entry.layers.len());
    for (index, member) in entry.layers.iter().enumerate() {
        let size = store
            .members
            .get(member)
            .map(|(_, size)| *size)
            .unwrap_or(0);
        // Newer docker writes layers as blobs/sha256/<digest>; older ones as <id>/layer.tar,
        // always uncompressed, whose hash is the config's diff_id.
        let named_digest = member
            .strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}"));
        let expected = named_digest
            .clone()
            .or_else(|| diff_ids.get(index).cloned());
        let digest = named_digest.unwrap_or_else(|| {
            diff_ids
                .get(index)
                .cloned()
                .unwrap_or_else(|| member.clone())
        });
        layers.push(ResolvedLayer {
            info: LayerInfo {
                digest,
                media_type: "application/vnd.docker.image.rootfs.diff.tar".to_string(),
                size,
            },
            locator: member.clone(),
            expected_digest: expected,
        });
    }
    let image = ResolvedImage {
        image_digest,
        layers,
    };
    Ok((Box::new(store), image))
}
