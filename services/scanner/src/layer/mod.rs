//! Applying image layers, in order, to an in-memory model of the image's filesystem. Layers
//! are streamed (never extracted to disk); only files a cataloger wants are read, and every
//! entry is checked against the hostile-input rules before it touches the model.

mod capture;
mod guard;
mod path;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};

use crate::catalog::{Captured, FileCatalog, OsSource};
use crate::error::{Result, ScanError};
use crate::limits::Limits;
use crate::sbom::{CatalogIssue, OsInfo, Package};
use guard::{ByteBudget, GuardViolation, TarHeaderGuard};
use path::normalize_entry_path;
pub(crate) use tree::{FileTree, Node, NodeKind};

/// What a layer entry is, independent of whether it came from a tar stream or a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Directory,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Device,
    Fifo,
    Unsupported(u8),
}

/// One entry of a layer as its producer saw it, before any checking.
pub(crate) struct RawEntry<'a> {
    pub path: &'a [u8],
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    pub content: &'a mut dyn Read,
}

/// Counts from applying one layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Entries in the layer.
    pub entries: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
}

/// The image's filesystem as layers are applied, and what catalogers found in it.
pub struct ImageFilesystem {
    limits: Limits,
    tree: FileTree,
    layer_names: Vec<String>,
    /// For each OS package database path: the (name, version) pairs each layer's copy held, so
    /// a package can be attributed to the layer that installed it rather than the last layer
    /// that rewrote the database.
    database_history: BTreeMap<String, DatabaseHistory>,
    image_bytes: u64,
    issues: Vec<CatalogIssue>,
}

/// For one database path: each layer's copy as the set of (name, version) it listed.
type DatabaseHistory = Vec<(usize, BTreeSet<(String, String)>)>;

/// The compression of a layer blob, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
    /// A bare tar stream.
    None,
}

/// Identifies gzip and zstd by magic; refuses compressions no image spec allows.
pub fn sniff_compression(first_bytes: &[u8]) -> std::result::Result<Compression, String> {
    if first_bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(Compression::Gzip);
    }
    if first_bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Compression::Zstd);
    }
    if first_bytes.starts_with(b"BZh") || first_bytes.starts_with(b"\xfd7zXZ\0") {
        return Err("bzip2 and xz layers are not part of the OCI image spec".to_string());
    }
    Ok(Compression::None)
}

/// Wraps `reader` in the decompressor its first bytes call for.
pub fn decompressing_reader<'a>(reader: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let compression = sniff_compression(buffered.fill_buf()?).map_err(std::io::Error::other)?;
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::None => Box::new(buffered),
    })
}

impl ImageFilesystem {
    /// An empty filesystem that will enforce `limits`.
    pub fn new(limits: Limits) -> Self {
        ImageFilesystem {
            limits,
            tree: FileTree::default(),
            layer_names: Vec::new(),
            database_history: BTreeMap::new(),
            image_bytes: 0,
            issues: Vec::new(),
        }
    }

    /// Number of paths in the filesystem so far.
    pub fn path_count(&self) -> usize {
        self.tree.len()
    }

    /// Starts a layer that entries will be applied to; returns its index.
    pub(crate) fn begin_layer(&mut self, name: &str) -> usize {
        self.layer_names.push(name.to_string());
        self.layer_names.len() - 1
    }

