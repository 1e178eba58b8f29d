//! `dir:ROOTFS`: an unpacked root filesystem on local disk, read as a single layer. Symlinks
//! are recorded, never followed on the host: they resolve inside the image model like any
//! layer's symlinks, so `etc/os-release -> /etc/os-release` cannot read the scanning host's file.

use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Result, ScanError};
use crate::layer::{EntryKind, ImageFilesystem, RawEntry};
use crate::progress::{Progress, ProgressEvent};

/// Opens the file only if a cataloger reads from it.
struct LazyFile<'a> {
    path: &'a Path,
    file: Option<File>,
}

impl Read for LazyFile<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.file.is_none() {
            self.file = Some(File::open(self.path)?);
        }
        match self.file.as_mut() {
            Some(file) => file.read(buffer),
            None => Ok(0),
        }
    }
}

/// Walks `directory` into `filesystem`; returns a digest of the tree's metadata (paths,
/// sizes, modes, modification times) that names this state of the directory in the cache.
pub(crate) fn scan_rootfs(
    directory: &Path,
    filesystem: &mut ImageFilesystem,
    progress: &dyn Progress,
) -> Result<String> {
    let metadata =
        std::fs::symlink_metadata(directory).map_err(|error| ScanError::io(directory, error))?;
    if !metadata.is_dir() {
        return Err(ScanError::ImageMetadata {
            source_name: directory.display().to_string(),
            reason: "dir: needs a directory".to_string(),
        });
    }
    let layer_name = format!("dir:{}", directory.display());
    let layer_index = filesystem.begin_layer(&layer_name);
    progress.report(ProgressEvent::LayerStarted {
        index: 0,
        total: 1,
        digest: layer_name.clone(),
        size: 0,
    });
    let mut hasher = Sha256::new();
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    let mut entries = 0u64;
    while let Some(relative_directory) = pending.pop() {
        let absolute = directory.join(&relative_directory);
        let listing =
            std::fs::read_dir(&absolute).map_err(|error| ScanError::io(&absolute, error))?;
        let mut children: Vec<_> = listing.filter_map(|entry| entry.ok()).collect();
        children.sort_by_key(|entry| entry.file_name());
        for child in children {
            let relative = relative_directory.join(child.file_name());
            let path = child.path();
            let Ok(metadata) = std::fs::symlink_metadata(&path) else {
                continue; // vanished while walking
            };
            entries += 1;
            let file_type = metadata.file_type();
            let kind = if file_type.is_dir() {
                pending.push(relative.clone());
                EntryKind::Directory
            } else if file_type.is_symlink() {
                let target =
                    std::fs::read_link(&path).map_err(|error| ScanError::io(&path, error))?;
                EntryKind::Symlink(target.as_os_str().as_bytes().to_vec())
            } else if file_type.is_file() {
                EntryKind::File
            } else if file_type.is_fifo() || file_type.is_socket() {
                EntryKind::Fifo
            } else {
                EntryKind::Device
            };
            let relative_bytes = relative.as_os_str().as_bytes();
            hasher.update(relative_bytes);
            hasher.update(metadata.size().to_le_bytes());
            hasher.update(metadata.mode().to_le_bytes());
            hasher.update(metadata.mtime().to_le_bytes());
            let size = if kind == EntryKind::File {
                metadata.size()
            } else {
                0
            };
            let mut content = LazyFile {
                path: &path,
                file: None,
            };
            filesystem.apply_entry(
                layer_index,
                RawEntry {
                    path: relative_bytes,
                    kind,
                    size,
                    mode: metadata.mode(),
                    content: &mut content,
                },
            )?;
        }
    }
    progress.report(ProgressEvent::LayerFinished {
        index: 0,
        total: 1,
        digest: layer_name,
        compressed_bytes: 0,
        decompressed_bytes: entries,
    });
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}
