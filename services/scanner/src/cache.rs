//! SBOMs cached by image digest: a scan of an image seen before reads no layer, and a cached
//! SBOM is matched again whenever the vulnerability data changes.

use std::path::{Path, PathBuf};

use crate::error::{Result, ScanError};
use crate::sbom::Sbom;
use crate::source::validate_digest;

/// A directory of SBOMs, one JSON file per image digest.
#[derive(Debug, Clone)]
pub struct ScanCache {
    directory: PathBuf,
}

impl ScanCache {
    /// Opens (creating it if needed) a cache in `directory`.
    pub fn open(directory: impl Into<PathBuf>) -> Result<Self> {
        let directory = directory.into();
        std::fs::create_dir_all(&directory).map_err(|error| ScanError::Cache {
            path: directory.clone(),
            reason: format!("cannot create: {error}"),
        })?;
        Ok(ScanCache { directory })
    }

    /// Where the cache lives.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn path_of(&self, image_digest: &str) -> Result<PathBuf> {
        let (algorithm, hex) = validate_digest(image_digest)?;
        Ok(self.directory.join(format!("{algorithm}-{hex}.sbom.json")))
    }

    /// The SBOM stored for `image_digest`, if any.
    pub fn get(&self, image_digest: &str) -> Result<Option<Sbom>> {
        let path = self.path_of(image_digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(ScanError::Cache {
                    path,
                    reason: format!("cannot read: {error}"),
                });
            }
        };
        let sbom: Sbom = serde_json::from_slice(&bytes).map_err(|error| ScanError::Cache {
            path: path.clone(),
            reason: format!("corrupt entry: {error}"),
        })?;
        Ok((sbom.image_digest == image_digest).then_some(sbom))
    }

    /// Stores `sbom` under its image digest; readers never see a half-written file.
    pub fn put(&self, sbom: &Sbom) -> Result<()> {
        let path = self.path_of(&sbom.image_digest)?;
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec(sbom).map_err(|error| ScanError::Cache {
            path: path.clone(),
            reason: format!("cannot encode: {error}"),
        })?;
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|error| ScanError::Cache {
                path,
                reason: format!("cannot write: {error}"),
            })
    }

    /// Digests of every cached image, for re-matching them all after a database update.
    pub fn image_digests(&self) -> Result<Vec<String>> {
        let listing = std::fs::read_dir(&self.directory).map_err(|error| ScanError::Cache {
            path: self.directory.clone(),
            reason: format!("cannot list: {error}"),
        })?;
        let mut digests: Vec<String> = listing
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".sbom.json")?;
                let (algorithm, hex) = stem.split_once('-')?;
                Some(format!("{algorithm}:{hex}"))
            })
            .collect();
        digests.sort();
        Ok(digests)
    }
}