    /// Applies one layer blob (gzip, zstd or bare tar) read from `blob`. The caller keeps the
    /// reader, so it can read to the end for digest verification.
    pub fn apply_layer(&mut self, name: &str, blob: &mut dyn Read) -> Result<LayerStats> {
        let index = self.begin_layer(name);
        let layer_error = |reason: String| ScanError::LayerFormat {
            layer: name.to_string(),
            reason,
        };
        let decompressed = decompressing_reader(&mut *blob)
            .map_err(|error| layer_error(format!("cannot start decompressing: {error}")))?;
        let image_remaining = self.limits.max_image_bytes.saturating_sub(self.image_bytes);
        let (budget, what) = if image_remaining < self.limits.max_layer_bytes {
            (image_remaining, "image")
        } else {
            (self.limits.max_layer_bytes, "layer")
        };
        let bounded = ByteBudget::new(decompressed, budget, what);
        let guarded = TarHeaderGuard::new(bounded, self.limits.max_extension_header_bytes);
        let mut archive = tar::Archive::new(guarded);
        let mut stats = LayerStats::default();
        let mut last_entry = String::new();
        let entries = archive
            .entries()
            .map_err(|error| self.map_read_error(name, &last_entry, &error))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|error| self.map_read_error(name, &last_entry, &error))?;
            stats.entries += 1;
            if stats.entries > self.limits.max_entries_per_layer {
                return Err(ScanError::LimitExceeded {
                    layer: name.to_string(),
                    entry: last_entry,
                    reason: format!("more than {} entries", self.limits.max_entries_per_layer),
                });
            }
            let path_bytes = entry.path_bytes().into_owned();
            last_entry = String::from_utf8_lossy(&path_bytes).into_owned();
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o644);
            let size = entry.size();
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Directory => EntryKind::Directory,
                tar::EntryType::Symlink => EntryKind::Symlink(link_bytes(&entry)),
                tar::EntryType::Link => EntryKind::Hardlink(link_bytes(&entry)),
                tar::EntryType::Char | tar::EntryType::Block => EntryKind::Device,
                tar::EntryType::Fifo => EntryKind::Fifo,
                other => EntryKind::Unsupported(other.as_byte()),
            };
            let raw = RawEntry {
                path: &path_bytes,
                kind,
                size,
                mode,
                content: &mut entry,
            };
            self.apply_entry(index, raw)
                .map_err(|error| self.remap_entry_error(name, &last_entry, error))?;
        }
        let guarded = archive.into_inner();
        stats.bytes = guarded_consumed(&guarded);
        self.image_bytes += stats.bytes;
        Ok(stats)
    }

    fn map_read_error(&self, layer: &str, last_entry: &str, error: &std::io::Error) -> ScanError {
        match GuardViolation::from_io(error) {
            Some(violation) => {
                let entry = if violation.entry.is_empty() {
                    last_entry.to_string()
                } else {
                    violation.entry.clone()
                };
                if violation.is_limit {
                    ScanError::LimitExceeded {
                        layer: layer.to_string(),
                        entry,
                        reason: violation.reason.clone(),
                    }
                } else {
                    ScanError::HostileEntry {
                        layer: layer.to_string(),
                        entry,
                        reason: violation.reason.clone(),
                    }
                }
            }
            None => ScanError::LayerFormat {
                layer: layer.to_string(),
                reason: format!("unreadable tar stream after entry {last_entry:?}: {error}"),
            },
        }
    }

    /// Errors raised while reading an entry's content come back as I/O errors; give them the
    /// layer and entry.
    fn remap_entry_error(&self, layer: &str, entry: &str, error: ScanError) -> ScanError {
        match error {
            ScanError::Io { source, .. } => self.map_read_error(layer, entry, &source),
            other => other,
        }
    }

    /// Checks one entry and applies it to the model, reading its content only if a cataloger
    /// wants it.
    pub(crate) fn apply_entry(&mut self, layer_index: usize, raw: RawEntry<'_>) -> Result<()> {
        let layer_name = self
            .layer_names
            .get(layer_index)
            .cloned()
            .unwrap_or_default();
        let entry_name = String::from_utf8_lossy(raw.path).into_owned();
        let hostile = |reason: String| ScanError::HostileEntry {
            layer: layer_name.clone(),
            entry: entry_name.clone(),
            reason,
        };
        let limited = |reason: String| ScanError::LimitExceeded {
            layer: layer_name.clone(),
            entry: entry_name.clone(),
            reason,
        };
        let clean = match normalize_entry_path(raw.path, &self.limits) {
            Ok(Some(clean)) => clean,
            Ok(None) => return Ok(()),
            Err(refusal) if refusal.is_limit => return Err(limited(refusal.reason)),
            Err(refusal) => return Err(hostile(refusal.reason)),
        };
        let (parent, name) = FileTree::split(&clean);
        let real_parent = self
            .tree
            .resolve(parent, true, self.limits.max_symlink_hops)
            .map_err(|error| hostile(error.reason))?;
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden == ".wh..opq" {
                self.tree.make_opaque(&real_parent, layer_index);
            } else if !hidden.starts_with(".wh.") {
                self.tree
                    .whiteout(&FileTree::join(&real_parent, hidden), layer_index);
            }
            return Ok(());
        }
        let path = FileTree::join(&real_parent, name);
        let node_kind = match raw.kind {
            EntryKind::Directory => NodeKind::Directory,
            EntryKind::Symlink(target) => {
                if target.contains(&0) || target.len() > self.limits.max_path_bytes {
                    return Err(hostile(
                        "symlink target is empty of meaning (NUL byte or overlong)".to_string(),
                    ));
                }
                NodeKind::Symlink {
                    target: String::from_utf8_lossy(&target).into_owned(),
                }
            }
            EntryKind::Hardlink(target) => {
                let node = self
                    .hardlink_node(&target, &path, layer_index)
                    .map_err(hostile)?;
                self.tree.insert(path, node);
                return Ok(());
            }
            EntryKind::Device | EntryKind::Fifo => {
                if raw.size > 0 {
                    return Err(hostile(format!(
                        "device or FIFO entry carries {} bytes of data",
                        raw.size
                    )));
                }
                NodeKind::Special
            }
            EntryKind::Unsupported(type_flag) => {
                tracing::debug!(layer = %layer_name, entry = %entry_name, type_flag, "skipping tar entry of an unused type");
                return Ok(());
            }
            EntryKind::File => {
                let captured = self
                    .capture(&path, layer_index, raw.size, raw.mode, raw.content)
                    .map_err(|source| ScanError::io(entry_name.clone(), source))?;
                self.tree.insert(
                    path,
                    Node {
                        kind: NodeKind::File {
                            size: raw.size,
                            mode: raw.mode,
                        },
                        layer: layer_index,
                        captured,
                    },
                );
                return Ok(());
            }
        };
        self.tree.insert(
            path,
            Node {
                kind: node_kind,
                layer: layer_index,
                captured: None,
            },
        );
        Ok(())
    }

    /// The operating system, packages and issues of the final filesystem.
    pub fn finish(self) -> (Option<OsInfo>, Vec<Package>, Vec<CatalogIssue>) {
        let mut best_os: Option<(OsSource, OsInfo)> = None;
        let mut packages = Vec::new();
        let mut issues = self.issues;
        for (path, node) in self.tree.iter() {
            match &node.captured {
                Some(Captured::Os(source, os))
                    if best_os.as_ref().is_none_or(|(best, _)| source < best) =>
                {
                    best_os = Some((*source, os.clone()));
                }
                Some(Captured::Os(..)) => {}
                Some(Captured::Packages { file_type, catalog }) => {
                    let FileCatalog {
                        packages: found,
                        issues: found_issues,
                    } = catalog.clone();
                    issues.extend(found_issues);
                    for mut package in found {
                        let layer_index = if file_type.is_os_database() {
                            introducing_layer(self.database_history.get(path), node.layer, &package)
                        } else {
                            node.layer
                        };
                        package.layer = self
                            .layer_names
                            .get(layer_index)
                            .cloned()
                            .unwrap_or_default();
                        packages.push(package);
                    }
                }
                None => {}
            }
        }
        packages.sort_by(|a, b| {
            (a.kind, &a.name, &a.version, &a.location).cmp(&(
                b.kind,
                &b.name,
                &b.version,
                &b.location,
            ))
        });
        (best_os.map(|(_, os)| os), packages, issues)
    }

    /// Resolves a path of the final filesystem through its symlinks (inside the image).
    pub fn resolve(&self, path: &str) -> std::result::Result<String, String> {
        self.tree
            .resolve(
                path.trim_start_matches('/'),
                true,
                self.limits.max_symlink_hops,
            )
            .map_err(|error| error.reason)
    }

    /// Whether a path exists in the final filesystem (symlinks followed inside the image).
    pub fn contains(&self, path: &str) -> bool {
        self.resolve(path)
            .is_ok_and(|resolved| self.tree.get(&resolved).is_some())
    }
}

/// The earliest layer from which the database continuously listed this package.
fn introducing_layer(
    history: Option<&DatabaseHistory>,
    final_layer: usize,
    package: &Package,
) -> usize {
    let Some(history) = history else {
        return final_layer;
    };
    let key = (package.name.clone(), package.version.clone());
    let mut introduced = final_layer;
    for (layer, keys) in history
        .iter()
        .rev()
        .filter(|(layer, _)| *layer <= final_layer)
    {
        if !keys.contains(&key) {
            break;
        }
        introduced = *layer;
    }
    introduced
}

fn link_bytes<R: Read>(entry: &tar::Entry<'_, R>) -> Vec<u8> {
    entry
        .link_name_bytes()
        .map(|bytes| bytes.into_owned())
        .unwrap_or_default()
}

fn guarded_consumed<R: Read>(guarded: &TarHeaderGuard<ByteBudget<R>>) -> u64 {
    guarded.inner_ref().consumed()
}
