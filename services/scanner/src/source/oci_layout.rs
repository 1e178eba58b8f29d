//! OCI image layout directories (`oci:DIR[:TAG]`) and what every local source shares: reading
//! blobs by locator, resolving index -> manifest -> layers, and streaming the layers.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{
    HashingReader, ManifestOrIndex, Platform, ResolvedImage, layers_of_manifest,
    parse_manifest_json, select_platform, validate_digest, verify_bytes,
};
use crate::error::{Result, ScanError};
use crate::layer::ImageFilesystem;
use crate::progress::{Progress, ProgressEvent};

/// Largest index, manifest or config accepted (real ones are a few KiB).
pub(crate) const MAX_METADATA_BYTES: u64 = 4 * 1024 * 1024;

/// A local store of blobs addressed by locator (digest or archive member path).
pub(crate) trait LocalBlobs {
    /// Opens the blob at `locator` for streaming.
    fn open(&self, locator: &str) -> Result<Box<dyn Read + '_>>;
    /// The locator of the blob with this digest.
    fn locator_of_digest(&self, digest: &str) -> Result<String>;
    /// Names the store in errors.
    fn describe(&self) -> String;
}

/// Reads a small blob whole, bounded, and checks it against `digest` when one is given.
pub(crate) fn read_metadata(
    store: &dyn LocalBlobs,
    locator: &str,
    digest: Option<&str>,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    store
        .open(locator)?
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| ScanError::io(PathBuf::from(store.describe()).join(locator), error))?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(ScanError::LimitExceeded {
            layer: store.describe(),
            entry: locator.to_string(),
            reason: format!("image metadata larger than {MAX_METADATA_BYTES} bytes"),
        });
    }
    if let Some(digest) = digest {
        verify_bytes(locator, digest, &bytes)?;
    }
    Ok(bytes)
}

/// From `index.json` to the layers of the chosen manifest: by tag (the
/// `org.opencontainers.image.ref.name` annotation) or the only manifest, then by platform.
pub(crate) fn resolve_oci_index(
    store: &dyn LocalBlobs,
    index_bytes: &[u8],
    tag: Option<&str>,
    platform: &Platform,
) -> Result<ResolvedImage> {
    let source = store.describe();
    let index = parse_manifest_json(index_bytes, &source)?;
    let manifests = index.manifests.unwrap_or_default();
    let chosen = match tag {
        Some(tag) => manifests.iter().find(|descriptor| {
            descriptor
                .annotations
                .get("org.opencontainers.image.ref.name")
                .is_some_and(|name| name == tag || name.ends_with(&format!(":{tag}")))
                || descriptor
                    .annotations
                    .get("io.containerd.image.name")
                    .is_some_and(|name| name == tag || name.ends_with(&format!(":{tag}")))
        }),
        None if manifests.len() == 1 => manifests.first(),
        None => None,
    };
    let Some(mut descriptor) = chosen.cloned() else {
        let names: Vec<String> = manifests
            .iter()
            .filter_map(|d| {
                d.annotations
                    .get("org.opencontainers.image.ref.name")
                    .cloned()
            })
            .collect();
        return Err(ScanError::ImageMetadata {
            source_name: source,
            reason: match tag {
                Some(tag) => format!("no image tagged {tag:?} (tags: {})", names.join(", ")),
                None => format!(
                    "{} images in the index; name one with :TAG (tags: {})",
                    manifests.len(),
                    names.join(", ")
                ),
            },
        });
    };
    // An index may point to another index; real ones nest once at most.
    for _ in 0..4 {
        validate_digest(&descriptor.digest)?;
        let locator = store.locator_of_digest(&descriptor.digest)?;
        let bytes = read_metadata(store, &locator, Some(&descriptor.digest))?;
        let parsed: ManifestOrIndex = parse_manifest_json(&bytes, &source)?;
        if let Some(nested) = parsed.manifests.as_ref() {
            descriptor = select_platform(nested, platform, &source)?;
            continue;
        }
        let mut layers = layers_of_manifest(&parsed, &source)?;
        for layer in &mut layers {
            layer.locator = store.locator_of_digest(&layer.info.digest)?;
        }
        return Ok(ResolvedImage {
            image_digest: descriptor.digest,
            layers,
        });
    }
    Err(ScanError::ImageMetadata {
        source_name: source,
        reason: "image indexes nested more than four deep".to_string(),
    })
}

/// Streams every layer of a resolved local image into a new filesystem, verifying digests.
pub(crate) fn apply_local_layers(
    store: &dyn LocalBlobs,
    image: &ResolvedImage,
    filesystem: &mut ImageFilesystem,
    progress: &dyn Progress,
) -> Result<()> {
    let total = image.layers.len();
    for (index, layer) in image.layers.iter().enumerate() {
        progress.report(ProgressEvent::LayerStarted {
            index,
            total,
            digest: layer.info.digest.clone(),
            size: layer.info.size,
        });
        let mut reader = HashingReader::new(store.open(&layer.locator)?);
        let stats = filesystem.apply_layer(&layer.info.digest, &mut reader)?;
        let (actual, read) = reader.finish().map_err(|error| {
            ScanError::io(PathBuf::from(store.describe()).join(&layer.locator), error)
        })?;
        layer.verify(actual, &layer.locator)?;
        progress.report(ProgressEvent::LayerFinished {
            index,
            total,
            digest: layer.info.digest.clone(),
            compressed_bytes: read,
            decompressed_bytes: stats.bytes,
        });
    }
    Ok(())
}

/// An OCI image layout directory.
pub(crate) struct OciLayoutDirectory {
    root: PathBuf,
}

impl LocalBlobs for OciLayoutDirectory {
    fn open(&self, locator: &str) -> Result<Box<dyn Read + '_>> {
        let path = self.root.join(locator);
        let file = File::open(&path).map_err(|error| ScanError::io(&path, error))?;
        Ok(Box::new(file))
    }

    fn locator_of_digest(&self, digest: &str) -> Result<String> {
        let (algorithm, hex) = validate_digest(digest)?;
        Ok(format!("blobs/{algorithm}/{hex}"))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// Resolves `oci:DIR[:TAG]`; the layers are applied by the caller.
pub(crate) fn load_oci_layout(
    directory: &Path,
    tag: Option<&str>,
    platform: &Platform,
) -> Result<(Box<dyn LocalBlobs + Send>, ResolvedImage)> {
    let store = OciLayoutDirectory {
        root: directory.to_path_buf(),
    };
    let layout_marker = directory.join("oci-layout");
    if !layout_marker.is_file() {
        return Err(ScanError::ImageMetadata {
            source_name: directory.display().to_string(),
            reason: "not an OCI image layout (no oci-layout file)".to_string(),
        });
    }
    let index = read_metadata(&store, "index.json", None)?;
    let image = resolve_oci_index(&store, &index, tag, platform)?;
    Ok((Box::new(store), image))
}
