//! Reading what catalogers want from an entry, and resolving hardlinks, for the layer walker.

use std::io::Read;

use super::path::normalize_entry_path;
use super::{FileTree, ImageFilesystem, Node, NodeKind};
use crate::catalog::{self, Captured, CatalogContext, FileType};
use crate::sbom::CatalogIssue;

impl ImageFilesystem {
    /// A hardlink names an earlier entry of this or a lower layer; it must stay in the image
    /// and must not name a directory.
    pub(super) fn hardlink_node(
        &self,
        target: &[u8],
        link_path: &str,
        layer_index: usize,
    ) -> std::result::Result<Node, String> {
        let clean_target = match normalize_entry_path(target, &self.limits) {
            Ok(Some(clean)) => clean,
            Ok(None) => return Err("hardlink to the image root".to_string()),
            Err(refusal) => return Err(format!("hardlink target refused: {}", refusal.reason)),
        };
        let (parent, name) = FileTree::split(&clean_target);
        let real_parent = self
            .tree
            .resolve(parent, true, self.limits.max_symlink_hops)
            .map_err(|error| error.reason)?;
        let resolved_target = FileTree::join(&real_parent, name);
        let Some(existing) = self.tree.get(&resolved_target) else {
            return Err(format!(
                "hardlink target {clean_target:?} does not exist in this or a lower layer"
            ));
        };
        if existing.kind == NodeKind::Directory {
            return Err(format!("hardlink to directory {clean_target:?}"));
        }
        let mut node = existing.clone();
        node.layer = layer_index;
        if let Some(Captured::Packages { catalog, .. }) = node.captured.as_mut() {
            let old_location = format!("/{resolved_target}");
            let new_location = format!("/{link_path}");
            for package in &mut catalog.packages {
                if let Some(rest) = package.location.strip_prefix(&old_location) {
                    package.location = format!("{new_location}{rest}");
                }
            }
        }
        Ok(node)
    }

    /// Reads and catalogs a file's content if a cataloger wants it.
    pub(super) fn capture(
        &mut self,
        path: &str,
        layer_index: usize,
        size: u64,
        mode: u32,
        content: &mut dyn Read,
    ) -> std::io::Result<Option<Captured>> {
        let location = format!("/{path}");
        let context = CatalogContext {
            location: &location,
            limits: &self.limits,
        };
        if let Some(file_type) = catalog::file_type_for(path) {
            let limit = if file_type.is_large() {
                self.limits.max_inspected_binary_bytes
            } else {
                self.limits.max_catalog_file_bytes
            };
            if size > limit {
                self.issues.push(CatalogIssue {
                    location,
                    line: None,
                    reason: format!(
                        "file of {size} bytes is larger than the {limit}-byte bound; not read"
                    ),
                });
                return Ok(None);
            }
            let bytes = read_exactly(content, size)?;
            if let FileType::Os(source) = file_type {
                return Ok(
                    catalog::parse_os_file(source, &bytes).map(|os| Captured::Os(source, os))
                );
            }
            let file_catalog = catalog::catalog_content(file_type, &bytes, &context);
            if file_type.is_os_database() {
                let keys = file_catalog
                    .packages
                    .iter()
                    .map(|p| (p.name.clone(), p.version.clone()))
                    .collect();
                self.database_history
                    .entry(path.to_string())
                    .or_default()
                    .push((layer_index, keys));
            }
            return Ok(Some(Captured::Packages {
                file_type,
                catalog: file_catalog,
            }));
        }
        const MIN_EXECUTABLE_BYTES: u64 = 64;
        if mode & 0o111 == 0 || size < MIN_EXECUTABLE_BYTES {
            return Ok(None);
        }
        let mut magic = [0u8; 4];
        content.read_exact(&mut magic)?;
        if !catalog::is_inspectable_binary(&magic) {
            return Ok(None);
        }
        if size > self.limits.max_inspected_binary_bytes {
            self.issues.push(CatalogIssue {
                location,
                line: None,
                reason: format!(
                    "executable of {size} bytes is larger than the inspection bound; not read"
                ),
            });
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(initial_capacity(size));
        bytes.extend_from_slice(&magic);
        content.take(size - 4).read_to_end(&mut bytes)?;
        let file_catalog = catalog::catalog_binary(&bytes, &context);
        if file_catalog.packages.is_empty() && file_catalog.issues.is_empty() {
            return Ok(None);
        }
        Ok(Some(Captured::Packages {
            file_type: FileType::Executable,
            catalog: file_catalog,
        }))
    }
}

fn read_exactly(content: &mut dyn Read, size: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(initial_capacity(size));
    content.take(size).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A header's size can lie; grow past this only as bytes really arrive.
fn initial_capacity(size: u64) -> usize {
    const MAX_UPFRONT: u64 = 16 * 1024 * 1024;
    usize::try_from(size.min(MAX_UPFRONT)).unwrap_or(0)
}
